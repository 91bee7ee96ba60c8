//! Why a request is not a valid CloudEvent, or a cron expression not a valid schedule.

/// A request that is not a valid CloudEvent 1.0. Every message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a CloudEvent: send it in structured mode (Content-Type: application/cloudevents+json, the event as a JSON object) or in binary mode (headers ce-specversion: 1.0, ce-id, ce-source and ce-type, the data as the body)")]
    NotACloudEvent,
    #[error("batched CloudEvents (application/cloudevents-batch+json) are not supported: send one event per request")]
    Batch,
    #[error("the structured CloudEvent is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("the CloudEvent has no '{0}' attribute: it is required (in binary mode as the header ce-{0})")]
    Missing(&'static str),
    #[error("the CloudEvent attribute '{0}' must be a non-empty string")]
    NotAString(String),
    #[error("specversion '{0}' is not supported: use \"1.0\"")]
    SpecVersion(String),
    #[error("the CloudEvent attribute name '{0}' is invalid: names are 1 to 20 lower-case letters (a-z) or digits (0-9)")]
    AttributeName(String),
    #[error("the CloudEvent attribute '{0}' must be a string, a boolean or an integer, not {1}")]
    AttributeValue(String, &'static str),
    #[error("the CloudEvent attribute 'time' ('{0}') is not an RFC 3339 timestamp such as 2024-01-31T12:00:00Z")]
    Time(String),
    #[error("the CloudEvent has both 'data' and 'data_base64': give only one")]
    BothData,
    #[error("the CloudEvent's data_base64 is not valid base64: {0}")]
    Base64(String),
    #[error(
        "the event data is not valid JSON although its content type is '{content_type}': {reason}"
    )]
    DataNotJson {
        content_type: String,
        reason: String,
    },
    #[error("the header {0} is not valid UTF-8 after percent-decoding")]
    HeaderEncoding(String),
}

/// A cron expression that cannot be a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression '{expr}': {reason}; use 5 fields (minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\") or 6 with seconds first (e.g. \"*/10 * * * * *\")")]
pub struct ScheduleError {
    pub expr: String,
    pub reason: String,
}
