//! The gateway's sockets: the TCP accept loop, one task per connection
//! (framing with `StreamDecoder`, its bounded send queue, its limits) and one
//! receive task per UDP socket. They hand bytes to the engine task over one
//! bounded channel and never touch engine state.
//!
//! Limits (STYLE 9, `docs/gateway-config.md` `[limits]`): connections in
//! total and per source address; a message size cap (a longer overall length
//! is fatal for the connection: ERROR_RESPONSE BAD_MESSAGE, then close); a
//! time limit for a message to complete once started, for the first byte of
//! a new connection and (optionally) between messages; a token bucket per
//! connection (reads pause) and per UDP source address with a per-port share
//! (`realm_rsip::gateway::SourceLimiter`; excess dropped); a bounded send
//! queue per connection (a peer that does not read is disconnected by the
//! engine rather than waited for). A connection's read buffer exists only
//! once it has sent something, and freed heap is handed back to the system
//! after connections close in numbers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use realm_rsip::gateway::{Admission, ConnectionId, SourceLimiter, TokenBucket};
use realm_wire::rsip::{FrameError, StreamDecoder};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::config::Limits;

/// What the socket tasks hand the engine.
#[derive(Debug)]
pub(crate) enum Input {
    /// A connection was accepted; `tx` is its send queue.
    Open {
        conn: ConnectionId,
        from: SocketAddrV4,
        tx: mpsc::Sender<Outgoing>,
    },
    /// One framed message from a connection.
    Stream {
        conn: ConnectionId,
        from: SocketAddrV4,
        bytes: Vec<u8>,
    },
    /// A fatal framing error: the engine answers it (after everything sent
    /// before), then the connection closes.
    FrameError {
        conn: ConnectionId,
        from: SocketAddrV4,
        error: FrameError,
    },
    /// The connection is gone (either side closed it).
    Closed { conn: ConnectionId },
    /// A datagram on UDP socket `socket`.
    Datagram {
        socket: usize,
        from: SocketAddrV4,
        bytes: Vec<u8>,
    },
    /// The data plane dropped a packet of this host for misusing its leases
    /// (already rate-limited): answer with an ERROR_RESPONSE (RFC 3103 10.4).
    Violation {
        client: realm_lease::ClientId,
        code: realm_wire::rsip::ErrorCode,
    },
}

/// What the engine queues for a connection.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// One whole message.
    Bytes(Vec<u8>),
    /// Close after what was queued before.
    Close,
}

/// Counters the socket tasks keep (read by the metrics).
#[derive(Debug, Default)]
pub(crate) struct NetCounters {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) frame_errors: AtomicU64,
    pub(crate) message_timeouts: AtomicU64,
    /// Connections closed for sending nothing (first byte, or between
    /// messages).
    pub(crate) idle_timeouts: AtomicU64,
    /// Connections closed since the heap was last trimmed.
    closed_since_trim: AtomicU64,
    pub(crate) tcp_throttled: AtomicU64,
    pub(crate) udp_received: AtomicU64,
    pub(crate) udp_dropped_rate: AtomicU64,
    pub(crate) udp_dropped_size: AtomicU64,
    /// Datagrams over their source port's share of the address's rate.
    pub(crate) udp_dropped_port: AtomicU64,
    /// Source addresses the UDP limiter evicted to make room.
    pub(crate) udp_limiter_evictions: AtomicU64,
    /// Datagrams the kernel dropped at the UDP sockets (receive buffer full).
    pub(crate) udp_socket_drops: AtomicU64,
}

