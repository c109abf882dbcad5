//! Traffic selectors (RFC 2401 s4.4.2): the addresses, ports and protocol a
//! policy or an SA applies to, as written in the config and as read from a
//! packet, and the direction of traffic. Both the SPD and the SAs use them.

use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::error::ConfigError;
use crate::wire;

/// Traffic direction of a policy or SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic received.
    Inbound,
    /// Traffic sent.
    Outbound,
}

/// An address selector (RFC 2401 s4.4.2: single, range, wildcard; a prefix
/// is a range written the usual way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressSelector {
    /// Any address (wildcard).
    #[default]
    Any,
    /// Exactly one address.
    Single(Ipv4Addr),
    /// An inclusive range.
    Range(Ipv4Addr, Ipv4Addr),
    /// A prefix: address and length.
    Prefix(Ipv4Addr, u8),
}

impl AddressSelector {
    /// True if `a` is selected.
    pub fn matches(&self, a: Ipv4Addr) -> bool {
        match *self {
            Self::Any => true,
            Self::Single(x) => x == a,
            Self::Range(lo, hi) => lo <= a && a <= hi,
            Self::Prefix(net, len) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len.min(32)))
                };
                u32::from(a) & mask == u32::from(net) & mask
            }
        }
    }
}

impl FromStr for AddressSelector {
    type Err = ConfigError;
    /// `any`, `10.0.0.1`, `10.0.0.0/24`, `10.0.0.1-10.0.0.9`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Parse {
            what: "address selector",
            text: s.to_string(),
        };
        let s = s.trim();
        if s.eq_ignore_ascii_case("any") || s == "*" {
            return Ok(Self::Any);
        }
        if let Some((a, l)) = s.split_once('/') {
            let len: u8 = l.parse().map_err(|_| bad())?;
            if len > 32 {
                return Err(bad());
            }
            return Ok(Self::Prefix(a.parse().map_err(|_| bad())?, len));
        }
        if let Some((a, b)) = s.split_once('-') {
            let (lo, hi): (Ipv4Addr, Ipv4Addr) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if lo > hi {
                return Err(bad());
            }
            return Ok(Self::Range(lo, hi));
        }
        Ok(Self::Single(s.parse().map_err(|_| bad())?))
    }
}

/// A port selector. Ports are OPAQUE when the packet has none to read
/// (not TCP/UDP, or a non-first fragment: RFC 2401 s4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortSelector {
    /// Any port, or none (wildcard).
    #[default]
    Any,
    /// Matches only packets whose ports are unavailable.
    Opaque,
    /// An inclusive range of ports (a single port is `Range(p, p)`).
    Range(u16, u16),
}

impl PortSelector {
    /// True if `port` (None = opaque) is selected.
    pub fn matches(&self, port: Option<u16>) -> bool {
        match (*self, port) {
            (Self::Any, _) => true,
            (Self::Opaque, p) => p.is_none(),
            (Self::Range(lo, hi), Some(p)) => lo <= p && p <= hi,
            (Self::Range(..), None) => false,
        }
    }
}

impl FromStr for PortSelector {
    type Err = ConfigError;
    /// `any`, `opaque`, `80`, `1000-2000`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Parse {
            what: "port selector",
            text: s.to_string(),
        };
        let s = s.trim();
        if s.eq_ignore_ascii_case("any") || s == "*" {
            return Ok(Self::Any);
        }
        if s.eq_ignore_ascii_case("opaque") {
            return Ok(Self::Opaque);
        }
        if let Some((a, b)) = s.split_once('-') {
            let (lo, hi): (u16, u16) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if lo > hi {
                return Err(bad());
            }
            return Ok(Self::Range(lo, hi));
        }
        let p: u16 = s.parse().map_err(|_| bad())?;
        Ok(Self::Range(p, p))
    }
}

/// Next-protocol selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolSelector {
    /// Any protocol.
    #[default]
    Any,
    /// One IP protocol number.
    Is(u8),
}

