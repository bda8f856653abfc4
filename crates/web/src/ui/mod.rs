//! The browser UI: server-rendered askama templates (HTML auto-escaped, compile-time checked), a
//! little plain JavaScript from embedded assets for uploads, no inline script. Pages post ordinary
//! forms carrying the session's CSRF token; uploads and downloads use the same `/api/v1` routes as
//! scripts.

pub mod account;
pub mod admin;
pub mod files;
pub mod login;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use lockbox_vault::TokenInfo;

use crate::access::Identity;
use crate::routes::Route;
use crate::state::WebSession;

pub fn routes() -> Vec<Route> {
    let mut r = Vec::new();
    r.extend(login::routes());
    r.extend(files::routes());
    r.extend(account::routes());
    r.extend(admin::routes());
    r
}

/// What the page header needs: who is signed in, and the token for the sign-out form.
pub struct Nav {
    pub user: String,
    pub org: String,
    pub is_admin: bool,
    pub csrf: String,
}

impl Nav {
    pub fn of(session: &WebSession) -> Nav {
        Nav {
            user: session.principal.user_name().to_owned(),
            org: session.principal.org_name().to_owned(),
            is_admin: session.principal.role() == lockbox_types::Role::Admin,
            csrf: session.csrf.clone(),
        }
    }

    /// Pages are for browser sessions; a bearer token calling a page URL gets no navigation (and
    /// cannot post forms, which need a session's CSRF token).
    pub fn from_identity(ident: &Identity) -> Option<Nav> {
        match ident {
            Identity::Browser(s) => Some(Nav::of(s)),
            Identity::Token { .. } => None,
        }
    }
}

/// One API token as the account page and the admin pages list it (the account page leaves out
/// `user` and `org`: they are the signed-in person's own).
pub struct TokenRow {
    pub id: String,
    pub user: String,
    pub org: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: &'static str,
}

impl From<TokenInfo> for TokenRow {
    fn from(t: TokenInfo) -> Self {
        let now = crate::state::unix_now();
        TokenRow {
            state: if t.revoked {
                "revoked"
            } else if t.expires <= now {
                "expired"
            } else {
                "active"
            },
            id: t.id,
            user: t.user,
            org: t.org,
            name: t.name,
            scopes: t.scopes.as_string(),
            created: when(t.created),
            expires: when(t.expires),
            last_used: t.last_used.map(when).unwrap_or_else(|| "never".into()),
        }
    }
}

/// Renders a template, or a plain 500 if the template fails (it cannot on valid data; askama checks
/// templates at compile time).
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub fn page<T: Template>(p: &T) -> Response {
    render(StatusCode::OK, p)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    status: u16,
    reason: &'a str,
    detail: &'a str,
    sign_in: bool,
}

/// The HTML counterpart of a problem+json answer.
pub fn error_page(status: StatusCode, detail: &str) -> Response {
    render(
        status,
        &ErrorPage {
            nav: None,
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            detail,
            sign_in: status == StatusCode::UNAUTHORIZED,
        },
    )
}

/// A 303 after a form post, so reloading the next page does not re-post.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `Set-Cookie` for our cookies: host-only (`__Host-` prefix), HTTPS only, not readable by script,
/// never sent on cross-site requests.
pub fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age_secs: Option<u64>) {
    let age = match max_age_secs {
        Some(s) => format!("; Max-Age={s}"),
        None => String::new(),
    };
    let v = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn clear_cookie(resp: &mut Response, name: &str) {
    set_cookie(resp, name, "", Some(0));
}

/// Percent-encodes a value for a query string (the template then HTML-escapes the whole URL).
pub fn q(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Bytes for people.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

/// Unix seconds → "2026-11-25 14:03 UTC".
pub fn when(unix: i64) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&f).ok())
        .unwrap_or_default()
}
