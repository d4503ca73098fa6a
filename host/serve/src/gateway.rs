//! Where each tenant's chat actions go: the generic callback (`gateway.actions_url`),
//! or a platform adapter that makes them as the platform's REST calls
//! (`gateway.chatwoot`, `gateway.rocketchat`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use autoclose_config::{
    ChatwootAccount, ChatwootSettings, GatewayCallback, HostConfig, PlatformTiming,
    RocketChatServer, RocketChatSettings,
};
use autoclose_platforms::chatwoot::client::{Account, Client};
use autoclose_platforms::rocketchat::client::Client as RocketChatClient;
use autoclose_webhook::retry::RetryPolicy;

use crate::ServeError;

/// The gateways of a configuration. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    /// The generic callback, for every tenant no platform serves.
    pub callback: Option<GatewayCallback>,
    /// The Chatwoot adapter.
    pub chatwoot: Option<Arc<Chatwoot>>,
    /// The Rocket.Chat adapter.
    pub rocketchat: Option<Arc<RocketChat>>,
}

/// The Chatwoot adapter's settings with its REST client.
pub struct Chatwoot {
    /// What the configuration says.
    pub settings: ChatwootSettings,
    /// The client for `settings.url`.
    pub client: Client,
}

/// The Rocket.Chat adapter's settings with one REST client per workspace.
pub struct RocketChat {
    /// What the configuration says.
    pub settings: RocketChatSettings,
    /// The clients, by tenant.
    pub clients: BTreeMap<String, RocketChatClient>,
    /// Each room's channel once read (no webhook carries it), by tenant and room.
    channels: Mutex<HashMap<(String, String), String>>,
}

/// Most rooms whose channel is remembered; past it the memory starts afresh (a room
/// read again costs one `rooms.info`).
pub const MAX_REMEMBERED_ROOMS: usize = 100_000;

/// A platform adapter, as a tenant's actions reach it. Cheap to clone.
#[derive(Clone)]
pub enum Adapter {
    /// Chatwoot.
    Chatwoot(Arc<Chatwoot>),
    /// Rocket.Chat.
    RocketChat(Arc<RocketChat>),
}

/// Where one tenant's actions go.
pub enum Route<'a> {
    /// To the generic callback.
    Callback(&'a GatewayCallback),
    /// Through a platform's API.
    Platform(Adapter),
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

impl RocketChat {
    /// The workspace `tenant` is and its client, if Rocket.Chat serves it.
    pub fn server(&self, tenant: &str) -> Option<(&RocketChatServer, &RocketChatClient)> {
        Some((
            self.settings.servers.get(tenant)?,
            self.clients.get(tenant)?,
        ))
    }

    /// The channel of `tenant`'s `room`, if it was read before.
    pub fn remembered_channel(&self, tenant: &str, room: &str) -> Option<String> {
        let channels = self.channels.lock().ok()?;
        channels.get(&(tenant.to_owned(), room.to_owned())).cloned()
    }

    /// Remembers the channel of `tenant`'s `room`.
    pub fn remember_channel(&self, tenant: &str, room: &str, channel: String) {
        if let Ok(mut channels) = self.channels.lock() {
            if channels.len() >= MAX_REMEMBERED_ROOMS {
                channels.clear();
            }
            channels.insert((tenant.to_owned(), room.to_owned()), channel);
        }
    }
}

impl Adapter {
    /// The platform's name, as metrics and logs say it.
    pub fn platform(&self) -> &'static str {
        match self {
            Adapter::Chatwoot(_) => "chatwoot",
            Adapter::RocketChat(_) => "rocketchat",
        }
    }

    /// How the adapter's calls are paced and retried.
    pub fn timing(&self) -> &PlatformTiming {
        match self {
            Adapter::Chatwoot(c) => &c.settings.timing,
            Adapter::RocketChat(r) => &r.settings.timing,
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
        let rocketchat = config
            .rocketchat
            .as_ref()
            .map(|settings| {
                let clients = settings
                    .servers
                    .iter()
                    .map(|(tenant, server)| {
                        RocketChatClient::new(server, settings.timing.timeout_ms)
                            .map(|client| (tenant.clone(), client))
                    })
                    .collect::<Result<_, String>>()?;
                Ok::<_, String>(Arc::new(RocketChat {
                    settings: settings.clone(),
                    clients,
                    channels: Mutex::default(),
                }))
            })
            .transpose()
            .map_err(ServeError::Runtime)?;
        let gateway = Gateway {
            callback: config.gateway.clone(),
            chatwoot,
            rocketchat,
        };
        if gateway.callback.is_none() {
            let unserved: Vec<&str> = config
                .tenants
                .iter()
                .map(|t| t.name.as_str())
                .filter(|t| matches!(gateway.route(t), Route::Nowhere))
                .collect();
            let platforms = gateway.chatwoot.is_some() || gateway.rocketchat.is_some();
            if !platforms || !unserved.is_empty() {
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
            && chatwoot.account(tenant).is_some()
        {
            return Route::Platform(Adapter::Chatwoot(chatwoot.clone()));
        }
        if let Some(rocketchat) = &self.rocketchat
            && rocketchat.server(tenant).is_some()
        {
            return Route::Platform(Adapter::RocketChat(rocketchat.clone()));
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
            Route::Platform(adapter) => adapter.timing().retry,
            Route::Nowhere => RetryPolicy::default(),
        }
    }
}
