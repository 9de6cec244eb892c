//! Forwarding metrics: upstream tries by result, upstream latency, the forwarded-answer cache,
//! upstream health, loops and refusals. Counters only.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamResultLabels {
    upstream: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Forwarding metrics.
pub(super) struct ForwardMetrics {
    queries: Family<UpstreamResultLabels, Counter>,
    latency: Histogram,
    cache: Family<ResultLabels, Counter>,
    /// `cache{result="hit"}`, held so that a hit counts without a label look-up.
    cache_hits: Counter,
    up: Family<UpstreamLabels, Gauge>,
    loops: Family<UpstreamLabels, Counter>,
    refused: Counter,
}

impl ForwardMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let queries = Family::<UpstreamResultLabels, Counter>::default();
        registry.register(
            "forward_queries",
            "Queries sent to upstreams, by upstream and result (rcode, timeout, error)",
            queries.clone(),
        );
        // 100 µs .. ~3.3 s
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.000_1, 2.0, 16,
        ));
        registry.register(
            "forward_upstream_seconds",
            "Time an upstream took to answer one try (or to time out)",
            latency.clone(),
        );
        let cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "forward_cache",
            "Forwarded-answer cache look-ups: hit, miss, stale (served past its TTL because every upstream failed)",
            cache.clone(),
        );
        let up = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "forward_upstream_up",
            "1 while an upstream is usable, 0 while it is marked down (failures or a loop)",
            up.clone(),
        );
        let loops = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "forward_loops",
            "Forwarding loops detected: a query srvd sent to this upstream came back to srvd",
            loops.clone(),
        );
        let refused = Counter::default();
        registry.register(
            "forward_refused",
            "Questions refused because --forward-max-concurrent upstream queries were in flight",
            refused.clone(),
        );
        let cache_hits = cache
            .get_or_create(&ResultLabels {
                result: "hit".to_string(),
            })
            .clone();
        ForwardMetrics {
            queries,
            latency,
            cache,
            cache_hits,
            up,
            loops,
            refused,
        }
    }
}

impl Metrics {
    /// One try with an upstream ended with `result` (an rcode, `timeout` or `error`).
    pub fn forward_query(&self, upstream: std::net::SocketAddr, result: &str) {
        self.forward
            .queries
            .get_or_create(&UpstreamResultLabels {
                upstream: upstream.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn forward_latency(&self, elapsed: Duration) {
        self.forward.latency.observe(elapsed.as_secs_f64());
    }

    /// A forwarded-answer cache look-up: `hit`, `miss` or `stale`.
    /// A forwarded answer served from the cache (the hot path: no label look-up).
    pub fn forward_cache_hit(&self) {
        self.forward.cache_hits.inc();
    }

    pub fn forward_cache(&self, result: &str) {
        self.forward
            .cache
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn forward_upstream_up(&self, upstream: std::net::SocketAddr, up: bool) {
        self.forward
            .up
            .get_or_create(&UpstreamLabels {
                upstream: upstream.to_string(),
            })
            .set(i64::from(up));
    }

    pub fn forward_loop(&self, upstream: std::net::SocketAddr) {
        self.forward
            .loops
            .get_or_create(&UpstreamLabels {
                upstream: upstream.to_string(),
            })
            .inc();
    }

    pub fn forward_refused(&self) {
        self.forward.refused.inc();
    }
}
