//! srvd as a hidden primary for stock secondaries: zone transfers (RFC 5936 AXFR, RFC 1995
//! IXFR), NOTIFY (RFC 1996) and TSIG (RFC 8945), checked with the real Knot DNS, NSD and BIND
//! following srvd fed by a real etcd, and with `kdig` as the client.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::etcd::EtcdCluster;
use common::ports::free_port;
use common::secondary::{Kind, Secondary, TsigKey};
use common::{TestServer, query, query_udp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use srvd::config::FileConfig;

const ZONE: &str = "skydns.test.";
/// How long a secondary may take to follow a change it was NOTIFYed about.
const FOLLOW: Duration = Duration::from_secs(20);

/// What a question is answered with, order and TTL aside.
fn answer_set(reply: &Message) -> (ResponseCode, Vec<String>) {
    let mut records: Vec<String> = reply
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data).to_ascii_lowercase())
        .collect();
    records.sort();
    (reply.metadata.response_code, records)
}

fn soa_serial(reply: &Message) -> Option<u32> {
    reply.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

async fn example_serial(server: &TestServer) -> Option<u32> {
    soa_serial(&server.udp("example.test.", RecordType::SOA).await)
}

async fn serial(server: &TestServer) -> u32 {
    soa_serial(&server.udp(ZONE, RecordType::SOA).await).expect("srvd answers its SOA")
}

/// The questions both srvd and its secondaries must answer alike.
const QUESTIONS: &[(&str, RecordType)] = &[
    ("a.web.skydns.test.", RecordType::A),
    ("b.web.skydns.test.", RecordType::A),
    ("c.web.skydns.test.", RecordType::A),
    ("web.skydns.test.", RecordType::A),
    ("web.skydns.test.", RecordType::SRV),
    ("b.web.skydns.test.", RecordType::SRV),
    ("v6.skydns.test.", RecordType::AAAA),
    ("note.skydns.test.", RecordType::TXT),
    ("_http._tcp.web.skydns.test.", RecordType::SRV),
    ("_http._tcp.web.skydns.test.", RecordType::A),
    ("missing.skydns.test.", RecordType::A),
    ("missing.web.skydns.test.", RecordType::SRV),
];

/// Every question of [`QUESTIONS`] gets the same answer from `secondary` as from srvd.
async fn assert_same_answers(server: &TestServer, secondary: &Secondary) {
    for (name, qtype) in QUESTIONS {
        let ours = answer_set(&query_udp(server.addr, &query(name, *qtype, None)).await);
        let theirs = answer_set(&secondary.query_async(name, *qtype).await);
        assert_eq!(
            ours,
            theirs,
            "{name} {qtype}: srvd and {} disagree",
            secondary.kind()
        );
    }
}

/// `srvd_transfers_total{kind,result}` from srvd's metrics (0 when absent).
async fn transfers(server: &TestServer, kind: &str, result: &str) -> u64 {
    let wanted = format!("srvd_transfers_total{{kind=\"{kind}\",result=\"{result}\"}}");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("# TYPE srvd_transfers counter"),
        "srvd exports no transfer counter:\n{metrics}"
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn write_key(dir: &Path, key: &TsigKey) -> std::path::PathBuf {
    let path = dir.join("tsig.key");
    std::fs::write(&path, key.keyfile_text()).unwrap();
    path
}

/// srvd on `primary`, following `etcd`, NOTIFYing `secondaries`, transfers allowed to
/// 127.0.0.0/8 signed with `key`.
async fn start_primary(
    etcd: &EtcdCluster,
    primary: SocketAddr,
    key_file: &Path,
    key: &TsigKey,
    secondaries: &[SocketAddr],
) -> TestServer {
    let key_file = key_file.to_path_buf();
    let notify: Vec<String> = secondaries
        .iter()
        .map(|a| format!("{a},key={}", key.name))
        .collect();
    let allow = vec![format!("127.0.0.0/8,key={}", key.name)];
    TestServer::start_etcd(&[], etcd.endpoints(), &[ZONE], move |f: &mut FileConfig| {
        f.listen = Some(vec![primary]);
        f.tsig_key_file = Some(key_file);
        f.allow_transfer = Some(allow);
        f.notify = Some(notify);
    })
    .await
}

async fn wait_all(secondaries: &[Secondary], serial: u32) {
    for s in secondaries {
        assert!(
            s.wait_serial_async(ZONE, serial, FOLLOW).await,
            "{} did not reach serial {serial} within {FOLLOW:?}; its log:\n{}",
            s.kind(),
            s.log()
        );
    }
}

/// Knot, NSD and BIND, TSIG-signed, bootstrap by AXFR, then follow puts and deletes by
/// NOTIFY + IXFR answering exactly what srvd answers; a srvd restart keeps the serial (no
/// secondary transfers the whole zone again), and a delete made while srvd was down moves the
/// serial forward (RFC 1982: a serial that went back would be ignored).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc1996_notify_and_rfc1995_ixfr_keep_knot_nsd_and_bind_in_step_with_etcd() {
    let etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = TsigKey::generate("xfr-key");
    let key_file = write_key(dir.path(), &key);
    let primary = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)));
    let secondaries: Vec<Secondary> = Kind::ALL
        .iter()
        .map(|&kind| {
            tokio::task::block_in_place(|| Secondary::start(kind, &[ZONE], primary, Some(&key)))
        })
        .collect();
    let addrs: Vec<SocketAddr> = secondaries.iter().map(Secondary::addr).collect();
    for (k, v) in [
        (
            "/skydns/test/skydns/web/a",
            r#"{"host":"10.0.0.1","port":80}"#,
        ),
        (
            "/skydns/test/skydns/web/b",
            r#"{"host":"10.0.0.2","port":8080}"#,
        ),
        ("/skydns/test/skydns/v6", r#"{"host":"2001:db8::6"}"#),
        ("/skydns/test/skydns/note", r#"{"text":"hello world"}"#),
    ] {
        etcd.put(k, v).await;
    }

    let server = start_primary(&etcd, primary, &key_file, &key, &addrs).await;
    let first = serial(&server).await;
    wait_all(&secondaries, first).await;
    for s in &secondaries {
        assert_same_answers(&server, s).await;
    }
    assert!(
        transfers(&server, "axfr", "full").await + transfers(&server, "ixfr", "full").await >= 3
    );

    // A put, then a delete: the delete is the last change before the restart below.
    etcd.put(
        "/skydns/test/skydns/web/c",
        r#"{"host":"10.0.0.3","port":80}"#,
    )
    .await;
    let revision = etcd.delete("/skydns/test/skydns/web/a").await;
    server.wait_revision(revision).await;
    let changed = serial(&server).await;
    assert_ne!(changed, first, "a change moves the serial");
    wait_all(&secondaries, changed).await;
    for s in &secondaries {
        assert_same_answers(&server, s).await;
    }
    assert!(
        transfers(&server, "ixfr", "incremental").await >= 3,
        "every secondary took the change as an IXFR diff: {}",
        server.metrics().await
    );
    for s in secondaries.iter().filter(|s| s.kind() != Kind::Nsd) {
        let (ixfr, _) = s.transfers(ZONE);
        assert!(
            ixfr.unwrap() >= 1,
            "{} logged no IXFR:\n{}",
            s.kind(),
            s.log()
        );
    }

    // Restart: same contents, same serial; the secondaries find themselves current.
    server.app.shutdown().await.unwrap();
    let server = start_primary(&etcd, primary, &key_file, &key, &addrs).await;
    assert_eq!(serial(&server).await, changed, "a restart keeps the serial");
    for s in &secondaries {
        tokio::task::block_in_place(|| s.refresh(ZONE));
    }
    etcd.put(
        "/skydns/test/skydns/web/d",
        r#"{"host":"10.0.0.4","port":80}"#,
    )
    .await;
    let later = serial(&server).await;
    wait_all(&secondaries, later).await;
    assert_eq!(
        (
            transfers(&server, "axfr", "full").await,
            transfers(&server, "ixfr", "full").await
        ),
        (0, 0),
        "no secondary transferred the whole zone after the restart"
    );

    // A delete while srvd is down: the serial after the restart is newer still.
    server.app.shutdown().await.unwrap();
    etcd.delete("/skydns/test/skydns/web/b").await;
    let server = start_primary(&etcd, primary, &key_file, &key, &addrs).await;
    let after = serial(&server).await;
    assert!(
        after.wrapping_sub(later) as i32 > 0,
        "serial {after} is not after {later} (RFC 1982)"
    );
    wait_all(&secondaries, after).await;
    for s in &secondaries {
        assert_same_answers(&server, s).await;
    }
}

/// kdig with `args`, its stdout and stderr together.
fn kdig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kdig: {e} (install the Debian package knot-dnsutils)"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const EXAMPLE_ZONE: &str = "$ORIGIN example.test.\n$TTL 60\n\
@ SOA ns1 hostmaster 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n";

/// RFC 8945 §5.2 and RFC 5936 §6: a transfer needs an allowed address and, when the rule
/// names a key, a valid signature with it. Unsigned: REFUSED; unknown key: NOTAUTH/BADKEY;
/// wrong secret: NOTAUTH/BADSIG; right key: the zone, every message signed (kdig checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8945_transfers_need_an_allowed_address_and_the_key() {
    let key = TsigKey::generate("xfr-key");
    let keys = tempfile::tempdir().unwrap();
    let key_file = write_key(keys.path(), &key);
    let zones = [("example.test.zone", EXAMPLE_ZONE)];
    let server = TestServer::start_with(&zones, |f| {
        f.tsig_key_file = Some(key_file);
        f.allow_transfer = Some(vec!["127.0.0.1,key=xfr-key".into()]);
    })
    .await;
    let addr = server.addr;
    let signed = format!("hmac-sha256:xfr-key:{}", key.secret);
    let wrong = format!("hmac-sha256:xfr-key:{}", TsigKey::generate("x").secret);
    let unknown = format!("hmac-sha256:other-key:{}", key.secret);
    let run = move |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kdig(addr, &args)
    };
    let axfr = |tsig: Option<&str>| {
        let mut args = vec!["example.test.".to_string(), "AXFR".into()];
        if let Some(t) = tsig {
            args.extend(["-y".into(), t.to_string()]);
        }
        tokio::task::block_in_place(|| run(args))
    };

    let out = axfr(None);
    assert!(
        out.contains("REFUSED"),
        "unsigned AXFR must be refused:\n{out}"
    );
    let out = axfr(Some(&unknown));
    assert!(out.contains("BADKEY"), "unknown key must be BADKEY:\n{out}");
    let out = axfr(Some(&wrong));
    assert!(
        out.contains("BADSIG"),
        "wrong secret must be BADSIG:\n{out}"
    );
    let out = axfr(Some(&signed));
    assert!(
        out.contains("www.example.test.")
            && !out.contains(";; ERROR")
            && !out.contains(";; WARNING"),
        "signed AXFR must succeed with verified TSIG:\n{out}"
    );
    assert_eq!(
        out.matches("\tSOA\t").count(),
        2,
        "AXFR starts and ends with the SOA:\n{out}"
    );

    // A signed ordinary query gets a signed answer (kdig verifies it).
    let out = tokio::task::block_in_place(|| {
        run(vec![
            "www.example.test.".into(),
            "A".into(),
            "-y".into(),
            signed.clone(),
        ])
    });
    assert!(
        out.contains("192.0.2.10") && out.contains("NOERROR") && !out.contains(";; WARNING"),
        "{out}"
    );
    assert_eq!(transfers(&server, "axfr", "full").await, 1);
}

