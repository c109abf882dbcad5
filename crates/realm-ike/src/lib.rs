//! Realm's IKE: ISAKMP (RFC 2408) and IKEv1 (RFC 2409), sans-IO, for `realm peer` and later
//! `realm host` to negotiate their own IPsec SAs (issue 12).
//!
//! **What exists so far: the foundation.**
//! - [`crypto`]: the [`Crypto`] trait behind which every IKE primitive sits (random bytes,
//!   Diffie-Hellman for groups 2, 14, 19 and 20, PRF, hash, AES-CBC without padding), so the
//!   engine can be tested with any provider and the provider swapped; and its one implementation,
//!   [`AwsLcCrypto`] (aws-lc-rs, plus crypto-bigint's constant-time Montgomery exponentiation for
//!   the MODP groups, which aws-lc-rs lacks). No cipher, hash, MAC or DH arithmetic is written
//!   here. Invalid peer public values are refused with a typed [`DhError`], never a panic.
//! - [`ikev1::keys`]: the RFC 2409 key schedule: SKEYID for pre-shared keys and for signatures,
//!   SKEYID_d/_a/_e (section 5), the Appendix B encryption key expansion and IVs, and Quick Mode
//!   KEYMAT (section 5.5), as typed key material zeroized on drop.
//!
//! - [`isakmp`]: anti-clogging cookies (RFC 2408 2.5.3), the inbound header and generic payload
//!   checks of section 5.1-5.3 as a pure verdict (accept, or the Notify the RFC names and whether
//!   Realm answers it), and the unprotected Informational exchange that answers one.
//!
//! - [`proposal`]: proposals spelled as strongSwan's swanctl.conf spells them
//!   (`aes128-sha256-modp2048`, `aes128gcm16-ecp256`), their phase 1 and Quick Mode SA payloads,
//!   and SA payload processing (RFC 2408 5.4-5.6): the responder's choice, with the Notify and a
//!   log line saying what was offered and why none matched, and the initiator's check of the answer.
//!
//! - [`config`]: IKE connections configured in swanctl.conf's shape, in TOML
//!   (`[connections.NAME]`, `[connections.NAME.children.CHILD]`, `[secrets.ikeNAME]`), with
//!   strongSwan's defaults and spellings (identities, traffic selectors, times, proposals), its
//!   PSK lookup, and errors naming file, line, column and key (`docs/ike-config.md`). Pure data:
//!   the caller reads the file.
//!
//! - [`ikev1::main_mode`]: IKEv1 Main Mode with pre-shared keys or RSA signatures (RFC 2409
//!   sections 5, 5.1 and 5.4), initiator and responder, as typed states that consume themselves
//!   (`Initiator<SentSa>` -> `Initiator<SentKe<K>>` -> `Initiator<SentId>` -> [`IsakmpSa`];
//!   `Responder<RepliedSa>` -> `Responder<RepliedKe>` -> [`IsakmpSa`]): each step takes the
//!   received bytes and returns the next state and the bytes to send, or the unchanged state with
//!   a typed error naming the Notify it maps to. With RSA signatures
//!   ([`Phase1Credentials::RsaSignature`](ikev1::main_mode::Phase1Credentials)) messages 3 and
//!   4 carry CERTREQ, messages 5 and 6 ID (by default the certificate's subject DN), CERT and
//!   SIG, and the peer's certificate is validated against the configured CAs at a time the
//!   caller passes in, matched against its ID payload and checked for the SIG. No timers (each
//!   state keeps its last message for the caller to resend).
//!
//! - [`ikev1::aggressive_mode`]: IKEv1 Aggressive Mode with pre-shared keys (RFC 2409 sections
//!   5 and 5.4), both roles, driven like Main Mode (`Initiator::start` ->
//!   `Initiator<AggrSentFirst<K>>::handle_second` -> [`IsakmpSa`] and message 3;
//!   `Responder::handle_first` -> `Responder<AggrReplied>::handle_third` -> [`IsakmpSa`]): one
//!   DH group for all offered proposals, the responder's pre-shared key looked up by the
//!   initiator's identity, message 3 sent encrypted (accepted either way) with the phase 1 IV
//!   chain of Appendix B, and NAT-T with NAT-D in messages 2 and 3 (RFC 3947).
//!
//! - [`ikev1::nat_t`]: NAT traversal negotiation (RFC 3947, and the draft-02/03 Vendor IDs older
//!   peers send): the Vendor IDs of Main Mode messages 1 and 2, the NAT-D payloads of messages 3
//!   and 4 and what they show ([`NatDetection`]: who is behind a NAT, whether to move to port
//!   4500 and UDP-encapsulate ESP), strongSwan's forced encapsulation, and in Quick Mode the
//!   UDP-Encapsulated modes and NAT-OA.
//!
//! - [`ikev1::quick_mode`]: IKEv1 Quick Mode (RFC 2409 section 5.5) under an [`IsakmpSa`], both
//!   roles as typed states (`Initiator<K>::start` -> `handle_reply` -> [`ChildSaPair`] and
//!   message 3; `Responder::handle_offer` -> `handle_hash3` -> [`ChildSaPair`]): encrypted with
//!   the Appendix B phase 2 IVs, HASH(1)/(2)/(3) verified in constant time, the ESP proposal
//!   chosen or checked by [`proposal`], optional PFS (KE in the proposal's group) and client
//!   IDs, and for each direction the caller's SPI with its KEYMAT split into the AES key and the
//!   GCM salt or the HMAC key, and under NAT-T the UDP-Encapsulated modes and NAT-OA. No commit
//!   bit, RESPONDER-LIFETIME or AH.
//!
//! - [`ikev1::informational`]: the protected Informational exchange under an [`IsakmpSa`]
//!   (RFC 2409 section 5.7, `HDR*, HASH(1), N/D`): `seal` (fresh random Message ID, Appendix B
//!   IV, HASH(1) = prf(SKEYID_a, M-ID | N/D)) and `open` (the RFC 2408 5.1-5.3 checks, HASH
//!   first, HASH(1) verified in constant time, Notification and Delete payloads only; an
//!   unprotected Informational under the SA is refused), sharing Quick Mode's HDR*/HASH layer;
//!   builders for the Delete of the ISAKMP SA and of ESP SAs, INITIAL-CONTACT, and RFC 3706
//!   DPD's Vendor ID, R-U-THERE and R-U-THERE-ACK, with a recognizer. Stateless: replays open
//!   again (RFC 2409 5.7 names no receiver check; the engine may remember Message IDs).
//! - [`ikev1::dpd`]: RFC 3706 Dead Peer Detection as a sans-IO state machine (time passed in):
//!   idle-based R-U-THERE after a delay, retransmitted with backoff and a new sequence number
//!   each time, ACKs checked against the numbers sent, the peer declared dead at the timeout.
//!
//! [`IsakmpSa`]: ikev1::main_mode::IsakmpSa
//! [`ChildSaPair`]: ikev1::quick_mode::ChildSaPair
//! [`NatDetection`]: ikev1::nat_t::NatDetection
//!
//! - [`auth`]: the building blocks of authentication with RSA signatures (RFC 2409 section
//!   5.1), used by Main Mode: an RSA [`PrivateKey`](auth::PrivateKey) (PKCS#1 or PKCS#8,
//!   PEM or DER) signing HASH_I/HASH_R with PKCS#1 v1.5 padding and no DigestInfo; a peer's X.509
//!   [`Certificate`](auth::Certificate) verifying such a signature and matched against an
//!   identity (subject DN, subjectAltNames); and [`TrustAnchors`](auth::TrustAnchors)
//!   validating its chain (rustls-webpki).
//!
//! - [`export`]: the `ikev1_decryption_table` line Wireshark reads to decrypt IKEv1 (tested: tshark
//!   decrypts Main Mode messages 5 and 6, Aggressive Mode message 3 and protected
//!   Informationals after either with it).
//!
//! The [`engine`] drives Main Mode (pre-shared keys or RSA signatures), Aggressive Mode
//! (pre-shared keys), Quick Mode and the Informational exchange. The ISAKMP header and payload
//! chain wire
//! format lives in `realm-wire`.
//!
//! Like Realm's other engines this crate never reads a clock, opens a socket or spawns; it takes
//! no input it cannot refuse without panicking.
#![forbid(unsafe_code)]

#[macro_use]
mod secret;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod export;
pub mod ikev1;
pub mod isakmp;
pub mod proposal;

pub use crypto::{
    AwsLcCrypto, AwsLcKeyPair, CipherAlgorithm, Crypto, CryptoError, DhError, DhGroup, DhKeyPair,
    Digest, HashAlgorithm, PrfAlgorithm, PrfOutput, SharedSecret,
};
