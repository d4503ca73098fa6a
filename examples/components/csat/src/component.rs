//! The glue between the guest SDK's hooks and [`crate::survey`].

use chat_gateway_sdk::{
    CloseCause, ConfigError, HttpOutcome, HttpResponseEvent, Level, MessageEvent, Plugin,
    PluginInfo, SenderRole, SessionChange, SessionEvent, TenantSetup, WebhookRequest,
    export_plugin,
};

use crate::survey::{self, Ending, Survey};

impl Plugin for Survey {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "csat",
            env!("CARGO_PKG_VERSION"),
            "Asks the customer's survey service for a satisfaction survey when a chat ends.",
        )
        .with_settings_schema(survey::schema())
    }

    fn configure(setup: &TenantSetup) -> Result<Self, ConfigError> {
        survey::parse(&setup.config, &setup.defaults, &setup.webhooks)
            .map_err(|(path, reason)| ConfigError::new(path, reason))
    }

    fn explain(&self, _setup: &TenantSetup) -> String {
        survey::explain(self)
    }

    fn on_message(&mut self, event: MessageEvent) {
        if event.sender != SenderRole::EndUser || event.origin.is_some() {
            return;
        }
        let count = survey::decode_count(event.state());
        if let Some(state) = survey::count_message(self, count)
            && let Err(e) = event.session().set_state(&state)
        {
            event
                .session()
                .log(Level::Warn, &format!("count not kept: {e}"));
        }
    }

    fn on_session_event(&mut self, event: SessionEvent) {
        let SessionChange::Closed(cause) = &event.change else {
            return;
        };
        let ending = match cause {
            CloseCause::External => Ending::External,
            CloseCause::Plugin(reason) => Ending::Plugin(reason.clone()),
        };
        let session = event.session();
        let channel = event.channel().name().unwrap_or_default();
        let external = session.external_id().unwrap_or_default();
        let locale = session.attribute("locale");
        let count = survey::decode_count(event.state());
        let Some(data) =
            survey::on_close(self, &channel, count, &ending, &external, locale.as_deref())
        else {
            session.log(Level::Debug, "no survey for this chat");
            return;
        };
        let request = WebhookRequest::new(&self.webhook, "chat.csat.requested", data)
            .idempotency_key("close".to_owned());
        if let Err(e) = session.send(&request) {
            session.log(Level::Warn, &format!("survey not requested: {e}"));
        }
    }

    fn on_http_response(&mut self, event: HttpResponseEvent) {
        if let HttpOutcome::Failed(reason) = &event.outcome {
            event
                .session()
                .log(Level::Warn, &format!("survey request failed: {reason}"));
        }
    }
}

export_plugin!(Survey);
