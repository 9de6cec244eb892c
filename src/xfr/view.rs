//! The transfer view: the one deterministic set of records a zone transfer carries.
//!
//! Secondaries answer literally, so what srvd computes per query (subtree answers, query-side
//! wildcards, the apex listing the whole zone, rotation) cannot travel. A zone's view is:
//!
//! - every zone-file record of the zone, its SOA with the zone's serial (synthesized SOA and
//!   NS at the apex when the zone file has none, as srvd serves them);
//! - each etcd key's own records at its own name: A/AAAA for an address host; TXT for `text`;
//!   SRV for a host with a port (target: the host name, or the key's name minus
//!   `targetstrip`); MX for `mail`; a CNAME for a name host without an explicit port and
//!   without text (a CNAME cannot share its name);
//! - at every service name (the parent of an etcd key, below the apex and outside
//!   `dns.<zone>`): the SRV and A/AAAA records srvd answers there (the whole subtree, CoreDNS
//!   weights), and the same SRV records at `*._tcp.<service>` and `*._udp.<service>`, so a
//!   stock RFC 2782 client asking a secondary for `_http._tcp.<service>` gets them through an
//!   RFC 4592 wildcard, while every other unknown name below the service stays NXDOMAIN;
//! - at the apex, A/AAAA only from keys under `apex.dns.<zone>` (never the whole zone).
//!
//! Records of one name come sorted (type, then data), so two srvd replicas with the same data
//! send the same bytes. A service with more instances than one 64 KiB answer holds is cut
//! there, as srvd's own answer is.

use std::cell::RefCell;
use std::collections::BTreeSet;

use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::dns::{self, TtlPolicy};
use crate::index::Snapshot;
use crate::name_key::NameKey;
use crate::record::Host;
use crate::source::ServiceEntry;

/// Answer size the service aggregates are computed for (a TCP message).
const AGGREGATE_BYTES: usize = 65_000;

/// A zone of a snapshot, seen as transfers see it.
pub struct View<'a> {
    snap: &'a Snapshot,
    zone: usize,
    ttl: &'a TtlPolicy,
    memo: RefCell<Memo>,
}

/// The aggregates of the last service asked about: a service name and its `*._tcp` and
/// `*._udp` wildcards come one after another in name order and share its SRV records, so
/// each subtree lookup runs once per service (not three times).
#[derive(Default)]
pub struct Memo {
    service: Option<NameKey>,
    records: Vec<(RecordType, Vec<Record>)>,
}

/// The RFC 2782 protocol labels whose `_service._proto.<service>` names the view covers.
const PROTOCOLS: [&[u8]; 2] = [b"_tcp", b"_udp"];

/// `*._tcp.<service>` and `*._udp.<service>`: the wildcards that answer a stock RFC 2782
/// client's `_http._tcp.<service>` SRV question (RFC 4592) without covering any other name
/// below the service (those stay NXDOMAIN, as srvd answers them).
fn srv_wildcards(service: &NameKey) -> [NameKey; 2] {
    PROTOCOLS
        .map(|proto| NameKey::from_labels_root_first(service.labels().chain([proto, &b"*"[..]])))
}

/// The service whose SRV wildcard `key` is, if it has that form.
fn service_of_wildcard(key: &NameKey) -> Option<NameKey> {
    let mut labels = key.labels().rev();
    let (star, proto) = (labels.next()?, labels.next()?);
    let proto_ok = PROTOCOLS.iter().any(|p| p.eq_ignore_ascii_case(proto));
    (star == b"*" && proto_ok).then(|| key.self_and_ancestors().nth(2))?
}

fn parent(key: &NameKey) -> Option<NameKey> {
    key.self_and_ancestors().nth(1)
}

/// What orders the records of one name: type, then the data's wire form.
pub fn order_key(record: &Record) -> (u16, Vec<u8>) {
    let mut wire = Vec::with_capacity(32);
    let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut wire);
    let _ = record.data.emit(&mut encoder);
    (u16::from(record.record_type()), wire)
}

fn sort(records: &mut Vec<Record>) {
    records.sort_by_cached_key(order_key);
    records.dedup_by(|a, b| a.record_type() == b.record_type() && a.data == b.data);
}

impl<'a> View<'a> {
    pub fn new(snap: &'a Snapshot, zone: usize, ttl: &'a TtlPolicy) -> Self {
        View::with_memo(snap, zone, ttl, Memo::default())
    }

