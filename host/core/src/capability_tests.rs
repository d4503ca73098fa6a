//! The capabilities' checks (tenant isolation, limits) against the core's real state,
//! without a component: each test sets up a [`HostState`] in an instance's store and
//! calls the capability as a plugin would.

use std::sync::Arc;

use autoclose_config::Limits;
use autoclose_runtime::bindings::chat_gateway::plugin::sessions::Host as _;
use autoclose_runtime::bindings::chat_gateway::plugin::{chat, http, sessions, timers};
use autoclose_runtime::{
    ChannelId, InstanceState, MAX_WEBHOOK_DATA_BYTES, SessionId, TenantId, TimerKey,
};

use crate::state::HostState;

/// Tenant 0's instance, with a session and a channel of tenant 1 in the lent state.
fn tenant_zero_seeing_tenant_one() -> (InstanceState<HostState>, SessionId, ChannelId) {
    let mut state: InstanceState<HostState> = InstanceState::new(
        TenantId(0),
        "zero".into(),
        Arc::from(Vec::new()),
        Limits::default(),
    );
    let channel = state.world_mut().channels.intern("secret_channel");
    state
        .world_mut()
        .channel_users
        .insert((TenantId(1), channel));
    let session = state
        .world_mut()
        .sessions
        .open_or_get(TenantId(1), "their-session");
    if let Some(record) = state.world_mut().sessions.get_mut(session) {
        record.channel = Some(channel);
        record.attributes = vec![("name".into(), "Ana".into())];
    }
    (state, session, channel)
}

#[test]
fn a_plugin_cannot_read_another_tenant_s_sessions_or_channels() {
    let (mut state, session, channel) = tenant_zero_seeing_tenant_one();
    assert_eq!(state.channel_name(channel.0).ok().flatten(), None);
    assert_eq!(state.external_id(session.0).ok().flatten(), None);
    assert_eq!(
        state.attribute(session.0, "name".into()).ok().flatten(),
        None
    );
    assert_eq!(state.attributes(session.0).ok(), Some(Vec::new()));
    state
        .world_mut()
        .channel_users
        .insert((TenantId(0), channel));
    assert_eq!(
        state.channel_name(channel.0).ok().flatten().as_deref(),
        Some("secret_channel")
    );
}

#[test]
fn a_plugin_cannot_act_on_another_tenant_s_sessions() {
    use autoclose_runtime::bindings::chat_gateway::plugin::{chat::Host as _, timers::Host as _};
    let (mut state, session, _) = tenant_zero_seeing_tenant_one();
    assert!(matches!(
        state.post_message(session.0, "k".into(), "t".into()),
        Ok(Err(chat::ActionError::NoSession))
    ));
    assert!(matches!(
        state.close_session(session.0, "r".into()),
        Ok(Err(chat::ActionError::NoSession))
    ));
    assert!(matches!(
        state.set(session.0, 0, 1, vec![]),
        Ok(Err(timers::TimerError::NoSession))
    ));
    assert!(state.commands().is_empty());
}

#[test]
fn session_state_is_bounded_owned_and_read_back_within_the_hook() {
    use autoclose_runtime::bindings::chat_gateway::plugin::sessions::Host as _;
    let limits = Limits {
        max_session_state_bytes: 16,
        ..Limits::default()
    };
    let mut state: InstanceState<HostState> =
        InstanceState::new(TenantId(0), "zero".into(), Arc::from(Vec::new()), limits);
    let session = state.world_mut().sessions.open_or_get(TenantId(0), "s");
    if let Some(s) = state.world_mut().sessions.get_mut(session) {
        s.plugin_state = vec![7];
    }
    assert_eq!(
        state.state(session.0).ok(),
        Some(vec![7]),
        "what the host keeps"
    );
    assert!(matches!(
        state.set_state(session.0, vec![0; 17]),
        Ok(Err(sessions::StateError::TooLarge(16)))
    ));
    assert!(matches!(state.set_state(session.0, vec![1, 2]), Ok(Ok(()))));
    assert_eq!(
        state.state(session.0).ok(),
        Some(vec![1, 2]),
        "a later read in the same hook sees the write"
    );
    assert_eq!(
        state.commands().len(),
        1,
        "applied by the core after the hook"
    );
    let (mut other, theirs, _) = tenant_zero_seeing_tenant_one();
    if let Some(s) = other.world_mut().sessions.get_mut(theirs) {
        s.plugin_state = vec![9];
    }
    assert_eq!(
        other.state(theirs.0).ok(),
        Some(Vec::new()),
        "not another tenant's"
    );
    assert!(matches!(
        other.set_state(theirs.0, vec![1]),
        Ok(Err(sessions::StateError::NoSession))
    ));
}

