//! `offload::IpipOffload`: the kernel encapsulates a TUN's TCP superpackets
//! and they cross a 1500-byte veth WHOLE, as one IP-in-IP packet, to a raw
//! socket on the far side (neither namespace has an ipip device).
//!
//!   app 192.0.2.1:40000 -> realm0 TUN (offloads) -> tcx egress program
//!       -> eth0 10.1.0.2 ==== 10.1.0.1 eth0 -> raw protocol-4 socket ("gateway")
//!
//! The test is the TCP peer itself: it reads the SYN from the TUN (a single
//! packet: the program leaves it to the TUN's reader) and writes the SYN-ACK
//! back; the application's first flight then leaves as one GSO packet, which
//! the program encapsulates. A second connection, from a port the program's
//! map does not hold, must reach the TUN's reader instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;

use common::{WAIT, checksum, ip_fields, lab};
use realm_io::netns;
use realm_io::offload::IpipOffload;
use realm_io::raw::{RawIpOptions, proto};
use realm_io::{Ipv4Prefix, Netlink, RawIp, RouteVia, Tun, TunConfig};

const HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
const PORT: u16 = 40_000;
const MTU: u16 = 1480;

/// A SYN-ACK from PEER:80 answering `syn` (an IPv4 TCP SYN), MSS 1440, no
/// other options; checksums complete.
fn syn_ack(syn: &[u8]) -> Vec<u8> {
    let ihl = usize::from(syn[0] & 0x0f) * 4;
    let tcp = &syn[ihl..];
    let isn = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let mut seg = Vec::new();
    seg.extend_from_slice(&80u16.to_be_bytes());
    seg.extend_from_slice(&tcp[0..2]); // their port
    seg.extend_from_slice(&1000u32.to_be_bytes()); // our ISN
    seg.extend_from_slice(&isn.wrapping_add(1).to_be_bytes());
    seg.extend_from_slice(&[0x60, 0x12]); // 24-byte header; SYN|ACK
    seg.extend_from_slice(&65_535u16.to_be_bytes());
    seg.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    seg.extend_from_slice(&[2, 4, 0x05, 0xa0]); // MSS 1440
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&PEER.octets());
    pseudo.extend_from_slice(&LEASED.octets());
    pseudo.extend_from_slice(&[0, proto::TCP]);
    pseudo.extend_from_slice(&u16::try_from(seg.len()).unwrap().to_be_bytes());
    pseudo.extend_from_slice(&seg);
    let sum = checksum(&pseudo);
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    common::ipv4(PEER, LEASED, proto::TCP, &seg)
}

/// Connects from LEASED:`port` to PEER:80 through `tun`, the test playing
/// the peer's side of the handshake (the SYN is a single packet, which the
/// program leaves to the TUN's reader; IPv6 router solicitations are
/// skipped), then writes `data`. The connection lives until the task is
/// dropped or the test ends.
async fn connect(
    tun: &Tun,
    bufs: &mut [Vec<u8>],
    lens: &mut [usize],
    port: u16,
    data: Vec<u8>,
) -> tokio::task::JoinHandle<()> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddrV4::new(LEASED, port).into()).unwrap();
    let client = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let mut c = socket
            .connect(SocketAddrV4::new(PEER, 80).into())
            .await
            .unwrap();
        c.write_all(&data).await.unwrap();
        tokio::time::sleep(WAIT).await;
    });
    let syn = loop {
        let n = tokio::time::timeout(WAIT, tun.recv_batch(bufs, lens))
            .await
            .expect("no SYN on the TUN")
            .unwrap();
        let found = bufs[..n].iter().zip(&lens[..n]).find_map(|(b, &l)| {
            let p = &b[..l];
            (p[0] == 0x45
                && p[9] == proto::TCP
                && p[20 + 13] & 0x02 != 0
                && u16::from_be_bytes([p[20], p[21]]) == port)
                .then(|| p.to_vec())
        });
        if let Some(syn) = found {
            break syn;
        }
    };
    tun.send(&syn_ack(&syn)).await.unwrap();
    client
}

