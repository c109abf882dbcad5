//! Data plane tests on literal packets built with the `realm-wire` emitters.

use std::net::Ipv4Addr;
use std::time::Duration;

use realm_lease::{BindId, ClientId, PortSet, Spi, SpiSet, Timestamp};
use realm_wire::ipv4::IpProtocol;
use realm_wire::rsip::{ErrorCode, TunnelType};
use realm_wire::{ah, esp, gre, icmp, ipip, ipv4, isakmp, tcp, udp};

use super::*;

pub(super) const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(super) const PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub(super) const PUBLIC2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub(super) const GW_OWN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub(super) const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
pub(super) const PEER2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub(super) const EP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub(super) const EP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
pub(super) const A: ClientId = ClientId(0xa);
pub(super) const B: ClientId = ClientId(0xb);

pub(super) fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(1_000 + secs)
}

// ------------------------------------------------------------ packet builders

pub(super) fn ip(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    ip_with(src, dst, protocol, payload, 0x1234, false, 0)
}

pub(super) fn ip_with(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload: &[u8],
    ident: u16,
    more_frags: bool,
    frag_offset: u16,
) -> Vec<u8> {
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident,
        dont_frag: false,
        more_frags,
        frag_offset,
        options: Vec::new(),
    };
    let mut out = vec![0; repr.buffer_len() + payload.len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    out[repr.buffer_len()..].copy_from_slice(payload);
    out
}

pub(super) fn udp_segment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    data: &[u8],
) -> Vec<u8> {
    let repr = udp::Repr {
        src_port: sport,
        dst_port: dport,
        has_checksum: true,
        payload_len: data.len(),
    };
    let mut seg = vec![0; repr.buffer_len()];
    seg[udp::HEADER_LEN..].copy_from_slice(data);
    repr.emit(&mut udp::Packet::new_unchecked(&mut seg[..]), src, dst);
    seg
}

pub(super) fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ip(
        src,
        dst,
        IpProtocol::Udp,
        &udp_segment(src, dst, sport, dport, data),
    )
}

pub(super) fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let repr = tcp::Repr {
        src_port: sport,
        dst_port: dport,
        seq_number: 1,
        ack_number: 0,
        flags: tcp::Flags::SYN,
        window_len: 1024,
        urgent_pointer: 0,
        options: Vec::new(),
        payload_len: data.len(),
    };
    let mut seg = vec![0; repr.buffer_len()];
    seg[repr.header_len()..].copy_from_slice(data);
    repr.emit(&mut tcp::Packet::new_unchecked(&mut seg[..]), src, dst);
    ip(src, dst, IpProtocol::Tcp, &seg)
}

pub(super) fn esp4(src: Ipv4Addr, dst: Ipv4Addr, spi: u32) -> Vec<u8> {
    let mut body = vec![0xee; 40];
    let repr = esp::Repr {
        spi,
        sequence_number: 1,
    };
    repr.emit(&mut esp::Packet::new_unchecked(&mut body[..]))
        .unwrap();
    ip(src, dst, IpProtocol::Esp, &body)
}

pub(super) fn ah4(src: Ipv4Addr, dst: Ipv4Addr, spi: u32) -> Vec<u8> {
    let repr = ah::Repr::with_zero_icv(6, spi, 1, 12).unwrap();
    let mut body = vec![0; repr.buffer_len() + 20];
    repr.emit(&mut ah::Packet::new_unchecked(&mut body[..]))
        .unwrap();
    ip(src, dst, IpProtocol::Ah, &body)
}

pub(super) fn icmp4(src: Ipv4Addr, dst: Ipv4Addr, repr: &icmp::Repr) -> Vec<u8> {
    let mut msg = vec![0; repr.buffer_len()];
    repr.emit(&mut icmp::Packet::new_unchecked(&mut msg[..]));
    ip(src, dst, IpProtocol::Icmp, &msg)
}

pub(super) fn echo(src: Ipv4Addr, dst: Ipv4Addr, request: bool, ident: u16) -> Vec<u8> {
    let data = b"ping".to_vec();
    let repr = if request {
        icmp::Repr::EchoRequest {
            ident,
            seq_no: 1,
            data,
        }
    } else {
        icmp::Repr::EchoReply {
            ident,
            seq_no: 1,
            data,
        }
    };
    icmp4(src, dst, &repr)
}

/// An ICMP error from `router` to `to`, quoting `invoking` (8 bytes of data).
pub(super) fn icmp_error(
    router: Ipv4Addr,
    to: Ipv4Addr,
    frag_needed: bool,
    invoking: &[u8],
) -> Vec<u8> {
    let invoking = icmp::Invoking::quote(invoking, 8).unwrap();
    let repr = if frag_needed {
        icmp::Repr::DstUnreachable {
            reason: icmp::DstUnreachable::FragRequired,
            next_hop_mtu: Some(1400),
            invoking,
        }
    } else {
        icmp::Repr::DstUnreachable {
            reason: icmp::DstUnreachable::PortUnreachable,
            next_hop_mtu: None,
            invoking,
        }
    };
    icmp4(router, to, &repr)
}

pub(super) fn ike(cookie: u64) -> Vec<u8> {
    let header = isakmp::Header::new(
        isakmp::ExchangeType::IdentityProtection,
        cookie.to_be_bytes(),
        [0; 8],
        0,
    );
    isakmp::Message::new(header, vec![]).to_bytes().unwrap()
}

pub(super) fn tunnel_ipip(endpoint: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let tunnel = ipip::Tunnel {
        src_addr: endpoint,
        dst_addr: GATEWAY,
        ttl: 64,
        dont_frag: ipip::DontFragment::CopyInner,
    };
    let mut out = Vec::new();
    ipip::encapsulate(&tunnel, 7, inner, &mut out).unwrap();
    out
}

pub(super) fn tunnel_gre(endpoint: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let tunnel = ipip::Tunnel {
        src_addr: endpoint,
        dst_addr: GATEWAY,
        ttl: 64,
        dont_frag: ipip::DontFragment::CopyInner,
    };
    let mut out = Vec::new();
    gre::encapsulate(&tunnel, 7, &gre::Options::default(), inner, &mut out).unwrap();
    out
}

// ------------------------------------------------------------ bindings

