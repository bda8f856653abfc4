//! What the exposure report needs from the vault, and nothing more: read access to the metadata store
//! and the audit log for its bulk queries, the plaintext of a committed file version whose key still
//! exists (to re-extract the mailing list of affected people), and the inventory's fingerprint key
//! (as a `Fingerprinter`, never the raw key) to match re-extracted people to stored fingerprints.
//!
//! Reading through this API is an administrative act: the caller (the `lockbox exposure` command)
//! records the report run in the audit log.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use lockbox_audit::AuditLog;
use lockbox_crypto::EncryptedReader;
use lockbox_inventory::Fingerprinter;
use lockbox_store::SqliteStore;
use lockbox_types::FileId;

use crate::error::{Result, VaultError};
use crate::Vault;

/// Sequential plaintext of one committed file version.
pub struct FileVersionReader {
    reader: EncryptedReader<File>,
    offset: u64,
}

impl FileVersionReader {
    pub fn len(&self) -> u64 {
        self.reader.plain_len()
    }

    pub fn is_empty(&self) -> bool {
        self.reader.plain_len() == 0
    }
}

impl Read for FileVersionReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .reader
            .read_at(self.offset, buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.offset += n as u64;
        Ok(n)
    }
}

impl Vault {
    /// The plaintext of a committed file version (live or not) whose data key still exists. A deleted
    /// version's key was destroyed (crypto-shredding): that is reported as `NotFound`.
    pub fn open_file_version(&self, file: FileId) -> Result<FileVersionReader> {
        let row = self
            .inner
            .store
            .file_by_id(file)?
            .ok_or_else(|| VaultError::NotFound(format!("file #{}", file.0)))?;
        let wrapped = row.wrapped_key.as_deref().ok_or_else(|| {
            VaultError::NotFound(format!(
                "file #{}: its key was destroyed when it was deleted",
                file.0
            ))
        })?;
        let key = self.inner.keys.unwrap(
            &lockbox_crypto::WrappedKey::from_bytes(wrapped)?,
            &row.blob_id.0,
        )?;
        let blob = self.inner.blobs.open_read(row.blob_id)?;
        Ok(FileVersionReader {
            reader: EncryptedReader::new(blob, key, row.blob_id.0, row.size),
            offset: 0,
        })
    }

    /// Fingerprints people exactly as the inventory did when their files were stored.
    /// Fingerprints people of `org`'s files exactly as the inventory did.
    pub fn inventory_fingerprinter(&self, org: &str) -> Fingerprinter {
        Fingerprinter::scoped(self.inner.fingerprint_key, org)
    }

    /// The metadata store, for the exposure report's bulk read queries.
    pub fn report_store(&self) -> Arc<SqliteStore> {
        self.inner.store.clone()
    }

    /// The audit log (verification and recording of the report run).
    pub fn audit_log(&self) -> AuditLog {
        self.inner.audit.clone()
    }
}
