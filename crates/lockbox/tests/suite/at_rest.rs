//! Stored bytes are ciphertext: no plaintext marker anywhere under the data directory (blobs, lockbox.db, -wal,
//! -shm); deleting a file removes its blob (crypto-shredding); a corrupted wrapped key makes exactly that file
//! unreadable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::*;
use rusqlite::types::Value;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

fn grep_data_dir(s: &TestServer, needle: &[u8]) -> Vec<PathBuf> {
    let files = s.data_files();
    assert!(
        !files.is_empty(),
        "data dir {} is empty",
        s.data_dir.display()
    );
    files
        .into_iter()
        .filter(|f| {
            std::fs::read(f)
                .map(|c| contains_bytes(&c, needle))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn uploaded_plaintext_never_reaches_the_disk() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    assert!(!s.key_file.starts_with(&s.data_dir));
    let marker = format!("LOCKBOX-MARKER-{}", random_hex(16));
    let small = s.dir.path().join("small.txt");
    std::fs::write(&small, format!("{marker}\n").repeat(50)).unwrap();
    let big = s.dir.path().join("big.txt");
    let line = format!("{marker} patient record filler filler filler\n");
    std::fs::write(&big, line.repeat(5 * MIB / line.len() + 1)).unwrap();

    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} /home/small.txt\nput {} /home/big.txt\n",
            small.display(),
            big.display()
        ),
    );
    // A second copy, uploaded with password auth.
    s.sftp_ok(
        "alice",
        Auth::Password(PASSWORD),
        &format!("put {} /home/copy.txt\n", big.display()),
    );

    // Sanity: the server really has them.
    let back = s.dir.path().join("big.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("get /home/big.txt {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), sha256_file(&big));

    let hits = grep_data_dir(&s, marker.as_bytes());
    assert!(
        hits.is_empty(),
        "plaintext marker found under the data dir (server running): {hits:?}"
    );

    // The master key's bytes are not stored in the data dir either.
    let kf = std::fs::read(&s.key_file).unwrap_or_default();
    let kf_trim = String::from_utf8_lossy(&kf).trim().to_string();
    if kf_trim.len() >= 16 {
        let hits = grep_data_dir(&s, kf_trim.as_bytes());
        assert!(
            hits.is_empty(),
            "master key material found in the data dir: {hits:?}"
        );
    }

    // After a stop (WAL checkpoint etc.), still nothing.
    s_stop_and_check(s, &marker);
}

fn s_stop_and_check(mut s: TestServer, marker: &str) {
    s.stop();
    let hits = grep_data_dir(&s, marker.as_bytes());
    assert!(
        hits.is_empty(),
        "plaintext marker found under the data dir (server stopped): {hits:?}"
    );
}

fn blob_dir(s: &TestServer) -> PathBuf {
    s.data_dir.join("blobs")
}

#[test]
fn delete_removes_blob_and_download_fails() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let keep = s.dir.path().join("keep.bin");
    let keep_hash = write_random_file(&keep, 2 * MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/keep.bin\n", keep.display()),
    );

    let before = file_set(&blob_dir(&s));
    let victim = s.dir.path().join("victim.bin");
    write_random_file(&victim, 3 * MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/victim.bin\n", victim.display()),
    );
    let after = file_set(&blob_dir(&s));
    let new_blobs: Vec<PathBuf> = after.difference(&before).cloned().collect();
    assert!(
        !new_blobs.is_empty(),
        "uploading victim.bin created no new file under {}; files: {after:?}",
        blob_dir(&s).display()
    );

    s.sftp_ok("alice", Auth::Key(&key), "rm /home/victim.bin\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<&PathBuf> = new_blobs.iter().filter(|p| p.exists()).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "blob(s) of the deleted file still on disk after 20 s: {left:?}"
        );
        thread::sleep(Duration::from_millis(250));
    }
    let o = s.sftp(
        "alice",
        Auth::Key(&key),
        &format!(
            "get /home/victim.bin {}/victim.back\n",
            s.dir.path().display()
        ),
    );
    assert!(
        !o.status.success(),
        "deleted file still downloadable:\n{}",
        describe(&o)
    );

    // The other file is unaffected.
    let back = s.dir.path().join("keep.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("get /home/keep.bin {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), keep_hash);

    // Its wrapped data key is gone from the metadata (row deleted, or key column cleared).
    let mut s = s;
    s.stop();
    let conn = rusqlite::Connection::open(db_path(&s.data_dir)).unwrap();
    if let Some((table, col)) = find_wrapped_key_column(&conn) {
        let rows = rows_named(&conn, &table, &col, "victim.bin");
        for (_, v) in rows {
            assert!(
                matches!(v, Value::Null) || matches!(&v, Value::Blob(b) if b.is_empty()),
                "deleted file still has a wrapped key in {table}.{col}: {v:?}"
            );
        }
    }
}

