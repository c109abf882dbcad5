//! tshark decrypts Realm's ESP with the keys from `wireshark::esp_sa_line`
//! (Wireshark 4.0 `esp_sa` UAT), and checks the ICV: proves the exported
//! lines and the ESP framing agree with an independent implementation.
//! Needs tshark (`scripts/install-deps`); FAILS if it is missing.

// Test code: unwrap/panic report failures; `Instant::now` only starts the fake
// clock handed to the engine (which itself never reads a clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::process::Command;

use common::*;
use realm_ipsec::*;

/// A pcap file (LINKTYPE_RAW, 101) holding `packets`.
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [
        0xa1b2c3d4u32.to_le_bytes().to_vec(),
        2u16.to_le_bytes().to_vec(),
        4u16.to_le_bytes().to_vec(),
    ] {
        f.extend_from_slice(&v);
    }
    f.extend_from_slice(&0i32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&101u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        f.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

#[test]
fn tshark_decrypts_realm_esp_with_exported_keys() {
    let suites = [
        (EncryptionAlgorithm::AesGcm128, IntegrityAlgorithm::None),
        (EncryptionAlgorithm::AesGcm256, IntegrityAlgorithm::None),
        (
            EncryptionAlgorithm::AesCbc128,
            IntegrityAlgorithm::HmacSha256_128,
        ),
        (
            EncryptionAlgorithm::AesCbc256,
            IntegrityAlgorithm::HmacSha1_96,
        ),
        (
            EncryptionAlgorithm::Null,
            IntegrityAlgorithm::HmacSha256_128,
        ),
    ];
    let dir = std::env::temp_dir().join(format!("realm-ipsec-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (encryption, integrity)) in suites.into_iter().enumerate() {
        let s = Suite {
            protocol: IpsecProtocol::Esp,
            encryption,
            integrity,
            mode: Mode::Tunnel,
            esn: false,
            encap: false,
        };
        let (mut a, out, _, _, now) = pair(s);
        let dport = 40000 + i as u16;
        let packets: Vec<Vec<u8>> = (0..3)
            .map(|n| {
                a.seal(
                    now,
                    out,
                    &udp_packet(HOST_A, HOST_B, 1234, dport, &[n; 50], false),
                )
                .unwrap()
            })
            .collect();
        let line = wireshark::esp_sa_line(a.sa(out).unwrap()).unwrap();
        let file = dir.join(format!("esp{i}.pcap"));
        std::fs::write(&file, pcap(&packets)).unwrap();
        let output = Command::new("tshark")
            .env("HOME", &dir) // no personal Wireshark profile
            .args(["-n", "-r"])
            .arg(&file)
            .args([
                "-o",
                "esp.enable_encryption_decode:TRUE",
                "-o",
                "esp.enable_authentication_check:TRUE",
                "-o",
                &format!("uat:esp_sa:{line}"),
                "-T",
                "fields",
                "-e",
                "udp.dstport",
                "-e",
                "esp.icv_good",
            ])
            .output()
            .expect("tshark is required (scripts/install-deps)");
        assert!(
            output.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{encryption:?}: {text}");
        for l in lines {
            let mut f = l.split('\t');
            assert_eq!(
                f.next(),
                Some(dport.to_string().as_str()),
                "{encryption:?}/{integrity:?}: not decrypted: {text}\n{line}"
            );
            let icv = f.next().unwrap_or("");
            if integrity != IntegrityAlgorithm::None {
                assert!(
                    icv == "1" || icv == "True",
                    "{encryption:?}/{integrity:?}: ICV not good: {l:?}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
