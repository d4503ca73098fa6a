//! The component glue on the guest SDK: host events in, policy plans out through the
//! session's capabilities.
//!
//! Kept thin on purpose. What it keeps per tenant is the parsed configuration and a
//! cache of channel names, both rebuilt by `configure` and lazy look-ups when the host
//! replaces the instance. What auto-close remembers per session lives in the host
//! (`sessions.state`) and in timer payloads.

use chat_gateway_sdk::{
    Channel, ChannelId, ConfigError, HttpOutcome, HttpResponseEvent, Interests, Level,
    MessageEvent, MessageFields, Plugin, PluginInfo, Presence as HostPresence, SenderRole, Session,
    SessionChange, SessionEvent, TenantSetup, TimerEvent, WebhookRequest, export_plugin,
};

use crate::config::{self, Settings, TenantSettings};
use crate::policy::{
    self, AGENT_NOTICE, Change, Fire, Plan, Presence, Sender, SessionState, TimerOp,
};
use crate::{explain, push};

/// What auto-close keeps for one tenant.
struct AutoClose {
    name: String,
    settings: TenantSettings,
    /// Largest webhook `data` the host accepts.
    max_data_bytes: usize,
    /// Channel handle to channel name, filled on first use. A tenant has a handful of
    /// channels, so a short list, searched on every event without hashing.
    channels: Vec<(ChannelId, Option<String>)>,
}

/// What the glue needs of a tenant beyond the channel's settings.
struct TenantInfo<'a> {
    name: &'a str,
    max_data_bytes: usize,
    /// The name of the session's channel, from the tenant's cache (empty if unknown).
    channel_name: &'a str,
}

impl AutoClose {
    /// The settings of `session` on `channel` (`None` where auto-close is off), and
    /// what else the glue needs of the tenant. The session's group attribute is read
    /// only for tenants that have groups.
    fn scope(&mut self, session: Session, channel: Channel) -> (Option<&Settings>, TenantInfo<'_>) {
        let group = self
            .settings
            .group_attribute()
            .and_then(|attribute| session.attribute(attribute));
        let slot = match self.channels.iter().position(|(id, _)| *id == channel.id()) {
            Some(index) => index,
            None => {
                self.channels.push((channel.id(), channel.name()));
                self.channels.len() - 1
            }
        };
        let name = self.channels[slot].1.as_deref();
        let settings = name.and_then(|n| self.settings.get(n, group.as_deref()));
        (
            settings,
            TenantInfo {
                name: &self.name,
                max_data_bytes: self.max_data_bytes,
                channel_name: name.unwrap_or_default(),
            },
        )
    }
}

fn sender(role: SenderRole) -> Sender {
    match role {
        SenderRole::Agent => Sender::Agent,
        SenderRole::EndUser => Sender::EndUser,
        SenderRole::Bot => Sender::Bot,
        SenderRole::System => Sender::System,
    }
}

fn presence(presence: HostPresence) -> Presence {
    match presence {
        HostPresence::Unknown => Presence::Unknown,
        HostPresence::Visible => Presence::Visible,
        HostPresence::Hidden => Presence::Hidden,
    }
}

/// Carries out a plan in the documented order: state, post, agent notice, push,
/// timer, close.
/// `attributes` are the session's, when the hook has already read them (a push needs
/// them; each read is a call that copies every attribute into the guest).
fn execute(
    plan: Plan,
    session: Session,
    tenant: TenantInfo<'_>,
    attributes: Option<&[(String, String)]>,
) {
    if let Some(note) = plan.note {
        session.log(Level::Debug, note);
    }
    if let Some(state) = plan.state
        && let Err(e) = session.set_state(&state.encode())
    {
        session.log(Level::Warn, &format!("session state not kept: {e}"));
    }
    if let Some((notice, text)) = &plan.post
        && let Err(e) = session.post(notice.post_kind(), text)
    {
        session.log(
            Level::Warn,
            &format!("posting the {} failed: {e}", notice.post_kind()),
        );
    }
    if let Some(text) = &plan.agent_notice
        && let Err(e) = session.post(AGENT_NOTICE, text)
    {
        session.log(
            Level::Warn,
            &format!("posting the agent notice failed: {e}"),
        );
    }
    if let Some(p) = &plan.push {
        let external = session.external_id().unwrap_or_default();
        let read;
        let attributes = match attributes {
            Some(attributes) => attributes,
            None => {
                read = session.attributes();
                &read
            }
        };
        let data = push::data(
            p,
            push::Recipient {
                tenant: tenant.name,
                session: &external,
                channel: tenant.channel_name,
                attributes,
            },
            tenant.max_data_bytes,
        );
        let mut request = WebhookRequest::new(&p.webhook, p.notice.event_type(), data)
            .idempotency_key(p.idempotency_key());
        request.deliver_by = p.deliver_by();
        if let Err(e) = session.send(&request) {
            session.log(
                Level::Warn,
                &format!("push {} not sent: {e}", p.notice.event_type()),
            );
        }
    }
    match plan.timer {
        Some(TimerOp::Set { due, pending }) => {
            if let Err(e) = session.set_timer(policy::TIMER_KEY, due, &pending.encode()) {
                session.log(Level::Warn, &format!("timer not set: {e}"));
            }
        }
        Some(TimerOp::Cancel) => {
            session.cancel_timer(policy::TIMER_KEY);
        }
        None => {}
    }
    if plan.close
        && let Err(e) = session.close(policy::CLOSE_REASON)
    {
        session.log(Level::Warn, &format!("closing failed: {e}"));
    }
}

