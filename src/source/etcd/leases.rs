//! Granted TTLs of etcd leases, looked up in batches.
//!
//! A key attached to a lease is never served longer than the lease's *granted* TTL (never its
//! ID: GHSA-93mf-426m-g6x9). A lease's granted TTL does not change during its life, so each is
//! looked up once and remembered. Lookups of the leases a snapshot page or a watch response
//! brings are made concurrently ([`CONCURRENCY`] at a time): N newly announced instances cost
//! about one round trip, not N, before their records are handed over.

use std::collections::{HashMap, HashSet};

use etcd_client::Client;
use tokio::task::JoinSet;

use super::EtcdError;

/// Lease lookups in flight at once.
const CONCURRENCY: usize = 64;
/// Lease TTLs remembered at most (forgotten all at once past this, and at each snapshot).
const CACHE_MAX: usize = 100_000;

/// Known granted TTLs.
#[derive(Default)]
pub struct LeaseTtls {
    known: HashMap<i64, u32>,
}

impl LeaseTtls {
    /// Forget everything (a fresh snapshot may come from another etcd history).
    pub fn clear(&mut self) {
        self.known.clear();
    }

    /// The granted TTL of a lease looked up before.
    pub fn get(&self, lease: i64) -> Option<u32> {
        self.known.get(&lease).copied()
    }

    /// Look up every lease of `leases` not known yet, concurrently.
    pub async fn resolve(
        &mut self,
        client: &Client,
        leases: impl IntoIterator<Item = i64>,
    ) -> Result<(), EtcdError> {
        let missing: HashSet<i64> = leases
            .into_iter()
            .filter(|l| *l != 0 && !self.known.contains_key(l))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.known.len() + missing.len() > CACHE_MAX {
            self.known.clear();
        }
        let mut pending = missing.into_iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < CONCURRENCY {
                let Some(lease) = pending.next() else { break };
                let mut client = client.clone();
                running.spawn(async move {
                    let response = client.lease_time_to_live(lease, None).await;
                    (lease, response)
                });
            }
            let Some(done) = running.join_next().await else {
                return Ok(());
            };
            let Ok((lease, response)) = done else {
                continue;
            };
            let response = response.map_err(EtcdError::from_client)?;
            // An expired lease reports no TTL; its keys are about to be deleted: serve them
            // briefly.
            let ttl = u32::try_from(response.granted_ttl().max(1)).unwrap_or(u32::MAX);
            self.known.insert(lease, ttl);
        }
    }
}
