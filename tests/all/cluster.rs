//! Several `autoclose serve` nodes on one PostgreSQL database: the built binary, real
//! processes killed with SIGKILL, each test in a database of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use autoclose_serve::shards::shard_of;
use autoclose_tests::postgres::TestDatabase;
use autoclose_tests::receiver::{Received, Receiver};
use autoclose_tests::server::{Server, scratch};
use serde_json::{Value, json};

use crate::serve::{BINARY, TOKEN, WAIT, body, config, opened, said, write};

/// Shards of the cluster tests: more than nodes, so that placement has choices.
const SHARDS: &str = "8";

fn cluster_config(actions: &Receiver, push: &Receiver, warn_after_s: u64) -> String {
    let mut value: Value =
        serde_json::from_str(&config(actions, push, "Still there?", warn_after_s))
            .unwrap_or(Value::Null);
    // The close comes 8 s after the warning, longer than a takeover: a warning push
    // that was on the wire when its node died is resent by the new owner before the
    // close, its deadline (a warning push is never sent once the chat has closed).
    value["tenants"]["acme"]["channels"]["web_chat"]["auto_close"]["close"]["after"] =
        json!(format!("{}s", warn_after_s + 8));
    // A short lease: a killed node's shards are taken over about two seconds after.
    value["store"] = json!({"kind": "postgres", "url": "env:AUTOCLOSE_DATABASE_URL", "pool": 4, "lease_ttl": "2s"});
    value.to_string()
}

