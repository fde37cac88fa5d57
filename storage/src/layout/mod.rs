//! The snapshot-directory protocol: how checkpoints and savepoints are committed, fenced,
//! retained and deleted so that a referenced snapshot is never partial, never overwritten by
//! a stale writer and never deleted while something may restore from it. `docs/storage.md`
//! walks through the failure cases.
//!
//! ```text
//! <checkpoint dir>/
//!   _attempts/00000000000000000003      one claim per run of the job (the fencing token)
//!   chk-41/a3/<operator>/<subtask>.state data files, under the writer's attempt
//!   chk-41/_metadata                     the manifest, created only if absent, written last
//!   chk-40/_discarded                    a deletion in progress (readers skip the snapshot)
//! <savepoint dir>/a3/…, <savepoint dir>/_metadata
//! ```
//!
//! - **Commit.** Data files first, then `_metadata` with create-if-absent, so of two writers
//!   of the same snapshot exactly one commits and the other is told so.
//! - **Fencing.** Every run claims the next attempt number with create-if-absent and records
//!   the first checkpoint number it will use (above every `chk-N` present). A writer checks
//!   before committing that no newer attempt exists; a reader accepts a checkpoint of attempt
//!   `a` only if its number is below the first checkpoint of every later attempt, so what a
//!   zombie of an old attempt commits after a new one started is never restored. A claim
//!   also **seals** every `chk-N` the earlier attempts left without a manifest: it writes a
//!   seal as that `_metadata`, create-if-absent, so a zombie that passed its fence check
//!   before the claim cannot commit it afterwards — one conditional write decides between
//!   the two. If the zombie's manifest got there first, the checkpoint is complete, and a
//!   claim whose run restored an older checkpoint of this directory is refused (the run
//!   must start again from the newer one).
//! - **Deletion.** Mark (`_discarded`), delete the manifest, delete the data, delete the
//!   mark. A crash anywhere leaves either a marked snapshot, which readers skip and the next
//!   sweep finishes, or nothing.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Location, StorageError};

mod retention;

pub use retention::{SavepointEntry, SavepointPolicy, discard, retain_savepoints};

/// The manifest's name.
pub const MANIFEST: &str = "_metadata";
/// The deletion mark's name.
pub const DISCARDED: &str = "_discarded";
/// The directory of attempt claims.
pub const ATTEMPTS: &str = "_attempts";

/// What a claim writes as the `_metadata` of a checkpoint an earlier attempt left without
/// one. It has no `id`, so a reader that does not know seals takes it for a damaged
/// manifest and skips it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seal {
    /// The attempt that sealed it.
    pub sealed_by: u64,
    /// When (epoch ms).
    pub sealed_ms: i64,
}

/// The part of a manifest the protocol reads (the engine's manifest has these fields and
/// more).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestHead {
    /// Checkpoint number.
    pub id: u64,
    /// The attempt that wrote it (0 for snapshots written before attempts existed).
    #[serde(default)]
    pub attempt: u64,
    /// When it completed (epoch ms).
    #[serde(default)]
    pub completed_ms: i64,
}

/// Where one job's state lives under a storage base URL: `<base>/<namespace>/<name>`, with
/// `checkpoints/` and `savepoints/sp-<n>` inside. The operator, the control plane and the
/// docs all take these paths from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDirs {
    root: String,
}

impl JobDirs {
    /// The directories of job `name` in `namespace` under `base` (a trailing `/` of `base`
    /// is ignored).
    pub fn new(base: &str, namespace: &str, name: &str) -> JobDirs {
        JobDirs {
            root: format!("{}/{namespace}/{name}", base.trim_end_matches('/')),
        }
    }

    /// The checkpoint directory.
    pub fn checkpoints(&self) -> String {
        format!("{}/checkpoints", self.root)
    }

    /// The directory holding the savepoints.
    pub fn savepoints(&self) -> String {
        format!("{}/savepoints", self.root)
    }

