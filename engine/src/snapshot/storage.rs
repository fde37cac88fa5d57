//! Where snapshots live: a directory named by URL (`s3://`, `gs://`, `az://`, `abfs[s]://`,
//! `file://` or a plain path), reached through `strom-storage`, which also owns the commit,
//! fencing and deletion protocol (see its `layout` module and `docs/storage.md`).

use crate::Error;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use strom_storage::layout::{Attempt, CheckpointDir, CheckpointState};
use strom_storage::{Location, StorageOptions, block_on};

use super::{COMMITTED, FORMAT_VERSION, METADATA, Metadata, Restored, StateFile};

/// Files of one snapshot written or read at once.
const CONCURRENCY: usize = 8;

/// The snapshot chosen for a restore.
pub struct Latest {
    /// Its URL.
    pub url: String,
    /// Its manifest.
    pub metadata: Metadata,
    /// Its state.
    pub state: Restored,
    /// Newer checkpoints passed over, and why (unfinished, damaged, fenced or being deleted).
    pub skipped: Vec<String>,
}

/// A directory of snapshots (or one snapshot).
#[derive(Clone)]
pub struct Storage {
    location: Location,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.location.url())
    }
}

impl Storage {
    /// Opens the directory at `url` with credentials and settings from the environment.
    pub fn open(url: &str) -> Result<Storage, Error> {
        Storage::open_with(url, &StorageOptions::new())
    }

    /// Opens the directory at `url` with `options` (endpoint, region, …) over the
    /// environment's.
    pub fn open_with(url: &str, options: &StorageOptions) -> Result<Storage, Error> {
        Ok(Storage {
            location: Location::open(url, options)?,
        })
    }

    /// The location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The directory's URL.
    pub fn url(&self) -> &str {
        self.location.url()
    }

    /// The URL of `name` inside.
    pub fn url_of(&self, name: &str) -> String {
        self.location.url_of(name)
    }

    /// Writes every `(name, bytes)`, several at a time.
    pub fn put_all(&self, files: &[(String, Bytes)]) -> Result<(), Error> {
        block_on(
            futures::stream::iter(files)
                .map(|(name, bytes)| self.location.put(name, bytes.clone()))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>(),
        )?;
        Ok(())
    }

