//! What the host engine hands out and takes in through its library API:
//! requests, bindings, the registration, events and errors.

use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use realm_wire::rsip::{
    Address, BindId, ClientId, DecodeError, ErrorCode, FlowPolicy, Ports, QueryTuple, RsipMethod,
    Spi, Spis, TunnelType,
};
use thiserror::Error;

/// The host's name for one library request (and for the bindings it
/// produces: a binding re-acquired after a resync keeps the `RequestId` of
/// the request that first obtained it). Assigned in increasing order from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a binding leases besides its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resources {
    /// RSA-IP: the whole address (RFC 3103 9.6).
    Address,
    /// RSAP-IP: the address and these ports, "don't care" or specific (RFC 3103 9.8).
    Ports(Ports),
    /// RSIPSEC: the address, SPIs ("don't care" or suggested) and ports
    /// (`Ports::DontNeed` when the IPsec traffic is not over TCP/UDP) (RFC 3104 6.2).
    Ipsec {
        /// Ports, or "don't need".
        ports: Ports,
        /// SPIs.
        spis: Spis,
    },
}

/// An ASSIGN request: what to lease and for which remote peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRequest {
    /// Method and resources.
    pub resources: Resources,
    /// The public address wanted ("don't care" by default).
    pub local_address: Address,
    /// The remote address the binding will reach (required by macro/micro
    /// remote flow policy; "don't care" by default).
    pub remote_address: Address,
    /// The remote ports (required by micro remote flow policy; "don't care"
    /// by default).
    pub remote_ports: Ports,
    /// Suggested lease, seconds (sent again in every EXTEND_REQUEST).
    pub lease_time: Option<u32>,
    /// Requested tunnel type.
    pub tunnel_type: Option<TunnelType>,
}

impl BindingRequest {
    fn new(resources: Resources) -> BindingRequest {
        BindingRequest {
            resources,
            local_address: Address::DONT_CARE_V4,
            remote_address: Address::DONT_CARE_V4,
            remote_ports: Ports::DONT_CARE_ONE,
            lease_time: None,
            tunnel_type: None,
        }
    }

    /// RSAP-IP, `count` ports, any.
    pub fn ports(count: u8) -> BindingRequest {
        BindingRequest::new(Resources::Ports(Ports::DontCare { count }))
    }

    /// RSAP-IP, these specific ports (a `Ports::Range` or `Ports::List`).
    pub fn specific_ports(ports: Ports) -> BindingRequest {
        BindingRequest::new(Resources::Ports(ports))
    }

    /// RSA-IP: a whole address.
    pub fn address() -> BindingRequest {
        BindingRequest::new(Resources::Address)
    }

    /// RSIPSEC: `spis` ("don't care" with a count, or suggested values), no ports.
    pub fn spis(spis: Spis) -> BindingRequest {
        BindingRequest::new(Resources::Ipsec {
            ports: Ports::DontNeed,
            spis,
        })
    }

    /// Asks for this public address.
    pub fn with_local_address(mut self, address: Address) -> BindingRequest {
        self.local_address = address;
        self
    }

    /// RSIPSEC: asks for these ports as well.
    pub fn with_ipsec_ports(mut self, ports: Ports) -> BindingRequest {
        if let Resources::Ipsec { ports: p, .. } = &mut self.resources {
            *p = ports;
        }
        self
    }

    /// The remote peer (flow policy).
    pub fn with_remote(mut self, address: Address, ports: Ports) -> BindingRequest {
        self.remote_address = address;
        self.remote_ports = ports;
        self
    }

    /// Suggests a lease, seconds.
    pub fn with_lease(mut self, seconds: u32) -> BindingRequest {
        self.lease_time = Some(seconds);
        self
    }

    /// Asks for a tunnel type.
    pub fn with_tunnel(mut self, tunnel_type: TunnelType) -> BindingRequest {
        self.tunnel_type = Some(tunnel_type);
        self
    }

    /// The RSIP method.
    pub fn method(&self) -> RsipMethod {
        match self.resources {
            Resources::Address => RsipMethod::RsaIp,
            Resources::Ports(_) => RsipMethod::RsapIp,
            Resources::Ipsec { .. } => RsipMethod::Rsipsec,
        }
    }
}

