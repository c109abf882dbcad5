//! Signalling authentication shared by the gateway and host engines (RFC 3102
//! 3.3: "a message hash and a replay counter"), carried in Realm's
//! private-use Authentication parameter (type 241, RFC 3103 12).
//!
//! Scheme (`docs/signalling-auth.md`): value = key ID (4) | replay counter (8)
//! | MAC (16), where MAC = HMAC-SHA-256(key, message bytes with the MAC field
//! zeroed), truncated to 16 bytes. The receiver checks the MAC in constant
//! time, then that the replay counter is strictly greater than the last one
//! it accepted from that sender ([`ReplayCounter`]).
//!
//! This module owns the cryptography only: which host has which key, and what
//! an engine answers to a bad message, are the engines' business.

use std::fmt;

use aws_lc_rs::{constant_time, hmac};
use realm_wire::rsip::{Authentication, DecodeError, HEADER_LEN, Message, Parameter};
use thiserror::Error;

/// Bytes of the truncated MAC.
pub const MAC_LEN: usize = 16;

/// A shared key: its ID (sent in the clear) and the HMAC-SHA-256 key.
#[derive(Clone)]
pub struct SharedKey {
    id: u32,
    key: hmac::Key,
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("SharedKey").field("id", &self.id).finish()
    }
}

impl SharedKey {
    /// A key from its ID and secret bytes (at least 16 are recommended; the
    /// gateway's configuration refuses fewer).
    pub fn new(id: u32, secret: &[u8]) -> SharedKey {
        SharedKey {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The key ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let tag = hmac::sign(&self.key, data);
        let mut mac = [0u8; MAC_LEN];
        if let Some(t) = tag.as_ref().get(..MAC_LEN) {
            mac.copy_from_slice(t);
        }
        mac
    }
}

/// Why a message failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The message carries no Authentication parameter.
    #[error("message is not signed")]
    Missing,
    /// It is signed with a key ID the receiver does not hold for this sender.
    #[error("unknown key ID {0}")]
    UnknownKey(u32),
    /// The MAC does not match.
    #[error("bad MAC")]
    BadMac,
    /// The replay counter is not above the last one accepted.
    #[error("replayed or stale counter {counter} (last accepted {last})")]
    Replay {
        /// The message's counter.
        counter: u64,
        /// The last counter accepted from this sender.
        last: u64,
    },
}

/// Signs `msg` with `key` and replay counter `counter`: returns the message
/// with an Authentication parameter appended (the last parameter).
pub fn sign(msg: &Message, key: &SharedKey, counter: u64) -> Result<Message, DecodeError> {
    let unsigned = msg.with_param(Parameter::Authentication(Authentication {
        key_id: key.id,
        counter,
        mac: [0; MAC_LEN],
    }))?;
    let mac = key.mac(&unsigned.to_bytes());
    msg.with_param(Parameter::Authentication(Authentication {
        key_id: key.id,
        counter,
        mac,
    }))
}

/// Where the MAC field of the (first) Authentication parameter lies in the
/// emitted message `bytes`, found by walking the parameter TLVs.
fn mac_range(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut at = HEADER_LEN;
    while let Some([t, hi, lo]) = bytes
        .get(at..at + 3)
        .and_then(|h| <[u8; 3]>::try_from(h).ok())
    {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let value = at + 3;
        if t == 241 && len == Authentication::VALUE_LEN {
            let start = value + Authentication::MAC_OFFSET;
            return (start + MAC_LEN <= bytes.len()).then_some(start..start + MAC_LEN);
        }
        at = value + len;
    }
    None
}

/// Checks the MAC of a parsed message `msg` whose wire form is `bytes`
/// against `key` (constant-time compare). Returns the Authentication
/// parameter; the caller then checks its counter with a [`ReplayCounter`].
pub fn verify(bytes: &[u8], msg: &Message, key: &SharedKey) -> Result<Authentication, AuthError> {
    let auth = msg.authentication().ok_or(AuthError::Missing)?;
    if auth.key_id != key.id {
        return Err(AuthError::UnknownKey(auth.key_id));
    }
    let range = mac_range(bytes).ok_or(AuthError::Missing)?;
    let mut zeroed = bytes.to_vec();
    if let Some(field) = zeroed.get_mut(range) {
        field.fill(0);
    }
    let expected = key.mac(&zeroed);
    constant_time::verify_slices_are_equal(&expected, &auth.mac).map_err(|_| AuthError::BadMac)?;
    Ok(auth)
}