    /// A view that starts with the aggregates a previous view of the same snapshot kept.
    pub fn with_memo(snap: &'a Snapshot, zone: usize, ttl: &'a TtlPolicy, memo: Memo) -> Self {
        View {
            snap,
            zone,
            ttl,
            memo: RefCell::new(memo),
        }
    }

    /// The aggregates kept, for the next view of the same snapshot.
    pub fn into_memo(self) -> Memo {
        self.memo.into_inner()
    }

    fn apex(&self) -> &NameKey {
        &self.snap.zones()[self.zone].key
    }

    /// The zone a name is served in is this one (not a more specific zone).
    fn owns(&self, key: &NameKey) -> bool {
        self.snap.zone_of(key).is_some_and(|(z, _)| z == self.zone)
    }

    /// Whether `key` is under `dns.<zone>` (name servers, apex addresses).
    fn in_dns(&self, key: &NameKey) -> bool {
        let dns = NameKey::from_labels_root_first(self.apex().labels().chain([&b"dns"[..]]));
        key.is_at_or_below(&dns)
    }

    /// Whether `key` is a service name: the parent of an etcd key, below the apex, outside
    /// `dns.<zone>`.
    fn is_service(&self, key: &NameKey) -> bool {
        if key == self.apex() || !key.is_at_or_below(self.apex()) || self.in_dns(key) {
            return false;
        }
        let depth = key.label_count() + 1;
        self.snap
            .services_below(key)
            .any(|e| e.key.label_count() == depth)
    }

    /// Every name the view has records at, in key order.
    pub fn names(&self) -> BTreeSet<NameKey> {
        let mut out = BTreeSet::new();
        let (records, services) = self.snap.names_below(self.apex());
        out.insert(self.apex().clone());
        out.extend(records.filter(|k| self.owns(k)).cloned());
        let mut parents = BTreeSet::new();
        for key in services.filter(|k| self.owns(k)) {
            out.insert(key.clone());
            if let Some(p) = parent(key) {
                parents.insert(p);
            }
        }
        for p in parents {
            if self.owns(&p) && self.is_service(&p) {
                out.extend(srv_wildcards(&p));
                out.insert(p);
            }
        }
        out
    }

    /// The names a change at `key` can alter: itself, its ancestors' service records and
    /// their wildcards, the apex when it is under `dns.<zone>`.
    pub fn affected_by(&self, key: &NameKey) -> Vec<NameKey> {
        let mut out = vec![key.clone()];
        for ancestor in key.self_and_ancestors().skip(1) {
            if &ancestor == self.apex() || !ancestor.is_at_or_below(self.apex()) {
                break;
            }
            out.extend(srv_wildcards(&ancestor));
            out.push(ancestor);
        }
        if self.in_dns(key) {
            out.push(self.apex().clone());
        }
        out
    }

    /// The view's records owned by `key` (sorted; empty when it has none).
    pub fn records_at(&self, key: &NameKey) -> Vec<Record> {
        if !key.is_at_or_below(self.apex()) || !self.owns(key) {
            return Vec::new();
        }
        let name = key.to_name();
        let mut out = Vec::new();
        let wildcard_of = service_of_wildcard(key).filter(|_| self.snap.records_at(key).is_empty());
        if let Some(service) = wildcard_of {
            if self.is_service(&service) {
                out.extend(self.aggregate(&service, &name, RecordType::SRV));
            }
            sort(&mut out);
            return out;
        }
        out.extend(self.stored(key, &name));
        for entry in self.snap.services_at(key) {
            out.extend(self.own(entry, &name));
        }
        if key == self.apex() {
            out.extend(self.apex_addresses(&name));
        } else if self.is_service(key) {
            for t in [RecordType::SRV, RecordType::A, RecordType::AAAA] {
                out.extend(self.aggregate(key, &name, t));
            }
        }
        if out.iter().any(|r| r.record_type() == RecordType::CNAME) && out.len() > 1 {
            out.retain(|r| r.record_type() != RecordType::CNAME);
        }
        sort(&mut out);
        out
    }

