//! Inbound ISAKMP message checks (RFC 2408 sections 5.1, 5.2 and 5.3) as one pure function,
//! [`check`]: received bytes and what the caller knows ([`Context`]) in, a [`Verdict`] out:
//! the parsed message, or a [`Rejection`] naming the failed [`Check`], the Notify message type
//! RFC 2408 names for it, and whether Realm answers it ([`Response`]).
//!
//! This module never reads a clock, keeps no state and never panics: every input, however
//! short or strange, gets a verdict. It does not decide anything that needs an exchange's
//! grammar (which payloads a message must carry), the SA payload's contents (RFC 2408 5.4-5.6),
//! or keys: an encrypted body is accepted as ciphertext, and after decryption the engine runs
//! the payload checks again with [`check_decrypted`].
//!
//! # Order
//!
//! The first failure decides, in the RFC's order: section 5.1 (the Length field against the
//! datagram), then section 5.2's steps 1 (cookies), 3 (version), 2 (Next Payload), 4 (exchange
//! type), 5 (flags) and 6 (Message ID), then section 5.3 for each payload in wire order (its
//! Next Payload field, its RESERVED field, then its length and body).
//!
//! One deviation: the version (step 3) is checked before the Next Payload (step 2). A message of
//! another major version numbers its payloads its own way (IKEv2 starts at 33, RFC 7296 3.2), so
//! step 2 would answer an IKEv2 initiator INVALID-PAYLOAD-TYPE where INVALID-MAJOR-VERSION is
//! what tells it to fall back; strongSwan's receiver also checks the version before anything else
//! (`src/libcharon/network/receiver.c`, `receive_packets`).
//!
//! # Policy: answer or drop
//!
//! Every Notify in sections 5.1-5.3 is a MAY, "dictated by a system security policy". Realm's
//! policy, one row per [`Check`] ([`Check::rule`] is the single table in code):
//!
//! | Check | RFC 2408 | Notify | Answered when |
//! |---|---|---|---|
//! | [`Check::HeaderTruncated`] | 3.1 | none | never (no header to answer) |
//! | [`Check::Length`] | 5.1 | UNEQUAL-PAYLOAD-LENGTHS | never |
//! | [`Check::Cookie`] | 5.2 step 1 | INVALID-COOKIE | never |
//! | [`Check::MajorVersion`] | 5.2 step 3 | INVALID-MAJOR-VERSION | initial message only |
//! | [`Check::MinorVersion`] | 5.2 step 3 | INVALID-MINOR-VERSION | initial message only |
//! | [`Check::NextPayload`] | 5.2 step 2 | INVALID-PAYLOAD-TYPE | always |
//! | [`Check::ExchangeType`] | 5.2 step 4 | INVALID-EXCHANGE-TYPE | known SA only |
//! | [`Check::Flags`] | 5.2 step 5 | INVALID-FLAGS | always |
//! | [`Check::MessageId`] | 5.2 step 6 | INVALID-MESSAGE-ID | always |
//! | [`Check::PayloadType`] | 5.3 step 1 | INVALID-PAYLOAD-TYPE | always |
//! | [`Check::PayloadReserved`] | 5.3 step 2, 2.5.2 | PAYLOAD-MALFORMED | always |
//! | [`Check::PayloadLength`] | 3.2, 5.3 step 3 | PAYLOAD-MALFORMED | always |
//! | [`Check::PayloadBody`] | 3.4-3.16 | PAYLOAD-MALFORMED | always |
//! | [`Check::ProposalReserved`] | 5.3 step 2 (Proposal, Transform) | BAD-PROPOSAL-SYNTAX | always |
//! | [`Check::ChainLength`] | 5.1, 3.2 | UNEQUAL-PAYLOAD-LENGTHS | always |
//! | [`Check::Padding`] | RFC 2409 Appendix B | PAYLOAD-MALFORMED | always |
//!
//! "Initial message" is one whose cookie pair names no SA the caller knows and whose responder
//! cookie is zero (a phase 1 exchange's first message); "known SA" means the caller found an SA
//! or phase 1 exchange with these cookies; "always" means either (after step 1 passes, one of the
//! two holds). Over every row:
//!
//! - **An Informational exchange is never answered**, whatever failed: a Notify answering a
//!   Notify can loop between two peers. RFC 2408 5.14 and 5.15 list only logging for a bad
//!   Notification or Delete, and strongSwan's IKEv1 `send_notify` returns early for any
//!   INFORMATIONAL request "to avoid a notify war" (`src/libcharon/sa/ikev1/task_manager_v1.c`).
//! - **Nothing is answered before the cookies are checked**, and INVALID-COOKIE itself is never
//!   sent. A message whose cookies name no SA comes from an address nothing has verified;
//!   answering it reflects traffic at whoever the source claims to be, and tells a prober which
//!   cookies exist. strongSwan drops such messages without a word (`process_message_job.c`
//!   processes a message only when `checkout_by_message` finds or creates an IKE_SA, which for
//!   IKEv1 it creates only for a Main or Aggressive Mode first message) and ignores a header it
//!   cannot parse (`receiver.c`). So a phase 2 or Informational message for unknown cookies is
//!   always dropped silently.
//! - **Version errors are answered only for an initial message**, where a peer speaking another
//!   version (an IKEv2 initiator) learns to fall back; strongSwan answers unsupported major
//!   versions with INVALID_MAJOR_VERSION in its receiver.
//! - **INVALID-EXCHANGE-TYPE only within a known SA**: an initial message of an exchange that
//!   cannot begin phase 1 is dropped, as strongSwan drops it (no IKE_SA is created for it);
//!   within an SA strongSwan answers INVALID_EXCHANGE_TYPE (`task_manager_v1.c`,
//!   `parse_message`, `NOT_SUPPORTED`).
//! - Payload errors are answered, as strongSwan answers its parse errors with PAYLOAD_MALFORMED,
//!   including for a Main Mode first message (it creates the IKE_SA, fails to parse, notifies).
//!
//! An answer to an initial message goes to an unverified address. It is one short datagram
//! (28-byte header, 12-byte Notification header, the 16-byte cookie pair as SPI, at most 4 data
//! octets: at most 60 bytes for an input of at least 28), no larger than the Main Mode reply the
//! same message would get if valid. The engine that sends answers should still rate-limit them
//! per source address; that limit is not here.
//!
//! An answer is unprotected while no keys exist, and must be sent under the ISAKMP SA (HDR*,
//! HASH(1), N of RFC 2409 5.7) once keying material has been exchanged (RFC 2408 4.8, 5.14):
//! [`Response::Notify`] says which.

