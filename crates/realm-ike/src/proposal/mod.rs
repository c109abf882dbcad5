//! IKEv1 proposals: what Realm offers and accepts for the ISAKMP SA (phase 1) and for ESP SAs
//! (Quick Mode), from the configuration string to the SA payload and back.
//!
//! This module owns
//! - the proposal types, [`IkeProposal`] and [`EspProposal`], in which only what Realm implements
//!   can be written down (AES-CBC 128/256 with HMAC-SHA1/SHA2-256/SHA2-384 and DH groups 2, 14,
//!   19, 20; for ESP also AES-GCM-16 128/256, and an optional PFS group);
//! - [`spell`]: parsing and printing proposals the way strongSwan spells them in swanctl.conf
//!   (`proposals = aes128-sha256-modp2048`, `esp_proposals = aes128gcm16-modp2048`), with
//!   errors a strongSwan user understands;
//! - the conversion to and from `realm-wire` SA payloads: [`phase1_sa`] and [`phase2_sa`] build
//!   an initiator's offer with the RFC 2409 Appendix A and RFC 2407 section 4.5 attributes,
//!   [`decode_phase1_transform`] and [`decode_esp_transform`] read a peer's transforms;
//! - [`select`]: the responder's choice (RFC 2408 sections 4.2, 5.4-5.6; RFC 2409 section 5)
//!   with a typed refusal carrying the Notify type and a log line saying what was offered and
//!   why none matched, and the initiator's check of the responder's answer.
//!
//! It never touches a socket, a clock or a key. Every function taking peer input returns a typed
//! error instead of panicking.
//!
//! ```
//! use std::num::NonZeroU32;
//! use realm_ike::proposal::{phase1_sa, select_phase1, AuthMethod, IkeProposals, Phase1Policy};
//!
//! let ours: IkeProposals = "aes256-sha384-ecp384,aes128-sha256-modp2048".parse()?;
//! let theirs: IkeProposals = "aes128-sha256-modp2048".parse()?;
//! let hour = NonZeroU32::new(3600).ok_or("zero")?;
//! // The initiator's SA payload (one ISAKMP proposal, one transform per configured proposal).
//! let offer = phase1_sa(theirs.as_slice(), AuthMethod::PreSharedKey, hour)?;
//! // The responder picks from it...
//! let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, hour);
//! let choice = select_phase1(&offer, &policy)?;
//! assert_eq!(choice.proposal.to_string(), "aes128-sha256-modp2048");
//! // ...and answers with the chosen transform, unchanged.
//! assert_eq!(choice.reply().proposals[0].transforms, offer.proposals[0].transforms);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod select;
pub mod spell;

use std::fmt;
use std::num::NonZeroU32;

use realm_wire::isakmp::{
    AuthenticationAlgorithm, AuthenticationMethod as WireAuthMethod, DataAttribute,
    EncryptionAlgorithm, GroupDescription, HashAlgorithm as WireHash, IkeAttribute,
    IkeAttributeType, IpsecAttribute, IpsecAttributeType, KEY_IKE, LifeType, Proposal, ProtocolId,
    SecurityAssociation, Transform,
};

use crate::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm, PrfAlgorithm};

pub use select::{
    NegotiatedLifetime, OfferedTransform, Phase1Choice, Phase1Policy, Phase2Choice, Phase2Policy,
    Preference, Refusal, RefusalKind, check_phase1_reply, check_phase2_reply, select_phase1,
    select_phase2,
};
pub use spell::{EspProposals, IkeProposals, SpellError, SpellOptions};

/// ESP transform ID ESP_AES (AES-CBC; RFC 3602 section 5, "IKE Interactions").
pub const ESP_AES_CBC: u8 = 12;
/// ESP transform ID ESP_AES_GCM_16 (AES-GCM with a 16-octet ICV; RFC 4106 section 8, "IKE
/// Conventions", and the IANA "IPsec ESP Transform Identifiers" registry).
pub const ESP_AES_GCM_16: u8 = 20;
/// Encapsulation Mode value UDP-Encapsulated-Tunnel used by draft-ietf-ipsec-nat-t-ike-00 to -03
/// (before RFC 3947 assigned 3); strongSwan still sends it to peers announcing those drafts.
pub const ENCAPSULATION_UDP_TUNNEL_DRAFT: u16 = 61443;
/// Encapsulation Mode value UDP-Encapsulated-Transport of the same drafts (RFC 3947 assigned 4).
pub const ENCAPSULATION_UDP_TRANSPORT_DRAFT: u16 = 61444;
/// The IPsec SA lifetime a peer means when its transform has no SA Life Duration: "If
/// unspecified, the default value shall be assumed to be 28800 seconds" (RFC 2407 section 4.5).
pub const DEFAULT_PHASE2_LIFETIME_SECS: u64 = 28_800;