#[test]
fn the_tenant_timer_cap_counts_every_session_and_the_hook_so_far() {
    use autoclose_runtime::bindings::chat_gateway::plugin::timers::Host as _;
    let limits = Limits {
        timers_per_tenant: 3,
        ..Limits::default()
    };
    let mut state: InstanceState<HostState> =
        InstanceState::new(TenantId(0), "zero".into(), Arc::from(Vec::new()), limits);
    let s1 = state.world_mut().sessions.open_or_get(TenantId(0), "s1");
    let s2 = state.world_mut().sessions.open_or_get(TenantId(0), "s2");
    let other = state
        .world_mut()
        .sessions
        .open_or_get(TenantId(1), "theirs");
    for key in [0, 1] {
        state
            .world_mut()
            .timers
            .set(TimerKey { session: s1, key }, TenantId(0), 10, b"");
    }
    state.world_mut().timers.set(
        TimerKey {
            session: other,
            key: 0,
        },
        TenantId(1),
        10,
        b"",
    );
    assert!(
        matches!(state.set(s2.0, 0, 20, vec![]), Ok(Ok(()))),
        "2 pending + 1: within the cap; another tenant's timer does not count"
    );
    assert!(matches!(
        state.set(s2.0, 1, 20, vec![]),
        Ok(Err(timers::TimerError::TooManyTenantTimers(3)))
    ));
    assert!(
        matches!(state.set(s1.0, 0, 30, vec![]), Ok(Ok(()))),
        "replacing a pending timer is always fine"
    );
    assert!(
        matches!(state.set(s2.0, 0, 40, vec![]), Ok(Ok(()))),
        "re-setting a key set earlier in the hook adds nothing"
    );
}

#[test]
fn the_timer_cap_counts_keys_after_the_hook() {
    use autoclose_runtime::bindings::chat_gateway::plugin::timers::Host as _;
    let limits = Limits {
        timers_per_session: 2,
        ..Limits::default()
    };
    let mut state: InstanceState<HostState> =
        InstanceState::new(TenantId(0), "zero".into(), Arc::from(Vec::new()), limits);
    let session = state.world_mut().sessions.open_or_get(TenantId(0), "s");
    for key in [1, 2] {
        state
            .world_mut()
            .timers
            .set(TimerKey { session, key }, TenantId(0), 10, b"");
    }
    assert!(
        matches!(state.set(session.0, 1, 20, vec![]), Ok(Ok(()))),
        "replacing is fine"
    );
    assert!(
        matches!(state.set(session.0, 1, 30, vec![]), Ok(Ok(()))),
        "twice too"
    );
    assert!(matches!(
        state.set(session.0, 3, 20, vec![]),
        Ok(Err(timers::TimerError::TooManyTimers(2)))
    ));
    assert!(matches!(state.cancel(session.0, 2), Ok(true)));
    assert!(
        matches!(state.set(session.0, 3, 20, vec![]), Ok(Ok(()))),
        "a cancelled key frees its place"
    );
    assert!(matches!(
        state.set(session.0, 4, 20, vec![]),
        Ok(Err(timers::TimerError::TooManyTimers(2)))
    ));
}

#[test]
fn payloads_data_and_actions_per_event_are_bounded() {
    use autoclose_runtime::bindings::chat_gateway::plugin::{
        chat::Host as _, http::Host as _, timers::Host as _,
    };
    let limits = Limits {
        actions_per_event: 3,
        ..Limits::default()
    };
    let mut state: InstanceState<HostState> = InstanceState::new(
        TenantId(0),
        "zero".into(),
        Arc::from(vec!["push".to_owned()]),
        limits,
    );
    let webhook = autoclose_config::HostConfig::parse(
        r#"{"webhooks": {"push": {"url": "https://push.example.com/"}}}"#,
        std::path::Path::new("t.json"),
    )
    .map(|c| c.webhooks)
    .unwrap_or_default();
    state.world_mut().webhooks = Arc::new(webhook);
    let session = state.world_mut().sessions.open_or_get(TenantId(0), "s");
    let big_payload = vec![0u8; limits.max_timer_payload_bytes + 1];
    assert!(matches!(
        state.set(session.0, 1, 10, big_payload),
        Ok(Err(timers::TimerError::PayloadTooLarge(1024)))
    ));
    let request = |data: String| http::WebhookRequest {
        webhook: "push".into(),
        event_type: "test.event".into(),
        data,
        idempotency_key: None,
        deliver_by: None,
    };
    let big_data = format!("{{\"x\":\"{}\"}}", "y".repeat(MAX_WEBHOOK_DATA_BYTES));
    assert!(matches!(
        state.send(session.0, request(big_data)),
        Ok(Err(http::SendError::InvalidData(_)))
    ));
    assert!(state.commands().is_empty(), "refusals record nothing");
    for i in 0..3 {
        assert!(matches!(
            state.post_message(session.0, "k".into(), format!("{i}")),
            Ok(Ok(()))
        ));
    }
    assert!(
        state
            .post_message(session.0, "k".into(), "one too many".into())
            .is_err(),
        "the fourth action traps the hook"
    );
}