    /// The directory of savepoint number `n` (from 1).
    pub fn savepoint(&self, n: usize) -> String {
        format!("{}/sp-{n}", self.savepoints())
    }
}

/// The data directory of attempt `attempt` inside a snapshot directory.
pub fn data_dir(attempt: u64) -> String {
    format!("a{attempt}")
}

/// One run of a job against a checkpoint directory: the fencing token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Attempt number, increasing.
    pub attempt: u64,
    /// The first checkpoint number this attempt uses.
    pub first_checkpoint: u64,
    /// The snapshot it restored from, if any: retention never deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// When it started (epoch ms).
    pub started_ms: i64,
    /// Who runs it (pod or host name), for people reading the claim.
    pub holder: String,
    /// The deployment it belongs to (given by the operator; the same for every restart of
    /// one deployment, new for each upgrade): a restarted engine resumes its deployment's
    /// latest checkpoint instead of its start snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The widest parallelism of the run's steps: a later run fences what this one may have
    /// left open under ids numbered by subtask (Kafka transactional ids), up to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
}

/// A checkpoint directory (`chk-N` directories inside).
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    location: Location,
}

/// What a `chk-N` directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointState {
    /// Committed by `attempt`, and not fenced.
    Complete {
        /// Writer's attempt.
        attempt: u64,
    },
    /// Committed by an attempt after a later attempt took over: a zombie's write.
    Fenced {
        /// Writer's attempt.
        attempt: u64,
        /// The attempt that had taken over.
        by: u64,
    },
    /// No manifest: in progress, failed or abandoned.
    Incomplete,
    /// Left without a manifest by an earlier attempt and sealed by attempt `by` when it
    /// took over: never committed, never restored.
    Sealed {
        /// The attempt that sealed it.
        by: u64,
    },
    /// Being deleted.
    Discarded,
    /// The manifest does not parse.
    Damaged(String),
}

/// One `chk-N` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointEntry {
    /// N.
    pub id: u64,
    /// What it holds.
    pub state: CheckpointState,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn checkpoint_number(dir: &str) -> Option<u64> {
    dir.strip_prefix("chk-")?.parse().ok()
}

