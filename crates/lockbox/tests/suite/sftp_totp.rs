//! The real OpenSSH `sftp` client against an organization that requires a second factor on SFTP
//! password logins (`lockbox org set-policy ORG --sftp-password-totp on`): the password alone is not
//! enough, the code typed at the keyboard-interactive prompt finishes the login, wrong and replayed
//! codes are refused and counted, keys and other organizations are unaffected, one connection gets
//! at most three codes, and the audit log tells which door and which factors were used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::web::{audit_records, Person, Web};
use common::*;

fn failed_logins(s: &TestServer, user: &str) -> i64 {
    let users: serde_json::Value =
        serde_json::from_str(&s.cli_ok(&["user", "list", "--json"])).unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user)
        .unwrap_or_else(|| panic!("{user} not listed: {users}"))["failed_logins"]
        .as_i64()
        .unwrap()
}

fn assert_refused(s: &TestServer, o: &std::process::Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what}: login accepted\n{}\n--- server log ---\n{}",
        describe(o),
        s.log()
    );
    assert!(
        !stdout_of(o).contains("Remote working directory"),
        "{what}: a session was opened:\n{}",
        describe(o)
    );
}

/// A code that is not `right` (nor, with overwhelming likelihood, any other step's code).
fn wrong_code(right: &str) -> String {
    format!(
        "{:06}",
        (right.parse::<u32>().unwrap() + 500_001) % 1_000_000
    )
}

#[test]
fn sftp_password_login_needs_the_totp_code_under_the_org_policy() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    s.create_org("globex");
    s.create_user("globex", "bob", "transfer", PASSWORD);

    let out = s.cli_ok(&["org", "set-policy", "acme", "--sftp-password-totp", "on"]);
    assert!(out.contains("on"), "set-policy said: {out}");
    let orgs: serde_json::Value =
        serde_json::from_str(&s.cli_ok(&["org", "list", "--json"])).unwrap();
    let policy = |name: &str| {
        orgs.as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()["sftp_password_totp"]
            .clone()
    };
    assert_eq!(policy("acme"), true, "{orgs}");
    assert_eq!(policy("globex"), false, "{orgs}");
    let table = s.cli_ok(&["org", "list"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("acme") && l.trim_end().ends_with("on")),
        "org list does not show the policy:\n{table}"
    );

    // Not enrolled yet: refused over SFTP, with a reason telling what to do, not counted.
    let o = s.sftp("alice", Auth::Password(PASSWORD), "pwd\n");
    assert_refused(&s, &o, "password without an enrolled authenticator");
    assert_eq!(failed_logins(&s, "alice"), 0);
    assert!(
        audit_records(&s)
            .iter()
            .any(|r| r["action"] == "login_failed"
                && r["door"] == "sftp"
                && r["actor"] == "alice"
                && r["detail"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("sign in to the web UI")),
        "the refusal of an unenrolled user is not audited with its reason"
    );

    // alice enrols through the browser flow.
    let web = Web::new(&s);
    let alice = Person::new("alice", PASSWORD);
    web.sign_in(&alice);

    // The password alone is not enough: a client that will not do keyboard-interactive is stuck
    // after the partial success.
    let o = sftp_batch_opts(
        s.port,
        "alice",
        Auth::Password(PASSWORD),
        "pwd\n",
        &["-o", "KbdInteractiveAuthentication=no"],
        CHILD_TIMEOUT,
    );
    assert_refused(&s, &o, "password without keyboard-interactive");
    assert_eq!(failed_logins(&s, "alice"), 0, "no code was tried");

    // Answering the code prompt with the password is a wrong code: refused and counted.
    let o = s.sftp("alice", Auth::Password(PASSWORD), "pwd\n");
    assert_refused(&s, &o, "the password typed at the code prompt");
    assert_eq!(failed_logins(&s, "alice"), 1);

    // A wrong code: refused and counted.
    let code = alice.next_code();
    let o = s.sftp(
        "alice",
        Auth::PasswordAndCode(PASSWORD, &wrong_code(&code)),
        "pwd\n",
    );
    assert_refused(&s, &o, "a wrong code");
    assert_eq!(failed_logins(&s, "alice"), 2);

    // The right code (an unused step, the next one after the browser's) logs in; the counter clears.
    let out = s.sftp_ok("alice", Auth::PasswordAndCode(PASSWORD, &code), "pwd\n");
    assert!(
        out.contains("Remote working directory: /home"),
        "password + code: {out}"
    );
    assert_eq!(failed_logins(&s, "alice"), 0);

    // The same code again is a replay.
    let o = s.sftp("alice", Auth::PasswordAndCode(PASSWORD, &code), "pwd\n");
    assert_refused(&s, &o, "a replayed code");
    assert_eq!(failed_logins(&s, "alice"), 1);

    // A wrong password never reaches the code prompt (and is just a wrong password).
    let o = s.sftp(
        "alice",
        Auth::PasswordAndCode("not-the-password-at-all", &alice.current_code()),
        "pwd\n",
    );
    assert_refused(&s, &o, "a wrong password with a code");
    assert_eq!(failed_logins(&s, "alice"), 2);

    // A key is already a strong factor: no code asked.
    let out = s.sftp_ok("alice", Auth::Key(&key), "pwd\n");
    assert!(out.contains("/home"), "key login: {out}");
    // Another organization keeps single-factor SFTP passwords.
    let out = s.sftp_ok("bob", Auth::Password(PASSWORD), "pwd\n");
    assert!(out.contains("/home"), "bob: {out}");

    let records = audit_records(&s);
    let alice_sftp = |action: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|r| r["action"] == action && r["actor"] == "alice" && r["door"] == "sftp")
            .collect()
    };
    assert!(
        alice_sftp("login_succeeded")
            .iter()
            .any(|r| r["detail"]["method"] == "password+totp"),
        "no sftp login_succeeded with method password+totp"
    );
    assert!(
        !alice_sftp("login_succeeded")
            .iter()
            .any(|r| r["detail"]["method"] == "password"),
        "an sftp password login of alice succeeded without the second factor"
    );
    let wrong_codes = alice_sftp("login_failed")
        .into_iter()
        .filter(|r| {
            r["detail"]["method"] == "totp"
                && r["detail"]["reason"] == "wrong or reused second-factor code"
        })
        .count();
    assert_eq!(
        wrong_codes, 3,
        "password-as-code, wrong code and replay are each one audited wrong code"
    );
    assert!(!alice_sftp("second_factor_pending").is_empty());
    assert!(records.iter().any(|r| r["action"] == "org_policy_set"
        && r["org"] == "acme"
        && r["detail"]["sftp_password_totp"] == true));

    // Policy off again: the password alone works.
    s.cli_ok(&["org", "set-policy", "acme", "--sftp-password-totp", "off"]);
    let out = s.sftp_ok("alice", Auth::Password(PASSWORD), "pwd\n");
    assert!(out.contains("/home"), "policy off: {out}");
    s.cli_ok(&["audit", "verify"]);
}

