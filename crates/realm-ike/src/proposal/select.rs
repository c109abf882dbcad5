//! Choosing a proposal from a peer's SA payload as responder, and checking the responder's
//! answer as initiator (RFC 2408 sections 4.2 and 5.4-5.6; RFC 2409 section 5; RFC 2407).
//!
//! **Checks, in this order** (the first failing one decides the Notify):
//! 1. DOI: only the IPsec DOI (1) → else DOI-NOT-SUPPORTED (RFC 2408 section 5.4).
//! 2. Situation: a 4-octet bitmap with no bit but SIT_IDENTITY_ONLY (no secrecy or integrity
//!    labels, RFC 2407 section 4.2) → else SITUATION-NOT-SUPPORTED (section 5.4).
//! 3. Proposal layout → BAD-PROPOSAL-SYNTAX (sections 4.2, 5.5): a phase 1 SA with other than
//!    exactly one proposal ("for phase 1 exchanges there MUST NOT be multiple Proposal
//!    Payloads for a single SA payload", RFC 2409 section 5); a Quick Mode SA with no proposal
//!    or with decreasing proposal numbers.
//! 4. Then proposal by proposal (in Quick Mode the ESP ones; all of them are checked before
//!    anything is chosen, so the answer does not depend on which transform would have won):
//!    - protocol (section 5.5 step 1): phase 1 takes PROTO_ISAKMP only → else
//!      INVALID-PROTOCOL-ID; in Quick Mode a proposal of an unknown protocol or of ISAKMP is
//!      skipped, and when nothing but such proposals was offered the answer is
//!      INVALID-PROTOCOL-ID;
//!    - SPI (section 5.5 step 2) → INVALID-SPI: an ISAKMP SPI longer than 16 octets (section
//!      3.5); an ESP SPI not of 4 octets (RFC 2407 section 4.4.1) or below 256 (RFC 4303
//!      section 2.1 reserves 0-255);
//!    - transforms (section 5.6) → BAD-PROPOSAL-SYNTAX: none at all; a transform number used
//!      twice (section 3.6); a transform that [`decode_phase1_transform`] or
//!      [`decode_esp_transform`] finds malformed (mandatory attribute missing, attribute twice,
//!      basic attribute sent as variable, unpaired life type or duration).
//! 5. Choice: transforms Realm cannot use are ignored, as section 5.6 says for unsupported
//!    transform IDs ("MUST be ignored"), and so are ESP suites combining several protocols
//!    (ESP with AH or IPComp; strongSwan skips those too); from what is left, one transform
//!    matching a configured proposal is chosen; if none → NO-PROPOSAL-CHOSEN (section 5.4).
//!
//! **Whose order wins: ours.** RFC 2408 section 4.2 has the initiator list its proposals and
//! transforms in its preference order but leaves the choice to the responder. strongSwan's
//! responder prefers its own configured order by default (`charon.prefer_configured_proposals
//! = yes`, strongswan.conf: "Prefer locally configured proposals for IKE/IPsec over supplied
//! ones as responder"), and Realm does the same: the first configured proposal that any offered
//! transform matches wins, and among transforms matching it the peer's first. [`Preference::Peer`]
//! gives strongSwan's `prefer_configured_proposals = no` behaviour.
//!
//! **Lifetimes: the peer's if not above ours.** A transform is never refused for its lifetime.
//! When the peer's Life Duration in seconds is at most ours, it is used; when it is above ours,
//! ours is used and [`NegotiatedLifetime::shortened`] is set, so that in Quick Mode the engine
//! sends RESPONDER-LIFETIME (RFC 2407 section 4.6.3.1) with our value and expires the SA by it.
//! A phase 1 transform without a lifetime gets ours; a Quick Mode transform without one means
//! RFC 2407's default of 28800 seconds. Kilobyte lifetimes are taken as offered (Realm
//! configures none). The echoed transform keeps the peer's attributes unchanged either way. For
//! comparison, strongSwan adopts the initiator's lifetime whatever it is, phase 1 and Quick
//! Mode alike (`main_mode.c`: `this->lifetime = sa_payload->get_lifetime(...)`; `quick_mode.c`
//! `apply_lifetimes`: "received %us lifetime, configured %us"), and echoes it.
//!
//! **The answer.** The responder returns the chosen proposal with the chosen transform,
//! keeping the proposal and transform numbers (RFC 2408 section 4.2: "SHOULD retain"):
//! [`Phase1Choice::reply`], [`Phase2Choice::reply`]. The initiator "MUST verify that the
//! Security Association payload received from the responder matches one of the proposals sent
//! initially" ([`check_phase1_reply`], [`check_phase2_reply`]): one proposal with one transform,
//! equal in meaning to one we offered. Numbers are not required to match and attributes are
//! compared decoded, not byte for byte, because strongSwan rebuilds its answer from the chosen
//! algorithms (numbering the transform 1, in its own attribute order) and RFC 2409 Appendix A
//! lets a variable attribute come back as basic or the reverse.

