//! Data attributes (RFC 2408 3.3) and value helpers for the IKE phase 1
//! classes (RFC 2409 Appendix A) and the IPsec DOI phase 2 classes
//! (RFC 2407 4.5).
//!
//! [`DataAttribute`] is the wire truth and round-trips exactly, TV or TLV.
//! [`IkeAttribute`] and [`IpsecAttribute`] are views for the IKE engine;
//! converting back picks the shortest legal form, which may differ from what
//! a peer sent (that is why the raw attribute stays the source of truth).

use serde::Serialize;

use crate::Error;
use crate::codec::{Reader, Writer};

/// Attribute Format bit: set means TV (2-byte value in the header).
const AF_TV: u16 = 0x8000;

/// The value of a data attribute, in the form it had on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum AttributeValue {
    /// AF=1, Type/Value: the value is the 2 octets after the type.
    Basic(u16),
    /// AF=0, Type/Length/Value: a 2-octet length then that many octets.
    Variable(#[serde(serialize_with = "super::hex_serde::bytes")] Vec<u8>),
}

/// One data attribute (RFC 2408 3.3, Figure 4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DataAttribute {
    /// Attribute type, the 15 bits after the AF bit. Emit fails above 0x7fff.
    pub attribute_type: u16,
    /// Value, TV or TLV.
    pub value: AttributeValue,
}

impl DataAttribute {
    /// A TV attribute.
    pub fn basic(attribute_type: u16, value: u16) -> DataAttribute {
        DataAttribute {
            attribute_type,
            value: AttributeValue::Basic(value),
        }
    }

    /// A TLV attribute.
    pub fn variable(attribute_type: u16, value: Vec<u8>) -> DataAttribute {
        DataAttribute {
            attribute_type,
            value: AttributeValue::Variable(value),
        }
    }

    /// A variable-length integer attribute in its shortest legal form:
    /// TV when it fits two octets (RFC 2409 Appendix A allows this for
    /// variable classes), otherwise TLV of 4 or 8 octets.
    pub fn integer(attribute_type: u16, value: u64) -> DataAttribute {
        match (u16::try_from(value), u32::try_from(value)) {
            (Ok(v), _) => DataAttribute::basic(attribute_type, v),
            (_, Ok(v)) => DataAttribute::variable(attribute_type, v.to_be_bytes().to_vec()),
            _ => DataAttribute::variable(attribute_type, value.to_be_bytes().to_vec()),
        }
    }

    /// The value as an unsigned integer: a TV value, or a TLV value of at
    /// most 8 octets read big-endian (RFC 2409 Appendix A life durations).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttributeValue::Basic(v) => Some(u64::from(*v)),
            AttributeValue::Variable(bytes) if bytes.len() <= 8 => {
                Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
            }
            AttributeValue::Variable(_) => None,
        }
    }

    /// The TV value, or `None` for a TLV attribute.
    pub fn basic_value(&self) -> Option<u16> {
        match self.value {
            AttributeValue::Basic(v) => Some(v),
            AttributeValue::Variable(_) => None,
        }
    }

    /// Reads one attribute.
    pub fn read(r: &mut Reader<'_>) -> Result<DataAttribute, Error> {
        let af_type = r.u16("data attribute")?;
        let attribute_type = af_type & !AF_TV;
        let value = if af_type & AF_TV != 0 {
            AttributeValue::Basic(r.u16("data attribute")?)
        } else {
            let len = r.u16("data attribute")?;
            AttributeValue::Variable(r.take(usize::from(len), "data attribute value")?.to_vec())
        };
        Ok(DataAttribute {
            attribute_type,
            value,
        })
    }

    /// Reads attributes until `r` is empty.
    pub fn read_all(r: &mut Reader<'_>) -> Result<Vec<DataAttribute>, Error> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(DataAttribute::read(r)?);
        }
        Ok(out)
    }

    /// Bytes this attribute takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match &self.value {
            AttributeValue::Basic(_) => 4,
            AttributeValue::Variable(v) => 4 + v.len(),
        }
    }

    /// Appends the attribute. Fails when the type does not fit 15 bits or a
    /// TLV value is longer than 65535 octets.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.attribute_type & AF_TV != 0 {
            return Err(Error::Malformed {
                what: "data attribute",
                offset: out.len(),
                reason: "attribute type above 0x7fff",
            });
        }
        match &self.value {
            AttributeValue::Basic(v) => {
                out.put_u16(self.attribute_type | AF_TV);
                out.put_u16(*v);
            }
            AttributeValue::Variable(v) => {
                let len = u16::try_from(v.len()).map_err(|_| Error::Malformed {
                    what: "data attribute",
                    offset: out.len(),
                    reason: "TLV value longer than 65535 bytes",
                })?;
                out.put_u16(self.attribute_type);
                out.put_u16(len);
                out.put_slice(v);
            }
        }
        Ok(())
    }

    /// The phase 1 class of this attribute (meaningful in a KEY_IKE transform).
    pub fn ike_type(&self) -> IkeAttributeType {
        IkeAttributeType::from(self.attribute_type)
    }

    /// The IPsec DOI class of this attribute (meaningful in an AH, ESP or
    /// IPCOMP transform).
    pub fn ipsec_type(&self) -> IpsecAttributeType {
        IpsecAttributeType::from(self.attribute_type)
    }
}

