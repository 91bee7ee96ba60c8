//! JSON request bodies read whatever JSON-ish Content-Type the client sent: none,
//! `application/json`, any `…/…+json` (a merge patch), and the `text/plain` and
//! `application/x-www-form-urlencoded` that `curl -d` and friends send. The body must parse as
//! the route's type; a body that does not, or another Content-Type, gets an [`ApiError`] that
//! says what the route takes. Body size limits are the route's (`DefaultBodyLimit`), as with
//! axum's `Json`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use faasbox_core::failure::codes;

/// A request body a route takes as JSON: what to say when it is not that.
pub trait JsonShape: DeserializeOwned {
    /// The message for a body that does not parse (`detail` is the parser's, with the field's
    /// path when there is one).
    fn problem(detail: &str) -> String;
}

/// A JSON request body of type `T` (see the module's doc for the Content-Types taken).
pub struct JsonBody<T>(pub T);

/// Like [`JsonBody`], but an empty (or all-whitespace) body is `None`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: JsonShape,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: JsonShape,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

/// Checks the Content-Type, then reads the body within the route's size limit.
async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    check_content_type(req.headers())?;
    Ok(Bytes::from_request(req, state).await?)
}

/// Whether a body with these headers may be JSON: no Content-Type, a JSON one, or one that
/// command-line clients send by default for `-d`.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let given = value.to_str().unwrap_or("");
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let taken = essence.is_empty()
        || essence == "application/json"
        || essence == "text/json"
        || essence == "text/plain"
        || essence == "application/x-www-form-urlencoded"
        || (essence.ends_with("+json") && essence.contains('/'));
    if taken {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::BAD_REQUEST,
            format!(
                "this route takes a JSON body, not Content-Type '{}': send it as \
                 application/json (or with no Content-Type)",
                given.escape_debug()
            ),
        ))
    }
}

/// Parses the whole body as `T`; the error names the field at fault.
fn parse<T: JsonShape>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut reader)
        .map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.into_inner().to_string()
            } else {
                format!("`{path}`: {}", e.into_inner())
            }
        })
        .and_then(|v| reader.end().map(|()| v).map_err(|e| e.to_string()));
    value.map_err(|detail| ApiError::bad_request(T::problem(&detail)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Named {
        name: String,
    }

    impl JsonShape for Named {
        fn problem(detail: &str) -> String {
            format!("expected {{\"name\": \"…\"}}: {detail}")
        }
    }

    fn request(content_type: Option<&str>, body: &'static str) -> Request {
        let mut builder = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        builder.body(Body::from(body)).unwrap()
    }

    async fn extract(content_type: Option<&str>, body: &'static str) -> Result<Named, ApiError> {
        JsonBody::<Named>::from_request(request(content_type, body), &())
            .await
            .map(|JsonBody(v)| v)
    }

    #[tokio::test]
    async fn json_is_taken_without_or_with_any_json_ish_content_type() {
        for ct in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("application/merge-patch+json"),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let got = extract(ct, r#"{"name":"demo"}"#).await;
            assert_eq!(
                got.ok(),
                Some(Named {
                    name: "demo".into()
                }),
                "{ct:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_the_shape_says_what_is_wrong() {
        let e = extract(None, r#"{"nam":"demo"}"#).await.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let message = e.message.clone();
        assert!(message.starts_with("expected {\"name\""), "{message}");
        assert!(message.contains("unknown field `nam`"), "{message}");
        let e = extract(Some("text/plain"), "name=demo").await.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = extract(None, r#"{"name":"demo"} trailing"#)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = extract(None, r#"{"name":7}"#).await.unwrap_err();
        let message = e.message.clone();
        assert!(message.contains("`name`"), "{message}");
    }

    #[tokio::test]
    async fn another_content_type_is_refused_with_the_fix() {
        let e = extract(Some("application/xml"), r#"{"name":"demo"}"#)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let message = e.message.clone();
        assert!(message.contains("application/json"), "{message}");
    }

    #[tokio::test]
    async fn an_optional_body_may_be_empty() {
        let got = OptionalJsonBody::<Named>::from_request(request(None, " \n"), &())
            .await
            .map(|OptionalJsonBody(v)| v);
        assert_eq!(got.ok(), Some(None));
        let got = OptionalJsonBody::<Named>::from_request(request(None, "{}"), &()).await;
        assert!(got.is_err());
    }
}
