//! Replay on several threads, with the transcript one thread gives, byte for byte.
//!
//! Sessions are split by [`shard_of`](autoclose_core::split::shard_of) across
//! workers, each with its own [`Core`] (its own plugin instances), reading the whole
//! file but parsing and handling only its own lines, and writing each step's actions
//! as JSON. The calling thread merges the workers' steps in the order one core takes
//! them: an event at `t` after the timers due before `t` and before those due at `t`;
//! timers by due time, then by the order one core would have set them, which the
//! merger works out as it goes (it numbers each step's timers as it writes the step).
//!
//! This holds while sessions do not affect each other. They do through a tenant: a
//! failed hook backs off the tenant's other sessions, a tenant near its timer limit
//! refuses any session's timer, and webhook retries and back-offs are ordered among
//! all sessions. When the merger meets such a step, everything it wrote so far is
//! still what one thread writes, and it stops: the caller replays on one thread and
//! skips what was written ([`Threaded::Stopped`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use autoclose_core::Core;
use autoclose_core::steps::{Step, StepKind};

use super::{PROGRESS_EVERY, ReplayError, ReplaySummary};
use crate::scenario::split::Checked;
use crate::scenario::{Item, ScenarioError, parse_line};

/// Steps a worker hands over at a time.
const BATCH_STEPS: usize = 512;
/// Batches waiting per worker: bounds memory when one worker runs ahead.
const BATCHES_AHEAD: usize = 8;

/// How a replay on several threads ended.
#[derive(Debug)]
pub enum Threaded {
    /// The whole transcript was written.
    Done {
        /// What it did.
        summary: ReplaySummary,
        /// Sessions seen, over all workers.
        sessions: usize,
    },
    /// Sessions turned out to depend on each other at some step: the first
    /// `written` actions are written and are what one thread writes; the rest is not.
    Stopped {
        /// Actions written.
        written: usize,
        /// Why, in words.
        why: String,
    },
}

/// Replays the checked scenario at `path` on `checked`'s workers, each with a core
/// from `start`, merging their transcripts into `out`. `progress` is told the line
/// reached every [`PROGRESS_EVERY`] lines.
pub fn replay(
    path: &Path,
    checked: &Checked,
    workers: usize,
    tail_ms: u64,
    start: &(dyn Fn() -> Result<Core, ReplayError> + Sync),
    out: &mut impl Write,
    progress: impl FnMut(usize),
) -> Result<Threaded, ReplayError> {
    let horizon = checked.last_at.saturating_add(tail_ms);
    let unknown_tenants = autoclose_core::UnknownTenants::default();
    let unknown_tenants = &unknown_tenants;
    std::thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(workers);
        for index in 0..workers {
            let (send, receive) = sync_channel(BATCHES_AHEAD);
            let (give_back, given_back) = channel();
            let owners = &checked.owners;
            scope.spawn(move || {
                let mut worker = Worker {
                    index: index as u8,
                    send,
                    given_back,
                    batch: Batch::default(),
                    steps: Vec::new(),
                };
                if let Err(error) = worker.run(path, owners, horizon, start, unknown_tenants) {
                    worker.batch.error = Some(error);
                    worker.send_batch();
                }
            });
            lanes.push(Lane::new(receive, give_back));
        }
        let result = Merger {
            lanes,
            next_seq: 0,
            totals: Vec::new(),
            limits: Vec::new(),
            written: 0,
            lines: checked.lines,
            last_at: checked.last_at,
        }
        .merge(out, progress)?;
        out.flush()?;
        Ok(result)
    })
}

/// One step as a worker hands it over.
#[derive(Debug)]
struct Out {
    key: Key,
    /// Its actions' JSON lines, in the batch's bytes.
    bytes: Range<usize>,
    actions: usize,
    timers_set: Range<u64>,
    tenant: Option<u32>,
    tenant_timers: usize,
    failed: bool,
    /// The event it handled was refused: the batch's error says why.
    refused: bool,
}

/// Where a step goes among all workers' steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Event { at: u64, line: usize },
    Timer { due: u64, seq: u64 },
    Shared { due: u64 },
}

