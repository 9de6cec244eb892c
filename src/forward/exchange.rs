//! One question to one upstream: over UDP from a fresh random port with a random ID and
//! random letter case in the name (DNS 0x20), retried over TCP when the reply is truncated,
//! all within a deadline. Written on tokio sockets rather than with hickory-net's client,
//! which always re-encodes queries, rewrites IDs over TCP and fails on replies it cannot
//! decode instead of letting the caller fail over; the query bytes here are ours and known,
//! which loop detection needs.

use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::op::Message;
use hickory_proto::rr::Name;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// UDP payload size advertised to upstreams.
const PAYLOAD: u16 = 1232;

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

#[derive(Debug, Error)]
pub enum ExchangeError {
    #[error("no reply in time")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unreadable reply: {0}")]
    Malformed(String),
}

/// A query as sent: its bytes, and the question section within them (for loop detection).
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub id: u16,
}

impl Outgoing {
    /// The question section (name, type, class) of the query, exactly as sent.
    pub fn question(&self) -> &[u8] {
        let end = self.bytes.len() - 11; // the OPT record closes the message
        &self.bytes[12..end]
    }
}

/// Encode the query: random ID, RD, CD as asked, the name in random letter case, EDNS with
/// DO as asked.
pub fn encode_query(q: &Question) -> Outgoing {
    let id: u16 = rand::random();
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = 0x0100 | if q.checking_disabled { 0x0010 } else { 0 };
    bytes.extend_from_slice(&flags.to_be_bytes());
    for count in [1u16, 0, 0, 1] {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    let mut case_bits: u64 = rand::random();
    for label in q.name.iter() {
        bytes.push(label.len() as u8);
        for &b in label {
            let flip = case_bits & 1 == 1;
            case_bits = case_bits.rotate_right(1);
            bytes.push(if b.is_ascii_alphabetic() && flip {
                b ^ 0x20
            } else {
                b
            });
        }
    }
    bytes.push(0);
    bytes.extend_from_slice(&q.qtype.to_be_bytes());
    bytes.extend_from_slice(&q.qclass.to_be_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&41u16.to_be_bytes());
    bytes.extend_from_slice(&PAYLOAD.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, if q.dnssec_ok { 0x80 } else { 0 }, 0]);
    bytes.extend_from_slice(&0u16.to_be_bytes());
    Outgoing { bytes, id }
}

/// Whether `reply` answers `query`: a response with its ID and its question (letter case
/// aside: some upstreams fold it).
fn answers(query: &Outgoing, reply: &[u8]) -> bool {
    let question = query.question();
    reply.len() >= 12 + question.len()
        && reply[..2] == query.id.to_be_bytes()
        && reply[2] & 0x80 != 0
        && reply[4..6] == [0, 1]
        && reply[12..12 + question.len()].eq_ignore_ascii_case(question)
}

fn decode(bytes: &[u8]) -> Result<Message, ExchangeError> {
    Message::from_vec(bytes).map_err(|e| ExchangeError::Malformed(e.to_string()))
}

async fn within<T>(
    deadline: Instant,
    f: impl std::future::Future<Output = Result<T, ExchangeError>>,
) -> Result<T, ExchangeError> {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, f)
        .await
        .unwrap_or(Err(ExchangeError::Timeout))
}

/// Ask `upstream` over UDP, then over TCP if the reply is truncated; the reply decoded.
pub async fn exchange(
    upstream: SocketAddr,
    query: &Outgoing,
    deadline: Instant,
) -> Result<Message, ExchangeError> {
    let reply = within(deadline, udp(upstream, query)).await?;
    if reply.len() > 2 && reply[2] & 0x02 != 0 {
        let reply = within(deadline, tcp(upstream, query)).await?;
        return decode(&reply);
    }
    decode(&reply)
}

async fn udp(upstream: SocketAddr, query: &Outgoing) -> Result<Vec<u8>, ExchangeError> {
    let local: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(&query.bytes).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Anything else (a late reply to someone else, spoofing) is ignored.
        if answers(query, &buf[..n]) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(upstream: SocketAddr, query: &Outgoing) -> Result<Vec<u8>, ExchangeError> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.bytes.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(query.bytes.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&query.bytes);
    stream.write_all(&out).await?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        if answers(query, &reply) {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_randomize_case_and_carry_edns() {
        let q = Question {
            name: Name::from_ascii("www.example.com.").unwrap(),
            qtype: 1,
            qclass: 1,
            dnssec_ok: true,
            checking_disabled: false,
        };
        let spellings: std::collections::HashSet<Vec<u8>> = (0..20)
            .map(|_| encode_query(&q).question().to_vec())
            .collect();
        assert!(spellings.len() > 1, "0x20: the case varies");
        let out = encode_query(&q);
        let m = Message::from_vec(&out.bytes).unwrap();
        assert!(m.metadata.recursion_desired);
        let edns = m.edns.unwrap();
        assert!(edns.flags().dnssec_ok);
        assert_eq!(
            m.queries[0].name().to_lowercase(),
            Name::from_ascii("www.example.com.").unwrap()
        );
        let mut reply = out.bytes.clone();
        reply[2] |= 0x80;
        reply[12..out.bytes.len() - 11].make_ascii_lowercase();
        assert!(
            answers(&out, &reply),
            "case folded by the upstream is accepted"
        );
        reply[0] ^= 1;
        assert!(!answers(&out, &reply), "another ID is not");
    }
}
