//! The signed-in person's account page: two-step sign-in status, new recovery codes, and their API
//! tokens (create, shown once; revoke).

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use lockbox_vault::tokens::TokenScopes;
use serde::Deserialize;

use super::{render, see_other, Nav, TokenRow};
use crate::access::Identity;
use crate::api::blocking;
use crate::routes::{self, Access, Route};
use crate::state::{AppState, WebSession};

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/account", Access::Any, account),
        routes::post("/account/tokens", Access::Any, create_token),
        routes::post("/account/tokens/{id}/revoke", Access::Any, revoke_token),
        routes::post("/account/recovery-codes", Access::Any, new_recovery_codes),
    ]
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Option<Nav>,
    user: String,
    org: String,
    role: String,
    is_admin: bool,
    csrf: String,
    codes_left: usize,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    new_codes: Vec<String>,
    error: Option<String>,
}

// The error is a ready response handed straight back to axum; boxing it would only add a step.
#[allow(clippy::result_large_err)]
fn browser(ident: &Identity) -> Result<std::sync::Arc<WebSession>, Response> {
    match ident {
        Identity::Browser(s) => Ok(s.clone()),
        Identity::Token { .. } => Err(super::error_page(
            StatusCode::FORBIDDEN,
            "the account page is for browser sessions; use /api/v1/tokens from scripts",
        )),
    }
}

async fn render_account(
    state: &AppState,
    session: std::sync::Arc<WebSession>,
    status: StatusCode,
    new_token: Option<String>,
    new_codes: Vec<String>,
    error: Option<String>,
) -> Response {
    let vault = state.vault.clone();
    let s2 = session.clone();
    let loaded = blocking(move || {
        let tokens = vault.list_api_tokens(&s2.principal)?;
        let left = vault.recovery_codes_left(&s2.principal)?;
        Ok((tokens, left))
    })
    .await;
    let (tokens, codes_left) = match loaded {
        Ok(x) => x,
        Err(e) => return super::error_page(e.status(), &e.detail()),
    };
    let p = &session.principal;
    render(
        status,
        &AccountPage {
            nav: Some(Nav::of(&session)),
            user: p.user_name().to_owned(),
            org: p.org_name().to_owned(),
            role: p.role().as_str().to_owned(),
            is_admin: p.role() == lockbox_types::Role::Admin,
            csrf: session.csrf.clone(),
            codes_left,
            tokens: tokens.into_iter().map(TokenRow::from).collect(),
            new_token,
            new_codes,
            error,
        },
    )
}

async fn account(State(state): State<AppState>, ident: Identity) -> Response {
    match browser(&ident) {
        Ok(s) => render_account(&state, s, StatusCode::OK, None, vec![], None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
    #[serde(default)]
    read: Option<String>,
    #[serde(default)]
    write: Option<String>,
    #[serde(default)]
    admin: Option<String>,
    days: u32,
}

async fn create_token(
    State(state): State<AppState>,
    ident: Identity,
    Form(f): Form<TokenForm>,
) -> Response {
    let session = match browser(&ident) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scopes = TokenScopes {
        read: f.read.is_some(),
        write: f.write.is_some(),
        admin: f.admin.is_some(),
    };
    if !(1..=365).contains(&f.days) {
        return render_account(
            &state,
            session,
            StatusCode::BAD_REQUEST,
            None,
            vec![],
            Some("Lifetime must be 1 to 365 days.".into()),
        )
        .await;
    }
    let vault = state.vault.clone();
    let s2 = session.clone();
    let ttl = Duration::from_secs(u64::from(f.days) * 86_400);
    let created =
        blocking(move || Ok(vault.create_api_token(&s2.principal, &f.name, scopes, ttl)?)).await;
    match created {
        Ok((_, secret)) => {
            render_account(
                &state,
                session,
                StatusCode::CREATED,
                Some(secret),
                vec![],
                None,
            )
            .await
        }
        Err(e) => render_account(&state, session, e.status(), None, vec![], Some(e.detail())).await,
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> Response {
    let session = match browser(&ident) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let vault = state.vault.clone();
    let s2 = session.clone();
    match blocking(move || Ok(vault.revoke_api_token(&s2.principal, &id)?)).await {
        Ok(()) => see_other("/account"),
        Err(e) => render_account(&state, session, e.status(), None, vec![], Some(e.detail())).await,
    }
}

async fn new_recovery_codes(State(state): State<AppState>, ident: Identity) -> Response {
    let session = match browser(&ident) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let vault = state.vault.clone();
    let s2 = session.clone();
    match blocking(move || Ok(vault.regenerate_recovery_codes(&s2.principal)?)).await {
        Ok(codes) => render_account(&state, session, StatusCode::OK, None, codes, None).await,
        Err(e) => render_account(&state, session, e.status(), None, vec![], Some(e.detail())).await,
    }
}
