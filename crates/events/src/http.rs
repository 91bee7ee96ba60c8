//! The CloudEvents HTTP protocol binding: one request (headers + body) to one [`CloudEvent`].
//!
//! Structured mode: `Content-Type: application/cloudevents+json`, the whole event in the body.
//! A plain JSON body that carries `specversion` is read the same way, so `curl -d` works.
//! Binary mode: the attributes in `ce-*` headers (percent-encoded where needed), the data as the
//! body, its `Content-Type` as `datacontenttype`.

use serde_json::Value;

use crate::cloudevent::{
    check_attribute_name, check_spec_version, check_time, is_json_content_type, media_type,
    AttributeValue, CloudEvent, EventData,
};
use crate::error::EventError;

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

/// Reads one CloudEvent from a request. `headers` are (name, value) pairs in any case;
/// only `content-type` and `ce-*` are looked at.
pub fn from_http<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
) -> Result<CloudEvent, EventError> {
    let mut content_type = None;
    let mut ce_headers = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name == "content-type" {
            content_type = Some(decode_header(&name, value)?);
        } else if let Some(attribute) = name.strip_prefix("ce-") {
            ce_headers.push((attribute.to_string(), decode_header(&name, value)?));
        }
    }
    let media = content_type.as_deref().map(media_type);
    match media.as_deref() {
        Some(STRUCTURED) => structured(body),
        Some(BATCH) => Err(EventError::Batch),
        _ if !ce_headers.is_empty() => binary(ce_headers, content_type, body),
        _ => match serde_json::from_slice::<Value>(body) {
            Ok(value) if value.get("specversion").is_some() => CloudEvent::from_json(value),
            _ => Err(EventError::NotACloudEvent),
        },
    }
}

fn structured(body: &[u8]) -> Result<CloudEvent, EventError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| EventError::NotAnObject(format!("the body is not JSON ({e})")))?;
    CloudEvent::from_json(value)
}

fn binary(
    attributes: Vec<(String, String)>,
    content_type: Option<String>,
    body: &[u8],
) -> Result<CloudEvent, EventError> {
    let mut spec = None;
    let mut id = None;
    let mut source = None;
    let mut event_type = None;
    let mut event = CloudEvent::new("-", "-", "-");
    for (name, value) in attributes {
        check_attribute_name(&name)?;
        let slot = match name.as_str() {
            "specversion" => &mut spec,
            "id" => &mut id,
            "source" => &mut source,
            "type" => &mut event_type,
            "dataschema" => &mut event.dataschema,
            "subject" => &mut event.subject,
            "time" => &mut event.time,
            // Content-Type is the data's content type in binary mode.
            "datacontenttype" => continue,
            _ => {
                event.extensions.insert(name, AttributeValue::String(value));
                continue;
            }
        };
        if value.is_empty() {
            return Err(EventError::NotAString(name));
        }
        *slot = Some(value);
    }
    check_spec_version(&spec.ok_or(EventError::Missing("specversion"))?)?;
    event.id = id.ok_or(EventError::Missing("id"))?;
    event.source = source.ok_or(EventError::Missing("source"))?;
    event.event_type = event_type.ok_or(EventError::Missing("type"))?;
    if let Some(time) = &event.time {
        check_time(time)?;
    }
    event.data = binary_data(content_type.as_deref(), body)?;
    event.datacontenttype = content_type;
    Ok(event)
}

/// The body as data: JSON when the content type says so (or none is given), text for `text/*`,
/// bytes otherwise. An empty body is no data.
fn binary_data(content_type: Option<&str>, body: &[u8]) -> Result<Option<EventData>, EventError> {
    if body.is_empty() {
        return Ok(None);
    }
    let json_expected = content_type.is_none_or(is_json_content_type);
    if json_expected {
        return serde_json::from_slice(body)
            .map(|value| Some(EventData::Json(value)))
            .map_err(|e| EventError::DataNotJson {
                content_type: content_type.unwrap_or("(none)").to_string(),
                reason: e.to_string(),
            });
    }
    let is_text = content_type.is_some_and(|ct| media_type(ct).starts_with("text/"));
    match std::str::from_utf8(body) {
        Ok(text) if is_text => Ok(Some(EventData::Text(text.to_string()))),
        _ => Ok(Some(EventData::Binary(body.to_vec()))),
    }
}

