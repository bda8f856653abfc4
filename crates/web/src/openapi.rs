//! The OpenAPI 3 document, generated from the handlers' annotations and request/response types
//! (utoipa), served at `/api/v1/openapi.json`. A test checks it against the route table, so an API
//! route cannot go undocumented.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use crate::api::files;
use crate::routes::{self, Access, Route};
use crate::uploads;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lockbox API",
        version = "1",
        description = "Managed file transfer for PHI. Authenticate with `Authorization: Bearer lbx_...` \
(create tokens on the Account page or with POST /api/v1/tokens). Errors are application/problem+json. \
Browser sessions may call the same endpoints with the X-CSRF-Token header."
    ),
    paths(
        files::list, files::remove, files::download, files::upload, files::rename, files::mkdir,
        uploads::create, uploads::status, uploads::put_part, uploads::commit, uploads::pause,
    ),
    components(schemas(
        files::EntryJson, files::Listing, files::RenameRequest, files::MkdirRequest, files::UploadResult,
        uploads::CreateUpload, uploads::UploadState, uploads::CommitRequest,
    )),
    modifiers(&Security),
    tags(
        (name = "files", description = "Browse, download and change files"),
        (name = "uploads", description = "Resumable uploads in parts"),
        (name = "account", description = "The caller and their API tokens"),
        (name = "admin", description = "Organizations, users, keys, grants, tokens, audit"),
    )
)]
struct CoreApi;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::state::SESSION_COOKIE,
            ))),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = CoreApi::openapi();
    doc.merge(crate::api::account::AccountApi::openapi());
    doc.merge(crate::api::admin::AdminApi::openapi());
    doc
}

pub fn routes() -> Vec<Route> {
    vec![routes::get("/api/v1/openapi.json", Access::Public, serve)]
}

async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in &paths {
            for method in item
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: std::collections::BTreeSet<(String, String)> = routes::table()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/v1/") && r.path != "/api/v1/openapi.json")
            .map(|r| (r.method, r.path.to_owned()))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "API routes missing from the OpenAPI document: {undocumented:?}"
        );
        assert!(
            phantom.is_empty(),
            "OpenAPI documents routes the server does not have: {phantom:?}"
        );
    }
}
