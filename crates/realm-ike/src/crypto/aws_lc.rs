//! [`AwsLcCrypto`]: the [`Crypto`] provider Realm ships. aws-lc-rs does the random bytes, ECDH
//! (`agreement`), HMAC, hashes and AES-CBC; crypto-bigint does MODP exponentiation (see
//! [`super::modp`]), since aws-lc-rs has no finite-field DH.
//!
//! Private keys: ECDH keys live in AWS-LC's `EVP_PKEY`, which AWS-LC cleanses when it frees it;
//! MODP exponents are zeroized on drop. Key schedules for AES and HMAC are built per call and
//! freed (and cleansed) by AWS-LC.

use std::fmt;

use aws_lc_rs::agreement::{self, ParsedPublicKey, UnparsedPublicKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{cipher, digest, hmac};

use super::modp::{self, ModpPrivate};
use super::{
    CipherAlgorithm, Crypto, CryptoError, DhError, DhGroup, DhKeyPair, Digest, HashAlgorithm,
    PrfAlgorithm, PrfOutput, SharedSecret, check_cbc_lengths, check_public_value_len,
};

/// SEC1 uncompressed point marker: aws-lc-rs takes 0x04 | x | y, the KE payload carries x | y
/// (RFC 5903 section 7).
const UNCOMPRESSED_POINT: u8 = 0x04;

/// The longest uncompressed point Realm handles (P-384: 1 + 2 x 48).
const MAX_POINT_LEN: usize = 1 + 96;

/// The aws-lc-rs (plus crypto-bigint for MODP) [`Crypto`] provider.
#[derive(Debug, Clone, Default)]
pub struct AwsLcCrypto {
    rng: SystemRandom,
}

impl AwsLcCrypto {
    /// A provider on the system random source.
    pub fn new() -> Self {
        Self::default()
    }

    /// A key pair from a known private value, for known-answer tests (RFC 5903 section 8's
    /// vectors): the ECP scalar as big-endian bytes of the coordinate length, or a MODP exponent
    /// as big-endian bytes of at most the prime's length. The engine never calls this; its keys
    /// come from [`Crypto::generate_key_pair`].
    pub fn key_pair_from_private(
        &self,
        group: DhGroup,
        private: &[u8],
    ) -> Result<AwsLcKeyPair, CryptoError> {
        match ecdh_algorithm(group) {
            Some(alg) => {
                let key = agreement::PrivateKey::from_private_key(alg, private)
                    .map_err(|_| CryptoError::InvalidPrivateKey { group })?;
                ecdh_key_pair(group, key)
            }
            None => {
                let (private, public) = modp::import(group, private)?;
                Ok(AwsLcKeyPair {
                    group,
                    public,
                    private: Private::Modp(Box::new(private)),
                })
            }
        }
    }
}

/// An [`AwsLcCrypto`] key pair.
pub struct AwsLcKeyPair {
    group: DhGroup,
    public: Vec<u8>,
    private: Private,
}

enum Private {
    Ecdh(agreement::PrivateKey),
    /// Boxed: the exponent is large, and a box is not copied when the key pair moves.
    Modp(Box<ModpPrivate>),
}

impl fmt::Debug for AwsLcKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsLcKeyPair")
            .field("group", &self.group)
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

impl DhKeyPair for AwsLcKeyPair {
    fn group(&self) -> DhGroup {
        self.group
    }

    fn public_value(&self) -> &[u8] {
        &self.public
    }
}

fn ecdh_algorithm(group: DhGroup) -> Option<&'static agreement::Algorithm> {
    match group {
        DhGroup::Ecp256 => Some(&agreement::ECDH_P256),
        DhGroup::Ecp384 => Some(&agreement::ECDH_P384),
        DhGroup::Modp1024 | DhGroup::Modp2048 => None,
    }
}

