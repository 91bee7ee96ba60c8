//! What a route's call gives the function and what the caller gets back: the request's
//! [`HttpContext`], the input each contract gets from it (Dispatch's `httpContext` for code
//! functions, OpenWhisk's `__ow_*` parameters, headers forwarded to Direktiv HTTP functions),
//! and the HTTP answer made of the output (JSON, or a raw `{statusCode, headers, body}`).
//! See `docs/ROUTES.md`.

use std::collections::BTreeMap;

use bytes::Bytes;
use faasbox_proto::{Contract, HttpForward};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::failure::Failure;

/// The HTTP request that caused a call, as the function and the run record see it (without
/// the body, which travels as the call's input).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpContext {
    /// The route's name.
    pub route: String,
    /// The request method, upper case.
    pub method: String,
    /// The path the route matched: below `/ns/{namespace}`, or the whole path on a host route.
    pub path: String,
    /// The path parameters (`{id}`; a final `*` gives `*`), decoded.
    pub params: BTreeMap<String, String>,
    /// The query string as sent, without `?` (empty when none).
    pub raw_query: String,
    /// The query parameters, decoded; a repeated one keeps its first value.
    pub query: BTreeMap<String, String>,
    /// The request headers, names lower case, repeated ones joined with `, `; without
    /// hop-by-hop headers and the route's own credentials.
    pub headers: BTreeMap<String, String>,
    /// The client's address (`ip:port`).
    pub remote_addr: String,
    /// The `Host` the request named, without the port (when it had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The most fields a form body may have (400 beyond).
pub const MAX_FORM_FIELDS: usize = 1000;
/// The most headers a raw response may set (502 beyond).
pub const MAX_RESPONSE_HEADERS: usize = 100;

/// The web UI's session cookie, which functions never get (see [`context_headers`]).
pub const UI_SESSION_COOKIE: &str = "faasbox_session";

/// The request headers an [`HttpContext`] never shows besides the hop-by-hop ones: the
/// connection's `host` (it is [`HttpContext::host`]) and `content-length`.
const NOT_CONTEXT_HEADERS: [&str; 2] = ["host", "content-length"];

