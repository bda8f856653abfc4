//! Never lose or corrupt a byte. An overwrite interrupted part way and then resumed by each client
//! partners use (OpenSSH `reput`, lftp `put -c`, paramiko writes at offsets, the HTTPS resumable
//! upload) commits exactly the new file, whether the new file is larger or smaller than the old
//! one; an appending client whose idea of the stored size is wrong is refused, never spliced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;
use crate::common::web::{Person, Web};
use crate::sftp_clients::{audit, lftp_command, py_client, status_of};

use std::path::Path;
use std::time::{Duration, Instant};

use common::fxp::*;
use common::*;
use serde_json::json;

/// SSH_FXF_APPEND (draft-ietf-secsh-filexfer-02 6.3).
const SSH_FXF_APPEND_FLAG: u32 = 0x0000_0004;

/// Opens `path` with `pflags`, sends `data` as pipelined 32 KiB WRITEs from `offset` (each must
/// be acknowledged), then drops the connection without CLOSE, and waits (bounded) until the
/// server has recorded the upload as interrupted.
pub(crate) fn write_then_drop(
    s: &TestServer,
    key: &Path,
    path: &str,
    pflags: u32,
    offset: u64,
    data: &[u8],
) {
    let interrupted = || audit(s).matches("upload_interrupted").count();
    let before = interrupted();
    let mut raw = RawSftp::connect(s.port, "alice", key);
    raw.init();
    let h = match raw.request(&open(1, path.as_bytes(), pflags), Duration::from_secs(60)) {
        Ok((HANDLE, body)) => parse_handle(&body).unwrap().1,
        other => panic!("OPEN {path}: {other:?}"),
    };
    let mut id = 2;
    for (i, block) in data.chunks(32 * 1024).enumerate() {
        raw.send(&write(id, &h, offset + (i * 32 * 1024) as u64, block))
            .unwrap();
        id += 1;
    }
    for _ in 2..id {
        assert_eq!(status_of(&mut raw, "write").1, FX_OK);
    }
    raw.finish();
    let deadline = Instant::now() + Duration::from_secs(60);
    while interrupted() == before {
        assert!(
            Instant::now() < deadline,
            "{path}: never recorded as interrupted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `data` into `path` the way an overwriting `put` does (open with truncation), then
/// drops the connection: an interrupted overwrite.
fn interrupt_overwrite(s: &TestServer, key: &Path, path: &str, data: &[u8]) {
    write_then_drop(s, key, path, WRITE_FLAG | CREAT | TRUNC, 0, data);
}

fn random_bytes(n: usize, seed: u8) -> Vec<u8> {
    // Different content per seed and per position, so a splice of two versions is detectable.
    let mut out = Vec::with_capacity(n);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(seed);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn sha_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// The committed content of `path`, downloaded with OpenSSH `sftp` by another user (carol).
fn committed(s: &TestServer, carol: &Path, path: &str, tag: &str) -> Vec<u8> {
    let back = s.dir.path().join(format!("back-{tag}"));
    s.sftp_ok(
        "carol",
        Auth::Key(carol),
        &format!("get {path} {}\n", back.display()),
    );
    std::fs::read(&back).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Resumer {
    Reput,
    Lftp,
    Paramiko,
    Https,
}

/// Sizes of (old, new, cut): the new version larger than the old, then smaller. Cuts fall inside a
/// 64 KiB chunk, and the larger case's cut lies beyond the old file's end.
const CASES: [(&str, usize, usize, usize); 2] = [
    ("larger", MIB, 5 * MIB / 2, 3 * MIB / 2 + 12_345),
    ("smaller", 3 * MIB, 5 * MIB / 4, 600_001),
];

fn resume_with(
    s: &TestServer,
    web: &Web,
    token: &str,
    key: &Path,
    how: Resumer,
    path: &str,
    local: &Path,
) {
    match how {
        Resumer::Reput => {
            let o = sftp_batch_opts(
                s.port,
                "alice",
                Auth::Key(key),
                &format!("reput {} {path}\n", local.display()),
                &[],
                BIG_TIMEOUT,
            );
            assert!(o.status.success(), "reput: {}", describe(&o));
        }
        Resumer::Lftp => {
            let o = run_with_timeout(
                &mut lftp_command(s, key, &format!("put -c {} -o {path}", local.display())),
                None,
                BIG_TIMEOUT,
            );
            assert!(o.status.success(), "lftp put -c: {}", describe(&o));
        }
        Resumer::Paramiko => {
            let (v, o) = py_client(
                s,
                "paramiko-resume",
                "alice",
                key,
                path,
                &["--local", &local.display().to_string()],
                BIG_TIMEOUT,
            );
            assert!(o.status.success(), "paramiko resume: {v}\n{}", describe(&o));
        }
        Resumer::Https => {
            let r = web
                .post("/api/v1/uploads")
                .bearer(token)
                .json(&json!({"path": path, "resume": true}))
                .send();
            r.assert_status(201);
            let id = r.json()["id"].as_str().unwrap().to_owned();
            let offset = r.json()["offset"].as_u64().unwrap() as usize;
            let data = std::fs::read(local).unwrap();
            assert!(offset <= data.len(), "HTTPS resume offset {offset}");
            let rest = s.dir.path().join("https-rest");
            std::fs::write(&rest, &data[offset..]).unwrap();
            web.put(&format!("/api/v1/uploads/{id}?offset={offset}"))
                .bearer(token)
                .file(&rest)
                .send()
                .assert_status(200);
            web.post(&format!("/api/v1/uploads/{id}/commit"))
                .bearer(token)
                .json(&json!({"size": data.len()}))
                .send()
                .assert_status(201);
        }
    }
}

#[test]
fn an_interrupted_overwrite_resumed_by_every_client_commits_exactly_the_new_file() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let carol = s.user_with_key("acme", "carol");
    s.create_folder("acme", "shared");
    s.grant_user("acme", "shared", "alice", "all");
    s.grant_user("acme", "shared", "carol", "all");
    let web = Web::new(&s);
    let token = web.token_for(&Person::new("alice", PASSWORD), "read,write");

    let mut failures = Vec::new();
    for how in [
        Resumer::Reput,
        Resumer::Lftp,
        Resumer::Paramiko,
        Resumer::Https,
    ] {
        for (case, old_len, new_len, cut) in CASES {
            let tag = format!("{how:?}-{case}");
            let path = format!("/shared/{tag}.bin");
            let old = random_bytes(old_len, 1);
            let new = random_bytes(new_len, 2);
            let old_file = s.dir.path().join(format!("old-{tag}"));
            std::fs::write(&old_file, &old).unwrap();
            let new_file = s.dir.path().join(format!("new-{tag}"));
            std::fs::write(&new_file, &new).unwrap();
            s.sftp_ok(
                "alice",
                Auth::Key(&alice),
                &format!("put {} {path}\n", old_file.display()),
            );
            interrupt_overwrite(&s, &alice, &path, &new[..cut]);
            // Everyone else still sees the old version, whole.
            assert_eq!(
                sha_hex(&committed(&s, &carol, &path, &format!("{tag}-mid"))),
                sha_hex(&old),
                "{tag}: the old version changed before the overwrite completed"
            );
            resume_with(&s, &web, &token, &alice, how, &path, &new_file);
            let got = committed(&s, &carol, &path, &tag);
            if got != new {
                failures.push(format!(
                    "{tag}: committed {} bytes (sha {}), want {} bytes (sha {})",
                    got.len(),
                    sha_hex(&got),
                    new.len(),
                    sha_hex(&new)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "resumed overwrites did not commit the new file:\n{}",
        failures.join("\n")
    );
}

#[test]
fn an_appending_client_with_a_wrong_idea_of_the_size_is_refused_not_spliced() {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let old = random_bytes(MIB, 3);
    let new = random_bytes(3 * MIB, 4);
    let old_file = s.dir.path().join("old");
    std::fs::write(&old_file, &old).unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/f.bin\n", old_file.display()),
    );
    let cut = 2 * MIB + 1;
    interrupt_overwrite(&s, &alice, "/home/f.bin", &new[..cut]);

    // A client that took its size from somewhere else (the old version's 1 MiB) and appends from
    // there: the first write is refused, the close does not commit, the old version stays.
    let mut raw = RawSftp::connect(s.port, "alice", &alice);
    raw.init();
    let h = match raw.request(
        &open(1, b"/home/f.bin", WRITE_FLAG | CREAT | SSH_FXF_APPEND_FLAG),
        Duration::from_secs(60),
    ) {
        Ok((HANDLE, body)) => parse_handle(&body).unwrap().1,
        other => panic!("OPEN: {other:?}"),
    };
    raw.send(&write(2, &h, MIB as u64, &new[MIB..MIB + 32768]))
        .unwrap();
    let (_, code, msg) = status_of(&mut raw, "append write");
    assert_ne!(
        code, FX_OK,
        "a write at the wrong append offset was accepted"
    );
    assert!(msg.contains("append at offset"), "{msg}");
    raw.send(&close(3, &h)).unwrap();
    let (_, code, _) = status_of(&mut raw, "close");
    assert_ne!(code, FX_OK, "an upload with a refused write was committed");
    raw.finish();
    let back = s.dir.path().join("back");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/f.bin {}\n", back.display()),
    );
    assert_eq!(
        sha_hex(&std::fs::read(&back).unwrap()),
        sha_hex(&old),
        "the old version did not survive a refused append"
    );
    // What arrived before is still resumable, from the size `stat` reports.
    let ls = s.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home/f.bin\n");
    assert_eq!(ls_size(&ls, "f.bin"), Some(cut as u64), "{ls}");
}

/// The exit status of a server told to stop with `signal`, waiting (bounded) for it.
fn stop_with(s: &mut TestServer, signal: &str) -> std::process::ExitStatus {
    s.signal_and_wait(signal, Duration::from_secs(90))
        .expect("the server was not running")
}

#[test]
fn sigterm_lets_a_transfer_in_flight_finish_refuses_newcomers_and_exits_0() {
    let _heavy = heavy_lock();
    let mut s = TestServer::start_with(&["--shutdown-grace-secs", "120"]);
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("six.bin");
    let want = write_random_file(&local, 6 * MIB);
    // About 6 s at 8 Mbit/s: still in flight when the signal comes.
    let mut bg = BackgroundSftp::spawn(
        s.port,
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/six.bin\n", local.display()),
        &["-l", "8000"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        bg.try_status().is_none(),
        "the rate-limited put ended early"
    );
    let pid = s.pid().unwrap();
    let _ = std::process::Command::new("/bin/sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status();
    // Draining: a newcomer is not accepted (bounded wait for the listener to close).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = s.sftp("alice", Auth::Key(&alice), "ls /home\n");
        if !o.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a new connection was still served after SIGTERM:\n{}",
            describe(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, out, err) = bg.wait(Duration::from_secs(120));
    assert!(
        st.is_some_and(|st| st.success()),
        "the put in flight did not finish during the grace period ({st:?}):\n{out}\n{err}\n{}",
        s.log()
    );
    let code = stop_with(&mut s, "-TERM");
    assert_eq!(
        code.code(),
        Some(0),
        "exit after SIGTERM: {code}\n{}",
        s.log()
    );
    let log = s.log();
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    s.restart();
    let back = s.dir.path().join("six.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/six.bin {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), want);
    let records = audit(&s);
    assert!(
        records.contains("server_stopped") && records.contains("\"interrupted_transfers\":0"),
        "no clean server_stopped record:\n{records}"
    );
}

#[test]
fn sigterm_after_the_grace_period_keeps_the_upload_resumable_and_audited() {
    let _heavy = heavy_lock();
    let mut s = TestServer::start_with(&["--shutdown-grace-secs", "1"]);
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("big.bin");
    let want = write_random_file(&local, 24 * MIB);
    let bg = BackgroundSftp::spawn(
        s.port,
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/big.bin\n", local.display()),
        &["-l", "40000"],
    );
    std::thread::sleep(Duration::from_millis(2000));
    let code = stop_with(&mut s, "-TERM");
    let _ = bg.kill9();
    assert_eq!(
        code.code(),
        Some(0),
        "exit after SIGTERM: {code}\n{}",
        s.log()
    );
    assert!(
        s.log().contains("interrupting 1 transfer"),
        "the log does not say what was interrupted:\n{}",
        s.log()
    );
    s.restart();
    let records = audit(&s);
    let interrupted = records
        .lines()
        .find(|l| l.contains("upload_interrupted"))
        .unwrap_or_else(|| panic!("no upload_interrupted record:\n{records}"));
    assert!(
        records.contains("server_stopped") && records.contains("server shutting down"),
        "the shutdown is not in the audit log:\n{records}"
    );
    let ls = s.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home/big.bin\n");
    let partial = ls_size(&ls, "big.bin").unwrap_or(0);
    assert!(
        partial > 0 && partial < 24 * MIB as u64,
        "partial size {partial} after an interrupted shutdown ({interrupted})"
    );
    let back = reput_then_get(&s, &alice, &local, "/home/big.bin");
    assert_eq!(
        sha256_file(&back),
        want,
        "resumed after shutdown: content differs"
    );
}

/// One sealed 64 KiB chunk on disk: 12-byte nonce, ciphertext, 16-byte tag.
const SLOT: u64 = 65_536 + 28;

#[test]
fn a_damaged_chunk_fails_the_download_with_the_integrity_error_not_end_of_file() {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("f.bin");
    write_random_file(&local, MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/f.bin\n", local.display()),
    );
    let blobs: Vec<_> = walk_files(&s.data_dir.join("blobs"));
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    bytes[(5 * SLOT + 1000) as usize] ^= 0x40;
    std::fs::write(&blobs[0], &bytes).unwrap();
    let back = s.dir.path().join("f.back");
    let o = s.sftp(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/f.bin {}\n", back.display()),
    );
    assert!(
        !o.status.success(),
        "a damaged file downloaded without error"
    );
    // OpenSSH names the status code only ("Failure"); what matters is that it is not EOF.
    let err = stderr_of(&o);
    assert!(
        !err.contains("End of file"),
        "the client took the damage for the end of the file:\n{}",
        describe(&o)
    );
    // A raw client sees the message, on the damaged chunk and on every later read of the handle,
    // an undamaged chunk included.
    let mut raw = RawSftp::connect(s.port, "alice", &alice);
    raw.init();
    let h = match raw.request(&open(1, b"/home/f.bin", READ_FLAG), Duration::from_secs(60)) {
        Ok((HANDLE, body)) => parse_handle(&body).unwrap().1,
        other => panic!("OPEN: {other:?}"),
    };
    let read = |id: u32, offset: u64| {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, &h);
        b.extend_from_slice(&offset.to_be_bytes());
        put_u32(&mut b, 32768);
        packet(READ, &b)
    };
    for (id, offset) in [(2u32, 5 * 65_536u64), (3, 15 * 65_536), (4, 0)] {
        match raw.request(&read(id, offset), Duration::from_secs(60)) {
            Ok((STATUS, body)) => {
                let (_, code, msg) = parse_status(&body).unwrap();
                assert_eq!(code, FX_FAILURE, "read at {offset}: {msg}");
                assert!(msg.contains("integrity"), "read at {offset}: {msg}");
            }
            other => panic!("read at {offset} after a damaged chunk: {other:?}"),
        }
    }
    raw.finish();
}

#[test]
fn under_systemd_it_reports_ready_and_stopping_on_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let child = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--key-file")
        .arg(dir.path().join("master.key"))
        .args([
            "serve",
            "--sftp-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("LOCKBOX_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed if the test fails half way, so no server outlives it.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(child);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("no READY=1 within 60 s");
    assert_eq!(&buf[..n], b"READY=1");
    let _ = std::process::Command::new("/bin/sh")
        .args(["-c", &format!("kill -TERM {}", child.0.id())])
        .status();
    let n = sock.recv(&mut buf).expect("no STOPPING=1 within 60 s");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            panic!("no exit within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn a_missing_or_different_key_file_is_refused_while_data_exists() {
    let mut s = TestServer::start();
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("f.bin");
    let want = write_random_file(&local, 300_000);
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/f.bin\n", local.display()),
    );
    s.stop();
    let serve = [
        "serve",
        "--sftp-listen",
        "127.0.0.1:0",
        "--https-listen",
        "127.0.0.1:0",
    ];
    let saved = s.dir.path().join("master.key.saved");
    std::fs::rename(&s.key_file, &saved).unwrap();

    // Missing: serve and the CLI refuse, say what to do, and create no new key.
    for args in [&serve[..], &["org", "list"][..]] {
        let o = s.cli(args);
        assert!(!o.status.success(), "{args:?} ran without its key file");
        let err = stderr_of(&o);
        assert!(
            err.contains("does not exist") && err.contains("Restore"),
            "{args:?}: unclear refusal:\n{err}"
        );
        assert!(
            !s.key_file.exists(),
            "{args:?} created a new key over existing data"
        );
    }

    // A well-formed key that is not this data directory's: refused, naming both check values.
    let other = format!("lockbox-kek-v1\n{}\n", "ab".repeat(32));
    std::fs::write(&s.key_file, other).unwrap();
    std::fs::set_permissions(
        &s.key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let o = s.cli(&serve);
    assert!(!o.status.success(), "serve started with another key");
    let err = stderr_of(&o);
    assert!(
        err.contains("is not the key of the data directory"),
        "{err}"
    );

    // The same key, in a data directory from before check values (the row removed): the stored
    // data keys themselves must open, so the wrong key is still refused.
    let db = s.data_dir.join("lockbox.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("DELETE FROM meta", []).unwrap();
    drop(c);
    let o = s.cli(&serve);
    assert!(
        !o.status.success(),
        "serve started with another key (no check value)"
    );
    assert!(
        stderr_of(&o).contains("does not open the data keys"),
        "{}",
        describe(&o)
    );

    // The right key back: everything is there.
    std::fs::rename(&saved, &s.key_file).unwrap();
    s.restart();
    let back = s.dir.path().join("f.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/f.bin {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), want);
}

/// Opens `path` for update without truncation (what paramiko "r+"/"a", psftp `reput` and Go's
/// O_APPEND do), writes `data` at `offset`, and drops the connection without CLOSE.
fn interrupt_update(s: &TestServer, key: &Path, path: &str, offset: u64, data: &[u8]) {
    write_then_drop(s, key, path, WRITE_FLAG, offset, data);
}

#[test]
fn an_interrupted_update_of_a_committed_file_is_discarded_never_resumed() {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let web = Web::new(&s);
    let token = web.token_for(&Person::new("alice", PASSWORD), "read,write");
    let v1 = random_bytes(2 * MIB + 5, 7);
    let f = s.dir.path().join("v1");
    std::fs::write(&f, &v1).unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/u.bin\n", f.display()),
    );
    interrupt_update(&s, &alice, "/home/u.bin", 100, b"patched");
    let records = audit(&s);
    assert!(
        records.contains("update of an existing file interrupted"),
        "the discarded update is not audited with its reason:\n{records}"
    );
    // The owner's stat shows the committed file, and the HTTPS resume starts empty.
    let ls = s.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home/u.bin\n");
    assert_eq!(ls_size(&ls, "u.bin"), Some(v1.len() as u64), "{ls}");
    let r = web
        .post("/api/v1/uploads")
        .bearer(&token)
        .json(&json!({"path": "/home/u.bin", "resume": true}))
        .send();
    r.assert_status(201);
    assert_eq!(
        r.json()["offset"],
        0,
        "HTTPS resumed an interrupted update: {}",
        r.describe()
    );
    let back = s.dir.path().join("u.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/u.bin {}\n", back.display()),
    );
    assert_eq!(sha_hex(&std::fs::read(&back).unwrap()), sha_hex(&v1));
}

#[test]
fn continuing_an_interrupted_upload_past_its_end_is_refused() {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let old = random_bytes(3 * MIB, 8);
    let new = random_bytes(4 * MIB, 9);
    let f = s.dir.path().join("old");
    std::fs::write(&f, &old).unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/g.bin\n", f.display()),
    );
    let cut = MIB + 3;
    interrupt_overwrite(&s, &alice, "/home/g.bin", &new[..cut]);
    // A client that took the committed file's size (3 MiB) from a listing, without APPEND.
    let mut raw = RawSftp::connect(s.port, "alice", &alice);
    raw.init();
    let h = match raw.request(
        &open(1, b"/home/g.bin", WRITE_FLAG | CREAT),
        Duration::from_secs(60),
    ) {
        Ok((HANDLE, body)) => parse_handle(&body).unwrap().1,
        other => panic!("OPEN: {other:?}"),
    };
    raw.send(&write(
        2,
        &h,
        3 * MIB as u64,
        &new[3 * MIB..3 * MIB + 32768],
    ))
    .unwrap();
    let (_, code, msg) = status_of(&mut raw, "write past the end");
    assert_ne!(
        code, FX_OK,
        "a write past the interrupted upload's end was accepted"
    );
    assert!(msg.contains("resume from"), "{msg}");
    raw.send(&close(3, &h)).unwrap();
    assert_ne!(status_of(&mut raw, "close").1, FX_OK);
    raw.finish();
    let back = s.dir.path().join("g.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/g.bin {}\n", back.display()),
    );
    assert_eq!(sha_hex(&std::fs::read(&back).unwrap()), sha_hex(&old));
}

fn key_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn key_rotation_rewraps_every_key_retires_the_old_one_and_resumes_when_cut() {
    let _heavy = heavy_lock();
    let mut s = TestServer::start();
    let alice = s.setup_acme_alice();
    let mut want = Vec::new();
    for i in 0..3 {
        let f = s.dir.path().join(format!("r{i}.bin"));
        want.push(write_random_file(&f, 200_000 + i * 70_000));
        s.sftp_ok(
            "alice",
            Auth::Key(&alice),
            &format!("put {} /home/r{i}.bin\n", f.display()),
        );
    }
    s.sftp_ok("alice", Auth::Key(&alice), "rm /home/r2.bin\n");
    want.pop();
    // An interrupted upload: its key lives in the staging table and must be re-wrapped too.
    let big = random_bytes(3 * MIB, 11);
    let big_file = s.dir.path().join("big");
    std::fs::write(&big_file, &big).unwrap();
    interrupt_overwrite(&s, &alice, "/home/big.bin", &big[..MIB + 7]);

    // Not while the server runs.
    let o = s.cli(&["key-provider", "rotate"]);
    assert!(!o.status.success(), "rotated under a running server");
    assert!(stderr_of(&o).contains("in use"), "{}", describe(&o));
    s.stop();

    let old_key = key_lines(&s.key_file);
    let saved_old = s.dir.path().join("old.key");
    std::fs::copy(&s.key_file, &saved_old).unwrap();
    let o = s.cli(&["key-provider", "rotate"]);
    assert!(o.status.success(), "rotate: {}", describe(&o));
    let said = stdout_of(&o);
    assert!(
        said.contains("2 file keys and 1 upload keys re-wrapped"),
        "{said}"
    );
    let new_key = key_lines(&s.key_file);
    assert_eq!(new_key[0], "lockbox-kek-v2");
    assert_eq!(
        new_key[1],
        format!("root {}", old_key[1]),
        "the derivation root changed"
    );
    assert!(new_key[2].starts_with("kek ") && new_key[2] != format!("kek {}", old_key[1]));
    assert_eq!(new_key.len(), 3, "the old key was not retired: {new_key:?}");

    let check_files = |s: &TestServer, tag: &str| {
        for (i, w) in want.iter().enumerate() {
            let back = s.dir.path().join(format!("r{i}.{tag}"));
            s.sftp_ok(
                "alice",
                Auth::Key(&alice),
                &format!("get /home/r{i}.bin {}\n", back.display()),
            );
            assert_eq!(&sha256_file(&back), w, "r{i}.bin after rotation ({tag})");
        }
    };
    s.restart();
    check_files(&s, "rotated");
    s.stop();

    // The retired key no longer opens the data.
    let current = s.dir.path().join("current.key");
    std::fs::copy(&s.key_file, &current).unwrap();
    std::fs::copy(&saved_old, &s.key_file).unwrap();
    let o = s.cli(&["org", "list"]);
    assert!(!o.status.success(), "the retired key still opens the data");
    assert!(stderr_of(&o).contains("is not the key"), "{}", describe(&o));

    // A rotation cut after its new key file was written (before anything else): the file holds
    // the new key and the previous one. Everything still opens, and rotating again finishes.
    let cur = key_lines(&current);
    let fresh: String = random_hex(32);
    let cut = format!(
        "lockbox-kek-v2\n{}\nkek {fresh}\nprevious {}\n",
        cur[1],
        cur[2].trim_start_matches("kek ")
    );
    std::fs::write(&s.key_file, cut).unwrap();
    std::fs::set_permissions(
        &s.key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let o = s.cli(&["org", "list"]);
    assert!(
        o.status.success(),
        "mid-rotation key refused: {}",
        describe(&o)
    );
    // No backup mid-rotation: its keys are under two keys, its check value could name one.
    let bk = s.dir.path().join("mid-rotation-backup");
    let o = s.cli(&["backup", "--out", &bk.display().to_string()]);
    assert!(!o.status.success(), "a backup was taken mid-rotation");
    assert!(
        stderr_of(&o).contains("rotation is under way"),
        "{}",
        describe(&o)
    );
    let o = s.cli(&["key-provider", "rotate"]);
    assert!(o.status.success(), "resumed rotate: {}", describe(&o));
    assert!(
        stdout_of(&o).contains("continued an interrupted rotation"),
        "{}",
        describe(&o)
    );
    let done = key_lines(&s.key_file);
    assert_eq!(done.len(), 3, "{done:?}");
    assert_eq!(done[2], format!("kek {fresh}"));
    s.restart();
    check_files(&s, "resumed");
    // The interrupted upload survived both rotations and resumes byte-identically.
    let back = reput_then_get(&s, &alice, &big_file, "/home/big.bin");
    assert_eq!(sha_hex(&std::fs::read(&back).unwrap()), sha_hex(&big));
    let records = audit(&s);
    assert_eq!(records.matches("\"key_rotated\"").count(), 2, "{records}");
    let v = s.cli(&["audit", "verify"]);
    assert!(v.status.success(), "{}", describe(&v));
}

#[test]
fn an_upload_cut_by_a_server_crash_resumes_from_a_recent_point_not_from_zero() {
    let _heavy = heavy_lock();
    let mut s = TestServer::start();
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("big.bin");
    let want = write_random_file(&local, 24 * MIB);
    // About 5 MB/s: well past the first resume points (every 4 MiB) after 4 s, far from done.
    let bg = BackgroundSftp::spawn(
        s.port,
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/big.bin\n", local.display()),
        &["-l", "40000"],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait until the server has certainly received more than one resume interval: the client's
    // progress is not visible from here, so wait on time, then check the saved size.
    std::thread::sleep(Duration::from_secs(4));
    assert!(Instant::now() < deadline);
    s.signal_and_wait("-KILL", Duration::from_secs(30));
    let _ = bg.kill9();
    s.restart();
    let ls = s.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home/big.bin\n");
    let partial = ls_size(&ls, "big.bin").unwrap_or(0);
    assert!(
        partial >= 4 * MIB as u64 && partial < 24 * MIB as u64,
        "after a crash the upload resumes from {partial} (resume points every 4 MiB expected)"
    );
    let back = reput_then_get(&s, &alice, &local, "/home/big.bin");
    assert_eq!(sha256_file(&back), want);
}

/// `reput LOCAL REMOTE` with OpenSSH (must succeed), then `get` it back; returns the local copy.
fn reput_then_get(s: &TestServer, key: &Path, local: &Path, remote: &str) -> std::path::PathBuf {
    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Key(key),
        &format!("reput {} {remote}\n", local.display()),
        &[],
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "reput {remote}: {}", describe(&o));
    let back = s.dir.path().join(format!("back-{}", random_hex(4)));
    s.sftp_ok(
        "alice",
        Auth::Key(key),
        &format!("get {remote} {}\n", back.display()),
    );
    back
}

#[test]
fn sigterm_lets_an_https_download_in_flight_finish() {
    let _heavy = heavy_lock();
    let mut s = TestServer::start_with(&["--shutdown-grace-secs", "120"]);
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("dl.bin");
    // Large enough that socket buffers cannot hold the rest when the signal comes.
    let want = write_random_file(&local, 32 * MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/dl.bin\n", local.display()),
    );
    let web = Web::new(&s);
    let token = web.token_for(&Person::new("alice", PASSWORD), "read");
    let pid = s.pid().unwrap();
    // About 11 s at 3 MB/s: the signal comes while the body is being sent.
    let got = std::thread::scope(|scope| {
        let dl = scope.spawn(|| {
            web.get("/api/v1/files/content?path=/home/dl.bin")
                .bearer(&token)
                .arg("--limit-rate")
                .arg("3000K")
                .max_secs(120)
                .send()
        });
        std::thread::sleep(Duration::from_millis(1500));
        let _ = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status();
        dl.join().unwrap()
    });
    got.assert_status(200);
    assert_eq!(
        sha_hex(&got.body),
        want,
        "the download was cut by the shutdown"
    );
    let code = stop_with(&mut s, "-TERM");
    assert_eq!(code.code(), Some(0), "{code}\n{}", s.log());
    assert!(s.log().contains("1 transfer(s) in flight"), "{}", s.log());
}
