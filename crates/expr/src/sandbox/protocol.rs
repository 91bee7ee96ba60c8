//! What the server and an expression worker say over the worker's stdin and stdout.
//!
//! A request is `[u32 header length][header JSON][u32 data length][data JSON]` (lengths
//! little-endian): the header names the job and holds its template; the data is the JSON the
//! expressions run on, passed as text so the worker reads it straight into jaq's values.
//!
//! An answer is `[u32 length][u8 kind][u64 CPU ns][u64 RSS bytes][payload]`, the length
//! counting everything after it: kind [`READY`] (the worker is up, its limits set; empty
//! payload), [`OK`] (the result as JSON) or [`FAILED`] (a message). Every answer carries the
//! worker's CPU time so far and its resident memory, which the server uses as the baseline
//! for the next job's CPU bound and to replace a worker that grew.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The worker is up and its limits are in place.
pub const READY: u8 = 0;
/// The job's result, as JSON.
pub const OK: u8 = 1;
/// The job failed; the payload is the message.
pub const FAILED: u8 = 2;

/// The size of an answer's fixed part after its length.
pub const ANSWER_HEAD: usize = 1 + 8 + 8;

/// What to do with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A template: each `jq(…)` in its strings (see [`crate::render`]).
    Render,
    /// A bare expression or a template (see [`crate::evaluate`]).
    Evaluate,
}

/// A request's header: the job.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header<'a> {
    /// What to do with the data.
    pub op: Op,
    /// The template (or expression) to run on the data.
    pub template: std::borrow::Cow<'a, Value>,
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    /// [`READY`], [`OK`] or [`FAILED`].
    pub kind: u8,
    /// The worker's CPU time so far, in nanoseconds.
    pub cpu_ns: u64,
    /// The worker's resident memory in bytes.
    pub rss: u64,
    /// The result's JSON or the failure's message.
    pub payload: Vec<u8>,
}

/// Encodes a request.
pub fn request(op: Op, template: &Value, data: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let header = serde_json::to_vec(&Header {
        op,
        template: std::borrow::Cow::Borrowed(template),
    })?;
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&len32(header.len()).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&len32(data.len()).to_le_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// Encodes an answer.
pub fn answer(kind: u8, cpu_ns: u64, rss: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + ANSWER_HEAD + payload.len());
    out.extend_from_slice(&len32(ANSWER_HEAD + payload.len()).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&cpu_ns.to_le_bytes());
    out.extend_from_slice(&rss.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes an answer's body (what follows its length).
pub fn decode_answer(body: Vec<u8>) -> Option<Answer> {
    if body.len() < ANSWER_HEAD {
        return None;
    }
    let kind = body[0];
    let cpu_ns = u64::from_le_bytes(body[1..9].try_into().ok()?);
    let rss = u64::from_le_bytes(body[9..17].try_into().ok()?);
    let mut payload = body;
    payload.drain(..ANSWER_HEAD);
    Some(Answer {
        kind,
        cpu_ns,
        rss,
        payload,
    })
}

/// A length as the 32 bits the frames carry. Callers bound what they send far below 4 GiB
/// (the data by the server's limits, answers by the output bound); a larger one is cut to
/// `u32::MAX`, which the reader then refuses.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let template = serde_json::json!({"a": "jq(.x)"});
        let frame = request(Op::Render, &template, b"{\"x\":1}").unwrap();
        let header_len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        let header: Header = serde_json::from_slice(&frame[4..4 + header_len]).unwrap();
        assert_eq!(header.op, Op::Render);
        assert_eq!(*header.template, template);
        let data_len =
            u32::from_le_bytes(frame[4 + header_len..8 + header_len].try_into().unwrap());
        assert_eq!(&frame[8 + header_len..], b"{\"x\":1}");
        assert_eq!(data_len, 7);

        let frame = answer(OK, 5, 6, b"[1]");
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        let answer = decode_answer(frame[4..].to_vec()).unwrap();
        assert_eq!((answer.kind, answer.cpu_ns, answer.rss), (OK, 5, 6));
        assert_eq!(answer.payload, b"[1]");
        assert!(decode_answer(vec![1, 2]).is_none());
    }
}
