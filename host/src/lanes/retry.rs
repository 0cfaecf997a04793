//! Exponential backoff for failed events.

use std::time::Duration;

/// Tries in all of an event whose call runs past its deadline (at most; the
/// policy's `attempts` if fewer): each try costs the whole deadline, and a
/// handler that loops on an event loops again.
pub const DEADLINE_TRIES: u32 = 2;

/// How often, and how patiently, a failing event is tried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included; after the last the event is parked.
    pub attempts: u32,
    /// The wait before the second try; it doubles each time.
    pub base: Duration,
    /// The longest wait between tries.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The wait before try number `attempt` (2 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(2)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = RetryPolicy { attempts: 5, base: Duration::from_millis(100), cap: Duration::from_millis(350) };
        let delays: Vec<_> = (2..=5).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
    }
}
