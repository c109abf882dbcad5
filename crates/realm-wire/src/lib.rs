//! Realm wire formats: every byte Realm sends or receives is parsed and built here.
//!
//! Two levels per format, after smoltcp: a checked zero-copy view
//! (`Packet::new_checked`, after which no accessor can panic) and an owned
//! `Repr` with symmetric `parse` / `emit`. RSIP messages (RFC 3103, RFC 3104)
//! are TLV chains read through [`codec::Reader`].
//!
//! **Contract:** no function in this crate panics on any input. Unknown codes
//! are kept (`Unknown(u8)`) so that parse-then-emit loses nothing, and every
//! failure is a typed error naming what was wrong and where.
//! This crate does no I/O and allocates only in `Repr`s that own variable data.
#![forbid(unsafe_code)]

pub mod codec;
mod error;

pub use error::Error;

// RSIP signalling (RFC 3103, RFC 3104).
pub mod rsip;

// Network and transport headers.
pub mod checksum;
pub mod fragment;
pub mod gre;
pub mod icmp;
pub mod ipip;
pub mod ipv4;
pub mod tcp;
pub mod udp;

// IPsec and key exchange framing.
pub mod ah;
pub mod esp;
pub mod isakmp;
pub mod udp_encap;
