//! The cryptography IKE needs, behind one trait ([`Crypto`]) so the engine is testable and the
//! provider swappable; [`AwsLcCrypto`] is the implementation Realm ships.
//!
//! This module owns the algorithm vocabulary (DH groups, PRFs, hashes, ciphers), the value types
//! that cross the trait (public values as the KE payload carries them, [`SharedSecret`],
//! [`PrfOutput`], [`Digest`]) and the typed errors. It never implements a primitive itself: the
//! provider does. Peer input (a KE payload's public value) is checked here or by the provider and
//! refused with a [`DhError`], never a panic.

mod aws_lc;
mod modp;

use std::fmt;

pub use aws_lc::{AwsLcCrypto, AwsLcKeyPair};

/// Diffie-Hellman groups Realm's IKE speaks, by their IKE group number (RFC 2409 section 6,
/// RFC 3526, RFC 5903 section 7 for IKEv1's group description attribute).
///
/// Public values are carried in the KE payload, and shared secrets fed to the key schedule, in
/// the group's fixed length: MODP values left-padded with zeros to the prime's length (RFC 2409
/// section 5, "g^xy ... its length is the size of the prime"; RFC 3526); ECP public values as
/// x | y without the 0x04 point-format byte, and the shared secret as x alone (RFC 5903
/// sections 7 and 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DhGroup {
    /// Group 2, the 1024-bit MODP group of RFC 2409 section 6.2 ("Second Oakley Group"). Weak
    /// by today's measure: offered and accepted only when configured.
    Modp1024,
    /// Group 14, the 2048-bit MODP group of RFC 3526 section 3.
    Modp2048,
    /// Group 19, the NIST P-256 curve (RFC 5903).
    Ecp256,
    /// Group 20, the NIST P-384 curve (RFC 5903).
    Ecp384,
}

impl DhGroup {
    /// Every group, in IKE group number order.
    pub const ALL: [DhGroup; 4] = [Self::Modp1024, Self::Modp2048, Self::Ecp256, Self::Ecp384];

    /// The IKE group number (group description attribute, RFC 2409 Appendix A).
    pub const fn id(self) -> u16 {
        match self {
            Self::Modp1024 => 2,
            Self::Modp2048 => 14,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
        }
    }

    /// The group with IKE group number `id`, if Realm speaks it.
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            2 => Some(Self::Modp1024),
            14 => Some(Self::Modp2048),
            19 => Some(Self::Ecp256),
            20 => Some(Self::Ecp384),
            _ => None,
        }
    }

    /// Length of a public value in a KE payload: the prime's length for MODP, 2 x the
    /// coordinate length for ECP (x | y, RFC 5903 section 7).
    pub const fn public_value_len(self) -> usize {
        match self {
            Self::Modp1024 => 128,
            Self::Modp2048 => 256,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
        }
    }

    /// Length of the shared secret g^xy: the prime's length for MODP, the x coordinate's for ECP
    /// (RFC 5903 section 9).
    pub const fn shared_secret_len(self) -> usize {
        match self {
            Self::Modp1024 => 128,
            Self::Modp2048 => 256,
            Self::Ecp256 => 32,
            Self::Ecp384 => 48,
        }
    }

    /// For a MODP group, the prime p its arithmetic uses (big-endian, [`Self::public_value_len`]
    /// bytes); `None` for an ECP group.
    pub fn modp_prime(self) -> Option<Vec<u8>> {
        modp::prime(self)
    }

    /// True for the finite-field (MODP) groups.
    pub const fn is_modp(self) -> bool {
        matches!(self, Self::Modp1024 | Self::Modp2048)
    }
}

impl fmt::Display for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Modp1024 => "MODP-1024",
            Self::Modp2048 => "MODP-2048",
            Self::Ecp256 => "ECP-256",
            Self::Ecp384 => "ECP-384",
        };
        write!(f, "{name} (group {})", self.id())
    }
}

