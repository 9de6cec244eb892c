//! `lookup`: (snapshot, name, type) -> [`Answer`].
//!
//! Zone-file records and etcd services at a name are merged. A zone-file CNAME is followed
//! through every served zone (RFC 1034 §3.6.2; the final name decides the rcode, RFC 6604). An
//! etcd key whose host is a name makes the name a CNAME for every type it has no records of
//! (A, AAAA, TXT, MX, other types): the chain is followed inside our zones and dropped (NODATA)
//! when it leads nowhere there, as CoreDNS does; a chain leaving our zones ends the answer with
//! [`Forward::Target`]. Chains stop after [`MAX_CHAIN`] links or on a loop. Negative answers
//! carry the zone SOA with TTL `min(SOA TTL, SOA minimum)` (RFC 2308 §3). SRV, MX and NS
//! answers carry their in-zone targets' addresses in the additional section. The work is
//! bounded by `limit` records per selection, whatever the size of the zone. Answers from etcd
//! services are in [`etcd`], the additional section and referrals in [`glue`].

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::answer::{Answer, Forward, Seen};
use super::select::{self, Select, Wanted};
use super::synth::{self, Budget};
use super::ttl::TtlPolicy;
use crate::index::{Read, Snapshot};
use crate::name_key::NameKey;

mod etcd;
mod glue;

/// Most CNAME links followed in one answer.
pub const MAX_CHAIN: usize = 10;

/// How a name ended.
enum Outcome {
    Found,
    /// The zone (index) whose SOA goes in the authority section.
    NoData(usize),
    NxDomain(usize),
    /// The name is at or below a zone cut of a zone file (RFC 1034 §4.3.2): refer to the
    /// delegation's name servers.
    Referral(NameKey),
}

/// Where a rollback returns to.
struct Mark {
    answers: usize,
    additionals: usize,
    soa_zones: usize,
}

struct Run<'a> {
    snap: &'a Snapshot,
    ttl: &'a TtlPolicy,
    qtype: RecordType,
    /// Most keys one selection reads.
    limit: usize,
    /// Message bytes left: no record is built past them.
    budget: Budget,
    /// Resolving glue: zone-file CNAMEs are not followed (as Knot), etcd chains are.
    glue: bool,
    answer: Answer,
    seen: Seen,
    visited: Vec<NameKey>,
}

/// Smallest record (a compressed owner and an A address): bounds the keys worth reading.
const MIN_RECORD: usize = 16;

