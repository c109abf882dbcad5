//! Our RSA private key, and the IKEv1 signature made with it.

use std::fmt;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PublicKey};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::{AuthError, Certificate, is_pem};

/// An RSA private key, as strongSwan's `pki --gen --type rsa` writes it (PKCS#1 DER,
/// `--outform pem` as `RSA PRIVATE KEY`) or as OpenSSL writes it (PKCS#8, `PRIVATE KEY`).
/// Encrypted keys are refused. The key material is zeroized on drop (the `rsa` crate's
/// `PrivateKey` does that; a clone is zeroized on its own drop).
#[derive(Clone)]
pub struct PrivateKey {
    key: rsa::PrivateKey,
}

impl fmt::Debug for PrivateKey {
    /// The size only, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &(self.key.size() * 8))
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A key from a file's bytes: PEM (the first private key block) or, otherwise, DER.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        if is_pem(bytes) {
            Self::from_pem(bytes)
        } else {
            Self::from_der(bytes)
        }
    }

    /// A key from PEM text: the first `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1)
    /// block. `ENCRYPTED PRIVATE KEY` blocks are not read.
    pub fn from_pem(pem: &[u8]) -> Result<Self, AuthError> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => AuthError::NoPem {
                what: "private key",
            },
            other => AuthError::KeyEncoding(other.to_string()),
        })?;
        match der {
            PrivateKeyDer::Pkcs1(k) => Self::from_pkcs1_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(k) => Self::from_pkcs8_der(k.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(_) => Err(AuthError::UnsupportedKey(
                "an EC key (only RSA signatures are supported)",
            )),
            _ => Err(AuthError::UnsupportedKey("an unknown private key type")),
        }
    }

    /// A key from DER: PKCS#8 `PrivateKeyInfo`, else PKCS#1 `RSAPrivateKey`.
    pub fn from_der(der: &[u8]) -> Result<Self, AuthError> {
        Self::from_pkcs8_der(der).or_else(|pkcs8| {
            Self::from_pkcs1_der(der).map_err(|pkcs1| {
                AuthError::KeyEncoding(format!("as PKCS#8: {pkcs8}; as PKCS#1: {pkcs1}"))
            })
        })
    }

    /// A key from PKCS#8 DER (`PrivateKeyInfo` with the rsaEncryption OID).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, AuthError> {
        rsa::PrivateKey::from_pkcs8_der(der)
            .map(|key| Self { key })
            .map_err(|e| AuthError::KeyEncoding(e.to_string()))
    }

    /// A key from PKCS#1 DER (`RSAPrivateKey`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, AuthError> {
        rsa::PrivateKey::from_pkcs1_der(der)
            .map(|key| Self { key })
            .map_err(|e| AuthError::KeyEncoding(e.to_string()))
    }

    /// The modulus size in bytes: the length of every signature.
    pub fn size(&self) -> usize {
        self.key.size()
    }

    /// True when `cert` carries this key's public half (same modulus and exponent): the check
    /// that a configured key and certificate belong together.
    pub fn is_for(&self, cert: &Certificate) -> bool {
        cert.rsa_public_key()
            .is_some_and(|public| same_key(public, self.key.as_ref()))
    }

    /// SIG_I or SIG_R (RFC 2409 section 5.1): `hash` (HASH_I or HASH_R, the bare PRF output)
    /// signed with PKCS#1 v1.5 type 1 padding and no DigestInfo, `00 01 FF..FF 00 || hash`, as
    /// strongSwan's `SIGN_RSA_EMSA_PKCS1_NULL`. The private-key operation is blinded with
    /// randomness from the operating system. Fails only when `hash` does not fit the modulus
    /// (longer than its size less 11 bytes).
    pub fn sign_hash(&self, hash: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.key
            .sign(Pkcs1v15Sign::new_unprefixed(), hash)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.n_bytes() == b.n_bytes()
        && a.e().to_be_bytes_trimmed_vartime() == b.e().to_be_bytes_trimmed_vartime()
}
