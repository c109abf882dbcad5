//! Certificates for the RSA signature tests, made at test time with rcgen (RSA-2048 keys from
//! aws-lc-rs): a root CA and hosts it certifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, SanType, date_time_ymd,
};
use realm_ike::auth::{Certificate, PrivateKey, TrustAnchors};
use realm_ike::config::Identity;
use realm_ike::ikev1::main_mode::RsaCredentials;
use rustls_pki_types::PrivatePkcs8KeyDer;

/// January 1st of `year`, 00:00 UTC.
pub(crate) fn at_year(year: u64) -> SystemTime {
    let days: u64 = (1970..year)
        .map(|y| {
            if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
                366
            } else {
                365
            }
        })
        .sum();
    UNIX_EPOCH + Duration::from_secs(days * 86_400)
}

pub(crate) fn now() -> SystemTime {
    at_year(2030)
}

/// A fresh RSA-2048 key: its PKCS#8 DER and the rcgen key pair signing with it.
pub(crate) fn rsa_key() -> (Vec<u8>, KeyPair) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: Pkcs8V1Der<'static> = key.as_der().unwrap();
    let der = der.as_ref().to_vec();
    let pair = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der.clone()),
        &PKCS_RSA_SHA256,
    )
    .unwrap();
    (der, pair)
}

pub(crate) struct Ca {
    pub(crate) cert: Certificate,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

/// A CA's parameters: `C=CH, O=strongSwan, CN=<cn>`, valid 2020-2040.
pub(crate) fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    // rcgen's default subject is `CN=rcgen self signed cert`: start from an empty one.
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "CH");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "strongSwan");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    params
}

pub(crate) fn root_ca(cn: &str) -> Ca {
    let (_, key) = rsa_key();
    let params = ca_params(cn);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: Certificate::from_der(cert.der()).unwrap(),
        issuer: Issuer::new(params, key),
    }
}

/// A host: its certificate (`C=CH, O=strongSwan, CN=<name>`, dNSName and iPAddress alt names,
/// valid `from` to `until`) issued by `ca`, and its private key.
pub(crate) struct Host {
    pub(crate) cert: Certificate,
    pub(crate) key_der: Vec<u8>,
}

pub(crate) fn host(name: &str, ip: Ipv4Addr, ca: &Ca, (from, until): (i32, i32)) -> Host {
    let (key_der, pair) = rsa_key();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "CH");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "strongSwan");
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![
        SanType::DnsName(name.try_into().unwrap()),
        SanType::IpAddress(IpAddr::V4(ip)),
    ];
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    params.is_ca = IsCa::ExplicitNoCa;
    let cert = params.signed_by(&pair, &ca.issuer).unwrap();
    Host {
        cert: Certificate::from_der(cert.der()).unwrap(),
        key_der,
    }
}

pub(crate) const VALID: (i32, i32) = (2025, 2035);
pub(crate) const MOON_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub(crate) const SUN_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

pub(crate) fn credentials(
    me: &Host,
    trusted: &Ca,
    peer_id: Option<Identity>,
) -> Arc<RsaCredentials> {
    Arc::new(
        RsaCredentials::new(
            PrivateKey::from_der(&me.key_der).unwrap(),
            vec![me.cert.clone()],
            TrustAnchors::from_certificates([trusted.cert.clone()]).unwrap(),
            peer_id,
        )
        .unwrap(),
    )
}