pub(super) fn binding(
    bind: u32,
    host: ClientId,
    endpoint: Ipv4Addr,
    address: Ipv4Addr,
    resources: Resources,
) -> Binding {
    Binding {
        bind: BindId(bind),
        host,
        tunnel: Tunnel {
            endpoint,
            kind: TunnelType::IpIp,
        },
        address,
        resources,
        remote: RemoteFlow::Any,
    }
}

pub(super) fn ports(first: u16, count: u16) -> PortSet {
    PortSet::Range { first, count }
}

pub(super) fn spis(first: u32, count: u32) -> SpiSet {
    SpiSet::Range {
        first: Spi(first),
        count,
    }
}

fn config() -> Config {
    let mut c = Config::new(GATEWAY);
    c.local_addresses = vec![GW_OWN];
    c
}

/// Host A holds ports 2000-2009 of PUBLIC, host B 3000-3009.
fn shared() -> DataPlane {
    let mut dp = DataPlane::new(config());
    dp.insert(binding(
        1,
        A,
        EP_A,
        PUBLIC,
        Resources::Ports(ports(2000, 10)),
    ))
    .unwrap();
    dp.insert(binding(
        2,
        B,
        EP_B,
        PUBLIC,
        Resources::Ports(ports(3000, 10)),
    ))
    .unwrap();
    dp
}

/// Both hosts also hold RSIPSEC bindings on PUBLIC: A SPIs 0x1000.., B 0x2000..
fn ipsec() -> DataPlane {
    let mut dp = shared();
    let a = Resources::Ipsec {
        spis: spis(0x1000, 4),
        ports: PortSet::None,
    };
    let b = Resources::Ipsec {
        spis: spis(0x2000, 4),
        ports: PortSet::None,
    };
    dp.insert(binding(3, A, EP_A, PUBLIC, a)).unwrap();
    dp.insert(binding(4, B, EP_B, PUBLIC, b)).unwrap();
    dp
}

#[track_caller]
fn delivered(dp: &mut DataPlane, now: Timestamp, packet: &[u8]) -> (ClientId, PacketBuf) {
    let mut buf = PacketBuf::from_packet(packet);
    match dp.inbound(now, &mut buf) {
        Inbound::Tunnel { host, .. } => (host, buf),
        other => panic!("not tunnelled: {other:?}"),
    }
}

#[track_caller]
fn inbound(dp: &mut DataPlane, now: Timestamp, packet: &[u8]) -> Inbound {
    dp.inbound(now, &mut PacketBuf::from_packet(packet))
}

#[track_caller]
fn inbound_host(dp: &mut DataPlane, now: Timestamp, packet: &[u8]) -> Option<ClientId> {
    match inbound(dp, now, packet) {
        Inbound::Tunnel { host, .. } => Some(host),
        _ => None,
    }
}

#[track_caller]
fn dropped(dp: &mut DataPlane, now: Timestamp, packet: &[u8]) -> DropReason {
    match inbound(dp, now, packet) {
        Inbound::Drop { reason } => reason,
        other => panic!("not dropped: {other:?}"),
    }
}

#[track_caller]
fn forwarded(dp: &mut DataPlane, now: Timestamp, tunnelled: &[u8], inner: &[u8]) -> ClientId {
    match dp.outbound(now, tunnelled) {
        Outbound::Forward { host, range, .. } => {
            assert_eq!(&tunnelled[range], inner);
            host
        }
        other => panic!("not forwarded: {other:?}"),
    }
}

#[track_caller]
fn refused(
    dp: &mut DataPlane,
    now: Timestamp,
    tunnelled: &[u8],
) -> (DropReason, Option<Violation>) {
    match dp.outbound(now, tunnelled) {
        Outbound::Drop { reason, violation } => (reason, violation),
        other => panic!("not dropped: {other:?}"),
    }
}

/// The inner packet of what the data plane tunnelled, checking the outer header.
fn inner_of(buf: &PacketBuf, endpoint: Ipv4Addr, kind: TunnelType) -> Vec<u8> {
    let packet = buf.packet();
    match kind {
        TunnelType::IpIp => {
            let d = ipip::decapsulate(packet).unwrap();
            assert_eq!(d.outer.src_addr, GATEWAY);
            assert_eq!(d.outer.dst_addr, endpoint);
            d.inner.as_ref().to_vec()
        }
        TunnelType::Gre => {
            let d = gre::decapsulate(packet).unwrap();
            assert_eq!(d.outer.src_addr, GATEWAY);
            assert_eq!(d.outer.dst_addr, endpoint);
            d.inner.as_ref().to_vec()
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------ RSAP-IP

#[test]
fn hosts_sharing_an_address_get_exactly_their_own_packets() {
    let mut dp = shared();
    for port in [2000, 2005, 2009] {
        let p = udp4(PEER, PUBLIC, 53, port, b"reply");
        let (host, buf) = delivered(&mut dp, t(0), &p);
        assert_eq!(host, A);
        assert_eq!(inner_of(&buf, EP_A, TunnelType::IpIp), p);
        let p = tcp4(PEER, PUBLIC, 80, port, b"data");
        assert_eq!(delivered(&mut dp, t(0), &p).0, A);
    }
    for port in [3000, 3009] {
        let p = udp4(PEER, PUBLIC, 53, port, b"reply");
        let (host, buf) = delivered(&mut dp, t(0), &p);
        assert_eq!(host, B);
        assert_eq!(inner_of(&buf, EP_B, TunnelType::IpIp), p);
    }
    for port in [1999, 2010, 2999, 3010] {
        let p = udp4(PEER, PUBLIC, 53, port, b"x");
        assert_eq!(dropped(&mut dp, t(0), &p), DropReason::NoBinding);
    }
    // The shared IKE ports want an IKE header.
    for port in [500, 4500] {
        let p = udp4(PEER, PUBLIC, 53, port, b"x");
        assert_eq!(dropped(&mut dp, t(0), &p), DropReason::Malformed);
    }
    // An address the gateway does not know at all.
    let p = udp4(PEER, PUBLIC2, 53, 2000, b"x");
    assert_eq!(dropped(&mut dp, t(0), &p), DropReason::NoBinding);
    let c = dp.counters();
    assert_eq!(c.inbound.passed, 8);
    assert_eq!(c.inbound.drops(DropReason::NoBinding), 5);
    assert_eq!(c.inbound.drops(DropReason::Malformed), 2);
}

#[test]
fn outbound_from_leased_ports_is_forwarded_unchanged() {
    let mut dp = shared();
    let inner = udp4(PUBLIC, PEER, 2003, 53, b"query");
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &inner), &inner),
        A
    );
    let inner = tcp4(PUBLIC, PEER, 3009, 443, b"hello");
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &inner), &inner),
        B
    );
    assert_eq!(dp.counters().outbound.passed, 2);
}

