//! Published test vectors through Realm's transforms and ESP framing.
//!
//! - AES-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation", test
//!   cases 3, 4 (AES-128) and 15 (AES-256), run as RFC 4106 ESP: nonce =
//!   salt (first 4 IV bytes) | explicit IV (last 8).
//! - ChaCha20-Poly1305: RFC 8439 s2.8.2, whose 12-byte AAD and nonce have
//!   exactly the RFC 7634 ESN shape (SPI | seq-hi | seq-low; salt | IV).
//! - AES-CBC: RFC 3602 s4 cases 1 and 2.
//! - HMAC: RFC 4231 / RFC 2202 truncated (unit tests in src/crypto.rs).
//!
//! Each vector is checked with the raw provider call Realm makes and, where
//! the vector's shape allows, through a full ESP seal/open.
// Test code: unwrap/panic report failures; `Instant::now` only starts the fake
// clock handed to the engine (which itself never reads a clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use aws_lc_rs::{aead, cipher};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

fn aead_case(
    alg: &'static aead::Algorithm,
    key: &str,
    nonce: &str,
    aad: &str,
    pt: &str,
    ct: &str,
    tag: &str,
) {
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &h(key)).unwrap());
    let n: [u8; 12] = h(nonce).try_into().unwrap();
    let mut data = h(pt);
    let t = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(n),
            aead::Aad::from(h(aad)),
            &mut data,
        )
        .unwrap();
    assert_eq!(hex::encode(&data), hex::encode(h(ct)));
    assert_eq!(hex::encode(t.as_ref()), hex::encode(h(tag)));
}

const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";

#[test]
fn gcm_spec_test_cases() {
    // Test case 3.
    aead_case(
        &aead::AES_128_GCM,
        "feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "",
        GCM_P,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
        "4d5c2af327cd64a62cf35abd2ba6fab4",
    );
    // Test case 4 (60-byte plaintext, 20-byte AAD).
    aead_case(
        &aead::AES_128_GCM,
        "feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        &GCM_P[..120],
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    );
    // Test case 15 (AES-256, no AAD).
    aead_case(
        &aead::AES_256_GCM,
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "",
        GCM_P,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
        "b094dac5d93471bdec1a502270e3cc6c",
    );
}

#[test]
fn chacha20_poly1305_rfc8439_2_8_2_in_esp_esn_shape() {
    aead_case(
        &aead::CHACHA20_POLY1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        "50515253c0c1c2c3c4c5c6c7",
        &hex::encode(b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."),
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
        "1ae10b594f09e26a7e902ecbd0600691",
    );
}

#[test]
fn aes_cbc_rfc3602_cases_1_and_2() {
    for (key, iv, pt, ct) in [
        (
            "06a9214036b8a15b512e03d534120006",
            "3dafba429d9eb430b422da802c9fac41",
            hex::encode(b"Single block msg"),
            "e353779c1079aeb82708942dbe77181a",
        ),
        (
            "c286696d887c9aa0611bbb3e2025a45a",
            "562e17996d093d28ddb3ba695a2e6f58",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".to_string(),
            "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
        ),
    ] {
        let enc = cipher::EncryptingKey::cbc(
            cipher::UnboundCipherKey::new(&cipher::AES_128, &h(key)).unwrap(),
        )
        .unwrap();
        let ivb: [u8; 16] = h(iv).try_into().unwrap();
        let mut data = h(&pt);
        enc.less_safe_encrypt(&mut data, cipher::EncryptionContext::Iv128(ivb.into()))
            .unwrap();
        assert_eq!(hex::encode(&data), ct);
    }
}

/// Realm's AES-CBC ESP framing: the IV comes from the injected random source
/// (here RFC 3602 case 2's), then the padded plaintext CBC-encrypted, then
/// HMAC-SHA-256-128 over header, IV and ciphertext (RFC 4303 s2, s3.3.2).
#[test]
fn realm_esp_cbc_uses_injected_iv_and_provider_cbc() {
    use realm_ipsec::*;
    let iv = h("562e17996d093d28ddb3ba695a2e6f58");
    let iv2 = iv.clone();
    let mut e = Ipsec::with_random(
        EngineConfig::default(),
        Box::new(move |d: &mut [u8]| d.copy_from_slice(&iv2)),
    );
    let now = std::time::Instant::now();
    let id = e
        .add_sa(
            now,
            SaConfig {
                spi: Spi(0x1234),
                direction: Direction::Outbound,
                mode: Mode::Tunnel,
                src: [192, 0, 2, 1].into(),
                dst: [192, 0, 2, 2].into(),
                encryption: EncryptionAlgorithm::AesCbc128,
                encryption_key: SecretKey::new(h("c286696d887c9aa0611bbb3e2025a45a")),
                integrity: IntegrityAlgorithm::HmacSha256_128,
                integrity_key: SecretKey::new(vec![1; 32]),
                ..SaConfig::default()
            },
        )
        .unwrap();
    // Check IV placement, padding and CBC chaining on a real packet against
    // the provider (the RFC 3602 key and IV, checked above).
    let mut pkt = vec![
        0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    pkt.extend_from_slice(&[0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3, 4]);
    let sealed = e.seal(now, id, &pkt).unwrap();
    assert_eq!(&sealed[28..44], &iv[..]);
    let mut plain = pkt.clone();
    plain.extend(1..=14u8); // RFC 4303 s2.4 default padding to 48 bytes
    plain.extend_from_slice(&[14, 4]); // pad length, next header IPv4
    let enc = cipher::EncryptingKey::cbc(
        cipher::UnboundCipherKey::new(&cipher::AES_128, &h("c286696d887c9aa0611bbb3e2025a45a"))
            .unwrap(),
    )
    .unwrap();
    let ivb: [u8; 16] = iv.try_into().unwrap();
    enc.less_safe_encrypt(&mut plain, cipher::EncryptionContext::Iv128(ivb.into()))
        .unwrap();
    assert_eq!(&sealed[44..44 + 48], &plain[..]);
    // HMAC-SHA-256-128 over ESP header | IV | ciphertext.
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[1; 32]);
    let tag = aws_lc_rs::hmac::sign(&k, &sealed[20..92]);
    assert_eq!(&sealed[92..], &tag.as_ref()[..16]);
}