/// Header values are percent-encoded where they hold characters HTTP headers cannot.
fn decode_header(name: &str, value: &[u8]) -> Result<String, EventError> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let decoded = match value[i] {
            b'%' if i + 2 < value.len() => std::str::from_utf8(&value[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(value[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| EventError::HeaderEncoding(name.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    #[test]
    fn binary_mode_reads_headers_and_json_body() {
        let h = headers(&[
            ("Content-Type", "application/json"),
            ("ce-specversion", "1.0"),
            ("CE-ID", "abc"),
            ("ce-source", "/orders"),
            ("ce-type", "order.created"),
            ("ce-region", "eu%20west"),
        ]);
        let event = from_http(h, br#"{"n":1}"#).unwrap();
        assert_eq!(event.id, "abc");
        assert_eq!(event.event_type, "order.created");
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(event.attribute("region").as_deref(), Some("eu west"));
        assert_eq!(event.data, Some(EventData::Json(json!({"n": 1}))));
    }

    #[test]
    fn binary_mode_text_and_bytes() {
        let base = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ];
        let mut text = base.to_vec();
        text.push(("content-type", "text/plain"));
        let event = from_http(headers(&text), b"hello").unwrap();
        assert_eq!(event.data, Some(EventData::Text("hello".into())));

        let mut bytes = base.to_vec();
        bytes.push(("content-type", "application/octet-stream"));
        let event = from_http(headers(&bytes), &[0, 159, 146, 150]).unwrap();
        assert_eq!(event.data, Some(EventData::Binary(vec![0, 159, 146, 150])));
        assert_eq!(event.to_json()["data_base64"], json!("AJ+Slg=="));
    }

    #[test]
    fn binary_mode_without_type_or_with_bad_json_is_refused() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
        ]);
        assert_eq!(from_http(h, b"").unwrap_err(), EventError::Missing("type"));
        let h = headers(&[
            ("content-type", "application/json"),
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ]);
        assert!(matches!(
            from_http(h, b"{not json").unwrap_err(),
            EventError::DataNotJson { .. }
        ));
    }

    #[test]
    fn structured_mode_and_plain_json_with_specversion() {
        let body = br#"{"specversion":"1.0","id":"9","source":"/s","type":"t","data":{"a":1}}"#;
        let h = headers(&[(
            "Content-Type",
            "application/cloudevents+json; charset=utf-8",
        )]);
        let event = from_http(h, body).unwrap();
        assert_eq!(event.id, "9");
        let h = headers(&[("Content-Type", "application/json")]);
        assert_eq!(from_http(h, body).unwrap(), event);
    }

    #[test]
    fn neither_mode_and_batches_are_refused_clearly() {
        let h = headers(&[("Content-Type", "application/json")]);
        assert_eq!(
            from_http(h, br#"{"a":1}"#).unwrap_err(),
            EventError::NotACloudEvent
        );
        let h = headers(&[("Content-Type", "application/cloudevents-batch+json")]);
        assert_eq!(from_http(h, b"[]").unwrap_err(), EventError::Batch);
        let h = headers(&[("Content-Type", "application/cloudevents+json")]);
        assert!(matches!(
            from_http(h, b"[1]").unwrap_err(),
            EventError::NotAnObject(_)
        ));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_header("x", b"a%2Cb%").unwrap(), "a,b%");
        assert_eq!(decode_header("x", b"%C3%A9").unwrap(), "é");
        assert!(decode_header("x", b"%FF").is_err());
    }
}
