//! The SFTP door against the clients partners automate with, each used with its own defaults:
//! paramiko (prefetching get, pipelined put, thousands of requests in flight) and asyncssh from
//! PyPI (tests/tools/sftp_clients.py, in the venv `.ci/sftp-clients-venv` makes), rclone and lftp
//! from Debian, and OpenSSH with ControlMaster multiplexing and a mistyped password. Also the
//! door's answers a raw client sees: a WRITE that cannot succeed is refused by the WRITE itself,
//! and `rmdir` of a folder that only holds the caller's abandoned uploads works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fxp::*;
use common::*;

const RCLONE: Tool = Tool {
    program: "/usr/bin/rclone",
    what: "rclone",
    install: "apt-get install rclone",
};
pub(crate) const LFTP: Tool = Tool {
    program: "/usr/bin/lftp",
    what: "lftp",
    install: "apt-get install lftp",
};

/// The python of the venv holding paramiko and asyncssh, created by `.ci/sftp-clients-venv`
/// (from PyPI) on first use.
pub(crate) fn clients_python() -> PathBuf {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/sftp-clients-venv");
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("sftp-clients-venv");
        let o = run_with_timeout(
            Command::new("bash").arg(&script).arg(&venv),
            None,
            Duration::from_secs(600),
        );
        if !o.status.success() {
            missing_tool(
                &format!(
                    "paramiko and asyncssh in a Python venv ({}: {})",
                    script.display(),
                    describe(&o)
                ),
                "python3 -m venv + pip (apt-get install python3-venv); .ci/run sets it up",
            );
        }
        PathBuf::from(stdout_of(&o).trim())
    })
    .clone()
}

/// A command running one subcommand of tests/tools/sftp_clients.py, and its work directory (keep
/// it until the command has run).
pub(crate) fn py_client_command(
    s: &TestServer,
    cmd: &str,
    user: &str,
    key: &Path,
    remote: &str,
    extra: &[&str],
) -> (Command, tempfile::TempDir) {
    let work = tempfile::Builder::new()
        .prefix("lockbox-pyclient-")
        .tempdir()
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/sftp_clients.py");
    let mut c = Command::new(clients_python());
    c.arg(script)
        .arg(cmd)
        .args(["--port", &s.port.to_string(), "--user", user, "--key"])
        .arg(key)
        .args(["--remote", remote, "--workdir"])
        .arg(work.path())
        .args(extra)
        .process_group(0);
    (c, work)
}

/// Runs one subcommand of tests/tools/sftp_clients.py; returns its JSON line and the output.
pub(crate) fn py_client(
    s: &TestServer,
    cmd: &str,
    user: &str,
    key: &Path,
    remote: &str,
    extra: &[&str],
    timeout: Duration,
) -> (serde_json::Value, std::process::Output) {
    let (mut c, _work) = py_client_command(s, cmd, user, key, remote, extra);
    let o = run_with_timeout(&mut c, None, timeout);
    let line = stdout_of(&o).lines().last().unwrap_or_default().to_string();
    let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
    (v, o)
}

pub(crate) fn assert_py_ok(
    s: &TestServer,
    what: &str,
    v: &serde_json::Value,
    o: &std::process::Output,
) {
    assert!(
        o.status.success(),
        "{what} failed: {v}\n{}\n--- server log (tail) ---\n{}",
        describe(o),
        tail(&s.log(), 4000)
    );
}

pub(crate) fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

/// Staging rows left in the database: each one is an upload nobody will finish, hidden from
/// listings. Read with Python's own sqlite3, read-only, as an outside auditor would.
pub(crate) fn staging_rows(s: &TestServer) -> u64 {
    let db = s.data_dir.join("lockbox.db");
    let o = run_with_timeout(
        Command::new("python3").arg("-c").arg(format!(
            "import sqlite3; c = sqlite3.connect('file:{}?mode=ro', uri=True); print(c.execute('SELECT count(*) FROM uploads').fetchone()[0])",
            db.display()
        )),
        None,
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "reading uploads: {}", describe(&o));
    stdout_of(&o).trim().parse().unwrap()
}

