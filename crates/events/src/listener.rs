//! What a listener (an event start of a flow, or an instance waiting in an event state) does
//! with one more event: ignore it, keep it as progress (eventsAnd), or fire.
//!
//! - `One` (`start: event`, `consumeEvent`) and `Xor` (`eventsXor`) fire on the first event
//!   that matches any of their filters.
//! - `And` (`eventsAnd`) keeps one event per filter (the first that matched it) and fires when
//!   every filter has one. With a lifespan, gathered events older than it no longer count. An
//!   event goes to the first filter it matches that has none yet; an event whose filters are
//!   all satisfied already is ignored.

use serde::{Deserialize, Serialize};

use crate::cloudevent::CloudEvent;
use crate::filter::EventFilter;

/// How a listener combines its filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenMode {
    /// One filter (`event` start, `consumeEvent`): fires on the first match.
    One,
    /// Any of the filters (`eventsXor`): fires on the first match of any.
    Xor,
    /// All filters (`eventsAnd`): fires once each has a kept event.
    And,
}

impl ListenMode {
    /// The mode's name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenMode::One => "one",
            ListenMode::Xor => "xor",
            ListenMode::And => "and",
        }
    }

    /// The mode a stored name stands for; `None` for an unknown one.
    pub fn parse(s: &str) -> Option<ListenMode> {
        match s {
            "one" => Some(ListenMode::One),
            "xor" => Some(ListenMode::Xor),
            "and" => Some(ListenMode::And),
            _ => None,
        }
    }
}

/// An event an `And` listener has kept, by the index of the filter it satisfied.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered {
    /// The filter it satisfied.
    pub filter_index: usize,
    /// The event's sequence number in the store.
    pub event_seq: i64,
    /// When the event was received (milliseconds since the Unix epoch).
    pub received_ms: i64,
    /// The event.
    pub event: CloudEvent,
}

/// The event being offered, with where and when it was stored.
#[derive(Debug, Clone, Copy)]
pub struct Offered<'a> {
    /// The event's sequence number in the store.
    pub seq: i64,
    /// When it was received (milliseconds since the Unix epoch).
    pub received_ms: i64,
    /// The event.
    pub event: &'a CloudEvent,
}

/// What the listener does with an offered event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The event matches no filter still waiting for one: nothing changes.
    Ignore,
    /// `And` only: keep this event for the filter at this index; `expired` gathered entries
    /// (by filter index) no longer count and are to be forgotten.
    Keep {
        /// The filter the event satisfied.
        filter_index: usize,
        /// Filter indexes whose gathered events passed the lifespan.
        expired: Vec<usize>,
    },
    /// The listener fires with these events (in filter order for `And`).
    Fire(Vec<CloudEvent>),
}

/// Decides what a listener does with `offered`, given what it gathered so far.
pub fn decide(
    mode: ListenMode,
    filters: &[EventFilter],
    lifespan_ms: Option<i64>,
    gathered: &[Gathered],
    offered: Offered<'_>,
) -> Decision {
    match mode {
        ListenMode::One | ListenMode::Xor => {
            if filters.iter().any(|f| f.matches(offered.event)) {
                Decision::Fire(vec![offered.event.clone()])
            } else {
                Decision::Ignore
            }
        }
        ListenMode::And => decide_and(filters, lifespan_ms, gathered, offered),
    }
}

