//! IP-in-IP (RFC 2003) and GRE (RFC 2784/2890): decapsulation and GRE header
//! parse; a GRE header that parses is emitted again over a copy and must parse
//! (checksum verified) to the same Repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::{gre, ipip};

fuzz_target!(|data: &[u8]| {
    let _ = ipip::decapsulate(data);
    let _ = gre::decapsulate(data);
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = gre::Repr::parse(&p);
        let _ = (p.checksum(), p.key(), p.sequence_number());
        if let Ok(repr) = gre::Repr::parse_with(&p, Verification::Skip) {
            let mut copy = data.to_vec();
            repr.emit(&mut gre::Packet::new_unchecked(&mut copy[..]));
            let again = gre::Packet::new_checked(&copy[..]).expect("an emitted header checks");
            assert_eq!(gre::Repr::parse(&again).expect("an emitted header parses"), repr);
        }
    }
});
