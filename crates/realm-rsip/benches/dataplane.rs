//! Data plane throughput, in memory, one core: outbound (decapsulate and
//! check) and inbound (demultiplex and encapsulate), with 1k and 1M bindings.
//!
//! `CARGO_TARGET_DIR=/work/target-dp cargo bench -p realm-rsip --bench dataplane`
//! (add `-- 1k` or `-- 1m` for one table size).
//!
//! The mix: RSAP-IP port blocks (3 ports each) across 64 public addresses,
//! one host (own tunnel endpoint, IP-in-IP) per binding, 64-byte UDP and TCP
//! payloads (half each) to/from random peers; each of 65536 pre-built packets
//! picks a random binding and port, so the table is hit at random as it would
//! be by real traffic. Inbound copies each packet into the receive buffer
//! first (standing for the socket's copy; the baseline has the same copy).
//!
//! Baselines from the same run: an empty loop over the same packets (touching
//! one byte each), the inbound copy alone, and a bare `FxHashMap<u64, u32>`
//! lookup of (address, port) read from each inbound packet in a map as large
//! as the port table. Best of 5 rounds of 2M packets each.
// A bench reads the clock and may unwrap.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use realm_lease::{BindId, ClientId, PortSet, Timestamp};
use realm_rsip::dataplane::{
    BATCH, Binding, Config, DataPlane, Inbound, Outbound, PacketBuf, RemoteFlow, Resources, Tunnel,
};
use realm_wire::ipv4::{self, IpProtocol};
use realm_wire::rsip::TunnelType;
use realm_wire::{ipip, tcp, udp};
use rustc_hash::FxHashMap;

const ADDRESSES: u32 = 64;
const PORTS_PER_BINDING: u16 = 3;
const FIRST_PORT: u16 = 1024;
const PACKETS: usize = 1 << 16;
const ROUND: usize = 2_000_000;
const ROUNDS: usize = 5;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 254);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn public(i: u32) -> Ipv4Addr {
    Ipv4Addr::from_bits(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + i)
}

fn endpoint(binding: u32) -> Ipv4Addr {
    Ipv4Addr::from_bits(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + binding)
}

fn ip(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: Vec::new(),
    };
    let mut out = vec![0; repr.buffer_len() + payload.len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    out[repr.buffer_len()..].copy_from_slice(payload);
    out
}

fn transport(tcp_segment: bool, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let data = [0x5a; 64];
    if tcp_segment {
        let repr = tcp::Repr {
            src_port: sport,
            dst_port: dport,
            seq_number: 1,
            ack_number: 1,
            flags: tcp::Flags::ACK,
            window_len: 1024,
            urgent_pointer: 0,
            options: Vec::new(),
            payload_len: data.len(),
        };
        let mut seg = vec![0; repr.buffer_len()];
        seg[repr.header_len()..].copy_from_slice(&data);
        repr.emit(&mut tcp::Packet::new_unchecked(&mut seg[..]), src, dst);
        ip(src, dst, IpProtocol::Tcp, &seg)
    } else {
        let repr = udp::Repr {
            src_port: sport,
            dst_port: dport,
            has_checksum: true,
            payload_len: data.len(),
        };
        let mut seg = vec![0; repr.buffer_len()];
        seg[udp::HEADER_LEN..].copy_from_slice(&data);
        repr.emit(&mut udp::Packet::new_unchecked(&mut seg[..]), src, dst);
        ip(src, dst, IpProtocol::Udp, &seg)
    }
}

struct Setup {
    dp: DataPlane,
    outbound: Vec<Vec<u8>>,
    inbound: Vec<Vec<u8>>,
    bare: FxHashMap<u64, u32>,
    build_secs: f64,
    rss_per_binding: f64,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn setup(bindings: u32) -> Setup {
    let per_address = bindings / ADDRESSES;
    let rss_before = rss_bytes();
    let start = Instant::now();
    let mut dp = DataPlane::new(Config::new(GATEWAY));
    dp.reserve(bindings as usize);
    for i in 0..bindings {
        let (a, j) = (i % ADDRESSES, i / ADDRESSES);
        dp.insert(Binding {
            bind: BindId(i + 1),
            host: ClientId(i + 1),
            tunnel: Tunnel {
                endpoint: endpoint(i),
                kind: TunnelType::IpIp,
            },
            address: public(a),
            resources: Resources::Ports(PortSet::Range {
                first: FIRST_PORT + j as u16 * PORTS_PER_BINDING,
                count: PORTS_PER_BINDING,
            }),
            remote: RemoteFlow::Any,
        })
        .unwrap();
    }
    let build_secs = start.elapsed().as_secs_f64();
    let rss_per_binding = (rss_bytes().saturating_sub(rss_before)) as f64 / f64::from(bindings);
    assert_eq!(dp.len(), (per_address * ADDRESSES) as usize);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outbound = Vec::with_capacity(PACKETS);
    let mut inbound = Vec::with_capacity(PACKETS);
    for _ in 0..PACKETS {
        let i = rng.below(u64::from(bindings)) as u32;
        let (a, j) = (i % ADDRESSES, i / ADDRESSES);
        let port = FIRST_PORT + j as u16 * PORTS_PER_BINDING + rng.below(3) as u16;
        let peer = Ipv4Addr::new(203, 0, 113, rng.below(254) as u8 + 1);
        let peer_port = 1024 + rng.below(60000) as u16;
        let is_tcp = rng.below(2) == 0;
        let inner = transport(is_tcp, public(a), peer, port, peer_port);
        let tunnel = ipip::Tunnel {
            src_addr: endpoint(i),
            dst_addr: GATEWAY,
            ttl: 64,
            dont_frag: ipip::DontFragment::CopyInner,
        };
        let mut tunnelled = Vec::new();
        ipip::encapsulate(&tunnel, 1, &inner, &mut tunnelled).unwrap();
        outbound.push(tunnelled);
        inbound.push(transport(is_tcp, peer, public(a), peer_port, port));
    }
    let mut bare = FxHashMap::default();
    bare.reserve((bindings * u32::from(PORTS_PER_BINDING)) as usize);
    for i in 0..bindings {
        let (a, j) = (i % ADDRESSES, i / ADDRESSES);
        for k in 0..PORTS_PER_BINDING {
            let port = FIRST_PORT + j as u16 * PORTS_PER_BINDING + k;
            bare.insert((u64::from(public(a).to_bits()) << 16) | u64::from(port), i);
        }
    }
    Setup {
        dp,
        outbound,
        inbound,
        bare,
        build_secs,
        rss_per_binding,
    }
}

/// Best packets per second over the rounds of `f(packet index)`.
fn measure(mut f: impl FnMut(usize)) -> f64 {
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for n in 0..ROUND {
            f(n & (PACKETS - 1));
        }
        let pps = ROUND as f64 / start.elapsed().as_secs_f64();
        best = best.max(pps);
    }
    best
}

