//! Strom's storage suite and object_store's own conformance suite, against every backend:
//! S3 (moto), Azure Blob (azurite), GCS (the XML-API fake) and a local directory.
//!
//! The suite: a multi-hundred-MB snapshot written by multipart upload and read back; the
//! same checkpoint committed by eight writers at once (exactly one wins); a stale attempt
//! fenced out; the store stopped mid-write (the write fails, the next succeeds once it is
//! back); retention and crash-safe deletion of checkpoints and savepoints.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use strom_storage::layout::{
    self, CheckpointDir, CheckpointState, DISCARDED, MANIFEST, SavepointPolicy,
};
use strom_storage::{Location, StorageError, StorageOptions};
use strom_testkit::emulators::noise;
use strom_testkit::stores::{Store, impatient};

fn manifest(id: u64, attempt: u64, completed_ms: i64) -> Bytes {
    serde_json::to_vec(&serde_json::json!({
        "formatVersion": 1, "id": id, "attempt": attempt, "completedMs": completed_ms,
    }))
    .unwrap()
    .into()
}

async fn names(loc: &Location, under: &str) -> Vec<String> {
    let mut n: Vec<String> = loc
        .files(under)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    n.sort();
    n
}

/// A snapshot of three ~100 MB state files: written through multipart upload, committed,
/// read back byte for byte.
async fn large_snapshot(loc: &Location) {
    let dir = CheckpointDir::new(loc.clone());
    let claim = dir.claim(0, None, "test").await.unwrap();
    let data = layout::data_dir(claim.attempt);
    let sizes = [100 << 20, 96 << 20, (64 << 20) + 12_345];
    let files: Vec<(String, Bytes)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                format!("chk-1/{data}/op/{i}.state"),
                noise(*n, i as u64 + 7),
            )
        })
        .collect();
    let started = Instant::now();
    join_all(files.iter().map(|(n, b)| loc.put(n, b.clone())))
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .unwrap();
    dir.commit(1, claim.attempt, manifest(1, claim.attempt, 1))
        .await
        .unwrap();
    let total: usize = sizes.iter().sum();
    eprintln!(
        "{}: wrote {} MB in {:?}",
        loc.url(),
        total >> 20,
        started.elapsed()
    );
    for (name, bytes) in &files {
        let back = loc.get(name).await.unwrap().unwrap();
        assert_eq!(back.len(), bytes.len(), "{name}");
        assert!(back == *bytes, "{name} came back different");
    }
    let listed = loc.files("chk-1").await.unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(
        dir.checkpoints().await.unwrap()[0].state,
        CheckpointState::Complete {
            attempt: claim.attempt
        }
    );
    layout::discard(loc, "chk-1").await.unwrap();
    assert!(loc.files("chk-1").await.unwrap().is_empty());
}

/// Eight writers commit the same checkpoint number at once: exactly one wins, and the
/// manifest is the winner's.
async fn concurrent_commit(loc: &Location) {
    let dir = CheckpointDir::new(loc.clone());
    let claim = dir.claim(0, None, "test").await.unwrap();
    let tries = join_all((0..8).map(|i| {
        let dir = dir.clone();
        async move {
            dir.commit(7, claim.attempt, manifest(7, claim.attempt, 1000 + i))
                .await
                .map(|()| i)
        }
    }))
    .await;
    let winners: Vec<i64> = tries
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(winners.len(), 1, "{tries:?}");
    for r in &tries {
        if let Err(e) = r {
            assert!(
                matches!(e, StorageError::AlreadyExists { .. }),
                "a loser must be told the checkpoint exists: {e}"
            );
        }
    }
    let stored = loc
        .get(&format!("chk-7/{MANIFEST}"))
        .await
        .unwrap()
        .unwrap();
    let head: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(head["completedMs"], 1000 + winners[0]);
}

