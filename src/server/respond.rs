//! The one answer pipeline, shared by UDP and TCP: bytes in, bytes out.
//!
//! ```text
//!  query bytes ── request::Query::parse ── protocol rules (FORMERR, NOTIMP, BADVERS, REFUSED)
//!     ── answer cache hit? ── copy + patch ───────────────────────────────────────────┐
//!     └─ miss: dns::lookup(snapshot, ttl, name, type) ── encode (limits) ── cache ─────┤
//!                                  └─ not ours / CNAME leaves our zones: forward ──────┤
//!                                                                                      v
//!                                                     metrics (one point) ── reply bytes
//! ```
//!
//! Everything here is synchronous and bounded; what must wait for the network (forwarding)
//! is handed back to the transport as [`Outcome::Forward`].

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::cache::{AnswerCache, Entry};
use super::encode::{self, Header, Limits, ResponseEdns};
use super::request::{Query, Reject};
use crate::dns::{self, Answer, Forward, TtlPolicy};
use crate::index::{IndexHandle, Snapshot};
use crate::metrics::{AnswerSource, Metrics};

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

/// What the transport must do after [`Responder::respond`].
#[derive(Debug)]
pub enum Outcome {
    /// `out` holds the reply: send it.
    Reply,
    /// Send nothing.
    Drop,
}

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ttl: TtlPolicy,
    /// Rotate A, AAAA and SRV answers per response.
    pub rotate: bool,
    /// Set RA (forwarding is configured).
    pub recursion_available: bool,
    /// Bytes of encoded answers cached at most.
    pub cache_bytes: u64,
}

/// Per-worker scratch space (no allocation per query in the steady state).
#[derive(Default)]
pub struct Scratch {
    key: Vec<u8>,
    encode: encode::Scratch,
    rotation: usize,
}

/// Turns query bytes into reply bytes; shared by every transport and worker.
pub struct Responder {
    index: IndexHandle,
    settings: Settings,
    cache: AnswerCache,
    metrics: Arc<Metrics>,
}

/// The size limit of a reply.
fn max_size(query: &Query<'_>, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => encode::MAX_MESSAGE,
        Transport::Udp => match query.edns {
            Some(edns) => usize::from(edns.payload.clamp(PLAIN_UDP, EDNS_PAYLOAD)),
            None => usize::from(PLAIN_UDP),
        },
    }
}

impl Responder {
    pub fn new(index: IndexHandle, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let cache = AnswerCache::new(settings.cache_bytes);
        Responder {
            index,
            settings,
            cache,
            metrics,
        }
    }

    /// The answer cache (for metrics).
    pub fn cache(&self) -> &AnswerCache {
        &self.cache
    }

    /// Write the reply to `packet` into `out`.
    pub fn respond(
        &self,
        packet: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Outcome {
        let started = Instant::now();
        scratch.rotation = scratch.rotation.wrapping_add(1);
        let query = match Query::parse(packet) {
            Ok(query) => query,
            Err(Reject::Drop) => return Outcome::Drop,
            Err(Reject::FormErr { id, flags }) => {
                self.error_reply(id, flags, ResponseCode::FormErr, out, scratch);
                self.metrics.query(
                    0,
                    ResponseCode::FormErr,
                    AnswerSource::Error,
                    started.elapsed(),
                );
                return Outcome::Reply;
            }
        };
        let snap = self.index.load();
        let size = max_size(&query, transport);
        let cacheable = AnswerCache::key_into(&query, size, &mut scratch.key)
            && query.tsig_at.is_none()
            && query.opcode == 0;
        if cacheable && let Some(entry) = self.cache.get(&scratch.key, &snap) {
            let rotation = if self.settings.rotate {
                scratch.rotation
            } else {
                0
            };
            entry.write(&query, &snap, rotation, out);
            self.metrics.query(
                entry.qtype,
                entry.rcode,
                AnswerSource::Cache,
                started.elapsed(),
            );
            return Outcome::Reply;
        }
        let (answer, qtype) = self.decide(&snap, &query, size);
        let layout = self.encode(&query, &answer, size, transport, out, scratch);
        if cacheable && answer.forward != Forward::Question {
            let entry = Entry::new(
                out,
                snap.generation,
                answer.reads.clone(),
                &layout,
                &answer.soa_zones,
                qtype,
                answer.rcode,
            );
            self.cache.insert(&scratch.key, entry);
            if self.settings.rotate {
                // The first copy goes out unrotated; later hits rotate.
            }
        }
        let source = if answer.authoritative {
            AnswerSource::Lookup
        } else {
            AnswerSource::Error
        };
        self.metrics
            .query(qtype, answer.rcode, source, started.elapsed());
        Outcome::Reply
    }

    /// The protocol rules around `dns::lookup`: which queries are errors, and the lookup.
    fn decide(&self, snap: &Snapshot, query: &Query<'_>, size: usize) -> (Answer, u16) {
        let error = |rcode| (Answer::error(rcode), query.qtype);
        if query.edns.is_some_and(|e| e.version > 0) {
            return error(ResponseCode::BADVERS);
        }
        if query.opcode != 0 {
            return error(ResponseCode::NotImp);
        }
        let Some(question) = query.question else {
            return error(ResponseCode::FormErr);
        };
        let class = DNSClass::from(query.qclass);
        let qtype = RecordType::from(query.qtype);
        if !matches!(class, DNSClass::IN | DNSClass::ANY)
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            return error(ResponseCode::Refused);
        }
        if matches!(qtype, RecordType::OPT) {
            return error(ResponseCode::FormErr);
        }
        let Ok(name) = Name::read(&mut BinDecoder::new(question)) else {
            return error(ResponseCode::FormErr);
        };
        let room = size.saturating_sub(12 + question.len());
        let answer = dns::lookup(snap, &self.settings.ttl, &name, qtype, room);
        (answer, query.qtype)
    }

    fn encode(
        &self,
        query: &Query<'_>,
        answer: &Answer,
        size: usize,
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> encode::Layout {
        let header = Header {
            id: query.id,
            opcode: query.opcode,
            authoritative: answer.authoritative,
            recursion_desired: query.recursion_desired(),
            recursion_available: self.settings.recursion_available,
            checking_disabled: query.checking_disabled(),
            rcode: answer.rcode,
        };
        let edns = query.edns.map(|e| ResponseEdns {
            payload: EDNS_PAYLOAD,
            dnssec_ok: e.dnssec_ok,
        });
        let limits = Limits {
            max_size: size,
            udp: transport == Transport::Udp,
            reserve: 0,
            rotatable: self.settings.rotate,
        };
        encode::encode(
            out,
            &mut scratch.encode,
            header,
            query.question,
            answer,
            edns,
            limits,
        )
    }

    /// A header-only error reply (the message could not be read past its header).
    fn error_reply(
        &self,
        id: u16,
        flags: u16,
        rcode: ResponseCode,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) {
        let header = Header {
            id,
            opcode: ((flags >> 11) & 0x0F) as u8,
            authoritative: false,
            recursion_desired: flags & super::request::FLAG_RD != 0,
            recursion_available: self.settings.recursion_available,
            checking_disabled: flags & super::request::FLAG_CD != 0,
            rcode,
        };
        let limits = Limits {
            max_size: usize::from(PLAIN_UDP),
            udp: true,
            reserve: 0,
            rotatable: false,
        };
        encode::encode(
            out,
            &mut scratch.encode,
            header,
            None,
            &Answer::error(rcode),
            None,
            limits,
        );
    }
}
