//! Sealing short values (a TOTP secret, a token) under a purpose key from
//! [`crate::KeyProvider::derive_key`], for values that must be stored but
//! are useless to whoever copies the database. Format: version byte, random
//! 96-bit nonce, AES-256-GCM ciphertext and tag. `aad` binds the value to its
//! owner (say, a user id) so a sealed value cannot be moved to another row.

use rand::rngs::OsRng;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use crate::CryptoError;

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Longest value [`seal`] accepts; it is for secrets, not files.
pub const MAX_SEALED_PLAINTEXT: usize = 4096;

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Internal("AES-256-GCM key setup failed"))
}

/// Encrypts `plain` under `key` with a fresh random nonce.
pub fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if plain.len() > MAX_SEALED_PLAINTEXT {
        return Err(CryptoError::Internal("value too long to seal"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.try_fill_bytes(&mut nonce)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + TAG_LEN);
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let body = out
        .get_mut(1 + NONCE_LEN..)
        .ok_or(CryptoError::Internal("seal failed"))?;
    let tag = aead_key(key)?
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| CryptoError::Internal("seal failed"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Reverses [`seal`]; fails unless `key` and `aad` match and the bytes are unaltered.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&version, rest) = sealed.split_first().ok_or(CryptoError::UnwrapFailed)?;
    if version != SEAL_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::UnwrapFailed);
    }
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::UnwrapFailed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let plain_len = aead_key(key)?
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| CryptoError::UnwrapFailed)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = [7u8; 32];
        let a = seal(&key, b"user:1", b"secret").unwrap();
        let b = seal(&key, b"user:1", b"secret").unwrap();
        assert_ne!(a, b, "every seal draws a fresh nonce");
        assert_eq!(open(&key, b"user:1", &a).unwrap().as_slice(), b"secret");
        assert!(open(&key, b"user:2", &a).is_err(), "wrong owner");
        assert!(open(&[8u8; 32], b"user:1", &a).is_err(), "wrong key");
        let mut tampered = a.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open(&key, b"user:1", &tampered).is_err());
        assert!(open(&key, b"user:1", &a[..10]).is_err());
        assert!(open(&key, b"user:1", &[]).is_err());
    }
}
