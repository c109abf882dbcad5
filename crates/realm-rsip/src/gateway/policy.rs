//! Flow policy (RFC 3103 7): address prefixes, remote allow/deny rules, and
//! the remote side of a binding as the host asked for it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use realm_wire::rsip::{AddrType, Address, Ports};
use serde::{Deserialize, Serialize};

/// An inclusive port range, written `"1024-65535"` or `"4555"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (>= first).
    pub last: u16,
}

impl PortRange {
    /// `first..=last`.
    pub const fn new(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<PortRange, String> {
        let bad = || format!("bad port range {s:?}: expected \"P\" or \"FIRST-LAST\"");
        let (a, b) = s.split_once('-').unwrap_or((&s, &s));
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        if r.first == r.last {
            r.first.to_string()
        } else {
            format!("{}-{}", r.first, r.last)
        }
    }
}

/// An address prefix, written `"10.0.0.0/8"`, `"2001:db8::/32"` or a bare
/// address (a /32 or /128) in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix {
    /// The address (bits past `len` are ignored).
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl Prefix {
    /// `addr/len` (length clamped to the family's width).
    pub fn new(addr: IpAddr, len: u8) -> Prefix {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Prefix {
            addr,
            len: len.min(max),
        }
    }

    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Whether the network `other` lies wholly inside this prefix.
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// The prefix length of a netmask, if its bits are contiguous.
pub(crate) fn netmask_len(mask: IpAddr) -> Option<u8> {
    let (ones, bits) = match mask {
        IpAddr::V4(m) => {
            let v = u32::from(m);
            (v.leading_ones(), v.count_ones())
        }
        IpAddr::V6(m) => {
            let v = u128::from(m);
            (v.leading_ones(), v.count_ones())
        }
    };
    (ones == bits).then(|| u8::try_from(ones).unwrap_or(0))
}

/// The netmask of a prefix length, as an address of `v6`'s family.
pub(crate) fn netmask(len: u8, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(mask128(len)))
    } else {
        IpAddr::V4(Ipv4Addr::from(mask32(len)))
    }
}

impl TryFrom<String> for Prefix {
    type Error = String;
    fn try_from(s: String) -> Result<Prefix, String> {
        let bad = || format!("bad prefix {s:?}: expected \"ADDRESS\" or \"ADDRESS/LEN\"");
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.trim().parse::<u8>().map_err(|_| bad())?)),
            None => (s.as_str(), None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(bad());
        }
        Ok(Prefix { addr, len })
    }
}

impl From<Prefix> for String {
    fn from(p: Prefix) -> String {
        p.to_string()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Let the host name this peer.
    Allow,
    /// Refuse (REMOTE_ADDR_UNALLOWED / REMOTE_ADDRPORT_UNALLOWED).
    Deny,
}

/// A remote flow rule: which peers a host may name under macro or micro
/// remote policy. Exactly one of `prefix` and `name` is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteRule {
    /// Allow or deny. Required.
    pub action: RuleAction,
    /// Peers by address prefix (IPv4 or IPv6).
    #[serde(default)]
    pub prefix: Option<Prefix>,
    /// Peers by FQDN, as hosts send it (RFC 3103 8.1): exact, or
    /// `"*.example.com"` for any name under example.com. Case-insensitive.
    #[serde(default)]
    pub name: Option<String>,
    /// Remote ports (micro-flow policy only). A rule with ports is ignored
    /// under macro-flow policy; under micro it matches when every requested
    /// remote port is listed. Default: any port.
    #[serde(default)]
    pub ports: Vec<PortRange>,
}

impl RemoteRule {
    fn matches_address(&self, remote: &RemoteAddress) -> bool {
        match (remote, &self.prefix, &self.name) {
            (RemoteAddress::Ipv4(ip), Some(p), _) => p.contains(IpAddr::V4(*ip)),
            (RemoteAddress::Ipv6(ip), Some(p), _) => p.contains(IpAddr::V6(*ip)),
            (RemoteAddress::Fqdn(n), None, Some(pattern)) => name_matches(pattern, n),
            _ => false,
        }
    }

    fn matches_ports(&self, ports: &[u16]) -> bool {
        self.ports.is_empty()
            || (!ports.is_empty()
                && ports
                    .iter()
                    .all(|p| self.ports.iter().any(|r| (r.first..=r.last).contains(p))))
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    let name = name.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        None => pattern.trim_end_matches('.') == name,
    }
}

