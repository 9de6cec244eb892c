//! Forwarded answers, cached by question (name, type, class, DO, CD).
//!
//! - Positive answers live for the smallest TTL of their records (at most [`MAX_TTL`]); TTLs
//!   count down from the upstream's as the entry ages.
//! - Negative answers (NXDOMAIN, NODATA) live for `min(SOA TTL, SOA minimum)` (RFC 2308 §5),
//!   at most [`MAX_NEGATIVE_TTL`]; without an SOA, [`NO_SOA_TTL`].
//! - Failures (SERVFAIL, every upstream timed out) live [`FAILURE_TTL`] (RFC 9520 §3.2: at
//!   least one second, at most five minutes) and never replace a good entry.
//! - Every entry stays [`STALE_FOR`] past its expiry to be served stale (RFC 8767) when every
//!   upstream fails, with TTL [`STALE_TTL`].
//!
//! Bounded by bytes. Entirely separate from the authoritative answer cache: no snapshot
//! change touches it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, Record, RecordType};

use super::exchange::Question;

/// Longest a positive answer is kept fresh.
pub const MAX_TTL: u32 = 86_400;
/// Longest a negative answer is kept.
pub const MAX_NEGATIVE_TTL: u32 = 3_600;
/// A negative answer without an SOA.
pub const NO_SOA_TTL: u32 = 5;
/// A failure (RFC 9520).
pub const FAILURE_TTL: u32 = 2;
/// How long past its expiry an entry may still be served stale (RFC 8767 §5 suggests 1-3
/// days; entries leave earlier when the cache is full).
pub const STALE_FOR: Duration = Duration::from_secs(86_400);
/// TTL of a stale answer (RFC 8767 §4).
pub const STALE_TTL: u32 = 30;

/// An upstream's answer to one question.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The upstream set AD.
    pub authentic_data: bool,
    /// A failure (no usable answer from any upstream).
    pub failure: bool,
    pub stored_at: Instant,
    /// Seconds the entry is fresh.
    pub ttl: u32,
}

impl Resolution {
    /// A failure: SERVFAIL, cached briefly.
    pub fn failure() -> Resolution {
        Resolution {
            rcode: ResponseCode::ServFail,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            authentic_data: false,
            failure: true,
            stored_at: Instant::now(),
            ttl: FAILURE_TTL,
        }
    }

    /// An upstream reply's sections (OPT left out), with its cache lifetime.
    pub fn from_reply(
        rcode: ResponseCode,
        authentic_data: bool,
        answers: Vec<Record>,
        authorities: Vec<Record>,
        additionals: Vec<Record>,
    ) -> Resolution {
        let mut r = Resolution {
            rcode,
            answers,
            authorities,
            additionals,
            authentic_data,
            failure: false,
            stored_at: Instant::now(),
            ttl: 0,
        };
        r.ttl = r.lifetime();
        r
    }

    fn lifetime(&self) -> u32 {
        let negative = self.rcode == ResponseCode::NXDomain
            || (self.rcode == ResponseCode::NoError && self.answers.is_empty());
        if negative {
            let soa = self.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            });
            return soa.map_or(NO_SOA_TTL, |t| t.min(MAX_NEGATIVE_TTL));
        }
        self.answers
            .iter()
            .chain(&self.authorities)
            .chain(&self.additionals)
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(|r| r.ttl)
            .min()
            .unwrap_or(NO_SOA_TTL)
            .min(MAX_TTL)
    }

    /// Whole seconds since it was stored.
    pub fn age(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.stored_at).as_secs()).unwrap_or(u32::MAX)
    }

    /// Still within its TTL.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.stored_at) < Duration::from_secs(u64::from(self.ttl))
    }

    fn weight(&self) -> u32 {
        let records = self.answers.len() + self.authorities.len() + self.additionals.len();
        u32::try_from(200 + records * 160).unwrap_or(u32::MAX)
    }
}

/// The cache key of a question.
pub fn key(q: &Question) -> Box<[u8]> {
    let mut k = Vec::with_capacity(64);
    key_into(q, &mut k);
    k.into()
}

