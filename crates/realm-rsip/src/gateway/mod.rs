//! The sans-IO RSIP gateway engine (RFC 3103 s9-10, RFC 3104 s6.2): it owns
//! registrations, the flow state of bindings, UDP reliability (message
//! counters and "last message" buffers) and signalling authentication, on
//! top of `realm-lease` (pool, quotas, leases, TIME_WAIT) and `realm-wire`
//! (bytes). It never touches a socket, a file or a clock.
//!
//! The daemon feeds it [`Gateway::handle_datagram`],
//! [`Gateway::handle_stream_message`] (one message framed by
//! `StreamDecoder`), [`Gateway::handle_stream_error`] (a fatal framing
//! error: the engine answers, the daemon closes after sending),
//! [`Gateway::handle_connection_closed`] and
//! [`Gateway::handle_timeout`] at [`Gateway::poll_timeout`]; after each call it
//! drains [`Gateway::poll_event`] (persist them: see [`Event`]) and then
//! [`Gateway::poll_transmit`].
//!
//! Interpretations of the RFC are in `docs/deviations.md` ("Gateway engine").

mod config;
mod event;
mod handlers;
mod limiter;
mod policy;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use realm_lease::{BindId, ClientId, HostUsage, LeaseManager, PoolUsage, Timestamp};
use realm_wire::rsip::{ErrorCode, FrameError, Message, MessageType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::auth::{self, ReplayCounter, SharedKey};

pub use config::{
    AuthConfig, ConfigError, GatewayConfig, HostKey, ListenConfig, LocalPolicy, PoolEntry,
    QuotaConfig, RemotePolicy, UdpConfig,
};
pub use event::{
    BindingRecord, ConnectionId, DataPlaneMappingError, DeregisterReason, Destination, Event,
    FreeReason, HostRecord, PersistedState, RestoreReport, Transmit,
};
pub use limiter::{Admission, RateLimit, SourceLimiter, TokenBucket};
// The RSIP vocabulary the configuration and the records use.
pub use policy::{
    PortRange, Prefix, RemoteAddress, RemotePorts, RemoteRule, RemoteSpec, RuleAction,
};
pub use realm_wire::rsip::{BindingKind, Method, Transport, TunnelKind};

/// The engine's clocks, in one table (STYLE 6). [`Gateway::poll_timeout`] is
/// the earliest; [`Gateway::handle_timeout`] serves every one that is due.
/// Quarantine (TIME_WAIT) needs no timer: `realm-lease` ends it lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Timer {
    /// The earliest binding lease end: FREE_RESPONSE to its host.
    BindingLease,
    /// The earliest registration lapse: DE-REGISTER_RESPONSE to its host.
    RegistrationLease,
    /// The earliest idle UDP "last message" buffer to drop.
    UdpSessionIdle,
}

/// What the close of a TCP connection does to the hosts registered over it
/// (RFC 3103 is silent: `docs/deviations.md`, "TCP connection close"). The
/// daemon's `on_tcp_close` key; set with [`Gateway::set_on_tcp_close`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTcpClose {
    /// Keep the registration and its bindings until their leases end; the
    /// next connection from the same private address that names the client
    /// ID adopts it (this is what lets hosts ride out a gateway restart).
    #[default]
    Keep,
    /// De-register at once the TCP hosts of the closed connection's address
    /// that no open connection holds (their bindings end; counted as `admin`
    /// de-registrations).
    Deregister,
}

/// A registered host, live.
#[derive(Debug, Clone)]
struct Host {
    record: HostRecord,
    /// Its TCP connection, while open (TCP hosts only).
    conn: Option<ConnectionId>,
}

/// The flow state of a binding, beside what `realm-lease` keeps: 12 bytes,
/// so that a flow table entry is 16. The remote side (RFC 3103 7.3.3), 48
/// bytes and "don't care" for most bindings, lives in `Gateway::remotes`
/// when it is anything else.
#[derive(Debug, Clone)]
struct Flow {
    private_address: Ipv4Addr,
    lease_secs: u32,
    kind: BindingKind,
    tunnel: TunnelKind,
    /// The remote side is in `Gateway::remotes` (it is not
    /// [`RemoteSpec::any`]).
    remote: bool,
}

/// A UDP endpoint's "last message" buffer (RFC 3103 10.1).
#[derive(Debug, Clone)]
struct UdpSession {
    request: Vec<u8>,
    response: Vec<u8>,
    /// The message counter of `request`.
    counter: u32,
    last_seen: Timestamp,
}

