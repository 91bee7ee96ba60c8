//! Flow events and schedules: accepted CloudEvents, event listeners (flow starts and waiting
//! instances) with eventsAnd progress, the outbox of fired listeners, the last fired slot of
//! each cron schedule, and events held back until a time (`generateEvent` with a `delay`).
//!
//! A store knows no event semantics: dispatching an event and registering a listener take a
//! [`Decide`] function (the server passes faasbox-events' logic) and apply its answers in the
//! same transaction, so an event is either fully dispatched (progress kept, deliveries queued,
//! fired waits removed, event marked) or not at all, and is dispatched again after a crash.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::flows::NewInstance;
use crate::Result;

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its place in the store: unique among the events of all namespaces, larger for every
    /// event accepted later, always above 0.
    pub seq: i64,
    /// The namespace it was sent to.
    pub namespace: String,
    /// The CloudEvent's `id`.
    pub id: String,
    /// The CloudEvent's `source`.
    pub source: String,
    /// The CloudEvent's `type`.
    pub event_type: String,
    /// The event in structured-mode JSON.
    pub event: String,
    /// When it was accepted (ms since the epoch).
    pub received_ms: i64,
}

/// The outcome of [`EventStore::insert_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventInsert {
    /// The event is new; its seq.
    New(i64),
    /// An event with this namespace, source and id was accepted before (its seq).
    Duplicate(i64),
}

/// What listens: a flow's event start, an instance waiting in an event state, or an event
/// subscription (a function run for each matching event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// A flow's event start: each time it fires, a new instance starts. It listens on after
    /// firing.
    Start,
    /// An instance waiting in an event state: it fires once, then it is gone.
    Wait,
    /// An event subscription: each matching event fires it (one event each time), and the
    /// delivery runs the subscription's function. Its `flow` is the subscription's name.
    Subscription,
}

impl ListenerKind {
    /// The kind's name: `start`, `wait` or `subscription`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Start => "start",
            ListenerKind::Wait => "wait",
            ListenerKind::Subscription => "subscription",
        }
    }

    /// The kind of a name [`ListenerKind::as_str`] gave (anything else is a start).
    pub fn parse(s: &str) -> ListenerKind {
        match s {
            "wait" => ListenerKind::Wait,
            "subscription" => ListenerKind::Subscription,
            _ => ListenerKind::Start,
        }
    }
}

/// An event listener: what it listens for and what fires when it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Its id (unique; chosen by the server); a second listener with the same id is a backend
    /// error.
    pub id: String,
    /// The namespace whose events it sees.
    pub namespace: String,
    /// A start or a wait.
    pub kind: ListenerKind,
    /// The flow that starts (start) or whose instance waits (wait).
    pub flow: String,
    /// The waiting instance (wait only).
    pub instance_id: Option<String>,
    /// `one`, `xor` or `and`.
    pub mode: String,
    /// The filters as JSON (`[{"type", "context"}]`).
    pub filters: String,
    /// How long an eventsAnd listener keeps a gathered event, if limited (the [`Decide`]
    /// function enforces it).
    pub lifespan_ms: Option<i64>,
    /// When a wait times out (the engine enforces it).
    pub deadline_ms: Option<i64>,
    /// Only events with a larger seq concern this listener.
    pub after_seq: i64,
    /// When it was registered (ms since the epoch); listeners are offered an event in this
    /// order.
    pub created_ms: i64,
}

/// A listener as stored, with the events an eventsAnd listener gathered so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRecord {
    /// The listener as registered.
    #[serde(flatten)]
    pub listener: Listener,
    /// What it gathered, by filter index (at most one event per filter); empty for all but
    /// eventsAnd listeners part way.
    pub gathered: Vec<GatheredRecord>,
}

/// An event an eventsAnd listener keeps for one of its filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatheredRecord {
    /// The filter (an index into the listener's filters) the event matched.
    pub filter_index: i64,
    /// The event's seq.
    pub event_seq: i64,
    /// When the event was accepted (ms since the epoch).
    pub received_ms: i64,
    /// The event in structured-mode JSON.
    pub event: String,
}

