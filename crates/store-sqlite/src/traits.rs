//! `faasbox-store`'s traits for [`SqliteStore`]: each async method copies its arguments and runs
//! the synchronous method of the same name on one of tokio's blocking threads, so an async
//! worker never waits for SQLite (or for the connection's lock).

use std::collections::HashSet;

use async_trait::async_trait;
use faasbox_proto::LogLine;
use faasbox_store::{
    BuildLogLine, Claim, CodeKind, CodeRecord, CodeStatus, DataKeyRecord, Decide, DelayedEvent,
    Delivery, EventInsert, EventStore, ExpiredInstance, Fence, FlowInstanceRecord, FlowRecord,
    FlowStore, FunctionLogs, FunctionRecord, FunctionStore, InstanceCallRecord, InstanceFilter,
    InstanceLogRecord, Interruption, InvocationEnd, InvocationRecord, InvocationStore, Listener,
    ListenerRecord, NamespaceRecord, NamespaceStore, NewBuildLogLine, NewInstance, NewInstanceLog,
    NewRevision, NewRun, ProgressWrite, PullFailure, PullFailureStore, RegistryRecord, Requeued,
    Result, Revised, RevisionRecord, Rewrap, RouteRecord, RouteStore, RunCount, RunFilter,
    ScheduleRecord, SecretEntry, SecretRecord, SecretStore, ServiceRecord, ServiceStore, StepEnd,
    StepRecord, StepStart, StoreError, StoredEvent, SubscriptionRecord, TokenRecord, TokenStore,
};

use crate::SqliteStore;

/// Owned copies of an [`Interruption`]'s parts, for a blocking closure.
fn owned_interruption(gone: &Interruption<'_>) -> (String, String, String) {
    (
        gone.ended.to_owned(),
        gone.node.to_owned(),
        gone.cause.to_owned(),
    )
}

impl SqliteStore {
    /// Runs `work` on (a clone of) this store in one of tokio's blocking threads. A panic in
    /// `work` goes on in the caller.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteStore) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || work(&store)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(e) => Err(StoreError::backend(e)),
        }
    }
}

/// Owned copies of `&str` arguments, for moving into [`SqliteStore::run`].
macro_rules! own {
    ($($arg:ident),+) => {
        $(let $arg = $arg.to_owned();)+
    };
}

/// Owned copies of `Option<&str>` arguments.
macro_rules! own_opt {
    ($($arg:ident),+) => {
        $(let $arg: Option<String> = $arg.map(str::to_owned);)+
    };
}

#[async_trait]
impl NamespaceStore for SqliteStore {
    async fn create_namespace(&self, name: &str, created: &str) -> Result<NamespaceRecord> {
        own!(name, created);
        self.run(move |s| s.create_namespace(&name, &created)).await
    }

    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>> {
        own!(name);
        self.run(move |s| s.namespace(&name)).await
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        self.run(|s| s.list_namespaces()).await
    }

    async fn delete_namespace(&self, name: &str) -> Result<bool> {
        own!(name);
        self.run(move |s| s.delete_namespace(&name)).await
    }
}

#[async_trait]
impl FunctionStore for SqliteStore {
    async fn put_function(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        own!(namespace, name, spec, now);
        self.run(move |s| s.put_function(&namespace, &name, &spec, &now))
            .await
    }

    async fn function(&self, namespace: &str, name: &str) -> Result<Option<FunctionRecord>> {
        own!(namespace, name);
        self.run(move |s| s.function(&namespace, &name)).await
    }

    async fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionRecord>> {
        own!(namespace);
        self.run(move |s| s.list_functions(&namespace)).await
    }

    async fn all_functions(&self) -> Result<Vec<FunctionRecord>> {
        self.run(|s| s.all_functions()).await
    }

    async fn delete_function(&self, namespace: &str, name: &str) -> Result<bool> {
        own!(namespace, name);
        self.run(move |s| s.delete_function(&namespace, &name))
            .await
    }

    async fn put_global_function(
        &self,
        name: &str,
        spec: &str,
        now: &str,
    ) -> Result<FunctionRecord> {
        own!(name, spec, now);
        self.run(move |s| s.put_global_function(&name, &spec, &now))
            .await
    }

    async fn global_function(&self, name: &str) -> Result<Option<FunctionRecord>> {
        own!(name);
        self.run(move |s| s.global_function(&name)).await
    }

    async fn list_global_functions(&self) -> Result<Vec<FunctionRecord>> {
        self.run(|s| s.list_global_functions()).await
    }

