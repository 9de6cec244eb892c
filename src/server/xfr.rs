//! The server side of signed queries and zone transfers: TSIG checks and signatures around
//! the pipeline, access control, and transfer streams encoded message by message.
//!
//! - A signed query is checked (RFC 8945); a bad one gets NOTAUTH with the TSIG error, a good
//!   one is answered as usual (never from the answer cache) and signed.
//! - AXFR/IXFR: only for a zone apex srvd serves (else NOTAUTH), only to peers and keys the
//!   zone allows (else REFUSED). Over TCP the transfer streams as many messages as it takes,
//!   each signed; over UDP only IXFR, answered when it fits one datagram, else with the SOA
//!   alone (RFC 1995 §2); AXFR over UDP is REFUSED.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::encode::{self, Header, Limits, ResponseEdns, Sections, TtlAdjust};
use super::request::Query;
use super::transport::{EDNS_PAYLOAD, Transport, max_size, udp_size};
use crate::dns::{Answer, TtlPolicy};
use crate::index::{IndexHandle, Snapshot};
use crate::metrics::Metrics;
use crate::xfr::XfrSettings;
use crate::xfr::transfer::{Style, Transfer};
use crate::xfr::tsig::{self, Checked, Signer};

/// A transfer streaming over TCP: each call to [`Stream::next`] writes one message.
pub struct Stream {
    transfer: Transfer,
    header: Header,
    question: Vec<u8>,
    /// The OPT record of every message when the request had one (RFC 6891 §6.1.1).
    edns: Option<ResponseEdns>,
    signer: Option<Signer>,
    sent: bool,
    scratch: encode::Scratch,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stream({:?})", self.transfer.style)
    }
}

impl Stream {
    /// Write the next message into `out`; false when the transfer is complete.
    pub fn next(&mut self, out: &mut Vec<u8>) -> bool {
        let records = self.transfer.next_message();
        if records.is_empty() && self.sent {
            return false;
        }
        self.sent = true;
        let message = XfrMessage {
            header: self.header,
            question: &self.question,
            edns: self.edns,
            records: &records,
            max_size: encode::MAX_MESSAGE,
        };
        write_message(out, &mut self.scratch, message, self.signer.as_mut());
        true
    }
}

/// One message of a transfer: its records all go in the answer section.
#[derive(Clone, Copy)]
struct XfrMessage<'a> {
    header: Header,
    question: &'a [u8],
    edns: Option<ResponseEdns>,
    records: &'a [Record],
    max_size: usize,
}

/// Encode one message, signed when there is a signer; false when it did not fit.
fn write_message(
    out: &mut Vec<u8>,
    scratch: &mut encode::Scratch,
    message: XfrMessage<'_>,
    signer: Option<&mut Signer>,
) -> bool {
    let limits = Limits {
        max_size: message.max_size,
        udp: false,
        reserve: signer.as_ref().map_or(0, |s| s.record_size()),
        rotatable: false,
        ttl: TtlAdjust::Keep,
    };
    let sections = Sections {
        answers: message.records,
        authorities: &[],
        additionals: &[],
        partial: false,
    };
    let layout = encode::encode(
        out,
        scratch,
        message.header,
        Some(message.question),
        sections,
        message.edns,
        limits,
    );
    if let Some(signer) = signer {
        signer.sign(out);
    }
    !layout.truncated
}

/// A signed query failed its TSIG check; the error reply is written already.
#[derive(Debug)]
pub struct BadSignature;

/// Check the TSIG of a signed query: a signer for the response, or the error answer written
/// into `out`. The error answer carries the TSIG error record (RFC 8945 §5.3.2) when it fits
/// `transport`'s size limit; else it goes out without it, truncated (TC=1), so the client
/// asks again over TCP (the echoed key and algorithm names can be 255 bytes each).
pub fn check_signature(
    keys: &crate::xfr::Keyring,
    query: &Query<'_>,
    transport: Transport,
    out: &mut Vec<u8>,
    scratch: &mut encode::Scratch,
) -> Result<Signer, BadSignature> {
    let checked = query
        .tsig_at
        .and_then(|at| tsig::Tsig::read(query.raw, at))
        .map(|t| tsig::check(keys, query.raw, &t));
    match checked {
        Some(Checked::Valid { key, mac, .. }) => Ok(Signer::new(key, mac)),
        Some(invalid) => {
            error_header(query, ResponseCode::NotAuth, out, scratch);
            tsig::append_error(out, &invalid);
            if out.len() > max_size(query, transport) {
                error_header(query, ResponseCode::NotAuth, out, scratch);
                out[2] |= 0x02; // TC
            }
            Err(BadSignature)
        }
        None => {
            error_header(query, ResponseCode::FormErr, out, scratch);
            Err(BadSignature)
        }
    }
}

fn header(query: &Query<'_>, rcode: ResponseCode, authoritative: bool) -> Header {
    Header {
        id: query.id,
        opcode: query.opcode,
        authoritative,
        recursion_desired: query.recursion_desired(),
        recursion_available: false,
        authentic_data: false,
        checking_disabled: false,
        rcode,
    }
}

/// A reply with just the header and the question.
fn error_header(
    query: &Query<'_>,
    rcode: ResponseCode,
    out: &mut Vec<u8>,
    scratch: &mut encode::Scratch,
) {
    let limits = Limits {
        max_size: encode::MAX_MESSAGE,
        udp: false,
        reserve: 0,
        rotatable: false,
        ttl: TtlAdjust::Keep,
    };
    let empty = Answer::error(rcode);
    encode::encode(
        out,
        scratch,
        header(query, rcode, false),
        query.question,
        Sections::of(&empty),
        response_edns(query),
        limits,
    );
}

