//! Authorization over SFTP: the permission matrix on a shared folder, tenant isolation between organizations,
//! path escapes, links, hostile names, and admin accounts kept off the data protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn assert_denied(o: &std::process::Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what} should have been refused but sftp succeeded:\n{}",
        describe(o)
    );
    assert!(
        stderr_of(o).contains("Permission denied"),
        "{what}: expected 'Permission denied' from the client:\n{}",
        describe(o)
    );
}

fn assert_refused(o: &std::process::Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what} should have failed but sftp succeeded:\n{}",
        describe(o)
    );
    assert!(
        !stderr_of(o).trim().is_empty(),
        "{what}: refused without any error message:\n{}",
        describe(o)
    );
}

struct Matrix {
    s: TestServer,
    keys: Vec<(String, PathBuf)>,
    seed: PathBuf,
    seed_hash: String,
}

impl Matrix {
    fn key(&self, user: &str) -> &Path {
        &self.keys.iter().find(|(u, _)| u == user).unwrap().1
    }
}

const ALL: [&str; 6] = ["list", "read", "write", "delete", "mkdir", "rename"];

/// org acme, folder `shared`; user `full` has all perms, user `noX` has all perms except X.
fn matrix() -> Matrix {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_folder("acme", "shared");
    let mut keys = Vec::new();
    let k = s.user_with_key("acme", "full");
    s.grant_user("acme", "shared", "full", "all");
    keys.push(("full".to_string(), k));
    for p in ALL {
        let user = format!("no{p}");
        let k = s.user_with_key("acme", &user);
        let perms: Vec<&str> = ALL.iter().copied().filter(|x| *x != p).collect();
        s.grant_user("acme", "shared", &user, &perms.join(","));
        keys.push((user, k));
    }
    let seed = s.dir.path().join("seed.txt");
    let seed_hash = write_random_file(&seed, 4096);
    let m = Matrix {
        s,
        keys,
        seed,
        seed_hash,
    };
    m.s.sftp_ok(
        "full",
        Auth::Key(m.key("full")),
        &format!(
            "put {} /shared/seed.txt\nmkdir /shared/dir1\n",
            m.seed.display()
        ),
    );
    m
}

#[test]
fn permission_matrix_on_shared_folder() {
    let m = matrix();
    let s = &m.s;
    let tmp = s.dir.path();
    let local = &m.seed;

    // write
    let o = s.sftp(
        "nowrite",
        Auth::Key(m.key("nowrite")),
        &format!("put {} /shared/new.txt\n", local.display()),
    );
    assert_denied(&o, "put without write");
    // overwrite of an existing file without write is refused too
    let o = s.sftp(
        "nowrite",
        Auth::Key(m.key("nowrite")),
        &format!("put {} /shared/seed.txt\n", local.display()),
    );
    assert_denied(&o, "overwrite without write");

    // list
    let o = s.sftp("nolist", Auth::Key(m.key("nolist")), "ls /shared\n");
    assert_refused(&o, "ls without list");

    // read
    let o = s.sftp(
        "noread",
        Auth::Key(m.key("noread")),
        &format!("get /shared/seed.txt {}/noread.txt\n", tmp.display()),
    );
    assert_refused(&o, "get without read");
    assert!(
        !tmp.join("noread.txt").exists()
            || std::fs::read(tmp.join("noread.txt")).unwrap().is_empty()
    );

    // delete
    let o = s.sftp(
        "nodelete",
        Auth::Key(m.key("nodelete")),
        "rm /shared/seed.txt\n",
    );
    assert_refused(&o, "rm without delete");
    let o = s.sftp(
        "nodelete",
        Auth::Key(m.key("nodelete")),
        "rmdir /shared/dir1\n",
    );
    assert_refused(&o, "rmdir without delete");

    // rename
    let o = s.sftp(
        "norename",
        Auth::Key(m.key("norename")),
        "rename /shared/seed.txt /shared/seed2.txt\n",
    );
    assert_refused(&o, "rename without rename");

    // mkdir
    let o = s.sftp(
        "nomkdir",
        Auth::Key(m.key("nomkdir")),
        "mkdir /shared/newdir\n",
    );
    assert_refused(&o, "mkdir without mkdir");

    // Nothing changed.
    let ls = s.sftp_ok("full", Auth::Key(m.key("full")), "ls -ln /shared\n");
    assert_eq!(ls_size(&ls, "seed.txt"), Some(4096), "{ls}");
    for n in ["new.txt", "seed2.txt", "newdir"] {
        assert!(
            ls_size(&ls, n).is_none(),
            "{n} was created despite the refusal:\n{ls}"
        );
    }
    assert!(
        ls_size(&ls, "dir1").is_some(),
        "dir1 was removed despite the refusal:\n{ls}"
    );

    // Controls: each user can do everything they were granted (proves the refusals are about the permission).
    let back = tmp.join("back.txt");
    s.sftp_ok(
        "nowrite",
        Auth::Key(m.key("nowrite")),
        &format!("ls /shared\nget /shared/seed.txt {}\n", back.display()),
    );
    assert_eq!(sha256_file(&back), m.seed_hash);
    s.sftp_ok(
        "nolist",
        Auth::Key(m.key("nolist")),
        &format!("put {} /shared/by-nolist.txt\n", local.display()),
    );
    s.sftp_ok(
        "noread",
        Auth::Key(m.key("noread")),
        "ls /shared\nmkdir /shared/by-noread\n",
    );
    s.sftp_ok(
        "nodelete",
        Auth::Key(m.key("nodelete")),
        "rename /shared/by-nolist.txt /shared/by-nodelete.txt\n",
    );
    s.sftp_ok(
        "norename",
        Auth::Key(m.key("norename")),
        "rm /shared/by-nodelete.txt\nrmdir /shared/by-noread\n",
    );
    s.sftp_ok(
        "nomkdir",
        Auth::Key(m.key("nomkdir")),
        &format!(
            "put {} /shared/by-nomkdir.txt\nrm /shared/by-nomkdir.txt\n",
            local.display()
        ),
    );
    s.sftp_ok(
        "full",
        Auth::Key(m.key("full")),
        "rename /shared/seed.txt /shared/seed3.txt\nmkdir /shared/d2\nrmdir /shared/d2\nrm /shared/seed3.txt\n",
    );
}

