//! The fixed world the fuzz entry points answer from: a zone file (and a big zone), etcd
//! services in two versions (so IXFR has a difference to send), the TSIG key and transfer
//! rules, and the responder built on them once per process. Constant data: the
//! `expect`s here can only fail if the fixture itself is edited wrong.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::Name;

use crate::dns::TtlPolicy;
use crate::index::{IndexHandle, Indexer};
use crate::metrics::Metrics;
use crate::name_key::NameKey;
use crate::record::Service;
use crate::server::{Responder, Settings};
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
pub(super) const ZONE_FILE: &str = r#"$TTL 30
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
pub(super) fn big_zone_text() -> String {
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
pub(super) const SERVICES: &str = r#"
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
pub(super) fn etcd_services() -> Vec<(String, String)> {
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

pub(super) fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("fixture name")
}

pub(super) fn domains() -> Vec<(Name, i64)> {
    ETCD_DOMAINS.iter().map(|d| (name(d), 1)).collect()
}

/// The fixture's services as index entries (one lease TTL, one key spelled in upper case).
pub(super) fn service_entries() -> Vec<ServiceEntry> {
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
pub(super) fn load_zone() -> ZoneSet {
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

pub(super) fn metrics() -> Arc<Metrics> {
    static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();
    METRICS.get_or_init(|| Arc::new(Metrics::new())).clone()
}

pub(super) fn responder(
    handle: &IndexHandle,
    cache_bytes: u64,
    xfr: Arc<XfrSettings>,
) -> Responder {
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
pub(super) fn xfr_settings() -> XfrSettings {
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
pub(super) struct Fixture {
    /// The zones' serials in the first version (for the tests' IXFR queries).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) first_serials: Vec<(Name, u32)>,
    pub(super) plain: Responder,
    pub(super) cached: Responder,
}

pub(super) fn fixture() -> &'static Fixture {
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
