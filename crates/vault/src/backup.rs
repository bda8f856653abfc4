//! Backups that restore, and a storage check.
//!
//! `backup_to` writes, while the server runs, a consistent copy of the metadata (one SQLite read
//! transaction, `VACUUM INTO`), the ciphertext of every file version it lists and the server's SSH
//! host key and HTTPS identity, with a manifest of SHA-256 digests (refused mid key rotation). Blobs stay ciphertext and the key file is never included. A version deleted
//! between the snapshot and its copy (its ciphertext already gone) is recorded in the copy as deleted,
//! with the deletion's time and user, so the backup never lists a file it cannot restore. Staged
//! uploads are left out. `restore` checks the manifest and the key's check value before it writes
//! anything, into an empty data directory only. `verify_storage` reads every live blob through
//! authenticated decryption into memory that is dropped (nothing decrypted reaches the disk) and
//! reports missing, wrong-sized, unauthentic and orphaned blobs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use lockbox_audit::{Action, Outcome};
use lockbox_crypto::{ciphertext_len, EncryptedReader, KeyProvider, LocalKeyFile, CHUNK_SIZE};
use lockbox_store::SqliteStore;
use lockbox_types::Door;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Result, VaultError};
use crate::Vault;

const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "lockbox-backup-v1";
const DB_FILE: &str = "lockbox.db";
/// A blob younger than this that nothing refers to may be an upload whose row is being written;
/// it is not reported as orphaned.
const ORPHAN_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    created_at: i64,
    lockbox_version: String,
    /// Check value of the key-encryption key the data is wrapped under.
    kek_check: String,
    database_sha256: String,
    files: u64,
    audit_records: u64,
    deleted_during_backup: u64,
    blobs: Vec<BlobEntry>,
    #[serde(default)]
    extras: Vec<ExtraEntry>,
}

/// Files of the data directory copied as they are (the server's SSH host key and HTTPS identity).
const EXTRA_FILES: &[&str] = &["ssh_host_ed25519_key", "https/cert.pem", "https/key.pem"];

#[derive(Debug, Serialize, Deserialize)]
struct ExtraEntry {
    path: String,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct BlobEntry {
    id: String,
    bytes: u64,
    sha256: String,
}

/// What a backup holds.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub dir: PathBuf,
    pub files: u64,
    pub ciphertext_bytes: u64,
    pub audit_records: u64,
    /// Versions deleted while the backup ran, recorded in it as deleted.
    pub deleted_during_backup: u64,
    pub kek_check: String,
}

/// What a restore brought back.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub files: u64,
    pub ciphertext_bytes: u64,
    pub audit_records: u64,
}

