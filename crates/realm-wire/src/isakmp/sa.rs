//! Security Association, Proposal and Transform payloads (RFC 2408 3.4-3.6)
//! with the IPsec DOI situation (RFC 2407 4.2, 4.6.1) and identifiers
//! (RFC 2407 4.4).

use serde::Serialize;

use super::attribute::DataAttribute;
use super::payload::{GENERIC_HEADER_LEN, PayloadType, emit_with_header};
use crate::Error;
use crate::codec::{Reader, Writer};

/// DOI 0: generic ISAKMP SA (RFC 2408 3.4).
pub const DOI_ISAKMP: u32 = 0;
/// DOI 1: the IPsec DOI (RFC 2407 4.1).
pub const DOI_IPSEC: u32 = 1;

/// IPsec DOI situation bit SIT_IDENTITY_ONLY (RFC 2407 4.2.1).
pub const SIT_IDENTITY_ONLY: u32 = 0x01;
/// IPsec DOI situation bit SIT_SECRECY (RFC 2407 4.2.2).
pub const SIT_SECRECY: u32 = 0x02;
/// IPsec DOI situation bit SIT_INTEGRITY (RFC 2407 4.2.3).
pub const SIT_INTEGRITY: u32 = 0x04;

/// Transform ID KEY_IKE in an ISAKMP proposal (RFC 2407 4.4.2).
pub const KEY_IKE: u8 = 1;

enum_with_unknown! {
    /// Security protocol identifier (RFC 2408 A.3, RFC 2407 4.4.1).
    pub enum ProtocolId(u8) {
        /// PROTO_ISAKMP: phase 1.
        Isakmp = 1,
        /// PROTO_IPSEC_AH.
        IpsecAh = 2,
        /// PROTO_IPSEC_ESP.
        IpsecEsp = 3,
        /// PROTO_IPCOMP.
        Ipcomp = 4,
    }
}

enum_with_unknown! {
    /// IPsec AH transform identifier (RFC 2407 4.4.3; 5-7 from RFC 4868).
    pub enum AhTransformId(u8) {
        /// AH_MD5.
        Md5 = 2,
        /// AH_SHA.
        Sha = 3,
        /// AH_DES.
        Des = 4,
        /// AH_SHA2-256.
        Sha2_256 = 5,
        /// AH_SHA2-384.
        Sha2_384 = 6,
        /// AH_SHA2-512.
        Sha2_512 = 7,
    }
}

enum_with_unknown! {
    /// IPsec ESP transform identifier (RFC 2407 4.4.4; 12 from RFC 3602).
    pub enum EspTransformId(u8) {
        /// ESP_DES_IV64.
        DesIv64 = 1,
        /// ESP_DES.
        Des = 2,
        /// ESP_3DES.
        TripleDes = 3,
        /// ESP_RC5.
        Rc5 = 4,
        /// ESP_IDEA.
        Idea = 5,
        /// ESP_CAST.
        Cast = 6,
        /// ESP_BLOWFISH.
        Blowfish = 7,
        /// ESP_3IDEA.
        TripleIdea = 8,
        /// ESP_DES_IV32.
        DesIv32 = 9,
        /// ESP_RC4.
        Rc4 = 10,
        /// ESP_NULL.
        Null = 11,
        /// ESP_AES (AES-CBC).
        Aes = 12,
    }
}

enum_with_unknown! {
    /// IPCOMP transform identifier (RFC 2407 4.4.5).
    pub enum IpcompTransformId(u8) {
        /// IPCOMP_OUI.
        Oui = 1,
        /// IPCOMP_DEFLATE.
        Deflate = 2,
        /// IPCOMP_LZS.
        Lzs = 3,
    }
}

/// Security Association payload body (RFC 2408 3.4).
///
/// Where the situation ends depends on the DOI. For the IPsec DOI it is the
/// 4-octet bitmap plus, when SIT_SECRECY or SIT_INTEGRITY is set, the
/// labelled fields of RFC 2407 4.6.1, and Proposal payloads follow. For any
/// other DOI the layout is unknown: the whole rest of the body is kept as the
/// situation and `proposals` is empty (the engine answers DOI-NOT-SUPPORTED).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SecurityAssociation {
    /// Domain of Interpretation.
    pub doi: u32,
    /// Situation, raw; see [`SecurityAssociation::situation_bits`].
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub situation: Vec<u8>,
    /// Proposal payloads, in order (RFC 2408 4.2: same number = AND,
    /// different numbers = OR).
    pub proposals: Vec<Proposal>,
}

impl SecurityAssociation {
    /// An IPsec DOI SA with situation SIT_IDENTITY_ONLY, the usual IKE case.
    pub fn ipsec(proposals: Vec<Proposal>) -> SecurityAssociation {
        SecurityAssociation {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY.to_be_bytes().to_vec(),
            proposals,
        }
    }

