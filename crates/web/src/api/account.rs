//! The caller's own account over the API: who am I, and my API tokens.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lockbox_vault::tokens::{TokenInfo, TokenScopes};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::extract::{Json, Path};
use super::{blocking, rfc3339};
use crate::access::Identity;
use crate::error::{WebError, WebResult};
use crate::routes::{self, Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/api/v1/me", Access::Any, me),
        routes::get("/api/v1/tokens", Access::Any, list_tokens),
        routes::post("/api/v1/tokens", Access::Any, create_token),
        routes::delete("/api/v1/tokens/{id}", Access::Any, revoke_token),
    ]
}

#[derive(OpenApi)]
#[openapi(
    paths(me, list_tokens, create_token, revoke_token),
    components(schemas(Me, TokenJson, CreateToken, CreatedToken))
)]
pub struct AccountApi;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: String,
    pub org: String,
    /// `admin` or `transfer`.
    pub role: String,
    /// How this request authenticated: `token` or `browser`.
    pub via: &'static str,
    /// The token's scopes when `via` is `token`.
    pub scopes: Option<String>,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401)),
    security(("bearer" = []), ("session" = [])))]
pub async fn me(ident: Identity) -> Json<Me> {
    let p = ident.principal();
    Json(Me {
        user: p.user_name().to_owned(),
        org: p.org_name().to_owned(),
        role: p.role().as_str().to_owned(),
        via: match ident {
            Identity::Browser(_) => "browser",
            Identity::Token { .. } => "token",
        },
        scopes: p.scopes().map(|s| s.as_string()),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenJson {
    pub id: String,
    pub user: String,
    pub org: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: Option<String>,
    pub revoked: bool,
}

impl From<TokenInfo> for TokenJson {
    fn from(t: TokenInfo) -> Self {
        TokenJson {
            id: t.id,
            user: t.user,
            org: t.org,
            name: t.name,
            scopes: t.scopes.as_string(),
            created: rfc3339(t.created),
            expires: rfc3339(t.expires),
            last_used: t.last_used.map(rfc3339),
            revoked: t.revoked,
        }
    }
}

/// The caller's API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "account",
    responses((status = 200, body = [TokenJson])),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ident: Identity,
) -> WebResult<Json<Vec<TokenJson>>> {
    let vault = state.vault.clone();
    blocking(move || {
        Ok(Json(
            vault
                .list_api_tokens(ident.principal())?
                .into_iter()
                .map(TokenJson::from)
                .collect(),
        ))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateToken {
    /// A label, e.g. "nightly 834 push": 1 to 64 printable characters, not only spaces.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Comma-separated: `read`, `write`, `admin` (admin accounts only).
    #[schema(format = "token-scopes")]
    pub scopes: String,
    /// Lifetime in days (1 to 365).
    #[schema(minimum = 1, maximum = 365)]
    #[serde(deserialize_with = "super::extract::whole::u32")]
    pub days: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret, shown this once; only its hash is stored.
    pub token: String,
    pub info: TokenJson,
}

/// Creates an API token for the caller. Only from a browser session: a token cannot mint tokens.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "account", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400), (status = 403)),
    security(("session" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    ident: Identity,
    Json(req): Json<CreateToken>,
) -> WebResult<Response> {
    let scopes =
        TokenScopes::parse(&req.scopes).map_err(|e| WebError::BadRequest(e.to_string()))?;
    if !(1..=365).contains(&req.days) {
        return Err(WebError::BadRequest(
            "days must be between 1 and 365".into(),
        ));
    }
    let vault = state.vault.clone();
    let ttl = Duration::from_secs(u64::from(req.days) * 86_400);
    let (info, token) =
        blocking(move || Ok(vault.create_api_token(ident.principal(), &req.name, scopes, ttl)?))
            .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: info.into(),
        }),
    )
        .into_response())
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "account",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> WebResult<StatusCode> {
    let vault = state.vault.clone();
    blocking(move || {
        vault.revoke_api_token(ident.principal(), &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
