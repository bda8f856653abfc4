//! Hostile input against the HTTPS door with the real `curl`: SQL metacharacters and path escapes
//! in every parameter, oversized headers and bodies, forged and replayed CSRF tokens, tampered
//! cookies, a skipped second factor, cross-site posts, markup in file names, and a burst of bad
//! logins. Every case must get a clean answer (a 4xx where the input is refused; never a 5xx, never
//! a hang: every request has `--max-time`), and the server must keep serving normal requests.
//!
//! Requests that count as failed logins come from other loopback addresses (`Web::from_source`), so
//! the per-source throttle they trigger does not lock the rest of the test out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::web::*;
use common::*;
use serde_json::json;

/// Values that must be taken literally (never as SQL): valid as names, so writes may succeed.
const SQL: &[&str] = &[
    "' OR 1=1 --",
    "\"; DROP TABLE users; --",
    "x' UNION SELECT secret_hash FROM api_tokens --",
];

/// Decoded values that try to leave the namespace, or are not paths at all: always refused.
fn escapes() -> Vec<String> {
    vec![
        "../".into(),
        "../../etc/passwd".into(),
        "/home/../../etc/passwd".into(),
        "/home/./../../../etc/shadow".into(),
        "..\\..\\etc\\passwd".into(),
        "/home/..\\..\\etc".into(),
        "/home/a\0b".into(),
        "/home/\0".into(),
        "/home/\u{1}\u{7f}".into(),
        format!("/home/{}", "a".repeat(100 * 1024)),
        format!("/home{}", "/a".repeat(2000)),
    ]
}

/// Raw (already percent-encoded) query values: decoded by the server into escapes, or invalid.
const RAW_ESCAPES: &[&str] = &[
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "/home/%2e%2e/%2e%2e/etc/passwd",
    "/home/%00",
    "%2fhome%2f..%2f..%2fetc",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "%ff%fe",
    "/home/..%5c..%5cetc",
];

/// Percent-encodes everything but unreserved characters (also `/`), for a path segment.
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Env {
    s: TestServer,
    web: Web,
    alice: Person,
    browser: Browser,
    token: String,
    admin: Browser,
    admin_token: String,
}

fn env() -> Env {
    let s = TestServer::start();
    s.setup_acme_alice();
    s.create_user("acme", "root", "admin", PASSWORD);
    let web = Web::new(&s);
    let alice = Person::new("alice", PASSWORD);
    let browser = web.sign_in(&alice);
    let (_, token) = web.create_token(&browser, "hostile", "read,write", 1);
    let root = Person::new("root", PASSWORD);
    let admin = web.sign_in(&root);
    let (_, admin_token) = web.create_token(&admin, "hostile admin", "read,admin", 1);
    web.put("/api/v1/files/content?path=/home/exists.txt")
        .bearer(&token)
        .raw_body(b"exists", "application/octet-stream")
        .send()
        .assert_status(201);
    Env {
        s,
        web,
        alice,
        browser,
        token,
        admin,
        admin_token,
    }
}

/// The server still answers a normal request, and is alive.
fn still_serving(e: &mut Env, ctx: &str) {
    e.s.assert_alive(ctx);
    let r = e
        .web
        .get("/api/v1/files?path=/home")
        .bearer(&e.token)
        .send();
    assert_eq!(
        r.status,
        200,
        "normal request after {ctx}:\n{}\n{}",
        r.describe(),
        e.s.log()
    );
    let r = e.web.get("/healthz").send();
    assert_eq!(r.status, 200, "healthz after {ctx}");
}

/// A clean answer: a status arrived, and it is not a server error.
fn clean(r: &Resp) -> bool {
    r.status >= 200 && r.status < 500
}

fn no_leak(r: &Resp) -> bool {
    let t = r.text();
    !t.contains("root:x:0:0")
        && !t.contains("$argon2")
        && !t.contains("SQLITE")
        && !t.to_ascii_lowercase().contains("sqlite")
}