    /// The situation bitmap (first 4 octets), if present.
    pub fn situation_bits(&self) -> Option<u32> {
        let bytes: [u8; 4] = self.situation.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// Bytes the SA body takes on the wire (without generic header).
    pub fn buffer_len(&self) -> usize {
        4 + self.situation.len()
            + self
                .proposals
                .iter()
                .map(Proposal::buffer_len)
                .sum::<usize>()
    }

    /// Reads an SA body; `r` holds exactly the body.
    pub fn read(r: &mut Reader<'_>) -> Result<SecurityAssociation, Error> {
        let doi = r.u32("SA payload")?;
        if doi != DOI_IPSEC {
            let situation = r.rest().to_vec();
            return Ok(SecurityAssociation {
                doi,
                situation,
                proposals: Vec::new(),
            });
        }
        let situation_len = ipsec_situation_len(&mut r.clone())?;
        let situation = r.take(situation_len, "SA situation")?.to_vec();
        // RFC 2408 3.5: a Proposal's Next Payload is 2 (more follow) or 0.
        let proposals = read_nested(
            r,
            PayloadType::Proposal,
            "Proposal Next Payload must be 2 or 0 (RFC 2408 3.5)",
            Proposal::read,
        )?;
        Ok(SecurityAssociation {
            doi,
            situation,
            proposals,
        })
    }

    /// Appends the SA body. Fails when the situation of an IPsec DOI SA does
    /// not have the RFC 2407 4.6.1 layout, when a non-IPsec SA carries
    /// proposals (it could not be parsed back), or when a field overflows.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        if self.doi == DOI_IPSEC {
            let len = ipsec_situation_len(&mut Reader::new(&self.situation)).ok();
            if len != Some(self.situation.len()) {
                return Err(Error::Malformed {
                    what: "SA payload",
                    offset: start,
                    reason: "situation does not match the RFC 2407 4.6.1 layout",
                });
            }
        } else if !self.proposals.is_empty() {
            return Err(Error::Malformed {
                what: "SA payload",
                offset: start,
                reason: "proposals need a DOI whose situation length is known (IPsec DOI 1)",
            });
        }
        out.put_u32(self.doi);
        out.put_slice(&self.situation);
        let last = self.proposals.len().saturating_sub(1);
        for (i, proposal) in self.proposals.iter().enumerate() {
            let next = if i < last {
                PayloadType::Proposal
            } else {
                PayloadType::None
            };
            let emitted = emit_with_header(
                out,
                next.into(),
                proposal.reserved,
                "Proposal payload",
                |o| proposal.emit(o),
            );
            if let Err(e) = emitted {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }

    pub(crate) fn has_nonzero_reserved(&self) -> bool {
        self.proposals.iter().any(|p| {
            p.reserved != 0
                || p.transforms
                    .iter()
                    .any(|t| t.reserved != 0 || t.reserved2 != 0)
        })
    }
}

/// Length of an IPsec DOI situation at the start of `r` (RFC 2407 4.6.1):
/// the 4-octet bitmap; if SIT_SECRECY or SIT_INTEGRITY is set, the Labeled
/// Domain Identifier (4), then for each of secrecy and integrity that is set
/// a 2-octet length in octets + 2 reserved + the level padded to 32 bits,
/// and a 2-octet length in bits + 2 reserved + the category bitmap padded to
/// 32 bits.
fn ipsec_situation_len(r: &mut Reader<'_>) -> Result<usize, Error> {
    let start = r.offset();
    let bits = r.u32("SA situation")?;
    if bits & (SIT_SECRECY | SIT_INTEGRITY) != 0 {
        r.take(4, "SA Labeled Domain Identifier")?;
        for (bit, what) in [
            (SIT_SECRECY, "SA secrecy label"),
            (SIT_INTEGRITY, "SA integrity label"),
        ] {
            if bits & bit != 0 {
                let level_len = usize::from(r.u16(what)?);
                r.take(2, what)?;
                r.take(pad4(level_len), what)?;
                let category_bits = usize::from(r.u16(what)?);
                r.take(2, what)?;
                r.take(pad4(category_bits.div_ceil(8)), what)?;
            }
        }
    }
    Ok(r.offset() - start)
}

fn pad4(n: usize) -> usize {
    n.next_multiple_of(4)
}

/// Reads a chain of Proposal or Transform payloads filling `r`: each has a
/// generic header whose Next Payload is `own` (more follow) or 0 (last).
fn read_nested<'a, T>(
    r: &mut Reader<'a>,
    own: PayloadType,
    bad_next: &'static str,
    mut read: impl FnMut(u8, &mut Reader<'a>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let what = own.what();
    let mut items = Vec::new();
    if r.is_empty() {
        return Ok(items);
    }
    loop {
        let offset = r.offset();
        let [next, reserved, len_hi, len_lo] = r.array::<4>(what)?;
        let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let body_len = length
            .checked_sub(GENERIC_HEADER_LEN)
            .ok_or(Error::Malformed {
                what,
                offset: offset + 2,
                reason: "Payload Length below the 4-byte generic header",
            })?;
        let mut body = r.sub(body_len, what)?;
        items.push(read(reserved, &mut body)?);
        body.expect_end(what)?;
        match PayloadType::from(next) {
            PayloadType::None => break,
            t if t == own => continue,
            _ => {
                return Err(Error::Malformed {
                    what,
                    offset,
                    reason: bad_next,
                });
            }
        }
    }
    r.expect_end(what)?;
    Ok(items)
}

/// Proposal payload (RFC 2408 3.5), found only inside an SA.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Proposal {
    /// RESERVED octet of its generic header, as received.
    pub reserved: u8,
    /// Proposal number.
    pub number: u8,
    /// Protocol of this proposal.
    pub protocol_id: ProtocolId,
    /// The sender's SPI (SPI Size is its length; 0-16 and ignored for
    /// ISAKMP, 4 for AH/ESP, 2 or 4 for IPCOMP).
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub spi: Vec<u8>,
    /// Transform payloads (# of Transforms is their count).
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// A proposal with a zero RESERVED octet.
    pub fn new(
        number: u8,
        protocol_id: ProtocolId,
        spi: Vec<u8>,
        transforms: Vec<Transform>,
    ) -> Proposal {
        Proposal {
            reserved: 0,
            number,
            protocol_id,
            spi,
            transforms,
        }
    }

