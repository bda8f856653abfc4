//! Free space. Uploads are refused (at OPEN, and while they arrive) once the data directory's
//! filesystem has less than the configured floor free, so the disk never fills up from uploads and
//! sessions, listings, downloads and deletes keep working. The audit log keeps its own reserve: a
//! ballast file of zeros written at startup and removed the first time an audit write finds the
//! disk full (something else filled it), so evidence is never what fails first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Result, VaultError};
use crate::Vault;

/// Name of the ballast file inside the data directory.
pub const RESERVE_FILE: &str = "audit-reserve";

const MIB: u64 = 1024 * 1024;

pub(crate) struct Storage {
    floor: u64,
    reserve_path: PathBuf,
    reserve_size: u64,
    /// The reserve has been used (removed) since startup.
    reserve_used: AtomicBool,
}

/// What the storage looks like now, for `/readyz`, `/metrics` and the CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StorageStatus {
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// Uploads are refused below this.
    pub floor_bytes: u64,
    /// Free space is under the floor: uploads are refused.
    pub low: bool,
    /// Bytes set aside for the audit log (0 once used).
    pub audit_reserve_bytes: u64,
    /// The audit reserve had to be released because the disk filled up.
    pub audit_reserve_used: bool,
}

impl Storage {
    /// Sets up the floor and (re)writes the audit reserve to its full size. A disk too full to
    /// hold the reserve still starts (the reserve is then missing, which `status` reports).
    pub(crate) fn open(data_dir: &Path, floor: u64, reserve_size: u64) -> Storage {
        let reserve_path = data_dir.join(RESERVE_FILE);
        let s = Storage {
            floor,
            reserve_path,
            reserve_size,
            reserve_used: AtomicBool::new(false),
        };
        if let Err(e) = s.fill_reserve() {
            tracing::warn!(error = %e, path = %s.reserve_path.display(), "could not write the audit reserve");
            let _ = std::fs::remove_file(&s.reserve_path);
        }
        s
    }

    fn fill_reserve(&self) -> std::io::Result<()> {
        let have = std::fs::metadata(&self.reserve_path)
            .map(|m| m.len())
            .unwrap_or(0);
        if self.reserve_size == 0 {
            let _ = std::fs::remove_file(&self.reserve_path);
            return Ok(());
        }
        if have >= self.reserve_size {
            return Ok(());
        }
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().create(true).append(true),
            0o600,
        )
        .open(&self.reserve_path)?;
        // Real zeros, not a sparse file or a size: the blocks must be allocated to be released.
        let block = vec![0u8; MIB as usize];
        let mut left = self.reserve_size - have;
        while left > 0 {
            let n = left.min(MIB) as usize;
            f.write_all(block.get(..n).unwrap_or_default())?;
            left -= n as u64;
        }
        f.sync_all()
    }

    /// Frees the reserve; true when there was one to free.
    fn release(&self) -> bool {
        let existed = std::fs::metadata(&self.reserve_path).is_ok_and(|m| m.len() > 0);
        if existed && std::fs::remove_file(&self.reserve_path).is_ok() {
            self.reserve_used.store(true, Ordering::Release);
            return true;
        }
        false
    }

    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }
}

impl Vault {
    /// Free space against the floor, and the audit reserve.
    pub fn storage_status(&self) -> Result<StorageStatus> {
        let st = &self.inner.storage;
        let (free, total) = self.inner.blobs.space()?;
        let reserve = std::fs::metadata(&st.reserve_path)
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(StorageStatus {
            free_bytes: free,
            total_bytes: total,
            floor_bytes: st.floor,
            low: free < st.floor,
            audit_reserve_bytes: reserve,
            audit_reserve_used: st.reserve_used.load(Ordering::Acquire),
        })
    }

    /// Refuses an upload (or its next bytes) when free space is under the floor.
    pub(crate) fn check_space_for_upload(&self) -> Result<()> {
        let floor = self.inner.storage.floor();
        if floor == 0 {
            return Ok(());
        }
        let (free, _) = self.inner.blobs.space()?;
        if free < floor {
            // The figures are for the administrator (log, /metrics), not for every client.
            tracing::warn!(
                free_mib = free / MIB,
                floor_mib = floor / MIB,
                "upload refused: free space is under the floor"
            );
            return Err(VaultError::StorageLow(
                "server storage is low; uploads are refused until space is freed (downloads, \
                 listings and deletes still work)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The audit reserve gives way when the disk is full: frees it so the retry can be written.
    pub(crate) fn release_audit_reserve(&self) -> bool {
        let freed = self.inner.storage.release();
        if freed {
            tracing::error!(
                "the disk holding the data directory is full: released the audit reserve so audit \
                 records can still be written; free space now"
            );
        }
        freed
    }
}
