//! One request in, one answer out: decoding, UDP counters, authentication,
//! identity, then the RFC 3103 s9 / RFC 3104 s6.2 behaviour of each message.

use std::net::IpAddr;
use std::time::Duration;

use realm_lease::{
    AddressRequest, ClientId, Grant as LeaseGrant, PortRequest, PortSet, Spi, SpiRequest, SpiSet,
    Timestamp,
};
use realm_wire::rsip::{
    self, Address, BindingKind, ErrorCode, Flow as WireFlow, FlowPolicy, Grant, LocalFlowPolicy,
    Message, MessageType, Method, Ports, QueryTuple, RemoteFlowPolicy, RsipMethod, Spis, Transport,
    TunnelKind, TunnelType, View,
};

use super::config::{LocalPolicy, RemotePolicy};
use super::event::{Event, FreeReason, HostRecord, Transmit};
use super::policy::{self, Prefix, RemoteAddress, RemotePorts, RemoteSpec};
use super::{DeregisterReason, Flow, Gateway, Host, Refusal, Source};
use crate::auth;

/// The kind of assignment a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    RsaIp,
    RsapIp,
    Rsipsec,
    Listen,
}

/// The parts of an ASSIGN_REQUEST_* / LISTEN_REQUEST the gateway acts on.
struct Request<'a> {
    client: rsip::ClientId,
    local_address: &'a Address,
    local_ports: Option<&'a Ports>,
    remote_address: &'a Address,
    remote_ports: &'a Ports,
    spis: Option<&'a Spis>,
    lease: Option<u32>,
    tunnels: Vec<TunnelType>,
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn lease_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// A leased port set as a Ports parameter (RSIPSEC "don't need": none).
fn wire_ports(p: &PortSet) -> Ports {
    match p {
        PortSet::None => Ports::DontNeed,
        PortSet::Range { first, count } => Ports::Range {
            first: *first,
            count: u8::try_from(*count).unwrap_or(u8::MAX),
        },
        PortSet::List(l) if l.len() >= 2 => Ports::List(l.clone()),
        PortSet::List(l) => Ports::single(l.first().copied().unwrap_or(0)),
    }
}

fn wire_spis(s: &SpiSet) -> Spis {
    match s {
        SpiSet::None => Spis::DontCare { count: 1 },
        SpiSet::Range { first, count } => Spis::Range {
            first: *first,
            count: u16::try_from(*count).unwrap_or(u16::MAX),
        },
        SpiSet::List(l) if l.len() >= 2 => Spis::List(l.clone()),
        SpiSet::List(l) => Spis::single(l.first().copied().unwrap_or(Spi(0))),
    }
}

fn port_request(p: &Ports) -> PortRequest {
    if matches!(p, Ports::DontNeed) {
        return PortRequest::DontNeed;
    }
    // RFC 3103 9.8.3: "don't care", or "a value of all 0's".
    if p.is_dont_care() {
        return PortRequest::DontCare {
            count: u16::try_from(p.count()).unwrap_or(u16::MAX),
        };
    }
    match p {
        Ports::Range { first, count } => PortRequest::Range {
            first: *first,
            count: u16::from(*count),
        },
        other => PortRequest::List(other.to_vec()),
    }
}

fn spi_request(s: &Spis) -> SpiRequest {
    match s {
        Spis::DontCare { count } => SpiRequest::DontCare { count: *count },
        Spis::Range { first, count } => SpiRequest::Range {
            first: *first,
            count: *count,
        },
        Spis::List(l) => SpiRequest::List(l.clone()),
    }
}

fn ip_of(a: &Address) -> Option<IpAddr> {
    match a {
        Address::Ipv4(ip) | Address::Ipv4Netmask(ip) => Some(IpAddr::V4(*ip)),
        Address::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        Address::Fqdn(_) | Address::DontCare(_) => None,
    }
}

fn wire_address(ip: IpAddr) -> Address {
    match ip {
        IpAddr::V4(a) => Address::Ipv4(a),
        IpAddr::V6(a) => Address::Ipv6(a),
    }
}

fn wire_netmask(len: u8, v6: bool) -> Address {
    match policy::netmask(len, v6) {
        IpAddr::V4(m) => Address::Ipv4Netmask(m),
        IpAddr::V6(m) => Address::Ipv6(m),
    }
}

