//! Authorization over SFTP: the permission matrix on a shared folder, tenant isolation between organizations,
//! path escapes, links, hostile names, and admin accounts kept off the data protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

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

/// `ls -ln DIR` as `user`; the (size, name) entries.
fn listing(s: &TestServer, user: &str, key: &Path, dir: &str) -> String {
    s.sftp_ok(user, Auth::Key(key), &format!("ls -ln {dir}\n"))
}

/// Moving a file into another folder needs `rename`, `read` and `delete` at the source and `write` at the
/// destination; within one folder `rename` alone is enough.
#[test]
fn cross_folder_move_needs_read_and_delete_at_source() {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_folder("acme", "outbound");
    s.create_folder("acme", "inbound");
    let full = s.user_with_key("acme", "full");
    s.grant_user("acme", "outbound", "full", "all");
    s.grant_user("acme", "inbound", "full", "all");
    // (user, perms on outbound)
    let users = [
        ("listrename", "list,rename"),
        ("noread", "list,delete,rename"),
        ("nodelete", "list,read,rename"),
        ("mover", "read,delete,rename"),
        ("renameonly", "rename"),
    ];
    let mut keys = Vec::new();
    for (u, perms) in users {
        let k = s.user_with_key("acme", u);
        s.grant_user("acme", "outbound", u, perms);
        keys.push(k);
    }
    // `mover` may only look into `inbound` (no write there).
    s.grant_user("acme", "inbound", "mover", "list,read");
    let key = |u: &str| keys[users.iter().position(|(n, _)| *n == u).unwrap()].as_path();

    let local = s.dir.path().join("p.csv");
    std::fs::write(&local, b"id,amount\n1,100\n2,200\n").unwrap();
    let put_p = |name: &str| {
        s.sftp_ok(
            "full",
            Auth::Key(&full),
            &format!("put {} /outbound/{name}\n", local.display()),
        );
    };
    put_p("p.csv");

    // Refused: no read (list+rename), no read (delete+rename), no delete (read+rename) at the source.
    for u in ["listrename", "noread", "nodelete"] {
        let o = s.sftp(u, Auth::Key(key(u)), "rename /outbound/p.csv /home/p.csv\n");
        assert_refused(&o, &format!("{u}: rename /outbound/p.csv /home/p.csv"));
        let out = listing(&s, "full", &full, "/outbound");
        assert_eq!(
            ls_size(&out, "p.csv"),
            Some(22),
            "{u}: p.csv left /outbound despite the refusal:\n{out}"
        );
        let home = listing(&s, u, key(u), "/home");
        assert!(
            ls_size(&home, "p.csv").is_none(),
            "{u}: p.csv appeared in /home despite the refusal:\n{home}"
        );
    }

    // Refused: the destination folder lacks `write` (mover has only list,read on inbound).
    let o = s.sftp(
        "mover",
        Auth::Key(key("mover")),
        "rename /outbound/p.csv /inbound/p.csv\n",
    );
    assert_refused(&o, "mover: rename into a folder without write");
    let out = listing(&s, "full", &full, "/inbound");
    assert!(ls_size(&out, "p.csv").is_none(), "{out}");
    let out = listing(&s, "full", &full, "/outbound");
    assert_eq!(ls_size(&out, "p.csv"), Some(22), "{out}");

    // Within one folder, `rename` alone suffices.
    s.sftp_ok(
        "renameonly",
        Auth::Key(key("renameonly")),
        "rename /outbound/p.csv /outbound/q.csv\n",
    );
    let out = listing(&s, "full", &full, "/outbound");
    assert!(ls_size(&out, "p.csv").is_none(), "{out}");
    assert_eq!(ls_size(&out, "q.csv"), Some(22), "{out}");
    s.sftp_ok(
        "listrename",
        Auth::Key(key("listrename")),
        "rename /outbound/q.csv /outbound/p.csv\n",
    );

    // read+delete+rename at the source (and the own home as destination): the move succeeds.
    s.sftp_ok(
        "mover",
        Auth::Key(key("mover")),
        "rename /outbound/p.csv /home/p.csv\n",
    );
    let out = listing(&s, "full", &full, "/outbound");
    assert!(
        ls_size(&out, "p.csv").is_none(),
        "p.csv still in /outbound after the move:\n{out}"
    );
    let back = s.dir.path().join("p.back");
    let home = s.sftp_ok(
        "mover",
        Auth::Key(key("mover")),
        &format!("ls -ln /home\nget /home/p.csv {}\n", back.display()),
    );
    assert_eq!(ls_size(&home, "p.csv"), Some(22), "{home}");
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&local).unwrap()
    );
}

