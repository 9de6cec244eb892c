//! Hidden primary: how long after etcd acknowledges a write does a Knot secondary answer with
//! it, and what does a transfer cost?
//!
//! A real single-member etcd (`tests/common/etcd.rs`), the `srvd` binary as a child process
//! following `/skydns` for `skydns.bench.` (empty zone dir, TSIG key `xfr-key`, transfers
//! allowed to 127.0.0.0/8 with that key, NOTIFY to the secondary signed with it), and a stock
//! Knot DNS secondary of that zone (`tests/common/secondary.rs`: TSIG, IXFR whenever it holds
//! the zone). Everything on loopback.
//!
//! 1. **Preload**: `NAMES` keys `/skydns/bench/skydns/svc/k<i>` = `{"host":"10.x.y.z","port":80}`
//!    (etcd txns of 100 puts, 8 in flight), i.e. `k<i>.svc.skydns.bench.` A and SRV, plus the
//!    service aggregate at `svc.skydns.bench.` (cut at one 64 KiB answer, as srvd answers it).
//! 2. **Bootstrap**: Knot starts first (it needs no primary yet), then srvd; srvd's load time is
//!    spawn -> `/readyz` 200, bootstrap is `/readyz` -> Knot serving srvd's serial (its AXFR
//!    of the whole zone, triggered by srvd's NOTIFY once etcd is loaded).
//! 3. **AXFR** of the whole zone with `kdig` (TSIG-signed): bytes, messages, records, wall
//!    time, and srvd's memory (`/proc/<pid>/status` VmRSS; VmHWM reset through
//!    `/proc/<pid>/clear_refs` just before, so the peak after it is the transfer's peak; RSS is
//!    also sampled every 5 ms while kdig runs).
//! 4. **One-key IXFR**: with srvd at serial S, one key gets a new address; once srvd serves a
//!    newer serial, `kdig IXFR=S` shows the bytes and records of that one change, and the same
//!    IXFR is asked 5 times to time srvd's answer (kdig's own `in X ms`).
//! 5. **Latency**: `WARMUP` uncounted then `CHANGES` measured changes, one after another (each
//!    waits until Knot shows the previous one, so srvd's 250 ms NOTIFY coalescing applies as in
//!    production). Each puts `k<j>` (spread over the zone) with a never used address; `t0` is
//!    etcd's acknowledgement. Then srvd and Knot are asked `A k<j>.svc.skydns.bench.` over UDP,
//!    interleaved, every `POLL_US` µs until Knot's answer holds the new address (10 s at most,
//!    else a timeout): **put -> Knot** and, for reference, **put -> srvd**. Knot's log gives,
//!    per serial, its own refresh time (`zone updated, T seconds`: SOA query, waiting for and
//!    receiving the IXFR, applying it), the transfer's own time, bytes and messages, and
//!    whether it was an IXFR; put -> Knot minus the refresh is the time before Knot's refresh
//!    starts (srvd's coalescing, NOTIFY, Knot scheduling the refresh). Knot's log stamps are
//!    whole seconds, so only these durations (10 ms steps) are used.
//!
//! Afterwards: how many IXFRs and AXFRs Knot applied (its log) and srvd served (its
//! `srvd_transfers_total` metrics) during the latency run, and srvd's transfer metrics.
//!
//! `cargo bench --bench secondary` (`NAMES=1000 CHANGES=20 cargo bench --bench secondary`).
//! Env knobs: `NAMES` (default 100000), `CHANGES` (200), `WARMUP` (10), `POLL_US` (1000),
//! `KEEP_LOGS` (a directory to copy Knot's log, srvd's log and srvd's metrics into).
//! Needs `etcd` (package etcd-server), `knotd`/`knotc` (knot) and `kdig` (knot-dnsutils).
//! Every wait is bounded; the children (etcd, knotd, srvd, kdig) are killed on drop or
//! timeout. Durations come from the monotonic clock (`Instant`), except Knot's own figures.
//! Output: Markdown tables on stdout, progress on stderr.

