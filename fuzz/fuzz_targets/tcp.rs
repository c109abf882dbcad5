//! TCP on arbitrary bytes: checked view and Repr parse with and without the checksum.
#![no_main]
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::tcp::{Packet, Repr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p, SRC, DST);
        let _ = Repr::parse_with(&p, SRC, DST, Verification::Skip);
    }
});