impl FromStr for ProtocolSelector {
    type Err = ConfigError;
    /// `any`, `tcp`, `udp`, `icmp`, or a number.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "any" | "*" => Self::Any,
            "tcp" => Self::Is(wire::PROTO_TCP),
            "udp" => Self::Is(wire::PROTO_UDP),
            "icmp" => Self::Is(wire::PROTO_ICMP),
            other => Self::Is(other.parse().map_err(|_| ConfigError::Parse {
                what: "protocol selector",
                text: s.to_string(),
            })?),
        })
    }
}

macro_rules! deserialize_from_str {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Text {
                    S(String),
                    N(u64),
                }
                let s = match Text::deserialize(d)? {
                    Text::S(s) => s,
                    Text::N(n) => n.to_string(),
                };
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
deserialize_from_str!(AddressSelector);
deserialize_from_str!(PortSelector);
deserialize_from_str!(ProtocolSelector);

/// The selectors of RFC 2401 s4.4.2, from the point of view of the packet:
/// `src`/`dst` are the packet's own source and destination.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selector {
    /// Source address.
    pub src: AddressSelector,
    /// Destination address.
    pub dst: AddressSelector,
    /// Next protocol (transport layer).
    pub protocol: ProtocolSelector,
    /// Source port.
    pub src_port: PortSelector,
    /// Destination port.
    pub dst_port: PortSelector,
    /// Name (user or system identity, e.g. a FQDN or DN). Not visible in
    /// packets: kept for IKE to choose identities; never constrains a lookup.
    pub name: Option<String>,
}

/// The selector fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSelector {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol.
    pub protocol: u8,
    /// Source port, `None` when opaque.
    pub src_port: Option<u16>,
    /// Destination port, `None` when opaque.
    pub dst_port: Option<u16>,
}

impl PacketSelector {
    /// Reads the selector fields of an IPv4 packet.
    pub fn from_packet(packet: &[u8]) -> Option<Self> {
        let ip = wire::parse_ipv4(packet)?;
        let ports = wire::ports(&ip, packet);
        Some(Self {
            src: ip.src_addr,
            dst: ip.dst_addr,
            protocol: u8::from(ip.protocol),
            src_port: ports.map(|p| p.0),
            dst_port: ports.map(|p| p.1),
        })
    }
}

impl Selector {
    /// True if the packet's fields are selected.
    pub fn matches(&self, p: &PacketSelector) -> bool {
        self.src.matches(p.src)
            && self.dst.matches(p.dst)
            && match self.protocol {
                ProtocolSelector::Any => true,
                ProtocolSelector::Is(x) => x == p.protocol,
            }
            && self.src_port.matches(p.src_port)
            && self.dst_port.matches(p.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_match() {
        let a: AddressSelector = "10.0.0.0/8".parse().unwrap();
        assert!(a.matches([10, 2, 3, 4].into()) && !a.matches([11, 0, 0, 0].into()));
        let r: AddressSelector = "10.0.0.5-10.0.0.9".parse().unwrap();
        assert!(r.matches([10, 0, 0, 9].into()) && !r.matches([10, 0, 0, 10].into()));
        assert_eq!(
            "any".parse::<AddressSelector>().unwrap(),
            AddressSelector::Any
        );
        assert!("10.0.0.0/33".parse::<AddressSelector>().is_err());
        assert!(
            "0.0.0.0/0"
                .parse::<AddressSelector>()
                .unwrap()
                .matches([1, 2, 3, 4].into())
        );
        let p: PortSelector = "1000-2000".parse().unwrap();
        assert!(p.matches(Some(1500)) && !p.matches(Some(999)) && !p.matches(None));
        assert!(PortSelector::Opaque.matches(None) && !PortSelector::Opaque.matches(Some(1)));
        assert!(PortSelector::Any.matches(None));
        assert_eq!(
            "udp".parse::<ProtocolSelector>().unwrap(),
            ProtocolSelector::Is(17)
        );
    }
}