/// The last replay counter accepted from one sender: a message is fresh only
/// if its counter is strictly greater (RFC 3102 3.3). Check *after* the MAC,
/// and [`ReplayCounter::accept`] only once the message is acted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounter {
    last: u64,
}

impl ReplayCounter {
    /// Starting after `last` (0: nothing accepted yet).
    pub fn new(last: u64) -> ReplayCounter {
        ReplayCounter { last }
    }

    /// The last counter accepted.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Whether `counter` would be fresh.
    pub fn check(&self, counter: u64) -> Result<(), AuthError> {
        if counter > self.last {
            Ok(())
        } else {
            Err(AuthError::Replay {
                counter,
                last: self.last,
            })
        }
    }

    /// Records `counter` as accepted (never moves backwards).
    pub fn accept(&mut self, counter: u64) {
        self.last = self.last.max(counter);
    }
}

/// A sender's next outgoing replay counter: above the last one sent and at
/// least `now_ms * 1024`, so counters keep increasing across restarts
/// without being persisted (as long as the clock does not go back and fewer
/// than 1024 messages are signed per millisecond on average).
pub fn next_send_counter(last_sent: u64, now_ms: u64) -> u64 {
    last_sent.saturating_add(1).max(now_ms.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use realm_wire::rsip::ClientId;

    use super::*;

    fn key() -> SharedKey {
        SharedKey::new(7, b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn signed_message_verifies_and_tampering_fails() {
        let m = Message::deregister_request(ClientId(42), Some(3));
        let signed = sign(&m, &key(), 100).unwrap();
        let bytes = signed.to_bytes();
        let parsed = Message::parse(&bytes).unwrap();
        let auth = verify(&bytes, &parsed, &key()).unwrap();
        assert_eq!((auth.key_id, auth.counter), (7, 100));
        // Any flipped bit of the message breaks the MAC.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            if let Ok(p) = Message::parse(&bad) {
                assert!(verify(&bad, &p, &key()).is_err(), "byte {i}");
            }
        }
        // Another key, another ID, or no signature at all.
        let other = SharedKey::new(7, b"another secret, same key ID.....");
        assert_eq!(verify(&bytes, &parsed, &other), Err(AuthError::BadMac));
        let id8 = SharedKey::new(8, b"0123456789abcdef0123456789abcdef");
        assert_eq!(verify(&bytes, &parsed, &id8), Err(AuthError::UnknownKey(7)));
        assert_eq!(verify(&m.to_bytes(), &m, &key()), Err(AuthError::Missing));
        assert!(format!("{:?}", key()).contains("id: 7"));
    }

    #[test]
    fn signature_is_the_documented_hmac() {
        // docs/signalling-auth.md: HMAC-SHA-256 over the message with the MAC
        // zeroed, first 16 bytes.
        let m = Message::register_request(Some(1));
        let signed = sign(&m, &key(), 5).unwrap();
        let mut zeroed = signed.to_bytes();
        let n = zeroed.len();
        zeroed[n - 16..].fill(0);
        let k = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef");
        let tag = hmac::sign(&k, &zeroed);
        assert_eq!(&signed.to_bytes()[n - 16..], &tag.as_ref()[..16]);
    }

    #[test]
    fn replay_counter_is_strictly_increasing() {
        let mut r = ReplayCounter::default();
        assert_eq!(
            r.check(0),
            Err(AuthError::Replay {
                counter: 0,
                last: 0
            })
        );
        r.check(1).unwrap();
        r.accept(5);
        assert!(r.check(5).is_err());
        r.check(6).unwrap();
        r.accept(3);
        assert_eq!(r.last(), 5);
        assert_eq!(next_send_counter(0, 10), 10 * 1024);
        assert_eq!(next_send_counter(20_000, 10), 20_001);
        assert_eq!(next_send_counter(u64::MAX, u64::MAX), u64::MAX);
    }
}
