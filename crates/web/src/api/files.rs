//! File operations for partner accounts: list, download (streamed, with HTTP ranges), one-shot
//! streaming upload, delete, rename, mkdir. Resumable uploads live in `crate::uploads`.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use lockbox_vault::{EntryKind, OpenMode, Session};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, Query};
use super::{blocking, file_op, parse_path, rfc3339};
use crate::access::Identity;
use crate::error::{WebError, WebResult};
use crate::routes::{self, Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/api/v1/files", Access::Transfer, list),
        routes::delete("/api/v1/files", Access::Transfer, remove),
        routes::get("/api/v1/files/content", Access::Transfer, download),
        routes::put("/api/v1/files/content", Access::Transfer, upload),
        routes::post("/api/v1/files/rename", Access::Transfer, rename),
        routes::post("/api/v1/files/mkdir", Access::Transfer, mkdir),
    ]
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PathQuery {
    /// Absolute path in your namespace, e.g. `/home/outbound/claims.837`. `/` lists your folders.
    #[param(format = "virtual-path", example = "/home/claims.837")]
    pub path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryJson {
    pub name: String,
    /// `file` or `dir`.
    pub kind: &'static str,
    pub size: u64,
    /// Last modification, RFC 3339.
    pub modified: String,
    /// Full path, usable as `path` in other calls.
    pub path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Listing {
    pub path: String,
    pub entries: Vec<EntryJson>,
}

fn entry_json(dir: &lockbox_types::VirtualPath, e: lockbox_vault::Entry) -> EntryJson {
    let path = dir.join(&e.name).map(|p| p.to_string()).unwrap_or_default();
    EntryJson {
        kind: if e.kind == EntryKind::Dir {
            "dir"
        } else {
            "file"
        },
        size: e.size,
        modified: rfc3339(e.mtime),
        name: e.name,
        path,
    }
}

/// Lists a directory.
#[utoipa::path(get, path = "/api/v1/files", tag = "files", params(PathQuery),
    responses((status = 200, body = Listing), (status = 404, description = "no such directory"),
        (status = 409, description = "a file, not a directory")),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(ident: Identity, Query(q): Query<PathQuery>) -> WebResult<Json<Listing>> {
    let path = parse_path(&q.path)?;
    let session = ident.session();
    blocking(move || {
        let mut entries: Vec<EntryJson> = session
            .list_dir(&path)
            .map_err(file_op)?
            .into_iter()
            .map(|e| entry_json(&path, e))
            .collect();
        entries.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Ok(Json(Listing {
            path: path.to_string(),
            entries,
        }))
    })
    .await
}

/// Deletes a file, or an empty directory.
#[utoipa::path(delete, path = "/api/v1/files", tag = "files", params(PathQuery),
    responses((status = 204, description = "deleted"), (status = 404), (status = 409, description = "directory not empty")),
    security(("bearer" = []), ("session" = [])))]