use std::fmt;
use std::num::NonZeroU32;

use realm_wire::isakmp::{
    DOI_IPSEC, NotifyMessageType, Proposal, ProtocolId, SIT_IDENTITY_ONLY, SecurityAssociation,
    Transform,
};

use super::spell::{describe_transform, protocol_name};
use super::{
    AuthMethod, DEFAULT_PHASE2_LIFETIME_SECS, Encapsulation, EspProposal, IkeProposal, IpsecMode,
    Phase1Transform, Phase2Transform, TransformError, UdpEncapsulation, decode_esp_transform,
    decode_phase1_transform,
};

/// At most this many offered transforms are listed in a [`Refusal`]; the rest are counted.
pub const MAX_LISTED: usize = 32;

/// Whose preference order decides among acceptable transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// Our configured order first, then the peer's (strongSwan's default,
    /// `charon.prefer_configured_proposals = yes`).
    #[default]
    Ours,
    /// The peer's order: its first acceptable transform.
    Peer,
}

/// What a connection accepts for phase 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase1Policy<'a> {
    /// Configured proposals, most preferred first.
    pub proposals: &'a [IkeProposal],
    /// The connection's authentication method.
    pub auth: AuthMethod,
    /// Our ISAKMP SA lifetime.
    pub lifetime: NonZeroU32,
    /// Whose order wins.
    pub preference: Preference,
}

impl<'a> Phase1Policy<'a> {
    /// A policy preferring our order.
    pub fn new(proposals: &'a [IkeProposal], auth: AuthMethod, lifetime: NonZeroU32) -> Self {
        Self {
            proposals,
            auth,
            lifetime,
            preference: Preference::Ours,
        }
    }
}

/// What a child SA accepts in Quick Mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase2Policy<'a> {
    /// Configured ESP proposals, most preferred first.
    pub proposals: &'a [EspProposal],
    /// The child's mode.
    pub mode: IpsecMode,
    /// Whether, and by which NAT-T version, ESP is UDP-encapsulated on this path (a NAT was
    /// detected, or encapsulation is forced: [`NatDetection::udp_encapsulation`]). With
    /// [`UdpEncapsulation::None`] only the plain modes are accepted; otherwise only the
    /// UDP-Encapsulated ones (RFC 3947 section 5.1), in either spelling, RFC 3947's (3, 4) or
    /// the drafts' (61443, 61444), as strongSwan does; the answer echoes the offer's spelling.
    /// This value is the spelling Realm offers ([`crate::ikev1::quick_mode`]).
    ///
    /// [`NatDetection::udp_encapsulation`]: crate::ikev1::nat_t::NatDetection::udp_encapsulation
    pub udp: UdpEncapsulation,
    /// Our IPsec SA lifetime.
    pub lifetime: NonZeroU32,
    /// Whose order wins.
    pub preference: Preference,
}

impl<'a> Phase2Policy<'a> {
    /// A policy preferring our order.
    pub fn new(
        proposals: &'a [EspProposal],
        mode: IpsecMode,
        udp: UdpEncapsulation,
        lifetime: NonZeroU32,
    ) -> Self {
        Self {
            proposals,
            mode,
            udp,
            lifetime,
            preference: Preference::Ours,
        }
    }
}

/// The lifetime an SA gets (see the [module docs](self) for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedLifetime {
    /// Seconds until the SA expires.
    pub seconds: NonZeroU32,
    /// The peer's Life Duration in seconds, if it stated one.
    pub offered_seconds: Option<u64>,
    /// The peer's Life Duration in kilobytes, if it stated one.
    pub kilobytes: Option<u64>,
    /// The peer asked for more than our lifetime and got ours: in Quick Mode the responder
    /// tells it with RESPONDER-LIFETIME (RFC 2407 section 4.6.3.1).
    pub shortened: bool,
}

