//! A scenario file checked on several threads, each taking a part of the file, with
//! the answer [`super::check`] gives on one: the same line count, and on a bad file
//! the same first bad line with the same message. It also says which worker of a
//! replay on several threads ([`crate::replay::threads`]) owns each line.
//!
//! Each part is checked as a file of its own, except that a message whose channel
//! the part does not give is kept instead of refused; once every part is done, those
//! are looked up among the sessions the parts before gave, and the time order is
//! checked across each boundary. The first error of all, by line, is the answer.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use autoclose_core::split::shard_of;

use super::{Checker, Item, ScenarioError, out_of_order, unknown_channel_of};

/// The owner of a `webhook_response` line: every worker would need it, so a
/// scenario with one replays on one thread.
pub const EVERY_WORKER: u8 = u8::MAX;

/// Most workers: an owner is a byte, and [`EVERY_WORKER`] is kept apart.
pub const MAX_WORKERS: usize = 64;

/// A scenario file checked by [`check`].
#[derive(Debug)]
pub struct Checked {
    /// Lines, blank ones not counted.
    pub lines: usize,
    /// For each line of the file (blank ones included, in order), the worker whose
    /// sessions it is about, or [`EVERY_WORKER`].
    pub owners: Vec<u8>,
    /// The time of the last line (0 for an empty file).
    pub last_at: u64,
    /// Whether a `webhook_response` line is among them.
    pub responses: bool,
}

/// What one part found.
struct Part {
    /// Non-blank lines.
    lines: usize,
    owners: Vec<u8>,
    /// Time and number of its first and last non-blank lines.
    first: Option<(u64, usize)>,
    last: Option<(u64, usize)>,
    responses: bool,
    checker: Checker,
    error: Option<ScenarioError>,
}

/// Checks the scenario at `path` on `threads` threads (at least one), telling which
/// of `workers` workers owns each line.
pub fn check(path: &Path, threads: usize, workers: usize) -> Result<Checked, ScenarioError> {
    let cannot = |e: std::io::Error| ScenarioError {
        line: 0,
        message: format!("cannot read: {e}"),
    };
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    let threads = threads.clamp(1, MAX_WORKERS) as u64;
    let workers = workers.clamp(1, MAX_WORKERS);
    // Parts start after the first newline at or after an even cut. Each numbers its
    // lines from 1; the numbers are moved to the whole file's once the parts before
    // are counted.
    let starts: Vec<u64> = (0..threads)
        .map(|k| part_start(path, size * k / threads))
        .collect::<Result<_, _>>()
        .map_err(cannot)?;
    let mut bounds: Vec<(u64, u64)> = Vec::new();
    for (k, start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(size);
        bounds.push((*start, end.max(*start)));
    }
    let parts: Vec<std::io::Result<Part>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .iter()
            .map(|&(start, end)| scope.spawn(move || check_part(path, start, end, 1, workers)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a checking thread panicked")))
            })
            .collect()
    });
    let mut found: Vec<Part> = Vec::new();
    for part in parts {
        found.push(part.map_err(cannot)?);
    }
    // The first part with a bad line is checked again, numbered as in the file, for
    // the message (which may name another line); parts after it can only have later
    // errors.
    let mut offset = 0;
    let mut keep = found.len();
    for (index, &(start, end)) in bounds.iter().enumerate() {
        let part = &mut found[index];
        if part.error.is_some() {
            *part = check_part(path, start, end, offset + 1, workers).map_err(cannot)?;
            keep = index + 1;
            break;
        }
        part.shift(offset);
        offset += part.owners.len();
    }
    found.truncate(keep);
    merge(found)
}

/// Puts the parts together: the first error by line, or the whole file's answer.
fn merge(mut parts: Vec<Part>) -> Result<Checked, ScenarioError> {
    let mut first_error: Option<ScenarioError> = None;
    let mut consider = |error: ScenarioError| {
        if first_error.as_ref().is_none_or(|e| error.line < e.line) {
            first_error = Some(error);
        }
    };
    let mut previous: Option<(u64, usize)> = None;
    let mut checked = Checked {
        lines: 0,
        owners: Vec::new(),
        last_at: 0,
        responses: false,
    };
    for index in 0..parts.len() {
        let (before, rest) = parts.split_at_mut(index);
        let part = &mut rest[0];
        if let Some(error) = part.error.take() {
            consider(error);
        }
        if let (Some((at, on)), Some((first_at, line))) = (previous, part.first)
            && first_at < at
        {
            consider(ScenarioError {
                line,
                message: out_of_order(first_at, at, on),
            });
        }
        // Looked up in each earlier part's own sessions: no union of them is built.
        for need in part.checker.unresolved.take().unwrap_or_default() {
            let given = before.iter().any(|earlier| {
                earlier
                    .checker
                    .with_channel
                    .get(&need.tenant)
                    .is_some_and(|sessions| sessions.contains(&need.session))
            });
            if !given {
                consider(ScenarioError {
                    line: need.line,
                    message: unknown_channel_of(&need.tenant, &need.session),
                });
            }
        }
        previous = part.last.or(previous);
        checked.lines += part.lines;
        checked.responses |= part.responses;
        checked.owners.append(&mut part.owners);
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    checked.last_at = previous.map_or(0, |(at, _)| at);
    Ok(checked)
}

impl Part {
    /// Moves the line numbers by `offset`: a part numbered from 1 that starts after
    /// `offset` lines.
    fn shift(&mut self, offset: usize) {
        for (_, line) in self.first.iter_mut().chain(self.last.iter_mut()) {
            *line += offset;
        }
        for need in self.checker.unresolved.iter_mut().flatten() {
            need.line += offset;
        }
    }
}

/// Where the part cut at `cut` starts: at `cut` if a line starts there, else after
/// the next newline.
fn part_start(path: &Path, cut: u64) -> std::io::Result<u64> {
    if cut == 0 {
        return Ok(0);
    }
    let mut file = BufReader::new(File::open(path)?);
    file.seek(SeekFrom::Start(cut - 1))?;
    let mut skipped = Vec::new();
    let read = file.read_until(b'\n', &mut skipped)?;
    Ok(cut - 1 + read as u64)
}

/// Checks the lines of bytes `start..end`, the first numbered `first_line`.
fn check_part(
    path: &Path,
    start: u64,
    end: u64,
    first_line: usize,
    workers: usize,
) -> std::io::Result<Part> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(1 << 16, file.take(end - start));
    let mut checker = Checker::new(true);
    checker.unresolved = Some(Vec::new());
    let mut part = Part {
        lines: 0,
        owners: Vec::new(),
        first: None,
        last: None,
        responses: false,
        checker,
        error: None,
    };
    let mut buffer = String::new();
    let mut number = first_line;
    loop {
        buffer.clear();
        match reader.read_line(&mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                part.error = Some(ScenarioError {
                    line: number,
                    message: format!("cannot read: {e}"),
                });
                break;
            }
        }
        let raw = match buffer.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => &buffer,
        };
        match part.checker.line(number, raw) {
            Ok(None) => part.owners.push(0),
            Ok(Some(line)) => {
                part.lines += 1;
                part.first.get_or_insert((line.at_ms, number));
                part.last = Some((line.at_ms, number));
                part.owners.push(match &line.item {
                    Item::Event(event) => shard_of(event.tenant(), event.session(), workers) as u8,
                    Item::WebhookResponse { .. } => {
                        part.responses = true;
                        EVERY_WORKER
                    }
                });
            }
            Err(e) => {
                part.error = Some(e);
                break;
            }
        }
        number += 1;
    }
    Ok(part)
}
