//! ISAKMP messages (RFC 2408): parse arbitrary bytes; what parses must re-emit
//! byte for byte.
//!
//! Random bytes almost never get the header length and every nested length
//! right, so the first byte of the input picks a mode: bit 0 clear parses the
//! bytes as they are; set, the harness first makes the lengths agree with the
//! buffer: the header's Length (RFC 2408 s3.1), each generic payload header's
//! (s3.2) along the chain, and inside an SA payload (s3.4) each proposal's
//! (s3.5) and each transform's (s3.6), the last of each chain stretched to the
//! end of its container. The payload types, counts, SPI sizes and attributes
//! stay the fuzzer's, so the SA/proposal/transform/attribute parsers are
//! reached.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::isakmp::{Message, Padding};

const HEADER: usize = 28;
const SA: u8 = 1;

fn set_len(buf: &mut [u8], at: usize, len: usize) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    buf[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Fixes a chain of payloads (generic header: next, reserved, length) that
/// fills `buf[start..end]`; `inner` fixes what a payload of a given type holds.
fn fix_chain(
    buf: &mut [u8],
    start: usize,
    end: usize,
    first: u8,
    inner: &dyn Fn(&mut [u8], u8, usize, usize),
) {
    let mut at = start;
    let mut kind = first;
    while at + 4 <= end {
        let next = buf[at];
        let declared = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        let len = if next == 0 || declared < 4 || at + declared > end {
            end - at
        } else {
            declared
        };
        set_len(buf, at, len);
        inner(buf, kind, at, at + len);
        if next == 0 {
            return;
        }
        kind = next;
        at += len;
    }
}

fn fix_proposal(buf: &mut [u8], _: u8, at: usize, end: usize) {
    // Proposal: header (4), number, protocol, SPI size, transform count, SPI.
    if at + 8 > end {
        return;
    }
    let spi = usize::from(buf[at + 6]);
    fix_chain(buf, at + 8 + spi, end, 3, &|_, _, _, _| {});
}

fn fix_payload(buf: &mut [u8], kind: u8, at: usize, end: usize) {
    // SA: header (4), DOI (4), Situation (4 for the IPsec DOI), proposals.
    if kind == SA && at + 12 <= end {
        fix_chain(buf, at + 12, end, 2, &fix_proposal);
    }
}

fn check(data: &[u8]) {
    if let Ok(msg) = Message::parse(data) {
        let bytes = msg.to_bytes().expect("a parsed message re-emits");
        assert_eq!(bytes, data);
        let again = Message::parse(&bytes).expect("a re-emitted message parses");
        assert_eq!(again, msg);
    }
    let _ = Message::parse_with(data, Padding::Zeros);
    let _ = realm_wire::isakmp::initiator_cookie(data);
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    if mode & 1 == 0 || data.len() < HEADER {
        check(data);
        return;
    }
    let mut buf = data.to_vec();
    let total = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[24..28].copy_from_slice(&total.to_be_bytes());
    let first = buf[16];
    let end = buf.len();
    fix_chain(&mut buf, HEADER, end, first, &fix_payload);
    check(&buf);
});
