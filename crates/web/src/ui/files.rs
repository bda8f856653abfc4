//! The partner's file browser: folders and files with size and date, download links (always
//! attachments, served by the API route), delete / rename / new folder forms, and the upload panel
//! driven by `assets/files.js` through the resumable upload API.

use askama::Template;
use axum::response::Response;
use lockbox_types::VirtualPath;
use lockbox_vault::EntryKind;
use serde::Deserialize;

use super::{human_size, page, q, see_other, when, Nav};
use crate::access::Identity;
use crate::api::extract::{Form, Query};
use crate::api::{blocking, parse_path};
use crate::error::WebError;
use crate::routes::{self, Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/files", Access::Transfer, browse),
        routes::post("/files/delete", Access::Transfer, delete),
        routes::post("/files/mkdir", Access::Transfer, mkdir),
        routes::post("/files/rename", Access::Transfer, rename),
    ]
}

struct Crumb {
    name: String,
    href: String,
}

struct Row {
    name: String,
    is_dir: bool,
    href: String,
    path: String,
    size: String,
    modified: String,
}

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    nav: Option<Nav>,
    path: String,
    crumbs: Vec<Crumb>,
    rows: Vec<Row>,
    at_root: bool,
    csrf: String,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct BrowseQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    done: String,
}

/// Fixed notices for `?done=`: the query only selects one, it never supplies text.
fn notice(code: &str) -> Option<&'static str> {
    match code {
        "deleted" => Some("Deleted."),
        "renamed" => Some("Renamed."),
        "created" => Some("Folder created."),
        _ => None,
    }
}

fn crumbs(path: &VirtualPath) -> Vec<Crumb> {
    let mut out = vec![Crumb {
        name: "All folders".into(),
        href: format!("/files?path={}", q("/")),
    }];
    let mut acc = VirtualPath::root();
    for name in path.names() {
        if let Ok(next) = acc.join(name) {
            acc = next;
        }
        out.push(Crumb {
            name: name.clone(),
            href: format!("/files?path={}", q(&acc.to_string())),
        });
    }
    out
}

fn browse_url(path: &str, done: &str) -> String {
    format!("/files?path={}&done={done}", q(path))
}

async fn browse(ident: Identity, Query(bq): Query<BrowseQuery>) -> Result<Response, Response> {
    let ui_err = |e: WebError| super::error_page(e.status(), &e.detail());
    let path = parse_path(&bq.path).map_err(ui_err)?;
    let session = ident.session();
    let p2 = path.clone();
    let entries = blocking(move || Ok(session.list_dir(&p2)?))
        .await
        .map_err(ui_err)?;
    let mut rows: Vec<Row> = entries
        .into_iter()
        .map(|e| {
            let full = path
                .join(&e.name)
                .map(|p| p.to_string())
                .unwrap_or_default();
            let is_dir = e.kind == EntryKind::Dir;
            Row {
                href: if is_dir {
                    format!("/files?path={}", q(&full))
                } else {
                    format!("/api/v1/files/content?path={}", q(&full))
                },
                size: if is_dir {
                    String::new()
                } else {
                    human_size(e.size)
                },
                modified: when(e.mtime),
                path: full,
                is_dir,
                name: e.name,
            }
        })
        .collect();
    rows.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    let csrf = match &ident {
        Identity::Browser(s) => s.csrf.clone(),
        Identity::Token { .. } => String::new(),
    };
    Ok(page(&FilesPage {
        nav: Nav::from_identity(&ident),
        at_root: path.is_root(),
        crumbs: crumbs(&path),
        path: path.to_string(),
        rows,
        csrf,
        notice: notice(&bq.done),
    }))
}

#[derive(Deserialize)]
struct PathForm {
    path: String,
}

fn parent_of(path: &VirtualPath) -> String {
    path.parent().unwrap_or_default().to_string()
}

async fn delete(ident: Identity, Form(f): Form<PathForm>) -> Result<Response, Response> {
    let ui_err = |e: WebError| super::error_page(e.status(), &e.detail());
    let path = parse_path(&f.path).map_err(ui_err)?;
    let session = ident.session();
    let p2 = path.clone();
    blocking(move || {
        match session.stat(&p2)?.kind {
            EntryKind::Dir => session.rmdir(&p2)?,
            EntryKind::File => session.remove(&p2)?,
        }
        Ok(())
    })
    .await
    .map_err(ui_err)?;
    Ok(see_other(&browse_url(&parent_of(&path), "deleted")))
}

#[derive(Deserialize)]
struct MkdirForm {
    dir: String,
    name: String,
}

async fn mkdir(ident: Identity, Form(f): Form<MkdirForm>) -> Result<Response, Response> {
    let ui_err = |e: WebError| super::error_page(e.status(), &e.detail());
    let dir = parse_path(&f.dir).map_err(ui_err)?;
    let target = dir
        .join(f.name.trim())
        .map_err(|e| ui_err(WebError::Vault(e.into())))?;
    let session = ident.session();
    blocking(move || Ok(session.mkdir(&target)?))
        .await
        .map_err(ui_err)?;
    Ok(see_other(&browse_url(&dir.to_string(), "created")))
}

#[derive(Deserialize)]
struct RenameForm {
    from: String,
    new_name: String,
}

async fn rename(ident: Identity, Form(f): Form<RenameForm>) -> Result<Response, Response> {
    let ui_err = |e: WebError| super::error_page(e.status(), &e.detail());
    let from = parse_path(&f.from).map_err(ui_err)?;
    let parent = from.parent().unwrap_or_default();
    let to = parent
        .join(f.new_name.trim())
        .map_err(|e| ui_err(WebError::Vault(e.into())))?;
    let session = ident.session();
    blocking(move || Ok(session.rename(&from, &to, false)?))
        .await
        .map_err(ui_err)?;
    Ok(see_other(&browse_url(&parent.to_string(), "renamed")))
}