/// Open connections per source address, shared by the accept loop and the
/// connection tasks.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Accepts connections until the task is aborted.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    input: mpsc::Sender<Input>,
    limits: Limits,
    counters: Arc<NetCounters>,
    next_conn: Arc<AtomicU64>,
) {
    let per_address: PerAddress = Arc::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let SocketAddr::V4(from) = peer else {
            continue; // RSIP hosts are IPv4 here; an IPv6 peer is dropped.
        };
        let open = counters.connections_open.load(Relaxed) as usize;
        let admitted = open < limits.max_connections && {
            let mut map = per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(peer.ip()).or_default();
            if *n < limits.max_connections_per_address {
                *n += 1;
                true
            } else {
                false
            }
        };
        if !admitted {
            counters.connections_refused.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "connection refused: limit reached");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = ConnectionId(next_conn.fetch_add(1, Relaxed));
        let (tx, rx) = mpsc::channel(limits.send_queue);
        counters.connections_accepted.fetch_add(1, Relaxed);
        counters.connections_open.fetch_add(1, Relaxed);
        if input.send(Input::Open { conn, from, tx }).await.is_err() {
            return; // the engine stopped
        }
        let input = input.clone();
        let limits = limits.clone();
        let counters = Arc::clone(&counters);
        let per_address = Arc::clone(&per_address);
        tokio::spawn(async move {
            let why = serve(stream, conn, from, rx, &input, &limits, &counters).await;
            tracing::debug!(conn = conn.0, %from, why, "connection closed");
            counters.connections_open.fetch_sub(1, Relaxed);
            {
                let mut map = per_address.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = map.get_mut(&IpAddr::V4(*from.ip())) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        map.remove(&IpAddr::V4(*from.ip()));
                    }
                }
            }
            let _ = input.send(Input::Closed { conn }).await;
            // Buffers of closed connections go back to the system, not only
            // to the allocator: after many connections close, or the last.
            let closed = counters.closed_since_trim.fetch_add(1, Relaxed) + 1;
            if closed >= TRIM_EVERY || counters.connections_open.load(Relaxed) == 0 {
                counters.closed_since_trim.store(0, Relaxed);
                realm_io::release_free_heap();
            }
        });
    }
}

/// One connection: a writer task drains what the engine queues while this
/// task reads frames to the engine (so a reader paused by the rate limit or
/// by the engine's backpressure still sends answers). Returns why it ended.
async fn serve(
    stream: TcpStream,
    conn: ConnectionId,
    from: SocketAddrV4,
    rx: mpsc::Receiver<Outgoing>,
    input: &mpsc::Sender<Input>,
    limits: &Limits,
    counters: &NetCounters,
) -> &'static str {
    let (mut r, w) = stream.into_split();
    let mut writer = tokio::spawn(write_loop(w, rx));
    let why = tokio::select! {
        why = read_loop(&mut r, conn, from, input, limits, counters) => why,
        done = &mut writer => return done.unwrap_or("writer failed"),
    };
    if why == FRAME_ERROR {
        // The engine queues the ERROR_RESPONSE and then Close: let the
        // writer send them (bounded: a peer that does not read is cut off).
        return match tokio::time::timeout(Duration::from_secs(5), &mut writer).await {
            Ok(done) => done.unwrap_or("writer failed"),
            Err(_) => {
                writer.abort();
                why
            }
        };
    }
    writer.abort();
    why
}

const FRAME_ERROR: &str = "framing error";

/// Connections closed between two trims of the heap.
const TRIM_EVERY: u64 = 1024;

/// Bytes read from a connection at once.
const READ_BUFFER: usize = 16 * 1024;

/// Writes what the engine queues until Close, a write error, or the engine
/// dropping the queue (slow reader, or the gateway stopping).
async fn write_loop(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
) -> &'static str {
    while let Some(out) = rx.recv().await {
        match out {
            Outgoing::Bytes(bytes) => {
                if w.write_all(&bytes).await.is_err() {
                    return "write failed";
                }
            }
            Outgoing::Close => {
                let _ = w.shutdown().await;
                return "closed by the gateway";
            }
        }
    }
    "send queue dropped"
}

