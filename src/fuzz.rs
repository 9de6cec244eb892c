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
//! whose name does not map back to it. The cargo-fuzz targets in `fuzz/` call these; the smoke test below
//! replays `fuzz/corpus` and `fuzz/regressions` and mutates the corpus for a few seconds, so
//! CI runs a short fuzz on every test run.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::dns::TtlPolicy;
use crate::index::{IndexHandle, Indexer};
use crate::metrics::Metrics;
use crate::name_key::NameKey;
use crate::record::Service;
use crate::server::encode::MAX_MESSAGE;
use crate::server::request::{FLAG_QR, Query};
use crate::server::respond::{EDNS_PAYLOAD, PLAIN_UDP, Scratch};
use crate::server::{Outcome, Responder, Settings, Transport};
use crate::source::key::KeyMapper;
use crate::source::{EtcdChange, EtcdKey, Part, ServiceEntry, Update, ZoneSet, zonefile};
use crate::xfr::tsig::{Algorithm, Key};
use crate::xfr::{AllowRule, Keyring, XfrSettings};

/// The etcd prefix keys are read under.
pub const ETCD_PREFIX: &str = "/skydns";
/// The domains etcd keys may name (the fixture's zone-file zone is one of them).
pub const ETCD_DOMAINS: [&str; 3] = ["skydns.test.", "fuzz.test.", "10.in-addr.arpa."];
/// The zone-file zones of the [`query`] fixture: [`ZONE_FILE`], and a zone of large RRsets
/// below it (so a transfer of the first stays small).
pub const ZONE: &str = "fuzz.test.";
pub const BIG_ZONE: &str = "big.fuzz.test.";
/// The TSIG key of the [`query`] fixture (`hmac-sha256`, secret [`TSIG_SECRET`]).
pub const TSIG_KEY: &str = "fuzz-key.";
pub const TSIG_SECRET: &[u8] = b"srvd fuzz fixture tsig secret 32";
/// The address the [`query`] fixture's queries come from.
pub const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The zone file of [`ZONE`].
const ZONE_FILE: &str = r#"$TTL 30
@        IN SOA   ns hostmaster ( 2026010101 7200 1800 86400 5 )
@        IN NS    ns
@        IN NS    ns.elsewhere.example.
@        IN MX    10 mail
@        IN MX    20 mail.elsewhere.example.
@        IN TXT   "v=spf1 -all"
@        IN CAA   0 issue "ca.example.net"
ns       IN A     192.0.2.53
ns       IN AAAA  2001:db8::53
mail     IN A     192.0.2.25
web      IN A     192.0.2.11
web      IN A     192.0.2.12
web      IN AAAA  2001:db8::11
web      IN TXT   "version=1.4.2" "owner=platform"
web-1    IN A     192.0.2.11
web-1    IN AAAA  2001:db8::11
web-2    IN A     192.0.2.12
_http._tcp.web IN SRV 10 60 8080 web-1
_http._tcp.web IN SRV 10 40 8080 web-2
_http._tcp.web IN SRV 20 0 8080 svc.skydns.test.
_http._tcp.web IN SRV 30 0 8080 web.elsewhere.example.
www      IN CNAME web
api      IN CNAME www
loop1    IN CNAME loop2
loop2    IN CNAME loop1
out      IN CNAME www.elsewhere.example.
toetcd   IN CNAME 1.web.skydns.test.
dangling IN CNAME nothing
*.wild   IN A     192.0.2.50
*.wild   IN TXT   "wildcard"
*.wild   IN MX    10 mail
deep.a.b.c IN A   192.0.2.60
sub      IN NS    ns.sub
sub      IN NS    ns.elsewhere.example.
sub      IN DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub   IN A     192.0.2.54
ns.sub   IN AAAA  2001:db8::54
dname    IN DNAME elsewhere.example.
ptr      IN PTR   web
hinfo    IN HINFO "cpu" "os"
sshfp    IN SSHFP 1 1 123456789abcdef67890123456789abcdef67890
tlsa     IN TLSA  3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
naptr    IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
unknown  IN TYPE65280 \# 4 0a000001
MiXeD    IN A     192.0.2.70
"#;