pub async fn remove(ident: Identity, Query(q): Query<PathQuery>) -> WebResult<StatusCode> {
    let path = parse_path(&q.path)?;
    let session = ident.session();
    blocking(move || {
        match session.stat(&path)?.kind {
            EntryKind::Dir => session.rmdir(&path).map_err(file_op)?,
            EntryKind::File => session.remove(&path).map_err(file_op)?,
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameRequest {
    #[schema(format = "virtual-path", example = "/home/claims.837")]
    pub from: String,
    #[schema(format = "virtual-path", example = "/home/sent/claims.837")]
    pub to: String,
    /// Replace an existing file at `to` (needs delete permission there).
    #[serde(default)]
    pub replace: bool,
}

/// Renames or moves a file or directory.
#[utoipa::path(post, path = "/api/v1/files/rename", tag = "files", request_body = RenameRequest,
    responses((status = 204, description = "renamed"), (status = 404),
        (status = 409, description = "the target exists, or the move does not fit (into itself, a file where a directory is)")),
    security(("bearer" = []), ("session" = [])))]
pub async fn rename(ident: Identity, Json(r): Json<RenameRequest>) -> WebResult<StatusCode> {
    let from = parse_path(&r.from)?;
    let to = parse_path(&r.to)?;
    let session = ident.session();
    blocking(move || {
        session.rename(&from, &to, r.replace).map_err(file_op)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MkdirRequest {
    #[schema(format = "virtual-path", example = "/home/sent")]
    pub path: String,
}

/// Creates a directory.
#[utoipa::path(post, path = "/api/v1/files/mkdir", tag = "files", request_body = MkdirRequest,
    responses((status = 201, description = "created"), (status = 404, description = "no such parent directory"),
        (status = 409, description = "exists, or the parent is a file")),
    security(("bearer" = []), ("session" = [])))]
pub async fn mkdir(ident: Identity, Json(r): Json<MkdirRequest>) -> WebResult<StatusCode> {
    let path = parse_path(&r.path)?;
    let session = ident.session();
    blocking(move || {
        session.mkdir(&path).map_err(file_op)?;
        Ok(StatusCode::CREATED)
    })
    .await
}

/// One `bytes=` range, resolved against the file size. Multiple ranges are answered with the whole
/// file (RFC 9110 lets a server ignore Range), which every client handles.
fn parse_range(headers: &HeaderMap, size: u64) -> WebResult<Option<(u64, u64)>> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let Some(spec) = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or(WebError::RangeNotSatisfiable(size))?;
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| WebError::RangeNotSatisfiable(size))
    };
    let (start, end) = if a.is_empty() {
        // Suffix range: the last N bytes.
        let n = parse(b)?;
        if n == 0 || size == 0 {
            return Err(WebError::RangeNotSatisfiable(size));
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start = parse(a)?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            parse(b)?.min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || start >= size || end < start {
        return Err(WebError::RangeNotSatisfiable(size));
    }
    Ok(Some((start, end)))
}

/// `attachment; filename="..."; filename*=UTF-8''...`: always an attachment, so no uploaded byte is
/// ever rendered by the browser.
fn attachment_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// An uploaded or generated file as a response: always `attachment` and `application/octet-stream`,
/// so no byte of it is ever rendered by the browser.
pub fn attachment_response(body: Body, name: &str, len: u64) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_DISPOSITION, attachment_disposition(name));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // A sandbox CSP on top of the attachment: even if something rendered it, no script runs.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    resp
}

/// How much one read asks of the source; for the vault, a multiple of its 64 KiB encryption chunk.
pub const READ_CHUNK: usize = 256 * 1024;

/// A response body fed by a blocking source: `next_chunk` runs on a blocking thread until it gives
/// `Ok(None)` or an error (which breaks the body off), a few chunks ahead of the client, and stops
/// when the client goes away. `on_end` then runs on that thread, however the reading stopped.
/// `keep` lives as long as the body (until it is sent or dropped): a transfer guard, say.
pub fn stream_blocking(
    mut next_chunk: impl FnMut() -> io::Result<Option<Bytes>> + Send + 'static,
    on_end: impl FnOnce() + Send + 'static,
    keep: impl Send + 'static,
) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            match next_chunk() {
                Ok(None) => break,
                Ok(Some(chunk)) => {
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        break; // client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        on_end();
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        let _keep = &keep;
        rx.poll_recv(cx)
    }))
}

/// Downloads a file: always `Content-Disposition: attachment`, `application/octet-stream`,
/// streamed; a single `Range: bytes=a-b` gives 206.
#[utoipa::path(get, path = "/api/v1/files/content", tag = "files", params(PathQuery,
        ("Range" = Option<String>, Header, description = "bytes=START-END (one range)")),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"), (status = 404),
        (status = 409, description = "a directory, not a file"), (status = 416)),
    security(("bearer" = []), ("session" = [])))]
