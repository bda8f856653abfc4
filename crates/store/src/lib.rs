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
pub use sqlite::{join_rel, SqliteStore};

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