/// One problem `verify_storage` found.
#[derive(Debug, Clone, Serialize)]
pub struct StorageProblem {
    /// `missing`, `wrong_size`, `failed_authentication`, `key_unwrap_failed` or `orphaned`.
    pub kind: &'static str,
    pub blob: String,
    pub file_id: Option<i64>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StorageReport {
    pub files_checked: u64,
    pub bytes_checked: u64,
    pub blobs_on_disk: u64,
    pub problems: Vec<StorageProblem>,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> VaultError {
    let msg = format!("{what} {}", path.display());
    move |e| VaultError::Config(format!("{msg}: {e}"))
}

fn mkdir_private(dir: &Path) -> Result<()> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(io("cannot create", dir))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", dir))
}

/// A directory that does not exist or is empty.
fn require_empty(dir: &Path, what: &str) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(VaultError::InvalidInput(format!(
                    "{what} {} is not empty",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot read", dir)(e)),
    }
}

/// Copies `from` to a new private file `to`, fsynced; returns (bytes, SHA-256 hex).
fn copy_hashed(mut from: impl Read, to: &Path) -> Result<(u64, String)> {
    let mut out = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().write(true).create_new(true),
        0o600,
    )
    .open(to)
    .map_err(io("cannot create", to))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = from.read(&mut buf).map_err(io("cannot read for", to))?;
        if got == 0 {
            break;
        }
        let chunk = buf.get(..got).unwrap_or_default();
        h.update(chunk);
        out.write_all(chunk).map_err(io("cannot write", to))?;
        n += got as u64;
    }
    out.sync_all().map_err(io("cannot sync", to))?;
    Ok((n, hex::encode(h.finalize())))
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).map_err(io("cannot open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf).map_err(io("cannot read", path))?;
        if got == 0 {
            break;
        }
        h.update(buf.get(..got).unwrap_or_default());
        n += got as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

fn blob_rel(id: &str) -> PathBuf {
    let shard = id.get(..2).unwrap_or("00");
    Path::new("blobs").join(shard).join(id)
}

impl Vault {
    /// Writes a backup into `out` (a new or empty directory). Safe while the server runs.
    pub fn backup_to(&self, out: &Path) -> Result<BackupReport> {
        // Mid-rotation the stored keys are wrapped under two keys, and the backup's check value
        // could name only one: the file that finishes the rotation would not open it all.
        if self.inner.keys.previous_check_key()?.is_some() {
            return Err(VaultError::InvalidInput(
                "a key rotation is under way; finish it with `lockbox key-provider rotate` (server \
                 stopped) before taking a backup"
                    .into(),
            ));
        }
        require_empty(out, "backup directory")?;
        mkdir_private(out)?;
        let db_copy = out.join(DB_FILE);
        self.inner.store.snapshot_into(&db_copy)?;
        std::fs::set_permissions(
            &db_copy,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(io("cannot restrict", &db_copy))?;
        let copy = SqliteStore::open(&db_copy)?;
        copy.clear_uploads()?;
        let mut blobs = Vec::new();
        let mut deleted_during = 0u64;
        let mut ciphertext_bytes = 0u64;
        let live = copy.live_blobs()?;
        for (file, blob, _) in &live {
            let src = match self.inner.blobs.open_read(*blob) {
                Ok(f) => f,
                Err(e) => {
                    // Gone since the snapshot? Then it was deleted meanwhile: say so in the copy.
                    if let Some((at, by)) = self.inner.store.file_deletion(*file)? {
                        copy.mark_deleted_as(*file, at, by)?;
                        deleted_during += 1;
                        continue;
                    }
                    return Err(VaultError::Config(format!(
                        "the ciphertext of file #{} is missing ({e}); run `lockbox verify-storage`",
                        file.0
                    )));
                }
            };
            let id = blob.hex();
            let dst = out.join(blob_rel(&id));
            if let Some(dir) = dst.parent() {
                mkdir_private(dir)?;
            }
            let (bytes, sha256) = copy_hashed(src, &dst)?;
            ciphertext_bytes += bytes;
            blobs.push(BlobEntry { id, bytes, sha256 });
        }
        // The server's identities, so restored clients see the same SSH host key and certificate.
        let mut extras = Vec::new();
        for rel in EXTRA_FILES {
            let src = self.data_dir().join(rel);
            let Ok(f) = std::fs::File::open(&src) else {
                continue;
            };
            let dst = out.join(rel);
            if let Some(dir) = dst.parent() {
                mkdir_private(dir)?;
            }
            let (bytes, sha256) = copy_hashed(f, &dst)?;
            extras.push(ExtraEntry {
                path: (*rel).to_owned(),
                bytes,
                sha256,
            });
        }
        let audit_records = copy.audit_len()?;
        let files = live.len() as u64 - deleted_during;
        drop(copy);
        // The copy is a complete database file (VACUUM INTO leaves no WAL behind once closed).
        let (_, database_sha256) = sha256_file(&db_copy)?;
        let kek_check = crate::kek_check(self.inner.keys.as_ref())?;
        let manifest = Manifest {
            format: FORMAT.into(),
            created_at: lockbox_store::now_unix(),
            lockbox_version: env!("CARGO_PKG_VERSION").into(),
            kek_check: kek_check.clone(),
            database_sha256,
            files,
            audit_records,
            deleted_during_backup: deleted_during,
            blobs,
            extras,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| VaultError::Config(format!("cannot encode the manifest: {e}")))?;
        let mpath = out.join(MANIFEST);
        copy_hashed(&text[..], &mpath)?;
        for dir in [out.join("blobs"), out.to_path_buf()] {
            if dir.is_dir() {
                sync_dir(&dir)?;
            }
        }
        self.audit_strict(
            lockbox_audit::Event::new(Door::Cli, Action::BackupCreated, Outcome::Ok)
                .actor("lockbox", "")
                .target(out.display().to_string())
                .detail(json!({
                    "files": files, "ciphertext_bytes": ciphertext_bytes,
                    "audit_records": audit_records, "deleted_during_backup": deleted_during,
                })),
        )?;
        Ok(BackupReport {
            dir: out.to_path_buf(),
            files,
            ciphertext_bytes,
            audit_records,
            deleted_during_backup: deleted_during,
            kek_check,
        })
    }

    /// Checks every live file's blob against the metadata: present, of the size its plaintext
    /// length implies, its key unwraps, and every chunk authenticates. Also lists orphaned blobs.
    pub fn verify_storage(&self) -> Result<StorageReport> {
        let store = &self.inner.store;
        let mut problems = Vec::new();
        let mut files_checked = 0u64;
        let mut bytes_checked = 0u64;
        let mut buf = vec![0u8; CHUNK_SIZE * 4];
        for (file, blob, size) in store.live_blobs()? {
            files_checked += 1;
            let problem = |kind, detail: String| StorageProblem {
                kind,
                blob: blob.hex(),
                file_id: Some(file.0),
                detail,
            };
            let len = match self.inner.blobs.len(blob) {
                Ok(l) => l,
                Err(e) => {
                    problems.push(problem("missing", e.to_string()));
                    continue;
                }
            };
            if len != ciphertext_len(size) {
                problems.push(problem(
                    "wrong_size",
                    format!(
                        "{len} bytes on disk, {} expected for {size} bytes",
                        ciphertext_len(size)
                    ),
                ));
                continue;
            }
            let Some(wrapped) = store.file_wrapped_key(file)? else {
                continue; // deleted meanwhile
            };
            let key = match lockbox_crypto::WrappedKey::from_bytes(&wrapped)
                .and_then(|w| self.inner.keys.unwrap(&w, &blob.0))
            {
                Ok(k) => k,
                Err(e) => {
                    problems.push(problem("key_unwrap_failed", e.to_string()));
                    continue;
                }
            };
            let f = match self.inner.blobs.open_read(blob) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(problem("missing", e.to_string()));
                    continue;
                }
            };
            let reader = EncryptedReader::new(f, key, blob.0, size);
            let mut off = 0u64;
            loop {
                match reader.read_at(off, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        off += n as u64;
                        bytes_checked += n as u64;
                    }
                    Err(e) => {
                        problems.push(problem(
                            "failed_authentication",
                            format!("at plaintext offset {off}: {e}"),
                        ));
                        break;
                    }
                }
            }
        }
        let referenced = store.referenced_blobs()?;
        let on_disk = self.inner.blobs.list()?;
        let now = std::time::SystemTime::now();
        for (id, modified) in &on_disk {
            let old = now.duration_since(*modified).unwrap_or_default() >= ORPHAN_MIN_AGE;
            if !referenced.contains(id) && old {
                problems.push(StorageProblem {
                    kind: "orphaned",
                    blob: id.hex(),
                    file_id: None,
                    detail: "no file version or upload refers to it".into(),
                });
            }
        }
        let report = StorageReport {
            files_checked,
            bytes_checked,
            blobs_on_disk: on_disk.len() as u64,
            problems,
        };
        self.audit(
            lockbox_audit::Event::new(
                Door::Cli,
                Action::StorageVerified,
                if report.problems.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                },
            )
            .actor("lockbox", "")
            .detail(json!({
                "files_checked": report.files_checked, "bytes_checked": report.bytes_checked,
                "problems": report.problems.len(),
            })),
        );
        Ok(report)
    }
}