    /// Creates `name` holding `bytes` only if it does not exist.
    pub fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        Ok(block_on(self.location.put_new(name, Bytes::from(bytes)))?)
    }

    /// Reads `name`; None if it does not exist.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(block_on(self.location.get(name))?.map(|b| b.to_vec()))
    }

    /// As a checkpoint directory.
    pub fn checkpoint_dir(&self) -> CheckpointDir {
        CheckpointDir::new(self.location.clone())
    }

    /// Claims the next attempt of the job on this checkpoint directory (the fencing token):
    /// its first checkpoint number is above every checkpoint present and above `at_least`.
    /// `parallelism`: the run's widest. Returns the claim and the widest parallelism of
    /// every run of this directory so far, this one included.
    pub fn claim(
        &self,
        at_least: u64,
        restored_from: Option<String>,
        restored_latest: bool,
        deployment: Option<&str>,
        parallelism: u32,
    ) -> Result<(Attempt, u32), Error> {
        let holder = std::env::var("HOSTNAME")
            .or_else(|_| std::env::var("POD_NAME"))
            .unwrap_or_else(|_| format!("pid {}", std::process::id()));
        let dir = self.checkpoint_dir();
        let claim = block_on(dir.claim_for(
            at_least,
            restored_from,
            restored_latest,
            &holder,
            deployment,
            Some(parallelism),
        ))?;
        let widest = block_on(dir.attempts())?
            .iter()
            .filter_map(|a| a.parallelism)
            .fold(parallelism, u32::max);
        Ok((claim, widest))
    }

    /// Commits checkpoint `id` of `attempt` (data already written): fence check, then the
    /// manifest created only if absent.
    pub fn commit_checkpoint(&self, id: u64, attempt: u64, manifest: Vec<u8>) -> Result<(), Error> {
        Ok(block_on(self.checkpoint_dir().commit(
            id,
            attempt,
            Bytes::from(manifest),
        ))?)
    }

    /// The newest complete checkpoint of `deployment` here, as a URL.
    pub fn latest_of_deployment(&self, deployment: &str) -> Result<Option<String>, Error> {
        Ok(
            block_on(self.checkpoint_dir().latest_of_deployment(deployment))?
                .map(|id| self.url_of(&format!("chk-{id}"))),
        )
    }

    /// Keeps the newest `keep` complete checkpoints (and the one the job restored from);
    /// discards the rest and the leftovers of failed ones. Returns the numbers discarded.
    pub fn retain(&self, keep: usize) -> Result<Vec<u64>, Error> {
        Ok(block_on(self.checkpoint_dir().retain(keep, &[]))?)
    }

    /// Checkpoint numbers of the `chk-N` directories inside, highest first.
    pub fn checkpoints(&self) -> Result<Vec<u64>, Error> {
        Ok(block_on(self.checkpoint_dir().checkpoint_numbers())?)
    }

    /// Reads and checks the complete snapshot in directory `dir` ("" for this directory
    /// itself): its manifest and every state file it lists.
    pub fn read_snapshot(&self, dir: &str) -> Result<(Metadata, Restored), Error> {
        let name = |file: &str| {
            if dir.is_empty() {
                file.to_owned()
            } else {
                format!("{dir}/{file}")
            }
        };
        let bad = |file: &str, reason: String| Error::BadFile {
            file: self.url_of(&name(file)),
            reason,
        };
        let Some(manifest) = self.get(&name(METADATA))? else {
            return Err(bad(
                METADATA,
                "is missing: the snapshot never completed".into(),
            ));
        };
        let mut meta: Metadata = serde_json::from_slice(&manifest)
            .map_err(|e| bad(METADATA, format!("is not a snapshot manifest: {e}")))?;
        meta.transactions_committed = self.get(&name(COMMITTED))?.is_some();
        if meta.format_version > FORMAT_VERSION {
            return Err(bad(
                METADATA,
                format!(
                    "was written in snapshot format {}, newer than this engine's {FORMAT_VERSION}",
                    meta.format_version
                ),
            ));
        }
        // Fetch every state file, several at a time, then check and decode each.
        let wanted: Vec<String> = meta
            .operators
            .iter()
            .flat_map(|op| op.files.iter().map(|f| name(&f.name)))
            .collect();
        let mut fetched: std::collections::HashMap<String, Option<Bytes>> = block_on(
            futures::stream::iter(wanted)
                .map(|n| async move { self.location.get(&n).await.map(|b| (n, b)) })
                .buffer_unordered(CONCURRENCY)
                .try_collect(),
        )?;
        let mut restored = Restored::new();
        for op in &meta.operators {
            let mut files = Vec::new();
            for f in &op.files {
                let Some(bytes) = fetched.remove(&name(&f.name)).flatten() else {
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
    pub fn latest(&self) -> Result<Latest, Error> {
        if self.get(METADATA)?.is_some() {
            let (metadata, state) = self.read_snapshot("")?;
            return Ok(Latest {
                url: self.url().to_owned(),
                metadata,
                state,
                skipped: Vec::new(),
            });
        }
        let mut tried = String::new();
        let mut skipped = Vec::new();
        let dir = self.checkpoint_dir();
        let attempts = block_on(dir.attempts())?;
        for id in self.checkpoints()? {
            let name = format!("chk-{id}");
            let refused = match block_on(dir.state(id, &attempts))? {
                CheckpointState::Complete { .. } | CheckpointState::Incomplete => {
                    // Incomplete: read_snapshot names the missing manifest.
                    match self.read_snapshot(&name) {
                        Ok((metadata, state)) => {
                            return Ok(Latest {
                                url: self.url_of(&name),
                                metadata,
                                state,
                                skipped,
                            });
                        }
                        Err(e) => e.to_string(),
                    }
                }
                CheckpointState::Fenced { attempt, by } => format!(
                    "{}: committed by attempt {attempt} after attempt {by} had taken over (a stale writer's checkpoint)",
                    self.url_of(&name)
                ),
                CheckpointState::Discarded => {
                    format!("{}: is being deleted", self.url_of(&name))
                }
                CheckpointState::Sealed { by } => format!(
                    "{}: never committed; attempt {by} sealed it when it took over",
                    self.url_of(&name)
                ),
                CheckpointState::Damaged(why) => format!(
                    "{}: is not a snapshot manifest: {why}",
                    self.url_of(&format!("{name}/{METADATA}"))
                ),
            };
            tried.push_str(&format!("\n  skipped {refused}"));
            skipped.push(refused);
        }
        Err(Error::NoneComplete {
            url: self.url().to_owned(),
            tried,
        })
    }
}
