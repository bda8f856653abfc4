//! Signing in: password (step 1), then a TOTP or recovery code (step 2), or enrolment of a TOTP
//! authenticator the first time. Both steps call the vault's verdict functions; the pending step is
//! held server-side behind a short-lived cookie, and only an accepted verdict creates a session (with
//! a fresh cookie value, so nothing chosen before login survives it).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use base64::Engine;
use lockbox_types::{Door, Role};
use lockbox_vault::{Credential, LoginAttempt, Principal, Verdict};
use serde::Deserialize;

use super::{clear_cookie, page, render, see_other, set_cookie, Nav};
use crate::access::{cookie, Identity};
use crate::routes::{self, Access, Route};
use crate::server::PeerAddr;
use crate::state::{AppState, PendingEntry, LOGIN_COOKIE, PENDING_LOGIN_TTL, SESSION_COOKIE};

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/", Access::Public, start),
        routes::get("/login", Access::Public, login_form),
        routes::post("/login", Access::Public, login_submit),
        routes::get("/login/totp", Access::LoginStep, totp_form),
        routes::post("/login/totp", Access::LoginStep, totp_submit),
        routes::get("/login/enroll", Access::LoginStep, enroll_form),
        routes::post("/login/enroll", Access::LoginStep, enroll_submit),
        routes::get("/login/recovery", Access::Any, recovery_codes),
        routes::post("/logout", Access::Any, logout),
    ]
}

/// Longest user name or password we pass to the vault; the vault bounds them too.
const MAX_FIELD: usize = 1024;

fn home_for(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Transfer => "/files?path=%2Fhome",
    }
}

async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match cookie(&headers, SESSION_COOKIE).and_then(|h| state.session(h)) {
        Some(s) => see_other(home_for(s.principal.role())),
        None => see_other("/login"),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    error: Option<String>,
    user: String,
}

async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(s) = cookie(&headers, SESSION_COOKIE).and_then(|h| state.session(h)) {
        return see_other(home_for(s.principal.role()));
    }
    page(&LoginPage {
        nav: None,
        error: None,
        user: String::new(),
    })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

fn refused_page(user: &str, status: StatusCode, msg: &str) -> Response {
    render(
        status,
        &LoginPage {
            nav: None,
            error: Some(msg.to_owned()),
            user: user.chars().take(64).collect(),
        },
    )
}

const REFUSED: &str = "Sign-in refused. Check your user name and password. Repeated failures lock the account for a while; your administrator can unlock it.";

async fn login_submit(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    if form.user.is_empty() || form.password.is_empty() {
        return refused_page(
            &form.user,
            StatusCode::BAD_REQUEST,
            "Enter your user name and password.",
        );
    }
    if form.user.len() > MAX_FIELD || form.password.len() > MAX_FIELD {
        return refused_page(
            "",
            StatusCode::BAD_REQUEST,
            "User name or password too long.",
        );
    }
    let vault = state.vault.clone();
    let user = form.user.clone();
    let source = peer.0.ip();
    let verdict = tokio::task::spawn_blocking(move || {
        vault.authenticate(&LoginAttempt {
            user: &user,
            credential: Credential::Password(&form.password),
            door: Door::Https,
            source: peer.0.ip(),
        })
    })
    .await;
    match verdict {
        Ok(Verdict::SecondFactorRequired(pending)) => {
            let next = if pending.enrolled() {
                "/login/totp"
            } else {
                "/login/enroll"
            };
            let handle = state.create_pending(pending);
            let mut resp = see_other(next);
            set_cookie(
                &mut resp,
                LOGIN_COOKIE,
                &handle,
                Some(PENDING_LOGIN_TTL.as_secs()),
            );
            resp
        }
        Ok(Verdict::Accepted(principal)) => {
            // The vault decided no second factor is needed (not the case for people on HTTPS today,
            // but the verdict is the vault's to give).
            establish(&state, principal, None, None).await
        }
        // Decided before the user name was looked at, so saying so reveals nothing about it.
        Ok(Verdict::Refused(reason)) if reason.is_source_limit() => {
            let secs = state.vault.source_retry_after(source).as_secs().max(1);
            let mut resp = refused_page(
                &form.user,
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many sign-in attempts from your address. Try again in {secs} s."),
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            resp
        }
        _ => refused_page(&form.user, StatusCode::UNAUTHORIZED, REFUSED),
    }
}

/// Opens the vault session and the browser session for an accepted verdict; sends the browser on.
async fn establish(
    state: &AppState,
    principal: Principal,
    codes: Option<Vec<String>>,
    pending_cookie: Option<&str>,
) -> Response {
    let vault = state.vault.clone();
    let p2 = principal.clone();
    let opened = tokio::task::spawn_blocking(move || vault.open_session(p2)).await;
    let session = match opened {
        Ok(Ok(s)) => s,
        _ => {
            return super::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not start a session",
            )
        }
    };
    let role = principal.role();
    let show_codes = codes.is_some();
    let (handle, _) = state.create_session(principal, session, codes);
    if let Some(p) = pending_cookie {
        state.drop_pending(p);
    }
    let mut resp = see_other(if show_codes {
        "/login/recovery"
    } else {
        home_for(role)
    });
    set_cookie(&mut resp, SESSION_COOKIE, &handle, None);
    clear_cookie(&mut resp, LOGIN_COOKIE);
    resp
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    nav: Option<Nav>,
    user: String,
    csrf: String,
    error: Option<String>,
}

