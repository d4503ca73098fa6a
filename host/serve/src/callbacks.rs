//! Chat actions on their way to the gateway's callback (`gateway.actions_url`).
//!
//! Each action becomes one signed JSON request with a stable action id, retried like a
//! webhook until the gateway answers 2xx or the policy gives up. Actions of one
//! session go one at a time, in the order the plugin took them: a close never
//! overtakes the closing message posted just before it, even when that post needs a
//! retry. Sessions do not wait for each other.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde_json::json;

use autoclose_core::action::{Action, ActionKind};
use autoclose_core::records::CallbackRecord;
use autoclose_core::rfc3339;
use autoclose_webhook::retry::{self, AttemptResult, Decision, RetryPolicy};
use autoclose_webhook::signing::derived_id;

/// The action types the callback carries (`type` in the body).
pub const ACTION_TYPES: [&str; 2] = ["post_message", "close_session"];

/// What became of a callback attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The gateway took it.
    Delivered,
    /// Another attempt is scheduled at this time.
    Retry(u64),
    /// Given up; why.
    GaveUp(String),
    /// Unknown sequence number (already settled): nothing done.
    Unknown,
}

impl Settled {
    /// What came of attempt `result`, for a session's history: `None` when the
    /// callback was already settled.
    pub fn describe(&self, result: &AttemptResult) -> Option<String> {
        Some(match self {
            Settled::Delivered => format!("{result}: delivered"),
            Settled::Retry(at) => format!("{result}: retry at {}", rfc3339(*at)),
            Settled::GaveUp(reason) => format!("{result}: gave up: {reason}"),
            Settled::Unknown => return None,
        })
    }
}

