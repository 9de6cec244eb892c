//! Prometheus metrics: one registry shared by every stage.
//!
//! Stages record events through the typed methods here; `http` renders the text format. This
//! module holds counters only; it makes no decisions.

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

use crate::index::Snapshot;
use crate::source::SourceId;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    qtype: String,
    rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

/// Every metric srvd exports.
pub struct Metrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    /// (qtype, rcode) -> its counter, so the hot path allocates nothing.
    query_counters: RwLock<HashMap<(u16, u16), Counter>>,
    latency: Histogram,
    reload_errors: Family<SourceLabels, Counter>,
    bad_values: Family<SourceLabels, Counter>,
    names: Family<SourceLabels, Gauge>,
    generation: Gauge,
    etcd_revision: Gauge,
    etcd_stale_seconds: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    etcd_reconnects: Counter,
    etcd_resyncs: Counter,
}

/// The RFC mnemonic of an rcode (`NOERROR`, `NXDOMAIN`, ...).
fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::BADVERS => "BADVERS".into(),
        other => u16::from(other).to_string(),
    }
}

fn source_label(source: SourceId) -> SourceLabels {
    SourceLabels {
        source: source.as_str().to_string(),
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
            "DNS queries answered, by type and rcode",
            queries.clone(),
        );
        // 10 µs .. ~80 ms
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.000_01, 2.0, 14,
        ));
        registry.register(
            "dns_answer_seconds",
            "Time from decoded query to answer handed to the socket",
            latency.clone(),
        );
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
        let etcd_revision = Gauge::default();
        registry.register(
            "etcd_revision",
            "Last etcd revision applied to the index",
            etcd_revision.clone(),
        );
        let etcd_stale_seconds = Default::default();
        registry.register(
            "etcd_stale_seconds",
            "Seconds since srvd last heard from etcd (0 while the watch is healthy)",
            Clone::clone(&etcd_stale_seconds),
        );
        let etcd_reconnects = Counter::default();
        registry.register(
            "etcd_reconnects",
            "Times the etcd watch was re-established after a failure",
            etcd_reconnects.clone(),
        );
        let etcd_resyncs = Counter::default();
        registry.register(
            "etcd_resyncs",
            "Full re-snapshots of the etcd prefix (start, compaction)",
            etcd_resyncs.clone(),
        );
        Metrics {
            registry,
            queries,
            query_counters: RwLock::default(),
            latency,
            reload_errors,
            bad_values,
            names,
            generation,
            etcd_revision,
            etcd_stale_seconds,
            etcd_reconnects,
            etcd_resyncs,
        }
    }

    /// One answered query. The hot path: a read lock and an atomic add once the (type,
    /// rcode) pair has been seen.
    pub fn query(&self, qtype: RecordType, rcode: ResponseCode, elapsed: Duration) {
        let pair = (u16::from(qtype), u16::from(rcode));
        let counted = self
            .query_counters
            .read()
            .ok()
            .and_then(|m| m.get(&pair).map(Counter::inc))
            .is_some();
        if !counted {
            let counter = self
                .queries
                .get_or_create(&QueryLabels {
                    qtype: qtype.to_string(),
                    rcode: rcode_name(rcode),
                })
                .clone();
            counter.inc();
            if let Ok(mut m) = self.query_counters.write() {
                m.insert(pair, counter);
            }
        }
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A load of `source` was rejected.
    pub fn reload_error(&self, source: SourceId) {
        self.reload_errors
            .get_or_create(&source_label(source))
            .inc();
    }

    /// A record or value from `source` was skipped as invalid.
    pub fn bad_value(&self, source: SourceId) {
        self.bad_values.get_or_create(&source_label(source)).inc();
    }

    pub fn etcd_stale(&self, seconds: f64) {
        self.etcd_stale_seconds.set(seconds);
    }

    pub fn etcd_reconnect(&self) {
        self.etcd_reconnects.inc();
    }

    pub fn etcd_resync(&self) {
        self.etcd_resyncs.inc();
    }

    /// Render the text exposition, refreshing the gauges read from the snapshot.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        for source in [SourceId::Zones, SourceId::Etcd] {
            let n = i64::try_from(snapshot.names_from(source)).unwrap_or(i64::MAX);
            self.names.get_or_create(&source_label(source)).set(n);
        }
        self.generation
            .set(i64::try_from(snapshot.generation).unwrap_or(i64::MAX));
        self.etcd_revision.set(snapshot.etcd_revision);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
