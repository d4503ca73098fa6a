//! `http`: non-blocking calls of the operator's webhooks.

use serde_json::Value;

use crate::bindings::chat_gateway::plugin::http::{self, SendError, WebhookRequest};
use crate::command::{Command, SendRequest};
use crate::ids::SessionId;
use crate::limits::MAX_WEBHOOK_DATA_BYTES;
use crate::state::InstanceState;
use crate::world::World;

/// Longest webhook event type and idempotency key.
const MAX_EVENT_TYPE_BYTES: usize = 128;

/// Whether `text` is a well-formed event type: `a-z 0-9 . _ -`, at most 128 bytes.
fn valid_event_type(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_EVENT_TYPE_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl<W: World> http::Host for InstanceState<W> {
    fn send(
        &mut self,
        session: u64,
        request: WebhookRequest,
    ) -> wasmtime::Result<Result<u64, SendError>> {
        let session = SessionId(session);
        if !self.may_act_on(session) && !self.closing.contains(&session) {
            return Ok(Err(SendError::NoSession));
        }
        if !self.allowed_webhooks.contains(&request.webhook)
            || !self.lent.webhook_configured(&request.webhook)
        {
            return Ok(Err(SendError::UnknownWebhook(request.webhook)));
        }
        if self.lent.webhook_gone(self.tenant, &request.webhook) {
            return Ok(Err(SendError::WebhookGone(request.webhook)));
        }
        if !valid_event_type(&request.event_type) {
            return Ok(Err(SendError::InvalidData(format!(
                "event-type must be 1 to {MAX_EVENT_TYPE_BYTES} bytes of a-z 0-9 . _ -"
            ))));
        }
        if request
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.len() > MAX_EVENT_TYPE_BYTES)
        {
            return Ok(Err(SendError::InvalidData(format!(
                "idempotency-key is longer than {MAX_EVENT_TYPE_BYTES} bytes"
            ))));
        }
        if request.data.len() > MAX_WEBHOOK_DATA_BYTES {
            return Ok(Err(SendError::InvalidData(format!(
                "data is {} bytes; at most {MAX_WEBHOOK_DATA_BYTES}",
                request.data.len()
            ))));
        }
        let data = match serde_json::from_str::<Value>(&request.data) {
            Ok(data @ Value::Object(_)) => data,
            Ok(_) => {
                return Ok(Err(SendError::InvalidData(
                    "data is not a JSON object".into(),
                )));
            }
            Err(e) => return Ok(Err(SendError::InvalidData(format!("data: {e}")))),
        };
        let queued = self
            .commands
            .iter()
            .filter(|c| matches!(c, Command::Send(_)))
            .count();
        if self.lent.in_flight(self.tenant) + queued >= self.limits.http_in_flight_per_tenant {
            return Ok(Err(SendError::TooManyInFlight));
        }
        let id = self.lent.next_request();
        self.push(Command::Send(SendRequest {
            session,
            request: id,
            webhook: request.webhook,
            event_type: request.event_type,
            data,
            idempotency_key: request.idempotency_key,
            deliver_by: request.deliver_by,
        }))?;
        Ok(Ok(id.0))
    }
}
