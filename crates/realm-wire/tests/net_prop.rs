//! Property tests for the network and transport headers: Repr round trips,
//! byte-exact parse→emit of valid packets, no panic on arbitrary bytes, and
//! incremental checksum update against full recomputation.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use realm_wire::checksum::{self, Verification};
use realm_wire::{Error, gre, icmp, ipip, ipv4, tcp, udp};
use std::net::Ipv4Addr;

// ---------------------------------------------------------------- strategies

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

/// Option bytes laid out as RFC 791 / RFC 9293 options: NOPs and
/// kind-length-value entries, then zero padding to a multiple of 4, at most 40.
fn tlv_options() -> impl Strategy<Value = Vec<u8>> {
    let entry = prop_oneof![
        Just(vec![1u8]),
        (2u8..=255, vec(any::<u8>(), 0..8)).prop_map(|(kind, data)| {
            let mut e = vec![kind, data.len() as u8 + 2];
            e.extend(data);
            e
        }),
    ];
    vec(entry, 0..8).prop_map(|entries| {
        let mut out = Vec::new();
        for e in entries {
            if out.len() + e.len() > 40 {
                break;
            }
            out.extend(e);
        }
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    })
}

fn ipv4_repr() -> impl Strategy<Value = ipv4::Repr> {
    (
        (addr(), addr(), any::<u8>(), 0usize..600, any::<u8>()),
        (
            0u8..64,
            0u8..4,
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
        ),
        tlv_options(),
    )
        .prop_map(
            |((src, dst, proto, payload_len, ttl), (dscp, ecn, ident, df, mf, units), options)| {
                ipv4::Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: ipv4::IpProtocol::from(proto),
                    payload_len,
                    ttl,
                    dscp,
                    ecn,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: units * 8,
                    options,
                }
            },
        )
}

/// A whole, valid IPv4 packet: header from a Repr and random payload.
fn ipv4_packet() -> impl Strategy<Value = Vec<u8>> {
    (ipv4_repr(), vec(any::<u8>(), 600)).prop_map(|(repr, payload)| emit_ipv4(&repr, &payload))
}

fn emit_ipv4(repr: &ipv4::Repr, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; repr.total_len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    let hl = repr.buffer_len();
    out[hl..].copy_from_slice(&payload[..repr.payload_len]);
    out
}

fn udp_repr() -> impl Strategy<Value = (udp::Repr, Vec<u8>)> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<bool>(),
        vec(any::<u8>(), 0..300),
    )
        .prop_map(|(src_port, dst_port, has_checksum, payload)| {
            let repr = udp::Repr {
                src_port,
                dst_port,
                has_checksum,
                payload_len: payload.len(),
            };
            (repr, payload)
        })
}

fn emit_udp(repr: &udp::Repr, payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![0u8; repr.buffer_len()];
    out[udp::HEADER_LEN..].copy_from_slice(payload);
    repr.emit(&mut udp::Packet::new_unchecked(&mut out[..]), src, dst);
    out
}

fn tcp_repr() -> impl Strategy<Value = (tcp::Repr, Vec<u8>)> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            0u16..0x200,
        ),
        (
            any::<u16>(),
            any::<u16>(),
            tlv_options(),
            vec(any::<u8>(), 0..300),
        ),
    )
        .prop_map(
            |((sp, dp, seq, ack, flags), (win, urg, options, payload))| {
                let repr = tcp::Repr {
                    src_port: sp,
                    dst_port: dp,
                    seq_number: seq,
                    ack_number: ack,
                    flags: tcp::Flags::from_bits_truncate(flags),
                    window_len: win,
                    urgent_pointer: urg,
                    options,
                    payload_len: payload.len(),
                };
                (repr, payload)
            },
        )
}

fn emit_tcp(repr: &tcp::Repr, payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![0u8; repr.buffer_len()];
    out[repr.header_len()..].copy_from_slice(payload);
    repr.emit(&mut tcp::Packet::new_unchecked(&mut out[..]), src, dst);
    out
}

fn invoking() -> impl Strategy<Value = icmp::Invoking> {
    (ipv4_repr(), any::<u16>(), vec(any::<u8>(), 0..64)).prop_map(|(header, cks, data)| {
        icmp::Invoking {
            header,
            header_checksum: cks,
            data,
        }
    })
}

