//! The route table: every route the HTTPS door serves, each with the access it requires. The router
//! is built from this table and nothing else, so a route without an access decision cannot exist;
//! `lockbox web routes` prints it and the authorization matrix test compares it with its own list.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use serde::Serialize;

use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone, signed in or not (login form, health, static assets, the OpenAPI document).
    Public,
    /// Someone whose password was accepted and whose second factor is pending.
    LoginStep,
    /// Any signed-in person or API token.
    Any,
    /// Partner (transfer) accounts: the ones that move files.
    Transfer,
    /// Administrators (and API tokens of administrators with the admin scope).
    Admin,
}

/// One row of the table, without its handler.
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    pub method: String,
    pub path: &'static str,
    pub access: Access,
}

pub struct Route {
    pub info: RouteInfo,
    handler: MethodRouter<AppState>,
}

impl Route {
    pub fn new<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        // Only the methods below are used in the table; anything else is a programming error that
        // the route-table test catches, so map it to a filter that never matches a real request.
        let filter = match method {
            Method::GET => MethodFilter::GET,
            Method::POST => MethodFilter::POST,
            Method::PUT => MethodFilter::PUT,
            Method::DELETE => MethodFilter::DELETE,
            Method::PATCH => MethodFilter::PATCH,
            _ => MethodFilter::TRACE,
        };
        Route {
            info: RouteInfo {
                method: method.as_str().to_owned(),
                path,
                access,
            },
            handler: axum::routing::on(filter, handler),
        }
    }
}

pub fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, h: H) -> Route {
    Route::new(Method::GET, path, access, h)
}
pub fn post<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    h: H,
) -> Route {
    Route::new(Method::POST, path, access, h)
}
pub fn put<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, h: H) -> Route {
    Route::new(Method::PUT, path, access, h)
}
pub fn delete<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    h: H,
) -> Route {
    Route::new(Method::DELETE, path, access, h)
}

fn all_routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(crate::health::routes());
    routes.extend(crate::assets::routes());
    routes.extend(crate::openapi::routes());
    routes.extend(crate::ui::routes());
    routes.extend(crate::api::routes());
    routes.extend(crate::uploads::routes());
    routes.extend(crate::exposure::routes());
    routes
}

/// Every route with its access, in declaration order.
pub fn table() -> Vec<RouteInfo> {
    all_routes().into_iter().map(|r| r.info).collect()
}

pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in all_routes() {
        let gate = axum::middleware::from_fn_with_state(
            (state.clone(), route.info.access),
            crate::access::enforce,
        );
        router = router.route(route.info.path, route.handler.layer(gate));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::headers::security_headers))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    crate::access::refuse(
        uri.path(),
        axum::http::StatusCode::NOT_FOUND,
        "no such page or API route",
    )
}

/// A known path with a method it does not take: the door's own error shape (problem+json under
/// `/api`), not the framework's empty 405. axum still adds the `Allow` header.
async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    crate::access::refuse(
        uri.path(),
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for r in table() {
            assert!(
                seen.insert((r.method.clone(), r.path)),
                "route declared twice: {} {}",
                r.method,
                r.path
            );
            assert!(
                ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&r.method.as_str()),
                "unsupported method {} on {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn admin_and_api_namespaces_have_the_expected_access() {
        for r in table() {
            if r.path.starts_with("/admin")
                || r.path.starts_with("/api/v1/admin")
                || r.path == "/metrics"
            {
                assert_eq!(r.access, Access::Admin, "{} {}", r.method, r.path);
            }
            if r.path.starts_with("/api/v1/files") || r.path.starts_with("/api/v1/uploads") {
                assert_eq!(r.access, Access::Transfer, "{} {}", r.method, r.path);
            }
        }
    }
}
