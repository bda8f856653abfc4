//! Key-encryption key rotation, and the lock that keeps one process at a time in charge of a
//! data directory.
//!
//! `rotate_key` (the CLI's `lockbox key-provider rotate`, with the server stopped): a new wrapping
//! key becomes current while the old one stays in the key file as `previous` (it still unwraps);
//! the new check value is recorded; every wrapped data key is re-wrapped under the new key in
//! batches (each its own transaction); once all are, the old key is dropped from the file. Cut at
//! any point, running it again continues where it stopped: the key file says a rotation is under
//! way, and re-wrapping is idempotent. Derived purpose keys (fingerprints, sealed TOTP secrets,
//! recovery codes) come from the key file's root, which is not rotated.

use std::path::{Path, PathBuf};

use lockbox_audit::{Action, Event, Outcome};
use lockbox_crypto::{LocalKeyFile, WrappedKey};
use lockbox_store::KeyTable;
use lockbox_types::Door;
use serde::Serialize;
use serde_json::json;

use crate::config::VaultConfig;
use crate::error::{Result, VaultError};
use crate::{Vault, KEK_CHECK};

/// Keys re-wrapped per transaction.
const BATCH: usize = 500;
const LOCK_FILE: &str = "lockbox.lock";

/// An exclusive lock on a data directory, held by `serve` and by a key rotation for as long as
/// they run (released when the process ends, however it ends).
pub struct DataDirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock, or says who holds it.
    pub fn acquire(data_dir: &Path, holder: &str) -> Result<DataDirLock> {
        let path = data_dir.join(LOCK_FILE);
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            0o600,
        )
        .open(&path)
        .map_err(|e| VaultError::Config(format!("cannot open {}: {e}", path.display())))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                VaultError::Config(format!(
                    "{} is in use by a running `lockbox serve` or key rotation; {holder} needs it to itself",
                    data_dir.display()
                ))
            },
        )?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    pub rewrapped_file_keys: u64,
    pub rewrapped_upload_keys: u64,
    /// The rotation continued one that had been cut.
    pub resumed: bool,
    pub old_check: String,
    pub new_check: String,
}

/// Rotates the key-encryption key of the data directory in `config` (see the module docs).
pub fn rotate_key(config: VaultConfig) -> Result<RotationReport> {
    let _lock = DataDirLock::acquire(&config.data_dir, "a key rotation")?;
    let key_file = config.key_file.clone();
    // Opening checks the key against the data directory first (also mid-rotation).
    let (vault, _) = Vault::open(config)?;
    let current = LocalKeyFile::open(&key_file)?;
    let resumed = current.rotating();
    let (keys, old_check) = if resumed {
        let old = crate::previous_kek_check(&current)?.unwrap_or_default();
        (current, old)
    } else {
        let old = crate::kek_check(&current)?;
        (current.begin_rotation()?, old)
    };
    let new_check = crate::kek_check(&keys)?;
    let store = &vault.inner.store;
    store.set_meta(KEK_CHECK, &new_check)?;
    vault.audit_strict(
        Event::new(Door::Cli, Action::KeyRotationStarted, Outcome::Ok)
            .actor("lockbox", "")
            .detail(json!({"old_check": old_check, "new_check": new_check, "resumed": resumed})),
    )?;
    let mut counts = [0u64; 2];
    for (i, table) in [KeyTable::Files, KeyTable::Uploads].into_iter().enumerate() {
        let mut after = 0i64;
        loop {
            let page = store.wrapped_keys_page(table, after, BATCH)?;
            let Some(last) = page.last().map(|(id, _, _)| *id) else {
                break;
            };
            let mut fresh = Vec::with_capacity(page.len());
            for (id, blob, wrapped) in &page {
                let w = WrappedKey::from_bytes(wrapped)?;
                let rewrapped = keys.rewrap(&w, &blob.0).map_err(|e| {
                    VaultError::Config(format!(
                        "a stored data key (row {id}) opens with neither the new nor the previous key: {e}"
                    ))
                })?;
                fresh.push((*id, rewrapped.to_vec()));
            }
            store.set_wrapped_keys(table, &fresh)?;
            if let Some(c) = counts.get_mut(i) {
                *c += fresh.len() as u64;
            }
            after = last;
        }
    }
    // Every key now opens under the new key alone: retire the old one.
    keys.finish_rotation()?;
    let [files, uploads] = counts;
    vault.audit_strict(
        Event::new(Door::Cli, Action::KeyRotated, Outcome::Ok)
            .actor("lockbox", "")
            .detail(json!({
                "old_check": old_check, "new_check": new_check,
                "rewrapped_file_keys": files, "rewrapped_upload_keys": uploads,
                "resumed": resumed,
            })),
    )?;
    Ok(RotationReport {
        rewrapped_file_keys: files,
        rewrapped_upload_keys: uploads,
        resumed,
        old_check,
        new_check,
    })
}
