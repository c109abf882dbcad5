//! IKEv1 Main Mode with pre-shared keys or RSA signatures (RFC 2409 sections 5, 5.1 and 5.4;
//! RFC 2408 section 4.4, the Identity Protection exchange), both roles, as typed states that
//! consume themselves:
//!
//! ```text
//! Initiator                                  Responder
//! Initiator::start             HDR, SA  -->  Responder::handle_sa
//! Initiator<SentSa>       <--  HDR, SA       Responder<RepliedSa>
//!   ::handle_sa                HDR, KE, Ni -->  ::handle_ke
//! Initiator<SentKe<K>>    <--  HDR, KE, Nr   Responder<RepliedKe>
//!   ::handle_ke                HDR*, IDii, HASH_I / [CERT,] SIG_I -->  ::handle_id
//! Initiator<SentId>       <--  HDR*, IDir, HASH_R / [CERT,] SIG_R    IsakmpSa
//!   ::handle_id -> IsakmpSa
//! ```
//!
//! Each receiving method takes the datagram's bytes, runs [`checks::check`] (and, for the
//! encrypted messages 5 and 6, [`checks::check_decrypted`]) with the right [`Context`], then the
//! message's grammar, and returns the next state with the bytes to send, or a [`Failure`]
//! holding the unchanged state and a typed [`MainModeError`] whose [`MainModeError::notify`]
//! names the Notify it maps to. A failure leaves the state usable (an injected or corrupted
//! datagram does not end the exchange; the caller decides whether to give up). Nothing here
//! panics on input, reads a clock or sends.
//!
//! What each message carries and how it is checked:
//! - Messages 1 and 2: one SA payload (offer built by [`phase1_sa`], chosen by [`select_phase1`],
//!   confirmed by [`check_phase1_reply`]) and Vendor ID payloads: with NAT-T enabled
//!   ([`MainModeConfig::nat_t`]) the initiator sends every NAT-T Vendor ID and the responder
//!   answers the best one it received (RFC 3947 section 3.1, [`nat_t`]); other Vendor IDs are
//!   ignored. The initiator
//!   cookie comes from [`Crypto::fill_random`]; the responder cookie is the caller's (from
//!   [`crate::isakmp::cookie::CookieJar`]).
//! - Messages 3 and 4: KE (the DH public value in KE payload form, RFC 2409 section 5) and a
//!   32-byte random Nonce; the peer's nonce must be 8 to 256 bytes (RFC 2409 section 5), its KE
//!   the group's length and a valid value (else INVALID-KEY-INFORMATION). When both sides
//!   announced NAT-T they also carry two NAT-D payloads (the remote end's address, then ours;
//!   RFC 3947 section 3.2; type 130 with the draft), whose comparison gives each side a
//!   [`NatDetection`] ([`Initiator::nat`], [`Responder::nat`], [`IsakmpSa::nat`]); the caller
//!   moves to port 4500 for messages 5 and 6 when it says [`NatDetection::encapsulate`] (RFC 3947
//!   section 4). Vendor ID payloads are ignored. Any other payload, NAT-D without NAT-T
//!   included, is refused (INVALID-PAYLOAD-TYPE).
//!   The pre-shared key is taken here, as a parameter (the caller finds it by peer address):
//!   SKEYID = prf(pre-shared-key, Ni_b | Nr_b) and SKEYID_d/a/e ([`Phase1Keys`]); with RSA
//!   signatures the parameter is unused and SKEYID = prf(Ni_b | Nr_b, g^xy). The first IV is
//!   hash(g^xi | g^xr) (Appendix B). With RSA signatures both messages also carry a CERTREQ
//!   (X.509 signature) per trusted CA, naming its subject, as strongSwan does; a peer's CERTREQ
//!   is accepted and ignored (our certificate is sent anyway).
//! - Messages 5 and 6: encrypted with AES-CBC under the Appendix B key, the plaintext padded
//!   with zero octets to the block size (none when already a whole number of blocks), each
//!   message's last ciphertext block the next IV. They carry ID (as the caller gave it) and HASH
//!   (RFC 2409 section 5):
//!
//!   ```text
//!   HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
//!   HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
//!   ```
//!
//!   with SAi_b the initiator's SA payload body and ID*_b the ID payload body, both as they were
//!   on the wire, without the generic header. The peer's hash is compared in constant time;
//!   a mismatch is INVALID-HASH-INFORMATION (RFC 2408 section 5.12). A wrong pre-shared key
//!   usually fails earlier: the two sides' encryption keys differ, so the receiver's plaintext
//!   is noise and fails the payload checks ([`MainModeError::Undecryptable`],
//!   PAYLOAD-MALFORMED); which of the two a given wrong key or tampered byte produces depends on
//!   the bytes. Vendor ID and Notification payloads (INITIAL-CONTACT) are ignored.
//!
//!   With RSA signatures ([`Phase1Credentials::RsaSignature`], RFC 2409 section 5.1) they
//!   carry `ID, CERT, SIG` instead: ID as configured (by default the certificate's subject DN,
//!   ID_DER_ASN1_DN, [`RsaCredentials::default_id`]), our certificate and intermediates in CERT
//!   payloads (encoding 4), and SIG = HASH_I or HASH_R signed with PKCS#1 v1.5 padding and no
//!   DigestInfo ([`PrivateKey::sign_hash`]). The peer's message is taken in this order, each
//!   failure a typed error with its Notify: at most [`MAX_PEER_CERTS`] CERT payloads, each an
//!   X.509 certificate (INVALID-CERT-ENCODING); the end-entity certificate is the first whose
//!   key verifies the SIG, else the first, the others intermediates; its chain must lead to a
//!   trusted CA at the time the caller passes to `handle_id` (INVALID-CERT-AUTHORITY, or
//!   INVALID-CERTIFICATE when expired, not yet valid or otherwise refused); it must carry the
//!   ID payload's identity exactly (subject DN byte for byte, or a subjectAltName; RFC 4945
//!   section 3.1) and match the configured peer identity if any (AUTHENTICATION-FAILED, also
//!   when no certificate came); the SIG must verify (INVALID-SIGNATURE). A HASH payload is
//!   refused in this mode, and SIG and CERT with pre-shared keys (INVALID-PAYLOAD-TYPE).
//!
//! The result, [`IsakmpSa`], holds the cookies, the chosen proposal, the key schedule, the
//! encryption key, the last CBC block of phase 1 (for Quick Mode IVs, [`Iv::phase2`]) and the
//! peer's identity, which the caller checks against the connection's `remote.id`; with RSA
//! signatures also the peer's validated certificate ([`IsakmpSa::peer_cert`]), which is what
//! to match `remote.id` against ([`Certificate::matches`]), as strongSwan does.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::UNIX_EPOCH;
//! use realm_ike::ikev1::main_mode::{Initiator, MainModeConfig, Phase1Credentials, Responder};
//! use realm_ike::ikev1::nat_t::{Endpoints, NatTConfig};
//! use realm_ike::proposal::{IkeProposal, Preference};
//! use realm_ike::{AwsLcCrypto, CipherAlgorithm, DhGroup, HashAlgorithm};
//! use realm_wire::isakmp::Identification;
//!
//! let crypto = AwsLcCrypto::new();
//! let config = |id| MainModeConfig {
//!     proposals: vec![IkeProposal::new(
//!         CipherAlgorithm::Aes128Cbc,
//!         HashAlgorithm::Sha256,
//!         DhGroup::Ecp256,
//!     )],
//!     lifetime: NonZeroU32::new(10_800).unwrap(),
//!     preference: Preference::Ours,
//!     local_id: id,
//!     auth: Phase1Credentials::PreSharedKey,
//!     nat_t: NatTConfig::default(),
//!     vendor_ids: Vec::new(),
//! };
//! let psk = b"shared secret";
//! let (left, right) = ("192.0.2.1:500".parse()?, "198.51.100.2:500".parse()?);
//! let (i, m1) = Initiator::start(
//!     &crypto,
//!     config(Identification::fqdn("left")),
//!     Endpoints { local: left, remote: right },
//! )?;
//! let (r, m2) = Responder::handle_sa(
//!     config(Identification::fqdn("right")),
//!     [7; 8],
//!     Endpoints { local: right, remote: left },
//!     &m1,
//! )?;
//! let (i, m3) = i.handle_sa(&crypto, &m2).map_err(|f| f.error)?;
//! let (r, m4) = r.handle_ke(&crypto, &m3, psk).map_err(|f| f.error)?;
//! let (i, m5) = i.handle_ke(&crypto, &m4, psk).map_err(|f| f.error)?;
//! let (responder_sa, m6) = r.handle_id(&crypto, &m5, UNIX_EPOCH).map_err(|f| f.error)?;
//! let initiator_sa = i.handle_id(&crypto, &m6, UNIX_EPOCH).map_err(|f| f.error)?;
//! assert_eq!(initiator_sa.peer_id, Identification::fqdn("right"));
//! assert_eq!(initiator_sa.keys.skeyid_d().expose(), responder_sa.keys.skeyid_d().expose());
//! assert!(!initiator_sa.nat.encapsulate() && !responder_sa.nat.encapsulate());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A retransmitted earlier message (the peer did not get our answer) is refused by the next
//! state like any unexpected message; the caller recognises it (same bytes as the message it
//! last answered) and resends [`Initiator::last_sent`] or [`Responder::last_sent`] instead of
//! answering with the error's Notify.
//!
//! Not here: retransmission timers (each state keeps its last sent message,
//! [`Initiator::last_sent`], [`Responder::last_sent`], for the caller to resend), moving to port
//! 4500 (the caller's), DSS/ECDSA signatures, public key encryption, certificate revocation,
//! Aggressive Mode, and sending the Notify itself.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::SystemTime;

