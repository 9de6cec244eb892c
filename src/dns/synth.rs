//! Records synthesized from etcd services (and the zone SOA/NS when no zone file gives them).
//!
//! Pure functions: services in, records out, linear in the services (deduplication uses hash
//! sets keyed by name keys, never a scan of what was produced so far) and bounded by a
//! [`Budget`] of message bytes: no record is built once the message could not hold it. Owner
//! names are the query name as asked, so the query's case is preserved.

use std::net::IpAddr;

use rustc_hash::FxHashSet as HashSet;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record};

use super::ttl::TtlPolicy;
use crate::index::Zone;
use crate::name_key::NameKey;
use crate::record::Host;
use crate::source::ServiceEntry;

/// Bytes of message left for records (an estimate: owner names count as compressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget(pub usize);

/// Fixed bytes of a record besides its RDATA: a compressed owner, type, class, TTL, length.
const RECORD_OVERHEAD: usize = 12;

impl Budget {
    /// Take `rdata` bytes plus a record's overhead; false (and nothing taken) when they do
    /// not fit.
    pub fn take(&mut self, rdata: usize) -> bool {
        let need = RECORD_OVERHEAD + rdata;
        if need > self.0 {
            return false;
        }
        self.0 -= need;
        true
    }

    pub fn is_spent(&self) -> bool {
        self.0 < RECORD_OVERHEAD + 4
    }
}

/// SOA timers of a synthesized SOA (CoreDNS's values).
const SOA_REFRESH: i32 = 7200;
const SOA_RETRY: i32 = 1800;
const SOA_EXPIRE: i32 = 86400;

/// An A or AAAA record for an address.
pub fn address(owner: &Name, ip: IpAddr, ttl: u32) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(owner.clone(), ttl, data)
}

/// `name` without its `n` leftmost labels (unchanged when it has too few, as CoreDNS).
pub fn target_strip(name: &Name, n: u8) -> Name {
    let labels = name.num_labels();
    if n == 0 || n >= labels {
        return name.clone();
    }
    name.trim_to(usize::from(labels - n))
}

/// Address records of the services (of the family asked for), one per distinct address.
pub fn addresses(
    owner: &Name,
    services: &[&ServiceEntry],
    v6: bool,
    ttl: &TtlPolicy,
    budget: &mut Budget,
) -> Vec<Record> {
    let mut seen: HashSet<IpAddr> = HashSet::default();
    let size = if v6 { 16 } else { 4 };
    let mut out = Vec::new();
    for entry in services {
        if let Host::Ip(ip) = &entry.service.host
            && ip.is_ipv6() == v6
            && seen.insert(*ip)
        {
            if !budget.take(size) {
                break;
            }
            out.push(address(owner, *ip, ttl.for_service(&entry.service)));
        }
    }
    out
}

/// The first service whose host is a name: a CNAME candidate, with its TTL.
pub fn first_host_name(services: &[&ServiceEntry], ttl: &TtlPolicy) -> Option<(Name, u32)> {
    services.iter().find_map(|entry| match &entry.service.host {
        Host::Name(target) => Some(((**target).clone(), ttl.for_service(&entry.service))),
        _ => None,
    })
}

/// A CNAME record.
pub fn cname(owner: &Name, target: &Name, ttl: u32) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target.clone())))
}

/// Records that point at other names (SRV, MX), with what the additional section needs.
#[derive(Debug, Default)]
pub struct Pointers {
    pub records: Vec<Record>,
    /// Addresses of targets that are the keys' own names (the key's `host` IP).
    pub glue: Vec<Record>,
    /// Host-name targets, each once: their addresses are looked up.
    pub names: Vec<Name>,
}

