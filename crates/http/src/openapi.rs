//! The OpenAPI document served at `/api/v1/openapi.json`, generated from the route table
//! `api::routes` hands it (the same list the router is built from, so no route is served undocumented
//! or documented unserved) and the API's own types (`utoipa::ToSchema` derived on the request
//! and response types, so a field added to one is in the document).

use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem,
    PathsBuilder, Ref, RefOr, Required, ResponseBuilder, ResponsesBuilder,
};
use utoipa::ToSchema;

/// The schemas a document refers to, by name.
pub type Schemas = BTreeMap<String, RefOr<Schema>>;

/// Adds a schema to `schemas` (with the ones it refers to) and gives a reference to it.
pub type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// `T`, by reference.
pub fn one<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    for (name, schema) in nested {
        schemas.entry(name).or_insert(schema);
    }
    schemas
        .entry(T::name().into_owned())
        .or_insert_with(T::schema);
    Ref::from_schema_name(T::name()).into()
}

/// A list of `T`.
pub fn many<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    ArrayBuilder::new().items(one::<T>(schemas)).into()
}

/// Any JSON value.
pub fn any_json(_: &mut Schemas) -> RefOr<Schema> {
    Schema::Object(ObjectBuilder::new().build()).into()
}

/// A list of JSON values.
pub fn any_list(_: &mut Schemas) -> RefOr<Schema> {
    ArrayBuilder::new().items(ObjectBuilder::new()).into()
}

/// A request body a route takes.
#[derive(Clone, Copy)]
pub enum Body {
    None,
    /// JSON of this schema (read by `api::json_body`: no Content-Type needed).
    Json(SchemaFn),
    /// Like `Json`, but the body may be empty.
    OptionalJson(SchemaFn),
    /// A JSON merge patch (RFC 7396) of this schema's object: any of its fields, or `null`.
    MergePatch,
    /// Bytes of this Content-Type, with what they are.
    Raw(&'static str, &'static str),
    /// A secret: the raw value, or `{"data": base64}` sent as `application/json`.
    Secret,
}

/// The answer of a route that succeeded.
#[derive(Clone, Copy)]
pub enum Answer {
    /// JSON of this schema with this status.
    Json(u16, SchemaFn),
    /// No body.
    Empty(u16),
    /// Newline-delimited JSON progress events.
    Stream,
    /// A text document of this Content-Type.
    Text(&'static str),
}

/// What the document says of one route.
#[derive(Clone, Copy)]
pub struct Doc {
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: name, required, what it is.
    pub query: &'static [(&'static str, bool, &'static str)],
    pub body: Body,
    pub answer: Answer,
    /// Reached without a token.
    pub open: bool,
}

impl Doc {
    pub const fn new(tag: &'static str, summary: &'static str, answer: Answer) -> Doc {
        Doc {
            tag,
            summary,
            query: &[],
            body: Body::None,
            answer,
            open: false,
        }
    }

    /// A route reached without a token.
    pub const fn open(mut self) -> Doc {
        self.open = true;
        self
    }

    pub const fn query(mut self, query: &'static [(&'static str, bool, &'static str)]) -> Doc {
        self.query = query;
        self
    }

    pub const fn body(mut self, body: Body) -> Doc {
        self.body = body;
        self
    }
}

/// A route as the document lists it: `{*path}` becomes `{path}`.
pub fn documented_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The path parameters of a route path.
pub(crate) fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*').to_string())
        .collect()
}

fn http_method(method: &axum::http::Method) -> HttpMethod {
    match *method {
        axum::http::Method::GET => HttpMethod::Get,
        axum::http::Method::PUT => HttpMethod::Put,
        axum::http::Method::PATCH => HttpMethod::Patch,
        axum::http::Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Post,
    }
}

