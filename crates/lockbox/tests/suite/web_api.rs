//! The HTTPS API driven by the real `curl` CLI, and cross-checked with the real OpenSSH `sftp`:
//! resumable uploads that survive a killed part, HTTP ranges, files moving between the two doors
//! byte-identically (with the audit log naming the door), token scopes, expiry and revocation,
//! health, metrics and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::time::{Duration, Instant};

use common::web::*;
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A server with org `acme` and transfer user `alice` (password and ed25519 key), her browser
/// session and a read-write token.
struct Alice {
    s: TestServer,
    web: Web,
    key: std::path::PathBuf,
    person: Person,
    browser: Browser,
    token: String,
}

fn alice() -> Alice {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let web = Web::new(&s);
    let person = Person::new("alice", PASSWORD);
    let browser = web.sign_in(&person);
    let (_, token) = web.create_token(&browser, "api test", "read,write", 1);
    Alice {
        s,
        web,
        key,
        person,
        browser,
        token,
    }
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn content_url(path: &str) -> String {
    format!("/api/v1/files/content?path={}", qenc(path))
}

fn entry_names(listing: &serde_json::Value) -> Vec<(String, u64)> {
    listing["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {listing}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// GET the upload's status until no part is in flight (the server notices a dropped connection
/// a moment after the client died).
fn upload_offset(a: &Alice, id: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = a
            .web
            .get(&format!("/api/v1/uploads/{id}"))
            .bearer(&a.token)
            .send();
        if r.status == 200 {
            return r.json()["offset"].as_u64().unwrap();
        }
        assert_eq!(r.status, 409, "upload status:\n{}", r.describe());
        assert!(
            Instant::now() < deadline,
            "upload stayed busy:\n{}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn resumable_upload_survives_a_killed_part_and_downloads_identically() {
    let _heavy = heavy_lock();
    let mut a = alice();
    let dir = a.s.dir.path();
    let total = 24 * MIB;
    let local = dir.join("big.bin");
    let want = write_random_file(&local, total);
    let data = std::fs::read(&local).unwrap();
    let part1 = 4 * MIB;
    let p1 = dir.join("part1");
    std::fs::write(&p1, &data[..part1]).unwrap();
    let rest = dir.join("rest");
    std::fs::write(&rest, &data[part1..]).unwrap();

    let r = a
        .web
        .post("/api/v1/uploads")
        .bearer(&a.token)
        .json(&json!({"path": "/home/big.bin"}))
        .send();
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["offset"], 0);

    let r = a
        .web
        .put(&format!("/api/v1/uploads/{id}?offset=0"))
        .bearer(&a.token)
        .file(&p1)
        .send();
    r.assert_status(200);
    assert_eq!(r.json()["offset"].as_u64(), Some(part1 as u64));

    // A part at the wrong offset: 409, and the detail names the right one.
    let r = a
        .web
        .put(&format!("/api/v1/uploads/{id}?offset=0"))
        .bearer(&a.token)
        .raw_body(b"overlap", "application/octet-stream")
        .send();
    r.assert_status(409);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&part1.to_string()),
        "409 does not name the current offset {part1}:\n{}",
        r.describe()
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    // The rest, throttled to 2 MB/s and killed after 2 s: the part breaks mid-body.
    let r = a
        .web
        .put(&format!("/api/v1/uploads/{id}?offset={part1}"))
        .bearer(&a.token)
        .file(&rest)
        .arg("--limit-rate")
        .arg("2M")
        .max_secs(2)
        .send();
    assert_eq!(
        r.exit,
        Some(28),
        "the interrupted part was expected to time out:\n{}",
        r.describe()
    );
    let got = upload_offset(&a, &id);
    assert!(
        got > part1 as u64 && got < total as u64,
        "after the interrupted part the server has {got} bytes (part 1 was {part1}, total {total})"
    );
    // Not visible before the commit.
    let l = a
        .web
        .get("/api/v1/files?path=/home")
        .bearer(&a.token)
        .send();
    assert!(
        !entry_names(&l.json()).iter().any(|(n, _)| n == "big.bin"),
        "an uncommitted upload is listed:\n{}",
        l.describe()
    );

    // Resume from where the server says, commit with a wrong size (refused), then the right one.
    let tail = dir.join("tail");
    std::fs::write(&tail, &data[got as usize..]).unwrap();
    let r = a
        .web
        .put(&format!("/api/v1/uploads/{id}?offset={got}"))
        .bearer(&a.token)
        .file(&tail)
        .send();
    r.assert_status(200);
    assert_eq!(r.json()["offset"].as_u64(), Some(total as u64));
    let r = a
        .web
        .post(&format!("/api/v1/uploads/{id}/commit"))
        .bearer(&a.token)
        .json(&json!({"size": total + 1}))
        .send();
    r.assert_status(409);
    let r = a
        .web
        .post(&format!("/api/v1/uploads/{id}/commit"))
        .bearer(&a.token)
        .json(&json!({"size": total}))
        .send();
    r.assert_status(201);
    assert_eq!(r.json()["sha256"].as_str(), Some(want.as_str()));
    assert_eq!(r.json()["size"].as_u64(), Some(total as u64));
    // The id is spent.
    a.web
        .get(&format!("/api/v1/uploads/{id}"))
        .bearer(&a.token)
        .send()
        .assert_status(404);

    let r = a
        .web
        .get(&content_url("/home/big.bin"))
        .bearer(&a.token)
        .send();
    r.assert_status(200);
    assert_eq!(r.body.len(), total);
    assert_eq!(sha_hex(&r.body), want, "downloaded content differs");
    a.s.assert_alive("after the resumable upload");
}

#[test]
fn range_downloads() {
    let a = alice();
    let size = 10_000usize;
    let mut data = vec![0u8; size];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut data);
    a.web
        .put(&content_url("/home/r.bin"))
        .bearer(&a.token)
        .raw_body(&data, "application/octet-stream")
        .send()
        .assert_status(201);
    let get = |range: Option<&str>| {
        let mut r = a.web.get(&content_url("/home/r.bin")).bearer(&a.token);
        if let Some(x) = range {
            r = r.arg("-r").arg(x);
        }
        r.send()
    };

    let full = get(None);
    full.assert_status(200);
    assert_eq!(full.body, data);
    let cd = full.header("content-disposition").unwrap_or_default();
    assert!(cd.starts_with("attachment"), "Content-Disposition: {cd:?}");
    assert!(
        cd.contains("r.bin"),
        "Content-Disposition lacks the name: {cd:?}"
    );
    assert_eq!(
        full.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(full.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("cache-control"), Some("no-store"));

    let cases: [(&str, usize, usize); 3] = [
        ("100-199", 100, 199),
        ("-10", size - 10, size - 1),
        ("5-", 5, size - 1),
    ];
    for (spec, start, end) in cases {
        let r = get(Some(spec));
        assert_eq!(r.status, 206, "range {spec}:\n{}", r.describe());
        assert_eq!(r.body, &data[start..=end], "range {spec}: wrong bytes");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{size}").as_str()),
            "range {spec}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert!(r
            .header("content-disposition")
            .unwrap_or_default()
            .starts_with("attachment"));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // An end past the file is clamped.
    let r = get(Some("9990-20000"));
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[9990..]);
    // Unsatisfiable.
    for spec in ["20000-", "10000-10005", "-0"] {
        let r = get(Some(spec));
        assert_eq!(r.status, 416, "range {spec}:\n{}", r.describe());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{size}").as_str()),
            "range {spec}"
        );
    }
    // Garbage in the Range header is ignored (whole file) or refused, never a 5xx.
    for h in [
        "Range: bytes=abc-def",
        "Range: pages=1-2",
        "Range: bytes=1-2,5-6",
        "Range: bytes=99999999999999999999999-",
    ] {
        let r = a
            .web
            .get(&content_url("/home/r.bin"))
            .bearer(&a.token)
            .header(h)
            .send();
        assert!(
            [200, 206, 416].contains(&r.status),
            "{h}:\n{}",
            r.describe()
        );
        if r.status == 200 {
            assert_eq!(r.body, data, "{h}: whole-file answer with other bytes");
        }
    }
}

