//! IPv4 fragmentation (RFC 791 s3.2, "Fragmentation and Reassembly", and
//! RFC 1812 s5.2.6-s5.2.7 for routers): splitting a packet that does not fit
//! the next link, and the ICMP "fragmentation needed" answer (RFC 792, RFC
//! 1191 s4) when it may not be split.
//!
//! The RSIP gateway needs both on its private side: a datagram reassembled
//! from public fragments (RFC 3102 s3.1) plus the tunnel header can exceed
//! the private link's MTU; RFC 2003 s5.1 lets a tunnel entry fragment the
//! outer packet when its DF is clear, and otherwise has it report the
//! tunnel's MTU to the sender.

use std::net::Ipv4Addr;
use std::ops::Range;

use crate::icmp;
use crate::ipv4::{self, HEADER_LEN, Packet};

/// Why a packet was not fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// Not a whole, well-formed IPv4 packet.
    #[error("not a whole IPv4 packet")]
    Malformed,
    /// DF is set: the sender must be told the MTU instead.
    #[error("don't fragment is set")]
    DontFragment,
    /// The MTU cannot carry the header and 8 bytes of data (RFC 791: every
    /// internet module must forward 68 bytes without further fragmentation).
    #[error("MTU {0} is below the header plus 8 bytes")]
    MtuTooSmall(usize),
}

