//! The bounds the core keeps to, whatever the configuration: time, redeliveries,
//! follow-ups, what it remembers for log-once reporting.

use std::time::{Duration, UNIX_EPOCH};

/// The earliest a timer may fire, after the time it is set at (see `timers.set` in
/// the WIT): a floor that keeps a plugin from spinning the host through timers.
pub const MIN_TIMER_DELAY_MS: u64 = 1_000;

/// The latest host time accepted: the last millisecond of year 9999, which RFC 3339
/// timestamps can still show.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Times a timer whose hook failed is delivered again before it is dropped.
pub const MAX_TIMER_REDELIVERIES: u8 = 3;

/// Follow-up hooks (a plugin's own close, webhook outcomes known at once) one tenant
/// may cause from one event or timer before it is treated as failing: a plugin that
/// answers every webhook outcome with another request would otherwise never stop.
pub const MAX_FOLLOW_UPS: u32 = 256;

/// Unknown tenant names remembered for log-once reporting; beyond this, debug only.
pub const MAX_UNKNOWN_TENANTS_REMEMBERED: usize = 1024;

/// Milliseconds since the Unix epoch as RFC 3339 (UTC, whole seconds); times past
/// [`MAX_TIME_MS`] show as its last second.
pub fn rfc3339(ms: u64) -> String {
    let ms = ms.min(MAX_TIME_MS);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
