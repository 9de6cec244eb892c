//! Prometheus metrics: one registry shared by every stage.
//!
//! Stages record events through the typed methods here; `http` renders the text format and
//! sets the gauges it reads from elsewhere (the snapshot, the caches) just before. This module
//! holds counters only; it makes no decisions and depends on no other stage. Forwarding
//! metrics are in [`forward`], zone transfer metrics in [`xfr`].

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod forward;
mod xfr;

use forward::ForwardMetrics;
use xfr::XfrMetrics;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerSource {
    /// The authoritative answer cache.
    Cache,
    /// A lookup in the snapshot.
    Lookup,
    /// An upstream (forwarding).
    Forward,
    /// A protocol error reply (FORMERR, NOTIMP, BADVERS, REFUSED...).
    Error,
}

impl AnswerSource {
    fn as_str(self) -> &'static str {
        match self {
            AnswerSource::Cache => "cache",
            AnswerSource::Lookup => "lookup",
            AnswerSource::Forward => "forward",
            AnswerSource::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    qtype: String,
    rcode: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

/// Every metric srvd exports.
pub struct Metrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    /// (qtype, rcode, source) -> its counter, so the hot path allocates nothing.
    query_counters: RwLock<HashMap<(u16, u16, AnswerSource), Counter>>,
    latency: Histogram,
    sources: SourceMetrics,
    etcd: EtcdMetrics,
    server: ServerMetrics,
    forward: ForwardMetrics,
    xfr: XfrMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// Source load and index metrics.
struct SourceMetrics {
    reload_errors: Family<SourceLabels, Counter>,
    bad_values: Family<SourceLabels, Counter>,
    names: Family<SourceLabels, Gauge>,
    generation: Gauge,
}

impl SourceMetrics {
    /// Register the source and index metrics in `registry`.
    fn register(registry: &mut Registry) -> Self {
        let reload_errors = Family::<SourceLabels, Counter>::default();
        registry.register(
            "source_reload_errors",
            "Loads of a source that failed and were rejected (the previous data keeps serving)",
            reload_errors.clone(),
        );
        let bad_values = Family::<SourceLabels, Counter>::default();
        registry.register(
            "source_bad_values",
            "Records or values skipped because they were invalid",
            bad_values.clone(),
        );
        let names = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "index_names",
            "Owner names loaded, per source",
            names.clone(),
        );
        let generation = Gauge::default();
        registry.register(
            "index_generation",
            "Snapshots published",
            generation.clone(),
        );
        SourceMetrics {
            reload_errors,
            bad_values,
            names,
            generation,
        }
    }
}

/// etcd watch metrics.
struct EtcdMetrics {
    revision: Gauge,
    stale_seconds: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    reconnects: Counter,
    resyncs: Counter,
    history_resets: Family<ReasonLabels, Counter>,
}

impl EtcdMetrics {
    /// Register the etcd metrics in `registry`.
    fn register(registry: &mut Registry) -> Self {
        let revision = Gauge::default();
        registry.register(
            "etcd_revision",
            "Last etcd revision applied to the index",
            revision.clone(),
        );
        let stale_seconds = Default::default();
        registry.register(
            "etcd_stale_seconds",
            "Seconds since srvd last heard from etcd (0 while the watch is healthy)",
            Clone::clone(&stale_seconds),
        );
        let reconnects = Counter::default();
        registry.register(
            "etcd_reconnects",
            "Times the etcd watch was re-established after a failure",
            reconnects.clone(),
        );
        let resyncs = Counter::default();
        registry.register(
            "etcd_resyncs",
            "Full snapshots of the etcd prefix read (at start and after every history reset)",
            resyncs.clone(),
        );
        let history_resets = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "etcd_history_resets",
            "Fresh snapshots taken because etcd's history changed under srvd (compaction, or an etcd restored or replaced: rewind)",
            history_resets.clone(),
        );
        EtcdMetrics {
            revision,
            stale_seconds,
            reconnects,
            resyncs,
            history_resets,
        }
    }
}

/// Answer cache, DNS TCP connection and response rate limiting metrics.
struct ServerMetrics {
    cache_entries: Gauge,
    cache_bytes: Gauge,
    tcp_open: Gauge,
    tcp_evicted: Counter,
    rrl_limited: Family<ActionLabels, Counter>,
}