#[test]
fn sql_metacharacters_and_path_escapes_in_every_parameter() {
    let mut e = env();
    let mut failures = Vec::new();
    let mut n = 0usize;
    let mut check = |r: Resp, must_refuse: bool, failures: &mut Vec<String>| {
        n += 1;
        let refused = (400..500).contains(&r.status);
        if !clean(&r) || (must_refuse && !refused) || !no_leak(&r) {
            failures.push(r.describe());
        }
    };
    let web = e.web.clone();
    let (tok, b) = (e.token.clone(), e.browser.clone());

    // Query `path`, decoded values (encoded by us) and raw encodings.
    let mut query_values: Vec<(String, bool)> = SQL
        .iter()
        .map(|v| (qenc(&format!("/home/{v}")), false))
        .collect();
    query_values.extend(SQL.iter().map(|v| (qenc(v), false)));
    query_values.extend(escapes().iter().map(|v| (qenc(v), true)));
    query_values.extend(RAW_ESCAPES.iter().map(|v| (v.to_string(), true)));
    for (qv, must) in &query_values {
        let long = qv.len() > 10_000;
        for (m, p) in [
            ("GET", "/api/v1/files"),
            ("GET", "/api/v1/files/content"),
            ("DELETE", "/api/v1/files"),
        ] {
            let mut r = web.req(m, &format!("{p}?path={qv}")).bearer(&tok);
            if long {
                r = r.arg("--http1.1");
            }
            check(r.send(), *must, &mut failures);
        }
        let mut r = web
            .put(&format!("/api/v1/files/content?path={qv}"))
            .bearer(&tok)
            .raw_body(b"x", "application/octet-stream");
        if long {
            r = r.arg("--http1.1");
        }
        check(r.send(), *must, &mut failures);
        let mut r = web.get(&format!("/files?path={qv}")).browser(&b);
        if long {
            r = r.arg("--http1.1");
        }
        check(r.send(), *must, &mut failures);
    }

    // JSON and form fields, with decoded values.
    let mut values: Vec<(String, bool)> =
        SQL.iter().map(|v| (format!("/home/{v}"), false)).collect();
    values.extend(SQL.iter().map(|v| (v.to_string(), false)));
    values.extend(escapes().into_iter().map(|v| (v, true)));
    for (v, must) in &values {
        let must = *must;
        check(
            web.post("/api/v1/files/mkdir")
                .bearer(&tok)
                .json(&json!({"path": v}))
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/api/v1/uploads")
                .bearer(&tok)
                .json(&json!({"path": v}))
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/api/v1/files/rename")
                .bearer(&tok)
                .json(&json!({"from": v, "to": "/home/renamed"}))
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/api/v1/files/rename")
                .bearer(&tok)
                .json(&json!({"from": "/home/exists.txt", "to": v}))
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/files/delete")
                .browser(&b)
                .form(&[("csrf", &b.csrf), ("path", v)])
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/files/mkdir")
                .browser(&b)
                .form(&[("csrf", &b.csrf), ("dir", v), ("name", "n")])
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/files/mkdir")
                .browser(&b)
                .form(&[("csrf", &b.csrf), ("dir", "/home"), ("name", v)])
                .send(),
            must,
            &mut failures,
        );
        check(
            web.post("/files/rename")
                .browser(&b)
                .form(&[("csrf", &b.csrf), ("from", v), ("new_name", "n")])
                .send(),
            must,
            &mut failures,
        );
        // Keep a file to rename from: earlier literal names may have renamed it.
        web.put("/api/v1/files/content?path=/home/exists.txt")
            .bearer(&tok)
            .raw_body(b"exists", "application/octet-stream")
            .send();
        check(
            web.post("/files/rename")
                .browser(&b)
                .form(&[
                    ("csrf", &b.csrf),
                    ("from", "/home/exists.txt"),
                    ("new_name", v),
                ])
                .send(),
            must,
            &mut failures,
        );
    }

    // Ids in the URL path: upload ids and token ids (encoded as one segment, and raw).
    let mut ids: Vec<String> = SQL.iter().map(|v| seg(v)).collect();
    ids.extend(
        [
            "..%2f..%2fetc%2fpasswd",
            "%00",
            "a%5cb",
            "%2e%2e",
            "x".repeat(5000).as_str(),
        ]
        .map(String::from),
    );
    for id in &ids {
        for (m, p) in [
            ("GET", format!("/api/v1/uploads/{id}")),
            ("DELETE", format!("/api/v1/uploads/{id}")),
            ("POST", format!("/api/v1/uploads/{id}/commit")),
            ("DELETE", format!("/api/v1/tokens/{id}")),
            ("GET", format!("/api/v1/admin/users/{id}")),
            ("DELETE", format!("/api/v1/admin/tokens/{id}")),
        ] {
            let who = if p.contains("/admin/") {
                &e.admin_token
            } else {
                &tok
            };
            let mut r = web.req(m, &p).bearer(who);
            if m == "POST" {
                r = r.json(&json!({}));
            }
            check(r.send(), true, &mut failures);
        }
        check(
            web.put(&format!("/api/v1/uploads/{id}?offset=0"))
                .bearer(&tok)
                .raw_body(b"x", "application/octet-stream")
                .send(),
            true,
            &mut failures,
        );
        check(
            web.post(&format!("/account/tokens/{id}/revoke"))
                .browser(&b)
                .form(&[("csrf", &b.csrf)])
                .send(),
            true,
            &mut failures,
        );
        check(
            web.get(&format!("/admin/users/{id}"))
                .browser(&e.admin)
                .send(),
            true,
            &mut failures,
        );
    }
    // Raw traversal in the URL path itself.
    for p in [
        "/api/v1/uploads/../../../etc/passwd",
        "/assets/../../../../etc/passwd",
        "/assets/..%2f..%2f..%2fetc%2fpasswd",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/app.css%00.js",
        "/../../etc/passwd",
        "/api/v1/files/..%2f..%2f",
    ] {
        check(web.get(p).bearer(&tok).send(), true, &mut failures);
    }
    // Offsets that are not numbers.
    for off in ["-1", "abc", "1e9", "' OR 1=1 --", "18446744073709551616"] {
        let up = web
            .post("/api/v1/uploads")
            .bearer(&tok)
            .json(&json!({"path": "/home/off.bin"}))
            .send();
        up.assert_status(201);
        let id = up.json()["id"].as_str().unwrap().to_owned();
        check(
            web.put(&format!("/api/v1/uploads/{id}?offset={}", qenc(off)))
                .bearer(&tok)
                .raw_body(b"x", "application/octet-stream")
                .send(),
            true,
            &mut failures,
        );
        web.delete(&format!("/api/v1/uploads/{id}"))
            .bearer(&tok)
            .send()
            .assert_status(204);
    }

    // Administrators' filters: 2xx with nothing matched, or a 4xx; never everything.
    let audit_total = web
        .get("/api/v1/admin/audit?limit=500")
        .bearer(&e.admin_token)
        .send();
    audit_total.assert_status(200);
    let mut filter_values: Vec<String> = SQL.iter().map(|s| s.to_string()).collect();
    filter_values.extend([
        "../../etc/passwd".into(),
        "\0".into(),
        "%".into(),
        "*".into(),
        "x".repeat(100_000),
    ]);
    for v in &filter_values {
        for key in ["user", "org", "action", "from", "to", "before", "limit"] {
            let mut r = web
                .get(&format!("/api/v1/admin/audit?{key}={}", qenc(v)))
                .bearer(&e.admin_token);
            if v.len() > 10_000 {
                r = r.arg("--http1.1");
            }
            let r = r.send();
            if r.status == 200 {
                let recs = r.json()["records"].as_array().cloned().unwrap_or_default();
                if !recs.is_empty() && ["user", "org", "action"].contains(&key) {
                    failures.push(format!(
                        "audit filter {key}={v:?} matched {} records:\n{}",
                        recs.len(),
                        r.describe()
                    ));
                }
            }
            check(r, false, &mut failures);
        }
        let mut r = web
            .get(&format!("/api/v1/admin/users?org={}", qenc(v)))
            .bearer(&e.admin_token);
        if v.len() > 10_000 {
            r = r.arg("--http1.1");
        }
        check(r.send(), false, &mut failures);
        let mut r = web
            .get(&format!("/admin/audit?user={}", qenc(v)))
            .browser(&e.admin);
        if v.len() > 10_000 {
            r = r.arg("--http1.1");
        }
        check(r.send(), false, &mut failures);
    }

    // Login fields and bearer tokens: from another source (these count as failed logins).
    // Wrong passwords go to `carol`, so alice's account is not locked by them.
    e.s.create_user("acme", "carol", "transfer", PASSWORD);
    let attacker = web.with_source("127.0.0.11");
    let mut login_values: Vec<String> = SQL.iter().map(|s| s.to_string()).collect();
    login_values.extend([
        "alice' --".into(),
        "alice\0".into(),
        "../alice".into(),
        "x".repeat(100_000),
    ]);
    for v in &login_values {
        for (user, pw) in [(v.as_str(), PASSWORD), ("carol", v.as_str())] {
            let r = attacker.password_step(user, pw);
            if r.status == 303 || r.set_cookie(LOGIN_COOKIE).is_some_and(|c| !c.is_empty()) {
                failures.push(format!("hostile login went through:\n{}", r.describe()));
            }
            check(r, true, &mut failures);
        }
        let hv: String = v.chars().filter(|c| !c.is_control()).take(1000).collect();
        check(
            attacker
                .get("/api/v1/me")
                .header(&format!("Authorization: Bearer {hv}"))
                .send(),
            true,
            &mut failures,
        );
        check(
            attacker
                .get("/api/v1/me")
                .header(&format!(
                    "Authorization: Bearer lbx_{}_{}",
                    seg(&hv),
                    "A".repeat(43)
                ))
                .send(),
            true,
            &mut failures,
        );
    }

    // Literal names stayed literal; the database is whole.
    let l = web.get("/api/v1/files?path=/home").bearer(&tok).send();
    l.assert_status(200);
    let names: Vec<String> = l.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "' OR 1=1 --"),
        "literal SQL name missing: {names:?}"
    );
    let users = e.s.cli_ok(&["user", "list"]);
    assert!(users.contains("alice") && users.contains("root"), "{users}");
    e.s.cli_ok(&["audit", "verify"]);
    let _ = &e.alice;
    still_serving(&mut e, "hostile parameters");
    assert!(
        failures.is_empty(),
        "{} of {n} hostile requests got no clean answer:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn oversized_headers_and_bodies() {
    let mut e = env();
    let web = e.web.clone();
    let hdr = e.s.dir.path().join("big-header");
    std::fs::write(&hdr, format!("X-Big: {}\r\n", "a".repeat(200 * 1024))).unwrap();
    let h = format!("@{}", hdr.display());
    // HTTP/1.1: 431 (or 400).
    let r = web
        .get("/healthz")
        .arg("--http1.1")
        .arg("-H")
        .arg(&h)
        .max_secs(20)
        .send();
    assert!(
        r.status == 431 || r.status == 400,
        "200 KB header over HTTP/1.1:\n{}",
        r.describe()
    );
    // HTTP/2: the stream is refused (hyper's header-list limit) or a 431; never a hang.
    let r = web
        .get("/healthz")
        .arg("--http2")
        .arg("-H")
        .arg(&h)
        .max_secs(20)
        .send();
    assert!(
        r.status == 431 || r.status == 400 || (r.status == 0 && r.exit != Some(28)),
        "200 KB header over HTTP/2:\n{}",
        r.describe()
    );
    // Many headers.
    let many = e.s.dir.path().join("many-headers");
    std::fs::write(
        &many,
        (0..200)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>(),
    )
    .unwrap();
    let r = web
        .get("/healthz")
        .arg("--http1.1")
        .arg("-H")
        .arg(&format!("@{}", many.display()))
        .send();
    assert!(
        r.status == 431 || r.status == 400,
        "200 headers:\n{}",
        r.describe()
    );
    // A huge cookie on an authenticated route.
    let r = web
        .get("/api/v1/me")
        .arg("--http1.1")
        .cookie(SESSION_COOKIE, &"A".repeat(100 * 1024))
        .send();
    assert!(
        [400, 401, 431].contains(&r.status),
        "100 KB cookie:\n{}",
        r.describe()
    );
    still_serving(&mut e, "oversized headers");

    let ten_mb = "a".repeat(10 * MIB);
    let r = web
        .post("/login")
        .raw_body(
            format!("user=alice&password={ten_mb}").as_bytes(),
            "application/x-www-form-urlencoded",
        )
        .send();
    assert_eq!(r.status, 413, "10 MB login form:\n{}", r.describe());
    let r = web
        .post("/api/v1/files/rename")
        .bearer(&e.token)
        .raw_body(
            json!({"from": ten_mb, "to": "/home/x"})
                .to_string()
                .as_bytes(),
            "application/json",
        )
        .send();
    assert_eq!(r.status, 413, "10 MB JSON rename:\n{}", r.describe());
    let r = web
        .post("/api/v1/tokens")
        .browser(&e.browser)
        .raw_body(
            json!({"name": ten_mb, "scopes": "read", "days": 1})
                .to_string()
                .as_bytes(),
            "application/json",
        )
        .send();
    assert_eq!(r.status, 413, "10 MB JSON token request:\n{}", r.describe());
    // A form to a browser route: the CSRF check buffers at most 64 KiB.
    let r = web
        .post("/files/mkdir")
        .cookie(SESSION_COOKIE, &e.browser.cookie)
        .raw_body(
            format!("csrf={}&dir=/home&name={ten_mb}", e.browser.csrf).as_bytes(),
            "application/x-www-form-urlencoded",
        )
        .send();
    assert_eq!(
        r.status,
        413,
        "10 MB form with CSRF field:\n{}",
        r.describe()
    );
    // Malformed JSON and wrong content types: 4xx.
    for (body, ct) in [
        ("{", "application/json"),
        ("{\"from\": 1, \"to\": []}", "application/json"),
        ("[]", "application/json"),
        (
            "from=/home/a&to=/home/b",
            "application/x-www-form-urlencoded",
        ),
        ("\u{0}\u{1}", "application/json"),
    ] {
        let r = web
            .post("/api/v1/files/rename")
            .bearer(&e.token)
            .raw_body(body.as_bytes(), ct)
            .send();
        assert!(
            (400..500).contains(&r.status),
            "rename body {body:?} as {ct}:\n{}",
            r.describe()
        );
    }
    still_serving(&mut e, "oversized bodies");
}

