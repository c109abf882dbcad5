//! Property tests: random binding tables, grants and removals (new bindings
//! reuse freed slots, ports and SPIs) and random traffic. Safety: inbound never
//! delivers a packet to a host that does not hold the matching binding (or the
//! learned claim that stands for one) and whose remote flow policy does not
//! allow the sender; outbound forwards only under a binding of the sending
//! host that owns the source. Liveness: what exactly one binding holds is
//! delivered, and what a host's binding allows is forwarded (a data plane
//! that drops everything fails). Nothing panics on arbitrary bytes.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

const ADDRS: [Ipv4Addr; 3] = [PUBLIC, PUBLIC2, Ipv4Addr::new(192, 0, 2, 3)];
const REMOTES: [Ipv4Addr; 2] = [PEER, PEER2];
const HOSTS: u32 = 4;

fn endpoint(host: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 10 + host as u8)
}

#[derive(Debug, Clone)]
struct BindingSpec {
    host: u32,
    addr: usize,
    kind: u8,
    first: u16,
    count: u16,
    gre: bool,
    remote: Option<usize>,
}

fn binding_spec() -> impl Strategy<Value = BindingSpec> {
    (
        0..HOSTS,
        0..ADDRS.len(),
        0u8..8,
        0u16..12,
        1u16..5,
        any::<bool>(),
        prop::option::weighted(0.2, 0..REMOTES.len()),
    )
        .prop_map(
            |(host, addr, kind, first, count, gre, remote)| BindingSpec {
                host,
                addr,
                kind,
                first,
                count,
                gre,
                remote,
            },
        )
}

fn port(i: u16) -> u16 {
    // A small universe, with the shared IKE ports in it.
    match i {
        0 => 500,
        1 => 4500,
        i => 1000 + i,
    }
}

fn spi(i: u16) -> u32 {
    0x100 + u32::from(i)
}

fn to_binding(index: usize, s: &BindingSpec) -> Binding {
    with_bind(BindId(index as u32 + 1), s)
}

fn with_bind(bind: BindId, s: &BindingSpec) -> Binding {
    let ports = PortSet::Range {
        first: 1000 + s.first,
        count: s.count,
    };
    let resources = match s.kind {
        0 => Resources::WholeAddress,
        1..=3 => Resources::Ports(ports),
        4 => Resources::Listen(ports),
        _ => Resources::Ipsec {
            spis: spis(spi(s.first), u32::from(s.count)),
            ports: if s.kind == 5 { ports } else { PortSet::None },
        },
    };
    Binding {
        bind,
        host: ClientId(s.host),
        tunnel: Tunnel {
            endpoint: endpoint(s.host),
            kind: if s.gre {
                TunnelType::Gre
            } else {
                TunnelType::IpIp
            },
        },
        address: ADDRS[s.addr],
        resources,
        remote: match s.remote {
            None => RemoteFlow::Any,
            Some(r) => RemoteFlow::Address(REMOTES[r]),
        },
    }
}

/// One packet of traffic: its shape, by small indexes into the universes.
#[derive(Debug, Clone)]
enum Traffic {
    Udp { port: u16, peer_port: u16 },
    Tcp { port: u16, peer_port: u16 },
    Ike { port500: bool, cookie: u64 },
    EspInUdp { spi: u16 },
    Esp { spi: u16, ah: bool },
    Echo { ident: u16 },
    ErrorQuotingUdp { port: u16 },
    ErrorQuotingEsp { spi: u16 },
    ErrorQuotingEcho { ident: u16 },
}

