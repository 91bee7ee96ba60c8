//! Why a request is not a valid CloudEvent, or a cron expression not a valid schedule.

/// A request that is not a valid CloudEvent 1.0. Every message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Neither structured nor binary mode.
    #[error("not a CloudEvent: send it in structured mode (Content-Type: application/cloudevents+json, the event as a JSON object) or in binary mode (headers ce-specversion: 1.0, ce-id, ce-source and ce-type, the data as the body)")]
    NotACloudEvent,
    /// A batch of events (one per request is supported).
    #[error("batched CloudEvents (application/cloudevents-batch+json) are not supported: send one event per request")]
    Batch,
    /// A structured-mode body that is not a JSON object (the parser's message).
    #[error("the structured CloudEvent is not a JSON object: {0}")]
    NotAnObject(String),
    /// A required attribute is missing (its name).
    #[error("the CloudEvent has no '{0}' attribute: it is required (in binary mode as the header ce-{0})")]
    Missing(&'static str),
    /// A required attribute that is empty or not a string (its name).
    #[error("the CloudEvent attribute '{0}' must be a non-empty string")]
    NotAString(String),
    /// A `specversion` other than 1.0 (the one given).
    #[error("specversion '{0}' is not supported: use \"1.0\"")]
    SpecVersion(String),
    /// An extension attribute's name breaks the naming rule (the name).
    #[error("the CloudEvent attribute name '{0}' is invalid: names are 1 to 20 lower-case letters (a-z) or digits (0-9)")]
    AttributeName(String),
    /// An extension attribute of another JSON type (its name, the type found).
    #[error("the CloudEvent attribute '{0}' must be a string, a boolean or an integer, not {1}")]
    AttributeValue(String, &'static str),
    /// A `time` that is not RFC 3339 (the value).
    #[error("the CloudEvent attribute 'time' ('{0}') is not an RFC 3339 timestamp such as 2024-01-31T12:00:00Z")]
    Time(String),
    /// Both `data` and `data_base64` are given.
    #[error("the CloudEvent has both 'data' and 'data_base64': give only one")]
    BothData,
    /// `data_base64` that does not decode (the decoder's message).
    #[error("the CloudEvent's data_base64 is not valid base64: {0}")]
    Base64(String),
    /// Data declared JSON by its content type that does not parse.
    #[error(
        "the event data is not valid JSON although its content type is '{content_type}': {reason}"
    )]
    DataNotJson {
        /// The declared content type.
        content_type: String,
        /// The parser's message.
        reason: String,
    },
    /// A `ce-*` header that is not UTF-8 once percent-decoded (its name).
    #[error("the header {0} is not valid UTF-8 after percent-decoding")]
    HeaderEncoding(String),
}

/// A cron expression that cannot be a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression '{expr}': {reason}; use 5 fields (minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\") or 6 with seconds first (e.g. \"*/10 * * * * *\")")]
pub struct ScheduleError {
    /// The expression as given.
    pub expr: String,
    /// What the cron parser said.
    pub reason: String,
}
