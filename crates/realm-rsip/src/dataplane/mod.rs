//! The RSIP gateway data plane, sans-IO: tunnelled packets from hosts are
//! checked against their leases and forwarded unchanged; public packets are
//! reassembled, demultiplexed to the host holding the matching binding and
//! tunnelled to it. Time comes in as an argument; nothing here touches a
//! socket or a clock, and the packet path does not allocate (ICMP errors,
//! fragments and new learned entries aside).
//!
//! The gateway engine keeps the [binding table](DataPlane::insert) in sync
//! with its leases; the daemon feeds [`DataPlane::outbound`] with packets read
//! from the private side (IP-in-IP and GRE raw sockets) and
//! [`DataPlane::inbound`] with packets read from the public side, and sends
//! what they return. Violations come back to the engine, which answers the
//! host with an ERROR_RESPONSE (RFC 3103 s10.4).
//!
//! # Outbound (host → public), in order
//! 1. The packet must be IP-in-IP (protocol 4) or GRE (47), not a fragment,
//!    and decapsulate cleanly (`realm_wire::ipip` / `gre`: outer checksum,
//!    inner packet whole, inner TTL above 0).
//! 2. The outer source must be a host's tunnel endpoint (else dropped, no
//!    report: nobody to report to), and that host must hold a binding with
//!    this tunnel type (else BAD_TUNNEL_TYPE).
//! 3. The inner IPv4 header checksum must verify: the gateway is a router and
//!    forwards the header it checked (RFC 1812 s5.2.2). Transport checksums
//!    are end to end and not checked (and under ESP they are not visible).
//! 4. The inner source must be leased to the host:
//!    - an RSA-IP address: anything goes (every protocol and port);
//!    - TCP/UDP: the source port must be in one of the host's port bindings
//!      on that address (else LOCAL_ADDRPORT_UNALLOWED, or
//!      LOCAL_ADDR_UNALLOWED when the host holds nothing on the address);
//!    - UDP from source port 500 or 4500 that nobody leased on the address
//!      (RFC 3104 s6.1 lets hosts share it): the host needs an RSIPSEC binding
//!      there; its IKE initiator cookie is claimed per address, first come
//!      first served, and a cookie another host claimed is dropped ("If the
//!      cookie is not unique, N drops the packet");
//!    - ESP/AH: an outbound SA's SPI is chosen by the peer (RFC 3104 s5: the
//!      leased SPIs are for the *incoming* SA), so it cannot be checked
//!      against the lease: any RSIPSEC (or RSA-IP) binding of the host on the
//!      address allows it. The (address, peer, SPI) is learned so that ICMP
//!      errors quoting the packet find the host;
//!    - ICMP: any binding of the host on the address. Queries (echo,
//!      timestamp, information, address mask) record (address, remote,
//!      identifier) → host for the reply (RFC 3102 s6.2). An identifier
//!      another host uses with the same remote on the same address is
//!      dropped: first wins, so replies are never ambiguous;
//!    - any other protocol: only under RSA-IP (a shared address has no
//!      demultiplexing field for it): LOCAL_ADDR_UNALLOWED;
//!    - a non-first fragment carries no ports: any binding of the host on
//!      the address allows it.
//! 5. The binding's remote flow policy (RFC 3103 s7.2): macro-flow checks the
//!    destination address (REMOTE_ADDR_UNALLOWED), micro-flow also the
//!    destination port of TCP and UDP (REMOTE_ADDRPORT_UNALLOWED).
//!
//! Violations are reported at most [`Config::violations_per_second`] times
//! per second per host (token bucket); the packet is dropped either way.
//!
//! # Inbound (public → host), RFC 3102 s3.2 decision tree
//! The outer header checksum is verified (a corrupted destination must not
//! pick a host). Fragments are reassembled first (RFC 3102 s3.1, see
//! `reassembly`), only for addresses the table knows. Then:
//! 1. An RSA-IP address: its host, whatever the protocol (ICMP requests
//!    included: the host owns the address as it would a DHCP lease).
//! 2. TCP/UDP: the owner of (address, destination port). UDP to 500 or 4500
//!    with no owner: IKE by the initiator cookie claimed outbound; on 4500
//!    ESP-in-UDP by the leased SPI, and NAT-keepalives are dropped (RFC 3948
//!    s2.3).
//! 3. ESP/AH: (protocol, SPI, address) → the RSIPSEC binding (RFC 3104 s5).
//!    The SPI parameter carries no protocol, so a leased SPI serves both.
//!    Reserved SPIs (0-255) are dropped.
//! 4. ICMP query replies: the recorded (address, remote, identifier). ICMP
//!    requests: the gateway itself, `Local` (RFC 3102 s6.2: "All ICMP
//!    requests [...] MUST be processed by the RSIP gateway and MUST NOT be
//!    forwarded to an RSIP host"). ICMP errors: by the quoted packet, which
//!    the host sent: its source must be the address, then its source port,
//!    its (peer) SPI as learned, or its query identifier; unmatched ones are
//!    "silently discarded".
//! 5. The matched binding's remote flow policy applies to the sender (RFC
//!    3103 s7.2: "implemented in both the ingress and egress directions"); for
//!    an ICMP error, to the quoted destination (the router that sent the error
//!    is not the remote).
//! 6. Nothing matched: `Local` if the address is one of the gateway's own
//!    ([`Config::local_addresses`]), else dropped. Never another host.
//!
//! The packet is tunnelled unchanged (no TTL decrement) under an outer
//! header written into the buffer's headroom (RFC 2003 s3.1 rules, see
//! `realm_wire::ipip`).
//!
//! # Speed
//! The fast path reads one table entry per packet: per public address a
//! two-level array of 16-byte cells indexed by port, each holding the
//! binding's slot, host, bind ID, endpoint and tunnel type. The `*_batch`
//! calls take what one `recvmmsg` returns and first read every packet's cell,
//! so that the cache misses of a large table overlap (`benches/dataplane.rs`).
//!
//! Interpretations where the RFCs leave room are listed in `docs/deviations.md`.
//!
//! # Limits (all in [`Config`])
//! Reassembly memory per source and in total, fragments per datagram and
//! timeout; learned cookies, ICMP queries and ESP flows per host and in total,
//! each with an idle timeout; bindings per host; SPIs per binding; violation
//! reports per host per second.

mod buffer;
mod counters;
mod learned;
mod ratelimit;
mod reassembly;
mod table;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Duration;

