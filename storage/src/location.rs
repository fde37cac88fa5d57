//! A directory in object storage, named by URL, and the reads and writes Strom makes in it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use crate::{StorageError, StorageOptions, options};

/// Objects larger than this are uploaded in parts of this size.
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// Parts of one object uploaded at once.
const PART_CONCURRENCY: usize = 8;

/// Which store a location is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Amazon S3 or an S3-compatible store (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage (`az://`, `abfs://`, `abfss://`).
    Azure,
    /// A local directory (`file://` or a plain path).
    Local,
}

/// A directory in object storage.
#[derive(Clone)]
pub struct Location {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    backend: Backend,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({})", self.url)
    }
}

/// One object listed in a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name relative to the location.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

impl Location {
    /// Opens the directory at `url`:
    ///
    /// - `s3://bucket/prefix`: credentials from the AWS chain object_store implements — the
    ///   `AWS_*` environment (keys, `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` for IRSA /
    ///   EKS Pod Identity, `AWS_ENDPOINT`, `AWS_REGION`, …), then the ECS task role, then the
    ///   EC2 instance metadata service.
    /// - `gs://bucket/prefix`: `GOOGLE_SERVICE_ACCOUNT[_KEY]`, application default credentials
    ///   (`GOOGLE_APPLICATION_CREDENTIALS` or gcloud's file), then the metadata server
    ///   (GKE workload identity).
    /// - `az://container/prefix` or `abfs[s]://container@account.dfs.core.windows.net/prefix`:
    ///   `AZURE_STORAGE_ACCOUNT_NAME` and the `AZURE_*` environment (keys, SAS, client secret,
    ///   `AZURE_FEDERATED_TOKEN_FILE` for workload identity), then managed identity.
    /// - `file:///dir` or a plain path: a local directory, created if missing.
    ///
    /// `options` override the environment (see [`crate::options::KEYS`]; any other key must
    /// be an object_store configuration key of that cloud).
    pub fn open(url: &str, options: &StorageOptions) -> Result<Location, StorageError> {
        let bad = |reason: String| StorageError::Url {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return open_local(url, url, options);
        };
        let scheme = scheme.to_ascii_lowercase();
        // A bucket and a path, nothing else: a query or fragment would be dropped below (with
        // whatever was appended after it), an escape or `.`/`..` would name another place.
        if rest.contains(['?', '#', '%']) {
            return Err(bad(
                "may not carry a query (?), a fragment (#) or a percent-escape (%): a storage \
                 URL is a bucket and a path"
                    .into(),
            ));
        }
        let path_part = if scheme == "file" {
            rest
        } else {
            rest.split_once('/').map_or("", |(_, p)| p)
        };
        let segments: Vec<&str> = path_part.trim_start_matches('/').split('/').collect();
        if segments.iter().any(|p| *p == "." || *p == "..") {
            return Err(bad("a path may not contain . or .. segments".into()));
        }
        if segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .any(|p| p.is_empty())
        {
            return Err(bad("a path may not contain empty segments (//)".into()));
        }
        if scheme == "file" {
            return open_local(url, rest, options);
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("is not a URL: {e}")))?;
        let bucket = parsed.host_str().unwrap_or_default();
        if bucket.is_empty() {
            return Err(bad("names no bucket or container".into()));
        }
        let prefix = parsed.path().trim_matches('/');
        let prefix = Path::parse(prefix).map_err(|e| bad(e.to_string()))?;
        let root = match &parsed.port() {
            Some(port) => format!("{scheme}://{}:{port}", url_authority(&parsed)),
            None => format!("{scheme}://{}", url_authority(&parsed)),
        };
        let retry = retry_config(options)?;
        let (store, backend): (Arc<dyn ObjectStore>, Backend) = match scheme.as_str() {
            "s3" | "s3a" => (Arc::new(s3(&root, options, retry)?), Backend::S3),
            "gs" => (Arc::new(gcs(&root, options, retry)?), Backend::Gcs),
            "az" | "abfs" | "abfss" | "azure" => {
                (Arc::new(azure(&root, options, retry)?), Backend::Azure)
            }
            other => {
                return Err(bad(format!(
                    "{other}:// is not a storage scheme Strom supports (s3, gs, az, abfs, abfss, file)"
                )));
            }
        };
        let shown = if prefix.as_ref().is_empty() {
            root
        } else {
            format!("{root}/{prefix}")
        };
        // What is opened is what was written, or nothing is.
        if shown != format!("{scheme}://{}", rest.trim_end_matches('/')) {
            return Err(bad(format!(
                "would open {shown}, which is not the URL as written; write it as {shown}"
            )));
        }
        Ok(Location {
            url: shown,
            store,
            prefix,
            backend,
        })
    }

    /// The location's URL (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store it is in.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL of `name` inside.
    pub fn url_of(&self, name: &str) -> String {
        if name.is_empty() {
            self.url.clone()
        } else {
            format!("{}/{name}", self.url)
        }
    }

    /// The directory `name` inside this one.
    pub fn child(&self, name: &str) -> Location {
        Location {
            url: self.url_of(name),
            store: self.store.clone(),
            prefix: self.path(name),
            backend: self.backend,
        }
    }

    /// The object_store behind this location, and the prefix of the location within it (for
    /// running object_store's own conformance suite against the same configuration).
    pub fn object_store(&self) -> (Arc<dyn ObjectStore>, Path) {
        (self.store.clone(), self.prefix.clone())
    }

    fn path(&self, name: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            path = path.child(part);
        }
        path
    }

    fn io(&self, op: &str, name: &str, e: object_store::Error) -> StorageError {
        StorageError::Io {
            op: op.to_owned(),
            url: self.url_of(name),
            reason: redact(&e.to_string()),
        }
    }

    /// Writes `data` to `name`, replacing it. Objects above [`PART_SIZE`] go up as a
    /// multipart upload ([`PART_CONCURRENCY`] parts at a time); an upload that fails is
    /// aborted, so it leaves no parts behind.
    pub async fn put(&self, name: &str, data: Bytes) -> Result<(), StorageError> {
        let path = self.path(name);
        if data.len() <= PART_SIZE {
            self.store
                .put(&path, PutPayload::from(data))
                .await
                .map_err(|e| self.io("write", name, e))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.io("start a multipart upload of", name, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut rest = data;
        while !rest.is_empty() {
            if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(self.io("upload a part of", name, e));
            }
            let chunk = rest.split_to(PART_SIZE.min(rest.len()));
            writer.put(chunk);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.io("complete the multipart upload of", name, e))?;
        Ok(())
    }

    /// Writes `data` to `name` only if nothing is there yet: [`StorageError::AlreadyExists`]
    /// otherwise. Uses the store's conditional write (S3 `If-None-Match: *`, GCS
    /// `x-goog-if-generation-match: 0`, Azure `If-None-Match: *`, an exclusive create
    /// locally). A store that does not implement it is refused
    /// ([`StorageError::NoCreateIfAbsent`]): looking first and writing after cannot stop two
    /// writers racing, and the checkpoint protocol rests on exactly one winning.
    pub async fn put_new(&self, name: &str, data: Bytes) -> Result<(), StorageError> {
        let path = self.path(name);
        let opts = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&path, PutPayload::from(data), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(StorageError::AlreadyExists {
                url: self.url_of(name),
            }),
            Err(object_store::Error::NotImplemented) => Err(StorageError::NoCreateIfAbsent {
                url: self.url_of(name),
            }),
            Err(e) => Err(self.io("write", name, e)),
        }
    }

    /// Reads `name`, streaming it in; `None` if it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        let path = self.path(name);
        let result = match self.store.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.io("read", name, e)),
        };
        let mut buf = BytesMut::with_capacity(result.meta.size as usize);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk.map_err(|e| self.io("read", name, e))?);
        }
        Ok(Some(buf.freeze()))
    }

    /// Whether `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool, StorageError> {
        match self.store.head(&self.path(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.io("look up", name, e)),
        }
    }

    /// The directories directly inside `name` ("" for this location), by name.
    pub async fn dirs(&self, name: &str) -> Result<Vec<String>, StorageError> {
        let base = self.path(name);
        let listed = self
            .store
            .list_with_delimiter(Some(&base))
            .await
            .map_err(|e| self.io("list", name, e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    /// Every object under `name` ("" for this location), with names relative to this
    /// location.
    pub async fn files(&self, name: &str) -> Result<Vec<Listed>, StorageError> {
        let base = self.path(name);
        let objects: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.io("list", name, e))?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let rel: Vec<_> = o.location.prefix_match(&self.prefix)?.collect();
                Some(Listed {
                    name: rel.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join("/"),
                    size: o.size,
                })
            })
            .collect())
    }

    /// Deletes `name` (an object; nothing happens if it is not there).
    pub async fn delete(&self, name: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.io("delete", name, e)),
        }
    }

    /// Deletes every object under `name` except `keep` (a name relative to this location).
    pub async fn delete_all_under(
        &self,
        name: &str,
        keep: Option<&str>,
    ) -> Result<(), StorageError> {
        let files = self.files(name).await?;
        futures::stream::iter(files.into_iter().filter(|f| Some(f.name.as_str()) != keep))
            .map(|f| async move { self.delete(&f.name).await })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        if self.backend == Backend::Local {
            self.remove_empty_local_dirs(name);
        }
        Ok(())
    }

    /// The local store leaves empty directories behind; tidy them (best effort).
    fn remove_empty_local_dirs(&self, name: &str) {
        let Some(root) = self.url.strip_prefix("file://") else {
            return;
        };
        let dir = std::path::Path::new(root).join(name);
        fn prune(dir: &std::path::Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        prune(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        prune(&dir);
    }
}

fn url_authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    if url.username().is_empty() {
        host.to_owned()
    } else {
        format!("{}@{host}", url.username())
    }
}

