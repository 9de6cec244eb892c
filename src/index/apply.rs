//! Folding [`Update`]s into snapshots: the index's single writer.
//!
//! The [`Indexer`] keeps the next snapshot under construction, applies updates in the order
//! they arrive and publishes whole snapshots only between batches, so readers never see a
//! half-applied reset.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{Name, Record};
use imbl::OrdMap;
use tokio::sync::mpsc;
use tracing::debug;

use super::NameKey;
use super::snapshot::{IndexHandle, ServiceEntry, Snapshot, Zone};
use crate::source::{Change, Entry, SourceId, Update};

/// Most updates folded into one published snapshot.
const MAX_BATCH: usize = 4096;

/// The two per-source maps, as a reset builds them.
#[derive(Default)]
struct Maps {
    records: OrdMap<NameKey, Arc<[Record]>>,
    services: OrdMap<NameKey, Arc<ServiceEntry>>,
}

/// Insert or replace the entry at its name (a source hands over each name once per reset).
fn put_entry(
    records: &mut OrdMap<NameKey, Arc<[Record]>>,
    services: &mut OrdMap<NameKey, Arc<ServiceEntry>>,
    entry: Entry,
) {
    match entry {
        Entry::Records { name, records: rrs } => {
            records.insert(NameKey::new(&name), rrs.into());
        }
        Entry::Service { name, service } => {
            let key = NameKey::new(&name);
            let entry = Arc::new(ServiceEntry {
                key: key.clone(),
                service,
            });
            services.insert(key, entry);
        }
    }
}

/// The single writer of the index.
pub struct Indexer {
    next: Snapshot,
    /// A reset in progress (split into parts): built aside, swapped in at its last part.
    staged: Option<(SourceId, Maps)>,
    zones_by_source: HashMap<SourceId, Vec<Name>>,
    handle: IndexHandle,
    dirty: bool,
}

impl Indexer {
    /// A writer that starts from the handle's current snapshot.
    pub fn new(handle: IndexHandle) -> Self {
        let next = (*handle.load()).clone();
        Indexer {
            next,
            staged: None,
            zones_by_source: HashMap::new(),
            handle,
            dirty: false,
        }
    }

    /// Fold one update into the next snapshot (not yet visible to readers).
    pub fn apply(&mut self, update: Update) {
        self.dirty = true;
        let source = update.source;
        match update.change {
            Change::Reset {
                revision,
                zones,
                entries,
                part,
            } => {
                debug!(
                    source = source.as_str(),
                    revision,
                    entries = entries.len(),
                    ?part,
                    "reset"
                );
                let restart = part.is_first() || self.staged.as_ref().is_none_or(|s| s.0 != source);
                if restart {
                    self.staged = Some((source, Maps::default()));
                }
                if let Some((_, maps)) = &mut self.staged {
                    for entry in entries {
                        put_entry(&mut maps.records, &mut maps.services, entry);
                    }
                }
                if part.is_last() {
                    if let Some((_, maps)) = self.staged.take() {
                        match source {
                            SourceId::Zones => {
                                self.next.records = maps.records;
                                self.next.zones_revision = revision;
                            }
                            SourceId::Etcd => {
                                self.next.services = maps.services;
                                self.next.etcd_revision = revision;
                            }
                        }
                    }
                    self.zones_by_source.insert(source, zones);
                    self.rebuild_zones();
                    if !self.next.loaded.contains(&source) {
                        self.next.loaded.push(source);
                    }
                }
            }
            Change::Put { revision, entry } => {
                self.bump_revision(source, revision);
                put_entry(&mut self.next.records, &mut self.next.services, entry);
            }
            Change::Delete { revision, name } => {
                self.bump_revision(source, revision);
                let key = NameKey::new(&name);
                match source {
                    SourceId::Zones => {
                        self.next.records.remove(&key);
                    }
                    SourceId::Etcd => {
                        self.next.services.remove(&key);
                    }
                }
            }
        }
    }

    fn bump_revision(&mut self, source: SourceId, revision: i64) {
        match source {
            SourceId::Zones => self.next.zones_revision = self.next.zones_revision.max(revision),
            SourceId::Etcd => self.next.etcd_revision = self.next.etcd_revision.max(revision),
        }
    }

