//! AH (RFC 4302): header view and the IPv4 ICV-input image on arbitrary bytes;
//! a header that parses is emitted again and must parse to the same Repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::ah::{Direction, Packet, Repr, ipv4_icv_input};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = p.icv_for(12);
        if let Ok(repr) = Repr::parse(&p) {
            let mut copy = vec![0; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut copy[..]))
                .expect("a parsed header emits");
            let again = Packet::new_checked(&copy[..]).expect("an emitted header checks");
            assert_eq!(Repr::parse(&again).expect("an emitted header parses"), repr);
        }
    }
    let mut out = Vec::new();
    let _ = ipv4_icv_input(data, 12, Direction::Inbound, &mut out);
    let _ = ipv4_icv_input(data, 16, Direction::Outbound, &mut out);
});
