//! An X.509 certificate: what IKEv1 sends in a CERT payload, names in an ID payload and
//! verifies a peer's SIG payload with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use realm_wire::isakmp::{CertEncoding, IdType, Identification};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, PublicKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::{AuthError, is_pem};
use crate::config::{DistinguishedName, DnAttribute, IdMatch, Identity, Rdn};

/// A subjectAltName (RFC 5280 section 4.2.1.6) of the kinds an IKEv1 identity can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// dNSName, matched by an ID_FQDN.
    Dns(String),
    /// iPAddress, matched by an ID_IPV4_ADDR (or a subnet pattern).
    Ip(IpAddr),
    /// rfc822Name, matched by an ID_USER_FQDN.
    Email(String),
}

/// A parsed X.509 certificate. The DER is kept as received (it is what a CERT payload carries,
/// encoding 4, "X.509 Certificate - Signature", RFC 2408 section 3.9) with what IKE needs from
/// it read out once.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    subject_der: Vec<u8>,
    subject: Option<DistinguishedName>,
    alt_names: Vec<SubjectAltName>,
    key_identifier: Option<Vec<u8>>,
    public_key: Result<PublicKey, String>,
}

impl Certificate {
    /// A certificate from a file's bytes: PEM (the first `CERTIFICATE` block) or DER.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        if is_pem(bytes) {
            Self::from_pem(bytes)
        } else {
            Self::from_der(bytes)
        }
    }

    /// The first `CERTIFICATE` block of PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Self, AuthError> {
        Self::all_from_pem(pem)?
            .into_iter()
            .next()
            .ok_or(AuthError::NoPem {
                what: "CERTIFICATE",
            })
    }

    /// Every `CERTIFICATE` block of PEM text (a CA bundle), in order; an error when there is
    /// none or one is not a certificate.
    pub fn all_from_pem(pem: &[u8]) -> Result<Vec<Self>, AuthError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|der| {
                der.map_err(|e| AuthError::CertEncoding(e.to_string()))
                    .and_then(|der| Self::from_der(&der))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(AuthError::NoPem {
                what: "CERTIFICATE",
            });
        }
        Ok(certs)
    }

    /// A certificate from its DER encoding (as a CERT payload of encoding 4 carries it);
    /// trailing bytes are refused.
    pub fn from_der(der: &[u8]) -> Result<Self, AuthError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| AuthError::CertEncoding(e.to_string()))?;
        if !rest.is_empty() {
            return Err(AuthError::CertEncoding(format!(
                "{} bytes after the certificate",
                rest.len()
            )));
        }
        let alt_names = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(alt_name)
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(AuthError::CertEncoding(e.to_string())),
        };
        let key_identifier = cert.iter_extensions().find_map(|ext| {
            if let ParsedExtension::SubjectKeyIdentifier(id) = ext.parsed_extension() {
                Some(id.0.to_vec())
            } else {
                None
            }
        });
        Ok(Self {
            der: der.to_vec(),
            subject_der: cert.subject().as_raw().to_vec(),
            subject: subject_dn(&cert),
            alt_names,
            key_identifier,
            public_key: PublicKey::from_public_key_der(cert.public_key().raw)
                .map_err(|e| e.to_string()),
        })
    }

    /// The DER encoding, for a CERT payload.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The CERT payload body for this certificate (encoding 4, X.509 Certificate - Signature).
    pub fn to_cert_payload(&self) -> realm_wire::isakmp::Certificate {
        realm_wire::isakmp::Certificate::new(CertEncoding::X509Signature, self.der.clone())
    }

    /// The subject Name as DER: the data of an ID_DER_ASN1_DN identification (RFC 2407
    /// section 4.6.2.1), which peers compare byte for byte.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The subject as a [`DistinguishedName`]; `None` when it is empty or has an attribute
    /// that is not a string of a type [`DnAttribute`] knows (then only
    /// [`subject_der`](Self::subject_der) names it).
    pub fn subject(&self) -> Option<&DistinguishedName> {
        self.subject.as_ref()
    }

    /// The ID payload naming this certificate's subject: ID_DER_ASN1_DN with the subject's
    /// DER, protocol and port 0.
    pub fn dn_identification(&self) -> Identification {
        Identification::new(IdType::DerAsn1Dn, self.subject_der.clone())
    }

    /// The subjectAltNames of the DNS, IP and email kinds, in order.
    pub fn alt_names(&self) -> &[SubjectAltName] {
        &self.alt_names
    }

    /// The RSA public key; `None` when the key is not RSA.
    pub fn rsa_public_key(&self) -> Option<&PublicKey> {
        self.public_key.as_ref().ok()
    }

    /// Checks SIG_I or SIG_R (RFC 2409 section 5.1): `signature` must be `hash` with PKCS#1
    /// v1.5 type 1 padding and no DigestInfo (see [`PrivateKey::sign_hash`]), under this
    /// certificate's RSA key. The signature must be exactly the modulus size.
    ///
    /// [`PrivateKey::sign_hash`]: super::PrivateKey::sign_hash
    pub fn verify_hash(&self, hash: &[u8], signature: &[u8]) -> Result<(), AuthError> {
        let key = self
            .public_key
            .as_ref()
            .map_err(|e| AuthError::NotRsa(e.clone()))?;
        key.verify(Pkcs1v15Sign::new_unprefixed(), hash, signature)
            .map_err(|_| AuthError::BadSignature)
    }

    /// How well this certificate stands for `id`, strongSwan's `has_subject`: a DN identity
    /// is matched against the subject (wildcards allowed, see [`DistinguishedName::matches`]);
    /// an FQDN against the dNSName alt names, a user FQDN against the rfc822Name ones and an
    /// IPv4 address or subnet against the iPAddress ones (each as [`Identity::matches`], so
    /// `*` patterns work); a key ID against the subjectKeyIdentifier; `%any` matches anything.
    /// The best match wins. The subject's CN is not taken for a host name.
    pub fn id_match(&self, id: &Identity) -> IdMatch {
        match id {
            Identity::Any => IdMatch::ANY,
            Identity::Dn(pattern) => self
                .subject
                .as_ref()
                .map_or(IdMatch::NONE, |dn| dn.matches(pattern)),
            Identity::KeyId(key) => {
                if self.key_identifier.as_ref() == Some(key) {
                    IdMatch::PERFECT
                } else {
                    IdMatch::NONE
                }
            }
            Identity::Fqdn(_)
            | Identity::UserFqdn(_)
            | Identity::Ipv4(_)
            | Identity::Ipv4Subnet(_) => self
                .alt_names
                .iter()
                .filter_map(|san| match san {
                    SubjectAltName::Dns(name) => Some(Identity::Fqdn(name.clone())),
                    SubjectAltName::Email(name) => Some(Identity::UserFqdn(name.clone())),
                    SubjectAltName::Ip(IpAddr::V4(a)) => Some(Identity::Ipv4(*a)),
                    SubjectAltName::Ip(IpAddr::V6(_)) => None,
                })
                .map(|san| san.matches(id))
                .max()
                .unwrap_or(IdMatch::NONE),
        }
    }

    /// True when this certificate stands for `id` ([`id_match`](Self::id_match) is a match).
    pub fn matches(&self, id: &Identity) -> bool {
        self.id_match(id).is_match()
    }
}

/// The DNS, IP and email alternative names; the others (URIs, directory names, ...) are
/// not IKEv1 identities.
fn alt_name(name: &GeneralName<'_>) -> Option<SubjectAltName> {
    match name {
        GeneralName::DNSName(n) => Some(SubjectAltName::Dns((*n).to_string())),
        GeneralName::RFC822Name(n) => Some(SubjectAltName::Email((*n).to_string())),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes)
                .ok()
                .map(|b| SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::from(b)))),
            16 => <[u8; 16]>::try_from(*bytes)
                .ok()
                .map(|b| SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::from(b)))),
            _ => None,
        },
        _ => None,
    }
}

/// The subject's attributes in order (multi-valued RDNs flattened, as strongSwan does), or
/// `None` if one is not representable.
fn subject_dn(cert: &X509Certificate<'_>) -> Option<DistinguishedName> {
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        for attr in rdn.iter() {
            let attribute = DnAttribute::from_oid(&attr.attr_type().to_id_string())?;
            let value = attr.as_str().ok()?.to_string();
            rdns.push(Rdn { attribute, value });
        }
    }
    DistinguishedName::from_rdns(rdns)
}
