//! The CloudEvent 1.0 type, its validation and its structured (JSON) form.
//!
//! Whatever mode an event arrived in, it is kept and handed to flows in the structured JSON
//! form: the attributes as members, JSON data under `data`, text under `data` as a string,
//! other bytes under `data_base64`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::EventError;

/// The only CloudEvents version accepted.
pub const SPEC_VERSION: &str = "1.0";

/// An extension attribute's value: the JSON types the structured format allows for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// A JSON string (every binary-mode header is one).
    String(String),
    /// A JSON boolean.
    Bool(bool),
    /// A JSON integer.
    Integer(i64),
}

impl AttributeValue {
    /// The value as text, as filters compare it.
    pub fn as_text(&self) -> String {
        match self {
            AttributeValue::String(s) => s.clone(),
            AttributeValue::Bool(b) => b.to_string(),
            AttributeValue::Integer(i) => i.to_string(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            AttributeValue::String(s) => Value::String(s.clone()),
            AttributeValue::Bool(b) => Value::Bool(*b),
            AttributeValue::Integer(i) => Value::from(*i),
        }
    }
}

/// The event's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// JSON data (the content type is JSON or absent).
    Json(Value),
    /// Text of another content type.
    Text(String),
    /// Bytes that are neither JSON nor text.
    Binary(Vec<u8>),
}

/// One CloudEvent 1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    /// `id`: unique per `source`.
    pub id: String,
    /// `source`: the context the event happened in (a URI reference).
    pub source: String,
    /// `type`: what happened; filters match it exactly.
    pub event_type: String,
    /// `datacontenttype`: the media type of `data`.
    pub datacontenttype: Option<String>,
    /// `dataschema`: the schema `data` adheres to.
    pub dataschema: Option<String>,
    /// `subject`: what in the source the event is about.
    pub subject: Option<String>,
    /// `time`: when it happened, RFC 3339.
    pub time: Option<String>,
    /// Extension attributes, by name.
    pub extensions: BTreeMap<String, AttributeValue>,
    /// The payload.
    pub data: Option<EventData>,
}

impl CloudEvent {
    /// A new event with the required attributes and nothing else.
    pub fn new(id: &str, source: &str, event_type: &str) -> CloudEvent {
        CloudEvent {
            id: id.to_string(),
            source: source.to_string(),
            event_type: event_type.to_string(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions: BTreeMap::new(),
            data: None,
        }
    }

    /// A context attribute (standard or extension) as text, for filters. `specversion`,
    /// `type` and the data are not context attributes here.
    pub fn attribute(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.clone()),
            "source" => Some(self.source.clone()),
            "datacontenttype" => self.datacontenttype.clone(),
            "dataschema" => self.dataschema.clone(),
            "subject" => self.subject.clone(),
            "time" => self.time.clone(),
            other => self.extensions.get(other).map(AttributeValue::as_text),
        }
    }

    /// The structured-mode JSON object.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("specversion".into(), SPEC_VERSION.into());
        map.insert("id".into(), self.id.clone().into());
        map.insert("source".into(), self.source.clone().into());
        map.insert("type".into(), self.event_type.clone().into());
        let optional = [
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
            ("time", &self.time),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.insert(name.into(), value.clone().into());
            }
        }
        for (name, value) in &self.extensions {
            map.insert(name.clone(), value.to_json());
        }
        match &self.data {
            Some(EventData::Json(value)) => {
                map.insert("data".into(), value.clone());
            }
            Some(EventData::Text(text)) => {
                map.insert("data".into(), text.clone().into());
            }
            Some(EventData::Binary(bytes)) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                map.insert("data_base64".into(), encoded.into());
            }
            None => {}
        }
        Value::Object(map)
    }

    /// Reads and validates an event in structured mode.
    pub fn from_json(value: Value) -> Result<CloudEvent, EventError> {
        let Value::Object(mut map) = value else {
            return Err(EventError::NotAnObject(json_kind(&value).to_string()));
        };
        let spec = take_string(&mut map, "specversion")?;
        check_spec_version(&spec)?;
        let id = take_string(&mut map, "id")?;
        let source = take_string(&mut map, "source")?;
        let event_type = take_string(&mut map, "type")?;
        let mut event = CloudEvent::new(&id, &source, &event_type);
        event.datacontenttype = take_optional_string(&mut map, "datacontenttype")?;
        event.dataschema = take_optional_string(&mut map, "dataschema")?;
        event.subject = take_optional_string(&mut map, "subject")?;
        event.time = take_optional_string(&mut map, "time")?;
        if let Some(time) = &event.time {
            check_time(time)?;
        }
        let data = map.remove("data").filter(|v| !v.is_null());
        let data_base64 = map.remove("data_base64").filter(|v| !v.is_null());
        event.data = match (data, data_base64) {
            (Some(_), Some(_)) => return Err(EventError::BothData),
            (Some(data), None) => Some(structured_data(data, event.datacontenttype.as_deref())),
            (None, Some(Value::String(encoded))) => Some(EventData::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| EventError::Base64(e.to_string()))?,
            )),
            (None, Some(other)) => {
                return Err(EventError::AttributeValue(
                    "data_base64".into(),
                    json_kind(&other),
                ))
            }
            (None, None) => None,
        };
        for (name, value) in map {
            check_attribute_name(&name)?;
            let value = match value {
                Value::Null => continue,
                Value::String(s) => AttributeValue::String(s),
                Value::Bool(b) => AttributeValue::Bool(b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => AttributeValue::Integer(i),
                    None => return Err(EventError::AttributeValue(name, "a fraction")),
                },
                other => return Err(EventError::AttributeValue(name, json_kind(&other))),
            };
            event.extensions.insert(name, value);
        }
        Ok(event)
    }
}

