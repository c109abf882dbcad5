//! The host data plane (`realm_rsip::host::dataplane`) on bytes: what may
//! leave, under which binding, what may come in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use proptest::prelude::*;
use realm_rsip::host::dataplane::{
    DropReason, Granted, HostDataPlane, Inbound, Lease, Outbound, Revoked,
};
use realm_rsip::host::{Binding, RequestId};
use realm_wire::ipip::{self, DontFragment, Tunnel};
use realm_wire::ipv4::{self, IpProtocol};
use realm_wire::rsip::{Address, BindId, Ports, RsipMethod, TunnelType};
use realm_wire::{gre, tcp, udp};

const PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const UNDERLAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ENDPOINT2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn lease(ports: Option<Vec<u16>>, ipsec: bool) -> Lease {
    Lease {
        address: PUBLIC,
        ports,
        ipsec,
        endpoint: GATEWAY,
        tunnel: TunnelType::IpIp,
    }
}

fn with(leases: &[(u32, Lease)]) -> HostDataPlane {
    let mut dp = HostDataPlane::new(UNDERLAY, GATEWAY);
    for (id, l) in leases {
        dp.grant(BindId(*id), l.clone());
    }
    dp
}

/// An IPv4 packet from `src` carrying `payload` of `protocol`.
fn ip(src: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    ip_frag(src, protocol, payload, false, 0)
}

fn ip_frag(
    src: Ipv4Addr,
    protocol: IpProtocol,
    payload: &[u8],
    more_frags: bool,
    frag_offset: u16,
) -> Vec<u8> {
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: REMOTE,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: false,
        more_frags,
        frag_offset,
        options: Vec::new(),
    };
    let mut p = vec![0; repr.buffer_len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut p[..]));
    p.extend_from_slice(payload);
    p
}

fn udp(src: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut d = vec![0u8; udp::HEADER_LEN + 4];
    d[0..2].copy_from_slice(&sport.to_be_bytes());
    d[2..4].copy_from_slice(&53u16.to_be_bytes());
    d[4..6].copy_from_slice(&12u16.to_be_bytes());
    d[8..].copy_from_slice(&[1, 2, 3, 4]);
    ip(src, IpProtocol::Udp, &d)
}

/// A TCP segment with `data` bytes of payload.
fn tcp_seg(src: Ipv4Addr, sport: u16, data: usize) -> Vec<u8> {
    let mut t = vec![0u8; tcp::HEADER_LEN + data];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x10;
    ip(src, IpProtocol::Tcp, &t)
}

fn tcp(src: Ipv4Addr, sport: u16) -> Vec<u8> {
    tcp_seg(src, sport, 4)
}

fn other(src: Ipv4Addr, protocol: IpProtocol) -> Vec<u8> {
    ip(src, protocol, &[0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 0, 0])
}

fn tunnel_to(src: Ipv4Addr) -> Tunnel {
    Tunnel {
        src_addr: src,
        dst_addr: UNDERLAY,
        ttl: 64,
        dont_frag: DontFragment::CopyInner,
    }
}

fn ipip_from(src: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ipip::encapsulate(&tunnel_to(src), 7, inner, &mut out).unwrap();
    out
}

fn gre_from(src: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    gre::encapsulate(
        &tunnel_to(src),
        7,
        &gre::Options::default(),
        inner,
        &mut out,
    )
    .unwrap();
    out
}

fn send(dp: &mut HostDataPlane, packet: &[u8]) -> Outbound {
    dp.outbound(packet, &mut Vec::new())
}