fn open_local(url: &str, path: &str, options: &StorageOptions) -> Result<Location, StorageError> {
    let bad = |reason: String| StorageError::Url {
        url: url.to_owned(),
        reason,
    };
    if let Some((key, _)) = options.iter().next() {
        return Err(StorageError::Option {
            key: key.to_owned(),
            reason: "local directories take no storage options".into(),
        });
    }
    if path.is_empty() {
        return Err(bad("names no directory".into()));
    }
    if path.split('/').any(|p| p == "..") {
        return Err(bad("a path may not contain .. segments".into()));
    }
    let path = std::path::absolute(path).map_err(|e| bad(e.to_string()))?;
    std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create it: {e}")))?;
    let store = LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(e.to_string()))?;
    Ok(Location {
        url: format!("file://{}", path.display())
            .trim_end_matches('/')
            .to_owned(),
        store: Arc::new(store),
        prefix: Path::default(),
        backend: Backend::Local,
    })
}

fn retry_config(options: &StorageOptions) -> Result<RetryConfig, StorageError> {
    let mut retry = RetryConfig {
        backoff: BackoffConfig::default(),
        ..RetryConfig::default()
    };
    if let Some(t) = options.duration("retry_timeout")? {
        retry.retry_timeout = t;
    }
    if let Some(n) = options.count("max_retries")? {
        retry.max_retries = n;
    }
    Ok(retry)
}

