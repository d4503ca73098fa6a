//! Scenarios: JSON Lines of gateway events, each with `at_ms`, virtual milliseconds
//! since the start. The whole file is checked before anything runs, so a bad line is
//! reported with its number and no partial transcript is produced.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::Value;

use autoclose_core::event::{ChannelNeed, GatewayEvent};

mod fast;
pub mod split;
use autoclose_webhook::retry::AttemptResult;

/// One checked scenario line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// Virtual time of the event.
    pub at_ms: u64,
    /// What happens.
    pub item: Item,
}

/// What a scenario line does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A gateway event.
    Event(GatewayEvent),
    /// Scripts how a webhook's receiver answers its next attempts (replay sends nothing).
    WebhookResponse {
        /// The webhook's name.
        webhook: String,
        /// The answer.
        answer: AttemptResult,
        /// For how many attempts.
        repeat: u32,
    },
}

/// A `webhook_response` line without `at_ms` and `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhookResponse {
    webhook: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    failure: Option<String>,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default = "one")]
    repeat: u32,
}

fn one() -> u32 {
    1
}

/// The latest `at_ms` a scenario may use (the last millisecond of year 9999).
pub const MAX_AT_MS: u64 = autoclose_core::MAX_TIME_MS;

/// A scenario line that could not be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScenarioError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses and checks a whole scenario held in memory. Blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<ScenarioLine>, ScenarioError> {
    let mut checker = Checker::new(true);
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if let Some(line) = checker.line(index + 1, raw)? {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Checks a whole scenario read from `reader` without keeping it: returns how many
/// lines it has, blank ones not counted. With [`read`], a caller can replay a file of any
/// length in memory that grows with its sessions, not its lines: check first, then read
/// again.
pub fn check(reader: impl BufRead) -> Result<usize, ScenarioError> {
    let mut count = 0;
    for line in read(reader) {
        line?;
        count += 1;
    }
    Ok(count)
}

/// The checked lines of `reader`, one at a time, blank lines skipped; stops at the
/// first error (a bad line, or the reader failing).
pub fn read(reader: impl BufRead) -> impl Iterator<Item = Result<ScenarioLine, ScenarioError>> {
    read_with(reader, Checker::new(true))
}

/// The lines of a scenario that [`check`] accepted, read a second time: each line is
/// parsed and its time order checked again, but the sessions whose channel is known
/// are not tracked again, which costs a look-up among all sessions on every line. A
/// message whose channel is unknown (possible only if the file changed between the
/// passes) is then refused by the core instead, with its line number.
pub fn read_again(
    reader: impl BufRead,
) -> impl Iterator<Item = Result<ScenarioLine, ScenarioError>> {
    read_with(reader, Checker::new(false))
}

fn read_with(
    mut reader: impl BufRead,
    mut checker: Checker,
) -> impl Iterator<Item = Result<ScenarioLine, ScenarioError>> {
    // One buffer for every line: reading allocates nothing per line.
    let mut buffer = String::new();
    let mut number = 0;
    let mut finished = false;
    std::iter::from_fn(move || {
        while !finished {
            buffer.clear();
            number += 1;
            let result = match reader.read_line(&mut buffer) {
                Ok(0) => {
                    finished = true;
                    return None;
                }
                // As `str::lines`: without the `\n` or `\r\n` that ends the line.
                Ok(_) => {
                    let raw = match buffer.strip_suffix('\n') {
                        Some(line) => line.strip_suffix('\r').unwrap_or(line),
                        None => &buffer,
                    };
                    checker.line(number, raw)
                }
                Err(e) => Err(ScenarioError {
                    line: number,
                    message: format!("cannot read: {e}"),
                }),
            };
            match result {
                Ok(None) => continue,
                Ok(Some(line)) => return Some(Ok(line)),
                Err(e) => {
                    finished = true;
                    return Some(Err(e));
                }
            }
        }
        None
    })
}

/// The checks across lines: time order, and a known channel for every message.
struct Checker {
    /// Time and number of the last line.
    previous: Option<(u64, usize)>,
    /// Whether to check that every message's session has a known channel.
    track_channels: bool,
    /// Sessions whose channel is known, so a message without one can be refused here:
    /// per tenant, so that looking one up allocates nothing.
    with_channel: foldhash::HashMap<String, foldhash::HashSet<String>>,
    /// For a part of a file checked on its own ([`split`]): the messages whose channel
    /// this part does not give, kept to be looked up among the parts before it
    /// instead of being refused. `None`: the whole file, refused at once.
    unresolved: Option<Vec<Unresolved>>,
}

/// A message whose session's channel is not known in the part of the file it is in.
#[derive(Debug)]
struct Unresolved {
    line: usize,
    tenant: String,
    session: String,
}

impl Checker {
    fn new(track_channels: bool) -> Checker {
        Checker {
            previous: None,
            track_channels,
            with_channel: Default::default(),
            unresolved: None,
        }
    }

    /// Parses and checks line number `line`; `None` for a blank line.
    fn line(&mut self, line: usize, raw: &str) -> Result<Option<ScenarioLine>, ScenarioError> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        let error = |message: String| ScenarioError { line, message };
        let (at_ms, item) = parse_line(raw).map_err(error)?;
        if let Some((at, on)) = self.previous
            && at_ms < at
        {
            return Err(error(out_of_order(at_ms, at, on)));
        }
        self.previous = Some((at_ms, line));
        if let Item::Event(event) = &item
            && self.track_channels
        {
            let known = self
                .with_channel
                .get(event.tenant())
                .is_some_and(|sessions| sessions.contains(event.session()));
            match event.channel_need() {
                ChannelNeed::Gives if !known => {
                    self.with_channel
                        .entry(event.tenant().to_owned())
                        .or_default()
                        .insert(event.session().to_owned());
                }
                ChannelNeed::Needs if !known => match &mut self.unresolved {
                    None => return Err(error(unknown_channel(event))),
                    Some(unresolved) => {
                        // The first such message of a session is the one that would be
                        // refused; the session counts as known here from then on.
                        unresolved.push(Unresolved {
                            line,
                            tenant: event.tenant().to_owned(),
                            session: event.session().to_owned(),
                        });
                        self.with_channel
                            .entry(event.tenant().to_owned())
                            .or_default()
                            .insert(event.session().to_owned());
                    }
                },
                _ => {}
            }
        }
        Ok(Some(ScenarioLine { line, at_ms, item }))
    }
}

