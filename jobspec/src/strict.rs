//! The one strict reader: a typed value from JSON, with every unknown field and a wrong type
//! or missing field reported by its path.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Violation, Violations};

/// What an unknown field is told.
pub const UNKNOWN_FIELD: &str = "unknown field (check its spelling and indentation)";

/// Reads a `T` from `value`. `Ok` holds the value and the unknown fields found in it (the
/// caller decides whether they are errors, and may pass over some — a Kubernetes object's
/// `apiVersion` and `kind`, say); `Err` is the first wrong type or missing field, at its
/// path (a missing field is named itself: `sources[0].name: is required`).
pub fn read<T: DeserializeOwned>(value: &Value) -> Result<(T, Vec<Violation>), Violations> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| {
        unknown.push(Violation::new(ignored_path(&path), UNKNOWN_FIELD));
    };
    let read: T =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record))
            .map_err(|e| type_error(&e))?;
    Ok((read, unknown))
}

/// Reads a `T` from `value`; unknown fields are violations too.
pub fn read_all<T: DeserializeOwned>(value: &Value) -> Result<T, Violations> {
    let (read, unknown) = read(value)?;
    Violations::check(unknown)?;
    Ok(read)
}

fn type_error(err: &serde_path_to_error::Error<serde_json::Error>) -> Violations {
    let mut path = err.path().to_string();
    let mut reason = err.inner().to_string();
    // serde reports a missing field at its parent; name the field itself.
    if let Some(field) = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        path = if path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        reason = "is required".into();
    }
    Violations::one(path, reason)
}

/// `transforms[2].window` for serde_ignored's path.
pub fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Outer {
        #[allow(dead_code, reason = "read, not used")]
        inner: Vec<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Inner {
        #[allow(dead_code, reason = "read, not used")]
        name: String,
    }

    #[test]
    fn unknown_fields_and_missing_ones_are_named_by_path() {
        let v = serde_json::json!({"inner": [{"name": "a", "nmae": 1}], "extra": true});
        let (_, unknown): (Outer, _) = read(&v).unwrap();
        let paths: Vec<&str> = unknown.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["extra", "inner[0].nmae"]);
        let err = read::<Outer>(&serde_json::json!({"inner": [{}]})).unwrap_err();
        assert_eq!(err.to_string(), "inner[0].name: is required");
        let err = read::<Outer>(&serde_json::json!({"inner": [{"name": 3}]})).unwrap_err();
        assert!(
            err.to_string().starts_with("inner[0].name: invalid type"),
            "{err}"
        );
        assert!(read_all::<Outer>(&v).is_err());
    }
}
