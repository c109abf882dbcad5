//! The sans-IO RSIP host engine (RFC 3103 5, 6, 9, 10; RFC 3104 6.2): it
//! registers with one gateway, acquires and extends the configured bindings,
//! serves the data plane's and IKE's requests, obeys the gateway's
//! revocations and resynchronises after either side loses its state. It
//! never touches a socket or reads a clock: the `realm host` daemon feeds it
//! bytes and time and sends what it hands out.
//!
//! # Driving it
//! ```text
//! let mut host = Host::new(config, now)?;
//! loop {
//!     while let Some(bytes) = host.poll_transmit() { socket.send(&bytes) }   // all to the gateway
//!     while let Some(ev) = host.poll_event() { ... }
//!     select! {
//!         frame = socket.recv() => host.handle_message(now, &frame),         // one whole message
//!         _ = sleep_until(host.poll_timeout()) => host.handle_timeout(now),
//!     }
//! }
//! ```
//! Over TCP the daemon frames the stream with `realm_wire::rsip::StreamDecoder`
//! and calls [`Host::handle_connected`] / [`Host::handle_disconnected`]; over
//! UDP one datagram is one message and those two calls are not needed.
//!
//! # Time
//! `now` is a [`std::time::Instant`]: the host's clocks are all relative
//! (retransmission timeouts down to 12.5 ms, leases in seconds from the
//! answer's arrival, RFC 3103 9.11.3) and nothing the host knows outlives the
//! process (a rebooted host resynchronises, RFC 3103 10.2.1), so it needs
//! neither milliseconds since an epoch nor persistence.
//!
//! # Rules the engine follows
//! - **One request at a time**, in order, over both transports: the RSIP
//!   counter rules imply it over UDP (RFC 3103 10.1), and over TCP it lets an
//!   answer be matched to its request by type alone (TCP messages carry no
//!   counter). Extensions jump the queue (a lease must not lapse behind a
//!   backlog of requests).
//! - **UDP**: each request carries the host's counter n; only an answer
//!   echoing n completes it; others are stale or duplicate and ignored.
//!   Unanswered, it is retransmitted (same bytes) after 12.5, 25, 50, ... ms,
//!   7 transmissions in all; then `GatewayUnreachable` is raised and, after
//!   `retry_pause_ms`, the same message (same counter) is sent again in a
//!   new round, for as long as it takes: RFC 3103 10.1 forbids moving to
//!   n+1 before n comes back. A message echoing n that does not answer the
//!   request (another type: the gateway replayed an old "last message"
//!   buffer, e.g. after this host rebooted and reused a counter) releases n:
//!   the request is sent again with n+1.
//! - **TCP**: an ERROR_RESPONSE while a request is outstanding answers it,
//!   unless it names a bind ID the request is not about (then it is an
//!   asynchronous error, RFC 3103 10.4). After a reconnection the
//!   outstanding request is sent again; an ASSIGN whose answer was lost in
//!   the broken connection may leave a binding the host never learnt of at
//!   the gateway, until its lease ends (TCP RSIP has no transaction IDs).
//!   When nothing else goes out after a reconnection, a registered host
//!   sends a QUERY_REQUEST about the gateway's own address: a request naming
//!   the client ID, so that the gateway (restarted, or having closed its end
//!   of the old connection) ties the new connection to the registration at
//!   once rather than at the next extension; its answer raises no event.
//! - Gateway messages that fail to decode, or that only a host sends, are
//!   discarded silently and counted (RFC 3103 9.1.3).
//! - Bindings are extended at `extend_at` (2/3) of each lease; a binding whose
//!   lease ends unextended is dropped (`BindingRevoked { reason: Expired }`).
//!   A registration lapses at R = max(R, Bi) (RFC 3103 6) when no binding
//!   holds it up. After it lapsed, or after the gateway de-registered the
//!   host (DE-REGISTER_RESPONSE; then not before `retry_pause_ms`), the host
//!   registers again only when it has something to ask: configured bindings
//!   to hold, or queued requests.
//! - Configured bindings (ASSIGN, or LISTEN with `kind = "listen"`) are
//!   held for as long as the host runs: acquired
//!   after each registration, and asked for again `retry_pause_ms` after a
//!   refusal, a revocation or an expiry. A configured binding the library
//!   frees is given up for good. Configured binding `i` (0-based) is
//!   reported with `RequestId(i + 1)`.
//! - Resynchronisation (RFC 3103 10.2): ALREADY_REGISTERED to a REGISTER
//!   (this host rebooted) makes the host de-register the client ID the error
//!   carries and register again. REGISTER_FIRST or BAD_CLIENT_ID to any
//!   other request (the gateway lost the host) makes it de-register its old
//!   client ID (the answer is ignored), register again and re-acquire every
//!   binding it held, asking first for the same address, ports and SPIs,
//!   then, if refused, for what was originally asked. Three resyncs in a row
//!   without a request succeeding in between impose a `retry_pause_ms` pause.
//! - With `auth` configured (RFC 3102 3.3, `docs/signalling-auth.md`), every
//!   message is signed with a replay counter one above the last (from the
//!   floor given to [`Host::with_replay_floor`]); retransmissions over UDP
//!   are the same bytes (the gateway answers duplicates from its "last
//!   message" buffer), a re-send after a TCP reconnection is signed afresh.
//!   Gateway messages without a valid signature, or with a replay counter
//!   not above the last accepted, are discarded and counted; over UDP, an
//!   answer echoing the outstanding message counter needs only the
//!   signature (datagrams get reordered; the echo proves freshness).
//! - `shutdown` finishes the outstanding request (it cannot be abandoned
//!   under the counter rules), de-registers (which frees every binding,
//!   RFC 3103 9.4.1), then raises `Closed`; or raises it after
//!   `shutdown_timeout_ms` whatever happened.

