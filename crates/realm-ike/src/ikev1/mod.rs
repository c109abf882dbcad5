//! IKEv1 (RFC 2409). So far only its key schedule ([`keys`]); the Main, Aggressive, Quick and
//! Informational exchanges that use it are planned (issue 12).

pub mod keys;
