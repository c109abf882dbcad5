//! RSIP over TCP: the stream decoder on arbitrary bytes fed in arbitrary
//! chunks never holds more than its bound and never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_wire::rsip::{Message, StreamDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut dec = StreamDecoder::new(512);
    for mut piece in data.chunks(chunk) {
        while !piece.is_empty() {
            let n = dec.push(piece);
            piece = &piece[n..];
            assert!(dec.buffered() <= 512);
            loop {
                match dec.next_frame() {
                    Ok(Some(frame)) => {
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