#[test]
fn csrf_cookies_second_factor_and_cross_site() {
    let mut e = env();
    let web = e.web.clone();
    let b = e.browser.clone();

    // Forged CSRF (header and form field), and none at all: 403, nothing created.
    let forged = random_hex(32);
    let r = web
        .post("/api/v1/files/mkdir")
        .cookie(SESSION_COOKIE, &b.cookie)
        .csrf(&forged)
        .json(&json!({"path": "/home/f1"}))
        .send();
    assert_eq!(r.status, 403, "forged CSRF header:\n{}", r.describe());
    let r = web
        .post("/files/mkdir")
        .cookie(SESSION_COOKIE, &b.cookie)
        .form(&[("csrf", &forged), ("dir", "/home"), ("name", "f2")])
        .send();
    assert_eq!(r.status, 403, "forged CSRF field:\n{}", r.describe());
    let r = web
        .post("/files/mkdir")
        .cookie(SESSION_COOKIE, &b.cookie)
        .form(&[("dir", "/home"), ("name", "f3")])
        .send();
    assert_eq!(r.status, 403, "missing CSRF:\n{}", r.describe());
    let r = web
        .post("/api/v1/files/mkdir")
        .cookie(SESSION_COOKIE, &b.cookie)
        .json(&json!({"path": "/home/f4"}))
        .send();
    assert_eq!(
        r.status,
        403,
        "missing CSRF header on the API:\n{}",
        r.describe()
    );
    // Another session's CSRF token.
    let r = web
        .post("/api/v1/files/mkdir")
        .cookie(SESSION_COOKIE, &b.cookie)
        .csrf(&e.admin.csrf)
        .json(&json!({"path": "/home/f5"}))
        .send();
    assert_eq!(r.status, 403, "another session's CSRF:\n{}", r.describe());

    // Replayed: the CSRF of a session that signed out, with a new session's cookie.
    let old = web.sign_in(&e.alice);
    web.post("/logout")
        .browser(&old)
        .form(&[("csrf", &old.csrf)])
        .send()
        .assert_status(303);
    assert_eq!(
        web.get("/api/v1/me").browser(&old).send().status,
        401,
        "signed-out session still valid"
    );
    let fresh = web.sign_in(&e.alice);
    assert_ne!(fresh.csrf, old.csrf, "a new session reused the CSRF token");
    let r = web
        .post("/api/v1/files/mkdir")
        .cookie(SESSION_COOKIE, &fresh.cookie)
        .csrf(&old.csrf)
        .json(&json!({"path": "/home/f6"}))
        .send();
    assert_eq!(r.status, 403, "replayed CSRF:\n{}", r.describe());
    let r = web
        .post("/files/mkdir")
        .cookie(SESSION_COOKIE, &fresh.cookie)
        .form(&[("csrf", &old.csrf), ("dir", "/home"), ("name", "f7")])
        .send();
    assert_eq!(r.status, 403, "replayed CSRF field:\n{}", r.describe());
    // The old cookie with its own CSRF: the session is gone.
    let r = web
        .post("/api/v1/files/mkdir")
        .browser(&old)
        .json(&json!({"path": "/home/f8"}))
        .send();
    assert_eq!(
        r.status,
        401,
        "signed-out session with its CSRF:\n{}",
        r.describe()
    );

    // Tampered session cookies: 401 on pages and the API.
    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        let i = c.len() / 2;
        c[i] = if c[i] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };
    let tampered = [
        flip(&fresh.cookie),
        fresh.cookie[..42].to_string(),
        format!("{}A", fresh.cookie),
        random_hex(22)[..43].to_string(),
        "A".repeat(43),
        format!("{}{}", fresh.cookie, "A".repeat(4000)),
        fresh.cookie.to_uppercase(),
        "' OR 1=1 --".replace(' ', "+"),
        String::new(),
    ];
    for c in &tampered {
        for p in [
            "/api/v1/me",
            "/files?path=/home",
            "/account",
            "/api/v1/files?path=/home",
        ] {
            let r = web.get(p).cookie(SESSION_COOKIE, c).send();
            assert_eq!(
                r.status,
                401,
                "tampered cookie {c:?} on {p}:\n{}",
                r.describe()
            );
        }
    }
    // The untampered cookie still works.
    web.get("/api/v1/me")
        .browser(&fresh)
        .send()
        .assert_status(200);

    // Second factor skipped: the login cookie alone opens nothing.
    let step1 = web.password_step("alice", PASSWORD);
    step1.assert_status(303);
    assert_eq!(step1.header("location"), Some("/login/totp"));
    let login = step1.set_cookie(LOGIN_COOKIE).unwrap();
    for p in [
        "/files?path=/home",
        "/api/v1/files?path=/home",
        "/api/v1/me",
        "/account",
        "/login/recovery",
    ] {
        let r = web.get(p).cookie(LOGIN_COOKIE, &login).send();
        assert_eq!(
            r.status,
            401,
            "{p} with only the login cookie:\n{}",
            r.describe()
        );
        // The pending handle presented as a session cookie.
        let r = web.get(p).cookie(SESSION_COOKIE, &login).send();
        assert_eq!(
            r.status,
            401,
            "{p} with the login handle as session cookie:\n{}",
            r.describe()
        );
    }
    let r = web
        .post("/api/v1/tokens")
        .cookie(LOGIN_COOKIE, &login)
        .json(&json!({"name": "x", "scopes": "read", "days": 1}))
        .send();
    assert_eq!(
        r.status,
        401,
        "token minted before the second factor:\n{}",
        r.describe()
    );
    // The TOTP step without the login cookie (but with a valid code and a full session): 401.
    let code = e.alice.current_code();
    let r = web.post("/login/totp").form(&[("code", &code)]).send();
    assert_eq!(
        r.status,
        401,
        "TOTP without the login cookie:\n{}",
        r.describe()
    );
    let r = web
        .post("/login/totp")
        .cookie(SESSION_COOKIE, &fresh.cookie)
        .form(&[("code", &code), ("csrf", &fresh.csrf)])
        .send();
    assert_eq!(
        r.status,
        401,
        "TOTP step with a session cookie instead of the login cookie:\n{}",
        r.describe()
    );
    // The login step's own CSRF is required.
    let r = web
        .post("/login/totp")
        .cookie(LOGIN_COOKIE, &login)
        .form(&[("code", &code)])
        .send();
    assert_eq!(r.status, 403, "TOTP step without CSRF:\n{}", r.describe());
    // Enrolment cannot be restarted by someone already enrolled.
    let r = web.get("/login/enroll").cookie(LOGIN_COOKIE, &login).send();
    assert!(
        r.status == 303 && r.header("location") == Some("/login/totp"),
        "re-enrolment:\n{}",
        r.describe()
    );

    // Cross-site POSTs: refused even with a valid session and CSRF token; also on the login form.
    for site in ["cross-site", "same-site"] {
        let r = web
            .post("/api/v1/files/mkdir")
            .browser(&fresh)
            .header(&format!("Sec-Fetch-Site: {site}"))
            .json(&json!({"path": "/home/xs"}))
            .send();
        assert_eq!(r.status, 403, "{site} API post:\n{}", r.describe());
        let r = web
            .post("/files/mkdir")
            .browser(&fresh)
            .header(&format!("Sec-Fetch-Site: {site}"))
            .form(&[("csrf", &fresh.csrf), ("dir", "/home"), ("name", "xs2")])
            .send();
        assert_eq!(r.status, 403, "{site} form post:\n{}", r.describe());
        let r = web
            .post("/login")
            .header(&format!("Sec-Fetch-Site: {site}"))
            .form(&[("user", "alice"), ("password", PASSWORD)])
            .send();
        assert_eq!(r.status, 403, "{site} login post:\n{}", r.describe());
        let r = web
            .post("/logout")
            .browser(&fresh)
            .header(&format!("Sec-Fetch-Site: {site}"))
            .form(&[("csrf", &fresh.csrf)])
            .send();
        assert_eq!(r.status, 403, "{site} logout:\n{}", r.describe());
    }
    // Same-origin is fine.
    let r = web
        .post("/api/v1/files/mkdir")
        .browser(&fresh)
        .header("Sec-Fetch-Site: same-origin")
        .json(&json!({"path": "/home/ok"}))
        .send();
    r.assert_status(201);

    // Nothing the refused requests asked for exists.
    let l = web.get("/api/v1/files?path=/home").bearer(&e.token).send();
    let names: Vec<String> = l.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["ok", "exists.txt"],
        "refused requests changed files"
    );
    still_serving(&mut e, "csrf and cookies");
}

