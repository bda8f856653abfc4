//! The vault core: the only place that decides who may do what. It owns authentication (`auth`),
//! administration (`admin`), the per-user namespace and file operations (`session`), encrypted
//! transfers (`transfer`), the second factor (`mfa`), API tokens (`tokens`), and what operators watch
//! (`monitor`: audit search, active sessions, metrics). Protocol doors translate their wire format
//! into calls on this API and never touch the store, the blobs or the keys themselves.
//!
//! The API is synchronous (SQLite and positional file I/O block); async doors call it from blocking
//! threads.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lockbox_audit::{AuditLog, Event};
use lockbox_crypto::{KeyProvider, LocalKeyFile};
use lockbox_store::{BlobStore, LocalBlobStore, SqliteStore};

pub mod admin;
pub mod auth;
pub mod backup;
pub mod config;
mod content;
pub mod error;
pub mod export;
pub mod inventory;
pub mod keys;
pub mod mfa;
pub mod monitor;
pub mod session;
pub mod storage;
pub mod tokens;
pub mod transfer;

pub use admin::AdminActor;
pub use auth::{Credential, LoginAttempt, PendingLogin, Principal, Refusal, Verdict};
pub use config::{AuthPolicy, StoragePolicy, VaultConfig};
pub use error::{ErrorKind, Result, VaultError};
pub use lockbox_audit::{Action, AuditError, Outcome, VerifyReport};
pub use mfa::{base32_decode, totp_code, TotpEnrollment};
pub use monitor::{ActiveSession, AuditQuery, AuditRecordView, Metrics, MetricsSnapshot};
pub use session::{Entry, EntryKind, OpenMode, Session};
pub use storage::StorageStatus;
pub use tokens::{TokenInfo, TokenScopes};
pub use transfer::{check_write_extent, ReadHandle, WriteHandle};

/// The home folder's name as every user sees it.
pub const HOME_MOUNT: &str = "home";

pub(crate) struct Inner {
    pub(crate) config: VaultConfig,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) audit: AuditLog,
    pub(crate) throttle: auth::SourceThrottle,
    /// Uploads currently open for writing (see `transfer::UploadLease`).
    /// Staging uploads open for writing in this process, by blob id: random per upload and never
    /// reused, unlike a row id.
    pub(crate) open_uploads: std::sync::Mutex<std::collections::HashSet<lockbox_store::BlobId>>,
    /// Bounds concurrent Argon2 verifications (19 MiB each) so a login flood cannot exhaust memory.
    pub(crate) hashing: auth::HashingSlots,
    /// HMAC key for the inventory's person fingerprints, derived from the key provider (never a file
    /// key), so fingerprints cannot be brute-forced from the database alone.
    pub(crate) fingerprint_key: [u8; 32],
    /// Seals TOTP secrets at rest (`totp-secret-v1`).
    pub(crate) totp_key: [u8; 32],
    /// MACs recovery codes (`recovery-code-v1`), so stored codes cannot be used or guessed offline.
    pub(crate) recovery_key: [u8; 32],
    /// Sessions open in this process, by session id (for the operators' view).
    pub(crate) sessions: std::sync::Mutex<std::collections::HashMap<String, ActiveSession>>,
    pub(crate) metrics: Metrics,
    pub(crate) storage: storage::Storage,
}

/// A handle on the vault; cheap to clone, shared by all doors and sessions.
#[derive(Clone)]
pub struct Vault {
    pub(crate) inner: Arc<Inner>,
}

/// What `Vault::open` created on first run, for the operator's benefit.
#[derive(Debug, Default)]
pub struct OpenReport {
    pub created_data_dir: bool,
    pub created_key_file: bool,
}

fn is_inside(child: &Path, parent: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let child = match child.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            canon(dir).join(child.file_name().unwrap_or_default())
        }
        _ => canon(Path::new(".")).join(child),
    };
    child.starts_with(canon(parent))
}

/// The `meta` row holding the check value of the data directory's key-encryption key.
pub(crate) const KEK_CHECK: &str = "kek_check";

/// A check value of the key-encryption key: 16 bytes of an HMAC under a key derived from it for
/// this purpose only, so it identifies the key without revealing anything usable about it.
pub(crate) fn kek_check(keys: &dyn KeyProvider) -> Result<String> {
    Ok(check_value(&keys.wrapping_check_key()?))
}

/// The check value of the wrapping key a rotation is retiring, if one is under way.
pub(crate) fn previous_kek_check(keys: &dyn KeyProvider) -> Result<Option<String>> {
    Ok(keys.previous_check_key()?.map(|k| check_value(&k)))
}

fn check_value(k: &[u8; 32]) -> String {
    let mac = lockbox_crypto::hmac_sha256(k, b"lockbox key-encryption key check");
    hex::encode(mac.get(..16).unwrap_or_default())
}