/// Hash algorithms (IKEv1 Phase 1 hash attribute: SHA = 2, SHA2-256 = 4, SHA2-384 = 5). The
/// hash computes the Phase 1 and Phase 2 IVs (RFC 2409 Appendix B); its HMAC is the PRF when no
/// PRF attribute is negotiated (RFC 2409 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (FIPS 180-4).
    Sha1,
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
}

impl HashAlgorithm {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }
}

/// Pseudo-random functions: HMAC (RFC 2104) over a [`HashAlgorithm`]. IKEv1 uses "the HMAC
/// version of the negotiated hash algorithm" as its PRF (RFC 2409 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrfAlgorithm {
    /// HMAC-SHA1 (RFC 2104).
    HmacSha1,
    /// HMAC-SHA2-256 (RFC 4868).
    HmacSha256,
    /// HMAC-SHA2-384 (RFC 4868).
    HmacSha384,
}

impl PrfAlgorithm {
    /// The HMAC of `hash`: IKEv1's PRF when no PRF attribute is negotiated.
    pub const fn hmac(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha1 => Self::HmacSha1,
            HashAlgorithm::Sha256 => Self::HmacSha256,
            HashAlgorithm::Sha384 => Self::HmacSha384,
        }
    }

    /// The hash under the HMAC.
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            Self::HmacSha1 => HashAlgorithm::Sha1,
            Self::HmacSha256 => HashAlgorithm::Sha256,
            Self::HmacSha384 => HashAlgorithm::Sha384,
        }
    }

    /// Output length in bytes (the hash's).
    pub const fn output_len(self) -> usize {
        self.hash().output_len()
    }
}

/// Phase 1 (and Informational) encryption: AES in CBC mode (RFC 3602; IKEv1 encryption
/// attribute 7 with a key length attribute). IKEv1 pads its messages itself (RFC 2409
/// Appendix B: zero bytes, the last one counting them), so the provider encrypts whole blocks
/// in place with a caller-supplied IV (the chained IVs of Appendix B) and adds no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherAlgorithm {
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
}

impl CipherAlgorithm {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc => 16,
            Self::Aes256Cbc => 32,
        }
    }

    /// Block (and IV) length in bytes.
    pub const fn block_len(self) -> usize {
        16
    }
}

impl fmt::Display for CipherAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Aes128Cbc => "AES-128-CBC",
            Self::Aes256Cbc => "AES-256-CBC",
        })
    }
}

secret_bytes!(
    /// A Diffie-Hellman shared secret g^xy in its group's fixed length (see [`DhGroup`]).
    /// Zeroized on drop.
    SharedSecret,
    pub
);

secret_bytes!(
    /// The output of a [`PrfAlgorithm`]. Treated as secret (it is SKEYID and everything derived
    /// from it); a HASH payload's value is one too and is simply exposed. Zeroized on drop.
    PrfOutput,
    pub
);

/// A hash output (up to 64 bytes). Not secret: IKE hashes public values (the IVs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; Digest::MAX_LEN],
    len: usize,
}

impl Digest {
    /// The longest digest a [`Digest`] holds.
    pub const MAX_LEN: usize = 64;

    /// Copies `bytes`; `None` if longer than [`Digest::MAX_LEN`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut out = [0u8; Self::MAX_LEN];
        out.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            bytes: out,
            len: bytes.len(),
        })
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A peer's Diffie-Hellman public value was refused. The peer's fault: the engine answers it as
/// RFC 2408 section 5 says for a bad KE payload (INVALID-KEY-INFORMATION) and does no further
/// work with the value.
///
/// The checks are those of RFC 6989 (written for IKEv2; the arithmetic is the same in IKEv1):
/// section 2.1 for MODP groups (1 < y < p-1; with RFC 2409/3526's safe primes this excludes the
/// only small subgroup, {1, p-1}, so no exponentiation test is needed) and section 2.3 for ECP
/// groups (the point is on the curve).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// The public value does not have its group's length ([`DhGroup::public_value_len`]).
    #[error("{group} public value is {got} bytes, expected {expected}")]
    WrongLength {
        /// The group of our key pair.
        group: DhGroup,
        /// The group's public value length.
        expected: usize,
        /// What the peer sent.
        got: usize,
    },
    /// A MODP public value outside 2..=p-2 (RFC 6989 section 2.1).
    #[error("{group} public value is not in 2..=p-2")]
    OutOfRange {
        /// The group of our key pair.
        group: DhGroup,
    },
    /// An ECP public value that is not a point on the curve, or has a coordinate not below the
    /// field prime (RFC 6989 section 2.3).
    #[error("{group} public value is not a point on the curve")]
    NotOnCurve {
        /// The group of our key pair.
        group: DhGroup,
    },
}