/// Reads frames to the engine until end of stream, an error, a message
/// timeout or a fatal framing error (reported to the engine first).
async fn read_loop(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    conn: ConnectionId,
    from: SocketAddrV4,
    input: &mpsc::Sender<Input>,
    limits: &Limits,
    counters: &NetCounters,
) -> &'static str {
    let mut decoder = StreamDecoder::new(limits.max_message_size);
    // Allocated when the first bytes arrive: a connection that never sends
    // costs no buffer while it waits for its first-message timeout.
    let mut buf: Vec<u8> = Vec::new();
    let mut bucket = TokenBucket::new(limits.burst, Instant::now().into_std());
    let message_timeout = Duration::from_secs(limits.message_timeout_secs);
    let idle_timeout =
        (limits.idle_timeout_secs > 0).then(|| Duration::from_secs(limits.idle_timeout_secs));
    // When the oldest incomplete message started.
    let mut partial_since: Option<Instant> = None;
    // Until the first byte: the first-message deadline; then the idle one.
    let mut quiet_until =
        Some(Instant::now() + Duration::from_secs(limits.first_message_timeout_secs));
    loop {
        let (timeout, partial) = match partial_since {
            Some(t) => (Some(t + message_timeout), true),
            None => (quiet_until, false),
        };
        tokio::select! {
            ready = r.readable() => if ready.is_err() {
                return "read failed";
            },
            _ = sleep_until_opt(timeout) => {
                if partial {
                    counters.message_timeouts.fetch_add(1, Relaxed);
                    return "message timeout";
                }
                counters.idle_timeouts.fetch_add(1, Relaxed);
                return "idle timeout";
            }
        }
        if buf.is_empty() {
            buf = vec![0u8; READ_BUFFER];
        }
        let n = match r.try_read(&mut buf) {
            Ok(0) => return "end of stream",
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return "read failed",
        };
        quiet_until = idle_timeout.map(|d| Instant::now() + d);
        let mut data = buf.get(..n).unwrap_or(&[]);
        while !data.is_empty() {
            let took = decoder.push(data);
            data = data.get(took..).unwrap_or(&[]);
            loop {
                let frame = match decoder.next_frame() {
                    Ok(Some(f)) => f.to_vec(),
                    Ok(None) => break,
                    Err(e) => {
                        counters.frame_errors.fetch_add(1, Relaxed);
                        let error = Input::FrameError {
                            conn,
                            from,
                            error: e,
                        };
                        let _ = input.send(error).await;
                        return FRAME_ERROR;
                    }
                };
                if !bucket.take(
                    limits.messages_per_sec,
                    limits.burst,
                    Instant::now().into_std(),
                ) {
                    counters.tcp_throttled.fetch_add(1, Relaxed);
                    tokio::time::sleep(bucket.wait(limits.messages_per_sec)).await;
                    let _ = bucket.take(
                        limits.messages_per_sec,
                        limits.burst,
                        Instant::now().into_std(),
                    );
                }
                if input
                    .send(Input::Stream {
                        conn,
                        from,
                        bytes: frame,
                    })
                    .await
                    .is_err()
                {
                    return "gateway stopping";
                }
            }
        }
        partial_since = match (decoder.buffered(), partial_since) {
            (0, _) => None,
            (_, Some(t)) => Some(t),
            (_, None) => Some(Instant::now()),
        };
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Receives datagrams on one UDP socket until the task is aborted. The rate
/// limit is the engine crate's (per source address, a share per port, a
/// bounded table); once a second the kernel's drop count of the socket is
/// read into the counters.
pub(crate) async fn udp_loop(
    socket: Arc<UdpSocket>,
    index: usize,
    input: mpsc::Sender<Input>,
    limits: Limits,
    counters: Arc<NetCounters>,
) {
    let mut limiter = SourceLimiter::new(limits.udp_rate());
    let mut evicted = 0;
    let mut drops = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = tokio::select! {
            got = socket.recv_from(&mut buf) => match got {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
            _ = tick.tick() => {
                if let Ok(now) = realm_io::socket::socket_drops(&*socket) {
                    counters.udp_socket_drops.fetch_add(now.saturating_sub(drops), Relaxed);
                    drops = now;
                }
                continue;
            }
        };
        counters.udp_received.fetch_add(1, Relaxed);
        let SocketAddr::V4(from) = peer else { continue };
        if n > limits.max_message_size {
            counters.udp_dropped_size.fetch_add(1, Relaxed);
            continue;
        }
        let admission = limiter.admit(realm_io::clock::now(), from);
        counters
            .udp_limiter_evictions
            .fetch_add(limiter.evicted() - evicted, Relaxed);
        evicted = limiter.evicted();
        match admission {
            Admission::Pass => {}
            Admission::AddressLimit => {
                counters.udp_dropped_rate.fetch_add(1, Relaxed);
                continue;
            }
            Admission::PortLimit => {
                counters.udp_dropped_port.fetch_add(1, Relaxed);
                continue;
            }
        }
        let bytes = buf.get(..n).unwrap_or(&[]).to_vec();
        let msg = Input::Datagram {
            socket: index,
            from,
            bytes,
        };
        if input.send(msg).await.is_err() {
            return;
        }
    }
}
