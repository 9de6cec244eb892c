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
//! Everything here is synchronous and bounded; what must wait for the network (a forwarded
//! question the forwarder's cache cannot answer) is handed back to the transport as
//! [`Outcome::Forward`], which finishes it with [`Responder::finish`] off its own thread
//! (all of the forwarding side is in [`forwarded`]).

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::cache::{AnswerCache, Entry};
use super::encode::{self, Header, Limits, ResponseEdns, Sections, TtlAdjust};
use super::request::{Query, Reject};
use super::transport::max_size;
pub use super::transport::{EDNS_PAYLOAD, PLAIN_UDP, Transport};
use crate::dns::{self, Answer, Forward, TtlPolicy};
use crate::forward::{self, Forwarder};
use crate::index::{IndexHandle, Snapshot};
use crate::metrics::{AnswerSource, Metrics};
use crate::xfr::XfrSettings;
use crate::xfr::tsig::Signer;

mod forwarded;
pub use forwarded::Pending;

/// RFC 8914 info code "Not Authoritative".
const EDE_NOT_AUTHORITATIVE: u16 = 20;

/// What the transport must do after [`Responder::respond`].
#[derive(Debug)]
pub enum Outcome {
    /// `out` holds the reply: send it.
    Reply,
    /// Send nothing.
    Drop,
    /// The answer needs an upstream: finish it with [`Responder::finish`] (which may wait up
    /// to the forwarding budget) without holding up other queries, then send it.
    Forward(Box<Pending>),
    /// A zone transfer (TCP): send each message [`super::xfr::Stream::next`] writes.
    Transfer(Box<super::xfr::Stream>),
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
    forwarded: forward::HotCache,
    encode: encode::Scratch,
    rotation: usize,
}

impl Scratch {
    /// Scratch for a UDP worker thread: it also keeps its own copies of forwarded answers
    /// (a TCP connection's `Scratch::default()` does not).
    pub fn for_udp_worker() -> Self {
        Scratch {
            forwarded: forward::HotCache::keeping(),
            ..Scratch::default()
        }
    }
}

/// Turns query bytes into reply bytes; shared by every transport and worker.
pub struct Responder {
    index: IndexHandle,
    settings: Settings,
    cache: AnswerCache,
    forwarder: Option<Arc<Forwarder>>,
    xfr: Arc<XfrSettings>,
    metrics: Arc<Metrics>,
}

impl Responder {
    pub fn new(
        index: IndexHandle,
        settings: Settings,
        forwarder: Option<Arc<Forwarder>>,
        xfr: Arc<XfrSettings>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let cache = AnswerCache::new(settings.cache_bytes);
        Responder {
            index,
            settings,
            cache,
            forwarder,
            xfr,
            metrics,
        }
    }

    /// The answer cache (for metrics).
    pub fn cache(&self) -> &AnswerCache {
        &self.cache
    }

