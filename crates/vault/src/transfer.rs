//! Encrypted transfers. A `WriteHandle` writes into a staging blob with its own data key; the upload
//! becomes a visible file only in `commit`, in one metadata transaction. A `ReadHandle` decrypts
//! committed files chunk by chunk at any offset. Both record what they moved in the audit log.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use lockbox_audit::{Action, Outcome};
use lockbox_crypto::{DataKey, EncryptedReader, EncryptedWriter, WrappedKey, CHUNK_SIZE};
use lockbox_store::{FileRow, UploadRow};
use serde_json::json;

use crate::content::{ContentAnalysis, ContentFindings, ContentTap};
use crate::error::{Result, VaultError};
use crate::session::{Actor, Session};
use crate::Vault;

/// Largest hole a write may leave beyond the current end. Clients write sequentially; a far-away
/// offset would make the server encrypt and store gigabytes of zeros on a peer's whim.
const MAX_HOLE: u64 = 64 * 1024 * 1024;
/// Largest file Lockbox stores (per-organization quotas come later; this bounds a single upload).
pub const MAX_FILE_SIZE: u64 = 1 << 40;

/// How often (in bytes written) an upload's durable size is saved, so that after a server crash
/// (or power loss) a client can resume near where it stopped instead of from zero. Each checkpoint
/// costs one fdatasync of the blob and one small metadata transaction, so a cut upload loses at
/// most this much.
const PROGRESS_EVERY: u64 = 4 * 1024 * 1024;

/// How often (in bytes written) an upload checks free space against the floor.
const SPACE_CHECK_EVERY: u64 = 1024 * 1024;

/// Whether a write of `len` bytes at `offset` into an upload now `current_len` bytes long is one
/// Lockbox accepts. Doors that acknowledge a write before applying it check this first, so a write
/// that will fail is answered with the error itself (as OpenSSH does) rather than an early "OK".
pub fn check_write_extent(current_len: u64, offset: u64, len: u64) -> Result<()> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| VaultError::InvalidInput("write beyond the maximum file size".into()))?;
    if offset > current_len.saturating_add(MAX_HOLE) {
        return Err(VaultError::InvalidInput(format!(
            "write at offset {offset} would leave a hole of more than {} MiB",
            MAX_HOLE >> 20
        )));
    }
    if end > MAX_FILE_SIZE {
        return Err(VaultError::LimitReached(format!(
            "files are limited to {} GiB",
            MAX_FILE_SIZE >> 30
        )));
    }
    Ok(())
}

pub(crate) struct UploadContext {
    pub(crate) actor: Arc<Actor>,
    pub(crate) target: String,
}

/// An open upload. Doors call `commit` or `interrupt`; dropping it without either interrupts it
/// (blocking I/O in `Drop`: an fsync and two small transactions, on whatever thread drops it).
pub struct WriteHandle {
    vault: Vault,
    /// Held while open, so no second handle can write into the same staging blob.
    _lease: UploadLease,
    ctx: UploadContext,
    upload: UploadRow,
    writer: EncryptedWriter<File>,
    /// Digest and PHI inventory of the content while it arrives in order from offset 0.
    content: ContentTap,
    hashed: u64,
    saved_progress: u64,
    mtime: Option<i64>,
    bytes_received: u64,
    /// Bytes written since free space was last checked.
    since_space_check: u64,
    /// Continues an interrupted upload (rather than starting empty or as a copy of a file).
    resumed: bool,
    /// Committed or interrupted; otherwise dropping the handle interrupts it (a door that loses
    /// a handle, a task cancelled at shutdown), so every interruption is saved and audited.
    done: bool,
    /// A write failed for lack of space: the upload is discarded rather than kept, so a failed
    /// upload gives its space back instead of filling the disk again on the next try.
    out_of_space: bool,
}

fn unwrap_key(vault: &Vault, wrapped: &[u8], blob: &[u8; 16]) -> Result<DataKey> {
    let wrapped = WrappedKey::from_bytes(wrapped)?;
    Ok(vault.inner.keys.unwrap(&wrapped, blob)?)
}

