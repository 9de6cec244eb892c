//! Records synthesized from etcd services (and the zone SOA/NS when no zone file gives them).
//!
//! Pure functions: services in, records out. Owner names are the query name as asked, so
//! the query's case is preserved.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::index::{ServiceEntry, Snapshot, TtlPolicy, Zone};
use crate::record::Host;

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

/// True when `ip` answers a question of type `qtype` (A or AAAA).
pub fn family_matches(ip: &IpAddr, qtype: RecordType) -> bool {
    matches!(
        (ip, qtype),
        (IpAddr::V4(_), RecordType::A) | (IpAddr::V6(_), RecordType::AAAA)
    )
}

/// `name` without its `n` leftmost labels (unchanged when it has too few).
pub fn target_strip(name: &Name, n: u8) -> Name {
    let labels = name.num_labels();
    if n == 0 || n >= labels {
        return name.clone();
    }
    name.trim_to(usize::from(labels - n))
}

/// Address answers of the services (deduplicated by address) and, when none of them has an
/// address of this family, the first host name (a CNAME candidate).
pub fn addresses(
    owner: &Name,
    services: &[&ServiceEntry],
    qtype: RecordType,
    ttl: &TtlPolicy,
) -> (Vec<Record>, Option<Name>) {
    let mut out: Vec<Record> = Vec::new();
    let mut seen: Vec<IpAddr> = Vec::new();
    let mut first_name = None;
    for entry in services {
        match &entry.service.host {
            Host::Ip(ip) if family_matches(ip, qtype) && !seen.contains(ip) => {
                seen.push(*ip);
                out.push(address(owner, *ip, ttl.for_service(&entry.service)));
            }
            Host::Name(target) if first_name.is_none() => first_name = Some((**target).clone()),
            _ => {}
        }
    }
    (out, first_name)
}

/// A CNAME record.
pub fn cname(owner: &Name, target: &Name, ttl: u32) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target.clone())))
}

/// Where a service points as an SRV/MX target, plus its glue address when the target is the
/// key's own name.
fn target_of(entry: &ServiceEntry) -> Option<(Name, Option<IpAddr>)> {
    let strip = entry.service.targetstrip;
    match &entry.service.host {
        Host::Name(name) => Some((target_strip(name, strip), None)),
        Host::Ip(ip) => Some((target_strip(&entry.name(), strip), Some(*ip))),
        Host::None => None,
    }
}

/// SRV answers: one per service with a port, weights scaled per priority as CoreDNS does.
/// Returns the records, the glue for targets that are key names, and the host-name targets
/// whose addresses the caller should add.
pub fn srv(
    owner: &Name,
    services: &[&ServiceEntry],
    ttl: &TtlPolicy,
) -> (Vec<Record>, Vec<Record>, Vec<Name>) {
    let mut sums: Vec<(u16, u32)> = Vec::new();
    for entry in services.iter().filter(|e| e.service.port.is_some()) {
        let s = &entry.service;
        match sums.iter_mut().find(|(p, _)| *p == s.priority) {
            Some((_, sum)) => *sum += s.effective_weight(),
            None => sums.push((s.priority, s.effective_weight())),
        }
    }
    let mut records: Vec<Record> = Vec::new();
    let mut glue: Vec<Record> = Vec::new();
    let mut names: Vec<Name> = Vec::new();
    for entry in services {
        let s = &entry.service;
        let (Some(port), Some((target, ip))) = (s.port, target_of(entry)) else {
            continue;
        };
        let sum = sums
            .iter()
            .find(|(p, _)| *p == s.priority)
            .map_or(1, |(_, sum)| *sum);
        let scaled = ((100.0 / f64::from(sum)) * f64::from(s.effective_weight())).floor();
        let weight = (scaled as u16).max(1);
        let ttl = ttl.for_service(s);
        let duplicate = records.iter().any(|r| match &r.data {
            RData::SRV(srv) => srv.target == target && srv.port == port,
            _ => false,
        });
        if !duplicate {
            let data = SRV::new(s.priority, weight, port, target.clone());
            records.push(Record::from_rdata(owner.clone(), ttl, RData::SRV(data)));
        }
        match ip {
            Some(ip) => glue.push(address(&target, ip, ttl)),
            None => {
                if !names.contains(&target) {
                    names.push(target)
                }
            }
        }
    }
    (records, glue, names)
}

