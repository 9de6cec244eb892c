//! The additional section and referrals of a lookup: addresses of in-zone SRV/MX/NS targets
//! (deduplicated, within the record budget) and the NS + glue of a zone cut.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::super::answer::Forward;
use super::{Outcome, Run, with_owner};
use crate::index::Read;
use crate::name_key::NameKey;

impl<'a> Run<'a> {
    pub(super) fn push_additionals(&mut self, records: Vec<Record>) {
        if self.answer.additionals.is_empty() {
            for r in &self.answer.answers {
                self.seen.first(r);
            }
        }
        for record in records {
            if self.seen.first(&record) {
                self.answer.additionals.push(record);
            }
        }
    }

    /// Add the A and AAAA records of an in-zone name to the additional section: its
    /// zone-file addresses and its etcd addresses (through etcd CNAME chains, as CoreDNS
    /// adds them).
    pub(super) fn glue_for(&mut self, target: &Name) {
        let key = NameKey::new(target);
        let Some((zone, _)) = self.snap.zone_of(&key) else {
            return;
        };
        for qtype in [RecordType::A, RecordType::AAAA] {
            let mut child = Run::new(self.snap, self.ttl, qtype, self.budget, true);
            let found = matches!(child.resolve(zone, target, key.clone()), Outcome::Found);
            self.answer.reads.append(&mut child.answer.reads);
            if found && child.answer.forward == Forward::No {
                self.budget = child.budget;
                self.push_additionals(child.answer.answers);
            }
        }
    }

    /// A referral to the servers of the zone cut at `cut` (RFC 1034 §4.3.2): not
    /// authoritative (unless a CNAME of ours led there), the cut's NS RRset in the authority
    /// section, their addresses from the zone file as glue.
    pub(super) fn refer(&mut self, cut: &NameKey) {
        self.answer.reads.push(Read::Exact(cut.clone()));
        self.answer.authoritative = !self.answer.answers.is_empty();
        let ns: Vec<Record> = self
            .snap
            .records_at(cut)
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .map(|r| {
                let mut r = r.clone();
                r.ttl = self.ttl.clamp(r.ttl);
                r
            })
            .collect();
        let mut glue = Vec::new();
        for record in &ns {
            let RData::NS(target) = &record.data else {
                continue;
            };
            let key = NameKey::new(&target.0);
            self.answer.reads.push(Read::Exact(key.clone()));
            glue.extend(
                self.snap
                    .records_at(&key)
                    .iter()
                    .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
                    .map(|r| with_owner(r, &target.0, self.ttl.clamp(r.ttl))),
            );
        }
        self.answer.authorities.extend(ns);
        self.push_additionals(glue);
    }
}
