//! Test harness: drives the real `lockbox` binary and the real OpenSSH clients.
//!
//! Every child process gets a timeout (killed with its whole process group), so a hung server fails a test
//! instead of hanging CI. Servers listen on 127.0.0.1 only.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

pub const BIN: &str = env!("CARGO_BIN_EXE_lockbox");
/// Password used for test users (the contract requires at least 12 characters).
pub const PASSWORD: &str = "correct-horse-battery-staple";
/// Default time limit for any child process (sftp, scp, ssh, lockbox CLI).
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// Time limit for 100 MiB transfers.
pub const BIG_TIMEOUT: Duration = Duration::from_secs(300);
pub const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------------------------------------------

/// An external program the tests drive. `./.ci/run` installs every one of them when missing. A test whose
/// tool is missing fails (see [`require`]), with or without `CI` set: it never skips.
pub struct Tool {
    /// Absolute path, or a bare name looked up on `PATH`.
    pub program: &'static str,
    /// What it is, for the failure message.
    pub what: &'static str,
    /// How to install it by hand on Debian.
    pub install: &'static str,
}

pub const SSH: Tool = Tool {
    program: "/usr/bin/ssh",
    what: "the OpenSSH client (ssh)",
    install: "apt-get install openssh-client",
};
pub const SFTP: Tool = Tool {
    program: "/usr/bin/sftp",
    what: "the OpenSSH sftp client",
    install: "apt-get install openssh-client",
};
pub const SCP: Tool = Tool {
    program: "/usr/bin/scp",
    what: "the OpenSSH scp client",
    install: "apt-get install openssh-client",
};
pub const SSH_KEYGEN: Tool = Tool {
    program: "/usr/bin/ssh-keygen",
    what: "OpenSSH's ssh-keygen",
    install: "apt-get install openssh-client",
};
pub const CURL: Tool = Tool {
    program: "/usr/bin/curl",
    what: "the curl HTTP client",
    install: "apt-get install curl",
};
pub const CHROMIUM: Tool = Tool {
    program: "/usr/bin/chromium",
    what: "headless Chromium",
    install: "apt-get install --no-install-recommends chromium",
};
pub const NODE: Tool = Tool {
    program: "node",
    what: "Node.js >= 18 (runs playwright-core)",
    install: "apt-get install nodejs npm",
};

/// Fails the test, saying what is missing and how to install it.
pub fn missing_tool(what: &str, install: &str) -> ! {
    panic!(
        "\n\nMISSING TOOL: this test needs {what}, which is not installed on this machine.\n\
         Run `./.ci/run` (it installs everything the tests need, then runs the suite), or install it by hand: \
         `{install}`.\n"
    )
}

/// The tool's path; fails the test (naming the tool and how to install it) if it is not there.
pub fn require(tool: &Tool) -> PathBuf {
    let found = if tool.program.contains('/') {
        Some(PathBuf::from(tool.program)).filter(|p| is_executable(p))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(tool.program))
                .find(|p| is_executable(p))
        })
    };
    found.unwrap_or_else(|| {
        let where_ = if tool.program.contains('/') {
            tool.program.to_string()
        } else {
            format!("`{}` on PATH", tool.program)
        };
        missing_tool(&format!("{} ({where_})", tool.what), tool.install)
    })
}

/// A command for `tool`, after [`require`] checked it is installed.
pub fn tool_command(tool: &Tool) -> Command {
    Command::new(require(tool))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------------------------------------------
// Process helpers
// ---------------------------------------------------------------------------------------------------------------

/// Serializes the heavy (100 MiB) tests inside one test binary: the CI machine has 2 cores.
pub fn heavy_lock() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        let _ = tx.send(all);
    });
    rx
}

