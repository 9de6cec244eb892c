//! DNS name compression (RFC 1035 §4.1.4) for the encoder: a table of the name suffixes
//! written so far in one message (hash of the lowercased suffix -> offset), and the check that
//! an offset really holds a given name, and which RRsets are kept out of it.

use hickory_proto::rr::{Record, RecordType};

/// Name-compression table of one message: lowercased-suffix hash -> offset, open addressing.
/// Reused between messages; entries are removed newest first on rollback.
#[derive(Default)]
pub struct Compressor {
    slots: Vec<(u64, u16)>,
    /// Slots in insertion order (to clear, and to roll back).
    used: Vec<usize>,
}

const EMPTY: u16 = u16::MAX;

impl Compressor {
    pub(super) fn reset(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![(0, EMPTY); 256];
        }
        for &slot in &self.used {
            self.slots[slot] = (0, EMPTY);
        }
        self.used.clear();
    }

    pub(super) fn get(&self, hash: u64) -> Option<u16> {
        let mask = self.slots.len() - 1;
        let mut slot = (hash as usize) & mask;
        loop {
            let (h, offset) = self.slots[slot];
            if offset == EMPTY {
                return None;
            }
            if h == hash {
                return Some(offset);
            }
            slot = (slot + 1) & mask;
        }
    }

    pub(super) fn insert(&mut self, hash: u64, offset: u16) {
        if self.used.len() * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = (hash as usize) & mask;
        loop {
            let (h, existing) = self.slots[slot];
            if existing == EMPTY {
                self.slots[slot] = (hash, offset);
                self.used.push(slot);
                return;
            }
            if h == hash {
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let entries: Vec<(u64, u16)> = self.used.iter().map(|&s| self.slots[s]).collect();
        self.slots = vec![(0, EMPTY); self.slots.len() * 2];
        self.used.clear();
        for (hash, offset) in entries {
            self.insert(hash, offset);
        }
    }

    /// Forget every name written at or after `mark` (they were rolled back).
    pub(super) fn rollback(&mut self, mark: usize) {
        while let Some(&slot) = self.used.last() {
            if usize::from(self.slots[slot].1) < mark {
                break;
            }
            self.slots[slot] = (0, EMPTY);
            self.used.pop();
        }
    }
}

/// Hash of a name suffix: the lowercased label, then the hash of the rest.
pub(super) fn mix(rest: u64, label: &[u8]) -> u64 {
    let mut h = rest ^ (label.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for &b in label {
        h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01B3);
    }
    h.rotate_left(23)
}

/// Whether `buf` at `offset` holds (after pointers) exactly the labels `want`.
pub(super) fn name_at_is(buf: &[u8], mut offset: usize, want: &[&[u8]]) -> bool {
    let mut hops = 0;
    let mut labels = want.iter();
    loop {
        let Some(&len) = buf.get(offset) else {
            return false;
        };
        if len & 0xC0 == 0xC0 {
            let Some(&low) = buf.get(offset + 1) else {
                return false;
            };
            hops += 1;
            if hops > 127 {
                return false;
            }
            offset = (usize::from(len & 0x3F) << 8) | usize::from(low);
            continue;
        }
        let len = usize::from(len);
        if len == 0 {
            return labels.next().is_none();
        }
        let Some(have) = buf.get(offset + 1..offset + 1 + len) else {
            return false;
        };
        match labels.next() {
            Some(w) if w.eq_ignore_ascii_case(have) => offset += 1 + len,
            _ => return false,
        }
    }
}

/// An RRset the answer cache may reorder (A, AAAA and SRV with several records): its names are
/// not offered for compression, so a pointer never points into records that move.
pub(super) fn rotatable(set: &[Record]) -> bool {
    set.len() > 1
        && matches!(
            set[0].record_type(),
            RecordType::A | RecordType::AAAA | RecordType::SRV
        )
}
