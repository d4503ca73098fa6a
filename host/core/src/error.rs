//! Why the core refused to start, or refused an event.

use autoclose_runtime::LoadError;

/// Where a component's configuration error is, as a path in the host's config file:
/// inside the tenant's document, or in the operator's `defaults` as applied to it.
fn config_error_place(tenant: &str, path: &str) -> String {
    if path == "defaults" || path.starts_with("defaults.") {
        format!("{path} (applied to tenant {tenant})")
    } else if path.is_empty() {
        format!("tenants.{tenant}")
    } else {
        format!("tenants.{tenant}.{path}")
    }
}

/// Why the core could not start a tenant.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A tenant's component could not be loaded.
    #[error("tenants.{tenant}.component: {source}")]
    Load {
        /// The tenant naming it.
        tenant: String,
        /// Why.
        source: LoadError,
    },
    /// A tenant's component refused its configuration.
    #[error("{}: {reason}", config_error_place(tenant, path))]
    Config {
        /// The tenant.
        tenant: String,
        /// Dotted path inside the tenant's document.
        path: String,
        /// What the component said.
        reason: String,
    },
    /// A tenant's component could not be started.
    #[error("tenants.{tenant}: component {component} failed to start: {reason}")]
    Start {
        /// The tenant.
        tenant: String,
        /// The component's name.
        component: String,
        /// The trap or error.
        reason: String,
    },
}

impl CoreError {
    /// The tenant the error is about.
    pub fn tenant(&self) -> &str {
        match self {
            CoreError::Load { tenant, .. }
            | CoreError::Config { tenant, .. }
            | CoreError::Start { tenant, .. } => tenant,
        }
    }
}

/// Why an event was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A time past year 9999.
    #[error("time {0} ms is past the year 9999")]
    TimeOutOfRange(u64),
    /// A message for a session whose channel was never given.
    #[error(
        "session {session:?} of tenant {tenant:?} has no channel: send session_opened first or give the message a channel"
    )]
    NoChannel {
        /// The tenant.
        tenant: String,
        /// The session.
        session: String,
    },
}

impl EventError {
    /// `event` is a message for a session whose channel is not known.
    pub(crate) fn no_channel(event: &crate::event::GatewayEvent) -> Self {
        EventError::NoChannel {
            tenant: event.tenant().to_owned(),
            session: event.session().to_owned(),
        }
    }
}