/// A chat action's `type` (`post_message`, `close_session`), read from its body.
pub fn action_type(record: &CallbackRecord) -> String {
    serde_json::from_slice::<serde_json::Value>(&record.body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The callback outbox: records by sequence number, a queue per session, and the
/// schedule of the sessions' heads.
#[derive(Debug, Default)]
pub struct Callbacks {
    records: BTreeMap<u64, CallbackRecord>,
    queues: HashMap<(String, String), VecDeque<u64>>,
    schedule: BTreeSet<(u64, u64)>,
    next_seq: u64,
    written: HashSet<u64>,
    ended: Vec<u64>,
}

impl Callbacks {
    /// Puts back what the store held. Heads without a next attempt time (their
    /// attempt was under way at the crash) are due at `now`: the resend carries the
    /// same action id.
    pub fn restore(records: Vec<CallbackRecord>, next_seq: u64, now: u64) -> Self {
        let mut callbacks = Callbacks {
            next_seq,
            ..Callbacks::default()
        };
        let mut records = records;
        records.sort_by_key(|r| r.seq);
        for record in records {
            callbacks.next_seq = callbacks.next_seq.max(record.seq + 1);
            let key = (record.tenant.clone(), record.session.clone());
            callbacks
                .queues
                .entry(key)
                .or_default()
                .push_back(record.seq);
            callbacks.records.insert(record.seq, record);
        }
        let heads: Vec<u64> = callbacks
            .queues
            .values()
            .filter_map(|q| q.front().copied())
            .collect();
        for seq in heads {
            let at = callbacks.records[&seq].next_at.unwrap_or(now);
            callbacks.schedule_at(seq, at);
        }
        callbacks
    }

    /// Turns a post or a close into a callback, queued behind its session's earlier
    /// ones. Other actions (webhooks) are not for the gateway: `false`.
    pub fn push(&mut self, action: &Action, policy: &RetryPolicy) -> bool {
        let (tenant, session, body_fields) = match &action.kind {
            ActionKind::PostMessage {
                tenant,
                session,
                kind,
                text,
            } => (
                tenant,
                session,
                json!({"type": "post_message", "kind": kind, "text": text}),
            ),
            ActionKind::CloseSession {
                tenant,
                session,
                reason,
            } => (
                tenant,
                session,
                json!({"type": "close_session", "reason": reason}),
            ),
            _ => return false,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let kind = body_fields["type"].as_str().unwrap_or_default();
        // A session closes once, so a close is identified by its session and time
        // (the time tells a forgotten session's close from that of a later session
        // with the same id); a post by its session, time and text (the same text
        // posted twice in the same millisecond is the same post). An id is made once
        // and stored with the action, so a resend always carries it.
        let id = match &action.kind {
            ActionKind::CloseSession { .. } => {
                derived_id("act_", &[tenant, session, kind, &action.at_ms.to_string()])
            }
            _ => derived_id(
                "act_",
                &[
                    tenant,
                    session,
                    kind,
                    &action.at_ms.to_string(),
                    body_fields["kind"].as_str().unwrap_or_default(),
                    body_fields["text"].as_str().unwrap_or_default(),
                ],
            ),
        };
        let mut body = json!({
            "id": id,
            "tenant": tenant,
            "session": session,
            "seq": seq,
            "at": rfc3339(action.at_ms),
            "at_ms": action.at_ms,
        });
        if let (Some(body), Some(fields)) = (body.as_object_mut(), body_fields.as_object()) {
            for (k, v) in fields {
                body.insert(k.clone(), v.clone());
            }
        }
        let record = CallbackRecord {
            seq,
            id,
            tenant: tenant.clone(),
            session: session.clone(),
            body: serde_json::to_vec(&body).expect("JSON values serialize"),
            queued_at: action.at_ms,
            deadline: action.at_ms.saturating_add(policy.deadline_ms),
            attempts: 0,
            next_at: None,
        };
        let queue = self
            .queues
            .entry((tenant.clone(), session.clone()))
            .or_default();
        queue.push_back(seq);
        let head = queue.len() == 1;
        self.records.insert(seq, record);
        self.written.insert(seq);
        if head {
            self.schedule_at(seq, action.at_ms);
        }
        true
    }

    /// The pending callback `seq`.
    pub fn get(&self, seq: u64) -> Option<&CallbackRecord> {
        self.records.get(&seq)
    }

    /// When the next attempt is due.
    pub fn next_due(&self) -> Option<u64> {
        self.schedule.first().map(|(at, _)| *at)
    }

    /// Callbacks not yet delivered or given up.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Takes the next attempt due at or before `now`: counts it and returns the record
    /// to send. Records whose deadline passed are given up on instead (and returned
    /// as `Err` with the record's id for the log).
    pub fn pop_due(&mut self, now: u64) -> Option<Result<CallbackRecord, (String, String)>> {
        let &(at, seq) = self.schedule.first()?;
        if at > now {
            return None;
        }
        self.schedule.pop_first();
        let record = self.records.get_mut(&seq)?;
        record.next_at = None;
        if now > record.deadline {
            let id = record.id.clone();
            self.end(seq);
            return Some(Err((id, "the deadline passed before the attempt".into())));
        }
        record.attempts += 1;
        self.written.insert(seq);
        Some(Ok(record.clone()))
    }

    /// Records the result of an attempt of `seq` at `now`.
    pub fn settle(
        &mut self,
        seq: u64,
        result: &AttemptResult,
        now: u64,
        policy: &RetryPolicy,
    ) -> Settled {
        let Some(record) = self.records.get(&seq) else {
            return Settled::Unknown;
        };
        match retry::decide(
            policy,
            record.attempts,
            result,
            now,
            record.deadline,
            &record.id,
        ) {
            Decision::Delivered => {
                self.end(seq);
                Settled::Delivered
            }
            Decision::Retry { at } => {
                self.schedule_at(seq, at);
                Settled::Retry(at)
            }
            Decision::GiveUp { reason } => {
                self.end(seq);
                Settled::GaveUp(reason)
            }
            Decision::Gone => {
                self.end(seq);
                Settled::GaveUp("status 410".into())
            }
        }
    }

    /// The records written and the sequence numbers ended since the last call.
    pub fn take_changes(&mut self) -> (Vec<CallbackRecord>, Vec<u64>) {
        let written = std::mem::take(&mut self.written)
            .into_iter()
            .filter_map(|seq| self.records.get(&seq).cloned())
            .collect();
        (written, std::mem::take(&mut self.ended))
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn schedule_at(&mut self, seq: u64, at: u64) {
        if let Some(record) = self.records.get_mut(&seq) {
            if let Some(previous) = record.next_at.replace(at) {
                self.schedule.remove(&(previous, seq));
            }
            self.schedule.insert((at, seq));
            self.written.insert(seq);
        }
    }

    /// Removes `seq` and lets the next action of its session go.
    fn end(&mut self, seq: u64) {
        let Some(record) = self.records.remove(&seq) else {
            return;
        };
        if let Some(at) = record.next_at {
            self.schedule.remove(&(at, seq));
        }
        self.written.remove(&seq);
        self.ended.push(seq);
        let key = (record.tenant, record.session);
        let next = match self.queues.get_mut(&key) {
            Some(queue) => {
                queue.retain(|s| *s != seq);
                queue.front().copied()
            }
            None => None,
        };
        match next {
            Some(next) => {
                let at = self.records.get(&next).map_or(0, |r| r.queued_at);
                self.schedule_at(next, at);
            }
            None => {
                self.queues.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(at_ms: u64, session: &str, text: &str) -> Action {
        Action {
            at_ms,
            kind: ActionKind::PostMessage {
                tenant: "acme".into(),
                session: session.into(),
                kind: "warning".into(),
                text: text.into(),
            },
        }
    }

    fn close(at_ms: u64, session: &str) -> Action {
        Action {
            at_ms,
            kind: ActionKind::CloseSession {
                tenant: "acme".into(),
                session: session.into(),
                reason: "inactivity".into(),
            },
        }
    }

    const OK: AttemptResult = AttemptResult::Answered {
        status: 204,
        retry_after_ms: None,
        body: Vec::new(),
    };

    #[test]
    fn a_session_s_actions_go_one_at_a_time_in_order() {
        let policy = RetryPolicy::default();
        let mut callbacks = Callbacks::default();
        assert!(callbacks.push(&post(10, "s1", "closing"), &policy));
        assert!(callbacks.push(&close(10, "s1"), &policy));
        assert!(callbacks.push(&post(12, "s2", "hello"), &policy));
        let first = callbacks.pop_due(20).and_then(Result::ok).expect("s1 post");
        let other = callbacks.pop_due(20).and_then(Result::ok).expect("s2 post");
        assert_eq!(other.session, "s2");
        assert!(
            callbacks.pop_due(20).is_none(),
            "the close waits for the post"
        );
        let failed = AttemptResult::Failed("connection refused".into());
        let Settled::Retry(at) = callbacks.settle(first.seq, &failed, 20, &policy) else {
            panic!("a refused connection is retried");
        };
        assert!(at >= 20 + retry::SCHEDULE_MS[0], "{at}");
        assert!(callbacks.pop_due(at - 1).is_none(), "still waiting");
        let again = callbacks.pop_due(at).and_then(Result::ok).expect("retry");
        assert_eq!(
            (again.seq, again.id.clone(), again.attempts),
            (first.seq, first.id, 2)
        );
        assert_eq!(
            callbacks.settle(again.seq, &OK, at, &policy),
            Settled::Delivered
        );
        let closing = callbacks.pop_due(at).and_then(Result::ok).expect("close");
        let body: serde_json::Value = serde_json::from_slice(&closing.body).expect("json");
        assert_eq!(body["type"], "close_session");
        assert_eq!(body["id"], closing.id.as_str());
    }

    #[test]
    fn restore_resends_what_was_under_way_with_the_same_id() {
        let policy = RetryPolicy::default();
        let mut callbacks = Callbacks::default();
        callbacks.push(&post(10, "s1", "a"), &policy);
        callbacks.push(&close(10, "s1"), &policy);
        let sent = callbacks.pop_due(10).and_then(Result::ok).expect("post");
        let (written, ended) = callbacks.take_changes();
        assert!(ended.is_empty());
        let mut restored = Callbacks::restore(written, callbacks.next_seq(), 500);
        let again = restored.pop_due(500).and_then(Result::ok).expect("resent");
        assert_eq!((again.id, again.attempts), (sent.id, 2));
        assert!(restored.pop_due(500).is_none(), "the close still waits");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let policy = RetryPolicy::default();
        let mut a = Callbacks::default();
        let mut b = Callbacks::default();
        a.push(&post(10, "s1", "x"), &policy);
        b.push(&post(10, "s1", "x"), &policy);
        a.push(&post(10, "s1", "y"), &policy);
        let (mut ra, _) = a.take_changes();
        let (rb, _) = b.take_changes();
        ra.sort_by_key(|r| r.seq);
        assert_eq!(ra[0].id, rb[0].id);
        assert_ne!(ra[0].id, ra[1].id);
    }
}
