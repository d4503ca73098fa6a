//! Message templates: text with `{{placeholder}}` slots filled at fire time.
//!
//! Templates are parsed when a tenant is configured, so an unknown placeholder or an
//! unclosed `{{` is a config error, never a broken message in front of a customer. A
//! slot may carry a fallback after a `|` (`{{end_user_name|there}}`), used when the
//! value is missing or empty, so a greeting never reads "Hi ,".

/// A value a template can refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// Whole minutes until the close, rounded up (`{{minutes_left}}`).
    MinutesLeft,
    /// Whole seconds until the close, rounded up (`{{seconds_left}}`).
    SecondsLeft,
    /// When the session closes, in the tenant's time zone (`{{closes_at}}`): `14:05`,
    /// or `2026-11-26 09:02` when that is another day than the warning's.
    ClosesAt,
    /// The display name of the agent whose message started the cycle (`{{agent_name}}`).
    AgentName,
    /// The end user's name, from the session attribute configured as
    /// `attributes.end_user_name` (`{{end_user_name}}`).
    EndUserName,
    /// The tenant's name (`{{tenant}}`).
    Tenant,
    /// Any session attribute the gateway passed (`{{attr.NAME}}`).
    Attribute(String),
}

/// The placeholders without an argument, by name: for parsing and error messages.
const NAMED: [(&str, Placeholder); 6] = [
    ("minutes_left", Placeholder::MinutesLeft),
    ("seconds_left", Placeholder::SecondsLeft),
    ("closes_at", Placeholder::ClosesAt),
    ("agent_name", Placeholder::AgentName),
    ("end_user_name", Placeholder::EndUserName),
    ("tenant", Placeholder::Tenant),
];

/// Longest attribute name a template may refer to, in bytes (the host's own bound).
const MAX_ATTRIBUTE_NAME_BYTES: usize = 256;

impl Placeholder {
    fn parse(name: &str) -> Result<Self, String> {
        if let Some((_, placeholder)) = NAMED.iter().find(|(n, _)| *n == name) {
            return Ok(placeholder.clone());
        }
        if let Some(attribute) = name.strip_prefix("attr.") {
            let valid = !attribute.is_empty()
                && attribute.len() <= MAX_ATTRIBUTE_NAME_BYTES
                && attribute
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(format!(
                    "{{{{{name}}}}}: an attribute name is 1 to {MAX_ATTRIBUTE_NAME_BYTES} bytes of a-z A-Z 0-9 _ - ."
                ));
            }
            return Ok(Placeholder::Attribute(attribute.to_owned()));
        }
        let known: Vec<String> = NAMED
            .iter()
            .map(|(n, _)| format!("{{{{{n}}}}}"))
            .chain(std::iter::once("{{attr.NAME}}".to_owned()))
            .collect();
        Err(format!(
            "unknown placeholder {{{{{name}}}}} (known: {})",
            known.join(", ")
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Slot {
        placeholder: Placeholder,
        fallback: Option<String>,
    },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// The values placeholders are filled with, gathered by the caller at fire time.
#[derive(Clone, Copy, Debug)]
pub struct Values<'a> {
    /// Milliseconds until the session closes.
    pub ms_left: u64,
    /// The close, formatted in the tenant's time zone.
    pub closes_at: &'a str,
    /// The agent's display name, if the gateway passed one.
    pub agent_name: Option<&'a str>,
    /// The end user's name, if the configured attribute is set.
    pub end_user_name: Option<&'a str>,
    /// The tenant's name.
    pub tenant: &'a str,
    /// The session's attributes, in name order.
    pub attributes: &'a [(String, String)],
}

impl Template {
    /// Parses `text`. The error names the offending placeholder and lists the known ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "unclosed \"{{{{\" at byte {}",
                    text.len() - rest.len() + open
                )
            })?;
            let (name, fallback) = match after[..close].split_once('|') {
                Some((name, fallback)) => (name.trim(), Some(fallback.trim().to_owned())),
                None => (after[..close].trim(), None),
            };
            segments.push(Segment::Slot {
                placeholder: Placeholder::parse(name)?,
                fallback,
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    /// Whether the template refers to `placeholder`, so the caller fetches only what
    /// some template needs (the agent's name costs a field on every message).
    pub fn uses(&self, placeholder: &Placeholder) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Slot { placeholder: p, .. } if p == placeholder))
    }

    /// Fills the placeholders. A missing value renders as the slot's fallback, or as
    /// nothing.
    pub fn render(&self, values: Values<'_>) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot {
                    placeholder,
                    fallback,
                } => {
                    let value = value_of(placeholder, &values);
                    match value.as_deref().filter(|v| !v.is_empty()) {
                        Some(value) => out.push_str(value),
                        None => out.push_str(fallback.as_deref().unwrap_or("")),
                    }
                }
            }
        }
        out
    }
}

