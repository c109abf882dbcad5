//! IKEv1 Aggressive Mode with pre-shared keys (RFC 2409 sections 5 and 5.4; RFC 2408 section
//! 4.7, the Aggressive exchange), both roles, as typed states that consume themselves, driven
//! like [`main_mode`](super::main_mode):
//!
//! ```text
//! Initiator                                        Responder
//! Initiator::start   HDR, SA, KE, Ni, IDii  -->    Responder::handle_first
//! Initiator<AggrSentFirst<K>>
//!               <--  HDR, SA, KE, Nr, IDir, HASH_R [, NAT-D, NAT-D]
//!   ::handle_second                                Responder<AggrReplied>
//!   -> IsakmpSa      HDR*, HASH_I [, NAT-D, NAT-D]  -->  ::handle_third -> IsakmpSa
//! ```
//!
//! Three messages instead of six, at the price of identity protection: both identities travel
//! in plaintext, and the responder answers (and commits to a pre-shared key) before the
//! initiator has proven anything. Message 2's HASH_R, with the nonces and public values beside
//! it, lets whoever sends a message 1 test guesses of the pre-shared key offline: Aggressive
//! Mode needs long random keys.
//!
//! - **Group.** The initiator's KE goes with its offer, so the Diffie-Hellman group cannot be
//!   negotiated (RFC 2409 section 5): [`Initiator::start`] refuses proposals of different
//!   groups ([`BuildError::MixedPhase1Groups`]), and a responder whose choice is in another
//!   group than the initiator's KE refuses it (INVALID-KEY-INFORMATION, as a KE of the wrong
//!   length; normally NO-PROPOSAL-CHOSEN comes first, since the offer names only that group).
//! - **Pre-shared key.** The responder must compute HASH_R, so it needs the key before
//!   answering message 1; it chooses it by the initiator's identity IDii, which is the point of
//!   Aggressive Mode with pre-shared keys (the address may not identify a roaming peer).
//!   [`Responder::handle_first`] takes a lookup closure `FnOnce(&Identification) ->
//!   Option<Vec<u8>>`; `None` refuses the message ([`FirstMessageError::UnknownPeer`],
//!   INVALID-ID-INFORMATION). SKEYID = prf(pre-shared-key, Ni_b | Nr_b); HASH_I and HASH_R
//!   are Main Mode's (RFC 2409 section 5), with SAi_b and IDii_b/IDir_b the payload bodies as
//!   they were on the wire; the peer's hash is compared in constant time (a mismatch is
//!   INVALID-HASH-INFORMATION, RFC 2408 section 5.12). A wrong key shows as a HASH_R mismatch
//!   at the initiator (message 2 is plaintext) and as an undecryptable or mismatching message 3
//!   at the responder.
//! - **Message 3 and the IVs** (RFC 2409 Appendix B). The first phase 1 IV is
//!   hash(g^xi | g^xr). Realm sends message 3 encrypted with it, as strongSwan does (RFC 2409
//!   section 5 allows either); the receiver accepts it encrypted or not. The last CBC block of
//!   phase 1, from which every Quick Mode and Informational IV is derived
//!   ([`IsakmpSa::last_phase1_block`]), is message 3's last ciphertext block when it was
//!   encrypted, and the first IV itself when it was not.
//! - **NAT traversal** (RFC 3947 sections 3.1, 3.2 and 4). The NAT-T Vendor IDs are in
//!   messages 1 and 2 (the initiator offers all, the responder answers the best), the NAT-D
//!   payloads in messages 2 and 3. The initiator detects the NAT from message 2 and, when one
//!   is found ([`NatDetection::encapsulate`] in the returned [`IsakmpSa::nat`]), sends message 3
//!   and everything after from and to the NAT-T port; message 3's NAT-D hashes are those of the
//!   floated addresses (RFC 3947 section 3.2: of the datagram's own addresses, as strongSwan
//!   computes them), so [`Initiator::handle_second`] takes the NAT-T port. The responder detects
//!   the NAT from message 3, so [`Responder::handle_third`] takes the addresses message 3 came
//!   between. [`MainModeConfig::vendor_ids`] (DPD's) go in messages 1 and 2. Other Vendor IDs
//!   and Notifications (INITIAL-CONTACT) are ignored.
//!
//! Every received message runs [`checks::check`] with the Aggressive exchange's [`Context`]
//! (and, decrypted, [`checks::check_decrypted`]); a refused message comes back as a
//! [`Failure`] holding the unchanged state and a [`MainModeError`] naming the Notify it maps
//! to. Nothing here panics on input, reads a clock or sends.
//!
//! ```
//! use std::num::NonZeroU32;
//! use realm_ike::ikev1::aggressive_mode::{Initiator, Responder};
//! use realm_ike::ikev1::main_mode::MainModeConfig;
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
//!     auth: realm_ike::ikev1::main_mode::Phase1Credentials::PreSharedKey,
//!     nat_t: NatTConfig::default(),
//!     vendor_ids: Vec::new(),
//! };
//! let (left, right) = ("192.0.2.1:500".parse()?, "198.51.100.2:500".parse()?);
//! let (i, m1) = Initiator::start(
//!     &crypto,
//!     config(Identification::fqdn("left")),
//!     Endpoints { local: left, remote: right },
//! )?;
//! let to_right = Endpoints { local: right, remote: left };
//! let (r, m2) = Responder::handle_first(
//!     config(Identification::fqdn("right")),
//!     [7; 8],
//!     to_right,
//!     &crypto,
//!     &m1,
//!     |id| (*id == Identification::fqdn("left")).then(|| b"shared secret".to_vec()),
//! )?;
//! let (initiator_sa, m3) = i
//!     .handle_second(&crypto, &m2, b"shared secret", 4500)
//!     .map_err(|f| f.error)?;
//! let responder_sa = r.handle_third(&crypto, &m3, to_right).map_err(|f| f.error)?;
//! assert_eq!(initiator_sa.peer_id, Identification::fqdn("right"));
//! assert_eq!(responder_sa.peer_id, Identification::fqdn("left"));
//! assert_eq!(initiator_sa.keys.skeyid_d().expose(), responder_sa.keys.skeyid_d().expose());
//! assert_eq!(initiator_sa.last_phase1_block, responder_sa.last_phase1_block);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Not here: retransmission timers (each state keeps [`Initiator::last_sent`] /
//! [`Responder::last_sent`]; the initiator's caller keeps message 3 to answer a retransmitted
//! message 2), moving ports (the caller's), signature authentication, and sending Notifies.