/// Why a line at `at_ms` after one at `at` (line `on`) is refused.
fn out_of_order(at_ms: u64, at: u64, on: usize) -> String {
    format!("at_ms {at_ms} is earlier than {at} on line {on}: lines must be in time order")
}

/// Why a message whose session has no known channel is refused.
fn unknown_channel(event: &GatewayEvent) -> String {
    unknown_channel_of(event.tenant(), event.session())
}

fn unknown_channel_of(tenant: &str, session: &str) -> String {
    format!(
        "message for session {session:?} of tenant {tenant:?}, whose channel is unknown: add a session_opened line before it or give the message a \"channel\""
    )
}

/// Parses one line into its time and item.
pub fn parse_line(raw: &str) -> Result<(u64, Item), String> {
    if let Some((at_ms, event)) = fast::event_line(raw)
        && at_ms <= MAX_AT_MS
        && event.check_sizes().is_ok()
    {
        return Ok((at_ms, Item::Event(event)));
    }
    careful_line(raw)
}

/// [`parse_line`] through a `serde_json::Value`, so that every error names its
/// field; the fast path falls back to it. Public so that the fuzzer can check that
/// both paths give every line the same answer: a line the fast path took differently
/// would replay silently wrong.
pub fn careful_line(raw: &str) -> Result<(u64, Item), String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("expected a JSON object".to_owned());
    };
    let at_ms = match object.remove("at_ms") {
        None => return Err("missing at_ms".to_owned()),
        Some(value) => value
            .as_u64()
            .filter(|at| *at <= MAX_AT_MS)
            .ok_or_else(|| {
                format!("at_ms: {value} is not a whole number of milliseconds up to {MAX_AT_MS} (year 9999)")
            })?,
    };
    if object.get("type").and_then(Value::as_str) == Some("webhook_response") {
        object.remove("type");
        return webhook_response(object).map(|item| (at_ms, item));
    }
    let event = GatewayEvent::from_json(object)?;
    Ok((at_ms, Item::Event(event)))
}

