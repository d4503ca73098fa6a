//! A tenant's configuration explained for people: what happens when, per channel and
//! group, as sentences and a small text timeline, and where each effective setting
//! came from. `autoclose check-config` prints it.

use std::fmt::Write;

use crate::config::{self, ChannelScope, ConfigError, Resolved, Settings};
use crate::hours::Outside;

/// Width of the text timeline, in characters.
const TIMELINE_WIDTH: usize = 48;

/// Explains a tenant's configuration layered over `defaults`: one block per channel
/// and group. Errors are the same as when the component configures the tenant.
pub fn explain(text: &str, defaults: &str, webhooks: &[String]) -> Result<String, ConfigError> {
    let resolution = config::resolve(text, defaults, webhooks)?;
    let mut out = String::new();
    for resolved in &resolution.combinations {
        explain_one(&mut out, resolved);
    }
    if let Some(attribute) = &resolution.group_attribute {
        let _ = writeln!(
            out,
            "groups are picked by the session attribute {attribute:?}; an unknown value gets the channel's settings"
        );
    }
    Ok(out)
}

fn scope_name(resolved: &Resolved) -> String {
    let channel = match &resolved.channel {
        ChannelScope::Named(name) => format!("channel {name}"),
        ChannelScope::Other => "any other channel".to_owned(),
    };
    match &resolved.group {
        Some(group) => format!("{channel}, group {group}"),
        None => channel,
    }
}

fn explain_one(out: &mut String, resolved: &Resolved) {
    let Some(settings) = &resolved.settings else {
        let _ = writeln!(out, "{}: auto-close is off", scope_name(resolved));
        return;
    };
    let _ = writeln!(out, "{}:", scope_name(resolved));
    let starters = match (settings.started_by.agent, settings.started_by.bot) {
        (true, true) => "an agent or a bot",
        (true, false) => "an agent",
        _ => "a bot",
    };
    let _ = writeln!(
        out,
        "  when {starters} has spoken and the end user stays silent:"
    );
    for (i, warning) in settings.warnings.iter().enumerate() {
        let _ = writeln!(
            out,
            "    after {:<8} warning {}: {}{}",
            warning.after.to_string(),
            i + 1,
            delivery(settings, warning.post, warning.push),
            if warning.agent_notice.is_some() {
                ", with a note to the agents"
            } else {
                ""
            }
        );
    }
    let close = match &settings.close.message {
        Some(_) => format!(
            "{}, then the chat closes",
            delivery(settings, true, settings.close.push)
        ),
        None if settings.close.push => {
            format!("{}, then the chat closes", delivery(settings, false, true))
        }
        None => "the chat closes".to_owned(),
    };
    let _ = writeln!(
        out,
        "    after {:<8} close: {close}",
        settings.close.after.to_string()
    );
    let _ = writeln!(out, "{}", timeline(settings));
    if let Some(hours) = &settings.hours {
        let outside = match hours.outside {
            Outside::Pause => "the idle clock stops",
            Outside::SuppressWarnings => "the clock runs but warnings stay quiet",
        };
        let _ = writeln!(
            out,
            "  business hours in {}; outside them {outside}",
            settings.zone.name()
        );
    }
    if let Some(max) = settings.max_cycles {
        let _ = writeln!(out, "  at most {max} warned cycle(s) per session");
    }
    if let Some(opt_out) = &settings.attributes.opt_out {
        let _ = writeln!(
            out,
            "  a session whose attribute {opt_out:?} is true, yes or 1 is left alone"
        );
    }
    let _ = writeln!(out, "  settings (where each was set):");
    for (path, origin) in &resolved.merged.origins {
        let value = value_at(&resolved.merged.value, path);
        let _ = writeln!(
            out,
            "    {path} = {value}  [{}: {}]",
            origin.label, origin.path
        );
    }
    let _ = writeln!(
        out,
        "    (settings not listed have their built-in defaults)"
    );
}

