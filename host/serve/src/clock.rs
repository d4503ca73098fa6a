//! The wall clock every part of `serve` reads: timers fire on it, webhooks are
//! checked against it, actions are stamped with it.

use std::time::{SystemTime, UNIX_EPOCH};

use autoclose_core::MAX_TIME_MS;

/// The wall clock in ms since the Unix epoch, capped at the host's last instant.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .min(MAX_TIME_MS)
}