use aws_lc_rs::constant_time;
use realm_wire::isakmp::{
    Body, CertEncoding, CertificateRequest, Cookie, ExchangeType, Flags, Hash, Header, IdValue,
    Identification, KeyExchange, Message, Nonce, NotifyMessageType, Packet, Padding, Payload,
    PayloadBody, PayloadChain, PayloadType, RawPayloads, SecurityAssociation, Signature, VendorId,
};

use super::keys::{EncryptionKey, Iv, Phase1Auth, Phase1Inputs, Phase1Keys};
use super::nat_t::{self, Endpoints, NatDetection, NatTConfig, NatTVersion};
use crate::auth::{AuthError, Certificate, PrivateKey, SubjectAltName, TrustAnchors};
use crate::config::Identity;
use crate::crypto::{Crypto, CryptoError, DhKeyPair, PrfOutput, check_public_value_len};
use crate::isakmp::checks::{self, Context, Rejection, SaState, Verdict};
use crate::proposal::{
    AuthMethod, BuildError, IkeProposal, Phase1Choice, Phase1Policy, Preference, Refusal,
    check_phase1_reply, phase1_sa, select_phase1,
};

/// The length of the nonces Realm sends (RFC 2409 section 5 allows 8 to 256).
pub const NONCE_LEN: usize = 32;
/// The shortest nonce accepted (RFC 2409 section 5: "MUST be between 8 and 256 bytes").
pub const MIN_NONCE_LEN: usize = 8;
/// The longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 256;

static EXCHANGES: [ExchangeType; 1] = [ExchangeType::IdentityProtection];

/// What one side of a Main Mode exchange is configured with (besides a pre-shared key, which
/// the caller passes to the key exchange step).
#[derive(Debug, Clone)]
pub struct MainModeConfig {
    /// The phase 1 proposals, most preferred first.
    pub proposals: Vec<IkeProposal>,
    /// The ISAKMP SA lifetime offered (initiator) or accepted at most (responder).
    pub lifetime: NonZeroU32,
    /// Whose order wins when responding.
    pub preference: Preference,
    /// Our identity, sent in message 5 or 6 (ID_IPV4_ADDR, ID_FQDN, ...). With RSA
    /// signatures, usually [`RsaCredentials::default_id`] (our certificate's subject DN, as
    /// strongSwan sends it), and in any case a name our certificate carries: the peer checks it.
    pub local_id: Identification,
    /// How this side authenticates, and how it checks the peer (RFC 2409 section 5): the
    /// proposals are offered and accepted with this method only.
    pub auth: Phase1Credentials,
    /// NAT traversal (RFC 3947): announced, detected, or forced.
    pub nat_t: NatTConfig,
    /// Further Vendor ID payloads for messages 1 and 2 (the engine sends DPD's, RFC 3706
    /// section 5.1); a peer's are read by the caller from the plaintext messages 1 and 2.
    pub vendor_ids: Vec<Vec<u8>>,
}

impl MainModeConfig {
    pub(crate) fn policy(&self) -> Phase1Policy<'_> {
        Phase1Policy {
            proposals: &self.proposals,
            auth: self.auth.method(),
            lifetime: self.lifetime,
            preference: self.preference,
        }
    }
}

/// How one side of Main Mode authenticates (RFC 2409 section 5): the method offered and
/// required in the SA payload, what messages 5 and 6 carry, and how SKEYID is made.
#[derive(Debug, Clone, Default)]
pub enum Phase1Credentials {
    /// Pre-shared keys (RFC 2409 section 5.4): the key itself is given to `handle_ke` (the
    /// caller finds it by the peer's address); messages 5 and 6 carry HASH_I/HASH_R.
    #[default]
    PreSharedKey,
    /// RSA signatures (RFC 2409 section 5.1): messages 5 and 6 carry our CERT and SIG; the
    /// peer's are checked against the trust anchors. Shared (`Arc`) so configurations clone
    /// cheaply and the private key exists once.
    RsaSignature(Arc<RsaCredentials>),
}

impl Phase1Credentials {
    /// The authentication method of the SA payload's transforms.
    pub fn method(&self) -> AuthMethod {
        match self {
            Self::PreSharedKey => AuthMethod::PreSharedKey,
            Self::RsaSignature(_) => AuthMethod::RsaSignatures,
        }
    }
}

/// What authentication with RSA signatures needs (RFC 2409 section 5.1; strongSwan's
/// `local.certs`, the private key found for it, `remote.cacerts` and `remote.id`).
#[derive(Debug)]
pub struct RsaCredentials {
    key: PrivateKey,
    leaf: Certificate,
    intermediates: Vec<Certificate>,
    trust: TrustAnchors,
    peer_id: Option<Identity>,
}

impl RsaCredentials {
    /// Our key and certificates (`certs[0]` the end-entity certificate holding `key`'s public
    /// half, then any intermediates to send with it), the CAs a peer's certificate must chain
    /// to, and optionally a pattern the peer's certificate must match ([`Certificate::matches`]:
    /// subject DN, or a subjectAltName; `None` accepts any certificate that chains and names
    /// the peer's ID payload, leaving the choice to the caller, who reads
    /// [`IsakmpSa::peer_cert`]). Refused when `certs` is empty or `certs[0]` is not `key`'s.
    pub fn new(
        key: PrivateKey,
        certs: Vec<Certificate>,
        trust: TrustAnchors,
        peer_id: Option<Identity>,
    ) -> Result<Self, AuthError> {
        let mut certs = certs.into_iter();
        let leaf = certs.next().ok_or(AuthError::NoPem {
            what: "CERTIFICATE",
        })?;
        if !key.is_for(&leaf) {
            return Err(AuthError::UnsupportedKey(
                "the private key does not belong to the first certificate",
            ));
        }
        Ok(Self {
            key,
            leaf,
            intermediates: certs.collect(),
            trust,
            peer_id,
        })
    }

    /// Our end-entity certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.leaf
    }

    /// The ID strongSwan sends with a certificate and no configured `local.id`: ID_DER_ASN1_DN
    /// with the certificate's subject, byte for byte.
    pub fn default_id(&self) -> Identification {
        self.certificate().dn_identification()
    }

    /// The trust anchors a peer's certificate must chain to.
    pub fn trust(&self) -> &TrustAnchors {
        &self.trust
    }
}