#[test]
fn unleased_source_port_is_a_rate_limited_violation() {
    let mut dp = shared();
    // A sends from B's port.
    let inner = udp4(PUBLIC, PEER, 3000, 53, b"x");
    let packet = tunnel_ipip(EP_A, &inner);
    let n = dp.config().violations_per_second;
    for _ in 0..n {
        let (reason, violation) = refused(&mut dp, t(0), &packet);
        assert_eq!(reason, DropReason::LocalAddrportUnallowed);
        assert_eq!(
            violation,
            Some(Violation {
                host: A,
                code: ErrorCode::LocalAddrportUnallowed
            })
        );
    }
    // The N+1th within the second: dropped, not reported.
    assert_eq!(
        refused(&mut dp, t(0), &packet),
        (DropReason::LocalAddrportUnallowed, None)
    );
    // B has its own bucket.
    let inner_b = udp4(PUBLIC, PEER, 2000, 53, b"x");
    let (_, v) = refused(&mut dp, t(0), &tunnel_ipip(EP_B, &inner_b));
    assert_eq!(v.map(|v| v.host), Some(B));
    // A second later A may be told again.
    assert!(refused(&mut dp, t(1), &packet).1.is_some());
    let c = dp.counters();
    assert_eq!(c.violations.reported, u64::from(n) + 2);
    assert_eq!(c.violations.suppressed, 1);
    assert_eq!(
        c.outbound.drops(DropReason::LocalAddrportUnallowed),
        u64::from(n) + 3
    );
}

#[test]
fn unleased_source_address_is_local_addr_unallowed() {
    let mut dp = shared();
    for src in [PUBLIC2, GW_OWN, EP_A] {
        let inner = udp4(src, PEER, 2000, 53, b"x");
        let (reason, v) = refused(&mut dp, t(0), &tunnel_ipip(EP_A, &inner));
        assert_eq!(reason, DropReason::LocalAddrUnallowed);
        assert_eq!(v.unwrap().code, ErrorCode::LocalAddrUnallowed);
    }
    // A protocol with no demultiplexing field on a shared address.
    let inner = ip(PUBLIC, PEER, IpProtocol::Unknown(132), b"sctp");
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_A, &inner)).0,
        DropReason::LocalAddrUnallowed
    );
}

#[test]
fn tunnel_checks() {
    let mut dp = shared();
    let inner = udp4(PUBLIC, PEER, 2000, 53, b"x");
    // A was granted IP-in-IP: GRE is BAD_TUNNEL_TYPE.
    let (reason, v) = refused(&mut dp, t(0), &tunnel_gre(EP_A, &inner));
    assert_eq!(reason, DropReason::BadTunnelType);
    assert_eq!(v.unwrap().code, ErrorCode::BadTunnelType);
    // Unknown endpoint: dropped, nobody to report to.
    let stranger = Ipv4Addr::new(10, 0, 0, 99);
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(stranger, &inner)),
        (DropReason::UnknownEndpoint, None)
    );
    // Not a tunnel packet.
    assert_eq!(
        refused(&mut dp, t(0), &inner),
        (DropReason::NotTunnelled, None)
    );
    // Corrupt inner header checksum.
    let mut bad = inner.clone();
    bad[10] ^= 0xff;
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_A, &bad)).0,
        DropReason::HeaderChecksum
    );
    // A fragmented tunnel packet.
    let mut frag = tunnel_ipip(EP_A, &inner);
    let mut p = ipv4::Packet::new_unchecked(&mut frag[..]);
    p.set_more_frags(true);
    p.fill_checksum();
    assert_eq!(refused(&mut dp, t(0), &frag).0, DropReason::OuterFragment);
    // Garbage.
    assert_eq!(
        refused(&mut dp, t(0), &[0x45, 0, 0]).0,
        DropReason::Malformed
    );
}

#[test]
fn gre_and_ipip_both_ways() {
    let mut dp = DataPlane::new(config());
    let mut b = binding(1, A, EP_A, PUBLIC, Resources::Ports(ports(2000, 10)));
    b.tunnel.kind = TunnelType::Gre;
    dp.insert(b).unwrap();
    dp.insert(binding(
        2,
        B,
        EP_B,
        PUBLIC,
        Resources::Ports(ports(3000, 10)),
    ))
    .unwrap();
    // Outbound: A through GRE, B through IP-in-IP.
    let inner = udp4(PUBLIC, PEER, 2000, 53, b"via gre");
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_gre(EP_A, &inner), &inner),
        A
    );
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_A, &inner)).0,
        DropReason::BadTunnelType
    );
    let inner = udp4(PUBLIC, PEER, 3000, 53, b"via ipip");
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &inner), &inner),
        B
    );
    // Inbound: each in its own tunnel type, inner unchanged, outer valid.
    let p = udp4(PEER, PUBLIC, 53, 2000, b"back via gre");
    let mut buf = PacketBuf::from_packet(&p);
    assert_eq!(
        dp.inbound(t(0), &mut buf),
        Inbound::Tunnel {
            host: A,
            bind: BindId(1),
            endpoint: EP_A,
            tunnel: TunnelType::Gre
        }
    );
    assert_eq!(inner_of(&buf, EP_A, TunnelType::Gre), p);
    assert_eq!(buf.len(), p.len() + 24);
    let p = tcp4(PEER, PUBLIC, 80, 3001, b"back via ipip");
    let mut buf = PacketBuf::from_packet(&p);
    assert!(matches!(
        dp.inbound(t(0), &mut buf),
        Inbound::Tunnel {
            host: B,
            tunnel: TunnelType::IpIp,
            ..
        }
    ));
    assert_eq!(inner_of(&buf, EP_B, TunnelType::IpIp), p);
    assert_eq!(buf.len(), p.len() + 20);
}