#[test]
fn paramiko_default_put_and_get_of_64_mib_and_a_256_mib_prefetch() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    // put (pipelined writes) then get (prefetch: 2,048 READs sent at once), both paramiko defaults.
    let (v, o) = py_client(
        &s,
        "paramiko-roundtrip",
        "alice",
        &key,
        "/home/p64.bin",
        &["--put", "--size", &(64 * MIB).to_string()],
        BIG_TIMEOUT,
    );
    assert_py_ok(&s, "paramiko put+get of 64 MiB", &v, &o);
    eprintln!("paramiko 64 MiB: {v}");

    // 256 MiB uploaded with OpenSSH, read back with paramiko's prefetch (8,192 READs at once).
    let local = s.dir.path().join("big.bin");
    let sha = write_random_file(&local, 256 * MIB);
    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Key(&key),
        &format!("put {} /home/p256.bin\n", local.display()),
        &[],
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "sftp put: {}", describe(&o));
    std::fs::remove_file(&local).unwrap();
    let (v, o) = py_client(
        &s,
        "paramiko-roundtrip",
        "alice",
        &key,
        "/home/p256.bin",
        &["--size", &(256 * MIB).to_string(), "--sha256", &sha],
        BIG_TIMEOUT,
    );
    assert_py_ok(&s, "paramiko prefetch get of 256 MiB", &v, &o);
    eprintln!("paramiko 256 MiB prefetch: {v}");
}

#[test]
fn paramiko_session_with_10000_requests_in_flight_gets_every_answer() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    // READs at random offsets, so the door cannot fold them into one run: 10,000 separate
    // requests outstanding before the client reads a single reply.
    let (v, o) = py_client(
        &s,
        "paramiko-inflight",
        "alice",
        &key,
        "/home/src.bin",
        &["--size", &(4 * MIB).to_string(), "--count", "10000"],
        BIG_TIMEOUT,
    );
    assert_py_ok(&s, "10,000 requests in flight", &v, &o);
    assert_eq!(v["answered"], 10000, "{v}");
    eprintln!("10,000 in flight: {v}");
}

#[test]
fn eight_clients_upload_100_files_each_into_one_folder_without_refusals() {
    let s = TestServer::start();
    s.create_org("acme");
    let mut keys = Vec::new();
    s.create_folder("acme", "drop");
    for i in 0..8 {
        let name = format!("u{i}");
        keys.push(s.user_with_key("acme", &name));
        s.grant_user("acme", "drop", &name, "read,write,list");
    }
    // Eight users, one process each (paramiko), 100 uploads each, all at once into one folder.
    let handles: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let tag = format!("u{i}-");
            let (mut c, work) = py_client_command(
                &s,
                "paramiko-uploads",
                &format!("u{i}"),
                key,
                "/drop",
                &["--procs", "1", "--count", "100", "--tag", &tag],
            );
            std::thread::spawn(move || {
                let _work = work;
                run_with_timeout(&mut c, None, BIG_TIMEOUT)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let o = h.join().unwrap();
        assert!(
            o.status.success(),
            "client u{i}: {}\n--- server log (tail) ---\n{}",
            describe(&o),
            tail(&s.log(), 4000)
        );
    }
    let ls = s.sftp_ok("u0", Auth::Key(&keys[0]), "ls -1 /drop\n");
    let listed = ls.lines().filter(|l| l.contains(".txt")).count();
    assert_eq!(listed, 800, "files listed in /drop:\n{ls}");
    assert_eq!(staging_rows(&s), 0, "orphan staging rows after the uploads");
}

#[test]
fn asyncssh_put_and_get_with_default_parallelism() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let (v, o) = py_client(
        &s,
        "asyncssh-roundtrip",
        "alice",
        &key,
        "/home/a.bin",
        &["--size", &(48 * MIB).to_string()],
        BIG_TIMEOUT,
    );
    assert_py_ok(&s, "asyncssh put+get", &v, &o);
    eprintln!("asyncssh 48 MiB: {v}");
}