impl NegotiatedLifetime {
    /// Applies the rule: `offered` if not above `ours`, else `ours`; `default` stands for an
    /// absent `offered` (RFC 2407's 28800 s in Quick Mode, none in phase 1).
    fn new(
        offered: Option<u64>,
        default: Option<u64>,
        ours: NonZeroU32,
        kilobytes: Option<u64>,
    ) -> Self {
        let (seconds, shortened) = match offered.or(default) {
            Some(peer) if peer <= u64::from(ours.get()) => (
                u32::try_from(peer)
                    .ok()
                    .and_then(NonZeroU32::new)
                    .unwrap_or(ours),
                false,
            ),
            Some(_) => (ours, true),
            None => (ours, false),
        };
        Self {
            seconds,
            offered_seconds: offered,
            kilobytes,
            shortened,
        }
    }
}

/// The phase 1 transform chosen (as responder) or confirmed (as initiator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase1Choice {
    /// The algorithms.
    pub proposal: IkeProposal,
    /// Its position in the configured list.
    pub configured_index: usize,
    /// The authentication method.
    pub auth: AuthMethod,
    /// The proposal number.
    pub proposal_number: u8,
    /// The transform exactly as the peer sent it (number and attributes).
    pub transform: Transform,
    /// The ISAKMP SA's lifetime.
    pub lifetime: NegotiatedLifetime,
    situation: Vec<u8>,
}

impl Phase1Choice {
    /// The responder's SA payload: the offer's DOI and situation, the chosen proposal's number,
    /// an empty SPI (the cookies are the ISAKMP SPI and its content "MUST be ignored", RFC 2408
    /// section 3.5) and the chosen transform unchanged.
    pub fn reply(&self) -> SecurityAssociation {
        SecurityAssociation {
            doi: DOI_IPSEC,
            situation: self.situation.clone(),
            proposals: vec![Proposal::new(
                self.proposal_number,
                ProtocolId::Isakmp,
                Vec::new(),
                vec![self.transform.clone()],
            )],
        }
    }
}

/// The ESP transform chosen (as responder) or confirmed (as initiator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase2Choice {
    /// The algorithms and PFS group: a KE payload is expected exactly when `pfs` is set.
    pub proposal: EspProposal,
    /// Its position in the configured list.
    pub configured_index: usize,
    /// The proposal number.
    pub proposal_number: u8,
    /// The peer's SPI from its proposal: the SPI of the SA that carries our traffic to it.
    pub peer_spi: [u8; 4],
    /// Mode and UDP encapsulation as the peer spelled them (RFC 3947 or draft values).
    pub encapsulation: Encapsulation,
    /// The transform exactly as the peer sent it.
    pub transform: Transform,
    /// The IPsec SA's lifetime.
    pub lifetime: NegotiatedLifetime,
    situation: Vec<u8>,
}

impl Phase2Choice {
    /// The responder's SA payload: the offer's DOI and situation, the chosen proposal's number
    /// with our inbound SPI `our_spi`, and the chosen transform unchanged.
    pub fn reply(&self, our_spi: [u8; 4]) -> SecurityAssociation {
        SecurityAssociation {
            doi: DOI_IPSEC,
            situation: self.situation.clone(),
            proposals: vec![Proposal::new(
                self.proposal_number,
                ProtocolId::IpsecEsp,
                our_spi.to_vec(),
                vec![self.transform.clone()],
            )],
        }
    }
}

/// Why an SA payload was refused; [`RefusalKind::notify`] gives the Notify to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalKind {
    /// DOI other than IPsec: DOI-NOT-SUPPORTED.
    DoiNotSupported {
        /// The DOI offered.
        doi: u32,
    },
    /// Situation other than SIT_IDENTITY_ONLY: SITUATION-NOT-SUPPORTED.
    SituationNotSupported {
        /// The situation offered.
        situation: Vec<u8>,
    },
    /// Proposal syntax broken: BAD-PROPOSAL-SYNTAX.
    BadProposalSyntax(String),
    /// Protocol that cannot be negotiated here: INVALID-PROTOCOL-ID.
    InvalidProtocolId(ProtocolId),
    /// SPI of the wrong size or a reserved value: INVALID-SPI.
    InvalidSpi(String),
    /// Nothing offered matches: NO-PROPOSAL-CHOSEN.
    NoProposalChosen,
    /// Initiator side: the responder's SA is not one of the proposals offered, or was changed.
    /// The exchange is abandoned; if anything is sent, NO-PROPOSAL-CHOSEN (RFC 2408 names no
    /// Notify for this case).
    NotOffered(String),
}

