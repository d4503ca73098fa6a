//! The operator's configuration file: webhooks, egress policy, sandbox limits and the
//! tenants with their plugin configuration.
//!
//! The host owns what must not enter the sandbox (webhook URLs and headers) and what
//! bounds the sandbox (limits). Each tenant's document is handed to its component
//! as-is, except for the host-level key `component`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

mod schema;

use crate::webhook::format::Format;
use crate::webhook::retry::{RawRetry, RetryPolicy};
use crate::webhook::secret::Secret;

/// Why a configuration file was refused. Every variant names the file and, where
/// known, the line and the dotted path of the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON, or a field has the wrong shape.
    #[error("{file}:{line}:{column}: {path}{message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted path of the field followed by `: `, or empty.
        path: String,
        /// What serde found wrong.
        message: String,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`]; it is not read.
    #[error("{file}: {size} bytes; a configuration file may have at most {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A field is well-formed but its value is not acceptable.
    #[error("{file}: {path}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted path of the field.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Largest configuration file read: 16 MiB (about 30,000 tenants with rich settings).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// The parsed, checked configuration.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Webhooks by name.
    pub webhooks: BTreeMap<String, Webhook>,
    /// Where outbound requests may go.
    pub egress: Egress,
    /// Bounds on every plugin instance.
    pub limits: Limits,
    /// Tenants in name order.
    pub tenants: Vec<TenantConfig>,
    /// Where `autoclose serve` sends chat actions (`gateway` key); replay ignores it.
    pub gateway: Option<GatewayCallback>,
    /// How `autoclose serve` takes events (`ingest` key).
    pub ingest: Ingest,
    /// How instances are allocated (`runtime` key).
    pub runtime: RuntimeSettings,
}

/// How the engine allocates instances.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Use a pooling allocator with room for this many instances (their memory and
    /// tables reserved up front and reused copy-on-write), instead of allocating each
    /// instance on demand. Faster to start instances with many tenants; must cover
    /// every instance at once: tenants × `--shards`, twice during a reload.
    #[serde(default)]
    pub pool_instances: Option<u32>,
}

impl HostConfig {
    /// The engine options this configuration asks for (production interruption:
    /// epochs).
    pub fn runtime_options(&self) -> crate::runtime::RuntimeOptions {
        crate::runtime::RuntimeOptions {
            interrupt: crate::runtime::Interrupt::Epoch,
            pool: self.runtime.pool_instances,
        }
    }
}

/// The gateway's callback for chat actions (post a message, close a session): signed
/// and retried like a webhook. `Debug` redacts header values.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayCallback {
    /// The endpoint, its headers, secrets, time-out and retry policy. The gateway is
    /// the operator's own service, so private addresses are allowed.
    pub endpoint: Webhook,
}

/// How the server takes events.
#[derive(Clone, PartialEq, Eq)]
pub struct Ingest {
    /// Bearer token required on `/v1/*` requests; `None`: no authentication (only
    /// sensible on a loopback listener). Never printed.
    pub token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one request.
    pub max_events_per_request: usize,
}

/// Default largest ingest request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default most events per ingest request.
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 1000;

impl Default for Ingest {
    fn default() -> Self {
        Ingest {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_events_per_request: DEFAULT_MAX_EVENTS_PER_REQUEST,
        }
    }
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_events_per_request", &self.max_events_per_request)
            .finish()
    }
}

/// An outbound webhook the operator configured. Plugins name it; only the host sees
/// its URL and headers. `Debug` redacts header values: they often carry tokens.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    /// Where requests go.
    pub url: url::Url,
    /// HTTP method: `POST` (default), `PUT` or `PATCH`.
    pub method: String,
    /// Static headers added to every request (e.g. `Authorization`).
    pub headers: BTreeMap<String, String>,
    /// Signing secrets: none (unsigned), one, or two during a rotation.
    pub secrets: Vec<Secret>,
    /// Total time one attempt may take, connecting included.
    pub timeout_ms: u64,
    /// When to retry and when to give up.
    pub retry: RetryPolicy,
    /// How the body is built.
    pub format: Format,
}

/// Default total time of one attempt.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 10_000;

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .field("method", &self.method)
            .field("headers (values redacted)", &headers)
            .field("secrets", &self.secrets)
            .field("timeout_ms", &self.timeout_ms)
            .field("retry", &self.retry)
            .field("format", &self.format)
            .finish()
    }
}

/// Egress policy for outbound requests.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Let webhooks reach loopback and private addresses (on-premise push services,
    /// tests). Off by default.
    #[serde(default)]
    pub allow_private_networks: bool,
}

/// Bounds on each plugin instance. A hook that exceeds them traps; the host replaces
/// the instance and backs the tenant off.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock budget of one hook call per event it carries, in milliseconds
    /// (epoch interruption).
    pub hook_time_ms: u64,
    /// Linear memory an instance may grow to, in MiB.
    pub memory_mib: u64,
    /// Actions (posts, closes, timers, requests, state) a hook call may take per event
    /// it carries, counted against the event of the session each names.
    pub actions_per_hook: usize,
    /// Longest text a plugin may post, in bytes.
    pub max_post_bytes: usize,
    /// Largest timer payload, in bytes.
    pub max_timer_payload_bytes: usize,
    /// Pending timers per session.
    pub timers_per_session: usize,
    /// Pending timers per tenant, across its sessions: bounds what a runaway plugin
    /// can make the host keep (about 170 bytes a timer).
    pub timers_per_tenant: usize,
    /// Largest state a plugin keeps per session (`sessions.set-state`), in bytes.
    pub max_session_state_bytes: usize,
    /// Webhook deliveries a tenant may have under way (on the wire or waiting for a
    /// retry); further sends are refused. Sized for bursts (thousands of warnings due in
    /// the same second after a restart or a broadcast) while bounding a runaway
    /// plugin: at most about 40 MB of queued bodies per tenant. How many are on the
    /// wire at once is bounded separately by the sender.
    pub http_in_flight_per_tenant: usize,
}

impl Limits {
    /// Checks every bound against its allowed range; errors are `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let ranges: [(&str, u64, u64, u64); 9] = [
            ("hook_time_ms", self.hook_time_ms, 1, 60_000),
            ("memory_mib", self.memory_mib, 1, 4096),
            ("actions_per_hook", self.actions_per_hook as u64, 1, 10_000),
            ("max_post_bytes", self.max_post_bytes as u64, 1, 1 << 20),
            (
                "max_timer_payload_bytes",
                self.max_timer_payload_bytes as u64,
                16,
                1 << 16,
            ),
            (
                "timers_per_session",
                self.timers_per_session as u64,
                1,
                1_000,
            ),
            (
                "timers_per_tenant",
                self.timers_per_tenant as u64,
                1,
                100_000_000,
            ),
            (
                "max_session_state_bytes",
                self.max_session_state_bytes as u64,
                16,
                1 << 16,
            ),
            (
                "http_in_flight_per_tenant",
                self.http_in_flight_per_tenant as u64,
                1,
                100_000,
            ),
        ];
        for (name, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err((name, format!("{value} is out of range ({low} to {high})")));
            }
        }
        Ok(())
    }

    /// These limits with the fields of `overrides` (a tenant's `limits` object)
    /// replacing theirs. Errors are `(field, reason)`.
    fn with_overrides(&self, overrides: Value) -> Result<Limits, (String, String)> {
        let Value::Object(overrides) = overrides else {
            return Err((
                String::new(),
                format!("must be an object of limits, not {overrides}"),
            ));
        };
        let mut merged = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => return Err((String::new(), "limits could not be merged".to_owned())),
        };
        merged.extend(overrides);
        let limits: Limits =
            crate::event::fields(Value::Object(merged)).map_err(|e| match e.split_once(": ") {
                Some((field, reason)) if !field.contains(' ') => {
                    (field.to_owned(), reason.to_owned())
                }
                _ => (String::new(), e),
            })?;
        limits
            .check()
            .map_err(|(name, reason)| (name.to_owned(), reason))?;
        if limits.memory_mib > self.memory_mib {
            return Err((
                "memory_mib".to_owned(),
                format!(
                    "{} is more than the host-wide limits.memory_mib ({}), which sizes every instance's reservation",
                    limits.memory_mib, self.memory_mib
                ),
            ));
        }
        Ok(limits)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hook_time_ms: 100,
            memory_mib: 32,
            actions_per_hook: 64,
            max_post_bytes: 16 * 1024,
            max_timer_payload_bytes: 1024,
            timers_per_session: 16,
            timers_per_tenant: 1_000_000,
            max_session_state_bytes: 1024,
            http_in_flight_per_tenant: 10_000,
        }
    }
}

/// One tenant: its name, the component it runs and that component's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantConfig {
    /// The tenant's name as gateways send it.
    pub name: String,
    /// A component of its own (`component` key, relative to the config file), or the
    /// host's default component.
    pub component: Option<PathBuf>,
    /// Bounds on the tenant's instance: the host-wide `limits` with the tenant's own
    /// `limits` key applied over them (a vendor component may need more time per hook,
    /// or deserve less).
    pub limits: Limits,
    /// The webhooks the tenant's component may call (`webhooks` key): none unless
    /// listed, so that one tenant's component can never use another's push service.
    pub webhooks: Vec<String>,
    /// The tenant's document without the host keys, as JSON text for `configure`.
    pub plugin_config: String,
    /// The operator's defaults (`defaults` key) for tenants of the built-in component,
    /// as JSON text for `configure`; `{}` for a tenant with a component of its own,
    /// whose settings have another shape.
    pub defaults: String,
}

/// The operator's configuration file of `autoclose` (replay, check-config, serve).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "autoclose configuration")]
struct RawConfig {
    /// Outbound webhooks by name; tenants list the ones they may call.
    #[serde(default)]
    webhooks: BTreeMap<String, RawWebhook>,
    /// Where outbound requests may go.
    #[serde(default)]
    egress: Egress,
    /// Bounds on every plugin instance.
    #[serde(default)]
    limits: Limits,
    /// Tenants by name, as gateways send it: the host keys `webhooks` and `component`,
    /// then the component's own settings (for the built-in component, auto-close).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, TenantSchema>")]
    tenants: BTreeMap<String, serde_json::Map<String, Value>>,
    /// Where `autoclose serve` sends chat actions.
    #[serde(default)]
    gateway: Option<RawGateway>,
    /// How `autoclose serve` takes events.
    #[serde(default)]
    ingest: Option<RawIngest>,
    /// Settings of the built-in component for every tenant, under each tenant's own
    /// (the shape of the component's settings; see [`schema`]).
    #[serde(default)]
    defaults: serde_json::Map<String, Value>,
    /// Vendor components by name, for tenants to name in their `component` key.
    #[serde(default)]
    components: BTreeMap<String, RawComponent>,
    /// How the engine allocates instances.
    #[serde(default)]
    runtime: RuntimeSettings,
}

/// A vendor component the operator installed once for many tenants.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    /// The `.wasm` or `.cwasm` file, relative to this file.
    path: String,
    /// The component's settings for every tenant that runs it, under each tenant's own
    /// (handed to `configure` as `tenant-setup.defaults`; the shape is the component's).
    #[serde(default)]
    defaults: serde_json::Map<String, Value>,
    /// Bounds on the instances of this component, over the host-wide `limits` field
    /// by field; a tenant's own `limits` go over these.
    #[serde(default)]
    #[schemars(with = "Option<Limits>")]
    limits: Option<Value>,
}

/// A named component, resolved.
struct NamedComponent {
    path: PathBuf,
    defaults: String,
    limits: Limits,
}

/// The host's keys of a tenant; [`schema`] adds the component's settings.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct TenantSchema {
    /// Webhooks this tenant's component may call, by name.
    webhooks: Option<Vec<String>>,
    /// A component of the tenant's own instead of the built-in auto-close component:
    /// the name of an entry of `components`, or the path of a `.wasm` or `.cwasm` file
    /// relative to this file. Its settings then have its own shape.
    component: Option<String>,
    /// The tenant's own bounds, over the host-wide `limits` field by field
    /// (`memory_mib` at most the host-wide value).
    limits: Option<Limits>,
}

/// The JSON Schema of the configuration file, for editors that validate config files
/// (`autoclose schema`): the host's part generated from the types that parse it, and
/// `settings`, the schema the default component reports for a tenant's settings
/// (`about.info`), merged in where its settings go: every tenant without a component
/// of its own, and `defaults`. `None`: the component does not say, and any settings
/// pass.
pub fn schema(settings: Option<&Value>) -> Value {
    let host = serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or(Value::Null);
    schema::merge(host, settings)
}

/// The gateway's callback for chat actions.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    actions_url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    secret: Option<SecretSpec>,
    #[serde(default)]
    timeout: Option<autoclose_duration::Duration>,
    #[serde(default)]
    retry: Option<RawRetry>,
}

/// How `autoclose serve` takes events.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    max_events_per_request: Option<usize>,
}

/// An outbound webhook.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    secret: Option<SecretSpec>,
    #[serde(default)]
    timeout: Option<autoclose_duration::Duration>,
    #[serde(default)]
    retry: Option<RawRetry>,
    /// The body format: `standard_webhooks` (default), a preset object such as
    /// `{"preset": "ntfy", "topic": "..."}`, or `{"template": {...}}`.
    #[serde(default)]
    format: Option<Value>,
}

/// One secret, or two during a rotation.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum SecretSpec {
    One(String),
    Rotation(Vec<String>),
}

/// The host-level key of a tenant naming its own component.
const COMPONENT_KEY: &str = "component";
/// The host-level key of a tenant listing the webhooks it may call.
const WEBHOOKS_KEY: &str = "webhooks";
/// The host-level key of a tenant's own limits.
const LIMITS_KEY: &str = "limits";

impl HostConfig {
    /// Reads and checks the file at `path`; `env:NAME` secrets come from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read {
            file: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: path.to_owned(),
                size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text`; `file` names it in errors and anchors relative
    /// component paths. `env:NAME` secrets come from the process environment.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, file, |name| std::env::var(name).ok())
    }

    /// [`HostConfig::parse`] with `env` looking up `env:NAME` secrets.
    pub fn parse_with_env(
        text: &str,
        file: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let syntax = |path: String, inner: serde_json::Error| {
            let message = inner.to_string();
            let message = match message.rfind(" at line ") {
                Some(cut) => message[..cut].to_owned(),
                None => message,
            };
            ConfigError::Syntax {
                file: file.to_owned(),
                line: inner.line(),
                column: inner.column(),
                path: if path.is_empty() || path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                },
                message,
            }
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            syntax(path, e.into_inner())
        })?;
        // Trailing characters after the document are an error too.
        de.end().map_err(|e| syntax(String::new(), e))?;
        let invalid = |path: String, reason: String| ConfigError::Invalid {
            file: file.to_owned(),
            path,
            reason,
        };

        let mut webhooks = BTreeMap::new();
        for (name, raw) in raw.webhooks {
            let path = format!("webhooks.{name}");
            if name.is_empty() {
                return Err(invalid("webhooks".into(), "a webhook name is empty".into()));
            }
            let webhook =
                parse_endpoint(raw, &path, "url", &env).map_err(|(p, r)| invalid(p, r))?;
            webhooks.insert(name, webhook);
        }
        let gateway = match raw.gateway {
            None => None,
            Some(g) => {
                let raw = RawWebhook {
                    url: g.actions_url,
                    method: None,
                    headers: g.headers,
                    secret: g.secret,
                    timeout: g.timeout,
                    retry: g.retry,
                    format: None,
                };
                let endpoint = parse_endpoint(raw, "gateway", "actions_url", &env)
                    .map_err(|(p, r)| invalid(p, r))?;
                Some(GatewayCallback { endpoint })
            }
        };
        let mut ingest = Ingest::default();
        if let Some(raw) = raw.ingest {
            if let Some(token) = raw.token {
                let token = resolve_env(&token, &env)
                    .map_err(|reason| invalid("ingest.token".into(), reason))?;
                if token.len() < 16 {
                    return Err(invalid(
                        "ingest.token".into(),
                        "must have at least 16 characters".into(),
                    ));
                }
                ingest.token = Some(token);
            }
            if let Some(bytes) = raw.max_body_bytes {
                if !(1024..=64 * 1024 * 1024).contains(&bytes) {
                    return Err(invalid(
                        "ingest.max_body_bytes".into(),
                        format!("{bytes} is out of range (1024 to 67108864)"),
                    ));
                }
                ingest.max_body_bytes = bytes;
            }
            if let Some(count) = raw.max_events_per_request {
                if !(1..=100_000).contains(&count) {
                    return Err(invalid(
                        "ingest.max_events_per_request".into(),
                        format!("{count} is out of range (1 to 100000)"),
                    ));
                }
                ingest.max_events_per_request = count;
            }
        }

        let limits = raw.limits;
        limits
            .check()
            .map_err(|(name, reason)| invalid(format!("limits.{name}"), reason))?;

        let defaults = Value::Object(raw.defaults).to_string();
        let base = file.parent().unwrap_or(Path::new("."));
        let mut components = BTreeMap::new();
        for (name, component) in raw.components {
            let path = format!("components.{name}");
            if name.is_empty() {
                return Err(invalid(
                    "components".into(),
                    "a component name is empty".into(),
                ));
            }
            if component.path.is_empty() {
                return Err(invalid(format!("{path}.path"), "is empty".into()));
            }
            let component_limits = match component.limits {
                None => limits,
                Some(overrides) => {
                    limits
                        .with_overrides(overrides)
                        .map_err(|(field, reason)| {
                            let at = if field.is_empty() {
                                format!("{path}.{LIMITS_KEY}")
                            } else {
                                format!("{path}.{LIMITS_KEY}.{field}")
                            };
                            invalid(at, reason)
                        })?
                }
            };
            components.insert(
                name,
                NamedComponent {
                    path: base.join(&component.path),
                    defaults: Value::Object(component.defaults).to_string(),
                    limits: component_limits,
                },
            );
        }
        let mut tenants = Vec::with_capacity(raw.tenants.len());
        for (name, mut doc) in raw.tenants {
            if name.is_empty() {
                return Err(invalid("tenants".into(), "a tenant name is empty".into()));
            }
            let named = match doc.get(COMPONENT_KEY) {
                Some(Value::String(key)) => components.get(key),
                _ => None,
            };
            let component = match doc.remove(COMPONENT_KEY) {
                None => None,
                Some(Value::String(_)) if named.is_some() => named.map(|c| c.path.clone()),
                Some(Value::String(p)) if p.ends_with(".wasm") || p.ends_with(".cwasm") => {
                    Some(base.join(p))
                }
                Some(Value::String(p)) => {
                    let known: Vec<&str> = components.keys().map(String::as_str).collect();
                    return Err(invalid(
                        format!("tenants.{name}.{COMPONENT_KEY}"),
                        format!(
                            "{p:?} is neither a name in `components` ({}) nor a .wasm or .cwasm file",
                            if known.is_empty() {
                                "there are none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                Some(other) => {
                    return Err(invalid(
                        format!("tenants.{name}.{COMPONENT_KEY}"),
                        format!(
                            "must name a component or be the path of a .wasm component, not {other}"
                        ),
                    ));
                }
            };
            let base_limits = named.map_or(limits, |c| c.limits);
            let allowed = match doc.remove(WEBHOOKS_KEY) {
                None => Vec::new(),
                Some(Value::Array(names)) => {
                    let mut allowed = Vec::with_capacity(names.len());
                    for (index, name_value) in names.into_iter().enumerate() {
                        let path = format!("tenants.{name}.{WEBHOOKS_KEY}[{index}]");
                        let Value::String(hook) = name_value else {
                            return Err(invalid(path, "must be a webhook name".into()));
                        };
                        if !webhooks.contains_key(&hook) {
                            let known: Vec<&str> = webhooks.keys().map(String::as_str).collect();
                            return Err(invalid(
                                path,
                                format!(
                                    "unknown webhook {hook:?} (defined: {})",
                                    if known.is_empty() {
                                        "none".to_owned()
                                    } else {
                                        known.join(", ")
                                    }
                                ),
                            ));
                        }
                        allowed.push(hook);
                    }
                    allowed
                }
                Some(other) => {
                    return Err(invalid(
                        format!("tenants.{name}.{WEBHOOKS_KEY}"),
                        format!("must be a list of webhook names, not {other}"),
                    ));
                }
            };
            let tenant_limits = match doc.remove(LIMITS_KEY) {
                None => base_limits,
                Some(overrides) => {
                    base_limits
                        .with_overrides(overrides)
                        .map_err(|(field, reason)| {
                            let path = if field.is_empty() {
                                format!("tenants.{name}.{LIMITS_KEY}")
                            } else {
                                format!("tenants.{name}.{LIMITS_KEY}.{field}")
                            };
                            invalid(path, reason)
                        })?
                }
            };
            tenants.push(TenantConfig {
                limits: tenant_limits,
                defaults: match (named, &component) {
                    (Some(named), _) => named.defaults.clone(),
                    (None, Some(_)) => "{}".to_owned(),
                    (None, None) => defaults.clone(),
                },
                plugin_config: Value::Object(doc).to_string(),
                name,
                component,
                webhooks: allowed,
            });
        }
        if let Some(instances) = raw.runtime.pool_instances
            && !(1..=1_000_000).contains(&instances)
        {
            return Err(invalid(
                "runtime.pool_instances".into(),
                format!("{instances} is out of range (1 to 1000000)"),
            ));
        }
        if let Some(instances) = raw.runtime.pool_instances
            && (instances as usize) < tenants.len()
        {
            return Err(invalid(
                "runtime.pool_instances".into(),
                format!(
                    "{instances} is fewer than the {} tenants, each of which needs an instance (more with --shards, twice during a reload)",
                    tenants.len()
                ),
            ));
        }
        Ok(HostConfig {
            webhooks,
            egress: raw.egress,
            limits,
            tenants,
            gateway,
            ingest,
            runtime: raw.runtime,
        })
    }
}

/// Checks one outbound endpoint (a webhook, or the gateway's callback): URL, method,
/// header names, secrets, retry policy, body format and time-out. Errors are
/// `(dotted path, reason)`.
fn parse_endpoint(
    raw: RawWebhook,
    path: &str,
    url_key: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Webhook, (String, String)> {
    let url = url::Url::parse(&raw.url).map_err(|e| {
        (
            format!("{path}.{url_key}"),
            format!("{:?} is not a URL: {e}", raw.url),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err((
            format!("{path}.{url_key}"),
            format!(
                "{:?} must be an http:// or https:// URL with a host",
                raw.url
            ),
        ));
    }
    let method = raw.method.unwrap_or_else(|| "POST".to_owned());
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        return Err((
            format!("{path}.method"),
            format!("{method:?} is not allowed (use POST, PUT or PATCH)"),
        ));
    }
    for header in raw.headers.keys() {
        let valid = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid {
            return Err((
                format!("{path}.headers"),
                format!("{header:?} is not a valid header name"),
            ));
        }
    }
    let secrets = match raw.secret {
        None => Vec::new(),
        Some(SecretSpec::One(value)) => vec![value],
        Some(SecretSpec::Rotation(values)) if (1..=2).contains(&values.len()) => values,
        Some(SecretSpec::Rotation(_)) => {
            return Err((
                format!("{path}.secret"),
                "give one secret, or two during a rotation".into(),
            ));
        }
    };
    let secrets = secrets
        .iter()
        .map(|value| Secret::resolve(value, env))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| (format!("{path}.secret"), reason))?;
    let retry = raw
        .retry
        .map(RetryPolicy::from_raw)
        .transpose()
        .map_err(|reason| (format!("{path}.retry"), reason))?
        .unwrap_or_default();
    let format = raw
        .format
        .map(Format::from_value)
        .transpose()
        .map_err(|reason| (format!("{path}.format"), reason))?
        .unwrap_or(Format::Standard);
    let timeout_ms = raw
        .timeout
        .map_or(DEFAULT_WEBHOOK_TIMEOUT_MS, |d| d.as_ms());
    if timeout_ms > 60_000 {
        return Err((
            format!("{path}.timeout"),
            "must be at most 1m: a push that slow is not a push".into(),
        ));
    }
    Ok(Webhook {
        url,
        method,
        headers: raw.headers,
        secrets,
        timeout_ms,
        retry,
        format,
    })
}

/// Resolves `env:NAME` from the environment; any other text is the value itself.
fn resolve_env(value: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    match value.strip_prefix("env:") {
        Some(name) => env(name).ok_or_else(|| format!("environment variable {name} is not set")),
        None => Ok(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostConfig, String> {
        HostConfig::parse(text, Path::new("cfg.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn splits_host_keys_from_the_tenant_document() {
        let config = parse(
            r#"{"webhooks":{"p":{"url":"https://push.example.com/hook","headers":{"Authorization":"Bearer x"}}},
                "tenants":{"acme":{"component":"vendor.wasm","channels":{}}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.webhooks["p"].method, "POST");
        assert_eq!(
            config.tenants[0].component.as_deref(),
            Some(Path::new("vendor.wasm"))
        );
        assert_eq!(config.tenants[0].plugin_config, r#"{"channels":{}}"#);
        assert!(
            config.tenants[0].webhooks.is_empty(),
            "no webhooks unless listed"
        );
        assert_eq!(config.limits, Limits::default());
        assert!(!config.egress.allow_private_networks);
        let shown = format!("{:?}", config.webhooks["p"]);
        assert!(
            shown.contains("Authorization") && !shown.contains("Bearer"),
            "{shown}"
        );
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let e = parse("{\n  \"tenants\": {\n    \"acme\": [}\n}").unwrap_err();
        assert!(e.starts_with("cfg.json:3:"), "{e}");
    }

    #[test]
    fn unknown_keys_name_the_path_and_line() {
        let e = parse("{\"webhooks\": {\"p\": {\"url\": \"https://x.example\",\n \"sekret\": 1}}}")
            .unwrap_err();
        assert!(e.starts_with("cfg.json:2:"), "{e}");
        assert!(
            e.contains("webhooks.p.sekret: unknown field `sekret`"),
            "{e}"
        );
    }

    #[test]
    fn bad_webhooks_are_refused_with_their_path() {
        let e = parse(r#"{"webhooks":{"p":{"url":"not a url"}}}"#).unwrap_err();
        assert!(
            e.starts_with("cfg.json: webhooks.p.url: \"not a url\" is not a URL"),
            "{e}"
        );
        let e = parse(r#"{"webhooks":{"p":{"url":"ftp://x.example/"}}}"#).unwrap_err();
        assert!(
            e.contains("webhooks.p.url: \"ftp://x.example/\" must be an http"),
            "{e}"
        );
        let e =
            parse(r#"{"webhooks":{"p":{"url":"https://x.example/","method":"GET"}}}"#).unwrap_err();
        assert!(
            e.contains("webhooks.p.method: \"GET\" is not allowed"),
            "{e}"
        );
        let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","headers":{"a b":"c"}}}}"#)
            .unwrap_err();
        assert!(
            e.contains("webhooks.p.headers: \"a b\" is not a valid header name"),
            "{e}"
        );
    }

    #[test]
    fn webhook_secrets_timeouts_retries_and_formats() {
        let secret = Secret::encode(&[3u8; 32]);
        let text = format!(
            r#"{{"webhooks":{{"p":{{"url":"https://x.example/","secret":["{secret}","env:NEXT"],
                "timeout":"5s","retry":{{"max_attempts":3,"deadline":"30m"}},"format":{{"preset":"gotify"}}}}}}}}"#
        );
        let next = Secret::encode(&[4u8; 24]);
        let config = HostConfig::parse_with_env(&text, Path::new("cfg.json"), |n| {
            (n == "NEXT").then(|| next.clone())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let hook = &config.webhooks["p"];
        assert_eq!(hook.secrets.len(), 2);
        assert_eq!(hook.timeout_ms, 5_000);
        assert_eq!(
            hook.retry,
            RetryPolicy {
                max_attempts: 3,
                deadline_ms: 1_800_000
            }
        );
        assert!(matches!(hook.format, Format::Template(_)));
        let shown = format!("{hook:?}");
        assert!(
            !shown.contains(&secret[6..]) && shown.contains("whsec_***"),
            "{shown}"
        );
    }

    #[test]
    fn bad_webhook_settings_name_their_path_without_the_secret() {
        let e =
            parse(r#"{"webhooks":{"p":{"url":"https://x.example/","secret":"sk_live_123456"}}}"#)
                .unwrap_err();
        assert!(
            e.starts_with("cfg.json: webhooks.p.secret: must start with \"whsec_\""),
            "{e}"
        );
        assert!(!e.contains("123456"), "{e}");
        let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","secret":"env:AUTOCLOSE_SURELY_UNSET"}}}"#).unwrap_err();
        assert!(
            e.ends_with(
                "webhooks.p.secret: environment variable AUTOCLOSE_SURELY_UNSET is not set"
            ),
            "{e}"
        );
        let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","format":{"template":{"a":"{{who}}"}}}}}"#).unwrap_err();
        assert!(
            e.starts_with("cfg.json: webhooks.p.format: unknown placeholder {{who}}"),
            "{e}"
        );
        let e =
            parse(r#"{"webhooks":{"p":{"url":"https://x.example/","retry":{"max_attempts":0}}}}"#)
                .unwrap_err();
        assert!(
            e.contains("webhooks.p.retry: max_attempts 0 is out of range"),
            "{e}"
        );
        let e =
            parse(r#"{"webhooks":{"p":{"url":"https://x.example/","timeout":"2m"}}}"#).unwrap_err();
        assert!(e.contains("webhooks.p.timeout: must be at most 1m"), "{e}");
        let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","timeout":"ten"}}}"#)
            .unwrap_err();
        assert!(
            e.contains("webhooks.p.timeout: \"ten\" is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn bad_tenants_and_limits_are_refused() {
        let e = parse(r#"{"tenants":{"acme":{"component":7}}}"#).unwrap_err();
        assert!(
            e.contains("tenants.acme.component: must name a component or be the path"),
            "{e}"
        );
        let e = parse(r#"{"components":{"c":{"path":"c.wasm","limits":{"memory_mib":64}}}}"#)
            .unwrap_err();
        assert!(
            e.contains("components.c.limits.memory_mib: 64 is more than"),
            "{e}"
        );
        let e = parse(r#"{"components":{"c":{"path":""}}}"#).unwrap_err();
        assert!(e.contains("components.c.path: is empty"), "{e}");
        let e = parse(r#"{"components":{"c":{"path":"c.wasm","default":{}}}}"#).unwrap_err();
        assert!(e.contains("components.c.default: unknown field"), "{e}");
        let e = parse(r#"{"tenants":{"acme":[]}}"#).unwrap_err();
        assert!(e.contains("tenants.acme: invalid type: sequence"), "{e}");
        let e = parse(r#"{"limits":{"hook_time_ms":0}}"#).unwrap_err();
        assert!(
            e.contains("limits.hook_time_ms: 0 is out of range (1 to 60000)"),
            "{e}"
        );
        let e = parse(r#"{"limits":{"actions_per_hook":0}}"#).unwrap_err();
        assert!(
            e.contains("limits.actions_per_hook: 0 is out of range"),
            "{e}"
        );
        let e = parse(r#"{"tenants":{"acme":{"webhooks":["nope"]}}}"#).unwrap_err();
        assert!(
            e.contains("tenants.acme.webhooks[0]: unknown webhook \"nope\" (defined: none)"),
            "{e}"
        );
        let e = parse(r#"{"tenants":{"acme":{"webhooks":"p"}}}"#).unwrap_err();
        assert!(e.contains("tenants.acme.webhooks: must be a list"), "{e}");
        let e = parse(r#"{} x"#).unwrap_err();
        assert!(e.contains("trailing characters"), "{e}");
    }

    #[test]
    fn the_gateway_callback_and_ingest_sections_are_checked_with_their_paths() {
        let parse_env = |text: &str| {
            HostConfig::parse_with_env(text, Path::new("cfg.json"), |name| {
                (name == "TOKEN").then(|| "a-token-of-enough-length".to_owned())
            })
            .map_err(|e| e.to_string())
        };
        let config = parse_env(
            r#"{"gateway": {"actions_url": "http://10.0.0.5:9000/actions", "timeout": "5s"},
                "ingest": {"token": "env:TOKEN", "max_body_bytes": 2048}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let gateway = config.gateway.unwrap_or_else(|| panic!("gateway section"));
        assert_eq!(gateway.endpoint.timeout_ms, 5_000);
        assert_eq!(
            config.ingest.token.as_deref(),
            Some("a-token-of-enough-length")
        );
        assert_eq!(config.ingest.max_body_bytes, 2048);
        assert!(!format!("{:?}", config.ingest).contains("a-token"));

        let e = parse_env(r#"{"gateway": {"actions_url": "nowhere"}}"#).unwrap_err();
        assert!(e.starts_with("cfg.json: gateway.actions_url: "), "{e}");
        let e = parse_env(r#"{"ingest": {"token": "env:MISSING"}}"#).unwrap_err();
        assert_eq!(
            e,
            "cfg.json: ingest.token: environment variable MISSING is not set"
        );
        let e = parse_env(r#"{"ingest": {"token": "short"}}"#).unwrap_err();
        assert!(e.contains("ingest.token: must have at least 16"), "{e}");
        let e = parse_env(r#"{"ingest": {"max_body_bytes": 10}}"#).unwrap_err();
        assert!(
            e.contains("ingest.max_body_bytes: 10 is out of range"),
            "{e}"
        );
        let e = parse_env(r#"{"gateway": {"actions_url": "http://x.example", "method": "GET"}}"#)
            .unwrap_err();
        assert!(e.contains("gateway.method: unknown field"), "{e}");
    }

    #[test]
    fn a_file_over_the_size_cap_is_refused_unread() {
        let file = std::env::temp_dir().join(format!("autoclose-big-{}.json", std::process::id()));
        let big = vec![b' '; MAX_CONFIG_BYTES as usize + 1];
        std::fs::write(&file, &big).expect("write");
        let e = HostConfig::load(&file).expect_err("too large").to_string();
        let _ = std::fs::remove_file(&file);
        assert!(
            e.contains(&format!(
                "{} bytes; a configuration file may have at most",
                big.len()
            )),
            "{e}"
        );
    }
}
