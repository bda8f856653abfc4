//! Administration over the API (organizations, users, keys, folders, grants, tokens, audit,
//! sessions): admin role, admin scope for tokens. Every change goes through an `AdminActor` the
//! vault hands out for the caller, so it is authorized and audited in the core.
//!
//! The loaders and parsers here (`with_admin`, `parse_time`, `user_json`, ...) are shared with the
//! admin pages in `ui::admin`, so both faces of the console read and change the same way.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lockbox_types::{PermissionSet, Role};
use lockbox_vault::admin::{FolderRow, GrantRow, GrantSubject, OrgRow, Subject, UserRow};
use lockbox_vault::{AdminActor, AuditQuery, AuditRecordView, Vault};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::account::TokenJson;
use super::extract::{Json, Path, Query};
use super::{blocking, rfc3339};
use crate::access::Identity;
use crate::error::{WebError, WebResult};
use crate::routes::{self, Access, Route};
use crate::state::{unix_now, AppState};

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/api/v1/admin/orgs", Access::Admin, list_orgs),
        routes::post("/api/v1/admin/orgs", Access::Admin, create_org),
        routes::post(
            "/api/v1/admin/orgs/{name}/policy",
            Access::Admin,
            set_org_policy,
        ),
        routes::get("/api/v1/admin/users", Access::Admin, list_users),
        routes::post("/api/v1/admin/users", Access::Admin, create_user),
        routes::get("/api/v1/admin/users/{name}", Access::Admin, show_user),
        routes::post(
            "/api/v1/admin/users/{name}/disable",
            Access::Admin,
            disable_user,
        ),
        routes::post(
            "/api/v1/admin/users/{name}/enable",
            Access::Admin,
            enable_user,
        ),
        routes::post(
            "/api/v1/admin/users/{name}/unlock",
            Access::Admin,
            unlock_user,
        ),
        routes::post(
            "/api/v1/admin/users/{name}/reset-mfa",
            Access::Admin,
            reset_mfa,
        ),
        routes::post(
            "/api/v1/admin/users/{name}/password",
            Access::Admin,
            set_password,
        ),
        routes::post("/api/v1/admin/users/{name}/keys", Access::Admin, add_key),
        routes::delete("/api/v1/admin/users/{name}/keys", Access::Admin, remove_key),
        routes::get("/api/v1/admin/folders", Access::Admin, list_folders),
        routes::post("/api/v1/admin/folders", Access::Admin, create_folder),
        routes::get("/api/v1/admin/grants", Access::Admin, list_grants),
        routes::post("/api/v1/admin/grants", Access::Admin, set_grant),
        routes::delete("/api/v1/admin/grants", Access::Admin, revoke_grant),
        routes::get("/api/v1/admin/audit", Access::Admin, audit),
        routes::get("/api/v1/admin/sessions", Access::Admin, sessions),
        routes::get("/api/v1/admin/tokens", Access::Admin, list_tokens),
        routes::delete("/api/v1/admin/tokens/{id}", Access::Admin, revoke_token),
    ]
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_orgs,
        create_org,
        set_org_policy,
        list_users,
        create_user,
        show_user,
        disable_user,
        enable_user,
        unlock_user,
        reset_mfa,
        set_password,
        add_key,
        remove_key,
        list_folders,
        create_folder,
        list_grants,
        set_grant,
        revoke_grant,
        audit,
        sessions,
        list_tokens,
        revoke_token,
    ),
    components(schemas(
        OrgJson,
        CreateOrg,
        OrgPolicy,
        UserJson,
        CreateUser,
        UserDetail,
        KeyJson,
        AddKey,
        PasswordRequest,
        FolderJson,
        CreateFolder,
        GrantJson,
        GrantRequest,
        RoleName,
        AuditRecordJson,
        AuditPage,
        VaultSessionJson,
        BrowserSessionJson,
        SessionsJson,
    ))
)]
pub struct AdminApi;

// ---- shared helpers -------------------------------------------------------------------------------

/// Runs `f` on a blocking thread with the caller's `AdminActor` (the vault re-checks the role and,
/// for tokens, the admin scope, whatever the route gate already decided).
pub(crate) async fn with_admin<T, F>(state: &AppState, ident: &Identity, f: F) -> WebResult<T>
where
    F: FnOnce(&Vault, &AdminActor) -> WebResult<T> + Send + 'static,
    T: Send + 'static,
{
    let vault = state.vault.clone();
    let actor = vault.admin_actor(ident.principal())?;
    blocking(move || f(&vault, &actor)).await
}