enum_with_unknown! {
    /// IKE phase 1 attribute classes (RFC 2409 Appendix A). B = basic (TV),
    /// V = variable.
    pub enum IkeAttributeType(u16) {
        /// Encryption Algorithm (B).
        EncryptionAlgorithm = 1,
        /// Hash Algorithm (B).
        HashAlgorithm = 2,
        /// Authentication Method (B).
        AuthenticationMethod = 3,
        /// Group Description (B).
        GroupDescription = 4,
        /// Group Type (B).
        GroupType = 5,
        /// Group Prime/Irreducible Polynomial (V).
        GroupPrime = 6,
        /// Group Generator One (V).
        GroupGeneratorOne = 7,
        /// Group Generator Two (V).
        GroupGeneratorTwo = 8,
        /// Group Curve A (V).
        GroupCurveA = 9,
        /// Group Curve B (V).
        GroupCurveB = 10,
        /// Life Type (B).
        LifeType = 11,
        /// Life Duration (V).
        LifeDuration = 12,
        /// PRF (B).
        Prf = 13,
        /// Key Length (B), in bits.
        KeyLength = 14,
        /// Field Size (B).
        FieldSize = 15,
        /// Group Order (V).
        GroupOrder = 16,
    }
}

enum_with_unknown! {
    /// Phase 1 encryption algorithm (RFC 2409 Appendix A; 7 from RFC 3602).
    pub enum EncryptionAlgorithm(u16) {
        /// DES-CBC.
        DesCbc = 1,
        /// IDEA-CBC.
        IdeaCbc = 2,
        /// Blowfish-CBC.
        BlowfishCbc = 3,
        /// RC5-R16-B64-CBC.
        Rc5R16B64Cbc = 4,
        /// 3DES-CBC.
        TripleDesCbc = 5,
        /// CAST-CBC.
        CastCbc = 6,
        /// AES-CBC (RFC 3602 5); the Key Length attribute gives the size.
        AesCbc = 7,
    }
}

enum_with_unknown! {
    /// Phase 1 hash algorithm (RFC 2409 Appendix A; 4-6 from RFC 4868).
    pub enum HashAlgorithm(u16) {
        /// MD5.
        Md5 = 1,
        /// SHA-1.
        Sha1 = 2,
        /// Tiger.
        Tiger = 3,
        /// SHA2-256.
        Sha2_256 = 4,
        /// SHA2-384.
        Sha2_384 = 5,
        /// SHA2-512.
        Sha2_512 = 6,
    }
}