/// Options every cloud handles the same way (or that Strom handles itself).
fn common_key(key: &str) -> Option<&'static str> {
    match key {
        "allow_http" => Some("allow_http"),
        "request_timeout" => Some("timeout"),
        "connect_timeout" => Some("connect_timeout"),
        "retry_timeout" | "max_retries" => Some(""),
        _ => None,
    }
}

fn unknown(key: &str, scheme: &str, e: impl std::fmt::Display) -> StorageError {
    let ours: Vec<&str> = options::KEYS.iter().map(|(k, _)| *k).collect();
    StorageError::Option {
        key: key.to_owned(),
        reason: format!(
            "is not an option for {scheme}:// ({e}); Strom's options are {}, or any object_store key of that cloud",
            ours.join(", ")
        ),
    }
}

fn s3(
    root: &str,
    options: &StorageOptions,
    retry: RetryConfig,
) -> Result<object_store::aws::AmazonS3, StorageError> {
    let mut b = AmazonS3Builder::from_env().with_url(root).with_retry(retry);
    for (key, value) in options.iter() {
        b = match (key, common_key(key)) {
            (_, Some("")) => b,
            (_, Some(k)) => b.with_config(k.parse().map_err(|e| unknown(key, "s3", e))?, value),
            ("endpoint", _) => b.with_endpoint(value),
            ("region", _) => b.with_region(value),
            ("path_style", _) => {
                b.with_virtual_hosted_style_request(!options.flag("path_style")?.unwrap_or(true))
            }
            _ => {
                let k: AmazonS3ConfigKey = key.parse().map_err(|e| unknown(key, "s3", e))?;
                b.with_config(k, value)
            }
        };
    }
    b.build().map_err(|e| StorageError::Url {
        url: root.to_owned(),
        reason: redact(&e.to_string()),
    })
}

