//! ESP seal/open throughput beside the provider's raw AEAD seal on the same
//! sizes, in the same run. `seal_into` reuses its output buffer (one copy of
//! the payload, encrypted in place), which is how a daemon drives it.
//!
//!   CARGO_TARGET_DIR=/work/target-ipsec-core cargo bench -p realm-ipsec
// Test code: unwrap/panic report failures; `Instant::now` only starts the fake
// clock handed to the engine (which itself never reads a clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::aead;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use realm_ipsec::{
    Direction, EncryptionAlgorithm, EngineConfig, Inbound, IntegrityAlgorithm, Ipsec, MAX_HEADROOM,
    Mode, SaConfig, SecretKey, Spi,
};

const SIZES: [usize; 3] = [64, 512, 1400];

fn packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[..20].copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 5, 10, 2, 0, 7,
    ]);
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

fn sa(
    direction: Direction,
    encryption: EncryptionAlgorithm,
    integrity: IntegrityAlgorithm,
) -> SaConfig {
    SaConfig {
        spi: Spi(0x1000),
        direction,
        mode: Mode::Tunnel,
        src: [192, 0, 2, 1].into(),
        dst: [198, 51, 100, 2].into(),
        encryption,
        encryption_key: SecretKey::new(vec![7; encryption.key_len()]),
        integrity,
        integrity_key: SecretKey::new(vec![9; integrity.key_len()]),
        path_mtu: 9000,
        replay_window: 4096,
        ..SaConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let suites = [
        (
            "aes128gcm",
            EncryptionAlgorithm::AesGcm128,
            IntegrityAlgorithm::None,
        ),
        (
            "aes128cbc-sha256",
            EncryptionAlgorithm::AesCbc128,
            IntegrityAlgorithm::HmacSha256_128,
        ),
    ];
    let mut g = c.benchmark_group("esp");
    for len in SIZES {
        g.throughput(Throughput::Bytes(len as u64));
        // The provider alone: AES-128-GCM seal in place, separate tag.
        let key =
            aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &[7; 16]).unwrap());
        let mut buf = vec![0u8; len];
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("raw-aead-seal/aes128gcm", len), |b| {
            b.iter(|| {
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aead::Aad::from(&[0u8; 8]),
                        &mut buf,
                    )
                    .unwrap();
                let _ = black_box(tag);
            })
        });
        for (name, enc, integ) in suites {
            let pkt = packet(len);
            let mut tx = Ipsec::new(EngineConfig::default());
            let out_id = tx.add_sa(now, sa(Direction::Outbound, enc, integ)).unwrap();
            let mut out = Vec::with_capacity(len + 128);
            g.bench_function(BenchmarkId::new(format!("seal/{name}"), len), |b| {
                b.iter(|| {
                    tx.seal_into(now, out_id, black_box(&pkt), &mut out)
                        .unwrap();
                    black_box(out.len());
                })
            });
            // Zero-copy: the packet sits after MAX_HEADROOM bytes, as a
            // daemon reading from TUN would place it. Each round restores
            // the 20-byte IPv4 header (the payload is left as ciphertext:
            // its content does not matter to the cost).
            let mut buf = vec![0u8; MAX_HEADROOM];
            buf.extend_from_slice(&pkt);
            let header: [u8; 20] = pkt[..20].try_into().unwrap();
            g.bench_function(
                BenchmarkId::new(format!("seal-in-place/{name}"), len),
                |b| {
                    b.iter(|| {
                        buf.truncate(MAX_HEADROOM + len);
                        buf[MAX_HEADROOM..MAX_HEADROOM + 20].copy_from_slice(&header);
                        let start = tx
                            .seal_in_place(now, out_id, &mut buf, MAX_HEADROOM)
                            .unwrap();
                        black_box(start);
                    })
                },
            );
            // Open: a stream of distinct packets (the replay window rejects
            // repeats), prepared outside the timed loop, cycled through
            // fresh receivers.
            const BATCH: usize = 4096;
            let sealed: Vec<Vec<u8>> = (0..BATCH)
                .map(|_| tx.seal(now, out_id, &pkt).unwrap())
                .collect();
            let mut rx = Ipsec::new(EngineConfig::default());
            rx.add_sa(now, sa(Direction::Inbound, enc, integ)).unwrap();
            let mut i = 0usize;
            let mut scratch = Vec::with_capacity(len + 128);
            g.bench_function(BenchmarkId::new(format!("open/{name}"), len), |b| {
                b.iter(|| {
                    if i == BATCH {
                        i = 0;
                        rx = Ipsec::new(EngineConfig::default());
                        rx.add_sa(now, sa(Direction::Inbound, enc, integ)).unwrap();
                    }
                    scratch.clear();
                    scratch.extend_from_slice(&sealed[i]);
                    i += 1;
                    let r = rx.open_in_place(now, &mut scratch).unwrap();
                    assert!(matches!(r, Inbound::Packet(_)));
                    black_box(r);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