use realm_wire::isakmp::{
    Body, Cookie, ExchangeType, Flags, HEADER_LEN, Header, Message, NotifyMessageType, Packet,
    Padding, Payload, PayloadChain, PayloadType, RawPayload, Version,
};

/// The exchanges Realm's IKEv1 speaks: Main Mode, Aggressive Mode, Informational and Quick Mode
/// (RFC 2409 5, 5.5, 5.7). A default for [`Context::exchanges`].
pub const IKEV1_EXCHANGES: [ExchangeType; 4] = [
    ExchangeType::IdentityProtection,
    ExchangeType::Aggressive,
    ExchangeType::Informational,
    ExchangeType::QuickMode,
];

/// The pre-RFC NAT-T draft payload numbers (draft-ietf-ipsec-nat-t-ike-02/03): NAT-D and NAT-OA.
pub const DRAFT_NAT_T_PAYLOAD_TYPES: [u8; 2] = [130, 131];

/// What the caller knows of the ISAKMP SA named by the message's cookie pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaState {
    /// No ISAKMP SA and no phase 1 exchange has this cookie pair.
    None,
    /// A phase 1 exchange of this type has this cookie pair and is not finished.
    Phase1 {
        /// Its exchange type (Main or Aggressive Mode).
        exchange: ExchangeType,
        /// True once keying material exists (Main Mode after the KE payloads): encrypted
        /// messages can be read, and answers must be protected (RFC 2408 4.8).
        keyed: bool,
    },
    /// Phase 1 is complete: the ISAKMP SA exists.
    Established,
}

