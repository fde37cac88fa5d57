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

/// Options of an S3 location nothing is sent to.
fn local_s3() -> StorageOptions {
    StorageOptions::new()
        .with("endpoint", "http://127.0.0.1:1")
        .with("allow_http", "true")
        .with("region", "us-east-1")
        .with("aws_access_key_id", "k")
        .with("aws_secret_access_key", "s")
}

#[test]
fn s3_url_keeps_prefix() {
    let o = local_s3();
    let l = Location::open("s3://bucket/a/b/", &o).unwrap();
    assert_eq!(l.url(), "s3://bucket/a/b");
    assert_eq!(l.child("chk-1").url(), "s3://bucket/a/b/chk-1");
    assert_eq!(l.object_store().1.as_ref(), "a/b");
    assert_eq!(l.backend(), Backend::S3);
}

#[test]
fn a_url_opens_exactly_the_place_it_names_or_nothing() {
    let o = local_s3();
    // The attack: everything after `?` or `#` used to be dropped, with whatever the
    // operator appended after it, so a job's prefix became another tenant's directory.
    for url in [
        "s3://bucket/other-tenant/app/savepoints?",
        "s3://bucket/other-tenant/app/savepoints?/ns/job/savepoints",
        "s3://bucket/other-tenant/app#/ns/job",
        "s3://bucket/a%2F..%2Fb",
        "s3://bucket/a/./b",
        "s3://bucket/a//b",
        "file:///tmp/a/../b",
        "file:///tmp/a?x",
    ] {
        let e = Location::open(url, &o).unwrap_err().to_string();
        assert!(e.contains("query") || e.contains("segments"), "{url}: {e}");
    }
    assert_eq!(
        Location::open("s3://bucket/t-1/app_2/x.y", &o)
            .unwrap()
            .url(),
        "s3://bucket/t-1/app_2/x.y"
    );
}