impl RefusalKind {
    /// The Notify message type answering this refusal.
    pub fn notify(&self) -> NotifyMessageType {
        match self {
            Self::DoiNotSupported { .. } => NotifyMessageType::DoiNotSupported,
            Self::SituationNotSupported { .. } => NotifyMessageType::SituationNotSupported,
            Self::BadProposalSyntax(_) => NotifyMessageType::BadProposalSyntax,
            Self::InvalidProtocolId(_) => NotifyMessageType::InvalidProtocolId,
            Self::InvalidSpi(_) => NotifyMessageType::InvalidSpi,
            Self::NoProposalChosen | Self::NotOffered(_) => NotifyMessageType::NoProposalChosen,
        }
    }
}

impl fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DoiNotSupported { doi } => {
                write!(
                    f,
                    "DOI {doi} is not supported (Realm speaks the IPsec DOI, 1)"
                )
            }
            Self::SituationNotSupported { situation } => write!(
                f,
                "situation {} is not supported (Realm accepts SIT_IDENTITY_ONLY)",
                hex(situation)
            ),
            Self::BadProposalSyntax(reason) => write!(f, "bad proposal syntax: {reason}"),
            Self::InvalidProtocolId(p) => {
                write!(f, "{} cannot be negotiated here", protocol_name(*p))
            }
            Self::InvalidSpi(reason) => write!(f, "invalid SPI: {reason}"),
            Self::NoProposalChosen => f.write_str("no acceptable proposal"),
            Self::NotOffered(reason) => {
                write!(f, "the responder's SA is not one we offered: {reason}")
            }
        }
    }
}

/// One transform of a refused offer, with why it was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTransform {
    /// Its proposal's number.
    pub proposal_number: u8,
    /// Its number.
    pub transform_number: u8,
    /// Its proposal's protocol.
    pub protocol: ProtocolId,
    /// The transform spelled for the log ([`describe_transform`]).
    pub spelled: String,
    /// Why it was not taken.
    pub verdict: String,
}

/// A refused SA payload: the Notify to answer with ([`Refusal::notify`]) and, in its
/// [`Display`](fmt::Display), the log line: what was wrong, what was offered and why each
/// transform was not taken, and what is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason.
    pub kind: RefusalKind,
    /// The offered transforms considered, at most [`MAX_LISTED`].
    pub offered: Vec<OfferedTransform>,
    /// How many more were considered but not listed.
    pub omitted: usize,
    /// What is configured, spelled.
    pub configured: String,
}

impl Refusal {
    fn new(kind: RefusalKind, configured: &str) -> Self {
        Self {
            kind,
            offered: Vec::new(),
            omitted: 0,
            configured: configured.to_string(),
        }
    }

    /// The Notify message type to answer with.
    pub fn notify(&self) -> NotifyMessageType {
        self.kind.notify()
    }

    fn list(&mut self, proposal: &Proposal, transform: &Transform, verdict: impl Into<String>) {
        if self.offered.len() >= MAX_LISTED {
            self.omitted += 1;
            return;
        }
        self.offered.push(OfferedTransform {
            proposal_number: proposal.number,
            transform_number: transform.number,
            protocol: proposal.protocol_id,
            spelled: describe_transform(proposal.protocol_id, transform),
            verdict: verdict.into(),
        });
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.offered.is_empty() {
            f.write_str("; offered:")?;
            for (i, o) in self.offered.iter().enumerate() {
                let sep = if i == 0 { " " } else { "; " };
                write!(
                    f,
                    "{sep}#{}.{} {}: {}",
                    o.proposal_number, o.transform_number, o.spelled, o.verdict
                )?;
            }
            if self.omitted > 0 {
                write!(f, " (and {} more)", self.omitted)?;
            }
        }
        write!(f, "; configured: {}", self.configured)
    }
}

impl std::error::Error for Refusal {}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty)".to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "(nothing)".to_string();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn configured_phase1(policy: &Phase1Policy<'_>) -> String {
    format!(
        "{} with {}, lifetime {}s",
        join(policy.proposals),
        policy.auth,
        policy.lifetime
    )
}

fn configured_phase2(policy: &Phase2Policy<'_>) -> String {
    format!(
        "{} in {} mode{}, lifetime {}s",
        join(policy.proposals),
        policy.mode,
        if policy.udp != UdpEncapsulation::None {
            ", UDP-encapsulated"
        } else {
            ""
        },
        policy.lifetime
    )
}

/// Steps 1 and 2: DOI and situation.
fn check_doi_situation(sa: &SecurityAssociation) -> Result<(), RefusalKind> {
    if sa.doi != DOI_IPSEC {
        return Err(RefusalKind::DoiNotSupported { doi: sa.doi });
    }
    match sa.situation_bits() {
        Some(bits) if sa.situation.len() == 4 && bits & !SIT_IDENTITY_ONLY == 0 => Ok(()),
        _ => Err(RefusalKind::SituationNotSupported {
            situation: sa.situation.clone(),
        }),
    }
}

