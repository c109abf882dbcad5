//! UDP on arbitrary bytes: checked view and Repr parse with and without the
//! checksum; a header that parses is emitted again over a copy and must parse
//! (checksum verified) to the same Repr.
#![no_main]
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::udp::{Packet, Repr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p, SRC, DST);
        if let Ok(repr) = Repr::parse_with(&p, SRC, DST, Verification::Skip) {
            let mut copy = data[..repr.buffer_len()].to_vec();
            repr.emit(&mut Packet::new_unchecked(&mut copy[..]), SRC, DST);
            let again = Packet::new_checked(&copy[..]).expect("an emitted datagram checks");
            assert_eq!(
                Repr::parse(&again, SRC, DST).expect("an emitted datagram parses"),
                repr
            );
        }
    }
});
