//! IPv4 fragmentation (RFC 791 s3.2) and Fragmentation Needed (RFC 792, RFC
//! 1191 s4) on arbitrary packets and MTUs.
//!
//! Input: MTU (2 bytes), a mode byte, the packet. Mode bit 0 set makes the
//! packet's total length and header checksum right first (so the splitting
//! itself is reached). Asserted: every fragment fits the MTU, is a checked
//! IPv4 packet with a verified checksum (a packet that fits
//! is copied whole, its checksum as it was), the original's identification and
//! protocol, and the fragments put back together by offset give the
//! original's payload, the last one keeping the original's MF; a
//! Fragmentation Needed message is a checked IPv4 packet to the original's
//! source carrying ICMP type 3 code 4 with a verified checksum.
#![no_main]
mod common;

use common::fix_ipv4;
use libfuzzer_sys::fuzz_target;
use realm_wire::fragment::{frag_needed, fragment};
use realm_wire::icmp;
use realm_wire::ipv4::{IpProtocol, Packet};
use std::net::Ipv4Addr;

fuzz_target!(|input: &[u8]| {
    let Some((head, rest)) = input.split_first_chunk::<3>() else {
        return;
    };
    let mtu = u16::from_be_bytes([head[0], head[1]]);
    let mut packet = rest.to_vec();
    if head[2] & 1 != 0 {
        fix_ipv4(&mut packet);
    }
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    if fragment(&packet, usize::from(mtu), &mut out, &mut ranges).is_ok() {
        let original = Packet::new_checked(&packet[..]).expect("a fragmented packet was whole");
        let base = usize::from(original.frag_offset());
        let mut data = Vec::new();
        let mut last_mf = None;
        let mut end = 0;
        for r in &ranges {
            let f = Packet::new_checked(&out[r.clone()]).expect("a fragment checks");
            assert!(
                f.datagram().len() <= usize::from(mtu),
                "a fragment fits the MTU"
            );
            // A packet that fits is copied whole, its checksum as it was.
            assert!(
                f.verify_checksum() || (ranges.len() == 1 && !original.verify_checksum()),
                "a fragment's checksum is filled in"
            );
            assert_eq!(f.ident(), original.ident());
            assert_eq!(f.protocol(), original.protocol());
            let off = usize::from(f.frag_offset());
            assert!(off >= base, "a fragment starts at or after the original");
            let rel = off - base;
            let payload = f.payload();
            if data.len() < rel + payload.len() {
                data.resize(rel + payload.len(), 0);
            }
            data[rel..rel + payload.len()].copy_from_slice(payload);
            if rel + payload.len() >= end {
                end = rel + payload.len();
                last_mf = Some(f.more_frags());
            }
        }
        assert_eq!(
            data,
            original.payload(),
            "the fragments give the payload back"
        );
        if ranges.len() > 1 || !original.payload().is_empty() {
            assert_eq!(last_mf, Some(original.more_frags()));
        }
    }
    let from = Ipv4Addr::new(192, 0, 2, 1);
    if let Some(icmp_packet) = frag_needed(from, &packet, mtu) {
        let p = Packet::new_checked(&icmp_packet[..]).expect("frag-needed is IPv4");
        assert!(p.verify_checksum());
        assert_eq!(p.protocol(), IpProtocol::Icmp);
        assert_eq!(p.src_addr(), from);
        let original = Packet::new_checked_partial(&packet[..]).expect("a quoted packet parses");
        assert_eq!(p.dst_addr(), original.src_addr());
        let m = icmp::Packet::new_checked(p.payload()).expect("frag-needed is ICMP");
        icmp::Repr::parse(&m).expect("frag-needed verifies");
        assert_eq!(p.payload()[0..2], [3, 4]);
    }
});