/// True when counter `c` comes before `last` in serial order (RFC 1982 style,
/// so the wrap to 1 of RFC 3103 10.1 is handled).
fn counter_is_older(c: u32, last: u32) -> bool {
    let d = last.wrapping_sub(c);
    d != 0 && d < 1 << 31
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
struct Source {
    from: SocketAddrV4,
    conn: Option<ConnectionId>,
}

impl Source {
    fn transport(&self) -> Transport {
        if self.conn.is_some() {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }

    fn dest(&self) -> Destination {
        match self.conn {
            Some(c) => Destination::Tcp(c),
            None => Destination::Udp(self.from),
        }
    }

    fn ip(&self) -> Ipv4Addr {
        *self.from.ip()
    }
}

/// A refused request: the ERROR_RESPONSE to send (RFC 3103 9.1.1: with the
/// client and bind IDs it concerns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    code: ErrorCode,
    client: Option<ClientId>,
    bind: Option<BindId>,
}

impl Refusal {
    fn new(code: ErrorCode) -> Refusal {
        Refusal {
            code,
            client: None,
            bind: None,
        }
    }

    fn client(code: ErrorCode, client: ClientId) -> Refusal {
        Refusal {
            code,
            client: Some(client),
            bind: None,
        }
    }
}

/// Counters for metrics, since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages handed in (datagrams and stream messages).
    pub messages: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// UDP duplicates answered from the "last message" buffer.
    pub duplicates_answered: u64,
    /// Stale UDP copies (a counter older than the last answered) dropped.
    pub stale_dropped: u64,
    /// ERROR_RESPONSEs received (never answered).
    pub error_responses_ignored: u64,
    /// Registrations granted.
    pub registrations: u64,
    /// Registrations ended, by reason.
    pub deregistrations: BTreeMap<String, u64>,
    /// Bindings granted, by method ("rsa-ip", "rsap-ip", "rsipsec", "listen").
    pub grants: BTreeMap<String, u64>,
    /// Leases extended.
    pub extensions: u64,
    /// Bindings ended, by reason.
    pub frees: BTreeMap<String, u64>,
    /// Binding leases that ran out.
    pub binding_expiries: u64,
    /// Registrations that lapsed.
    pub registration_expiries: u64,
    /// ERROR_RESPONSEs sent, by code.
    pub errors: BTreeMap<u16, u64>,
    /// Messages refused by signalling authentication.
    pub auth_failures: u64,
    /// UDP REGISTER_REQUESTs sent to TCP (USE_TCP) under registration
    /// pressure.
    pub use_tcp_pressure: u64,
    /// Asynchronous messages for a TCP host whose connection is closed.
    pub undeliverable: u64,
}

/// A snapshot of the engine for `realm ctl status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayStatus {
    /// Registered hosts.
    pub hosts: usize,
    /// Live bindings.
    pub bindings: usize,
    /// UDP "last message" buffers held.
    pub udp_sessions: usize,
    /// Pool use.
    pub pool: PoolUsage,
    /// Counters.
    pub counters: Counters,
    /// The next deadline.
    pub next_timeout: Option<Timestamp>,
}

/// One host for `realm ctl hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSnapshot {
    /// Its record.
    pub record: HostRecord,
    /// TCP: whether its connection is open (UDP: always false).
    pub connected: bool,
    /// What it holds.
    pub usage: HostUsage,
    /// Its bindings.
    pub bindings: Vec<BindId>,
}

/// A refused admin operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AdminError {
    /// No live binding with this ID.
    #[error("no such binding: bind {0}")]
    UnknownBinding(BindId),
    /// No registered host with this client ID.
    #[error("no such host: client {:#010x}", .0.0)]
    UnknownClient(ClientId),
}

/// The RSIP gateway engine. See the module doc, and [`Event`] for the
/// durability contract: events of a call are persisted before its
/// transmissions leave ([`Gateway::poll_transmit`] holds them back while an
/// event is pending).
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    keys: BTreeMap<Ipv4Addr, SharedKey>,
    leases: LeaseManager,
    rng: StdRng,
    hosts: HashMap<ClientId, Host>,
    /// Registrations per private address (at most the per-address cap).
    by_address: HashMap<Ipv4Addr, Vec<ClientId>>,
    flows: HashMap<BindId, Flow>,
    /// The remote side of the bindings whose flow says so (macro and micro
    /// remote flow policy, LISTEN): out of line, as most bindings have none.
    remotes: HashMap<BindId, RemoteSpec>,
    sessions: HashMap<SocketAddrV4, UdpSession>,
    /// (last seen, endpoint) of every session: idle expiry and eviction order.
    session_order: BTreeSet<(Timestamp, SocketAddrV4)>,
    /// Replay counters of hosts with a configured key (bounded by the config).
    replay: HashMap<Ipv4Addr, ReplayCounter>,
    /// The last replay counter the gateway signed with.
    sent_counter: u64,
    /// When the registrations of the last second were granted (at most
    /// `udp.use_tcp_above_registrations_per_sec`): registration pressure.
    recent_registrations: VecDeque<Timestamp>,
    events: VecDeque<Event>,
    transmits: VecDeque<Transmit>,
    counters: Counters,
    on_tcp_close: OnTcpClose,
}