/// Decides a remote peer under macro (`ports` = None) or micro policy.
pub(crate) fn remote_allowed(
    rules: &[RemoteRule],
    default: RuleAction,
    address: &RemoteAddress,
    ports: Option<&[u16]>,
) -> bool {
    let hit = rules.iter().find(|r| {
        r.matches_address(address)
            && match ports {
                None => r.ports.is_empty(),
                Some(p) => r.matches_ports(p),
            }
    });
    hit.map_or(default, |r| r.action) == RuleAction::Allow
}

/// The remote address of a binding as the host gave it (RFC 3103 8.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteAddress {
    /// "Don't care" (no remote policy, or the host did not say).
    Any,
    /// An IPv4 peer.
    Ipv4(Ipv4Addr),
    /// An IPv6 peer.
    Ipv6(Ipv6Addr),
    /// A peer by name.
    Fqdn(String),
}

/// The remote ports of a binding, in the wire form the host gave them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemotePorts {
    /// "Don't care" (with the number the host sent).
    Any {
        /// The number field.
        count: u8,
    },
    /// "Don't need" (RSIPSEC).
    DontNeed,
    /// `count` contiguous ports from `first`.
    Range {
        /// First port.
        first: u16,
        /// How many.
        count: u8,
    },
    /// These ports.
    List(Vec<u16>),
}

/// The remote side of a binding: what the gateway lets the host reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RemoteSpec {
    /// The peer address.
    pub address: RemoteAddress,
    /// The peer ports.
    pub ports: RemotePorts,
}

impl RemoteSpec {
    /// No remote restriction: "don't care" address and one "don't care" port.
    pub fn any() -> RemoteSpec {
        RemoteSpec {
            address: RemoteAddress::Any,
            ports: RemotePorts::Any { count: 1 },
        }
    }

    /// The wire parameters (Address (remote), Ports (remote)).
    pub fn to_wire(&self) -> (Address, Ports) {
        let address = match &self.address {
            RemoteAddress::Any => Address::DONT_CARE_V4,
            RemoteAddress::Ipv4(a) => Address::Ipv4(*a),
            RemoteAddress::Ipv6(a) => Address::Ipv6(*a),
            RemoteAddress::Fqdn(n) => Address::Fqdn(n.clone()),
        };
        let ports = match &self.ports {
            RemotePorts::Any { count } => Ports::DontCare {
                count: (*count).max(1),
            },
            RemotePorts::DontNeed => Ports::DontNeed,
            RemotePorts::Range { first, count } => Ports::Range {
                first: *first,
                count: *count,
            },
            RemotePorts::List(l) if l.len() >= 2 => Ports::List(l.clone()),
            RemotePorts::List(l) => Ports::single(l.first().copied().unwrap_or(0)),
        };
        (address, ports)
    }
}

impl RemoteAddress {
    /// From a request's Address (remote); `None` for a form that cannot name
    /// a peer (a netmask).
    pub(crate) fn from_wire(a: &Address) -> Option<RemoteAddress> {
        if a.is_dont_care() {
            return Some(RemoteAddress::Any);
        }
        Some(match a {
            Address::Ipv4(ip) => RemoteAddress::Ipv4(*ip),
            Address::Ipv6(ip) => RemoteAddress::Ipv6(*ip),
            Address::Fqdn(n) => RemoteAddress::Fqdn(n.clone()),
            Address::Ipv4Netmask(_) | Address::DontCare(_) => return None,
        })
    }
}

impl RemotePorts {
    /// From a request's Ports (remote).
    pub(crate) fn from_wire(p: &Ports) -> RemotePorts {
        if p.is_dont_care() {
            let count = u8::try_from(p.count()).unwrap_or(u8::MAX).max(1);
            return RemotePorts::Any { count };
        }
        match p {
            Ports::DontNeed => RemotePorts::DontNeed,
            Ports::DontCare { count } => RemotePorts::Any { count: *count },
            Ports::Range { first, count } => RemotePorts::Range {
                first: *first,
                count: *count,
            },
            Ports::List(l) => RemotePorts::List(l.clone()),
        }
    }

