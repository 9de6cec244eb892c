//! Sources: where records come from (zone files, etcd).
//!
//! A source reads its backing store and hands the index exactly one type, [`Update`]: either a
//! full [`Change::Reset`] of everything that source holds, or a single [`Change::Put`] /
//! [`Change::Delete`]. Values are decoded and validated here, at the edge; a source never
//! touches a snapshot and never answers DNS.

pub mod etcd;
pub mod key;
pub mod zonefile;

use hickory_proto::rr::{Name, Record};

use crate::record::Service;

/// Which producer an update comes from. Each source owns its own part of the index, so a reset
/// of one never disturbs the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceId {
    /// Static zone files (`zones/*.zone`).
    Zones,
    /// Keys under the watched etcd prefix.
    Etcd,
}

impl SourceId {
    /// Stable lower-case name, used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceId::Zones => "zones",
            SourceId::Etcd => "etcd",
        }
    }
}

/// The one type a source hands to the index.
#[derive(Debug, Clone)]
pub struct Update {
    pub source: SourceId,
    pub change: Change,
}

/// What changed.
#[derive(Debug, Clone)]
pub enum Change {
    /// Replace everything this source holds. `zones` are the zone apexes the source serves.
    /// A large reset may come in several parts (`First` .. `Last`); the index publishes
    /// nothing until the last part is in, so readers never see a partial reset.
    Reset {
        revision: i64,
        zones: Vec<Name>,
        entries: Vec<Entry>,
        part: Part,
    },
    /// Insert or replace the entry at one name.
    Put { revision: i64, entry: Entry },
    /// Remove the entry at one name.
    Delete { revision: i64, name: Name },
}

/// Which part of a (possibly split) reset an update carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole reset in one update.
    Whole,
    First,
    Middle,
    Last,
}

impl Part {
    /// The part for page `index` of a reset, knowing whether more pages follow.
    pub fn of_page(index: usize, more: bool) -> Part {
        match (index == 0, more) {
            (true, false) => Part::Whole,
            (true, true) => Part::First,
            (false, true) => Part::Middle,
            (false, false) => Part::Last,
        }
    }

    /// This part starts a reset.
    pub fn is_first(self) -> bool {
        matches!(self, Part::Whole | Part::First)
    }

    /// This part completes a reset.
    pub fn is_last(self) -> bool {
        matches!(self, Part::Whole | Part::Last)
    }
}

/// Data stored at one owner name.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Plain resource records (zone files): answered as they are.
    Records { name: Name, records: Vec<Record> },
    /// A SkyDNS/CoreDNS service value (etcd): turned into records per query.
    Service { name: Name, service: Service },
}

impl Entry {
    /// The owner name this entry is stored at.
    pub fn name(&self) -> &Name {
        match self {
            Entry::Records { name, .. } | Entry::Service { name, .. } => name,
        }
    }
}
