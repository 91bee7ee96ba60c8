//! Deploying, updating and rolling back a function or global service: the spec is checked, its
//! image resolved and pinned to a digest ([`image_pin`]), a numbered revision stored (spec,
//! digest, time, token name), and that revision put into service (the previous instances finish
//! their calls and stop). One change per function at a time, so the store's current revision
//! and the one in service are the same. At start, every function is put into service with its
//! current revision; a function stored before revisions existed gets revision 1 here, pinned to
//! its image's digest if the image is local (else at its first call).

use std::sync::Arc;

use faasbox_store::{FunctionRecord, NewRevision, RevisionRecord};
use serde_json::Value;

use crate::clock;
use crate::deployments::Deployment;
use crate::failure::{Failure, FailureKind, Fallible};
use crate::image_pin::{self, PullPolicy, Resolved};
use crate::model::FunctionSpec;
use crate::owner::Owner;
use crate::spec_changes::changed_paths;
use crate::state::AppState;

/// How many revisions of a function are kept (the current one always is).
pub const REVISIONS_KEPT: u32 = 10;

/// Who made the revision 1 that a function stored before revisions gets at start.
pub const MIGRATED_BY: &str = "(before revisions)";

/// A stored and activated change of a function.
pub struct Outcome {
    /// The function's stored record, now naming the new revision.
    pub record: FunctionRecord,
    /// The revision this change made current.
    pub revision: RevisionRecord,
    /// The revision that was current before (`None`: the function is new).
    pub previous: Option<RevisionRecord>,
    /// The spec fields (and `digest`) that differ from the previous revision.
    pub changes: Vec<String>,
    /// What the deployer should know but that did not stop the deploy (a failed pull that
    /// pinned the local copy).
    pub warnings: Vec<String>,
}

/// Deploys `spec` as the whole new spec of `owner`'s function `name`. Like every change here,
/// it runs to its end even when the caller goes away (a client that hangs up mid-pull), so
/// what is stored and what is in service never part.
pub async fn deploy(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    spec: FunctionSpec,
    pull: Option<&str>,
    by: &str,
) -> Fallible<Outcome> {
    let (owner, name, pull, by) = owned(owner, name, pull, by);
    state
        .to_completion(move |s| async move {
            deploy_now(&s, &owner, &name, spec, pull.as_deref(), &by).await
        })
        .await
}

/// The arguments of a change, owned by the task that makes it.
fn owned(
    owner: &Owner,
    name: &str,
    pull: Option<&str>,
    by: &str,
) -> (Owner, String, Option<String>, String) {
    (
        owner.clone(),
        name.to_string(),
        pull.map(str::to_string),
        by.to_string(),
    )
}

async fn deploy_now(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    spec: FunctionSpec,
    pull: Option<&str>,
    by: &str,
) -> Fallible<Outcome> {
    check(owner, name, &spec).await?;
    let policy = PullPolicy::parse(pull, &spec.image)?;
    let lock = state.change_lock(owner.key(), name);
    let _changing = lock.lock().await;
    let resolved = image_pin::resolve(state, owner, name, &spec.image, policy).await?;
    runnable(state, owner, name, &spec, &resolved)?;
    store_and_activate(state, owner, name, spec, resolved, policy, by).await
}

/// Refuses a spec whose pinned image it cannot run (an http function on an image without an
/// entrypoint, and no `cmd`). An image that is not local yet (its pull failed) is checked at
/// its first call, when `instance_spec::build` starts an instance from it.
fn runnable(
    state: &AppState,
    owner: &Owner,
    name: &str,
    spec: &FunctionSpec,
    resolved: &Resolved,
) -> Fallible<()> {
    let content = resolved
        .digest
        .as_deref()
        .and_then(|d| state.images.content(d));
    match content.and_then(|c| crate::instance_spec::command_problem(spec, &c)) {
        Some(problem) => Err(Failure::invalid(format!(
            "{} was not deployed: {problem}",
            owner.describe(name)
        ))),
        None => Ok(()),
    }
}

/// Applies a JSON merge patch (RFC 7396) to the current spec of `owner`'s function `name`.
/// The image stays pinned to the current digest unless the patch changes the image or a pull
/// policy is given.
pub async fn update(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    patch: Value,
    pull: Option<&str>,
    by: &str,
) -> Fallible<Outcome> {
    let (owner, name, pull, by) = owned(owner, name, pull, by);
    state
        .to_completion(move |s| async move {
            update_now(&s, &owner, &name, patch, pull.as_deref(), &by).await
        })
        .await
}