impl Gateway {
    /// Decodes and answers one message (every request gets exactly one
    /// answer; an ERROR_RESPONSE gets none).
    pub(super) fn handle_message(&mut self, now: Timestamp, src: Source, bytes: &[u8]) {
        let registered_before = self.by_address.contains_key(&src.ip());
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                // RFC 3103 9.1.3: "There are no error conditions that can be
                // caused by an ERROR_RESPONSE."
                if e.msg_type == Some(MessageType::ErrorResponse) {
                    self.counters.error_responses_ignored += 1;
                    return;
                }
                // RFC 3103 9.1.1: the IDs the faulty message names go back.
                let r = Refusal {
                    code: e.code(),
                    client: e.client_id,
                    bind: e.bind_id,
                };
                // Refused: answered, and nothing is remembered.
                self.respond(now, src, bytes, e.message_counter, Err(r), false);
                return;
            }
        };
        let counter = msg.message_counter();
        if let Some(result) = self.process(now, src, bytes, &msg) {
            // A registration ended by the host ends its UDP session too: the
            // next registration from this endpoint (a rebooted host starts
            // again at counter 1) begins a fresh "last message" buffer.
            if src.conn.is_none()
                && msg.msg_type() == MessageType::DeregisterRequest
                && result.is_ok()
            {
                self.forget_session(src.from);
            }
            // A REGISTER from the endpoint of a registered host is refused
            // (ALREADY_REGISTERED), so an accepted one never takes over a
            // live host's buffer.
            let moves =
                result.is_ok() && (registered_before || self.by_address.contains_key(&src.ip()));
            self.respond(now, src, bytes, counter, result, moves);
        }
    }

    /// Sends the answer to a request. `moves`: the request was accepted (it
    /// decoded, it is a request, it authenticated where the host has a key,
    /// and it was granted), so over UDP its answer becomes the endpoint's
    /// "last message" buffer and its counter the endpoint's (RFC 3103 10.1).
    /// A refusal is answered and changes nothing: a datagram anyone can
    /// forge (the source address and port of a registered host, a counter far
    /// ahead, nothing else valid) must not make the host's own later
    /// requests look stale (docs/signalling-auth.md).
    pub(super) fn respond(
        &mut self,
        now: Timestamp,
        src: Source,
        request: &[u8],
        counter: Option<u32>,
        result: Result<Message, Refusal>,
        moves: bool,
    ) {
        let msg = match result {
            Ok(m) => m,
            Err(r) => {
                *self.counters.errors.entry(u16::from(r.code)).or_default() += 1;
                self.push_event(Event::ErrorSent {
                    to: src.dest(),
                    code: r.code,
                    client: r.client,
                });
                Message::error_response(r.code, counter, r.client, r.bind)
            }
        };
        let bytes = self.encode(&msg, src.ip(), now);
        // RFC 3103 10.1: the answer goes to the "last message" buffer, kept
        // for registered hosts' endpoints only (bounded state), and only for
        // an accepted request (see above).
        if let Some(c) = counter.filter(|&c| c != 0)
            && src.conn.is_none()
            && moves
        {
            self.remember(src.from, c, request, &bytes, now);
        }
        self.transmits.push_back(Transmit {
            to: src.dest(),
            bytes,
        });
    }

    /// The answer to a decoded message, or `None` for no answer.
    fn process(
        &mut self,
        now: Timestamp,
        src: Source,
        bytes: &[u8],
        msg: &Message,
    ) -> Option<Result<Message, Refusal>> {
        use MessageType as M;
        let salvage = |code| Refusal {
            code,
            client: msg.client_id(),
            bind: msg.bind_id(),
        };
        if msg.msg_type() == M::ErrorResponse {
            self.counters.error_responses_ignored += 1;
            return None;
        }
        if src.transport() == Transport::Udp {
            // RFC 3103 Appendix A 102: UDP on a server that supports only TCP.
            if !self.config.udp.enabled {
                return Some(Err(salvage(ErrorCode::UseTcp)));
            }
            // RFC 3103 10.1: "If a message counter is not present in a message
            // from an RSIP host, but is required, the RSIP gateway MUST respond
            // with an ERROR_RESPONSE containing the MESSAGE_COUNTER_REQUIRED
            // error." Counter 0 marks asynchronous messages: refused too.
            if msg.message_counter().unwrap_or(0) == 0 {
                return Some(Err(salvage(ErrorCode::MessageCounterRequired)));
            }
        }
        let is_request = matches!(
            msg.msg_type(),
            M::RegisterRequest
                | M::DeregisterRequest
                | M::AssignRequestRsaIp
                | M::AssignRequestRsapIp
                | M::AssignRequestRsipsec
                | M::ExtendRequest
                | M::FreeRequest
                | M::QueryRequest
                | M::ListenRequest
        );
        if !is_request {
            // A gateway-to-host message sent to the gateway (Appendix B: the
            // gateway implements only the responses).
            return Some(Err(salvage(ErrorCode::IllegalMessage)));
        }
        if let Err(code) = self.authenticate(src, bytes, msg) {
            self.counters.auth_failures += 1;
            return Some(Err(salvage(code)));
        }
        // Return routability under pressure (docs/signalling-auth.md): a UDP
        // REGISTER proves nothing about its source address, so while
        // registrations pour in or the host table fills up, an address with
        // no registration (and no key to sign with) is sent to TCP, whose
        // handshake proves it. RFC 3103 Appendix A, 102 USE_TCP: "A host has
        // attempted to use UDP on a server that only supports TCP" (for this
        // request, now). Registered addresses keep being served over UDP.
        if src.transport() == Transport::Udp
            && msg.msg_type() == M::RegisterRequest
            && !self.by_address.contains_key(&src.ip())
            && !self.keys.contains_key(&src.ip())
            && self.registration_pressure(now)
        {
            self.counters.use_tcp_pressure += 1;
            return Some(Err(salvage(ErrorCode::UseTcp)));
        }
        let result = match msg.msg_type() {
            M::RegisterRequest => self.register(now, src, msg),
            M::DeregisterRequest => self.deregister(now, src, msg),
            M::AssignRequestRsaIp => self.assign(now, src, msg, Ask::RsaIp),
            M::AssignRequestRsapIp => self.assign(now, src, msg, Ask::RsapIp),
            M::AssignRequestRsipsec => self.assign(now, src, msg, Ask::Rsipsec),
            M::ListenRequest => self.assign(now, src, msg, Ask::Listen),
            M::ExtendRequest => self.extend(now, src, msg),
            M::FreeRequest => self.free(now, src, msg),
            M::QueryRequest => self.query(src, msg),
            _ => Err(salvage(ErrorCode::IllegalMessage)),
        };
        if result.is_ok() && self.keys.contains_key(&src.ip()) {
            self.persist_auth_counter(src);
        }
        Some(result)
    }

    /// Signalling authentication (RFC 3102 3.3; docs/signalling-auth.md): a
    /// host with a key must sign; the MAC is checked before the replay
    /// counter, and the counter is recorded only once both pass.
    fn authenticate(&mut self, src: Source, bytes: &[u8], msg: &Message) -> Result<(), ErrorCode> {
        let fail = if msg.msg_type() == MessageType::RegisterRequest {
            ErrorCode::RegistrationDenied
        } else {
            ErrorCode::BadClientId
        };
        let ip = src.ip();
        let Some(key) = self.keys.get(&ip) else {
            // No key for this host: refuse if keys are required, or if it
            // signs with a key the gateway does not know.
            if self.config.auth.require || msg.authentication().is_some() {
                return Err(fail);
            }
            return Ok(());
        };
        let a = auth::verify(bytes, msg, key).map_err(|_| fail)?;
        let replay = self.replay.entry(ip).or_default();
        replay.check(a.counter).map_err(|_| fail)?;
        replay.accept(a.counter);
        Ok(())
    }

    /// After an authenticated request changed state: the host's replay
    /// counter goes to the store, so a restart does not reopen old counters.
    fn persist_auth_counter(&mut self, src: Source) {
        let last = self.replay.get(&src.ip()).map_or(0, |r| r.last());
        let ids = self.by_address.get(&src.ip()).cloned().unwrap_or_default();
        for id in ids {
            if let Some(h) = self.hosts.get_mut(&id)
                && h.record.auth_counter != last
            {
                h.record.auth_counter = last;
                let host = h.record.clone();
                self.push_event(Event::HostUpdated { host });
            }
        }
    }

    /// The host a request names, checked against where it came from: its
    /// private address, transport and (TCP) connection.
    fn resolve(&mut self, src: Source, client: ClientId) -> Result<ClientId, Refusal> {
        let ip = src.ip();
        let bad = Refusal::client(ErrorCode::BadClientId, client);
        let Some(h) = self.hosts.get_mut(&client) else {
            // RFC 3103 9.4.3 etc.: not registered: REGISTER_FIRST; registered
            // under another client ID: BAD_CLIENT_ID.
            let code = if self.by_address.contains_key(&ip) {
                ErrorCode::BadClientId
            } else {
                ErrorCode::RegisterFirst
            };
            return Err(Refusal::client(code, client));
        };
        // A client ID is bound to its host's private address: naming another
        // host's changes nothing.
        if h.record.private_address != ip {
            return Err(bad);
        }
        match (src.conn, h.record.transport) {
            // RFC 3103 5: a host may not switch transports during a registration.
            (None, Transport::Tcp) => return Err(Refusal::client(ErrorCode::UseTcp, client)),
            (Some(_), Transport::Udp) => return Err(bad),
            (Some(conn), Transport::Tcp) => match h.conn {
                Some(c) if c == conn => {}
                Some(_) => return Err(bad),
                // Its connection closed (or the gateway restarted): adopt.
                None => h.conn = Some(conn),
            },
            (None, Transport::Udp) => {
                if h.record.udp_port != Some(src.from.port()) {
                    h.record.udp_port = Some(src.from.port());
                    let host = h.record.clone();
                    self.push_event(Event::HostUpdated { host });
                }
            }
        }
        Ok(client)
    }

    fn flow_policy(&self) -> FlowPolicy {
        FlowPolicy {
            local: match self.config.local_flow_policy {
                LocalPolicy::Macro => LocalFlowPolicy::Macro,
                LocalPolicy::Micro => LocalFlowPolicy::Micro,
            },
            remote: match self.config.remote_flow_policy {
                RemotePolicy::Macro => RemoteFlowPolicy::Macro,
                RemotePolicy::Micro => RemoteFlowPolicy::Micro,
                RemotePolicy::None => RemoteFlowPolicy::None,
            },
        }
    }

    // ---- REGISTER_REQUEST (RFC 3103 9.2) ------------------------------------------

    fn register(&mut self, now: Timestamp, src: Source, msg: &Message) -> Result<Message, Refusal> {
        let ip = src.ip();
        let clients = &self.config.clients;
        // RFC 3103 9.2.3: "If the gateway's policy will not allow the host to
        // register, the gateway MUST respond with ... REGISTRATION_DENIED".
        if !clients.is_empty() && !clients.iter().any(|p| p.contains(IpAddr::V4(ip))) {
            return Err(Refusal::new(ErrorCode::RegistrationDenied));
        }
        let existing = self.by_address.get(&ip).cloned().unwrap_or_default();
        // RFC 3103 9.2.3: "If the host is already registered with the
        // gateway, the gateway MUST respond with an ERROR_RESPONSE containing
        // the ALREADY_REGISTERED error and the RSIP host's client ID."
        for &c in &existing {
            let Some(h) = self.hosts.get(&c) else {
                continue;
            };
            let same = match src.conn {
                Some(conn) => h.conn == Some(conn),
                None => {
                    h.record.transport == Transport::Udp
                        && h.record.udp_port == Some(src.from.port())
                }
            };
            if same {
                return Err(Refusal::client(ErrorCode::AlreadyRegistered, c));
            }
        }
        let cap = self.config.max_registrations_per_address as usize;
        if existing.len() >= cap {
            return Err(match existing.first() {
                // One host per address: it re-registers (RFC 3103 10.2.1).
                Some(&c) if cap == 1 => Refusal::client(ErrorCode::AlreadyRegistered, c),
                _ => Refusal::new(ErrorCode::RegistrationDenied),
            });
        }
        let client = self.fresh_client_id();
        let reg = self
            .leases
            .register(client, now)
            .map_err(|e| Refusal::new(ErrorCode::from(e.code())))?;
        let record = HostRecord {
            client,
            private_address: ip,
            transport: src.transport(),
            udp_port: src.conn.is_none().then(|| src.from.port()),
            registered_at: now,
            expires_at: reg.expires_at,
            auth_counter: self.replay.get(&ip).map_or(0, |r| r.last()),
        };
        self.hosts.insert(
            client,
            Host {
                record: record.clone(),
                conn: src.conn,
            },
        );
        self.by_address.entry(ip).or_default().push(client);
        self.counters.registrations += 1;
        self.note_registration_pressure(now);
        self.push_event(Event::Registered { host: record });
        let methods: Vec<RsipMethod> = self
            .config
            .methods
            .iter()
            .map(|&m| RsipMethod::from(m))
            .collect();
        let tunnels: Vec<TunnelType> = self
            .config
            .tunnel_types
            .iter()
            .map(|&t| TunnelType::from(t))
            .collect();
        // RFC 3103 9.3.3: "If an RSIP method is not specified, RSAP-IP MUST be
        // assumed. If a tunnel type is not specified, IP-IP MUST be assumed."
        // Offering exactly the defaults, the gateway lists none (as
        // Appendix C 16.1 does).
        let methods = if methods == [RsipMethod::RsapIp] {
            Vec::new()
        } else {
            methods
        };
        let tunnels = if tunnels == [TunnelType::IpIp] {
            Vec::new()
        } else {
            tunnels
        };
        Message::register_response(
            client,
            self.config.registration_lease_secs,
            self.flow_policy(),
            msg.message_counter(),
            &methods,
            &tunnels,
        )
        .map_err(|_| Refusal::client(ErrorCode::InternalServerError, client))
    }

    // ---- DE-REGISTER_REQUEST (RFC 3103 9.4) ---------------------------------------

    fn deregister(
        &mut self,
        now: Timestamp,
        src: Source,
        msg: &Message,
    ) -> Result<Message, Refusal> {
        let View::DeregisterRequest { client_id } = msg.view() else {
            return Err(Refusal::new(ErrorCode::BadMessage));
        };
        let client = self.resolve(src, client_id)?;
        // RFC 3103 9.4.3: "Upon de-registering a host, an RSIP gateway must
        // delete all binds associated with that host and return their
        // resources to the pool of free resources."
        self.end_registration(client, now, DeregisterReason::Requested, false);
        // RFC 3103 9.5.3: "An RSIP gateway MUST send a DE-REGISTER_RESPONSE in
        // response to a valid DE-REGISTER_REQUEST."
        Ok(Message::deregister_response(
            client_id,
            msg.message_counter(),
        ))
    }

    // ---- ASSIGN_REQUEST_* and LISTEN_REQUEST ------------------------------------------

    fn request<'a>(msg: &'a Message) -> Option<Request<'a>> {
        Some(match msg.view() {
            View::AssignRequestRsaIp {
                client_id,
                local_address,
                remote_address,
                remote_ports,
                lease_time,
                tunnel_type,
            } => Request {
                client: client_id,
                local_address,
                local_ports: None,
                remote_address,
                remote_ports,
                spis: None,
                lease: lease_time,
                tunnels: tunnel_type.into_iter().collect(),
            },
            View::AssignRequestRsapIp {
                client_id,
                flow,
                lease_time,
                tunnel_type,
            } => Request {
                client: client_id,
                local_address: flow.local_address,
                local_ports: Some(flow.local_ports),
                remote_address: flow.remote_address,
                remote_ports: flow.remote_ports,
                spis: None,
                lease: lease_time,
                tunnels: tunnel_type.into_iter().collect(),
            },
            View::AssignRequestRsipsec {
                client_id,
                flow,
                spis,
                lease_time,
                tunnel_type,
            } => Request {
                client: client_id,
                local_address: flow.local_address,
                local_ports: Some(flow.local_ports),
                remote_address: flow.remote_address,
                remote_ports: flow.remote_ports,
                spis: Some(spis),
                lease: lease_time,
                tunnels: tunnel_type.into_iter().collect(),
            },
            View::ListenRequest {
                client_id,
                flow,
                lease_time,
            } => Request {
                client: client_id,
                local_address: flow.local_address,
                local_ports: Some(flow.local_ports),
                remote_address: flow.remote_address,
                remote_ports: flow.remote_ports,
                spis: None,
                lease: lease_time,
                tunnels: msg.tunnel_types().collect(),
            },
            _ => return None,
        })
    }

    /// The tunnel type for a request naming `asked` (none: IP-IP if offered,
    /// else the first offered).
    fn tunnel_for(&self, asked: &[TunnelType]) -> Option<TunnelKind> {
        let offered = &self.config.tunnel_types;
        if asked.is_empty() {
            return offered
                .iter()
                .copied()
                .find(|&t| t == TunnelKind::IpIp)
                .or_else(|| offered.first().copied());
        }
        asked
            .iter()
            .filter_map(|&t| TunnelKind::try_from(t).ok())
            .find(|t| offered.contains(t))
    }

    fn assign(
        &mut self,
        now: Timestamp,
        src: Source,
        msg: &Message,
        ask: Ask,
    ) -> Result<Message, Refusal> {
        let Some(req) = Self::request(msg) else {
            return Err(Refusal::new(ErrorCode::BadMessage));
        };
        let client = self.resolve(src, req.client)?;
        let refuse = |code| Refusal::client(code, client);
        let ip = src.ip();
        let offered = |m| self.config.methods.contains(&m);
        // Methods not offered: RSIPSEC has its own error (RFC 3104 6.2
        // IPSEC_UNALLOWED); the others are optional messages the gateway does
        // not support (UNSUPPORTED_MESSAGE; docs/deviations.md).
        match ask {
            Ask::RsaIp if !offered(Method::RsaIp) => {
                return Err(refuse(ErrorCode::UnsupportedMessage));
            }
            Ask::RsapIp if !offered(Method::RsapIp) => {
                return Err(refuse(ErrorCode::UnsupportedMessage));
            }
            Ask::Listen if !self.config.listen.enabled || !offered(Method::RsapIp) => {
                return Err(refuse(ErrorCode::UnsupportedMessage));
            }
            Ask::Rsipsec => {
                // RFC 3104 6.2: "If the client is not allowed to use IPsec
                // through the server, the server MUST respond with an
                // ERROR_RESPONSE containing the IPSEC_UNALLOWED parameter."
                let allowed = offered(Method::Rsipsec)
                    && (self.config.ipsec_clients.is_empty()
                        || self
                            .config
                            .ipsec_clients
                            .iter()
                            .any(|p| p.contains(IpAddr::V4(ip))));
                if !allowed {
                    return Err(refuse(ErrorCode::IpsecUnallowed));
                }
            }
            _ => {}
        }
        // RFC 3103 9.6.3, 9.8.3, 9.16.3: "If an unsupported or unallowed
        // tunnel type is specified, the RSIP gateway MUST respond with an
        // ERROR_RESPONSE containing the BAD_TUNNEL_TYPE error."
        let tunnel = self
            .tunnel_for(&req.tunnels)
            .ok_or_else(|| refuse(ErrorCode::BadTunnelType))?;
        let port_req = req.local_ports.map(port_request);
        // RFC 3103 7.1: "only local macro-flow policy can be used with RSA-IP";
        // under micro-flow policy "a host is allocated exactly one port at a
        // time" (9.9.3). Asking otherwise is FLOW_POLICY_VIOLATION.
        if self.config.local_flow_policy == LocalPolicy::Micro {
            let ports = port_req.as_ref().map_or(0, PortRequest::count);
            let violates = match ask {
                Ask::RsaIp => true,
                Ask::RsapIp | Ask::Listen => ports != 1,
                Ask::Rsipsec => ports > 1,
            };
            if violates {
                return Err(refuse(ErrorCode::FlowPolicyViolation));
            }
        }
        let remote = self.remote_for(req.remote_address, req.remote_ports, ask, client)?;
        // RFC 3103 10.6: "if remote micro-flow based policy is used, ... an
        // RSIP gateway only allow public gateways on RSIP hosts via
        // administrative override."
        if ask == Ask::Listen
            && self.config.remote_flow_policy == RemotePolicy::Micro
            && !self.config.listen.admin_override.contains(&ip)
        {
            return Err(refuse(ErrorCode::LocalAddrportUnallowed));
        }
        let address = match req.local_address {
            Address::Ipv4(a) if !a.is_unspecified() => AddressRequest::Specific(*a),
            a if policy::is_v6(a) && a.is_dont_care() => {
                return Err(refuse(ErrorCode::LocalAddrUnavailable));
            }
            a if a.is_dont_care() => AddressRequest::DontCare,
            // An IPv6 local address: the pool is IPv4 only.
            _ => return Err(refuse(ErrorCode::LocalAddrUnallowed)),
        };
        let lease = req.lease.map(secs);
        let ports = port_req.clone().unwrap_or(PortRequest::DontNeed);
        let granted: Result<LeaseGrant, _> = match ask {
            Ask::RsaIp => self.leases.assign_rsa_ip(client, address, lease, now),
            Ask::RsapIp | Ask::Listen => self
                .leases
                .assign_rsap_ip(client, address, ports, lease, now),
            Ask::Rsipsec => {
                let spis = req
                    .spis
                    .map(spi_request)
                    .unwrap_or(SpiRequest::DontCare { count: 1 });
                self.leases
                    .assign_rsipsec(client, address, ports, spis, lease, now)
            }
        };
        let grant = granted.map_err(|e| refuse(ErrorCode::from(e.code())))?;
        let lease_secs = lease_secs(grant.lease);
        let flow = Flow {
            private_address: ip,
            lease_secs,
            kind: if ask == Ask::Listen {
                BindingKind::Listen
            } else {
                BindingKind::Assign
            },
            tunnel,
            remote: false,
        };
        let record = Self::record_of(&grant.binding, &flow, remote.clone());
        let bind = grant.binding.bind;
        self.insert_flow(bind, flow, &remote);
        self.note_registration(client, grant.registration.expires_at);
        let method = match ask {
            Ask::RsaIp => "rsa-ip",
            Ask::RsapIp => "rsap-ip",
            Ask::Rsipsec => "rsipsec",
            Ask::Listen => "listen",
        };
        *self.counters.grants.entry(method.to_owned()).or_default() += 1;
        self.push_event(Event::BindingGranted {
            binding: record.clone(),
            registration_expires_at: grant.registration.expires_at,
        });
        let (remote_address, remote_ports) = remote.to_wire();
        let answer = Grant {
            lease_time: lease_secs,
            tunnel_type: TunnelType::from(tunnel),
            tunnel_endpoint: self.config.tunnel_endpoint.map(Address::Ipv4),
            message_counter: msg.message_counter(),
        };
        let local_address = Address::Ipv4(record.public_address);
        let flow = WireFlow {
            local_address: local_address.clone(),
            local_ports: wire_ports(&record.ports),
            remote_address: remote_address.clone(),
            remote_ports: remote_ports.clone(),
        };
        let (c, b) = (client, bind);
        let built = match ask {
            Ask::RsaIp => Message::assign_response_rsa_ip(
                c,
                b,
                local_address,
                remote_address,
                remote_ports,
                answer,
            ),
            Ask::RsapIp => Message::assign_response_rsap_ip(c, b, flow, answer),
            Ask::Listen => Message::listen_response(c, b, flow, answer),
            Ask::Rsipsec => {
                Message::assign_response_rsipsec(c, b, flow, wire_spis(&record.spis), answer)
            }
        };
        built.map_err(|_| Refusal {
            code: ErrorCode::InternalServerError,
            client: Some(client),
            bind: Some(bind),
        })
    }

    /// The remote side of a new binding under the remote flow policy (RFC
    /// 3103 7.2, 9.6.3, 9.7.3, 9.8.3, 9.9.3, 9.16.3, 9.17.3).
    fn remote_for(
        &self,
        address: &Address,
        ports: &Ports,
        ask: Ask,
        client: ClientId,
    ) -> Result<RemoteSpec, Refusal> {
        let refuse = |code| Refusal::client(code, client);
        let addr = RemoteAddress::from_wire(address).ok_or_else(|| refuse(ErrorCode::BadParam))?;
        let rports = RemotePorts::from_wire(ports);
        let (rules, default) = (&self.config.remote_rules, self.config.remote_default);
        let mut spec = match self.config.remote_flow_policy {
            // RFC 3103 9.7.3: "If no remote flow policy is used, the RSIP
            // gateway MUST use "don't care" values for the remote address and
            // ports parameters."
            RemotePolicy::None => RemoteSpec::any(),
            RemotePolicy::Macro => {
                // RFC 3103 9.8.3: under macro-flow policy "the host MUST
                // specify the remote address"; not enough detail is
                // FLOW_POLICY_VIOLATION, a refused peer REMOTE_ADDR_UNALLOWED.
                if addr == RemoteAddress::Any {
                    return Err(refuse(ErrorCode::FlowPolicyViolation));
                }
                if !policy::remote_allowed(rules, default, &addr, None) {
                    return Err(refuse(ErrorCode::RemoteAddrUnallowed));
                }
                // 9.9.3: "the remote ports parameter must contain a "don't
                // care" value"; 9.17.3 lets LISTEN_RESPONSE name them.
                let ports = if ask == Ask::Listen {
                    rports.clone()
                } else {
                    RemotePorts::Any { count: 1 }
                };
                RemoteSpec {
                    address: addr,
                    ports,
                }
            }
            RemotePolicy::Micro => {
                // RFC 3103 9.8.3: under micro-flow policy "the host MUST
                // specify the remote address and port number(s)";
                // REMOTE_ADDRPORT_UNALLOWED for a refused pair.
                if addr == RemoteAddress::Any || !rports.is_specific() {
                    return Err(refuse(ErrorCode::FlowPolicyViolation));
                }
                if !policy::remote_allowed(rules, default, &addr, Some(&rports.to_vec())) {
                    return Err(refuse(ErrorCode::RemoteAddrportUnallowed));
                }
                RemoteSpec {
                    address: addr,
                    ports: rports.clone(),
                }
            }
        };
        // RFC 3104 6.2: "If the port parameters were set to the "don't need"
        // value in the request, the RSIP server must do the same in the response."
        if ask == Ask::Rsipsec && rports == RemotePorts::DontNeed {
            spec.ports = RemotePorts::DontNeed;
        }
        Ok(spec)
    }

    /// R = max(R, Bi) happened in the lease manager: mirror it.
    fn note_registration(&mut self, client: ClientId, expires_at: Timestamp) {
        if let Some(h) = self.hosts.get_mut(&client) {
            h.record.expires_at = expires_at;
        }
    }

    // ---- EXTEND_REQUEST (RFC 3103 9.10) -------------------------------------------

    fn extend(&mut self, now: Timestamp, src: Source, msg: &Message) -> Result<Message, Refusal> {
        let View::ExtendRequest {
            client_id,
            bind_id,
            lease_time,
        } = msg.view()
        else {
            return Err(Refusal::new(ErrorCode::BadMessage));
        };
        let client = self.resolve(src, client_id)?;
        let bind = bind_id;
        // RFC 3103 9.10.3: REGISTER_FIRST, BAD_CLIENT_ID, BAD_BIND_ID; the
        // lease is the gateway's policy (9.11.3), at most max_binding_lease.
        let ext = self
            .leases
            .extend(client, bind, lease_time.map(secs), now)
            .map_err(|e| Refusal {
                code: ErrorCode::from(e.code()),
                client: Some(client),
                bind: Some(bind),
            })?;
        let granted = lease_secs(ext.lease);
        if let Some(f) = self.flows.get_mut(&bind) {
            f.lease_secs = granted;
        }
        self.note_registration(client, ext.registration.expires_at);
        if let Some(record) = self.binding_record(bind) {
            self.counters.extensions += 1;
            self.push_event(Event::BindingExtended {
                binding: record,
                registration_expires_at: ext.registration.expires_at,
            });
        }
        Ok(Message::extend_response(
            client_id,
            bind_id,
            granted,
            msg.message_counter(),
        ))
    }

    // ---- FREE_REQUEST (RFC 3103 9.12) ---------------------------------------------

    fn free(&mut self, now: Timestamp, src: Source, msg: &Message) -> Result<Message, Refusal> {
        let View::FreeRequest { client_id, bind_id } = msg.view() else {
            return Err(Refusal::new(ErrorCode::BadMessage));
        };
        let client = self.resolve(src, client_id)?;
        let bind = bind_id;
        let released = self.leases.free(client, bind, now).map_err(|e| Refusal {
            code: ErrorCode::from(e.code()),
            client: Some(client),
            bind: Some(bind),
        })?;
        self.binding_ended(&released, FreeReason::Requested, false, now);
        Ok(Message::free_response(
            client_id,
            bind_id,
            msg.message_counter(),
        ))
    }

    // ---- QUERY_REQUEST (RFC 3103 9.14) --------------------------------------------

    fn is_local(&self, ip: IpAddr) -> bool {
        self.config.local_addresses.contains(&ip)
            || self.config.local_networks.iter().any(|n| n.contains(ip))
    }

    fn query(&mut self, src: Source, msg: &Message) -> Result<Message, Refusal> {
        let View::QueryRequest { client_id } = msg.view() else {
            return Err(Refusal::new(ErrorCode::BadMessage));
        };
        self.resolve(src, client_id)?;
        let asked = msg.query_tuples();
        let mut tuples = Vec::new();
        if asked.is_empty() {
            // RFC 3103 9.14.3: "If no tuple is specified, the RSIP gateway
            // should interpret the message as a request for all tuples that it
            // is willing to provide."
            for &a in &self.config.local_addresses {
                tuples.push(QueryTuple::local_address(wire_address(a)));
            }
            for n in &self.config.local_networks {
                tuples.push(QueryTuple::local_network(
                    wire_address(n.addr),
                    wire_netmask(n.len, n.addr.is_ipv6()),
                ));
            }
        }
        for t in asked {
            // RFC 3103 9.14.3: "If an RSIP gateway cannot determine whether a
            // queried host or network is local or remote, it SHOULD transmit
            // a QUERY_RESPONSE with no response specified for the said host
            // or network." Realm knows only its local side (9.15.3).
            let local = match (t.indicator.value, &t.netmask) {
                (1, None) => ip_of(&t.address).is_some_and(|ip| self.is_local(ip)),
                (2, Some(mask)) => {
                    let net = ip_of(&t.address);
                    let len = ip_of(mask).and_then(policy::netmask_len);
                    match (net, len) {
                        (Some(net), Some(len)) => {
                            let asked = Prefix::new(net, len);
                            self.config.local_networks.iter().any(|n| n.covers(&asked))
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            // Indicators 1 and 2 mean "local address" / "local network" in
            // the response (9.15.1): the tuple goes back as asked.
            if local {
                tuples.push(t);
            }
        }
        Message::query_response(client_id, msg.message_counter(), &tuples)
            .map_err(|_| Refusal::client(ErrorCode::InternalServerError, client_id))
    }
}