/// A LISTEN request (RFC 3103 9.16): the local address/ports to listen on and
/// the remote peer allowed to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenRequest {
    /// Address (local).
    pub local_address: Address,
    /// Ports (local).
    pub local_ports: Ports,
    /// Address (remote).
    pub remote_address: Address,
    /// Ports (remote).
    pub remote_ports: Ports,
    /// Suggested lease, seconds.
    pub lease_time: Option<u32>,
    /// Acceptable tunnel types.
    pub tunnel_types: Vec<TunnelType>,
}

/// The host's registration with the gateway (RFC 3103 9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The client ID the gateway gave.
    pub client_id: ClientId,
    /// The gateway's flow policy.
    pub flow_policy: FlowPolicy,
    /// Methods the gateway offers (RSAP-IP when it named none, 9.3.3).
    pub methods: Vec<RsipMethod>,
    /// Tunnel types the gateway offers (IP-IP when it named none, 9.3.3).
    pub tunnel_types: Vec<TunnelType>,
    /// When the registration lapses if nothing extends it: R = max(R, Bi)
    /// over the bindings' expiries (RFC 3103 6).
    pub expires: Instant,
}

/// A binding the gateway granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The gateway's bind ID.
    pub bind_id: BindId,
    /// The request that obtained it (kept across a resync's re-acquisition).
    pub request: RequestId,
    /// RSA-IP, RSAP-IP or RSIPSEC.
    pub method: RsipMethod,
    /// True for a LISTEN binding (RFC 3103 9.17).
    pub listen: bool,
    /// The public address leased.
    pub local_address: Address,
    /// The public ports leased (`Ports::DontNeed` for RSA-IP and for RSIPSEC
    /// without ports).
    pub local_ports: Ports,
    /// The remote peer the gateway allows ("don't care" without remote policy).
    pub remote_address: Address,
    /// The remote ports the gateway allows.
    pub remote_ports: Ports,
    /// SPIs leased (RSIPSEC), else empty.
    pub spis: Vec<Spi>,
    /// The tunnel to the gateway.
    pub tunnel_type: TunnelType,
    /// The tunnel endpoint when not the gateway itself (RFC 3103 9.9.3).
    pub tunnel_endpoint: Option<Address>,
    /// When the lease ends unless extended.
    pub expires: Instant,
}

impl Binding {
    /// The public IP address, when it is one (not an FQDN).
    pub fn public_address(&self) -> Option<IpAddr> {
        self.local_address.ip()
    }

    /// The public ports leased, expanded.
    pub fn ports(&self) -> Vec<u16> {
        self.local_ports.to_vec()
    }
}

/// The answer to a QUERY_REQUEST (RFC 3103 9.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The tuples the gateway gave (indicator 1 local address, 2 local
    /// network, 3 remote address, 4 remote network).
    pub tuples: Vec<QueryTuple>,
}

impl QueryAnswer {
    /// Whether `ip` is local (reach it directly) per this answer. RFC 3103
    /// 9.15.3: without a tuple that applies, the host assumes remote.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.tuples.iter().any(|t| match t.indicator.value {
            1 => t.address.ip() == Some(ip),
            2 => in_network(ip, &t.address, t.netmask.as_ref()),
            _ => false,
        })
    }
}

fn in_network(ip: IpAddr, network: &Address, mask: Option<&Address>) -> bool {
    match (ip, network, mask) {
        (IpAddr::V4(ip), Address::Ipv4(net), Some(Address::Ipv4Netmask(mask))) => {
            let m = u32::from(*mask);
            u32::from(ip) & m == u32::from(*net) & m
        }
        // RFC 3103 has no IPv6 netmask Addrtype: an IPv6 "mask" is an IPv6 address.
        (IpAddr::V6(ip), Address::Ipv6(net), Some(Address::Ipv6(mask))) => {
            let m = u128::from(*mask);
            u128::from(ip) & m == u128::from(*net) & m
        }
        _ => false,
    }
}

/// Why a binding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The host freed it (`Host::free`, or shutdown).
    Freed,
    /// The gateway sent an unsolicited FREE_RESPONSE (RFC 3103 9.13.3).
    RevokedByGateway,
    /// The gateway refused to extend it with this error (BAD_BIND_ID: it no
    /// longer knew it).
    ExtendRefused(ErrorCode),
    /// Its lease ran out before an extension was granted.
    Expired,
    /// The registration ended (de-registered by the gateway, lapsed, or shut down).
    Deregistered,
    /// The gateway lost the host's state (REGISTER_FIRST, RFC 3103 10.2.2):
    /// the host re-acquires the binding; a `BindingGranted` with the same
    /// `RequestId` follows when the gateway grants it again.
    Resync,
}