    /// Zone-file records at a name, and the apex's SOA/NS, as srvd serves them.
    fn stored(&self, key: &NameKey, name: &Name) -> Vec<Record> {
        let answer = |t| dns::lookup(self.snap, self.ttl, name, t, AGGREGATE_BYTES);
        let mut out: Vec<Record> = self
            .snap
            .records_at(key)
            .iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .cloned()
            .collect();
        for r in &mut out {
            r.ttl = self.ttl.clamp(r.ttl);
        }
        if key == self.apex() {
            out.retain(|r| r.record_type() != RecordType::NS);
            for t in [RecordType::SOA, RecordType::NS] {
                out.extend(
                    answer(t)
                        .answers
                        .into_iter()
                        .filter(|r| r.record_type() == t),
                );
            }
        }
        out
    }

    /// An etcd key's own records.
    fn own(&self, entry: &ServiceEntry, name: &Name) -> Vec<Record> {
        let s = &entry.service;
        let ttl = self.ttl.for_service(s);
        let mut out = Vec::new();
        let target = match &s.host {
            Host::Ip(ip) => {
                out.push(Record::from_rdata(
                    name.clone(),
                    ttl,
                    match ip {
                        std::net::IpAddr::V4(v4) => RData::A((*v4).into()),
                        std::net::IpAddr::V6(v6) => RData::AAAA((*v6).into()),
                    },
                ));
                Some(entry.key.strip_leftmost(s.targetstrip).to_name())
            }
            Host::Name(host) => {
                let explicit_port = s.port.is_some_and(|p| p > 0);
                if s.text.is_none() && !explicit_port && !s.mail {
                    out.push(Record::from_rdata(
                        name.clone(),
                        ttl,
                        RData::CNAME(CNAME((**host).clone())),
                    ));
                }
                Some((**host).clone())
            }
            Host::None => None,
        };
        if let Some(text) = &s.text {
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
            out.push(Record::from_rdata(
                name.clone(),
                ttl,
                RData::TXT(hickory_proto::rr::rdata::TXT::from_bytes(chunks)),
            ));
        }
        if let Some(target) = target {
            let cname = out.iter().any(|r| r.record_type() == RecordType::CNAME);
            if let (Some(port), false) = (s.port, cname) {
                let srv = hickory_proto::rr::rdata::SRV::new(s.priority, 100, port, target.clone());
                out.push(Record::from_rdata(name.clone(), ttl, RData::SRV(srv)));
            }
            if s.mail {
                let mx = hickory_proto::rr::rdata::MX::new(s.priority, target);
                out.push(Record::from_rdata(name.clone(), ttl, RData::MX(mx)));
            }
        }
        out
    }

    /// srvd's own answer of type `t` at a service name, owned by `owner`.
    fn aggregate(&self, service: &NameKey, owner: &Name, t: RecordType) -> Vec<Record> {
        let mut memo = self.memo.borrow_mut();
        if memo.service.as_ref() != Some(service) {
            memo.service = Some(service.clone());
            memo.records.clear();
        }
        let records = match memo.records.iter().position(|(kind, _)| *kind == t) {
            Some(i) => &memo.records[i].1,
            None => {
                let answer =
                    dns::lookup(self.snap, self.ttl, &service.to_name(), t, AGGREGATE_BYTES);
                let records = answer
                    .answers
                    .into_iter()
                    .filter(|r| r.record_type() == t)
                    .collect();
                memo.records.push((t, records));
                &memo.records[memo.records.len() - 1].1
            }
        };
        records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.name = owner.clone();
                r
            })
            .collect()
    }

    /// Apex addresses: only from keys under `apex.dns.<zone>`.
    fn apex_addresses(&self, name: &Name) -> Vec<Record> {
        let apex_dns =
            NameKey::from_labels_root_first(self.apex().labels().chain([&b"dns"[..], b"apex"]));
        let mut out = Vec::new();
        for entry in self.snap.services_below(&apex_dns) {
            if let Host::Ip(ip) = entry.service.host {
                let ttl = self.ttl.for_service(&entry.service);
                out.push(Record::from_rdata(
                    name.clone(),
                    ttl,
                    match ip {
                        std::net::IpAddr::V4(v4) => RData::A(v4.into()),
                        std::net::IpAddr::V6(v6) => RData::AAAA(v6.into()),
                    },
                ));
            }
        }
        out
    }

    /// The zone's SOA as the view carries it.
    pub fn soa(&self) -> Option<Record> {
        let name = self.apex().to_name();
        dns::lookup(self.snap, self.ttl, &name, RecordType::SOA, AGGREGATE_BYTES)
            .answers
            .into_iter()
            .find(|r| r.record_type() == RecordType::SOA)
    }
}
