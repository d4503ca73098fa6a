//! The glue between the host's hooks and [`crate::survey`].

use std::cell::RefCell;
use std::collections::HashMap;

use crate::survey::{self, Ending, Survey};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "chat-gateway:plugin/plugin",
});

use chat_gateway::plugin::events::{
    CloseCause, Event, HttpOutcome, HttpResponseEvent, MessageEvent, SessionChange, SessionEvent,
    TimerEvent,
};
use chat_gateway::plugin::types::{
    ConfigError, Interests, MessageFields, SenderRole, TenantId, TenantSetup,
};
use chat_gateway::plugin::{http, logging, sessions};
use exports::chat_gateway::plugin::hooks::Guest;

thread_local! {
    static TENANTS: RefCell<HashMap<TenantId, Survey>> = RefCell::new(HashMap::new());
}

fn survey_of(tenant: TenantId) -> Option<Survey> {
    TENANTS.with_borrow(|t| t.get(&tenant).cloned())
}

struct Csat;

impl Guest for Csat {
    fn configure(setup: TenantSetup) -> Result<Interests, ConfigError> {
        let survey = survey::parse(&setup.config, &setup.defaults, &setup.webhooks)
            .map_err(|(path, reason)| ConfigError { path, reason })?;
        TENANTS.with_borrow_mut(|t| t.insert(setup.tenant, survey));
        Ok(Interests {
            message_fields: MessageFields::empty(),
        })
    }

    fn on_events(events: Vec<Event>) {
        for event in events {
            match event {
                Event::Message(e) => Self::on_message(e),
                Event::Session(e) => Self::on_session_event(e),
                Event::Timer(e) => Self::on_timer(e),
                Event::HttpResponse(e) => Self::on_http_response(e),
            }
        }
    }

    fn on_message(event: MessageEvent) {
        if event.sender != SenderRole::EndUser || event.origin.is_some() {
            return;
        }
        let Some(survey) = survey_of(event.tenant) else {
            return;
        };
        let count = survey::decode_count(event.state.as_deref().unwrap_or_default());
        if let Some(state) = survey::count_message(&survey, count)
            && let Err(e) = sessions::set_state(event.session, &state)
        {
            logging::log(
                logging::Level::Warn,
                Some(event.session),
                &format!("count not kept: {e:?}"),
            );
        }
    }

    fn on_session_event(event: SessionEvent) {
        let SessionChange::Closed(cause) = event.change else {
            return;
        };
        let Some(survey) = survey_of(event.tenant) else {
            return;
        };
        let ending = match cause {
            CloseCause::External => Ending::External,
            CloseCause::Plugin(reason) => Ending::Plugin(reason),
        };
        let channel = sessions::channel_name(event.channel).unwrap_or_default();
        let session = sessions::external_id(event.session).unwrap_or_default();
        let locale = sessions::attribute(event.session, "locale");
        let count = survey::decode_count(event.state.as_deref().unwrap_or_default());
        let Some(data) = survey::on_close(
            &survey,
            &channel,
            count,
            &ending,
            &session,
            locale.as_deref(),
        ) else {
            logging::log(
                logging::Level::Debug,
                Some(event.session),
                "no survey for this chat",
            );
            return;
        };
        let request = http::WebhookRequest {
            webhook: survey.webhook.clone(),
            event_type: "chat.csat.requested".to_owned(),
            data,
            idempotency_key: Some("close".to_owned()),
            deliver_by: None,
        };
        if let Err(e) = http::send(event.session, &request) {
            logging::log(
                logging::Level::Warn,
                Some(event.session),
                &format!("survey not requested: {e:?}"),
            );
        }
    }

    fn on_timer(_: TimerEvent) {}

    fn on_http_response(event: HttpResponseEvent) {
        if let HttpOutcome::Failed(reason) = event.outcome {
            logging::log(
                logging::Level::Warn,
                Some(event.session),
                &format!("survey request failed: {reason}"),
            );
        }
    }
}

export!(Csat);
