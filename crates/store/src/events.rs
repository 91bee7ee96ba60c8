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
    pub seq: i64,
    pub namespace: String,
    pub id: String,
    pub source: String,
    pub event_type: String,
    /// The event in structured-mode JSON.
    pub event: String,
    pub received_ms: i64,
}

/// The outcome of [`EventStore::insert_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventInsert {
    New(i64),
    /// An event with this namespace, source and id was accepted before (its seq).
    Duplicate(i64),
}

/// What listens: a flow's event start, or an instance waiting in an event state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    Start,
    Wait,
}

impl ListenerKind {
    /// The kind's name: `start` or `wait`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Start => "start",
            ListenerKind::Wait => "wait",
        }
    }

    /// The kind of a name [`ListenerKind::as_str`] gave (anything but `wait` is a start).
    pub fn parse(s: &str) -> ListenerKind {
        if s == "wait" {
            ListenerKind::Wait
        } else {
            ListenerKind::Start
        }
    }
}

/// An event listener: what it listens for and what fires when it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub id: String,
    pub namespace: String,
    pub kind: ListenerKind,
    /// The flow that starts (start) or whose instance waits (wait).
    pub flow: String,
    /// The waiting instance (wait only).
    pub instance_id: Option<String>,
    /// `one`, `xor` or `and`.
    pub mode: String,
    /// The filters as JSON (`[{"type", "context"}]`).
    pub filters: String,
    pub lifespan_ms: Option<i64>,
    /// When a wait times out (the engine enforces it).
    pub deadline_ms: Option<i64>,
    /// Only events with a larger seq concern this listener.
    pub after_seq: i64,
    pub created_ms: i64,
}

/// A listener as stored, with the events an eventsAnd listener gathered so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRecord {
    #[serde(flatten)]
    pub listener: Listener,
    pub gathered: Vec<GatheredRecord>,
}

/// An event an eventsAnd listener keeps for one of its filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatheredRecord {
    pub filter_index: i64,
    pub event_seq: i64,
    pub received_ms: i64,
    pub event: String,
}

/// What a listener does with an event, as the [`Decide`] function answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAction {
    Ignore,
    /// Keep the event for this filter; forget what was gathered for `expired` filters.
    Keep {
        filter_index: i64,
        expired: Vec<i64>,
    },
    /// The listener fires: deliver these events (a JSON array) to `instance_id` (the waiting
    /// instance, or the id of the instance a start is to create).
    Fire {
        instance_id: String,
        events: String,
    },
}

/// What a listener does with an event: called inside the store's transaction, once per
/// listener that may see the event. It must not call the store.
pub type Decide = Box<dyn FnMut(&StoredEvent, &ListenerRecord) -> ListenerAction + Send>;

/// A fired listener, waiting for the engine to start or resume its instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub namespace: String,
    pub listener_id: String,
    pub kind: ListenerKind,
    pub flow: String,
    pub instance_id: String,
    /// The events as a JSON array of structured events.
    pub events: String,
    pub created_ms: i64,
}

/// A scheduled flow and the slot it fired last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub namespace: String,
    pub flow: String,
    pub cron: String,
    pub last_fired_ms: i64,
}

/// An event to accept at `due_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedEvent {
    pub namespace: String,
    pub id: String,
    pub source: String,
    pub event_type: String,
    /// The event in structured-mode JSON.
    pub event: String,
    pub due_ms: i64,
}

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

    /// Events not dispatched yet, oldest first.
    async fn undispatched_events(&self, limit: usize) -> Result<Vec<StoredEvent>>;

    /// A namespace's latest events, newest first.
    async fn list_events(&self, namespace: &str, limit: usize) -> Result<Vec<StoredEvent>>;

    /// The seq of the newest accepted event (0 when none): a listener registered with it as
    /// `after_seq` sees every event accepted from now on.
    async fn event_watermark(&self) -> Result<i64>;

    /// The seq of the newest event accepted before `received_ms` (0 when none).
    async fn event_watermark_before(&self, received_ms: i64) -> Result<i64>;

    /// Dispatches one event to its namespace's listeners (those registered after an earlier
    /// seq, in order of creation) in one transaction: `decide` answers for each; then the event
    /// is marked dispatched. Returns the deliveries queued. An event already dispatched (or
    /// gone) gives none.
    async fn dispatch_event(&self, seq: i64, decide: Decide) -> Result<Vec<Delivery>>;

    /// Adds a listener (`NoNamespace` when its namespace does not exist), in one transaction
    /// with this: events of its namespace accepted after `after_seq` and dispatched already
    /// (they arrived while the listener was being set up) are offered to it at once, oldest
    /// first, through `decide`; the delivery is returned if it fired (a wait stops at its
    /// first).
    async fn add_listener(&self, listener: &Listener, decide: Decide) -> Result<Option<Delivery>>;

    /// Replaces a flow's event-start listeners (on deploy; none to remove them), in one
    /// transaction.
    async fn replace_start_listeners(
        &self,
        namespace: &str,
        flow: &str,
        listeners: &[Listener],
    ) -> Result<()>;

    /// Removes an instance's waits (it was cancelled, timed out or moved on); how many.
    async fn delete_instance_listeners(&self, instance_id: &str) -> Result<usize>;

    /// Every stored instance wait.
    async fn wait_listeners(&self) -> Result<Vec<Listener>>;

    /// All listeners of a namespace (starts and waits), with their progress.
    async fn list_listeners(&self, namespace: &str) -> Result<Vec<ListenerRecord>>;

    /// Deliveries not taken yet, oldest first.
    async fn pending_deliveries(&self) -> Result<Vec<Delivery>>;

    /// The engine started or resumed the delivery's instance.
    async fn finish_delivery(&self, id: i64) -> Result<()>;

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

    /// Every schedule, by namespace and flow.
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>>;

    /// Claims a slot for firing: true once per slot, false if this or a later slot was
    /// claimed already or the schedule is gone or changed. `instance`, the slot's instance, is
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
    async fn insert_delayed_event(&self, event: &DelayedEvent) -> Result<()>;

    /// Accepts every held event due at `now_ms` (received then, so waits that began before
    /// it count it), in one transaction; how many became new events.
    async fn release_due_events(&self, now_ms: i64) -> Result<usize>;

    /// When the next held event is due (ms since the epoch), if any is held.
    async fn next_delayed_event_due(&self) -> Result<Option<i64>>;
}
