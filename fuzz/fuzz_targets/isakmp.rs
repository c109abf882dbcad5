//! ISAKMP messages (RFC 2408): parse arbitrary bytes; what parses must re-emit byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::isakmp::{Message, Padding};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let bytes = msg.to_bytes().expect("a parsed message re-emits");
        assert_eq!(bytes, data);
    }
    let _ = Message::parse_with(data, Padding::Zeros);
    let _ = realm_wire::isakmp::initiator_cookie(data);
});
