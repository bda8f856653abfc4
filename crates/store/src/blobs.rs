//! Blob storage: opaque ciphertext objects named by random ids. The local implementation keeps each blob in
//! one file under `<data>/blobs/<2 hex>/<32 hex>`; names are derived only from the random id, never from
//! user input, so nothing a client sends can choose where bytes land on disk.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::{Result, StoreError};

/// A blob's random 128-bit name. Also bound into every chunk's AEAD associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId(pub [u8; 16]);

impl BlobId {
    pub fn random() -> Self {
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        BlobId(b)
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("blob id of {} bytes", bytes.len())))?;
        Ok(BlobId(arr))
    }
}

/// Where ciphertext lives. Files are opened for positional I/O; the vault wraps them in the
/// encrypting reader/writer.
pub trait BlobStore: Send + Sync {
    /// Creates a new empty blob; fails if it exists.
    fn create(&self, id: BlobId) -> Result<File>;
    /// Opens an existing blob for reading and writing (resumed uploads).
    fn open_rw(&self, id: BlobId) -> Result<File>;
    /// Opens an existing blob for reading.
    fn open_read(&self, id: BlobId) -> Result<File>;
    /// Removes a blob; a missing blob is not an error (deletes are retried after crashes).
    fn remove(&self, id: BlobId) -> Result<()>;
    /// Bytes free and total on the backing storage, for statvfs.
    fn space(&self) -> Result<(u64, u64)>;
    /// Every stored blob, with when it was last modified (storage checks look for orphans).
    fn list(&self) -> Result<Vec<(BlobId, std::time::SystemTime)>>;
    /// Size of a stored blob in bytes.
    fn len(&self, id: BlobId) -> Result<u64>;
}

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn open(root: &Path) -> Result<Self> {
        // Owner-only, like the data directory around it. All 256 shard directories are made (and
        // their names made durable) here, once, so creating a blob never creates a directory
        // whose entry another upload could rely on before it is synced.
        let dir_builder = || {
            let mut b = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b
        };
        let mut created = false;
        if !root.is_dir() {
            dir_builder()
                .recursive(true)
                .create(root)
                .map_err(|e| io_err(root, e))?;
            created = true;
        }
        for shard in 0..=255u8 {
            let dir = root.join(hex::encode([shard]));
            if !dir.is_dir() {
                dir_builder().create(&dir).map_err(|e| io_err(&dir, e))?;
                created = true;
            }
        }
        if created {
            sync_dir(root)?;
            if let Some(parent) = root.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(LocalBlobStore {
            root: root.to_path_buf(),
        })
    }

    fn path_of(&self, id: BlobId) -> PathBuf {
        let h = id.hex();
        let (shard, _) = h.split_at(2);
        self.root.join(shard).join(&h)
    }
}

/// fsyncs a directory, making the names created in it durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::BlobIo {
        path: path.display().to_string(),
        source,
    }
}

impl BlobStore for LocalBlobStore {
    fn create(&self, id: BlobId) -> Result<File> {
        let path = self.path_of(id);
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new().read(true).write(true).create_new(true),
            0o600,
        )
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
        // The blob's name must be as durable as the bytes later fsynced into it: without syncing
        // the directory, a power loss can leave committed metadata pointing at a missing file.
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(file)
    }

    fn open_rw(&self, id: BlobId) -> Result<File> {
        let path = self.path_of(id);
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))
    }

    fn open_read(&self, id: BlobId) -> Result<File> {
        let path = self.path_of(id);
        File::open(&path).map_err(|e| io_err(&path, e))
    }

    fn remove(&self, id: BlobId) -> Result<()> {
        let path = self.path_of(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    fn list(&self) -> Result<Vec<(BlobId, std::time::SystemTime)>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.root).map_err(|e| io_err(&self.root, e))?;
        for shard in rd {
            let shard = shard.map_err(|e| io_err(&self.root, e))?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&shard).map_err(|e| io_err(&shard, e))? {
                let entry = entry.map_err(|e| io_err(&shard, e))?;
                let name = entry.file_name();
                // Only names this store makes: 32 hex digits. Anything else is not a blob.
                let Some(id) = name
                    .to_str()
                    .and_then(|n| hex::decode(n).ok())
                    .and_then(|b| BlobId::from_slice(&b).ok())
                else {
                    continue;
                };
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
                out.push((id, modified));
            }
        }
        Ok(out)
    }

    fn len(&self, id: BlobId) -> Result<u64> {
        let path = self.path_of(id);
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| io_err(&path, e))
    }

    fn space(&self) -> Result<(u64, u64)> {
        let st = rustix::fs::statvfs(&self.root).map_err(|e| io_err(&self.root, e.into()))?;
        Ok((
            st.f_bavail.saturating_mul(st.f_frsize),
            st.f_blocks.saturating_mul(st.f_frsize),
        ))
    }
}
