//! Folding [`Update`]s into snapshots: the index's single writer.
//!
//! The [`Indexer`] keeps the next snapshot under construction, applies updates in the order
//! they arrive and publishes whole snapshots only between batches. Each source stages its own
//! reset: a half-received etcd snapshot is built aside and never blocks zone-file reloads, and
//! a zone-file reload never disturbs it. Every publish stamps the names it changed (and their
//! ancestors) with its generation, so readers can tell which earlier reads are still valid,
//! and moves the serial of every zone whose contents changed.

use std::sync::Arc;

use hickory_proto::rr::{Name, Record};
use imbl::OrdMap;
use imbl::ordmap::DiffItem;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::snapshot::{IndexHandle, RECENT_NAMES, ServiceSet, Snapshot, Stamp, Zone};
use crate::name_key::NameKey;
use crate::source::{EtcdChange, EtcdKey, ServiceEntry, SourceId, Update, ZoneSet};

/// Most updates folded into one published snapshot.
const MAX_BATCH: usize = 4096;
/// Most names stamped one by one in one publish; a larger change voids every earlier read
/// (a new epoch) instead.
const STAMP_BUDGET: usize = 20_000;
/// Most stamped names kept; past this the stamps start over with a new epoch.
const STAMP_LIMIT: usize = 200_000;

/// The single writer of the index.
pub struct Indexer {
    next: Snapshot,
    /// An etcd snapshot arriving in parts, built aside until its last part.
    staged_etcd: Option<OrdMap<NameKey, ServiceSet>>,
    /// Zones defined by zone files, with the file's part of the serial.
    file_zones: Vec<(Name, u32)>,
    /// Zones served from etcd, with the revision that last changed each.
    etcd_domains: Vec<(Name, NameKey, i64)>,
    /// Names changed since the last publish.
    changed: Vec<NameKey>,
    /// Void every earlier read at the next publish (the change is too large to stamp).
    new_epoch: bool,
    /// The zone list or a zone's serial must be rebuilt at the next publish.
    zones_dirty: bool,
    /// A source's data was replaced as a whole: release freed memory after the publish.
    bulk_replaced: bool,
    handle: IndexHandle,
    dirty: bool,
}

/// The etcd part of a zone's serial after a change at `revision`: the revision itself, so
/// every replica following the same etcd computes the same serial (a transaction's several
/// keys share one revision). If etcd's history went back (an etcd restored from a backup) the
/// serial must not: it moves one past where it was instead, and that is logged loudly.
fn next_revision(before: Option<i64>, revision: i64, zone: &Name, loud: bool) -> i64 {
    match before {
        Some(before) if revision < before => {
            if !loud {
                return before + 1;
            }
            tracing::error!(
                zone = %zone,
                serial_revision = before,
                etcd_revision = revision,
                "etcd's revision went back (restored from a backup?): the zone's serial moves on \
                 from its last value instead, so secondaries keep following; they will differ \
                 from other replicas' serials until etcd's revision passes the old one"
            );
            before + 1
        }
        _ => revision,
    }
}

/// Insert `entry` into the set at its name, replacing the entry with the same key.
fn put_service(map: &mut OrdMap<NameKey, ServiceSet>, entry: ServiceEntry) {
    let key = entry.key.clone();
    let entry = Arc::new(entry);
    let set = match map.get(&key) {
        None => ServiceSet::One(entry),
        Some(existing) => {
            let mut entries: Vec<Arc<ServiceEntry>> = existing
                .entries()
                .iter()
                .filter(|e| e.spelling != entry.spelling)
                .cloned()
                .collect();
            if !entries.is_empty() {
                warn!(
                    name = %key.to_name(),
                    spellings = entries.len() + 1,
                    "etcd keys that differ only in letter case name one DNS name: it serves \
                     all of them (delete the one you do not mean)"
                );
            }
            entries.push(entry);
            entries.sort_by(|a, b| a.spelling.cmp(&b.spelling));
            collapse(entries).unwrap_or_else(|| ServiceSet::Many(Arc::from([])))
        }
    };
    map.insert(key, set);
}

