//! Freshness: how long after etcd acknowledges a write does srvd answer with it?
//!
//! A real single-member etcd (the test harness, `tests/common/etcd.rs`: free loopback ports,
//! temp data dir, killed on drop) and an in-process srvd on `127.0.0.1:0` following
//! `/skydns` for `skydns.local.` (empty zone dir). For each of `N` changes (default 1000):
//!
//! 1. put `/skydns/local/skydns/lat/<i>` = `{"host":"10.a.b.c"}` (a unique address); `t0` is
//!    taken when etcd acknowledges the put. Then `A <i>.lat.skydns.local.` is asked over UDP in
//!    a tight loop (`POLL_US` µs, default 50, of sleep between queries; at most 2 s) until the
//!    answer holds that address: **put->answer**.
//! 2. delete that key, `t0` at the acknowledgement, query until NXDOMAIN: **delete->answer**.
//!
//! Beside srvd, a separate etcd watcher (its own client, connection and thread) on the same
//! prefix timestamps every event it receives; matched by key, that gives etcd's own
//! **put->watch event** (and delete->watch event) latency for the same writes, measured from
//! the same `t0`. An event delivered before the writer saw its acknowledgement counts as 0.
//!
//! The ratio srvd/etcd-watch tells how much srvd adds (decode, index, publish, plus one query
//! round trip and the polling granularity) on top of etcd's watch delivery, which srvd itself
//! depends on. `WARMUP` (default 20) changes are made first and not counted.
//!
//! `cargo bench --bench etcd_latency` (`N=5000 POLL_US=100 cargo bench --bench etcd_latency`).
//! Needs the `etcd` binary (package `etcd-server`). Everything stays on 127.0.0.1, every wait is
//! bounded, all times come from the monotonic clock (`Instant`). Output: a Markdown table.

#[path = "../tests/common/etcd.rs"]
mod etcd;
#[path = "../tests/common/ports.rs"]
mod ports;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use srvd::config::{Config, FileConfig};
use srvd::source::{SourceId, zonefile};
use tokio_util::sync::CancellationToken;

use etcd::EtcdCluster;

const PREFIX: &str = "/skydns/local/skydns/lat/";
const DOMAIN: &str = "skydns.local.";
/// How long one change may take to show in DNS before it counts as a timeout.
const CHANGE_DEADLINE: Duration = Duration::from_secs(2);
/// How long one UDP query waits for its reply before it is sent again.
const REPLY_TIMEOUT: Duration = Duration::from_millis(100);
/// How long srvd and the watcher may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an etcd write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The unique address of change `i` (never 10.0.0.0).
fn ip_of(i: usize) -> Ipv4Addr {
    let n = u32::try_from(i + 1).expect("change index fits in u32");
    assert!(n < 1 << 24, "too many changes for 10.0.0.0/8");
    let [_, a, b, c] = n.to_be_bytes();
    Ipv4Addr::new(10, a, b, c)
}

/// When the watcher received each key's put and delete event.
#[derive(Default, Clone, Copy)]
struct Seen {
    put: Option<Instant>,
    delete: Option<Instant>,
}

type SeenMap = Arc<Mutex<HashMap<Vec<u8>, Seen>>>;

/// Run an etcd watcher on `PREFIX` in its own thread and runtime; returns once the watch is
/// created. Stops when `stop` is cancelled.
fn start_watcher(
    endpoints: Vec<String>,
    seen: SeenMap,
    stop: CancellationToken,
) -> std::thread::JoinHandle<()> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let handle = std::thread::Builder::new()
        .name("etcd-watcher".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("watcher runtime");
            rt.block_on(async move {
                let setup = async {
                    let mut client = Client::connect(endpoints, None).await?;
                    let mut stream = client
                        .watch(PREFIX, Some(WatchOptions::new().with_prefix()))
                        .await?;
                    // The first response confirms the watch exists.
                    match stream.message().await? {
                        Some(r) if r.created() => Ok((client, stream)),
                        _ => Err(etcd_client::Error::WatchError("watch not created".into())),
                    }
                };
                let (_client, mut stream) = match tokio::time::timeout(READY_TIMEOUT, setup).await {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                    Err(_) => {
                        let _ = ready_tx.send(Err("timed out".into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let response = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = stream.message() => r,
                    };
                    let now = Instant::now();
                    let response = match response {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            eprintln!("etcd watcher: stream ended");
                            return;
                        }
                        Err(e) => {
                            eprintln!("etcd watcher: {e}");
                            return;
                        }
                    };
                    let mut seen = seen.lock().unwrap();
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        let entry = seen.entry(kv.key().to_vec()).or_default();
                        match event.event_type() {
                            EventType::Put => entry.put = entry.put.or(Some(now)),
                            EventType::Delete => entry.delete = entry.delete.or(Some(now)),
                        }
                    }
                }
            });
        })
        .expect("spawn watcher thread");
    match ready_rx.recv_timeout(READY_TIMEOUT + Duration::from_secs(1)) {
        Ok(Ok(())) => handle,
        Ok(Err(e)) => panic!("etcd watcher did not start: {e}"),
        Err(_) => panic!("etcd watcher did not start in time"),
    }
}

