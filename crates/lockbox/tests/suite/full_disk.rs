//! A data directory on a small filesystem the test mounts itself (tmpfs; the tests run as root):
//! under the free-space floor uploads are refused up front with a clear message while sessions,
//! listings, downloads and deletes keep working and `/readyz` and `/metrics` say so; an upload that
//! crosses the floor fails, is audited and gives its space back; and with the disk filled by
//! something else, the audit reserve still lets sessions open and records be written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;
use crate::common::web::{Person, Web};
use crate::sftp_clients::{audit, staging_rows};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fxp::*;
use common::*;

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("lockbox-tmpfs-")
            .tempdir()
            .unwrap();
        let o = run_with_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={mib}m,mode=0700"))
                .arg("tmpfs")
                .arg(dir.path()),
            None,
            Duration::from_secs(30),
        );
        if !o.status.success() {
            missing_tool(
                &format!("a tmpfs mount ({})", describe(&o)),
                "run the tests as root (CI does), with mount(8) from util-linux",
            );
        }
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(self.path()).unwrap();
        st.f_bavail * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until about `leave` bytes are free on its filesystem (or it is full).
fn fill_until(fs: &Tmpfs, path: &Path, leave: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let block = vec![0u8; 256 * 1024];
    while fs.free() > leave + block.len() as u64 {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
}

fn open_status(s: &TestServer, key: &Path, path: &str) -> (u32, String) {
    let mut raw = RawSftp::connect(s.port, "alice", key);
    raw.init();
    let r = raw.request(
        &open(1, path.as_bytes(), WRITE_FLAG | CREAT | TRUNC),
        Duration::from_secs(60),
    );
    let out = match r {
        Ok((STATUS, body)) => {
            let (_, code, msg) = parse_status(&body).unwrap();
            (code, msg)
        }
        Ok((HANDLE, _)) => (FX_OK, "opened".into()),
        other => panic!("OPEN {path}: {other:?}"),
    };
    raw.finish();
    out
}

fn metrics_value(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

const FLOOR_MIB: u64 = 12;

fn server_on(fs: &Tmpfs) -> (TestServer, PathBuf) {
    let s = TestServer::start_custom(
        Some(fs.path().join("data")),
        &[],
        &[
            ("LOCKBOX_MIN_FREE_MIB", "12"),
            ("LOCKBOX_AUDIT_RESERVE_MIB", "2"),
        ],
    );
    let key = s.setup_acme_alice();
    (s, key)
}

#[test]
fn under_the_floor_uploads_are_refused_and_everything_else_keeps_working() {
    let fs = Tmpfs::mount(64);
    let (s, key) = server_on(&fs);
    let web = Web::new(&s);
    s.create_user("acme", "root", "admin", PASSWORD);
    let admin = web.token_for(&Person::new("root", PASSWORD), "read,admin");
    let local = s.dir.path().join("keep.bin");
    let want = write_random_file(&local, 2 * MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} /home/keep.bin\nput {} /home/spare.bin\n",
            local.display(),
            local.display()
        ),
    );
    web.get("/readyz").send().assert_status(200);

    // Something else takes the space down to just under the floor.
    let filler = fs.path().join("filler");
    fill_until(&fs, &filler, (FLOOR_MIB - 2) * MIB as u64);

    let (code, msg) = open_status(&s, &key, "/home/new.bin");
    assert_ne!(code, FX_OK, "an upload opened under the floor");
    assert!(msg.contains("storage is low"), "unclear refusal: {msg}");
    let o = s.sftp(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/new.bin\n", local.display()),
    );
    assert!(!o.status.success(), "OpenSSH put succeeded under the floor");

    let r = web.get("/readyz").send();
    assert_eq!(r.status, 503, "readyz under the floor: {}", r.describe());
    assert!(r.text().contains("storage low"), "{}", r.describe());
    let m = web.get("/metrics").bearer(&admin).send();
    m.assert_status(200);
    assert_eq!(
        metrics_value(&m.text(), "lockbox_storage_low"),
        Some(1),
        "{}",
        m.text()
    );
    assert_eq!(
        metrics_value(&m.text(), "lockbox_storage_floor_bytes"),
        Some(FLOOR_MIB * MIB as u64)
    );

    // Sessions, listings, downloads and deletes still work.
    let back = s.dir.path().join("keep.back");
    let out = s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "ls -l /home\nget /home/keep.bin {}\nrm /home/spare.bin\n",
            back.display()
        ),
    );
    assert!(out.contains("keep.bin"), "{out}");
    assert_eq!(sha256_file(&back), want);
    assert_eq!(staging_rows(&s), 0, "a refused upload left a staging row");

    // Space back: ready again, uploads work again.
    std::fs::remove_file(&filler).unwrap();
    web.get("/readyz").send().assert_status(200);
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/new.bin\n", local.display()),
    );
}