enum_with_unknown! {
    /// Phase 1 authentication method (RFC 2409 Appendix A). XAUTH and hybrid
    /// codes (64221-65010, from drafts) stay `Unknown`.
    pub enum AuthenticationMethod(u16) {
        /// Pre-shared key.
        PreSharedKey = 1,
        /// DSS signatures.
        DssSignatures = 2,
        /// RSA signatures.
        RsaSignatures = 3,
        /// Encryption with RSA.
        RsaEncryption = 4,
        /// Revised encryption with RSA.
        RevisedRsaEncryption = 5,
    }
}

enum_with_unknown! {
    /// Diffie-Hellman group (RFC 2409 6.1-6.4 and Appendix A; 5 and 14-18
    /// from RFC 3526; 19-21 from RFC 5903). Also the IPsec DOI Group
    /// Description (RFC 2407 4.5), which uses the same numbers.
    pub enum GroupDescription(u16) {
        /// Default 768-bit MODP group (Oakley group 1).
        Modp768 = 1,
        /// Alternate 1024-bit MODP group (Oakley group 2).
        Modp1024 = 2,
        /// EC2N group on GP(2^155).
        Ec2n155 = 3,
        /// EC2N group on GP(2^185).
        Ec2n185 = 4,
        /// 1536-bit MODP group.
        Modp1536 = 5,
        /// 2048-bit MODP group.
        Modp2048 = 14,
        /// 3072-bit MODP group.
        Modp3072 = 15,
        /// 4096-bit MODP group.
        Modp4096 = 16,
        /// 6144-bit MODP group.
        Modp6144 = 17,
        /// 8192-bit MODP group.
        Modp8192 = 18,
        /// 256-bit random ECP group.
        Ecp256 = 19,
        /// 384-bit random ECP group.
        Ecp384 = 20,
        /// 521-bit random ECP group.
        Ecp521 = 21,
    }
}

enum_with_unknown! {
    /// Group type (RFC 2409 Appendix A).
    pub enum GroupType(u16) {
        /// MODP (modular exponentiation group).
        Modp = 1,
        /// ECP (elliptic curve group over GF(P)).
        Ecp = 2,
        /// EC2N (elliptic curve group over GF(2^N)).
        Ec2n = 3,
    }
}

enum_with_unknown! {
    /// Life type, shared by phase 1 (RFC 2409 Appendix A) and the IPsec DOI
    /// SA Life Type (RFC 2407 4.5).
    pub enum LifeType(u16) {
        /// Seconds.
        Seconds = 1,
        /// Kilobytes.
        Kilobytes = 2,
    }
}

enum_with_unknown! {
    /// IPsec DOI SA attribute classes (RFC 2407 4.5).
    pub enum IpsecAttributeType(u16) {
        /// SA Life Type (B).
        SaLifeType = 1,
        /// SA Life Duration (V).
        SaLifeDuration = 2,
        /// Group Description (B), for PFS in Quick Mode.
        GroupDescription = 3,
        /// Encapsulation Mode (B).
        EncapsulationMode = 4,
        /// Authentication Algorithm (B).
        AuthenticationAlgorithm = 5,
        /// Key Length (B), in bits.
        KeyLength = 6,
        /// Key Rounds (B).
        KeyRounds = 7,
        /// Compress Dictionary Size (B).
        CompressDictionarySize = 8,
        /// Compress Private Algorithm (V).
        CompressPrivateAlgorithm = 9,
    }
}

enum_with_unknown! {
    /// IPsec encapsulation mode (RFC 2407 4.5; 3 and 4 from RFC 3947 5.1.
    /// The draft values 61443/61444 stay `Unknown`).
    pub enum EncapsulationMode(u16) {
        /// Tunnel.
        Tunnel = 1,
        /// Transport.
        Transport = 2,
        /// UDP-Encapsulated-Tunnel.
        UdpEncapsulatedTunnel = 3,
        /// UDP-Encapsulated-Transport.
        UdpEncapsulatedTransport = 4,
    }
}

