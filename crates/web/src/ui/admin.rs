//! Administration pages for administrators and privacy officers: an overview, organizations,
//! users (with keys and account actions), folders and grants, the audit log, open sessions and API
//! tokens. Pages read and change through the same helpers as `/api/v1/admin` (an `AdminActor` from
//! the vault, on a blocking thread). After a successful form post the browser is sent back with a
//! fixed `?done=` code that selects a fixed message (user text is never echoed that way); a refused
//! change re-renders the page with the vault's explanation and the matching HTTP status.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use lockbox_types::{Permission, PermissionSet, Role};
use lockbox_vault::{AuditQuery, AuditRecordView, MetricsSnapshot};
use serde::Deserialize;

use super::{error_page, human_size, q, render, see_other, when, Nav, TokenRow};
use crate::access::Identity;
use crate::api::admin::{
    apply_user_action, browser_sessions, grant_subject, load_folders, load_grants, load_user, opt,
    search_audit, user_json, vault_sessions, with_admin, AuditParams, BrowserSessionJson,
    FolderJson, GrantJson, KeyJson, UserAction, UserJson, VaultSessionJson,
};
use crate::error::{WebError, WebResult};
use crate::routes::{self, Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/admin", Access::Admin, overview),
        routes::get("/admin/orgs", Access::Admin, orgs),
        routes::post("/admin/orgs", Access::Admin, create_org),
        routes::post("/admin/orgs/{name}/policy", Access::Admin, set_org_policy),
        routes::get("/admin/users", Access::Admin, users),
        routes::post("/admin/users", Access::Admin, create_user),
        routes::get("/admin/users/{name}", Access::Admin, user),
        routes::post("/admin/users/{name}/disable", Access::Admin, disable_user),
        routes::post("/admin/users/{name}/enable", Access::Admin, enable_user),
        routes::post("/admin/users/{name}/unlock", Access::Admin, unlock_user),
        routes::post("/admin/users/{name}/reset-mfa", Access::Admin, reset_mfa),
        routes::post("/admin/users/{name}/password", Access::Admin, set_password),
        routes::post("/admin/users/{name}/keys", Access::Admin, add_key),
        routes::post("/admin/users/{name}/keys/remove", Access::Admin, remove_key),
        routes::get("/admin/folders", Access::Admin, folders),
        routes::post("/admin/folders", Access::Admin, create_folder),
        routes::post("/admin/grants", Access::Admin, grant),
        routes::post("/admin/grants/revoke", Access::Admin, revoke),
        routes::get("/admin/audit", Access::Admin, audit),
        routes::get("/admin/sessions", Access::Admin, sessions),
        routes::post("/admin/sessions/{id}/end", Access::Admin, end_session),
        routes::get("/admin/tokens", Access::Admin, tokens),
        routes::post("/admin/tokens/{id}/revoke", Access::Admin, revoke_token),
    ]
}

/// Every audit action name, for the filter's select (stable identifiers from `lockbox_audit::Action`).
fn audit_actions() -> Vec<&'static str> {
    lockbox_vault::Action::ALL
        .iter()
        .map(|a| a.as_str())
        .collect()
}

/// The fixed message behind each `?done=` code: the query selects one, it never supplies text.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "org_created" => "Organization created.",
        "policy_set" => "Login policy saved; it applies from the next SFTP login.",
        "user_created" => "User created. Without a password they can sign in with an SSH key only; they set up two-step sign-in at their first browser sign-in.",
        "disabled" => "Account disabled. Its browser sessions were ended and its sign-ins and API tokens are refused.",
        "enabled" => "Account enabled.",
        "unlocked" => "Account unlocked; the failed sign-in counter is back to zero.",
        "mfa_reset" => "Two-step sign-in reset. The user sets up a new authenticator at their next sign-in; their browser sessions were ended.",
        "password_set" => "Password set.",
        "key_added" => "SSH key added.",
        "key_removed" => "SSH key removed.",
        "folder_created" => "Folder created. Grant access to it below.",
        "granted" => "Access granted.",
        "revoked" => "Access removed.",
        "session_ended" => "Session ended; that browser is signed out.",
        "session_gone" => "That session had already ended.",
        "token_revoked" => "Token revoked.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// One `<option>`, with its selection decided in Rust (templates only print).
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices<I: IntoIterator<Item = String>>(
    values: I,
    current: &str,
    empty_label: Option<&str>,
) -> Vec<Choice> {
    let mut out = Vec::new();
    if let Some(label) = empty_label {
        out.push(Choice {
            value: String::new(),
            label: label.to_owned(),
            selected: current.is_empty(),
        });
    }
    out.extend(values.into_iter().map(|v| Choice {
        selected: v == current,
        label: v.clone(),
        value: v,
    }));
    out
}

