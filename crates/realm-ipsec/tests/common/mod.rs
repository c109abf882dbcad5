//! Shared helpers for realm-ipsec integration tests.
#![allow(dead_code, unreachable_pub)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::net::Ipv4Addr;

use aws_lc_rs::{aead, hmac};
use std::time::Instant;

use realm_ipsec::{
    Direction, EncryptionAlgorithm, EngineConfig, IntegrityAlgorithm, Ipsec, IpsecProtocol, Mode,
    SaConfig, SaId, SecretKey, Spi, UdpEncap,
};

pub const GW_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const GW_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
pub const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 7);

/// Deterministic keying material.
pub fn key(len: usize, seed: u8) -> SecretKey {
    SecretKey::new(
        (0..len)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
            .collect(),
    )
}

/// A deterministic "random" source for CBC IVs.
pub fn counter_rng() -> Box<dyn realm_ipsec::RandomSource> {
    let mut n = 0u8;
    Box::new(move |d: &mut [u8]| {
        for b in d {
            n = n.wrapping_add(1);
            *b = n.wrapping_mul(167);
        }
    })
}

pub fn engine() -> Ipsec {
    Ipsec::with_random(EngineConfig::default(), counter_rng())
}

/// Every (protocol, encryption, integrity) combination Realm supports.
pub fn suites() -> Vec<(IpsecProtocol, EncryptionAlgorithm, IntegrityAlgorithm)> {
    let mut v = Vec::new();
    for e in EncryptionAlgorithm::ALL {
        for i in IntegrityAlgorithm::ALL {
            if e.is_aead() == (i == IntegrityAlgorithm::None) {
                v.push((IpsecProtocol::Esp, e, i));
            }
        }
    }
    v.push((
        IpsecProtocol::Ah,
        EncryptionAlgorithm::Null,
        IntegrityAlgorithm::HmacSha1_96,
    ));
    v.push((
        IpsecProtocol::Ah,
        EncryptionAlgorithm::Null,
        IntegrityAlgorithm::HmacSha256_128,
    ));
    v
}

#[derive(Clone, Copy, Debug)]
pub struct Suite {
    pub protocol: IpsecProtocol,
    pub encryption: EncryptionAlgorithm,
    pub integrity: IntegrityAlgorithm,
    pub mode: Mode,
    pub esn: bool,
    pub encap: bool,
}

/// The SA (same keys both ends) for `suite`, in `direction`.
pub fn sa_config(s: Suite, direction: Direction) -> SaConfig {
    let (src, dst) = match s.mode {
        Mode::Tunnel => (GW_A, GW_B),
        Mode::Transport => (HOST_A, HOST_B),
    };
    SaConfig {
        spi: Spi(0x1000_0001),
        direction,
        protocol: s.protocol,
        mode: s.mode,
        src,
        dst,
        encryption: s.encryption,
        encryption_key: key(s.encryption.key_len(), 7),
        integrity: s.integrity,
        integrity_key: key(s.integrity.key_len(), 9),
        esn: s.esn,
        udp_encap: s.encap.then_some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        }),
        ..SaConfig::default()
    }
}

/// A sender and a receiver engine sharing one SA.
pub fn pair(s: Suite) -> (Ipsec, SaId, Ipsec, SaId, Instant) {
    let now = Instant::now();
    let mut a = engine();
    let mut b = engine();
    let out = a.add_sa(now, sa_config(s, Direction::Outbound)).unwrap();
    let inb = b.add_sa(now, sa_config(s, Direction::Inbound)).unwrap();
    (a, out, b, inb, now)
}

/// Every suite in both modes, with and without ESN and UDP encapsulation.
pub fn all_suites() -> Vec<Suite> {
    let mut v = Vec::new();
    for (protocol, encryption, integrity) in suites() {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for esn in [false, true] {
                for encap in [false, true] {
                    if encap && protocol == IpsecProtocol::Ah {
                        continue;
                    }
                    v.push(Suite {
                        protocol,
                        encryption,
                        integrity,
                        mode,
                        esn,
                        encap,
                    });
                }
            }
        }
    }
    v
}

/// IPv4 checksum helper.
pub fn checksum(data: &[u8], mut acc: u32) -> u16 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An IPv4/UDP datagram with a correct UDP checksum.
pub fn udp_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    df: bool,
) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![0x45, 0x00];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, if df { 0x40 } else { 0 }, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p[..20], 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    pseudo.extend_from_slice(&p[20..]);
    let mut c = checksum(&pseudo, 0);
    if c == 0 {
        c = 0xffff;
    }
    p[26..28].copy_from_slice(&c.to_be_bytes());
    p
}

