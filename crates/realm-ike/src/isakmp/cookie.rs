//! Anti-clogging cookies (RFC 2408 section 2.5.3): the responder cookie Realm hands out, and its
//! stateless verification when the initiator echoes it.
//!
//! RFC 2408 2.5.3 (after Karn) asks three things of a cookie: it depends on the specific parties
//! (an attacker holding a cookie for one address and port cannot use it from another); only the
//! issuer can make cookies it will accept, from a local secret that no cookie reveals; and it is
//! fast to compute. It also asks that the date and time be hashed in, so that cookies are unique
//! per SA establishment. Here:
//!
//! ```text
//! cookie = first 8 octets of HMAC-SHA256(secret, label | slot | peer address | peer port | CKY-I)
//! ```
//!
//! - `secret` is 32 bytes from the caller's RNG ([`CookieSecret`]), replaced every `period` by
//!   [`CookieJar::rotate`]; the previous secret is kept for one more period.
//! - `slot` is the time slot, `floor((now - epoch) / period)`, as a 64-bit big-endian number:
//!   a cookie verifies in the slot it was made in and the next one, never later, so it lives
//!   between one and two periods whether or not the caller rotates on time.
//! - the peer's address (IPv4 or IPv6; an IPv4-mapped IPv6 address counts as the IPv4 address)
//!   and UDP port, so the cookie depends on the parties (RFC 2408 2.5.3 requirement 1). The IPv6
//!   flow label and scope are not included.
//! - `CKY-I`, the initiator's cookie from the same header, which makes the responder cookie unique
//!   to this SA establishment (RFC 2408 2.5.3: "unique for each SA establishment").
//!
//! HMAC-SHA256 comes from aws-lc-rs, and [`CookieJar::verify`] compares with aws-lc-rs's
//! constant-time comparison ([`aws_lc_rs::constant_time::verify_slices_are_equal`]), always
//! computing and comparing both candidate cookies so its time does not say which secret matched.
//!
//! Nothing here reads a clock: every call takes `now`. The caller schedules
//! [`CookieJar::next_rotation`] in its timer table and calls [`CookieJar::rotate`] with fresh
//! bytes from its RNG then.
//!
//! What a cookie does not do: NAT-T (RFC 3947) may move the peer to port 4500 after Main Mode
//! message 4, so verify a cookie when it is first echoed (Main Mode message 3), then match later
//! messages by the ISAKMP SA's state.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, hmac};
use realm_wire::isakmp::Cookie;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{Crypto, CryptoError};

/// Domain separation: these HMAC inputs can never be mistaken for another use of the secret.
const LABEL: &[u8] = b"realm-ike isakmp cookie v1";

/// Length of a [`CookieSecret`].
pub const COOKIE_SECRET_LEN: usize = 32;

/// The shortest rotation period a [`CookieJar`] takes.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// A cookie secret: 32 random bytes, zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CookieSecret([u8; COOKIE_SECRET_LEN]);

impl CookieSecret {
    /// Wraps bytes the caller drew from its RNG (tests pass fixed bytes).
    pub fn from_bytes(bytes: [u8; COOKIE_SECRET_LEN]) -> CookieSecret {
        CookieSecret(bytes)
    }

    /// Draws a secret from the [`Crypto`] provider's RNG.
    pub fn generate<C: Crypto>(crypto: &C) -> Result<CookieSecret, CryptoError> {
        let mut bytes = [0u8; COOKIE_SECRET_LEN];
        crypto.fill_random(&mut bytes)?;
        let secret = CookieSecret(bytes);
        bytes.zeroize();
        Ok(secret)
    }
}

impl std::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSecret(<redacted>)")
    }
}

/// Why a [`CookieJar`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The rotation period is below [`MIN_PERIOD`].
    #[error("cookie secret rotation period {0:?} is below the 1 s minimum")]
    PeriodTooShort(Duration),
}