/// Why a received message was not accepted, or our own message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MainModeError {
    /// The RFC 2408 5.1-5.3 checks refused it ([`Rejection::notify_type`] and
    /// [`Rejection::response`] say whether and how to answer).
    #[error("ISAKMP checks refused the message: {0:?}")]
    Rejected(Rejection),
    /// The message's cookies are not this exchange's (RFC 2408 5.2 step 1).
    #[error("cookies do not match the exchange")]
    WrongCookies,
    /// Not a Main Mode message, or a decrypted message that is not one (defence in depth: the
    /// checks' context already admits only Main Mode).
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// The SA payload was refused (RFC 2408 5.4-5.6): NO-PROPOSAL-CHOSEN or the Notify the
    /// refusal names.
    #[error("{0}")]
    Proposal(Box<Refusal>),
    /// Message 5 or 6 arrived in plaintext: RFC 2409 section 5 encrypts them (HDR*), so the
    /// E flag is wrong for this step (RFC 2408 5.2 step 5).
    #[error("message 5/6 without the E flag")]
    NotEncrypted,
    /// A payload the message must carry is missing or appears twice (RFC 2409 section 5).
    #[error("{0}")]
    Grammar(String),
    /// A payload this step does not accept.
    #[error("payload {0:?} not accepted in this message")]
    UnexpectedPayload(PayloadType),
    /// The peer's nonce is not 8 to 256 bytes (RFC 2409 section 5).
    #[error("nonce of {0} bytes, RFC 2409 section 5 wants 8 to 256")]
    NonceLength(usize),
    /// The peer's KE payload does not hold a valid public value of the group.
    #[error("invalid key exchange payload: {0}")]
    KeyExchange(CryptoError),
    /// The ciphertext is not a non-empty whole number of cipher blocks (RFC 2409 Appendix B).
    #[error("ciphertext of {0} bytes is not a whole number of blocks")]
    CiphertextLength(usize),
    /// The decrypted message 5 or 6 fails the RFC 2408 5.3 payload checks. With pre-shared keys
    /// this is what a wrong key looks like to the receiver (both sides' SKEYID_e differ, so the
    /// plaintext is noise) as much as a corrupted message; the hash check is reached only when
    /// the plaintext happens to parse. Answered PAYLOAD-MALFORMED.
    #[error("message 5/6 does not decrypt to payloads (wrong pre-shared key or corrupted): {0:?}")]
    Undecryptable(Box<Rejection>),
    /// The peer's HASH_I or HASH_R does not verify: a wrong pre-shared key or a tampered
    /// message (RFC 2408 5.12).
    #[error("the peer's hash does not verify")]
    HashMismatch,
    /// The peer's certificate chain or signature was refused, or ours could not be made (RFC
    /// 2409 section 5.1); the Notify is [`AuthError::notify`]'s (INVALID-CERT-AUTHORITY,
    /// INVALID-CERTIFICATE, INVALID-CERT-ENCODING, INVALID-SIGNATURE, or none for our own).
    #[error("{0}")]
    Auth(AuthError),
    /// With RSA signatures: the peer sent no certificate, or its certificate does not name the
    /// identity of its ID payload, or does not match the configured peer identity
    /// ([`RsaCredentials::new`]): AUTHENTICATION-FAILED (RFC 2408 section 3.14.1).
    #[error("authentication failed: {0}")]
    AuthenticationFailed(&'static str),
    /// Our offer could not be built.
    #[error("{0}")]
    Build(BuildError),
    /// The crypto provider failed on our side.
    #[error("{0}")]
    Crypto(CryptoError),
    /// Our message could not be emitted.
    #[error("emitting: {0}")]
    Emit(realm_wire::Error),
}

impl MainModeError {
    /// The Notify message type this error maps to, or `None` when there is none to send (our own
    /// failure, or cookies that name no exchange, which RFC 2408 5.2 step 1 and Realm's policy
    /// never answer).
    pub fn notify(&self) -> Option<NotifyMessageType> {
        match self {
            Self::Rejected(r) => r.notify_type(),
            Self::WrongCookies => None,
            Self::Unexpected(_) => Some(NotifyMessageType::InvalidExchangeType),
            Self::NotEncrypted => Some(NotifyMessageType::InvalidFlags),
            Self::Proposal(r) => Some(r.notify()),
            Self::Grammar(_)
            | Self::NonceLength(_)
            | Self::CiphertextLength(_)
            | Self::Undecryptable(_) => Some(NotifyMessageType::PayloadMalformed),
            Self::UnexpectedPayload(_) => Some(NotifyMessageType::InvalidPayloadType),
            Self::KeyExchange(_) => Some(NotifyMessageType::InvalidKeyInformation),
            Self::HashMismatch => Some(NotifyMessageType::InvalidHashInformation),
            Self::Auth(e) => e.notify(),
            Self::AuthenticationFailed(_) => Some(NotifyMessageType::AuthenticationFailed),
            Self::Build(_) | Self::Crypto(_) | Self::Emit(_) => None,
        }
    }
}

impl From<CryptoError> for MainModeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl From<realm_wire::Error> for MainModeError {
    fn from(e: realm_wire::Error) -> Self {
        Self::Emit(e)
    }
}

/// A received message a state did not accept: the state, unchanged, and why.
pub type Failure<S> = super::Failure<S, MainModeError>;

/// A transition's result: the next state and the bytes to send, or the failure.
pub type Step<Next, S> = Result<(Next, Vec<u8>), Box<Failure<S>>>;

/// The established ISAKMP SA: what phase 2 and the Informational exchange need.
#[derive(Debug, Clone)]
pub struct IsakmpSa {
    /// CKY-I.
    pub initiator_cookie: Cookie,
    /// CKY-R.
    pub responder_cookie: Cookie,
    /// True on the side that sent message 1.
    pub is_initiator: bool,
    /// The negotiated proposal, transform and lifetime.
    pub choice: Phase1Choice,
    /// SKEYID and SKEYID_d/_a/_e.
    pub keys: Phase1Keys,
    /// The encryption key (RFC 2409 Appendix B).
    pub encryption_key: EncryptionKey,
    /// The last CBC block of phase 1 (message 6's last ciphertext block): the input of every
    /// Quick Mode and Informational IV ([`Iv::phase2`]).
    pub last_phase1_block: Iv,
    /// Our identity as sent.
    pub local_id: Identification,
    /// The peer's identity as received (the caller checks it against its configuration).
    pub peer_id: Identification,
    /// With RSA signatures, the peer's end-entity certificate, validated at the time given to
    /// `handle_id` and naming [`peer_id`](Self::peer_id); the caller checks it against its
    /// `remote.id` with [`Certificate::matches`] (strongSwan matches the certificate, not the
    /// ID payload). `None` with pre-shared keys.
    pub peer_cert: Option<Certificate>,
    /// NAT traversal as negotiated and detected in messages 1 to 4 (RFC 3947).
    pub nat: NatDetection,
}

/// The initiator; `S` is the step it is at.
#[derive(Debug)]
pub struct Initiator<S> {
    config: MainModeConfig,
    endpoints: Endpoints,
    cky_i: Cookie,
    last_sent: Vec<u8>,
    state: S,
}

/// Responder; `S` is the step it is at.
#[derive(Debug)]
pub struct Responder<S> {
    config: MainModeConfig,
    endpoints: Endpoints,
    cky_i: Cookie,
    cky_r: Cookie,
    last_sent: Vec<u8>,
    state: S,
}

/// Initiator step: message 1 (SA) sent, awaiting message 2.
#[derive(Debug)]
pub struct SentSa {
    offered: SecurityAssociation,
    sa_i_b: Vec<u8>,
}

/// Initiator step: message 3 (KE, Ni) sent, awaiting message 4.
#[derive(Debug)]
pub struct SentKe<K> {
    cky_r: Cookie,
    sa_i_b: Vec<u8>,
    choice: Phase1Choice,
    key_pair: K,
    ni: Vec<u8>,
    nat_version: Option<NatTVersion>,
}

/// Initiator step: message 5 (IDii, HASH_I) sent, awaiting message 6.
#[derive(Debug)]
pub struct SentId {
    cky_r: Cookie,
    sa_i_b: Vec<u8>,
    choice: Phase1Choice,
    keyed: Keyed,
    nat: NatDetection,
}