fn gcs(
    root: &str,
    options: &StorageOptions,
    retry: RetryConfig,
) -> Result<object_store::gcp::GoogleCloudStorage, StorageError> {
    let mut b = GoogleCloudStorageBuilder::from_env()
        .with_url(root)
        .with_retry(retry);
    for (key, value) in options.iter() {
        b = match (key, common_key(key)) {
            (_, Some("")) => b,
            (_, Some(k)) => b.with_config(k.parse().map_err(|e| unknown(key, "gs", e))?, value),
            ("endpoint", _) => {
                // object_store takes a GCS base URL only inside a service-account key; with
                // `disable_oauth` no token is fetched (emulators and fakes need none), so no
                // request ever goes to Google's token or metadata endpoints.
                let key = serde_json::json!({
                    "private_key": "",
                    "private_key_id": "",
                    "client_email": "",
                    "gcs_base_url": value.trim_end_matches('/'),
                    "disable_oauth": true,
                });
                b.with_service_account_key(key.to_string())
            }
            ("region" | "path_style", _) => {
                return Err(StorageError::Option {
                    key: key.to_owned(),
                    reason: "applies to s3:// only".into(),
                });
            }
            _ => {
                let k: GoogleConfigKey = key.parse().map_err(|e| unknown(key, "gs", e))?;
                b.with_config(k, value)
            }
        };
    }
    b.build().map_err(|e| StorageError::Url {
        url: root.to_owned(),
        reason: redact(&e.to_string()),
    })
}

fn azure(
    root: &str,
    options: &StorageOptions,
    retry: RetryConfig,
) -> Result<object_store::azure::MicrosoftAzure, StorageError> {
    let mut b = MicrosoftAzureBuilder::from_env()
        .with_url(root)
        .with_retry(retry);
    for (key, value) in options.iter() {
        b = match (key, common_key(key)) {
            (_, Some("")) => b,
            (_, Some(k)) => b.with_config(k.parse().map_err(|e| unknown(key, "az", e))?, value),
            ("endpoint", _) => b.with_endpoint(value.trim_end_matches('/').to_owned()),
            ("region" | "path_style", _) => {
                return Err(StorageError::Option {
                    key: key.to_owned(),
                    reason: "applies to s3:// only".into(),
                });
            }
            _ => {
                let k: AzureConfigKey = key.parse().map_err(|e| unknown(key, "az", e))?;
                b.with_config(k, value)
            }
        };
    }
    b.build().map_err(|e| StorageError::Url {
        url: root.to_owned(),
        reason: redact(&e.to_string()),
    })
}

/// Removes what must never reach a log, a status or an event from an error message: URL
/// query strings (SAS signatures, pre-signed parameters) and bearer tokens.
pub fn redact(message: &str) -> String {
    static QUERY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let query = QUERY.get_or_init(|| {
        regex::Regex::new(
            r#"(?i)(https?://[^\s?"'<>)]*)\?[^\s"'<>)]*|(bearer|sig=|signature=)\s*[^\s&"'<>)]+"#,
        )
        .expect("pattern compiles")
    });
    query
        .replace_all(message, |c: &regex::Captures<'_>| match c.get(1) {
            Some(base) => format!("{}?<redacted>", base.as_str()),
            None => "<redacted>".to_owned(),
        })
        .into_owned()
}

#[cfg(test)]
mod tests;