/// Answer one question from one snapshot. `max_size` is the largest message the answer can
/// go out in: no record is built, and no key read, beyond what such a message could hold.
pub fn lookup(
    snap: &Snapshot,
    ttl: &TtlPolicy,
    qname: &Name,
    qtype: RecordType,
    max_size: usize,
) -> Answer {
    let key = NameKey::new(qname);
    let Some((zone, _)) = snap.zone_of(&key) else {
        return Answer::outside();
    };
    let mut run = Run::new(snap, ttl, qtype, Budget(max_size), false);
    run.answer.partial = qtype == RecordType::ANY;
    let outcome = run.resolve(zone, qname, key);
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

impl<'a> Run<'a> {
    fn new(
        snap: &'a Snapshot,
        ttl: &'a TtlPolicy,
        qtype: RecordType,
        budget: Budget,
        glue: bool,
    ) -> Self {
        Run {
            snap,
            ttl,
            qtype,
            limit: (budget.0 / MIN_RECORD).max(1),
            budget,
            glue,
            answer: Answer::authoritative(),
            seen: Seen::default(),
            visited: Vec::new(),
        }
    }

    fn select(&self, wanted: Wanted) -> Select {
        Select {
            wanted,
            limit: self.limit,
            rfc2782: false,
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            answers: self.answer.answers.len(),
            additionals: self.answer.additionals.len(),
            soa_zones: self.answer.soa_zones.len(),
        }
    }

    fn rollback(&mut self, mark: &Mark) {
        self.answer.answers.truncate(mark.answers);
        self.answer.additionals.truncate(mark.additionals);
        self.answer.soa_zones.truncate(mark.soa_zones);
        self.answer.forward = Forward::No;
    }

    fn resolve(&mut self, zone: usize, name: &Name, key: NameKey) -> Outcome {
        self.visited.push(key.clone());
        let start = self.answer.answers.len();
        self.answer.reads.push(Read::Exact(key.clone()));
        if let Some(cut) = self.delegation(zone, &key) {
            return Outcome::Referral(cut);
        }
        let stored = self.snap.records_at(&key);
        if let Some(outcome) = self.stored_cname(zone, name, stored) {
            return outcome;
        }
        if self.qtype == RecordType::ANY {
            return self.any(zone, name, &key, stored, start);
        }
        self.stored_records(zone, name, &key, stored, Some(self.qtype), true);
        let from_files = self.answer.answers.len() - start;
        let outcome = self.etcd_records(zone, name, &key, start);
        one_ttl_per_rrset(&mut self.answer.answers[start..], from_files, name);
        if let Some(outcome) = outcome {
            return outcome;
        }
        if self.answer.answers.len() > start {
            return Outcome::Found;
        }
        self.negative(zone, name, &key)
    }

    /// The zone cut of a zone file at or above the name, unless the question is the cut's DS
    /// (which the parent side answers, RFC 4035 §3.1.4.1).
    fn delegation(&self, zone: usize, key: &NameKey) -> Option<NameKey> {
        let apex = &self.snap.zones()[zone].key;
        let cut = self.snap.delegation_of(key, apex)?;
        (cut != *key || self.qtype != RecordType::DS).then_some(cut)
    }

    /// A zone-file CNAME at the name answers every other type: the CNAME, then its target.
    fn stored_cname(&mut self, zone: usize, name: &Name, stored: &[Record]) -> Option<Outcome> {
        if matches!(self.qtype, RecordType::CNAME | RecordType::ANY) {
            return None;
        }
        let record = stored
            .iter()
            .find(|r| r.record_type() == RecordType::CNAME)?;
        if self.glue {
            return Some(Outcome::NoData(zone));
        }
        self.answer
            .answers
            .push(with_owner(record, name, self.ttl.clamp(record.ttl)));
        Some(match &record.data {
            RData::CNAME(target) => self.follow(zone, &target.0),
            _ => Outcome::Found,
        })
    }

    /// QTYPE ANY. A name with etcd data answers every type it has (SRV included: Java's JNDI
    /// asks for SRV and A in one ANY question). A name with zone-file data only answers one
    /// RRset, the lowest type (with its glue): the minimal answer RFC 8482 §4.1 allows, and
    /// the one Knot gives.
    fn any(
        &mut self,
        zone: usize,
        name: &Name,
        key: &NameKey,
        stored: &[Record],
        start: usize,
    ) -> Outcome {
        self.etcd_any(zone, name, key);
        if self.answer.answers.len() > start {
            self.stored_records(zone, name, key, stored, None, true);
            return Outcome::Found;
        }
        let at_apex = key == &self.snap.zones()[zone].key;
        let synthesized = [RecordType::NS, RecordType::SOA]
            .into_iter()
            .filter(|_| at_apex);
        let lowest = stored
            .iter()
            .map(Record::record_type)
            .chain(synthesized)
            .min_by_key(|t| u16::from(*t));
        if let Some(t) = lowest {
            self.stored_records(zone, name, key, stored, Some(t), true);
        }
        if self.answer.answers.len() > start {
            Outcome::Found
        } else {
            self.negative(zone, name, key)
        }
    }

    /// No record of the type: NODATA when the name exists, an answer synthesized from a
    /// zone-file wildcard when one covers it (RFC 4592), else NXDOMAIN.
    fn negative(&mut self, zone: usize, name: &Name, key: &NameKey) -> Outcome {
        let zone_ref = &self.snap.zones()[zone];
        if select::name_exists(self.snap, zone_ref, key, &mut self.answer.reads) {
            return Outcome::NoData(zone);
        }
        self.wildcard(zone, name, key)
            .unwrap_or(Outcome::NxDomain(zone))
    }

    /// RFC 4592 §3.3.1: a name below its closest encloser `CE` that does not exist is
    /// answered from `*.CE`, with the query name as owner.
    fn wildcard(&mut self, zone: usize, name: &Name, key: &NameKey) -> Option<Outcome> {
        let apex = &self.snap.zones()[zone].key;
        if !self.snap.has_wildcards_below(apex) {
            return None;
        }
        let encloser = self.snap.closest_encloser(key, apex);
        self.answer.reads.push(Read::Subtree(encloser.clone()));
        let source =
            NameKey::from_labels_root_first(encloser.labels().chain(std::iter::once(&b"*"[..])));
        let stored = self.snap.records_at(&source);
        if stored.is_empty() {
            return None;
        }
        if let Some(outcome) = self.stored_cname(zone, name, stored) {
            return Some(outcome);
        }
        let start = self.answer.answers.len();
        if self.qtype == RecordType::ANY {
            let lowest = stored
                .iter()
                .map(Record::record_type)
                .min_by_key(|t| u16::from(*t));
            self.stored_records(zone, name, &source, stored, lowest, true);
        } else {
            self.stored_records(zone, name, &source, stored, Some(self.qtype), true);
        }
        Some(if self.answer.answers.len() > start {
            Outcome::Found
        } else {
            Outcome::NoData(zone)
        })
    }

    /// The zone-file records of one type (`None`: every type) at a name, the zone apex's SOA
    /// and NS (synthesized when the zone file has none), and, with `glue`, the addresses their
    /// targets need.
    fn stored_records(
        &mut self,
        zone: usize,
        name: &Name,
        key: &NameKey,
        stored: &[Record],
        only: Option<RecordType>,
        glue: bool,
    ) {
        let wanted = |t: RecordType| only.is_none_or(|o| o == t);
        let zone_ref = &self.snap.zones()[zone];
        let mut targets: Vec<Name> = Vec::new();
        for record in stored.iter().filter(|r| wanted(r.record_type())) {
            if let Some(target) = glue_target(&record.data) {
                targets.push(target.clone());
            }
            let served = if record.record_type() == RecordType::SOA {
                self.answer.soa_zones.push(zone);
                synth::stored_soa(record, zone_ref, self.ttl)
            } else {
                record.clone()
            };
            let ttl = self.ttl.clamp(served.ttl);
            self.answer.answers.push(with_owner(&served, name, ttl));
        }
        let at_apex = key == &zone_ref.key;
        let has = |t: RecordType| stored.iter().any(|r| r.record_type() == t);
        if at_apex && wanted(RecordType::SOA) && !has(RecordType::SOA) {
            let soa = synth::soa(zone_ref, self.ttl);
            self.answer.soa_zones.push(zone);
            self.answer.answers.push(with_owner(&soa, name, soa.ttl));
        }
        if at_apex && wanted(RecordType::NS) && !has(RecordType::NS) {
            let servers =
                select::name_servers(self.snap, zone_ref, self.limit, &mut self.answer.reads);
            let (records, ns_glue) = synth::ns(name, zone_ref, &servers, self.ttl);
            self.answer.answers.extend(records);
            if glue {
                self.push_additionals(ns_glue);
            }
        }
        for target in targets.iter().filter(|_| glue) {
            if self.budget.is_spent() {
                break;
            }
            self.glue_for(target);
        }
    }

    /// When nothing answered the question and a key's host is a name: `name CNAME host`,
    /// followed. Returns an outcome only when the CNAME decided the answer.
    fn alias(
        &mut self,
        zone: usize,
        name: &Name,
        key: &NameKey,
        services: &[&crate::source::ServiceEntry],
        start: usize,
    ) -> Option<Outcome> {
        if self.answer.answers.len() > start {
            return None;
        }
        let (target, ttl) = synth::first_host_name(services, self.ttl)?;
        let target_key = NameKey::new(&target);
        if &target_key == key || self.chain_is_full(&target_key) {
            return None;
        }
        let cname = synth::cname(name, &target, ttl);
        let Some((target_zone, _)) = self.snap.zone_of(&target_key) else {
            self.answer.answers.push(cname);
            self.answer.forward = Forward::Target(target);
            return Some(Outcome::Found);
        };
        let mark = self.mark();
        self.answer.answers.push(cname);
        match self.resolve(target_zone, &target, target_key) {
            Outcome::Found if self.answer.answers.len() > mark.answers + 1 => Some(Outcome::Found),
            _ => {
                // The chain leads nowhere inside our zones: drop it, answer NODATA here.
                self.rollback(&mark);
                let _ = zone;
                None
            }
        }
    }

    fn chain_is_full(&self, next: &NameKey) -> bool {
        self.visited.len() > MAX_CHAIN || self.visited.contains(next)
    }

    /// Continue a zone-file CNAME chain at `target`.
    fn follow(&mut self, zone: usize, target: &Name) -> Outcome {
        let key = NameKey::new(target);
        if self.chain_is_full(&key) {
            return Outcome::Found;
        }
        let _ = zone;
        match self.snap.zone_of(&key) {
            Some((target_zone, _)) => self.resolve(target_zone, target, key),
            None => {
                self.answer.forward = Forward::Target(target.clone());
                Outcome::Found
            }
        }
    }

    /// The zone's SOA for the authority section of a negative answer.
    fn negative_soa(&mut self, zone: usize) -> Record {
        let zone_ref = &self.snap.zones()[zone];
        self.answer.reads.push(Read::Exact(zone_ref.key.clone()));
        let stored = self
            .snap
            .records_at(&zone_ref.key)
            .iter()
            .find(|r| r.record_type() == RecordType::SOA);
        let mut soa = match stored {
            Some(record) => synth::stored_soa(record, zone_ref, self.ttl),
            None => synth::soa(zone_ref, self.ttl),
        };
        let minimum = match &soa.data {
            RData::SOA(data) => data.minimum,
            _ => self.ttl.negative,
        };
        soa.ttl = self.ttl.negative_soa(soa.ttl, minimum);
        soa
    }

    fn finish(mut self, outcome: Outcome) -> Answer {
        let negative = match outcome {
            Outcome::Found => None,
            Outcome::NoData(zone) => Some(zone),
            Outcome::NxDomain(zone) => {
                self.answer.rcode = ResponseCode::NXDomain;
                Some(zone)
            }
            Outcome::Referral(cut) => {
                self.refer(&cut);
                None
            }
        };
        if let Some(zone) = negative {
            let soa = self.negative_soa(zone);
            self.answer.soa_zones.push(zone);
            self.answer.authorities.push(soa);
        }
        self.answer.normalize_reads();
        self.answer
    }
}

/// RFC 2181 §5.2: the records of one RRset share one TTL. Where zone-file records (the first
/// `from_files`) and etcd records of the same type at `owner` meet in one answer, all of them
/// take the lowest TTL. (Records that come from etcd alone keep their keys' TTLs, as CoreDNS
/// serves them.)
fn one_ttl_per_rrset(records: &mut [Record], from_files: usize, owner: &Name) {
    if from_files == 0 || from_files >= records.len() {
        return;
    }
    let (files, etcd) = records.split_at(from_files);
    let mut shared: Vec<(RecordType, u32)> = Vec::new();
    for r in files.iter().filter(|r| r.name == *owner) {
        let t = r.record_type();
        if shared.iter().any(|(s, _)| *s == t) {
            continue;
        }
        let at_owner = |r: &&Record| r.name == *owner && r.record_type() == t;
        if etcd.iter().any(|r| at_owner(&r)) {
            let lowest = records.iter().filter(at_owner).map(|r| r.ttl).min();
            shared.push((t, lowest.unwrap_or(r.ttl)));
        }
    }
    for r in records.iter_mut().filter(|r| r.name == *owner) {
        if let Some((_, ttl)) = shared.iter().find(|(t, _)| *t == r.record_type()) {
            r.ttl = *ttl;
        }
    }
}
