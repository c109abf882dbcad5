//! Finite-field Diffie-Hellman for the MODP groups (2 and 14), on crypto-bigint's constant-time
//! Montgomery exponentiation: aws-lc-rs has no finite-field DH. No arithmetic is written here;
//! this module holds the groups' constants, draws exponents, checks peer values and encodes the
//! results in the fixed lengths IKE uses.
//!
//! Secret exponents are only ever raised to with `pow_bounded_exp`, whose time depends on the
//! (public, per-group) exponent bound and not on the exponent's value.

use std::sync::LazyLock;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U1024, U2048, Uint};
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, DhError, DhGroup, SharedSecret, check_public_value_len};

/// RFC 2409 section 6.2, the Second Oakley Group: 2^1024 - 2^960 - 1 + 2^64 * { [2^894 pi] +
/// 129093 }, generator 2.
const GROUP2_PRIME_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381",
    "FFFFFFFFFFFFFFFF",
);

/// RFC 3526 section 3, the 2048-bit MODP group: 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] +
/// 124476 }, generator 2.
const GROUP14_PRIME_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// Both groups' generator (RFC 2409 section 6.2, RFC 3526 section 3).
const GENERATOR: u8 = 2;

/// Bits of a freshly drawn private exponent. RFC 3526 section 8 estimates the 2048-bit group's
/// strength at 110 to 160 bits and asks for an exponent of at least twice that, 220 to 320 bits;
/// Realm takes the top of the range. The 1024-bit group (strength about 80 bits) gets 256.
/// Exponents imported for known-answer tests use the full width instead.
const GROUP2_EXPONENT_BITS: u32 = 256;
const GROUP14_EXPONENT_BITS: u32 = 320;

/// A MODP group's constants, computed once.
pub(crate) struct Group<const LIMBS: usize> {
    id: DhGroup,
    params: FixedMontyParams<LIMBS>,
    p_minus_1: Uint<LIMBS>,
    exponent_bits: u32,
}

static GROUP2: LazyLock<Group<{ U1024::LIMBS }>> =
    LazyLock::new(|| Group::new(DhGroup::Modp1024, GROUP2_PRIME_HEX, GROUP2_EXPONENT_BITS));
static GROUP14: LazyLock<Group<{ U2048::LIMBS }>> =
    LazyLock::new(|| Group::new(DhGroup::Modp2048, GROUP14_PRIME_HEX, GROUP14_EXPONENT_BITS));

impl<const LIMBS: usize> Group<LIMBS> {
    /// Builds a group from its prime. The primes are the constants above, odd and of the exact
    /// width, which the unit tests check; `from_be_hex` rejects anything else at first use.
    fn new(id: DhGroup, prime_hex: &str, exponent_bits: u32) -> Self {
        let p = Odd::<Uint<LIMBS>>::from_be_hex(prime_hex);
        let p_minus_1 = p.get().wrapping_sub(&Uint::ONE);
        Self {
            id,
            params: FixedMontyParams::new_vartime(p),
            p_minus_1,
            exponent_bits,
        }
    }

    /// The prime's length in bytes, which is every public value's and shared secret's.
    const fn len(&self) -> usize {
        Uint::<LIMBS>::BYTES
    }

    /// Draws an exponent of `exponent_bits` random bits and computes g^x, left-padded.
    /// An exponent giving a public value outside 2..=p-2 (only x = 0 can) is drawn again.
    fn generate(
        &self,
        fill_random: &dyn Fn(&mut [u8]) -> Result<(), CryptoError>,
    ) -> Result<(Exponent<LIMBS>, Vec<u8>), CryptoError> {
        let exponent_bytes = self.exponent_bits.div_ceil(8) as usize;
        for _ in 0..4 {
            let mut buf = Zeroizing::new(vec![0u8; self.len()]);
            let start = self.len().saturating_sub(exponent_bytes);
            fill_random(buf.get_mut(start..).ok_or(CryptoError::Provider)?)?;
            let exponent = Exponent {
                value: Uint::from_be_slice(&buf),
                bits: self.exponent_bits,
            };
            let public = self.power(&Uint::from_u8(GENERATOR), &exponent);
            if self.in_range(&public) {
                let mut encoded = public.to_be_bytes();
                let out = encoded.as_slice().to_vec();
                encoded.zeroize();
                return Ok((exponent, out));
            }
        }
        Err(CryptoError::Random)
    }

    /// An exponent given as big-endian bytes (at most the prime's length, not zero), raised to
    /// with the full width. For known-answer tests.
    fn import(&self, private: &[u8]) -> Result<(Exponent<LIMBS>, Vec<u8>), CryptoError> {
        let invalid = CryptoError::InvalidPrivateKey { group: self.id };
        let start = self
            .len()
            .checked_sub(private.len())
            .ok_or(invalid.clone())?;
        let mut buf = Zeroizing::new(vec![0u8; self.len()]);
        buf.get_mut(start..)
            .ok_or(invalid.clone())?
            .copy_from_slice(private);
        let exponent = Exponent {
            value: Uint::from_be_slice(&buf),
            bits: Uint::<LIMBS>::BITS,
        };
        let public = self.power(&Uint::from_u8(GENERATOR), &exponent);
        if !self.in_range(&public) {
            return Err(invalid);
        }
        Ok((exponent, public.to_be_bytes().as_slice().to_vec()))
    }