async fn update_now(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    patch: Value,
    pull: Option<&str>,
    by: &str,
) -> Fallible<Outcome> {
    if !patch.is_object() {
        return Err(Failure::invalid(
            "the update must be a JSON object: a merge patch of the spec (RFC 7396), like \
             {\"envs\": {\"A\": \"2\"}, \"timeout\": \"1m\"}",
        ));
    }
    let lock = state.change_lock(owner.key(), name);
    let _changing = lock.lock().await;
    let current = current_revision(state, owner, name).await?;
    let mut merged: Value = serde_json::from_str(&current.spec)
        .map_err(|e| Failure::internal(format!("the stored spec is unreadable: {e}")))?;
    json_patch::merge(&mut merged, &patch);
    let merged = serde_json::to_vec(&merged).map_err(|e| Failure::internal(e.to_string()))?;
    let spec = FunctionSpec::from_json(&merged).map_err(|e| {
        Failure::invalid(format!(
            "{} was not updated: the patched spec is not valid: {e}",
            owner.describe(name)
        ))
    })?;
    check(owner, name, &spec).await?;
    let before: FunctionSpec = serde_json::from_str(&current.spec)
        .map_err(|e| Failure::internal(format!("the stored spec is unreadable: {e}")))?;
    let keep_digest = spec.image == before.image && pull.is_none();
    let (resolved, policy) = match (&current.digest, keep_digest) {
        (Some(digest), true) => {
            let hold = state
                .images
                .hold(digest)
                .ok_or_else(|| removed(owner, name, digest))?;
            let resolved = Resolved {
                digest: Some(digest.clone()),
                image_namespace: current.image_namespace.clone(),
                hold: Some(hold),
                warning: None,
            };
            (resolved, PullPolicy::from_stored(&current.pull))
        }
        _ => {
            let policy = match pull {
                None if keep_digest => PullPolicy::from_stored(&current.pull),
                given => PullPolicy::parse(given, &spec.image)?,
            };
            let resolved = image_pin::resolve(state, owner, name, &spec.image, policy).await?;
            (resolved, policy)
        }
    };
    runnable(state, owner, name, &spec, &resolved)?;
    store_and_activate(state, owner, name, spec, resolved, policy, by).await
}

/// Makes revision `to` (default: the newest one before the current) of `owner`'s function
/// `name` current again. Returns the function, the revision now current, and the one before.
pub async fn rollback(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    to: Option<u32>,
) -> Fallible<(FunctionRecord, RevisionRecord, RevisionRecord)> {
    let (owner, name) = (owner.clone(), name.to_string());
    state
        .to_completion(move |s| async move { rollback_now(&s, &owner, &name, to).await })
        .await
}

/// Deletes `owner`'s function `name` and takes it out of service; its image is forgotten and
/// garbage collected when nothing else uses it.
pub async fn remove(state: &Arc<AppState>, owner: &Owner, name: &str) -> Fallible<()> {
    let (owner, name) = (owner.clone(), name.to_string());
    state
        .to_completion(move |s| async move {
            if !owner.delete_function(&*s.store, &name).await? {
                return Err(owner.missing(&name));
            }
            s.deployments.deactivate(owner.key(), &name);
            crate::changes::publish_function(&*s.store, &owner, &name).await;
            crate::image_pull::forget(&s, &owner, &name).await;
            s.collect_image_garbage();
            Ok(())
        })
        .await
}