impl WriteHandle {
    pub(crate) fn create(
        vault: &Vault,
        ctx: UploadContext,
        upload: UploadRow,
        file: File,
        key: DataKey,
    ) -> Result<Self> {
        let writer = EncryptedWriter::create(file, key, upload.blob_id.0);
        let content = ContentTap::new(vault.inner.fingerprint_key, &ctx.actor.org);
        Ok(WriteHandle {
            _lease: UploadLease::take(vault, &upload)?,
            vault: vault.clone(),
            ctx,
            upload,
            writer,
            content,
            hashed: 0,
            saved_progress: 0,
            mtime: None,
            bytes_received: 0,
            since_space_check: 0,
            out_of_space: false,
            resumed: false,
            done: false,
        })
    }

    pub(crate) fn resume(vault: &Vault, ctx: UploadContext, upload: UploadRow) -> Result<Self> {
        let key = unwrap_key(vault, &upload.wrapped_key, &upload.blob_id.0)?;
        let file = vault.inner.blobs.open_rw(upload.blob_id)?;
        let writer = EncryptedWriter::resume(file, key, upload.blob_id.0, upload.size);
        Ok(WriteHandle {
            _lease: UploadLease::take(vault, &upload)?,
            vault: vault.clone(),
            saved_progress: upload.size,
            ctx,
            upload,
            writer,
            content: ContentTap::Unavailable,
            hashed: 0,
            mtime: None,
            bytes_received: 0,
            since_space_check: 0,
            out_of_space: false,
            resumed: true,
            done: false,
        })
    }

    /// Fills a fresh upload with an existing file's content (open-for-update without truncation).
    pub(crate) fn copy_from(&mut self, reader: &ReadHandle) -> Result<()> {
        let mut buf = vec![0u8; CHUNK_SIZE * 4];
        let mut off = 0u64;
        loop {
            let n = reader.reader.read_at(off, &mut buf)?;
            if n == 0 {
                break;
            }
            self.write_at(
                off,
                Bytes::copy_from_slice(buf.get(..n).unwrap_or_default()),
            )?;
            off += n as u64;
        }
        self.bytes_received = 0;
        Ok(())
    }

    pub fn write_at(&mut self, offset: u64, data: Bytes) -> Result<()> {
        let res = self.write_at_inner(offset, data);
        if let Err(e) = &res {
            if e.is_storage_low() {
                self.out_of_space = true;
            }
        }
        res
    }