fn collapse(mut entries: Vec<Arc<ServiceEntry>>) -> Option<ServiceSet> {
    match entries.len() {
        0 => None,
        1 => entries.pop().map(ServiceSet::One),
        _ => Some(ServiceSet::Many(entries.into())),
    }
}

/// Remove the entry stored under `key`; true when there was one.
fn delete_service(map: &mut OrdMap<NameKey, ServiceSet>, key: &EtcdKey) -> bool {
    let Some(existing) = map.get(&key.name) else {
        return false;
    };
    let before = existing.entries().len();
    let kept: Vec<Arc<ServiceEntry>> = existing
        .entries()
        .iter()
        .filter(|e| !e.is(key))
        .cloned()
        .collect();
    if kept.len() == before {
        return false;
    }
    match collapse(kept) {
        Some(set) => {
            map.insert(key.name.clone(), set);
        }
        None => {
            map.remove(&key.name);
        }
    }
    true
}

/// `fresh` (a reloaded zone directory, a fresh etcd snapshot) as edits of `old`: names whose records did not change
/// keep `old`'s values and tree nodes, so versions of a zone share everything but what changed
/// (the journal keeps versions for IXFR; a reload of a big zone must not double its memory).
fn share_unchanged<V: PartialEq + Clone>(
    old: &OrdMap<NameKey, V>,
    fresh: OrdMap<NameKey, V>,
) -> OrdMap<NameKey, V> {
    let mut shared = old.clone();
    for item in old.diff(&fresh) {
        match item {
            DiffItem::Add(k, v) | DiffItem::Update { new: (k, v), .. } => {
                shared.insert(k.clone(), v.clone());
            }
            DiffItem::Remove(k, _) => {
                shared.remove(k);
            }
        }
    }
    shared
}

/// The names whose value differs between two maps, or `None` when there are more than
/// [`STAMP_BUDGET`] (diffing skips the subtrees the maps share).
fn changed_names<V: PartialEq + Clone>(
    old: &OrdMap<NameKey, V>,
    new: &OrdMap<NameKey, V>,
) -> Option<Vec<NameKey>> {
    if old.is_empty() && new.len() > STAMP_BUDGET {
        return None;
    }
    let mut out = Vec::new();
    for item in old.diff(new) {
        let key = match item {
            DiffItem::Add(k, _) | DiffItem::Remove(k, _) => k,
            DiffItem::Update { new: (k, _), .. } => k,
        };
        if out.len() == STAMP_BUDGET {
            return None;
        }
        out.push(key.clone());
    }
    Some(out)
}

impl Indexer {
    /// A writer that starts from the handle's current snapshot.
    pub fn new(handle: IndexHandle) -> Self {
        let next = (*handle.load()).clone();
        Indexer {
            next,
            staged_etcd: None,
            file_zones: Vec::new(),
            etcd_domains: Vec::new(),
            changed: Vec::new(),
            new_epoch: false,
            zones_dirty: false,
            bulk_replaced: false,
            handle,
            dirty: false,
        }
    }

    /// Fold one update into the next snapshot (not yet visible to readers).
    pub fn apply(&mut self, update: Update) {
        self.dirty = true;
        match update {
            Update::Zones(set) => self.apply_zones(set),
            Update::Etcd(change) => self.apply_etcd(change),
        }
    }