/// What a listener does with an event, as the [`Decide`] function answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAction {
    /// The event does not concern the listener: nothing changes.
    Ignore,
    /// Keep the event for this filter; forget what was gathered for `expired` filters.
    Keep {
        /// The filter the event matched; the event replaces what the filter had gathered.
        filter_index: i64,
        /// Filters whose gathered events outlived the listener's lifespan.
        expired: Vec<i64>,
    },
    /// The listener fires: deliver these events (a JSON array) to `instance_id` (the waiting
    /// instance, or the id of the instance a start is to create).
    /// A wait is removed with its progress; a start's progress is cleared and it listens on.
    Fire {
        /// The instance to resume or to create.
        instance_id: String,
        /// The events to deliver, as a JSON array of structured events.
        events: String,
    },
}

/// What a listener does with an event: called inside the store's transaction, once per
/// listener that may see the event. It must not call the store.
pub type Decide = Box<dyn FnMut(&StoredEvent, &ListenerRecord) -> ListenerAction + Send>;

/// A fired listener, waiting for the engine to start or resume its instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its id: unique, larger for every delivery queued later.
    pub id: i64,
    /// The listener's namespace.
    pub namespace: String,
    /// The listener that fired (a wait's is gone by now).
    pub listener_id: String,
    /// The listener's kind: start a new instance or resume a waiting one.
    pub kind: ListenerKind,
    /// The listener's flow.
    pub flow: String,
    /// The instance to resume or to create, as [`ListenerAction::Fire`] gave it.
    pub instance_id: String,
    /// The events as a JSON array of structured events.
    pub events: String,
    /// When the event that fired it was accepted (ms since the epoch).
    pub created_ms: i64,
}

/// A scheduled flow and the slot it fired last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The flow's namespace.
    pub namespace: String,
    /// The flow's path; one schedule per flow.
    pub flow: String,
    /// The cron expression, as deployed.
    pub cron: String,
    /// The last slot claimed (ms since the epoch), or when the schedule was set or changed if
    /// none was claimed since: only later slots fire.
    pub last_fired_ms: i64,
}

/// An event subscription: the function to run for each event of the namespace that has the
/// type and whose attributes match the patterns (`*` is any run of characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// The namespace whose events it sees (and whose function runs).
    pub namespace: String,
    /// Its name, unique in the namespace.
    pub name: String,
    /// The function run for each matching event.
    pub function: String,
    /// The event `type`, matched exactly.
    pub event_type: String,
    /// A pattern the event's `source` must match, if any.
    pub source: Option<String>,
    /// Attribute name → pattern, as a JSON object (`{}` when none); each attribute must
    /// exist and match.
    pub context: String,
    /// Its listener (kind `subscription`, `flow` = the name), replaced on every put.
    pub listener_id: String,
    /// When it was created (RFC 3339; kept when it is replaced).
    pub created: String,
    /// When it was last put (RFC 3339).
    pub modified: String,
}

/// An event to accept at `due_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedEvent {
    /// The namespace it is sent to.
    pub namespace: String,
    /// The CloudEvent's `id`.
    pub id: String,
    /// The CloudEvent's `source`.
    pub source: String,
    /// The CloudEvent's `type`.
    pub event_type: String,
    /// The event in structured-mode JSON.
    pub event: String,
    /// When it is to be accepted (ms since the epoch).
    pub due_ms: i64,
}

/// Events, listeners, deliveries, schedules and delayed events. A namespace's rows of all of
/// these go with the namespace ([`crate::NamespaceStore::delete_namespace`]).
#[async_trait]
pub trait EventStore: Send + Sync {
    // --- events -----------------------------------------------------------------------------