#[test]
fn ike_ports_are_shared_under_rsipsec_only() {
    // RSIPSEC without ports (RFC 3104 s6.2 "don't need"): UDP 500 and 4500
    // may leave, nothing else with a port.
    let ipsec = lease(Some(vec![]), true);
    assert!(ipsec.allows(PUBLIC, IpProtocol::Udp, Some(500)));
    assert!(ipsec.allows(PUBLIC, IpProtocol::Udp, Some(4500)));
    assert!(!ipsec.allows(PUBLIC, IpProtocol::Tcp, Some(500)));
    assert!(!ipsec.allows(PUBLIC, IpProtocol::Udp, Some(501)));
    assert!(!ipsec.allows(OTHER, IpProtocol::Udp, Some(500)));
    assert!(ipsec.allows(PUBLIC, IpProtocol::Esp, None));
    // RSAP-IP ports alone do not share the IKE ports.
    let ports = lease(Some(vec![20000, 20001]), false);
    assert!(ports.allows(PUBLIC, IpProtocol::Udp, Some(20001)));
    assert!(!ports.allows(PUBLIC, IpProtocol::Udp, Some(500)));
    assert!(!ports.allows(PUBLIC, IpProtocol::Udp, Some(4500)));
    // RSA-IP: the whole address.
    assert!(lease(None, false).allows(PUBLIC, IpProtocol::Udp, Some(500)));
}

#[test]
fn leased_ports_leave_others_do_not() {
    let mut dp = with(&[(1, lease(Some(vec![20000, 20001]), false))]);
    let tunnelled = Outbound::Tunnel {
        tunnel: TunnelType::IpIp,
        endpoint: GATEWAY,
    };
    assert_eq!(send(&mut dp, &udp(PUBLIC, 20000)), tunnelled);
    assert_eq!(send(&mut dp, &tcp(PUBLIC, 20001)), tunnelled);
    let not_leased = Outbound::Drop(DropReason::NotLeased);
    assert_eq!(send(&mut dp, &udp(PUBLIC, 20002)), not_leased);
    assert_eq!(send(&mut dp, &tcp(PUBLIC, 19999)), not_leased);
    // Not the leased address, whatever the port.
    assert_eq!(send(&mut dp, &udp(OTHER, 20000)), not_leased);
    // Not RSIPSEC: the IKE ports are not shared.
    assert_eq!(send(&mut dp, &udp(PUBLIC, 500)), not_leased);
    assert_eq!(send(&mut dp, &udp(PUBLIC, 4500)), not_leased);
    let c = dp.counters();
    assert_eq!((c.tunnelled, c.drop_not_leased), (2, 5));
    assert_eq!(c.drops(DropReason::NotLeased), 5);
}

#[test]
fn rsa_ip_sends_anything_from_its_address() {
    let mut dp = with(&[(1, lease(None, false))]);
    for packet in [
        udp(PUBLIC, 1),
        udp(PUBLIC, 500),
        tcp(PUBLIC, 65535),
        other(PUBLIC, IpProtocol::Icmp),
        other(PUBLIC, IpProtocol::Unknown(132)),
    ] {
        assert!(matches!(send(&mut dp, &packet), Outbound::Tunnel { .. }));
    }
    assert_eq!(
        send(&mut dp, &udp(OTHER, 1)),
        Outbound::Drop(DropReason::NotLeased)
    );
}

#[test]
fn rsipsec_holders_share_the_ike_ports() {
    let mut dp = with(&[(1, lease(Some(vec![]), true))]);
    assert!(matches!(
        send(&mut dp, &udp(PUBLIC, 500)),
        Outbound::Tunnel { .. }
    ));
    assert!(matches!(
        send(&mut dp, &udp(PUBLIC, 4500)),
        Outbound::Tunnel { .. }
    ));
    // TCP 500 and other UDP ports are not shared.
    assert_eq!(
        send(&mut dp, &tcp(PUBLIC, 500)),
        Outbound::Drop(DropReason::NotLeased)
    );
    assert_eq!(
        send(&mut dp, &udp(PUBLIC, 501)),
        Outbound::Drop(DropReason::NotLeased)
    );
    assert_eq!(
        send(&mut dp, &udp(OTHER, 500)),
        Outbound::Drop(DropReason::NotLeased)
    );
}