fn traffic() -> impl Strategy<Value = Traffic> {
    prop_oneof![
        (0u16..16, 0u16..3).prop_map(|(port, peer_port)| Traffic::Udp { port, peer_port }),
        (0u16..16, 0u16..3).prop_map(|(port, peer_port)| Traffic::Tcp { port, peer_port }),
        (any::<bool>(), 1u64..4).prop_map(|(port500, cookie)| Traffic::Ike { port500, cookie }),
        (0u16..16).prop_map(|spi| Traffic::EspInUdp { spi }),
        (0u16..16, any::<bool>()).prop_map(|(spi, ah)| Traffic::Esp { spi, ah }),
        (0u16..4).prop_map(|ident| Traffic::Echo { ident }),
        (0u16..16).prop_map(|port| Traffic::ErrorQuotingUdp { port }),
        (0u16..16).prop_map(|spi| Traffic::ErrorQuotingEsp { spi }),
        (0u16..4).prop_map(|ident| Traffic::ErrorQuotingEcho { ident }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Host `host` sends `traffic` from address `addr` to remote `remote`.
    Out {
        host: u32,
        addr: usize,
        remote: usize,
        traffic: Traffic,
        gre: bool,
    },
    /// Remote `remote` sends `traffic` to address `addr`.
    In {
        addr: usize,
        remote: usize,
        traffic: Traffic,
    },
    /// The engine removes the `index`-th live binding (modulo their number).
    Remove { index: usize },
    /// The engine grants a new binding (a fresh bind ID; it may reuse the
    /// table slot, the ports or the SPIs of a removed one, so state learned
    /// under the old binding must not leak to the new holder).
    Grant { spec: BindingSpec },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..HOSTS, 0..ADDRS.len(), 0..REMOTES.len(), traffic(), any::<bool>()).prop_map(
            |(host, addr, remote, traffic, gre)| Step::Out { host, addr, remote, traffic, gre }
        ),
        5 => (0..ADDRS.len(), 0..REMOTES.len(), traffic())
            .prop_map(|(addr, remote, traffic)| Step::In { addr, remote, traffic }),
        1 => any::<usize>().prop_map(|index| Step::Remove { index }),
        1 => binding_spec().prop_map(|spec| Step::Grant { spec }),
    ]
}

fn udp_with_marker(src: Ipv4Addr, dst: Ipv4Addr, p: u16, q: u16, body: &[u8]) -> Vec<u8> {
    udp4(src, dst, p, q, body)
}

fn esp_body(spi_value: u32) -> Vec<u8> {
    let p = esp4(PEER, PUBLIC, spi_value);
    ipv4::Packet::new_checked(&p[..])
        .unwrap()
        .payload()
        .to_vec()
}

/// The packet `traffic` makes between `local` (the public address) and
/// `remote`, in the direction given.
fn build(traffic: &Traffic, local: Ipv4Addr, remote: Ipv4Addr, outbound: bool) -> Vec<u8> {
    let (src, dst) = if outbound {
        (local, remote)
    } else {
        (remote, local)
    };
    let pair = |local_port: u16, remote_port: u16| {
        if outbound {
            (local_port, remote_port)
        } else {
            (remote_port, local_port)
        }
    };
    match *traffic {
        Traffic::Udp { port: p, peer_port } => {
            let (s, d) = pair(port(p), 53 + peer_port);
            udp4(src, dst, s, d, b"data")
        }
        Traffic::Tcp { port: p, peer_port } => {
            let (s, d) = pair(port(p), 80 + peer_port);
            tcp4(src, dst, s, d, b"data")
        }
        Traffic::Ike { port500, cookie } => {
            let p = if port500 { 500 } else { 4500 };
            let mut body = if port500 { vec![] } else { vec![0; 4] };
            body.extend_from_slice(&ike(cookie));
            udp_with_marker(src, dst, p, p, &body)
        }
        Traffic::EspInUdp { spi: s } => udp4(src, dst, 4500, 4500, &esp_body(spi(s))),
        Traffic::Esp { spi: s, ah } => {
            if ah {
                ah4(src, dst, spi(s))
            } else {
                esp4(src, dst, spi(s))
            }
        }
        Traffic::Echo { ident } => echo(src, dst, outbound, ident),
        Traffic::ErrorQuotingUdp { port: p } => {
            let quoted = udp4(local, remote, port(p), 53, b"data");
            if outbound {
                icmp_error(local, remote, false, &quoted)
            } else {
                icmp_error(remote, local, false, &quoted)
            }
        }
        Traffic::ErrorQuotingEsp { spi: s } => {
            let quoted = esp4(local, remote, spi(s));
            icmp_error(src, dst, true, &quoted)
        }
        Traffic::ErrorQuotingEcho { ident } => {
            let quoted = echo(local, remote, true, ident);
            icmp_error(src, dst, false, &quoted)
        }
    }
}

/// (address, remote, SPI, protocol).
type EspKey = (Ipv4Addr, Ipv4Addr, u32, u8);

