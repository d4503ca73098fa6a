//! The console at `/ui` of a live `autoclose serve`, over plain HTTP: sign-in and
//! scopes, the sessions search, a warned and closed session's timeline with the rule
//! behind each action and every delivery attempt, the tenant page, and the history
//! still there after a restart. (`browser.rs` opens the same pages in Chromium.)

use std::time::{Duration, Instant};

use autoclose_tests::receiver::{Receiver, Reply};
use autoclose_tests::server::{Server, scratch};
use serde_json::json;

use crate::serve::{BINARY, TOKEN, WAIT, has_close, said, write};

/// The operator's token for the admin routes and the console.
pub(crate) const ADMIN: &str = "console-admin-token-0123456789";
/// globex's own token.
pub(crate) const GLOBEX: &str = "console-globex-token-0123456789";

/// acme warns after 1s and closes 2s later, pushing both; globex closes after 10m.
pub(crate) fn config(actions: &Receiver, push: &Receiver) -> String {
    json!({
        "webhooks": {"push": {"url": push.url("/push")}},
        "egress": {"allow_private_networks": true},
        "gateway": {"actions_url": actions.url("/actions")},
        "ingest": {"token": TOKEN},
        "admin": {"token": ADMIN, "tenants": {"globex": {"token": GLOBEX}}},
        "tenants": {
            "acme": {"webhooks": ["push"], "channels": {"web_chat": {"auto_close": {
                "warnings": [{"after": "1s", "message": "Still there?", "push": true}],
                "close": {"after": "3s", "message": "Closed.", "push": true},
                "push": {"webhook": "push"}}}}},
            "globex": {"channels": {"web_chat": {"auto_close": {"close": {"after": "10m"}}}}}
        }
    })
    .to_string()
}

/// A `serve` on [`config`] with its receivers, started.
pub(crate) struct Served {
    /// The gateway's callback.
    pub(crate) actions: Receiver,
    /// The push service: the close's push fails once, so its timeline shows a retry.
    pub(crate) push: Receiver,
    pub(crate) config_path: std::path::PathBuf,
    pub(crate) data: std::path::PathBuf,
    pub(crate) server: Server,
}

/// Starts a `serve` on [`config`] in scratch directory `name`.
pub(crate) fn served(name: &str) -> Served {
    let dir = scratch(name);
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![
        Reply::status(200),
        Reply::status(503).header("retry-after", "1"),
    ]);
    let config_path = dir.join("config.json");
    write(&config_path, &config(&actions, &push));
    let data = dir.join("data");
    let server = Server::start(BINARY, &config_path, &data, &[]);
    Served {
        actions,
        push,
        config_path,
        data,
        server,
    }
}

/// A browser-like client that does not follow redirects, so that they can be
/// checked, and sends the console's cookie when it has one.
pub(crate) struct Visitor {
    client: reqwest::blocking::Client,
    base: String,
    cookie: Option<String>,
}

impl Visitor {
    pub(crate) fn new(server: &Server) -> Self {
        Visitor {
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
            base: server.url(""),
            cookie: None,
        }
    }