#[test]
fn inbound_header_checks_and_ttl() {
    let mut dp = shared();
    let mut p = udp4(PEER, PUBLIC, 53, 2000, b"x");
    p[11] ^= 1;
    assert_eq!(dropped(&mut dp, t(0), &p), DropReason::HeaderChecksum);
    let mut p = udp4(PEER, PUBLIC, 53, 2000, b"x");
    let mut v = ipv4::Packet::new_unchecked(&mut p[..]);
    v.set_ttl(0);
    v.fill_checksum();
    assert_eq!(dropped(&mut dp, t(0), &p), DropReason::TtlZero);
    // Link padding is not forwarded.
    let p = udp4(PEER, PUBLIC, 53, 2000, b"x");
    let mut padded = p.clone();
    padded.extend_from_slice(&[0; 6]);
    let (_, buf) = delivered(&mut dp, t(0), &padded);
    assert_eq!(inner_of(&buf, EP_A, TunnelType::IpIp), p);
}

// ------------------------------------------------------------ flow policy

#[test]
fn remote_flow_policy_both_directions() {
    let mut dp = DataPlane::new(config());
    let mut macro_flow = binding(1, A, EP_A, PUBLIC, Resources::Ports(ports(2000, 10)));
    macro_flow.remote = RemoteFlow::Address(PEER);
    let mut micro_flow = binding(2, B, EP_B, PUBLIC, Resources::Ports(ports(3000, 1)));
    micro_flow.remote = RemoteFlow::AddressPorts {
        address: PEER,
        ports: ports(443, 1),
    };
    dp.insert(macro_flow).unwrap();
    dp.insert(micro_flow).unwrap();

    let ok = udp4(PUBLIC, PEER, 2000, 9999, b"x");
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &ok), &ok);
    let bad = udp4(PUBLIC, PEER2, 2000, 9999, b"x");
    let (reason, v) = refused(&mut dp, t(0), &tunnel_ipip(EP_A, &bad));
    assert_eq!(reason, DropReason::RemoteAddrUnallowed);
    assert_eq!(v.unwrap().code, ErrorCode::RemoteAddrUnallowed);

    let ok = tcp4(PUBLIC, PEER, 3000, 443, b"x");
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &ok), &ok);
    let bad = tcp4(PUBLIC, PEER, 3000, 80, b"x");
    let (reason, v) = refused(&mut dp, t(0), &tunnel_ipip(EP_B, &bad));
    assert_eq!(reason, DropReason::RemoteAddrportUnallowed);
    assert_eq!(v.unwrap().code, ErrorCode::RemoteAddrportUnallowed);
    let bad = tcp4(PUBLIC, PEER2, 3000, 443, b"x");
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_B, &bad)).0,
        DropReason::RemoteAddrUnallowed
    );

    // Ingress: only from the allowed remote (and port).
    assert_eq!(
        inbound_host(&mut dp, t(0), &udp4(PEER, PUBLIC, 1, 2000, b"x")),
        Some(A)
    );
    assert_eq!(
        dropped(&mut dp, t(0), &udp4(PEER2, PUBLIC, 1, 2000, b"x")),
        DropReason::RemoteFlowPolicy
    );
    assert_eq!(
        inbound_host(&mut dp, t(0), &tcp4(PEER, PUBLIC, 443, 3000, b"x")),
        Some(B)
    );
    assert_eq!(
        dropped(&mut dp, t(0), &tcp4(PEER, PUBLIC, 444, 3000, b"x")),
        DropReason::RemoteFlowPolicy
    );
}

// ------------------------------------------------------------ RSA-IP

#[test]
fn rsa_ip_owns_the_whole_address() {
    let mut dp = shared();
    dp.insert(binding(9, B, EP_B, PUBLIC2, Resources::WholeAddress))
        .unwrap();
    for inner in [
        udp4(PUBLIC2, PEER, 5, 53, b"x"),
        tcp4(PUBLIC2, PEER, 65535, 80, b"x"),
        esp4(PUBLIC2, PEER, 0x9999),
        echo(PUBLIC2, PEER, true, 1),
        ip(PUBLIC2, PEER, IpProtocol::Unknown(132), b"sctp"),
    ] {
        assert_eq!(
            forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &inner), &inner),
            B
        );
    }
    // A may not use it.
    let inner = udp4(PUBLIC2, PEER, 5, 53, b"x");
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_A, &inner)).0,
        DropReason::LocalAddrUnallowed
    );
    // Everything to it goes to B, ICMP requests included.
    for p in [
        udp4(PEER, PUBLIC2, 53, 7, b"x"),
        esp4(PEER, PUBLIC2, 0x4242),
        echo(PEER, PUBLIC2, true, 3),
        ip(PEER, PUBLIC2, IpProtocol::Unknown(132), b"sctp"),
    ] {
        assert_eq!(inbound_host(&mut dp, t(0), &p), Some(B));
    }
    // Conflicts: nothing else on that address, no RSA-IP on a shared or own one.
    assert_eq!(
        dp.insert(binding(10, A, EP_A, PUBLIC2, Resources::Ports(ports(1, 1)))),
        Err(TableError::AddressInUse(PUBLIC2))
    );
    assert_eq!(
        dp.insert(binding(11, A, EP_A, PUBLIC, Resources::WholeAddress)),
        Err(TableError::AddressInUse(PUBLIC))
    );
    assert_eq!(
        dp.insert(binding(12, A, EP_A, GW_OWN, Resources::WholeAddress)),
        Err(TableError::AddressInUse(GW_OWN))
    );
}

// ------------------------------------------------------------ table

