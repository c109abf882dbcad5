//! The writer thread: it alone owns the SQLite connection. It takes every
//! batch queued, commits them in one transaction, writes their allocation log
//! lines, and only then acknowledges each (group commit).

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::alloclog::AllocLog;
use crate::clock::{monotonic_now, unix_now};
use crate::open::millis;
use crate::stats::Stats;
use crate::{Batch, CommitError, Kind, Op, StoreError};

/// What a committed batch learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The transaction's sequence number since the store was opened (from 1).
    pub commit: u64,
    /// How many batches that transaction committed (the group size).
    pub batches: usize,
}

pub(crate) type Ack<T> = oneshot::Sender<Result<T, CommitError>>;

/// Rows of one kind: (ID, value), by ascending ID.
pub(crate) type Rows = Vec<(u64, Vec<u8>)>;

/// Where a shutdown reports its outcome (nobody, when the store is dropped
/// without waiting).
pub(crate) type ShutdownReply = Option<std_mpsc::Sender<Result<(), StoreError>>>;

/// The queue's messages.
#[derive(Debug)]
pub(crate) enum Msg {
    Batch(Batch, Ack<Committed>),
    /// Wakes the writer to look at the control channel.
    Wake,
}

/// Requests that are not batches, on an unbounded side channel (followed by a
/// [`Msg::Wake`]) so they never wait behind a full queue's backpressure.
#[derive(Debug)]
pub(crate) enum Control {
    Load(Kind, std_mpsc::Sender<Result<Rows, StoreError>>),
    ReopenLog(Ack<()>),
    Shutdown(ShutdownReply),
}

pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) rx: mpsc::Receiver<Msg>,
    pub(crate) control: std_mpsc::Receiver<Control>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) log: Option<AllocLog>,
    /// Fsync the log at most this long after a line was flushed (zero: before
    /// each acknowledgement).
    pub(crate) log_sync_interval: Duration,
    /// Lines flushed but not yet fsynced.
    pub(crate) log_unsynced: bool,
    pub(crate) log_synced_at: Instant,
    pub(crate) max_group: usize,
    pub(crate) commits: u64,
}

const PUT: &str = "INSERT INTO records (kind, id, value, expires_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";
const DELETE: &str = "DELETE FROM records WHERE kind = ?1 AND id = ?2";

