//! Who is asking: the bearer token of a request, mapped to what it may do.
//!
//! Tokens are compared in constant time (no early exit on the first differing byte,
//! so that response timing does not reveal a prefix). A token names one scope: the
//! configuration refuses the same token for two.

use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};

use autoclose_config::{Admin, Ingest};

use crate::gateway::{Chatwoot, Gateway, RocketChat};
use autoclose_webhook::signing::constant_time_eq as same;

/// What a request's token lets it do on the admin routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The operator: everything.
    Admin,
    /// One tenant's settings, read and changed, naming only the webhooks granted.
    Tenant {
        /// The tenant.
        tenant: String,
        /// The webhooks its settings may name.
        webhooks: Vec<String>,
    },
}

impl Scope {
    /// The name audit records give the token: `admin` or `tenant:<name>`; never the
    /// token itself.
    pub fn name(&self) -> String {
        match self {
            Scope::Admin => "admin".to_owned(),
            Scope::Tenant { tenant, .. } => format!("tenant:{tenant}"),
        }
    }

    /// Whether this scope may read and change `tenant`.
    pub fn covers(&self, tenant: &str) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Tenant { tenant: own, .. } => own == tenant,
        }
    }
}

/// The tokens the server checks; the admin ones change on reload.
#[derive(Clone)]
pub struct Access {
    ingest: Option<String>,
    admin: Arc<RwLock<Admin>>,
    /// The platform adapters, whose accounts authenticate the webhooks of
    /// `/v1/chatwoot/...` and `/v1/rocketchat/...`; a reload replaces them.
    platforms: Arc<RwLock<Platforms>>,
}

/// The platform adapters of the configuration in force.
#[derive(Clone, Default)]
struct Platforms {
    chatwoot: Option<Arc<Chatwoot>>,
    rocketchat: Option<Arc<RocketChat>>,
}

/// The bearer token of a request, or empty.
fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

impl Access {
    /// The tokens of `ingest` (fixed for the process) and `admin`.
    pub fn new(ingest: &Ingest, admin: Admin) -> Self {
        Access {
            ingest: ingest.token.clone(),
            admin: Arc::new(RwLock::new(admin)),
            platforms: Arc::default(),
        }
    }

    /// Takes the platform adapters of a (re)loaded configuration.
    pub fn replace_platforms(&self, gateway: &Gateway) {
        if let Ok(mut slot) = self.platforms.write() {
            *slot = Platforms {
                chatwoot: gateway.chatwoot.clone(),
                rocketchat: gateway.rocketchat.clone(),
            };
        }
    }

    /// The Chatwoot adapter, if one is configured.
    pub fn chatwoot(&self) -> Option<Arc<Chatwoot>> {
        self.platforms.read().ok().and_then(|p| p.chatwoot.clone())
    }

    /// The Rocket.Chat adapter, if one is configured.
    pub fn rocketchat(&self) -> Option<Arc<RocketChat>> {
        self.platforms
            .read()
            .ok()
            .and_then(|p| p.rocketchat.clone())
    }

    /// Takes the admin tokens of a reloaded configuration.
    pub fn replace_admin(&self, admin: Admin) {
        if let Ok(mut slot) = self.admin.write() {
            *slot = admin;
        }
    }

    /// Whether the request may send events: the ingest token, or no token configured.
    pub fn may_ingest(&self, headers: &HeaderMap) -> bool {
        match &self.ingest {
            None => true,
            Some(expected) => same(bearer(headers).as_bytes(), expected.as_bytes()),
        }
    }

    /// The scope of the request on the admin routes, or `None` (401). The operator's
    /// token is `admin.token`, else the ingest token; with neither configured every
    /// request is the operator (a loopback listener).
    pub fn admin_scope(&self, headers: &HeaderMap) -> Option<Scope> {
        self.scope_of_token(bearer(headers))
    }

    /// The scope `token` has on the admin routes and the console, as
    /// [`Access::admin_scope`] decides it for a bearer token.
    pub fn scope_of_token(&self, token: &str) -> Option<Scope> {
        let given = token.as_bytes();
        let Ok(admin) = self.admin.read() else {
            return None;
        };
        let operator = admin.token.as_ref().or(self.ingest.as_ref());
        let mut scope = match operator {
            None => Some(Scope::Admin),
            Some(expected) => same(given, expected.as_bytes()).then_some(Scope::Admin),
        };
        // Every tenant token is compared, whatever matched, so that timing does not
        // tell which scope a token has.
        for (tenant, grant) in &admin.tenants {
            if same(given, grant.token.as_bytes()) && scope.is_none() {
                scope = Some(Scope::Tenant {
                    tenant: tenant.clone(),
                    webhooks: grant.webhooks.clone(),
                });
            }
        }
        scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoclose_config::TenantGrant;

    fn with_token(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = format!("Bearer {token}").parse() {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn tokens_map_to_their_scope_and_nothing_else() {
        let ingest = Ingest {
            token: Some("ingest-token-0123456789".into()),
            ..Ingest::default()
        };
        let mut admin = Admin::default();
        admin.tenants.insert(
            "acme".into(),
            TenantGrant {
                token: "acme-token-0123456789".into(),
                webhooks: vec!["push".into()],
            },
        );
        let access = Access::new(&ingest, admin.clone());
        assert!(access.may_ingest(&with_token("ingest-token-0123456789")));
        assert!(!access.may_ingest(&with_token("ingest-token-012345678")));
        assert!(!access.may_ingest(&HeaderMap::new()));
        // Without admin.token, the ingest token is the operator's.
        assert_eq!(
            access.admin_scope(&with_token("ingest-token-0123456789")),
            Some(Scope::Admin)
        );
        let acme = access.admin_scope(&with_token("acme-token-0123456789"));
        assert_eq!(
            acme,
            Some(Scope::Tenant {
                tenant: "acme".into(),
                webhooks: vec!["push".into()]
            })
        );
        assert!(
            acme.as_ref()
                .is_some_and(|s| s.covers("acme") && !s.covers("globex"))
        );
        assert_eq!(
            access.admin_scope(&with_token("acme-token-01234567890")),
            None
        );
        assert_eq!(access.admin_scope(&HeaderMap::new()), None);

        // With admin.token, the ingest token no longer opens the admin routes.
        admin.token = Some("admin-token-0123456789".into());
        access.replace_admin(admin);
        assert_eq!(
            access.admin_scope(&with_token("ingest-token-0123456789")),
            None
        );
        assert_eq!(
            access.admin_scope(&with_token("admin-token-0123456789")),
            Some(Scope::Admin)
        );
        // No token anywhere: a loopback listener, everything open.
        let open = Access::new(&Ingest::default(), Admin::default());
        assert_eq!(open.admin_scope(&HeaderMap::new()), Some(Scope::Admin));
        assert!(open.may_ingest(&HeaderMap::new()));
    }
}
