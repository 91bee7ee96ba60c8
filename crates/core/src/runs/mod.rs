//! Runs: every call of a function is a run with a record. This module holds the asynchronous
//! side: a run accepted now and executed later ([`submit`]), durably stored before it is
//! answered. (Interface placeholder of the runs work, issue 15: `submit` refuses until the
//! executor lands.)

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::failure::{Failure, FailureKind};
use crate::state::AppState;

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

/// Accepts a run: validates the request (JSON input, the function exists), stores it as
/// `queued` (durably, before this returns) and wakes the executor.
pub async fn submit(state: &Arc<AppState>, submission: Submission) -> Result<Submitted, Failure> {
    let _ = (state, submission);
    Err(Failure::new(
        FailureKind::Unavailable,
        "faasbox.runs.unavailable",
        "asynchronous runs are not available in this build",
    ))
}
