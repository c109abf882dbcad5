//! IP-in-IP (RFC 2003) and GRE (RFC 2784/2890): decapsulation and GRE header
//! parse; a GRE header that parses is emitted again over a copy and must parse
//! (checksum verified) to the same Repr.
//!
//! The first byte picks how much of the packet the harness fixes up before
//! decapsulating: bit 0 clear leaves the bytes as they are; set, the outer
//! IPv4 total length and header checksum are made right (so the GRE and inner
//! checks are reached, which random bytes almost never do); bit 1 also makes
//! the inner IPv4 header's length and checksum right, and bit 2 the GRE
//! checksum when the C bit is set. A decapsulation that succeeds must return
//! an inner packet that fills the rest of the outer datagram exactly.
#![no_main]
mod common;

use common::fix_ipv4;
use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::{self, Verification};
use realm_wire::{gre, ipip};

/// The GRE header length its flags announce (RFC 2784/2890).
fn gre_len(first: u8) -> usize {
    4 + [0x80u8, 0x20, 0x10]
        .iter()
        .filter(|&&bit| first & bit != 0)
        .count()
        * 4
}

/// The outer datagram (bytes past its total length, link padding say, are
/// not part of it).
fn outer(data: &[u8]) -> &[u8] {
    let total = data
        .get(2..4)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    data.get(..total).unwrap_or(data)
}

fn check(data: &[u8]) {
    if let Ok(d) = ipip::decapsulate(data) {
        assert!(
            outer(data).ends_with(d.inner.datagram()),
            "the inner packet ends the outer datagram"
        );
    }
    if let Ok(d) = gre::decapsulate(data) {
        assert!(
            outer(data).ends_with(d.inner.datagram()),
            "the inner packet ends the outer datagram"
        );
        assert_eq!(d.gre.protocol_type, gre::EtherType::Ipv4);
    }
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = gre::Repr::parse(&p);
        let _ = (p.checksum(), p.key(), p.sequence_number());
        if let Ok(repr) = gre::Repr::parse_with(&p, Verification::Skip) {
            let mut copy = data.to_vec();
            repr.emit(&mut gre::Packet::new_unchecked(&mut copy[..]));
            let again = gre::Packet::new_checked(&copy[..]).expect("an emitted header checks");
            assert_eq!(
                gre::Repr::parse(&again).expect("an emitted header parses"),
                repr
            );
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(data);
        return;
    }
    let mut buf = data.to_vec();
    if buf.len() >= 20 {
        let hl = usize::from(buf[0] & 0x0f) * 4;
        let inner_at = match buf[9] {
            4 => Some(hl),
            47 => buf.get(hl).map(|&first| hl + gre_len(first)),
            _ => None,
        };
        if mode & 2 != 0
            && let Some(at) = inner_at
            && at <= buf.len()
        {
            fix_ipv4(&mut buf[at..]);
        }
        if mode & 4 != 0 && buf[9] == 47 && buf.get(hl).is_some_and(|f| f & 0x80 != 0) {
            if let Some(g) = buf.get_mut(hl..).filter(|g| g.len() >= 8) {
                g[4..6].fill(0);
                let sum = checksum::checksum(g);
                g[4..6].copy_from_slice(&sum.to_be_bytes());
            }
        }
        fix_ipv4(&mut buf);
    }
    check(&buf);
});
