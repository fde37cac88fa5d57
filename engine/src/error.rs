//! The engine's one error type: why a job could not be set up, start, run, or take or restore
//! a snapshot. Each variant says what a person reading it needs (the flag, the file, the
//! task); [`crate::runtime::TaskError`] is kept apart as the reason one task stopped, carried
//! by [`Error::Task`], because most stops are knock-on effects of another task's failure.

use strom_storage::StorageError;

use crate::runtime::TaskError;
use crate::spec::Violations;

/// Why the engine could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is wrong; every problem is listed with its path.
    #[error("the job spec is invalid:\n{0}")]
    Invalid(#[from] Violations),
    /// A command-line flag is wrong; the message names the flag.
    #[error("{0}")]
    Flag(String),
    /// A container of a deployment that was stopped with a savepoint started again
    /// (Kubernetes restarts exited containers of a StatefulSet): what follows belongs to
    /// whatever restores that savepoint, so this one must not run.
    #[error("deployment {deployment} was stopped with a savepoint at {at}; it does not run again")]
    Stopped {
        /// The deployment.
        deployment: String,
        /// Its final checkpoint.
        at: String,
    },
    /// State in the snapshot has no operator to go to.
    #[error(
        "the snapshot holds state that no operator of this job takes:\n{}\nrestore it into the job it was taken from, or allow non-restored state (--allow-non-restored-state) to drop it",
        .0.join("\n")
    )]
    Incompatible(Vec<String>),
    /// The snapshot's state could not be read into the operators.
    #[error("{0}")]
    Restore(String),
    /// A task failed.
    #[error("{vertex}[{subtask}]: {error}")]
    Task {
        /// Vertex name.
        vertex: String,
        /// Subtask.
        subtask: usize,
        /// What went wrong.
        error: TaskError,
    },
    /// The checkpoint coordinator failed.
    #[error("checkpoint-coordinator: {0}")]
    Coordinator(Box<Error>),
    /// The checkpoint coordinator's thread panicked.
    #[error("checkpoint-coordinator: panicked")]
    CoordinatorPanicked,
    /// The checkpoint directory could not be claimed for this run.
    #[error("checkpoint directory: {0}")]
    Claim(Box<Error>),
    /// A checkpoint (or the savepoint riding on it) did not complete in time.
    #[error("checkpoint {id} did not complete within {seconds} s")]
    CheckpointTimedOut {
        /// The checkpoint.
        id: u64,
        /// The time it had.
        seconds: u64,
    },
    /// A savepoint was asked of a job that is no longer running.
    #[error("the job {0}")]
    NotRunning(&'static str),
    /// A snapshot URL is not one the engine can open.
    #[error("{url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A file of a snapshot is missing or damaged.
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
    /// The store refused or failed (after its retries), or fenced this writer out.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A column whose Arrow type expressions cannot work with (an engine defect: every
    /// schema the planner makes is built from value types).
    #[error("column {column:?} has an unsupported type {data_type}")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: arrow::datatypes::DataType,
    },
    /// Reading or writing a local file failed.
    #[error("{0}")]
    Io(String),
    /// Kafka's brokers refused a request or could not be reached.
    #[error("{0}")]
    Kafka(String),
}

/// A result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
