//! Response rate limiting for UDP (RRL, as Knot DNS, NSD and BIND ship it), off by default.
//!
//! A spoofed-source flood makes a DNS server an amplifier aimed at the victim whose address
//! was forged. RRL counts the replies going to each source *prefix* (/24 for IPv4, /56 for
//! IPv6 by default) per *answer*: the question name and type for a positive answer, the zone
//! (the authority record's owner) for NXDOMAIN, NODATA and referrals (so random names under
//! one zone share a bucket), and one bucket for every error. Each bucket is a token bucket of
//! `rate` replies per second (burst: one second's worth). Past the rate a reply is dropped,
//! except every `slip`-th one, which is sent truncated (TC=1, no records): a real client
//! behind a forged-looking prefix retries over TCP and is served, a victim receives a reply
//! no larger than the query.
//!
//! The table is a fixed array of 65,536 atomic buckets indexed by a keyed hash (1 MiB, no
//! allocation per source, no lock); two answers that land in one bucket share its rate,
//! which only ever limits more. TCP is never limited (its sources cannot be forged).

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Buckets in the table (a power of two).
const TABLE: usize = 1 << 16;
/// Milli-tokens per reply.
const COST: u64 = 1000;

/// RRL settings: `rate` 0 means off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlSettings {
    /// Replies per second per bucket.
    pub rate: u32,
    /// Every `slip`-th limited reply is sent truncated (0: never, 1: always).
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for RrlSettings {
    fn default() -> Self {
        RrlSettings {
            rate: 0,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
        }
    }
}

/// What to do with a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send nothing.
    Drop,
    /// Send it truncated ([`slip`]).
    Slip,
}

/// The bucket table.
pub struct Limiter {
    settings: RrlSettings,
    buckets: Box<[AtomicU64]>,
    hasher: RandomState,
    started: Instant,
    limited: AtomicU64,
}

impl Limiter {
    /// `None` when the settings turn RRL off.
    pub fn new(settings: RrlSettings) -> Option<Limiter> {
        (settings.rate > 0).then(|| Limiter {
            settings,
            buckets: (0..TABLE).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
            started: Instant::now(),
            limited: AtomicU64::new(0),
        })
    }

    /// Whether `reply` (a complete encoded reply) may go to `peer`.
    pub fn check(&self, peer: IpAddr, reply: &[u8]) -> Verdict {
        let mut hasher = self.hasher.build_hasher();
        self.hash_prefix(peer, &mut hasher);
        hash_answer(reply, &mut hasher);
        let slot = (hasher.finish() as usize) & (TABLE - 1);
        if self.take(&self.buckets[slot]) {
            return Verdict::Send;
        }
        let n = self.limited.fetch_add(1, Ordering::Relaxed) + 1;
        match self.settings.slip {
            0 => Verdict::Drop,
            slip if n.is_multiple_of(u64::from(slip)) => Verdict::Slip,
            _ => Verdict::Drop,
        }
    }

    fn hash_prefix(&self, peer: IpAddr, hasher: &mut impl Hasher) {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        match peer {
            IpAddr::V4(v4) => {
                let bits = u32::from(self.settings.ipv4_prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                hasher.write_u32(u32::from(v4) & mask);
            }
            IpAddr::V6(v6) => {
                let bits = u32::from(self.settings.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                hasher.write_u128(u128::from(v6) & mask);
            }
        }
    }

    /// Take one reply's worth of tokens from a bucket, refilling it for the time passed.
    fn take(&self, bucket: &AtomicU64) -> bool {
        let now = u32::try_from(self.started.elapsed().as_millis() & 0xFFFF_FFFF).unwrap_or(0);
        let capacity = u64::from(self.settings.rate) * COST;
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let (then, tokens) = ((current >> 32) as u32, current & 0xFFFF_FFFF);
            let elapsed = now.wrapping_sub(then);
            // Another worker's newer `now` reads as a huge gap: no refill then.
            let elapsed = if elapsed > u32::MAX / 2 { 0 } else { elapsed };
            let tokens = if current == 0 {
                capacity
            } else {
                (tokens + u64::from(elapsed) * u64::from(self.settings.rate)).min(capacity)
            };
            let (left, pass) = match tokens.checked_sub(COST) {
                Some(left) => (left, true),
                None => (tokens, false),
            };
            let next = (u64::from(now) << 32) | left.max(1);
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return pass,
                Err(seen) => current = seen,
            }
        }
    }
}