/// An ISAKMP SA (phase 1) proposal: one transform of the phase 1 SA payload. IKEv1 has no AEAD
/// and no separate integrity algorithm: the hash serves the IVs and HASH payloads, and its HMAC
/// is the PRF (RFC 2409 section 4: "If a "prf" is not negotiated, the HMAC ... version of the
/// negotiated hash algorithm is used"), which is also how strongSwan maps its IKEv1 proposals
/// (`proposal_substructure.c`: the hash attribute becomes both integrity and PRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeProposal {
    /// Encryption of the phase 1 and 2 messages.
    pub cipher: CipherAlgorithm,
    /// Hash (and, through its HMAC, the PRF).
    pub hash: HashAlgorithm,
    /// Diffie-Hellman group of the Main/Aggressive Mode exchange.
    pub group: DhGroup,
}

impl IkeProposal {
    /// A phase 1 proposal.
    pub const fn new(cipher: CipherAlgorithm, hash: HashAlgorithm, group: DhGroup) -> Self {
        Self {
            cipher,
            hash,
            group,
        }
    }

    /// The PRF: HMAC of the hash (RFC 2409 section 4; Realm never sends a PRF attribute).
    pub const fn prf(self) -> PrfAlgorithm {
        PrfAlgorithm::hmac(self.hash)
    }

    /// The KEY_IKE transform offering this proposal, numbered `number`, with the RFC 2409
    /// Appendix A attributes in the order strongSwan sends them: Encryption Algorithm (AES-CBC),
    /// Key Length, Hash Algorithm, Group Description, Authentication Method, Life Type (seconds)
    /// and Life Duration.
    pub fn transform(&self, number: u8, auth: AuthMethod, lifetime: NonZeroU32) -> Transform {
        let attributes = [
            IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::AesCbc),
            IkeAttribute::KeyLength(key_bits(self.cipher)),
            IkeAttribute::HashAlgorithm(wire_hash(self.hash)),
            IkeAttribute::GroupDescription(GroupDescription::from(self.group.id())),
            IkeAttribute::AuthenticationMethod(auth.to_wire()),
            IkeAttribute::LifeType(LifeType::Seconds),
            IkeAttribute::LifeDuration(u64::from(lifetime.get())),
        ];
        Transform::new(
            number,
            KEY_IKE,
            attributes.iter().map(IkeAttribute::to_attribute).collect(),
        )
    }
}

/// Phase 1 authentication method (RFC 2409 Appendix A), given by the connection's
/// `local.auth` ("psk" or "pubkey").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Pre-shared key (1).
    PreSharedKey,
    /// RSA signatures (3).
    RsaSignatures,
}

impl AuthMethod {
    /// The attribute value.
    pub const fn to_wire(self) -> WireAuthMethod {
        match self {
            Self::PreSharedKey => WireAuthMethod::PreSharedKey,
            Self::RsaSignatures => WireAuthMethod::RsaSignatures,
        }
    }

    /// The method for an attribute value, if Realm speaks it.
    pub const fn from_wire(method: WireAuthMethod) -> Option<Self> {
        match method {
            WireAuthMethod::PreSharedKey => Some(Self::PreSharedKey),
            WireAuthMethod::RsaSignatures => Some(Self::RsaSignatures),
            _ => None,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PreSharedKey => "psk",
            Self::RsaSignatures => "rsasig",
        })
    }
}

/// AES key size of an ESP cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AesKeySize {
    /// 128 bits.
    Bits128,
    /// 256 bits.
    Bits256,
}

impl AesKeySize {
    /// The Key Length attribute value.
    pub const fn bits(self) -> u16 {
        match self {
            Self::Bits128 => 128,
            Self::Bits256 => 256,
        }
    }

    /// The size for a Key Length attribute value, if Realm speaks it (AES-192 it does not).
    pub const fn from_bits(bits: u16) -> Option<Self> {
        match bits {
            128 => Some(Self::Bits128),
            256 => Some(Self::Bits256),
            _ => None,
        }
    }
}

/// ESP integrity algorithm (IPsec DOI Authentication Algorithm attribute, RFC 2407 section 4.5
/// and RFC 4868 section 2.4 for the SHA-2 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EspIntegrity {
    /// HMAC-SHA-1-96 (RFC 2404), attribute value HMAC-SHA = 2.
    HmacSha1_96,
    /// HMAC-SHA-256-128 (RFC 4868), attribute value HMAC-SHA2-256 = 5.
    HmacSha256_128,
    /// HMAC-SHA-384-192 (RFC 4868), attribute value HMAC-SHA2-384 = 6.
    HmacSha384_192,
}

impl EspIntegrity {
    /// The Authentication Algorithm attribute value.
    pub const fn to_wire(self) -> AuthenticationAlgorithm {
        match self {
            Self::HmacSha1_96 => AuthenticationAlgorithm::HmacSha,
            Self::HmacSha256_128 => AuthenticationAlgorithm::HmacSha2_256,
            Self::HmacSha384_192 => AuthenticationAlgorithm::HmacSha2_384,
        }
    }

