//! IKEv1 (RFC 2409): its key schedule ([`keys`]) and Main Mode with pre-shared keys
//! ([`main_mode`]). Aggressive, Quick and Informational exchanges are planned (issue 12).

pub mod keys;
pub mod main_mode;
