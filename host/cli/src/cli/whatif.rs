//! `autoclose whatif`: a conversation log under two or more configurations, compared
//! in an HTML report (and a JSON summary).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use autoclose_webhook::outbound::ScriptedReceiver;

use crate::replay::{self, ReplayOptions, Transcript};
use crate::scenario::{self, ScenarioError, ScenarioLine};
use crate::whatif::report;
use crate::whatif::summary::{Configuration, Difference, Summary, differing};
use crate::whatif::tally::Tally;
use crate::whatif::timeline::Recorder;

/// What `whatif` is asked.
pub struct Request<'a> {
    /// The configurations, in order.
    pub configs: &'a [PathBuf],
    /// Their labels (empty: the file names).
    pub labels: &'a [String],
    /// A component for tenants that name none.
    pub plugin: Option<&'a Path>,
    /// The log.
    pub scenario: &'a Path,
    /// Where the HTML report goes.
    pub report: &'a Path,
    /// Where the JSON summary goes, if anywhere.
    pub summary: Option<&'a Path>,
    /// How many differing sessions the report shows with their timelines.
    pub examples: usize,
}

/// The log's lines, read again for every replay (a regular file) or held (a pipe).
struct Log {
    path: PathBuf,
    lines: usize,
    held: Option<Vec<ScenarioLine>>,
}

impl Log {
    fn open(path: &Path) -> Result<Self> {
        let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
        let reader = || {
            File::open(path)
                .map(|f| BufReader::with_capacity(1 << 16, f))
                .with_context(|| format!("{}: cannot read scenario", path.display()))
        };
        if regular {
            let lines =
                scenario::check(reader()?).with_context(|| format!("{}", path.display()))?;
            Ok(Log {
                path: path.to_owned(),
                lines,
                held: None,
            })
        } else {
            let mut text = String::new();
            reader()?
                .read_to_string(&mut text)
                .with_context(|| format!("{}: cannot read scenario", path.display()))?;
            let held = scenario::parse(&text).with_context(|| format!("{}", path.display()))?;
            Ok(Log {
                path: path.to_owned(),
                lines: held.len(),
                held: Some(held),
            })
        }
    }

    fn lines(&self) -> Result<Box<dyn Iterator<Item = Result<ScenarioLine, ScenarioError>>>> {
        Ok(match &self.held {
            Some(held) => Box::new(held.clone().into_iter().map(Ok)),
            None => {
                let file = File::open(&self.path)
                    .with_context(|| format!("{}: cannot read scenario", self.path.display()))?;
                Box::new(scenario::read_again(BufReader::with_capacity(
                    1 << 16,
                    file,
                )))
            }
        })
    }
}

/// Replays `log` under `config` into `transcript`; the events replayed.
fn replay_into(
    config: &Path,
    plugin: Option<&Path>,
    log: &Log,
    transcript: &mut impl Transcript,
    progress: &dyn Fn(usize),
) -> Result<usize> {
    let receiver = ScriptedReceiver::default();
    let (mut core, _) = super::start(config, plugin, receiver.clone())?;
    let summary = replay::replay_with_progress(
        &mut core,
        &receiver,
        log.lines()?,
        ReplayOptions::default(),
        transcript,
        progress,
    )
    .with_context(|| {
        format!(
            "{} under {}: replay stopped",
            log.path.display(),
            config.display()
        )
    })?;
    Ok(summary.events)
}

/// Runs `pass` for every configuration, as many at once as there are cores: each
/// replay has its own core, so they share nothing. The results come in the order of
/// the configurations; `progress` is told the lines done by all of them together.
fn each_config<T: Send>(
    configs: &[PathBuf],
    pass: impl Fn(&Path, &dyn Fn(usize)) -> Result<T> + Sync,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<T>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let done: Vec<AtomicUsize> = configs.iter().map(|_| AtomicUsize::new(0)).collect();
    let (pass, done) = (&pass, &done);
    let mut results = Vec::with_capacity(configs.len());
    for (first, chunk) in (0..).step_by(cores).zip(configs.chunks(cores)) {
        let answers: Vec<Result<T>> = std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, config)| {
                    scope.spawn(move || {
                        let report = |lines: usize| {
                            done[first + i].store(lines, Ordering::Relaxed);
                            progress(done.iter().map(|d| d.load(Ordering::Relaxed)).sum());
                        };
                        pass(config, &report)
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|_| bail!("a replay thread panicked"))
                })
                .collect()
        });
        for answer in answers {
            results.push(answer?);
        }
    }
    Ok(results)
}