    /// The integrity algorithm for an attribute value, if Realm speaks it.
    pub const fn from_wire(alg: AuthenticationAlgorithm) -> Option<Self> {
        match alg {
            AuthenticationAlgorithm::HmacSha => Some(Self::HmacSha1_96),
            AuthenticationAlgorithm::HmacSha2_256 => Some(Self::HmacSha256_128),
            AuthenticationAlgorithm::HmacSha2_384 => Some(Self::HmacSha384_192),
            _ => None,
        }
    }
}

/// ESP encryption: AES-CBC with an integrity algorithm, or AES-GCM with a 16-octet ICV, which
/// authenticates by itself and so takes no integrity algorithm (Realm, like strongSwan, neither
/// sends nor accepts an Authentication Algorithm attribute with it). ESP without integrity is
/// not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EspCipher {
    /// ESP_AES (transform ID 12) with an Authentication Algorithm.
    AesCbc(AesKeySize, EspIntegrity),
    /// ESP_AES_GCM_16 (transform ID 20).
    AesGcm16(AesKeySize),
}

impl EspCipher {
    /// The ESP transform ID.
    pub const fn transform_id(self) -> u8 {
        match self {
            Self::AesCbc(..) => ESP_AES_CBC,
            Self::AesGcm16(_) => ESP_AES_GCM_16,
        }
    }

    /// The AES key size.
    pub const fn key_size(self) -> AesKeySize {
        match self {
            Self::AesCbc(size, _) | Self::AesGcm16(size) => size,
        }
    }

    /// The integrity algorithm, `None` for AES-GCM.
    pub const fn integrity(self) -> Option<EspIntegrity> {
        match self {
            Self::AesCbc(_, integrity) => Some(integrity),
            Self::AesGcm16(_) => None,
        }
    }
}

/// An ESP proposal: one transform of a Quick Mode SA payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspProposal {
    /// Encryption and integrity.
    pub cipher: EspCipher,
    /// The Quick Mode Diffie-Hellman group for perfect forward secrecy (Group Description
    /// attribute, RFC 2409 section 5.5), `None` for no PFS.
    pub pfs: Option<DhGroup>,
}

impl EspProposal {
    /// An ESP proposal.
    pub const fn new(cipher: EspCipher, pfs: Option<DhGroup>) -> Self {
        Self { cipher, pfs }
    }

    /// The ESP transform offering this proposal, numbered `number`, with the RFC 2407 section
    /// 4.5 attributes in the order strongSwan sends them: Key Length, Authentication Algorithm
    /// (AES-CBC only), Group Description (with PFS), Encapsulation Mode, SA Life Type (seconds)
    /// and SA Life Duration.
    pub fn transform(
        &self,
        number: u8,
        encapsulation: Encapsulation,
        lifetime: NonZeroU32,
    ) -> Transform {
        let mut attributes = vec![IpsecAttribute::KeyLength(self.cipher.key_size().bits())];
        if let Some(integrity) = self.cipher.integrity() {
            attributes.push(IpsecAttribute::AuthenticationAlgorithm(integrity.to_wire()));
        }
        if let Some(group) = self.pfs {
            attributes.push(IpsecAttribute::GroupDescription(GroupDescription::from(
                group.id(),
            )));
        }
        attributes.push(IpsecAttribute::EncapsulationMode(
            encapsulation.value().into(),
        ));
        attributes.push(IpsecAttribute::SaLifeType(LifeType::Seconds));
        attributes.push(IpsecAttribute::SaLifeDuration(u64::from(lifetime.get())));
        Transform::new(
            number,
            self.cipher.transform_id(),
            attributes
                .iter()
                .map(IpsecAttribute::to_attribute)
                .collect(),
        )
    }
}

/// IPsec mode of a child SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpsecMode {
    /// Tunnel mode.
    Tunnel,
    /// Transport mode.
    Transport,
}

impl fmt::Display for IpsecMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tunnel => "tunnel",
            Self::Transport => "transport",
        })
    }
}

/// Whether, and by which specification, ESP is carried in UDP (NAT traversal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpEncapsulation {
    /// Plain ESP (IP protocol 50).
    None,
    /// UDP-encapsulated per RFC 3947 section 5.1 (Encapsulation Mode 3 and 4).
    Rfc3947,
    /// UDP-encapsulated as the NAT-T drafts before RFC 3947 numbered it (61443 and 61444), for
    /// peers that announced one of those drafts' vendor IDs.
    Draft,
}

/// The Encapsulation Mode attribute (RFC 2407 section 4.5; RFC 3947 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encapsulation {
    /// Tunnel or transport.
    pub mode: IpsecMode,
    /// Plain or UDP-encapsulated.
    pub udp: UdpEncapsulation,
}

impl Encapsulation {
    /// Plain tunnel mode, what a peer means when it sends no Encapsulation Mode (RFC 2407
    /// leaves that "host-dependent"; strongSwan assumes tunnel, and so does Realm).
    pub const TUNNEL: Self = Self::new(IpsecMode::Tunnel, UdpEncapsulation::None);

