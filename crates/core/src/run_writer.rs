//! The record writer: blocking calls' records are written behind their answers, many per
//! transaction (group commit), by one task per server.
//!
//! A blocking call tells the writer when it starts ([`RecordWriter::started`]) and when it
//! ends ([`RecordWriter::ended`]); its answer does not wait for the write. The writer stores a
//! call that runs longer than [`RECORD_RUNNING_AFTER`] as `running` (so the runs listing shows
//! it and a restart ends it as `crashed`), and every ended call with its end, taking all the
//! messages waiting in its channel, and those arriving within [`LINGER`] of the first, into
//! one store transaction (`InvocationStore::write_calls`).
//!
//! Nothing is dropped: the channel is bounded and a full one makes the calls wait (back
//! pressure); a failed batch is written again call by call; [`RecordWriter::settle`] waits
//! until everything sent before it is written (also the calls still running, written
//! `running` then), which the readers of records (get, list, logs, cancel) and the server's
//! stop call first. An asynchronous run does not go through the writer: it is stored before
//! it is accepted, and its end is written by its executor.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use faasbox_proto::LogLine;
use faasbox_store::{CallWrite, InvocationEnd, NewRun, OwnedInvocationEnd, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A blocking call that runs longer than this is stored as `running` then; its end is
/// written over it.
pub const RECORD_RUNNING_AFTER: Duration = Duration::from_millis(10);

/// How many messages wait in the channel at most before the calls that send wait.
const CHANNEL: usize = 4096;

/// The most writes in one transaction.
const BATCH: usize = 512;

/// How long the writer waits for more records after the first of a batch. Under load a
/// transaction per call or two cost a tenth of the server's CPU (each commit writes and
/// checksums its WAL frames); the records of the next 2 ms share one instead. A record is
/// written after its call's answer either way, and a reader's `settle` ends the wait.
const LINGER: Duration = Duration::from_millis(2);

enum Message {
    Started(NewRun),
    Ended {
        id: String,
        end: OwnedInvocationEnd,
        logs: Vec<LogLine>,
    },
    /// Write everything before this (and the running calls), then answer.
    Settle(oneshot::Sender<()>),
}

/// The server's record writer (see the module). Its task starts with the first call.
#[derive(Default)]
pub struct RecordWriter {
    sender: OnceLock<mpsc::Sender<Message>>,
    /// How many transactions it has written.
    transactions: Arc<AtomicU64>,
}

impl RecordWriter {
    fn sender(&self, store: &Arc<dyn Store>) -> &mpsc::Sender<Message> {
        self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(CHANNEL);
            tokio::spawn(write(
                store.clone(),
                receiver,
                Arc::clone(&self.transactions),
            ));
            sender
        })
    }

    /// Call `run.id` started (its record is written when it ends, or as `running` once it has
    /// run [`RECORD_RUNNING_AFTER`]).
    pub async fn started(&self, store: &Arc<dyn Store>, run: NewRun) {
        // The task lives as long as the server's runtime: a send fails only when it is gone.
        if let Err(mpsc::error::SendError(Message::Started(run))) =
            self.sender(store).send(Message::Started(run)).await
        {
            if let Err(e) = store.insert_run(&run).await {
                tracing::error!(run = %run.id, "recording a call failed: {e}");
            }
        }
    }

    /// Call `id` (told [`RecordWriter::started`]) ended: its record is written with its end.
    pub async fn ended(
        &self,
        store: &Arc<dyn Store>,
        id: &str,
        end: &InvocationEnd<'_>,
        logs: Vec<LogLine>,
    ) {
        let message = Message::Ended {
            id: id.to_string(),
            end: OwnedInvocationEnd::of(end),
            logs,
        };
        if let Err(mpsc::error::SendError(Message::Ended { end, logs, .. })) =
            self.sender(store).send(message).await
        {
            if let Err(e) = store.finish_invocation(id, &end.borrowed(), &logs).await {
                tracing::error!(run = %id, "recording the end of a call failed: {e}");
            }
        }
    }

    /// How many batches it has written (one transaction each, unless one failed and was
    /// written call by call).
    #[cfg(test)]
    fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Waits until every call told to the writer before is written (a call still running is
    /// written `running`). Immediate when no call went through the writer.
    pub async fn settle(&self) {
        let Some(sender) = self.sender.get() else {
            return;
        };
        let (done, written) = oneshot::channel();
        if sender.send(Message::Settle(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

/// The writer's task: takes what waits in the channel, writes it in one transaction.
async fn write(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Message>,
    transactions: Arc<AtomicU64>,
) {
    // Calls started and not ended yet, by id; the order they started in, with when each is
    // written `running` if it has not ended by then.
    let mut unwritten: HashMap<String, NewRun> = HashMap::new();
    let mut due: VecDeque<(Instant, String)> = VecDeque::new();
    let mut batch: Vec<CallWrite> = Vec::new();
    let mut settled: Vec<oneshot::Sender<()>> = Vec::new();
    let mut messages = Vec::with_capacity(BATCH);
    loop {
        let next_due = due.front().map(|(at, _)| *at);
        let received = match next_due {
            Some(at) => tokio::select! {
                n = receiver.recv_many(&mut messages, BATCH) => n,
                _ = tokio::time::sleep_until(at) => 0,
            },
            None => receiver.recv_many(&mut messages, BATCH).await,
        };
        if received > 0 {
            linger(&mut receiver, &mut messages).await;
        }
        // Every sender is gone (the server's state is): what is left is written, then the
        // task ends.
        let closed = received == 0 && receiver.is_closed();
        let mut settle_all = closed;
        for message in messages.drain(..) {
            match message {
                Message::Started(run) => {
                    due.push_back((Instant::now() + RECORD_RUNNING_AFTER, run.id.clone()));
                    unwritten.insert(run.id.clone(), run);
                }
                Message::Ended { id, end, logs } => {
                    if let Some(run) = unwritten.remove(&id) {
                        // Written `running` already or not: `record_call` leaves an existing
                        // record and writes the end over it.
                        batch.push(CallWrite::Ended { run, end, logs });
                    }
                }
                Message::Settle(done) => {
                    settle_all = true;
                    settled.push(done);
                }
            }
        }
        // Calls running long enough (or all, for a settle) are written `running`.
        let now = Instant::now();
        while let Some((at, id)) = due.front() {
            if !settle_all && *at > now {
                break;
            }
            if let Some(run) = unwritten.get(id) {
                batch.push(CallWrite::Running(run.clone()));
            }
            due.pop_front();
        }
        if !batch.is_empty() {
            store_batch(&store, &batch).await;
            transactions.fetch_add(1, Ordering::Relaxed);
            batch.clear();
        }
        for done in settled.drain(..) {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// Takes the messages that arrive within [`LINGER`] of the first into the same batch (up to
/// [`BATCH`]), unless one of them asks to settle (a reader waits then).
async fn linger(receiver: &mut mpsc::Receiver<Message>, messages: &mut Vec<Message>) {
    let until = Instant::now() + LINGER;
    let mut seen = 0;
    while messages.len() < BATCH {
        if messages[seen..]
            .iter()
            .any(|m| matches!(m, Message::Settle(_)))
        {
            return;
        }
        seen = messages.len();
        tokio::select! {
            n = receiver.recv_many(messages, BATCH - messages.len()) => if n == 0 {
                return;
            },
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

/// Writes `batch` in one transaction; after a failure, each write on its own (so that one
/// bad record does not lose the others).
async fn store_batch(store: &Arc<dyn Store>, batch: &[CallWrite]) {
    let stored = match store.write_calls(batch).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(
                "writing {} call records at once failed ({e}); writing them one by one",
                batch.len()
            );
            let mut stored = Vec::with_capacity(batch.len());
            for write in batch {
                match store.write_calls(std::slice::from_ref(write)).await {
                    Ok(one) => stored.extend(one),
                    Err(e) => {
                        tracing::error!(run = %id_of(write), "recording a call failed: {e}");
                        stored.push(true);
                    }
                }
            }
            stored
        }
    };
    for (write, stored) in batch.iter().zip(stored) {
        if let (CallWrite::Ended { .. }, false) = (write, stored) {
            tracing::warn!(
                run = %id_of(write),
                "the run was taken over by another server while this one ran it (this server \
                 was declared dead); its end here is not recorded"
            );
        }
    }
}

fn id_of(write: &CallWrite) -> &str {
    match write {
        CallWrite::Running(run) | CallWrite::Ended { run, .. } => &run.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_store::RunFilter;

    fn call(id: &str) -> NewRun {
        NewRun {
            id: id.into(),
            namespace: "ns".into(),
            function: "echo".into(),
            mode: "sync".into(),
            status: "running".into(),
            accepted: crate::run_record::now(),
            input: Some("{}".into()),
            event: None,
            http_context: None,
            callback_url: None,
            secrets: Vec::new(),
            services: Vec::new(),
            node: None,
        }
    }

    async fn one_call(writer: &RecordWriter, store: &Arc<dyn Store>, id: &str) {
        writer.started(store, call(id)).await;
        let ended = crate::run_record::now();
        let end = InvocationEnd {
            status: "succeeded",
            ended: &ended,
            output: Some("{}"),
            ..Default::default()
        };
        writer.ended(store, id, &end, Vec::new()).await;
    }

    /// Calls ending within the linger of the first share its transaction; one ending later gets
    /// its own, which a settle writes at once (time is paused: the test's clock is tokio's).
    #[tokio::test(start_paused = true)]
    async fn records_ending_together_share_a_transaction_and_a_settle_writes_at_once() {
        let store: Arc<dyn Store> =
            Arc::new(faasbox_store_sqlite::SqliteStore::open_in_memory().unwrap());
        store
            .create_namespace("ns", &crate::run_record::now())
            .await
            .unwrap();
        let writer = RecordWriter::default();
        one_call(&writer, &store, "r0").await;
        tokio::time::sleep(LINGER / 2).await;
        one_call(&writer, &store, "r1").await;
        tokio::time::sleep(LINGER * 5).await;
        assert_eq!(writer.transactions(), 1, "r0 and r1 not in one transaction");

        one_call(&writer, &store, "r2").await;
        let settling = Instant::now();
        writer.settle().await;
        assert!(
            settling.elapsed() < LINGER,
            "the settle waited out the linger: {:?}",
            settling.elapsed()
        );
        assert_eq!(writer.transactions(), 2);
        let runs = store
            .list_runs(&RunFilter {
                namespace: "ns".into(),
                function: None,
                status: Some("succeeded".into()),
                since: None,
                before: None,
                limit: 10,
            })
            .await
            .unwrap();
        let mut ids: Vec<_> = runs.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["r0", "r1", "r2"]);
    }
}
