//! The etcd source: a consistent snapshot of the prefix, then the watch stream from there.
//!
//! Start (and after a compaction): range-read `<prefix>/` page by page at one revision R and
//! hand the index one [`Change::Reset`]; then watch from R+1 and hand over every event, in
//! order, as [`Change::Put`] / [`Change::Delete`]. On any failure (etcd down, stream lost,
//! partition detected by HTTP/2 keep-alive) it reconnects with backoff and resumes from the
//! last fully applied revision + 1, so nothing is lost; a re-sent event is idempotent. A watch
//! cancelled for compaction triggers a fresh snapshot that replaces everything at once. Values
//! are decoded here: a bad value is skipped with a warning naming the key and
//! `srvd_source_bad_values_total{source="etcd"}`, and a key whose value turns bad is removed.
//! This module never reads a snapshot and never answers DNS.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Certificate, Client, ConnectOptions, EventType, GetOptions, Identity, KeyValue, TlsOptions,
    WatchOptions,
};
use hickory_proto::rr::Name;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::key::KeyMapper;
use super::{Change, Entry, Part, SourceId, Update};
use crate::metrics::Metrics;
use crate::record::Service;

/// Keys per range-read page of a snapshot. etcd 3.4's cost per page grows with what is left
/// of the range, so pages are large (measured at 1M keys: 10k-key pages take 5x longer).
const PAGE: i64 = 250_000;
/// Largest gRPC message accepted from etcd (a snapshot page, a big transaction's events).
const MAX_MESSAGE: usize = 512 << 20;
/// How often a healthy connection is probed (drives the staleness gauge).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// HTTP/2 keep-alive: a silent peer is declared dead after interval + timeout.
const KEEPALIVE: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Lease TTLs cached at most (the cache is cleared past this and at each snapshot).
const LEASE_CACHE_MAX: usize = 100_000;

/// How to reach etcd and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub domains: Vec<Name>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
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
    #[error("etcd's revision went back (restarted without its data)")]
    Rewound,
    #[error("watch cancelled by etcd: {0}")]
    Cancelled(String),
    #[error("watch stream ended")]
    StreamEnded,
    #[error("index is gone")]
    IndexGone,
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

/// Build the client options: keep-alive, TLS and auth (also used by `srvd announce`).
pub fn connect_options(settings: &EtcdSettings) -> Result<ConnectOptions, EtcdError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| EtcdError::ReadFile {
            path: path.clone(),
            source,
        })
    };
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(KEEPALIVE, KEEPALIVE)
        .with_keep_alive_while_idle(true);
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.with_user(user.clone(), password.clone());
    }
    if settings.ca.is_some() || settings.cert.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &settings.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&settings.cert, &settings.key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
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

/// The etcd producer of [`Update`]s.
pub struct EtcdSource {
    settings: EtcdSettings,
    mapper: KeyMapper,
    updates: mpsc::Sender<Update>,
    metrics: Arc<Metrics>,
    status: Arc<EtcdStatus>,
    leases: HashMap<i64, u32>,
    backoff: Backoff,
}

impl EtcdSource {
    pub fn new(
        settings: EtcdSettings,
        updates: mpsc::Sender<Update>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mapper = KeyMapper::new(&settings.prefix, &settings.domains);
        EtcdSource {
            settings,
            mapper,
            updates,
            metrics,
            status: Arc::new(EtcdStatus::default()),
            leases: HashMap::new(),
            backoff: Backoff(BACKOFF_MIN),
        }
    }

    /// Health shared with HTTP.
    pub fn status(&self) -> Arc<EtcdStatus> {
        self.status.clone()
    }