#[test]
fn table_conflicts_and_removal() {
    let mut dp = shared();
    assert_eq!(
        dp.insert(binding(
            5,
            A,
            EP_A,
            PUBLIC,
            Resources::Ports(ports(3009, 2))
        )),
        Err(TableError::PortInUse {
            address: PUBLIC,
            port: 3009
        })
    );
    assert_eq!(
        dp.insert(binding(1, A, EP_A, PUBLIC2, Resources::Ports(ports(1, 1)))),
        Err(TableError::DuplicateBind(BindId(1)))
    );
    assert_eq!(
        dp.insert(binding(6, B, EP_A, PUBLIC2, Resources::Ports(ports(1, 1)))),
        Err(TableError::EndpointInUse {
            endpoint: EP_A,
            host: A
        })
    );
    let mut l2tp = binding(7, A, EP_A, PUBLIC2, Resources::Ports(ports(1, 1)));
    l2tp.tunnel.kind = TunnelType::L2tp;
    assert_eq!(
        dp.insert(l2tp),
        Err(TableError::UnsupportedTunnel(TunnelType::L2tp))
    );
    assert_eq!(
        dp.insert(binding(
            8,
            A,
            EP_A,
            PUBLIC2,
            Resources::Ports(PortSet::None)
        )),
        Err(TableError::Empty)
    );
    assert_eq!(dp.len(), 2);

    // Removal: B's ports become free, its packets are dropped, its tunnel unknown.
    let removed = dp.remove(BindId(2)).unwrap();
    assert_eq!(removed.host, B);
    assert_eq!(
        dropped(&mut dp, t(0), &udp4(PEER, PUBLIC, 53, 3000, b"x")),
        DropReason::NoBinding
    );
    let inner = udp4(PUBLIC, PEER, 3000, 53, b"x");
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_B, &inner)).0,
        DropReason::UnknownEndpoint
    );
    // And can be leased again, to A.
    dp.insert(binding(
        2,
        A,
        EP_A,
        PUBLIC,
        Resources::Ports(ports(3000, 10)),
    ))
    .unwrap();
    assert_eq!(
        inbound_host(&mut dp, t(0), &udp4(PEER, PUBLIC, 53, 3000, b"x")),
        Some(A)
    );
    assert_eq!(dp.remove_host(A).len(), 2);
    assert!(dp.is_empty());
    assert_eq!(
        dropped(&mut dp, t(0), &udp4(PEER, PUBLIC, 53, 2000, b"x")),
        DropReason::NoBinding
    );
}

// ------------------------------------------------------------ fragments

/// Cuts an IPv4 packet's payload into fragments of `size` bytes (multiple of 8).
fn fragment(packet: &[u8], size: usize) -> Vec<Vec<u8>> {
    let ip = ipv4::Packet::new_checked(packet).unwrap();
    let payload = ip.payload();
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * size;
            ip_with(
                ip.src_addr(),
                ip.dst_addr(),
                ip.protocol(),
                chunk,
                ip.ident(),
                offset + chunk.len() < payload.len(),
                offset as u16,
            )
        })
        .collect()
}

fn big_datagram(dport: u16) -> Vec<u8> {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    udp4(PEER, PUBLIC, 4000, dport, &data)
}

#[test]
fn fragmented_datagram_is_reassembled_for_the_right_host() {
    let mut dp = shared();
    let whole = big_datagram(3004);
    let frags = fragment(&whole, 1288);
    assert_eq!(frags.len(), 4);
    // Out of order, with a duplicate.
    for &i in &[2usize, 0, 3, 0] {
        assert_eq!(inbound(&mut dp, t(0), &frags[i]), Inbound::Buffered);
    }
    let (host, buf) = delivered(&mut dp, t(1), &frags[1]);
    assert_eq!(host, B);
    assert_eq!(inner_of(&buf, EP_B, TunnelType::IpIp), whole);
    let r = &dp.counters().reassembly;
    assert_eq!(
        (
            r.fragments,
            r.reassembled,
            r.duplicates,
            r.datagrams,
            r.bytes
        ),
        (5, 1, 1, 0, 0)
    );
    assert_eq!(dp.counters().inbound.buffered, 4);

    // In order, for A.
    let whole = big_datagram(2001);
    let frags = fragment(&whole, 1480);
    for f in &frags[..frags.len() - 1] {
        assert_eq!(inbound(&mut dp, t(2), f), Inbound::Buffered);
    }
    let (host, buf) = delivered(&mut dp, t(2), &frags[frags.len() - 1]);
    assert_eq!(host, A);
    assert_eq!(inner_of(&buf, EP_A, TunnelType::IpIp), whole);
}

#[test]
fn reassembly_times_out() {
    let mut dp = shared();
    let frags = fragment(&big_datagram(2001), 1288);
    for f in &frags[..3] {
        assert_eq!(inbound(&mut dp, t(0), f), Inbound::Buffered);
    }
    assert_eq!(dp.poll_timeout(), Some(t(30)));
    dp.handle_timeout(t(29));
    assert_eq!(dp.counters().reassembly.datagrams, 1);
    dp.handle_timeout(t(30));
    let r = &dp.counters().reassembly;
    assert_eq!((r.timeouts, r.datagrams, r.bytes), (1, 0, 0));
    // The last fragment alone starts a new, incomplete datagram.
    assert_eq!(inbound(&mut dp, t(31), &frags[3]), Inbound::Buffered);
    // Expiry also happens on the packet path.
    assert_eq!(
        inbound(&mut dp, t(62), &udp4(PEER, PUBLIC, 1, 2000, b"x")),
        Inbound::Tunnel {
            host: A,
            bind: BindId(1),
            endpoint: EP_A,
            tunnel: TunnelType::IpIp
        }
    );
    assert_eq!(dp.counters().reassembly.timeouts, 2);
}

#[test]
fn reassembly_memory_is_bounded() {
    let mut c = config();
    c.reassembly_memory_per_source = 9 << 10;
    c.reassembly_memory = 12 << 10;
    let mut dp = DataPlane::new(c);
    dp.insert(binding(
        1,
        A,
        EP_A,
        PUBLIC,
        Resources::Ports(ports(2000, 10)),
    ))
    .unwrap();
    // One source: two 3 KiB partial datagrams fit, the third does not.
    let data = vec![7u8; 5000];
    let mut first_frags = Vec::new();
    for ident in 0..3u16 {
        let mut p = udp4(PEER, PUBLIC, 1, 2000, &data);
        let mut v = ipv4::Packet::new_unchecked(&mut p[..]);
        v.set_ident(ident);
        v.fill_checksum();
        let frags = fragment(&p, 2960);
        let got = inbound(&mut dp, t(0), &frags[0]);
        first_frags.push((frags, got));
    }
    assert_eq!(first_frags[0].1, Inbound::Buffered);
    assert_eq!(first_frags[1].1, Inbound::Buffered);
    assert_eq!(
        first_frags[2].1,
        Inbound::Drop {
            reason: DropReason::FragmentMemory
        }
    );
    // Another source still has room (total 12 KiB), then the total bound hits.
    let p = udp4(PEER2, PUBLIC, 1, 2000, &data);
    let frags = fragment(&p, 2960);
    assert_eq!(inbound(&mut dp, t(0), &frags[0]), Inbound::Buffered);
    let mut p2 = udp4(PEER2, PUBLIC, 1, 2000, &data);
    let mut v = ipv4::Packet::new_unchecked(&mut p2[..]);
    v.set_ident(99);
    v.fill_checksum();
    assert_eq!(
        inbound(&mut dp, t(0), &fragment(&p2, 2960)[0]),
        Inbound::Drop {
            reason: DropReason::FragmentMemory
        }
    );
    let r = &dp.counters().reassembly;
    assert_eq!(r.memory_drops, 2);
    assert!(r.bytes <= 12 << 10);
    // The buffered datagrams still complete.
    let (frags, _) = &first_frags[0];
    assert_eq!(inbound_host(&mut dp, t(1), &frags[1]), Some(A));
}

