//! rtnetlink helpers: look up links, set them up or down, set MTU, add and delete IPv4 addresses
//! and routes, and find a destination's next hop on Ethernet ([`Netlink::next_hop`]). Every call acts on the network namespace the [`Netlink`] socket was opened in (the
//! calling thread's namespace at [`Netlink::new`]), whichever thread later awaits it.
//!
//! This module never decides what to configure; the daemons and the lab do.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteScope, RouteType};
use rtnetlink::{LinkUnspec, RouteMessageBuilder};

use crate::error::{Error, Result};

/// An IPv4 address with a prefix length, `192.0.2.10/24`. As an interface address the host bits
/// matter; as a route destination [`Ipv4Prefix::network`] is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// `addr/len`; fails if `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self> {
        if len > 32 {
            return Err(Error::Invalid(format!("prefix length {len} > 32")));
        }
        Ok(Ipv4Prefix { addr, len })
    }

    /// A host prefix, `addr/32`.
    #[must_use]
    pub fn host(addr: Ipv4Addr) -> Self {
        Ipv4Prefix { addr, len: 32 }
    }

    /// The address as given (host bits kept).
    #[must_use]
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network address: host bits cleared.
    #[must_use]
    pub fn network(&self) -> Ipv4Addr {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        Ipv4Addr::from(u32::from(self.addr) & mask)
    }

    /// Whether `ip` lies inside this prefix.
    #[must_use]
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.network())
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = Error;

    /// `"a.b.c.d/len"`, or `"a.b.c.d"` for `/32`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "IPv4 prefix".into(),
            value: s.into(),
        };
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        Ipv4Prefix::new(addr.parse().map_err(|_| bad())?, len).map_err(|_| bad())
    }
}

/// Where a route sends its packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteVia {
    /// Straight out of a device, no next hop (`ip route add D dev NAME`, scope link); the way
    /// traffic is steered into a TUN.
    Device(String),
    /// To a next hop the kernel resolves (`ip route add D via GW`).
    Gateway(Ipv4Addr),
    /// To a next hop on a given device (`ip route add D via GW dev NAME`).
    GatewayOnDevice(Ipv4Addr, String),
}

impl fmt::Display for RouteVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteVia::Device(dev) => write!(f, "dev {dev}"),
            RouteVia::Gateway(gw) => write!(f, "via {gw}"),
            RouteVia::GatewayOnDevice(gw, dev) => write!(f, "via {gw} dev {dev}"),
        }
    }
}

