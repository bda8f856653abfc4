//! Who is calling, and whether the route lets them in. Runs in front of every route with the access
//! level the route table declared: identity comes from a bearer API token or the session cookie
//! (never from anything else in the request), roles are checked here, and every state-changing
//! browser request must carry the session's CSRF token and not come from another site.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use lockbox_types::{Door, Role};
use lockbox_vault::{Credential, LoginAttempt, Principal, Session, Verdict};
use subtle::ConstantTimeEq;

use crate::error::problem;
use crate::routes::Access;
use crate::server::PeerAddr;
use crate::state::{AppState, PendingEntry, WebSession, LOGIN_COOKIE, SESSION_COOKIE};

/// Largest urlencoded form we buffer to find its CSRF field; our forms are a few hundred bytes.
const MAX_FORM_BYTES: usize = 64 * 1024;
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";

/// The authenticated caller, available to handlers as an extension.
#[derive(Clone)]
pub enum Identity {
    Browser(Arc<WebSession>),
    Token {
        principal: Principal,
        session: Arc<Session>,
    },
}

impl Identity {
    pub fn principal(&self) -> &Principal {
        match self {
            Identity::Browser(s) => &s.principal,
            Identity::Token { principal, .. } => principal,
        }
    }
    pub fn session(&self) -> Arc<Session> {
        match self {
            Identity::Browser(s) => s.vault_session.clone(),
            Identity::Token { session, .. } => session.clone(),
        }
    }
    pub fn role(&self) -> Role {
        self.principal().role()
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// A refusal in the caller's language: problem+json for the API, a small page for browsers.
pub fn refuse(path: &str, status: StatusCode, detail: &str) -> Response {
    if is_api_path(path) {
        problem(status, detail)
    } else {
        crate::ui::error_page(status, detail)
    }
}

/// 429 with `Retry-After` for a source that is throttled (or has too many logins in progress): the
/// caller's credential may be fine, so saying "refused" would send them looking for the wrong fault.
pub fn too_many_attempts(path: &str, retry_after: std::time::Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut resp = refuse(
        path,
        StatusCode::TOO_MANY_REQUESTS,
        &format!("too many failed sign-ins from your address; try again in {secs} s"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn peer_ip(req: &Request) -> std::net::IpAddr {
    req.extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn bearer(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let v = headers.get(header::AUTHORIZATION)?;
    let s = v.to_str().map_err(|_| ());
    Some(s.and_then(|s| {
        let (scheme, token) = s.split_once(' ').ok_or(())?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            Ok(token.trim().to_owned())
        } else {
            Err(())
        }
    }))
}

/// `lbx_{id}_{secret}` → id, used only to key the per-token session cache after the vault accepted.
fn token_id(token: &str) -> Option<&str> {
    token
        .strip_prefix("lbx_")?
        .split_once('_')
        .map(|(id, _)| id)
}

enum Found {
    Nobody,
    Refused(Response),
    Caller(Identity),
}

async fn identify(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    source: std::net::IpAddr,
) -> Found {
    let path = path.to_owned();
    if let Some(b) = bearer(headers) {
        let Ok(token) = b else {
            return Found::Refused(refuse(
                &path,
                StatusCode::UNAUTHORIZED,
                "malformed Authorization header: expected 'Bearer lbx_...'",
            ));
        };
        let vault = state.vault.clone();
        let tok = token.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            vault.authenticate(&LoginAttempt {
                user: "",
                credential: Credential::ApiToken(&tok),
                door: Door::Https,
                source,
            })
        })
        .await;
        let principal = match verdict {
            Ok(Verdict::Accepted(p)) => p,
            Ok(Verdict::Refused(reason)) if reason.is_source_limit() => {
                return Found::Refused(too_many_attempts(
                    &path,
                    state.vault.source_retry_after(source),
                ))
            }
            _ => {
                return Found::Refused(refuse(
                    &path,
                    StatusCode::UNAUTHORIZED,
                    "API token refused (unknown, expired or revoked)",
                ))
            }
        };
        let id = token_id(&token).unwrap_or_default().to_owned();
        let st = state.clone();
        let p2 = principal.clone();
        return match tokio::task::spawn_blocking(move || st.token_session(&id, p2)).await {
            Ok(Ok(session)) => Found::Caller(Identity::Token { principal, session }),
            _ => Found::Refused(refuse(
                &path,
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not open a session",
            )),
        };
    }
    match cookie(headers, SESSION_COOKIE).and_then(|h| state.session(h)) {
        Some(s) => Found::Caller(Identity::Browser(s)),
        None => Found::Nobody,
    }
}

/// Browsers label every request with where it came from; a state-changing request from another
/// site is refused before anything else (defence in depth beside SameSite=Strict and the token).
fn cross_site(headers: &HeaderMap) -> bool {
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("cross-site") | Some("same-site")
    )
}

/// Checks the CSRF token of a state-changing request: the `X-CSRF-Token` header, or the `csrf`
/// field of an urlencoded form (the body is buffered, bounded, and put back for the handler).
async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let path = req.uri().path().to_owned();
    let forbidden = |detail: &str| refuse(&path, StatusCode::FORBIDDEN, detail);
    if cross_site(req.headers()) {
        return Err(forbidden("cross-site request refused"));
    }
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        let ok = v.as_bytes().ct_eq(expected.as_bytes()).into();
        return if ok {
            Ok(req)
        } else {
            Err(forbidden(
                "invalid CSRF token; reload the page and try again",
            ))
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden("missing CSRF token"));
    }
    // A declared oversize is refused before the body is polled, so an `Expect: 100-continue`
    // client is never asked to send it and sees the 413 rather than a reset mid-upload.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(refuse(
            &path,
            StatusCode::PAYLOAD_TOO_LARGE,
            "form too large",
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Err(refuse(
                &path,
                StatusCode::PAYLOAD_TOO_LARGE,
                "form too large",
            ))
        }
    };
    let token = form_urlencoded_field(&bytes, CSRF_FIELD);
    let ok = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected.as_bytes())));
    if !ok {
        return Err(forbidden(
            "invalid or missing CSRF token; reload the page and try again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The first value of field `name` in an urlencoded body (the same decoding axum's `Form` uses).
fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What axum's `Json` and `Form` extractors buffer at most (their default limit). Uploads stream
/// `application/octet-stream` and are not affected.
const MAX_BUFFERED_BODY: u64 = 2 * 1024 * 1024;

/// A JSON or form body declared larger than the extractors accept. Refused before anything polls
/// the body: hyper sends `100 Continue` only when a body is first read, so a client that waits for
/// it is never asked for the bytes and sees the 413, instead of the connection closing under a
/// half-sent body (which can lose the answer).
fn declared_oversize(req: &Request) -> bool {
    let buffered = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json")
                || ct.starts_with("application/x-www-form-urlencoded")
        });
    buffered
        && req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > MAX_BUFFERED_BODY)
}