fn csrf_of(ident: &Identity) -> String {
    match ident {
        Identity::Browser(s) => s.csrf.clone(),
        Identity::Token { .. } => String::new(),
    }
}

/// What every admin page carries besides its own data.
struct Frame {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

impl Frame {
    fn new(ident: &Identity, done: &str, error: Option<String>) -> Frame {
        Frame {
            nav: Nav::from_identity(ident),
            csrf: csrf_of(ident),
            notice: if error.is_some() { None } else { notice(done) },
            error,
        }
    }
}

/// The result of a form post: the `?done=` code of the fixed notice to go back with, or the error to
/// show on the page again.
type Outcome = WebResult<&'static str>;

fn form_error(_: FormRejection) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "the form could not be read; reload the page and try again",
    )
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

fn idle(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

// ---- overview ---------------------------------------------------------------------------------------

struct FailedLogin {
    time: String,
    user: String,
    org: String,
    door: String,
    source: String,
    reason: String,
}

struct Flagged {
    name: String,
    org: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct OverviewPage {
    nav: Option<Nav>,
    notice: Option<&'static str>,
    error: Option<String>,
    orgs: usize,
    transfer_users: usize,
    admin_users: usize,
    shared_folders: usize,
    sftp_sessions: u64,
    https_sessions: u64,
    browser_sessions: usize,
    m: MetricsSnapshot,
    uploaded: String,
    downloaded: String,
    flagged: Vec<Flagged>,
    failed_logins: Vec<FailedLogin>,
}

async fn overview(State(state): State<AppState>, ident: Identity) -> Response {
    let loaded = with_admin(&state, &ident, |vault, actor| {
        let orgs = vault.list_orgs()?.len();
        let users: Vec<UserJson> = vault.list_users(None)?.iter().map(user_json).collect();
        let shared = vault
            .list_folders(None)?
            .iter()
            .filter(|f| f.home_of.is_none())
            .count();
        let failed = vault.audit_search(
            actor,
            &AuditQuery {
                action: Some("login_failed".into()),
                limit: 10,
                ..Default::default()
            },
        )?;
        Ok((orgs, users, shared, failed, vault.metrics()))
    })
    .await;
    let (orgs, users, shared, failed, m) = match loaded {
        Ok(x) => x,
        Err(e) => return error_page(e.status(), &e.detail()),
    };
    let f = Frame::new(&ident, "", None);
    let flagged = users
        .iter()
        .filter(|u| u.disabled || u.locked)
        .map(|u| Flagged {
            name: u.name.clone(),
            org: u.org.clone(),
            state: if u.disabled { "disabled" } else { "locked" },
        })
        .collect();
    let failed_logins = failed
        .into_iter()
        .map(|r| FailedLogin {
            time: when(r.time),
            reason: r
                .detail
                .get("reason")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .unwrap_or_default(),
            user: r.user,
            org: r.org,
            door: r.door,
            source: r.source,
        })
        .collect();
    render(
        StatusCode::OK,
        &OverviewPage {
            nav: f.nav,
            notice: f.notice,
            error: f.error,
            orgs,
            transfer_users: users.iter().filter(|u| u.role == "transfer").count(),
            admin_users: users.iter().filter(|u| u.role == "admin").count(),
            shared_folders: shared,
            sftp_sessions: m.active_sessions_sftp,
            https_sessions: m.active_sessions_https,
            browser_sessions: state.browser_sessions().len(),
            uploaded: human_size(m.bytes_uploaded),
            downloaded: human_size(m.bytes_downloaded),
            m,
            flagged,
            failed_logins,
        },
    )
}

// ---- organizations ----------------------------------------------------------------------------------

struct OrgRowView {
    name: String,
    created: String,
    sftp_password_totp: bool,
    users: usize,
    folders: usize,
}

#[derive(Template)]
#[template(path = "admin_orgs.html")]
struct OrgsPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    orgs: Vec<OrgRowView>,
}

async fn orgs_page(
    state: &AppState,
    ident: &Identity,
    done: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let loaded = with_admin(state, ident, |vault, _| {
        let users = vault.list_users(None)?;
        let folders = vault.list_folders(None)?;
        Ok(vault
            .list_orgs()?
            .into_iter()
            .map(|o| OrgRowView {
                users: users.iter().filter(|u| u.org_id == o.id).count(),
                folders: folders
                    .iter()
                    .filter(|f| f.org_id == o.id && f.home_of.is_none())
                    .count(),
                created: when(o.created_at),
                sftp_password_totp: o.sftp_password_totp,
                name: o.name,
            })
            .collect::<Vec<_>>())
    })
    .await;
    let orgs = match loaded {
        Ok(x) => x,
        Err(e) => return error_page(e.status(), &e.detail()),
    };
    let f = Frame::new(ident, done, error);
    render(
        status,
        &OrgsPage {
            nav: f.nav,
            csrf: f.csrf,
            notice: f.notice,
            error: f.error,
            orgs,
        },
    )
}

async fn orgs(State(state): State<AppState>, ident: Identity, Query(d): Query<Done>) -> Response {
    orgs_page(&state, &ident, &d.done, StatusCode::OK, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OrgForm {
    name: String,
}

async fn create_org(
    State(state): State<AppState>,
    ident: Identity,
    form: Result<Form<OrgForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let r = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.create_org(actor, form.name.trim())?)
    })
    .await;
    match r {
        Ok(_) => see_other("/admin/orgs?done=org_created"),
        Err(e) => orgs_page(&state, &ident, "", e.status(), Some(e.detail())).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyForm {
    sftp_password_totp: String,
}

async fn set_org_policy(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    form: Result<Form<PolicyForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let on = match form.sftp_password_totp.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            return orgs_page(
                &state,
                &ident,
                "",
                StatusCode::BAD_REQUEST,
                Some("choose on or off".into()),
            )
            .await
        }
    };
    let r = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.set_org_sftp_password_totp(actor, &name, on)?)
    })
    .await;
    match r {
        Ok(()) => see_other("/admin/orgs?done=policy_set"),
        Err(e) => orgs_page(&state, &ident, "", e.status(), Some(e.detail())).await,
    }
}