    async fn delete_global_function(&self, name: &str) -> Result<bool> {
        own!(name);
        self.run(move |s| s.delete_global_function(&name)).await
    }

    async fn add_revision(
        &self,
        owner: &str,
        function: &str,
        new: &NewRevision<'_>,
        keep: u32,
    ) -> Result<Revised> {
        own!(owner, function);
        let NewRevision {
            spec,
            digest,
            image_namespace,
            pull,
            created,
            created_by,
        } = *new;
        own!(spec, pull, created, created_by);
        own_opt!(digest, image_namespace);
        self.run(move |s| {
            let new = NewRevision {
                spec: &spec,
                digest: digest.as_deref(),
                image_namespace: image_namespace.as_deref(),
                pull: &pull,
                created: &created,
                created_by: &created_by,
            };
            s.add_revision(&owner, &function, &new, keep)
        })
        .await
    }

    async fn revisions(&self, owner: &str, function: &str) -> Result<Vec<RevisionRecord>> {
        own!(owner, function);
        self.run(move |s| s.revisions(&owner, &function)).await
    }

    async fn revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
    ) -> Result<Option<RevisionRecord>> {
        own!(owner, function);
        self.run(move |s| s.revision(&owner, &function, revision))
            .await
    }

    async fn make_current(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        now: &str,
    ) -> Result<Option<(FunctionRecord, RevisionRecord)>> {
        own!(owner, function, now);
        self.run(move |s| s.make_current(&owner, &function, revision, &now))
            .await
    }

    async fn pin_revision(
        &self,
        owner: &str,
        function: &str,
        revision: u32,
        digest: &str,
        image_namespace: Option<&str>,
    ) -> Result<bool> {
        own!(owner, function, digest);
        own_opt!(image_namespace);
        self.run(move |s| {
            s.pin_revision(
                &owner,
                &function,
                revision,
                &digest,
                image_namespace.as_deref(),
            )
        })
        .await
    }

    async fn revision_digests(&self) -> Result<HashSet<String>> {
        self.run(|s| s.revision_digests()).await
    }

    async fn digests_pinned_from(&self, image_namespace: Option<&str>) -> Result<HashSet<String>> {
        own_opt!(image_namespace);
        self.run(move |s| s.digests_pinned_from(image_namespace.as_deref()))
            .await
    }

    async fn revisions_pinning(&self, digest: &str) -> Result<Vec<RevisionRecord>> {
        own!(digest);
        self.run(move |s| s.revisions_pinning(&digest)).await
    }
}

#[async_trait]
impl InvocationStore for SqliteStore {
    async fn start_invocation(
        &self,
        id: &str,
        namespace: &str,
        function: &str,
        started: &str,
    ) -> Result<()> {
        own!(id, namespace, function, started);
        self.run(move |s| s.start_invocation(&id, &namespace, &function, &started))
            .await
    }

