//! Raw IPv4 sockets between two namespaces joined by a veth (10.1.0.1/24 <-> 10.1.0.2/24), and
//! the kernel behaviours `realm-io::raw` documents, checked on this kernel (no ipip/gre modules).

// Test code: helpers outside #[test] fns may unwrap and panic too (clippy.toml covers only #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::Duration;

use common::{A, B, WAIT, checksum, icmp_echo, ip_fields, ipv4, pair, udp_packet};
use realm_io::RawIp;
use realm_io::netns;
use realm_io::raw::{RawIpOptions, proto};

const INNER_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);
const INNER_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// An outer 10.1.0.1 -> 10.1.0.2 packet of `protocol` around an inner UDP packet
/// 192.0.2.5:40000 -> 198.51.100.7:7777, with a GRE header (no options, type 0x0800) for 47.
fn tunnelled(protocol: u8, seq: u8) -> Vec<u8> {
    let inner = udp_packet(INNER_SRC, INNER_DST, 40000, 7777, &[seq; 16]);
    let payload = match protocol {
        proto::GRE => [&[0u8, 0, 0x08, 0x00][..], &inner].concat(),
        _ => inner,
    };
    ipv4(A, B, protocol, &payload)
}

fn tunnel_roundtrip(protocol: u8) {
    let (_lab, a, b) = pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel();
    let receiver = netns::spawn_in(&b, move || async move {
        let sock = RawIp::open(protocol, &RawIpOptions::default()).unwrap();
        assert_eq!(sock.protocol(), protocol);
        ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; realm_io::MAX_IPV4_PACKET];
        let first = tokio::time::timeout(WAIT, sock.recv(&mut buf))
            .await
            .expect("tunnelled packet not received")
            .unwrap();
        let first = buf[..first].to_vec();
        // Then five more, all queued before we look: one wake-up should take them all.
        sent_rx.recv_timeout(WAIT).unwrap();
        let mut bufs = vec![vec![0u8; 2048]; 8];
        let mut lens = [0usize; 8];
        let n = tokio::time::timeout(WAIT, sock.recv_batch(&mut bufs, &mut lens))
            .await
            .expect("batch not received")
            .unwrap();
        let got: Vec<Vec<u8>> = (0..n).map(|i| bufs[i][..lens[i]].to_vec()).collect();
        (first, got)
    });
    ready_rx.recv_timeout(WAIT).unwrap();
    netns::block_on_in(&a, || async {
        let sock = RawIp::open(protocol, &RawIpOptions::default()).unwrap();
        sock.send(&tunnelled(protocol, 0)).await.unwrap();
        // Let the first one be read alone, then queue five.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let five: Vec<Vec<u8>> = (1..=5).map(|i| tunnelled(protocol, i)).collect();
        assert_eq!(sock.send_batch(&five).await.unwrap(), 5);
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    sent_tx.send(()).unwrap();
    let (first, rest) = receiver.join().unwrap().unwrap();

    // Whole packet, outer header included, exactly as sent (our header checksum and length were
    // already right, so the kernel's fill-ins change nothing).
    assert_eq!(first, tunnelled(protocol, 0));
    let expected: Vec<Vec<u8>> = (1..=5).map(|i| tunnelled(protocol, i)).collect();
    assert_eq!(rest, expected, "all five queued packets in one recv_batch");
}

#[test]
fn ipip_packet_arrives_whole_on_raw_socket() {
    tunnel_roundtrip(proto::IPIP);
}

#[test]
fn gre_packet_arrives_whole_on_raw_socket() {
    tunnel_roundtrip(proto::GRE);
}

/// Counts ICMP protocol-unreachable messages (type 3 code 2) from B about `protocol` arriving on
/// the ICMP raw socket within `window`.
async fn unreachables(icmp: &RawIp, protocol: u8, window: Duration) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, icmp.recv(&mut buf)).await {
        let p = &buf[..n];
        if let Some((src, _, 1, ihl)) = ip_fields(p)
            && src == B
            && p.len() >= ihl + 8 + 20
            && p[ihl] == 3
            && p[ihl + 1] == 2
            && p[ihl + 8 + 9] == protocol
        {
            count += 1;
        }
    }
    count
}