impl SaState {
    /// True when keying material exists for this SA.
    pub fn keyed(self) -> bool {
        match self {
            SaState::None => false,
            SaState::Phase1 { keyed, .. } => keyed,
            SaState::Established => true,
        }
    }
}

/// What the caller knows of the message's Message ID within its ISAKMP SA (RFC 2408 3.1: the
/// initiator of a phase 2 negotiation chooses it at random; it names that negotiation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageIdState {
    /// Not in use: a message with it begins a new phase 2 exchange.
    Unused,
    /// A phase 2 exchange of this type with this Message ID is in progress.
    InProgress(ExchangeType),
    /// An exchange with this Message ID has finished: a message with it is a replay (the engine
    /// answers exact retransmissions from its stored reply before calling [`check`]).
    Completed,
}

/// What the caller knows, for [`check`].
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The SA the cookie pair names, as the caller looked it up.
    pub sa: SaState,
    /// Exchange types accepted at all (for example [`IKEV1_EXCHANGES`]).
    pub exchanges: &'a [ExchangeType],
    /// The Message ID's state in this SA (used for phase 2 exchanges only).
    pub message_id: MessageIdState,
    /// What may follow the last payload of a plaintext message. [`Padding::Forbidden`] follows
    /// RFC 2408 5.1; [`Padding::Any`] tolerates peers that pad plaintext to 4 octets.
    pub padding: Padding,
    /// Accept the NAT-T draft payload types 130 and 131 ([`DRAFT_NAT_T_PAYLOAD_TYPES`]), for
    /// peers that negotiated the draft vendor ID.
    pub draft_nat_t: bool,
}

impl<'a> Context<'a> {
    /// A context for this SA state and these exchanges; the Message ID unused, no padding, no
    /// NAT-T draft payload types.
    pub fn new(sa: SaState, exchanges: &'a [ExchangeType]) -> Context<'a> {
        Context {
            sa,
            exchanges,
            message_id: MessageIdState::Unused,
            padding: Padding::Forbidden,
            draft_nat_t: false,
        }
    }
}

/// One check of RFC 2408 5.1-5.3; [`Check::rule`] gives its section, Notify and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// Fewer than the 28 bytes of an ISAKMP header (RFC 2408 3.1).
    HeaderTruncated,
    /// The header's Length differs from the datagram's length (RFC 2408 5.1).
    Length,
    /// The cookies: an all-zero initiator cookie, or a responder cookie that names no SA the
    /// caller knows (RFC 2408 5.2 step 1).
    Cookie,
    /// Major version other than 1 (RFC 2408 5.2 step 3, 3.1).
    MajorVersion,
    /// Minor version other than 0 with major version 1 (RFC 2408 5.2 step 3, 3.1).
    MinorVersion,
    /// The header's Next Payload is not a payload that may begin a message (RFC 2408 5.2
    /// step 2): NONE, Proposal, Transform, or a type Realm does not know.
    NextPayload,
    /// The exchange type is not accepted, or not in this SA's state: a phase 1 exchange other
    /// than the SA's own, Quick Mode before phase 1 is done, anything but a phase 1 exchange for
    /// unknown cookies (RFC 2408 5.2 step 4).
    ExchangeType,
    /// Undefined flag bits, E without keys, A outside a keyed Informational or with E, Quick
    /// Mode without E (RFC 2409 5.5), or an unprotected Informational once the ISAKMP SA exists
    /// (RFC 2408 4.8) (RFC 2408 5.2 step 5).
    Flags,
    /// Non-zero Message ID in phase 1 (RFC 2408 3.1), or in phase 2 a zero, finished or
    /// foreign Message ID (RFC 2408 5.2 step 6).
    MessageId,
    /// A payload's Next Payload names a payload that may not follow (RFC 2408 5.3 step 1).
    PayloadType,
    /// A non-zero RESERVED field in a payload's generic header or in NAT-OA (RFC 2408 5.3
    /// step 2, 2.5.2).
    PayloadReserved,
    /// A payload whose generic header is cut short, whose Payload Length is below 4, or that
    /// runs past the message (RFC 2408 3.2).
    PayloadLength,
    /// A payload body that does not have its section 3 layout (RFC 2408 3.4-3.16).
    PayloadBody,
    /// A non-zero RESERVED field in a Proposal or Transform inside an SA payload (RFC 2408 5.3
    /// step 2, which allows BAD-PROPOSAL-SYNTAX).
    ProposalReserved,
    /// Bytes after the last payload of a plaintext message (RFC 2408 5.1, 3.2: the payload
    /// lengths do not add up to the message length).
    ChainLength,
    /// Non-zero padding after the last payload of decrypted plaintext (RFC 2409 Appendix B).
    Padding,
}

