//! The wire: UDP and TCP sockets on every listen address, served by hickory's `Server`.
//!
//! Binding happens here and nowhere else. Port 0 binds UDP first and TCP on the same port.
//! Graceful shutdown stops accepting and lets in-flight answers finish.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{info, warn};

use crate::dns::DnsHandler;

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
    server: Server<DnsHandler>,
    addrs: Vec<SocketAddr>,
}

async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServerError> {
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
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_err("udp", e))?;
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
    /// Bind every address (UDP + TCP) and start serving.
    pub async fn bind(
        handler: DnsHandler,
        listen: &[SocketAddr],
        tcp_idle_timeout: Duration,
    ) -> Result<Self, ServerError> {
        let mut sockets = Vec::new();
        for addr in listen {
            sockets.push(bind_pair(*addr).await?);
        }
        let mut server = Server::new(handler);
        let mut addrs = Vec::new();
        for (udp, tcp) in sockets {
            let addr = udp.local_addr().map_err(|source| ServerError::Bind {
                proto: "udp",
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            info!(%addr, "serving DNS on UDP and TCP");
            addrs.push(addr);
            server.register_socket(udp);
            server.register_listener(tcp, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
        }
        Ok(DnsServer { server, addrs })
    }

    /// The bound addresses (with real ports when port 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stop accepting, finish in-flight answers (waiting at most `grace`).
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), ServerError> {
        self.server.shutdown_token().cancel();
        match tokio::time::timeout(grace, self.server.block_until_done()).await {
            Ok(result) => result.map_err(|e| ServerError::Serve(e.to_string())),
            Err(_) => {
                warn!("DNS server did not drain within {grace:?}");
                Ok(())
            }
        }
    }

    /// Run until the server stops by itself (an unrecoverable socket error).
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        self.server
            .block_until_done()
            .await
            .map_err(|e| ServerError::Serve(e.to_string()))
    }
}