impl Gateway {
    /// A gateway with no registration. `seed` must come from the OS CSPRNG
    /// at every start: client IDs are drawn from it.
    pub fn new(config: GatewayConfig, seed: [u8; 32]) -> Result<Gateway, ConfigError> {
        let checked = config.check()?;
        let leases = LeaseManager::new(checked.lease)?;
        Ok(Gateway {
            config,
            keys: checked.keys,
            leases,
            rng: StdRng::from_seed(seed),
            hosts: HashMap::new(),
            by_address: HashMap::new(),
            flows: HashMap::new(),
            remotes: HashMap::new(),
            sessions: HashMap::new(),
            session_order: BTreeSet::new(),
            replay: HashMap::new(),
            sent_counter: 0,
            recent_registrations: VecDeque::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            counters: Counters::default(),
            on_tcp_close: OnTcpClose::default(),
        })
    }

    /// What [`Gateway::handle_connection_closed`] does to the hosts of a
    /// closed connection (default [`OnTcpClose::Keep`]).
    pub fn set_on_tcp_close(&mut self, policy: OnTcpClose) {
        self.on_tcp_close = policy;
    }

    /// Rebuilds a gateway from persisted records (the fold of its events).
    /// Records that lapsed while it was down are ended at once, with events
    /// and asynchronous FREE_RESPONSE / DE-REGISTER_RESPONSE to UDP hosts
    /// (TCP hosts have no connection yet); records the current configuration
    /// refuses are dropped with `Resync` events. TCP hosts are adopted by the
    /// first connection from their private address that names them.
    pub fn restore(
        config: GatewayConfig,
        seed: [u8; 32],
        state: &PersistedState,
        now: Timestamp,
    ) -> Result<(Gateway, RestoreReport), ConfigError> {
        let mut gw = Gateway::new(config, seed)?;
        let mut report = RestoreReport::default();
        for h in &state.hosts {
            let over_cap = gw
                .by_address
                .get(&h.private_address)
                .is_some_and(|v| v.len() >= gw.config.max_registrations_per_address as usize);
            let restored = !over_cap
                && gw
                    .leases
                    .restore_registration(&realm_lease::RegistrationRecord {
                        client: h.client,
                        expires_at: h.expires_at,
                    })
                    .is_ok();
            if !restored {
                report.dropped.push(format!(
                    "{}: duplicate or over the per-address cap",
                    h.client
                ));
                gw.push_event(Event::Deregistered {
                    host: h.clone(),
                    reason: DeregisterReason::Resync,
                });
                continue;
            }
            gw.by_address
                .entry(h.private_address)
                .or_default()
                .push(h.client);
            if h.auth_counter > 0 {
                gw.replay
                    .entry(h.private_address)
                    .or_default()
                    .accept(h.auth_counter);
            }
            gw.hosts.insert(
                h.client,
                Host {
                    record: h.clone(),
                    conn: None,
                },
            );
            report.hosts += 1;
        }
        for b in &state.bindings {
            let owner_ok = gw
                .hosts
                .get(&b.client)
                .is_some_and(|h| h.record.private_address == b.private_address);
            let result = if owner_ok {
                gw.leases
                    .restore_binding(&b.lease_record())
                    .map_err(|e| e.to_string())
            } else {
                Err(format!("client {:#010x}: no such host", b.client.0))
            };
            match result {
                Ok(()) => {
                    gw.insert_flow(
                        b.bind,
                        Flow {
                            private_address: b.private_address,
                            lease_secs: b.lease_secs,
                            kind: b.kind,
                            tunnel: b.tunnel,
                            remote: false,
                        },
                        &b.remote,
                    );
                    report.bindings += 1;
                }
                Err(why) => {
                    report.dropped.push(why);
                    gw.push_event(Event::BindingFreed {
                        binding: b.clone(),
                        reason: FreeReason::Resync,
                        held_until: now,
                    });
                }
            }
        }
        for q in &state.quarantine {
            if q.until <= now {
                report.quarantine_ended += 1;
                continue;
            }
            match gw.leases.restore_quarantine(q) {
                Ok(()) => report.quarantine += 1,
                Err(e) => report.dropped.push(e.to_string()),
            }
        }
        let first_new = gw.events.len();
        gw.expire(now);
        for e in gw.events.iter().skip(first_new) {
            match e {
                Event::BindingFreed { binding, .. } => report.expired_bindings.push(binding.bind),
                Event::Deregistered { host, .. } => report.expired_hosts.push(host.client),
                _ => {}
            }
        }
        report.hosts = report.hosts.saturating_sub(report.expired_hosts.len());
        report.bindings = report
            .bindings
            .saturating_sub(report.expired_bindings.len());
        Ok((gw, report))
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    // ---- input ----------------------------------------------------------------

    /// One UDP datagram from `from` to the gateway's RSIP port.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddrV4, bytes: &[u8]) {
        self.expire(now);
        self.counters.messages += 1;
        // RFC 3103 10.1: "When an RSIP gateway receives a duplicate copy of a
        // message with a message counter value of n, it transmits the contents
        // of its last message buffer" (a duplicate: the same bytes).
        if let Some(s) = self.sessions.get(&from) {
            // The counter and type of a message that at least frames; a
            // malformed one goes on to get its ERROR_RESPONSE.
            let head = Message::parse(bytes)
                .ok()
                .map(|m| (m.message_counter(), m.msg_type()));
            // A duplicate is the same bytes: a request re-sent with the same
            // counter but changed content (a fresh signature) is new.
            if s.request == bytes {
                let response = s.response.clone();
                self.counters.duplicates_answered += 1;
                self.touch_session(from, now);
                self.transmits.push_back(Transmit {
                    to: Destination::Udp(from),
                    bytes: response,
                });
                return;
            }
            // RFC 3103 10.1: a host "will not increment its message counter
            // value to n+1 until it receives a message from the RSIP gateway
            // with a message counter value of n", so a counter older than the
            // last one answered is a stale copy the network delayed: executing
            // it again would grant twice, and its answer would evict the
            // buffer the host's current retransmissions need. Dropped
            // silently. REGISTER_REQUEST and DE-REGISTER_REQUEST are still
            // heard: a host rebooted onto the same port starts again at 1 and
            // resynchronises with them (RFC 3103 10.2.1); their answers do not
            // replace the buffer (see `remember`), and a de-registration ends
            // the session.
            if let Some((Some(c), msg_type)) = head
                && counter_is_older(c, s.counter)
                && !matches!(
                    msg_type,
                    MessageType::RegisterRequest | MessageType::DeregisterRequest
                )
            {
                self.counters.stale_dropped += 1;
                return;
            }
        }
        let src = Source { from, conn: None };
        self.handle_message(now, src, bytes);
    }

