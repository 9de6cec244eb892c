//! Protocol rules shared by both transports, wire encoding, and the UDP responder with its
//! answer cache.
//!
//! [`decide`] applies the rules (BADVERS, NOTIMP, FORMERR, REFUSED for other classes and zone
//! transfers) around `lookup`. [`UdpResponder`] turns a datagram into a reply: simple queries
//! (see `wire`) are answered from a cache of encoded replies keyed by the question and
//! invalidated by snapshot generation, with only the ID and RD/CD bits patched; everything else
//! is decoded in full and answered the same way hickory's path answers TCP.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode, emit_message_parts,
};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};

use super::answer::Answer;
use super::lookup::lookup;
use super::wire::SimpleQuery;
use crate::index::{IndexHandle, Snapshot};
use crate::metrics::Metrics;

/// UDP payload size we advertise and use (the DNS flag day 2020 recommendation).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Cached encoded replies at most.
const CACHE_ENTRIES: u64 = 100_000;
/// UDP size without EDNS (RFC 1035 §4.2.1).
const PLAIN_UDP: u16 = 512;

/// Decide the answer to a query (everything but encoding). `question` is `None` unless the
/// query has exactly one question. Returns the answer and the question type (for metrics).
pub fn decide(
    snapshot: &Snapshot,
    edns: Option<&Edns>,
    op_code: OpCode,
    question: Option<&Query>,
) -> (Answer, RecordType) {
    let error = Answer::error;
    if edns.is_some_and(|e| e.version() > 0) {
        return (error(ResponseCode::BADVERS), RecordType::NULL);
    }
    if op_code != OpCode::Query {
        return (error(ResponseCode::NotImp), RecordType::NULL);
    }
    let Some(question) = question else {
        return (error(ResponseCode::FormErr), RecordType::NULL);
    };
    let qtype = question.query_type();
    if question.query_class() != DNSClass::IN
        || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
    {
        return (error(ResponseCode::Refused), qtype);
    }
    (lookup(snapshot, question.name(), qtype), qtype)
}

/// The OPT record of our reply: only when the query had one (RFC 6891 §6.1.1); we advertise
/// at most [`EDNS_PAYLOAD`], which is also the UDP size we use.
pub fn response_edns(request: Option<&Edns>) -> Option<Edns> {
    request.map(|theirs| {
        let mut ours = Edns::new();
        ours.set_max_payload(theirs.max_payload().clamp(PLAIN_UDP, EDNS_PAYLOAD));
        ours.set_version(0);
        ours
    })
}

/// The response header for an answer.
pub fn response_metadata(request: &Metadata, answer: &Answer) -> Metadata {
    let mut metadata = Metadata::response_from_request(request);
    metadata.authoritative = answer.authoritative;
    metadata.recursion_available = false;
    metadata.response_code = answer.rcode;
    metadata
}

/// Encode a reply within `max_size` bytes (records that do not fit are left out and TC set).
pub fn encode(
    metadata: &Metadata,
    queries: &[Query],
    answer: &Answer,
    edns: Option<&Edns>,
    max_size: u16,
    out: &mut Vec<u8>,
) {
    out.clear();
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(max_size);
    let emitted = emit_message_parts(
        metadata,
        &mut queries.iter(),
        &mut answer.answers.iter(),
        &mut answer.authorities.iter(),
        &mut answer.additionals.iter(),
        edns,
        None,
        &mut encoder,
    );
    if emitted.is_err() {
        // Cannot happen for well-formed records; answer SERVFAIL rather than nothing.
        out.clear();
        let mut fail = *metadata;
        fail.response_code = ResponseCode::ServFail;
        let mut encoder = BinEncoder::new(out);
        let header = Header {
            metadata: fail,
            counts: Default::default(),
        };
        let _ = hickory_proto::serialize::binary::BinEncodable::emit(&header, &mut encoder);
    }
}

/// One cached reply.
struct Cached {
    generation: u64,
    bytes: Box<[u8]>,
    qtype: RecordType,
    rcode: ResponseCode,
}

