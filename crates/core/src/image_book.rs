//! What the server state keeps of images beyond the image store: how a deploy pulls its image
//! ([`PullPolicy`]), the pulls and pins in flight, and the last pull failure per function
//! ([`ImagePulls`]). `crate::image_pull` and `crate::image_pin` do the pulling and pinning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use faasbox_images::ImageStore;
use serde::Serialize;

use crate::failure::Failure;

/// Error code of a call or deploy whose image is missing and could not be pulled.
pub const IMAGE_MISSING: &str = "faasbox.image.missing";

/// When a deploy pulls its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull at every deploy (so a moved tag is picked up). The default for references that
    /// name a registry host.
    Always,
    /// Pull only when the image is not in the owner's tables. The default for local names.
    Missing,
    /// Never pull: the image must be local.
    Never,
}

impl PullPolicy {
    /// The policy a deploy asked for (`?pull=`), or the default for `image`.
    pub fn parse(text: Option<&str>, image: &str) -> Result<PullPolicy, Failure> {
        let policy = match text {
            None | Some("") => return Ok(PullPolicy::default_for(image)),
            Some("always") => PullPolicy::Always,
            Some("missing") => PullPolicy::Missing,
            Some("never") => PullPolicy::Never,
            Some(other) => {
                return Err(Failure::invalid(format!(
                    "pull policy '{}' is invalid: use always, missing or never",
                    other.escape_debug()
                )))
            }
        };
        if policy == PullPolicy::Always && !names_a_registry(image) {
            return Err(Failure::invalid(format!(
                "pull policy always pulls from a registry, but image '{image}' names no registry \
                 host; use --pull missing (or never) for local images"
            )));
        }
        Ok(policy)
    }

    /// `always` for references that name a registry host, `missing` for local names.
    pub fn default_for(image: &str) -> PullPolicy {
        if names_a_registry(image) {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        }
    }

    /// The policy stored with a revision (`missing` for anything unknown).
    pub fn from_stored(text: &str) -> PullPolicy {
        match text {
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            _ => PullPolicy::Missing,
        }
    }

    /// The policy as the API and the store write it: `always`, `missing` or `never`.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::Missing => "missing",
            PullPolicy::Never => "never",
        }
    }
}

/// Whether a function's image is local, and why the last pull failed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImageState {
    /// `present` (pinned and local), `missing` (not local yet: pulled at the next call) or
    /// `removed` (pinned, but removed with `image rm --force`: deploy again).
    pub status: &'static str,
    /// Why the last pull of the image failed, while it is `missing` (absent when none failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_pull_error: Option<String>,
}

/// The pulls and pins in flight (one lock per key) and the last failure per function.
#[derive(Default)]
pub struct ImagePulls {
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    failures: Mutex<HashMap<String, String>>,
}

/// Only references that name a registry host (`host.name/…`, `host:port/…`, `localhost/…`)
/// are pulled; a bare `demo/echo` is a local name (never fetched from Docker Hub).
pub fn names_a_registry(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

impl ImagePulls {
    /// The image state of function `function_key` pinned to `digest` (`None`: not yet).
    pub fn state(
        &self,
        images: &ImageStore,
        function_key: &str,
        digest: Option<&str>,
    ) -> ImageState {
        match digest {
            Some(digest) if images.content(digest).is_some() => ImageState {
                status: "present",
                last_pull_error: None,
            },
            Some(_) => ImageState {
                status: "removed",
                last_pull_error: None,
            },
            None => ImageState {
                status: "missing",
                last_pull_error: self
                    .failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(function_key)
                    .cloned(),
            },
        }
    }

    /// Takes the failures the store kept from before a restart.
    pub fn load(&self, stored: Vec<faasbox_store::PullFailure>) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        for failure in stored {
            failures.insert(
                crate::owner::function_key(&failure.owner, &failure.function),
                failure.message,
            );
        }
    }

    pub(crate) fn set(&self, function_key: &str, error: Option<&str>) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match error {
            Some(error) => failures.insert(function_key.to_string(), error.to_string()),
            None => failures.remove(function_key),
        };
    }

    /// The lock of `key` (entries stay: there is one per function and image pulled).
    pub fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_string())
            .or_default()
            .clone()
    }
}
