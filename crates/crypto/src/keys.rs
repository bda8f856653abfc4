use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;

const KEY_LEN: usize = 32;
const WRAP_VERSION: u8 = 1;
const WRAP_NONCE_LEN: usize = 12;
const WRAP_TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 1 + WRAP_NONCE_LEN + KEY_LEN + WRAP_TAG_LEN;

const KEY_FILE_MAGIC: &str = "lockbox-kek-v1";
// A valid file is ~80 bytes; the cap keeps a wrong path (say, a disk image)
// from being slurped into memory.
const KEY_FILE_MAX_LEN: u64 = 4096;

/// A per-file random data-encryption key. Wiped from memory on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// Draws a fresh key from the operating system's CSPRNG.
    ///
    /// Panics only if the OS random source fails, which leaves no safe way to
    /// continue anyway.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key encrypted under a KEK, safe to store next to the file's metadata.
///
/// Layout: version byte `1` || nonce (12) || AES-256-GCM(KEK, data key) (32 + 16 tag).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

impl WrappedKey {
    /// Length of the serialized form.
    pub const LEN: usize = WRAPPED_LEN;

    pub fn to_vec(&self) -> Vec<u8> {
        self.0.clone()
    }

    /// Parses a stored wrapped key, checking length and version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let wrapped = Self(bytes.to_vec());
        wrapped.parts()?;
        Ok(wrapped)
    }

    /// Splits into (nonce, ciphertext-with-tag) after validating the framing.
    fn parts(&self) -> Result<(&[u8], &[u8]), CryptoError> {
        if self.0.len() != WRAPPED_LEN {
            return Err(CryptoError::MalformedWrappedKey);
        }
        match self.0.split_first() {
            Some((&WRAP_VERSION, rest)) => Ok(rest.split_at(WRAP_NONCE_LEN)),
            _ => Err(CryptoError::MalformedWrappedKey),
        }
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// Source of the key-encryption key. Implementations may keep the KEK in a
/// local file, an HSM or a remote KMS; callers only see wrap/unwrap/derive.
pub trait KeyProvider: Send + Sync {
    /// Encrypts `dek` under the KEK. `context` is bound as associated data
    /// (callers pass the file's blob id), so the wrapped key only unwraps for
    /// the same context and cannot be transplanted onto another file.
    fn wrap(&self, dek: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError>;

    /// Reverses [`KeyProvider::wrap`]; fails unless the KEK and `context` match.
    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError>;

    /// Derives an independent 32-byte key for `purpose` (for example the HMAC
    /// key for fingerprints). Different purposes give unrelated keys, none of
    /// which reveals the KEK.
    fn derive_key(&self, purpose: &str) -> Result<[u8; 32], CryptoError>;

    /// Human-readable description for logs and status output; never contains key material.
    fn describe(&self) -> String;
}

/// The default [`KeyProvider`]: a 256-bit KEK stored hex-encoded in a local
/// file with mode 0600. Keep the file outside the data directory so a copy of
/// the data (a backup, a stolen disk image) does not carry its own key.
pub struct LocalKeyFile {
    path: PathBuf,
    kek: Zeroizing<[u8; KEY_LEN]>,
    /// AES-256-GCM key schedule of `kek`, expanded once. It lives in ring's
    /// own struct, which cannot be zeroized; `kek` itself is.
    aead: LessSafeKey,
}

impl fmt::Debug for LocalKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalKeyFile {
    /// Opens the key file, creating it with a fresh random KEK if it does not
    /// exist. Returns `true` as the second element if it was created.
    pub fn open_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        match Self::open(path) {
            Ok(provider) => return Ok((provider, false)),
            Err(CryptoError::KeyFileIo { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        match Self::create(path) {
            Ok(provider) => Ok((provider, true)),
            // Another process created it between our open and create; theirs wins.
            Err(CryptoError::KeyFileIo { source, .. })
                if source.kind() == ErrorKind::AlreadyExists =>
            {
                Ok((Self::open(path)?, false))
            }
            Err(err) => Err(err),
        }
    }

    /// Opens an existing key file; never creates one.
    pub fn open(path: &Path) -> Result<Self, CryptoError> {
        let io_err = |source| CryptoError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // Checked on the open handle rather than the path so a swap between
        // check and read cannot slip a different file past the check.
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(malformed(path, "not a regular file"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::KeyFilePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut text = Zeroizing::new(String::new());
        file.take(KEY_FILE_MAX_LEN + 1)
            .read_to_string(&mut text)
            .map_err(|e| {
                if e.kind() == ErrorKind::InvalidData {
                    malformed(path, "not UTF-8 text")
                } else {
                    io_err(e)
                }
            })?;
        if text.len() as u64 > KEY_FILE_MAX_LEN {
            return Err(malformed(path, "file is too large to be a key file"));
        }
        let kek = parse_key_file(&text).map_err(|reason| malformed(path, reason))?;
        Self::with_kek(path, kek)
    }

    /// Writes a new key file. The content goes to a private temporary file
    /// first and is then hard-linked into place, so the final path either does
    /// not exist or holds a complete key: a crash cannot leave a half-written
    /// key file, and an existing key file is never overwritten (which would
    /// shred every file in the vault).
    fn create(path: &Path) -> Result<Self, CryptoError> {
        let io_err = |source| CryptoError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| malformed(path, "path has no file name"))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_err)?;

        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.try_fill_bytes(kek.as_mut_slice())?;
        let mut content = Zeroizing::new(String::with_capacity(KEY_FILE_MAGIC.len() + 2 + 64));
        content.push_str(KEY_FILE_MAGIC);
        content.push('\n');
        content.push_str(&Zeroizing::new(hex::encode(kek.as_slice())));
        content.push('\n');

        let mut suffix = [0u8; 8];
        OsRng.try_fill_bytes(&mut suffix)?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp-{}", hex::encode(suffix)));
        let tmp_path = dir.join(tmp_name);

        let result = (|| {
            let mut tmp = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp_path)?;
            tmp.write_all(content.as_bytes())?;
            tmp.sync_all()?;
            drop(tmp);
            std::fs::hard_link(&tmp_path, path)?;
            // Persist the new directory entry; a key that vanishes after a
            // power cut would make everything encrypted under it unreadable.
            File::open(&dir)?.sync_all()
        })();
        // Best effort: the temp name is random, so a leftover is harmless.
        let _ = std::fs::remove_file(&tmp_path);
        result.map_err(io_err)?;

        Self::with_kek(path, kek)
    }

    fn with_kek(path: &Path, kek: Zeroizing<[u8; KEY_LEN]>) -> Result<Self, CryptoError> {
        let aead = UnboundKey::new(&AES_256_GCM, kek.as_slice())
            .map(LessSafeKey::new)
            .map_err(|_| CryptoError::Internal("AES-256-GCM key setup failed"))?;
        Ok(Self {
            path: path.to_path_buf(),
            kek,
            aead,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn malformed(path: &Path, reason: impl Into<String>) -> CryptoError {
    CryptoError::KeyFileMalformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parse_key_file(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, &'static str> {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some(KEY_FILE_MAGIC) {
        return Err("first line must be `lockbox-kek-v1`");
    }
    let hex_line = lines
        .next()
        .map(str::trim)
        .ok_or("missing key line after the header")?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("unexpected content after the key line");
    }
    if hex_line.len() != KEY_LEN * 2 {
        return Err("key line must be exactly 64 hex characters");
    }
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(hex_line, kek.as_mut_slice())
        .map_err(|_| "key line must be exactly 64 hex characters")?;
    Ok(kek)
}

impl KeyProvider for LocalKeyFile {
    fn wrap(&self, dek: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce)?;
        // Holds the plaintext key until sealed, so wipe it if sealing fails.
        let mut out = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(dek.as_bytes());
        let body = out
            .get_mut(1 + WRAP_NONCE_LEN..)
            .ok_or(CryptoError::Internal("key wrap failed"))?;
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                body,
            )
            .map_err(|_| CryptoError::Internal("key wrap failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(WrappedKey(std::mem::take(&mut *out)))
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError> {
        let (nonce, sealed) = wrapped.parts()?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| CryptoError::MalformedWrappedKey)?;
        // Decrypted in place in a stack buffer that is wiped on drop.
        let mut buf = Zeroizing::new([0u8; KEY_LEN + WRAP_TAG_LEN]);
        let in_out = buf
            .get_mut(..sealed.len())
            .ok_or(CryptoError::MalformedWrappedKey)?;
        in_out.copy_from_slice(sealed);
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context), in_out)
            .map_err(|_| CryptoError::UnwrapFailed)?;
        let bytes: [u8; KEY_LEN] = (&*plain)
            .try_into()
            .map_err(|_| CryptoError::MalformedWrappedKey)?;
        Ok(DataKey::from_bytes(bytes))
    }

    fn derive_key(&self, purpose: &str) -> Result<[u8; 32], CryptoError> {
        derive_from_kek(&self.kek, purpose)
    }

    fn describe(&self) -> String {
        format!("local key file {}", self.path.display())
    }
}

/// HKDF-SHA256 with the KEK as input keying material and `lockbox/<purpose>`
/// as info; shared so other providers that hold a raw KEK derive identically.
pub(crate) fn derive_from_kek(kek: &[u8; KEY_LEN], purpose: &str) -> Result<[u8; 32], CryptoError> {
    let hk = Hkdf::<Sha256>::new(None, kek);
    let mut info = Vec::with_capacity(8 + purpose.len());
    info.extend_from_slice(b"lockbox/");
    info.extend_from_slice(purpose.as_bytes());
    let mut out = [0u8; 32];
    hk.expand(&info, &mut out)
        .map_err(|_| CryptoError::Internal("HKDF expand failed"))?;
    // Probability ~2^-256, but the contract says a derived key is never the
    // KEK itself, so enforce it rather than assume it.
    if &out == kek {
        out.zeroize();
        return Err(CryptoError::Internal("derived key equals the KEK"));
    }
    Ok(out)
}

/// HMAC-SHA256 of `data` under `key` (e.g. a key from [`KeyProvider::derive_key`]).
pub fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    // HMAC zero-pads short keys to the hash block size (RFC 2104), so padding
    // here is the same MAC and avoids the fallible `new_from_slice`.
    let mut block = Zeroizing::new([0u8; 64]);
    for (dst, src) in block.iter_mut().zip(key.iter()) {
        *dst = *src;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(block.as_slice().into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2_shape() {
        // RFC 4231 test case 2 uses key "Jefe" (4 bytes); our API takes 32-byte
        // keys, so compare against the slice-based constructor instead.
        let key = [7u8; 32];
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"what do ya want for nothing?");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, b"what do ya want for nothing?"), expected);
    }

    #[test]
    fn parse_rejects_bad_content() {
        let good = format!("{KEY_FILE_MAGIC}\n{}\n", "ab".repeat(32));
        assert!(parse_key_file(&good).is_ok());
        assert!(parse_key_file(&format!("{KEY_FILE_MAGIC}\n{}", "ab".repeat(32))).is_ok());
        assert!(parse_key_file("").is_err());
        assert!(parse_key_file(&format!("lockbox-kek-v2\n{}\n", "ab".repeat(32))).is_err());
        assert!(parse_key_file(&format!("{KEY_FILE_MAGIC}\n{}\n", "ab".repeat(31))).is_err());
        assert!(parse_key_file(&format!("{KEY_FILE_MAGIC}\n{}\n", "zz".repeat(32))).is_err());
        assert!(
            parse_key_file(&format!("{KEY_FILE_MAGIC}\n{}\nextra\n", "ab".repeat(32))).is_err()
        );
    }

    #[test]
    fn debug_does_not_leak_key() {
        let key = DataKey::from_bytes([0xAB; 32]);
        assert!(!format!("{key:?}").contains("ab"));
        assert!(!format!("{key:?}").contains("171"));
    }
}