    /// An encapsulation.
    pub const fn new(mode: IpsecMode, udp: UdpEncapsulation) -> Self {
        Self { mode, udp }
    }

    /// The attribute value: 1 Tunnel, 2 Transport, 3 UDP-Encapsulated-Tunnel,
    /// 4 UDP-Encapsulated-Transport, 61443/61444 the drafts' values for the last two.
    pub const fn value(self) -> u16 {
        match (self.mode, self.udp) {
            (IpsecMode::Tunnel, UdpEncapsulation::None) => 1,
            (IpsecMode::Transport, UdpEncapsulation::None) => 2,
            (IpsecMode::Tunnel, UdpEncapsulation::Rfc3947) => 3,
            (IpsecMode::Transport, UdpEncapsulation::Rfc3947) => 4,
            (IpsecMode::Tunnel, UdpEncapsulation::Draft) => ENCAPSULATION_UDP_TUNNEL_DRAFT,
            (IpsecMode::Transport, UdpEncapsulation::Draft) => ENCAPSULATION_UDP_TRANSPORT_DRAFT,
        }
    }

    /// The encapsulation an attribute value names, `None` for any other value.
    pub const fn from_value(value: u16) -> Option<Self> {
        let (mode, udp) = match value {
            1 => (IpsecMode::Tunnel, UdpEncapsulation::None),
            2 => (IpsecMode::Transport, UdpEncapsulation::None),
            3 => (IpsecMode::Tunnel, UdpEncapsulation::Rfc3947),
            4 => (IpsecMode::Transport, UdpEncapsulation::Rfc3947),
            ENCAPSULATION_UDP_TUNNEL_DRAFT => (IpsecMode::Tunnel, UdpEncapsulation::Draft),
            ENCAPSULATION_UDP_TRANSPORT_DRAFT => (IpsecMode::Transport, UdpEncapsulation::Draft),
            _ => return None,
        };
        Some(Self { mode, udp })
    }
}

/// The lifetimes a transform states (RFC 2409 Appendix A Life Type/Life Duration, RFC 2407
/// section 4.5 SA Life Type/SA Life Duration). `None` where the transform states none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lifetimes {
    /// Life Duration in seconds.
    pub seconds: Option<u64>,
    /// Life Duration in kilobytes.
    pub kilobytes: Option<u64>,
}

/// A phase 1 transform Realm understands, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Phase1Transform {
    /// The algorithms.
    pub proposal: IkeProposal,
    /// The authentication method.
    pub auth: AuthMethod,
    /// The stated lifetimes.
    pub life: Lifetimes,
}

/// An ESP transform Realm understands, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Phase2Transform {
    /// The algorithms and PFS group.
    pub proposal: EspProposal,
    /// Mode and UDP encapsulation ([`Encapsulation::TUNNEL`] when not stated).
    pub encapsulation: Encapsulation,
    /// The stated lifetimes.
    pub life: Lifetimes,
}

/// Why a peer's transform could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The transform breaks the attribute rules (a mandatory attribute missing, an attribute
    /// twice, a basic attribute encoded as variable, a Life Duration without its Life Type):
    /// the SA is answered with BAD-PROPOSAL-SYNTAX (RFC 2408 section 5.6).
    #[error("malformed transform: {0}")]
    Malformed(String),
    /// The transform is well formed but asks for something Realm does not implement: it is
    /// skipped (RFC 2408 section 5.6: unsupported transforms "MUST be ignored").
    #[error("{0}")]
    Unsupported(String),
}

/// Why an offer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Nothing to offer.
    #[error("no proposals to offer")]
    NoProposals,
    /// Transform numbers are one octet, so at most 255 transforms fit one proposal.
    #[error("{count} proposals offered, at most 255 fit one SA payload")]
    TooManyProposals {
        /// How many were given.
        count: usize,
    },
    /// A Quick Mode offer carries at most one KE payload, so every offered ESP proposal must
    /// name the same PFS group, or all none.
    #[error(
        "ESP proposals with different PFS groups cannot be offered together (Quick Mode carries one KE payload)"
    )]
    MixedPfsGroups,
    /// Aggressive Mode sends its KE payload with the offer, so it cannot negotiate the
    /// Diffie-Hellman group (RFC 2409 section 5): every offered phase 1 proposal must name the
    /// same group.
    #[error(
        "phase 1 proposals with different DH groups cannot be offered in Aggressive Mode (its KE goes with the offer, RFC 2409 section 5)"
    )]
    MixedPhase1Groups,
}