/// What a worker hands over at a time.
#[derive(Debug, Default)]
struct Batch {
    steps: Vec<Out>,
    bytes: Vec<u8>,
    /// Each tenant's timer limits, in the first batch.
    limits: Option<Vec<(usize, usize)>>,
    /// Why the worker stopped, after its steps.
    error: Option<ReplayError>,
    /// The worker is done.
    end: Option<End>,
}

/// What a worker did, told with its last batch.
#[derive(Clone, Copy, Debug)]
struct End {
    events: usize,
    sessions: usize,
    end_ms: u64,
}

/// One worker: its sessions' lines through its own core, handed over as steps.
struct Worker {
    index: u8,
    send: SyncSender<Batch>,
    /// Batches the merger is done with, emptied, to fill again: their buffers are
    /// reused, and freed by the thread that allocated them.
    given_back: Receiver<Batch>,
    batch: Batch,
    steps: Vec<Step>,
}

impl Worker {
    fn run(
        &mut self,
        path: &Path,
        owners: &[u8],
        horizon: u64,
        start: &(dyn Fn() -> Result<Core, ReplayError> + Sync),
        unknown_tenants: &autoclose_core::UnknownTenants,
    ) -> Result<(), ReplayError> {
        let mut core = start()?;
        core.log_steps();
        core.share_unknown_tenants(unknown_tenants.clone());
        self.batch.limits = Some(core.timer_limits());
        let file = File::open(path)?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut buffer = Vec::new();
        let mut number = 0;
        let mut events = 0;
        loop {
            number += 1;
            let owner = owners.get(number - 1).copied();
            // Another worker's line: passed over without being copied or parsed.
            if owner.is_some_and(|owner| owner != self.index) {
                if !skip_line(&mut reader)? {
                    break;
                }
                continue;
            }
            buffer.clear();
            if reader.read_until(b'\n', &mut buffer)? == 0 {
                break;
            }
            let changed = |message: &str| {
                ReplayError::Scenario(ScenarioError {
                    line: number,
                    message: message.to_owned(),
                })
            };
            if owner.is_none() {
                return Err(changed("a line that was not there when it was checked"));
            }
            let raw = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let raw = std::str::from_utf8(raw).map_err(|_| changed("not UTF-8 any more"))?;
            if raw.trim().is_empty() {
                continue;
            }
            let (at, item) = parse_line(raw).map_err(|message| changed(&message))?;
            let Item::Event(event) = item else {
                return Err(changed("a webhook_response line for one worker"));
            };
            let handled = core.handle(at, &event);
            events += 1;
            self.collect(&mut core, Some((at, number)))?;
            if let Err(source) = handled {
                match self.batch.steps.last_mut() {
                    Some(step) if step.key == (Key::Event { at, line: number }) => {
                        step.refused = true;
                    }
                    _ => self.batch.steps.push(Out {
                        key: Key::Event { at, line: number },
                        bytes: 0..0,
                        actions: 0,
                        timers_set: 0..0,
                        tenant: None,
                        tenant_timers: 0,
                        failed: false,
                        refused: true,
                    }),
                }
                self.batch.error = Some(ReplayError::Event {
                    line: number,
                    source,
                });
                self.send_batch();
                return Ok(());
            }
            if self.batch.steps.len() >= BATCH_STEPS && !self.send_batch() {
                return Ok(());
            }
        }
        while let Some(due) = core.next_due().filter(|due| *due <= horizon) {
            core.advance_to(due);
            self.collect(&mut core, None)?;
            if self.batch.steps.len() >= BATCH_STEPS && !self.send_batch() {
                return Ok(());
            }
        }
        self.batch.end = Some(End {
            events,
            sessions: core.sessions_seen(),
            end_ms: core.now(),
        });
        self.send_batch();
        Ok(())
    }

