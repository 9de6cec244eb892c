//! Fuzzing entry points for the two places untrusted bytes come in.
//!
//! - [`query`]: a raw DNS message from the network, through the whole answer pipeline
//!   ([`Responder::respond`]) over UDP and TCP, with and without the answer cache, on a fixed
//!   index (a zone-file zone and etcd services, built once, in two versions so IXFR has a
//!   difference to send), from a peer allowed to transfer `fuzz.test.` unsigned and
//!   `skydns.test.` signed with the TSIG key [`TSIG_KEY`];
//! - [`etcd_value`]: an etcd key and value, through the key mapping and the value decoder
//!   and, when both accept them, through the pipeline on an index holding just that entry.
//!
//! Neither panics on any input unless it has found a bug: a reply (or a message of a
//! transfer) that does not decode, is larger than its transport allows, does not answer the
//! query's ID, carries an OPT record the query had none of, or differs (beyond the order of
//! rotated RRsets) between a cached and an uncached answer; a transfer over UDP, or one that
//! does not start and end with the SOA; a dropped query that was a readable query; a key
//! whose name does not map back to it. The cargo-fuzz targets in `fuzz/` call these; the fixed
//! world they answer from is in [`fixture`]; the smoke test (`tests.rs`) replays `fuzz/corpus`
//! and `fuzz/regressions` and mutates the corpus for a few seconds, so CI runs a short fuzz on
//! every test run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::index::{IndexHandle, Indexer};
use crate::name_key::NameKey;
use crate::record::Service;
use crate::server::encode::MAX_MESSAGE;
use crate::server::request::{FLAG_QR, Query};
use crate::server::respond::{EDNS_PAYLOAD, PLAIN_UDP, Scratch};
use crate::server::{Outcome, Responder, Transport};
use crate::source::key::KeyMapper;
use crate::source::{EtcdChange, Part, ServiceEntry, Update};

mod fixture;

pub use fixture::{
    BIG_ZONE, ETCD_DOMAINS, ETCD_PREFIX, PEER, TSIG_KEY, TSIG_SECRET, ZONE, tsig_key,
};
use fixture::{domains, fixture, name, responder};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The largest reply `packet` may get over `transport`.
fn size_limit(packet: &[u8], transport: Transport) -> usize {
    match (transport, Query::parse(packet)) {
        (Transport::Tcp, _) => MAX_MESSAGE,
        (Transport::Udp, Ok(q)) => q.edns.map_or(usize::from(PLAIN_UDP), |e| {
            usize::from(e.payload.clamp(PLAIN_UDP, EDNS_PAYLOAD))
        }),
        (Transport::Udp, Err(_)) => usize::from(PLAIN_UDP),
    }
}

/// What the pipeline made of a query.
enum Got {
    Nothing,
    /// One reply, and its decoded form.
    Reply(Vec<u8>, Message),
    /// A transfer (streamed, checked).
    Transfer,
}

/// Most messages a transfer of the fixture can take.
const MAX_TRANSFER_MESSAGES: usize = 10_000;

/// Check one reply or transfer message `out` to `packet` (see the module docs).
fn check(packet: &[u8], transport: Transport, out: &[u8], limit: usize) -> Message {
    let fail = |what: &str| -> ! {
        panic!(
            "{what} ({transport:?})\n query: {}\n reply: {}",
            hex(packet),
            hex(out)
        )
    };
    if out.len() > limit {
        fail(&format!("reply of {} bytes > {limit}", out.len()));
    }
    let message =
        Message::from_vec(out).unwrap_or_else(|e| fail(&format!("reply does not decode: {e}")));
    if out.get(..2) != packet.get(..2) {
        fail("reply ID is not the query's");
    }
    if message.metadata.message_type != MessageType::Response {
        fail("reply without QR");
    }
    let query_edns = matches!(Query::parse(packet), Ok(Query { edns: Some(_), .. }));
    if message.edns.is_some() && !query_edns {
        fail("reply has OPT, query had none");
    }
    message
}

