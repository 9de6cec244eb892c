//! The part of a lookup answered from etcd services: the records a name's subtree yields for
//! the asked type (A/AAAA, SRV, TXT, MX, PTR, ANY), SRV and MX through the shared synthesis,
//! and their additional addresses. Zone-file records and the walk itself are in the parent.

use hickory_proto::rr::{Name, Record, RecordType};

use super::super::select::{self, Select, Wanted};
use super::super::synth;
use super::{Outcome, Run};
use crate::name_key::NameKey;

impl<'a> Run<'a> {
    /// The etcd part of an answer. Returns an outcome only when a CNAME decided it.
    pub(super) fn etcd_records(
        &mut self,
        zone: usize,
        name: &Name,
        key: &NameKey,
        start: usize,
    ) -> Option<Outcome> {
        match self.qtype {
            RecordType::A | RecordType::AAAA => {
                let v6 = self.qtype == RecordType::AAAA;
                let services = self.services(zone, key, self.select(Wanted::Address { v6 }));
                let records = synth::addresses(name, &services, v6, self.ttl, &mut self.budget);
                self.answer.answers.extend(records);
                self.alias(zone, name, key, &services, start)
            }
            RecordType::SRV => {
                self.etcd_srv(zone, name, key);
                None
            }
            RecordType::MX => {
                let services = self.services(zone, key, self.select(Wanted::Host));
                self.etcd_mx(name, &services);
                self.alias(zone, name, key, &services, start)
            }
            RecordType::TXT => {
                let services = self.services(zone, key, self.select(Wanted::Text));
                let records = synth::txt(name, &services, self.ttl, &mut self.budget);
                self.answer.answers.extend(records);
                let hosts: Vec<_> = services
                    .into_iter()
                    .filter(|e| e.service.text.is_none())
                    .collect();
                self.alias(zone, name, key, &hosts, start)
            }
            RecordType::PTR => {
                let services =
                    select::services_at(self.snap, key, Wanted::Host, &mut self.answer.reads);
                let records = synth::ptr(name, &services, self.ttl);
                self.answer.answers.extend(records);
                None
            }
            RecordType::CNAME => {
                let services =
                    select::services_at(self.snap, key, Wanted::Host, &mut self.answer.reads);
                if let Some((target, ttl)) = synth::first_host_name(&services, self.ttl) {
                    self.answer.answers.push(synth::cname(name, &target, ttl));
                }
                None
            }
            RecordType::SOA | RecordType::NS => None,
            _ => {
                let services = self.services(zone, key, self.select(Wanted::Host));
                self.alias(zone, name, key, &services, start)
            }
        }
    }

    pub(super) fn services(
        &mut self,
        zone: usize,
        key: &NameKey,
        select: Select,
    ) -> Vec<&'a crate::source::ServiceEntry> {
        let zone_ref = &self.snap.zones()[zone];
        select::services_for(self.snap, zone_ref, key, select, &mut self.answer.reads)
    }

    pub(super) fn etcd_srv(&mut self, zone: usize, name: &Name, key: &NameKey) {
        let select = Select {
            rfc2782: true,
            ..self.select(Wanted::Host)
        };
        let services = self.services(zone, key, select);
        let pointers = synth::srv(name, &services, self.ttl, &mut self.budget);
        self.add_pointers(pointers);
    }

    /// SRV or MX records, then the addresses of their targets while the message has room.
    pub(super) fn add_pointers(&mut self, pointers: synth::Pointers) {
        self.answer.answers.extend(pointers.records);
        let mut glue = pointers.glue;
        // A glue owner may not compress (rotated SRV targets are not offered): count it.
        let size = |r: &Record| {
            r.name.len()
                + if r.record_type() == RecordType::A {
                    4
                } else {
                    16
                }
        };
        let room = glue
            .iter()
            .take_while(|r| self.budget.take(size(r)))
            .count();
        glue.truncate(room);
        self.push_additionals(glue);
        for target in &pointers.names {
            if self.budget.is_spent() {
                break;
            }
            self.glue_for(target);
        }
    }

    pub(super) fn etcd_mx(&mut self, name: &Name, services: &[&crate::source::ServiceEntry]) {
        let pointers = synth::mx(name, services, self.ttl, &mut self.budget);
        self.add_pointers(pointers);
    }

    /// QTYPE ANY: every type the etcd keys give (addresses, SRV, TXT, MX); the CNAME (not
    /// followed) only when they give nothing else.
    pub(super) fn etcd_any(&mut self, zone: usize, name: &Name, key: &NameKey) {
        let start = self.answer.answers.len();
        for v6 in [false, true] {
            let services = self.services(zone, key, self.select(Wanted::Address { v6 }));
            let records = synth::addresses(name, &services, v6, self.ttl, &mut self.budget);
            self.answer.answers.extend(records);
        }
        self.etcd_srv(zone, name, key);
        let services = self.services(zone, key, self.select(Wanted::Text));
        let records = synth::txt(name, &services, self.ttl, &mut self.budget);
        self.answer.answers.extend(records);
        let services = self.services(zone, key, self.select(Wanted::Host));
        self.etcd_mx(name, &services);
        if self.answer.answers.len() == start
            && let Some((target, ttl)) = synth::first_host_name(&services, self.ttl)
        {
            self.answer.answers.push(synth::cname(name, &target, ttl));
        }
    }
}
