//! Tenant settings changed one tenant at a time: read, written, deleted and rolled
//! back through the admin API, each change checked by the tenant's own component
//! before it is stored, stored before it is applied, and applied without touching
//! any other tenant's settings.
//!
//! The order matters: a document the component refuses is never stored (a `422`
//! changes nothing); a stored version is applied at once and again after every
//! restart, so what `GET` shows is what runs.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use autoclose_config::{HostConfig, LIMITS_KEY, TenantConfig, WEBHOOKS_KEY, names_a_file};
use autoclose_core::{Core, CoreError, PluginComponent, Runtime};
use autoclose_store::StoreError;
use autoclose_store::settings::{
    AuditRecord, Change, ChangeKind, CommitError, SettingsVersion, TenantVersion,
};

use crate::access::Scope;
use crate::clock::wall_ms;
use crate::engine::Collector;
use crate::metrics::Metrics;
use crate::reload::{Current, Loaded, ReloadError, Reloader};

/// Why a settings request was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No such tenant (neither in the file nor managed).
    #[error("no tenant {tenant:?}")]
    NotFound {
        /// The tenant.
        tenant: String,
    },
    /// The token may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The document is refused, by the host or by the tenant's component.
    #[error("{path}: {reason}")]
    Invalid {
        /// Dotted path inside the tenant's document (empty: the document itself).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `If-Match` named a version that is no longer current.
    #[error(
        "tenant {tenant:?} is at version {current}, not {based_on}: read it again and reapply your change"
    )]
    Stale {
        /// The tenant.
        tenant: String,
        /// The version the request was based on.
        based_on: SettingsVersion,
        /// The current version.
        current: SettingsVersion,
    },
    /// What was asked does not fit the tenant's state (deleting a tenant that only the
    /// file defines, rolling back to a deletion).
    #[error("{0}")]
    Conflict(String),
    /// The settings store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Applying the stored change failed.
    #[error("stored, but not applied: {0}")]
    Apply(#[from] ReloadError),
    /// A blocking task failed.
    #[error("the settings task failed: {0}")]
    Task(String),
}

/// Where a tenant's running settings come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The configuration file.
    File,
    /// The admin API (over the file's, if it has the tenant too).
    Api,
}

/// A tenant as `GET /v1/admin/tenants/{tenant}` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantView {
    /// The tenant.
    pub tenant: String,
    /// Where the settings that run come from.
    pub source: Source,
    /// The stored version (`0`: none; the file's settings run), what `If-Match`
    /// names.
    pub version: SettingsVersion,
    /// Whether the configuration file has the tenant too (a `DELETE` then returns it
    /// to the file's settings).
    pub in_file: bool,
    /// The document that runs, as a tenant of the file is written.
    pub document: Map<String, Value>,
}

/// What a change did.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeReport {
    /// The tenant.
    pub tenant: String,
    /// Its version now.
    pub version: SettingsVersion,
    /// The audit record written.
    pub audit: AuditRecord,
    /// What was left out in applying it: the sessions, timers and deliveries of a
    /// tenant removed (a `DELETE` of a tenant only the API defined).
    pub dropped: Vec<String>,
}

/// How a stored change reaches the engines.
enum Apply {
    /// Only this tenant's instance is replaced, on every shard; the others are not
    /// touched (a `PUT`, a rollback, a `DELETE` back to the file's settings).
    Tenant(Box<TenantConfig>, Arc<PluginComponent>),
    /// The cores are rebuilt without the tenant (a `DELETE` of a tenant only the API
    /// defined: its sessions go).
    Without(String),
}

/// What a `PUT` asks.
pub struct Put {
    /// The tenant.
    pub tenant: String,
    /// The new document.
    pub document: Map<String, Value>,
    /// `If-Match`: the version the writer read.
    pub if_match: Option<SettingsVersion>,
}