/// The kernel (no ipip/gre module here) answers protocol-unreachable for protocol 4/47 only while
/// no raw socket takes the packet; with a raw socket open it delivers and stays silent.
fn unreachable_only_without_raw_listener(protocol: u8) {
    let (_lab, a, b) = pair();
    netns::block_on_in(&a, || async {
        let icmp = RawIp::open(proto::ICMP, &RawIpOptions::default()).unwrap();
        let tx = RawIp::open(proto::RAW, &RawIpOptions::default()).unwrap();

        // 1. Nobody listens in b: the kernel says protocol unreachable.
        tx.send(&tunnelled(protocol, 1)).await.unwrap();
        assert_eq!(
            unreachables(&icmp, protocol, Duration::from_secs(2)).await,
            1,
            "expected ICMP protocol-unreachable for protocol {protocol} with no listener \
             (is a kernel module for it loaded?)"
        );

        // 2. A raw socket in b takes them: delivered, and no ICMP at all.
        let b2 = b.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let listener = netns::spawn_in(&b2, move || async move {
            let sock = RawIp::open(protocol, &RawIpOptions::default()).unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = vec![0u8; 2048];
            for _ in 0..3 {
                tokio::time::timeout(WAIT, sock.recv(&mut buf))
                    .await
                    .expect("not delivered to raw socket")
                    .unwrap();
            }
            // Hold the socket until the silence window is over.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        });
        ready_rx.recv_timeout(WAIT).unwrap();
        for i in 0..3 {
            tx.send(&tunnelled(protocol, i)).await.unwrap();
        }
        assert_eq!(
            unreachables(&icmp, protocol, Duration::from_secs(1)).await,
            0,
            "kernel answered protocol-unreachable although a raw socket took the packet"
        );
        listener.join().unwrap().unwrap();

        // 3. Listener gone again: unreachable again (so step 2's silence was not rate limiting).
        tx.send(&tunnelled(protocol, 9)).await.unwrap();
        assert_eq!(
            unreachables(&icmp, protocol, Duration::from_secs(2)).await,
            1
        );
    })
    .unwrap();
}

#[test]
fn ipip_unreachable_only_without_raw_listener() {
    unreachable_only_without_raw_listener(proto::IPIP);
}

#[test]
fn gre_unreachable_only_without_raw_listener() {
    unreachable_only_without_raw_listener(proto::GRE);
}

#[test]
fn hdrincl_kernel_fills_checksum_and_bound_device_and_address_filter() {
    let (lab, a, b) = pair();
    // A second address on b, to show that `bind` filters by destination address.
    lab.add_address(&b, "vb", "10.1.0.3/24".parse().unwrap())
        .unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = netns::spawn_in(&b, move || async move {
        let opts = RawIpOptions {
            bind: Some(Ipv4Addr::new(10, 1, 0, 3)),
            device: Some("vb".into()),
            recv_buffer: Some(4 << 20),
            send_buffer: Some(1 << 20),
        };
        let sock = RawIp::open(proto::IPIP, &opts).unwrap();
        // SO_RCVBUFFORCE lets root exceed rmem_max; the kernel reports double.
        assert!(sock.recv_buffer_size().unwrap() >= 4 << 20);
        ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(WAIT, sock.recv(&mut buf))
            .await
            .expect("packet to 10.1.0.3 not received")
            .unwrap();
        buf[..n].to_vec()
    });
    ready_rx.recv_timeout(WAIT).unwrap();
    netns::block_on_in(&a, || async {
        let sock = RawIp::open(proto::IPIP, &RawIpOptions::default()).unwrap();
        // To 10.1.0.2 first: the bound socket must not see it.
        sock.send(&tunnelled(proto::IPIP, 1)).await.unwrap();
        // Then to 10.1.0.3 with checksum and ID zeroed and DF clear: the kernel fills both in.
        // (With DF set it leaves a zero ID alone, as RFC 6864 allows for atomic datagrams.)
        let mut p = tunnelled(proto::IPIP, 2);
        p[16..20].copy_from_slice(&[10, 1, 0, 3]);
        p[4..6].fill(0);
        p[6] = 0;
        p[10..12].fill(0);
        sock.send(&p).await.unwrap();
    })
    .unwrap();
    let got = receiver.join().unwrap().unwrap();
    assert_eq!(ip_fields(&got).unwrap().1, Ipv4Addr::new(10, 1, 0, 3));
    assert_eq!(
        got[20 + 20 + 8],
        2,
        "the packet to 10.1.0.2 leaked through the bind"
    );
    assert_eq!(
        checksum(&got[..20]),
        0,
        "kernel filled in a valid header checksum"
    );
    assert_ne!(
        &got[4..6],
        &[0, 0],
        "kernel filled in the ID of a non-DF packet"
    );
}

#[test]
fn truncated_packet_is_an_error_not_a_short_read() {
    let (_lab, a, b) = pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = netns::spawn_in(&b, move || async move {
        let sock = RawIp::open(proto::ICMP, &RawIpOptions::default()).unwrap();
        ready_tx.send(()).unwrap();
        let mut small = [0u8; 24];
        tokio::time::timeout(WAIT, sock.recv(&mut small))
            .await
            .expect("nothing received")
            .unwrap_err()
    });
    ready_rx.recv_timeout(WAIT).unwrap();
    netns::block_on_in(&a, || async {
        let sock = RawIp::open(proto::RAW, &RawIpOptions::default()).unwrap();
        sock.send(&icmp_echo(A, B, 8, 1, 1, &[0; 64]))
            .await
            .unwrap();
    })
    .unwrap();
    let err = receiver.join().unwrap().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

#[test]
fn checksum_of_rfc1071_example() {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum 220d.
    assert_eq!(
        checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        0x220d
    );
    let p = ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 4, &[]);
    assert_eq!(
        checksum(&p[..20]),
        0,
        "header with its checksum sums to zero"
    );
}

#[test]
fn batches_span_several_mmsg_calls_and_drop_only_truncated_packets() {
    let (_lab, a, b) = pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel();
    // 150 packets (three sendmmsg calls); every tenth too big for the receiver's 200-byte buffers.
    let packet = |i: u8| {
        let len = if i % 10 == 9 { 1000 } else { 100 };
        ipv4(A, B, proto::IPIP, &vec![i; len])
    };
    let receiver = netns::spawn_in(&b, move || async move {
        let opts = RawIpOptions {
            recv_buffer: Some(8 << 20),
            ..RawIpOptions::default()
        };
        let sock = RawIp::open(proto::IPIP, &opts).unwrap();
        ready_tx.send(()).unwrap();
        sent_rx.recv_timeout(WAIT).unwrap();
        let mut bufs = vec![vec![0u8; 200]; realm_io::MAX_BATCH];
        let mut lens = vec![0usize; realm_io::MAX_BATCH];
        let (mut got, mut calls) = (Vec::new(), 0);
        while got.len() < 137 {
            let n = tokio::time::timeout(WAIT, sock.recv_batch(&mut bufs, &mut lens))
                .await
                .expect("batch not received")
                .unwrap();
            calls += 1;
            got.extend((0..n).map(|i| bufs[i][..lens[i]].to_vec()));
        }
        (got, calls)
    });
    ready_rx.recv_timeout(WAIT).unwrap();
    netns::block_on_in(&a, || async {
        let sock = RawIp::open(proto::IPIP, &RawIpOptions::default()).unwrap();
        let all: Vec<Vec<u8>> = (0..150).map(packet).collect();
        assert_eq!(sock.send_batch(&all).await.unwrap(), 150);
        // A malformed packet stops the batch where it is; the count says where.
        let mixed = vec![packet(0), packet(1), vec![0x45, 0, 0], packet(2)];
        assert_eq!(sock.send_batch(&mixed).await.unwrap(), 2);
        assert!(sock.send_batch(&[vec![0u8; 3]]).await.is_err());
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    sent_tx.send(()).unwrap();
    let (got, calls) = receiver.join().unwrap().unwrap();
    let expected: Vec<Vec<u8>> = (0..150u8)
        .filter(|i| i % 10 != 9)
        .map(packet)
        .chain([packet(0), packet(1)])
        .collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "packets out of order or corrupted");
    assert!(
        calls <= 4,
        "{calls} recv_batch calls for 137 queued packets"
    );
}
