//! IKEv1 Quick Mode (RFC 2409 section 5.5), both roles, as typed states that consume themselves,
//! under an established [`IsakmpSa`]:
//!
//! ```text
//! Initiator                                         Responder
//! Initiator::start   HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr]  -->  Responder::handle_offer
//! Initiator<K>  <--  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr]       Responder
//!   ::handle_reply   HDR*, HASH(3)  -->                                  ::handle_hash3
//!   -> ChildSaPair                                                       -> ChildSaPair
//! ```
//!
//! Every message is encrypted with the ISAKMP SA's key (RFC 2409 Appendix B): the first IV is
//! `hash(last phase 1 CBC block | M-ID)` ([`Iv::phase2`]), each later message's IV the last
//! ciphertext block of the one before it in this exchange. The initiator picks a random non-zero
//! Message ID. Each receiving step runs [`checks::check`] and [`checks::check_decrypted`] with
//! the ISAKMP SA established and the Message ID unused (message 1) or in progress (2 and 3),
//! then the grammar: HASH first (RFC 2409 5.5), then for messages 1 and 2 one SA, one Nonce
//! (8 to 256 bytes), KE exactly when the chosen proposal has a PFS group, and either no ID or
//! both IDci and IDcr. The hashes, compared in constant time (a mismatch is
//! INVALID-HASH-INFORMATION, RFC 2408 5.12), are
//!
//! ```text
//! HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
//! HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
//! HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
//! ```
//!
//! where `SA | Ni ...` are the payloads after the HASH payload exactly as on the wire (generic
//! headers included, padding excluded).
//!
//! The ESP proposal is chosen by [`select_phase2`] (responder) and confirmed by
//! [`check_phase2_reply`] (initiator). SPIs are the caller's: each side passes the SPI of its
//! inbound SA. The client IDs are the initiator's, given as [`Identification`]s (for example
//! from [`crate::config::TrafficSelector::to_identification`]); `None` omits them, which RFC 2409
//! 5.5 allows between the two IKE hosts themselves. The responder returns the IDs it received
//! unchanged in its answer, as the RFC requires, and hands them to the caller in the
//! [`ChildSaPair`]: **checking them against the responder's configured selectors is the
//! caller's job** (not done here). The initiator checks that the answer's IDs are the ones it
//! sent (INVALID-ID-INFORMATION otherwise).
//!
//! The result on each side is a [`ChildSaPair`]: the proposal, encapsulation, lifetime, IDs,
//! and for each direction the SPI with its keys, from KEYMAT with protocol ESP and that
//! direction's SPI (the inbound SA with our SPI, the outbound one with the peer's, RFC 2409
//! 5.5), and `g(qm)^xy` in the KEYMAT when PFS was negotiated. KEYMAT is split into the
//! encryption key, then for AES-GCM the 4-byte salt (RFC 4106 section 8.1) or for AES-CBC the
//! HMAC integrity key.
//!
//! NAT traversal (RFC 3947 section 5): [`QuickModeConfig::udp`] is the ISAKMP SA's
//! [`NatDetection::udp_encapsulation`](super::nat_t::NatDetection::udp_encapsulation), offered
//! by the initiator and required of the offer by the responder (the draft's values 61443/61444 to
//! a draft peer). In UDP-encapsulated transport mode each side sends NAT-OAi and NAT-OAr after
//! the IDs (its [`QuickModeConfig::original_addresses`]; type 131 with the draft) and records the
//! peer's in [`ChildSaPair::nat_oa`]; in tunnel mode none are sent and received ones are ignored.
//!
//! Not here: the commit bit and CONNECTED notify, RESPONDER-LIFETIME, AH, more than
//! one SA per exchange, retransmission timers (each state keeps [`Initiator::last_sent`] /
//! [`Responder::last_sent`]), and sending Notifies.

use std::net::IpAddr;
use std::num::NonZeroU32;

use aws_lc_rs::constant_time;
use realm_wire::isakmp::{
    Body, ExchangeType, Flags, Hash, Header, Identification, KeyExchange, Message,
    NatOriginalAddress, Nonce, NotifyMessageType, Padding, Payload, PayloadBody, PayloadChain,
    PayloadType, RawPayloads, SecurityAssociation,
};

use super::keys::{EncryptionKey, IpsecProtocol, Iv, KeymatInputs, Phase1Keys};
use super::main_mode::{IsakmpSa, MAX_NONCE_LEN, MIN_NONCE_LEN, NONCE_LEN};
use super::nat_t::{DRAFT_NAT_OA_PAYLOAD_TYPE, NatTVersion};
use crate::crypto::{
    Crypto, CryptoError, DhKeyPair, PrfOutput, SharedSecret, check_public_value_len,
};
use crate::isakmp::checks::{self, Context, MessageIdState, Rejection, SaState, Verdict};
use crate::proposal::{
    BuildError, Encapsulation, EspCipher, EspIntegrity, EspProposal, IpsecMode, NegotiatedLifetime,
    Phase2Choice, Phase2Policy, Preference, Refusal, UdpEncapsulation, check_phase2_reply,
    phase2_sa, select_phase2,
};

