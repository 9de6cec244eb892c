//! Forwarding: answers for names outside srvd's zones, from upstream resolvers.
//!
//! ```text
//!  question ── cache (fresh?) ──────────────────────────────────────────────> served
//!     └─ coalesce (one upstream query per question in flight; others wait for it)
//!          └─ at most max_concurrent at once (else REFUSED)
//!               └─ upstreams in policy order: per try ~1.5 s, whole query 3 s, failover on
//!                  timeout / error / SERVFAIL / REFUSED; NXDOMAIN and NODATA are final
//!                    └─ all failed: the stale entry (RFC 8767, TTL 30), else SERVFAIL
//! ```
//!
//! Only names outside every served zone come here (`server` decides); nothing here reads a
//! snapshot or encodes a reply: the caller gets a [`Served`] answer (records, age, stale) and
//! encodes it for its own transport. Upstream health is in [`upstream`], the exchange in
//! [`exchange`], the cache in [`cache`], loop detection in [`loops`].

pub mod cache;
pub mod exchange;
pub mod hot;
pub mod loops;
pub mod resolv_conf;
pub mod upstream;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::name_key::NameKey;
use cache::{ForwardCache, Resolution};
pub use exchange::Question;
pub use hot::HotCache;
use loops::LoopGuard;
pub use upstream::Policy;
use upstream::{Upstream, Upstreams};

/// Longest one try with one upstream may take.
pub const TRY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Longest a whole forwarded query may take before SERVFAIL (or a stale answer).
pub const QUERY_BUDGET: Duration = Duration::from_secs(3);
/// How often the resolv.conf file is checked for changes.
const RESOLV_CONF_POLL: Duration = Duration::from_secs(2);

/// What to forward where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardSettings {
    /// Upstreams for every name outside srvd's zones.
    pub upstreams: Vec<SocketAddr>,
    /// More upstreams from a resolv.conf-format file, re-read when it changes.
    pub resolv_conf: Option<PathBuf>,
    /// Conditional forwarding: names at or below a zone go to its upstreams.
    pub zones: Vec<(Name, Vec<SocketAddr>)>,
    pub policy: Policy,
    /// Bytes of forwarded answers cached at most.
    pub cache_bytes: u64,
    /// Upstream queries in flight at most; more get REFUSED.
    pub max_concurrent: usize,
}

impl ForwardSettings {
    /// True when anything is to be forwarded.
    pub fn enabled(&self) -> bool {
        !self.upstreams.is_empty() || self.resolv_conf.is_some() || !self.zones.is_empty()
    }
}

/// An answer to serve: an upstream's, how old it is, and whether it is stale.
#[derive(Debug, Clone)]
pub struct Served {
    pub resolution: Arc<Resolution>,
    /// Seconds to take off every TTL.
    pub age: u32,
    /// Served past its TTL because every upstream failed (TTL 30).
    pub stale: bool,
}

impl Served {
    fn fresh(resolution: Arc<Resolution>, now: Instant) -> Served {
        Served {
            age: resolution.age(now),
            resolution,
            stale: false,
        }
    }

    /// SERVFAIL (a loop cut, or no forwarder).
    pub fn servfail() -> Served {
        Served::rcode(ResponseCode::ServFail)
    }

    fn rcode(rcode: ResponseCode) -> Served {
        let mut r = Resolution::failure();
        r.rcode = rcode;
        Served {
            resolution: Arc::new(r),
            age: 0,
            stale: false,
        }
    }
}

type Waiters = Vec<oneshot::Sender<Served>>;

/// The forwarder; shared by every transport.
pub struct Forwarder {
    configured: Vec<SocketAddr>,
    default: ArcSwap<Upstreams>,
    /// Conditional zones, most labels first.
    zones: Vec<(NameKey, Arc<Upstreams>)>,
    settings: ForwardSettings,
    cache: ForwardCache,
    in_flight: Mutex<HashMap<Box<[u8]>, Waiters>>,
    concurrent: AtomicUsize,
    guard: LoopGuard,
    loops_logged: Mutex<HashSet<SocketAddr>>,
    listen: Vec<SocketAddr>,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forwarder {
    /// A forwarder for `settings`; `listen` are srvd's own DNS addresses (never upstreams).
    pub fn new(
        settings: ForwardSettings,
        listen: &[SocketAddr],
        metrics: Arc<Metrics>,
    ) -> Arc<Forwarder> {
        let configured = own_dropped(&settings.upstreams, listen, "--forward");
        let mut zones: Vec<(NameKey, Arc<Upstreams>)> = settings
            .zones
            .iter()
            .map(|(zone, addrs)| {
                let addrs = own_dropped(addrs, listen, "--forward-zone");
                (
                    NameKey::new(zone),
                    Arc::new(Upstreams::new(&addrs, settings.policy)),
                )
            })
            .collect();
        zones.sort_by_key(|(k, _)| std::cmp::Reverse(k.label_count()));
        let mut default = configured.clone();
        if let Some(path) = &settings.resolv_conf {
            default.extend(read_resolv_conf(path, listen));
        }
        Arc::new(Forwarder {
            default: ArcSwap::from_pointee(Upstreams::new(&default, settings.policy)),
            configured,
            zones,
            cache: ForwardCache::new(settings.cache_bytes),
            in_flight: Mutex::default(),
            concurrent: AtomicUsize::new(0),
            guard: LoopGuard::default(),
            loops_logged: Mutex::default(),
            listen: listen.to_vec(),
            settings,
            metrics,
        })
    }

    /// The upstreams for a name: the longest matching `--forward-zone`, else the default set.
    fn upstreams_for(&self, name: &Name) -> Arc<Upstreams> {
        let key = NameKey::new(name);
        self.zones
            .iter()
            .find(|(zone, _)| key.is_at_or_below(zone))
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| self.default.load_full())
    }

