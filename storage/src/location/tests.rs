//! Unit tests of [`super`]: URL parsing and options.

use super::*;

#[test]
fn redact_hides_queries_and_tokens() {
    let m = "error sending request for url (https://acct.blob.core.windows.net/c/x?sv=2020&sig=abc%2F): Bearer eyJhbGci";
    let r = redact(m);
    assert!(!r.contains("abc%2F") && !r.contains("eyJhbGci"), "{r}");
    assert!(
        r.contains("https://acct.blob.core.windows.net/c/x?<redacted>"),
        "{r}"
    );
}

#[test]
fn urls_and_options_are_checked() {
    let e = Location::open("ftp://x/y", &StorageOptions::new()).unwrap_err();
    assert!(
        e.to_string().contains("ftp:// is not a storage scheme"),
        "{e}"
    );
    let e = Location::open("s3:///nobucket", &StorageOptions::new()).unwrap_err();
    assert!(e.to_string().contains("names no bucket"), "{e}");
    let o = StorageOptions::new().with("colour", "blue");
    let e = Location::open("s3://b/p", &o).unwrap_err().to_string();
    assert!(
        e.contains("colour") && e.contains("not an option for s3://"),
        "{e}"
    );
    let o = StorageOptions::new().with("region", "eu-west-1");
    let e = Location::open("gs://b/p", &o).unwrap_err().to_string();
    assert!(e.contains("region") && e.contains("s3:// only"), "{e}");
    let e = Location::open("s3://b/../p", &StorageOptions::new()).unwrap_err();
    assert!(e.to_string().contains(".."), "{e}");
}

#[test]
fn s3_url_keeps_prefix() {
    let o = StorageOptions::new()
        .with("endpoint", "http://127.0.0.1:1")
        .with("allow_http", "true")
        .with("region", "us-east-1")
        .with("aws_access_key_id", "k")
        .with("aws_secret_access_key", "s");
    let l = Location::open("s3://bucket/a/b/", &o).unwrap();
    assert_eq!(l.url(), "s3://bucket/a/b");
    assert_eq!(l.child("chk-1").url(), "s3://bucket/a/b/chk-1");
    assert_eq!(l.object_store().1.as_ref(), "a/b");
    assert_eq!(l.backend(), Backend::S3);
}