    /// Write the reply to `packet` (from `peer`) into `out`.
    pub fn respond(
        &self,
        packet: &[u8],
        transport: Transport,
        peer: Option<std::net::IpAddr>,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Outcome {
        let started = Instant::now();
        scratch.rotation = scratch.rotation.wrapping_add(1);
        let query = match Query::parse(packet) {
            Ok(query) => query,
            Err(reject) => return self.rejected(packet, reject, out, scratch, started),
        };
        let signer = match self.verify_signature(&query, transport, out, scratch, started) {
            Ok(signer) => signer,
            Err(outcome) => return outcome,
        };
        let snap = self.index.load();
        let transfer = matches!(
            RecordType::from(query.qtype),
            RecordType::AXFR | RecordType::IXFR
        );
        if query.opcode == 0 && transfer {
            return self.transfer(snap, &query, transport, peer, signer, out, scratch);
        }
        let size = max_size(&query, transport);
        let cacheable = AnswerCache::key_into(&query, size, &mut scratch.key)
            && query.tsig_at.is_none()
            && query.opcode == 0
            && query.edns.is_none_or(|e| e.version == 0);
        if cacheable && self.reply_from_cache(&query, &snap, out, scratch, started) {
            return Outcome::Reply;
        }
        let (answer, qtype) = self.decide(&snap, &query, size);
        // A signed question gets a signed answer from us, never a forwarded one.
        if answer.forward != Forward::No
            && signer.is_none()
            && let Some(forwarder) = &self.forwarder
        {
            return self.forward(
                forwarder, &query, answer, size, transport, out, scratch, started,
            );
        }
        let layout = self.encode(&query, &answer, size, signer, transport, out, scratch);
        if cacheable && answer.forward != Forward::Question {
            self.remember(&snap, &answer, qtype, &layout, out, &scratch.key);
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

    /// Keep the encoded `reply` to `answer` in the answer cache under `key`. The first copy
    /// went out unrotated; later hits rotate.
    fn remember(
        &self,
        snap: &Snapshot,
        answer: &Answer,
        qtype: u16,
        layout: &encode::Layout,
        reply: &[u8],
        key: &[u8],
    ) {
        let entry = Entry::new(
            reply,
            snap.generation,
            answer.reads.clone(),
            layout,
            &answer.soa_zones,
            qtype,
            answer.rcode,
        );
        self.cache.insert(key, entry);
    }

    /// A packet the parser rejected: silence, or FORMERR.
    fn rejected(
        &self,
        packet: &[u8],
        reject: Reject,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        started: Instant,
    ) -> Outcome {
        let Reject::FormErr {
            id,
            flags,
            question,
        } = reject
        else {
            return Outcome::Drop;
        };
        let question = question.map(|(from, to)| &packet[from..to]);
        self.error_reply(id, flags, question, ResponseCode::FormErr, out, scratch);
        let elapsed = started.elapsed();
        self.metrics
            .query(0, ResponseCode::FormErr, AnswerSource::Error, elapsed);
        Outcome::Reply
    }

    /// The signer for a TSIG-signed query's answer (`None` when unsigned); a query whose
    /// signature fails gets its error answer written and is done.
    fn verify_signature(
        &self,
        query: &Query<'_>,
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        started: Instant,
    ) -> Result<Option<Signer>, Outcome> {
        if query.tsig_at.is_none() {
            return Ok(None);
        }
        let keys = &self.xfr.keys;
        match super::xfr::check_signature(keys, query, transport, out, &mut scratch.encode) {
            Ok(signer) => Ok(Some(signer)),
            Err(super::xfr::BadSignature) => {
                let elapsed = started.elapsed();
                self.metrics.query(
                    query.qtype,
                    ResponseCode::NotAuth,
                    AnswerSource::Error,
                    elapsed,
                );
                Err(Outcome::Reply)
            }
        }
    }

    /// Answer from the answer cache when it holds a valid entry for the question.
    fn reply_from_cache(
        &self,
        query: &Query<'_>,
        snap: &Snapshot,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        started: Instant,
    ) -> bool {
        let Some(entry) = self.cache.get(&scratch.key, snap) else {
            return false;
        };
        let rotation = if self.settings.rotate {
            scratch.rotation
        } else {
            0
        };
        entry.write(query, snap, rotation, out);
        let elapsed = started.elapsed();
        self.metrics
            .query(entry.qtype, entry.rcode, AnswerSource::Cache, elapsed);
        true
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
        let Ok(name) = Name::read(&mut BinDecoder::new(question)) else {
            return error(ResponseCode::FormErr);
        };
        if class == DNSClass::CH {
            return (super::chaos::answer(&name, qtype), query.qtype);
        }
        if !matches!(class, DNSClass::IN | DNSClass::ANY)
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            return error(ResponseCode::Refused);
        }
        let room = size.saturating_sub(12 + question.len());
        let answer = dns::lookup(snap, &self.settings.ttl, &name, qtype, room);
        (answer, query.qtype)
    }

    /// Encode `answer` within the transport's limits, TSIG-signed when `signer` is given
    /// (its record's room kept free).
    #[allow(clippy::too_many_arguments)]
    fn encode(
        &self,
        query: &Query<'_>,
        answer: &Answer,
        size: usize,
        signer: Option<Signer>,
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
            authentic_data: false,
            checking_disabled: false,
            rcode: answer.rcode,
        };
        // RFC 8914 §4.21: a name in none of our zones, refused, says so.
        let not_ours = answer.forward == Forward::Question && answer.rcode == ResponseCode::Refused;
        let edns = query.edns.map(|e| ResponseEdns {
            payload: EDNS_PAYLOAD,
            dnssec_ok: e.dnssec_ok,
            ede: not_ours.then_some(EDE_NOT_AUTHORITATIVE),
        });
        let limits = Limits {
            max_size: size,
            udp: transport == Transport::Udp,
            reserve: signer.as_ref().map_or(0, Signer::record_size),
            rotatable: self.settings.rotate,
            ttl: TtlAdjust::Keep,
        };
        let layout = encode::encode(
            out,
            &mut scratch.encode,
            header,
            query.question,
            Sections::of(answer),
            edns,
            limits,
        );
        if let Some(mut signer) = signer {
            signer.sign(out);
        }
        layout
    }

    /// A header-only error reply (the message could not be read past its header).
    fn error_reply(
        &self,
        id: u16,
        flags: u16,
        question: Option<&[u8]>,
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
            authentic_data: false,
            checking_disabled: false,
            rcode,
        };
        let limits = Limits {
            max_size: usize::from(PLAIN_UDP),
            udp: true,
            reserve: 0,
            rotatable: false,
            ttl: TtlAdjust::Keep,
        };
        encode::encode(
            out,
            &mut scratch.encode,
            header,
            question,
            Sections::of(&Answer::error(rcode)),
            None,
            limits,
        );
    }

    /// An AXFR or IXFR request (see `server::xfr`).
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &self,
        snap: Arc<Snapshot>,
        query: &Query<'_>,
        transport: Transport,
        peer: Option<std::net::IpAddr>,
        signer: Option<Signer>,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Outcome {
        let cx = super::xfr::Context {
            index: &self.index,
            snap,
            settings: &self.xfr,
            ttl: self.settings.ttl,
            metrics: &self.metrics,
        };
        match super::xfr::transfer(cx, query, transport, peer, signer, out, &mut scratch.encode) {
            super::xfr::Requested::Reply => Outcome::Reply,
            super::xfr::Requested::Stream(stream) => Outcome::Transfer(stream),
        }
    }
}
