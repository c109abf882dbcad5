//! Known answers for realm-ike's crypto and IKEv1 key schedule.
//!
//! **Published vectors** (../shared/vectors/ike.md gathers them):
//! - IKEv1 SKEYID, SKEYID_d, SKEYID_a and SKEYID_e for pre-shared-key and for signature
//!   authentication with HMAC-SHA1 (the SP 800-135 IKEv1 KDF inputs published with Libreswan's
//!   CAVP tests).
//! - RFC 5903 section 8: ECDH on P-256 (i, r, g^i, g^r and g^ir, all checked) and P-384 (i, r and
//!   g^ir; g^i and g^r are derived from i and r, not compared with the RFC's printed values,
//!   which are reported to carry a typo), through the KE payload encoding (x | y, secret x).
//! - The MODP primes: RFC 3526 section 3 (group 14) and RFC 2409 section 6.2 (group 2), copied
//!   from the RFC texts into this file and compared with the prime the arithmetic uses.
//! - AES-CBC: RFC 3602 section 4 case 2 (AES-128) and NIST SP 800-38A F.2.5 (AES-256), through
//!   the key schedule's [`EncryptionKey`].
//!
//! **Self-consistency checks, not published vectors** (none exist for these; issue 12 makes
//! strongSwan's logged keys and tshark's decryption the cross-check once the exchanges exist):
//! RFC 2409 Appendix B key expansion, the Phase 1 and Phase 2 IVs, and Quick Mode KEYMAT with and
//! without PFS. Each is recomputed here straight from the RFC's formula with aws-lc-rs's `hmac` and
//! `digest` (not through realm-ike), starting where possible from the published SKEYID_e/_d above.
//! MODP agreement is checked the same way: two key pairs must agree, and invalid peer values are
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::{digest, hmac};
use realm_ike::crypto::{CryptoError, DhError};
use realm_ike::ikev1::keys::{
    EncryptionKey, IpsecProtocol, Iv, KeymatInputs, Phase1Auth, Phase1Inputs, Phase1Keys,
};
use realm_ike::{
    AwsLcCrypto, CipherAlgorithm, Crypto, DhGroup, DhKeyPair, HashAlgorithm, PrfAlgorithm,
    SharedSecret,
};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn cookie(s: &str) -> [u8; 8] {
    h(s).try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// IKEv1 SKEYID (published)

struct SkeyidVector {
    cky_i: &'static str,
    cky_r: &'static str,
    ni: &'static str,
    nr: &'static str,
    psk: Option<&'static str>,
    g_xy: &'static str,
    skeyid: &'static str,
    skeyid_d: &'static str,
    skeyid_a: &'static str,
    skeyid_e: &'static str,
}

const PSK_VECTOR: SkeyidVector = SkeyidVector {
    cky_i: "83d374c30b3b5082",
    cky_r: "5afc0da06c728029",
    ni: "b9a2d0e922dc66dd",
    nr: "2130166863b5ddef",
    psk: Some("75"),
    g_xy: "739003ba2c11c982946c65e26acf661fbf8ebb78011a9fead79efa12fe3e71cc",
    skeyid: "62b04d112877e442fc3282fc37c076997718a0b9",
    skeyid_d: "369e5aad1bdb5faf6a3d929d500cdc236710a9ab",
    skeyid_a: "588e957d8d790d093b3a39f121473473af78e9bb",
    skeyid_e: "cd74b0c048219db81384d3fda8f6cda51e398a2b",
};

const SIGNATURE_VECTOR: SkeyidVector = SkeyidVector {
    cky_i: "8c3bcd3a69831d7f",
    cky_r: "d2d9a7ff4fbe95a7",
    ni: "69a62284195f1680",
    nr: "80c94ba25c8abda5",
    psk: None,
    g_xy: "8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb",
    skeyid: "707197817fb2d90cf54d1842606bdea59b9f4823",
    skeyid_d: "384be709a8a5e63c3ed160cfe3921c4b37d5b32d",
    skeyid_a: "48b327575abe3adba0f279849e289022a13e2b47",
    skeyid_e: "a4a415c8e0c38c0da847c356cc61c24df8025560",
};

fn phase1_keys(v: &SkeyidVector) -> Phase1Keys {
    let (ni, nr) = (h(v.ni), h(v.nr));
    let psk = v.psk.map(h);
    let g_xy = SharedSecret::from_bytes(h(v.g_xy));
    let auth = match &psk {
        Some(psk) => Phase1Auth::PreSharedKey(psk),
        None => Phase1Auth::Signature,
    };
    let inputs = Phase1Inputs {
        prf: PrfAlgorithm::HmacSha1,
        auth,
        ni_b: &ni,
        nr_b: &nr,
        g_xy: &g_xy,
        cky_i: cookie(v.cky_i),
        cky_r: cookie(v.cky_r),
    };
    Phase1Keys::derive(&AwsLcCrypto::new(), &inputs).unwrap()
}

fn check_skeyid_vector(v: &SkeyidVector) {
    let keys = phase1_keys(v);
    assert_eq!(keys.prf(), PrfAlgorithm::HmacSha1);
    assert_eq!(hex::encode(keys.skeyid().expose()), v.skeyid, "SKEYID");
    assert_eq!(
        hex::encode(keys.skeyid_d().expose()),
        v.skeyid_d,
        "SKEYID_d"
    );
    assert_eq!(
        hex::encode(keys.skeyid_a().expose()),
        v.skeyid_a,
        "SKEYID_a"
    );
    assert_eq!(
        hex::encode(keys.skeyid_e().expose()),
        v.skeyid_e,
        "SKEYID_e"
    );
}

#[test]
fn skeyid_pre_shared_key_vector() {
    check_skeyid_vector(&PSK_VECTOR);
}

#[test]
fn skeyid_signature_vector() {
    check_skeyid_vector(&SIGNATURE_VECTOR);
}

/// The two authentication methods give different SKEYIDs from the same inputs (so the vectors
/// above really exercise two paths).
#[test]
fn skeyid_depends_on_the_authentication_method() {
    let mut as_signature = PSK_VECTOR;
    as_signature.psk = None;
    let psk = phase1_keys(&PSK_VECTOR);
    let sig = phase1_keys(&as_signature);
    assert_ne!(psk.skeyid().expose(), sig.skeyid().expose());
}

// ---------------------------------------------------------------------------------------------
// RFC 5903 section 8 (published)

const P256_I: &str = "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433";
const P256_GI: &str = "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180
                       5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3";
const P256_R: &str = "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53";
const P256_GR: &str = "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
                       56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB";
const P256_GIR: &str = "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE";

const P384_I: &str = "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655
                      E35B538041E649EE3FAEF896783AB194";
const P384_R: &str = "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942
                      E0308312916B8ED2960E4BD55A7448FC";
const P384_GIR: &str = "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4
                        D603135569B9E9D09CF5D4A270F59746";

#[test]
fn rfc5903_p256() {
    let c = AwsLcCrypto::new();
    let i = c
        .key_pair_from_private(DhGroup::Ecp256, &h(P256_I))
        .unwrap();
    let r = c
        .key_pair_from_private(DhGroup::Ecp256, &h(P256_R))
        .unwrap();
    // The KE payload form: x | y, no 0x04 prefix (RFC 5903 section 7).
    assert_eq!(i.public_value(), h(P256_GI).as_slice(), "g^i");
    assert_eq!(r.public_value(), h(P256_GR).as_slice(), "g^r");
    // The shared secret is x alone (RFC 5903 section 9), both ways.
    let gir_i = c.agree(&i, &h(P256_GR)).unwrap();
    let gir_r = c.agree(&r, &h(P256_GI)).unwrap();
    assert_eq!(gir_i.expose(), h(P256_GIR).as_slice(), "g^ir (initiator)");
    assert_eq!(gir_r.expose(), h(P256_GIR).as_slice(), "g^ir (responder)");
}

#[test]
fn rfc5903_p384() {
    let c = AwsLcCrypto::new();
    let i = c
        .key_pair_from_private(DhGroup::Ecp384, &h(P384_I))
        .unwrap();
    let r = c
        .key_pair_from_private(DhGroup::Ecp384, &h(P384_R))
        .unwrap();
    assert_eq!(i.public_value().len(), 96);
    assert_eq!(r.public_value().len(), 96);
    let gir_i = c.agree(&i, r.public_value()).unwrap();
    let gir_r = c.agree(&r, i.public_value()).unwrap();
    assert_eq!(gir_i.expose(), h(P384_GIR).as_slice(), "g^ir (initiator)");
    assert_eq!(gir_r.expose(), h(P384_GIR).as_slice(), "g^ir (responder)");
}

#[test]
fn ecp_peer_values_off_the_curve_or_of_the_wrong_length_are_refused() {
    let c = AwsLcCrypto::new();
    for group in [DhGroup::Ecp256, DhGroup::Ecp384] {
        let ours = c.generate_key_pair(group).unwrap();
        let good = c.generate_key_pair(group).unwrap().public_value().to_vec();
        assert!(c.agree(&ours, &good).is_ok(), "{group}: the valid point");
        let len = group.public_value_len();

        // y changed in its last bit: (x, y') is not on the curve.
        let mut off = good.clone();
        *off.last_mut().unwrap() ^= 1;
        // All zeros (what a point at infinity might be sent as) and all ones (coordinates
        // above the field prime).
        for (what, bad) in [
            ("y flipped", off),
            ("zeros", vec![0u8; len]),
            ("ones", vec![0xFF; len]),
        ] {
            assert_eq!(
                c.agree(&ours, &bad).unwrap_err(),
                CryptoError::Dh(DhError::NotOnCurve { group }),
                "{group}: {what}"
            );
        }

        // With the 0x04 prefix (a SEC1 point, not a KE payload), x alone, and one byte short.
        let mut prefixed = vec![0x04];
        prefixed.extend_from_slice(&good);
        for bad in [
            prefixed,
            good[..len / 2].to_vec(),
            good[..len - 1].to_vec(),
            vec![],
        ] {
            assert_eq!(
                c.agree(&ours, &bad).unwrap_err(),
                CryptoError::Dh(DhError::WrongLength {
                    group,
                    expected: len,
                    got: bad.len()
                }),
                "{group}: {} bytes",
                bad.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MODP (primes published; agreement self-consistent)

/// RFC 3526 section 3, "2048-bit MODP Group", as printed there.
const RFC3526_GROUP14_PRIME: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AACAA68 FFFFFFFF FFFFFFFF";

/// RFC 2409 section 6.2, "Second Oakley Group", as printed there.
const RFC2409_GROUP2_PRIME: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE65381
    FFFFFFFF FFFFFFFF";

#[test]
fn modp_primes_are_the_rfcs() {
    assert_eq!(
        DhGroup::Modp2048.modp_prime().unwrap(),
        h(RFC3526_GROUP14_PRIME),
        "group 14 prime vs RFC 3526 section 3"
    );
    assert_eq!(
        DhGroup::Modp1024.modp_prime().unwrap(),
        h(RFC2409_GROUP2_PRIME),
        "group 2 prime vs RFC 2409 section 6.2"
    );
    assert_eq!(DhGroup::Ecp256.modp_prime(), None);
}

/// Big-endian `p + delta` with carries and borrows carried through (`p` is far from 0 and from
/// 2^n, so the result keeps `p`'s length).
fn p_plus(p: &[u8], delta: i16) -> Vec<u8> {
    let mut v = p.to_vec();
    let mut carry = i32::from(delta);
    for byte in v.iter_mut().rev() {
        let sum = i32::from(*byte) + carry;
        *byte = sum.rem_euclid(256) as u8;
        carry = sum.div_euclid(256);
        if carry == 0 {
            break;
        }
    }
    assert_eq!(carry, 0, "p + {delta} overflows the prime's length");
    v
}

fn modp_agreement_and_refusals(group: DhGroup, rfc_prime: &str) {
    let c = AwsLcCrypto::new();
    let a = c.generate_key_pair(group).unwrap();
    let b = c.generate_key_pair(group).unwrap();
    let len = group.public_value_len();
    assert_eq!(a.public_value().len(), len, "public values are left-padded");
    assert_ne!(a.public_value(), b.public_value());
    let ab = c.agree(&a, b.public_value()).unwrap();
    let ba = c.agree(&b, a.public_value()).unwrap();
    assert_eq!(ab.len(), group.shared_secret_len());
    assert_eq!(ab.expose(), ba.expose(), "{group}: both sides agree");
    assert_ne!(ab.expose(), a.public_value());

    let p = h(rfc_prime);
    // The helper itself: p + 1 - 1 is p, and p + 1 carries through p's trailing one bits.
    assert_eq!(p_plus(&p_plus(&p, 1), -1), p);
    assert!(p_plus(&p, 1).ends_with(&[0u8; 8]));
    let mut one = vec![0u8; len];
    *one.last_mut().unwrap() = 1;
    for (what, bad) in [
        ("0", vec![0u8; len]),
        ("1", one),
        ("p-1", p_plus(&p, -1)),
        ("p", p.clone()),
        ("p+1", p_plus(&p, 1)),
        ("2^n-1", vec![0xFF; len]),
    ] {
        assert_eq!(
            c.agree(&a, &bad).unwrap_err(),
            CryptoError::Dh(DhError::OutOfRange { group }),
            "{group}: {what}"
        );
    }
    // 2 and p-2 are the range's ends and are taken.
    let mut two = vec![0u8; len];
    *two.last_mut().unwrap() = 2;
    assert!(c.agree(&a, &two).is_ok(), "{group}: 2");
    assert!(c.agree(&a, &p_plus(&p, -2)).is_ok(), "{group}: p-2");

    // A value not padded to the prime's length, or padded once too often.
    let short = b.public_value()[1..].to_vec();
    let mut long = vec![0u8];
    long.extend_from_slice(b.public_value());
    for bad in [short, long, vec![]] {
        assert_eq!(
            c.agree(&a, &bad).unwrap_err(),
            CryptoError::Dh(DhError::WrongLength {
                group,
                expected: len,
                got: bad.len()
            }),
            "{group}: {} bytes",
            bad.len()
        );
    }
}

#[test]
fn modp_2048_agreement_and_refusals() {
    modp_agreement_and_refusals(DhGroup::Modp2048, RFC3526_GROUP14_PRIME);
}

#[test]
fn modp_1024_agreement_and_refusals() {
    modp_agreement_and_refusals(DhGroup::Modp1024, RFC2409_GROUP2_PRIME);
}

/// Imported exponents give g^x: x = 1 gives the generator 2 and x = 2 gives 4, left-padded
/// (checks the public value encoding against values anyone can compute).
#[test]
fn modp_small_exponents_give_known_public_values() {
    let c = AwsLcCrypto::new();
    for group in [DhGroup::Modp1024, DhGroup::Modp2048] {
        for (x, gx) in [(1u8, 2u8), (2, 4), (3, 8)] {
            let kp = c.key_pair_from_private(group, &[x]).unwrap();
            let mut want = vec![0u8; group.public_value_len()];
            *want.last_mut().unwrap() = gx;
            assert_eq!(kp.public_value(), want.as_slice(), "{group}: 2^{x}");
        }
        // x = 0 would make the public value 1, which a peer must refuse: refused here too.
        assert_eq!(
            c.key_pair_from_private(group, &[0]).unwrap_err(),
            CryptoError::InvalidPrivateKey { group }
        );
        // (2^x)^y = 2^(xy): x = 3 with the peer's 2^5 = 32 gives 2^15.
        let kp = c.key_pair_from_private(group, &[3]).unwrap();
        let mut peer = vec![0u8; group.public_value_len()];
        *peer.last_mut().unwrap() = 32;
        let mut want = vec![0u8; group.shared_secret_len()];
        let n = want.len();
        want[n - 2..].copy_from_slice(&(1u16 << 15).to_be_bytes());
        assert_eq!(c.agree(&kp, &peer).unwrap().expose(), want.as_slice());
    }
}

// ---------------------------------------------------------------------------------------------
// AES-CBC (published)

#[test]
fn aes_cbc_through_the_encryption_key() {
    let c = AwsLcCrypto::new();
    // RFC 3602 section 4, case 2 (AES-128-CBC, two blocks).
    // NIST SP 800-38A F.2.5 (AES-256-CBC, first block).
    let cases = [
        (
            CipherAlgorithm::Aes128Cbc,
            "c286696d887c9aa0611bbb3e2025a45a",
            "562e17996d093d28ddb3ba695a2e6f58",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
        ),
        (
            CipherAlgorithm::Aes256Cbc,
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            "000102030405060708090a0b0c0d0e0f",
            "6bc1bee22e409f96e93d7e117393172a",
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6",
        ),
    ];
    for (cipher, key, iv, plain, ct) in cases {
        let iv = Iv::new(&h(iv)).unwrap();
        let key = h(key);
        let mut data = h(plain);
        c.encrypt_cbc(cipher, &key, iv.as_bytes(), &mut data)
            .unwrap();
        assert_eq!(hex::encode(&data), ct, "{cipher} encrypt");
        c.decrypt_cbc(cipher, &key, iv.as_bytes(), &mut data)
            .unwrap();
        assert_eq!(hex::encode(&data), plain, "{cipher} decrypt");
    }
}

// ---------------------------------------------------------------------------------------------
// Appendix B, IVs and KEYMAT (self-consistency: recomputed from the RFC's formulas with
// aws-lc-rs directly; no published vectors exist)

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

#[test]
fn appendix_b_encryption_key_self_consistency() {
    let c = AwsLcCrypto::new();
    let keys = phase1_keys(&PSK_VECTOR);
    let skeyid_e = h(PSK_VECTOR.skeyid_e); // published, 20 bytes
    assert_eq!(keys.skeyid_e().expose(), skeyid_e.as_slice());

    // AES-128 needs 16 bytes: SKEYID_e (20) suffices, its first 16 bytes are Ka.
    let k128: EncryptionKey = keys.encryption_key(&c, CipherAlgorithm::Aes128Cbc).unwrap();
    assert_eq!(k128.cipher(), CipherAlgorithm::Aes128Cbc);
    assert_eq!(k128.expose(), &skeyid_e[..16]);

    // AES-256 needs 32: Ka = K1 | K2, K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1).
    let k1 = hmac_sha1(&skeyid_e, &[&[0u8]]);
    let k2 = hmac_sha1(&skeyid_e, &[&k1]);
    let ka = [k1.as_slice(), k2.as_slice()].concat();
    let k256 = keys.encryption_key(&c, CipherAlgorithm::Aes256Cbc).unwrap();
    assert_eq!(k256.expose(), &ka[..32]);
    // Not a prefix of SKEYID_e padded somehow: the expansion really ran.
    assert_ne!(&k256.expose()[..20], skeyid_e.as_slice());

    // With HMAC-SHA2-256 SKEYID_e is 32 bytes: AES-256 takes it whole, no expansion.
    let g_xy = SharedSecret::from_bytes(h(PSK_VECTOR.g_xy));
    let (ni, nr, psk) = (h(PSK_VECTOR.ni), h(PSK_VECTOR.nr), h("75"));
    let sha256 = Phase1Keys::derive(
        &c,
        &Phase1Inputs {
            prf: PrfAlgorithm::HmacSha256,
            auth: Phase1Auth::PreSharedKey(&psk),
            ni_b: &ni,
            nr_b: &nr,
            g_xy: &g_xy,
            cky_i: cookie(PSK_VECTOR.cky_i),
            cky_r: cookie(PSK_VECTOR.cky_r),
        },
    )
    .unwrap();
    assert_eq!(sha256.skeyid_e().len(), 32);
    let k = sha256
        .encryption_key(&c, CipherAlgorithm::Aes256Cbc)
        .unwrap();
    assert_eq!(k.expose(), sha256.skeyid_e().expose());
}

#[test]
fn phase1_and_phase2_ivs_self_consistency() {
    let c = AwsLcCrypto::new();
    let (g_xi, g_xr) = (h(P256_GI), h(P256_GR));
    for hash in [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
    ] {
        let alg = match hash {
            HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
        };
        // Phase 1: IV = hash(g^xi | g^xr), truncated to the block.
        let iv = Iv::phase1(&c, hash, CipherAlgorithm::Aes256Cbc, &g_xi, &g_xr).unwrap();
        let want = digest::digest(alg, &[g_xi.as_slice(), g_xr.as_slice()].concat());
        assert_eq!(iv.as_bytes(), &want.as_ref()[..16], "{hash:?} phase 1");
        // The order matters: g^xi first.
        let swapped = Iv::phase1(&c, hash, CipherAlgorithm::Aes256Cbc, &g_xr, &g_xi).unwrap();
        assert_ne!(iv, swapped);

        // Phase 2: IV = hash(last Phase 1 CBC block | M-ID), M-ID in network order.
        let last_block = Iv::new(&h("00112233445566778899aabbccddeeff")).unwrap();
        let m_id = 0x0102_0304u32;
        let iv2 = Iv::phase2(&c, hash, CipherAlgorithm::Aes128Cbc, &last_block, m_id).unwrap();
        let want2 = digest::digest(
            alg,
            &[last_block.as_bytes(), &[0x01, 0x02, 0x03, 0x04]].concat(),
        );
        assert_eq!(iv2.as_bytes(), &want2.as_ref()[..16], "{hash:?} phase 2");
        let other = Iv::phase2(&c, hash, CipherAlgorithm::Aes128Cbc, &last_block, m_id + 1);
        assert_ne!(iv2, other.unwrap(), "each M-ID has its own IV");
    }
}

/// KEYMAT per RFC 2409 section 5.5, recomputed here with HMAC-SHA1 over the published SKEYID_d.
fn keymat_by_hand(skeyid_d: &[u8], pfs: Option<&[u8]>, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    while out.len() < len {
        let k = hmac_sha1(skeyid_d, &[&previous, pfs.unwrap_or(&[]), seed]);
        out.extend_from_slice(&k);
        previous = k;
    }
    out.truncate(len);
    out
}

#[test]
fn quick_mode_keymat_self_consistency() {
    let c = AwsLcCrypto::new();
    let keys = phase1_keys(&PSK_VECTOR);
    let skeyid_d = h(PSK_VECTOR.skeyid_d); // published
    assert_eq!(keys.skeyid_d().expose(), skeyid_d.as_slice());

    let (ni, nr) = (h("0102030405060708090a0b0c0d0e0f10"), h("a1a2a3a4a5a6a7a8"));
    let spi = 0xc001_cafe_u32;
    let g_qm = SharedSecret::from_bytes(h(P256_GIR));
    // protocol (ESP = 3) | SPI | Ni_b | Nr_b
    let seed = [&[3u8][..], &spi.to_be_bytes(), &ni, &nr].concat();
    // 52 bytes: three HMAC-SHA1 outputs, the last one cut.
    let len = 52;

    let without = KeymatInputs {
        protocol: IpsecProtocol::Esp,
        spi,
        ni_b: &ni,
        nr_b: &nr,
        pfs: None,
    };
    let km = keys.keymat(&c, &without, len).unwrap();
    assert_eq!(
        km.expose(),
        keymat_by_hand(&skeyid_d, None, &seed, len).as_slice()
    );
    // K1 alone is prf(SKEYID_d, protocol | SPI | Ni_b | Nr_b).
    assert_eq!(
        &km.expose()[..20],
        hmac_sha1(&skeyid_d, &[&seed]).as_slice()
    );

    let with = KeymatInputs {
        pfs: Some(&g_qm),
        ..without
    };
    let km_pfs = keys.keymat(&c, &with, len).unwrap();
    assert_eq!(
        km_pfs.expose(),
        keymat_by_hand(&skeyid_d, Some(g_qm.expose()), &seed, len).as_slice()
    );
    assert_ne!(km.expose(), km_pfs.expose());

    // Each direction's SA has its own SPI and so its own KEYMAT; AH differs from ESP.
    let other_spi = keys.keymat(
        &c,
        &KeymatInputs {
            spi: spi + 1,
            ..without
        },
        len,
    );
    assert_ne!(km.expose(), other_spi.unwrap().expose());
    let ah = keys.keymat(
        &c,
        &KeymatInputs {
            protocol: IpsecProtocol::Ah,
            ..without
        },
        len,
    );
    assert_ne!(km.expose(), ah.unwrap().expose());

    // A shorter KEYMAT is a prefix of a longer one; split_at hands out encryption then
    // integrity key.
    let short = keys.keymat(&c, &without, 20).unwrap();
    assert_eq!(short.expose(), &km.expose()[..20]);
    let (enc, integ) = km.split_at(32).unwrap();
    assert_eq!((enc.len(), integ.len()), (32, 20));
    assert!(km.split_at(53).is_none());
}

#[test]
fn encryption_key_round_trips_with_chained_ivs() {
    let c = AwsLcCrypto::new();
    let keys = phase1_keys(&SIGNATURE_VECTOR);
    let ka = keys.encryption_key(&c, CipherAlgorithm::Aes256Cbc).unwrap();
    let iv = Iv::phase1(
        &c,
        HashAlgorithm::Sha1,
        ka.cipher(),
        &h(P256_GI),
        &h(P256_GR),
    )
    .unwrap();
    let plain: Vec<u8> = (0u8..48).collect();
    let mut msg = plain.clone();
    ka.encrypt(&c, &iv, &mut msg).unwrap();
    assert_ne!(msg, plain);
    // The provider agrees with an independent decryption of the same key and IV.
    let mut check = msg.clone();
    c.decrypt_cbc(
        CipherAlgorithm::Aes256Cbc,
        ka.expose(),
        iv.as_bytes(),
        &mut check,
    )
    .unwrap();
    assert_eq!(check, plain);
    // The next message's IV is this one's last cipher block.
    let next = Iv::last_block_of(&msg).unwrap();
    assert_eq!(next.as_bytes(), &msg[32..]);
    ka.decrypt(&c, &iv, &mut msg).unwrap();
    assert_eq!(msg, plain);
    // A message that is not whole blocks is refused, not padded.
    let mut odd = vec![0u8; 17];
    assert_eq!(
        ka.encrypt(&c, &iv, &mut odd).unwrap_err(),
        CryptoError::NotBlockAligned { len: 17, block: 16 }
    );
}
