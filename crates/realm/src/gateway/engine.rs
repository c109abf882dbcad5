//! The engine task: the one owner of the [`Gateway`]. A thin loop (STYLE 5):
//!
//! ```text
//! select! { inputs (TCP frames, UDP datagrams, opens/closes), commit completions,
//!           sleep_until(engine.poll_timeout()), control requests, metric scrapes }
//! ```
//!
//! Each wake-up handles at most `limits.batch` inputs, folds the events of all
//! of them into ONE store batch, submits it, and keeps going: the answers of
//! those calls wait, in order, in `in_flight` until that batch's `Pending`
//! resolves (the durability contract: every event of a call is durable before
//! the call's transmits leave). Calls without events queue behind the last
//! batch in flight, so per-connection order (and the global order) holds.
//! Many requests stay in flight at once, which is what lets the store's
//! group commit work.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use realm_lease::Timestamp;
use realm_rsip::gateway::{ConnectionId, Destination, Gateway, GatewayStatus, Transmit};
use realm_store::{Batch, Committed, Pending, StatsSnapshot, Store, SubmitError, Submitter};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::clock::Clock;
use super::config::DaemonConfig;
use super::control::{self, CtlRequest};
use super::net::{Input, Outgoing};
use super::persist::{Effect, Persister};

/// Counters of the engine task (the socket tasks keep their own).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EngineCounters {
    /// Store batches submitted.
    pub(crate) batches: u64,
    /// Calls whose answers waited for a commit.
    pub(crate) held_calls: u64,
    /// Allocation log lines queued.
    pub(crate) alloc_lines: u64,
    /// Connections closed because their send queue was full.
    pub(crate) slow_readers_closed: u64,
    /// Transmits for a connection that was already gone.
    pub(crate) tcp_undeliverable: u64,
    /// UDP sends that failed (or would have blocked).
    pub(crate) udp_send_errors: u64,
    /// Sum and count of the time from submit to commit acknowledgement.
    pub(crate) commit_wait_us_sum: u64,
    /// Acknowledged batches.
    pub(crate) commit_waits: u64,
}

/// Everything a metrics scrape shows, taken on the engine task.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) status: GatewayStatus,
    pub(crate) store: StatsSnapshot,
    pub(crate) store_queued: usize,
    pub(crate) engine: EngineCounters,
    pub(crate) in_flight: usize,
    pub(crate) spis_total: u64,
    pub(crate) lease_heap_bytes: u64,
    /// None: no data plane configured.
    pub(crate) data_plane: Option<super::dataplane::DataPlaneSnapshot>,
}

/// What waits for a commit.
#[derive(Debug)]
enum Release {
    Send(Transmit),
    Close(ConnectionId),
    Reply(
        oneshot::Sender<Result<serde_json::Value, String>>,
        serde_json::Value,
    ),
}

#[derive(Debug)]
struct InFlight {
    pending: Pending<Committed>,
    releases: Vec<Release>,
    submitted: std::time::Instant,
}

/// Why the engine loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM/SIGINT.
    Signal,
}

