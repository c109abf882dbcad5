//! ISAKMP (RFC 2408) processing that every exchange shares, sans-IO: anti-clogging cookies
//! ([`cookie`], section 2.5.3), the inbound header and generic payload checks with Realm's
//! answer-or-drop policy ([`checks`], sections 5.1-5.3), and the Informational Notify that
//! answers a rejected message ([`notify`], sections 3.14, 4.8, 5.14).
//!
//! The bytes themselves are `realm_wire::isakmp`'s: this module parses and emits only through
//! it. Nothing here reads a clock (time comes in as `now`), sends, keeps per-peer state or
//! panics on input. Not here yet: the exchanges' payload grammars, SA payload processing
//! (sections 5.4-5.6) and the rate limit on answers (see [`checks`]).
//!
//! ```
//! use realm_ike::isakmp::checks::{self, Check, Context, Response, SaState, Verdict};
//! use realm_ike::isakmp::notify;
//! use realm_wire::isakmp::{ExchangeType, Header, Message, VendorId};
//!
//! // A Main Mode first message with a Message ID, which phase 1 forbids (RFC 2408 3.1).
//! let header = Header::new(ExchangeType::IdentityProtection, [1; 8], [0; 8], 7);
//! let bytes = Message::new(header, vec![VendorId::dpd().into()]).to_bytes()?;
//! let ctx = Context::new(SaState::None, &checks::IKEV1_EXCHANGES);
//! let Verdict::Reject(rejection) = checks::check(&bytes, &ctx) else { panic!() };
//! assert_eq!(rejection.check, Check::MessageId);
//! assert!(matches!(rejection.response, Response::Notify(_)));
//! let answer = notify::reply(&rejection, 0x1234_5678).expect("answered").to_bytes()?;
//! assert_eq!(Message::parse(&answer)?.header.exchange_type, ExchangeType::Informational);
//! # Ok::<(), realm_wire::Error>(())
//! ```

pub mod checks;
pub mod cookie;
pub mod notify;
