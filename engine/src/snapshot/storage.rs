//! Where snapshots live: a directory named by URL, reached through `object_store`.
//!
//! `file:///path` (or a plain path) is a local directory. The cloud schemes (`s3://`,
//! `gs://`, `az://`) are refused with a clear message until the storage issue adds them.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::{FORMAT_VERSION, METADATA, Metadata, Restored, StateFile};

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The URL is not one we can open.
    #[error("{url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A file of the snapshot is missing or damaged.
    #[error("{file}: {reason}")]
    BadFile {
        /// The file's URL.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// No complete snapshot was found.
    #[error("{url}: no complete snapshot to restore from{tried}")]
    NoneComplete {
        /// The URL.
        url: String,
        /// What was tried and why each was refused.
        tried: String,
    },
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
}

/// The snapshot chosen for a restore.
pub struct Latest {
    /// Its URL.
    pub url: String,
    /// Its manifest.
    pub metadata: Metadata,
    /// Its state.
    pub state: Restored,
    /// Newer checkpoints passed over, and why (unfinished or damaged).
    pub skipped: Vec<String>,
}

/// A directory of snapshots (or one snapshot).
#[derive(Clone)]
pub struct Storage {
    url: String,
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.url)
    }
}

impl Storage {
    /// Opens the directory at `url` (`file:///…` or a local path), creating it if needed.
    pub fn open(url: &str) -> Result<Storage, SnapshotError> {
        let bad = |reason: String| SnapshotError::Url {
            url: url.to_owned(),
            reason,
        };
        let path = if let Some(rest) = url.strip_prefix("file://") {
            rest.to_owned()
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(format!(
                "{scheme}:// storage is not available in this build yet; use a file:// URL or a local path"
            )));
        } else {
            url.to_owned()
        };
        if path.is_empty() {
            return Err(bad("names no directory".into()));
        }
        let path = std::path::absolute(&path).map_err(|e| bad(e.to_string()))?;
        std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create it: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Storage {
            url: format!("file://{}", path.display()),
            store: Arc::new(store),
            runtime: Arc::new(runtime),
        })
    }

    /// The directory's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of `name` inside.
    pub fn url_of(&self, name: &str) -> String {
        format!("{}/{name}", self.url.trim_end_matches('/'))
    }

    /// Writes `bytes` to `name` (replacing it).
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), SnapshotError> {
        let store = self.store.clone();
        let path = Path::from(name);
        self.runtime
            .block_on(async move { store.put(&path, bytes.into()).await })
            .map(|_| ())
            .map_err(|e| SnapshotError::Io(format!("cannot write {}: {e}", self.url_of(name))))
    }

    /// Reads `name`; None if it does not exist.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
        let store = self.store.clone();
        let path = Path::from(name);
        let result = self.runtime.block_on(async move {
            match store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        result
            .map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| SnapshotError::Io(format!("cannot read {}: {e}", self.url_of(name))))
    }

    /// The names of the directories directly inside.
    pub fn dirs(&self) -> Result<Vec<String>, SnapshotError> {
        let store = self.store.clone();
        let listed = self
            .runtime
            .block_on(async move { store.list_with_delimiter(None).await })
            .map_err(|e| SnapshotError::Io(format!("cannot list {}: {e}", self.url)))?;
        Ok(listed
            .common_prefixes
            .iter()
            .map(|p| p.as_ref().to_owned())
            .collect())
    }

    /// Deletes directory `name` and everything in it.
    pub fn delete_dir(&self, name: &str) -> Result<(), SnapshotError> {
        use futures::TryStreamExt;
        let store = self.store.clone();
        let prefix = Path::from(name);
        self.runtime
            .block_on(async move {
                let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
                for o in objects {
                    store.delete(&o.location).await?;
                }
                Ok::<(), object_store::Error>(())
            })
            .map_err(|e| SnapshotError::Io(format!("cannot delete {}: {e}", self.url_of(name))))?;
        // The local store leaves empty directories behind.
        if let Some(local) = self.url.strip_prefix("file://") {
            let _ = std::fs::remove_dir_all(std::path::Path::new(local).join(name));
        }
        Ok(())
    }

    /// Checkpoint numbers of the `chk-N` directories inside, highest first.
    pub fn checkpoints(&self) -> Result<Vec<u64>, SnapshotError> {
        let mut ids: Vec<u64> = self
            .dirs()?
            .iter()
            .filter_map(|d| d.strip_prefix("chk-")?.parse().ok())
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Reads and checks the complete snapshot in directory `dir` ("" for this directory
    /// itself): its manifest and every state file it lists.
    pub fn read_snapshot(&self, dir: &str) -> Result<(Metadata, Restored), SnapshotError> {
        let name = |file: &str| {
            if dir.is_empty() {
                file.to_owned()
            } else {
                format!("{dir}/{file}")
            }
        };
        let bad = |file: &str, reason: String| SnapshotError::BadFile {
            file: self.url_of(&name(file)),
            reason,
        };
        let Some(manifest) = self.get(&name(METADATA))? else {
            return Err(bad(
                METADATA,
                "is missing: the snapshot never completed".into(),
            ));
        };
        let meta: Metadata = serde_json::from_slice(&manifest)
            .map_err(|e| bad(METADATA, format!("is not a snapshot manifest: {e}")))?;
        if meta.format_version > FORMAT_VERSION {
            return Err(bad(
                METADATA,
                format!(
                    "was written in snapshot format {}, newer than this engine's {FORMAT_VERSION}",
                    meta.format_version
                ),
            ));
        }
        let mut restored = Restored::new();
        for op in &meta.operators {
            let mut files = Vec::new();
            for f in &op.files {
                let Some(bytes) = self.get(&name(&f.name))? else {
                    return Err(bad(&f.name, "is missing".into()));
                };
                if bytes.len() as u64 != f.size {
                    return Err(bad(
                        &f.name,
                        format!(
                            "has {} bytes, the manifest says {} (truncated or overwritten)",
                            bytes.len(),
                            f.size
                        ),
                    ));
                }
                if crc32fast::hash(&bytes) != f.crc32 {
                    return Err(bad(
                        &f.name,
                        "is damaged (its checksum does not match)".into(),
                    ));
                }
                let file: StateFile = postcard::from_bytes(&bytes)
                    .map_err(|e| bad(&f.name, format!("does not decode: {e}")))?;
                files.push((f.subtask as usize, file));
            }
            restored.insert(
                op.uid.clone(),
                (op.kind.clone(), op.parallelism as usize, files),
            );
        }
        Ok((meta, restored))
    }

    /// The snapshot to restore from: this directory itself if it holds a `_metadata`, else
    /// its newest complete, undamaged checkpoint. Damaged or unfinished checkpoints are
    /// skipped and named in the error if none is usable.
    pub fn latest(&self) -> Result<Latest, SnapshotError> {
        if self.get(METADATA)?.is_some() {
            let (metadata, state) = self.read_snapshot("")?;
            return Ok(Latest {
                url: self.url.clone(),
                metadata,
                state,
                skipped: Vec::new(),
            });
        }
        let mut tried = String::new();
        let mut skipped = Vec::new();
        for id in self.checkpoints()? {
            let dir = format!("chk-{id}");
            match self.read_snapshot(&dir) {
                Ok((metadata, state)) => {
                    return Ok(Latest {
                        url: self.url_of(&dir),
                        metadata,
                        state,
                        skipped,
                    });
                }
                Err(e) => {
                    tried.push_str(&format!("\n  skipped {e}"));
                    skipped.push(e.to_string());
                }
            }
        }
        Err(SnapshotError::NoneComplete {
            url: self.url.clone(),
            tried,
        })
    }
}