fn delivery(settings: &Settings, post: bool, push: bool) -> String {
    let push = push.then(|| match &settings.push {
        Some(p) if p.only_when_away => {
            format!("pushed through {} when the user is away", p.webhook)
        }
        Some(p) => format!("pushed through {}", p.webhook),
        None => "pushed".to_owned(),
    });
    match (post, push) {
        (true, Some(push)) => format!("posted in the chat and {push}"),
        (true, None) => "posted in the chat".to_owned(),
        (false, Some(push)) => push,
        (false, None) => "nothing".to_owned(),
    }
}

/// A one-line timeline: `|` the start, `W` each warning, `X` the close, to scale.
fn timeline(settings: &Settings) -> String {
    let schedule = settings.schedule();
    let end = *schedule.last().unwrap_or(&1);
    let column = |ms: u64| ((ms as f64 / end as f64) * TIMELINE_WIDTH as f64).round() as usize;
    let mut line: Vec<char> = vec!['-'; TIMELINE_WIDTH + 1];
    line[0] = '|';
    let mut labels: Vec<char> = vec![' '; TIMELINE_WIDTH + 12];
    let mut put_label = |at: usize, text: &str| {
        for (i, c) in text.chars().enumerate() {
            if let Some(slot) = labels.get_mut(at + i) {
                *slot = c;
            }
        }
    };
    put_label(0, "0");
    for (i, at) in schedule.iter().enumerate() {
        let col = column(*at).min(TIMELINE_WIDTH);
        line[col] = if i + 1 == schedule.len() { 'X' } else { 'W' };
        let label = autoclose_duration::Duration::from_ms(*at)
            .map(|d| d.to_string())
            .unwrap_or_default();
        put_label(col, &label);
    }
    let line: String = line.into_iter().collect();
    let labels: String = labels.into_iter().collect();
    format!("    {line}\n    {}", labels.trim_end())
}

/// The value at a dotted path of the merged settings, as compact JSON, long texts cut.
fn value_at(value: &serde_json::Map<String, serde_json::Value>, path: &str) -> String {
    let mut current: Option<&serde_json::Value> = None;
    let mut object = Some(value);
    for key in path.split('.') {
        current = object.and_then(|o| o.get(key));
        object = current.and_then(|v| v.as_object());
    }
    let text = current.map(|v| v.to_string()).unwrap_or_default();
    if text.chars().count() > 70 {
        let cut: String = text.chars().take(67).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_steps_origins_and_a_scaled_timeline() {
        let defaults = r#"{"auto_close": {"close": {"after": "5m", "message": "Bye"}, "push": {"webhook": "p", "only_when_away": true}}}"#;
        let tenant = r#"{"channels": {"web_chat": {"auto_close": {"warnings": [
            {"after": "2m", "message": "Still there?"},
            {"after": "4m", "message": "Closing soon", "push": true}]}},
            "sms": {"auto_close": {"enabled": false}}}}"#;
        let text = explain(tenant, defaults, &["p".to_owned()]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains("channel web_chat:\n  when an agent or a bot has spoken"),
            "{text}"
        );
        assert!(
            text.contains("after 2m       warning 1: posted in the chat\n"),
            "{text}"
        );
        assert!(
            text.contains("after 4m       warning 2: posted in the chat and pushed through p when the user is away"),
            "{text}"
        );
        assert!(
            text.contains("after 5m       close: posted in the chat, then the chat closes"),
            "{text}"
        );
        // 2m and 4m of 5m on a 48-column line: columns 19 and 38 (rounded), X at 48.
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with('|'))
            .unwrap_or_default();
        assert_eq!(line.trim_start().find('W'), Some(19), "{line}");
        assert_eq!(line.trim_start().rfind('W'), Some(38), "{line}");
        assert_eq!(line.trim_start().find('X'), Some(48), "{line}");
        assert!(
            text.contains("close.after = \"5m\"  [defaults: defaults.auto_close.close.after]"),
            "{text}"
        );
        assert!(text.contains("warnings = [{\"after\":\"2m\""), "{text}");
        assert!(text.contains("channel sms: auto-close is off"), "{text}");
        assert!(text.contains("any other channel:"), "{text}");
    }

    #[test]
    fn bad_configs_are_the_same_errors_as_at_configure_time() {
        let e = explain(r#"{"auto_close": {"close": {"after": "soon"}}}"#, "{}", &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("auto_close.close.after: \"soon\""),
            "{e}"
        );
    }
}