// ---- users ------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    filter_orgs: Vec<Choice>,
    create_orgs: Vec<Choice>,
    filtered: bool,
    /// Each user with their creation date.
    users: Vec<(UserJson, String)>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsersQuery {
    org: String,
    done: String,
}

async fn users_page(
    state: &AppState,
    ident: &Identity,
    query: UsersQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let org = query.org.trim().to_owned();
    let org2 = org.clone();
    let loaded = with_admin(state, ident, move |vault, _| {
        let orgs: Vec<String> = vault.list_orgs()?.into_iter().map(|o| o.name).collect();
        let filter = Some(org2.as_str()).filter(|o| !o.is_empty());
        let users: Vec<(UserJson, String)> = vault
            .list_users(filter)?
            .iter()
            .map(|u| (user_json(u), when(u.created_at)))
            .collect();
        Ok((orgs, users))
    })
    .await;
    let (orgs, users) = match loaded {
        Ok(x) => x,
        Err(e) => return error_page(e.status(), &e.detail()),
    };
    let f = Frame::new(ident, &query.done, error);
    render(
        status,
        &UsersPage {
            nav: f.nav,
            csrf: f.csrf,
            notice: f.notice,
            error: f.error,
            filter_orgs: choices(orgs.clone(), &org, Some("All organizations")),
            create_orgs: choices(orgs, &org, None),
            filtered: !org.is_empty(),
            users,
        },
    )
}