#[path = "../tests/common/etcd.rs"]
mod etcd;
#[path = "../tests/common/ports.rs"]
mod ports;
#[path = "../tests/common/secondary.rs"]
mod secondary;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, Txn, TxnOp};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use etcd::EtcdCluster;
use ports::free_port;
use secondary::{Kind, Secondary, TsigKey};

const ZONE: &str = "skydns.bench.";
/// etcd key of name `k<i>` is this followed by `i`.
const KEY_PREFIX: &str = "/skydns/bench/skydns/svc/k";
const KEY_NAME: &str = "xfr-key";
/// Puts per etcd txn while preloading (etcd allows 128), and txns in flight.
const TXN_PUTS: usize = 100;
const TXNS_IN_FLIGHT: usize = 8;
/// How long the preload may take.
const PRELOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// How long srvd may take to load etcd and say ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long Knot's first transfer of the whole zone may take.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one change may take to show on Knot before it counts as a timeout.
const CHANGE_DEADLINE: Duration = Duration::from_secs(10);
/// How long srvd may take to serve a newer serial after a put.
const SERIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one UDP query waits for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_millis(100);
/// How long one etcd write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one kdig run may take.
const KDIG_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times the one-key IXFR is asked (kdig) to time srvd's answer.
const IXFR_REPEAT: usize = 5;
/// How long one HTTP request to srvd may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What `tests/common/mod.rs` gives `secondary.rs`: a question (RD set, optional EDNS).
fn query(name: &str, qtype: RecordType, edns_payload: Option<u16>) -> Message {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("valid query name"),
        qtype,
    ));
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        m.set_edns(edns);
    }
    m
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Address number `n` (1 ..= 2^24 - 1) in 10.0.0.0/8.
fn ip_from(n: usize) -> Ipv4Addr {
    let n = u32::try_from(n).expect("address number fits in u32");
    assert!((1..1 << 24).contains(&n), "address number {n} out of 10/8");
    let [_, a, b, c] = n.to_be_bytes();
    Ipv4Addr::new(10, a, b, c)
}

/// The preloaded address of key `i` (10.0.0.1 .. 10.127.255.255).
fn preload_ip(i: usize) -> Ipv4Addr {
    assert!(i + 1 < 1 << 23, "too many names for 10.0.0.0/9");
    ip_from(i + 1)
}

/// The address change `c` writes (10.128.0.1 ..): never a preloaded one, never reused.
fn change_ip(c: usize) -> Ipv4Addr {
    ip_from((1 << 23) + c + 1)
}

fn etcd_key(i: usize) -> String {
    format!("{KEY_PREFIX}{i}")
}

fn dns_name(i: usize) -> Name {
    Name::from_ascii(format!("k{i}.svc.{ZONE}")).expect("valid name")
}

fn etcd_value(ip: Ipv4Addr) -> String {
    format!(r#"{{"host":"{ip}","port":80}}"#)
}

/// The key change `c` rewrites: spread over the zone (7919 is prime).
fn changed_key(c: usize, names: usize) -> usize {
    (c * 7919 + 1) % names
}

/// Put `names` keys with txns of [`TXN_PUTS`], [`TXNS_IN_FLIGHT`] at a time.
async fn preload(client: &Client, names: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    let batches = names.div_ceil(TXN_PUTS);
    for b in 0..batches {
        while tasks.len() >= TXNS_IN_FLIGHT {
            finish_one(&mut tasks).await;
        }
        let ops: Vec<TxnOp> = (b * TXN_PUTS..names.min((b + 1) * TXN_PUTS))
            .map(|i| TxnOp::put(etcd_key(i), etcd_value(preload_ip(i)), None))
            .collect();
        let mut kv = client.kv_client();
        tasks.spawn(async move { kv.txn(Txn::new().and_then(ops)).await });
        if (b + 1).is_multiple_of(200) {
            eprintln!("  preload: {}/{names}", (b + 1) * TXN_PUTS);
        }
    }
    while !tasks.is_empty() {
        finish_one(&mut tasks).await;
    }
}

async fn finish_one<T: 'static>(tasks: &mut tokio::task::JoinSet<Result<T, etcd_client::Error>>) {
    match tasks.join_next().await {
        Some(Ok(Ok(_))) | None => {}
        Some(Ok(Err(e))) => panic!("preload txn: {e}"),
        Some(Err(e)) => panic!("preload task: {e}"),
    }
}

