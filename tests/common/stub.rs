//! A small upstream DNS server for forwarding tests: UDP and TCP on one loopback port, each
//! question answered the way its [`Mode`] says, every query counted.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// How the stub answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A records `192.0.2.<n>` for every A question, with this TTL.
    Answer {
        ttl: u32,
    },
    /// NXDOMAIN with an SOA whose TTL and minimum are `negative`.
    NxDomain {
        negative: u32,
    },
    ServFail,
    Refused,
    /// Never answer.
    Silent,
    /// Over UDP: TC=1 and nothing else; over TCP: a TXT answer too large for 512 bytes.
    Truncated,
    /// Answer after a delay.
    Slow {
        delay: Duration,
    },
    /// Forward every query verbatim to this address and relay the reply (a naive forwarder,
    /// for loops).
    Relay(SocketAddr),
}

/// A running stub upstream.
pub struct Stub {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    queries: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

impl Stub {
    /// Start on `ip` (a free port when `port` is 0).
    pub async fn start_on(ip: Ipv4Addr, port: u16, mode: Mode) -> Stub {
        let (udp, tcp) = bind(ip, port).await;
        let addr = udp.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let queries = Arc::new(AtomicUsize::new(0));
        let udp = Arc::new(udp);
        let tasks = vec![
            tokio::spawn(serve_udp(udp, mode.clone(), queries.clone())),
            tokio::spawn(serve_tcp(tcp, mode.clone(), queries.clone())),
        ];
        Stub {
            addr,
            mode,
            queries,
            tasks,
        }
    }

    pub async fn start(mode: Mode) -> Stub {
        Stub::start_on(Ipv4Addr::LOCALHOST, 0, mode).await
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Queries received so far (UDP and TCP).
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

/// UDP and TCP on one port (retrying other free ports when TCP's is taken).
async fn bind(ip: Ipv4Addr, port: u16) -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((ip, port)).await.expect("stub UDP bind");
        let addr = udp.local_addr().unwrap();
        match TcpListener::bind(addr).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) if port != 0 => panic!("stub TCP bind {addr}: {e}"),
            Err(_) => continue,
        }
    }
    panic!("no free port for the stub");
}

/// Whether a query is srvd's loop probe (not counted: tests count their own questions).
fn is_probe(request: &[u8]) -> bool {
    request.len() > 13
        && request[13..]
            .to_ascii_lowercase()
            .starts_with(b"srvd-loop-probe-")
}

async fn serve_udp(socket: Arc<UdpSocket>, mode: Arc<Mutex<Mode>>, queries: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let request = buf[..n].to_vec();
        if !is_probe(&request) {
            queries.fetch_add(1, Ordering::SeqCst);
        }
        let mode = mode.lock().unwrap().clone();
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Some(reply) = reply(&request, &mode, false).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, mode: Arc<Mutex<Mode>>, queries: Arc<AtomicUsize>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let (mode, queries) = (mode.clone(), queries.clone());
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut request).await.is_err() {
                    return;
                }
                if !is_probe(&request) {
                    queries.fetch_add(1, Ordering::SeqCst);
                }
                let mode = mode.lock().unwrap().clone();
                if let Some(reply) = reply(&request, &mode, true).await {
                    let len = (reply.len() as u16).to_be_bytes();
                    let _ = stream.write_all(&len).await;
                    let _ = stream.write_all(&reply).await;
                }
            }
        });
    }
}

fn soa(negative: u32) -> Record {
    let data = SOA::new(
        name("ns.example."),
        name("hostmaster.example."),
        1,
        3600,
        600,
        86400,
        negative,
    );
    Record::from_rdata(name("example."), negative, RData::SOA(data))
}

async fn reply(request: &[u8], mode: &Mode, tcp: bool) -> Option<Vec<u8>> {
    if let Mode::Relay(to) = mode {
        return relay(request, *to).await;
    }
    let query = Message::from_vec(request).ok()?;
    let mut m = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    for q in &query.queries {
        m.add_query(q.clone());
    }
    let qname = query.queries.first()?.name().clone();
    let qtype = query.queries.first()?.query_type();
    match mode {
        Mode::Silent => return None,
        Mode::ServFail => m.metadata.response_code = ResponseCode::ServFail,
        Mode::Refused => m.metadata.response_code = ResponseCode::Refused,
        Mode::NxDomain { negative } => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa(*negative));
        }
        Mode::Truncated if !tcp => m.metadata.truncation = true,
        Mode::Truncated => {
            let text = vec!["t".repeat(200); 4];
            m.add_answer(Record::from_rdata(qname, 60, RData::TXT(TXT::new(text))));
        }
        Mode::Slow { delay } => {
            tokio::time::sleep(*delay).await;
            m.add_answer(Record::from_rdata(
                qname,
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        Mode::Answer { ttl } if qtype == RecordType::A => {
            m.add_answer(Record::from_rdata(
                qname,
                *ttl,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        Mode::Answer { .. } => {
            m.add_authority(soa(60));
        }
        Mode::Relay(_) => unreachable!("handled above"),
    }
    if query.edns.is_some() {
        let mut edns = hickory_proto::op::Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
    }
    m.to_vec().ok()
}

async fn relay(request: &[u8], to: SocketAddr) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(request, to).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}
