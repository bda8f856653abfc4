//! The HTTPS door in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/e2e/browser_flow.mjs`) against the real binary. A transfer user logs in with a password, enrols
//! TOTP (the code computed from the secret the page shows), keeps the recovery codes, uploads 50 MiB through
//! the file browser while the progress bar is watched, downloads it again byte-identical, is refused the
//! admin pages (403), logs out and back in with a fresh TOTP code; an admin enrols too and finds the upload
//! in the audit log filtered by that user, and sees the sessions page. Screenshots of every screen go to
//! `target/test-artifacts/web/` for a human to look at.
//!
//! Needs `/usr/bin/chromium`, `node` and `tests/e2e/node_modules/playwright-core` (`.ci/run` installs all
//! three; by hand: `apt-get install chromium nodejs npm`, then `npm ci` in `crates/lockbox/tests/e2e`).
//! Without them the test fails, saying what is missing and how to install it (it never skips, CI or not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const ADMIN: &str = "root-admin";
const PARTNER: &str = "alice";
const UPLOAD_NAME: &str = "claims-2026-q3-upload.bin";
const UPLOAD_SIZE: usize = 50 * MIB;
/// The script bounds itself to 240 s overall; this is the harness' backstop.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-artifacts").join("web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium, node (>= 18) and playwright-core, or a failure naming the missing one and how to install it.
/// Returns (chromium, node).
fn require_prerequisites() -> (PathBuf, PathBuf) {
    let chromium = require(&CHROMIUM);
    let node = require(&NODE);
    let o = Command::new(&node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
    let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    if !o.status.success() || major.is_none_or(|m| m < 18) {
        missing_tool(
            &format!(
                "Node.js >= 18 (playwright-core needs it; {} --version said {version:?})",
                node.display()
            ),
            NODE.install,
        );
    }
    let pw = e2e_dir().join("node_modules/playwright-core/package.json");
    if !pw.exists() {
        missing_tool(
            &format!("playwright-core from npm ({} is missing)", pw.display()),
            &format!("cd {} && npm ci", e2e_dir().display()),
        );
    }
    (chromium, node)
}

/// The HTTPS door's port, from the line `lockbox serve` prints (read from the log, so this test does not
/// depend on the harness version).
fn https_port(server: &TestServer) -> u16 {
    const PREFIX: &str = "lockbox: https listening on https://127.0.0.1:";
    let log = server.log();
    log.lines()
        .find_map(|l| {
            let rest = &l[l.find(PREFIX)? + PREFIX.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u16>().ok().filter(|&p| p != 0)
        })
        .unwrap_or_else(|| panic!("lockbox serve did not print '{PREFIX}PORT'; it said:\n{log}"))
}

#[test]
fn browser_enrol_upload_download_and_audit() {
    let (chromium, node) = require_prerequisites();
    let _heavy = heavy_lock();

    let mut server = TestServer::start();
    let https_port = https_port(&server);
    server.create_org("acme");
    server.create_user("acme", PARTNER, "transfer", PASSWORD);
    server.create_user("acme", ADMIN, "admin", PASSWORD);

    let work = server.dir.path().join("browser");
    let downloads = work.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let upload = work.join(UPLOAD_NAME);
    let source_sha = write_random_file(&upload, UPLOAD_SIZE);

    let artifacts = artifact_dir();
    for e in std::fs::read_dir(&artifacts).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("web-") && name.ends_with(".png") {
            let _ = std::fs::remove_file(e.path());
        }
    }

    let mut cmd = Command::new(node);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LOCKBOX_") {
            cmd.env_remove(&k);
        }
    }
    cmd.arg(e2e_dir().join("browser_flow.mjs"))
        .current_dir(e2e_dir())
        .env(
            "LOCKBOX_E2E_BASE",
            format!("https://127.0.0.1:{https_port}"),
        )
        .env("LOCKBOX_E2E_PARTNER_USER", PARTNER)
        .env("LOCKBOX_E2E_PARTNER_PASSWORD", PASSWORD)
        .env("LOCKBOX_E2E_ADMIN_USER", ADMIN)
        .env("LOCKBOX_E2E_ADMIN_PASSWORD", PASSWORD)
        .env("LOCKBOX_E2E_UPLOAD", &upload)
        .env("LOCKBOX_E2E_ARTIFACTS", &artifacts)
        .env("LOCKBOX_E2E_DOWNLOADS", &downloads)
        .env("LOCKBOX_E2E_CHROMIUM", &chromium);
    let out = run_with_timeout(&mut cmd, None, BROWSER_TIMEOUT);
    let stdout = stdout_of(&out);
    println!("--- browser_flow.mjs stdout ---\n{stdout}");
    println!("--- browser_flow.mjs stderr ---\n{}", stderr_of(&out));
    println!("screenshots: {}", artifacts.display());
    assert!(
        out.status.success(),
        "the browser flow failed ({}); screenshots in {}\n{}\n--- server log ---\n{}",
        out.status,
        artifacts.display(),
        describe(&out),
        server.log()
    );
    server.assert_alive("after the browser flow");

    // The script's summary, kept next to the screenshots.
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("E2E_RESULT "))
        .unwrap_or_else(|| panic!("no E2E_RESULT line in the script's output:\n{stdout}"));
    let v: serde_json::Value = serde_json::from_str(summary).expect("E2E_RESULT is JSON");
    std::fs::write(artifacts.join("web-e2e-result.json"), summary).unwrap();
    assert_eq!(v["sha256_source"], source_sha.as_str(), "{summary}");
    assert_eq!(v["sha256_download"], source_sha.as_str(), "{summary}");
    assert_eq!(v["progress_final"]["value"], 100, "{summary}");
    for shot in [
        "web-01-enroll.png",
        "web-02-recovery.png",
        "web-03-upload-100.png",
        "web-04-files.png",
        "web-05-partner-admin-403.png",
        "web-06-audit.png",
        "web-07-sessions.png",
    ] {
        let len = std::fs::metadata(artifacts.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            len > 1000,
            "screenshot {shot} missing or empty ({len} bytes)"
        );
    }

    // The vault agrees: the browser's upload is committed and audited with its digest, and the chain holds.
    let export = server.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(
        export.lines().any(|l| l.contains("upload_committed")
            && l.contains(UPLOAD_NAME)
            && l.contains(&source_sha)),
        "no upload_committed record with {UPLOAD_NAME} and its SHA-256 in the audit export:\n{export}"
    );
    server.cli_ok(&["audit", "verify"]);
    server.stop();
}
