//! `autoclose replay`: a scenario on virtual time, the transcript on stdout.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use autoclose_webhook::outbound::ScriptedReceiver;

use crate::replay;
use crate::scenario::{self, ScenarioError, ScenarioLine};

/// Replays the scenario at `path` under the configuration at `config` (with `plugin`
/// for tenants that name no component) and writes the transcript to stdout; `stats`
/// adds counts and timings on stderr.
pub fn run(
    config: &Path,
    plugin: Option<&Path>,
    path: &Path,
    tail_ms: u64,
    batch: bool,
    stats: bool,
) -> Result<()> {
    let started = Instant::now();
    let receiver = ScriptedReceiver::default();
    let (mut core, config) = super::start(config, plugin, receiver.clone())?;
    let loaded = started.elapsed();
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
    let check_started = Instant::now();
    let (lines, held) = if regular {
        let lines = scenario::check(open()?).with_context(|| format!("{}", path.display()))?;
        (lines, None)
    } else {
        let mut text = String::new();
        open()?
            .read_to_string(&mut text)
            .with_context(|| format!("{}: cannot read scenario", path.display()))?;
        let held = scenario::parse(&text).with_context(|| format!("{}", path.display()))?;
        (held.len(), Some(held))
    };
    let checked = check_started.elapsed();
    let source: Box<dyn Iterator<Item = Result<ScenarioLine, ScenarioError>>> = match held {
        Some(held) => Box::new(held.into_iter().map(Ok)),
        None => Box::new(scenario::read_again(open()?)),
    };
    let replay_started = Instant::now();
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let bar = progress_bar(lines);
    let summary = replay::replay_with_progress(
        &mut core,
        &receiver,
        source,
        replay::ReplayOptions { tail_ms, batch },
        &mut replay::JsonLines(&mut out),
        |done| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        },
    )
    .with_context(|| {
        format!(
            "{}: replay stopped; the transcript is incomplete",
            path.display()
        )
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let replayed = replay_started.elapsed();
    if stats {
        eprintln!(
            "replayed {} events of {} sessions ({} tenants) into {} actions in {:.3}s ({:.0} events/s, reading and parsing included); checked {} lines in {:.3}s ({:.0} lines/s); load and start {:.3}s; virtual end {} ms{}",
            summary.events,
            core.sessions_seen(),
            config.tenants.len(),
            summary.actions,
            replayed.as_secs_f64(),
            summary.events as f64 / replayed.as_secs_f64().max(1e-9),
            lines,
            checked.as_secs_f64(),
            lines as f64 / checked.as_secs_f64().max(1e-9),
            loaded.as_secs_f64(),
            summary.end_ms,
            peak_rss_mib()
                .map(|mib| format!("; peak RSS {mib:.0} MiB"))
                .unwrap_or_default(),
        );
    }
    Ok(())
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