/// Responder step: message 2 (SA) sent, awaiting message 3.
#[derive(Debug)]
pub struct RepliedSa {
    sa_i_b: Vec<u8>,
    choice: Phase1Choice,
    nat_version: Option<NatTVersion>,
}

/// Responder step: message 4 (KE, Nr) sent, awaiting message 5.
#[derive(Debug)]
pub struct RepliedKe {
    sa_i_b: Vec<u8>,
    choice: Phase1Choice,
    keyed: Keyed,
    nat: NatDetection,
}

/// What exists once the KE payloads are exchanged.
#[derive(Debug)]
pub(crate) struct Keyed {
    pub(crate) g_xi: Vec<u8>,
    pub(crate) g_xr: Vec<u8>,
    pub(crate) keys: Phase1Keys,
    pub(crate) encryption_key: EncryptionKey,
    /// The IV for the next message to encrypt or decrypt.
    pub(crate) iv: Iv,
}

impl<S> Initiator<S> {
    /// The last message sent, for retransmission.
    pub fn last_sent(&self) -> &[u8] {
        &self.last_sent
    }

    /// CKY-I.
    pub fn initiator_cookie(&self) -> Cookie {
        self.cky_i
    }

    fn fail<T>(self, error: MainModeError) -> Result<T, Box<Failure<Self>>> {
        Err(Box::new(Failure { state: self, error }))
    }
}

impl<S> Responder<S> {
    /// The last message sent, for retransmission.
    pub fn last_sent(&self) -> &[u8] {
        &self.last_sent
    }

    /// The cookie pair (CKY-I, CKY-R).
    pub fn cookies(&self) -> (Cookie, Cookie) {
        (self.cky_i, self.cky_r)
    }

    fn fail<T>(self, error: MainModeError) -> Result<T, Box<Failure<Self>>> {
        Err(Box::new(Failure { state: self, error }))
    }
}

impl Initiator<SentSa> {
    /// Begins Main Mode: a random non-zero CKY-I and message 1 (HDR, SA) offering
    /// `config.proposals` with `config.auth`'s authentication method, and with NAT-T enabled every
    /// NAT-T Vendor ID ([`nat_t::NAT_T_VENDOR_IDS`], RFC 3947 section 3.1). `endpoints`: the
    /// addresses messages 1 to 4 go between, as this side sees them (for the NAT-D payloads).
    pub fn start<C: Crypto>(
        crypto: &C,
        config: MainModeConfig,
        endpoints: Endpoints,
    ) -> Result<(Self, Vec<u8>), MainModeError> {
        let mut cky_i = [0u8; 8];
        crypto.fill_random(&mut cky_i)?;
        if cky_i == [0; 8] {
            // RFC 2408 3.1: the initiator cookie is never zero.
            crypto.fill_random(&mut cky_i)?;
            if cky_i == [0; 8] {
                return Err(MainModeError::Crypto(CryptoError::Random));
            }
        }
        let offered = phase1_sa(&config.proposals, config.auth.method(), config.lifetime)
            .map_err(MainModeError::Build)?;
        let sa_i_b = PayloadBody::SecurityAssociation(offered.clone()).to_bytes()?;
        let header = Header::new(ExchangeType::IdentityProtection, cky_i, [0; 8], 0);
        let mut payloads = vec![Payload::new(PayloadBody::SecurityAssociation(
            offered.clone(),
        ))];
        if config.nat_t.enabled {
            payloads.extend(nat_t::NAT_T_VENDOR_IDS.map(nat_t::vendor_id_payload));
        }
        payloads.extend(extra_vendor_ids(&config));
        let bytes = Message::new(header, payloads).to_bytes()?;
        let state = Initiator {
            config,
            endpoints,
            cky_i,
            last_sent: bytes.clone(),
            state: SentSa { offered, sa_i_b },
        };
        Ok((state, bytes))
    }

    /// Takes message 2 (HDR, SA): checks the answer against the offer, then sends message 3
    /// (HDR, KE, Ni) with a fresh key pair in the chosen group.
    pub fn handle_sa<C: Crypto>(
        self,
        crypto: &C,
        datagram: &[u8],
    ) -> Step<Initiator<SentKe<C::KeyPair>>, Self> {
        let step = (|| {
            let ctx = phase1_context(false, None);
            let (header, payloads) = plaintext(datagram, &ctx)?;
            if header.initiator_cookie != self.cky_i || header.responder_cookie == [0; 8] {
                return Err(MainModeError::WrongCookies);
            }
            let sa = sa_payload(&payloads)?;
            let choice = check_phase1_reply(&self.state.offered, sa, &self.config.policy())
                .map_err(|r| MainModeError::Proposal(Box::new(r)))?;
            // RFC 3947 3.1: NAT-T is used when the responder answered with one of the Vendor
            // IDs we sent (all of them, when enabled); the best it sent decides the version.
            let nat_version = if self.config.nat_t.enabled {
                nat_t::NatTVersion::select(vendor_ids(&payloads))
                    .and_then(|v| NatTVersion::from_vendor_id(&v))
            } else {
                None
            };
            let key_pair = crypto.generate_key_pair(choice.proposal.group)?;
            let ni = random_nonce(crypto)?;
            let cookies = [self.cky_i, header.responder_cookie];
            let nat_d = match nat_version {
                Some(v) => nat_t::nat_d_payloads(
                    crypto,
                    v,
                    choice.proposal.hash,
                    cookies,
                    self.endpoints,
                    self.config.nat_t.force_encap,
                )?,
                None => Vec::new(),
            };
            let mut extra = cert_requests(&self.config.auth);
            extra.extend(nat_d);
            let bytes = ke_message(cookies, key_pair.public_value(), &ni, extra)?;
            Ok((
                header.responder_cookie,
                choice,
                key_pair,
                ni,
                nat_version,
                bytes,
            ))
        })();
        match step {
            Ok((cky_r, choice, key_pair, ni, nat_version, bytes)) => Ok((
                Initiator {
                    config: self.config,
                    endpoints: self.endpoints,
                    cky_i: self.cky_i,
                    last_sent: bytes.clone(),
                    state: SentKe {
                        cky_r,
                        sa_i_b: self.state.sa_i_b,
                        choice,
                        key_pair,
                        ni,
                        nat_version,
                    },
                },
                bytes,
            )),
            Err(e) => self.fail(e),
        }
    }
}

impl<K: DhKeyPair> Initiator<SentKe<K>> {
    /// Takes message 4 (HDR, KE, Nr [, CERTREQ]) and the pre-shared key for this peer (unused,
    /// pass `&[]`, with RSA signatures): derives the key schedule, then sends message 5
    /// (HDR*, IDii, HASH_I, or IDii, CERT, SIG_I).
    pub fn handle_ke<C: Crypto<KeyPair = K>>(
        self,
        crypto: &C,
        datagram: &[u8],
        psk: &[u8],
    ) -> Step<Initiator<SentId>, Self> {
        let s = &self.state;
        let step = (|| {
            let ctx = phase1_context(false, s.nat_version);
            let (header, payloads) = plaintext(datagram, &ctx)?;
            if header.initiator_cookie != self.cky_i || header.responder_cookie != s.cky_r {
                return Err(MainModeError::WrongCookies);
            }
            let (g_xr, nr, nat_d) = ke_nonce(&payloads, s.choice.proposal.group, s.nat_version)?;
            let nat = detect_nat(
                crypto,
                s.nat_version,
                &self.config.nat_t,
                s.choice.proposal.hash,
                [self.cky_i, s.cky_r],
                self.endpoints,
                &nat_d,
            )?;
            let g_xy = crypto
                .agree(&s.key_pair, &g_xr)
                .map_err(MainModeError::KeyExchange)?;
            let mut keyed = Keyed::derive(
                crypto,
                &s.choice.proposal,
                phase1_auth(&self.config.auth, psk),
                [&s.ni, &nr],
                s.key_pair.public_value().to_vec(),
                g_xr,
                &g_xy,
                [self.cky_i, s.cky_r],
            )?;
            let bytes =
                keyed.id_message(crypto, true, [self.cky_i, s.cky_r], &s.sa_i_b, &self.config)?;
            Ok((keyed, nat, bytes))
        })();
        match step {
            Ok((keyed, nat, bytes)) => Ok((
                Initiator {
                    config: self.config,
                    endpoints: self.endpoints,
                    cky_i: self.cky_i,
                    last_sent: bytes.clone(),
                    state: SentId {
                        cky_r: self.state.cky_r,
                        sa_i_b: self.state.sa_i_b,
                        choice: self.state.choice,
                        keyed,
                        nat,
                    },
                },
                bytes,
            )),
            Err(e) => self.fail(e),
        }
    }
}