/// `None` for an absent or blank optional text field.
pub(crate) fn opt(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A time filter: RFC 3339 (`2026-01-31T09:00:00Z`), a `datetime-local` value (`2026-01-31T09:00`,
/// seconds optional, read as UTC), a date (`2026-01-31`), or Unix seconds. For the end of a range a
/// value without seconds covers its whole minute, a date its whole day.
pub(crate) fn parse_time(field: &str, text: &str, end_of_range: bool) -> WebResult<Option<i64>> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{Date, OffsetDateTime, PrimitiveDateTime};

    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        WebError::BadRequest(format!(
            "{field}: expected a UTC date and time like 2026-01-31T09:00, RFC 3339 like \
             2026-01-31T09:00:00Z, a date like 2026-01-31, or Unix seconds"
        ))
    };
    if text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map(Some).map_err(|_| bad());
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(Some(t.unix_timestamp()));
    }
    let spaced = text.replacen(' ', "T", 1);
    if let Ok(t) = PrimitiveDateTime::parse(
        &spaced,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ) {
        return Ok(Some(t.assume_utc().unix_timestamp()));
    }
    if let Ok(t) = PrimitiveDateTime::parse(
        &spaced,
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ) {
        let extra = if end_of_range { 59 } else { 0 };
        return Ok(Some(t.assume_utc().unix_timestamp() + extra));
    }
    if let Ok(d) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let start = d.midnight().assume_utc().unix_timestamp();
        return Ok(Some(if end_of_range { start + 86_399 } else { start }));
    }
    Err(bad())
}

/// Records per audit page when the caller does not say.
pub(crate) const DEFAULT_AUDIT_PAGE: u32 = 100;

/// The raw audit filter fields, as both the API and the page receive them.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// User name of the actor.
    pub user: Option<String>,
    /// Organization name.
    pub org: Option<String>,
    /// Action name, e.g. `upload_committed`, `login_failed`.
    pub action: Option<String>,
    /// Earliest time, inclusive: RFC 3339, `YYYY-MM-DDTHH:MM` (UTC), a date, or Unix seconds.
    #[param(format = "audit-time")]
    pub from: Option<String>,
    /// Latest time, inclusive; same formats as `from`. A window that ends before it starts holds
    /// no records.
    #[param(format = "audit-time")]
    pub to: Option<String>,
    /// Only records older than this sequence number (the previous page's `next_before`).
    #[param(value_type = Option<i64>)]
    pub before: Option<String>,
    /// Records per page, 1 to 500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

impl AuditParams {
    /// The API's reading: a filter that is present must have a value (a blank one is a 400, not
    /// "no filter" as on the page), and a window that ends before it starts is empty, not an error.
    pub(crate) fn api_query(&self) -> WebResult<AuditQuery> {
        for (field, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("before", &self.before),
            ("limit", &self.limit),
        ] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(WebError::BadRequest(format!("{field}: empty value")));
            }
        }
        self.parse()
    }

    /// The page's reading: blank fields are no filter, and a reversed window is refused.
    pub(crate) fn query(&self) -> WebResult<AuditQuery> {
        let q = self.parse()?;
        if let (Some(f), Some(t)) = (q.from, q.to) {
            if f > t {
                return Err(WebError::BadRequest("from is later than to".into()));
            }
        }
        Ok(q)
    }

    fn parse(&self) -> WebResult<AuditQuery> {
        let before_seq = match opt(&self.before) {
            None => None,
            Some(s) => Some(super::extract::whole::parse_i64(s).ok_or_else(|| {
                WebError::BadRequest("before: expected a record sequence number".into())
            })?),
        };
        let limit = match opt(&self.limit) {
            None => DEFAULT_AUDIT_PAGE,
            Some(s) => {
                match super::extract::whole::parse_i64(s).and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if (1..=lockbox_vault::monitor::MAX_AUDIT_PAGE).contains(&n) => n,
                    _ => {
                        return Err(WebError::BadRequest(format!(
                            "limit: expected a number from 1 to {}",
                            lockbox_vault::monitor::MAX_AUDIT_PAGE
                        )))
                    }
                }
            }
        };
        let from = parse_time("from", opt(&self.from).unwrap_or_default(), false)?;
        let to = parse_time("to", opt(&self.to).unwrap_or_default(), true)?;
        Ok(AuditQuery {
            user: opt(&self.user).map(str::to_owned),
            org: opt(&self.org).map(str::to_owned),
            action: opt(&self.action).map(str::to_owned),
            from,
            to,
            before_seq,
            limit,
        })
    }
}