    /// Whether the host named particular ports.
    pub(crate) fn is_specific(&self) -> bool {
        matches!(self, RemotePorts::Range { .. } | RemotePorts::List(_))
    }

    /// The ports named, ranges expanded.
    pub(crate) fn to_vec(&self) -> Vec<u16> {
        match self {
            RemotePorts::Range { first, count } => (0..*count)
                .filter_map(|i| first.checked_add(u16::from(i)))
                .collect(),
            RemotePorts::List(l) => l.clone(),
            RemotePorts::Any { .. } | RemotePorts::DontNeed => Vec::new(),
        }
    }
}

/// Whether an Address parameter is the IPv4/IPv6 "don't care" of a local address.
pub(crate) fn is_v6(a: &Address) -> bool {
    a.addr_type() == AddrType::Ipv6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::try_from(s.to_owned()).unwrap()
    }

    #[test]
    fn prefixes_parse_and_match() {
        let net = p("10.20.60.0/24");
        assert!(net.contains("10.20.60.7".parse().unwrap()));
        assert!(!net.contains("10.20.61.7".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(net.covers(&p("10.20.60.128/25")));
        assert!(!net.covers(&p("10.20.0.0/16")));
        assert_eq!(p("192.0.2.1").len, 32);
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert!(Prefix::try_from("10.0.0.0/33".to_owned()).is_err());
        assert!(Prefix::try_from("nonsense".to_owned()).is_err());
        assert!(p("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
        assert_eq!(netmask_len("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(netmask_len("255.0.255.0".parse().unwrap()), None);
        assert_eq!(
            netmask(24, false),
            "255.255.255.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn rules_first_match_wins_names_and_ports() {
        let rules = vec![
            RemoteRule {
                action: RuleAction::Deny,
                prefix: None,
                name: Some("www.foo.com".into()),
                ports: vec![],
            },
            RemoteRule {
                action: RuleAction::Deny,
                prefix: None,
                name: Some("*.evil.example".into()),
                ports: vec![],
            },
            RemoteRule {
                action: RuleAction::Allow,
                prefix: Some(p("198.51.100.0/24")),
                name: None,
                ports: vec![PortRange::new(20, 21)],
            },
            RemoteRule {
                action: RuleAction::Deny,
                prefix: Some(p("198.51.100.0/24")),
                name: None,
                ports: vec![],
            },
        ];
        let fq = |s: &str| RemoteAddress::Fqdn(s.into());
        let allow = RuleAction::Allow;
        assert!(!remote_allowed(&rules, allow, &fq("WWW.FOO.COM"), None));
        assert!(remote_allowed(&rules, allow, &fq("www.bar.com"), None));
        assert!(!remote_allowed(&rules, allow, &fq("a.evil.example"), None));
        assert!(remote_allowed(&rules, allow, &fq("evil.example"), None));
        let peer = RemoteAddress::Ipv4("198.51.100.9".parse().unwrap());
        // Macro: the port rule is skipped, the deny applies.
        assert!(!remote_allowed(&rules, allow, &peer, None));
        // Micro: ports 20-21 allowed, 22 falls to the deny.
        assert!(remote_allowed(&rules, allow, &peer, Some(&[21])));
        assert!(!remote_allowed(&rules, allow, &peer, Some(&[21, 22])));
        assert!(!remote_allowed(&[], RuleAction::Deny, &peer, None));
    }

    #[test]
    fn remote_spec_round_trips_the_wire_forms() {
        for (a, ports) in [
            (Address::DONT_CARE_V4, Ports::DONT_CARE_ONE),
            (
                Address::Ipv4("38.196.73.6".parse().unwrap()),
                Ports::single(21),
            ),
            (
                Address::Fqdn("www.bar.com".into()),
                Ports::List(vec![20, 80]),
            ),
            (
                Address::Ipv6("2001:db8::1".parse().unwrap()),
                Ports::DontNeed,
            ),
        ] {
            let spec = RemoteSpec {
                address: RemoteAddress::from_wire(&a).unwrap(),
                ports: RemotePorts::from_wire(&ports),
            };
            assert_eq!(spec.to_wire(), (a, ports));
        }
        assert_eq!(RemoteSpec::any().to_wire().1, Ports::DONT_CARE_ONE);
    }
}
