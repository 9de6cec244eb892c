//! [`Snapshot`]: one consistent, immutable view of all sources, and the handle readers load it
//! from. Queries here are O(log n): exact name, "anything at or below", subtree ranges, and
//! "did anything a reader read change since generation g" ([`Snapshot::unchanged_since`]).

use std::ops::Bound;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, Record};
use imbl::OrdMap;

use crate::name_key::NameKey;
use crate::source::{ServiceEntry, SourceId};

/// A served zone apex and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub origin: Name,
    pub key: NameKey,
    /// The zone's serial: the zone file's part (its SOA serial or modification time) plus the
    /// etcd revision that last changed the zone, modulo 2^32 (RFC 1982). It moves forward on
    /// every change of the zone's contents and is the same for the same contents on every
    /// replica following the same etcd.
    pub serial: u32,
    /// The zone file's part of the serial, if a zone file defines this zone.
    pub file_serial: Option<u32>,
    /// The etcd revision that last changed this zone, if etcd serves it.
    pub etcd_revision: Option<i64>,
}

impl Zone {
    pub(super) fn new(origin: &Name) -> Zone {
        Zone {
            origin: origin.to_lowercase(),
            key: NameKey::new(origin),
            serial: 0,
            file_serial: None,
            etcd_revision: None,
        }
    }

    pub(super) fn compute_serial(&mut self) {
        let etcd = self.etcd_revision.unwrap_or(0) as u32;
        self.serial = self.file_serial.unwrap_or(0).wrapping_add(etcd);
    }
}

/// The etcd entries stored at one name: almost always one; several when keys differ only in
/// letter case (the name serves their union).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSet {
    One(Arc<ServiceEntry>),
    Many(Arc<[Arc<ServiceEntry>]>),
}

impl ServiceSet {
    /// The entries, in a stable order.
    pub fn entries(&self) -> &[Arc<ServiceEntry>] {
        match self {
            ServiceSet::One(one) => std::slice::from_ref(one),
            ServiceSet::Many(many) => many,
        }
    }
}

/// A read a reader made, to tell later whether a change could have altered what it read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    /// What is stored at exactly this name.
    Exact(NameKey),
    /// Anything stored at or below this name.
    Subtree(NameKey),
}

impl Read {
    /// True when a change at `changed` may change what this read saw.
    pub fn covers(&self, changed: &NameKey) -> bool {
        match self {
            Read::Exact(key) => key == changed,
            Read::Subtree(key) => changed.is_at_or_below(key),
        }
    }
}

/// Changed names a snapshot remembers in order (see `Snapshot::recent`).
pub(super) const RECENT_NAMES: usize = 1024;
/// Most recent changes one cache check compares with before it uses the stamps instead.
const RECENT_CHECK: usize = 64;

/// When something last changed at a name (`exact`) or at or below it (`subtree`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Stamp {
    pub exact: u64,
    pub subtree: u64,
}

/// One consistent view of every source.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Bumped on every publish.
    pub generation: u64,
    /// Anything read before this generation may have changed in a way the stamps no longer
    /// tell (zones added or removed, a change too large to stamp name by name).
    pub epoch: u64,
    /// Served zones, most labels first (so the first match is the closest enclosing zone).
    pub(super) zones: Arc<[Zone]>,
    /// Zone-file records by owner name.
    pub(super) records: OrdMap<NameKey, Arc<[Record]>>,
    /// Zone cuts of the zone files: names below a zone apex with NS records (delegations).
    pub(super) delegations: Arc<std::collections::BTreeSet<NameKey>>,
    /// Wildcard owners of the zone files (`*.<name>`, RFC 4592).
    pub(super) wildcards: Arc<std::collections::BTreeSet<NameKey>>,
    /// etcd services by owner name.
    pub(super) services: OrdMap<NameKey, ServiceSet>,
    /// Generation of the last change at / below each name changed since `epoch`.
    pub(super) stamps: imbl::HashMap<NameKey, Stamp>,
    /// The names changed by the latest publishes, oldest first, with their generation: an
    /// answer checked a few generations ago compares its reads with these few names instead
    /// of looking each read up in `stamps` (measured under churn: the look-ups, one hash and
    /// a trie walk per read, were most of what a cache hit cost after every publish).
    pub(super) recent: imbl::Vector<(u64, NameKey)>,
    /// Every change made after this generation is in `recent`.
    pub(super) recent_floor: u64,
    /// Last applied revision of the etcd source (0 before any).
    pub etcd_revision: i64,
    /// Sources that have delivered their first full load.
    pub(super) loaded: Vec<SourceId>,
}