fn org_name(orgs: &[OrgRow], id: lockbox_types::OrgId) -> String {
    orgs.iter()
        .find(|o| o.id == id)
        .map(|o| o.name.clone())
        .unwrap_or_default()
}

// ---- organizations ----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgJson {
    pub name: String,
    pub created: String,
    /// SFTP password logins of this organization's users also need a TOTP or recovery code.
    pub sftp_password_totp: bool,
}

impl From<OrgRow> for OrgJson {
    fn from(o: OrgRow) -> Self {
        OrgJson {
            name: o.name,
            created: rfc3339(o.created_at),
            sftp_password_totp: o.sftp_password_totp,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrgPolicy {
    /// Require a TOTP (or recovery) code after the password on SFTP; key logins are unaffected.
    pub sftp_password_totp: bool,
}

/// Sets an organization's login policy.
#[utoipa::path(post, path = "/api/v1/admin/orgs/{name}/policy", tag = "admin",
    params(("name" = String, Path, description = "organization")), request_body = OrgPolicy,
    responses((status = 204, description = "set"), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_org_policy(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    Json(req): Json<OrgPolicy>,
) -> WebResult<StatusCode> {
    with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.set_org_sftp_password_totp(actor, &name, req.sftp_password_totp)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrg {
    #[schema(format = "entity-name")]
    pub name: String,
}

/// All organizations.
#[utoipa::path(get, path = "/api/v1/admin/orgs", tag = "admin",
    responses((status = 200, body = [OrgJson]), (status = 403)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_orgs(
    State(state): State<AppState>,
    ident: Identity,
) -> WebResult<Json<Vec<OrgJson>>> {
    with_admin(&state, &ident, |vault, _| {
        Ok(Json(
            vault.list_orgs()?.into_iter().map(OrgJson::from).collect(),
        ))
    })
    .await
}

/// Creates an organization.
#[utoipa::path(post, path = "/api/v1/admin/orgs", tag = "admin", request_body = CreateOrg,
    responses((status = 201, body = OrgJson), (status = 400), (status = 409, description = "exists")),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_org(
    State(state): State<AppState>,
    ident: Identity,
    Json(req): Json<CreateOrg>,
) -> WebResult<Response> {
    let org = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.create_org(actor, &req.name)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(OrgJson::from(org))).into_response())
}

// ---- users ------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct UserJson {
    pub name: String,
    pub org: String,
    /// `admin` or `transfer`.
    pub role: String,
    pub disabled: bool,
    /// Locked out after repeated failed logins (until `locked_until`).
    pub locked: bool,
    pub locked_until: Option<String>,
    pub failed_logins: i64,
    /// Whether a password is set (accounts may use SSH keys only).
    pub has_password: bool,
    pub created: String,
}

pub(crate) fn user_json(u: &UserRow) -> UserJson {
    let now = unix_now();
    UserJson {
        name: u.name.clone(),
        org: u.org_name.clone(),
        role: u.role.as_str().to_owned(),
        disabled: u.disabled,
        locked: u.locked_until.is_some_and(|t| t > now),
        locked_until: u.locked_until.filter(|t| *t > now).map(rfc3339),
        failed_logins: u.failed_logins,
        has_password: u.password_hash.is_some(),
        created: rfc3339(u.created_at),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgFilter {
    /// Only this organization.
    #[param(format = "entity-name")]
    pub org: Option<String>,
}

/// Users, optionally of one organization.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(OrgFilter),
    responses((status = 200, body = [UserJson]), (status = 404, description = "no such organization")),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<OrgFilter>,
) -> WebResult<Json<Vec<UserJson>>> {
    with_admin(&state, &ident, move |vault, _| {
        Ok(Json(
            vault
                .list_users(q.org.as_deref())?
                .iter()
                .map(user_json)
                .collect(),
        ))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    #[schema(format = "entity-name")]
    pub org: String,
    #[schema(format = "entity-name")]
    pub name: String,
    pub role: RoleName,
    /// Optional initial password (checked against the password policy: at least 12 characters,
    /// not containing the user name, not one character repeated). Without one the user signs in
    /// with an SSH key only until an administrator sets a password.
    #[schema(format = "password", min_length = 12, max_length = 256)]
    pub password: Option<String>,
}

/// An account's role.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Transfer,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Role {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Transfer => Role::Transfer,
        }
    }
}

/// Creates a user (with their home folder).
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = CreateUser,
    responses((status = 201, body = UserJson), (status = 400), (status = 404), (status = 409)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    ident: Identity,
    Json(req): Json<CreateUser>,
) -> WebResult<Response> {
    let user = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.create_user(
            actor,
            &req.org,
            &req.name,
            req.role.into(),
            req.password.as_deref(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyJson {
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
    pub added: String,
}

impl From<lockbox_vault::admin::SshKeyRow> for KeyJson {
    fn from(k: lockbox_vault::admin::SshKeyRow) -> Self {
        KeyJson {
            fingerprint: k.fingerprint,
            algorithm: k.algorithm,
            comment: k.comment,
            added: rfc3339(k.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    pub user: UserJson,
    pub keys: Vec<KeyJson>,
    /// Groups of the user's organization the user belongs to.
    pub groups: Vec<String>,
}

/// Everything about one user, loaded on the calling (blocking) thread.
pub(crate) fn load_user(
    vault: &Vault,
    name: &str,
) -> WebResult<(UserRow, Vec<KeyJson>, Vec<String>)> {
    let user = vault.user(name)?;
    let keys = vault
        .list_keys(&user.name)?
        .into_iter()
        .map(KeyJson::from)
        .collect();
    let groups = vault
        .list_groups(&user.org_name)?
        .into_iter()
        .filter(|(_, members)| members.contains(&user.name))
        .map(|(g, _)| g.name)
        .collect();
    Ok((user, keys, groups))
}

/// One user with their SSH keys and groups.
#[utoipa::path(get, path = "/api/v1/admin/users/{name}", tag = "admin",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserDetail), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn show_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> WebResult<Json<UserDetail>> {
    with_admin(&state, &ident, move |vault, _| {
        let (user, keys, groups) = load_user(vault, &name)?;
        Ok(Json(UserDetail {
            user: user_json(&user),
            keys,
            groups,
        }))
    })
    .await
}

/// What an admin can do to an account with one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserAction {
    Disable,
    Enable,
    Unlock,
    ResetMfa,
}

/// Applies `action` and, after disabling or resetting the second factor, signs the user out of
/// every browser session (their API tokens are refused by the vault while disabled).
pub(crate) async fn apply_user_action(
    state: &AppState,
    ident: &Identity,
    name: String,
    action: UserAction,
) -> WebResult<UserRow> {
    let n = name.clone();
    let user = with_admin(state, ident, move |vault, actor| {
        match action {
            UserAction::Disable => vault.set_user_disabled(actor, &n, true)?,
            UserAction::Enable => vault.set_user_disabled(actor, &n, false)?,
            UserAction::Unlock => vault.unlock_user(actor, &n)?,
            UserAction::ResetMfa => vault.reset_totp(actor, &n)?,
        }
        Ok(vault.user(&n)?)
    })
    .await?;
    let reason = match action {
        UserAction::Disable => Some("account disabled by an administrator"),
        UserAction::ResetMfa => Some("two-step sign-in reset by an administrator"),
        UserAction::Enable | UserAction::Unlock => None,
    };
    if let Some(reason) = reason {
        let st = state.clone();
        let who = user.name.clone();
        // Ending a session writes its audit record.
        blocking(move || {
            st.end_sessions_of(&who, reason);
            Ok(())
        })
        .await?;
    }
    Ok(user)
}

async fn user_action(
    state: AppState,
    ident: Identity,
    name: String,
    action: UserAction,
) -> WebResult<Json<UserJson>> {
    let user = apply_user_action(&state, &ident, name, action).await?;
    Ok(Json(user_json(&user)))
}

/// Disables an account (its browser sessions end; logins and tokens are refused).
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/disable", tag = "admin",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserJson), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn disable_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> WebResult<Json<UserJson>> {
    user_action(state, ident, name, UserAction::Disable).await
}

/// Enables a disabled account.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/enable", tag = "admin",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserJson), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn enable_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> WebResult<Json<UserJson>> {
    user_action(state, ident, name, UserAction::Enable).await
}

/// Clears the failed-login counter and lockout.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/unlock", tag = "admin",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserJson), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn unlock_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> WebResult<Json<UserJson>> {
    user_action(state, ident, name, UserAction::Unlock).await
}

/// Removes the user's authenticator and recovery codes (lost phone); they enrol again at their
/// next sign-in. Their browser sessions end.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/reset-mfa", tag = "admin",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserJson), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn reset_mfa(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> WebResult<Json<UserJson>> {
    user_action(state, ident, name, UserAction::ResetMfa).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordRequest {
    /// At least 12 characters, not containing the user name, not one character repeated.
    #[schema(format = "password", min_length = 12, max_length = 256)]
    pub password: String,
}

/// Sets a user's password (checked against the password policy).
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/password", tag = "admin",
    params(("name" = String, Path, description = "user name")), request_body = PasswordRequest,
    responses((status = 204, description = "set"), (status = 400, description = "too weak"), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_password(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    Json(req): Json<PasswordRequest>,
) -> WebResult<StatusCode> {
    with_admin(&state, &ident, move |vault, actor| {
        vault.set_password(actor, &name, &req.password)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddKey {
    /// One OpenSSH public key line, e.g. `ssh-ed25519 AAAA... partner@host` (ed25519,
    /// ecdsa-sha2-nistp*, or ssh-rsa of at least 2048 bits).
    #[schema(format = "ssh-public-key", min_length = 1)]
    pub key: String,
}

/// Adds an SSH public key to a user.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/keys", tag = "admin",
    params(("name" = String, Path, description = "user name")), request_body = AddKey,
    responses((status = 201, body = KeyJson), (status = 400), (status = 404), (status = 409)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_key(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    Json(req): Json<AddKey>,
) -> WebResult<Response> {
    let key = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.add_key(actor, &name, req.key.trim())?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(KeyJson::from(key))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// The key's fingerprint, `SHA256:...` as `ssh-keygen -lf` prints it.
    #[param(pattern = "^SHA256:[A-Za-z0-9+/]{43}$")]
    pub fingerprint: String,
}

/// A fingerprint from a query string or form. Base64 has no spaces, so a space is a `+` that was
/// not percent-encoded (a common slip when pasting `SHA256:...` into a URL); put it back.
pub(crate) fn unplus_fingerprint(text: &str) -> String {
    text.trim().replace(' ', "+")
}

/// Removes an SSH key from a user.
#[utoipa::path(delete, path = "/api/v1/admin/users/{name}/keys", tag = "admin",
    params(("name" = String, Path, description = "user name"), KeyQuery),
    responses((status = 204, description = "removed"), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn remove_key(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
) -> WebResult<StatusCode> {
    let fingerprint = unplus_fingerprint(&q.fingerprint);
    with_admin(&state, &ident, move |vault, actor| {
        vault.remove_key(actor, &name, &fingerprint)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

// ---- folders and grants -----------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct FolderJson {
    pub org: String,
    pub name: String,
    /// A user's home folder (created with the user).
    pub home: bool,
    pub created: String,
}

pub(crate) fn folder_json(orgs: &[OrgRow], f: FolderRow) -> FolderJson {
    FolderJson {
        org: org_name(orgs, f.org_id),
        home: f.home_of.is_some(),
        name: f.name,
        created: rfc3339(f.created_at),
    }
}

/// Folders with their organization names, on the calling (blocking) thread.
pub(crate) fn load_folders(vault: &Vault, org: Option<&str>) -> WebResult<Vec<FolderJson>> {
    let orgs = vault.list_orgs()?;
    Ok(vault
        .list_folders(org)?
        .into_iter()
        .map(|f| folder_json(&orgs, f))
        .collect())
}

/// Folders (shared and home), optionally of one organization.
#[utoipa::path(get, path = "/api/v1/admin/folders", tag = "admin", params(OrgFilter),
    responses((status = 200, body = [FolderJson]), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_folders(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<OrgFilter>,
) -> WebResult<Json<Vec<FolderJson>>> {
    with_admin(&state, &ident, move |vault, _| {
        Ok(Json(load_folders(vault, q.org.as_deref())?))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateFolder {
    #[schema(format = "entity-name")]
    pub org: String,
    #[schema(format = "entity-name")]
    pub name: String,
}

/// Creates a shared folder in an organization (grant access to it separately).
#[utoipa::path(post, path = "/api/v1/admin/folders", tag = "admin", request_body = CreateFolder,
    responses((status = 201, body = FolderJson), (status = 400), (status = 404), (status = 409)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_folder(
    State(state): State<AppState>,
    ident: Identity,
    Json(req): Json<CreateFolder>,
) -> WebResult<Response> {
    let folder = with_admin(&state, &ident, move |vault, actor| {
        let f = vault.create_folder(actor, &req.org, &req.name)?;
        Ok(folder_json(&vault.list_orgs()?, f))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(folder)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantJson {
    pub org: String,
    pub folder: String,
    /// `user` or `group`.
    pub subject: &'static str,
    /// The user's or group's name.
    pub name: String,
    /// Comma-separated: list, read, write, delete, mkdir, rename.
    pub permissions: String,
}

pub(crate) fn grant_json(orgs: &[OrgRow], g: GrantRow) -> GrantJson {
    GrantJson {
        org: org_name(orgs, g.org_id),
        folder: g.folder_name,
        subject: match g.subject {
            Subject::User(_) => "user",
            Subject::Group(_) => "group",
        },
        name: g.subject_name,
        permissions: g.perms.names().join(","),
    }
}

pub(crate) fn load_grants(vault: &Vault, org: Option<&str>) -> WebResult<Vec<GrantJson>> {
    let orgs = vault.list_orgs()?;
    Ok(vault
        .list_grants(org)?
        .into_iter()
        .map(|g| grant_json(&orgs, g))
        .collect())
}

/// Grants (who may do what in which folder), optionally of one organization.
#[utoipa::path(get, path = "/api/v1/admin/grants", tag = "admin", params(OrgFilter),
    responses((status = 200, body = [GrantJson]), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_grants(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<OrgFilter>,
) -> WebResult<Json<Vec<GrantJson>>> {
    with_admin(&state, &ident, move |vault, _| {
        Ok(Json(load_grants(vault, q.org.as_deref())?))
    })
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct GrantRequest {
    #[schema(format = "entity-name")]
    pub org: String,
    #[schema(format = "entity-name")]
    pub folder: String,
    /// The user to grant to (give `user` or `group`, not both).
    #[schema(format = "entity-name")]
    pub user: Option<String>,
    /// The group to grant to.
    #[schema(format = "entity-name")]
    pub group: Option<String>,
    /// Comma-separated: list, read, write, delete, mkdir, rename, or `all`.
    #[schema(format = "permissions")]
    pub permissions: String,
}

/// Who a grant is for: exactly one of user and group.
pub(crate) fn grant_subject<'a>(
    user: Option<&'a str>,
    group: Option<&'a str>,
) -> WebResult<GrantSubject<'a>> {
    match (user, group) {
        (Some(u), None) => Ok(GrantSubject::User(u)),
        (None, Some(g)) => Ok(GrantSubject::Group(g)),
        _ => Err(WebError::BadRequest("name either a user or a group".into())),
    }
}

pub(crate) fn parse_permissions(text: &str) -> WebResult<PermissionSet> {
    let perms = PermissionSet::parse(text).map_err(|_| {
        WebError::BadRequest(
            "permissions: expected a comma-separated list of list, read, write, delete, mkdir, rename (or all)".into(),
        )
    })?;
    if perms.is_empty() {
        return Err(WebError::BadRequest(
            "a grant needs at least one permission".into(),
        ));
    }
    Ok(perms)
}

/// Sets (creates or replaces) a grant on a folder for a user or a group of the same organization.
#[utoipa::path(post, path = "/api/v1/admin/grants", tag = "admin", request_body = GrantRequest,
    responses((status = 204, description = "granted"), (status = 400), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_grant(
    State(state): State<AppState>,
    ident: Identity,
    Json(req): Json<GrantRequest>,
) -> WebResult<StatusCode> {
    let perms = parse_permissions(&req.permissions)?;
    with_admin(&state, &ident, move |vault, actor| {
        let subject = grant_subject(req.user.as_deref(), req.group.as_deref())?;
        vault.grant(actor, &req.org, &req.folder, subject, perms)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeQuery {
    #[param(format = "entity-name")]
    pub org: String,
    #[param(format = "entity-name")]
    pub folder: String,
    /// The user whose grant to remove (give `user` or `group`, not both).
    #[param(format = "entity-name")]
    pub user: Option<String>,
    /// The group whose grant to remove.
    #[param(format = "entity-name")]
    pub group: Option<String>,
}

/// Removes a grant.
#[utoipa::path(delete, path = "/api/v1/admin/grants", tag = "admin", params(RevokeQuery),
    responses((status = 204, description = "revoked"), (status = 400),
        (status = 404, description = "no such organization, folder, subject or grant (also when neither or both of user and group are named)")),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<RevokeQuery>,
) -> WebResult<StatusCode> {
    with_admin(&state, &ident, move |vault, actor| {
        // A query string cannot say "exactly one of user and group" in the API's schema; naming
        // neither or both names no grant, so there is none to remove.
        let subject = grant_subject(q.user.as_deref(), q.group.as_deref()).map_err(|_| {
            WebError::NotFound("no such grant: name either the user or the group".into())
        })?;
        vault.revoke(actor, &q.org, &q.folder, subject)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

// ---- audit ------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordJson {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub time: String,
    pub door: String,
    pub action: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub user: String,
    pub org: String,
    pub source: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditRecordView> for AuditRecordJson {
    fn from(r: AuditRecordView) -> Self {
        AuditRecordJson {
            seq: r.seq,
            time: r.ts,
            door: r.door,
            action: r.action,
            outcome: r.outcome,
            user: r.user,
            org: r.org,
            source: r.source,
            target: r.target,
            detail: r.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub records: Vec<AuditRecordJson>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Searches the audit log; runs the vault search for `q` and says where the next page starts.
pub(crate) async fn search_audit(
    state: &AppState,
    ident: &Identity,
    q: AuditQuery,
) -> WebResult<(Vec<AuditRecordView>, Option<i64>)> {
    with_admin(state, ident, move |vault, actor| {
        let records = vault.audit_search(actor, &q)?;
        let next = if records.len() >= q.limit as usize {
            records.last().map(|r| r.seq)
        } else {
            None
        };
        Ok((records, next))
    })
    .await
}

/// The audit log, newest first, filtered. Every filter is optional.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, description = "bad filter value")),
    security(("bearer" = []), ("session" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    ident: Identity,
    Query(params): Query<AuditParams>,
) -> WebResult<Json<AuditPage>> {
    let query = params.api_query()?;
    let (records, next_before) = search_audit(&state, &ident, query).await?;
    Ok(Json(AuditPage {
        records: records.into_iter().map(AuditRecordJson::from).collect(),
        next_before,
    }))
}

// ---- sessions and tokens ----------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct VaultSessionJson {
    pub id: String,
    /// `sftp` or `https`.
    pub door: String,
    pub user: String,
    pub org: String,
    pub source: String,
    pub started: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrowserSessionJson {
    /// Identifies the session to administrators (not the cookie).
    pub id: String,
    pub user: String,
    pub org: String,
    pub signed_in: String,
    pub idle_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsJson {
    /// Every session open in the server (SFTP connections, browser sessions, API token sessions).
    pub sessions: Vec<VaultSessionJson>,
    /// The web door's signed-in browsers.
    pub browser: Vec<BrowserSessionJson>,
}

pub(crate) fn browser_sessions(state: &AppState) -> Vec<BrowserSessionJson> {
    let now = Instant::now();
    let mut all: Vec<_> = state
        .browser_sessions()
        .into_iter()
        .map(|s| BrowserSessionJson {
            id: s.public_id.clone(),
            user: s.principal.user_name().to_owned(),
            org: s.principal.org_name().to_owned(),
            signed_in: rfc3339(s.created_unix),
            idle_seconds: now.duration_since(s.last_seen()).as_secs(),
        })
        .collect();
    all.sort_by(|a, b| a.signed_in.cmp(&b.signed_in).then_with(|| a.id.cmp(&b.id)));
    all
}

pub(crate) fn vault_sessions(vault: &Vault) -> Vec<VaultSessionJson> {
    vault
        .active_sessions()
        .into_iter()
        .map(|s| VaultSessionJson {
            id: s.id,
            door: s.door.as_str().to_owned(),
            user: s.user,
            org: s.org,
            source: s.source,
            started: rfc3339(s.started),
        })
        .collect()
}

/// Sessions open now: every door's sessions, and the browser sessions with their idle time.
#[utoipa::path(get, path = "/api/v1/admin/sessions", tag = "admin",
    responses((status = 200, body = SessionsJson)),
    security(("bearer" = []), ("session" = [])))]
pub async fn sessions(
    State(state): State<AppState>,
    ident: Identity,
) -> WebResult<Json<SessionsJson>> {
    let st = state.clone();
    with_admin(&state, &ident, move |vault, _| {
        Ok(Json(SessionsJson {
            sessions: vault_sessions(vault),
            browser: browser_sessions(&st),
        }))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenFilter {
    /// Only this user's tokens.
    #[param(format = "entity-name")]
    pub user: Option<String>,
}

/// API tokens of every user (or one), newest first; never their secrets.
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin", params(TokenFilter),
    operation_id = "admin_list_tokens",
    responses((status = 200, body = [TokenJson]), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<TokenFilter>,
) -> WebResult<Json<Vec<TokenJson>>> {
    with_admin(&state, &ident, move |vault, actor| {
        Ok(Json(
            vault
                .admin_list_api_tokens(actor, q.user.as_deref())?
                .into_iter()
                .map(TokenJson::from)
                .collect(),
        ))
    })
    .await
}

/// Revokes any user's API token.
#[utoipa::path(delete, path = "/api/v1/admin/tokens/{id}", tag = "admin",
    operation_id = "admin_revoke_token",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 404)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> WebResult<StatusCode> {
    with_admin(&state, &ident, move |vault, actor| {
        vault.admin_revoke_api_token(actor, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn audit_times_in_every_accepted_form() {
        // 2026-01-31T09:00:00Z
        let t = 1_769_850_000;
        assert_eq!(
            parse_time("from", "2026-01-31T09:00:00Z", false).unwrap(),
            Some(t)
        );
        assert_eq!(
            parse_time("from", "2026-01-31T10:00:00+01:00", false).unwrap(),
            Some(t)
        );
        assert_eq!(
            parse_time("from", "2026-01-31T09:00", false).unwrap(),
            Some(t)
        );
        assert_eq!(
            parse_time("to", "2026-01-31T09:00", true).unwrap(),
            Some(t + 59)
        );
        assert_eq!(
            parse_time("from", "2026-01-31 09:00:00", false).unwrap(),
            Some(t)
        );
        assert_eq!(
            parse_time("from", "2026-01-31", false).unwrap(),
            Some(t - 9 * 3600)
        );
        assert_eq!(
            parse_time("to", "2026-01-31", true).unwrap(),
            Some(t - 9 * 3600 + 86_399)
        );
        assert_eq!(parse_time("from", &t.to_string(), false).unwrap(), Some(t));
        assert_eq!(parse_time("from", "  ", false).unwrap(), None);
    }

    #[test]
    fn bad_audit_times_are_refused_with_the_field_name() {
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-01-31T25:00",
            "12345678901234567890",
            "-5",
            "1e9",
        ] {
            match parse_time("from", bad, false) {
                Err(WebError::BadRequest(d)) => assert!(d.starts_with("from:"), "{bad}: {d}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn audit_params_check_limit_before_and_order() {
        let p = |f: fn(&mut AuditParams)| {
            let mut a = AuditParams::default();
            f(&mut a);
            a.query()
        };
        let q = p(|_| {}).unwrap();
        assert_eq!(q.limit, DEFAULT_AUDIT_PAGE);
        assert!(q.user.is_none() && q.from.is_none() && q.before_seq.is_none());
        assert_eq!(
            p(|a| a.before = Some("42".into())).unwrap().before_seq,
            Some(42)
        );
        assert!(p(|a| a.before = Some("x".into())).is_err());
        assert!(p(|a| a.limit = Some("0".into())).is_err());
        assert!(p(|a| a.limit = Some("501".into())).is_err());
        assert_eq!(p(|a| a.limit = Some("500".into())).unwrap().limit, 500);
        assert!(p(|a| {
            a.from = Some("2026-02-01".into());
            a.to = Some("2026-01-01".into());
        })
        .is_err());
        assert_eq!(
            p(|a| a.user = Some(" alice ".into()))
                .unwrap()
                .user
                .as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn grants_name_exactly_one_subject() {
        assert!(matches!(
            grant_subject(Some("a"), None),
            Ok(GrantSubject::User("a"))
        ));
        assert!(matches!(
            grant_subject(None, Some("g")),
            Ok(GrantSubject::Group("g"))
        ));
        assert!(grant_subject(Some("a"), Some("g")).is_err());
        assert!(grant_subject(None, None).is_err());
        assert!(parse_permissions("list, read").is_ok());
        assert!(parse_permissions("").is_err());
        assert!(parse_permissions("list,root").is_err());
    }

    #[test]
    fn fingerprints_survive_an_unencoded_plus() {
        assert_eq!(unplus_fingerprint(" SHA256:ab cd/ef "), "SHA256:ab+cd/ef");
        assert_eq!(unplus_fingerprint("SHA256:ab+cd"), "SHA256:ab+cd");
    }
}
