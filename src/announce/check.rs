//! Health checks (HTTP GET, TCP connect, `sh -c`), each bounded by a timeout, and the
//! rise/fall state machine that turns their results into "announce" / "withdraw".

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Bytes of an HTTP response read to find the status line.
const HTTP_HEAD_MAX: usize = 8192;

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `http://HOST[:PORT][/PATH]`: a GET answered 2xx or 3xx passes.
    Http {
        /// `HOST[:PORT]` as written (sent as the Host header).
        authority: String,
        host: String,
        port: u16,
        path: String,
    },
    /// `tcp:HOST:PORT`: a connection succeeds.
    Tcp { target: String },
    /// `exec:COMMAND`: `sh -c COMMAND` exits 0.
    Exec { command: String },
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Http {
                authority, path, ..
            } => write!(f, "http://{authority}{path}"),
            Check::Tcp { target } => write!(f, "tcp:{target}"),
            Check::Exec { command } => write!(f, "exec:{command}"),
        }
    }
}

/// Split `HOST:PORT` / `[V6]:PORT` / `HOST` (with `default_port`).
fn host_port(authority: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{authority:?}: missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("{authority:?}: expected ':PORT' after ']'")),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host.to_string(), Some(port)),
            Some(_) => {
                return Err(format!(
                    "{authority:?}: write IPv6 addresses as [ADDR]:PORT"
                ));
            }
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@' || c == '/') {
        return Err(format!("{authority:?}: bad host"));
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{authority:?}: port must be 1-65535"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("{authority:?}: a port is needed (HOST:PORT)")),
    };
    Ok((host, port))
}

