//! The RSIP gateway data plane (RFC 3102 s4, RFC 3103) both ways, with
//! bindings installed and sequences of packets, fragments through the
//! reassembly included.
//!
//! Four bindings: host 1 (IP-in-IP) ports 2000-2009 and SPIs 0x1000-0x1003 of
//! 192.0.2.1, host 2 (GRE) ports 3000-3009 and a LISTEN on 4000-4003 limited
//! to peer 203.0.113.7. A program of operations follows: an inbound packet
//! (fuzz bytes, IPv4 length and checksum fixed up); the same packet cut into
//! fragments at a fuzz-chosen size and fed in order or reversed; an outbound
//! packet from a host's tunnel (the harness wraps fuzz bytes, fixed up, in
//! the host's IP-in-IP or GRE header); time moving on (`handle_timeout` when
//! due); a binding removed and inserted again. Asserted: what is tunnelled to
//! a host names an installed binding of that host, is a valid IP-in-IP or GRE
//! packet from the gateway to the binding's endpoint whose inner packet is
//! addressed to the binding's address; what is forwarded outbound names a
//! binding of the sending host and is an IPv4 packet from its address.
#![no_main]
mod common;

use common::fix_ipv4;
use libfuzzer_sys::fuzz_target;
use realm_lease::{BindId, ClientId, PortSet, Spi, SpiSet, Timestamp};
use realm_rsip::dataplane::{
    Binding, Config, DataPlane, Inbound, Outbound, PacketBuf, RemoteFlow, Resources, Tunnel,
};
use realm_wire::rsip::TunnelType;
use realm_wire::{fragment, gre, ipip, ipv4};
use std::net::Ipv4Addr;
use std::time::Duration;

const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const EP: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 11)];

fn bindings() -> [Binding; 4] {
    let b = |bind, host: u32, resources, remote| Binding {
        bind: BindId(bind),
        host: ClientId(host),
        tunnel: Tunnel {
            endpoint: EP[host as usize - 1],
            kind: if host == 1 {
                TunnelType::IpIp
            } else {
                TunnelType::Gre
            },
        },
        address: PUBLIC,
        resources,
        remote,
    };
    let ports = |first, count| PortSet::Range { first, count };
    [
        b(1, 1, Resources::Ports(ports(2000, 10)), RemoteFlow::Any),
        b(
            2,
            1,
            Resources::Ipsec {
                spis: SpiSet::Range {
                    first: Spi(0x1000),
                    count: 4,
                },
                ports: PortSet::None,
            },
            RemoteFlow::Any,
        ),
        b(3, 2, Resources::Ports(ports(3000, 10)), RemoteFlow::Any),
        b(
            4,
            2,
            Resources::Listen(ports(4000, 4)),
            RemoteFlow::Address(PEER),
        ),
    ]
}

/// An IPv4 header (20 bytes) from `src` to `dst` carrying `protocol`,
/// followed by `payload`, length and checksum right.
fn wrap(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, protocol, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    fix_ipv4(&mut p);
    p
}

fn check_inbound(dp: &DataPlane, buf: &PacketBuf, result: &Inbound) {
    if let Inbound::Tunnel {
        host,
        bind,
        endpoint,
        tunnel,
    } = result
    {
        let b = dp
            .binding(*bind)
            .expect("tunnelled for an installed binding");
        assert_eq!(b.host, *host);
        assert_eq!(b.tunnel.endpoint, *endpoint);
        let (outer, inner) = match tunnel {
            TunnelType::IpIp => {
                let d = ipip::decapsulate(buf.packet()).expect("a valid IP-in-IP packet");
                (d.outer, d.inner.dst_addr())
            }
            TunnelType::Gre => {
                let d = gre::decapsulate(buf.packet()).expect("a valid GRE packet");
                (d.outer, d.inner.dst_addr())
            }
            other => panic!("tunnelled over {other:?}"),
        };
        assert_eq!(outer.src_addr, GATEWAY);
        assert_eq!(outer.dst_addr, *endpoint);
        assert_eq!(
            inner, b.address,
            "the inner packet is for the binding's address"
        );
    }
}

