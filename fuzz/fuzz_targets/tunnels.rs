//! IP-in-IP (RFC 2003) and GRE (RFC 2784/2890): decapsulation and GRE header parse.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::{gre, ipip};

fuzz_target!(|data: &[u8]| {
    let _ = ipip::decapsulate(data);
    let _ = gre::decapsulate(data);
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = gre::Repr::parse(&p);
        let _ = (p.checksum(), p.key(), p.sequence_number());
    }
});
