//! Durations as users write them in manifests and job specs: `"500ms"`, `"30s"`, `"5m"`,
//! `"1h30m"`. One type and one parser for the FlinkJob API and the engine alike.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The pattern every duration field carries in the CRD schema. It is the subset of Go's
/// `time.ParseDuration` syntax that both the API server's CEL `duration()` and
/// [`Duration::to_std`] accept, so the two validators agree.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

/// A duration written as one or more `<integer><unit>` terms, units `ms`, `s`, `m`, `h`
/// (e.g. `"90s"`, `"1h30m"`). Kept as the text the user wrote so that a manifest round-trips
/// unchanged; [`Duration::to_std`] parses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not a sequence of `<integer><unit>` terms.
    #[error(
        "{0:?} is not a duration (expected e.g. \"30s\", \"5m\" or \"1h30m\"; units ms, s, m, h)"
    )]
    Syntax(String),
    /// The value does not fit in the range the API server's CEL `duration()` accepts.
    #[error("{0:?} is too long (at most about 290 years)")]
    Overflow(String),
}

impl Duration {
    /// Parses the duration. Errors name the text and the expected form.
    pub fn to_std(&self) -> Result<std::time::Duration, DurationError> {
        parse(&self.0)
    }

    /// Whole milliseconds (what the engine's event time counts in). Errors as
    /// [`Duration::to_std`].
    pub fn millis(&self) -> Result<i64, DurationError> {
        let d = self.to_std()?;
        i64::try_from(d.as_millis()).map_err(|_| DurationError::Overflow(self.0.clone()))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Duration {
    fn from(s: &str) -> Self {
        Duration(s.to_owned())
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
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Go's `time.Duration` is an i64 of nanoseconds; CEL's `duration()` rejects anything longer.
const MAX_NANOS: u128 = i64::MAX as u128;

fn parse(text: &str) -> Result<std::time::Duration, DurationError> {
    let syntax = || DurationError::Syntax(text.to_owned());
    if text.is_empty() {
        return Err(syntax());
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total_nanos: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(syntax());
        }
        let digits = &text[start..i];
        let (unit_nanos, unit_len): (u128, usize) = match &bytes[i..] {
            [b'm', b's', ..] => (1_000_000, 2),
            [b's', ..] => (1_000_000_000, 1),
            [b'm', ..] => (60 * 1_000_000_000, 1),
            [b'h', ..] => (3600 * 1_000_000_000, 1),
            _ => return Err(syntax()),
        };
        i += unit_len;
        let value: u128 = digits
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        total_nanos = value
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(total_nanos))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(text.to_owned()))?;
    Ok(std::time::Duration::new(
        secs,
        (total_nanos % 1_000_000_000) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    fn d(s: &str) -> Result<Std, DurationError> {
        Duration::from(s).to_std()
    }

    #[test]
    fn parses_single_and_compound_terms() {
        assert_eq!(d("500ms"), Ok(Std::from_millis(500)));
        assert_eq!(d("30s"), Ok(Std::from_secs(30)));
        assert_eq!(d("5m"), Ok(Std::from_secs(300)));
        assert_eq!(d("1h30m"), Ok(Std::from_secs(5400)));
        assert_eq!(d("1m1s1ms"), Ok(Std::from_millis(61_001)));
        assert_eq!(d("0s"), Ok(Std::ZERO));
    }

    #[test]
    fn rejects_what_the_schema_pattern_rejects() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        for bad in [
            "", "10x", "s", "1.5s", "-1s", "1 s", "1d", "10", "m5", "1h 30m", "5mss",
        ] {
            assert!(
                matches!(d(bad), Err(DurationError::Syntax(_))),
                "{bad:?} parsed"
            );
            assert!(!pattern.is_match(bad), "{bad:?} matched the schema pattern");
        }
        for good in ["1ms", "30s", "1h30m", "0s", "100h"] {
            assert!(
                pattern.is_match(good),
                "{good:?} did not match the schema pattern"
            );
        }
    }

    #[test]
    fn rejects_durations_longer_than_go_allows() {
        assert_eq!(d("2562047h"), Ok(Std::from_secs(2_562_047 * 3600)));
        assert!(matches!(d("2562048h"), Err(DurationError::Overflow(_))));
        assert!(matches!(
            d("99999999999999999999999999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn millis_count_whole_milliseconds() {
        assert_eq!(Duration::from("500ms").millis(), Ok(500));
        assert_eq!(Duration::from("1h30m").millis(), Ok(5_400_000));
        assert!(Duration::from("").millis().is_err());
    }

    #[test]
    fn messages_name_the_text_and_the_expected_form() {
        let err = d("10x").unwrap_err().to_string();
        assert_eq!(
            err,
            "\"10x\" is not a duration (expected e.g. \"30s\", \"5m\" or \"1h30m\"; units ms, s, m, h)"
        );
    }
}