use std::net::SocketAddr;

use aws_lc_rs::constant_time;
use realm_wire::isakmp::{
    Body, Cookie, ExchangeType, Header, Identification, KeyExchange, Message, Nonce,
    NotifyMessageType, Packet, Padding, Payload, PayloadBody, PayloadType, SecurityAssociation,
};

use super::keys::{Iv, Phase1Auth};
use super::main_mode::{
    Failure, IsakmpSa, Keyed, MainModeConfig, MainModeError, detect_nat, extra_vendor_ids,
    ke_nonce, missing, random_nonce, sa_body, set_once, vendor_ids,
};
use super::nat_t::{self, Endpoints, NatDetection, NatTVersion};
use super::quick_mode::{self, QuickModeError};
use crate::crypto::{Crypto, CryptoError, DhKeyPair};
use crate::isakmp::checks::{self, Context, SaState, Verdict};
use crate::proposal::{
    AuthMethod, BuildError, Phase1Choice, check_phase1_reply, phase1_sa, select_phase1,
};

static EXCHANGES: [ExchangeType; 1] = [ExchangeType::Aggressive];

/// Why message 1 was not answered: the responder has no state yet, so the error comes alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirstMessageError {
    /// The message was refused as [`MainModeError`] says.
    #[error("{0}")]
    Refused(MainModeError),
    /// No pre-shared key for the initiator's identity IDii (the lookup returned `None`).
    /// Answered INVALID-ID-INFORMATION (RFC 2408 section 3.14.1), as strongSwan answers an
    /// Aggressive Mode identity it has no configuration for.
    #[error("no pre-shared key for the initiator's identity {0:?}")]
    UnknownPeer(Identification),
}

