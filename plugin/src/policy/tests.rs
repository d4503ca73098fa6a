use super::*;
use crate::config;

fn settings(layer: &str) -> Settings {
    let tenant = config::parse(
        &format!(r#"{{"channels":{{"c":{{"auto_close":{layer}}}}}}}"#),
        "{}",
        &["push".to_owned()],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    tenant.channel("c").cloned().expect("channel c")
}

/// Reminder at 2m (chat only), final warning at 4m (chat and push), close at 5m.
fn two_steps() -> Settings {
    settings(
        r#"{"warnings": [
              {"after": "2m", "message": "Still there, {{end_user_name|friend}}?"},
              {"after": "4m", "message": {"default": "{{minutes_left}} min left", "pt": "Faltam {{minutes_left}} min"}, "push": true}],
            "close": {"after": "5m", "message": "bye", "push": true},
            "push": {"webhook": "push"}}"#,
    )
}

fn msg(sender: Sender, at: u64) -> Message<'static> {
    Message {
        sender,
        own_echo: false,
        at,
        sender_name: None,
    }
}

fn fire(now: u64) -> Fire<'static> {
    Fire {
        now,
        state: SessionState::default(),
        attributes: &[],
        presence: Presence::Unknown,
        tenant: "acme",
    }
}

/// Starts a cycle at `at` and returns its first timer.
fn first_timer(s: &Settings, at: u64) -> (u64, Pending) {
    match on_message(Some(s), msg(Sender::Agent, at), SessionState::default()).timer {
        Some(TimerOp::Set { due, pending }) => (due, pending),
        other => panic!("no timer set: {other:?}"),
    }
}

/// Fires `pending` at `now` and returns the plan.
fn fire_at(s: &Settings, pending: &Pending, f: Fire<'_>) -> Plan {
    on_timer(Some(s), &pending.encode(), f)
}

fn next_timer(plan: &Plan) -> (u64, Pending) {
    match &plan.timer {
        Some(TimerOp::Set { due, pending }) => (*due, pending.clone()),
        other => panic!("no next timer: {other:?}"),
    }
}

#[test]
fn a_cycle_walks_its_steps_then_closes() {
    let s = two_steps();
    let (due, pending) = first_timer(&s, 1_000);
    assert_eq!(due, 121_000);

    let reminder = fire_at(&s, &pending, fire(due));
    assert_eq!(
        reminder.post,
        Some((Notice::Warning, "Still there, friend?".to_owned()))
    );
    assert_eq!(reminder.push, None, "the reminder is chat only");
    assert_eq!(
        reminder.state.map(|s| s.cycles),
        Some(1),
        "the first warning counts the cycle"
    );
    let (due, pending) = next_timer(&reminder);
    assert_eq!(due, 241_000);

    let warning = fire_at(&s, &pending, fire(due));
    assert_eq!(
        warning.post,
        Some((Notice::Warning, "1 min left".to_owned()))
    );
    let push = warning.push.clone().expect("the final warning pushes");
    assert_eq!((push.notice, push.closes_at), (Notice::Warning, 301_000));
    assert_eq!(push.idempotency_key(), "1000-1");
    assert_eq!(push.deliver_by(), Some(301_000));
    assert_eq!(warning.state, None, "only the first warning counts");
    let (due, pending) = next_timer(&warning);
    assert_eq!(due, 301_000);

    let close = fire_at(&s, &pending, fire(due));
    assert_eq!(close.post, Some((Notice::Close, "bye".to_owned())));
    assert_eq!(close.push.as_ref().map(|p| p.notice), Some(Notice::Close));
    assert!(close.close);
    assert_eq!(close.timer, None);
}

#[test]
fn a_late_step_never_shortens_the_time_to_answer() {
    let s = two_steps();
    let (_, pending) = first_timer(&s, 0);
    let (_, pending) = next_timer(&fire_at(&s, &pending, fire(120_000)));
    // The final warning is delivered 50 s late (say, after a host restart).
    let late = fire_at(&s, &pending, fire(290_000));
    assert_eq!(late.post, Some((Notice::Warning, "1 min left".to_owned())));
    assert_eq!(next_timer(&late).0, 350_000);
}