    /// A fresh cached answer at `now`, if any (no waiting): from the worker's own `hot`
    /// copies first, then the shared cache (whose hit is copied into `hot`).
    pub fn cached(&self, q: &Question, hot: &mut HotCache, now: Instant) -> Option<Served> {
        cache::key_into(q, &mut hot.key);
        let hit = match hot.fresh(now) {
            Some(hit) => hit,
            None => {
                let hit = self.cache.get(&hot.key).filter(|r| r.is_fresh(now))?;
                hot.keep(hit.clone());
                hit
            }
        };
        // A miss is counted once, by `resolve`, which the caller goes on to.
        self.metrics.forward_cache_hit();
        Some(Served::fresh(hit, now))
    }

    /// If an incoming question is one srvd itself sent upstream, the loop is cut: the
    /// upstream is marked down (logged once, counted) and the caller answers SERVFAIL.
    pub fn looped(&self, question: &[u8]) -> bool {
        let Some(upstream) = self.guard.looped(question) else {
            return false;
        };
        let now = Instant::now();
        for set in
            std::iter::once(self.default.load_full()).chain(self.zones.iter().map(|z| z.1.clone()))
        {
            set.list
                .iter()
                .filter(|u| u.addr == upstream)
                .for_each(|u| u.looped(now));
        }
        self.metrics.forward_loop(upstream);
        self.metrics.forward_upstream_up(upstream, false);
        if lock(&self.loops_logged).insert(upstream) {
            warn!(%upstream, "forwarding loop: a query srvd sent to this upstream came back to srvd; the upstream is marked down");
        }
        true
    }