/// Wraps an ECDH private key with its public value in KE payload form (x | y).
fn ecdh_key_pair(group: DhGroup, key: agreement::PrivateKey) -> Result<AwsLcKeyPair, CryptoError> {
    let public = key
        .compute_public_key()
        .map_err(|_| CryptoError::Provider)?;
    let public = match public.as_ref().split_first() {
        Some((&UNCOMPRESSED_POINT, xy)) if xy.len() == group.public_value_len() => xy.to_vec(),
        _ => return Err(CryptoError::Provider),
    };
    Ok(AwsLcKeyPair {
        group,
        public,
        private: Private::Ecdh(key),
    })
}

fn hmac_algorithm(prf: PrfAlgorithm) -> hmac::Algorithm {
    match prf {
        PrfAlgorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        PrfAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        PrfAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
    }
}

fn digest_algorithm(hash: HashAlgorithm) -> &'static digest::Algorithm {
    match hash {
        HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => &digest::SHA256,
        HashAlgorithm::Sha384 => &digest::SHA384,
    }
}

fn cipher_algorithm(cipher: CipherAlgorithm) -> &'static cipher::Algorithm {
    match cipher {
        CipherAlgorithm::Aes128Cbc => &cipher::AES_128,
        CipherAlgorithm::Aes256Cbc => &cipher::AES_256,
    }
}

/// The IV as aws-lc-rs takes it; the length was checked by [`check_cbc_lengths`].
fn iv_block(iv: &[u8]) -> Result<[u8; 16], CryptoError> {
    iv.try_into().map_err(|_| CryptoError::IvLength {
        expected: 16,
        got: iv.len(),
    })
}

