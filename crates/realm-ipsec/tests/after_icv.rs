//! The code after the ICV, exercised: ESP packets sealed here, with the SA's
//! known keys, around ARBITRARY plaintext (payload, padding, pad length and
//! next header all chosen by the test), so every one passes the integrity
//! check and reaches the trailer checks, the next-header check, the inner
//! packet's parsing and the SA selector / SPD checks (RFC 4303 s3.4.4-3.4.4.2,
//! RFC 2401 s5.2.1). Mutating a sealed packet, as `proptests.rs` does,
//! stops at the ICV.
//!
//! Sealing by hand follows RFC 4303 s2 (SPI, sequence number, payload,
//! trailer, ICV over ESP header and ciphertext; s3.3.2), RFC 4868 (HMAC-
//! SHA-256-128) and RFC 4106 (AES-GCM: nonce = salt | explicit IV, AAD = SPI
//! | sequence number). The cryptography is aws-lc-rs, as in the engine.
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

fn receiver(s: Suite) -> Ipsec {
    let mut b = engine();
    b.add_sa(std::time::Instant::now(), sa_config(s, Direction::Inbound))
        .unwrap();
    b
}

/// The hand sealing is right: a well-formed plaintext opens to its inner
/// packet, in both modes and both suites. Without this the property below
/// could pass on packets that all fail the ICV.
#[test]
fn hand_sealed_packets_open() {
    for gcm in [false, true] {
        for tunnel in [false, true] {
            let s = hand_suite(gcm, tunnel);
            let inner = inner_packet(s, b"after the ICV");
            let next = if tunnel { 4 } else { 17 };
            let plaintext = if tunnel {
                valid_plaintext(&inner, next)
            } else {
                valid_plaintext(&inner[20..], next)
            };
            let mut b = receiver(s);
            match b.open(std::time::Instant::now(), &hand_seal(s, 1, &plaintext)) {
                Ok(Inbound::Packet(p)) => assert_eq!(&p.packet[20..], &inner[20..], "{s:?}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }
}

/// How the test spoils a well-formed plaintext.
#[derive(Debug, Clone)]
enum Spoil {
    /// Arbitrary bytes (4-byte aligned) as the whole plaintext.
    Random(Vec<u8>),
    /// A pad length byte of this value.
    PadLength(u8),
    /// Padding bytes that are not 1, 2, 3, ...
    PaddingContent(u8),
    /// This next header.
    NextHeader(u8),
    /// The inner packet cut to this many bytes (trailer kept well-formed).
    CutInner(u16),
    /// Edits inside the inner packet (its header checks, the selectors).
    EditInner(Vec<(u16, u8)>),
}

fn spoil() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|mut v| {
            v.truncate(v.len() / 4 * 4);
            Spoil::Random(v)
        }),
        any::<u8>().prop_map(Spoil::PadLength),
        (1u8..=255).prop_map(Spoil::PaddingContent),
        any::<u8>().prop_map(Spoil::NextHeader),
        any::<u16>().prop_map(Spoil::CutInner),
        proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6).prop_map(Spoil::EditInner),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the authenticated plaintext holds, open never panics and never
    /// reports an ICV failure (the ICV is right): the outcome comes from the
    /// checks after it. A spoiled trailer is never delivered.
    #[test]
    fn authenticated_garbage_reaches_the_checks_after_the_icv(
        gcm in any::<bool>(),
        tunnel in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..40),
        how in spoil(),
    ) {
        let s = hand_suite(gcm, tunnel);
        let inner = inner_packet(s, &body);
        let carried: &[u8] = if tunnel { &inner } else { &inner[20..] };
        let next = if tunnel { 4 } else { 17 };
        let (plaintext, trailer_ok) = match &how {
            Spoil::Random(v) => (v.clone(), false),
            Spoil::PadLength(n) => {
                let mut p = valid_plaintext(carried, next);
                let at = p.len() - 2;
                let ok = p[at] == *n;
                p[at] = *n;
                (p, ok)
            }
            Spoil::PaddingContent(v) => {
                // Force at least one padding byte, then spoil the first.
                let mut p = valid_plaintext(carried, next);
                let pad = usize::from(p[p.len() - 2]);
                if pad == 0 {
                    p.truncate(p.len() - 2);
                    p.extend_from_slice(&[1, 2, 3, 4, 4, next]);
                }
                let pad = usize::from(p[p.len() - 2]);
                let first = p.len() - 2 - pad;
                let ok = *v == 1;
                p[first] = *v;
                (p, ok)
            }
            Spoil::NextHeader(n) => {
                let mut p = valid_plaintext(carried, *n);
                let at = p.len() - 1;
                p[at] = *n;
                (p, *n == next)
            }
            Spoil::CutInner(k) => {
                let keep = usize::from(*k) % (carried.len() + 1);
                (valid_plaintext(&carried[..keep], next), keep == carried.len())
            }
            Spoil::EditInner(edits) => {
                let mut c = carried.to_vec();
                for (at, v) in edits {
                    let i = usize::from(*at) % c.len();
                    c[i] = *v;
                }
                let same = c == carried;
                (valid_plaintext(&c, next), same)
            }
        };
        let mut b = receiver(s);
        let now = std::time::Instant::now();
        match b.open(now, &hand_seal(s, 1, &plaintext)) {
            Err(DropReason::IcvMismatch) => {
                prop_assert!(false, "{:?} {:?}: the hand-sealed ICV did not verify", s, how)
            }
            Err(DropReason::UnknownSpi | DropReason::Replay) => {
                prop_assert!(false, "{:?} {:?}: stopped before the ICV", s, how)
            }
            Ok(Inbound::Packet(p)) => {
                // Delivered: the trailer was well-formed, and what came out
                // is what was put in (transport mode rebuilds the header).
                // RFC 4303 s2.4-2.6: the padding is 1, 2, 3, ... and no
                // longer than what precedes the pad length; in tunnel mode
                // the next header is IPv4 (in transport mode any protocol
                // the rebuilt header carries; the SPD decides).
                prop_assert!(
                    trailer_consistent(&plaintext),
                    "{:?} {:?}: an inconsistent trailer was delivered", s, how
                );
                prop_assert!(
                    !tunnel || plaintext[plaintext.len() - 1] == 4,
                    "{:?} {:?}: tunnel mode delivered next header {}", s, how, plaintext[plaintext.len() - 1]
                );
                if let (Spoil::NextHeader(n), false) = (&how, tunnel) {
                    prop_assert_eq!(p.packet[9], *n, "transport mode carries the next header");
                }
                if trailer_ok && !tunnel {
                    prop_assert_eq!(&p.packet[20..], carried);
                }
                if trailer_ok && tunnel {
                    prop_assert_eq!(&p.packet[..], carried);
                }
            }
            Ok(other) => prop_assert!(false, "{:?} {:?}: {:?}", s, how, other),
            Err(_) => {}
        }
    }
}

