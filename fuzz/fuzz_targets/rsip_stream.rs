//! RSIP over TCP: the stream decoder on arbitrary bytes fed in arbitrary
//! chunks never holds more than its bound and never panics. The bound is one
//! of the daemons' own: the gateway's default `limits.max_message_size`
//! (4096) or the host's `max_message_len` and the largest either accepts
//! (65535); the second byte of the input picks it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::rsip::{Message, StreamDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    let bound = if which & 1 == 0 { 4096 } else { 65535 };
    let chunk = usize::from(chunk).max(1);
    let mut dec = StreamDecoder::new(bound);
    for mut piece in data.chunks(chunk) {
        while !piece.is_empty() {
            let n = dec.push(piece);
            piece = &piece[n..];
            assert!(dec.buffered() <= bound);
            loop {
                match dec.next_frame() {
                    Ok(Some(frame)) => {
                        assert!(frame.len() <= bound);
                        let _ = Message::parse(frame);
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            if n == 0 {
                break;
            }
        }
    }
});