/// The OPT record a reply to `query` carries: one when the query had one (RFC 6891 §6.1.1).
fn response_edns(query: &Query<'_>) -> Option<ResponseEdns> {
    query.edns.map(|e| ResponseEdns {
        payload: EDNS_PAYLOAD,
        dnssec_ok: e.dnssec_ok,
        ede: None,
    })
}

/// What a transfer request becomes.
pub enum Requested {
    /// `out` holds the whole reply.
    Reply,
    /// Stream it (TCP).
    Stream(Box<Stream>),
}

/// The serial of the SOA in an IXFR query's authority section.
fn client_serial(query: &Query<'_>) -> Option<u32> {
    let message = Message::from_vec(query.raw).ok()?;
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Everything a transfer request needs to be answered.
pub struct Context<'a> {
    pub index: &'a IndexHandle,
    pub snap: Arc<Snapshot>,
    pub settings: &'a XfrSettings,
    pub ttl: TtlPolicy,
    pub metrics: &'a Metrics,
}

/// Answer an AXFR or IXFR query.
pub fn transfer(
    cx: Context<'_>,
    query: &Query<'_>,
    transport: Transport,
    peer: Option<IpAddr>,
    signer: Option<Signer>,
    out: &mut Vec<u8>,
    scratch: &mut encode::Scratch,
) -> Requested {
    let ixfr = RecordType::from(query.qtype) == RecordType::IXFR;
    let kind = if ixfr { "ixfr" } else { "axfr" };
    let prepared = permitted_zone(&cx, query, transport, peer, signer.as_ref(), ixfr)
        .and_then(|zone| prepare(&cx, query, ixfr, zone));
    let transfer = match prepared {
        Ok(transfer) => transfer,
        Err((rcode, result)) => {
            cx.metrics.transfer(kind, result);
            error_header(query, rcode, out, scratch);
            return Requested::Reply;
        }
    };
    let result = match transfer.style {
        Style::Full => "full",
        Style::Incremental => "incremental",
        Style::Current => "current",
    };
    cx.metrics.transfer(kind, result);
    let mut stream = Stream {
        transfer,
        header: header(query, ResponseCode::NoError, true),
        question: query.question.unwrap_or_default().to_vec(),
        edns: response_edns(query),
        signer,
        sent: false,
        scratch: encode::Scratch::default(),
    };
    match transport {
        Transport::Tcp => Requested::Stream(Box::new(stream)),
        Transport::Udp => {
            udp_ixfr(&mut stream, query, out, scratch);
            Requested::Reply
        }
    }
}

/// Why a transfer is not started: the rcode to answer and the metric's result label.
type Refusal = (ResponseCode, &'static str);

/// The zone asked for, when it is ours and `peer` (signed with `signer`'s key) may transfer
/// it over `transport` (AXFR needs TCP, RFC 5936 §4.2).
fn permitted_zone(
    cx: &Context<'_>,
    query: &Query<'_>,
    transport: Transport,
    peer: Option<IpAddr>,
    signer: Option<&Signer>,
    ixfr: bool,
) -> Result<usize, Refusal> {
    let name = query
        .question
        .and_then(|q| Name::read(&mut BinDecoder::new(q)).ok())
        .map(|n| crate::name_key::NameKey::new(&n));
    let zone = name.and_then(|key| cx.snap.zones().iter().position(|z| z.key == key));
    let zone = zone.ok_or((ResponseCode::NotAuth, "notauth"))?;
    let key_name = signer.map(|s| s.key_name().clone());
    let zone_key = &cx.snap.zones()[zone].key;
    let allowed = peer.is_some_and(|ip| cx.settings.allows(zone_key, ip, key_name.as_ref()));
    if !allowed || (transport == Transport::Udp && !ixfr) {
        return Err((ResponseCode::Refused, "refused"));
    }
    Ok(zone)
}

/// The transfer a permitted request gets: AXFR, or IXFR from the client's serial.
fn prepare(
    cx: &Context<'_>,
    query: &Query<'_>,
    ixfr: bool,
    zone: usize,
) -> Result<Transfer, Refusal> {
    let transfer = match (ixfr, client_serial(query)) {
        (true, Some(serial)) => {
            Transfer::incremental(cx.index, cx.snap.clone(), zone, cx.ttl, serial)
        }
        (true, None) => return Err((ResponseCode::FormErr, "error")),
        (false, _) => Transfer::full(cx.snap.clone(), zone, cx.ttl),
    };
    transfer.ok_or((ResponseCode::ServFail, "error"))
}

/// IXFR over UDP: the whole answer when it fits one datagram, else the SOA alone.
fn udp_ixfr(
    stream: &mut Stream,
    query: &Query<'_>,
    out: &mut Vec<u8>,
    scratch: &mut encode::Scratch,
) {
    let size = udp_size(query);
    let mut records = Vec::new();
    loop {
        let next = stream.transfer.next_message();
        if next.is_empty() {
            break;
        }
        records.extend(next);
        if records.len() > size / 12 {
            break;
        }
    }
    let soa = stream.transfer.soa();
    let backup = stream.signer.clone();
    let message = XfrMessage {
        header: stream.header,
        question: &stream.question,
        edns: stream.edns,
        records: &records,
        max_size: size,
    };
    if !write_message(out, scratch, message, stream.signer.as_mut()) {
        let mut signer = backup;
        let soa_alone = XfrMessage {
            records: std::slice::from_ref(&soa),
            ..message
        };
        write_message(out, scratch, soa_alone, signer.as_mut());
    }
}
