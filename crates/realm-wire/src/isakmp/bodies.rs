//! Payload bodies other than the SA: KE, ID, CERT, CR, HASH, SIG, NONCE,
//! Notification, Delete, Vendor ID (RFC 2408 3.7-3.16, RFC 2407 4.6) and
//! NAT-D, NAT-OA (RFC 3947).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::header::Cookie;
use super::sa::{DOI_IPSEC, ProtocolId};
use crate::Error;
use crate::codec::{Reader, Writer};

macro_rules! opaque_body {
    ($(#[$attr:meta])* $name:ident, $field:ident) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        pub struct $name {
            #[allow(missing_docs)]
            #[serde(serialize_with = "super::hex_serde::bytes")]
            pub $field: Vec<u8>,
        }

        impl $name {
            /// A body holding these bytes.
            pub fn new($field: Vec<u8>) -> $name {
                $name { $field }
            }

            pub(crate) fn read(r: &mut Reader<'_>) -> $name {
                $name { $field: r.rest().to_vec() }
            }
        }
    };
}

opaque_body!(
    /// Key Exchange payload (RFC 2408 3.7): for IKE the Diffie-Hellman
    /// public value (RFC 2409 5), zero-padded on the left to the group size.
    KeyExchange,
    data
);
opaque_body!(
    /// Hash payload (RFC 2408 3.11).
    Hash,
    data
);
opaque_body!(
    /// Signature payload (RFC 2408 3.12).
    Signature,
    data
);
opaque_body!(
    /// Nonce payload (RFC 2408 3.13); RFC 2409 5 wants 8 to 256 bytes.
    Nonce,
    data
);
opaque_body!(
    /// Vendor ID payload (RFC 2408 3.16): usually a hash of a vendor string.
    VendorId,
    data
);
opaque_body!(
    /// NAT-D payload (RFC 3947 3.2): HASH(CKY-I | CKY-R | IP | Port).
    NatDiscovery,
    hash
);

/// The DPD Vendor ID, version 1.0 (RFC 3706 5.1; the last two octets are the
/// major and minor version).
pub const DPD_VENDOR_ID: [u8; 16] = [
    0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00,
];

/// The NAT-T Vendor ID: MD5("RFC 3947") (RFC 3947 3.1).
pub const NAT_T_RFC3947_VENDOR_ID: [u8; 16] = [
    0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
];

impl VendorId {
    /// The RFC 3706 DPD Vendor ID.
    pub fn dpd() -> VendorId {
        VendorId::new(DPD_VENDOR_ID.to_vec())
    }

    /// The RFC 3947 NAT-T Vendor ID.
    pub fn nat_t() -> VendorId {
        VendorId::new(NAT_T_RFC3947_VENDOR_ID.to_vec())
    }

    /// True for the DPD Vendor ID of any version (RFC 3706 5.1).
    pub fn is_dpd(&self) -> bool {
        self.data.len() == DPD_VENDOR_ID.len() && self.data.get(..14) == DPD_VENDOR_ID.get(..14)
    }

    /// True for the RFC 3947 NAT-T Vendor ID.
    pub fn is_nat_t(&self) -> bool {
        self.data == NAT_T_RFC3947_VENDOR_ID
    }
}

enum_with_unknown! {
    /// IPsec DOI identification type (RFC 2407 4.6.2.1). Also the ID Type of
    /// NAT-OA (RFC 3947 5.2).
    pub enum IdType(u8) {
        /// ID_IPV4_ADDR: 4 octets.
        Ipv4Addr = 1,
        /// ID_FQDN: a domain name, no terminator.
        Fqdn = 2,
        /// ID_USER_FQDN: user@domain, no terminator.
        UserFqdn = 3,
        /// ID_IPV4_ADDR_SUBNET: address and mask, 4 octets each.
        Ipv4AddrSubnet = 4,
        /// ID_IPV6_ADDR: 16 octets.
        Ipv6Addr = 5,
        /// ID_IPV6_ADDR_SUBNET: address and mask, 16 octets each.
        Ipv6AddrSubnet = 6,
        /// ID_IPV4_ADDR_RANGE: first and last address, 4 octets each.
        Ipv4AddrRange = 7,
        /// ID_IPV6_ADDR_RANGE: first and last address, 16 octets each.
        Ipv6AddrRange = 8,
        /// ID_DER_ASN1_DN: DER X.500 Distinguished Name.
        DerAsn1Dn = 9,
        /// ID_DER_ASN1_GN: DER X.500 GeneralName.
        DerAsn1Gn = 10,
        /// ID_KEY_ID: opaque octets.
        KeyId = 11,
    }
}