/// A blocking UDP DNS client that asks one question until a reply satisfies a predicate.
struct Prober {
    sock: UdpSocket,
    next_id: u16,
    poll: Duration,
    buf: Vec<u8>,
}

impl Prober {
    fn new(server: SocketAddr, poll: Duration) -> Prober {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP");
        sock.connect(server).expect("connect UDP");
        sock.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Prober {
            sock,
            next_id: 1,
            poll,
            buf: vec![0; 65535],
        }
    }

    /// Ask `A qname` until `done(reply)` or `t0 + CHANGE_DEADLINE`; returns when the first
    /// satisfying reply was received (`None`: deadline passed).
    /// Ask `A qname` until `done(reply)` or `t0 + CHANGE_DEADLINE`. Returns when the query
    /// that got the first satisfying reply was sent and when that reply was received (`None`:
    /// deadline passed).
    fn until(
        &mut self,
        qname: &Name,
        t0: Instant,
        done: impl Fn(&Message) -> bool,
    ) -> Option<(Instant, Instant)> {
        let mut query = Message::new(0, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(qname.clone(), RecordType::A));
        let mut wire = query.to_vec().expect("encode query");
        let deadline = t0 + CHANGE_DEADLINE;
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            wire[..2].copy_from_slice(&id.to_be_bytes());
            let sent = Instant::now();
            if self.sock.send(&wire).is_ok() {
                // Read until the reply to this query (older, late replies are skipped), a
                // receive timeout, or the deadline.
                while Instant::now() < deadline {
                    let Ok(n) = self.sock.recv(&mut self.buf) else {
                        break;
                    };
                    let at = Instant::now();
                    let Ok(reply) = Message::from_vec(&self.buf[..n]) else {
                        continue;
                    };
                    if reply.metadata.id != id {
                        continue;
                    }
                    if done(&reply) {
                        return Some((sent, at));
                    }
                    break;
                }
            }
            std::thread::sleep(self.poll);
        }
    }
}

fn has_a(reply: &Message, ip: Ipv4Addr) -> bool {
    reply.metadata.response_code == ResponseCode::NoError
        && reply
            .answers
            .iter()
            .any(|r| matches!(&r.data, RData::A(a) if a.0 == ip))
}

fn is_nxdomain(reply: &Message) -> bool {
    reply.metadata.response_code == ResponseCode::NXDomain
}

/// `at - t0` in seconds, negative when `at` came first.
fn signed(t0: Instant, at: Instant) -> f64 {
    match at.checked_duration_since(t0) {
        Some(d) => d.as_secs_f64(),
        None => -t0.duration_since(at).as_secs_f64(),
    }
}

/// Latencies (seconds, signed) of one kind, plus how many never showed within the deadline.
#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    missed: usize,
}

impl Series {
    fn record(&mut self, t0: Instant, at: Option<Instant>) {
        match at {
            Some(at) => self.samples.push(signed(t0, at)),
            None => self.missed += 1,
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.3} ms", v * 1e3))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        (Some(_), Some(_)) => "n/a (watch ≤ 0)".into(),
        _ => "–".into(),
    }
}

fn row(label: &str, s: &Series) -> String {
    let v = s.sorted();
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} |",
        v.len(),
        ms(pct(&v, 50.0)),
        ms(pct(&v, 90.0)),
        ms(pct(&v, 99.0)),
        ms(v.last().copied()),
        s.missed
    )
}

