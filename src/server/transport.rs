//! What a transport allows: the message size limits of UDP (RFC 1035 §4.2.1, RFC 6891) and
//! TCP, in one place for every part of the server that writes replies. No I/O here.

use super::encode;
use super::request::Query;

/// UDP payload size we advertise and use at most (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;
/// UDP message size without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP: u16 = 512;

/// Which transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The size limit of a reply.
pub fn max_size(query: &Query<'_>, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => encode::MAX_MESSAGE,
        Transport::Udp => udp_size(query),
    }
}

/// The size limit of a UDP reply: the requestor's EDNS payload (at most ours), else 512.
pub fn udp_size(query: &Query<'_>) -> usize {
    match query.edns {
        Some(edns) => usize::from(edns.payload.clamp(PLAIN_UDP, EDNS_PAYLOAD)),
        None => usize::from(PLAIN_UDP),
    }
}