    fn write_at_inner(&mut self, offset: u64, data: Bytes) -> Result<()> {
        self.check_extent(offset, data.len() as u64)?;
        self.since_space_check += data.len() as u64;
        if self.since_space_check >= SPACE_CHECK_EVERY {
            self.since_space_check = 0;
            self.vault.check_space_for_upload()?;
        }
        if offset == self.hashed {
            self.hashed += data.len() as u64;
            self.content.update(&data, self.hashed);
        } else {
            self.content = ContentTap::Unavailable;
        }
        self.writer.write_at(offset, &data)?;
        self.bytes_received += data.len() as u64;
        let sealed = self.writer.len() / CHUNK_SIZE as u64 * CHUNK_SIZE as u64;
        // An update of the committed file is never resumed, so it has no resume points to keep.
        if self.upload.resumable && sealed >= self.saved_progress + PROGRESS_EVERY {
            // The size is recorded only once the bytes it counts are on disk, so a resume point
            // never runs ahead of the ciphertext after a power loss.
            self.writer.sync_sealed()?;
            self.vault
                .inner
                .store
                .set_upload_size(self.upload.id, sealed)?;
            self.saved_progress = sealed;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.writer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writer.len() == 0
    }

    /// Whether a write failed for lack of space (the upload will be discarded when interrupted).
    pub fn failed_for_space(&self) -> bool {
        self.out_of_space
    }

    /// Whether this handle continues an interrupted upload (its length is where the client's
    /// writes should resume).
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// Refuses writes that would leave a large hole or exceed the size limit.
    fn check_extent(&self, offset: u64, len: u64) -> Result<()> {
        check_write_extent(self.writer.len(), offset, len)
    }

    pub fn truncate(&mut self, len: u64) -> Result<()> {
        if len > self.writer.len() {
            self.check_extent(len, 0)?;
        }
        if len < self.hashed {
            self.content = ContentTap::Unavailable;
        }
        self.writer.truncate(len)?;
        // A resume point beyond the new end would let a resume after a crash start past data
        // that is gone: lower it, once the cut is durable.
        if self.upload.resumable && len < self.saved_progress {
            self.writer.sync_sealed()?;
            self.vault
                .inner
                .store
                .set_upload_size(self.upload.id, len)?;
            self.saved_progress = len;
        }
        Ok(())
    }

    pub fn set_mtime(&mut self, mtime: i64) {
        self.mtime = Some(mtime);
    }

    /// Durably stores what has arrived (fsync), without committing.
    pub fn sync(&mut self) -> Result<()> {
        self.writer.sync()?;
        let store = &self.vault.inner.store;
        store.set_upload_size(self.upload.id, self.writer.len())?;
        // The size record skipped its own fsync (resume points are best effort); an explicit
        // sync promises durability, so make it durable here.
        store.sync_point()?;
        Ok(())
    }

    /// Completes the upload: the file becomes visible atomically, replacing any previous version
    /// (whose key is destroyed). If it fails, the upload is handled as interrupted (kept, or
    /// discarded when it ran out of space or was an update), and audited.
    pub fn commit(mut self) -> Result<FileRow> {
        let len = match self.writer.finish_in_place() {
            Ok(l) => l,
            Err(e) => return Err(self.commit_failed(e.into())),
        };
        let content = std::mem::replace(&mut self.content, ContentTap::Unavailable);
        let findings = match content.finish() {
            Some(f) if self.hashed == len => f,
            _ => {
                // Out-of-order or resumed upload: analyse what was actually stored (one read).
                tracing::debug!(
                    size = len,
                    streamed_bytes = self.hashed,
                    "content not streamed in order; reading the stored file"
                );
                let stored = self
                    .writer
                    .store()
                    .try_clone()
                    .map_err(lockbox_crypto::CryptoError::from)
                    .map_err(VaultError::from)
                    .and_then(|file| {
                        let key = unwrap_key(
                            &self.vault,
                            &self.upload.wrapped_key,
                            &self.upload.blob_id.0,
                        )?;
                        let reader = EncryptedReader::new(file, key, self.upload.blob_id.0, len);
                        analyse_stored(&self.vault, &reader, &self.ctx.actor.org)
                    });
                match stored {
                    Ok(f) => f,
                    Err(e) => return Err(self.commit_failed(e)),
                }
            }
        };
        let sha256 = findings.sha256.clone();
        let mtime = self.mtime.unwrap_or_else(Session::now);
        let (row, replaced) =
            match self
                .vault
                .inner
                .store
                .commit_upload(self.upload.id, len, &sha256, mtime)
            {
                Ok(x) => x,
                Err(e) => return Err(self.commit_failed(e.into())),
            };
        // Committed: nothing is left to interrupt when the handle drops.
        self.done = true;
        let vault = self.vault.clone();
        vault.inner.metrics.upload_committed(len);
        let inventory = vault.save_inventory(row.id, &findings);
        // The commit and the inventory skipped their own fsync; this audit record's durable
        // commit is the one point where all three reach the disk, before the client hears of it.
        // A failure to record it is logged loudly (AUDIT WRITE FAILED) but must not tell the
        // client that its completed upload failed: the commit is then made durable on its own.
        let audited = vault.audit_strict(
            self.ctx
                .actor
                .event(Action::UploadCommitted, Outcome::Ok)
                .target(&self.ctx.target)
                .detail(json!({
                    "file_id": row.id.0, "size": len, "sha256": sha256,
                    "bytes_received": self.bytes_received, "replaced": replaced.is_some(),
                    "inventory": inventory,
                    "session": self.ctx.actor.session_id,
                })),
        );
        if let Err(e) = audited {
            tracing::error!(error = %e, "AUDIT WRITE FAILED");
            vault.inner.store.sync_point()?;
        }
        // Only now, with the new version durable, may the replaced version's ciphertext go.
        if let Some(blob) = replaced {
            vault.remove_blob_after_commit(blob);
        }
        Ok(row)
    }

    /// A commit that failed: out of space, the upload gives its space back; otherwise it is left
    /// for `Drop` to keep as interrupted (or discard, for an update).
    fn commit_failed(&mut self, e: VaultError) -> VaultError {
        if e.is_storage_low() {
            self.out_of_space = true;
        }
        e
    }

    /// The connection went away before close: keep what arrived (invisible, resumable by its owner).
    /// An upload that failed for lack of space is discarded instead (its space given back).
    pub fn interrupt(mut self) -> Result<()> {
        self.done = true;
        self.interrupt_in_place()
    }

    fn interrupt_in_place(&mut self) -> Result<()> {
        if self.out_of_space {
            discard(
                &self.vault,
                &self.ctx,
                &self.upload,
                self.bytes_received,
                "storage low",
            );
            return Ok(());
        }
        if !self.upload.resumable {
            // An update of a committed file cut before its close: the file stays as committed,
            // and what arrived of the update goes (resuming it would splice).
            discard(
                &self.vault,
                &self.ctx,
                &self.upload,
                self.bytes_received,
                "update of an existing file interrupted; the committed file is unchanged",
            );
            return Ok(());
        }
        let res = self.sync();
        self.vault.audit(
            self.ctx
                .actor
                .event(Action::UploadInterrupted, Outcome::Failed)
                .target(&self.ctx.target)
                .detail(json!({
                    "stored": self.writer.len(), "bytes_received": self.bytes_received,
                    "session": self.ctx.actor.session_id,
                })),
        );
        res
    }
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            if let Err(e) = self.interrupt_in_place() {
                tracing::error!(error = %e, "could not save an interrupted upload");
            }
        }
    }
}

