//! Who may use `serve`'s admin API (`admin` key): the operator's token, and tokens
//! scoped to one tenant with the webhooks the operator granted it.
//!
//! Why grants live in the file and not in the API: a tenant's document names webhooks,
//! and a webhook carries a URL and secrets that only the operator may set. A
//! tenant-scoped token can only choose among the webhooks granted here.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::env::resolve_env;
use crate::{FieldError, Webhook};

/// Shortest token accepted: 16 characters.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Who may use the admin API.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Admin {
    /// The operator's token for every admin route; `None`: the ingest token serves.
    pub token: Option<String>,
    /// Tokens scoped to one tenant, by tenant name.
    pub tenants: BTreeMap<String, TenantGrant>,
}

/// What a tenant-scoped token may do: read and change that tenant's settings, naming
/// only these webhooks.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantGrant {
    /// The token. Never printed.
    pub token: String,
    /// The webhooks the tenant's settings may name.
    pub webhooks: Vec<String>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tenants", &self.tenants)
            .finish()
    }
}

impl std::fmt::Debug for TenantGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantGrant")
            .field("token", &"***")
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

/// The `admin` section as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    /// The operator's bearer token for `/v1/admin/*` (`env:NAME` reads it from the
    /// environment); without it, the ingest token serves.
    token: Option<String>,
    /// Tokens for one tenant each, by tenant name: they read and change that tenant's
    /// settings only, naming only the webhooks granted.
    #[serde(default)]
    tenants: BTreeMap<String, RawGrant>,
}

/// One tenant's token as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    /// The bearer token (`env:NAME` reads it from the environment).
    token: String,
    /// Webhooks (names from `webhooks`) the tenant's settings may name.
    #[serde(default)]
    webhooks: Vec<String>,
}

fn token(
    value: &str,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, FieldError> {
    let token = resolve_env(value, env).map_err(|reason| FieldError::new(path.into(), reason))?;
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(FieldError::new(
            path.into(),
            format!("must have at least {MIN_TOKEN_CHARS} characters"),
        ));
    }
    Ok(token)
}

impl RawAdmin {
    /// The checked section: tokens long enough and all different (also from the
    /// ingest token, so that a token names one scope), granted webhooks defined.
    pub(crate) fn parse(
        self,
        webhooks: &BTreeMap<String, Webhook>,
        ingest_token: Option<&str>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Admin, FieldError> {
        let mut admin = Admin::default();
        let mut seen: Vec<(String, String)> = Vec::new();
        if let Some(value) = &self.token {
            admin.token = Some(token(value, "admin.token", env)?);
        }
        let mut check_unique = |token: &str, path: String| -> Result<(), FieldError> {
            if ingest_token == Some(token) {
                return Err(FieldError::new(
                    path,
                    "is the same as ingest.token; give every scope its own token".into(),
                ));
            }
            if let Some((other, _)) = seen.iter().find(|(_, t)| t == token) {
                return Err(FieldError::new(
                    path,
                    format!("is the same as {other}; give every scope its own token"),
                ));
            }
            seen.push((path, token.to_owned()));
            Ok(())
        };
        if let Some(token) = &admin.token {
            check_unique(token, "admin.token".into())?;
        }
        for (tenant, grant) in self.tenants {
            let path = format!("admin.tenants.{tenant}");
            if tenant.is_empty() {
                return Err(FieldError::new(
                    "admin.tenants".into(),
                    "a tenant name is empty".into(),
                ));
            }
            let value = token(&grant.token, &format!("{path}.token"), env)?;
            check_unique(&value, format!("{path}.token"))?;
            for (index, hook) in grant.webhooks.iter().enumerate() {
                if !webhooks.contains_key(hook) {
                    return Err(FieldError::new(
                        format!("{path}.webhooks[{index}]"),
                        format!("unknown webhook {hook:?}"),
                    ));
                }
            }
            admin.tenants.insert(
                tenant,
                TenantGrant {
                    token: value,
                    webhooks: grant.webhooks,
                },
            );
        }
        Ok(admin)
    }
}
