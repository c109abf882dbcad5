//! Counters the daemon exports as metrics: per direction, per drop reason,
//! reassembly and violation reports. Plain integers, updated on the packet path.

use serde::{Serialize, Serializer};

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident => $label:literal, )*) => {
        /// Why a packet was dropped. Each has a counter per direction.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum DropReason {
            $( $(#[$doc])* $name, )*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons.
            pub const COUNT: usize = DropReason::ALL.len();

            /// A stable snake_case label for metrics.
            pub fn label(self) -> &'static str {
                match self {
                    $(DropReason::$name => $label,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Not a whole, well-formed IPv4 packet, or a header the path needs
    /// (tunnel, transport, ESP, AH, ICMP) is truncated or invalid.
    Malformed => "malformed",
    /// An IPv4 header checksum (outer or inner) does not verify.
    HeaderChecksum => "header_checksum",
    /// Outbound: the packet is neither IP-in-IP (4) nor GRE (47).
    NotTunnelled => "not_tunnelled",
    /// Outbound: the tunnel packet itself is a fragment (hosts must size
    /// their tunnel MTU so that it never is).
    OuterFragment => "outer_fragment",
    /// Outbound: the outer source is no host's tunnel endpoint.
    UnknownEndpoint => "unknown_endpoint",
    /// Outbound: a tunnel type the host's binding was not granted (307).
    BadTunnelType => "bad_tunnel_type",
    /// Outbound: a source address the host does not hold (312).
    LocalAddrUnallowed => "local_addr_unallowed",
    /// Outbound: a source port the host does not hold (313).
    LocalAddrportUnallowed => "local_addrport_unallowed",
    /// Outbound: a destination the remote flow policy excludes (314).
    RemoteAddrUnallowed => "remote_addr_unallowed",
    /// Outbound: a destination port the remote flow policy excludes (315).
    RemoteAddrportUnallowed => "remote_addrport_unallowed",
    /// Outbound: an IKE initiator cookie another host claimed on the same
    /// address (RFC 3104 s6.1: "If the cookie is not unique, N drops the packet").
    CookieInUse => "cookie_in_use",
    /// Outbound: an ICMP query identifier another host uses with the same
    /// remote on the same address (first wins).
    QueryIdInUse => "query_id_in_use",
    /// Outbound: a learned table (IKE cookies, ICMP queries) is at its bound,
    /// for the host or in total.
    StateFull => "state_full",
    /// Inbound: no demultiplexing field matched (address, port, SPI, cookie,
    /// query identifier) and the address is not the gateway's own.
    NoBinding => "no_binding",
    /// Inbound: the binding's remote flow policy excludes the sender (RFC
    /// 3103 s7.2: policy applies in the ingress direction too).
    RemoteFlowPolicy => "remote_flow_policy",
    /// Inbound: ESP or AH with a reserved SPI (0 to 255, RFC 4303 s2.1).
    ReservedSpi => "reserved_spi",
    /// Inbound: a NAT-keepalive on port 4500 (RFC 3948 s2.3: ignored).
    NatKeepalive => "nat_keepalive",
    /// Inbound: an ICMP error whose quoted packet matches no binding
    /// (RFC 3102 s6.2: "silently discarded").
    IcmpErrorUnmatched => "icmp_error_unmatched",
    /// Inbound: an ICMP error quoting an ESP flow that two hosts use.
    IcmpErrorAmbiguous => "icmp_error_ambiguous",
    /// Inbound: TTL 0 (RFC 2003 s3.1: must not be encapsulated).
    TtlZero => "ttl_zero",
    /// Inbound: the encapsulated packet would exceed 65535 bytes, or its
    /// source is the tunnel exit (RFC 2003 s3.2 loop).
    CannotEncapsulate => "cannot_encapsulate",
    /// Inbound fragment: invalid (bad length, beyond 65535 bytes,
    /// inconsistent last fragment, too many fragments).
    FragmentInvalid => "fragment_invalid",
    /// Inbound fragment: overlaps another fragment of its datagram without
    /// being an exact duplicate; the whole datagram is dropped.
    FragmentOverlap => "fragment_overlap",
    /// Inbound fragment: the reassembly memory bound (per source or total)
    /// would be exceeded; the whole datagram is dropped.
    FragmentMemory => "fragment_memory",
}

/// Counters of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionCounters {
    /// Packets handed in.
    pub packets: u64,
    /// Bytes handed in.
    pub bytes: u64,
    /// Outbound: forwarded. Inbound: tunnelled to a host.
    pub passed: u64,
    /// Inbound only: handed to the gateway itself ([`super::Inbound::Local`]).
    pub local: u64,
    /// Inbound only: fragments kept for reassembly.
    pub buffered: u64,
    /// Drops per reason, serialized as a map from [`DropReason::label`].
    #[serde(serialize_with = "serialize_drops")]
    drops: [u64; DropReason::COUNT],
}

fn serialize_drops<S: Serializer>(
    drops: &[u64; DropReason::COUNT],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        DropReason::ALL
            .iter()
            .map(|&r| (r.label(), drops[r as usize])),
    )
}

impl Default for DirectionCounters {
    fn default() -> Self {
        DirectionCounters {
            packets: 0,
            bytes: 0,
            passed: 0,
            local: 0,
            buffered: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl DirectionCounters {
    /// Drops for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Every reason with its count, zeros included.
    pub fn drops_by_reason(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.drops[r as usize]))
    }

    #[inline]
    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }
}

/// Reassembly counters (RFC 3102 s3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReassemblyCounters {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams reassembled whole.
    pub reassembled: u64,
    /// Exact duplicate fragments ignored.
    pub duplicates: u64,
    /// Datagrams dropped for an overlap.
    pub overlaps: u64,
    /// Datagrams dropped at their timeout, incomplete.
    pub timeouts: u64,
    /// Datagrams dropped at the memory bound.
    pub memory_drops: u64,
    /// Gauge: datagrams being reassembled.
    pub datagrams: u64,
    /// Gauge: bytes held for reassembly.
    pub bytes: u64,
}

/// Violation reports (RFC 3103 s10.4), after the per-host rate limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ViolationCounters {
    /// Reported to the engine (it sends an ERROR_RESPONSE).
    pub reported: u64,
    /// Over the host's rate: the packet was dropped, nothing reported.
    pub suppressed: u64,
}

/// Every counter of the data plane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Host to public network.
    pub outbound: DirectionCounters,
    /// Public network to host.
    pub inbound: DirectionCounters,
    /// Fragment reassembly.
    pub reassembly: ReassemblyCounters,
    /// Violation reports.
    pub violations: ViolationCounters,
}
