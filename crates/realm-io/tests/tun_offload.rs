//! TUN offloads (`TunConfig::offload`): two TUNs in two namespaces joined by a userspace
//! forwarder that moves `recv_batch` output (superpackets split into MTU-sized packets) into
//! `send_coalesced` (GRO) on the other TUN. A 4 MiB TCP transfer each way must arrive intact,
//! which it only does if splitting, checksum completion and coalescing are all right; and the
//! kernel must really have handed over superpackets (a read yielding many packets).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use common::{WAIT, lab};
use realm_io::netns;
use realm_io::tun::OFFLOAD_HEADROOM;
use realm_io::{Netlink, RouteVia, Tun, TunConfig};

const LEFT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const RIGHT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

async fn make_tun(ns: &str, addr: Ipv4Addr, route: &str) -> Tun {
    let _in = netns::enter(ns).unwrap();
    let nl = Netlink::new().unwrap();
    let tun = Tun::create_with(
        &TunConfig::new("rt0")
            .mtu(1400)
            .offload(true)
            .address(realm_io::Ipv4Prefix::host(addr)),
        &nl,
    )
    .await
    .unwrap();
    nl.add_route(route.parse().unwrap(), &RouteVia::Device("rt0".into()))
        .await
        .unwrap();
    tun
}

/// Moves batches from `from` to `to` until `stop`; records the largest batch read. Only the
/// read is ever cancelled (by the timeout), never a write, so no packet is lost here.
async fn pump(from: Arc<Tun>, to: Arc<Tun>, stop: Arc<AtomicBool>, biggest: Arc<AtomicUsize>) {
    let per = 4 * from.segments_per_superpacket();
    let (mut bufs, mut lens) = (vec![vec![0u8; 1400]; per], vec![0usize; per]);
    while !stop.load(Ordering::Relaxed) {
        for b in bufs.iter_mut() {
            b.resize(1400, 0);
        }
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            from.recv_batch(&mut bufs, &mut lens),
        );
        let Ok(n) = read.await else { continue };
        let n = n.unwrap();
        biggest.fetch_max(n, Ordering::Relaxed);
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(n);
        for i in 0..n {
            let mut v = Vec::with_capacity(2 * OFFLOAD_HEADROOM + 65_535);
            v.resize(OFFLOAD_HEADROOM, 0);
            v.extend_from_slice(&bufs[i][..lens[i]]);
            out.push(v);
        }
        to.send_coalesced(&mut out, OFFLOAD_HEADROOM).await.unwrap();
    }
}

#[test]
fn tcp_through_offloading_tuns_and_a_coalescing_forwarder() {
    let mut lab = lab();
    let left = lab.add_namespace("left").unwrap();
    let right = lab.add_namespace("right").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let biggest = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();
    let forwarder = {
        let (left, right, stop, biggest) =
            (left.clone(), right.clone(), stop.clone(), biggest.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let a = make_tun(&left, LEFT, "198.51.100.0/24").await;
                let b = make_tun(&right, RIGHT, "203.0.113.0/24").await;
                assert!(a.offload() && b.offload(), "kernel refused TUN offloads");
                // Single-packet reads are refused: a read may hold many packets.
                let mut one = [0u8; 1500];
                assert_eq!(
                    a.try_recv(&mut one).unwrap_err().kind(),
                    std::io::ErrorKind::Unsupported
                );
                ready_tx.send(()).unwrap();
                let (a, b) = (Arc::new(a), Arc::new(b));
                let ab = tokio::spawn(pump(a.clone(), b.clone(), stop.clone(), biggest.clone()));
                let ba = tokio::spawn(pump(b, a, stop, biggest));
                ab.await.unwrap();
                ba.await.unwrap();
            });
        })
    };
    ready_rx
        .recv_timeout(WAIT)
        .expect("forwarder did not start");

    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let listener = netns::in_namespace(&right, || TcpListener::bind((RIGHT, 5201)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
    });
    let mut c = netns::in_namespace(&left, || {
        TcpStream::connect_timeout(&SocketAddr::from((RIGHT, 5201)), WAIT)
    })
    .unwrap()
    .unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    server.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    forwarder.join().unwrap();
    assert!(
        back == data,
        "4 MiB came back altered ({} bytes)",
        back.len()
    );
    assert!(
        biggest.load(Ordering::Relaxed) > 1,
        "no read ever yielded more than one packet: no superpackets"
    );
}