/// Put with a timeout; returns when etcd's acknowledgement arrived.
fn put(rt: &tokio::runtime::Runtime, client: &mut Client, key: &str, value: &str) -> Instant {
    let op = client.put(key, value, None);
    match rt.block_on(async { tokio::time::timeout(WRITE_TIMEOUT, op).await }) {
        Ok(Ok(_)) => Instant::now(),
        Ok(Err(e)) => panic!("etcd put {key}: {e}"),
        Err(_) => panic!("etcd put {key}: timed out after {WRITE_TIMEOUT:?}"),
    }
}

/// Resident memory of a process, KiB.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
}

impl Mem {
    fn read(pid: u32) -> Mem {
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Mem {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The srvd binary running as a child; killed on drop.
struct Srvd {
    child: Child,
    dns: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
    /// Zone dir, key file and log.
    _dir: tempfile::TempDir,
}

impl Srvd {
    fn start(dns: SocketAddr, etcd: &str, key: &TsigKey, secondary: SocketAddr) -> Srvd {
        let dir = tempfile::tempdir().expect("srvd temp dir");
        let zones = dir.path().join("zones");
        fs::create_dir(&zones).expect("zone dir");
        let key_file = dir.path().join("tsig.key");
        fs::write(&key_file, key.keyfile_text()).expect("write key file");
        let log = dir.path().join("srvd.log");
        let out = File::create(&log).expect("srvd log");
        let http = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), free_port(Ipv4Addr::LOCALHOST));
        let child = Command::new(env!("CARGO_BIN_EXE_srvd"))
            .arg("--zones")
            .arg(&zones)
            .args(["--listen", &dns.to_string()])
            .args(["--http", &http.to_string()])
            .args(["--etcd", etcd])
            .args(["--domain", ZONE])
            .arg("--tsig-key-file")
            .arg(&key_file)
            .args(["--allow-transfer", &format!("127.0.0.0/8,key={KEY_NAME}")])
            .args(["--notify", &format!("{secondary},key={KEY_NAME}")])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("spawn srvd");
        Srvd {
            child,
            dns,
            http,
            log,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until `/readyz` says 200 (etcd loaded); panics with the log when srvd exits or
    /// the limit passes.
    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("srvd exited ({status}); log:\n{}", self.log());
            }
            if http_get(self.http, "/readyz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "srvd not ready after {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metrics(&self) -> String {
        match http_get(self.http, "/metrics") {
            Some((200, body)) => body,
            other => panic!("srvd /metrics: {other:?}"),
        }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn mem(&self) -> Mem {
        Mem::read(self.pid())
    }

    /// Reset VmHWM to the current RSS (`clear_refs` 5); false when the kernel refuses.
    fn reset_peak(&self) -> bool {
        fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }
}

impl Drop for Srvd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0: (status, body); None when the server is not there (yet).
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).ok()?;
    conn.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(HTTP_TIMEOUT)).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// `name{labels} value` lines of a Prometheus text exposition whose name starts with one of
/// `prefixes`, as a map.
fn metric_values(text: &str, prefixes: &[&str]) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && prefixes.iter().any(|p| l.starts_with(p)))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

const XFR_METRICS: &[&str] = &[
    "srvd_transfers_total",
    "srvd_notify_",
    "srvd_zone_serial",
    "srvd_journal_versions",
];

/// What one kdig transfer received.
struct Received {
    bytes: u64,
    messages: u64,
    records: u64,
    wall: Duration,
    /// kdig's own `;; From … in X ms`: query sent -> last message received.
    query_ms: Option<f64>,
    /// Largest VmRSS of srvd sampled while kdig ran, KiB.
    peak_rss: u64,
    /// The records, when kept.
    lines: Vec<String>,
}

/// Run `kdig` for `qtype` (`AXFR` or `IXFR=<serial>`) of the zone from `server`, TSIG-signed,
/// sampling `pid`'s RSS every 5 ms while it runs.
fn kdig(server: SocketAddr, key: &TsigKey, qtype: &str, pid: u32, keep: bool) -> Received {
    let dir = tempfile::tempdir().expect("kdig temp dir");
    let out_path = dir.path().join("kdig.out");
    let out = File::create(&out_path).expect("kdig output");
    let started = Instant::now();
    let mut child = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args([ZONE, qtype])
        .args([
            "-y",
            &format!("{}:{}:{}", key.algorithm, key.name, key.secret),
        ])
        .arg("+stat")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("output handle"))
        .stderr(out)
        .spawn()
        .expect("spawn kdig (package knot-dnsutils)");
    let mut peak_rss = 0;
    let status = loop {
        peak_rss = peak_rss.max(Mem::read(pid).rss);
        if let Some(status) = child.try_wait().expect("wait for kdig") {
            break status;
        }
        if started.elapsed() > KDIG_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kdig {qtype} timed out after {KDIG_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    let text = fs::read_to_string(&out_path).expect("read kdig output");
    let stat = text
        .lines()
        .find_map(|l| l.strip_prefix(";; Received "))
        .unwrap_or_else(|| panic!("kdig {qtype} ({status}) printed no statistics:\n{text}"));
    // `N B (M messages, R records)`
    let numbers: Vec<u64> = stat
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [bytes, messages, records] = numbers[..] else {
        panic!("kdig statistics line {stat:?}");
    };
    let query_ms = text
        .lines()
        .filter(|l| l.starts_with(";; From "))
        .find_map(|l| number_before(l, " ms"));
    let lines = if keep {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    } else {
        Vec::new()
    };
    Received {
        bytes,
        messages,
        records,
        wall,
        query_ms,
        peak_rss,
        lines,
    }
}

/// A blocking UDP DNS client for one server.
struct Prober {
    sock: UdpSocket,
    next_id: u16,
    buf: Vec<u8>,
}

impl Prober {
    fn new(server: SocketAddr) -> Prober {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP");
        sock.connect(server).expect("connect UDP");
        sock.set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        Prober {
            sock,
            next_id: 1,
            buf: vec![0; 65535],
        }
    }

    /// Ask `qname`/`qtype` once (RD=0); the reply, skipping late replies to older queries.
    fn ask(&mut self, qname: &Name, qtype: RecordType) -> Option<Message> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut q = Message::new(id, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(qname.clone(), qtype));
        self.sock.send(&q.to_vec().ok()?).ok()?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        while Instant::now() < deadline {
            let n = self.sock.recv(&mut self.buf).ok()?;
            if let Ok(reply) = Message::from_vec(&self.buf[..n])
                && reply.metadata.id == id
            {
                return Some(reply);
            }
        }
        None
    }

    /// The zone's SOA serial, when the server answers it.
    fn serial(&mut self) -> Option<u32> {
        let zone = Name::from_ascii(ZONE).expect("zone name");
        let reply = self.ask(&zone, RecordType::SOA)?;
        reply.answers.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
    }

    /// Wait until the serial is newer than `old` (RFC 1982); the new serial.
    fn wait_newer(&mut self, old: u32, limit: Duration) -> Option<u32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.serial()
                && s != old
                && (s.wrapping_sub(old) as i32) > 0
            {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }
}

fn has_a(reply: &Message, ip: Ipv4Addr) -> bool {
    reply.metadata.response_code == ResponseCode::NoError
        && reply
            .answers
            .iter()
            .any(|r| matches!(&r.data, RData::A(a) if a.0 == ip))
}

/// One measured change.
struct Change {
    /// srvd's serial once it answered the change.
    serial: Option<u32>,
    /// ack -> srvd's first answer with the new address.
    srvd: Option<Duration>,
    /// ack -> Knot's first answer with the new address (None: timeout).
    knot: Option<Duration>,
}

/// Make change `c` and follow it to srvd and Knot.
fn change(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
    c: usize,
    names: usize,
    srvd: &mut Prober,
    knot: &mut Prober,
    poll: Duration,
) -> Change {
    let i = changed_key(c, names);
    let (ip, qname) = (change_ip(c), dns_name(i));
    let t0 = put(rt, client, &etcd_key(i), &etcd_value(ip));
    let deadline = t0 + CHANGE_DEADLINE;
    let (mut srvd_at, mut knot_at) = (None, None);
    // Bounded by the deadline; each round takes at least `poll`.
    while Instant::now() < deadline {
        if srvd_at.is_none()
            && srvd
                .ask(&qname, RecordType::A)
                .is_some_and(|r| has_a(&r, ip))
        {
            srvd_at = Some(t0.elapsed());
        }
        if knot_at.is_none()
            && knot
                .ask(&qname, RecordType::A)
                .is_some_and(|r| has_a(&r, ip))
        {
            knot_at = Some(t0.elapsed());
        }
        if srvd_at.is_some() && knot_at.is_some() {
            break;
        }
        std::thread::sleep(poll);
    }
    let serial = srvd_at.and_then(|_| srvd.serial());
    Change {
        serial,
        srvd: srvd_at,
        knot: knot_at,
    }
}

/// What Knot's log says about the refresh that brought one serial.
#[derive(Clone, Copy)]
struct KnotRefresh {
    /// `refresh, …, zone updated, T seconds`: SOA query, transfer and applying it.
    refresh: f64,
    /// `IXFR, incoming, …, finished, T seconds, M messages, B bytes` (AXFR when not `ixfr`).
    transfer: f64,
    messages: u64,
    bytes: u64,
    ixfr: bool,
}

/// The number before `unit` in `line` (e.g. `0.31` in `0.31 seconds`).
fn number_before(line: &str, unit: &str) -> Option<f64> {
    let head = &line[..line.find(unit)?];
    head.trim_end().rsplit([' ', ',']).next()?.parse().ok()
}

/// Knot's refreshes of the zone, by the serial they brought (Knot 3.2 debug log): each
/// `XFR, incoming, …, finished` line belongs to the next `refresh, …, zone updated, …, serial
/// A -> B` line.
fn knot_refreshes(log: &str) -> HashMap<u32, KnotRefresh> {
    let tag = format!("[{ZONE}]");
    let mut refreshes = HashMap::new();
    let mut pending: Option<KnotRefresh> = None;
    for line in log.lines().filter(|l| l.contains(&tag)) {
        if line.contains("XFR, incoming") && line.contains("finished") {
            pending = Some(KnotRefresh {
                refresh: 0.0,
                transfer: number_before(line, " seconds").unwrap_or(f64::NAN),
                messages: number_before(line, " messages").map_or(0, |v| v as u64),
                bytes: number_before(line, " bytes").map_or(0, |v| v as u64),
                ixfr: line.contains("] IXFR"),
            });
        } else if line.contains("AXFR-style IXFR") {
            pending = pending.map(|p| KnotRefresh { ixfr: false, ..p });
        } else if line.contains("refresh, ") && line.contains("zone updated") {
            let serial = line
                .rsplit_once("->")
                .and_then(|(_, s)| s.trim().split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse::<u32>().ok());
            if let (Some(serial), Some(p)) = (serial, pending.take()) {
                let refresh = number_before(line, " seconds").unwrap_or(f64::NAN);
                refreshes.insert(serial, KnotRefresh { refresh, ..p });
            }
        }
    }
    refreshes
}

/// Samples of one kind (seconds), plus how many never happened in time.
#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    missed: usize,
}

impl Series {
    fn record(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.samples.push(v),
            None => self.missed += 1,
        }
    }

