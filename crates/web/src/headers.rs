//! Security headers on every response, including errors and the 404 fallback.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// No inline script or style anywhere; scripts, styles and images only from our own embedded
/// assets (plus `data:` images for the QR code). `form-action 'self'` stops injected forms posting
/// credentials elsewhere; `frame-ancestors 'none'` stops clickjacking.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const FIXED: [(&str, &str); 8] = [
    ("content-security-policy", CSP),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    ),
];

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in FIXED {
        // A handler's own, stricter policy stays: downloads send `default-src 'none'; sandbox`.
        if name == "content-security-policy" && h.contains_key(header::CONTENT_SECURITY_POLICY) {
            continue;
        }
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    // Pages and API answers carry PHI or session state: never cache them. Embedded assets set their
    // own policy.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
