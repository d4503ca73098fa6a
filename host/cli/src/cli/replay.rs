//! `autoclose replay`: a scenario on virtual time, the transcript on stdout.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use autoclose_config::HostConfig;
use autoclose_webhook::outbound::ScriptedReceiver;

use crate::replay::{self, threads};
use crate::scenario::split::{self, MAX_WORKERS};
use crate::scenario::{self, ScenarioError, ScenarioLine};

/// How `replay` was asked to run.
pub struct Flags {
    /// After the last event, keep firing timers for this many virtual ms.
    pub tail_ms: u64,
    /// Several events in one call where that changes nothing.
    pub batch: bool,
    /// Worker threads; `None`: see [`threads_for`].
    pub threads: Option<usize>,
    /// Counts and timings on stderr.
    pub stats: bool,
}

/// Replays the scenario at `path` under the configuration at `config` (with `plugin`
/// for tenants that name no component) and writes the transcript to stdout; `stats`
/// adds counts and timings on stderr.
pub fn run(config: &Path, plugin: Option<&Path>, path: &Path, flags: Flags) -> Result<()> {
    let started = Instant::now();
    let loaded = super::Loaded::load(config, plugin)?;
    let receiver = ScriptedReceiver::default();
    let mut core = loaded
        .core(Box::new(receiver.clone()))
        .with_context(|| format!("{}", config.display()))?;
    let config = &loaded.config;
    let loaded_in = started.elapsed();
    // A bad line stops the run before any output: the whole scenario is checked
    // first. A regular file is then read a second time and replayed line by
    // line, so memory grows with the sessions, not the lines; anything else (a
    // pipe, `/dev/stdin`) can be read only once and is held in memory.
    let open = || {
        File::open(path)
            .map(|file| std::io::BufReader::with_capacity(1 << 16, file))
            .with_context(|| format!("{}: cannot read scenario", path.display()))
    };
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let threads = if regular && !flags.batch {
        flags.threads.unwrap_or_else(|| threads_for(config, plugin))
    } else {
        1
    }
    .clamp(1, MAX_WORKERS);
    let check_started = Instant::now();
    let (lines, held, checked) = if threads > 1 {
        let checked =
            split::check(path, threads, threads).with_context(|| format!("{}", path.display()))?;
        (checked.lines, None, Some(checked))
    } else if regular {
        let lines = scenario::check(open()?).with_context(|| format!("{}", path.display()))?;
        (lines, None, None)
    } else {
        let mut text = String::new();
        open()?
            .read_to_string(&mut text)
            .with_context(|| format!("{}: cannot read scenario", path.display()))?;
        let held = scenario::parse(&text).with_context(|| format!("{}", path.display()))?;
        (held.len(), Some(held), None)
    };
    let checked_in = check_started.elapsed();
    let replay_started = Instant::now();
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let bar = progress_bar(lines);
    let show = |done: usize| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    };
    let stopped = |e: replay::ReplayError| {
        anyhow::Error::new(e).context(format!(
            "{}: replay stopped; the transcript is incomplete",
            path.display()
        ))
    };
    // On several threads first, where the scenario allows; the rest, or all of it,
    // on one.
    let mut skip = 0;
    let mut workers = 1;
    let mut threaded = None;
    if let Some(checked) = checked.as_ref().filter(|c| !c.responses) {
        let start = || {
            loaded
                .core(Box::new(ScriptedReceiver::default()))
                .map_err(Into::into)
        };
        match threads::replay(
            path,
            checked,
            threads,
            flags.tail_ms,
            &start,
            &mut out,
            show,
        )
        .map_err(stopped)?
        {
            threads::Threaded::Done { summary, sessions } => {
                threaded = Some((summary, sessions));
                workers = threads;
            }
            threads::Threaded::Stopped { written, why } => {
                eprintln!("replay: {why}, so the rest replays on one thread");
                skip = written;
            }
        }
    }
    let (summary, sessions) = match threaded {
        Some(done) => done,
        None => {
            let source: Box<dyn Iterator<Item = Result<ScenarioLine, ScenarioError>>> = match held {
                Some(held) => Box::new(held.into_iter().map(Ok)),
                None => Box::new(scenario::read_again(open()?)),
            };
            let summary = replay::replay_with_progress(
                &mut core,
                &receiver,
                source,
                replay::ReplayOptions {
                    tail_ms: flags.tail_ms,
                    batch: flags.batch,
                },
                &mut replay::Skipping {
                    skip,
                    out: replay::JsonLines(&mut out),
                },
                show,
            )
            .map_err(stopped)?;
            (summary, core.sessions_seen())
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let replayed = replay_started.elapsed();
    if flags.stats {
        eprintln!(
            "replayed {} events of {} sessions ({} tenants) into {} actions in {:.3}s ({:.0} events/s, reading and parsing included) on {} thread{}; checked {} lines in {:.3}s ({:.0} lines/s); load and start {:.3}s; virtual end {} ms{}",
            summary.events,
            sessions,
            config.tenants.len(),
            summary.actions,
            replayed.as_secs_f64(),
            summary.events as f64 / replayed.as_secs_f64().max(1e-9),
            workers,
            if workers == 1 { "" } else { "s" },
            lines,
            checked_in.as_secs_f64(),
            lines as f64 / checked_in.as_secs_f64().max(1e-9),
            loaded_in.as_secs_f64(),
            summary.end_ms,
            peak_rss_mib()
                .map(|mib| format!("; peak RSS {mib:.0} MiB"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

/// Worker threads when `--threads` is not given: one per core when every tenant
/// runs the built-in plugin, whose answers for a session depend on that session
/// alone; one when a component of the operator's runs, which may keep state across
/// sessions (what splitting them would change).
fn threads_for(config: &HostConfig, plugin: Option<&Path>) -> usize {
    let own_component = plugin.is_some() || config.tenants.iter().any(|t| t.component.is_some());
    if own_component {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Lines from which a replay shows a progress bar.
const PROGRESS_FROM_LINES: usize = 100_000;

/// A progress bar on stderr for a replay of `lines` lines, when stderr is a terminal
/// and the replay is long enough to want one. Never on stdout: that is the transcript.
pub(super) fn progress_bar(lines: usize) -> Option<indicatif::ProgressBar> {
    if lines < PROGRESS_FROM_LINES || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(lines as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {human_pos}/{human_len} lines, {rate}, {eta} left",
    ) {
        bar.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} lines/s", state.per_sec());
            },
        ));
    }
    Some(bar)
}

/// The process's peak resident memory in MiB (`VmHWM`), where the system reports it
/// (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}
