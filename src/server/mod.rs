//! The wire: UDP and TCP sockets on every listen address.
//!
//! UDP is served by our own batched workers (`udp`, the fast path with the answer cache); TCP
//! by hickory's `Server` (pipelining, idle timeouts). Binding happens here and nowhere else;
//! port 0 binds UDP first and TCP on the same port. Graceful shutdown stops accepting and
//! lets in-flight answers finish.

mod mmsg;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use thiserror::Error;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::dns::{DnsHandler, UdpResponder};
use udp::UdpWorkers;

/// Per-connection buffer of outgoing TCP responses (what hickory's own binary uses).
const TCP_RESPONSE_BUFFER: usize = 32;
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
    #[error("DNS server stopped with an error: {0}")]
    Serve(String),
}

/// A running DNS server.
pub struct DnsServer {
    tcp: Server<DnsHandler>,
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

impl DnsServer {
    /// Bind every address (UDP + TCP) and start serving: `udp_workers` threads per UDP socket.
    pub async fn bind(
        handler: DnsHandler,
        responder: Arc<UdpResponder>,
        listen: &[SocketAddr],
        tcp_idle_timeout: Duration,
        udp_workers: usize,
    ) -> Result<Self, ServerError> {
        let mut udp_sockets = Vec::new();
        let mut tcp = Server::new(handler);
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
            tcp.register_listener(listener, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
        }
        let udp = UdpWorkers::start(udp_sockets, responder, udp_workers).map_err(|source| {
            ServerError::Bind {
                proto: "udp",
                addr: listen
                    .first()
                    .copied()
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                source,
            }
        })?;
        Ok(DnsServer { tcp, udp, addrs })
    }

    /// The bound addresses (with real ports when port 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stop accepting, finish in-flight answers (waiting at most `grace`).
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), ServerError> {
        self.tcp.shutdown_token().cancel();
        let drained = tokio::time::timeout(grace, async {
            self.udp.shutdown().await;
            self.tcp.block_until_done().await
        })
        .await;
        match drained {
            Ok(result) => result.map_err(|e| ServerError::Serve(e.to_string())),
            Err(_) => {
                warn!("DNS server did not drain within {grace:?}");
                Ok(())
            }
        }
    }
}
