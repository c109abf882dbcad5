//! Realm wire formats: every byte Realm sends or receives is parsed and built here.
//!
//! Two levels per format, after smoltcp: a checked zero-copy view
//! (`Packet::new_checked`, after which no accessor can panic) and an owned
//! `Repr` with symmetric `parse` / `emit`. RSIP messages (RFC 3103, RFC 3104)
//! are TLV chains read through [`codec::Reader`].
//!
//! **No-panic contract** (the one statement of it; module docs only say what
//! their checks cover). No function in this crate panics on any input: bytes
//! from the wire, and lengths a caller passes in that come from the wire or
//! an SA (IV, ICV, block sizes), are checked like wire data. A view's
//! `new_checked` checks that the buffer holds everything its accessors read,
//! so every accessor of a checked view is safe; fixed fields are read and
//! written through [`codec`]'s field helpers, which read 0 and write nothing
//! past the end of the buffer. Accessors of a view made with `new_unchecked`
//! over a buffer too short for it, and `emit` into a buffer shorter than the
//! `Repr`'s `buffer_len`, may panic: that is a caller bug, never an input one.
//!
//! Unknown codes are kept (`Unknown(u8)`) so that parse-then-emit loses
//! nothing, and every failure is a typed error naming what was wrong and where.
//! This crate does no I/O and allocates only in `Repr`s that own variable data.
#![forbid(unsafe_code)]

// First, so that every module below can use its macro.
#[macro_use]
mod macros;

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