/// Answer `packet` from [`PEER`] and check the reply, or every message of a transfer.
fn answer(r: &Responder, packet: &[u8], transport: Transport) -> Got {
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    let fail = |what: &str| -> ! { panic!("{what} ({transport:?})\n query: {}", hex(packet)) };
    match r.respond(packet, transport, Some(PEER), &mut out, &mut scratch) {
        Outcome::Drop => {
            let readable =
                packet.len() >= 12 && u16::from_be_bytes([packet[2], packet[3]]) & FLAG_QR == 0;
            if readable {
                fail("a query was dropped");
            }
            Got::Nothing
        }
        Outcome::Forward(_) => fail("forwarded with no forwarder"),
        Outcome::Transfer(mut stream) => {
            if transport == Transport::Udp {
                fail("a transfer stream over UDP");
            }
            let (mut first, mut last) = (None, None);
            let mut messages = 0;
            while stream.next(&mut out) {
                messages += 1;
                if messages > MAX_TRANSFER_MESSAGES {
                    fail("a transfer that does not end");
                }
                let m = check(packet, transport, &out, MAX_MESSAGE);
                if first.is_none() {
                    first = m.answers.first().map(Record::record_type);
                }
                if let Some(r) = m.answers.last() {
                    last = Some(r.record_type());
                }
            }
            if first != Some(RecordType::SOA) || last != Some(RecordType::SOA) {
                fail(&format!(
                    "a transfer of {messages} messages from {first:?} to {last:?}, not SOA to SOA"
                ));
            }
            Got::Transfer
        }
        Outcome::Reply => {
            let message = check(packet, transport, &out, size_limit(packet, transport));
            Got::Reply(out, message)
        }
    }
}

/// A record's wire form, lower-cased: equal for the same record in any letter case.
fn record_key(r: &Record) -> Vec<u8> {
    let mut bytes = r.to_bytes().unwrap_or_default();
    bytes.make_ascii_lowercase();
    bytes
}

/// TSIG (its time and MAC differ from one signature to the next).
const TYPE_TSIG: u16 = 250;

/// The records but TSIG as [`record_key`]s, sorted.
fn sorted(records: &[Record]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = records
        .iter()
        .filter(|r| u16::from(r.record_type()) != TYPE_TSIG)
        .map(record_key)
        .collect();
    keys.sort();
    keys
}

/// A cached reply must be the uncached one up to the order inside rotated RRsets (and the
/// time and MAC of a TSIG record).
fn same_answer(
    packet: &[u8],
    transport: Transport,
    a: (&Vec<u8>, &Message),
    b: (&Vec<u8>, &Message),
) {
    let (ma, mb) = (a.1, b.1);
    let same = ma.metadata == mb.metadata
        && ma.queries == mb.queries
        && ma.edns == mb.edns
        && a.0.len() == b.0.len()
        && sorted(&ma.answers) == sorted(&mb.answers)
        && sorted(&ma.authorities) == sorted(&mb.authorities)
        && sorted(&ma.additionals) == sorted(&mb.additionals);
    if !same {
        panic!(
            "cached and uncached replies differ ({transport:?})\n query: {}\n uncached: {}\n cached: {}\n{ma}\n{mb}",
            hex(packet),
            hex(a.0),
            hex(b.0)
        );
    }
}

/// Run a raw DNS message through the whole pipeline (UDP and TCP, cache off and on) and check
/// every reply. Panics only on a bug.
pub fn query(bytes: &[u8]) {
    let f = fixture();
    for transport in [Transport::Udp, Transport::Tcp] {
        let plain = answer(&f.plain, bytes, transport);
        if matches!(plain, Got::Transfer) {
            continue; // transfers never touch the answer cache
        }
        // Twice through the cache: the second is a hit whenever the answer was cacheable.
        let first = answer(&f.cached, bytes, transport);
        let second = answer(&f.cached, bytes, transport);
        match (&plain, &first, &second) {
            (Got::Reply(p, pm), Got::Reply(c1, m1), Got::Reply(c2, m2)) => {
                same_answer(bytes, transport, (p, pm), (c1, m1));
                same_answer(bytes, transport, (p, pm), (c2, m2));
            }
            (Got::Nothing, Got::Nothing, Got::Nothing) => {}
            _ => panic!(
                "different outcomes with and without the cache ({transport:?}): {}",
                hex(bytes)
            ),
        }
    }
}

