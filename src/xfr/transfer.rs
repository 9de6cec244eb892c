//! Zone transfers as record streams: AXFR (RFC 5936), IXFR (RFC 1995).
//!
//! A [`Transfer`] yields the records of a transfer in order, a message's worth at a time, so a
//! 100k-name zone streams in bounded memory (the names to visit, then one message of records
//! at a time). The server encodes and signs each message.
//!
//! - AXFR: the SOA, every record of the view ([`super::view`]), the SOA.
//! - IXFR from a serial the journal still holds: one condensed difference, `SOA(new)
//!   SOA(old) deleted… SOA(new) added… SOA(new)`; from the current serial: the SOA alone;
//!   from a serial the journal no longer reaches: AXFR style.

use std::collections::BTreeSet;
use std::sync::Arc;

use hickory_proto::rr::{Record, RecordType};

use super::view::{Memo, View, order_key};
use crate::dns::TtlPolicy;
use crate::index::{IndexHandle, Snapshot};
use crate::name_key::NameKey;

/// Bytes of records per transfer message (messages may hold up to 64 KiB; smaller ones keep
/// memory and latency low and are what Knot sends).
pub const MESSAGE_BYTES: usize = 16_000;

/// What kind of answer a transfer request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The whole zone.
    Full,
    /// A difference from the client's version.
    Incremental,
    /// The client is current: the SOA alone.
    Current,
}

/// A transfer in progress.
pub struct Transfer {
    snap: Arc<Snapshot>,
    zone: usize,
    ttl: TtlPolicy,
    soa: Record,
    /// Records still to send, in order, before the names still to visit.
    queue: std::collections::VecDeque<Record>,
    /// Names of the view still to visit (AXFR style).
    names: std::vec::IntoIter<NameKey>,
    /// The closing SOA is still to send.
    closing: bool,
    pub style: Style,
    /// Service aggregates carried from one message to the next.
    memo: Memo,
}

fn size_of(record: &Record) -> usize {
    use hickory_proto::serialize::binary::BinEncodable;
    record.name.len() + 11 + record.data.to_bytes().map_or(64, |b| b.len())
}