#[test]
fn portless_protocols_and_later_fragments_need_the_address_only() {
    let mut dp = with(&[(1, lease(Some(vec![20000]), false))]);
    for protocol in [IpProtocol::Esp, IpProtocol::Ah, IpProtocol::Icmp] {
        assert!(matches!(
            send(&mut dp, &other(PUBLIC, protocol)),
            Outbound::Tunnel { .. }
        ));
        assert_eq!(
            send(&mut dp, &other(OTHER, protocol)),
            Outbound::Drop(DropReason::NotLeased)
        );
    }
    // A later fragment of UDP carries no port: the address suffices.
    let later = ip_frag(PUBLIC, IpProtocol::Udp, &[9; 16], false, 8);
    assert!(matches!(send(&mut dp, &later), Outbound::Tunnel { .. }));
    // A first fragment carries the port; UDP's length covers more than is there.
    let mut head = vec![0u8; 16];
    head[0..2].copy_from_slice(&20000u16.to_be_bytes());
    head[4..6].copy_from_slice(&3000u16.to_be_bytes());
    let first = ip_frag(PUBLIC, IpProtocol::Udp, &head, true, 0);
    assert!(matches!(send(&mut dp, &first), Outbound::Tunnel { .. }));
    head[0..2].copy_from_slice(&20001u16.to_be_bytes());
    let first = ip_frag(PUBLIC, IpProtocol::Udp, &head, true, 0);
    assert_eq!(send(&mut dp, &first), Outbound::Drop(DropReason::NotLeased));
}

#[test]
fn each_binding_uses_its_tunnel_and_endpoint() {
    let gre_lease = Lease {
        ports: Some(vec![30000]),
        tunnel: TunnelType::Gre,
        endpoint: ENDPOINT2,
        ..lease(None, false)
    };
    let mut dp = with(&[(1, lease(Some(vec![20000]), false)), (2, gre_lease)]);
    let inner = udp(PUBLIC, 20000);
    let mut out = Vec::new();
    assert_eq!(
        dp.outbound(&inner, &mut out),
        Outbound::Tunnel {
            tunnel: TunnelType::IpIp,
            endpoint: GATEWAY
        }
    );
    let d = ipip::decapsulate(&out).unwrap();
    assert_eq!((d.outer.src_addr, d.outer.dst_addr), (UNDERLAY, GATEWAY));
    assert_eq!(d.outer.ttl, 64);
    assert_eq!(d.inner.into_inner(), &inner[..]);

    let inner = udp(PUBLIC, 30000);
    assert_eq!(
        dp.outbound(&inner, &mut out),
        Outbound::Tunnel {
            tunnel: TunnelType::Gre,
            endpoint: ENDPOINT2
        }
    );
    // RFC 2784 s2.1: outer protocol 47, then flags/version 0 and protocol
    // type 0x0800 before the inner packet.
    assert_eq!(out[9], 47);
    assert_eq!(&out[20..24], &[0, 0, 0x08, 0x00]);
    let d = gre::decapsulate(&out).unwrap();
    assert_eq!((d.outer.src_addr, d.outer.dst_addr), (UNDERLAY, ENDPOINT2));
    assert_eq!(d.inner.into_inner(), &inner[..]);
    assert!(dp.holds_gre());
}

#[test]
fn a_supported_tunnel_is_preferred_and_l2tp_alone_drops() {
    let l2tp = Lease {
        tunnel: TunnelType::L2tp,
        ..lease(None, false)
    };
    let mut dp = with(&[(1, l2tp.clone())]);
    assert_eq!(
        send(&mut dp, &udp(PUBLIC, 1)),
        Outbound::Drop(DropReason::NotLeased)
    );
    let gre_lease = Lease {
        tunnel: TunnelType::Gre,
        ..lease(Some(vec![1]), false)
    };
    let mut dp = with(&[(1, l2tp), (2, gre_lease)]);
    assert!(matches!(
        send(&mut dp, &udp(PUBLIC, 1)),
        Outbound::Tunnel {
            tunnel: TunnelType::Gre,
            ..
        }
    ));
    assert_eq!(
        send(&mut dp, &udp(PUBLIC, 2)),
        Outbound::Drop(DropReason::NotLeased)
    );
}

