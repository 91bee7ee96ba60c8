//! Function log lines as calls print them, for whoever follows a function's logs
//! (`GET …/functions/{fn}/logs?follow=true`, `faasbox logs NS/FN --follow`): each line tagged
//! with its run id. Lines are read from the agent while a call runs only when someone follows.
//!
//! Each followed function has one bounded broadcast channel; a follower that falls more than
//! [`LINE_BUFFER`] lines behind is told how many it missed. A call ([`LiveLogs::relay`]) reads
//! its agent's `GET /v1/logs` every [`POLL_INTERVAL`] while its function has a follower, and
//! when it ends publishes the lines of its outcome that were not read yet: the agent numbers
//! both the same way, so no line is lost or sent twice. Every line is masked with the call's
//! masker first: secret values never reach a follower. A call of a function nobody follows
//! costs one atomic read and waits for a follower with its call (no timer, no request).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faasbox_driver::AgentClient;
use faasbox_proto::{LogLine, LogStream};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::failure::{Failure, FailureKind};
use crate::mask::Masker;
use crate::owner::function_key;

/// Followers the server keeps at once (all functions together) unless told otherwise.
pub const DEFAULT_MAX_FOLLOWERS: usize = 1000;
/// Lines a follower may be behind before it misses some (and gets told how many).
pub const LINE_BUFFER: usize = 1024;
/// How often a followed call's agent is asked for its new lines.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one read of the agent's lines may take; a slower (or older) agent's lines come
/// when its call ends.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// The error code of a follow refused because the server has as many followers as it keeps.
pub const TOO_MANY_FOLLOWERS: &str = "faasbox.logs.too_many_followers";
/// The error code of a follow refused because the server stops.
pub const STOPPING: &str = "faasbox.logs.server_stopping";

/// One log line of a running call, as followers get it (secret values masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LiveLine {
    /// The call's run (invocation) id.
    pub run: String,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Where it came from.
    pub stream: LogStream,
    /// The text, without its line end.
    pub line: String,
}

/// What a follower gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// A line.
    Line(Arc<LiveLine>),
    /// The follower fell behind: this many lines went past it.
    Lagged(u64),
}

/// The followers of each function's logs and the lines sent to them.
pub struct LiveLogs {
    inner: Arc<Inner>,
}

struct Inner {
    /// Per followed function (`namespace/name`), the channel its followers listen on; gone
    /// with its last follower.
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<LiveLine>>>>,
    /// Followers now, all functions together.
    followers: AtomicUsize,
    max_followers: usize,
    /// Bumped at each new follower, so a running call nobody followed yet looks again.
    followed: watch::Sender<u64>,
    /// Reads of an agent's lines made so far (what following costs; none while nobody follows).
    reads: AtomicU64,
    /// Cancelled when the server stops: every follower's stream ends (an open stream would
    /// hold the server's graceful shutdown forever), and no new one starts.
    closed: CancellationToken,
}

impl Default for LiveLogs {
    fn default() -> Self {
        LiveLogs::with_limit(DEFAULT_MAX_FOLLOWERS)
    }
}

