#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Instant;

use lockbox_crypto::*;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const ID: [u8; 16] = *b"blob-0123456789a";
const CS: u64 = CHUNK_SIZE as u64;
const SS: u64 = SLOT_SIZE as u64;

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn write_all(key: &DataKey, data: &[u8], step: usize) -> MemStore {
    let mut w = EncryptedWriter::create(MemStore::new(), key.clone(), ID);
    let mut off = 0;
    for piece in data.chunks(step.max(1)) {
        w.write_at(off as u64, piece).unwrap();
        off += piece.len();
    }
    assert_eq!(w.len(), data.len() as u64);
    let (store, len) = w.finish().unwrap();
    assert_eq!(len, data.len() as u64);
    assert_eq!(store.len().unwrap(), ciphertext_len(len));
    store
}

fn read_all<R: RandomAccess>(r: &EncryptedReader<R>) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; r.plain_len() as usize];
    let mut done = 0;
    while done < out.len() {
        let n = r.read_at(done as u64, &mut out[done..])?;
        assert!(n > 0);
        done += n;
    }
    Ok(out)
}

fn read_back(
    store: MemStore,
    key: &DataKey,
    id: [u8; 16],
    len: u64,
) -> Result<Vec<u8>, CryptoError> {
    read_all(&EncryptedReader::new(store, key.clone(), id, len))
}

#[test]
fn round_trip_sizes() {
    let key = DataKey::generate();
    for size in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * 1024 * 1024 + 123,
    ] {
        for step in [1000, CHUNK_SIZE, 255 * 1024, usize::MAX] {
            if step == 1000 && size > 2 * CHUNK_SIZE {
                continue;
            }
            let data = pattern(size, size as u64);
            let store = write_all(&key, &data, step.min(size.max(1)));
            let back = read_back(store, &key, ID, size as u64).unwrap();
            assert!(back == data, "size {size} step {step}");
        }
    }
}

#[test]
fn reads_at_and_past_eof() {
    let key = DataKey::generate();
    let data = pattern(CHUNK_SIZE + 10, 1);
    let r = EncryptedReader::new(write_all(&key, &data, 4096), key, ID, data.len() as u64);
    let mut buf = vec![0u8; 100];
    assert_eq!(r.read_at(data.len() as u64, &mut buf).unwrap(), 0);
    assert_eq!(r.read_at(u64::MAX, &mut buf).unwrap(), 0);
    assert_eq!(r.read_at(data.len() as u64 - 3, &mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], &data[data.len() - 3..]);
    // Across the chunk boundary.
    assert_eq!(r.read_at(CS - 50, &mut buf).unwrap(), 60);
    assert_eq!(&buf[..60], &data[CHUNK_SIZE - 50..]);
    assert_eq!(r.read_at(0, &mut []).unwrap(), 0);
}

