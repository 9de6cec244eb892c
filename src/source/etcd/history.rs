//! The revision that last changed each served domain, deletes included, so that a zone's
//! serial never goes back when srvd restarts (secondaries ignore a primary whose serial went
//! back, RFC 1982 / RFC 1996 §4.7).
//!
//! While following the watch, a domain's revision is its newest event's: a put or a delete.
//! A snapshot at revision R only shows the newest `mod_revision` X_d among the keys a domain
//! still has; a key deleted after X_d left no trace in it. So after a snapshot we replay
//! etcd's history of the prefix from the oldest X_d up to R and take the newest event per
//! domain. The replay ends on the first event after R, or on a response that carries all
//! events up to its header revision (etcd sends an unsynced watcher everything up to its
//! current revision in one response unless that spans 1000 revisions or more,
//! `watchBatchMaxRevs`); etcd 3.4's progress requests cannot be trusted for this (etcd issue
//! #15220). Whatever cannot be known — an empty domain, history compacted away, etcd failing
//! or slow — takes R itself: never lower than any revision the watch path gave, at worst one
//! full transfer more for the secondaries.
//!
//! This module only reads etcd; it hands nothing to the index itself.

use std::time::Duration;

use etcd_client::{Client, WatchOptions, WatchResponse};
use tracing::{debug, warn};

/// How long the replay may take before the unknown domains take the snapshot revision.
const REPLAY_LIMIT: Duration = Duration::from_secs(10);
/// Revisions etcd puts in one catch-up response at most (`watchBatchMaxRevs`, etcd 3.4-3.6).
const ETCD_BATCH_REVISIONS: usize = 1000;

/// Per domain, the revision that last changed it at or before `snapshot`: `newest_keys[d]`
/// (X_d, 0 for a domain without keys) raised by any later event (a delete) the history
/// shows; the snapshot revision where that cannot be known. `domain_of` maps an etcd key to
/// its domain.
pub(super) async fn last_changes(
    client: &Client,
    prefix: &str,
    snapshot: i64,
    newest_keys: &[i64],
    domain_of: impl Fn(&[u8]) -> Option<usize>,
) -> Vec<i64> {
    let mut revisions = newest_keys.to_vec();
    // Empty domains: when their last key went is unknown.
    let mut known: Vec<bool> = newest_keys.iter().map(|&x| x > 0).collect();
    let replay = tokio::time::timeout(
        REPLAY_LIMIT,
        replay(
            client,
            prefix,
            snapshot,
            &mut revisions,
            &mut known,
            &domain_of,
        ),
    )
    .await;
    match replay {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            warn!(error = %e, "cannot replay etcd history for zone serials; using the snapshot revision");
            known.iter_mut().for_each(|k| *k = false);
        }
        Err(_) => {
            warn!(limit = ?REPLAY_LIMIT, "etcd history replay for zone serials too slow; using the snapshot revision");
            known.iter_mut().for_each(|k| *k = false);
        }
    }
    for (revision, known) in revisions.iter_mut().zip(known) {
        if !known {
            *revision = snapshot;
        }
    }
    revisions
}

/// Replay from the oldest known X_d; on compaction, give up on the domains whose X_d is
/// gone and replay from the oldest remaining one.
async fn replay(
    client: &Client,
    prefix: &str,
    snapshot: i64,
    revisions: &mut [i64],
    known: &mut [bool],
    domain_of: &impl Fn(&[u8]) -> Option<usize>,
) -> Result<(), etcd_client::Error> {
    loop {
        let Some(from) = revisions
            .iter()
            .zip(known.iter())
            .filter(|(_, k)| **k)
            .map(|(r, _)| *r)
            .min()
        else {
            return Ok(());
        };
        if from >= snapshot {
            return Ok(());
        }
        match replay_from(client, prefix, from, snapshot, revisions, domain_of).await? {
            None => return Ok(()),
            Some(compacted) => {
                debug!(
                    from,
                    compacted, "etcd history compacted; narrowing the replay"
                );
                for (r, k) in revisions.iter().zip(known.iter_mut()) {
                    if *r < compacted {
                        *k = false;
                    }
                }
            }
        }
    }
}

/// One watch from `from`: raise `revisions` by every event up to `snapshot`. `Some(C)` when
/// etcd compacted the history up to C.
async fn replay_from(
    client: &Client,
    prefix: &str,
    from: i64,
    snapshot: i64,
    revisions: &mut [i64],
    domain_of: &impl Fn(&[u8]) -> Option<usize>,
) -> Result<Option<i64>, etcd_client::Error> {
    let options = WatchOptions::new().with_prefix().with_start_revision(from);
    let mut stream = client.watch_client().watch(prefix, Some(options)).await?;
    while let Some(response) = stream.message().await? {
        if response.canceled() {
            if response.compact_revision() > 0 {
                return Ok(Some(response.compact_revision()));
            }
            return Err(etcd_client::Error::WatchError(format!(
                "history replay cancelled: {}",
                response.cancel_reason()
            )));
        }
        if apply(&response, snapshot, revisions, domain_of) {
            return Ok(None);
        }
    }
    Err(etcd_client::Error::WatchError(
        "history replay stream ended".into(),
    ))
}

/// Raise `revisions` by the response's events up to `snapshot`; true once everything up to
/// `snapshot` has been seen.
fn apply(
    response: &WatchResponse,
    snapshot: i64,
    revisions: &mut [i64],
    domain_of: &impl Fn(&[u8]) -> Option<usize>,
) -> bool {
    let events = response.events();
    if events.is_empty() {
        // The "created" response, or a progress notification: proves nothing.
        return false;
    }
    let mut distinct = 0;
    let mut last = 0;
    for kv in events.iter().filter_map(|e| e.kv()) {
        let revision = kv.mod_revision();
        if revision > snapshot {
            return true;
        }
        if revision != last {
            distinct += 1;
            last = revision;
        }
        if let Some(d) = domain_of(kv.key()) {
            revisions[d] = revisions[d].max(revision);
        }
    }
    let through = response.header().map_or(0, |h| h.revision());
    through >= snapshot && distinct < ETCD_BATCH_REVISIONS
}
