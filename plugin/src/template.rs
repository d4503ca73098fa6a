//! Message templates: text with `{{placeholder}}` slots filled at fire time.
//!
//! Templates are parsed when a tenant is configured, so an unknown placeholder or an
//! unclosed `{{` is a config error, never a broken message in front of a customer.

/// A value a template can refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// Whole minutes until the close, rounded up (`{{minutes_left}}`).
    MinutesLeft,
    /// Whole seconds until the close, rounded up (`{{seconds_left}}`).
    SecondsLeft,
}

impl Placeholder {
    /// Every placeholder with its name, for parsing and for error messages.
    pub const ALL: [(&'static str, Placeholder); 2] = [
        ("minutes_left", Placeholder::MinutesLeft),
        ("seconds_left", Placeholder::SecondsLeft),
    ];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, placeholder)| *placeholder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Slot(Placeholder),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// The values placeholders are filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Values {
    /// Milliseconds until the session closes.
    pub ms_left: u64,
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
            let name = after[..close].trim();
            let placeholder = Placeholder::from_name(name).ok_or_else(|| {
                let known: Vec<String> = Placeholder::ALL
                    .iter()
                    .map(|(n, _)| format!("{{{{{n}}}}}"))
                    .collect();
                format!(
                    "unknown placeholder {{{{{name}}}}} (known: {})",
                    known.join(", ")
                )
            })?;
            segments.push(Segment::Slot(placeholder));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    /// Fills the placeholders.
    pub fn render(&self, values: Values) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot(Placeholder::MinutesLeft) => {
                    out.push_str(&values.ms_left.div_ceil(60_000).to_string())
                }
                Segment::Slot(Placeholder::SecondsLeft) => {
                    out.push_str(&values.ms_left.div_ceil(1_000).to_string())
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, ms_left: u64) -> String {
        Template::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .render(Values { ms_left })
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
    fn rejects_unknown_and_unclosed_placeholders() {
        let err = Template::parse("Hi {{name}}").unwrap_err();
        assert!(err.starts_with("unknown placeholder {{name}}"), "{err}");
        assert!(err.contains("{{minutes_left}}"), "{err}");
        let err = Template::parse("Hi {{minutes_left").unwrap_err();
        assert_eq!(err, "unclosed \"{{\" at byte 3");
    }

    #[test]
    fn leaves_single_braces_alone() {
        assert_eq!(render("{json} }} {", 0), "{json} }} {");
    }
}
