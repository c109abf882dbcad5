//! A child SA's traffic selectors as address ranges with protocol and port: what the daemon
//! installs into the SPD, and what the responder checks a peer's Quick Mode IDs against.

use std::fmt;
use std::net::Ipv4Addr;

use realm_wire::isakmp::{IdValue, Identification};

use crate::config::{TrafficSelector, TsAddrs};

/// One side's traffic: an inclusive IPv4 address range, an IP protocol (0: any) and a port
/// (`None`: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficRange {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address.
    pub end: Ipv4Addr,
    /// IP protocol; 0 for any.
    pub protocol: u8,
    /// Port; `None` for any.
    pub port: Option<u16>,
}

impl TrafficRange {
    /// One address, any protocol and port.
    pub fn host(addr: Ipv4Addr) -> TrafficRange {
        TrafficRange {
            start: addr,
            end: addr,
            protocol: 0,
            port: None,
        }
    }

    /// The range a Quick Mode client ID (RFC 2407 section 4.6.2) names: an IPv4 address,
    /// subnet or range with its protocol and port (0 for any); `None` for other ID types.
    pub fn from_identification(id: &Identification) -> Option<TrafficRange> {
        let (start, end) = match id.value()? {
            IdValue::Ipv4Addr(a) => (a, a),
            IdValue::Ipv4Subnet { addr, mask } => {
                let m = u32::from(mask);
                let net = u32::from(addr) & m;
                (Ipv4Addr::from(net), Ipv4Addr::from(net | !m))
            }
            IdValue::Ipv4Range { start, end } if start <= end => (start, end),
            _ => return None,
        };
        Some(TrafficRange {
            start,
            end,
            protocol: id.protocol_id,
            port: (id.port != 0).then_some(id.port),
        })
    }

    /// The range a configured selector names, `dynamic` standing for `ike_addr`.
    pub fn from_config(ts: &TrafficSelector, ike_addr: Ipv4Addr) -> TrafficRange {
        let (start, end) = match ts.addrs {
            TsAddrs::Dynamic => (ike_addr, ike_addr),
            TsAddrs::Subnet(s) => (s.addr(), s.last()),
            TsAddrs::Range(first, last) => (first, last),
        };
        TrafficRange {
            start,
            end,
            protocol: ts.protocol,
            port: ts.port,
        }
    }

    /// True when every packet `other` covers is covered by `self`: the peer may narrow what
    /// we configured, never widen it.
    pub fn contains(&self, other: &TrafficRange) -> bool {
        self.start <= other.start
            && other.end <= self.end
            && (self.protocol == 0 || self.protocol == other.protocol)
            && (self.port.is_none() || self.port == other.port)
    }

    /// The prefix length when the range is exactly one CIDR block.
    pub fn prefix_len(&self) -> Option<u8> {
        let (s, e) = (u32::from(self.start), u32::from(self.end));
        let size = e.wrapping_sub(s).wrapping_add(1);
        if size == 0 {
            return (s == 0).then_some(0);
        }
        (size.is_power_of_two() && s & (size - 1) == 0)
            .then(|| u8::try_from(32 - size.trailing_zeros()).unwrap_or(32))
    }
}

impl fmt::Display for TrafficRange {
    /// As swanctl prints selectors: `10.1.0.0/24`, `10.1.0.5/32`, `10.1.0.1..10.1.0.5`, with
    /// `[tcp/80]` when a protocol is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len() {
            Some(len) => write!(f, "{}/{len}", self.start)?,
            None => write!(f, "{}..{}", self.start, self.end)?,
        }
        if self.protocol != 0 {
            match self.port {
                Some(p) => write!(f, "[{}/{p}]", self.protocol)?,
                None => write!(f, "[{}]", self.protocol)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn ids_become_ranges() {
        let id = Identification::ipv4_subnet(a("10.1.0.9"), a("255.255.255.0")).with_port(6, 80);
        let r = TrafficRange::from_identification(&id).unwrap();
        assert_eq!(
            (r.start, r.end, r.protocol, r.port),
            (a("10.1.0.0"), a("10.1.0.255"), 6, Some(80))
        );
        assert_eq!(r.to_string(), "10.1.0.0/24[6/80]");
        let id = Identification::ipv4_range(a("10.1.0.1"), a("10.1.0.5"));
        assert_eq!(
            TrafficRange::from_identification(&id).unwrap().to_string(),
            "10.1.0.1..10.1.0.5"
        );
        assert_eq!(TrafficRange::host(a("0.0.0.0")).to_string(), "0.0.0.0/32");
        let all = TrafficRange {
            start: a("0.0.0.0"),
            end: a("255.255.255.255"),
            protocol: 0,
            port: None,
        };
        assert_eq!(all.to_string(), "0.0.0.0/0");
        assert!(TrafficRange::from_identification(&Identification::fqdn("x")).is_none());
    }

    #[test]
    fn narrowing_is_contained_widening_is_not() {
        let conf = TrafficRange {
            start: a("10.1.0.0"),
            end: a("10.1.0.255"),
            protocol: 0,
            port: None,
        };
        let host = TrafficRange {
            port: Some(80),
            protocol: 6,
            ..TrafficRange::host(a("10.1.0.7"))
        };
        assert!(conf.contains(&host));
        assert!(!host.contains(&conf));
        let wider = TrafficRange {
            start: a("10.0.0.0"),
            ..conf
        };
        assert!(!conf.contains(&wider));
        let tcp = TrafficRange {
            protocol: 6,
            ..conf
        };
        assert!(!tcp.contains(&TrafficRange {
            protocol: 17,
            ..conf
        }));
        assert!(!tcp.contains(&conf));
    }
}