impl Initiator<SentId> {
    /// NAT traversal as negotiated and detected in messages 1 to 4: when
    /// [`NatDetection::encapsulate`], message 5 went, and message 6 and everything after go,
    /// to and from port 4500 (RFC 3947 section 4; moving is the caller's).
    pub fn nat(&self) -> NatDetection {
        self.state.nat
    }

    /// Takes message 6 (HDR*, IDir, HASH_R, or IDir, CERT, SIG_R): decrypts it, verifies
    /// HASH_R or the certificate and SIG_R, and returns the established ISAKMP SA. `now` is the
    /// wall-clock time the peer's certificate chain is validated at (unused with pre-shared
    /// keys; this crate reads no clock).
    pub fn handle_id<C: Crypto>(
        self,
        crypto: &C,
        datagram: &[u8],
        now: SystemTime,
    ) -> Result<IsakmpSa, Box<Failure<Self>>> {
        let s = &self.state;
        let cookies = [self.cky_i, s.cky_r];
        match s.keyed.receive_id(
            crypto,
            datagram,
            cookies,
            false,
            &s.sa_i_b,
            (&self.config.auth, now),
        ) {
            Ok((peer_id, peer_cert, last_block)) => {
                let Initiator {
                    config,
                    cky_i,
                    state,
                    ..
                } = self;
                Ok(IsakmpSa {
                    initiator_cookie: cky_i,
                    responder_cookie: state.cky_r,
                    is_initiator: true,
                    choice: state.choice,
                    keys: state.keyed.keys,
                    encryption_key: state.keyed.encryption_key,
                    last_phase1_block: last_block,
                    local_id: config.local_id,
                    peer_id,
                    peer_cert,
                    nat: state.nat,
                })
            }
            Err(e) => self.fail(e),
        }
    }
}

impl Responder<RepliedSa> {
    /// Takes message 1 (HDR, SA), chooses a proposal, and sends message 2 (HDR, SA) with
    /// `responder_cookie` (the caller's, from its [`crate::isakmp::cookie::CookieJar`]).
    /// There is no state before message 1, so an error comes alone.
    ///
    /// With NAT-T enabled, answers the best NAT-T Vendor ID the initiator sent
    /// ([`NatTVersion::select`], RFC 3947 section 3.1). `endpoints`: the addresses messages 1 to
    /// 4 go between, as this side sees them (message 1's destination and source).
    pub fn handle_sa(
        config: MainModeConfig,
        responder_cookie: Cookie,
        endpoints: Endpoints,
        datagram: &[u8],
    ) -> Result<(Self, Vec<u8>), MainModeError> {
        let ctx = Context::new(SaState::None, &EXCHANGES);
        let (header, payloads) = plaintext(datagram, &ctx)?;
        if responder_cookie == [0; 8] {
            return Err(MainModeError::WrongCookies);
        }
        let sa = sa_payload(&payloads)?;
        let sa_i_b = sa_body(datagram)?;
        let choice = select_phase1(sa, &config.policy())
            .map_err(|r| MainModeError::Proposal(Box::new(r)))?;
        let nat_vid = if config.nat_t.enabled {
            NatTVersion::select(vendor_ids(&payloads))
        } else {
            None
        };
        let reply = Header::new(
            ExchangeType::IdentityProtection,
            header.initiator_cookie,
            responder_cookie,
            0,
        );
        let mut out = vec![Payload::new(PayloadBody::SecurityAssociation(
            choice.reply(),
        ))];
        out.extend(nat_vid.map(nat_t::vendor_id_payload));
        out.extend(extra_vendor_ids(&config));
        let bytes = Message::new(reply, out).to_bytes()?;
        Ok((
            Responder {
                config,
                endpoints,
                cky_i: header.initiator_cookie,
                cky_r: responder_cookie,
                last_sent: bytes.clone(),
                state: RepliedSa {
                    sa_i_b,
                    choice,
                    nat_version: nat_vid.and_then(|v| NatTVersion::from_vendor_id(&v)),
                },
            },
            bytes,
        ))
    }

    /// Takes message 3 (HDR, KE, Ni [, CERTREQ]) and the pre-shared key for this peer (unused,
    /// pass `&[]`, with RSA signatures): makes our key pair, derives the key schedule, and sends
    /// message 4 (HDR, KE, Nr [, CERTREQ]).
    pub fn handle_ke<C: Crypto>(
        self,
        crypto: &C,
        datagram: &[u8],
        psk: &[u8],
    ) -> Step<Responder<RepliedKe>, Self> {
        let s = &self.state;
        let cookies = [self.cky_i, self.cky_r];
        let step = (|| {
            let ctx = phase1_context(false, s.nat_version);
            let (header, payloads) = plaintext(datagram, &ctx)?;
            if [header.initiator_cookie, header.responder_cookie] != cookies {
                return Err(MainModeError::WrongCookies);
            }
            let group = s.choice.proposal.group;
            let (g_xi, ni, nat_d) = ke_nonce(&payloads, group, s.nat_version)?;
            let hash = s.choice.proposal.hash;
            let nat = detect_nat(
                crypto,
                s.nat_version,
                &self.config.nat_t,
                hash,
                cookies,
                self.endpoints,
                &nat_d,
            )?;
            let key_pair = crypto.generate_key_pair(group)?;
            let g_xy = crypto
                .agree(&key_pair, &g_xi)
                .map_err(MainModeError::KeyExchange)?;
            let nr = random_nonce(crypto)?;
            let g_xr = key_pair.public_value().to_vec();
            let nat_d = match s.nat_version {
                Some(v) => nat_t::nat_d_payloads(
                    crypto,
                    v,
                    hash,
                    cookies,
                    self.endpoints,
                    self.config.nat_t.force_encap,
                )?,
                None => Vec::new(),
            };
            let mut extra = cert_requests(&self.config.auth);
            extra.extend(nat_d);
            let bytes = ke_message(cookies, &g_xr, &nr, extra)?;
            let keyed = Keyed::derive(
                crypto,
                &s.choice.proposal,
                phase1_auth(&self.config.auth, psk),
                [&ni, &nr],
                g_xi,
                g_xr,
                &g_xy,
                cookies,
            )?;
            Ok((keyed, nat, bytes))
        })();
        match step {
            Ok((keyed, nat, bytes)) => Ok((
                Responder {
                    config: self.config,
                    endpoints: self.endpoints,
                    cky_i: self.cky_i,
                    cky_r: self.cky_r,
                    last_sent: bytes.clone(),
                    state: RepliedKe {
                        sa_i_b: self.state.sa_i_b,
                        choice: self.state.choice,
                        keyed,
                        nat,
                    },
                },
                bytes,
            )),
            Err(e) => self.fail(e),
        }
    }
}

impl Responder<RepliedKe> {
    /// NAT traversal as negotiated and detected in messages 1 to 4: when
    /// [`NatDetection::encapsulate`], message 5 arrives at, and message 6 and everything
    /// after leave from, port 4500 (RFC 3947 section 4; the caller's sockets).
    pub fn nat(&self) -> NatDetection {
        self.state.nat
    }