/// TXT answers from the services' `text`.
pub fn txt(owner: &Name, services: &[&ServiceEntry], ttl: &TtlPolicy) -> Vec<Record> {
    services
        .iter()
        .filter_map(|e| {
            let text = e.service.text.as_deref()?;
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
            let data = RData::TXT(TXT::from_bytes(chunks));
            Some(Record::from_rdata(
                owner.clone(),
                ttl.for_service(&e.service),
                data,
            ))
        })
        .collect()
}

/// MX answers from services with `mail: true` (priority is the preference), plus glue.
pub fn mx(
    owner: &Name,
    services: &[&ServiceEntry],
    ttl: &TtlPolicy,
) -> (Vec<Record>, Vec<Record>, Vec<Name>) {
    let mut records = Vec::new();
    let mut glue = Vec::new();
    let mut names = Vec::new();
    for entry in services.iter().filter(|e| e.service.mail) {
        let Some((target, ip)) = target_of(entry) else {
            continue;
        };
        let ttl = ttl.for_service(&entry.service);
        let data = RData::MX(MX::new(entry.service.priority, target.clone()));
        records.push(Record::from_rdata(owner.clone(), ttl, data));
        match ip {
            Some(ip) => glue.push(address(&target, ip, ttl)),
            None => names.push(target),
        }
    }
    (records, glue, names)
}

/// A PTR answer from a service whose host is a name.
pub fn ptr(owner: &Name, entry: &ServiceEntry, ttl: &TtlPolicy) -> Option<Record> {
    match &entry.service.host {
        Host::Name(target) => Some(Record::from_rdata(
            owner.clone(),
            ttl.for_service(&entry.service),
            RData::PTR(PTR((**target).clone())),
        )),
        _ => None,
    }
}

/// The synthesized SOA of a zone: `ns.dns.<zone> hostmaster.<zone>`, serial from the etcd
/// revision (or the zone-file load time), minimum = the negative TTL.
pub fn soa(zone: &Zone, snap: &Snapshot) -> Record {
    let within = |label: &str| {
        Name::from_ascii(label)
            .and_then(|n| n.append_domain(&zone.origin))
            .unwrap_or_else(|_| zone.origin.clone())
    };
    let serial = if snap.etcd_revision > 0 {
        snap.etcd_revision
    } else {
        snap.zones_revision
    };
    let data = SOA::new(
        within("ns.dns"),
        within("hostmaster"),
        (serial & 0xFFFF_FFFF) as u32,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        snap.ttl.negative,
    );
    Record::from_rdata(zone.origin.clone(), snap.ttl.default, RData::SOA(data))
}

/// NS answers from the `ns.dns.<zone>` services: the key's own name is the server, its IP the
/// glue. With none, a single synthesized `ns.dns.<zone>` without glue.
pub fn ns(
    owner: &Name,
    zone: &Zone,
    servers: &[&ServiceEntry],
    ttl: &TtlPolicy,
) -> (Vec<Record>, Vec<Record>) {
    let mut records = Vec::new();
    let mut glue = Vec::new();
    for entry in servers {
        let t = ttl.for_service(&entry.service);
        let server = entry.name();
        if let Host::Ip(ip) = entry.service.host {
            glue.push(address(&server, ip, t));
        }
        records.push(Record::from_rdata(owner.clone(), t, RData::NS(NS(server))));
    }
    if records.is_empty() {
        let server = Name::from_ascii("ns.dns")
            .and_then(|n| n.append_domain(&zone.origin))
            .unwrap_or_else(|_| zone.origin.clone());
        records.push(Record::from_rdata(
            owner.clone(),
            ttl.default,
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