/// An rtnetlink connection in one network namespace.
///
/// The socket belongs to the namespace of the thread that called [`Netlink::new`]; its requests
/// keep acting there even when awaited from a tokio worker in another namespace. The connection
/// runs as a tokio task, aborted on drop.
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netlink").finish_non_exhaustive()
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// Opens an rtnetlink socket in the calling thread's namespace and spawns its connection task.
    /// Must be called inside a tokio runtime.
    pub fn new() -> Result<Self> {
        let (connection, handle, _multicast) =
            rtnetlink::new_connection().map_err(|e| Error::io("open rtnetlink socket", e))?;
        let connection = tokio::spawn(connection);
        Ok(Netlink { handle, connection })
    }

    async fn link(&self, name: &str) -> Result<LinkMessage> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(not_found(name)),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Err(not_found(name)),
            Err(e) => Err(Error::netlink(format!("get link {name}"), e)),
        }
    }

    /// The interface index of `name` (`if_nametoindex`, over netlink).
    pub async fn ifindex(&self, name: &str) -> Result<u32> {
        Ok(self.link(name).await?.header.index)
    }

    /// The MTU of `name`.
    pub async fn mtu(&self, name: &str) -> Result<u32> {
        let link = self.link(name).await?;
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(mtu) => Some(*mtu),
                _ => None,
            })
            .ok_or_else(|| Error::NotFound {
                what: format!("MTU attribute of {name}"),
            })
    }

    /// `ip link set NAME up`.
    pub async fn set_link_up(&self, name: &str) -> Result<()> {
        let index = self.ifindex(name).await?;
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set {name} up"), e))
    }

    /// `ip link set NAME down`.
    pub async fn set_link_down(&self, name: &str) -> Result<()> {
        let index = self.ifindex(name).await?;
        let msg = LinkUnspec::new_with_index(index).down().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set {name} down"), e))
    }

    /// `ip link set NAME mtu MTU`.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let index = self.ifindex(name).await?;
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set {name} mtu {mtu}"), e))
    }

    /// `ip addr add ADDR/LEN dev NAME`. The kernel adds the prefix route with it.
    pub async fn add_address(&self, name: &str, addr: Ipv4Prefix) -> Result<()> {
        let index = self.ifindex(name).await?;
        self.handle
            .address()
            .add(index, addr.addr().into(), addr.prefix_len())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("add address {addr} on {name}"), e))
    }

    /// `ip addr del ADDR/LEN dev NAME`.
    pub async fn del_address(&self, name: &str, addr: Ipv4Prefix) -> Result<()> {
        let index = self.ifindex(name).await?;
        let found = self
            .address_messages(name, index)
            .await?
            .into_iter()
            .find(|m| {
                m.header.prefix_len == addr.prefix_len()
                    && m.attributes
                        .iter()
                        .any(|a| matches!(a, AddressAttribute::Local(ip) if *ip == addr.addr()))
            });
        let Some(msg) = found else {
            return Err(Error::NotFound {
                what: format!("address {addr} on {name}"),
            });
        };
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete address {addr} on {name}"), e))
    }

    /// The IPv4 addresses configured on `name`.
    pub async fn addresses(&self, name: &str) -> Result<Vec<Ipv4Prefix>> {
        let index = self.ifindex(name).await?;
        let msgs = self.address_messages(name, index).await?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(std::net::IpAddr::V4(ip)) => {
                        Ipv4Prefix::new(*ip, m.header.prefix_len).ok()
                    }
                    _ => None,
                })
            })
            .collect())
    }

    async fn address_messages(&self, name: &str, index: u32) -> Result<Vec<AddressMessage>> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| Error::netlink(format!("list addresses of {name}"), e))
    }

    async fn route_message(
        &self,
        dest: Ipv4Prefix,
        via: &RouteVia,
    ) -> Result<netlink_packet_route::route::RouteMessage> {
        let builder = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest.network(), dest.prefix_len());
        Ok(match via {
            RouteVia::Device(dev) => builder
                .output_interface(self.ifindex(dev).await?)
                .scope(RouteScope::Link)
                .build(),
            RouteVia::Gateway(gw) => builder.gateway(*gw).build(),
            RouteVia::GatewayOnDevice(gw, dev) => builder
                .gateway(*gw)
                .output_interface(self.ifindex(dev).await?)
                .build(),
        })
    }

    /// `ip route add DEST VIA` in the main table (DEST's host bits are cleared).
    pub async fn add_route(&self, dest: Ipv4Prefix, via: &RouteVia) -> Result<()> {
        let msg = self.route_message(dest, via).await?;
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("add route {} {via}", dest.network()), e))
    }

    /// `ip route del DEST VIA` from the main table.
    pub async fn del_route(&self, dest: Ipv4Prefix, via: &RouteVia) -> Result<()> {
        let msg = self.route_message(dest, via).await?;
        self.handle
            .route()
            .del(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete route {} {via}", dest.network()), e))
    }
}

/// Where the kernel would send a packet for some destination, at the link layer: the output
/// interface and the next hop's Ethernet address ([`Netlink::next_hop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Output interface index (the route's `oif`).
    pub ifindex: u32,
    /// The next hop's MAC address, from the neighbour table.
    pub mac: [u8; 6],
    /// The neighbour entry is confirmed (`REACHABLE`, `PERMANENT` or `NOARP`). Otherwise it is
    /// `STALE`, `DELAY` or `PROBE`: the address is probably right but the kernel wants to see
    /// traffic through its own output path to confirm it (neighbour unreachability detection).
    pub confirmed: bool,
}

