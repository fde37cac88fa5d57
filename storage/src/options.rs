//! Options that say how to reach a store: the ones a `FlinkJob` or the command line sets
//! (endpoint, region, path style, plain HTTP for local emulators, retry limits) and any
//! `object_store` configuration key of the URL's cloud (`aws_…`, `google_…`, `azure_…`).
//!
//! Credentials normally come from each cloud's standard chain (see [`crate::Location::open`]);
//! when they are given here, their values are never shown: `Debug` prints keys only and
//! errors name the key, never the value.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::StorageError;

/// Options for opening a [`crate::Location`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys only: a value may be a secret.
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// The options Strom itself understands, for every scheme.
pub const KEYS: &[(&str, &str)] = &[
    (
        "endpoint",
        "URL of an S3-compatible store or Azure account endpoint (emulators, MinIO), or of a GCS XML API endpoint (requests then go without OAuth: emulators only)",
    ),
    ("region", "AWS region (s3:// only)"),
    (
        "path_style",
        "true: bucket in the path (http://host/bucket/key), as S3-compatible stores need (s3:// only)",
    ),
    (
        "allow_http",
        "true: allow plain http:// endpoints (local emulators)",
    ),
    (
        "retry_timeout",
        "give up retrying a request after this long, e.g. 30s (default 3m)",
    ),
    (
        "max_retries",
        "retry a failed request at most this many times (default 10)",
    ),
    (
        "request_timeout",
        "abandon one HTTP request after this long, e.g. 30s (default 30s)",
    ),
    (
        "connect_timeout",
        "abandon connecting after this long, e.g. 5s (default 5s)",
    ),
];

impl StorageOptions {
    /// No options: everything from the environment and the defaults.
    pub fn new() -> StorageOptions {
        StorageOptions::default()
    }

    /// Sets `key` to `value`. Keys are case-insensitive; the check that a key means something
    /// for the URL's cloud happens when a location is opened.
    pub fn with(mut self, key: &str, value: &str) -> StorageOptions {
        self.values
            .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        self
    }

    /// Parses `key=value`, as the command line gives it.
    pub fn parse_pair(mut self, pair: &str) -> Result<StorageOptions, StorageError> {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(StorageError::Option {
                key: pair.to_owned(),
                reason: "expected key=value".into(),
            });
        };
        if key.trim().is_empty() {
            return Err(StorageError::Option {
                key: pair.to_owned(),
                reason: "the key is empty".into(),
            });
        }
        self = self.with(key, value);
        Ok(self)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub(crate) fn flag(&self, key: &str) -> Result<Option<bool>, StorageError> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(StorageError::Option {
                    key: key.to_owned(),
                    reason: format!("{v:?} is not true or false"),
                }),
            })
            .transpose()
    }

    pub(crate) fn duration(&self, key: &str) -> Result<Option<Duration>, StorageError> {
        self.get(key)
            .map(|v| {
                parse_duration(v).ok_or_else(|| StorageError::Option {
                    key: key.to_owned(),
                    reason: format!("{v:?} is not a duration (e.g. 500ms, 30s, 3m)"),
                })
            })
            .transpose()
    }

    pub(crate) fn count(&self, key: &str) -> Result<Option<usize>, StorageError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| StorageError::Option {
                    key: key.to_owned(),
                    reason: format!("{v:?} is not a whole number"),
                })
            })
            .transpose()
    }
}

/// `500ms`, `30s`, `3m`, `1h`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_keys_not_values() {
        let o = StorageOptions::new()
            .with("aws_secret_access_key", "hunter2")
            .with("Region", "eu-west-1");
        let shown = format!("{o:?}");
        assert!(shown.contains("aws_secret_access_key") && shown.contains("region"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn pairs_and_values_are_checked() {
        assert!(StorageOptions::new().parse_pair("endpoint").is_err());
        assert!(StorageOptions::new().parse_pair("=x").is_err());
        let o = StorageOptions::new()
            .parse_pair("retry_timeout=2s")
            .unwrap()
            .parse_pair("allow_http=maybe")
            .unwrap();
        assert_eq!(
            o.duration("retry_timeout").unwrap(),
            Some(Duration::from_secs(2))
        );
        let e = o.flag("allow_http").unwrap_err().to_string();
        assert!(
            e.contains("allow_http") && e.contains("not true or false"),
            "{e}"
        );
        assert!(parse_duration("10").is_none());
        assert_eq!(parse_duration("3m"), Some(Duration::from_secs(180)));
    }
}
