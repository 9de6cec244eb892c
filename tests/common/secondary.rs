//! Test support: stock DNS secondaries (Knot DNS, NSD, BIND) that transfer zones from a
//! primary under test with SOA/IXFR/AXFR, with or without TSIG, and take its NOTIFYs.
//!
//! Every [`Secondary`] is one daemon running in the foreground as a child of the test, in its
//! own process group, with everything it writes (config, zone files, journals, timers, pid
//! file, control socket, logs) inside one temp dir it holds. Dropping it SIGKILLs the group,
//! also when the test panics. Nothing is read from or written to /etc or /var, nothing needs
//! root, everything is on loopback, and every wait is bounded. A missing binary panics with
//! the Debian package to install; nothing is skipped.
//!
//! Refresh is 2–5 s (Knot's smallest refresh is 2 s) and retry 1–2 s whatever the primary's
//! SOA says, and IXFR is asked for whenever the secondary has the zone. The secondaries ask
//! the primary from 127.0.0.1 (the source address is not pinned) and accept NOTIFY from the
//! primary's IP address only, signed with the key when there is one. BIND listens on
//! 127.0.0.1 (named only binds addresses configured on an interface), Knot and NSD on a random
//! 127.0.0.x; each on a free port below the ephemeral range, kept across restarts.
//!
//! Behaviour worth knowing when writing assertions (Knot 3.2, NSD 4.6, BIND 9.18):
//! * Refresh: Knot asks SOA over TCP then IXFR on the same connection; BIND asks SOA over UDP
//!   then IXFR over a new TCP connection; NSD never asks SOA: every refresh (and every
//!   NOTIFY) is an IXFR with its current serial, so "up to date" must be a single SOA.
//! * Unsigned NOTIFY from the primary's address when a key is configured: Knot answers
//!   NOTAUTH, NSD REFUSED, but BIND accepts it (BIND always takes NOTIFY from a primary's
//!   address; its SOA query and transfer are still signed).
//! * IXFR answered with REFUSED: NSD does not fall back to AXFR (retries IXFR for ever);
//!   answered with NOTIMP: NSD uses only AXFR to that primary for 48 h (until restarted).
//!   Knot and BIND fall back to AXFR at once in both cases. An AXFR-style answer to IXFR is
//!   accepted by all three.
//! * A single SOA with a newer serial as the whole IXFR answer over TCP makes all three wait
//!   for more messages (Knot falls back to AXFR after a 5 s timeout; BIND and NSD fail and
//!   retry IXFR, never converging).
//! * A primary serial that goes backwards is ignored by all three (they keep the old zone and
//!   retry) until expire or a forced AXFR.
//! * Secondaries may start before the primary listens (the primary needs their addresses to
//!   NOTIFY them): Knot and NSD retry within 2 s. BIND retries a zone it never loaded only
//!   after 45-60 s, so [`Secondary::wait_serial`] nudges it (see there); otherwise call
//!   [`Secondary::refresh`] once the primary is up.
//!
//! The calls block. From a `#[tokio::test]` whose primary is an in-process srvd, use the
//! `*_async` variants (or a multi-thread runtime, where the blocking waits step aside with
//! `block_in_place`): a blocked current-thread runtime cannot answer the secondary.
#![allow(dead_code)]

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use data_encoding::BASE64;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::ports::free_port;

/// How long a daemon may take to listen (and open its control channel) after being started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop (SIGTERM) may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a control command (knotc, nsd-control, rndc) is retried, and may run.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Start attempts with a fresh address and port when a port turns out to be taken.
const START_ATTEMPTS: usize = 5;
/// Poll interval of [`Secondary::wait_serial`].
const POLL: Duration = Duration::from_millis(50);
/// How long one UDP question waits for its answer.
const QUERY_TIMEOUT: Duration = Duration::from_millis(1000);
/// How often the waits nudge BIND (`rndc refresh`) while it has no copy of the zone: the pace
/// of its configured retry. BIND ignores min/max-retry-time for a zone it never loaded and
/// retries that after 45-60 s, then doubling.
const BIND_NUDGE: Duration = Duration::from_secs(2);