impl CheckpointDir {
    /// The checkpoint directory at `location`.
    pub fn new(location: Location) -> CheckpointDir {
        CheckpointDir { location }
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Every claim, oldest first.
    pub async fn attempts(&self) -> Result<Vec<Attempt>, StorageError> {
        let mut out = Vec::new();
        for f in self.location.files(ATTEMPTS).await? {
            let Some(bytes) = self.location.get(&f.name).await? else {
                continue;
            };
            let a: Attempt = serde_json::from_slice(&bytes).map_err(|e| StorageError::Damaged {
                url: self.location.url_of(&f.name),
                reason: format!("is not an attempt claim: {e}"),
            })?;
            out.push(a);
        }
        out.sort_by_key(|a| a.attempt);
        Ok(out)
    }

    /// The `chk-N` numbers present (complete or not), highest first.
    pub async fn checkpoint_numbers(&self) -> Result<Vec<u64>, StorageError> {
        let mut ids: Vec<u64> = self
            .location
            .dirs("")
            .await?
            .iter()
            .filter_map(|d| checkpoint_number(d))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Claims the next attempt: its number is one above every claim present (racing
    /// claimants get different numbers: the claim is created only if absent) and its first
    /// checkpoint is above every `chk-N` present and above `at_least`.
    pub async fn claim(
        &self,
        at_least: u64,
        restored_from: Option<String>,
        holder: &str,
    ) -> Result<Attempt, StorageError> {
        self.claim_for(at_least, restored_from, false, holder, None, None)
            .await
    }

    /// [`CheckpointDir::claim`] for a run of `deployment` at `parallelism` (its widest).
    /// `restored_latest`: the run restored what was the newest complete checkpoint here
    /// when it chose (the claim refuses it if a newer one has completed since).
    pub async fn claim_for(
        &self,
        at_least: u64,
        restored_from: Option<String>,
        restored_latest: bool,
        holder: &str,
        deployment: Option<&str>,
        parallelism: Option<u32>,
    ) -> Result<Attempt, StorageError> {
        loop {
            let newest = self.attempts().await?.last().map_or(0, |a| a.attempt);
            let highest = self
                .checkpoint_numbers()
                .await?
                .first()
                .copied()
                .unwrap_or(0);
            let claim = Attempt {
                attempt: newest + 1,
                first_checkpoint: highest.max(at_least) + 1,
                restored_from: restored_from.clone(),
                started_ms: now_ms(),
                holder: holder.to_owned(),
                deployment: deployment.map(str::to_owned),
                parallelism,
            };
            let bytes = serde_json::to_vec_pretty(&claim).expect("claims serialize");
            match self
                .location
                .put_new(&format!("{ATTEMPTS}/{:020}", claim.attempt), bytes.into())
                .await
            {
                Ok(()) => {
                    self.seal_leftovers(&claim, restored_latest).await?;
                    return Ok(claim);
                }
                Err(StorageError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Seals every checkpoint below `claim`'s first that earlier attempts left without a
    /// manifest, newest first down to the newest complete one. Refuses the claim when its
    /// run restored a checkpoint of this directory older than one that a stale writer
    /// committed in the meantime: one whose manifest won the race against the seal, or —
    /// when the run took the newest (`restored_latest`) — any newer complete one.
    async fn seal_leftovers(
        &self,
        claim: &Attempt,
        restored_latest: bool,
    ) -> Result<(), StorageError> {
        let attempts = self.attempts().await?;
        let mut newest_complete = None;
        let mut raced = false;
        for id in self.checkpoint_numbers().await? {
            if id >= claim.first_checkpoint {
                // Numbered after the claim's listing: fenced by its number already.
                continue;
            }
            match self.state(id, &attempts).await? {
                CheckpointState::Incomplete => {
                    let seal = Seal {
                        sealed_by: claim.attempt,
                        sealed_ms: now_ms(),
                    };
                    let bytes = serde_json::to_vec(&seal).expect("seals serialize");
                    match self
                        .location
                        .put_new(&format!("chk-{id}/{MANIFEST}"), bytes.into())
                        .await
                    {
                        Ok(()) => {}
                        // Its writer committed it just now: it is complete.
                        Err(StorageError::AlreadyExists { .. }) => {
                            if matches!(
                                self.state(id, &attempts).await?,
                                CheckpointState::Complete { .. }
                            ) {
                                newest_complete = Some(id);
                                raced = true;
                                break;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                CheckpointState::Complete { .. } => {
                    newest_complete = Some(id);
                    break;
                }
                _ => {}
            }
        }
        let restored = claim
            .restored_from
            .as_deref()
            .and_then(|url| url.strip_prefix(self.location.url()))
            .and_then(|rest| checkpoint_number(rest.trim_matches('/')));
        if let (Some(restored), Some(newest)) = (restored, newest_complete)
            && newest > restored
            && (raced || restored_latest)
        {
            return Err(StorageError::StaleRestore {
                url: self.location.url().to_owned(),
                restored,
                newest,
            });
        }
        Ok(())
    }

    /// Fails with [`StorageError::Fenced`] if an attempt newer than `attempt` has claimed
    /// the directory.
    pub async fn check_fence(&self, attempt: u64) -> Result<(), StorageError> {
        if let Some(newer) = self.attempts().await?.iter().find(|a| a.attempt > attempt) {
            return Err(StorageError::Fenced {
                url: self.location.url().to_owned(),
                attempt,
                newer: newer.attempt,
            });
        }
        Ok(())
    }

    /// Commits checkpoint `id` of `attempt`: its data files are written (under
    /// [`data_dir`]`(attempt)`); this checks the fence and creates the manifest if absent.
    pub async fn commit(&self, id: u64, attempt: u64, manifest: Bytes) -> Result<(), StorageError> {
        self.check_fence(attempt).await?;
        self.location
            .put_new(&format!("chk-{id}/{MANIFEST}"), manifest)
            .await
    }

    /// What `chk-N` directory `id` holds, judged against `attempts`.
    pub async fn state(
        &self,
        id: u64,
        attempts: &[Attempt],
    ) -> Result<CheckpointState, StorageError> {
        let dir = format!("chk-{id}");
        if self.location.exists(&format!("{dir}/{DISCARDED}")).await? {
            return Ok(CheckpointState::Discarded);
        }
        let Some(bytes) = self.location.get(&format!("{dir}/{MANIFEST}")).await? else {
            return Ok(CheckpointState::Incomplete);
        };
        if let Ok(seal) = serde_json::from_slice::<Seal>(&bytes) {
            return Ok(CheckpointState::Sealed { by: seal.sealed_by });
        }
        let head: ManifestHead = match serde_json::from_slice(&bytes) {
            Ok(h) => h,
            Err(e) => return Ok(CheckpointState::Damaged(e.to_string())),
        };
        Ok(match fenced_by(attempts, head.attempt, id) {
            Some(by) => CheckpointState::Fenced {
                attempt: head.attempt,
                by,
            },
            None => CheckpointState::Complete {
                attempt: head.attempt,
            },
        })
    }

    /// The newest complete (unfenced, not being deleted) checkpoint, if any; reads manifests
    /// newest first and stops at the first complete one.
    pub async fn latest_complete(&self) -> Result<Option<u64>, StorageError> {
        let attempts = self.attempts().await?;
        for id in self.checkpoint_numbers().await? {
            if matches!(
                self.state(id, &attempts).await?,
                CheckpointState::Complete { .. }
            ) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The newest complete checkpoint written by a run of `deployment`, if any.
    pub async fn latest_of_deployment(
        &self,
        deployment: &str,
    ) -> Result<Option<u64>, StorageError> {
        let attempts = self.attempts().await?;
        let ours: Vec<u64> = attempts
            .iter()
            .filter(|a| a.deployment.as_deref() == Some(deployment))
            .map(|a| a.attempt)
            .collect();
        if ours.is_empty() {
            return Ok(None);
        }
        for id in self.checkpoint_numbers().await? {
            if let CheckpointState::Complete { attempt } = self.state(id, &attempts).await?
                && ours.contains(&attempt)
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Every `chk-N` directory and what it holds, highest first.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointEntry>, StorageError> {
        let attempts = self.attempts().await?;
        let mut out = Vec::new();
        for id in self.checkpoint_numbers().await? {
            out.push(CheckpointEntry {
                id,
                state: self.state(id, &attempts).await?,
            });
        }
        Ok(out)
    }
}

/// The attempt that fences checkpoint `id` written by `attempt`, if any: a later attempt
/// whose first checkpoint is at or below `id`.
pub fn fenced_by(attempts: &[Attempt], attempt: u64, id: u64) -> Option<u64> {
    attempts
        .iter()
        .find(|a| a.attempt > attempt && a.first_checkpoint <= id)
        .map(|a| a.attempt)
}

#[cfg(test)]
mod tests {
    use super::JobDirs;

    #[test]
    fn a_jobs_directories_sit_under_its_namespace_and_name() {
        let dirs = JobDirs::new("s3://state/", "payments", "fraud");
        assert_eq!(dirs.checkpoints(), "s3://state/payments/fraud/checkpoints");
        assert_eq!(dirs.savepoints(), "s3://state/payments/fraud/savepoints");
        assert_eq!(
            dirs.savepoint(3),
            "s3://state/payments/fraud/savepoints/sp-3"
        );
    }
}
