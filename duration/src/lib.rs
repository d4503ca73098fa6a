//! Durations as operators write them in config: `90s`, `3m`, `1h30m`, `2d`.
//!
//! Shared by the host (webhook timeouts and deadlines) and the auto-close plugin
//! (warning and close times), so every duration in a config file reads the same way.
//!
//! A deliberately small grammar (one or more `<digits><unit>` with units `d`, `h`, `m`,
//! `s`, largest first, each at most once) so that a typo such as `"3 minutes"` is an
//! error at load time instead of a surprise at fire time.

#![warn(missing_docs)]

use std::fmt;

/// Shortest accepted duration: a timer below a second is a misconfiguration.
pub const MIN_MS: u64 = 1_000;
/// Longest accepted duration: a chat idle for more than a week is not a chat.
pub const MAX_MS: u64 = 7 * 24 * 60 * 60 * 1_000;

/// A parsed duration in milliseconds, within [`MIN_MS`, `MAX_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration {
    ms: u64,
}

impl Duration {
    /// The duration in milliseconds.
    pub fn as_ms(self) -> u64 {
        self.ms
    }

    /// Builds a duration from milliseconds, checking the bounds.
    pub fn from_ms(ms: u64) -> Result<Self, String> {
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return Err(format!(
                "{} is outside the allowed range 1s to 7d",
                Duration { ms }
            ));
        }
        Ok(Duration { ms })
    }

    /// Parses `text`; the error says what is wrong and suggests the fix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ms = parse_ms(text).ok_or_else(|| {
            let hint = suggestion(text)
                .filter(|s| s != text)
                .map(|s| format!(" (try \"{s}\")"))
                .unwrap_or_else(|| " (write it like \"90s\", \"3m\" or \"1h30m\")".to_owned());
            format!("{text:?} is not a duration{hint}")
        })?;
        Duration::from_ms(ms)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.ms / 1000;
        let ms = self.ms % 1000;
        if rest == 0 && ms > 0 {
            return write!(f, "{ms}ms");
        }
        let mut wrote = false;
        for (unit, size) in UNITS {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
                wrote = true;
            }
        }
        if !wrote {
            write!(f, "0s")?;
        }
        Ok(())
    }
}

/// A string of the grammar above, for editors that validate config files.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration from 1s to 7d: digits and a unit (d, h, m, s), largest first, each once: \"90s\", \"3m\", \"1h30m\".",
            "type": "string",
            "pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
        })
    }
}

/// Written the way it is read (`"1h30m"`), so a round trip through JSON is exact.
impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Units largest first, with their size in seconds.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

fn parse_ms(text: &str) -> Option<u64> {
    let mut rest = text;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let position = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)?;
        let (_, size) = UNITS[next_unit + position];
        next_unit += position + 1;
        total = total.checked_add(value.checked_mul(size)?.checked_mul(1000)?)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

/// Guesses what the operator meant by `"3 minutes"`, `"90 sec"`, `"2H"` and the like.
fn suggestion(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let digits = compact.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, word) = compact.split_at(digits);
    let unit = match word {
        "" => return Some(format!("{number}s")),
        "s" | "sec" | "secs" | "second" | "seconds" => 's',
        "m" | "min" | "mins" | "minute" | "minutes" => 'm',
        "h" | "hr" | "hrs" | "hour" | "hours" => 'h',
        "d" | "day" | "days" => 'd',
        _ => return None,
    };
    Some(format!("{number}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(Duration::parse("90s").map(Duration::as_ms), Ok(90_000));
        assert_eq!(Duration::parse("3m").map(Duration::as_ms), Ok(180_000));
        assert_eq!(Duration::parse("1h30m").map(Duration::as_ms), Ok(5_400_000));
        assert_eq!(Duration::parse("7d").map(Duration::as_ms), Ok(MAX_MS));
        assert_eq!(Duration::parse("1s").map(Duration::as_ms), Ok(MIN_MS));
    }

    #[test]
    fn rejects_prose_with_a_suggestion() {
        assert_eq!(
            Duration::parse("3 minutes"),
            Err("\"3 minutes\" is not a duration (try \"3m\")".to_owned())
        );
        assert_eq!(
            Duration::parse("90"),
            Err("\"90\" is not a duration (try \"90s\")".to_owned())
        );
        let err = Duration::parse("soon").unwrap_err();
        assert!(err.contains("write it like"), "{err}");
    }

    #[test]
    fn rejects_units_out_of_order_or_repeated() {
        for bad in [
            "30m1h", "1m1m", "1h 30m", "", "m", "1x", "-1s", "1.5m", "3M",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn never_suggests_the_input_itself() {
        let e = Duration::parse("1000000000s").unwrap_err();
        assert!(!e.contains("try"), "no hint that repeats the input: {e}");
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert!(Duration::parse("0s").unwrap_err().contains("outside"));
        assert!(Duration::parse("8d").unwrap_err().contains("outside"));
        assert!(Duration::parse("999999999d").is_err());
    }

    #[test]
    fn displays_in_the_same_grammar() {
        for text in ["90s", "3m", "1h30m", "2d", "1d2h3m4s"] {
            let parsed = Duration::parse(text).unwrap_or_else(|e| panic!("{e}"));
            let again = Duration::parse(&parsed.to_string()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed, again);
        }
        assert_eq!(
            Duration::parse("90s").map(|d| d.to_string()),
            Ok("1m30s".to_owned())
        );
    }
}
