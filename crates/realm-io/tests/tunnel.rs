//! The primitives as the daemons combine them: a host whose TUN carries an already-public packet,
//! tunnelled IP-in-IP over a raw socket to a "gateway" that answers through the tunnel. Neither
//! namespace has an ipip device; everything is userspace.
//!
//!   app (192.0.2.1) -> realm0 TUN -> host loop -> raw proto 4 (10.1.0.2 -> 10.1.0.1) -> gateway
//!   gateway -> raw proto 4 (10.1.0.1 -> 10.1.0.2) -> host loop -> realm0 TUN -> app

// Test code: helpers outside #[test] fns may unwrap and panic too (clippy.toml covers only #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::mpsc;

use common::{WAIT, ip_fields, ipv4, lab, udp_packet};
use realm_io::netns;
use realm_io::raw::{RawIpOptions, proto};
use realm_io::{Ipv4Prefix, Netlink, RawIp, RouteVia, Tun, TunConfig};

const HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

#[test]
fn udp_through_tun_and_userspace_ipip_and_back() {
    let mut lab = lab();
    let (host, gw) = common::two_namespaces(&mut lab, ("host", HOST), ("gw", GATEWAY));

    // The gateway: one tunnelled packet in, one answer out.
    let (gw_ready_tx, gw_ready_rx) = mpsc::channel();
    let gateway = netns::spawn_in(&gw, move || async move {
        let raw = RawIp::open(proto::IPIP, &RawIpOptions::default()).unwrap();
        gw_ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; realm_io::MAX_IPV4_PACKET];
        let n = tokio::time::timeout(WAIT, raw.recv(&mut buf))
            .await
            .expect("gateway got nothing")
            .unwrap();
        let outer = buf[..n].to_vec();
        let (osrc, odst, oproto, ihl) = ip_fields(&outer).unwrap();
        assert_eq!((osrc, odst, oproto), (HOST, GATEWAY, proto::IPIP));
        let inner = &outer[ihl..];
        let (isrc, idst, iproto, iihl) = ip_fields(inner).unwrap();
        assert_eq!((isrc, idst, iproto), (LEASED, PEER, proto::UDP));
        let sport = u16::from_be_bytes([inner[iihl], inner[iihl + 1]]);
        let reply = udp_packet(PEER, LEASED, 7, sport, b"pong");
        raw.send(&ipv4(GATEWAY, HOST, proto::IPIP, &reply))
            .await
            .unwrap();
        inner.to_vec()
    });

    // The host daemon: TUN -> IP-in-IP, IP-in-IP -> TUN, once each way.
    let (host_ready_tx, host_ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let host_loop = netns::spawn_in(&host, move || async move {
        let nl = Netlink::new().unwrap();
        let tun = Tun::create_with(
            &TunConfig::new("realm0")
                .mtu(1480)
                .address(Ipv4Prefix::host(LEASED)),
            &nl,
        )
        .await
        .unwrap();
        nl.add_route(
            "203.0.113.0/24".parse().unwrap(),
            &RouteVia::Device("realm0".into()),
        )
        .await
        .unwrap();
        let raw = RawIp::open(
            proto::IPIP,
            &RawIpOptions {
                bind: Some(HOST),
                ..RawIpOptions::default()
            },
        )
        .unwrap();
        host_ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; realm_io::MAX_IPV4_PACKET];
        loop {
            let n = tokio::time::timeout(WAIT, tun.recv(&mut buf))
                .await
                .expect("nothing from the TUN")
                .unwrap();
            if buf[0] >> 4 == 4 {
                raw.send(&ipv4(HOST, GATEWAY, proto::IPIP, &buf[..n]))
                    .await
                    .unwrap();
                break;
            }
        }
        let n = tokio::time::timeout(WAIT, raw.recv(&mut buf))
            .await
            .expect("nothing back through the tunnel")
            .unwrap();
        let (_, _, _, ihl) = ip_fields(&buf[..n]).unwrap();
        tun.send(&buf[ihl..n]).await.unwrap();
        done_rx.recv_timeout(WAIT).ok();
    });

    gw_ready_rx.recv_timeout(WAIT).unwrap();
    host_ready_rx.recv_timeout(WAIT).unwrap();
    // The application: a plain UDP socket on the leased public address.
    let (reply, from, sport) = netns::in_namespace(&host, || {
        let sock = UdpSocket::bind((LEASED, 0)).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        sock.send_to(b"ping", (PEER, 7)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).expect("no reply to the app");
        (buf[..n].to_vec(), from, sock.local_addr().unwrap().port())
    })
    .unwrap();
    done_tx.send(()).ok();
    host_loop.join().unwrap().unwrap();
    let inner = gateway.join().unwrap().unwrap();

    assert_eq!(reply, b"pong");
    assert_eq!(from, (PEER, 7).into());
    // The gateway saw the application's packet untranslated: same UDP bytes (checksum included)
    // as a hand-built one; the IP header differs only in the kernel's choices (ID).
    assert_eq!(
        inner[20..],
        udp_packet(LEASED, PEER, sport, 7, b"ping")[20..]
    );
    assert_eq!(common::checksum(&inner[..20]), 0);
}