/// Kills a whole process group (the child was started with `process_group(0)`, so its pgid is its pid).
/// Only called while the child has not been reaped yet, so the pgid cannot have been reused.
fn kill_group(pid: u32, signal: &str) {
    // The shell's builtin `kill` (so no procps package is needed); `-PID` names the process group.
    let _ = Command::new("/bin/sh")
        .args(["-c", &format!("kill {signal} -{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `cmd` with optional stdin bytes, killing it (and its process group) after `timeout`.
/// On timeout the returned stderr ends with a `[harness] ... timed out` note.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.process_group(0);
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    if let Some(bytes) = stdin {
        let mut w = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        thread::spawn(move || {
            let _ = w.write_all(&bytes);
        });
    }
    let out_rx = spawn_reader(child.stdout.take().unwrap());
    let err_rx = spawn_reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_group(child.id(), "-KILL");
            break child.wait().unwrap();
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    let mut stderr = err_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(
            format!("\n[harness] {desc} timed out after {timeout:?} and was killed\n").as_bytes(),
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
pub fn describe(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        stdout_of(o),
        stderr_of(o)
    )
}

// ---------------------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------------------

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    pub port: u16,
    /// The HTTPS door's port (`https://127.0.0.1:{https_port}`, self-signed certificate).
    pub https_port: u16,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// Extra `serve` arguments, kept across restarts.
    serve_args: Vec<String>,
    /// Environment for the server and the CLI (e.g. `LOCKBOX_MIN_FREE_MIB`).
    env: Vec<(String, String)>,
}

fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LOCKBOX_") || k == "SSH_AUTH_SOCK" {
            cmd.env_remove(&k);
        }
    }
}

impl TestServer {
    /// Fresh data dir `D/data`, key file `D/master.key` (outside the data dir), server on 127.0.0.1:0.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Like `start`, with extra `lockbox serve` arguments (kept for restarts).
    pub fn start_with(serve_args: &[&str]) -> TestServer {
        Self::start_custom(None, serve_args, &[])
    }

    /// A server on an existing data directory and key file (a restored backup, say).
    pub fn start_on(data_dir: PathBuf, key_file: &Path) -> TestServer {
        let mut s = Self::start_custom_unspawned(Some(data_dir), &[], &[]);
        std::fs::copy(key_file, &s.key_file).unwrap();
        s.spawn();
        s
    }

    /// A server whose data directory is `data_dir` (default `D/data`), with extra `serve`
    /// arguments and environment variables (both also used by `cli` and restarts).
    pub fn start_custom(
        data_dir: Option<PathBuf>,
        serve_args: &[&str],
        env: &[(&str, &str)],
    ) -> TestServer {
        let mut s = Self::start_custom_unspawned(data_dir, serve_args, env);
        s.spawn();
        s
    }