/// When a rejection is answered with a Notify (before the overrides in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerWhen {
    /// Never: drop silently.
    Never,
    /// Only an initial message: unknown cookies, responder cookie zero.
    Initial,
    /// Only a message for an SA the caller knows.
    KnownSa,
    /// Both (everything that passed the cookie check).
    Always,
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Where RFC 2408 (or RFC 2409) states the check.
    pub section: &'static str,
    /// The Notify message type the RFC names for it, if any.
    pub notify: Option<NotifyMessageType>,
    /// Realm's policy.
    pub answer: AnswerWhen,
}

impl Check {
    /// Every check, in the order [`check`] runs them.
    pub const ALL: [Check; 16] = [
        Check::HeaderTruncated,
        Check::Length,
        Check::Cookie,
        Check::MajorVersion,
        Check::MinorVersion,
        Check::NextPayload,
        Check::ExchangeType,
        Check::Flags,
        Check::MessageId,
        Check::PayloadType,
        Check::PayloadReserved,
        Check::PayloadLength,
        Check::PayloadBody,
        Check::ProposalReserved,
        Check::ChainLength,
        Check::Padding,
    ];

    /// The policy table: section, Notify type and when Realm answers (see the module docs for
    /// the reasons and the overrides).
    pub const fn rule(self) -> Rule {
        use AnswerWhen::{Always, Initial, KnownSa, Never};
        use NotifyMessageType as N;
        let (section, notify, answer) = match self {
            Check::HeaderTruncated => ("RFC 2408 3.1", None, Never),
            Check::Length => ("RFC 2408 5.1", Some(N::UnequalPayloadLengths), Never),
            Check::Cookie => ("RFC 2408 5.2 step 1", Some(N::InvalidCookie), Never),
            Check::MajorVersion => ("RFC 2408 5.2 step 3", Some(N::InvalidMajorVersion), Initial),
            Check::MinorVersion => ("RFC 2408 5.2 step 3", Some(N::InvalidMinorVersion), Initial),
            Check::NextPayload => ("RFC 2408 5.2 step 2", Some(N::InvalidPayloadType), Always),
            Check::ExchangeType => ("RFC 2408 5.2 step 4", Some(N::InvalidExchangeType), KnownSa),
            Check::Flags => ("RFC 2408 5.2 step 5", Some(N::InvalidFlags), Always),
            Check::MessageId => ("RFC 2408 5.2 step 6", Some(N::InvalidMessageId), Always),
            Check::PayloadType => ("RFC 2408 5.3 step 1", Some(N::InvalidPayloadType), Always),
            Check::PayloadReserved => ("RFC 2408 5.3 step 2", Some(N::PayloadMalformed), Always),
            Check::ProposalReserved => ("RFC 2408 5.3 step 2", Some(N::BadProposalSyntax), Always),
            Check::PayloadLength => ("RFC 2408 3.2", Some(N::PayloadMalformed), Always),
            Check::PayloadBody => ("RFC 2408 3.4-3.16", Some(N::PayloadMalformed), Always),
            Check::ChainLength => ("RFC 2408 5.1", Some(N::UnequalPayloadLengths), Always),
            Check::Padding => ("RFC 2409 Appendix B", Some(N::PayloadMalformed), Always),
        };
        Rule {
            section,
            notify,
            answer,
        }
    }
}

/// How an ISAKMP SA's Notify answer is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// No keying material yet: an unprotected Informational exchange (RFC 2408 4.8, 5.14);
    /// [`super::notify::reply`] builds it.
    Unprotected,
    /// Keying material exists: the engine must send it under the ISAKMP SA (RFC 2408 4.8;
    /// RFC 2409 5.7 HDR*, HASH(1), N), with [`super::notify::notification`] as the payload.
    IsakmpSa,
}

