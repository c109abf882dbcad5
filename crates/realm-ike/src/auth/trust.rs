//! The CA certificates a peer's certificate must chain to (strongSwan's `cacerts`), and the
//! chain validation, by rustls-webpki.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter, KeyUsage,
    RequiredEkuNotFoundContext,
};

use super::{AuthError, Certificate};

/// Trusted CA certificates: a peer's certificate is accepted when a path of valid signatures
/// leads from it, through intermediates the peer sent, to one of them.
///
/// Validation is rustls-webpki's (RFC 5280 path building, signatures checked with aws-lc-rs):
/// every certificate of the path must be within its validity at the time given; CAs must have
/// basicConstraints cA (and a path length they allow); signature algorithms are RSA PKCS#1
/// v1.5 and PSS with SHA-256/384/512, ECDSA and Ed25519 (no SHA-1, no RSA keys under 2048
/// bits). The trust anchors themselves are taken as they are (their dates are not checked).
/// No revocation (CRL, OCSP) is checked.
///
/// **Extended key usage.** IKE certificates commonly have no EKU, or serverAuth and/or
/// clientAuth (what strongSwan's `pki --issue --flag serverAuth` adds), or id-kp-ipsecIKE
/// (RFC 4945 section 5.1.3.12). The rule is webpki's `required_if_present` widened to that
/// set: a certificate without the extension is accepted; one with it must list serverAuth,
/// clientAuth, ipsecIKE, strongSwan's ikeIntermediate or anyExtendedKeyUsage (RFC 4945
/// 5.1.3.12 lets an IKE implementation accept these). An empty extension is refused.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    certs: Vec<Certificate>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustAnchors {
    /// No trusted CA: every chain fails with [`AuthError::UnknownIssuer`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust these CA certificates.
    pub fn from_certificates(
        cas: impl IntoIterator<Item = Certificate>,
    ) -> Result<Self, AuthError> {
        let mut anchors = Self::new();
        for ca in cas {
            anchors.add(ca)?;
        }
        Ok(anchors)
    }

    /// Trust the certificates of one CA file: every `CERTIFICATE` block of PEM text, or the
    /// one DER certificate.
    pub fn add_file(&mut self, bytes: &[u8]) -> Result<(), AuthError> {
        let certs = if super::is_pem(bytes) {
            Certificate::all_from_pem(bytes)?
        } else {
            vec![Certificate::from_der(bytes)?]
        };
        for cert in certs {
            self.add(cert)?;
        }
        Ok(())
    }

    /// Trust one CA certificate (its subject and public key, as rustls-webpki's trust anchor).
    pub fn add(&mut self, ca: Certificate) -> Result<(), AuthError> {
        let der = CertificateDer::from(ca.der());
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| AuthError::CertEncoding(e.to_string()))?
            .to_owned();
        self.anchors.push(anchor);
        self.certs.push(ca);
        Ok(())
    }

    /// The trusted CA certificates, in the order added.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// Validates `leaf` (the peer's certificate) at `now` through `intermediates` (other
    /// certificates the peer sent, in any order) to one of the trusted CAs. The leaf must be
    /// an end-entity certificate (a CA certificate as leaf is refused). Errors:
    /// [`AuthError::Expired`], [`AuthError::NotYetValid`], [`AuthError::UnknownIssuer`] (no
    /// path to a trusted CA), [`AuthError::ChainSignature`], [`AuthError::KeyUsage`], and
    /// [`AuthError::Chain`] for the rest.
    pub fn verify_chain(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: SystemTime,
    ) -> Result<(), AuthError> {
        let since_epoch = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::BadTime)?;
        let leaf_der = CertificateDer::from(leaf.der());
        let end_entity = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| AuthError::CertEncoding(e.to_string()))?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.der()))
            .collect();
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                UnixTime::since_unix_epoch(since_epoch),
                IkeKeyUsage,
                None,
                None,
            )
            .map(|_| ())
            .map_err(chain_error)
    }
}

fn chain_error(e: webpki::Error) -> AuthError {
    #[allow(deprecated)] // RequiredEkuNotFound: webpki's own validators no longer return it.
    match e {
        webpki::Error::CertExpired { .. } => AuthError::Expired,
        webpki::Error::CertNotValidYet { .. } => AuthError::NotYetValid,
        webpki::Error::UnknownIssuer => AuthError::UnknownIssuer,
        webpki::Error::InvalidSignatureForPublicKey => AuthError::ChainSignature,
        webpki::Error::RequiredEkuNotFound
        | webpki::Error::RequiredEkuNotFoundContext(_)
        | webpki::Error::EmptyEkuExtension => AuthError::KeyUsage,
        other => AuthError::Chain(other.to_string()),
    }
}

/// The extended key usages accepted for IKE (DER OID contents).
const IKE_EKUS: [&[u8]; 5] = [
    // serverAuth, 1.3.6.1.5.5.7.3.1
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01],
    // clientAuth, 1.3.6.1.5.5.7.3.2
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02],
    // id-kp-ipsecIKE, 1.3.6.1.5.5.7.3.17 (RFC 4945 5.1.3.12)
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11],
    // ikeIntermediate, 1.3.6.1.5.5.8.2.2 (strongSwan's `--flag ikeIntermediate`)
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x08, 0x02, 0x02],
    // anyExtendedKeyUsage, 2.5.29.37.0
    &[0x55, 0x1d, 0x25, 0x00],
];

/// webpki's `required_if_present` widened to [`IKE_EKUS`]; see [`TrustAnchors`].
#[derive(Debug, Clone, Copy)]
struct IkeKeyUsage;

impl ExtendedKeyUsageValidator for IkeKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if IKE_EKUS.iter().any(|oid| KeyPurposeId::new(oid) == id) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            RequiredEkuNotFoundContext {
                required: KeyUsage::server_auth(),
                present,
            },
        ))
    }
}
