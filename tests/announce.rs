//! `srvd announce` against a real etcd and a real `srvd serve` (both child processes on
//! 127.0.0.1): announce -> SRV/A answer; failing health check -> gone within interval × N;
//! recovered -> back; lease revoked or key deleted behind its back -> back; `kill -9` -> gone
//! within the lease TTL; SIGTERM -> gone at once; etcd restarted (with its data, and empty) ->
//! announcement back; `-- COMMAND` supervision; TLS + auth; bad arguments -> exit 2.
//!
//! Every transition is timed and printed as `MEASURED <what>: <ms> ms` (run with
//! `--nocapture` to see them).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::etcd::{EtcdCluster, EtcdOptions, ROOT_PASSWORD, ROOT_USER};
use etcd_client::GetOptions;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SRVD: &str = env!("CARGO_BIN_EXE_srvd");
const DOMAIN: &str = "skydns.local.";

/// A child process whose stderr is echoed (prefixed) and kept with arrival times; killed and
/// reaped when dropped.
struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Proc {
    fn spawn(name: &str, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Proc {
        let mut cmd = Command::new(SRVD);
        cmd.args(args)
            .env_remove("SRVD_ETCD")
            .env_remove("SRVD_ETCD_PASSWORD")
            .env("NO_COLOR", "1")
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let prefix = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{prefix}] {line}");
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// The first log line at or after `since` containing `needle`, waiting up to `limit`.
    async fn wait_log(&self, needle: &str, since: Instant, limit: Duration) -> (Instant, String) {
        let start = Instant::now();
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|(t, l)| *t >= since && l.contains(needle))
                .cloned();
            if let Some(found) = found {
                return found;
            }
            assert!(
                start.elapsed() < limit,
                "{}: no log line containing {needle:?} within {limit:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait up to `limit` for the exit code.
    async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} did not exit within {limit:?}", self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `srvd serve` following etcd for [`DOMAIN`]; returns it and its DNS address once its first
/// etcd snapshot is loaded.
async fn serve(endpoint: &str, cwd: &Path) -> (Proc, SocketAddr) {
    let proc = Proc::spawn(
        "serve",
        &[
            "serve",
            "--etcd",
            endpoint,
            "--domain",
            DOMAIN,
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        &[],
        cwd,
    );
    let limit = Duration::from_secs(15);
    let (_, line) = proc
        .wait_log("serving DNS", Instant::now() - limit, limit)
        .await;
    let addr = line
        .split("addr=")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    proc.wait_log("etcd snapshot loaded", Instant::now() - limit, limit)
        .await;
    (proc, addr)
}

/// `srvd announce` for `web/<id>` at `host`, port 8080, plus `extra` arguments.
fn announce(id: &str, host: &str, endpoint: &str, extra: &[&str], cwd: &Path) -> Proc {
    let mut args = vec![
        "announce", "--etcd", endpoint, "--domain", DOMAIN, "--name", "web", "--id", id, "--host",
        host, "--port", "8080",
    ];
    args.extend_from_slice(extra);
    Proc::spawn(&format!("announce {id}@{host}"), &args, &[], cwd)
}

async fn ask(dns: SocketAddr, name: &str, qtype: RecordType) -> Message {
    common::query_udp(dns, &common::query(name, qtype, None)).await
}

/// `<id>.web.<domain>` answers A `ip`.
async fn a_present(dns: SocketAddr, id: &str, ip: &str) -> bool {
    let reply = ask(dns, &format!("{id}.web.{DOMAIN}"), RecordType::A).await;
    reply
        .answers
        .iter()
        .any(|r| r.to_string().ends_with(&format!(" {ip}")))
}

/// SRV `web.<domain>` lists `<id>.web.<domain>` on port 8080.
async fn srv_present(dns: SocketAddr, id: &str) -> bool {
    let reply = ask(dns, &format!("web.{DOMAIN}"), RecordType::SRV).await;
    let target = format!(" 8080 {id}.web.{DOMAIN}");
    reply
        .answers
        .iter()
        .any(|r| r.to_string().ends_with(&target))
}

/// Poll `probe` every 10 ms until it is true; returns how long that took. Panics after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn report(what: &str, took: Duration) {
    eprintln!("MEASURED {what}: {} ms", took.as_millis());
}

/// A health endpoint answering 200 or 503 depending on the flag.
async fn health_server(healthy: Arc<AtomicBool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let healthy = healthy.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let reply: &[u8] = if healthy.load(Ordering::SeqCst) {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = stream.write_all(reply).await;
            });
        }
    });
    addr
}