fn subtree_range(key: &NameKey) -> (Bound<NameKey>, Bound<NameKey>) {
    let end = match key.subtree_end() {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(key.clone()), end)
}

impl Snapshot {
    /// The served zones, most labels first.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The closest enclosing served zone of a name, with its position in [`Self::zones`].
    pub fn zone_of(&self, key: &NameKey) -> Option<(usize, &Zone)> {
        self.zones
            .iter()
            .enumerate()
            .find(|(_, z)| key.is_at_or_below(&z.key))
    }

    /// The zone cut at or above `key` (below its zone's apex `apex`), if any: the highest
    /// delegation point on the way from the apex down to the name.
    pub fn delegation_of(&self, key: &NameKey, apex: &NameKey) -> Option<NameKey> {
        if self.delegations.is_empty() {
            return None;
        }
        let mut ancestors: Vec<NameKey> = key
            .self_and_ancestors()
            .take_while(|a| a != apex && a.is_at_or_below(apex))
            .collect();
        ancestors.reverse();
        ancestors.into_iter().find(|a| self.delegations.contains(a))
    }

    /// The owner names at or below `zone` whose stored data differs between `old` and this
    /// snapshot: zone-file names, then etcd key names. Linear in what changed (the maps share
    /// what did not).
    pub fn changed_since(&self, old: &Snapshot, zone: &NameKey) -> (Vec<NameKey>, Vec<NameKey>) {
        fn keys<V: PartialEq + Clone>(
            old: &OrdMap<NameKey, V>,
            new: &OrdMap<NameKey, V>,
            zone: &NameKey,
        ) -> Vec<NameKey> {
            old.diff(new)
                .map(diff_key)
                .filter(|k| k.is_at_or_below(zone))
                .cloned()
                .collect()
        }
        (
            keys(&old.records, &self.records, zone),
            keys(&old.services, &self.services, zone),
        )
    }

    /// How many names at or below `zone` differ between `old` and this snapshot, counting
    /// no further than `cap` (linear in what changed, up to `cap`).
    pub fn changed_count(&self, old: &Snapshot, zone: &NameKey, cap: usize) -> usize {
        let below = |k: &&NameKey| k.is_at_or_below(zone);
        let records = old.records.diff(&self.records).map(diff_key).filter(below);
        let services = old
            .services
            .diff(&self.services)
            .map(diff_key)
            .filter(below);
        records.chain(services).take(cap).count()
    }

