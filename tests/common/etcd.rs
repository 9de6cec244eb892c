//! Test support: real `etcd` clusters (1 or 3 members) on loopback, with optional TLS
//! (certificates made at test time with the `openssl` CLI) and optional authentication.
//!
//! Every member is a child process of the test on its own loopback ports and data dir inside
//! one temp dir held by [`EtcdCluster`]; dropping the cluster SIGKILLs every member still
//! running, also when the test panics. Start, kill and restart are blocking calls (usable from
//! sync tests and from `#[tokio::test]`); the key-value helpers are async and connect a fresh
//! client per call, so they work from any runtime.
#![allow(dead_code)]

use std::fs::{self, File};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, CompactionOptions, ConnectOptions, GetOptions, Identity, Permission,
    PutOptions, TlsOptions,
};

/// The etcd superuser created when auth is on.
pub const ROOT_USER: &str = "root";
pub const ROOT_PASSWORD: &str = "rootpw";
/// The read-only user srvd is meant to connect as when auth is on.
pub const SRVD_USER: &str = "srvd";
pub const SRVD_PASSWORD: &str = "srvd-secret";
/// The role granted to [`SRVD_USER`]: read on every key starting with [`SRVD_PREFIX`].
pub const SRVD_ROLE: &str = "srvd-reader";
pub const SRVD_PREFIX: &str = "/skydns";
/// Common name of the generated client certificate. It is not an etcd user, so a client that
/// presents the certificate without a user/password gets no permissions when auth is on.
pub const CLIENT_CERT_CN: &str = "srvd-test-client";

/// How long starting a cluster, or restarting members, may take before the harness panics.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a helper retries transient failures (leader election, member restarting).
const RETRY_FOR: Duration = Duration::from_secs(10);
/// How long one helper attempt may take. A write proposed just before the leader died hangs
/// on the server for several seconds, so give up early and retry on the new leader.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Start attempts with fresh ports when a port turns out to be taken.
const START_ATTEMPTS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Number of members, usually 1 or 3.
    pub members: usize,
    /// Client URLs are https with client-certificate authentication.
    pub tls: bool,
    /// Users `root` and `srvd` exist and auth is enabled.
    pub auth: bool,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            members: 1,
            tls: false,
            auth: false,
        }
    }
}

/// Paths of the PEM files made for a TLS cluster.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// Where the current run's output starts in the log (runs are appended).
    log_start: u64,
    child: Option<Child>,
}

/// A running etcd cluster; see the module docs.
pub struct EtcdCluster {
    opts: EtcdOptions,
    members: Vec<Member>,
    tls: Option<TlsFiles>,
    token: String,
    /// True once auth is enabled: probes and clients must log in as root.
    auth_enabled: bool,
    /// Held for its lifetime; dropped after `Drop::drop` killed the members.
    dir: tempfile::TempDir,
}

/// Why a member did not come up.
enum StartError {
    /// A listen port was taken (the caller may retry with other ports).
    PortTaken(String),
    Failed(String),
}

impl EtcdCluster {
    /// Start a plain (no TLS, no auth) cluster of `members` members (usually 1 or 3).
    pub fn start(members: usize) -> EtcdCluster {
        EtcdCluster::start_with(EtcdOptions {
            members,
            ..EtcdOptions::default()
        })
    }