    /// Accepts an event; `NoNamespace` when its namespace does not exist. A second event with
    /// the same namespace, source and id is a duplicate: nothing changes and the first one's
    /// seq is returned. Seqs grow with every accepted event.
    async fn insert_event(
        &self,
        namespace: &str,
        id: &str,
        source: &str,
        event_type: &str,
        event: &str,
        received_ms: i64,
    ) -> Result<EventInsert>;

    /// Up to `limit` events of any namespace not dispatched yet, oldest (by seq) first.
    async fn undispatched_events(&self, limit: usize) -> Result<Vec<StoredEvent>>;

    /// A namespace's latest `limit` events, dispatched or not, newest (by seq) first.
    async fn list_events(&self, namespace: &str, limit: usize) -> Result<Vec<StoredEvent>>;

    /// The next page of [`Self::list_events`]: the latest `limit` events of a namespace
    /// accepted before the event with seq `before`; `None` when that is not an event of the
    /// namespace.
    async fn list_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> Result<Option<Vec<StoredEvent>>>;

    /// The seq of the newest accepted event (0 when none): a listener registered with it as
    /// `after_seq` sees every event accepted from now on.
    async fn event_watermark(&self) -> Result<i64>;

    /// The seq of the newest event accepted before `received_ms` (0 when none).
    async fn event_watermark_before(&self, received_ms: i64) -> Result<i64>;

    /// Dispatches one event to its namespace's listeners (those whose `after_seq` is below the
    /// event's seq, by `created_ms`, then id) in one transaction: `decide` answers for each,
    /// its answer is applied (see [`ListenerAction`]) before the next listener is asked; then
    /// the event is marked dispatched. Returns the deliveries queued, in the order of the
    /// listeners. An event already dispatched (or gone) gives none and changes nothing. If
    /// anything fails, nothing changes and the event stays undispatched.
    async fn dispatch_event(&self, seq: i64, decide: Decide) -> Result<Vec<Delivery>>;

    /// Adds a listener (`NoNamespace` when its namespace does not exist), in one transaction
    /// with this: events of its namespace accepted after `after_seq` and dispatched already
    /// (they arrived while the listener was being set up) are offered to it at once, oldest
    /// first, through `decide` (each time with its progress so far); the delivery is queued
    /// and returned if it fired (a wait stops at its first; a start may fire more than once,
    /// and its last delivery is returned). Events not dispatched yet are left to
    /// [`EventStore::dispatch_event`].
    async fn add_listener(&self, listener: &Listener, decide: Decide) -> Result<Option<Delivery>>;

    /// Replaces a flow's event-start listeners (on deploy; none to remove them), in one
    /// transaction: the flow's starts go with their progress, the given ones are added
    /// (`NoNamespace` when a listener's namespace does not exist; then nothing changes). The
    /// flow's waits stay.
    async fn replace_start_listeners(
        &self,
        namespace: &str,
        flow: &str,
        listeners: &[Listener],
    ) -> Result<()>;

    /// Removes an instance's waits with their progress (it was cancelled, timed out or moved
    /// on); how many.
    async fn delete_instance_listeners(&self, instance_id: &str) -> Result<usize>;

    /// Every stored instance wait of every namespace, by `created_ms`, then id (the server
    /// arms their deadlines at start).
    async fn wait_listeners(&self) -> Result<Vec<Listener>>;

    /// All listeners of a namespace (starts and waits), with their progress, by `created_ms`,
    /// then id.
    async fn list_listeners(&self, namespace: &str) -> Result<Vec<ListenerRecord>>;

    /// Deliveries of every namespace not finished yet, oldest (by id) first. A delivery stays
    /// until [`EventStore::finish_delivery`], so one the engine had not acted on before a crash
    /// is found again at start.
    async fn pending_deliveries(&self) -> Result<Vec<Delivery>>;

    /// The engine started or resumed the delivery's instance: the delivery is removed. An
    /// unknown id is no error.
    async fn finish_delivery(&self, id: i64) -> Result<()>;

