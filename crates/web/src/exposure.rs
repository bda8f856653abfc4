//! The breach exposure report from the admin UI. The report engine sits above the doors in the
//! layering (it reads inventory, lifecycle and audit), so the binary plugs it in through
//! [`ExposureRunner`]; this module only renders the form, the list of packages and their downloads.
//! Packages made here are always age-encrypted to a recipient the privacy officer supplies, so the
//! mailing lists on the server's disk and on the wire are ciphertext only.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use bytes::Bytes;
use lockbox_vault::AdminActor;
use serde::Deserialize;

use crate::access::Identity;
use crate::api::blocking;
use crate::api::files::{attachment_response, stream_blocking, READ_CHUNK};
use crate::error::WebError;
use crate::routes::{self, Access, Route};
use crate::state::AppState;
use crate::ui::{render, Nav};

/// What the form asks for; the runner parses and validates it like the CLI does.
#[derive(Debug, Clone)]
pub struct ExposureParams {
    pub from: String,
    pub to: String,
    pub discovered: String,
    pub scope: String,
    pub basis: String,
    pub keys_exposed: String,
    pub ba_deadline_days: u32,
    pub mailing_list: bool,
    /// An age recipient (`age1...`): every file of the package is encrypted to it.
    pub encrypt_to: String,
}

#[derive(Debug, Clone)]
pub struct ExposureSummary {
    pub id: String,
    pub text: String,
}

/// One package on disk and its files (relative paths), for the list.
#[derive(Debug, Clone)]
pub struct PackageListing {
    pub id: String,
    pub created: i64,
    pub files: Vec<(String, u64)>,
}

/// Implemented by the binary over `lockbox-exposure`.
pub trait ExposureRunner: Send + Sync + 'static {
    /// Builds a package (audited as `exposure_report` by the runner).
    fn run(&self, actor: &AdminActor, params: &ExposureParams) -> Result<ExposureSummary, String>;
    /// Packages made from the web UI, newest first.
    fn list(&self) -> Result<Vec<PackageListing>, String>;
    /// Opens one file of a package; `rel` is a path inside it. Must refuse anything outside.
    fn open(
        &self,
        actor: &AdminActor,
        id: &str,
        rel: &str,
    ) -> Result<(Box<dyn Read + Send>, u64), String>;
}

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/admin/exposure", Access::Admin, page),
        routes::post("/admin/exposure", Access::Admin, run),
        routes::get("/admin/exposure/download", Access::Admin, download),
    ]
}

struct FileLink {
    name: String,
    size: String,
    href: String,
}

struct PackageView {
    id: String,
    created: String,
    files: Vec<FileLink>,
}