/// RFC 5936 §6: a transfer from an address no rule allows is refused, signed or not; and an
/// AXFR question over UDP is refused (RFC 5936 §4.2: AXFR is TCP only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc5936_4_2_axfr_from_a_disallowed_address_or_over_udp_is_refused() {
    let zones = [("example.test.zone", EXAMPLE_ZONE)];
    let server = TestServer::start_with(&zones, |f| {
        f.allow_transfer = Some(vec!["127.0.0.2".into()]);
    })
    .await;
    let addr = server.addr;
    let out = tokio::task::block_in_place(|| kdig(addr, &["example.test.", "AXFR"]));
    assert!(out.contains("REFUSED"), "{out}");
    let reply = query_udp(addr, &query("example.test.", RecordType::AXFR, None)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert_eq!(transfers(&server, "axfr", "full").await, 0);
}

/// RFC 1995 §2, §4: an IXFR from a serial in the journal is the difference only (old SOA,
/// deleted records, new SOA, added records); from the current serial, one SOA; from a
/// serial srvd never had, the whole zone AXFR-style (never REFUSED: NSD would not fall back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc1995_4_ixfr_sends_the_difference_or_falls_back_to_the_whole_zone() {
    let mut text = String::from(EXAMPLE_ZONE);
    for i in 0..5000 {
        text.push_str(&format!(
            "host{i} A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let zones = [("example.test.zone", text.as_str())];
    let server = TestServer::start_with(&zones, |f| {
        f.allow_transfer = Some(vec!["127.0.0.0/8".into()]);
    })
    .await;
    let changed = text
        .replace(" 7 3600", " 8 3600")
        .replace("www A 192.0.2.10", "www A 192.0.2.11");
    std::fs::write(server.dir.path().join("example.test.zone"), changed).unwrap();
    assert!(server.app.reload_zones());
    let start = std::time::Instant::now();
    while example_serial(&server).await != Some(8) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "reload never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = server.addr;
    let ixfr = |serial: u32| {
        tokio::task::block_in_place(|| {
            kdig(
                addr,
                &[
                    "example.test.",
                    &format!("IXFR={serial}"),
                    "+noall",
                    "+answer",
                ],
            )
        })
    };
    let diff = ixfr(7);
    let lines: Vec<&str> = diff.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        6,
        "SOA 8, SOA 7, -www, SOA 8, +www, SOA 8:\n{diff}"
    );
    assert!(
        lines[2].contains("192.0.2.10") && lines[4].contains("192.0.2.11"),
        "{diff}"
    );
    let current = ixfr(8);
    assert_eq!(
        current.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{current}"
    );
    let unknown = ixfr(3);
    assert!(
        unknown.lines().count() > 5000,
        "a serial not in the journal gets the whole zone"
    );
    assert_eq!(transfers(&server, "ixfr", "incremental").await, 1);
    assert_eq!(transfers(&server, "ixfr", "current").await, 1);
    assert_eq!(transfers(&server, "ixfr", "full").await, 1);
}