/// The tenant-scoped token's limits on a document: the operator's webhooks only as
/// granted, no limits of its own, components only by installed name.
fn check_scope(
    scope: &Scope,
    document: &Map<String, Value>,
    config: &HostConfig,
) -> Result<(), SettingsError> {
    let Scope::Tenant { webhooks, .. } = scope else {
        return Ok(());
    };
    if document.contains_key(LIMITS_KEY) {
        return Err(SettingsError::Forbidden(format!(
            "{LIMITS_KEY}: only the operator's token sets a tenant's limits"
        )));
    }
    if names_a_file(document, &config.catalog) {
        let installed: Vec<&str> = config.catalog.component_names().collect();
        return Err(SettingsError::Forbidden(format!(
            "component: a tenant's token names an installed component ({}), not a file",
            if installed.is_empty() {
                "there are none".to_owned()
            } else {
                installed.join(", ")
            }
        )));
    }
    if let Some(Value::Array(names)) = document.get(WEBHOOKS_KEY) {
        for (index, name) in names.iter().enumerate() {
            let granted = name
                .as_str()
                .is_some_and(|n| webhooks.iter().any(|w| w == n));
            if !granted {
                return Err(SettingsError::Forbidden(format!(
                    "{WEBHOOKS_KEY}[{index}]: {name} is not granted to this tenant's token (granted: {})",
                    if webhooks.is_empty() {
                        "none".to_owned()
                    } else {
                        webhooks.join(", ")
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Loads `tenant`'s component and starts the tenant alone with it, as every shard will:
/// `configure` must take the settings, or the refusal names the path. Returns the
/// loaded component for the shards (so that none of them compiles it on its thread).
fn check_with_component(
    runtime: Arc<Runtime>,
    default: Arc<PluginComponent>,
    config: &HostConfig,
    tenant: &TenantConfig,
) -> Result<Arc<PluginComponent>, SettingsError> {
    let component = match &tenant.component {
        None => default.clone(),
        Some(path) => runtime
            .load_file(path)
            .map_err(|e| SettingsError::Invalid {
                path: "component".into(),
                reason: e.to_string(),
            })?,
    };
    let empty = config.without_tenants();
    let (mut alone, _) =
        Core::holding_failures(runtime, &empty, default, Box::new(Collector::default()));
    match alone.replace_tenant(tenant, component.clone()) {
        Ok(()) => Ok(component),
        Err(CoreError::Config { path, reason, .. }) => Err(SettingsError::Invalid { path, reason }),
        Err(e @ CoreError::Load { .. }) => Err(SettingsError::Invalid {
            path: "component".into(),
            reason: e.to_string(),
        }),
        Err(e @ CoreError::Start { .. }) => Err(SettingsError::Invalid {
            path: String::new(),
            reason: e.to_string(),
        }),
    }
}

/// [`check_with_component`] off the async threads (loading may compile for a while).
async fn checked(
    current: &Current,
    tenant: &TenantConfig,
) -> Result<Arc<PluginComponent>, SettingsError> {
    let (runtime, default, file) = (
        current.runtime.clone(),
        current.default.clone(),
        current.file.without_tenants(),
    );
    let tenant = tenant.clone();
    tokio::task::spawn_blocking(move || check_with_component(runtime, default, &file, &tenant))
        .await
        .map_err(|e| SettingsError::Task(e.to_string()))?
}

fn version_of(current: &Current, tenant: &str) -> SettingsVersion {
    current
        .managed
        .get(tenant)
        .map_or(SettingsVersion(0), |v| v.version)
}

fn check_if_match(
    current: &Current,
    tenant: &str,
    if_match: Option<SettingsVersion>,
) -> Result<SettingsVersion, SettingsError> {
    let now = version_of(current, tenant);
    match if_match {
        Some(based_on) if based_on != now => Err(SettingsError::Stale {
            tenant: tenant.to_owned(),
            based_on,
            current: now,
        }),
        _ => Ok(now),
    }
}

impl Reloader {
    /// The tenants `scope` may see, in name order.
    pub async fn tenants(&self, scope: &Scope) -> Vec<TenantView> {
        let current = self.current.lock().await;
        current
            .config
            .tenants
            .iter()
            .filter(|t| scope.covers(&t.name))
            .map(|t| view(&current, t))
            .collect()
    }

    /// One tenant as it runs.
    pub async fn tenant(&self, tenant: &str) -> Result<TenantView, SettingsError> {
        let current = self.current.lock().await;
        current
            .config
            .tenants
            .iter()
            .find(|t| t.name == tenant)
            .map(|t| view(&current, t))
            .ok_or_else(|| SettingsError::NotFound {
                tenant: tenant.to_owned(),
            })
    }

    /// The kept versions of `tenant`, oldest first.
    pub async fn versions(&self, tenant: &str) -> Result<Vec<TenantVersion>, SettingsError> {
        let settings = self.settings.clone();
        let tenant = tenant.to_owned();
        tokio::task::spawn_blocking(move || settings.versions(&tenant))
            .await
            .map_err(|e| SettingsError::Task(e.to_string()))?
            .map_err(SettingsError::from)
    }

    /// The last `limit` audit records (of `tenant` only, when given), oldest first.
    pub async fn audit(
        &self,
        tenant: Option<String>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, SettingsError> {
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || settings.audit(tenant.as_deref(), limit))
            .await
            .map_err(|e| SettingsError::Task(e.to_string()))?
            .map_err(SettingsError::from)
    }

    /// Writes a tenant's document: checked (scope, host, component), stored as its next
    /// version with an audit record, then applied.
    pub async fn put(&self, scope: &Scope, put: Put) -> Result<ChangeReport, SettingsError> {
        self.write(scope, put, ChangeKind::Put, None).await
    }

    /// Writes an older version's document again as the tenant's next version.
    pub async fn rollback(
        &self,
        scope: &Scope,
        tenant: &str,
        to: SettingsVersion,
        if_match: Option<SettingsVersion>,
    ) -> Result<ChangeReport, SettingsError> {
        let versions = self.versions(tenant).await?;
        let Some(old) = versions.into_iter().find(|v| v.version == to) else {
            return Err(SettingsError::NotFound {
                tenant: format!("{tenant} version {to}"),
            });
        };
        let Some(document) = old.document else {
            return Err(SettingsError::Conflict(format!(
                "version {to} of tenant {tenant:?} is a deletion; DELETE the tenant instead"
            )));
        };
        let put = Put {
            tenant: tenant.to_owned(),
            document,
            if_match,
        };
        self.write(scope, put, ChangeKind::Rollback, Some(to)).await
    }

    async fn write(
        &self,
        scope: &Scope,
        put: Put,
        kind: ChangeKind,
        restored: Option<SettingsVersion>,
    ) -> Result<ChangeReport, SettingsError> {
        let result = self.try_write(scope, put, kind, restored).await;
        self.count(kind, &result);
        result
    }

    /// Counts a settings request by what became of it.
    fn count(&self, kind: ChangeKind, result: &Result<ChangeReport, SettingsError>) {
        let outcome = match (result, kind) {
            (Ok(_), ChangeKind::Put) => "put",
            (Ok(_), ChangeKind::Delete) => "delete",
            (Ok(_), ChangeKind::Rollback) => "rollback",
            (Err(SettingsError::Stale { .. }), _) => "stale",
            (Err(_), _) => "refused",
        };
        Metrics::count(&self.metrics.tenant_changes, outcome, 1);
    }

    async fn try_write(
        &self,
        scope: &Scope,
        put: Put,
        kind: ChangeKind,
        restored: Option<SettingsVersion>,
    ) -> Result<ChangeReport, SettingsError> {
        let Put {
            tenant,
            document,
            if_match,
        } = put;
        let mut current = self.current.lock().await;
        let based_on = check_if_match(&current, &tenant, if_match)?;
        check_scope(scope, &document, &current.file)?;
        let config = current
            .file
            .tenant(&tenant, document.clone())
            .map_err(|e| SettingsError::Invalid {
                path: e.path,
                reason: e.reason,
            })?;
        let component = checked(&current, &config).await?;
        let change = Change {
            tenant: tenant.clone(),
            based_on,
            document: Some(document),
            kind,
            restored,
            at_ms: wall_ms(),
            by: scope.name(),
        };
        let apply = Apply::Tenant(Box::new(config), component);
        self.commit_and_apply(&mut current, change, apply).await
    }

    /// Removes a tenant's managed settings: the file's settings run again, or, for a
    /// tenant only the API defined, the tenant is removed (its sessions dropped).
    pub async fn delete(
        &self,
        scope: &Scope,
        tenant: &str,
        if_match: Option<SettingsVersion>,
    ) -> Result<ChangeReport, SettingsError> {
        let result = self.try_delete(scope, tenant, if_match).await;
        self.count(ChangeKind::Delete, &result);
        result
    }

    async fn try_delete(
        &self,
        scope: &Scope,
        tenant: &str,
        if_match: Option<SettingsVersion>,
    ) -> Result<ChangeReport, SettingsError> {
        let mut current = self.current.lock().await;
        let based_on = check_if_match(&current, tenant, if_match)?;
        let managed = current
            .managed
            .get(tenant)
            .is_some_and(|v| v.document.is_some());
        let in_file = current
            .file
            .tenants
            .iter()
            .find(|t| t.name == tenant)
            .cloned();
        if !managed {
            return Err(match in_file {
                Some(_) => SettingsError::Conflict(format!(
                    "tenant {tenant:?} is defined only in the configuration file; remove it there (the API deletes what the API set)"
                )),
                None => SettingsError::NotFound {
                    tenant: tenant.to_owned(),
                },
            });
        }
        let apply = match in_file {
            Some(file_tenant) => {
                let component = checked(&current, &file_tenant).await?;
                Apply::Tenant(Box::new(file_tenant), component)
            }
            None => Apply::Without(tenant.to_owned()),
        };
        let change = Change {
            tenant: tenant.to_owned(),
            based_on,
            document: None,
            kind: ChangeKind::Delete,
            restored: None,
            at_ms: wall_ms(),
            by: scope.name(),
        };
        self.commit_and_apply(&mut current, change, apply).await
    }

    /// Stores `change` (refused if another change came first), then applies it.
    async fn commit_and_apply(
        &self,
        current: &mut Current,
        change: Change,
        apply: Apply,
    ) -> Result<ChangeReport, SettingsError> {
        let settings = self.settings.clone();
        let (version, audit) = tokio::task::spawn_blocking(move || settings.commit(change))
            .await
            .map_err(|e| SettingsError::Task(e.to_string()))?
            .map_err(|e| match e {
                CommitError::Stale {
                    tenant,
                    based_on,
                    current,
                } => SettingsError::Stale {
                    tenant,
                    based_on,
                    current,
                },
                CommitError::Store(e) => SettingsError::Store(e),
            })?;
        tracing::info!(
            tenant = audit.tenant,
            by = audit.by,
            kind = ?audit.kind,
            old_version = audit.old_version.0,
            new_version = audit.new_version.0,
            "tenant settings changed"
        );
        let tenant = version.tenant.clone();
        let number = version.version;
        current.managed.insert(tenant.clone(), version);
        let dropped = match apply {
            Apply::Tenant(config, component) => {
                self.replace(&config, component).await?;
                current.config.set_tenant(*config);
                Vec::new()
            }
            Apply::Without(name) => {
                let loaded = Loaded {
                    file: current.file.clone(),
                    config: {
                        let mut config = current.config.clone();
                        config.remove_tenant(&name);
                        config
                    },
                    refused: Vec::new(),
                };
                self.swap(current, loaded).await?.dropped
            }
        };
        Ok(ChangeReport {
            tenant,
            version: number,
            audit,
            dropped,
        })
    }
}

fn view(current: &Current, tenant: &TenantConfig) -> TenantView {
    let stored = current.managed.get(&tenant.name);
    let managed = stored.is_some_and(|v| v.document.is_some());
    TenantView {
        tenant: tenant.name.clone(),
        source: if managed { Source::Api } else { Source::File },
        // The stored version, a deletion's included: what `If-Match` compares with.
        version: stored.map_or(SettingsVersion(0), |v| v.version),
        in_file: current.file.tenants.iter().any(|t| t.name == tenant.name),
        document: tenant.document.clone(),
    }
}