    fn row(&self, label: &str) -> String {
        self.row_with(label, ms)
    }

    fn row_with(&self, label: &str, show: fn(Option<f64>) -> String) -> String {
        let mut v = self.samples.clone();
        v.sort_by(f64::total_cmp);
        format!(
            "| {label} | {} | {} | {} | {} | {} | {} |",
            v.len(),
            show(pct(&v, 50.0)),
            show(pct(&v, 90.0)),
            show(pct(&v, 99.0)),
            show(v.last().copied()),
            self.missed
        )
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
    v.map_or_else(|| "–".into(), |v| format!("{:.1} ms", v * 1e3))
}

fn count(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.0}"))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Latency table rows for the measured changes, split by what Knot's log says.
fn latency_rows(changes: &[Change], knot_log: &str) -> Vec<String> {
    let refreshes = knot_refreshes(knot_log);
    let mut srvd = Series::default();
    let mut knot = Series::default();
    let mut srvd_to_knot = Series::default();
    let mut before_refresh = Series::default();
    let mut refresh = Series::default();
    let mut transfer = Series::default();
    let mut bytes = Series::default();
    let mut messages = Series::default();
    let mut not_ixfr = 0;
    for c in changes {
        srvd.record(c.srvd.map(|d| d.as_secs_f64()));
        knot.record(c.knot.map(|d| d.as_secs_f64()));
        if let (Some(s), Some(k)) = (c.srvd, c.knot) {
            srvd_to_knot.samples.push(k.as_secs_f64() - s.as_secs_f64());
        }
        let r = c.serial.and_then(|s| refreshes.get(&s));
        refresh.record(r.map(|r| r.refresh));
        transfer.record(r.map(|r| r.transfer));
        bytes.record(r.map(|r| r.bytes as f64));
        messages.record(r.map(|r| r.messages as f64));
        not_ixfr += usize::from(r.is_some_and(|r| !r.ixfr));
        if let (Some(r), Some(k)) = (r, c.knot) {
            before_refresh.samples.push(k.as_secs_f64() - r.refresh);
        }
    }
    vec![
        "| per change (t0: etcd's ack) | n | p50 | p90 | p99 | max | missed |".into(),
        "|---|---:|---:|---:|---:|---:|---:|".into(),
        knot.row("**put -> Knot answers** (timeout 10 s)"),
        srvd.row("put -> srvd answers"),
        srvd_to_knot.row("srvd answers -> Knot answers"),
        before_refresh.row("put -> Knot starts its refresh (put->Knot minus refresh)"),
        refresh.row("Knot refresh: SOA query + IXFR + apply (Knot log, 10 ms steps)"),
        transfer.row("  of which receiving the IXFR (Knot log, 10 ms steps)"),
        bytes.row_with("IXFR bytes per change (Knot log)", count),
        messages.row_with("IXFR messages per change (Knot log)", count),
        format!(
            "| transfers Knot logged as AXFR or AXFR-style for these changes | {not_ixfr} | | | | | |"
        ),
    ]
}

/// The IXFR records, condensed: how many per (name, type), in order of first appearance.
fn ixfr_summary(lines: &[String]) -> Vec<String> {
    let mut order: Vec<(String, usize)> = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split(' ').collect();
        let key = match f.as_slice() {
            [name, _ttl, _class, rtype, ..] => format!("{name} {rtype}"),
            _ => l.clone(),
        };
        match order.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => order.push((key, 1)),
        }
    }
    order
        .into_iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect()
}