fn webhook_response(object: serde_json::Map<String, Value>) -> Result<Item, String> {
    let raw: RawWebhookResponse = autoclose_config::fields(Value::Object(object))?;
    let answer =
        match (raw.status, raw.failure) {
            (Some(status), None) if (100..=599).contains(&status) => AttemptResult::Answered {
                status,
                retry_after_ms: raw.retry_after.map(|s| s.saturating_mul(1000)),
                body: Vec::new(),
            },
            (Some(status), None) => return Err(format!("status: {status} is not an HTTP status")),
            (None, Some(reason)) if raw.retry_after.is_none() => AttemptResult::Failed(reason),
            (None, Some(_)) => return Err("retry_after goes with a status, not a failure".into()),
            _ => return Err(
                "give either status (an HTTP status) or failure (a reason such as \"timed out\")"
                    .into(),
            ),
        };
    if !(1..=1000).contains(&raw.repeat) {
        return Err(format!(
            "repeat: {} is out of range (1 to 1000)",
            raw.repeat
        ));
    }
    Ok(Item::WebhookResponse {
        webhook: raw.webhook,
        answer,
        repeat: raw.repeat,
    })
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
        assert!(
            e.starts_with("line 1: at_ms: -5 is not a whole number of milliseconds"),
            "{e}"
        );
        let e = err(
            r#"{"at_ms":253402300800000,"type":"session_closed","tenant":"acme","session":"s1"}"#,
        );
        assert!(e.contains("(year 9999)"), "{e}");
        let e =
            err(r#"{"at_ms":5,"type":"session_closed","tenant":"acme","session":"s1","extra":1}"#);
        assert!(e.starts_with("line 1: extra: unknown field `extra`"), "{e}");
    }

    #[test]
    fn reading_line_by_line_gives_what_parsing_the_whole_text_gives() {
        let text = format!(
            "{OPEN}\r\n\n{}\r\n   \n{}",
            r#"{"at_ms":1000,"type":"message","tenant":"acme","session":"s1","sender":"agent"}"#,
            r#"{"at_ms":9000,"type":"session_closed","tenant":"acme","session":"s1"}"#
        );
        let whole = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let streamed: Result<Vec<_>, _> = read(text.as_bytes()).collect();
        assert_eq!(streamed, Ok(whole.clone()));
        let again: Result<Vec<_>, _> = read_again(text.as_bytes()).collect();
        assert_eq!(again, Ok(whole.clone()));
        assert_eq!(whole.iter().map(|l| l.line).collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(check(text.as_bytes()), Ok(3));

        // Read again, a message of a session without a channel is left to the core
        // (the first pass refused it); time order is still checked.
        let no_channel =
            r#"{"at_ms":1000,"type":"message","tenant":"acme","session":"s9","sender":"agent"}"#;
        assert_eq!(check(no_channel.as_bytes()).map_err(|e| e.line), Err(1));
        assert!(matches!(
            read_again(no_channel.as_bytes())
                .collect::<Vec<_>>()
                .as_slice(),
            [Ok(ScenarioLine { line: 1, .. })]
        ));
        let backwards = format!("{no_channel}\n{OPEN}");
        assert_eq!(
            read_again(backwards.as_bytes())
                .find_map(Result::err)
                .map(|e| e.line),
            Some(2)
        );

        // The first bad line ends the stream, with its number, as `parse` reports it.
        let bad = format!(
            "{text}\n{}\n{OPEN}",
            r#"{"at_ms":1,"type":"queued","tenant":"acme","session":"s1"}"#
        );
        let mut lines = read(bad.as_bytes());
        assert_eq!(lines.by_ref().filter(Result::is_ok).count(), 3);
        let error = parse(&bad).map(|_| ()).unwrap_err();
        assert_eq!(error.line, 6);
        assert_eq!(check(bad.as_bytes()), Err(error.clone()));
        let mut lines = read(bad.as_bytes()).skip(3);
        assert_eq!(lines.next(), Some(Err(error)));
        assert_eq!(lines.next(), None, "nothing after the first error");

        // Bytes that are not UTF-8 are refused at their line.
        let mut bytes = format!("{OPEN}\n").into_bytes();
        bytes.extend_from_slice(b"{\"at_ms\":\xff}\n");
        let error = check(bytes.as_slice()).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.starts_with("cannot read: "), "{error}");
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
    fn webhook_responses_are_scripted_answers() {
        let lines = parse(concat!(
            r#"{"at_ms":0,"type":"webhook_response","webhook":"p","status":503,"retry_after":60,"repeat":2}"#,
            "\n",
            r#"{"at_ms":0,"type":"webhook_response","webhook":"p","failure":"connection refused"}"#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            lines[0].item,
            Item::WebhookResponse {
                webhook: "p".into(),
                answer: AttemptResult::Answered {
                    status: 503,
                    retry_after_ms: Some(60_000),
                    body: Vec::new()
                },
                repeat: 2
            }
        );
        assert!(
            matches!(&lines[1].item, Item::WebhookResponse { answer: AttemptResult::Failed(r), .. } if r == "connection refused")
        );
        let e = err(r#"{"at_ms":0,"type":"webhook_response","webhook":"p"}"#);
        assert!(e.starts_with("line 1: give either status"), "{e}");
        let e = err(r#"{"at_ms":0,"type":"webhook_response","webhook":"p","status":99}"#);
        assert_eq!(e, "line 1: status: 99 is not an HTTP status");
        let e =
            err(r#"{"at_ms":0,"type":"webhook_response","webhook":"p","status":500,"colour":1}"#);
        assert!(e.starts_with("line 1: colour: unknown field"), "{e}");
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
