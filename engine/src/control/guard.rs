//! Who may change a job through its control endpoint, and where its savepoints may go. An
//! engine started by the operator has a per-job bearer token (a Secret the operator makes,
//! read from a file) and a savepoint directory: `POST /v1/savepoints` needs the token
//! (compared in constant time) and writes only directly under that directory, and only a
//! few savepoint requests may wait at once. Reads (status, checkpoints, metrics, probes)
//! stay open; the network policy decides who reaches the port. An engine run by hand has
//! neither, and takes requests as before.

use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

/// How many savepoint requests may be in progress at once.
pub const MAX_PENDING_SAVEPOINTS: usize = 4;

/// The endpoint's rules for requests that change the job.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    token: Option<String>,
    savepoint_dir: Option<String>,
}

/// A refusal: the status and what to tell the caller.
pub type Refusal = (StatusCode, String);

impl Guard {
    /// Requests must carry `token` (if any) and target directories directly under
    /// `savepoint_dir` (if any).
    pub fn new(token: Option<String>, savepoint_dir: Option<String>) -> Guard {
        Guard {
            token: token.map(|t| t.trim().to_owned()),
            savepoint_dir: savepoint_dir.map(|d| d.trim_end_matches('/').to_owned()),
        }
    }

    /// Whether the request's `Authorization: Bearer …` is the job's token.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err((
                StatusCode::UNAUTHORIZED,
                "this job's control token is required (Authorization: Bearer …)".into(),
            ))
        }
    }

    /// Whether a savepoint may be written to `target`: one directory directly under the
    /// job's savepoint directory, named with letters, digits, `.`, `_` and `-`.
    pub fn target(&self, target: &str) -> Result<(), Refusal> {
        let Some(dir) = &self.savepoint_dir else {
            return Ok(());
        };
        let name = target
            .trim_end_matches('/')
            .strip_prefix(dir.as_str())
            .and_then(|rest| rest.strip_prefix('/'));
        let ok = name.is_some_and(|n| {
            !n.is_empty()
                && n != "."
                && n != ".."
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        if ok {
            Ok(())
        } else {
            Err((
                StatusCode::FORBIDDEN,
                format!("savepoints of this job are written directly under {dir}, not to {target}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_and_the_directory_are_required_when_set() {
        let g = Guard::new(
            Some("s3cret\n".into()),
            Some("s3://b/ns/j/savepoints/".into()),
        );
        let mut h = HeaderMap::new();
        assert_eq!(g.authorize(&h).unwrap_err().0, StatusCode::UNAUTHORIZED);
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(g.authorize(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(g.authorize(&h).is_ok());
        assert!(g.target("s3://b/ns/j/savepoints/sp-3").is_ok());
        for foreign in [
            "s3://attacker/x",
            "s3://b/ns/j/savepoints",
            "s3://b/ns/j/savepoints/../../other",
            "s3://b/ns/j/savepoints/sp-3/deeper",
            "s3://b/ns/j/savepoints-x/sp-1",
        ] {
            assert_eq!(
                g.target(foreign).unwrap_err().0,
                StatusCode::FORBIDDEN,
                "{foreign}"
            );
        }
        // An engine run by hand takes what it is given.
        let open = Guard::default();
        assert!(open.authorize(&HeaderMap::new()).is_ok());
        assert!(open.target("file:///anywhere").is_ok());
    }
}