/// Does `html` hold `raw` HTML-escaped, with named (`&lt;`) or numeric (`&#60;`) references?
fn has_escaped(html: &str, raw: &str) -> bool {
    let esc = |named: bool| {
        raw.chars()
            .map(|c| match (c, named) {
                ('<', true) => "&lt;".to_string(),
                ('>', true) => "&gt;".to_string(),
                ('"', true) => "&quot;".to_string(),
                ('&', true) => "&amp;".to_string(),
                ('\'', true) => "&#39;".to_string(),
                ('<' | '>' | '"' | '&' | '\'', false) => format!("&#{};", c as u32),
                _ => c.to_string(),
            })
            .collect::<String>()
    };
    html.contains(&esc(true)) || html.contains(&esc(false))
}

#[test]
fn markup_in_file_names_is_escaped_and_downloads_are_attachments() {
    let mut e = env();
    let web = e.web.clone();
    // `<script>alert(1)</script>.txt` has a `/`: its first part becomes a directory.
    let dir = "<script>alert(1)<";
    web.post("/api/v1/files/mkdir")
        .bearer(&e.token)
        .json(&json!({"path": format!("/home/{dir}")}))
        .send()
        .assert_status(201);
    let script_path = "/home/<script>alert(1)</script>.txt";
    let img = "\"><img src=x onerror=alert(1)>.csv";
    let img_path = format!("/home/{img}");
    for p in [
        script_path,
        img_path.as_str(),
        "/home/<svg onload=alert(1)>",
        "/home/'-alert(1)-'.txt",
        "/home/{{7*7}}.txt",
    ] {
        web.put(&format!("/api/v1/files/content?path={}", qenc(p)))
            .bearer(&e.token)
            .raw_body(
                b"<script>alert('content')</script>",
                "application/octet-stream",
            )
            .send()
            .assert_status(201);
    }
    let page = web.get("/files?path=/home").browser(&e.browser).send();
    page.assert_status(200);
    let html = page.text();
    for raw in [
        "<script>alert(1)",
        "<img src=x",
        "onerror=alert(1)>",
        "<svg onload",
        "\"><img",
    ] {
        assert!(
            !html.contains(raw),
            "raw markup {raw:?} in the files page:\n{html}"
        );
    }
    assert!(
        has_escaped(&html, dir),
        "escaped directory name missing:\n{html}"
    );
    assert!(
        has_escaped(&html, img),
        "escaped file name missing:\n{html}"
    );
    assert!(
        !html.contains("49.txt"),
        "a template expression was evaluated"
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "CSP: {csp}"
    );
    // The directory's own page (breadcrumbs carry the name).
    let page = web
        .get(&format!("/files?path={}", qenc(&format!("/home/{dir}"))))
        .browser(&e.browser)
        .send();
    page.assert_status(200);
    let html = page.text();
    assert!(
        !html.contains("<script>alert(1)"),
        "raw markup in the directory page:\n{html}"
    );
    assert!(
        has_escaped(&html, "script>.txt"),
        "file in the directory missing:\n{html}"
    );

    // Downloads: attachment, octet-stream, sandboxed, and the quote cannot break the header.
    for p in [script_path, img_path.as_str()] {
        let r = web
            .get(&format!("/api/v1/files/content?path={}", qenc(p)))
            .browser(&e.browser)
            .send();
        r.assert_status(200);
        let cd = r.header("content-disposition").unwrap_or_default();
        assert!(
            cd.starts_with("attachment; filename=\""),
            "{p}: Content-Disposition {cd:?}"
        );
        let ascii = between(cd, "filename=\"", "\"").unwrap_or_default();
        assert!(
            !ascii.contains('<') && !ascii.contains('>'),
            "{p}: filename {ascii:?}"
        );
        assert_eq!(cd.matches('"').count(), 2, "{p}: quotes in {cd:?}");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r
            .header("content-security-policy")
            .unwrap_or_default()
            .contains("sandbox"));
    }
    // The JSON listing gives the names literally (JSON is not HTML).
    let l = web.get("/api/v1/files?path=/home").bearer(&e.token).send();
    assert!(
        l.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == img),
        "{}",
        l.text()
    );
    assert_eq!(l.header("content-type"), Some("application/json"));
    still_serving(&mut e, "markup names");
}

