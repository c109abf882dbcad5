//! Property tests: decapsulating arbitrary bytes never panics; seal then open
//! round-trips for random payloads, every algorithm, both modes.
// Test code: unwrap/panic report failures; `Instant::now` only starts the fake
// clock handed to the engine (which itself never reads a clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use proptest::prelude::*;
use realm_ipsec::*;

/// An engine with one inbound SA of every suite (ESP and ESP-in-UDP share
/// SPIs by protocol) so arbitrary input reaches every decoder.
fn receiver() -> (Ipsec, Vec<Vec<u8>>) {
    let now = std::time::Instant::now();
    let mut b = engine();
    let mut a = engine();
    let mut seeds = Vec::new();
    for (i, s) in all_suites().into_iter().filter(|s| !s.esn).enumerate() {
        let spi = Spi(0x100 + i as u32);
        let mut inb = sa_config(s, Direction::Inbound);
        inb.spi = spi;
        let mut out = sa_config(s, Direction::Outbound);
        out.spi = spi;
        b.add_sa(now, inb).unwrap();
        let id = a.add_sa(now, out).unwrap();
        seeds.push(a.seal(now, id, &inner_packet(s, b"seed")).unwrap());
    }
    (b, seeds)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        thread_local! { static RX: std::cell::RefCell<(Ipsec, Vec<Vec<u8>>)> = std::cell::RefCell::new(receiver()); }
        let now = std::time::Instant::now();
        RX.with(|rx| {
            let mut rx = rx.borrow_mut();
            let _ = rx.0.open(now, &bytes);
            let _ = rx.0.inbound(now, &bytes);
        });
    }

    #[test]
    fn open_never_panics_on_mutated_valid_packets(
        which in 0usize..1000,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        cut in any::<u16>(),
    ) {
        thread_local! { static RX: std::cell::RefCell<(Ipsec, Vec<Vec<u8>>)> = std::cell::RefCell::new(receiver()); }
        let now = std::time::Instant::now();
        RX.with(|rx| {
            let mut rx = rx.borrow_mut();
            let mut p = rx.1[which % rx.1.len()].clone();
            for (at, v) in &edits {
                let i = usize::from(*at) % p.len();
                p[i] = *v;
            }
            let keep = usize::from(cut) % (p.len() + 1);
            let _ = rx.0.open(now, &p);
            p.truncate(keep);
            let _ = rx.0.open(now, &p);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_roundtrip(
        suite in 0usize..1000,
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
        tos in any::<u8>(),
        df in any::<bool>(),
    ) {
        let suites = all_suites();
        let s = suites[suite % suites.len()];
        let (mut a, out, mut b, _, now) = pair(s);
        let mut pkt = udp_packet(HOST_A, HOST_B, 4000, 5000, &payload, df);
        pkt[1] = tos & 0xfc; // keep ECN not-ECT so nothing is remarked
        pkt[10] = 0;
        pkt[11] = 0;
        let c = checksum(&pkt[..20], 0);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        let sealed = match a.seal(now, out, &pkt) {
            Ok(sealed) => sealed,
            // RFC 2401 s6.1.2.1: a DF packet too big once protected is not
            // sent; its source gets "fragmentation needed" with the
            // effective MTU (CBC tunnel mode adds up to ~76 bytes to 1427).
            Err(SealError::FragmentationNeeded { mtu, icmp }) => {
                prop_assert!(df, "{:?}: fragmentation needed without DF", s);
                prop_assert!(usize::from(mtu) < pkt.len(), "{:?}: MTU {} for {} bytes", s, mtu, pkt.len());
                prop_assert!(!icmp.is_empty());
                return Ok(());
            }
            Err(e) => {
                prop_assert!(false, "{:?}: {:?}", s, e);
                unreachable!()
            }
        };
        match b.open(now, &sealed) {
            Ok(Inbound::Packet(p)) => prop_assert_eq!(p.packet, pkt),
            other => prop_assert!(false, "{:?}: {:?}", s, other),
        }
    }
}