fn icmp_repr() -> impl Strategy<Value = icmp::Repr> {
    use icmp::Repr;
    let echo = (
        any::<bool>(),
        any::<u16>(),
        any::<u16>(),
        vec(any::<u8>(), 0..100),
    )
        .prop_map(|(request, ident, seq_no, data)| {
            if request {
                Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
            } else {
                Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                }
            }
        });
    let unreachable = (any::<u8>(), any::<u16>(), invoking()).prop_map(|(code, mtu, invoking)| {
        let reason = icmp::DstUnreachable::from(code);
        let next_hop_mtu = (reason == icmp::DstUnreachable::FragRequired).then_some(mtu);
        Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            invoking,
        }
    });
    let others = (0u8..5, any::<u8>(), addr(), any::<u8>(), invoking()).prop_map(
        |(which, code, gateway, pointer, invoking)| match which {
            0 => Repr::SourceQuench { invoking },
            1 => Repr::Redirect {
                reason: icmp::Redirect::from(code),
                gateway,
                invoking,
            },
            2 => Repr::TimeExceeded {
                reason: icmp::TimeExceeded::from(code),
                invoking,
            },
            _ => Repr::ParamProblem {
                reason: icmp::ParamProblem::from(code),
                pointer,
                invoking,
            },
        },
    );
    let raw = (
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        vec(any::<u8>(), 0..100),
    )
        .prop_filter_map(
            "type parsed as a structured variant",
            |(t, code, rest, data)| {
                let structured =
                    matches!(t, 3 | 5 | 11 | 12) || (matches!(t, 0 | 4 | 8) && code == 0);
                (!structured).then(|| Repr::Other {
                    msg_type: icmp::Message::from(t),
                    code,
                    rest_of_header: rest,
                    data,
                })
            },
        );
    prop_oneof![echo, unreachable, others, raw]
}

fn emit_icmp(repr: &icmp::Repr) -> Vec<u8> {
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut icmp::Packet::new_unchecked(&mut out[..]));
    out
}

fn gre_repr() -> impl Strategy<Value = (gre::Repr, Vec<u8>)> {
    (
        any::<bool>(),
        any::<u16>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        vec(any::<u8>(), 0..300),
    )
        .prop_map(|(c, proto, key, seq, payload)| {
            let repr = gre::Repr {
                checksum_present: c,
                protocol_type: gre::EtherType::from(proto),
                key,
                sequence_number: seq,
                payload_len: payload.len(),
            };
            (repr, payload)
        })
}

fn emit_gre(repr: &gre::Repr, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; repr.buffer_len()];
    out[repr.header_len()..].copy_from_slice(payload);
    repr.emit(&mut gre::Packet::new_unchecked(&mut out[..]));
    out
}

fn tunnel() -> impl Strategy<Value = ipip::Tunnel> {
    (addr(), addr(), any::<u8>(), any::<bool>()).prop_map(|(src, dst, ttl, set)| ipip::Tunnel {
        src_addr: src,
        dst_addr: dst,
        ttl,
        dont_frag: if set {
            ipip::DontFragment::Set
        } else {
            ipip::DontFragment::CopyInner
        },
    })
}

/// Arbitrary bytes, or a valid packet with a few bytes overwritten and maybe cut short.
fn fuzz(seed: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        seed,
        vec((any::<Index>(), any::<u8>()), 0..6),
        any::<Index>(),
        any::<bool>(),
    )
        .prop_map(|(mut bytes, writes, cut, do_cut)| {
            if !bytes.is_empty() {
                for (at, value) in writes {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
            }
            if do_cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes.truncate(1600);
            bytes
        });
    prop_oneof![vec(any::<u8>(), 0..1600), mutated]
}