pub(crate) struct Engine {
    gw: Gateway,
    clock: Clock,
    submitter: Submitter,
    store_stats: Box<dyn Fn() -> (StatsSnapshot, usize) + Send>,
    persister: Persister,
    batch_limit: usize,
    /// Open connections: the peer, and the send queue (dropped, which
    /// closes the connection, when the peer does not read; the entry stays
    /// until the connection task reports the close).
    conns: HashMap<ConnectionId, (SocketAddrV4, Option<mpsc::Sender<Outgoing>>)>,
    udp: Vec<Arc<UdpSocket>>,
    /// The UDP socket each host last spoke on (with several listen addresses).
    udp_route: HashMap<Ipv4Addr, usize>,
    batch: Batch,
    releases: Vec<Release>,
    in_flight: VecDeque<InFlight>,
    counters: EngineCounters,
    spis_total: u64,
    /// The data plane's binding table, kept in step with every grant and
    /// free before the host hears of it.
    data_plane: Option<Arc<super::dataplane::Shared>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("conns", &self.conns.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// The channels the engine listens on.
#[derive(Debug)]
pub(crate) struct Inputs {
    pub(crate) input: mpsc::Receiver<Input>,
    pub(crate) ctl: mpsc::Receiver<CtlRequest>,
    pub(crate) scrape: mpsc::Receiver<oneshot::Sender<Snapshot>>,
    pub(crate) stop: oneshot::Receiver<Stop>,
}

impl Engine {
    pub(crate) fn new(
        gw: Gateway,
        clock: Clock,
        store: &Arc<Store>,
        persister: Persister,
        config: &DaemonConfig,
        udp: Vec<Arc<UdpSocket>>,
    ) -> Engine {
        let addresses: u64 = u64::from(gw.status().pool.addresses);
        let [first, last] = config.gateway.spi_range;
        let spis_total = addresses * (u64::from(last.saturating_sub(first)) + 1);
        let s = Arc::clone(store);
        Engine {
            gw,
            clock,
            submitter: store.submitter(),
            store_stats: Box::new(move || (s.stats(), s.queued())),
            persister,
            batch_limit: config.limits.batch,
            conns: HashMap::new(),
            udp,
            udp_route: HashMap::new(),
            batch: Batch::new(),
            releases: Vec::new(),
            in_flight: VecDeque::new(),
            counters: EngineCounters::default(),
            spis_total,
            data_plane: None,
        }
    }

    /// Mirrors grants and frees into the data plane from now on (its table
    /// was loaded with the bindings live at start).
    pub(crate) fn set_data_plane(&mut self, shared: Arc<super::dataplane::Shared>) {
        self.data_plane = Some(shared);
    }

    /// Persists what `Gateway::restore` produced (resync and expiry events)
    /// before serving, and its asynchronous messages after.
    pub(crate) async fn start(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now();
        self.collect(now)?;
        self.persister
            .prune_quarantine(&mut self.batch, now, usize::MAX);
        self.flush().await?;
        Ok(())
    }

    /// Runs until a stop signal, then lets every batch in flight commit and
    /// sends its answers.
    pub(crate) async fn run(&mut self, mut inputs: Inputs) -> anyhow::Result<Stop> {
        // A closed channel (no metrics configured, say) is ready at once:
        // stop polling it rather than spin.
        let mut ctl_open = true;
        let mut scrape_open = true;
        let stop = loop {
            let deadline = [self.gw.poll_timeout(), self.persister.next_prune()]
                .into_iter()
                .flatten()
                .min()
                .map(|t| self.clock.deadline(t));
            let waiting = !self.in_flight.is_empty();
            tokio::select! {
                biased;
                stop = &mut inputs.stop => break stop.unwrap_or(Stop::Signal),
                done = async {
                    match self.in_flight.front_mut() {
                        Some(f) => (&mut f.pending).await,
                        None => std::future::pending().await,
                    }
                }, if waiting => {
                    self.committed(done)?;
                }
                input = inputs.input.recv() => {
                    let Some(input) = input else { break Stop::Signal };
                    let now = self.clock.now();
                    self.handle(input, now)?;
                    for _ in 1..self.batch_limit {
                        match inputs.input.try_recv() {
                            Ok(input) => self.handle(input, now)?,
                            Err(_) => break,
                        }
                    }
                    self.flush().await?;
                }
                req = inputs.ctl.recv(), if ctl_open => {
                    ctl_open = req.is_some();
                    if let Some(req) = req {
                        let now = self.clock.now();
                        let answer = control::handle(
                            &mut self.gw,
                            self.data_plane.as_deref(),
                            now,
                            &req.command,
                            &req.args,
                        );
                        self.collect(now)?;
                        match answer {
                            Ok(v) => self.releases.push(Release::Reply(req.reply, v)),
                            Err(e) => { let _ = req.reply.send(Err(e.to_string())); }
                        }
                        self.flush().await?;
                    }
                }
                tx = inputs.scrape.recv(), if scrape_open => {
                    scrape_open = tx.is_some();
                    if let Some(tx) = tx {
                        let _ = tx.send(self.snapshot());
                    }
                }
                _ = sleep_until_opt(deadline) => {
                    let now = self.clock.now();
                    self.gw.handle_timeout(now);
                    self.collect(now)?;
                    self.persister.prune_quarantine(&mut self.batch, now, 1024);
                    self.flush().await?;
                }
            }
        };
        // Drain: every batch in flight commits (the store acknowledges them
        // all at close anyway); send their answers.
        while let Some(f) = self.in_flight.front_mut() {
            let done = (&mut f.pending).await;
            self.committed(done)?;
        }
        Ok(stop)
    }

    fn snapshot(&self) -> Snapshot {
        let (store, store_queued) = (self.store_stats)();
        Snapshot {
            status: self.gw.status(),
            store,
            store_queued,
            engine: self.counters,
            in_flight: self.in_flight.len(),
            spis_total: self.spis_total,
            lease_heap_bytes: self.gw.leases().heap_estimate() as u64,
            data_plane: self.data_plane.as_ref().map(|d| d.snapshot()),
        }
    }

    fn handle(&mut self, input: Input, now: Timestamp) -> anyhow::Result<()> {
        match input {
            Input::Open { conn, from, tx } => {
                self.conns.insert(conn, (from, Some(tx)));
            }
            Input::Stream { conn, from, bytes } => {
                self.gw.handle_stream_message(now, conn, from, &bytes);
            }
            Input::FrameError { conn, from, error } => {
                // The engine answers (Appendix A); the connection closes
                // once that answer is out.
                self.gw.handle_stream_error(now, conn, from, &error);
                self.collect(now)?;
                self.releases.push(Release::Close(conn));
            }
            Input::Closed { conn } => {
                if let Some((from, _)) = self.conns.remove(&conn) {
                    self.gw.handle_connection_closed(now, conn, from);
                }
            }
            Input::Datagram {
                socket,
                from,
                bytes,
            } => {
                if self.udp.len() > 1 {
                    self.udp_route.insert(*from.ip(), socket);
                }
                self.gw.handle_datagram(now, from, &bytes);
            }
            Input::Violation { client, code } => {
                self.gw.report_violation(now, client, code);
            }
        }
        self.collect(now)
    }

    /// Drains the engine's events into the current batch, then its transmits
    /// into the current releases.
    fn collect(&mut self, now: Timestamp) -> anyhow::Result<()> {
        let mut any = false;
        while let Some(event) = self.gw.poll_event() {
            any = true;
            if let Some(dp) = &self.data_plane {
                dp.apply(&event);
            }
            let effect = self
                .persister
                .apply(&mut self.batch, &event, now)
                .context("encoding a store record")?;
            if effect == Effect::AllocLine {
                self.counters.alloc_lines += 1;
            }
        }
        if any {
            self.counters.held_calls += 1;
        }
        while let Some(t) = self.gw.poll_transmit() {
            self.releases.push(Release::Send(t));
        }
        Ok(())
    }

    /// Submits the current batch (if any) with the current releases behind
    /// it; releases without a batch go behind the last batch in flight, or
    /// now when none is.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let releases = std::mem::take(&mut self.releases);
        if self.batch.is_empty() {
            match self.in_flight.back_mut() {
                Some(last) => last.releases.extend(releases),
                None => self.release(releases),
            }
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let pending = match self.submitter.try_submit(batch) {
            Ok(p) => p,
            // The writer is behind: wait for room (the engine slows to the
            // disk's pace instead of growing memory).
            Err(SubmitError::Full(batch)) => self
                .submitter
                .submit(batch)
                .await
                .map_err(|_| anyhow::anyhow!("the store closed"))?,
            Err(_) => anyhow::bail!("the store closed"),
        };
        self.counters.batches += 1;
        self.in_flight.push_back(InFlight {
            pending,
            releases,
            submitted: realm_io::clock::now(),
        });
        Ok(())
    }

    /// The front batch committed (or failed): release its answers and those
    /// of every following batch that is already acknowledged.
    fn committed(
        &mut self,
        result: Result<Committed, realm_store::CommitError>,
    ) -> anyhow::Result<()> {
        let mut result = result;
        loop {
            let Some(front) = self.in_flight.pop_front() else {
                return Ok(());
            };
            if let Err(e) = result {
                // The engine's state is ahead of the disk and cannot be
                // rolled back: stop without sending the answers. A restart
                // rebuilds from the store; hosts resync (RFC 3103 10.2.2).
                return Err(anyhow::anyhow!(e).context("store commit failed; stopping"));
            }
            let waited = realm_io::clock::now().saturating_duration_since(front.submitted);
            self.counters.commit_wait_us_sum +=
                u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            self.counters.commit_waits += 1;
            self.release(front.releases);
            match self
                .in_flight
                .front_mut()
                .and_then(|f| f.pending.try_result())
            {
                Some(r) => result = r,
                None => return Ok(()),
            }
        }
    }

    fn release(&mut self, releases: Vec<Release>) {
        for r in releases {
            match r {
                Release::Send(t) => self.send(t),
                Release::Close(conn) => {
                    // Full queue: dropping the sender closes it as well.
                    if let Some((_, queue)) = self.conns.get_mut(&conn)
                        && queue
                            .as_ref()
                            .is_some_and(|tx| tx.try_send(Outgoing::Close).is_err())
                    {
                        *queue = None;
                    }
                }
                Release::Reply(tx, v) => {
                    let _ = tx.send(Ok(v));
                }
            }
        }
    }

    fn send(&mut self, t: Transmit) {
        match t.to {
            Destination::Tcp(conn) => {
                let Some((_, Some(tx))) = self.conns.get(&conn) else {
                    self.counters.tcp_undeliverable += 1;
                    return;
                };
                match tx.try_send(Outgoing::Bytes(t.bytes)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // A peer that does not read: drop its queue, which
                        // ends its task and closes the connection.
                        self.counters.slow_readers_closed += 1;
                        if let Some((_, queue)) = self.conns.get_mut(&conn) {
                            *queue = None;
                        }
                        tracing::info!(conn = conn.0, "closing a connection that does not read");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.counters.tcp_undeliverable += 1;
                    }
                }
            }
            Destination::Udp(to) => {
                let i = self.udp_route.get(to.ip()).copied().unwrap_or(0);
                let Some(sock) = self.udp.get(i) else {
                    self.counters.udp_send_errors += 1;
                    return;
                };
                if sock.try_send_to(&t.bytes, to.into()).is_err() {
                    self.counters.udp_send_errors += 1;
                }
            }
        }
    }

    /// The gateway, read-only (tests, shutdown report).
    pub(crate) fn gateway(&self) -> &Gateway {
        &self.gw
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// How long a scrape or control request may wait for the engine.
pub(crate) const ENGINE_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
