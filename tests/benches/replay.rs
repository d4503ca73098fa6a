//! Whole-system figures of `autoclose replay`, the what-if use: a large log of a contact
//! centre's chats (here an hour of 100,000 sessions) replayed on one core and on
//! several (`--threads`, sessions split across workers). Runs the real
//! CLI as a child process, so the figures are what an operator gets, and reads its
//! `--stats` line (Linux: the peak memory comes from `/proc/self/status`).
//!
//! 1. Replay throughput and peak memory for 100,000 sessions and about 1,000,000
//!    events, against the floor measured in the same run: only parsing every line
//!    into a `serde_json::Value`, which any tool reading the file must at least do.
//!    The CLI reads the file twice (checks every line, then replays line by line), so
//!    the whole run is compared with the floor as well as each pass; on 1 thread, 2
//!    and every core (runs alternating), with the speed-up over 1 thread and a
//!    byte-for-byte comparison of the transcripts.
//! 2. Cold start: loading the component from a precompiled artifact against
//!    compiling the `.wasm`, to the first handled event.
//!
//! `cargo bench -p autoclose-tests --bench replay` prints both tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use autoclose::generate::{self, Spec};
use autoclose_tests::bench::median;

const SESSIONS: usize = 100_000;
const RUNS: usize = 3;
const CLI: &str = env!("CARGO_BIN_EXE_autoclose-cli-under-test");

/// What one `replay --stats` run reported.
#[derive(Clone, Copy, Debug)]
struct Stats {
    events: f64,
    replay_s: f64,
    check_s: f64,
    load_s: f64,
    peak_mib: f64,
}

/// The number after `label` in `line`, e.g. `in 3.471s` gives 3.471.
fn number_after(line: &str, label: &str) -> f64 {
    let rest = line
        .split_once(label)
        .unwrap_or_else(|| panic!("no {label:?} in the stats line: {line}"))
        .1;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("{label:?} in {line}: {e}"))
}

/// `replay --stats` of `scenario`, on `threads` threads (`None`: the default), the
/// transcript to `transcript` (or nowhere).
fn replay(
    config: &Path,
    plugin: Option<&Path>,
    scenario: &Path,
    threads: Option<usize>,
    transcript: Option<&Path>,
) -> Stats {
    let mut command = Command::new(CLI);
    command
        .arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--stats");
    if let Some(plugin) = plugin {
        command.arg("--plugin").arg(plugin);
    }
    if let Some(threads) = threads {
        command.arg("--threads").arg(threads.to_string());
    }
    let stdout = match transcript {
        Some(path) => Stdio::from(
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        ),
        None => Stdio::null(),
    };
    let output = command
        .arg(scenario)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{CLI}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "replay failed: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("replayed "))
        .unwrap_or_else(|| panic!("no stats line in: {stderr}"));
    Stats {
        events: number_after(line, "replayed "),
        replay_s: number_after(line, "actions in "),
        check_s: number_after(line, " lines in "),
        load_s: number_after(line, "load and start "),
        peak_mib: number_after(line, "peak RSS "),
    }
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("autoclose-bench-{}-{name}", std::process::id()))
}