fn ratio_row(label: &str, srvd: &Series, watch: &Series) -> String {
    let (a, b) = (srvd.sorted(), watch.sorted());
    format!(
        "| {label} | | {} | | {} | | |",
        ratio(pct(&a, 50.0), pct(&b, 50.0)),
        ratio(pct(&a, 99.0), pct(&b, 99.0)),
    )
}

/// Put or delete with a timeout. Returns when the request was issued and when etcd's
/// acknowledgement was received.
fn write(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
    key: &str,
    value: Option<&str>,
) -> (Instant, Instant) {
    let op = async {
        match value {
            Some(v) => client.put(key, v, None).await.map(|_| ()),
            None => client.delete(key, None).await.map(|_| ()),
        }
    };
    let sent = Instant::now();
    match rt.block_on(async { tokio::time::timeout(WRITE_TIMEOUT, op).await }) {
        Ok(Ok(())) => (sent, Instant::now()),
        Ok(Err(e)) => panic!("etcd write {key}: {e}"),
        Err(_) => panic!("etcd write {key}: timed out after {WRITE_TIMEOUT:?}"),
    }
}

/// The instants of one write.
struct Write {
    /// The client call started.
    sent: Instant,
    /// etcd's acknowledgement was received.
    ack: Instant,
    /// srvd's first satisfying reply: (its query sent, reply received).
    answer: Option<(Instant, Instant)>,
    /// The watcher received the event.
    watch: Option<Instant>,
}

/// One measured change: the put and the delete of one key.
struct Change {
    key: String,
    put: Write,
    delete: Write,
}

