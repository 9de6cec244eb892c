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

use super::mmsg::{Batch, send_one};
use super::respond::{Outcome, Pending, Responder, Scratch, Transport};

/// How often an idle worker checks for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Running UDP workers of one or more sockets.
pub struct UdpWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Finish a forwarded query on the runtime and send its reply from `socket`.
fn hand_off(
    runtime: &tokio::runtime::Handle,
    responder: &Arc<Responder>,
    socket: &Arc<UdpSocket>,
    pending: Box<Pending>,
    peer: super::mmsg::Peer,
) {
    let (responder, socket) = (responder.clone(), socket.clone());
    runtime.spawn(async move {
        let mut reply = Vec::with_capacity(512);
        responder.finish(*pending, &mut reply).await;
        send_one(socket.as_raw_fd(), &reply, &peer);
    });
}

fn serve(
    socket: UdpSocket,
    responder: Arc<Responder>,
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
) {
    let fd = socket.as_raw_fd();
    let replies = match socket.try_clone() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!("cannot clone the UDP socket: {e}");
            return;
        }
    };
    let mut batch = Batch::default();
    let mut scratch = Scratch::default();
    while !stop.load(Ordering::Relaxed) {
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
                responder.respond(request, Transport::Udp, peer, &mut reply, &mut scratch)
            }))
            .unwrap_or_else(|_| {
                error!("answering a UDP query panicked; dropped it");
                Outcome::Drop
            });
            match outcome {
                Outcome::Reply => {}
                Outcome::Drop | Outcome::Transfer(_) => reply.clear(),
                Outcome::Forward(pending) => {
                    reply.clear();
                    hand_off(&runtime, &responder, &replies, pending, batch.peer(i));
                }
            }
            batch.replies[i] = reply;
        }
        batch.send(fd);
    }
}

impl UdpWorkers {
    /// Start `workers` threads per socket.
    pub fn start(
        sockets: Vec<UdpSocket>,
        responder: Arc<Responder>,
        workers: usize,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for socket in sockets {
            socket.set_read_timeout(Some(POLL))?;
            for n in 0..workers.max(1) {
                let socket = socket.try_clone()?;
                let (responder, stop) = (responder.clone(), stop.clone());
                let runtime = runtime.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("srvd-udp-{n}"))
                    .spawn(move || serve(socket, responder, stop, runtime))?;
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