    /// Follow etcd until `stop` or until the index is gone.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut resume: Option<i64> = None;
        loop {
            let result = tokio::select! {
                r = self.session(&mut resume) => r,
                _ = stop.cancelled() => return,
            };
            self.status.lost();
            match result {
                Err(EtcdError::IndexGone) | Ok(()) => return,
                Err(e) => {
                    let wait = self.backoff.next();
                    warn!(
                        error = %e,
                        resume_revision = resume.unwrap_or(0),
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

    /// One connection: snapshot if needed, then watch until something fails.
    async fn session(&mut self, resume: &mut Option<i64>) -> Result<(), EtcdError> {
        let options = connect_options(&self.settings)?;
        let mut client = Client::connect(&self.settings.endpoints, Some(options)).await?;
        let probe = tokio::spawn(probe(client.clone(), self.status.clone()));
        let result = async {
            loop {
                if resume.is_none() {
                    let revision = self.snapshot(&mut client).await?;
                    *resume = Some(revision + 1);
                }
                let from = resume.unwrap_or(1);
                match self.watch(&mut client, from, resume).await {
                    Err(EtcdError::Compacted) => {
                        warn!(
                            from,
                            "etcd compacted past our revision; taking a fresh snapshot"
                        );
                        *resume = None;
                    }
                    other => return other,
                }
            }
        }
        .await;
        probe.abort();
        result
    }

    /// Read the whole prefix at one revision and hand it to the index page by page as one
    /// split reset (the index publishes it only when the last page is in). Returns the
    /// revision.
    async fn snapshot(&mut self, client: &mut Client) -> Result<i64, EtcdError> {
        let prefix = self.mapper.watch_prefix().into_bytes();
        let end = prefix_end(&prefix);
        let mut kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
        let mut start = prefix;
        let mut revision = 0;
        let mut total = 0;
        self.leases.clear();
        for page in 0.. {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut response = kv
                .get(start.clone(), Some(options))
                .await
                .map_err(EtcdError::from_client)?;
            self.status.contact();
            if revision == 0 {
                revision = response.header().map_or(0, |h| h.revision());
            }
            let kvs = response.take_kvs();
            // An empty page cannot advance `start`: treat it as the end, never loop on it.
            let more = response.more() && !kvs.is_empty();
            if let Some(last) = kvs.last() {
                start = last.key().to_vec();
                start.push(0);
            }
            let mut entries = Vec::with_capacity(kvs.len());
            for kv in &kvs {
                if let Some(entry) = self.decode_put(client, kv).await? {
                    entries.push(entry);
                }
            }
            drop(kvs);
            total += entries.len();
            let update = Update {
                source: SourceId::Etcd,
                change: Change::Reset {
                    revision,
                    zones: self.mapper.domains().to_vec(),
                    entries,
                    part: Part::of_page(page, more),
                },
            };
            self.updates
                .send(update)
                .await
                .map_err(|_| EtcdError::IndexGone)?;
            if !more {
                break;
            }
        }
        info!(revision, keys = total, "etcd snapshot loaded");
        self.metrics.etcd_resync();
        self.backoff.reset();
        Ok(revision)
    }

    /// Apply watch events from `from` on, advancing `resume` after each fully handed-over
    /// response.
    async fn watch(
        &mut self,
        client: &mut Client,
        from: i64,
        resume: &mut Option<i64>,
    ) -> Result<(), EtcdError> {
        let options = WatchOptions::new().with_prefix().with_start_revision(from);
        let mut stream = client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .watch(self.mapper.watch_prefix(), Some(options))
            .await
            .map_err(EtcdError::from_client)?;
        debug!(from, "etcd watch started");
        loop {
            let Some(response) = stream.message().await.map_err(EtcdError::from_client)? else {
                return Err(EtcdError::StreamEnded);
            };
            self.status.contact();
            if response.created() {
                // etcd restarted without its data (its revision went back): what we hold is
                // from another history, so start over from a snapshot.
                let current = response.header().map_or(i64::MAX, |h| h.revision());
                if current < from - 1 {
                    return Err(EtcdError::Rewound);
                }
                self.backoff.reset();
            }
            if response.canceled() {
                if response.compact_revision() > 0 {
                    return Err(EtcdError::Compacted);
                }
                return Err(EtcdError::Cancelled(response.cancel_reason().to_string()));
            }
            let mut last = None;
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let revision = kv.mod_revision();
                let change = match event.event_type() {
                    EventType::Put => match self.decode_put(client, kv).await? {
                        Some(entry) => Some(Change::Put { revision, entry }),
                        // A key whose new value is bad must not keep serving its old value.
                        None => self
                            .mapper
                            .name_of(kv.key())
                            .ok()
                            .map(|name| Change::Delete { revision, name }),
                    },
                    EventType::Delete => self
                        .mapper
                        .name_of(kv.key())
                        .ok()
                        .map(|name| Change::Delete { revision, name }),
                };
                if let Some(change) = change {
                    self.updates
                        .send(Update {
                            source: SourceId::Etcd,
                            change,
                        })
                        .await
                        .map_err(|_| EtcdError::IndexGone)?;
                }
                last = Some(revision);
            }
            if let Some(revision) = last {
                *resume = Some(revision + 1);
            }
        }
    }

    /// Decode a key/value into an entry; `None` (after a warning and a metric) when the key or
    /// value is bad.
    async fn decode_put(
        &mut self,
        client: &mut Client,
        kv: &KeyValue,
    ) -> Result<Option<Entry>, EtcdError> {
        let key = String::from_utf8_lossy(kv.key());
        let name = match self.mapper.name_of(kv.key()) {
            Ok(name) => name,
            Err(e) => {
                warn!(key = %key, "skipping etcd key: {e}");
                self.metrics.bad_value(SourceId::Etcd);
                return Ok(None);
            }
        };
        let mut service = match Service::from_json(kv.value()) {
            Ok(service) => service,
            Err(e) => {
                warn!(key = %key, "skipping etcd value: {e}");
                self.metrics.bad_value(SourceId::Etcd);
                return Ok(None);
            }
        };
        if kv.lease() != 0 {
            service.lease_ttl = Some(self.lease_ttl(client, kv.lease()).await?);
        }
        Ok(Some(Entry::Service { name, service }))
    }

    /// The granted TTL of a lease (never its ID: GHSA-93mf-426m-g6x9), looked up once.
    async fn lease_ttl(&mut self, client: &mut Client, lease: i64) -> Result<u32, EtcdError> {
        if let Some(ttl) = self.leases.get(&lease) {
            return Ok(*ttl);
        }
        let response = client
            .lease_time_to_live(lease, None)
            .await
            .map_err(EtcdError::from_client)?;
        // An expired lease reports no TTL; its keys are about to be deleted: serve them briefly.
        let ttl = u32::try_from(response.granted_ttl().max(1)).unwrap_or(u32::MAX);
        if self.leases.len() >= LEASE_CACHE_MAX {
            self.leases.clear();
        }
        self.leases.insert(lease, ttl);
        Ok(ttl)
    }
}

/// Probe the connection every second so staleness is known even when nothing changes.
async fn probe(mut client: Client, status: Arc<EtcdStatus>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if let Ok(Ok(_)) = tokio::time::timeout(PROBE_EVERY * 2, client.status()).await {
            status.contact();
        }
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