/// A transform decoded, or why Realm cannot use it.
type Decoded<T> = Result<T, String>;

/// Step 3 for one proposal: transforms present, numbers unique, none malformed.
fn decode_proposal<T>(
    proposal: &Proposal,
    decode: fn(&Transform) -> Result<T, TransformError>,
) -> Result<Vec<Decoded<T>>, RefusalKind> {
    if proposal.transforms.is_empty() {
        return Err(RefusalKind::BadProposalSyntax(format!(
            "proposal #{} has no transforms (RFC 2408 section 4.2)",
            proposal.number
        )));
    }
    for (i, t) in proposal.transforms.iter().enumerate() {
        if proposal.transforms[..i]
            .iter()
            .any(|u| u.number == t.number)
        {
            return Err(RefusalKind::BadProposalSyntax(format!(
                "proposal #{} uses transform number {} twice (RFC 2408 section 3.6)",
                proposal.number, t.number
            )));
        }
    }
    proposal
        .transforms
        .iter()
        .map(|t| match decode(t) {
            Ok(d) => Ok(Ok(d)),
            Err(TransformError::Unsupported(reason)) => Ok(Err(reason)),
            Err(TransformError::Malformed(reason)) => Err(RefusalKind::BadProposalSyntax(format!(
                "proposal #{} transform #{}: {reason}",
                proposal.number, t.number
            ))),
        })
        .collect()
}

/// An acceptable transform: its position in the peer's order, in our order, and the data.
struct Acceptable<'s, T> {
    peer_order: usize,
    configured_index: usize,
    proposal: &'s Proposal,
    transform: &'s Transform,
    decoded: T,
}

fn choose<T>(
    acceptable: Vec<Acceptable<'_, T>>,
    preference: Preference,
) -> Option<Acceptable<'_, T>> {
    acceptable.into_iter().min_by_key(|a| match preference {
        Preference::Ours => (a.configured_index, a.peer_order),
        Preference::Peer => (a.peer_order, a.configured_index),
    })
}

fn phase1_fit(d: &Phase1Transform, policy: &Phase1Policy<'_>) -> Result<usize, String> {
    if d.auth != policy.auth {
        return Err(format!(
            "authentication {}, configured {}",
            d.auth, policy.auth
        ));
    }
    policy
        .proposals
        .iter()
        .position(|p| *p == d.proposal)
        .ok_or_else(|| "not among the configured proposals".to_string())
}

fn phase2_fit(d: &Phase2Transform, policy: &Phase2Policy<'_>) -> Result<usize, String> {
    if d.encapsulation.mode != policy.mode {
        return Err(format!(
            "{} mode, configured {}",
            d.encapsulation.mode, policy.mode
        ));
    }
    let udp = d.encapsulation.udp != UdpEncapsulation::None;
    let encapsulated = policy.udp != UdpEncapsulation::None;
    if udp && !encapsulated {
        return Err("UDP-encapsulated mode offered, but ESP is not UDP-encapsulated on this path (no NAT detected)".to_string());
    }
    if !udp && encapsulated {
        return Err(
            "plain mode offered, but ESP is UDP-encapsulated on this path (RFC 3947 section 5.1)"
                .to_string(),
        );
    }
    policy
        .proposals
        .iter()
        .position(|p| *p == d.proposal)
        .ok_or_else(|| "not among the configured proposals".to_string())
}

