//! UDP-encapsulated ESP and IKE on port 4500 (RFC 3948): classification of arbitrary payloads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::udp_encap::{Classified, classify};

fuzz_target!(|data: &[u8]| {
    if let Ok(Classified::Ike(ike)) = classify(data) {
        let _ = realm_wire::isakmp::Message::parse(ike);
    }
});