    async fn finish_invocation(
        &self,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        own!(id, logs);
        let end = faasbox_store::OwnedInvocationEnd::of(end);
        self.run(move |s| s.finish_invocation(&id, &end.borrowed(), &logs))
            .await
    }

    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        own!(id);
        self.run(move |s| s.invocation(&id)).await
    }

    async fn list_invocations(
        &self,
        namespace: &str,
        function: Option<&str>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>> {
        own!(namespace);
        own_opt!(function);
        self.run(move |s| s.list_invocations(&namespace, function.as_deref(), limit))
            .await
    }

    async fn append_logs(&self, invocation_id: &str, logs: &[LogLine]) -> Result<()> {
        own!(invocation_id, logs);
        self.run(move |s| s.append_logs(&invocation_id, &logs))
            .await
    }

    async fn logs(&self, invocation_id: &str) -> Result<Vec<LogLine>> {
        own!(invocation_id);
        self.run(move |s| s.logs(&invocation_id)).await
    }

    async fn fail_interrupted_invocations(&self, gone: &Interruption<'_>) -> Result<usize> {
        let (ended, node, cause) = owned_interruption(gone);
        self.run(move |s| {
            s.fail_interrupted_invocations(&Interruption {
                ended: &ended,
                node: &node,
                cause: &cause,
            })
        })
        .await
    }

    async fn insert_run(&self, run: &NewRun) -> Result<bool> {
        let run = run.clone();
        self.run(move |s| s.insert_run(&run)).await
    }

    async fn record_call(
        &self,
        run: &NewRun,
        end: &InvocationEnd<'_>,
        logs: &[LogLine],
    ) -> Result<bool> {
        let run = run.clone();
        own!(logs);
        let end = faasbox_store::OwnedInvocationEnd::of(end);
        self.run(move |s| s.record_call(&run, &end.borrowed(), &logs))
            .await
    }

    async fn write_calls(&self, writes: &[faasbox_store::CallWrite]) -> Result<Vec<bool>> {
        let writes = writes.to_vec();
        self.run(move |s| s.write_calls(&writes)).await
    }

    async fn queued_runs(&self, limit: u32, skip: &[String]) -> Result<Vec<InvocationRecord>> {
        let skip = skip.to_vec();
        self.run(move |s| s.queued_runs(limit, &skip)).await
    }

    async fn claim_run(&self, id: &str, started: &str, node: &str) -> Result<bool> {
        own!(id, started, node);
        self.run(move |s| s.claim_run(&id, &started, &node)).await
    }

    async fn cancel_queued_run(&self, id: &str, ended: &str) -> Result<bool> {
        own!(id, ended);
        self.run(move |s| s.cancel_queued_run(&id, &ended)).await
    }

    async fn requeue_interrupted_runs(&self, gone: &Interruption<'_>) -> Result<Requeued> {
        let (ended, node, cause) = owned_interruption(gone);
        self.run(move |s| {
            s.requeue_interrupted_runs(&Interruption {
                ended: &ended,
                node: &node,
                cause: &cause,
            })
        })
        .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<InvocationRecord>> {
        let filter = filter.clone();
        self.run(move |s| s.list_runs(&filter)).await
    }

    async fn run_counts(&self, namespace: &str, since: &str) -> Result<Vec<RunCount>> {
        own!(namespace, since);
        self.run(move |s| s.run_counts(&namespace, &since)).await
    }

    async fn set_callback_status(&self, id: &str, status: &str) -> Result<()> {
        own!(id, status);
        self.run(move |s| s.set_callback_status(&id, &status)).await
    }

    async fn purge_runs(&self, before: &str, keep: u32) -> Result<usize> {
        own!(before);
        self.run(move |s| s.purge_runs(&before, keep)).await
    }

    async fn function_logs(
        &self,
        namespace: &str,
        function: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<FunctionLogs> {
        own!(namespace, function);
        self.run(move |s| s.function_logs(&namespace, &function, after, limit))
            .await
    }
}

#[async_trait]
impl FlowStore for SqliteStore {
    async fn put_flow(
        &self,
        namespace: &str,
        path: &str,
        source: &str,
        now: &str,
    ) -> Result<FlowRecord> {
        own!(namespace, path, source, now);
        self.run(move |s| s.put_flow(&namespace, &path, &source, &now))
            .await
    }

    async fn flow(&self, namespace: &str, path: &str) -> Result<Option<FlowRecord>> {
        own!(namespace, path);
        self.run(move |s| s.flow(&namespace, &path)).await
    }

    async fn list_flows(&self, namespace: &str) -> Result<Vec<FlowRecord>> {
        own!(namespace);
        self.run(move |s| s.list_flows(&namespace)).await
    }

    async fn delete_flow(&self, namespace: &str, path: &str) -> Result<bool> {
        own!(namespace, path);
        self.run(move |s| s.delete_flow(&namespace, &path)).await
    }

    async fn create_instance(&self, new: &NewInstance<'_>) -> Result<()> {
        let new = OwnedInstance::of(new);
        self.run(move |s| s.create_instance(&new.borrow())).await
    }

    async fn set_instance_metadata(
        &self,
        id: &str,
        metadata: &str,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()> {
        own!(id, metadata, now);
        let fence = fence.map(|(node, epoch)| (node.to_owned(), epoch));
        self.run(move |s| {
            let fence = fence.as_ref().map(|(node, epoch)| (node.as_str(), *epoch));
            s.set_instance_metadata(&id, &metadata, &now, fence)
        })
        .await
    }

    async fn save_checkpoint(
        &self,
        id: &str,
        status: &str,
        checkpoint: &str,
        finished: Option<(u64, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<()> {
        own!(id, status, checkpoint, now);
        let finished = finished.map(|(step, state)| (step, state.to_owned()));
        let fence = fence.map(|(node, epoch)| (node.to_owned(), epoch));
        self.run(move |s| {
            let finished = finished
                .as_ref()
                .map(|(step, state)| (*step, state.as_str()));
            let fence = fence.as_ref().map(|(node, epoch)| (node.as_str(), *epoch));
            s.save_checkpoint(&id, &status, &checkpoint, finished, &now, fence)
        })
        .await
    }

    async fn finish_instance(
        &self,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<(&str, &str)>,
        now: &str,
        fence: Fence<'_>,
    ) -> Result<bool> {
        own!(id, status, now);
        own_opt!(output);
        let error = error.map(|(code, message)| (code.to_owned(), message.to_owned()));
        let fence = fence.map(|(node, epoch)| (node.to_owned(), epoch));
        self.run(move |s| {
            let error = error
                .as_ref()
                .map(|(code, message)| (code.as_str(), message.as_str()));
            let fence = fence.as_ref().map(|(node, epoch)| (node.as_str(), *epoch));
            s.finish_instance(&id, &status, output.as_deref(), error, &now, fence)
        })
        .await
    }

    async fn claim_instance(
        &self,
        id: &str,
        node: &str,
        lease_ms: i64,
        want: Claim,
    ) -> Result<Option<i64>> {
        own!(id, node);
        self.run(move |s| s.claim_instance(&id, &node, lease_ms, want))
            .await
    }

    async fn renew_leases(&self, node: &str, lease_ms: i64) -> Result<u64> {
        own!(node);
        self.run(move |s| s.renew_leases(&node, lease_ms)).await
    }

    async fn expired_instances(&self, limit: u32) -> Result<Vec<ExpiredInstance>> {
        self.run(move |s| s.expired_instances(limit)).await
    }

    async fn instances_owned_by(&self, node: &str) -> Result<Vec<String>> {
        own!(node);
        self.run(move |s| s.instances_owned_by(&node)).await
    }

    async fn instance(&self, id: &str) -> Result<Option<FlowInstanceRecord>> {
        own!(id);
        self.run(move |s| s.instance(&id)).await
    }

    async fn list_instances(&self, namespace: &str, limit: u32) -> Result<Vec<FlowInstanceRecord>> {
        own!(namespace);
        self.run(move |s| s.list_instances(&namespace, limit)).await
    }

    async fn start_step(&self, start: &StepStart<'_>) -> Result<()> {
        let (instance, state, started, input) = (
            start.instance.to_string(),
            start.state.to_string(),
            start.started.to_string(),
            start.input.map(str::to_string),
        );
        let (step, truncated) = (start.step, start.truncated);
        self.run(move |s| {
            s.start_step(&StepStart {
                instance: &instance,
                step,
                state: &state,
                started: &started,
                input: input.as_deref(),
                truncated,
            })
        })
        .await
    }

    async fn end_step(&self, instance: &str, end: &StepEnd<'_>) -> Result<()> {
        own!(instance);
        let finished = end.finished.to_string();
        let output = end.output.map(str::to_string);
        let error = end.error.map(|(c, m)| (c.to_string(), m.to_string()));
        let truncated = end.truncated;
        self.run(move |s| {
            s.end_step(
                &instance,
                &StepEnd {
                    finished: &finished,
                    output: output.as_deref(),
                    error: error.as_ref().map(|(c, m)| (c.as_str(), m.as_str())),
                    truncated,
                },
            )
        })
        .await
    }

    async fn instance_steps(&self, instance: &str) -> Result<Vec<StepRecord>> {
        own!(instance);
        self.run(move |s| s.instance_steps(&instance)).await
    }

    async fn instance_counts(&self, namespace: &str) -> Result<Vec<(String, u64)>> {
        own!(namespace);
        self.run(move |s| s.instance_counts(&namespace)).await
    }

    async fn list_instances_by(&self, filter: &InstanceFilter) -> Result<Vec<FlowInstanceRecord>> {
        let filter = filter.clone();
        self.run(move |s| s.list_instances_by(&filter)).await
    }

    async fn instances_with_status(&self, status: &str) -> Result<Vec<FlowInstanceRecord>> {
        own!(status);
        self.run(move |s| s.instances_with_status(&status)).await
    }

    async fn unfinished_instances(&self, namespace: &str) -> Result<Vec<String>> {
        own!(namespace);
        self.run(move |s| s.unfinished_instances(&namespace)).await
    }

    async fn finished_states(&self, id: &str) -> Result<Vec<(u64, String)>> {
        own!(id);
        self.run(move |s| s.finished_states(&id)).await
    }

    async fn append_instance_log(&self, id: &str, ts_ms: i64, message: &str) -> Result<()> {
        own!(id, message);
        self.run(move |s| s.append_instance_log(&id, ts_ms, &message))
            .await
    }

    async fn append_instance_logs(&self, id: &str, lines: &[NewInstanceLog<'_>]) -> Result<()> {
        own!(id);
        let lines: Vec<(i64, String, Option<String>, Option<String>)> = lines
            .iter()
            .map(|l| {
                (
                    l.ts_ms,
                    l.message.to_owned(),
                    l.state.map(str::to_owned),
                    l.invocation.map(str::to_owned),
                )
            })
            .collect();
        self.run(move |s| {
            let lines: Vec<NewInstanceLog<'_>> = lines
                .iter()
                .map(|(ts_ms, message, state, invocation)| NewInstanceLog {
                    ts_ms: *ts_ms,
                    message,
                    state: state.as_deref(),
                    invocation: invocation.as_deref(),
                })
                .collect();
            s.append_instance_logs(&id, &lines)
        })
        .await
    }

    async fn instance_logs(&self, id: &str, after_seq: i64) -> Result<Vec<InstanceLogRecord>> {
        own!(id);
        self.run(move |s| s.instance_logs(&id, after_seq)).await
    }

    async fn record_progress(
        &self,
        id: &str,
        writes: Vec<ProgressWrite>,
        fence: Fence<'_>,
    ) -> Result<bool> {
        own!(id);
        let fence = fence.map(|(node, epoch)| (node.to_owned(), epoch));
        self.run(move |s| {
            let fence = fence.as_ref().map(|(node, epoch)| (node.as_str(), *epoch));
            s.record_progress(&id, &writes, fence)
        })
        .await
    }

    async fn record_instance_call(&self, id: &str, call: &InstanceCallRecord) -> Result<()> {
        own!(id);
        let call = call.clone();
        self.run(move |s| s.record_instance_call(&id, &call)).await
    }

    async fn instance_calls(&self, id: &str) -> Result<Vec<InstanceCallRecord>> {
        own!(id);
        self.run(move |s| s.instance_calls(&id)).await
    }

    async fn variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>> {
        own!(namespace, scope, owner, key);
        self.run(move |s| s.variable(&namespace, &scope, &owner, &key))
            .await
    }

    async fn set_variable(
        &self,
        namespace: &str,
        scope: &str,
        owner: &str,
        key: &str,
        value: Option<&str>,
        now: &str,
    ) -> Result<()> {
        own!(namespace, scope, owner, key, now);
        own_opt!(value);
        self.run(move |s| s.set_variable(&namespace, &scope, &owner, &key, value.as_deref(), &now))
            .await
    }
}

/// A [`NewInstance`] with its own strings.
struct OwnedInstance {
    id: String,
    namespace: String,
    flow: String,
    source: String,
    input: String,
    checkpoint: String,
    parent: Option<String>,
    depth: u32,
    now: String,
    owner: Option<String>,
    lease_ms: i64,
}

impl OwnedInstance {
    fn of(new: &NewInstance<'_>) -> OwnedInstance {
        OwnedInstance {
            id: new.id.to_owned(),
            namespace: new.namespace.to_owned(),
            flow: new.flow.to_owned(),
            source: new.source.to_owned(),
            input: new.input.to_owned(),
            checkpoint: new.checkpoint.to_owned(),
            parent: new.parent.map(str::to_owned),
            depth: new.depth,
            now: new.now.to_owned(),
            owner: new.owner.map(str::to_owned),
            lease_ms: new.lease_ms,
        }
    }

    fn borrow(&self) -> NewInstance<'_> {
        NewInstance {
            id: &self.id,
            namespace: &self.namespace,
            flow: &self.flow,
            source: &self.source,
            input: &self.input,
            checkpoint: &self.checkpoint,
            parent: self.parent.as_deref(),
            depth: self.depth,
            now: &self.now,
            owner: self.owner.as_deref(),
            lease_ms: self.lease_ms,
        }
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_event(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        event_type: &str,
        event: &str,
        received_ms: i64,
    ) -> Result<EventInsert> {
        own!(namespace, id, source, event_type, event);
        self.run(move |s| {
            s.insert_event(&namespace, &id, &source, &event_type, &event, received_ms)
        })
        .await
    }

    async fn undispatched_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        self.run(move |s| s.undispatched_events(limit)).await
    }

    async fn list_events(&self, namespace: &str, limit: usize) -> Result<Vec<StoredEvent>> {
        own!(namespace);
        self.run(move |s| s.list_events(&namespace, limit)).await
    }

    async fn list_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> Result<Option<Vec<StoredEvent>>> {
        own!(namespace);
        self.run(move |s| s.list_events_before(&namespace, before, limit))
            .await
    }

    async fn event_watermark(&self) -> Result<i64> {
        self.run(|s| s.event_watermark()).await
    }

    async fn event_watermark_before(&self, received_ms: i64) -> Result<i64> {
        self.run(move |s| s.event_watermark_before(received_ms))
            .await
    }

    async fn dispatch_event(&self, seq: i64, decide: Decide) -> Result<Vec<Delivery>> {
        self.run(move |s| s.dispatch_event(seq, decide)).await
    }

    async fn add_listener(&self, listener: &Listener, decide: Decide) -> Result<Option<Delivery>> {
        let listener = listener.clone();
        self.run(move |s| s.add_listener(&listener, decide)).await
    }

    async fn replace_start_listeners(
        &self,
        namespace: &str,
        flow: &str,
        listeners: &[Listener],
    ) -> Result<()> {
        own!(namespace, flow, listeners);
        self.run(move |s| s.replace_start_listeners(&namespace, &flow, &listeners))
            .await
    }

    async fn delete_instance_listeners(&self, instance_id: &str) -> Result<usize> {
        own!(instance_id);
        self.run(move |s| s.delete_instance_listeners(&instance_id))
            .await
    }

    async fn wait_listeners(&self) -> Result<Vec<Listener>> {
        self.run(|s| s.wait_listeners()).await
    }

    async fn list_listeners(&self, namespace: &str) -> Result<Vec<ListenerRecord>> {
        own!(namespace);
        self.run(move |s| s.list_listeners(&namespace)).await
    }

    async fn pending_deliveries(&self) -> Result<Vec<Delivery>> {
        self.run(|s| s.pending_deliveries()).await
    }

    async fn finish_delivery(&self, id: i64) -> Result<()> {
        self.run(move |s| s.finish_delivery(id)).await
    }

    async fn claim_deliveries(
        &self,
        node: &str,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        own!(node);
        self.run(move |s| s.claim_deliveries(&node, lease_ms, limit))
            .await
    }

    async fn due_waits(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, i64)>> {
        self.run(move |s| s.due_waits(now_ms, limit)).await
    }

    async fn put_subscription(
        &self,
        subscription: &SubscriptionRecord,
        filters: &str,
        created_ms: i64,
    ) -> Result<bool> {
        let subscription = subscription.clone();
        own!(filters);
        self.run(move |s| s.put_subscription(&subscription, &filters, created_ms))
            .await
    }

    async fn get_subscription(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SubscriptionRecord>> {
        own!(namespace, name);
        self.run(move |s| s.get_subscription(&namespace, &name))
            .await
    }

    async fn list_subscriptions(&self, namespace: &str) -> Result<Vec<SubscriptionRecord>> {
        own!(namespace);
        self.run(move |s| s.list_subscriptions(&namespace)).await
    }

    async fn delete_subscription(&self, namespace: &str, name: &str) -> Result<bool> {
        own!(namespace, name);
        self.run(move |s| s.delete_subscription(&namespace, &name))
            .await
    }

    async fn put_schedule(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        now_ms: i64,
    ) -> Result<()> {
        own!(namespace, flow, cron);
        self.run(move |s| s.put_schedule(&namespace, &flow, &cron, now_ms))
            .await
    }

    async fn delete_schedule(&self, namespace: &str, flow: &str) -> Result<bool> {
        own!(namespace, flow);
        self.run(move |s| s.delete_schedule(&namespace, &flow))
            .await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.run(|s| s.schedules()).await
    }

    async fn claim_schedule_slot(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        slot_ms: i64,
        instance: Option<&NewInstance<'_>>,
    ) -> Result<bool> {
        own!(namespace, flow, cron);
        let instance = instance.map(OwnedInstance::of);
        self.run(move |s| {
            let instance = instance.as_ref().map(OwnedInstance::borrow);
            s.claim_schedule_slot(&namespace, &flow, &cron, slot_ms, instance.as_ref())
        })
        .await
    }

    async fn insert_delayed_event(&self, event: &DelayedEvent) -> Result<()> {
        let event = event.clone();
        self.run(move |s| s.insert_delayed_event(&event)).await
    }

    async fn release_due_events(&self, now_ms: i64) -> Result<usize> {
        self.run(move |s| s.release_due_events(now_ms)).await
    }

    async fn next_delayed_event_due(&self) -> Result<Option<i64>> {
        self.run(|s| s.next_delayed_event_due()).await
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn data_key(&self, namespace: &str) -> Result<Option<DataKeyRecord>> {
        own!(namespace);
        self.run(move |s| s.data_key(&namespace)).await
    }

    async fn insert_data_key(&self, record: &DataKeyRecord) -> Result<DataKeyRecord> {
        let record = record.clone();
        self.run(move |s| s.insert_data_key(&record)).await
    }

    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        self.run(|s| s.list_data_keys()).await
    }

    async fn rewrap_data_keys(&self, now: &str, rewrap: Rewrap) -> Result<usize> {
        own!(now);
        self.run(move |s| s.rewrap_data_keys(&now, rewrap)).await
    }

    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        ciphertext: &[u8],
        now: &str,
    ) -> Result<SecretRecord> {
        own!(namespace, name, ciphertext, now);
        self.run(move |s| s.put_secret(&namespace, &name, &ciphertext, &now))
            .await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRecord>> {
        own!(namespace, name);
        self.run(move |s| s.secret(&namespace, &name)).await
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretEntry>> {
        own!(namespace);
        self.run(move |s| s.list_secrets(&namespace)).await
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool> {
        own!(namespace, name);
        self.run(move |s| s.delete_secret(&namespace, &name)).await
    }

    async fn put_registry(&self, record: &RegistryRecord) -> Result<RegistryRecord> {
        let record = record.clone();
        self.run(move |s| s.put_registry(&record)).await
    }

    async fn registry(&self, namespace: &str, host: &str) -> Result<Option<RegistryRecord>> {
        own!(namespace, host);
        self.run(move |s| s.registry(&namespace, &host)).await
    }

    async fn list_registries(&self, namespace: &str) -> Result<Vec<RegistryRecord>> {
        own!(namespace);
        self.run(move |s| s.list_registries(&namespace)).await
    }

    async fn delete_registry(&self, namespace: &str, host: &str) -> Result<bool> {
        own!(namespace, host);
        self.run(move |s| s.delete_registry(&namespace, &host))
            .await
    }
}

#[async_trait]
impl ServiceStore for SqliteStore {
    async fn put_service(&self, record: &ServiceRecord) -> Result<ServiceRecord> {
        let record = record.clone();
        self.run(move |s| s.put_service(&record)).await
    }

    async fn service(&self, namespace: &str, name: &str) -> Result<Option<ServiceRecord>> {
        own!(namespace, name);
        self.run(move |s| s.service(&namespace, &name)).await
    }

    async fn list_services(&self, namespace: &str) -> Result<Vec<ServiceRecord>> {
        own!(namespace);
        self.run(move |s| s.list_services(&namespace)).await
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<bool> {
        own!(namespace, name);
        self.run(move |s| s.delete_service(&namespace, &name)).await
    }
}

#[async_trait]
impl RouteStore for SqliteStore {
    async fn put_route(&self, record: &RouteRecord) -> Result<RouteRecord> {
        let record = record.clone();
        self.run(move |s| s.put_route(&record)).await
    }

    async fn route(&self, namespace: &str, name: &str) -> Result<Option<RouteRecord>> {
        own!(namespace, name);
        self.run(move |s| s.route(&namespace, &name)).await
    }

    async fn list_routes(&self, namespace: &str) -> Result<Vec<RouteRecord>> {
        own!(namespace);
        self.run(move |s| s.list_routes(&namespace)).await
    }

    async fn all_routes(&self) -> Result<Vec<RouteRecord>> {
        self.run(move |s| s.all_routes()).await
    }

    async fn delete_route(&self, namespace: &str, name: &str) -> Result<bool> {
        own!(namespace, name);
        self.run(move |s| s.delete_route(&namespace, &name)).await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, record: &TokenRecord) -> Result<()> {
        let record = record.clone();
        self.run(move |s| s.insert_token(&record)).await
    }

    async fn insert_first_admin(&self, record: &TokenRecord) -> Result<bool> {
        let record = record.clone();
        self.run(move |s| s.insert_first_admin(&record)).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.run(|s| s.list_tokens()).await
    }

    async fn delete_token(&self, id: &str) -> Result<bool> {
        own!(id);
        self.run(move |s| s.delete_token(&id)).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        own!(hash);
        self.run(move |s| s.token_by_hash(&hash)).await
    }
}

#[async_trait]
impl faasbox_store::ChangeStore for SqliteStore {
    async fn publish_change(&self, kind: &str, key: &str) -> Result<i64> {
        own!(kind, key);
        self.run(move |s| s.publish_change(&kind, &key)).await
    }

    async fn changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<faasbox_store::ChangeRecord>> {
        self.run(move |s| s.changes_after(after, limit)).await
    }

    async fn newest_change(&self) -> Result<i64> {
        self.run(|s| s.newest_change()).await
    }

    async fn purge_changes(&self, before_ms: i64) -> Result<u64> {
        self.run(move |s| s.purge_changes(before_ms)).await
    }
}

#[async_trait]
impl PullFailureStore for SqliteStore {
    async fn record_pull_failure(
        &self,
        owner: &str,
        function: &str,
        message: &str,
        now: &str,
    ) -> Result<()> {
        own!(owner, function, message, now);
        self.run(move |s| s.record_pull_failure(&owner, &function, &message, &now))
            .await
    }

    async fn clear_pull_failure(&self, owner: &str, function: &str) -> Result<()> {
        own!(owner, function);
        self.run(move |s| s.clear_pull_failure(&owner, &function))
            .await
    }

    async fn pull_failures(&self) -> Result<Vec<PullFailure>> {
        self.run(|s| s.pull_failures()).await
    }
}

#[async_trait]
impl faasbox_store::CodeStore for SqliteStore {
    async fn put_code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
        status: &str,
        now: &str,
    ) -> Result<CodeRecord> {
        own!(namespace, name, spec, status, now);
        self.run(move |s| s.put_code(&namespace, kind, &name, &spec, &status, &now))
            .await
    }

    async fn set_code_status(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        status: &CodeStatus<'_>,
        now: &str,
    ) -> Result<bool> {
        own!(namespace, name, now);
        let (state, reason) = (status.status.to_owned(), status.reason.to_owned());
        let digest: Option<String> = status.digest.map(str::to_owned);
        self.run(move |s| {
            let status = CodeStatus {
                status: &state,
                reason: &reason,
                digest: digest.as_deref(),
            };
            s.set_code_status(&namespace, kind, &name, &status, &now)
        })
        .await
    }

    async fn set_code_spec(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
    ) -> Result<bool> {
        own!(namespace, name, spec);
        self.run(move |s| s.set_code_spec(&namespace, kind, &name, &spec))
            .await
    }

    async fn code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
    ) -> Result<Option<CodeRecord>> {
        own!(namespace, name);
        self.run(move |s| s.code(&namespace, kind, &name)).await
    }

    async fn codes(&self, namespace: &str, kind: CodeKind) -> Result<Vec<CodeRecord>> {
        own!(namespace);
        self.run(move |s| s.codes(&namespace, kind)).await
    }

    async fn codes_with_status(&self, statuses: &[&str]) -> Result<Vec<CodeRecord>> {
        let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
        self.run(move |s| {
            let statuses: Vec<&str> = statuses.iter().map(String::as_str).collect();
            s.codes_with_status(&statuses)
        })
        .await
    }

    async fn delete_code(&self, namespace: &str, kind: CodeKind, name: &str) -> Result<bool> {
        own!(namespace, name);
        self.run(move |s| s.delete_code(&namespace, kind, &name))
            .await
    }

    async fn append_build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        lines: &[NewBuildLogLine],
    ) -> Result<()> {
        own!(namespace, name);
        let lines = lines.to_vec();
        self.run(move |s| s.append_build_log(&namespace, kind, &name, &lines))
            .await
    }

    async fn build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<BuildLogLine>> {
        own!(namespace, name);
        self.run(move |s| s.build_log(&namespace, kind, &name, after, limit))
            .await
    }

    async fn build_cache(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        own!(namespace, key);
        self.run(move |s| s.build_cache(&namespace, &key)).await
    }

    async fn put_build_cache(
        &self,
        namespace: &str,
        key: &str,
        digest: &str,
        now: &str,
    ) -> Result<()> {
        own!(namespace, key, digest, now);
        self.run(move |s| s.put_build_cache(&namespace, &key, &digest, &now))
            .await
    }
}

#[async_trait]
impl faasbox_store::ImageCatalogStore for SqliteStore {
    async fn put_image_name(&self, owner: &str, name: &str, digest: &str, now: &str) -> Result<()> {
        own!(owner, name, digest, now);
        self.run(move |s| s.put_image_name(&owner, &name, &digest, &now))
            .await
    }

    async fn delete_image_name(&self, owner: &str, name: &str) -> Result<bool> {
        own!(owner, name);
        self.run(move |s| s.delete_image_name(&owner, &name)).await
    }

    async fn image_name(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<faasbox_store::ImageNameRecord>> {
        own!(owner, name);
        self.run(move |s| s.image_name(&owner, &name)).await
    }

    async fn image_names(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<faasbox_store::ImageNameRecord>> {
        own_opt!(owner);
        self.run(move |s| s.image_names(owner.as_deref())).await
    }
}
