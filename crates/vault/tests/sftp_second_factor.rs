//! The per-organization policy "SFTP password logins need a second factor", through the public
//! vault API: the verdict on the SFTP door, completing it with a TOTP or recovery code, refusals
//! (not enrolled, wrong code, admin), key logins untouched, and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::IpAddr;

use common::*;
use lockbox_types::{Door, Role};
use lockbox_vault::{
    base32_decode, totp_code, AdminActor, AuditQuery, AuditRecordView, Credential, LoginAttempt,
    Refusal, Vault, Verdict,
};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

fn vault() -> (tempfile::TempDir, Vault) {
    vault_with(
        &["acme", "globex"],
        &[
            ("acme", "alice", Role::Transfer),
            ("acme", "carol", Role::Transfer),
            ("acme", "root", Role::Admin),
            ("globex", "bob", Role::Transfer),
        ],
    )
}

fn login(vault: &Vault, user: &str, credential: Credential<'_>, door: Door) -> Verdict {
    vault.authenticate(&LoginAttempt {
        user,
        credential,
        door,
        source: "192.0.2.20".parse::<IpAddr>().unwrap(),
    })
}

fn sftp_password(vault: &Vault, user: &str) -> Verdict {
    login(vault, user, Credential::Password(PASSWORD), Door::Sftp)
}

/// Enrols `user` through the HTTPS flow; returns the TOTP secret, the step used and recovery codes.
fn enrol(vault: &Vault, user: &str) -> (Vec<u8>, u64, Vec<String>) {
    let p = pending(login(
        vault,
        user,
        Credential::Password(PASSWORD),
        Door::Https,
    ));
    let e = vault.totp_begin_enrollment(&p).unwrap();
    let secret = base32_decode(&e.secret_base32).unwrap();
    let t = now();
    let (v, codes) = vault
        .totp_confirm_enrollment(&p, &totp_code(&secret, t))
        .unwrap();
    accepted(v);
    (secret, t / 30, codes)
}

fn records(vault: &Vault, user: &str) -> Vec<AuditRecordView> {
    vault
        .audit_search(
            &AdminActor::cli(),
            &AuditQuery {
                user: Some(user.into()),
                limit: 500,
                ..Default::default()
            },
        )
        .unwrap()
}

