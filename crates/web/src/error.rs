//! The web door's one error type and its HTTP mapping. API routes answer with RFC 9457
//! `application/problem+json`; browser pages get the same status with a small HTML page (see
//! `ui::error_page`). Internal details stay in the server log. The request extractors
//! (`api::extract`) reject with a [`Refusal`], which is a `WebError` that knows which of the two the
//! caller speaks, so the framework's own rejections take the same way out.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lockbox_vault::{ErrorKind, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("requested range not satisfiable (file size {0})")]
    RangeNotSatisfiable(u64),
    #[error("{0}")]
    TooManyRequests(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthenticated => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            WebError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Vault(e) => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                ErrorKind::AlreadyExists | ErrorKind::NotEmpty => StatusCode::CONFLICT,
                ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
                ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
                ErrorKind::LimitReached => StatusCode::INSUFFICIENT_STORAGE,
                ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
            WebError::Tls(_) | WebError::Io { .. } | WebError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What the client may read.
    pub fn detail(&self) -> String {
        match self {
            WebError::Vault(e) => e.client_message(),
            WebError::Tls(_) | WebError::Io { .. } | WebError::Internal(_) => {
                "internal server error; the administrator can find details in the server log".into()
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> WebError {
        let context = context.into();
        move |source| WebError::Io { context, source }
    }
}

/// A problem+json response.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lockbox\""),
        );
    }
    resp
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.log();
        let mut resp = problem(self.status(), &self.detail());
        if let WebError::RangeNotSatisfiable(size) = self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        resp
    }
}

impl WebError {
    /// The answer for a request to `path`: problem+json under `/api` (and `/metrics`), the HTML
    /// error page for browser pages.
    pub fn respond(self, path: &str) -> Response {
        self.respond_as(crate::access::is_api_path(path))
    }

    fn respond_as(self, api: bool) -> Response {
        if api {
            self.into_response()
        } else {
            self.log();
            crate::ui::error_page(self.status(), &self.detail())
        }
    }
}

/// A `WebError` on its way to a caller whose language is known (see [`WebError::respond`]): the
/// rejection of every request extractor.
#[derive(Debug)]
pub struct Refusal {
    pub error: WebError,
    api: bool,
}

impl Refusal {
    pub fn new(path: &str, error: WebError) -> Refusal {
        Refusal {
            error,
            api: crate::access::is_api_path(path),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.error.respond_as(self.api)
    }
}

pub type WebResult<T> = Result<T, WebError>;
