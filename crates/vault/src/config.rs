//! Vault configuration: where things live and the security policy knobs, with defaults that are safe
//! without any configuration.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Holds the SQLite database and the blob directory.
    pub data_dir: PathBuf,
    /// The key-encryption key file; must not be inside `data_dir`, so a copy of the data directory
    /// alone (a backup, a stolen disk image) is ciphertext without its key.
    pub key_file: PathBuf,
    pub auth: AuthPolicy,
    pub storage: StoragePolicy,
}

/// Free-space rules for the data directory's filesystem.
#[derive(Debug, Clone)]
pub struct StoragePolicy {
    /// Uploads are refused (at open, and as they arrive) while less than this is free, so uploads
    /// never fill the disk and everything else keeps working. 0 turns the floor off.
    pub min_free_bytes: u64,
    /// Space held in reserve for the audit log (released only when a write finds the disk full).
    pub audit_reserve_bytes: u64,
}

impl Default for StoragePolicy {
    fn default() -> Self {
        StoragePolicy {
            min_free_bytes: 512 * 1024 * 1024,
            audit_reserve_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Login throttling and lockout.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Failed logins in a row that lock an account. 5 stops online guessing while tolerating typos.
    pub lockout_threshold: i64,
    /// How long a locked account stays locked unless an admin unlocks it.
    pub lockout_duration: Duration,
    /// Failed logins from one source address within `source_window` before that address is refused.
    /// Higher than the per-account threshold because NAT puts many honest users behind one address.
    pub source_failure_limit: u32,
    pub source_window: Duration,
    /// How long a throttled source is refused.
    pub source_block: Duration,
    /// Shortest acceptable password.
    pub min_password_len: usize,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            source_failure_limit: 20,
            source_window: Duration::from_secs(5 * 60),
            source_block: Duration::from_secs(5 * 60),
            min_password_len: 12,
        }
    }
}
