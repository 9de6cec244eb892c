//! HTTP: `/metrics` (Prometheus text), `/healthz` (the process runs), `/readyz` (every source
//! has delivered its first full load; says how stale etcd is).
//!
//! Read-only: it loads the current snapshot and the metrics; it changes nothing. Bounded: at
//! most [`MAX_CONNECTIONS`] connections (further ones are closed at once), request headers
//! must arrive within [`HEADER_TIMEOUT`], and a connection lives at most [`CONNECTION_LIFE`],
//! so slow or idle clients cannot hold the endpoint that monitoring depends on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::ratelimit::RateLimitedLog;

/// Most HTTP connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest an HTTP connection stays open.
pub const CONNECTION_LIFE: Duration = Duration::from_secs(30);

use crate::index::IndexHandle;
use crate::metrics::Metrics;
use crate::server::Responder;
use crate::source::SourceId;
use crate::source::etcd::EtcdStatus;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct HttpState {
    pub index: IndexHandle,
    pub metrics: Arc<Metrics>,
    /// The DNS pipeline (its cache's size is a gauge).
    pub responder: Arc<Responder>,
    /// Sources that must be loaded before `/readyz` says 200.
    pub required: Vec<SourceId>,
    /// etcd connection health, when etcd is configured.
    pub etcd: Option<Arc<EtcdStatus>>,
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    if let Some(etcd) = &state.etcd {
        state.metrics.etcd_stale(etcd.stale_seconds());
    }
    let snap = state.index.load();
    let names = [SourceId::Zones, SourceId::Etcd].map(|s| (s.as_str(), snap.names_from(s)));
    state
        .metrics
        .set_index(snap.generation, snap.etcd_revision, &names);
    let depths = state.index.journal_depths();
    let zones: Vec<(String, u32, usize)> = snap
        .zones()
        .iter()
        .map(|zone| {
            let depth = depths.iter().find(|(n, _)| *n == zone.origin);
            (
                zone.origin.to_ascii(),
                zone.serial,
                depth.map_or(0, |d| d.1),
            )
        })
        .collect();
    state.metrics.set_zones(&zones);
    let cache = state.responder.cache();
    state.metrics.set_cache(cache.entries(), cache.bytes());
    let body = state.metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let snap = state.index.load();
    let missing: Vec<&str> = state
        .required
        .iter()
        .filter(|s| !snap.is_loaded(&[**s]))
        .map(|s| s.as_str())
        .collect();
    let etcd = match &state.etcd {
        Some(status) => format!(
            " etcd_revision={} etcd_connected={} etcd_stale_seconds={:.1}",
            snap.etcd_revision,
            status.connected(),
            status.stale_seconds()
        ),
        None => String::new(),
    };
    // Stale data still answers (stale beats SERVFAIL), so staleness is reported, not failed.
    if missing.is_empty() {
        (
            StatusCode::OK,
            format!("ready generation={}{etcd}\n", snap.generation),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: waiting for {}{etcd}\n", missing.join(", ")),
        )
    }
}

/// Bind the HTTP listener (so bind errors surface before anything runs).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve until `stop` is cancelled.
pub async fn serve(listener: TcpListener, state: HttpState, stop: CancellationToken) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let log = RateLimitedLog::new(Duration::from_secs(60));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                log.warn(|| format!("HTTP accept failed: {e}; pausing"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            log.warn(|| format!("{MAX_CONNECTIONS} HTTP connections open; closing a new one"));
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_LIFE, connection) => {},
                _ = stop.cancelled() => {},
            }
        });
    }
}
