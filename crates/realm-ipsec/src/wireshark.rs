//! Exports ESP SA keys in the format of Wireshark's `esp_sa` UAT file
//! (`~/.config/wireshark/esp_sa`, or `tshark -o "uat:esp_sa:..."`), so
//! tshark can decrypt Realm's ESP. Strings are those of Wireshark 4.0
//! (`epan/dissectors/packet-ipsec.c`). Handle the output as secret.

use crate::crypto::{EncryptionAlgorithm, IntegrityAlgorithm};
use crate::engine::Ipsec;
use crate::sa::{IpsecProtocol, SecurityAssociation};

/// Why an SA cannot be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// AH SAs have no `esp_sa` entry.
    #[error("not an ESP SA")]
    NotEsp,
    /// Wireshark 4.0 has no ESP ChaCha20-Poly1305 decryption.
    #[error("{0} is not supported by Wireshark 4.0's ESP dissector")]
    Unsupported(&'static str),
}

fn encryption_name(a: EncryptionAlgorithm) -> Result<&'static str, ExportError> {
    Ok(match a {
        EncryptionAlgorithm::Null => "NULL",
        EncryptionAlgorithm::AesCbc128 | EncryptionAlgorithm::AesCbc256 => "AES-CBC [RFC3602]",
        EncryptionAlgorithm::AesGcm128 | EncryptionAlgorithm::AesGcm256 => {
            "AES-GCM with 16 octet ICV [RFC4106]"
        }
        EncryptionAlgorithm::ChaCha20Poly1305 => {
            return Err(ExportError::Unsupported("chacha20-poly1305"));
        }
    })
}

fn integrity_name(a: IntegrityAlgorithm) -> &'static str {
    match a {
        IntegrityAlgorithm::None => "NULL",
        IntegrityAlgorithm::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
        IntegrityAlgorithm::HmacSha256_128 => "HMAC-SHA-256-128 [RFC4868]",
    }
}

fn hex_or_empty(k: &crate::crypto::SecretKey) -> String {
    if k.is_empty() {
        String::new()
    } else {
        format!("0x{}", k.to_hex())
    }
}

/// One `esp_sa` line for an ESP SA:
/// `"IPv4","src","dst","0xSPI","ENC","0xkey","AUTH","0xkey"`.
pub fn esp_sa_line(sa: &SecurityAssociation) -> Result<String, ExportError> {
    let c = sa.config();
    if c.protocol != IpsecProtocol::Esp {
        return Err(ExportError::NotEsp);
    }
    Ok(format!(
        "\"IPv4\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"{}\",\"{}\",\"{}\"",
        c.src,
        c.dst,
        c.spi.0,
        encryption_name(c.encryption)?,
        hex_or_empty(&c.encryption_key),
        integrity_name(c.integrity),
        hex_or_empty(&c.integrity_key),
    ))
}

/// The `esp_sa` file for every exportable ESP SA of the engine (one line each).
pub fn esp_sa_file(engine: &Ipsec) -> String {
    let mut lines: Vec<(u64, String)> = engine
        .sas()
        .filter_map(|sa| esp_sa_line(sa).ok().map(|l| (sa.id().0, l)))
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}
