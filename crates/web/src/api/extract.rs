//! The door's request extractors: `Query`, `Json`, `Form` and `Path` with axum's parsing, but every
//! rejection is a [`Refusal`] (a `WebError`: problem+json for the API, the HTML error page for
//! browser pages), never the framework's own text/plain 400/415/422. Handlers use these and never
//! axum's.
//!
//! Query strings and urlencoded bodies must decode to UTF-8: axum (through `form_urlencoded`)
//! would replace an invalid sequence with U+FFFD, so `?path=/home/ov%c0%ae.txt` would name a file
//! nobody asked for. A request with one is refused with 400 before anything reads its values.

use axum::body::Body;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Refusal, WebError};

/// What the `Json` and `Form` extractors buffer at most (axum's default body limit).
const MAX_BUFFERED_BODY: usize = 2 * 1024 * 1024;

/// Refuses `application/x-www-form-urlencoded` text (a query string or a form body) in which a
/// key or value does not percent-decode to UTF-8.
pub fn require_utf8_urlencoded(text: &[u8]) -> Result<(), WebError> {
    for pair in text.split(|b| *b == b'&') {
        let decoded: Vec<u8> = percent_encoding::percent_decode(pair).collect();
        if std::str::from_utf8(&decoded).is_err() {
            return Err(WebError::BadRequest(
                "the query string or form is not valid UTF-8 once percent-decoded".into(),
            ));
        }
    }
    Ok(())
}

/// A status-preserving `WebError` for one of axum's body rejections.
fn body_error(status: StatusCode, text: String) -> WebError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => WebError::PayloadTooLarge(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => WebError::UnsupportedMediaType(text),
        s if s.is_server_error() => WebError::Internal(text),
        _ => WebError::BadRequest(text),
    }
}

fn json_error(e: JsonRejection) -> WebError {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            WebError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            WebError::BadRequest(format!("invalid JSON body: {}", e.body_text()))
        }
        other => body_error(other.status(), other.body_text()),
    }
}

/// A query string deserialized into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refusal> {
        let path = parts.uri.path();
        let refuse = |e| Refusal::new(path, e);
        require_utf8_urlencoded(parts.uri.query().unwrap_or_default().as_bytes())
            .map_err(refuse)?;
        let axum::extract::Query(v) =
            axum::extract::Query::try_from_uri(&parts.uri).map_err(|e| {
                refuse(WebError::BadRequest(format!(
                    "invalid query string: {}",
                    e.body_text()
                )))
            })?;
        Ok(Query(v))
    }
}

/// Path parameters deserialized into `T` (axum already refuses ones that are not UTF-8).
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => {
                let text = match &e {
                    PathRejection::FailedToDeserializePathParams(_) => {
                        format!("invalid path parameter: {}", e.body_text())
                    }
                    _ => e.body_text(),
                };
                Err(Refusal::new(parts.uri.path(), body_error(e.status(), text)))
            }
        }
    }
}

/// A JSON body (`Content-Type: application/json`) deserialized into `T`; also the JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Refusal> {
        let path = req.uri().path().to_owned();
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => Err(Refusal::new(&path, json_error(e))),
        }
    }
}

/// `Option<Json<T>>`: `None` without a body type, an error for a body that is not JSON.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Refusal> {
        let path = req.uri().path().to_owned();
        match <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await {
            Ok(v) => Ok(v.map(|axum::Json(v)| Json(v))),
            Err(e) => Err(Refusal::new(&path, json_error(e))),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// An `application/x-www-form-urlencoded` body deserialized into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Refusal> {
        let path = req.uri().path().to_owned();
        let refuse = |e| Refusal::new(&path, e);
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(refuse(WebError::UnsupportedMediaType(
                "expected Content-Type: application/x-www-form-urlencoded".into(),
            )));
        }
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BUFFERED_BODY)
            .await
            .map_err(|_| refuse(WebError::PayloadTooLarge("form too large".into())))?;
        require_utf8_urlencoded(&bytes).map_err(refuse)?;
        let req = Request::from_parts(parts, Body::from(bytes));
        match <axum::Form<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Form(v)),
            Err(e) => Err(refuse(match e {
                FormRejection::FailedToDeserializeForm(_)
                | FormRejection::FailedToDeserializeFormBody(_) => {
                    WebError::BadRequest(format!("invalid form: {}", e.body_text()))
                }
                other => body_error(other.status(), other.body_text()),
            })),
        }
    }
}

/// Whole numbers as JSON Schema counts them: `112` and `112.0` (and, in a query string, `"112"`
/// and `"112.0"`) are the same integer. For `#[serde(deserialize_with = ...)]` on integer fields.
pub mod whole {
    use serde::de::{self, Deserializer, Visitor};

