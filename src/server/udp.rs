//! The UDP transport: worker threads reading and answering datagrams in batches.
//!
//! Each worker owns a clone of the socket and a [`Batch`]; it blocks in `recvmmsg` for up to
//! [`POLL`], answers every datagram through the shared [`Responder`] and sends the replies with
//! one `sendmmsg`. A worker never waits for the network beyond its own socket: a query that
//! needs an upstream is handed to the async runtime, which sends its reply when the upstream
//! answers. Shutdown sets a flag: each worker finishes the batch in hand and exits.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{error, warn};

use super::mmsg::{Batch, Peer, send_one};
use super::respond::{Outcome, Pending, Responder, Scratch, Transport};
use super::rrl::{self, Limiter, RrlSettings, Verdict};
use crate::metrics::Metrics;

/// How often an idle worker checks for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// How the UDP transport runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSettings {
    /// Worker threads per socket.
    pub workers: usize,
    pub rrl: RrlSettings,
}

/// What every worker shares.
struct Shared {
    responder: Arc<Responder>,
    limiter: Option<Limiter>,
    metrics: Arc<Metrics>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
}

impl Shared {
    /// Apply response rate limiting to a reply about to go to `peer` (emptied: not sent).
    fn limit(&self, peer: &Peer, reply: &mut Vec<u8>) {
        let (Some(limiter), Some(ip)) = (&self.limiter, peer.ip()) else {
            return;
        };
        match limiter.check(ip, reply) {
            Verdict::Send => {}
            Verdict::Drop => {
                self.metrics.rrl("dropped");
                reply.clear();
            }
            Verdict::Slip => {
                self.metrics.rrl("slipped");
                rrl::slip(reply);
            }
        }
    }
}

/// Running UDP workers of one or more sockets.
pub struct UdpWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Finish a forwarded query on the runtime and send its reply from `socket`.
fn hand_off(shared: &Arc<Shared>, socket: &Arc<UdpSocket>, pending: Box<Pending>, peer: Peer) {
    let (shared_, socket) = (shared.clone(), socket.clone());
    shared.runtime.spawn(async move {
        let mut reply = Vec::with_capacity(512);
        shared_.responder.finish(*pending, &mut reply).await;
        shared_.limit(&peer, &mut reply);
        if !reply.is_empty() {
            send_one(socket.as_raw_fd(), &reply, &peer);
        }
    });
}

fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let fd = socket.as_raw_fd();
    let replies = match socket.try_clone() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!("cannot clone the UDP socket: {e}");
            return;
        }
    };
    let mut batch = Batch::default();
    let mut scratch = Scratch::for_udp_worker();
    while !shared.stop.load(Ordering::Relaxed) {
        match batch.recv(fd) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                warn!("UDP receive failed: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        }
        for i in 0..batch.len() {
            let mut reply = std::mem::take(&mut batch.replies[i]);
            let request = batch.datagram(i);
            // A bug must cost one answer, never the worker (and with it the UDP service).
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                if request.is_empty() {
                    return Outcome::Drop;
                }
                let peer = batch.peer(i).ip();
                let responder = &shared.responder;
                responder.respond(request, Transport::Udp, peer, &mut reply, &mut scratch)
            }))
            .unwrap_or_else(|_| {
                error!("answering a UDP query panicked; dropped it");
                Outcome::Drop
            });
            match outcome {
                Outcome::Reply => shared.limit(&batch.peer(i), &mut reply),
                Outcome::Drop | Outcome::Transfer(_) => reply.clear(),
                Outcome::Forward(pending) => {
                    reply.clear();
                    hand_off(&shared, &replies, pending, batch.peer(i));
                }
            }
            batch.replies[i] = reply;
        }
        batch.send(fd);
    }
}

impl UdpWorkers {
    /// Start `settings.workers` threads per socket.
    pub fn start(
        sockets: Vec<UdpSocket>,
        responder: Arc<Responder>,
        settings: UdpSettings,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            responder,
            limiter: Limiter::new(settings.rrl),
            metrics,
            runtime,
            stop: stop.clone(),
        });
        let mut threads = Vec::new();
        for socket in sockets {
            socket.set_read_timeout(Some(POLL))?;
            for n in 0..settings.workers.max(1) {
                let socket = socket.try_clone()?;
                let shared = shared.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("srvd-udp-{n}"))
                    .spawn(move || serve(socket, shared))?;
                threads.push(thread);
            }
        }
        Ok(UdpWorkers { stop, threads })
    }

    /// Stop: every worker finishes its current batch, then exits.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
