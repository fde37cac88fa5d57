//! What handlers read from a request besides its body: names, `If-Match`, durations and
//! page cursors, each refused with the field and the reason.

use axum::http::{HeaderMap, StatusCode, header};

use crate::error::{ApiError, Result};
use crate::model::PageQuery;

/// `value` as a lower-case DNS label of at most `max` characters.
pub fn dns_label(field: &str, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!(
                "must be a lower-case DNS label of at most {max} characters (a-z, 0-9, '-'), e.g. \"clicks\""
            ),
        ))
    }
}

/// The version in `If-Match` (`3`, `"3"` or `W/"3"`).
pub fn if_match(headers: &HeaderMap) -> Result<i64> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "version_required",
            "send the application's current version in If-Match (e.g. If-Match: \"3\")",
        ));
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_if_match",
                "If-Match must be an application version, e.g. \"3\"",
            )
        })
}

/// The answer when the application is at `current`, not at the `sent` version.
pub fn conflict(current: i64, sent: i64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "version_conflict",
        format!(
            "the application is at version {current}, not {sent}: read it again and retry with If-Match: \"{current}\""
        ),
    )
}

/// A positive duration (`30m`, `12h`, `720h`) in milliseconds.
pub fn positive_duration_ms(field: &str, text: &str) -> Result<i64> {
    let d: strom_crds::Duration = text.into();
    match d.to_std() {
        Ok(d) if !d.is_zero() => {
            i64::try_from(d.as_millis()).map_err(|_| ApiError::field(field, "is too long"))
        }
        _ => Err(ApiError::field(
            field,
            "must be a positive duration such as 30m, 12h or 720h (units ms, s, m, h)",
        )),
    }
}

/// A newest-first cursor `<ms>.<id>` (none: from the newest).
pub fn cursor(page: &PageQuery) -> Result<(i64, String)> {
    match &page.cursor {
        None => Ok((i64::MAX, String::new())),
        Some(c) => c
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.to_owned())))
            .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API gave out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for ok in ["a", "clicks", "a-1", &"x".repeat(40)] {
            assert!(dns_label("name", ok, 40).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a_b", "-a", "a-", "ü", &"x".repeat(41)] {
            let e = dns_label("name", bad, 40).unwrap_err();
            assert_eq!(e.body.errors[0].field, "name", "{bad}");
        }
    }

    #[test]
    fn if_match_reads_the_forms_clients_send() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_MATCH, v.parse().unwrap());
            if_match(&h)
        };
        assert_eq!(with("3").unwrap(), 3);
        assert_eq!(with("\"3\"").unwrap(), 3);
        assert_eq!(with("W/\"3\"").unwrap(), 3);
        assert_eq!(with("three").unwrap_err().body.code, "bad_if_match");
        let missing = if_match(&HeaderMap::new()).unwrap_err();
        assert_eq!(missing.status, StatusCode::PRECONDITION_REQUIRED);
    }

    #[test]
    fn durations_are_positive() {
        assert_eq!(positive_duration_ms("expiresIn", "30m").unwrap(), 1_800_000);
        assert_eq!(
            positive_duration_ms("expiresIn", "1h30m").unwrap(),
            5_400_000
        );
        for bad in ["0s", "soon", "-1h", ""] {
            let e = positive_duration_ms("expiresIn", bad).unwrap_err();
            assert_eq!(e.body.errors[0].field, "expiresIn", "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let page = |c: Option<&str>| PageQuery {
            limit: None,
            cursor: c.map(str::to_owned),
        };
        assert_eq!(cursor(&page(None)).unwrap(), (i64::MAX, String::new()));
        let key = crate::store::newest_first_key(17, "ab.c");
        assert_eq!(cursor(&page(Some(&key))).unwrap(), (17, "ab.c".to_owned()));
        assert!(cursor(&page(Some("nonsense"))).is_err());
        assert!(cursor(&page(Some("x.1"))).is_err());
    }
}
