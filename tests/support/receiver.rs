//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every
//! request and answers from a script.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status to answer with.
    pub status: u16,
    /// Extra headers (`Retry-After`, `Location`, ...).
    pub headers: Vec<(&'static str, String)>,
    /// How long to wait before answering.
    pub delay: Duration,
    /// The body (default `ok`).
    pub body: Option<Vec<u8>>,
}

impl Reply {
    /// Answers `status` at once.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: None,
        }
    }

    /// Answers with `body`.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Waits before answering.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its exact body bytes.
    pub body: Vec<u8>,
    /// When it was answered.
    pub at: Instant,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<Vec<Reply>>>,
    /// The answer once the script is used up.
    otherwise: Reply,
    /// Requests arrived (answered or not): picks each one's scripted answer.
    arrivals: Arc<AtomicUsize>,
    received: Arc<(Mutex<Vec<Received>>, Condvar)>,
}

/// A running receiver; stops when dropped (its runtime shuts down).
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1 answering `script` in order, then
    /// `200` for every further request.
    pub fn start(script: Vec<Reply>) -> Self {
        Self::start_with(script, Reply::status(200))
    }

    /// Starts a receiver answering `script` in order, then `otherwise` for every
    /// further request.
    pub fn start_with(script: Vec<Reply>, otherwise: Reply) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("test runtime: {e}"));
        let shared = Shared {
            script: Arc::new(Mutex::new(script)),
            otherwise,
            arrivals: Arc::default(),
            received: Arc::default(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (woken by each request, no polling) until `done` holds for the requests
    /// received, at most `timeout`; returns them, or panics with `what` and the
    /// requests seen.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        self.wait_for(timeout, done).unwrap_or_else(|received| {
            let bodies: Vec<String> = received
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for {what}; received {}:\n{}",
                bodies.len(),
                bodies.join("\n")
            );
        })
    }

    /// [`Receiver::wait_until`] that hands back what was received when it times out
    /// (`Err`), for a caller that says better what is missing.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>, Vec<Received>> {
        let deadline = Instant::now() + timeout;
        let (lock, arrived) = &*self.shared.received;
        let mut received = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !done(&received) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(received.clone());
            }
            received = arrived
                .wait_timeout(received, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(received.clone())
    }
}

async fn answer(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let index = shared.arrivals.fetch_add(1, Ordering::SeqCst);
        let script = shared.script.lock().unwrap_or_else(|p| p.into_inner());
        script
            .get(index)
            .cloned()
            .unwrap_or_else(|| shared.otherwise.clone())
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    // Recorded when answered, so that a waiter sees only requests the sender could
    // have seen answered (a request cut off mid-delay by a crash is not counted).
    {
        let (lock, arrived) = &*shared.received;
        let mut received = lock.lock().unwrap_or_else(|p| p.into_inner());
        received.push(Received {
            headers,
            body: body.to_vec(),
            at: Instant::now(),
        });
        arrived.notify_all();
    }

    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = reply.body.clone().unwrap_or_else(|| b"ok".to_vec());
    let mut response = (status, body).into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