/// The phase 1 SA payload offering `proposals` in this order: IPsec DOI, SIT_IDENTITY_ONLY, one
/// ISAKMP proposal (RFC 2409 section 5 allows only one) with an empty SPI and one KEY_IKE
/// transform per proposal, numbered from 1 (the transforms are alternatives, RFC 2408 section
/// 4.2). This is the layout strongSwan uses (`sa_payload_create_from_proposals_v1`).
pub fn phase1_sa(
    proposals: &[IkeProposal],
    auth: AuthMethod,
    lifetime: NonZeroU32,
) -> Result<SecurityAssociation, BuildError> {
    check_count(proposals.len())?;
    let transforms = (1..=u8::MAX)
        .zip(proposals)
        .map(|(number, p)| p.transform(number, auth, lifetime))
        .collect();
    Ok(SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        Vec::new(),
        transforms,
    )]))
}

/// The Quick Mode SA payload offering `proposals` in this order: IPsec DOI, SIT_IDENTITY_ONLY,
/// one ESP proposal with our inbound SPI `spi` and one transform per proposal, numbered from 1,
/// all with `encapsulation` and `lifetime`. Like strongSwan, Realm puts the alternatives in one
/// proposal as transforms rather than in several proposals; it accepts both layouts.
pub fn phase2_sa(
    proposals: &[EspProposal],
    spi: [u8; 4],
    encapsulation: Encapsulation,
    lifetime: NonZeroU32,
) -> Result<SecurityAssociation, BuildError> {
    check_count(proposals.len())?;
    if let Some(first) = proposals.first()
        && proposals.iter().any(|p| p.pfs != first.pfs)
    {
        return Err(BuildError::MixedPfsGroups);
    }
    let transforms = (1..=u8::MAX)
        .zip(proposals)
        .map(|(number, p)| p.transform(number, encapsulation, lifetime))
        .collect();
    Ok(SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::IpsecEsp,
        spi.to_vec(),
        transforms,
    )]))
}

fn check_count(count: usize) -> Result<(), BuildError> {
    match count {
        0 => Err(BuildError::NoProposals),
        1..=255 => Ok(()),
        _ => Err(BuildError::TooManyProposals { count }),
    }
}

/// Decodes a phase 1 transform (RFC 2409 Appendix A).
///
/// Malformed (BAD-PROPOSAL-SYNTAX): one of the four attributes RFC 2409 section 4 makes
/// mandatory (Encryption Algorithm, Hash Algorithm, Authentication Method, Group Description)
/// missing; any attribute class twice (a Life Type/Life Duration pair may appear once per life
/// type); a basic class encoded as variable ("Attributes described as basic MUST NOT be encoded
/// as variable"); a Life Duration not preceded by its Life Type, or a Life Type not followed by
/// one.
///
/// Unsupported (skipped): a transform ID other than KEY_IKE, algorithms and groups outside
/// Realm's set, custom groups (Group Type/Prime/Generator/Curve/Order), a PRF attribute (RFC
/// 2409 defines no values), unknown attribute classes, unknown life types, a zero or over-long
/// Life Duration.
///
/// Leniency: AES-CBC without a Key Length attribute is taken as AES-128, as strongSwan does
/// ("early drafts of RFC 3602 allowed that"), although RFC 3602 section 5 says the attribute
/// MUST be sent; Realm always sends it.
pub fn decode_phase1_transform(t: &Transform) -> Result<Phase1Transform, TransformError> {
    use IkeAttributeType as T;
    // RFC 2408 section 5.6: an unknown or unsupported Transform-ID "MUST be ignored", whatever
    // its attributes.
    if t.transform_id != KEY_IKE {
        return Err(TransformError::Unsupported(format!(
            "transform ID {} is not KEY_IKE (RFC 2407 section 4.4.2)",
            t.transform_id
        )));
    }
    let mut seen = Seen::default();
    let mut life = LifeParser::default();
    let mut unsupported: Option<String> = None;
    let (mut encryption, mut key_length, mut hash, mut auth, mut group) =
        (None, None, None, None, None);
    for attr in &t.attributes {
        let class = attr.ike_type();
        if !matches!(class, T::LifeType | T::LifeDuration) {
            seen.once(attr.attribute_type, || ike_class_name(class))?;
        }
        match IkeAttribute::from_attribute(attr) {
            IkeAttribute::EncryptionAlgorithm(v) => encryption = Some(v),
            IkeAttribute::KeyLength(v) => key_length = Some(v),
            IkeAttribute::HashAlgorithm(v) => hash = Some(v),
            IkeAttribute::AuthenticationMethod(v) => auth = Some(v),
            IkeAttribute::GroupDescription(v) => group = Some(v),
            IkeAttribute::LifeType(v) => life.life_type(v)?,
            IkeAttribute::LifeDuration(v) => life.duration(Some(v))?,
            IkeAttribute::GroupType(_) => note(
                &mut unsupported,
                "custom groups (Group Type) are not supported",
            ),
            IkeAttribute::Prf(v) => note(
                &mut unsupported,
                format!("PRF attribute {v} is not supported (RFC 2409 defines none)"),
            ),
            IkeAttribute::FieldSize(_) => note(
                &mut unsupported,
                "custom groups (Field Size) are not supported",
            ),
            IkeAttribute::Other(raw) => match class {
                T::EncryptionAlgorithm
                | T::HashAlgorithm
                | T::AuthenticationMethod
                | T::GroupDescription
                | T::GroupType
                | T::LifeType
                | T::Prf
                | T::KeyLength
                | T::FieldSize => {
                    return Err(TransformError::Malformed(format!(
                        "basic attribute {} encoded as variable (RFC 2409 Appendix A)",
                        ike_class_name(class)
                    )));
                }
                T::LifeDuration => life.duration(raw.as_u64())?,
                T::Unknown(n) => note(
                    &mut unsupported,
                    format!("phase 1 attribute class {n} is not supported"),
                ),
                _ => note(
                    &mut unsupported,
                    format!(
                        "custom groups ({}) are not supported",
                        ike_class_name(class)
                    ),
                ),
            },
        }
    }
    let life = life.finish()?;
    let missing = |what: &str| {
        TransformError::Malformed(format!(
            "no {what} attribute (mandatory, RFC 2409 section 4)"
        ))
    };
    let encryption = encryption.ok_or_else(|| missing("Encryption Algorithm"))?;
    let hash = hash.ok_or_else(|| missing("Hash Algorithm"))?;
    let auth = auth.ok_or_else(|| missing("Authentication Method"))?;
    let group = group.ok_or_else(|| missing("Group Description"))?;
    if let Some(reason) = unsupported.or(life.unsupported) {
        return Err(TransformError::Unsupported(reason));
    }
    let cipher = match (encryption, key_length) {
        (EncryptionAlgorithm::AesCbc, None | Some(128)) => CipherAlgorithm::Aes128Cbc,
        (EncryptionAlgorithm::AesCbc, Some(256)) => CipherAlgorithm::Aes256Cbc,
        (e, k) => {
            return Err(TransformError::Unsupported(format!(
                "encryption {} is not supported",
                spell::ike_encryption_name(e.into(), k)
            )));
        }
    };
    let hash = match hash {
        WireHash::Sha1 => HashAlgorithm::Sha1,
        WireHash::Sha2_256 => HashAlgorithm::Sha256,
        WireHash::Sha2_384 => HashAlgorithm::Sha384,
        other => {
            return Err(TransformError::Unsupported(format!(
                "hash {} is not supported",
                spell::ike_hash_name(other.into())
            )));
        }
    };
    let auth = AuthMethod::from_wire(auth).ok_or_else(|| {
        TransformError::Unsupported(format!(
            "authentication method {} is not supported",
            spell::auth_method_name(auth.into())
        ))
    })?;
    let group = supported_group(group)?;
    Ok(Phase1Transform {
        proposal: IkeProposal::new(cipher, hash, group),
        auth,
        life: life.lifetimes,
    })
}