mod answers;
mod config;
pub mod dataplane;
mod requests;
mod schedule;
mod state;
mod timer;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use realm_wire::rsip::{BindId, ClientId, Message, MessageType, QueryTuple, RsipMethod, Spi};

pub use config::{AuthConfig, BindingConfig, ConfigError, HostConfig, RetransmitConfig};
// The RSIP vocabulary the configuration uses.
pub use realm_wire::rsip::{BindingKind, Method, Transport, TunnelKind};
pub use types::{
    Binding, BindingRequest, HostError, HostEvent, HostStats, ListenRequest, QueryAnswer,
    Registration, RequestError, RequestId, Resources, RevokeReason, UnregisterReason,
};

use crate::auth::{self, ReplayCounter, SharedKey};
use answers::from_gateway;
use timer::{Timer, TimerTable};

/// Resyncs in a row (no request succeeding in between) before a pause.
const RESYNC_STREAK_LIMIT: u32 = 3;

/// The RSIP host engine. See the [module documentation](self).
#[derive(Debug)]
pub struct Host {
    config: HostConfig,
    slots: Vec<Slot>,
    registration: Option<Registration>,
    bindings: BTreeMap<BindId, Held>,
    /// Requests waiting their turn (registration and de-registration are
    /// decided by [`Host::next_op`], never queued).
    queue: VecDeque<Op>,
    outstanding: Option<Outstanding>,
    /// An old client ID to de-register before registering (RFC 3103 10.2).
    stale_client: Option<ClientId>,
    /// Register even with nothing to ask (at start and after a resync).
    register_wanted: bool,
    /// The next UDP message counter (RFC 3103 10.1: from 1, wrapping to 1).
    counter: u32,
    /// TCP: the daemon's connection is up. Always true over UDP.
    connected: bool,
    lifecycle: Lifecycle,
    resync_streak: u32,
    next_request: u64,
    timers: TimerTable,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<HostEvent>,
    stats: HostStats,
    /// Signalling authentication: the key, the last replay counter signed
    /// with, and the gateway's last one accepted.
    key: Option<SharedKey>,
    auth_sent: u64,
    auth_seen: ReplayCounter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Running,
    ShuttingDown,
    Closed,
}

/// A configured binding and where it stands.
#[derive(Debug, Clone)]
struct Slot {
    request: RequestId,
    spec: Spec,
    state: SlotState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Not held; acquired at the next registration.
    Idle,
    /// An ASSIGN is queued or outstanding.
    Pending,
    /// Held under this bind ID.
    Held(BindId),
    /// Asked for again when `Timer::Reacquire` fires.
    Waiting,
    /// Freed by the library: never acquired again.
    Retired,
}

/// Who asked for a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Configured binding number n.
    Config(usize),
    /// The library API.
    App,
}

/// What an acquisition asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    Assign(BindingRequest),
    Listen(ListenRequest),
}