async fn users(
    State(state): State<AppState>,
    ident: Identity,
    Query(query): Query<UsersQuery>,
) -> Response {
    users_page(&state, &ident, query, StatusCode::OK, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserForm {
    org: String,
    name: String,
    role: String,
    password: String,
}

async fn create_user(
    State(state): State<AppState>,
    ident: Identity,
    form: Result<Form<UserForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let back_org = form.org.clone();
    let r: WebResult<String> = match Role::parse(form.role.trim()) {
        Err(_) => Err(WebError::BadRequest(
            "Choose a role: transfer (partner) or admin.".into(),
        )),
        Ok(role) => {
            with_admin(&state, &ident, move |vault, actor| {
                let pw = Some(form.password.as_str()).filter(|p| !p.is_empty());
                Ok(vault
                    .create_user(actor, form.org.trim(), form.name.trim(), role, pw)?
                    .name)
            })
            .await
        }
    };
    match r {
        Ok(name) => see_other(&format!("/admin/users/{}?done=user_created", q(&name))),
        Err(e) => {
            let query = UsersQuery {
                org: back_org,
                done: String::new(),
            };
            users_page(&state, &ident, query, e.status(), Some(e.detail())).await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    u: UserJson,
    keys: Vec<KeyJson>,
    groups: String,
    tokens: Vec<TokenRow>,
    is_self: bool,
}

async fn user_page(
    state: &AppState,
    ident: &Identity,
    name: String,
    done: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let loaded = with_admin(state, ident, move |vault, actor| {
        let (user, keys, groups) = load_user(vault, &name)?;
        let tokens = vault.admin_list_api_tokens(actor, Some(&user.name))?;
        Ok((user, keys, groups, tokens))
    })
    .await;
    let (user, keys, groups, tokens) = match loaded {
        Ok(x) => x,
        Err(e) => return error_page(e.status(), &e.detail()),
    };
    let f = Frame::new(ident, done, error);
    render(
        status,
        &UserPage {
            nav: f.nav,
            csrf: f.csrf,
            notice: f.notice,
            error: f.error,
            is_self: user.name == ident.principal().user_name(),
            u: user_json(&user),
            keys,
            groups: if groups.is_empty() {
                "none".into()
            } else {
                groups.join(", ")
            },
            tokens: tokens.into_iter().map(TokenRow::from).collect(),
        },
    )
}

async fn user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    Query(d): Query<Done>,
) -> Response {
    user_page(&state, &ident, name, &d.done, StatusCode::OK, None).await
}

/// Back to the user's page on success, the page with the error otherwise.
async fn after_user_post(
    state: &AppState,
    ident: &Identity,
    name: String,
    result: Outcome,
) -> Response {
    match result {
        Ok(code) => see_other(&format!("/admin/users/{}?done={code}", q(&name))),
        Err(e) => user_page(state, ident, name, "", e.status(), Some(e.detail())).await,
    }
}

async fn user_action(
    state: AppState,
    ident: Identity,
    name: String,
    action: UserAction,
    code: &'static str,
) -> Response {
    let result = apply_user_action(&state, &ident, name.clone(), action)
        .await
        .map(|_| code);
    after_user_post(&state, &ident, name, result).await
}

async fn disable_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> Response {
    user_action(state, ident, name, UserAction::Disable, "disabled").await
}

async fn enable_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> Response {
    user_action(state, ident, name, UserAction::Enable, "enabled").await
}

async fn unlock_user(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> Response {
    user_action(state, ident, name, UserAction::Unlock, "unlocked").await
}

async fn reset_mfa(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
) -> Response {
    user_action(state, ident, name, UserAction::ResetMfa, "mfa_reset").await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    password: String,
    confirm: String,
}

async fn set_password(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let result = if form.password != form.confirm {
        Err(WebError::BadRequest(
            "The two passwords differ; nothing was changed.".into(),
        ))
    } else {
        let n = name.clone();
        with_admin(&state, &ident, move |vault, actor| {
            Ok(vault.set_password(actor, &n, &form.password)?)
        })
        .await
        .map(|()| "password_set")
    };
    after_user_post(&state, &ident, name, result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyForm {
    key: String,
    fingerprint: String,
}

async fn add_key(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    form: Result<Form<KeyForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let n = name.clone();
    let result = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.add_key(actor, &n, form.key.trim())?)
    })
    .await
    .map(|_| "key_added");
    after_user_post(&state, &ident, name, result).await
}

async fn remove_key(
    State(state): State<AppState>,
    ident: Identity,
    Path(name): Path<String>,
    form: Result<Form<KeyForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let n = name.clone();
    let result = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.remove_key(
            actor,
            &n,
            &crate::api::admin::unplus_fingerprint(&form.fingerprint),
        )?)
    })
    .await
    .map(|()| "key_removed");
    after_user_post(&state, &ident, name, result).await
}

// ---- folders and grants -----------------------------------------------------------------------------

struct FolderView {
    org: String,
    name: String,
    created: String,
    grants: usize,
}