#[test]
fn an_upload_that_crosses_the_floor_fails_gives_its_space_back_and_is_audited() {
    let fs = Tmpfs::mount(64);
    let (s, key) = server_on(&fs);
    let filler = fs.path().join("filler");
    fill_until(&fs, &filler, (FLOOR_MIB + 4) * MIB as u64);
    let before = fs.free();
    let local = s.dir.path().join("big.bin");
    write_random_file(&local, 12 * MIB);
    let o = s.sftp(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/big.bin\n", local.display()),
    );
    assert!(
        !o.status.success(),
        "an upload past the floor succeeded:\n{}",
        describe(&o)
    );
    // The failed upload is gone, its space back, and the interruption is on record.
    assert_eq!(staging_rows(&s), 0, "the failed upload is still staged");
    let after = fs.free();
    assert!(
        after + MIB as u64 >= before,
        "the failed upload kept its space: {before} free before, {after} after"
    );
    let records = audit(&s);
    let line = records
        .lines()
        .find(|l| l.contains("upload_interrupted"))
        .unwrap_or_else(|| panic!("no upload_interrupted record:\n{records}"));
    assert!(
        line.contains("storage low") && line.contains("\"discarded\":true"),
        "{line}"
    );
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -l /home\n");
    assert!(!ls.contains("big.bin"), "{ls}");
}

#[test]
fn with_the_disk_full_the_audit_reserve_keeps_sessions_and_evidence_working() {
    let fs = Tmpfs::mount(64);
    let (s, key) = server_on(&fs);
    let web = Web::new(&s);
    s.create_user("acme", "root", "admin", PASSWORD);
    let admin = web.token_for(&Person::new("root", PASSWORD), "read,admin");
    let local = s.dir.path().join("f.bin");
    let want = write_random_file(&local, MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/f.bin\n", local.display()),
    );
    // Fill the filesystem completely from outside Lockbox.
    fill_until(&fs, &fs.path().join("filler"), 0);
    // Sessions open (each writes audit records), listings and downloads work, and a write that
    // cannot be stored fails cleanly.
    let back = s.dir.path().join("f.back");
    for _ in 0..3 {
        s.sftp_ok(
            "alice",
            Auth::Key(&key),
            &format!("ls -l /home\nget /home/f.bin {}\n", back.display()),
        );
    }
    assert_eq!(sha256_file(&back), want);
    let (code, _) = open_status(&s, &key, "/home/new.bin");
    assert_ne!(code, FX_OK, "an upload opened on a full disk");
    let m = web.get("/metrics").bearer(&admin).send();
    m.assert_status(200);
    assert_eq!(
        metrics_value(&m.text(), "lockbox_audit_reserve_used"),
        Some(1),
        "{}",
        m.text()
    );
    let records = audit(&s);
    assert!(
        records.matches("session_started").count() >= 4,
        "sessions on the full disk were not audited:\n{records}"
    );
    let v = s.cli(&["audit", "verify"]);
    assert!(
        v.status.success(),
        "audit verify on the full disk: {}",
        describe(&v)
    );
}
