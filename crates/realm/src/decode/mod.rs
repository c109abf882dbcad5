//! `realm decode`: prints RSIP messages, and the IP, tunnel, ESP/AH and ISAKMP
//! headers around them in a capture, readably or as JSON.
//!
//! It is how an operator inspects a capture, so it never stops at a malformed
//! packet: it reports what was wrong and the byte offset (and, for RSIP, the
//! RFC 3103 error code a gateway would answer with) and goes on.

mod capture;
mod layers;
mod render;

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use capture::read_frames;
use layers::{Decoder, Report};

/// Arguments of `realm decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// Hex bytes to decode (spaces, colons and a 0x prefix are allowed). Read
    /// from standard input when absent and no --pcap is given.
    hex: Vec<String>,

    /// Decode a capture file (pcap or pcapng) instead of hex.
    #[arg(long, value_name = "FILE", conflicts_with = "hex")]
    pcap: Option<PathBuf>,

    /// What the hex bytes are.
    #[arg(long, value_enum, default_value_t = HexLayer::Rsip)]
    layer: HexLayer,

    /// Print JSON (one object per packet, one per line) instead of text.
    #[arg(long)]
    json: bool,

    /// With --pcap: print every frame, not only those with RSIP, IPsec or IKE.
    #[arg(long)]
    all: bool,
}

/// The layer hex input starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HexLayer {
    /// One RSIP message (RFC 3103 section 9).
    Rsip,
    /// An IPv4 packet: everything inside it is decoded too.
    Ip,
    /// An ISAKMP message (RFC 2408 section 3).
    Isakmp,
}

/// Runs `realm decode`. Returns whether every input decoded cleanly (the
/// process exits 1 otherwise, after printing everything).
pub(crate) fn run(args: &DecodeArgs) -> Result<bool> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let reports = match &args.pcap {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            decode_capture(file, args.all)?
        }
        None => {
            let text = if args.hex.is_empty() {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading standard input")?;
                s
            } else {
                args.hex.join(" ")
            };
            let bytes = parse_hex(&text)?;
            vec![decode_bytes(&bytes, args.layer)]
        }
    };
    let clean = reports.iter().all(Report::is_clean);
    for report in &reports {
        if args.json {
            serde_json::to_writer(&mut out, report)?;
            writeln!(out)?;
        } else {
            render::write_report(&mut out, report)?;
        }
    }
    Ok(clean)
}

/// Decodes hex input starting at `layer`.
fn decode_bytes(bytes: &[u8], layer: HexLayer) -> Report {
    let mut decoder = Decoder::default();
    let mut report = Report::default();
    match layer {
        HexLayer::Rsip => decoder.rsip_datagram(bytes, &mut report),
        HexLayer::Ip => decoder.ipv4(bytes, &mut report),
        HexLayer::Isakmp => decoder.isakmp(bytes, &mut report),
    }
    report
}

/// Decodes every frame of a capture. Without `all`, frames that carry no
/// RSIP, IPsec, IKE or tunnel layer are left out.
fn decode_capture(input: impl Read, all: bool) -> Result<Vec<Report>> {
    let frames = read_frames(input)?;
    let mut decoder = Decoder::default();
    let mut reports = Vec::new();
    for frame in &frames {
        let report = decoder.frame(frame);
        if all || report.is_interesting() {
            reports.push(report);
        }
    }
    Ok(reports)
}

/// Parses hex text: pairs of hex digits, optionally separated by white space,
/// colons or dashes, with an optional `0x` prefix per group.
fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let mut digits = String::with_capacity(text.len());
    for group in text.split(|c: char| c.is_whitespace() || c == ':' || c == '-') {
        let group = group
            .strip_prefix("0x")
            .or_else(|| group.strip_prefix("0X"))
            .unwrap_or(group);
        digits.push_str(group);
    }
    if digits.is_empty() {
        bail!("no hex bytes given");
    }
    if let Some((pos, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        bail!("not a hex digit: {c:?} (digit {pos})");
    }
    if digits.len() % 2 == 1 {
        bail!(
            "odd number of hex digits ({}): the last byte is incomplete",
            digits.len()
        );
    }
    hex::decode(&digits).context("decoding hex")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_separators_and_prefixes() {
        assert_eq!(parse_hex("01 02:03-0x04\n0A").unwrap(), [1, 2, 3, 4, 10]);
        assert!(
            parse_hex("0g")
                .unwrap_err()
                .to_string()
                .contains("not a hex digit")
        );
        assert!(
            parse_hex("012")
                .unwrap_err()
                .to_string()
                .contains("odd number")
        );
        assert!(parse_hex("  ").is_err());
    }
}
