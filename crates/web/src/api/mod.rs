//! The REST API under `/api/v1`: JSON in and out, errors as problem+json, identity from a bearer
//! token or a browser session (with CSRF). Handlers parse, call the vault on a blocking thread, and
//! shape the answer; no decision about who may do what is made here beyond the route's access level.

pub mod account;
pub mod admin;
pub mod extract;
pub mod files;

use lockbox_types::VirtualPath;

use crate::error::{WebError, WebResult};
use crate::routes::Route;

pub fn routes() -> Vec<Route> {
    let mut r = Vec::new();
    r.extend(files::routes());
    r.extend(account::routes());
    r.extend(admin::routes());
    r
}

/// A client-supplied path, absolute from the user's root (`/home/in/x.834`).
pub fn parse_path(text: &str) -> WebResult<VirtualPath> {
    let text = if text.is_empty() { "/" } else { text };
    VirtualPath::parse(&VirtualPath::root(), text)
        .map_err(|e| WebError::Vault(lockbox_vault::VaultError::from(e)))
}

/// A vault refusal of a file operation on a path the door has already parsed. The request is well
/// formed, so the vault's "invalid input" there is about the path's current state (a file where a
/// directory is needed or the reverse, a move into itself): 409 Conflict, not 400.
pub fn file_op(e: lockbox_vault::VaultError) -> WebError {
    match e.kind() {
        lockbox_vault::ErrorKind::InvalidInput => WebError::Conflict(e.client_message()),
        _ => WebError::Vault(e),
    }
}

/// Runs blocking vault work off the async threads.
pub async fn blocking<T, F>(f: F) -> WebResult<T>
where
    F: FnOnce() -> WebResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(format!("worker failed: {e}")))?
}

/// Unix seconds → RFC 3339, for JSON and pages.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
