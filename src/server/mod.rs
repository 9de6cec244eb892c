//! The server: transports, encoding, the answer cache.
//!
//! - [`respond`]: the one pipeline from query bytes to reply bytes, shared by both transports
//!   (protocol rules, cache, `dns::lookup`, encoding, metrics);
//! - [`request`]: reading a query off the wire; [`encode`]: writing a reply within the
//!   [`transport`]'s size limits;
//!   [`cache`]: encoded answers kept while what they read is unchanged;
//! - [`udp`] + [`mmsg`]: batched UDP worker threads, [`rrl`] limiting their replies when
//!   configured; [`tcp`]: DNS over TCP on its own runtime.
//!
//! Binding happens here and nowhere else; port 0 binds UDP first and TCP on the same port.
//! Graceful shutdown stops accepting and lets in-flight answers finish.

pub mod cache;
mod chaos;
pub mod encode;
mod mmsg;
pub mod request;
pub mod respond;
pub mod rrl;
mod tcp;
pub mod transport;
mod udp;
pub mod xfr;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use respond::{Outcome, Responder, Settings, Transport};
use tcp::TcpServer;
pub use tcp::TcpSettings;
pub use udp::UdpSettings;
use udp::UdpWorkers;

use crate::metrics::Metrics;

/// Attempts to find a port free for both UDP and TCP when asked for port 0.
const PORT_ZERO_ATTEMPTS: usize = 20;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot bind {proto} {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("cannot start the DNS workers: {0}")]
    Workers(io::Error),
}

/// A running DNS server.
pub struct DnsServer {
    tcp: TcpServer,
    udp: UdpWorkers,
    addrs: Vec<SocketAddr>,
}

async fn bind_pair(addr: SocketAddr) -> Result<(std::net::UdpSocket, TcpListener), ServerError> {
    let bind_err = |proto, source| ServerError::Bind {
        proto,
        addr,
        source,
    };
    let attempts = if addr.port() == 0 {
        PORT_ZERO_ATTEMPTS
    } else {
        1
    };
    let mut last = None;
    for _ in 0..attempts {
        let udp = std::net::UdpSocket::bind(addr).map_err(|e| bind_err("udp", e))?;
        let port = udp.local_addr().map_err(|e| bind_err("udp", e))?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(bind_err(
        "tcp",
        last.unwrap_or_else(|| io::Error::other("no port")),
    ))
}

/// Raise the soft open-files limit to the hard limit; returns the resulting soft limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    }
}

/// The TCP connection cap to use: `wanted`, or by default 3/4 of the descriptors left after a
/// reserve for everything else (sockets, etcd, HTTP, zone files), at most 4096.
pub fn tcp_connection_cap(wanted: Option<usize>, fd_limit: u64) -> usize {
    let available = usize::try_from(fd_limit.saturating_sub(64)).unwrap_or(usize::MAX);
    let cap = available / 4 * 3;
    match wanted {
        Some(n) => n.min(cap.max(1)),
        None => cap.clamp(1, 4096),
    }
}

impl DnsServer {
    /// Bind every address (UDP + TCP) and start serving.
    pub async fn bind(
        responder: Arc<Responder>,
        metrics: Arc<Metrics>,
        listen: &[SocketAddr],
        tcp: TcpSettings,
        udp: UdpSettings,
    ) -> Result<Self, ServerError> {
        let mut udp_sockets = Vec::new();
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for want in listen {
            let (udp, listener) = bind_pair(*want).await?;
            let addr = udp.local_addr().map_err(|source| ServerError::Bind {
                proto: "udp",
                addr: *want,
                source,
            })?;
            info!(%addr, "serving DNS on UDP and TCP");
            addrs.push(addr);
            udp_sockets.push(udp);
            let listener = listener.into_std().map_err(|source| ServerError::Bind {
                proto: "tcp",
                addr,
                source,
            })?;
            listeners.push(listener);
        }
        let runtime = tokio::runtime::Handle::current();
        let udp = UdpWorkers::start(
            udp_sockets,
            responder.clone(),
            udp,
            metrics.clone(),
            runtime,
        )
        .map_err(ServerError::Workers)?;
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let tcp = TcpServer::start(listeners, responder, metrics, tcp, threads)
            .map_err(ServerError::Workers)?;
        Ok(DnsServer { tcp, udp, addrs })
    }

    /// The bound addresses (with real ports when port 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stop accepting, finish in-flight answers (waiting at most `grace`).
    pub async fn shutdown(self, grace: Duration) {
        let drained = tokio::time::timeout(grace, async {
            self.udp.shutdown().await;
            self.tcp.shutdown().await;
        })
        .await;
        if drained.is_err() {
            warn!("DNS server did not drain within {grace:?}");
        }
    }
}
