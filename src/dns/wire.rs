//! The fast-path classifier: recognizes the common query shape straight from the wire.
//!
//! A "simple" query is a standard QUERY (QR=0, opcode 0) with exactly one IN question, no
//! answer/authority records and at most an EDNS(0) OPT record, with no compression pointers.
//! Everything else (and anything malformed) returns `None` and takes the general path, which
//! decodes the whole message. The cache key is the question exactly as sent (so the answer's
//! question section, case included, is byte-identical) plus the EDNS facts that change the
//! answer (present, payload size used, DO).

use super::respond::EDNS_PAYLOAD;

/// A simple query, borrowed from the packet.
#[derive(Debug, PartialEq, Eq)]
pub struct SimpleQuery<'a> {
    pub id: u16,
    /// The question section: QNAME, QTYPE, QCLASS.
    pub question: &'a [u8],
    pub qtype: u16,
    /// `(payload, DO)` when the query had an OPT record.
    pub edns: Option<(u16, bool)>,
}

const QTYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl<'a> SimpleQuery<'a> {
    /// Recognize a simple query, or `None` for the general path.
    pub fn parse(packet: &'a [u8]) -> Option<Self> {
        let id = u16_at(packet, 0)?;
        let flags = *packet.get(2)?;
        let is_response = flags & 0x80 != 0;
        let opcode = (flags >> 3) & 0x0F;
        if is_response || opcode != 0 {
            return None;
        }
        let (qd, an, ns, ar) = (
            u16_at(packet, 4)?,
            u16_at(packet, 6)?,
            u16_at(packet, 8)?,
            u16_at(packet, 10)?,
        );
        if qd != 1 || an != 0 || ns != 0 || ar > 1 {
            return None;
        }
        let mut at = 12;
        let mut name_len = 0usize;
        loop {
            let len = usize::from(*packet.get(at)?);
            at += 1;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None; // compression pointer or extended label
            }
            name_len += len + 1;
            if name_len > 254 {
                return None;
            }
            at += len;
        }
        let qtype = u16_at(packet, at)?;
        if u16_at(packet, at + 2)? != CLASS_IN {
            return None;
        }
        let question = packet.get(12..at + 4)?;
        at += 4;
        let mut edns = None;
        if ar == 1 {
            // OPT: root name, TYPE 41, CLASS = payload, TTL = ext-rcode/version/flags, RDATA.
            if *packet.get(at)? != 0 || u16_at(packet, at + 1)? != QTYPE_OPT {
                return None;
            }
            let payload = u16_at(packet, at + 3)?;
            let (ext_rcode, version) = (*packet.get(at + 5)?, *packet.get(at + 6)?);
            if ext_rcode != 0 || version != 0 {
                return None;
            }
            let dnssec_ok = packet.get(at + 7)? & 0x80 != 0;
            let rdlen = usize::from(u16_at(packet, at + 9)?);
            at += 11 + rdlen;
            edns = Some((payload.clamp(512, EDNS_PAYLOAD), dnssec_ok));
        }
        if at != packet.len() {
            return None;
        }
        Some(SimpleQuery {
            id,
            question,
            qtype,
            edns,
        })
    }

    /// Cache key: the question bytes plus the EDNS facts.
    pub fn key_into(&self, key: &mut Vec<u8>) {
        key.clear();
        key.extend_from_slice(self.question);
        match self.edns {
            Some((payload, dnssec_ok)) => {
                key.push(1 | (u8::from(dnssec_ok) << 1));
                key.extend_from_slice(&payload.to_be_bytes());
            }
            None => key.push(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    fn packet(edns: Option<Edns>, op: OpCode, questions: usize) -> Vec<u8> {
        let mut m = Message::new(77, MessageType::Query, op);
        for _ in 0..questions {
            m.add_query(Query::query(
                Name::from_ascii("Web.Example.").unwrap(),
                RecordType::SRV,
            ));
        }
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn recognizes_simple_queries_only() {
        let plain = packet(None, OpCode::Query, 1);
        let q = SimpleQuery::parse(&plain).unwrap();
        assert_eq!((q.id, q.qtype, q.edns), (77, 33, None));
        assert_eq!(q.question.len(), 13 + 4);

        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        edns.set_dnssec_ok(true);
        let with_edns = packet(Some(edns), OpCode::Query, 1);
        assert_eq!(
            SimpleQuery::parse(&with_edns).unwrap().edns,
            Some((1232, true))
        );

        let mut v1 = Edns::new();
        v1.set_version(1);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("EDNS version 1", packet(Some(v1), OpCode::Query, 1)),
            ("two questions", packet(None, OpCode::Query, 2)),
            ("no question", packet(None, OpCode::Query, 0)),
            ("NOTIFY", packet(None, OpCode::Notify, 1)),
            ("truncated", plain[..plain.len() - 1].to_vec()),
            ("trailing bytes", [plain.clone(), vec![0]].concat()),
            ("short", vec![0; 5]),
        ];
        for (case, bytes) in cases {
            assert!(SimpleQuery::parse(&bytes).is_none(), "{case}");
        }
    }
}
