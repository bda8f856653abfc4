//! The HTTPS door's authorization matrix, against the real binary with the real `curl`.
//!
//! `EXPECTED` is this test's own list of every route and the access it must require. It must equal
//! `lockbox_web::route_table()` exactly, so a route added without updating the matrix fails here.
//! Then every route is called as: nobody; a partner (transfer) user of another organization aiming
//! at organization A's files, folders, uploads and tokens (token and browser session, with a valid
//! CSRF token so the check reached is authorization); an administrator on partner routes; partners
//! and a non-admin-scoped administrator token on admin routes. Organization A's file content must
//! never come back to anyone but A's user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::collections::BTreeSet;

use common::web::*;
use common::*;
use serde_json::json;

/// (method, path template, access) for every route the door serves.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "Public"),
    ("GET", "/readyz", "Public"),
    ("GET", "/metrics", "Admin"),
    ("GET", "/assets/{name}", "Public"),
    ("GET", "/api/v1/openapi.json", "Public"),
    ("GET", "/", "Public"),
    ("GET", "/login", "Public"),
    ("POST", "/login", "Public"),
    ("GET", "/login/totp", "LoginStep"),
    ("POST", "/login/totp", "LoginStep"),
    ("GET", "/login/enroll", "LoginStep"),
    ("POST", "/login/enroll", "LoginStep"),
    ("GET", "/login/recovery", "Any"),
    ("POST", "/logout", "Any"),
    ("GET", "/files", "Transfer"),
    ("POST", "/files/delete", "Transfer"),
    ("POST", "/files/mkdir", "Transfer"),
    ("POST", "/files/rename", "Transfer"),
    ("GET", "/account", "Any"),
    ("POST", "/account/tokens", "Any"),
    ("POST", "/account/tokens/{id}/revoke", "Any"),
    ("POST", "/account/recovery-codes", "Any"),
    ("GET", "/admin", "Admin"),
    ("GET", "/admin/orgs", "Admin"),
    ("POST", "/admin/orgs", "Admin"),
    ("POST", "/admin/orgs/{name}/policy", "Admin"),
    ("GET", "/admin/users", "Admin"),
    ("POST", "/admin/users", "Admin"),
    ("GET", "/admin/users/{name}", "Admin"),
    ("POST", "/admin/users/{name}/disable", "Admin"),
    ("POST", "/admin/users/{name}/enable", "Admin"),
    ("POST", "/admin/users/{name}/unlock", "Admin"),
    ("POST", "/admin/users/{name}/reset-mfa", "Admin"),
    ("POST", "/admin/users/{name}/password", "Admin"),
    ("POST", "/admin/users/{name}/keys", "Admin"),
    ("POST", "/admin/users/{name}/keys/remove", "Admin"),
    ("GET", "/admin/folders", "Admin"),
    ("POST", "/admin/folders", "Admin"),
    ("POST", "/admin/grants", "Admin"),
    ("POST", "/admin/grants/revoke", "Admin"),
    ("GET", "/admin/audit", "Admin"),
    ("GET", "/admin/sessions", "Admin"),
    ("POST", "/admin/sessions/{id}/end", "Admin"),
    ("GET", "/admin/tokens", "Admin"),
    ("POST", "/admin/tokens/{id}/revoke", "Admin"),
    ("GET", "/admin/exposure", "Admin"),
    ("POST", "/admin/exposure", "Admin"),
    ("GET", "/admin/exposure/download", "Admin"),
    ("GET", "/api/v1/files", "Transfer"),
    ("DELETE", "/api/v1/files", "Transfer"),
    ("GET", "/api/v1/files/content", "Transfer"),
    ("PUT", "/api/v1/files/content", "Transfer"),
    ("POST", "/api/v1/files/rename", "Transfer"),
    ("POST", "/api/v1/files/mkdir", "Transfer"),
    ("GET", "/api/v1/me", "Any"),
    ("GET", "/api/v1/tokens", "Any"),
    ("POST", "/api/v1/tokens", "Any"),
    ("DELETE", "/api/v1/tokens/{id}", "Any"),
    ("GET", "/api/v1/admin/orgs", "Admin"),
    ("POST", "/api/v1/admin/orgs", "Admin"),
    ("POST", "/api/v1/admin/orgs/{name}/policy", "Admin"),
    ("GET", "/api/v1/admin/users", "Admin"),
    ("POST", "/api/v1/admin/users", "Admin"),
    ("GET", "/api/v1/admin/users/{name}", "Admin"),
    ("POST", "/api/v1/admin/users/{name}/disable", "Admin"),
    ("POST", "/api/v1/admin/users/{name}/enable", "Admin"),
    ("POST", "/api/v1/admin/users/{name}/unlock", "Admin"),
    ("POST", "/api/v1/admin/users/{name}/reset-mfa", "Admin"),
    ("POST", "/api/v1/admin/users/{name}/password", "Admin"),
    ("POST", "/api/v1/admin/users/{name}/keys", "Admin"),
    ("DELETE", "/api/v1/admin/users/{name}/keys", "Admin"),
    ("GET", "/api/v1/admin/folders", "Admin"),
    ("POST", "/api/v1/admin/folders", "Admin"),
    ("GET", "/api/v1/admin/grants", "Admin"),
    ("POST", "/api/v1/admin/grants", "Admin"),
    ("DELETE", "/api/v1/admin/grants", "Admin"),
    ("GET", "/api/v1/admin/audit", "Admin"),
    ("GET", "/api/v1/admin/sessions", "Admin"),
    ("GET", "/api/v1/admin/tokens", "Admin"),
    ("DELETE", "/api/v1/admin/tokens/{id}", "Admin"),
    ("POST", "/api/v1/uploads", "Transfer"),
    ("GET", "/api/v1/uploads/{id}", "Transfer"),
    ("PUT", "/api/v1/uploads/{id}", "Transfer"),
    ("POST", "/api/v1/uploads/{id}/commit", "Transfer"),
    ("DELETE", "/api/v1/uploads/{id}", "Transfer"),
];

