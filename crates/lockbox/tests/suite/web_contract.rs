//! The API keeps its own contract, driven by the real `curl` CLI against the real binary: every
//! error is `application/problem+json` (the framework's own rejections included: a missing query
//! parameter, a JSON value of the wrong type, a body without its content type), browser pages get
//! the HTML error page instead, a query string or form that is not UTF-8 is refused (never
//! "repaired" into U+FFFD names), and a refused upload leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::web::*;
use common::*;
use serde_json::json;

struct Setup {
    s: TestServer,
    web: Web,
    browser: Browser,
    token: String,
    admin_token: String,
}

/// Org `acme`, transfer user `alice` (browser session and a read-write token), administrator
/// `root` (a token with every scope).
fn setup() -> Setup {
    let s = TestServer::start();
    s.setup_acme_alice();
    s.create_user("acme", "root", "admin", PASSWORD);
    let web = Web::new(&s);
    let browser = web.sign_in(&Person::new("alice", PASSWORD));
    let (_, token) = web.create_token(&browser, "contract", "read,write", 1);
    let admin_token = web.token_for(&Person::new("root", PASSWORD), "read,write,admin");
    Setup {
        s,
        web,
        browser,
        token,
        admin_token,
    }
}

/// A problem+json answer with `status`, whose body says the same status.
fn assert_problem(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "status:\n{}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "content type:\n{}",
        r.describe()
    );
    let v = r.json();
    assert_eq!(v["status"], status, "{}", r.describe());
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(v["title"].is_string() && v["type"].is_string());
}

/// The HTML error page with `status`.
fn assert_page(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "status:\n{}", r.describe());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "content type:\n{}",
        r.describe()
    );
}