    /// Every zone-file owner name and etcd key name at or below `zone`, in key order.
    pub fn names_below<'a>(
        &'a self,
        zone: &NameKey,
    ) -> (
        impl Iterator<Item = &'a NameKey> + 'a,
        impl Iterator<Item = &'a NameKey> + 'a,
    ) {
        (
            self.records.range(subtree_range(zone)).map(|(k, _)| k),
            self.services.range(subtree_range(zone)).map(|(k, _)| k),
        )
    }

    /// Whether a zone file has a wildcard anywhere below `apex`.
    pub fn has_wildcards_below(&self, apex: &NameKey) -> bool {
        self.wildcards.iter().any(|w| w.is_at_or_below(apex))
    }

    /// The closest encloser of a name that does not exist (RFC 4592 §2.2.1): its nearest
    /// ancestor that does, at or below the apex.
    pub fn closest_encloser(&self, key: &NameKey, apex: &NameKey) -> NameKey {
        key.self_and_ancestors()
            .skip(1)
            .take_while(|a| a.is_at_or_below(apex))
            .find(|a| a == apex || self.name_exists(a))
            .unwrap_or_else(|| apex.clone())
    }

    /// Zone-file records owned by exactly this name.
    pub fn records_at(&self, key: &NameKey) -> &[Record] {
        self.records.get(key).map(|r| &r[..]).unwrap_or(&[])
    }

    /// The etcd services stored at exactly this name.
    pub fn services_at(&self, key: &NameKey) -> &[Arc<ServiceEntry>] {
        self.services.get(key).map_or(&[], ServiceSet::entries)
    }

    /// etcd services at or below this name, in key order.
    pub fn services_below<'a>(
        &'a self,
        key: &NameKey,
    ) -> impl Iterator<Item = &'a ServiceEntry> + 'a {
        self.services
            .range(subtree_range(key))
            .flat_map(|(_, set)| set.entries().iter().map(|e| &**e))
    }

    /// Zone-file owner names at or below this name, in key order.
    pub fn records_below<'a>(
        &'a self,
        key: &NameKey,
    ) -> impl Iterator<Item = (&'a NameKey, &'a [Record])> + 'a {
        self.records
            .range(subtree_range(key))
            .map(|(k, r)| (k, &r[..]))
    }

    /// True when anything (a record or a service) is stored at or below this name: the name
    /// exists (possibly as an empty non-terminal).
    pub fn name_exists(&self, key: &NameKey) -> bool {
        self.records.range(subtree_range(key)).next().is_some()
            || self.services.range(subtree_range(key)).next().is_some()
    }

    /// True when nothing `reads` covers changed after `generation` (which must be a
    /// generation this snapshot descends from).
    pub fn unchanged_since(&self, reads: &[Read], generation: u64) -> bool {
        if generation >= self.generation {
            return true;
        }
        if generation < self.epoch {
            return false;
        }
        if let Some(unchanged) = self.unchanged_by_recent(reads, generation) {
            return unchanged;
        }
        reads.iter().all(|read| {
            let (key, pick): (&NameKey, fn(&Stamp) -> u64) = match read {
                Read::Exact(key) => (key, |s| s.exact),
                Read::Subtree(key) => (key, |s| s.subtree),
            };
            self.stamps.get(key).is_none_or(|s| pick(s) <= generation)
        })
    }

    /// [`Snapshot::unchanged_since`] from the recent changes alone, when they reach back to
    /// `generation` and are few (at most [`RECENT_CHECK`]); `None` otherwise.
    fn unchanged_by_recent(&self, reads: &[Read], generation: u64) -> Option<bool> {
        if generation < self.recent_floor {
            return None;
        }
        let mut since = self
            .recent
            .iter()
            .rev()
            .take_while(|(g, _)| *g > generation);
        let mut checked = 0;
        for (_, changed) in since.by_ref() {
            checked += 1;
            if checked > RECENT_CHECK {
                return None;
            }
            if reads.iter().any(|read| read.covers(changed)) {
                return Some(false);
            }
        }
        Some(true)
    }

    /// True once every listed source has delivered its first full load.
    pub fn is_loaded(&self, sources: &[SourceId]) -> bool {
        sources.iter().all(|s| self.loaded.contains(s))
    }

    /// Number of owner names held for a source.
    pub fn names_from(&self, source: SourceId) -> usize {
        match source {
            SourceId::Zones => self.records.len(),
            SourceId::Etcd => self.services.len(),
        }
    }
}

/// Where readers load the current snapshot from, and the recent versions of each zone.
/// Cloning shares the same slot.
#[derive(Clone)]
pub struct IndexHandle {
    current: Arc<ArcSwap<Snapshot>>,
    journal: Arc<std::sync::Mutex<super::journal::Journal>>,
    published: Arc<tokio::sync::watch::Sender<u64>>,
}

impl IndexHandle {
    pub fn new(initial: Snapshot) -> Self {
        let (published, _) = tokio::sync::watch::channel(initial.generation);
        IndexHandle {
            current: Arc::new(ArcSwap::from_pointee(initial)),
            journal: Arc::default(),
            published: Arc::new(published),
        }
    }

    /// The current snapshot (lock-free).
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Wakes whenever a snapshot is published (its generation).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// The snapshot at which `zone` had `serial`, while the journal still holds it.
    pub fn version(&self, zone: &NameKey, serial: u32) -> Option<Arc<Snapshot>> {
        self.journal().version(zone, serial)
    }

    /// Versions held per zone (for metrics).
    pub fn journal_depths(&self) -> Vec<(Name, usize)> {
        self.journal().depths()
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, super::journal::Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn store(&self, snapshot: Arc<Snapshot>) {
        self.journal().record(&snapshot);
        let generation = snapshot.generation;
        self.current.store(snapshot);
        self.published.send_replace(generation);
    }
}

impl Default for IndexHandle {
    fn default() -> Self {
        IndexHandle::new(Snapshot::default())
    }
}

/// The name a map difference is about.
fn diff_key<'a, V>(item: imbl::ordmap::DiffItem<'a, 'a, NameKey, V>) -> &'a NameKey {
    use imbl::ordmap::DiffItem;
    match item {
        DiffItem::Add(k, _) | DiffItem::Remove(k, _) => k,
        DiffItem::Update { new: (k, _), .. } => k,
    }
}
