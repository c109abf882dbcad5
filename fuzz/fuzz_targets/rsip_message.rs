//! RSIP messages (RFC 3103 s9, RFC 3104 s6.2): parse arbitrary bytes; what
//! parses must re-emit byte for byte, and what fails must carry an RFC code.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::rsip::Message;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(msg) => {
            assert_eq!(msg.to_bytes(), data);
            // Building the same message from its parameters passes the same BNF check.
            let again = Message::new(msg.msg_type(), msg.params().to_vec()).expect("valid params");
            assert_eq!(again, msg);
        }
        Err(e) => {
            let code = u16::from(e.code());
            assert!((100..500).contains(&code), "{e:?}");
            // The ERROR_RESPONSE a gateway would send is itself a valid message.
            let answer = e.error_response();
            assert!(Message::parse(&answer.to_bytes()).is_ok());
        }
    }
});