/// RFC 1982 serial arithmetic: `a` is at or after `b`.
pub fn serial_at_or_after(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

impl Transfer {
    /// A full (AXFR) transfer of zone `zone` of `snap`.
    pub fn full(snap: Arc<Snapshot>, zone: usize, ttl: TtlPolicy) -> Option<Transfer> {
        let view = View::new(&snap, zone, &ttl);
        let soa = view.soa()?;
        let names: Vec<NameKey> = view.names().into_iter().collect();
        Some(Transfer {
            queue: std::iter::once(soa.clone()).collect(),
            names: names.into_iter(),
            closing: true,
            style: Style::Full,
            memo: Memo::default(),
            soa,
            snap,
            zone,
            ttl,
        })
    }

    /// An IXFR answer to a client at `client_serial`, from the journal of `index`.
    pub fn incremental(
        index: &IndexHandle,
        snap: Arc<Snapshot>,
        zone: usize,
        ttl: TtlPolicy,
        client_serial: u32,
    ) -> Option<Transfer> {
        let current = snap.zones().get(zone)?.serial;
        let key = snap.zones()[zone].key.clone();
        if serial_at_or_after(client_serial, current) {
            let mut t = Transfer::full(snap, zone, ttl)?;
            t.names = Vec::new().into_iter();
            t.closing = false;
            t.style = Style::Current;
            return Some(t);
        }
        let Some(old) = index.version(&key, client_serial) else {
            return Transfer::full(snap, zone, ttl);
        };
        let (deleted, added, old_soa) = difference(&old, &snap, zone, &ttl)?;
        let mut t = Transfer::full(snap, zone, ttl)?;
        t.names = Vec::new().into_iter();
        t.queue.push_back(old_soa);
        t.queue.extend(deleted);
        t.queue.push_back(t.soa.clone());
        t.queue.extend(added);
        t.style = Style::Incremental;
        Some(t)
    }

    /// The zone's current SOA (what a transfer starts and ends with).
    pub fn soa(&self) -> Record {
        self.soa.clone()
    }

    /// The next message's records (empty when the transfer is complete).
    pub fn next_message(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        let mut bytes = 0;
        loop {
            if self.queue.is_empty() {
                self.refill();
            }
            let Some(next) = self.queue.front() else {
                break;
            };
            let size = size_of(next);
            if !out.is_empty() && bytes + size > MESSAGE_BYTES {
                break;
            }
            bytes += size;
            if let Some(record) = self.queue.pop_front() {
                out.push(record);
            }
        }
        out
    }

    /// Queue the records of the next name of the view, or the closing SOA.
    fn refill(&mut self) {
        let memo = std::mem::take(&mut self.memo);
        let (snap, ttl) = (self.snap.clone(), self.ttl);
        let view = View::with_memo(&snap, self.zone, &ttl, memo);
        self.refill_from(&view);
        self.memo = view.into_memo();
    }

    fn refill_from(&mut self, view: &View<'_>) {
        for name in self.names.by_ref() {
            let records: Vec<Record> = view
                .records_at(&name)
                .into_iter()
                .filter(|r| r.record_type() != RecordType::SOA)
                .collect();
            if !records.is_empty() {
                self.queue.extend(records);
                return;
            }
        }
        if self.closing {
            self.closing = false;
            self.queue.push_back(self.soa.clone());
        }
    }
}

/// The records deleted and added between two versions of a zone (SOA left out), and the old
/// SOA. Linear in what changed.
fn difference(
    old: &Snapshot,
    new: &Snapshot,
    zone: usize,
    ttl: &TtlPolicy,
) -> Option<(Vec<Record>, Vec<Record>, Record)> {
    let zone_key = new.zones().get(zone)?.key.clone();
    let old_zone = old.zones().iter().position(|z| z.key == zone_key)?;
    let old_view = View::new(old, old_zone, ttl);
    let new_view = View::new(new, zone, ttl);
    let (records, services) = new.changed_since(old, &zone_key);
    let mut names: BTreeSet<NameKey> = records.into_iter().collect();
    for key in services {
        names.extend(new_view.affected_by(&key));
    }
    let (mut deleted, mut added) = (Vec::new(), Vec::new());
    for name in names {
        let before = old_view.records_at(&name);
        let after = new_view.records_at(&name);
        merge_difference(before, after, &mut deleted, &mut added);
    }
    Some((deleted, added, old_view.soa()?))
}

/// The records of `before` not in `after` into `deleted`, and the other way round into
/// `added` (SOA left out). Both come sorted by [`order_key`]: one merge pass, linear.
fn merge_difference(
    before: Vec<Record>,
    after: Vec<Record>,
    deleted: &mut Vec<Record>,
    added: &mut Vec<Record>,
) {
    use std::cmp::Ordering;
    let keyed = |records: Vec<Record>| -> Vec<((u16, Vec<u8>), Record)> {
        records
            .into_iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .map(|r| (order_key(&r), r))
            .collect()
    };
    let (mut old, mut new) = (keyed(before).into_iter(), keyed(after).into_iter());
    let (mut a, mut b) = (old.next(), new.next());
    loop {
        match (a.take(), b.take()) {
            (None, None) => return,
            (Some((_, r)), None) => {
                deleted.push(r);
                a = old.next();
            }
            (None, Some((_, r))) => {
                added.push(r);
                b = new.next();
            }
            (Some((ka, ra)), Some((kb, rb))) => match ka.cmp(&kb) {
                Ordering::Less => {
                    deleted.push(ra);
                    (a, b) = (old.next(), Some((kb, rb)));
                }
                Ordering::Greater => {
                    added.push(rb);
                    (a, b) = (Some((ka, ra)), new.next());
                }
                Ordering::Equal => {
                    if ra.ttl != rb.ttl {
                        deleted.push(ra);
                        added.push(rb);
                    }
                    (a, b) = (old.next(), new.next());
                }
            },
        }
    }
}
