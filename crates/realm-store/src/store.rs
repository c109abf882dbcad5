//! The [`Store`] handle: open, submit batches, load, stats, close.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use realm_lease::Timestamp;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::alloclog::AllocLog;
use crate::stats::Stats;
use crate::writer::{Control, Msg, Writer};
use crate::{
    Batch, CommitError, Committed, Durability, Kind, OpenReport, StatsSnapshot, StoreError,
};

/// A batch could not be queued. The batch comes back to the caller.
#[derive(Debug, Error)]
pub enum SubmitError {
    /// The queue is full ([`crate::Options::queue_capacity`] batches wait
    /// already): back off, or use the waiting `submit`.
    #[error("store queue is full")]
    Full(Batch),
    /// The writer has stopped: nothing more can be made durable.
    #[error("store writer has stopped")]
    Closed(Batch),
}

impl SubmitError {
    /// The batch that was not queued.
    pub fn into_batch(self) -> Batch {
        match self {
            SubmitError::Full(b) | SubmitError::Closed(b) => b,
        }
    }
}

/// How to open a store. `Options::default()` is `Durability::Normal`, a queue
/// of 4096 batches, at most 1024 batches per transaction, no allocation log
/// (fsynced every second when there is one), expiry counted against the wall
/// clock, nothing pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// What an acknowledged commit survives.
    pub durability: Durability,
    /// Batches that may wait for the writer (the backpressure bound): when
    /// full, [`Submitter::try_submit`] returns [`SubmitError::Full`] and
    /// [`Submitter::submit`] waits. Minimum 1.
    pub queue_capacity: usize,
    /// The most batches one transaction commits (bounds a commit's latency
    /// and size). Minimum 1.
    pub max_group: usize,
    /// The allocation log file, if any (see [`crate::alloclog`]). It must be
    /// in an existing directory.
    pub alloc_log: Option<PathBuf>,
    /// Log lines are always flushed to the OS before their batch is
    /// acknowledged (they survive a crash of the process); they are fsynced
    /// (to survive a power loss) at most this long afterwards, and at reopen
    /// and close. Zero: fsync before every acknowledgement, which costs a
    /// file-size (metadata) sync per commit on an append-only file: see the
    /// bench. Default 1 s, in both durability modes.
    pub alloc_log_sync: Duration,
    /// The time expired rows are counted against in the [`OpenReport`]
    /// (milliseconds since the UNIX epoch, as the gateway's timestamps);
    /// `None`: the wall clock.
    pub now: Option<Timestamp>,
    /// Delete rows whose expiry is at or before `now` when opening. Off by
    /// default: the lease manager restores lapsed bindings and expires them
    /// itself (telling the host, logging the expiry).
    pub prune_expired: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::Normal,
            queue_capacity: 4096,
            max_group: 1024,
            alloc_log: None,
            alloc_log_sync: Duration::from_secs(1),
            now: None,
            prune_expired: false,
        }
    }
}

impl Options {
    /// The defaults with `durability`.
    pub fn new(durability: Durability) -> Options {
        Options {
            durability,
            ..Options::default()
        }
    }
}

/// The completion of a queued batch (or of a log reopen): resolves once the
/// transaction that contains the batch has committed (and its log lines were
/// written), or failed.
///
/// `.await` it from async code (it is a `tokio::sync::oneshot` receiver
/// inside, runtime-agnostic: it never blocks a thread), or [`Pending::wait`]
/// from a plain thread. Dropping it does not cancel the batch.
#[derive(Debug)]
#[must_use = "a batch is durable only once its Pending resolves"]
pub struct Pending<T> {
    rx: oneshot::Receiver<Result<T, CommitError>>,
}

impl<T> Pending<T> {
    /// Blocks the thread until the outcome is known. Not from async code (it
    /// panics inside a Tokio runtime): `.await` instead.
    pub fn wait(self) -> Result<T, CommitError> {
        self.rx.blocking_recv().unwrap_or(Err(CommitError::Closed))
    }

    /// The outcome if known already.
    pub fn try_result(&mut self) -> Option<Result<T, CommitError>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(CommitError::Closed)),
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, CommitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(CommitError::Closed)))
    }
}