    /// One message framed from TCP connection `conn` (by `StreamDecoder`).
    pub fn handle_stream_message(
        &mut self,
        now: Timestamp,
        conn: ConnectionId,
        from: SocketAddrV4,
        bytes: &[u8],
    ) {
        self.expire(now);
        self.counters.messages += 1;
        let src = Source {
            from,
            conn: Some(conn),
        };
        self.handle_message(now, src, bytes);
    }

    /// A fatal framing error on TCP connection `conn` from `from` (its
    /// `StreamDecoder` failed: the stream cannot be resynchronised). Queues
    /// the ERROR_RESPONSE like any other answer (RFC 3103 Appendix A: 207
    /// BAD_MESSAGE; signed when the host at `from` has a key, counted in
    /// [`Counters::malformed`] and [`Counters::errors`]). The daemon closes
    /// the connection once it has sent it.
    pub fn handle_stream_error(
        &mut self,
        now: Timestamp,
        conn: ConnectionId,
        from: SocketAddrV4,
        error: &FrameError,
    ) {
        self.expire(now);
        self.counters.messages += 1;
        self.counters.malformed += 1;
        let src = Source {
            from,
            conn: Some(conn),
        };
        // No counter, client or bind ID: nothing of the message was read. A
        // refusal: it moves no endpoint state (TCP has none to move anyway).
        self.respond(now, src, &[], None, Err(Refusal::new(error.code())), false);
    }