/// Decodes an ESP transform (RFC 2407 sections 4.4.4 and 4.5).
///
/// Malformed (BAD-PROPOSAL-SYNTAX): an attribute class twice (SA Life Type/Duration pairs once
/// per life type), a basic class encoded as variable, a SA Life Duration without its SA Life
/// Type or the reverse.
///
/// Unsupported (skipped): transform IDs other than ESP_AES (12) and ESP_AES_GCM_16 (20), key
/// lengths other than 128 and 256, AES-CBC without an Authentication Algorithm (ESP without
/// integrity), AES-GCM with one, AES-GCM without a Key Length (RFC 4106 section 8 requires
/// it), Authentication Algorithms and PFS groups outside Realm's set, Key Rounds, compression
/// attributes, unknown classes, unknown Encapsulation Mode values, unknown life types, a zero
/// or over-long duration.
///
/// Leniency, as in strongSwan: AES-CBC without a Key Length is AES-128, and no Encapsulation
/// Mode means tunnel.
pub fn decode_esp_transform(t: &Transform) -> Result<Phase2Transform, TransformError> {
    use IpsecAttributeType as T;
    // RFC 2408 section 5.6: an unsupported Transform-ID "MUST be ignored", whatever its
    // attributes.
    if !matches!(t.transform_id, ESP_AES_CBC | ESP_AES_GCM_16) {
        let key_length = t
            .attributes
            .iter()
            .find(|a| a.ipsec_type() == T::KeyLength)
            .and_then(DataAttribute::basic_value);
        return Err(TransformError::Unsupported(format!(
            "ESP transform {} is not supported",
            spell::esp_transform_name(t.transform_id, key_length)
        )));
    }
    let mut seen = Seen::default();
    let mut life = LifeParser::default();
    let mut unsupported: Option<String> = None;
    let (mut key_length, mut integrity, mut group, mut encapsulation) = (None, None, None, None);
    for attr in &t.attributes {
        let class = attr.ipsec_type();
        if !matches!(class, T::SaLifeType | T::SaLifeDuration) {
            seen.once(attr.attribute_type, || ipsec_class_name(class))?;
        }
        match IpsecAttribute::from_attribute(attr) {
            IpsecAttribute::SaLifeType(v) => life.life_type(v)?,
            IpsecAttribute::SaLifeDuration(v) => life.duration(Some(v))?,
            IpsecAttribute::GroupDescription(v) => group = Some(v),
            IpsecAttribute::EncapsulationMode(v) => encapsulation = Some(u16::from(v)),
            IpsecAttribute::AuthenticationAlgorithm(v) => integrity = Some(v),
            IpsecAttribute::KeyLength(v) => key_length = Some(v),
            IpsecAttribute::KeyRounds(_) => {
                note(&mut unsupported, "Key Rounds attribute is not supported")
            }
            IpsecAttribute::CompressDictionarySize(_) => note(
                &mut unsupported,
                "compression attributes do not belong in an ESP transform",
            ),
            IpsecAttribute::Other(raw) => match class {
                T::SaLifeDuration => life.duration(raw.as_u64())?,
                T::CompressPrivateAlgorithm => note(
                    &mut unsupported,
                    "compression attributes do not belong in an ESP transform",
                ),
                T::Unknown(n) => note(
                    &mut unsupported,
                    format!("IPsec attribute class {n} is not supported"),
                ),
                _ => {
                    return Err(TransformError::Malformed(format!(
                        "basic attribute {} encoded as variable (RFC 2407 section 4.5)",
                        ipsec_class_name(class)
                    )));
                }
            },
        }
    }
    let life = life.finish()?;
    let key_size = |default: Option<u16>| {
        let bits = key_length.or(default).ok_or_else(|| {
            TransformError::Unsupported(
                "AES-GCM without a Key Length attribute (RFC 4106 section 8 requires one)"
                    .to_string(),
            )
        })?;
        AesKeySize::from_bits(bits).ok_or_else(|| {
            TransformError::Unsupported(format!("AES key length {bits} is not supported"))
        })
    };
    let cipher = match t.transform_id {
        ESP_AES_CBC => {
            let size = key_size(Some(128))?;
            let Some(alg) = integrity else {
                return Err(TransformError::Unsupported(
                    "AES-CBC without an Authentication Algorithm (ESP without integrity) is refused"
                        .to_string(),
                ));
            };
            let integrity = EspIntegrity::from_wire(alg).ok_or_else(|| {
                TransformError::Unsupported(format!(
                    "ESP integrity {} is not supported",
                    spell::esp_auth_name(alg.into())
                ))
            })?;
            EspCipher::AesCbc(size, integrity)
        }
        _ => {
            if integrity.is_some() {
                return Err(TransformError::Unsupported(
                    "AES-GCM with an Authentication Algorithm (a combined-mode cipher takes none)"
                        .to_string(),
                ));
            }
            EspCipher::AesGcm16(key_size(None)?)
        }
    };
    if let Some(reason) = unsupported.or(life.unsupported) {
        return Err(TransformError::Unsupported(reason));
    }
    let encapsulation = match encapsulation {
        None => Encapsulation::TUNNEL,
        Some(v) => Encapsulation::from_value(v).ok_or_else(|| {
            TransformError::Unsupported(format!("Encapsulation Mode {v} is not supported"))
        })?,
    };
    let pfs = group.map(supported_group).transpose()?;
    Ok(Phase2Transform {
        proposal: EspProposal::new(cipher, pfs),
        encapsulation,
        life: life.lifetimes,
    })
}

