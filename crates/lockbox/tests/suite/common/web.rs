//! HTTPS client helpers: the real `curl` CLI against the server's HTTPS door, verified with the
//! server's own self-signed certificate (`--cacert DATA_DIR/https/cert.pem`), plus the browser
//! sign-in flow (password, TOTP enrolment or code) and API token creation.
//!
//! Requests can be sent from another loopback address (`Web::with_source("127.0.0.7")`), so a test
//! that provokes the per-source login throttle does not lock the rest of the test out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::{describe, run_with_timeout, tool_command, TestServer, CURL};

/// Default `--max-time` of one request.
pub const REQUEST_SECS: u64 = 60;

/// One HTTP answer as curl saw it. `status` is 0 when no response arrived (connection refused,
/// reset, timed out: see `exit` and `stderr`).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Headers of the final response, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// curl's exit code.
    pub exit: Option<i32>,
    pub stderr: String,
    /// What was asked, for messages.
    pub what: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}):\n{}",
                self.what,
                self.describe()
            )
        })
    }
    /// A short description for assertion messages (body cut at 2 KB).
    pub fn describe(&self) -> String {
        let body = self.text();
        let body: String = body.chars().take(2000).collect();
        format!(
            "{} -> status {} (curl exit {:?})\nheaders: {:?}\nbody: {}\ncurl stderr: {}",
            self.what, self.status, self.exit, self.headers, body, self.stderr
        )
    }
    /// The value of `name` in this response's `Set-Cookie` headers (empty if it was cleared).
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers_named("set-cookie").into_iter().find_map(|v| {
            let first = v.split(';').next()?.trim();
            let (k, val) = first.split_once('=')?;
            (k == name).then(|| val.to_owned())
        })
    }
    pub fn assert_status(&self, want: u16) -> &Resp {
        assert_eq!(self.status, want, "unexpected status:\n{}", self.describe());
        self
    }
}

