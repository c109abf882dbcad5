//! IPv4 subnets and the address specifications of `local_addrs` / `remote_addrs`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet `a.b.c.d/len` with no bits set past the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Subnet {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Subnet {
    /// The subnet, if `prefix_len` is at most 32 and `addr` has no host bits set.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        let subnet = Self { addr, prefix_len };
        (prefix_len <= 32 && subnet.network() == addr).then_some(subnet)
    }

    /// The single address `addr/32`.
    pub const fn host(addr: Ipv4Addr) -> Self {
        Self {
            addr,
            prefix_len: 32,
        }
    }

    /// The network address.
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask (`255.255.0.0` for /16), as ID_IPV4_ADDR_SUBNET carries it (RFC 2407
    /// section 4.6.2.5).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_bits(self.prefix_len))
    }

    /// The last address of the subnet.
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask_bits(self.prefix_len))
    }

    /// True when `addr` is in the subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask_bits(self.prefix_len) == u32::from(self.addr)
    }

    fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & mask_bits(self.prefix_len))
    }
}

fn mask_bits(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// An address, subnet or range that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not an IPv4 address.
    #[error("'{0}' is not an IPv4 address")]
    NotAnAddress(String),
    /// An IPv6 address or `%any6`.
    #[error("'{0}': IPv6 is not supported (Realm's IKE runs over IPv4)")]
    Ipv6(String),
    /// A DNS name.
    #[error(
        "'{0}': DNS names are not supported (Realm does not resolve names); give an IPv4 address"
    )]
    DnsName(String),
    /// A prefix length above 32 or not a number.
    #[error("'{0}': the prefix length must be 0 to 32")]
    BadPrefix(String),
    /// Bits set past the prefix.
    #[error("'{text}' has bits set past the prefix: did you mean '{network}'?")]
    HostBits {
        /// As written.
        text: String,
        /// The subnet it lies in.
        network: Ipv4Subnet,
    },
    /// A range whose end is below its start.
    #[error("'{0}': the range ends before it starts")]
    BackwardsRange(String),
}

impl FromStr for Ipv4Subnet {
    type Err = AddressError;

    /// `a.b.c.d/len`, or a single address as `/32`.
    fn from_str(s: &str) -> Result<Self, AddressError> {
        let Some((addr, len)) = s.split_once('/') else {
            return parse_v4(s).map(Self::host);
        };
        let addr = parse_v4(addr)?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| AddressError::BadPrefix(s.to_string()))?;
        let network = Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask_bits(prefix_len)),
            prefix_len,
        };
        if network.addr != addr {
            return Err(AddressError::HostBits {
                text: s.to_string(),
                network,
            });
        }
        Ok(network)
    }
}

/// Parses an IPv4 address, telling IPv6 and DNS names apart for the error.
pub(super) fn parse_v4(s: &str) -> Result<Ipv4Addr, AddressError> {
    if let Ok(addr) = s.parse::<Ipv4Addr>() {
        return Ok(addr);
    }
    if s.contains(':') || s.eq_ignore_ascii_case("%any6") {
        return Err(AddressError::Ipv6(s.to_string()));
    }
    let looks_numeric = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let looks_like_name = !looks_numeric
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_alphabetic());
    if looks_like_name {
        return Err(AddressError::DnsName(s.to_string()));
    }
    Err(AddressError::NotAnAddress(s.to_string()))
}

/// Parses `first-last`.
pub(super) fn parse_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), AddressError> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| AddressError::NotAnAddress(s.to_string()))?;
    let (first, last) = (parse_v4(a.trim())?, parse_v4(b.trim())?);
    if u32::from(last) < u32::from(first) {
        return Err(AddressError::BackwardsRange(s.to_string()));
    }
    Ok((first, last))
}

/// One entry of `local_addrs` or `remote_addrs` (swanctl.conf: "single IPv4/IPv6 addresses,
/// DNS names, CIDR subnets or IP address ranges"; Realm takes the IPv4 ones, and `%any`).
///
/// As initiator the first [`AddrSpec::Host`] is the address to send from or to; as responder
/// the peer's and the local address must match one of the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrSpec {
    /// `%any` (also `%any4` and `0.0.0.0`): any address.
    Any,
    /// A single address.
    Host(Ipv4Addr),
    /// `a.b.c.d/len`: any address in the subnet (responder only).
    Subnet(Ipv4Subnet),
    /// `first-last`: any address in the range (responder only).
    Range(Ipv4Addr, Ipv4Addr),
}

impl AddrSpec {
    /// True when `addr` matches the entry.
    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        match *self {
            Self::Any => true,
            Self::Host(a) => a == addr,
            Self::Subnet(s) => s.contains(addr),
            Self::Range(first, last) => (u32::from(first)..=u32::from(last)).contains(&addr.into()),
        }
    }

    /// The address, for a single address.
    pub const fn host(&self) -> Option<Ipv4Addr> {
        match *self {
            Self::Host(a) => Some(a),
            _ => None,
        }
    }
}

impl FromStr for AddrSpec {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("%any") || s.eq_ignore_ascii_case("%any4") || s == "0.0.0.0" {
            return Ok(Self::Any);
        }
        if s.contains('-') && !s.bytes().any(|b| b.is_ascii_alphabetic()) {
            let (first, last) = parse_range(s)?;
            return Ok(Self::Range(first, last));
        }
        if s.contains('/') {
            return s.parse().map(Self::Subnet);
        }
        parse_v4(s).map(Self::Host)
    }
}

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("%any"),
            Self::Host(a) => write!(f, "{a}"),
            Self::Subnet(s) => write!(f, "{s}"),
            Self::Range(first, last) => write!(f, "{first}-{last}"),
        }
    }
}