/// The `(value, lease)` stored at `key`, if any.
async fn stored(cluster: &EtcdCluster, key: &str) -> Option<(String, i64)> {
    let mut client = cluster.client().await;
    let reply = tokio::time::timeout(Duration::from_secs(2), client.get(key, None))
        .await
        .ok()?
        .ok()?;
    reply
        .kvs()
        .first()
        .map(|kv| (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
}

async fn start_cluster(options: EtcdOptions) -> EtcdCluster {
    tokio::task::spawn_blocking(move || EtcdCluster::start_with(options))
        .await
        .unwrap()
}

const KEY_1: &str = "/skydns/local/skydns/web/web-1";
const KEY_2: &str = "/skydns/local/skydns/web/web-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_lease_recovery_and_etcd_restarts() {
    let mut cluster = start_cluster(EtcdOptions::default()).await;
    let endpoint = cluster.endpoint_of(0);
    let dir = tempfile::tempdir().unwrap();
    let (srvd, dns) = serve(&endpoint, dir.path()).await;

    let healthy = Arc::new(AtomicBool::new(true));
    let health = health_server(healthy.clone()).await;
    let check = format!("http://{health}/health");
    let announcer = announce(
        "web-1",
        "10.0.0.5",
        &endpoint,
        &[
            "--ttl",
            "2",
            "--priority",
            "20",
            "--check",
            &check,
            "--check-interval",
            "300ms",
            "--check-fall",
            "2",
            "--check-rise",
            "2",
        ],
        dir.path(),
    );
    let took = wait_until("announce -> SRV and A", Duration::from_secs(10), || async {
        srv_present(dns, "web-1").await && a_present(dns, "web-1", "10.0.0.5").await
    })
    .await;
    report("start announcer -> SRV+A answered", took);
    let (value, lease) = stored(&cluster, KEY_1).await.expect("key stored");
    let value: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"host": "10.0.0.5", "port": 8080, "priority": 20})
    );
    assert_ne!(lease, 0, "the key is attached to a lease");

    // Failing check: gone within interval × fall (+ slack for check time and propagation).
    healthy.store(false, Ordering::SeqCst);
    let took = wait_until("failing check -> gone", Duration::from_secs(5), || async {
        !a_present(dns, "web-1", "10.0.0.5").await
    })
    .await;
    report("health check fails -> gone (interval 300ms x fall 2)", took);
    assert!(took <= Duration::from_millis(300 * 2 + 1000), "{took:?}");
    assert!(stored(&cluster, KEY_1).await.is_none(), "key deleted");

    // Recovered check: back after `rise` passes.
    healthy.store(true, Ordering::SeqCst);
    let took = wait_until(
        "recovered check -> back",
        Duration::from_secs(5),
        || async { a_present(dns, "web-1", "10.0.0.5").await },
    )
    .await;
    report(
        "health check recovers -> back (interval 300ms x rise 2)",
        took,
    );
    assert!(took <= Duration::from_millis(300 * 2 + 1000), "{took:?}");

    // The lease revoked behind the announcer's back (as when it expired during an outage):
    // the key goes with it; the announcer grants a new lease and writes the key again.
    let (_, lease) = stored(&cluster, KEY_1).await.expect("key stored");
    let revoked = Instant::now();
    cluster.client().await.lease_revoke(lease).await.unwrap();
    let took = wait_until(
        "revoked lease -> new lease",
        Duration::from_secs(6),
        || async {
            stored(&cluster, KEY_1)
                .await
                .is_some_and(|(_, l)| l != lease && l != 0)
        },
    )
    .await;
    report(
        "lease revoked externally -> re-announced under a new lease",
        took,
    );
    wait_until(
        "revoked lease -> answered",
        Duration::from_secs(3),
        || async { a_present(dns, "web-1", "10.0.0.5").await },
    )
    .await;
    assert!(revoked.elapsed() < Duration::from_secs(4));

    // The key deleted behind its back: restored at the next keep-alive round.
    cluster.delete(KEY_1).await;
    let took = wait_until(
        "deleted key -> restored",
        Duration::from_secs(6),
        || async { stored(&cluster, KEY_1).await.is_some() },
    )
    .await;
    report("key deleted externally -> restored", took);

    // etcd restarted with its data, down for longer than the TTL: srvd keeps answering from
    // its snapshot, the announcer reconnects and keeps the lease (etcd extends leases when
    // it comes back), and the key survives well past the TTL.
    let (_, lease) = stored(&cluster, KEY_1).await.expect("key stored");
    tokio::task::block_in_place(|| cluster.kill(0));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        a_present(dns, "web-1", "10.0.0.5").await,
        "srvd serves stale"
    );
    let restarting = Instant::now();
    tokio::task::block_in_place(|| cluster.restart(0));
    let ready = Instant::now();
    let (at, _) = announcer
        .wait_log(
            "connected to etcd; lease alive",
            restarting,
            Duration::from_secs(10),
        )
        .await;
    report(
        "etcd restarted (same data, down 2.5 s): etcd spawned -> answering reads (harness)",
        ready - restarting,
    );
    report(
        "etcd restarted (same data, down 2.5 s): etcd spawned -> announcer reattached",
        at - restarting,
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, now_lease) = stored(&cluster, KEY_1)
        .await
        .expect("key survives the restart");
    assert_eq!(
        now_lease, lease,
        "the lease was kept alive across the restart"
    );
    wait_until(
        "answered after restart",
        Duration::from_secs(10),
        || async { a_present(dns, "web-1", "10.0.0.5").await },
    )
    .await;

    // etcd restarted empty (data lost): the old lease is unknown, so the announcer grants a
    // new one and writes the key again.
    tokio::task::block_in_place(|| {
        cluster.kill(0);
        std::fs::remove_dir_all(cluster.data_dir(0)).unwrap();
        cluster.restart(0);
    });
    // Measured from etcd being ready again (the announcer may even beat the harness's probe).
    let restarted = Instant::now();
    let took = wait_until(
        "empty etcd -> re-announced",
        Duration::from_secs(10),
        || async { stored(&cluster, KEY_1).await.is_some() },
    )
    .await;
    report("etcd restarted empty -> key re-created", took);
    // The running srvd notices etcd's revision went back and resyncs from a snapshot.
    wait_until(
        "answered by the same srvd after etcd lost its data",
        Duration::from_secs(15),
        || async { a_present(dns, "web-1", "10.0.0.5").await },
    )
    .await;
    report(
        "etcd restarted empty -> answered by the running srvd",
        restarted.elapsed(),
    );
    drop((srvd, announcer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_expires_with_the_lease_and_sigterm_withdraws_at_once() {
    let cluster = start_cluster(EtcdOptions::default()).await;
    let endpoint = cluster.endpoint_of(0);
    let dir = tempfile::tempdir().unwrap();
    let (_srvd, dns) = serve(&endpoint, dir.path()).await;

    let mut a1 = announce("web-1", "10.0.0.1", &endpoint, &["--ttl", "2"], dir.path());
    // The endpoint from the environment this time.
    let mut a2 = Proc::spawn(
        "announce web-2",
        &[
            "announce", "--domain", DOMAIN, "--name", "web", "--id", "web-2", "--host", "10.0.0.2",
            "--port", "8080", "--ttl", "2",
        ],
        &[("SRVD_ETCD", &endpoint)],
        dir.path(),
    );
    wait_until("both announced", Duration::from_secs(10), || async {
        srv_present(dns, "web-1").await && srv_present(dns, "web-2").await
    })
    .await;
    let reply = ask(dns, &format!("web.{DOMAIN}"), RecordType::A).await;
    assert_eq!(reply.answers.len(), 2, "{:?}", reply.answers);

    // kill -9: nothing withdraws, the lease expires.
    let granted = {
        let (_, lease) = stored(&cluster, KEY_1).await.unwrap();
        let mut c = cluster.client().await;
        c.lease_time_to_live(lease, None)
            .await
            .unwrap()
            .granted_ttl()
    };
    a1.child.kill().unwrap();
    let killed = Instant::now();
    let _ = a1.child.wait();
    let took = wait_until("kill -9 -> gone", Duration::from_secs(10), || async {
        !a_present(dns, "web-1", "10.0.0.1").await
    })
    .await;
    report(
        &format!("announcer kill -9 -> gone (lease TTL {granted} s)"),
        took,
    );
    assert!(
        killed.elapsed() <= Duration::from_millis(granted as u64 * 1000 + 1500),
        "{took:?}"
    );
    assert!(srv_present(dns, "web-2").await, "web-2 unaffected");

    // Frozen (SIGSTOP: a long pause or a partition) for longer than the TTL: the lease
    // expires and the record goes; on SIGCONT the announcer finds its lease gone, grants a new
    // one and announces again.
    let (_, old_lease) = stored(&cluster, KEY_2).await.unwrap();
    a2.signal("-STOP");
    let took = wait_until("frozen -> gone", Duration::from_secs(10), || async {
        !a_present(dns, "web-2", "10.0.0.2").await
    })
    .await;
    report("announcer frozen (SIGSTOP) -> gone (lease TTL 2 s)", took);
    a2.signal("-CONT");
    let took = wait_until("resumed -> back", Duration::from_secs(10), || async {
        a_present(dns, "web-2", "10.0.0.2").await
    })
    .await;
    report("announcer resumed after its lease expired -> back", took);
    let (_, new_lease) = stored(&cluster, KEY_2).await.unwrap();
    assert_ne!(new_lease, old_lease, "a new lease was granted");

    // SIGTERM: key deleted and lease revoked before exiting.
    a2.signal("-TERM");
    let took = wait_until("SIGTERM -> gone", Duration::from_secs(5), || async {
        !a_present(dns, "web-2", "10.0.0.2").await
    })
    .await;
    report("announcer SIGTERM -> gone", took);
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(a2.wait_exit(Duration::from_secs(5)).await, Some(0));
    a2.wait_log(
        "withdrawn: key deleted and lease revoked",
        killed,
        Duration::from_secs(1),
    )
    .await;
    let leases = cluster.client().await.leases().await.unwrap();
    assert!(leases.leases().is_empty(), "every lease is gone");
    let mut client = cluster.client().await;
    let left = client
        .get("/skydns/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(left.kvs().is_empty(), "no key left");
}

fn have_etcdctl() -> bool {
    Command::new("etcdctl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_is_announced_once_healthy_and_withdrawn_before_its_signal() {
    let cluster = start_cluster(EtcdOptions::default()).await;
    let endpoint = cluster.endpoint_of(0);
    let dir = tempfile::tempdir().unwrap();
    let (_srvd, dns) = serve(&endpoint, dir.path()).await;
    let d = dir.path().display();

    // The service becomes ready after 0.6 s; on SIGTERM it records what etcd holds at that
    // moment and exits 7.
    let etcdctl = have_etcdctl();
    let on_term = if etcdctl {
        format!("ETCDCTL_API=3 etcdctl --endpoints={endpoint} get {KEY_1} > {d}/at-term; exit 7")
    } else {
        format!("echo skipped > {d}/at-term; exit 7")
    };
    let script =
        format!("trap '{on_term}' TERM; sleep 0.6; touch {d}/ready; while :; do sleep 0.05; done");
    let check = format!("exec:test -f {d}/ready");
    let mut announcer = announce(
        "web-1",
        "10.0.0.7",
        &endpoint,
        &[
            "--ttl",
            "3",
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--",
            "sh",
            "-c",
            &script,
        ],
        dir.path(),
    );
    let took = wait_until(
        "child ready -> announced",
        Duration::from_secs(10),
        || async { a_present(dns, "web-1", "10.0.0.7").await },
    )
    .await;
    report("child started -> announced (ready after 600 ms)", took);
    assert!(
        took >= Duration::from_millis(600),
        "announced before the check passed"
    );

    announcer.signal("-TERM");
    let took = wait_until("SIGTERM -> gone", Duration::from_secs(5), || async {
        !a_present(dns, "web-1", "10.0.0.7").await
    })
    .await;
    report("SIGTERM with child -> gone", took);
    assert_eq!(
        announcer.wait_exit(Duration::from_secs(10)).await,
        Some(7),
        "exits with the child's status"
    );
    let at_term = std::fs::read_to_string(dir.path().join("at-term")).unwrap();
    if etcdctl {
        assert_eq!(at_term, "", "the key was gone before the child got SIGTERM");
    } else {
        eprintln!("etcdctl not found: ordering not checked");
    }

    // A service that exits by itself: withdrawn, and srvd exits with its status.
    let mut announcer = announce(
        "web-2",
        "10.0.0.8",
        &endpoint,
        &["--", "sh", "-c", "sleep 1.5; exit 3"],
        dir.path(),
    );
    wait_until("announced", Duration::from_secs(10), || async {
        a_present(dns, "web-2", "10.0.0.8").await
    })
    .await;
    let (exited, _) = announcer
        .wait_log(
            "the service exited",
            Instant::now(),
            Duration::from_secs(10),
        )
        .await;
    let took = wait_until("child exit -> gone", Duration::from_secs(5), || async {
        !a_present(dns, "web-2", "10.0.0.8").await
    })
    .await;
    let _ = took;
    report("child exits by itself -> gone", exited.elapsed());
    assert_eq!(announcer.wait_exit(Duration::from_secs(5)).await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_auth_options_as_for_serve() {
    let cluster = start_cluster(EtcdOptions {
        members: 1,
        tls: true,
        auth: true,
    })
    .await;
    let endpoint = cluster.endpoint_of(0);
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{ROOT_PASSWORD}\n")).unwrap();
    let (ca, cert, key) = (
        cluster.ca_path().display().to_string(),
        cluster.client_cert_path().display().to_string(),
        cluster.client_key_path().display().to_string(),
    );
    let pw = password.display().to_string();
    let mut announcer = announce(
        "web-1",
        "10.0.0.9",
        &endpoint,
        &[
            "--etcd-ca",
            &ca,
            "--etcd-cert",
            &cert,
            "--etcd-key",
            &key,
            "--etcd-user",
            ROOT_USER,
            "--etcd-password-file",
            &pw,
        ],
        dir.path(),
    );
    let took = wait_until(
        "announced over TLS + auth",
        Duration::from_secs(10),
        || async { stored(&cluster, KEY_1).await.is_some() },
    )
    .await;
    report("TLS + auth: start -> key stored", took);
    announcer.signal("-INT");
    assert_eq!(announcer.wait_exit(Duration::from_secs(5)).await, Some(0));
    assert!(
        stored(&cluster, KEY_1).await.is_none(),
        "withdrawn on SIGINT"
    );

    // The password from the environment works too.
    let announcer = Proc::spawn(
        "announce env-password",
        &[
            "announce",
            "--etcd",
            &endpoint,
            "--domain",
            DOMAIN,
            "--name",
            "web",
            "--id",
            "web-1",
            "--host",
            "10.0.0.9",
            "--port",
            "8080",
            "--etcd-ca",
            &ca,
            "--etcd-cert",
            &cert,
            "--etcd-key",
            &key,
            "--etcd-user",
            ROOT_USER,
        ],
        &[("SRVD_ETCD_PASSWORD", ROOT_PASSWORD)],
        dir.path(),
    );
    wait_until(
        "announced with SRVD_ETCD_PASSWORD",
        Duration::from_secs(10),
        || async { stored(&cluster, KEY_1).await.is_some() },
    )
    .await;
    drop(announcer);
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "announce",
        "--etcd",
        "http://127.0.0.1:1",
        "--domain",
        DOMAIN,
        "--name",
        "web",
        "--id",
        "web-1",
        "--port",
        "8080",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--host", "10.0.0.300"], "--host"),
        (&["--host", "2001:db8::zz"], "--host"),
        (&["--host", "bad host"], "--host"),
        (&["--host", "10.0.0.5", "--name", "we b"], "--name"),
        (&["--host", "10.0.0.5", "--name", "web.prod"], "--name"),
        (&["--host", "10.0.0.5", "--id=-1"], "--id"),
        (&["--host", "10.0.0.5", "--domain", "a..b"], "--domain"),
        (&["--host", "10.0.0.5", "--ttl", "0"], "--ttl"),
        (&["--host", "10.0.0.5", "--check", "ftp://x"], "--check"),
        (&["--host", "10.0.0.5", "--check", "tcp:nohost"], "--check"),
        (
            &["--host", "10.0.0.5", "--check-interval", "2x"],
            "--check-interval",
        ),
        (
            &["--host", "10.0.0.5", "--etcd-cert", "/nonexistent"],
            "--etcd-cert",
        ),
        (&["--host", "10.0.0.5", "--etcd-user", "u"], "--etcd-user"),
    ];
    for (extra, flag) in cases {
        let out = Command::new(SRVD)
            .args(base)
            .args(*extra)
            .env_remove("SRVD_ETCD")
            .env_remove("SRVD_ETCD_PASSWORD")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(flag), "{extra:?}: message lacks {flag}: {err}");
    }
    // The port is range-checked by the parser, with the same exit code.
    let mut args: Vec<&str> = base.to_vec();
    let at = args.iter().position(|a| *a == "8080").unwrap();
    args[at] = "70000";
    let out = Command::new(SRVD)
        .args(&args)
        .args(["--host", "10.0.0.5"])
        .env_remove("SRVD_ETCD")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--port"), "{err}");
    // No endpoint at all.
    let out = Command::new(SRVD)
        .args([
            "announce", "--domain", DOMAIN, "--name", "web", "--id", "a", "--host", "10.0.0.5",
            "--port", "1",
        ])
        .env_remove("SRVD_ETCD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--etcd"));
}