/// Which secondary implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Knot DNS `knotd` (Debian package knot), controlled with `knotc`.
    Knot,
    /// NSD `nsd` (Debian package nsd), controlled with `nsd-control`.
    Nsd,
    /// BIND `named` (Debian package bind9), controlled with `rndc` (bind9-utils).
    Bind,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Knot, Kind::Nsd, Kind::Bind];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Knot => "knot",
            Kind::Nsd => "nsd",
            Kind::Bind => "bind",
        }
    }

    fn daemon(self) -> Tool {
        match self {
            Kind::Knot => Tool("knotd", "knot"),
            Kind::Nsd => Tool("nsd", "nsd"),
            Kind::Bind => Tool("named", "bind9"),
        }
    }

    fn control(self) -> Tool {
        match self {
            Kind::Knot => Tool("knotc", "knot"),
            Kind::Nsd => Tool("nsd-control", "nsd"),
            Kind::Bind => Tool("rndc", "bind9-utils"),
        }
    }

    /// The daemon's own log file in its dir.
    fn log_file(self) -> &'static str {
        match self {
            Kind::Knot => "knot.log",
            Kind::Nsd => "nsd.log",
            Kind::Bind => "named.log",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A binary and the Debian package that ships it.
#[derive(Clone, Copy)]
struct Tool(&'static str, &'static str);

impl Tool {
    fn path(self) -> PathBuf {
        let Tool(bin, package) = self;
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(
                ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"]
                    .iter()
                    .map(PathBuf::from),
            )
            .map(|dir| dir.join(bin))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "{bin} not found (PATH, /usr/sbin, /usr/local/sbin): install the Debian \
                     package {package} (scripts/deps.sh installs the daemons)"
                )
            })
    }
}

/// A TSIG key shared by the primary under test and the secondaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name as written in configs, e.g. `xfr-key` (on the wire: `xfr-key.`).
    pub name: String,
    /// `hmac-sha256` from [`TsigKey::generate`]; the three daemons also know hmac-sha1,
    /// hmac-sha224, hmac-sha384 and hmac-sha512 by these names.
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl TsigKey {
    /// An hmac-sha256 key with a random 32-byte secret, like `tsig-keygen -a hmac-sha256`.
    pub fn generate(name: &str) -> TsigKey {
        let secret: [u8; 32] = rand::random();
        TsigKey {
            name: name.to_string(),
            algorithm: "hmac-sha256".to_string(),
            secret: BASE64.encode(&secret),
        }
    }

    /// The secret's bytes.
    pub fn secret_bytes(&self) -> Vec<u8> {
        BASE64
            .decode(self.secret.as_bytes())
            .expect("TSIG secret is base64")
    }

    /// The key in BIND's key-file syntax, byte for byte as `tsig-keygen` prints it:
    /// `key "NAME" {\n\talgorithm ALG;\n\tsecret "BASE64";\n};\n`.
    pub fn keyfile_text(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name, self.algorithm, self.secret
        )
    }
}

/// A running secondary; see the module docs.
pub struct Secondary {
    kind: Kind,
    addr: SocketAddr,
    /// rndc's TCP port on 127.0.0.1 (BIND only, else 0).
    ctl_port: u16,
    /// Zone names, lower case, with the trailing dot.
    zones: Vec<String>,
    primary: SocketAddr,
    key: Option<TsigKey>,
    child: Option<Child>,
    /// Held for its lifetime; dropped after `Drop::drop` killed the daemon.
    dir: tempfile::TempDir,
}

/// Why a daemon did not come up.
enum StartError {
    /// A port was taken (the caller may retry with other ports).
    PortTaken(String),
    Failed(String),
}