#[test]
fn texts_follow_the_users_locale_and_names() {
    let s = two_steps();
    let (_, pending) = first_timer(&s, 0);
    let attributes = vec![
        ("locale".to_owned(), "pt-BR".to_owned()),
        ("name".to_owned(), "Rui".to_owned()),
    ];
    let reminder = fire_at(
        &s,
        &pending,
        Fire {
            attributes: &attributes,
            ..fire(120_000)
        },
    );
    assert_eq!(
        reminder.post,
        Some((Notice::Warning, "Still there, Rui?".to_owned()))
    );
    let (_, pending) = next_timer(&reminder);
    let warning = fire_at(
        &s,
        &pending,
        Fire {
            attributes: &attributes,
            ..fire(240_000)
        },
    );
    assert_eq!(
        warning.post,
        Some((Notice::Warning, "Faltam 1 min".to_owned()))
    );
}

#[test]
fn the_agents_name_travels_with_the_cycle() {
    let s = settings(r#"{"close": {"after": "1m", "message": "{{agent_name}} closed this chat"}}"#);
    let message = Message {
        sender_name: Some("Ana"),
        ..msg(Sender::Agent, 0)
    };
    let Some(TimerOp::Set { pending, .. }) =
        on_message(Some(&s), message, SessionState::default()).timer
    else {
        panic!("no timer");
    };
    let close = fire_at(&s, &pending, fire(60_000));
    assert_eq!(
        close.post,
        Some((Notice::Close, "Ana closed this chat".to_owned()))
    );
}

#[test]
fn an_agent_notice_goes_with_its_warning_in_the_users_locale() {
    let s = settings(
        r#"{"warnings": [{"after": "2m", "message": "Still there?", "post": false,
                          "agent_notice": {"default": "{{minutes_left}} min to the close", "pt": "Faltam {{minutes_left}} min"}}],
            "close": {"after": "5m"}}"#,
    );
    let (_, pending) = first_timer(&s, 0);
    let attributes = vec![("locale".to_owned(), "pt-BR".to_owned())];
    let warning = fire_at(
        &s,
        &pending,
        Fire {
            attributes: &attributes,
            ..fire(120_000)
        },
    );
    assert_eq!(warning.post, None, "post: false keeps the chat quiet");
    assert_eq!(warning.agent_notice.as_deref(), Some("Faltam 3 min"));
    // Without one, nothing goes to the agents.
    let (_, pending) = first_timer(&two_steps(), 0);
    assert_eq!(
        fire_at(&two_steps(), &pending, fire(120_000)).agent_notice,
        None
    );
}

#[test]
fn pushes_only_when_away_skip_users_looking_at_the_chat() {
    let s = settings(
        r#"{"warnings": [{"after": "1m", "message": "w", "push": true}], "close": {"after": "2m"},
            "push": {"webhook": "push", "only_when_away": true}}"#,
    );
    let (_, pending) = first_timer(&s, 0);
    for (presence, pushed) in [
        (Presence::Unknown, true),
        (Presence::Hidden, true),
        (Presence::Visible, false),
    ] {
        let plan = fire_at(
            &s,
            &pending,
            Fire {
                presence,
                ..fire(60_000)
            },
        );
        assert_eq!(plan.push.is_some(), pushed, "{presence:?}");
        assert!(
            plan.post.is_some(),
            "the in-chat warning is posted either way"
        );
    }
    let always = two_steps();
    let (_, pending) = first_timer(&always, 0);
    let (_, pending) = next_timer(&fire_at(&always, &pending, fire(120_000)));
    let plan = fire_at(
        &always,
        &pending,
        Fire {
            presence: Presence::Visible,
            ..fire(240_000)
        },
    );
    assert!(
        plan.push.is_some(),
        "without only_when_away every user gets the push"
    );
}

#[test]
fn end_user_cancels_system_and_echoes_do_nothing() {
    let s = two_steps();
    let none = SessionState::default();
    assert_eq!(
        on_message(Some(&s), msg(Sender::EndUser, 0), none).timer,
        Some(TimerOp::Cancel)
    );
    assert_eq!(
        on_message(None, msg(Sender::EndUser, 0), none).timer,
        Some(TimerOp::Cancel)
    );
    assert_eq!(
        on_message(Some(&s), msg(Sender::System, 0), none).timer,
        None
    );
    let echo = Message {
        own_echo: true,
        ..msg(Sender::Agent, 0)
    };
    assert_eq!(on_message(Some(&s), echo, none).timer, None);
    assert_eq!(on_message(None, msg(Sender::Agent, 0), none).timer, None);
}