    /// Takes message 5 (HDR*, IDii, HASH_I, or IDii, CERT, SIG_I): decrypts it, verifies
    /// HASH_I or the certificate (chain at `now`, the caller's wall-clock time; unused with
    /// pre-shared keys) and SIG_I, and sends message 6 (HDR*, IDir, HASH_R, or IDir, CERT,
    /// SIG_R). Returns the established ISAKMP SA and message 6, which the caller keeps to
    /// answer a retransmitted message 5.
    pub fn handle_id<C: Crypto>(
        self,
        crypto: &C,
        datagram: &[u8],
        now: SystemTime,
    ) -> Step<IsakmpSa, Self> {
        let s = &self.state;
        let cookies = [self.cky_i, self.cky_r];
        let step = (|| {
            let (peer_id, peer_cert, iv) = s.keyed.receive_id(
                crypto,
                datagram,
                cookies,
                true,
                &s.sa_i_b,
                (&self.config.auth, now),
            )?;
            let mut keyed = Keyed {
                g_xi: s.keyed.g_xi.clone(),
                g_xr: s.keyed.g_xr.clone(),
                keys: s.keyed.keys.clone(),
                encryption_key: s.keyed.encryption_key.clone(),
                iv,
            };
            let bytes = keyed.id_message(crypto, false, cookies, &s.sa_i_b, &self.config)?;
            Ok((peer_id, peer_cert, keyed, bytes))
        })();
        match step {
            Ok((peer_id, peer_cert, keyed, bytes)) => Ok((
                IsakmpSa {
                    initiator_cookie: self.cky_i,
                    responder_cookie: self.cky_r,
                    is_initiator: false,
                    choice: self.state.choice,
                    keys: keyed.keys,
                    encryption_key: keyed.encryption_key,
                    last_phase1_block: keyed.iv,
                    local_id: self.config.local_id,
                    peer_id,
                    peer_cert,
                    nat: self.state.nat,
                },
                bytes,
            )),
            Err(e) => self.fail(e),
        }
    }
}

impl Keyed {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn derive<C: Crypto>(
        crypto: &C,
        proposal: &IkeProposal,
        auth: Phase1Auth<'_>,
        [ni, nr]: [&[u8]; 2],
        g_xi: Vec<u8>,
        g_xr: Vec<u8>,
        g_xy: &crate::crypto::SharedSecret,
        [cky_i, cky_r]: [Cookie; 2],
    ) -> Result<Self, MainModeError> {
        let keys = Phase1Keys::derive(
            crypto,
            &Phase1Inputs {
                prf: proposal.prf(),
                auth,
                ni_b: ni,
                nr_b: nr,
                g_xy,
                cky_i,
                cky_r,
            },
        )?;
        let encryption_key = keys.encryption_key(crypto, proposal.cipher)?;
        let iv = Iv::phase1(crypto, proposal.hash, proposal.cipher, &g_xi, &g_xr)?;
        Ok(Keyed {
            g_xi,
            g_xr,
            keys,
            encryption_key,
            iv,
        })
    }

    /// HASH_I (`initiator`) or HASH_R (RFC 2409 section 5).
    pub(crate) fn hash<C: Crypto>(
        &self,
        crypto: &C,
        initiator: bool,
        [cky_i, cky_r]: [Cookie; 2],
        sa_i_b: &[u8],
        id_b: &[u8],
    ) -> Result<PrfOutput, MainModeError> {
        let data: [&[u8]; 6] = if initiator {
            [&self.g_xi, &self.g_xr, &cky_i, &cky_r, sa_i_b, id_b]
        } else {
            [&self.g_xr, &self.g_xi, &cky_r, &cky_i, sa_i_b, id_b]
        };
        Ok(crypto.prf(self.keys.prf(), self.keys.skeyid().expose(), &data)?)
    }

    /// Message 5 (`initiator`) or 6: `HDR*, ID, HASH` with pre-shared keys (RFC 2409 section
    /// 5.4), `HDR*, ID, CERT, SIG` with RSA signatures (section 5.1: SIG_I/SIG_R is HASH_I/
    /// HASH_R signed; our certificate, then any intermediates, in CERT payloads of encoding
    /// 4, as strongSwan sends them).
    fn id_message<C: Crypto>(
        &mut self,
        crypto: &C,
        initiator: bool,
        cookies: [Cookie; 2],
        sa_i_b: &[u8],
        config: &MainModeConfig,
    ) -> Result<Vec<u8>, MainModeError> {
        let id_b = PayloadBody::Identification(config.local_id.clone()).to_bytes()?;
        let hash = self.hash(crypto, initiator, cookies, sa_i_b, &id_b)?;
        let auth = match &config.auth {
            Phase1Credentials::PreSharedKey => vec![Payload::new(PayloadBody::Hash(Hash::new(
                hash.expose().to_vec(),
            )))],
            Phase1Credentials::RsaSignature(creds) => {
                // RFC 2409 5.1: "SIG_I or SIG_R is the result of applying the negotiated
                // digital signature algorithm to HASH_I or HASH_R respectively".
                let sig = creds
                    .key
                    .sign_hash(hash.expose())
                    .map_err(MainModeError::Auth)?;
                let mut payloads: Vec<Payload> = std::iter::once(&creds.leaf)
                    .chain(&creds.intermediates)
                    .map(|c| Payload::new(PayloadBody::Certificate(c.to_cert_payload())))
                    .collect();
                payloads.push(Payload::new(PayloadBody::Signature(Signature::new(sig))));
                payloads
            }
        };
        self.encrypted_id_message(crypto, cookies, &config.local_id, auth)
    }

    /// HDR*, ID, then `auth` (HASH, or CERT and SIG) encrypted with the current IV; the IV
    /// becomes the last ciphertext block.
    fn encrypted_id_message<C: Crypto>(
        &mut self,
        crypto: &C,
        [cky_i, cky_r]: [Cookie; 2],
        id: &Identification,
        auth: Vec<Payload>,
    ) -> Result<Vec<u8>, MainModeError> {
        let mut payloads = vec![Payload::new(PayloadBody::Identification(id.clone()))];
        payloads.extend(auth);
        let chain = PayloadChain::new(payloads);
        let mut data = chain.to_bytes()?;
        let block = self.encryption_key.cipher().block_len();
        // RFC 2409 Appendix B: padded to the block size; zero octets (RFC 2408 3.1 leaves the
        // padding's content open, and Realm's receiver accepts zeros or a final pad count).
        let padded = data.len().div_ceil(block) * block;
        data.resize(padded, 0);
        self.encryption_key.encrypt(crypto, &self.iv, &mut data)?;
        self.iv = Iv::last_block_of(&data).ok_or(MainModeError::Crypto(CryptoError::Provider))?;
        let mut header = Header::new(ExchangeType::IdentityProtection, cky_i, cky_r, 0);
        header.flags = Flags::empty().with(Flags::ENCRYPTION, true);
        Ok(Message::encrypted(header, PayloadType::Identification, data).to_bytes()?)
    }

