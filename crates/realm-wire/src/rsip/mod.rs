//! RSIP signalling on the wire: messages and parameters of RFC 3103 (sections
//! 8 and 9, Appendices A and B) and RFC 3104 (section 6.2, Appendices B and C),
//! and the framing of messages on TCP.
//!
//! This module owns the bytes only: it never decides whether a host may
//! register or which address it gets (that is the gateway/host engines'
//! business); the crate's no-panic contract ([crate docs](crate)) holds.
//!
//! - [`Message`] holds a message type and its parameters in wire order;
//!   [`Message::parse`] / [`Message::emit`] are exact mirrors (emit(parse(x))
//!   == x byte for byte) and every `Message` satisfies its section 9 BNF.
//! - [`DecodeError`] names the RFC 3103 Appendix A code a gateway must answer
//!   with, the offset, and the message counter / client ID / bind ID salvaged
//!   for that answer ([`DecodeError::error_response`]).
//! - [`StreamDecoder`] cuts a TCP stream into messages with a bounded buffer.
//!
//! Decoding checks, first failure wins: version (106), header and overall
//! length (207), message type (206), parameter framing (207), each parameter's
//! value (205), then the section 9 BNF in wire order (201-205; see the
//! `grammar` module for which condition gets which code).
//!
//! Interpretations of the RFC where its text is ambiguous are listed in
//! `docs/deviations.md` (section "RSIP wire format").

pub mod appendix_c;
mod error;
mod grammar;
mod message;
mod param;
mod stream;
mod types;
mod vocab;

#[cfg(test)]
mod tests;

pub use error::{DecodeError, DecodeErrorKind};
pub use message::{Flow, FlowView, Grant, Message, QueryTuple, RequestOptions, View};
pub use param::{
    Address, Authentication, FlowPolicy, Indicator, PARAM_HEADER_LEN, Parameter, Ports, Spis,
    VendorSpecific,
};
pub use stream::{FrameError, StreamDecoder};
pub use types::{
    AddrType, BindId, ClientId, ErrorCode, LocalFlowPolicy, MessageType, ParamType,
    RemoteFlowPolicy, RsipMethod, Spi, TunnelType,
};
pub use vocab::{BindingKind, Method, Transport, TunnelKind};

/// The RSIP version this crate speaks (RFC 3103 9).
pub const VERSION: u8 = 1;

/// Bytes of the message header: version, message type, overall length.
pub const HEADER_LEN: usize = 4;

/// The RSIP port, TCP and UDP (RFC 3103 12).
pub const PORT: u16 = 4555;