    fn apply_zones(&mut self, set: ZoneSet) {
        debug!(
            zones = set.zones.len(),
            records = set.record_count,
            "zone files"
        );
        let mut records: OrdMap<NameKey, Arc<[Record]>> = OrdMap::new();
        let mut delegations = std::collections::BTreeSet::new();
        let mut wildcards = std::collections::BTreeSet::new();
        self.file_zones.clear();
        for zone in set.zones {
            let apex = NameKey::new(&zone.origin);
            self.file_zones.push((zone.origin, zone.serial));
            for (key, rrs) in zone.names {
                let cut = rrs
                    .iter()
                    .any(|r| r.record_type() == hickory_proto::rr::RecordType::NS);
                if cut && key != apex {
                    delegations.insert(key.clone());
                }
                if key.labels().last() == Some(&b"*"[..]) {
                    wildcards.insert(key.clone());
                }
                records.insert(key, rrs);
            }
        }
        // Cuts and wildcards change what many names answer: every earlier read is void.
        if *self.next.delegations != delegations || *self.next.wildcards != wildcards {
            self.new_epoch = true;
        }
        self.next.delegations = Arc::new(delegations);
        self.next.wildcards = Arc::new(wildcards);
        let records = share_unchanged(&self.next.records, records);
        self.note_changes(changed_names(&self.next.records, &records));
        self.next.records = records;
        self.zones_dirty = true;
        self.bulk_replaced = true;
        self.mark_loaded(SourceId::Zones);
    }

    fn apply_etcd(&mut self, change: EtcdChange) {
        match change {
            EtcdChange::Reset {
                revision,
                part,
                entries,
                domains,
            } => {
                debug!(
                    revision,
                    entries = entries.len(),
                    ?part,
                    "etcd snapshot part"
                );
                if part.is_first() || self.staged_etcd.is_none() {
                    self.staged_etcd = Some(OrdMap::new());
                }
                if let Some(staged) = &mut self.staged_etcd {
                    for entry in entries {
                        put_service(staged, entry);
                    }
                }
                if part.is_last() {
                    self.finish_etcd_reset(revision, domains);
                }
            }
            EtcdChange::Put { revision, entry } => {
                self.etcd_changed(&entry.key.clone(), revision);
                put_service(&mut self.next.services, entry);
            }
            EtcdChange::Delete { revision, key } => {
                if delete_service(&mut self.next.services, &key) {
                    self.etcd_changed(&key.name, revision);
                } else {
                    self.next.etcd_revision = self.next.etcd_revision.max(revision);
                }
            }
        }
    }

    fn finish_etcd_reset(&mut self, revision: i64, domains: Vec<(Name, i64)>) {
        let Some(services) = self.staged_etcd.take() else {
            return;
        };
        let services = share_unchanged(&self.next.services, services);
        self.note_changes(changed_names(&self.next.services, &services));
        self.next.services = services;
        self.next.etcd_revision = revision;
        self.bulk_replaced = true;
        let previous = std::mem::take(&mut self.etcd_domains);
        self.etcd_domains = domains
            .into_iter()
            .map(|(name, rev)| {
                let key = NameKey::new(&name);
                let before = previous.iter().find(|(_, k, _)| *k == key).map(|d| d.2);
                (
                    name.to_lowercase(),
                    key,
                    next_revision(before, rev, &name, true),
                )
            })
            .collect();
        self.zones_dirty = true;
        self.mark_loaded(SourceId::Etcd);
    }

    /// An etcd key at `name` changed at `revision`: stamp it and move its zone's version.
    fn etcd_changed(&mut self, name: &NameKey, revision: i64) {
        self.next.etcd_revision = self.next.etcd_revision.max(revision);
        self.changed.push(name.clone());
        let closest = self
            .etcd_domains
            .iter_mut()
            .filter(|(_, key, _)| name.is_at_or_below(key))
            .max_by_key(|(_, key, _)| key.label_count());
        if let Some((name, _, last)) = closest {
            *last = next_revision(Some(*last), revision, name, false);
            self.zones_dirty = true;
        }
    }

    fn note_changes(&mut self, changed: Option<Vec<NameKey>>) {
        match changed {
            Some(names) => self.changed.extend(names),
            None => self.new_epoch = true,
        }
    }

    fn mark_loaded(&mut self, source: SourceId) {
        if !self.next.loaded.contains(&source) {
            self.next.loaded.push(source);
        }
    }