    /// The peer's value, checked: the prime's length and 2 <= y <= p-2 (RFC 6989 section 2.1).
    fn parse_public(&self, peer: &[u8]) -> Result<Uint<LIMBS>, DhError> {
        check_public_value_len(self.id, peer)?;
        if peer.len() != self.len() {
            // Unreachable while public_value_len() is the prime's length (a unit test checks
            // it); refusing is still the safe answer.
            return Err(DhError::WrongLength {
                group: self.id,
                expected: self.len(),
                got: peer.len(),
            });
        }
        let y = Uint::from_be_slice(peer);
        if !self.in_range(&y) {
            return Err(DhError::OutOfRange { group: self.id });
        }
        Ok(y)
    }

    /// g^xy = y^x mod p, left-padded to the prime's length.
    fn agree(&self, exponent: &Exponent<LIMBS>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let y = self.parse_public(peer)?;
        let mut z = self.power(&y, exponent);
        let mut encoded = z.to_be_bytes();
        let secret = SharedSecret::from_bytes(encoded.as_slice().to_vec());
        encoded.zeroize();
        z.zeroize();
        Ok(secret)
    }

    /// 2 <= v <= p-2. Values compared are public (a peer's value or our own public value).
    fn in_range(&self, v: &Uint<LIMBS>) -> bool {
        *v > Uint::ONE && *v < self.p_minus_1
    }

    /// base^exponent mod p, constant-time in the exponent's value.
    fn power(&self, base: &Uint<LIMBS>, exponent: &Exponent<LIMBS>) -> Uint<LIMBS> {
        let mut b = FixedMontyForm::new(base, &self.params);
        let mut r = b.pow_bounded_exp(&exponent.value, exponent.bits);
        let out = r.retrieve();
        b.zeroize();
        r.zeroize();
        out
    }
}

/// A private exponent with the bound it is raised with; zeroized on drop. (Best effort, as
/// everywhere in Rust: `Uint` is `Copy`, so a move before the key pair is boxed may leave a
/// stack copy that nothing clears.)
pub(crate) struct Exponent<const LIMBS: usize> {
    value: Uint<LIMBS>,
    bits: u32,
}

impl<const LIMBS: usize> Drop for Exponent<LIMBS> {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// A MODP private key of either group.
pub(crate) enum ModpPrivate {
    Group2(Exponent<{ U1024::LIMBS }>),
    Group14(Exponent<{ U2048::LIMBS }>),
}

/// A fresh key pair: the private exponent and the public value, left-padded.
pub(crate) fn generate(
    group: DhGroup,
    fill_random: &dyn Fn(&mut [u8]) -> Result<(), CryptoError>,
) -> Result<(ModpPrivate, Vec<u8>), CryptoError> {
    match group {
        DhGroup::Modp1024 => GROUP2
            .generate(fill_random)
            .map(|(x, p)| (ModpPrivate::Group2(x), p)),
        DhGroup::Modp2048 => GROUP14
            .generate(fill_random)
            .map(|(x, p)| (ModpPrivate::Group14(x), p)),
        DhGroup::Ecp256 | DhGroup::Ecp384 => Err(CryptoError::Provider),
    }
}

/// A key pair from a known private exponent (known-answer tests).
pub(crate) fn import(
    group: DhGroup,
    private: &[u8],
) -> Result<(ModpPrivate, Vec<u8>), CryptoError> {
    match group {
        DhGroup::Modp1024 => GROUP2
            .import(private)
            .map(|(x, p)| (ModpPrivate::Group2(x), p)),
        DhGroup::Modp2048 => GROUP14
            .import(private)
            .map(|(x, p)| (ModpPrivate::Group14(x), p)),
        DhGroup::Ecp256 | DhGroup::Ecp384 => Err(CryptoError::Provider),
    }
}

/// g^xy for our private key and the peer's public value.
pub(crate) fn agree(private: &ModpPrivate, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
    match private {
        ModpPrivate::Group2(x) => GROUP2.agree(x, peer),
        ModpPrivate::Group14(x) => GROUP14.agree(x, peer),
    }
}

/// The prime the group's arithmetic uses, big-endian (read back from the Montgomery
/// parameters, so tests check what is computed with, not a copy).
pub(crate) fn prime(group: DhGroup) -> Option<Vec<u8>> {
    match group {
        DhGroup::Modp1024 => Some(GROUP2.params.modulus().to_be_bytes().as_slice().to_vec()),
        DhGroup::Modp2048 => Some(GROUP14.params.modulus().to_be_bytes().as_slice().to_vec()),
        DhGroup::Ecp256 | DhGroup::Ecp384 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_lengths_are_the_groups_value_lengths() {
        assert_eq!(GROUP2.len(), DhGroup::Modp1024.public_value_len());
        assert_eq!(GROUP2.len(), DhGroup::Modp1024.shared_secret_len());
        assert_eq!(GROUP14.len(), DhGroup::Modp2048.public_value_len());
        assert_eq!(GROUP14.len(), DhGroup::Modp2048.shared_secret_len());
    }

    #[test]
    fn primes_are_the_constants() {
        let p2 = prime(DhGroup::Modp1024).expect("group 2");
        assert_eq!(hex_upper(&p2), GROUP2_PRIME_HEX);
        let p14 = prime(DhGroup::Modp2048).expect("group 14");
        assert_eq!(hex_upper(&p14), GROUP14_PRIME_HEX);
    }

    #[test]
    fn range_check_bounds() {
        let g = &*GROUP2;
        assert!(!g.in_range(&Uint::ZERO));
        assert!(!g.in_range(&Uint::ONE));
        assert!(g.in_range(&Uint::from_u8(2)));
        assert!(g.in_range(&g.p_minus_1.wrapping_sub(&Uint::ONE)));
        assert!(!g.in_range(&g.p_minus_1));
    }

    fn hex_upper(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }
}