#[test]
fn parallel_bad_logins_lock_the_account_until_unlocked() {
    let s = TestServer::start();
    s.setup_acme_alice();
    s.create_user("acme", "victim", "transfer", PASSWORD);
    let web = Web::new(&s);
    let attacker = web.with_source("127.0.0.20");
    let statuses = std::sync::Mutex::new(Vec::new());
    // 200 bad logins, 16 curl processes at a time.
    std::thread::scope(|sc| {
        for t in 0..16 {
            let attacker = &attacker;
            let statuses = &statuses;
            sc.spawn(move || {
                let mut i = t;
                while i < 200 {
                    let r = attacker.password_step("victim", &format!("wrong-password-{i:04}"));
                    statuses.lock().unwrap().push((
                        r.status,
                        r.set_cookie(LOGIN_COOKIE).is_some(),
                        r.exit,
                    ));
                    i += 16;
                }
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    assert_eq!(statuses.len(), 200);
    // Each is refused: 401 when its password was checked, 429 when the source's failure budget
    // or hashing share was taken by attempts in flight, or the source is blocked (never checked).
    let bad: Vec<_> = statuses
        .iter()
        .filter(|(st, cookie, _)| (*st != 401 && *st != 429) || *cookie)
        .collect();
    assert!(
        bad.is_empty(),
        "bad logins not all 401/429: {bad:?}\n{}",
        s.log()
    );
    let checked = statuses.iter().filter(|(st, _, _)| *st == 401).count();
    assert!(
        (5..=20).contains(&checked),
        "{checked} passwords checked; the source allows 20 failures and the lockout needs 5"
    );

    // The account is locked: the right password from a clean address is refused too.
    let other = web.with_source("127.0.0.21");
    let r = other.password_step("victim", PASSWORD);
    assert_eq!(
        r.status,
        401,
        "locked account accepted the right password:\n{}",
        r.describe()
    );
    let recs = audit_records(&s);
    assert!(
        recs.iter()
            .any(|r| r["action"] == "account_locked" && r["target"] == "user:victim"),
        "no account_locked record"
    );
    // Other accounts are not affected (from a clean address).
    let r = other.password_step("alice", PASSWORD);
    assert_eq!(r.status, 303, "alice refused:\n{}", r.describe());
    // Attempts on an account that is already locked are refused before they count against the
    // source (see the report); a spray over several accounts does throttle the source, after which
    // even a correct password of another account is refused from there.
    let sprayer = web.with_source("127.0.0.22");
    for u in ["s1", "s2", "s3", "s4"] {
        s.create_user("acme", u, "transfer", PASSWORD);
        for i in 0..5 {
            sprayer
                .password_step(u, &format!("spray-{i}-wrong-password"))
                .assert_status(401);
        }
    }
    // Twenty failures: the source is blocked, and says so (429 with the wait), for any account.
    let r = sprayer.password_step("alice", PASSWORD);
    assert_eq!(
        r.status,
        429,
        "throttled source accepted:\n{}",
        r.describe()
    );
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(wait > 60, "Retry-After {wait}:\n{}", r.describe());
    assert!(r.set_cookie(LOGIN_COOKIE).is_none());
    assert!(audit_records(&s)
        .iter()
        .any(|r| r["action"] == "source_throttled" && r["source"] == "127.0.0.22"));

    s.cli_ok(&["user", "unlock", "victim"]);
    let r = other.password_step("victim", PASSWORD);
    assert_eq!(
        r.status,
        303,
        "unlock did not restore the login:\n{}",
        r.describe()
    );
    assert_eq!(r.header("location"), Some("/login/enroll"));
    let victim = Person::new("victim", PASSWORD);
    other.sign_in(&victim);
    let r = web.get("/healthz").send();
    r.assert_status(200);
    s.cli_ok(&["audit", "verify"]);
}