    /// Moves the core's steps and their actions, as JSON lines, into the batch;
    /// `event` is the time and line of the event step among them.
    fn collect(&mut self, core: &mut Core, event: Option<(u64, usize)>) -> Result<(), ReplayError> {
        self.steps.extend(core.drain_steps());
        let mut actions = core.drain_actions();
        for step in self.steps.drain(..) {
            let from = self.batch.bytes.len();
            for action in actions.by_ref().take(step.actions) {
                serde_json::to_writer(&mut self.batch.bytes, &action)
                    .map_err(std::io::Error::other)?;
                self.batch.bytes.push(b'\n');
            }
            let key = match step.kind {
                // Only `handle` takes an event step; one elsewhere would be a step
                // the merger cannot place, so it stops there.
                StepKind::Event => {
                    event.map_or(Key::Shared { due: 0 }, |(at, line)| Key::Event { at, line })
                }
                StepKind::Timer { due, seq } => Key::Timer { due, seq },
                StepKind::Shared { due } => Key::Shared { due },
            };
            self.batch.steps.push(Out {
                key,
                bytes: from..self.batch.bytes.len(),
                actions: step.actions,
                timers_set: step.timers_set,
                tenant: step.tenant.map(|t| t.0),
                tenant_timers: step.tenant_timers,
                failed: step.failed,
                refused: false,
            });
        }
        Ok(())
    }

    /// Hands the batch over; false when the merger has stopped.
    fn send_batch(&mut self) -> bool {
        let next = self.given_back.try_recv().unwrap_or_default();
        self.send
            .send(std::mem::replace(&mut self.batch, next))
            .is_ok()
    }
}

/// Reads past the next line; false at the end of the file.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(any);
        }
        any = true;
        match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(true);
            }
            None => {
                let all = buffer.len();
                reader.consume(all);
            }
        }
    }
}

/// The merger's view of one worker.
struct Lane {
    receive: Receiver<Batch>,
    give_back: Sender<Batch>,
    batch: Batch,
    next: usize,
    /// Where each run of the worker's timer set orders starts among all workers'
    /// (local start, global start), in order.
    seqs: Vec<(u64, u64)>,
    /// The worker's pending timers per tenant, as its last step left them.
    timers: Vec<usize>,
    end: Option<End>,
}

impl Lane {
    fn new(receive: Receiver<Batch>, give_back: Sender<Batch>) -> Lane {
        Lane {
            receive,
            give_back,
            batch: Batch::default(),
            next: 0,
            seqs: Vec::new(),
            timers: Vec::new(),
            end: None,
        }
    }

    /// Makes sure the next step, if any, is at hand; `Err` if the worker stopped on
    /// an error outside a step.
    fn fill(&mut self, limits: &mut Vec<(usize, usize)>) -> Result<(), ReplayError> {
        while self.next >= self.batch.steps.len() && self.end.is_none() {
            if self.batch.error.is_some() && !self.batch.steps.iter().any(|s| s.refused) {
                return Err(self.batch.error.take().unwrap_or_else(lost_worker));
            }
            match self.receive.recv() {
                Ok(mut batch) => {
                    if let Some(first) = batch.limits.take()
                        && limits.is_empty()
                    {
                        *limits = first;
                    }
                    self.end = batch.end;
                    let mut done = std::mem::replace(&mut self.batch, batch);
                    done.steps.clear();
                    done.bytes.clear();
                    (done.limits, done.error, done.end) = (None, None, None);
                    // The worker may be gone; then the batch is freed here.
                    let _ = self.give_back.send(done);
                    self.next = 0;
                }
                Err(_) => return Err(lost_worker()),
            }
        }
        Ok(())
    }

    /// Where step `step` of this worker goes among all: (time, class, order).
    fn place(&self, step: &Out) -> (u64, u8, u64) {
        match step.key {
            Key::Event { at, line } => (at, 0, line as u64),
            Key::Shared { due } => (due, 1, 0),
            Key::Timer { due, seq } => {
                let run = self.seqs.partition_point(|(local, _)| *local <= seq);
                let global = match run.checked_sub(1).and_then(|i| self.seqs.get(i)) {
                    Some((local, global)) => global + (seq - local),
                    None => 0,
                };
                // After every event at `due` and any shared step there.
                (due, 2, global)
            }
        }
    }
}

