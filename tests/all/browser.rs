//! Pages in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`) driven through chromedriver with
//! fantoccini. Screenshots go to `target/browser/` (the docs show copies).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::run_cli as cli;

/// A chromedriver process; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Starts chromedriver and waits until it says it is ready (`GET /status`).
fn driver() -> Driver {
    let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)")
        });
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = reqwest::blocking::get(format!("{}/status", driver.url))
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .is_some_and(|v| v["value"]["ready"] == true);
        if ready {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A headless Chromium session, with the browser's console kept.
async fn browser(driver: &Driver) -> Client {
    // chromedriver is plain HTTP on 127.0.0.1; fantoccini's client still wants a
    // TLS provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--window-size=1280,1800"]
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::rustls()
        .unwrap_or_else(|e| panic!("{e}"))
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium: {e}"))
}

/// The browser console's messages so far (chromedriver's log of the session).
async fn console(driver: &Driver, session: &str) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot read the console: {e}"));
    let value: Value = answer
        .json()
        .await
        .unwrap_or_else(|e| panic!("cannot read the console: {e}"));
    value["value"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no console log: {value}"))
}

/// The runtime a browser test drives its WebDriver client on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The element `css` selects, once the page has it.
async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .for_element(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Clicks the element `css` selects, once the page has it. An element found on the
/// page a click before was leaving goes stale as the next page loads: it is looked up
/// again there (a few times at most).
async fn click(client: &Client, css: &str) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match element(client, css).await.click().await {
            Ok(_) => return,
            Err(e) if attempts < 5 && e.to_string().contains("stale element") => {}
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
}

/// Types `text` into the element `css` selects, once the page has it.
async fn type_into(client: &Client, css: &str, text: &str) {
    element(client, css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

/// Asserts that the browser's console holds no error and no warning.
async fn assert_quiet_console(driver: &Driver, client: &Client) {
    let session = client
        .session_id()
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no session id"));
    let messages = console(driver, &session).await;
    let errors: Vec<&Value> = messages
        .iter()
        .filter(|m| m["level"] == "SEVERE" || m["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "console: {errors:?}");
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// The what-if report of the README's example log under two configurations opens in
/// Chromium with its three charts drawn (each SVG laid out with a size, bars and
/// lines in it), its tables filled, and nothing on the console.
#[test]
fn the_whatif_report_renders_its_charts_in_chromium() {
    let dir = out_dir();
    let layer = |warn: &str, close: &str| {
        format!(
            r#"{{"webhooks": {{"push": {{"url": "https://push.example.com/hook"}}}},
                "tenants": {{"acme": {{"webhooks": ["push"], "channels": {{"web_chat": {{"auto_close": {{
                  "warnings": [{{"after": "{warn}", "message": "Still there?", "push": true}}],
                  "close": {{"after": "{close}"}}, "push": {{"webhook": "push"}}}}}}}}}}}}}}"#
        )
    };
    let a = dir.join("whatif-a.json");
    let b = dir.join("whatif-b.json");
    std::fs::write(&a, layer("3m", "5m")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&b, layer("8m", "10m")).unwrap_or_else(|e| panic!("{e}"));
    let log = dir.join("whatif.jsonl");
    let generated = cli(&[
        "generate",
        "--sessions",
        "300",
        "--tenants",
        "acme",
        "--channels",
        "web_chat",
        "--reply-times",
        "realistic",
        "-o",
        &log.to_string_lossy(),
    ]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let report = dir.join("whatif.html");
    let out = cli(&[
        "whatif",
        "--config",
        &a.to_string_lossy(),
        "--config",
        &b.to_string_lossy(),
        "--label",
        "5 minutes",
        "--label",
        "10 minutes",
        "--report",
        &report.to_string_lossy(),
        &log.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let driver = driver();
    let runtime = runtime();
    runtime.block_on(async {
        let client = browser(&driver).await;
        let url = format!("file://{}", report.canonicalize().unwrap_or(report.clone()).display());
        client.goto(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let charts = client
            .execute(
                r#"return Array.from(document.querySelectorAll('figure[data-chart]')).map(f => {
                     const svg = f.querySelector('svg');
                     const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                     return {chart: f.dataset.chart, width: box.width, height: box.height,
                             shapes: svg ? svg.querySelectorAll('rect, polyline, circle, path').length : 0,
                             texts: svg ? svg.querySelectorAll('text').length : 0};
                   });"#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let charts = charts.as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = charts.iter().filter_map(|c| c["chart"].as_str()).collect();
        assert_eq!(names, ["totals", "close-delays", "closes-by-hour"], "{charts:?}");
        for chart in &charts {
            assert!(
                chart["width"].as_f64().unwrap_or(0.0) > 300.0
                    && chart["height"].as_f64().unwrap_or(0.0) > 150.0,
                "not laid out: {chart}"
            );
            assert!(chart["shapes"].as_u64().unwrap_or(0) > 5, "nothing drawn: {chart}");
            assert!(chart["texts"].as_u64().unwrap_or(0) > 3, "no labels: {chart}");
        }
        let rows = client
            .execute(
                "return document.querySelectorAll('#totals tr').length;",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows, json!(3), "a header and a row per configuration");
        let shot = client.screenshot().await.unwrap_or_else(|e| panic!("{e}"));
        // docs/whatif-report.png is a copy of this one.
        std::fs::write(dir.join("whatif-report.png"), &shot).unwrap_or_else(|e| panic!("{e}"));
        assert_quiet_console(&driver, &client).await;
        client.close().await.unwrap_or_else(|e| panic!("{e}"));
    });
}

/// The console of a live `serve` that warned and closed a chat, in Chromium: signed
/// in through its form, the session found by the search, its timeline showing the
/// warning, the push attempts and the close with its rule; a pending timer counting
/// down (the script ran under the page's content security policy); the tenant page
/// with its component's explanation; nothing on the console. Screenshots:
/// `target/browser/console-session.png` and `console-tenant.png` (docs/ has copies).
#[test]
fn the_console_shows_a_closed_chat_s_timeline_in_chromium() {
    use crate::console::{ADMIN, Served, served};
    use crate::serve::{TOKEN, WAIT, has_close, said};
    let Served {
        actions,
        push,
        server,
        config_path: _,
        data: _,
    } = served("browser-console");
    server.ingest(
        Some(TOKEN),
        &json!([
            {"type": "session_opened", "tenant": "acme", "session": "chat-2291", "channel": "web_chat",
             "attributes": {"locale": "en"}},
            said("chat-2291", "agent"),
            {"type": "session_opened", "tenant": "globex", "session": "g1", "channel": "web_chat"},
            {"type": "message", "tenant": "globex", "session": "g1", "sender": "agent"},
        ]),
    );
    actions.wait_until("chat-2291's close", WAIT, |r| has_close(r, "chat-2291"));
    // The close's push is retried once: wait until its second attempt is recorded.
    push.wait_until("the close push's retry", WAIT, |r| r.len() >= 3);
    let out = out_dir();

    let driver = driver();
    let runtime = runtime();
    runtime.block_on(async {
        let client = browser(&driver).await;
        let fail = |e: fantoccini::error::CmdError| -> ! { panic!("{e}") };
        client
            .goto(&server.url("/ui/sessions"))
            .await
            .unwrap_or_else(|e| fail(e));
        // Sent to the sign-in page; the operator's token opens the console.
        type_into(&client, "#token", ADMIN).await;
        click(&client, "form.sign-in button").await;
        // Search: the closed sessions whose id has 2291 in it.
        type_into(&client, "form.search input[name=session]", "2291").await;
        click(
            &client,
            "form.search select[name=state] option[value=closed]",
        )
        .await;
        click(&client, "form.search button").await;
        click(&client, "tr[data-session=chat-2291] a").await;
        element(&client, "ol.timeline").await;
        let steps = client
            .execute(
                r#"return Array.from(document.querySelectorAll('ol.timeline li')).map(li => ({
                     kind: li.className, text: li.innerText,
                     visible: li.getBoundingClientRect().height > 0}));"#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| fail(e));
        let steps = steps.as_array().cloned().unwrap_or_default();
        let texts: Vec<String> = steps
            .iter()
            .map(|s| s["text"].as_str().unwrap_or("").replace('\n', " "))
            .collect();
        let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
        assert!(has("posted the warning into the chat"), "{texts:#?}");
        assert!(
            has("warning: the end user was silent for 1s after the agent's message"),
            "{texts:#?}"
        );
        assert!(has("attempt 1: status 503"), "{texts:#?}");
        assert!(has("attempt 2: status 200"), "{texts:#?}");
        assert!(
            has("closed: the end user was silent for 3s after the agent's message"),
            "{texts:#?}"
        );
        assert!(
            steps.iter().all(|s| s["visible"] == true),
            "every step is laid out"
        );
        let shot = client.screenshot().await.unwrap_or_else(|e| fail(e));
        std::fs::write(out.join("console-session.png"), &shot).unwrap_or_else(|e| panic!("{e}"));

        // A pending timer counts down: the script ran.
        client
            .goto(&server.url("/ui/sessions/globex/g1"))
            .await
            .unwrap_or_else(|e| fail(e));
        let ticking = element(&client, ".countdown[data-ticking=yes]").await;
        let left = ticking.text().await.unwrap_or_else(|e| fail(e));
        assert!(
            left.starts_with('9') && left.contains('m'),
            "10m timer: {left}"
        );

        // The tenant page with what its settings do.
        client
            .goto(&server.url("/ui/tenants/acme"))
            .await
            .unwrap_or_else(|e| fail(e));
        let explain = element(&client, "pre.explain")
            .await
            .text()
            .await
            .unwrap_or_else(|e| fail(e));
        assert!(explain.contains("web_chat"), "{explain}");
        let shot = client.screenshot().await.unwrap_or_else(|e| fail(e));
        std::fs::write(out.join("console-tenant.png"), &shot).unwrap_or_else(|e| panic!("{e}"));

        assert_quiet_console(&driver, &client).await;
        client.close().await.unwrap_or_else(|e| fail(e));
    });
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{status:?}\n{stderr}");
}