/// Best packets per second over the rounds of `f(batch index)`.
fn measure_batches(mut f: impl FnMut(usize)) -> f64 {
    let mut best = 0f64;
    let batches = PACKETS / BATCH;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for n in 0..ROUND / BATCH {
            f(n % batches);
        }
        let pps = (ROUND / BATCH * BATCH) as f64 / start.elapsed().as_secs_f64();
        best = best.max(pps);
    }
    best
}

fn report(name: &str, pps: f64) {
    println!(
        "  {name:<44} {:>8.2} Mpps  {:>7.1} ns/packet",
        pps / 1e6,
        1e9 / pps
    );
}

fn run(label: &str, bindings: u32) {
    let mut s = setup(bindings);
    println!(
        "{label}: {} bindings over {ADDRESSES} addresses ({} ports each), built in {:.2} s, ~{:.0} bytes RSS per binding",
        s.dp.len(),
        PORTS_PER_BINDING,
        s.build_secs,
        s.rss_per_binding
    );
    let now = Timestamp::from_secs(1_700_000_000);

    let out = &s.outbound;
    report(
        "baseline: empty loop (touch 1 byte/packet)",
        measure(|i| {
            black_box(out[i][0]);
        }),
    );
    let inb = &s.inbound;
    let bare = &s.bare;
    report(
        "baseline: bare FxHashMap (addr,port) lookup",
        measure(|i| {
            let p = &inb[i];
            let addr = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
            let port = u16::from_be_bytes([p[22], p[23]]);
            black_box(bare.get(&((u64::from(addr) << 16) | u64::from(port))));
        }),
    );

    let mut forwarded = 0u64;
    let dp = &mut s.dp;
    report(
        "outbound: decapsulate + check",
        measure(|i| {
            if let Outbound::Forward { range, .. } = dp.outbound(now, black_box(&out[i])) {
                forwarded += 1;
                black_box(range);
            }
        }),
    );
    assert_eq!(forwarded, (ROUND * ROUNDS) as u64, "every packet must pass");
    let mut results = Vec::with_capacity(BATCH);
    let batches: Vec<&[Vec<u8>]> = out.chunks(BATCH).collect();
    report(
        &format!("outbound, batches of {BATCH}"),
        measure_batches(|b| {
            dp.outbound_batch(now, batches[b], &mut results);
            debug_assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Outbound::Forward { .. }))
            );
            black_box(&results);
        }),
    );

    let mut buf = PacketBuf::new();
    report(
        "baseline: inbound copy into the buffer alone",
        measure(|i| {
            buf.set_packet(&inb[i]);
            black_box(buf.packet()[0]);
        }),
    );
    let mut tunnelled = 0u64;
    report(
        "inbound: demultiplex + encapsulate (with copy)",
        measure(|i| {
            buf.set_packet(&inb[i]);
            if let Inbound::Tunnel { .. } = dp.inbound(now, &mut buf) {
                tunnelled += 1;
                black_box(buf.packet()[0]);
            }
        }),
    );
    assert_eq!(tunnelled, (ROUND * ROUNDS) as u64, "every packet must pass");
    let mut bufs: Vec<PacketBuf> = (0..BATCH).map(|_| PacketBuf::new()).collect();
    let mut results = Vec::with_capacity(BATCH);
    let mut passed = 0u64;
    report(
        &format!("inbound, batches of {BATCH} (with copy)"),
        measure_batches(|b| {
            for (k, buf) in bufs.iter_mut().enumerate() {
                buf.set_packet(&inb[b * BATCH + k]);
            }
            dp.inbound_batch(now, &mut bufs, &mut results);
            passed += results
                .iter()
                .filter(|r| matches!(r, Inbound::Tunnel { .. }))
                .count() as u64;
        }),
    );
    assert_eq!(passed, (ROUND * ROUNDS) as u64, "every packet must pass");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = |name: &str| {
        let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        filters.is_empty() || filters.iter().any(|a| a.as_str() == name)
    };
    if want("1k") {
        run("1k", 1024);
    }
    if want("1m") {
        run("1m", 1 << 20);
    }
}