/// Parses curl's `-D` dump: the last response's header block (earlier ones are 1xx or redirects).
fn parse_header_dump(dump: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<Vec<(String, String)>> = Vec::new();
    for line in dump.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("HTTP/") {
            blocks.push(Vec::new());
        } else if let (Some(b), Some((k, v))) = (blocks.last_mut(), line.split_once(':')) {
            b.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    blocks.pop().unwrap_or_default()
}

/// Runs `curl -sS --path-as-is -D H -o B -w %{http_code} ARGS...` (with `--max-time` from `max_secs`).
pub fn curl_raw(args: &[String], max_secs: u64) -> Resp {
    let d = tempfile::Builder::new()
        .prefix("lockbox-curl-")
        .tempdir()
        .unwrap();
    let hdr = d.path().join("headers");
    let body = d.path().join("body");
    let mut cmd = tool_command(&CURL);
    cmd.args(["-sS", "--path-as-is", "--max-time", &max_secs.to_string()])
        .arg("-D")
        .arg(&hdr)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("NO_PROXY", "*");
    let what = format!(
        "curl {}",
        args.iter()
            .map(|a| if a.len() > 200 {
                format!(
                    "{}…({} bytes)",
                    a.chars().take(100).collect::<String>(),
                    a.len()
                )
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(max_secs + 30));
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Resp {
        status,
        headers: parse_header_dump(&std::fs::read_to_string(&hdr).unwrap_or_default()),
        body: std::fs::read(&body).unwrap_or_default(),
        exit: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        what,
    }
}

/// `curl(args) -> (status, headers, body)` for tests that want the raw triple.
pub fn curl(args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = curl_raw(
        &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        REQUEST_SECS,
    );
    (r.status, r.headers, r.body)
}

/// The HTTPS door of one server, as seen from one source address.
#[derive(Clone)]
pub struct Web {
    pub port: u16,
    pub cacert: PathBuf,
    /// `--interface` (source address), e.g. `127.0.0.7`.
    pub source: Option<String>,
    /// Host used in URLs (`127.0.0.1` or `localhost`; the certificate names both).
    pub host: String,
    scratch: PathBuf,
}

impl Web {
    pub fn new(s: &TestServer) -> Web {
        let scratch = s.dir.path().join("curl-scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        Web {
            port: s.https_port,
            cacert: s.data_dir.join("https").join("cert.pem"),
            source: None,
            host: "127.0.0.1".into(),
            scratch,
        }
    }

    /// The same door from another loopback source address (its own login throttle).
    pub fn with_source(&self, ip: &str) -> Web {
        let mut w = self.clone();
        w.source = Some(ip.to_owned());
        w
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}:{}{}", self.host, self.port, path)
    }

    /// Base arguments: certificate and source address.
    pub fn base_args(&self) -> Vec<String> {
        let mut v = vec!["--cacert".to_string(), self.cacert.display().to_string()];
        if let Some(s) = &self.source {
            v.push("--interface".into());
            v.push(s.clone());
        }
        v
    }

    /// A fresh scratch file path (for request bodies).
    pub fn scratch_file(&self, tag: &str) -> PathBuf {
        self.scratch.join(format!("{tag}-{}", super::random_hex(8)))
    }

    pub fn req(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            web: self,
            method: method.to_owned(),
            path: path.to_owned(),
            args: Vec::new(),
            body: None,
            max_secs: REQUEST_SECS,
        }
    }
    pub fn get(&self, path: &str) -> Req<'_> {
        self.req("GET", path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        self.req("POST", path)
    }
    pub fn put(&self, path: &str) -> Req<'_> {
        self.req("PUT", path)
    }
    pub fn delete(&self, path: &str) -> Req<'_> {
        self.req("DELETE", path)
    }

    // ---- signing in ------------------------------------------------------------------------------------------

    /// Step 1 of a browser login: POST /login. Returns the response (303 with the login cookie on success).
    pub fn password_step(&self, user: &str, password: &str) -> Resp {
        self.post("/login")
            .form(&[("user", user), ("password", password)])
            .send()
    }

    /// The full browser sign-in (enrolling TOTP the first time); panics unless it succeeds.
    pub fn sign_in(&self, person: &Person) -> Browser {
        let r = self.password_step(&person.user, &person.password);
        assert_eq!(
            r.status,
            303,
            "password step for {} refused:\n{}",
            person.user,
            r.describe()
        );
        let login = r
            .set_cookie(LOGIN_COOKIE)
            .unwrap_or_else(|| panic!("no login cookie:\n{}", r.describe()));
        let next = r.header("location").unwrap_or_default().to_owned();
        let resp = if next == "/login/enroll" {
            let page = self
                .get("/login/enroll")
                .cookie(LOGIN_COOKIE, &login)
                .send();
            assert_eq!(page.status, 200, "enrol page:\n{}", page.describe());
            let html = page.text();
            let secret: String = between(&html, "id=\"totp-secret\" class=\"secret\">", "<")
                .unwrap_or_else(|| panic!("no #totp-secret on the enrolment page:\n{html}"))
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let key = lockbox_vault::mfa::base32_decode(&secret).expect("base32 secret");
            *person.secret.lock().unwrap() = Some(key);
            let csrf = hidden_csrf(&html).expect("csrf on the enrolment page");
            let code = person.next_code();
            self.post("/login/enroll")
                .cookie(LOGIN_COOKIE, &login)
                .form(&[("csrf", &csrf), ("code", &code)])
                .send()
        } else {
            assert_eq!(
                next,
                "/login/totp",
                "unexpected next step:\n{}",
                r.describe()
            );
            let page = self.get("/login/totp").cookie(LOGIN_COOKIE, &login).send();
            assert_eq!(page.status, 200, "totp page:\n{}", page.describe());
            let csrf = hidden_csrf(&page.text()).expect("csrf on the totp page");
            let code = person.next_code();
            self.post("/login/totp")
                .cookie(LOGIN_COOKIE, &login)
                .form(&[("csrf", &csrf), ("code", &code)])
                .send()
        };
        assert_eq!(
            resp.status,
            303,
            "second factor for {} refused:\n{}",
            person.user,
            resp.describe()
        );
        let cookie = resp
            .set_cookie(SESSION_COOKIE)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| panic!("no session cookie:\n{}", resp.describe()));
        let account = self.get("/account").cookie(SESSION_COOKIE, &cookie).send();
        assert_eq!(account.status, 200, "account page:\n{}", account.describe());
        let csrf = hidden_csrf(&account.text()).expect("csrf on the account page");
        Browser {
            user: person.user.clone(),
            cookie,
            csrf,
        }
    }

    /// POST /api/v1/tokens from a browser session; returns (id, secret).
    pub fn create_token(
        &self,
        b: &Browser,
        name: &str,
        scopes: &str,
        days: u32,
    ) -> (String, String) {
        let r = self
            .post("/api/v1/tokens")
            .browser(b)
            .json(&serde_json::json!({"name": name, "scopes": scopes, "days": days}))
            .send();
        assert_eq!(r.status, 201, "token creation:\n{}", r.describe());
        let v = r.json();
        (
            v["info"]["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Signs in and creates a token in one go.
    pub fn token_for(&self, person: &Person, scopes: &str) -> String {
        let b = self.sign_in(person);
        self.create_token(&b, &format!("test {scopes}"), scopes, 1)
            .1
    }
}

pub const SESSION_COOKIE: &str = "__Host-lockbox-session";
pub const LOGIN_COOKIE: &str = "__Host-lockbox-login";

/// A signed-in browser: the session cookie and its CSRF token.
#[derive(Debug, Clone)]
pub struct Browser {
    pub user: String,
    pub cookie: String,
    pub csrf: String,
}

/// A person who signs in through the browser flow; remembers the TOTP secret enrolled for them and
/// the last time step used (a code is accepted once).
pub struct Person {
    pub user: String,
    pub password: String,
    secret: Mutex<Option<Vec<u8>>>,
    last_step: Mutex<u64>,
}

impl Person {
    pub fn new(user: &str, password: &str) -> Person {
        Person {
            user: user.to_owned(),
            password: password.to_owned(),
            secret: Mutex::new(None),
            last_step: Mutex::new(0),
        }
    }

    pub fn secret(&self) -> Option<Vec<u8>> {
        self.secret.lock().unwrap().clone()
    }

    /// The code for the current time step, without using it up (for requests expected to be refused).
    pub fn current_code(&self) -> String {
        let secret = self.secret().expect("no TOTP secret enrolled yet");
        lockbox_vault::mfa::totp_code(&secret, unix_now())
    }

    /// A TOTP code for a step not used before (the server accepts one step of skew either way;
    /// waits when the next unused step is too far ahead).
    pub fn next_code(&self) -> String {
        let secret = self.secret().expect("no TOTP secret enrolled yet");
        let mut last = self.last_step.lock().unwrap();
        loop {
            let now = unix_now();
            let step = (now / 30).max(*last + 1);
            if step <= now / 30 + 1 {
                *last = step;
                return lockbox_vault::mfa::totp_code(&secret, step * 30);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The text between `start` and the next `end`.
pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// The value of the first hidden `csrf` input of a page.
pub fn hidden_csrf(html: &str) -> Option<String> {
    between(html, "name=\"csrf\" value=\"", "\"").map(str::to_owned)
}

enum Body {
    File(PathBuf),
    Form(Vec<(String, String)>),
}

/// One request being built.
pub struct Req<'a> {
    web: &'a Web,
    method: String,
    path: String,
    args: Vec<String>,
    body: Option<Body>,
    max_secs: u64,
}

impl Req<'_> {
    pub fn header(mut self, h: &str) -> Self {
        self.args.push("-H".into());
        self.args.push(h.to_owned());
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header(&format!("Authorization: Bearer {token}"))
    }
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.args.push("--cookie".into());
        self.args.push(format!("{name}={value}"));
        self
    }
    /// The session cookie, and the CSRF header on state-changing methods.
    pub fn browser(self, b: &Browser) -> Self {
        let unsafe_method = !matches!(self.method.as_str(), "GET" | "HEAD");
        let r = self.cookie(SESSION_COOKIE, &b.cookie);
        if unsafe_method {
            r.header(&format!("X-CSRF-Token: {}", b.csrf))
        } else {
            r
        }
    }
    pub fn csrf(self, token: &str) -> Self {
        self.header(&format!("X-CSRF-Token: {token}"))
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }
    pub fn max_secs(mut self, s: u64) -> Self {
        self.max_secs = s;
        self
    }
    pub fn json(self, v: &serde_json::Value) -> Self {
        self.raw_body(v.to_string().as_bytes(), "application/json")
    }
    /// A body from bytes with a content type.
    pub fn raw_body(mut self, bytes: &[u8], content_type: &str) -> Self {
        let f = self.web.scratch_file("body");
        std::fs::write(&f, bytes).unwrap();
        self.body = Some(Body::File(f));
        self.header(&format!("Content-Type: {content_type}"))
    }
    /// A body streamed from a file (`--data-binary @file`), as application/octet-stream.
    pub fn file(mut self, path: &Path) -> Self {
        self.body = Some(Body::File(path.to_path_buf()));
        self.header("Content-Type: application/octet-stream")
    }
    /// An urlencoded form (curl encodes each field).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        self.body = Some(Body::Form(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        self
    }
    pub fn send(self) -> Resp {
        let mut a = self.web.base_args();
        // curl 7.88 (Debian 12) fails an HTTP/2 upload with "Stream error in the HTTP/2 framing layer"
        // (exit 92) instead of showing the answer when the server answers before reading the whole
        // body (an early 401/403/409 followed by RST_STREAM(NO_ERROR), which RFC 9113 section 8.1
        // allows). Requests with a body therefore go over HTTP/1.1 unless a test asks for HTTP/2.
        if self.body.is_some() && !self.args.iter().any(|a| a.starts_with("--http")) {
            a.push("--http1.1".into());
        }
        a.push("-X".into());
        a.push(self.method.clone());
        a.extend(self.args);
        let mut cleanup = None;
        match self.body {
            Some(Body::File(f)) => {
                a.push("--data-binary".into());
                a.push(format!("@{}", f.display()));
                if f.starts_with(&self.web.scratch) {
                    cleanup = Some(f);
                }
            }
            Some(Body::Form(fields)) => {
                // Written to a file: values may be far longer than one argument may be.
                let enc: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                    .collect();
                let f = self.web.scratch_file("form");
                std::fs::write(&f, enc.join("&")).unwrap();
                a.push("-H".into());
                a.push("Content-Type: application/x-www-form-urlencoded".into());
                a.push("--data-binary".into());
                a.push(format!("@{}", f.display()));
                cleanup = Some(f);
            }
            None => {}
        }
        a.push(self.web.url(&self.path));
        let r = curl_raw(&a, self.max_secs);
        if let Some(f) = cleanup {
            let _ = std::fs::remove_file(f);
        }
        r
    }
}

/// application/x-www-form-urlencoded encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn qenc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Audit records (`lockbox audit export --format jsonl`), parsed.
pub fn audit_records(s: &TestServer) -> Vec<serde_json::Value> {
    let o = s.cli(&["audit", "export", "--format", "jsonl"]);
    assert!(o.status.success(), "audit export failed:\n{}", describe(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line not JSON ({e}): {l}"))
        })
        .collect()
}