#[test]
fn sftp_password_needs_a_code_only_under_the_policy() {
    let (_d, vault) = vault();
    let cli = AdminActor::cli();
    vault.add_key(&cli, "alice", KEY).unwrap();

    // Off by default: a password alone is enough over SFTP.
    assert!(vault
        .list_orgs()
        .unwrap()
        .iter()
        .all(|o| !o.sftp_password_totp));
    accepted(sftp_password(&vault, "alice"));

    vault
        .set_org_sftp_password_totp(&cli, "acme", true)
        .unwrap();
    assert!(vault.org("acme").unwrap().sftp_password_totp);
    assert!(!vault.org("globex").unwrap().sftp_password_totp);
    assert!(vault
        .set_org_sftp_password_totp(&cli, "nosuchorg", true)
        .is_err());

    // Another organization is unaffected.
    accepted(sftp_password(&vault, "bob"));

    // Not enrolled: refused, with a reason that says what to do, and not counted as a guess.
    assert_eq!(
        refusal(sftp_password(&vault, "alice")),
        Refusal::SecondFactorSetupNeeded
    );
    assert_eq!(vault.user("alice").unwrap().failed_logins, 0);
    assert!(records(&vault, "alice")
        .iter()
        .any(|r| r.action == "login_failed"
            && r.door == "sftp"
            && r.detail["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("sign in to the web UI")));

    let (secret, mut step, codes) = enrol(&vault, "alice");

    // A wrong password under the policy is still just a wrong password.
    assert_eq!(
        refusal(login(
            &vault,
            "alice",
            Credential::Password("not-the-password-at-all"),
            Door::Sftp
        )),
        Refusal::BadCredential
    );
    assert_eq!(vault.user("alice").unwrap().failed_logins, 1);

    // The right password now asks for the code.
    let p = pending(sftp_password(&vault, "alice"));
    assert!(p.enrolled());
    assert_eq!(p.user_name(), "alice");

    // A wrong code is refused and counted toward the lockout.
    let right = totp_code(&secret, (step + 1) * 30);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(
        refusal(vault.complete_second_factor(&p, &wrong)),
        Refusal::SecondFactorInvalid
    );
    assert_eq!(vault.user("alice").unwrap().failed_logins, 2);

    // The next step's code finishes the login on the SFTP door, and clears the counter.
    step += 1;
    let principal = accepted(vault.complete_second_factor(&p, &totp_code(&secret, step * 30)));
    assert_eq!(principal.door(), Door::Sftp);
    assert_eq!(principal.user_name(), "alice");
    assert!(principal.scopes().is_none());
    assert_eq!(vault.user("alice").unwrap().failed_logins, 0);
    // The principal opens an SFTP session like any other.
    vault.open_session(principal).unwrap();

    // A code is accepted once.
    let p = pending(sftp_password(&vault, "alice"));
    assert_eq!(
        refusal(vault.complete_second_factor(&p, &totp_code(&secret, step * 30))),
        Refusal::SecondFactorInvalid
    );

    // A recovery code works too.
    let p = pending(sftp_password(&vault, "alice"));
    assert_eq!(
        accepted(vault.complete_second_factor(&p, &codes[0])).door(),
        Door::Sftp
    );

    // A key is already a strong factor: no code asked.
    let key = russh::keys::PublicKey::from_openssh(KEY).unwrap();
    accepted(login(
        &vault,
        "alice",
        Credential::VerifiedPublicKey(&key),
        Door::Sftp,
    ));

    // Admins stay refused on the data door, before any code is asked.
    assert_eq!(
        refusal(sftp_password(&vault, "root")),
        Refusal::AdminOnDataDoor
    );

    // Turned off again: the password alone works.
    vault
        .set_org_sftp_password_totp(&cli, "acme", false)
        .unwrap();
    accepted(sftp_password(&vault, "alice"));

    let recs = records(&vault, "alice");
    assert!(recs.iter().any(|r| r.action == "login_succeeded"
        && r.door == "sftp"
        && r.detail["method"] == "password+totp"));
    assert!(recs.iter().any(|r| r.action == "login_succeeded"
        && r.door == "sftp"
        && r.detail["method"] == "password+recovery_code"));
    assert!(recs.iter().any(|r| r.action == "login_failed"
        && r.door == "sftp"
        && r.detail["method"] == "totp"
        && r.detail["reason"] == Refusal::SecondFactorInvalid.as_str()));
    assert!(recs
        .iter()
        .any(|r| r.action == "second_factor_pending" && r.door == "sftp"));

    let policy: Vec<AuditRecordView> = vault
        .audit_search(
            &cli,
            &AuditQuery {
                action: Some("org_policy_set".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(policy.len(), 2, "{policy:?}");
    assert_eq!(policy[0].detail["sftp_password_totp"], false);
    assert_eq!(policy[1].detail["sftp_password_totp"], true);
    assert!(policy
        .iter()
        .all(|r| r.org == "acme" && r.target == "org:acme"));
    assert!(vault.audit_verify().is_ok());
}

#[test]
fn sftp_pending_login_stays_on_the_sftp_door() {
    let (_d, vault) = vault();
    let cli = AdminActor::cli();
    vault
        .set_org_sftp_password_totp(&cli, "acme", true)
        .unwrap();
    let (secret, step, _) = enrol(&vault, "carol");
    let p = pending(sftp_password(&vault, "carol"));
    // Disabled meanwhile: refused even with the right code.
    vault.set_user_disabled(&cli, "carol", true).unwrap();
    assert_eq!(
        refusal(vault.complete_second_factor(&p, &totp_code(&secret, (step + 1) * 30))),
        Refusal::AccountDisabled
    );
}
