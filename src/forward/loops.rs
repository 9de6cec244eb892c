//! Detecting forwarding loops: srvd asking an upstream that asks srvd again.
//!
//! Every question srvd sends upstream is registered while it is in flight, spelled exactly as
//! sent (random letter case, DNS 0x20). A query arriving at srvd with that very spelling is
//! srvd's own question come back: the upstream it was sent to loops (directly, or through
//! other forwarders that keep the letter case, as dnsmasq, unbound and CoreDNS do). srvd then
//! answers that looped query SERVFAIL at once (so the chain unwinds instead of waiting on
//! itself), marks the upstream down, logs it once and counts it. For forwarders that fold the
//! case, each upstream is also probed with a random name at start and whenever its list is
//! read: a probe name arriving in any case is a loop just the same.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// Questions in flight upstream, and probe names.
#[derive(Default)]
pub struct LoopGuard {
    /// Exact question bytes (name, type, class) -> (upstream asked, queries in flight).
    in_flight: Mutex<HashMap<Vec<u8>, (SocketAddr, usize)>>,
    /// Lower-cased probe names (wire form) -> the upstream probed.
    probes: Mutex<HashMap<Vec<u8>, SocketAddr>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name part of a question section (everything but type and class).
fn name_of(question: &[u8]) -> &[u8] {
    &question[..question.len().saturating_sub(4)]
}

impl LoopGuard {
    /// `question` (as sent) is now in flight to `upstream`.
    pub fn sending(&self, question: &[u8], upstream: SocketAddr) {
        let mut map = lock(&self.in_flight);
        map.entry(question.to_vec())
            .and_modify(|e| e.1 += 1)
            .or_insert((upstream, 1));
    }

    /// `question` is no longer in flight.
    pub fn done(&self, question: &[u8]) {
        let mut map = lock(&self.in_flight);
        if let Some(entry) = map.get_mut(question) {
            entry.1 -= 1;
            if entry.1 == 0 {
                map.remove(question);
            }
        }
    }

    /// A probe for `upstream` with this (wire) name is about to be sent.
    pub fn probing(&self, name: &[u8], upstream: SocketAddr) {
        lock(&self.probes).insert(name.to_ascii_lowercase(), upstream);
    }

    /// Which upstream loops, if the incoming `question` is one of srvd's own.
    pub fn looped(&self, question: &[u8]) -> Option<SocketAddr> {
        if let Some((upstream, _)) = lock(&self.in_flight).get(question) {
            return Some(*upstream);
        }
        let probes = lock(&self.probes);
        if probes.is_empty() {
            return None;
        }
        probes.get(&name_of(question).to_ascii_lowercase()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_questions_are_recognized_by_spelling_and_probes_in_any_case() {
        let guard = LoopGuard::default();
        let up: SocketAddr = "127.0.0.9:53".parse().unwrap();
        let sent = b"\x03wWw\x07eXAmplE\x03CoM\x00\x00\x01\x00\x01";
        guard.sending(sent, up);
        assert_eq!(guard.looped(sent), Some(up));
        let other = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(
            guard.looped(other),
            None,
            "a client's own spelling is not a loop"
        );
        guard.done(sent);
        assert_eq!(guard.looped(sent), None);
        guard.probing(b"\x05pRoBe\x00", up);
        assert_eq!(guard.looped(b"\x05PROBE\x00\x00\x0d\x00\x01"), Some(up));
    }
}