#[test]
fn malformed_and_unencapsulable_packets_drop() {
    let mut dp = with(&[(1, lease(None, false))]);
    let malformed = Outbound::Drop(DropReason::Malformed);
    assert_eq!(send(&mut dp, &[]), malformed);
    assert_eq!(send(&mut dp, &[0x45, 0, 0]), malformed);
    // IPv6.
    let mut v6 = udp(PUBLIC, 1);
    v6[0] = 0x65;
    assert_eq!(send(&mut dp, &v6), malformed);
    // Total length beyond the buffer.
    let mut long = udp(PUBLIC, 1);
    long[3] += 1;
    assert_eq!(send(&mut dp, &long), malformed);
    // A truncated TCP header.
    assert_eq!(
        send(&mut dp, &ip(PUBLIC, IpProtocol::Tcp, &[0; 8])),
        malformed
    );
    // TTL 0 (RFC 2003 s3.1: must not be encapsulated).
    let mut ttl0 = udp(PUBLIC, 1);
    ttl0[8] = 0;
    assert_eq!(send(&mut dp, &ttl0), malformed);
    assert_eq!(dp.counters().drop_malformed, 6);
    assert_eq!(dp.counters().tunnelled, 0);
}

#[test]
fn revoked_leases_no_longer_apply() {
    let mut dp = HostDataPlane::new(UNDERLAY, GATEWAY);
    assert_eq!(
        dp.grant(BindId(1), lease(Some(vec![20000]), false)),
        Granted {
            address: PUBLIC,
            new_address: true,
            tunnel_supported: true
        }
    );
    assert!(
        !dp.grant(BindId(2), lease(Some(vec![20001]), false))
            .new_address
    );
    assert!(matches!(
        send(&mut dp, &udp(PUBLIC, 20000)),
        Outbound::Tunnel { .. }
    ));
    assert_eq!(
        dp.revoked(BindId(1)),
        Some(Revoked {
            address: PUBLIC,
            address_released: false,
            last: false
        })
    );
    assert_eq!(
        send(&mut dp, &udp(PUBLIC, 20000)),
        Outbound::Drop(DropReason::NotLeased)
    );
    assert!(matches!(
        send(&mut dp, &udp(PUBLIC, 20001)),
        Outbound::Tunnel { .. }
    ));
    assert_eq!(dp.revoked(BindId(1)), None);
    assert_eq!(
        dp.revoked(BindId(2)),
        Some(Revoked {
            address: PUBLIC,
            address_released: true,
            last: true
        })
    );
    assert!(!dp.holds_address(PUBLIC));
    assert_eq!(
        dp.inbound(&ipip_from(GATEWAY, &udp(REMOTE, 53))),
        Inbound::Drop(DropReason::BadOuter)
    );
}

#[test]
fn inbound_comes_from_the_endpoint_of_a_binding_of_its_tunnel() {
    let gre_lease = Lease {
        tunnel: TunnelType::Gre,
        endpoint: ENDPOINT2,
        ..lease(None, false)
    };
    let mut dp = with(&[(1, lease(Some(vec![20000]), false)), (2, gre_lease)]);
    let inner = udp(REMOTE, 53);
    assert_eq!(
        dp.inbound(&ipip_from(GATEWAY, &inner)),
        Inbound::Deliver {
            tunnel: TunnelType::IpIp,
            inner: &inner
        }
    );
    assert_eq!(
        dp.inbound(&gre_from(ENDPOINT2, &inner)),
        Inbound::Deliver {
            tunnel: TunnelType::Gre,
            inner: &inner
        }
    );
    let bad_outer = Inbound::Drop(DropReason::BadOuter);
    // A wrong outer source.
    assert_eq!(dp.inbound(&ipip_from(OTHER, &inner)), bad_outer);
    // The right endpoint, the wrong tunnel type.
    assert_eq!(dp.inbound(&gre_from(GATEWAY, &inner)), bad_outer);
    assert_eq!(dp.inbound(&ipip_from(ENDPOINT2, &inner)), bad_outer);

    let malformed = Inbound::Drop(DropReason::Malformed);
    // A GRE header with version 1 (RFC 2784 s2.3.1: MUST be 0) is refused.
    let mut v1 = gre_from(ENDPOINT2, &inner);
    v1[21] |= 1;
    assert_eq!(dp.inbound(&v1), malformed);
    // Neither tunnel protocol.
    assert_eq!(dp.inbound(&inner), malformed);
    // A truncated tunnel packet, a corrupted outer header, nothing at all.
    let t = ipip_from(GATEWAY, &inner);
    assert_eq!(dp.inbound(&t[..t.len() - 1]), malformed);
    let mut sum = t.clone();
    sum[10] ^= 0xff;
    assert_eq!(dp.inbound(&sum), malformed);
    assert_eq!(dp.inbound(&[]), malformed);
    let c = dp.counters();
    assert_eq!((c.delivered, c.drop_bad_outer, c.drop_malformed), (2, 3, 5));
}