enum_with_unknown! {
    /// IPsec authentication algorithm (RFC 2407 4.5; 5-7 from RFC 4868).
    pub enum AuthenticationAlgorithm(u16) {
        /// HMAC-MD5.
        HmacMd5 = 1,
        /// HMAC-SHA(-1).
        HmacSha = 2,
        /// DES-MAC.
        DesMac = 3,
        /// KPDK.
        Kpdk = 4,
        /// HMAC-SHA2-256.
        HmacSha2_256 = 5,
        /// HMAC-SHA2-384.
        HmacSha2_384 = 6,
        /// HMAC-SHA2-512.
        HmacSha2_512 = 7,
    }
}

/// A phase 1 attribute decoded by class (RFC 2409 Appendix A).
///
/// Basic classes are decoded only from TV attributes ("attributes described
/// as basic MUST NOT be encoded as variable"); a TLV basic class, the
/// variable group parameters and unknown classes come back as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum IkeAttribute {
    /// Encryption Algorithm.
    EncryptionAlgorithm(EncryptionAlgorithm),
    /// Hash Algorithm.
    HashAlgorithm(HashAlgorithm),
    /// Authentication Method.
    AuthenticationMethod(AuthenticationMethod),
    /// Group Description.
    GroupDescription(GroupDescription),
    /// Group Type.
    GroupType(GroupType),
    /// Life Type.
    LifeType(LifeType),
    /// Life Duration, in the unit of the preceding Life Type.
    LifeDuration(u64),
    /// PRF (no values are defined by RFC 2409).
    Prf(u16),
    /// Key Length in bits.
    KeyLength(u16),
    /// Field Size in bits.
    FieldSize(u16),
    /// Anything else, raw.
    Other(DataAttribute),
}

impl IkeAttribute {
    /// Decodes a raw attribute.
    pub fn from_attribute(attr: &DataAttribute) -> IkeAttribute {
        use IkeAttributeType as T;
        let basic = attr.basic_value();
        match (attr.ike_type(), basic) {
            (T::EncryptionAlgorithm, Some(v)) => IkeAttribute::EncryptionAlgorithm(v.into()),
            (T::HashAlgorithm, Some(v)) => IkeAttribute::HashAlgorithm(v.into()),
            (T::AuthenticationMethod, Some(v)) => IkeAttribute::AuthenticationMethod(v.into()),
            (T::GroupDescription, Some(v)) => IkeAttribute::GroupDescription(v.into()),
            (T::GroupType, Some(v)) => IkeAttribute::GroupType(v.into()),
            (T::LifeType, Some(v)) => IkeAttribute::LifeType(v.into()),
            (T::Prf, Some(v)) => IkeAttribute::Prf(v),
            (T::KeyLength, Some(v)) => IkeAttribute::KeyLength(v),
            (T::FieldSize, Some(v)) => IkeAttribute::FieldSize(v),
            (T::LifeDuration, _) => match attr.as_u64() {
                Some(v) => IkeAttribute::LifeDuration(v),
                None => IkeAttribute::Other(attr.clone()),
            },
            _ => IkeAttribute::Other(attr.clone()),
        }
    }

    /// Encodes to a raw attribute in its shortest legal form.
    pub fn to_attribute(&self) -> DataAttribute {
        use IkeAttributeType as T;
        let b = |t: T, v: u16| DataAttribute::basic(t.into(), v);
        match self {
            IkeAttribute::EncryptionAlgorithm(v) => b(T::EncryptionAlgorithm, (*v).into()),
            IkeAttribute::HashAlgorithm(v) => b(T::HashAlgorithm, (*v).into()),
            IkeAttribute::AuthenticationMethod(v) => b(T::AuthenticationMethod, (*v).into()),
            IkeAttribute::GroupDescription(v) => b(T::GroupDescription, (*v).into()),
            IkeAttribute::GroupType(v) => b(T::GroupType, (*v).into()),
            IkeAttribute::LifeType(v) => b(T::LifeType, (*v).into()),
            IkeAttribute::LifeDuration(v) => DataAttribute::integer(T::LifeDuration.into(), *v),
            IkeAttribute::Prf(v) => b(T::Prf, *v),
            IkeAttribute::KeyLength(v) => b(T::KeyLength, *v),
            IkeAttribute::FieldSize(v) => b(T::FieldSize, *v),
            IkeAttribute::Other(a) => a.clone(),
        }
    }
}

