//! The fixed parts of a response: the 12-byte header (RFC 1035 §4.1.1) and the OPT
//! pseudo-record (RFC 6891 §6.1.2, with an RFC 8914 extended error when there is one).

use hickory_proto::op::ResponseCode;

use super::{EDE_SIZE, Header, ResponseEdns, flags};

/// Append the OPT record (RFC 6891): payload size, extended rcode, DO bit and any EDE option.
#[inline]
pub(super) fn write_opt(buf: &mut Vec<u8>, edns: ResponseEdns, rcode: ResponseCode) {
    let rcode_high = (u16::from(rcode) >> 4) as u8;
    buf.push(0);
    buf.extend_from_slice(&41u16.to_be_bytes());
    buf.extend_from_slice(&edns.payload.to_be_bytes());
    buf.extend_from_slice(&[rcode_high, 0, if edns.dnssec_ok { 0x80 } else { 0 }, 0]);
    match edns.ede {
        Some(code) => {
            buf.extend_from_slice(&(EDE_SIZE as u16).to_be_bytes());
            buf.extend_from_slice(&15u16.to_be_bytes());
            buf.extend_from_slice(&2u16.to_be_bytes());
            buf.extend_from_slice(&code.to_be_bytes());
        }
        None => buf.extend_from_slice(&0u16.to_be_bytes()),
    }
}

pub(super) fn write_header(out: &mut [u8], header: Header, truncated: bool, counts: [u16; 4]) {
    let mut word = flags::QR | (u16::from(header.opcode & 0x0F) << 11);
    for (on, bit) in [
        (header.authoritative, flags::AA),
        (truncated, flags::TC),
        (header.recursion_desired, flags::RD),
        (header.recursion_available, flags::RA),
        (header.authentic_data, flags::AD),
        (header.checking_disabled, flags::CD),
    ] {
        if on {
            word |= bit;
        }
    }
    word |= u16::from(header.rcode) & 0x0F;
    out[0..2].copy_from_slice(&header.id.to_be_bytes());
    out[2..4].copy_from_slice(&word.to_be_bytes());
    for (i, count) in counts.iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
    }
}