/// Restores the backup in `from` into `data_dir`, which must not exist or be empty, for the key in
/// `key_file` (whose check value must be the backup's). Every digest is checked before anything is
/// written. The caller then opens the vault as usual.
pub fn restore(from: &Path, data_dir: &Path, key_file: &Path) -> Result<RestoreReport> {
    let mpath = from.join(MANIFEST);
    let text = std::fs::read(&mpath).map_err(io("cannot read the manifest", &mpath))?;
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
        VaultError::InvalidInput(format!(
            "{} is not a Lockbox backup manifest: {e}",
            mpath.display()
        ))
    })?;
    if m.format != FORMAT {
        return Err(VaultError::InvalidInput(format!(
            "unknown backup format {:?} (this Lockbox reads {FORMAT})",
            m.format
        )));
    }
    let keys = LocalKeyFile::open(key_file).map_err(|e| {
        VaultError::Config(format!(
            "the key file is needed to restore (it is never in a backup): {e}"
        ))
    })?;
    let check = crate::kek_check(&keys as &dyn KeyProvider)?;
    if check != m.kek_check {
        return Err(VaultError::Config(format!(
            "the key file {} is not the key of this backup (check value {check}, backup made under {}); \
             nothing was restored",
            key_file.display(),
            m.kek_check
        )));
    }
    // Everything is verified before anything is written.
    let db = from.join(DB_FILE);
    let (_, db_sha) = sha256_file(&db)?;
    if db_sha != m.database_sha256 {
        return Err(VaultError::InvalidInput(format!(
            "{} does not match the manifest (damaged backup); nothing was restored",
            db.display()
        )));
    }
    for b in &m.blobs {
        if b.id.len() != 32 || !b.id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(VaultError::InvalidInput(format!(
                "bad blob id {:?} in the manifest",
                b.id
            )));
        }
        let p = from.join(blob_rel(&b.id));
        let (n, sha) = sha256_file(&p)?;
        if n != b.bytes || sha != b.sha256 {
            return Err(VaultError::InvalidInput(format!(
                "{} does not match the manifest (damaged backup); nothing was restored",
                p.display()
            )));
        }
    }
    for x in &m.extras {
        if !EXTRA_FILES.contains(&x.path.as_str()) {
            return Err(VaultError::InvalidInput(format!(
                "unexpected file {:?} in the manifest",
                x.path
            )));
        }
        let p = from.join(&x.path);
        let (n, sha) = sha256_file(&p)?;
        if n != x.bytes || sha != x.sha256 {
            return Err(VaultError::InvalidInput(format!(
                "{} does not match the manifest (damaged backup); nothing was restored",
                p.display()
            )));
        }
    }
    require_empty(data_dir, "data directory")?;
    mkdir_private(data_dir)?;
    let mut bytes = 0u64;
    let (_, copied_db) = copy_hashed(
        std::fs::File::open(&db).map_err(io("cannot open", &db))?,
        &data_dir.join(DB_FILE),
    )?;
    if copied_db != m.database_sha256 {
        return Err(VaultError::InvalidInput(format!(
            "{} changed while it was restored",
            db.display()
        )));
    }
    for x in &m.extras {
        let dst = data_dir.join(&x.path);
        if let Some(dir) = dst.parent() {
            mkdir_private(dir)?;
        }
        let src = from.join(&x.path);
        copy_hashed(
            std::fs::File::open(&src).map_err(io("cannot open", &src))?,
            &dst,
        )?;
    }
    for b in &m.blobs {
        let src = from.join(blob_rel(&b.id));
        let dst = data_dir.join(blob_rel(&b.id));
        if let Some(dir) = dst.parent() {
            mkdir_private(dir)?;
        }
        let (n, sha) = copy_hashed(
            std::fs::File::open(&src).map_err(io("cannot open", &src))?,
            &dst,
        )?;
        if sha != b.sha256 {
            return Err(VaultError::InvalidInput(format!(
                "{} changed while it was restored",
                src.display()
            )));
        }
        bytes += n;
    }
    for dir in [data_dir.join("blobs"), data_dir.to_path_buf()] {
        if dir.is_dir() {
            sync_dir(&dir)?;
        }
    }
    Ok(RestoreReport {
        data_dir: data_dir.to_path_buf(),
        files: m.files,
        ciphertext_bytes: bytes,
        audit_records: m.audit_records,
    })
}

impl Vault {
    /// Records a completed restore (called once the restored directory opened with its key).
    pub fn note_restore(&self, from: &Path, report: &RestoreReport) -> Result<()> {
        self.audit_strict(
            lockbox_audit::Event::new(Door::Cli, Action::BackupRestored, Outcome::Ok)
                .actor("lockbox", "")
                .target(from.display().to_string())
                .detail(
                    json!({"files": report.files, "ciphertext_bytes": report.ciphertext_bytes}),
                ),
        )
    }
}