/// Chooses a phase 1 transform from an initiator's SA payload (Main or Aggressive Mode first
/// message); see the [module docs](self) for the checks, the order rule and the lifetime rule.
pub fn select_phase1(
    sa: &SecurityAssociation,
    policy: &Phase1Policy<'_>,
) -> Result<Phase1Choice, Refusal> {
    let configured = configured_phase1(policy);
    let refuse = |kind| Refusal::new(kind, &configured);
    check_doi_situation(sa).map_err(refuse)?;
    // RFC 2409 section 5: "there MUST NOT be multiple Proposal Payloads for a single SA
    // payload" in phase 1.
    let [proposal] = sa.proposals.as_slice() else {
        return Err(refuse(RefusalKind::BadProposalSyntax(format!(
            "phase 1 SA with {} proposals, RFC 2409 section 5 allows exactly one",
            sa.proposals.len()
        ))));
    };
    if proposal.protocol_id != ProtocolId::Isakmp {
        return Err(refuse(RefusalKind::InvalidProtocolId(proposal.protocol_id)));
    }
    if proposal.spi.len() > 16 {
        return Err(refuse(RefusalKind::InvalidSpi(format!(
            "ISAKMP SPI of {} octets, RFC 2408 section 3.5 allows 0 to 16",
            proposal.spi.len()
        ))));
    }
    let decoded = decode_proposal(proposal, decode_phase1_transform).map_err(refuse)?;
    let mut refusal = refuse(RefusalKind::NoProposalChosen);
    let mut acceptable = Vec::new();
    for (peer_order, (transform, decoded)) in proposal.transforms.iter().zip(decoded).enumerate() {
        match decoded.and_then(|d| phase1_fit(&d, policy).map(|i| (i, d))) {
            Ok((configured_index, decoded)) => acceptable.push(Acceptable {
                peer_order,
                configured_index,
                proposal,
                transform,
                decoded,
            }),
            Err(verdict) => refusal.list(proposal, transform, verdict),
        }
    }
    let Some(chosen) = choose(acceptable, policy.preference) else {
        return Err(refusal);
    };
    Ok(Phase1Choice {
        proposal: chosen.decoded.proposal,
        configured_index: chosen.configured_index,
        auth: chosen.decoded.auth,
        proposal_number: chosen.proposal.number,
        transform: chosen.transform.clone(),
        lifetime: NegotiatedLifetime::new(
            chosen.decoded.life.seconds,
            None,
            policy.lifetime,
            chosen.decoded.life.kilobytes,
        ),
        situation: sa.situation.clone(),
    })
}

/// Step 4 for an ESP proposal's SPI.
fn check_esp_spi(spi: &[u8]) -> Result<[u8; 4], RefusalKind> {
    let spi: [u8; 4] = spi.try_into().map_err(|_| {
        RefusalKind::InvalidSpi(format!(
            "ESP SPI of {} octets, the IPsec DOI uses 4 (RFC 2407 section 4.4.1)",
            spi.len()
        ))
    })?;
    if u32::from_be_bytes(spi) < 256 {
        return Err(RefusalKind::InvalidSpi(format!(
            "ESP SPI {} is reserved (RFC 4303 section 2.1)",
            u32::from_be_bytes(spi)
        )));
    }
    Ok(spi)
}

