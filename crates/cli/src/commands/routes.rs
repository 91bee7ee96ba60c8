//! `faasbox route create|update|ls|get|rm|enable|disable`: a namespace's HTTP routes (see
//! docs/ROUTES.md). Passwords and keys are read from the flags or from files (`NAME=@FILE`),
//! sent once, and never printed (the server shows users and keys by name only).

use std::collections::BTreeMap;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::cli::{OutputFormat, RouteArgs, RouteCommand};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: RouteCommand,
) -> anyhow::Result<()> {
    match command {
        RouteCommand::Create { route, spec } => {
            let (ns, name) = split_route(&route)?;
            let body = create_body(&spec)?;
            let view = send(client, Method::PUT, ns, name, &body).await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        RouteCommand::Update { route, spec } => {
            let (ns, name) = split_route(&route)?;
            let current: Value = client.get(&route_path(ns, name)).await?;
            let body = patch_body(&spec, &current)?;
            let view = send(client, Method::PATCH, ns, name, &body).await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        RouteCommand::Ls { namespace } => {
            let list: Vec<Value> = client
                .get(&format!("/api/v1/namespaces/{namespace}/routes"))
                .await?;
            print(format, &list, || table(&list));
        }
        RouteCommand::Get { route } => {
            let (ns, name) = split_route(&route)?;
            let view: Value = client.get(&route_path(ns, name)).await?;
            print(format, &view, || table(std::slice::from_ref(&view)));
        }
        RouteCommand::Rm { route } => {
            let (ns, name) = split_route(&route)?;
            client
                .send(client.request(Method::DELETE, &route_path(ns, name)))
                .await?;
            print(format, &json!({ "deleted": route }), || {
                Table::new(vec!["DELETED"]).row(vec![route.clone()])
            });
        }
        RouteCommand::Enable { route } => set_enabled(client, format, &route, true).await?,
        RouteCommand::Disable { route } => set_enabled(client, format, &route, false).await?,
    }
    Ok(())
}

async fn set_enabled(
    client: &Client,
    format: OutputFormat,
    route: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    let (ns, name) = split_route(route)?;
    let body = Zeroizing::new(serde_json::to_vec(&json!({ "enabled": enabled }))?);
    let view = send(client, Method::PATCH, ns, name, &body).await?;
    print(format, &view, || table(std::slice::from_ref(&view)));
    Ok(())
}

async fn send(
    client: &Client,
    method: Method,
    ns: &str,
    name: &str,
    body: &Zeroizing<Vec<u8>>,
) -> anyhow::Result<Value> {
    client
        .json(
            client
                .request(method, &route_path(ns, name))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec()),
        )
        .await
}

fn route_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/routes/{name}")
}

/// The whole route of `route create`.
fn create_body(args: &RouteArgs) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let Some(path) = &args.path else {
        anyhow::bail!("give the route's --path (e.g. --path /hooks/github)");
    };
    let mut body = Map::new();
    body.insert("path".into(), json!(path));
    body.insert(
        "target".into(),
        target(args)?.ok_or_else(|| {
            anyhow::anyhow!("give what the route calls: --function NAME or --flow PATH")
        })?,
    );
    if !args.methods.is_empty() {
        body.insert("methods".into(), json!(args.methods));
    }
    if !args.hosts.is_empty() {
        body.insert("hosts".into(), json!(args.hosts));
    }
    if let Some(auth) = auth(args, true)? {
        body.insert("auth".into(), auth);
    }
    if let Some(cors) = cors(args, &Value::Null) {
        body.insert("cors".into(), cors);
    }
    if args.raw_response {
        body.insert("raw_response".into(), json!(true));
    }
    if let Some(limits) = limits(args, &Value::Null)? {
        body.insert("limits".into(), limits);
    }
    encode(Value::Object(body))
}

