//! `realm decode` on pcap/pcapng captures and on bytes given as hex.
//!
//! `realm` is a binary crate, so its decoder cannot be called as a library:
//! this target compiles the decoder's own files (`crates/realm/src/decode/
//! capture.rs`, `layers.rs`, `render.rs`) into the harness and wires them as
//! `decode/mod.rs` does (`decode_capture` and `decode_bytes`). Not covered:
//! `parse_hex` (in `mod.rs`, beside the command-line parsing), whose input
//! is text the user types.
//!
//! The first byte picks the input: a capture (the rest is the file), or
//! bytes at the RSIP, IPv4 or ISAKMP layer. Asserted: no panic; every report
//! renders as text and serialises to JSON; a clean report has no problem.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/realm/src/decode/capture.rs"]
mod capture;
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/realm/src/decode/layers.rs"]
mod layers;
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/realm/src/decode/render.rs"]
mod render;

use capture::read_frames;
use layers::{Decoder, Report};

/// As `decode_capture` in `crates/realm/src/decode/mod.rs` (with `--all`).
fn decode_capture(input: &[u8]) -> Vec<Report> {
    let Ok(frames) = read_frames(input) else {
        return Vec::new();
    };
    let mut decoder = Decoder::default();
    let mut reports = Vec::new();
    for frame in &frames {
        let report = decoder.frame(frame);
        let _ = report.is_interesting();
        reports.push(report);
    }
    reports
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let reports = match pick % 4 {
        0 => decode_capture(bytes),
        layer => {
            let mut decoder = Decoder::default();
            let mut report = Report::default();
            match layer {
                1 => decoder.rsip_datagram(bytes, &mut report),
                2 => decoder.ipv4(bytes, &mut report),
                _ => decoder.isakmp(bytes, &mut report),
            }
            vec![report]
        }
    };
    for report in &reports {
        let mut text = Vec::new();
        render::write_report(&mut text, report).expect("a report renders");
        let json = serde_json::to_string(report).expect("a report serialises");
        assert!(json.starts_with('{'));
        if report.is_clean() {
            assert!(
                !json.contains("\"problems\":[{"),
                "a clean report has no problem"
            );
        }
    }
});