fn json_content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// The document for these routes (method, path, what it is).
pub fn document<'a>(
    routes: impl IntoIterator<Item = (&'a axum::http::Method, &'a str, &'a Doc)>,
) -> OpenApi {
    let mut schemas = Schemas::new();
    let error = one::<crate::error::ErrorBody>(&mut schemas);
    let mut items: BTreeMap<String, Vec<(HttpMethod, utoipa::openapi::path::Operation)>> =
        BTreeMap::new();
    for (method, path, doc) in routes {
        let mut operation = OperationBuilder::new()
            .tag(doc.tag)
            .summary(Some(doc.summary))
            .operation_id(Some(format!(
                "{} {}",
                method.as_str().to_ascii_lowercase(),
                documented_path(path)
            )));
        if doc.open {
            operation = operation.securities(Some(Vec::new()));
        }
        for name in path_params(path) {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        for (name, required, description) in doc.query {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(if *required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .description(Some(*description))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        let body = match doc.body {
            Body::None => None,
            Body::Json(schema) | Body::OptionalJson(schema) => {
                let required = matches!(doc.body, Body::Json(_));
                let schema = schema(&mut schemas);
                Some(
                    RequestBodyBuilder::new()
                        .description(Some(
                            "JSON; taken without a Content-Type, or with the form type `curl -d` sends",
                        ))
                        .content("application/json", json_content(schema))
                        .required(Some(if required {
                            Required::True
                        } else {
                            Required::False
                        }))
                        .build(),
                )
            }
            Body::MergePatch => Some(
                RequestBodyBuilder::new()
                    .description(Some(
                        "a JSON merge patch (RFC 7396) of the FunctionSpec: given fields replace, objects merge, null removes",
                    ))
                    .content("application/merge-patch+json", json_content(any_json(&mut schemas)))
                    .content("application/json", json_content(any_json(&mut schemas)))
                    .required(Some(Required::True))
                    .build(),
            ),
            Body::Raw(content_type, description) => Some(
                RequestBodyBuilder::new()
                    .description(Some(description))
                    .content(content_type, ContentBuilder::new().build())
                    .build(),
            ),
            Body::Secret => Some(
                RequestBodyBuilder::new()
                    .description(Some(
                        "the value as the raw body (any Content-Type but application/json), or {\"data\": base64} sent as application/json",
                    ))
                    .content("application/octet-stream", ContentBuilder::new().build())
                    .content(
                        "application/json",
                        json_content(
                            ObjectBuilder::new()
                                .property("data", ObjectBuilder::new().schema_type(Type::String))
                                .required("data")
                                .into(),
                        ),
                    )
                    .required(Some(Required::True))
                    .build(),
            ),
        };
        if let Some(body) = body {
            operation = operation.request_body(Some(body));
        }
        let (status, answer) = match doc.answer {
            Answer::Json(status, schema) => (
                status,
                ResponseBuilder::new()
                    .description("success")
                    .content("application/json", json_content(schema(&mut schemas)))
                    .build(),
            ),
            Answer::Empty(status) => (status, ResponseBuilder::new().description("done").build()),
            Answer::Stream => (
                200,
                ResponseBuilder::new()
                    .description(
                        "newline-delimited JSON progress events, the last one `done` (with the image) or `error`",
                    )
                    .content("application/x-ndjson", ContentBuilder::new().build())
                    .build(),
            ),
            Answer::Text(content_type) => (
                200,
                ResponseBuilder::new()
                    .description("success")
                    .content(content_type, ContentBuilder::new().build())
                    .build(),
            ),
        };
        operation = operation.responses(
            ResponsesBuilder::new()
                .response(status.to_string(), answer)
                .response(
                    "default",
                    ResponseBuilder::new()
                        .description(
                            "{\"error\": {\"code\", \"message\"}}: what went wrong, with the fix",
                        )
                        .content("application/json", json_content(error.clone()))
                        .build(),
                ),
        );
        items
            .entry(documented_path(path))
            .or_default()
            .push((http_method(method), operation.build()));
    }
    let mut paths = PathsBuilder::new();
    for (path, operations) in items {
        let mut item = PathItem::default();
        for (method, operation) in operations {
            let one = PathItem::new(method, operation);
            item.merge_operations(one);
        }
        paths = paths.path(path, item);
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("faasbox API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Run any OCI image as a function. Every route but /api/v1/health needs \
                     `Authorization: Bearer <token>`. Errors are answered as \
                     {\"error\":{\"code\",\"message\"}}; function failures add \"catchable\". \
                     Every number in a request is range-checked (400 naming the field and its \
                     range). Generated from the server's route table and types.",
                )),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .security(Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]))
        .build()
}