secret_bytes!(
    /// An ESP SA's encryption key (AES), without the GCM salt.
    EspEncryptionKey,
    pub(crate)
);
secret_bytes!(
    /// The 4-byte salt of an AES-GCM ESP SA (RFC 4106 section 8.1: the KEYMAT after the key).
    EspSalt,
    pub(crate)
);
secret_bytes!(
    /// An ESP SA's HMAC integrity key (AES-CBC only).
    EspIntegrityKey,
    pub(crate)
);

/// What one side of Quick Mode is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickModeConfig {
    /// ESP proposals, most preferred first (all with the same PFS group, [`phase2_sa`]).
    pub proposals: Vec<EspProposal>,
    /// Tunnel or transport.
    pub mode: IpsecMode,
    /// Whether ESP is UDP-encapsulated, and in which spelling: the ISAKMP SA's
    /// [`NatDetection::udp_encapsulation`](super::nat_t::NatDetection::udp_encapsulation)
    /// (RFC 3947 section 5.1; the draft values to a peer that negotiated the draft). The
    /// initiator offers this; either side accepts only UDP-encapsulated modes when it is not
    /// [`UdpEncapsulation::None`] and only plain ones otherwise.
    pub udp: UdpEncapsulation,
    /// Our own address and the peer's, as this side sees them (the addresses of the IKE
    /// datagrams): sent as NAT-OAi and NAT-OAr in transport mode with UDP encapsulation (RFC
    /// 3947 section 5.2), the initiator's first. `None` sends none.
    pub original_addresses: Option<(IpAddr, IpAddr)>,
    /// The IPsec SA lifetime offered, or accepted at most.
    pub lifetime: NonZeroU32,
    /// Whose order wins when responding.
    pub preference: Preference,
    /// Initiator only: IDci and IDcr, or `None` to omit them. Ignored by the responder.
    pub client_ids: Option<(Identification, Identification)>,
}

impl QuickModeConfig {
    fn policy(&self) -> Phase2Policy<'_> {
        Phase2Policy {
            proposals: &self.proposals,
            mode: self.mode,
            udp: self.udp,
            lifetime: self.lifetime,
            preference: self.preference,
        }
    }

    fn encapsulation(&self) -> Encapsulation {
        Encapsulation::new(self.mode, self.udp)
    }

    /// NAT-OAi and NAT-OAr to send under `encapsulation` (RFC 3947 section 5.2: in transport
    /// mode with UDP encapsulation; not in tunnel mode), from our (local, peer) addresses.
    fn nat_oa(&self, encapsulation: Encapsulation, initiator: bool) -> Vec<Payload> {
        let Some((local, peer)) = self.original_addresses else {
            return Vec::new();
        };
        if encapsulation.mode != IpsecMode::Transport || encapsulation.udp == UdpEncapsulation::None
        {
            return Vec::new();
        }
        let (oa_i, oa_r) = if initiator {
            (local, peer)
        } else {
            (peer, local)
        };
        [oa_i, oa_r]
            .into_iter()
            .map(|ip| nat_oa_payload(encapsulation.udp, ip))
            .collect()
    }
}

/// Why a received Quick Mode message was not accepted, or ours could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuickModeError {
    /// The RFC 2408 5.1-5.3 checks refused it.
    #[error("ISAKMP checks refused the message: {0:?}")]
    Rejected(Rejection),
    /// Cookies or Message ID are not this exchange's.
    #[error("cookies or Message ID do not match the exchange")]
    WrongExchange,
    /// Not a Quick Mode message.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// Quick Mode is always encrypted (RFC 2409 5.5, HDR*).
    #[error("Quick Mode message without the E flag")]
    NotEncrypted,
    /// The SA payload was refused (RFC 2408 5.4-5.6).
    #[error("{0}")]
    Proposal(Box<Refusal>),
    /// A payload is missing, twice, or out of place (RFC 2409 5.5).
    #[error("{0}")]
    Grammar(String),
    /// A payload this message does not accept.
    #[error("payload {0:?} not accepted in this message")]
    UnexpectedPayload(PayloadType),
    /// The peer's nonce is not 8 to 256 bytes (RFC 2409 section 5).
    #[error("nonce of {0} bytes, RFC 2409 section 5 wants 8 to 256")]
    NonceLength(usize),
    /// The chosen proposal has a PFS group but the message has no KE payload (answered
    /// INVALID-KEY-INFORMATION, as a KE that does not fit the group would be).
    #[error("no KE payload although PFS was negotiated")]
    MissingKe,
    /// The peer's KE payload is not a valid public value of the group.
    #[error("invalid key exchange payload: {0}")]
    KeyExchange(CryptoError),
    /// The responder's IDci/IDcr differ from the initiator's (RFC 2409 5.5).
    #[error("the answer's client IDs are not the ones offered")]
    IdMismatch,
    /// The ciphertext is not a non-empty whole number of blocks.
    #[error("ciphertext of {0} bytes is not a whole number of blocks")]
    CiphertextLength(usize),
    /// The decrypted plaintext fails the RFC 2408 5.3 checks (corrupted, or wrong keys).
    #[error("message does not decrypt to payloads: {0:?}")]
    Undecryptable(Box<Rejection>),
    /// HASH(1), HASH(2) or HASH(3) does not verify (RFC 2408 5.12).
    #[error("the peer's hash does not verify")]
    HashMismatch,
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