#[test]
fn overlapping_and_invalid_fragments_drop_the_datagram() {
    let mut dp = shared();
    let whole = big_datagram(2001);
    let frags = fragment(&whole, 1288);
    assert_eq!(inbound(&mut dp, t(0), &frags[0]), Inbound::Buffered);
    // Same offset, other length: an overlap.
    let ip0 = ipv4::Packet::new_checked(&frags[1][..]).unwrap();
    let overlap = ip_with(
        PEER,
        PUBLIC,
        IpProtocol::Udp,
        &ip0.payload()[..64],
        ip0.ident(),
        true,
        1280,
    );
    assert_eq!(
        inbound(&mut dp, t(0), &overlap),
        Inbound::Drop {
            reason: DropReason::FragmentOverlap
        }
    );
    assert_eq!(dp.counters().reassembly.datagrams, 0);
    // A middle fragment whose length is not a multiple of 8.
    let odd = ip_with(PEER, PUBLIC, IpProtocol::Udp, &[1; 13], 5, true, 0);
    assert_eq!(
        inbound(&mut dp, t(0), &odd),
        Inbound::Drop {
            reason: DropReason::FragmentInvalid
        }
    );
    // Beyond 65535 bytes.
    let big = ip_with(PEER, PUBLIC, IpProtocol::Udp, &[1; 16], 6, true, 65528);
    assert_eq!(
        inbound(&mut dp, t(0), &big),
        Inbound::Drop {
            reason: DropReason::FragmentInvalid
        }
    );
    // Fragments to an address the gateway does not serve are not kept.
    let stray = ip_with(PEER, PUBLIC2, IpProtocol::Udp, &[1; 16], 6, true, 0);
    assert_eq!(
        inbound(&mut dp, t(0), &stray),
        Inbound::Drop {
            reason: DropReason::NoBinding
        }
    );
    assert_eq!(dp.counters().reassembly.datagrams, 0);
}

// ------------------------------------------------------------ IPsec

#[test]
fn esp_and_ah_by_leased_spi() {
    let mut dp = ipsec();
    assert_eq!(
        inbound_host(&mut dp, t(0), &esp4(PEER, PUBLIC, 0x1000)),
        Some(A)
    );
    assert_eq!(
        inbound_host(&mut dp, t(0), &esp4(PEER, PUBLIC, 0x1003)),
        Some(A)
    );
    assert_eq!(
        inbound_host(&mut dp, t(0), &esp4(PEER, PUBLIC, 0x2001)),
        Some(B)
    );
    assert_eq!(
        inbound_host(&mut dp, t(0), &ah4(PEER, PUBLIC, 0x2003)),
        Some(B)
    );
    assert_eq!(
        inbound_host(&mut dp, t(0), &ah4(PEER, PUBLIC, 0x1002)),
        Some(A)
    );
    for p in [
        esp4(PEER, PUBLIC, 0x1004),
        esp4(PEER, PUBLIC, 0x3000),
        ah4(PEER, PUBLIC, 0x3000),
        esp4(PEER, PUBLIC2, 0x1000),
    ] {
        assert_eq!(dropped(&mut dp, t(0), &p), DropReason::NoBinding);
    }
    assert_eq!(
        dropped(&mut dp, t(0), &esp4(PEER, PUBLIC, 7)),
        DropReason::ReservedSpi
    );
    assert_eq!(
        dp.insert(binding(
            9,
            A,
            EP_A,
            PUBLIC,
            Resources::Ipsec {
                spis: spis(0x2003, 2),
                ports: PortSet::None
            }
        )),
        Err(TableError::SpiInUse {
            address: PUBLIC,
            spi: Spi(0x2003)
        })
    );
}

#[test]
fn outbound_esp_needs_an_ipsec_binding_on_the_address() {
    let mut dp = ipsec();
    // The peer's SPI, not a leased one: allowed under the RSIPSEC binding.
    let inner = esp4(PUBLIC, PEER, 0xdead_beef);
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &inner), &inner),
        A
    );
    let inner = ah4(PUBLIC, PEER, 0xdead_beef);
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &inner), &inner),
        B
    );
    // A host with ports only may not send ESP.
    let mut dp = shared();
    let inner = esp4(PUBLIC, PEER, 0xdead_beef);
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_A, &inner)).0,
        DropReason::LocalAddrUnallowed
    );
}