impl ServerMetrics {
    /// Register the answer cache, TCP and rate limiting metrics in `registry`.
    fn register(registry: &mut Registry) -> Self {
        let cache_entries = Gauge::default();
        registry.register(
            "cache_entries",
            "Encoded answers held in the authoritative answer cache",
            cache_entries.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "cache_bytes",
            "Bytes held by the authoritative answer cache (bounded by --cache-size)",
            cache_bytes.clone(),
        );
        let tcp_open = Gauge::default();
        registry.register(
            "tcp_connections",
            "DNS TCP connections open",
            tcp_open.clone(),
        );
        let tcp_evicted = Counter::default();
        registry.register(
            "tcp_connections_evicted",
            "Idle DNS TCP connections closed to make room under --tcp-max-connections",
            tcp_evicted.clone(),
        );
        let rrl_limited = Family::<ActionLabels, Counter>::default();
        registry.register(
            "rrl_limited",
            "UDP replies over the response rate limit: dropped, or slipped (sent truncated)",
            rrl_limited.clone(),
        );
        ServerMetrics {
            cache_entries,
            cache_bytes,
            tcp_open,
            tcp_evicted,
            rrl_limited,
        }
    }
}

/// The RFC mnemonic of an rcode (`NOERROR`, `NXDOMAIN`, ...).
pub fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::BADVERS => "BADVERS".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        other => u16::from(other).to_string(),
    }
}

fn source_label(source: &str) -> SourceLabels {
    SourceLabels {
        source: source.to_string(),
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("srvd");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "dns_queries",
            "DNS queries answered, by type, rcode and where the answer came from (cache, lookup, forward, error)",
            queries.clone(),
        );
        // 10 µs .. ~80 ms
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.000_01, 2.0, 14,
        ));
        registry.register(
            "dns_answer_seconds",
            "Time from a query's bytes to its reply's bytes (not counting socket I/O)",
            latency.clone(),
        );
        let sources = SourceMetrics::register(&mut registry);
        let etcd = EtcdMetrics::register(&mut registry);
        let server = ServerMetrics::register(&mut registry);
        let forward = ForwardMetrics::register(&mut registry);
        let xfr = XfrMetrics::register(&mut registry);
        Metrics {
            registry,
            queries,
            query_counters: RwLock::default(),
            latency,
            sources,
            etcd,
            server,
            forward,
            xfr,
        }
    }

    /// One answered query, recorded once, where the reply bytes are made (`server::respond`).
    /// The hot path: a read lock and an atomic add once the label set has been seen.
    pub fn query(&self, qtype: u16, rcode: ResponseCode, source: AnswerSource, elapsed: Duration) {
        let labels = (qtype, u16::from(rcode), source);
        let counted = self
            .query_counters
            .read()
            .ok()
            .and_then(|m| m.get(&labels).map(Counter::inc))
            .is_some();
        if !counted {
            let counter = self
                .queries
                .get_or_create(&QueryLabels {
                    qtype: RecordType::from(qtype).to_string(),
                    rcode: rcode_name(rcode),
                    source: source.as_str().to_string(),
                })
                .clone();
            counter.inc();
            if let Ok(mut m) = self.query_counters.write() {
                m.insert(labels, counter);
            }
        }
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A load of `source` was rejected.
    pub fn reload_error(&self, source: &str) {
        self.sources
            .reload_errors
            .get_or_create(&source_label(source))
            .inc();
    }

    /// A record or value from `source` was skipped as invalid.
    pub fn bad_value(&self, source: &str) {
        self.sources
            .bad_values
            .get_or_create(&source_label(source))
            .inc();
    }

    pub fn etcd_stale(&self, seconds: f64) {
        self.etcd.stale_seconds.set(seconds);
    }

    pub fn etcd_reconnect(&self) {
        self.etcd.reconnects.inc();
    }

    pub fn etcd_resync(&self) {
        self.etcd.resyncs.inc();
    }

    /// etcd's history changed under us (`reason`: compaction, rewind).
    pub fn etcd_rewind(&self, reason: &str) {
        self.etcd
            .history_resets
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn set_cache(&self, entries: u64, bytes: u64) {
        self.server
            .cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.server
            .cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn tcp_connections(&self, open: usize) {
        self.server
            .tcp_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    pub fn tcp_evicted(&self) {
        self.server.tcp_evicted.inc();
    }

    /// A UDP reply over the rate limit was `action` ("dropped" or "slipped").
    pub fn rrl(&self, action: &str) {
        self.server
            .rrl_limited
            .get_or_create(&ActionLabels {
                action: action.to_string(),
            })
            .inc();
    }

    /// Set the index gauges (called by `http` before rendering).
    pub fn set_index(&self, generation: u64, etcd_revision: i64, names: &[(&str, usize)]) {
        for (source, n) in names {
            let n = i64::try_from(*n).unwrap_or(i64::MAX);
            self.sources
                .names
                .get_or_create(&source_label(source))
                .set(n);
        }
        self.sources
            .generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.etcd.revision.set(etcd_revision);
    }

    /// Render the text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
