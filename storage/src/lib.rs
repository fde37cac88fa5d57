//! Where Strom keeps checkpoints and savepoints: `s3://`, `gs://`, `az://`/`abfs[s]://` and
//! `file://` locations through `object_store` ([`Location`]), and the snapshot-directory
//! protocol on top ([`layout`]): create-if-absent commits, attempt fencing, crash-safe
//! deletion and retention. The engine writes and restores snapshots with it; the operator
//! disposes of savepoints with it.

pub mod layout;
mod location;
pub mod options;

pub use location::{Backend, Listed, Location, PART_SIZE, redact};
pub use options::StorageOptions;

/// What went wrong with storage. Messages name the location and never carry secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The URL cannot be opened.
    #[error("{url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A storage option is wrong.
    #[error("storage option {key}: {reason}")]
    Option {
        /// The option's key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Create-if-absent found something there.
    #[error("{url} already exists; it is not overwritten")]
    AlreadyExists {
        /// The object's URL.
        url: String,
    },
    /// A newer attempt of the job owns the checkpoint directory.
    #[error(
        "{url}: attempt {attempt} of this job is fenced out: attempt {newer} has taken over the checkpoint directory, so this one may not commit"
    )]
    Fenced {
        /// The checkpoint directory.
        url: String,
        /// The writer's attempt.
        attempt: u64,
        /// The newer attempt.
        newer: u64,
    },
    /// An object holds something unreadable.
    #[error("{url} {reason}")]
    Damaged {
        /// The object's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A run restored a checkpoint, and a newer one of the same directory completed before
    /// the run claimed it: the run must start again from the newer one.
    #[error(
        "{url}: this run restored chk-{restored}, but chk-{newest} completed (by an earlier run's writer) before this run took over; start again to restore chk-{newest}"
    )]
    StaleRestore {
        /// The checkpoint directory.
        url: String,
        /// The checkpoint the run restored.
        restored: u64,
        /// The newer complete checkpoint.
        newest: u64,
    },
    /// The store cannot write create-if-absent, which checkpoints need.
    #[error(
        "{url}: this store does not support create-if-absent writes (a conditional PUT), which checkpoints and savepoints need so that two writers can never both commit; use a store that does (S3, GCS, Azure Blob, MinIO and local files do) or remove the option that disables them (conditional_put)"
    )]
    NoCreateIfAbsent {
        /// The object's URL.
        url: String,
    },
    /// A request failed (after the retries the options allow).
    #[error("cannot {op} {url}: {reason}")]
    Io {
        /// What was being done.
        op: String,
        /// The object's URL.
        url: String,
        /// The store's answer, with secrets removed.
        reason: String,
    },
}

/// Runs `future` to completion from synchronous code (the engine's coordinator thread) on a
/// runtime shared by every location. Must not be called from inside an async task.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("strom-storage")
                .enable_all()
                .build()
                .expect("the storage runtime starts")
        })
        .block_on(future)
}
