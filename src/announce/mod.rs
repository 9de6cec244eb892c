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

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
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
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
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
    let health = announcement.check.clone().map(|plan| {
        info!(
            check = %plan.check,
            interval = ?plan.interval,
            fall = plan.fall,
            rise = plan.rise,
            "health check enabled; announcing once it passes"
        );
        tokio::spawn(check::run(plan, healthy_tx.clone(), stop.clone()))
    });
    let mut child = None;
    if !announcement.command.is_empty() {
        match child::spawn(&announcement.command) {
            Ok(c) => {
                info!(command = ?announcement.command, pid = c.id(), "started the service");
                child = Some(c);
            }
            Err(e) => {
                error!(command = ?announcement.command, "cannot start the service: {e}");
                return child::spawn_failure_code(&e);
            }
        }
    }
    let keeper = tokio::spawn(keeper::Keeper::new(&announcement).run(healthy_rx, stop.clone()));

    let outcome = tokio::select! {
        _ = term.recv() => Outcome::Signal(libc::SIGTERM),
        _ = int.recv() => Outcome::Signal(libc::SIGINT),
        status = async {
            match child.as_mut() {
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
        (Outcome::Signal(sig), Some(mut c)) => {
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
                    _ = term.recv() => child::signal_pid(pid, libc::SIGTERM),
                    _ = int.recv() => child::signal_pid(pid, libc::SIGINT),
                }
            }
        }
    }
}
