//! Property tests for the IPsec framing: `esp`, `ah`, `udp_encap`.
//!
//! Round trips (Repr -> bytes -> Repr, bytes -> Repr -> bytes, trailer build -> parse) and
//! "never panics" on arbitrary input, 100 000 cases each, inputs capped at 1600 bytes.

use proptest::prelude::*;
use realm_wire::Error;
use realm_wire::{ah, esp, udp_encap};

const CASES: u32 = 100_000;
const MAX_INPUT: usize = 1600;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

/// Lengths a caller might pass: mostly plausible, sometimes absurd.
fn caller_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..64,
        1 => 0usize..4096,
        1 => Just(usize::MAX),
        1 => (usize::MAX - 64)..=usize::MAX,
    ]
}

fn lcm4(block_size: usize) -> usize {
    let mut a = block_size;
    let mut b = 4;
    while b != 0 {
        (a, b) = (b, a % b);
    }
    block_size / a * 4
}

/// An IPv4 packet carrying an AH, shaped enough to get past the early checks most of the time:
/// random options (often well-formed), a random AH with a random ICV length, random payload;
/// version, IHL, total length, protocol and fragment fields usually right.
fn ipv4_with_ah() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let option = prop_oneof![
        Just(vec![0x01]),
        Just(vec![0x00]),
        (any::<u8>(), 0usize..12).prop_map(|(t, n)| {
            let mut o = vec![t, (n + 2) as u8];
            o.extend(std::iter::repeat_n(0x5a, n));
            o
        }),
        (prop::sample::select(vec![0x83u8, 0x89]), 1usize..4).prop_map(|(t, n)| {
            let mut o = vec![t, (3 + 4 * n) as u8, 4];
            o.extend(std::iter::repeat_n(0x0a, 4 * n));
            o
        }),
        bytes(6),
    ];
    (
        proptest::collection::vec(option, 0..5),
        any::<[u8; 20]>(),
        0u8..8,
        any::<[u8; 8]>(),
        bytes(40),
        bytes(64),
        any::<u8>(),
        0usize..40,
    )
        .prop_map(
            |(options, mut base, ah_words, ah_fixed, icv, payload, mangle, icv_len)| {
                let mut options: Vec<u8> = options.concat();
                options.truncate(40);
                while !options.len().is_multiple_of(4) {
                    options.push(0);
                }
                let header_len = 20 + options.len();
                let mut ah = vec![ah_fixed[0], ah_words];
                ah.extend_from_slice(&ah_fixed[2..8]);
                ah.extend_from_slice(&[0, 0, 0, 1]);
                let icv_field = ((usize::from(ah_words) + 2) * 4).saturating_sub(12);
                ah.extend((0..icv_field).map(|i| icv.get(i).copied().unwrap_or(0x11)));
                let total = header_len + ah.len() + payload.len();
                base[0] = 0x40 | (header_len / 4) as u8;
                base[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                base[6] &= 0x40; // keep DF only: not a fragment
                base[7] = 0;
                base[9] = 51;
                let mut packet = base.to_vec();
                packet.extend_from_slice(&options);
                packet.extend_from_slice(&ah);
                packet.extend_from_slice(&payload);
                // Now and then break one byte anywhere.
                if mangle < 32 && !packet.is_empty() {
                    let i = usize::from(mangle) * 7 % packet.len();
                    packet[i] ^= mangle | 1;
                }
                // Usually the SA's ICV length matches the field.
                let icv_len = if mangle % 4 == 0 { icv_len } else { icv_field };
                (packet, icv_len)
            },
        )
}

