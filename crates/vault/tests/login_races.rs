//! Login limits under parallel attack, through the public vault API with real threads: the source
//! throttle and the second-factor limits are each one atomic check-and-count, so however many
//! attempts arrive at once no more are evaluated than the limits allow, a throttled source costs
//! no password hash, and one source cannot hold every hashing slot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Barrier};

use common::*;
use lockbox_types::{Door, Role};
use lockbox_vault::{
    base32_decode, totp_code, AuthPolicy, Credential, LoginAttempt, PendingLogin, Refusal, Vault,
    Verdict,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn login(vault: &Vault, user: &str, password: &str, door: Door, source: &str) -> Verdict {
    vault.authenticate(&LoginAttempt {
        user,
        credential: Credential::Password(password),
        door,
        source: ip(source),
    })
}

fn outcome(v: &Verdict) -> String {
    match v {
        Verdict::Accepted(_) => "accepted".into(),
        Verdict::SecondFactorRequired(_) => "second factor".into(),
        Verdict::Refused(r) => format!("{r:?}"),
    }
}

/// Runs `n` calls of `f` at once (all released by one barrier) and tallies their outcomes.
fn in_parallel(
    n: usize,
    f: impl Fn(usize) -> Verdict + Send + Sync + 'static,
) -> HashMap<String, usize> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                outcome(&f(i))
            })
        })
        .collect();
    let mut tally = HashMap::new();
    for t in threads {
        *tally.entry(t.join().unwrap()).or_default() += 1;
    }
    tally
}

fn count(tally: &HashMap<String, usize>, what: &str) -> usize {
    tally.get(what).copied().unwrap_or(0)
}

#[test]
fn a_throttled_source_is_refused_without_hashing() {
    let (_d, vault) = vault_with(&["acme"], &[("acme", "alice", Role::Transfer)]);
    let limit = AuthPolicy::default().source_failure_limit;
    for _ in 0..limit {
        login(&vault, "nobody", "guess", Door::Sftp, "192.0.2.1");
    }
    let before = vault.metrics().password_verifications;
    for _ in 0..30 {
        let v = login(&vault, "alice", PASSWORD, Door::Sftp, "192.0.2.1");
        assert!(matches!(v, Verdict::Refused(Refusal::SourceThrottled)));
    }
    assert_eq!(
        vault.metrics().password_verifications,
        before,
        "a blocked source must not cost a password hash"
    );
    let wait = vault.source_retry_after(ip("192.0.2.1"));
    assert!(wait.as_secs() > 60, "retry after {wait:?}");
    // Another address is not affected.
    accepted(login(&vault, "alice", PASSWORD, Door::Sftp, "192.0.2.2"));
}

#[test]
fn parallel_bad_logins_from_one_source_get_at_most_the_failure_budget_of_hashes() {
    let (_d, vault) = vault_with(&["acme"], &[("acme", "alice", Role::Transfer)]);
    let vault = Arc::new(vault);
    let limit = AuthPolicy::default().source_failure_limit as usize;
    let v = vault.clone();
    let tally = in_parallel(48, move |i| {
        login(
            &v,
            &format!("user{i}"),
            "wrong guess",
            Door::Sftp,
            "192.0.2.7",
        )
    });
    let hashed = vault.metrics().password_verifications as usize;
    assert!(
        hashed <= limit,
        "{hashed} hashes for a source allowed {limit} failures: {tally:?}"
    );
    assert!(count(&tally, "UnknownUser") <= limit, "{tally:?}");
    assert_eq!(tally.values().sum::<usize>(), 48);
    assert!(
        count(&tally, "SourceBusy") + count(&tally, "SourceThrottled") >= 48 - limit,
        "the rest are refused cheaply: {tally:?}"
    );
    // The flood never blocked anyone else.
    accepted(login(&vault, "alice", PASSWORD, Door::Sftp, "192.0.2.8"));
}

/// Enrols alice and returns her TOTP secret.
fn enrol_alice(vault: &Vault) -> Vec<u8> {
    let pending = match login(vault, "alice", PASSWORD, Door::Https, "198.51.100.1") {
        Verdict::SecondFactorRequired(p) => p,
        other => panic!("password step: {}", outcome(&other)),
    };
    let e = vault.totp_begin_enrollment(&pending).unwrap();
    let secret = base32_decode(&e.secret_base32).unwrap();
    let (v, _) = vault
        .totp_confirm_enrollment(&pending, &totp_code(&secret, now()))
        .unwrap();
    accepted(v);
    secret
}

fn password_step(vault: &Vault, source: &str) -> PendingLogin {
    pending(login(vault, "alice", PASSWORD, Door::Https, source))
}

/// A six-digit code that is none of the codes the vault accepts right now.
fn wrong_code(secret: &[u8]) -> String {
    let t = now();
    let valid: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|&s| totp_code(secret, s))
        .collect();
    (0..1000)
        .map(|i| format!("{:06}", 123_456 + i))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[test]
fn fifty_parallel_codes_on_one_pending_login_get_three_evaluations() {
    let (_d, vault) = vault_with(&["acme"], &[("acme", "alice", Role::Transfer)]);
    let secret = enrol_alice(&vault);
    let vault = Arc::new(vault);
    let pending = Arc::new(password_step(&vault, "198.51.100.2"));
    let code = wrong_code(&secret);
    let (v, p) = (vault.clone(), pending.clone());
    let tally = in_parallel(50, move |_| v.complete_second_factor(&p, &code));
    assert!(
        count(&tally, "SecondFactorInvalid") <= 3,
        "more codes evaluated than one pending login allows: {tally:?}"
    );
    assert!(pending.codes_exhausted(), "{tally:?}");
    assert_eq!(count(&tally, "accepted"), 0, "{tally:?}");
    // The pending login is spent: even the right code is refused now.
    let right = totp_code(&secret, now());
    let v = vault.complete_second_factor(&pending, &right);
    assert!(
        matches!(v, Verdict::Refused(_)),
        "a spent pending login accepted a code"
    );
}

#[test]
fn fifty_parallel_codes_across_pending_logins_get_the_lockout_threshold_of_evaluations() {
    let (_d, vault) = vault_with(&["acme"], &[("acme", "alice", Role::Transfer)]);
    let secret = enrol_alice(&vault);
    let vault = Arc::new(vault);
    let threshold = AuthPolicy::default().lockout_threshold as usize;
    // Ten pending logins from ten addresses (each its own source budget), five codes on each.
    let pendings: Arc<Vec<PendingLogin>> = Arc::new(
        (0..10)
            .map(|i| password_step(&vault, &format!("198.51.100.{}", 10 + i)))
            .collect(),
    );
    let code = wrong_code(&secret);
    let (v, p) = (vault.clone(), pendings.clone());
    let tally = in_parallel(50, move |i| v.complete_second_factor(&p[i % 10], &code));
    assert!(
        count(&tally, "SecondFactorInvalid") <= threshold,
        "more codes evaluated than the account lockout allows: {tally:?}"
    );
    assert_eq!(count(&tally, "accepted"), 0, "{tally:?}");
    assert_eq!(
        count(&tally, "AccountLocked") + count(&tally, "SecondFactorAttemptsExhausted"),
        50 - count(&tally, "SecondFactorInvalid"),
        "every code not evaluated was refused by a limit: {tally:?}"
    );
    // The account is locked now: a fresh password step is refused too.
    let v = login(&vault, "alice", PASSWORD, Door::Https, "198.51.100.99");
    assert!(
        matches!(v, Verdict::Refused(Refusal::AccountLocked)),
        "{}",
        outcome(&v)
    );
}
