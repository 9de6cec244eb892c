//! The etcd source: a consistent snapshot of the prefix, then the watch stream from there.
//!
//! Start (and after a compaction or a rewind): range-read `<prefix>/` page by page at one
//! revision R and hand the index an [`EtcdChange::Reset`] in parts, with the revision that last
//! changed each domain (see [`history`]: deletes count); then watch from R+1 and
//! hand over every event, in order, as [`EtcdChange::Put`] / [`EtcdChange::Delete`]. On any
//! failure (etcd down, stream lost, partition detected by HTTP/2 keep-alive) it reconnects
//! with backoff and resumes from the last fully handed-over revision + 1, so nothing is lost; a
//! re-sent event is idempotent. Before resuming it checks that etcd still has the history it
//! followed (same cluster, revision not behind, the last event it applied still at its
//! revision): an etcd restored empty or from an older backup gets a fresh snapshot swapped in
//! whole, logged and counted, instead of a watch on a foreign history. A watch cancelled for
//! compaction also triggers a fresh snapshot.
//!
//! Watch responses are read by one task and decoded by another, so lease look-ups (batched,
//! see [`leases`]) never hold up reading the stream. Values are decoded here: a bad value is
//! skipped with a warning naming the key and `srvd_source_bad_values_total{source="etcd"}`,
//! and a key whose value turns bad is removed. This module never reads a snapshot and never
//! answers DNS. The snapshot read is in [`snapshot`], the watch in [`watch`], key/value
//! decoding in [`decode`].

pub mod connection;
mod decode;
mod history;
mod leases;
mod snapshot;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, GetOptions, KeyValue};
use hickory_proto::rr::Name;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::key::KeyMapper;
use super::{EtcdChange, Update};
use crate::metrics::Metrics;
use crate::name_key::NameKey;
pub use connection::{EtcdArgs, EtcdConnection, connect_options};
use leases::LeaseTtls;

/// Keys per range-read page of a snapshot. etcd 3.4's cost per page grows with what is left
/// of the range, so pages are large (measured at 1M keys: 10k-key pages take 5x longer).
const PAGE: i64 = 250_000;
/// Largest gRPC message accepted from etcd (a snapshot page, a big transaction's events).
const MAX_MESSAGE: usize = 512 << 20;
/// How often a healthy connection is probed (drives the staleness gauge, detects rewinds).
const PROBE_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Watch responses read ahead of the decoder.
const READ_AHEAD: usize = 1024;

/// What srvd follows in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    pub connection: EtcdConnection,
    /// The zones served from etcd.
    pub domains: Vec<Name>,
}