/// Table rows for one choice of `t0` (`ack` or `sent`).
fn table(title: &str, changes: &[Change], t0: impl Fn(&Write) -> Instant) -> Vec<String> {
    let mut put_answer = Series::default();
    let mut delete_answer = Series::default();
    let mut put_watch = Series::default();
    let mut delete_watch = Series::default();
    for c in changes {
        put_answer.record(t0(&c.put), c.put.answer.map(|(_, at)| at));
        delete_answer.record(t0(&c.delete), c.delete.answer.map(|(_, at)| at));
        put_watch.record(t0(&c.put), c.put.watch);
        delete_watch.record(t0(&c.delete), c.delete.watch);
    }
    vec![
        format!("| {title} | n | p50 | p90 | p99 | max | missed (> 2 s) |"),
        "|---|---:|---:|---:|---:|---:|---:|".into(),
        row("put -> srvd answer", &put_answer),
        row("delete -> srvd NXDOMAIN", &delete_answer),
        row("put -> etcd watch event", &put_watch),
        row("delete -> etcd watch event", &delete_watch),
        ratio_row("ratio srvd / etcd watch, put", &put_answer, &put_watch),
        ratio_row(
            "ratio srvd / etcd watch, delete",
            &delete_answer,
            &delete_watch,
        ),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let n = env_usize("N", 1000);
    let warmup = env_usize("WARMUP", 20);
    let poll = Duration::from_micros(env_usize("POLL_US", 50) as u64);
    assert!(n >= 1, "N must be at least 1");

    eprintln!("starting etcd ...");
    let cluster = EtcdCluster::start(1);
    let endpoints = cluster.endpoints();

    // srvd gets a multi-thread runtime as in production; the writer and the watcher each
    // have their own, so none of them schedules the others' work.
    let srvd_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("srvd runtime");
    let zone_dir = tempfile::tempdir().expect("temp zone dir");
    let file = FileConfig {
        listen: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        http: Some("127.0.0.1:0".parse().unwrap()),
        zones: Some(zone_dir.path().to_path_buf()),
        etcd: Some(endpoints.clone()),
        domain: Some(vec![DOMAIN.to_string()]),
        ..FileConfig::default()
    };
    let etcd = file.etcd_args();
    let config = Config::from_file_config(file, etcd).expect("valid config");
    let zones =
        zonefile::load_dir(zone_dir.path(), Default::default()).expect("empty zone dir loads");
    let app = srvd_rt
        .block_on(srvd::app::start(&config, Some(zones)))
        .expect("srvd starts");
    let dns = app.dns_addrs()[0];
    let ready_by = Instant::now() + READY_TIMEOUT;
    loop {
        let snap = app.index().load();
        if snap.is_loaded(&[SourceId::Etcd]) && snap.etcd_revision >= 1 {
            break;
        }
        assert!(Instant::now() < ready_by, "srvd never loaded etcd");
        std::thread::sleep(Duration::from_millis(5));
    }

    let seen: SeenMap = Arc::default();
    let stop = CancellationToken::new();
    let watcher = start_watcher(endpoints, seen.clone(), stop.clone());

    let writer_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("writer runtime");
    let mut client = writer_rt.block_on(cluster.client());
    let mut prober = Prober::new(dns, poll);

    let mut changes: Vec<Change> = Vec::with_capacity(n);
    eprintln!("srvd on {dns}; {warmup} warm-up + {n} measured changes, polling every {poll:?} ...");
    let started = Instant::now();
    for i in 0..warmup + n {
        let key = format!("{PREFIX}{i}");
        let qname = Name::from_ascii(format!("{i}.lat.{DOMAIN}")).unwrap();
        let ip = ip_of(i);
        let value = format!(r#"{{"host":"{ip}"}}"#);

        let (sent, ack) = write(&writer_rt, &mut client, &key, Some(&value));
        let answer = prober.until(&qname, ack, |r| has_a(r, ip));
        let put = Write {
            sent,
            ack,
            answer,
            watch: None,
        };
        let (sent, ack) = write(&writer_rt, &mut client, &key, None);
        let answer = prober.until(&qname, ack, is_nxdomain);
        let delete = Write {
            sent,
            ack,
            answer,
            watch: None,
        };
        if i >= warmup {
            changes.push(Change { key, put, delete });
            let done = i + 1 - warmup;
            if done.is_multiple_of(200) {
                eprintln!("  {done}/{n}");
            }
        }
    }
    let elapsed = started.elapsed();

    // Every event should have arrived long ago (srvd saw them through its own watch); wait a
    // bounded while for stragglers, then stop the watcher.
    let wait_until = Instant::now() + CHANGE_DEADLINE;
    while Instant::now() < wait_until {
        let seen = seen.lock().unwrap();
        if changes.iter().all(|c| {
            seen.get(c.key.as_bytes())
                .is_some_and(|s| s.put.is_some() && s.delete.is_some())
        }) {
            break;
        }
        drop(seen);
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.cancel();
    watcher.join().expect("watcher thread");
    {
        let seen = seen.lock().unwrap();
        for c in &mut changes {
            let s = seen.get(c.key.as_bytes()).copied().unwrap_or_default();
            c.put.watch = s.put;
            c.delete.watch = s.delete;
        }
    }

    srvd_rt
        .block_on(app.shutdown())
        .expect("srvd shuts down cleanly");
    drop(srvd_rt);
    drop(cluster);

    // Context: the etcd write round trip, how often the watch event beat the ack, and the
    // round trip of the query that got srvd's answer (the floor of every srvd figure).
    let mut write_rtt = Series::default();
    let mut query_rtt = Series::default();
    let mut before_ack = 0;
    for w in changes.iter().flat_map(|c| [&c.put, &c.delete]) {
        write_rtt.record(w.sent, Some(w.ack));
        if let Some((q, at)) = w.answer {
            query_rtt.record(q, Some(at));
        }
        before_ack += usize::from(w.watch.is_some_and(|at| at < w.ack));
    }

    println!();
    println!(
        "srvd freshness vs etcd watch delivery: {n} puts + {n} deletes (after {warmup} warm-up), \
         1-member etcd on loopback, UDP polling every {poll:?}, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!();
    for line in table("from etcd's ack (t0 = ack received)", &changes, |w| w.ack) {
        println!("{line}");
    }
    println!();
    for line in table(
        "from the write request (t0 = put/delete issued)",
        &changes,
        |w| w.sent,
    ) {
        println!("{line}");
    }
    println!();
    println!("| context | n | p50 | p90 | p99 | max | missed |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        row("etcd write round trip (issued -> ack)", &write_rtt)
    );
    println!(
        "{}",
        row("srvd UDP query round trip (answering query)", &query_rtt)
    );
    println!();
    println!(
        "Negative figures: the watcher got the event before the writer got the ack ({before_ack} \
         of {} writes). srvd figures include one UDP query round trip and up to one polling \
         interval.",
        2 * changes.len()
    );
}