/// Why a cryptographic operation failed. [`CryptoError::Dh`] is the peer's fault; the length
/// errors are the caller's (a bug, or a key of the wrong algorithm); [`CryptoError::Random`] and
/// [`CryptoError::Provider`] are the provider's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The peer's public value was refused.
    #[error(transparent)]
    Dh(#[from] DhError),
    /// A cipher key of the wrong length for its algorithm.
    #[error("{algorithm} key is {got} bytes, expected {expected}")]
    KeyLength {
        /// The cipher.
        algorithm: CipherAlgorithm,
        /// The algorithm's key length.
        expected: usize,
        /// The key given.
        got: usize,
    },
    /// An IV that is not one cipher block long.
    #[error("IV is {got} bytes, expected {expected}")]
    IvLength {
        /// The block length.
        expected: usize,
        /// The IV given.
        got: usize,
    },
    /// CBC data that is not a whole number of blocks (IKEv1 pads before encrypting; a received
    /// message that is not block-aligned is malformed).
    #[error("{len} bytes is not a whole number of {block}-byte blocks")]
    NotBlockAligned {
        /// The data length.
        len: usize,
        /// The block length.
        block: usize,
    },
    /// A private key that does not fit its group (known-answer imports only).
    #[error("private key does not fit {group}")]
    InvalidPrivateKey {
        /// The group.
        group: DhGroup,
    },
    /// More derived key material asked for than the key schedule hands out at once.
    #[error("{requested} bytes of key material asked for, at most {max} are derived at once")]
    TooMuchKeyMaterial {
        /// The length asked for.
        requested: usize,
        /// The limit.
        max: usize,
    },
    /// The random source failed.
    #[error("the random source failed")]
    Random,
    /// The provider failed internally.
    #[error("the crypto provider failed")]
    Provider,
}

/// One side's ephemeral Diffie-Hellman key pair. The private half stays inside (zeroized or
/// cleansed on drop); only the public value, as the KE payload carries it, is visible.
pub trait DhKeyPair: fmt::Debug {
    /// The key pair's group.
    fn group(&self) -> DhGroup;

    /// The public value in KE payload form ([`DhGroup::public_value_len`] bytes).
    fn public_value(&self) -> &[u8];
}

/// Every cryptographic operation IKE performs. The engine is generic over it; nothing else in
/// the crate touches a provider.
///
/// Methods take `&self`: a provider is shared by every exchange of an engine. A deterministic
/// test provider keeps its state behind interior mutability.
pub trait Crypto {
    /// The provider's Diffie-Hellman key pair.
    type KeyPair: DhKeyPair;

    /// Fills `out` with cryptographically strong random bytes (nonces, cookie secrets, SPIs,
    /// padding).
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;

    /// Generates an ephemeral key pair in `group`.
    fn generate_key_pair(&self, group: DhGroup) -> Result<Self::KeyPair, CryptoError>;

    /// Computes g^xy from our key pair and the peer's public value as its KE payload carried it.
    /// A value of the wrong length, a MODP value outside 2..=p-2 or an ECP point not on the curve
    /// is refused with [`CryptoError::Dh`]; nothing about the peer's input can make it panic.
    fn agree(
        &self,
        key_pair: &Self::KeyPair,
        peer_public_value: &[u8],
    ) -> Result<SharedSecret, CryptoError>;