    fn start_custom_unspawned(
        data_dir: Option<PathBuf>,
        serve_args: &[&str],
        env: &[(&str, &str)],
    ) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("lockbox-test-")
            .tempdir()
            .unwrap();
        let data_dir = data_dir.unwrap_or_else(|| dir.path().join("data"));
        let key_file = dir.path().join("master.key");
        TestServer {
            dir,
            data_dir,
            key_file,
            port: 0,
            https_port: 0,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let mut cmd = Command::new(BIN);
        clean_env(&mut cmd);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--key-file")
            .arg(&self.key_file)
            .args([
                "serve",
                "--sftp-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
            ])
            .args(&self.serve_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {BIN}: {e}"));
        let (tx, rx) = mpsc::channel::<String>();
        let log = self.log.clone();
        {
            let mut l = log.lock().unwrap();
            l.push_str("=== lockbox serve started ===\n");
        }
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let s = String::from_utf8_lossy(&line).into_owned();
                        log.lock().unwrap_or_else(|e| e.into_inner()).push_str(&s);
                        let _ = tx.send(s);
                    }
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let log2 = self.log.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => log2
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&format!("[stdout] {}", String::from_utf8_lossy(&line))),
                }
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        const PREFIX: &str = "lockbox: sftp listening on 127.0.0.1:";
        // Printed before the SFTP line.
        const HTTPS_PREFIX: &str = "lockbox: https listening on https://127.0.0.1:";
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(pos) = line.find(HTTPS_PREFIX) {
                        let digits: String = line[pos + HTTPS_PREFIX.len()..]
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .collect();
                        self.https_port = digits.parse().unwrap_or_else(|_| {
                            panic!("cannot parse https port from {line:?}\n{}", self.log())
                        });
                    }
                    if let Some(pos) = line.find(PREFIX) {
                        let rest = &line[pos + PREFIX.len()..];
                        let digits: String =
                            rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                        self.port = digits.parse().unwrap_or_else(|_| {
                            panic!("cannot parse port from {line:?}\n{}", self.log())
                        });
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let log = self.log();
                    self.kill();
                    panic!(
                        "lockbox serve did not print '{PREFIX}PORT' within 30 s; it said:\n{log}"
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    thread::sleep(Duration::from_millis(200));
                    let st = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten());
                    let log = self.log();
                    self.kill();
                    panic!("lockbox serve closed stderr before listening (exit: {st:?}); it said:\n{log}");
                }
            }
        }
    }

    /// Everything the server printed so far (stderr, and stdout lines prefixed `[stdout]`).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The server's process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Resident memory of the server in KiB (from /proc/PID/status), if available.
    pub fn rss_kib(&self) -> Option<u64> {
        let st = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        st.lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Is the server process still running?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Panics (with the server log) if the server process has exited.
    pub fn assert_alive(&mut self, ctx: &str) {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait().unwrap() {
                panic!("lockbox serve died ({st}) {ctx}; it said:\n{}", self.log());
            }
        } else {
            panic!("server not running {ctx}");
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Graceful stop: SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal_and_wait("-TERM", Duration::from_secs(10))
    }

    /// Sends `signal` (as `kill` spells it) and waits up to `timeout` for the exit, then SIGKILLs.
    /// Returns the exit status.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        // The shell's builtin `kill`, so no procps package is needed.
        let _ = Command::new("/bin/sh")
            .args(["-c", &format!("kill {signal} {}", c.id())])
            .stdin(Stdio::null())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = c.try_wait().unwrap() {
                return Some(st);
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    /// Stops (if running) and starts again on the same data dir and key file (new port).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn base_cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        clean_env(&mut cmd);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--key-file")
            .arg(&self.key_file)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs the CLI with this server's --data-dir/--key-file.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_with_timeout(self.base_cmd().args(args), None, CHILD_TIMEOUT)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_with_timeout(
            self.base_cmd().args(args),
            Some(stdin.as_bytes()),
            CHILD_TIMEOUT,
        )
    }

    /// Runs the CLI against another data dir (e.g. a tampered copy) with this server's key file.
    pub fn cli_on(&self, data_dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        clean_env(&mut cmd);
        cmd.arg("--data-dir")
            .arg(data_dir)
            .arg("--key-file")
            .arg(&self.key_file)
            .args(args);
        run_with_timeout(&mut cmd, None, CHILD_TIMEOUT)
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "lockbox {args:?} failed:\n{}\n--- server log ---\n{}",
            describe(&o),
            self.log()
        );
        stdout_of(&o)
    }

    pub fn cli_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let o = self.cli_stdin(args, stdin);
        assert!(
            o.status.success(),
            "lockbox {args:?} failed:\n{}\n--- server log ---\n{}",
            describe(&o),
            self.log()
        );
        stdout_of(&o)
    }

    // ---- setup helpers -------------------------------------------------------------------------------------

    pub fn create_org(&self, org: &str) {
        self.cli_ok(&["org", "create", org]);
    }

    /// Creates a user with a password (role `transfer` or `admin`).
    pub fn create_user(&self, org: &str, name: &str, role: &str, password: &str) {
        self.cli_stdin_ok(
            &[
                "user",
                "create",
                "--org",
                org,
                name,
                "--role",
                role,
                "--password-stdin",
            ],
            &format!("{password}\n"),
        );
    }

    pub fn add_key(&self, user: &str, private_key: &Path) {
        let pubkey = pub_path(private_key);
        self.cli_ok(&["key", "add", user, pubkey.to_str().unwrap()]);
    }

    /// Creates a transfer user with password [`PASSWORD`] and a fresh ed25519 key; returns the private key path.
    pub fn user_with_key(&self, org: &str, name: &str) -> PathBuf {
        self.create_user(org, name, "transfer", PASSWORD);
        let key = keygen_named(&self.dir.path().join("keys"), name, "ed25519");
        self.add_key(name, &key);
        key
    }

    pub fn create_folder(&self, org: &str, folder: &str) {
        self.cli_ok(&["folder", "create", "--org", org, folder]);
    }

    pub fn grant_user(&self, org: &str, folder: &str, user: &str, perms: &str) {
        self.cli_ok(&[
            "grant", "add", "--org", org, "--folder", folder, "--user", user, "--perms", perms,
        ]);
    }

    /// Typical setup: org `acme`, transfer user `alice` (password [`PASSWORD`], ed25519 key). Returns alice's key.
    pub fn setup_acme_alice(&self) -> PathBuf {
        self.create_org("acme");
        self.user_with_key("acme", "alice")
    }

    // ---- client shortcuts bound to this server ---------------------------------------------------------------

    pub fn sftp(&self, user: &str, auth: Auth, batch: &str) -> Output {
        sftp_batch(self.port, user, auth, batch)
    }

    /// Like [`TestServer::sftp`] but panics (with client output and server log) unless it succeeds.
    pub fn sftp_ok(&self, user: &str, auth: Auth, batch: &str) -> String {
        let o = self.sftp(user, auth, batch);
        assert!(
            o.status.success(),
            "sftp as {user} failed for batch:\n{batch}\n{}\n--- server log ---\n{}",
            describe(&o),
            self.log()
        );
        stdout_of(&o)
    }

    /// Every regular file under the data directory, recursively.
    pub fn data_files(&self) -> Vec<PathBuf> {
        walk_files(&self.data_dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn file_set(dir: &Path) -> BTreeSet<PathBuf> {
    walk_files(dir).into_iter().collect()
}

/// Recursively copies a directory (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&p, &t);
        } else if ft.is_file() {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Keys, files, hashes
// ---------------------------------------------------------------------------------------------------------------

pub fn pub_path(private_key: &Path) -> PathBuf {
    let mut s = private_key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// `ssh-keygen -q -N "" -t KIND` into `dir/id_KIND`; returns the private key path (public key is `.pub` next to it).
pub fn keygen(dir: &Path, kind: &str) -> PathBuf {
    keygen_named(dir, &format!("id_{kind}"), kind)
}

pub fn keygen_named(dir: &Path, name: &str, kind: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(pub_path(&path));
    let mut cmd = tool_command(&SSH_KEYGEN);
    cmd.args(["-q", "-N", "", "-t", kind]);
    if kind == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    cmd.arg("-C")
        .arg(format!("{name}@lockbox-test"))
        .arg("-f")
        .arg(&path);
    let o = run_with_timeout(&mut cmd, None, CHILD_TIMEOUT);
    assert!(o.status.success(), "ssh-keygen failed:\n{}", describe(&o));
    path
}

/// Writes `size` pseudo-random bytes (fresh seed) and returns the SHA-256 hex of the content.
pub fn write_random_file(path: &Path, size: usize) -> String {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut rng = rand::rngs::StdRng::from_seed(seed);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
    hex::encode(h.finalize())
}

pub fn sha256_file(path: &Path) -> String {
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Does `haystack` contain `needle`?
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses `sftp` `ls -ln` output: returns (size, name) for each entry line.
pub fn parse_ls_ln(stdout: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // perms nlink uid gid size mon day time|year name...
        if t.len() >= 9
            && (t[0].starts_with('-') || t[0].starts_with('d') || t[0].starts_with('l'))
            && t[0].len() == 10
        {
            if let Ok(size) = t[4].parse::<u64>() {
                out.push((size, t[8..].join(" ")));
            }
        }
    }
    out
}

/// Size of `name` in `ls -ln` output, if listed.
pub fn ls_size(stdout: &str, name: &str) -> Option<u64> {
    parse_ls_ln(stdout)
        .into_iter()
        .find(|(_, n)| n == name || n.ends_with(&format!("/{name}")))
        .map(|(s, _)| s)
}

// ---------------------------------------------------------------------------------------------------------------
// OpenSSH clients
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    /// Public key: `-i path -o IdentitiesOnly=yes -o PreferredAuthentications=publickey`.
    Key(&'a Path),
    /// Password through an askpass script (`SSH_ASKPASS_REQUIRE=force`), with `-o BatchMode=no` placed before `-b`.
    Password(&'a str),
    /// Like `Password`, but the askpass script answers by prompt (its first argument): the
    /// keyboard-interactive "Verification code" prompt gets the code, every other prompt the password.
    PasswordAndCode(&'a str, &'a str),
}

/// Options common to ssh/sftp/scp. `-F /dev/null` so no user/system config interferes.
fn common_opts() -> Vec<String> {
    let mut v: Vec<String> = [
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
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=4",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Ok(c) = std::env::var("LOCKBOX_TEST_CIPHERS") {
        v.push("-o".into());
        v.push(format!("Ciphers={c}"));
    }
    v
}

/// Keeps the askpass script alive for as long as the command runs.
pub struct AuthGuard(Option<tempfile::TempDir>);

fn apply_auth(cmd: &mut Command, auth: Auth) -> AuthGuard {
    cmd.env_remove("SSH_AUTH_SOCK");
    match auth {
        Auth::Key(path) => {
            cmd.arg("-i").arg(path).args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "BatchMode=yes",
            ]);
            AuthGuard(None)
        }
        Auth::Password(pw) => password_auth(cmd, pw, None),
        Auth::PasswordAndCode(pw, code) => password_auth(cmd, pw, Some(code)),
    }
}

/// Answers ssh's prompts through an askpass script: the password, and `code` (if any) at a prompt
/// containing "erification" (the keyboard-interactive second-factor prompt).
fn password_auth(cmd: &mut Command, pw: &str, code: Option<&str>) -> AuthGuard {
    let d = tempfile::Builder::new()
        .prefix("lockbox-askpass-")
        .tempdir()
        .unwrap();
    let secret_file = |name: &str, value: &str| {
        let f = d.path().join(name);
        std::fs::write(&f, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        f
    };
    let body = match code {
        Some(code) => format!(
            "case \"$1\" in\n*erification*) exec cat '{}' ;;\n*) exec cat '{}' ;;\nesac\n",
            secret_file("code", code).display(),
            secret_file("pw", pw).display()
        ),
        None => format!("exec cat '{}'\n", secret_file("pw", pw).display()),
    };
    let script = d.path().join("askpass.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    cmd.env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0");
    // BatchMode=no must come before sftp's `-b` (which adds `-oBatchMode yes`; ssh keeps the first value).
    cmd.args([
        "-o",
        "BatchMode=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "IdentitiesOnly=yes",
    ]);
    AuthGuard(Some(d))
}

fn sftp_command(
    port: u16,
    user: &str,
    auth: Auth,
    batch_file: &Path,
    extra: &[&str],
) -> (Command, AuthGuard) {
    let mut cmd = tool_command(&SFTP);
    cmd.args(common_opts());
    let guard = apply_auth(&mut cmd, auth);
    cmd.args(extra);
    cmd.arg("-b")
        .arg(batch_file)
        .arg("-P")
        .arg(port.to_string())
        .arg(format!("{user}@127.0.0.1"));
    (cmd, guard)
}

fn write_batch(cmds: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("lockbox-batch-")
        .tempdir()
        .unwrap();
    let f = d.path().join("batch");
    std::fs::write(&f, cmds).unwrap();
    (d, f)
}

/// `sftp -b batch` against 127.0.0.1:port (time limit [`CHILD_TIMEOUT`]).
pub fn sftp_batch(port: u16, user: &str, auth: Auth, batch_cmds: &str) -> Output {
    sftp_batch_opts(port, user, auth, batch_cmds, &[], CHILD_TIMEOUT)
}

/// `sftp -b batch` with extra client options (e.g. `-l KBITS`) and an explicit time limit.
pub fn sftp_batch_opts(
    port: u16,
    user: &str,
    auth: Auth,
    batch_cmds: &str,
    extra: &[&str],
    timeout: Duration,
) -> Output {
    let (_d, f) = write_batch(batch_cmds);
    let (mut cmd, _g) = sftp_command(port, user, auth, &f, extra);
    run_with_timeout(&mut cmd, None, timeout)
}

/// A background `sftp -b` (own process group) that can be killed with SIGKILL mid-transfer.
pub struct BackgroundSftp {
    child: Option<Child>,
    _batch: tempfile::TempDir,
    _auth: AuthGuard,
    out_rx: Receiver<Vec<u8>>,
    err_rx: Receiver<Vec<u8>>,
}

impl BackgroundSftp {
    pub fn spawn(
        port: u16,
        user: &str,
        auth: Auth,
        batch_cmds: &str,
        extra: &[&str],
    ) -> BackgroundSftp {
        let (d, f) = write_batch(batch_cmds);
        let (mut cmd, g) = sftp_command(port, user, auth, &f, extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let out_rx = spawn_reader(child.stdout.take().unwrap());
        let err_rx = spawn_reader(child.stderr.take().unwrap());
        BackgroundSftp {
            child: Some(child),
            _batch: d,
            _auth: g,
            out_rx,
            err_rx,
        }
    }

    /// Has it exited already?
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits up to `timeout` for the exit (then SIGKILLs). Returns (status, stdout, stderr).
    pub fn wait(mut self, timeout: Duration) -> (Option<ExitStatus>, String, String) {
        let deadline = Instant::now() + timeout;
        let mut st = None;
        while Instant::now() < deadline {
            st = self.try_status();
            if st.is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let (o, e) = self.kill9();
        (st, o, e)
    }

    /// SIGKILL to sftp and its ssh child (whole process group), then reap. Returns (stdout, stderr).
    pub fn kill9(mut self) -> (String, String) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().unwrap().is_none() {
                kill_group(c.id(), "-KILL");
            }
            let _ = c.wait();
        }
        let o = self
            .out_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        let e = self
            .err_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        (
            String::from_utf8_lossy(&o).into_owned(),
            String::from_utf8_lossy(&e).into_owned(),
        )
    }
}

impl Drop for BackgroundSftp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                kill_group(c.id(), "-KILL");
            }
            let _ = c.wait();
        }
    }
}