#[derive(Template)]
#[template(path = "admin_exposure.html")]
struct ExposurePage {
    nav: Option<Nav>,
    csrf: String,
    available: bool,
    packages: Vec<PackageView>,
    result: Option<String>,
    error: Option<String>,
    form: FormValues,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FormValues {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    discovered: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    basis: String,
    #[serde(default)]
    keys_exposed: String,
    #[serde(default)]
    ba_deadline_days: String,
    #[serde(default)]
    mailing_list: Option<String>,
    #[serde(default)]
    encrypt_to: String,
}

async fn render_page(
    state: &AppState,
    ident: &Identity,
    status: StatusCode,
    result: Option<String>,
    error: Option<String>,
    form: FormValues,
) -> Response {
    let runner = state.exposure.clone();
    let packages = match runner {
        Some(r) => blocking(move || r.list().map_err(WebError::Internal))
            .await
            .unwrap_or_default(),
        None => vec![],
    };
    let csrf = match ident {
        Identity::Browser(s) => s.csrf.clone(),
        Identity::Token { .. } => String::new(),
    };
    render(
        status,
        &ExposurePage {
            nav: Nav::from_identity(ident),
            csrf,
            available: state.exposure.is_some(),
            packages: packages
                .into_iter()
                .map(|p| PackageView {
                    created: crate::ui::when(p.created),
                    files: p
                        .files
                        .into_iter()
                        .map(|(name, size)| FileLink {
                            href: format!(
                                "/admin/exposure/download?id={}&file={}",
                                crate::ui::q(&p.id),
                                crate::ui::q(&name)
                            ),
                            size: crate::ui::human_size(size),
                            name,
                        })
                        .collect(),
                    id: p.id,
                })
                .collect(),
            result,
            error,
            form,
        },
    )
}

async fn page(State(state): State<AppState>, ident: Identity) -> Response {
    let form = FormValues {
        scope: "all".into(),
        basis: "present".into(),
        keys_exposed: "unknown".into(),
        ba_deadline_days: "60".into(),
        mailing_list: Some("on".into()),
        ..FormValues::default()
    };
    render_page(&state, &ident, StatusCode::OK, None, None, form).await
}

async fn run(
    State(state): State<AppState>,
    ident: Identity,
    Form(form): Form<FormValues>,
) -> Response {
    let Some(runner) = state.exposure.clone() else {
        return render_page(
            &state,
            &ident,
            StatusCode::NOT_IMPLEMENTED,
            None,
            Some("exposure reports are not available in this server".into()),
            form,
        )
        .await;
    };
    let actor = match state.vault.admin_actor(ident.principal()) {
        Ok(a) => a,
        Err(e) => return crate::ui::error_page(StatusCode::FORBIDDEN, &e.client_message()),
    };
    let days = match form.ba_deadline_days.trim().parse::<u32>() {
        Ok(d) if (1..=365).contains(&d) => d,
        _ => {
            return render_page(
                &state,
                &ident,
                StatusCode::BAD_REQUEST,
                None,
                Some("Business associate deadline must be 1 to 365 days.".into()),
                form,
            )
            .await
        }
    };
    if !form.encrypt_to.trim().starts_with("age1") {
        return render_page(&state, &ident, StatusCode::BAD_REQUEST, None, Some("Enter the age public key (age1...) the package is encrypted to; the notification lists are never stored or sent in plaintext.".into()), form).await;
    }
    let params = ExposureParams {
        from: form.from.trim().to_owned(),
        to: form.to.trim().to_owned(),
        discovered: form.discovered.trim().to_owned(),
        scope: form.scope.trim().to_owned(),
        basis: form.basis.trim().to_owned(),
        keys_exposed: form.keys_exposed.trim().to_owned(),
        ba_deadline_days: days,
        mailing_list: form.mailing_list.is_some(),
        encrypt_to: form.encrypt_to.trim().to_owned(),
    };
    match blocking(move || runner.run(&actor, &params).map_err(WebError::BadRequest)).await {
        Ok(summary) => {
            render_page(
                &state,
                &ident,
                StatusCode::CREATED,
                Some(format!("Package {}: {}", summary.id, summary.text)),
                None,
                form,
            )
            .await
        }
        Err(e) => render_page(&state, &ident, e.status(), None, Some(e.detail()), form).await,
    }
}

#[derive(Deserialize)]
struct DownloadQuery {
    id: String,
    file: String,
}

async fn download(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, WebError> {
    let runner = state.exposure.clone().ok_or_else(|| {
        WebError::NotFound("exposure reports are not available in this server".into())
    })?;
    let actor = state.vault.admin_actor(ident.principal())?;
    let name = q
        .file
        .rsplit('/')
        .next()
        .unwrap_or("package-file")
        .to_owned();
    let (mut reader, len) = blocking(move || {
        runner
            .open(&actor, &q.id, &q.file)
            .map_err(WebError::NotFound)
    })
    .await?;
    let mut buf = vec![0u8; READ_CHUNK];
    let body = stream_blocking(
        move || {
            let n = reader.read(&mut buf)?;
            Ok((n > 0).then(|| Bytes::copy_from_slice(buf.get(..n).unwrap_or_default())))
        },
        || {},
        (),
    );
    Ok(attachment_response(body, &name, len))
}

/// Where packages made from the web UI live (inside the data directory: they are age ciphertext).
pub fn packages_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("exposure-packages")
}

pub type SharedRunner = Arc<dyn ExposureRunner>;