/// A tree of `n` small files in 3 subdirectories.
fn make_tree(root: &Path, n: usize, salt: &str) {
    for i in 0..n {
        let dir = root.join(format!("d{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        let body = format!("{salt} file {i}\n").repeat(1 + i % 200);
        std::fs::write(dir.join(format!("f{i:04}.txt")), body).unwrap();
    }
}

#[test]
fn rclone_copy_sync_and_check_of_300_files_with_8_transfers() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let rclone = require(&RCLONE);
    let remote = format!(
        ":sftp,host=127.0.0.1,port={},user=alice,key_file={}:",
        s.port,
        key.display()
    );
    let work = tempfile::Builder::new()
        .prefix("lockbox-rclone-")
        .tempdir()
        .unwrap();
    let conf = work.path().join("rclone.conf");
    std::fs::write(&conf, "").unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(&rclone);
        c.arg("--config")
            .arg(&conf)
            .args([
                "--transfers",
                "8",
                "--retries",
                "1",
                "--low-level-retries",
                "1",
            ])
            .args(["--stats", "0", "-v"])
            .args(args)
            .process_group(0);
        let o = run_with_timeout(&mut c, None, BIG_TIMEOUT);
        // rclone logs every retry (low-level or whole-run) at -v; a partner's sync must need none.
        let err = stderr_of(&o);
        assert!(
            !err.contains("Retrying") && !err.contains("retry"),
            "rclone {args:?} retried: {}",
            describe(&o)
        );
        o
    };
    for round in 0..3 {
        let src = work.path().join(format!("src{round}"));
        make_tree(&src, 300, &format!("round {round}"));
        let dst = format!("{remote}/home/tree{round}");
        let src_s = src.to_str().unwrap();
        let o = run(&["copy", src_s, &dst]);
        assert!(
            o.status.success() && !stderr_of(&o).contains("ERROR"),
            "rclone copy (round {round}): {}\n{}",
            describe(&o),
            tail(&s.log(), 4000)
        );
        // Change the tree: 20 files edited, 10 removed, 10 added; sync must mirror it.
        for i in 0..20 {
            std::fs::write(
                src.join(format!("d{}", i % 3)).join(format!("f{i:04}.txt")),
                format!("edited {i} in round {round}\n"),
            )
            .unwrap();
        }
        for i in 20..30 {
            std::fs::remove_file(src.join(format!("d{}", i % 3)).join(format!("f{i:04}.txt")))
                .unwrap();
        }
        for i in 300..310 {
            std::fs::write(src.join("d0").join(format!("n{i}.txt")), "new\n").unwrap();
        }
        let o = run(&["sync", src_s, &dst]);
        assert!(
            o.status.success() && !stderr_of(&o).contains("ERROR"),
            "rclone sync (round {round}): {}\n{}",
            describe(&o),
            tail(&s.log(), 4000)
        );
        let o = run(&["check", "--download", src_s, &dst]);
        assert!(
            o.status.success() && stderr_of(&o).contains("0 differences found"),
            "rclone check --download (round {round}): {}",
            describe(&o)
        );
    }
    assert_eq!(staging_rows(&s), 0, "orphan staging rows after rclone");
}

/// lftp's sftp transport: `ssh -s sftp` with this harness' isolation options and alice's key.
pub(crate) fn lftp_command(s: &TestServer, key: &Path, script: &str) -> Command {
    let ssh = format!(
        "ssh -a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o LogLevel=ERROR -o IdentitiesOnly=yes -o BatchMode=yes -i {}",
        key.display()
    );
    let mut c = Command::new(require(&LFTP));
    c.env("HOME", s.dir.path())
        .arg("-c")
        .arg(format!(
            "set sftp:connect-program \"{ssh}\"; set net:max-retries 1; set cmd:fail-exit yes; \
             open -u alice, sftp://127.0.0.1:{}; {script}",
            s.port
        ))
        .stdin(Stdio::null())
        .process_group(0);
    c
}

