//! `/healthz` (the process answers), `/readyz` (the metadata store answers) and `/metrics`
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

async fn readyz(State(state): State<AppState>) -> Response {
    let vault = state.vault.clone();
    let ok = tokio::task::spawn_blocking(move || vault.list_orgs().is_ok())
        .await
        .unwrap_or(false);
    if ok {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata store unavailable\n",
        )
            .into_response()
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
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