/// A cloneable, `Send + Sync` handle that queues batches: give one to each
/// task or thread that produces changes. It keeps nothing open by itself:
/// after [`Store::close`] its submits fail with [`SubmitError::Closed`].
#[derive(Clone, Debug)]
pub struct Submitter {
    tx: mpsc::Sender<Msg>,
}

impl Submitter {
    /// Queues `batch` if there is room, without waiting.
    pub fn try_submit(&self, batch: Batch) -> Result<Pending<Committed>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        match self.tx.try_send(Msg::Batch(batch, ack)) {
            Ok(()) => Ok(Pending { rx }),
            Err(mpsc::error::TrySendError::Full(m)) => Err(SubmitError::Full(unwrap(m))),
            Err(mpsc::error::TrySendError::Closed(m)) => Err(SubmitError::Closed(unwrap(m))),
        }
    }

    /// Queues `batch`, waiting (asynchronously) while the queue is full.
    pub async fn submit(&self, batch: Batch) -> Result<Pending<Committed>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        match self.tx.send(Msg::Batch(batch, ack)).await {
            Ok(()) => Ok(Pending { rx }),
            Err(mpsc::error::SendError(m)) => Err(SubmitError::Closed(unwrap(m))),
        }
    }

    /// Queues `batch`, blocking the thread while the queue is full. Not from
    /// async code (it panics inside a Tokio runtime): use [`Submitter::submit`].
    pub fn submit_blocking(&self, batch: Batch) -> Result<Pending<Committed>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        match self.tx.blocking_send(Msg::Batch(batch, ack)) {
            Ok(()) => Ok(Pending { rx }),
            Err(mpsc::error::SendError(m)) => Err(SubmitError::Closed(unwrap(m))),
        }
    }

    /// Queues `batch` and blocks until it is durable. Not from async code.
    pub fn commit_blocking(&self, batch: Batch) -> Result<Committed, CommitError> {
        match self.submit_blocking(batch) {
            Ok(p) => p.wait(),
            Err(_) => Err(CommitError::Closed),
        }
    }

    /// Batches waiting in the queue now (a gauge).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Wakes the writer every `interval` so that it fsyncs the allocation log
/// even when no batch comes. Ends at the first wake after the writer stopped.
fn spawn_ticker(tx: mpsc::Sender<Msg>, interval: Duration, path: &Path) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("realm-store-tick".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Msg::Wake) {
                    return;
                }
            }
        })
        .map(drop)
        .map_err(StoreError::io("starting ticker thread for", path))
}

fn unwrap(m: Msg) -> Batch {
    match m {
        Msg::Batch(b, _) => b,
        Msg::Wake => Batch::default(),
    }
}

/// The crash-safe lease store: a SQLite file in WAL mode written by one
/// group-committing thread. See the crate doc.
#[derive(Debug)]
pub struct Store {
    submitter: Submitter,
    control: std_mpsc::Sender<Control>,
    stats: Arc<Stats>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
    instance_id: u64,
    durability: Durability,
}

impl Store {
    /// Opens the store at `path` with default [`Options`] and `durability`.
    pub fn open(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<(Store, OpenReport), StoreError> {
        Store::open_with(path, &Options::new(durability))
    }

    /// Opens (creating it if missing, replacing it if corrupt: see
    /// [`OpenReport`]) the store at `path` and starts its writer thread.
    ///
    /// Errors (nothing on disk changed): the directory is missing, the path is
    /// not a file, another process holds the store ([`StoreError::Locked`]),
    /// or an I/O or permission error. Blocking: call it before starting the
    /// runtime or from `spawn_blocking`. It runs `PRAGMA quick_check`, which
    /// reads the whole file.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &Options,
    ) -> Result<(Store, OpenReport), StoreError> {
        let path = path.as_ref();
        let now = options.now.unwrap_or_else(crate::clock::unix_now);
        let log = options.alloc_log.as_ref().map(AllocLog::open).transpose()?;
        let (conn, report) =
            crate::open::open(path, options.durability, now, options.prune_expired)?;
        tracing::info!(report = %report, "store opened");
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let (control, control_rx) = std_mpsc::channel();
        let stats = Arc::new(Stats::default());
        if log.is_some() && !options.alloc_log_sync.is_zero() {
            spawn_ticker(tx.clone(), options.alloc_log_sync, path)?;
        }
        let writer = Writer {
            conn,
            rx,
            control: control_rx,
            stats: Arc::clone(&stats),
            log,
            log_sync_interval: options.alloc_log_sync,
            log_unsynced: false,
            log_synced_at: crate::clock::monotonic_now(),
            max_group: options.max_group.max(1),
            commits: 0,
        };
        let handle = std::thread::Builder::new()
            .name("realm-store-writer".into())
            .spawn(move || writer.run())
            .map_err(StoreError::io("starting writer thread for", path))?;
        let store = Store {
            submitter: Submitter { tx },
            control,
            stats,
            writer: Some(handle),
            path: path.to_path_buf(),
            instance_id: report.instance_id,
            durability: options.durability,
        };
        Ok((store, report))
    }

