//! Webhook deliveries: a plugin's request rendered and queued, each attempt made
//! through the transport, and the decision that follows its result (done, retry
//! later, give up), whose outcome the plugin is told once.

use autoclose_runtime::bindings::chat_gateway::plugin::events::{HttpAnswer, HttpOutcome};
use autoclose_runtime::{RequestId, SendRequest, TenantId};
use autoclose_webhook::format::Fields;
use autoclose_webhook::outbound::Attempt;
use autoclose_webhook::retry::{self, AttemptResult, Decision};
use autoclose_webhook::signing;

use crate::action::{Action, ActionKind};
use crate::bounds::rfc3339;
use crate::core::Core;
use crate::hook::FollowUp;
use crate::outbox::Delivery;

impl Core {
    /// Renders a plugin's request in the webhook's format, records it, and makes the
    /// first attempt at once.
    pub(crate) fn queue_delivery(&mut self, tenant: TenantId, send: SendRequest) {
        let SendRequest {
            session,
            request,
            webhook,
            event_type,
            data,
            idempotency_key,
            deliver_by,
        } = send;
        let now = self.state.now;
        let Some(target) = self.state.webhooks.get(&webhook) else {
            return;
        };
        let tenant_name = self.tenants[tenant.0 as usize].name.clone();
        let external = self.external(session);
        let key = idempotency_key.unwrap_or_else(|| format!("request-{request}"));
        let id = signing::delivery_id(&tenant_name, &external, &event_type, &key);
        let timestamp = rfc3339(now);
        let body_value = target.format.render(Fields {
            id: &id,
            event_type: &event_type,
            timestamp: &timestamp,
            data: &data,
        });
        // A `Value` always serialises (its keys are strings).
        let body = serde_json::to_vec(&body_value).unwrap_or_default();
        let deadline = now
            .saturating_add(target.retry.deadline_ms)
            .min(deliver_by.unwrap_or(u64::MAX));
        self.actions.push(Action {
            at_ms: now,
            kind: ActionKind::Webhook {
                tenant: tenant_name.to_string(),
                session: external,
                event: event_type.clone(),
                webhook: webhook.clone(),
                id: id.clone(),
                method: target.method.clone(),
                url: target.url.to_string(),
                body: body_value,
            },
        });
        self.record_webhook(session, &webhook, &event_type, &id);
        self.state.outbox.insert(Delivery {
            request,
            tenant,
            session,
            webhook,
            event_type,
            id,
            body: body.into(),
            queued_at: now,
            deadline,
            attempts: 0,
            next_at: None,
        });
        self.attempt(request);
    }

    /// Makes the next attempt of a delivery, unless it is already stale.
    pub(crate) fn attempt(&mut self, request: RequestId) {
        self.touch_delivery(request);
        let now = self.state.now;
        let Some(delivery) = self.state.outbox.get_mut(request) else {
            return;
        };
        if now > delivery.deadline {
            let reason = "gave up: the deadline passed before the attempt".to_owned();
            tracing::warn!(webhook = &delivery.webhook, id = &delivery.id, "{reason}");
            self.finish(request, Err(reason));
            return;
        }
        delivery.attempts += 1;
        let Some(target) = self.state.webhooks.get(&delivery.webhook) else {
            return;
        };
        let attempt = Attempt {
            request: request.0,
            number: delivery.attempts,
            webhook: delivery.webhook.clone(),
            event_type: delivery.event_type.clone(),
            id: delivery.id.clone(),
            method: target.method.clone(),
            url: target.url.clone(),
            headers: target
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: target.secrets.clone().into(),
            body: delivery.body.clone(),
            timeout_ms: target.timeout_ms,
            allow_private_networks: self.egress.allow_private_networks,
        };
        if let Some(result) = self.outbound.attempt(attempt) {
            self.settle(request, result);
        }
    }