    /// Rebuild the zone list from both sources (serials included); a new epoch when the set of
    /// zones itself changed, since every "which zone is this name in" read may differ.
    fn rebuild_zones(&mut self) {
        let mut zones: Vec<Zone> = Vec::new();
        let origins = self
            .file_zones
            .iter()
            .map(|(n, _)| n)
            .chain(self.etcd_domains.iter().map(|(n, _, _)| n));
        for origin in origins {
            let key = NameKey::new(origin);
            if !zones.iter().any(|z| z.key == key) {
                zones.push(Zone::new(origin));
            }
        }
        for zone in &mut zones {
            zone.file_serial = self
                .file_zones
                .iter()
                .find(|(n, _)| NameKey::new(n) == zone.key)
                .map(|(_, s)| *s);
            zone.etcd_revision = self
                .etcd_domains
                .iter()
                .filter(|(_, key, _)| zone.key.is_at_or_below(key))
                .max_by_key(|(_, key, _)| key.label_count())
                .map(|(_, _, rev)| *rev);
            zone.compute_serial();
        }
        zones.sort_by(|a, b| {
            b.key
                .label_count()
                .cmp(&a.key.label_count())
                .then_with(|| a.key.cmp(&b.key))
        });
        let same_set = zones.len() == self.next.zones.len()
            && zones
                .iter()
                .zip(self.next.zones.iter())
                .all(|(a, b)| a.key == b.key);
        if !same_set {
            self.new_epoch = true;
        }
        self.next.zones = zones.into();
    }

    /// Stamp every changed name (exact) and its ancestors (subtree) with `generation`.
    fn stamp(&mut self, generation: u64) {
        let changed = std::mem::take(&mut self.changed);
        if self.new_epoch || changed.len() > STAMP_BUDGET || self.next.stamps.len() > STAMP_LIMIT {
            self.next.epoch = generation;
            self.next.stamps = imbl::HashMap::new();
            self.next.recent = imbl::Vector::new();
            self.next.recent_floor = generation;
            self.new_epoch = false;
            return;
        }
        self.remember_recent(&changed, generation);
        for name in changed {
            let exact = self.next.stamps.entry(name.clone()).or_default();
            exact.exact = generation;
            for ancestor in name.self_and_ancestors() {
                let stamp: &mut Stamp = self.next.stamps.entry(ancestor).or_default();
                stamp.subtree = generation;
            }
        }
    }

    /// Append this publish's changed names to the snapshot's recent list, keeping the newest
    /// [`RECENT_NAMES`].
    fn remember_recent(&mut self, changed: &[NameKey], generation: u64) {
        let next = &mut self.next;
        for name in changed {
            next.recent.push_back((generation, name.clone()));
        }
        while next.recent.len() > RECENT_NAMES {
            if let Some((dropped, _)) = next.recent.pop_front() {
                next.recent_floor = next.recent_floor.max(dropped);
            }
        }
    }

    /// Make everything applied so far visible to readers as one snapshot. A half-received
    /// etcd snapshot stays staged and does not hold this back.
    pub fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        let generation = self.next.generation + 1;
        if self.zones_dirty {
            self.rebuild_zones();
            self.zones_dirty = false;
        }
        self.stamp(generation);
        self.next.generation = generation;
        self.handle.store(Arc::new(self.next.clone()));
        self.dirty = false;
        if std::mem::take(&mut self.bulk_replaced) {
            // The previous version of a whole source is gone now (unless a reader still
            // holds it for a moment): give its memory back to the system.
            crate::memory::release_free_memory();
        }
    }
}

/// Apply updates from all sources as they arrive, publishing after each batch, on a thread of
/// its own (a million-key reset must not hold up the async runtime). Ends when every sender
/// is gone.
pub fn spawn_indexer(
    mut indexer: Indexer,
    mut updates: mpsc::Receiver<Update>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("srvd-index".into())
        .spawn(move || {
            while let Some(first) = updates.blocking_recv() {
                indexer.apply(first);
                let mut applied = 1;
                while applied < MAX_BATCH {
                    match updates.try_recv() {
                        Ok(update) => {
                            indexer.apply(update);
                            applied += 1;
                        }
                        Err(_) => break,
                    }
                }
                indexer.publish();
            }
        })
}

#[cfg(test)]
mod tests;
