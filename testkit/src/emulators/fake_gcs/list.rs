//! `list-type=2` listing: prefix, delimiter, `max-keys`, continuation tokens, `start-after`.

use super::*;

/// A bucket's listing.
pub(super) fn list(s: &Store, bucket: &str, query: &HashMap<String, String>) -> Response {
    let prefix = query.get("prefix").map_or("", String::as_str);
    let delimiter = query.get("delimiter").filter(|d| !d.is_empty());
    let max_keys: usize = query
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let after = query
        .get("continuation-token")
        .or_else(|| query.get("start-after"))
        .cloned()
        .unwrap_or_default();
    // Entries in key order: objects, and common prefixes standing for every key under them.
    let mut entries: Vec<(String, Option<&Object>)> = Vec::new();
    let empty = BTreeMap::new();
    let objects = s.buckets.get(bucket).unwrap_or(&empty);
    for (key, versions) in objects.range(prefix.to_owned()..) {
        if !key.starts_with(prefix) {
            break;
        }
        let Some(o) = versions.last().filter(|o| o.generation != 0) else {
            continue;
        };
        let rest = &key[prefix.len()..];
        match delimiter.and_then(|d| rest.find(d.as_str()).map(|i| (d, i))) {
            Some((d, i)) => {
                let common = format!("{prefix}{}", &rest[..i + d.len()]);
                if entries.last().is_none_or(|(k, _)| *k != common) {
                    entries.push((common, None));
                }
            }
            None => entries.push((key.clone(), Some(o))),
        }
    }
    let mut page: Vec<_> = entries
        .into_iter()
        .filter(|(k, _)| after.is_empty() || k.as_str() > after.as_str())
        .collect();
    let truncated = page.len() > max_keys;
    page.truncate(max_keys);
    let mut xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(bucket),
        xml_escape(prefix),
        page.len()
    );
    for (key, object) in &page {
        match object {
            Some(o) => xml.push_str(&format!(
                "<Contents><Key>{}</Key><Generation>{}</Generation><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size></Contents>",
                xml_escape(key),
                o.generation,
                o.modified,
                xml_escape(&o.etag()),
                o.data.len()
            )),
            None => xml.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                xml_escape(key)
            )),
        }
    }
    if truncated && let Some((last, _)) = page.last() {
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_escape(last)
        ));
    }
    xml.push_str("</ListBucketResult>");
    (StatusCode::OK, [("content-type", "application/xml")], xml).into_response()
}