/// Hash what identifies the answer: rcode class, and the question name and type (positive)
/// or the authority owner (negative, referral), or nothing more (errors).
fn hash_answer(reply: &[u8], hasher: &mut impl Hasher) {
    let Some(wire) = Wire::parse(reply) else {
        hasher.write_u8(0xFF);
        return;
    };
    let rcode = reply[3] & 0x0F;
    hasher.write_u8(rcode);
    match rcode {
        0 if wire.answers > 0 => {
            hash_name(reply, 12, hasher);
            hasher.write(wire.qtype);
        }
        0 | 3 => match wire.authority_owner {
            Some(owner) => hash_name(reply, owner, hasher),
            None => hash_name(reply, 12, hasher),
        },
        _ => {}
    }
}

/// Hash the name at `at` (following compression), lower-cased.
fn hash_name(msg: &[u8], mut at: usize, hasher: &mut impl Hasher) {
    for _ in 0..128 {
        let Some(&len) = msg.get(at) else { return };
        match len {
            0 => return,
            l if l & 0xC0 == 0xC0 => {
                let Some(&low) = msg.get(at + 1) else { return };
                at = usize::from(l & 0x3F) << 8 | usize::from(low);
            }
            l => {
                let label = msg.get(at + 1..at + 1 + usize::from(l)).unwrap_or_default();
                hasher.write_u8(l);
                label
                    .iter()
                    .for_each(|b| hasher.write_u8(b.to_ascii_lowercase()));
                at += 1 + usize::from(l);
            }
        }
    }
}

/// Where things are in an encoded message.
struct Wire<'a> {
    qtype: &'a [u8],
    answers: u16,
    /// Offset of the first authority record's owner name.
    authority_owner: Option<usize>,
    /// Byte range of the OPT record, if any.
    opt: Option<(usize, usize)>,
    /// End of the question section.
    question_end: usize,
}

impl<'a> Wire<'a> {
    fn parse(msg: &'a [u8]) -> Option<Wire<'a>> {
        let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
        if msg.len() < 12 || count(4) != 1 {
            return None;
        }
        let (answers, authorities, additionals) = (count(6), count(8), count(10));
        let name_end = skip_name(msg, 12)?;
        let qtype = msg.get(name_end..name_end + 2)?;
        let question_end = name_end + 4;
        let mut at = question_end;
        let mut wire = Wire {
            qtype,
            answers,
            authority_owner: None,
            opt: None,
            question_end,
        };
        let total = usize::from(answers) + usize::from(authorities) + usize::from(additionals);
        for i in 0..total {
            let owner = at;
            let end_of_name = skip_name(msg, at)?;
            let fixed = msg.get(end_of_name..end_of_name + 10)?;
            let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            at = end_of_name + 10 + rdlength;
            if at > msg.len() {
                return None;
            }
            if i == usize::from(answers) && authorities > 0 {
                wire.authority_owner = Some(owner);
            }
            if fixed[..2] == [0, 41] {
                wire.opt = Some((owner, at));
            }
        }
        Some(wire)
    }
}

/// The offset just past the name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Rewrite `reply` as RRL's slip: the header with TC=1, the question, the OPT record if it
/// had one, nothing else (RFC 6891 §7: the OPT stays with its query's answer).
pub fn slip(reply: &mut Vec<u8>) {
    let Some(wire) = Wire::parse(reply) else {
        reply.clear();
        return;
    };
    let opt = wire.opt.map(|(from, to)| reply[from..to].to_vec());
    reply.truncate(wire.question_end);
    reply[2] |= 0x02; // TC
    reply[6..10].fill(0);
    reply[10..12].copy_from_slice(&u16::from(opt.is_some()).to_be_bytes());
    if let Some(opt) = opt {
        reply.extend_from_slice(&opt);
    }
}

#[cfg(test)]
mod tests;
