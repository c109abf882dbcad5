//! Property tests: Diffie-Hellman agreement for arbitrary private keys in every group, and
//! peer public values made of arbitrary bytes never panic and only ever yield a secret of the
//! group's length.
//!
//! MODP cases are few: each costs full-width modular exponentiations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use realm_ike::crypto::{CryptoError, DhError};
use realm_ike::{AwsLcCrypto, AwsLcKeyPair, Crypto, DhGroup, DhKeyPair};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A key pair from `scalar`, or `None` when the provider refuses it (an ECP scalar of zero or
/// not below the group order, a MODP exponent of zero).
fn imported(c: &AwsLcCrypto, group: DhGroup, scalar: &[u8]) -> Option<AwsLcKeyPair> {
    match c.key_pair_from_private(group, scalar) {
        Ok(kp) => Some(kp),
        Err(CryptoError::InvalidPrivateKey { group: g }) if g == group => None,
        Err(e) => panic!("{group}: unexpected {e}"),
    }
}

fn agree_both_ways(group: DhGroup, a: &[u8], b: &[u8]) -> Result<(), TestCaseError> {
    let c = AwsLcCrypto::new();
    let (Some(a), Some(b)) = (imported(&c, group, a), imported(&c, group, b)) else {
        return Err(TestCaseError::reject("scalar outside the group"));
    };
    prop_assert_eq!(a.public_value().len(), group.public_value_len());
    let ab = c.agree(&a, b.public_value()).unwrap();
    let ba = c.agree(&b, a.public_value()).unwrap();
    prop_assert_eq!(ab.len(), group.shared_secret_len());
    prop_assert_eq!(ab.expose(), ba.expose());
    Ok(())
}

/// The outcome of feeding `peer` to a fresh key pair of `group`: a secret of the right length,
/// or a refusal that names the group and the right reason for the input's length.
fn agree_with_arbitrary(
    c: &AwsLcCrypto,
    ours: &AwsLcKeyPair,
    peer: &[u8],
) -> Result<(), TestCaseError> {
    let group = ours.group();
    match c.agree(ours, peer) {
        Ok(secret) => {
            prop_assert_eq!(peer.len(), group.public_value_len());
            prop_assert_eq!(secret.len(), group.shared_secret_len());
        }
        Err(CryptoError::Dh(DhError::WrongLength {
            group: g,
            expected,
            got,
        })) => {
            prop_assert_eq!(g, group);
            prop_assert_eq!(expected, group.public_value_len());
            prop_assert_eq!(got, peer.len());
            prop_assert_ne!(got, expected);
        }
        Err(CryptoError::Dh(DhError::OutOfRange { group: g })) => {
            prop_assert!(g == group && group.is_modp());
            prop_assert_eq!(peer.len(), group.public_value_len());
        }
        Err(CryptoError::Dh(DhError::NotOnCurve { group: g })) => {
            prop_assert!(g == group && !group.is_modp());
            prop_assert_eq!(peer.len(), group.public_value_len());
        }
        Err(e) => prop_assert!(false, "{group}: unexpected error {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ecp256_agreement(a in prop::array::uniform32(any::<u8>()), b in prop::array::uniform32(any::<u8>())) {
        agree_both_ways(DhGroup::Ecp256, &a, &b)?;
    }

    #[test]
    fn ecp384_agreement(a in prop::collection::vec(any::<u8>(), 48), b in prop::collection::vec(any::<u8>(), 48)) {
        agree_both_ways(DhGroup::Ecp384, &a, &b)?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// Exponents of any width up to the prime's (imported exponents are raised full-width).
    #[test]
    fn modp1024_agreement(a in prop::collection::vec(any::<u8>(), 1..=128), b in prop::collection::vec(any::<u8>(), 1..=128)) {
        agree_both_ways(DhGroup::Modp1024, &a, &b)?;
    }

    #[test]
    fn modp2048_agreement(a in prop::collection::vec(any::<u8>(), 1..=256), b in prop::collection::vec(any::<u8>(), 1..=256)) {
        agree_both_ways(DhGroup::Modp2048, &a, &b)?;
    }
}

/// Generated key pairs (the path the engine uses) agree too, in every group.
#[test]
fn generated_key_pairs_agree() {
    let c = AwsLcCrypto::new();
    for group in DhGroup::ALL {
        for _ in 0..4 {
            let a = c.generate_key_pair(group).unwrap();
            let b = c.generate_key_pair(group).unwrap();
            assert_eq!(a.group(), group);
            assert_ne!(a.public_value(), b.public_value(), "{group}");
            let ab = c.agree(&a, b.public_value()).unwrap();
            let ba = c.agree(&b, a.public_value()).unwrap();
            assert_eq!(ab.expose(), ba.expose(), "{group}");
        }
    }
}

proptest! {
    #![proptest_config(config(100_000))]

    /// Arbitrary bytes of arbitrary length as a peer's public value, in every group: never a
    /// panic, and only the right refusal for the length (exact-length inputs are rare here; the
    /// tests below cover them).
    #[test]
    fn arbitrary_peer_values_never_panic(group in 0usize..4, peer in prop::collection::vec(any::<u8>(), 0..300)) {
        thread_local! {
            static KEYS: (AwsLcCrypto, Vec<AwsLcKeyPair>) = {
                let c = AwsLcCrypto::new();
                let keys = DhGroup::ALL.iter().map(|g| c.generate_key_pair(*g).unwrap()).collect();
                (c, keys)
            };
        }
        KEYS.with(|(c, keys)| agree_with_arbitrary(c, &keys[group], &peer))?;
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    /// Arbitrary bytes of exactly an ECP value's length: almost never on the curve, never a
    /// panic.
    #[test]
    fn arbitrary_ecp_values_of_the_right_length(p384 in any::<bool>(), peer in prop::collection::vec(any::<u8>(), 96)) {
        let group = if p384 { DhGroup::Ecp384 } else { DhGroup::Ecp256 };
        let c = AwsLcCrypto::new();
        let ours = c.generate_key_pair(group).unwrap();
        agree_with_arbitrary(&c, &ours, &peer[..group.public_value_len()])?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Arbitrary bytes of exactly a MODP value's length, biased towards the range's edges
    /// (leading 0x00 or 0xFF bytes): never a panic.
    #[test]
    fn arbitrary_modp_values_of_the_right_length(
        g2048 in any::<bool>(),
        fill in prop_oneof![Just(0x00u8), Just(0xFFu8), any::<u8>()],
        head in 0usize..256,
        tail in prop::collection::vec(any::<u8>(), 256),
    ) {
        let group = if g2048 { DhGroup::Modp2048 } else { DhGroup::Modp1024 };
        let len = group.public_value_len();
        let mut peer = vec![fill; len];
        let head = head.min(len);
        peer[head..].copy_from_slice(&tail[..len - head]);
        thread_local! {
            static KEYS: (AwsLcCrypto, [AwsLcKeyPair; 2]) = {
                let c = AwsLcCrypto::new();
                let keys = [
                    c.generate_key_pair(DhGroup::Modp1024).unwrap(),
                    c.generate_key_pair(DhGroup::Modp2048).unwrap(),
                ];
                (c, keys)
            };
        }
        KEYS.with(|(c, keys)| agree_with_arbitrary(c, &keys[usize::from(g2048)], &peer))?;
    }
}