    /// TCP connection `conn` from `from` closed. By default
    /// ([`OnTcpClose::Keep`]) its hosts stay registered until their leases
    /// end; the next connection from the same private address that names one
    /// adopts it (asynchronous messages meanwhile are undeliverable). With
    /// [`OnTcpClose::Deregister`], the TCP hosts of `from`'s address that no
    /// open connection holds are de-registered at once, as by the
    /// administrator (their bindings end; DE-REGISTER_RESPONSE is
    /// undeliverable).
    pub fn handle_connection_closed(
        &mut self,
        now: Timestamp,
        conn: ConnectionId,
        from: SocketAddrV4,
    ) {
        self.expire(now);
        for h in self.hosts.values_mut() {
            if h.conn == Some(conn) {
                h.conn = None;
            }
        }
        if self.on_tcp_close == OnTcpClose::Deregister {
            let orphans: Vec<ClientId> = self
                .by_address
                .get(from.ip())
                .into_iter()
                .flatten()
                .filter(|c| {
                    self.hosts
                        .get(c)
                        .is_some_and(|h| h.record.transport == Transport::Tcp && h.conn.is_none())
                })
                .copied()
                .collect();
            for client in orphans {
                self.end_registration(client, now, DeregisterReason::Admin, true);
            }
        }
    }