fn decide_and(
    filters: &[EventFilter],
    lifespan_ms: Option<i64>,
    gathered: &[Gathered],
    offered: Offered<'_>,
) -> Decision {
    let alive =
        |g: &&Gathered| lifespan_ms.is_none_or(|l| g.received_ms + l >= offered.received_ms);
    let live: Vec<&Gathered> = gathered.iter().filter(alive).collect();
    let expired: Vec<usize> = gathered
        .iter()
        .filter(|g| !alive(g))
        .map(|g| g.filter_index)
        .collect();
    let taken = |index: usize| live.iter().any(|g| g.filter_index == index);
    let Some(filter_index) = filters
        .iter()
        .enumerate()
        .find(|(i, f)| !taken(*i) && f.matches(offered.event))
        .map(|(i, _)| i)
    else {
        return Decision::Ignore;
    };
    let complete = (0..filters.len()).all(|i| i == filter_index || taken(i));
    if !complete {
        return Decision::Keep {
            filter_index,
            expired,
        };
    }
    let events = (0..filters.len())
        .map(|i| {
            if i == filter_index {
                offered.event.clone()
            } else {
                live.iter()
                    .find(|g| g.filter_index == i)
                    .map(|g| g.event.clone())
                    .unwrap_or_else(|| offered.event.clone())
            }
        })
        .collect();
    Decision::Fire(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: &str, id: &str) -> CloudEvent {
        CloudEvent::new(id, "/test", t)
    }

    fn offered(event: &CloudEvent, received_ms: i64) -> Offered<'_> {
        Offered {
            seq: 1,
            received_ms,
            event,
        }
    }

    #[test]
    fn one_and_xor_fire_on_the_first_match() {
        let filters = [EventFilter::new("a"), EventFilter::new("b")];
        let b = ev("b", "1");
        assert_eq!(
            decide(ListenMode::Xor, &filters, None, &[], offered(&b, 0)),
            Decision::Fire(vec![b.clone()])
        );
        let c = ev("c", "2");
        assert_eq!(
            decide(ListenMode::One, &filters, None, &[], offered(&c, 0)),
            Decision::Ignore
        );
    }

    #[test]
    fn and_gathers_then_fires_in_filter_order() {
        let filters = [EventFilter::new("a"), EventFilter::new("b")];
        let b = ev("b", "1");
        let first = decide(ListenMode::And, &filters, None, &[], offered(&b, 10));
        assert_eq!(
            first,
            Decision::Keep {
                filter_index: 1,
                expired: vec![]
            }
        );
        let gathered = [Gathered {
            filter_index: 1,
            event_seq: 1,
            received_ms: 10,
            event: b.clone(),
        }];
        // A second b is ignored: its filter is satisfied already.
        let b2 = ev("b", "2");
        assert_eq!(
            decide(ListenMode::And, &filters, None, &gathered, offered(&b2, 20)),
            Decision::Ignore
        );
        let a = ev("a", "3");
        assert_eq!(
            decide(ListenMode::And, &filters, None, &gathered, offered(&a, 30)),
            Decision::Fire(vec![a.clone(), b])
        );
    }

    #[test]
    fn and_forgets_events_older_than_the_lifespan() {
        let filters = [EventFilter::new("a"), EventFilter::new("b")];
        let gathered = [Gathered {
            filter_index: 1,
            event_seq: 1,
            received_ms: 0,
            event: ev("b", "1"),
        }];
        let a = ev("a", "2");
        assert_eq!(
            decide(
                ListenMode::And,
                &filters,
                Some(1000),
                &gathered,
                offered(&a, 5000)
            ),
            Decision::Keep {
                filter_index: 0,
                expired: vec![1]
            }
        );
        assert!(matches!(
            decide(
                ListenMode::And,
                &filters,
                Some(10_000),
                &gathered,
                offered(&a, 5000)
            ),
            Decision::Fire(_)
        ));
    }

    #[test]
    fn and_with_context_filters() {
        let filters = [
            EventFilter::new("a").with("source", "/eu/*"),
            EventFilter::new("a").with("source", "/us/*"),
        ];
        let eu = CloudEvent::new("1", "/eu/1", "a");
        let asia = CloudEvent::new("2", "/asia/1", "a");
        assert_eq!(
            decide(ListenMode::And, &filters, None, &[], offered(&asia, 0)),
            Decision::Ignore
        );
        assert_eq!(
            decide(ListenMode::And, &filters, None, &[], offered(&eu, 0)),
            Decision::Keep {
                filter_index: 0,
                expired: vec![]
            }
        );
    }

    #[test]
    fn modes_round_trip() {
        for mode in [ListenMode::One, ListenMode::Xor, ListenMode::And] {
            assert_eq!(ListenMode::parse(mode.as_str()), Some(mode));
        }
    }
}
