//! The admin CLI contract (docs/cli.md): one-line errors with exit code 1, usage errors exit 2, `--json`
//! parses, key management, groups and grants take effect over SFTP, disable/enable, set-password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::*;
use std::process::{Command, Output};

/// Non-zero (exit 1), and stderr is exactly one line starting with `error: `.
fn assert_one_line_error(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: expected exit code 1:\n{}",
        describe(o)
    );
    let err = stderr_of(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one line on stderr:\n{}",
        describe(o)
    );
    assert!(
        lines[0].starts_with("error: "),
        "{what}: stderr line does not start with 'error: ':\n{}",
        describe(o)
    );
}

fn parse_json_output(o: &Output, what: &str) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{what} failed:\n{}", describe(o));
    let out = stdout_of(o);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) {
        return vec![v];
    }
    // Otherwise JSON lines.
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what}: output is not JSON ({e}):\n{out}"))
        })
        .collect()
}

#[test]
fn errors_are_one_line_with_exit_1() {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_user("acme", "alice", "transfer", PASSWORD);

    let o = s.cli(&["org", "create", "acme"]);
    assert_one_line_error(&o, "duplicate org");

    let o = s.cli(&["user", "reset-mfa", "nobody"]);
    assert_one_line_error(&o, "reset-mfa of an unknown user");
    let out = s.cli_ok(&["user", "reset-mfa", "alice", "--json"]);
    assert!(
        out.contains("\"mfa_reset\":true") || out.contains("\"mfa_reset\": true"),
        "{out}"
    );

    let o = s.cli_stdin(
        &[
            "user",
            "create",
            "--org",
            "acme",
            "alice",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_one_line_error(&o, "duplicate user");

    let o = s.cli_stdin(
        &[
            "user",
            "create",
            "--org",
            "nosuchorg",
            "bob",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_one_line_error(&o, "unknown org");

    for weak in ["short", "elevenchars", "", "           "] {
        let o = s.cli_stdin(
            &[
                "user",
                "create",
                "--org",
                "acme",
                "weakling",
                "--password-stdin",
            ],
            &format!("{weak}\n"),
        );
        assert_one_line_error(&o, &format!("weak password {weak:?}"));
    }
    let users = s.cli_ok(&["user", "list"]);
    assert!(
        !users.contains("weakling"),
        "user with a weak password was created:\n{users}"
    );

    let o = s.cli_stdin(
        &["user", "set-password", "alice", "--password-stdin"],
        "short\n",
    );
    assert_one_line_error(&o, "set-password with a weak password");

    let o = s.cli_stdin(
        &[
            "user",
            "create",
            "--org",
            "acme",
            "eve",
            "--role",
            "superuser",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        !o.status.success(),
        "unknown role accepted:\n{}",
        describe(&o)
    );

    let o = s.cli(&["folder", "create", "--org", "nosuchorg", "inbound"]);
    assert_one_line_error(&o, "folder in unknown org");
    let o = s.cli(&[
        "grant",
        "add",
        "--org",
        "acme",
        "--folder",
        "nosuchfolder",
        "--user",
        "alice",
        "--perms",
        "read",
    ]);
    assert_one_line_error(&o, "grant on unknown folder");
    s.create_folder("acme", "inbound");
    let o = s.cli(&[
        "grant", "add", "--org", "acme", "--folder", "inbound", "--user", "nobody", "--perms",
        "read",
    ]);
    assert_one_line_error(&o, "grant to unknown user");
    let o = s.cli(&[
        "grant", "add", "--org", "acme", "--folder", "inbound", "--user", "alice", "--perms",
        "read,fly",
    ]);
    assert!(
        !o.status.success(),
        "unknown permission accepted:\n{}",
        describe(&o)
    );
    let o = s.cli(&["user", "unlock", "nobody"]);
    assert_one_line_error(&o, "unlock unknown user");
}

#[test]
fn usage_errors_exit_2() {
    let s = TestServer::start();
    let o = s.cli(&["user", "create"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let o = s.cli(&["no-such-subcommand"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}

#[test]
fn key_file_errors() {
    let s = TestServer::start();
    s.create_org("acme");
    s.create_user("acme", "alice", "transfer", PASSWORD);
    let tmp = s.dir.path();

    let o = s.cli(&[
        "key",
        "add",
        "alice",
        tmp.join("does-not-exist.pub").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "missing key file");
    let o = s.cli(&["key", "add", "alice", tmp.to_str().unwrap()]);
    assert_one_line_error(&o, "directory as key file");
    let garbage = tmp.join("garbage.pub");
    std::fs::write(&garbage, "ssh-ed25519 !!!notbase64!!! x@y\n").unwrap();
    let o = s.cli(&["key", "add", "alice", garbage.to_str().unwrap()]);
    assert_one_line_error(&o, "garbage key");
    let empty = tmp.join("empty.pub");
    std::fs::write(&empty, "").unwrap();
    let o = s.cli(&["key", "add", "alice", empty.to_str().unwrap()]);
    assert_one_line_error(&o, "empty key file");
    // A private key is not a public key.
    let k = keygen(&tmp.join("k"), "ed25519");
    let o = s.cli(&["key", "add", "alice", k.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "private key file accepted as a public key:\n{}",
        describe(&o)
    );
    // ssh-rsa shorter than 2048 bits is refused.
    let weak = tmp.join("k").join("rsa1024");
    let o = run_with_timeout(
        tool_command(&SSH_KEYGEN)
            .args(["-q", "-N", "", "-t", "rsa", "-b", "1024", "-f"])
            .arg(&weak),
        None,
        CHILD_TIMEOUT,
    );
    if o.status.success() {
        let o = s.cli(&["key", "add", "alice", pub_path(&weak).to_str().unwrap()]);
        assert_one_line_error(&o, "1024-bit RSA key");
    }
    // Key for an unknown user.
    let o = s.cli(&["key", "add", "nobody", pub_path(&k).to_str().unwrap()]);
    assert_one_line_error(&o, "key for unknown user");
}

#[test]
fn key_file_inside_data_dir_is_refused() {
    let s = TestServer::start();
    let inner = s.data_dir.join("inner.key");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(&s.data_dir)
        .arg("--key-file")
        .arg(&inner)
        .args(["org", "list"]);
    let o = run_with_timeout(&mut cmd, None, CHILD_TIMEOUT);
    assert!(
        !o.status.success(),
        "a key file inside the data dir was accepted:\n{}",
        describe(&o)
    );
}

#[test]
fn json_output_parses() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    s.create_folder("acme", "inbound");
    s.grant_user("acme", "inbound", "alice", "list,read");
    s.cli_ok(&["group", "create", "--org", "acme", "partners"]);
    s.cli_ok(&["group", "add-member", "partners", "alice"]);
    let _ = key;

    let o = s.cli(&["org", "create", "globex", "--json"]);
    parse_json_output(&o, "org create --json");

    for (args, must_contain) in [
        (vec!["org", "list", "--json"], "acme"),
        (vec!["user", "list", "--json"], "alice"),
        (vec!["user", "list", "--org", "acme", "--json"], "alice"),
        (vec!["folder", "list", "--json"], "inbound"),
        (vec!["folder", "list", "--org", "acme", "--json"], "inbound"),
        (vec!["grant", "list", "--json"], "inbound"),
        (vec!["grant", "list", "--org", "acme", "--json"], "inbound"),
        (vec!["group", "list", "--org", "acme", "--json"], "partners"),
        (vec!["key", "list", "alice", "--json"], "SHA256:"),
        (vec!["audit", "verify", "--json"], ""),
    ] {
        let o = s.cli(&args);
        let vals = parse_json_output(&o, &args.join(" "));
        let text = vals.iter().map(|v| v.to_string()).collect::<String>();
        assert!(
            text.contains(must_contain),
            "{args:?}: JSON does not mention {must_contain:?}:\n{text}"
        );
    }
    // Errors under --json still fail with a non-zero exit.
    let o = s.cli(&["org", "create", "acme", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
}

#[test]
fn key_list_and_remove_by_fingerprint() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let o = run_with_timeout(
        tool_command(&SSH_KEYGEN).arg("-lf").arg(pub_path(&key)),
        None,
        CHILD_TIMEOUT,
    );
    let fp = stdout_of(&o).split_whitespace().nth(1).unwrap().to_string();
    assert!(fp.starts_with("SHA256:"));
    let list = s.cli_ok(&["key", "list", "alice"]);
    assert!(list.contains(&fp), "key list does not show {fp}:\n{list}");
    s.sftp_ok("alice", Auth::Key(&key), "pwd\n");
    s.cli_ok(&["key", "remove", "alice", &fp]);
    let o = s.sftp("alice", Auth::Key(&key), "pwd\n");
    assert!(
        !o.status.success(),
        "removed key still logs in:\n{}",
        describe(&o)
    );
    let o = s.cli(&["key", "remove", "alice", &fp]);
    assert_one_line_error(&o, "removing a key twice");
}

#[test]
fn groups_grants_disable_enable_set_password() {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    let dave = s.user_with_key("acme", "dave");
    s.create_folder("acme", "inbound");
    s.cli_ok(&["group", "create", "--org", "acme", "partners"]);
    s.cli_ok(&["group", "add-member", "partners", "alice"]);
    s.cli_ok(&[
        "grant",
        "add",
        "--org",
        "acme",
        "--folder",
        "inbound",
        "--group",
        "partners",
        "--perms",
        "list,read,write",
    ]);
    let f = s.dir.path().join("g.txt");
    std::fs::write(&f, b"group grant\n").unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!("put {} /inbound/g.txt\nls /inbound\n", f.display()),
    );
    let o = s.sftp("dave", Auth::Key(&dave), "ls /inbound\n");
    assert!(
        !o.status.success(),
        "non-member sees /inbound:\n{}",
        describe(&o)
    );
    let o = s.sftp("alice", Auth::Key(&alice), "rm /inbound/g.txt\n");
    assert!(
        !o.status.success(),
        "delete allowed without the delete permission:\n{}",
        describe(&o)
    );

    // Removing the grant takes effect for new sessions.
    s.cli_ok(&[
        "grant", "remove", "--org", "acme", "--folder", "inbound", "--group", "partners",
    ]);
    let o = s.sftp("alice", Auth::Key(&alice), "ls /inbound\n");
    assert!(
        !o.status.success(),
        "grant removal not effective:\n{}",
        describe(&o)
    );

    // Disable / enable.
    s.cli_ok(&["user", "disable", "alice"]);
    let o = s.sftp("alice", Auth::Key(&alice), "pwd\n");
    assert!(
        !o.status.success(),
        "disabled user logged in with a key:\n{}",
        describe(&o)
    );
    let o = s.sftp("alice", Auth::Password(PASSWORD), "pwd\n");
    assert!(
        !o.status.success(),
        "disabled user logged in with a password:\n{}",
        describe(&o)
    );
    s.cli_ok(&["user", "enable", "alice"]);
    s.sftp_ok("alice", Auth::Key(&alice), "pwd\n");

    // set-password: old refused, new accepted.
    let newpw = "another-long-passphrase-42";
    s.cli_stdin_ok(
        &["user", "set-password", "alice", "--password-stdin"],
        &format!("{newpw}\n"),
    );
    let o = s.sftp("alice", Auth::Password(PASSWORD), "pwd\n");
    assert!(
        !o.status.success(),
        "old password still accepted:\n{}",
        describe(&o)
    );
    s.sftp_ok("alice", Auth::Password(newpw), "pwd\n");
}

#[test]
fn lockout_after_failed_passwords_until_unlock() {
    let s = TestServer::start();
    s.setup_acme_alice();
    s.sftp_ok("alice", Auth::Password(PASSWORD), "pwd\n");
    for i in 0..6 {
        let o = s.sftp(
            "alice",
            Auth::Password(&format!("wrong-password-number-{i}")),
            "pwd\n",
        );
        assert!(
            !o.status.success(),
            "wrong password {i} accepted:\n{}",
            describe(&o)
        );
    }
    let o = s.sftp("alice", Auth::Password(PASSWORD), "pwd\n");
    assert!(
        !o.status.success(),
        "right password accepted right after 6 failures (no lockout):\n{}",
        describe(&o)
    );
    s.cli_ok(&["user", "unlock", "alice"]);
    s.sftp_ok("alice", Auth::Password(PASSWORD), "pwd\n");

    let o = s.cli(&["audit", "export", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout_of(&o).to_lowercase();
    let failures = out
        .lines()
        .filter(|l| {
            l.contains("alice")
                && ["fail", "refus", "denied", "reject", "invalid", "wrong"]
                    .iter()
                    .any(|w| l.contains(w))
        })
        .count();
    assert!(
        failures >= 5,
        "expected at least 5 failed-login records for alice, found {failures}:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("alice") && l.contains("lock") && !l.contains("unlock")),
        "no lockout record for alice:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("unlock")),
        "no unlock record:\n{out}"
    );
}