/// What to do about a rejected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Discard it silently (the caller logs the rejection: the RFC's "MAY be logged").
    Drop,
    /// Discard it and answer with an Informational exchange carrying one Notification.
    Notify(Protection),
}

/// A message that failed a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The check that failed (the first one, in the RFC's order).
    pub check: Check,
    /// The header fields as received, when there were 28 bytes to read them from (even if the
    /// Length field was wrong): an answer goes to these cookies.
    pub header: Option<Header>,
    /// Offset of the offending field from the start of the bytes checked.
    pub offset: usize,
    /// For [`Check::NextPayload`] and [`Check::PayloadType`], the offending payload type; for
    /// the other payload checks, the type of the payload at fault.
    pub payload_type: Option<PayloadType>,
    /// Answer or drop, by the policy table.
    pub response: Response,
}

impl Rejection {
    /// The Notify message type the RFC names for this rejection.
    pub fn notify_type(&self) -> Option<NotifyMessageType> {
        self.check.rule().notify
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed: the message, its payloads parsed ([`Body::Payloads`]) or, when the E
    /// flag is set, its ciphertext ([`Body::Encrypted`]) for the engine to decrypt and pass to
    /// [`check_decrypted`].
    Accept(Message),
    /// A check failed; the message must be discarded.
    Reject(Rejection),
}

impl Verdict {
    /// The rejection, if any.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Verdict::Accept(_) => None,
            Verdict::Reject(r) => Some(r),
        }
    }
}

/// Runs RFC 2408 5.1, 5.2 and (for a plaintext message) 5.3 on a received ISAKMP message: the
/// UDP payload (on port 4500, after the non-ESP marker is removed, RFC 3948 2.2).
pub fn check(datagram: &[u8], ctx: &Context<'_>) -> Verdict {
    let Some(header) = raw_header(datagram) else {
        return reject(Check::HeaderTruncated, None, 0, None, ctx);
    };

    // RFC 2408 5.1: "If the ISAKMP message length and the value in the Payload Length field of
    // the ISAKMP Header are not the same, then the ISAKMP message MUST be rejected."
    let Ok(packet) = Packet::new_checked(datagram) else {
        return reject(Check::Length, Some(header), 24, None, ctx);
    };
    let next_payload = packet.next_payload();

    if let Err((check, offset)) = check_header(&header, next_payload, ctx) {
        let offending = (check == Check::NextPayload).then_some(next_payload);
        return reject(check, Some(header), offset, offending, ctx);
    }

    if header.flags.encryption() {
        // The payloads are ciphertext: 5.3 runs after decryption (`check_decrypted`).
        return Verdict::Accept(Message::encrypted(
            header,
            next_payload,
            packet.body().to_vec(),
        ));
    }
    match walk(next_payload, packet.body(), HEADER_LEN, ctx.padding, ctx) {
        Ok(chain) => Verdict::Accept(Message {
            header,
            body: Body::Payloads(chain),
        }),
        Err(fault) => reject(
            fault.check,
            Some(header),
            fault.offset,
            fault.payload_type,
            ctx,
        ),
    }
}

/// Runs RFC 2408 5.3 on the decrypted plaintext of a message [`check`] accepted with the E flag
/// set. `next_payload` is the header's Next Payload; `padding` is what may follow the last
/// payload ([`Padding::Zeros`] per RFC 2409 Appendix B, or [`Padding::Any`] for peers that
/// randomise it). Offsets in a rejection are from the start of `plaintext`. The accepted
/// message's header is `header` unchanged (E set) with the payloads as its body.
pub fn check_decrypted(
    header: &Header,
    next_payload: PayloadType,
    plaintext: &[u8],
    padding: Padding,
    ctx: &Context<'_>,
) -> Verdict {
    match walk(next_payload, plaintext, 0, padding, ctx) {
        Ok(chain) => Verdict::Accept(Message {
            header: header.clone(),
            body: Body::Payloads(chain),
        }),
        Err(fault) => reject(
            fault.check,
            Some(header.clone()),
            fault.offset,
            fault.payload_type,
            ctx,
        ),
    }
}