/// What the merger says when a worker's channel closed without its last batch.
fn lost_worker() -> ReplayError {
    ReplayError::Write(std::io::Error::other(
        "a replay worker stopped unexpectedly",
    ))
}

/// Puts the workers' steps into one core's order.
struct Merger {
    lanes: Vec<Lane>,
    /// The set order one core would give the next timer.
    next_seq: u64,
    /// Each tenant's pending timers, over all workers.
    totals: Vec<usize>,
    limits: Vec<(usize, usize)>,
    written: usize,
    /// The scenario's lines, for the last progress report.
    lines: usize,
    /// The time of the scenario's last line: virtual time ends no earlier.
    last_at: u64,
}

impl Merger {
    fn merge(
        mut self,
        out: &mut impl Write,
        mut progress: impl FnMut(usize),
    ) -> Result<Threaded, ReplayError> {
        let mut reported = 0;
        loop {
            let mut best: Option<(usize, (u64, u8, u64))> = None;
            for index in 0..self.lanes.len() {
                self.lanes[index].fill(&mut self.limits)?;
                let lane = &self.lanes[index];
                let Some(step) = lane.batch.steps.get(lane.next) else {
                    continue;
                };
                let place = lane.place(step);
                if best.is_none_or(|(_, b)| place < b) {
                    best = Some((index, place));
                }
            }
            let Some((index, _)) = best else {
                break;
            };
            if let Some(why) = self.shared(index) {
                return Ok(Threaded::Stopped {
                    written: self.written,
                    why,
                });
            }
            let lane = &mut self.lanes[index];
            let step = &lane.batch.steps[lane.next];
            out.write_all(&lane.batch.bytes[step.bytes.clone()])?;
            self.written += step.actions;
            if !step.timers_set.is_empty() {
                lane.seqs.push((step.timers_set.start, self.next_seq));
                self.next_seq += step.timers_set.end - step.timers_set.start;
            }
            if let Some(tenant) = step.tenant {
                let tenant = tenant as usize;
                if lane.timers.len() <= tenant {
                    lane.timers.resize(tenant + 1, 0);
                }
                if self.totals.len() <= tenant {
                    self.totals.resize(tenant + 1, 0);
                }
                self.totals[tenant] =
                    self.totals[tenant] - lane.timers[tenant] + step.tenant_timers;
                lane.timers[tenant] = step.tenant_timers;
            }
            if let Key::Event { line, .. } = step.key
                && line / PROGRESS_EVERY != reported
            {
                reported = line / PROGRESS_EVERY;
                progress(line);
            }
            if step.refused {
                return Err(lane.batch.error.take().unwrap_or_else(lost_worker));
            }
            lane.next += 1;
        }
        let mut summary = ReplaySummary {
            actions: self.written,
            end_ms: self.last_at,
            ..ReplaySummary::default()
        };
        let mut sessions = 0;
        for lane in &self.lanes {
            if let Some(end) = lane.end {
                summary.events += end.events;
                summary.end_ms = summary.end_ms.max(end.end_ms);
                sessions += end.sessions;
            }
        }
        progress(self.lines);
        Ok(Threaded::Done { summary, sessions })
    }

    /// Why lane `index`'s next step would have gone differently on one core, if it
    /// might have.
    fn shared(&self, index: usize) -> Option<String> {
        let lane = &self.lanes[index];
        let step = &lane.batch.steps[lane.next];
        if let Key::Shared { due } = step.key {
            return Some(format!(
                "a webhook retry or a tenant's back-off at {due} ms is ordered among all sessions"
            ));
        }
        if step.failed {
            return Some(
                "a plugin hook failed, and its tenant's back-off holds all its sessions".into(),
            );
        }
        let tenant = step.tenant? as usize;
        let (per_session, per_tenant) = self.limits.get(tenant).copied()?;
        let total = self.totals.get(tenant).copied().unwrap_or(0);
        (total + per_session >= per_tenant).then(|| {
            format!(
                "a tenant came within {per_session} timers of its limit of {per_tenant}, which counts all its sessions"
            )
        })
    }
}