/// The fields `route update` changes; `current` is the route as the server shows it (its
/// CORS settings and limits are kept but for the flags given).
fn patch_body(args: &RouteArgs, current: &Value) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut body = Map::new();
    if let Some(path) = &args.path {
        body.insert("path".into(), json!(path));
    }
    if let Some(target) = target(args)? {
        body.insert("target".into(), target);
    }
    if !args.methods.is_empty() {
        body.insert("methods".into(), json!(args.methods));
    }
    if !args.hosts.is_empty() {
        body.insert("hosts".into(), json!(args.hosts));
    }
    if let Some(auth) = auth(args, false)? {
        body.insert("auth".into(), auth);
    }
    if let Some(cors) = cors(args, &current["cors"]) {
        body.insert("cors".into(), cors);
    }
    if args.raw_response {
        body.insert("raw_response".into(), json!(true));
    }
    if let Some(limits) = limits(args, &current["limits"])? {
        body.insert("limits".into(), limits);
    }
    if body.is_empty() {
        anyhow::bail!(
            "nothing to change: give the flags to change (see `faasbox route update --help`)"
        );
    }
    encode(Value::Object(body))
}

fn encode(body: Value) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes =
        serde_json::to_vec(&body).map_err(|e| anyhow::anyhow!("cannot encode the route: {e}"))?;
    let mut body = body;
    wipe(&mut body);
    Ok(Zeroizing::new(bytes))
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => zeroize::Zeroize::zeroize(text),
        Value::Object(fields) => fields.values_mut().for_each(wipe),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        _ => {}
    }
}

fn target(args: &RouteArgs) -> anyhow::Result<Option<Value>> {
    Ok(match (&args.function, &args.flow) {
        (Some(function), None) => Some(json!({ "function": function })),
        (None, Some(flow)) => Some(json!({ "flow": flow })),
        (None, None) => None,
        (Some(_), Some(_)) => anyhow::bail!("give --function or --flow, not both"),
    })
}

/// The `auth` of the flags; `None` when no flag of it was given. `route create` infers the
/// kind from --user (basic) and --key (api-key); `route update` needs --auth.
fn auth(args: &RouteArgs, infer: bool) -> anyhow::Result<Option<Value>> {
    let any = args.auth.is_some()
        || args.secret.is_some()
        || args.header.is_some()
        || args.prefix.is_some()
        || args.query.is_some()
        || !args.users.is_empty()
        || !args.keys.is_empty();
    if !any {
        return Ok(None);
    }
    let kind = match (&args.auth, infer) {
        (Some(kind), _) => kind.clone(),
        (None, true) if !args.users.is_empty() => "basic".into(),
        (None, true) if !args.keys.is_empty() => "api-key".into(),
        _ => anyhow::bail!(
            "say which authentication with --auth KIND (none, token, basic, api-key, \
             hmac-sha256, slack){}",
            if infer {
                ""
            } else {
                ": an update replaces the whole authentication, so give all of it"
            }
        ),
    };
    let unused = |flag: &str, given: bool| -> anyhow::Result<()> {
        if given {
            anyhow::bail!(
                "{flag} does not apply to --auth {kind}; see `faasbox route create --help`"
            )
        }
        Ok(())
    };
    let mut auth = Map::new();
    auth.insert("kind".into(), json!(kind));
    match kind.as_str() {
        "none" | "token" => {
            unused("--secret", args.secret.is_some())?;
            unused("--header", args.header.is_some())?;
            unused("--prefix", args.prefix.is_some())?;
            unused("--query", args.query.is_some())?;
            unused("--user", !args.users.is_empty())?;
            unused("--key", !args.keys.is_empty())?;
        }
        "basic" => {
            unused("--secret", args.secret.is_some())?;
            unused("--header", args.header.is_some())?;
            unused("--prefix", args.prefix.is_some())?;
            unused("--query", args.query.is_some())?;
            unused("--key", !args.keys.is_empty())?;
            auth.insert("users".into(), credentials("--user", &args.users)?);
        }
        "api-key" => {
            unused("--secret", args.secret.is_some())?;
            unused("--prefix", args.prefix.is_some())?;
            unused("--user", !args.users.is_empty())?;
            if let Some(header) = &args.header {
                auth.insert("header".into(), json!(header));
            }
            if let Some(query) = &args.query {
                auth.insert("query".into(), json!(query));
            }
            auth.insert("keys".into(), credentials("--key", &args.keys)?);
        }
        "hmac-sha256" | "slack" => {
            unused("--query", args.query.is_some())?;
            unused("--user", !args.users.is_empty())?;
            unused("--key", !args.keys.is_empty())?;
            let Some(secret) = &args.secret else {
                anyhow::bail!(
                    "--auth {kind} needs --secret NAME: the namespace secret that signs \
                     (create it with `faasbox secret set NS/NAME`)"
                );
            };
            auth.insert("secret".into(), json!(secret));
            if kind == "slack" {
                unused("--header", args.header.is_some())?;
                unused("--prefix", args.prefix.is_some())?;
            } else {
                if let Some(header) = &args.header {
                    auth.insert("header".into(), json!(header));
                }
                if let Some(prefix) = &args.prefix {
                    auth.insert("prefix".into(), json!(prefix));
                }
            }
        }
        other => anyhow::bail!(
            "--auth '{other}' is not a kind: use none, token, basic, api-key, hmac-sha256 or slack"
        ),
    }
    Ok(Some(Value::Object(auth)))
}

