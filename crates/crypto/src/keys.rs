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

    /// A key derived from the current wrapping key only, from which a check value identifying
    /// that key is computed (see the vault's `kek_check`). Unlike [`derive_key`](Self::derive_key)
    /// it changes when the wrapping key is rotated.
    fn wrapping_check_key(&self) -> Result<[u8; 32], CryptoError>;

    /// The same for the previous wrapping key, while a rotation is under way.
    fn previous_check_key(&self) -> Result<Option<[u8; 32]>, CryptoError> {
        Ok(None)
    }
}

/// The default [`KeyProvider`]: a 256-bit KEK stored hex-encoded in a local
/// file with mode 0600. Keep the file outside the data directory so a copy of
/// the data (a backup, a stolen disk image) does not carry its own key.
pub struct LocalKeyFile {
    path: PathBuf,
    /// Root of the derived purpose keys (fingerprints, sealed secrets). Never rotated: rotating it
    /// would change every stored fingerprint. In a v1 file it is the wrapping key too.
    root: Zeroizing<[u8; KEY_LEN]>,
    /// The current wrapping key: data keys are wrapped under it.
    kek: Zeroizing<[u8; KEY_LEN]>,
    /// AES-256-GCM key schedule of `kek`, expanded once. It lives in ring's
    /// own struct, which cannot be zeroized; `kek` itself is.
    aead: LessSafeKey,
    /// While a rotation is under way: the wrapping key being retired, which still unwraps.
    previous: Option<(Zeroizing<[u8; KEY_LEN]>, LessSafeKey)>,
}

/// The keys a key file holds.
struct KeyFileContent {
    root: Zeroizing<[u8; KEY_LEN]>,
    kek: Zeroizing<[u8; KEY_LEN]>,
    previous: Option<Zeroizing<[u8; KEY_LEN]>>,
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
        let content = parse_key_file(&text).map_err(|reason| malformed(path, reason))?;
        Self::with_content(path, content)
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

        // Hard-linked into place: never overwrites an existing key file.
        place_key_file(path, &dir, file_name, content.as_bytes(), |from, to| {
            std::fs::hard_link(from, to)
        })
        .map_err(io_err)?;

        Self::with_content(
            path,
            KeyFileContent {
                root: kek.clone(),
                kek,
                previous: None,
            },
        )
    }

    fn with_content(path: &Path, c: KeyFileContent) -> Result<Self, CryptoError> {
        let schedule = |k: &[u8; KEY_LEN]| {
            UnboundKey::new(&AES_256_GCM, k.as_slice())
                .map(LessSafeKey::new)
                .map_err(|_| CryptoError::Internal("AES-256-GCM key setup failed"))
        };
        let aead = schedule(&c.kek)?;
        let previous = match c.previous {
            Some(p) => {
                let a = schedule(&p)?;
                Some((p, a))
            }
            None => None,
        };
        Ok(Self {
            path: path.to_path_buf(),
            root: c.root,
            kek: c.kek,
            aead,
            previous,
        })
    }

    /// Whether a rotation is under way (the file still holds the previous wrapping key).
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// Starts a rotation: a fresh wrapping key becomes current and the present one is kept as
    /// previous (it still unwraps). The file is replaced atomically (written aside, fsynced,
    /// renamed, directory fsynced), so it holds either the old keys or all of the new ones.
    pub fn begin_rotation(&self) -> Result<Self, CryptoError> {
        if self.previous.is_some() {
            return Err(CryptoError::Internal("a key rotation is already under way"));
        }
        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.try_fill_bytes(kek.as_mut_slice())?;
        let content = KeyFileContent {
            root: self.root.clone(),
            kek,
            previous: Some(self.kek.clone()),
        };
        replace_key_file(&self.path, &content)?;
        Self::with_content(&self.path, content)
    }

    /// Ends a rotation: the previous wrapping key is dropped from the file. Call only once no
    /// stored key needs it any more.
    pub fn finish_rotation(&self) -> Result<Self, CryptoError> {
        let content = KeyFileContent {
            root: self.root.clone(),
            kek: self.kek.clone(),
            previous: None,
        };
        replace_key_file(&self.path, &content)?;
        Self::with_content(&self.path, content)
    }

    /// Re-wraps a wrapped key under the current wrapping key (it may be wrapped under either).
    pub fn rewrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        let dek = self.unwrap(wrapped, context)?;
        self.wrap(&dek, context)
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