/// The identification data of an ID payload, interpreted by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdValue<'a> {
    /// ID_IPV4_ADDR.
    Ipv4Addr(Ipv4Addr),
    /// ID_IPV4_ADDR_SUBNET.
    Ipv4Subnet {
        /// Address.
        addr: Ipv4Addr,
        /// Mask (ones are fixed bits).
        mask: Ipv4Addr,
    },
    /// ID_IPV4_ADDR_RANGE.
    Ipv4Range {
        /// First address.
        start: Ipv4Addr,
        /// Last address.
        end: Ipv4Addr,
    },
    /// ID_IPV6_ADDR.
    Ipv6Addr(Ipv6Addr),
    /// ID_IPV6_ADDR_SUBNET.
    Ipv6Subnet {
        /// Address.
        addr: Ipv6Addr,
        /// Mask.
        mask: Ipv6Addr,
    },
    /// ID_IPV6_ADDR_RANGE.
    Ipv6Range {
        /// First address.
        start: Ipv6Addr,
        /// Last address.
        end: Ipv6Addr,
    },
    /// ID_FQDN.
    Fqdn(&'a [u8]),
    /// ID_USER_FQDN.
    UserFqdn(&'a [u8]),
    /// ID_DER_ASN1_DN.
    DerAsn1Dn(&'a [u8]),
    /// ID_DER_ASN1_GN.
    DerAsn1Gn(&'a [u8]),
    /// ID_KEY_ID.
    KeyId(&'a [u8]),
    /// A type this module does not name.
    Other(&'a [u8]),
}

/// Identification payload (RFC 2408 3.8) with the IPsec DOI layout of the
/// three DOI-specific octets (RFC 2407 4.6.2): protocol and port, both 0
/// when unused. In phase 1 RFC 2407 4.6.2 allows either 0/0 or UDP/500.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Identification {
    /// ID type.
    pub id_type: IdType,
    /// IP protocol number (0 = any).
    pub protocol_id: u8,
    /// Port (0 = any).
    pub port: u16,
    /// Identification data, raw.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub data: Vec<u8>,
}

impl Identification {
    /// An ID with protocol and port 0.
    pub fn new(id_type: IdType, data: Vec<u8>) -> Identification {
        Identification {
            id_type,
            protocol_id: 0,
            port: 0,
            data,
        }
    }

    /// ID_IPV4_ADDR.
    pub fn ipv4(addr: Ipv4Addr) -> Identification {
        Identification::new(IdType::Ipv4Addr, addr.octets().to_vec())
    }

    /// ID_IPV4_ADDR_SUBNET.
    pub fn ipv4_subnet(addr: Ipv4Addr, mask: Ipv4Addr) -> Identification {
        Identification::new(
            IdType::Ipv4AddrSubnet,
            [addr.octets(), mask.octets()].concat(),
        )
    }

    /// ID_IPV4_ADDR_RANGE.
    pub fn ipv4_range(start: Ipv4Addr, end: Ipv4Addr) -> Identification {
        Identification::new(
            IdType::Ipv4AddrRange,
            [start.octets(), end.octets()].concat(),
        )
    }

    /// ID_IPV6_ADDR.
    pub fn ipv6(addr: Ipv6Addr) -> Identification {
        Identification::new(IdType::Ipv6Addr, addr.octets().to_vec())
    }

    /// ID_FQDN.
    pub fn fqdn(name: &str) -> Identification {
        Identification::new(IdType::Fqdn, name.as_bytes().to_vec())
    }

    /// ID_USER_FQDN.
    pub fn user_fqdn(name: &str) -> Identification {
        Identification::new(IdType::UserFqdn, name.as_bytes().to_vec())
    }

    /// ID_KEY_ID.
    pub fn key_id(key: Vec<u8>) -> Identification {
        Identification::new(IdType::KeyId, key)
    }

    /// This ID with a protocol and port (Quick Mode client IDs).
    pub fn with_port(self, protocol_id: u8, port: u16) -> Identification {
        Identification {
            protocol_id,
            port,
            ..self
        }
    }

    /// The data interpreted by type; `None` when an address type does not
    /// have its exact length (the engine answers INVALID-ID-INFORMATION).
    pub fn value(&self) -> Option<IdValue<'_>> {
        let d = self.data.as_slice();
        let v4 = |b: &[u8]| -> Option<Ipv4Addr> { <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from) };
        let v6 =
            |b: &[u8]| -> Option<Ipv6Addr> { <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from) };
        let pair = |n: usize| (d.len() == 2 * n).then(|| d.split_at(n));
        Some(match self.id_type {
            IdType::Ipv4Addr => IdValue::Ipv4Addr(v4(d)?),
            IdType::Ipv4AddrSubnet => {
                let (a, b) = pair(4)?;
                IdValue::Ipv4Subnet {
                    addr: v4(a)?,
                    mask: v4(b)?,
                }
            }
            IdType::Ipv4AddrRange => {
                let (a, b) = pair(4)?;
                IdValue::Ipv4Range {
                    start: v4(a)?,
                    end: v4(b)?,
                }
            }
            IdType::Ipv6Addr => IdValue::Ipv6Addr(v6(d)?),
            IdType::Ipv6AddrSubnet => {
                let (a, b) = pair(16)?;
                IdValue::Ipv6Subnet {
                    addr: v6(a)?,
                    mask: v6(b)?,
                }
            }
            IdType::Ipv6AddrRange => {
                let (a, b) = pair(16)?;
                IdValue::Ipv6Range {
                    start: v6(a)?,
                    end: v6(b)?,
                }
            }
            IdType::Fqdn => IdValue::Fqdn(d),
            IdType::UserFqdn => IdValue::UserFqdn(d),
            IdType::DerAsn1Dn => IdValue::DerAsn1Dn(d),
            IdType::DerAsn1Gn => IdValue::DerAsn1Gn(d),
            IdType::KeyId => IdValue::KeyId(d),
            IdType::Unknown(_) => IdValue::Other(d),
        })
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Identification, Error> {
        let id_type = r.u8("ID payload")?.into();
        let protocol_id = r.u8("ID payload")?;
        let port = r.u16("ID payload")?;
        Ok(Identification {
            id_type,
            protocol_id,
            port,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.id_type.into());
        out.put_u8(self.protocol_id);
        out.put_u16(self.port);
        out.put_slice(&self.data);
    }
}

enum_with_unknown! {
    /// Certificate encoding (RFC 2408 3.9), also the CR's Certificate Type.
    pub enum CertEncoding(u8) {
        /// NONE.
        None = 0,
        /// PKCS #7 wrapped X.509 certificate.
        Pkcs7 = 1,
        /// PGP certificate.
        Pgp = 2,
        /// DNS signed key.
        DnsSignedKey = 3,
        /// X.509 certificate - signature.
        X509Signature = 4,
        /// X.509 certificate - key exchange.
        X509KeyExchange = 5,
        /// Kerberos tokens.
        KerberosTokens = 6,
        /// Certificate Revocation List.
        Crl = 7,
        /// Authority Revocation List.
        Arl = 8,
        /// SPKI certificate.
        Spki = 9,
        /// X.509 certificate - attribute.
        X509Attribute = 10,
    }
}

/// Certificate payload (RFC 2408 3.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Certificate {
    /// Certificate encoding.
    pub encoding: CertEncoding,
    /// Certificate data.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub data: Vec<u8>,
}

impl Certificate {
    /// A certificate payload.
    pub fn new(encoding: CertEncoding, data: Vec<u8>) -> Certificate {
        Certificate { encoding, data }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Certificate, Error> {
        let encoding = r.u8("CERT payload")?.into();
        Ok(Certificate {
            encoding,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.encoding.into());
        out.put_slice(&self.data);
    }
}

/// Certificate Request payload (RFC 2408 3.10).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CertificateRequest {
    /// Requested certificate type.
    pub cert_type: CertEncoding,
    /// Acceptable certificate authority (for X.509, a DER issuer name);
    /// empty when any will do.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub authority: Vec<u8>,
}

impl CertificateRequest {
    /// A certificate request payload.
    pub fn new(cert_type: CertEncoding, authority: Vec<u8>) -> CertificateRequest {
        CertificateRequest {
            cert_type,
            authority,
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<CertificateRequest, Error> {
        let cert_type = r.u8("CR payload")?.into();
        Ok(CertificateRequest {
            cert_type,
            authority: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.cert_type.into());
        out.put_slice(&self.authority);
    }
}

enum_with_unknown! {
    /// Notify message type: errors 1-30 and status 16384 (RFC 2408 3.14.1),
    /// IPsec DOI status 24576-24578 (RFC 2407 4.6.3), DPD 36136/36137
    /// (RFC 3706 5.3).
    pub enum NotifyMessageType(u16) {
        /// INVALID-PAYLOAD-TYPE.
        InvalidPayloadType = 1,
        /// DOI-NOT-SUPPORTED.
        DoiNotSupported = 2,
        /// SITUATION-NOT-SUPPORTED.
        SituationNotSupported = 3,
        /// INVALID-COOKIE.
        InvalidCookie = 4,
        /// INVALID-MAJOR-VERSION.
        InvalidMajorVersion = 5,
        /// INVALID-MINOR-VERSION.
        InvalidMinorVersion = 6,
        /// INVALID-EXCHANGE-TYPE.
        InvalidExchangeType = 7,
        /// INVALID-FLAGS.
        InvalidFlags = 8,
        /// INVALID-MESSAGE-ID.
        InvalidMessageId = 9,
        /// INVALID-PROTOCOL-ID.
        InvalidProtocolId = 10,
        /// INVALID-SPI.
        InvalidSpi = 11,
        /// INVALID-TRANSFORM-ID.
        InvalidTransformId = 12,
        /// ATTRIBUTES-NOT-SUPPORTED.
        AttributesNotSupported = 13,
        /// NO-PROPOSAL-CHOSEN.
        NoProposalChosen = 14,
        /// BAD-PROPOSAL-SYNTAX.
        BadProposalSyntax = 15,
        /// PAYLOAD-MALFORMED.
        PayloadMalformed = 16,
        /// INVALID-KEY-INFORMATION.
        InvalidKeyInformation = 17,
        /// INVALID-ID-INFORMATION.
        InvalidIdInformation = 18,
        /// INVALID-CERT-ENCODING.
        InvalidCertEncoding = 19,
        /// INVALID-CERTIFICATE.
        InvalidCertificate = 20,
        /// CERT-TYPE-UNSUPPORTED.
        CertTypeUnsupported = 21,
        /// INVALID-CERT-AUTHORITY.
        InvalidCertAuthority = 22,
        /// INVALID-HASH-INFORMATION.
        InvalidHashInformation = 23,
        /// AUTHENTICATION-FAILED.
        AuthenticationFailed = 24,
        /// INVALID-SIGNATURE.
        InvalidSignature = 25,
        /// ADDRESS-NOTIFICATION.
        AddressNotification = 26,
        /// NOTIFY-SA-LIFETIME.
        NotifySaLifetime = 27,
        /// CERTIFICATE-UNAVAILABLE.
        CertificateUnavailable = 28,
        /// UNSUPPORTED-EXCHANGE-TYPE.
        UnsupportedExchangeType = 29,
        /// UNEQUAL-PAYLOAD-LENGTHS.
        UnequalPayloadLengths = 30,
        /// CONNECTED (status).
        Connected = 16384,
        /// RESPONDER-LIFETIME (IPsec DOI status).
        ResponderLifetime = 24576,
        /// REPLAY-STATUS (IPsec DOI status).
        ReplayStatus = 24577,
        /// INITIAL-CONTACT (IPsec DOI status).
        InitialContact = 24578,
        /// R-U-THERE (DPD request).
        RUThere = 36136,
        /// R-U-THERE-ACK (DPD reply).
        RUThereAck = 36137,
    }
}

impl NotifyMessageType {
    /// True for error types (1-16383, RFC 2408 3.14.1); status types are
    /// 16384 and above.
    pub fn is_error(self) -> bool {
        matches!(u16::from(self), 1..=16383)
    }
}

/// Notification payload (RFC 2408 3.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Notification {
    /// DOI (0 for ISAKMP, 1 for IPsec).
    pub doi: u32,
    /// Protocol the notification concerns.
    pub protocol_id: ProtocolId,
    /// Notify message type.
    pub message_type: NotifyMessageType,
    /// SPI (SPI Size is its length; for ISAKMP it may be the cookie pair or
    /// empty).
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub spi: Vec<u8>,
    /// Notification data.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub data: Vec<u8>,
}

impl Notification {
    /// A notification payload.
    pub fn new(
        doi: u32,
        protocol_id: ProtocolId,
        message_type: NotifyMessageType,
        spi: Vec<u8>,
        data: Vec<u8>,
    ) -> Notification {
        Notification {
            doi,
            protocol_id,
            message_type,
            spi,
            data,
        }
    }

    /// A DPD R-U-THERE (`ack == false`) or R-U-THERE-ACK (RFC 3706 5.3): IPsec
    /// DOI, protocol ISAKMP, SPI = the cookie pair, data = 32-bit sequence.
    pub fn dpd(ack: bool, initiator: Cookie, responder: Cookie, sequence: u32) -> Notification {
        let message_type = if ack {
            NotifyMessageType::RUThereAck
        } else {
            NotifyMessageType::RUThere
        };
        Notification {
            doi: DOI_IPSEC,
            protocol_id: ProtocolId::Isakmp,
            message_type,
            spi: [initiator, responder].concat(),
            data: sequence.to_be_bytes().to_vec(),
        }
    }

    /// The DPD sequence number of an R-U-THERE(-ACK) with 4 data octets.
    pub fn dpd_sequence(&self) -> Option<u32> {
        match self.message_type {
            NotifyMessageType::RUThere | NotifyMessageType::RUThereAck => {
                Some(u32::from_be_bytes(self.data.as_slice().try_into().ok()?))
            }
            _ => None,
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Notification, Error> {
        let doi = r.u32("Notification payload")?;
        let protocol_id = r.u8("Notification payload")?.into();
        let spi_size = r.u8("Notification payload")?;
        let message_type = r.u16("Notification payload")?.into();
        let spi = r.take(usize::from(spi_size), "Notification SPI")?.to_vec();
        Ok(Notification {
            doi,
            protocol_id,
            message_type,
            spi,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| Error::Malformed {
            what: "Notification payload",
            offset: out.len(),
            reason: "SPI longer than 255 bytes",
        })?;
        out.put_u32(self.doi);
        out.put_u8(self.protocol_id.into());
        out.put_u8(spi_size);
        out.put_u16(self.message_type.into());
        out.put_slice(&self.spi);
        out.put_slice(&self.data);
        Ok(())
    }
}

/// Delete payload (RFC 2408 3.15). All SPIs have `spi_size` octets (16, the
/// cookie pair, for an ISAKMP SA; 4 for AH/ESP).
///
/// A Delete with SPI Size 0 and a non-zero # of SPIs is refused as
/// malformed: it names nothing, and accepting it would let 8 bytes make the
/// parser allocate 65535 entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Delete {
    /// DOI (0 for ISAKMP, 1 for IPsec).
    pub doi: u32,
    /// Protocol of the SAs being deleted.
    pub protocol_id: ProtocolId,
    /// SPI Size (kept because an empty list does not show it).
    pub spi_size: u8,
    /// SPIs, each `spi_size` octets.
    #[serde(serialize_with = "super::hex_serde::list")]
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    /// A Delete for these SPIs, all of length `spi_size`.
    pub fn new(doi: u32, protocol_id: ProtocolId, spi_size: u8, spis: Vec<Vec<u8>>) -> Delete {
        Delete {
            doi,
            protocol_id,
            spi_size,
            spis,
        }
    }

    /// The Delete of an ISAKMP SA: SPI = the cookie pair (RFC 2408 3.15).
    pub fn isakmp_sa(initiator: Cookie, responder: Cookie) -> Delete {
        Delete::new(
            DOI_IPSEC,
            ProtocolId::Isakmp,
            16,
            vec![[initiator, responder].concat()],
        )
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Delete, Error> {
        let doi = r.u32("Delete payload")?;
        let protocol_id = r.u8("Delete payload")?.into();
        let offset = r.offset();
        let spi_size = r.u8("Delete payload")?;
        let count = r.u16("Delete payload")?;
        if spi_size == 0 && count != 0 {
            return Err(Error::Malformed {
                what: "Delete payload",
                offset,
                reason: "SPI Size 0 with a non-zero # of SPIs",
            });
        }
        let mut spis = Vec::new();
        for _ in 0..count {
            spis.push(r.take(usize::from(spi_size), "Delete SPI")?.to_vec());
        }
        Ok(Delete {
            doi,
            protocol_id,
            spi_size,
            spis,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let bad = |reason| Error::Malformed {
            what: "Delete payload",
            offset: out.len(),
            reason,
        };
        let count = u16::try_from(self.spis.len()).map_err(|_| bad("more than 65535 SPIs"))?;
        if self
            .spis
            .iter()
            .any(|s| s.len() != usize::from(self.spi_size))
        {
            return Err(bad("an SPI differs from SPI Size"));
        }
        if self.spi_size == 0 && count != 0 {
            return Err(bad("SPI Size 0 with a non-zero # of SPIs"));
        }
        out.put_u32(self.doi);
        out.put_u8(self.protocol_id.into());
        out.put_u8(self.spi_size);
        out.put_u16(count);
        for spi in &self.spis {
            out.put_slice(spi);
        }
        Ok(())
    }
}

/// NAT-OA payload (RFC 3947 5.2): the original address of a peer behind a
/// NAT, sent in Quick Mode for transport mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NatOriginalAddress {
    /// ID_IPV4_ADDR or ID_IPV6_ADDR.
    pub id_type: IdType,
    /// The three RESERVED octets after the ID type, as received.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub reserved: [u8; 3],
    /// The address, raw (4 or 16 octets when well formed).
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub address: Vec<u8>,
}

impl NatOriginalAddress {
    /// A NAT-OA for `ip`.
    pub fn new(ip: IpAddr) -> NatOriginalAddress {
        let (id_type, address) = match ip {
            IpAddr::V4(a) => (IdType::Ipv4Addr, a.octets().to_vec()),
            IpAddr::V6(a) => (IdType::Ipv6Addr, a.octets().to_vec()),
        };
        NatOriginalAddress {
            id_type,
            reserved: [0; 3],
            address,
        }
    }

    /// The address, when type and length agree.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.id_type {
            IdType::Ipv4Addr => <[u8; 4]>::try_from(self.address.as_slice())
                .ok()
                .map(IpAddr::from),
            IdType::Ipv6Addr => <[u8; 16]>::try_from(self.address.as_slice())
                .ok()
                .map(IpAddr::from),
            _ => None,
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<NatOriginalAddress, Error> {
        let id_type = r.u8("NAT-OA payload")?.into();
        let reserved = r.array::<3>("NAT-OA payload")?;
        Ok(NatOriginalAddress {
            id_type,
            reserved,
            address: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.id_type.into());
        out.put_slice(&self.reserved);
        out.put_slice(&self.address);
    }
}