struct Cluster {
    db: TestDatabase,
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Cluster {
    fn new(test: &str, actions: &Receiver, push: &Receiver, warn_after_s: u64) -> Self {
        let db = TestDatabase::create(test);
        let dir = scratch(&format!("cluster-{test}"));
        let config = dir.join("config.json");
        write(&config, &cluster_config(actions, push, warn_after_s));
        Cluster { db, dir, config }
    }

    fn start(&self, name: &str) -> Server {
        Server::start_with(
            BINARY,
            &self.config,
            &self.dir.join(name),
            &[("AUTOCLOSE_DATABASE_URL", self.db.url.as_str())],
            &["--shards", SHARDS],
        )
    }

    /// Starts the nodes `names`, waits until they have split the shards, and returns
    /// them with their URLs for a [`Load`].
    fn start_spread(&self, names: &[&str]) -> (Vec<Server>, Urls) {
        let servers: Vec<Server> = names.iter().map(|n| self.start(n)).collect();
        wait_spread(&servers[0], names.len());
        let urls = servers.iter().map(|s| s.url("")).collect();
        (servers, std::sync::Arc::new(std::sync::Mutex::new(urls)))
    }
}

/// The base URLs a [`Load`] posts to, changed as nodes come and go.
type Urls = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Waits until `nodes` live nodes own every shard between them, each its fair share;
/// returns each node's id with its shards.
fn wait_spread(server: &Server, nodes: usize) -> BTreeMap<String, Vec<usize>> {
    let shards: usize = SHARDS.parse().unwrap_or(0);
    let answer = server.wait_for_state("/v1/admin/nodes", Some(TOKEN), WAIT, |body| {
        let Some(list) = body["nodes"].as_array() else {
            return false;
        };
        let owned: usize = list
            .iter()
            .map(|n| n["shards"].as_array().map_or(0, Vec::len))
            .sum();
        // The placement's fair share: shards / nodes each, one more for some.
        let fair = |n: &Value| {
            n["shards"]
                .as_array()
                .is_some_and(|s| s.len() == shards / nodes || s.len() == shards.div_ceil(nodes))
        };
        list.len() == nodes && owned == shards && list.iter().all(fair)
    });
    answer["nodes"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|n| {
                    let shards = n["shards"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_u64)
                                .map(|s| s as usize)
                                .collect()
                        })
                        .unwrap_or_default();
                    (n["node"].as_str().unwrap_or("").to_owned(), shards)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn node_of(server: &Server) -> String {
    let health = server.request("GET", "/healthz", None, &[], None);
    health.body["node"].as_str().unwrap_or("").to_owned()
}

/// Each session's deliveries as `what` in arrival order, one per id (a resend after a
/// takeover carries the id it had): the list and how many ids were seen twice.
fn by_session_once(
    received: &[Received],
    what: impl Fn(&Value) -> String,
) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut resent = 0;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in received {
        let id = r
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !seen.insert(id) {
            resent += 1;
            continue;
        }
        let b = body(r);
        // Callbacks name the session at the top, pushes in `data`.
        let session = b["session"]
            .as_str()
            .or_else(|| b["data"]["session"].as_str())
            .unwrap_or("?")
            .to_owned();
        out.entry(session).or_default().push(what(&b));
    }
    (out, resent)
}

/// Three nodes share 600 sessions, their events posted to all three. One node is
/// killed mid-cycle, a fresh node joins in its place, and another node is killed as
/// the warnings go out: every acknowledged session still gets its warning, both
/// pushes and its close, in order, each under one id.
#[test]
fn sessions_of_killed_nodes_are_warned_and_closed_by_the_others() {
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let cluster = Cluster::new("kill", &actions, &push, 4);
    let a = cluster.start("a");
    let b = cluster.start("b");
    let c = cluster.start("c");
    let placed = wait_spread(&a, 3);
    let shards: usize = SHARDS.parse().unwrap_or(1);

    let sessions: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
    let nodes = [&a, &b, &c];
    for (i, session) in sessions.iter().enumerate() {
        // Spread over the nodes, whichever owns the session's shard.
        let node = nodes[(i * 7 + i / 3) % 3];
        node.ingest(
            Some(TOKEN),
            &json!([opened(session, "web_chat"), said(session, "agent")]),
        );
    }
    // b dies mid-cycle: its sessions' warnings are 4 s away.
    let b_shards = placed.get(&node_of(&b)).cloned().unwrap_or_default();
    assert!(!b_shards.is_empty());
    b.crash();
    let killed_at = Instant::now();
    let d = cluster.start("d");
    // c dies as the warnings go out.
    actions.wait_until("the first warnings", WAIT, |r| r.len() >= 50);
    c.crash();

    assert_every_cycle(&actions, &push, &sessions);
    let received = actions.received();
    // The figure: from the kill to the first action of a shard b owned.
    let first_taken_over = received
        .iter()
        .filter(|r| {
            let session = body(r)["session"].as_str().unwrap_or("").to_owned();
            b_shards.contains(&shard_of("acme", &session, shards))
        })
        .map(|r| r.at)
        .filter(|at| *at > killed_at)
        .min();
    eprintln!(
        "cluster: first action of a taken-over shard {:?} after the kill",
        first_taken_over.map(|at| at - killed_at)
    );
    assert!(first_taken_over.is_some());
    let (status, stderr) = d.terminate(WAIT);
    assert!(status.success(), "{stderr}");
    let (status, stderr) = a.terminate(WAIT);
    assert!(status.success(), "{stderr}");
}

/// A fourth node joins three under load: it takes its fair share, the others give it
/// a bounded number of shards, and nothing acknowledged is lost.
#[test]
fn a_fourth_node_joins_under_load_takes_its_share_and_nothing_is_lost() {
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let cluster = Cluster::new("join", &actions, &push, 3);
    let (mut servers, urls) = cluster.start_spread(&["a", "b", "c"]);
    let load = Load::start("j", urls.clone());
    actions.wait_until("load under way", WAIT, |r| r.len() >= 10);
    let moves = |server: &Server, outcome: &str| {
        let (_, text) = server.get("/metrics");
        let prefix = format!("autoclose_shard_moves_total{{outcome=\"{outcome}\"}}");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let given_before: f64 = servers.iter().map(|s| moves(s, "given")).sum();
    let d = cluster.start("d");
    if let Ok(mut urls) = urls.lock() {
        urls.push(d.url(""));
    }
    let placed = wait_spread(&d, 4);
    let shards: usize = SHARDS.parse().unwrap_or(0);
    for (node, owned) in &placed {
        assert_eq!(
            owned.len(),
            shards / 4,
            "{node}: the fair share: {placed:?}"
        );
    }
    let given: f64 = servers.iter().map(|s| moves(s, "given")).sum::<f64>() - given_before;
    // The new node's share is 2 of 8; bounded loads move a few more, never all.
    assert!(
        (2.0..=6.0).contains(&given),
        "{given} shards given away for a share of 2"
    );
    // The placement shows a lease as soon as it is taken; the node counts the move
    // once it has read the shard and its engine serves it, a moment later.
    let deadline = Instant::now() + WAIT;
    while moves(&d, "taken") < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(moves(&d, "taken"), 2.0);
    let (acked, _) = load.finish();
    assert_every_cycle(&actions, &push, &acked);
    servers.push(d);
    for server in servers {
        let (status, stderr) = server.terminate(WAIT);
        assert!(status.success(), "{stderr}");
    }
}

/// Sessions a load thread got `202` for, posting one session per request to
/// whichever node answers (the next one when a node is stopping or down).
struct Load {
    acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(prefix: &str, nodes: Urls) -> Self {
        use std::sync::atomic::Ordering;
        let acked: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let refused: std::sync::Arc<std::sync::atomic::AtomicUsize> = Default::default();
        let stop: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
        let (a, r, s, prefix) = (
            acked.clone(),
            refused.clone(),
            stop.clone(),
            prefix.to_owned(),
        );
        let thread = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            let mut turn = 0usize;
            let mut next = 0usize;
            while !s.load(Ordering::SeqCst) {
                let session = format!("{prefix}{next}");
                let events = json!([opened(&session, "web_chat"), said(&session, "agent")]);
                let urls = nodes.lock().map(|n| n.clone()).unwrap_or_default();
                turn += 1;
                let Some(url) = urls.get(turn % urls.len().max(1)) else {
                    continue;
                };
                let answer = client
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(events.to_string())
                    .send();
                match answer.map(|a| a.status().as_u16()) {
                    Ok(202) => {
                        if let Ok(mut acked) = a.lock() {
                            acked.push(session);
                        }
                        next += 1;
                    }
                    // Refused or unreachable: nothing acknowledged; sent again, to
                    // the next node.
                    _ => {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        Load {
            acked,
            refused,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread; returns the sessions acknowledged and the requests refused.
    fn finish(mut self) -> (Vec<String>, usize) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let acked = self.acked.lock().map(|a| a.clone()).unwrap_or_default();
        (acked, self.refused.load(Ordering::SeqCst))
    }

    fn acked(&self) -> usize {
        self.acked.lock().map(|a| a.len()).unwrap_or(0)
    }
}

/// Waits until `missing` finds nothing missing in what `receiver` got, at most
/// `timeout`. `missing` runs outside the receiver's lock, only once at least `least`
/// requests arrived and then once per new arrival: evaluated under the lock on every
/// arrival, a check over thousands of requests would slow the receiver down until the
/// senders time out.
fn wait_complete(
    receiver: &Receiver,
    least: usize,
    missing: impl Fn(&[Received]) -> Vec<String>,
) -> Vec<Received> {
    let deadline = Instant::now() + WAIT * 2;
    let mut want = least;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = receiver
            .wait_for(left, |r| r.len() >= want)
            .unwrap_or_else(|r| r);
        let absent = missing(&received);
        if absent.is_empty() {
            return received;
        }
        if Instant::now() >= deadline {
            let shown: Vec<&str> = absent.iter().take(20).map(String::as_str).collect();
            panic!(
                "{} missing after {:?} ({} requests received), e.g.\n{}",
                absent.len(),
                WAIT * 2,
                received.len(),
                shown.join("\n")
            );
        }
        want = received.len() + 1;
    }
}

/// Every acknowledged session of `sessions` gets warning, close message and close,
/// each once (by id), in that order; and its two pushes, each once.
fn assert_every_cycle(actions: &Receiver, push: &Receiver, sessions: &[String]) {
    let cycle = [
        "post_message/warning".to_owned(),
        "post_message/close".to_owned(),
        "close_session/".to_owned(),
    ];
    let kinds = |received: &[Received]| {
        by_session_once(received, |b| {
            format!(
                "{}/{}",
                b["type"].as_str().unwrap_or("?"),
                b["kind"].as_str().unwrap_or("")
            )
        })
    };
    let received = wait_complete(actions, sessions.len() * 3, |r| {
        let (seen, _) = kinds(r);
        sessions
            .iter()
            .filter(|s| seen.get(*s).is_none_or(|v| v.len() < 3))
            .map(|s| format!("{s}: {:?}", seen.get(s)))
            .collect()
    });
    let (callbacks, resent) = kinds(&received);
    for session in sessions {
        assert_eq!(
            callbacks.get(session).map(Vec::as_slice),
            Some(&cycle[..]),
            "{session}"
        );
    }
    let pushes = wait_complete(push, sessions.len() * 2, |r| {
        let (seen, _) = by_session_once(r, |b| b["type"].to_string());
        sessions
            .iter()
            .filter(|s| seen.get(*s).is_none_or(|v| v.len() < 2))
            .map(|s| format!("{s}: {:?}", seen.get(s)))
            .collect()
    });
    let (pushed, pushes_resent) = by_session_once(&pushes, |b| b["type"].to_string());
    for session in sessions {
        assert_eq!(
            pushed.get(session).map(Vec::len),
            Some(2),
            "{session}: two pushes, each under one id"
        );
    }
    eprintln!(
        "{} sessions: {resent} callbacks and {pushes_resent} pushes resent under their id",
        sessions.len()
    );
}

/// Every node is restarted in turn (SIGTERM, a new process in its place) while a
/// client keeps posting: nothing acknowledged is lost.
#[test]
fn a_rolling_restart_under_load_loses_nothing() {
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let cluster = Cluster::new("rolling", &actions, &push, 3);
    let (mut servers, urls) = cluster.start_spread(&["a", "b", "c"]);
    let load = Load::start("r", urls.clone());
    for (round, name) in ["a2", "b2", "c2"].iter().enumerate() {
        let before = load.acked();
        actions.wait_until("load under way", WAIT, |r| r.len() > round * 5);
        let old = servers.remove(0);
        if let Ok(mut urls) = urls.lock() {
            urls.retain(|u| *u != old.url(""));
        }
        let (status, stderr) = old.terminate(WAIT);
        assert!(status.success(), "{stderr}");
        let new = cluster.start(name);
        if let Ok(mut urls) = urls.lock() {
            urls.push(new.url(""));
        }
        servers.push(new);
        wait_spread(&servers[0], 3);
        assert!(load.acked() > before, "the load went on during the restart");
    }
    let (acked, refused) = load.finish();
    eprintln!(
        "rolling restart: {} sessions acknowledged, {refused} requests refused or unreachable and sent again",
        acked.len()
    );
    assert_every_cycle(&actions, &push, &acked);
    for server in servers {
        let (status, stderr) = server.terminate(WAIT);
        assert!(status.success(), "{stderr}");
    }
}

/// The database goes down under load (stopped as a crash would) and comes back:
/// ingest answers `503` while it is down, never `202`; the nodes take their shards
/// again on their own, and every acknowledged session is still warned and closed.
#[test]
fn a_database_restarted_under_load_refuses_while_down_and_loses_nothing() {
    let pg = autoclose_tests::postgres::PrivateServer::start("restart");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let dir = scratch("cluster-pg-restart");
    let config = dir.join("config.json");
    write(&config, &cluster_config(&actions, &push, 3));
    let url = pg.url();
    let start = |name: &str| {
        Server::start_with(
            BINARY,
            &config,
            &dir.join(name),
            &[("AUTOCLOSE_DATABASE_URL", url.as_str())],
            &["--shards", SHARDS],
        )
    };
    let a = start("a");
    let b = start("b");
    wait_spread(&a, 2);
    let urls = std::sync::Arc::new(std::sync::Mutex::new(vec![a.url(""), b.url("")]));
    let load = Load::start("p", urls);
    actions.wait_until("load under way", WAIT, |r| r.len() >= 10);

    pg.down();
    let while_down = json!([opened("down-1", "web_chat"), said("down-1", "agent")]);
    for node in [&a, &b] {
        let (status, body) = node.post("/v1/events", Some(TOKEN), while_down.to_string());
        assert_eq!(status, 503, "{body}");
    }
    pg.up();
    // Both nodes serve again, without a restart.
    wait_spread(&a, 2);
    let before = load.acked();
    a.wait_for_state("/healthz", None, WAIT, |_| load.acked() > before + 20);
    let (acked, refused) = load.finish();
    eprintln!(
        "database restart: {} sessions acknowledged, {refused} requests refused while it was down",
        acked.len()
    );
    assert!(refused > 0, "the load saw the database down");
    assert!(!acked.iter().any(|s| s == "down-1"));
    assert_every_cycle(&actions, &push, &acked);
    for server in [a, b] {
        let (status, stderr) = server.terminate(WAIT);
        assert!(status.success(), "{stderr}");
    }
}

/// The three-node example of docs/cluster.md runs as written: the nodes split the
/// shards and take an event.
#[test]
fn the_three_node_example_script_runs() {
    let db = TestDatabase::create("example");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/cluster/run.sh");
    let output = std::process::Command::new("bash")
        .args([script, "--smoke"])
        .env("AUTOCLOSE_BIN", BINARY)
        .env("DATABASE_URL", &db.url)
        .env("BASE_PORT", "0")
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let split: Value =
        serde_json::from_str(stdout.lines().next().unwrap_or("")).unwrap_or(Value::Null);
    let owned: usize = split["nodes"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|n| n["shards"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(owned, 12, "{stdout}");
    assert!(
        stdout.contains("an event posted to the second node: 202"),
        "{stdout}"
    );
}
