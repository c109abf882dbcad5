//! realm-ipsec's inbound path with a real SA installed, past the ICV.
//!
//! Mutating sealed packets stops at the integrity check, so this harness
//! seals by hand with the SA's known keys (as `crates/realm-ipsec/tests/
//! after_icv.rs` does: ESP-NULL with HMAC-SHA-256-128, or AES-GCM-128; RFC
//! 4303 s2, RFC 4868, RFC 4106) around a plaintext the fuzzer shapes: either
//! arbitrary bytes, or an inner UDP packet with fuzz-chosen edits, padding,
//! pad length and next header. Input: mode byte (bit 0 GCM, bit 1 tunnel
//! mode, bit 2 raw plaintext, bit 3 open the packet twice, bit 4 next header
//! from the input, bit 5 pad length from the input), sequence number (4
//! bytes), next header, pad length, edit count, then 3 bytes per edit
//! (offset, value), then the payload or raw plaintext. A last part: an
//! unsealed variant, the sealed packet with a fuzz-chosen byte changed.
//!
//! Asserted: a hand-sealed packet never fails the ICV nor stops before it
//! (unknown SPI); what is delivered had a consistent trailer (RFC 4303 s2.4),
//! next header 4 in tunnel mode, and, unspoilt, is what was sealed; an unspoilt
//! plaintext with a non-zero sequence number is delivered; a delivered
//! packet opened again is a replay; a changed byte is never delivered.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_ipsec::{Direction, DropReason, Inbound, Ipsec};
use std::time::Instant;

#[allow(dead_code, unreachable_pub, unused_imports)]
#[path = "../../crates/realm-ipsec/tests/common/mod.rs"]
mod common;
use common::{Suite, engine, hand_seal, hand_suite, inner_packet, sa_config, trailer_consistent};

fn receiver(s: Suite, now: Instant) -> Ipsec {
    let mut b = engine();
    b.add_sa(now, sa_config(s, Direction::Inbound))
        .expect("the harness's SA installs");
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mode = head[0];
    let (gcm, tunnel, raw, twice) = (mode & 1 != 0, mode & 2 != 0, mode & 4 != 0, mode & 8 != 0);
    let seq = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let s = hand_suite(gcm, tunnel);
    let right_next = if tunnel { 4 } else { 17 };
    let edits = usize::from(head[7] % 8);
    let Some((edit_bytes, body)) = rest.split_at_checked(edits * 3) else {
        return;
    };
    let (body, flip) = match body.split_last_chunk::<2>() {
        Some((b, f)) if mode & 0x40 != 0 => (b, Some(*f)),
        _ => (body, None),
    };
    let (plaintext, carried, unspoilt) = if raw {
        (body.to_vec(), Vec::new(), false)
    } else {
        let inner = inner_packet(s, &body[..body.len().min(1400)]);
        let carried = if tunnel { inner } else { inner[20..].to_vec() };
        let mut c = carried.clone();
        for e in edit_bytes.chunks_exact(3) {
            let at = usize::from(u16::from_be_bytes([e[0], e[1]])) % c.len();
            c[at] = e[2];
        }
        let next = if mode & 0x10 != 0 {
            head[5]
        } else {
            right_next
        };
        let pad = if mode & 0x20 != 0 {
            usize::from(head[6])
        } else {
            (4 - (c.len() + 2) % 4) % 4
        };
        let mut p = c.clone();
        p.extend((1..=pad).map(|i| (i & 0xff) as u8));
        p.push((pad & 0xff) as u8);
        p.push(next);
        let unspoilt = c == carried && next == right_next && (c.len() + pad + 2) % 4 == 0;
        (p, c, unspoilt)
    };
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut b = receiver(s, now);
    let packet = hand_seal(s, seq, &plaintext);
    let first = b.open(now, &packet);
    match &first {
        Err(DropReason::IcvMismatch) => panic!("{s:?}: the hand-sealed ICV did not verify"),
        Err(DropReason::UnknownSpi) => panic!("{s:?}: stopped before the ICV"),
        Ok(Inbound::Packet(p)) => {
            assert!(
                trailer_consistent(&plaintext),
                "an inconsistent trailer was delivered"
            );
            assert!(
                !tunnel || plaintext[plaintext.len() - 1] == 4,
                "tunnel mode, next header 4"
            );
            // What was sealed comes out (an edited inner header may be
            // normalised on the way: compared only when unspoilt, as
            // after_icv.rs does).
            if unspoilt && tunnel {
                assert_eq!(
                    &p.packet[..],
                    &carried[..],
                    "tunnel mode delivers what was sealed"
                );
            }
            if unspoilt && !tunnel {
                assert_eq!(
                    &p.packet[20..],
                    &carried[..],
                    "transport mode delivers what was sealed"
                );
            }
        }
        Ok(other) => panic!("{s:?}: {other:?}"),
        Err(_) => {}
    }
    if unspoilt && seq != 0 {
        assert!(
            matches!(first, Ok(Inbound::Packet(_))),
            "{s:?}: a well-formed packet was refused: {first:?}"
        );
    }
    let delivered = matches!(first, Ok(Inbound::Packet(_)));
    if twice {
        let again = b.open(now, &packet);
        if delivered {
            assert!(
                matches!(again, Err(DropReason::Replay)),
                "a replay: {again:?}"
            );
        }
    }
    if let Some([at, v]) = flip {
        let mut forged = packet.clone();
        // Past the outer header: the ESP header, ciphertext and ICV.
        let i = 20 + usize::from(at) % (forged.len() - 20);
        if forged[i] != v {
            forged[i] = v;
            let mut fresh = receiver(s, now);
            assert!(
                !matches!(fresh.open(now, &forged), Ok(Inbound::Packet(_))),
                "a changed byte was delivered"
            );
        }
    }
});
