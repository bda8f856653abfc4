//! Static assets, embedded in the binary at build time: nothing on disk is ever served, and nothing
//! a user uploads can become an asset.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::routes::{self, Access, Route};

const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "files.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/files.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/admin.js"),
    ),
];

pub fn routes() -> Vec<Route> {
    vec![routes::get("/assets/{name}", Access::Public, asset)]
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => {
            let mut resp = (*body).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=300"),
            );
            resp
        }
        None => crate::access::refuse("/assets", StatusCode::NOT_FOUND, "no such asset"),
    }
}