/// Where a service points as an SRV/MX target (`targetstrip` applied), plus its glue address
/// when the target is the key's own name.
fn target_of(entry: &ServiceEntry) -> Option<(NameKey, Option<IpAddr>)> {
    let strip = entry.service.targetstrip;
    match &entry.service.host {
        Host::Name(name) => Some((NameKey::new(name).strip_leftmost(strip), None)),
        Host::Ip(ip) => Some((entry.key.strip_leftmost(strip), Some(*ip))),
        Host::None => None,
    }
}

/// Build pointer records: `make` gives each service's record data (for its target name) and
/// the key it is deduplicated on (None: the service makes no record).
fn pointers<K: std::hash::Hash + Eq>(
    owner: &Name,
    services: &[&ServiceEntry],
    ttl: &TtlPolicy,
    budget: &mut Budget,
    make: impl Fn(&ServiceEntry, &NameKey, &Name) -> Option<(RData, K)>,
) -> Pointers {
    let mut out = Pointers::default();
    let mut records_seen: HashSet<K> = HashSet::default();
    let mut glue_seen: HashSet<(NameKey, IpAddr)> = HashSet::default();
    let mut names_seen: HashSet<NameKey> = HashSet::default();
    for entry in services {
        let Some((target_key, ip)) = target_of(entry) else {
            continue;
        };
        let target = match &entry.service.host {
            Host::Name(name) if entry.service.targetstrip == 0 => (**name).clone(),
            _ => target_key.to_name(),
        };
        let Some((data, key)) = make(entry, &target_key, &target) else {
            continue;
        };
        let ttl = ttl.for_service(&entry.service);
        if records_seen.insert(key) {
            if !budget.take(6 + target_key.wire_len()) {
                break;
            }
            out.records
                .push(Record::from_rdata(owner.clone(), ttl, data));
        }
        match ip {
            Some(ip) if glue_seen.insert((target_key.clone(), ip)) => {
                out.glue.push(address(&target, ip, ttl));
            }
            Some(_) => {}
            None if names_seen.insert(target_key) => out.names.push(target),
            None => {}
        }
    }
    out
}

/// SRV answers: one per service with a port, weights scaled per priority as CoreDNS does
/// (`floor((100 / Σw) × w)`, at least 1) over the services returned.
pub fn srv(
    owner: &Name,
    services: &[&ServiceEntry],
    ttl: &TtlPolicy,
    budget: &mut Budget,
) -> Pointers {
    let mut sums: rustc_hash::FxHashMap<u16, u32> = rustc_hash::FxHashMap::default();
    for entry in services.iter().filter(|e| e.service.port.is_some()) {
        let s = &entry.service;
        *sums.entry(s.priority).or_default() += s.effective_weight();
    }
    pointers(owner, services, ttl, budget, |entry, key, target| {
        let s = &entry.service;
        let port = s.port?;
        let sum = sums.get(&s.priority).copied().unwrap_or(1).max(1);
        let scaled = ((100.0 / f64::from(sum)) * f64::from(s.effective_weight())).floor();
        let weight = (scaled as u16).max(1);
        let data = RData::SRV(SRV::new(s.priority, weight, port, target.clone()));
        Some((data, (key.clone(), port)))
    })
}

/// MX answers from services with `mail: true` (priority is the preference).
pub fn mx(
    owner: &Name,
    services: &[&ServiceEntry],
    ttl: &TtlPolicy,
    budget: &mut Budget,
) -> Pointers {
    pointers(owner, services, ttl, budget, |entry, key, target| {
        if !entry.service.mail {
            return None;
        }
        let preference = entry.service.priority;
        let data = RData::MX(MX::new(preference, target.clone()));
        Some((data, (key.clone(), preference)))
    })
}

/// TXT answers from the services' `text` (255-byte strings), one per distinct text.
pub fn txt(
    owner: &Name,
    services: &[&ServiceEntry],
    ttl: &TtlPolicy,
    budget: &mut Budget,
) -> Vec<Record> {
    let mut seen: HashSet<&str> = HashSet::default();
    let mut out = Vec::new();
    for e in services {
        let Some(text) = e.service.text.as_deref() else {
            continue;
        };
        if !seen.insert(text) {
            continue;
        }
        if !budget.take(text.len() + text.len() / 255 + 1) {
            break;
        }
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
        let data = RData::TXT(TXT::from_bytes(chunks));
        out.push(Record::from_rdata(
            owner.clone(),
            ttl.for_service(&e.service),
            data,
        ));
    }
    out
}