    /// Claims for `node` up to `limit` deliveries nobody else holds (never claimed, claimed by
    /// `node` itself: a restarted server's, or one it handed over in vain, or whose claim
    /// expired: its server died before finishing it), oldest (by id) first, each for
    /// `lease_ms` from now (by the database's clock). Of several servers claiming at once,
    /// each delivery goes to one. A claimed delivery stays until [`EventStore::finish_delivery`].
    async fn claim_deliveries(
        &self,
        node: &str,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>>;

    /// The waits (listeners of kind `wait`) whose deadline is at or before `now_ms`, earliest
    /// first, at most `limit`: (instance id, deadline in ms since the epoch). Every server
    /// polls them so a wait's timeout fires even when the server that saved the wait is gone;
    /// [`EventStore::delete_instance_listeners`] decides which one fires it.
    async fn due_waits(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, i64)>>;

    // --- subscriptions ----------------------------------------------------------------------

    /// Creates or replaces a subscription (`NoNamespace` when its namespace does not exist)
    /// with its listener, in one transaction: a replaced one's listener goes (its pending
    /// deliveries stay and run the subscription as it is now), the new listener (id
    /// `subscription.listener_id`, mode `one`, `filters` as JSON) sees every event accepted
    /// after this (its `after_seq` is the newest seq at that moment). A replaced one keeps
    /// its `created`. True when it was created.
    async fn put_subscription(
        &self,
        subscription: &SubscriptionRecord,
        filters: &str,
        created_ms: i64,
    ) -> Result<bool>;

    /// A namespace's subscription by name.
    async fn get_subscription(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SubscriptionRecord>>;

    /// A namespace's subscriptions by name.
    async fn list_subscriptions(&self, namespace: &str) -> Result<Vec<SubscriptionRecord>>;

    /// Removes a subscription with its listener and its deliveries not handed over yet (no
    /// event runs its function from now on); whether it existed.
    async fn delete_subscription(&self, namespace: &str, name: &str) -> Result<bool>;

    // --- schedules --------------------------------------------------------------------------

    /// Sets a flow's cron schedule (`NoNamespace` when the namespace does not exist). A new or
    /// changed schedule counts from `now_ms`: slots before it never fire. An unchanged one
    /// keeps its last fired slot.
    async fn put_schedule(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        now_ms: i64,
    ) -> Result<()>;

    /// Removes a flow's schedule; whether it had one.
    async fn delete_schedule(&self, namespace: &str, flow: &str) -> Result<bool>;

    /// Every schedule, ordered by namespace, then flow.
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>>;

    /// Claims a slot for firing: true once per slot, false if this or a later slot was
    /// claimed already (or the schedule was set after it), or the schedule is gone or its cron
    /// is no longer `cron`. `instance`, the slot's instance, is
    /// created in the same transaction (as `running`, so the start-up resume drives it if the
    /// server dies before the caller does): a claimed slot always has its instance. `None`
    /// only claims (the flow cannot run, and the slot is skipped).
    async fn claim_schedule_slot(
        &self,
        namespace: &str,
        flow: &str,
        cron: &str,
        slot_ms: i64,
        instance: Option<&NewInstance<'_>>,
    ) -> Result<bool>;

    // --- delayed events ---------------------------------------------------------------------

    /// Holds an event until its `due_ms` (`NoNamespace` when the namespace does not exist).
    /// Held events are not checked for duplicates until they are released.
    async fn insert_delayed_event(&self, event: &DelayedEvent) -> Result<()>;

    /// Accepts every held event due at `now_ms` (received then, so waits that began before
    /// it count it), in one transaction, in order of `due_ms`, then of holding; how many became
    /// new events. A held event that duplicates an accepted one (same namespace, source and
    /// id) is dropped and not counted. Released events are no longer held.
    async fn release_due_events(&self, now_ms: i64) -> Result<usize>;

    /// When the next held event of any namespace is due (ms since the epoch), if any is held.
    async fn next_delayed_event_due(&self) -> Result<Option<i64>>;
}