/// [`key`] written into a reused buffer (the cache is looked up by the bytes: no allocation
/// per query on a hit).
pub fn key_into(q: &Question, k: &mut Vec<u8>) {
    k.clear();
    for label in q.name.iter() {
        k.push(label.len() as u8);
        k.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    k.push(0);
    k.extend_from_slice(&q.qtype.to_be_bytes());
    k.extend_from_slice(&q.qclass.to_be_bytes());
    k.push(u8::from(q.dnssec_ok) | u8::from(q.checking_disabled) << 1);
}

struct Lifetime;

impl moka::Expiry<Box<[u8]>, Arc<Resolution>> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &Box<[u8]>,
        value: &Arc<Resolution>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let stale = if value.failure {
            Duration::ZERO
        } else {
            STALE_FOR
        };
        Some(Duration::from_secs(u64::from(value.ttl)) + stale)
    }
}

/// The forwarded-answer cache.
pub struct ForwardCache {
    entries: moka::sync::Cache<Box<[u8]>, Arc<Resolution>>,
}

impl ForwardCache {
    /// At most about `bytes` bytes of answers.
    pub fn new(bytes: u64) -> Self {
        ForwardCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, v: &Arc<Resolution>| v.weight())
                .expire_after(Lifetime)
                .build(),
        }
    }

    /// The entry for `key`, fresh or stale.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Resolution>> {
        self.entries.get(key)
    }

    /// Store `resolution` unless it is a failure and a good entry (fresh or stale) is held.
    pub fn store(&self, key: Box<[u8]>, resolution: Arc<Resolution>) {
        if resolution.failure && self.get(&key).is_some_and(|held| !held.failure) {
            return;
        }
        self.entries.insert(key, resolution);
    }

    pub fn entries(&self) -> u64 {
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA};

    fn record(ttl: u32, data: RData) -> Record {
        Record::from_rdata(Name::from_ascii("x.example.").unwrap(), ttl, data)
    }

    #[test]
    fn lifetimes_follow_rfc_2308_and_9520() {
        let a = record(300, RData::A(A::new(192, 0, 2, 1)));
        let positive =
            Resolution::from_reply(ResponseCode::NoError, false, vec![a], vec![], vec![]);
        assert_eq!(positive.ttl, 300);
        let soa = |ttl, minimum| {
            let n = Name::from_ascii("example.").unwrap();
            record(ttl, RData::SOA(SOA::new(n.clone(), n, 1, 1, 1, 1, minimum)))
        };
        let nx = Resolution::from_reply(
            ResponseCode::NXDomain,
            false,
            vec![],
            vec![soa(600, 60)],
            vec![],
        );
        assert_eq!(nx.ttl, 60, "min(SOA TTL, SOA minimum)");
        let nodata = Resolution::from_reply(
            ResponseCode::NoError,
            false,
            vec![],
            vec![soa(10, 99_999)],
            vec![],
        );
        assert_eq!(nodata.ttl, 10);
        let huge = Resolution::from_reply(
            ResponseCode::NXDomain,
            false,
            vec![],
            vec![soa(99_999, 99_999)],
            vec![],
        );
        assert_eq!(huge.ttl, MAX_NEGATIVE_TTL);
        let bare = Resolution::from_reply(ResponseCode::NXDomain, false, vec![], vec![], vec![]);
        assert_eq!(bare.ttl, NO_SOA_TTL);
    }

    #[test]
    fn a_failure_never_replaces_a_good_entry() {
        let cache = ForwardCache::new(1 << 20);
        let key: Box<[u8]> = Box::from(&b"k"[..]);
        let a = record(300, RData::A(A::new(192, 0, 2, 1)));
        let good = Arc::new(Resolution::from_reply(
            ResponseCode::NoError,
            false,
            vec![a],
            vec![],
            vec![],
        ));
        cache.store(key.clone(), good);
        cache.store(key.clone(), Arc::new(Resolution::failure()));
        assert!(!cache.get(&key).unwrap().failure);
    }
}
