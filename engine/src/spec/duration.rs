//! Durations in specs: `500ms`, `5s`, `10m`, `1h30m`.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A duration written as `<integer><unit>` terms (`ms`, `s`, `m`, `h`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

impl Duration {
    /// Milliseconds, or why the text is not a duration.
    pub fn millis(&self) -> Result<i64, String> {
        let text = self.0.as_str();
        let bad = || {
            format!(
                "{text:?} is not a duration (expected e.g. \"500ms\", \"5s\", \"10m\" or \"1h30m\")"
            )
        };
        if text.is_empty() {
            return Err(bad());
        }
        let (mut total, mut rest) = (0i64, text);
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (1, 2)
            } else if rest.starts_with('s') {
                (1000, 1)
            } else if rest.starts_with('m') {
                (60_000, 1)
            } else if rest.starts_with('h') {
                (3_600_000, 1)
            } else {
                return Err(bad());
            };
            rest = &rest[len..];
            total = n
                .checked_mul(unit)
                .and_then(|v| v.checked_add(total))
                .ok_or_else(bad)?;
        }
        Ok(total)
    }
}

impl From<&str> for Duration {
    fn from(s: &str) -> Self {
        Duration(s.into())
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"})
    }
}

#[cfg(test)]
mod tests {
    use super::Duration;

    #[test]
    fn durations_parse_to_millis() {
        assert_eq!(Duration::from("500ms").millis(), Ok(500));
        assert_eq!(Duration::from("5s").millis(), Ok(5000));
        assert_eq!(Duration::from("1h30m").millis(), Ok(5_400_000));
        assert!(
            Duration::from("1x")
                .millis()
                .unwrap_err()
                .contains("\"1x\" is not a duration")
        );
        assert!(Duration::from("").millis().is_err());
    }
}