#[test]
fn no_grant_means_no_folder() {
    let m = matrix();
    let s = &m.s;
    // A user of the same org without any grant on `shared` does not see it at all.
    let k = s.user_with_key("acme", "outsider");
    let ls = s.sftp_ok("outsider", Auth::Key(&k), "ls /\n");
    assert!(
        !ls.lines()
            .skip_while(|l| l.starts_with("sftp>"))
            .any(|l| l.contains("shared")),
        "outsider sees /shared:\n{ls}"
    );
    let o = s.sftp(
        "outsider",
        Auth::Key(&k),
        &format!("get /shared/seed.txt {}/x\n", s.dir.path().display()),
    );
    assert_refused(&o, "get by a user without a grant");
}

#[test]
fn other_organization_is_invisible() {
    let m = matrix();
    let s = &m.s;
    let tmp = s.dir.path();
    let full = m.key("full");
    // alice of acme has a private file in her home.
    let alice = s.user_with_key("acme", "alice");
    let marker = format!("ALICE-SECRET-{}", random_hex(8));
    let secret = tmp.join("secret.txt");
    std::fs::write(&secret, marker.repeat(10)).unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /home/secret.txt\n", secret.display()),
    );

    s.create_org("globex");
    let bob = s.user_with_key("globex", "bob");
    let local = tmp.join("bob.txt");
    std::fs::write(&local, b"bob was here\n").unwrap();
    s.sftp_ok(
        "bob",
        Auth::Key(&bob),
        &format!("put {} /home/bob.txt\n", local.display()),
    );

    let ls = s.sftp_ok("bob", Auth::Key(&bob), "ls -la /\n");
    for bad in ["shared", "alice", "acme", "full"] {
        assert!(
            !ls.lines()
                .filter(|l| !l.starts_with("sftp>"))
                .any(|l| l.contains(bad)),
            "bob's `ls /` shows {bad}:\n{ls}"
        );
    }

    let spellings = [
        "/shared",
        "//shared",
        "/./shared",
        "/home/../shared",
        "/shared/",
        "/shared/.",
        "../shared",
        "/acme/shared",
        "/../acme/shared",
        "/home/alice",
        "/alice",
        "/acme/home/alice",
        "/home/../alice",
        "/users/alice",
    ];
    for sp in spellings {
        let file = format!("{}/seed.txt", sp.trim_end_matches('/'));
        let o = s.sftp("bob", Auth::Key(&bob), &format!("ls -l {sp}\n"));
        let listed = stdout_of(&o);
        assert!(
            !listed.contains("seed.txt") && !listed.contains("secret.txt"),
            "bob listed {sp}:\n{}",
            describe(&o)
        );
        let o = s.sftp("bob", Auth::Key(&bob), &format!("ls -l {file}\n"));
        assert_refused(&o, &format!("bob stat {file}"));
        let dl = tmp.join("bob-dl");
        let o = s.sftp(
            "bob",
            Auth::Key(&bob),
            &format!("get {file} {}\n", dl.display()),
        );
        assert_refused(&o, &format!("bob get {file}"));
        assert!(
            !dl.exists() || std::fs::metadata(&dl).unwrap().len() == 0,
            "bob downloaded something from {file}"
        );
        let _ = std::fs::remove_file(&dl);
        let o = s.sftp(
            "bob",
            Auth::Key(&bob),
            &format!("get {sp}/secret.txt {}\n", dl.display()),
        );
        assert_refused(&o, &format!("bob get {sp}/secret.txt"));
        let _ = std::fs::remove_file(&dl);
        let o = s.sftp(
            "bob",
            Auth::Key(&bob),
            &format!("put {} {sp}/bob-put.txt\n", local.display()),
        );
        assert_refused(&o, &format!("bob put into {sp}"));
        let o = s.sftp("bob", Auth::Key(&bob), &format!("rm {file}\n"));
        assert_refused(&o, &format!("bob rm {file}"));
        let o = s.sftp(
            "bob",
            Auth::Key(&bob),
            &format!("rename /home/bob.txt {sp}/bob-moved.txt\n"),
        );
        assert_refused(&o, &format!("bob rename into {sp}"));
        let o = s.sftp(
            "bob",
            Auth::Key(&bob),
            &format!("rename {file} /home/stolen.txt\n"),
        );
        assert_refused(&o, &format!("bob rename out of {sp}"));
        let o = s.sftp("bob", Auth::Key(&bob), &format!("mkdir {sp}/bobdir\n"));
        assert_refused(&o, &format!("bob mkdir in {sp}"));
    }
    // Relative spellings from `/`.
    for cmd in [
        "cd /\nmkdir shared/bobdir\n",
        "cd /\nget shared/seed.txt /dev/null\n",
        "cd /\ncd shared\n",
    ] {
        let o = s.sftp("bob", Auth::Key(&bob), cmd);
        assert_refused(&o, &format!("bob: {cmd:?}"));
    }

    // Recursive download of everything bob can reach contains nothing of acme.
    let mirror = tmp.join("bob-mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let _ = s.sftp(
        "bob",
        Auth::Key(&bob),
        &format!("lcd {}\n-get -r /\n", mirror.display()),
    );
    for f in walk_files(&mirror) {
        let c = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&c, marker.as_bytes()),
            "bob's mirror contains alice's secret: {}",
            f.display()
        );
        assert!(
            !contains_bytes(&c, &std::fs::read(&m.seed).unwrap()),
            "bob's mirror contains acme's shared file: {}",
            f.display()
        );
    }

    // acme's files are untouched, and nothing of bob's landed in acme.
    let ls = s.sftp_ok("full", Auth::Key(full), "ls -ln /shared\n");
    assert_eq!(ls_size(&ls, "seed.txt"), Some(4096), "{ls}");
    assert!(
        !ls.contains("bob"),
        "bob wrote into acme's shared folder:\n{ls}"
    );
    let ls = s.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home\n");
    assert!(
        ls_size(&ls, "secret.txt").is_some() && !ls.contains("bob"),
        "{ls}"
    );

    // Same folder name in another org is a different folder.
    s.create_folder("globex", "shared");
    s.grant_user("globex", "shared", "bob", "all");
    s.sftp_ok(
        "bob",
        Auth::Key(&bob),
        &format!("put {} /shared/globex-only.txt\n", local.display()),
    );
    let ls = s.sftp_ok("bob", Auth::Key(&bob), "ls -ln /shared\n");
    assert!(
        ls_size(&ls, "seed.txt").is_none(),
        "bob's /shared shows acme's seed.txt:\n{ls}"
    );
    let ls = s.sftp_ok("full", Auth::Key(full), "ls -ln /shared\n");
    assert!(
        ls_size(&ls, "globex-only.txt").is_none(),
        "acme's /shared shows globex's file:\n{ls}"
    );
}