fn main() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config.json");
    let scenario = scratch("scenario.jsonl");
    let spec = Spec {
        // About 10 events a session: 1,035,251 events in all.
        max_rounds: 10,
        reply_percent: 90,
        ..Spec::new(
            SESSIONS,
            vec!["acme".into(), "globex".into()],
            vec!["web_chat".into(), "http_api".into()],
        )
    };
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&scenario).unwrap_or_else(|e| panic!("{}: {e}", scenario.display())),
    );
    let lines = generate::generate(&spec, &mut file).unwrap_or_else(|e| panic!("{e}"));
    drop(file);

    // The floor: read the file and parse each line into a JSON value, nothing more.
    let floor_s = median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let text = std::fs::read_to_string(&scenario).unwrap_or_else(|e| panic!("{e}"));
                let mut values = 0usize;
                for line in text.lines() {
                    let value: serde_json::Value =
                        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
                    values += usize::from(value.is_object());
                }
                assert_eq!(values, lines);
                started.elapsed().as_secs_f64()
            })
            .collect(),
    );

    // 1 thread, 2 and every core, alternating so that the machine's drift touches
    // each alike.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2];
    if cores > 2 {
        counts.push(cores);
    }
    let mut runs: Vec<Vec<Stats>> = vec![Vec::new(); counts.len()];
    for _ in 0..RUNS {
        for (index, threads) in counts.iter().enumerate() {
            runs[index].push(replay(&config, None, &scenario, Some(*threads), None));
        }
    }
    let events = runs[0][0].events;
    assert_eq!(events as usize, lines, "every line is an event");

    println!(
        "replay of {SESSIONS} sessions, {lines} events ({} MB of JSON Lines), median of {RUNS} runs, {cores} cores",
        std::fs::metadata(&scenario).map_or(0, |m| m.len() / 1_000_000)
    );
    println!(
        "{:<60} {:>8} {:>11} {:>8} {:>9}",
        "phase", "seconds", "events/s", "x floor", "speed-up"
    );
    let row = |name: &str, seconds: f64, one: f64| {
        println!(
            "{:<60} {:>8.3} {:>11.0} {:>8.2} {:>9.2}",
            name,
            seconds,
            events / seconds,
            seconds / floor_s,
            one / seconds
        );
    };
    row(
        "floor: read and parse each line into a JSON value",
        floor_s,
        floor_s,
    );
    let mut single = (0.0, 0.0);
    for (index, threads) in counts.iter().enumerate() {
        let pick = |f: fn(&Stats) -> f64| median(runs[index].iter().map(f).collect());
        let (replay_s, check_s, peak) = (
            pick(|s| s.replay_s),
            pick(|s| s.check_s),
            pick(|s| s.peak_mib),
        );
        let whole_s = replay_s + check_s;
        if *threads == 1 {
            single = (check_s, whole_s);
        }
        let on = if *threads == 1 {
            "1 thread".to_owned()
        } else {
            format!("{threads} threads")
        };
        row(
            &format!("first pass on {on}: read, parse and check every line"),
            check_s,
            single.0,
        );
        row(
            &format!("both passes on {on} (peak {peak:.0} MiB)"),
            whole_s,
            single.1,
        );
    }
    let one = scratch("transcript-1.jsonl");
    let two = scratch("transcript-2.jsonl");
    replay(&config, None, &scenario, Some(1), Some(&one));
    replay(&config, None, &scenario, Some(2), Some(&two));
    let (one_bytes, two_bytes) = (
        std::fs::read(&one).unwrap_or_else(|e| panic!("{e}")),
        std::fs::read(&two).unwrap_or_else(|e| panic!("{e}")),
    );
    assert!(
        one_bytes == two_bytes,
        "the transcripts of 1 and 2 threads differ"
    );
    println!(
        "transcripts of 1 and 2 threads: byte-identical ({} bytes, {} lines)",
        one_bytes.len(),
        one_bytes.iter().filter(|b| **b == b'\n').count()
    );
    let _ = std::fs::remove_file(&one);
    let _ = std::fs::remove_file(&two);

    // Cold start: a short scenario, with the component compiled at load and loaded
    // from a precompiled artifact.
    let short = scratch("short.jsonl");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&short).unwrap_or_else(|e| panic!("{}: {e}", short.display())),
    );
    generate::generate(
        &Spec::new(1, vec!["acme".into()], vec!["web_chat".into()]),
        &mut file,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    let artifact = scratch("plugin.cwasm");
    let status = Command::new(CLI)
        .arg("compile")
        .arg("-o")
        .arg(&artifact)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{CLI}: {e}"));
    assert!(status.success(), "compile failed");
    let first_event = |plugin: Option<&Path>| {
        median(
            (0..RUNS)
                .map(|_| {
                    let stats = replay(&config, plugin, &short, Some(1), None);
                    (stats.load_s + stats.check_s + stats.replay_s) * 1000.0
                })
                .collect(),
        )
    };
    let compiled = first_event(None);
    let precompiled = first_event(Some(&artifact));
    println!();
    println!("cold start: config, engine, component, tenants configured, first events handled");
    println!("{:<56} {:>8} {:>8}", "path", "ms", "ratio");
    println!(
        "{:<56} {:>8.1} {:>8.2}",
        "compile the built-in .wasm at load", compiled, 1.0
    );
    println!(
        "{:<56} {:>8.1} {:>8.3}",
        format!(
            "load the precompiled .cwasm ({} KB)",
            std::fs::metadata(&artifact).map_or(0, |m| m.len() / 1000)
        ),
        precompiled,
        precompiled / compiled
    );

    for path in [&scenario, &short, &artifact] {
        let _ = std::fs::remove_file(path);
    }
}
