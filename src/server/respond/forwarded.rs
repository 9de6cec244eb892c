//! Questions that go upstream: the forwarder's cache checked first (no allocation on a hit),
//! a loop back to srvd cut, otherwise the query parked as a [`Pending`] that the transport
//! finishes off its own thread; and the forwarded answer encoded for the client's transport,
//! size and EDNS. Deciding *whether* a question goes upstream is `dns`'s job, not this file's.

use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{EDNS_PAYLOAD, Outcome, Responder, Scratch, Transport};
use crate::dns::{Answer, Forward};
use crate::forward::{self, Forwarder, Served};
use crate::metrics::AnswerSource;
use crate::server::encode::{self, Header, Limits, ResponseEdns, Sections, TtlAdjust};
use crate::server::request::{EdnsQuery, Query};

/// A query waiting for an upstream's answer: what its reply needs from the query.
#[derive(Debug)]
pub struct Pending {
    id: u16,
    flags: u16,
    opcode: u8,
    question: Vec<u8>,
    edns: Option<EdnsQuery>,
    size: usize,
    transport: Transport,
    qtype: u16,
    ask: forward::Question,
    /// Our own part of the answer (a CNAME chain leaving our zones), to be completed.
    prefix: Option<Answer>,
    started: Instant,
}

/// What the reply to a forwarded question needs from its query, borrowed: a cache hit is
/// answered from this without copying the query.
struct ReplyTo<'a> {
    id: u16,
    flags: u16,
    opcode: u8,
    question: &'a [u8],
    edns: Option<EdnsQuery>,
    size: usize,
    transport: Transport,
    qtype: u16,
    ask: &'a forward::Question,
    prefix: Option<&'a Answer>,
    started: Instant,
}

impl Pending {
    fn reply_to(&self) -> ReplyTo<'_> {
        ReplyTo {
            id: self.id,
            flags: self.flags,
            opcode: self.opcode,
            question: &self.question,
            edns: self.edns,
            size: self.size,
            transport: self.transport,
            qtype: self.qtype,
            ask: &self.ask,
            prefix: self.prefix.as_ref(),
            started: self.started,
        }
    }
}

/// The query flags the reply copies or looks at.
const QUERY_AD: u16 = 0x0020;

impl Responder {
    /// An answer that needs an upstream: cut a loop, serve the forwarder's cache, or hand it
    /// back to the transport to wait.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward(
        &self,
        forwarder: &Forwarder,
        query: &Query<'_>,
        answer: Answer,
        size: usize,
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
        started: Instant,
    ) -> Outcome {
        let Some(question) = query.question else {
            return Outcome::Drop;
        };
        let Some((ask, prefix)) = upstream_question(query, question, answer) else {
            return Outcome::Drop;
        };
        let to = ReplyTo {
            id: query.id,
            flags: query.flags,
            opcode: query.opcode,
            question,
            edns: query.edns,
            size,
            transport,
            qtype: query.qtype,
            ask: &ask,
            prefix: prefix.as_ref(),
            started,
        };
        // A fresh cached answer first: srvd's own questions in flight (a loop) are never
        // fresh in the cache, so the loop check can wait for a miss.
        if let Some(served) = forwarder.cached(&ask, &mut scratch.forwarded, started) {
            self.write_forwarded(&to, &served, out, &mut scratch.encode);
            return Outcome::Reply;
        }
        if prefix.is_none() && forwarder.looped(question) {
            self.write_forwarded(&to, &Served::servfail(), out, &mut scratch.encode);
            return Outcome::Reply;
        }
        Outcome::Forward(Box::new(Pending {
            id: query.id,
            flags: query.flags,
            opcode: query.opcode,
            question: question.to_vec(),
            edns: query.edns,
            size,
            transport,
            qtype: query.qtype,
            ask,
            prefix,
            started,
        }))
    }

    /// Wait for the upstream's answer to `pending` and write the reply into `out`.
    pub async fn finish(&self, pending: Pending, out: &mut Vec<u8>) {
        let served = match &self.forwarder {
            Some(forwarder) => forwarder.resolve(pending.ask.clone()).await,
            None => Served::servfail(),
        };
        let mut scratch = encode::Scratch::default();
        self.write_forwarded(&pending.reply_to(), &served, out, &mut scratch);
    }

    /// Encode a forwarded answer (after our own CNAME chain, if any) for the client's
    /// transport and size; TTLs counted down by its age (30 when stale).
    fn write_forwarded(
        &self,
        pending: &ReplyTo<'_>,
        served: &Served,
        out: &mut Vec<u8>,
        scratch: &mut encode::Scratch,
    ) {
        let r = &served.resolution;
        let wants_ad = pending.flags & QUERY_AD != 0 || pending.ask.dnssec_ok;
        let ttl = if served.stale {
            TtlAdjust::Fixed(forward::cache::STALE_TTL)
        } else {
            TtlAdjust::Subtract(served.age)
        };
        let mut rcode = r.rcode;
        let joined: Vec<hickory_proto::rr::Record>;
        let (answers, authoritative) = match pending.prefix {
            Some(prefix) => {
                if rcode != ResponseCode::NXDomain {
                    rcode = ResponseCode::NoError;
                }
                joined = prefix.answers.iter().chain(&r.answers).cloned().collect();
                (&joined[..], true)
            }
            None => (&r.answers[..], false),
        };
        let header = Header {
            id: pending.id,
            opcode: pending.opcode,
            authoritative,
            recursion_desired: pending.flags & crate::server::request::FLAG_RD != 0,
            recursion_available: true,
            authentic_data: r.authentic_data && wants_ad,
            checking_disabled: pending.ask.checking_disabled,
            rcode,
        };
        let sections = Sections {
            answers,
            authorities: &r.authorities,
            additionals: &r.additionals,
            partial: false,
        };
        encode_for_client(pending, header, sections, ttl, out, scratch);
        let elapsed = pending.started.elapsed();
        self.metrics
            .query(pending.qtype, rcode, AnswerSource::Forward, elapsed);
    }
}

/// What to ask the upstreams for `query`: its own question, or the out-of-zone target of
/// the CNAME chain `answer` ends in (then `answer` is the prefix of the reply). `None` when
/// there is nothing to forward.
fn upstream_question(
    query: &Query<'_>,
    question: &[u8],
    answer: Answer,
) -> Option<(forward::Question, Option<Answer>)> {
    let (name, prefix) = match &answer.forward {
        Forward::Target(target) => (target.clone(), Some(answer)),
        Forward::Question => (Name::read(&mut BinDecoder::new(question)).ok()?, None),
        Forward::No => return None,
    };
    let ask = forward::Question {
        name,
        qtype: query.qtype,
        qclass: u16::from(DNSClass::IN),
        dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
        checking_disabled: query.checking_disabled(),
    };
    Some((ask, prefix))
}

/// Encode a forwarded answer for the client's transport, size and EDNS.
fn encode_for_client(
    pending: &ReplyTo<'_>,
    header: Header,
    sections: Sections<'_>,
    ttl: TtlAdjust,
    out: &mut Vec<u8>,
    scratch: &mut encode::Scratch,
) {
    let edns = pending.edns.map(|e| ResponseEdns {
        payload: EDNS_PAYLOAD,
        dnssec_ok: e.dnssec_ok,
        ede: None,
    });
    let limits = Limits {
        max_size: pending.size,
        udp: pending.transport == Transport::Udp,
        reserve: 0,
        rotatable: false,
        ttl,
    };
    encode::encode(
        out,
        scratch,
        header,
        Some(pending.question),
        sections,
        edns,
        limits,
    );
}
