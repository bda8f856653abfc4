//! Resumable uploads over HTTP: `POST /api/v1/uploads` opens one (or resumes an interrupted one),
//! `PUT /api/v1/uploads/{id}?offset=N` appends a part, `GET` says how much arrived, `commit` makes
//! the file visible atomically. Parts go into the same vault write handle SFTP uses, so a broken
//! connection leaves an invisible, resumable upload and a commit runs the same inventory and audit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lockbox_types::VirtualPath;
use lockbox_vault::{OpenMode, WriteHandle};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::Identity;
use crate::api::extract::{Json, Path, Query};
use crate::api::files::{stream_body, UploadResult};
use crate::api::{blocking, file_op, parse_path};
use crate::error::{WebError, WebResult};
use crate::routes::{self, Access, Route};
use crate::state::{random_handle, AppState};

/// Open resumable uploads per user; each pins a staging file and a handle.
const MAX_UPLOADS_PER_USER: usize = 16;
/// All open resumable uploads on the server.
const MAX_UPLOADS: usize = 4096;
/// An upload nobody touched for this long is interrupted (its bytes stay resumable in the vault for
/// 7 days through `resume: true`).
const UPLOAD_IDLE: Duration = Duration::from_secs(3600);

pub fn routes() -> Vec<Route> {
    vec![
        routes::post("/api/v1/uploads", Access::Transfer, create),
        routes::get("/api/v1/uploads/{id}", Access::Transfer, status),
        routes::put("/api/v1/uploads/{id}", Access::Transfer, put_part),
        routes::post("/api/v1/uploads/{id}/commit", Access::Transfer, commit),
        routes::delete("/api/v1/uploads/{id}", Access::Transfer, pause),
    ]
}

pub struct OpenUpload {
    owner: (String, String),
    path: VirtualPath,
    handle: tokio::sync::Mutex<Option<WriteHandle>>,
    last_used: Mutex<Instant>,
}

#[derive(Default)]
pub struct UploadTable {
    map: Mutex<HashMap<String, Arc<OpenUpload>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl UploadTable {
    fn get(&self, id: &str, ident: &Identity) -> WebResult<Arc<OpenUpload>> {
        let p = ident.principal();
        let found = lock(&self.map).get(id).cloned();
        match found {
            // Someone else's upload id answers exactly like a missing one.
            Some(u) if u.owner.0 == p.user_name() && u.owner.1 == p.org_name() => {
                *lock(&u.last_used) = Instant::now();
                Ok(u)
            }
            _ => Err(WebError::NotFound(format!(
                "no open upload {}; start again with POST /api/v1/uploads (resume: true keeps what arrived)",
                id.chars().take(64).collect::<String>()
            ))),
        }
    }

    /// Takes one of the owner's upload slots, before the vault creates anything (a refused upload
    /// leaves no upload row or staging file behind, and does not discard an interrupted one). The
    /// slot holds no handle until [`Reservation::fill`]; dropping the reservation frees it.
    fn reserve(&self, owner: (String, String), path: VirtualPath) -> WebResult<Reservation<'_>> {
        let mut map = lock(&self.map);
        let mine = map.values().filter(|u| u.owner == owner).count();
        if mine >= MAX_UPLOADS_PER_USER || map.len() >= MAX_UPLOADS {
            return Err(WebError::TooManyRequests(format!(
                "too many open uploads (at most {MAX_UPLOADS_PER_USER} per user); commit or pause one first"
            )));
        }
        let id = random_handle();
        let upload = Arc::new(OpenUpload {
            owner,
            path,
            handle: tokio::sync::Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
        });
        map.insert(id.clone(), upload.clone());
        Ok(Reservation {
            table: self,
            id: Some(id),
            upload,
        })
    }

    fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }

    /// Interrupts uploads left idle; runs on a blocking thread.
    pub fn reap(&self) {
        self.interrupt_idle_for(UPLOAD_IDLE);
    }

    /// Interrupts every upload with no part in flight (at shutdown: they stay resumable, audited).
    pub fn interrupt_all(&self) {
        self.interrupt_idle_for(Duration::ZERO);
    }

    fn interrupt_idle_for(&self, idle: Duration) {
        // Only uploads with no part in flight (their handle lock is free) are taken out; one
        // being written stays in the table for its request to finish with.
        let stale: Vec<WriteHandle> = {
            let mut map = lock(&self.map);
            let mut taken = Vec::new();
            map.retain(|_, u| {
                if lock(&u.last_used).elapsed() < idle {
                    return true;
                }
                match u.handle.try_lock() {
                    Ok(mut g) => {
                        if let Some(h) = g.take() {
                            taken.push(h);
                        }
                        false
                    }
                    Err(_) => true,
                }
            });
            taken
        };
        for h in stale {
            if let Err(e) = h.interrupt() {
                tracing::warn!(error = %e, "interrupting an idle upload failed");
            }
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

/// A slot in the upload table, taken before the vault is asked for a handle. Its id is not known to
/// anyone until the handle is in, so nobody can use the slot while it is empty.
struct Reservation<'a> {
    table: &'a UploadTable,
    id: Option<String>,
    upload: Arc<OpenUpload>,
}

impl Reservation<'_> {
    /// Puts the handle in and hands out the id.
    fn fill(mut self, handle: WriteHandle) -> WebResult<String> {
        let mut slot = self
            .upload
            .handle
            .try_lock()
            .map_err(|_| WebError::Internal("a new upload slot is in use".into()))?;
        *slot = Some(handle);
        drop(slot);
        self.id
            .take()
            .ok_or_else(|| WebError::Internal("upload slot filled twice".into()))
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.table.remove(&id);
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUpload {
    /// Where the file will appear once committed.
    #[schema(format = "virtual-path", example = "/home/claims.837")]
    pub path: String,
    /// Continue an upload to this path that was interrupted earlier (its bytes are kept);
    /// otherwise any interrupted upload there is discarded and this one starts empty.
    #[serde(default)]
    pub resume: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadState {
    pub id: String,
    pub path: String,
    /// Bytes received so far: the offset of the next part.
    pub offset: u64,
}

/// Opens a resumable upload.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", request_body = CreateUpload,
    responses((status = 201, body = UploadState), (status = 403), (status = 404, description = "no such folder"),
        (status = 409, description = "a directory, or another upload to that path is in progress"),
        (status = 429, description = "too many open uploads")),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    ident: Identity,
    Json(req): Json<CreateUpload>,
) -> WebResult<Response> {
    let path = parse_path(&req.path)?;
    let p = ident.principal();
    let owner = (p.user_name().to_owned(), p.org_name().to_owned());
    let slot = state.uploads.reserve(owner, path.clone())?;
    let session = ident.session();
    let p2 = path.clone();
    let handle = blocking(move || {
        session
            .open_write(
                &p2,
                OpenMode {
                    truncate: !req.resume,
                    resume_only: true,
                    ..OpenMode::default()
                },
            )
            .map_err(file_op)
    })
    .await?;
    let offset = handle.len();
    let id = slot.fill(handle)?;
    Ok((
        StatusCode::CREATED,
        Json(UploadState {
            id,
            path: path.to_string(),
            offset,
        }),
    )
        .into_response())
}

/// How much of an upload has arrived.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "upload id")),
    responses((status = 200, body = UploadState), (status = 404), (status = 409, description = "a part is being uploaded")),
    security(("bearer" = []), ("session" = [])))]
