//! What the console asks an engine, and how the engine answers from its core: the
//! one read-only request in the engine's mailbox, answered between two requests of
//! a round so that it sees a consistent state.

use std::sync::Arc;

use autoclose_core::view::{Found, SessionDetail, SessionQuery, TenantOverview};
use autoclose_core::{Core, PluginComponent};
use autoclose_runtime::bindings::chat_gateway::plugin::types::TenantSetup;

/// What the console asks an engine.
#[derive(Clone, Debug)]
pub enum Inspect {
    /// Sessions matching a query.
    Sessions(SessionQuery),
    /// One session, whole.
    Session {
        /// Its tenant.
        tenant: String,
        /// Its id.
        session: String,
    },
    /// Every configured tenant's counts.
    Tenants,
    /// One tenant's counts, and what its component needs to explain its settings.
    Tenant(String),
}

/// What an engine answers the console.
pub enum Inspected {
    /// This engine does not serve its shard now (another node does).
    NotServed,
    /// The sessions found.
    Sessions(Found),
    /// The session, if known.
    Session(Option<Box<SessionDetail>>),
    /// Every tenant's counts, in configuration order.
    Tenants(Vec<TenantOverview>),
    /// The tenant, if configured.
    Tenant(Option<Box<TenantAbout>>),
}

/// One tenant as one engine knows it, with what explaining its settings takes (a
/// call into its component, made off the engine thread).
pub struct TenantAbout {
    /// Its counts and health on this shard.
    pub overview: TenantOverview,
    /// The runtime its instances run on.
    pub runtime: Arc<autoclose_core::Runtime>,
    /// Its component and its setup, when the component is loaded.
    pub setup: Option<(Arc<PluginComponent>, TenantSetup)>,
}

/// The answer to `query` from `core`; `served` tells whether the engine serves its
/// shard now (on a cluster, another node may).
pub fn answer(core: &Core, served: bool, query: Inspect) -> Inspected {
    if !served {
        return Inspected::NotServed;
    }
    match query {
        Inspect::Sessions(query) => Inspected::Sessions(core.find_sessions(&query)),
        Inspect::Session { tenant, session } => {
            Inspected::Session(core.session_detail(&tenant, &session).map(Box::new))
        }
        Inspect::Tenants => Inspected::Tenants(
            core.tenant_names()
                .filter_map(|name| core.tenant_overview(name))
                .collect(),
        ),
        Inspect::Tenant(name) => Inspected::Tenant(core.tenant_overview(&name).map(|overview| {
            Box::new(TenantAbout {
                overview,
                runtime: core.runtime().clone(),
                setup: core
                    .tenant_setups()
                    .find(|(tenant, ..)| *tenant == name)
                    .map(|(_, component, setup)| (component.clone(), setup)),
            })
        })),
    }
}