/// Byte offsets of the header fields a rejection points at (RFC 2408 3.1, Figure 2).
mod field {
    pub(super) const INITIATOR_COOKIE: usize = 0;
    pub(super) const RESPONDER_COOKIE: usize = 8;
    pub(super) const NEXT_PAYLOAD: usize = 16;
    pub(super) const VERSION: usize = 17;
    pub(super) const EXCHANGE_TYPE: usize = 18;
    pub(super) const FLAGS: usize = 19;
    pub(super) const MESSAGE_ID: usize = 20;
}

/// The header fields of the first 28 bytes, whatever the Length field says.
fn raw_header(bytes: &[u8]) -> Option<Header> {
    let h = bytes.first_chunk::<HEADER_LEN>()?;
    let cookie = |at: usize| -> Option<Cookie> { h.get(at..at + 8)?.try_into().ok() };
    let message_id = h.get(field::MESSAGE_ID..field::MESSAGE_ID + 4)?;
    Some(Header {
        initiator_cookie: cookie(field::INITIATOR_COOKIE)?,
        responder_cookie: cookie(field::RESPONDER_COOKIE)?,
        version: Version(h[field::VERSION]),
        exchange_type: ExchangeType::from(h[field::EXCHANGE_TYPE]),
        flags: Flags(h[field::FLAGS]),
        message_id: u32::from_be_bytes(message_id.try_into().ok()?),
    })
}

/// RFC 2408 5.2 steps 1-6 (step 3 before step 2, see the module docs).
fn check_header(
    header: &Header,
    next_payload: PayloadType,
    ctx: &Context<'_>,
) -> Result<(), (Check, usize)> {
    let exchange = header.exchange_type;

    // Step 1: cookies. RFC 2408 3.1: the responder cookie is zero only in the first message of
    // a phase 1 exchange; any other pair must name an SA the caller knows.
    if header.initiator_cookie == [0; 8] {
        return Err((Check::Cookie, field::INITIATOR_COOKIE));
    }
    if ctx.sa == SaState::None && header.responder_cookie != [0; 8] {
        return Err((Check::Cookie, field::RESPONDER_COOKIE));
    }

    // Step 3: version. RFC 2408 3.1: major version 1, minor version 0; "Implementations SHOULD
    // never accept packets with a major version number larger than its own" (and 0 is the
    // pre-RFC drafts).
    if header.version.major() != 1 {
        return Err((Check::MajorVersion, field::VERSION));
    }
    if header.version.minor() != 0 {
        return Err((Check::MinorVersion, field::VERSION));
    }

    // Step 2: the header's Next Payload must name a payload that can begin a message.
    if !payload_type_allowed(next_payload, ctx) {
        return Err((Check::NextPayload, field::NEXT_PAYLOAD));
    }

    // Step 4: exchange type, accepted at all and in this SA's state.
    let allowed = ctx.exchanges.contains(&exchange)
        && match ctx.sa {
            SaState::None => is_phase1(exchange),
            SaState::Phase1 { exchange: ours, .. } => {
                exchange == ours || exchange == ExchangeType::Informational
            }
            SaState::Established => is_phase2(exchange) || exchange == ExchangeType::Informational,
        };
    if !allowed {
        return Err((Check::ExchangeType, field::EXCHANGE_TYPE));
    }

    // Step 5: flags.
    if !flags_valid(header.flags, exchange, ctx.sa) {
        return Err((Check::Flags, field::FLAGS));
    }

    // Step 6: Message ID.
    if !message_id_valid(header.message_id, exchange, ctx.message_id) {
        return Err((Check::MessageId, field::MESSAGE_ID));
    }
    Ok(())
}

/// Phase 1 exchanges (RFC 2408 4.4-4.7; IKE uses 2 and 4).
fn is_phase1(exchange: ExchangeType) -> bool {
    matches!(
        exchange,
        ExchangeType::Base
            | ExchangeType::IdentityProtection
            | ExchangeType::AuthenticationOnly
            | ExchangeType::Aggressive
    )
}