fn knot_version() -> String {
    Command::new("knotd")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let names = env_usize("NAMES", 100_000);
    let changes_n = env_usize("CHANGES", 200);
    let warmup = env_usize("WARMUP", 10);
    let poll = Duration::from_micros(env_usize("POLL_US", 1000) as u64);
    assert!(
        names >= 1 && changes_n >= 1,
        "NAMES and CHANGES must be at least 1"
    );
    let version = knot_version();
    let mut table: Vec<(String, String)> = Vec::new();
    let mut note = |k: &str, v: String| table.push((k.to_string(), v));

    eprintln!("starting etcd ...");
    let cluster = EtcdCluster::start(1);
    let endpoint = cluster.endpoints()[0].clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut client = rt.block_on(cluster.client());

    eprintln!("preloading {names} names ...");
    let started = Instant::now();
    rt.block_on(async {
        tokio::time::timeout(PRELOAD_TIMEOUT, preload(&client, names))
            .await
            .unwrap_or_else(|_| panic!("preload not done after {PRELOAD_TIMEOUT:?}"))
    });
    note("etcd preload (txns of 100 puts)", secs(started.elapsed()));

    let key = TsigKey::generate(KEY_NAME);
    let primary = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), free_port(Ipv4Addr::LOCALHOST));
    eprintln!("starting Knot (primary {primary}) ...");
    let knot = Secondary::start(Kind::Knot, &[ZONE], primary, Some(&key));
    eprintln!("starting srvd on {primary}, notifying {} ...", knot.addr());
    let started = Instant::now();
    let mut srvd = Srvd::start(primary, &endpoint, &key, knot.addr());
    srvd.wait_ready(READY_TIMEOUT);
    note("srvd load (spawn -> /readyz 200)", secs(started.elapsed()));
    let mem_ready = srvd.mem();
    let mut srvd_probe = Prober::new(srvd.dns);
    let mut knot_probe = Prober::new(knot.addr());
    let serial0 = srvd_probe.serial().expect("srvd answers its SOA");

    eprintln!("waiting for Knot's bootstrap AXFR of serial {serial0} ...");
    let started = Instant::now();
    assert!(
        knot.wait_serial(ZONE, serial0, BOOTSTRAP_TIMEOUT),
        "Knot did not reach serial {serial0} in {BOOTSTRAP_TIMEOUT:?}; log tail:\n{}",
        tail(&knot.log(), 40)
    );
    note(
        "bootstrap (/readyz -> Knot serves the serial)",
        secs(started.elapsed()),
    );
    let mem_boot = srvd.mem();
    note(
        "srvd VmRSS / VmHWM at /readyz",
        format!("{} / {}", mib(mem_ready.rss), mib(mem_ready.hwm)),
    );
    note(
        "srvd VmRSS / VmHWM after Knot's AXFR",
        format!("{} / {}", mib(mem_boot.rss), mib(mem_boot.hwm)),
    );

    eprintln!("AXFR with kdig ...");
    let reset = srvd.reset_peak();
    let before = srvd.mem();
    let axfr = kdig(srvd.dns, &key, "AXFR", srvd.pid(), false);
    let after = srvd.mem();
    note(
        "AXFR (kdig): bytes / messages / records",
        format!("{} B / {} / {}", axfr.bytes, axfr.messages, axfr.records),
    );
    note(
        "AXFR (kdig): query -> last message (kdig) / process wall time",
        format!(
            "{} / {}",
            ms(axfr.query_ms.map(|v| v / 1e3)),
            secs(axfr.wall)
        ),
    );
    note(
        "srvd VmRSS before -> after kdig AXFR",
        format!("{} -> {}", mib(before.rss), mib(after.rss)),
    );
    note(
        "srvd peak during kdig AXFR (VmHWM after reset; sampled RSS max)",
        format!(
            "{}{}; {} (+{})",
            mib(after.hwm),
            if reset { "" } else { " (HWM not reset)" },
            mib(axfr.peak_rss),
            mib(axfr.peak_rss.saturating_sub(before.rss))
        ),
    );

    eprintln!("one-key IXFR ...");
    let s1 = srvd_probe.serial().expect("srvd answers its SOA");
    // The change after the last measured one: its own key and a never used address.
    let c = warmup + changes_n;
    put(
        &rt,
        &mut client,
        &etcd_key(changed_key(c, names)),
        &etcd_value(change_ip(c)),
    );
    let s2 = srvd_probe
        .wait_newer(s1, SERIAL_TIMEOUT)
        .unwrap_or_else(|| panic!("srvd serial stayed {s1} after a put"));
    let ixfr = kdig(srvd.dns, &key, &format!("IXFR={s1}"), srvd.pid(), true);
    note(
        &format!("IXFR={s1} -> {s2}, one key (kdig): bytes / messages / records"),
        format!("{} B / {} / {}", ixfr.bytes, ixfr.messages, ixfr.records),
    );
    note(
        "IXFR contents (name type ×count)",
        ixfr_summary(&ixfr.lines).join("<br>"),
    );
    // srvd computes the difference per request: ask the same IXFR a few more times.
    let mut times: Vec<f64> = std::iter::once(ixfr.query_ms)
        .chain(
            (1..IXFR_REPEAT)
                .map(|_| kdig(srvd.dns, &key, &format!("IXFR={s1}"), srvd.pid(), false).query_ms),
        )
        .map(|t| t.expect("kdig prints its query time") / 1e3)
        .collect();
    times.sort_by(f64::total_cmp);
    note(
        &format!("same IXFR, query -> answer (kdig, {IXFR_REPEAT} runs): min / p50 / max"),
        format!(
            "{} / {} / {}",
            ms(times.first().copied()),
            ms(pct(&times, 50.0)),
            ms(times.last().copied())
        ),
    );
    assert!(
        knot.wait_serial(ZONE, s2, CHANGE_DEADLINE),
        "Knot did not follow serial {s2}; log tail:\n{}",
        tail(&knot.log(), 40)
    );

    eprintln!("{warmup} warm-up + {changes_n} measured changes, polling every {poll:?} ...");
    let mut measured = Vec::with_capacity(changes_n);
    let mut knot_before = (None, None);
    let mut metrics_before = BTreeMap::new();
    let started = Instant::now();
    for c in 0..warmup + changes_n {
        if c == warmup {
            knot_before = knot.transfers(ZONE);
            metrics_before = metric_values(&srvd.metrics(), XFR_METRICS);
        }
        let ch = change(
            &rt,
            &mut client,
            c,
            names,
            &mut srvd_probe,
            &mut knot_probe,
            poll,
        );
        if ch.knot.is_none() {
            eprintln!("  change {c}: Knot did not show it within {CHANGE_DEADLINE:?}");
            // Let Knot catch up so the next change starts clean (bounded).
            if let Some(s) = ch.serial {
                knot.wait_serial(ZONE, s, CHANGE_DEADLINE);
            }
        }
        if c >= warmup {
            measured.push(ch);
            let done = c + 1 - warmup;
            if done.is_multiple_of(50) {
                eprintln!("  {done}/{changes_n}");
            }
        }
    }
    let elapsed = started.elapsed();
    let knot_after = knot.transfers(ZONE);
    let metrics_text = srvd.metrics();
    let metrics_after = metric_values(&metrics_text, XFR_METRICS);
    let knot_log = knot.log();
    if let Ok(dir) = std::env::var("KEEP_LOGS") {
        save_logs(Path::new(&dir), &knot_log, &srvd.log(), &metrics_text);
    }

    println!();
    println!(
        "srvd as hidden primary for Knot: {version}; NAMES={names}, CHANGES={changes_n} (after \
         {warmup} warm-up), UDP polling every {poll:?}, {:.1} s of changes",
        elapsed.as_secs_f64()
    );
    println!();
    println!("| setup and transfers | value |");
    println!("|---|---|");
    for (k, v) in &table {
        println!("| {k} | {v} |");
    }
    println!();
    for line in latency_rows(&measured, &knot_log) {
        println!("{line}");
    }
    println!();
    println!("| during the measured changes | count |");
    println!("|---|---:|");
    let delta = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => "?".into(),
    };
    println!(
        "| Knot applied IXFR (its log) | {} |",
        delta(knot_before.0, knot_after.0)
    );
    println!(
        "| Knot applied AXFR (its log) | {} |",
        delta(knot_before.1, knot_after.1)
    );
    for (name, after) in &metrics_after {
        let before = metrics_before.get(name).copied().unwrap_or(0.0);
        if name.starts_with("srvd_transfers_total") || name.starts_with("srvd_notify_") {
            println!("| srvd {name} | {} |", after - before);
        }
    }
    println!();
    println!("srvd transfer metrics at the end:");
    println!();
    println!("```");
    for (name, value) in &metrics_after {
        println!("{name} {value}");
    }
    println!("```");
    let srvd_log = srvd.log();
    if !srvd_log.trim().is_empty() {
        println!();
        println!("srvd log (warn and above), last lines:");
        println!("```\n{}\n```", tail(&srvd_log, 20));
    }
}

/// Copy Knot's log, srvd's log and srvd's last metrics into `dir` (the `KEEP_LOGS` knob).
fn save_logs(dir: &Path, knot: &str, srvd: &str, metrics: &str) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("KEEP_LOGS {}: {e}", dir.display()));
    for (file, text) in [
        ("knot.log", knot),
        ("srvd.log", srvd),
        ("metrics.txt", metrics),
    ] {
        fs::write(dir.join(file), text)
            .unwrap_or_else(|e| panic!("write {}: {e}", dir.join(file).display()));
    }
    eprintln!("logs kept in {}", dir.display());
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