/// An IPsec DOI phase 2 attribute decoded by class (RFC 2407 4.5), with the
/// same TV/TLV rules as [`IkeAttribute`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum IpsecAttribute {
    /// SA Life Type.
    SaLifeType(LifeType),
    /// SA Life Duration, in the unit of the preceding SA Life Type.
    SaLifeDuration(u64),
    /// Group Description (PFS group).
    GroupDescription(GroupDescription),
    /// Encapsulation Mode.
    EncapsulationMode(EncapsulationMode),
    /// Authentication Algorithm.
    AuthenticationAlgorithm(AuthenticationAlgorithm),
    /// Key Length in bits.
    KeyLength(u16),
    /// Key Rounds.
    KeyRounds(u16),
    /// Compress Dictionary Size.
    CompressDictionarySize(u16),
    /// Anything else (including Compress Private Algorithm), raw.
    Other(DataAttribute),
}

impl IpsecAttribute {
    /// Decodes a raw attribute.
    pub fn from_attribute(attr: &DataAttribute) -> IpsecAttribute {
        use IpsecAttributeType as T;
        match (attr.ipsec_type(), attr.basic_value()) {
            (T::SaLifeType, Some(v)) => IpsecAttribute::SaLifeType(v.into()),
            (T::GroupDescription, Some(v)) => IpsecAttribute::GroupDescription(v.into()),
            (T::EncapsulationMode, Some(v)) => IpsecAttribute::EncapsulationMode(v.into()),
            (T::AuthenticationAlgorithm, Some(v)) => {
                IpsecAttribute::AuthenticationAlgorithm(v.into())
            }
            (T::KeyLength, Some(v)) => IpsecAttribute::KeyLength(v),
            (T::KeyRounds, Some(v)) => IpsecAttribute::KeyRounds(v),
            (T::CompressDictionarySize, Some(v)) => IpsecAttribute::CompressDictionarySize(v),
            (T::SaLifeDuration, _) => match attr.as_u64() {
                Some(v) => IpsecAttribute::SaLifeDuration(v),
                None => IpsecAttribute::Other(attr.clone()),
            },
            _ => IpsecAttribute::Other(attr.clone()),
        }
    }

    /// Encodes to a raw attribute in its shortest legal form.
    pub fn to_attribute(&self) -> DataAttribute {
        use IpsecAttributeType as T;
        let b = |t: T, v: u16| DataAttribute::basic(t.into(), v);
        match self {
            IpsecAttribute::SaLifeType(v) => b(T::SaLifeType, (*v).into()),
            IpsecAttribute::SaLifeDuration(v) => {
                DataAttribute::integer(T::SaLifeDuration.into(), *v)
            }
            IpsecAttribute::GroupDescription(v) => b(T::GroupDescription, (*v).into()),
            IpsecAttribute::EncapsulationMode(v) => b(T::EncapsulationMode, (*v).into()),
            IpsecAttribute::AuthenticationAlgorithm(v) => {
                b(T::AuthenticationAlgorithm, (*v).into())
            }
            IpsecAttribute::KeyLength(v) => b(T::KeyLength, *v),
            IpsecAttribute::KeyRounds(v) => b(T::KeyRounds, *v),
            IpsecAttribute::CompressDictionarySize(v) => b(T::CompressDictionarySize, *v),
            IpsecAttribute::Other(a) => a.clone(),
        }
    }
}