impl FirstMessageError {
    /// The Notify message type this error maps to, `None` when there is none to send.
    pub fn notify(&self) -> Option<NotifyMessageType> {
        match self {
            Self::Refused(e) => e.notify(),
            Self::UnknownPeer(_) => Some(NotifyMessageType::InvalidIdInformation),
        }
    }
}

impl From<MainModeError> for FirstMessageError {
    fn from(e: MainModeError) -> Self {
        Self::Refused(e)
    }
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

/// The responder; `S` is the step it is at.
#[derive(Debug)]
pub struct Responder<S> {
    config: MainModeConfig,
    cky_i: Cookie,
    cky_r: Cookie,
    last_sent: Vec<u8>,
    state: S,
}

/// Initiator step: message 1 (SA, KE, Ni, IDii) sent, awaiting message 2.
#[derive(Debug)]
pub struct AggrSentFirst<K> {
    offered: SecurityAssociation,
    sa_i_b: Vec<u8>,
    id_i_b: Vec<u8>,
    key_pair: K,
    ni: Vec<u8>,
}

/// Responder step: message 2 (SA, KE, Nr, IDir, HASH_R) sent, awaiting message 3.
#[derive(Debug)]
pub struct AggrReplied {
    sa_i_b: Vec<u8>,
    id_i_b: Vec<u8>,
    peer_id: Identification,
    choice: Phase1Choice,
    keyed: Keyed,
    nat_version: Option<NatTVersion>,
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
}

impl<S> Responder<S> {
    /// The last message sent (message 2), for retransmission.
    pub fn last_sent(&self) -> &[u8] {
        &self.last_sent
    }

    /// The cookie pair (CKY-I, CKY-R).
    pub fn cookies(&self) -> (Cookie, Cookie) {
        (self.cky_i, self.cky_r)
    }
}

impl<K: DhKeyPair> Initiator<AggrSentFirst<K>> {
    /// Begins Aggressive Mode: a random non-zero CKY-I and message 1 (HDR, SA, KE, Ni, IDii)
    /// offering `config.proposals` with pre-shared key authentication and a KE in their common
    /// group (all must share one: [`BuildError::MixedPhase1Groups`]), with NAT-T enabled every
    /// NAT-T Vendor ID (RFC 3947 section 3.1), then `config.vendor_ids`. `endpoints`: the
    /// addresses messages 1 and 2 go between, as this side sees them.
    pub fn start<C: Crypto<KeyPair = K>>(
        crypto: &C,
        config: MainModeConfig,
        endpoints: Endpoints,
    ) -> Result<(Self, Vec<u8>), MainModeError> {
        let group = match config.proposals.split_first() {
            None => return Err(MainModeError::Build(BuildError::NoProposals)),
            Some((first, rest)) if rest.iter().any(|p| p.group != first.group) => {
                return Err(MainModeError::Build(BuildError::MixedPhase1Groups));
            }
            Some((first, _)) => first.group,
        };
        let offered = phase1_sa(&config.proposals, AuthMethod::PreSharedKey, config.lifetime)
            .map_err(MainModeError::Build)?;
        let cky_i = random_cookie(crypto)?;
        let sa_i_b = PayloadBody::SecurityAssociation(offered.clone()).to_bytes()?;
        let id_i_b = PayloadBody::Identification(config.local_id.clone()).to_bytes()?;
        let key_pair = crypto.generate_key_pair(group)?;
        let ni = random_nonce(crypto)?;
        let mut payloads = vec![
            Payload::new(PayloadBody::SecurityAssociation(offered.clone())),
            Payload::new(PayloadBody::KeyExchange(KeyExchange::new(
                key_pair.public_value().to_vec(),
            ))),
            Payload::new(PayloadBody::Nonce(Nonce::new(ni.clone()))),
            Payload::new(PayloadBody::Identification(config.local_id.clone())),
        ];
        if config.nat_t.enabled {
            payloads.extend(nat_t::NAT_T_VENDOR_IDS.map(nat_t::vendor_id_payload));
        }
        payloads.extend(extra_vendor_ids(&config));
        let header = Header::new(ExchangeType::Aggressive, cky_i, [0; 8], 0);
        let bytes = Message::new(header, payloads).to_bytes()?;
        Ok((
            Initiator {
                config,
                endpoints,
                cky_i,
                last_sent: bytes.clone(),
                state: AggrSentFirst {
                    offered,
                    sa_i_b,
                    id_i_b,
                    key_pair,
                    ni,
                },
            },
            bytes,
        ))
    }