impl Spec {
    fn lease_time(&self) -> Option<u32> {
        match self {
            Spec::Assign(r) => r.lease_time,
            Spec::Listen(l) => l.lease_time,
        }
    }

    fn set_lease_time(&mut self, lease: u32) {
        match self {
            Spec::Assign(r) => r.lease_time = Some(lease),
            Spec::Listen(l) => l.lease_time = Some(lease),
        }
    }
}

/// A binding the host holds, with what it takes to extend or re-acquire it.
#[derive(Debug, Clone)]
struct Held {
    binding: Binding,
    origin: Origin,
    /// What was originally asked (re-acquisition falls back to it).
    spec: Spec,
    /// `free` was called: no more extensions; gone when the FREE is answered.
    freeing: bool,
}

/// One request transaction.
#[derive(Debug, Clone)]
enum Op {
    Register,
    /// `shutdown`: this is the host's own de-registration; otherwise an old
    /// client ID being cleared (its answer is ignored, RFC 3103 10.2.2).
    Deregister {
        client_id: ClientId,
        shutdown: bool,
    },
    Acquire {
        request: RequestId,
        origin: Origin,
        spec: Box<Spec>,
        /// Asked if `spec` is refused (a resync asks for the same resources
        /// first, then for what was originally asked).
        fallback: Option<Box<Spec>>,
    },
    Extend {
        bind_id: BindId,
    },
    /// `sync`: freeing a binding the host does not hold (an answer it could
    /// not use, RFC 3103 9.9.3), no event.
    Free {
        bind_id: BindId,
        sync: bool,
    },
    Query {
        request: RequestId,
        tuples: Vec<QueryTuple>,
    },
    /// TCP: a QUERY_REQUEST (RFC 3103 9.14) sent right after a reconnection
    /// while registered with nothing else to send, so that the gateway ties
    /// the new connection to the registration at once (its client ID is the
    /// only thing that does: a restarted gateway, or one whose end of the
    /// old connection closed, adopts the connection on the first request
    /// naming the client ID from the same private address). Until then
    /// every asynchronous message the gateway has for the host (FREE_RESPONSE,
    /// DE-REGISTER_RESPONSE, an ERROR_RESPONSE reporting a violation,
    /// RFC 3103 10.4) is undeliverable, possibly for 2/3 of a lease.
    ///
    /// Why a QUERY: it is the one request that names a client ID and changes
    /// nothing at the gateway ("whether an address or network is local or
    /// remote", 9.14.1), and it needs nothing the host may lack (an EXTEND
    /// needs a binding, and would move its lease). It asks about one address
    /// the engine always knows, the gateway's own. The answer is absorbed
    /// without an event; REGISTER_FIRST or BAD_CLIENT_ID to it mean the
    /// gateway lost the host, which resynchronises as after any request
    /// (RFC 3103 10.2.2), now rather than at its next extension.
    Reattach,
}

impl Op {
    /// The library request this transaction serves, if any.
    fn app_request(&self) -> Option<RequestId> {
        match self {
            Op::Acquire {
                request,
                origin: Origin::App,
                ..
            }
            | Op::Query { request, .. } => Some(*request),
            _ => None,
        }
    }

    fn bind_id(&self) -> Option<BindId> {
        match self {
            Op::Extend { bind_id } | Op::Free { bind_id, .. } => Some(*bind_id),
            _ => None,
        }
    }

    /// The answer types (besides ERROR_RESPONSE).
    fn answer_types(&self) -> &'static [MessageType] {
        use MessageType as M;
        match self {
            Op::Register => &[M::RegisterResponse],
            Op::Deregister { .. } => &[M::DeregisterResponse],
            Op::Acquire { spec, .. } => match &**spec {
                Spec::Listen(_) => &[M::ListenResponse],
                Spec::Assign(r) => match r.resources {
                    Resources::Address => &[M::AssignResponseRsaIp],
                    Resources::Ports(_) => &[M::AssignResponseRsapIp],
                    Resources::Ipsec { .. } => &[M::AssignResponseRsipsec],
                },
            },
            // RFC 3103 9.10.3: a lease not renewed may be ended "explicitly
            // ... by sending an appropriate FREE_RESPONSE".
            Op::Extend { .. } => &[M::ExtendResponse, M::FreeResponse],
            Op::Free { .. } => &[M::FreeResponse],
            Op::Query { .. } | Op::Reattach => &[M::QueryResponse],
        }
    }
}