#[test]
fn started_by_picks_the_senders_that_start_cycles() {
    let agents_only = settings(r#"{"close": {"after": "1m"}, "started_by": ["agent"]}"#);
    let none = SessionState::default();
    assert!(
        on_message(Some(&agents_only), msg(Sender::Agent, 0), none)
            .timer
            .is_some()
    );
    let bot = on_message(Some(&agents_only), msg(Sender::Bot, 0), none);
    assert_eq!(
        (bot.timer, bot.note),
        (None, Some("bots do not start cycles here"))
    );
    let bots_only = settings(r#"{"close": {"after": "1m"}, "started_by": ["bot"]}"#);
    assert!(
        on_message(Some(&bots_only), msg(Sender::Bot, 0), none)
            .timer
            .is_some()
    );
    assert_eq!(
        on_message(Some(&bots_only), msg(Sender::Agent, 0), none).timer,
        None
    );
}

#[test]
fn holds_and_queues_stop_the_cycle_until_an_agent_speaks() {
    let s = two_steps();
    let none = SessionState::default();
    for change in [Change::Queued, Change::Transferred, Change::Hold(None)] {
        let plan = on_change(change, 5_000, none);
        assert_eq!(plan.timer, Some(TimerOp::Cancel), "{change:?}");
        let waiting = plan.state.expect("waiting for an agent");
        assert!(waiting.awaiting_agent);
        // A bot does not restart the cycle; an agent does, and ends the wait.
        assert_eq!(
            on_message(Some(&s), msg(Sender::Bot, 6_000), waiting).timer,
            None
        );
        let agent = on_message(Some(&s), msg(Sender::Agent, 7_000), waiting);
        assert!(
            matches!(agent.timer, Some(TimerOp::Set { due: 127_000, .. })),
            "{agent:?}"
        );
        assert_eq!(agent.state, Some(SessionState::default()));
    }
    // A hold with an end restarts the cycle then.
    let hold = on_change(Change::Hold(Some(600_000)), 5_000, none);
    let (due, pending) = next_timer(&hold);
    assert_eq!(
        (due, &pending),
        (600_000, &Pending::Resume { agent_name: None })
    );
    let waiting = hold.state.expect("waiting");
    let resumed = fire_at(
        &s,
        &pending,
        Fire {
            state: waiting,
            ..fire(600_000)
        },
    );
    assert_eq!(next_timer(&resumed).0, 720_000);
    assert_eq!(resumed.state, Some(SessionState::default()));
    // A hold that already ended is just a wait for the agent.
    assert_eq!(
        on_change(Change::Hold(Some(1_000)), 5_000, none).timer,
        Some(TimerOp::Cancel)
    );
    assert_eq!(
        on_change(Change::Closed, 0, none).timer,
        Some(TimerOp::Cancel)
    );
}

#[test]
fn max_cycles_limits_the_warned_cycles_of_a_session() {
    let s = settings(
        r#"{"warnings": [{"after": "1m", "message": "w"}], "close": {"after": "2m"}, "max_cycles": 2}"#,
    );
    let mut state = SessionState::default();
    for cycle in 1..=2u16 {
        let Some(TimerOp::Set { pending, .. }) =
            on_message(Some(&s), msg(Sender::Agent, 0), state).timer
        else {
            panic!("cycle {cycle} should start");
        };
        let warned = fire_at(
            &s,
            &pending,
            Fire {
                state,
                ..fire(60_000)
            },
        );
        state = warned.state.expect("counted");
        assert_eq!(state.cycles, cycle);
    }
    let third = on_message(Some(&s), msg(Sender::Agent, 0), state);
    assert_eq!(third.timer, None);
    assert_eq!(
        third.note,
        Some("max_cycles reached: no further cycle in this session")
    );
}

#[test]
fn an_opted_out_session_is_left_alone() {
    let s = settings(r#"{"close": {"after": "1m"}, "attributes": {"opt_out": "no_autoclose"}}"#);
    let (_, pending) = first_timer(&s, 0);
    for (value, closes) in [
        ("true", false),
        ("YES", false),
        ("1", false),
        ("false", true),
        ("", true),
    ] {
        let attributes = vec![("no_autoclose".to_owned(), value.to_owned())];
        let plan = fire_at(
            &s,
            &pending,
            Fire {
                attributes: &attributes,
                ..fire(60_000)
            },
        );
        assert_eq!(plan.close, closes, "{value:?}");
    }
    assert!(
        fire_at(&s, &pending, fire(60_000)).close,
        "no attribute: not opted out"
    );
}

fn ms(text: &str) -> u64 {
    let ts: jiff::Timestamp = text.parse().unwrap_or_else(|e| panic!("{e}"));
    ts.as_millisecond() as u64
}

#[test]
fn business_hours_pause_the_clock() {
    let s = settings(
        r#"{"warnings": [{"after": "2m", "message": "Closes at {{closes_at}}"}], "close": {"after": "6m"},
            "time_zone": "Europe/Lisbon",
            "business_hours": {"weekly": {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"],
                                           "thu": ["09:00-18:00"], "fri": ["09:00-18:00"]}}}"#,
    );
    // An agent message on Wednesday at 17:57: the warning at 17:59, the close at
    // Thursday 09:03 (one minute on Wednesday, three on Thursday).
    let (due, pending) = first_timer(&s, ms("2026-11-25T17:57:00Z"));
    assert_eq!(due, ms("2026-11-25T17:59:00Z"));
    let warning = fire_at(&s, &pending, fire(due));
    assert_eq!(
        warning.post,
        Some((Notice::Warning, "Closes at 2026-11-26 09:03".to_owned()))
    );
    assert_eq!(next_timer(&warning).0, ms("2026-11-26T09:03:00Z"));
    // Started on Saturday: counted from Monday's opening.
    assert_eq!(
        first_timer(&s, ms("2026-11-28T10:00:00Z")).0,
        ms("2026-11-30T09:02:00Z")
    );
}

#[test]
fn business_hours_can_suppress_warnings_instead() {
    let s = settings(
        r#"{"warnings": [{"after": "2m", "message": "w", "push": true}], "close": {"after": "6m", "message": "bye"},
            "push": {"webhook": "push"},
            "business_hours": {"weekly": {"wed": ["09:00-18:00"]}, "outside": "suppress_warnings"}}"#,
    );
    let (due, pending) = first_timer(&s, ms("2026-11-25T20:00:00Z"));
    assert_eq!(due, ms("2026-11-25T20:02:00Z"), "the clock runs");
    let quiet = fire_at(&s, &pending, fire(due));
    assert_eq!((quiet.post.is_none(), quiet.push.is_none()), (true, true));
    assert_eq!(
        quiet.note,
        Some("outside business hours: warning suppressed")
    );
    let (due, pending) = next_timer(&quiet);
    let close = fire_at(&s, &pending, fire(due));
    assert!(close.close, "the close still happens");
    let (due, pending) = first_timer(&s, ms("2026-11-25T10:00:00Z"));
    assert!(
        fire_at(&s, &pending, fire(due)).post.is_some(),
        "in hours the warning goes out"
    );
}

#[test]
fn a_running_cycle_keeps_its_schedule_after_a_config_change() {
    let old = two_steps();
    let (_, pending) = first_timer(&old, 0);
    let new = settings(
        r#"{"warnings": [{"after": "10m", "message": "new"}], "close": {"after": "20m"}}"#,
    );
    let reminder = on_timer(Some(&new), &pending.encode(), fire(120_000));
    assert_eq!(
        reminder.post,
        Some((Notice::Warning, "new".to_owned())),
        "texts come from the new config"
    );
    let (due, pending) = next_timer(&reminder);
    assert_eq!(due, 240_000, "the deadline stays as announced");
    let gone = on_timer(Some(&new), &pending.encode(), fire(240_000));
    assert_eq!(gone.post, None, "the new config has no second warning");
    assert_eq!(next_timer(&gone).0, 300_000);
    assert!(gone.note.is_some());
}

#[test]
fn foreign_payloads_are_ignored_and_payloads_round_trip() {
    let s = two_steps();
    for payload in [
        &[][..],
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[2, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ] {
        let plan = on_timer(Some(&s), payload, fire(0));
        assert!(plan.note.is_some());
        assert!(!plan.close && plan.post.is_none() && plan.timer.is_none());
    }
    let long_name = "é".repeat(300);
    for pending in [
        Pending::Step(Cycle {
            started_at: u64::MAX - 3,
            next: 2,
            gaps: Gaps::from_slice(&[1, 2, 3]).expect("gaps"),
            agent_name: Some("Ana".into()),
        }),
        Pending::Step(Cycle {
            started_at: 0,
            next: 0,
            gaps: Gaps::from_slice(&[60_000]).expect("gaps"),
            agent_name: None,
        }),
        Pending::Resume { agent_name: None },
    ] {
        assert_eq!(Pending::decode(&pending.encode()), Some(pending));
    }
    let truncated = Pending::Resume {
        agent_name: Some(long_name),
    }
    .encode();
    assert!(truncated.len() <= HEADER_LEN + MAX_AGENT_NAME_BYTES);
    assert!(
        Pending::decode(&truncated).is_some(),
        "cut at a character boundary"
    );
    for state in [
        SessionState::default(),
        SessionState {
            awaiting_agent: true,
            cycles: 300,
        },
    ] {
        assert_eq!(SessionState::decode(&state.encode()), state);
    }
    assert!(SessionState::default().encode().is_empty());
    assert_eq!(SessionState::decode(&[9, 9]), SessionState::default());
}