#[test]
fn random_writes_match_model() {
    let mut rng = StdRng::seed_from_u64(0x10c6b0);
    // Unoptimized builds run AES-GCM ~50x slower (its generics are compiled
    // at this crate's opt-level), so debug runs use fewer rounds.
    let rounds = if cfg!(debug_assertions) { 3 } else { 12 };
    for round in 0..rounds {
        let key = DataKey::generate();
        let mut model: Vec<u8> = Vec::new();
        let store = Arc::new(MemStore::new());
        let mut w = EncryptedWriter::create(store.clone(), key.clone(), ID);
        for _ in 0..60 {
            let max_off = model.len() + CHUNK_SIZE;
            let op = rng.gen_range(0..8);
            if op == 0 {
                let len = rng.gen_range(0..=max_off);
                model.resize(len, 0);
                w.truncate(len as u64).unwrap();
            } else if op == 1 {
                w.flush().unwrap();
                if rng.gen_bool(0.7) {
                    // Interrupted upload picked up again by a new writer.
                    let len = w.len();
                    drop(w);
                    w = EncryptedWriter::resume(store.clone(), key.clone(), ID, len);
                }
            } else {
                let off = if rng.gen_bool(0.3) {
                    model.len()
                } else {
                    rng.gen_range(0..=max_off)
                };
                let len = match rng.gen_range(0..4) {
                    0 => rng.gen_range(1..16),
                    1 => rng.gen_range(1..CHUNK_SIZE),
                    2 => rng.gen_range(CHUNK_SIZE..3 * CHUNK_SIZE),
                    _ => CHUNK_SIZE,
                };
                let data = pattern(len, rng.gen());
                if model.len() < off + len {
                    model.resize(off + len, 0);
                }
                model[off..off + len].copy_from_slice(&data);
                w.write_at(off as u64, &data).unwrap();
            }
            assert_eq!(w.len(), model.len() as u64, "round {round}");
        }
        let (store, len) = w.finish().unwrap();
        assert_eq!(len, model.len() as u64);
        assert_eq!(store.len().unwrap(), ciphertext_len(len));
        let r = EncryptedReader::new(store, key, ID, len);
        assert!(read_all(&r).unwrap() == model);
        for _ in 0..200 {
            let off = rng.gen_range(0..=model.len() + 10);
            let want = rng.gen_range(0..3 * CHUNK_SIZE);
            let mut buf = vec![0u8; want];
            let n = r.read_at(off as u64, &mut buf).unwrap();
            let expect = model.len().saturating_sub(off).min(want);
            assert_eq!(n, expect);
            assert!(buf[..n] == model[off..off + n]);
        }
    }
}

#[test]
fn resume_after_flush() {
    let key = DataKey::generate();
    let data = pattern(5 * CHUNK_SIZE + 777, 7);
    for cut in [0, 100, CHUNK_SIZE, 2 * CHUNK_SIZE + 5, 5 * CHUNK_SIZE + 700] {
        let mut w = EncryptedWriter::create(MemStore::new(), key.clone(), ID);
        w.write_at(0, &data[..cut]).unwrap();
        w.flush().unwrap();
        let len = w.len();
        // Simulate an interrupted upload: the writer is dropped after flush.
        let store = MemStore::from_vec(match w.finish() {
            Ok((s, _)) => s.to_vec(),
            Err(e) => panic!("{e}"),
        });
        let mut w = EncryptedWriter::resume(store, key.clone(), ID, len);
        w.write_at(cut as u64, &data[cut..]).unwrap();
        let (store, len) = w.finish().unwrap();
        assert!(
            read_back(store, &key, ID, len).unwrap() == data,
            "cut {cut}"
        );
    }

    // Drop without finish, then resume and overwrite inside the sealed part.
    let store = Arc::new(MemStore::new());
    let mut w = EncryptedWriter::create(store.clone(), key.clone(), ID);
    w.write_at(0, &data[..CHUNK_SIZE + 10]).unwrap();
    w.flush().unwrap();
    drop(w);
    let mut model = data[..CHUNK_SIZE + 10].to_vec();
    let mut w = EncryptedWriter::resume(store.clone(), key.clone(), ID, CS + 10);
    w.write_at(CS - 3, b"abcdef").unwrap();
    model[CHUNK_SIZE - 3..CHUNK_SIZE + 3].copy_from_slice(b"abcdef");
    w.write_at(5, b"xyz").unwrap();
    model[5..8].copy_from_slice(b"xyz");
    let (_, len) = w.finish().unwrap();
    let r = EncryptedReader::new(store, key, ID, len);
    assert!(read_all(&r).unwrap() == model);
}