/// The zone file of [`BIG_ZONE`]: RRsets too large for UDP (`many`, `bigtxt`) and for TCP
/// (`huge`), and a name of nearly 255 bytes.
fn big_zone_text() -> String {
    let mut text =
        String::from("$TTL 30\n@ IN SOA ns.fuzz.test. hostmaster.fuzz.test. 7 1 1 1 5\n");
    for i in 1..=40 {
        text.push_str(&format!("many IN A 192.0.2.{i}\n"));
    }
    for i in 0..8 {
        text.push_str(&format!(
            "bigtxt IN TXT \"{}\"\n",
            format!("{i}").repeat(200)
        ));
    }
    for i in 0..300 {
        text.push_str(&format!("huge IN TXT \"{i:03}{}\"\n", "h".repeat(250)));
    }
    let long: Vec<String> = (0..3).map(|i| format!("{i}").repeat(60)).collect();
    text.push_str(&format!("{}.l IN A 192.0.2.99\n", long.join(".")));
    text
}

/// The etcd services of the [`query`] fixture, one `owner value` a line (see
/// [`etcd_services`] for the generated ones).
const SERVICES: &str = r#"
skydns.test.             {"host":"10.0.0.100"}
1.web.skydns.test.       {"host":"10.0.0.1","port":8080}
2.web.skydns.test.       {"host":"10.0.0.2","port":8080,"priority":20,"weight":50}
3.web.skydns.test.       {"host":"2001:db8::3","port":8443}
4.web.skydns.test.       {"host":"web.fuzz.test.","port":80}
5.web.skydns.test.       {"host":"www.elsewhere.example.","port":80}
svc.skydns.test.         {"host":"10.0.0.9","port":53}
mail.skydns.test.        {"host":"mail.fuzz.test.","mail":true,"priority":5}
txt.skydns.test.         {"text":"hello world"}
both.skydns.test.        {"host":"10.0.0.10","text":"with text","ttl":60}
1.grp.skydns.test.       {"host":"10.0.1.1","group":"g1"}
2.grp.skydns.test.       {"host":"10.0.1.2","group":"g2"}
3.grp.skydns.test.       {"host":"10.0.1.3","group":"g1"}
x.y.strip.skydns.test.   {"host":"svc.skydns.test.","targetstrip":1,"port":1}
loopa.skydns.test.       {"host":"loopb.skydns.test."}
loopb.skydns.test.       {"host":"loopa.skydns.test."}
self.skydns.test.        {"host":"self.skydns.test."}
noport.skydns.test.      {"host":"10.0.0.11","port":-1}
maxttl.skydns.test.      {"host":"10.0.0.12","ttl":4294967295}
1.east.prod.skydns.test. {"host":"10.0.2.1","port":7}
svc.fuzz.test.           {"host":"10.2.0.1","port":8080}
web.fuzz.test.           {"host":"10.2.0.2","port":8081}
x.sub.fuzz.test.         {"host":"10.2.0.3"}
y.wild.fuzz.test.        {"host":"10.2.0.4","text":"not wild"}
1.0.0.10.in-addr.arpa.   {"host":"svc.skydns.test."}
"#;

