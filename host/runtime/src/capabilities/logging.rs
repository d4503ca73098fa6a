//! `logging`: a plugin's records in the host's log, escaped and bounded.

use crate::bindings::chat_gateway::plugin::logging;
use crate::ids::SessionId;
use crate::state::InstanceState;
use crate::world::World;

/// Longest log line a plugin may write; longer ones are cut.
const MAX_LOG_BYTES: usize = 1024;
/// Log records a plugin may write per event of a call; more are dropped.
const MAX_LOGS_PER_EVENT: u32 = 32;

/// A plugin's log message as the host records it: control characters (newlines above
/// all, which would let a plugin forge log lines) escaped, cut at [`MAX_LOG_BYTES`].
fn log_text(message: String) -> String {
    let mut message = if message.chars().any(char::is_control) {
        let mut escaped = String::with_capacity(message.len() + 8);
        for c in message.chars() {
            if c.is_control() {
                escaped.extend(c.escape_default());
            } else {
                escaped.push(c);
            }
        }
        escaped
    } else {
        message
    };
    if message.len() > MAX_LOG_BYTES {
        let mut cut = MAX_LOG_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

impl<W: World> logging::Host for InstanceState<W> {
    fn log(
        &mut self,
        level: logging::Level,
        session: Option<u64>,
        message: String,
    ) -> wasmtime::Result<()> {
        self.logs_this_call += 1;
        let events = u32::try_from(self.call_sessions.len().max(1)).unwrap_or(u32::MAX);
        let cap = MAX_LOGS_PER_EVENT.saturating_mul(events);
        if self.logs_this_call > cap {
            if self.logs_this_call == cap + 1 {
                tracing::warn!(target: "plugin", tenant = &*self.tenant_name, "plugin exceeded {MAX_LOGS_PER_EVENT} log records per event in one call; dropping the rest");
            }
            return Ok(());
        }
        // Plugins log on the hot path (auto-close writes a debug note for every event
        // it ignores): a record nobody will see costs no more than this check.
        let enabled = match level {
            logging::Level::Debug => tracing::enabled!(target: "plugin", tracing::Level::DEBUG),
            logging::Level::Info => tracing::enabled!(target: "plugin", tracing::Level::INFO),
            logging::Level::Warn => tracing::enabled!(target: "plugin", tracing::Level::WARN),
            logging::Level::Error => tracing::enabled!(target: "plugin", tracing::Level::ERROR),
        };
        if !enabled {
            return Ok(());
        }
        let message = log_text(message);
        let tenant = &*self.tenant_name;
        let session = session
            .and_then(|s| self.external(SessionId(s)))
            .unwrap_or("");
        match level {
            logging::Level::Debug => {
                tracing::debug!(target: "plugin", tenant, session, "{message}")
            }
            logging::Level::Info => tracing::info!(target: "plugin", tenant, session, "{message}"),
            logging::Level::Warn => tracing::warn!(target: "plugin", tenant, session, "{message}"),
            logging::Level::Error => {
                tracing::error!(target: "plugin", tenant, session, "{message}")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_escapes_control_characters_and_cuts_at_a_char_boundary() {
        assert_eq!(log_text("plain text".into()), "plain text");
        assert_eq!(
            log_text("line\nforged\u{7}".into()),
            "line\\nforged\\u{7}",
            "a newline cannot start a forged record"
        );
        let long = "é".repeat(MAX_LOG_BYTES);
        let cut = log_text(long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MAX_LOG_BYTES + '…'.len_utf8());
        assert!(cut.len() >= MAX_LOG_BYTES - 1);
    }
}