#[test]
fn resume_with_wrong_length_or_key_fails_cleanly() {
    let key = DataKey::generate();
    let store = write_all(&key, &pattern(1000, 3), 1000);
    let bytes = store.to_vec();
    // Metadata claiming a different tail length cannot authenticate.
    let mut w = EncryptedWriter::resume(MemStore::from_vec(bytes.clone()), key.clone(), ID, 999);
    assert!(matches!(
        w.write_at(999, b"x"),
        Err(CryptoError::Integrity { chunk: 0 })
    ));
    let mut w = EncryptedWriter::resume(MemStore::from_vec(bytes), DataKey::generate(), ID, 1000);
    assert!(matches!(
        w.write_at(1000, b"x"),
        Err(CryptoError::Integrity { chunk: 0 })
    ));
}

fn nonce_of(store: &MemStore, chunk: u64) -> Vec<u8> {
    let all = store.to_vec();
    let start = (chunk * SS) as usize;
    all[start..start + NONCE_SIZE].to_vec()
}

#[test]
fn rewrites_use_fresh_nonces() {
    let key = DataKey::generate();
    let store = Arc::new(MemStore::new());
    let data = pattern(3 * CHUNK_SIZE + 100, 9);
    let mut w = EncryptedWriter::create(store.clone(), key.clone(), ID);
    w.write_at(0, &data).unwrap();
    w.flush().unwrap();

    let n0 = nonce_of(&store, 1);
    w.write_at(CS + 10, b"first").unwrap();
    let n1 = nonce_of(&store, 1);
    w.write_at(CS + 10, b"first").unwrap(); // same bytes, still a new nonce
    let n2 = nonce_of(&store, 1);
    w.write_at(CS, &data[CHUNK_SIZE..2 * CHUNK_SIZE]).unwrap(); // whole-chunk overwrite
    let n3 = nonce_of(&store, 1);
    assert!(n0 != n1 && n1 != n2 && n2 != n3 && n0 != n2 && n0 != n3 && n1 != n3);

    // Tail resealed on every flush after a change, also after resume.
    let t0 = nonce_of(&store, 3);
    w.write_at(3 * CS + 100, b"more").unwrap();
    w.flush().unwrap();
    let t1 = nonce_of(&store, 3);
    drop(w);
    let mut w = EncryptedWriter::resume(store.clone(), key.clone(), ID, 3 * CS + 104);
    w.write_at(3 * CS + 1, b"z").unwrap();
    w.flush().unwrap();
    let t2 = nonce_of(&store, 3);
    assert!(t0 != t1 && t1 != t2 && t0 != t2);
    // A flush with nothing pending writes nothing.
    w.flush().unwrap();
    assert_eq!(nonce_of(&store, 3), t2);
    let (_, len) = w.finish().unwrap();

    let mut model = data.clone();
    model[CHUNK_SIZE + 10..CHUNK_SIZE + 15].copy_from_slice(b"first");
    model[CHUNK_SIZE..2 * CHUNK_SIZE].copy_from_slice(&data[CHUNK_SIZE..2 * CHUNK_SIZE]);
    model.extend_from_slice(b"more");
    model[3 * CHUNK_SIZE + 1] = b'z';
    let r = EncryptedReader::new(store, key, ID, len);
    assert!(read_all(&r).unwrap() == model);
}

#[test]
fn same_plaintext_twice_gives_different_ciphertext() {
    let key = DataKey::generate();
    let data = pattern(CHUNK_SIZE, 4);
    let a = write_all(&key, &data, CHUNK_SIZE).to_vec();
    let b = write_all(&key, &data, CHUNK_SIZE).to_vec();
    assert_ne!(a[..NONCE_SIZE], b[..NONCE_SIZE]);
    assert_ne!(a[NONCE_SIZE..], b[NONCE_SIZE..]);
}

