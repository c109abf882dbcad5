//! Security Policy Database (RFC 2401 s4.4.1): ordered entries with
//! selectors (s4.4.2) and an action, looked up separately for inbound and
//! outbound traffic; the first matching entry wins.
//!
//! Limit: lookups are a linear scan, bounded by [`MAX_POLICIES`] per direction.

use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::crypto::{EncryptionAlgorithm, IntegrityAlgorithm};
use crate::error::ConfigError;
use crate::sa::{IpsecProtocol, Mode, SadKey};
use crate::wire;

/// Largest number of policies per direction.
pub const MAX_POLICIES: usize = 4096;

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

/// The SA template of an APPLY policy (what IKE must negotiate if no SA is bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaTemplate {
    /// ESP or AH.
    pub protocol: IpsecProtocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Tunnel endpoints (local, remote) for tunnel mode.
    pub tunnel: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Encryption (ESP only).
    pub encryption: EncryptionAlgorithm,
    /// Integrity.
    pub integrity: IntegrityAlgorithm,
}

/// Policy action (RFC 2401 s4.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    /// Let the packet through without IPsec.
    Bypass,
    /// Drop the packet.
    Discard,
    /// Apply IPsec: an SA bundle, innermost first.
    Apply(ApplySpec),
}

/// An SA bundle: the templates (for IKE) and the SAs bound to them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplySpec {
    /// Templates, innermost (applied first outbound) first.
    pub templates: Vec<SaTemplate>,
    /// SAs bound to the templates, same order. For outbound policies these
    /// are the SAs used; empty (or short) means IKE must acquire them.
    pub sas: Vec<SadKey>,
}

/// Identifies a policy entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

/// One SPD entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdEntry {
    /// Which packets.
    pub selector: Selector,
    /// What to do with them.
    pub action: PolicyAction,
}

/// The ordered SPD, one list per direction.
#[derive(Debug, Default)]
pub struct Spd {
    inbound: Vec<(PolicyId, SpdEntry)>,
    outbound: Vec<(PolicyId, SpdEntry)>,
    next_id: u32,
}

impl Spd {
    /// An empty SPD (everything is discarded: RFC 2401 s4.4.1 default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (lowest priority so far). Fails past [`MAX_POLICIES`].
    pub fn push(&mut self, direction: Direction, entry: SpdEntry) -> Result<PolicyId, ConfigError> {
        let list = self.list_mut(direction);
        if list.len() >= MAX_POLICIES {
            return Err(ConfigError::Parse {
                what: "policy count",
                text: MAX_POLICIES.to_string(),
            });
        }
        self.next_id += 1;
        let id = PolicyId(self.next_id);
        self.list_mut(direction).push((id, entry));
        Ok(id)
    }

    /// Inserts an entry at `index` (0 = highest priority).
    pub fn insert(&mut self, direction: Direction, index: usize, entry: SpdEntry) -> PolicyId {
        self.next_id += 1;
        let id = PolicyId(self.next_id);
        let list = self.list_mut(direction);
        list.insert(index.min(list.len()), (id, entry));
        id
    }

    /// Removes an entry.
    pub fn remove(&mut self, id: PolicyId) -> Option<SpdEntry> {
        for list in [&mut self.inbound, &mut self.outbound] {
            if let Some(i) = list.iter().position(|(x, _)| *x == id) {
                return Some(list.remove(i).1);
            }
        }
        None
    }

    /// The entry with this id, mutable (e.g. to bind SAs after IKE).
    pub fn get_mut(&mut self, id: PolicyId) -> Option<&mut SpdEntry> {
        self.inbound
            .iter_mut()
            .chain(self.outbound.iter_mut())
            .find(|(x, _)| *x == id)
            .map(|e| &mut e.1)
    }

    /// First matching entry for a packet in `direction`.
    pub fn lookup(
        &self,
        direction: Direction,
        p: &PacketSelector,
    ) -> Option<(PolicyId, &SpdEntry)> {
        let list = match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        };
        list.iter()
            .find(|(_, e)| e.selector.matches(p))
            .map(|(id, e)| (*id, e))
    }

    /// Entries in `direction`, in priority order.
    pub fn entries(&self, direction: Direction) -> impl Iterator<Item = (PolicyId, &SpdEntry)> {
        let list = match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        };
        list.iter().map(|(id, e)| (*id, e))
    }

    fn list_mut(&mut self, direction: Direction) -> &mut Vec<(PolicyId, SpdEntry)> {
        match direction {
            Direction::Inbound => &mut self.inbound,
            Direction::Outbound => &mut self.outbound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(src: [u8; 4], dst: [u8; 4], proto: u8, ports: Option<(u16, u16)>) -> PacketSelector {
        PacketSelector {
            src: src.into(),
            dst: dst.into(),
            protocol: proto,
            src_port: ports.map(|p| p.0),
            dst_port: ports.map(|p| p.1),
        }
    }

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

    #[test]
    fn first_match_wins_per_direction() {
        let mut spd = Spd::new();
        let web = Selector {
            dst: "192.0.2.0/24".parse().unwrap(),
            protocol: ProtocolSelector::Is(6),
            dst_port: "443".parse().unwrap(),
            ..Selector::default()
        };
        let a = spd
            .push(
                Direction::Outbound,
                SpdEntry {
                    selector: web,
                    action: PolicyAction::Bypass,
                },
            )
            .unwrap();
        let b = spd
            .push(
                Direction::Outbound,
                SpdEntry {
                    selector: Selector::default(),
                    action: PolicyAction::Discard,
                },
            )
            .unwrap();
        let p1 = pkt([10, 0, 0, 1], [192, 0, 2, 7], 6, Some((5555, 443)));
        let p2 = pkt([10, 0, 0, 1], [192, 0, 2, 7], 6, Some((5555, 80)));
        assert_eq!(spd.lookup(Direction::Outbound, &p1).unwrap().0, a);
        assert_eq!(spd.lookup(Direction::Outbound, &p2).unwrap().0, b);
        assert!(spd.lookup(Direction::Inbound, &p1).is_none());
        let top = spd.insert(
            Direction::Outbound,
            0,
            SpdEntry {
                selector: Selector::default(),
                action: PolicyAction::Discard,
            },
        );
        assert_eq!(spd.lookup(Direction::Outbound, &p1).unwrap().0, top);
        spd.remove(top);
        assert_eq!(spd.lookup(Direction::Outbound, &p1).unwrap().0, a);
    }
}