    /// `text`: the number may arrive as a string (query strings have nothing else).
    struct Whole {
        text: bool,
    }

    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative whole number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("expected a non-negative whole number"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // 2^53: beyond it a float no longer says which integer it means.
            if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
                Ok(v as u64)
            } else {
                Err(E::custom("expected a non-negative whole number"))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            if !self.text {
                return Err(E::invalid_type(de::Unexpected::Str(v), &self));
            }
            match v.parse::<u64>() {
                Ok(n) => Ok(n),
                Err(_) => match v.parse::<f64>() {
                    Ok(f) if f.is_finite() && !v.contains(['e', 'E', 'i', 'n', 'I', 'N']) => {
                        self.visit_f64(f)
                    }
                    _ => Err(E::custom("expected a non-negative whole number")),
                },
            }
        }
    }

    /// A JSON integer.
    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = d.deserialize_any(Whole { text: false })?;
        u32::try_from(n).map_err(|_| de::Error::custom("number too large"))
    }

    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct Opt;
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative whole number or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(Whole { text: false }).map(Some)
            }
        }
        d.deserialize_option(Opt)
    }

    /// A query-string integer.
    pub fn query_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Whole { text: true })
    }

    /// The same reading for a number that arrives as text (the audit page's fields).
    pub fn parse_i64(text: &str) -> Option<i64> {
        if let Ok(n) = text.parse::<i64>() {
            return Some(n);
        }
        let f = text.parse::<f64>().ok()?;
        let ok = f.is_finite()
            && f.fract() == 0.0
            && f.abs() <= 9_007_199_254_740_992.0
            && !text.contains(['e', 'E', 'i', 'n', 'I', 'N']);
        ok.then_some(f as i64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Days {
        #[serde(deserialize_with = "whole::u32")]
        days: u32,
        #[serde(default, deserialize_with = "whole::opt_u64")]
        size: Option<u64>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Offset {
        #[serde(deserialize_with = "whole::query_u64")]
        offset: u64,
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        let d: Days = serde_json::from_str(r#"{"days": 112.0, "size": 5}"#).unwrap();
        assert_eq!((d.days, d.size), (112, Some(5)));
        let d: Days = serde_json::from_str(r#"{"days": 3, "size": null}"#).unwrap();
        assert_eq!((d.days, d.size), (3, None));
        let d: Days = serde_json::from_str(r#"{"days": 3}"#).unwrap();
        assert_eq!(d.size, None);
        for bad in [
            r#"{"days": 1.5}"#,
            r#"{"days": -1}"#,
            r#"{"days": "3"}"#,
            r#"{"days": 5000000000}"#,
            r#"{"days": 3, "size": -2.0}"#,
        ] {
            assert!(serde_json::from_str::<Days>(bad).is_err(), "{bad}");
        }
        let q = |t: &str| serde_urlencoded_like(t);
        assert_eq!(q("offset=7"), Some(7));
        assert_eq!(q("offset=7.0"), Some(7));
        assert_eq!(q("offset=7.5"), None);
        assert_eq!(q("offset=-1"), None);
        assert_eq!(whole::parse_i64("42"), Some(42));
        assert_eq!(whole::parse_i64("42.0"), Some(42));
        assert_eq!(whole::parse_i64("-3"), Some(-3));
        for bad in ["4.5", "1e3", "NaN", "inf", "x", ""] {
            assert_eq!(whole::parse_i64(bad), None, "{bad}");
        }
    }

    fn serde_urlencoded_like(query: &str) -> Option<u64> {
        let uri: axum::http::Uri = format!("/x?{query}").parse().unwrap();
        axum::extract::Query::<Offset>::try_from_uri(&uri)
            .ok()
            .map(|q| q.0.offset)
    }

    #[test]
    fn invalid_utf8_in_urlencoded_text_is_refused() {
        for bad in [
            "path=/home/ov%c0%ae%c0%af.txt",
            "path=/home/ov%c1%81%ff%fe.txt",
            "a=1&path=%ff",
            "%ff=x",
            "path=/home/%e2%82",
        ] {
            assert!(require_utf8_urlencoded(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(require_utf8_urlencoded(b"path=/home/ov\xff.txt").is_err());
        for good in [
            "",
            "path=/home/a+b.txt",
            "path=%2Fhome%2F%E2%82%AC.txt&resume=true",
            "x=%",
            "path=/home/100%25",
        ] {
            assert!(require_utf8_urlencoded(good.as_bytes()).is_ok(), "{good}");
        }
    }
}