use realm_lease::{BindId, ClientId, Timestamp};
use realm_wire::ipip::DontFragment;
use realm_wire::ipv4::IpProtocol;
use realm_wire::rsip::{ErrorCode, TunnelType};
use realm_wire::udp_encap::{self, Classified, IKE_PORT, UDP_ENCAP_PORT};
use realm_wire::{Error as WireError, ah, esp, gre, icmp, ipip, ipv4, isakmp, tcp, udp};

pub use buffer::{HEADROOM, MAX_PACKET, PacketBuf};
pub use counters::{
    Counters, DirectionCounters, DropReason, ReassemblyCounters, ViolationCounters,
};
pub use table::{Binding, RemoteFlow, Resources, TableError, Tunnel};

use learned::{ClaimError, LearnedMap, OnCollision};
use reassembly::{Outcome, Reassembler};
use table::{Cell, Encap, Kind, NONE, Remote, Slot, Table};

/// Data plane configuration. [`Config::new`] gives the defaults listed on
/// each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The gateway's private address: outer source of packets tunnelled to hosts.
    pub tunnel_source: Ipv4Addr,
    /// Outer TTL of packets tunnelled to hosts. Default 64.
    pub tunnel_ttl: u8,
    /// Outer DF of packets tunnelled to hosts (RFC 2003 s3.1: copied when
    /// set inside). Default [`DontFragment::CopyInner`].
    pub dont_fragment: DontFragment,
    /// The gateway's own public addresses: unmatched inbound packets to them
    /// are [`Inbound::Local`]. RSA-IP bindings on them are refused.
    pub local_addresses: Vec<Ipv4Addr>,
    /// Time a datagram may take to reassemble, from its first fragment. Default 30 s.
    pub reassembly_timeout: Duration,
    /// Reassembly memory, all sources. Default 4 MiB.
    pub reassembly_memory: usize,
    /// Reassembly memory per source address. Default 256 KiB.
    pub reassembly_memory_per_source: usize,
    /// Fragments per datagram. Default 64.
    pub reassembly_max_fragments: usize,
    /// Idle time of an ICMP query mapping. Default 60 s.
    pub query_timeout: Duration,
    /// ICMP query mappings in total. Default 65536.
    pub max_queries: usize,
    /// ICMP query mappings per host. Default 64.
    pub max_queries_per_host: u32,
    /// Idle time of an IKE cookie claim (RFC 2407 s4.5's default phase 1
    /// lifetime). Default 8 h.
    pub cookie_timeout: Duration,
    /// IKE cookie claims in total. Default 65536.
    pub max_cookies: usize,
    /// IKE cookie claims per host. Default 32.
    pub max_cookies_per_host: u32,
    /// Idle time of a learned outbound ESP/AH flow (for ICMP errors). Default 10 min.
    pub esp_flow_timeout: Duration,
    /// Learned ESP/AH flows in total. Default 65536.
    pub max_esp_flows: usize,
    /// Learned ESP/AH flows per host. Default 64.
    pub max_esp_flows_per_host: u32,
    /// Violation reports per second per host (also the burst). Default 10.
    pub violations_per_second: u32,
    /// Bindings per host. Default 1024.
    pub max_bindings_per_host: usize,
    /// SPIs per binding (each is a table entry). Default 4096.
    pub max_spis_per_binding: u32,
}

impl Config {
    /// The defaults, with the gateway's private tunnel address.
    pub fn new(tunnel_source: Ipv4Addr) -> Config {
        Config {
            tunnel_source,
            tunnel_ttl: 64,
            dont_fragment: DontFragment::CopyInner,
            local_addresses: Vec::new(),
            reassembly_timeout: Duration::from_secs(30),
            reassembly_memory: 4 << 20,
            reassembly_memory_per_source: 256 << 10,
            reassembly_max_fragments: 64,
            query_timeout: Duration::from_secs(60),
            max_queries: 65536,
            max_queries_per_host: 64,
            cookie_timeout: Duration::from_secs(8 * 3600),
            max_cookies: 65536,
            max_cookies_per_host: 32,
            esp_flow_timeout: Duration::from_secs(600),
            max_esp_flows: 65536,
            max_esp_flows_per_host: 64,
            violations_per_second: 10,
            max_bindings_per_host: 1024,
            max_spis_per_binding: 4096,
        }
    }
}

/// A host's misuse of its leases, for the engine to answer with an
/// ERROR_RESPONSE (RFC 3103 s10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// The host (whose tunnel the packet came through).
    pub host: ClientId,
    /// BAD_TUNNEL_TYPE, LOCAL_ADDR_UNALLOWED, LOCAL_ADDRPORT_UNALLOWED,
    /// REMOTE_ADDR_UNALLOWED or REMOTE_ADDRPORT_UNALLOWED.
    pub code: ErrorCode,
}

/// What to do with a packet from a host's tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Send `packet[range]` (the inner packet, unchanged) to the public network.
    Forward {
        /// The host.
        host: ClientId,
        /// The binding that allowed it.
        bind: BindId,
        /// Where the inner packet is in the input.
        range: Range<usize>,
    },
    /// Drop it; report the violation if there is one (already rate-limited).
    Drop {
        /// Why.
        reason: DropReason,
        /// The report for the engine.
        violation: Option<Violation>,
    },
}

/// What to do with a packet from the public network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The buffer holds the packet encapsulated for the host: send it to `endpoint`.
    Tunnel {
        /// The host.
        host: ClientId,
        /// The binding that matched.
        bind: BindId,
        /// The host's tunnel endpoint (the outer destination).
        endpoint: Ipv4Addr,
        /// The encapsulation written.
        tunnel: TunnelType,
    },
    /// For the gateway itself (the buffer holds the packet, reassembled if it
    /// was fragmented): ICMP requests, and unmatched packets to its own addresses.
    Local,
    /// A fragment kept for reassembly; nothing to send.
    Buffered,
    /// Drop it.
    Drop {
        /// Why.
        reason: DropReason,
    },
}

/// Packets per warm-up pass of the batch calls.
pub const BATCH: usize = 32;

/// Bindings above which the batch calls warm the cache first (below, the
/// cells fit in L2 and the pass is pure overhead).
const WARM_ABOVE: usize = 16 * 1024;

enum Target {
    /// The binding in this cell, no remote policy to check.
    Cell(Cell),
    /// The binding in this slot, policy checked.
    Slot(u32),
    Local,
    Drop(DropReason),
}

