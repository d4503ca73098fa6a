//! The component glue: host events in, policy plans out through host capabilities.
//!
//! Kept thin on purpose. The only state is each tenant's parsed configuration and a
//! cache of channel names; both are rebuilt by `configure` and lazy look-ups when the
//! host replaces the instance. What auto-close remembers per session lives in the host
//! (`sessions.state`) and in timer payloads.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::config::{self, Settings, TenantSettings};
use crate::policy::{self, Change, Fire, Plan, Presence, Sender, SessionState, TimerOp};
use crate::push;

wit_bindgen::generate!({
    path: "../wit",
    world: "chat-gateway:plugin/plugin",
});

use chat_gateway::plugin::events::{
    Event, HttpOutcome, HttpResponseEvent, MessageEvent, MessageField, SessionChange, SessionEvent,
    TimerEvent,
};
use chat_gateway::plugin::types::{
    ChannelId, ConfigError, Interests, MessageFields, Presence as HostPresence, SenderRole,
    SessionId, TenantId, TenantSetup,
};
use chat_gateway::plugin::{chat, http, logging, sessions, timers};
use exports::chat_gateway::plugin::hooks::Guest;

struct Tenant {
    name: String,
    settings: TenantSettings,
    /// Largest webhook `data` the host accepts.
    max_data_bytes: usize,
    /// Channel handle to channel name, filled on first use. A tenant has a handful of
    /// channels, so a short list, searched on every event without hashing.
    channels: Vec<(ChannelId, Option<String>)>,
}

impl Tenant {
    /// Where `channel` is in `channels`, its name asked of the host the first time.
    fn channel_slot(&mut self, channel: ChannelId) -> usize {
        match self.channels.iter().position(|(id, _)| *id == channel) {
            Some(index) => index,
            None => {
                self.channels
                    .push((channel, sessions::channel_name(channel)));
                self.channels.len() - 1
            }
        }
    }
}

thread_local! {
    /// The configured tenants. The reference host gives each tenant an instance, so
    /// this usually holds one: a B-tree finds it without hashing the key.
    static TENANTS: RefCell<BTreeMap<TenantId, Tenant>> = const { RefCell::new(BTreeMap::new()) };
}

/// What the glue needs of a tenant beyond the channel's settings.
struct TenantInfo<'a> {
    name: &'a str,
    max_data_bytes: usize,
    /// The name of the session's channel, from the tenant's cache (empty if unknown).
    channel_name: &'a str,
}