impl Secondary {
    /// Start a secondary of `kind` for `zones` (e.g. `["example.test."]`) whose primary is
    /// `primary`, asking with TSIG key `key` (or unsigned with `None`), and accepting NOTIFY
    /// from the primary's IP address (signed with the key when there is one). Returns once the
    /// daemon answers queries and its control channel is up; the zones are transferred in the
    /// background (wait with [`Secondary::wait_serial`]).
    pub fn start(
        kind: Kind,
        zones: &[&str],
        primary: SocketAddr,
        key: Option<&TsigKey>,
    ) -> Secondary {
        assert!(!zones.is_empty(), "a secondary needs at least one zone");
        kind.daemon().path();
        kind.control().path();
        let zones: Vec<String> = zones.iter().map(|z| fqdn(z)).collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::Builder::new()
                .prefix(&format!("srvd-{kind}-"))
                .tempdir()
                .unwrap();
            let ip = match kind {
                // named only binds addresses present on an interface: 127.0.0.1 is.
                Kind::Bind => Ipv4Addr::LOCALHOST,
                Kind::Knot | Kind::Nsd => Ipv4Addr::new(127, 0, 0, rand::random_range(2..=254)),
            };
            let addr = SocketAddr::new(ip.into(), free_port(ip));
            let ctl_port = match kind {
                Kind::Bind => free_port(Ipv4Addr::LOCALHOST),
                Kind::Knot | Kind::Nsd => 0,
            };
            let mut s = Secondary {
                kind,
                addr,
                ctl_port,
                zones: zones.clone(),
                primary,
                key: key.cloned(),
                child: None,
                dir,
            };
            s.write_config();
            s.spawn();
            match s.wait_ready() {
                Ok(()) => return s,
                Err(StartError::PortTaken(why)) if attempt < START_ATTEMPTS => {
                    eprintln!("{kind} secondary harness: {why}; retrying with another port");
                }
                Err(StartError::PortTaken(why) | StartError::Failed(why)) => {
                    panic!("{kind} secondary on {addr} did not start: {why}")
                }
            }
        }
    }

    /// Where it answers queries and NOTIFY (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The temp dir holding its config, zone files, journals and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's PID (None while stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The SOA serial it serves for `zone` (None: not loaded yet, or no answer), asked over UDP.
    pub fn serial(&self, zone: &str) -> Option<u32> {
        let reply = exchange(self.addr, &soa_query(zone), QUERY_TIMEOUT)?;
        soa_serial(&reply, zone)
    }

    /// Wait (polling every 50 ms, up to `limit`) until it serves `zone` with a serial at or
    /// after `serial` in RFC 1982 serial arithmetic. False if that did not happen in time.
    ///
    /// BIND only: while it serves no copy of the zone at all, this also runs `rndc refresh`
    /// at once and then every 2 s. BIND ignores min/max-retry-time for a zone it never loaded:
    /// after a failed first try (say the secondary started before the primary listened) it
    /// waits 45-60 s, then doubling, and a NOTIFY that arrives during that failing try is lost.
    ///
    /// Panics inside a current-thread tokio runtime (use [`Secondary::wait_serial_async`]):
    /// blocking it would also stop an in-process srvd primary from answering.
    pub fn wait_serial(&self, zone: &str, serial: u32, limit: Duration) -> bool {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            assert!(
                handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread,
                "Secondary::wait_serial would block the current-thread tokio runtime (and an \
                 in-process primary with it): use wait_serial_async, or \
                 #[tokio::test(flavor = \"multi_thread\")]"
            );
        }
        blocking(|| {
            let deadline = Instant::now() + limit;
            let mut nudged: Option<Instant> = None;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let reply = exchange(
                    self.addr,
                    &soa_query(zone),
                    left.clamp(Duration::from_millis(10), QUERY_TIMEOUT),
                );
                let have = reply.and_then(|r| soa_serial(&r, zone));
                if have.is_some_and(|s| serial_ge(s, serial)) {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                if self.should_nudge(have, &mut nudged) {
                    let _ = self.run_control(&self.refresh_args(zone));
                }
                std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
            }
        })
    }

    /// Ask it `name`/`qtype` over UDP (EDNS 1232, RD=0); the decoded reply. Panics when it
    /// does not answer (three tries of one second).
    pub fn query(&self, name: &str, qtype: RecordType) -> Message {
        let q = question(name, qtype);
        for _ in 0..3 {
            if let Some(reply) = exchange(self.addr, &q, QUERY_TIMEOUT) {
                return reply;
            }
        }
        panic!(
            "{} secondary {} did not answer {name} {qtype}; log tail:\n{}",
            self.kind,
            self.addr,
            self.log_tail()
        )
    }

    /// [`Secondary::serial`] without blocking the runtime.
    pub async fn serial_async(&self, zone: &str) -> Option<u32> {
        let reply = exchange_async(self.addr, &soa_query(zone), QUERY_TIMEOUT).await?;
        soa_serial(&reply, zone)
    }

    /// [`Secondary::wait_serial`] without blocking the runtime.
    pub async fn wait_serial_async(&self, zone: &str, serial: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut nudged: Option<Instant> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = exchange_async(
                self.addr,
                &soa_query(zone),
                left.clamp(Duration::from_millis(10), QUERY_TIMEOUT),
            )
            .await;
            let have = reply.and_then(|r| soa_serial(&r, zone));
            if have.is_some_and(|s| serial_ge(s, serial)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            if self.should_nudge(have, &mut nudged) {
                let bin = self.kind.control().path();
                let run = tokio::process::Command::new(bin)
                    .args(self.refresh_args(zone))
                    .current_dir(self.dir.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .status();
                let _ = tokio::time::timeout(CONTROL_TIMEOUT, run).await;
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// [`Secondary::query`] without blocking the runtime.
    pub async fn query_async(&self, name: &str, qtype: RecordType) -> Message {
        let q = question(name, qtype);
        for _ in 0..3 {
            if let Some(reply) = exchange_async(self.addr, &q, QUERY_TIMEOUT).await {
                return reply;
            }
        }
        panic!(
            "{} secondary {} did not answer {name} {qtype}; log tail:\n{}",
            self.kind,
            self.addr,
            self.log_tail()
        )
    }

    /// Its log so far, over all its runs: the daemon's log file (Knot at level debug, NSD at
    /// verbosity 2, BIND at info plus xfer-in at debug 3), then whatever it printed on
    /// stdout/stderr.
    pub fn log(&self) -> String {
        let mut text = read_lossy(&self.dir.path().join(self.kind.log_file()));
        let stdio = read_lossy(&self.dir.path().join("stdio.log"));
        if !stdio.trim().is_empty() {
            text.push_str("--- stdout/stderr ---\n");
            text.push_str(&stdio);
        }
        text
    }

    /// How many incremental (IXFR) and full (AXFR) transfers of `zone` it has applied so far,
    /// by its log; None for what its log cannot tell.
    ///
    /// * Knot: every applied transfer logs `[zone.] refresh, remote …, zone updated, …, serial
    ///   A -> B` after `IXFR, incoming, …, finished` or `AXFR, incoming, …, finished` (an
    ///   AXFR-style answer to IXFR logs `receiving AXFR-style IXFR` and counts as AXFR). An
    ///   IXFR answered "up to date" (single SOA) logs `IXFR, incoming, …, zone is up-to-date`
    ///   and is not counted.
    /// * BIND (xfer-in at debug 3): `transfer of 'zone/IN' from …: got incremental response`
    ///   or `got nonincremental response` (AXFR, or AXFR-style answer to IXFR), counted when
    ///   followed by `Transfer status: success`; "up to date" ends with `Transfer status: up to
    ///   date` and is not counted.
    /// * NSD: `(None, None)`. It logs each applied transfer (`zone Z. received update to
    ///   serial N at … from IP@PORT [TSIG verified with key K] of B bytes in T seconds`,
    ///   counted by [`Secondary::updates`]) but never whether it was IXFR or AXFR, at any
    ///   verbosity: that is only in its memory (only the byte count hints at it). Its first
    ///   transfer of a zone it has no data for is always an AXFR request; later ones are IXFR
    ///   requests whose answer may be AXFR-style. Look at the primary's side for the type.
    ///   "Up to date" answers are not logged at all.
    pub fn transfers(&self, zone: &str) -> (Option<usize>, Option<usize>) {
        let log = self.log();
        match self.kind {
            Kind::Knot => {
                let (i, a) = knot_transfers(&log, &fqdn(zone));
                (Some(i), Some(a))
            }
            Kind::Bind => {
                let (i, a) = bind_transfers(&log, &fqdn(zone));
                (Some(i), Some(a))
            }
            Kind::Nsd => (None, None),
        }
    }

    /// How many transfers of `zone` (of either type) it has applied so far, by its log (Knot:
    /// `zone updated`; NSD: `zone Z. received update to serial`; BIND: `Transfer status:
    /// success`).
    pub fn updates(&self, zone: &str) -> usize {
        let log = self.log();
        let zone = fqdn(zone);
        match self.kind {
            Kind::Knot => {
                let tag = format!("[{zone}]");
                lines_with(&log, &[&tag, "refresh, ", "zone updated"])
            }
            Kind::Nsd => {
                let tag = format!("zone {zone} received update to serial");
                lines_with(&log, &[&tag])
            }
            Kind::Bind => {
                let tag = format!("'{}/IN'", bare(&zone));
                lines_with(&log, &[&tag, "Transfer status: success"])
            }
        }
    }

    /// Force a refresh of `zone` now: `knotc zone-refresh` (SOA, then IXFR if newer),
    /// `nsd-control transfer` (IXFR with its serial), `rndc refresh` (SOA, then IXFR if newer).
    /// Returns once the command is accepted; the transfer happens in the background.
    pub fn refresh(&self, zone: &str) {
        let args = self.refresh_args(zone);
        blocking(|| self.control(&args));
    }

    /// Stop the daemon gracefully (SIGTERM, then SIGKILL after 10 s), keeping its files.
    pub fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if self.kind == Kind::Nsd {
            // Transferred zones reach the zone file only every `zonefiles-write` second.
            let conf = path_str(&self.dir.path().join("nsd.conf"));
            let _ = self.run_control(&["-c".into(), conf, "write".into()]);
        }
        let mut child = self.child.take().unwrap();
        let pid = child.id() as i32;
        blocking(|| {
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            // NSD's other processes (same group) follow its main one; give them a moment.
            let deadline = Instant::now() + Duration::from_secs(3);
            while group_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(-pid, libc::SIGKILL);
            let _ = child.wait();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while !self.ports_free() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    /// Start the daemon again after [`Secondary::stop`], on the same address and port, with
    /// its zone data from disk.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "{} secondary is running", self.kind);
        self.spawn();
        if let Err(StartError::PortTaken(why) | StartError::Failed(why)) =
            blocking(|| self.wait_ready())
        {
            panic!(
                "{} secondary on {} did not start again: {why}",
                self.kind, self.addr
            );
        }
    }

    /// Restart the daemon (graceful stop, then start) keeping its zone data on disk. After it,
    /// Knot reloads zone file and journal and asks the primary at once; BIND reloads zone
    /// file and journal and asks about 2 s later; NSD reloads its zone file and asks when the
    /// refresh timer it saved fires (within 5 s) — call [`Secondary::refresh`] to hurry it.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    // --- internals ---

    /// The control tool's arguments for a refresh of `zone`.
    fn refresh_args(&self, zone: &str) -> Vec<String> {
        let zone = fqdn(zone);
        let d = self.dir.path();
        match self.kind {
            Kind::Knot => vec![
                "-s".into(),
                path_str(&d.join("knot.sock")),
                "-t".into(),
                "5".into(),
                "zone-refresh".into(),
                zone,
            ],
            Kind::Nsd => vec![
                "-c".into(),
                path_str(&d.join("nsd.conf")),
                "transfer".into(),
                zone,
            ],
            Kind::Bind => vec![
                "-c".into(),
                path_str(&d.join("rndc.conf")),
                "refresh".into(),
                bare(&zone),
            ],
        }
    }

    /// Whether a wait should nudge the daemon now: BIND only, while it serves no copy of the
    /// zone (`have` is None), at once and then every [`BIND_NUDGE`].
    fn should_nudge(&self, have: Option<u32>, last: &mut Option<Instant>) -> bool {
        if self.kind != Kind::Bind || have.is_some() || self.child.is_none() {
            return false;
        }
        if last.is_some_and(|t| t.elapsed() < BIND_NUDGE) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    fn write_config(&self) {
        let d = self.dir.path();
        match self.kind {
            Kind::Knot => fs::write(d.join("knot.conf"), self.knot_conf()).unwrap(),
            Kind::Nsd => {
                fs::create_dir_all(d.join("xfr")).unwrap();
                fs::write(d.join("nsd.conf"), self.nsd_conf()).unwrap();
            }
            Kind::Bind => {
                let rndc = TsigKey::generate("rndc-key");
                fs::write(d.join("named.conf"), self.named_conf(&rndc)).unwrap();
                fs::write(d.join("rndc.conf"), self.rndc_conf(&rndc)).unwrap();
            }
        }
    }

    fn knot_conf(&self) -> String {
        let d = self.dir.path().display();
        let (ip, port) = (self.addr.ip(), self.addr.port());
        let (pip, pport) = (self.primary.ip(), self.primary.port());
        let mut c = format!(
            "# Knot DNS secondary (test harness)\n\
             server:\n    rundir: \"{d}\"\n    pidfile: \"{d}/knot.pid\"\n    \
             listen: {ip}@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    \
             background-workers: 1\n\
             database:\n    storage: \"{d}\"\n\
             log:\n  - target: \"{d}/knot.log\"\n    any: debug\n"
        );
        let key_line = match &self.key {
            Some(k) => {
                c += &format!(
                    "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
                    k.name, k.algorithm, k.secret
                );
                format!("    key: {}\n", k.name)
            }
            None => String::new(),
        };
        c += &format!(
            "remote:\n  - id: primary\n    address: {pip}@{pport}\n{key_line}\
             acl:\n  - id: notify-from-primary\n    address: {pip}\n{key_line}    action: notify\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    master: primary\n    \
             acl: notify-from-primary\n    zonefile-sync: 0\n    journal-content: changes\n    \
             refresh-min-interval: 2\n    refresh-max-interval: 5\n    \
             retry-min-interval: 1\n    retry-max-interval: 2\n\
             zone:\n"
        );
        for z in &self.zones {
            c += &format!("  - domain: \"{z}\"\n    file: \"{}.zone\"\n", file_stem(z));
        }
        c
    }

    fn nsd_conf(&self) -> String {
        let d = self.dir.path().display();
        let (ip, port) = (self.addr.ip(), self.addr.port());
        let (pip, pport) = (self.primary.ip(), self.primary.port());
        let ip6 = if self.primary.is_ipv6() { "yes" } else { "no" };
        let mut c = format!(
            "# NSD secondary (test harness)\n\
             server:\n    ip-address: {ip}@{port}\n    do-ip6: {ip6}\n    debug-mode: yes\n    \
             server-count: 1\n    username: \"\"\n    chroot: \"\"\n    zonesdir: \"{d}\"\n    \
             database: \"\"\n    zonelistfile: \"{d}/zone.list\"\n    \
             xfrdfile: \"{d}/xfrd.state\"\n    xfrdir: \"{d}/xfr\"\n    \
             pidfile: \"{d}/nsd.pid\"\n    logfile: \"{d}/nsd.log\"\n    verbosity: 2\n    \
             zonefiles-write: 1\n    xfrd-reload-timeout: 0\n    rrl-ratelimit: 0\n\
             remote-control:\n    control-enable: yes\n    control-interface: \"{d}/nsd.ctl\"\n"
        );
        let key_name = match &self.key {
            Some(k) => {
                c += &format!(
                    "key:\n    name: \"{}\"\n    algorithm: {}\n    secret: \"{}\"\n",
                    k.name, k.algorithm, k.secret
                );
                k.name.clone()
            }
            None => "NOKEY".to_string(),
        };
        for z in &self.zones {
            c += &format!(
                "zone:\n    name: \"{z}\"\n    zonefile: \"{d}/{}.zone\"\n    \
                 request-xfr: {pip}@{pport} {key_name}\n    allow-notify: {pip} {key_name}\n    \
                 min-refresh-time: 1\n    max-refresh-time: 5\n    \
                 min-retry-time: 1\n    max-retry-time: 2\n",
                file_stem(z)
            );
        }
        c
    }

    fn named_conf(&self, rndc: &TsigKey) -> String {
        let d = self.dir.path().display();
        let (ip, port, ctl) = (self.addr.ip(), self.addr.port(), self.ctl_port);
        let (pip, pport) = (self.primary.ip(), self.primary.port());
        let mut c = String::from("// BIND secondary (test harness)\n");
        let key_clause = match &self.key {
            Some(k) => {
                c += &k.keyfile_text();
                format!(" key \"{}\"", k.name)
            }
            None => String::new(),
        };
        c += &rndc.keyfile_text();
        c += &format!(
            "controls {{\n\tinet {ip} port {ctl} allow {{ 127.0.0.0/8; }} keys {{ \"{}\"; }};\n}};\n\
             options {{\n\
             \tdirectory \"{d}\";\n\
             \tpid-file \"{d}/named.pid\";\n\
             \tlock-file \"{d}/named.lock\";\n\
             \tsession-keyfile \"{d}/session.key\";\n\
             \tmanaged-keys-directory \"{d}\";\n\
             \tbindkeys-file \"{d}/bind.keys\";\n\
             \tdump-file \"{d}/named_dump.db\";\n\
             \tstatistics-file \"{d}/named.stats\";\n\
             \tmemstatistics-file \"{d}/named.memstats\";\n\
             \tsecroots-file \"{d}/named.secroots\";\n\
             \trecursing-file \"{d}/named.recursing\";\n\
             \tlisten-on port {port} {{ {ip}; }};\n\
             \tlisten-on-v6 {{ none; }};\n\
             \trecursion no;\n\
             \tdnssec-validation no;\n\
             \tnotify no;\n\
             \tallow-transfer {{ none; }};\n\
             \trequest-ixfr yes;\n\
             \tmin-refresh-time 1;\n\
             \tmax-refresh-time 5;\n\
             \tmin-retry-time 1;\n\
             \tmax-retry-time 2;\n\
             }};\n\
             logging {{\n\
             \tchannel main {{\n\t\tfile \"{d}/named.log\";\n\t\tseverity info;\n\
             \t\tprint-time yes;\n\t\tprint-category yes;\n\t\tprint-severity yes;\n\t}};\n\
             \tchannel xfer {{\n\t\tfile \"{d}/named.log\";\n\t\tseverity debug 3;\n\
             \t\tprint-time yes;\n\t\tprint-category yes;\n\t\tprint-severity yes;\n\t}};\n\
             \tcategory default {{ main; }};\n\
             \tcategory xfer-in {{ xfer; }};\n\
             \tcategory lame-servers {{ null; }};\n\
             }};\n",
            rndc.name
        );
        for z in &self.zones {
            // allow-notify stays at its default: only the primaries' addresses. (BIND takes a
            // NOTIFY from a primary's address even unsigned; a bad signature is rejected.)
            c += &format!(
                "zone \"{}\" {{\n\ttype secondary;\n\tfile \"{}.db\";\n\
                 \tmasterfile-format text;\n\
                 \tprimaries {{ {pip} port {pport}{key_clause}; }};\n}};\n",
                bare(z),
                file_stem(z)
            );
        }
        c
    }

    fn rndc_conf(&self, rndc: &TsigKey) -> String {
        format!(
            "{}options {{\n\tdefault-key \"{}\";\n\tdefault-server {};\n\tdefault-port {};\n}};\n",
            rndc.keyfile_text(),
            rndc.name,
            self.addr.ip(),
            self.ctl_port
        )
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let bin = self.kind.daemon().path();
        let out = File::options()
            .create(true)
            .append(true)
            .open(d.join("stdio.log"))
            .unwrap();
        let mut cmd = Command::new(&bin);
        match self.kind {
            Kind::Knot => cmd.arg("-c").arg(d.join("knot.conf")),
            Kind::Nsd => cmd.arg("-d").arg("-c").arg(d.join("nsd.conf")),
            Kind::Bind => {
                cmd.args(["-f", "-n", "1"]);
                if self.primary.is_ipv4() {
                    cmd.arg("-4");
                }
                cmd.arg("-c").arg(d.join("named.conf"))
            }
        };
        let child = cmd
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group: NSD forks, and Drop kills the whole group.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
    }

    /// Wait until the daemon answers a query on its address and its control channel is up.
    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let probe = soa_query(&self.zones[0]);
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => return Err(StartError::Failed("not running".into())),
            };
            if let Some(status) = exited {
                let pid = self.child.take().map(|c| c.id() as i32);
                if let Some(pid) = pid {
                    signal(-pid, libc::SIGKILL);
                }
                return Err(self.start_error(format!("exited ({status})")));
            }
            if port_taken(&self.log()) {
                return Err(self.start_error("a port is taken".into()));
            }
            if exchange(self.addr, &probe, Duration::from_millis(200)).is_some()
                && self.control_ready()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(format!("not ready after {START_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_error(&self, what: String) -> StartError {
        let why = format!("{what}; log tail:\n{}", self.log_tail());
        if port_taken(&self.log()) {
            StartError::PortTaken(why)
        } else {
            StartError::Failed(why)
        }
    }

    fn control_ready(&self) -> bool {
        let d = self.dir.path();
        match self.kind {
            Kind::Knot => d.join("knot.sock").exists(),
            Kind::Nsd => d.join("nsd.ctl").exists(),
            Kind::Bind => TcpStream::connect_timeout(
                &SocketAddr::new(self.addr.ip(), self.ctl_port),
                Duration::from_millis(200),
            )
            .is_ok(),
        }
    }

    fn ports_free(&self) -> bool {
        let ctl_free = self.kind != Kind::Bind
            || TcpListener::bind(SocketAddr::new(self.addr.ip(), self.ctl_port)).is_ok();
        ctl_free && TcpListener::bind(self.addr).is_ok() && UdpSocket::bind(self.addr).is_ok()
    }

    /// Run the control tool with `args`, retrying failures for up to [`CONTROL_TIMEOUT`]
    /// (the channel may still be coming up); panics with its output when it never succeeds.
    fn control(&self, args: &[String]) {
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        loop {
            let (ok, out) = self.run_control(args);
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} {} failed: {out}\nlog tail:\n{}",
                    self.kind.control().0,
                    args.join(" "),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Run the control tool once, bounded; (success, stdout+stderr).
    fn run_control(&self, args: &[String]) -> (bool, String) {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let out_path = self.dir.path().join(format!(
            "control-{}.out",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let out = File::create(&out_path).unwrap();
        let bin = self.kind.control().path();
        let mut child = Command::new(&bin)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let status = wait_bounded(&mut child, CONTROL_TIMEOUT);
        let text = read_lossy(&out_path);
        let _ = fs::remove_file(&out_path);
        match status {
            Some(status) => (status.success(), text.trim().to_string()),
            None => (
                false,
                format!("timed out after {CONTROL_TIMEOUT:?}: {text}"),
            ),
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(-(child.id() as i32), libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Count Knot's applied IXFRs and AXFRs of `zone` (see [`Secondary::transfers`]).
fn knot_transfers(log: &str, zone: &str) -> (usize, usize) {
    let tag = format!("[{zone}]");
    let (mut ixfr, mut axfr) = (0, 0);
    let mut pending: Option<bool> = None; // Some(true): IXFR finished, Some(false): AXFR
    let mut up_to_date = false;
    for line in log.lines().filter(|l| l.contains(&tag)) {
        if line.contains("IXFR, incoming") {
            if line.contains("started") {
                up_to_date = false;
            } else if line.contains("zone is up-to-date") {
                up_to_date = true;
            } else if line.contains("finished") {
                pending = (!up_to_date).then_some(true);
                up_to_date = false;
            }
        } else if line.contains("AXFR, incoming") && line.contains("finished") {
            pending = Some(false);
        } else if line.contains("refresh, ") && line.contains("zone updated") {
            match pending.take() {
                Some(true) => ixfr += 1,
                Some(false) => axfr += 1,
                None => {}
            }
        }
    }
    (ixfr, axfr)
}

/// Count BIND's applied IXFRs and AXFRs of `zone` (see [`Secondary::transfers`]).
fn bind_transfers(log: &str, zone: &str) -> (usize, usize) {
    let tag = format!("'{}/IN'", bare(zone));
    let (mut ixfr, mut axfr) = (0, 0);
    let mut pending: Option<bool> = None;
    for line in log.lines().filter(|l| l.contains(&tag)) {
        if line.contains("got incremental response") {
            pending = Some(true);
        } else if line.contains("got nonincremental response") {
            pending = Some(false);
        } else if line.contains("Transfer status: ") {
            match (pending.take(), line.contains("Transfer status: success")) {
                (Some(true), true) => ixfr += 1,
                (Some(false), true) => axfr += 1,
                _ => {}
            }
        }
    }
    (ixfr, axfr)
}

fn lines_with(log: &str, needles: &[&str]) -> usize {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Whether a daemon's log says it could not bind a port.
fn port_taken(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("address in use")
}

/// Lower case, with the trailing dot.
fn fqdn(zone: &str) -> String {
    let z = zone.trim().to_ascii_lowercase();
    if z.ends_with('.') { z } else { format!("{z}.") }
}

/// Without the trailing dot (`.` for the root).
fn bare(zone: &str) -> String {
    let z = zone.trim_end_matches('.');
    if z.is_empty() {
        ".".to_string()
    } else {
        z.to_string()
    }
}

/// A file name for the zone's data.
fn file_stem(zone: &str) -> String {
    let z = zone.trim_end_matches('.');
    if z.is_empty() {
        "root".to_string()
    } else {
        z.replace('/', "_")
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("temp dir path is UTF-8").to_string()
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(0));
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `a` is at or after `b` in RFC 1982 serial arithmetic.
fn serial_ge(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

/// Send `signal` to a PID (or, negative, a process group); errors are ignored.
fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Whether a live (not zombie) process is left in process group `pgid`, by /proc. (NSD's
/// children are reparented when its first process exits, and the init of a container may
/// take its time reaping them.)
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[2].parse::<i32>() == Ok(pgid) && !matches!(fields[0], "Z" | "X")
    })
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run blocking work; inside a multi-thread tokio runtime, let the runtime move its other
/// tasks off this worker first.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A question with a random ID, EDNS 1232, RD=0.
fn question(name: &str, qtype: RecordType) -> Message {
    let mut m = super::query(name, qtype, Some(1232));
    m.metadata.id = rand::random();
    m.metadata.recursion_desired = false;
    m
}

fn soa_query(zone: &str) -> Message {
    question(&fqdn(zone), RecordType::SOA)
}

/// The serial of the answer's SOA for `zone`, if the reply is a NOERROR one carrying it.
fn soa_serial(reply: &Message, zone: &str) -> Option<u32> {
    if reply.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    let zone = Name::from_ascii(fqdn(zone)).ok()?;
    reply.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if r.name == zone => Some(soa.serial),
        _ => None,
    })
}

fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    let ip: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::LOCALHOST.into()
    } else {
        Ipv6Addr::LOCALHOST.into()
    };
    SocketAddr::new(ip, 0)
}

/// One UDP exchange with `to`; None on timeout, ICMP unreachable or an undecodable reply.
fn exchange(to: SocketAddr, q: &Message, timeout: Duration) -> Option<Message> {
    let sock = UdpSocket::bind(unspecified_for(to)).ok()?;
    sock.connect(to).ok()?;
    sock.send(&q.to_vec().ok()?).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        let n = sock.recv(&mut buf).ok()?;
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == q.metadata.id
        {
            return Some(m);
        }
    }
}

async fn exchange_async(to: SocketAddr, q: &Message, timeout: Duration) -> Option<Message> {
    let attempt = async {
        let sock = tokio::net::UdpSocket::bind(unspecified_for(to))
            .await
            .ok()?;
        sock.connect(to).await.ok()?;
        sock.send(&q.to_vec().ok()?).await.ok()?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = sock.recv(&mut buf).await.ok()?;
            if let Ok(m) = Message::from_vec(&buf[..n])
                && m.metadata.id == q.metadata.id
            {
                return Some(m);
            }
        }
    };
    tokio::time::timeout(timeout, attempt).await.ok().flatten()
}