    /// Start a cluster and wait until every member answers a linearizable read.
    pub fn start_with(opts: EtcdOptions) -> EtcdCluster {
        assert!(
            opts.members >= 1,
            "an etcd cluster needs at least one member"
        );
        let etcd = etcd_binary();
        let dir = temp_dir();
        let tls = opts.tls.then(|| make_certs(dir.path()));
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "srvd-test-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        let members = (0..opts.members)
            .map(|i| {
                let name = format!("m{i}");
                Member {
                    data_dir: dir.path().join(format!("{name}.etcd")),
                    log_path: dir.path().join(format!("{name}.log")),
                    name,
                    client_port: 0,
                    peer_port: 0,
                    log_start: 0,
                    child: None,
                }
            })
            .collect();
        let mut cluster = EtcdCluster {
            opts,
            members,
            tls,
            token,
            auth_enabled: false,
            dir,
        };
        let all: Vec<usize> = (0..opts.members).collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            for m in &mut cluster.members {
                m.client_port = super::ports::free_port(Ipv4Addr::LOCALHOST);
                m.peer_port = super::ports::free_port(Ipv4Addr::LOCALHOST);
                let _ = fs::remove_dir_all(&m.data_dir);
            }
            for &i in &all {
                cluster.spawn(&etcd, i);
            }
            match cluster.wait_ready(&all) {
                Ok(()) => break,
                Err(StartError::PortTaken(why)) if attempt < START_ATTEMPTS => {
                    eprintln!("etcd harness: {why}; retrying with other ports");
                    cluster.kill_all();
                }
                Err(StartError::PortTaken(why) | StartError::Failed(why)) => {
                    cluster.kill_all();
                    panic!("etcd cluster did not start: {why}");
                }
            }
        }
        if opts.auth {
            cluster.enable_auth();
        }
        cluster
    }

    pub fn options(&self) -> EtcdOptions {
        self.opts
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Client URLs of all members (running or not), in member order.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.endpoint_of(i))
            .collect()
    }

    /// Client URLs of the members currently running.
    pub fn live_endpoints(&self) -> Vec<String> {
        (0..self.members.len())
            .filter(|&i| self.is_running(i))
            .map(|i| self.endpoint_of(i))
            .collect()
    }

    /// Client URL of one member: `http://127.0.0.1:PORT`, or `https://…` with TLS.
    pub fn endpoint_of(&self, member: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.members[member].client_port)
    }

    pub fn is_running(&self, member: usize) -> bool {
        self.members[member].child.is_some()
    }

    pub fn pid(&self, member: usize) -> Option<u32> {
        self.members[member].child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self, member: usize) -> &Path {
        &self.members[member].data_dir
    }

    /// The last lines of a member's log (all its runs, appended).
    pub fn log_tail(&self, member: usize) -> String {
        log_tail(&self.members[member].log_path, 0)
    }

    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    fn tls_or_panic(&self) -> &TlsFiles {
        self.tls
            .as_ref()
            .expect("this EtcdCluster was started without TLS")
    }

    /// The CA certificate (PEM) that signed the server and client certificates. Panics
    /// without TLS.
    pub fn ca_path(&self) -> &Path {
        &self.tls_or_panic().ca
    }

    /// The client certificate (PEM, CN [`CLIENT_CERT_CN`]). Panics without TLS.
    pub fn client_cert_path(&self) -> &Path {
        &self.tls_or_panic().client_cert
    }

    /// The client certificate's private key (PEM, PKCS#8). Panics without TLS.
    pub fn client_key_path(&self) -> &Path {
        &self.tls_or_panic().client_key
    }

    /// etcd-client TLS options trusting the CA and presenting the client certificate, or
    /// `None` without TLS.
    pub fn tls_options(&self) -> Option<TlsOptions> {
        self.tls.as_ref().map(|t| {
            TlsOptions::new()
                .ca_certificate(Certificate::from_pem(fs::read(&t.ca).unwrap()))
                .identity(Identity::from_pem(
                    fs::read(&t.client_cert).unwrap(),
                    fs::read(&t.client_key).unwrap(),
                ))
        })
    }

    /// Connect options with this cluster's TLS settings (if any) and the given user.
    pub fn connect_options(&self, user: Option<(&str, &str)>) -> ConnectOptions {
        let mut options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
        if let Some(tls) = self.tls_options() {
            options = options.with_tls(tls);
        }
        if let Some((name, password)) = user {
            options = options
                .with_user(name, password)
                .with_auto_token_refresh(true);
        }
        options
    }

    fn admin_options(&self) -> ConnectOptions {
        self.connect_options(self.auth_enabled.then_some((ROOT_USER, ROOT_PASSWORD)))
    }

    /// A client on the running members' endpoints, as root when auth is on.
    pub async fn client(&self) -> Client {
        self.try_client()
            .await
            .unwrap_or_else(|e| panic!("connect to etcd {:?}: {e}", self.live_endpoints()))
    }

    async fn try_client(&self) -> Result<Client, etcd_client::Error> {
        Client::connect(self.live_endpoints(), Some(self.admin_options())).await
    }

    /// A client on the running members' endpoints as [`SRVD_USER`] (with the client
    /// certificate when TLS is on). Panics when auth is off.
    pub async fn srvd_client(&self) -> Client {
        assert!(
            self.opts.auth,
            "srvd_client needs a cluster started with auth"
        );
        let options = self.connect_options(Some((SRVD_USER, SRVD_PASSWORD)));
        Client::connect(self.live_endpoints(), Some(options))
            .await
            .unwrap_or_else(|e| panic!("connect to etcd as {SRVD_USER}: {e}"))
    }

    /// Run `op` with a fresh admin client, retrying transient failures for a while.
    async fn with_retry<T, F, Fut>(&self, what: &str, op: F) -> T
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let attempt = async {
                let client = self.try_client().await?;
                op(client).await
            };
            let err = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
                Ok(Ok(v)) => return v,
                Ok(Err(e)) if !is_transient(&e) => panic!("etcd {what}: {e}"),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            if Instant::now() >= deadline {
                panic!("etcd {what}: still failing after {RETRY_FOR:?}: {err}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Put `key` = `value`; returns the revision of the write.
    pub async fn put(&self, key: &str, value: &str) -> i64 {
        self.with_retry("put", |mut c| async move {
            let r = c.put(key, value, None).await?;
            Ok(r.header().unwrap().revision())
        })
        .await
    }

    /// Grant a lease of `ttl_secs` and put `key` = `value` under it; returns
    /// `(revision, lease_id)`.
    pub async fn put_with_lease(&self, key: &str, value: &str, ttl_secs: i64) -> (i64, i64) {
        self.with_retry("put with lease", |mut c| async move {
            let lease = c.lease_grant(ttl_secs, None).await?.id();
            let r = c
                .put(key, value, Some(PutOptions::new().with_lease(lease)))
                .await?;
            Ok((r.header().unwrap().revision(), lease))
        })
        .await
    }

    /// Delete `key` (exact key); returns the revision after the delete.
    pub async fn delete(&self, key: &str) -> i64 {
        self.with_retry("delete", |mut c| async move {
            let r = c.delete(key, None).await?;
            Ok(r.header().unwrap().revision())
        })
        .await
    }

    /// Delete every key under `prefix`; returns the revision after the delete.
    pub async fn delete_prefix(&self, prefix: &str) -> i64 {
        self.with_retry("delete prefix", |mut c| async move {
            let r = c
                .delete(
                    prefix,
                    Some(etcd_client::DeleteOptions::new().with_prefix()),
                )
                .await?;
            Ok(r.header().unwrap().revision())
        })
        .await
    }

    /// Physically compact history up to `revision`.
    pub async fn compact(&self, revision: i64) {
        self.with_retry("compact", |mut c| async move {
            c.compact(revision, Some(CompactionOptions::new().with_physical()))
                .await?;
            Ok(())
        })
        .await
    }

    /// The current revision of the store.
    pub async fn revision(&self) -> i64 {
        self.with_retry("revision", |mut c| async move {
            let r = c
                .get("\0", Some(GetOptions::new().with_count_only()))
                .await?;
            Ok(r.header().unwrap().revision())
        })
        .await
    }

    /// Every `(key, value)` under `prefix`, sorted by key.
    pub async fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.with_retry("get prefix", |mut c| async move {
            let r = c.get(prefix, Some(GetOptions::new().with_prefix())).await?;
            Ok(r.kvs()
                .iter()
                .map(|kv| {
                    (
                        String::from_utf8_lossy(kv.key()).into_owned(),
                        String::from_utf8_lossy(kv.value()).into_owned(),
                    )
                })
                .collect())
        })
        .await
    }

    /// The index of the current leader (asked of the running members).
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let mut ids = vec![None; self.members.len()];
            let mut leader = 0;
            for (i, id) in ids.iter_mut().enumerate() {
                if !self.is_running(i) {
                    continue;
                }
                let status = async {
                    let mut c =
                        Client::connect([self.endpoint_of(i)], Some(self.admin_options())).await?;
                    c.status().await
                };
                if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), status).await {
                    *id = s.header().map(|h| h.member_id());
                    leader = leader.max(s.leader());
                }
            }
            if let Some(i) = ids.iter().position(|id| leader != 0 && *id == Some(leader)) {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no etcd leader among the running members"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL a member and reap it. No-op when it is not running.
    pub fn kill(&mut self, member: usize) {
        if let Some(mut child) = self.members[member].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restart a killed member with the same data dir and ports, and wait until it answers a
    /// linearizable read (so it rejoined a quorum). In a 3-member cluster with two members
    /// down, use [`EtcdCluster::restart_all`] instead: one member alone has no quorum.
    pub fn restart(&mut self, member: usize) {
        self.restart_members(&[member]);
    }

    /// `etcdctl snapshot save PATH` from the single member (a backup).
    pub fn snapshot_save(&self, path: &Path) {
        assert!(
            self.tls.is_none() && !self.auth_enabled,
            "plain clusters only"
        );
        let out = etcdctl()
            .args(["--endpoints", &self.endpoint_of(0), "snapshot", "save"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("etcdctl: {e} (install etcd-client)"));
        assert!(out.status.success(), "snapshot save: {out:?}");
    }

    /// Replace the killed single member's data, as an operator restoring etcd would: empty
    /// (`None`), or restored from a snapshot file with the same name, peer URL and cluster
    /// token (so the cluster id stays the same and only the history differs); then restart it.
    pub fn replace_data(&mut self, snapshot: Option<&Path>) {
        assert_eq!(self.members.len(), 1, "single-member clusters only");
        assert!(!self.is_running(0), "kill the member first");
        let m = &self.members[0];
        match fs::remove_dir_all(&m.data_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove {}: {e}", m.data_dir.display()),
        }
        if let Some(snapshot) = snapshot {
            let peer = format!("http://127.0.0.1:{}", m.peer_port);
            let out = etcdctl()
                .args(["snapshot", "restore"])
                .arg(snapshot)
                .args(["--name", &m.name])
                .arg("--data-dir")
                .arg(&m.data_dir)
                .args(["--initial-cluster", &format!("{}={peer}", m.name)])
                .args(["--initial-cluster-token", &self.token])
                .args(["--initial-advertise-peer-urls", &peer])
                .output()
                .unwrap_or_else(|e| panic!("etcdctl: {e} (install etcd-client)"));
            assert!(out.status.success(), "snapshot restore: {out:?}");
        }
        self.restart(0);
    }

    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Restart every member that is not running, then wait for all of them.
    pub fn restart_all(&mut self) {
        let down: Vec<usize> = (0..self.members.len())
            .filter(|&i| !self.is_running(i))
            .collect();
        self.restart_members(&down);
    }

    fn restart_members(&mut self, members: &[usize]) {
        let etcd = etcd_binary();
        for &i in members {
            assert!(
                !self.is_running(i),
                "etcd member m{i} is running; kill it before restarting"
            );
            self.spawn(&etcd, i);
        }
        if let Err(StartError::PortTaken(why) | StartError::Failed(why)) = self.wait_ready(members)
        {
            panic!("etcd restart failed: {why}");
        }
    }

    fn spawn(&mut self, etcd: &Path, i: usize) {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let m = &self.members[i];
        let client_url = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let peer_url = format!("http://127.0.0.1:{}", m.peer_port);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&m.log_path)
            .unwrap();
        let mut cmd = Command::new(etcd);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD") {
                cmd.env_remove(key);
            }
        }
        if let Some(arch) = go_arch() {
            cmd.env("ETCD_UNSUPPORTED_ARCH", arch);
        }
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--auto-compaction-retention", "0"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(["--log-level", "info"]);
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let log_start = log.metadata().map(|md| md.len()).unwrap_or(0);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", etcd.display()));
        let m = &mut self.members[i];
        m.child = Some(child);
        m.log_start = log_start;
    }

    /// Wait until each of `members` answers a linearizable read, or fails.
    fn wait_ready(&mut self, members: &[usize]) -> Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pending: Vec<usize> = members.to_vec();
        loop {
            let probes: Vec<_> = pending
                .iter()
                .map(|&i| {
                    let m = &self.members[i];
                    (
                        self.endpoint_of(i),
                        self.admin_options(),
                        m.name.clone(),
                        format!("http://127.0.0.1:{}", m.peer_port),
                    )
                })
                .collect();
            let ready = block_on(async {
                let mut ready = Vec::new();
                for (endpoint, options, name, peer_url) in probes {
                    ready.push(probe(endpoint, options, name, peer_url).await);
                }
                ready
            });
            // Checked after probing, so a member that died meanwhile is never taken for ready.
            for &i in &pending {
                let m = &mut self.members[i];
                let Some(child) = m.child.as_mut() else {
                    continue;
                };
                if let Ok(Some(status)) = child.try_wait() {
                    m.child = None;
                    let run_log = log_tail(&m.log_path, m.log_start);
                    let why = format!(
                        "etcd member {} exited ({status}); log tail:\n{run_log}",
                        m.name
                    );
                    return Err(if run_log.contains("address already in use") {
                        StartError::PortTaken(why)
                    } else {
                        StartError::Failed(why)
                    });
                }
            }
            let mut still = Vec::new();
            for (i, ok) in pending.iter().zip(ready) {
                if !ok {
                    still.push(*i);
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tails: Vec<String> = pending
                    .iter()
                    .map(|&i| {
                        format!(
                            "member m{i} ({}) log tail:\n{}",
                            self.endpoint_of(i),
                            self.log_tail(i)
                        )
                    })
                    .collect();
                return Err(StartError::Failed(format!(
                    "not ready after {START_TIMEOUT:?}\n{}",
                    tails.join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Create root and srvd users and the srvd role, then turn auth on.
    fn enable_auth(&mut self) {
        let endpoints = self.live_endpoints();
        let options = self.connect_options(None);
        let result = block_on(async move {
            let mut c = Client::connect(endpoints, Some(options)).await?;
            c.user_add(ROOT_USER, ROOT_PASSWORD, None).await?;
            c.role_add("root").await?;
            c.user_grant_role(ROOT_USER, "root").await?;
            c.role_add(SRVD_ROLE).await?;
            c.role_grant_permission(SRVD_ROLE, Permission::read(SRVD_PREFIX).with_prefix())
                .await?;
            c.user_add(SRVD_USER, SRVD_PASSWORD, None).await?;
            c.user_grant_role(SRVD_USER, SRVD_ROLE).await?;
            c.auth_enable().await?;
            Ok::<(), etcd_client::Error>(())
        });
        if let Err(e) = result {
            panic!("enable etcd auth: {e}");
        }
        self.auth_enabled = true;
        let all: Vec<usize> = (0..self.members.len()).collect();
        if let Err(StartError::PortTaken(why) | StartError::Failed(why)) = self.wait_ready(&all) {
            panic!("etcd not ready after enabling auth: {why}");
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The last 40 lines of a log file from byte `from` on.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Whether the member `name` with peer URL `peer_url` answers a linearizable get on
/// `endpoint`. The identity check matters: if etcd lost the race for its port, whatever
/// else listens there must not pass for it.
async fn probe(endpoint: String, options: ConnectOptions, name: String, peer_url: String) -> bool {
    let attempt = async {
        let mut c = Client::connect([endpoint], Some(options)).await?;
        c.get("\0", Some(GetOptions::new().with_count_only()))
            .await?;
        let list = c.member_list().await?;
        let me = list.header().map(|h| h.member_id());
        Ok::<bool, etcd_client::Error>(list.members().iter().any(|m| {
            Some(m.id()) == me && m.name() == name && m.peer_urls() == [peer_url.as_str()]
        }))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

/// Errors worth retrying: the cluster is electing a leader, a member is restarting, or a
/// token was issued by a member that has since restarted.
fn is_transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
            ) || s.message().contains("invalid auth token")
        }
        _ => false,
    }
}

/// Run a future to completion on a fresh current-thread runtime in a scoped thread, so
/// the blocking API also works when called from inside a tokio runtime.
fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(fut)
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// `etcdctl` (API v3) with no ETCD* variables of the caller's environment.
fn etcdctl() -> Command {
    let mut cmd = Command::new("etcdctl");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ETCD") {
            cmd.env_remove(key);
        }
    }
    cmd.env("ETCDCTL_API", "3");
    cmd
}

fn etcd_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("etcd not found: install etcd-server (scripts/deps.sh does)"))
}

/// Go's name for this architecture, for `ETCD_UNSUPPORTED_ARCH` (None where etcd 3.4
/// supports the architecture without it, or the name is unknown).
fn go_arch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => return None,
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        _ => return None,
    })
}