/// The etcd services of the [`query`] fixture: (owner, JSON value): [`SERVICES`], a service
/// of 100 instances (`big`) and a 3000-byte text (`longtxt`).
fn etcd_services() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = SERVICES
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(owner, value)| (owner.to_string(), value.trim().to_string()))
        .collect();
    for i in 0..100 {
        out.push((
            format!("{i}.big.skydns.test."),
            format!(r#"{{"host":"10.1.{}.{}","port":9000}}"#, i / 250, i % 250),
        ));
    }
    out.push((
        "longtxt.skydns.test.".into(),
        format!(r#"{{"text":"{}"}}"#, "t".repeat(3000)),
    ));
    out
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("fixture name")
}

fn domains() -> Vec<(Name, i64)> {
    ETCD_DOMAINS.iter().map(|d| (name(d), 1)).collect()
}

/// The fixture's services as index entries (one lease TTL, one key spelled in upper case).
fn service_entries() -> Vec<ServiceEntry> {
    let mut entries: Vec<ServiceEntry> = etcd_services()
        .iter()
        .map(|(owner, value)| ServiceEntry {
            key: NameKey::new(&name(owner)),
            spelling: None,
            service: Service::from_json(value.as_bytes()).expect("fixture value"),
        })
        .collect();
    entries[1].service.lease_ttl = Some(3);
    let mut case = entries[1].clone();
    case.spelling = Some("test/skydns/Web/1".into());
    case.service = Service::from_json(br#"{"host":"10.0.0.111","port":8080}"#).expect("value");
    entries.push(case);
    entries
}

/// The zone files loaded by the zone-file source (through a private temporary directory).
fn load_zone() -> ZoneSet {
    let base = std::env::temp_dir();
    let mut n = 0u32;
    let dir = loop {
        let dir = base.join(format!("srvd-fuzz-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => panic!("fuzz fixture: cannot create {}: {e}", dir.display()),
        }
    };
    let loaded = std::fs::write(dir.join(format!("{ZONE}zone")), ZONE_FILE)
        .and_then(|()| std::fs::write(dir.join(format!("{BIG_ZONE}zone")), big_zone_text()))
        .map_err(|e| format!("{e}"))
        .and_then(|()| {
            zonefile::load_dir(&dir, zonefile::Limits::default()).map_err(|e| format!("{e:?}"))
        });
    let _ = std::fs::remove_dir_all(&dir);
    loaded.unwrap_or_else(|e| panic!("fuzz fixture: the zone does not load: {e}"))
}

fn metrics() -> Arc<Metrics> {
    static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();
    METRICS.get_or_init(|| Arc::new(Metrics::new())).clone()
}

fn responder(handle: &IndexHandle, cache_bytes: u64, xfr: Arc<XfrSettings>) -> Responder {
    let settings = Settings {
        ttl: TtlPolicy::default(),
        rotate: true,
        recursion_available: false,
        cache_bytes,
    };
    Responder::new(handle.clone(), settings, None, xfr, metrics())
}

/// The TSIG key of the [`query`] fixture.
pub fn tsig_key() -> Arc<Key> {
    static KEY: OnceLock<Arc<Key>> = OnceLock::new();
    KEY.get_or_init(|| {
        Arc::new(Key::new(TSIG_KEY, Algorithm::HmacSha256, TSIG_SECRET).expect("fixture key"))
    })
    .clone()
}

/// Transfers: [`PEER`] may transfer every zone unsigned but `skydns.test.`, which takes
/// [`TSIG_KEY`].
fn xfr_settings() -> XfrSettings {
    let mut keys = Keyring::default();
    keys.insert(Key::new(TSIG_KEY, Algorithm::HmacSha256, TSIG_SECRET).expect("fixture key"));
    let rule = |text: &str| AllowRule::parse(text, &keys).expect("fixture rule");
    let mut zones = HashMap::new();
    zones.insert(
        NameKey::new(&name("skydns.test.")),
        (
            vec![rule(&format!("127.0.0.0/8,key={TSIG_KEY}"))],
            Vec::new(),
        ),
    );
    XfrSettings {
        allow: vec![rule("127.0.0.0/8")],
        zones,
        keys,
        ..XfrSettings::default()
    }
}

/// The [`query`] fixture: one index, answered without and with the answer cache.
struct Fixture {
    /// The zones' serials in the first version (for the tests' IXFR queries).
    #[cfg_attr(not(test), allow(dead_code))]
    first_serials: Vec<(Name, u32)>,
    plain: Responder,
    cached: Responder,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let handle = IndexHandle::default();
        let mut indexer = Indexer::new(handle.clone());
        indexer.apply(Update::Zones(load_zone()));
        indexer.apply(Update::Etcd(EtcdChange::Reset {
            revision: 1,
            part: Part::Whole,
            entries: service_entries(),
            domains: domains(),
        }));
        indexer.publish();
        let first_serials = handle
            .load()
            .zones()
            .iter()
            .map(|z| (z.origin.clone(), z.serial))
            .collect();
        // A second version of both etcd zones (one put, one delete), for IXFR.
        indexer.apply(Update::Etcd(EtcdChange::Put {
            revision: 2,
            entry: ServiceEntry {
                key: NameKey::new(&name("2.web.skydns.test.")),
                spelling: None,
                service: Service::from_json(br#"{"host":"10.0.0.22","port":8082}"#)
                    .expect("fixture value"),
            },
        }));
        indexer.apply(Update::Etcd(EtcdChange::Delete {
            revision: 3,
            key: EtcdKey {
                name: NameKey::new(&name("svc.fuzz.test.")),
                spelling: None,
            },
        }));
        indexer.publish();
        let xfr = Arc::new(xfr_settings());
        Fixture {
            plain: responder(&handle, 0, xfr.clone()),
            cached: responder(&handle, 4 << 20, xfr),
            first_serials,
        }
    })
}

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
mod tests {
    use super::*;

    /// xorshift64*: the same mutations on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that matter in DNS messages and JSON values.
    const INTERESTING: [u8; 16] = [
        0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff, 0x29, b'.', b'/', b'"', b'{', b'}', b'A',
        b'0',
    ];

    /// One input: a seed with 1..=4 mutations (flip, set, truncate, splice, insert, delete,
    /// duplicate).
    fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut data = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            let len = data.len();
            match rng.below(8) {
                0 if len > 0 => {
                    let at = rng.below(len);
                    data[at] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let at = rng.below(len);
                    data[at] = if rng.below(2) == 0 {
                        INTERESTING[rng.below(INTERESTING.len())]
                    } else {
                        rng.next() as u8
                    };
                }
                2 => data.truncate(rng.below(len + 1)),
                3 => {
                    let other = &seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len() + 1);
                    let cut = rng.below(len + 1);
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
                4 => {
                    let at = rng.below(len + 1);
                    let n = 1 + rng.below(8);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    data.splice(at..at, bytes);
                }
                5 if len > 0 => {
                    let at = rng.below(len);
                    let end = (at + 1 + rng.below(16)).min(len);
                    data.drain(at..end);
                }
                6 if len > 0 => {
                    let at = rng.below(len);
                    let end = (at + 1 + rng.below(32)).min(len);
                    let piece = data[at..end].to_vec();
                    let to = rng.below(len + 1);
                    data.splice(to..to, piece);
                }
                7 if len >= 12 => {
                    // A section count or the header's flags.
                    let at = 2 + 2 * rng.below(5);
                    data[at + 1] = data[at + 1].wrapping_add(1 + rng.below(2) as u8);
                }
                _ => {}
            }
        }
        data
    }

    fn read_all(files: &[PathBuf]) -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect()
    }

    fn run(target: &str, input: &[u8]) {
        match target {
            "query" => query(input),
            _ => {
                let (key, value) = split_etcd_input(input);
                etcd_value(key, value);
            }
        }
    }

    /// The regressions of bugs found and not fixed yet: `fuzz/regressions/OPEN`, one
    /// `<target>/<file>` a line (`#` comments).
    fn open_bugs() -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/OPEN");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('#').next())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Replay the corpus and the regressions of `target`; the inputs to mutate. A regression
    /// listed in `OPEN` must still fail (and is not mutated); when it passes, the bug is fixed
    /// and its line must go.
    fn replay(target: &str) -> Vec<Vec<u8>> {
        let corpus = read_all(&inputs("corpus", target));
        assert!(corpus.len() >= 4, "fuzz/corpus/{target} has its seeds");
        for input in &corpus {
            run(target, input);
        }
        let open = open_bugs();
        let mut seeds = corpus;
        for path in inputs("regressions", target) {
            let input = read_all(std::slice::from_ref(&path)).remove(0);
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            let id = format!("{target}/{file}");
            if open.contains(&id) {
                let fails = std::panic::catch_unwind(|| run(target, &input)).is_err();
                assert!(
                    fails,
                    "{id} passes now: remove it from fuzz/regressions/OPEN"
                );
                eprintln!("fuzz/regressions/{id}: a known open bug (fuzz/regressions/OPEN)");
            } else {
                run(target, &input);
                seeds.push(input);
            }
        }
        seeds
    }

    /// `packet` signed with the fixture's key, now.
    fn signed(mut packet: Vec<u8>) -> Vec<u8> {
        crate::xfr::tsig::sign_request(&tsig_key(), &mut packet);
        packet
    }

    /// An IXFR query for `zone` from `serial` (its SOA in the authority section).
    fn ixfr(zone: &str, serial: u32, payload: Option<u16>) -> Vec<u8> {
        use hickory_proto::rr::RData;
        use hickory_proto::rr::rdata::SOA;
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.add_query(Question::query(name(zone), RecordType::IXFR));
        let soa = SOA::new(name(zone), name(zone), serial, 0, 0, 0, 0);
        m.add_authority(Record::from_rdata(name(zone), 0, RData::SOA(soa)));
        if let Some(payload) = payload {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn first_serial(zone: &str) -> u32 {
        let zone = name(zone);
        fixture()
            .first_serials
            .iter()
            .find(|(z, _)| *z == zone)
            .map(|(_, s)| *s)
            .unwrap()
    }

    /// Queries signed now (valid signatures, which the corpus's cannot keep), and transfers.
    fn fresh_seeds() -> Vec<Vec<u8>> {
        let q =
            |qname: &str, qtype, payload| question_packet(&name(qname), qtype, payload).unwrap();
        let old = first_serial("skydns.test.");
        vec![
            signed(q("web.fuzz.test.", RecordType::A, None)),
            signed(q("big.skydns.test.", RecordType::SRV, Some(1232))),
            signed(q("skydns.test.", RecordType::AXFR, None)),
            signed(ixfr("skydns.test.", old, None)),
            signed(ixfr("skydns.test.", old, Some(1232))),
            ixfr("fuzz.test.", first_serial("fuzz.test."), None),
            ixfr(
                "fuzz.test.",
                first_serial("fuzz.test.").wrapping_add(7),
                None,
            ),
            q("fuzz.test.", RecordType::AXFR, None),
            q("10.in-addr.arpa.", RecordType::AXFR, Some(4096)),
        ]
    }

    #[test]
    fn the_fixture_answers_as_expected() {
        let f = fixture();
        let reply = |packet: &[u8], transport| match answer(&f.plain, packet, transport) {
            Got::Reply(_, m) => m,
            _ => panic!("no reply to {}", hex(packet)),
        };
        let ask = |qname: &str, qtype, payload, transport| {
            reply(
                &question_packet(&name(qname), qtype, payload).unwrap(),
                transport,
            )
        };
        let m = ask(
            "_http._tcp.web.fuzz.test.",
            RecordType::SRV,
            None,
            Transport::Udp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        // Four from the zone file, one from the etcd service at `web.fuzz.test.`.
        assert_eq!(m.answers.len(), 5, "{m}");
        let m = ask("big.skydns.test.", RecordType::SRV, None, Transport::Udp);
        assert!(
            m.metadata.truncation || m.answers.len() < 100,
            "100 SRV in 512 bytes? {m}"
        );
        let m = ask("huge.big.fuzz.test.", RecordType::TXT, None, Transport::Tcp);
        assert!(
            m.answers.len() > 200 && m.answers.len() < 300,
            "{}",
            m.answers.len()
        );
        let m = ask("nope.fuzz.test.", RecordType::A, Some(1232), Transport::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // Two keys for one name (`.../web/1` and `.../Web/1`).
        let m = ask("1.web.skydns.test.", RecordType::A, None, Transport::Udp);
        assert_eq!(m.answers.len(), 2, "{m}");
        let m = ask("x.sub.fuzz.test.", RecordType::A, None, Transport::Udp);
        assert!(!m.authorities.is_empty(), "a referral");

        // Signed queries get signed answers; transfers stream where allowed.
        let m = reply(
            &signed(question_packet(&name("web.fuzz.test."), RecordType::A, None).unwrap()),
            Transport::Udp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let last = m.additionals.last().map(|r| u16::from(r.record_type()));
        assert_eq!(last, Some(TYPE_TSIG), "{m}");
        let axfr = |zone: &str| question_packet(&name(zone), RecordType::AXFR, None).unwrap();
        let streams =
            |packet: &[u8]| matches!(answer(&f.plain, packet, Transport::Tcp), Got::Transfer);
        assert!(streams(&axfr("fuzz.test.")));
        assert!(streams(&signed(axfr("skydns.test."))));
        assert!(
            !streams(&axfr("skydns.test.")),
            "skydns.test. takes the key"
        );
        let m = reply(&axfr("skydns.test."), Transport::Tcp);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        let old = first_serial("skydns.test.");
        assert!(streams(&signed(ixfr("skydns.test.", old, None))));
        let m = reply(
            &signed(ixfr("skydns.test.", old, Some(1232))),
            Transport::Udp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        // The difference (40 records) does not fit 1232 bytes: the SOA alone (RFC 1995 §2).
        assert_eq!(m.answers.len(), 1, "{m}");
    }

    #[test]
    fn smoke_query() {
        let mut seeds = replay("query");
        for seed in fresh_seeds() {
            query(&seed);
            seeds.push(seed);
        }
        let mut rng = Rng(0x5eed_d0e5_0000_0001);
        for _ in 0..200_000 {
            query(&mutate(&mut rng, &seeds));
        }
    }

    #[test]
    fn smoke_etcd_value() {
        let seeds = replay("etcd_value");
        let mut rng = Rng(0x5eed_e7cd_0000_0002);
        for _ in 0..50_000 {
            let input = mutate(&mut rng, &seeds);
            let (key, value) = split_etcd_input(&input);
            etcd_value(key, value);
        }
    }
}
