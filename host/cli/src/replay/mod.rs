//! Replay: runs a checked scenario through a [`Core`] on virtual time and writes
//! the transcript, one JSON action per line.

use std::io::Write;

use crate::scenario::{Item, ScenarioError, ScenarioLine};
use autoclose_core::action::Action;
use autoclose_core::event::GatewayEvent;
use autoclose_core::{Core, EventError};
use autoclose_webhook::outbound::ScriptedReceiver;

pub mod threads;

/// Where a replay's actions go, and what sees the events with them: the JSON Lines
/// transcript ([`JsonLines`]), or an analysis such as `whatif`'s.
///
/// Without batching, each event comes between the actions taken before it (timers
/// due earlier) and the actions that follow from it, so an observer sees both in
/// time order.
pub trait Transcript {
    /// An event, as it is handled.
    fn event(&mut self, _at_ms: u64, _event: &GatewayEvent) {}
    /// An action, as it is taken.
    fn action(&mut self, action: &Action) -> std::io::Result<()>;
    /// The replay is over.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The transcript as JSON Lines, one action per line.
pub struct JsonLines<W: Write>(pub W);

impl<W: Write> Transcript for JsonLines<W> {
    fn action(&mut self, action: &Action) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.0, action)?;
        self.0.write_all(b"\n")
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A transcript that drops its first `skip` actions: what a replay on one thread
/// writes after a replay on several threads wrote them and stopped
/// ([`threads::Threaded::Stopped`]).
pub struct Skipping<T> {
    /// Actions still to drop.
    pub skip: usize,
    /// Where the rest go.
    pub out: T,
}

impl<T: Transcript> Transcript for Skipping<T> {
    fn event(&mut self, at_ms: u64, event: &GatewayEvent) {
        self.out.event(at_ms, event);
    }

    fn action(&mut self, action: &Action) -> std::io::Result<()> {
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(());
        }
        self.out.action(action)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.finish()
    }
}

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
    /// A worker's plugins could not start.
    #[error("cannot start the plugins of a replay worker: {0}")]
    Start(#[from] autoclose_core::CoreError),
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

/// Event lines handed to the core together, so that it can batch them.
const CHUNK_LINES: usize = 256;

/// How to replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// How long after the last event timers keep firing.
    pub tail_ms: u64,
    /// Deliver consecutive events of a tenant in one call where that changes nothing
    /// ([`Core::handle_all`]); off, every event gets a call of its own. Off by
    /// default: it pays only where one tenant's events come in long runs (docs/figures.md,
    /// "Performance").
    pub batch: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            tail_ms: DEFAULT_TAIL_MS,
            batch: false,
        }
    }
}

/// Replays `lines`, then fires timers for up to `options.tail_ms` after the last
/// event. `webhook_response` lines go to `receiver`, which should be the core's
/// [`crate::outbound::Outbound`] (a clone of it).
pub fn replay(
    core: &mut Core,
    receiver: &ScriptedReceiver,
    lines: &[ScenarioLine],
    options: ReplayOptions,
    out: &mut impl Write,
) -> Result<ReplaySummary, ReplayError> {
    replay_with_progress(
        core,
        receiver,
        lines.iter().cloned().map(Ok),
        options,
        &mut JsonLines(out),
        |_| {},
    )
}

/// [`replay`] of lines read one at a time (see [`crate::scenario::read`]), telling
/// `progress` how many lines are done every [`PROGRESS_EVERY`] lines and at the end
/// (for a progress bar on a terminal).
pub fn replay_with_progress(
    core: &mut Core,
    receiver: &ScriptedReceiver,
    lines: impl IntoIterator<Item = Result<ScenarioLine, ScenarioError>>,
    options: ReplayOptions,
    out: &mut impl Transcript,
    mut progress: impl FnMut(usize),
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let chunk_lines = if options.batch { CHUNK_LINES } else { 1 };
    let mut chunk: Vec<ScenarioLine> = Vec::with_capacity(chunk_lines);
    let mut done = 0;
    for line in lines {
        if done % PROGRESS_EVERY == 0 {
            progress(done);
        }
        done += 1;
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                // What came before the bad line is handled, as it would be line by line.
                run_chunk(core, &mut chunk, options.batch, out, &mut summary)?;
                return Err(e.into());
            }
        };
        match &line.item {
            Item::Event(_) => {
                chunk.push(line);
                if chunk.len() >= chunk_lines {
                    run_chunk(core, &mut chunk, options.batch, out, &mut summary)?;
                }
            }
            Item::WebhookResponse {
                webhook,
                answer,
                repeat,
            } => {
                run_chunk(core, &mut chunk, options.batch, out, &mut summary)?;
                core.advance_to(line.at_ms.saturating_sub(1));
                receiver.push(webhook, answer.clone(), *repeat);
                summary.actions += write_actions(core, out)?;
            }
        }
    }
    run_chunk(core, &mut chunk, options.batch, out, &mut summary)?;
    let horizon = core.now().saturating_add(options.tail_ms);
    while let Some(due) = core.next_due().filter(|due| *due <= horizon) {
        core.advance_to(due);
        summary.actions += write_actions(core, out)?;
    }
    summary.end_ms = core.now();
    out.finish()?;
    progress(done);
    Ok(summary)
}

/// Handles the event lines of `chunk` (batched or one by one), writes the actions and
/// empties it.
fn run_chunk(
    core: &mut Core,
    chunk: &mut Vec<ScenarioLine>,
    batch: bool,
    out: &mut impl Transcript,
    summary: &mut ReplaySummary,
) -> Result<(), ReplayError> {
    if batch {
        let events: Vec<(u64, &GatewayEvent)> = chunk
            .iter()
            .filter_map(|line| match &line.item {
                Item::Event(event) => Some((line.at_ms, event)),
                Item::WebhookResponse { .. } => None,
            })
            .collect();
        for (at, event) in &events {
            out.event(*at, event);
        }
        let result = core.handle_all(events.iter().copied());
        summary.actions += write_actions(core, out)?;
        if let Err((index, source)) = result {
            return Err(ReplayError::Event {
                line: chunk.get(index).map_or(0, |line| line.line),
                source,
            });
        }
    } else {
        for line in chunk.iter() {
            let Item::Event(event) = &line.item else {
                continue;
            };
            let at = line.at_ms;
            let handled = core.handle(at, event);
            // Timers due before the event, then the event, then what followed.
            let actions: Vec<Action> = core.drain_actions().collect();
            for action in actions.iter().filter(|a| a.at_ms < at) {
                out.action(action)?;
                summary.actions += 1;
            }
            if handled.is_ok() {
                out.event(at, event);
            }
            for action in actions.iter().filter(|a| a.at_ms >= at) {
                out.action(action)?;
                summary.actions += 1;
            }
            if let Err(source) = handled {
                return Err(ReplayError::Event {
                    line: line.line,
                    source,
                });
            }
        }
    }
    summary.events += chunk.len();
    chunk.clear();
    Ok(())
}

fn write_actions(core: &mut Core, out: &mut impl Transcript) -> std::io::Result<usize> {
    let mut written = 0;
    for action in core.drain_actions() {
        out.action(&action)?;
        written += 1;
    }
    Ok(written)
}
