//! The real OpenSSH `sftp`/`scp` clients against `lockbox serve`: login with key and password, 100 MiB
//! byte-identical transfers, listing sizes, rename, delete, interrupted uploads (invisible until complete,
//! resumable with `reput`, restartable with `put`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::*;
use std::thread;
use std::time::Duration;

const BIG: usize = 100 * MIB;

#[test]
fn login_with_key_and_password_starts_in_home() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();

    let out = s.sftp_ok("alice", Auth::Key(&key), "pwd\nls /\n");
    assert!(
        out.contains("Remote working directory: /home"),
        "starting directory is not /home:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().any(|w| w == "home" || w == "/home")),
        "`ls /` does not list home:\n{out}"
    );

    let out = s.sftp_ok("alice", Auth::Password(PASSWORD), "pwd\n");
    assert!(
        out.contains("Remote working directory: /home"),
        "password login: wrong start dir:\n{out}"
    );

    // A wrong password and a key that was never added are both refused.
    let o = s.sftp(
        "alice",
        Auth::Password("definitely-not-the-password"),
        "pwd\n",
    );
    assert!(
        !o.status.success(),
        "wrong password accepted:\n{}",
        describe(&o)
    );
    let stranger = keygen_named(&s.dir.path().join("keys"), "stranger", "ed25519");
    let o = s.sftp("alice", Auth::Key(&stranger), "pwd\n");
    assert!(
        !o.status.success(),
        "unknown key accepted:\n{}",
        describe(&o)
    );
}

#[test]
fn ecdsa_and_rsa_keys_log_in() {
    let s = TestServer::start();
    s.setup_acme_alice();
    let dir = s.dir.path().join("keys2");
    for kind in ["ecdsa", "rsa"] {
        let k = keygen(&dir, kind);
        s.add_key("alice", &k);
        let out = s.sftp_ok("alice", Auth::Key(&k), "pwd\n");
        assert!(out.contains("/home"), "{kind} login:\n{out}");
    }
}

#[test]
fn hundred_mib_put_ls_get_rename_delete() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let local = s.dir.path().join("big.bin");
    let want = write_random_file(&local, BIG);
    let back = s.dir.path().join("big.back");

    // Upload with the key.
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/big.bin\n", local.display()),
    );
    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Key(&key),
        "ls -ln /home\n",
        &[],
        CHILD_TIMEOUT,
    );
    let ls = stdout_of(&o);
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(
        ls_size(&ls, "big.bin"),
        Some(BIG as u64),
        "ls -ln does not show big.bin with size {BIG}:\n{ls}"
    );

    // Download with the password: byte-identical.
    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Password(PASSWORD),
        &format!("get /home/big.bin {}\n", back.display()),
        &[],
        BIG_TIMEOUT,
    );
    assert!(
        o.status.success(),
        "download failed:\n{}\n{}",
        describe(&o),
        s.log()
    );
    assert_eq!(
        sha256_file(&back),
        want,
        "downloaded file differs from the uploaded one"
    );

    // Rename, then the old name is gone and the new one has the size.
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        "rename /home/big.bin /home/renamed.bin\n",
    );
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -ln /home\n");
    assert_eq!(
        ls_size(&ls, "big.bin"),
        None,
        "old name still listed after rename:\n{ls}"
    );
    assert_eq!(
        ls_size(&ls, "renamed.bin"),
        Some(BIG as u64),
        "renamed file not listed:\n{ls}"
    );

    // The renamed file still has the same content (read the first MiB range via a full get).
    std::fs::remove_file(&back).unwrap();
    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Key(&key),
        &format!("get /home/renamed.bin {}\n", back.display()),
        &[],
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(sha256_file(&back), want, "renamed file content differs");

    // Delete.
    s.sftp_ok("alice", Auth::Key(&key), "rm /home/renamed.bin\n");
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -ln /home\n");
    assert_eq!(
        ls_size(&ls, "renamed.bin"),
        None,
        "deleted file still listed:\n{ls}"
    );
    let o = s.sftp(
        "alice",
        Auth::Key(&key),
        &format!(
            "get /home/renamed.bin {}/gone.bin\n",
            s.dir.path().display()
        ),
    );
    assert!(
        !o.status.success(),
        "deleted file still downloadable:\n{}",
        describe(&o)
    );
}