fn names_in(w: &Setup, dir: &str) -> Vec<String> {
    let r = w
        .web
        .get(&format!("/api/v1/files?path={}", qenc(dir)))
        .bearer(&w.token)
        .send();
    r.assert_status(200);
    r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Ciphertext files under `DATA/blobs` (committed versions and staging uploads alike).
fn blob_count(s: &TestServer) -> usize {
    let blobs = s.data_dir.join("blobs");
    s.data_files()
        .into_iter()
        .filter(|p| p.starts_with(&blobs))
        .count()
}

#[test]
fn framework_rejections_are_problem_json() {
    let w = setup();
    let t = &w.token;

    // The three examples from the issue.
    assert_problem(&w.web.get("/api/v1/files").bearer(t).send(), 400);
    assert_problem(
        &w.web
            .post("/api/v1/files/mkdir")
            .bearer(t)
            .json(&json!({"path": 5}))
            .send(),
        400,
    );
    let no_type = w
        .web
        .post("/api/v1/tokens")
        .browser(&w.browser)
        .arg("--data-binary")
        .arg(r#"{"name":"x","scopes":"read","days":1}"#)
        .header("Content-Type:")
        .send();
    assert_problem(&no_type, 415);

    // More of the same: bodies that are not JSON, or JSON of the wrong shape.
    assert_problem(
        &w.web
            .post("/api/v1/uploads")
            .bearer(t)
            .raw_body(b"{not json", "application/json")
            .send(),
        400,
    );
    assert_problem(
        &w.web
            .post("/api/v1/files/rename")
            .bearer(t)
            .raw_body(b"from=/a&to=/b", "application/x-www-form-urlencoded")
            .send(),
        415,
    );
    assert_problem(
        &w.web
            .post("/api/v1/files/rename")
            .bearer(t)
            .json(&json!({"from": "/home/a"}))
            .send(),
        400,
    );
    // Query and path parameters of the wrong type.
    assert_problem(
        &w.web
            .put("/api/v1/uploads/nope?offset=abc")
            .bearer(t)
            .raw_body(b"x", "application/octet-stream")
            .send(),
        400,
    );
    assert_problem(
        &w.web
            .get("/api/v1/files?path=/home&path=/inbound")
            .bearer(t)
            .send(),
        400,
    );

    // A well-formed request that does not fit the path's state is a conflict, not a bad request.
    w.web
        .put("/api/v1/files/content?path=/home/f.txt")
        .bearer(t)
        .raw_body(b"x", "application/octet-stream")
        .send()
        .assert_status(201);
    assert_problem(
        &w.web.get("/api/v1/files?path=/home/f.txt").bearer(t).send(),
        409,
    );
    // A commit may come without a body, or with JSON null.
    let r = w
        .web
        .post("/api/v1/uploads")
        .bearer(t)
        .json(&json!({"path": "/home/g.txt"}))
        .send();
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    w.web
        .post(&format!("/api/v1/uploads/{id}/commit"))
        .bearer(t)
        .raw_body(b"null", "application/json")
        .send()
        .assert_status(201);

    // Admin routes take the same way out, and check what the schema promises.
    let a = &w.admin_token;
    assert_problem(
        &w.web
            .post("/api/v1/admin/orgs")
            .bearer(a)
            .raw_body(b"name=x", "text/plain")
            .send(),
        415,
    );
    for bad in [
        json!({"org": "acme", "name": "bob", "role": "root"}),
        json!({"org": "acme", "name": "bob"}),
        json!({"org": "acme", "name": "bob", "role": 1}),
    ] {
        let r = w
            .web
            .post("/api/v1/admin/users")
            .bearer(a)
            .json(&bad)
            .send();
        assert_problem(&r, 400);
    }
    for q in ["limit=abc", "limit=0", "limit=501", "before=x", "limit="] {
        let r = w
            .web
            .get(&format!("/api/v1/admin/audit?{q}"))
            .bearer(a)
            .send();
        assert_problem(&r, 400);
    }
    // Whole numbers may be written as JSON Schema allows (`100.0` is an integer there).
    w.web
        .get("/api/v1/admin/audit?limit=100.0")
        .bearer(a)
        .send()
        .assert_status(200);
    let r = w
        .web
        .post("/api/v1/tokens")
        .browser(&w.browser)
        .json(&json!({"name": "float days", "scopes": "read", "days": 2.0}))
        .send();
    r.assert_status(201);
    for days in [json!(0), json!(366), json!(1.5), json!("7")] {
        let r = w
            .web
            .post("/api/v1/tokens")
            .browser(&w.browser)
            .json(&json!({"name": "bad days", "scopes": "read", "days": days}))
            .send();
        assert_problem(&r, 400);
    }

    // A method a route does not take: 405 in the door's own shape, with Allow.
    let r = w.web.req("PATCH", "/api/v1/openapi.json").bearer(a).send();
    assert_problem(&r, 405);
    assert!(
        r.header("allow").is_some_and(|v| v.contains("GET")),
        "{}",
        r.describe()
    );

    // Browser pages get the HTML error page for the same rejections.
    let r = w
        .web
        .post("/files/mkdir")
        .browser(&w.browser)
        .form(&[("dir", "/home")])
        .send();
    assert_page(&r, 400);
    let r = w
        .web
        .post("/files/rename")
        .browser(&w.browser)
        .raw_body(b"{}", "application/json")
        .send();
    assert_page(&r, 415);
}

#[test]
fn invalid_utf8_in_a_path_is_refused_and_creates_nothing() {
    let w = setup();
    let before = names_in(&w, "/home");
    for raw in ["/home/ov%c0%ae%c0%af.txt", "/home/ov%c1%81%ff%fe.txt"] {
        let r = w
            .web
            .put(&format!("/api/v1/files/content?path={raw}"))
            .bearer(&w.token)
            .raw_body(b"payload", "application/octet-stream")
            .send();
        assert_problem(&r, 400);
        for (method, url) in [
            ("GET", format!("/api/v1/files?path={raw}")),
            ("GET", format!("/api/v1/files/content?path={raw}")),
            ("DELETE", format!("/api/v1/files?path={raw}")),
        ] {
            let r = w.web.req(method, &url).bearer(&w.token).send();
            assert_problem(&r, 400);
        }
        // The browser's folder page and its forms (urlencoded bodies) refuse it too.
        let r = w
            .web
            .get(&format!("/files?path={raw}"))
            .browser(&w.browser)
            .send();
        assert_page(&r, 400);
        let name = raw.trim_start_matches("/home/");
        let body = format!(
            "csrf={}&dir=%2Fhome&name={name}",
            form_encode(&w.browser.csrf)
        );
        let r = w
            .web
            .post("/files/mkdir")
            .browser(&w.browser)
            .raw_body(body.as_bytes(), "application/x-www-form-urlencoded")
            .send();
        assert_page(&r, 400);
        let body = format!("csrf={}&path={raw}", form_encode(&w.browser.csrf));
        let r = w
            .web
            .post("/files/delete")
            .browser(&w.browser)
            .raw_body(body.as_bytes(), "application/x-www-form-urlencoded")
            .send();
        assert_page(&r, 400);
    }
    let after = names_in(&w, "/home");
    assert_eq!(before, after, "something was created");
    assert!(
        !after.iter().any(|n| n.contains('\u{FFFD}')),
        "a U+FFFD name exists: {after:?}"
    );
    // A well-formed UTF-8 name still works, through the query and through the form.
    w.web
        .put(&format!(
            "/api/v1/files/content?path={}",
            qenc("/home/ovü.txt")
        ))
        .bearer(&w.token)
        .raw_body(b"payload", "application/octet-stream")
        .send()
        .assert_status(201);
    let r = w
        .web
        .post("/files/mkdir")
        .browser(&w.browser)
        .form(&[("csrf", &w.browser.csrf), ("dir", "/home"), ("name", "für")])
        .send();
    assert_eq!(r.status, 303, "{}", r.describe());
    let names = names_in(&w, "/home");
    assert!(names.contains(&"ovü.txt".to_owned()) && names.contains(&"für".to_owned()));
}

#[test]
fn an_upload_over_the_open_upload_limit_leaves_nothing_behind() {
    let w = setup();
    let open = |path: &str| {
        w.web
            .post("/api/v1/uploads")
            .bearer(&w.token)
            .json(&json!({"path": path}))
            .send()
    };
    // The per-user limit of open resumable uploads is 16.
    let mut ids = Vec::new();
    for i in 0..16 {
        let r = open(&format!("/home/part-{i}.bin"));
        r.assert_status(201);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    let blobs = blob_count(&w.s);
    let r = open("/home/one-too-many.bin");
    assert_problem(&r, 429);
    assert_eq!(
        blob_count(&w.s),
        blobs,
        "the refused upload left a staging file behind"
    );
    // An interrupted upload is not discarded by a refused restart either: pause one (its bytes
    // stay resumable), fill the slot again, and a refused `resume: false` must leave it alone.
    let first = &ids[0];
    w.web
        .put(&format!("/api/v1/uploads/{first}?offset=0"))
        .bearer(&w.token)
        .raw_body(b"kept bytes", "application/octet-stream")
        .send()
        .assert_status(200);
    w.web
        .delete(&format!("/api/v1/uploads/{first}"))
        .bearer(&w.token)
        .send()
        .assert_status(204);
    open("/home/filler.bin").assert_status(201);
    assert_problem(&open("/home/part-0.bin"), 429);
    // Free a slot (pause another), then resume: the 10 bytes are still there.
    w.web
        .delete(&format!("/api/v1/uploads/{}", ids[1]))
        .bearer(&w.token)
        .send()
        .assert_status(204);
    let r = w
        .web
        .post("/api/v1/uploads")
        .bearer(&w.token)
        .json(&json!({"path": "/home/part-0.bin", "resume": true}))
        .send();
    r.assert_status(201);
    assert_eq!(r.json()["offset"], 10, "{}", r.describe());
    // Nothing of the refused uploads is visible.
    let names = names_in(&w, "/home");
    assert!(!names.iter().any(|n| n == "one-too-many.bin"), "{names:?}");
}