/// The key mapping of the etcd source for [`ETCD_PREFIX`] and [`ETCD_DOMAINS`].
pub fn key_mapper() -> &'static KeyMapper {
    static MAPPER: OnceLock<KeyMapper> = OnceLock::new();
    MAPPER.get_or_init(|| {
        let domains: Vec<Name> = ETCD_DOMAINS.iter().map(|d| name(d)).collect();
        KeyMapper::new(ETCD_PREFIX, &domains)
    })
}

/// A query for (`qname`, `qtype`), with EDNS advertising `payload` when given.
fn question_packet(qname: &Name, qtype: RecordType, payload: Option<u16>) -> Option<Vec<u8>> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Question::query(qname.clone(), qtype));
    if let Some(payload) = payload {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m.to_vec().ok()
}

/// Run an etcd key and value through the key mapping and the value decoder and, when both
/// accept them, ask A, SRV and TXT of the name over UDP (plain and EDNS) and TCP, from an
/// index holding just that entry. Panics only on a bug.
pub fn etcd_value(key: &[u8], value: &[u8]) {
    let mapper = key_mapper();
    let mapped = mapper.name_of(key);
    let direct = mapper.name_key_of(key);
    if direct != mapped.as_ref().map(NameKey::new).map_err(Clone::clone) {
        panic!(
            "key {}: name_key_of {direct:?} but name_of {mapped:?}",
            hex(key)
        );
    }
    let spelling = mapper.spelling(key);
    let service = Service::from_json(value);
    if let Ok(name) = &mapped {
        let lower = std::str::from_utf8(key).map(str::to_ascii_lowercase);
        if lower.as_deref() != Ok(mapper.key_of(name).as_str()) {
            panic!(
                "key {} maps to {name}, which maps back to {}",
                hex(key),
                mapper.key_of(name)
            );
        }
    }
    let (Ok(qname), Ok(service)) = (mapped, service) else {
        return;
    };
    let handle = IndexHandle::default();
    let mut indexer = Indexer::new(handle.clone());
    indexer.apply(Update::Etcd(EtcdChange::Reset {
        revision: 1,
        part: Part::Whole,
        entries: vec![ServiceEntry {
            key: NameKey::new(&qname),
            spelling,
            service,
        }],
        domains: domains(),
    }));
    indexer.publish();
    let r = responder(&handle, 0, Arc::default());
    for qtype in [RecordType::A, RecordType::SRV, RecordType::TXT] {
        for (transport, payload) in [
            (Transport::Udp, None),
            (Transport::Udp, Some(EDNS_PAYLOAD)),
            (Transport::Tcp, None),
        ] {
            let Some(packet) = question_packet(&qname, qtype, payload) else {
                continue;
            };
            let Got::Reply(out, m) = answer(&r, &packet, transport) else {
                panic!("no reply to {qname} {qtype} for the key {}", hex(key));
            };
            let rcode = m.metadata.response_code;
            if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
                panic!(
                    "{rcode} for {qname} {qtype} ({transport:?}) stored under key {} value {}\n reply: {}",
                    hex(key),
                    hex(value),
                    hex(&out)
                );
            }
        }
    }
}

/// The files of `fuzz/<dir>/<target>/` (sorted), for replaying a corpus.
pub fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The etcd_value target's split of one input: key, then value after the first 0x00.
pub fn split_etcd_input(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

#[cfg(test)]
mod tests;
