//! Traffic selectors as swanctl.conf spells `local_ts` / `remote_ts`, and the Quick Mode client
//! IDs (IDci/IDcr, RFC 2409 section 5.5) they become.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use realm_wire::isakmp::Identification;

use super::net::{AddressError, Ipv4Subnet, parse_range};

/// The addresses of a traffic selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsAddrs {
    /// `dynamic`: the IKE address of that side, known when the SA is negotiated (swanctl.conf's
    /// default for both `local_ts` and `remote_ts`).
    Dynamic,
    /// `a.b.c.d/len`; a single address is `/32`.
    Subnet(Ipv4Subnet),
    /// `first-last`.
    Range(Ipv4Addr, Ipv4Addr),
}

/// A traffic selector: addresses, and optionally an IP protocol and a port.
///
/// Spelled as swanctl.conf spells them (`vici_config.c` `parse_ts`): `10.1.0.0/16`,
/// `10.1.0.5` (printed `10.1.0.5/32`), `10.1.0.1-10.1.0.5`, `dynamic`, each optionally followed
/// by `[protocol/port]`: `10.1.0.0/16[tcp/80]`, `dynamic[udp]`, `0.0.0.0/0[icmp/8]` (for ICMP the
/// "port" is the message type, as IKEv1 carries it). The protocol is a number or one of `tcp`,
/// `udp`, `icmp`, `sctp`, `gre`, or `any`; the port a number or `any`.
///
/// Realm refuses what an IKEv1 ID payload cannot carry: IPv6, port ranges and `opaque` (the ID
/// has one port field, RFC 2407 section 4.6.2), a port without a protocol; and port names
/// (`http`), since a sans-IO crate does not read `/etc/services`: write the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// The addresses.
    pub addrs: TsAddrs,
    /// IP protocol number; 0 for any.
    pub protocol: u8,
    /// Port (for ICMP, the type); `None` for any.
    pub port: Option<u16>,
}

impl TrafficSelector {
    /// `dynamic` with any protocol and port.
    pub const DYNAMIC: Self = Self {
        addrs: TsAddrs::Dynamic,
        protocol: 0,
        port: None,
    };

    /// True when the selector covers one address at most: `dynamic`, an `/32`, or a range of
    /// one address (what transport mode needs, RFC 4301 section 4.1).
    pub fn is_host(&self) -> bool {
        match self.addrs {
            TsAddrs::Dynamic => true,
            TsAddrs::Subnet(s) => s.prefix_len() == 32,
            TsAddrs::Range(first, last) => first == last,
        }
    }

    /// The single address of a host selector other than `dynamic`.
    pub fn host_addr(&self) -> Option<Ipv4Addr> {
        match self.addrs {
            TsAddrs::Dynamic => None,
            TsAddrs::Subnet(s) => (s.prefix_len() == 32).then_some(s.addr()),
            TsAddrs::Range(first, last) => (first == last).then_some(first),
        }
    }

    /// The Quick Mode client ID for this selector (RFC 2409 section 5.5, RFC 2407 section
    /// 4.6.2): ID_IPV4_ADDR for one address (`dynamic` becomes `ike_addr`, the side's IKE
    /// address), ID_IPV4_ADDR_SUBNET for a subnet, ID_IPV4_ADDR_RANGE for a range; with the
    /// protocol and port (0 for any).
    pub fn to_identification(&self, ike_addr: Ipv4Addr) -> Identification {
        let id = match self.addrs {
            TsAddrs::Dynamic => Identification::ipv4(ike_addr),
            TsAddrs::Subnet(s) if s.prefix_len() == 32 => Identification::ipv4(s.addr()),
            TsAddrs::Subnet(s) => Identification::ipv4_subnet(s.addr(), s.mask()),
            TsAddrs::Range(first, last) => Identification::ipv4_range(first, last),
        };
        id.with_port(self.protocol, self.port.unwrap_or(0))
    }
}