struct PermBox {
    name: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin_folders.html")]
struct FoldersPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    filter_orgs: Vec<Choice>,
    create_orgs: Vec<Choice>,
    folder_choices: Vec<Choice>,
    folders: Vec<FolderView>,
    homes: usize,
    grants: Vec<GrantJson>,
    subjects: Vec<String>,
    perms: Vec<PermBox>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FoldersQuery {
    org: String,
    done: String,
}

/// The owner's own full grant on their home folder is implied by the account; every other grant,
/// including any on someone's home folder, is listed.
fn is_default_home_grant(g: &GrantJson, folders: &[FolderJson]) -> bool {
    g.subject == "user"
        && g.folder == format!("{}.{}", lockbox_vault::HOME_MOUNT, g.name)
        && folders
            .iter()
            .any(|f| f.home && f.name == g.folder && f.org == g.org)
}

async fn folders_page(
    state: &AppState,
    ident: &Identity,
    query: FoldersQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let org = query.org.trim().to_owned();
    let org2 = org.clone();
    let loaded = with_admin(state, ident, move |vault, _| {
        let filter = Some(org2.as_str()).filter(|o| !o.is_empty());
        let orgs: Vec<String> = vault.list_orgs()?.into_iter().map(|o| o.name).collect();
        let folders = load_folders(vault, filter)?;
        let grants = load_grants(vault, filter)?;
        let mut subjects: Vec<String> = vault
            .list_users(filter)?
            .into_iter()
            .map(|u| u.name)
            .collect();
        let group_orgs: Vec<String> = match filter {
            Some(o) => vec![o.to_owned()],
            None => orgs.clone(),
        };
        for o in &group_orgs {
            subjects.extend(vault.list_groups(o)?.into_iter().map(|(g, _)| g.name));
        }
        subjects.sort();
        subjects.dedup();
        Ok((orgs, folders, grants, subjects))
    })
    .await;
    let (orgs, folders, grants, subjects) = match loaded {
        Ok(x) => x,
        Err(e) => return error_page(e.status(), &e.detail()),
    };
    let grants: Vec<GrantJson> = grants
        .into_iter()
        .filter(|g| !is_default_home_grant(g, &folders))
        .collect();
    let homes = folders.iter().filter(|f| f.home).count();
    let shared: Vec<&FolderJson> = folders.iter().filter(|f| !f.home).collect();
    let folder_choices = shared
        .iter()
        .map(|f| Choice {
            value: format!("{}/{}", f.org, f.name),
            label: format!("{} / {}", f.org, f.name),
            selected: false,
        })
        .collect();
    let views = shared
        .iter()
        .map(|f| FolderView {
            org: f.org.clone(),
            name: f.name.clone(),
            created: f.created.get(..10).unwrap_or_default().to_owned(),
            grants: grants
                .iter()
                .filter(|g| g.org == f.org && g.folder == f.name)
                .count(),
        })
        .collect();
    let f = Frame::new(ident, &query.done, error);
    render(
        status,
        &FoldersPage {
            nav: f.nav,
            csrf: f.csrf,
            notice: f.notice,
            error: f.error,
            filter_orgs: choices(orgs.clone(), &org, Some("All organizations")),
            create_orgs: choices(orgs, &org, None),
            folder_choices,
            folders: views,
            homes,
            grants,
            subjects,
            perms: Permission::ALL
                .iter()
                .map(|p| PermBox {
                    name: p.as_str(),
                    checked: matches!(p, Permission::List | Permission::Read),
                })
                .collect(),
        },
    )
}

async fn folders(
    State(state): State<AppState>,
    ident: Identity,
    Query(query): Query<FoldersQuery>,
) -> Response {
    folders_page(&state, &ident, query, StatusCode::OK, None).await
}

async fn after_folders_post(state: &AppState, ident: &Identity, result: Outcome) -> Response {
    match result {
        Ok(code) => see_other(&format!("/admin/folders?done={code}")),
        Err(e) => {
            folders_page(
                state,
                ident,
                FoldersQuery::default(),
                e.status(),
                Some(e.detail()),
            )
            .await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FolderForm {
    org: String,
    name: String,
}

async fn create_folder(
    State(state): State<AppState>,
    ident: Identity,
    form: Result<Form<FolderForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let result = with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.create_folder(actor, form.org.trim(), form.name.trim())?)
    })
    .await
    .map(|_| "folder_created");
    after_folders_post(&state, &ident, result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GrantForm {
    /// `org/folder` from the folder select, or `org` + `name` from a revoke button.
    folder: String,
    org: String,
    /// `user` or `group`.
    kind: String,
    subject: String,
    list: Option<String>,
    read: Option<String>,
    write: Option<String>,
    delete: Option<String>,
    mkdir: Option<String>,
    rename: Option<String>,
}

impl GrantForm {
    fn org_and_folder(&self) -> WebResult<(String, String)> {
        if !self.org.trim().is_empty() {
            return Ok((self.org.trim().to_owned(), self.folder.trim().to_owned()));
        }
        self.folder
            .split_once('/')
            .map(|(o, f)| (o.trim().to_owned(), f.trim().to_owned()))
            .filter(|(o, f)| !o.is_empty() && !f.is_empty())
            .ok_or_else(|| WebError::BadRequest("Choose a folder.".into()))
    }

    fn subject(&self) -> WebResult<(Option<&str>, Option<&str>)> {
        let name = self.subject.trim();
        if name.is_empty() {
            return Err(WebError::BadRequest(
                "Name the user or group to grant access to.".into(),
            ));
        }
        match self.kind.as_str() {
            "user" => Ok((Some(name), None)),
            "group" => Ok((None, Some(name))),
            _ => Err(WebError::BadRequest(
                "Choose whether access is for a user or a group.".into(),
            )),
        }
    }

    fn perms(&self) -> PermissionSet {
        [
            (&self.list, Permission::List),
            (&self.read, Permission::Read),
            (&self.write, Permission::Write),
            (&self.delete, Permission::Delete),
            (&self.mkdir, Permission::Mkdir),
            (&self.rename, Permission::Rename),
        ]
        .iter()
        .filter(|(on, _)| on.is_some())
        .fold(PermissionSet::NONE, |set, (_, p)| set.with(*p))
    }
}

async fn grant(
    State(state): State<AppState>,
    ident: Identity,
    form: Result<Form<GrantForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let checked = form.org_and_folder().and_then(|of| {
        form.subject()?;
        let perms = form.perms();
        if perms.is_empty() {
            return Err(WebError::BadRequest("Tick at least one permission.".into()));
        }
        Ok((of, perms))
    });
    let result = match checked {
        Err(e) => Err(e),
        Ok(((org, folder), perms)) => {
            with_admin(&state, &ident, move |vault, actor| {
                let (u, g) = form.subject()?;
                vault.grant(actor, &org, &folder, grant_subject(u, g)?, perms)?;
                Ok("granted")
            })
            .await
        }
    };
    after_folders_post(&state, &ident, result).await
}

async fn revoke(
    State(state): State<AppState>,
    ident: Identity,
    form: Result<Form<GrantForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(e),
    };
    let result = match form.org_and_folder() {
        Err(e) => Err(e),
        Ok((org, folder)) => {
            with_admin(&state, &ident, move |vault, actor| {
                let (u, g) = form.subject()?;
                vault.revoke(actor, &org, &folder, grant_subject(u, g)?)?;
                Ok("revoked")
            })
            .await
        }
    };
    after_folders_post(&state, &ident, result).await
}

// ---- audit ------------------------------------------------------------------------------------------

struct AuditRow {
    seq: i64,
    time: String,
    action: String,
    outcome: String,
    outcome_class: &'static str,
    user: String,
    org: String,
    door: String,
    source: String,
    target: String,
    detail: String,
}

impl From<AuditRecordView> for AuditRow {
    fn from(r: AuditRecordView) -> Self {
        let detail = match &r.detail {
            serde_json::Value::Object(m) if m.is_empty() => String::new(),
            serde_json::Value::Null => String::new(),
            v => serde_json::to_string(v).unwrap_or_default(),
        };
        AuditRow {
            seq: r.seq,
            time: when(r.time),
            outcome_class: match r.outcome.as_str() {
                "ok" => "ok",
                "denied" => "denied",
                _ => "failed",
            },
            action: r.action,
            outcome: r.outcome,
            user: r.user,
            org: r.org,
            door: r.door,
            source: r.source,
            target: r.target,
            detail: clip(&detail, 600),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    notice: Option<&'static str>,
    error: Option<String>,
    user: String,
    org: String,
    actions: Vec<Choice>,
    from: String,
    to: String,
    rows: Vec<AuditRow>,
    paged: bool,
    older: Option<String>,
    newest: String,
    filtered: bool,
}

/// A time filter as a `datetime-local` value (UTC), so the form shows what was searched.
fn local_input(unix: Option<i64>) -> String {
    let Some(t) = unix.and_then(|u| time::OffsetDateTime::from_unix_timestamp(u).ok()) else {
        return String::new();
    };
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    t.format(&f).unwrap_or_default()
}

fn audit_link(p: &AuditParams, before: Option<i64>) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("user", &p.user),
        ("org", &p.org),
        ("action", &p.action),
        ("from", &p.from),
        ("to", &p.to),
    ] {
        if let Some(v) = opt(v) {
            parts.push(format!("{k}={}", q(v)));
        }
    }
    if let Some(b) = before {
        parts.push(format!("before={b}"));
    }
    if parts.is_empty() {
        "/admin/audit".into()
    } else {
        format!("/admin/audit?{}", parts.join("&"))
    }
}

async fn audit(
    State(state): State<AppState>,
    ident: Identity,
    Query(params): Query<AuditParams>,
) -> Response {
    let mut params = params;
    params.limit = None;
    let (status, error, rows, older, shown_from, shown_to) = match params.query() {
        Err(e) => (
            e.status(),
            Some(e.detail()),
            vec![],
            None,
            opt(&params.from).unwrap_or_default().to_owned(),
            opt(&params.to).unwrap_or_default().to_owned(),
        ),
        Ok(query) => {
            let (from, to) = (query.from, query.to);
            match search_audit(&state, &ident, query).await {
                Ok((records, next)) => (
                    StatusCode::OK,
                    None,
                    records.into_iter().map(AuditRow::from).collect(),
                    next.map(|n| audit_link(&params, Some(n))),
                    local_input(from),
                    local_input(to),
                ),
                Err(e) => (
                    e.status(),
                    Some(e.detail()),
                    vec![],
                    None,
                    local_input(from),
                    local_input(to),
                ),
            }
        }
    };
    let action = opt(&params.action).unwrap_or_default().to_owned();
    let mut names: Vec<String> = audit_actions().into_iter().map(str::to_owned).collect();
    names.sort();
    let f = Frame::new(&ident, "", error);
    render(
        status,
        &AuditPage {
            nav: f.nav,
            notice: f.notice,
            error: f.error,
            user: opt(&params.user).unwrap_or_default().to_owned(),
            org: opt(&params.org).unwrap_or_default().to_owned(),
            actions: choices(names, &action, Some("Any action")),
            from: shown_from,
            to: shown_to,
            rows,
            paged: opt(&params.before).is_some(),
            older,
            newest: audit_link(&params, None),
            filtered: [
                &params.user,
                &params.org,
                &params.action,
                &params.from,
                &params.to,
            ]
            .iter()
            .any(|v| opt(v).is_some()),
        },
    )
}

// ---- sessions ---------------------------------------------------------------------------------------

struct BrowserRow {
    s: BrowserSessionJson,
    signed_in: String,
    idle: String,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_sessions.html")]
struct SessionsPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    sessions: Vec<VaultSessionJson>,
    browsers: Vec<BrowserRow>,
}

fn rfc3339_to_when(s: &str) -> String {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| when(t.unix_timestamp()))
        .unwrap_or_else(|_| s.to_owned())
}

async fn sessions_page(state: &AppState, ident: &Identity, done: &str) -> Response {
    let st = state.clone();
    let loaded = with_admin(state, ident, move |vault, _| {
        Ok((vault_sessions(vault), browser_sessions(&st)))
    })
    .await;
    let (mut sessions, browsers) = match loaded {
        Ok(x) => x,
        Err(e) => return error_page(e.status(), &e.detail()),
    };
    for s in &mut sessions {
        s.started = rfc3339_to_when(&s.started);
    }
    let own = match ident {
        Identity::Browser(s) => s.public_id.clone(),
        Identity::Token { .. } => String::new(),
    };
    let browsers = browsers
        .into_iter()
        .map(|s| BrowserRow {
            signed_in: rfc3339_to_when(&s.signed_in),
            idle: idle(s.idle_seconds),
            is_self: s.id == own,
            s,
        })
        .collect();
    let f = Frame::new(ident, done, None);
    render(
        StatusCode::OK,
        &SessionsPage {
            nav: f.nav,
            csrf: f.csrf,
            notice: f.notice,
            error: f.error,
            sessions,
            browsers,
        },
    )
}

async fn sessions(
    State(state): State<AppState>,
    ident: Identity,
    Query(d): Query<Done>,
) -> Response {
    sessions_page(&state, &ident, &d.done).await
}

async fn end_session(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> Response {
    // The vault decides who administers, here as everywhere.
    if let Err(e) = state.vault.admin_actor(ident.principal()) {
        let e = WebError::from(e);
        return error_page(e.status(), &e.detail());
    }
    let st = state.clone();
    let ended = crate::api::blocking(move || {
        Ok(st.end_session_by_public_id(&id, "ended by an administrator"))
    })
    .await;
    match ended {
        Ok(true) => see_other("/admin/sessions?done=session_ended"),
        Ok(false) => see_other("/admin/sessions?done=session_gone"),
        Err(e) => error_page(e.status(), &e.detail()),
    }
}

// ---- API tokens -------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    user: String,
    tokens: Vec<TokenRow>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokensQuery {
    user: String,
    done: String,
}

async fn tokens_page(
    state: &AppState,
    ident: &Identity,
    query: TokensQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let user = query.user.trim().to_owned();
    let u2 = user.clone();
    let loaded = with_admin(state, ident, move |vault, actor| {
        Ok(vault.admin_list_api_tokens(actor, Some(u2.as_str()).filter(|u| !u.is_empty()))?)
    })
    .await;
    let (tokens, status, error) = match loaded {
        Ok(t) => (t, status, error),
        // An unknown user in the filter: say so on the page instead of a bare error page.
        Err(e) => (vec![], e.status(), Some(e.detail())),
    };
    let f = Frame::new(ident, &query.done, error);
    render(
        status,
        &TokensPage {
            nav: f.nav,
            csrf: f.csrf,
            notice: f.notice,
            error: f.error,
            user,
            tokens: tokens.into_iter().map(TokenRow::from).collect(),
        },
    )
}

async fn tokens(
    State(state): State<AppState>,
    ident: Identity,
    Query(query): Query<TokensQuery>,
) -> Response {
    tokens_page(&state, &ident, query, StatusCode::OK, None).await
}

async fn revoke_token(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> Response {
    match with_admin(&state, &ident, move |vault, actor| {
        Ok(vault.admin_revoke_api_token(actor, &id)?)
    })
    .await
    {
        Ok(()) => see_other("/admin/tokens?done=token_revoked"),
        Err(e) => {
            tokens_page(
                &state,
                &ident,
                TokensQuery::default(),
                e.status(),
                Some(e.detail()),
            )
            .await
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_fixed_text() {
        assert_eq!(notice("granted"), Some("Access granted."));
        assert_eq!(notice("<script>alert(1)</script>"), None);
        assert_eq!(notice(""), None);
    }

    #[test]
    fn audit_action_names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for a in audit_actions() {
            assert!(seen.insert(a), "{a} twice");
            assert!(
                a.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{a}"
            );
        }
        for a in [
            lockbox_vault::Action::UploadCommitted,
            lockbox_vault::Action::ApiTokenRevoked,
            lockbox_vault::Action::ServerStarted,
        ] {
            assert!(audit_actions().contains(&a.as_str()));
        }
    }

    #[test]
    fn older_link_keeps_the_filters_encoded() {
        let p = AuditParams {
            user: Some("alice".into()),
            action: Some("upload_committed".into()),
            from: Some("2026-01-01T00:00".into()),
            ..Default::default()
        };
        assert_eq!(
            audit_link(&p, Some(42)),
            "/admin/audit?user=alice&action=upload%5Fcommitted&from=2026%2D01%2D01T00%3A00&before=42"
        );
        assert_eq!(audit_link(&AuditParams::default(), None), "/admin/audit");
    }

    #[test]
    fn grant_form_reads_folder_subject_and_boxes() {
        let f = GrantForm {
            folder: "acme/claims".into(),
            kind: "group".into(),
            subject: "billing".into(),
            read: Some("on".into()),
            write: Some("on".into()),
            ..Default::default()
        };
        assert_eq!(
            f.org_and_folder().unwrap(),
            ("acme".into(), "claims".into())
        );
        assert_eq!(f.subject().unwrap(), (None, Some("billing")));
        assert_eq!(f.perms().names(), vec!["read", "write"]);
        let bad = GrantForm {
            folder: "claims".into(),
            kind: "robot".into(),
            subject: "x".into(),
            ..Default::default()
        };
        assert!(bad.org_and_folder().is_err());
        assert!(bad.subject().is_err());
    }

    #[test]
    fn idle_times_read_well() {
        assert_eq!(idle(5), "5 s");
        assert_eq!(idle(125), "2 min");
        assert_eq!(idle(7_380), "2 h 3 min");
    }
}
