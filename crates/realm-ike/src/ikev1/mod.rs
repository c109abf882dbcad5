//! IKEv1 (RFC 2409): its key schedule ([`keys`]), Main Mode with pre-shared keys
//! ([`main_mode`]) and Quick Mode ([`quick_mode`]). Aggressive Mode and the Informational
//! exchange are planned (issue 12).

pub mod keys;
pub mod main_mode;
pub mod quick_mode;