// ------------------------------------------------ round trips (valid input)

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn ipv4_repr_round_trips(repr in ipv4_repr()) {
        let bytes = emit_ipv4(&repr, &[0u8; 600]);
        let packet = ipv4::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(ipv4::Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn ipv4_valid_bytes_reemit_exactly(
        mut fixed in any::<[u8; 20]>(), options in tlv_options(), payload in vec(any::<u8>(), 0..100)
    ) {
        let hl = 20 + options.len();
        fixed[0] = 0x40 | (hl / 4) as u8;
        fixed[2..4].copy_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
        fixed[6] &= 0x7f; // reserved flag
        let mut bytes = [&fixed[..], &options, &payload].concat();
        ipv4::Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let repr = ipv4::Repr::parse(&ipv4::Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        let mut out = bytes.clone();
        out[..hl].fill(0xa5);
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn udp_repr_round_trips((repr, payload) in udp_repr(), src in addr(), dst in addr()) {
        let bytes = emit_udp(&repr, &payload, src, dst);
        let packet = udp::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum(src, dst));
        prop_assert_eq!(udp::Repr::parse(&packet, src, dst).unwrap(), repr);
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn udp_valid_bytes_reemit_exactly(
        mut header in any::<[u8; 8]>(), payload in vec(any::<u8>(), 0..200),
        with_checksum in any::<bool>(), src in addr(), dst in addr()
    ) {
        header[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        let mut bytes = [&header[..], &payload].concat();
        let mut packet = udp::Packet::new_unchecked(&mut bytes[..]);
        if with_checksum { packet.fill_checksum(src, dst) } else { packet.set_checksum(0) }
        let repr = udp::Repr::parse(&udp::Packet::new_checked(&bytes[..]).unwrap(), src, dst).unwrap();
        prop_assert_eq!(emit_udp(&repr, &payload, src, dst), bytes);
    }

    #[test]
    fn tcp_repr_round_trips((repr, payload) in tcp_repr(), src in addr(), dst in addr()) {
        let bytes = emit_tcp(&repr, &payload, src, dst);
        let packet = tcp::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum(src, dst));
        prop_assert_eq!(tcp::Repr::parse(&packet, src, dst).unwrap(), repr);
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn tcp_valid_bytes_reemit_exactly(
        mut fixed in any::<[u8; 20]>(), options in tlv_options(), payload in vec(any::<u8>(), 0..200),
        src in addr(), dst in addr()
    ) {
        let hl = 20 + options.len();
        fixed[12] = ((hl / 4) as u8) << 4 | (fixed[12] & 0x01); // reserved bits zero, NS kept
        let mut bytes = [&fixed[..], &options, &payload].concat();
        tcp::Packet::new_unchecked(&mut bytes[..]).fill_checksum(src, dst);
        let repr = tcp::Repr::parse(&tcp::Packet::new_checked(&bytes[..]).unwrap(), src, dst).unwrap();
        prop_assert_eq!(emit_tcp(&repr, &payload, src, dst), bytes);
    }

    #[test]
    fn icmp_repr_round_trips(repr in icmp_repr()) {
        let bytes = emit_icmp(&repr);
        let packet = icmp::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(icmp::Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn icmp_valid_bytes_reemit_exactly(
        kind in 0u8..6, code in any::<u8>(), field in any::<[u8; 4]>(),
        mut quoted in any::<[u8; 20]>(), options in tlv_options(), data in vec(any::<u8>(), 0..80),
        extra_len in 0u16..2000,
    ) {
        let mut header = [0u8; 8];
        match kind {
            0 => { header[0] = 8; header[4..8].copy_from_slice(&field); }   // echo request
            1 => { header[0] = 0; header[4..8].copy_from_slice(&field); }   // echo reply
            2 => {                                                        // unreachable
                header[0] = 3;
                header[1] = code;
                if code == 4 { header[6..8].copy_from_slice(&field[2..4]); }
            }
            3 => { header[0] = 5; header[1] = code; header[4..8].copy_from_slice(&field); }
            4 => { header[0] = 11; header[1] = code; }
            _ => { header[0] = 12; header[1] = code; header[4] = field[0]; }
        }
        let body = if kind < 2 {
            data.clone()
        } else {
            let hl = 20 + options.len();
            quoted[0] = 0x40 | (hl / 4) as u8;
            let total = (hl + data.len()) as u16 + extra_len; // the original was longer
            quoted[2..4].copy_from_slice(&total.to_be_bytes());
            quoted[6] &= 0x7f;
            [&quoted[..], &options, &data].concat() // quoted checksum left random
        };
        let mut bytes = [&header[..], &body].concat();
        icmp::Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let repr = icmp::Repr::parse(&icmp::Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        prop_assert_eq!(emit_icmp(&repr), bytes);
    }

    #[test]
    fn gre_repr_round_trips((repr, payload) in gre_repr()) {
        let bytes = emit_gre(&repr, &payload);
        let packet = gre::Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(gre::Repr::parse(&packet).unwrap(), repr);
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn gre_valid_bytes_reemit_exactly(
        c in any::<bool>(), k in any::<bool>(), s in any::<bool>(),
        fields in any::<[u8; 10]>(), payload in vec(any::<u8>(), 0..200),
    ) {
        let flags = u8::from(c) << 7 | u8::from(k) << 5 | u8::from(s) << 4;
        let mut bytes = vec![flags, 0, fields[0], fields[1]];
        if c { bytes.extend_from_slice(&[0, 0, 0, 0]); }
        if k { bytes.extend_from_slice(&fields[2..6]); }
        if s { bytes.extend_from_slice(&fields[6..10]); }
        bytes.extend_from_slice(&payload);
        gre::Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let repr = gre::Repr::parse(&gre::Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        prop_assert_eq!(emit_gre(&repr, &payload), bytes);
    }

    #[test]
    fn ipip_encapsulate_then_decapsulate(
        tunnel in tunnel(), inner_repr in ipv4_repr(), payload in vec(any::<u8>(), 600),
        ident in any::<u16>(), padding in vec(any::<u8>(), 0..8),
    ) {
        let inner = emit_ipv4(&inner_repr, &payload);
        let mut padded = inner.clone();
        padded.extend(padding);
        let mut out = Vec::new();
        let result = ipip::encapsulate(&tunnel, ident, &padded, &mut out);
        if inner_repr.ttl == 0 || inner_repr.src_addr == tunnel.dst_addr {
            prop_assert!(result.is_err());
            prop_assert!(out.is_empty());
            return Ok(());
        }
        result.unwrap();
        let d = ipip::decapsulate(&out).unwrap();
        prop_assert_eq!(d.inner.as_ref(), &inner[..]);
        prop_assert_eq!(d.outer.src_addr, tunnel.src_addr);
        prop_assert_eq!(d.outer.dst_addr, tunnel.dst_addr);
        prop_assert_eq!(d.outer.ttl, tunnel.ttl);
        prop_assert_eq!(d.outer.ident, ident);
        prop_assert_eq!((d.outer.dscp, d.outer.ecn), (inner_repr.dscp, inner_repr.ecn));
        prop_assert_eq!(
            d.outer.dont_frag,
            inner_repr.dont_frag || tunnel.dont_frag == ipip::DontFragment::Set
        );
        prop_assert!(d.outer.options.is_empty() && !d.outer.is_fragment());
    }

    #[test]
    fn gre_encapsulate_then_decapsulate(
        tunnel in tunnel(), inner_repr in ipv4_repr(), payload in vec(any::<u8>(), 600),
        ident in any::<u16>(), c in any::<bool>(),
        key in proptest::option::of(any::<u32>()), seq in proptest::option::of(any::<u32>()),
    ) {
        let inner = emit_ipv4(&inner_repr, &payload);
        let options = gre::Options { checksum: c, key, sequence_number: seq };
        let mut out = Vec::new();
        let result = gre::encapsulate(&tunnel, ident, &options, &inner, &mut out);
        if inner_repr.ttl == 0 || inner_repr.src_addr == tunnel.dst_addr {
            prop_assert!(result.is_err());
            return Ok(());
        }
        result.unwrap();
        let d = gre::decapsulate(&out).unwrap();
        prop_assert_eq!(d.inner.as_ref(), &inner[..]);
        prop_assert_eq!(d.gre.key, key);
        prop_assert_eq!(d.gre.sequence_number, seq);
        prop_assert_eq!(d.gre.checksum_present, c);
        prop_assert_eq!(d.outer.protocol, ipv4::IpProtocol::Gre);
        prop_assert_eq!(d.outer.dscp, inner_repr.dscp);
    }
}

// ------------------------------------------------------------- checksums

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn wide_sum_matches_a_16_bit_loop(bytes in vec(any::<u8>(), 0..1600)) {
        let mut acc: u32 = 0;
        for chunk in bytes.chunks(2) {
            acc += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
            acc = (acc & 0xffff) + (acc >> 16);
        }
        prop_assert_eq!(checksum::data(&bytes), acc as u16);
    }

    #[test]
    fn incremental_update_equals_recompute(
        mut bytes in vec(any::<u8>(), 4..1600), at in any::<Index>(),
        new16 in any::<u16>(), new32 in any::<u32>(),
    ) {
        // 16-bit field at an even offset.
        let i = at.index(bytes.len() / 2) * 2;
        let before = checksum::checksum(&bytes);
        let old = u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        bytes[i..i + 2].copy_from_slice(&new16.to_be_bytes());
        if bytes.iter().any(|&b| b != 0) {
            // (All-zero data has two checksums, 0 and 0xffff, in ones' complement.)
            prop_assert_eq!(checksum::update_u16(before, old, new16), checksum::checksum(&bytes));
        }
        // 32-bit field at an even offset.
        let i = at.index(bytes.len() / 2 - 1) * 2;
        let before = checksum::checksum(&bytes);
        let old = u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        bytes[i..i + 4].copy_from_slice(&new32.to_be_bytes());
        if bytes.iter().any(|&b| b != 0) {
            prop_assert_eq!(checksum::update_u32(before, old, new32), checksum::checksum(&bytes));
        }
    }

    #[test]
    fn header_rewrites_equal_recompute(
        packet in ipv4_packet(), ttl in any::<u8>(), new_src in addr(), new_dst in addr(),
        (udp_repr, udp_payload) in udp_repr(), (tcp_repr, tcp_payload) in tcp_repr(),
        port_a in any::<u16>(), port_b in any::<u16>(),
    ) {
        // IPv4 header: TTL and both addresses.
        let mut packet = packet;
        let mut ip = ipv4::Packet::new_unchecked(&mut packet[..]);
        ip.rewrite_ttl(ttl);
        ip.rewrite_src_addr(new_src);
        ip.rewrite_dst_addr(new_dst);
        let incremental = ip.checksum();
        ip.fill_checksum();
        prop_assert_eq!(incremental, ip.checksum());

        // UDP and TCP: both ports and the source address of the pseudo-header.
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2));
        let mut bytes = emit_udp(&udp_repr, &udp_payload, src, dst);
        let mut u = udp::Packet::new_unchecked(&mut bytes[..]);
        u.rewrite_src_port(port_a);
        u.rewrite_dst_port(port_b);
        u.rewrite_checksum_for_address(src, new_src);
        let incremental = u.checksum();
        if udp_repr.has_checksum {
            u.fill_checksum(new_src, dst);
            prop_assert_eq!(incremental, u.checksum());
        } else {
            prop_assert_eq!(incremental, 0);
        }

        let mut bytes = emit_tcp(&tcp_repr, &tcp_payload, src, dst);
        let mut t = tcp::Packet::new_unchecked(&mut bytes[..]);
        t.rewrite_src_port(port_a);
        t.rewrite_dst_port(port_b);
        t.rewrite_checksum_for_address(src, new_src);
        let incremental = t.checksum();
        t.fill_checksum(new_src, dst);
        prop_assert_eq!(incremental, t.checksum());
    }
}

// ------------------------------------------- no panic on arbitrary input

fn fail(err: Error) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// Parses, and if that succeeds, emits and parses again: the same Repr.
fn check_ipv4(bytes: &[u8]) -> Result<(), TestCaseError> {
    for packet in [
        ipv4::Packet::new_checked(bytes),
        ipv4::Packet::new_checked_partial(bytes),
    ] {
        let Ok(p) = packet else { continue };
        let _ = (
            p.version(),
            p.dscp(),
            p.ecn(),
            p.ident(),
            p.dont_frag(),
            p.more_frags(),
        );
        let _ = (
            p.frag_offset(),
            p.is_fragment(),
            p.ttl(),
            p.protocol(),
            p.src_addr(),
        );
        let _ = (
            p.dst_addr(),
            p.verify_checksum(),
            p.options(),
            p.payload(),
            p.datagram(),
        );
        let _ = p.options_iter().count();
        if let Ok(repr) = ipv4::Repr::parse_with(&p, Verification::Skip) {
            let again = emit_ipv4(&repr, &vec![0u8; repr.payload_len]);
            let p2 = ipv4::Packet::new_checked(&again[..]).map_err(fail)?;
            prop_assert_eq!(ipv4::Repr::parse(&p2).map_err(fail)?, repr);
        }
        let _ = ipv4::Repr::parse(&p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn ipv4_never_panics(bytes in fuzz(ipv4_packet())) {
        check_ipv4(&bytes)?;
    }

    #[test]
    fn udp_never_panics(
        bytes in fuzz(udp_repr().prop_map(|(r, p)| emit_udp(&r, &p, Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST)))
    ) {
        let (src, dst) = (Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST);
        if let Ok(p) = udp::Packet::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload());
            let _ = p.verify_checksum(src, dst);
            let _ = udp::Repr::parse(&p, src, dst);
            if let Ok(repr) = udp::Repr::parse_with(&p, src, dst, Verification::Skip) {
                let again = emit_udp(&repr, p.payload(), src, dst);
                let p2 = udp::Packet::new_checked(&again[..]).unwrap();
                prop_assert_eq!(udp::Repr::parse(&p2, src, dst).unwrap(), repr);
            }
        }
    }

    #[test]
    fn tcp_never_panics(
        bytes in fuzz(tcp_repr().prop_map(|(r, p)| emit_tcp(&r, &p, Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST)))
    ) {
        let (src, dst) = (Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST);
        if let Ok(p) = tcp::Packet::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
            let _ = (p.reserved(), p.window_len(), p.urgent_pointer(), p.options(), p.payload());
            let _ = (p.options_iter().count(), p.verify_checksum(src, dst));
            let _ = tcp::Repr::parse(&p, src, dst);
            if let Ok(repr) = tcp::Repr::parse_with(&p, src, dst, Verification::Skip) {
                let again = emit_tcp(&repr, p.payload(), src, dst);
                let p2 = tcp::Packet::new_checked(&again[..]).unwrap();
                prop_assert_eq!(tcp::Repr::parse(&p2, src, dst).unwrap(), repr);
            }
        }
    }

    #[test]
    fn icmp_never_panics(bytes in fuzz(icmp_repr().prop_map(|r| emit_icmp(&r)))) {
        if let Ok(p) = icmp::Packet::new_checked(&bytes[..]) {
            let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header(), p.echo_ident());
            let _ = (p.echo_seq_no(), p.next_hop_mtu(), p.pointer(), p.gateway(), p.data());
            let _ = p.verify_checksum();
            if let Ok(quoted) = p.invoking_packet() {
                check_ipv4(quoted.as_ref())?;
                let _ = (quoted.payload(), quoted.total_len());
            }
            let _ = icmp::Repr::parse(&p);
            if let Ok(repr) = icmp::Repr::parse_with(&p, Verification::Skip) {
                if let Some(invoking) = repr.invoking() {
                    let _ = (invoking.ports(), invoking.spi(), invoking.echo_ident());
                }
                let again = emit_icmp(&repr);
                let p2 = icmp::Packet::new_checked(&again[..]).unwrap();
                prop_assert_eq!(icmp::Repr::parse(&p2).unwrap(), repr);
            }
        }
    }

    #[test]
    fn gre_never_panics(bytes in fuzz(gre_repr().prop_map(|(r, p)| emit_gre(&r, &p)))) {
        if let Ok(p) = gre::Packet::new_checked(&bytes[..]) {
            let _ = (p.flags_version(), p.version(), p.protocol_type(), p.checksum());
            let _ = (p.reserved1(), p.key(), p.sequence_number(), p.payload());
            let _ = p.verify_checksum();
            let _ = gre::Repr::parse(&p);
            if let Ok(repr) = gre::Repr::parse_with(&p, Verification::Skip) {
                let again = emit_gre(&repr, p.payload());
                let p2 = gre::Packet::new_checked(&again[..]).unwrap();
                prop_assert_eq!(gre::Repr::parse(&p2).unwrap(), repr);
            }
        }
    }

    #[test]
    fn decapsulation_never_panics(
        bytes in fuzz((tunnel(), ipv4_packet(), any::<bool>()).prop_map(|(t, inner, use_gre)| {
            let mut out = Vec::new();
            let _ = if use_gre {
                gre::encapsulate(&t, 1, &gre::Options { checksum: true, key: Some(9), sequence_number: None }, &inner, &mut out)
            } else {
                ipip::encapsulate(&t, 1, &inner, &mut out)
            };
            out
        }))
    ) {
        for result in [ipip::decapsulate(&bytes).map(|d| d.inner), gre::decapsulate(&bytes).map(|d| d.inner)] {
            match result {
                Ok(inner) => check_ipv4(inner.as_ref())?,
                Err(err) => {
                    // Every offset an error names is inside (or at the end of) the input.
                    if let Some(offset) = err.offset() {
                        prop_assert!(offset <= bytes.len(), "{err} for {} bytes", bytes.len());
                    } else {
                        let is_checksum = matches!(err, Error::Checksum { .. });
                        prop_assert!(is_checksum, "{}", err);
                    }
                }
            }
        }
    }
}