/// In structured mode, JSON data is embedded as JSON; a string under a non-JSON content type
/// is text.
fn structured_data(data: Value, content_type: Option<&str>) -> EventData {
    match (data, content_type) {
        (Value::String(text), Some(ct)) if !is_json_content_type(ct) => EventData::Text(text),
        (data, _) => EventData::Json(data),
    }
}

/// `application/json`, `text/json` and any `…+json` media type, parameters ignored.
pub fn is_json_content_type(content_type: &str) -> bool {
    let media = media_type(content_type);
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

/// The media type of a Content-Type value, lower-cased, without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(crate) fn check_spec_version(spec: &str) -> Result<(), EventError> {
    if spec == SPEC_VERSION {
        Ok(())
    } else {
        Err(EventError::SpecVersion(spec.to_string()))
    }
}

pub(crate) fn check_time(time: &str) -> Result<(), EventError> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(time, &Rfc3339)
        .map(|_| ())
        .map_err(|_| EventError::Time(time.to_string()))
}

/// Attribute names: lower-case ASCII letters and digits, at most 20 of them.
pub(crate) fn check_attribute_name(name: &str) -> Result<(), EventError> {
    let valid = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(EventError::AttributeName(name.to_string()))
    }
}

fn take_string(map: &mut Map<String, Value>, name: &'static str) -> Result<String, EventError> {
    match map.remove(name) {
        None | Some(Value::Null) => Err(EventError::Missing(name)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(EventError::NotAString(name.to_string())),
    }
}

fn take_optional_string(
    map: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, EventError> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(EventError::NotAString(name.to_string())),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({"specversion": "1.0", "id": "1", "source": "/test", "type": "com.example.a"})
    }

    #[test]
    fn structured_round_trip_keeps_attributes_and_json_data() {
        let input = json!({
            "specversion": "1.0", "id": "42", "source": "https://example.com/x",
            "type": "com.example.order", "subject": "orders/7", "time": "2024-01-31T12:00:00Z",
            "datacontenttype": "application/json", "region": "eu", "priority": 3, "urgent": true,
            "data": {"order": 7}
        });
        let event = CloudEvent::from_json(input.clone()).unwrap();
        assert_eq!(event.event_type, "com.example.order");
        assert_eq!(event.data, Some(EventData::Json(json!({"order": 7}))));
        assert_eq!(event.attribute("priority").as_deref(), Some("3"));
        assert_eq!(event.attribute("urgent").as_deref(), Some("true"));
        assert_eq!(event.to_json(), input);
    }

    #[test]
    fn missing_required_attributes_are_named() {
        for name in ["specversion", "id", "source", "type"] {
            let mut value = minimal();
            value.as_object_mut().unwrap().remove(name);
            assert_eq!(
                CloudEvent::from_json(value).unwrap_err(),
                EventError::Missing(match name {
                    "specversion" => "specversion",
                    "id" => "id",
                    "source" => "source",
                    _ => "type",
                })
            );
        }
    }

    #[test]
    fn wrong_version_empty_id_and_bad_time_are_refused() {
        let mut value = minimal();
        value["specversion"] = json!("0.3");
        assert_eq!(
            CloudEvent::from_json(value).unwrap_err(),
            EventError::SpecVersion("0.3".into())
        );
        let mut value = minimal();
        value["id"] = json!("");
        assert_eq!(
            CloudEvent::from_json(value).unwrap_err(),
            EventError::NotAString("id".into())
        );
        let mut value = minimal();
        value["time"] = json!("yesterday");
        assert!(matches!(
            CloudEvent::from_json(value).unwrap_err(),
            EventError::Time(_)
        ));
    }

    #[test]
    fn bad_extension_names_and_values_are_refused() {
        let mut value = minimal();
        value["Bad-Name"] = json!("x");
        assert_eq!(
            CloudEvent::from_json(value).unwrap_err(),
            EventError::AttributeName("Bad-Name".into())
        );
        let mut value = minimal();
        value["nested"] = json!({"a": 1});
        assert_eq!(
            CloudEvent::from_json(value).unwrap_err(),
            EventError::AttributeValue("nested".into(), "an object")
        );
    }

    #[test]
    fn data_base64_decodes_to_bytes_and_encodes_back() {
        let mut value = minimal();
        value["datacontenttype"] = json!("application/octet-stream");
        value["data_base64"] = json!("AAEC/w==");
        let event = CloudEvent::from_json(value.clone()).unwrap();
        assert_eq!(event.data, Some(EventData::Binary(vec![0, 1, 2, 255])));
        assert_eq!(event.to_json(), value);

        let mut both = value.clone();
        both["data"] = json!("x");
        assert_eq!(
            CloudEvent::from_json(both).unwrap_err(),
            EventError::BothData
        );
        let mut bad = minimal();
        bad["data_base64"] = json!("***");
        assert!(matches!(
            CloudEvent::from_json(bad).unwrap_err(),
            EventError::Base64(_)
        ));
    }

    #[test]
    fn string_data_of_a_text_type_is_text() {
        let mut value = minimal();
        value["datacontenttype"] = json!("text/plain; charset=utf-8");
        value["data"] = json!("hello");
        let event = CloudEvent::from_json(value).unwrap();
        assert_eq!(event.data, Some(EventData::Text("hello".into())));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/vnd.api+json"));
        assert!(!is_json_content_type("text/plain"));
    }
}
