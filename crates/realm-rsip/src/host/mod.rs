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

mod config;
pub mod dataplane;
mod timer;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use realm_wire::rsip::{
    Address, BindId, ClientId, DecodeError, ErrorCode, Flow, Message, MessageType, Ports,
    QueryTuple, RequestOptions, RsipMethod, Spi, Spis, TunnelType, View,
};

pub use config::{
    AuthConfig, BindingConfig, BindingKind, ConfigError, HostConfig, MethodConfig,
    RetransmitConfig, Transport, TunnelTypeConfig,
};
pub use types::{
    Binding, BindingRequest, HostError, HostEvent, HostStats, ListenRequest, QueryAnswer,
    Registration, RequestError, RequestId, Resources, RevokeReason, UnregisterReason,
};

use crate::auth::{self, ReplayCounter, SharedKey};
use config::ip_address;
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
            Op::Query { .. } => &[M::QueryResponse],
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
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// When [`Host::handle_timeout`] must be called next, if ever.
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
    /// any, is sent again; the queue resumes. Ignored over UDP.
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

    // ---- library API --------------------------------------------------------

    /// Asks for a binding. The answer is a [`HostEvent::BindingGranted`] whose
    /// binding carries the returned `RequestId`, or a
    /// [`HostEvent::RequestFailed`].
    pub fn request(&mut self, now: Instant, req: BindingRequest) -> Result<RequestId, HostError> {
        let spec = Box::new(Spec::Assign(req));
        check(&build_acquire(&spec, ClientId(0), Some(1)))?;
        let request = self.admit()?;
        self.queue.push_back(Op::Acquire {
            request,
            origin: Origin::App,
            spec,
            fallback: None,
        });
        self.pump(now);
        Ok(request)
    }

    /// RSAP-IP: `count` ports, any (the gateway picks a block).
    pub fn request_ports(&mut self, now: Instant, count: u8) -> Result<RequestId, HostError> {
        self.request(now, BindingRequest::ports(count))
    }

    /// RSAP-IP: these ports (`Ports::Range` or `Ports::List`).
    pub fn request_specific_ports(
        &mut self,
        now: Instant,
        ports: Ports,
    ) -> Result<RequestId, HostError> {
        self.request(now, BindingRequest::specific_ports(ports))
    }

    /// RSIPSEC: SPIs, "don't care" (`Spis::DontCare { count }`) or suggested,
    /// no ports (RFC 3104 6.2).
    pub fn request_spis(&mut self, now: Instant, spis: Spis) -> Result<RequestId, HostError> {
        self.request(now, BindingRequest::spis(spis))
    }

    /// LISTEN_REQUEST (RFC 3103 9.16): the answer is a `BindingGranted` with
    /// `listen: true`, or `RequestFailed`.
    pub fn listen(&mut self, now: Instant, req: ListenRequest) -> Result<RequestId, HostError> {
        let spec = Box::new(Spec::Listen(req));
        check(&build_acquire(&spec, ClientId(0), Some(1)))?;
        let request = self.admit()?;
        self.queue.push_back(Op::Acquire {
            request,
            origin: Origin::App,
            spec,
            fallback: None,
        });
        self.pump(now);
        Ok(request)
    }

    /// Is `ip` local (reach it directly) or remote (through RSIP)? The answer
    /// is a [`HostEvent::QueryAnswered`] (see [`QueryAnswer::is_local`]).
    pub fn query(&mut self, now: Instant, ip: IpAddr) -> Result<RequestId, HostError> {
        self.query_tuples(now, vec![QueryTuple::address(ip_address(ip))])
    }

    /// Is this network local? `netmask` is an IPv4 netmask, or for an IPv6
    /// network an IPv6 address used as mask.
    pub fn query_network(
        &mut self,
        now: Instant,
        network: IpAddr,
        netmask: IpAddr,
    ) -> Result<RequestId, HostError> {
        let mask = match netmask {
            IpAddr::V4(m) => Address::Ipv4Netmask(m),
            IpAddr::V6(m) => Address::Ipv6(m),
        };
        self.query_tuples(now, vec![QueryTuple::network(ip_address(network), mask)])
    }

    /// A QUERY_REQUEST with these tuples (none: "everything the gateway is
    /// willing to tell", RFC 3103 9.14.3).
    pub fn query_tuples(
        &mut self,
        now: Instant,
        tuples: Vec<QueryTuple>,
    ) -> Result<RequestId, HostError> {
        check(&Message::query_request(ClientId(0), Some(1), &tuples))?;
        let request = self.admit()?;
        self.queue.push_back(Op::Query { request, tuples });
        self.pump(now);
        Ok(request)
    }

    /// Asks the gateway now to extend a binding's lease (RFC 3103 9.10), as
    /// the engine does by itself at `extend_at` of each lease. `lease_time`,
    /// if given, becomes the lease suggested for this binding from now on
    /// (this and every later EXTEND_REQUEST). The answer is a
    /// [`HostEvent::BindingExtended`]; or, when the gateway refuses, a
    /// [`HostEvent::GatewayError`] naming the binding (it is kept until its
    /// lease ends, RFC 3103 9.10.3) or a [`HostEvent::BindingRevoked`]
    /// (BAD_BIND_ID, or an answering FREE_RESPONSE). An extension already
    /// waiting is not queued twice.
    pub fn extend(
        &mut self,
        now: Instant,
        bind_id: BindId,
        lease_time: Option<u32>,
    ) -> Result<(), HostError> {
        if self.lifecycle != Lifecycle::Running {
            return Err(HostError::ShuttingDown);
        }
        let held = match self.bindings.get_mut(&bind_id) {
            Some(h) if !h.freeing => h,
            _ => return Err(HostError::UnknownBinding(bind_id)),
        };
        if let Some(lease) = lease_time {
            held.spec.set_lease_time(lease);
        }
        let queued = self
            .queue
            .iter()
            .any(|op| matches!(op, Op::Extend { bind_id: b } if *b == bind_id));
        if !queued {
            // Extensions jump the queue (module doc).
            self.queue.push_front(Op::Extend { bind_id });
        }
        self.pump(now);
        Ok(())
    }

    /// Frees a binding: stop using it now. `BindingRevoked { reason: Freed }`
    /// follows once the gateway answered (whatever it answered: an error
    /// means it did not hold the binding either).
    pub fn free(&mut self, now: Instant, bind_id: BindId) -> Result<(), HostError> {
        if self.lifecycle != Lifecycle::Running {
            return Err(HostError::ShuttingDown);
        }
        let held = match self.bindings.get_mut(&bind_id) {
            Some(h) if !h.freeing => h,
            _ => return Err(HostError::UnknownBinding(bind_id)),
        };
        held.freeing = true;
        if let Origin::Config(i) = held.origin
            && let Some(slot) = self.slots.get_mut(i)
        {
            slot.state = SlotState::Retired;
        }
        self.timers.stop(Timer::Extend(bind_id));
        self.queue.push_back(Op::Free {
            bind_id,
            sync: false,
        });
        self.pump(now);
        Ok(())
    }

    /// De-registers and closes: [`HostEvent::Closed`] follows once the gateway
    /// answered, or after `shutdown_timeout_ms`. Queued requests fail with
    /// [`RequestError::Shutdown`].
    pub fn shutdown(&mut self, now: Instant) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        self.lifecycle = Lifecycle::ShuttingDown;
        self.timers.set(
            Timer::ShutdownDeadline,
            now + Duration::from_millis(self.config.shutdown_timeout_ms),
        );
        for op in std::mem::take(&mut self.queue) {
            if let Some(request) = op.app_request() {
                self.events.push_back(HostEvent::RequestFailed {
                    request,
                    error: RequestError::Shutdown,
                });
            }
        }
        self.timers
            .retain(|t| !matches!(t, Timer::Extend(_) | Timer::Reacquire(_)));
        self.stale_client = None;
        if !self.connected {
            self.close(now);
            return;
        }
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

    // ---- scheduling ---------------------------------------------------------

    fn admit(&mut self) -> Result<RequestId, HostError> {
        if self.lifecycle != Lifecycle::Running {
            return Err(HostError::ShuttingDown);
        }
        let waiting = self
            .queue
            .iter()
            .filter(|op| op.app_request().is_some())
            .count();
        if waiting >= self.config.max_queued_requests {
            return Err(HostError::QueueFull);
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        Ok(id)
    }

    fn wants_registration(&self) -> bool {
        self.register_wanted
            || !self.queue.is_empty()
            || self
                .slots
                .iter()
                .any(|s| matches!(s.state, SlotState::Idle | SlotState::Pending))
    }

    /// Starts the next transaction if nothing is outstanding.
    fn pump(&mut self, now: Instant) {
        while self.outstanding.is_none()
            && self.connected
            && self.lifecycle != Lifecycle::Closed
            && !self.timers.is_armed(Timer::RetryPause)
        {
            let Some(op) = self.next_op(now) else { return };
            let client_id = match &op {
                Op::Register => None,
                Op::Deregister { client_id, .. } => Some(*client_id),
                _ => self.registration.as_ref().map(|r| r.client_id),
            };
            let counter = (self.config.transport == Transport::Udp).then_some(self.counter);
            let Some(bytes) = self.encode(&op, client_id, counter) else {
                // Only a request validated when it was made, re-built with
                // another client ID or counter: cannot fail. Drop it rather
                // than loop.
                continue;
            };
            self.transmits.push_back(bytes.clone());
            self.outstanding = Some(Outstanding {
                op,
                bytes,
                client_id,
                counter,
                attempts: 1,
            });
            self.arm_answer_timer(now);
        }
    }

    fn next_op(&mut self, now: Instant) -> Option<Op> {
        if let Some(client_id) = self.stale_client.take() {
            return Some(Op::Deregister {
                client_id,
                shutdown: false,
            });
        }
        if self.lifecycle == Lifecycle::ShuttingDown {
            return match &self.registration {
                Some(r) => Some(Op::Deregister {
                    client_id: r.client_id,
                    shutdown: true,
                }),
                None => {
                    self.close(now);
                    None
                }
            };
        }
        if self.registration.is_none() {
            return self.wants_registration().then_some(Op::Register);
        }
        while let Some(op) = self.queue.pop_front() {
            // Skip what lost its purpose while queued.
            let live = match &op {
                Op::Extend { bind_id } => self.bindings.get(bind_id).is_some_and(|h| !h.freeing),
                Op::Free {
                    bind_id,
                    sync: false,
                } => self.bindings.contains_key(bind_id),
                _ => true,
            };
            if live {
                return Some(op);
            }
        }
        None
    }

    /// The request's bytes, signed when a key is configured.
    fn encode(
        &mut self,
        op: &Op,
        client: Option<ClientId>,
        counter: Option<u32>,
    ) -> Option<Vec<u8>> {
        let msg = self.build(op, client, counter)?;
        let msg = match &self.key {
            Some(key) => {
                self.auth_sent = self.auth_sent.saturating_add(1);
                auth::sign(&msg, key, self.auth_sent).ok()?
            }
            None => msg,
        };
        Some(msg.to_bytes())
    }

    fn build(&self, op: &Op, client: Option<ClientId>, counter: Option<u32>) -> Option<Message> {
        let msg = match (op, client) {
            (Op::Register, _) => Message::register_request(counter),
            (Op::Deregister { client_id, .. }, _) => {
                Message::deregister_request(*client_id, counter)
            }
            (Op::Acquire { spec, .. }, Some(c)) => build_acquire(spec, c, counter).ok()?,
            (Op::Extend { bind_id }, Some(c)) => {
                let lease = self.bindings.get(bind_id).and_then(|h| h.spec.lease_time());
                Message::extend_request(c, *bind_id, lease, counter)
            }
            (Op::Free { bind_id, .. }, Some(c)) => Message::free_request(c, *bind_id, counter),
            (Op::Query { tuples, .. }, Some(c)) => {
                Message::query_request(c, counter, tuples).ok()?
            }
            (_, None) => return None,
        };
        Some(msg)
    }

    fn arm_answer_timer(&mut self, now: Instant) {
        let Some(o) = &self.outstanding else { return };
        match self.config.transport {
            Transport::Udp => {
                // RFC 3103 5: "binary exponential backoff scheme with an
                // initial duration of 12.5 ms".
                let shift = o.attempts.saturating_sub(1).min(31);
                let timeout = self.config.initial_timeout().saturating_mul(1 << shift);
                self.timers.set(Timer::Retransmit, now + timeout);
            }
            Transport::Tcp => self.timers.set(
                Timer::ResponseTimeout,
                now + Duration::from_millis(self.config.tcp_response_timeout_ms),
            ),
        }
    }

    /// The answer came: the counter moves on (RFC 3103 10.1: "will not
    /// increment its message counter value to n+1 until it receives a message
    /// from the RSIP gateway with a message counter value of n"; "it will wrap
    /// around to 1, not 0").
    fn finish_outstanding(&mut self) -> Option<Outstanding> {
        let o = self.outstanding.take()?;
        if o.counter.is_some() {
            self.counter = crate::next_message_counter(self.counter);
        }
        self.timers.stop(Timer::Retransmit);
        self.timers.stop(Timer::ResponseTimeout);
        self.timers.stop(Timer::RetryPause);
        Some(o)
    }

    /// Puts an unanswered transaction back to be sent again (with a new counter).
    fn requeue(&mut self, op: Op) {
        match op {
            // Decided afresh by next_op.
            Op::Register | Op::Deregister { shutdown: true, .. } => {}
            Op::Deregister {
                client_id,
                shutdown: false,
            } => self.stale_client = Some(client_id),
            other => self.queue.push_front(other),
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Retransmit => self.on_retransmit_timeout(now),
            Timer::ResponseTimeout => self
                .events
                .push_back(HostEvent::GatewayUnreachable { attempts: 1 }),
            Timer::RetryPause => {
                if let Some(o) = &mut self.outstanding
                    && o.attempts == 0
                {
                    // "starts over": a new round with the same message.
                    o.attempts = 1;
                    self.transmits.push_back(o.bytes.clone());
                    self.stats.retransmissions += 1;
                    self.arm_answer_timer(now);
                }
            }
            Timer::RegistrationExpiry => {
                // RFC 3103 6: "If this lease time expires, the RSIP host
                // automatically reverts to the unregistered state."
                self.end_registration(UnregisterReason::Expired, RevokeReason::Deregistered);
                self.register_wanted = false;
            }
            Timer::Extend(bind_id) => {
                let queued = self
                    .queue
                    .iter()
                    .any(|op| matches!(op, Op::Extend { bind_id: b } if *b == bind_id));
                let live = self.bindings.get(&bind_id).is_some_and(|h| !h.freeing);
                if live && !queued && self.lifecycle == Lifecycle::Running {
                    self.queue.push_front(Op::Extend { bind_id });
                }
            }
            Timer::BindingExpiry(bind_id) => {
                if let Some(held) = self.bindings.get(&bind_id) {
                    let reason = if held.freeing {
                        RevokeReason::Freed
                    } else {
                        RevokeReason::Expired
                    };
                    self.revoke(now, bind_id, reason);
                }
            }
            Timer::Reacquire(index) => self.reacquire_slot(index),
            Timer::ShutdownDeadline => self.close(now),
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant) {
        let max = self.config.retransmit.max_attempts;
        let pause = self.config.retry_pause();
        let Some(o) = &mut self.outstanding else {
            return;
        };
        if o.attempts >= max {
            // RFC 3103 5: "seven total attempts before failure".
            let attempts = o.attempts;
            o.attempts = 0;
            self.events
                .push_back(HostEvent::GatewayUnreachable { attempts });
            self.timers.set(Timer::RetryPause, now + pause);
        } else {
            // RFC 3103 10.1: "the copy of the message (from the "last
            // message" buffer) is retransmitted".
            o.attempts += 1;
            self.transmits.push_back(o.bytes.clone());
            self.stats.retransmissions += 1;
            self.arm_answer_timer(now);
        }
    }

    fn pause(&mut self, now: Instant) {
        self.timers
            .set(Timer::RetryPause, now + self.config.retry_pause());
    }

    // ---- receiving ----------------------------------------------------------

    fn on_message(&mut self, now: Instant, msg: &Message) {
        let udp = self.config.transport == Transport::Udp;
        let counter = msg.message_counter();
        if let Some(o) = &self.outstanding {
            let echoes = udp && o.counter.is_some() && counter == o.counter;
            let answers = self.answers(o, msg);
            if answers && (echoes || !udp) {
                if let Some(o) = self.finish_outstanding() {
                    self.on_answer(now, o, msg);
                }
                return;
            }
            if echoes {
                // The gateway echoed n with something that does not answer
                // the request: a replay of an older "last message" buffer, or
                // an asynchronous message given our counter. n has come back,
                // so the request goes again with n+1.
                if let Some(o) = self.finish_outstanding() {
                    self.requeue(o.op);
                }
                if is_async_type(msg.msg_type()) {
                    self.on_async(now, msg);
                } else {
                    self.stats.ignored += 1;
                }
                return;
            }
        }
        // RFC 3103 10.1: "When the RSIP gateway transmits an asynchronous RSIP
        // message ... a message counter value of 0 MUST be used."
        let async_counter = !udp || matches!(counter, None | Some(0));
        if is_async_type(msg.msg_type()) && async_counter {
            self.on_async(now, msg);
        } else {
            // A stale or duplicate answer, or one to nothing outstanding.
            self.stats.ignored += 1;
        }
    }

    /// Whether `msg` is an answer to the outstanding transaction by type and IDs.
    fn answers(&self, o: &Outstanding, msg: &Message) -> bool {
        let client_ok = match (o.client_id, msg.client_id()) {
            (Some(ours), Some(theirs)) => ours == theirs,
            (_, None) | (None, _) => true,
        };
        let bind_ok = match (o.op.bind_id(), msg.bind_id()) {
            (_, None) => true,
            (Some(ours), Some(theirs)) => ours == theirs,
            // An error about a binding while asking for something else.
            (None, Some(_)) => !matches!(msg.msg_type(), MessageType::ErrorResponse),
        };
        let type_ok = msg.msg_type() == MessageType::ErrorResponse
            || o.op.answer_types().contains(&msg.msg_type());
        client_ok && bind_ok && type_ok
    }

    fn on_answer(&mut self, now: Instant, o: Outstanding, msg: &Message) {
        let error = match msg.view() {
            View::ErrorResponse { error, .. } => Some(error),
            _ => None,
        };
        let lost_us = matches!(
            error,
            Some(ErrorCode::RegisterFirst | ErrorCode::BadClientId)
        );
        if error.is_none() && !matches!(o.op, Op::Register | Op::Deregister { .. }) {
            self.resync_streak = 0;
        }
        match o.op {
            Op::Register => self.on_register_answer(now, msg),
            Op::Deregister { shutdown, .. } => {
                // RFC 3103 10.2.2: the old ID's de-registration "will generate
                // another error, but this error SHOULD be ignored by the host".
                if shutdown {
                    self.close(now);
                }
            }
            op @ Op::Acquire { .. } if lost_us => {
                self.requeue(op);
                self.resync(now);
            }
            // The registration lapsed here while the request was out: ask
            // again under the next one (the gateway's grant, if any, lapses
            // with the old registration, or goes at the resync that
            // ALREADY_REGISTERED then triggers).
            op @ Op::Acquire { .. } if self.registration.is_none() => self.requeue(op),
            Op::Acquire {
                request,
                origin,
                spec,
                fallback,
            } => match error {
                Some(code) => self.on_acquire_refused(now, request, origin, code, fallback),
                None => self.on_granted(now, request, origin, *spec, msg),
            },
            Op::Extend { bind_id } => self.on_extend_answer(now, bind_id, msg, lost_us),
            Op::Free { bind_id, sync } => {
                if !sync && self.bindings.contains_key(&bind_id) {
                    self.revoke(now, bind_id, RevokeReason::Freed);
                }
                if lost_us {
                    self.resync(now);
                }
            }
            op @ Op::Query { .. } if lost_us => {
                self.requeue(op);
                self.resync(now);
            }
            Op::Query { request, .. } => {
                let ev = match error {
                    Some(code) => HostEvent::RequestFailed {
                        request,
                        error: RequestError::Gateway(code),
                    },
                    None => HostEvent::QueryAnswered {
                        request,
                        answer: QueryAnswer {
                            tuples: msg.query_tuples(),
                        },
                    },
                };
                self.events.push_back(ev);
            }
        }
    }

    fn on_register_answer(&mut self, now: Instant, msg: &Message) {
        match msg.view() {
            View::RegisterResponse {
                client_id,
                lease_time,
                flow_policy,
            } => {
                // RFC 3103 9.3.3: "If an RSIP method is not specified, RSAP-IP
                // MUST be assumed. If a tunnel type is not specified, IP-IP
                // MUST be assumed."
                let mut methods: Vec<RsipMethod> = msg.methods().collect();
                if methods.is_empty() {
                    methods.push(RsipMethod::RsapIp);
                }
                let mut tunnel_types: Vec<TunnelType> = msg.tunnel_types().collect();
                if tunnel_types.is_empty() {
                    tunnel_types.push(TunnelType::IpIp);
                }
                let expires = now + Duration::from_secs(u64::from(lease_time));
                let reg = Registration {
                    client_id,
                    flow_policy,
                    methods,
                    tunnel_types,
                    expires,
                };
                self.timers.set(Timer::RegistrationExpiry, expires);
                self.registration = Some(reg.clone());
                self.events.push_back(HostEvent::Registered(reg));
                for index in 0..self.slots.len() {
                    if self.slots.get(index).map(|s| s.state) == Some(SlotState::Idle) {
                        self.queue_slot(index);
                    }
                }
            }
            View::ErrorResponse {
                error: ErrorCode::AlreadyRegistered,
                client_id: Some(old),
                ..
            } => {
                // RFC 3103 10.2.1: the host "will know the client ID of its old
                // registration, and SHOULD immediately transmit a
                // DE-REGISTER_REQUEST using this client ID".
                self.stats.resyncs += 1;
                self.resync_streak += 1;
                self.stale_client = Some(old);
                if self.resync_streak >= RESYNC_STREAK_LIMIT {
                    self.resync_streak = 0;
                    self.pause(now);
                }
            }
            View::ErrorResponse {
                error: ErrorCode::UseTcp,
                ..
            } if self.config.transport == Transport::Udp => {
                // RFC 3103 Appendix A, 102 USE_TCP: the gateway serves this
                // host over TCP only (Realm's gateway says so to UDP
                // registrations under pressure: TCP proves the address). The
                // host moves to TCP: its driver connects and calls
                // `handle_connected`, and the REGISTER goes over the stream.
                self.config.transport = Transport::Tcp;
                self.connected = false;
                self.events.push_back(HostEvent::UseTcp);
            }
            View::ErrorResponse { error, .. } => {
                self.events.push_back(HostEvent::RegistrationFailed(error));
                self.pause(now);
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_granted(
        &mut self,
        now: Instant,
        request: RequestId,
        origin: Origin,
        spec: Spec,
        msg: &Message,
    ) {
        let Some(binding) = self.binding_from(now, request, &spec, msg) else {
            // RFC 3103 9.9.3: "If the host detects an error or otherwise does
            // not "understand" the gateway's response, it SHOULD send a
            // FREE_REQUEST with the bind ID".
            if let Some(bind_id) = msg.bind_id()
                && !self.bindings.contains_key(&bind_id)
            {
                self.queue.push_front(Op::Free {
                    bind_id,
                    sync: true,
                });
            }
            self.fail_acquire(now, request, origin, RequestError::BadResponse);
            return;
        };
        let bind_id = binding.bind_id;
        let lease = binding.expires.saturating_duration_since(now);
        self.timers
            .set(Timer::BindingExpiry(bind_id), binding.expires);
        self.timers.set(
            Timer::Extend(bind_id),
            now + lease.mul_f64(self.config.extend_at),
        );
        self.hold_up_registration(binding.expires);
        if let Origin::Config(i) = origin
            && let Some(slot) = self.slots.get_mut(i)
        {
            slot.state = SlotState::Held(bind_id);
        }
        self.events
            .push_back(HostEvent::BindingGranted(binding.clone()));
        self.bindings.insert(
            bind_id,
            Held {
                binding,
                origin,
                spec,
                freeing: false,
            },
        );
    }

    /// The binding an ASSIGN/LISTEN response grants, or `None` if the host
    /// cannot use it.
    fn binding_from(
        &self,
        now: Instant,
        request: RequestId,
        spec: &Spec,
        msg: &Message,
    ) -> Option<Binding> {
        let (bind_id, method, local_address, local_ports, remote, spis, lease, tunnel, endpoint) =
            match (msg.view(), spec) {
                (
                    View::AssignResponseRsaIp {
                        bind_id,
                        local_address,
                        remote_address,
                        remote_ports,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    },
                    _,
                ) => (
                    bind_id,
                    RsipMethod::RsaIp,
                    local_address,
                    Ports::DontNeed,
                    (remote_address, remote_ports),
                    None,
                    lease_time,
                    tunnel_type,
                    tunnel_endpoint,
                ),
                (
                    View::AssignResponseRsapIp {
                        bind_id,
                        flow,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    }
                    | View::ListenResponse {
                        bind_id,
                        flow,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    },
                    _,
                ) => (
                    bind_id,
                    RsipMethod::RsapIp,
                    flow.local_address,
                    flow.local_ports.clone(),
                    (flow.remote_address, flow.remote_ports),
                    None,
                    lease_time,
                    tunnel_type,
                    tunnel_endpoint,
                ),
                (
                    View::AssignResponseRsipsec {
                        bind_id,
                        flow,
                        spis,
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                        ..
                    },
                    Spec::Assign(BindingRequest {
                        resources: Resources::Ipsec { ports: asked, .. },
                        ..
                    }),
                ) => {
                    // RFC 3104 6.2: "If the port parameters were set to the
                    // "don't need" value in the request ..., the RSIP server
                    // must do the same in the response."
                    if (*asked == Ports::DontNeed) != (*flow.local_ports == Ports::DontNeed) {
                        return None;
                    }
                    (
                        bind_id,
                        RsipMethod::Rsipsec,
                        flow.local_address,
                        flow.local_ports.clone(),
                        (flow.remote_address, flow.remote_ports),
                        Some(spis),
                        lease_time,
                        tunnel_type,
                        tunnel_endpoint,
                    )
                }
                _ => return None,
            };
        if self.bindings.contains_key(&bind_id) || local_address.is_dont_care() {
            return None;
        }
        // RFC 3103 9.9.3: "a local address and port(s) MUST be assigned".
        let ports_needed = method == RsipMethod::RsapIp || local_ports != Ports::DontNeed;
        if ports_needed && (local_ports.is_dont_care() || local_ports == Ports::DontNeed) {
            return None;
        }
        let spis = match spis {
            Some(s) if s.is_dont_care() => return None,
            Some(s) => s.to_vec(),
            None => Vec::new(),
        };
        Some(Binding {
            bind_id,
            request,
            method,
            listen: msg.msg_type() == MessageType::ListenResponse,
            local_address: local_address.clone(),
            local_ports,
            remote_address: remote.0.clone(),
            remote_ports: remote.1.clone(),
            spis,
            tunnel_type: tunnel,
            tunnel_endpoint: endpoint.cloned(),
            expires: now + Duration::from_secs(u64::from(lease)),
        })
    }

    fn on_acquire_refused(
        &mut self,
        now: Instant,
        request: RequestId,
        origin: Origin,
        code: ErrorCode,
        fallback: Option<Box<Spec>>,
    ) {
        match fallback {
            Some(spec) => self.queue.push_front(Op::Acquire {
                request,
                origin,
                spec,
                fallback: None,
            }),
            None => self.fail_acquire(now, request, origin, RequestError::Gateway(code)),
        }
    }

    fn fail_acquire(&mut self, now: Instant, request: RequestId, origin: Origin, e: RequestError) {
        self.events
            .push_back(HostEvent::RequestFailed { request, error: e });
        if let Origin::Config(i) = origin {
            self.wait_slot(now, i);
        }
    }

    fn on_extend_answer(&mut self, now: Instant, bind_id: BindId, msg: &Message, lost_us: bool) {
        match msg.view() {
            View::ExtendResponse { lease_time, .. } => {
                let Some(held) = self.bindings.get_mut(&bind_id) else {
                    // It lapsed here while the gateway extended it: give it back.
                    if self.registration.is_some() {
                        self.queue.push_front(Op::Free {
                            bind_id,
                            sync: true,
                        });
                    }
                    return;
                };
                let lease = Duration::from_secs(u64::from(lease_time));
                let expires = now + lease;
                held.binding.expires = expires;
                let freeing = held.freeing;
                self.timers.set(Timer::BindingExpiry(bind_id), expires);
                if !freeing {
                    self.timers.set(
                        Timer::Extend(bind_id),
                        now + lease.mul_f64(self.config.extend_at),
                    );
                }
                self.hold_up_registration(expires);
                self.events
                    .push_back(HostEvent::BindingExtended { bind_id, expires });
            }
            View::FreeResponse { .. } => {
                if self.bindings.contains_key(&bind_id) {
                    self.revoke(now, bind_id, RevokeReason::RevokedByGateway);
                }
            }
            View::ErrorResponse { .. } if lost_us => self.resync(now),
            View::ErrorResponse {
                error: code @ ErrorCode::BadBindId,
                ..
            } => {
                if self.bindings.contains_key(&bind_id) {
                    self.revoke(now, bind_id, RevokeReason::ExtendRefused(code));
                }
            }
            View::ErrorResponse { error, .. } => {
                // RFC 3103 9.10.3: "If the lease is not renewed, the RSIP
                // gateway MAY let it implicitly expire": keep it until then.
                self.events.push_back(HostEvent::GatewayError {
                    code: error,
                    bind_id: Some(bind_id),
                });
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_async(&mut self, now: Instant, msg: &Message) {
        let ours = self.registration.as_ref().map(|r| r.client_id);
        match msg.view() {
            // RFC 3103 9.13.3: "An RSIP host must always be ready to accept a
            // FREE_RESPONSE, even if its lease on the specified bind ID is not
            // yet expired."
            View::FreeResponse { client_id, bind_id } => match self.bindings.get(&bind_id) {
                Some(held) if Some(client_id) == ours => {
                    let reason = if held.freeing {
                        RevokeReason::Freed
                    } else {
                        RevokeReason::RevokedByGateway
                    };
                    self.revoke(now, bind_id, reason);
                }
                _ => self.stats.ignored += 1,
            },
            // RFC 3103 9.5.1: "Upon receiving a DE-REGISTER_RESPONSE message,
            // an RSIP host MUST stop all use of the resources that have been
            // allocated to it by the gateway."
            View::DeregisterResponse { client_id } if Some(client_id) == ours => {
                self.end_registration(
                    UnregisterReason::DeregisteredByGateway,
                    RevokeReason::Deregistered,
                );
                if self.lifecycle == Lifecycle::ShuttingDown {
                    self.close(now);
                } else {
                    // Often just the registration lease lapsing at the
                    // gateway first (its clock runs ahead of ours by the
                    // network delay): register again only with something to
                    // ask, and not before a pause.
                    self.register_wanted = false;
                    self.pause(now);
                }
            }
            View::ErrorResponse {
                error,
                client_id,
                bind_id,
            } => {
                if client_id.is_some() && client_id != ours {
                    self.stats.ignored += 1;
                    return;
                }
                // RFC 3103 10.2.2: REGISTER_FIRST: "an RSIP host MUST interpret
                // the message as an indication of a loss of synchronization".
                if matches!(error, ErrorCode::RegisterFirst | ErrorCode::BadClientId)
                    && ours.is_some()
                {
                    self.resync(now);
                } else {
                    self.events.push_back(HostEvent::GatewayError {
                        code: error,
                        bind_id,
                    });
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    // ---- state changes ------------------------------------------------------

    /// RFC 3103 6: "when binding Bi is established or extended ... R = max(R, Bi)".
    fn hold_up_registration(&mut self, expires: Instant) {
        if let Some(reg) = &mut self.registration
            && expires > reg.expires
        {
            reg.expires = expires;
            self.timers.set(Timer::RegistrationExpiry, expires);
        }
    }

    /// Drops a binding and reports it.
    fn revoke(&mut self, now: Instant, bind_id: BindId, reason: RevokeReason) {
        let Some(held) = self.bindings.remove(&bind_id) else {
            return;
        };
        self.timers.stop(Timer::Extend(bind_id));
        self.timers.stop(Timer::BindingExpiry(bind_id));
        if let Origin::Config(i) = held.origin
            && reason != RevokeReason::Freed
        {
            self.wait_slot(now, i);
        }
        self.events.push_back(HostEvent::BindingRevoked {
            binding: held.binding,
            reason,
        });
    }

    /// Ends the registration: every binding revoked, queued extends and frees
    /// dropped, configured bindings back to idle.
    fn end_registration(&mut self, reason: UnregisterReason, revoke: RevokeReason) {
        let Some(reg) = self.registration.take() else {
            return;
        };
        for (_, held) in std::mem::take(&mut self.bindings) {
            let reason = if held.freeing {
                RevokeReason::Freed
            } else {
                revoke
            };
            self.events.push_back(HostEvent::BindingRevoked {
                binding: held.binding,
                reason,
            });
        }
        self.queue.retain(|op| {
            !matches!(
                op,
                Op::Extend { .. }
                    | Op::Free { .. }
                    | Op::Acquire {
                        origin: Origin::Config(_),
                        ..
                    }
            )
        });
        for slot in &mut self.slots {
            if slot.state != SlotState::Retired {
                slot.state = SlotState::Idle;
            }
        }
        self.timers.retain(|t| {
            !matches!(
                t,
                Timer::Extend(_)
                    | Timer::BindingExpiry(_)
                    | Timer::RegistrationExpiry
                    | Timer::Reacquire(_)
            )
        });
        self.events.push_back(HostEvent::Unregistered {
            client_id: reg.client_id,
            reason,
        });
    }

    /// RFC 3103 10.2.2: the gateway lost the host's state. De-register the old
    /// client ID, register again, re-acquire every binding.
    fn resync(&mut self, now: Instant) {
        self.stats.resyncs += 1;
        self.resync_streak += 1;
        let mut reacquire = Vec::new();
        for (_, held) in std::mem::take(&mut self.bindings) {
            if held.freeing {
                self.events.push_back(HostEvent::BindingRevoked {
                    binding: held.binding,
                    reason: RevokeReason::Freed,
                });
                continue;
            }
            let preferred = same_resources(&held);
            let (spec, fallback) = match preferred {
                Some(p) if p != held.spec => (Box::new(p), Some(Box::new(held.spec))),
                _ => (Box::new(held.spec), None),
            };
            reacquire.push(Op::Acquire {
                request: held.binding.request,
                origin: held.origin,
                spec,
                fallback,
            });
            self.events.push_back(HostEvent::BindingRevoked {
                binding: held.binding,
                reason: RevokeReason::Resync,
            });
        }
        self.queue
            .retain(|op| !matches!(op, Op::Extend { .. } | Op::Free { .. }));
        for op in reacquire.into_iter().rev() {
            self.queue.push_front(op);
        }
        self.timers.retain(|t| {
            !matches!(
                t,
                Timer::Extend(_) | Timer::BindingExpiry(_) | Timer::RegistrationExpiry
            )
        });
        if let Some(reg) = self.registration.take() {
            // RFC 3103 10.2.2: "The RSIP host SHOULD immediately transmit a
            // DE-REGISTRATION_REQUEST with its old client ID".
            self.stale_client = Some(reg.client_id);
            self.events.push_back(HostEvent::Unregistered {
                client_id: reg.client_id,
                reason: UnregisterReason::Resync,
            });
        }
        self.register_wanted = true;
        if self.resync_streak >= RESYNC_STREAK_LIMIT {
            self.resync_streak = 0;
            self.pause(now);
        }
    }

    fn queue_slot(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        slot.state = SlotState::Pending;
        self.queue.push_back(Op::Acquire {
            request: slot.request,
            origin: Origin::Config(index),
            spec: Box::new(slot.spec.clone()),
            fallback: None,
        });
    }

    fn wait_slot(&mut self, now: Instant, index: usize) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        if let Some(slot) = self.slots.get_mut(index)
            && slot.state != SlotState::Retired
        {
            slot.state = SlotState::Waiting;
            self.timers
                .set(Timer::Reacquire(index), now + self.config.retry_pause());
        }
    }

    fn reacquire_slot(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if slot.state != SlotState::Waiting {
            return;
        }
        if self.registration.is_some() {
            self.queue_slot(index);
        } else {
            slot.state = SlotState::Idle;
        }
    }

    fn close(&mut self, _now: Instant) {
        if self.lifecycle == Lifecycle::Closed {
            return;
        }
        if let Some(op) = self.outstanding.take().map(|o| o.op)
            && let Some(request) = op.app_request()
        {
            self.events.push_back(HostEvent::RequestFailed {
                request,
                error: RequestError::Shutdown,
            });
        }
        for op in std::mem::take(&mut self.queue) {
            if let Some(request) = op.app_request() {
                self.events.push_back(HostEvent::RequestFailed {
                    request,
                    error: RequestError::Shutdown,
                });
            }
        }
        self.end_registration(UnregisterReason::Shutdown, RevokeReason::Deregistered);
        self.timers.clear();
        self.transmits.clear();
        self.stale_client = None;
        self.lifecycle = Lifecycle::Closed;
        self.events.push_back(HostEvent::Closed);
    }
}

/// Message types a gateway sends (RFC 3103 Appendix B; RFC 3104 Appendix C).
fn from_gateway(t: MessageType) -> bool {
    use MessageType as M;
    matches!(
        t,
        M::ErrorResponse
            | M::RegisterResponse
            | M::DeregisterResponse
            | M::AssignResponseRsaIp
            | M::AssignResponseRsapIp
            | M::ExtendResponse
            | M::FreeResponse
            | M::QueryResponse
            | M::ListenResponse
            | M::AssignResponseRsipsec
    )
}

/// RFC 3103 10.1: "only three RSIP messages can be transmitted asynchronously:
/// ERROR_RESPONSE, DE-REGISTER_RESPONSE, and FREE_RESPONSE".
fn is_async_type(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::ErrorResponse | MessageType::DeregisterResponse | MessageType::FreeResponse
    )
}

fn check(msg: &Result<Message, DecodeError>) -> Result<(), HostError> {
    match msg {
        Ok(_) => Ok(()),
        Err(e) => Err(HostError::InvalidRequest(e.clone())),
    }
}

fn build_acquire(
    spec: &Spec,
    client: ClientId,
    counter: Option<u32>,
) -> Result<Message, DecodeError> {
    match spec {
        Spec::Assign(r) => {
            let options = RequestOptions {
                message_counter: counter,
                lease_time: r.lease_time,
                tunnel_type: r.tunnel_type,
            };
            match &r.resources {
                Resources::Address => Message::assign_request_rsa_ip(
                    client,
                    r.local_address.clone(),
                    r.remote_address.clone(),
                    r.remote_ports.clone(),
                    options,
                ),
                Resources::Ports(ports) => Message::assign_request_rsap_ip(
                    client,
                    Flow {
                        local_address: r.local_address.clone(),
                        local_ports: ports.clone(),
                        remote_address: r.remote_address.clone(),
                        remote_ports: r.remote_ports.clone(),
                    },
                    options,
                ),
                Resources::Ipsec { ports, spis } => Message::assign_request_rsipsec(
                    client,
                    Flow {
                        local_address: r.local_address.clone(),
                        local_ports: ports.clone(),
                        remote_address: r.remote_address.clone(),
                        remote_ports: r.remote_ports.clone(),
                    },
                    spis.clone(),
                    options,
                ),
            }
        }
        Spec::Listen(l) => Message::listen_request(
            client,
            Flow {
                local_address: l.local_address.clone(),
                local_ports: l.local_ports.clone(),
                remote_address: l.remote_address.clone(),
                remote_ports: l.remote_ports.clone(),
            },
            counter,
            l.lease_time,
            &l.tunnel_types,
        ),
    }
}

/// A request for exactly what `held` holds (address, ports, SPIs), for a
/// resync to keep the data plane's sessions; `None` if it cannot be expressed.
fn same_resources(held: &Held) -> Option<Spec> {
    let b = &held.binding;
    let spec = match &held.spec {
        Spec::Listen(_) => return None,
        Spec::Assign(r) => {
            let resources = match &r.resources {
                Resources::Address => Resources::Address,
                Resources::Ports(_) => Resources::Ports(exact_ports(&b.local_ports)?),
                Resources::Ipsec { .. } => Resources::Ipsec {
                    ports: match &b.local_ports {
                        Ports::DontNeed => Ports::DontNeed,
                        p => exact_ports(p)?,
                    },
                    spis: exact_spis(&b.spis)?,
                },
            };
            Spec::Assign(BindingRequest {
                resources,
                local_address: b.local_address.clone(),
                ..r.clone()
            })
        }
    };
    build_acquire(&spec, ClientId(0), Some(1)).ok()?;
    Some(spec)
}

fn exact_ports(ports: &Ports) -> Option<Ports> {
    match ports {
        Ports::Range { .. } | Ports::List(_) if !ports.is_dont_care() => Some(ports.clone()),
        _ => None,
    }
}

fn exact_spis(spis: &[Spi]) -> Option<Spis> {
    match spis {
        [] => None,
        [one] => Some(Spis::single(*one)),
        [first, ..] => {
            let contiguous = spis
                .iter()
                .zip(spis.iter().skip(1))
                .all(|(a, b)| a.0.checked_add(1) == Some(b.0));
            if contiguous {
                Some(Spis::Range {
                    first: *first,
                    count: u16::try_from(spis.len()).ok()?,
                })
            } else {
                Some(Spis::List(spis.to_vec()))
            }
        }
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