impl Crypto for AwsLcCrypto {
    type KeyPair = AwsLcKeyPair;

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.rng.fill(out).map_err(|_| CryptoError::Random)
    }

    fn generate_key_pair(&self, group: DhGroup) -> Result<AwsLcKeyPair, CryptoError> {
        match ecdh_algorithm(group) {
            Some(alg) => {
                let key = agreement::PrivateKey::generate(alg).map_err(|_| CryptoError::Random)?;
                ecdh_key_pair(group, key)
            }
            None => {
                let fill = |out: &mut [u8]| self.fill_random(out);
                let (private, public) = modp::generate(group, &fill)?;
                Ok(AwsLcKeyPair {
                    group,
                    public,
                    private: Private::Modp(Box::new(private)),
                })
            }
        }
    }

    fn agree(
        &self,
        key_pair: &AwsLcKeyPair,
        peer_public_value: &[u8],
    ) -> Result<SharedSecret, CryptoError> {
        let group = key_pair.group;
        match &key_pair.private {
            Private::Modp(private) => modp::agree(private, peer_public_value),
            Private::Ecdh(private) => {
                check_public_value_len(group, peer_public_value)?;
                let mut point = [0u8; MAX_POINT_LEN];
                let point = point
                    .get_mut(..1 + peer_public_value.len())
                    .ok_or(CryptoError::Provider)?;
                let (marker, xy) = point.split_at_mut(1);
                marker.copy_from_slice(&[UNCOMPRESSED_POINT]);
                xy.copy_from_slice(peer_public_value);
                // RFC 6989 section 2.3: the point must be on the curve. AWS-LC's parse of an
                // uncompressed point checks that (and that each coordinate is below the prime).
                let parsed = ParsedPublicKey::try_from(&UnparsedPublicKey::new(
                    private.algorithm(),
                    &*point,
                ))
                .map_err(|_| DhError::NotOnCurve { group })?;
                let secret = agreement::agree(private, parsed, CryptoError::Provider, |x| {
                    Ok(SharedSecret::from_bytes(x.to_vec()))
                })?;
                if secret.len() != group.shared_secret_len() {
                    return Err(CryptoError::Provider);
                }
                Ok(secret)
            }
        }
    }

    fn prf(&self, prf: PrfAlgorithm, key: &[u8], data: &[&[u8]]) -> Result<PrfOutput, CryptoError> {
        let key = hmac::Key::new(hmac_algorithm(prf), key);
        let mut ctx = hmac::Context::with_key(&key);
        for part in data {
            ctx.update(part);
        }
        Ok(PrfOutput::from_bytes(ctx.sign().as_ref().to_vec()))
    }

    fn hash(&self, hash: HashAlgorithm, data: &[&[u8]]) -> Result<Digest, CryptoError> {
        let mut ctx = digest::Context::new(digest_algorithm(hash));
        for part in data {
            ctx.update(part);
        }
        Digest::new(ctx.finish().as_ref()).ok_or(CryptoError::Provider)
    }

    fn encrypt_cbc(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        check_cbc_lengths(cipher, key, iv, data)?;
        let key = cipher::UnboundCipherKey::new(cipher_algorithm(cipher), key)
            .and_then(cipher::EncryptingKey::cbc)
            .map_err(|_| CryptoError::Provider)?;
        let context =
            cipher::EncryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from(iv_block(iv)?));
        key.less_safe_encrypt(data, context)
            .map(|_| ())
            .map_err(|_| CryptoError::Provider)
    }

    fn decrypt_cbc(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        check_cbc_lengths(cipher, key, iv, data)?;
        let key = cipher::UnboundCipherKey::new(cipher_algorithm(cipher), key)
            .and_then(cipher::DecryptingKey::cbc)
            .map_err(|_| CryptoError::Provider)?;
        let context =
            cipher::DecryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from(iv_block(iv)?));
        key.decrypt(data, context)
            .map(|_| ())
            .map_err(|_| CryptoError::Provider)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// RFC 3602 section 4, case 1: AES-128-CBC, one block.
    #[test]
    fn aes_cbc_rfc3602_case_1() {
        let c = AwsLcCrypto::new();
        let key = hex::decode("06a9214036b8a15b512e03d534120006").unwrap();
        let iv = hex::decode("3dafba429d9eb430b422da802c9fac41").unwrap();
        let mut data = b"Single block msg".to_vec();
        c.encrypt_cbc(CipherAlgorithm::Aes128Cbc, &key, &iv, &mut data)
            .unwrap();
        assert_eq!(hex::encode(&data), "e353779c1079aeb82708942dbe77181a");
        c.decrypt_cbc(CipherAlgorithm::Aes128Cbc, &key, &iv, &mut data)
            .unwrap();
        assert_eq!(&data, b"Single block msg");
    }

    /// RFC 4231 test case 2 (HMAC-SHA-256 and -384) and RFC 2202 test case 2 (HMAC-SHA-1),
    /// with the data split over several parts.
    #[test]
    fn prf_known_answers() {
        let c = AwsLcCrypto::new();
        let parts: [&[u8]; 3] = [b"what do ya", b" want ", b"for nothing?"];
        let cases = [
            (
                PrfAlgorithm::HmacSha1,
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                PrfAlgorithm::HmacSha256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                PrfAlgorithm::HmacSha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
            ),
        ];
        for (prf, want) in cases {
            let out = c.prf(prf, b"Jefe", &parts).unwrap();
            assert_eq!(hex::encode(out.expose()), want, "{prf:?}");
            assert_eq!(out.len(), prf.output_len());
        }
    }

    /// FIPS 180 "abc" digests, with the input split over parts.
    #[test]
    fn hash_known_answers() {
        let c = AwsLcCrypto::new();
        let parts: [&[u8]; 2] = [b"a", b"bc"];
        let cases = [
            (
                HashAlgorithm::Sha1,
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                HashAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgorithm::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
        ];
        for (hash, want) in cases {
            let d = c.hash(hash, &parts).unwrap();
            assert_eq!(hex::encode(d.as_bytes()), want, "{hash:?}");
            assert_eq!(d.as_bytes().len(), hash.output_len());
        }
    }

    #[test]
    fn random_fills_and_varies() {
        let c = AwsLcCrypto::new();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        c.fill_random(&mut a).unwrap();
        c.fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn key_pair_debug_shows_no_secret() {
        let c = AwsLcCrypto::new();
        let kp = c.generate_key_pair(DhGroup::Ecp256).unwrap();
        let shown = format!("{kp:?}");
        assert!(
            shown.contains("Ecp256") && shown.contains("public_len: 64"),
            "{shown}"
        );
    }
}