/// A new attempt fences the old one out: its commits are refused, and what it writes
/// anyway is never taken for a checkpoint.
async fn zombie_fenced(loc: &Location) {
    let dir = CheckpointDir::new(loc.clone());
    let old = dir.claim(0, None, "old pod").await.unwrap();
    dir.commit(1, old.attempt, manifest(1, old.attempt, 1))
        .await
        .unwrap();
    // A new attempt starts (the old pod is partitioned away, not dead).
    let new = dir
        .claim(1, Some(loc.url_of("chk-1")), "new pod")
        .await
        .unwrap();
    assert_eq!(new.attempt, old.attempt + 1);
    assert_eq!(new.first_checkpoint, 2);
    let e = dir
        .commit(2, old.attempt, manifest(2, old.attempt, 2))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Fenced { .. }), "{e}");
    assert!(e.to_string().contains("fenced out"), "{e}");
    // The zombie got past its check just before the claim and commits anyway.
    loc.put(&format!("chk-3/{MANIFEST}"), manifest(3, old.attempt, 3))
        .await
        .unwrap();
    dir.commit(2, new.attempt, manifest(2, new.attempt, 4))
        .await
        .unwrap();
    let states: Vec<_> = dir.checkpoints().await.unwrap();
    assert_eq!(
        states[0].state,
        CheckpointState::Fenced {
            attempt: old.attempt,
            by: new.attempt
        }
    );
    assert_eq!(
        states[1].state,
        CheckpointState::Complete {
            attempt: new.attempt
        }
    );
    assert_eq!(
        states[2].state,
        CheckpointState::Complete {
            attempt: old.attempt
        }
    );
    // Two claims racing get different numbers.
    let racing = join_all((0..4).map(|_| dir.claim(0, None, "racer"))).await;
    let mut numbers: Vec<u64> = racing.into_iter().map(|c| c.unwrap().attempt).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 4);
}

/// The window between a writer's fence check and its manifest write: a zombie whose data is
/// already written when a new attempt claims cannot commit afterwards, because the claim
/// seals the checkpoint (one create-if-absent decides); and a run that restored the newest
/// checkpoint is refused if a stale writer completed a newer one before it took over.
async fn zombie_sealed(loc: &Location) {
    let dir = CheckpointDir::new(loc.clone());
    let old = dir.claim(0, None, "old pod").await.unwrap();
    dir.commit(1, old.attempt, manifest(1, old.attempt, 1))
        .await
        .unwrap();
    // The zombie writes checkpoint 2's data and passes its fence check...
    loc.put(
        &format!("chk-2/{}/op/0.state", layout::data_dir(old.attempt)),
        Bytes::from_static(b"s"),
    )
    .await
    .unwrap();
    dir.check_fence(old.attempt).await.unwrap();
    // ...then a new attempt, restoring chk-1, claims the directory.
    let new = dir
        .claim_for(1, Some(loc.url_of("chk-1")), true, "new pod", None, None)
        .await
        .unwrap();
    // The zombie's manifest write (the commit's second step) loses to the seal.
    let e = loc
        .put_new(&format!("chk-2/{MANIFEST}"), manifest(2, old.attempt, 2))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::AlreadyExists { .. }), "{e}");
    let states = dir.checkpoints().await.unwrap();
    assert_eq!(states[0].id, 2);
    assert_eq!(states[0].state, CheckpointState::Sealed { by: new.attempt });
    assert_eq!(dir.latest_complete().await.unwrap(), Some(1));

    // The other order: the zombie's manifest for chk-3 lands between the run's choice of
    // chk-1... (a later attempt's checkpoint 3, written as a stale writer would)
    let zombie = dir.claim(0, None, "zombie").await.unwrap();
    loc.put(
        &format!(
            "chk-{}/{}/op/0.state",
            zombie.first_checkpoint,
            layout::data_dir(zombie.attempt)
        ),
        Bytes::from_static(b"s"),
    )
    .await
    .unwrap();
    dir.commit(
        zombie.first_checkpoint,
        zombie.attempt,
        manifest(zombie.first_checkpoint, zombie.attempt, 5),
    )
    .await
    .unwrap();
    // ...and its claim: refused, naming the checkpoint to restore instead.
    let e = dir
        .claim_for(1, Some(loc.url_of("chk-1")), true, "late pod", None, None)
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::StaleRestore { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "start again to restore chk-{}",
            zombie.first_checkpoint
        )),
        "{e}"
    );
    // A run that named chk-1 on purpose is not refused.
    dir.claim_for(
        1,
        Some(loc.url_of("chk-1")),
        false,
        "chosen pod",
        None,
        None,
    )
    .await
    .unwrap();
}