#[test]
fn ike_on_port_500_by_initiator_cookie() {
    let mut dp = ipsec();
    let ike_a = udp4(PUBLIC, PEER, 500, 500, &ike(0xaaaa));
    let ike_b = udp4(PUBLIC, PEER, 500, 500, &ike(0xbbbb));
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &ike_a), &ike_a),
        A
    );
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &ike_b), &ike_b),
        B
    );
    // Retransmissions and later messages with the same cookie are fine.
    forwarded(&mut dp, t(1), &tunnel_ipip(EP_A, &ike_a), &ike_a);
    // B colliding with A's cookie: dropped (RFC 3104 s6.1), no violation.
    let collide = udp4(PUBLIC, PEER2, 500, 500, &ike(0xaaaa));
    assert_eq!(
        refused(&mut dp, t(1), &tunnel_ipip(EP_B, &collide)),
        (DropReason::CookieInUse, None)
    );
    // Replies carry the initiator cookie.
    assert_eq!(
        inbound_host(&mut dp, t(2), &udp4(PEER, PUBLIC, 500, 500, &ike(0xaaaa))),
        Some(A)
    );
    assert_eq!(
        inbound_host(&mut dp, t(2), &udp4(PEER, PUBLIC, 500, 500, &ike(0xbbbb))),
        Some(B)
    );
    assert_eq!(
        dropped(&mut dp, t(2), &udp4(PEER, PUBLIC, 500, 500, &ike(0xcccc))),
        DropReason::NoBinding
    );
    assert_eq!(
        dropped(&mut dp, t(2), &udp4(PEER, PUBLIC, 500, 500, b"short")),
        DropReason::Malformed
    );
    // A host without an RSIPSEC binding may not use the shared port.
    let mut dp = shared();
    let (reason, v) = refused(&mut dp, t(0), &tunnel_ipip(EP_A, &ike_a));
    assert_eq!(reason, DropReason::LocalAddrportUnallowed);
    assert!(v.is_some());
    // The claim dies with the binding.
    let mut dp = ipsec();
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &ike_a), &ike_a);
    dp.remove(BindId(3));
    assert_eq!(
        dropped(&mut dp, t(1), &udp4(PEER, PUBLIC, 500, 500, &ike(0xaaaa))),
        DropReason::NoBinding
    );
    assert_eq!(
        forwarded(&mut dp, t(1), &tunnel_ipip(EP_B, &collide), &collide),
        B
    );
}

#[test]
fn port_4500_tells_ike_esp_and_keepalives_apart() {
    let mut dp = ipsec();
    let mut marked = vec![0, 0, 0, 0];
    marked.extend_from_slice(&ike(0xaaaa));
    let out = udp4(PUBLIC, PEER, 4500, 4500, &marked);
    assert_eq!(forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &out), &out), A);
    let keepalive = udp4(PUBLIC, PEER, 4500, 4500, &[0xff]);
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &keepalive), &keepalive),
        B
    );
    // Inbound IKE by cookie (the cookie claimed on 4500 is the address's).
    assert_eq!(
        inbound_host(&mut dp, t(1), &udp4(PEER, PUBLIC, 4500, 4500, &marked)),
        Some(A)
    );
    assert_eq!(
        inbound_host(&mut dp, t(1), &udp4(PEER, PUBLIC, 500, 500, &ike(0xaaaa))),
        Some(A)
    );
    // ESP-in-UDP by the leased SPI.
    let esp_b = ipv4::Packet::new_checked(&esp4(PEER, PUBLIC, 0x2002)[..])
        .unwrap()
        .payload()
        .to_vec();
    assert_eq!(
        inbound_host(&mut dp, t(1), &udp4(PEER, PUBLIC, 4500, 4500, &esp_b)),
        Some(B)
    );
    let esp_x = ipv4::Packet::new_checked(&esp4(PEER, PUBLIC, 0x7777)[..])
        .unwrap()
        .payload()
        .to_vec();
    assert_eq!(
        dropped(&mut dp, t(1), &udp4(PEER, PUBLIC, 4500, 4500, &esp_x)),
        DropReason::NoBinding
    );
    // Keepalives are ignored.
    assert_eq!(
        dropped(&mut dp, t(1), &udp4(PEER, PUBLIC, 4500, 4500, &[0xff])),
        DropReason::NatKeepalive
    );
}

// ------------------------------------------------------------ ICMP

#[test]
fn echo_replies_follow_the_recorded_mapping() {
    let mut dp = shared();
    let ping_a = echo(PUBLIC, PEER, true, 7);
    assert_eq!(
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &ping_a), &ping_a),
        A
    );
    // B with the same identifier to the same peer: first wins, B is dropped.
    let ping_b = echo(PUBLIC, PEER, true, 7);
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_B, &ping_b)),
        (DropReason::QueryIdInUse, None)
    );
    let ping_b = echo(PUBLIC, PEER, true, 8);
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &ping_b), &ping_b);
    // Same identifier to another peer is another mapping.
    let ping_b2 = echo(PUBLIC, PEER2, true, 7);
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &ping_b2), &ping_b2);

    assert_eq!(
        inbound_host(&mut dp, t(1), &echo(PEER, PUBLIC, false, 7)),
        Some(A)
    );
    assert_eq!(
        inbound_host(&mut dp, t(1), &echo(PEER, PUBLIC, false, 8)),
        Some(B)
    );
    assert_eq!(
        inbound_host(&mut dp, t(1), &echo(PEER2, PUBLIC, false, 7)),
        Some(B)
    );
    assert_eq!(
        dropped(&mut dp, t(1), &echo(PEER, PUBLIC, false, 9)),
        DropReason::NoBinding
    );
    assert_eq!(dp.learned().1, 3);
    // The mapping expires after the query timeout.
    dp.handle_timeout(t(200));
    assert_eq!(dp.learned().1, 0);
    assert_eq!(
        dropped(&mut dp, t(200), &echo(PEER, PUBLIC, false, 7)),
        DropReason::NoBinding
    );
    // Then B may use identifier 7 with PEER.
    forwarded(
        &mut dp,
        t(201),
        &tunnel_ipip(EP_B, &echo(PUBLIC, PEER, true, 7)),
        &echo(PUBLIC, PEER, true, 7),
    );
}

#[test]
fn icmp_requests_go_to_the_gateway() {
    let mut dp = shared();
    assert_eq!(
        inbound(&mut dp, t(0), &echo(PEER, GW_OWN, true, 1)),
        Inbound::Local
    );
    // RFC 3102 s6.2: requests to a shared address too, never to a host.
    assert_eq!(
        inbound(&mut dp, t(0), &echo(PEER, PUBLIC, true, 1)),
        Inbound::Local
    );
    // Unmatched traffic to the gateway's own address is its own.
    assert_eq!(
        inbound(&mut dp, t(0), &tcp4(PEER, GW_OWN, 1, 22, b"x")),
        Inbound::Local
    );
    assert_eq!(dp.counters().inbound.local, 3);
}

