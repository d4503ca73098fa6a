//! `replay --threads`: sessions split across workers, each with its own plugin
//! instances, and the transcript merged back into the order of one thread. Compared
//! byte for byte with `--threads 1` (the single-thread path, kept as it was) on the
//! examples, on generated logs, and on hand-made logs where timers of sessions on
//! different workers come due at the same millisecond; where sessions depend on each
//! other (a tenant's timer limit, a failed hook, scripted webhook answers) the result
//! is still the same, and the CLI says why it went on on one thread. A bad file gets
//! the same error from the check on several threads as from the one on one.

use std::path::PathBuf;

use autoclose::generate::{self, Spec};
use autoclose_tests::{MISBEHAVING_PLUGIN, message, opened, scenario};

use crate::run_cli as cli;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autoclose-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir.join(name)
}

/// The transcript and `--stats` line of `replay --threads N`.
fn replay(config: &str, scenario: &str, threads: usize, extra: &[&str]) -> (String, String) {
    let threads = threads.to_string();
    let mut args = vec![
        "replay",
        "--stats",
        "--threads",
        &threads,
        "--config",
        config,
    ];
    args.extend_from_slice(extra);
    args.push(scenario);
    let out = cli(&args);
    assert!(
        out.status.success(),
        "--threads {threads}: {}",
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// Replays on 1 and on each of `threads`, checks the transcripts are identical and
/// that the threaded runs ran threaded; returns the transcript.
fn same_on_threads(config: &str, scenario: &str, threads: &[usize]) -> String {
    let (one, stats) = replay(config, scenario, 1, &[]);
    assert!(stats.contains("on 1 thread;"), "{stats}");
    assert!(!one.is_empty(), "{scenario}: no actions at all");
    for &n in threads {
        let (many, stats) = replay(config, scenario, n, &[]);
        assert!(
            stats.contains(&format!("on {n} threads;")),
            "{scenario} with --threads {n} did not run threaded: {stats}"
        );
        assert!(
            many == one,
            "{scenario}: --threads {n} gives another transcript (first difference at line {})",
            one.lines()
                .zip(many.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(one.lines().count().min(many.lines().count()))
                + 1
        );
    }
    one
}

#[test]
fn the_examples_replay_the_same_on_several_threads() {
    for (config, scenario) in crate::EXAMPLE_REPLAYS {
        same_on_threads(config, scenario, &[2, 3]);
    }
}

#[test]
fn generated_logs_replay_the_same_on_several_threads() {
    for (seed, business_hours) in [(1, false), (7, true)] {
        let mut spec = Spec::new(
            1_500,
            vec!["acme".into(), "globex".into()],
            vec!["web_chat".into(), "http_api".into()],
        );
        spec.seed = seed;
        spec.business_hours = business_hours;
        let path = scratch(&format!("generated-{seed}.jsonl"));
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        generate::generate(&spec, &mut file).unwrap_or_else(|e| panic!("{e}"));
        drop(file);
        same_on_threads("examples/config.json", &path.display().to_string(), &[2, 5]);
    }
}

/// 200 sessions of two tenants whose agents all write at the same millisecond, and
/// half of whose end users answer at the same millisecond: every warning, push and
/// close of a round comes due at one instant, on every worker.
#[test]
fn timers_due_at_the_same_instant_on_different_workers_keep_one_threads_order() {
    let mut lines = Vec::new();
    for tenant in ["acme", "globex"] {
        for s in 0..100 {
            lines.push((0, opened(tenant, &format!("s{s}"), "web_chat")));
        }
    }
    for round in 0..3u64 {
        let at = 1_000 + round * 3_600_000;
        for tenant in ["acme", "globex"] {
            for s in 0..100 {
                lines.push((at, message(tenant, &format!("s{s}"), "agent")));
            }
        }
        for tenant in ["acme", "globex"] {
            for s in (0..100).step_by(2) {
                lines.push((at + 30_000, message(tenant, &format!("s{s}"), "end_user")));
            }
        }
        // A second agent message for some sessions re-arms their timers later.
        for s in (0..100).step_by(5) {
            lines.push((at + 45_000, message("globex", &format!("s{s}"), "agent")));
        }
    }
    let path = scratch("ties.jsonl");
    std::fs::write(&path, scenario(&lines)).unwrap_or_else(|e| panic!("{e}"));
    let transcript = same_on_threads(
        "examples/config.json",
        &path.display().to_string(),
        &[2, 3, 8],
    );
    // The ties are there: many actions at one instant, of sessions on different workers.
    let mut at_one_instant = std::collections::HashMap::<String, usize>::new();
    for line in transcript.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        *at_one_instant
            .entry(value["at_ms"].to_string())
            .or_default() += 1;
    }
    assert!(
        at_one_instant.values().any(|n| *n >= 100),
        "{at_one_instant:?}"
    );
}

#[test]
fn sessions_that_depend_on_each_other_give_the_same_transcript_and_say_why() {
    let path = scratch("depend.jsonl");
    let mut spec = Spec::new(
        600,
        vec!["acme".into(), "globex".into()],
        vec!["web_chat".into()],
    );
    spec.seed = 3;
    let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    generate::generate(&spec, &mut file).unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    let scenario = path.display().to_string();

    // A tenant's timer limit counts all its sessions.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/config.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut config: serde_json::Value =
        serde_json::from_str(&example).unwrap_or_else(|e| panic!("{e}"));
    config["tenants"]["acme"]["limits"] = serde_json::json!({"timers_per_tenant": 40});
    let limited = scratch("limited.json");
    std::fs::write(&limited, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let limited = limited.display().to_string();
    let (one, _) = replay(&limited, &scenario, 1, &[]);
    let (two, stats) = replay(&limited, &scenario, 2, &[]);
    assert!(
        stats.contains("within 16 timers of its limit of 40")
            && stats.contains("the rest replays on one thread"),
        "{stats}"
    );
    assert!(two == one, "the timer limit changed the transcript");

    // A failed hook backs off all the tenant's sessions: a tenant whose component
    // traps on a message with an attachment.
    let mut lines = Vec::new();
    for s in 0..40 {
        lines.push((0, opened("bad", &format!("s{s}"), "web_chat")));
    }
    for s in 0..40u64 {
        let mut line = message("bad", &format!("s{s}"), "agent");
        if s == 10 {
            line = line.replacen('{', r#"{"attachment":true,"#, 1);
        }
        lines.push((1_000 + s, line));
    }
    let trapping = scratch("trapping.jsonl");
    std::fs::write(&trapping, autoclose_tests::scenario(&lines)).unwrap_or_else(|e| panic!("{e}"));
    let bad = scratch("bad.json");
    std::fs::write(
        &bad,
        format!(
            r#"{{"tenants": {{"bad": {{"component": "{MISBEHAVING_PLUGIN}", "on_message": "trap-on-attachment"}}}}}}"#
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (bad, trapping) = (bad.display().to_string(), trapping.display().to_string());
    let (one, stats) = replay(&bad, &trapping, 1, &[]);
    assert!(stats.contains("on 1 thread;"), "{stats}");
    let (two, stats) = replay(&bad, &trapping, 2, &[]);
    assert!(
        stats.contains("a plugin hook failed") && stats.contains("on 1 thread;"),
        "{stats}"
    );
    assert!(two == one, "the failed hook changed the transcript");
    // Without --threads, a tenant's own component replays on one thread.
    let default = cli(&["replay", "--stats", "--config", &bad, &trapping]);
    assert!(
        text(&default.stderr).contains("on 1 thread;"),
        "{}",
        text(&default.stderr)
    );

    // Scripted webhook answers are shared by all sessions: one thread from the start.
    let with_answers = scratch("answers.jsonl");
    let generated = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let first_at = generated
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["at_ms"].as_u64())
        .unwrap_or(0);
    std::fs::write(
        &with_answers,
        format!(
            "{{\"at_ms\":{first_at},\"type\":\"webhook_response\",\"webhook\":\"mobile-push\",\"status\":503,\"repeat\":5}}\n{generated}"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let with_answers = with_answers.display().to_string();
    let (one, _) = replay("examples/config.json", &with_answers, 1, &[]);
    let (two, stats) = replay("examples/config.json", &with_answers, 2, &[]);
    assert!(stats.contains("on 1 thread;"), "{stats}");
    assert!(one.contains("status 503"), "the script was used");
    assert!(two == one);
}

/// Lines of one length, so that a file of an even number of them is cut by two
/// threads exactly in the middle: `open` or `message` of session `s` at `at`.
fn fixed(at: u64, kind: &str, s: u32) -> String {
    assert!((100_000..1_000_000).contains(&at));
    let open = format!(
        r#"{{"at_ms":{at},"type":"session_opened","tenant":"acme","session":"s{s:04}","channel":"web_chat"}}"#
    );
    if kind == "open" {
        return open;
    }
    let bare = format!(
        r#"{{"at_ms":{at},"type":"message","tenant":"acme","session":"s{s:04}","sender":"agent","text":""}}"#
    );
    let pad = "x".repeat(open.len() - bare.len());
    bare.replace(r#""text":"""#, &format!(r#""text":"{pad}""#))
}

/// Replays `lines` on 1, 2 and 4 threads; all must fail with the same message.
fn same_error(name: &str, lines: &[String]) -> String {
    let path = scratch(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    let path = path.display().to_string();
    let run = |threads: &str| {
        cli(&[
            "replay",
            "--threads",
            threads,
            "--config",
            "examples/config.json",
            &path,
        ])
    };
    let (one, two, four) = (run("1"), run("2"), run("4"));
    assert!(!one.status.success(), "{name}: accepted");
    assert!(
        one.stdout.is_empty() && two.stdout.is_empty(),
        "{name}: a partial transcript"
    );
    assert_eq!(text(&two.stderr), text(&one.stderr), "{name}");
    assert_eq!(text(&four.stderr), text(&one.stderr), "{name}");
    text(&one.stderr)
}

#[test]
fn a_bad_file_gets_the_same_error_from_the_check_on_several_threads() {
    // 200 lines of one length: opens, then messages; the second half starts at line
    // 101, a message whose session was opened in the first half.
    let mut lines: Vec<String> = (0..100)
        .map(|s| fixed(100_000 + s as u64, "open", s))
        .collect();
    lines.extend((0..100).map(|s| fixed(200_000 + s as u64, "message", s)));
    assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    let path = scratch("good.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    same_on_threads("examples/config.json", &path.display().to_string(), &[2, 4]);

    // Out of time order exactly where the second half starts.
    let mut out_of_order = lines.clone();
    out_of_order[100] = fixed(199_999, "message", 0).replace("199999", "100098");
    let error = same_error("order.jsonl", &out_of_order);
    assert!(
        error.contains("line 101: at_ms 100098 is earlier than 100099 on line 100"),
        "{error}"
    );

    // A message in the second half for a session no line opens, and a later bad line.
    let mut unknown = lines.clone();
    unknown[150] = fixed(200_050, "message", 0).replace("s0000", "s9999");
    unknown[190] = "{not json".into();
    let error = same_error("unknown.jsonl", &unknown);
    assert!(
        error.contains("line 151: message for session \"s9999\""),
        "{error}"
    );

    // Bad JSON in the second half, before a message for an unknown session.
    let mut both = lines.clone();
    both[120] = "{not json".into();
    both[150] = fixed(200_050, "message", 0).replace("s0000", "s9999");
    let error = same_error("json.jsonl", &both);
    assert!(error.contains("line 121: not valid JSON"), "{error}");
}
