//! The four backends the storage tests run against, behind one interface: moto (S3),
//! azurite (Azure Blob), the GCS fake, and a local directory.

#![allow(
    clippy::unwrap_used,
    reason = "for tests: a store that does not start fails the test at its first surprise"
)]

use crate::emulators::fake_gcs::FakeGcs;
use crate::emulators::{Azurite, Emulator, Freezable, Moto};
use strom_storage::{Location, StorageOptions};

/// A running store.
pub enum Store {
    /// moto_server.
    S3(Moto),
    /// azurite-blob.
    Azure(Azurite),
    /// The GCS fake.
    Gcs(FakeGcs),
    /// A local directory.
    Local(std::path::PathBuf),
}

impl Store {
    /// Starts `kind` ("s3", "azure", "gcs", "file") with bucket/container `bucket`.
    pub fn start(kind: &str, bucket: &str) -> Store {
        match kind {
            "s3" => {
                let m = Moto::start().unwrap();
                m.create_bucket(bucket).unwrap();
                Store::S3(m)
            }
            "azure" => {
                let a = Azurite::start().unwrap();
                a.create_container(bucket).unwrap();
                Store::Azure(a)
            }
            "gcs" => {
                let g = FakeGcs::start().unwrap();
                g.create_bucket(bucket);
                Store::Gcs(g)
            }
            "file" => {
                let dir = std::env::temp_dir().join(format!(
                    "strom-store-{bucket}-{}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                ));
                std::fs::create_dir_all(&dir).unwrap();
                Store::Local(dir)
            }
            other => panic!("no store {other}"),
        }
    }

    /// Makes another bucket/container.
    pub fn create_bucket(&self, bucket: &str) {
        match self {
            Store::S3(m) => m.create_bucket(bucket).unwrap(),
            Store::Azure(a) => a.create_container(bucket).unwrap(),
            Store::Gcs(g) => g.create_bucket(bucket),
            Store::Local(dir) => std::fs::create_dir_all(dir.join(bucket)).unwrap(),
        }
    }

    /// The URL of `prefix` in `bucket`.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        match self {
            Store::S3(_) => format!("s3://{bucket}/{prefix}"),
            Store::Azure(_) => format!("az://{bucket}/{prefix}"),
            Store::Gcs(_) => format!("gs://{bucket}/{prefix}"),
            Store::Local(dir) => format!("file://{}/{bucket}/{prefix}", dir.display()),
        }
    }

    /// Options to reach it (none for a local directory).
    pub fn options(&self) -> StorageOptions {
        match self {
            Store::S3(m) => m.options(),
            Store::Azure(a) => a.options(),
            Store::Gcs(g) => g.options(),
            Store::Local(_) => StorageOptions::new(),
        }
    }

    /// The options that are not credentials (those go through the environment in the
    /// engine tests), as `--storage-option` values.
    pub fn cli_options(&self) -> Vec<String> {
        self.options()
            .iter()
            .filter(|(k, _)| !k.contains("key") && !k.contains("account_name"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// Credentials, as the cloud's standard environment variables.
    pub fn credential_env(&self) -> Vec<(&'static str, String)> {
        match self {
            Store::S3(_) => vec![
                ("AWS_ACCESS_KEY_ID", "strom-test".into()),
                ("AWS_SECRET_ACCESS_KEY", "strom-test-secret".into()),
            ],
            Store::Azure(_) => vec![
                (
                    "AZURE_STORAGE_ACCOUNT_NAME",
                    crate::emulators::AZURITE_ACCOUNT.into(),
                ),
                (
                    "AZURE_STORAGE_ACCOUNT_KEY",
                    crate::emulators::AZURITE_KEY.into(),
                ),
            ],
            Store::Gcs(_) | Store::Local(_) => Vec::new(),
        }
    }

    /// A location `prefix` in `bucket`, with `extra` options on top.
    pub fn location(&self, bucket: &str, prefix: &str, extra: &StorageOptions) -> Location {
        let mut options = self.options();
        if matches!(self, Store::Local(_)) {
            return Location::open(&self.url(bucket, prefix), &options).unwrap();
        }
        for (k, v) in extra.iter() {
            options = options.with(k, v);
        }
        Location::open(&self.url(bucket, prefix), &options).unwrap()
    }

    /// Stops answering (moto and azurite are frozen with SIGSTOP; the fake stops serving).
    /// Returns false for a local directory, which cannot go away.
    pub fn stop(&self) -> bool {
        match self {
            Store::S3(m) => m.pause(),
            Store::Azure(a) => a.pause(),
            Store::Gcs(g) => g.stop(),
            Store::Local(_) => return false,
        }
        true
    }

    /// Answers again, with everything it held.
    pub fn resume(&self) {
        match self {
            Store::S3(m) => m.resume(),
            Store::Azure(a) => a.resume(),
            Store::Gcs(g) => g.restart().unwrap(),
            Store::Local(_) => {}
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Local(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Options that make a stalled store fail fast, for outage tests.
pub fn impatient() -> StorageOptions {
    StorageOptions::new()
        .with("request_timeout", "1s")
        .with("connect_timeout", "1s")
        .with("retry_timeout", "2s")
        .with("max_retries", "2")
}