/// The request's headers as an [`HttpContext`] shows them: names lower case, a repeated header
/// joined with `, ` (`cookie` with `; `), values not UTF-8 made so (`U+FFFD`); without
/// hop-by-hop headers (and those the request's `Connection` names), `host`, `content-length`
/// and the `stripped` ones (the route's own credential: `authorization`, an API key's header;
/// any case); and without the web UI's session cookie ([`UI_SESSION_COOKIE`]; other cookies
/// stay).
pub fn context_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    stripped: &[&str],
) -> BTreeMap<String, String> {
    let headers: Vec<(String, &[u8])> = headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    // `Connection: close, X-Hop` makes `X-Hop` a hop-by-hop header of this request too.
    let mut named_by_connection: Vec<String> = Vec::new();
    for (_, value) in headers.iter().filter(|(name, _)| name == "connection") {
        let names = String::from_utf8_lossy(value);
        named_by_connection.extend(
            names
                .split(',')
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty()),
        );
    }
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let dropped = faasbox_proto::HOP_BY_HOP_HEADERS.contains(&name.as_str())
            || NOT_CONTEXT_HEADERS.contains(&name.as_str())
            || named_by_connection.contains(&name)
            || stripped.iter().any(|s| s.eq_ignore_ascii_case(&name));
        if dropped {
            continue;
        }
        let mut value = String::from_utf8_lossy(value);
        if name == "cookie" {
            match without_session_cookie(&value) {
                Some(kept) => value = kept.into(),
                None => continue,
            }
        }
        let separator = if name == "cookie" { "; " } else { ", " };
        shown
            .entry(name)
            .and_modify(|joined| {
                joined.push_str(separator);
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    shown
}

/// A `Cookie` header's value without the web UI's session cookie (which the browser sends
/// only to `/ui`, but an old cookie or a proxy might send here); `None` when nothing is left.
fn without_session_cookie(value: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && pair.split('=').next().map(str::trim) != Some(UI_SESSION_COOKIE)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// A request body, classified by its content type (see [`parse_body`]).
enum Body<'a> {
    /// Empty: the input is `{}`.
    Empty,
    /// JSON, checked (the bytes are passed on as they came).
    Json(&'a [u8]),
    /// A form, as an object of strings (a repeated field: an array of them).
    Form(Map<String, Value>),
    /// Anything else: passed as a JSON string of its base64.
    Raw(&'a [u8]),
}

impl Body<'_> {
    /// The body as the call's JSON input.
    fn input(&self) -> Result<Bytes, Failure> {
        Ok(match self {
            Body::Empty => Bytes::from_static(b"{}"),
            Body::Json(bytes) => Bytes::copy_from_slice(bytes),
            Body::Form(fields) => json_bytes(&Value::Object(fields.clone()))?,
            Body::Raw(bytes) => json_bytes(&Value::String(base64_of(bytes)))?,
        })
    }

    /// The body as a JSON value.
    fn value(&self) -> Result<Value, Failure> {
        Ok(match self {
            Body::Empty => Value::Object(Map::new()),
            Body::Json(bytes) => serde_json::from_slice(bytes).map_err(not_json)?,
            Body::Form(fields) => Value::Object(fields.clone()),
            Body::Raw(bytes) => Value::String(base64_of(bytes)),
        })
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn json_bytes(value: &Value) -> Result<Bytes, Failure> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Failure::internal(format!("cannot write the call's input as JSON: {e}")))
}

fn not_json(e: serde_json::Error) -> Failure {
    Failure::invalid(format!(
        "the body is not valid JSON ({e}) but its content type says JSON: send JSON, or \
         another content type to pass the body as it is"
    ))
}

/// The media type of a `Content-Type` value, lower case, without its parameters.
fn media_type(content_type: Option<&str>) -> Option<String> {
    let value = content_type?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

fn classify<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Body<'a>, Failure> {
    if body.is_empty() {
        return Ok(Body::Empty);
    }
    let media = media_type(content_type).unwrap_or_default();
    let is_json = media == "application/json" || (media.contains('/') && media.ends_with("+json"));
    if is_json {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::Empty);
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(not_json)?;
        return Ok(Body::Json(body));
    }
    if media == "application/x-www-form-urlencoded" {
        return form_fields(body).map(Body::Form);
    }
    Ok(Body::Raw(body))
}

/// A form body as an object: each field a string, a repeated field an array of its values in
/// order. At most [`MAX_FORM_FIELDS`] fields (counting repeats).
fn form_fields(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    let mut fields = Map::new();
    for (count, (name, value)) in form_urlencoded::parse(body).enumerate() {
        if count >= MAX_FORM_FIELDS {
            return Err(Failure::invalid(format!(
                "the form body has more than {MAX_FORM_FIELDS} fields: send fewer, or the \
                 data as JSON (content type application/json)"
            )));
        }
        let value = Value::String(value.into_owned());
        match fields.get_mut(name.as_ref()) {
            None => {
                fields.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => {
                let first = first.take();
                fields.insert(name.into_owned(), Value::Array(vec![first, value]));
            }
        }
    }
    Ok(fields)
}

/// A request body as the JSON a function gets: JSON (`application/json`, `…+json`) as it is
/// (400 when it does not parse; a blank one is `{}`), a form
/// (`application/x-www-form-urlencoded`) as an object of strings (a repeated field: an array;
/// more than [`MAX_FORM_FIELDS`] fields: 400), an empty body as `{}`, any other body as a
/// JSON string holding its base64.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, Failure> {
    classify(content_type, body)?.value()
}

/// What a route's call gives the invoker: the input, the code contract's context fields, and
/// the request the http contract forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCall {
    /// The call's JSON input (`CallRequest::input`).
    pub input: Bytes,
    /// Context fields of a code function's envelope (`CallOptions::code_context`):
    /// `httpContext`; empty for other contracts.
    pub code_context: Map<String, Value>,
    /// The request a Direktiv HTTP function sees (`CallOptions::http_forward`); `None` for
    /// other contracts.
    pub forward: Option<HttpForward>,
}

