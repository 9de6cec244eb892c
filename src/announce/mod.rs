//! `srvd announce`: register one service instance in etcd, SkyDNS style, for as long as it
//! lives and passes its health check.
//!
//! ```text
//!  check (http/tcp/exec, every interval) ──> Health (fall/rise) ──> watch<bool> ──┐
//!  child process (optional, `-- CMD`) ── exits ──────────────────────────────────┤
//!  SIGTERM / SIGINT ──────────────────────────────────────────────────────────────┤
//!                                                                                  v
//!                              Keeper: lease (TTL, kept alive) + key present iff wanted
//! ```
//!
//! - [`args`]: flags and their validation (exit 2 naming the argument)
//! - [`check`]: the checks and the rise/fall state machine
//! - [`keeper`]: the lease, the key, reconnects and the final delete + revoke
//! - [`child`]: the supervised service process
//!
//! Shutdown order: stop announcing (delete the key, revoke the lease), *then* forward the
//! signal to the child, then exit with the child's status (0 without a child).

pub mod args;
pub mod check;
pub mod child;
pub mod keeper;

use std::process::ExitCode;
use std::time::Duration;

use tokio::process::Child;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use args::{AnnounceArgs, Announcement};

/// Upper bound on the final withdraw (the keeper bounds itself to 3 s; this is a backstop).
const WITHDRAW_LIMIT: Duration = Duration::from_secs(5);

/// Entry point of `srvd announce`: validate (exit 2 on any problem), then run until a signal
/// or until the child exits.
pub fn main(args: AnnounceArgs) -> ExitCode {
    let announcement = match args.validate() {
        Ok(a) => a,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "srvd announce: {} problem(s) found; nothing was announced",
                problems.len()
            );
            return ExitCode::from(2);
        }
    };
    crate::logging::init(&announcement.log_level);
    // One thread: the work is a few timers and sockets, and the child's parent-death signal
    // is tied to the thread that spawned it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(runtime.block_on(run(announcement)))
}

/// Why the announcer stops.
enum Outcome {
    Signal(i32),
    ChildExited(std::io::Result<std::process::ExitStatus>),
}

/// Run an announcement; returns the process exit code.
pub async fn run(announcement: Announcement) -> u8 {
    // Signal handlers first, so a signal during startup is handled, not fatal.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return 1;
        }
    };
    info!(
        name = %announcement.name,
        key = %announcement.key,
        value = %announcement.value,
        ttl = announcement.ttl,
        endpoints = ?announcement.etcd.endpoints,
        "announcing"
    );
    let stop = CancellationToken::new();
    let (healthy_tx, healthy_rx) = watch::channel(announcement.check.is_none());
    let health = start_health_check(&announcement, &healthy_tx, &stop);
    let mut child = match start_service(&announcement.command) {
        Ok(child) => child,
        Err(code) => return code,
    };
    let keeper = tokio::spawn(keeper::Keeper::new(&announcement).run(healthy_rx, stop.clone()));

    let outcome = wait_for_outcome(&mut signals, child.as_mut()).await;

    // Withdraw first: delete the key and revoke the lease.
    stop.cancel();
    if tokio::time::timeout(WITHDRAW_LIMIT, keeper).await.is_err() {
        warn!("withdrawing took longer than {WITHDRAW_LIMIT:?}; giving up");
    }
    if let Some(health) = health {
        health.abort();
    }
    drop(healthy_tx);

    match (outcome, child) {
        (Outcome::Signal(_), None) => 0,
        (Outcome::ChildExited(Ok(status)), _) => child::exit_code(status),
        (Outcome::ChildExited(Err(_)), _) => 1,
        (Outcome::Signal(sig), Some(c)) => forward_signals(c, sig, &mut signals).await,
    }
}

/// Wait for a signal or for the service to exit, and log why the announcer stops.
async fn wait_for_outcome(signals: &mut Signals, child: Option<&mut Child>) -> Outcome {
    let outcome = tokio::select! {
        sig = signals.next() => Outcome::Signal(sig),
        status = async {
            match child {
                Some(c) => c.wait().await,
                None => std::future::pending().await,
            }
        } => Outcome::ChildExited(status),
    };
    match &outcome {
        Outcome::Signal(sig) => info!(signal = sig, "signal received; withdrawing"),
        Outcome::ChildExited(Ok(status)) => {
            info!(%status, "the service exited; withdrawing")
        }
        Outcome::ChildExited(Err(e)) => warn!("cannot wait for the service: {e}; withdrawing"),
    }
    outcome
}

/// SIGTERM and SIGINT, as streams.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Install the SIGTERM and SIGINT handlers.
    fn install() -> std::io::Result<Signals> {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Ok(Signals { term, int }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// Wait for the next SIGTERM or SIGINT; returns its number.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.int.recv() => libc::SIGINT,
        }
    }
}

/// Spawn the health check task, if one is configured; it sends its verdicts on `healthy`.
fn start_health_check(
    announcement: &Announcement,
    healthy: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> Option<JoinHandle<()>> {
    announcement.check.clone().map(|plan| {
        info!(
            check = %plan.check,
            interval = ?plan.interval,
            fall = plan.fall,
            rise = plan.rise,
            "health check enabled; announcing once it passes"
        );
        tokio::spawn(check::run(plan, healthy.clone(), stop.clone()))
    })
}

/// Start the service command, if there is one; `Err` holds the exit code when it cannot start.
fn start_service(command: &[String]) -> Result<Option<Child>, u8> {
    if command.is_empty() {
        return Ok(None);
    }
    match child::spawn(command) {
        Ok(c) => {
            info!(command = ?command, pid = c.id(), "started the service");
            Ok(Some(c))
        }
        Err(e) => {
            error!(command = ?command, "cannot start the service: {e}");
            Err(child::spawn_failure_code(&e))
        }
    }
}

/// Forward `sig`, and any later signal, to the service until it exits; returns its exit code.
async fn forward_signals(mut c: Child, sig: i32, signals: &mut Signals) -> u8 {
    // Then forward the signal, and any later one, until the service exits.
    let pid = c.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    info!(pid, signal = sig, "forwarding the signal to the service");
    child::signal_pid(pid, sig);
    loop {
        tokio::select! {
            status = c.wait() => {
                return match status {
                    Ok(status) => {
                        info!(%status, "the service exited");
                        child::exit_code(status)
                    }
                    Err(e) => {
                        warn!("cannot wait for the service: {e}");
                        1
                    }
                };
            }
            sig = signals.next() => child::signal_pid(pid, sig),
        }
    }
}
