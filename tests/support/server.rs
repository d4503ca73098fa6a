//! `autoclose serve` as a real child process for tests: started on a free loopback
//! port with its own data directory, driven over HTTP, stopped with real signals.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Longest a server may take to start listening (a debug build compiles the plugin).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// An answer of [`Server::request`].
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The body as JSON (`Null` if it is not JSON).
    pub body: Value,
}

/// A running server process.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything it wrote to stderr so far.
    stderr: Arc<(Mutex<String>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
    client: reqwest::blocking::Client,
}

/// A scratch directory under the system's temporary directory, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Starts `binary serve --config CONFIG --data DATA --listen 127.0.0.1:0` and waits
/// for its "listening" line. The child's stderr is collected for assertions.
pub fn spawn(binary: &str, config: &Path, data: &Path, env: &[(&str, &str)]) -> Child {
    spawn_with(binary, config, data, env, &[])
}

/// [`spawn`] with extra command-line arguments.
pub fn spawn_with(
    binary: &str,
    config: &Path,
    data: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Child {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--shutdown-grace", "5s"])
        .args(args)
        .env("AUTOCLOSE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"))
}

impl Server {
    /// Starts a server and waits until it listens; panics with its stderr if it exits
    /// first or takes longer than [`START_TIMEOUT`].
    pub fn start(binary: &str, config: &Path, data: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(binary, config, data, env, &[])
    }

    /// [`Server::start`] with extra command-line arguments.
    pub fn start_with(
        binary: &str,
        config: &Path,
        data: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let mut child = spawn_with(binary, config, data, env, args);
        let stderr: Arc<(Mutex<String>, Condvar)> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let collected = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let (lock, grew) = &*collected;
                let mut text = lock.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
                grew.notify_all();
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr
                .parse()
                .unwrap_or_else(|e| panic!("bad address {addr:?}: {e}")),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "the server did not start ({status:?}):\n{}",
                    stderr.0.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        };
        Server {
            child,
            addr,
            stderr,
            reader: Some(reader),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_else(|e| panic!("client: {e}")),
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to `path` with an optional bearer token; returns the status and
    /// the body as JSON (`Null` if it is not JSON).
    pub fn post(&self, path: &str, token: Option<&str>, body: impl Into<Vec<u8>>) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.into());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.stderr()));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GETs `path`; returns the status and the body text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    /// Sends `method path` with an optional bearer token, extra headers and body;
    /// returns the status, the `ETag` (if any) and the body as JSON (`Null` if it is
    /// not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("method {method}: {e}"));
        let mut request = self.client.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.stderr()));
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().unwrap_or_default();
        Reply {
            status,
            etag,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// POSTs events (a JSON value) to `/v1/events` and asserts `202`.
    pub fn ingest(&self, token: Option<&str>, events: &Value) {
        let (status, body) = self.post("/v1/events", token, events.to_string());
        assert_eq!(status, 202, "ingest refused: {body}\n{}", self.stderr());
    }

    /// Polls `GET path` (with `token`) every 50 ms until `done` holds for the body, at
    /// most `timeout`; returns the body. For state the server reports but announces
    /// nowhere (which node owns which shard), there is nothing to be woken by.
    pub fn wait_for_state(
        &self,
        path: &str,
        token: Option<&str>,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let reply = self.request("GET", path, token, &[], None);
            if reply.status == 200 && done(&reply.body) {
                return reply.body;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting on {path}; last answer {} {}\n{}",
                    reply.status,
                    reply.body,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (woken by each line, no polling) until stderr holds `needle` at least
    /// `count` times, at most `timeout`.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let (lock, grew) = &*self.stderr;
        let mut text = lock.lock().unwrap_or_else(|p| p.into_inner());
        while text.matches(needle).count() < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                panic!("timed out waiting for {count} x {needle:?} in:\n{text}");
            }
            text = grew
                .wait_timeout(text, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Bytes the server process has caused to be written to storage so far (Linux's
    /// `write_bytes` in `/proc/PID/io`), `None` where the system does not say: what a
    /// store's commits cost the disk.
    pub fn written_bytes(&self) -> Option<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).ok()?;
        io.lines()
            .find_map(|line| line.strip_prefix("write_bytes:"))?
            .trim()
            .parse()
            .ok()
    }

    /// Sends `signal` (a `kill -s` name such as `TERM` or `HUP`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Kills the process with SIGKILL (a crash) and reaps it.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit status and
    /// everything written to stderr.
    pub fn terminate(self, timeout: Duration) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait_exit(timeout)
    }

    /// Waits (bounded) for the process to exit on its own; returns the exit status
    /// and everything written to stderr.
    pub fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, String) {
        let pid = self.child.id();
        let (tx, rx) = mpsc::channel();
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true")
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run true: {e}")),
        );
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            status
        });
        if rx.recv_timeout(timeout).is_err() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
            panic!("no exit within {timeout:?}:\n{}", self.stderr());
        }
        let status = waiter
            .join()
            .unwrap_or_else(|_| panic!("waiter panicked"))
            .unwrap_or_else(|e| panic!("wait: {e}"));
        // The reader ends at the end of the pipe, which the exit brings.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