/// The data plane: binding table, reassembly, learned state, counters.
#[derive(Debug)]
pub struct DataPlane {
    config: Config,
    table: Table,
    reassembly: Reassembler,
    /// (address, initiator cookie) → host, RFC 3104 s6.1.
    cookies: LearnedMap<(u32, u64)>,
    /// (address, remote, identifier) → host, RFC 3102 s6.2.
    queries: LearnedMap<(u32, u32, u16)>,
    /// (address, peer, SPI, protocol) → host, for ICMP errors.
    esp_flows: LearnedMap<(u32, u32, u32, u8)>,
    limiter: ratelimit::RateLimiter,
    counters: Counters,
    ident: u16,
}

fn violation_code(reason: DropReason) -> Option<ErrorCode> {
    Some(match reason {
        DropReason::BadTunnelType => ErrorCode::BadTunnelType,
        DropReason::LocalAddrUnallowed => ErrorCode::LocalAddrUnallowed,
        DropReason::LocalAddrportUnallowed => ErrorCode::LocalAddrportUnallowed,
        DropReason::RemoteAddrUnallowed => ErrorCode::RemoteAddrUnallowed,
        DropReason::RemoteAddrportUnallowed => ErrorCode::RemoteAddrportUnallowed,
        _ => return None,
    })
}

fn wire_drop(err: WireError) -> DropReason {
    match err {
        WireError::Checksum { .. } => DropReason::HeaderChecksum,
        _ => DropReason::Malformed,
    }
}

fn claim_drop(in_use: DropReason) -> impl Fn(ClaimError) -> DropReason {
    move |e| match e {
        ClaimError::InUse => in_use,
        ClaimError::Full => DropReason::StateFull,
    }
}

/// ICMP queries whose replies the gateway maps back (RFC 3102 s6.2: echo,
/// timestamp and address mask; information too): the request types.
fn is_query_request(t: icmp::Message) -> bool {
    matches!(
        t,
        icmp::Message::EchoRequest
            | icmp::Message::Timestamp
            | icmp::Message::InfoRequest
            | icmp::Message::Unknown(17)
    )
}

fn is_query_reply(t: icmp::Message) -> bool {
    matches!(
        t,
        icmp::Message::EchoReply
            | icmp::Message::TimestampReply
            | icmp::Message::InfoReply
            | icmp::Message::Unknown(18)
    )
}

pub(crate) fn is_shared_ike_port(port: u16) -> bool {
    port == IKE_PORT || port == UDP_ENCAP_PORT
}

/// Source and destination ports of TCP or UDP. In a first fragment (`partial`)
/// UDP's length covers more than is there, so only its header is required;
/// TCP always needs its whole header (a first fragment too short for it is
/// the tiny-fragment attack of RFC 1858 s3 and is refused).
pub(crate) fn transport_ports(
    protocol: IpProtocol,
    payload: &[u8],
    partial: bool,
) -> Option<(u16, u16)> {
    match protocol {
        IpProtocol::Tcp => {
            let p = tcp::Packet::new_checked(payload).ok()?;
            Some((p.src_port(), p.dst_port()))
        }
        IpProtocol::Udp => {
            let p = if partial {
                (payload.len() >= udp::HEADER_LEN).then(|| udp::Packet::new_unchecked(payload))?
            } else {
                udp::Packet::new_checked(payload).ok()?
            };
            Some((p.src_port(), p.dst_port()))
        }
        _ => None,
    }
}

/// The UDP payload (what is there of it in a first fragment).
fn udp_payload(payload: &[u8], partial: bool) -> Option<&[u8]> {
    if partial {
        return payload.get(udp::HEADER_LEN..);
    }
    let p = udp::Packet::new_checked(payload).ok()?;
    payload.get(udp::HEADER_LEN..usize::from(p.len()))
}

fn esp_spi(protocol: IpProtocol, payload: &[u8]) -> Option<u32> {
    match protocol {
        IpProtocol::Esp => esp::Packet::new_checked(payload).ok().map(|p| p.spi()),
        IpProtocol::Ah => ah::Packet::new_checked(payload).ok().map(|p| p.spi()),
        _ => None,
    }
}

impl DataPlane {
    /// An empty data plane.
    pub fn new(config: Config) -> DataPlane {
        let table = Table::new(
            &config.local_addresses,
            config.max_bindings_per_host,
            config.max_spis_per_binding,
        );
        let reassembly = Reassembler::new(reassembly::Limits {
            timeout: config.reassembly_timeout,
            max_total: config.reassembly_memory,
            max_per_source: config.reassembly_memory_per_source,
            max_fragments: config.reassembly_max_fragments,
        });
        DataPlane {
            cookies: LearnedMap::new(
                config.cookie_timeout,
                config.max_cookies,
                config.max_cookies_per_host,
                OnCollision::Refuse,
            ),
            queries: LearnedMap::new(
                config.query_timeout,
                config.max_queries,
                config.max_queries_per_host,
                OnCollision::Refuse,
            ),
            esp_flows: LearnedMap::new(
                config.esp_flow_timeout,
                config.max_esp_flows,
                config.max_esp_flows_per_host,
                OnCollision::MarkAmbiguous,
            ),
            limiter: ratelimit::RateLimiter::new(config.violations_per_second),
            counters: Counters::default(),
            ident: 0,
            table,
            reassembly,
            config,
        }
    }