    /// Decides what follows an attempt's result: done, retry later, or give up.
    pub(crate) fn settle(&mut self, request: RequestId, result: AttemptResult) {
        self.touch_delivery(request);
        let now = self.state.now;
        let Some(delivery) = self.state.outbox.get(request) else {
            return;
        };
        let Some(target) = self.state.webhooks.get(&delivery.webhook) else {
            return;
        };
        let decision = retry::decide(
            &target.retry,
            delivery.attempts,
            &result,
            now,
            delivery.deadline,
            &delivery.id,
        );
        let attempts = delivery.attempts;
        let outcome = decision.outcome(attempts);
        if self.history_steps > 0 {
            let (session, id) = (delivery.session, delivery.id.clone());
            self.record(
                session,
                crate::history::What::WebhookAttempt {
                    id,
                    attempt: attempts,
                    result: result.to_string(),
                    outcome: outcome.clone(),
                },
            );
        }
        let Some(delivery) = self.state.outbox.get(request) else {
            return;
        };
        self.actions.push(Action {
            at_ms: now,
            kind: ActionKind::WebhookAttempt {
                tenant: self.tenants[delivery.tenant.0 as usize].name.to_string(),
                session: self.external(delivery.session),
                webhook: delivery.webhook.clone(),
                id: delivery.id.clone(),
                attempt: attempts,
                result: result.to_string(),
                outcome,
            },
        });
        match decision {
            Decision::Retry { at } => {
                self.tenants[delivery.tenant.0 as usize].stats.retries += 1;
                self.state.outbox.schedule(request, at);
            }
            Decision::Delivered => {
                tracing::debug!(
                    tenant = &*self.tenants[delivery.tenant.0 as usize].name,
                    webhook = &delivery.webhook,
                    id = &delivery.id,
                    "delivered after {attempts} attempt(s)"
                );
                self.finish(request, Ok(result));
            }
            Decision::GiveUp { reason } => {
                tracing::warn!(
                    tenant = &*self.tenants[delivery.tenant.0 as usize].name,
                    webhook = &delivery.webhook,
                    id = &delivery.id,
                    "gave up after {attempts} attempt(s): {reason}"
                );
                match result {
                    AttemptResult::Answered { .. } => self.finish(request, Ok(result)),
                    _ => self.finish(request, Err(format!("gave up: {reason}"))),
                }
            }
            Decision::Gone => {
                let key = (delivery.tenant, delivery.webhook.clone());
                tracing::warn!(
                    tenant = &*self.tenants[delivery.tenant.0 as usize].name,
                    webhook = &delivery.webhook,
                    "webhook answered 410 Gone: nothing more is sent to it for this tenant until the configuration is reloaded"
                );
                self.state.gone.insert(key);
                self.finish(request, Ok(result));
            }
        }
    }

    /// Ends a delivery and tells the plugin: `Ok` with the final answer, or `Err`
    /// with why no usable answer came.
    pub(crate) fn finish(&mut self, request: RequestId, outcome: Result<AttemptResult, String>) {
        let Some(delivery) = self.state.outbox.remove(request) else {
            return;
        };
        let slot = &mut self.tenants[delivery.tenant.0 as usize];
        let outcome = match outcome {
            Ok(AttemptResult::Answered { status, body, .. }) => {
                if (200..300).contains(&status) {
                    slot.stats.deliveries_ok += 1;
                } else {
                    slot.stats.deliveries_failed += 1;
                }
                HttpOutcome::Answered(HttpAnswer { status, body })
            }
            Ok(other) => {
                slot.stats.deliveries_failed += 1;
                HttpOutcome::Failed(other.to_string())
            }
            Err(reason) => {
                slot.stats.deliveries_failed += 1;
                HttpOutcome::Failed(reason)
            }
        };
        self.follow_ups.push_back(FollowUp::Answered {
            tenant: delivery.tenant,
            session: delivery.session,
            request,
            outcome,
        });
    }
}
