//! Freshness and fault tolerance against real etcd: propagation of puts, deletes and lease
//! expiry; etcd killed and restarted while queries run; compaction while srvd is behind; a
//! member of a 3-member cluster killed; and a randomized run with restarts and compactions
//! whose final answers must equal etcd's contents.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::etcd::EtcdCluster;
use common::{TestServer, exchange_udp_raw, query, render};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const DOMAIN: &str = "skydns.local.";

async fn start_cluster(members: usize) -> EtcdCluster {
    tokio::task::spawn_blocking(move || EtcdCluster::start(members))
        .await
        .unwrap()
}

async fn a_records(addr: SocketAddr, name: &str) -> (ResponseCode, Vec<String>) {
    let reply = common::query_udp(addr, &query(name, RecordType::A, None)).await;
    let ips = reply
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect::<Vec<_>>();
    (reply.metadata.response_code, ips)
}

/// Poll until `check` holds for the A answer of `name` (at most `limit`); returns the time.
async fn until(
    addr: SocketAddr,
    name: &str,
    limit: Duration,
    check: impl Fn(ResponseCode, &[String]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let (rcode, ips) = a_records(addr, name).await;
        if check(rcode, &ips) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{name}: condition not met within {limit:?}; last {rcode:?} {ips:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Queries `stable.skydns.local. A` every 5 ms until stopped; counts answers that are missing,
/// late (>1 s) or wrong.
struct QueryLoad {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl QueryLoad {
    fn start(addr: SocketAddr) -> QueryLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, n, f) = (stop.clone(), sent.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let q = query("stable.skydns.local.", RecordType::A, None)
                .to_vec()
                .unwrap();
            // Bounded: at most 10 minutes' worth of queries.
            for _ in 0..120_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                n.fetch_add(1, Ordering::Relaxed);
                let ok = match exchange_udp_raw(addr, &q).await {
                    Some(raw) => Message::from_vec(&raw).is_ok_and(|m| {
                        m.metadata.response_code == ResponseCode::NoError
                            && render(&m.answers) == vec!["stable.skydns.local. 5 IN A 10.1.1.1"]
                    }),
                    None => false,
                };
                if !ok {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        QueryLoad {
            stop,
            sent,
            failed,
            task,
        }
    }

    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_delete_and_lease_expiry_propagate() {
    let cluster = start_cluster(1).await;
    let server = TestServer::start_etcd(&[], cluster.endpoints(), &[DOMAIN], |_| {}).await;
    let name = "p.skydns.local.";

    cluster
        .put("/skydns/local/skydns/p", r#"{"host":"10.2.0.1"}"#)
        .await;
    let put = until(server.addr, name, Duration::from_secs(2), |_, ips| {
        ips == ["10.2.0.1"]
    })
    .await;
    cluster
        .put("/skydns/local/skydns/p", r#"{"host":"10.2.0.2"}"#)
        .await;
    let update = until(server.addr, name, Duration::from_secs(2), |_, ips| {
        ips == ["10.2.0.2"]
    })
    .await;
    cluster.delete("/skydns/local/skydns/p").await;
    let delete = until(server.addr, name, Duration::from_secs(2), |rc, _| {
        rc == ResponseCode::NXDomain
    })
    .await;
    eprintln!("put visible after {put:?}, update after {update:?}, delete after {delete:?}");

    // A leased key disappears when the lease expires (TTL 2 s, never kept alive).
    cluster
        .put_with_lease("/skydns/local/skydns/leased", r#"{"host":"10.2.0.3"}"#, 2)
        .await;
    until(
        server.addr,
        "leased.skydns.local.",
        Duration::from_secs(2),
        |_, ips| ips == ["10.2.0.3"],
    )
    .await;
    let reply = common::query_udp(
        server.addr,
        &query("leased.skydns.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(reply.answers[0].ttl, 2, "TTL capped by the lease");
    let expiry = until(
        server.addr,
        "leased.skydns.local.",
        Duration::from_secs(10),
        |rc, _| rc == ResponseCode::NXDomain,
    )
    .await;
    eprintln!("leased record gone {expiry:?} after it first appeared");
    server.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_kill_9_and_restart_while_queries_run() {
    let mut cluster = start_cluster(1).await;
    cluster
        .put("/skydns/local/skydns/stable", r#"{"host":"10.1.1.1"}"#)
        .await;
    let server = TestServer::start_etcd(&[], cluster.endpoints(), &[DOMAIN], |_| {}).await;
    let load = QueryLoad::start(server.addr);
    tokio::time::sleep(Duration::from_millis(300)).await;

    tokio::task::block_in_place(|| cluster.kill(0));
    // srvd notices (the connection drops) and keeps serving, ready, from its snapshot.
    let http = server.app.http_addr();
    let noticed = Instant::now();
    loop {
        let ready = tokio::task::spawn_blocking(move || common::http_get(http, "/readyz"))
            .await
            .unwrap();
        if ready.contains("etcd_connected=false") {
            assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
            break;
        }
        assert!(
            noticed.elapsed() < Duration::from_secs(10),
            "etcd down 10 s, /readyz still says: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
    // An outage of a few seconds while the queries keep running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| cluster.restart(0));

    let revision = cluster
        .put("/skydns/local/skydns/after", r#"{"host":"10.1.1.2"}"#)
        .await;
    let converged = until(
        server.addr,
        "after.skydns.local.",
        Duration::from_secs(10),
        |_, ips| ips == ["10.1.1.2"],
    )
    .await;
    server.wait_revision(revision).await;
    let (sent, failed) = load.finish().await;
    eprintln!(
        "converged {converged:?} after restart; {sent} queries during the outage, {failed} failed"
    );
    assert_eq!(failed, 0, "queries failed while etcd was down");
    assert!(sent > 100);
    server.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_srvd_is_behind_resyncs_to_etcds_state() {
    let mut cluster = start_cluster(1).await;
    cluster
        .put("/skydns/local/skydns/stable", r#"{"host":"10.1.1.1"}"#)
        .await;
    cluster
        .put("/skydns/local/skydns/old", r#"{"host":"10.3.0.1"}"#)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    let endpoints = cluster.endpoints().join(",");
    let (child, dns, http) = common::spawn_srvd(
        &["--zones", "zones", "--etcd", &endpoints, "--domain", DOMAIN],
        dir.path(),
    );
    until(
        dns,
        "old.skydns.local.",
        Duration::from_secs(10),
        |_, ips| ips == ["10.3.0.1"],
    )
    .await;

    // Freeze srvd, take its etcd away and bring it back, change things and compact the
    // history srvd would resume from; then let srvd go on.
    child.signal("-STOP");
    tokio::task::block_in_place(|| {
        cluster.kill(0);
        cluster.restart(0);
    });
    cluster.delete("/skydns/local/skydns/old").await;
    for i in 0..20 {
        cluster
            .put(
                &format!("/skydns/local/skydns/new/{i}"),
                &format!(r#"{{"host":"10.3.1.{i}"}}"#),
            )
            .await;
    }
    let revision = cluster.revision().await;
    cluster.compact(revision).await;
    child.signal("-CONT");

    until(
        dns,
        "old.skydns.local.",
        Duration::from_secs(15),
        |rc, _| rc == ResponseCode::NXDomain,
    )
    .await;
    until(
        dns,
        "new.skydns.local.",
        Duration::from_secs(15),
        |_, ips| ips.len() == 20,
    )
    .await;
    let metrics = tokio::task::spawn_blocking(move || common::http_get(http, "/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains("srvd_etcd_resyncs_total 2"),
        "expected a resync:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!("srvd_etcd_revision {revision}")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_members_killed_no_failed_queries() {
    let mut cluster = start_cluster(3).await;
    cluster
        .put("/skydns/local/skydns/stable", r#"{"host":"10.1.1.1"}"#)
        .await;
    let server = TestServer::start_etcd(&[], cluster.endpoints(), &[DOMAIN], |_| {}).await;
    let load = QueryLoad::start(server.addr);
    let leader = cluster.leader().await;
    for victim in [leader, (leader + 1) % 3] {
        tokio::task::block_in_place(|| cluster.kill(victim));
        let key = format!("/skydns/local/skydns/m{victim}");
        cluster.put(&key, r#"{"host":"10.4.0.1"}"#).await;
        let took = until(
            server.addr,
            &format!("m{victim}.skydns.local."),
            Duration::from_secs(15),
            |_, ips| ips == ["10.4.0.1"],
        )
        .await;
        eprintln!("member {victim} killed: change visible after {took:?}");
        tokio::task::block_in_place(|| cluster.restart(victim));
    }
    let (sent, failed) = load.finish().await;
    eprintln!("{sent} queries, {failed} failed");
    assert_eq!(failed, 0);
    server.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_changes_with_restarts_and_compactions_end_equal_to_etcd() {
    use rand::{Rng, SeedableRng};
    let mut cluster = start_cluster(1).await;
    let server = TestServer::start_etcd(&[], cluster.endpoints(), &[DOMAIN], |_| {}).await;
    let seed: u64 = std::env::var("SRVD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (SRVD_TEST_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    const KEYS: usize = 200;
    const OPS: usize = 3000;
    for op in 0..OPS {
        let k = rng.random_range(0..KEYS);
        let key = format!("/skydns/local/skydns/rnd/k{k}");
        if rng.random_bool(0.65) {
            let ip = format!(
                "10.5.{}.{}",
                rng.random_range(0..256),
                rng.random_range(1..255)
            );
            cluster.put(&key, &format!(r#"{{"host":"{ip}"}}"#)).await;
        } else {
            cluster.delete(&key).await;
        }
        if op % 750 == 374 {
            tokio::task::block_in_place(|| {
                cluster.kill(0);
                cluster.restart(0);
            });
        } else if op % 750 == 749 {
            let revision = cluster.revision().await;
            cluster.compact(revision).await;
        }
    }
    let revision = cluster.revision().await;
    server.wait_revision(revision).await;

    let want: BTreeMap<String, String> = cluster
        .get_prefix("/skydns/local/skydns/rnd/")
        .await
        .into_iter()
        .map(|(k, v)| {
            let ip = serde_json::from_str::<serde_json::Value>(&v).unwrap()["host"]
                .as_str()
                .unwrap()
                .to_string();
            (k, ip)
        })
        .collect();
    let mut mismatches = Vec::new();
    for k in 0..KEYS {
        let key = format!("/skydns/local/skydns/rnd/k{k}");
        let name = format!("k{k}.rnd.skydns.local.");
        let (rcode, ips) = a_records(server.addr, &name).await;
        let ok = match want.get(&key) {
            Some(ip) => rcode == ResponseCode::NoError && ips == [ip.clone()],
            None => rcode == ResponseCode::NXDomain,
        };
        if !ok {
            mismatches.push(format!(
                "{key}: etcd {:?}, srvd {rcode:?} {ips:?}",
                want.get(&key)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "seed {seed}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The subtree answer (over TCP: it is larger than 512 bytes) lists exactly etcd's distinct
    // addresses.
    let reply = common::query_tcp(
        server.addr,
        &query("rnd.skydns.local.", RecordType::A, None),
    )
    .await;
    let mut all: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
    all.sort();
    let mut distinct: Vec<String> = want.values().cloned().collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(all, distinct);
    server.app.shutdown().await.unwrap();
}
