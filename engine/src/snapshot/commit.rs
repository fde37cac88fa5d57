//! Making what sinks staged visible: part files renamed, Kafka transactions committed —
//! when a snapshot completes, and again (idempotently) when a job restores from it — and
//! the [`COMMITTED`] marker that says a snapshot's Kafka transactions all are.

use super::storage::Storage;
use super::{COMMITTED, Commit, Metadata};
use crate::Error;
use crate::io::kafka::transactions::Transactions;

/// Makes what sinks staged visible: renames staged part files and commits Kafka
/// transactions (idempotent: what is already committed is left alone). Everything is tried;
/// what cannot be committed stays staged, and the error names each, so that the caller
/// fails its checkpoint (or restore) and tries it again.
pub fn commit_all<'a>(
    commits: impl Iterator<Item = &'a Commit>,
    transactions: &Transactions,
) -> Result<(), Error> {
    let mut failed = Vec::new();
    for commit in commits {
        match commit {
            Commit::File(staged) => {
                let staged = std::path::Path::new(staged);
                if let Some(done) = committed_name(staged)
                    && staged.exists()
                    && let Err(e) = std::fs::rename(staged, &done)
                {
                    failed.push(format!("{} → {}: {e}", staged.display(), done.display()));
                }
            }
            Commit::Kafka {
                kafka_transaction,
                checkpoint,
                producer_id,
                producer_epoch,
            } => {
                let producer = producer_id.zip(*producer_epoch);
                if let Err(e) = transactions.commit(kafka_transaction, *checkpoint, producer) {
                    failed.push(format!("Kafka transaction {kafka_transaction}: {e}"));
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Io(format!(
            "cannot make sink output visible (it stays staged and is committed again): {}",
            failed.join("; ")
        )))
    }
}

/// Commits again what a restored snapshot `meta` names (idempotent). A snapshot marked
/// committed ([`COMMITTED`]) has no Kafka transaction left to resume, and the ids it names
/// may hold later transactions by now (the new run fences them): only its part files.
pub fn commit_restored(meta: &Metadata, transactions: &Transactions) -> Result<(), Error> {
    let marked = meta.transactions_committed;
    commit_all(
        meta.commits
            .iter()
            .filter(|c| !(marked && matches!(c, Commit::Kafka { .. }))),
        transactions,
    )
}

/// The visible name of a staged part file: `.part-x.csv.inprogress` → `part-x.csv`.
pub fn committed_name(staged: &std::path::Path) -> Option<std::path::PathBuf> {
    let name = staged.file_name()?.to_str()?;
    let visible = name.strip_prefix('.')?.strip_suffix(".inprogress")?;
    Some(staged.with_file_name(visible))
}

/// Writes the [`COMMITTED`] marker beside `_metadata`: in checkpoint `id` of `checkpoints`
/// and in `savepoint`, where given.
pub fn mark_committed(
    checkpoints: Option<(&Storage, u64)>,
    savepoint: Option<&Storage>,
) -> Result<(), Error> {
    let marker: bytes::Bytes = b"every Kafka transaction of this snapshot is committed\n"
        .to_vec()
        .into();
    if let Some((storage, id)) = checkpoints {
        storage.put_all(&[(format!("chk-{id}/{COMMITTED}"), marker.clone())])?;
    }
    if let Some(target) = savepoint {
        target.put_all(&[(COMMITTED.to_owned(), marker)])?;
    }
    Ok(())
}