pub async fn status(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> WebResult<Json<UploadState>> {
    let up = state.uploads.get(&id, &ident)?;
    let guard = up
        .handle
        .try_lock()
        .map_err(|_| WebError::Conflict("a part is being uploaded right now".into()))?;
    let offset = guard.as_ref().map(|h| h.len()).unwrap_or(0);
    Ok(Json(UploadState {
        id,
        path: up.path.to_string(),
        offset,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PartQuery {
    /// Where this part starts; must equal the upload's current offset.
    #[serde(deserialize_with = "crate::api::extract::whole::query_u64")]
    pub offset: u64,
}

/// Appends a part. The body is streamed; if the connection breaks, the bytes that arrived count
/// (ask `GET` for the new offset and continue from there).
#[utoipa::path(put, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "upload id"), PartQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = UploadState), (status = 404), (status = 409, description = "offset is not the current one"),
        (status = 507, description = "the file would exceed the size limit")),
    security(("bearer" = []), ("session" = [])))]
pub async fn put_part(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
    Query(q): Query<PartQuery>,
    body: Body,
) -> WebResult<Json<UploadState>> {
    let up = state.uploads.get(&id, &ident)?;
    let mut guard = up
        .handle
        .try_lock()
        .map_err(|_| WebError::Conflict("another part of this upload is in flight".into()))?;
    let handle = guard
        .take()
        .ok_or_else(|| WebError::NotFound("upload is closed".into()))?;
    let current = handle.len();
    if q.offset != current {
        *guard = Some(handle);
        return Err(WebError::Conflict(format!(
            "offset {} does not match the bytes received so far ({current}); send the part starting at {current}",
            q.offset
        )));
    }
    let busy = state.transfer_started();
    let (handle, result) = stream_body(handle, current, body).await;
    drop(busy);
    let Some(handle) = handle else {
        state.uploads.remove(&id);
        return Err(result
            .err()
            .unwrap_or_else(|| WebError::Internal("upload lost".into())));
    };
    if handle.failed_for_space() {
        // Out of space: the upload gives its space back now rather than waiting for a pause
        // or the idle reaper (interrupt discards it, audited).
        state.uploads.remove(&id);
        drop(guard);
        let _ = blocking(move || Ok(handle.interrupt()?)).await;
        return Err(result
            .err()
            .unwrap_or_else(|| WebError::Internal("upload failed for lack of space".into())));
    }
    let offset = handle.len();
    *guard = Some(handle);
    *lock(&up.last_used) = Instant::now();
    result?;
    Ok(Json(UploadState {
        id,
        path: up.path.to_string(),
        offset,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CommitRequest {
    /// The total size the client sent; the commit is refused if the server has a different count.
    #[serde(default, deserialize_with = "crate::api::extract::whole::opt_u64")]
    pub size: Option<u64>,
}

/// Makes the upload visible as a file, atomically replacing any earlier version.
#[utoipa::path(post, path = "/api/v1/uploads/{id}/commit", tag = "uploads",
    params(("id" = String, Path, description = "upload id")), request_body = Option<CommitRequest>,
    responses((status = 201, body = UploadResult), (status = 404), (status = 409, description = "size mismatch")),
    security(("bearer" = []), ("session" = [])))]
pub async fn commit(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
    body: Option<Json<Option<CommitRequest>>>,
) -> WebResult<Response> {
    let _busy = state.transfer_started();
    // No body, or JSON `null`: no size to check.
    let req = body.and_then(|Json(b)| b).unwrap_or_default();
    let up = state.uploads.get(&id, &ident)?;
    let mut guard = up
        .handle
        .try_lock()
        .map_err(|_| WebError::Conflict("a part of this upload is still in flight".into()))?;
    let handle = guard
        .take()
        .ok_or_else(|| WebError::NotFound("upload is closed".into()))?;
    if let Some(size) = req.size {
        if size != handle.len() {
            let have = handle.len();
            *guard = Some(handle);
            return Err(WebError::Conflict(format!(
                "the server has {have} bytes but the commit says {size}; send the rest first"
            )));
        }
    }
    drop(guard);
    state.uploads.remove(&id);
    let row = blocking(move || Ok(handle.commit()?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadResult {
            path: up.path.to_string(),
            size: row.size,
            sha256: row.sha256,
        }),
    )
        .into_response())
}

/// Closes an upload without committing; its bytes stay resumable (`resume: true`) for 7 days.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "upload id")),
    responses((status = 204, description = "paused"), (status = 404), (status = 409, description = "a part is being uploaded")),
    security(("bearer" = []), ("session" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    ident: Identity,
    Path(id): Path<String>,
) -> WebResult<StatusCode> {
    let up = state.uploads.get(&id, &ident)?;
    let mut guard = up
        .handle
        .try_lock()
        .map_err(|_| WebError::Conflict("a part of this upload is in flight".into()))?;
    let handle = guard.take();
    drop(guard);
    state.uploads.remove(&id);
    if let Some(h) = handle {
        blocking(move || Ok(h.interrupt()?)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