impl Plugin for AutoClose {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "auto-close",
            env!("CARGO_PKG_VERSION"),
            "Warns an idle end user in the chat and on their phone, then closes the chat.",
        )
        .with_settings_schema(config::raw::schema())
    }

    fn configure(setup: &TenantSetup) -> Result<Self, ConfigError> {
        let settings = config::parse(&setup.config, &setup.defaults, &setup.webhooks)
            .map_err(|e| ConfigError::new(e.path, e.reason))?;
        Ok(AutoClose {
            name: setup.name.clone(),
            settings,
            max_data_bytes: setup.limits.max_webhook_data_bytes as usize,
            channels: Vec::new(),
        })
    }

    fn interests(&self) -> Interests {
        Interests {
            message_fields: if self.settings.needs_agent_name() {
                MessageFields::SENDER_NAME
            } else {
                MessageFields::empty()
            },
        }
    }

    fn explain(&self, setup: &TenantSetup) -> String {
        explain::explain(&setup.config, &setup.defaults, &setup.webhooks)
            .unwrap_or_else(|e| format!("{}: {}", e.path, e.reason))
    }

    fn on_message(&mut self, event: MessageEvent) {
        let message = policy::Message {
            sender: sender(event.sender),
            own_echo: event.origin.as_deref() == Some(policy::ORIGIN),
            at: event.at,
            sender_name: event.sender_name(),
        };
        let session_state = SessionState::decode(event.state());
        let session = event.session();
        let (settings, tenant) = self.scope(session, event.channel());
        let plan = policy::on_message(settings, message, session_state);
        execute(plan, session, tenant, None);
    }

    fn on_session_event(&mut self, event: SessionEvent) {
        let change = match event.change {
            SessionChange::Closed(_) => Change::Closed,
            SessionChange::Hold(until) => Change::Hold(until),
            SessionChange::Queued => Change::Queued,
            SessionChange::Transferred => Change::Transferred,
            SessionChange::Opened | SessionChange::Presence(_) => return,
        };
        let session_state = SessionState::decode(event.state());
        let session = event.session();
        let (_, tenant) = self.scope(session, event.channel());
        let plan = policy::on_change(change, event.at, session_state);
        execute(plan, session, tenant, None);
    }

    fn on_timer(&mut self, event: TimerEvent) {
        if event.key != policy::TIMER_KEY {
            return;
        }
        let session = event.session();
        let attributes = session.attributes();
        let fire_state = SessionState::decode(event.state());
        let user_presence = presence(session.presence());
        let (settings, tenant) = self.scope(session, event.channel());
        let fire = Fire {
            now: event.at,
            state: fire_state,
            attributes: &attributes,
            presence: user_presence,
            tenant: tenant.name,
        };
        let plan = policy::on_timer(settings, &event.payload, fire);
        execute(plan, session, tenant, Some(&attributes));
    }

    fn on_http_response(&mut self, event: HttpResponseEvent) {
        let (level, outcome) = match &event.outcome {
            HttpOutcome::Answered(answer) if (200..300).contains(&answer.status) => {
                (Level::Debug, format!("status {}", answer.status))
            }
            HttpOutcome::Answered(answer) => (Level::Warn, format!("status {}", answer.status)),
            HttpOutcome::Failed(reason) => (Level::Warn, reason.clone()),
        };
        event.session().log(
            level,
            &format!("push request {} ended: {outcome}", event.request),
        );
    }
}

export_plugin!(AutoClose);
