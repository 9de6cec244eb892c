//! `lookup`: (snapshot, name, type) -> [`Answer`].
//!
//! Zone-file records and etcd services at a name are merged. A zone-file CNAME is followed
//! through every served zone (RFC 1034 §3.6.2; the final name decides the rcode, RFC 6604). An
//! etcd host name is a CNAME for address queries; when it points inside our zones and resolves
//! to nothing the CNAME is dropped (NODATA), as CoreDNS does. Chains stop after
//! [`MAX_CHAIN`] links or on a loop. Negative answers carry the zone SOA with TTL
//! `min(SOA TTL, SOA minimum)` (RFC 2308 §3). Every lookup is a handful of O(log n) map reads.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::answer::Answer;
use super::{select, synth};
use crate::index::{NameKey, Snapshot, Zone};
use hickory_proto::op::ResponseCode;

/// Most CNAME links followed in one answer.
pub const MAX_CHAIN: usize = 10;

enum Outcome<'a> {
    Found,
    NoData(&'a Zone),
    NxDomain(&'a Zone),
}

struct Lookup<'a> {
    snap: &'a Snapshot,
    answer: Answer,
    visited: Vec<NameKey>,
}

/// Answer one question from one snapshot.
pub fn lookup(snap: &Snapshot, qname: &Name, qtype: RecordType) -> Answer {
    let key = NameKey::new(qname);
    let Some(zone) = snap.zone_of(&key) else {
        return Answer::refused();
    };
    let mut run = Lookup {
        snap,
        answer: Answer::authoritative(),
        visited: Vec::new(),
    };
    let outcome = run.resolve(zone, qname, key, qtype);
    run.finish(outcome)
}

fn with_owner(record: &Record, owner: &Name, ttl: u32) -> Record {
    let mut r = record.clone();
    r.name = owner.clone();
    r.ttl = ttl;
    r
}

/// The name an SRV, MX or NS record points at (whose addresses belong in "additional").
fn glue_target(data: &RData) -> Option<&Name> {
    match data {
        RData::SRV(srv) => Some(&srv.target),
        RData::MX(mx) => Some(&mx.exchange),
        RData::NS(ns) => Some(&ns.0),
        _ => None,
    }
}

impl<'a> Lookup<'a> {
    fn resolve(
        &mut self,
        zone: &'a Zone,
        name: &Name,
        key: NameKey,
        qtype: RecordType,
    ) -> Outcome<'a> {
        let snap = self.snap;
        let ttl = &snap.ttl;
        self.visited.push(key.clone());
        let stored = snap.records_at(&key);

        let cname = stored.iter().find(|r| r.record_type() == RecordType::CNAME);
        if let Some(record) =
            cname.filter(|_| !matches!(qtype, RecordType::CNAME | RecordType::ANY))
        {
            self.answer
                .answers
                .push(with_owner(record, name, ttl.clamp(record.ttl)));
            return match &record.data {
                RData::CNAME(target) => self.follow(&target.0, qtype),
                _ => Outcome::Found,
            };
        }

        let start = self.answer.answers.len();
        let mut glue_names: Vec<Name> = Vec::new();
        for record in stored
            .iter()
            .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
        {
            if let Some(target) = glue_target(&record.data) {
                glue_names.push(target.clone());
            }
            self.answer
                .answers
                .push(with_owner(record, name, ttl.clamp(record.ttl)));
        }
        let has_static = |t: RecordType| stored.iter().any(|r| r.record_type() == t);
        let at_apex = key == zone.key;
        let any = qtype == RecordType::ANY;

        if at_apex && (qtype == RecordType::SOA || any) && !has_static(RecordType::SOA) {
            let soa = synth::soa(zone, snap);
            self.answer.answers.push(with_owner(&soa, name, soa.ttl));
        }
        if at_apex && (qtype == RecordType::NS || any) && !has_static(RecordType::NS) {
            let servers = select::name_servers(snap, zone);
            let (records, glue) = synth::ns(name, zone, &servers, ttl);
            self.answer.answers.extend(records);
            glue.into_iter()
                .for_each(|g| self.answer.push_additional(g));
        }