    fn rebuild_zones(&mut self) {
        let mut zones: Vec<Zone> = Vec::new();
        for origin in self.zones_by_source.values().flatten() {
            let key = NameKey::new(origin);
            if !zones.iter().any(|z| z.key == key) {
                zones.push(Zone {
                    origin: origin.to_lowercase(),
                    key,
                });
            }
        }
        zones.sort_by(|a, b| {
            b.key
                .label_count()
                .cmp(&a.key.label_count())
                .then_with(|| a.key.cmp(&b.key))
        });
        self.next.zones = Arc::new(zones);
    }

    /// Make everything applied so far visible to readers as one snapshot (not while a split
    /// reset is half in).
    pub fn publish(&mut self) {
        if !self.dirty || self.staged.is_some() {
            return;
        }
        self.next.generation += 1;
        self.handle.store(self.next.clone());
        self.dirty = false;
    }
}

/// Apply updates from all sources as they arrive, publishing after each batch. Ends when every
/// sender is gone.
pub async fn run_indexer(mut indexer: Indexer, mut updates: mpsc::Receiver<Update>) {
    while let Some(first) = updates.recv().await {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::TtlPolicy;
    use crate::record::Service;
    use crate::source::Part;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn service(host: &str) -> Entry {
        Entry::Service {
            name: name(&format!("{host}.web.example.")),
            service: Service::from_json(format!(r#"{{"host":"10.0.0.{host}"}}"#).as_bytes())
                .unwrap(),
        }
    }

    #[test]
    fn nothing_is_visible_before_publish_and_resets_replace_whole() {
        let handle = IndexHandle::new(Snapshot::empty(TtlPolicy::default()));
        let mut indexer = Indexer::new(handle.clone());
        indexer.apply(Update {
            source: SourceId::Etcd,
            change: Change::Reset {
                revision: 7,
                zones: vec![name("example.")],
                entries: vec![service("1"), service("2")],
                part: Part::Whole,
            },
        });
        assert_eq!(handle.load().names_from(SourceId::Etcd), 0);
        indexer.publish();
        let snap = handle.load();
        assert_eq!(snap.names_from(SourceId::Etcd), 2);
        assert_eq!(snap.etcd_revision, 7);
        assert!(snap.is_loaded(&[SourceId::Etcd]));
        assert!(!snap.is_loaded(&[SourceId::Etcd, SourceId::Zones]));

        indexer.apply(Update {
            source: SourceId::Etcd,
            change: Change::Delete {
                revision: 8,
                name: name("1.web.example."),
            },
        });
        indexer.apply(Update {
            source: SourceId::Etcd,
            change: Change::Reset {
                revision: 9,
                zones: vec![name("example.")],
                entries: vec![service("3")],
                part: Part::Whole,
            },
        });
        indexer.publish();
        let snap = handle.load();
        let keys: Vec<_> = snap
            .services_below(&NameKey::new(&name("example.")))
            .map(|(_, s)| s.name().to_ascii())
            .collect();
        assert_eq!(keys, vec!["3.web.example."]);
        assert_eq!(snap.etcd_revision, 9);
        assert_eq!(snap.generation, 2);
    }

    #[test]
    fn a_split_reset_is_published_only_when_complete() {
        let handle = IndexHandle::new(Snapshot::empty(TtlPolicy::default()));
        let mut indexer = Indexer::new(handle.clone());
        let part = |entries, part| Update {
            source: SourceId::Etcd,
            change: Change::Reset {
                revision: 5,
                zones: vec![name("example.")],
                entries,
                part,
            },
        };
        indexer.apply(part(vec![service("1")], Part::First));
        indexer.publish();
        indexer.apply(part(vec![service("2")], Part::Middle));
        indexer.publish();
        assert_eq!(
            handle.load().names_from(SourceId::Etcd),
            0,
            "nothing half-applied"
        );
        assert!(!handle.load().is_loaded(&[SourceId::Etcd]));
        indexer.apply(part(vec![service("3")], Part::Last));
        indexer.publish();
        assert_eq!(handle.load().names_from(SourceId::Etcd), 3);
        // A new split reset starting over discards a half-received one.
        indexer.apply(part(vec![service("4")], Part::First));
        indexer.apply(part(vec![service("5")], Part::First));
        indexer.apply(part(vec![], Part::Last));
        indexer.publish();
        assert_eq!(handle.load().names_from(SourceId::Etcd), 1);
    }
}