pub async fn download(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
) -> WebResult<Response> {
    let path = parse_path(&q.path)?;
    let name = path.file_name().unwrap_or("download").to_owned();
    let session = ident.session();
    let handle = blocking(move || session.open_read(&path).map_err(file_op)).await?;
    let handle = Arc::new(handle);
    let size = handle.size();
    let range = parse_range(&headers, size)?;
    let (start, end_excl, status) = match range {
        Some((s, e)) => (s, e + 1, StatusCode::PARTIAL_CONTENT),
        None => (0, size, StatusCode::OK),
    };
    let reader = handle.clone();
    let mut off = start;
    let body = stream_blocking(
        move || {
            if off >= end_excl {
                return Ok(None);
            }
            let want = ((end_excl - off) as usize).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            let n = reader.read_at(off, &mut buf).map_err(|e| {
                tracing::error!(error = %e, "download read failed");
                io::Error::other("read failed")
            })?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            off += n as u64;
            Ok(Some(Bytes::from(buf)))
        },
        move || {
            // Records the read (with byte counts) in the audit log.
            if let Err(e) = handle.close() {
                tracing::warn!(error = %e, "closing a download failed");
            }
        },
        // A download in flight counts as a transfer: a graceful shutdown lets it finish.
        state.transfer_started(),
    );
    let mut resp = attachment_response(body, &name, end_excl - start);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end_excl - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResult {
    pub path: String,
    pub size: u64,
    /// SHA-256 of the stored content, hex.
    pub sha256: String,
}

/// Bytes gathered before one blocking write: large enough to amortise the thread hop, small enough
/// to keep per-upload memory low.
pub const WRITE_BATCH: usize = 1024 * 1024;

/// Streams a request body into a vault write handle starting at `offset`. Returns the handle and
/// the offset after the last byte, or the error; on a broken body the bytes that arrived are kept
/// (resumable). The handle is `None` only if a worker thread panicked with it.
pub async fn stream_body(
    mut handle: lockbox_vault::WriteHandle,
    offset: u64,
    body: Body,
) -> (Option<lockbox_vault::WriteHandle>, WebResult<u64>) {
    let mut stream = body.into_data_stream();
    let mut off = offset;
    let mut batch = bytes::BytesMut::new();
    let mut outcome: WebResult<()> = Ok(());
    loop {
        let next = stream.next().await;
        let done = match next {
            Some(Ok(chunk)) => {
                batch.extend_from_slice(&chunk);
                false
            }
            Some(Err(e)) => {
                outcome = Err(WebError::BadRequest(format!(
                    "upload body interrupted: {e}"
                )));
                true
            }
            None => true,
        };
        if batch.len() >= WRITE_BATCH || (done && !batch.is_empty()) {
            let data = batch.split().freeze();
            let len = data.len() as u64;
            let at = off;
            let res = tokio::task::spawn_blocking(move || {
                let r = handle.write_at(at, data);
                (handle, r)
            })
            .await;
            match res {
                Ok((h, r)) => {
                    handle = h;
                    if let Err(e) = r {
                        return (Some(handle), Err(e.into()));
                    }
                    off += len;
                }
                Err(e) => {
                    // The worker panicked and took the handle with it; nothing more can be written.
                    return (
                        None,
                        Err(WebError::Internal(format!("upload worker failed: {e}"))),
                    );
                }
            }
        }
        if done {
            break;
        }
    }
    (Some(handle), outcome.map(|()| off))
}

/// Uploads a whole file in one streamed request (any size the quota allows). If the connection
/// breaks, what arrived is kept as an interrupted upload that `POST /api/v1/uploads` with
/// `resume: true` continues.
#[utoipa::path(put, path = "/api/v1/files/content", tag = "files", params(PathQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = UploadResult), (status = 403), (status = 404, description = "no such folder"), (status = 409),
        (status = 507, description = "the file would exceed the size limit")),
    security(("bearer" = []), ("session" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    ident: Identity,
    Query(q): Query<PathQuery>,
    body: Body,
) -> WebResult<Response> {
    let path = parse_path(&q.path)?;
    let session: Arc<Session> = ident.session();
    let p2 = path.clone();
    let handle = blocking(move || {
        session
            .open_write(
                &p2,
                OpenMode {
                    truncate: true,
                    ..OpenMode::default()
                },
            )
            .map_err(file_op)
    })
    .await?;
    // Counted until the handler returns: the commit after the body is part of the transfer.
    let _busy = state.transfer_started();
    let (handle, result) = stream_body(handle, 0, body).await;
    let Some(handle) = handle else {
        return Err(result
            .err()
            .unwrap_or_else(|| WebError::Internal("upload lost".into())));
    };
    match result {
        Ok(_) => {
            let row = blocking(move || Ok(handle.commit()?)).await?;
            Ok((
                StatusCode::CREATED,
                Json(UploadResult {
                    path: path.to_string(),
                    size: row.size,
                    sha256: row.sha256,
                }),
            )
                .into_response())
        }
        Err(e) => {
            let _ = blocking(move || Ok(handle.interrupt()?)).await;
            Err(e)
        }
    }
}
