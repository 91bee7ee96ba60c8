//! The database schema and its migrations, applied in order on open.

use rusqlite::Connection;

use faasbox_store::StoreError;

use crate::Sql;

/// The newest schema this build writes: one version per migration.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const MIGRATIONS: &[&str] = &[
    // 1: namespaces, functions, invocations, logs.
    "CREATE TABLE namespaces (
         name TEXT PRIMARY KEY,
         created TEXT NOT NULL
     );
     CREATE TABLE functions (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         spec TEXT NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );
     CREATE TABLE invocations (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL,
         function TEXT NOT NULL,
         status TEXT NOT NULL,
         started TEXT NOT NULL,
         ended TEXT,
         error_code TEXT,
         error_message TEXT
     );
     CREATE INDEX invocations_by_namespace ON invocations (namespace, started);
     CREATE TABLE invocation_logs (
         invocation_id TEXT NOT NULL,
         seq INTEGER NOT NULL,
         ts_ms INTEGER NOT NULL,
         stream TEXT NOT NULL,
         line TEXT NOT NULL,
         PRIMARY KEY (invocation_id, seq)
     );",
    // 2: secrets and registry credentials. The store keeps only blobs: values and passwords are
    // encrypted by faasbox-secrets before they get here. `data_keys.namespace` and
    // `registries.namespace` also hold the pseudo-namespaces of global scopes, which start with
    // '*' (real namespace names cannot), so these two tables have no foreign key.
    "CREATE TABLE data_keys (
         namespace TEXT PRIMARY KEY,
         key_id TEXT NOT NULL,
         wrapped BLOB NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL
     );
     CREATE TABLE secrets (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         ciphertext BLOB NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );
     CREATE TABLE registries (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL,
         url TEXT NOT NULL,
         host TEXT NOT NULL,
         username TEXT NOT NULL,
         ciphertext BLOB NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         UNIQUE (namespace, host)
     );",
    // 3: API tokens, stored as the SHA-256 of the token (never the token). `namespace` is NULL
    // for server-wide admin tokens; a namespace's tokens go with it. Global services: functions
    // an admin deploys once for every namespace.
    "CREATE TABLE tokens (
         id TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         namespace TEXT REFERENCES namespaces(name) ON DELETE CASCADE,
         role TEXT NOT NULL,
         hash TEXT NOT NULL UNIQUE,
         created TEXT NOT NULL
     );
     CREATE TABLE global_functions (
         name TEXT PRIMARY KEY,
         spec TEXT NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL
     );",
    // 4: workflows: flow sources, instances with their checkpoint (saved state by state),
    // the states each finished, instance logs, and variables of three scopes.
    "CREATE TABLE flows (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         path TEXT NOT NULL,
         source TEXT NOT NULL,
         created TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, path)
     );
     CREATE TABLE flow_instances (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL,
         flow TEXT NOT NULL,
         source TEXT NOT NULL,
         status TEXT NOT NULL,
         input TEXT NOT NULL,
         output TEXT,
         error_code TEXT,
         error_message TEXT,
         checkpoint TEXT NOT NULL,
         parent TEXT,
         created TEXT NOT NULL,
         updated TEXT NOT NULL
     );
     CREATE INDEX flow_instances_by_namespace ON flow_instances (namespace, created);
     CREATE INDEX flow_instances_by_status ON flow_instances (status);
     CREATE TABLE flow_instance_states (
         instance TEXT NOT NULL,
         step INTEGER NOT NULL,
         state TEXT NOT NULL,
         finished TEXT NOT NULL,
         PRIMARY KEY (instance, step)
     );
     CREATE TABLE flow_instance_logs (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         instance TEXT NOT NULL,
         ts_ms INTEGER NOT NULL,
         message TEXT NOT NULL
     );
     CREATE INDEX flow_instance_logs_by_instance ON flow_instance_logs (instance, seq);
     CREATE TABLE flow_variables (
         namespace TEXT NOT NULL,
         scope TEXT NOT NULL,
         owner TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (namespace, scope, owner, key)
     );",
    // 5: events and schedules of flows. `events` keeps every accepted CloudEvent (its
    // structured JSON) until dispatched and after, so a wait registered late still sees what
    // arrived while it was being set up; `(namespace, source, id)` makes a resent event a
    // duplicate. `event_listeners` are flow event starts ('start') and instances waiting in an
    // event state ('wait'); `event_gathered` is an eventsAnd listener's partial progress;
    // `event_deliveries` is the outbox of listeners that fired, consumed by the engine.
    // `schedules` remembers the cron slot last fired per scheduled flow.
    "CREATE TABLE events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         id TEXT NOT NULL,
         source TEXT NOT NULL,
         type TEXT NOT NULL,
         event TEXT NOT NULL,
         received_ms INTEGER NOT NULL,
         dispatched INTEGER NOT NULL DEFAULT 0,
         UNIQUE (namespace, source, id)
     );
     CREATE INDEX events_undispatched ON events (dispatched, seq);
     CREATE INDEX events_by_namespace ON events (namespace, seq);
     CREATE TABLE event_listeners (
         id TEXT PRIMARY KEY,
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         kind TEXT NOT NULL,
         flow TEXT NOT NULL,
         instance_id TEXT,
         mode TEXT NOT NULL,
         filters TEXT NOT NULL,
         lifespan_ms INTEGER,
         deadline_ms INTEGER,
         after_seq INTEGER NOT NULL,
         created_ms INTEGER NOT NULL
     );
     CREATE INDEX event_listeners_by_namespace ON event_listeners (namespace);
     CREATE INDEX event_listeners_by_instance ON event_listeners (instance_id);
     CREATE TABLE event_gathered (
         listener_id TEXT NOT NULL REFERENCES event_listeners(id) ON DELETE CASCADE,
         filter_index INTEGER NOT NULL,
         event_seq INTEGER NOT NULL,
         received_ms INTEGER NOT NULL,
         PRIMARY KEY (listener_id, filter_index)
     );
     CREATE TABLE event_deliveries (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         listener_id TEXT NOT NULL,
         kind TEXT NOT NULL,
         flow TEXT NOT NULL,
         instance_id TEXT NOT NULL,
         events TEXT NOT NULL,
         created_ms INTEGER NOT NULL
     );
     CREATE TABLE schedules (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         flow TEXT NOT NULL,
         cron TEXT NOT NULL,
         last_fired_ms INTEGER NOT NULL,
         PRIMARY KEY (namespace, flow)
     );",
    // 6: events a flow generated with a `delay`, held until `due_ms`; then they move into
    // `events` (as if received then) in one transaction.
    "CREATE TABLE delayed_events (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         event_id TEXT NOT NULL,
         source TEXT NOT NULL,
         type TEXT NOT NULL,
         event TEXT NOT NULL,
         due_ms INTEGER NOT NULL
     );
     CREATE INDEX delayed_events_by_due ON delayed_events (due_ms);",
    // 7: why a function's image could not be pulled, kept across restarts. `owner` is the
    // namespace or `*global`; rows go with the namespace (see `delete_namespace`).
    "CREATE TABLE image_pull_failures (
         owner TEXT NOT NULL,
         function TEXT NOT NULL,
         message TEXT NOT NULL,
         failed TEXT NOT NULL,
         PRIMARY KEY (owner, function)
     );",
    // 8: what a workflow state's `metadata` last set on its instance.
    "ALTER TABLE flow_instances ADD COLUMN metadata TEXT;",
    // 9: revisions of functions and global services (`owner` is the namespace or `*global`):
    // each deploy or update stores the whole spec, the image's pinned manifest digest (NULL
    // until the image is local) and the table its name was found in (`image_namespace`,
    // NULL: server-wide), the pull policy, when and by which token. `revision` on the
    // function rows is the current one (NULL for rows from before: the server gives them
    // revision 1 at its next start).
    "CREATE TABLE function_revisions (
         owner TEXT NOT NULL,
         function TEXT NOT NULL,
         revision INTEGER NOT NULL,
         spec TEXT NOT NULL,
         digest TEXT,
         image_namespace TEXT,
         pull TEXT NOT NULL,
         created TEXT NOT NULL,
         created_by TEXT NOT NULL,
         PRIMARY KEY (owner, function, revision)
     );
     CREATE INDEX function_revisions_by_digest ON function_revisions (digest);
     ALTER TABLE functions ADD COLUMN revision INTEGER;
     ALTER TABLE global_functions ADD COLUMN revision INTEGER;",
    // 10: a function's newest calls, for its recent logs (`Store::function_logs`).
    "CREATE INDEX invocations_by_function ON invocations (namespace, function, started);",
    // 11: what an instance's actions called: each call (`kind` 'invocation': a function's
    // invocation record; 'instance': a subflow's instance) with the state that made it, and
    // log lines attributed to a state and an invocation (the function's own lines).
    "ALTER TABLE flow_instance_logs ADD COLUMN state TEXT;
     ALTER TABLE flow_instance_logs ADD COLUMN invocation TEXT;
     CREATE TABLE flow_instance_calls (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         instance TEXT NOT NULL,
         call_id TEXT NOT NULL,
         kind TEXT NOT NULL,
         state TEXT NOT NULL,
         function TEXT NOT NULL,
         started TEXT NOT NULL
     );
     CREATE INDEX flow_instance_calls_by_instance ON flow_instance_calls (instance, seq);",
    // 12: how many subflow calls deep an instance runs (bounds recursion, async actions too).
    "ALTER TABLE flow_instances ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;",
    // 13: functions from code: base images, image builds and code functions (`kind`), their
    // build logs (bounded: `log_lines`/`log_bytes` count what is kept, see faasbox_store::code)
    // and the build cache. All go with their namespace.
    "CREATE TABLE code_records (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         spec TEXT NOT NULL,
         status TEXT NOT NULL,
         reason TEXT NOT NULL DEFAULT '',
         digest TEXT,
         created TEXT NOT NULL,
         modified TEXT NOT NULL,
         log_lines INTEGER NOT NULL DEFAULT 0,
         log_bytes INTEGER NOT NULL DEFAULT 0,
         log_cut INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (namespace, kind, name)
     );
     CREATE INDEX code_records_by_status ON code_records (status);
     CREATE TABLE code_build_logs (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         seq INTEGER NOT NULL,
         time TEXT NOT NULL,
         stream TEXT NOT NULL,
         text TEXT NOT NULL,
         PRIMARY KEY (namespace, kind, name, seq)
     );
     CREATE TABLE code_build_cache (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         key TEXT NOT NULL,
         digest TEXT NOT NULL,
         created TEXT NOT NULL,
         PRIMARY KEY (namespace, key)
     );",
    // 14: runs (issue 15): every call's record keeps its mode, input, output, error class,
    // causing event or HTTP request, cold start and phases, attempts and callback.
    // `started` stays the column runs are sorted by and now holds when a run was accepted;
    // `began` is when it started (NULL while queued). Old rows started when accepted.
    "ALTER TABLE invocations ADD COLUMN began TEXT;
     UPDATE invocations SET began = started;
     ALTER TABLE invocations ADD COLUMN mode TEXT NOT NULL DEFAULT 'sync';
     ALTER TABLE invocations ADD COLUMN revision INTEGER;
     ALTER TABLE invocations ADD COLUMN input TEXT;
     ALTER TABLE invocations ADD COLUMN output TEXT;
     ALTER TABLE invocations ADD COLUMN error_type TEXT;
     ALTER TABLE invocations ADD COLUMN event TEXT;
     ALTER TABLE invocations ADD COLUMN http_context TEXT;
     ALTER TABLE invocations ADD COLUMN cold_start INTEGER;
     ALTER TABLE invocations ADD COLUMN wait_ms INTEGER;
     ALTER TABLE invocations ADD COLUMN init_ms INTEGER;
     ALTER TABLE invocations ADD COLUMN run_ms INTEGER;
     ALTER TABLE invocations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE invocations ADD COLUMN callback_url TEXT;
     ALTER TABLE invocations ADD COLUMN callback_status TEXT;
     ALTER TABLE invocations ADD COLUMN secrets TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE invocations ADD COLUMN services TEXT NOT NULL DEFAULT '[]';
     CREATE INDEX invocations_by_status ON invocations (status, started);",
    // 15 (issue 15, services): a namespace's service instances, their plain parameters as a
    // JSON object, each secret parameter encrypted apart.
    "CREATE TABLE services (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         params TEXT NOT NULL,
         created TEXT NOT NULL,
         modified TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );
     CREATE TABLE service_secret_params (
         namespace TEXT NOT NULL,
         service TEXT NOT NULL,
         key TEXT NOT NULL,
         ciphertext BLOB NOT NULL,
         PRIMARY KEY (namespace, service, key),
         FOREIGN KEY (namespace, service) REFERENCES services(namespace, name) ON DELETE CASCADE
     );",
    // 16: event subscriptions (issue 15): a function run for each matching event of the
    // namespace. Each has a listener in `event_listeners` (kind 'subscription', `flow` = the
    // subscription's name, id `listener_id`); `context` is JSON (attribute → pattern).
    "CREATE TABLE subscriptions (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         function TEXT NOT NULL,
         type TEXT NOT NULL,
         source TEXT,
         context TEXT NOT NULL,
         listener_id TEXT NOT NULL,
         created TEXT NOT NULL,
         modified TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );",
    // 17: HTTP routes (issue 16): a namespace's public URLs for its functions and flows; `spec`
    // is the route's JSON (credentials in it hashed).
    "CREATE TABLE routes (
         namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         spec TEXT NOT NULL,
         created TEXT NOT NULL,
         modified TEXT NOT NULL,
         PRIMARY KEY (namespace, name)
     );",
    // 18: an instance's timeline (issue 17): each state it ran, when it started and ended,
    // its input and output (JSON, masked, null past 64 KiB with `truncated`) or its error.
    "CREATE TABLE flow_instance_steps (
         instance TEXT NOT NULL,
         step INTEGER NOT NULL,
         state TEXT NOT NULL,
         started TEXT NOT NULL,
         finished TEXT,
         input TEXT,
         output TEXT,
         error_code TEXT,
         error_message TEXT,
         truncated INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (instance, step)
     );",
    // 19 (issue 19): the servers sharing the store (heartbeats by the database's clock, in ms),
    // and the node each call or run ran on (NULL: recorded before nodes, or not running).
    "CREATE TABLE nodes (
         id TEXT PRIMARY KEY,
         addr TEXT NOT NULL,
         version TEXT NOT NULL,
         started TEXT NOT NULL,
         heartbeat_ms INTEGER NOT NULL,
         state TEXT NOT NULL,
         taken_by TEXT,
         capacity TEXT NOT NULL DEFAULT '{}',
         instances INTEGER NOT NULL DEFAULT 0,
         runs INTEGER NOT NULL DEFAULT 0
     );
     ALTER TABLE invocations ADD COLUMN node TEXT;",
    // 20 (issue 19): who drives a flow instance (several servers on one database): the
    // owner node's id, its lease (ms since the epoch, by the database's clock; NULL while the
    // instance waits or has ended) and the epoch, moved on by each claim, that fences the
    // owner's writes; the server that claimed an event delivery and until when (its lease),
    // so that two servers do not both act on one. One SQLite server is always the owner; the
    // columns keep the semantics of both backends alike.
    "ALTER TABLE flow_instances ADD COLUMN owner TEXT;
     ALTER TABLE flow_instances ADD COLUMN lease_until_ms INTEGER;
     ALTER TABLE flow_instances ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX flow_instances_by_owner ON flow_instances (owner, status);
     ALTER TABLE event_deliveries ADD COLUMN claimed_by TEXT;
     ALTER TABLE event_deliveries ADD COLUMN claimed_until_ms INTEGER;",
    // 21 (issue 19): the changes feed: what a server changed that the others keep in
    // memory; `seq` in the order the changes were written (one writer here).
    "CREATE TABLE changes (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         kind TEXT NOT NULL,
         key TEXT NOT NULL,
         at_ms INTEGER NOT NULL
     );",
    // 22 (issue 19): the web UI's sign-in sessions, shared by the servers of a store and kept
    // across restarts; keyed by the SHA-256 of the session id.
    "CREATE TABLE ui_sessions (
         key TEXT PRIMARY KEY,
         token_hash TEXT NOT NULL,
         token_name TEXT NOT NULL,
         csrf TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         last_used_ms INTEGER NOT NULL,
         expires TEXT NOT NULL
     );
     CREATE INDEX ui_sessions_by_token ON ui_sessions (token_hash, created_ms);
     CREATE INDEX ui_sessions_by_age ON ui_sessions (created_ms);",
    // 23 (issue 19): the cluster's image catalog: which manifest digest each scope's image
    // name points to (`owner` is the namespace or `*global`); with a cluster registry the
    // servers' local image stores follow it. Rows go with the namespace.
    "CREATE TABLE image_names (
         owner TEXT NOT NULL,
         name TEXT NOT NULL,
         digest TEXT NOT NULL,
         updated TEXT NOT NULL,
         PRIMARY KEY (owner, name)
     );",
];

pub(crate) fn migrate(conn: &Connection) -> Sql<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        }
        .into());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))?;
    }
    Ok(())
}