/// `lockbox-kek-v2`: named lines `root`, `kek` and, during a rotation, `previous`, each 64 hex.
const KEY_FILE_MAGIC_V2: &str = "lockbox-kek-v2";

fn hex_key(s: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, &'static str> {
    if s.len() != KEY_LEN * 2 {
        return Err("key line must be exactly 64 hex characters");
    }
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(s, k.as_mut_slice())
        .map_err(|_| "key line must be exactly 64 hex characters")?;
    Ok(k)
}

fn parse_key_file(text: &str) -> Result<KeyFileContent, &'static str> {
    let first = text.lines().next().map(str::trim_end);
    if first == Some(KEY_FILE_MAGIC_V2) {
        let (mut root, mut kek, mut previous) = (None, None, None);
        for line in text
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let (name, value) = line.split_once(' ').ok_or("expected `NAME HEX` lines")?;
            let slot = match name {
                "root" => &mut root,
                "kek" => &mut kek,
                "previous" => &mut previous,
                _ => return Err("unknown line (expected root, kek, previous)"),
            };
            if slot.is_some() {
                return Err("a key line appears twice");
            }
            *slot = Some(hex_key(value.trim())?);
        }
        return Ok(KeyFileContent {
            root: root.ok_or("missing the root line")?,
            kek: kek.ok_or("missing the kek line")?,
            previous,
        });
    }
    let kek = parse_key_file_v1(text)?;
    Ok(KeyFileContent {
        root: kek.clone(),
        kek,
        previous: None,
    })
}

/// Writes a v2 key file over `path` atomically: a private temporary file beside it, fsynced,
/// renamed into place, and the directory fsynced.
fn replace_key_file(path: &Path, c: &KeyFileContent) -> Result<(), CryptoError> {
    let io_err = |source| CryptoError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| malformed(path, "path has no file name"))?;
    let mut text = Zeroizing::new(String::new());
    text.push_str(KEY_FILE_MAGIC_V2);
    text.push('\n');
    for (name, key) in [
        ("root", Some(&c.root)),
        ("kek", Some(&c.kek)),
        ("previous", c.previous.as_ref()),
    ] {
        if let Some(k) = key {
            text.push_str(name);
            text.push(' ');
            text.push_str(&Zeroizing::new(hex::encode(k.as_slice())));
            text.push('\n');
        }
    }
    // Renamed into place: replaces the file as one step.
    place_key_file(path, &dir, file_name, text.as_bytes(), |from, to| {
        std::fs::rename(from, to)
    })
    .map_err(io_err)
}

/// Writes `content` to a private temporary file beside `path` (random name, 0600, fsynced), moves
/// it to `path` with `place` (hard link: never overwrite; rename: replace), and fsyncs `dir`: the
/// key file is then either as it was or complete, and its directory entry survives a power cut
/// (a key that vanished would make everything encrypted under it unreadable).
fn place_key_file(
    path: &Path,
    dir: &Path,
    file_name: &std::ffi::OsStr,
    content: &[u8],
    place: fn(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut suffix = [0u8; 8];
    OsRng
        .try_fill_bytes(&mut suffix)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
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
        tmp.write_all(content)?;
        tmp.sync_all()?;
        drop(tmp);
        place(&tmp_path, path)?;
        File::open(dir)?.sync_all()
    })();
    // Best effort: the temp name is random, so a leftover is harmless (after a rename it is gone).
    let _ = std::fs::remove_file(&tmp_path);
    result
}

