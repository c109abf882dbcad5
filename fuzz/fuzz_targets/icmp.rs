//! ICMPv4 (RFC 792): checked view, Repr parse, and the lenient invoking-packet
//! parse; a message that parses is emitted again and must parse (checksum
//! verified) to the same Repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::icmp::{Invoking, Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p);
        if let Ok(repr) = Repr::parse_with(&p, Verification::Skip) {
            if let Some(inv) = repr.invoking() {
                let _ = (inv.ports(), inv.spi(), inv.echo_ident());
            }
            let mut copy = vec![0; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut copy[..]));
            let again = Packet::new_checked(&copy[..]).expect("an emitted message checks");
            assert_eq!(
                Repr::parse(&again).expect("an emitted message parses"),
                repr
            );
        }
    }
    if let Ok(inv) = Invoking::parse(data) {
        let _ = (inv.ports(), inv.spi(), inv.echo_ident());
    }
});