    /// Takes message 2 (HDR, SA, KE, Nr, IDir, HASH_R [, NAT-D, NAT-D]) and the pre-shared
    /// key: checks the SA answer against the offer, derives the key schedule, verifies
    /// HASH_R, detects a NAT, and returns the established ISAKMP SA with message 3
    /// (HDR*, HASH_I [, NAT-D, NAT-D]), encrypted with the first phase 1 IV.
    ///
    /// When [`IsakmpSa::nat`] says [`NatDetection::encapsulate`], the caller sends message 3
    /// (and everything after) between the NAT-T ports: `nat_t_port` (normally 4500, RFC 3947
    /// section 4) replaces both ports of the endpoints given to [`Initiator::start`] in
    /// message 3's NAT-D hashes, as the addresses of the datagram that carries it.
    pub fn handle_second<C: Crypto<KeyPair = K>>(
        self,
        crypto: &C,
        datagram: &[u8],
        psk: &[u8],
        nat_t_port: u16,
    ) -> Result<(IsakmpSa, Vec<u8>), Box<Failure<Self>>> {
        match self.second(crypto, datagram, psk, nat_t_port) {
            Ok(done) => Ok(done),
            Err(error) => Err(Box::new(Failure { state: self, error })),
        }
    }

    fn second<C: Crypto<KeyPair = K>>(
        &self,
        crypto: &C,
        datagram: &[u8],
        psk: &[u8],
        nat_t_port: u16,
    ) -> Result<(IsakmpSa, Vec<u8>), MainModeError> {
        let s = &self.state;
        let mut ctx = context(false, None);
        // The responder picks the NAT-T version in this very message, and may pick a draft
        // (NAT-D type 130); `ke_nonce` then admits only the chosen version's NAT-D.
        ctx.draft_nat_t = self.config.nat_t.enabled;
        let (header, payloads) = plaintext(datagram, &ctx)?;
        if header.initiator_cookie != self.cky_i || header.responder_cookie == [0; 8] {
            return Err(MainModeError::WrongCookies);
        }
        let cookies = [self.cky_i, header.responder_cookie];
        let parts = Parts::of(&payloads)?;
        let sa = parts.sa.ok_or_else(|| missing("SA"))?;
        let peer_id = parts.id.ok_or_else(|| missing("ID"))?;
        let hash_r = parts.hash.ok_or_else(|| missing("HASH"))?;
        let choice = check_phase1_reply(&s.offered, sa, &self.config.policy())
            .map_err(|r| MainModeError::Proposal(Box::new(r)))?;
        // RFC 3947 3.1: the best NAT-T Vendor ID the responder answered decides the version.
        let nat_version = if self.config.nat_t.enabled {
            NatTVersion::select(vendor_ids(&payloads)).and_then(|v| NatTVersion::from_vendor_id(&v))
        } else {
            None
        };
        let (g_xr, nr, nat_d) = ke_nonce(&parts.rest, choice.proposal.group, nat_version)?;
        let hash = choice.proposal.hash;
        let nat = detect_nat(
            crypto,
            nat_version,
            &self.config.nat_t,
            hash,
            cookies,
            self.endpoints,
            &nat_d,
        )?;
        let g_xy = crypto
            .agree(&s.key_pair, &g_xr)
            .map_err(MainModeError::KeyExchange)?;
        let keyed = Keyed::derive(
            crypto,
            &choice.proposal,
            Phase1Auth::PreSharedKey(psk),
            [&s.ni, &nr],
            s.key_pair.public_value().to_vec(),
            g_xr,
            &g_xy,
            cookies,
        )?;
        let id_r_b = id_body(datagram)?;
        let expected = keyed.hash(crypto, false, cookies, &s.sa_i_b, &id_r_b)?;
        constant_time::verify_slices_are_equal(expected.expose(), &hash_r.data)
            .map_err(|_| MainModeError::HashMismatch)?;
        let hash_i = keyed.hash(crypto, true, cookies, &s.sa_i_b, &s.id_i_b)?;
        let nat_d = match nat_version {
            Some(v) => {
                let endpoints = if nat.encapsulate() {
                    Endpoints {
                        local: with_port(self.endpoints.local, nat_t_port),
                        remote: with_port(self.endpoints.remote, nat_t_port),
                    }
                } else {
                    self.endpoints
                };
                nat_t::nat_d_payloads(
                    crypto,
                    v,
                    hash,
                    cookies,
                    endpoints,
                    self.config.nat_t.force_encap,
                )?
            }
            None => Vec::new(),
        };
        let first_iv = keyed.iv;
        let mut sa = IsakmpSa {
            initiator_cookie: self.cky_i,
            responder_cookie: header.responder_cookie,
            is_initiator: true,
            choice,
            keys: keyed.keys,
            encryption_key: keyed.encryption_key,
            last_phase1_block: first_iv,
            local_id: self.config.local_id.clone(),
            peer_id: peer_id.clone(),
            nat,
            peer_cert: None,
        };
        // HDR*, HASH_I [, NAT-D, NAT-D] under the first IV (RFC 2409 Appendix B); its last
        // ciphertext block is the last CBC block of phase 1.
        let (bytes, last_block) = quick_mode::encrypt_message(
            crypto,
            &sa,
            ExchangeType::Aggressive,
            0,
            &first_iv,
            hash_i,
            nat_d,
        )
        .map_err(from_quick_mode)?;
        sa.last_phase1_block = last_block;
        Ok((sa, bytes))
    }
}

impl Responder<AggrReplied> {
    /// Takes message 1 (HDR, SA, KE, Ni, IDii): chooses a proposal, looks up the pre-shared
    /// key by the initiator's identity (`psk_for`), makes our key pair in the chosen group,
    /// derives the key schedule, and sends message 2 (HDR, SA, KE, Nr, IDir, HASH_R, Vendor
    /// IDs [, NAT-D, NAT-D]) with `responder_cookie` (the caller's, from its
    /// [`crate::isakmp::cookie::CookieJar`]). With NAT-T enabled it answers the best NAT-T
    /// Vendor ID the initiator sent and adds NAT-D payloads for `endpoints` (message 1's
    /// destination and source as this side sees them). There is no state before message 1, so
    /// an error comes alone.
    pub fn handle_first<C: Crypto>(
        config: MainModeConfig,
        responder_cookie: Cookie,
        endpoints: Endpoints,
        crypto: &C,
        datagram: &[u8],
        psk_for: impl FnOnce(&Identification) -> Option<Vec<u8>>,
    ) -> Result<(Self, Vec<u8>), FirstMessageError> {
        let ctx = Context::new(SaState::None, &EXCHANGES);
        let (header, payloads) = plaintext(datagram, &ctx)?;
        if responder_cookie == [0; 8] {
            return Err(MainModeError::WrongCookies.into());
        }
        let parts = Parts::of(&payloads)?;
        if parts.hash.is_some() {
            return Err(MainModeError::UnexpectedPayload(PayloadType::Hash).into());
        }
        let sa = parts.sa.ok_or_else(|| missing("SA"))?;
        let peer_id = parts.id.ok_or_else(|| missing("ID"))?;
        let choice = select_phase1(sa, &config.policy())
            .map_err(|r| MainModeError::Proposal(Box::new(r)))?;
        // The KE must be of the chosen group (the offer can name only one, RFC 2409 section 5).
        let group = choice.proposal.group;
        let (g_xi, ni, _) = ke_nonce(&parts.rest, group, None)?;
        let sa_i_b = sa_body(datagram)?;
        let id_i_b = id_body(datagram)?;
        let psk =
            psk_for(peer_id).ok_or_else(|| FirstMessageError::UnknownPeer(peer_id.clone()))?;
        let nat_vid = if config.nat_t.enabled {
            NatTVersion::select(vendor_ids(&payloads))
        } else {
            None
        };
        let nat_version = nat_vid.and_then(|v| NatTVersion::from_vendor_id(&v));
        let cookies = [header.initiator_cookie, responder_cookie];
        let key_pair = crypto
            .generate_key_pair(group)
            .map_err(MainModeError::from)?;
        let g_xy = crypto
            .agree(&key_pair, &g_xi)
            .map_err(MainModeError::KeyExchange)?;
        let nr = random_nonce(crypto)?;
        let g_xr = key_pair.public_value().to_vec();
        let keyed = Keyed::derive(
            crypto,
            &choice.proposal,
            Phase1Auth::PreSharedKey(&psk),
            [&ni, &nr],
            g_xi,
            g_xr.clone(),
            &g_xy,
            cookies,
        )?;
        let id_r_b = PayloadBody::Identification(config.local_id.clone())
            .to_bytes()
            .map_err(MainModeError::from)?;
        let hash_r = keyed.hash(crypto, false, cookies, &sa_i_b, &id_r_b)?;
        let mut out = vec![
            Payload::new(PayloadBody::SecurityAssociation(choice.reply())),
            Payload::new(PayloadBody::KeyExchange(KeyExchange::new(g_xr))),
            Payload::new(PayloadBody::Nonce(Nonce::new(nr))),
            Payload::new(PayloadBody::Identification(config.local_id.clone())),
            Payload::new(PayloadBody::Hash(realm_wire::isakmp::Hash::new(
                hash_r.expose().to_vec(),
            ))),
        ];
        out.extend(nat_vid.map(nat_t::vendor_id_payload));
        out.extend(extra_vendor_ids(&config));
        if let Some(v) = nat_version {
            out.extend(
                nat_t::nat_d_payloads(
                    crypto,
                    v,
                    choice.proposal.hash,
                    cookies,
                    endpoints,
                    config.nat_t.force_encap,
                )
                .map_err(MainModeError::from)?,
            );
        }
        let reply = Header::new(
            ExchangeType::Aggressive,
            header.initiator_cookie,
            responder_cookie,
            0,
        );
        let bytes = Message::new(reply, out)
            .to_bytes()
            .map_err(MainModeError::from)?;
        Ok((
            Responder {
                config,
                cky_i: header.initiator_cookie,
                cky_r: responder_cookie,
                last_sent: bytes.clone(),
                state: AggrReplied {
                    sa_i_b,
                    id_i_b,
                    peer_id: peer_id.clone(),
                    choice,
                    keyed,
                    nat_version,
                },
            },
            bytes,
        ))
    }