#[test]
fn lftp_mirror_and_a_resumed_put_after_the_client_is_killed() {
    let _heavy = heavy_lock();
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let work = tempfile::Builder::new()
        .prefix("lockbox-lftp-")
        .tempdir()
        .unwrap();
    let src = work.path().join("tree");
    make_tree(&src, 120, "lftp");
    let o = run_with_timeout(
        &mut lftp_command(
            &s,
            &key,
            &format!("mirror -R --parallel=4 {} /home/mirrored", src.display()),
        ),
        None,
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "lftp mirror -R: {}", describe(&o));
    let back = work.path().join("back");
    let o = run_with_timeout(
        &mut lftp_command(
            &s,
            &key,
            &format!("mirror /home/mirrored {}", back.display()),
        ),
        None,
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "lftp mirror: {}", describe(&o));
    let rel = |root: &Path| -> std::collections::BTreeSet<PathBuf> {
        walk_files(root)
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(&src), rel(&back), "mirrored tree differs");
    for f in walk_files(&src) {
        let rel = f.strip_prefix(&src).unwrap();
        assert_eq!(sha256_file(&f), sha256_file(&back.join(rel)), "{rel:?}");
    }

    // put -c: a 64 MiB upload killed part way, then resumed by lftp, ends byte-identical.
    let big = work.path().join("big.bin");
    let sha = write_random_file(&big, 64 * MIB);
    let mut c = lftp_command(
        &s,
        &key,
        &format!(
            "set net:limit-rate 4M; put {} -o /home/big.bin",
            big.display()
        ),
    );
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Kill it once the upload has visibly started (the server logs nothing per write, so wait for
    // lftp's own progress: a few seconds at 4 MB/s).
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        child.try_wait().unwrap().is_none(),
        "lftp finished a rate-limited 64 MiB put in 4 s"
    );
    let _ = Command::new("/bin/sh")
        .args(["-c", &format!("kill -KILL -{}", child.id())])
        .status();
    let _ = child.wait();
    // The server saves the cut upload once it notices the connection is gone (bounded wait).
    while !audit(&s).contains("upload_interrupted") {
        assert!(
            Instant::now() < deadline,
            "the killed upload was never recorded as interrupted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = run_with_timeout(
        &mut lftp_command(
            &s,
            &key,
            &format!("put -c {} -o /home/big.bin", big.display()),
        ),
        None,
        BIG_TIMEOUT,
    );
    assert!(o.status.success(), "lftp put -c: {}", describe(&o));
    let dl = work.path().join("big.dl");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("get /home/big.bin {}\n", dl.display()),
    );
    assert_eq!(sha256_file(&dl), sha, "resumed upload is not the file");
}

/// `ssh` with this harness' isolation options, public-key auth as `alice`, and the given
/// multiplexing options.
fn mux_ssh(port: u16, key: &Path, mux: &[&str]) -> Command {
    let mut cmd = tool_command(&SSH);
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=30",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PreferredAuthentications=publickey",
        "-o",
        "BatchMode=yes",
        "-i",
    ])
    .arg(key)
    .args(mux)
    .arg("-p")
    .arg(port.to_string());
    cmd
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an OpenSSH ControlMaster connection (no channel of its own) and waits for its socket.
fn control_master(s: &TestServer, key: &Path, ctl: &Path) -> KillOnDrop {
    let ctl_s = ctl.to_str().unwrap();
    let mut master = mux_ssh(
        s.port,
        key,
        &["-M", "-S", ctl_s, "-o", "ControlPersist=no", "-N", "-T"],
    );
    master
        .arg("alice@127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut master = master.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ctl.exists() {
        if let Some(st) = master.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(master.stderr.as_mut().unwrap(), &mut err);
            panic!("ssh master exited ({st}): {err}\n{}", s.log());
        }
        assert!(Instant::now() < deadline, "ssh master: no control socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    KillOnDrop(master)
}

/// A closed port: multiplexed clients fall back to a direct connection when the master refuses,
/// and that fallback must fail instead of quietly opening a second connection.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn controlmaster_carries_two_transfers_at_once_and_at_most_ten_sessions() {
    let mut s = TestServer::start();
    let key = s.setup_acme_alice();
    let ctl_dir = tempfile::Builder::new()
        .prefix("lb-mux-")
        .tempdir_in("/tmp")
        .unwrap();
    let ctl = ctl_dir.path().join("c");
    let _master = control_master(&s, &key, &ctl);
    let port = closed_port();
    let mux_opts = [
        "-o".to_string(),
        format!("ControlPath={}", ctl.display()),
        "-o".to_string(),
        "ControlMaster=no".to_string(),
    ];
    let mux: Vec<&str> = mux_opts.iter().map(|s| s.as_str()).collect();

    // Two OpenSSH sftp transfers in parallel over the one connection.
    let a = s.dir.path().join("a.bin");
    let b = s.dir.path().join("b.bin");
    let sha_a = write_random_file(&a, 24 * MIB);
    let sha_b = write_random_file(&b, 24 * MIB);
    let transfers: Vec<_> = [(&a, "a"), (&b, "b")]
        .into_iter()
        .map(|(file, name)| {
            let mut c = tool_command(&SFTP);
            let batch = s.dir.path().join(format!("batch-{name}"));
            std::fs::write(
                &batch,
                format!(
                    "put {} /home/{name}.bin\nget /home/{name}.bin {}.back\n",
                    file.display(),
                    file.display()
                ),
            )
            .unwrap();
            c.args([
                "-F",
                "/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "BatchMode=yes",
            ])
            .args(&mux)
            .arg("-b")
            .arg(&batch)
            .args(["-P", &port.to_string(), "alice@127.0.0.1"])
            .process_group(0);
            std::thread::spawn(move || run_with_timeout(&mut c, None, BIG_TIMEOUT))
        })
        .collect();
    for t in transfers {
        let o = t.join().unwrap();
        assert!(
            o.status.success(),
            "multiplexed sftp: {}\n{}",
            describe(&o),
            s.log()
        );
    }
    assert_eq!(sha256_file(&s.dir.path().join("a.bin.back")), sha_a);
    assert_eq!(sha256_file(&s.dir.path().join("b.bin.back")), sha_b);

    // Ten SFTP sessions held open at once over the connection all answer; an eleventh is refused.
    let session = || {
        let mut c = mux_ssh(port, &key, &[mux[0], mux[1], mux[2], mux[3], "-T", "-s"]);
        c.arg("alice@127.0.0.1").arg("sftp");
        RawSftp::spawn(c)
    };
    let mut open: Vec<RawSftp> = (0..10).map(|_| session()).collect();
    for raw in open.iter_mut() {
        raw.init();
    }
    let mut eleventh = session();
    let got = eleventh.request(&init(), Duration::from_secs(30));
    assert!(
        !matches!(got, Ok((VERSION, _))),
        "an eleventh session channel on one connection was served"
    );
    let out = eleventh.finish();
    assert!(
        stderr_of(&out).contains("refused by peer") || !out.status.success(),
        "eleventh channel: {}",
        describe(&out)
    );
    // Every one of the ten still works; closing one gives its place back.
    for (i, raw) in open.iter_mut().enumerate() {
        let (ty, _) = raw
            .request(&path_req(REALPATH, 7, b"."), Duration::from_secs(30))
            .unwrap();
        assert_eq!(ty, NAME, "session {i}");
    }
    open.pop().unwrap().finish();
    let mut again = None;
    for _ in 0..50 {
        let mut raw = session();
        if let Ok((VERSION, _)) = raw.request(&init(), Duration::from_secs(30)) {
            again = Some(raw);
            break;
        }
        raw.finish();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        again.is_some(),
        "a closed session's place was not given back"
    );

    // Refused channels give their places back too: twelve requests for a subsystem that does not
    // exist, one after another, then SFTP still opens over the connection.
    drop(again);
    for raw in open {
        let mut raw = raw;
        raw.finish();
    }
    for i in 0..12 {
        let mut c = mux_ssh(port, &key, &[mux[0], mux[1], mux[2], mux[3], "-T", "-s"]);
        c.arg("alice@127.0.0.1").arg("no-such-subsystem");
        let o = run_with_timeout(&mut c, None, Duration::from_secs(60));
        assert!(!o.status.success(), "subsystem request {i} was accepted");
    }
    let mut served = false;
    for _ in 0..50 {
        let mut raw = session();
        if let Ok((VERSION, _)) = raw.request(&init(), Duration::from_secs(30)) {
            served = true;
            break;
        }
        raw.finish();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        served,
        "refused subsystem requests used up the connection's channels"
    );
    s.assert_alive("after the multiplexed sessions");
}

