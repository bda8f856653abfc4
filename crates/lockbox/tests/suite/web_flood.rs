//! Floods against the HTTPS door from one address, with everyone else still served: a slow-body
//! connection flood (tests/tools/slow_flood.py, Python's own TLS client), a burst of parallel bad
//! logins, and a throttled source holding a valid API token. Each flood is bounded in count and
//! time; every request of the other clients has a `--max-time`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::web::*;
use common::*;

/// What the issue asks of the door during a flood: another client's answer within this.
const SERVED_WITHIN: Duration = Duration::from_secs(2);
/// The HTTPS door's per-source connection cap (`lockbox_web` `MAX_CONNECTIONS_PER_SOURCE`).
const PER_SOURCE_CAP: u64 = 64;

fn flood_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/slow_flood.py")
}

/// Python 3 runs the flood: its own asyncio TLS client, not ours.
const PYTHON3: Tool = Tool {
    program: "python3",
    what: "Python 3 (runs tests/tools/slow_flood.py)",
    install: "apt-get install python3",
};

fn timed(f: impl FnOnce() -> Resp) -> (Resp, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

#[test]
fn one_address_holding_1100_slow_connections_does_not_shut_the_door() {
    let s = TestServer::start();
    s.setup_acme_alice();
    let web = Web::new(&s);
    let alice = Person::new("alice", PASSWORD);
    web.sign_in(&alice);
    let other = web.with_source("127.0.0.1");

    // 1,100 connections at once from 127.0.0.2 for 20 s, each re-opened when the server drops it.
    let flood = tool_command(&PYTHON3)
        .arg(flood_script())
        .args([
            "127.0.0.1",
            &s.https_port.to_string(),
            "127.0.0.2",
            "1100",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut worst_health = Duration::ZERO;
    let mut worst_login = Duration::ZERO;
    let mut rounds = 0;
    // Give the flood a moment to open its connections, then keep checking until it ends.
    std::thread::sleep(Duration::from_secs(2));
    while started.elapsed() < Duration::from_secs(17) {
        let (h, ht) = timed(|| other.get("/healthz").max_secs(10).send());
        assert_eq!(h.status, 200, "healthz during the flood:\n{}", h.describe());
        let (l, lt) = timed(|| other.password_step("alice", PASSWORD));
        assert_eq!(l.status, 303, "login during the flood:\n{}", l.describe());
        worst_health = worst_health.max(ht);
        worst_login = worst_login.max(lt);
        rounds += 1;
    }
    // A whole sign-in (password and TOTP) as well.
    let (_, signin) = {
        let t = Instant::now();
        let b = other.sign_in(&alice);
        (b, t.elapsed())
    };
    let out = flood.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "flood script failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    eprintln!(
        "flood {stats}; {rounds} rounds; worst healthz {worst_health:?}, worst password step \
         {worst_login:?}, full sign-in {signin:?}"
    );
    assert!(
        worst_health < SERVED_WITHIN && worst_login < SERVED_WITHIN,
        "another address waited {worst_health:?} for /healthz and {worst_login:?} for a login"
    );
    let max_open = stats["max_open"].as_u64().unwrap();
    assert!(
        max_open <= PER_SOURCE_CAP,
        "one address held {max_open} connections"
    );
    assert!(
        stats["closed_by_server"].as_u64().unwrap() > 0,
        "the server never gave up on a stalled body: {stats}"
    );
    assert!(rounds >= 3, "only {rounds} rounds");
    s.cli_ok(&["audit", "verify"]);
}

#[test]
fn parallel_bad_logins_from_one_address_cost_at_most_its_failure_budget() {
    let s = TestServer::start();
    s.setup_acme_alice();
    let web = Web::new(&s);
    let admin = Person::new("root", PASSWORD);
    s.create_user("acme", "root", "admin", PASSWORD);
    let metrics_token = web.token_for(&admin, "admin");
    let verifications = || -> u64 {
        let m = web.get("/metrics").bearer(&metrics_token).send();
        m.text()
            .lines()
            .find_map(|l| l.strip_prefix("lockbox_password_verifications_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no password verification counter:\n{}", m.text()))
    };
    let before = verifications();
    let attacker = web.with_source("127.0.0.4");
    let legit = web.with_source("127.0.0.5");
    let mut legit_times = Vec::new();
    let statuses = std::thread::scope(|sc| {
        let attackers: Vec<_> = (0..48)
            .map(|i| {
                let attacker = &attacker;
                sc.spawn(move || {
                    attacker
                        .password_step(&format!("user{i}"), "wrong password guess")
                        .status
                })
            })
            .collect();
        for _ in 0..3 {
            let (r, t) = timed(|| legit.password_step("alice", PASSWORD));
            assert_eq!(r.status, 303, "legitimate login refused:\n{}", r.describe());
            legit_times.push(t);
        }
        attackers
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<u16>>()
    });
    let hashed = verifications() - before;
    eprintln!("48 parallel bad logins: statuses {statuses:?}; {hashed} password hashes; legitimate logins took {legit_times:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // The source's 20 failures plus the legitimate logins' 3.
    assert!(hashed <= 20 + 3, "{hashed} hashes");
}

#[test]
fn a_throttled_source_is_told_to_wait_even_with_a_valid_token() {
    let s = TestServer::start();
    s.setup_acme_alice();
    let web = Web::new(&s);
    let token = web.token_for(&Person::new("alice", PASSWORD), "read");
    let shared = web.with_source("127.0.0.6");
    let r = shared.get("/api/v1/files?path=/home").bearer(&token).send();
    assert_eq!(
        r.status,
        200,
        "{}\n{:?}",
        r.describe(),
        audit_records(&s)
            .iter()
            .filter(|r| r["action"] == "login_failed")
            .collect::<Vec<_>>()
    );
    // Someone else behind the same address guesses passwords (of a user that does not exist, so
    // no account is locked and only the address is throttled).
    for i in 0..20 {
        shared.password_step("mallory", &format!("wrong-{i}"));
    }
    let r = shared.get("/api/v1/files?path=/home").bearer(&token).send();
    assert_eq!(r.status, 429, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(wait > 60 && wait <= 300, "Retry-After {wait}");
    // The same token from elsewhere still works.
    web.get("/api/v1/files?path=/home")
        .bearer(&token)
        .send()
        .assert_status(200);
    let recs = audit_records(&s);
    assert!(recs
        .iter()
        .any(|r| r["action"] == "source_throttled" && r["source"] == "127.0.0.6"));
}

#[test]
fn fifty_parallel_codes_on_one_sign_in_are_evaluated_at_most_three_times() {
    let s = TestServer::start();
    s.setup_acme_alice();
    let web = Web::new(&s);
    let alice = Person::new("alice", PASSWORD);
    web.sign_in(&alice);
    let secret = alice.secret().unwrap();
    let now = unix_now();
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| lockbox_vault::mfa::totp_code(&secret, *t))
        .collect();
    let wrong = (0..1000)
        .map(|i| format!("{:06}", 654_321 + i))
        .find(|c| !valid.contains(c))
        .unwrap();

    let guesser = web.with_source("127.0.0.7");
    let r = guesser.password_step("alice", PASSWORD);
    assert_eq!(r.status, 303, "{}", r.describe());
    let login = r.set_cookie(LOGIN_COOKIE).unwrap();
    let page = guesser
        .get("/login/totp")
        .cookie(LOGIN_COOKIE, &login)
        .send();
    let csrf = hidden_csrf(&page.text()).unwrap();
    let statuses: Vec<(u16, bool)> = std::thread::scope(|sc| {
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let (guesser, login, csrf, wrong) = (&guesser, &login, &csrf, &wrong);
                sc.spawn(move || {
                    let r = guesser
                        .post("/login/totp")
                        .cookie(LOGIN_COOKIE, login)
                        .form(&[("csrf", csrf), ("code", wrong)])
                        .send();
                    (
                        r.status,
                        r.set_cookie(SESSION_COOKIE).is_some_and(|c| !c.is_empty()),
                    )
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|(_, session)| !session), "{statuses:?}");
    let evaluated = audit_records(&s)
        .iter()
        .filter(|r| {
            r["action"] == "login_failed"
                && r["source"] == "127.0.0.7"
                && r.to_string().contains("wrong or reused second-factor code")
        })
        .count();
    eprintln!("50 parallel codes: {evaluated} evaluated; statuses {statuses:?}");
    assert!(
        (1..=3).contains(&evaluated),
        "{evaluated} codes evaluated on one pending login (limit 3)"
    );
}