#[test]
fn icmp_errors_follow_the_quoted_packet() {
    let mut dp = ipsec();
    let router = PEER2;
    // Frag needed for A's UDP, port unreachable for B's TCP.
    let sent_a = udp4(PUBLIC, PEER, 2004, 53, &[0; 1400]);
    let sent_b = tcp4(PUBLIC, PEER, 3003, 80, b"x");
    let (host, buf) = delivered(&mut dp, t(0), &icmp_error(router, PUBLIC, true, &sent_a));
    assert_eq!(host, A);
    assert_eq!(
        inner_of(&buf, EP_A, TunnelType::IpIp),
        icmp_error(router, PUBLIC, true, &sent_a)
    );
    assert_eq!(
        inbound_host(&mut dp, t(0), &icmp_error(router, PUBLIC, false, &sent_b)),
        Some(B)
    );
    // A quoted port nobody holds, or a quoted source that is not the address.
    let stray = udp4(PUBLIC, PEER, 4000, 53, b"x");
    assert_eq!(
        dropped(&mut dp, t(0), &icmp_error(router, PUBLIC, false, &stray)),
        DropReason::IcmpErrorUnmatched
    );
    let spoof = udp4(PUBLIC2, PEER, 2004, 53, b"x");
    assert_eq!(
        dropped(&mut dp, t(0), &icmp_error(router, PUBLIC, false, &spoof)),
        DropReason::IcmpErrorUnmatched
    );
    // A quoted echo request: the query mapping.
    let ping = echo(PUBLIC, PEER, true, 77);
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &ping), &ping);
    assert_eq!(
        inbound_host(&mut dp, t(0), &icmp_error(router, PUBLIC, false, &ping)),
        Some(B)
    );
    // A quoted ESP packet: the outbound flow learned from the host.
    let sealed = esp4(PUBLIC, PEER, 0xfeed);
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &sealed), &sealed);
    assert_eq!(
        inbound_host(&mut dp, t(0), &icmp_error(router, PUBLIC, true, &sealed)),
        Some(A)
    );
    // Both hosts on the same peer SPI: ambiguous, never guessed.
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_B, &sealed), &sealed);
    assert_eq!(
        dropped(&mut dp, t(0), &icmp_error(router, PUBLIC, true, &sealed)),
        DropReason::IcmpErrorAmbiguous
    );
    // Errors about the gateway's own traffic are its own.
    let own = udp4(GW_OWN, PEER, 4000, 53, b"x");
    assert_eq!(
        inbound(&mut dp, t(0), &icmp_error(router, GW_OWN, false, &own)),
        Inbound::Local
    );
}

#[test]
fn counters_serialize_with_labels() {
    let mut dp = shared();
    dropped(&mut dp, t(0), &udp4(PEER, PUBLIC, 53, 1, b"x"));
    let json = serde_json::to_value(dp.counters()).unwrap();
    assert_eq!(json["inbound"]["drops"]["no_binding"], 1);
    assert_eq!(json["inbound"]["packets"], 1);
    let labels: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), DropReason::COUNT);
}

#[test]
fn learned_state_is_bounded_per_host() {
    let mut c = config();
    c.max_queries_per_host = 2;
    let mut dp = DataPlane::new(c);
    dp.insert(binding(
        1,
        A,
        EP_A,
        PUBLIC,
        Resources::Ports(ports(2000, 10)),
    ))
    .unwrap();
    for ident in 0..2 {
        let p = echo(PUBLIC, PEER, true, ident);
        forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &p), &p);
    }
    let p = echo(PUBLIC, PEER, true, 2);
    assert_eq!(
        refused(&mut dp, t(0), &tunnel_ipip(EP_A, &p)),
        (DropReason::StateFull, None)
    );
    // A refresh of a held identifier is not a new entry.
    let p = echo(PUBLIC, PEER, true, 1);
    forwarded(&mut dp, t(0), &tunnel_ipip(EP_A, &p), &p);
    let _ = Duration::ZERO;
}

#[test]
fn batches_answer_like_single_calls() {
    let mut single = ipsec();
    let mut batched = ipsec();
    let mut gre = binding(
        20,
        ClientId(0xc),
        Ipv4Addr::new(10, 0, 0, 4),
        PUBLIC2,
        Resources::WholeAddress,
    );
    gre.tunnel.kind = TunnelType::Gre;
    single.insert(gre.clone()).unwrap();
    batched.insert(gre).unwrap();
    let inner: Vec<Vec<u8>> = vec![
        udp4(PUBLIC, PEER, 2000, 53, b"x"),
        udp4(PUBLIC, PEER, 3000, 53, b"x"),
        tcp4(PUBLIC2, PEER, 1, 2, b"x"),
        udp4(PUBLIC, PEER, 500, 500, &ike(5)),
        echo(PUBLIC, PEER, true, 3),
        esp4(PUBLIC, PEER, 0x5555),
    ];
    let mut outbound = Vec::new();
    for (k, p) in inner.iter().enumerate() {
        outbound.push(tunnel_ipip(if k % 2 == 0 { EP_A } else { EP_B }, p));
        outbound.push(tunnel_gre(Ipv4Addr::new(10, 0, 0, 4), p));
    }
    outbound.push(vec![1, 2, 3]);
    let expected: Vec<Outbound> = outbound.iter().map(|p| single.outbound(t(0), p)).collect();
    let mut got = Vec::new();
    batched.outbound_batch(t(0), &outbound, &mut got);
    assert_eq!(got, expected);

    let inbound: Vec<Vec<u8>> = vec![
        udp4(PEER, PUBLIC, 53, 2000, b"x"),
        tcp4(PEER, PUBLIC, 53, 3001, b"x"),
        udp4(PEER, PUBLIC, 53, 4000, b"x"),
        tcp4(PEER, PUBLIC2, 1, 2, b"x"),
        udp4(PEER, PUBLIC, 500, 500, &ike(5)),
        echo(PEER, PUBLIC, false, 3),
        esp4(PEER, PUBLIC, 0x1001),
        echo(PEER, PUBLIC, true, 3),
        vec![0x45, 0],
    ];
    let mut bufs: Vec<PacketBuf> = inbound.iter().map(|p| PacketBuf::from_packet(p)).collect();
    let mut got = Vec::new();
    batched.inbound_batch(t(0), &mut bufs, &mut got);
    for (k, p) in inbound.iter().enumerate() {
        let mut buf = PacketBuf::from_packet(p);
        assert_eq!(single.inbound(t(0), &mut buf), got[k]);
        assert_eq!(buf.packet(), bufs[k].packet());
    }
    assert_eq!(single.counters(), batched.counters());
}

mod properties;
