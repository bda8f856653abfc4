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

/// The OpenAPI document: the annotations, completed by [`complete`] with what every route shares.
pub fn document() -> serde_json::Value {
    let mut doc = CoreApi::openapi();
    doc.merge(crate::api::account::AccountApi::openapi());
    doc.merge(crate::api::admin::AdminApi::openapi());
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    complete(&mut doc);
    doc
}

/// One `/api/v1` path component: not `.` or `..`, no `/`, backslash or control character, at
/// most 63 characters (so at most 252 bytes, under the vault's 255).
const PATH_NAME: &str = r"(?:[^/.\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]{0,62}|\.[^/.\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]{0,61}|\.\.[^/\\\x00-\x1f\x7f-\x9f]{1,61})";

/// What each custom `format` of the annotations means, as JSON Schema keywords (which replace it):
/// the constraints the server enforces, so a request the schema calls valid is one the server
/// accepts and one it calls invalid is refused.
fn format_constraints(format: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let word = |w: &str| format!("^{w}(?:,{w})*$");
    Some(match format {
        // `lockbox_types::EntityName`.
        "entity-name" => json!({
            "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$", "minLength": 1, "maxLength": 64,
        }),
        // `lockbox_types::VirtualPath`, absolute, at most 16 levels (so at most 4096 bytes).
        "virtual-path" => json!({
            "pattern": format!("^(?:/{PATH_NAME}){{0,16}}/?$"),
        }),
        "permissions" => json!({
            "pattern": word("(?:list|read|write|delete|mkdir|rename|all)"),
        }),
        "token-scopes" => json!({ "pattern": word("(?:read|write|admin)") }),
        // Unix seconds, a date, a UTC date and time with or without seconds, or RFC 3339.
        "audit-time" => json!({
            "pattern": "^(?:[0-9]{1,12}|(?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])\
        (?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9])?)?)?)$",
        }),
        _ => return None,
    })
}

/// Adds the constraints of custom formats to every schema below `v`.
fn constrain(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let extra = map
                .get("format")
                .and_then(|f| f.as_str())
                .and_then(format_constraints);
            if let Some(serde_json::Value::Object(extra)) = extra {
                // The keywords say it all; a format only this server knows would make generators
                // that do not know it either ignore the field or give up on it.
                map.remove("format");
                for (k, x) in extra {
                    map.entry(k).or_insert(x);
                }
            }
            map.values_mut().for_each(constrain);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(constrain),
        _ => {}
    }
}

/// What every API route can answer besides its own statuses, and the problem+json body of every
/// error: 401, 403 and 429 come from the access gate (no or refused credentials; the wrong role, a
/// token without the scope, a missing CSRF token or a cross-site request; a throttled source
/// address), 400 from the
/// extractors (a parameter or body that does not parse, or is not UTF-8), 413 and 415 for bodies
/// that are too large or not JSON.
fn complete(doc: &mut serde_json::Value) {
    use serde_json::json;
    constrain(doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        schemas.insert(
            "Problem".into(),
            json!({
                "type": "object",
                "description": "RFC 9457 problem details (application/problem+json).",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "detail": {"type": "string"},
                },
            }),
        );
        // Exactly one of `user` and `group` given as a name (a `null` one counts as absent, as it
        // does for the server).
        if let Some(g) = schemas
            .get_mut("GrantRequest")
            .and_then(|g| g.as_object_mut())
        {
            g.insert(
                "oneOf".into(),
                json!([
                    {"required": ["user"], "properties": {"user": {"type": "string"}}},
                    {"required": ["group"], "properties": {"group": {"type": "string"}}},
                ]),
            );
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (_, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let secured = op
                .get("security")
                .and_then(|s| s.as_array())
                .is_some_and(|s| !s.is_empty());
            let has_params = op
                .get("parameters")
                .and_then(|p| p.as_array())
                .is_some_and(|p| p.iter().any(|p| p["in"] != "header"));
            let json_body = op
                .get("requestBody")
                .and_then(|b| b.pointer("/content/application~1json"))
                .is_some();
            // HTTP cannot tell an empty body from none: an empty upload is an empty file (or
            // part), so a byte body is never required.
            if let Some(body) = op.get_mut("requestBody").and_then(|b| b.as_object_mut()) {
                if body
                    .get("content")
                    .is_some_and(|c| c.get("application/octet-stream").is_some())
                {
                    body.insert("required".into(), json!(false));
                }
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            let Some(responses) = responses else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| json!({ "description": description }));
            };
            if secured {
                add("401", "no credentials, or they were refused");
                add(
                    "429",
                    "too many failed sign-ins from the caller's address (see Retry-After)",
                );
                add(
                    "403",
                    "not allowed: the account's role, the token's scopes, the folder's grants, \
                     or a browser request without its CSRF token",
                );
            }
            if has_params || json_body {
                add("400", "a parameter or the body is malformed");
            }
            if json_body {
                add("413", "the body is larger than 2 MiB");
                add("415", "the body is not application/json");
            }
            for (status, resp) in responses.iter_mut() {
                let is_error = status.parse::<u16>().is_ok_and(|s| s >= 400);
                if let (true, Some(resp)) = (is_error, resp.as_object_mut()) {
                    resp.entry("description").or_insert_with(|| json!("error"));
                    resp.insert(
                        "content".into(),
                        json!({"application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }}),
                    );
                }
            }
        }
    }
}

pub fn routes() -> Vec<Route> {
    vec![routes::get("/api/v1/openapi.json", Access::Public, serve)]
}

async fn serve() -> Json<serde_json::Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let doc = document();
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

    #[test]
    fn every_error_is_problem_json_and_every_route_declares_the_gate() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().cloned().unwrap_or_default() {
            for (method, op) in item.as_object().cloned().unwrap_or_default() {
                let responses = op["responses"].as_object().cloned().unwrap_or_default();
                for status in ["401", "403"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
                if op.get("requestBody").is_some() || op.get("parameters").is_some() {
                    assert!(responses.contains_key("400"), "{method} {path}: no 400");
                }
                for (status, r) in responses {
                    if status.as_str() >= "400" {
                        assert_eq!(
                            r["content"]["application/problem+json"]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_schema_states_the_servers_constraints() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let days = &schemas["CreateToken"]["properties"]["days"];
        assert_eq!(
            (days["minimum"].as_u64(), days["maximum"].as_u64()),
            (Some(1), Some(365))
        );
        assert_eq!(days["type"], "integer");
        let role = &schemas["RoleName"];
        assert_eq!(role["enum"], serde_json::json!(["admin", "transfer"]));
        for (schema, field) in [
            ("CreateOrg", "name"),
            ("CreateUser", "name"),
            ("CreateFolder", "org"),
        ] {
            let f = &schemas[schema]["properties"][field];
            assert_eq!(f["minLength"], 1, "{schema}.{field}");
            assert!(f["pattern"].is_string(), "{schema}.{field}");
            assert!(f.get("format").is_none(), "{schema}.{field}");
        }
        let params = doc["paths"]["/api/v1/admin/audit"]["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name)
                .map(|p| p["schema"].clone())
                .unwrap_or_default()
        };
        let limit = param("limit");
        assert!(limit["type"].to_string().contains("integer"), "{limit}");
        assert_eq!(
            (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
            (Some(1), Some(500))
        );
        assert!(param("before")["type"].to_string().contains("integer"));
        let path = doc["paths"]["/api/v1/files"]["get"]["parameters"][0]["schema"]["pattern"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(path.starts_with("^(?:/"), "{path}");
    }
}
