//! Object-storage locations as users write them: `s3://bucket/path`, `gs://…`, `az://…`,
//! `abfs[s]://…`, `file:///…`.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The pattern every storage-URL field carries in the CRD schema; [`StorageUrl::check`] uses
/// the same expression, so the API server and the Rust validation agree. A path is segments
/// of letters, digits, `.`, `_` and `-`, none of them `.` or `..` and none empty (no
/// lookahead: the API server's regular expressions are RE2's); no query, fragment or
/// percent-escape, so what is appended to a URL stays under it.
pub const STORAGE_URL_PATTERN: &str = concat!(
    r"^((s3|gs|az|abfs|abfss)://[a-z0-9][-a-z0-9._@]*",
    r"(/([A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+))*/?",
    r"|file://(/([A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+))+/?)$"
);

/// The URL schemes Strom can keep checkpoints and savepoints in.
pub const STORAGE_SCHEMES: &[&str] = &["s3", "gs", "az", "abfs", "abfss", "file"];

/// A location in object storage: `s3://bucket/prefix`, `gs://bucket/prefix`,
/// `az://container/prefix`, `abfs[s]://container@account.dfs.core.windows.net/prefix` or
/// `file:///absolute/path`. Bucket and container names are lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StorageUrl(pub String);

impl StorageUrl {
    /// Checks the URL's form. The error is a reason written for the person who typed it.
    pub fn check(&self) -> Result<(), String> {
        let text = &self.0;
        if pattern().is_match(text) {
            return Ok(());
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "{text:?} is not a storage URL (expected e.g. \"s3://my-bucket/strom\" or \"file:///var/strom\")"
            ));
        };
        if !STORAGE_SCHEMES.contains(&scheme) {
            return Err(format!(
                "{text:?} uses the unsupported scheme {scheme:?} (supported: {})",
                STORAGE_SCHEMES.join(", ")
            ));
        }
        if rest.contains(['?', '#', '%']) {
            return Err(format!(
                "{text:?} may not carry a query (?), a fragment (#) or a percent-escape (%): a storage URL is a bucket and a path"
            ));
        }
        let path = if scheme == "file" {
            rest
        } else {
            rest.split_once('/').map_or("", |(_, p)| p)
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if segments.iter().any(|p| *p == "." || *p == "..") {
            return Err(format!("{text:?} may not contain . or .. path segments"));
        }
        if segments[..segments.len() - 1].iter().any(|p| p.is_empty()) {
            return Err(format!("{text:?} may not contain empty path segments (//)"));
        }
        if scheme == "file" {
            return Err(format!(
                "{text:?} must be an absolute path of letters, digits, '.', '_' and '-' (e.g. \"file:///var/strom\")"
            ));
        }
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{text:?} names no bucket or container"));
        }
        Err(format!(
            "{text:?} is not a valid {scheme}:// URL: bucket/container names are lower-case letters, digits, '.', '-' and '_', and path segments are letters, digits, '.', '_' and '-'"
        ))
    }

    /// The scheme (`s3`, `gs`, `az`, `abfs`, `abfss`, `file`) when the URL has one.
    pub fn scheme(&self) -> Option<&str> {
        self.0.split_once("://").map(|(s, _)| s)
    }
}

fn pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| regex::Regex::new(STORAGE_URL_PATTERN).expect("pattern compiles"))
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StorageUrl {
    fn from(s: &str) -> Self {
        StorageUrl(s.to_owned())
    }
}

impl JsonSchema for StorageUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StorageUrl".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": STORAGE_URL_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_supported_store() {
        for ok in [
            "s3://my-bucket/strom/checkpoints",
            "s3://my-bucket",
            "gs://team.bucket/sp",
            "az://container/prefix",
            "abfss://container@account.dfs.core.windows.net/prefix",
            "file:///var/lib/strom",
        ] {
            assert_eq!(StorageUrl::from(ok).check(), Ok(()), "{ok}");
        }
    }

    #[test]
    fn explains_each_kind_of_mistake() {
        let reason = |s: &str| StorageUrl::from(s).check().unwrap_err();
        assert!(reason("my-bucket/x").contains("is not a storage URL"));
        assert!(reason("ftp://host/x").contains("unsupported scheme \"ftp\""));
        assert!(reason("file://relative/path").contains("absolute path"));
        assert!(reason("s3:///nobucket").contains("names no bucket"));
        assert!(reason("s3://My_Bucket/x").contains("lower-case"));
        // Nothing that would make an appended path land somewhere else.
        for escape in [
            "s3://bucket/other-tenant/app/savepoints?",
            "s3://bucket/other-tenant/app#x",
            "s3://bucket/a%2F..",
        ] {
            assert!(reason(escape).contains("query (?)"), "{escape}");
        }
        for dots in ["s3://bucket/a/../b", "s3://bucket/./b", "file:///var/.."] {
            assert!(reason(dots).contains(". or .."), "{dots}");
        }
        assert!(reason("s3://bucket/a//b").contains("empty path segments"));
        assert!(reason("s3://bucket/a b").contains("path segments are letters"));
        // Dots inside names are fine, and so is a trailing slash.
        for ok in [
            "s3://b/.hidden/..x/a.b",
            "s3://b/prefix/",
            "file:///var/strom/",
        ] {
            assert_eq!(StorageUrl::from(ok).check(), Ok(()), "{ok}");
        }
    }
}