/// The inner packet for `suite` (tunnel: host to host; transport: SA endpoints).
pub fn inner_packet(s: Suite, payload: &[u8]) -> Vec<u8> {
    match s.mode {
        Mode::Tunnel => udp_packet(HOST_A, HOST_B, 1234, 5678, payload, false),
        Mode::Transport => udp_packet(HOST_A, HOST_B, 1234, 5678, payload, false),
    }
}

// ESP sealed by hand (tests/after_icv.rs and the ipsec_inbound fuzz target):
// RFC 4303 s2/s3.3.2, RFC 4868 (HMAC-SHA-256-128), RFC 4106 (AES-GCM: nonce =
// salt | explicit IV, AAD = SPI | sequence number), with the keys of
// `sa_config`, around any plaintext (its trailer included), so every packet
// passes the ICV and reaches the checks after it.

pub const ESP_SPI: u32 = 0x1000_0001;

/// The two sealings the test can do by hand: ESP-NULL with HMAC-SHA-256-128
/// (the plaintext visible) and AES-GCM-128 (an AEAD).
pub fn hand_suite(gcm: bool, tunnel: bool) -> Suite {
    Suite {
        protocol: IpsecProtocol::Esp,
        encryption: if gcm {
            EncryptionAlgorithm::AesGcm128
        } else {
            EncryptionAlgorithm::Null
        },
        integrity: if gcm {
            IntegrityAlgorithm::None
        } else {
            IntegrityAlgorithm::HmacSha256_128
        },
        mode: if tunnel {
            Mode::Tunnel
        } else {
            Mode::Transport
        },
        esn: false,
        encap: false,
    }
}

/// An IPv4 header (no options) for `payload`, protocol 50, checksum filled.
pub fn hand_outer(s: Suite, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = match s.mode {
        Mode::Tunnel => (GW_A, GW_B),
        Mode::Transport => (HOST_A, HOST_B),
    };
    let len = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 50, 0, 0];
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p, 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An ESP packet around `plaintext` (which carries its own trailer), sealed
/// with the keys of `sa_config(s, ..)`.
pub fn hand_seal(s: Suite, seq: u32, plaintext: &[u8]) -> Vec<u8> {
    let cfg = sa_config(s, Direction::Inbound);
    let mut esp = Vec::new();
    esp.extend_from_slice(&ESP_SPI.to_be_bytes());
    esp.extend_from_slice(&seq.to_be_bytes());
    if s.encryption == EncryptionAlgorithm::AesGcm128 {
        let material = cfg.encryption_key.expose();
        let (k, salt) = material.split_at(16);
        let iv = u64::from(seq).to_be_bytes();
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(salt);
        nonce[4..].copy_from_slice(&iv);
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, k).unwrap());
        let mut in_out = plaintext.to_vec();
        let aad = esp[..8].to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut in_out,
        )
        .unwrap();
        esp.extend_from_slice(&iv);
        esp.extend_from_slice(&in_out);
    } else {
        esp.extend_from_slice(plaintext);
        let key = hmac::Key::new(hmac::HMAC_SHA256, cfg.integrity_key.expose());
        let tag = hmac::sign(&key, &esp);
        esp.extend_from_slice(&tag.as_ref()[..16]);
    }
    hand_outer(s, &esp)
}

/// A well-formed plaintext: `inner`, padding 1, 2, 3, ... to a 4-byte
/// boundary (RFC 4303 s2.4), pad length and next header.
pub fn valid_plaintext(inner: &[u8], next_header: u8) -> Vec<u8> {
    let mut p = inner.to_vec();
    let pad = (4 - (inner.len() + 2) % 4) % 4;
    p.extend((1..=pad).map(|i| i as u8));
    p.push(pad as u8);
    p.push(next_header);
    p
}

/// Whether a plaintext's trailer is self-consistent: a pad length no larger
/// than what precedes it, and padding bytes 1, 2, 3, ... (RFC 4303 s2.4).
pub fn trailer_consistent(p: &[u8]) -> bool {
    if p.len() < 2 {
        return false;
    }
    let n = usize::from(p[p.len() - 2]);
    let Some(start) = (p.len() - 2).checked_sub(n) else {
        return false;
    };
    p[start..p.len() - 2]
        .iter()
        .enumerate()
        .all(|(i, b)| usize::from(*b) == i + 1)
}