fn parse_key_file_v1(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, &'static str> {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some(KEY_FILE_MAGIC) {
        return Err("first line must be `lockbox-kek-v1` or `lockbox-kek-v2`");
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
        let (nonce_bytes, sealed) = wrapped.parts()?;
        // Decrypted in place in a stack buffer that is wiped on drop. During a rotation a key
        // may still be wrapped under the previous wrapping key, which is tried second.
        let mut buf = Zeroizing::new([0u8; KEY_LEN + WRAP_TAG_LEN]);
        let candidates = std::iter::once(&self.aead).chain(self.previous.as_ref().map(|(_, a)| a));
        for aead in candidates {
            let nonce = Nonce::try_assume_unique_for_key(nonce_bytes)
                .map_err(|_| CryptoError::MalformedWrappedKey)?;
            let in_out = buf
                .get_mut(..sealed.len())
                .ok_or(CryptoError::MalformedWrappedKey)?;
            in_out.copy_from_slice(sealed);
            if let Ok(plain) = aead.open_in_place(nonce, Aad::from(context), in_out) {
                let bytes: [u8; KEY_LEN] = (&*plain)
                    .try_into()
                    .map_err(|_| CryptoError::MalformedWrappedKey)?;
                return Ok(DataKey::from_bytes(bytes));
            }
        }
        Err(CryptoError::UnwrapFailed)
    }

    fn derive_key(&self, purpose: &str) -> Result<[u8; 32], CryptoError> {
        derive_from_kek(&self.root, purpose)
    }

    fn wrapping_check_key(&self) -> Result<[u8; 32], CryptoError> {
        derive_from_kek(&self.kek, "kek-check-v1")
    }

    fn previous_check_key(&self) -> Result<Option<[u8; 32]>, CryptoError> {
        self.previous
            .as_ref()
            .map(|(k, _)| derive_from_kek(k, "kek-check-v1"))
            .transpose()
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
    fn rotation_keeps_the_root_and_unwraps_old_keys_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (v1, created) = LocalKeyFile::open_or_create(&path).unwrap();
        assert!(created);
        let dek = DataKey::generate();
        let old = v1.wrap(&dek, b"ctx").unwrap();
        let fingerprint = v1.derive_key("p").unwrap();
        let check = v1.wrapping_check_key().unwrap();

        let mid = v1.begin_rotation().unwrap();
        assert!(mid.rotating());
        // Reopened from disk mid-rotation: both keys unwrap, the root is unchanged.
        let mid = LocalKeyFile::open(&path).unwrap();
        assert_eq!(mid.derive_key("p").unwrap(), fingerprint);
        assert_eq!(mid.previous_check_key().unwrap(), Some(check));
        assert_ne!(mid.wrapping_check_key().unwrap(), check);
        let new = mid.rewrap(&old, b"ctx").unwrap();
        assert_eq!(mid.unwrap(&old, b"ctx").unwrap().as_bytes(), dek.as_bytes());

        let done = mid.finish_rotation().unwrap();
        let done2 = LocalKeyFile::open(&path).unwrap();
        for k in [&done, &done2] {
            assert!(!k.rotating());
            assert_eq!(k.unwrap(&new, b"ctx").unwrap().as_bytes(), dek.as_bytes());
            assert!(matches!(
                k.unwrap(&old, b"ctx"),
                Err(CryptoError::UnwrapFailed)
            ));
            assert_eq!(k.derive_key("p").unwrap(), fingerprint);
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn v2_key_files_are_parsed_strictly() {
        let k = "ab".repeat(32);
        for bad in [
            "lockbox-kek-v2\nkek AB\n".to_owned(),
            format!("lockbox-kek-v2\nkek {k}\n"),
            format!("lockbox-kek-v2\nroot {k}\nkek {k}\nkek {k}\n"),
            format!("lockbox-kek-v2\nroot {k}\nkek {k}\nother {k}\n"),
        ] {
            assert!(parse_key_file(&bad).is_err(), "{bad:?}");
        }
        assert!(parse_key_file(&format!("lockbox-kek-v2\nroot {k}\nkek {k}\n")).is_ok());
    }

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