/// (table, column) holding wrapped data keys of committed files: `files.wrapped_key` if present, else the first
/// table with a `name` column and a column whose name contains `wrap`.
fn find_wrapped_key_column(conn: &rusqlite::Connection) -> Option<(String, String)> {
    let cols = table_columns(conn, "files");
    if cols.iter().any(|(c, _)| c == "wrapped_key") {
        return Some(("files".into(), "wrapped_key".into()));
    }
    let mut st = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap();
    let tables: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for t in tables {
        if t == "uploads" {
            continue;
        }
        let cols = table_columns(conn, &t);
        if cols.iter().any(|(c, _)| c == "name") {
            if let Some((c, _)) = cols.iter().find(|(c, _)| c.contains("wrap")) {
                return Some((t, c.clone()));
            }
        }
    }
    None
}

/// (rowid, key value) of every row of `table` whose `name` is `name`.
fn rows_named(
    conn: &rusqlite::Connection,
    table: &str,
    col: &str,
    name: &str,
) -> Vec<(i64, Value)> {
    let mut st = conn
        .prepare(&format!(
            "SELECT rowid, \"{col}\" FROM \"{table}\" WHERE name = ?1"
        ))
        .unwrap();
    st.query_map([name], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Value>(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn corrupt(v: &Value) -> Value {
    match v {
        Value::Blob(b) => {
            let mut b = b.clone();
            assert!(!b.is_empty(), "empty wrapped key");
            let i = b.len() / 2;
            b[i] ^= 0x5a;
            Value::Blob(b)
        }
        Value::Text(t) => {
            let mut c: Vec<char> = t.chars().collect();
            let i = c.len() / 2;
            c[i] = if c[i] == 'A' {
                'B'
            } else if c[i] == '0' {
                '1'
            } else if c[i].is_ascii_digit() {
                '0'
            } else {
                'A'
            };
            Value::Text(c.into_iter().collect())
        }
        other => panic!("unexpected wrapped key value {other:?}"),
    }
}

#[test]
fn corrupted_wrapped_key_breaks_only_that_file() {
    let mut s = TestServer::start();
    let key = s.setup_acme_alice();
    let victim = s.dir.path().join("victim.bin");
    write_random_file(&victim, MIB + 12345);
    let other = s.dir.path().join("other.bin");
    let other_hash = write_random_file(&other, MIB + 777);
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} /home/victim.bin\nput {} /home/other.bin\n",
            victim.display(),
            other.display()
        ),
    );
    s.stop();

    {
        let conn = rusqlite::Connection::open(db_path(&s.data_dir)).unwrap();
        let (table, col) = find_wrapped_key_column(&conn).unwrap_or_else(|| {
            panic!(
                "no wrapped-key column found; schema:\n{}",
                schema_dump(&conn)
            )
        });
        let rows = rows_named(&conn, &table, &col, "victim.bin");
        assert!(
            !rows.is_empty(),
            "no row named victim.bin in {table}; schema:\n{}",
            schema_dump(&conn)
        );
        for (rowid, v) in rows {
            if matches!(v, Value::Null) {
                continue;
            }
            let bad = corrupt(&v);
            conn.execute(
                &format!("UPDATE \"{table}\" SET \"{col}\" = ?1 WHERE rowid = ?2"),
                rusqlite::params![bad, rowid],
            )
            .unwrap();
        }
    }
    s.restart();

    let out_dir = s.dir.path().to_path_buf();
    let out_dir = out_dir.as_path();
    let o = s.sftp(
        "alice",
        Auth::Key(&key),
        &format!("get /home/victim.bin {}/victim.back\n", out_dir.display()),
    );
    assert!(
        !o.status.success(),
        "download with a corrupted wrapped key succeeded:\n{}",
        describe(&o)
    );
    assert!(
        !stderr_of(&o).trim().is_empty(),
        "no error message:\n{}",
        describe(&o)
    );
    if let Ok(c) = std::fs::read(out_dir.join("victim.back")) {
        assert_ne!(
            c,
            std::fs::read(&victim).unwrap(),
            "plaintext came back despite the corrupted key"
        );
    }
    s.assert_alive("after a download with a corrupted key");

    let back = out_dir.join("other.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("get /home/other.bin {}\n", back.display()),
    );
    assert_eq!(
        sha256_file(&back),
        other_hash,
        "an unrelated file was affected"
    );
}