    /// GETs `path`: status, `Location`, body.
    pub(crate) fn get(&self, path: &str) -> (u16, String, String) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, location, response.text().unwrap_or_default())
    }

    /// Signs in with `token`; returns the status.
    pub(crate) fn sign_in(&mut self, token: &str) -> u16 {
        let response = self
            .client
            .post(format!("{}/ui/login", self.base))
            .form(&[("token", token)])
            .send()
            .unwrap_or_else(|e| panic!("sign in: {e}"));
        if let Some(cookie) = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            self.cookie = cookie.split(';').next().map(str::to_owned);
        }
        response.status().as_u16()
    }

    /// GETs `path` until its body contains every one of `needles` (the engine
    /// records a delivery's outcome when its answer comes back), at most [`WAIT`].
    pub(crate) fn wait_for(&self, path: &str, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, _, body) = self.get(path);
            if status == 200 && needles.iter().all(|n| body.contains(n)) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never showed {needles:?}; last ({status}):\n{body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The agent's message at `HH:MM:SS` UTC, as the console prints it, from the
/// warning's callback (its `at_ms` is the warning's time, 1s after the message).
fn agent_clock(warned_at_ms: u64) -> String {
    let seconds = (warned_at_ms - 1_000) / 1_000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[test]
fn the_console_shows_why_a_chat_was_warned_and_closed_and_keeps_it_across_a_restart() {
    // Every receiver bound: one left to `..` would be dropped, and stop answering.
    let Served {
        actions,
        push: _push,
        config_path,
        data,
        server,
    } = served("console");
    server.ingest(
        Some(TOKEN),
        &json!([
            {"type": "session_opened", "tenant": "acme", "session": "w1", "channel": "web_chat"},
            said("w1", "agent"),
            {"type": "session_opened", "tenant": "acme", "session": "open-1", "channel": "web_chat"},
            {"type": "session_opened", "tenant": "globex", "session": "g1", "channel": "web_chat"},
        ]),
    );
    let callbacks = actions.wait_until("w1's close", WAIT, |r| has_close(r, "w1"));
    let warned_at = callbacks
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .find(|b| b["session"] == "w1" && b["kind"] == "warning")
        .and_then(|b| b["at_ms"].as_u64())
        .unwrap_or_else(|| panic!("no warning callback"));

    // Nothing without signing in; a wrong token opens nothing.
    let mut visitor = Visitor::new(&server);
    let (status, location, _) = visitor.get("/ui/sessions");
    assert_eq!((status, location.as_str()), (303, "/ui/login"));
    assert_eq!(visitor.sign_in("not-a-token-of-this-server"), 401);
    assert_eq!(
        visitor.sign_in(TOKEN),
        401,
        "admin.token is set: the ingest token no longer opens the console"
    );
    assert_eq!(visitor.sign_in(ADMIN), 303);

    // The search finds w1 among the closed sessions, and only there.
    let (status, _, closed) = visitor.get("/ui/sessions?tenant=acme&state=closed");
    assert_eq!(status, 200, "{closed}");
    assert!(closed.contains(r#"data-session="w1""#), "{closed}");
    assert!(!closed.contains(r#"data-session="open-1""#), "{closed}");
    let (_, _, by_id) = visitor.get("/ui/sessions?session=open");
    assert!(by_id.contains(r#"data-session="open-1""#) && !by_id.contains(r#"data-session="w1""#));

    // Its timeline: the agent's message, the warning and the close with their rule,
    // every push attempt, and the chat actions delivered to the gateway.
    let rule = format!(
        "closed: the end user was silent for 3s after the agent's message at {}",
        agent_clock(warned_at)
    );
    let page = visitor.wait_for(
        "/ui/sessions/acme/w1",
        &[
            "message from the agent",
            "cycle started:",
            "posted the warning into the chat",
            &format!(
                "warning: the end user was silent for 1s after the agent's message at {}",
                agent_clock(warned_at)
            ),
            "attempt 1: status 503",
            "attempt 2: status 200",
            "closed the session (inactivity)",
            &rule,
            "close session",
            "to the gateway, attempt 1: status 200: delivered",
        ],
    );
    assert!(
        page.contains("closed</span>"),
        "its state is closed:\n{page}"
    );
    let warning = page.find("posted the warning").unwrap_or(usize::MAX);
    let close = page.find("closed the session").unwrap_or(0);
    assert!(warning < close, "newest last");

    // The tenant page: counts and what its settings do, from the component.
    let (status, _, tenant) = visitor.get("/ui/tenants/acme");
    assert_eq!(status, 200, "{tenant}");
    assert!(tenant.contains("web_chat"), "{tenant}");
    assert!(
        tenant.contains("running") || tenant.contains("Pushes delivered"),
        "{tenant}"
    );

    // globex's token sees globex only.
    let mut globex = Visitor::new(&server);
    assert_eq!(globex.sign_in(GLOBEX), 303);
    let (status, _, _) = globex.get("/ui/sessions/acme/w1");
    assert_eq!(status, 403);
    let (status, _, _) = globex.get("/ui/tenants/acme");
    assert_eq!(status, 403);
    let (_, _, theirs) = globex.get("/ui/sessions?tenant=acme");
    assert!(
        theirs.contains(r#"data-session="g1""#) && !theirs.contains("w1"),
        "{theirs}"
    );

    // After a restart the history is read back from the store with the session.
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{status:?}\n{stderr}");
    let server = Server::start(BINARY, &config_path, &data, &[]);
    let mut visitor = Visitor::new(&server);
    assert_eq!(visitor.sign_in(ADMIN), 303);
    let (status, _, again) = visitor.get("/ui/sessions/acme/w1");
    assert_eq!(status, 200);
    assert!(again.contains(&rule), "{again}");
    assert!(again.contains("attempt 1: status 503"), "{again}");
    let (status, _, _) = visitor.get("/ui/sessions/acme/never-seen");
    assert_eq!(status, 404);
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{status:?}\n{stderr}");
}