/// The store stops answering in the middle of a write: the write fails (within the
/// configured retry time), and succeeds once the store is back.
async fn outage(store: &Store, bucket: &str) {
    let loc = store.location(bucket, "outage", &impatient());
    loc.put("before", Bytes::from_static(b"x")).await.unwrap();
    if !store.stop() {
        return;
    }
    let started = Instant::now();
    let e = loc.put("during", noise(1 << 20, 3)).await.unwrap_err();
    let took = started.elapsed();
    store.resume();
    assert!(matches!(e, StorageError::Io { .. }), "{e}");
    assert!(e.to_string().contains("outage/during"), "{e}");
    assert!(took < Duration::from_secs(30), "gave up after {took:?}");
    // Back: the next write succeeds and the earlier object is intact.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match loc.put("after", Bytes::from_static(b"y")).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not back yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store came back but writes still fail: {e}"),
        }
    }
    assert_eq!(
        loc.get("before").await.unwrap().unwrap(),
        Bytes::from_static(b"x")
    );
}

/// Retention keeps exactly the newest N, the one restored from and checkpoints still being
/// written; deletions interrupted by a crash are finished; savepoint policies by count and
/// age spare protected savepoints.
async fn retention(loc: &Location) {
    let dir = CheckpointDir::new(loc.clone());
    let a = dir.claim(0, None, "test").await.unwrap();
    for id in 1..=6 {
        loc.put(
            &format!("chk-{id}/a{}/op/0.state", a.attempt),
            Bytes::from_static(b"state"),
        )
        .await
        .unwrap();
        dir.commit(id, a.attempt, manifest(id, a.attempt, id as i64))
            .await
            .unwrap();
    }
    // A loser's files inside chk-6 (a writer that lost the commit), chk-4 interrupted by a
    // crash mid-deletion (marked, manifest gone, data still there), and chk-9 abandoned (no
    // manifest, and below a newer complete checkpoint: it failed).
    loc.put("chk-6/a99/op/0.state", Bytes::from_static(b"loser"))
        .await
        .unwrap();
    loc.put(&format!("chk-4/{DISCARDED}"), Bytes::new())
        .await
        .unwrap();
    loc.delete(&format!("chk-4/{MANIFEST}")).await.unwrap();
    loc.put("chk-9/a1/op/0.state", Bytes::from_static(b"abandoned"))
        .await
        .unwrap();
    // The running attempt restored from chk-2; its first checkpoint is above all of them.
    let b = dir
        .claim(6, Some(loc.url_of("chk-2")), "test")
        .await
        .unwrap();
    assert_eq!(b.first_checkpoint, 10);
    loc.put(
        &format!("chk-10/a{}/op/0.state", b.attempt),
        Bytes::from_static(b"state"),
    )
    .await
    .unwrap();
    dir.commit(10, b.attempt, manifest(10, b.attempt, 10))
        .await
        .unwrap();
    // chk-11 is being written right now.
    loc.put(
        &format!("chk-11/a{}/op/0.state", b.attempt),
        Bytes::from_static(b"in flight"),
    )
    .await
    .unwrap();
    let mut discarded = dir.retain(2, &[]).await.unwrap();
    discarded.sort_unstable();
    let mut left: Vec<u64> = dir.checkpoint_numbers().await.unwrap();
    left.sort_unstable();
    assert_eq!(
        left,
        vec![2, 6, 10, 11],
        "kept the newest two, the one restored from and the one in flight; discarded {discarded:?}"
    );
    assert_eq!(discarded, vec![1, 3, 4, 5, 9]);
    assert!(names(loc, "chk-4").await.is_empty());
    assert_eq!(
        names(loc, "chk-6").await,
        vec![
            format!("chk-6/{MANIFEST}"),
            format!("chk-6/a{}/op/0.state", a.attempt),
        ],
        "the loser's files are gone, the winner's stay"
    );

    // A crash between each step of a deletion leaves nothing a sweep would not finish.
    for crash_after in 0..3 {
        let id = 100 + crash_after;
        loc.put(&format!("chk-{id}/a1/op/0.state"), Bytes::from_static(b"s"))
            .await
            .unwrap();
        loc.put(&format!("chk-{id}/{MANIFEST}"), manifest(id, a.attempt, 0))
            .await
            .unwrap();
        loc.put(&format!("chk-{id}/{DISCARDED}"), Bytes::new())
            .await
            .unwrap();
        if crash_after >= 1 {
            loc.delete(&format!("chk-{id}/{MANIFEST}")).await.unwrap();
        }
        if crash_after >= 2 {
            loc.delete(&format!("chk-{id}/a1/op/0.state"))
                .await
                .unwrap();
        }
        assert_eq!(
            dir.state(id, &dir.attempts().await.unwrap()).await.unwrap(),
            CheckpointState::Discarded,
            "a marked checkpoint is never restored"
        );
    }
    dir.retain(2, &[]).await.unwrap();
    for id in 100..103 {
        assert!(
            names(loc, &format!("chk-{id}")).await.is_empty(),
            "chk-{id}"
        );
    }

    // Savepoints: by count, by age, never a protected one; unfinished ones left alone.
    let sps = loc.child("savepoints");
    for (name, completed) in [
        ("sp-1", 1_000),
        ("sp-2", 2_000),
        ("sp-3", 3_000),
        ("sp-4", 4_000),
    ] {
        sps.put(&format!("{name}/a1/op/0.state"), Bytes::from_static(b"s"))
            .await
            .unwrap();
        sps.put(&format!("{name}/{MANIFEST}"), manifest(0, 1, completed))
            .await
            .unwrap();
    }
    sps.put("sp-5/a1/op/0.state", Bytes::from_static(b"still writing"))
        .await
        .unwrap();
    let protected = vec![sps.url_of("sp-1")];
    let policy = SavepointPolicy {
        max_count: 2,
        max_age_ms: None,
    };
    let gone = layout::retain_savepoints(&sps, &policy, &protected, 5_000)
        .await
        .unwrap();
    assert_eq!(
        gone.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["sp-2"]
    );
    let policy = SavepointPolicy {
        max_count: 10,
        max_age_ms: Some(1_500),
    };
    let gone = layout::retain_savepoints(&sps, &policy, &protected, 5_000)
        .await
        .unwrap();
    assert_eq!(
        gone.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["sp-3"]
    );
    let mut left = sps.dirs("").await.unwrap();
    left.sort();
    assert_eq!(left, vec!["sp-1", "sp-4", "sp-5"]);
}

