//! Scenarios: JSON Lines of gateway events, each with `at_ms`, virtual milliseconds
//! since the start. The whole file is checked before anything runs, so a bad line is
//! reported with its number and no partial transcript is produced.

use std::collections::HashSet;

use serde_json::Value;

use crate::event::GatewayEvent;

/// One checked scenario line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// Virtual time of the event.
    pub at_ms: u64,
    /// The event.
    pub event: GatewayEvent,
}

/// A scenario line that could not be accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScenarioError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses and checks a whole scenario. Blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<ScenarioLine>, ScenarioError> {
    let mut lines = Vec::new();
    let mut previous: Option<(u64, usize)> = None;
    // Sessions whose channel is known, so a message without one can be refused here.
    let mut with_channel: HashSet<(String, String)> = HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let error = |message: String| ScenarioError { line, message };
        let parsed = parse_line(raw).map_err(error)?;
        if let Some((at, on)) = previous
            && parsed.0 < at
        {
            return Err(error(format!(
                "at_ms {} is earlier than {at} on line {on}: lines must be in time order",
                parsed.0
            )));
        }
        previous = Some((parsed.0, line));
        let key = (parsed.1.tenant().to_owned(), parsed.1.session().to_owned());
        match &parsed.1 {
            GatewayEvent::SessionOpened(_) => {
                with_channel.insert(key);
            }
            GatewayEvent::Message(m) if m.channel.is_some() => {
                with_channel.insert(key);
            }
            GatewayEvent::Message(m) if !with_channel.contains(&key) => {
                return Err(error(format!(
                    "message for session {:?} of tenant {:?}, whose channel is unknown: add a session_opened line before it or give the message a \"channel\"",
                    m.session, m.tenant
                )));
            }
            _ => {}
        }
        lines.push(ScenarioLine {
            line,
            at_ms: parsed.0,
            event: parsed.1,
        });
    }
    Ok(lines)
}

/// Parses one line into its time and event.
pub fn parse_line(raw: &str) -> Result<(u64, GatewayEvent), String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("expected a JSON object".to_owned());
    };
    let at_ms = match object.remove("at_ms") {
        None => return Err("missing at_ms".to_owned()),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| format!("at_ms: {value} is not a whole number of milliseconds"))?,
    };
    let event = GatewayEvent::from_json(object)?;
    Ok((at_ms, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).map(|_| ()).unwrap_err().to_string()
    }

    const OPEN: &str = r#"{"at_ms":0,"type":"session_opened","tenant":"acme","session":"s1","channel":"web_chat","attributes":{"locale":"en"}}"#;

    #[test]
    fn parses_the_documented_lines() {
        let text = format!(
            "{OPEN}\n\n{}\n{}\n{}\n",
            r#"{"at_ms":1000,"type":"message","tenant":"acme","session":"s1","sender":"agent","id":"m1","text":"Anything else?"}"#,
            r#"{"at_ms":5000,"type":"presence","tenant":"acme","session":"s1","state":"hidden"}"#,
            r#"{"at_ms":9000,"type":"session_closed","tenant":"acme","session":"s1"}"#
        );
        let lines = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].line, 3);
        assert_eq!(lines[3].at_ms, 9000);
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        assert_eq!(
            err(&format!("{OPEN}\n{{nope")).split(':').next(),
            Some("line 2")
        );
        let e = err(&format!(
            "{OPEN}\n{}",
            r#"{"at_ms":1,"type":"message","tenant":"acme","session":"s1","sender":"customer"}"#
        ));
        assert!(
            e.starts_with("line 2: sender: unknown variant `customer`"),
            "{e}"
        );
        let e = err(r#"{"at_ms":1,"type":"typing","tenant":"acme","session":"s1"}"#);
        assert!(
            e.starts_with("line 1: type: unknown event type \"typing\""),
            "{e}"
        );
        let e = err(r#"{"type":"session_closed","tenant":"acme","session":"s1"}"#);
        assert_eq!(e, "line 1: missing at_ms");
        let e = err(r#"{"at_ms":-5,"type":"session_closed","tenant":"acme","session":"s1"}"#);
        assert_eq!(e, "line 1: at_ms: -5 is not a whole number of milliseconds");
        let e =
            err(r#"{"at_ms":5,"type":"session_closed","tenant":"acme","session":"s1","extra":1}"#);
        assert!(e.starts_with("line 1: extra: unknown field `extra`"), "{e}");
    }

    #[test]
    fn time_must_not_go_backwards() {
        let e = err(&format!(
            "{}\n{}",
            r#"{"at_ms":2000,"type":"session_closed","tenant":"a","session":"s"}"#,
            r#"{"at_ms":1000,"type":"session_closed","tenant":"a","session":"t"}"#
        ));
        assert_eq!(
            e,
            "line 2: at_ms 1000 is earlier than 2000 on line 1: lines must be in time order"
        );
    }

    #[test]
    fn messages_need_a_channel() {
        let e =
            err(r#"{"at_ms":1,"type":"message","tenant":"acme","session":"s9","sender":"agent"}"#);
        assert!(e.starts_with("line 1: message for session \"s9\""), "{e}");
        let ok = parse(
            r#"{"at_ms":1,"type":"message","tenant":"acme","session":"s9","sender":"agent","channel":"http_api"}"#,
        );
        assert!(ok.is_ok());
    }
}
