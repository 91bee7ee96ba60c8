//! Events and schedules for faasbox flows: CloudEvents 1.0 read from HTTP requests
//! ([`from_http`]), Direktiv event filters ([`EventFilter`]), what an event start or a waiting
//! event state does with one more event ([`decide`]), and cron schedules ([`CronSchedule`]).
//!
//! Everything here is pure: the store persists events and listeners, the server dispatches.

mod cloudevent;
mod error;
mod filter;
mod http;
mod listener;
mod schedule;

pub use cloudevent::{is_json_content_type, AttributeValue, CloudEvent, EventData, SPEC_VERSION};
pub use error::{EventError, ScheduleError};
pub use filter::{glob_matches, EventFilter};
pub use http::from_http;
pub use listener::{decide, Decision, Gathered, ListenMode, Offered};
pub use schedule::CronSchedule;