/// Why the registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnregisterReason {
    /// The host shut down.
    Shutdown,
    /// The gateway sent an unsolicited DE-REGISTER_RESPONSE (RFC 3103 9.5.3).
    DeregisteredByGateway,
    /// The registration lease lapsed (no binding held it up).
    Expired,
    /// The gateway no longer knew the host (REGISTER_FIRST or BAD_CLIENT_ID):
    /// the host registers again (RFC 3103 10.2.2).
    Resync,
}

/// Why a library request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The gateway answered ERROR_RESPONSE with this code.
    Gateway(ErrorCode),
    /// The gateway's answer could not be used (wrong client ID, a bind ID the
    /// host already holds, "don't care" where a value must be): the host sent
    /// FREE_REQUEST for it (RFC 3103 9.9.3).
    BadResponse,
    /// The host shut down before the request was answered.
    Shutdown,
}

/// What the host engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// Registered (RFC 3103 9.3).
    Registered(Registration),
    /// The gateway answered a UDP REGISTER with USE_TCP (RFC 3103 Appendix
    /// A): the host now uses TCP ([`crate::host::Host::config`] says so).
    /// Open a TCP connection to the gateway and call `handle_connected`.
    UseTcp,
    /// The gateway refused to register the host (REGISTRATION_DENIED, ...).
    /// The host tries again after `retry_pause_ms`.
    RegistrationFailed(ErrorCode),
    /// The registration ended; every binding was revoked just before.
    Unregistered {
        /// The client ID that ended.
        client_id: ClientId,
        /// Why.
        reason: UnregisterReason,
    },
    /// A binding was granted (ASSIGN or LISTEN).
    BindingGranted(Binding),
    /// A binding's lease was extended.
    BindingExtended {
        /// The binding.
        bind_id: BindId,
        /// Its new expiry.
        expires: Instant,
    },
    /// A binding ended: stop using its resources.
    BindingRevoked {
        /// The binding as it was.
        binding: Binding,
        /// Why.
        reason: RevokeReason,
    },
    /// The answer to `query`.
    QueryAnswered {
        /// The request.
        request: RequestId,
        /// The answer.
        answer: QueryAnswer,
    },
    /// A library request failed.
    RequestFailed {
        /// The request.
        request: RequestId,
        /// Why.
        error: RequestError,
    },
    /// An ERROR_RESPONSE the host did not ask for (RFC 3103 10.4: the data
    /// plane misused a resource), or an EXTEND the gateway refused without
    /// revoking the binding.
    GatewayError {
        /// The error.
        code: ErrorCode,
        /// The binding it names, if any.
        bind_id: Option<BindId>,
    },
    /// No answer: over UDP after `max_attempts` transmissions, over TCP after
    /// `tcp_response_timeout_ms`. Over UDP the host sends the same message
    /// again (same counter) after `retry_pause_ms`; over TCP it waits (the
    /// daemon should reconnect).
    GatewayUnreachable {
        /// Transmissions of the unanswered message in this round.
        attempts: u32,
    },
    /// `shutdown` finished (de-registered, or timed out). The engine is inert.
    Closed,
}

/// A library call the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HostError {
    /// The request cannot be expressed as a valid RSIP message.
    #[error("invalid request: {0}")]
    InvalidRequest(DecodeError),
    /// `max_queued_requests` requests are already waiting.
    #[error("too many queued requests")]
    QueueFull,
    /// The host holds no binding with this bind ID.
    #[error("no binding {0}")]
    UnknownBinding(BindId),
    /// The host is shutting down or closed.
    #[error("the host is shutting down")]
    ShuttingDown,
}

/// Counters of what the engine did with the gateway's messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Messages that failed to decode, or that only a host sends: silently
    /// discarded (RFC 3103 9.1.3).
    pub malformed: u64,
    /// Well-formed messages ignored: stale or duplicate counters, answers to
    /// nothing outstanding, unknown client or bind IDs.
    pub ignored: u64,
    /// Retransmissions (UDP), and re-sends after a reconnection (TCP).
    pub retransmissions: u64,
    /// Resynchronisations (ALREADY_REGISTERED, REGISTER_FIRST, BAD_CLIENT_ID).
    pub resyncs: u64,
    /// With `auth` configured: messages discarded for a missing or bad
    /// signature, or a replay counter not above the last one accepted.
    pub unauthenticated: u64,
}