#[test]
fn mkdir_cd_put_get_rmdir_small_files() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let local = s.dir.path().join("small.bin");
    let want = write_random_file(&local, 300_000);
    let back = s.dir.path().join("small.back");
    let out = s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "mkdir /home/sub\ncd /home/sub\nput {} s.bin\nls -ln\nget s.bin {}\nrm s.bin\ncd /home\nrmdir sub\nls -ln\n",
            local.display(),
            back.display()
        ),
    );
    assert_eq!(sha256_file(&back), want);
    assert!(out.contains("s.bin"), "{out}");
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -ln /home\n");
    assert!(
        !ls.contains("sub"),
        "rmdir'ed directory still listed:\n{ls}"
    );
    // An empty file round-trips too.
    let empty = s.dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} /home/empty\nget /home/empty {}.back\n",
            empty.display(),
            empty.display()
        ),
    );
    assert_eq!(
        std::fs::metadata(format!("{}.back", empty.display()))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn scp_upload_and_download() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let local = s.dir.path().join("scp.bin");
    let want = write_random_file(&local, 20 * MIB);
    let o = scp(
        s.port,
        Auth::Key(&key),
        local.to_str().unwrap(),
        &remote("alice", "/home/scp.bin"),
    );
    assert!(
        o.status.success(),
        "scp upload failed:\n{}\n{}",
        describe(&o),
        s.log()
    );
    let back = s.dir.path().join("scp.back");
    let o = scp(
        s.port,
        Auth::Password(PASSWORD),
        &remote("alice", "/home/scp.bin"),
        back.to_str().unwrap(),
    );
    assert!(
        o.status.success(),
        "scp download failed:\n{}\n{}",
        describe(&o),
        s.log()
    );
    assert_eq!(sha256_file(&back), want, "scp round trip differs");
}

/// Starts a rate-limited 100 MiB put in the background, checks the file is not listed while in flight,
/// then SIGKILLs the client (sftp and ssh). Returns after the kill.
fn interrupted_put(
    s: &TestServer,
    key: &std::path::Path,
    local: &std::path::Path,
    remote_path: &str,
    observers: &[(&str, &std::path::Path)],
) {
    let bg = {
        let mut bg = BackgroundSftp::spawn(
            s.port,
            "alice",
            Auth::Key(key),
            &format!("put {} {}\n", local.display(), remote_path),
            &["-l", "40000"],
        );
        thread::sleep(Duration::from_millis(2500));
        if let Some(st) = bg.try_status() {
            let (o, e) = bg.kill9();
            panic!(
                "rate-limited upload ended early ({st}); cannot test interruption\nstdout:{o}\nstderr:{e}\n{}",
                s.log()
            );
        }
        bg
    };
    let (dir, name) = remote_path.rsplit_once('/').unwrap();
    let dir = if dir.is_empty() { "/" } else { dir };
    // While the upload is in flight: nobody sees the file in a listing.
    for (user, k) in observers {
        let ls = s.sftp_ok(user, Auth::Key(k), &format!("ls -ln {dir}\n"));
        assert_eq!(
            ls_size(&ls, name),
            None,
            "{user} sees the in-flight upload {remote_path} in a listing:\n{ls}"
        );
    }
    let _ = bg.kill9();
    // Give the server a moment to notice the dead connection.
    thread::sleep(Duration::from_millis(1000));
}

