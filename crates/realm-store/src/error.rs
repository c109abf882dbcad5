//! Errors: opening and loading ([`StoreError`]), queueing a batch
//! ([`SubmitError`]) and the outcome of a commit ([`CommitError`]).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::Kind;

/// A store operation failed. Opening never panics and never deletes a
/// readable store: every case it cannot recover from safely is one of these.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store's directory does not exist (the store creates its file, never
    /// directories: a missing directory is a configuration error).
    #[error("store directory {dir} does not exist")]
    MissingDirectory {
        /// The directory that should hold the store.
        dir: PathBuf,
    },
    /// The store path exists but is not a regular file (a directory, say).
    #[error("store path {path} exists but is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Another connection (another gateway process, or another [`crate::Store`]
    /// in this one) holds the store's lock. Nothing was moved or changed.
    #[error("store {path} is locked by another process (is another gateway running?)")]
    Locked {
        /// The path.
        path: PathBuf,
    },
    /// SQLite refused an operation (I/O error, disk full, read-only file...).
    #[error("store: {context}: {source}")]
    Sqlite {
        /// What the store was doing.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file operation failed (moving a corrupt store aside, syncing the
    /// directory, the allocation log).
    #[error("store: {context} {path}: {source}")]
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A stored value does not decode as the requested type (the row is kept;
    /// [`crate::Store::load_all`] still returns its bytes).
    #[error("store: {kind} {id} does not decode: {source}")]
    Decode {
        /// The row's kind.
        kind: Kind,
        /// The row's ID.
        id: u64,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A value does not encode (a serializer error: never for the record types
    /// of `realm-lease`).
    #[error("store: value for {kind} {id} does not encode: {source}")]
    Encode {
        /// The row's kind.
        kind: Kind,
        /// The row's ID.
        id: u64,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The writer thread has stopped (after [`crate::Store::close`], or it
    /// could not be started).
    #[error("store writer has stopped")]
    Closed,
}

impl StoreError {
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { context, source }
    }

    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            context,
            path,
            source,
        }
    }
}

/// A queued batch did not become durable. Every batch of the failed
/// transaction gets the same error; none of its rows were written.
#[derive(Clone, Debug, Error)]
pub enum CommitError {
    /// The transaction failed (I/O error, disk full...). The writer goes on
    /// with the next batches.
    #[error("store commit failed: {0}")]
    Failed(Arc<StoreError>),
    /// The writer stopped before the batch was committed (it is not in the
    /// store).
    #[error("store writer stopped before the commit")]
    Closed,
}
