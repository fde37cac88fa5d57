//! Retention and crash-safe deletion: which checkpoints and savepoints are kept, and how a
//! snapshot directory goes without ever leaving a partial snapshot a reader could take.

use bytes::Bytes;

use super::{
    CheckpointDir, CheckpointEntry, CheckpointState, DISCARDED, MANIFEST, ManifestHead,
    checkpoint_number, data_dir,
};
use crate::{Location, StorageError};

impl CheckpointDir {
    /// Keeps the newest `keep` complete checkpoints and those in `protected` (the one the
    /// job restored from; a rollback's); discards the other complete ones, every incomplete
    /// or fenced one older than the newest complete, and finishes interrupted deletions.
    /// Returns the numbers discarded.
    pub async fn retain(&self, keep: usize, protected: &[u64]) -> Result<Vec<u64>, StorageError> {
        let attempts = self.attempts().await?;
        // The newest attempt's restore source, when it is in this directory, is protected
        // whatever the caller says.
        let restored = attempts
            .last()
            .and_then(|a| a.restored_from.as_deref())
            .and_then(|url| url.strip_prefix(self.location.url()))
            .and_then(|rest| checkpoint_number(rest.trim_matches('/')));
        let mut protected = protected.to_vec();
        protected.extend(restored);
        let mut entries = Vec::new();
        for id in self.checkpoint_numbers().await? {
            entries.push(CheckpointEntry {
                id,
                state: self.state(id, &attempts).await?,
            });
        }
        let newest_complete = entries
            .iter()
            .find(|e| matches!(e.state, CheckpointState::Complete { .. }))
            .map(|e| e.id);
        let mut kept = 0;
        let mut discarded = Vec::new();
        for e in &entries {
            let drop = match &e.state {
                CheckpointState::Complete { attempt } => {
                    kept += 1;
                    if kept > keep.max(1) && !protected.contains(&e.id) {
                        true
                    } else {
                        // A complete checkpoint is kept; leftovers of writers that lost
                        // the commit go.
                        self.sweep_losers(e.id, *attempt).await?;
                        false
                    }
                }
                CheckpointState::Discarded => true,
                CheckpointState::Incomplete
                | CheckpointState::Sealed { .. }
                | CheckpointState::Fenced { .. }
                | CheckpointState::Damaged(_) => {
                    newest_complete.is_some_and(|n| e.id < n) && !protected.contains(&e.id)
                }
            };
            if drop {
                discard(&self.location, &format!("chk-{}", e.id)).await?;
                discarded.push(e.id);
            }
        }
        Ok(discarded)
    }

    /// Deletes the data directories inside committed `chk-id` that are not the committer's.
    async fn sweep_losers(&self, id: u64, attempt: u64) -> Result<(), StorageError> {
        let dir = format!("chk-{id}");
        let mine = data_dir(attempt);
        for sub in self.location.dirs(&dir).await? {
            if sub != mine && sub.starts_with('a') && sub[1..].parse::<u64>().is_ok() {
                self.location
                    .delete_all_under(&format!("{dir}/{sub}"), None)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Deletes snapshot directory `dir` inside `location`, crash-safely: mark it discarded (from
/// here on no reader uses it), delete its manifest, delete its data, delete the mark. A crash
/// at any step leaves the mark, and the next [`CheckpointDir::retain`] or
/// [`retain_savepoints`] finishes the job.
pub async fn discard(location: &Location, dir: &str) -> Result<(), StorageError> {
    let mark = format!("{dir}/{DISCARDED}");
    location.put(&mark, Bytes::from_static(b"")).await?;
    location.delete(&format!("{dir}/{MANIFEST}")).await?;
    location.delete_all_under(dir, Some(&mark)).await?;
    location.delete(&mark).await?;
    location.delete_all_under(dir, None).await
}

/// How many savepoints to keep, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavepointPolicy {
    /// Keep at most this many (newest first).
    pub max_count: usize,
    /// Dispose of those older than this (ms); `None`: no age limit.
    pub max_age_ms: Option<i64>,
}

/// A savepoint found in a savepoints directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavepointEntry {
    /// Its URL.
    pub url: String,
    /// Its directory name.
    pub name: String,
    /// When it completed (epoch ms).
    pub completed_ms: i64,
}

/// Applies `policy` to the savepoints directly inside `parent` (each a directory with a
/// manifest): the newest `max_count` younger than `max_age` stay, and every savepoint whose
/// URL is in `protected` (the one the job restored from, the one a rollback would need)
/// stays whatever its age. Finishes interrupted deletions too. Directories without a
/// manifest are left alone: they may be savepoints still being written. Returns the
/// savepoints disposed of.
pub async fn retain_savepoints(
    parent: &Location,
    policy: &SavepointPolicy,
    protected: &[String],
    now_ms: i64,
) -> Result<Vec<SavepointEntry>, StorageError> {
    let mut found = Vec::new();
    for name in parent.dirs("").await? {
        if parent.exists(&format!("{name}/{DISCARDED}")).await? {
            discard(parent, &name).await?;
            continue;
        }
        let Some(bytes) = parent.get(&format!("{name}/{MANIFEST}")).await? else {
            continue;
        };
        let Ok(head) = serde_json::from_slice::<ManifestHead>(&bytes) else {
            continue;
        };
        found.push(SavepointEntry {
            url: parent.url_of(&name),
            name,
            completed_ms: head.completed_ms,
        });
    }
    found.sort_by(|a, b| {
        b.completed_ms
            .cmp(&a.completed_ms)
            .then(b.name.cmp(&a.name))
    });
    let mut disposed = Vec::new();
    for (i, sp) in found.into_iter().enumerate() {
        let too_many = i >= policy.max_count.max(1);
        let too_old = policy
            .max_age_ms
            .is_some_and(|age| now_ms - sp.completed_ms > age);
        if (too_many || too_old) && !protected.contains(&sp.url) {
            discard(parent, &sp.name).await?;
            disposed.push(sp);
        }
    }
    Ok(disposed)
}
