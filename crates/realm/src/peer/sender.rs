//! The raw sending thread of `realm peer`: protected packets that leave
//! through the `IPPROTO_RAW` socket (plain ESP and AH, and ESP-in-UDP not
//! sent from one of our NAT-T sockets) are handed, buffers and all, to a
//! thread of their own, which sends them with `sendmmsg` and hands the
//! buffers back for reuse.
//!
//! Why a thread: without UDP GSO every protected packet makes its own trip
//! through the kernel, and on a veth or loopback underlay that trip includes
//! the receiver's whole input path, run as softirq inside the sending
//! system call. In `scripts/bench-peer` (plain ESP) that was half of the
//! sending daemon's time and made its one thread the bottleneck (0.9 of a
//! core busy, the receiving daemon 0.6). On this thread the trip overlaps
//! the main loop's next TUN read and sealing. Order is kept: batches are
//! sent in the order they were submitted.
//!
//! The thread opens its socket (in the daemon's network namespace, which
//! threads inherit) blocking and outside any event loop
//! ([`BlockingRawIp`]): `sendmmsg` waits while the send buffer is full, and
//! the kernel has no readiness callback to run for every packet sent.
//! Submitting waits while [`QUEUE`] batches are in flight: backpressure,
//! never a drop.

use std::io;
use std::thread::JoinHandle;

use anyhow::Context;
use realm_io::raw::{BlockingRawIp, RawIpOptions, proto};
use tokio::sync::mpsc;

/// Batches in flight between the main loop and the thread: enough to keep
/// the thread busy while the main loop reads and seals the next one.
const QUEUE: usize = 4;

/// Sealed packets for the thread, `bufs[i][starts[i]..]`, and once sent,
/// the outcome.
#[derive(Debug, Default)]
pub(crate) struct RawBatch {
    pub(crate) bufs: Vec<Vec<u8>>,
    pub(crate) starts: Vec<usize>,
    /// Packets and bytes the kernel took, and packets lost to errors.
    pub(crate) sent: u64,
    pub(crate) bytes: u64,
    pub(crate) errors: u64,
}

impl RawBatch {
    /// Queues `buf[start..]`.
    pub(crate) fn push(&mut self, buf: Vec<u8>, start: usize) {
        self.bufs.push(buf);
        self.starts.push(start);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }
}

/// The handle the main loop keeps.
#[derive(Debug)]
pub(crate) struct RawSender {
    jobs: Option<mpsc::Sender<RawBatch>>,
    done: mpsc::UnboundedReceiver<RawBatch>,
    thread: Option<JoinHandle<()>>,
}

impl RawSender {
    /// Opens the raw socket on a new thread; fails if the socket cannot be
    /// opened.
    pub(crate) fn start(options: RawIpOptions) -> anyhow::Result<RawSender> {
        let (jobs_tx, jobs) = mpsc::channel::<RawBatch>(QUEUE);
        let (done, done_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("realm-raw-send".into())
            .spawn(move || run(&options, jobs, &done, &ready_tx))
            .context("start the raw sending thread")?;
        match ready.recv() {
            Ok(Ok(())) => Ok(RawSender {
                jobs: Some(jobs_tx),
                done: done_rx,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(anyhow::anyhow!("the raw sending thread exited at start")),
        }
    }

    /// Hands `batch` to the thread, waiting while [`QUEUE`] batches are in
    /// flight. Returns it if the thread is gone (its packets are lost).
    pub(crate) async fn submit(&mut self, batch: RawBatch) -> Result<(), RawBatch> {
        match &self.jobs {
            Some(jobs) => jobs.send(batch).await.map_err(|e| e.0),
            None => Err(batch),
        }
    }

    /// The next batch the thread has finished with (its buffers to reuse);
    /// never ready once the thread is gone.
    pub(crate) async fn finished(&mut self) -> RawBatch {
        match self.done.recv().await {
            Some(batch) => batch,
            None => std::future::pending().await,
        }
    }

    /// A finished batch, if one is waiting.
    pub(crate) fn try_finished(&mut self) -> Option<RawBatch> {
        self.done.try_recv().ok()
    }

    /// Lets the thread send what it has and waits for it to end.
    pub(crate) fn stop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    options: &RawIpOptions,
    mut jobs: mpsc::Receiver<RawBatch>,
    done: &mpsc::UnboundedSender<RawBatch>,
    ready: &std::sync::mpsc::Sender<anyhow::Result<()>>,
) {
    let socket = match BlockingRawIp::open(proto::RAW, options) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(anyhow::Error::new(e).context("raw socket for sending")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut failures = 0u64;
    while let Some(mut batch) = jobs.blocking_recv() {
        send(&socket, &mut batch, &mut failures);
        if done.send(batch).is_err() {
            break;
        }
    }
}

/// Sends the whole batch in `sendmmsg` calls, skipping (and counting) a
/// packet the kernel refuses.
fn send(socket: &BlockingRawIp, batch: &mut RawBatch, failures: &mut u64) {
    let packets: Vec<&[u8]> = batch
        .bufs
        .iter()
        .zip(&batch.starts)
        .map(|(b, &s)| b.get(s..).unwrap_or(&[]))
        .collect();
    let mut done = 0;
    while done < packets.len() {
        let failed: Option<io::Error> = match socket.send_batch(&packets[done..]) {
            Ok(k) => {
                batch.sent += k as u64;
                batch.bytes += packets[done..done + k]
                    .iter()
                    .map(|p| p.len() as u64)
                    .sum::<u64>();
                done += k;
                // packets[done] failed; the batch call reports no error for it.
                (done < packets.len()).then(|| io::Error::other("refused in a batch"))
            }
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            batch.errors += 1;
            *failures += 1;
            if super::daemon::sampled(*failures) {
                tracing::warn!(error = %e, count = *failures, "underlay send");
            }
            done += 1;
        }
    }
}