    /// Resolve a question: the cache, else the upstreams (one query per question in flight).
    pub async fn resolve(self: &Arc<Self>, q: Question) -> Served {
        let key = cache::key(&q);
        let now = Instant::now();
        let held = self.cache.get(&key);
        if let Some(r) = held.as_ref().filter(|r| r.is_fresh(now)) {
            self.metrics.forward_cache_hit();
            return Served::fresh(r.clone(), now);
        }
        self.metrics.forward_cache("miss");
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut map = lock(&self.in_flight);
            match map.get_mut(&key) {
                Some(waiters) => {
                    waiters.push(tx);
                    false
                }
                None => {
                    map.insert(key.clone(), vec![tx]);
                    true
                }
            }
        };
        if lead {
            let this = self.clone();
            tokio::spawn(async move { this.lead(key, q, held).await });
        }
        match tokio::time::timeout(QUERY_BUDGET + Duration::from_millis(500), rx).await {
            Ok(Ok(served)) => served,
            _ => Served::rcode(ResponseCode::ServFail),
        }
    }

    /// Ask the upstreams for everyone waiting on `key`, cache the outcome, hand it out.
    async fn lead(self: Arc<Self>, key: Box<[u8]>, q: Question, held: Option<Arc<Resolution>>) {
        let served =
            if self.concurrent.fetch_add(1, Ordering::AcqRel) >= self.settings.max_concurrent {
                self.metrics.forward_refused();
                Served::rcode(ResponseCode::Refused)
            } else {
                let outcome = self.ask_upstreams(&q).await;
                match (outcome, held) {
                    (Some(resolution), _) => {
                        let resolution = Arc::new(resolution);
                        self.cache.store(key.clone(), resolution.clone());
                        Served::fresh(resolution, Instant::now())
                    }
                    (None, Some(stale)) if !stale.failure => {
                        self.metrics.forward_cache("stale");
                        Served {
                            age: 0,
                            resolution: stale,
                            stale: true,
                        }
                    }
                    (None, _) => {
                        let failure = Arc::new(Resolution::failure());
                        self.cache.store(key.clone(), failure.clone());
                        Served::fresh(failure, Instant::now())
                    }
                }
            };
        self.concurrent.fetch_sub(1, Ordering::AcqRel);
        let waiters = lock(&self.in_flight).remove(&key).unwrap_or_default();
        for waiter in waiters {
            let _ = waiter.send(served.clone());
        }
    }

    /// Try the upstreams within the budget; `None` when none gave a usable answer.
    async fn ask_upstreams(&self, q: &Question) -> Option<Resolution> {
        let upstreams = self.upstreams_for(&q.name);
        let started = Instant::now();
        let deadline = started + QUERY_BUDGET;
        let order = upstreams.order(started);
        let tries = order.len() * 2;
        for upstream in order.iter().cycle().take(tries) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(resolution) = self
                .try_one(upstream, q, (now + TRY_TIMEOUT).min(deadline))
                .await
            {
                return Some(resolution);
            }
        }
        None
    }

    /// One try with one upstream; health and metrics updated.
    async fn try_one(
        &self,
        upstream: &Upstream,
        q: &Question,
        deadline: Instant,
    ) -> Option<Resolution> {
        let query = exchange::encode_query(q);
        self.guard.sending(query.question(), upstream.addr);
        let started = Instant::now();
        let result = exchange::exchange(upstream.addr, &query, deadline).await;
        self.guard.done(query.question());
        self.metrics.forward_latency(started.elapsed());
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                let label = match e {
                    exchange::ExchangeError::Timeout => "timeout",
                    _ => "error",
                };
                self.metrics.forward_query(upstream.addr, label);
                self.failed(upstream);
                return None;
            }
        };
        let rcode = reply.metadata.response_code;
        self.metrics
            .forward_query(upstream.addr, &crate::metrics::rcode_name(rcode));
        if matches!(
            rcode,
            ResponseCode::ServFail
                | ResponseCode::Refused
                | ResponseCode::NotImp
                | ResponseCode::FormErr
        ) {
            self.failed(upstream);
            return None;
        }
        if upstream.succeeded() {
            info!(upstream = %upstream.addr, "upstream answers again");
            self.metrics.forward_upstream_up(upstream.addr, true);
        }
        let ad = reply.metadata.authentic_data;
        Some(Resolution::from_reply(
            rcode,
            ad,
            reply.answers,
            reply.authorities,
            reply.additionals,
        ))
    }

    fn failed(&self, upstream: &Upstream) {
        if upstream.failed(Instant::now()) {
            self.metrics.forward_upstream_up(upstream.addr, false);
        }
    }

    /// Background work: watch the resolv.conf file, and probe each upstream once for a loop.
    pub fn start(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            this.probe_all().await;
            let Some(path) = this.settings.resolv_conf.clone() else {
                return;
            };
            let mut seen = std::fs::read(&path).ok();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(RESOLV_CONF_POLL) => {},
                    _ = stop.cancelled() => return,
                }
                let now = std::fs::read(&path).ok();
                if now.is_some() && now != seen {
                    seen = now;
                    this.reload_resolv_conf(&path);
                    this.probe_all().await;
                }
            }
        })
    }

    fn reload_resolv_conf(&self, path: &std::path::Path) {
        let mut addrs = self.configured.clone();
        addrs.extend(read_resolv_conf(path, &self.listen));
        info!(path = %path.display(), upstreams = ?addrs, "forwarding: resolv.conf changed, upstreams reloaded");
        self.default
            .store(Arc::new(Upstreams::new(&addrs, self.settings.policy)));
    }

    /// Ask every upstream for a random name: if it comes back to srvd, that upstream loops.
    async fn probe_all(&self) {
        let mut all: Vec<Arc<Upstream>> = self.default.load().list.clone();
        all.extend(self.zones.iter().flat_map(|(_, u)| u.list.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for upstream in all {
            let label = format!("srvd-loop-probe-{:016x}", rand::random::<u64>());
            let Ok(name) = Name::from_labels([label.as_bytes()]) else {
                continue;
            };
            let q = Question {
                name,
                qtype: 13,
                qclass: 1,
                dnssec_ok: false,
                checking_disabled: false,
            };
            let query = exchange::encode_query(&q);
            let question = query.question();
            self.guard
                .probing(&question[..question.len() - 4], upstream.addr);
            let deadline = Instant::now() + TRY_TIMEOUT;
            tasks.spawn(async move {
                let _ = exchange::exchange(upstream.addr, &query, deadline).await;
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Forwarded answers cached (for metrics).
    pub fn cache_entries(&self) -> u64 {
        self.cache.entries()
    }
}

/// `addrs` without srvd's own listen addresses (each dropped one warned about).
fn own_dropped(addrs: &[SocketAddr], listen: &[SocketAddr], flag: &str) -> Vec<SocketAddr> {
    addrs
        .iter()
        .copied()
        .filter(|a| {
            let own = resolv_conf::is_own(*a, listen);
            if own {
                warn!(upstream = %a, "{flag}: that is srvd's own address (a loop); not used");
            }
            !own
        })
        .collect()
}

fn read_resolv_conf(path: &std::path::Path, listen: &[SocketAddr]) -> Vec<SocketAddr> {
    match resolv_conf::read(path, listen) {
        Ok((upstreams, own)) => {
            for addr in own {
                warn!(path = %path.display(), upstream = %addr, "resolv.conf names srvd itself (a loop); not used");
            }
            if upstreams.is_empty() {
                warn!(path = %path.display(), "resolv.conf names no usable nameserver");
            }
            upstreams
        }
        Err(e) => {
            warn!(path = %path.display(), "cannot read resolv.conf: {e}");
            Vec::new()
        }
    }
}
