//! Log lines caused by remote input (bad packets, bad EDNS, full connection tables) are
//! rate-limited: at most one line per interval, with a count of what was suppressed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one warning per `interval`.
pub struct RateLimitedLog {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Log `message()` at warn unless a line went out less than `interval` ago.
    pub fn warn(&self, message: impl FnOnce() -> String) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => state.1 += 1,
            _ => {
                let suppressed = std::mem::take(&mut state.1);
                state.0 = Some(now);
                drop(state);
                if suppressed > 0 {
                    tracing::warn!(suppressed, "{}", message());
                } else {
                    tracing::warn!("{}", message());
                }
            }
        }
    }
}