/// Runs `f` with the settings of `session` on `channel` for `tenant` (`None` where
/// auto-close is off or the tenant is not configured). The session's group attribute
/// is read only for tenants that have groups.
fn with_settings<R>(
    tenant: TenantId,
    session: SessionId,
    channel: ChannelId,
    f: impl FnOnce(Option<&Settings>, TenantInfo<'_>) -> R,
) -> R {
    TENANTS.with_borrow_mut(|tenants| match tenants.get_mut(&tenant) {
        None => f(
            None,
            TenantInfo {
                name: "",
                max_data_bytes: 0,
                channel_name: "",
            },
        ),
        Some(t) => {
            let group = t
                .settings
                .group_attribute()
                .and_then(|attribute| sessions::attribute(session, attribute));
            let slot = t.channel_slot(channel);
            let name = t.channels[slot].1.as_deref();
            let settings = name.and_then(|n| t.settings.get(n, group.as_deref()));
            f(
                settings,
                TenantInfo {
                    name: &t.name,
                    max_data_bytes: t.max_data_bytes,
                    channel_name: name.unwrap_or_default(),
                },
            )
        }
    })
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

/// Carries out a plan in the documented order: state, post, push, timer, close.
/// `attributes` are the session's, when the hook has already read them (a push needs
/// them; each read is a call that copies every attribute into the guest).
fn execute(
    plan: Plan,
    session: SessionId,
    tenant: TenantInfo<'_>,
    attributes: Option<&[(String, String)]>,
) {
    if let Some(note) = plan.note {
        logging::log(logging::Level::Debug, Some(session), note);
    }
    if let Some(state) = plan.state
        && let Err(e) = sessions::set_state(session, &state.encode())
    {
        logging::log(
            logging::Level::Warn,
            Some(session),
            &format!("session state not kept: {e:?}"),
        );
    }
    if let Some((notice, text)) = &plan.post
        && let Err(e) = chat::post_message(session, notice.post_kind(), text)
    {
        logging::log(
            logging::Level::Warn,
            Some(session),
            &format!("posting the {} failed: {e:?}", notice.post_kind()),
        );
    }
    if let Some(p) = &plan.push {
        let external = sessions::external_id(session).unwrap_or_default();
        let read;
        let attributes = match attributes {
            Some(attributes) => attributes,
            None => {
                read = sessions::attributes(session);
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
        let request = http::WebhookRequest {
            webhook: p.webhook.clone(),
            event_type: p.notice.event_type().to_owned(),
            data,
            idempotency_key: Some(p.idempotency_key()),
            deliver_by: p.deliver_by(),
        };
        if let Err(e) = http::send(session, &request) {
            logging::log(
                logging::Level::Warn,
                Some(session),
                &format!("push {} not sent: {e:?}", p.notice.event_type()),
            );
        }
    }
    match plan.timer {
        Some(TimerOp::Set { due, pending }) => {
            if let Err(e) = timers::set(session, policy::TIMER_KEY, due, &pending.encode()) {
                logging::log(
                    logging::Level::Warn,
                    Some(session),
                    &format!("timer not set: {e:?}"),
                );
            }
        }
        Some(TimerOp::Cancel) => {
            timers::cancel(session, policy::TIMER_KEY);
        }
        None => {}
    }
    if plan.close
        && let Err(e) = chat::close_session(session, policy::CLOSE_REASON)
    {
        logging::log(
            logging::Level::Warn,
            Some(session),
            &format!("closing failed: {e:?}"),
        );
    }
}

struct Component;

impl Guest for Component {
    fn configure(setup: TenantSetup) -> Result<Interests, ConfigError> {
        let settings =
            config::parse(&setup.config, &setup.defaults, &setup.webhooks).map_err(|e| {
                ConfigError {
                    path: e.path,
                    reason: e.reason,
                }
            })?;
        let message_fields = if settings.needs_agent_name() {
            MessageFields::SENDER_NAME
        } else {
            MessageFields::empty()
        };
        TENANTS.with_borrow_mut(|tenants| {
            tenants.insert(
                setup.tenant,
                Tenant {
                    name: setup.name,
                    settings,
                    max_data_bytes: setup.limits.max_webhook_data_bytes as usize,
                    channels: Vec::new(),
                },
            )
        });
        Ok(Interests { message_fields })
    }

    fn on_message(event: MessageEvent) {
        on_message(event);
    }

    fn on_session_event(event: SessionEvent) {
        on_session_event(event);
    }

    fn on_timer(event: TimerEvent) {
        on_timer(event);
    }

    fn on_http_response(event: HttpResponseEvent) {
        on_http_response(event);
    }

    fn on_events(events: Vec<Event>) {
        for event in events {
            match event {
                Event::Message(e) => on_message(e),
                Event::Session(e) => on_session_event(e),
                Event::Timer(e) => on_timer(e),
                Event::HttpResponse(e) => on_http_response(e),
            }
        }
    }
}

fn on_message(event: MessageEvent) {
    let sender = sender(event.sender);
    let message = policy::Message {
        sender,
        own_echo: event.origin.as_deref() == Some(policy::ORIGIN),
        at: event.at,
        sender_name: event.fields.iter().flatten().find_map(|f| match f {
            MessageField::SenderName(name) => Some(name.as_str()),
            _ => None,
        }),
    };
    let session_state = SessionState::decode(event.state.as_deref().unwrap_or_default());
    with_settings(
        event.tenant,
        event.session,
        event.channel,
        |settings, tenant| {
            let plan = policy::on_message(settings, message, session_state);
            execute(plan, event.session, tenant, None);
        },
    );
}

fn on_session_event(event: SessionEvent) {
    let change = match event.change {
        SessionChange::Closed(_) => Change::Closed,
        SessionChange::Hold(until) => Change::Hold(until),
        SessionChange::Queued => Change::Queued,
        SessionChange::Transferred => Change::Transferred,
        SessionChange::Opened | SessionChange::Presence(_) => return,
    };
    let session_state = SessionState::decode(event.state.as_deref().unwrap_or_default());
    with_settings(event.tenant, event.session, event.channel, |_, tenant| {
        let plan = policy::on_change(change, event.at, session_state);
        execute(plan, event.session, tenant, None);
    });
}

fn on_timer(event: TimerEvent) {
    if event.key != policy::TIMER_KEY {
        return;
    }
    let now = event.at;
    let attributes = sessions::attributes(event.session);
    let fire_state = SessionState::decode(event.state.as_deref().unwrap_or_default());
    let user_presence = presence(sessions::last_presence(event.session));
    with_settings(
        event.tenant,
        event.session,
        event.channel,
        |settings, tenant| {
            let fire = Fire {
                now,
                state: fire_state,
                attributes: &attributes,
                presence: user_presence,
                tenant: tenant.name,
            };
            let plan = policy::on_timer(settings, &event.payload, fire);
            execute(plan, event.session, tenant, Some(&attributes));
        },
    );
}

fn on_http_response(event: HttpResponseEvent) {
    let (level, outcome) = match &event.outcome {
        HttpOutcome::Answered(answer) if (200..300).contains(&answer.status) => {
            (logging::Level::Debug, format!("status {}", answer.status))
        }
        HttpOutcome::Answered(answer) => {
            (logging::Level::Warn, format!("status {}", answer.status))
        }
        HttpOutcome::Failed(reason) => (logging::Level::Warn, reason.clone()),
    };
    logging::log(
        level,
        Some(event.session),
        &format!("push request {} ended: {outcome}", event.request),
    );
}

export!(Component);