    /// Checks, decrypts and verifies message 5 (`from_initiator`) or 6 as `auth` says (HASH,
    /// or CERT and SIG with the chain validated at `now`): returns the peer's ID, its
    /// certificate (RSA signatures) and the IV after it (its last ciphertext block).
    fn receive_id<C: Crypto>(
        &self,
        crypto: &C,
        datagram: &[u8],
        cookies: [Cookie; 2],
        from_initiator: bool,
        sa_i_b: &[u8],
        (auth, now): (&Phase1Credentials, SystemTime),
    ) -> Result<(Identification, Option<Certificate>, Iv), MainModeError> {
        let ctx = phase1_context(true, None);
        let message = accept(checks::check(datagram, &ctx))?;
        check_header(&message.header, cookies)?;
        let Body::Encrypted {
            next_payload,
            ciphertext,
        } = &message.body
        else {
            return Err(MainModeError::NotEncrypted);
        };
        let block = self.encryption_key.cipher().block_len();
        if ciphertext.is_empty() || ciphertext.len() % block != 0 {
            return Err(MainModeError::CiphertextLength(ciphertext.len()));
        }
        let next_iv = Iv::last_block_of(ciphertext)
            .ok_or(MainModeError::CiphertextLength(ciphertext.len()))?;
        let mut plaintext = ciphertext.clone();
        self.encryption_key
            .decrypt(crypto, &self.iv, &mut plaintext)?;
        let decrypted = match checks::check_decrypted(
            &message.header,
            *next_payload,
            &plaintext,
            Padding::Zeros,
            &ctx,
        ) {
            Verdict::Accept(m) => m,
            Verdict::Reject(r) => return Err(MainModeError::Undecryptable(Box::new(r))),
        };
        let Body::Payloads(chain) = &decrypted.body else {
            return Err(MainModeError::Unexpected(
                "decrypted message without payloads",
            ));
        };
        let rsa = match auth {
            Phase1Credentials::PreSharedKey => None,
            Phase1Credentials::RsaSignature(creds) => Some(creds),
        };
        let mut id = None;
        let mut hash = None;
        let mut sig = None;
        let mut certs = Vec::new();
        for p in chain.payloads.iter() {
            match (&p.body, rsa) {
                (PayloadBody::Identification(i), _) => set_once(&mut id, i, "ID")?,
                (PayloadBody::Hash(h), None) => set_once(&mut hash, h, "HASH")?,
                (PayloadBody::Signature(s), Some(_)) => set_once(&mut sig, s, "SIG")?,
                (PayloadBody::Certificate(c), Some(_)) => certs.push(c),
                // A CERTREQ here asks for nothing we would not send anyway.
                (PayloadBody::CertificateRequest(_), Some(_))
                | (PayloadBody::VendorId(_) | PayloadBody::Notification(_), _) => {}
                (other, _) => return Err(MainModeError::UnexpectedPayload(other.payload_type())),
            }
        }
        let id = id.ok_or_else(|| missing("ID"))?;
        let id_b = RawPayloads::new(*next_payload, &plaintext, Padding::Zeros)
            .filter_map(Result::ok)
            .find(|raw| raw.payload_type == PayloadType::Identification)
            .map(|raw| raw.body)
            .ok_or_else(|| missing("ID"))?;
        let expected = self.hash(crypto, from_initiator, cookies, sa_i_b, id_b)?;
        let peer_cert = match rsa {
            None => {
                let hash = hash.ok_or_else(|| missing("HASH"))?;
                constant_time::verify_slices_are_equal(expected.expose(), &hash.data)
                    .map_err(|_| MainModeError::HashMismatch)?;
                None
            }
            Some(creds) => {
                let sig = sig.ok_or_else(|| missing("SIG"))?;
                Some(verify_peer(
                    creds,
                    id,
                    &certs,
                    (expected.expose(), &sig.data),
                    now,
                )?)
            }
        };
        Ok((id.clone(), peer_cert, next_iv))
    }
}

/// The most CERT payloads taken from a peer (its certificate and intermediates): each may cost
/// an RSA verification.
pub const MAX_PEER_CERTS: usize = 8;

/// SKEYID's input for our method (RFC 2409 section 5): the pre-shared key, or none.
fn phase1_auth<'a>(auth: &Phase1Credentials, psk: &'a [u8]) -> Phase1Auth<'a> {
    match auth {
        Phase1Credentials::PreSharedKey => Phase1Auth::PreSharedKey(psk),
        Phase1Credentials::RsaSignature(_) => Phase1Auth::Signature,
    }
}

/// With RSA signatures, the CERTREQ payloads of messages 3 and 4 (RFC 2409 section 5 allows
/// them there; strongSwan sends one per trusted CA): X.509 signature certificates (encoding 4)
/// from the subject of each trust anchor, or from any CA when none is configured.
fn cert_requests(auth: &Phase1Credentials) -> Vec<Payload> {
    let Phase1Credentials::RsaSignature(creds) = auth else {
        return Vec::new();
    };
    let request = |authority: Vec<u8>| {
        Payload::new(PayloadBody::CertificateRequest(CertificateRequest::new(
            CertEncoding::X509Signature,
            authority,
        )))
    };
    let anchors = creds.trust.certificates();
    if anchors.is_empty() {
        return vec![request(Vec::new())];
    }
    anchors
        .iter()
        .map(|ca| request(ca.subject_der().to_vec()))
        .collect()
}

/// Authenticates the peer of RSA signature Main Mode (RFC 2409 section 5.1) from its ID
/// payload, CERT payloads and SIG over `hash` (the HASH_I or HASH_R we computed): the
/// end-entity certificate is the first whose key verifies the signature (else the first), the
/// others are intermediates; the chain must lead to a trust anchor at `now`, the certificate
/// must name the ID payload's identity and match the configured peer identity, and the
/// signature must verify. CERT payloads of other encodings are ignored.
fn verify_peer(
    creds: &RsaCredentials,
    id: &Identification,
    certs: &[&realm_wire::isakmp::Certificate],
    (hash, sig): (&[u8], &[u8]),
    now: SystemTime,
) -> Result<Certificate, MainModeError> {
    if certs.len() > MAX_PEER_CERTS {
        return Err(MainModeError::Grammar(format!(
            "{} CERT payloads, at most {MAX_PEER_CERTS} are taken",
            certs.len()
        )));
    }
    let mut parsed = certs
        .iter()
        .filter(|c| c.encoding == CertEncoding::X509Signature)
        .map(|c| Certificate::from_der(&c.data))
        .collect::<Result<Vec<_>, _>>()
        .map_err(MainModeError::Auth)?;
    let at = parsed
        .iter()
        .position(|c| c.verify_hash(hash, sig).is_ok())
        .unwrap_or(0);
    if at >= parsed.len() {
        // Realm keeps no peer certificates of its own to fall back on.
        return Err(MainModeError::AuthenticationFailed(
            "the peer sent no X.509 certificate",
        ));
    }
    let leaf = parsed.remove(at);
    creds
        .trust
        .verify_chain(&leaf, &parsed, now)
        .map_err(MainModeError::Auth)?;
    // RFC 4945 3.1: the identity of the ID payload MUST be found in the end-entity
    // certificate (its subject DN, or a subjectAltName).
    if !names(&leaf, id) {
        return Err(MainModeError::AuthenticationFailed(
            "the peer's certificate does not name the identity of its ID payload",
        ));
    }
    if let Some(pattern) = &creds.peer_id
        && !leaf.matches(pattern)
    {
        return Err(MainModeError::AuthenticationFailed(
            "the peer's certificate does not match the configured peer identity",
        ));
    }
    leaf.verify_hash(hash, sig).map_err(MainModeError::Auth)?;
    Ok(leaf)
}

/// True when `cert` carries the identity of the ID payload `id` exactly (no wildcards: the
/// peer's ID is a name, not a pattern): an ID_DER_ASN1_DN equal byte for byte to the subject
/// (what strongSwan and Realm send), or an address, FQDN or user FQDN among the
/// subjectAltNames (names without regard to ASCII case), or a key ID equal to the
/// subjectKeyIdentifier.
fn names(cert: &Certificate, id: &Identification) -> bool {
    let text_san = |name: &[u8], dns: bool| {
        cert.alt_names().iter().any(|san| match san {
            SubjectAltName::Dns(n) if dns => n.as_bytes().eq_ignore_ascii_case(name),
            SubjectAltName::Email(n) if !dns => n.as_bytes().eq_ignore_ascii_case(name),
            _ => false,
        })
    };
    match id.value() {
        Some(IdValue::DerAsn1Dn(dn)) => dn == cert.subject_der(),
        Some(IdValue::Ipv4Addr(a)) => cert
            .alt_names()
            .contains(&SubjectAltName::Ip(std::net::IpAddr::V4(a))),
        Some(IdValue::Ipv6Addr(a)) => cert
            .alt_names()
            .contains(&SubjectAltName::Ip(std::net::IpAddr::V6(a))),
        Some(IdValue::Fqdn(name)) => text_san(name, true),
        Some(IdValue::UserFqdn(name)) => text_san(name, false),
        Some(IdValue::KeyId(key)) => cert.id_match(&Identity::KeyId(key.to_vec())).is_match(),
        _ => false,
    }
}