/// `NAME=VALUE` or `NAME=@FILE` pairs (a file's final newline is dropped).
fn credentials(flag: &str, given: &[String]) -> anyhow::Result<Value> {
    let mut found = BTreeMap::new();
    for pair in given {
        let Some((name, value)) = pair.split_once('=') else {
            anyhow::bail!("{flag} takes NAME=VALUE or NAME=@FILE; one was given without '='");
        };
        let value = match value.strip_prefix('@') {
            Some(file) => {
                let read = Zeroizing::new(
                    std::fs::read_to_string(file)
                        .with_context(|| format!("reading {flag} {name}'s file {file}"))?,
                );
                read.strip_suffix('\n')
                    .map(|v| v.strip_suffix('\r').unwrap_or(v))
                    .unwrap_or(&read)
                    .to_string()
            }
            None => value.to_string(),
        };
        if found
            .insert(name.to_string(), Value::String(value))
            .is_some()
        {
            anyhow::bail!("{flag} '{name}' is given twice; give each name once");
        }
    }
    Ok(Value::Object(found.into_iter().collect()))
}

/// The `cors` of the flags over `current`'s; `None` when no CORS flag was given.
fn cors(args: &RouteArgs, current: &Value) -> Option<Value> {
    if args.cors_origins.is_empty() && args.cors_methods.is_empty() && args.cors_headers.is_empty()
    {
        return None;
    }
    let mut cors = current.as_object().cloned().unwrap_or_default();
    for (field, given) in [
        ("origins", &args.cors_origins),
        ("methods", &args.cors_methods),
        ("headers", &args.cors_headers),
    ] {
        if !given.is_empty() {
            cors.insert(field.into(), json!(given));
        }
    }
    Some(Value::Object(cors))
}

/// The `limits` of the flags over `current`'s; `None` when no limit flag was given.
fn limits(args: &RouteArgs, current: &Value) -> anyhow::Result<Option<Value>> {
    if args.max_body.is_none()
        && args.rate.is_none()
        && args.burst.is_none()
        && args.timeout.is_none()
    {
        return Ok(None);
    }
    let mut limits = current.as_object().cloned().unwrap_or_default();
    if let Some(bytes) = args.max_body {
        limits.insert("max_body_bytes".into(), json!(bytes));
    }
    if let Some(rate) = args.rate {
        limits.insert("rate_per_second".into(), json!(rate));
    }
    if let Some(burst) = args.burst {
        limits.insert("burst".into(), json!(burst));
    }
    if let Some(timeout) = args.timeout {
        if timeout.subsec_nanos() != 0 || timeout.as_secs() == 0 {
            anyhow::bail!("--timeout takes whole seconds, at least 1s (e.g. 30s, 2m)");
        }
        limits.insert("timeout_seconds".into(), json!(timeout.as_secs()));
    }
    Ok(Some(Value::Object(limits)))
}

