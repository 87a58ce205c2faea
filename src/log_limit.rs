//! Rate limiting of repeated log lines, so that an outage that fails every
//! request writes a line per interval instead of a line per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    /// When the last line was written, and how many were dropped since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Returns `Some(dropped)` when a line may be written now, with the count
    /// of lines dropped since the last one, or `None` to drop this one.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last_written, dropped) = &mut *state;
        let now = Instant::now();
        if last_written.is_some_and(|at| now.duration_since(at) < self.interval) {
            *dropped += 1;
            return None;
        }
        *last_written = Some(now);
        Some(std::mem::take(dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_dropped_lines() {
        let limiter = LogLimiter::new(Duration::from_millis(50));
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), None);
        assert_eq!(limiter.admit(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limiter.admit(), Some(2));
    }
}
