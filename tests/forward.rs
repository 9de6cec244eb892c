//! Forwarding: srvd as a host's only nameserver. Names outside srvd's zones go to upstreams
//! (a stub written for these tests, and real forwarders from Debian: dnsmasq), with failover,
//! a time budget, caching (RFC 2308, RFC 8767), coalescing, and loop detection.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::stub::{Mode, Stub};
use common::{ChildGuard, TestServer, query, query_tcp, query_udp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use srvd::config::FileConfig;

const ZONE: &str = "$TTL 60\n\
@ IN SOA ns hostmaster 1 7200 1800 86400 5\n\
@ IN NS ns\n\
ns IN A 192.0.2.53\n\
web IN A 192.0.2.10\n\
ext IN CNAME www.example.org.\n";

/// srvd serving `own.test.` and forwarding to `upstreams`.
async fn forwarding(upstreams: &[SocketAddr], tweak: impl FnOnce(&mut FileConfig)) -> TestServer {
    let list: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
    TestServer::start_with(&[("own.test.zone", ZONE)], |f| {
        f.forward = Some(list);
        tweak(f);
    })
    .await
}

/// Ask over UDP, waiting up to 5 s (a stub resolver's timeout: longer than srvd's budget).
async fn ask(server: &TestServer, name: &str, qtype: RecordType) -> Message {
    ask_at(server.addr, name, qtype).await
}

async fn ask_at(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bytes = query(name, qtype, Some(1232)).to_vec().unwrap();
    sock.send_to(&bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("a reply within 5 s")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

fn first_ttl(m: &Message) -> u32 {
    m.answers[0].ttl
}

#[tokio::test]
async fn outside_names_are_forwarded_with_ra_and_without_aa_own_names_never() {
    let up = Stub::start(Mode::Answer { ttl: 300 }).await;
    let server = forwarding(&[up.addr], |_| {}).await;
    let m = ask(&server, "www.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert!(m.metadata.recursion_available, "RA=1 while forwarding");
    assert!(!m.metadata.authoritative, "forwarded answers are not AA");
    let own = ask(&server, "web.own.test.", RecordType::A).await;
    assert!(own.metadata.authoritative && own.metadata.recursion_available);
    let nx = ask(&server, "nope.own.test.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.queries(), 1, "names in srvd's zones are never forwarded");
}

#[tokio::test]
async fn failover_to_the_next_upstream_on_timeout_servfail_and_refused() {
    for mode in [Mode::Silent, Mode::ServFail, Mode::Refused] {
        let bad = Stub::start(mode.clone()).await;
        let good = Stub::start(Mode::Answer { ttl: 60 }).await;
        let server = forwarding(&[bad.addr, good.addr], |_| {}).await;
        let started = Instant::now();
        let m = ask(&server, "www.example.org.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{mode:?}");
        assert!(started.elapsed() < Duration::from_millis(3500), "{mode:?}");
        assert_eq!((bad.queries(), good.queries()), (1, 1), "{mode:?}");
        server.app.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn nxdomain_is_final() {
    let first = Stub::start(Mode::NxDomain { negative: 60 }).await;
    let second = Stub::start(Mode::Answer { ttl: 60 }).await;
    let server = forwarding(&[first.addr, second.addr], |_| {}).await;
    let m = ask(&server, "nope.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(second.queries(), 0);
}

#[tokio::test]
async fn dead_upstreams_get_servfail_well_inside_a_clients_timeout() {
    let a = Stub::start(Mode::Silent).await;
    let b = Stub::start(Mode::Silent).await;
    let server = forwarding(&[a.addr, b.addr], |_| {}).await;
    let started = Instant::now();
    let m = ask(&server, "www.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_upstream_that_failed_twice_is_skipped() {
    let dead = Stub::start(Mode::Silent).await;
    let good = Stub::start(Mode::Answer { ttl: 60 }).await;
    let server = forwarding(&[dead.addr, good.addr], |_| {}).await;
    for name in ["a.example.org.", "b.example.org."] {
        assert_eq!(ask(&server, name, RecordType::A).await.answers.len(), 1);
    }
    assert_eq!(dead.queries(), 2);
    let started = Instant::now();
    assert_eq!(
        ask(&server, "c.example.org.", RecordType::A)
            .await
            .answers
            .len(),
        1
    );
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "went straight to the good one"
    );
    assert_eq!(dead.queries(), 2, "the dead one is left alone");
    let metrics = server.metrics().await;
    let down = format!("srvd_forward_upstream_up{{upstream=\"{}\"}} 0", dead.addr);
    assert!(metrics.contains(&down), "{metrics}");
}

#[tokio::test]
async fn truncated_upstream_answers_are_fetched_over_tcp_and_reencoded_for_the_client() {
    let up = Stub::start(Mode::Truncated).await;
    let server = forwarding(&[up.addr], |_| {}).await;
    let m = ask(&server, "big.example.org.", RecordType::TXT).await;
    assert!(!m.metadata.truncation, "fits the client's 1232 bytes");
    assert_eq!(m.answers.len(), 1);
    let plain = query_udp(
        server.addr,
        &query("big.example.org.", RecordType::TXT, None),
    )
    .await;
    assert!(plain.metadata.truncation, "does not fit 512 bytes: TC");
    assert!(plain.answers.is_empty());
    let tcp = query_tcp(
        server.addr,
        &query("big.example.org.", RecordType::TXT, None),
    )
    .await;
    assert_eq!(tcp.answers.len(), 1, "complete over TCP");
}

#[tokio::test]
async fn rfc2308_negative_answers_are_cached() {
    let up = Stub::start(Mode::NxDomain { negative: 60 }).await;
    let server = forwarding(&[up.addr], |_| {}).await;
    for _ in 0..3 {
        let m = ask(&server, "nope.example.org.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1, "SOA kept");
    }
    assert_eq!(up.queries(), 1);
}

#[tokio::test]
async fn ttls_count_down_from_the_upstreams() {
    let up = Stub::start(Mode::Answer { ttl: 100 }).await;
    let server = forwarding(&[up.addr], |_| {}).await;
    assert_eq!(
        first_ttl(&ask(&server, "www.example.org.", RecordType::A).await),
        100
    );
    let started = Instant::now();
    let ttl = loop {
        let ttl = first_ttl(&ask(&server, "www.example.org.", RecordType::A).await);
        if ttl < 100 || started.elapsed() > Duration::from_secs(5) {
            break ttl;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!((97..100).contains(&ttl), "{ttl}");
    assert_eq!(up.queries(), 1, "served from the cache");
}

#[tokio::test]
async fn rfc8767_stale_answer_with_ttl_30_when_every_upstream_fails() {
    let up = Stub::start(Mode::Answer { ttl: 1 }).await;
    let server = forwarding(&[up.addr], |_| {}).await;
    assert_eq!(
        ask(&server, "www.example.org.", RecordType::A)
            .await
            .answers
            .len(),
        1
    );
    up.set_mode(Mode::Silent);
    // Let the one-second TTL run out: that expiry is what is tested.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = ask(&server, "www.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(first_ttl(&m), 30, "stale answers carry TTL 30");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"srvd_forward_cache_total{result="stale"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn identical_questions_in_flight_become_one_upstream_query() {
    let up = Stub::start(Mode::Slow {
        delay: Duration::from_millis(300),
    })
    .await;
    let server = forwarding(&[up.addr], |_| {}).await;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let addr = server.addr;
        clients.spawn(async move { ask_at(addr, "slow.example.org.", RecordType::A).await });
    }
    while let Some(m) = clients.join_next().await {
        assert_eq!(m.unwrap().answers.len(), 1);
    }
    assert_eq!(up.queries(), 1);
}

#[tokio::test]
async fn beyond_forward_max_concurrent_questions_are_refused() {
    let up = Stub::start(Mode::Slow {
        delay: Duration::from_millis(500),
    })
    .await;
    let server = forwarding(&[up.addr], |f| f.forward_max_concurrent = Some(2)).await;
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..6 {
        let addr = server.addr;
        clients
            .spawn(async move { ask_at(addr, &format!("n{i}.example.org."), RecordType::A).await });
    }
    let mut rcodes = Vec::new();
    while let Some(m) = clients.join_next().await {
        rcodes.push(m.unwrap().metadata.response_code);
    }
    let refused = rcodes
        .iter()
        .filter(|r| **r == ResponseCode::Refused)
        .count();
    let answered = rcodes
        .iter()
        .filter(|r| **r == ResponseCode::NoError)
        .count();
    assert_eq!((answered, refused), (2, 4), "{rcodes:?}");
    assert!(up.queries() <= 2);
}

#[tokio::test]
async fn a_loop_back_to_srvd_is_cut_at_once_without_a_storm() {
    let relay = Stub::start(Mode::Silent).await;
    let server = forwarding(&[relay.addr], |_| {}).await;
    relay.set_mode(Mode::Relay(server.addr));
    let started = Instant::now();
    let m = ask(&server, "loop.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert!(relay.queries() <= 4, "bounded: {} hops", relay.queries());
    let metrics = server.metrics().await;
    let loops = format!("srvd_forward_loops_total{{upstream=\"{}\"}}", relay.addr);
    assert!(metrics.contains(&loops), "{metrics}");
}

/// Waits until dnsmasq answers a name it serves itself; `Err` with its own log when it exits
/// or does not answer within 10 s.
async fn wait_for_dnsmasq(
    addr: SocketAddr,
    child: &mut std::process::Child,
    log: &Path,
) -> Result<(), String> {
    let started = Instant::now();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = query("probe.invalid.", RecordType::A, None)
        .to_vec()
        .unwrap();
    loop {
        sock.send_to(&probe, addr).await.unwrap();
        let mut buf = [0u8; 512];
        if tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf))
            .await
            .is_ok()
        {
            return Ok(());
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || started.elapsed() > Duration::from_secs(10) {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "dnsmasq did not start (exit: {exited:?}); its log:\n{log}"
            ));
        }
    }
}

/// dnsmasq on a free loopback port, forwarding everything to srvd, which forwards everything
/// to dnsmasq: a loop through a second forwarder. The port is free when picked but other
/// tests bind ports meanwhile, so a start that finds it taken is retried on another.
async fn srvd_and_dnsmasq_in_a_loop() -> (TestServer, ChildGuard, tempfile::TempDir) {
    let mut failures = Vec::new();
    for _ in 0..5 {
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        // Below the ephemeral range: ports other tests bind as port 0 cannot collide.
        let dnsmasq: SocketAddr = (ip, common::ports::free_port(ip)).into();
        let server = forwarding(&[dnsmasq], |_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("dnsmasq.log");
        let mut child = ChildGuard(spawn_dnsmasq(dnsmasq, server.addr, dir.path(), &log_path));
        match wait_for_dnsmasq(dnsmasq, &mut child.0, &log_path).await {
            Ok(()) => return (server, child, dir),
            Err(e) if e.contains("Address already in use") => failures.push(e),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("dnsmasq found its port taken five times: {failures:?}");
}

fn spawn_dnsmasq(
    addr: SocketAddr,
    upstream: SocketAddr,
    dir: &Path,
    log: &Path,
) -> std::process::Child {
    std::process::Command::new("dnsmasq")
        .args([
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
        ])
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--server={}#{}", upstream.ip(), upstream.port()))
        // Answered by dnsmasq itself: the readiness probe never enters the loop.
        .arg("--address=/probe.invalid/127.0.0.9")
        .arg("--cache-size=0")
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .args(["--user=root", "--group=root", "--log-facility=-"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("dnsmasq (Debian package dnsmasq) must be installed: scripts/deps.sh installs it")
}

#[tokio::test]
async fn a_loop_through_dnsmasq_is_cut() {
    let (server, _dnsmasq, _dir) = srvd_and_dnsmasq_in_a_loop().await;
    let started = Instant::now();
    let m = ask(&server, "loop.example.net.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_millis(3500));
    let metrics = server.metrics().await;
    assert!(metrics.contains("srvd_forward_loops_total{"), "{metrics}");
}

#[tokio::test]
async fn the_longest_forward_zone_wins_over_the_default() {
    let default = Stub::start(Mode::Answer { ttl: 60 }).await;
    let corp = Stub::start(Mode::NxDomain { negative: 60 }).await;
    let server = forwarding(&[default.addr], |f| {
        let zones = [("corp.example.".to_string(), vec![corp.addr.to_string()])];
        f.forward_zone = Some(zones.into_iter().collect());
    })
    .await;
    let m = ask(&server, "host.corp.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = ask(&server, "host.other.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!((corp.queries(), default.queries()), (1, 1));
}

#[tokio::test]
async fn cname_targets_outside_the_zones_are_completed_from_the_upstream() {
    let up = Stub::start(Mode::Answer { ttl: 60 }).await;
    let server = forwarding(&[up.addr], |_| {}).await;
    let m = ask(&server, "ext.own.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let kinds: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(kinds, vec![RecordType::CNAME, RecordType::A]);
    assert!(matches!(m.answers[1].data, RData::A(_)));
    assert!(m.metadata.authoritative, "authoritative for its own name");
}

#[tokio::test]
async fn resolv_conf_upstreams_are_read_reread_and_srvd_itself_is_dropped() {
    // resolv.conf names no port: the upstreams listen on port 53 (tests run as root).
    let first = Stub::start_on(Ipv4Addr::new(127, 83, 0, 1), 53, Mode::Answer { ttl: 60 }).await;
    let second = Stub::start_on(
        Ipv4Addr::new(127, 83, 0, 2),
        53,
        Mode::NxDomain { negative: 60 },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.83.0.1\n").unwrap();
    let server = TestServer::start_with(&[("own.test.zone", ZONE)], |f| {
        f.forward_resolv_conf = Some(resolv.clone());
        f.forward_cache_size = Some(0);
    })
    .await;
    let m = ask(&server, "a.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    std::fs::write(&resolv, "nameserver 127.83.0.2\n").unwrap();
    let started = Instant::now();
    loop {
        let m = ask(&server, "b.example.org.", RecordType::A).await;
        if m.metadata.response_code == ResponseCode::NXDomain {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "resolv.conf not re-read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(second.queries() >= 1 && first.queries() >= 1);
}

const KNOT_ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.20\n\
www IN A 192.0.2.10\nalias IN CNAME www\n\
big IN TXT \"{a}\"\nbig IN TXT \"{b}\"\nbig IN TXT \"{c}\"\n";

/// Knot DNS (Debian package knot) serving `example.test.` on a free loopback port.
fn start_knot(dir: &std::path::Path) -> (ChildGuard, SocketAddr) {
    let zone = KNOT_ZONE
        .replace("{a}", &"a".repeat(250))
        .replace("{b}", &"b".repeat(250))
        .replace("{c}", &"c".repeat(250));
    std::fs::write(dir.join("example.test.zone"), zone).unwrap();
    // Below the ephemeral range: no outgoing socket of a parallel test can take it first.
    let port = common::ports::free_port(Ipv4Addr::LOCALHOST);
    let d = dir.display();
    let conf = format!(
        "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    user: root:root\n    \
         udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         database:\n    storage: {d}/db\n\
         template:\n  - id: default\n    storage: {d}\n    file: \"%s.zone\"\n    zonefile-sync: -1\n\
         zone:\n  - domain: example.test.\n"
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    let log = std::fs::File::create(dir.join("knot.log")).unwrap();
    let child = ChildGuard(
        std::process::Command::new("knotd")
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("knotd (Debian package knot) must be installed: scripts/deps.sh installs it"),
    );
    (child, (Ipv4Addr::LOCALHOST, port).into())
}

#[tokio::test]
async fn a_real_upstream_knot_answers_through_srvd() {
    let dir = tempfile::tempdir().unwrap();
    let (_knot, knot) = start_knot(dir.path());
    // Knot answers first (asked directly), so srvd never sees it loading.
    let started = Instant::now();
    let question = query("www.example.test.", RecordType::A, None)
        .to_vec()
        .unwrap();
    while common::exchange_udp_raw(knot, &question).await.is_none() {
        let log = std::fs::read_to_string(dir.path().join("knot.log")).unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "knot never answered; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
    let server = forwarding(&[knot], |_| {}).await;
    let m = ask(&server, "alias.example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    let kinds: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(kinds, vec![RecordType::CNAME, RecordType::A]);
    let nx = ask(&server, "nope.example.test.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    let big = ask(&server, "big.example.test.", RecordType::TXT).await;
    assert_eq!(big.answers.len(), 3, "the 780-byte RRset, whole");
}