/// Runs `request`: every configuration over the log, then again for the timelines of
/// the sessions that differ; writes the report (and the summary) and prints the totals.
pub fn run(request: &Request<'_>) -> Result<()> {
    if request.configs.len() < 2 {
        bail!("whatif compares configurations: give --config at least twice");
    }
    if !request.labels.is_empty() && request.labels.len() != request.configs.len() {
        bail!(
            "{} --label for {} --config: give one label per configuration, or none",
            request.labels.len(),
            request.configs.len()
        );
    }
    let labels: Vec<String> = if request.labels.is_empty() {
        request
            .configs
            .iter()
            .map(|c| c.display().to_string())
            .collect()
    } else {
        request.labels.to_vec()
    };
    let log = Log::open(request.scenario)?;
    let passes = request.configs.len() * 2;
    let bar = super::replay::progress_bar(log.lines * passes);
    // Lines of the passes already done, so that the bar runs once over all of them.
    let done_before = AtomicUsize::new(0);
    let progress = |done: usize| {
        if let Some(bar) = &bar {
            bar.set_position((done_before.load(Ordering::Relaxed) + done) as u64);
        }
    };

    let counted = each_config(
        request.configs,
        |config, report| {
            let started = Instant::now();
            let mut tally = Tally::default();
            let events = replay_into(config, request.plugin, &log, &mut tally, report)?;
            Ok((tally, started.elapsed(), events))
        },
        &progress,
    )?;
    done_before.fetch_add(log.lines * request.configs.len(), Ordering::Relaxed);
    let events = counted.last().map_or(0, |(_, _, events)| *events);
    let tallies: Vec<(Tally, std::time::Duration)> =
        counted.into_iter().map(|(t, took, _)| (t, took)).collect();
    let all: Vec<&Tally> = tallies.iter().map(|(t, _)| t).collect();
    let differ = differing(&all);
    let shown: Vec<_> = differ.iter().take(request.examples).collect();
    let mut timelines = Vec::new();
    if !shown.is_empty() {
        timelines = each_config(
            request.configs,
            |config, report| {
                let mut recorder = Recorder::new(shown.iter().map(|(key, _)| key.clone()));
                replay_into(config, request.plugin, &log, &mut recorder, report)?;
                Ok(recorder.timelines)
            },
            &progress,
        )?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let summary = Summary {
        scenario: request.scenario.display().to_string(),
        events: events as u64,
        configurations: request
            .configs
            .iter()
            .zip(&labels)
            .zip(&tallies)
            .map(|((file, label), (tally, took))| {
                Configuration::of(
                    label.clone(),
                    file.display().to_string(),
                    tally,
                    took.as_millis() as u64,
                )
            })
            .collect(),
        differing_sessions: differ.len() as u64,
        differences: shown
            .iter()
            .map(|(key, outcomes)| Difference {
                tenant: key.0.clone(),
                session: key.1.clone(),
                outcomes: outcomes.iter().map(|o| o.describe()).collect(),
                timelines: timelines
                    .iter_mut()
                    .map(|t| t.remove(key).unwrap_or_default())
                    .collect(),
            })
            .collect(),
    };
    let html = report::html(&summary).map_err(anyhow::Error::msg)?;
    std::fs::write(request.report, html)
        .with_context(|| format!("{}: cannot write the report", request.report.display()))?;
    if let Some(path) = request.summary {
        let json = serde_json::to_vec_pretty(&summary)?;
        std::fs::write(path, json)
            .with_context(|| format!("{}: cannot write the summary", path.display()))?;
    }
    for c in &summary.configurations {
        let t = &c.totals;
        println!(
            "{}: {} sessions, {} closed, {} warnings, {} pushes, {} rescued, {} came back after the close",
            c.label, t.sessions, t.closed, t.warnings, t.pushes, t.rescued, t.came_back
        );
    }
    println!(
        "{} sessions end differently; report: {}",
        summary.differing_sessions,
        request.report.display()
    );
    Ok(())
}
