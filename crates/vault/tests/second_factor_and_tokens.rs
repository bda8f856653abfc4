//! The HTTPS door's security core through the public vault API: TOTP enrolment and login, replay
//! and lockout, recovery codes, API tokens and their scopes, admin identity, audit search, active
//! sessions and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use lockbox_types::{Door, Role, VirtualPath};
use lockbox_vault::{
    base32_decode, totp_code, AdminActor, AuditQuery, Credential, ErrorKind, LoginAttempt,
    PendingLogin, Principal, Refusal, TokenScopes, Vault, Verdict,
};

fn vault() -> (tempfile::TempDir, Vault) {
    vault_with(
        &["acme"],
        &[
            ("acme", "alice", Role::Transfer),
            ("acme", "root", Role::Admin),
        ],
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn attempt<'a>(user: &'a str, credential: Credential<'a>, door: Door) -> LoginAttempt<'a> {
    LoginAttempt {
        user,
        credential,
        door,
        source: ip("192.0.2.10"),
    }
}

fn password_step(vault: &Vault, user: &str) -> PendingLogin {
    match vault.authenticate(&attempt(user, Credential::Password(PASSWORD), Door::Https)) {
        Verdict::SecondFactorRequired(p) => p,
        Verdict::Accepted(_) => panic!("HTTPS password login skipped the second factor"),
        Verdict::Refused(r) => panic!("password refused: {r:?}"),
    }
}

/// Enrols `user` and returns the principal, the TOTP secret and the recovery codes.
fn enrol(vault: &Vault, user: &str) -> (Principal, Vec<u8>, Vec<String>) {
    let pending = password_step(vault, user);
    assert!(!pending.enrolled());
    let e = vault.totp_begin_enrollment(&pending).unwrap();
    assert!(e
        .otpauth_uri
        .starts_with(&format!("otpauth://totp/Lockbox:{user}?secret=")));
    assert!(e
        .otpauth_uri
        .contains("&issuer=Lockbox&algorithm=SHA1&digits=6&period=30"));
    let secret = base32_decode(&e.secret_base32).unwrap();
    assert_eq!(secret.len(), 20);
    let (v, codes) = vault
        .totp_confirm_enrollment(&pending, &totp_code(&secret, now()))
        .unwrap();
    (accepted(v), secret, codes)
}

#[test]
fn totp_enrolment_login_replay_and_recovery() {
    let (_d, vault) = vault();

    // SFTP keeps single-factor passwords.
    accepted(vault.authenticate(&attempt(
        "alice",
        Credential::Password(PASSWORD),
        Door::Sftp,
    )));

    let pending = password_step(&vault, "alice");
    assert_eq!(pending.user_name(), "alice");
    assert_eq!(pending.org_name(), "acme");
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, "123456")),
        Refusal::SecondFactorNotEnrolled
    );

    // A wrong code during enrolment is a failed login; a right one finishes it.
    let e = vault.totp_begin_enrollment(&pending).unwrap();
    let secret = base32_decode(&e.secret_base32).unwrap();
    let wrong = format!(
        "{:06}",
        (totp_code(&secret, now()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let (v, codes) = vault.totp_confirm_enrollment(&pending, &wrong).unwrap();
    assert_eq!(refusal(v), Refusal::SecondFactorInvalid);
    assert!(codes.is_empty());
    assert_eq!(vault.user("alice").unwrap().failed_logins, 1);
    // Restarting enrolment replaces the inactive secret.
    let e = vault.totp_begin_enrollment(&pending).unwrap();
    let secret2 = base32_decode(&e.secret_base32).unwrap();
    assert_ne!(secret, secret2);
    let enrol_code = totp_code(&secret2, now());
    let (v, codes) = vault
        .totp_confirm_enrollment(&pending, &enrol_code)
        .unwrap();
    let alice = accepted(v);
    assert_eq!(alice.scopes(), None);
    assert_eq!(alice.door(), Door::Https);
    assert_eq!(codes.len(), 10);
    assert!(codes
        .iter()
        .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
    assert_eq!(vault.user("alice").unwrap().failed_logins, 0);
    assert_eq!(vault.recovery_codes_left(&alice).unwrap(), 10);
    let err = vault
        .totp_begin_enrollment(&password_step(&vault, "alice"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // The code used to enrol cannot be replayed; the next step's code works once.
    let pending = password_step(&vault, "alice");
    assert!(pending.enrolled());
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &enrol_code)),
        Refusal::SecondFactorInvalid
    );
    let next = totp_code(&secret2, now() + 30);
    accepted(vault.complete_second_factor(&pending, &next));
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &next)),
        Refusal::SecondFactorInvalid
    );

    // Recovery codes: single use, case and dash insensitive.
    let code = codes[3].to_uppercase().replace('-', "");
    accepted(vault.complete_second_factor(&pending, &code));
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &codes[3])),
        Refusal::SecondFactorInvalid
    );
    assert_eq!(vault.recovery_codes_left(&alice).unwrap(), 9);
    let fresh = vault.regenerate_recovery_codes(&alice).unwrap();
    assert_eq!(vault.recovery_codes_left(&alice).unwrap(), 10);
    // That pending login has had its three wrong codes; the next one is refused unevaluated.
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &fresh[0])),
        Refusal::SecondFactorAttemptsExhausted
    );
    let mut pending = password_step(&vault, "alice");
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &codes[4])),
        Refusal::SecondFactorInvalid,
        "old codes die with regeneration"
    );
    accepted(vault.complete_second_factor(&pending, &fresh[0]));

    // Wrong codes share the password lockout (three per pending login, five per account).
    for i in 0..5 {
        if i == 2 {
            pending = password_step(&vault, "alice");
        }
        assert_eq!(
            refusal(vault.complete_second_factor(&pending, "000000x")),
            Refusal::SecondFactorInvalid
        );
    }
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &fresh[1])),
        Refusal::AccountLocked
    );
    vault.unlock_user(&AdminActor::cli(), "alice").unwrap();

    // An admin reset means enrolling again.
    vault.reset_totp(&AdminActor::cli(), "alice").unwrap();
    let pending = password_step(&vault, "alice");
    assert!(!pending.enrolled());
    assert_eq!(
        refusal(vault.complete_second_factor(&pending, &fresh[1])),
        Refusal::SecondFactorNotEnrolled
    );

    let actions: Vec<String> = vault
        .audit_search(
            &AdminActor::cli(),
            &AuditQuery {
                user: Some("alice".into()),
                limit: 500,
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    for needed in [
        "second_factor_pending",
        "totp_enrolled",
        "recovery_codes_regenerated",
        "account_locked",
        "login_failed",
        "login_succeeded",
    ] {
        assert!(actions.iter().any(|a| a == needed), "{needed} not audited");
    }
    assert!(vault.audit_verify().is_ok());
}

#[test]
fn api_tokens_scopes_and_admin() {
    let (_d, vault) = vault();
    let (alice, _, _) = enrol(&vault, "alice");
    let (root, _, _) = enrol(&vault, "root");
    let year = Duration::from_secs(365 * 24 * 3600);
    let read = TokenScopes::parse("read").unwrap();

    // Creation rules.
    for (name, scopes, ttl) in [
        ("", read, year),
        ("x\ny", read, year),
        ("ok", read, year + Duration::from_secs(1)),
        ("ok", TokenScopes::parse("").unwrap(), year),
    ] {
        let e = vault
            .create_api_token(&alice, name, scopes, ttl)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name:?}");
    }
    let e = vault
        .create_api_token(&alice, "ops", TokenScopes::parse("admin").unwrap(), year)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);

    let (info, token) = vault
        .create_api_token(&alice, "reports", read, year)
        .unwrap();
    assert_eq!((info.user.as_str(), info.org.as_str()), ("alice", "acme"));
    let rest = token.strip_prefix("lbx_").unwrap();
    assert_eq!(rest.split_once('_').unwrap().0, info.id);
    assert_eq!(rest.len(), 16 + 1 + 43);

    // A token login carries its scopes, works over HTTPS only, and is enforced per operation.
    let v = vault.authenticate(&attempt("", Credential::ApiToken(&token), Door::Sftp));
    assert_eq!(refusal(v), Refusal::TokenWrongDoor);
    let p = accepted(vault.authenticate(&attempt("", Credential::ApiToken(&token), Door::Https)));
    assert_eq!(p.user_name(), "alice");
    assert_eq!(p.scopes(), Some(read));
    let e = vault.create_api_token(&p, "child", read, year).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::PermissionDenied,
        "tokens cannot mint tokens"
    );
    let session = vault.open_session(p).unwrap();
    let home = VirtualPath::parse(&VirtualPath::root(), "/home").unwrap();
    let dir = VirtualPath::parse(&VirtualPath::root(), "/home/sub").unwrap();
    session.list_dir(&home).unwrap();
    let e = session.mkdir(&dir).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(
        e.to_string().contains("API token lacks the write scope"),
        "{e}"
    );
    assert!(session
        .open_write(&dir, Default::default())
        .is_err_and(|e| e.kind() == ErrorKind::PermissionDenied));
    let (_, wtoken) = vault
        .create_api_token(&alice, "drop", TokenScopes::parse("write").unwrap(), year)
        .unwrap();
    let wsession = vault
        .open_session(accepted(vault.authenticate(&attempt(
            "",
            Credential::ApiToken(&wtoken),
            Door::Https,
        ))))
        .unwrap();
    wsession.mkdir(&dir).unwrap();
    assert!(wsession
        .list_dir(&home)
        .is_err_and(|e| e.to_string().contains("API token lacks the read scope")));

    // Malformed, wrong and revoked tokens are refused.
    let wrong_secret = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('A') { 'B' } else { 'A' }
    );
    for bad in ["lbx_nothing", "", &wrong_secret] {
        let v = vault.authenticate(&attempt("", Credential::ApiToken(bad), Door::Https));
        assert_eq!(refusal(v), Refusal::TokenInvalid, "{bad}");
    }
    assert_eq!(vault.list_api_tokens(&alice).unwrap().len(), 2);
    vault.revoke_api_token(&alice, &info.id).unwrap();
    let v = vault.authenticate(&attempt("", Credential::ApiToken(&token), Door::Https));
    assert_eq!(refusal(v), Refusal::TokenRevoked);
    assert!(vault
        .revoke_api_token(&root, &info.id)
        .is_err_and(|e| e.kind() == ErrorKind::NotFound));

    // Admin identity: admin role, and for tokens the admin scope.
    assert!(vault
        .admin_actor(&alice)
        .is_err_and(|e| e.kind() == ErrorKind::PermissionDenied));
    let actor = vault.admin_actor(&root).unwrap();
    assert_eq!((actor.name.as_str(), actor.door), ("root", Door::Https));
    let (_, admin_read) = vault.create_api_token(&root, "ro", read, year).unwrap();
    let (_, admin_full) = vault
        .create_api_token(
            &root,
            "ops",
            TokenScopes::parse("read,admin").unwrap(),
            year,
        )
        .unwrap();
    let ro =
        accepted(vault.authenticate(&attempt("", Credential::ApiToken(&admin_read), Door::Https)));
    assert!(vault.admin_actor(&ro).is_err());
    let full =
        accepted(vault.authenticate(&attempt("", Credential::ApiToken(&admin_full), Door::Https)));
    let actor = vault.admin_actor(&full).unwrap();
    // Administrators manage but never reach files, whichever door admitted them: the core refuses
    // every file operation of their sessions.
    let admin_session = vault.open_session(full.clone()).unwrap();
    for path in ["/", "/home", "/home/x.bin"] {
        let p =
            lockbox_types::VirtualPath::parse(&lockbox_types::VirtualPath::root(), path).unwrap();
        assert!(
            admin_session
                .list_dir(&p)
                .is_err_and(|e| e.kind() == ErrorKind::PermissionDenied),
            "{path}"
        );
    }
    let p = lockbox_types::VirtualPath::parse(&lockbox_types::VirtualPath::root(), "/home/x.bin")
        .unwrap();
    assert!(admin_session
        .open_write(&p, Default::default())
        .is_err_and(|e| e.kind() == ErrorKind::PermissionDenied));
    admin_session.end(serde_json::json!({}));
    let all = vault.admin_list_api_tokens(&actor, None).unwrap();
    assert_eq!(all.len(), 4);
    let alices = vault.admin_list_api_tokens(&actor, Some("alice")).unwrap();
    assert_eq!(alices.len(), 2);
    assert!(alices.iter().any(|t| t.revoked));
    let live = alices.iter().find(|t| !t.revoked).unwrap();
    assert!(live.last_used.is_some());
    vault.admin_revoke_api_token(&actor, &live.id).unwrap();
    let v = vault.authenticate(&attempt("", Credential::ApiToken(&wtoken), Door::Https));
    assert_eq!(refusal(v), Refusal::TokenRevoked);

    // Expiry.
    let (_, short) = vault
        .create_api_token(&alice, "short", read, Duration::from_secs(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let v = vault.authenticate(&attempt("", Credential::ApiToken(&short), Door::Https));
    assert_eq!(refusal(v), Refusal::TokenExpired);

    let revoked = vault
        .audit_search(
            &actor,
            &AuditQuery {
                action: Some("api_token_revoked".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(revoked.len(), 2);
    assert_eq!(
        revoked[0].user, "root",
        "newest first: the admin's revocation"
    );
    assert_eq!(revoked[0].detail["owner"], "alice");
}

#[test]
fn malformed_tokens_throttle_the_source() {
    let (_d, vault) = vault();
    let limit = lockbox_vault::AuthPolicy::default().source_failure_limit;
    for _ in 0..limit {
        vault.authenticate(&attempt(
            "",
            Credential::ApiToken("lbx_garbage"),
            Door::Https,
        ));
    }
    let v = vault.authenticate(&attempt(
        "alice",
        Credential::Password(PASSWORD),
        Door::Https,
    ));
    assert_eq!(refusal(v), Refusal::SourceThrottled);
}

#[test]
fn audit_search_filters_sessions_and_metrics() {
    let (_d, vault) = vault();
    let cli = AdminActor::cli();
    let q = |user: Option<&str>, action: Option<&str>| AuditQuery {
        user: user.map(Into::into),
        action: action.map(Into::into),
        org: None,
        from: None,
        to: None,
        before_seq: None,
        limit: 1000,
    };
    for hostile in ["' OR 1=1 --", "alice' --", "%"] {
        assert!(vault
            .audit_search(&cli, &q(Some(hostile), None))
            .unwrap()
            .is_empty());
        assert!(vault
            .audit_search(&cli, &q(None, Some(hostile)))
            .unwrap()
            .is_empty());
    }
    let created = vault
        .audit_search(&cli, &q(None, Some("user_created")))
        .unwrap();
    assert_eq!(created.len(), 2);
    assert!(created[0].seq > created[1].seq);
    assert!(created[0].time > 1_600_000_000);
    let page = vault
        .audit_search(
            &cli,
            &AuditQuery {
                before_seq: Some(created[0].seq),
                limit: 1,
                ..q(None, None)
            },
        )
        .unwrap();
    assert_eq!(page.len(), 1);
    assert!(page[0].seq < created[0].seq);

    // Sessions are listed while open, removed by end (once) or drop.
    let p = accepted(vault.authenticate(&attempt(
        "alice",
        Credential::Password(PASSWORD),
        Door::Sftp,
    )));
    let s1 = vault.open_session(p.clone()).unwrap();
    let s2 = vault.open_session(p).unwrap();
    let active = vault.active_sessions();
    assert_eq!(active.len(), 2);
    assert!(active
        .iter()
        .all(|s| s.user == "alice" && s.door == Door::Sftp && s.source == "192.0.2.10"));
    assert_eq!(vault.metrics().active_sessions_sftp, 2);
    s1.end(serde_json::json!({}));
    s1.end(serde_json::json!({}));
    assert_eq!(vault.active_sessions().len(), 1);
    let ended = vault
        .audit_search(&cli, &q(Some("alice"), Some("session_ended")))
        .unwrap();
    assert_eq!(ended.len(), 1, "end is idempotent");
    drop(s2);
    assert!(vault.active_sessions().is_empty());

    // Transfers and verdicts are counted.
    let p = accepted(vault.authenticate(&attempt(
        "alice",
        Credential::Password(PASSWORD),
        Door::Sftp,
    )));
    refusal(vault.authenticate(&attempt(
        "alice",
        Credential::Password("nope-nope-nope"),
        Door::Sftp,
    )));
    let s = vault.open_session(p).unwrap();
    let f = VirtualPath::parse(&VirtualPath::root(), "/home/f.txt").unwrap();
    let mut w = s.open_write(&f, Default::default()).unwrap();
    w.write_at(0, bytes::Bytes::from_static(b"hello world"))
        .unwrap();
    w.commit().unwrap();
    let r = s.open_read(&f).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), 11);
    r.close().unwrap();
    r.close().unwrap();
    let m = vault.metrics();
    assert_eq!(m.logins_ok_sftp, 2);
    assert_eq!(m.auth_failures_sftp, 1);
    assert_eq!((m.uploads_committed, m.bytes_uploaded), (1, 11));
    assert_eq!((m.downloads, m.bytes_downloaded), (1, 11));
    let text = m.render_prometheus();
    assert!(
        text.contains("lockbox_auth_failures_total{door=\"sftp\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("lockbox_active_sessions{door=\"sftp\"} 1\n"),
        "{text}"
    );
}
