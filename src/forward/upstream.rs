//! Upstream resolvers: their addresses, health, and the order a query tries them in.
//!
//! An upstream that fails twice in a row (timeout, connection error, SERVFAIL, REFUSED, a
//! broken reply) is marked down and tried again at most every [`RETRY_DOWN`]; one found to
//! loop back to srvd is down the same way. When every upstream is down, all are tried anyway
//! (stale health beats certain failure). Policies: `sequential` (the resolv.conf meaning:
//! in order), `random`, `round_robin`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use thiserror::Error;

/// How long a down upstream is left alone.
pub const RETRY_DOWN: Duration = Duration::from_secs(30);
/// Consecutive failures that mark an upstream down.
const FAILURES_TO_DOWN: u32 = 2;

/// The order upstreams are tried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// In the configured order (resolv.conf semantics).
    #[default]
    Sequential,
    /// A fresh random order per query.
    Random,
    /// Each query starts one further along the list.
    RoundRobin,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("forward policy {0:?} is not sequential, random or round_robin")]
pub struct BadPolicy(String);

impl std::str::FromStr for Policy {
    type Err = BadPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sequential" => Ok(Policy::Sequential),
            "random" => Ok(Policy::Random),
            "round_robin" | "round-robin" => Ok(Policy::RoundRobin),
            other => Err(BadPolicy(other.to_string())),
        }
    }
}

/// Why an upstream address is not usable.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "{0:?} is not an IP address with an optional port (192.0.2.1, 192.0.2.1:5353, [2001:db8::1]:53, 2001:db8::1)"
)]
pub struct BadAddress(pub String);

/// Parse `ADDR[:PORT]` (IPv6 with a port in brackets); port 53 by default.
pub fn parse_address(text: &str) -> Result<SocketAddr, BadAddress> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| BadAddress(text.to_string()))
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    down_until: Option<Instant>,
}

/// One upstream and its health.
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    health: Mutex<Health>,
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Self {
        Upstream {
            addr,
            health: Mutex::default(),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up, or down long enough to deserve another try.
    pub fn is_usable(&self, now: Instant) -> bool {
        self.health().down_until.is_none_or(|until| now >= until)
    }

    /// True while marked down.
    pub fn is_down(&self, now: Instant) -> bool {
        !self.is_usable(now)
    }

    /// An answer arrived: healthy again. Returns true when it was down before.
    pub fn succeeded(&self) -> bool {
        let mut h = self.health();
        let was_down = h.down_until.is_some();
        *h = Health::default();
        was_down
    }

    /// A try failed. Returns true when this marks it down (now or again).
    pub fn failed(&self, now: Instant) -> bool {
        let mut h = self.health();
        h.consecutive_failures += 1;
        if h.consecutive_failures >= FAILURES_TO_DOWN {
            h.down_until = Some(now + RETRY_DOWN);
            return true;
        }
        false
    }

    /// It loops back to srvd: down at once.
    pub fn looped(&self, now: Instant) {
        let mut h = self.health();
        h.consecutive_failures = FAILURES_TO_DOWN;
        h.down_until = Some(now + RETRY_DOWN);
    }
}

/// A set of upstreams with a policy.
#[derive(Debug)]
pub struct Upstreams {
    pub list: Vec<std::sync::Arc<Upstream>>,
    policy: Policy,
    next: AtomicUsize,
}

impl Upstreams {
    pub fn new(addrs: &[SocketAddr], policy: Policy) -> Self {
        Upstreams {
            list: addrs
                .iter()
                .map(|a| std::sync::Arc::new(Upstream::new(*a)))
                .collect(),
            policy,
            next: AtomicUsize::new(0),
        }
    }

    /// The order to try the upstreams in for one query: usable ones by the policy, then (if
    /// every one is down) all of them anyway.
    pub fn order(&self, now: Instant) -> Vec<std::sync::Arc<Upstream>> {
        let n = self.list.len();
        let mut order: Vec<usize> = (0..n).collect();
        match self.policy {
            Policy::Sequential => {}
            Policy::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % n.max(1);
                order.rotate_left(start);
            }
            Policy::Random => {
                use rand::seq::SliceRandom;
                order.shuffle(&mut rand::rng());
            }
        }
        let usable: Vec<_> = order
            .iter()
            .filter(|&&i| self.list[i].is_usable(now))
            .map(|&i| self.list[i].clone())
            .collect();
        if usable.is_empty() {
            order.iter().map(|&i| self.list[i].clone()).collect()
        } else {
            usable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_port_53() {
        let cases = [
            ("192.0.2.1", "192.0.2.1:53"),
            ("192.0.2.1:5353", "192.0.2.1:5353"),
            ("2001:db8::1", "[2001:db8::1]:53"),
            ("[2001:db8::1]", "[2001:db8::1]:53"),
            ("[2001:db8::1]:54", "[2001:db8::1]:54"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_address(text).unwrap().to_string(), want, "{text}");
        }
        assert!(parse_address("dns.example").is_err());
    }

    #[test]
    fn two_failures_mark_down_and_all_down_tries_all() {
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:53".parse().unwrap();
        let set = Upstreams::new(&[a, b], Policy::Sequential);
        let now = Instant::now();
        assert!(!set.list[0].failed(now));
        assert!(set.list[0].failed(now));
        let order: Vec<_> = set.order(now).iter().map(|u| u.addr).collect();
        assert_eq!(order, vec![b], "a is down");
        set.list[1].looped(now);
        let order: Vec<_> = set.order(now).iter().map(|u| u.addr).collect();
        assert_eq!(order, vec![a, b], "all down: try all");
        let later = now + RETRY_DOWN;
        assert!(set.list[0].is_usable(later), "retried after {RETRY_DOWN:?}");
        assert!(set.list[0].succeeded());
        assert!(set.list[0].is_usable(now));
    }

    #[test]
    fn round_robin_starts_one_further_each_time() {
        let addrs: Vec<SocketAddr> = ["192.0.2.1:53", "192.0.2.2:53", "192.0.2.3:53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let set = Upstreams::new(&addrs, Policy::RoundRobin);
        let now = Instant::now();
        let firsts: Vec<_> = (0..4).map(|_| set.order(now)[0].addr).collect();
        assert_eq!(firsts, vec![addrs[0], addrs[1], addrs[2], addrs[0]]);
    }
}