#[test]
fn a_tcp_superpacket_crosses_the_link_whole_encapsulated_by_the_kernel() {
    let mut lab = lab();
    let (host, gw) = common::two_namespaces(&mut lab, ("host", HOST), ("gw", GATEWAY));

    // The "gateway": the first tunnel packet larger than the link's MTU.
    let (ready_tx, ready_rx) = mpsc::channel();
    let gateway = netns::spawn_in(&gw, move || async move {
        let raw = RawIp::open(proto::IPIP, &RawIpOptions::default()).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; realm_io::MAX_IPV4_PACKET];
        loop {
            let n = tokio::time::timeout(WAIT, raw.recv(&mut buf))
                .await
                .expect("no superpacket reached the gateway")
                .unwrap();
            if n > 1500 {
                return buf[..n].to_vec();
            }
        }
    });
    ready_rx.recv_timeout(WAIT).unwrap();

    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let (stats, revoked) = netns::block_on_in(&host, move || async move {
        let nl = Netlink::new().unwrap();
        let tun = Tun::create_with(
            &TunConfig::new("realm0")
                .mtu(MTU)
                .offload(true)
                .address(Ipv4Prefix::host(LEASED)),
            &nl,
        )
        .await
        .unwrap();
        assert!(tun.offload(), "the kernel refused TUN offloads");
        nl.add_route(
            "203.0.113.0/24".parse().unwrap(),
            &RouteVia::Device("realm0".into()),
        )
        .await
        .unwrap();
        let offload = IpipOffload::attach(
            nl.ifindex("realm0").await.unwrap(),
            MTU,
            nl.ifindex("eth0").await.unwrap(),
        )
        .expect("load and attach the offload (root, Linux 6.6+)");
        offload.allow(LEASED, Some(PORT), HOST, GATEWAY).unwrap();
        assert_eq!(offload.stats().unwrap().packets, 0);

        let per = tun.segments_per_superpacket();
        let (mut bufs, mut lens) = (vec![vec![0u8; 2048]; per], vec![0usize; per]);

        // An allowed source: the first flight leaves through the program.
        let _a = connect(&tun, &mut bufs, &mut lens, PORT, sent.clone()).await;
        let mut stats = offload.stats().unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while stats.packets == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            stats = offload.stats().unwrap();
        }

        // A source the map does not hold: its data comes to the TUN's reader
        // (split into MTU packets by realm-io) and the program counts nothing.
        let _b = connect(&tun, &mut bufs, &mut lens, PORT + 1, sent).await;
        let data_from_b = loop {
            let n = tokio::time::timeout(WAIT, tun.recv_batch(&mut bufs, &mut lens))
                .await
                .expect("no data from the unlisted source on the TUN")
                .unwrap();
            let found = bufs[..n].iter().zip(&lens[..n]).any(|(b, &l)| {
                l > 1000
                    && b[0] == 0x45
                    && b[9] == proto::TCP
                    && u16::from_be_bytes([b[20], b[21]]) == PORT + 1
            });
            if found {
                break true;
            }
        };
        assert!(data_from_b);
        assert_eq!(
            offload.stats().unwrap(),
            stats,
            "the program took an unlisted source"
        );

        let revoked = offload.revoke(LEASED, Some(PORT)).unwrap();
        (
            stats,
            revoked && !offload.revoke(LEASED, Some(PORT)).unwrap(),
        )
    })
    .unwrap();
    assert!(stats.packets >= 1 && stats.bytes > 1500, "{stats:?}");
    assert!(revoked, "revoke: true once, then false");

    let outer = gateway.join().unwrap().unwrap();
    // RFC 2003 s3.1: the outer header the program wrote.
    let (src, dst, protocol, ihl) = ip_fields(&outer).unwrap();
    assert_eq!((src, dst, protocol, ihl), (HOST, GATEWAY, proto::IPIP, 20));
    assert_eq!(
        usize::from(u16::from_be_bytes([outer[2], outer[3]])),
        outer.len(),
        "outer total length"
    );
    assert_eq!(outer[8], 64, "TTL");
    assert_eq!(checksum(&outer[..20]), 0, "outer header checksum");
    let inner = &outer[20..];
    assert_eq!(
        outer[6] & 0x40,
        inner[6] & 0x40,
        "DF copied from the inner header"
    );
    assert_eq!(outer[6] & 0x3f, 0, "not a fragment");
    assert_eq!(outer[1], inner[1], "TOS copied");
    // The inner packet: the application's bytes from the leased source, one
    // superpacket of several segments.
    let (isrc, idst, iproto, iihl) = ip_fields(inner).unwrap();
    assert_eq!((isrc, idst, iproto), (LEASED, PEER, proto::TCP));
    assert_eq!(
        u16::from_be_bytes([inner[iihl], inner[iihl + 1]]),
        PORT,
        "source port"
    );
    let thl = usize::from(inner[iihl + 12] >> 4) * 4;
    let payload = &inner[iihl + thl..];
    assert!(payload.len() > usize::from(MTU), "{} bytes", payload.len());
    assert_eq!(payload, &data[..payload.len()]);
}

/// A program the verifier refuses (it returns R0 without setting it) is an
/// error that carries the verifier's own words.
#[test]
fn a_program_the_verifier_refuses_is_an_error_with_its_log() {
    let _lab = lab(); // root, or fail loudly
    let mut a = realm_io::bpf::Asm::new();
    a.exit();
    let insns = a.finish().unwrap();
    let err = realm_io::bpf::Program::load(
        realm_io::bpf::ProgramType::SchedCls,
        "realm_bad",
        &insns,
        "Dual MIT/GPL",
    )
    .expect_err("the verifier must refuse an exit with R0 unset");
    let text = err.to_string();
    assert!(text.contains("R0 !read_ok"), "{text}");
}