/// Chooses an ESP transform from an initiator's Quick Mode SA payload; see the
/// [module docs](self) for the checks, the order rule and the lifetime rule. Both layouts are
/// accepted: alternatives as transforms of one proposal (strongSwan, Realm) or as proposals
/// with different numbers.
pub fn select_phase2(
    sa: &SecurityAssociation,
    policy: &Phase2Policy<'_>,
) -> Result<Phase2Choice, Refusal> {
    let configured = configured_phase2(policy);
    let refuse = |kind| Refusal::new(kind, &configured);
    check_doi_situation(sa).map_err(refuse)?;
    if sa.proposals.is_empty() {
        return Err(refuse(RefusalKind::BadProposalSyntax(
            "SA without proposals (RFC 2408 section 4.2)".to_string(),
        )));
    }
    if let Some(w) = sa.proposals.windows(2).find(|w| w[1].number < w[0].number) {
        return Err(refuse(RefusalKind::BadProposalSyntax(format!(
            "proposal #{} follows #{}: proposal numbers must increase (RFC 2408 section 4.2)",
            w[1].number, w[0].number
        ))));
    }
    // Syntax and SPIs of every ESP proposal first, so the verdict does not depend on order.
    let mut decoded = Vec::with_capacity(sa.proposals.len());
    for proposal in &sa.proposals {
        decoded.push(if proposal.protocol_id == ProtocolId::IpsecEsp {
            let spi = check_esp_spi(&proposal.spi).map_err(refuse)?;
            Some((
                spi,
                decode_proposal(proposal, decode_esp_transform).map_err(refuse)?,
            ))
        } else {
            None
        });
    }
    let mut refusal = refuse(RefusalKind::NoProposalChosen);
    let mut acceptable = Vec::new();
    // Suites of a protocol that may be negotiated here (even if Realm does not support it),
    // and the first protocol that may not.
    let (mut valid_suites, mut invalid_protocol) = (0, None);
    let mut peer_order = 0;
    let mut start = 0;
    while let Some(first) = sa.proposals.get(start) {
        let len = sa.proposals[start..]
            .iter()
            .take_while(|p| p.number == first.number)
            .count();
        let suite = &sa.proposals[start..start + len];
        let suite_decoded = &decoded[start..start + len];
        start += len;
        if let [proposal] = suite {
            match (proposal.protocol_id, suite_decoded) {
                (ProtocolId::IpsecEsp, [Some((spi, transforms))]) => {
                    valid_suites += 1;
                    for (transform, d) in proposal.transforms.iter().zip(transforms) {
                        peer_order += 1;
                        match d
                            .clone()
                            .and_then(|d| phase2_fit(&d, policy).map(|i| (i, d)))
                        {
                            Ok((configured_index, decoded)) => acceptable.push(Acceptable {
                                peer_order,
                                configured_index,
                                proposal,
                                transform,
                                decoded: (*spi, decoded),
                            }),
                            Err(verdict) => refusal.list(proposal, transform, verdict),
                        }
                    }
                }
                (p @ (ProtocolId::IpsecAh | ProtocolId::Ipcomp), _) => {
                    valid_suites += 1;
                    for t in &proposal.transforms {
                        refusal.list(
                            proposal,
                            t,
                            format!("{} is not supported", protocol_name(p)),
                        );
                    }
                }
                (p, _) => {
                    invalid_protocol.get_or_insert(p);
                    for t in &proposal.transforms {
                        refusal.list(
                            proposal,
                            t,
                            format!("{} cannot be negotiated in Quick Mode", protocol_name(p)),
                        );
                    }
                }
            }
        } else {
            valid_suites += 1;
            let protocols: Vec<String> =
                suite.iter().map(|p| protocol_name(p.protocol_id)).collect();
            for proposal in suite {
                for t in &proposal.transforms {
                    refusal.list(
                        proposal,
                        t,
                        format!(
                            "proposal #{} combines {}: only ESP alone is supported",
                            proposal.number,
                            protocols.join("+")
                        ),
                    );
                }
            }
        }
    }
    let Some(chosen) = choose(acceptable, policy.preference) else {
        if let (0, Some(p)) = (valid_suites, invalid_protocol) {
            refusal.kind = RefusalKind::InvalidProtocolId(p);
        }
        return Err(refusal);
    };
    let (peer_spi, d) = chosen.decoded;
    Ok(Phase2Choice {
        proposal: d.proposal,
        configured_index: chosen.configured_index,
        proposal_number: chosen.proposal.number,
        peer_spi,
        encapsulation: d.encapsulation,
        transform: chosen.transform.clone(),
        lifetime: NegotiatedLifetime::new(
            d.life.seconds,
            Some(DEFAULT_PHASE2_LIFETIME_SECS),
            policy.lifetime,
            d.life.kilobytes,
        ),
        situation: sa.situation.clone(),
    })
}

/// The one proposal with one transform a responder must answer with (RFC 2408 section 4.2).
fn single_answer(reply: &SecurityAssociation) -> Result<(&Proposal, &Transform), RefusalKind> {
    let [proposal] = reply.proposals.as_slice() else {
        return Err(RefusalKind::BadProposalSyntax(format!(
            "the responder returned {} proposals, RFC 2408 section 4.2 asks for the selected one",
            reply.proposals.len()
        )));
    };
    let [transform] = proposal.transforms.as_slice() else {
        return Err(RefusalKind::BadProposalSyntax(format!(
            "the responder returned {} transforms, RFC 2408 section 4.2 asks for a single one",
            proposal.transforms.len()
        )));
    };
    Ok((proposal, transform))
}

/// Whether `offered` holds a transform of `protocol` with `answer`'s transform ID meaning the
/// same as `decoded` (numbers are not compared: see the [module docs](self)).
fn was_offered<T: PartialEq>(
    offered: &SecurityAssociation,
    protocol: ProtocolId,
    answer: &Transform,
    decoded: &T,
    decode: fn(&Transform) -> Result<T, TransformError>,
) -> bool {
    offered
        .proposals
        .iter()
        .filter(|p| p.protocol_id == protocol)
        .flat_map(|p| &p.transforms)
        .filter(|t| t.transform_id == answer.transform_id)
        .any(|t| decode(t).is_ok_and(|d| d == *decoded))
}

fn check_answer_header(
    offered: &SecurityAssociation,
    reply: &SecurityAssociation,
) -> Result<(), RefusalKind> {
    if reply.doi != offered.doi {
        return Err(RefusalKind::NotOffered(format!(
            "DOI {} instead of {}",
            reply.doi, offered.doi
        )));
    }
    if reply.situation != offered.situation {
        return Err(RefusalKind::NotOffered(format!(
            "situation {} instead of {}",
            hex(&reply.situation),
            hex(&offered.situation)
        )));
    }
    Ok(())
}