thread_local! {
    /// One packet buffer for every packet of every input: `set_packet`
    /// resets it, and a fresh 64 KiB zeroed buffer per packet was a fifth of
    /// the run time.
    static BUF: std::cell::RefCell<PacketBuf> = std::cell::RefCell::new(PacketBuf::new());
}

fuzz_target!(|data: &[u8]| {
    BUF.with_borrow_mut(|buf| run(data, buf));
});

fn run(data: &[u8], buf: &mut PacketBuf) {
    let mut config = Config::new(GATEWAY);
    config.local_addresses = vec![Ipv4Addr::new(192, 0, 2, 254)];
    let mut dp = DataPlane::new(config);
    for b in bindings() {
        dp.insert(b)
            .expect("the harness's bindings do not conflict");
    }
    let mut now = Timestamp::from_secs(1_700_000_000);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let Some((&arg, tail)) = tail.split_first() else {
            break;
        };
        rest = tail;
        let n = usize::from(arg).min(rest.len());
        match op % 8 {
            0..=1 => {
                let (bytes, tail) = rest.split_at(n);
                rest = tail;
                let mut packet = bytes.to_vec();
                if op & 0x80 == 0 {
                    fix_ipv4(&mut packet);
                }
                buf.set_packet(&packet);
                let r = dp.inbound(now, buf);
                check_inbound(&dp, buf, &r);
            }
            2 => {
                // Fragments at 8 * (1 + op / 8) bytes of data, in order or reversed.
                let (bytes, tail) = rest.split_at(n);
                rest = tail;
                let mut packet = bytes.to_vec();
                fix_ipv4(&mut packet);
                let mtu = 20 + 8 * (1 + usize::from(op >> 3 & 0x0f));
                let (mut out, mut ranges) = (Vec::new(), Vec::new());
                if fragment::fragment(&packet, mtu.max(68), &mut out, &mut ranges).is_ok() {
                    if op & 0x80 != 0 {
                        ranges.reverse();
                    }
                    for r in ranges {
                        buf.set_packet(&out[r]);
                        let result = dp.inbound(now, buf);
                        check_inbound(&dp, buf, &result);
                    }
                }
            }
            3..=4 => {
                let (bytes, tail) = rest.split_at(n);
                rest = tail;
                let mut inner = bytes.to_vec();
                fix_ipv4(&mut inner);
                let host = usize::from(op >> 7);
                let packet = if host == 0 {
                    wrap(EP[0], GATEWAY, 4, &inner)
                } else {
                    let mut g = vec![0, 0, 0x08, 0];
                    g.extend_from_slice(&inner);
                    wrap(EP[1], GATEWAY, 47, &g)
                };
                if let Outbound::Forward { host, bind, range } = dp.outbound(now, &packet) {
                    let b = dp
                        .binding(bind)
                        .expect("forwarded for an installed binding");
                    assert_eq!(b.host, host);
                    assert_eq!(b.tunnel.endpoint, EP[host.0 as usize - 1]);
                    let p = ipv4::Packet::new_checked(&packet[range]).expect("forwards IPv4");
                    assert_eq!(p.src_addr(), b.address, "from the binding's address");
                }
            }
            5..=6 => {
                now = now.saturating_add(Duration::from_secs(u64::from(arg)));
                if dp.poll_timeout().is_some_and(|t| t <= now) {
                    dp.handle_timeout(now);
                }
            }
            _ => {
                let all = bindings();
                let b = &all[usize::from(arg) % all.len()];
                if dp.remove(b.bind).is_some() && op & 0x80 == 0 {
                    dp.insert(b.clone()).expect("a removed binding goes back");
                } else if dp.binding(b.bind).is_none() {
                    let _ = dp.insert(b.clone());
                }
            }
        }
    }
}