impl QuickModeError {
    /// The Notify message type this error maps to, or `None` when there is none to send.
    pub fn notify(&self) -> Option<NotifyMessageType> {
        match self {
            Self::Rejected(r) => r.notify_type(),
            Self::WrongExchange => None,
            Self::Unexpected(_) => Some(NotifyMessageType::InvalidExchangeType),
            Self::NotEncrypted => Some(NotifyMessageType::InvalidFlags),
            Self::Proposal(r) => Some(r.notify()),
            Self::Grammar(_)
            | Self::NonceLength(_)
            | Self::CiphertextLength(_)
            | Self::Undecryptable(_) => Some(NotifyMessageType::PayloadMalformed),
            Self::UnexpectedPayload(_) => Some(NotifyMessageType::InvalidPayloadType),
            Self::MissingKe | Self::KeyExchange(_) => {
                Some(NotifyMessageType::InvalidKeyInformation)
            }
            Self::IdMismatch => Some(NotifyMessageType::InvalidIdInformation),
            Self::HashMismatch => Some(NotifyMessageType::InvalidHashInformation),
            Self::Build(_) | Self::Crypto(_) | Self::Emit(_) => None,
        }
    }
}

impl From<CryptoError> for QuickModeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl From<realm_wire::Error> for QuickModeError {
    fn from(e: realm_wire::Error) -> Self {
        Self::Emit(e)
    }
}

/// A received message a state did not accept: the state, unchanged, and why.
pub type Failure<S> = super::Failure<S, QuickModeError>;

/// One direction's ESP SA: its SPI and keys.
#[derive(Debug, Clone)]
pub struct EspSaKeys {
    /// The SPI (chosen by the receiving side of this direction).
    pub spi: u32,
    /// The AES key.
    pub encryption_key: EspEncryptionKey,
    /// AES-GCM: the salt (RFC 4106 section 8.1); `None` for AES-CBC.
    pub salt: Option<EspSalt>,
    /// AES-CBC: the HMAC key; `None` for AES-GCM.
    pub integrity_key: Option<EspIntegrityKey>,
}

/// The pair of ESP SAs Quick Mode negotiated, from one side's point of view.
#[derive(Debug, Clone)]
pub struct ChildSaPair {
    /// The Message ID of the exchange.
    pub message_id: u32,
    /// The chosen proposal (algorithms and PFS group).
    pub proposal: EspProposal,
    /// Mode and UDP encapsulation as negotiated.
    pub encapsulation: Encapsulation,
    /// The SAs' lifetime.
    pub lifetime: NegotiatedLifetime,
    /// IDci and IDcr as exchanged, `None` when omitted (the IKE hosts themselves).
    pub client_ids: Option<(Identification, Identification)>,
    /// The peer's NAT-OAi and NAT-OAr (the initiator's and the responder's original
    /// addresses as the peer sees them, RFC 3947 section 5.2) in transport mode with UDP
    /// encapsulation; `None` when not sent, and in tunnel mode (where they are ignored).
    pub nat_oa: Option<(IpAddr, IpAddr)>,
    /// The SA the peer sends to us on (our SPI).
    pub inbound: EspSaKeys,
    /// The SA we send to the peer on (the peer's SPI).
    pub outbound: EspSaKeys,
}

/// The Quick Mode initiator, awaiting message 2; `K` is the PFS key pair type.
#[derive(Debug)]
pub struct Initiator<K> {
    sa: IsakmpSa,
    config: QuickModeConfig,
    message_id: u32,
    our_spi: u32,
    offered: SecurityAssociation,
    ni: Vec<u8>,
    key_pair: Option<K>,
    iv: Iv,
    last_sent: Vec<u8>,
}

/// The Quick Mode responder, awaiting message 3 (HASH(3)).
#[derive(Debug)]
pub struct Responder {
    sa: IsakmpSa,
    message_id: u32,
    ni: Vec<u8>,
    nr: Vec<u8>,
    iv: Iv,
    last_sent: Vec<u8>,
    pair: ChildSaPair,
}