/// A secret and the first time slot it was used in.
///
/// Only the HMAC key is kept: AWS-LC holds its own copy of the secret and cleanses it when the
/// key is freed; the [`CookieSecret`] passed in is zeroized as soon as the key is made.
struct Generation {
    key: hmac::Key,
    from_slot: u64,
}

impl Generation {
    fn new(secret: CookieSecret, from_slot: u64) -> Generation {
        Generation {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret.0),
            from_slot,
        }
    }
}

/// The responder's cookie state: the current secret, the previous one, and the time slots.
///
/// ```
/// use std::time::{Duration, Instant};
/// use realm_ike::isakmp::cookie::{CookieJar, CookieSecret};
///
/// let start = Instant::now(); // the daemon's clock; the jar never reads one
/// let mut jar = CookieJar::new(CookieSecret::from_bytes([7; 32]), Duration::from_secs(60), start)?;
/// let peer = "192.0.2.1:500".parse()?;
/// let initiator_cookie = [1, 2, 3, 4, 5, 6, 7, 8];
/// let cookie = jar.cookie(start, peer, initiator_cookie);
/// assert!(jar.verify(start + Duration::from_secs(30), peer, initiator_cookie, &cookie));
/// // At the rotation deadline the caller brings a fresh secret; the old one stays valid one period.
/// jar.rotate(jar.next_rotation(), CookieSecret::from_bytes([8; 32]));
/// assert!(jar.verify(start + Duration::from_secs(90), peer, initiator_cookie, &cookie));
/// assert!(!jar.verify(start + Duration::from_secs(120), peer, initiator_cookie, &cookie));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CookieJar {
    epoch: Instant,
    period: Duration,
    current: Generation,
    previous: Option<Generation>,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field("period", &self.period)
            .field("current_from_slot", &self.current.from_slot)
            .field(
                "previous_from_slot",
                &self.previous.as_ref().map(|g| g.from_slot),
            )
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar whose slots start at `now`, with `secret` for slot 0, rotating every `period`
    /// (at least [`MIN_PERIOD`]).
    pub fn new(
        secret: CookieSecret,
        period: Duration,
        now: Instant,
    ) -> Result<CookieJar, CookieError> {
        if period < MIN_PERIOD {
            return Err(CookieError::PeriodTooShort(period));
        }
        Ok(CookieJar {
            epoch: now,
            period,
            current: Generation::new(secret, 0),
            previous: None,
        })
    }

    /// The rotation period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The time slot `now` falls in (0 before the epoch).
    pub fn slot(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        // `period` is at least 1 s, so the quotient of a u128 of nanoseconds fits u64 for
        // 584 billion years; saturate rather than wrap past that.
        u64::try_from(elapsed / self.period.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// When the current secret should be replaced: the start of the slot after the one it was
    /// installed in.
    pub fn next_rotation(&self) -> Instant {
        let next = self.current.from_slot.saturating_add(1);
        let offset = u32::try_from(next)
            .ok()
            .and_then(|n| self.period.checked_mul(n))
            .unwrap_or(Duration::MAX);
        self.epoch.checked_add(offset).unwrap_or(self.epoch)
    }

    /// Installs a fresh secret for the slot `now` falls in; the current one becomes the previous
    /// one and the one before is dropped (and zeroized). Call it at [`Self::next_rotation`].
    /// Called early, it ends the old previous secret's grace early; called late, cookies still
    /// expire on time because the slot is hashed in.
    pub fn rotate(&mut self, now: Instant, secret: CookieSecret) {
        let slot = self.slot(now).max(self.current.from_slot);
        let old = std::mem::replace(&mut self.current, Generation::new(secret, slot));
        self.previous = Some(old);
    }

    /// The cookie for a peer at `peer` whose initiator cookie is `initiator_cookie`, made now
    /// with the current secret. Never all zero (an all-zero responder cookie means "none yet",
    /// RFC 2408 3.1).
    pub fn cookie(&self, now: Instant, peer: SocketAddr, initiator_cookie: Cookie) -> Cookie {
        compute(&self.current.key, self.slot(now), peer, initiator_cookie)
    }

    /// True when `cookie` is one this jar made for this peer and initiator cookie, in this time
    /// slot or the previous one, with the secret that was current then. Constant time in the
    /// cookie's value: both candidates are computed and compared every time.
    pub fn verify(
        &self,
        now: Instant,
        peer: SocketAddr,
        initiator_cookie: Cookie,
        cookie: &[u8],
    ) -> bool {
        let slot = self.slot(now);
        let mut ok = false;
        for candidate_slot in [Some(slot), slot.checked_sub(1)].into_iter().flatten() {
            let Some(key) = self.key_for(candidate_slot) else {
                continue;
            };
            let expected = compute(key, candidate_slot, peer, initiator_cookie);
            ok |= constant_time::verify_slices_are_equal(&expected, cookie).is_ok();
        }
        ok
    }

    /// The secret that was current in `slot`, if this jar still has it.
    fn key_for(&self, slot: u64) -> Option<&hmac::Key> {
        if slot >= self.current.from_slot {
            return Some(&self.current.key);
        }
        self.previous
            .as_ref()
            .filter(|g| slot >= g.from_slot)
            .map(|g| &g.key)
    }
}

fn compute(key: &hmac::Key, slot: u64, peer: SocketAddr, initiator_cookie: Cookie) -> Cookie {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(LABEL);
    ctx.update(&slot.to_be_bytes());
    match peer.ip().to_canonical() {
        IpAddr::V4(a) => {
            ctx.update(&[4]);
            ctx.update(&a.octets());
        }
        IpAddr::V6(a) => {
            ctx.update(&[6]);
            ctx.update(&a.octets());
        }
    }
    ctx.update(&peer.port().to_be_bytes());
    ctx.update(&initiator_cookie);
    let tag = ctx.sign();
    let mut cookie = [0u8; 8];
    if let Some(head) = tag.as_ref().get(..8) {
        cookie.copy_from_slice(head);
    }
    if cookie == [0; 8] {
        // Probability 2^-64; the same fix-up on both sides keeps verification consistent.
        cookie[7] = 1;
    }
    cookie
}

#[cfg(test)]
mod tests {
    // `Instant::now` only starts the fake clock the tests hand the jar.
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::disallowed_methods
    )]
    use super::*;

    #[test]
    fn key_for_falls_back_to_the_previous_secret_only_within_its_slots() {
        let t0 = Instant::now();
        let p = Duration::from_secs(10);
        let mut jar = CookieJar::new(CookieSecret::from_bytes([1; 32]), p, t0).unwrap();
        assert!(jar.key_for(0).is_some());
        jar.rotate(t0 + p * 3, CookieSecret::from_bytes([2; 32]));
        assert_eq!(jar.current.from_slot, 3);
        assert_eq!(jar.previous.as_ref().unwrap().from_slot, 0);
        assert!(jar.key_for(2).is_some());
        jar.rotate(t0 + p * 4, CookieSecret::from_bytes([3; 32]));
        assert!(jar.key_for(2).is_none(), "the secret of slots 0-2 is gone");
        assert!(jar.key_for(3).is_some());
    }

    #[test]
    fn next_rotation_is_the_start_of_the_next_slot() {
        let t0 = Instant::now();
        let p = Duration::from_secs(10);
        let mut jar = CookieJar::new(CookieSecret::from_bytes([1; 32]), p, t0).unwrap();
        assert_eq!(jar.next_rotation(), t0 + p);
        jar.rotate(
            t0 + p + Duration::from_secs(4),
            CookieSecret::from_bytes([2; 32]),
        );
        assert_eq!(jar.next_rotation(), t0 + p * 2);
    }
}