/// A traffic selector that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    /// Bad addresses.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// Nothing given.
    #[error("empty traffic selector")]
    Empty,
    /// `[` without `]`, or text after `]`.
    #[error("'{0}': a protocol/port selector is written [protocol/port] at the end")]
    Brackets(String),
    /// A protocol that is neither a number nor a known name.
    #[error("unknown protocol '{0}' (a number 0-255, or tcp, udp, icmp, sctp, gre, any)")]
    Protocol(String),
    /// A port that is not a number.
    #[error(
        "port '{0}' is not a number 1-65535 (Realm does not read service names: write the number)"
    )]
    Port(String),
    /// A port range.
    #[error("port range '{0}': an IKEv1 ID payload carries a single port")]
    PortRange(String),
    /// `opaque`.
    #[error("OPAQUE ports cannot be expressed in IKEv1")]
    Opaque,
    /// A port without a protocol.
    #[error("a port needs a protocol: write [tcp/{0}] or [udp/{0}]")]
    PortWithoutProtocol(u16),
}

impl FromStr for TrafficSelector {
    type Err = TsError;

    fn from_str(s: &str) -> Result<Self, TsError> {
        let s = s.trim();
        let (addrs, protoport) = match s.find('[') {
            Some(i) => {
                let inner = s[i + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| TsError::Brackets(s.to_string()))?;
                (s[..i].trim(), Some(inner))
            }
            None => (s, None),
        };
        let addrs = if addrs.eq_ignore_ascii_case("dynamic") {
            TsAddrs::Dynamic
        } else if addrs.is_empty() {
            return Err(TsError::Empty);
        } else if addrs.contains('-') {
            let (first, last) = parse_range(addrs)?;
            TsAddrs::Range(first, last)
        } else {
            TsAddrs::Subnet(addrs.parse()?)
        };
        let (protocol, port) = match protoport {
            Some(pp) => parse_protoport(pp)?,
            None => (0, None),
        };
        Ok(Self {
            addrs,
            protocol,
            port,
        })
    }
}

fn parse_protoport(pp: &str) -> Result<(u8, Option<u16>), TsError> {
    let (proto, port) = match pp.split_once('/') {
        Some((proto, port)) => (proto.trim(), Some(port.trim())),
        None => (pp.trim(), None),
    };
    let protocol = if proto.is_empty() || proto.eq_ignore_ascii_case("any") {
        0
    } else if let Some(n) = protocol_number(proto) {
        n
    } else {
        proto
            .parse::<u8>()
            .map_err(|_| TsError::Protocol(proto.to_string()))?
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.eq_ignore_ascii_case("any") => None,
        Some(p) if p.eq_ignore_ascii_case("opaque") => return Err(TsError::Opaque),
        Some(p) if p.contains('-') => return Err(TsError::PortRange(p.to_string())),
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|n| *n != 0)
                .ok_or_else(|| TsError::Port(p.to_string()))?,
        ),
    };
    if let (0, Some(p)) = (protocol, port) {
        return Err(TsError::PortWithoutProtocol(p));
    }
    Ok((protocol, port))
}

const PROTOCOLS: [(&str, u8); 5] = [
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("sctp", 132),
];

fn protocol_number(name: &str) -> Option<u8> {
    PROTOCOLS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| *p)
}

impl fmt::Display for TsAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dynamic => f.write_str("dynamic"),
            Self::Subnet(s) => write!(f, "{s}"),
            Self::Range(first, last) => write!(f, "{first}-{last}"),
        }
    }
}

impl fmt::Display for TrafficSelector {
    /// As strongSwan prints them (`10.1.0.5/32[tcp/80]`), except that a range prints with `-`
    /// so that it parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addrs)?;
        if self.protocol == 0 {
            return Ok(());
        }
        match PROTOCOLS.iter().find(|(_, p)| *p == self.protocol) {
            Some((name, _)) => write!(f, "[{name}")?,
            None => write!(f, "[{}", self.protocol)?,
        }
        if let Some(port) = self.port {
            write!(f, "/{port}")?;
        }
        f.write_str("]")
    }
}
