//! A UDP or TCP worker's own copies of the forwarded answers it served lately.
//!
//! Measured on cache hits (perf, `benches/forward.sh`): a look-up in the shared moka cache
//! (epoch pinning, read recording for its eviction policy, atomics) was about a quarter of
//! the CPU of a forwarded hit. A worker first looks here, in a plain map nobody else touches.
//! It holds only entries the shared cache handed out as fresh; a fresh entry there is never
//! replaced (a new answer is stored only once the old one has expired), so a copy here is the
//! very answer the shared cache would give until the copy's own TTL runs out, when it is
//! dropped and the shared cache is asked again.
//!
//! Bounded by two generations of at most [`GENERATION`] copies each (an LRU approximation with
//! no cliff): copies go into the current generation; when it is full it becomes the previous
//! one and the old previous one is dropped; a hit in the previous generation moves the copy
//! back into the current one. A working set of up to [`GENERATION`] questions always hits here.
//! Only the UDP workers keep copies (a fixed number of threads, so the memory is bounded by
//! the worker count); a [`HotCache::default`] keeps none, which is what a TCP connection gets
//! (hundreds of connections must not each hold copies). Nothing here decides freshness rules
//! or talks to upstreams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::cache::Resolution;

/// Most copies in one generation (their answers are shared with the main cache by `Arc`).
pub const GENERATION: usize = 8192;

type Copies = HashMap<Box<[u8]>, Arc<Resolution>, rustc_hash::FxBuildHasher>;

/// One worker's copies, keyed by the forwarded-cache key of the question.
#[derive(Default)]
pub struct HotCache {
    /// The key of the question being looked up (a reused buffer).
    pub(super) key: Vec<u8>,
    current: Copies,
    previous: Copies,
    /// Copies kept at all (a default cache keeps none).
    keeps: bool,
}

impl HotCache {
    /// A cache that keeps copies (for a UDP worker thread).
    pub fn keeping() -> Self {
        HotCache {
            keeps: true,
            ..HotCache::default()
        }
    }

    /// The copy for the current key if it is still fresh at `now`; an expired copy is dropped.
    pub(super) fn fresh(&mut self, now: Instant) -> Option<Arc<Resolution>> {
        if let Some(held) = self.current.get(&self.key[..]) {
            if held.is_fresh(now) {
                return Some(held.clone());
            }
            self.current.remove(&self.key[..]);
            return None;
        }
        let (key, held) = self.previous.remove_entry(&self.key[..])?;
        if !held.is_fresh(now) {
            return None;
        }
        self.insert(key, held.clone());
        Some(held)
    }

    /// Keep a copy of `resolution` under the current key.
    pub(super) fn keep(&mut self, resolution: Arc<Resolution>) {
        if !self.keeps {
            return;
        }
        self.insert(self.key.clone().into_boxed_slice(), resolution);
    }

    fn insert(&mut self, key: Box<[u8]>, resolution: Arc<Resolution>) {
        if self.current.len() >= GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, resolution);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record};
    use std::time::Duration;

    fn answer(ttl: u32) -> Arc<Resolution> {
        let a = Record::from_rdata(Name::root(), ttl, RData::A(A::new(192, 0, 2, 1)));
        Arc::new(Resolution::from_reply(
            ResponseCode::NoError,
            false,
            vec![a],
            vec![],
            vec![],
        ))
    }

    #[test]
    fn a_copy_is_served_while_fresh_and_dropped_once_expired() {
        let mut hot = HotCache::keeping();
        hot.key.extend_from_slice(b"question");
        let kept = answer(5);
        let stored = kept.stored_at;
        hot.keep(kept);
        assert!(hot.fresh(stored + Duration::from_secs(4)).is_some());
        assert!(hot.fresh(stored + Duration::from_secs(5)).is_none());
        assert!(hot.current.is_empty(), "the expired copy is dropped");
    }

    fn ask(hot: &mut HotCache, i: usize) -> bool {
        hot.key.clear();
        hot.key.extend_from_slice(&i.to_be_bytes());
        hot.fresh(Instant::now()).is_some()
    }

    #[test]
    fn the_copies_are_bounded_and_a_generation_of_recent_ones_always_hits() {
        let mut hot = HotCache::keeping();
        for i in 0..3 * GENERATION {
            if !ask(&mut hot, i) {
                hot.keep(answer(60));
            }
        }
        assert!(hot.current.len() + hot.previous.len() <= 2 * GENERATION);
        let recent = 2 * GENERATION..3 * GENERATION;
        assert!(recent.clone().all(|i| ask(&mut hot, i)));
        assert!(!ask(&mut hot, 0), "the oldest copies are gone");
    }

    #[test]
    fn a_default_cache_keeps_no_copies() {
        let mut hot = HotCache::default();
        hot.key.extend_from_slice(b"question");
        hot.keep(answer(60));
        assert!(hot.current.is_empty() && hot.fresh(Instant::now()).is_none());
    }
}
