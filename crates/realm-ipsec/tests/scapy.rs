//! Interop with scapy's `SecurityAssociation` (scapy 2.8): scapy seals and
//! Realm opens, Realm seals and scapy opens, for every algorithm, ESP and AH,
//! transport and tunnel mode, with and without NAT-T (ESP), and ESN for the
//! AEADs (scapy supports ESN only there).
//!
//! Needs python3 with scapy and cryptography (`scripts/ensure-scapy`). If they
//! are missing this test FAILS: it never passes without running scapy.
// Test code: unwrap/panic report failures; `Instant::now` only starts the fake
// clock handed to the engine (which itself never reads a clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use realm_ipsec::*;

fn scapy_names(s: &Suite) -> (&'static str, &'static str) {
    let crypt = match s.encryption {
        EncryptionAlgorithm::Null => "NULL",
        EncryptionAlgorithm::AesCbc128 | EncryptionAlgorithm::AesCbc256 => "AES-CBC",
        EncryptionAlgorithm::AesGcm128 | EncryptionAlgorithm::AesGcm256 => "AES-GCM",
        EncryptionAlgorithm::ChaCha20Poly1305 => "CHACHA20-POLY1305",
    };
    let auth = match s.integrity {
        IntegrityAlgorithm::None => "NULL",
        IntegrityAlgorithm::HmacSha1_96 => "HMAC-SHA1-96",
        IntegrityAlgorithm::HmacSha256_128 => "SHA2-256-128",
    };
    (crypt, auth)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn json_str(v: &str) -> String {
    format!("\"{v}\"")
}

/// Pulls `"key": "value"` out of one flat JSON object (enough for our own output).
fn field<'a>(obj: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": \"");
    let start = obj
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {obj}"))
        + pat.len();
    let end = obj[start..].find('"').unwrap() + start;
    &obj[start..end]
}

/// The high-order half of the ESN cases' sequence numbers.
const ESN_HIGH: u32 = 7;

#[test]
fn scapy_interop_every_algorithm_both_directions() {
    let mut cases = Vec::new();
    let mut objs = Vec::new();
    for (protocol, encryption, integrity) in suites() {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for nat_t in [false, true] {
                // ESN off; on with high-order bits 0; on with high-order
                // bits 7 (Realm's counter moved past 2^32 * 7, so a wrong
                // or missing high half in the AAD shows at scapy).
                for (esn, esn_high) in [(false, 0u32), (true, 0), (true, ESN_HIGH)] {
                    if (nat_t && protocol == IpsecProtocol::Ah) || (esn && !encryption.is_aead()) {
                        continue;
                    }
                    let s = Suite {
                        protocol,
                        encryption,
                        integrity,
                        mode,
                        esn,
                        encap: nat_t,
                    };
                    let name = format!(
                        "{protocol:?}/{encryption:?}/{integrity:?}/{mode:?}/natt={nat_t}/esn={esn}/high={esn_high}"
                    );
                    let payload: Vec<u8> = (0..(37 + cases.len())).map(|i| i as u8).collect();
                    let plain = inner_packet(s, &payload);
                    let (mut a, out, _, _, now) = pair(s);
                    if esn_high != 0 {
                        a.sa_mut(out)
                            .unwrap()
                            .set_sequence((u64::from(esn_high) << 32) | 4);
                    }
                    let sealed = a.seal(now, out, &plain).unwrap();
                    let cfg = sa_config(s, Direction::Outbound);
                    let (crypt, auth) = scapy_names(&s);
                    objs.push(format!(
                        "{{\"name\": {}, \"proto\": {}, \"spi\": {}, \"crypt_algo\": {}, \"crypt_key\": {}, \"auth_algo\": {}, \"auth_key\": {}, \"mode\": {}, \"outer_src\": {}, \"outer_dst\": {}, \"nat_t\": {}, \"esn\": {}, \"esn_high\": {}, \"plain\": {}, \"realm_sealed\": {}}}",
                        json_str(&name),
                        json_str(if protocol == IpsecProtocol::Esp { "esp" } else { "ah" }),
                        cfg.spi.0,
                        json_str(crypt),
                        json_str(&hex(cfg.encryption_key.expose())),
                        json_str(auth),
                        json_str(&hex(cfg.integrity_key.expose())),
                        json_str(if mode == Mode::Tunnel { "tunnel" } else { "transport" }),
                        json_str(&cfg.src.to_string()),
                        json_str(&cfg.dst.to_string()),
                        nat_t,
                        esn,
                        esn_high,
                        json_str(&hex(&plain)),
                        json_str(&hex(&sealed)),
                    ));
                    cases.push((name, s, plain, esn_high));
                }
            }
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scapy/interop.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for the scapy interop test (run scripts/ensure-scapy)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("[{}]", objs.join(",")).as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "scapy interop script failed (is scapy installed? run scripts/ensure-scapy):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let results: Vec<&str> = text.split("}, {").collect();
    assert_eq!(results.len(), cases.len(), "one result per case");
    let mut checked = 0;
    for ((name, s, plain, esn_high), obj) in cases.iter().zip(&results) {
        assert_eq!(field(obj, "name"), name);
        // scapy sealed, Realm opens.
        let scapy_sealed = unhex(field(obj, "scapy_sealed"));
        let (_, _, mut b, inb, now) = pair(*s);
        if *esn_high != 0 {
            // A fresh receiver's window infers high-order bits 0 (RFC 4303
            // Appendix A2), so scapy's packet under high bits 7 fails the
            // ICV there: the high half is authenticated, not ignored.
            assert_eq!(
                b.open(now, &scapy_sealed).err(),
                Some(DropReason::IcvMismatch),
                "{name}"
            );
        } else {
            match b.open(now, &scapy_sealed) {
                Ok(Inbound::Packet(p)) => assert_eq!(
                    hex(&p.packet),
                    hex(plain),
                    "{name}: Realm opened scapy's packet to something else"
                ),
                other => panic!(
                    "{name}: Realm could not open scapy's packet: {other:?}\n{}",
                    hex(&scapy_sealed)
                ),
            }
            assert_eq!(b.counters(inb).unwrap().packets, 1);
        }
        // Realm sealed, scapy opened.
        let scapy_opened = unhex(field(obj, "scapy_opened"));
        assert_eq!(
            hex(&scapy_opened),
            hex(plain),
            "{name}: scapy opened Realm's packet to something else"
        );
        checked += 1;
    }
    // 9 ESP suites x 2 modes x 2 (NAT-T) + 3 AEAD x 2 x 2 x 2 with ESN (high
    // bits 0 and 7) + 2 AH x 2 modes.
    assert_eq!(checked, 9 * 2 * 2 + 3 * 2 * 2 * 2 + 2 * 2);
}