impl<K: DhKeyPair> Initiator<K> {
    /// Begins Quick Mode under `sa`: a random non-zero Message ID, a nonce, a KE payload in the
    /// proposals' PFS group if they have one, and message 1 offering `config.proposals` with
    /// `our_spi` (our inbound SPI).
    pub fn start<C: Crypto<KeyPair = K>>(
        crypto: &C,
        sa: &IsakmpSa,
        config: QuickModeConfig,
        our_spi: u32,
    ) -> Result<(Self, Vec<u8>), QuickModeError> {
        let message_id = random_message_id(crypto)?;
        let offered = phase2_sa(
            &config.proposals,
            our_spi.to_be_bytes(),
            config.encapsulation(),
            config.lifetime,
        )
        .map_err(QuickModeError::Build)?;
        let ni = random_nonce(crypto)?;
        let key_pair = match config.proposals.first().and_then(|p| p.pfs) {
            Some(group) => Some(crypto.generate_key_pair(group)?),
            None => None,
        };
        let mut rest = vec![
            Payload::new(PayloadBody::SecurityAssociation(offered.clone())),
            Payload::new(PayloadBody::Nonce(Nonce::new(ni.clone()))),
        ];
        if let Some(kp) = &key_pair {
            rest.push(Payload::new(PayloadBody::KeyExchange(KeyExchange::new(
                kp.public_value().to_vec(),
            ))));
        }
        push_ids(&mut rest, config.client_ids.as_ref());
        rest.extend(config.nat_oa(config.encapsulation(), true));
        let rest_bytes = PayloadChain::new(rest.clone()).to_bytes()?;
        let mid = message_id.to_be_bytes();
        let hash1 = prf_a(crypto, &sa.keys, &[&mid, &rest_bytes])?;
        let iv = Iv::phase2(
            crypto,
            sa.choice.proposal.hash,
            sa.choice.proposal.cipher,
            &sa.last_phase1_block,
            message_id,
        )?;
        let (bytes, iv) = encrypt_message(
            crypto,
            sa,
            ExchangeType::QuickMode,
            message_id,
            &iv,
            hash1,
            rest,
        )?;
        Ok((
            Initiator {
                sa: sa.clone(),
                config,
                message_id,
                our_spi,
                offered,
                ni,
                key_pair,
                iv,
                last_sent: bytes.clone(),
            },
            bytes,
        ))
    }

    /// The last message sent, for retransmission.
    pub fn last_sent(&self) -> &[u8] {
        &self.last_sent
    }

    /// The exchange's Message ID.
    pub fn message_id(&self) -> u32 {
        self.message_id
    }

    /// Our inbound SPI, as offered.
    pub fn our_spi(&self) -> u32 {
        self.our_spi
    }

    /// Takes message 2: verifies HASH(2), checks the chosen proposal against the offer, the
    /// KE and IDs, derives both SAs' keys and returns them with message 3 (HASH(3)).
    pub fn handle_reply<C: Crypto<KeyPair = K>>(
        self,
        crypto: &C,
        datagram: &[u8],
    ) -> Result<(ChildSaPair, Vec<u8>), Box<Failure<Self>>> {
        let step = (|| {
            let mid = self.message_id.to_be_bytes();
            let received = receive(
                crypto,
                &self.sa,
                ExchangeType::QuickMode,
                datagram,
                self.message_id,
                MessageIdState::InProgress(ExchangeType::QuickMode),
                &self.iv,
            )?;
            let expected = prf_a(crypto, &self.sa.keys, &[&mid, &self.ni, &received.hashed])?;
            verify(&expected, &received.hash)?;
            let p = phase2_payloads(&received.payloads, self.sa.nat.version)?;
            let choice = check_phase2_reply(&self.offered, p.sa, &self.config.policy())
                .map_err(|r| QuickModeError::Proposal(Box::new(r)))?;
            let ids = p.ids.map(|(i, r)| (i.clone(), r.clone()));
            if ids != self.config.client_ids {
                return Err(QuickModeError::IdMismatch);
            }
            let g_qm = match (&self.key_pair, choice.proposal.pfs) {
                (Some(kp), Some(group)) => {
                    let ke = p.ke.ok_or(QuickModeError::MissingKe)?;
                    check_public_value_len(group, ke)
                        .map_err(|e| QuickModeError::KeyExchange(CryptoError::Dh(e)))?;
                    Some(crypto.agree(kp, ke).map_err(QuickModeError::KeyExchange)?)
                }
                (None, None) if p.ke.is_none() => None,
                _ => return Err(QuickModeError::UnexpectedPayload(PayloadType::KeyExchange)),
            };
            let nr = p.nonce.to_vec();
            let pair = derive_pair(
                crypto,
                &self.sa.keys,
                &choice,
                self.message_id,
                self.our_spi,
                [&self.ni, &nr],
                g_qm.as_ref(),
                ids,
                p.nat_oa,
            )?;
            let hash3 = prf_a(crypto, &self.sa.keys, &[&[0], &mid, &self.ni, &nr])?;
            let (bytes, _) = encrypt_message(
                crypto,
                &self.sa,
                ExchangeType::QuickMode,
                self.message_id,
                &received.next_iv,
                hash3,
                vec![],
            )?;
            Ok((pair, bytes))
        })();
        match step {
            Ok(done) => Ok(done),
            Err(error) => Err(Box::new(Failure { state: self, error })),
        }
    }
}

