//! Wiring: sources -> index -> dns -> server, plus HTTP, and graceful shutdown.
//!
//! `start` assumes the configuration and the first zone load were validated already (main does
//! that before binding anything). It publishes the first snapshot *before* binding, so the
//! first query is answered from loaded data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::forward::Forwarder;
use crate::http::{self, HttpState};
use crate::index::{IndexHandle, Indexer, spawn_indexer};
use crate::metrics::Metrics;
use crate::server::{self, DnsServer, Responder, ServerError, Settings, TcpSettings};
use crate::source::etcd::EtcdSource;
use crate::source::zonefile::ZoneWatcher;
use crate::source::{SourceId, Update, ZoneSet};
use crate::xfr::XfrSettings;

/// How long shutdown waits for in-flight answers.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Updates queued between sources and the index.
const UPDATE_QUEUE: usize = 4096;

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot bind HTTP {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch zone directory {dir}: {source}")]
    Watch { dir: String, source: notify::Error },
    #[error("cannot start the index thread: {0}")]
    Indexer(std::io::Error),
}

/// A running srvd.
pub struct RunningApp {
    dns: DnsServer,
    http_addr: SocketAddr,
    index: IndexHandle,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    /// Asks the zone watcher to reload the zone directory.
    reload: Option<mpsc::UnboundedSender<()>>,
}

impl RunningApp {
    /// Bound DNS addresses (UDP and TCP share each).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        self.dns.local_addrs()
    }

    /// Bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The index readers load from.
    pub fn index(&self) -> &IndexHandle {
        &self.index
    }

    /// Re-read the zone directory now (SIGHUP); false when there is no zone directory.
    pub fn reload_zones(&self) -> bool {
        self.reload.as_ref().is_some_and(|r| r.send(()).is_ok())
    }

    /// Stop accepting, drain in-flight answers, stop every task.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        info!("shutting down");
        self.stop.cancel();
        self.dns.shutdown(DRAIN_GRACE).await;
        self.tasks.shutdown().await;
        Ok(())
    }
}

/// What the sources stage leaves for the rest of the start.
struct Sources {
    /// Asks the zone watcher to reload (none without a zone directory).
    reload: Option<mpsc::UnboundedSender<()>>,
    /// Sources that must be loaded before `/readyz` says 200.
    required: Vec<SourceId>,
    etcd: Option<Arc<crate::source::etcd::EtcdStatus>>,
}

/// Start srvd: load the first snapshot, bind every socket, start watchers.
/// `zones` is the zone directory's first load (`None`: the directory does not exist).
pub async fn start(config: &Config, zones: Option<ZoneSet>) -> Result<RunningApp, AppError> {
    let metrics = Arc::new(Metrics::new());
    let index = IndexHandle::default();
    let mut tasks = JoinSet::new();
    let stop = CancellationToken::new();
    let sources = start_sources(config, zones, &index, &metrics, &mut tasks, &stop)?;
    let forwarder = start_forwarder(config, &metrics, &mut tasks, &stop);
    let xfr = Arc::new(config.xfr.clone());
    let settings = Settings {
        ttl: config.ttl,
        rotate: config.rotate,
        recursion_available: forwarder.is_some(),
        cache_bytes: config.cache_bytes,
    };
    let responder = Arc::new(Responder::new(
        index.clone(),
        settings,
        forwarder.clone(),
        xfr.clone(),
        metrics.clone(),
    ));
    let dns = bind_dns(config, responder.clone(), &metrics).await?;
    let listener = http::bind(config.http)
        .await
        .map_err(|source| AppError::HttpBind {
            addr: config.http,
            source,
        })?;
    if xfr.has_notify() {
        let notifier = notifier(config, &xfr, &sources.required, &metrics);
        let run = crate::xfr::notify::run(index.clone(), notifier, stop.clone());
        tasks.spawn(run);
    }
    let http_addr = listener.local_addr().unwrap_or(config.http);
    info!(addr = %http_addr, "serving /metrics, /healthz, /readyz");
    let state = HttpState {
        index: index.clone(),
        metrics,
        responder,
        required: sources.required,
        etcd: sources.etcd,
    };
    tasks.spawn(http::serve(listener, state, stop.clone()));
    Ok(RunningApp {
        dns,
        http_addr,
        index,
        stop,
        tasks,
        reload: sources.reload,
    })
}