#[test]
fn path_escapes_are_refused() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let tmp = s.dir.path();
    let dl = tmp.join("escape.out");
    let host_passwd = std::fs::read("/etc/passwd").unwrap_or_default();

    for p in [
        "../../etc/passwd",
        "/home/../../etc/passwd",
        "/../../../../etc/passwd",
        "/home/../../x",
        "/etc/passwd",
        "../../../../../../../../../../etc/passwd",
        "/home/./../..//etc/passwd",
    ] {
        let _ = std::fs::remove_file(&dl);
        let o = s.sftp(
            "alice",
            Auth::Key(&key),
            &format!("get {p} {}\n", dl.display()),
        );
        assert_refused(&o, &format!("get {p}"));
        if let Ok(c) = std::fs::read(&dl) {
            assert!(
                c.is_empty() || c != host_passwd,
                "get {p} returned the host's /etc/passwd"
            );
        }
    }
    // Data directory files are not reachable by relative paths either.
    for p in [
        "../../lockbox.db",
        "/../lockbox.db",
        "../ssh_host_ed25519_key",
        "../../../master.key",
    ] {
        let _ = std::fs::remove_file(&dl);
        let o = s.sftp(
            "alice",
            Auth::Key(&key),
            &format!("get {p} {}\n", dl.display()),
        );
        assert_refused(&o, &format!("get {p}"));
    }

    // `cd ..` from `/` stays at `/` (or errors, then `pwd` still says `/`).
    let out = s.sftp_ok(
        "alice",
        Auth::Key(&key),
        "cd /\n-cd ..\npwd\n-cd ../..\npwd\n",
    );
    let pwds: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Remote working directory:"))
        .collect();
    assert_eq!(pwds.len(), 2, "{out}");
    for l in pwds {
        assert_eq!(
            l.trim_end(),
            "Remote working directory: /",
            "cd .. escaped the root:\n{out}"
        );
    }

    // Upload through `..` lands nowhere outside.
    let local = tmp.join("up.txt");
    std::fs::write(&local, b"x").unwrap();
    let o = s.sftp(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} ../../../../tmp/lockbox-escape-{}\n",
            local.display(),
            random_hex(4)
        ),
    );
    assert_refused(&o, "put through ..");

    // Symlinks and hard links are refused with an error.
    let local = tmp.join("t.txt");
    std::fs::write(&local, b"target\n").unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/t.txt\n", local.display()),
    );
    for cmd in [
        "ln -s /home/t.txt /home/sym",
        "symlink /home/t.txt /home/sym2",
        "ln -s /etc/passwd /home/pw",
        "ln /home/t.txt /home/hard",
    ] {
        let o = s.sftp("alice", Auth::Key(&key), &format!("{cmd}\n"));
        assert_refused(&o, cmd);
        assert!(
            !stderr_of(&o).trim().is_empty(),
            "{cmd}: no error message:\n{}",
            describe(&o)
        );
    }
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -ln /home\n");
    for n in ["sym", "sym2", "pw", "hard"] {
        assert!(ls_size(&ls, n).is_none(), "link {n} was created:\n{ls}");
    }
}

