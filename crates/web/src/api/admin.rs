//! Administration over the API (organizations, users, keys, folders, grants, tokens, audit,
//! sessions): admin role, admin scope for tokens. Every change goes through an `AdminActor` the
//! vault hands out for the caller, so it is authorized and audited in the core.

use utoipa::OpenApi;

use crate::routes::Route;

pub fn routes() -> Vec<Route> {
    vec![]
}

#[derive(OpenApi)]
#[openapi()]
pub struct AdminApi;
