//! Where each tenant's chat actions go: the generic callback (`gateway.actions_url`),
//! or a platform adapter that makes them as the platform's REST calls
//! (`gateway.chatwoot`).

use std::path::PathBuf;
use std::sync::Arc;

use autoclose_config::{ChatwootAccount, ChatwootSettings, GatewayCallback, HostConfig};
use autoclose_platforms::chatwoot::client::{Account, Client};
use autoclose_webhook::retry::RetryPolicy;

use crate::ServeError;

/// The gateways of a configuration. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    /// The generic callback, for every tenant no platform serves.
    pub callback: Option<GatewayCallback>,
    /// The Chatwoot adapter.
    pub chatwoot: Option<Arc<Chatwoot>>,
}

/// The Chatwoot adapter's settings with its REST client.
pub struct Chatwoot {
    /// What the configuration says.
    pub settings: ChatwootSettings,
    /// The client for `settings.url`.
    pub client: Client,
}

/// Where one tenant's actions go.
pub enum Route<'a> {
    /// To the generic callback.
    Callback(&'a GatewayCallback),
    /// Through Chatwoot's API, for this account.
    Chatwoot(&'a Arc<Chatwoot>, &'a ChatwootAccount),
    /// Nowhere: no callback is configured and no platform serves the tenant.
    Nowhere,
}

impl Chatwoot {
    /// The account `tenant` is, if Chatwoot serves it.
    pub fn account(&self, tenant: &str) -> Option<&ChatwootAccount> {
        self.settings.accounts.get(tenant)
    }

    /// The REST calls' view of `account`.
    pub fn api<'a>(account: &'a ChatwootAccount) -> Account<'a> {
        Account {
            id: account.account_id,
            token: &account.api_access_token,
        }
    }
}

impl Gateway {
    /// The gateways `config` asks for. Every tenant of the file must reach one.
    pub fn new(config: &HostConfig, file: &std::path::Path) -> Result<Self, ServeError> {
        let chatwoot = config
            .chatwoot
            .as_ref()
            .map(|settings| {
                Client::new(settings).map(|client| {
                    Arc::new(Chatwoot {
                        settings: settings.clone(),
                        client,
                    })
                })
            })
            .transpose()
            .map_err(ServeError::Runtime)?;
        let gateway = Gateway {
            callback: config.gateway.clone(),
            chatwoot,
        };
        if gateway.callback.is_none() {
            let unserved: Vec<&str> = config
                .tenants
                .iter()
                .map(|t| t.name.as_str())
                .filter(|t| matches!(gateway.route(t), Route::Nowhere))
                .collect();
            if gateway.chatwoot.is_none() || !unserved.is_empty() {
                return Err(ServeError::NoCallback {
                    file: PathBuf::from(file),
                    tenants: unserved.join(", "),
                });
            }
        }
        Ok(gateway)
    }

    /// Where `tenant`'s actions go.
    pub fn route(&self, tenant: &str) -> Route<'_> {
        if let Some(chatwoot) = &self.chatwoot
            && let Some(account) = chatwoot.account(tenant)
        {
            return Route::Chatwoot(chatwoot, account);
        }
        match &self.callback {
            Some(callback) => Route::Callback(callback),
            None => Route::Nowhere,
        }
    }

    /// The retry policy of `tenant`'s actions.
    pub fn retry(&self, tenant: &str) -> RetryPolicy {
        match self.route(tenant) {
            Route::Callback(callback) => callback.endpoint.retry,
            Route::Chatwoot(chatwoot, _) => chatwoot.settings.retry,
            Route::Nowhere => RetryPolicy::default(),
        }
    }
}
