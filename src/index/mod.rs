//! The index: an immutable [`Snapshot`] of every served name, swapped atomically.
//!
//! `apply` is the only writer: it folds [`crate::source::Update`]s into a new snapshot and
//! publishes it through [`IndexHandle`]. Readers (`dns`, `server`) load the current
//! `Arc<Snapshot>` and never wait for a writer. Maps are persistent (`imbl`), so an update
//! costs O(changed names × log n) and a snapshot clone is O(1). This module answers "what is
//! stored at / below this name" and "did anything a reader read change since generation g"; it
//! does not build DNS answers and knows no TTL or protocol rule.

mod apply;
mod journal;
mod snapshot;

pub use apply::{Indexer, spawn_indexer};
pub use journal::DEPTH as JOURNAL_DEPTH;
pub use snapshot::{IndexHandle, Read, ServiceSet, Snapshot, Zone};