/// The checks' context in Main Mode; the draft NAT-T payload types are admitted once the
/// draft was negotiated (messages 3 and 4 carry its NAT-D, type 130).
/// The caller's own Vendor ID payloads (DPD, RFC 3706 section 5.1), sent in messages 1 and 2.
pub(crate) fn extra_vendor_ids(config: &MainModeConfig) -> impl Iterator<Item = Payload> + '_ {
    config
        .vendor_ids
        .iter()
        .map(|v| Payload::new(PayloadBody::VendorId(VendorId::new(v.clone()))))
}

fn phase1_context(keyed: bool, nat_version: Option<NatTVersion>) -> Context<'static> {
    let mut ctx = Context::new(
        SaState::Phase1 {
            exchange: ExchangeType::IdentityProtection,
            keyed,
        },
        &EXCHANGES,
    );
    ctx.draft_nat_t = nat_version == Some(NatTVersion::Draft02);
    ctx
}

/// The Vendor ID payloads' contents.
pub(crate) fn vendor_ids(payloads: &[Payload]) -> impl Iterator<Item = &[u8]> + Clone {
    payloads.iter().filter_map(|p| match &p.body {
        PayloadBody::VendorId(v) => Some(v.data.as_slice()),
        _ => None,
    })
}

/// NAT detection from the NAT-D payloads of message 3 or 4 (RFC 3947 section 3.2).
pub(crate) fn detect_nat<C: Crypto>(
    crypto: &C,
    version: Option<NatTVersion>,
    config: &NatTConfig,
    hash: crate::crypto::HashAlgorithm,
    cookies: [Cookie; 2],
    endpoints: Endpoints,
    received: &[&[u8]],
) -> Result<NatDetection, MainModeError> {
    let Some(version) = version else {
        return Ok(NatDetection::default());
    };
    match received.len() {
        // A peer that announced NAT-T but sends no NAT-D cannot detect a NAT either: no
        // encapsulation, unless we force it.
        0 => Ok(NatDetection {
            version: Some(version),
            local_behind_nat: config.force_encap,
            remote_behind_nat: false,
        }),
        // RFC 3947 3.2: the remote end's hash, then at least one local one.
        1 => Err(MainModeError::Grammar(
            "one NAT-D payload: RFC 3947 section 3.2 sends at least two".to_string(),
        )),
        _ => nat_t::detect(
            crypto,
            version,
            hash,
            cookies,
            endpoints,
            config.force_encap,
            received,
        )?
        .ok_or_else(|| MainModeError::Grammar("NAT-D payloads".to_string())),
    }
}

fn accept(verdict: Verdict) -> Result<Message, MainModeError> {
    match verdict {
        Verdict::Accept(m) => Ok(m),
        Verdict::Reject(r) => Err(MainModeError::Rejected(r)),
    }
}

fn check_header(header: &Header, cookies: [Cookie; 2]) -> Result<(), MainModeError> {
    if [header.initiator_cookie, header.responder_cookie] != cookies {
        return Err(MainModeError::WrongCookies);
    }
    if header.exchange_type != ExchangeType::IdentityProtection {
        return Err(MainModeError::Unexpected("not a Main Mode message"));
    }
    Ok(())
}

/// Checks a plaintext Main Mode message (1 to 4) and returns its header and payloads.
fn plaintext(datagram: &[u8], ctx: &Context<'_>) -> Result<(Header, Vec<Payload>), MainModeError> {
    let message = accept(checks::check(datagram, ctx))?;
    if message.header.exchange_type != ExchangeType::IdentityProtection {
        return Err(MainModeError::Unexpected("not a Main Mode message"));
    }
    match message.body {
        Body::Payloads(chain) => Ok((message.header, chain.payloads)),
        Body::Encrypted { .. } => Err(MainModeError::Unexpected(
            "encrypted message before the keys exist",
        )),
    }
}

pub(crate) fn missing(what: &str) -> MainModeError {
    MainModeError::Grammar(format!("no {what} payload"))
}

pub(crate) fn set_once<'a, T>(
    slot: &mut Option<&'a T>,
    value: &'a T,
    what: &str,
) -> Result<(), MainModeError> {
    if slot.replace(value).is_some() {
        return Err(MainModeError::Grammar(format!("{what} payload twice")));
    }
    Ok(())
}

/// The one SA payload of message 1 or 2; Vendor IDs are ignored.
fn sa_payload(payloads: &[Payload]) -> Result<&SecurityAssociation, MainModeError> {
    let mut sa = None;
    for p in payloads {
        match &p.body {
            PayloadBody::SecurityAssociation(s) => set_once(&mut sa, s, "SA")?,
            PayloadBody::VendorId(_) => {}
            other => return Err(MainModeError::UnexpectedPayload(other.payload_type())),
        }
    }
    sa.ok_or_else(|| missing("SA"))
}

/// SAi_b: the body of the SA payload of a checked plaintext message 1, as received.
pub(crate) fn sa_body(datagram: &[u8]) -> Result<Vec<u8>, MainModeError> {
    let packet = Packet::new_checked(datagram).map_err(|_| missing("SA"))?;
    packet
        .payloads(Padding::Forbidden)
        .filter_map(Result::ok)
        .find(|raw| raw.payload_type == PayloadType::SecurityAssociation)
        .map(|raw| raw.body.to_vec())
        .ok_or_else(|| missing("SA"))
}

/// The KE value, nonce and NAT-D hashes (in order) of message 3 or 4.
pub(crate) type KeNonce<'a> = (Vec<u8>, Vec<u8>, Vec<&'a [u8]>);

/// The KE value, nonce and NAT-D hashes (in order) of message 3 or 4. NAT-D payloads are
/// accepted only of the NAT-T version both sides announced, and refused (INVALID-PAYLOAD-TYPE)
/// without one.
pub(crate) fn ke_nonce(
    payloads: &[Payload],
    group: crate::crypto::DhGroup,
    nat_version: Option<NatTVersion>,
) -> Result<KeNonce<'_>, MainModeError> {
    let mut ke = None;
    let mut nonce = None;
    let mut nat_d = Vec::new();
    for p in payloads {
        if let Some(h) = nat_version.and_then(|v| nat_t::nat_d_of(v, &p.body)) {
            nat_d.push(h);
            continue;
        }
        match &p.body {
            PayloadBody::KeyExchange(k) => set_once(&mut ke, k, "KE")?,
            PayloadBody::Nonce(n) => set_once(&mut nonce, n, "Nonce")?,
            // RFC 2409 5: messages 3 and 4 may carry CERTREQ; Realm sends its certificate
            // whatever is asked.
            PayloadBody::VendorId(_) | PayloadBody::CertificateRequest(_) => {}
            other => return Err(MainModeError::UnexpectedPayload(other.payload_type())),
        }
    }
    let ke = ke.ok_or_else(|| missing("KE"))?;
    let nonce = nonce.ok_or_else(|| missing("Nonce"))?;
    check_public_value_len(group, &ke.data)
        .map_err(|e| MainModeError::KeyExchange(CryptoError::Dh(e)))?;
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.data.len()) {
        return Err(MainModeError::NonceLength(nonce.data.len()));
    }
    Ok((ke.data.clone(), nonce.data.clone(), nat_d))
}

pub(crate) fn random_nonce<C: Crypto>(crypto: &C) -> Result<Vec<u8>, MainModeError> {
    let mut nonce = vec![0u8; NONCE_LEN];
    crypto.fill_random(&mut nonce)?;
    Ok(nonce)
}

/// HDR, KE, Nonce [, CERTREQ...] [, NAT-D, NAT-D] (`extra`: the CERTREQ and NAT-D payloads).
fn ke_message(
    [cky_i, cky_r]: [Cookie; 2],
    public_value: &[u8],
    nonce: &[u8],
    extra: Vec<Payload>,
) -> Result<Vec<u8>, MainModeError> {
    let header = Header::new(ExchangeType::IdentityProtection, cky_i, cky_r, 0);
    let mut payloads = vec![
        Payload::new(PayloadBody::KeyExchange(KeyExchange::new(
            public_value.to_vec(),
        ))),
        Payload::new(PayloadBody::Nonce(Nonce::new(nonce.to_vec()))),
    ];
    payloads.extend(extra);
    Ok(Message::new(header, payloads).to_bytes()?)
}