#[test]
fn largest_contiguous_run_is_the_ephemeral_range() {
    let range = |ports: &[u16]| with(&[(1, lease(Some(ports.to_vec()), false))]).ephemeral_range();
    assert_eq!(range(&[]), None);
    assert_eq!(range(&[5]), Some(5..=5));
    assert_eq!(range(&[1, 2, 3, 7, 8]), Some(1..=3));
    assert_eq!(range(&[1, 5, 6, 7, 8, 10]), Some(5..=8));
    assert_eq!(range(&[65533, 65534, 65535]), Some(65533..=65535));
    // Across bindings; RSA-IP has no ports to give.
    let dp = with(&[
        (1, lease(Some(vec![10, 11]), false)),
        (
            2,
            Lease {
                address: OTHER,
                ..lease(Some(vec![12, 13, 20]), false)
            },
        ),
        (3, lease(None, false)),
    ]);
    assert_eq!(dp.ephemeral_range(), Some(10..=13));
    assert_eq!(with(&[(1, lease(None, false))]).ephemeral_range(), None);
}

#[test]
fn offload_sources_are_the_ipip_leases() {
    let dp = with(&[
        (1, lease(Some(vec![20000, 20001]), false)),
        (
            2,
            Lease {
                address: OTHER,
                endpoint: ENDPOINT2,
                ..lease(None, false)
            },
        ),
        (
            3,
            Lease {
                tunnel: TunnelType::Gre,
                ..lease(Some(vec![30000]), false)
            },
        ),
    ]);
    let sources: Vec<_> = dp.ipip_sources().into_iter().collect();
    assert_eq!(
        sources,
        vec![
            ((PUBLIC, Some(20000)), GATEWAY),
            ((PUBLIC, Some(20001)), GATEWAY),
            ((OTHER, None), ENDPOINT2),
        ]
    );
}

