//! IPv4 (RFC 791): checked view, Repr parse, options walk on arbitrary bytes;
//! a header that parses is emitted again over a copy and must parse (checksum
//! verified) to the same Repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::ipv4::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p);
        for opt in p.options_iter() {
            let _ = opt;
        }
        let _ = p.payload();
        if let Ok(repr) = Repr::parse_with(&p, Verification::Skip) {
            let mut copy = data[..repr.total_len()].to_vec();
            repr.emit(&mut Packet::new_unchecked(&mut copy[..]));
            let again = Packet::new_checked(&copy[..]).expect("an emitted header checks");
            assert_eq!(Repr::parse(&again).expect("an emitted header parses"), repr);
        }
    }
    if let Ok(p) = Packet::new_checked_partial(data) {
        let _ = Repr::parse_with(&p, Verification::Skip);
    }
});
