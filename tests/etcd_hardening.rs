//! What srvd does with etcd data that is odd rather than wrong (issue 12): an etcd restored
//! empty or from an older backup, keys that differ only in letter case, and values srvd
//! either serves as CoreDNS does or rejects with a log line and the bad-value metric. Each
//! test runs the real srvd binary against a real etcd and reads its log and /metrics.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::etcd::EtcdCluster;
use common::{SrvdLog, http_get, query, query_udp, spawn_srvd_logged};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const DOMAIN: &str = "skydns.test.";
/// How long srvd may take to notice etcd's state after etcd answers again (its reconnect
/// backoff is at most 5 s).
const CATCH_UP: Duration = Duration::from_secs(20);

struct Srvd {
    _child: common::ChildGuard,
    dns: SocketAddr,
    http: SocketAddr,
    log: SrvdLog,
    _dir: tempfile::TempDir,
}

fn start_srvd(etcd: &EtcdCluster) -> Srvd {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    let endpoints = etcd.endpoints().join(",");
    let (child, dns, http, log) = spawn_srvd_logged(
        &["--zones", "zones", "--etcd", &endpoints, "--domain", DOMAIN],
        dir.path(),
    );
    let srvd = Srvd {
        _child: child,
        dns,
        http,
        log,
        _dir: dir,
    };
    let ready = Instant::now();
    while !http_get(srvd.http, "/readyz").contains(" 200 ") {
        assert!(ready.elapsed() < CATCH_UP, "srvd never became ready");
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    srvd
}

impl Srvd {
    /// The A answer of `name`: rcode and addresses, sorted.
    async fn a(&self, name: &str) -> (ResponseCode, Vec<String>) {
        let reply = query_udp(self.dns, &query(name, RecordType::A, None)).await;
        let mut ips: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
        ips.sort();
        (reply.metadata.response_code, ips)
    }

    /// Wait until `name`'s A answer is `want` (NXDOMAIN when empty).
    async fn until_a(&self, name: &str, want: &[&str]) {
        let start = Instant::now();
        loop {
            let (rcode, ips) = self.a(name).await;
            let wanted = if want.is_empty() {
                rcode == ResponseCode::NXDomain
            } else {
                rcode == ResponseCode::NoError && ips == want
            };
            if wanted {
                return;
            }
            assert!(
                start.elapsed() < CATCH_UP,
                "{name}: still {rcode:?} {ips:?}, wanted {want:?}\n{}",
                self.log.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
        }
    }

    /// The value of the metric line starting with `series` (0 when absent), after checking
    /// that the metric family exists at all.
    fn metric(&self, family: &str, series: &str) -> f64 {
        let text = http_get(self.http, "/metrics");
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no metric family {family} in:\n{text}"
        );
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }
}

fn key(name: &str) -> String {
    format!("/skydns/test/skydns/{name}")
}

/// An etcd wiped and restarted empty has the same cluster id (same member name, peer URL and
/// token) but its revision went back: srvd must not resume its watch on that foreign history
/// (serving deleted keys, missing new ones) but take a fresh snapshot, logged and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restored_empty_gets_a_fresh_snapshot_not_a_resumed_watch() {
    let mut etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    for i in 0..5 {
        etcd.put(&key(&format!("old/{i}")), r#"{"host":"10.0.0.1"}"#)
            .await;
    }
    let srvd = tokio::task::block_in_place(|| start_srvd(&etcd));
    srvd.until_a("0.old.skydns.test.", &["10.0.0.1"]).await;

    tokio::task::block_in_place(|| {
        etcd.kill(0);
        etcd.replace_data(None);
    });
    etcd.put(&key("new"), r#"{"host":"10.0.0.2"}"#).await;
    srvd.until_a("new.skydns.test.", &["10.0.0.2"]).await;
    srvd.until_a("0.old.skydns.test.", &[]).await;
    assert!(
        srvd.log.text().contains("etcd's history changed under us"),
        "the fresh snapshot is logged:\n{}",
        srvd.log.text()
    );
    let rewinds = srvd.metric(
        "srvd_etcd_history_resets",
        "srvd_etcd_history_resets_total{reason=\"rewind\"}",
    );
    assert!(rewinds >= 1.0, "counted as a rewind");
    assert!(http_get(srvd.http, "/readyz").contains(" 200 "));
}

/// An etcd restored from an older backup, then written to until its revision passes the one
/// srvd had followed: the last event srvd applied is not in the new history, so srvd takes a
/// fresh snapshot: keys of the backup come back, keys written after it are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restored_from_an_older_backup_is_taken_whole_even_past_the_old_revision() {
    let mut etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    etcd.put(&key("kept"), r#"{"host":"10.0.0.1"}"#).await;
    etcd.put(&key("gone"), r#"{"host":"10.0.0.2"}"#).await;
    let backup = tempfile::tempdir().unwrap();
    let snapshot = backup.path().join("backup.db");
    tokio::task::block_in_place(|| etcd.snapshot_save(&snapshot));
    etcd.put(&key("late"), r#"{"host":"10.0.0.3"}"#).await;
    etcd.delete(&key("gone")).await;
    let srvd = tokio::task::block_in_place(|| start_srvd(&etcd));
    srvd.until_a("late.skydns.test.", &["10.0.0.3"]).await;
    srvd.until_a("gone.skydns.test.", &[]).await;

    tokio::task::block_in_place(|| {
        etcd.kill(0);
        etcd.replace_data(Some(&snapshot));
    });
    // Three writes take the restored etcd past the revision srvd followed.
    for i in 0..3 {
        etcd.put(&key(&format!("after/{i}")), r#"{"host":"10.0.0.4"}"#)
            .await;
    }
    srvd.until_a("2.after.skydns.test.", &["10.0.0.4"]).await;
    srvd.until_a("gone.skydns.test.", &["10.0.0.2"]).await;
    srvd.until_a("late.skydns.test.", &[]).await;
    srvd.until_a("kept.skydns.test.", &["10.0.0.1"]).await;
    let resets = srvd.metric(
        "srvd_etcd_history_resets",
        "srvd_etcd_history_resets_total{reason=\"rewind\"}",
    );
    assert!(resets >= 1.0, "counted as a rewind:\n{}", srvd.log.text());
}

/// Keys that differ only in letter case name one DNS name (DNS is case-insensitive): the name
/// serves the union, deleting one keeps the other, and the collision is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_differing_only_in_case_serve_their_union_and_the_collision_is_logged() {
    let etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    let srvd = tokio::task::block_in_place(|| start_srvd(&etcd));
    etcd.put(&key("case/A"), r#"{"host":"10.0.0.1"}"#).await;
    etcd.put(&key("case/a"), r#"{"host":"10.0.0.2"}"#).await;
    srvd.until_a("a.case.skydns.test.", &["10.0.0.1", "10.0.0.2"])
        .await;
    etcd.delete(&key("case/A")).await;
    srvd.until_a("A.case.skydns.test.", &["10.0.0.2"]).await;
    etcd.put(&key("case/A"), r#"{"host":"10.0.0.1"}"#).await;
    etcd.delete(&key("case/a")).await;
    srvd.until_a("a.case.skydns.test.", &["10.0.0.1"]).await;
    assert!(
        srvd.log.wait_for(
            &["WARN", "differ only in letter case", "a.case.skydns.test"],
            CATCH_UP
        ),
        "the collision is logged:\n{}",
        srvd.log.text()
    );
}

/// CoreDNS serves `"ttl": 4294967295` (srvd clamps it to max_ttl), an IPv4-mapped IPv6
/// host as A, and the apex key itself at the apex. Values that could never be served are rejected with a warning naming the key
/// and `srvd_source_bad_values_total{source="etcd"}`: a TXT over 64000 bytes, a key label
/// holding a dot; the good keys beside them are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_values_are_served_as_coredns_does_or_rejected_with_a_log_and_the_metric() {
    let etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    let srvd = tokio::task::block_in_place(|| start_srvd(&etcd));
    etcd.put(&key("bigttl"), r#"{"host":"10.0.0.1","ttl":4294967295}"#)
        .await;
    etcd.put(&key("mapped"), r#"{"host":"::ffff:10.1.2.3"}"#)
        .await;
    let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(70_000));
    etcd.put(&key("huge"), &huge).await;
    etcd.put(&key("a.b/c"), r#"{"host":"10.0.0.9"}"#).await;
    etcd.put(&key("good"), r#"{"host":"10.0.0.5"}"#).await;
    // The apex key itself: CoreDNS serves it at the apex (with the rest of the zone's subtree).
    etcd.put("/skydns/test/skydns", r#"{"host":"10.0.0.8"}"#)
        .await;

    srvd.until_a("good.skydns.test.", &["10.0.0.5"]).await;
    srvd.until_a("mapped.skydns.test.", &["10.1.2.3"]).await;
    srvd.until_a(DOMAIN, &["10.0.0.1", "10.0.0.5", "10.0.0.8", "10.1.2.3"])
        .await;
    let reply = query_udp(srvd.dns, &query("bigttl.skydns.test.", RecordType::A, None)).await;
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(
        reply.answers[0].ttl, 604_800,
        "clamped to the default max_ttl"
    );
    let txt = query_udp(srvd.dns, &query("huge.skydns.test.", RecordType::TXT, None)).await;
    assert_eq!(txt.metadata.response_code, ResponseCode::NXDomain);
    srvd.until_a("c.a.b.skydns.test.", &[]).await;
    for (what, part) in [("huge TXT", "huge"), ("dotted label", "a.b/c")] {
        assert!(
            srvd.log.wait_for(&["WARN", part], CATCH_UP),
            "{what} rejected without a warning:\n{}",
            srvd.log.text()
        );
    }
    let bad = srvd.metric(
        "srvd_source_bad_values",
        "srvd_source_bad_values_total{source=\"etcd\"}",
    );
    assert!(bad >= 2.0, "both rejections counted, got {bad}");
}

/// RFC 2181 §5.2: the records of one RRset share one TTL. A zone file and etcd keys that both
/// give the same name records of one type are one RRset: all of it gets the lowest TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2181_5_2_a_zone_file_and_etcd_rrset_has_one_ttl() {
    let etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    etcd.put(&key("web"), r#"{"host":"10.0.0.7","ttl":5}"#)
        .await;
    let zone = "$ORIGIN skydns.test.\n$TTL 30\n@ SOA ns hostmaster 1 7200 1800 86400 5\n\
                @ NS ns\nns A 192.0.2.53\nweb A 192.0.2.10\n";
    let server = common::TestServer::start_etcd(
        &[("skydns.test.zone", zone)],
        etcd.endpoints(),
        &[DOMAIN],
        |_| {},
    )
    .await;
    let reply = server.udp("web.skydns.test.", RecordType::A).await;
    let ttls: Vec<u32> = reply.answers.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls.len(), 2, "{reply:?}");
    assert!(
        ttls.iter().all(|t| *t == 5),
        "one TTL for the RRset: {ttls:?}"
    );
}