    /// Serves every timer due at `now` (call it at [`Gateway::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.expire(now);
    }

    // ---- output ---------------------------------------------------------------

    /// The next message to send. Nothing while an event is pending: persist
    /// the events first (the durability contract of [`Event`]).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.events.is_empty() {
            return None;
        }
        self.transmits.pop_front()
    }

    /// The next event to persist, log or count.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Gateway::handle_timeout`] next has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers().iter().filter_map(|&(_, t)| t).min()
    }

    /// Every timer and its deadline.
    pub fn timers(&self) -> [(Timer, Option<Timestamp>); 3] {
        let idle = Duration::from_secs(u64::from(self.config.udp.session_idle_secs));
        [
            (Timer::BindingLease, self.leases.next_binding_expiry()),
            (
                Timer::RegistrationLease,
                self.leases.next_registration_expiry(),
            ),
            (
                Timer::UdpSessionIdle,
                self.session_order.first().map(|&(t, _)| t + idle),
            ),
        ]
    }

    // ---- admin (realm ctl) ----------------------------------------------------

    /// Frees a binding by order of the administrator: its host gets an
    /// asynchronous FREE_RESPONSE (RFC 3103 9.13.1; counter 0 over UDP).
    pub fn admin_free(&mut self, now: Timestamp, bind: BindId) -> Result<(), AdminError> {
        self.expire(now);
        let client = self
            .leases
            .binding(bind)
            .map(|b| b.client)
            .ok_or(AdminError::UnknownBinding(bind))?;
        let released = self
            .leases
            .free(client, bind, now)
            .map_err(|_| AdminError::UnknownBinding(bind))?;
        self.binding_ended(&released, FreeReason::Admin, true, now);
        Ok(())
    }

    /// De-registers a host by order of the administrator: its bindings end
    /// and it gets an asynchronous DE-REGISTER_RESPONSE (RFC 3103 9.5.3).
    pub fn admin_deregister(&mut self, now: Timestamp, client: ClientId) -> Result<(), AdminError> {
        self.expire(now);
        if !self.hosts.contains_key(&client) {
            return Err(AdminError::UnknownClient(client));
        }
        self.end_registration(client, now, DeregisterReason::Admin, true);
        Ok(())
    }

    // ---- data plane ------------------------------------------------------------

    /// Tells a host that the data plane dropped a packet of its (RFC 3103
    /// s10.4, "Errors Not From the RSIP Protocol": the gateway "MUST drop the
    /// associated packet(s) and send the host an ERROR_RESPONSE" with
    /// LOCAL_ADDR_UNALLOWED, LOCAL_ADDRPORT_UNALLOWED, REMOTE_ADDR_UNALLOWED,
    /// REMOTE_ADDRPORT_UNALLOWED or BAD_TUNNEL_TYPE). The message is
    /// asynchronous (counter 0 over UDP, RFC 3103 s10.1) and carries the
    /// host's client ID. Rate limiting is the data plane's
    /// (`dataplane::Config::violations_per_second`). `false`: the host is not
    /// registered (any more) and nothing was sent.
    pub fn report_violation(&mut self, now: Timestamp, client: ClientId, code: ErrorCode) -> bool {
        let Some(h) = self.hosts.get(&client).cloned() else {
            return false;
        };
        *self.counters.errors.entry(u16::from(code)).or_default() += 1;
        let to = match h.record.transport {
            Transport::Udp => Destination::Udp(SocketAddrV4::new(
                h.record.private_address,
                h.record.udp_port.unwrap_or(realm_wire::rsip::PORT),
            )),
            Transport::Tcp => match h.conn {
                Some(c) => Destination::Tcp(c),
                None => {
                    self.counters.undeliverable += 1;
                    return false;
                }
            },
        };
        self.push_event(Event::ErrorSent {
            to,
            code,
            client: Some(client),
        });
        self.send_async(
            &h.record,
            h.conn,
            |c| Message::error_response(code, c, Some(client), None),
            now,
        );
        true
    }

    // ---- snapshots ------------------------------------------------------------

    /// Counters and pool use.
    pub fn status(&self) -> GatewayStatus {
        GatewayStatus {
            hosts: self.hosts.len(),
            bindings: self.flows.len(),
            udp_sessions: self.sessions.len(),
            pool: self.leases.usage(),
            counters: self.counters.clone(),
            next_timeout: self.poll_timeout(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Every registered host, by client ID.
    pub fn hosts(&self) -> Vec<HostSnapshot> {
        let mut out: Vec<HostSnapshot> = self
            .hosts
            .values()
            .map(|h| HostSnapshot {
                record: h.record.clone(),
                connected: h.conn.is_some(),
                usage: self.leases.host_usage(h.record.client).unwrap_or_default(),
                bindings: self
                    .leases
                    .bindings_of(h.record.client)
                    .map(|b| b.bind)
                    .collect(),
            })
            .collect();
        out.sort_by_key(|h| h.record.client);
        out
    }

    /// Every live binding, by bind ID.
    pub fn bindings(&self) -> Vec<BindingRecord> {
        let mut out: Vec<BindingRecord> = self
            .flows
            .keys()
            .filter_map(|&b| self.binding_record(b))
            .collect();
        out.sort_by_key(|b| b.bind);
        out
    }

    /// The whole persistable state at once (what folding every event gives),
    /// e.g. for a store that compacts its log.
    pub fn persisted_state(&self) -> PersistedState {
        let mut hosts: Vec<HostRecord> = self.hosts.values().map(|h| h.record.clone()).collect();
        hosts.sort_by_key(|h| h.client);
        PersistedState {
            hosts,
            bindings: self.bindings(),
            quarantine: self.leases.records().quarantine,
        }
    }

    /// The lease manager, read-only (the data plane's lookups:
    /// `holder_of_port`, `holder_of_spi`, ...).
    pub fn leases(&self) -> &LeaseManager {
        &self.leases
    }

    // ---- internals shared by the handlers ---------------------------------------

    fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn binding_record(&self, bind: BindId) -> Option<BindingRecord> {
        let lease = self.leases.binding(bind)?;
        let flow = self.flows.get(&bind)?;
        let remote = self.remote_of(bind, flow);
        Some(Self::record_of(&lease, flow, remote))
    }

    /// Adds a binding's flow state, its remote side out of line unless it is
    /// "don't care".
    fn insert_flow(&mut self, bind: BindId, mut flow: Flow, remote: &RemoteSpec) {
        flow.remote = *remote != RemoteSpec::any();
        if flow.remote {
            self.remotes.insert(bind, remote.clone());
        }
        self.flows.insert(bind, flow);
    }

    /// Removes a binding's flow state; with its remote side.
    fn remove_flow(&mut self, bind: BindId) -> Option<(Flow, RemoteSpec)> {
        let flow = self.flows.remove(&bind)?;
        let remote = if flow.remote {
            self.remotes.remove(&bind).unwrap_or_else(RemoteSpec::any)
        } else {
            RemoteSpec::any()
        };
        Some((flow, remote))
    }

    /// The remote side of `bind` (whose flow is `flow`).
    fn remote_of(&self, bind: BindId, flow: &Flow) -> RemoteSpec {
        match flow.remote.then(|| self.remotes.get(&bind)).flatten() {
            Some(r) => r.clone(),
            None => RemoteSpec::any(),
        }
    }

    fn record_of(
        lease: &realm_lease::BindingRecord,
        flow: &Flow,
        remote: RemoteSpec,
    ) -> BindingRecord {
        BindingRecord {
            bind: lease.bind,
            client: lease.client,
            private_address: flow.private_address,
            method: lease.method,
            kind: flow.kind,
            public_address: lease.address,
            ports: lease.ports.clone(),
            spis: lease.spis.clone(),
            remote,
            tunnel: flow.tunnel,
            lease_secs: flow.lease_secs,
            expires_at: lease.expires_at,
        }
    }

    /// A fresh client ID: unpredictable, never 0, not in use (RFC 3103 9.3.3:
    /// "a different client ID to each host that is simultaneously registered").
    fn fresh_client_id(&mut self) -> ClientId {
        loop {
            let id = ClientId(self.rng.next_u32());
            if id.0 != 0 && !self.hosts.contains_key(&id) {
                return id;
            }
        }
    }

    /// Emits `msg` to `to`, signed when the host at `ip` has a key.
    fn encode(&mut self, msg: &Message, ip: Ipv4Addr, now: Timestamp) -> Vec<u8> {
        if let Some(key) = self.keys.get(&ip) {
            self.sent_counter = auth::next_send_counter(self.sent_counter, now.as_millis());
            if let Ok(signed) = auth::sign(msg, key, self.sent_counter) {
                return signed.to_bytes();
            }
        }
        msg.to_bytes()
    }

    /// Sends an asynchronous message to a host (RFC 3103 10.1: counter 0 over
    /// UDP; none over TCP, where counters are optional).
    fn send_async(
        &mut self,
        host: &HostRecord,
        conn: Option<ConnectionId>,
        build: impl Fn(Option<u32>) -> Message,
        now: Timestamp,
    ) {
        let (to, counter) = match host.transport {
            Transport::Udp => (
                Destination::Udp(SocketAddrV4::new(
                    host.private_address,
                    host.udp_port.unwrap_or(realm_wire::rsip::PORT),
                )),
                Some(0),
            ),
            Transport::Tcp => match conn {
                Some(c) => (Destination::Tcp(c), None),
                None => {
                    self.counters.undeliverable += 1;
                    return;
                }
            },
        };
        let msg = build(counter);
        let bytes = self.encode(&msg, host.private_address, now);
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Records the end of a binding: flow state, event, counters, and the
    /// asynchronous FREE_RESPONSE when `notify`.
    fn binding_ended(
        &mut self,
        released: &realm_lease::Released,
        reason: FreeReason,
        notify: bool,
        now: Timestamp,
    ) {
        let bind = released.binding.bind;
        let Some((flow, remote)) = self.remove_flow(bind) else {
            return;
        };
        let record = Self::record_of(&released.binding, &flow, remote);
        *self.counters.frees.entry(reason_name(&reason)).or_default() += 1;
        self.push_event(Event::BindingFreed {
            binding: record,
            reason,
            held_until: released.held_until,
        });
        if notify && let Some(h) = self.hosts.get(&released.binding.client).cloned() {
            let client = h.record.client;
            let b = bind;
            self.send_async(
                &h.record,
                h.conn,
                |c| Message::free_response(client, b, c),
                now,
            );
        }
    }

    /// Ends a registration and its bindings (DE-REGISTER, expiry, admin).
    fn end_registration(
        &mut self,
        client: ClientId,
        now: Timestamp,
        reason: DeregisterReason,
        notify: bool,
    ) {
        if let Ok(d) = self.leases.deregister(client, now) {
            for r in &d.released {
                self.binding_ended(r, FreeReason::Deregistered, false, now);
            }
        }
        self.forget_host(client, reason, notify, now);
    }

    /// Drops the engine's record of a host whose lease state is gone.
    fn forget_host(
        &mut self,
        client: ClientId,
        reason: DeregisterReason,
        notify: bool,
        now: Timestamp,
    ) {
        let Some(h) = self.hosts.remove(&client) else {
            return;
        };
        if let Some(v) = self.by_address.get_mut(&h.record.private_address) {
            v.retain(|&c| c != client);
            if v.is_empty() {
                self.by_address.remove(&h.record.private_address);
            }
        }
        *self
            .counters
            .deregistrations
            .entry(dereg_name(&reason))
            .or_default() += 1;
        self.push_event(Event::Deregistered {
            host: h.record.clone(),
            reason,
        });
        if notify {
            let id = client;
            self.send_async(
                &h.record,
                h.conn,
                |c| Message::deregister_response(id, c),
                now,
            );
        }
    }

    /// Ends what lapsed at or before `now`: bindings (FREE_RESPONSE),
    /// registrations (DE-REGISTER_RESPONSE), idle UDP buffers.
    fn expire(&mut self, now: Timestamp) {
        let due = self.leases.next_timeout().is_some_and(|t| t <= now);
        if due {
            let expired = self.leases.expire(now);
            for r in &expired.bindings {
                // RFC 3103 9.13.1, 10.1: a lease that ran out gets an
                // asynchronous FREE_RESPONSE; a binding ended only because
                // its host lapsed is covered by the DE-REGISTER_RESPONSE.
                let ran_out = r.binding.expires_at <= now;
                if ran_out {
                    self.counters.binding_expiries += 1;
                }
                let reason = if ran_out {
                    FreeReason::Expired
                } else {
                    FreeReason::Deregistered
                };
                self.binding_ended(r, reason, ran_out, now);
            }
            for &client in &expired.registrations {
                // RFC 3103 9.5.3: "An RSIP gateway MUST send a
                // DE-REGISTER_RESPONSE to an RSIP host when that host's
                // registration lease time times out."
                self.counters.registration_expiries += 1;
                self.forget_host(client, DeregisterReason::Expired, true, now);
            }
        }
        let idle = Duration::from_secs(u64::from(self.config.udp.session_idle_secs));
        while let Some(&(seen, addr)) = self.session_order.first() {
            if seen + idle > now {
                break;
            }
            self.session_order.remove(&(seen, addr));
            self.sessions.remove(&addr);
        }
    }

    /// Notes a registration granted at `now` (registration pressure).
    fn note_registration_pressure(&mut self, now: Timestamp) {
        let cap = self.config.udp.use_tcp_above_registrations_per_sec as usize;
        if cap == 0 {
            return;
        }
        self.prune_registrations(now);
        if self.recent_registrations.len() >= cap {
            self.recent_registrations.pop_front();
        }
        self.recent_registrations.push_back(now);
    }

    fn prune_registrations(&mut self, now: Timestamp) {
        while let Some(&t) = self.recent_registrations.front() {
            if t + Duration::from_secs(1) > now {
                break;
            }
            self.recent_registrations.pop_front();
        }
    }

    /// Whether registrations are under pressure: at least
    /// `udp.use_tcp_above_registrations_per_sec` granted in the last second,
    /// or the host table at least `udp.use_tcp_above_hosts_percent` full.
    /// Then a UDP REGISTER_REQUEST from an address without a registration
    /// must prove its address over TCP (see `handlers::process`).
    fn registration_pressure(&mut self, now: Timestamp) -> bool {
        let udp = self.config.udp;
        let rate = udp.use_tcp_above_registrations_per_sec as usize;
        if rate > 0 {
            self.prune_registrations(now);
            if self.recent_registrations.len() >= rate {
                return true;
            }
        }
        let percent = u64::from(udp.use_tcp_above_hosts_percent);
        (1..=100).contains(&percent)
            && self.hosts.len() as u64 * 100 >= u64::from(self.config.max_hosts) * percent
    }

    /// Drops an endpoint's "last message" buffer.
    pub(super) fn forget_session(&mut self, addr: SocketAddrV4) {
        if let Some(old) = self.sessions.remove(&addr) {
            self.session_order.remove(&(old.last_seen, addr));
        }
    }

    fn touch_session(&mut self, addr: SocketAddrV4, now: Timestamp) {
        if let Some(s) = self.sessions.get_mut(&addr) {
            self.session_order.remove(&(s.last_seen, addr));
            s.last_seen = now;
            self.session_order.insert((now, addr));
        }
    }

    /// Keeps the answer to a UDP request for its duplicates (RFC 3103 10.1),
    /// for endpoints of registered hosts only, at most `udp.max_sessions`.
    fn remember(
        &mut self,
        addr: SocketAddrV4,
        counter: u32,
        request: &[u8],
        response: &[u8],
        now: Timestamp,
    ) {
        // The answer to a stale request never replaces a newer one: the host
        // may still be retransmitting the newer request.
        if self
            .sessions
            .get(&addr)
            .is_some_and(|s| counter_is_older(counter, s.counter))
        {
            return;
        }
        if let Some(old) = self.sessions.remove(&addr) {
            self.session_order.remove(&(old.last_seen, addr));
        }
        while self.sessions.len() >= self.config.udp.max_sessions as usize {
            let Some(&(seen, oldest)) = self.session_order.first() else {
                break;
            };
            self.session_order.remove(&(seen, oldest));
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(
            addr,
            UdpSession {
                request: request.to_vec(),
                response: response.to_vec(),
                counter,
                last_seen: now,
            },
        );
        self.session_order.insert((now, addr));
    }
}

fn reason_name(r: &FreeReason) -> String {
    match r {
        FreeReason::Requested => "requested",
        FreeReason::Expired => "expired",
        FreeReason::Admin => "admin",
        FreeReason::Deregistered => "deregistered",
        FreeReason::Resync => "resync",
    }
    .to_owned()
}

fn dereg_name(r: &DeregisterReason) -> String {
    match r {
        DeregisterReason::Requested => "requested",
        DeregisterReason::Expired => "expired",
        DeregisterReason::Admin => "admin",
        DeregisterReason::Resync => "resync",
    }
    .to_owned()
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn flow_table_entry_is_compact() {
        // The remote side lives out of line (`Gateway::remotes`): a flow
        // table entry stays 16 bytes, the per-binding cost the
        // gateway_grants bench measures.
        assert_eq!(std::mem::size_of::<(BindId, Flow)>(), 16);
    }
}