fn live_table() -> BTreeSet<(String, String, String)> {
    lockbox_web::route_table()
        .into_iter()
        .map(|r| (r.method, r.path.to_owned(), format!("{:?}", r.access)))
        .collect()
}

#[test]
fn route_table_equals_the_matrix() {
    let live = live_table();
    let mine: BTreeSet<(String, String, String)> = EXPECTED
        .iter()
        .map(|(m, p, a)| (m.to_string(), p.to_string(), a.to_string()))
        .collect();
    assert_eq!(mine.len(), EXPECTED.len(), "EXPECTED lists a route twice");
    let missing: Vec<_> = live.difference(&mine).collect();
    let extra: Vec<_> = mine.difference(&live).collect();
    let listing: String = lockbox_web::route_table()
        .iter()
        .map(|r| {
            format!(
                "    (\"{}\", \"{}\", \"{:?}\"),\n",
                r.method, r.path, r.access
            )
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the authorization matrix is out of date.\n\
         routes the server has that EXPECTED lacks (add them, with the access they must need): {missing:?}\n\
         routes in EXPECTED the server does not have (or with another access): {extra:?}\n\
         the server's table:\n{listing}"
    );
}

/// Everything the live checks need.
struct World {
    s: TestServer,
    web: Web,
    /// Content of organization A's files; must never reach anyone else.
    marker: String,
    alice: Browser,
    alice_token: String,
    alice_token_id: String,
    alice_upload: String,
    bob: Browser,
    bob_token: String,
    admin: Browser,
    admin_token: String,
    admin_plain_token: String,
}

fn world() -> World {
    let s = TestServer::start();
    s.create_org("alpha");
    s.create_org("beta");
    s.create_user("alpha", "alice", "transfer", PASSWORD);
    s.create_user("beta", "bob", "transfer", PASSWORD);
    s.create_user("beta", "dave", "transfer", PASSWORD);
    s.create_user("alpha", "root", "admin", PASSWORD);
    s.create_folder("alpha", "shared-a");
    s.grant_user("alpha", "shared-a", "alice", "all");
    let web = Web::new(&s);

    let alice_p = Person::new("alice", PASSWORD);
    let alice = web.sign_in(&alice_p);
    let (alice_token_id, alice_token) = web.create_token(&alice, "alice rw", "read,write", 1);
    let marker = format!("ALPHA-SECRET-{}", random_hex(16));
    for p in ["/shared-a/x.txt", "/home/secret-a.txt"] {
        web.put(&format!("/api/v1/files/content?path={}", qenc(p)))
            .bearer(&alice_token)
            .raw_body(marker.as_bytes(), "application/octet-stream")
            .send()
            .assert_status(201);
    }
    let up = web
        .post("/api/v1/uploads")
        .bearer(&alice_token)
        .json(&json!({"path": "/shared-a/partial.bin"}))
        .send();
    up.assert_status(201);
    let alice_upload = up.json()["id"].as_str().unwrap().to_owned();
    web.put(&format!("/api/v1/uploads/{alice_upload}?offset=0"))
        .bearer(&alice_token)
        .raw_body(marker.as_bytes(), "application/octet-stream")
        .send()
        .assert_status(200);

    let bob_p = Person::new("bob", PASSWORD);
    let bob = web.sign_in(&bob_p);
    let (_, bob_token) = web.create_token(&bob, "bob rw", "read,write", 1);

    let root_p = Person::new("root", PASSWORD);
    let admin = web.sign_in(&root_p);
    let (_, admin_token) = web.create_token(&admin, "root admin", "read,write,admin", 1);
    let (_, admin_plain_token) = web.create_token(&admin, "root plain", "read,write", 1);

    World {
        s,
        web,
        marker,
        alice,
        alice_token,
        alice_token_id,
        alice_upload,
        bob,
        bob_token,
        admin,
        admin_token,
        admin_plain_token,
    }
}

#[derive(Clone, Debug)]
enum B {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Call {
    method: String,
    path: String,
    body: B,
}

/// Concrete requests for a route, aimed at organization A's data where the route takes any.
fn calls(w: &World, method: &str, template: &str) -> Vec<Call> {
    let c = |path: String, body: B| Call {
        method: method.to_owned(),
        path,
        body,
    };
    let form = |fields: &[(&str, &str)]| {
        B::Form(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    // Organization A's data as a partner of B might name it: A's shared folder (not mounted for B),
    // `/home` (B's own home: A's file is not there), and A's home folder by its internal name.
    let a_files = [
        "/shared-a/x.txt",
        "/home/secret-a.txt",
        "/home.alice/secret-a.txt",
    ];
    let a_dirs = ["/shared-a", "/home.alice"];
    match (method, template) {
        ("GET", "/assets/{name}") => vec![c("/assets/app.css".into(), B::None)],
        ("POST", "/login") => vec![c(
            "/login".into(),
            form(&[("user", "alice"), ("password", PASSWORD)]),
        )],
        ("POST", "/login/totp") | ("POST", "/login/enroll") => {
            vec![c(template.into(), form(&[("code", "123456")]))]
        }
        ("GET", "/files") | ("GET", "/api/v1/files") => a_dirs
            .iter()
            .map(|d| c(format!("{template}?path={}", qenc(d)), B::None))
            .collect(),
        ("GET", "/api/v1/files/content") | ("DELETE", "/api/v1/files") => a_files
            .iter()
            .map(|f| c(format!("{template}?path={}", qenc(f)), B::None))
            .collect(),
        ("PUT", "/api/v1/files/content") => a_dirs
            .iter()
            .map(|d| {
                c(
                    format!("{template}?path={}", qenc(&format!("{d}/planted.txt"))),
                    B::Bytes(b"planted by another organization".to_vec()),
                )
            })
            .collect(),
        ("POST", "/api/v1/files/rename") => a_files
            .iter()
            .map(|f| {
                c(
                    template.into(),
                    B::Json(json!({"from": f, "to": "/home/stolen.txt"})),
                )
            })
            .chain([c(
                template.into(),
                B::Json(
                    json!({"from": "/home/nothing.txt", "to": "/shared-a/x.txt", "replace": true}),
                ),
            )])
            .collect(),
        ("POST", "/api/v1/files/mkdir") => a_dirs
            .iter()
            .map(|d| {
                c(
                    template.into(),
                    B::Json(json!({"path": format!("{d}/planted")})),
                )
            })
            .collect(),
        ("POST", "/files/delete") => a_files
            .iter()
            .map(|f| c(template.into(), form(&[("path", f)])))
            .collect(),
        ("POST", "/files/mkdir") => a_dirs
            .iter()
            .map(|d| c(template.into(), form(&[("dir", d), ("name", "planted")])))
            .collect(),
        ("POST", "/files/rename") => a_files
            .iter()
            .map(|f| {
                c(
                    template.into(),
                    form(&[("from", f), ("new_name", "stolen.txt")]),
                )
            })
            .collect(),
        ("POST", "/api/v1/uploads") => a_dirs
            .iter()
            .map(|d| {
                c(
                    template.into(),
                    B::Json(json!({"path": format!("{d}/planted.bin"), "resume": true})),
                )
            })
            .collect(),
        (_, t) if t.starts_with("/api/v1/uploads/{id}") => {
            let path = t.replace("{id}", &w.alice_upload);
            let body = match method {
                "PUT" => B::Bytes(b"appended by another organization".to_vec()),
                "POST" => B::Json(json!({})),
                _ => B::None,
            };
            let path = if method == "PUT" {
                format!("{path}?offset={}", w.marker.len())
            } else {
                path
            };
            vec![c(path, body)]
        }
        ("DELETE", "/api/v1/tokens/{id}") => {
            vec![c(format!("/api/v1/tokens/{}", w.alice_token_id), B::None)]
        }
        ("POST", "/account/tokens/{id}/revoke") => vec![c(
            format!("/account/tokens/{}/revoke", w.alice_token_id),
            form(&[]),
        )],
        ("POST", "/api/v1/tokens") => vec![c(
            template.into(),
            B::Json(json!({"name": "matrix", "scopes": "read", "days": 1})),
        )],
        ("POST", "/api/v1/admin/grants") => vec![c(
            template.into(),
            B::Json(
                json!({"org": "alpha", "folder": "shared-a", "user": "bob", "permissions": "all"}),
            ),
        )],
        ("POST", "/account/tokens") => vec![c(
            template.into(),
            form(&[("name", "matrix"), ("read", "on"), ("days", "1")]),
        )],
        _ => {
            // Generic filling for routes without a special case (e.g. admin routes added later):
            // `{name}` is `dave`, a user of the other organization kept for this (administrators may
            // disable him or reset his password), `{id}` and anything else random.
            let mut path = template.replace("{name}", "dave");
            while let (Some(i), Some(j)) = (path.find('{'), path.find('}')) {
                if j < i {
                    break;
                }
                path.replace_range(i..=j, &random_hex(8));
            }
            let body = match method {
                "GET" | "DELETE" => B::None,
                _ if path.starts_with("/api/") => B::Json(json!({})),
                _ => form(&[]),
            };
            vec![c(path, body)]
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    BobToken,
    BobBrowser,
    AdminBrowser,
    AdminToken,
    AdminPlainToken,
}

fn send(w: &World, who: Who, call: &Call) -> Resp {
    let mut r = w.web.req(&call.method, &call.path);
    r = match who {
        Who::Nobody => r,
        Who::BobToken => r.bearer(&w.bob_token),
        Who::BobBrowser => r.browser(&w.bob),
        Who::AdminBrowser => r.browser(&w.admin),
        Who::AdminToken => r.bearer(&w.admin_token),
        Who::AdminPlainToken => r.bearer(&w.admin_plain_token),
    };
    // Browser forms carry the CSRF field as well as the header (either is enough).
    let csrf = match who {
        Who::BobBrowser => Some(w.bob.csrf.clone()),
        Who::AdminBrowser => Some(w.admin.csrf.clone()),
        _ => None,
    };
    r = match &call.body {
        B::None => r,
        B::Json(v) => r.json(v),
        B::Bytes(b) => r.raw_body(b, "application/octet-stream"),
        B::Form(fields) => {
            let mut f: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if let Some(c) = &csrf {
                f.push(("csrf", c));
            }
            r.form(&f)
        }
    };
    r.max_secs(30).send()
}

#[test]
fn authorization_matrix_against_a_live_server() {
    let w = world();
    let mut failures: Vec<String> = Vec::new();
    let mut fail = |msg: String| failures.push(msg);
    let mut checked = 0usize;

    for (method, template, access) in EXPECTED {
        // Signing out ends the session under test; checked separately below.
        let skip_signed_in = *method == "POST" && *template == "/logout";
        for call in calls(&w, method, template) {
            let whos: &[Who] = if skip_signed_in {
                &[Who::Nobody]
            } else {
                &[
                    Who::Nobody,
                    Who::BobToken,
                    Who::BobBrowser,
                    Who::AdminBrowser,
                    Who::AdminToken,
                    Who::AdminPlainToken,
                ]
            };
            for &who in whos {
                let r = send(&w, who, &call);
                checked += 1;
                let ctx = format!("{who:?} {} {} [{access}]", call.method, call.path);
                if r.status == 0 || r.status >= 500 {
                    fail(format!("{ctx}: no clean answer:\n{}", r.describe()));
                    continue;
                }
                let is_bob = matches!(who, Who::BobToken | Who::BobBrowser);
                let is_admin = matches!(
                    who,
                    Who::AdminBrowser | Who::AdminToken | Who::AdminPlainToken
                );
                if (is_bob || who == Who::Nobody || is_admin)
                    && contains_bytes(&r.body, w.marker.as_bytes())
                {
                    fail(format!(
                        "{ctx}: organization A's file content returned:\n{}",
                        r.describe()
                    ));
                }
                let st = r.status;
                let ok = match (*access, who) {
                    ("Public", _) => st != 401,
                    (_, Who::Nobody) => st == 401,
                    ("LoginStep", _) => st == 401,
                    ("Transfer", _) if is_admin => st == 403,
                    ("Transfer", _) => st == 403 || st == 404,
                    ("Admin", Who::AdminBrowser) | ("Admin", Who::AdminToken) => {
                        st != 401 && st != 403
                    }
                    ("Admin", _) => st == 403,
                    ("Any", _) => {
                        if template.contains("{id}") {
                            // Another user's token: as if it did not exist, or refused.
                            st == 403 || st == 404
                        } else if *template == "/api/v1/tokens"
                            && *method == "POST"
                            && matches!(who, Who::BobToken | Who::AdminToken | Who::AdminPlainToken)
                        {
                            // A token cannot mint tokens.
                            st == 403
                        } else {
                            st != 401
                        }
                    }
                    _ => false,
                };
                if !ok {
                    fail(format!("{ctx}: wrong status {st}:\n{}", r.describe()));
                }
                if (200..300).contains(&st) && is_bob && *access == "Transfer" {
                    fail(format!(
                        "{ctx}: a partner of another organization got a 2xx"
                    ));
                }
            }
        }
    }

    // LoginStep routes with another person's browser session but no login cookie: still refused.
    for (m, p) in [("GET", "/login/totp"), ("GET", "/login/enroll")] {
        let r = w.web.req(m, p).browser(&w.bob).send();
        if r.status != 401 {
            failures.push(format!(
                "{m} {p} with a full session but no login cookie: {}",
                r.describe()
            ));
        }
    }

    // Nothing of A's changed: files, the open upload and the token are intact.
    for p in ["/shared-a/x.txt", "/home/secret-a.txt"] {
        let r = w
            .web
            .get(&format!("/api/v1/files/content?path={}", qenc(p)))
            .bearer(&w.alice_token)
            .send();
        if r.status != 200 || r.body != w.marker.as_bytes() {
            failures.push(format!(
                "alice's {p} changed or unreadable:\n{}",
                r.describe()
            ));
        }
    }
    let listing = w
        .web
        .get("/api/v1/files?path=/shared-a")
        .browser(&w.alice)
        .send();
    let names: Vec<String> = listing.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    if names != ["x.txt"] {
        failures.push(format!("alice's shared folder changed: {names:?}"));
    }
    let st = w
        .web
        .get(&format!("/api/v1/uploads/{}", w.alice_upload))
        .bearer(&w.alice_token)
        .send();
    if st.status != 200 || st.json()["offset"] != json!(w.marker.len()) {
        failures.push(format!(
            "alice's open upload was touched:\n{}",
            st.describe()
        ));
    }
    // Bob's own view has nothing of A's.
    let bl = w
        .web
        .get("/api/v1/files?path=/")
        .bearer(&w.bob_token)
        .send();
    bl.assert_status(200);
    let mounts: Vec<String> = bl.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    if mounts != ["home"] {
        failures.push(format!("bob sees mounts {mounts:?}"));
    }
    let bt = w.web.get("/api/v1/tokens").bearer(&w.bob_token).send();
    if bt.text().contains(&w.alice_token_id) {
        failures.push(format!(
            "bob's token list shows alice's token:\n{}",
            bt.describe()
        ));
    }
    // Positive controls: the same request shapes work for their owner, so the refusals above are
    // authorization and not malformed requests.
    let me = w.web.get("/api/v1/me").bearer(&w.alice_token).send();
    if me.status != 200 || me.json()["user"] != "alice" {
        failures.push(format!("alice's token stopped working:\n{}", me.describe()));
    }
    let m = w.web.get("/metrics").bearer(&w.admin_token).send();
    if m.status != 200 {
        failures.push(format!("admin-scoped token on /metrics:\n{}", m.describe()));
    }
    let m = w.web.get("/metrics").browser(&w.admin).send();
    if m.status != 200 {
        failures.push(format!("admin browser on /metrics:\n{}", m.describe()));
    }

    // POST /logout (last: it ends bob's session): signs out, after which the cookie is refused.
    let r = w
        .web
        .post("/logout")
        .browser(&w.bob)
        .form(&[("csrf", &w.bob.csrf)])
        .send();
    if r.status != 303 {
        failures.push(format!("logout:\n{}", r.describe()));
    }
    let r = w.web.get("/account").browser(&w.bob).send();
    if r.status != 401 {
        failures.push(format!(
            "session still valid after logout:\n{}",
            r.describe()
        ));
    }

    w.s.cli_ok(&["audit", "verify"]);
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n\n{}\n--- server log ---\n{}",
        failures.len(),
        failures.join("\n\n"),
        w.s.log()
    );
}