/// What the model has learned from forwarded outbound packets.
#[derive(Default)]
struct Model {
    /// (address, cookie) → (host, bind)
    cookies: HashMap<(Ipv4Addr, u64), (ClientId, BindId)>,
    /// (address, remote, ident) → (host, bind)
    queries: HashMap<(Ipv4Addr, Ipv4Addr, u16), (ClientId, BindId)>,
    /// (address, remote, spi, proto) → (first host, bind, ambiguous)
    esp: HashMap<EspKey, (ClientId, BindId, bool)>,
}

impl Model {
    fn forget(&mut self, bind: BindId) {
        self.cookies.retain(|_, v| v.1 != bind);
        self.queries.retain(|_, v| v.1 != bind);
        self.esp.retain(|_, v| v.1 != bind);
    }

    fn learn(
        &mut self,
        host: ClientId,
        bind: BindId,
        traffic: &Traffic,
        local: Ipv4Addr,
        remote: Ipv4Addr,
    ) {
        match *traffic {
            Traffic::Ike { cookie, .. } => {
                let e = self.cookies.entry((local, cookie)).or_insert((host, bind));
                assert_eq!(e.0, host, "a colliding cookie was forwarded");
                e.1 = bind;
            }
            Traffic::Echo { ident } => {
                let e = self
                    .queries
                    .entry((local, remote, ident))
                    .or_insert((host, bind));
                assert_eq!(e.0, host, "a colliding query identifier was forwarded");
                e.1 = bind;
            }
            Traffic::Esp { spi: s, ah } => {
                let proto = if ah { 51 } else { 50 };
                let e = self
                    .esp
                    .entry((local, remote, spi(s), proto))
                    .or_insert((host, bind, false));
                if e.0 == host {
                    e.1 = bind;
                } else {
                    e.2 = true;
                }
            }
            Traffic::EspInUdp { spi: s } => {
                let e = self
                    .esp
                    .entry((local, remote, spi(s), 50))
                    .or_insert((host, bind, false));
                if e.0 == host {
                    e.1 = bind;
                } else {
                    e.2 = true;
                }
            }
            _ => {}
        }
    }
}

fn has_port(b: &Binding, p: u16) -> bool {
    match &b.resources {
        Resources::Ports(s) | Resources::Listen(s) => s.contains(p),
        Resources::Ipsec { ports, .. } => ports.contains(p),
        Resources::WholeAddress => false,
    }
}

fn has_spi(b: &Binding, s: u32) -> bool {
    matches!(&b.resources, Resources::Ipsec { spis, .. } if spis.contains(Spi(s)))
}

/// RFC 3103 s7.2: a binding with a remote flow policy is used only with that
/// remote (the specs make macro-flow policies: an address, any port).
fn remote_ok(b: &Binding, remote: Ipv4Addr) -> bool {
    match b.remote {
        RemoteFlow::Any => true,
        RemoteFlow::Address(a) => a == remote,
        RemoteFlow::AddressPorts { address, .. } => address == remote,
    }
}

fn tunnel_of(gre: bool) -> TunnelType {
    if gre {
        TunnelType::Gre
    } else {
        TunnelType::IpIp
    }
}

/// The local port of TCP or UDP `traffic`, if it has one of its own.
fn local_port(traffic: &Traffic) -> Option<u16> {
    match *traffic {
        Traffic::Udp { port: p, .. } | Traffic::Tcp { port: p, .. } => Some(port(p)),
        _ => None,
    }
}

/// Checks that forwarding `traffic` (outbound, from `local` to `remote`) for
/// `host` under binding `b` is justified: the binding is the host's, on the
/// source address, through the tunnel the packet came in, with a remote flow
/// policy that allows the destination, and for TCP/UDP it holds the source
/// port (or the whole address, or the shared IKE ports under RSIPSEC).
fn justified_out(
    host: ClientId,
    b: &Binding,
    traffic: &Traffic,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    gre: bool,
) -> bool {
    if b.host != host || b.address != local || b.tunnel.kind != tunnel_of(gre) {
        return false;
    }
    if !remote_ok(b, remote) {
        return false;
    }
    match (traffic, &b.resources) {
        (_, Resources::WholeAddress) => true,
        (Traffic::Udp { port: p, .. } | Traffic::Tcp { port: p, .. }, _) => has_port(b, port(*p)),
        (Traffic::Ike { port500, .. }, r) => {
            has_port(b, if *port500 { 500 } else { 4500 }) || matches!(r, Resources::Ipsec { .. })
        }
        _ => true,
    }
}

