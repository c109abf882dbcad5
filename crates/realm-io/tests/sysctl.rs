//! Sysctls act on the calling thread's namespace; a RSAP-IP port block becomes the ephemeral range.

// Test code: helpers outside #[test] fns may unwrap and panic too (clippy.toml covers only #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{TcpListener, TcpStream, UdpSocket};

use common::lab;
use realm_io::netns;
use realm_io::sysctl::{self, RpFilter};

#[test]
fn leased_port_block_becomes_the_ephemeral_range() {
    let mut lab = lab();
    let ns = lab.add_namespace("ports").unwrap();
    let outside_before = sysctl::ip_local_port_range().unwrap();

    let (range, udp_ports, ninth, tcp_port) = netns::in_namespace(&ns, || {
        sysctl::set_ip_local_port_range(40000..=40007).unwrap();
        let range = sysctl::ip_local_port_range().unwrap();
        // Eight UDP sockets bound to port 0 take the eight ports of the block; a ninth finds
        // none left.
        let socks: Vec<UdpSocket> = (0..8)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        ports.sort_unstable();
        let ninth = UdpSocket::bind("127.0.0.1:0").map(|s| s.local_addr().unwrap().port());
        drop(socks);
        // connect() without bind() picks its source port from the range too.
        let listener = TcpListener::bind("127.0.0.1:5000").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let tcp_port = stream.local_addr().unwrap().port();
        (range, ports, ninth, tcp_port)
    })
    .unwrap();

    assert_eq!(range, 40000..=40007);
    assert_eq!(udp_ports, (40000..=40007).collect::<Vec<u16>>());
    assert!(ninth.is_err(), "a ninth socket got port {ninth:?}");
    assert!(range.contains(&tcp_port), "TCP source port {tcp_port}");
    // The test's own namespace was not touched, and `ip netns exec` sees the namespace's value.
    assert_eq!(sysctl::ip_local_port_range().unwrap(), outside_before);
    let seen = lab
        .run_ok(&ns, "cat", &["/proc/sys/net/ipv4/ip_local_port_range"])
        .unwrap();
    assert_eq!(
        seen.split_whitespace().collect::<Vec<_>>(),
        ["40000", "40007"]
    );
}

#[test]
fn ip_forward_and_rp_filter_per_namespace() {
    let mut lab = lab();
    let ns = lab.add_namespace("fwd").unwrap();
    lab.veth((&ns, "f0"), (&ns, "f1")).unwrap();
    let outside = sysctl::ip_forward().unwrap();

    lab.set_ip_forward(&ns, true).unwrap();
    let (fwd, rp) = netns::in_namespace(&ns, || {
        sysctl::set_rp_filter("f0", RpFilter::Loose).unwrap();
        sysctl::set_rp_filter("all", RpFilter::Off).unwrap();
        (
            sysctl::ip_forward().unwrap(),
            [
                sysctl::rp_filter("f0").unwrap(),
                sysctl::rp_filter("all").unwrap(),
            ],
        )
    })
    .unwrap();
    assert!(fwd);
    assert_eq!(rp, [RpFilter::Loose, RpFilter::Off]);
    assert_eq!(
        lab.run_ok(&ns, "cat", &["/proc/sys/net/ipv4/conf/f0/rp_filter"])
            .unwrap()
            .trim(),
        "2"
    );
    assert_eq!(
        sysctl::ip_forward().unwrap(),
        outside,
        "leaked out of the lab"
    );

    lab.sysctl(&ns, "net.ipv4.ip_forward", "0").unwrap();
    assert!(
        !netns::in_namespace(&ns, sysctl::ip_forward)
            .unwrap()
            .unwrap()
    );
}

#[test]
fn bad_ranges_are_refused_before_the_kernel() {
    // No privileges needed: validation happens first.
    #[allow(clippy::reversed_empty_ranges)] // exactly what is being refused
    let reversed = 50000..=40000;
    assert!(sysctl::set_ip_local_port_range(reversed).is_err());
    assert!(sysctl::set_ip_local_port_range(0..=10).is_err());
}
