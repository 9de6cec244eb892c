//! The authoritative answer cache: encoded responses keyed by the question, kept while
//! nothing they read has changed.
//!
//! The key is the question with the name lower-cased (so random 0x20 letter case shares one
//! entry), plus what changes the bytes: EDNS present, DO, and the size limit. An entry
//! remembers the snapshot generation it was built at and what it read ([`Read`]s); it is
//! served as long as the current snapshot says none of those reads changed since, and is then
//! marked current so the next hit skips the check. So an etcd put to `web` voids the answers
//! that read `web` (directly, through a parent's subtree, a CNAME, SRV glue or a wildcard) and
//! nothing else. A hit copies the bytes and patches them: the query's ID, RD bit and
//! question (its letter case), each SOA serial (a zone's serial moves with every change in the
//! zone, without voiding its negative answers), and the order of rotatable RRsets. The cache
//! is bounded by bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;

use super::encode::{Layout, Span};
use super::request::{FLAG_RD, Query};
use crate::index::{Read, Snapshot};

/// One cached response.
pub struct Entry {
    bytes: Box<[u8]>,
    /// The newest generation this entry is known to be valid at.
    generation: AtomicU64,
    reads: Box<[Read]>,
    /// `(offset of an SOA serial, index of its zone in the snapshot's zone list)`.
    serials: Box<[(u16, u16)]>,
    rotations: Box<[Span]>,
    pub qtype: u16,
    pub rcode: ResponseCode,
}

impl Entry {
    /// An entry for a response built from the snapshot at `generation`. `soa_zones` maps the
    /// answer's SOA records to zones (see `dns::Answer::soa_zones`).
    pub fn new(
        bytes: &[u8],
        generation: u64,
        reads: Vec<Read>,
        layout: &Layout,
        soa_zones: &[usize],
        qtype: u16,
        rcode: ResponseCode,
    ) -> Entry {
        let serials = layout
            .serials
            .iter()
            .filter_map(|&(offset, soa)| {
                let zone = *soa_zones.get(usize::from(soa))?;
                Some((offset, u16::try_from(zone).ok()?))
            })
            .collect();
        Entry {
            bytes: bytes.into(),
            generation: AtomicU64::new(generation),
            reads: reads.into(),
            serials,
            rotations: layout.rotations.clone().into(),
            qtype,
            rcode,
        }
    }

    fn weight(&self) -> u32 {
        let reads: usize = self.reads.len() * 48;
        let rotations: usize = self
            .rotations
            .iter()
            .map(|s| 16 + s.lengths.len() * 2)
            .sum();
        u32::try_from(self.bytes.len() + reads + rotations + 160).unwrap_or(u32::MAX)
    }

    /// True when nothing this entry read changed up to `snap` (and remembers that).
    fn is_current(&self, snap: &Snapshot) -> bool {
        let generation = self.generation.load(Ordering::Relaxed);
        if generation == snap.generation {
            return true;
        }
        if snap.unchanged_since(&self.reads, generation) {
            self.generation
                .fetch_max(snap.generation, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Write this response for `query` into `out`: ID, RD and the question's spelling from the
    /// query, current serials, RRsets rotated by `rotation`.
    pub fn write(&self, query: &Query<'_>, snap: &Snapshot, rotation: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        out[..2].copy_from_slice(&query.id.to_be_bytes());
        let flags = u16::from_be_bytes([out[2], out[3]]) & !FLAG_RD | (query.flags & FLAG_RD);
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        if let Some(question) = query.question
            && let Some(slot) = out.get_mut(12..12 + question.len())
        {
            slot.copy_from_slice(question);
        }
        for &(offset, zone) in self.serials.iter() {
            let at = usize::from(offset);
            if let (Some(zone), Some(slot)) =
                (snap.zones().get(usize::from(zone)), out.get_mut(at..at + 4))
            {
                slot.copy_from_slice(&zone.serial.to_be_bytes());
            }
        }
        for span in self.rotations.iter() {
            rotate(&self.bytes, span, rotation, out);
        }
    }
}

/// Write the records of `span` into `out` starting at record `by % n`: records `first..n`
/// then `0..first`, i.e. two contiguous blocks of `from`.
fn rotate(from: &[u8], span: &Span, by: usize, out: &mut [u8]) {
    let n = span.lengths.len();
    if n < 2 {
        return;
    }
    let first = by % n;
    let start = usize::from(span.start);
    let split = start
        + span.lengths[..first]
            .iter()
            .map(|&l| usize::from(l))
            .sum::<usize>();
    let end = start + span.lengths.iter().map(|&l| usize::from(l)).sum::<usize>();
    let (Some(tail), Some(head)) = (from.get(split..end), from.get(start..split)) else {
        return;
    };
    if end > out.len() {
        return;
    }
    out[start..start + tail.len()].copy_from_slice(tail);
    out[start + tail.len()..end].copy_from_slice(head);
}

/// The cache itself; cheap to share between threads.
pub struct AnswerCache {
    entries: moka::sync::Cache<Box<[u8]>, Arc<Entry>>,
}

impl AnswerCache {
    /// A cache holding at most about `bytes` bytes of responses.
    pub fn new(bytes: u64) -> Self {
        AnswerCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_key, entry: &Arc<Entry>| entry.weight())
                .build(),
        }
    }

    /// The key of a question: its name lower-cased, type, class, then EDNS presence, DO,
    /// EDNS version and the size limit.
    pub fn key_into(query: &Query<'_>, max_size: usize, key: &mut Vec<u8>) -> bool {
        let Some(question) = query.question else {
            return false;
        };
        key.clear();
        let (name, type_class) = question.split_at(question.len().saturating_sub(4));
        key.extend(name.iter().map(u8::to_ascii_lowercase));
        key.extend_from_slice(type_class);
        match query.edns {
            Some(e) => key.extend_from_slice(&[1 | (u8::from(e.dnssec_ok) << 1), e.version]),
            None => key.push(0),
        }
        key.extend_from_slice(&(max_size.min(usize::from(u16::MAX)) as u16).to_be_bytes());
        true
    }

    /// The current entry for `key`, if any.
    pub fn get(&self, key: &[u8], snap: &Snapshot) -> Option<Arc<Entry>> {
        self.entries.get(key).filter(|e| e.is_current(snap))
    }

    pub fn insert(&self, key: &[u8], entry: Entry) {
        self.entries.insert(key.into(), Arc::new(entry));
    }

    /// Entries held (approximate; for metrics).
    pub fn entries(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Bytes held (approximate; for metrics).
    pub fn bytes(&self) -> u64 {
        self.entries.weighted_size()
    }
}