#[test]
fn a_wrong_password_then_the_right_one_on_the_same_connection() {
    let s = TestServer::start();
    s.setup_acme_alice();
    // The askpass script answers wrong first, right the second time ssh asks.
    let d = tempfile::Builder::new()
        .prefix("lockbox-askpass-")
        .tempdir()
        .unwrap();
    let count = d.path().join("count");
    let script = d.path().join("askpass.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e '{c}' ]; then echo '{PASSWORD}'; else : > '{c}'; echo 'wrong-password-typo'; fi\n",
            c = count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let batch = d.path().join("batch");
    std::fs::write(&batch, "pwd\n").unwrap();
    let mut c = tool_command(&SFTP);
    c.env_remove("SSH_AUTH_SOCK")
        .env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args([
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password",
        ])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=3",
        ])
        .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
        .arg("-b")
        .arg(&batch)
        .args(["-P", &s.port.to_string(), "alice@127.0.0.1"]);
    let o = run_with_timeout(&mut c, None, CHILD_TIMEOUT);
    assert!(
        o.status.success() && stdout_of(&o).contains("/home"),
        "a typo then the right password on one connection did not log in: {}\n{}",
        describe(&o),
        tail(&s.log(), 3000)
    );
    // The failed attempt still counted (audit says so).
    let records = audit(&s);
    assert!(
        records.contains("login_failed") && records.contains("login_succeeded"),
        "the wrong password left no audit record:\n{records}"
    );
}