    /// Bytes this Proposal payload takes, generic header and transforms included.
    pub fn buffer_len(&self) -> usize {
        8 + self.spi.len()
            + self
                .transforms
                .iter()
                .map(Transform::buffer_len)
                .sum::<usize>()
    }

    fn read(reserved: u8, r: &mut Reader<'_>) -> Result<Proposal, Error> {
        let offset = r.offset();
        let [number, protocol_id, spi_size, count] = r.array::<4>("Proposal payload")?;
        let spi = r.take(usize::from(spi_size), "Proposal SPI")?.to_vec();
        // RFC 2408 3.6: a Transform's Next Payload is 3 (more follow) or 0.
        let transforms = read_nested(
            r,
            PayloadType::Transform,
            "Transform Next Payload must be 3 or 0 (RFC 2408 3.6)",
            Transform::read,
        )?;
        if transforms.len() != usize::from(count) {
            return Err(Error::Malformed {
                what: "Proposal payload",
                offset: offset + 3,
                reason: "# of Transforms differs from the Transform payloads present",
            });
        }
        Ok(Proposal {
            reserved,
            number,
            protocol_id: protocol_id.into(),
            spi,
            transforms,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let overflow = |reason| Error::Malformed {
            what: "Proposal payload",
            offset: out.len(),
            reason,
        };
        let spi_size =
            u8::try_from(self.spi.len()).map_err(|_| overflow("SPI longer than 255 bytes"))?;
        let count = u8::try_from(self.transforms.len())
            .map_err(|_| overflow("more than 255 transforms"))?;
        out.put_u8(self.number);
        out.put_u8(self.protocol_id.into());
        out.put_u8(spi_size);
        out.put_u8(count);
        out.put_slice(&self.spi);
        let last = self.transforms.len().saturating_sub(1);
        for (i, transform) in self.transforms.iter().enumerate() {
            let next = if i < last {
                PayloadType::Transform
            } else {
                PayloadType::None
            };
            emit_with_header(
                out,
                next.into(),
                transform.reserved,
                "Transform payload",
                |o| transform.emit(o),
            )?;
        }
        Ok(())
    }
}

/// Transform payload (RFC 2408 3.6), found only inside a Proposal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Transform {
    /// RESERVED octet of its generic header, as received.
    pub reserved: u8,
    /// Transform number.
    pub number: u8,
    /// Transform ID; its meaning depends on the proposal's protocol
    /// ([`KEY_IKE`], [`AhTransformId`], [`EspTransformId`], [`IpcompTransformId`]).
    pub transform_id: u8,
    /// RESERVED2, as received (sent as 0).
    pub reserved2: u16,
    /// SA attributes in data attribute format (RFC 2408 3.3).
    pub attributes: Vec<DataAttribute>,
}

impl Transform {
    /// A transform with zero RESERVED fields.
    pub fn new(number: u8, transform_id: u8, attributes: Vec<DataAttribute>) -> Transform {
        Transform {
            reserved: 0,
            number,
            transform_id,
            reserved2: 0,
            attributes,
        }
    }

    /// Bytes this Transform payload takes, generic header included.
    pub fn buffer_len(&self) -> usize {
        8 + self
            .attributes
            .iter()
            .map(DataAttribute::buffer_len)
            .sum::<usize>()
    }

    fn read(reserved: u8, r: &mut Reader<'_>) -> Result<Transform, Error> {
        let number = r.u8("Transform payload")?;
        let transform_id = r.u8("Transform payload")?;
        let reserved2 = r.u16("Transform payload")?;
        let attributes = DataAttribute::read_all(r)?;
        Ok(Transform {
            reserved,
            number,
            transform_id,
            reserved2,
            attributes,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.put_u8(self.number);
        out.put_u8(self.transform_id);
        out.put_u16(self.reserved2);
        for attribute in &self.attributes {
            attribute.emit(out)?;
        }
        Ok(())
    }
}