#[test]
fn one_connection_gets_at_most_three_codes() {
    let s = TestServer::start();
    s.setup_acme_alice();
    s.cli_ok(&["org", "set-policy", "acme", "--sftp-password-totp", "on"]);
    Web::new(&s).sign_in(&Person::new("alice", PASSWORD));
    let before = audit_records(&s).len();

    // A client that keeps answering the password right and the code wrong, allowed by its own
    // settings to try ten times: the server stops asking for codes after three on one connection.
    let d = tempfile::tempdir().unwrap();
    let askpass = d.path().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncase \"$1\" in\n*erification*) echo 12345x ;;\n*) echo '{PASSWORD}' ;;\nesac\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let batch = d.path().join("batch");
    std::fs::write(&batch, "pwd\n").unwrap();
    let mut cmd = tool_command(&SFTP);
    cmd.env_remove("SSH_AUTH_SOCK")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=10",
            "-b",
        ])
        .arg(&batch)
        .arg("-P")
        .arg(s.port.to_string())
        .arg("alice@127.0.0.1");
    let o = run_with_timeout(&mut cmd, None, CHILD_TIMEOUT);
    assert_refused(&s, &o, "ten rounds of password + wrong code");
    let records = audit_records(&s);
    let wrong_codes = records[before..]
        .iter()
        .filter(|r| {
            r["action"] == "login_failed" && r["door"] == "sftp" && r["detail"]["method"] == "totp"
        })
        .count();
    assert_eq!(wrong_codes, 3, "codes checked on one connection");
    // Each wrong code counted toward the lockout (5), which three did not reach.
    assert_eq!(failed_logins(&s, "alice"), 3);
    assert!(!records[before..]
        .iter()
        .any(|r| r["action"] == "login_succeeded" || r["action"] == "account_locked"));
}