    /// A handle for queueing batches from other tasks or threads.
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// [`Submitter::try_submit`].
    pub fn try_submit(&self, batch: Batch) -> Result<Pending<Committed>, SubmitError> {
        self.submitter.try_submit(batch)
    }

    /// [`Submitter::submit`].
    pub async fn submit(&self, batch: Batch) -> Result<Pending<Committed>, SubmitError> {
        self.submitter.submit(batch).await
    }

    /// [`Submitter::submit_blocking`].
    pub fn submit_blocking(&self, batch: Batch) -> Result<Pending<Committed>, SubmitError> {
        self.submitter.submit_blocking(batch)
    }

    /// [`Submitter::commit_blocking`].
    pub fn commit_blocking(&self, batch: Batch) -> Result<Committed, CommitError> {
        self.submitter.commit_blocking(batch)
    }

    /// Every row of `kind`, by ascending ID: it sees every batch acknowledged
    /// before the call. Blocking (it waits for the writer's current commit):
    /// meant for startup.
    pub fn load_all(&self, kind: Kind) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let (reply, rx) = std_mpsc::channel();
        self.send_control(Control::Load(kind, reply))?;
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Every row of `kind` decoded from JSON, by ascending ID. Fails on the
    /// first row that does not decode, naming it ([`StoreError::Decode`]).
    pub fn load_json<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(u64, T)>, StoreError> {
        self.load_all(kind)?
            .into_iter()
            .map(|(id, bytes)| {
                serde_json::from_slice(&bytes)
                    .map(|v| (id, v))
                    .map_err(|source| StoreError::Decode { kind, id, source })
            })
            .collect()
    }

    /// Starts a new allocation log file at the same path (after a log rotator
    /// renamed the old one; call it on SIGHUP). Lines of commits before this
    /// are in the old file. Resolves like a batch; no-op without a log.
    pub fn reopen_alloc_log(&self) -> Result<Pending<()>, StoreError> {
        let (ack, rx) = oneshot::channel();
        self.send_control(Control::ReopenLog(ack))?;
        Ok(Pending { rx })
    }

    /// The counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Batches waiting in the queue now.
    pub fn queued(&self) -> usize {
        self.submitter.queued()
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The gateway instance ID (see [`OpenReport::instance_id`]).
    pub fn instance_id(&self) -> u64 {
        self.instance_id
    }

    /// The durability it was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Stops taking batches, commits those queued (acknowledging them), marks
    /// a clean shutdown, checkpoints, closes the file and joins the writer.
    /// Blocks the thread for that long (fine at shutdown, even on a runtime
    /// thread). Dropping the store does the same and logs errors.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.writer.take() else {
            return Ok(());
        };
        let (reply, rx) = std_mpsc::channel();
        let sent = self.send_control(Control::Shutdown(Some(reply)));
        let result = match sent {
            Ok(()) => rx.recv().unwrap_or(Err(StoreError::Closed)),
            Err(e) => Err(e),
        };
        if handle.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
        result
    }

    fn send_control(&self, c: Control) -> Result<(), StoreError> {
        self.control.send(c).map_err(|_| StoreError::Closed)?;
        // If the queue is full the writer is busy and looks at the control
        // channel after its current commit anyway.
        let _ = self.submitter.tx.try_send(Msg::Wake);
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "store close failed");
        }
    }
}