async fn totp_form(Extension(entry): Extension<Arc<PendingEntry>>) -> Response {
    if !entry.pending.enrolled() {
        return see_other("/login/enroll");
    }
    page(&TotpPage {
        nav: None,
        user: entry.pending.user_name().to_owned(),
        csrf: entry.csrf.clone(),
        error: None,
    })
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Counts a wrong code on this pending login. After too many the password step starts over: the
/// pending login is dropped and the answer is the sign-in page saying `restart`, clearing the login
/// cookie. `None` while codes may still be tried.
fn wrong_code(
    state: &AppState,
    entry: &PendingEntry,
    headers: &HeaderMap,
    restart: &str,
) -> Option<Response> {
    // The vault counts codes per pending login atomically; the door only follows its count.
    if !entry.pending.codes_exhausted() {
        return None;
    }
    if let Some(h) = cookie(headers, LOGIN_COOKIE) {
        state.drop_pending(h);
    }
    let mut resp = refused_page(entry.pending.user_name(), StatusCode::UNAUTHORIZED, restart);
    clear_cookie(&mut resp, LOGIN_COOKIE);
    Some(resp)
}

async fn totp_submit(
    State(state): State<AppState>,
    Extension(entry): Extension<Arc<PendingEntry>>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let code: String = form.code.chars().take(64).collect();
    let vault = state.vault.clone();
    let e2 = entry.clone();
    let verdict =
        tokio::task::spawn_blocking(move || vault.complete_second_factor(&e2.pending, &code)).await;
    match verdict {
        Ok(Verdict::Accepted(principal)) => {
            establish(&state, principal, None, cookie(&headers, LOGIN_COOKIE)).await
        }
        _ => {
            if let Some(refused) = wrong_code(
                &state,
                &entry,
                &headers,
                "Too many wrong codes. Sign in again.",
            ) {
                return refused;
            }
            render(
                StatusCode::UNAUTHORIZED,
                &TotpPage {
                    nav: None,
                    user: entry.pending.user_name().to_owned(),
                    csrf: entry.csrf.clone(),
                    error: Some("That code was not accepted. Use the current code from your authenticator app (each code works once), or a recovery code.".into()),
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "enroll.html")]
struct EnrollPage {
    nav: Option<Nav>,
    user: String,
    csrf: String,
    secret_grouped: String,
    qr_data_uri: String,
    error: Option<String>,
}

fn qr_data_uri(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build();
            format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "QR code generation failed");
            String::new()
        }
    }
}

fn enroll_page(entry: &PendingEntry, status: StatusCode, error: Option<String>) -> Response {
    let guard = entry.enrollment.lock().unwrap_or_else(|p| p.into_inner());
    let Some(en) = guard.as_ref() else {
        return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "enrolment not started");
    };
    let grouped = en
        .secret_base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    render(
        status,
        &EnrollPage {
            nav: None,
            user: entry.pending.user_name().to_owned(),
            csrf: entry.csrf.clone(),
            secret_grouped: grouped,
            qr_data_uri: qr_data_uri(&en.otpauth_uri),
            error,
        },
    )
}

async fn enroll_form(
    State(state): State<AppState>,
    Extension(entry): Extension<Arc<PendingEntry>>,
) -> Response {
    if entry.pending.enrolled() {
        return see_other("/login/totp");
    }
    let has = entry
        .enrollment
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some();
    if !has {
        let vault = state.vault.clone();
        let e2 = entry.clone();
        match tokio::task::spawn_blocking(move || vault.totp_begin_enrollment(&e2.pending)).await {
            Ok(Ok(en)) => {
                *entry.enrollment.lock().unwrap_or_else(|p| p.into_inner()) = Some(en);
            }
            Ok(Err(e)) => return super::error_page(StatusCode::BAD_REQUEST, &e.client_message()),
            Err(_) => {
                return super::error_page(StatusCode::INTERNAL_SERVER_ERROR, "enrolment failed")
            }
        }
    }
    enroll_page(&entry, StatusCode::OK, None)
}

async fn enroll_submit(
    State(state): State<AppState>,
    Extension(entry): Extension<Arc<PendingEntry>>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let code: String = form.code.chars().take(64).collect();
    let vault = state.vault.clone();
    let e2 = entry.clone();
    let result =
        tokio::task::spawn_blocking(move || vault.totp_confirm_enrollment(&e2.pending, &code))
            .await;
    match result {
        Ok(Ok((Verdict::Accepted(principal), codes))) => {
            establish(
                &state,
                principal,
                Some(codes),
                cookie(&headers, LOGIN_COOKIE),
            )
            .await
        }
        _ => {
            let restart = "Too many wrong codes. Sign in again to restart the enrolment.";
            if let Some(refused) = wrong_code(&state, &entry, &headers, restart) {
                return refused;
            }
            enroll_page(
                &entry,
                StatusCode::UNAUTHORIZED,
                Some("That code did not match. Check the time on your phone and enter the current 6-digit code.".into()),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    nav: Option<Nav>,
    codes: Vec<String>,
    next: &'static str,
}

async fn recovery_codes(ident: Identity) -> Response {
    let Identity::Browser(session) = &ident else {
        return super::error_page(StatusCode::NOT_FOUND, "nothing to show");
    };
    let codes = session
        .fresh_recovery_codes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match codes {
        Some(codes) => page(&RecoveryPage {
            nav: Some(Nav::of(session)),
            codes,
            next: home_for(session.principal.role()),
        }),
        None => see_other(home_for(session.principal.role())),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(h) = cookie(&headers, SESSION_COOKIE) {
        let st = state.clone();
        let h = h.to_owned();
        // Ending the vault session writes its audit record.
        let _ = tokio::task::spawn_blocking(move || st.logout(&h)).await;
    }
    let mut resp = see_other("/login");
    clear_cookie(&mut resp, SESSION_COOKIE);
    resp
}