impl Netlink {
    /// The next hop for `dst` as `ip route get DST [oif OIF]` then `ip neigh show` would find it
    /// (`oif`: the route a socket bound to that device gets, `SO_BINDTODEVICE`): `None` unless
    /// the route is a unicast one out of an Ethernet interface and the neighbour table holds a
    /// usable (not `INCOMPLETE` or `FAILED`) entry for the gateway, or for `dst` itself when it
    /// is on-link. The caller sends through the IP stack meanwhile, which resolves it.
    pub async fn next_hop(&self, dst: Ipv4Addr, oif: Option<u32>) -> Result<Option<NextHop>> {
        let what = || format!("route to {dst}");
        let mut query = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dst, 32);
        if let Some(oif) = oif {
            query = query.output_interface(oif);
        }
        let route = self
            .handle
            .route()
            .get(query.build())
            .execute()
            .try_next()
            .await
            .map_err(|e| Error::netlink(what(), e))?;
        let Some(route) = route else {
            return Ok(None);
        };
        if route.header.kind != RouteType::Unicast {
            return Ok(None);
        }
        let mut ifindex = None;
        let mut hop = dst;
        for a in &route.attributes {
            match a {
                RouteAttribute::Oif(i) => ifindex = Some(*i),
                RouteAttribute::Gateway(RouteAddress::Inet(gw)) => hop = *gw,
                _ => {}
            }
        }
        let Some(ifindex) = ifindex else {
            return Ok(None);
        };
        let link = self
            .handle
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_next()
            .await
            .map_err(|e| Error::netlink(format!("get link {ifindex}"), e))?;
        if !link.is_some_and(|l| l.header.link_layer_type == LinkLayerType::Ether) {
            return Ok(None);
        }
        let neighbours = self
            .handle
            .neighbours()
            .get()
            .set_address_family(netlink_packet_route::AddressFamily::Inet)
            .execute()
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| Error::netlink(format!("list neighbours for {hop}"), e))?;
        Ok(neighbours.iter().find_map(|n| {
            if n.header.ifindex != ifindex {
                return None;
            }
            let confirmed = match n.header.state {
                NeighbourState::Reachable | NeighbourState::Permanent | NeighbourState::Noarp => {
                    true
                }
                NeighbourState::Stale | NeighbourState::Delay | NeighbourState::Probe => false,
                _ => return None,
            };
            let mut is_hop = false;
            let mut mac = None;
            for a in &n.attributes {
                match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                        is_hop = *ip == hop;
                    }
                    NeighbourAttribute::LinkLayerAddress(l) => {
                        mac = <[u8; 6]>::try_from(&l[..]).ok()
                    }
                    _ => {}
                }
            }
            Some(NextHop {
                ifindex,
                mac: mac.filter(|_| is_hop)?,
                confirmed,
            })
        }))
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        what: format!("interface {name}"),
    }
}

/// The positive errno of a kernel NACK, if that is what `e` is.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_display_network() {
        let p: Ipv4Prefix = "192.0.2.10/24".parse().unwrap();
        assert_eq!(p.addr(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(p.prefix_len(), 24);
        assert_eq!(p.network(), Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(p.to_string(), "192.0.2.10/24");
        assert!(p.contains(Ipv4Addr::new(192, 0, 2, 255)));
        assert!(!p.contains(Ipv4Addr::new(192, 0, 3, 1)));
        let all: Ipv4Prefix = "203.0.113.9/0".parse().unwrap();
        assert_eq!(all.network(), Ipv4Addr::UNSPECIFIED);
        assert!(all.contains(Ipv4Addr::new(10, 1, 2, 3)));
        let host: Ipv4Prefix = "198.51.100.7".parse().unwrap();
        assert_eq!(host, Ipv4Prefix::host(Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!(host.network(), host.addr());
    }

    #[test]
    fn prefix_rejects_garbage() {
        for bad in ["", "1.2.3.4/33", "1.2.3/8", "1.2.3.4/", "x/8", "1.2.3.4/-1"] {
            assert!(bad.parse::<Ipv4Prefix>().is_err(), "{bad:?} parsed");
        }
    }
}