    /// Sets the next Identification of the outer headers written towards
    /// hosts. A daemon seeds it randomly at start so that a restart does not
    /// reuse the identifiers of fragments a host may still be reassembling
    /// (RFC 6864 s4.1: the ID must be unique per source, destination and
    /// protocol for the maximum datagram lifetime).
    pub fn set_ident(&mut self, next: u16) {
        self.ident = next;
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds a binding. All or nothing: on error the table is unchanged.
    pub fn insert(&mut self, binding: Binding) -> Result<(), TableError> {
        self.table.insert(binding)
    }

    /// Reserves room for `additional` bindings (before a bulk restore).
    pub fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional);
    }

    /// Removes a binding. Learned state that relied on it dies with it.
    pub fn remove(&mut self, bind: BindId) -> Option<Binding> {
        let (binding, host_gone) = self.table.remove(bind)?;
        if host_gone {
            self.limiter.forget(binding.host);
        }
        Some(binding)
    }

    /// Removes every binding of a host (de-registration, RFC 3103 s9.4).
    pub fn remove_host(&mut self, host: ClientId) -> Vec<Binding> {
        self.table
            .binds_of(host)
            .into_iter()
            .filter_map(|b| self.remove(b))
            .collect()
    }

    /// A binding by bind ID.
    pub fn binding(&self, bind: BindId) -> Option<&Binding> {
        self.table.binding(bind)
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when there is no binding.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Learned entries: (IKE cookies, ICMP queries, ESP/AH flows).
    pub fn learned(&self) -> (usize, usize, usize) {
        (self.cookies.len(), self.queries.len(), self.esp_flows.len())
    }

    /// When [`DataPlane::handle_timeout`] next has work: reassembly deadlines
    /// and learned-state expiry.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.reassembly.next_deadline(),
            self.cookies.next_expiry(),
            self.queries.next_expiry(),
            self.esp_flows.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Expires what is due: incomplete datagrams, idle learned entries (at
    /// most 4096 of each per call; call again if `poll_timeout` is still due).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        const BUDGET: usize = 4096;
        self.reassembly
            .expire(now, BUDGET, &mut self.counters.reassembly);
        self.cookies.expire(now, &self.table, BUDGET);
        self.queries.expire(now, &self.table, BUDGET);
        self.esp_flows.expire(now, &self.table, BUDGET);
    }

    // ---------------------------------------------------------------- outbound

    /// Checks a packet from a host's tunnel (IP-in-IP or GRE, outer header
    /// included) and says whether to forward its inner packet.
    pub fn outbound(&mut self, now: Timestamp, packet: &[u8]) -> Outbound {
        self.counters.outbound.packets += 1;
        self.counters.outbound.bytes += packet.len() as u64;
        match self.outbound_inner(now, packet) {
            Ok((host, bind, range)) => {
                self.counters.outbound.passed += 1;
                Outbound::Forward { host, bind, range }
            }
            Err((reason, host)) => {
                self.counters.outbound.drop(reason);
                let violation = match (host, violation_code(reason)) {
                    (Some(host), Some(code)) => {
                        if self.limiter.allow(host, now) {
                            self.counters.violations.reported += 1;
                            Some(Violation { host, code })
                        } else {
                            self.counters.violations.suppressed += 1;
                            None
                        }
                    }
                    _ => None,
                };
                Outbound::Drop { reason, violation }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn outbound_inner(
        &mut self,
        now: Timestamp,
        packet: &[u8],
    ) -> Result<(ClientId, BindId, Range<usize>), (DropReason, Option<ClientId>)> {
        let outer = ipv4::Packet::new_checked(packet).map_err(|_| (DropReason::Malformed, None))?;
        if outer.is_fragment() {
            return Err((DropReason::OuterFragment, None));
        }
        let header_len = usize::from(outer.header_len());
        let (encap, inner, offset) = match outer.protocol() {
            IpProtocol::IpIp => {
                let d = ipip::decapsulate(packet).map_err(|e| (wire_drop(e), None))?;
                (Encap::IpIp, d.inner, header_len)
            }
            IpProtocol::Gre => {
                let d = gre::decapsulate(packet).map_err(|e| (wire_drop(e), None))?;
                (Encap::Gre, d.inner, header_len + d.gre.header_len())
            }
            _ => return Err((DropReason::NotTunnelled, None)),
        };
        let outer_src = outer.src_addr().to_bits();
        // The common case first: unfragmented TCP/UDP from a leased port of a
        // binding granted to this very tunnel, with no remote policy. It gives
        // the same answer as the full path below without the endpoint lookup
        // (one cache miss fewer on a large table).
        if let Some(cell) = self.fast_outbound(outer_src, encap, &inner) {
            if !inner.verify_checksum() {
                return Err((DropReason::HeaderChecksum, None));
            }
            let len = usize::from(inner.total_len());
            return Ok((cell.host, cell.bind, offset..offset + len));
        }
        let Some(&endpoint) = self.table.endpoint(outer_src) else {
            return Err((DropReason::UnknownEndpoint, None));
        };
        let host = endpoint.host;
        // RFC 3103 s10.4: "If a host attempts to establish or use an improper
        // tunnel type, the RSIP gateway MUST respond with an ERROR_RESPONSE
        // containing the BAD_TUNNEL_TYPE error."
        if !endpoint.allows(encap) {
            return Err((DropReason::BadTunnelType, Some(host)));
        }
        // RFC 1812 s5.2.2: a router verifies the header checksum.
        if !inner.verify_checksum() {
            return Err((DropReason::HeaderChecksum, None));
        }
        let index = self
            .check_outbound(now, host, encap, &inner)
            .map_err(|r| (r, Some(host)))?;
        let len = usize::from(inner.total_len());
        Ok((host, self.table.slot(index).bind, offset..offset + len))
    }

    /// The binding that allows `inner` when it is unfragmented TCP or UDP
    /// from a leased port (or an RSA-IP address) of a binding whose tunnel is
    /// (`outer_src`, `encap`) and which has no remote flow policy.
    #[inline]
    fn fast_outbound(
        &self,
        outer_src: u32,
        encap: Encap,
        inner: &ipv4::Packet<&[u8]>,
    ) -> Option<Cell> {
        let protocol = inner.protocol();
        if inner.is_fragment() || !matches!(protocol, IpProtocol::Tcp | IpProtocol::Udp) {
            return None;
        }
        let entry = self.table.addr(inner.src_addr().to_bits())?;
        let (sport, _) = transport_ports(protocol, inner.payload(), false)?;
        let cell = entry.port_cell(sport);
        (cell.index() != NONE
            && cell.endpoint == outer_src
            && cell.encap() == encap
            && cell.any_remote())
        .then_some(cell)
    }

    fn check_outbound(
        &mut self,
        now: Timestamp,
        host: ClientId,
        encap: Encap,
        inner: &ipv4::Packet<&[u8]>,
    ) -> Result<u32, DropReason> {
        let src = inner.src_addr().to_bits();
        let dst = inner.dst_addr().to_bits();
        // RFC 3103 s10.4: "If a host attempts to use a local address which it
        // has not been allocated, the RSIP gateway MUST drop the associated
        // packet(s) and send the host an ERROR_RESPONSE containing the
        // LOCAL_ADDR_UNALLOWED error."
        let Some(entry) = self.table.addr(src) else {
            return Err(DropReason::LocalAddrUnallowed);
        };
        let protocol = inner.protocol();
        let first = inner.frag_offset() == 0;
        let partial = inner.more_frags();
        let payload = inner.payload();
        let ports = match protocol {
            IpProtocol::Tcp | IpProtocol::Udp if first => {
                Some(transport_ports(protocol, payload, partial).ok_or(DropReason::Malformed)?)
            }
            _ => None,
        };
        if entry.whole_owner() != NONE {
            let index = entry.whole_owner();
            let slot = *self.table.slot(index);
            if slot.host != host {
                return Err(DropReason::LocalAddrUnallowed);
            }
            if slot.encap != encap {
                return Err(DropReason::BadTunnelType);
            }
            self.remote_allows(index, &slot, dst, ports.map(|p| p.1))?;
            return Ok(index);
        }
        if !first {
            return self.host_binding_on(host, encap, src, dst, None, |_| true);
        }
        match protocol {
            IpProtocol::Tcp | IpProtocol::Udp => {
                let (sport, dport) = ports.ok_or(DropReason::Malformed)?;
                let owner = entry.port_owner(sport);
                if owner != NONE {
                    let slot = *self.table.slot(owner);
                    if slot.host == host {
                        if slot.encap != encap {
                            return Err(DropReason::BadTunnelType);
                        }
                        self.remote_allows(owner, &slot, dst, Some(dport))?;
                        return Ok(owner);
                    }
                } else if protocol == IpProtocol::Udp && is_shared_ike_port(sport) {
                    let data = udp_payload(payload, partial).ok_or(DropReason::Malformed)?;
                    return self.outbound_ike(now, host, encap, (src, sport), (dst, dport), data);
                }
                // RFC 3103 s10.4: "If a host attempts to use a local address /
                // port tuple which it has not been allocated, the RSIP gateway
                // MUST drop the associated packet(s) and send the host an
                // ERROR_RESPONSE containing the LOCAL_ADDRPORT_UNALLOWED error."
                Err(if self.holds_address(host, src) {
                    DropReason::LocalAddrportUnallowed
                } else {
                    DropReason::LocalAddrUnallowed
                })
            }
            IpProtocol::Esp | IpProtocol::Ah => {
                let spi = esp_spi(protocol, payload).ok_or(DropReason::Malformed)?;
                let index =
                    self.host_binding_on(host, encap, src, dst, None, |k| k == Kind::Ipsec)?;
                // Learned for ICMP errors only; a full table or a second host
                // on the same flow does not stop the packet.
                let _ = self.esp_flows.claim(
                    (src, dst, spi, u8::from(protocol)),
                    host,
                    index,
                    &self.table,
                    now,
                );
                Ok(index)
            }
            IpProtocol::Icmp => {
                let message =
                    icmp::Packet::new_checked(payload).map_err(|_| DropReason::Malformed)?;
                let index = self.host_binding_on(host, encap, src, dst, None, |_| true)?;
                // RFC 3102 s6.2: "The RSIP gateway must use this tuple to map
                // incoming ICMP responses to the private address of the
                // appropriate RSIP host."
                if is_query_request(message.msg_type()) {
                    self.queries
                        .claim(
                            (src, dst, message.echo_ident()),
                            host,
                            index,
                            &self.table,
                            now,
                        )
                        .map_err(claim_drop(DropReason::QueryIdInUse))?;
                }
                Ok(index)
            }
            _ => Err(DropReason::LocalAddrUnallowed),
        }
    }

    /// IKE (or, on 4500, ESP-in-UDP and keepalives) from the shared source
    /// port 500 or 4500 (RFC 3104 s6.1).
    fn outbound_ike(
        &mut self,
        now: Timestamp,
        host: ClientId,
        encap: Encap,
        (src, sport): (u32, u16),
        (dst, dport): (u32, u16),
        data: &[u8],
    ) -> Result<u32, DropReason> {
        let index = self
            .host_binding_on(host, encap, src, dst, Some(dport), |k| k == Kind::Ipsec)
            .map_err(|e| {
                if e == DropReason::LocalAddrUnallowed && self.holds_address(host, src) {
                    DropReason::LocalAddrportUnallowed
                } else {
                    e
                }
            })?;
        let ike = if sport == IKE_PORT {
            data
        } else {
            match udp_encap::classify(data) {
                Ok(Classified::Ike(message)) => message,
                Ok(Classified::Esp(esp_packet)) => {
                    if let Some(spi) = esp_spi(IpProtocol::Esp, esp_packet) {
                        let _ = self.esp_flows.claim(
                            (src, dst, spi, u8::from(IpProtocol::Esp)),
                            host,
                            index,
                            &self.table,
                            now,
                        );
                    }
                    return Ok(index);
                }
                Ok(Classified::Keepalive) => return Ok(index),
                Err(_) => return Err(DropReason::Malformed),
            }
        };
        let cookie = isakmp::initiator_cookie(ike).ok_or(DropReason::Malformed)?;
        // RFC 3104 s6.1: "If the cookie is unique, N allows the use of this
        // cookie for this an all subsequent packets between X and Y on this
        // RSIP binding. If the cookie is not unique, N drops the packet."
        self.cookies
            .claim(
                (src, u64::from_be_bytes(cookie)),
                host,
                index,
                &self.table,
                now,
            )
            .map_err(claim_drop(DropReason::CookieInUse))?;
        Ok(index)
    }

    fn holds_address(&self, host: ClientId, address: u32) -> bool {
        self.table
            .host_slots(host)
            .iter()
            .any(|&i| self.table.slot(i).address == address)
    }

    /// A binding of `host` on `address` of a kind `accept`s, through the
    /// tunnel type the packet came in, whose remote flow policy allows the
    /// destination. Hosts hold few bindings ([`Config::max_bindings_per_host`]).
    fn host_binding_on(
        &self,
        host: ClientId,
        encap: Encap,
        address: u32,
        remote: u32,
        remote_port: Option<u16>,
        accept: impl Fn(Kind) -> bool,
    ) -> Result<u32, DropReason> {
        let mut err = DropReason::LocalAddrUnallowed;
        for &i in self.table.host_slots(host) {
            let slot = self.table.slot(i);
            if slot.address != address || !accept(slot.kind) {
                continue;
            }
            if slot.encap != encap {
                err = DropReason::BadTunnelType;
                continue;
            }
            match self.remote_allows(i, slot, remote, remote_port) {
                Ok(()) => return Ok(i),
                Err(e) => err = e,
            }
        }
        Err(err)
    }

    /// RFC 3103 s7.2 remote flow policy. Macro: "the host MUST use the
    /// specified local parameters only with the remote address specified";
    /// micro: "only with the remote address and port specified".
    fn remote_allows(
        &self,
        index: u32,
        slot: &Slot,
        remote: u32,
        remote_port: Option<u16>,
    ) -> Result<(), DropReason> {
        match slot.remote {
            Remote::Any => Ok(()),
            Remote::Address(a) if a == remote => Ok(()),
            Remote::AddressPorts(a) if a == remote => match remote_port {
                Some(p)
                    if !self
                        .table
                        .remote_ports(index)
                        .is_some_and(|s| s.contains(p)) =>
                {
                    Err(DropReason::RemoteAddrportUnallowed)
                }
                _ => Ok(()),
            },
            _ => Err(DropReason::RemoteAddrUnallowed),
        }
    }

    /// [`DataPlane::outbound`] for a batch (what one `recvmmsg` returned):
    /// `results` is cleared and gets one answer per packet, in order.
    ///
    /// Same answers as one call per packet, faster on large tables: a first
    /// pass over up to [`BATCH`] packets reads the table entries each will
    /// need, so that their cache misses overlap instead of queueing one
    /// packet after the other.
    pub fn outbound_batch<P: AsRef<[u8]>>(
        &mut self,
        now: Timestamp,
        packets: &[P],
        results: &mut Vec<Outbound>,
    ) {
        results.clear();
        for chunk in packets.chunks(BATCH) {
            self.warm_outbound(chunk);
            for packet in chunk {
                let r = self.outbound(now, packet.as_ref());
                results.push(r);
            }
        }
    }

    /// [`DataPlane::inbound`] for a batch of buffers; `results` is cleared
    /// and gets one answer per buffer, in order. See [`DataPlane::outbound_batch`].
    pub fn inbound_batch(
        &mut self,
        now: Timestamp,
        bufs: &mut [PacketBuf],
        results: &mut Vec<Inbound>,
    ) {
        results.clear();
        for chunk in bufs.chunks_mut(BATCH) {
            self.warm_inbound(chunk);
            for buf in chunk.iter_mut() {
                let r = self.inbound(now, buf);
                results.push(r);
            }
        }
    }

    /// Reads the demultiplexing cell each TCP/UDP packet of the batch will
    /// need: the loads of different packets are independent, so their cache
    /// misses overlap. Only a cache hint: nothing here decides anything.
    fn warm(&self, keys: impl Iterator<Item = Option<(u32, u16)>>) {
        // A small table stays in cache: the pass would only cost.
        if self.table.len() < WARM_ABOVE {
            return;
        }
        let mut touched = 0u32;
        for (address, port) in keys.flatten() {
            if let Some(entry) = self.table.addr(address) {
                touched ^= entry.port_cell(port).endpoint;
            }
        }
        std::hint::black_box(touched);
    }

    fn warm_outbound<P: AsRef<[u8]>>(&self, packets: &[P]) {
        self.warm(packets.iter().map(|p| {
            let p = p.as_ref();
            let outer = ipv4::Packet::new_checked(p).ok()?;
            let mut start = usize::from(outer.header_len());
            if outer.protocol() == IpProtocol::Gre {
                start += gre::Packet::new_checked(p.get(start..)?).ok()?.header_len();
            }
            let inner = ipv4::Packet::new_checked(p.get(start..)?).ok()?;
            let (sport, _) = transport_ports(inner.protocol(), inner.payload(), true)?;
            Some((inner.src_addr().to_bits(), sport))
        }));
    }

    fn warm_inbound(&self, bufs: &[PacketBuf]) {
        self.warm(bufs.iter().map(|b| {
            let ip = ipv4::Packet::new_checked(b.packet()).ok()?;
            let (_, dport) = transport_ports(ip.protocol(), ip.payload(), true)?;
            Some((ip.dst_addr().to_bits(), dport))
        }));
    }

    // ----------------------------------------------------------------- inbound

    /// Demultiplexes a packet from the public network (in `buf`, which it
    /// rewrites: see [`Inbound`]).
    pub fn inbound(&mut self, now: Timestamp, buf: &mut PacketBuf) -> Inbound {
        self.counters.inbound.packets += 1;
        self.counters.inbound.bytes += buf.len() as u64;
        if self.reassembly.next_deadline().is_some_and(|t| t <= now) {
            self.reassembly
                .expire(now, 8, &mut self.counters.reassembly);
        }
        let result = self.inbound_inner(now, buf);
        let c = &mut self.counters.inbound;
        match &result {
            Inbound::Tunnel { .. } => c.passed += 1,
            Inbound::Local => c.local += 1,
            Inbound::Buffered => c.buffered += 1,
            Inbound::Drop { reason } => c.drop(*reason),
        }
        result
    }

    fn inbound_inner(&mut self, now: Timestamp, buf: &mut PacketBuf) -> Inbound {
        let (dst, fragment, total_len) = match ipv4::Packet::new_checked(buf.packet()) {
            Ok(ip) if ip.verify_checksum() => (
                ip.dst_addr().to_bits(),
                ip.is_fragment(),
                usize::from(ip.total_len()),
            ),
            Ok(_) => {
                return Inbound::Drop {
                    reason: DropReason::HeaderChecksum,
                };
            }
            Err(_) => {
                return Inbound::Drop {
                    reason: DropReason::Malformed,
                };
            }
        };
        buf.truncate(total_len);
        if self.table.addr(dst).is_none() {
            return Inbound::Drop {
                reason: DropReason::NoBinding,
            };
        }
        if fragment {
            // RFC 3102 s3.1: "The RSIP gateway MUST reassemble all incoming
            // packet fragments from the public network in order to be able to
            // route and tunnel them to the proper host."
            match self
                .reassembly
                .push(now, buf, &mut self.counters.reassembly)
            {
                Outcome::Buffered => return Inbound::Buffered,
                Outcome::Dropped(reason) => return Inbound::Drop { reason },
                Outcome::Complete => {}
            }
        }
        match self.demux(now, buf.packet()) {
            Target::Cell(cell) => self.encapsulate(buf, cell),
            Target::Slot(index) => {
                let cell = self.table.cell(index);
                self.encapsulate(buf, cell)
            }
            Target::Local => Inbound::Local,
            Target::Drop(reason) => Inbound::Drop { reason },
        }
    }

    fn demux(&mut self, now: Timestamp, packet: &[u8]) -> Target {
        let Ok(ip) = ipv4::Packet::new_checked(packet) else {
            return Target::Drop(DropReason::Malformed);
        };
        let src = ip.src_addr().to_bits();
        let dst = ip.dst_addr().to_bits();
        let Some(entry) = self.table.addr(dst) else {
            return Target::Drop(DropReason::NoBinding);
        };
        let local = entry.local;
        let miss = |reason| {
            if local {
                Target::Local
            } else {
                Target::Drop(reason)
            }
        };
        let protocol = ip.protocol();
        let payload = ip.payload();
        // RFC 3102 s3.2: "In the case where a public IP address is assigned
        // for each host, a unique public IP address is mapped to each RSIP host."
        if entry.whole_owner() != NONE {
            if entry.whole.any_remote() {
                return Target::Cell(entry.whole);
            }
            return self.ingress_whole(entry.whole_owner(), protocol, src, payload);
        }
        // "The IP protocol field SHOULD be used to determine what in the
        // subsequent headers these demultiplexing fields ought to be."
        match protocol {
            IpProtocol::Tcp | IpProtocol::Udp => {
                let Some((sport, dport)) = transport_ports(protocol, payload, false) else {
                    return Target::Drop(DropReason::Malformed);
                };
                let cell = entry.port_cell(dport);
                if cell.index() != NONE {
                    if cell.any_remote() {
                        return Target::Cell(cell);
                    }
                    return self.ingress(cell.index(), src, Some(sport));
                }
                if protocol == IpProtocol::Udp && is_shared_ike_port(dport) {
                    let Some(data) = udp_payload(payload, false) else {
                        return Target::Drop(DropReason::Malformed);
                    };
                    return match self.inbound_shared_udp(now, dst, dport, data) {
                        Ok(index) => self.ingress(index, src, Some(sport)),
                        Err(DropReason::Malformed) => Target::Drop(DropReason::Malformed),
                        Err(reason) => miss(reason),
                    };
                }
                miss(DropReason::NoBinding)
            }
            IpProtocol::Esp | IpProtocol::Ah => {
                let Some(spi) = esp_spi(protocol, payload) else {
                    return Target::Drop(DropReason::Malformed);
                };
                if esp::is_reserved_spi(spi) {
                    return miss(DropReason::ReservedSpi);
                }
                // RFC 3104 s5: "If N cannot find an appropriate mapping, it
                // MUST discard the packet."
                match self.table.spi_owner(dst, spi) {
                    NONE => miss(DropReason::NoBinding),
                    owner => self.ingress(owner, src, None),
                }
            }
            IpProtocol::Icmp => self.inbound_icmp(now, src, dst, payload, local),
            _ => miss(DropReason::NoBinding),
        }
    }

    /// UDP to 500 or 4500 with no port owner: IKE by initiator cookie,
    /// ESP-in-UDP by leased SPI, keepalives dropped.
    fn inbound_shared_udp(
        &mut self,
        now: Timestamp,
        dst: u32,
        dport: u16,
        data: &[u8],
    ) -> Result<u32, DropReason> {
        let ike = if dport == IKE_PORT {
            data
        } else {
            match udp_encap::classify(data) {
                Ok(Classified::Ike(message)) => message,
                Ok(Classified::Esp(esp_packet)) => {
                    let spi = esp_spi(IpProtocol::Esp, esp_packet).ok_or(DropReason::Malformed)?;
                    if esp::is_reserved_spi(spi) {
                        return Err(DropReason::ReservedSpi);
                    }
                    return match self.table.spi_owner(dst, spi) {
                        NONE => Err(DropReason::NoBinding),
                        owner => Ok(owner),
                    };
                }
                // RFC 3948 s2.3: "the receiver SHOULD ignore" a keepalive.
                Ok(Classified::Keepalive) => return Err(DropReason::NatKeepalive),
                Err(_) => return Err(DropReason::Malformed),
            }
        };
        let cookie = isakmp::initiator_cookie(ike).ok_or(DropReason::Malformed)?;
        self.cookies
            .lookup(&(dst, u64::from_be_bytes(cookie)), &self.table, now)
            .map(|l| l.slot)
            .ok_or(DropReason::NoBinding)
    }

    fn inbound_icmp(
        &mut self,
        now: Timestamp,
        src: u32,
        dst: u32,
        payload: &[u8],
        local: bool,
    ) -> Target {
        let Ok(message) = icmp::Packet::new_checked(payload) else {
            return Target::Drop(DropReason::Malformed);
        };
        let kind = message.msg_type();
        if is_query_reply(kind) {
            return match self
                .queries
                .lookup(&(dst, src, message.echo_ident()), &self.table, now)
            {
                Some(l) => self.ingress(l.slot, src, None),
                None if local => Target::Local,
                None => Target::Drop(DropReason::NoBinding),
            };
        }
        if kind.is_error() {
            return match self.icmp_error_owner(now, dst, &message) {
                Ok((index, remote, remote_port)) => self.ingress(index, remote, remote_port),
                Err(_) if local => Target::Local,
                Err(reason) => Target::Drop(reason),
            };
        }
        // RFC 3102 s6.2: "All ICMP requests (e.g., echo request) arriving at
        // the RSIP gateway MUST be processed by the RSIP gateway and MUST NOT
        // be forwarded to an RSIP host."
        if is_query_request(kind) || local {
            return Target::Local;
        }
        Target::Drop(DropReason::NoBinding)
    }

    /// RFC 3102 s6.2: "Incoming ICMP error response messages can be forwarded
    /// to the appropriate RSIP host by examining the IP header and port
    /// numbers embedded within the ICMP packet. If these fields are not
    /// present, the packet should be silently discarded." The quoted packet
    /// was sent by the host: its source is the address, its source port the
    /// leased one. Returns the binding and the quoted remote (for the policy).
    fn icmp_error_owner(
        &mut self,
        now: Timestamp,
        dst: u32,
        message: &icmp::Packet<&[u8]>,
    ) -> Result<(u32, u32, Option<u16>), DropReason> {
        let unmatched = DropReason::IcmpErrorUnmatched;
        let quoted = icmp::Invoking::parse(message.data()).map_err(|_| unmatched)?;
        if quoted.header.src_addr.to_bits() != dst {
            return Err(unmatched);
        }
        let remote = quoted.header.dst_addr.to_bits();
        let protocol = quoted.header.protocol;
        let entry = self.table.addr(dst).ok_or(unmatched)?;
        let learned_esp = |this: &mut Self, spi: u32, protocol: IpProtocol| match this
            .esp_flows
            .lookup(&(dst, remote, spi, u8::from(protocol)), &this.table, now)
        {
            Some(l) if l.ambiguous => Err(DropReason::IcmpErrorAmbiguous),
            Some(l) => Ok(l.slot),
            None => Err(unmatched),
        };
        match protocol {
            IpProtocol::Tcp | IpProtocol::Udp => {
                let (sport, dport) = quoted.ports().ok_or(unmatched)?;
                let owner = entry.port_owner(sport);
                if owner != NONE {
                    return Ok((owner, remote, Some(dport)));
                }
                if protocol != IpProtocol::Udp || !is_shared_ike_port(sport) {
                    return Err(unmatched);
                }
                // RFC 1812 s4.3.2.3 routers quote more than 8 bytes: enough,
                // sometimes, for the IKE cookie or the ESP-in-UDP SPI.
                let data = quoted.data.get(udp::HEADER_LEN..).ok_or(unmatched)?;
                let ike = if sport == IKE_PORT {
                    data
                } else {
                    match udp_encap::classify(data) {
                        Ok(Classified::Ike(m)) => m,
                        Ok(Classified::Esp(e)) => {
                            let spi = esp_spi(IpProtocol::Esp, e).ok_or(unmatched)?;
                            let index = learned_esp(self, spi, IpProtocol::Esp)?;
                            return Ok((index, remote, Some(dport)));
                        }
                        _ => return Err(unmatched),
                    }
                };
                let cookie = isakmp::initiator_cookie(ike).ok_or(unmatched)?;
                let l = self
                    .cookies
                    .lookup(&(dst, u64::from_be_bytes(cookie)), &self.table, now)
                    .ok_or(unmatched)?;
                Ok((l.slot, remote, Some(dport)))
            }
            IpProtocol::Esp | IpProtocol::Ah => {
                let spi = quoted.spi().ok_or(unmatched)?;
                Ok((learned_esp(self, spi, protocol)?, remote, None))
            }
            IpProtocol::Icmp => {
                let ident = quoted.echo_ident().ok_or(unmatched)?;
                let l = self
                    .queries
                    .lookup(&(dst, remote, ident), &self.table, now)
                    .ok_or(unmatched)?;
                Ok((l.slot, remote, None))
            }
            _ => Err(unmatched),
        }
    }

    /// The remote flow policy in the ingress direction (RFC 3103 s7.2).
    fn ingress(&self, index: u32, remote: u32, remote_port: Option<u16>) -> Target {
        let slot = self.table.slot(index);
        match self.remote_allows(index, slot, remote, remote_port) {
            Ok(()) => Target::Slot(index),
            Err(_) => Target::Drop(DropReason::RemoteFlowPolicy),
        }
    }

    /// An RSA-IP address: the host, after its remote flow policy (for an ICMP
    /// error, against the quoted destination).
    fn ingress_whole(&self, index: u32, protocol: IpProtocol, src: u32, payload: &[u8]) -> Target {
        if self.table.slot(index).remote == Remote::Any {
            return Target::Slot(index);
        }
        match protocol {
            IpProtocol::Tcp | IpProtocol::Udp => {
                let port = transport_ports(protocol, payload, false).map(|p| p.0);
                self.ingress(index, src, port)
            }
            IpProtocol::Icmp => {
                let quoted = icmp::Packet::new_checked(payload)
                    .ok()
                    .filter(|m| m.msg_type().is_error())
                    .and_then(|m| icmp::Invoking::parse(m.data()).ok());
                match quoted {
                    Some(q) => {
                        let port = q.ports().map(|p| p.1);
                        self.ingress(index, q.header.dst_addr.to_bits(), port)
                    }
                    None => self.ingress(index, src, None),
                }
            }
            _ => self.ingress(index, src, None),
        }
    }

    /// Writes the outer header(s) in front of the packet (RFC 2003 s3.1 via
    /// `realm_wire::ipip::Tunnel::outer_repr`; GRE per RFC 2784 without
    /// options).
    fn encapsulate(&mut self, buf: &mut PacketBuf, to: Cell) -> Inbound {
        let endpoint = Ipv4Addr::from_bits(to.endpoint);
        let len = buf.len();
        let (protocol, gre_len) = match to.encap() {
            Encap::IpIp => (IpProtocol::IpIp, 0),
            Encap::Gre => (IpProtocol::Gre, gre::BASE_HEADER_LEN),
        };
        let outer = {
            let inner = ipv4::Packet::new_unchecked(buf.packet());
            // RFC 2003 s3.1: "An encapsulator MUST NOT encapsulate a datagram
            // with TTL = 0."
            if inner.ttl() == 0 {
                return Inbound::Drop {
                    reason: DropReason::TtlZero,
                };
            }
            // RFC 2003 s3.2: a datagram whose source is the tunnel exit MUST
            // NOT be tunnelled; nor one that would not fit in 65535 bytes.
            if inner.src_addr() == endpoint || len + ipip::OVERHEAD + gre_len > MAX_PACKET {
                return Inbound::Drop {
                    reason: DropReason::CannotEncapsulate,
                };
            }
            let tunnel = ipip::Tunnel {
                src_addr: self.config.tunnel_source,
                dst_addr: endpoint,
                ttl: self.config.tunnel_ttl,
                dont_frag: self.config.dont_fragment,
            };
            tunnel.outer_repr(&inner, self.ident, protocol, len + gre_len)
        };
        self.ident = self.ident.wrapping_add(1);
        if gre_len > 0 {
            let Some(header) = buf.push_front(gre_len) else {
                return Inbound::Drop {
                    reason: DropReason::CannotEncapsulate,
                };
            };
            gre::Repr {
                checksum_present: false,
                protocol_type: gre::EtherType::Ipv4,
                key: None,
                sequence_number: None,
                payload_len: len,
            }
            .emit(&mut gre::Packet::new_unchecked(header));
        }
        let Some(header) = buf.push_front(ipip::OVERHEAD) else {
            return Inbound::Drop {
                reason: DropReason::CannotEncapsulate,
            };
        };
        outer.emit(&mut ipv4::Packet::new_unchecked(header));
        Inbound::Tunnel {
            host: to.host,
            bind: to.bind,
            endpoint,
            tunnel: to.encap().tunnel_type(),
        }
    }
}
