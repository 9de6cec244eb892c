//! Sources: where records come from (zone files, etcd).
//!
//! A source reads its backing store and hands the index exactly one type, [`Update`]. The two
//! sources speak different dialects and the type says which: the zone directory is always
//! reloaded whole ([`Update::Zones`], plain resource records per owner name), etcd sends a
//! snapshot in parts and then single key changes ([`Update::Etcd`], SkyDNS service values per
//! key). A zone file can therefore never send a service, nor etcd a raw record. Values are
//! decoded and validated here, at the edge; a source never touches a snapshot and never
//! answers DNS.

pub mod etcd;
pub mod key;
pub mod zonefile;

use std::sync::Arc;

use hickory_proto::rr::{Name, Record};

use crate::name_key::NameKey;
use crate::record::{Note, Service};

/// Which producer data comes from (logs, metric labels, readiness).
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
pub enum Update {
    /// Everything the zone directory holds now: replaces all zone-file data at once.
    Zones(ZoneSet),
    /// One step of the etcd source.
    Etcd(EtcdChange),
}

/// The zone directory's contents.
#[derive(Debug, Clone, Default)]
pub struct ZoneSet {
    pub zones: Vec<ZoneContent>,
    /// Records in all zones (for logs and `srvd check`).
    pub record_count: usize,
}

/// One zone file's records, grouped by owner name.
#[derive(Debug, Clone)]
pub struct ZoneContent {
    /// The zone apex (lower case).
    pub origin: Name,
    /// This file's part of the zone serial: its SOA serial, else its modification time in
    /// Unix seconds (so an edit without an SOA still moves the serial forward).
    pub serial: u32,
    /// Records by owner name, each owner once.
    pub names: Vec<(NameKey, Arc<[Record]>)>,
}

/// One step of the etcd source.
#[derive(Debug, Clone)]
pub enum EtcdChange {
    /// A page of a snapshot of the whole prefix at `revision`. A large snapshot comes in several
    /// parts (`First` .. `Last`); the index swaps it in only when the last part is in, and a
    /// new `First` (or `Whole`) discards a half-received one.
    Reset {
        revision: i64,
        part: Part,
        entries: Vec<ServiceEntry>,
        /// The served domains and the revision that last changed each (meaningful on the
        /// last part).
        domains: Vec<(Name, i64)>,
    },
    /// A key was created or changed (at `revision`).
    Put { revision: i64, entry: ServiceEntry },
    /// A key was deleted, or its new value is invalid (at `revision`).
    Delete { revision: i64, key: EtcdKey },
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

/// The identity of one etcd key: the DNS name it maps to, and its own spelling when that is
/// not the name's canonical lower-case key (so `.../case/A` and `.../case/a`, one name, stay
/// two entries).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdKey {
    pub name: NameKey,
    /// The key path below the prefix as written, when it has upper-case letters.
    pub spelling: Option<Note>,
}

/// An etcd service value at its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The owner name's key (shared with the index map; 16 bytes where a `Name` takes 80,
    /// which matters at a million keys).
    pub key: NameKey,
    /// See [`EtcdKey::spelling`].
    pub spelling: Option<Note>,
    pub service: Service,
}

impl ServiceEntry {
    /// The key's own DNS name (`1.web.skydns.local.`).
    pub fn name(&self) -> Name {
        self.key.to_name()
    }

    /// Whether this entry is the one stored under `key`.
    pub fn is(&self, key: &EtcdKey) -> bool {
        self.key == key.name && self.spelling == key.spelling
    }
}