/// Every audit record, one JSON object per line.
pub(crate) fn audit(s: &TestServer) -> String {
    s.cli_ok(&["audit", "export", "--format", "jsonl"])
}

pub(crate) fn status_of(raw: &mut RawSftp, what: &str) -> (u32, u32, String) {
    match raw.read_packet(Duration::from_secs(60)) {
        Ok((STATUS, body)) => parse_status(&body).unwrap(),
        other => panic!("{what}: expected STATUS, got {other:?}"),
    }
}

fn open_for_write(raw: &mut RawSftp, id: u32, path: &str) -> Vec<u8> {
    match raw.request(
        &open(id, path.as_bytes(), WRITE_FLAG | CREAT | TRUNC),
        Duration::from_secs(60),
    ) {
        Ok((HANDLE, body)) => parse_handle(&body).unwrap().1,
        other => panic!("OPEN {path}: {other:?}"),
    }
}

#[test]
fn a_write_that_cannot_succeed_is_refused_by_the_write_itself() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let mut raw = RawSftp::connect(s.port, "alice", &key);
    raw.init();
    let h = open_for_write(&mut raw, 1, "/home/w.bin");
    raw.send(&write(2, &h, 0, b"hello")).unwrap();
    assert_eq!(status_of(&mut raw, "first write").1, FX_OK);
    for (id, offset) in [(3u32, 1u64 << 63), (4, u64::MAX - 2), (5, (1 << 40) - 2)] {
        raw.send(&write(id, &h, offset, b"hello")).unwrap();
        let (rid, code, msg) = status_of(&mut raw, &format!("WRITE at {offset}"));
        assert_eq!(rid, id);
        assert_ne!(code, FX_OK, "WRITE at offset {offset} was acknowledged");
        assert!(!msg.is_empty(), "WRITE at {offset}: no message");
        eprintln!("WRITE at {offset}: {code} {msg:?}");
    }
    // The upload is spoiled: CLOSE says so and nothing becomes visible.
    raw.send(&close(6, &h)).unwrap();
    let (_, code, msg) = status_of(&mut raw, "CLOSE");
    assert_ne!(code, FX_OK, "CLOSE after a refused write succeeded");
    eprintln!("CLOSE: {msg:?}");
    raw.finish();
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -ln /home\n");
    assert!(ls_size(&ls, "w.bin").is_none(), "{ls}");
}

/// Leaves an upload of `path` that was written to but never closed (the connection ends), and
/// waits (bounded) until the server has recorded it as interrupted, i.e. no session holds it.
fn abandon_upload(s: &TestServer, key: &Path, path: &str) {
    crate::durability::write_then_drop(s, key, path, WRITE_FLAG | CREAT | TRUNC, 0, &[7u8; 1000]);
}

#[test]
fn rmdir_of_a_folder_holding_only_my_abandoned_upload_works() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    s.sftp_ok("alice", Auth::Key(&key), "mkdir /home/inbox\n");
    // An upload handle never closed: the connection ends, the upload is kept as resumable.
    abandon_upload(&s, &key, "/home/inbox/partial.bin");
    assert_eq!(staging_rows(&s), 1);
    let ls = s.sftp_ok("alice", Auth::Key(&key), "ls -1 /home/inbox\n");
    assert!(!ls.contains("partial.bin"), "{ls}");
    let out = s.sftp_ok("alice", Auth::Key(&key), "rmdir /home/inbox\nls -1 /home\n");
    assert!(
        !out.lines()
            .any(|l| !l.starts_with("sftp>") && l.contains("inbox")),
        "inbox still listed:\n{out}"
    );
    assert_eq!(staging_rows(&s), 0, "the abandoned upload is still staged");
    let records = audit(&s);
    assert!(
        records.contains("upload_abandoned") && records.contains("directory removed"),
        "discarding the upload was not audited:\n{records}"
    );

    // A folder that also holds a file still refuses, and then keeps my abandoned upload too:
    // either the directory and its abandoned uploads go together, or nothing changes.
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        "mkdir /home/keep\nput /etc/hostname /home/keep/file.txt\n",
    );
    abandon_upload(&s, &key, "/home/keep/partial.bin");
    let o = s.sftp("alice", Auth::Key(&key), "rmdir /home/keep\n");
    assert!(!o.status.success(), "rmdir of a non-empty folder succeeded");
    assert_eq!(
        staging_rows(&s),
        1,
        "a refused rmdir discarded the abandoned upload"
    );
}