/// PTR answers from the services whose host is a name, one per distinct name.
pub fn ptr(owner: &Name, services: &[&ServiceEntry], ttl: &TtlPolicy) -> Vec<Record> {
    let mut seen: HashSet<&Name> = HashSet::default();
    services
        .iter()
        .filter_map(|e| match &e.service.host {
            Host::Name(target) if seen.insert(target) => Some(Record::from_rdata(
                owner.clone(),
                ttl.for_service(&e.service),
                RData::PTR(PTR((**target).clone())),
            )),
            _ => None,
        })
        .collect()
}

fn within(zone: &Zone, labels: &str) -> Name {
    Name::from_ascii(labels)
        .and_then(|n| n.append_domain(&zone.origin))
        .unwrap_or_else(|_| zone.origin.clone())
}

/// The synthesized SOA of a zone: `ns.dns.<zone> hostmaster.<zone>`, the zone's serial,
/// minimum = the negative TTL, served with that TTL (as CoreDNS serves it).
pub fn soa(zone: &Zone, ttl: &TtlPolicy) -> Record {
    let data = SOA::new(
        within(zone, "ns.dns"),
        within(zone, "hostmaster"),
        zone.serial,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        ttl.negative,
    );
    Record::from_rdata(
        zone.origin.clone(),
        ttl.clamp(ttl.negative),
        RData::SOA(data),
    )
}

/// A zone file's SOA as served: the zone's serial (which includes etcd's changes), the TTL
/// clamped.
pub fn stored_soa(record: &Record, zone: &Zone, ttl: &TtlPolicy) -> Record {
    let mut out = record.clone();
    if let RData::SOA(soa) = &record.data {
        out.data = RData::SOA(SOA::new(
            soa.mname.clone(),
            soa.rname.clone(),
            zone.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        ));
    }
    out.ttl = ttl.clamp(record.ttl);
    out
}

/// NS answers from the `ns.dns.<zone>` services whose host is an IP: the key's own name
/// (minus `targetstrip` labels) is the server, one NS per distinct name, every key's IP its
/// glue. With none, a single synthesized `ns.dns.<zone>` without glue.
pub fn ns(
    owner: &Name,
    zone: &Zone,
    servers: &[&ServiceEntry],
    ttl: &TtlPolicy,
) -> (Vec<Record>, Vec<Record>) {
    let mut records = Vec::new();
    let mut glue = Vec::new();
    let mut seen: HashSet<Name> = HashSet::default();
    for entry in servers {
        let Host::Ip(ip) = entry.service.host else {
            continue;
        };
        let t = ttl.for_service(&entry.service);
        let server = target_strip(&entry.name(), entry.service.targetstrip);
        glue.push(address(&server, ip, t));
        if seen.insert(server.clone()) {
            records.push(Record::from_rdata(owner.clone(), t, RData::NS(NS(server))));
        }
    }
    if records.is_empty() {
        let server = within(zone, "ns.dns");
        records.push(Record::from_rdata(
            owner.clone(),
            ttl.clamp(ttl.default),
            RData::NS(NS(server)),
        ));
    }
    (records, glue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_strip_matches_coredns() {
        let n = Name::from_ascii("a.b.web.example.").unwrap();
        let cases = [
            (0, "a.b.web.example."),
            (1, "b.web.example."),
            (2, "web.example."),
            (4, "a.b.web.example."),
            (9, "a.b.web.example."),
        ];
        for (strip, want) in cases {
            assert_eq!(target_strip(&n, strip).to_ascii(), want, "strip {strip}");
        }
    }
}