/// The gate in front of every route.
pub async fn enforce(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if declared_oversize(&req) {
        return refuse(
            &path,
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        );
    }
    // Anyone may send these bodies before signing in, so they must also keep up a minimum rate.
    let req = match access {
        Access::Public | Access::LoginStep => req.map(crate::body_guard::unauthenticated),
        Access::Any | Access::Transfer | Access::Admin => req,
    };
    match access {
        Access::Public => {
            if !is_safe(req.method()) && cross_site(req.headers()) {
                return refuse(&path, StatusCode::FORBIDDEN, "cross-site request refused");
            }
            next.run(req).await
        }
        Access::LoginStep => {
            let Some(entry) = cookie(req.headers(), LOGIN_COOKIE).and_then(|h| state.pending(h))
            else {
                return refuse(
                    &path,
                    StatusCode::UNAUTHORIZED,
                    "sign in with your password first (the sign-in step expired or was not started)",
                );
            };
            let mut req = req;
            if !is_safe(req.method()) {
                req = match check_csrf(req, &entry.csrf).await {
                    Ok(r) => r,
                    Err(resp) => return resp,
                };
            }
            req.extensions_mut().insert::<Arc<PendingEntry>>(entry);
            next.run(req).await
        }
        Access::Any | Access::Transfer | Access::Admin => {
            let headers = req.headers().clone();
            let ident = match identify(&state, &path, &headers, peer_ip(&req)).await {
                Found::Caller(i) => i,
                Found::Refused(r) => return r,
                Found::Nobody => {
                    return refuse(&path, StatusCode::UNAUTHORIZED, "authentication required")
                }
            };
            let role_ok = match access {
                Access::Transfer => ident.role() == Role::Transfer,
                Access::Admin => {
                    ident.role() == Role::Admin
                        && ident.principal().scopes().is_none_or(|s| s.admin)
                }
                _ => true,
            };
            if !role_ok {
                let detail = match access {
                    Access::Admin => "this page is for administrators",
                    _ => "administrators do not transfer files; use a partner account",
                };
                return refuse(&path, StatusCode::FORBIDDEN, detail);
            }
            let mut req = req;
            if let Identity::Browser(s) = &ident {
                if !is_safe(req.method()) {
                    req = match check_csrf(req, &s.csrf).await {
                        Ok(r) => r,
                        Err(resp) => return resp,
                    };
                }
            }
            req.extensions_mut().insert(ident);
            next.run(req).await
        }
    }
}

/// A handler's way to read the caller the gate admitted.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Identity {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Identity>().cloned().ok_or_else(|| {
            // Only reachable if a route was declared Public but reads an identity: a bug, refused.
            refuse(
                parts.uri.path(),
                StatusCode::UNAUTHORIZED,
                "authentication required",
            )
        })
    }
}
