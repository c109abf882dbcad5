//! The Internet checksum (RFC 1071): sums over byte slices, the IPv4
//! pseudo-header of UDP and TCP, and incremental update (RFC 1624).
//!
//! Owns only arithmetic: it never reads past the slices it is given and never panics.
//!
//! Sums here are *ones' complement sums* folded to 16 bits ([`data`],
//! [`combine`], [`pseudo_header`]); the value written in a header is the
//! complement of the sum ([`checksum`], or `!sum`). A received header
//! verifies when the sum over it, checksum field included, is `0xffff`.

use serde::Serialize;
use std::net::Ipv4Addr;

/// Whether a parser verifies the checksum it finds.
///
/// [`Verification::Skip`] is for data whose checksum was already verified
/// (for example by a lower layer, or just before), or for the invoking packet
/// quoted in an ICMP error, whose checksum is not ours to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Verification {
    /// Verify the checksum and fail with [`crate::Error::Checksum`] if it is wrong.
    #[default]
    Verify,
    /// Do not look at the checksum.
    Skip,
}

/// Ones' complement addition of two 16-bit values (end-around carry).
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    let (sum, carry) = a.overflowing_add(b);
    // With a carry, `sum` is at most 0xfffe, so adding it back cannot overflow.
    sum + u16::from(carry)
}

/// Folds a 64-bit ones' complement accumulator to 16 bits.
#[inline]
fn fold(acc: u64) -> u16 {
    // Each step keeps the value congruent modulo 0xffff (2^16 ≡ 1).
    let acc = (acc & 0xffff_ffff) + (acc >> 32); // < 2^33
    let acc = (acc & 0xffff_ffff) + (acc >> 32); // < 2^32 + 2
    let acc = (acc & 0xffff) + (acc >> 16); // < 2^17
    let acc = (acc & 0xffff) + (acc >> 16); // <= 0xffff + 1, and 0x10000 only from 0xffff + 1
    let acc = (acc & 0xffff) + (acc >> 16);
    // `acc` is now at most 0xffff; the conversion cannot fail.
    u16::try_from(acc).unwrap_or(0xffff)
}

/// The ones' complement sum of `bytes` taken as big-endian 16-bit words, an
/// odd last byte padded with a zero byte (RFC 1071 s1, step 1).
///
/// Processes eight bytes at a time with a 64-bit end-around-carry
/// accumulator (RFC 1071 s2 (B) "deferred carries" and (C) "parallel
/// summation"): the result is the same as a 16-bit loop, including the
/// choice between the two zeros (it is `0` only when every byte is zero).
pub fn data(bytes: &[u8]) -> u16 {
    let (words, rest) = bytes.as_chunks::<8>();
    let mut acc: u64 = 0;
    for word in words {
        let (sum, carry) = acc.overflowing_add(u64::from_be_bytes(*word));
        // With a carry, `sum` is at most 2^64 - 2, so this cannot overflow.
        acc = sum + u64::from(carry);
    }
    let (pairs, odd) = rest.as_chunks::<2>();
    for pair in pairs {
        // At most three pairs added to a value below 2^64: fold first.
        acc = u64::from(fold(acc)) + u64::from(u16::from_be_bytes(*pair));
    }
    if let Some(&last) = odd.first() {
        acc = u64::from(fold(acc)) + (u64::from(last) << 8);
    }
    fold(acc)
}

/// The ones' complement sum of several partial sums (RFC 1071 s2 (A): the
/// sum is associative, so parts may be summed separately).
///
/// Only combine sums of parts that start at even offsets of the whole.
pub fn combine(sums: &[u16]) -> u16 {
    sums.iter().fold(0, |acc, &s| add(acc, s))
}

/// The complement of [`data`]: the value to write in a checksum field that
/// covers exactly `bytes` (with the field itself zero).
pub fn checksum(bytes: &[u8]) -> u16 {
    !data(bytes)
}

/// The sum of the IPv4 pseudo-header of UDP (RFC 768) and TCP (RFC 9293
/// s3.1): source and destination address, zero, protocol, and the length of
/// the UDP datagram or TCP segment (header and data).
///
/// `length` is taken as `u32` so that no caller needs a narrowing cast; for
/// lengths up to 65535 (all that IPv4 can carry) the result is the RFC's.
pub fn pseudo_header(src_addr: Ipv4Addr, dst_addr: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let src = src_addr.octets();
    let dst = dst_addr.octets();
    let words = [
        u16::from_be_bytes([src[0], src[1]]),
        u16::from_be_bytes([src[2], src[3]]),
        u16::from_be_bytes([dst[0], dst[1]]),
        u16::from_be_bytes([dst[2], dst[3]]),
        u16::from(protocol),
        (length >> 16) as u16,
        (length & 0xffff) as u16,
    ];
    combine(&words)
}