/// The input of a call through a route to a function of `contract`, made of the request's
/// context and body (see `docs/ROUTES.md`, "What each contract gets"):
///
/// - code: the body as the payload, and `httpContext` in the context;
/// - openwhisk: an object of the query parameters, the body's fields on top (a JSON object or
///   a form), then `__ow_method` (lower case), `__ow_headers`, `__ow_path`, `__ow_query`; a
///   body that is not an object is `__ow_body` (its JSON text, or base64 for a raw body);
/// - http: the body, and the request to forward (headers but the platform's own);
/// - cmd, file: the body.
///
/// A body whose content type says JSON but that does not parse, or a form with too many
/// fields, is 400.
pub fn call_input_for(
    contract: Contract,
    ctx: &HttpContext,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<RouteCall, Failure> {
    let body = classify(content_type, body)?;
    let mut call = RouteCall {
        input: Bytes::new(),
        code_context: Map::new(),
        forward: None,
    };
    match contract {
        Contract::Code => {
            call.input = body.input()?;
            let context = serde_json::to_value(ctx).map_err(|e| {
                Failure::internal(format!("cannot write the HTTP context as JSON: {e}"))
            })?;
            call.code_context.insert("httpContext".into(), context);
        }
        Contract::Openwhisk => call.input = json_bytes(&openwhisk_params(ctx, &body)?)?,
        Contract::Http => {
            call.input = body.input()?;
            call.forward = Some(http_forward(ctx));
        }
        Contract::Cmd | Contract::File => call.input = body.input()?,
    }
    Ok(call)
}

/// An OpenWhisk web action's parameters (see [`call_input_for`]).
fn openwhisk_params(ctx: &HttpContext, body: &Body<'_>) -> Result<Value, Failure> {
    let mut params: Map<String, Value> = ctx
        .query
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let own_body = match body {
        Body::Empty => None,
        Body::Form(fields) => {
            params.extend(fields.clone());
            None
        }
        Body::Json(bytes) => match serde_json::from_slice(bytes).map_err(not_json)? {
            Value::Object(fields) => {
                params.extend(fields);
                None
            }
            _ => Some(String::from_utf8_lossy(bytes).into_owned()),
        },
        Body::Raw(bytes) => Some(base64_of(bytes)),
    };
    let headers: Map<String, Value> = ctx
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    params.insert(
        "__ow_method".into(),
        Value::String(ctx.method.to_ascii_lowercase()),
    );
    params.insert("__ow_headers".into(), Value::Object(headers));
    params.insert("__ow_path".into(), Value::String(ctx.path.clone()));
    params.insert("__ow_query".into(), Value::String(ctx.raw_query.clone()));
    if let Some(text) = own_body {
        params.insert("__ow_body".into(), Value::String(text));
    }
    Ok(Value::Object(params))
}

/// The request a Direktiv HTTP function sees of `ctx` (`CallOptions::http_forward`): its
/// method, path, raw query and the headers the agent may forward
/// ([`faasbox_proto::forwardable_header`]).
pub fn http_forward(ctx: &HttpContext) -> HttpForward {
    HttpForward {
        method: ctx.method.clone(),
        path: ctx.path.clone(),
        query: ctx.raw_query.clone(),
        headers: ctx
            .headers
            .iter()
            .filter(|(name, _)| faasbox_proto::forwardable_header(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    }
}

/// The HTTP answer a raw-response route gives (see [`raw_response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The status, 100 ..= 599.
    pub status: u16,
    /// The headers, in order (a name may repeat: `set-cookie`); always a `content-type` when
    /// there is a body.
    pub headers: Vec<(String, String)>,
    /// The body's bytes.
    pub body: Bytes,
}

/// The keys a raw response may have.
const RAW_KEYS: [&str; 4] = ["statusCode", "headers", "body", "isBase64Encoded"];

/// The answer a raw-response route gives for the function's `output`, which must be a JSON
/// object `{statusCode?, headers?, body?, isBase64Encoded?}` (OpenWhisk's web action result)
/// and nothing else:
///
/// - `statusCode`: an integer 100 ..= 599; 200 when absent;
/// - `headers`: an object of names to a string, number or boolean, or an array of them (the
///   header repeated); names HTTP tokens, values without control characters; at most
///   [`MAX_RESPONSE_HEADERS`]; hop-by-hop headers are refused and `content-length` is ignored
///   (faasbox sets it from the body);
/// - `body`: a string is sent as it is (UTF-8), or base64-decoded when `isBase64Encoded` is
///   true (whitespace in it ignored); another JSON value is sent as JSON; absent or `null` is
///   an empty body;
/// - the default `content-type` (when `headers` has none): `text/plain; charset=utf-8` for a
///   string (never HTML unless the function says so; OpenWhisk would say `text/html`),
///   `application/octet-stream` for a decoded base64 body, `application/json` for a JSON
///   value; none for an empty body.
///
/// `Err` says what is wrong with the output (the gateway answers 502).
pub fn raw_response(output: &[u8]) -> Result<RawResponse, String> {
    let value: Value = serde_json::from_slice(output)
        .map_err(|e| format!("the function's output is not JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err(format!(
            "the function's output is {}, not the object {{statusCode, headers, body, \
             isBase64Encoded}} a raw-response route answers with",
            kind_of(&value)
        ));
    };
    if let Some(extra) = fields.keys().find(|key| !RAW_KEYS.contains(&key.as_str())) {
        return Err(format!(
            "the function's output has `{extra}`, which a raw response does not have: a \
             raw-response route's function answers {{statusCode, headers, body, \
             isBase64Encoded}} only (or turn off the route's raw response)"
        ));
    }
    let status = match fields.remove("statusCode") {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(status @ 100..=599) => status,
            _ => {
                return Err(format!(
                    "`statusCode` {n} is not an HTTP status (100 ..= 599)"
                ))
            }
        },
        Some(other) => {
            return Err(format!(
                "`statusCode` is {}, not a number (100 ..= 599)",
                kind_of(&other)
            ))
        }
    };
    let mut headers = match fields.remove("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => response_headers(map)?,
        Some(other) => {
            return Err(format!(
                "`headers` is {}, not an object of header names to values",
                kind_of(&other)
            ))
        }
    };
    let base64 = match fields.remove("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(format!(
                "`isBase64Encoded` is {}, not true or false",
                kind_of(&other)
            ))
        }
    };
    let (body, default_type) = match fields.remove("body") {
        None | Some(Value::Null) if !base64 => (Bytes::new(), None),
        Some(Value::String(text)) if base64 => {
            use base64::Engine as _;
            let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .map_err(|e| format!("`body` is not base64 but `isBase64Encoded` is true: {e}"))?;
            (Bytes::from(bytes), Some("application/octet-stream"))
        }
        Some(Value::String(text)) => (Bytes::from(text), Some("text/plain; charset=utf-8")),
        Some(other) if !base64 => {
            let bytes = serde_json::to_vec(&other)
                .map_err(|e| format!("cannot write `body` as JSON: {e}"))?;
            (Bytes::from(bytes), Some("application/json"))
        }
        Some(other) => {
            return Err(format!(
                "`isBase64Encoded` is true but `body` is {}, not a base64 string",
                kind_of(&other)
            ))
        }
        None => return Err("`isBase64Encoded` is true but there is no `body`".into()),
    };
    let has_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if let (false, Some(content_type), false) = (has_type, default_type, body.is_empty()) {
        headers.push(("content-type".into(), content_type.into()));
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// A raw response's `headers` object, checked (see [`raw_response`]).
fn response_headers(map: Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (name, value) in map {
        if !is_token(&name) {
            return Err(format!(
                "header name {name:?} is not a valid HTTP header name (letters, digits and \
                 !#$%&'*+-.^_`|~ only)"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if faasbox_proto::HOP_BY_HOP_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "header `{name}` describes a connection, not an answer: a function cannot set \
                 it (remove it)"
            ));
        }
        let values = match value {
            Value::Array(values) => values,
            single => vec![single],
        };
        for value in values {
            let text = match value {
                Value::String(text) => text,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "header `{name}` is {}, not a string, number or boolean",
                        kind_of(&other)
                    ))
                }
            };
            if text.chars().any(|c| c.is_ascii_control() && c != '\t') {
                return Err(format!(
                    "header `{name}` has a control character (a line break?) in its value: \
                     header values are one line"
                ));
            }
            if lower == "content-length" {
                continue;
            }
            if headers.len() >= MAX_RESPONSE_HEADERS {
                return Err(format!(
                    "the output sets more than {MAX_RESPONSE_HEADERS} headers"
                ));
            }
            headers.push((name.clone(), text));
        }
    }
    Ok(headers)
}

/// Whether `name` is an HTTP token (RFC 9110 5.6.2), as header names must be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What kind of JSON value `value` is, for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