    /// `prf(key, data[0] | data[1] | ...)`: the PRF over the concatenation of `data`.
    fn prf(&self, prf: PrfAlgorithm, key: &[u8], data: &[&[u8]]) -> Result<PrfOutput, CryptoError>;

    /// `hash(data[0] | data[1] | ...)`.
    fn hash(&self, hash: HashAlgorithm, data: &[&[u8]]) -> Result<Digest, CryptoError>;

    /// Encrypts `data` in place in CBC mode with `iv`, adding no padding: `data` must be a whole
    /// number of blocks, `key` the cipher's length and `iv` one block.
    fn encrypt_cbc(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Decrypts `data` in place in CBC mode with `iv`, removing no padding (same lengths as
    /// [`Crypto::encrypt_cbc`]).
    fn decrypt_cbc(
        &self,
        cipher: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError>;
}

/// Checks the lengths [`Crypto::encrypt_cbc`]/[`Crypto::decrypt_cbc`] require, for providers.
pub fn check_cbc_lengths(
    cipher: CipherAlgorithm,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<(), CryptoError> {
    if key.len() != cipher.key_len() {
        return Err(CryptoError::KeyLength {
            algorithm: cipher,
            expected: cipher.key_len(),
            got: key.len(),
        });
    }
    if iv.len() != cipher.block_len() {
        return Err(CryptoError::IvLength {
            expected: cipher.block_len(),
            got: iv.len(),
        });
    }
    if !data.len().is_multiple_of(cipher.block_len()) {
        return Err(CryptoError::NotBlockAligned {
            len: data.len(),
            block: cipher.block_len(),
        });
    }
    Ok(())
}

/// Checks a peer public value's length against `group`, for providers.
pub fn check_public_value_len(group: DhGroup, value: &[u8]) -> Result<(), DhError> {
    if value.len() != group.public_value_len() {
        return Err(DhError::WrongLength {
            group,
            expected: group.public_value_len(),
            got: value.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_round_trip_and_unknown_ids_are_none() {
        for g in DhGroup::ALL {
            assert_eq!(DhGroup::from_id(g.id()), Some(g));
        }
        for id in [0u16, 1, 5, 15, 21, 31, u16::MAX] {
            assert_eq!(DhGroup::from_id(id), None, "group {id}");
        }
    }

    #[test]
    fn digest_holds_at_most_max_len() {
        assert!(Digest::new(&[0u8; Digest::MAX_LEN + 1]).is_none());
        let d = Digest::new(&[1, 2, 3]).expect("short digest");
        assert_eq!(d.as_bytes(), &[1, 2, 3]);
        assert_eq!(format!("{d:?}"), "Digest(010203)");
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = SharedSecret::from_bytes(vec![0xAB; 4]);
        let shown = format!("{s:?}");
        assert_eq!(shown, "SharedSecret(<4 bytes redacted>)");
        assert!(!shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn cbc_length_checks_name_the_fault() {
        let c = CipherAlgorithm::Aes128Cbc;
        assert_eq!(
            check_cbc_lengths(c, &[0; 32], &[0; 16], &[0; 16]),
            Err(CryptoError::KeyLength {
                algorithm: c,
                expected: 16,
                got: 32
            })
        );
        assert_eq!(
            check_cbc_lengths(c, &[0; 16], &[0; 8], &[0; 16]),
            Err(CryptoError::IvLength {
                expected: 16,
                got: 8
            })
        );
        assert_eq!(
            check_cbc_lengths(c, &[0; 16], &[0; 16], &[0; 17]),
            Err(CryptoError::NotBlockAligned { len: 17, block: 16 })
        );
        assert_eq!(check_cbc_lengths(c, &[0; 16], &[0; 16], &[]), Ok(()));
    }
}