/// The request on the wire, kept as the RFC 3103 10.1 "last message" buffer.
#[derive(Debug, Clone)]
struct Outstanding {
    op: Op,
    bytes: Vec<u8>,
    /// The client ID the message carries (none for REGISTER_REQUEST).
    client_id: Option<ClientId>,
    /// UDP: its counter.
    counter: Option<u32>,
    /// Transmissions in this round (0 while pausing before a new round).
    attempts: u32,
}

impl Host {
    /// A host for `config`. Over UDP it sends its REGISTER_REQUEST at once
    /// (see [`Host::poll_transmit`]); over TCP once [`Host::handle_connected`]
    /// is called.
    pub fn new(config: HostConfig, now: Instant) -> Result<Host, ConfigError> {
        Host::with_replay_floor(config, now, 0)
    }

    /// [`Host::new`], signing (with `auth` configured) with replay counters
    /// above `floor`. The gateway remembers the last counter it accepted
    /// from this host across the host's reboots, so a daemon passes
    /// `realm_rsip::auth::next_send_counter(0, unix_time_ms)`: counters then
    /// keep increasing across restarts without being stored.
    pub fn with_replay_floor(
        config: HostConfig,
        now: Instant,
        floor: u64,
    ) -> Result<Host, ConfigError> {
        config.validate()?;
        let key = match &config.auth {
            Some(a) => Some(a.key().ok_or(ConfigError::AuthKey)?),
            None => None,
        };
        let mut slots = Vec::with_capacity(config.bindings.len());
        for (index, b) in config.bindings.iter().enumerate() {
            let spec = match b.kind {
                BindingKind::Assign => b.to_request().map(Spec::Assign),
                BindingKind::Listen => b.to_listen().map(Spec::Listen),
            }
            .map_err(|reason| ConfigError::Binding { index, reason })?;
            slots.push(Slot {
                request: RequestId(index as u64 + 1),
                spec,
                state: SlotState::Idle,
            });
        }
        let mut host = Host {
            next_request: slots.len() as u64 + 1,
            connected: config.transport == Transport::Udp,
            config,
            slots,
            registration: None,
            bindings: BTreeMap::new(),
            queue: VecDeque::new(),
            outstanding: None,
            stale_client: None,
            register_wanted: true,
            counter: 1,
            lifecycle: Lifecycle::Running,
            resync_streak: 0,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: HostStats::default(),
            key,
            auth_sent: floor,
            auth_seen: ReplayCounter::default(),
        };
        host.pump(now);
        Ok(host)
    }

    // ---- driving ------------------------------------------------------------