/// NAME, PATH, METHODS, TARGET, AUTH, ENABLED, URLS.
fn table(list: &[Value]) -> Table {
    let join = |v: &Value| {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
    };
    Table::new(vec![
        "NAME", "PATH", "METHODS", "TARGET", "AUTH", "ENABLED", "URLS",
    ])
    .rows(list.iter().map(|r| {
        let target = match (&r["target"]["function"], &r["target"]["flow"]) {
            (Value::String(f), _) => format!("function {f}"),
            (_, Value::String(f)) => format!("flow {f}"),
            _ => "-".into(),
        };
        vec![
            text(&r["name"]),
            text(&r["path"]),
            join(&r["methods"]).unwrap_or_else(|| "*".into()),
            target,
            text(&r["auth"]["kind"]),
            text(&r["enabled"]),
            join(&r["urls"]).unwrap_or_else(|| "-".into()),
        ]
    }))
}

/// Splits "namespace/name".
fn split_route(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => anyhow::bail!("'{text}' is not NAMESPACE/ROUTE (for example demo/github)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: Zeroizing<Vec<u8>>) -> Value {
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn create_flags_make_the_apis_route() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alice.pw");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let args = RouteArgs {
            path: Some("/hooks/{id}".into()),
            function: Some("echo".into()),
            methods: vec!["POST".into()],
            users: vec![
                format!("alice=@{}", file.display()),
                "bob=b0b-password".into(),
            ],
            cors_origins: vec!["*".into()],
            rate: Some(2.5),
            timeout: Some(std::time::Duration::from_secs(30)),
            ..Default::default()
        };
        let body = parsed(create_body(&args).unwrap());
        assert_eq!(
            body,
            json!({
                "path": "/hooks/{id}", "target": {"function": "echo"}, "methods": ["POST"],
                "auth": {"kind": "basic", "users": {"alice": "from-a-file", "bob": "b0b-password"}},
                "cors": {"origins": ["*"]},
                "limits": {"rate_per_second": 2.5, "timeout_seconds": 30}
            })
        );
    }

    #[test]
    fn wrong_flag_combinations_say_the_fix() {
        let base = || RouteArgs {
            path: Some("/x".into()),
            function: Some("f".into()),
            ..Default::default()
        };
        let e = create_body(&RouteArgs {
            path: None,
            ..base()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--path"), "{e}");
        let e = create_body(&RouteArgs {
            auth: Some("hmac-sha256".into()),
            ..base()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--secret NAME"), "{e}");
        let e = create_body(&RouteArgs {
            auth: Some("basic".into()),
            keys: vec!["k=0123456789abcdef".into()],
            ..base()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--key does not apply"), "{e}");
        let e = patch_body(
            &RouteArgs {
                users: vec!["a=password1".into()],
                ..Default::default()
            },
            &Value::Null,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--auth KIND"), "{e}");
        let e = create_body(&RouteArgs {
            timeout: Some(std::time::Duration::from_millis(1500)),
            ..base()
        })
        .unwrap_err();
        assert!(e.to_string().contains("whole seconds"), "{e}");
    }

    #[test]
    fn an_update_keeps_the_limits_and_cors_it_does_not_name() {
        let current = json!({
            "limits": {"max_body_bytes": 1024, "rate_per_second": 1.0},
            "cors": {"origins": ["https://a.example"], "headers": ["X-A"]}
        });
        let args = RouteArgs {
            burst: Some(5),
            cors_methods: vec!["GET".into()],
            ..Default::default()
        };
        assert_eq!(
            parsed(patch_body(&args, &current).unwrap()),
            json!({
                "limits": {"max_body_bytes": 1024, "rate_per_second": 1.0, "burst": 5},
                "cors": {"origins": ["https://a.example"], "headers": ["X-A"], "methods": ["GET"]}
            })
        );
        assert!(patch_body(&RouteArgs::default(), &current).is_err());
    }
}