/// Publish the first snapshot (zone files) and start the index thread, the zone watcher and
/// the etcd source.
fn start_sources(
    config: &Config,
    zones: Option<ZoneSet>,
    index: &IndexHandle,
    metrics: &Arc<Metrics>,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> Result<Sources, AppError> {
    let mut indexer = Indexer::new(index.clone());
    let (updates, updates_rx) = mpsc::channel(UPDATE_QUEUE);
    let watcher = match zones {
        Some(set) => {
            indexer.apply(Update::Zones(set));
            let watcher =
                ZoneWatcher::new(&config.zones, config.zone_limits).map_err(|source| {
                    AppError::Watch {
                        dir: config.zones.display().to_string(),
                        source,
                    }
                })?;
            Some(watcher)
        }
        None => {
            warn!(dir = %config.zones.display(), "zone directory does not exist; serving no zone files");
            indexer.apply(Update::Zones(ZoneSet::default()));
            None
        }
    };
    indexer.publish();
    spawn_indexer(indexer, updates_rx).map_err(AppError::Indexer)?;
    let reload = watcher.as_ref().map(ZoneWatcher::trigger);
    if let Some(watcher) = watcher {
        tasks.spawn(watcher.run(updates.clone(), metrics.clone()));
    }
    let mut sources = Sources {
        reload,
        required: vec![SourceId::Zones],
        etcd: None,
    };
    if let Some(settings) = &config.etcd {
        let source = EtcdSource::new(settings.clone(), updates.clone(), metrics.clone());
        sources.etcd = Some(source.status());
        sources.required.push(SourceId::Etcd);
        info!(
            endpoints = ?settings.connection.endpoints,
            prefix = %settings.connection.prefix,
            "following etcd"
        );
        tasks.spawn(source.run(stop.clone()));
    }
    Ok(sources)
}

/// The forwarder, when the configuration names any upstream.
/// The forwarder, when forwarding is configured, with its background work (resolv.conf
/// watching, upstream probing) running in `tasks` until `stop`.
fn start_forwarder(
    config: &Config,
    metrics: &Arc<Metrics>,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> Option<Arc<Forwarder>> {
    if !config.forward.enabled() {
        return None;
    }
    info!(
        upstreams = ?config.forward.upstreams,
        resolv_conf = ?config.forward.resolv_conf,
        zones = config.forward.zones.len(),
        "forwarding names outside the served zones"
    );
    let forwarder = Forwarder::new(config.forward.clone(), &config.listen, metrics.clone());
    let background = forwarder.start(stop.clone());
    tasks.spawn(async move {
        let _ = background.await;
    });
    Some(forwarder)
}

/// The NOTIFY sender's settings: NOTIFYs go out from the listen addresses (secondaries
/// accept them from their primary's address only) once every required source is loaded.
fn notifier(
    config: &Config,
    xfr: &Arc<XfrSettings>,
    required: &[SourceId],
    metrics: &Arc<Metrics>,
) -> crate::xfr::notify::Notifier {
    crate::xfr::notify::Notifier {
        settings: xfr.clone(),
        required: required.to_vec(),
        listen: config.listen.iter().map(SocketAddr::ip).collect(),
        ttl: config.ttl,
        metrics: metrics.clone(),
    }
}

/// Bind DNS on every listen address, UDP and TCP.
async fn bind_dns(
    config: &Config,
    responder: Arc<Responder>,
    metrics: &Arc<Metrics>,
) -> Result<DnsServer, AppError> {
    if config.rrl.rate > 0 {
        info!(
            rate = config.rrl.rate,
            slip = config.rrl.slip,
            ipv4_prefix = config.rrl.ipv4_prefix,
            ipv6_prefix = config.rrl.ipv6_prefix,
            "response rate limiting on for UDP replies"
        );
    }
    let fd_limit = server::raise_fd_limit();
    let tcp = TcpSettings {
        idle_timeout: config.tcp_idle_timeout,
        max_connections: server::tcp_connection_cap(config.tcp_max_connections, fd_limit),
    };
    let udp = server::UdpSettings {
        workers: config.udp_workers,
        rrl: config.rrl,
    };
    Ok(DnsServer::bind(responder, metrics.clone(), &config.listen, tcp, udp).await?)
}
