//! Runs: every call of a function is a run with a record. This module holds the asynchronous
//! side: a run accepted now and executed later ([`submit`]), durably stored before it is
//! answered, then claimed and run by the executor (`executor`) with bounded concurrency;
//! after a crash `recovery` queues interrupted runs again; `cancel` stops a queued or running
//! run, `callback` POSTs a finished run's result, `retention` removes old records.

pub mod callback;
pub mod cancel;
pub mod executor;
pub mod recovery;
pub mod retention;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::failure::Failure;
use crate::owner::Owner;
use crate::state::AppState;

/// The longest id a caller may choose for a run.
const MAX_ID_LEN: usize = 128;

/// Every status a run can have.
pub const STATUSES: [&str; 7] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "crashed",
    "timeout",
    "cancelled",
];

/// Refuses a status no run has (a list filter).
pub fn check_status(status: &str) -> Result<(), Failure> {
    if STATUSES.contains(&status) {
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "status '{status}' is not a run status: use one of {}",
        STATUSES.join(", ")
    )))
}

/// A list filter's `since` (RFC 3339) in the form the store compares records' times in.
pub fn since(text: &str) -> Result<String, Failure> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(crate::run_record::timestamp)
        .map_err(|e| {
            Failure::invalid(format!(
                "since '{text}' is not an RFC 3339 time (like 2026-01-31T12:00:00Z): {e}"
            ))
        })
}

/// A run to accept now and execute later.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// The run's id; `None` lets the server choose one. A run with this id that exists
    /// already means an earlier attempt got through: [`submit`] answers it with
    /// `existed: true` and stores nothing (a subscription's delivery relies on it).
    pub id: Option<String>,
    /// The namespace whose function runs (its record, logs and secrets are the namespace's).
    pub namespace: String,
    /// The function's name.
    pub function: String,
    /// The request body (JSON; empty is `{}`).
    pub input: Bytes,
    /// The CloudEvent (without its `data`) that caused the run.
    pub event: Option<Value>,
    /// The HTTP request that caused the run.
    pub http_context: Option<Value>,
    /// Where the result is POSTed when the run ends.
    pub callback_url: Option<String>,
    /// Secrets and services the run gets on top of its function's.
    pub secrets: Vec<String>,
    /// See `secrets`.
    pub services: Vec<String>,
    /// The function is a global service called on behalf of `namespace`.
    pub global: bool,
}

/// What [`submit`] answers.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The run's id.
    pub id: String,
    /// Its status when answered (`queued`, or later ones for a run that existed).
    pub status: String,
    /// The id was taken already (nothing new was stored).
    pub existed: bool,
}

/// Accepts a run: validates the request (JSON input, the function exists and is in service,
/// a callback URL is http), stores it as `queued` (durably, before this returns) and wakes
/// the executor. A run whose id exists is answered as it is (`existed`), nothing stored.
pub async fn submit(state: &Arc<AppState>, submission: Submission) -> Result<Submitted, Failure> {
    let Submission {
        id,
        namespace,
        function,
        input,
        event,
        http_context,
        callback_url,
        secrets,
        services,
        global,
    } = submission;
    if let Some(id) = &id {
        let valid = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !valid {
            return Err(Failure::invalid(format!(
                "run id '{id}' is not valid: use 1 to {MAX_ID_LEN} letters, digits, '-', '_', '.' or ':'"
            )));
        }
        if let Some(existing) = state.store.invocation(id).await? {
            return Ok(Submitted {
                id: existing.id,
                status: existing.status,
                existed: true,
            });
        }
    }
    if let Some(url) = &callback_url {
        callback::check_url(url)?;
    }
    if input.len() > state.config.max_input_bytes {
        return Err(Failure::too_large(format!(
            "the input has {} bytes, more than the server's largest input of {} bytes \
             (`faasbox server --max-input-bytes`)",
            input.len(),
            state.config.max_input_bytes
        )));
    }
    let owner = if global {
        Owner::Global
    } else {
        Owner::Namespace(namespace.clone())
    };
    crate::invoker::callable(state, &owner, &function, &namespace, &input).await?;
    let input = if input.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        input
    };
    let id = id.unwrap_or_else(crate::record_id::run);
    let run = faasbox_store::NewRun {
        id: id.clone(),
        namespace,
        function: if global {
            format!("{}{function}", crate::invoker::GLOBAL_CALL_PREFIX)
        } else {
            function
        },
        mode: "async".into(),
        status: "queued".into(),
        accepted: crate::run_record::now(),
        input: Some(String::from_utf8_lossy(&input).into_owned()),
        event: event.map(|e| e.to_string()),
        http_context: http_context.map(|c| c.to_string()),
        callback_url,
        secrets,
        services,
        // Whichever server claims it runs it (and becomes its node).
        node: None,
    };
    if !state.store.insert_run(&run).await? {
        // Stored by a concurrent submission of the same id between the look-up and now.
        let status = state
            .store
            .invocation(&id)
            .await?
            .map(|r| r.status)
            .unwrap_or_else(|| "queued".into());
        return Ok(Submitted {
            id,
            status,
            existed: true,
        });
    }
    state.runs.wake();
    Ok(Submitted {
        id,
        status: "queued".into(),
        existed: false,
    })
}

#[cfg(test)]
mod tests;