fn supported_group(group: GroupDescription) -> Result<DhGroup, TransformError> {
    DhGroup::from_id(group.into()).ok_or_else(|| {
        TransformError::Unsupported(format!(
            "DH group {} is not supported",
            spell::group_name(group.into())
        ))
    })
}

/// Remembers the first reason a transform is unsupported; parsing goes on so that a syntax
/// error later in the transform still wins.
fn note(slot: &mut Option<String>, reason: impl Into<String>) {
    if slot.is_none() {
        *slot = Some(reason.into());
    }
}

/// Attribute classes seen in one transform (a transform holds few: a short list is enough).
#[derive(Default)]
struct Seen(Vec<u16>);

impl Seen {
    fn once(&mut self, class: u16, name: impl Fn() -> String) -> Result<(), TransformError> {
        if self.0.contains(&class) {
            return Err(TransformError::Malformed(format!(
                "attribute {} appears twice",
                name()
            )));
        }
        self.0.push(class);
        Ok(())
    }
}

/// Pairs (SA) Life Type and (SA) Life Duration attributes: each duration is in the unit of the
/// Life Type before it (RFC 2409 Appendix A; RFC 2407 section 4.5), one pair per life type.
#[derive(Default)]
struct LifeParser {
    pending: Option<LifeType>,
    seen_types: Vec<LifeType>,
    lifetimes: Lifetimes,
    unsupported: Option<String>,
}

