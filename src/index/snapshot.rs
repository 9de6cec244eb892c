//! [`Snapshot`]: one consistent, immutable view of all sources, and the handle readers load it
//! from. Queries here are O(log n): exact name, "anything at or below", and subtree ranges.

use std::ops::Bound;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, Record};
use imbl::OrdMap;

use super::NameKey;
use crate::record::Service;
use crate::source::SourceId;

/// TTL rules applied to every answer (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// TTL of etcd values that set none.
    pub default: u32,
    pub min: u32,
    pub max: u32,
    /// SOA minimum: the TTL of negative answers.
    pub negative: u32,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        TtlPolicy {
            default: 5,
            min: 0,
            max: 3600,
            negative: 5,
        }
    }
}

impl TtlPolicy {
    /// Clamp a TTL into `[min, max]`.
    pub fn clamp(&self, ttl: u32) -> u32 {
        ttl.clamp(self.min, self.max.max(self.min))
    }

    /// The TTL to serve for an etcd service: its own TTL or the default, capped by its lease,
    /// then clamped.
    pub fn for_service(&self, service: &Service) -> u32 {
        let ttl = service.ttl.unwrap_or(self.default);
        let ttl = match service.lease_ttl {
            Some(lease) => ttl.min(lease),
            None => ttl,
        };
        self.clamp(ttl)
    }
}

/// A served zone apex.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: Name,
    pub key: NameKey,
}

/// An etcd service value at its owner name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The owner's key (shared with the map; 16 bytes where a `Name` would take 80, which
    /// matters at a million keys).
    pub key: NameKey,
    pub service: Service,
}

impl ServiceEntry {
    /// The key's own DNS name (`1.web.skydns.local.`).
    pub fn name(&self) -> Name {
        self.key.to_name()
    }
}

/// One consistent view of every source.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Bumped on every publish; caches key on it.
    pub generation: u64,
    /// Served zones, most labels first (so the first match is the closest enclosing zone).
    pub(super) zones: Arc<Vec<Zone>>,
    /// Zone-file records by owner name.
    pub(super) records: OrdMap<NameKey, Arc<[Record]>>,
    /// etcd services by owner name.
    pub(super) services: OrdMap<NameKey, Arc<ServiceEntry>>,
    /// Last applied revision of the etcd source (0 before any).
    pub etcd_revision: i64,
    /// Unix time of the last zone-file load (0 before any).
    pub zones_revision: i64,
    /// Sources that have delivered their first full load.
    pub(super) loaded: Vec<SourceId>,
    pub ttl: TtlPolicy,
}

fn subtree_range(key: &NameKey) -> (Bound<NameKey>, Bound<NameKey>) {
    let end = match key.subtree_end() {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(key.clone()), end)
}

impl Snapshot {
    /// An empty snapshot with the given TTL rules.
    pub fn empty(ttl: TtlPolicy) -> Self {
        Snapshot {
            ttl,
            ..Snapshot::default()
        }
    }

    /// The closest enclosing served zone of a name.
    pub fn zone_of(&self, key: &NameKey) -> Option<&Zone> {
        self.zones.iter().find(|z| key.is_at_or_below(&z.key))
    }

    /// Zone-file records owned by exactly this name.
    pub fn records_at(&self, key: &NameKey) -> &[Record] {
        self.records.get(key).map(|r| &r[..]).unwrap_or(&[])
    }

    /// The etcd service stored at exactly this name.
    pub fn service_at(&self, key: &NameKey) -> Option<&ServiceEntry> {
        self.services.get(key).map(|s| &**s)
    }

    /// etcd services at or below this name, in key order.
    pub fn services_below<'a>(
        &'a self,
        key: &NameKey,
    ) -> impl Iterator<Item = (&'a NameKey, &'a ServiceEntry)> + 'a {
        self.services
            .range(subtree_range(key))
            .map(|(k, v)| (k, &**v))
    }

    /// True when anything (a record or a service) is stored at or below this name: the name
    /// exists (possibly as an empty non-terminal).
    pub fn name_exists(&self, key: &NameKey) -> bool {
        self.records.range(subtree_range(key)).next().is_some()
            || self.services.range(subtree_range(key)).next().is_some()
    }

    /// True once every listed source has delivered its first full load.
    pub fn is_loaded(&self, sources: &[SourceId]) -> bool {
        sources.iter().all(|s| self.loaded.contains(s))
    }

    /// Number of names held for a source.
    pub fn names_from(&self, source: SourceId) -> usize {
        match source {
            SourceId::Zones => self.records.len(),
            SourceId::Etcd => self.services.len(),
        }
    }
}

/// Where readers load the current snapshot from. Cloning shares the same slot.
#[derive(Clone)]
pub struct IndexHandle(Arc<ArcSwap<Snapshot>>);

impl IndexHandle {
    pub fn new(initial: Snapshot) -> Self {
        IndexHandle(Arc::new(ArcSwap::from_pointee(initial)))
    }

    /// The current snapshot (lock-free).
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    pub(super) fn store(&self, snapshot: Snapshot) {
        self.0.store(Arc::new(snapshot));
    }
}
