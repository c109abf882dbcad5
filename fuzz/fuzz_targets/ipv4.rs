//! IPv4 (RFC 791): checked view, Repr parse, options walk on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::ipv4::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p);
        let _ = Repr::parse_with(&p, Verification::Skip);
        for opt in p.options_iter() {
            let _ = opt;
        }
        let _ = p.payload();
    }
    if let Ok(p) = Packet::new_checked_partial(data) {
        let _ = Repr::parse_with(&p, Verification::Skip);
    }
});