#[test]
fn files_cross_between_the_https_api_and_openssh_sftp() {
    let a = alice();
    let dir = a.s.dir.path();
    let api_local = dir.join("api.bin");
    let api_sha = write_random_file(&api_local, 3 * MIB + 17);
    let r = a
        .web
        .put(&content_url("/home/api.bin"))
        .bearer(&a.token)
        .file(&api_local)
        .send();
    r.assert_status(201);
    assert_eq!(r.json()["sha256"].as_str(), Some(api_sha.as_str()));

    // Down with sftp (key), byte-identical.
    let back = dir.join("api.back");
    a.s.sftp_ok(
        "alice",
        Auth::Key(&a.key),
        &format!("get /home/api.bin {}\n", back.display()),
    );
    assert_eq!(
        sha256_file(&back),
        api_sha,
        "sftp got other bytes than the API stored"
    );

    // Up with sftp (password), down with curl.
    let sftp_local = dir.join("sftp.bin");
    let sftp_sha = write_random_file(&sftp_local, 2 * MIB + 5);
    a.s.sftp_ok(
        "alice",
        Auth::Password(PASSWORD),
        &format!("put {} /home/sftp.bin\n", sftp_local.display()),
    );
    let r = a
        .web
        .get(&content_url("/home/sftp.bin"))
        .bearer(&a.token)
        .send();
    r.assert_status(200);
    assert_eq!(
        sha_hex(&r.body),
        sftp_sha,
        "the API returned other bytes than sftp stored"
    );
    // The same through the browser session.
    let r = a
        .web
        .get(&content_url("/home/sftp.bin"))
        .browser(&a.browser)
        .send();
    r.assert_status(200);
    assert_eq!(sha_hex(&r.body), sftp_sha);

    let l = a
        .web
        .get("/api/v1/files?path=/home")
        .bearer(&a.token)
        .send();
    l.assert_status(200);
    let names = entry_names(&l.json());
    assert!(
        names.contains(&("api.bin".into(), (3 * MIB + 17) as u64)),
        "{names:?}"
    );
    assert!(
        names.contains(&("sftp.bin".into(), (2 * MIB + 5) as u64)),
        "{names:?}"
    );
    let sftp_ls = a.s.sftp_ok("alice", Auth::Key(&a.key), "ls -ln /home\n");
    assert_eq!(
        ls_size(&sftp_ls, "api.bin"),
        Some((3 * MIB + 17) as u64),
        "{sftp_ls}"
    );

    // The audit log names the door of each upload.
    let recs = audit_records(&a.s);
    let committed = |name: &str| {
        recs.iter()
            .filter(|r| {
                r["action"] == "upload_committed"
                    && r["target"].as_str().unwrap_or_default().ends_with(name)
            })
            .map(|r| r["door"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        committed("api.bin"),
        ["https"],
        "upload_committed records for api.bin"
    );
    assert_eq!(
        committed("sftp.bin"),
        ["sftp"],
        "upload_committed records for sftp.bin"
    );
    let api_rec = recs
        .iter()
        .find(|r| r["action"] == "upload_committed" && r["door"] == "https")
        .unwrap();
    assert_eq!(api_rec["actor"], "alice");
    assert!(
        api_rec.to_string().contains(&api_sha),
        "the https upload record lacks the SHA-256: {api_rec}"
    );
    a.s.cli_ok(&["audit", "verify"]);
}

#[test]
fn delete_rename_and_mkdir_through_the_api_show_in_sftp() {
    let a = alice();
    for name in ["keep.txt", "old.txt", "gone.txt"] {
        a.web
            .put(&content_url(&format!("/home/{name}")))
            .bearer(&a.token)
            .raw_body(name.as_bytes(), "application/octet-stream")
            .send()
            .assert_status(201);
    }
    a.web
        .post("/api/v1/files/mkdir")
        .bearer(&a.token)
        .json(&json!({"path": "/home/newdir"}))
        .send()
        .assert_status(201);
    a.web
        .post("/api/v1/files/mkdir")
        .bearer(&a.token)
        .json(&json!({"path": "/home/newdir"}))
        .send()
        .assert_status(409);
    a.web
        .post("/api/v1/files/mkdir")
        .bearer(&a.token)
        .json(&json!({"path": "/home/emptydir"}))
        .send()
        .assert_status(201);
    a.web
        .post("/api/v1/files/rename")
        .bearer(&a.token)
        .json(&json!({"from": "/home/old.txt", "to": "/home/newdir/new.txt"}))
        .send()
        .assert_status(204);
    // Renaming onto an existing file needs `replace`.
    let r = a
        .web
        .post("/api/v1/files/rename")
        .bearer(&a.token)
        .json(&json!({"from": "/home/keep.txt", "to": "/home/newdir/new.txt"}))
        .send();
    assert!(
        r.status == 409 || r.status == 403,
        "rename over an existing file:\n{}",
        r.describe()
    );
    a.web
        .delete(&format!("/api/v1/files?path={}", qenc("/home/gone.txt")))
        .bearer(&a.token)
        .send()
        .assert_status(204);
    a.web
        .delete(&format!("/api/v1/files?path={}", qenc("/home/emptydir")))
        .bearer(&a.token)
        .send()
        .assert_status(204);
    // A non-empty directory is refused.
    a.web
        .delete(&format!("/api/v1/files?path={}", qenc("/home/newdir")))
        .bearer(&a.token)
        .send()
        .assert_status(409);
    a.web
        .delete(&format!("/api/v1/files?path={}", qenc("/home/gone.txt")))
        .bearer(&a.token)
        .send()
        .assert_status(404);

    let out = a.s.sftp_ok(
        "alice",
        Auth::Key(&a.key),
        "ls -1 /home\nls -1 /home/newdir\n",
    );
    let lines: Vec<&str> = out.lines().map(|l| l.trim()).collect();
    let has = |n: &str| {
        lines
            .iter()
            .any(|l| *l == n || l.ends_with(&format!("/{n}")))
    };
    assert!(has("keep.txt"), "keep.txt missing in sftp:\n{out}");
    assert!(has("newdir"), "newdir missing in sftp:\n{out}");
    assert!(has("new.txt"), "renamed file missing in sftp:\n{out}");
    assert!(!has("old.txt"), "old name still listed in sftp:\n{out}");
    assert!(
        !has("gone.txt"),
        "deleted file still listed in sftp:\n{out}"
    );
    assert!(
        !has("emptydir"),
        "deleted directory still listed in sftp:\n{out}"
    );
    let back = a.s.dir.path().join("new.back");
    a.s.sftp_ok(
        "alice",
        Auth::Key(&a.key),
        &format!("get /home/newdir/new.txt {}\n", back.display()),
    );
    assert_eq!(std::fs::read(&back).unwrap(), b"old.txt");
}

#[test]
fn token_scopes_expiry_and_revocation() {
    let a = alice();
    let (ro_id, ro) = a.web.create_token(&a.browser, "read only", "read", 1);
    let (_, wo) = a.web.create_token(&a.browser, "write only", "write", 1);
    let (rev_id, rev) = a.web.create_token(&a.browser, "to revoke", "read,write", 1);
    let (exp_id, exp) = a.web.create_token(&a.browser, "to expire", "read,write", 1);

    // Read-only: can list and read, cannot upload, delete, mkdir or rename.
    a.web
        .put(&content_url("/home/f.txt"))
        .bearer(&a.token)
        .raw_body(b"hello", "application/octet-stream")
        .send()
        .assert_status(201);
    a.web
        .get("/api/v1/files?path=/home")
        .bearer(&ro)
        .send()
        .assert_status(200);
    let r = a.web.get(&content_url("/home/f.txt")).bearer(&ro).send();
    r.assert_status(200);
    assert_eq!(r.body, b"hello");
    let writes = [
        a.web
            .put(&content_url("/home/ro.txt"))
            .bearer(&ro)
            .raw_body(b"x", "application/octet-stream")
            .send(),
        a.web
            .post("/api/v1/uploads")
            .bearer(&ro)
            .json(&json!({"path": "/home/ro2.txt"}))
            .send(),
        a.web
            .delete(&format!("/api/v1/files?path={}", qenc("/home/f.txt")))
            .bearer(&ro)
            .send(),
        a.web
            .post("/api/v1/files/mkdir")
            .bearer(&ro)
            .json(&json!({"path": "/home/rodir"}))
            .send(),
        a.web
            .post("/api/v1/files/rename")
            .bearer(&ro)
            .json(&json!({"from": "/home/f.txt", "to": "/home/g.txt"}))
            .send(),
    ];
    for r in &writes {
        assert_eq!(r.status, 403, "read-only token wrote:\n{}", r.describe());
    }
    // Write-only cannot read.
    let r = a.web.get(&content_url("/home/f.txt")).bearer(&wo).send();
    assert_eq!(r.status, 403, "write-only token read:\n{}", r.describe());
    // A token cannot mint tokens.
    let r = a
        .web
        .post("/api/v1/tokens")
        .bearer(&a.token)
        .json(&json!({"name": "child", "scopes": "read", "days": 1}))
        .send();
    assert_eq!(r.status, 403, "a token minted a token:\n{}", r.describe());
    // Nothing changed.
    let l = a
        .web
        .get("/api/v1/files?path=/home")
        .bearer(&a.token)
        .send();
    assert_eq!(entry_names(&l.json()), [("f.txt".to_string(), 5)]);

    // Revoked: 401 from then on.
    a.web
        .get("/api/v1/me")
        .bearer(&rev)
        .send()
        .assert_status(200);
    a.web
        .delete(&format!("/api/v1/tokens/{rev_id}"))
        .browser(&a.browser)
        .send()
        .assert_status(204);
    let r = a.web.get("/api/v1/me").bearer(&rev).send();
    assert_eq!(r.status, 401, "revoked token accepted:\n{}", r.describe());
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .starts_with("Bearer"));
    let r = a.web.get("/api/v1/files?path=/home").bearer(&rev).send();
    assert_eq!(r.status, 401);

    // Expired (its expiry moved into the past in the database): 401.
    a.web
        .get("/api/v1/me")
        .bearer(&exp)
        .send()
        .assert_status(200);
    {
        let conn = rusqlite::Connection::open(db_path(&a.s.data_dir)).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let n = conn
            .execute(
                "UPDATE api_tokens SET expires = ?1 WHERE id = ?2",
                rusqlite::params![unix_now() as i64 - 5, exp_id],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let r = a.web.get("/api/v1/me").bearer(&exp).send();
    assert_eq!(r.status, 401, "expired token accepted:\n{}", r.describe());
    let r = a.web.get(&content_url("/home/f.txt")).bearer(&exp).send();
    assert_eq!(r.status, 401);

    // A token with a wrong secret but a real id, and a malformed one.
    let forged = format!("lbx_{ro_id}_{}", "A".repeat(43));
    assert_eq!(a.web.get("/api/v1/me").bearer(&forged).send().status, 401);
    assert_eq!(
        a.web.get("/api/v1/me").bearer("lbx_nonsense").send().status,
        401
    );
    assert_eq!(
        a.web
            .get("/api/v1/me")
            .header("Authorization: Basic YWxpY2U6eA==")
            .send()
            .status,
        401
    );
    // The good tokens still work; the listing shows revoked/expired state, never secrets.
    a.web
        .get("/api/v1/me")
        .bearer(&ro)
        .send()
        .assert_status(200);
    let l = a.web.get("/api/v1/tokens").browser(&a.browser).send();
    l.assert_status(200);
    let text = l.text();
    for secret in [&ro, &wo, &rev, &exp, &a.token] {
        let s = secret.rsplit('_').next().unwrap();
        assert!(!text.contains(s), "token listing leaks a secret: {text}");
    }
    let listed = l.json();
    let revoked = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == rev_id.as_str())
        .unwrap();
    assert_eq!(revoked["revoked"], true);
    let _ = &a.person;
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| t.split('{').next())
                == Some(name)
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn health_metrics_and_openapi() {
    let a = alice();
    let r = a.web.get("/healthz").send();
    r.assert_status(200);
    let r = a.web.get("/readyz").send();
    r.assert_status(200);

    // /metrics: administrators with an admin-scoped token (or a session) only.
    a.s.create_user("acme", "root", "admin", PASSWORD);
    let root = Person::new("root", PASSWORD);
    let rb = a.web.sign_in(&root);
    let (_, admin_tok) = a.web.create_token(&rb, "metrics", "read,admin", 1);
    let (_, plain_tok) = a.web.create_token(&rb, "no admin", "read", 1);
    let r = a.web.get("/metrics").send();
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(a.web.get("/metrics").bearer(&a.token).send().status, 403);
    assert_eq!(a.web.get("/metrics").browser(&a.browser).send().status, 403);
    assert_eq!(a.web.get("/metrics").bearer(&plain_tok).send().status, 403);

    let before = a.web.get("/metrics").bearer(&admin_tok).send();
    before.assert_status(200);
    assert!(
        before
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{:?}",
        before.header("content-type")
    );
    let b = before.text();
    assert!(
        b.contains("# TYPE lockbox_uploaded_bytes_total counter"),
        "{b}"
    );
    let size = 123_457usize;
    let body = vec![7u8; size];
    a.web
        .put(&content_url("/home/m.bin"))
        .bearer(&a.token)
        .raw_body(&body, "application/octet-stream")
        .send()
        .assert_status(201);
    a.web
        .get(&content_url("/home/m.bin"))
        .bearer(&a.token)
        .send()
        .assert_status(200);
    // A refused login moves the failure counter.
    a.web
        .with_source("127.0.0.9")
        .password_step("alice", "wrong-password-123")
        .assert_status(401);
    let after = a.web.get("/metrics").browser(&rb).send();
    after.assert_status(200);
    let t = after.text();
    let moved = |name: &str, by: u64| {
        let (x, y) = (metric(&b, name), metric(&t, name));
        assert!(
            y >= x + by,
            "{name} went from {x} to {y}, expected +{by}\n{t}"
        );
    };
    moved("lockbox_uploaded_bytes_total", size as u64);
    moved("lockbox_uploads_committed_total", 1);
    moved("lockbox_downloads_total", 1);
    moved("lockbox_downloaded_bytes_total", size as u64);
    moved("lockbox_auth_failures_total", 1);
    assert!(metric(&t, "lockbox_logins_total") >= 3, "{t}");
    assert!(t.contains("lockbox_https_browser_sessions"), "{t}");

    // OpenAPI 3 document with the routes used above.
    let r = a.web.get("/api/v1/openapi.json").send();
    r.assert_status(200);
    let doc = r.json();
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3."),
        "openapi version: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (p, m) in [
        ("/api/v1/files", "get"),
        ("/api/v1/files", "delete"),
        ("/api/v1/files/content", "get"),
        ("/api/v1/files/content", "put"),
        ("/api/v1/files/rename", "post"),
        ("/api/v1/files/mkdir", "post"),
        ("/api/v1/uploads", "post"),
        ("/api/v1/uploads/{id}", "get"),
        ("/api/v1/uploads/{id}", "put"),
        ("/api/v1/uploads/{id}/commit", "post"),
        ("/api/v1/tokens", "post"),
        ("/api/v1/tokens/{id}", "delete"),
        ("/api/v1/me", "get"),
    ] {
        assert!(
            paths.get(p).and_then(|x| x.get(m)).is_some(),
            "OpenAPI lacks {m} {p}; has {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "no bearer security scheme"
    );
}

/// Recovery codes: shown once after enrolment, each signs in once in place of an app code.
#[test]
fn a_recovery_code_signs_in_once() {
    let a = alice();
    let page = a.web.get("/login/recovery").browser(&a.browser).send();
    page.assert_status(200);
    let html = page.text();
    let codes: Vec<String> = html
        .split("<li><code>")
        .skip(1)
        .filter_map(|r| r.split("</code>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    // Shown once: the page now just sends the browser on.
    let again = a.web.get("/login/recovery").browser(&a.browser).send();
    assert_eq!(again.status, 303, "{}", again.describe());

    let sign_in_with = |code: &str| {
        let r = a.web.password_step("alice", PASSWORD);
        assert_eq!(r.status, 303, "{}", r.describe());
        assert_eq!(r.header("location"), Some("/login/totp"));
        let login = r.set_cookie(LOGIN_COOKIE).unwrap();
        let page = a.web.get("/login/totp").cookie(LOGIN_COOKIE, &login).send();
        let csrf = hidden_csrf(&page.text()).unwrap();
        a.web
            .post("/login/totp")
            .cookie(LOGIN_COOKIE, &login)
            .form(&[("csrf", &csrf), ("code", code)])
            .send()
    };
    let ok = sign_in_with(&codes[3]);
    assert_eq!(ok.status, 303, "recovery code refused:\n{}", ok.describe());
    assert!(ok.set_cookie(SESSION_COOKIE).is_some_and(|c| !c.is_empty()));
    let reused = sign_in_with(&codes[3]);
    assert_eq!(
        reused.status,
        401,
        "a used recovery code must be refused:\n{}",
        reused.describe()
    );
    let audit = a.s.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(
        audit.contains("password+recovery_code"),
        "the recovery sign-in is audited as such"
    );
    let _ = &a.person;
}

/// The per-organization SFTP login policy is set from the admin API and shows in the CLI and the API.
#[test]
fn org_login_policy_through_the_admin_api() {
    let a = alice();
    a.s.create_user("acme", "root", "admin", PASSWORD);
    let admin = Person::new("root", PASSWORD);
    let token = a.web.token_for(&admin, "read,admin");
    a.web
        .post("/api/v1/admin/orgs/acme/policy")
        .bearer(&token)
        .json(&json!({"sftp_password_totp": true}))
        .send()
        .assert_status(204);
    let list = a.web.get("/api/v1/admin/orgs").bearer(&token).send();
    list.assert_status(200);
    let acme = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "acme")
        .cloned()
        .unwrap();
    assert_eq!(acme["sftp_password_totp"], true, "{acme}");
    let cli = a.s.cli_ok(&["org", "list", "--json"]);
    assert!(cli.contains("\"sftp_password_totp\":true"), "{cli}");
    let r = a
        .web
        .post("/api/v1/admin/orgs/nosuch/policy")
        .bearer(&token)
        .json(&json!({"sftp_password_totp": true}))
        .send();
    assert_eq!(r.status, 404, "{}", r.describe());
    // The partner's token is refused.
    let r = a
        .web
        .post("/api/v1/admin/orgs/acme/policy")
        .bearer(&a.token)
        .json(&json!({"sftp_password_totp": false}))
        .send();
    assert_eq!(r.status, 403, "{}", r.describe());
    let audit = a.s.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(audit.contains("\"org_policy_set\""));
}
