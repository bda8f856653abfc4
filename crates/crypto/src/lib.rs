//! Lockbox encryption at rest: per-file data keys, their wrapping by a key-encryption key (KEK) from a pluggable key provider, chunked AES-256-GCM file encryption with random-access reads, and keyed fingerprints.
//!
//! The invariant this crate upholds: bytes that reach storage are ciphertext.
//! Every stored file has its own random [`DataKey`]; the data is sealed in
//! fixed-size chunks ([`CHUNK_SIZE`]) with AES-256-GCM and a fresh random nonce
//! for every seal, so a key/nonce pair is never reused, not even when a chunk
//! is rewritten or an upload is resumed. Data keys are stored only in wrapped
//! form ([`WrappedKey`]), encrypted under the KEK of a [`KeyProvider`] (by
//! default [`LocalKeyFile`], a key file kept outside the data directory).
//! Destroying a wrapped key therefore makes the file's ciphertext unreadable
//! (crypto-shredding). Keys for other purposes, such as the HMAC key for the
//! inventory's fingerprints ([`hmac_sha256`]), are derived from the KEK with
//! HKDF so they are independent of it and of each other; [`seal`]/[`open`] protect
//! short stored secrets (TOTP seeds) under such a purpose key.

mod chunked;
mod keys;
mod seal;

pub use chunked::{
    ciphertext_len, plaintext_len, EncryptedReader, EncryptedWriter, MemStore, RandomAccess,
    CHUNK_SIZE, NONCE_SIZE, SLOT_SIZE, TAG_SIZE,
};
pub use keys::{hmac_sha256, DataKey, KeyProvider, LocalKeyFile, WrappedKey};
pub use seal::{open, seal, MAX_SEALED_PLAINTEXT};

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// I/O on the underlying byte store failed.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// I/O on the key file failed (including "not found" for [`LocalKeyFile::open`]).
    #[error("key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The key file can be read or written by group or others.
    #[error(
        "key file {path} is accessible by group or others (mode {mode:03o}); \
         refusing to use it, run `chmod 600 {path}` and check who may have copied it"
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },

    /// The key file exists but its content is not a valid key file.
    #[error("key file {path} is malformed: {reason}")]
    KeyFileMalformed { path: PathBuf, reason: String },

    /// A serialized wrapped key has the wrong length or version.
    #[error("malformed wrapped data key")]
    MalformedWrappedKey,

    /// Unwrapping failed: wrong KEK, wrong context (the key belongs to another
    /// file) or the wrapped key was altered.
    #[error("cannot unwrap data key: wrong key-encryption key, wrong context or tampered key")]
    UnwrapFailed,

    /// A chunk failed authentication: the ciphertext was altered, moved to
    /// another position or file, or decrypted with the wrong key.
    #[error("integrity check failed for chunk {chunk}")]
    Integrity { chunk: u64 },

    /// The store ends before the end of a chunk the metadata says exists.
    #[error("ciphertext truncated: chunk {chunk} is incomplete")]
    Truncated { chunk: u64 },

    /// A ciphertext length that no plaintext length maps to.
    #[error("impossible ciphertext length {len}")]
    InvalidCiphertextLength { len: u64 },

    /// An offset or length does not fit the 64-bit address space of the store.
    #[error("offset or length overflow")]
    Overflow,

    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(#[from] rand::Error),

    /// A cryptographic primitive rejected its input; this indicates a bug.
    #[error("internal cryptographic error: {0}")]
    Internal(&'static str),
}