/// Checks, as initiator, the responder's phase 1 SA payload against what we `offered` (built
/// by [`super::phase1_sa`] from `policy`): one proposal with one transform, meaning the same as
/// one we offered. Returns the choice it confirms.
pub fn check_phase1_reply(
    offered: &SecurityAssociation,
    reply: &SecurityAssociation,
    policy: &Phase1Policy<'_>,
) -> Result<Phase1Choice, Refusal> {
    let configured = configured_phase1(policy);
    let refuse = |kind| Refusal::new(kind, &configured);
    check_answer_header(offered, reply).map_err(refuse)?;
    let (proposal, transform) = single_answer(reply).map_err(refuse)?;
    let spelled = describe_transform(proposal.protocol_id, transform);
    if proposal.protocol_id != ProtocolId::Isakmp {
        return Err(refuse(RefusalKind::NotOffered(format!(
            "{} proposal instead of ISAKMP",
            protocol_name(proposal.protocol_id)
        ))));
    }
    let decoded =
        decode_phase1_transform(transform).map_err(|e| refuse(answer_refusal(e, &spelled)))?;
    let not_offered = || {
        refuse(RefusalKind::NotOffered(format!(
            "{spelled} was not offered, or was changed"
        )))
    };
    if !was_offered(
        offered,
        ProtocolId::Isakmp,
        transform,
        &decoded,
        decode_phase1_transform,
    ) {
        return Err(not_offered());
    }
    let configured_index = phase1_fit(&decoded, policy).map_err(|_| not_offered())?;
    Ok(Phase1Choice {
        proposal: decoded.proposal,
        configured_index,
        auth: decoded.auth,
        proposal_number: proposal.number,
        transform: transform.clone(),
        lifetime: NegotiatedLifetime::new(
            decoded.life.seconds,
            None,
            policy.lifetime,
            decoded.life.kilobytes,
        ),
        situation: reply.situation.clone(),
    })
}

/// Why an answer's transform that does not decode is refused: malformed is a syntax error,
/// unsupported cannot be one we offered.
fn answer_refusal(e: TransformError, spelled: &str) -> RefusalKind {
    match e {
        TransformError::Malformed(reason) => RefusalKind::BadProposalSyntax(reason),
        TransformError::Unsupported(reason) => {
            RefusalKind::NotOffered(format!("{spelled}: {reason}"))
        }
    }
}

/// Checks, as initiator, the responder's Quick Mode SA payload against what we `offered`
/// (built by [`super::phase2_sa`] from `policy`): one ESP proposal with a valid SPI and one
/// transform, meaning the same as one we offered. Returns the choice it confirms, with the
/// responder's SPI.
pub fn check_phase2_reply(
    offered: &SecurityAssociation,
    reply: &SecurityAssociation,
    policy: &Phase2Policy<'_>,
) -> Result<Phase2Choice, Refusal> {
    let configured = configured_phase2(policy);
    let refuse = |kind| Refusal::new(kind, &configured);
    check_answer_header(offered, reply).map_err(refuse)?;
    let (proposal, transform) = single_answer(reply).map_err(refuse)?;
    let spelled = describe_transform(proposal.protocol_id, transform);
    if proposal.protocol_id != ProtocolId::IpsecEsp {
        return Err(refuse(RefusalKind::NotOffered(format!(
            "{} proposal instead of ESP",
            protocol_name(proposal.protocol_id)
        ))));
    }
    let peer_spi = check_esp_spi(&proposal.spi).map_err(refuse)?;
    let decoded =
        decode_esp_transform(transform).map_err(|e| refuse(answer_refusal(e, &spelled)))?;
    let not_offered = || {
        refuse(RefusalKind::NotOffered(format!(
            "{spelled} was not offered, or was changed"
        )))
    };
    if !was_offered(
        offered,
        ProtocolId::IpsecEsp,
        transform,
        &decoded,
        decode_esp_transform,
    ) {
        return Err(not_offered());
    }
    let configured_index = phase2_fit(&decoded, policy).map_err(|_| not_offered())?;
    Ok(Phase2Choice {
        proposal: decoded.proposal,
        configured_index,
        proposal_number: proposal.number,
        peer_spi,
        encapsulation: decoded.encapsulation,
        transform: transform.clone(),
        lifetime: NegotiatedLifetime::new(
            decoded.life.seconds,
            Some(DEFAULT_PHASE2_LIFETIME_SECS),
            policy.lifetime,
            decoded.life.kilobytes,
        ),
        situation: reply.situation.clone(),
    })
}
