//! AH (RFC 4302): header view and the IPv4 ICV-input image on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::ah::{Direction, Packet, Repr, ipv4_icv_input};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p);
        let _ = p.icv_for(12);
    }
    let mut out = Vec::new();
    let _ = ipv4_icv_input(data, 12, Direction::Inbound, &mut out);
    let _ = ipv4_icv_input(data, 16, Direction::Outbound, &mut out);
});
