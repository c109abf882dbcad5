//! IKEv1 (RFC 2409): its key schedule ([`keys`]), Main Mode with pre-shared keys
//! ([`main_mode`]) with NAT traversal ([`nat_t`], RFC 3947) and Quick Mode ([`quick_mode`]).
//! Aggressive Mode and the Informational exchange are planned (issue 12).

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
