//! `/healthz` (the process answers), `/readyz` (the metadata store answers and free space is above
//! the upload floor) and `/metrics`
//! (Prometheus text; administrators or an admin-scoped token, since counts of logins and failures
//! help an attacker time a spray).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::routes::{self, Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        routes::get("/healthz", Access::Public, healthz),
        routes::get("/readyz", Access::Public, readyz),
        routes::get("/metrics", Access::Admin, metrics),
    ]
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the metadata store answers and free space is above the floor: under it, uploads
/// are refused, so a load balancer should send new work elsewhere (this node still serves
/// downloads and deletes to whoever reaches it).
async fn readyz(State(state): State<AppState>) -> Response {
    let vault = state.vault.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let db = vault.list_orgs().is_ok();
        (db, vault.storage_status().ok())
    })
    .await;
    let Ok((db, storage)) = checked else {
        return (StatusCode::SERVICE_UNAVAILABLE, "health check failed\n").into_response();
    };
    if !db {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata store unavailable\n",
        )
            .into_response();
    }
    match storage {
        // Figures stay in the admin-only /metrics; this endpoint is public.
        Some(st) if st.low => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage low: uploads are refused\n",
        )
            .into_response(),
        Some(_) => (StatusCode::OK, "ready\n").into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "blob storage unavailable\n",
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.vault.metrics().render_prometheus();
    text.push_str(&format!(
        "# HELP lockbox_https_browser_sessions Browser sessions currently signed in.\n\
         # TYPE lockbox_https_browser_sessions gauge\n\
         lockbox_https_browser_sessions {}\n\
         # HELP lockbox_https_open_uploads Resumable HTTPS uploads currently open.\n\
         # TYPE lockbox_https_open_uploads gauge\n\
         lockbox_https_open_uploads {}\n",
        state.browser_sessions().len(),
        state.uploads.len(),
    ));
    let vault = state.vault.clone();
    if let Ok(Ok(st)) = tokio::task::spawn_blocking(move || vault.storage_status()).await {
        text.push_str(&format!(
            "# HELP lockbox_storage_free_bytes Free bytes on the data directory's filesystem.\n\
             # TYPE lockbox_storage_free_bytes gauge\n\
             lockbox_storage_free_bytes {}\n\
             # HELP lockbox_storage_total_bytes Size of the data directory's filesystem.\n\
             # TYPE lockbox_storage_total_bytes gauge\n\
             lockbox_storage_total_bytes {}\n\
             # HELP lockbox_storage_floor_bytes Uploads are refused while less than this is free.\n\
             # TYPE lockbox_storage_floor_bytes gauge\n\
             lockbox_storage_floor_bytes {}\n\
             # HELP lockbox_storage_low 1 while free space is under the floor (uploads refused).\n\
             # TYPE lockbox_storage_low gauge\n\
             lockbox_storage_low {}\n\
             # HELP lockbox_audit_reserve_bytes Space held back for the audit log.\n\
             # TYPE lockbox_audit_reserve_bytes gauge\n\
             lockbox_audit_reserve_bytes {}\n\
             # HELP lockbox_audit_reserve_used 1 once the disk filled up and the audit reserve was released.\n\
             # TYPE lockbox_audit_reserve_used gauge\n\
             lockbox_audit_reserve_used {}\n",
            st.free_bytes,
            st.total_bytes,
            st.floor_bytes,
            u8::from(st.low),
            st.audit_reserve_bytes,
            u8::from(st.audit_reserve_used),
        ));
    }
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
