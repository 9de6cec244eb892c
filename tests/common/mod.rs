//! Shared test helpers: an in-process srvd on port 0 over temp zone files, and a tiny DNS
//! client (UDP and TCP) built on hickory-proto.
#![allow(dead_code)]

pub mod etcd;
pub mod ports;
pub mod secondary;
pub mod stub;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use srvd::app::{RunningApp, start};
use srvd::config::{Config, FileConfig};
use srvd::source::zonefile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A running in-process server and its zone directory.
pub struct TestServer {
    pub app: RunningApp,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

pub fn write_zones(dir: &Path, zones: &[(&str, &str)]) {
    for (file, text) in zones {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

pub fn test_config(zones: PathBuf) -> Config {
    let file = FileConfig {
        listen: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        http: Some("127.0.0.1:0".parse().unwrap()),
        zones: Some(zones),
        ..FileConfig::default()
    };
    let etcd = file.etcd_args();
    Config::from_file_config(file, etcd).unwrap()
}

impl TestServer {
    /// Start srvd serving the given zone files (`(file name, text)`).
    pub async fn start(zones: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_zones(dir.path(), zones);
        let config = test_config(dir.path().to_path_buf());
        let set = zonefile::load_dir(dir.path(), Default::default()).expect("test zones load");
        let app = start(&config, Some(set)).await.expect("srvd starts");
        let addr = app.dns_addrs()[0];
        TestServer { app, dir, addr }
    }

    /// Start srvd serving the given zone files, its configuration adjusted by `tweak`.
    pub async fn start_with(
        zones: &[(&str, &str)],
        tweak: impl FnOnce(&mut FileConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_zones(dir.path(), zones);
        let mut file = FileConfig {
            listen: Some(vec!["127.0.0.1:0".parse().unwrap()]),
            http: Some("127.0.0.1:0".parse().unwrap()),
            zones: Some(dir.path().to_path_buf()),
            ..FileConfig::default()
        };
        tweak(&mut file);
        let etcd = file.etcd_args();
        let config = Config::from_file_config(file, etcd).expect("valid test config");
        let set = zonefile::load_dir(dir.path(), Default::default()).expect("test zones load");
        let app = start(&config, Some(set)).await.expect("srvd starts");
        let addr = app.dns_addrs()[0];
        TestServer { app, dir, addr }
    }

    /// The current /metrics text.
    pub async fn metrics(&self) -> String {
        let http = self.app.http_addr();
        tokio::task::spawn_blocking(move || http_get(http, "/metrics"))
            .await
            .unwrap()
    }

    /// Start srvd following etcd at `endpoints` for `domains` (plus the given zone files), and
    /// wait until the first etcd snapshot is served.
    pub async fn start_etcd(
        zones: &[(&str, &str)],
        endpoints: Vec<String>,
        domains: &[&str],
        tweak: impl FnOnce(&mut FileConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_zones(dir.path(), zones);
        let mut file = FileConfig {
            listen: Some(vec!["127.0.0.1:0".parse().unwrap()]),
            http: Some("127.0.0.1:0".parse().unwrap()),
            zones: Some(dir.path().to_path_buf()),
            etcd: Some(endpoints),
            domain: Some(domains.iter().map(|d| d.to_string()).collect()),
            ..FileConfig::default()
        };
        tweak(&mut file);
        let etcd = file.etcd_args();
        let config = Config::from_file_config(file, etcd).expect("valid test config");
        let set = zonefile::load_dir(dir.path(), Default::default()).expect("test zones load");
        let app = start(&config, Some(set)).await.expect("srvd starts");
        let addr = app.dns_addrs()[0];
        let server = TestServer { app, dir, addr };
        server.wait_revision(1).await;
        server
    }

    /// Wait (up to 20 s) until the served snapshot has applied etcd revision `revision`.
    pub async fn wait_revision(&self, revision: i64) {
        let start = std::time::Instant::now();
        loop {
            let snap = self.app.index().load();
            if snap.is_loaded(&[srvd::source::SourceId::Etcd]) && snap.etcd_revision >= revision {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "srvd never reached etcd revision {revision} (at {})",
                snap.etcd_revision
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn udp(&self, name: &str, qtype: RecordType) -> Message {
        query_udp(self.addr, &query(name, qtype, Some(1232))).await
    }

    pub async fn tcp(&self, name: &str, qtype: RecordType) -> Message {
        query_tcp(self.addr, &query(name, qtype, None)).await
    }
}

/// A query message with id 4242 and, optionally, EDNS with this payload size.
pub fn query(name: &str, qtype: RecordType, edns_payload: Option<u16>) -> Message {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        m.set_edns(edns);
    }
    m
}

/// Send raw bytes over UDP and return the raw reply.
pub async fn exchange_udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn query_udp(addr: SocketAddr, message: &Message) -> Message {
    let reply = exchange_udp_raw(addr, &message.to_vec().unwrap())
        .await
        .expect("UDP reply");
    Message::from_vec(&reply).expect("reply decodes")
}

/// Write one length-prefixed message on a TCP stream.
pub async fn tcp_send(stream: &mut TcpStream, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(bytes).await.unwrap();
}

/// Read one length-prefixed message from a TCP stream (None on EOF or timeout).
pub async fn tcp_recv(stream: &mut TcpStream) -> Option<Message> {
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await.ok()?;
        Message::from_vec(&buf).ok()
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
}

pub async fn query_tcp(addr: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    tcp_send(&mut stream, &message.to_vec().unwrap()).await;
    tcp_recv(&mut stream).await.expect("TCP reply")
}

/// Records rendered as `name TTL IN TYPE rdata`, sorted (order within a section is not
/// significant in DNS).
pub fn render(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    out.sort();
    out
}

/// One table-driven answer case, CoreDNS style.
pub struct Case {
    pub name: &'static str,
    pub qname: &'static str,
    pub qtype: RecordType,
    pub rcode: ResponseCode,
    pub answer: &'static [&'static str],
    pub authority: &'static [&'static str],
    pub additional: &'static [&'static str],
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// Check a reply against a case; returns a description of every mismatch.
pub fn check(case: &Case, reply: &Message) -> Vec<String> {
    let mut problems = Vec::new();
    if reply.metadata.response_code != case.rcode {
        problems.push(format!(
            "rcode: got {:?}, want {:?}",
            reply.metadata.response_code, case.rcode
        ));
    }
    for (section, got, want) in [
        ("answer", &reply.answers, case.answer),
        ("authority", &reply.authorities, case.authority),
        ("additional", &reply.additionals, case.additional),
    ] {
        let got = render(got);
        let want = sorted(want);
        if got != want {
            problems.push(format!("{section}:\n  got  {got:#?}\n  want {want:#?}"));
        }
    }
    problems
}

/// Run every case over UDP and fail listing every mismatching case.
pub async fn run_cases(server: &TestServer, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let reply = server.udp(case.qname, case.qtype).await;
        let problems = check(case, &reply);
        if !problems.is_empty() {
            failures.push(format!(
                "case {:?} ({} {}):\n{}",
                case.name,
                case.qname,
                case.qtype,
                problems.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A blocking HTTP/1.1 GET; returns the whole response (status line, headers, body).
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: srvd\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The srvd binary under test.
pub const SRVD: &str = env!("CARGO_BIN_EXE_srvd");

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing behind.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Send a signal (`-TERM`, `-STOP`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Wait up to `limit` for the exit code (None: still running, then killed).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        None
    }
}

/// Start the srvd binary with `args` (plus port-0 listen/http) in `cwd`, and read the bound DNS
/// and HTTP addresses from its log.
pub fn spawn_srvd(args: &[&str], cwd: &Path) -> (ChildGuard, SocketAddr, SocketAddr) {
    let (child, dns, http, _) = spawn_srvd_logged(args, cwd);
    (child, dns, http)
}

/// Everything a spawned srvd has logged so far (it is also echoed to the test's stderr).
#[derive(Clone, Default)]
pub struct SrvdLog(std::sync::Arc<std::sync::Mutex<String>>);

impl SrvdLog {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Wait up to `limit` until a logged line contains every one of `parts`.
    pub fn wait_for(&self, parts: &[&str], limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self
                .text()
                .lines()
                .any(|l| parts.iter().all(|p| l.contains(p)))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
        false
    }
}

/// [`spawn_srvd`], keeping what srvd logs.
pub fn spawn_srvd_logged(
    args: &[&str],
    cwd: &Path,
) -> (ChildGuard, SocketAddr, SocketAddr, SrvdLog) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = ChildGuard(
        Command::new(SRVD)
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let log = SrvdLog::default();
    let (mut dns, mut http) = (None, None);
    while dns.is_none() || http.is_none() {
        let Some(Ok(line)) = lines.next() else {
            panic!("srvd exited before logging its addresses:\n{}", log.text());
        };
        log.0.lock().unwrap().push_str(&format!("{line}\n"));
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|a| a.trim().parse::<SocketAddr>().ok());
        if line.contains("serving DNS") {
            dns = addr;
        } else if line.contains("serving /metrics") {
            http = addr;
        }
    }
    // Keep draining (and echo, to help debugging failed tests).
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("srvd: {line}");
            keep.0.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (child, dns.unwrap(), http.unwrap(), log)
}
