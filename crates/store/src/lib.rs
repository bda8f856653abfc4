//! Persistence for Lockbox: the metadata store (SQLite, embedded default) and the blob store (local disk).
//! Only the vault and the audit crate talk to this crate; protocol doors never do. Every SQL statement is a
//! string constant with bound parameters: no SQL text is ever built from data.
#![forbid(unsafe_code)]

mod blobs;
mod exposure;
mod rows;
mod schema;
mod sqlite;

pub use blobs::{BlobId, BlobStore, LocalBlobStore};
pub use exposure::{ExposureFileRow, ExposurePersonRef};
pub use rows::*;
pub use sqlite::{join_rel, KeyTable, SqliteStore, StagedBlob};

/// Errors from the metadata or blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("blob storage I/O error on {path}: {source}")]
    BlobIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("metadata database {path} was written by a newer Lockbox (schema {found}, this build knows {known})")]
    SchemaTooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether this failed because the filesystem is full (SQLite's SQLITE_FULL, or ENOSPC /
    /// EDQUOT on a blob).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::BlobIo { source, .. } => io_is_disk_full(source),
            _ => false,
        }
    }

    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict { what: what.into() }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Seconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// ENOSPC or EDQUOT (or the kinds std maps them to).
pub fn io_is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122))
        || matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
}
