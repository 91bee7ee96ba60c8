//! OpenWhisk's own routes on the agent's socket: `POST /init` and `POST /run` (other methods get
//! 405, as Flask answers them).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::{Answer, OpenWhiskContract};
use crate::http_util::{self, Body};

/// The largest `/init` or `/run` body taken (a zipped action is sent base64-encoded in one).
pub const MAX_BODY_BYTES: usize = 128 * 1024 * 1024;

/// Whether `path` is one of OpenWhisk's routes.
pub fn serves(path: &str) -> bool {
    matches!(path, "/init" | "/run")
}

/// Answers `/init` or `/run`.
pub async fn handle(contract: &OpenWhiskContract, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        let mut response = http_util::text(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let is_init = req.uri().path() == "/init";
    let body: Bytes = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(err) => {
            return http_util::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the request: {err}"),
            )
        }
    };
    let answer = if is_init {
        contract.init(&body).await
    } else {
        contract.run(&body).await
    };
    respond(answer)
}

fn respond(answer: Answer) -> Response<Body> {
    let content_type = if answer.json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = answer.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