        match qtype {
            RecordType::A | RecordType::AAAA => {
                if let Some(outcome) = self.service_addresses(zone, name, &key, qtype, start) {
                    return outcome;
                }
            }
            RecordType::SRV => {
                let services = select::services_for(snap, zone, &key, true);
                let (records, glue, names) = synth::srv(name, &services, ttl);
                self.answer.answers.extend(records);
                glue.into_iter()
                    .for_each(|g| self.answer.push_additional(g));
                glue_names.extend(names);
            }
            RecordType::TXT => {
                let services = select::services_for(snap, zone, &key, false);
                self.answer.answers.extend(synth::txt(name, &services, ttl));
            }
            RecordType::MX => {
                let services = select::services_for(snap, zone, &key, false);
                let (records, glue, names) = synth::mx(name, &services, ttl);
                self.answer.answers.extend(records);
                glue.into_iter()
                    .for_each(|g| self.answer.push_additional(g));
                glue_names.extend(names);
            }
            RecordType::PTR => {
                if let Some(record) = snap.service_at(&key).and_then(|e| synth::ptr(name, e, ttl)) {
                    self.answer.answers.push(record);
                }
            }
            RecordType::ANY => {
                let services = select::services_for(snap, zone, &key, false);
                for t in [RecordType::A, RecordType::AAAA] {
                    self.answer
                        .answers
                        .extend(synth::addresses(name, &services, t, ttl).0);
                }
                self.answer.answers.extend(synth::txt(name, &services, ttl));
            }
            _ => {}
        }

        for target in &glue_names {
            self.add_glue(target);
        }
        if self.answer.answers.len() > start {
            Outcome::Found
        } else if select::name_exists(snap, zone, &key) {
            Outcome::NoData(zone)
        } else {
            Outcome::NxDomain(zone)
        }
    }

    /// A/AAAA from etcd services; when they have no address of this family but a host name,
    /// the CNAME to it. Returns an outcome only when it decided the answer via a CNAME.
    fn service_addresses(
        &mut self,
        zone: &'a Zone,
        name: &Name,
        key: &NameKey,
        qtype: RecordType,
        start: usize,
    ) -> Option<Outcome<'a>> {
        let snap = self.snap;
        let services = select::services_for(snap, zone, key, false);
        let (records, host_name) = synth::addresses(name, &services, qtype, &snap.ttl);
        if !records.is_empty() || self.answer.answers.len() > start {
            self.answer.answers.extend(records);
            return None;
        }
        let target = host_name?;
        let target_key = NameKey::new(&target);
        if &target_key == key || self.chain_is_full(&target_key) {
            return None;
        }
        let cname = synth::cname(name, &target, snap.ttl.clamp(snap.ttl.default));
        let Some(target_zone) = snap.zone_of(&target_key) else {
            self.answer.answers.push(cname);
            return Some(Outcome::Found);
        };
        let mark = self.answer.answers.len();
        self.answer.answers.push(cname);
        match self.resolve(target_zone, &target, target_key, qtype) {
            Outcome::Found if self.answer.answers.len() > mark + 1 => Some(Outcome::Found),
            _ => {
                // The chain leads nowhere inside our zones: drop it, answer NODATA here.
                self.answer.answers.truncate(mark);
                None
            }
        }
    }

    fn chain_is_full(&self, next: &NameKey) -> bool {
        self.visited.len() > MAX_CHAIN || self.visited.contains(next)
    }

    /// Continue a zone-file CNAME chain at `target`.
    fn follow(&mut self, target: &Name, qtype: RecordType) -> Outcome<'a> {
        let key = NameKey::new(target);
        if self.chain_is_full(&key) {
            return Outcome::Found;
        }
        match self.snap.zone_of(&key) {
            Some(zone) => self.resolve(zone, target, key, qtype),
            None => Outcome::Found,
        }
    }

    /// Add the A and AAAA records of an in-zone name to the additional section.
    fn add_glue(&mut self, target: &Name) {
        let snap = self.snap;
        let key = NameKey::new(target);
        let Some(zone) = snap.zone_of(&key) else {
            return;
        };
        for record in snap
            .records_at(&key)
            .iter()
            .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        {
            self.answer
                .push_additional(with_owner(record, target, snap.ttl.clamp(record.ttl)));
        }
        let services = select::services_for(snap, zone, &key, false);
        for t in [RecordType::A, RecordType::AAAA] {
            for record in synth::addresses(target, &services, t, &snap.ttl).0 {
                self.answer.push_additional(record);
            }
        }
    }

    /// The zone's SOA for the authority section of a negative answer.
    fn negative_soa(&self, zone: &Zone) -> Record {
        let snap = self.snap;
        let stored = snap
            .records_at(&zone.key)
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
            .cloned();
        let mut soa = stored.unwrap_or_else(|| synth::soa(zone, snap));
        let minimum = match &soa.data {
            RData::SOA(data) => data.minimum,
            _ => snap.ttl.negative,
        };
        soa.ttl = soa.ttl.min(minimum);
        soa
    }

    fn finish(mut self, outcome: Outcome<'_>) -> Answer {
        match outcome {
            Outcome::Found => {}
            Outcome::NoData(zone) => {
                let soa = self.negative_soa(zone);
                self.answer.authorities.push(soa);
            }
            Outcome::NxDomain(zone) => {
                let soa = self.negative_soa(zone);
                self.answer.rcode = ResponseCode::NXDomain;
                self.answer.authorities.push(soa);
            }
        }
        self.answer
    }
}
