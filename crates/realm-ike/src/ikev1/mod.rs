//! IKEv1 (RFC 2409): its key schedule ([`keys`]), Main Mode with pre-shared keys
//! ([`main_mode`]) and Aggressive Mode with pre-shared keys ([`aggressive_mode`]), both with NAT
//! traversal ([`nat_t`], RFC 3947), Quick Mode ([`quick_mode`]), the protected Informational
//! exchange with its Delete, INITIAL-CONTACT and DPD payloads ([`informational`]) and the RFC
//! 3706 Dead Peer Detection state machine ([`dpd`]).

pub mod aggressive_mode;
pub mod dpd;
pub mod informational;
pub mod keys;
pub mod main_mode;
pub mod nat_t;
pub mod quick_mode;

/// A received message a handshake state did not accept: the state, unchanged, and why (`E`:
/// [`main_mode::MainModeError`] or [`quick_mode::QuickModeError`]).
#[derive(Debug)]
pub struct Failure<S, E> {
    /// The state as it was before the message.
    pub state: S,
    /// Why the message was not accepted.
    pub error: E,
}