/// posix-rename@openssh.com request: `id, "posix-rename@openssh.com", from, to`.
fn posix_rename(id: u32, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    fxp::put_u32(&mut b, id);
    fxp::put_str(&mut b, b"posix-rename@openssh.com");
    fxp::put_str(&mut b, from);
    fxp::put_str(&mut b, to);
    fxp::packet(fxp::EXTENDED, &b)
}

/// Renaming onto an existing file (posix-rename, which OpenSSH's `rename` uses when the server offers it)
/// destroys that file: it needs `delete` on the destination folder.
#[test]
fn posix_rename_over_existing_file_needs_delete() {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_folder("acme", "shared");
    let full = s.user_with_key("acme", "full");
    s.grant_user("acme", "shared", "full", "all");
    let nodel = s.user_with_key("acme", "nodel");
    s.grant_user("acme", "shared", "nodel", "list,read,write,rename");
    let withdel = s.user_with_key("acme", "withdel");
    s.grant_user("acme", "shared", "withdel", "list,read,write,rename,delete");

    let tmp = s.dir.path();
    let a = tmp.join("a.txt");
    let b = tmp.join("b.txt");
    std::fs::write(&a, b"content of A\n").unwrap();
    std::fs::write(&b, b"B: the file that must survive\n").unwrap();
    s.sftp_ok(
        "full",
        Auth::Key(&full),
        &format!(
            "put {} /shared/a.txt\nput {} /shared/b.txt\n",
            a.display(),
            b.display()
        ),
    );
    let check = |what: &str, want_a: bool, want_b: &[u8]| {
        let back = tmp.join("check.back");
        let _ = std::fs::remove_file(&back);
        let out = s.sftp_ok(
            "full",
            Auth::Key(&full),
            &format!("ls -ln /shared\nget /shared/b.txt {}\n", back.display()),
        );
        assert_eq!(
            ls_size(&out, "a.txt").is_some(),
            want_a,
            "{what}: a.txt presence:\n{out}"
        );
        assert_eq!(
            std::fs::read(&back).unwrap(),
            want_b,
            "{what}: content of b.txt"
        );
    };

    // Through the OpenSSH client.
    let o = s.sftp(
        "nodel",
        Auth::Key(&nodel),
        "rename /shared/a.txt /shared/b.txt\n",
    );
    assert_refused(&o, "nodel: rename onto an existing file");
    check(
        "after sftp rename by nodel",
        true,
        &std::fs::read(&b).unwrap(),
    );

    // As a raw posix-rename request.
    let mut raw = RawSftp::connect(s.port, "nodel", &nodel);
    raw.init();
    match raw.request(
        &posix_rename(5, b"/shared/a.txt", b"/shared/b.txt"),
        Duration::from_secs(30),
    ) {
        Ok((fxp::STATUS, body)) => {
            let (id, code, msg) = fxp::parse_status(&body).unwrap();
            assert_eq!(id, 5);
            assert_ne!(
                code,
                fxp::FX_OK,
                "posix-rename onto b.txt without delete succeeded"
            );
            assert_eq!(
                code,
                fxp::FX_PERMISSION_DENIED,
                "posix-rename without delete: code {code} ({msg})"
            );
        }
        other => panic!("posix-rename reply: {other:?}"),
    }
    raw.finish();
    check(
        "after raw posix-rename by nodel",
        true,
        &std::fs::read(&b).unwrap(),
    );

    // Control: nodel may still rename onto a free name (so the refusal above is about the overwrite).
    s.sftp_ok(
        "nodel",
        Auth::Key(&nodel),
        "rename /shared/a.txt /shared/a2.txt\nrename /shared/a2.txt /shared/a.txt\n",
    );

    // With delete the overwrite succeeds (this also proves the client used posix-rename: a plain SFTP
    // RENAME onto an existing file fails regardless of permissions).
    s.sftp_ok(
        "withdel",
        Auth::Key(&withdel),
        "rename /shared/a.txt /shared/b.txt\n",
    );
    check(
        "after rename by withdel",
        false,
        &std::fs::read(&a).unwrap(),
    );
}