    /// The NAT-T version both sides announced in messages 1 and 2 (`None` without NAT-T).
    /// Whether a NAT is on the path is known after message 3 ([`IsakmpSa::nat`]); message 3
    /// arrives on port 4500 when the initiator found one.
    pub fn nat_version(&self) -> Option<NatTVersion> {
        self.state.nat_version
    }

    /// The initiator's identity IDii as received in message 1.
    pub fn peer_id(&self) -> &Identification {
        &self.state.peer_id
    }

    /// Takes message 3 (HDR*, HASH_I [, NAT-D, NAT-D], or the same in plaintext, which RFC
    /// 2409 section 5 allows): decrypts it with the first phase 1 IV when encrypted, verifies
    /// HASH_I, detects a NAT from its NAT-D payloads, and returns the established ISAKMP SA.
    /// `endpoints`: the addresses message 3 came between as this side sees them (our address
    /// it arrived at, the one it came from: on the NAT-T port when the initiator floated),
    /// which its NAT-D hashes are compared against (RFC 3947 section 3.2).
    pub fn handle_third<C: Crypto>(
        self,
        crypto: &C,
        datagram: &[u8],
        endpoints: Endpoints,
    ) -> Result<IsakmpSa, Box<Failure<Self>>> {
        match self.third(crypto, datagram, endpoints) {
            Ok((nat, last_block)) => {
                let Responder {
                    config,
                    cky_i,
                    cky_r,
                    state,
                    ..
                } = self;
                Ok(IsakmpSa {
                    initiator_cookie: cky_i,
                    responder_cookie: cky_r,
                    is_initiator: false,
                    choice: state.choice,
                    keys: state.keyed.keys,
                    encryption_key: state.keyed.encryption_key,
                    last_phase1_block: last_block,
                    local_id: config.local_id,
                    peer_id: state.peer_id,
                    nat,
                    peer_cert: None,
                })
            }
            Err(error) => Err(Box::new(Failure { state: self, error })),
        }
    }