impl Responder {
    /// Takes message 1 of a new Quick Mode under `sa` (its Message ID unused): verifies
    /// HASH(1), chooses an ESP proposal, answers with `our_spi` (our inbound SPI), a nonce, KE
    /// when the choice has a PFS group, and the received IDs.
    pub fn handle_offer<C: Crypto>(
        crypto: &C,
        sa: &IsakmpSa,
        config: &QuickModeConfig,
        our_spi: u32,
        datagram: &[u8],
    ) -> Result<(Self, Vec<u8>), QuickModeError> {
        let message_id = checks_message_id(datagram)?;
        let iv = Iv::phase2(
            crypto,
            sa.choice.proposal.hash,
            sa.choice.proposal.cipher,
            &sa.last_phase1_block,
            message_id,
        )?;
        let received = receive(
            crypto,
            sa,
            ExchangeType::QuickMode,
            datagram,
            message_id,
            MessageIdState::Unused,
            &iv,
        )?;
        let mid = message_id.to_be_bytes();
        let expected = prf_a(crypto, &sa.keys, &[&mid, &received.hashed])?;
        verify(&expected, &received.hash)?;
        let p = phase2_payloads(&received.payloads, sa.nat.version)?;
        let choice = select_phase2(p.sa, &config.policy())
            .map_err(|r| QuickModeError::Proposal(Box::new(r)))?;
        let ni = p.nonce.to_vec();
        let nr = random_nonce(crypto)?;
        let mut rest = vec![
            Payload::new(PayloadBody::SecurityAssociation(
                choice.reply(our_spi.to_be_bytes()),
            )),
            Payload::new(PayloadBody::Nonce(Nonce::new(nr.clone()))),
        ];
        let g_qm = match (choice.proposal.pfs, p.ke) {
            (Some(group), Some(ke)) => {
                check_public_value_len(group, ke)
                    .map_err(|e| QuickModeError::KeyExchange(CryptoError::Dh(e)))?;
                let kp = crypto.generate_key_pair(group)?;
                let g = crypto.agree(&kp, ke).map_err(QuickModeError::KeyExchange)?;
                rest.push(Payload::new(PayloadBody::KeyExchange(KeyExchange::new(
                    kp.public_value().to_vec(),
                ))));
                Some(g)
            }
            (Some(_), None) => return Err(QuickModeError::MissingKe),
            (None, Some(_)) => {
                return Err(QuickModeError::UnexpectedPayload(PayloadType::KeyExchange));
            }
            (None, None) => None,
        };
        let ids = p.ids.map(|(i, r)| (i.clone(), r.clone()));
        push_ids(&mut rest, ids.as_ref());
        rest.extend(config.nat_oa(choice.encapsulation, false));
        let rest_bytes = PayloadChain::new(rest.clone()).to_bytes()?;
        let hash2 = prf_a(crypto, &sa.keys, &[&mid, &ni, &rest_bytes])?;
        let (bytes, next_iv) = encrypt_message(
            crypto,
            sa,
            ExchangeType::QuickMode,
            message_id,
            &received.next_iv,
            hash2,
            rest,
        )?;
        let pair = derive_pair(
            crypto,
            &sa.keys,
            &choice,
            message_id,
            our_spi,
            [&ni, &nr],
            g_qm.as_ref(),
            ids,
            p.nat_oa,
        )?;
        Ok((
            Responder {
                sa: sa.clone(),
                message_id,
                ni,
                nr,
                iv: next_iv,
                last_sent: bytes.clone(),
                pair,
            },
            bytes,
        ))
    }

    /// The last message sent, for retransmission.
    pub fn last_sent(&self) -> &[u8] {
        &self.last_sent
    }

    /// The exchange's Message ID.
    pub fn message_id(&self) -> u32 {
        self.message_id
    }

    /// Our inbound SPI, as answered.
    pub fn our_spi(&self) -> u32 {
        self.pair.inbound.spi
    }

    /// IDci and IDcr as the initiator sent them (and we echoed), `None` when omitted: the
    /// engine checks them against the child's selectors before HASH(3) commits the SAs.
    pub fn client_ids(&self) -> Option<(&Identification, &Identification)> {
        self.pair.client_ids.as_ref().map(|(i, r)| (i, r))
    }

    /// Takes message 3 (HASH(3)): once it verifies, the SAs may be used (RFC 2409 5.5).
    pub fn handle_hash3<C: Crypto>(
        self,
        crypto: &C,
        datagram: &[u8],
    ) -> Result<ChildSaPair, Box<Failure<Self>>> {
        let step = (|| {
            let received = receive(
                crypto,
                &self.sa,
                ExchangeType::QuickMode,
                datagram,
                self.message_id,
                MessageIdState::InProgress(ExchangeType::QuickMode),
                &self.iv,
            )?;
            if let Some(p) = received.payloads.first() {
                return Err(QuickModeError::UnexpectedPayload(p.body.payload_type()));
            }
            let mid = self.message_id.to_be_bytes();
            let expected = prf_a(crypto, &self.sa.keys, &[&[0], &mid, &self.ni, &self.nr])?;
            verify(&expected, &received.hash)
        })();
        match step {
            Ok(()) => Ok(self.pair),
            Err(error) => Err(Box::new(Failure { state: self, error })),
        }
    }
}