/// A user with only `write` on a folder (a drop box) learns nothing about other users' files there, but can
/// upload.
#[test]
fn write_only_drop_box_hides_other_files() {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_folder("acme", "drop");
    let owner = s.user_with_key("acme", "owner");
    s.grant_user("acme", "drop", "owner", "all");
    let dropper = s.user_with_key("acme", "dropper");
    s.grant_user("acme", "drop", "dropper", "write");

    let tmp = s.dir.path();
    let other = tmp.join("other.txt");
    std::fs::write(&other, b"someone else's committed file\n").unwrap();
    s.sftp_ok(
        "owner",
        Auth::Key(&owner),
        &format!("put {} /drop/other.txt\n", other.display()),
    );

    // Raw STAT / LSTAT of the existing file: exactly the answer for a name that does not exist.
    let mut raw = RawSftp::connect(s.port, "dropper", &dropper);
    raw.init();
    let mut id = 1;
    for path in [&b"/drop/other.txt"[..], b"/drop/never-existed.txt"] {
        for ty in [fxp::STAT, fxp::LSTAT] {
            match raw.request(&fxp::path_req(ty, id, path), Duration::from_secs(30)) {
                Ok((fxp::STATUS, body)) => {
                    let (rid, code, msg) = fxp::parse_status(&body).unwrap();
                    assert_eq!(rid, id);
                    assert_eq!(
                        code,
                        fxp::FX_NO_SUCH_FILE,
                        "write-only user, {} {}: code {code} ({msg})",
                        if ty == fxp::STAT { "STAT" } else { "LSTAT" },
                        String::from_utf8_lossy(path)
                    );
                }
                Ok((ty2, body)) => panic!(
                    "write-only user, type {ty} of {}: got reply type {ty2} {body:?} (the file was revealed)",
                    String::from_utf8_lossy(path)
                ),
                Err(e) => panic!("no reply to STAT: {e:?}\n{}", s.log()),
            }
            id += 1;
        }
    }
    raw.finish();

    // Through the OpenSSH client.
    let o = s.sftp("dropper", Auth::Key(&dropper), "ls -l /drop/other.txt\n");
    assert_refused(&o, "write-only user: ls -l /drop/other.txt");
    assert!(
        parse_ls_ln(&stdout_of(&o)).is_empty(),
        "write-only user got a listing entry:\n{}",
        describe(&o)
    );
    assert!(
        stderr_of(&o).contains("No such file") || stderr_of(&o).contains("not found"),
        "write-only user: expected 'no such file':\n{}",
        describe(&o)
    );

    // Uploading still works, and the owner sees the upload.
    let mine = tmp.join("mine.txt");
    std::fs::write(&mine, b"dropped off\n").unwrap();
    s.sftp_ok(
        "dropper",
        Auth::Key(&dropper),
        &format!("put {} /drop/mine.txt\n", mine.display()),
    );
    let out = listing(&s, "owner", &owner, "/drop");
    assert_eq!(ls_size(&out, "mine.txt"), Some(12), "{out}");
    assert_eq!(ls_size(&out, "other.txt"), Some(30), "{out}");
}