#[test]
fn any_flipped_byte_is_detected() {
    let key = DataKey::generate();
    // Single short chunk: every byte.
    let data = pattern(200, 5);
    let clean = write_all(&key, &data, 200).to_vec();
    for i in 0..clean.len() {
        let mut bad = clean.clone();
        bad[i] ^= 0x01;
        let err = read_back(MemStore::from_vec(bad), &key, ID, 200).unwrap_err();
        assert!(
            matches!(err, CryptoError::Integrity { chunk: 0 }),
            "byte {i}: {err}"
        );
    }
    // Multi-chunk: slot edges (nonce, tag) of every slot plus a stride through the bodies.
    let data = pattern(2 * CHUNK_SIZE + 300, 6);
    let clean = write_all(&key, &data, 10_000).to_vec();
    let mut positions: Vec<usize> = (0..clean.len()).step_by(997).collect();
    for slot in 0..3usize {
        let start = slot * SLOT_SIZE;
        let end = (start + SLOT_SIZE).min(clean.len());
        positions.extend(start..start + 40);
        positions.extend(end - 40..end);
    }
    for i in positions {
        let mut bad = clean.clone();
        bad[i] ^= 0x80;
        let err = read_back(MemStore::from_vec(bad), &key, ID, data.len() as u64).unwrap_err();
        let chunk = (i / SLOT_SIZE) as u64;
        assert!(
            matches!(err, CryptoError::Integrity { chunk: c } if c == chunk),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn swapped_slots_are_detected() {
    let key = DataKey::generate();
    let data = pattern(3 * CHUNK_SIZE, 8);
    let mut bytes = write_all(&key, &data, CHUNK_SIZE).to_vec();
    let (a, b) = bytes.split_at_mut(SLOT_SIZE);
    a.swap_with_slice(&mut b[..SLOT_SIZE]);
    let r = EncryptedReader::new(MemStore::from_vec(bytes), key, ID, data.len() as u64);
    let mut buf = vec![0u8; 10];
    assert!(matches!(
        r.read_at(0, &mut buf),
        Err(CryptoError::Integrity { chunk: 0 })
    ));
    assert!(matches!(
        r.read_at(CS, &mut buf),
        Err(CryptoError::Integrity { chunk: 1 })
    ));
    // The untouched chunk still reads fine.
    assert_eq!(r.read_at(2 * CS, &mut buf).unwrap(), 10);
    assert_eq!(buf, data[2 * CHUNK_SIZE..2 * CHUNK_SIZE + 10]);
}

#[test]
fn slot_moved_between_files_is_detected() {
    let key = DataKey::generate();
    let data = pattern(CHUNK_SIZE, 2);
    let store = write_all(&key, &data, CHUNK_SIZE);
    let mut other = ID;
    other[15] ^= 1;
    assert!(matches!(
        read_back(store, &key, other, CS),
        Err(CryptoError::Integrity { chunk: 0 })
    ));
}

#[test]
fn wrong_key_and_truncation_are_detected() {
    let key = DataKey::generate();
    let data = pattern(2 * CHUNK_SIZE + 50, 3);
    let store = write_all(&key, &data, 4096);
    let bytes = store.to_vec();
    assert!(matches!(
        read_back(
            MemStore::from_vec(bytes.clone()),
            &DataKey::generate(),
            ID,
            data.len() as u64
        ),
        Err(CryptoError::Integrity { chunk: 0 })
    ));
    let short = bytes[..bytes.len() - 1].to_vec();
    assert!(matches!(
        read_back(MemStore::from_vec(short), &key, ID, data.len() as u64),
        Err(CryptoError::Truncated { chunk: 2 })
    ));
    let short = bytes[..2 * SLOT_SIZE].to_vec();
    assert!(matches!(
        read_back(MemStore::from_vec(short), &key, ID, data.len() as u64),
        Err(CryptoError::Truncated { chunk: 2 })
    ));
    // Metadata length that disagrees with the sealed tail length.
    assert!(matches!(
        read_back(MemStore::from_vec(bytes), &key, ID, data.len() as u64 - 1),
        Err(CryptoError::Integrity { chunk: 2 })
    ));
}

#[test]
fn sparse_write_and_truncate() {
    let key = DataKey::generate();
    let mut w = EncryptedWriter::create(MemStore::new(), key.clone(), ID);
    w.write_at(3 * CS + 7, b"end").unwrap();
    let mut model = vec![0u8; 3 * CHUNK_SIZE + 10];
    model[3 * CHUNK_SIZE + 7..].copy_from_slice(b"end");
    w.truncate(CS + 1).unwrap();
    model.truncate(CHUNK_SIZE + 1);
    w.truncate(CS).unwrap();
    model.truncate(CHUNK_SIZE);
    w.truncate(CS + 20).unwrap();
    model.resize(CHUNK_SIZE + 20, 0);
    w.write_at(CS + 20, b"tail").unwrap();
    model.extend_from_slice(b"tail");
    w.truncate(10).unwrap();
    model.truncate(10);
    let (store, len) = w.finish().unwrap();
    assert_eq!(store.len().unwrap(), ciphertext_len(10));
    assert!(read_back(store, &key, ID, len).unwrap() == model);
}

#[test]
fn concurrent_readers_share_one_reader() {
    let key = DataKey::generate();
    let data = Arc::new(pattern(20 * CHUNK_SIZE + 5, 11));
    let r = Arc::new(EncryptedReader::new(
        write_all(&key, &data, 300_000),
        key,
        ID,
        data.len() as u64,
    ));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let r = r.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                let mut buf = vec![0u8; 100_000];
                for _ in 0..if cfg!(debug_assertions) { 50 } else { 200 } {
                    let off = rng.gen_range(0..data.len());
                    let n = r.read_at(off as u64, &mut buf).unwrap();
                    assert!(buf[..n] == data[off..off + n]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn store_never_contains_plaintext_marker() {
    let key = DataKey::generate();
    let marker = b"LOCKBOX-SECRET-MARKER-do-not-leak";
    let mut data = Vec::new();
    while data.len() < 3 * CHUNK_SIZE {
        data.extend_from_slice(marker);
        data.extend_from_slice(b" filler text ");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut w = EncryptedWriter::create(file, key.clone(), ID);
    w.write_at(0, &data).unwrap();
    w.write_at(100, marker).unwrap();
    data[100..100 + marker.len()].copy_from_slice(marker);
    let (file, len) = w.finish().unwrap();
    let on_disk = fs::read(&path).unwrap();
    assert_eq!(on_disk.len() as u64, ciphertext_len(len));
    assert!(!on_disk.windows(marker.len()).any(|w| w == marker));
    assert!(!on_disk.windows(8).any(|w| w == &marker[..8]));
    let r = EncryptedReader::new(file, key, ID, len);
    assert!(read_all(&r).unwrap() == data);
}

/// Counts writes so tests can check how often chunks get sealed.
struct Counting {
    inner: MemStore,
    writes: std::sync::atomic::AtomicUsize,
}

impl RandomAccess for Counting {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn sequential_writes_seal_each_chunk_once() {
    let store = Counting {
        inner: MemStore::new(),
        writes: Default::default(),
    };
    let key = DataKey::generate();
    let data = pattern(40 * CHUNK_SIZE + 1234, 13);
    let mut w = EncryptedWriter::create(&store, key.clone(), ID);
    let mut off = 0;
    for piece in data.chunks(255 * 1024) {
        w.write_at(off, piece).unwrap();
        off += piece.len() as u64;
    }
    // Only full chunks are sealed before the final flush.
    assert_eq!(store.writes.load(std::sync::atomic::Ordering::SeqCst), 40);
    w.finish().unwrap();
    assert_eq!(store.writes.load(std::sync::atomic::Ordering::SeqCst), 41);
    assert!(read_back(MemStore::from_vec(store.inner.to_vec()), &key, ID, off).unwrap() == data);
}

#[test]
fn key_wrapping_binds_context() {
    let dir = tempfile::tempdir().unwrap();
    let (kp, created) = LocalKeyFile::open_or_create(&dir.path().join("kek")).unwrap();
    assert!(created);
    let dek = DataKey::generate();
    let wrapped = kp.wrap(&dek, &ID).unwrap();
    assert_eq!(wrapped.to_vec().len(), WrappedKey::LEN);
    assert_eq!(wrapped.to_vec()[0], 1);
    let parsed = WrappedKey::from_bytes(&wrapped.to_vec()).unwrap();
    let back = kp.unwrap(&parsed, &ID).unwrap();

    // The unwrapped key decrypts what the original encrypted.
    let data = pattern(1000, 12);
    let store = write_all(&dek, &data, 1000);
    assert!(read_back(store, &back, ID, 1000).unwrap() == data);

    let mut other = ID;
    other[0] ^= 1;
    assert!(matches!(
        kp.unwrap(&parsed, &other),
        Err(CryptoError::UnwrapFailed)
    ));
    let mut tampered = wrapped.to_vec();
    tampered[20] ^= 1;
    assert!(matches!(
        kp.unwrap(&WrappedKey(tampered), &ID),
        Err(CryptoError::UnwrapFailed)
    ));
    // A different KEK cannot unwrap.
    let (kp2, _) = LocalKeyFile::open_or_create(&dir.path().join("kek2")).unwrap();
    assert!(matches!(
        kp2.unwrap(&parsed, &ID),
        Err(CryptoError::UnwrapFailed)
    ));
    // Same DEK wrapped twice gives different bytes (fresh nonce).
    assert_ne!(kp.wrap(&dek, &ID).unwrap(), wrapped);

    for bad in [vec![], vec![1u8; 60], vec![1u8; 62], {
        let mut v = wrapped.to_vec();
        v[0] = 2;
        v
    }] {
        assert!(matches!(
            WrappedKey::from_bytes(&bad),
            Err(CryptoError::MalformedWrappedKey)
        ));
        assert!(matches!(
            kp.unwrap(&WrappedKey(bad), &ID),
            Err(CryptoError::MalformedWrappedKey)
        ));
    }
}

#[test]
fn key_file_lifecycle_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("lockbox.kek");
    assert!(matches!(
        LocalKeyFile::open(&path),
        Err(CryptoError::KeyFileIo { .. })
    ));

    let (kp, created) = LocalKeyFile::open_or_create(&path).unwrap();
    assert!(created);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "lockbox-kek-v1");
    assert_eq!(lines[1].len(), 64);
    assert!(text.ends_with('\n'));
    // No temp files left behind.
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    assert!(kp.describe().contains(path.to_str().unwrap()));
    assert!(!kp.describe().contains(lines[1]));
    assert!(!format!("{kp:?}").contains(lines[1]));

    // Reopening yields the same KEK.
    let (kp2, created) = LocalKeyFile::open_or_create(&path).unwrap();
    assert!(!created);
    let dek = DataKey::generate();
    let w = kp.wrap(&dek, b"ctx").unwrap();
    kp2.unwrap(&w, b"ctx").unwrap();
    assert_eq!(
        kp.derive_key("fingerprint").unwrap(),
        kp2.derive_key("fingerprint").unwrap()
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), text);

    // Too-open permissions are refused, with a hint naming the file.
    for mode in [0o644, 0o640, 0o604, 0o660, 0o700 | 0o020] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = LocalKeyFile::open(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, CryptoError::KeyFilePermissions { .. }),
            "{mode:o}: {msg}"
        );
        assert!(
            msg.contains("chmod 600") && msg.contains(path.to_str().unwrap()),
            "{msg}"
        );
        assert!(LocalKeyFile::open_or_create(&path).is_err());
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    LocalKeyFile::open(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

    // Malformed content is refused, never replaced.
    for bad in [
        "",
        "lockbox-kek-v1\n",
        "lockbox-kek-v1\nabc\n",
        "hello\nworld\n",
    ] {
        fs::write(&path, bad).unwrap();
        let err = LocalKeyFile::open_or_create(&path).unwrap_err();
        assert!(
            matches!(err, CryptoError::KeyFileMalformed { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains(path.to_str().unwrap()));
        assert_eq!(fs::read_to_string(&path).unwrap(), bad);
    }
}

#[test]
fn derived_keys_are_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    let (kp, _) = LocalKeyFile::open_or_create(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let kek = hex::decode(text.lines().nth(1).unwrap()).unwrap();
    let a = kp.derive_key("fingerprint").unwrap();
    let b = kp.derive_key("audit").unwrap();
    let c = kp.derive_key("").unwrap();
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(b, c);
    for k in [a, b, c] {
        assert_ne!(k.as_slice(), kek.as_slice());
    }
    assert_eq!(kp.derive_key("fingerprint").unwrap(), a);
    let (other, _) = LocalKeyFile::open_or_create(&dir.path().join("kek2")).unwrap();
    assert_ne!(other.derive_key("fingerprint").unwrap(), a);

    let m1 = hmac_sha256(&a, b"file contents");
    assert_eq!(m1, hmac_sha256(&a, b"file contents"));
    assert_ne!(m1, hmac_sha256(&b, b"file contents"));
    assert_ne!(m1, hmac_sha256(&a, b"file contents!"));
}

#[test]
fn hmac_known_answer() {
    // RFC 4231 test case 1 uses a 20-byte key; with zero padding to 32 bytes
    // the MAC is unchanged (HMAC pads keys to the block size anyway).
    let mut key = [0u8; 32];
    key[..20].copy_from_slice(&[0x0b; 20]);
    assert_eq!(
        hex::encode(hmac_sha256(&key, b"Hi There")),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
}

#[test]
#[ignore = "throughput measurement; run with --release -- --ignored --nocapture"]
fn throughput_256mib() {
    const TOTAL: usize = 256 * 1024 * 1024;
    const REQ: usize = 255 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let key = DataKey::generate();
    let buf = pattern(REQ, 99);

    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let t = Instant::now();
    let mut w = EncryptedWriter::create(file, key.clone(), ID);
    let mut off = 0usize;
    while off < TOTAL {
        let n = REQ.min(TOTAL - off);
        w.write_at(off as u64, &buf[..n]).unwrap();
        off += n;
    }
    let (file, len) = w.finish().unwrap();
    let write_s = t.elapsed().as_secs_f64();

    let r = EncryptedReader::new(file, key, ID, len);
    let mut out = vec![0u8; REQ];
    let t = Instant::now();
    let mut off = 0u64;
    let mut check = 0u64;
    loop {
        let n = r.read_at(off, &mut out).unwrap();
        if n == 0 {
            break;
        }
        check = check.wrapping_add(out[0] as u64);
        off += n as u64;
    }
    let read_s = t.elapsed().as_secs_f64();
    assert_eq!(off, TOTAL as u64);
    let mib = TOTAL as f64 / (1024.0 * 1024.0);
    println!(
        "write+seal+fsync: {:.0} MiB/s ({write_s:.3}s), read+open: {:.0} MiB/s ({read_s:.3}s) [{check}]",
        mib / write_s,
        mib / read_s
    );

    // In-memory crypto-only figure, to separate cipher cost from the file system.
    let store = MemStore::new();
    let t = Instant::now();
    let mut w = EncryptedWriter::create(&store, DataKey::generate(), ID);
    let mut off = 0usize;
    while off < 64 * 1024 * 1024 {
        w.write_at(off as u64, &buf).unwrap();
        off += REQ;
    }
    w.finish().unwrap();
    println!(
        "in-memory seal: {:.0} MiB/s",
        (off as f64 / 1048576.0) / t.elapsed().as_secs_f64()
    );
}
