//! [`Answer`]: what `dns` hands to `server` for one question.
//!
//! Besides the rcode and the three sections it says what the server must do next (nothing,
//! or ask an upstream: [`Forward`]), what the answer read from the snapshot (so a cached copy
//! can be kept while none of it changed), which zone's serial each SOA record carries, and
//! whether RRsets may be left out to fit (QTYPE ANY). It holds no wire bytes.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashSet, FxHasher};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record};

use crate::index::Read;
use crate::name_key::NameKey;

/// What the server still has to do with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Nothing: the answer is complete.
    No,
    /// The question is in none of our zones: forward it, or refuse.
    Question,
    /// The CNAME chain leaves our zones at `target`: the upstream's answer for
    /// (`target`, qtype) completes it, when forwarding is configured.
    Target(Name),
}

/// The result of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// We are authoritative for the question's zone.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// For each SOA record, in the order they appear (answer, then authority section), the
    /// index of its zone in the snapshot's zone list (the serial moves with every change).
    pub soa_zones: Vec<usize>,
    /// What the answer read (normalized: sorted, nothing covered by a subtree read twice).
    pub reads: Vec<Read>,
    /// Whole RRsets may be left out to fit the message (QTYPE ANY, RFC 8482 §4.1).
    pub partial: bool,
    pub forward: Forward,
}

impl Answer {
    /// An empty authoritative NOERROR answer, to be filled.
    pub fn authoritative() -> Self {
        Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            soa_zones: Vec::new(),
            reads: Vec::new(),
            partial: false,
            forward: Forward::No,
        }
    }

    /// The name is in none of our zones.
    pub fn outside() -> Self {
        Answer {
            rcode: ResponseCode::Refused,
            authoritative: false,
            forward: Forward::Question,
            ..Answer::authoritative()
        }
    }

    /// An error reply (FORMERR, NOTIMP, BADVERS, REFUSED, SERVFAIL): not authoritative, no
    /// records.
    pub fn error(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            authoritative: false,
            ..Answer::authoritative()
        }
    }

    /// Sort the reads and drop those a subtree read already covers (linear after the sort:
    /// a subtree is one contiguous run of the sorted keys).
    pub fn normalize_reads(&mut self) {
        self.reads
            .sort_by(|a, b| (read_key(a), is_exact(a)).cmp(&(read_key(b), is_exact(b))));
        self.reads.dedup();
        let mut kept: Vec<Read> = Vec::with_capacity(self.reads.len());
        let mut root: Option<NameKey> = None;
        for read in self.reads.drain(..) {
            if root
                .as_ref()
                .is_some_and(|r| read_key(&read).is_at_or_below(r))
            {
                continue;
            }
            if let Read::Subtree(key) = &read {
                root = Some(key.clone());
            }
            kept.push(read);
        }
        self.reads = kept;
    }
}

fn is_exact(read: &Read) -> bool {
    matches!(read, Read::Exact(_))
}

fn read_key(read: &Read) -> &NameKey {
    match read {
        Read::Exact(k) | Read::Subtree(k) => k,
    }
}

/// Records already placed in a message, to keep the additional section free of duplicates
/// (of itself and of the answer section; RFC 2181 §5.5 asks for no duplicate RRs). Linear in
/// the records added (hashing the owner's lower-cased labels directly: hickory's `Name` hash
/// costs a hasher call per byte).
#[derive(Default)]
pub struct Seen {
    hashes: FxHashSet<u64>,
}

impl Seen {
    /// True when `record` was not seen before (and remembers it).
    pub fn first(&mut self, record: &Record) -> bool {
        let mut h = FxHasher::default();
        let mut label = [0u8; 64];
        for l in record.name.iter() {
            let lower = &mut label[..l.len().min(64)];
            for (dst, src) in lower.iter_mut().zip(l) {
                *dst = src.to_ascii_lowercase();
            }
            h.write(lower);
            h.write_u8(b'.');
        }
        record.record_type().hash(&mut h);
        record.data.hash(&mut h);
        self.hashes.insert(h.finish())
    }
}