#[test]
fn whole_superpackets_are_full_sized_tcp_under_ipip() {
    const MTU: u16 = 1400;
    let gso = MTU - 40;
    let mut dp = with(&[
        (1, lease(Some(vec![20000]), false)),
        (
            2,
            Lease {
                tunnel: TunnelType::Gre,
                ..lease(Some(vec![30000]), false)
            },
        ),
    ]);
    let superpacket = tcp_seg(PUBLIC, 20000, 4 * usize::from(gso));
    assert!(dp.keeps_whole(&superpacket, gso, MTU));
    // Segments not full-sized for the MTU.
    assert!(!dp.keeps_whole(&superpacket, gso - 1, MTU));
    // Not leased, GRE, UDP, malformed.
    assert!(!dp.keeps_whole(&tcp_seg(PUBLIC, 20001, 4 * usize::from(gso)), gso, MTU));
    assert!(!dp.keeps_whole(&tcp_seg(PUBLIC, 30000, 4 * usize::from(gso)), gso, MTU));
    assert!(!dp.keeps_whole(&udp(PUBLIC, 20000), gso, MTU));
    assert!(!dp.keeps_whole(&superpacket[..10], gso, MTU));
    // Too long for one tunnel packet.
    let big = tcp_seg(PUBLIC, 20000, 65535 - 40 - 10);
    assert!(!dp.keeps_whole(&big, gso, MTU));

    assert_eq!(
        dp.outbound_whole(&superpacket),
        Outbound::Tunnel {
            tunnel: TunnelType::IpIp,
            endpoint: GATEWAY
        }
    );
    assert_eq!(
        dp.outbound_whole(&tcp_seg(PUBLIC, 30000, 100)),
        Outbound::Drop(DropReason::NotLeased)
    );
    assert_eq!(
        dp.outbound_whole(&tcp_seg(PUBLIC, 1, 100)),
        Outbound::Drop(DropReason::NotLeased)
    );
    assert_eq!(
        dp.outbound_whole(&superpacket[..30]),
        Outbound::Drop(DropReason::Malformed)
    );
    let c = dp.counters();
    assert_eq!(
        (c.tunnelled, c.drop_not_leased, c.drop_malformed),
        (1, 2, 1)
    );
}

fn binding(method: RsipMethod, local_address: Address, local_ports: Ports) -> Binding {
    Binding {
        bind_id: BindId(9),
        request: RequestId(1),
        method,
        listen: false,
        local_address,
        local_ports,
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DontNeed,
        spis: Vec::new(),
        tunnel_type: TunnelType::IpIp,
        tunnel_endpoint: None,
        // The data plane reads no lease times.
        #[allow(clippy::disallowed_methods)]
        expires: Instant::now(),
    }
}

#[test]
fn leases_come_from_granted_bindings() {
    let rsap = binding(
        RsipMethod::RsapIp,
        Address::Ipv4(PUBLIC),
        Ports::Range {
            first: 20000,
            count: 3,
        },
    );
    assert_eq!(
        Lease::of_binding(&rsap, GATEWAY),
        Some(lease(Some(vec![20000, 20001, 20002]), false))
    );
    let rsa = binding(RsipMethod::RsaIp, Address::Ipv4(PUBLIC), Ports::DontNeed);
    assert_eq!(Lease::of_binding(&rsa, GATEWAY), Some(lease(None, false)));
    let ipsec = Binding {
        tunnel_type: TunnelType::Gre,
        tunnel_endpoint: Some(Address::Ipv4(ENDPOINT2)),
        ..binding(RsipMethod::Rsipsec, Address::Ipv4(PUBLIC), Ports::DontNeed)
    };
    assert_eq!(
        Lease::of_binding(&ipsec, GATEWAY),
        Some(Lease {
            tunnel: TunnelType::Gre,
            endpoint: ENDPOINT2,
            ..lease(Some(vec![]), true)
        })
    );
    // No IPv4 address: nothing to carry.
    let v6 = binding(
        RsipMethod::RsaIp,
        Address::Ipv6(Ipv6Addr::LOCALHOST),
        Ports::DontNeed,
    );
    assert_eq!(Lease::of_binding(&v6, GATEWAY), None);
    let mut dp = HostDataPlane::new(UNDERLAY, GATEWAY);
    assert_eq!(dp.granted(&v6), None);
    assert!(dp.leases().is_empty());
    assert!(dp.granted(&rsap).is_some());
    assert_eq!(
        dp.leases().get(&BindId(9)),
        Some(&lease(Some(vec![20000, 20001, 20002]), false))
    );
}

/// The model: a TCP/UDP packet from (address, port) may leave iff some
/// IP-in-IP or GRE lease holds the address and either the whole of it, the
/// port, or (RSIPSEC, UDP) the shared port 500 or 4500.
fn model_allows(leases: &[(u32, Lease)], address: Ipv4Addr, udp: bool, port: u16) -> bool {
    leases.iter().any(|(_, l)| {
        matches!(l.tunnel, TunnelType::IpIp | TunnelType::Gre)
            && l.address == address
            && match &l.ports {
                None => true,
                Some(ports) => {
                    ports.contains(&port) || (l.ipsec && udp && (port == 500 || port == 4500))
                }
            }
    })
}