impl LifeParser {
    fn life_type(&mut self, life_type: LifeType) -> Result<(), TransformError> {
        if self.pending.is_some() {
            return Err(TransformError::Malformed(
                "Life Type not followed by a Life Duration".to_string(),
            ));
        }
        if self.seen_types.contains(&life_type) {
            return Err(TransformError::Malformed(format!(
                "Life Type {} appears twice",
                u16::from(life_type)
            )));
        }
        self.seen_types.push(life_type);
        self.pending = Some(life_type);
        Ok(())
    }

    /// `value` is `None` for a duration too long to be a 64-bit number.
    fn duration(&mut self, value: Option<u64>) -> Result<(), TransformError> {
        let Some(life_type) = self.pending.take() else {
            return Err(TransformError::Malformed(
                "Life Duration without a Life Type before it".to_string(),
            ));
        };
        match (life_type, value) {
            (_, None) => note(
                &mut self.unsupported,
                "Life Duration longer than 8 octets is not supported",
            ),
            // A zero duration states no limit: strongSwan sends it when `rekey_time` and
            // `reauth_time` are 0 (and reads one as "none" itself). Taken like an absent
            // lifetime: the responder applies its own (docs/deviations.md).
            (_, Some(0)) => {}
            (LifeType::Seconds, Some(v)) => self.lifetimes.seconds = Some(v),
            (LifeType::Kilobytes, Some(v)) => self.lifetimes.kilobytes = Some(v),
            (LifeType::Unknown(t), Some(_)) => note(
                &mut self.unsupported,
                format!("Life Type {t} is not supported"),
            ),
        }
        Ok(())
    }

    fn finish(self) -> Result<Self, TransformError> {
        if self.pending.is_some() {
            return Err(TransformError::Malformed(
                "Life Type not followed by a Life Duration".to_string(),
            ));
        }
        Ok(self)
    }
}

fn ike_class_name(class: IkeAttributeType) -> String {
    use IkeAttributeType as T;
    match class {
        T::EncryptionAlgorithm => "Encryption Algorithm".to_string(),
        T::HashAlgorithm => "Hash Algorithm".to_string(),
        T::AuthenticationMethod => "Authentication Method".to_string(),
        T::GroupDescription => "Group Description".to_string(),
        T::GroupType => "Group Type".to_string(),
        T::GroupPrime => "Group Prime".to_string(),
        T::GroupGeneratorOne => "Group Generator One".to_string(),
        T::GroupGeneratorTwo => "Group Generator Two".to_string(),
        T::GroupCurveA => "Group Curve A".to_string(),
        T::GroupCurveB => "Group Curve B".to_string(),
        T::LifeType => "Life Type".to_string(),
        T::LifeDuration => "Life Duration".to_string(),
        T::Prf => "PRF".to_string(),
        T::KeyLength => "Key Length".to_string(),
        T::FieldSize => "Field Size".to_string(),
        T::GroupOrder => "Group Order".to_string(),
        T::Unknown(n) => format!("class {n}"),
    }
}

fn ipsec_class_name(class: IpsecAttributeType) -> String {
    use IpsecAttributeType as T;
    match class {
        T::SaLifeType => "SA Life Type".to_string(),
        T::SaLifeDuration => "SA Life Duration".to_string(),
        T::GroupDescription => "Group Description".to_string(),
        T::EncapsulationMode => "Encapsulation Mode".to_string(),
        T::AuthenticationAlgorithm => "Authentication Algorithm".to_string(),
        T::KeyLength => "Key Length".to_string(),
        T::KeyRounds => "Key Rounds".to_string(),
        T::CompressDictionarySize => "Compress Dictionary Size".to_string(),
        T::CompressPrivateAlgorithm => "Compress Private Algorithm".to_string(),
        T::Unknown(n) => format!("class {n}"),
    }
}

fn key_bits(cipher: CipherAlgorithm) -> u16 {
    match cipher {
        CipherAlgorithm::Aes128Cbc => 128,
        CipherAlgorithm::Aes256Cbc => 256,
    }
}

/// The phase 1 Hash Algorithm value (RFC 2409 Appendix A, SHA2 values from RFC 4868 section
/// 2.4 via the IANA registry: SHA2-256 = 4, SHA2-384 = 5).
fn wire_hash(hash: HashAlgorithm) -> WireHash {
    match hash {
        HashAlgorithm::Sha1 => WireHash::Sha1,
        HashAlgorithm::Sha256 => WireHash::Sha2_256,
        HashAlgorithm::Sha384 => WireHash::Sha2_384,
    }
}

/// A raw attribute's value for display: the number, or the bytes in hex.
pub(crate) fn attribute_value_text(attr: &DataAttribute) -> String {
    match attr.as_u64() {
        Some(v) => v.to_string(),
        None => match &attr.value {
            realm_wire::isakmp::AttributeValue::Variable(bytes) => {
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            }
            realm_wire::isakmp::AttributeValue::Basic(v) => v.to_string(),
        },
    }
}