    fn third<C: Crypto>(
        &self,
        crypto: &C,
        datagram: &[u8],
        endpoints: Endpoints,
    ) -> Result<(NatDetection, Iv), MainModeError> {
        let s = &self.state;
        let cookies = [self.cky_i, self.cky_r];
        let ctx = context(true, s.nat_version);
        let message = match checks::check(datagram, &ctx) {
            Verdict::Accept(m) => m,
            Verdict::Reject(r) => return Err(MainModeError::Rejected(r)),
        };
        let h = &message.header;
        if [h.initiator_cookie, h.responder_cookie] != cookies {
            return Err(MainModeError::WrongCookies);
        }
        if h.exchange_type != ExchangeType::Aggressive {
            return Err(MainModeError::Unexpected("not an Aggressive Mode message"));
        }
        let (payloads, last_block) = match &message.body {
            Body::Payloads(chain) => (chain.payloads.clone(), s.keyed.iv),
            Body::Encrypted {
                next_payload,
                ciphertext,
            } => {
                let block = s.keyed.encryption_key.cipher().block_len();
                if ciphertext.is_empty() || ciphertext.len() % block != 0 {
                    return Err(MainModeError::CiphertextLength(ciphertext.len()));
                }
                let last = Iv::last_block_of(ciphertext)
                    .ok_or(MainModeError::CiphertextLength(ciphertext.len()))?;
                let mut plaintext = ciphertext.clone();
                s.keyed
                    .encryption_key
                    .decrypt(crypto, &s.keyed.iv, &mut plaintext)?;
                let decrypted = match checks::check_decrypted(
                    h,
                    *next_payload,
                    &plaintext,
                    Padding::Zeros,
                    &ctx,
                ) {
                    Verdict::Accept(m) => m,
                    Verdict::Reject(r) => {
                        return Err(MainModeError::Undecryptable(Box::new(r)));
                    }
                };
                let Body::Payloads(chain) = decrypted.body else {
                    return Err(MainModeError::Unexpected(
                        "decrypted message without payloads",
                    ));
                };
                (chain.payloads, last)
            }
        };
        let mut hash = None;
        let mut nat_d = Vec::new();
        for p in &payloads {
            if let Some(d) = s.nat_version.and_then(|v| nat_t::nat_d_of(v, &p.body)) {
                nat_d.push(d);
                continue;
            }
            match &p.body {
                PayloadBody::Hash(x) => set_once(&mut hash, x, "HASH")?,
                PayloadBody::VendorId(_) | PayloadBody::Notification(_) => {}
                other => return Err(MainModeError::UnexpectedPayload(other.payload_type())),
            }
        }
        let hash = hash.ok_or_else(|| missing("HASH"))?;
        let expected = s.keyed.hash(crypto, true, cookies, &s.sa_i_b, &s.id_i_b)?;
        constant_time::verify_slices_are_equal(expected.expose(), &hash.data)
            .map_err(|_| MainModeError::HashMismatch)?;
        let nat = detect_nat(
            crypto,
            s.nat_version,
            &self.config.nat_t,
            s.choice.proposal.hash,
            cookies,
            endpoints,
            &nat_d,
        )?;
        Ok((nat, last_block))
    }
}

/// The payloads of message 1 or 2 sorted out: the one SA, ID and HASH each, and the rest
/// (KE, Nonce, Vendor IDs, NAT-D, anything else) for [`ke_nonce`], which refuses what it does
/// not know. Notifications (INITIAL-CONTACT) are ignored.
struct Parts<'a> {
    sa: Option<&'a SecurityAssociation>,
    id: Option<&'a Identification>,
    hash: Option<&'a realm_wire::isakmp::Hash>,
    rest: Vec<Payload>,
}