async fn rollback_now(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    to: Option<u32>,
) -> Fallible<(FunctionRecord, RevisionRecord, RevisionRecord)> {
    let lock = state.change_lock(owner.key(), name);
    let _changing = lock.lock().await;
    let current = current_revision(state, owner, name).await?;
    let kept = state.store.revisions(owner.key(), name).await?;
    let numbers: Vec<String> = kept.iter().map(|r| r.revision.to_string()).collect();
    let target = match to {
        Some(n) => kept.iter().find(|r| r.revision == n).ok_or_else(|| {
            Failure::not_found(format!(
                "{} has no revision {n}; the kept revisions are {} (see `faasbox fn history`)",
                owner.describe(name),
                numbers.join(", ")
            ))
        })?,
        None => kept
            .iter()
            .rev()
            .find(|r| r.revision < current.revision)
            .ok_or_else(|| {
                Failure::conflict(format!(
                    "{} has no revision before its current one ({}); give one with --to",
                    owner.describe(name),
                    current.revision
                ))
            })?,
    };
    if target.revision == current.revision {
        return Err(Failure::conflict(format!(
            "revision {} of {} is current already",
            target.revision,
            owner.describe(name)
        )));
    }
    let target = target.clone();
    let spec: FunctionSpec = serde_json::from_str(&target.spec).map_err(|e| {
        Failure::internal(format!("revision {} is unreadable: {e}", target.revision))
    })?;
    let hold = match &target.digest {
        Some(digest) => Some(
            state
                .images
                .hold(digest)
                .ok_or_else(|| removed(owner, name, digest))?,
        ),
        None => None,
    };
    // The quota check and the store's change are one step under the deploys lock (no other
    // deploy, update or rollback can come between them).
    let _deploys = state.quotas.lock_deploys().await;
    check_quotas(state, owner, name, &spec, true).await?;
    let made = state
        .store
        .make_current(owner.key(), name, target.revision, &clock::now_rfc3339())
        .await?;
    let (record, target) = made.ok_or_else(|| owner.missing(name))?;
    tracing::info!(
        "{} rolled back from revision {} to {}",
        owner.describe(name),
        current.revision,
        target.revision
    );
    state.deployments.activate(
        owner.key(),
        name,
        Deployment {
            spec,
            digest: target.digest.clone(),
            revision: Some(target.revision),
            pull: PullPolicy::from_stored(&target.pull),
        },
    );
    drop(hold);
    crate::changes::publish_function(&*state.store, owner, name).await;
    Ok((record, target, current))
}

/// The spec's problems, its input template, and whether its secrets and template fit, as a
/// 400 naming all of them. The template is compiled off the async threads, on a stack big
/// enough for any expression within bounds.
async fn check(owner: &Owner, name: &str, spec: &FunctionSpec) -> Fallible<()> {
    let mut problems = spec.problems();
    problems.extend(crate::secret_use::problems(spec));
    if !problems.is_empty() {
        return Err(Failure::invalid(format!(
            "{} was not deployed: {}",
            owner.describe(name),
            problems.join("; ")
        )));
    }
    if let Some(template) = &spec.input {
        let template = template.clone();
        let checked = tokio::task::spawn_blocking(move || {
            crate::template::on_compile_stack(|| crate::template::check(&template))
        })
        .await
        .map_err(|e| Failure::internal(format!("checking the input template failed: {e}")))?;
        checked.map_err(|e| {
            Failure::new(
                FailureKind::Invalid,
                crate::template::BAD_COMMAND,
                format!(
                    "{} was not deployed: its input template is invalid: {e}",
                    owner.describe(name)
                ),
            )
        })?;
    }
    Ok(())
}

/// Checks a namespace function against its namespace's quotas (global services have none).
async fn check_quotas(
    state: &AppState,
    owner: &Owner,
    name: &str,
    spec: &FunctionSpec,
    existed: bool,
) -> Fallible<()> {
    let Owner::Namespace(namespace) = owner else {
        return Ok(());
    };
    // The `scale.min` of the namespace's other functions (a stored spec that cannot be read
    // runs nowhere: it counts as a function only).
    let others: Vec<u32> = owner
        .list_functions(&*state.store)
        .await?
        .into_iter()
        .filter(|r| r.name != name)
        .map(|r| {
            serde_json::from_str::<FunctionSpec>(&r.spec)
                .map(|s| s.scale.min)
                .unwrap_or(0)
        })
        .collect();
    Ok(state
        .quotas
        .quotas
        .check_deploy(namespace, name, spec, &others, existed)?)
}

