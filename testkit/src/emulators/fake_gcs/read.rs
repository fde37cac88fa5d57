//! Object reads: GET and HEAD with ranges, generations and preconditions.

use super::*;

/// GET or HEAD of an object.
pub(super) fn get(
    s: &Store,
    bucket: &str,
    key: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    head: bool,
) -> Response {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    };
    let object = match query.get("generation") {
        Some(g) => {
            let Ok(g) = g.parse::<u64>() else {
                return error(StatusCode::BAD_REQUEST, "InvalidArgument", "bad generation");
            };
            s.buckets
                .get(bucket)
                .and_then(|b| b.get(key))
                .and_then(|v| v.iter().find(|o| o.generation == g && g != 0))
        }
        None => s.live(bucket, key),
    };
    let Some(o) = object else { return not_found() };
    let etag = o.etag();
    let modified_s = o.modified.as_second();
    if let Some(m) = header(headers, "if-match")
        && m != etag
        && m != "*"
    {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "If-Match did not hold",
        );
    }
    if let Some(d) = header(headers, "if-unmodified-since").and_then(parse_date)
        && modified_s > d.as_second()
    {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "If-Unmodified-Since did not hold",
        );
    }
    if let Some(m) = header(headers, "if-none-match")
        && (m == etag || m == "*")
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    if let Some(d) = header(headers, "if-modified-since").and_then(parse_date)
        && modified_s <= d.as_second()
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let len = o.data.len() as u64;
    let range = header(headers, "range").and_then(|r| r.strip_prefix("bytes="));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let parsed = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
                (Some(a), Some(b)) => Some((a, (b + 1).min(len))),
                (Some(a), None) if b.is_empty() => Some((a, len)),
                (None, Some(n)) if a.is_empty() => Some((len.saturating_sub(n), len)),
                _ => None,
            };
            match parsed {
                Some((a, b)) if a < len && a < b => (StatusCode::PARTIAL_CONTENT, a, b),
                _ => {
                    return error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "InvalidRange",
                        "The requested range cannot be satisfied.",
                    );
                }
            }
        }
    };
    let body = if head {
        Bytes::new()
    } else {
        o.data.slice(start as usize..end as usize)
    };
    let mut r = (status, body).into_response();
    object_headers(o, &mut r);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&(end - start).to_string()) {
        h.insert("content-length", v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1))
    {
        h.insert("content-range", v);
    }
    r
}