/// A decrypted Quick Mode (or Informational) message: its HASH, the payloads after it, and
/// those as on the wire.
pub(crate) struct Received {
    pub(crate) hash: Vec<u8>,
    pub(crate) payloads: Vec<Payload>,
    pub(crate) hashed: Vec<u8>,
    pub(crate) next_iv: Iv,
}

struct Phase2Payloads<'a> {
    sa: &'a SecurityAssociation,
    nonce: &'a [u8],
    ke: Option<&'a [u8]>,
    ids: Option<(&'a Identification, &'a Identification)>,
    nat_oa: Option<(IpAddr, IpAddr)>,
}

pub(crate) fn random_message_id<C: Crypto>(crypto: &C) -> Result<u32, QuickModeError> {
    // RFC 2408 3.1: random, and zero is reserved for phase 1; two tries as for the cookie.
    for _ in 0..2 {
        let mut b = [0u8; 4];
        crypto.fill_random(&mut b)?;
        let id = u32::from_be_bytes(b);
        if id != 0 {
            return Ok(id);
        }
    }
    Err(QuickModeError::Crypto(CryptoError::Random))
}

fn random_nonce<C: Crypto>(crypto: &C) -> Result<Vec<u8>, QuickModeError> {
    let mut nonce = vec![0u8; NONCE_LEN];
    crypto.fill_random(&mut nonce)?;
    Ok(nonce)
}

pub(crate) fn prf_a<C: Crypto>(
    crypto: &C,
    keys: &Phase1Keys,
    data: &[&[u8]],
) -> Result<PrfOutput, QuickModeError> {
    Ok(crypto.prf(keys.prf(), keys.skeyid_a().expose(), data)?)
}

pub(crate) fn verify(expected: &PrfOutput, received: &[u8]) -> Result<(), QuickModeError> {
    constant_time::verify_slices_are_equal(expected.expose(), received)
        .map_err(|_| QuickModeError::HashMismatch)
}

fn push_ids(rest: &mut Vec<Payload>, ids: Option<&(Identification, Identification)>) {
    if let Some((ci, cr)) = ids {
        rest.push(Payload::new(PayloadBody::Identification(ci.clone())));
        rest.push(Payload::new(PayloadBody::Identification(cr.clone())));
    }
}

/// HDR*, HASH, `rest` in an `exchange` (Quick Mode or Informational) message, encrypted with
/// `iv`; returns the bytes and the next IV.
pub(crate) fn encrypt_message<C: Crypto>(
    crypto: &C,
    sa: &IsakmpSa,
    exchange: ExchangeType,
    message_id: u32,
    iv: &Iv,
    hash: PrfOutput,
    rest: Vec<Payload>,
) -> Result<(Vec<u8>, Iv), QuickModeError> {
    let mut payloads = vec![Payload::new(PayloadBody::Hash(Hash::new(
        hash.expose().to_vec(),
    )))];
    payloads.extend(rest);
    let mut data = PayloadChain::new(payloads).to_bytes()?;
    let key: &EncryptionKey = &sa.encryption_key;
    let block = key.cipher().block_len();
    // RFC 2409 Appendix B: zero-padded to the block size, as in Main Mode.
    let padded = data.len().div_ceil(block) * block;
    data.resize(padded, 0);
    key.encrypt(crypto, iv, &mut data)?;
    let next = Iv::last_block_of(&data).ok_or(QuickModeError::Crypto(CryptoError::Provider))?;
    let mut header = Header::new(
        exchange,
        sa.initiator_cookie,
        sa.responder_cookie,
        message_id,
    );
    header.flags = Flags::empty().with(Flags::ENCRYPTION, true);
    Ok((
        Message::encrypted(header, PayloadType::Hash, data).to_bytes()?,
        next,
    ))
}

/// The Message ID of a datagram whose header is long enough; the checks run later.
pub(crate) fn checks_message_id(datagram: &[u8]) -> Result<u32, QuickModeError> {
    datagram
        .get(20..24)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(QuickModeError::Unexpected("shorter than an ISAKMP header"))
}