    /// The next message to send to the gateway (whole: over TCP write it to
    /// the stream, over UDP send it as one datagram).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// When [`Host::handle_timeout`] must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            self.fire(now, timer);
        }
        self.pump(now);
    }

    /// TCP: the connection to the gateway is up. The outstanding request, if
    /// any, is sent again; the queue resumes. A registered host with nothing
    /// else to send sends a QUERY_REQUEST, so that the gateway ties the
    /// connection to its registration at once (see `Op::Reattach`). Ignored
    /// over UDP.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.config.transport != Transport::Tcp || self.lifecycle == Lifecycle::Closed {
            return;
        }
        self.connected = true;
        if let Some(mut o) = self.outstanding.take() {
            // Signed: a fresh replay counter, or the gateway would refuse
            // the copy of a message it may have accepted already.
            if self.key.is_some()
                && let Some(bytes) = self.encode(&o.op, o.client_id, o.counter)
            {
                o.bytes = bytes;
            }
            o.attempts = 1;
            self.transmits.push_back(o.bytes.clone());
            self.outstanding = Some(o);
            self.stats.retransmissions += 1;
            self.arm_answer_timer(now);
        }
        self.pump(now);
        self.reattach(now);
    }

    /// TCP: the connection is down. Nothing is sent until
    /// [`Host::handle_connected`]; registration and bindings are kept (their
    /// leases run on; a gateway that dropped them answers REGISTER_FIRST and
    /// the host resynchronises). During `shutdown` this closes the host.
    /// Ignored over UDP.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if self.config.transport != Transport::Tcp || self.lifecycle == Lifecycle::Closed {
            return;
        }
        self.connected = false;
        self.transmits.clear();
        self.timers.stop(Timer::ResponseTimeout);
        if self.lifecycle == Lifecycle::ShuttingDown {
            self.close(now);
        }
    }

    /// One whole message from the gateway (a UDP datagram, or a frame cut by
    /// `StreamDecoder`).
    pub fn handle_message(&mut self, now: Instant, bytes: &[u8]) {
        if self.lifecycle == Lifecycle::Closed {
            return;
        }
        // RFC 3103 9.1.3: "An RSIP host that detects an error in a message
        // received from an RSIP gateway MUST silently discard the message."
        let Ok(msg) = Message::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if !from_gateway(msg.msg_type()) {
            self.stats.malformed += 1;
            return;
        }
        if let Some(key) = &self.key {
            // RFC 3102 3.3: "a message hash and a replay counter". A message
            // failing either is discarded like any erroneous gateway message.
            // Over UDP the gateway's messages may arrive out of order: an
            // answer echoing the outstanding message counter is fresh by
            // that echo alone (RFC 3103 10.1: the host uses n once), else a
            // reordered answer would be refused for ever, retransmissions
            // and all.
            let echoes = self.config.transport == Transport::Udp
                && msg.message_counter().is_some_and(|c| c != 0)
                && msg.message_counter() == self.outstanding.as_ref().and_then(|o| o.counter);
            let fresh = auth::verify(bytes, &msg, key)
                .ok()
                .filter(|a| echoes || self.auth_seen.check(a.counter).is_ok());
            match fresh {
                Some(a) => self.auth_seen.accept(a.counter),
                None => {
                    self.stats.unauthenticated += 1;
                    return;
                }
            }
        }
        self.on_message(now, &msg);
        self.pump(now);
    }

    // ---- accessors ----------------------------------------------------------

    /// The current registration.
    pub fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    /// The bindings held, by bind ID (those being freed included).
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values().map(|h| &h.binding)
    }

    /// One binding.
    pub fn binding(&self, bind_id: BindId) -> Option<&Binding> {
        self.bindings.get(&bind_id).map(|h| &h.binding)
    }

    /// The binding that holds public `port` on `address`, if any.
    pub fn binding_for_port(&self, address: IpAddr, port: u16) -> Option<&Binding> {
        self.bindings().find(|b| {
            b.public_address() == Some(address)
                && (b.method == RsipMethod::RsaIp || b.local_ports.contains(port))
        })
    }

    /// The binding that holds `spi`, if any.
    pub fn binding_for_spi(&self, spi: Spi) -> Option<&Binding> {
        self.bindings().find(|b| b.spis.contains(&spi))
    }

    /// Requests waiting to be sent (the outstanding one excluded).
    pub fn queued_requests(&self) -> usize {
        self.queue.len()
    }

    /// Counters.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// True once [`HostEvent::Closed`] was raised.
    pub fn is_closed(&self) -> bool {
        self.lifecycle == Lifecycle::Closed
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counter_wraps_to_one_not_zero() {
        let gateway = "10.0.0.1:4555".parse().unwrap();
        let mut config = HostConfig::new(gateway);
        config.transport = Transport::Udp;
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut host = Host::new(config, now).unwrap();
        assert_eq!(
            host.poll_transmit(),
            Some(Message::register_request(Some(1)).to_bytes())
        );
        let fp = realm_wire::rsip::FlowPolicy {
            local: realm_wire::rsip::LocalFlowPolicy::Macro,
            remote: realm_wire::rsip::RemoteFlowPolicy::None,
        };
        let answer = Message::register_response(ClientId(1), 600, fp, Some(1), &[], &[]).unwrap();
        host.handle_message(now, &answer.to_bytes());
        host.counter = u32::MAX;
        host.query(now, IpAddr::from([10, 0, 0, 2])).unwrap();
        let sent = Message::parse(&host.poll_transmit().unwrap()).unwrap();
        assert_eq!(sent.message_counter(), Some(u32::MAX));
        let answer = Message::query_response(ClientId(1), Some(u32::MAX), &[]).unwrap();
        host.handle_message(now, &answer.to_bytes());
        host.query(now, IpAddr::from([10, 0, 0, 2])).unwrap();
        let sent = Message::parse(&host.poll_transmit().unwrap()).unwrap();
        assert_eq!(sent.message_counter(), Some(1));
    }
}