/// Discards an interrupted upload that must not be kept: one that failed for lack of space (its
/// space is given back) or an update of a committed file (not resumable). Its staging row and
/// ciphertext go, and the interruption is audited with the reason.
fn discard(vault: &Vault, ctx: &UploadContext, upload: &UploadRow, received: u64, reason: &str) {
    match vault.inner.store.delete_upload(upload.id) {
        Ok(Some(blob)) => vault.remove_blob_after_commit(blob),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not discard an interrupted upload"),
    }
    vault.audit(
        ctx.actor
            .event(Action::UploadInterrupted, Outcome::Failed)
            .target(&ctx.target)
            .detail(json!({
                "stored": 0, "bytes_received": received, "reason": reason,
                "discarded": true, "session": ctx.actor.session_id,
            })),
    );
}

/// An open download of one committed file version.
pub struct ReadHandle {
    vault: Vault,
    actor: Arc<Actor>,
    file: FileRow,
    target: String,
    reader: EncryptedReader<File>,
    bytes_sent: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

impl ReadHandle {
    pub(crate) fn open(
        vault: &Vault,
        actor: Arc<Actor>,
        file: FileRow,
        target: String,
    ) -> Result<Self> {
        let wrapped = file
            .wrapped_key
            .as_deref()
            .ok_or_else(|| VaultError::NotFound(target.clone()))?;
        let key = unwrap_key(vault, wrapped, &file.blob_id.0)?;
        let blob = vault.inner.blobs.open_read(file.blob_id)?;
        let reader = EncryptedReader::new(blob, key, file.blob_id.0, file.size);
        // The access is on record before any byte is served: a crash, a killed connection or a
        // failed write at close can no longer leave a read without evidence (and no record, no
        // read). Internal reads (an update's copy) have no target and are not downloads.
        if !target.is_empty() {
            vault.audit_strict(
                actor
                    .event(Action::FileOpened, Outcome::Ok)
                    .target(&target)
                    .detail(json!({
                        "file_id": file.id.0, "size": file.size, "sha256": file.sha256,
                        "session": actor.session_id,
                    })),
            )?;
        }
        Ok(ReadHandle {
            vault: vault.clone(),
            actor,
            target,
            reader,
            file,
            bytes_sent: AtomicU64::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn size(&self) -> u64 {
        self.file.size
    }

    pub fn mtime(&self) -> i64 {
        self.file.mtime
    }

    /// Reads up to `buf.len()` bytes at `offset`; 0 means end of file. Safe to call concurrently.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let n = self.reader.read_at(offset, buf)?;
        self.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Records the download in the audit log (bytes actually sent, and which version). Takes `&self`
    /// because reads may still hold the handle; only the first call records.
    pub fn close(&self) -> Result<()> {
        if self.target.is_empty() || self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let sent = self.bytes_sent.load(Ordering::Relaxed);
        self.vault.inner.metrics.download_closed(sent);
        self.vault.audit_strict(
            self.actor
                .event(Action::FileRead, Outcome::Ok)
                .target(&self.target)
                .detail(json!({
                    "file_id": self.file.id.0, "size": self.file.size, "sha256": self.file.sha256,
                    "bytes_sent": sent,
                    "session": self.actor.session_id,
                })),
        )
    }
}

impl Vault {
    /// Forgets uploads nobody has touched for `max_age` (their ciphertext and keys are destroyed),
    /// so abandoned partial files do not accumulate. Returns how many were removed.
    pub fn expire_stale_uploads(&self, max_age: std::time::Duration) -> Result<usize> {
        let before = lockbox_store::now_unix() - max_age.as_secs() as i64;
        let stale = self.inner.store.stale_uploads(before)?;
        for up in &stale {
            if let Some(blob) = self.inner.store.delete_upload(up.id)? {
                self.inner.blobs.remove(blob)?;
            }
            self.audit(
                lockbox_audit::Event::new(
                    lockbox_types::Door::Cli,
                    Action::UploadAbandoned,
                    Outcome::Ok,
                )
                .actor("lockbox", "")
                .target(format!("folder#{}:{}/{}", up.folder_id, up.parent, up.name))
                .detail(json!({"size": up.size, "idle_since": up.updated_at, "reason": "expired"})),
            );
        }
        Ok(stale.len())
    }
}

/// Marks an upload as open in this process. Uploads are only written by server sessions, so an
/// in-memory registry is enough to stop two handles from sharing one staging blob and key. Keyed by
/// the staging blob's random id, which no later upload can have (row ids could be handed out again
/// while a committing session still holds its lease).
pub(crate) struct UploadLease {
    vault: Vault,
    blob: lockbox_store::BlobId,
}

impl UploadLease {
    pub(crate) fn take(vault: &Vault, upload: &UploadRow) -> Result<Self> {
        let mut open = vault
            .inner
            .open_uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !open.insert(upload.blob_id) {
            return Err(VaultError::AlreadyExists(format!(
                "an upload to {:?} is already open in another session",
                upload.name
            )));
        }
        Ok(UploadLease {
            vault: vault.clone(),
            blob: upload.blob_id,
        })
    }
}

impl Drop for UploadLease {
    fn drop(&mut self) {
        let mut open = self
            .vault
            .inner
            .open_uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.remove(&self.blob);
    }
}

/// Reads a stored file once through the content analysis (digest + inventory).
pub(crate) fn analyse_stored<R: lockbox_crypto::RandomAccess>(
    vault: &Vault,
    reader: &EncryptedReader<R>,
    org: &str,
) -> Result<ContentFindings> {
    let mut analysis = ContentAnalysis::new(vault.inner.fingerprint_key, org);
    let mut buf = vec![0u8; CHUNK_SIZE * 4];
    let mut off = 0u64;
    loop {
        let n = reader.read_at(off, &mut buf)?;
        if n == 0 {
            break;
        }
        analysis.update(buf.get(..n).unwrap_or_default());
        off += n as u64;
    }
    Ok(analysis.finish())
}
