//! ESP framing (RFC 4303): header view, layout split and trailer parse on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::esp::{Layout, Packet, Repr, Trailer};

fuzz_target!(|data: &[u8]| {
    // The first byte picks an SA layout, the rest is the packet.
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let layout = match pick % 4 {
        0 => Layout::new(8, 16, 1),   // AES-GCM
        1 => Layout::new(16, 12, 16), // AES-CBC + HMAC-96
        2 => Layout::new(0, 12, 1),   // NULL + HMAC
        _ => Layout::new(
            usize::from(pick),
            usize::from(pick / 3),
            usize::from(pick % 17),
        ),
    };
    if let Ok(p) = Packet::new_checked(packet) {
        let _ = Repr::parse(&p);
        let _ = p.split(&layout);
    }
    if let Ok(trailer) = Trailer::parse(packet)
        .map_err(|_| ())
        .and_then(|t| if t.is_dummy() { Err(()) } else { Ok(t) })
    {
        // A trailer that parses rebuilds the same bytes (dummy packets, next
        // header 59, are accepted whatever their padding: RFC 4303 s2.6).
        let mut rebuilt = trailer.payload.to_vec();
        trailer.repr().append_to(&mut rebuilt);
        assert_eq!(rebuilt, packet);
    }
});