fn value_of(placeholder: &Placeholder, values: &Values<'_>) -> Option<String> {
    match placeholder {
        Placeholder::MinutesLeft => Some(values.ms_left.div_ceil(60_000).to_string()),
        Placeholder::SecondsLeft => Some(values.ms_left.div_ceil(1_000).to_string()),
        Placeholder::ClosesAt => Some(values.closes_at.to_owned()),
        Placeholder::AgentName => values.agent_name.map(str::to_owned),
        Placeholder::EndUserName => values.end_user_name.map(str::to_owned),
        Placeholder::Tenant => Some(values.tenant.to_owned()),
        Placeholder::Attribute(name) => values
            .attributes
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| values.attributes[i].1.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(ms_left: u64) -> Values<'static> {
        Values {
            ms_left,
            closes_at: "14:05",
            agent_name: None,
            end_user_name: None,
            tenant: "acme",
            attributes: &[],
        }
    }

    fn render(text: &str, ms_left: u64) -> String {
        Template::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .render(values(ms_left))
    }

    #[test]
    fn fills_minutes_rounded_up_and_seconds() {
        assert_eq!(
            render("closes in {{minutes_left}} min", 120_000),
            "closes in 2 min"
        );
        assert_eq!(
            render("closes in {{minutes_left}} min", 120_001),
            "closes in 3 min"
        );
        assert_eq!(render("{{ seconds_left }}s", 1_500), "2s");
        assert_eq!(render("no slots", 5), "no slots");
        assert_eq!(render("", 5), "");
    }

    #[test]
    fn fills_names_attributes_and_the_close_time() {
        let attributes = vec![
            ("order".to_owned(), "A-17".to_owned()),
            ("plan".to_owned(), "gold".to_owned()),
        ];
        let template = Template::parse(
            "{{tenant}}: {{agent_name}} asks {{end_user_name|there}} about {{attr.order}} \
             ({{attr.missing|none}}) before {{closes_at}}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = template.render(Values {
            agent_name: Some("Ana"),
            attributes: &attributes,
            ..values(0)
        });
        assert_eq!(text, "acme: Ana asks there about A-17 (none) before 14:05");
        let named = template.render(Values {
            end_user_name: Some("Rui"),
            ..values(0)
        });
        assert_eq!(named, "acme:  asks Rui about  (none) before 14:05");
        assert!(template.uses(&Placeholder::AgentName));
        assert!(!template.uses(&Placeholder::MinutesLeft));
    }

    #[test]
    fn rejects_unknown_and_unclosed_placeholders() {
        let err = Template::parse("Hi {{name}}").unwrap_err();
        assert!(err.starts_with("unknown placeholder {{name}}"), "{err}");
        assert!(err.contains("{{minutes_left}}"), "{err}");
        assert!(err.contains("{{attr.NAME}}"), "{err}");
        let err = Template::parse("Hi {{minutes_left").unwrap_err();
        assert_eq!(err, "unclosed \"{{\" at byte 3");
        let err = Template::parse("{{attr.}}").unwrap_err();
        assert!(err.contains("attribute name"), "{err}");
        let err = Template::parse("{{attr.a b}}").unwrap_err();
        assert!(err.contains("attribute name"), "{err}");
    }

    #[test]
    fn leaves_single_braces_alone() {
        assert_eq!(render("{json} }} {", 0), "{json} }} {");
    }
}