#[test]
fn interrupted_upload_is_invisible_and_reput_resumes() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let carol = s.user_with_key("acme", "carol");
    s.create_folder("acme", "shared");
    s.grant_user("acme", "shared", "alice", "all");
    s.grant_user("acme", "shared", "carol", "all");

    let local = s.dir.path().join("big.bin");
    let want = write_random_file(&local, BIG);
    interrupted_put(
        &s,
        &alice,
        &local,
        "/shared/big.bin",
        &[("alice", &alice), ("carol", &carol)],
    );

    // After the interruption: not listed, not readable, by anyone.
    for (user, k) in [("alice", &alice), ("carol", &carol)] {
        let ls = s.sftp_ok(user, Auth::Key(k), "ls -ln /shared\n");
        assert_eq!(
            ls_size(&ls, "big.bin"),
            None,
            "{user} sees an interrupted upload in the listing:\n{ls}"
        );
        let o = s.sftp(
            user,
            Auth::Key(k),
            &format!(
                "get /shared/big.bin {}/partial-{user}\n",
                s.dir.path().display()
            ),
        );
        assert!(
            !o.status.success(),
            "{user} can read an interrupted upload:\n{}",
            describe(&o)
        );
    }
    let o = s.sftp("carol", Auth::Key(&carol), "ls -ln /shared/big.bin\n");
    assert!(
        !o.status.success(),
        "carol can stat alice's interrupted upload:\n{}",
        describe(&o)
    );

    // The uploader's stat reports the partial size, so `reput` can resume.
    let o = s.sftp("alice", Auth::Key(&alice), "ls -ln /shared/big.bin\n");
    let partial = ls_size(&stdout_of(&o), "big.bin");
    assert!(
        matches!(partial, Some(n) if n > 0 && n < BIG as u64),
        "alice's stat of her interrupted upload should report a partial size, got {partial:?}:\n{}",
        describe(&o)
    );

    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Key(&alice),
        &format!("reput {} /shared/big.bin\n", local.display()),
        &[],
        BIG_TIMEOUT,
    );
    assert!(
        o.status.success(),
        "reput failed:\n{}\n{}",
        describe(&o),
        s.log()
    );

    let ls = s.sftp_ok("carol", Auth::Key(&carol), "ls -ln /shared\n");
    assert_eq!(
        ls_size(&ls, "big.bin"),
        Some(BIG as u64),
        "completed upload not listed with full size:\n{ls}"
    );
    let back = s.dir.path().join("big.back");
    let o = sftp_batch_opts(
        s.port,
        "carol",
        Auth::Key(&carol),
        &format!("get /shared/big.bin {}\n", back.display()),
        &[],
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(
        sha256_file(&back),
        want,
        "resumed upload is not byte-identical"
    );
}

#[test]
fn interrupted_upload_then_plain_put_starts_over() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let local = s.dir.path().join("big.bin");
    write_random_file(&local, BIG);
    interrupted_put(
        &s,
        &alice,
        &local,
        "/home/restart.bin",
        &[("alice", &alice)],
    );

    let small = s.dir.path().join("small.bin");
    let want = write_random_file(&small, MIB);
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/restart.bin\n", small.display()),
    );
    let ls = s.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home\n");
    assert_eq!(
        ls_size(&ls, "restart.bin"),
        Some(MIB as u64),
        "plain put after interruption did not start over:\n{ls}"
    );
    let back = s.dir.path().join("small.back");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("get /home/restart.bin {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), want);
}

#[test]
fn names_with_bidi_or_zero_width_characters_are_refused_and_names_are_stored_in_nfc() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let local = s.dir.path().join("f.txt");
    write_random_file(&local, 1000);
    // "report<RLO>fdp.exe" displays as "reportexe.pdf".
    for bad in ["report\u{202E}fdp.exe", "a\u{200B}b.txt", "x\u{2066}y.txt"] {
        let o = s.sftp(
            "alice",
            Auth::Key(&key),
            &format!("put {} \"/home/{bad}\"\n", local.display()),
        );
        assert!(
            !o.status.success(),
            "{bad:?} was accepted:\n{}",
            describe(&o)
        );
    }
    // The same name typed decomposed (e + combining marks) and composed is one file, listed in NFC.
    let nfd = "Nguye\u{0302}\u{0303}n.txt";
    let nfc = "Nguy\u{1EC5}n.txt";
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} \"/home/{nfd}\"\n", local.display()),
    );
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -1 /home\n");
    assert!(ls.contains(nfc) && !ls.contains(nfd), "{ls}");
    let back = s.dir.path().join("back.txt");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("get \"/home/{nfc}\" {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), sha256_file(&local));
}
