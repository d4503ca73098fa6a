//! Reading the fields platforms write: their times, and texts cut to what an event
//! may carry.

use serde_json::Value;

/// Reads a time a platform wrote (ISO 8601 text, or Unix seconds as a number or
/// text, as Chatwoot writes both) as Unix milliseconds.
pub fn time_ms(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().map(|s| s.saturating_mul(1000)),
        Value::String(text) => {
            if let Ok(seconds) = text.parse::<u64>() {
                return Some(seconds.saturating_mul(1000));
            }
            let at: jiff::Timestamp = text.parse().ok()?;
            u64::try_from(at.as_millisecond()).ok()
        }
        _ => None,
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_clips() {
        assert_eq!(
            time_ms(&Value::from("2025-03-04T09:15:04.402Z")),
            Some(1_741_079_704_402)
        );
        assert_eq!(
            time_ms(&Value::from(1_741_079_704u64)),
            Some(1_741_079_704_000)
        );
        assert_eq!(time_ms(&Value::from("1741079704")), Some(1_741_079_704_000));
        assert_eq!(time_ms(&Value::from("yesterday")), None);
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("hello", 9), "hello");
    }
}