proptest! {
    #![proptest_config(config())]

    // ---- ESP ----

    #[test]
    fn esp_repr_round_trip(spi in 1u32.., sequence_number in any::<u32>()) {
        let repr = esp::Repr { spi, sequence_number };
        let mut buf = [0u8; esp::HEADER_LEN];
        repr.emit(&mut esp::Packet::new_unchecked(&mut buf[..])).unwrap();
        let packet = esp::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(esp::Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn esp_bytes_round_trip(buf in bytes(64)) {
        let Ok(packet) = esp::Packet::new_checked(&buf[..]) else {
            prop_assert!(buf.len() < esp::HEADER_LEN);
            return Ok(());
        };
        match esp::Repr::parse(&packet) {
            Ok(repr) => {
                let mut out = buf.clone();
                out[..8].fill(0);
                repr.emit(&mut esp::Packet::new_unchecked(&mut out[..])).unwrap();
                prop_assert_eq!(out, buf);
            }
            Err(_) => prop_assert_eq!(packet.spi(), 0),
        }
    }

    #[test]
    fn esp_split_never_panics(
        buf in bytes(MAX_INPUT),
        iv_len in caller_len(),
        icv_len in caller_len(),
        block_size in caller_len(),
    ) {
        let layout = esp::Layout::new(iv_len, icv_len, block_size);
        let packet = esp::Packet::new_unchecked(&buf[..]);
        let _ = (packet.spi(), packet.sequence_number(), packet.payload());
        if let Ok(parts) = packet.split(&layout) {
            prop_assert_eq!(parts.iv.len(), iv_len);
            prop_assert_eq!(parts.icv.len(), icv_len);
            prop_assert!(parts.ciphertext.len() >= esp::TRAILER_FIXED_LEN);
            prop_assert_eq!(parts.ciphertext.len() % lcm4(block_size), 0);
            prop_assert_eq!(
                esp::HEADER_LEN + parts.iv.len() + parts.ciphertext.len() + parts.icv.len(),
                buf.len()
            );
            prop_assert_eq!(parts.authenticated, &buf[..buf.len() - icv_len]);
        }
    }

    #[test]
    fn esp_split_accepts_every_well_formed_packet(
        iv_len in 0usize..24,
        icv_len in 0usize..33,
        block_size in 1usize..33,
        blocks in 1usize..20,
        fill in any::<u8>(),
    ) {
        let ciphertext_len = lcm4(block_size) * blocks;
        let layout = esp::Layout::new(iv_len, icv_len, block_size);
        let len = layout.packet_len(ciphertext_len).unwrap();
        let mut buf = vec![fill; len];
        buf[..4].copy_from_slice(&[0, 0, 1, 0]);
        let parts = esp::Packet::new_checked(&buf[..]).unwrap().split(&layout).unwrap();
        prop_assert_eq!(parts.ciphertext.len(), ciphertext_len);
    }

    #[test]
    fn esp_trailer_never_panics(plaintext in bytes(MAX_INPUT), default in any::<bool>()) {
        let check = if default { esp::PaddingCheck::Default } else {
            esp::PaddingCheck::AlgorithmDefined
        };
        match esp::Trailer::parse_with(&plaintext, check) {
            Ok(t) => {
                prop_assert_eq!(t.payload.len() + t.padding.len() + 2, plaintext.len());
                prop_assert_eq!(t.next_header, plaintext[plaintext.len() - 1]);
                if !t.is_dummy() {
                    prop_assert_eq!(t.padding.len(), usize::from(t.pad_len));
                }
            }
            Err(Error::Truncated { .. }) => prop_assert!(plaintext.len() < 2),
            Err(Error::Malformed { .. }) => {
                prop_assert_ne!(plaintext[plaintext.len() - 1], esp::NEXT_HEADER_NONE);
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        }
    }

    #[test]
    fn esp_trailer_build_parse_round_trip(
        payload in bytes(MAX_INPUT),
        tfc_padding_len in prop_oneof![4 => Just(0usize), 1 => 0usize..64],
        block_size in prop_oneof![
            4 => prop::sample::select(vec![1usize, 4, 8, 16]),
            1 => 1usize..=300,
        ],
        next_header in any::<u8>(),
    ) {
        let alignment = lcm4(block_size);
        let covered = payload.len() + tfc_padding_len + 2;
        let needed = (alignment - covered % alignment) % alignment;
        let repr = match esp::TrailerRepr::with_tfc_padding(
            payload.len(), tfc_padding_len, block_size, next_header,
        ) {
            Ok(repr) => repr,
            Err(_) => {
                prop_assert!(needed > esp::MAX_PAD_LEN);
                return Ok(());
            }
        };
        prop_assert_eq!(repr.padding_len(), needed);
        let mut plaintext = payload.clone();
        repr.append_to(&mut plaintext);
        prop_assert_eq!(plaintext.len(), covered + needed);
        prop_assert_eq!(plaintext.len() % alignment, 0);
        prop_assert_eq!(plaintext.len() % block_size, 0);
        let t = esp::Trailer::parse(&plaintext).unwrap();
        prop_assert_eq!(&t.payload[..payload.len()], &payload[..]);
        prop_assert!(t.payload[payload.len()..].iter().all(|&b| b == 0));
        prop_assert_eq!(t.payload.len(), payload.len() + tfc_padding_len);
        prop_assert_eq!(t.pad_len, repr.pad_len);
        prop_assert_eq!(t.next_header, next_header);
        // Emitting into a slice gives the same bytes as appending.
        let mut slice = vec![0xee; repr.buffer_len()];
        repr.emit(&mut slice).unwrap();
        prop_assert_eq!(&slice[..], &plaintext[payload.len()..]);
    }

    // ---- AH ----

    #[test]
    fn ah_repr_round_trip(
        next_header in any::<u8>(),
        spi in 1u32..,
        sequence_number in any::<u32>(),
        icv_words in 0usize..=32,
        icv_seed in any::<u8>(),
        trailing in bytes(16),
    ) {
        let icv: Vec<u8> = (0..icv_words * 4).map(|i| icv_seed.wrapping_add(i as u8)).collect();
        let repr = ah::Repr { next_header, spi, sequence_number, icv };
        let mut buf = vec![0u8; repr.buffer_len()];
        buf.extend_from_slice(&trailing);
        repr.emit(&mut ah::Packet::new_unchecked(&mut buf[..])).unwrap();
        let packet = ah::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(packet.header_len(), repr.buffer_len());
        prop_assert_eq!(packet.payload(), &trailing[..]);
        prop_assert_eq!(usize::from(repr.payload_len().unwrap()), icv_words + 1);
        prop_assert_eq!(ah::Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn ah_bytes_round_trip(buf in bytes(200)) {
        let Ok(packet) = ah::Packet::new_checked(&buf[..]) else { return Ok(()) };
        let header_len = packet.header_len();
        match ah::Repr::parse(&packet) {
            Ok(repr) => {
                let mut out = vec![0u8; header_len];
                repr.emit(&mut ah::Packet::new_unchecked(&mut out[..])).unwrap();
                // Everything but the reserved field (emitted as 0, ignored on parse) survives.
                let mut expected = buf[..header_len].to_vec();
                expected[2..4].fill(0);
                prop_assert_eq!(out, expected);
            }
            Err(_) => prop_assert_eq!(packet.spi(), 0),
        }
    }

    #[test]
    fn ah_parse_never_panics(buf in bytes(MAX_INPUT), icv_len in caller_len()) {
        let packet = ah::Packet::new_unchecked(&buf[..]);
        let _ = (packet.next_header(), packet.payload_len(), packet.reserved(), packet.spi());
        let _ = (packet.sequence_number(), packet.icv(), packet.payload(), packet.header_len());
        let _ = packet.icv_for(icv_len);
        let checked = packet.check_len().is_ok();
        if let Ok(repr) = ah::Repr::parse(&packet) {
            prop_assert!(checked);
            prop_assert_eq!(repr.buffer_len(), packet.header_len());
        }
    }

    #[test]
    fn ah_icv_input_never_panics(
        buf in bytes(MAX_INPUT),
        icv_len in caller_len(),
        outbound in any::<bool>(),
    ) {
        let direction = if outbound { ah::Direction::Outbound } else { ah::Direction::Inbound };
        let mut out = vec![1, 2, 3];
        match ah::ipv4_icv_input(&buf, icv_len, direction, &mut out) {
            Ok(_) => prop_assert_eq!(out.len(), buf.len()),
            Err(_) => prop_assert!(out.is_empty()),
        }
        let mut in_place = buf.clone();
        let result = ah::ipv4_icv_input_in_place(&mut in_place, icv_len, direction);
        if result.is_ok() {
            prop_assert_eq!(in_place, out);
        } else {
            prop_assert_eq!(in_place, buf);
        }
    }

    #[test]
    fn ah_icv_input_on_shaped_packets((packet, icv_len) in ipv4_with_ah(), outbound in any::<bool>()) {
        let direction = if outbound { ah::Direction::Outbound } else { ah::Direction::Inbound };
        let mut image = Vec::new();
        let Ok(input) = ah::ipv4_icv_input(&packet, icv_len, direction, &mut image) else {
            return Ok(());
        };
        prop_assert_eq!(image.len(), packet.len());
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        prop_assert_eq!(input.ah_offset, header_len);
        prop_assert_eq!(input.icv_offset, header_len + ah::HEADER_LEN);
        // Mutable base fields are zero; immutable ones untouched.
        prop_assert_eq!(image[1], 0);
        prop_assert_eq!(&image[6..9], &[0, 0, 0][..]);
        prop_assert_eq!(&image[10..12], &[0, 0][..]);
        prop_assert_eq!(image[0], packet[0]);
        prop_assert_eq!(&image[2..6], &packet[2..6]);
        prop_assert_eq!(image[9], packet[9]);
        prop_assert_eq!(&image[12..16], &packet[12..16]);
        if direction == ah::Direction::Inbound {
            prop_assert_eq!(&image[16..20], &packet[16..20]);
        }
        // Options: each byte is either kept or zeroed.
        for (&kept, &sent) in image[20..header_len].iter().zip(&packet[20..header_len]) {
            prop_assert!(kept == sent || kept == 0);
        }
        // The AH fixed part and the payload are kept; the ICV is zero, its padding kept.
        prop_assert_eq!(&image[header_len..input.icv_offset], &packet[header_len..input.icv_offset]);
        let icv_end = input.icv_offset + input.icv_len;
        prop_assert!(image[input.icv_offset..icv_end].iter().all(|&b| b == 0));
        prop_assert_eq!(&image[icv_end..], &packet[icv_end..]);
    }

    // ---- UDP encapsulation ----

    #[test]
    fn udp_encap_classify_never_panics(buf in bytes(MAX_INPUT)) {
        match udp_encap::classify(&buf) {
            Ok(udp_encap::Classified::Keepalive) => prop_assert_eq!(&buf[..], &[0xff][..]),
            Ok(udp_encap::Classified::Ike(ike)) => {
                prop_assert_eq!(&buf[..4], &[0, 0, 0, 0][..]);
                prop_assert!(!ike.is_empty());
                let mut out = Vec::new();
                udp_encap::emit_ike(ike, &mut out).unwrap();
                prop_assert_eq!(out, buf);
            }
            Ok(udp_encap::Classified::Esp(packet)) => {
                prop_assert_eq!(packet, &buf[..]);
                let esp = esp::Packet::new_checked(packet).unwrap();
                prop_assert_ne!(esp.spi(), 0);
                let mut out = Vec::new();
                udp_encap::emit_esp(packet, &mut out).unwrap();
                prop_assert_eq!(out, buf);
            }
            Err(_) => prop_assert!(buf.len() < esp::HEADER_LEN),
        }
    }
}