/// Checks that delivering `traffic` (inbound, to `local` from `remote`) to
/// `host` through binding `b` is justified.
fn justified(
    model: &Model,
    host: ClientId,
    b: &Binding,
    traffic: &Traffic,
    local: Ipv4Addr,
    remote: Ipv4Addr,
) -> bool {
    if b.host != host || b.address != local {
        return false;
    }
    // RFC 3103 s7.2, ingress: only from the remote the policy names (for an
    // ICMP error, the quoted packet's destination, which `build` makes the
    // same remote).
    if !remote_ok(b, remote) {
        return false;
    }
    if b.resources == Resources::WholeAddress {
        return true;
    }
    let learned = |v: Option<&(ClientId, BindId)>| v.is_some_and(|v| v.0 == host);
    match *traffic {
        Traffic::Udp { port: p, .. } | Traffic::Tcp { port: p, .. } => has_port(b, port(p)),
        Traffic::Ike { port500, cookie } => {
            has_port(b, if port500 { 500 } else { 4500 })
                || learned(model.cookies.get(&(local, cookie)))
        }
        Traffic::EspInUdp { spi: s } => has_port(b, 4500) || has_spi(b, spi(s)),
        Traffic::Esp { spi: s, .. } => has_spi(b, spi(s)),
        Traffic::Echo { ident } => learned(model.queries.get(&(local, remote, ident))),
        Traffic::ErrorQuotingUdp { port: p } => has_port(b, port(p)),
        Traffic::ErrorQuotingEsp { spi: s } => model
            .esp
            .get(&(local, remote, spi(s), 50))
            .is_some_and(|v| v.0 == host && !v.2),
        Traffic::ErrorQuotingEcho { ident } => learned(model.queries.get(&(local, remote, ident))),
    }
}

/// Liveness, inbound: TCP or UDP to a port exactly one live binding holds
/// on the address (or to an RSA-IP address), from a remote its policy
/// allows, MUST reach that binding's host. A data plane that drops
/// everything fails here.
fn must_deliver<'a>(
    live: &'a HashMap<BindId, Binding>,
    traffic: &Traffic,
    local: Ipv4Addr,
    remote: Ipv4Addr,
) -> Option<&'a Binding> {
    let p = local_port(traffic)?;
    let holders: Vec<&Binding> = live
        .values()
        .filter(|b| b.address == local)
        .filter(|b| b.resources == Resources::WholeAddress || has_port(b, p))
        .collect();
    match holders.as_slice() {
        [b] if remote_ok(b, remote) => Some(b),
        _ => None,
    }
}

