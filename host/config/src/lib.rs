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

mod admin;
mod chatwoot;
mod credential;
mod endpoint;
mod env;
mod error;
mod fields;
mod limits;
mod platform;
mod rocketchat;
mod schema;
mod store;
mod tenant;
#[cfg(test)]
mod tests;

use admin::RawAdmin;
pub use admin::{Admin, MIN_TOKEN_CHARS, TenantGrant};
pub use autoclose_runtime::Limits;
use autoclose_runtime::{Interrupt, RuntimeOptions};
pub use chatwoot::{
    ChatwootAccount, ChatwootInbound, ChatwootSettings, DEFAULT_MAX_CLOCK_SKEW_MS,
    MIN_URL_TOKEN_CHARS,
};
pub use credential::Credential;
pub use endpoint::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENTS_PER_REQUEST, DEFAULT_WEBHOOK_TIMEOUT_MS, Egress,
    GatewayCallback, Ingest, Webhook,
};
use endpoint::{Gateways, RawGateway, RawIngest, RawWebhook, parse_endpoint};
pub use error::{ConfigError, FieldError, MAX_CONFIG_BYTES};
pub use fields::fields;
use limits::with_overrides;
pub use platform::{
    DEFAULT_PLATFORM_TIMEOUT_MS, DEFAULT_RECONCILE_EVERY_MS, DEFAULT_RECONCILE_WINDOW_MS,
    PlatformTiming,
};
pub use rocketchat::{MIN_WEBHOOK_TOKEN_CHARS, RocketChatServer, RocketChatSettings};
use store::RawStore;
pub use store::{DEFAULT_POOL, DEFAULT_SCHEMA, PostgresSettings, StoreSettings};
pub use tenant::{COMPONENT_KEY, Catalog, LIMITS_KEY, WEBHOOKS_KEY, names_a_file};
use tenant::{NamedComponent, parse_tenant};

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
    /// The Chatwoot accounts `serve` speaks to directly (`gateway.chatwoot`).
    pub chatwoot: Option<ChatwootSettings>,
    /// The Rocket.Chat workspaces `serve` speaks to directly (`gateway.rocketchat`).
    pub rocketchat: Option<RocketChatSettings>,
    /// How `autoclose serve` takes events (`ingest` key).
    pub ingest: Ingest,
    /// How instances are allocated (`runtime` key).
    pub runtime: RuntimeSettings,
    /// Who may use `serve`'s admin API (`admin` key).
    pub admin: Admin,
    /// Where `serve` keeps its state (`store` key).
    pub store: StoreSettings,
    /// What a tenant's document may refer to, for reading one tenant alone later
    /// ([`HostConfig::tenant`]).
    pub catalog: Catalog,
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
    pub fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            interrupt: Interrupt::Epoch,
            pool: self.runtime.pool_instances,
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
    /// The document as written, host keys included: what the admin API shows.
    pub document: serde_json::Map<String, Value>,
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
    /// Who may use `serve`'s admin API: the operator's token and tokens scoped to one
    /// tenant.
    #[serde(default)]
    admin: Option<RawAdmin>,
    /// Where `serve` keeps its state: redb files in the data directory (the default) or
    /// a PostgreSQL database.
    #[serde(default)]
    store: Option<RawStore>,
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
                parse_endpoint(raw, &path, "url", &env).map_err(|e| invalid(e.path, e.reason))?;
            webhooks.insert(name, webhook);
        }
        let Gateways {
            callback: gateway,
            chatwoot,
            rocketchat,
        } = match raw.gateway {
            None => Gateways {
                callback: None,
                chatwoot: None,
                rocketchat: None,
            },
            Some(g) => g.parse(&env).map_err(|e| invalid(e.path, e.reason))?,
        };
        let served = chatwoot
            .iter()
            .flat_map(|c| c.accounts.keys().map(|t| ("gateway.chatwoot.accounts", t)))
            .chain(
                rocketchat
                    .iter()
                    .flat_map(|r| r.servers.keys().map(|t| ("gateway.rocketchat.servers", t))),
            );
        for (at, tenant) in served {
            if !raw.tenants.contains_key(tenant) {
                return Err(invalid(
                    format!("{at}.{tenant}"),
                    format!(
                        "no tenant {tenant:?} in tenants: a platform's account is served as a tenant of this file"
                    ),
                ));
            }
        }
        let ingest = match raw.ingest {
            None => Ingest::default(),
            Some(raw) => raw.parse(&env).map_err(|e| invalid(e.path, e.reason))?,
        };

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
                Some(overrides) => with_overrides(&limits, overrides).map_err(
                    |FieldError {
                         path: field,
                         reason,
                     }| {
                        let at = if field.is_empty() {
                            format!("{path}.{LIMITS_KEY}")
                        } else {
                            format!("{path}.{LIMITS_KEY}.{field}")
                        };
                        invalid(at, reason)
                    },
                )?,
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
        let catalog = Catalog {
            components,
            limits,
            defaults,
            base: base.to_owned(),
        };
        let mut tenants = Vec::with_capacity(raw.tenants.len());
        for (name, doc) in raw.tenants {
            if name.is_empty() {
                return Err(invalid("tenants".into(), "a tenant name is empty".into()));
            }
            let tenant = parse_tenant(&name, doc, &webhooks, &catalog).map_err(|e| {
                let path = if e.path.is_empty() {
                    format!("tenants.{name}")
                } else {
                    format!("tenants.{name}.{}", e.path)
                };
                invalid(path, e.reason)
            })?;
            tenants.push(tenant);
        }
        let admin = match raw.admin {
            None => Admin::default(),
            Some(raw) => raw
                .parse(&webhooks, ingest.token.as_deref(), &env)
                .map_err(|e| invalid(e.path, e.reason))?,
        };
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
        let store = match raw.store {
            None => StoreSettings::Redb,
            Some(raw) => raw
                .parse(&env, base)
                .map_err(|e| invalid(e.path, e.reason))?,
        };
        Ok(HostConfig {
            store,
            webhooks,
            egress: raw.egress,
            limits,
            tenants,
            gateway,
            chatwoot,
            rocketchat,
            ingest,
            runtime: raw.runtime,
            admin,
            catalog,
        })
    }

    /// Reads one tenant's `document` (as a tenant of the file is written) against this
    /// configuration's webhooks, components and limits, exactly as the file's tenants
    /// were read: what a `PUT` of the admin API applies. Errors name the path inside
    /// the document.
    pub fn tenant(
        &self,
        name: &str,
        document: serde_json::Map<String, Value>,
    ) -> Result<TenantConfig, FieldError> {
        parse_tenant(name, document, &self.webhooks, &self.catalog)
    }

    /// Puts `tenant` in place of the one of the same name, or adds it (tenants stay in
    /// name order).
    pub fn set_tenant(&mut self, tenant: TenantConfig) {
        match self
            .tenants
            .binary_search_by(|t| t.name.as_str().cmp(&tenant.name))
        {
            Ok(at) => self.tenants[at] = tenant,
            Err(at) => self.tenants.insert(at, tenant),
        }
    }

    /// Removes tenant `name`.
    pub fn remove_tenant(&mut self, name: &str) {
        self.tenants.retain(|t| t.name != name);
    }

    /// This configuration without its tenants: what reading or starting one tenant
    /// alone needs, without copying every other tenant's settings.
    pub fn without_tenants(&self) -> HostConfig {
        HostConfig {
            webhooks: self.webhooks.clone(),
            egress: self.egress.clone(),
            limits: self.limits,
            tenants: Vec::new(),
            gateway: self.gateway.clone(),
            chatwoot: self.chatwoot.clone(),
            rocketchat: self.rocketchat.clone(),
            ingest: self.ingest.clone(),
            runtime: self.runtime,
            admin: self.admin.clone(),
            store: self.store.clone(),
            catalog: self.catalog.clone(),
        }
    }
}
