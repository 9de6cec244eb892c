//! The index: an immutable [`Snapshot`] of every served name, swapped atomically.
//!
//! `apply` is the only writer: it folds [`crate::source::Update`]s into a new snapshot and
//! publishes it through [`IndexHandle`]. Readers (`dns`) load the current `Arc<Snapshot>` and
//! never wait for a writer. Maps are persistent (`imbl::OrdMap`), so an update costs
//! O(changed names × log n) and a snapshot clone is O(1). This module answers "what is stored
//! at / below this name"; it does not build DNS answers.

mod apply;
mod name_key;
mod snapshot;

pub use apply::{Indexer, run_indexer};
pub use name_key::NameKey;
pub use snapshot::{IndexHandle, ServiceEntry, Snapshot, TtlPolicy, Zone};
