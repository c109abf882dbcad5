//! AF_PACKET ESP sockets and the next-hop lookup between two namespaces joined by a veth
//! (10.1.0.1/24 <-> 10.1.0.2/24): the receiver's filter takes exactly unfragmented ESP for its
//! address, the sender's frames arrive whole, and `Netlink::next_hop` finds the peer's MAC once
//! the kernel has resolved it (and nothing before).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::Duration;

use common::{A, B, WAIT, ipv4, pair, udp_packet};
use realm_io::netns;
use realm_io::packet::{EspReceiver, PacketSender};
use realm_io::raw::{RawIpOptions, proto};
use realm_io::{Netlink, RawIp};

const OTHER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 3);

fn esp(dst: Ipv4Addr, seq: u8) -> Vec<u8> {
    // SPI 0x1001, sequence, then enough bytes that Ethernet adds no padding.
    let mut payload = vec![0, 0, 0x10, 0x01, 0, 0, 0, seq];
    payload.extend_from_slice(&[seq; 64]);
    ipv4(A, dst, proto::ESP, &payload)
}

#[test]
fn esp_receiver_takes_only_unfragmented_esp_to_its_address() {
    esp_receiver_case(false);
}

#[test]
fn esp_receiver_ring_takes_only_unfragmented_esp_to_its_address() {
    esp_receiver_case(true);
}

/// Five frames sent from A (ESP to B, UDP to B, ESP to another address, an ESP first fragment,
/// ESP to B); B's receiver, with a TPACKET ring or without, gets exactly the two whole ESP
/// packets to B, in order and byte for byte.
fn esp_receiver_case(ring: bool) {
    let (lab, a, b) = pair();
    let mac = |ns: &str, dev: &str| {
        let out = lab
            .run(ns, "cat", &[format!("/sys/class/net/{dev}/address")])
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let bytes: Vec<u8> = text
            .trim()
            .split(':')
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        <[u8; 6]>::try_from(bytes).unwrap()
    };
    let vb_mac = mac(&b, "vb");

    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = netns::spawn_in(&b, move || async move {
        let netlink = Netlink::new().unwrap();
        let ifindex = netlink.ifindex("vb").await.unwrap();
        let mut rx = if ring {
            EspReceiver::open_with_ring(ifindex, B, 1 << 16, 1500).unwrap()
        } else {
            EspReceiver::open(ifindex, B, None).unwrap()
        };
        assert_eq!((rx.ifindex(), rx.has_ring()), (ifindex, ring));
        ready_tx.send(()).unwrap();
        let mut got = Vec::new();
        let mut bufs = vec![vec![0u8; 2048]; 8];
        let mut lens = [0usize; 8];
        // Everything was sent before the deadline; what is not here by then never will be.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(r) =
            tokio::time::timeout_at(deadline, rx.recv_batch(&mut bufs, &mut lens)).await
        {
            let n = r.unwrap();
            got.extend((0..n).map(|i| bufs[i][..lens[i]].to_vec()));
        }
        got
    });
    ready_rx.recv_timeout(WAIT).unwrap();

    netns::block_on_in(&a, || async move {
        let netlink = Netlink::new().unwrap();
        let va = netlink.ifindex("va").await.unwrap();
        // Nothing has resolved B yet: no next hop.
        assert_eq!(netlink.next_hop(B, None).await.unwrap(), None);

        let tx = PacketSender::open(None).unwrap();
        let mut fragment = esp(B, 9);
        fragment[6] = 0x20; // MF, offset 0: the first fragment of a larger packet
        fragment[10..12].copy_from_slice(&[0, 0]);
        let c = common::checksum(&fragment[..20]);
        fragment[10..12].copy_from_slice(&c.to_be_bytes());
        let packets = [
            esp(B, 1),
            udp_packet(A, B, 4000, 4001, &[7; 64]),
            esp(OTHER, 2),
            fragment,
            esp(B, 3),
        ];
        assert_eq!(tx.send_batch(&packets, va, vb_mac).await.unwrap(), 5);

        // The raw socket resolves B (ARP); then the lookup finds vb's MAC.
        let raw = RawIp::open(proto::RAW, &RawIpOptions::default()).unwrap();
        raw.send(&udp_packet(A, B, 4000, 4001, b"resolve"))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        let hop = loop {
            if let Some(hop) = netlink.next_hop(B, Some(va)).await.unwrap() {
                break hop;
            }
            assert!(tokio::time::Instant::now() < deadline, "B never resolved");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!((hop.ifindex, hop.mac), (va, vb_mac));
        // Bound to another device, there is no such next hop.
        let lo = netlink.ifindex("lo").await.unwrap();
        assert_eq!(netlink.next_hop(B, Some(lo)).await.unwrap(), None);
    })
    .unwrap();

    let got = receiver.join().unwrap().unwrap();
    assert_eq!(got, vec![esp(B, 1), esp(B, 3)]);
}