#[derive(Debug, Error)]
pub enum EtcdError {
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("etcd: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("etcd history was compacted past the revision we need")]
    Compacted,
    #[error("etcd's history is not the one we followed ({0})")]
    Rewound(String),
    #[error("watch cancelled by etcd: {0}")]
    Cancelled(String),
    #[error("watch stream ended")]
    StreamEnded,
    #[error("index is gone")]
    IndexGone,
    #[error("reading a snapshot page failed: {0}")]
    Task(String),
}

impl EtcdError {
    fn from_client(e: etcd_client::Error) -> Self {
        match &e {
            etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::OutOfRange => {
                EtcdError::Compacted
            }
            _ => EtcdError::Client(e),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Connection health, shared with `/readyz` and `/metrics`.
#[derive(Debug)]
pub struct EtcdStatus {
    last_contact_ms: AtomicU64,
    connected: AtomicBool,
}

impl Default for EtcdStatus {
    fn default() -> Self {
        EtcdStatus {
            last_contact_ms: AtomicU64::new(now_ms()),
            connected: AtomicBool::new(false),
        }
    }
}

impl EtcdStatus {
    fn contact(&self) {
        self.last_contact_ms.store(now_ms(), Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
    }

    fn lost(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    /// Seconds since srvd last heard from etcd (a healthy connection hears every second).
    pub fn stale_seconds(&self) -> f64 {
        let last = self.last_contact_ms.load(Ordering::Relaxed);
        now_ms().saturating_sub(last) as f64 / 1000.0
    }

    /// True while a watch session is established.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// The smallest key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Exponential backoff with jitter.
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let current = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        let jitter = rand::random_range(0.5..1.0);
        current.mul_f64(jitter)
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
}

/// Where the followed history stands: enough to tell, after a reconnect, whether etcd still
/// has it.
#[derive(Debug, Clone, Default)]
struct Position {
    /// The next revision to watch from (`None`: take a snapshot first).
    resume: Option<i64>,
    /// The etcd cluster the history came from.
    cluster_id: u64,
    /// The last applied event: its key and whether it left the key present.
    last_event: Option<(Vec<u8>, bool)>,
}

/// The etcd producer of [`Update`]s.
pub struct EtcdSource {
    settings: EtcdSettings,
    mapper: KeyMapper,
    updates: mpsc::Sender<Update>,
    metrics: Arc<Metrics>,
    status: Arc<EtcdStatus>,
    leases: LeaseTtls,
    backoff: Backoff,
    /// The revision that last changed each domain (for zone serials).
    domain_revisions: Vec<i64>,
    /// Each served domain's name key and label count (built once: `domain_of` runs per key).
    domain_keys: Vec<(NameKey, usize)>,
}

impl EtcdSource {
    pub fn new(
        settings: EtcdSettings,
        updates: mpsc::Sender<Update>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mapper = KeyMapper::new(&settings.connection.prefix, &settings.domains);
        let domain_revisions = vec![0; settings.domains.len()];
        let domain_keys = settings
            .domains
            .iter()
            .map(|d| (NameKey::new(d), d.num_labels().into()))
            .collect();
        EtcdSource {
            settings,
            mapper,
            updates,
            metrics,
            status: Arc::new(EtcdStatus::default()),
            leases: LeaseTtls::default(),
            backoff: Backoff(BACKOFF_MIN),
            domain_revisions,
            domain_keys,
        }
    }

    /// Health shared with HTTP.
    pub fn status(&self) -> Arc<EtcdStatus> {
        self.status.clone()
    }

    /// Follow etcd until `stop` or until the index is gone.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut position = Position::default();
        loop {
            let result = tokio::select! {
                r = self.session(&mut position) => r,
                _ = stop.cancelled() => return,
            };
            self.status.lost();
            match result {
                Err(EtcdError::IndexGone) | Ok(()) => return,
                Err(e) => {
                    let wait = self.backoff.next();
                    warn!(
                        error = %e,
                        resume_revision = position.resume.unwrap_or(0),
                        stale_seconds = self.status.stale_seconds(),
                        "etcd unavailable; serving the last snapshot, retrying in {wait:?}"
                    );
                    self.metrics.etcd_reconnect();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {},
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// One connection: check the history, snapshot if needed, then watch until something
    /// fails.
    async fn session(&mut self, position: &mut Position) -> Result<(), EtcdError> {
        let options = connect_options(&self.settings.connection)?;
        let client = Client::connect(&self.settings.connection.endpoints, Some(options)).await?;
        let (rewound_tx, mut rewound) = mpsc::channel(1);
        let probe = tokio::spawn(watch::probe(
            client.clone(),
            self.status.clone(),
            position.cluster_id,
            rewound_tx,
        ));
        let result = async {
            if position.resume.is_some()
                && let Err(why) = self.same_history(&client, position).await?
            {
                self.resync_because("rewind", &why);
                position.resume = None;
            }
            loop {
                if position.resume.is_none() {
                    self.snapshot(&client, position).await?;
                }
                let from = position.resume.unwrap_or(1);
                let watched = tokio::select! {
                    r = self.watch(&client, from, position) => r,
                    Some(why) = rewound.recv() => Err(EtcdError::Rewound(why)),
                };
                match watched {
                    Err(EtcdError::Compacted) => {
                        self.resync_because("compaction", &format!("from revision {from}"));
                        position.resume = None;
                    }
                    Err(EtcdError::Rewound(why)) => {
                        self.resync_because("rewind", &why);
                        position.resume = None;
                    }
                    other => return other,
                }
            }
        }
        .await;
        probe.abort();
        result
    }

    fn resync_because(&self, reason: &'static str, why: &str) {
        warn!(
            reason,
            detail = why,
            "etcd's history changed under us; taking a fresh snapshot and swapping it in whole"
        );
        self.metrics.etcd_rewind(reason);
    }

    /// Whether etcd still holds the history we followed: `Ok(Err(why))` when it does not.
    async fn same_history(
        &self,
        client: &Client,
        position: &Position,
    ) -> Result<Result<(), String>, EtcdError> {
        let resume = position.resume.unwrap_or(1);
        let mut kv = client.kv_client();
        let key = position.last_event.as_ref().map_or_else(
            || self.mapper.watch_prefix().into_bytes(),
            |(k, _)| k.clone(),
        );
        let options = GetOptions::new().with_revision(resume - 1).with_keys_only();
        let response = match kv.get(key.clone(), Some(options)).await {
            Ok(r) => r,
            Err(e) => {
                return match EtcdError::from_client(e) {
                    EtcdError::Compacted => Ok(Ok(())),
                    EtcdError::Client(etcd_client::Error::GRpcStatus(s))
                        if s.message().contains("future revision") =>
                    {
                        Ok(Err(format!("etcd is behind our revision {}", resume - 1)))
                    }
                    other => Err(other),
                };
            }
        };
        self.status.contact();
        let (cluster, revision) = response
            .header()
            .map_or((0, 0), |h| (h.cluster_id(), h.revision()));
        if position.cluster_id != 0 && cluster != 0 && cluster != position.cluster_id {
            return Ok(Err(format!(
                "cluster id changed from {:x} to {cluster:x}",
                position.cluster_id
            )));
        }
        if revision < resume - 1 {
            return Ok(Err(format!(
                "revision went back from {} to {revision}",
                resume - 1
            )));
        }
        if let Some((_, present)) = &position.last_event {
            let found = response.kvs().first().map(KeyValue::mod_revision);
            let consistent = match (present, found) {
                (true, Some(rev)) => rev == resume - 1,
                (false, None) => true,
                _ => false,
            };
            if !consistent {
                return Ok(Err(format!(
                    "the last event we applied (revision {}) is not in etcd's history",
                    resume - 1
                )));
            }
        }
        Ok(Ok(()))
    }

    async fn send(&self, change: EtcdChange) -> Result<(), EtcdError> {
        self.updates
            .send(Update::Etcd(change))
            .await
            .map_err(|_| EtcdError::IndexGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"/skydns/"), b"/skydns0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
    }

    #[test]
    fn backoff_grows_to_the_cap() {
        let mut b = Backoff(BACKOFF_MIN);
        let waits: Vec<Duration> = (0..10).map(|_| b.next()).collect();
        assert!(waits[0] <= BACKOFF_MIN);
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX));
        assert!(waits[9] >= BACKOFF_MAX / 2);
    }
}
