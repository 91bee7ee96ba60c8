//! Direktiv event filters: an exact event `type` plus `context` patterns.
//!
//! As in Direktiv, every context entry must match: the attribute of that name must exist on the
//! event and its value (as text) must match the pattern, where `*` stands for any run of
//! characters (also none) and every other character stands for itself. Direktiv looks the name
//! up among the extension attributes and `source`; faasbox also accepts the other standard
//! context attributes (`id`, `subject`, `time`, `dataschema`, `datacontenttype`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cloudevent::CloudEvent;

/// What one `event` / `events[]` entry of a flow listens for, context values already
/// evaluated (`jq(…)` in a `consumeEvent` context is the engine's job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// The event `type`, matched exactly.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Attribute name → pattern (`*` is any run of characters); each attribute must exist.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

impl EventFilter {
    /// A filter on the type alone.
    pub fn new(event_type: &str) -> EventFilter {
        EventFilter {
            event_type: event_type.to_string(),
            context: BTreeMap::new(),
        }
    }

    /// Adds a context pattern.
    pub fn with(mut self, attribute: &str, pattern: &str) -> EventFilter {
        self.context
            .insert(attribute.to_string(), pattern.to_string());
        self
    }

    /// Whether the event has the type and every context attribute matches its pattern.
    pub fn matches(&self, event: &CloudEvent) -> bool {
        event.event_type == self.event_type
            && self.context.iter().all(|(name, pattern)| {
                event
                    .attribute(name)
                    .is_some_and(|value| glob_matches(pattern, &value))
            })
    }
}

/// `*` matches any run of characters, everything else matches itself.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        // No `*` at all: the whole value must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudevent::AttributeValue;

    #[test]
    fn glob() {
        assert!(glob_matches("abc", "abc"));
        assert!(!glob_matches("abc", "abcd"));
        assert!(!glob_matches("abc", "ab"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches(
            "https://github.com/*",
            "https://github.com/a/b"
        ));
        assert!(!glob_matches(
            "https://github.com/*",
            "https://gitlab.com/a"
        ));
        assert!(glob_matches("*.example.com", "api.example.com"));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(!glob_matches("a*b*c", "a-x-c-y-b"));
        assert!(glob_matches("a*a", "aa"));
        assert!(!glob_matches("a*a", "a"));
        assert!(glob_matches("vm-?", "vm-?"));
        assert!(!glob_matches("vm-?", "vm-1"));
    }

    fn event() -> CloudEvent {
        let mut e = CloudEvent::new("1", "https://github.com/org/repo", "com.github.pull.create");
        e.extensions
            .insert("region".into(), AttributeValue::String("eu-west".into()));
        e.extensions
            .insert("priority".into(), AttributeValue::Integer(3));
        e
    }

    #[test]
    fn type_must_be_equal() {
        assert!(EventFilter::new("com.github.pull.create").matches(&event()));
        assert!(!EventFilter::new("com.github.pull").matches(&event()));
        assert!(!EventFilter::new("com.github.*").matches(&event()));
    }

    #[test]
    fn every_context_pattern_must_match() {
        let f = EventFilter::new("com.github.pull.create")
            .with("source", "https://github.com/*")
            .with("region", "eu-*");
        assert!(f.matches(&event()));
        let f = f.with("priority", "3");
        assert!(f.matches(&event()));
        let f = f.with("region", "us-*");
        assert!(!f.matches(&event()));
    }

    #[test]
    fn a_missing_attribute_does_not_match() {
        let f = EventFilter::new("com.github.pull.create").with("tenant", "*");
        assert!(!f.matches(&event()));
    }

    #[test]
    fn serde_shape() {
        let f: EventFilter =
            serde_json::from_str(r#"{"type":"t","context":{"source":"/a*"}}"#).unwrap();
        assert_eq!(f, EventFilter::new("t").with("source", "/a*"));
        let bare: EventFilter = serde_json::from_str(r#"{"type":"t"}"#).unwrap();
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"type":"t"}"#);
    }
}