impl Check {
    /// Parse `http://…`, `tcp:HOST:PORT` or `exec:COMMAND`.
    pub fn parse(text: &str) -> Result<Check, String> {
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = match rest.find(['/', '?']) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let path = if path.starts_with('?') {
                format!("/{path}")
            } else {
                path.to_string()
            };
            if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err("the path must not contain spaces or control characters".into());
            }
            let (host, port) = host_port(authority, Some(80))?;
            Ok(Check::Http {
                authority: authority.to_string(),
                host,
                port,
                path,
            })
        } else if text.starts_with("https://") {
            Err("https checks are not supported; use exec:curl -fsS https://… instead".into())
        } else if let Some(target) = text.strip_prefix("tcp:") {
            host_port(target, None)?;
            Ok(Check::Tcp {
                target: target.to_string(),
            })
        } else if let Some(command) = text.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err("exec: needs a command".into());
            }
            Ok(Check::Exec {
                command: command.to_string(),
            })
        } else {
            Err("must be http://HOST[:PORT]/PATH, tcp:HOST:PORT or exec:COMMAND".into())
        }
    }

    /// Run once; `Err` says why it failed.
    pub async fn run(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Check::Exec { command } => exec(command, timeout).await,
            _ => match tokio::time::timeout(timeout, self.run_network()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no result within {timeout:?}")),
            },
        }
    }

    async fn run_network(&self) -> Result<(), String> {
        match self {
            Check::Http {
                authority,
                host,
                port,
                path,
            } => {
                let mut stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: srvd-announce\r\n\
                     Accept: */*\r\nConnection: close\r\n\r\n"
                );
                stream
                    .write_all(request.as_bytes())
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                let status = read_status(&mut stream).await?;
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("HTTP status {status}"))
                }
            }
            Check::Tcp { target } => TcpStream::connect(target.as_str())
                .await
                .map(drop)
                .map_err(|e| format!("connect: {e}")),
            Check::Exec { .. } => Err("not a network check".into()),
        }
    }
}

/// Read until the end of the status line and return the status code.
async fn read_status(stream: &mut TcpStream) -> Result<u16, String> {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > HTTP_HEAD_MAX {
            break;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(code))) if version.starts_with("HTTP/") => Ok(code),
        _ => Err(format!("not an HTTP response: {:?}", line.trim())),
    }
}

/// `sh -c COMMAND` in its own process group, killed as a group on timeout.
async fn exec(command: &str, timeout: Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let pid = child.id();
    let mut stderr = child.stderr.take();
    let collect = async {
        let mut err = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(4096).read_to_end(&mut err).await;
        }
        (child.wait().await, err)
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), err)) => {
            let err = String::from_utf8_lossy(&err);
            let last = err.lines().rev().find(|l| !l.trim().is_empty());
            Err(match last {
                Some(line) => format!("{status}: {}", line.trim()),
                None => status.to_string(),
            })
        }
        Ok((Err(e), _)) => Err(format!("wait: {e}")),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                super::child::signal_group(pid, libc::SIGKILL);
            }
            Err(format!("no result within {timeout:?} (killed)"))
        }
    }
}

/// Consecutive-result thresholds: `fall` failures withdraw, `rise` passes re-announce. The
/// very first pass announces at once (nothing was announced yet to protect from flapping).
#[derive(Debug, Clone)]
pub struct Health {
    fall: u32,
    rise: u32,
    healthy: bool,
    ever_healthy: bool,
    passes: u32,
    fails: u32,
}

impl Health {
    pub fn new(fall: u32, rise: u32) -> Self {
        Health {
            fall: fall.max(1),
            rise: rise.max(1),
            healthy: false,
            ever_healthy: false,
            passes: 0,
            fails: 0,
        }
    }

    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Record one result; returns the new state when it changed.
    pub fn observe(&mut self, pass: bool) -> Option<bool> {
        if pass {
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
            if !self.healthy && (!self.ever_healthy || self.passes >= self.rise) {
                self.healthy = true;
                self.ever_healthy = true;
                return Some(true);
            }
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
            if self.healthy && self.fails >= self.fall {
                self.healthy = false;
                return Some(false);
            }
        }
        None
    }
}

/// A validated health check configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures that withdraw.
    pub fall: u32,
    /// Consecutive passes that re-announce.
    pub rise: u32,
}

/// Run the check every `plan.interval` (the first at once) and publish the health state.
pub async fn run(plan: CheckPlan, healthy: watch::Sender<bool>, stop: CancellationToken) {
    let mut health = Health::new(plan.fall, plan.rise);
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {},
            _ = stop.cancelled() => return,
        }
        let result = tokio::select! {
            r = plan.check.run(plan.timeout) => r,
            _ = stop.cancelled() => return,
        };
        let pass = result.is_ok();
        match (&result, health.observe(pass)) {
            (Ok(()), Some(true)) => info!(check = %plan.check, "health check passes: announcing"),
            (Err(e), Some(false)) => warn!(
                check = %plan.check,
                error = %e,
                failures = plan.fall,
                "health check failing: withdrawing"
            ),
            (Err(e), _) if first || health.healthy() => {
                warn!(check = %plan.check, error = %e, "health check failed")
            }
            (r, _) => debug!(check = %plan.check, result = ?r, "health check"),
        }
        first = false;
        healthy.send_if_modified(|h| {
            let changed = *h != health.healthy();
            *h = health.healthy();
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_checks() {
        assert_eq!(
            Check::parse("http://127.0.0.1:8080/health?x=1").unwrap(),
            Check::Http {
                authority: "127.0.0.1:8080".into(),
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/health?x=1".into()
            }
        );
        let Check::Http {
            host, port, path, ..
        } = Check::parse("http://[::1]").unwrap()
        else {
            panic!()
        };
        assert_eq!((host.as_str(), port, path.as_str()), ("::1", 80, "/"));
        assert_eq!(
            Check::parse("tcp:localhost:5432").unwrap().to_string(),
            "tcp:localhost:5432"
        );
        assert_eq!(
            Check::parse("exec:test -f /tmp/x").unwrap(),
            Check::Exec {
                command: "test -f /tmp/x".into()
            }
        );
        for bad in [
            "ftp://x",
            "https://x/",
            "tcp:host",
            "tcp:host:0",
            "tcp:host:99999",
            "tcp:::1:80",
            "exec:",
            "http://a b/",
            "http://:80/",
            "http://x/a b",
            "127.0.0.1:80",
        ] {
            assert!(Check::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rise_and_fall() {
        let mut h = Health::new(3, 2);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), Some(true), "first pass announces at once");
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None, "a pass resets the failure count");
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None, "a failure resets the pass count");
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
        assert!(h.healthy());
    }

    #[tokio::test]
    async fn checks_run() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                n += 1;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let reply: &[u8] = if n == 1 {
                    b"HTTP/1.1 204 No Content\r\n\r\n"
                } else {
                    b"HTTP/1.0 503 Unavailable\r\n\r\n"
                };
                let _ = s.write_all(reply).await;
            }
        });
        let t = Duration::from_secs(2);
        let http = Check::parse(&format!("http://{addr}/health")).unwrap();
        assert_eq!(http.run(t).await, Ok(()));
        assert!(http.run(t).await.unwrap_err().contains("503"));
        assert_eq!(
            Check::parse(&format!("tcp:{addr}")).unwrap().run(t).await,
            Ok(())
        );
        assert_eq!(Check::parse("exec:true").unwrap().run(t).await, Ok(()));
        let e = Check::parse("exec:echo nope >&2; exit 3")
            .unwrap()
            .run(t)
            .await
            .unwrap_err();
        assert!(e.contains("nope") && e.contains('3'), "{e}");
        let start = std::time::Instant::now();
        let e = Check::parse("exec:sleep 5")
            .unwrap()
            .run(Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(
            e.contains("killed") && start.elapsed() < Duration::from_secs(2),
            "{e}"
        );
    }
}