/// Answers UDP datagrams; cheap to share between worker threads.
pub struct UdpResponder {
    index: IndexHandle,
    metrics: Arc<Metrics>,
    cache: moka::sync::Cache<Box<[u8]>, Arc<Cached>>,
}

/// Per-worker scratch space.
#[derive(Default)]
pub struct Scratch {
    key: Vec<u8>,
}

impl UdpResponder {
    pub fn new(index: IndexHandle, metrics: Arc<Metrics>) -> Self {
        UdpResponder {
            index,
            metrics,
            cache: moka::sync::Cache::new(CACHE_ENTRIES),
        }
    }

    /// Write the reply to `request` into `out`; `false` when nothing must be sent (a
    /// response, or shorter than a header).
    pub fn respond(&self, request: &[u8], out: &mut Vec<u8>, scratch: &mut Scratch) -> bool {
        let started = Instant::now();
        let snapshot = self.index.load();
        let Some(simple) = SimpleQuery::parse(request) else {
            return self.respond_general(&snapshot, request, out, started);
        };
        simple.key_into(&mut scratch.key);
        let hit = self.cache.get(&scratch.key[..]);
        if let Some(hit) = hit.filter(|h| h.generation == snapshot.generation) {
            out.clear();
            out.extend_from_slice(&hit.bytes);
            patch_header(out, &simple, request);
            self.metrics.query(hit.qtype, hit.rcode, started.elapsed());
            return true;
        }
        let Some((qtype, rcode)) = self.answer_general(&snapshot, request, out) else {
            return false;
        };
        self.cache.insert(
            scratch.key.clone().into_boxed_slice(),
            Arc::new(Cached {
                generation: snapshot.generation,
                bytes: out.clone().into_boxed_slice(),
                qtype,
                rcode,
            }),
        );
        self.metrics.query(qtype, rcode, started.elapsed());
        true
    }

    fn respond_general(
        &self,
        snapshot: &Snapshot,
        request: &[u8],
        out: &mut Vec<u8>,
        started: Instant,
    ) -> bool {
        match self.answer_general(snapshot, request, out) {
            Some((qtype, rcode)) => {
                self.metrics.query(qtype, rcode, started.elapsed());
                true
            }
            None => false,
        }
    }

    /// Decode the whole message and answer it.
    fn answer_general(
        &self,
        snapshot: &Snapshot,
        request: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<(RecordType, ResponseCode)> {
        let message = match Message::from_vec(request) {
            Ok(message) => message,
            Err(_) => {
                // The header may still be readable: FORMERR with its id (RFC 1035 §4.1.1).
                let header = Header::read(&mut BinDecoder::new(request)).ok()?;
                if header.metadata.message_type == MessageType::Response {
                    return None;
                }
                let answer = Answer::error(ResponseCode::FormErr);
                let metadata = response_metadata(&header.metadata, &answer);
                encode(&metadata, &[], &answer, None, PLAIN_UDP, out);
                return Some((RecordType::NULL, ResponseCode::FormErr));
            }
        };
        if message.metadata.message_type == MessageType::Response {
            return None;
        }
        let question = match message.queries.as_slice() {
            [one] => Some(one),
            _ => None,
        };
        let (answer, qtype) = decide(
            snapshot,
            message.edns.as_ref(),
            message.metadata.op_code,
            question,
        );
        let edns = response_edns(message.edns.as_ref());
        let max_size = edns.as_ref().map_or(PLAIN_UDP, Edns::max_payload);
        let metadata = response_metadata(&message.metadata, &answer);
        encode(
            &metadata,
            &message.queries,
            &answer,
            edns.as_ref(),
            max_size,
            out,
        );
        Some((qtype, answer.rcode))
    }
}

/// Give a cached reply the query's ID and RD/CD bits.
fn patch_header(out: &mut [u8], query: &SimpleQuery<'_>, request: &[u8]) {
    const RD: u8 = 0x01; // byte 2
    const CD: u8 = 0x10; // byte 3
    out[..2].copy_from_slice(&query.id.to_be_bytes());
    out[2] = (out[2] & !RD) | (request[2] & RD);
    out[3] = (out[3] & !CD) | (request[3] & CD);
}