/// Everything above, against one backend.
async fn suite(kind: &str) {
    let store = Store::start(kind, "strom");
    let root = |prefix: &str| store.location("strom", prefix, &StorageOptions::new());
    large_snapshot(&root("large")).await;
    concurrent_commit(&root("concurrent")).await;
    zombie_fenced(&root("zombie")).await;
    zombie_sealed(&root("sealed")).await;
    retention(&root("retention")).await;
    outage(&store, "strom").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_moto() {
    suite("s3").await;
}

/// An S3-compatible store without conditional writes (here moto, with them turned off in
/// the client as a user would for such a store) is refused for checkpoints, naming why,
/// rather than quietly falling back to look-then-write, under which two writers could both
/// commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_create_if_absent_is_refused_for_checkpoints() {
    let store = Store::start("s3", "strom");
    let loc = store.location(
        "strom",
        "unconditional",
        &StorageOptions::new().with("conditional_put", "disabled"),
    );
    let e = CheckpointDir::new(loc.clone())
        .claim(0, None, "test")
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::NoCreateIfAbsent { .. }), "{e}");
    assert!(
        e.to_string().contains("does not support create-if-absent"),
        "{e}"
    );
    // Nothing was written.
    assert!(names(&loc, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_azurite() {
    suite("azure").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_fake() {
    suite("gcs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory() {
    suite("file").await;
}

/// object_store's own conformance functions (its `integration` feature), as upstream runs
/// them against each cloud and emulator, each against an empty bucket of its own.
mod conformance {
    use std::sync::Arc;

    use object_store::integration::*;
    use object_store::{ClientOptions, ObjectStore};

    use super::Store;

    /// The sequential part of upstream's `put_opts(_, true)`: create-if-absent, updates
    /// that match the current version, a stale version and a missing object refused.
    async fn conditional_puts(store: &dyn ObjectStore) {
        use object_store::path::Path;
        use object_store::{Error, PutMode};
        let path = Path::from("conditional_puts");
        let v1 = store
            .put_opts(&path, "a".into(), PutMode::Create.into())
            .await
            .unwrap();
        let err = store
            .put_opts(&path, "b".into(), PutMode::Create.into())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
        let v2 = store
            .put_opts(&path, "c".into(), PutMode::Update(v1.clone().into()).into())
            .await
            .unwrap();
        let err = store
            .put_opts(&path, "d".into(), PutMode::Update(v1.into()).into())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Precondition { .. }), "{err}");
        store
            .put_opts(&path, "e".into(), PutMode::Update(v2.clone().into()).into())
            .await
            .unwrap();
        let b = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(b.as_ref(), b"e");
        let err = store
            .put_opts(
                &Path::from("conditional_puts_missing"),
                "e".into(),
                PutMode::Update(v2.into()).into(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Precondition { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_moto() {
        let store = Store::start("s3", "conformance");
        let Store::S3(moto) = &store else {
            unreachable!()
        };
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("conformance")
            .with_endpoint(moto.endpoint())
            .with_region("us-east-1")
            .with_access_key_id("strom-test")
            .with_secret_access_key("strom-test-secret")
            .with_allow_http(true)
            .with_copy_if_not_exists(object_store::aws::S3CopyIfNotExists::Multipart)
            .build()
            .unwrap();
        put_get_delete_list(&s3).await;
        get_opts(&s3).await;
        list_uses_directories_correctly(&s3).await;
        list_with_delimiter(&s3).await;
        rename_and_copy(&s3).await;
        stream_get(&s3).await;
        multipart(&s3, &s3).await;
        multipart_race_condition(&s3, true).await;
        multipart_out_of_order(&s3).await;
        // Not put_get_attributes: moto 5.1 does not return the user-defined metadata
        // (`x-amz-meta-test_key`) it was given. Strom does not use object attributes.
        list_paginated(&s3, &s3).await;
        copy_if_not_exists(&s3).await;
        // upstream's put_opts(_, true) without its last part, the race of five concurrent
        // read-increment-write loops: moto's If-Match PUT is not atomic under concurrent
        // writers (a CI run here kept 49 of 50 increments). Strom writes only with
        // create-if-absent, which the eight-writer commit test covers on moto.
        conditional_puts(&s3).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn azure_azurite() {
        let store = Store::start("azure", "conformance");
        let Store::Azure(azurite) = &store else {
            unreachable!()
        };
        let az = object_store::azure::MicrosoftAzureBuilder::new()
            .with_container_name("conformance")
            .with_account(strom_testkit::emulators::AZURITE_ACCOUNT)
            .with_access_key(strom_testkit::emulators::AZURITE_KEY)
            .with_endpoint(azurite.endpoint())
            .with_allow_http(true)
            .build()
            .unwrap();
        put_get_delete_list(&az).await;
        get_opts(&az).await;
        list_uses_directories_correctly(&az).await;
        list_with_delimiter(&az).await;
        rename_and_copy(&az).await;
        copy_if_not_exists(&az).await;
        stream_get(&az).await;
        put_opts(&az, true).await;
        multipart(&az, &az).await;
        multipart_race_condition(&az, false).await;
        multipart_out_of_order(&az).await;
        list_paginated(&az, &az).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gcs_fake() {
        let store = Store::start("gcs", "conformance");
        let Store::Gcs(fake) = &store else {
            unreachable!()
        };
        let key = serde_json::json!({
            "private_key": "", "private_key_id": "", "client_email": "",
            "gcs_base_url": fake.endpoint(), "disable_oauth": true,
        });
        let gcs = object_store::gcp::GoogleCloudStorageBuilder::new()
            .with_bucket_name("conformance")
            .with_service_account_key(key.to_string())
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .build()
            .unwrap();
        // Upstream's list for real GCS, all of it.
        put_get_delete_list(&gcs).await;
        list_uses_directories_correctly(&gcs).await;
        list_with_delimiter(&gcs).await;
        rename_and_copy(&gcs).await;
        copy_if_not_exists(&gcs).await;
        stream_get(&gcs).await;
        multipart(&gcs, &gcs).await;
        multipart_race_condition(&gcs, true).await;
        multipart_out_of_order(&gcs).await;
        list_paginated(&gcs, &gcs).await;
        get_opts(&gcs).await;
        put_opts(&gcs, true).await;
        put_get_attributes(&gcs).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_directory() {
        let store = Store::start("file", "conformance");
        let Store::Local(dir) = &store else {
            unreachable!()
        };
        let local: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap());
        put_get_delete_list(&local).await;
        get_opts(local.as_ref()).await;
        list_uses_directories_correctly(&local).await;
        list_with_delimiter(&local).await;
        rename_and_copy(&local).await;
        copy_if_not_exists(&local).await;
        copy_rename_nonexistent_object(&local).await;
        stream_get(&local).await;
        put_opts(local.as_ref(), false).await;
    }
}
