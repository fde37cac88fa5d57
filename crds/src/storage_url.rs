//! Object-storage locations as users write them: `s3://bucket/path`, `gs://…`, `az://…`,
//! `abfs[s]://…`, `file:///…`.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The pattern every storage-URL field carries in the CRD schema; [`StorageUrl::check`] uses
/// the same expression, so the API server and the Rust validation agree.
pub const STORAGE_URL_PATTERN: &str =
    r"^((s3|gs|az|abfs|abfss)://[a-z0-9][-a-z0-9._@]*(/\S*)?|file:///\S*)$";

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
        if scheme == "file" {
            return Err(format!(
                "{text:?} must be an absolute path with no spaces (e.g. \"file:///var/strom\")"
            ));
        }
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{text:?} names no bucket or container"));
        }
        Err(format!(
            "{text:?} is not a valid {scheme}:// URL: bucket/container names are lower-case letters, digits, '.', '-' and '_', and the path has no spaces"
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
    }
}