#[test]
fn nul_and_control_characters_in_names_are_refused() {
    let mut s = TestServer::start();
    let key = s.setup_acme_alice();
    let t = Duration::from_secs(30);
    let names: [&[u8]; 6] = [
        b"/home/a\0b",
        b"/home/evil\nname",
        b"/home/evil\x01name",
        b"/home/evil\x1b[31mred",
        b"/home/tab\there",
        b"/home/del\x7f",
    ];
    let mut raw = RawSftp::connect(s.port, "alice", &key);
    raw.init();
    let mut id = 10;
    for n in names {
        for pkt in [
            fxp::open(id, n, fxp::WRITE_FLAG | fxp::CREAT | fxp::TRUNC),
            fxp::mkdir(id + 1, n),
            fxp::rename(id + 2, b"/home/nonexistent-src", n),
        ] {
            // Refusal = an error status, or the server drops this connection (then reconnect for the next case).
            match raw.request(&pkt, t) {
                Ok((fxp::STATUS, body)) => {
                    let (_, code, _) = fxp::parse_status(&body).unwrap();
                    assert_ne!(code, fxp::FX_OK, "name {n:?} accepted");
                }
                Ok((ty, body)) => {
                    panic!("name {n:?}: expected an error status, got type {ty} {body:?}")
                }
                Err(RawErr::Eof) => {
                    s.assert_alive("after a hostile name");
                    raw = RawSftp::connect(s.port, "alice", &key);
                    raw.init();
                }
                Err(e) => panic!("name {n:?}: no reply ({e:?})\n{}", s.log()),
            }
        }
        id += 3;
    }
    raw.finish();
    // None of them exists afterwards.
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -la /home\n");
    for frag in ["evil", "tab", "del", "a"] {
        assert!(
            ls_size(&ls, frag).is_none(),
            "{frag}: a hostile name was created:\n{ls}"
        );
    }
    assert!(
        !ls.contains("evil") && !ls.contains("tab") && !ls.contains("del"),
        "{ls}"
    );
}

#[test]
fn admin_cannot_log_in_over_sftp() {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_user("acme", "root-admin", "admin", PASSWORD);
    let k = keygen_named(&s.dir.path().join("keys"), "root-admin", "ed25519");
    // Adding a key to an admin may itself be refused; either way the admin must not get in.
    let _ = s.cli(&["key", "add", "root-admin", pub_path(&k).to_str().unwrap()]);
    let o = s.sftp("root-admin", Auth::Key(&k), "pwd\n");
    assert_refused(&o, "admin login with key");
    let o = s.sftp("root-admin", Auth::Password(PASSWORD), "pwd\n");
    assert_refused(&o, "admin login with password");
    let o = scp(
        s.port,
        Auth::Password(PASSWORD),
        &remote("root-admin", "/home/x"),
        "/dev/null",
    );
    assert_refused(&o, "admin scp");
}