impl<'a> Parts<'a> {
    fn of(payloads: &'a [Payload]) -> Result<Self, MainModeError> {
        let mut parts = Parts {
            sa: None,
            id: None,
            hash: None,
            rest: Vec::new(),
        };
        for p in payloads {
            match &p.body {
                PayloadBody::SecurityAssociation(s) => set_once(&mut parts.sa, s, "SA")?,
                PayloadBody::Identification(i) => set_once(&mut parts.id, i, "ID")?,
                PayloadBody::Hash(h) => set_once(&mut parts.hash, h, "HASH")?,
                PayloadBody::Notification(_) => {}
                _ => parts.rest.push(p.clone()),
            }
        }
        Ok(parts)
    }
}

/// The checks' context in Aggressive Mode; the draft NAT-T payload types are admitted once the
/// draft was negotiated.
fn context(keyed: bool, nat_version: Option<NatTVersion>) -> Context<'static> {
    let mut ctx = Context::new(
        SaState::Phase1 {
            exchange: ExchangeType::Aggressive,
            keyed,
        },
        &EXCHANGES,
    );
    ctx.draft_nat_t = nat_version == Some(NatTVersion::Draft02);
    ctx
}

/// Checks a plaintext Aggressive Mode message (1 or 2) and returns its header and payloads.
fn plaintext(datagram: &[u8], ctx: &Context<'_>) -> Result<(Header, Vec<Payload>), MainModeError> {
    let message = match checks::check(datagram, ctx) {
        Verdict::Accept(m) => m,
        Verdict::Reject(r) => return Err(MainModeError::Rejected(r)),
    };
    if message.header.exchange_type != ExchangeType::Aggressive {
        return Err(MainModeError::Unexpected("not an Aggressive Mode message"));
    }
    match message.body {
        Body::Payloads(chain) => Ok((message.header, chain.payloads)),
        Body::Encrypted { .. } => Err(MainModeError::Unexpected(
            "encrypted message before the keys exist",
        )),
    }
}

