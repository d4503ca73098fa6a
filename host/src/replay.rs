//! Replay: runs a checked scenario through a [`Gateway`] on virtual time and writes
//! the transcript, one JSON action per line.

use std::io::Write;

use crate::gateway::{EventError, Gateway};
use crate::outbound::ScriptedReceiver;
use crate::scenario::{Item, ScenarioError, ScenarioLine};

/// How long after the last event replay keeps firing timers. Durations are capped at
/// 7 days, so any cycle started by the last event ends well within this.
pub const DEFAULT_TAIL_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Why a replay stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An event was refused.
    #[error("line {line}: {source}")]
    Event {
        /// Scenario line.
        line: usize,
        /// Why.
        source: EventError,
    },
    /// The scenario, read as it is replayed, turned out bad after all (it changed
    /// since it was checked, or could not be read again).
    #[error("{0} (the scenario changed after it was checked, or could not be read again)")]
    Scenario(#[from] ScenarioError),
    /// The transcript could not be written.
    #[error("cannot write the transcript: {0}")]
    Write(#[from] std::io::Error),
}

/// What a replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Events handled.
    pub events: usize,
    /// Actions written.
    pub actions: usize,
    /// Virtual time at the end.
    pub end_ms: u64,
}

/// Lines between two progress reports.
pub const PROGRESS_EVERY: usize = 8192;

/// Replays `lines`, then fires timers for up to `tail_ms` after the last event.
/// `webhook_response` lines go to `receiver`, which should be the gateway's
/// [`crate::outbound::Outbound`] (a clone of it).
pub fn replay(
    gateway: &mut Gateway,
    receiver: &ScriptedReceiver,
    lines: &[ScenarioLine],
    tail_ms: u64,
    out: &mut impl Write,
) -> Result<ReplaySummary, ReplayError> {
    replay_with_progress(
        gateway,
        receiver,
        lines.iter().cloned().map(Ok),
        tail_ms,
        out,
        |_| {},
    )
}

/// [`replay`] of lines read one at a time (see [`crate::scenario::read`]), telling
/// `progress` how many lines are done every [`PROGRESS_EVERY`] lines and at the end
/// (for a progress bar on a terminal).
pub fn replay_with_progress(
    gateway: &mut Gateway,
    receiver: &ScriptedReceiver,
    lines: impl IntoIterator<Item = Result<ScenarioLine, ScenarioError>>,
    tail_ms: u64,
    out: &mut impl Write,
    mut progress: impl FnMut(usize),
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let mut done = 0;
    for line in lines {
        if done % PROGRESS_EVERY == 0 {
            progress(done);
        }
        done += 1;
        let line = line?;
        match &line.item {
            Item::Event(event) => {
                gateway
                    .handle(line.at_ms, event)
                    .map_err(|source| ReplayError::Event {
                        line: line.line,
                        source,
                    })?;
                summary.events += 1;
            }
            Item::WebhookResponse {
                webhook,
                answer,
                repeat,
            } => {
                gateway.advance_to(line.at_ms.saturating_sub(1));
                receiver.push(webhook, answer.clone(), *repeat);
            }
        }
        summary.actions += write_actions(gateway, out)?;
    }
    let horizon = gateway.now().saturating_add(tail_ms);
    while let Some(due) = gateway.next_due().filter(|due| *due <= horizon) {
        gateway.advance_to(due);
        summary.actions += write_actions(gateway, out)?;
    }
    summary.end_ms = gateway.now();
    out.flush()?;
    progress(done);
    Ok(summary)
}

fn write_actions(gateway: &mut Gateway, out: &mut impl Write) -> std::io::Result<usize> {
    let mut written = 0;
    for action in gateway.drain_actions() {
        serde_json::to_writer(&mut *out, &action)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    Ok(written)
}