impl Vault {
    /// Opens (creating on first run) the data directory and the key file.
    pub fn open(config: VaultConfig) -> Result<(Vault, OpenReport)> {
        let mut report = OpenReport::default();
        if !config.data_dir.exists() {
            // Owner-only: the directory holds user names, audit records and inventory fingerprints.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o700,
            )
            .create(&config.data_dir)
            .map_err(|e| {
                VaultError::Config(format!(
                    "cannot create data directory {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            report.created_data_dir = true;
        }
        if is_inside(&config.key_file, &config.data_dir) {
            return Err(VaultError::Config(format!(
                "the key file {} is inside the data directory {}; keep it elsewhere so the data alone is useless",
                config.key_file.display(),
                config.data_dir.display()
            )));
        }
        let db_path = config.data_dir.join("lockbox.db");
        // The key is opened without being created: whether a new one may be made depends on
        // what the data directory already holds.
        let existing_key = match LocalKeyFile::open(&config.key_file) {
            Ok(k) => Some(k),
            Err(lockbox_crypto::CryptoError::KeyFileIo { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        let store = Arc::new(SqliteStore::open(&db_path)?);
        let recorded = store.meta(KEK_CHECK)?;
        let keys = match existing_key {
            Some(k) => k,
            None => {
                if recorded.is_some() || store.holds_data()? {
                    return Err(VaultError::Config(format!(
                        "the key file {} does not exist, but the data directory {} holds data encrypted under a \
                         key-encryption key (check value {}). Restore that key file from its backup (or point \
                         --key-file / LOCKBOX_KEY_FILE at it); a new key would make every stored file unreadable, \
                         so none is created over existing data",
                        config.key_file.display(),
                        config.data_dir.display(),
                        recorded.as_deref().unwrap_or("not recorded")
                    )));
                }
                let (k, created) = LocalKeyFile::open_or_create(&config.key_file)?;
                report.created_key_file = created;
                k
            }
        };
        let check = kek_check(&keys)?;
        // A rotation cut between writing the key file and recording its new check value leaves
        // the old value recorded; the file then still holds that key as its previous one.
        let previous = previous_kek_check(&keys)?;
        match recorded {
            Some(r) if r != check && previous.as_deref() != Some(r.as_str()) => {
                return Err(VaultError::Config(format!(
                    "the key file {} is not the key of the data directory {}: the key's check value is {check}, \
                     the data was written under a key with check value {r}. Start with the key file this data \
                     directory was created with (restore it from its backup); nothing was changed",
                    config.key_file.display(),
                    config.data_dir.display()
                )));
            }
            Some(_) => {}
            None => {
                // A data directory from before check values (or its first start): the key must
                // open what is already stored before it is recorded as this directory's key.
                if let Some((wrapped, blob)) = store.any_wrapped_key()? {
                    let opens = lockbox_crypto::WrappedKey::from_bytes(&wrapped)
                        .and_then(|w| keys.unwrap(&w, &blob))
                        .is_ok();
                    if !opens {
                        return Err(VaultError::Config(format!(
                            "the key file {} does not open the data keys stored in {}; start with the key \
                             file this data directory was created with; nothing was changed",
                            config.key_file.display(),
                            config.data_dir.display()
                        )));
                    }
                }
                store.set_meta(KEK_CHECK, &check)?;
            }
        }
        // SQLite creates the database (and its -wal/-shm files) with the umask's mode; the metadata
        // is for the server's owner only.
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db_path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .map_err(|e| VaultError::Config(format!("cannot restrict {}: {e}", p.display())))?;
            }
        }
        let blobs: Arc<dyn BlobStore> =
            Arc::new(LocalBlobStore::open(&config.data_dir.join("blobs"))?);
        let audit = AuditLog::new(store.clone());
        let storage = storage::Storage::open(
            &config.data_dir,
            config.storage.min_free_bytes,
            config.storage.audit_reserve_bytes,
        );
        let fingerprint_key = keys.derive_key("inventory-fingerprint-v1")?;
        let totp_key = keys.derive_key("totp-secret-v1")?;
        let recovery_key = keys.derive_key("recovery-code-v1")?;
        let inner = Inner {
            fingerprint_key,
            totp_key,
            recovery_key,
            sessions: Default::default(),
            metrics: Metrics::default(),
            config,
            store,
            blobs,
            keys: Arc::new(keys),
            audit,
            throttle: auth::SourceThrottle::default(),
            open_uploads: Default::default(),
            hashing: auth::HashingSlots::new(),
            storage,
        };
        Ok((
            Vault {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    pub fn key_description(&self) -> String {
        self.inner.keys.describe()
    }

    pub fn database_path(&self) -> PathBuf {
        self.inner.config.data_dir.join("lockbox.db")
    }

    /// Records an audit event. Failing to audit is logged loudly; callers that must not proceed
    /// without a record use [`Vault::audit_strict`].
    pub(crate) fn audit(&self, ev: Event) {
        if let Err(e) = self.audit_strict(ev) {
            tracing::error!(error = %e, "AUDIT WRITE FAILED");
        }
    }

    /// Appends to the audit log. A disk found full releases the audit reserve and tries once
    /// more, so the evidence is written when nothing else can be.
    pub(crate) fn audit_strict(&self, ev: Event) -> Result<()> {
        match self.inner.audit.record(ev.clone()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = VaultError::from(e);
                if e.is_storage_low() && self.release_audit_reserve() {
                    self.inner.audit.record(ev)?;
                    return Ok(());
                }
                Err(e)
            }
        }
    }

    /// Records an event raised by a door (session start/end, server start).
    pub fn record(&self, ev: Event) -> Result<()> {
        self.audit_strict(ev)
    }

    /// Records an event raised by a door where failing to record must not fail the caller (the
    /// failure is logged).
    pub fn record_quietly(&self, ev: Event) {
        self.audit(ev)
    }

    /// Removes ciphertext whose key was already destroyed in a committed transaction. A failure here
    /// leaves only unreadable bytes, so it is logged, not reported to the client.
    pub(crate) fn remove_blob_after_commit(&self, blob: lockbox_store::BlobId) {
        if let Err(e) = self.inner.blobs.remove(blob) {
            tracing::warn!(error = %e, blob = %blob.hex(), "could not remove the ciphertext of a deleted file version");
        }
    }

    pub fn audit_verify(&self) -> Result<VerifyReport> {
        Ok(self.inner.audit.verify()?)
    }

    pub fn audit_export_jsonl(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        Ok(self.inner.audit.export_jsonl(out)?)
    }
}

pub use lockbox_audit::Event as AuditEvent;