impl LiveLogs {
    /// Keeps at most `max_followers` followers at once.
    pub fn with_limit(max_followers: usize) -> Self {
        LiveLogs {
            inner: Arc::new(Inner {
                channels: Mutex::new(HashMap::new()),
                followers: AtomicUsize::new(0),
                max_followers,
                followed: watch::Sender::new(0),
                reads: AtomicU64::new(0),
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Follows the logs of `namespace`'s function `name` from now on, until the follower is
    /// dropped. Refused (unavailable, 503 over HTTP) when the server has as many followers as
    /// it keeps.
    pub fn follow(&self, namespace: &str, name: &str) -> Result<Follower, Failure> {
        let inner = &self.inner;
        if inner.closed.is_cancelled() {
            return Err(Failure::new(
                FailureKind::Unavailable,
                STOPPING,
                "the server is stopping: follow the logs again once it is back",
            ));
        }
        let max = inner.max_followers;
        let reserved = inner
            .followers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if reserved.is_err() {
            return Err(Failure::new(
                FailureKind::Unavailable,
                TOO_MANY_FOLLOWERS,
                format!(
                    "the server already streams logs to {max} followers, as many as it keeps; \
                     stop another `faasbox logs --follow`, or read the stored lines without \
                     following (`faasbox logs {namespace}/{name}`)"
                ),
            ));
        }
        let key = function_key(namespace, name);
        let receiver = inner
            .channels()
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(LINE_BUFFER).0)
            .subscribe();
        inner.followed.send_modify(|generation| *generation += 1);
        crate::metrics::log_followers(inner.followers.load(Ordering::Acquire));
        Ok(Follower {
            receiver: Some(receiver),
            key,
            inner: Arc::clone(inner),
        })
    }

    /// Ends every follower's stream, now and from now on (the server stops).
    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// Followers now, all functions together.
    pub fn followers(&self) -> usize {
        self.inner.followers.load(Ordering::Acquire)
    }

    /// Reads of an agent's lines made so far.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// Runs `call`, the call `run` of `namespace`'s function `name` on the instance `agent`
    /// talks to, and gives its followers the call's lines (masked with `masker`): read from
    /// the agent while it runs and someone follows, then those of its outcome not read yet.
    /// Gives back what `call` gives (its result and all its lines, unmasked).
    pub async fn relay<R>(
        &self,
        namespace: &str,
        name: &str,
        run: &str,
        agent: &AgentClient,
        masker: &Masker,
        call: impl Future<Output = (R, Vec<LogLine>)>,
    ) -> (R, Vec<LogLine>) {
        let inner = &self.inner;
        let mut new_follower = inner.followed.subscribe();
        let mut key: Option<String> = None;
        let publisher = Publisher { run, masker };
        // The call's lines read (and sent) so far; the agent numbers its outcome's the same.
        let mut sent = 0usize;
        let mut reading = true;
        tokio::pin!(call);
        let (result, lines) = loop {
            let channel = if reading {
                inner.channel(namespace, name, &mut key)
            } else {
                None
            };
            match channel {
                None => tokio::select! {
                    ended = &mut call => break ended,
                    changed = new_follower.changed(), if reading => {
                        // The sender lives as long as `inner`: an error cannot happen.
                        if changed.is_err() {
                            reading = false;
                        }
                    }
                },
                Some(channel) => tokio::select! {
                    ended = &mut call => break ended,
                    () = tokio::time::sleep(POLL_INTERVAL) => {
                        inner.reads.fetch_add(1, Ordering::Relaxed);
                        crate::metrics::live_log_read();
                        let read = tokio::time::timeout(POLL_TIMEOUT, agent.logs(run, sent as u64));
                        match read.await {
                            Ok(Ok(report)) => {
                                sent += report.lines.len();
                                publisher.send(&channel, &report.lines);
                                // A call the agent no longer runs has the rest in its outcome.
                                reading = report.running;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(run, "reading the running call's lines: {e}; they come when it ends");
                                reading = false;
                            }
                            Err(_) => {
                                tracing::debug!(run, "reading the running call's lines took over {POLL_TIMEOUT:?}; they come when it ends");
                                reading = false;
                            }
                        }
                    }
                },
            }
        };
        if let Some(channel) = inner.channel(namespace, name, &mut key) {
            publisher.send(&channel, lines.get(sent..).unwrap_or_default());
        }
        (result, lines)
    }
}

impl Inner {
    fn channels(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<LiveLine>>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The channel of a followed function; `None` (without a lock) when nobody follows any.
    fn channel(
        &self,
        namespace: &str,
        name: &str,
        key: &mut Option<String>,
    ) -> Option<broadcast::Sender<Arc<LiveLine>>> {
        if self.followers.load(Ordering::Acquire) == 0 {
            return None;
        }
        let key = key.get_or_insert_with(|| function_key(namespace, name));
        self.channels().get(key.as_str()).cloned()
    }
}

/// Sends one call's lines, masked.
struct Publisher<'a> {
    run: &'a str,
    masker: &'a Masker,
}

impl Publisher<'_> {
    fn send(&self, channel: &broadcast::Sender<Arc<LiveLine>>, lines: &[LogLine]) {
        for line in lines {
            let text = if self.masker.is_empty() {
                line.line.clone()
            } else {
                self.masker.mask(&line.line)
            };
            // No receiver left (the last follower just went): nothing to do.
            let _ = channel.send(Arc::new(LiveLine {
                run: self.run.to_string(),
                ts_ms: line.ts_ms,
                stream: line.stream,
                line: text,
            }));
        }
    }
}

/// One follower of a function's logs; dropping it stops following.
pub struct Follower {
    /// Always `Some` until dropped (taken first there, so the count below excludes it).
    receiver: Option<broadcast::Receiver<Arc<LiveLine>>>,
    key: String,
    inner: Arc<Inner>,
}

impl Follower {
    /// The next line (or how many were missed); waits for it. `None` once the server stops.
    pub async fn next(&mut self) -> Option<Followed> {
        let receiver = self.receiver.as_mut()?;
        let received = tokio::select! {
            received = receiver.recv() => received,
            () = self.inner.closed.cancelled() => return None,
        };
        match received {
            Ok(line) => Some(Followed::Line(line)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Followed::Lagged(missed)),
            // The channel lives while it has a follower; this one.
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        drop(self.receiver.take());
        {
            let mut channels = self.inner.channels();
            if channels
                .get(&self.key)
                .is_some_and(|c| c.receiver_count() == 0)
            {
                channels.remove(&self.key);
            }
        }
        let left = self.inner.followers.fetch_sub(1, Ordering::AcqRel) - 1;
        crate::metrics::log_followers(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn line(text: &str) -> LogLine {
        LogLine {
            ts_ms: 1,
            stream: LogStream::Stdout,
            line: text.to_string(),
        }
    }

    /// A client of an agent that is not there: every read fails.
    fn absent_agent() -> AgentClient {
        AgentClient::new(std::path::PathBuf::from("/nonexistent/faasbox-agent.sock"))
    }

    async fn next_line(follower: &mut Follower) -> Arc<LiveLine> {
        match tokio::time::timeout(Duration::from_secs(5), follower.next()).await {
            Ok(Some(Followed::Line(line))) => line,
            other => panic!("expected a line, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn followers_are_counted_bounded_and_gone_when_dropped() {
        let logs = LiveLogs::with_limit(2);
        let a = logs.follow("ns", "f").expect("first");
        let b = logs.follow("ns", "g").expect("second");
        assert_eq!(logs.followers(), 2);
        let refused = logs.follow("ns", "f").err().expect("over the bound");
        assert_eq!(refused.kind, FailureKind::Unavailable);
        assert_eq!(refused.code, TOO_MANY_FOLLOWERS);
        assert!(
            refused.message.contains("2 followers"),
            "{}",
            refused.message
        );
        drop(a);
        assert_eq!(logs.followers(), 1);
        assert!(
            logs.inner.channels().get("ns/f").is_none(),
            "f's channel went"
        );
        let c = logs.follow("ns", "f").expect("room again");
        drop((b, c));
        assert_eq!(logs.followers(), 0);
        assert!(logs.inner.channels().is_empty());
    }

    #[tokio::test]
    async fn closing_ends_every_follower_and_refuses_new_ones() {
        let logs = LiveLogs::default();
        let mut follower = logs.follow("ns", "f").expect("follow");
        let waiting = tokio::spawn(async move { follower.next().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        logs.close();
        let ended = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(ended.expect("ended in time").expect("task"), None);
        assert_eq!(logs.followers(), 0, "the ended follower was dropped");
        let refused = logs.follow("ns", "f").err().expect("refused");
        assert_eq!(
            (refused.kind, refused.code.as_str()),
            (FailureKind::Unavailable, STOPPING)
        );
    }

    #[tokio::test]
    async fn a_call_nobody_follows_never_reads_its_agent() {
        let logs = LiveLogs::default();
        let _other = logs.follow("ns", "other").expect("follow");
        let call = async {
            tokio::time::sleep(POLL_INTERVAL * 3).await;
            ((), vec![line("one")])
        };
        let masker = Masker::default();
        let ((), lines) = logs
            .relay("ns", "f", "run1", &absent_agent(), &masker, call)
            .await;
        assert_eq!(lines, vec![line("one")]);
        assert_eq!(logs.reads(), 0, "f has no follower: no read");
    }

    #[tokio::test]
    async fn a_follower_gets_every_line_of_the_outcome_masked_with_its_run() {
        let logs = LiveLogs::default();
        let mut follower = logs.follow("ns", "f").expect("follow");
        let call = async {
            tokio::time::sleep(POLL_INTERVAL * 2).await;
            (
                Ok::<Bytes, Failure>(Bytes::new()),
                vec![line("one"), line("token=s3cret-value"), line("three")],
            )
        };
        let masker = Masker::new([b"s3cret-value".as_slice()]);
        let (_, lines) = logs
            .relay("ns", "f", "run1", &absent_agent(), &masker, call)
            .await;
        assert!(
            lines[1].line.contains("s3cret-value"),
            "the caller's are as they came"
        );
        // The agent could not be read (it is absent): the lines came with the outcome.
        assert_eq!(logs.reads(), 1, "one failed read, then no more");
        let got: Vec<_> = [
            next_line(&mut follower).await,
            next_line(&mut follower).await,
            next_line(&mut follower).await,
        ]
        .into_iter()
        .map(|l| (l.run.clone(), l.line.clone()))
        .collect();
        assert_eq!(got[0], ("run1".to_string(), "one".to_string()));
        assert!(!got[1].1.contains("s3cret"), "masked: {}", got[1].1);
        assert_eq!(got[2].1, "three");
        // Another function's call is not sent to this follower.
        let other = async { ((), vec![line("elsewhere")]) };
        logs.relay("ns", "g", "run2", &absent_agent(), &masker, other)
            .await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), follower.next())
                .await
                .is_err(),
            "nothing for f"
        );
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_is_told_how_many_it_missed() {
        let logs = LiveLogs::default();
        let mut follower = logs.follow("ns", "f").expect("follow");
        let many: Vec<LogLine> = (0..LINE_BUFFER + 10)
            .map(|i| line(&i.to_string()))
            .collect();
        let call = async { ((), many) };
        logs.relay("ns", "f", "run1", &absent_agent(), &Masker::default(), call)
            .await;
        assert_eq!(follower.next().await, Some(Followed::Lagged(10)));
        assert_eq!(next_line(&mut follower).await.line, "10");
    }
}