/// Liveness, outbound: TCP or UDP from a port that a binding of this host
/// holds on the address, through that binding's tunnel type, to a remote
/// its policy allows, MUST be forwarded.
fn must_forward(
    live: &HashMap<BindId, Binding>,
    host: ClientId,
    traffic: &Traffic,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    gre: bool,
) -> bool {
    let Some(p) = local_port(traffic) else {
        return false;
    };
    live.values().any(|b| {
        b.host == host
            && b.address == local
            && b.tunnel.kind == tunnel_of(gre)
            && remote_ok(b, remote)
            && (b.resources == Resources::WholeAddress || has_port(b, p))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn inbound_never_reaches_a_host_without_the_binding(
        specs in prop::collection::vec(binding_spec(), 1..10),
        steps in prop::collection::vec(step(), 1..32),
    ) {
        let mut dp = DataPlane::new(Config::new(GATEWAY));
        let mut live: HashMap<BindId, Binding> = HashMap::new();
        let all: Vec<Binding> = specs.iter().enumerate().map(|(i, s)| to_binding(i, s)).collect();
        for b in &all {
            if dp.insert(b.clone()).is_ok() {
                live.insert(b.bind, b.clone());
            }
        }
        let mut model = Model::default();
        let mut buf = PacketBuf::new();
        let now = t(0);
        let mut next_bind = 1_000;
        for step in &steps {
            match step {
                Step::Out { host, addr, remote, traffic, gre } => {
                    let inner = build(traffic, ADDRS[*addr], REMOTES[*remote], true);
                    let packet = if *gre {
                        tunnel_gre(endpoint(*host), &inner)
                    } else {
                        tunnel_ipip(endpoint(*host), &inner)
                    };
                    let (local, far) = (ADDRS[*addr], REMOTES[*remote]);
                    let must = must_forward(&live, ClientId(*host), traffic, local, far, *gre);
                    match dp.outbound(now, &packet) {
                        Outbound::Forward { host: h, bind, range } => {
                            prop_assert_eq!(h, ClientId(*host));
                            prop_assert_eq!(&packet[range], &inner[..]);
                            let b = live.get(&bind).expect("forwarded under a live binding");
                            prop_assert!(
                                justified_out(h, b, traffic, local, far, *gre),
                                "{:?} forwarded for {:?} under {:?}", traffic, h, b
                            );
                            model.learn(h, bind, traffic, local, far);
                        }
                        Outbound::Drop { reason, .. } => prop_assert!(
                            !must,
                            "{:?} from host {} dropped ({:?}) though it holds the port", traffic, host, reason
                        ),
                    }
                }
                Step::In { addr, remote, traffic } => {
                    let (local, far) = (ADDRS[*addr], REMOTES[*remote]);
                    let packet = build(traffic, local, far, false);
                    let must = must_deliver(&live, traffic, local, far).map(|b| b.host);
                    buf.set_packet(&packet);
                    match dp.inbound(now, &mut buf) {
                        Inbound::Tunnel { host, bind, endpoint: ep, .. } => {
                            let b = live.get(&bind).expect("delivered under a live binding");
                            prop_assert_eq!(ep, b.tunnel.endpoint);
                            prop_assert!(
                                justified(&model, host, b, traffic, local, far),
                                "{:?} delivered to {:?} under {:?}", traffic, host, b
                            );
                            if let Some(m) = must {
                                prop_assert_eq!(host, m);
                            }
                        }
                        other => prop_assert!(
                            must.is_none(),
                            "{:?} to {} not delivered to {:?}: {:?}", traffic, local, must, other
                        ),
                    }
                }
                Step::Remove { index } => {
                    let mut binds: Vec<BindId> = live.keys().copied().collect();
                    binds.sort();
                    if !binds.is_empty() {
                        let bind = binds[index % binds.len()];
                        prop_assert!(dp.remove(bind).is_some(), "live {:?} not in the table", bind);
                        live.remove(&bind);
                        model.forget(bind);
                    }
                }
                Step::Grant { spec } => {
                    let b = with_bind(BindId(next_bind), spec);
                    next_bind += 1;
                    if dp.insert(b.clone()).is_ok() {
                        live.insert(b.bind, b);
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..160),
        fix_header in any::<bool>(),
        tunnelled in any::<bool>(),
        frag in any::<bool>(),
    ) {
        let mut dp = DataPlane::new(Config::new(GATEWAY));
        dp.insert(binding(1, A, EP_A, PUBLIC, Resources::Ports(ports(1, 2000)))).unwrap();
        dp.insert(binding(2, B, EP_B, PUBLIC2, Resources::WholeAddress)).unwrap();
        let mut packet = bytes.clone();
        // Make the header valid often enough to reach the deeper paths.
        if fix_header && packet.len() >= 20 {
            packet[0] = 0x45;
            let len = packet.len() as u16;
            packet[2..4].copy_from_slice(&len.to_be_bytes());
            packet[16..20].copy_from_slice(&PUBLIC.octets());
            if !frag {
                packet[6] &= 0x40;
                packet[7] = 0;
            }
            if packet[8] == 0 {
                packet[8] = 1;
            }
            let mut v = ipv4::Packet::new_unchecked(&mut packet[..]);
            v.fill_checksum();
        }
        let mut buf = PacketBuf::from_packet(&packet);
        let _ = dp.inbound(t(0), &mut buf);
        let _ = dp.outbound(t(0), &packet);
        if tunnelled && fix_header && packet.len() >= 20 {
            let mut inner = packet.clone();
            inner[12..16].copy_from_slice(&PUBLIC.octets());
            let mut v = ipv4::Packet::new_unchecked(&mut inner[..]);
            v.fill_checksum();
            let _ = dp.outbound(t(0), &tunnel_ipip(EP_A, &inner));
            let _ = dp.outbound(t(0), &tunnel_gre(EP_B, &inner));
        }
    }
}