impl Writer {
    pub(crate) fn run(mut self) {
        let mut group: Vec<(Batch, Ack<Committed>)> = Vec::with_capacity(self.max_group);
        loop {
            while let Ok(c) = self.control.try_recv() {
                if let Err(reply) = self.handle(c) {
                    self.shutdown(reply);
                    return;
                }
            }
            match self.rx.blocking_recv() {
                // Every sender is gone (the Store was dropped): close.
                None => {
                    self.shutdown(None);
                    return;
                }
                Some(m) => push(&mut group, m),
            }
            while group.len() < self.max_group {
                match self.rx.try_recv() {
                    Ok(m) => push(&mut group, m),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
            self.sync_log_if_due();
        }
    }

    /// Handles a control request; returns `Err` to shut down.
    fn handle(&mut self, c: Control) -> Result<(), ShutdownReply> {
        match c {
            Control::Load(kind, reply) => {
                let _ = reply.send(self.load(kind));
                Ok(())
            }
            Control::ReopenLog(reply) => {
                let result = match &mut self.log {
                    Some(log) => log.reopen(),
                    None => Ok(()),
                };
                if let Err(e) = &result {
                    tracing::error!(error = %e, "allocation log reopen failed");
                }
                let _ = reply.send(result.map_err(|e| CommitError::Failed(Arc::new(e))));
                Ok(())
            }
            Control::Shutdown(reply) => Err(reply),
        }
    }

    fn load(&mut self, kind: Kind) -> Result<Rows, StoreError> {
        let f = StoreError::sqlite;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, value FROM records WHERE kind = ?1")
            .map_err(f("loading"))?;
        let mut rows = stmt.query([kind.0]).map_err(f("loading"))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(f("loading"))? {
            let id: i64 = row.get(0).map_err(f("loading"))?;
            let value: Vec<u8> = row.get(1).map_err(f("loading"))?;
            out.push((id.cast_unsigned(), value));
        }
        out.sort_unstable_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Commits the group in one transaction, logs, then acknowledges.
    fn commit(&mut self, group: &mut Vec<(Batch, Ack<Committed>)>) {
        if group.is_empty() {
            return;
        }
        let started = monotonic_now();
        let result = self.apply(group);
        let latency = monotonic_now().saturating_duration_since(started);
        let batches = group.len();
        match result {
            Ok(()) => {
                self.commits += 1;
                let (rows, bytes) = group.iter().fold((0, 0), |(r, b), (batch, _)| {
                    let (r2, b2) = batch.weight();
                    (r + r2, b + b2)
                });
                self.stats
                    .record_commit(batches as u64, rows, bytes, latency);
                self.write_log(group);
                let committed = Committed {
                    commit: self.commits,
                    batches,
                };
                for (_, ack) in group.drain(..) {
                    let _ = ack.send(Ok(committed));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batches, "store commit failed");
                self.stats.record_failure();
                let e = Arc::new(e);
                for (_, ack) in group.drain(..) {
                    let _ = ack.send(Err(CommitError::Failed(Arc::clone(&e))));
                }
            }
        }
    }

    fn apply(&mut self, group: &[(Batch, Ack<Committed>)]) -> Result<(), StoreError> {
        let f = StoreError::sqlite;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(f("beginning transaction"))?;
        {
            let mut put = tx.prepare_cached(PUT).map_err(f("preparing put"))?;
            let mut delete = tx.prepare_cached(DELETE).map_err(f("preparing delete"))?;
            for op in group.iter().flat_map(|(b, _)| &b.ops) {
                match op {
                    Op::Put {
                        kind,
                        id,
                        value,
                        expires_at,
                    } => {
                        put.execute(params![
                            kind.0,
                            id.cast_signed(),
                            value,
                            expires_at.map(millis)
                        ])
                        .map_err(f("writing"))?;
                    }
                    Op::Delete { kind, id } => {
                        delete
                            .execute(params![kind.0, id.cast_signed()])
                            .map_err(f("deleting"))?;
                    }
                }
            }
        }
        tx.commit().map_err(f("committing"))
    }

    /// Writes the group's log lines and flushes them (they survive a crash of
    /// the process), and fsyncs them if [`Writer::log_sync_interval`] is zero
    /// or has passed since the last fsync. A failing log does not fail the
    /// commit: the leases are durable and the response may go; the failure is
    /// counted and logged (see the crate doc's open points).
    fn write_log(&mut self, group: &[(Batch, Ack<Committed>)]) {
        let Some(log) = &mut self.log else {
            return;
        };
        let mut lines = 0u64;
        let mut result = Ok(());
        for event in group.iter().flat_map(|(b, _)| &b.log) {
            result = log.append(event);
            if result.is_err() {
                break;
            }
            lines += 1;
        }
        if lines == 0 && result.is_ok() {
            return;
        }
        if result.is_ok() {
            result = log.flush();
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "allocation log write failed");
        }
        self.stats.record_log(lines, result.is_ok());
        self.log_unsynced = true;
        if self.log_sync_interval.is_zero() {
            self.sync_log();
        } else {
            self.sync_log_if_due();
        }
    }

    fn sync_log_if_due(&mut self) {
        if self.log_unsynced
            && monotonic_now().saturating_duration_since(self.log_synced_at)
                >= self.log_sync_interval
        {
            self.sync_log();
        }
    }

    fn sync_log(&mut self) {
        let Some(log) = &mut self.log else {
            return;
        };
        let result = log.sync();
        if let Err(e) = &result {
            tracing::error!(error = %e, "allocation log sync failed");
        }
        self.stats.record_log(0, result.is_ok());
        self.log_unsynced = false;
        self.log_synced_at = monotonic_now();
    }

    /// Stops taking batches, commits those already queued, marks the clean
    /// shutdown, checkpoints the WAL into the database and closes.
    fn shutdown(mut self, reply: ShutdownReply) {
        self.rx.close();
        let mut group = Vec::new();
        while let Ok(m) = self.rx.try_recv() {
            push(&mut group, m);
            if group.len() >= self.max_group {
                self.commit(&mut group);
            }
        }
        self.commit(&mut group);
        let result = self.close();
        if let Err(e) = &result {
            tracing::error!(error = %e, "store did not close cleanly");
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    fn close(self) -> Result<(), StoreError> {
        let mut log_result = Ok(());
        if let Some(mut log) = self.log {
            log_result = log.sync();
        }
        let f = StoreError::sqlite;
        self.conn
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'clean_shutdown_at'",
                [millis(unix_now())],
            )
            .map_err(f("marking clean shutdown"))?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(f("checkpointing"))?;
        self.conn.close().map_err(|(_, e)| f("closing")(e))?;
        log_result
    }
}

fn push(group: &mut Vec<(Batch, Ack<Committed>)>, m: Msg) {
    match m {
        Msg::Batch(b, ack) => group.push((b, ack)),
        Msg::Wake => {}
    }
}