/// IDii_b or IDir_b: the body of the ID payload of a checked plaintext message, as received
/// (RFC 2409 section 5 hashes the body without the generic header).
fn id_body(datagram: &[u8]) -> Result<Vec<u8>, MainModeError> {
    let packet = Packet::new_checked(datagram).map_err(|_| missing("ID"))?;
    packet
        .payloads(Padding::Forbidden)
        .filter_map(Result::ok)
        .find(|raw| raw.payload_type == PayloadType::Identification)
        .map(|raw| raw.body.to_vec())
        .ok_or_else(|| missing("ID"))
}

/// A random non-zero CKY-I (RFC 2408 3.1: the initiator cookie is never zero).
fn random_cookie<C: Crypto>(crypto: &C) -> Result<Cookie, MainModeError> {
    let mut cky_i = [0u8; 8];
    for _ in 0..2 {
        crypto.fill_random(&mut cky_i)?;
        if cky_i != [0; 8] {
            return Ok(cky_i);
        }
    }
    Err(MainModeError::Crypto(CryptoError::Random))
}

fn with_port(mut addr: SocketAddr, port: u16) -> SocketAddr {
    addr.set_port(port);
    addr
}

/// What building message 3 with Quick Mode's HDR* layer can fail with, as Main Mode's error.
fn from_quick_mode(e: QuickModeError) -> MainModeError {
    match e {
        QuickModeError::Crypto(c) => MainModeError::Crypto(c),
        QuickModeError::Emit(w) => MainModeError::Emit(w),
        _ => MainModeError::Crypto(CryptoError::Provider),
    }
}