/// Exchanges under an established ISAKMP SA that carry a Message ID of their own (RFC 2409 5.5
/// Quick Mode, 6 New Group Mode).
fn is_phase2(exchange: ExchangeType) -> bool {
    matches!(
        exchange,
        ExchangeType::QuickMode | ExchangeType::NewGroupMode
    )
}

/// A payload type that may stand in a message's payload chain (not inside an SA: Proposal and
/// Transform, RFC 2408 3.4), RFC 2408 3.1's list plus NAT-D and NAT-OA (RFC 3947).
fn payload_type_allowed(t: PayloadType, ctx: &Context<'_>) -> bool {
    match t {
        PayloadType::SecurityAssociation
        | PayloadType::KeyExchange
        | PayloadType::Identification
        | PayloadType::Certificate
        | PayloadType::CertificateRequest
        | PayloadType::Hash
        | PayloadType::Signature
        | PayloadType::Nonce
        | PayloadType::Notification
        | PayloadType::Delete
        | PayloadType::VendorId
        | PayloadType::NatDiscovery
        | PayloadType::NatOriginalAddress => true,
        PayloadType::Unknown(code) => ctx.draft_nat_t && DRAFT_NAT_T_PAYLOAD_TYPES.contains(&code),
        PayloadType::None | PayloadType::Proposal | PayloadType::Transform => false,
    }
}

/// RFC 2408 5.2 step 5.
fn flags_valid(flags: Flags, exchange: ExchangeType, sa: SaState) -> bool {
    // RFC 2408 3.1: "The remaining bits of the Flags field MUST be set to 0".
    if flags.unknown_bits() != 0 {
        return false;
    }
    // RFC 2408 3.1: with E, "all payloads following the header are encrypted using the
    // encryption algorithm identified in the ISAKMP SA": there must be one.
    if flags.encryption() && !sa.keyed() {
        return false;
    }
    // RFC 2408 3.1: A is "intended for use with the Informational Exchange", authenticated with
    // the ISAKMP SA and "the payload will not be encrypted".
    if flags.authentication_only()
        && (exchange != ExchangeType::Informational || flags.encryption() || !sa.keyed())
    {
        return false;
    }
    // RFC 2409 5.5 and 6: every Quick Mode and New Group Mode message is HDR*.
    if is_phase2(exchange) && !flags.encryption() {
        return false;
    }
    // RFC 2408 4.8: once the ISAKMP SA is established, "the Informational Exchange MUST be
    // transmitted under the protection provided by ... the ISAKMP SA".
    if exchange == ExchangeType::Informational
        && sa == SaState::Established
        && !flags.encryption()
        && !flags.authentication_only()
    {
        return false;
    }
    true
}

/// RFC 2408 5.2 step 6.
fn message_id_valid(message_id: u32, exchange: ExchangeType, state: MessageIdState) -> bool {
    if is_phase1(exchange) {
        // RFC 2408 3.1: "During Phase 1 negotiations, the value MUST be set to 0."
        return message_id == 0;
    }
    if is_phase2(exchange) {
        // RFC 2408 3.1: the phase 2 initiator chooses it at random; 0 is phase 1's.
        return message_id != 0
            && match state {
                MessageIdState::Unused => true,
                MessageIdState::InProgress(ours) => ours == exchange,
                MessageIdState::Completed => false,
            };
    }
    // Informational: any value. RFC 2408 4.8 asks for a fresh one, except that with the Commit
    // bit the CONNECTED notify carries the phase 2 exchange's own Message ID; replays of
    // Informational messages are the engine's to judge (DPD sequence numbers, RFC 3706).
    true
}

/// A payload check failure.
struct Fault {
    check: Check,
    offset: usize,
    payload_type: Option<PayloadType>,
}