/// `scp -P port [auth] from to` (remote spelled `user@127.0.0.1:/path`, see [`remote`]).
pub fn scp(port: u16, auth: Auth, from: &str, to: &str) -> Output {
    let mut cmd = tool_command(&SCP);
    cmd.args(common_opts());
    let _g = apply_auth(&mut cmd, auth);
    cmd.arg("-P").arg(port.to_string()).arg(from).arg(to);
    run_with_timeout(&mut cmd, None, BIG_TIMEOUT)
}

pub fn remote(user: &str, path: &str) -> String {
    format!("{user}@127.0.0.1:{path}")
}

fn ssh_subsystem_command(port: u16, user: &str, key: &Path) -> Command {
    let mut cmd = tool_command(&SSH);
    cmd.args(common_opts());
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd.arg("-i").arg(key).args([
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PreferredAuthentications=publickey",
        "-o",
        "BatchMode=yes",
        "-T",
        "-s",
        "-p",
    ]);
    cmd.arg(port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .arg("sftp");
    cmd
}

/// `ssh -s -p PORT -i KEY user@127.0.0.1 sftp` with stdin = `bytes`; returns everything the subsystem wrote to
/// stdout. Stdin is held open until the output has been quiet for `settle` (or the server closed the channel),
/// then closed.
pub fn ssh_subsystem_raw(
    port: u16,
    user: &str,
    key: &Path,
    bytes: &[u8],
    settle: Duration,
) -> (Vec<u8>, Output) {
    let mut raw = RawSftp::connect(port, user, key);
    let _ = raw.send(bytes);
    let mut got = Vec::new();
    let deadline = Instant::now() + CHILD_TIMEOUT;
    while let Ok(chunk) = raw.rx.recv_timeout(settle) {
        got.extend_from_slice(&chunk);
        if Instant::now() > deadline {
            break;
        }
    }
    got.extend_from_slice(&raw.buf);
    raw.buf.clear();
    let out = raw.finish();
    (got, out)
}

// ---------------------------------------------------------------------------------------------------------------
// Raw SFTP over `ssh -s ... sftp`
// ---------------------------------------------------------------------------------------------------------------

pub mod fxp {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;

    pub const READ_FLAG: u32 = 1;
    pub const WRITE_FLAG: u32 = 2;
    pub const CREAT: u32 = 8;
    pub const TRUNC: u32 = 0x10;

    pub const FX_OK: u32 = 0;
    pub const FX_EOF: u32 = 1;
    pub const FX_NO_SUCH_FILE: u32 = 2;
    pub const FX_PERMISSION_DENIED: u32 = 3;
    pub const FX_FAILURE: u32 = 4;
    pub const FX_BAD_MESSAGE: u32 = 5;
    pub const FX_OP_UNSUPPORTED: u32 = 8;

    /// Frames a packet: u32 BE length, type, body.
    pub fn packet(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(body.len() + 5);
        v.extend_from_slice(&((body.len() as u32 + 1).to_be_bytes()));
        v.push(ty);
        v.extend_from_slice(body);
        v
    }
    pub fn put_u32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_be_bytes());
    }
    pub fn put_str(v: &mut Vec<u8>, s: &[u8]) {
        put_u32(v, s.len() as u32);
        v.extend_from_slice(s);
    }
    pub fn init() -> Vec<u8> {
        packet(INIT, &3u32.to_be_bytes())
    }
    /// OPEN with empty attrs.
    pub fn open(id: u32, path: &[u8], pflags: u32) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, path);
        put_u32(&mut b, pflags);
        put_u32(&mut b, 0); // attr flags
        packet(OPEN, &b)
    }
    pub fn close(id: u32, handle: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, handle);
        packet(CLOSE, &b)
    }
    pub fn write(id: u32, handle: &[u8], offset: u64, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, handle);
        b.extend_from_slice(&offset.to_be_bytes());
        put_str(&mut b, data);
        packet(WRITE, &b)
    }
    /// A request whose body is `id, string path` (STAT, LSTAT, OPENDIR, REMOVE, REALPATH, RMDIR).
    pub fn path_req(ty: u8, id: u32, path: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, path);
        packet(ty, &b)
    }
    pub fn mkdir(id: u32, path: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, path);
        put_u32(&mut b, 0);
        packet(MKDIR, &b)
    }
    pub fn rename(id: u32, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, from);
        put_str(&mut b, to);
        packet(RENAME, &b)
    }
    pub fn symlink(id: u32, a: &[u8], b2: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, id);
        put_str(&mut b, a);
        put_str(&mut b, b2);
        packet(SYMLINK, &b)
    }
    pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        b.get(at..at + 4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// Body of a STATUS packet (after the type byte): (id, code, message).
    pub fn parse_status(body: &[u8]) -> Option<(u32, u32, String)> {
        let id = u32_at(body, 0)?;
        let code = u32_at(body, 4)?;
        let msg = u32_at(body, 8)
            .and_then(|n| body.get(12..12 + n as usize))
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .unwrap_or_default();
        Some((id, code, msg))
    }
    /// Body of a HANDLE packet: (id, handle).
    pub fn parse_handle(body: &[u8]) -> Option<(u32, Vec<u8>)> {
        let id = u32_at(body, 0)?;
        let n = u32_at(body, 4)? as usize;
        Some((id, body.get(8..8 + n)?.to_vec()))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RawErr {
    /// The server closed the channel (stdout EOF).
    Eof,
    Timeout,
}

/// An `ssh -s sftp` session speaking raw SFTP packets.
pub struct RawSftp {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    eof: bool,
    err_rx: Receiver<Vec<u8>>,
}

impl RawSftp {
    pub fn connect(port: u16, user: &str, key: &Path) -> RawSftp {
        RawSftp::spawn(ssh_subsystem_command(port, user, key))
    }

    /// Runs `cmd` (an ssh command that starts the sftp subsystem) and speaks raw SFTP over its
    /// stdin and stdout.
    pub fn spawn(mut cmd: Command) -> RawSftp {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut b = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(b[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let err_rx = spawn_reader(child.stderr.take().unwrap());
        RawSftp {
            child: Some(child),
            stdin,
            rx,
            buf: Vec::new(),
            eof: false,
            err_rx,
        }
    }

    /// Writes bytes to the subsystem (from the caller's thread; the reader thread keeps draining stdout).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(w) => {
                w.write_all(bytes)?;
                w.flush()
            }
            None => Err(std::io::Error::other("stdin closed")),
        }
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Next complete reply packet: (type, body after the type byte).
    pub fn read_packet(&mut self, timeout: Duration) -> Result<(u8, Vec<u8>), RawErr> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len >= 1 && self.buf.len() >= 4 + len {
                    let ty = self.buf[4];
                    let body = self.buf[5..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return Ok((ty, body));
                }
            }
            if self.eof {
                return Err(RawErr::Eof);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RawErr::Timeout);
            }
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.buf.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => return Err(RawErr::Timeout),
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
    }

    /// Sends INIT(3) and expects VERSION; panics otherwise (with ssh's stderr).
    pub fn init(&mut self) -> u32 {
        self.send(&fxp::init()).expect("send INIT");
        match self.read_packet(Duration::from_secs(60)) {
            Ok((fxp::VERSION, body)) => fxp::u32_at(&body, 0).unwrap_or(0),
            other => {
                let out = self.finish();
                panic!(
                    "expected SSH_FXP_VERSION, got {other:?}\n{}",
                    describe(&out)
                );
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub fn request(&mut self, pkt: &[u8], timeout: Duration) -> Result<(u8, Vec<u8>), RawErr> {
        self.send(pkt).map_err(|_| RawErr::Eof)?;
        self.read_packet(timeout)
    }

    /// Waits until the server closes the channel; true if it did within `timeout`.
    pub fn wait_eof(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.buf.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
        true
    }

    /// Closes stdin, waits (≤ 20 s, then kills) and returns the ssh process' status and stderr.
    pub fn finish(&mut self) -> Output {
        self.stdin = None;
        let Some(mut c) = self.child.take() else {
            return Output {
                status: ExitStatus::default(),
                stdout: vec![],
                stderr: vec![],
            };
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                kill_group(c.id(), "-KILL");
                break c.wait().unwrap();
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = self
            .err_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        Output {
            status,
            stdout: vec![],
            stderr,
        }
    }
}

impl Drop for RawSftp {
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                kill_group(c.id(), "-KILL");
            }
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// SQLite helpers (for tampering)
// ---------------------------------------------------------------------------------------------------------------

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("lockbox.db")
}

/// Column names of `table` (from `PRAGMA table_info`).
pub fn table_columns(conn: &rusqlite::Connection, table: &str) -> Vec<(String, String)> {
    let mut st = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

pub fn schema_dump(conn: &rusqlite::Connection) -> String {
    let mut st = conn
        .prepare("SELECT coalesce(sql, '') FROM sqlite_master")
        .unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>()
        .join(";\n")
}

pub mod web;