/// Issue 11, finding 7: a truncated forgery (a real packet cut so its
/// ciphertext is no longer cipher-aligned) fails before the ICV; it is
/// counted as malformed, never as bad padding, which would blame the keyed
/// peer. Only an authenticated trailer can be bad padding.
#[test]
fn a_truncated_forgery_is_malformed_not_bad_padding() {
    let s = Suite {
        protocol: IpsecProtocol::Esp,
        encryption: EncryptionAlgorithm::AesCbc128,
        integrity: IntegrityAlgorithm::HmacSha256_128,
        mode: Mode::Tunnel,
        esn: false,
        encap: false,
    };
    let (mut a, out, mut b, inb, now) = pair(s);
    let sealed = a.seal(now, out, &inner_packet(s, b"forge me")).unwrap();
    for cut in [1usize, 4, 15, 17] {
        let mut forged = sealed[..sealed.len() - cut].to_vec();
        let len = forged.len() as u16;
        forged[2..4].copy_from_slice(&len.to_be_bytes());
        forged[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&forged[..20], 0);
        forged[10..12].copy_from_slice(&c.to_be_bytes());
        let r = b.open(now, &forged);
        assert!(
            matches!(r, Err(DropReason::Malformed | DropReason::IcvMismatch)),
            "cut {cut}: {r:?}"
        );
    }
    let c = b.counters(inb).unwrap();
    let malformed = c.drops(DropReason::Malformed) + b.drops(DropReason::Malformed);
    assert_eq!(c.drops(DropReason::BadPadding), 0, "{c:?}");
    assert!(malformed >= 3, "unaligned cuts counted as malformed: {c:?}");
    // And the genuine packet still opens.
    assert!(matches!(b.open(now, &sealed), Ok(Inbound::Packet(_))));
}