async fn store_and_activate(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
    spec: FunctionSpec,
    resolved: Resolved,
    policy: PullPolicy,
    by: &str,
) -> Fallible<Outcome> {
    let text = serde_json::to_string(&spec).map_err(|e| Failure::internal(e.to_string()))?;
    // The namespace's quotas are checked and the revision stored as one step: the deploys
    // lock keeps every other deploy, update and rollback out from the check to the store.
    let _deploys = state.quotas.lock_deploys().await;
    let existed = owner.load_function(&*state.store, name).await?.is_some();
    check_quotas(state, owner, name, &spec, existed).await?;
    let created = clock::now_rfc3339();
    let new = NewRevision {
        spec: &text,
        digest: resolved.digest.as_deref(),
        image_namespace: resolved.image_namespace.as_deref(),
        pull: policy.as_str(),
        created: &created,
        created_by: by,
    };
    let revised = state
        .store
        .add_revision(owner.key(), name, &new, REVISIONS_KEPT)
        .await?;
    let changes = match &revised.previous {
        Some(previous) => changes(previous, &revised.revision),
        None => Vec::new(),
    };
    state.deployments.activate(
        owner.key(),
        name,
        Deployment {
            spec,
            digest: resolved.digest,
            revision: Some(revised.revision.revision),
            pull: policy,
        },
    );
    drop(resolved.hold);
    crate::changes::publish_function(&*state.store, owner, name).await;
    state.collect_image_garbage();
    Ok(Outcome {
        record: revised.function,
        revision: revised.revision,
        previous: revised.previous,
        changes,
        warnings: resolved.warning.into_iter().collect(),
    })
}

/// What differs between two revisions: spec fields, and `digest`.
pub fn changes(before: &RevisionRecord, after: &RevisionRecord) -> Vec<String> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let mut paths = changed_paths(&parse(&before.spec), &parse(&after.spec));
    if before.digest != after.digest {
        paths.push("digest".to_string());
    }
    paths
}

/// The current revision of an existing function (404 otherwise).
async fn current_revision(
    state: &Arc<AppState>,
    owner: &Owner,
    name: &str,
) -> Fallible<RevisionRecord> {
    let found = match owner.load_function(&*state.store, name).await? {
        Some(FunctionRecord {
            revision: Some(revision),
            ..
        }) => state.store.revision(owner.key(), name, revision).await?,
        _ => None,
    };
    found.ok_or_else(|| owner.missing(name))
}

fn removed(owner: &Owner, name: &str, digest: &str) -> Failure {
    Failure::conflict(format!(
        "the image {digest} of {} was removed from the store (image rm --force); deploy it \
         again with an image that is there",
        owner.describe(name)
    ))
}

/// Puts every stored function and global service into service (at server start); a function
/// from before revisions gets its revision 1 here. Returns how many.
pub async fn activate_stored(state: &AppState) -> Fallible<usize> {
    let mut records = state.store.all_functions().await?;
    records.extend(state.store.list_global_functions().await?);
    let mut count = 0;
    for record in records {
        let owner = Owner::from_key(&record.namespace);
        match activate_one(state, &owner, &record).await {
            Ok(()) => count += 1,
            Err(e) => tracing::error!(
                "{} cannot be put into service, skipping it: {}",
                owner.describe(&record.name),
                e.message
            ),
        }
    }
    Ok(count)
}

pub(crate) async fn activate_one(
    state: &AppState,
    owner: &Owner,
    record: &FunctionRecord,
) -> Fallible<()> {
    let revision = match record.revision {
        Some(n) => state
            .store
            .revision(owner.key(), &record.name, n)
            .await?
            .ok_or_else(|| Failure::internal(format!("its current revision {n} is not stored")))?,
        None => {
            let spec: FunctionSpec = serde_json::from_str(&record.spec)
                .map_err(|e| Failure::internal(format!("its stored spec is unreadable: {e}")))?;
            let found = state.images.resolve(owner.image_namespace(), &spec.image)?;
            let new = NewRevision {
                spec: &record.spec,
                digest: found.as_ref().map(|r| r.digest.as_str()),
                image_namespace: found.as_ref().and_then(|r| r.namespace.as_deref()),
                pull: PullPolicy::Missing.as_str(),
                created: &record.updated,
                created_by: MIGRATED_BY,
            };
            let revised = state
                .store
                .add_revision(owner.key(), &record.name, &new, REVISIONS_KEPT)
                .await?;
            tracing::info!(
                "{} from before revisions is revision 1, image {}",
                owner.describe(&record.name),
                revised
                    .revision
                    .digest
                    .as_deref()
                    .unwrap_or("(pinned at its first call)")
            );
            revised.revision
        }
    };
    let spec: FunctionSpec = serde_json::from_str(&revision.spec)
        .map_err(|e| Failure::internal(format!("its stored spec is unreadable: {e}")))?;
    state.deployments.activate(
        owner.key(),
        &record.name,
        Deployment {
            spec,
            digest: revision.digest,
            revision: Some(revision.revision),
            pull: PullPolicy::from_stored(&revision.pull),
        },
    );
    Ok(())
}