/// Splits `packet` into fragments of at most `mtu` bytes, appended to `out`;
/// `ranges` gets where each one is. A packet that fits is copied whole. A
/// fragment is split again correctly (its MF and offset carry over). Options
/// whose copied flag is set go into every fragment, the others only into the
/// first (RFC 791 s3.1, "Options"). The header checksum of each is filled in.
pub fn fragment(
    packet: &[u8],
    mtu: usize,
    out: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> Result<(), FragmentError> {
    let ip = Packet::new_checked(packet).map_err(|_| FragmentError::Malformed)?;
    let total = usize::from(ip.total_len());
    let header_len = usize::from(ip.header_len());
    let packet = &packet[..total];
    if total <= mtu {
        let start = out.len();
        out.extend_from_slice(packet);
        ranges.push(start..out.len());
        return Ok(());
    }
    if ip.dont_frag() {
        return Err(FragmentError::DontFragment);
    }
    // The options of the later fragments: the copied ones, padded to 4.
    let mut later_options = Vec::new();
    for opt in ip.options_iter().flatten() {
        // Copied options (kind >= 0x80) always have a length byte.
        if opt.kind & 0x80 != 0 {
            later_options.push(opt.kind);
            later_options
                .push(u8::try_from(opt.data.len() + 2).map_err(|_| FragmentError::Malformed)?);
            later_options.extend_from_slice(opt.data);
        }
    }
    while later_options.len() % 4 != 0 {
        later_options.push(0);
    }
    let later_header = HEADER_LEN + later_options.len();
    let first_max = (mtu.saturating_sub(header_len)) & !7;
    let later_max = (mtu.saturating_sub(later_header)) & !7;
    if first_max < 8 || later_max < 8 {
        return Err(FragmentError::MtuTooSmall(mtu));
    }
    let data = &packet[header_len..];
    let base_offset = usize::from(ip.frag_offset());
    let last_has_more = ip.more_frags();
    let mut pos = 0;
    while pos < data.len() {
        let first = pos == 0;
        let max = if first { first_max } else { later_max };
        let take = max.min(data.len() - pos);
        let more = pos + take < data.len() || last_has_more;
        let start = out.len();
        if first {
            out.extend_from_slice(&packet[..header_len]);
        } else {
            out.extend_from_slice(&packet[..HEADER_LEN]);
            out.extend_from_slice(&later_options);
        }
        let hl = out.len() - start;
        out.extend_from_slice(&data[pos..pos + take]);
        let len = out.len() - start;
        let mut f = Packet::new_unchecked(&mut out[start..]);
        f.set_header_len(u8::try_from(hl).map_err(|_| FragmentError::Malformed)?);
        f.set_total_len(u16::try_from(len).map_err(|_| FragmentError::Malformed)?);
        f.clear_flags();
        f.set_more_frags(more);
        let offset = base_offset + pos;
        f.set_frag_offset(u16::try_from(offset).map_err(|_| FragmentError::Malformed)?);
        f.fill_checksum();
        ranges.push(start..out.len());
        pos += take;
    }
    Ok(())
}

/// RFC 792 / RFC 1191 s4: ICMP Destination Unreachable, Fragmentation Needed
/// and DF Set (type 3, code 4) from `from` to the source of `original`,
/// carrying `next_hop_mtu` and quoting the original's header and first 8
/// bytes of payload. `None` when the original cannot be quoted, or is itself
/// an ICMP error (RFC 1812 s4.3.2.7: never an error about an error).
#[must_use]
pub fn frag_needed(from: Ipv4Addr, original: &[u8], next_hop_mtu: u16) -> Option<Vec<u8>> {
    let ip = Packet::new_checked_partial(original).ok()?;
    if ip.protocol() == ipv4::IpProtocol::Icmp {
        let payload = ip.payload();
        let t = *payload.first()?;
        // Echo reply 0, echo request 8, timestamp 13/14, info 15/16, mask 17/18 are queries.
        if !matches!(t, 0 | 8 | 13..=18) {
            return None;
        }
    }
    let invoking = icmp::Invoking::quote(original, 8).ok()?;
    let repr = icmp::Repr::DstUnreachable {
        reason: icmp::DstUnreachable::FragRequired,
        next_hop_mtu: Some(next_hop_mtu),
        invoking,
    };
    let icmp_len = repr.buffer_len();
    let header = ipv4::Repr::new(from, ip.src_addr(), ipv4::IpProtocol::Icmp, icmp_len);
    let mut out = vec![0u8; HEADER_LEN + icmp_len];
    header.emit(&mut Packet::new_unchecked(&mut out[..]));
    repr.emit(&mut icmp::Packet::new_unchecked(&mut out[HEADER_LEN..]));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn udp_packet(payload: usize, df: bool, options: &[u8]) -> Vec<u8> {
        let header = ipv4::Repr {
            src_addr: Ipv4Addr::new(198, 51, 100, 7),
            dst_addr: Ipv4Addr::new(192, 0, 2, 1),
            protocol: ipv4::IpProtocol::Udp,
            payload_len: payload,
            ttl: 61,
            dscp: 10,
            ecn: 1,
            ident: 0x1234,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
            options: options.to_vec(),
        };
        let mut out = vec![0u8; header.buffer_len() + payload];
        header.emit(&mut Packet::new_unchecked(&mut out[..]));
        let hl = header.buffer_len();
        for (i, b) in out[hl..].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        out
    }

    /// Puts fragments back together by offset (the test's own reassembly).
    fn reassemble(frags: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::new();
        let mut first_header = Vec::new();
        for f in frags {
            let p = Packet::new_checked(*f).unwrap();
            assert!(p.verify_checksum());
            let off = usize::from(p.frag_offset());
            if off == 0 {
                first_header = f[..usize::from(p.header_len())].to_vec();
            }
            let payload = p.payload();
            if data.len() < off + payload.len() {
                data.resize(off + payload.len(), 0);
            }
            data[off..off + payload.len()].copy_from_slice(payload);
        }
        (first_header, data)
    }

    #[test]
    fn a_5000_byte_datagram_fits_a_1500_byte_link_in_four_pieces() {
        let p = udp_packet(5000 + 8, false, &[]);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        fragment(&p, 1500, &mut out, &mut ranges).unwrap();
        assert_eq!(ranges.len(), 4);
        let frags: Vec<&[u8]> = ranges.iter().map(|r| &out[r.clone()]).collect();
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= 1500);
            let v = Packet::new_checked(*f).unwrap();
            assert_eq!(v.more_frags(), i < 3);
            assert_eq!(v.ident(), 0x1234);
            assert_eq!(v.ttl(), 61);
            assert_eq!(v.dscp(), 10);
        }
        let (_, data) = reassemble(&frags);
        assert_eq!(data, p[20..]);
    }

    #[test]
    fn df_and_tiny_mtus_are_refused_and_small_packets_pass_whole() {
        let p = udp_packet(2000, true, &[]);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        assert_eq!(
            fragment(&p, 1500, &mut out, &mut ranges),
            Err(FragmentError::DontFragment)
        );
        let p = udp_packet(2000, false, &[]);
        assert_eq!(
            fragment(&p, 27, &mut out, &mut ranges),
            Err(FragmentError::MtuTooSmall(27))
        );
        let p = udp_packet(100, true, &[]);
        fragment(&p, 1500, &mut out, &mut ranges).unwrap();
        assert_eq!(&out[ranges[0].clone()], &p[..]);
        assert_eq!(
            fragment(&[0x45, 0, 0], 1500, &mut out, &mut ranges),
            Err(FragmentError::Malformed)
        );
    }

    #[test]
    fn only_copied_options_follow_into_later_fragments() {
        // Loose source route (0x83, copied) and record route (0x07, not copied).
        let opts = [0x83, 7, 4, 192, 0, 2, 9, 0x07, 7, 4, 0, 0, 0, 0, 0];
        let mut padded = opts.to_vec();
        padded.push(0);
        let p = udp_packet(3000, false, &padded);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        fragment(&p, 1000, &mut out, &mut ranges).unwrap();
        let first = Packet::new_checked(&out[ranges[0].clone()]).unwrap();
        assert_eq!(first.options(), &padded[..]);
        let second = Packet::new_checked(&out[ranges[1].clone()]).unwrap();
        assert_eq!(second.options(), &[0x83, 7, 4, 192, 0, 2, 9, 0]);
        let frags: Vec<&[u8]> = ranges.iter().map(|r| &out[r.clone()]).collect();
        let (_, data) = reassemble(&frags);
        assert_eq!(data, p[usize::from(first.header_len())..]);
    }

    #[test]
    fn frag_needed_quotes_the_packet_and_carries_the_mtu() {
        let p = udp_packet(2000, true, &[]);
        let from = Ipv4Addr::new(192, 0, 2, 1);
        let m = frag_needed(from, &p, 1480).unwrap();
        let ip = Packet::new_checked(&m[..]).unwrap();
        assert_eq!(ip.src_addr(), from);
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        assert!(ip.verify_checksum());
        let icmp = icmp::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.msg_code(), 4);
        assert_eq!(icmp.next_hop_mtu(), 1480);
        let quoted = icmp.invoking_packet().unwrap();
        assert_eq!(quoted.src_addr(), Ipv4Addr::new(198, 51, 100, 7));
        // Never an error about an error.
        assert!(frag_needed(from, &m, 1480).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn fragments_put_back_together_give_the_original(
            len in 0usize..9000,
            mtu in 68usize..9100,
        ) {
            let p = udp_packet(len, false, &[]);
            let (mut out, mut ranges) = (Vec::new(), Vec::new());
            fragment(&p, mtu, &mut out, &mut ranges).unwrap();
            let frags: Vec<&[u8]> = ranges.iter().map(|r| &out[r.clone()]).collect();
            for f in &frags {
                prop_assert!(f.len() <= mtu);
            }
            let (header, data) = reassemble(&frags);
            prop_assert_eq!(&data[..], &p[20..]);
            // The first fragment's header is the original's but for the
            // length, flags/offset and checksum.
            for i in (0..20).filter(|i| !matches!(i, 2 | 3 | 6 | 7 | 10 | 11)) {
                prop_assert_eq!(header[i], p[i]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), mtu in 0usize..300) {
            let (mut out, mut ranges) = (Vec::new(), Vec::new());
            let _ = fragment(&bytes, mtu, &mut out, &mut ranges);
            let _ = frag_needed(Ipv4Addr::LOCALHOST, &bytes, 576);
        }
    }
}
