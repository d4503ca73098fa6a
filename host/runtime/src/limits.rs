//! The bounds every plugin instance runs under, as the operator sets them and as the
//! contract reports them to plugins (`host-limits`).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bindings::chat_gateway::plugin::types::HostLimits;

/// Largest webhook `data` object, in bytes of JSON (push services cap bodies near 4 KB).
pub const MAX_WEBHOOK_DATA_BYTES: usize = 3 * 1024;

/// Bounds on each plugin instance. A hook that exceeds them traps; the host replaces
/// the instance and backs the tenant off.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock budget of one hook call per event it carries, in milliseconds
    /// (epoch interruption).
    pub hook_time_ms: u64,
    /// Linear memory an instance may grow to, in MiB.
    pub memory_mib: u64,
    /// Actions (posts, closes, timers, requests, state) a hook call may take per event
    /// it carries, counted against the event of the session each names. Also read
    /// under its name before contract 0.4.0, `actions_per_hook`.
    #[serde(alias = "actions_per_hook")]
    pub actions_per_event: usize,
    /// Longest text a plugin may post, in bytes.
    pub max_post_bytes: usize,
    /// Largest timer payload, in bytes.
    pub max_timer_payload_bytes: usize,
    /// Pending timers per session.
    pub timers_per_session: usize,
    /// Pending timers per tenant, across its sessions: bounds what a runaway plugin
    /// can make the host keep (about 170 bytes a timer).
    pub timers_per_tenant: usize,
    /// Largest state a plugin keeps per session (`sessions.set-state`), in bytes.
    pub max_session_state_bytes: usize,
    /// Webhook deliveries a tenant may have under way (on the wire or waiting for a
    /// retry); further sends are refused. Sized for bursts (thousands of warnings due in
    /// the same second after a restart or a broadcast) while bounding a runaway
    /// plugin: at most about 40 MB of queued bodies per tenant. How many are on the
    /// wire at once is bounded separately by the sender.
    pub http_in_flight_per_tenant: usize,
}

impl Limits {
    /// Checks every bound against its allowed range; errors are `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let ranges: [(&str, u64, u64, u64); 9] = [
            ("hook_time_ms", self.hook_time_ms, 1, 60_000),
            ("memory_mib", self.memory_mib, 1, 4096),
            (
                "actions_per_event",
                self.actions_per_event as u64,
                1,
                10_000,
            ),
            ("max_post_bytes", self.max_post_bytes as u64, 1, 1 << 20),
            (
                "max_timer_payload_bytes",
                self.max_timer_payload_bytes as u64,
                16,
                1 << 16,
            ),
            (
                "timers_per_session",
                self.timers_per_session as u64,
                1,
                1_000,
            ),
            (
                "timers_per_tenant",
                self.timers_per_tenant as u64,
                1,
                100_000_000,
            ),
            (
                "max_session_state_bytes",
                self.max_session_state_bytes as u64,
                16,
                1 << 16,
            ),
            (
                "http_in_flight_per_tenant",
                self.http_in_flight_per_tenant as u64,
                1,
                100_000,
            ),
        ];
        for (name, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err((name, format!("{value} is out of range ({low} to {high})")));
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hook_time_ms: 100,
            memory_mib: 32,
            actions_per_event: 64,
            max_post_bytes: 16 * 1024,
            max_timer_payload_bytes: 1024,
            timers_per_session: 16,
            timers_per_tenant: 1_000_000,
            max_session_state_bytes: 1024,
            http_in_flight_per_tenant: 10_000,
        }
    }
}

impl Limits {
    /// The limits as the contract reports them to plugins, so that a plugin can stay
    /// within them instead of discovering them by trapping.
    pub fn to_host_limits(&self) -> HostLimits {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        HostLimits {
            actions_per_event: clamp(self.actions_per_event),
            max_post_bytes: clamp(self.max_post_bytes),
            max_timer_payload_bytes: clamp(self.max_timer_payload_bytes),
            timers_per_session: clamp(self.timers_per_session),
            timers_per_tenant: clamp(self.timers_per_tenant),
            max_webhook_data_bytes: clamp(MAX_WEBHOOK_DATA_BYTES),
            max_session_state_bytes: clamp(self.max_session_state_bytes),
        }
    }
}