/// A temp dir on tmpfs when there is one (etcd fsyncs a lot), else the default temp dir.
fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("srvd-etcd-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new()
        .prefix("srvd-etcd-")
        .tempdir()
        .unwrap()
}

/// Make a CA, a server certificate for 127.0.0.1/localhost and a client certificate in
/// `dir` with the `openssl` CLI (EC P-256 keys, PKCS#8).
fn make_certs(dir: &Path) -> TlsFiles {
    let cnf = dir.join("openssl.cnf");
    fs::write(
        &cnf,
        "[req]\n\
         distinguished_name = dn\n\
         prompt = no\n\
         [dn]\n\
         CN = unused\n\
         [ca]\n\
         basicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n\
         [server]\n\
         basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth,clientAuth\n\
         subjectAltName = IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         [client]\n\
         basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = clientAuth\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    let cnf = cnf.to_str().unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-config", cnf, "-extensions", "ca"][..],
            &ec,
            &[
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=srvd-test-ca",
            ],
        ]
        .concat(),
    );
    for (name, cn) in [("server", "localhost"), ("client", CLIENT_CERT_CN)] {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN={cn}");
        openssl(
            dir,
            &[
                &["req", "-new", "-config", cnf][..],
                &ec,
                &["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj],
            ]
            .concat(),
        );
        let serial = format!("0x{:x}", rand::random::<u64>() >> 1);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial,
                "-days",
                "2",
                "-extfile",
                cnf,
                "-extensions",
                name,
                "-out",
                &crt,
            ],
        );
    }
    TlsFiles {
        ca: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run openssl (needed for TLS tests): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
