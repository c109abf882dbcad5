//! ICMPv4 (RFC 792): checked view, Repr parse, and the lenient invoking-packet parse.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::checksum::Verification;
use realm_wire::icmp::{Invoking, Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Repr::parse(&p);
        if let Ok(Some(inv)) = Repr::parse_with(&p, Verification::Skip).map(|r| match r {
            Repr::DstUnreachable { invoking, .. } => Some(invoking),
            _ => None,
        }) {
            let _ = (inv.ports(), inv.spi(), inv.echo_ident());
        }
    }
    if let Ok(inv) = Invoking::parse(data) {
        let _ = (inv.ports(), inv.spi(), inv.echo_ident());
    }
});
