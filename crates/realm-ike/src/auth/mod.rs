//! The building blocks of IKEv1 authentication with RSA signatures (RFC 2409 section 5.1),
//! which Main Mode will use: a [`PrivateKey`] that signs HASH_I/HASH_R, a peer's
//! [`Certificate`] that verifies such a signature and says whether it belongs to an
//! [`Identity`](crate::config::Identity), and [`TrustAnchors`] (strongSwan's `cacerts`) that
//! validate the peer's certificate chain.
//!
//! **The signature.** RFC 2409 section 5.1: "the data to be signed is the hash (HASH_I or
//! HASH_R) ... signed using the negotiated digital signature algorithm". For RSA every IKEv1
//! implementation (strongSwan's `SIGN_RSA_EMSA_PKCS1_NULL`, Racoon, Windows) pads the bare PRF
//! output with PKCS#1 v1.5 type 1 (`00 01 FF..FF 00 || HASH`) with *no* DigestInfo, since the
//! "hash" is a PRF output of any length, not a digest with an OID. aws-lc-rs has no such mode,
//! so the RSA arithmetic is the `rsa` crate's, with random blinding from the operating system.
//!
//! Nothing here reads a file or a clock: callers hand in the bytes (PEM or DER) and the time.

mod cert;
mod key;
mod trust;

pub use cert::{Certificate, SubjectAltName};
pub use key::PrivateKey;
pub use trust::TrustAnchors;

use realm_wire::isakmp::NotifyMessageType;

/// Why a key or certificate could not be loaded, a signature made or checked, or a chain
/// validated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// PEM text without a block of the kind wanted (or not PEM at all).
    #[error("no PEM {what} block found")]
    NoPem {
        /// What was looked for: "CERTIFICATE", "private key".
        what: &'static str,
    },
    /// A private key that is neither PKCS#8 nor PKCS#1 RSA, or is malformed.
    #[error("not an RSA private key (PKCS#8 or PKCS#1): {0}")]
    KeyEncoding(String),
    /// A private key of a kind Realm cannot use (EC, encrypted PKCS#8).
    #[error("unsupported private key: {0}")]
    UnsupportedKey(&'static str),
    /// Bytes that are not one DER X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    CertEncoding(String),
    /// A certificate whose public key is not RSA (or an RSA key the `rsa` crate refuses: a
    /// modulus outside 1024-8192 bits): no RSA signature can be verified with it.
    #[error("the certificate's public key is not a usable RSA key: {0}")]
    NotRsa(String),
    /// The RSA operation itself failed (a hash too long for the key's modulus).
    #[error("RSA signing failed: {0}")]
    Signing(String),
    /// The signature does not verify under the certificate's key (RFC 2409 5.1 SIG_I/SIG_R).
    #[error("the signature does not verify with the certificate's public key")]
    BadSignature,
    /// A certificate of the chain has expired.
    #[error("certificate expired")]
    Expired,
    /// A certificate of the chain is not valid yet.
    #[error("certificate not valid yet")]
    NotYetValid,
    /// No path from the certificate to a trusted CA.
    #[error("certificate issued by an unknown CA")]
    UnknownIssuer,
    /// A certificate's signature does not verify with its issuer's key.
    #[error("a certificate's signature does not verify with its issuer's key")]
    ChainSignature,
    /// The certificate has an extended key usage, and none that IKE accepts.
    #[error("the certificate's extended key usage does not allow IKE")]
    KeyUsage,
    /// Any other reason rustls-webpki refused the chain (CA used as end entity, bad
    /// extensions, unsupported signature algorithm, ...).
    #[error("certificate chain refused: {0}")]
    Chain(String),
    /// A time before 1970.
    #[error("the time given is before the Unix epoch")]
    BadTime,
}

impl AuthError {
    /// The Notify (RFC 2408 section 3.14.1) to tell the peer, when the error is about what the
    /// peer sent; `None` for local problems (our own key, the clock).
    pub fn notify(&self) -> Option<NotifyMessageType> {
        Some(match self {
            AuthError::CertEncoding(_) => NotifyMessageType::InvalidCertEncoding,
            AuthError::NotRsa(_)
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::ChainSignature
            | AuthError::KeyUsage
            | AuthError::Chain(_) => NotifyMessageType::InvalidCertificate,
            AuthError::UnknownIssuer => NotifyMessageType::InvalidCertAuthority,
            AuthError::BadSignature => NotifyMessageType::InvalidSignature,
            AuthError::NoPem { .. }
            | AuthError::KeyEncoding(_)
            | AuthError::UnsupportedKey(_)
            | AuthError::Signing(_)
            | AuthError::BadTime => return None,
        })
    }
}

/// True when `bytes` look like PEM text (a `-----BEGIN` line, possibly after blank space),
/// else they are taken as DER: strongSwan reads either from its `x509`, `x509ca` and
/// `private`/`rsa` folders.
fn is_pem(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN")
}