/// Checks, decrypts and splits an `exchange` (Quick Mode or Informational) message: HASH first,
/// the rest as on the wire.
pub(crate) fn receive<C: Crypto>(
    crypto: &C,
    sa: &IsakmpSa,
    exchange: ExchangeType,
    datagram: &[u8],
    message_id: u32,
    state: MessageIdState,
    iv: &Iv,
) -> Result<Received, QuickModeError> {
    let mut ctx = Context::new(SaState::Established, std::slice::from_ref(&exchange));
    ctx.message_id = state;
    // The draft's NAT-OA is payload type 131 (draft-ietf-ipsec-nat-t-ike-02/03).
    ctx.draft_nat_t = sa.nat.version == Some(NatTVersion::Draft02);
    let message = match checks::check(datagram, &ctx) {
        Verdict::Accept(m) => m,
        Verdict::Reject(r) => return Err(QuickModeError::Rejected(r)),
    };
    let h = &message.header;
    if [h.initiator_cookie, h.responder_cookie] != [sa.initiator_cookie, sa.responder_cookie]
        || h.message_id != message_id
    {
        return Err(QuickModeError::WrongExchange);
    }
    if h.exchange_type != exchange {
        return Err(QuickModeError::Unexpected("not the exchange type expected"));
    }
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &message.body
    else {
        return Err(QuickModeError::NotEncrypted);
    };
    let block = sa.encryption_key.cipher().block_len();
    if ciphertext.is_empty() || ciphertext.len() % block != 0 {
        return Err(QuickModeError::CiphertextLength(ciphertext.len()));
    }
    let next_iv =
        Iv::last_block_of(ciphertext).ok_or(QuickModeError::CiphertextLength(ciphertext.len()))?;
    let mut plaintext = ciphertext.clone();
    sa.encryption_key.decrypt(crypto, iv, &mut plaintext)?;
    let decrypted =
        match checks::check_decrypted(h, *next_payload, &plaintext, Padding::Zeros, &ctx) {
            Verdict::Accept(m) => m,
            Verdict::Reject(r) => return Err(QuickModeError::Undecryptable(Box::new(r))),
        };
    let Body::Payloads(chain) = decrypted.body else {
        return Err(QuickModeError::Unexpected(
            "decrypted message without payloads",
        ));
    };
    let mut payloads = chain.payloads.into_iter();
    let hash = match payloads.next().map(|p| p.body) {
        Some(PayloadBody::Hash(h)) => h.data,
        _ => {
            return Err(QuickModeError::Grammar(
                "HASH must be the first payload (RFC 2409 section 5.5)".to_string(),
            ));
        }
    };
    let raws: Vec<_> = RawPayloads::new(*next_payload, &plaintext, Padding::Zeros)
        .collect::<Result<_, _>>()
        .map_err(|_| QuickModeError::Grammar("payload chain".to_string()))?;
    let hashed = match (raws.get(1), raws.last()) {
        (Some(first), Some(last)) => plaintext
            .get(first.offset..last.offset + 4 + last.body.len())
            .ok_or_else(|| QuickModeError::Grammar("payload chain".to_string()))?
            .to_vec(),
        _ => Vec::new(),
    };
    Ok(Received {
        hash,
        payloads: payloads.collect(),
        hashed,
        next_iv,
    })
}

/// SA, Nonce, optional KE, no or two IDs, and with NAT-T no or two NAT-OA (of the ISAKMP SA's
/// NAT-T version), in messages 1 and 2.
fn phase2_payloads(
    payloads: &[Payload],
    nat_version: Option<NatTVersion>,
) -> Result<Phase2Payloads<'_>, QuickModeError> {
    let mut sa = None;
    let mut nonce = None;
    let mut ke = None;
    let mut ids = Vec::new();
    let mut nat_oa = Vec::new();
    for p in payloads {
        if let Some(ip) = nat_version.and_then(|v| nat_oa_of(v, &p.body)) {
            nat_oa.push(ip?);
            continue;
        }
        match &p.body {
            PayloadBody::SecurityAssociation(s) => set_once(&mut sa, s, "SA")?,
            PayloadBody::Nonce(n) => set_once(&mut nonce, n, "Nonce")?,
            PayloadBody::KeyExchange(k) => set_once(&mut ke, k, "KE")?,
            PayloadBody::Identification(i) => ids.push(i),
            other => return Err(QuickModeError::UnexpectedPayload(other.payload_type())),
        }
    }
    let sa = sa.ok_or_else(|| missing("SA"))?;
    let nonce = nonce.ok_or_else(|| missing("Nonce"))?;
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.data.len()) {
        return Err(QuickModeError::NonceLength(nonce.data.len()));
    }
    let ids = match ids.as_slice() {
        [] => None,
        [ci, cr] => Some((*ci, *cr)),
        _ => {
            return Err(QuickModeError::Grammar(format!(
                "{} ID payloads: Quick Mode carries none or IDci and IDcr",
                ids.len()
            )));
        }
    };
    let nat_oa = match nat_oa.as_slice() {
        [] => None,
        [i, r] => Some((*i, *r)),
        _ => {
            return Err(QuickModeError::Grammar(format!(
                "{} NAT-OA payloads: RFC 3947 section 5.2 sends NAT-OAi and NAT-OAr",
                nat_oa.len()
            )));
        }
    };
    Ok(Phase2Payloads {
        sa,
        nonce: &nonce.data,
        ke: ke.map(|k| k.data.as_slice()),
        ids,
        nat_oa,
    })
}

/// A NAT-OA payload for `ip`: type 21, or the drafts' 131 with [`UdpEncapsulation::Draft`].
fn nat_oa_payload(udp: UdpEncapsulation, ip: IpAddr) -> Payload {
    let oa = NatOriginalAddress::new(ip);
    match udp {
        UdpEncapsulation::Draft => {
            // The same body (RFC 3947 5.2: ID type, three reserved octets, the address).
            let mut data = vec![u8::from(oa.id_type)];
            data.extend_from_slice(&oa.reserved);
            data.extend_from_slice(&oa.address);
            Payload::new(PayloadBody::Raw {
                payload_type: PayloadType::Unknown(DRAFT_NAT_OA_PAYLOAD_TYPE),
                data,
            })
        }
        UdpEncapsulation::None | UdpEncapsulation::Rfc3947 => {
            Payload::new(PayloadBody::NatOriginalAddress(oa))
        }
    }
}