/// Incrementally updates a checksum after one 16-bit word it covers changed
/// from `old` to `new`.
///
/// RFC 1624 s3, eqn. 3: `HC' = ~(~HC + ~m + m')`. Unlike eqn. 2 (RFC 1141)
/// this never produces the "wrong zero": the result equals a full
/// recomputation. The word must sit at an even offset of the covered data
/// (every header field that Realm rewrites does).
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(&[!checksum, !old, new])
}

/// Incrementally updates a checksum after one 32-bit field at an even
/// offset (an IPv4 address, a TCP sequence number) changed from `old` to
/// `new`: RFC 1624 eqn. 3 applied to both of its 16-bit words.
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let words = [
        !checksum,
        !((old >> 16) as u16),
        !((old & 0xffff) as u16),
        (new >> 16) as u16,
        (new & 0xffff) as u16,
    ];
    !combine(&words)
}

/// Incrementally updates a checksum after a run of bytes it covers changed
/// from `old` to `new` (same length, starting at an even offset of the
/// covered data). Lengths that differ are a caller bug; the checksum is then
/// returned unchanged.
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    if old.len() != new.len() {
        return checksum;
    }
    // ~(~HC + ~sum(m) + sum(m')): the complement of a sum is the sum of the
    // complemented words, so eqn. 3 generalises word by word.
    !combine(&[!checksum, !data(old), data(new)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain 16-bit loop, the reference for the wide implementation.
    fn reference(bytes: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            acc += u32::from(word);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 s3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let bytes = hex::decode("0001f203f4f5f6f7").unwrap();
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(checksum(&bytes), 0x220d);
        // Byte-order independence (s2 (B)): swapped input gives the swapped sum.
        let swapped: Vec<u8> = bytes.chunks(2).flat_map(|c| [c[1], c[0]]).collect();
        assert_eq!(data(&swapped), 0xf2dd);
    }

    #[test]
    fn ipv4_header_example() {
        // A well-known IPv4 header whose checksum field holds b861.
        let mut hdr = hex::decode("450000734000400040110000c0a80001c0a800c7").unwrap();
        hdr[4] = 0;
        hdr[5] = 0;
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10] = 0xb8;
        hdr[11] = 0x61;
        assert_eq!(data(&hdr), 0xffff);
    }

    #[test]
    fn wide_sum_matches_reference_on_all_lengths_and_edges() {
        let mut bytes = Vec::new();
        for len in 0..200usize {
            assert_eq!(data(&bytes), reference(&bytes), "len {len}");
            bytes.push((len as u8).wrapping_mul(151).wrapping_add(7));
        }
        for len in 0..70 {
            let ones = vec![0xffu8; len];
            assert_eq!(data(&ones), reference(&ones), "ones len {len}");
            let zeros = vec![0u8; len];
            assert_eq!(data(&zeros), 0);
        }
    }

    #[test]
    fn pseudo_header_matches_byte_layout() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(198, 51, 100, 7);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&[0, 17, 0x05, 0xdc]);
        assert_eq!(pseudo_header(src, dst, 17, 1500), data(&bytes));
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let mut bytes = hex::decode("450000734000400040110000c0a80001c0a800c7").unwrap();
        let before = checksum(&bytes);
        // Change the TTL/protocol word.
        let old = u16::from_be_bytes([bytes[8], bytes[9]]);
        bytes[8] = 0x3f;
        let new = u16::from_be_bytes([bytes[8], bytes[9]]);
        assert_eq!(update_u16(before, old, new), checksum(&bytes));
        // Change the source address.
        let before = checksum(&bytes);
        let old = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        bytes[12..16].copy_from_slice(&[10, 1, 2, 3]);
        let new = u32::from_be_bytes([10, 1, 2, 3]);
        assert_eq!(update_u32(before, old, new), checksum(&bytes));
        // Same change through the byte-run form.
        let before = checksum(&bytes);
        let old_bytes = bytes[12..20].to_vec();
        bytes[12..20].copy_from_slice(&[172, 16, 0, 1, 203, 0, 113, 9]);
        assert_eq!(
            update_bytes(before, &old_bytes, &bytes[12..20]),
            checksum(&bytes)
        );
        assert_eq!(update_bytes(0x1234, &[1], &[1, 2]), 0x1234);
    }

    #[test]
    fn rfc1624_eqn3_avoids_the_wrong_zero() {
        // RFC 1624 s4: the header sums to 0xcd7a without m, m = 0x5555, so
        // HC = 0xdd2f; m' = 0x3285. A full recomputation gives 0x0000, and so
        // does eqn. 3 (eqn. 2 of RFC 1141 gives 0xffff).
        assert_eq!(!combine(&[0xcd7a, 0x5555]), 0xdd2f);
        assert_eq!(!combine(&[0xcd7a, 0x3285]), 0x0000);
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