fn arb_address() -> impl Strategy<Value = Ipv4Addr> {
    (0u8..3).prop_map(|i| Ipv4Addr::new(192, 0, 2, i))
}

fn arb_port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(500u16), Just(4500u16), 20000u16..20008]
}

fn arb_lease() -> impl Strategy<Value = Lease> {
    (
        arb_address(),
        proptest::option::of(proptest::collection::vec(arb_port(), 0..4)),
        any::<bool>(),
        prop_oneof![
            Just(TunnelType::IpIp),
            Just(TunnelType::Gre),
            Just(TunnelType::L2tp)
        ],
        prop_oneof![Just(GATEWAY), Just(ENDPOINT2)],
    )
        .prop_map(|(address, ports, ipsec, tunnel, endpoint)| Lease {
            address,
            ports: ports.map(|mut p| {
                p.sort_unstable();
                p.dedup();
                p
            }),
            ipsec,
            endpoint,
            tunnel,
        })
}

proptest! {
    #[test]
    fn outbound_allows_iff_a_lease_covers_the_source(
        leases in proptest::collection::vec((1u32..6, arb_lease()), 0..5),
        address in arb_address(),
        port in arb_port(),
        is_udp in any::<bool>(),
        revoke in proptest::option::of(1u32..6),
    ) {
        let mut dp = with(&leases);
        // Later grants of a bind ID replace earlier ones; a revoked one is gone.
        let mut held: Vec<(u32, Lease)> = Vec::new();
        for (id, l) in &leases {
            held.retain(|(i, _)| i != id);
            held.push((*id, l.clone()));
        }
        if let Some(id) = revoke {
            dp.revoked(BindId(id));
            held.retain(|(i, _)| *i != id);
        }
        let packet = if is_udp { udp(address, port) } else { tcp(address, port) };
        let mut out = Vec::new();
        let got = dp.outbound(&packet, &mut out);
        let allowed = model_allows(&held, address, is_udp, port);
        prop_assert_eq!(matches!(got, Outbound::Tunnel { .. }), allowed);
        match got {
            Outbound::Tunnel { tunnel, endpoint } => {
                // The first (by bind ID) supported lease that covers it.
                held.sort_by_key(|(i, _)| *i);
                let (_, l) = held
                    .iter()
                    .find(|(_, l)| model_allows(&[(0, l.clone())], address, is_udp, port))
                    .unwrap();
                prop_assert_eq!((tunnel, endpoint), (l.tunnel, l.endpoint));
                let outer = ipv4::Packet::new_checked(&out[..]).unwrap();
                prop_assert_eq!(outer.dst_addr(), endpoint);
                prop_assert_eq!(outer.src_addr(), UNDERLAY);
            }
            Outbound::Drop(reason) => prop_assert_eq!(reason, DropReason::NotLeased),
        }
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(
        leases in proptest::collection::vec((1u32..6, arb_lease()), 0..4),
        bytes in proptest::collection::vec(any::<u8>(), 0..128),
        gso in any::<u16>(),
        mtu in any::<u16>(),
    ) {
        let mut dp = with(&leases);
        let mut out = Vec::new();
        let _ = dp.outbound(&bytes, &mut out);
        let _ = dp.outbound_whole(&bytes);
        let _ = dp.keeps_whole(&bytes, gso, mtu);
        let _ = dp.inbound(&bytes);
        // Tunnel-shaped bytes from an endpoint, the inner packet arbitrary.
        let mut outer = ipip_from(GATEWAY, &udp(REMOTE, 53));
        outer.truncate(20);
        outer.extend_from_slice(&bytes);
        let _ = dp.inbound(&outer);
        let c = dp.counters();
        prop_assert_eq!(
            c.tunnelled + c.drop_not_leased + c.drop_malformed + c.delivered + c.drop_bad_outer,
            4
        );
    }
}