/// RFC 2408 5.3 over the payload chain in `bytes` (offsets reported from `base`), each payload
/// in wire order: step 1 (its Next Payload), step 2 (its RESERVED), then its length and body.
fn walk(
    first: PayloadType,
    bytes: &[u8],
    base: usize,
    padding: Padding,
    ctx: &Context<'_>,
) -> Result<PayloadChain, Fault> {
    let fault = |check, at: usize, payload_type| Fault {
        check,
        offset: base.saturating_add(at),
        payload_type,
    };
    let mut payloads = Vec::new();
    let mut at = 0usize;
    let mut current = first;
    while current != PayloadType::None {
        let Some(&[next, reserved, len_hi, len_lo]) =
            bytes.get(at..).and_then(|rest| rest.first_chunk::<4>())
        else {
            return Err(fault(Check::PayloadLength, at, Some(current)));
        };
        let next = PayloadType::from(next);
        // Step 1: the Next Payload field.
        if next != PayloadType::None && !payload_type_allowed(next, ctx) {
            return Err(fault(Check::PayloadType, at, Some(next)));
        }
        // Step 2: RFC 2408 2.5.2, "All RESERVED fields in the ISAKMP protocol MUST be set to
        // zero (0)"; the receiver discards the packet otherwise.
        if reserved != 0 {
            return Err(fault(Check::PayloadReserved, at + 1, Some(current)));
        }
        // RFC 2408 3.2: Payload Length includes the 4-byte generic header.
        let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let Some(body) = (length >= 4)
            .then(|| bytes.get(at + 4..at + length))
            .flatten()
        else {
            return Err(fault(Check::PayloadLength, at + 2, Some(current)));
        };
        let raw = RawPayload {
            payload_type: current,
            reserved,
            offset: base.saturating_add(at),
            body,
        };
        let payload = Payload::from_raw(&raw).map_err(|e| Fault {
            check: Check::PayloadBody,
            offset: e.offset().unwrap_or(raw.offset),
            payload_type: Some(current),
        })?;
        // The RESERVED fields inside the body: Proposal and Transform headers in an SA
        // payload (5.3 step 2 allows BAD-PROPOSAL-SYNTAX), NAT-OA's three octets.
        if payload.has_nonzero_reserved() {
            let check = if current == PayloadType::SecurityAssociation {
                Check::ProposalReserved
            } else {
                Check::PayloadReserved
            };
            return Err(fault(check, at, Some(current)));
        }
        payloads.push(payload);
        at += length;
        current = next;
    }
    let rest = bytes.get(at..).unwrap_or(&[]);
    match padding {
        Padding::Forbidden if !rest.is_empty() => {
            return Err(fault(Check::ChainLength, at, None));
        }
        Padding::Zeros => {
            // RFC 2409 Appendix B pads with zeros; RFC 2409 5.3 lets the last byte count them.
            let pad = rest.split_last().map_or(&[][..], |(_, pad)| pad);
            if let Some(bad) = pad.iter().position(|&b| b != 0) {
                return Err(fault(Check::Padding, at + bad, None));
            }
        }
        _ => {}
    }
    Ok(PayloadChain {
        payloads,
        padding: rest.to_vec(),
    })
}

fn reject(
    check: Check,
    header: Option<Header>,
    offset: usize,
    payload_type: Option<PayloadType>,
    ctx: &Context<'_>,
) -> Verdict {
    let response = response(check, header.as_ref(), ctx);
    Verdict::Reject(Rejection {
        check,
        header,
        offset,
        payload_type,
        response,
    })
}

/// The policy: the rule's [`AnswerWhen`], then the overrides of the module docs.
fn response(check: Check, header: Option<&Header>, ctx: &Context<'_>) -> Response {
    let rule = check.rule();
    let Some(header) = header else {
        return Response::Drop;
    };
    // Never answer an Informational exchange (no notify wars; RFC 2408 5.14, 5.15).
    if rule.notify.is_none() || header.exchange_type == ExchangeType::Informational {
        return Response::Drop;
    }
    let initial = ctx.sa == SaState::None && header.responder_cookie == [0; 8];
    let known = ctx.sa != SaState::None;
    let answer = match rule.answer {
        AnswerWhen::Never => false,
        AnswerWhen::Initial => initial,
        AnswerWhen::KnownSa => known,
        AnswerWhen::Always => initial || known,
    };
    if !answer {
        return Response::Drop;
    }
    Response::Notify(if ctx.sa.keyed() {
        Protection::IsakmpSa
    } else {
        Protection::Unprotected
    })
}