/// The address a payload carries when it is a NAT-OA of `version`; an error when its ID type
/// and length do not make an IPv4 or IPv6 address.
fn nat_oa_of(version: NatTVersion, body: &PayloadBody) -> Option<Result<IpAddr, QuickModeError>> {
    let malformed = || QuickModeError::Grammar("NAT-OA without an IPv4 or IPv6 address".into());
    match (version, body) {
        (NatTVersion::Rfc3947, PayloadBody::NatOriginalAddress(oa)) => {
            Some(oa.ip().ok_or_else(malformed))
        }
        (
            NatTVersion::Draft02,
            PayloadBody::Raw {
                payload_type: PayloadType::Unknown(DRAFT_NAT_OA_PAYLOAD_TYPE),
                data,
            },
        ) => Some(match data.as_slice() {
            [id_type, r0, r1, r2, address @ ..] => NatOriginalAddress {
                id_type: (*id_type).into(),
                reserved: [*r0, *r1, *r2],
                address: address.to_vec(),
            }
            .ip()
            .ok_or_else(malformed),
            _ => Err(malformed()),
        }),
        _ => None,
    }
}

fn missing(what: &str) -> QuickModeError {
    QuickModeError::Grammar(format!("no {what} payload"))
}

fn set_once<'a, T>(
    slot: &mut Option<&'a T>,
    value: &'a T,
    what: &str,
) -> Result<(), QuickModeError> {
    if slot.replace(value).is_some() {
        return Err(QuickModeError::Grammar(format!("{what} payload twice")));
    }
    Ok(())
}

/// Encryption key length (with the GCM salt) and integrity key length for an ESP cipher.
pub fn esp_key_lengths(cipher: EspCipher) -> (usize, usize) {
    let key = usize::from(cipher.key_size().bits() / 8);
    match cipher {
        EspCipher::AesGcm16(_) => (key + 4, 0),
        EspCipher::AesCbc(_, integrity) => (
            key,
            match integrity {
                EspIntegrity::HmacSha1_96 => 20,
                EspIntegrity::HmacSha256_128 => 32,
                EspIntegrity::HmacSha384_192 => 48,
            },
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn derive_pair<C: Crypto>(
    crypto: &C,
    keys: &Phase1Keys,
    choice: &Phase2Choice,
    message_id: u32,
    our_spi: u32,
    [ni, nr]: [&[u8]; 2],
    pfs: Option<&SharedSecret>,
    client_ids: Option<(Identification, Identification)>,
    nat_oa: Option<(IpAddr, IpAddr)>,
) -> Result<ChildSaPair, QuickModeError> {
    let peer_spi = u32::from_be_bytes(choice.peer_spi);
    let one = |spi: u32| -> Result<EspSaKeys, QuickModeError> {
        let cipher = choice.proposal.cipher;
        let (enc_len, int_len) = esp_key_lengths(cipher);
        let keymat = keys.keymat(
            crypto,
            &KeymatInputs {
                protocol: IpsecProtocol::Esp,
                spi,
                ni_b: ni,
                nr_b: nr,
                pfs,
            },
            enc_len + int_len,
        )?;
        let (enc, rest) = keymat
            .split_at(enc_len)
            .ok_or(QuickModeError::Crypto(CryptoError::Provider))?;
        Ok(match cipher {
            EspCipher::AesGcm16(_) => {
                let key_len = enc_len - 4;
                let (key, salt) = enc
                    .split_at_checked(key_len)
                    .ok_or(QuickModeError::Crypto(CryptoError::Provider))?;
                EspSaKeys {
                    spi,
                    encryption_key: EspEncryptionKey::from_bytes(key.to_vec()),
                    salt: Some(EspSalt::from_bytes(salt.to_vec())),
                    integrity_key: None,
                }
            }
            EspCipher::AesCbc(..) => EspSaKeys {
                spi,
                encryption_key: EspEncryptionKey::from_bytes(enc.to_vec()),
                salt: None,
                integrity_key: Some(EspIntegrityKey::from_bytes(rest.to_vec())),
            },
        })
    };
    Ok(ChildSaPair {
        message_id,
        proposal: choice.proposal,
        encapsulation: choice.encapsulation,
        lifetime: choice.lifetime,
        client_ids,
        // RFC 3947 5.2: NAT-OA is for transport mode; in tunnel mode it is ignored.
        nat_oa: nat_oa.filter(|_| {
            choice.encapsulation.mode == IpsecMode::Transport
                && choice.encapsulation.udp != UdpEncapsulation::None
        }),
        inbound: one(our_spi)?,
        outbound: one(peer_spi)?,
    })
}
