//! Why an RSIP message was refused, as the Appendix A code a gateway answers with.

use serde::Serialize;
use thiserror::Error;

use super::types::{BindId, ClientId, ErrorCode, MessageType, ParamType};

/// A message that could not be decoded or built, with what a gateway needs to
/// answer it: the Appendix A [`code`](DecodeError::code), the absolute byte
/// offset where the problem lies, and what could be salvaged from the message
/// before the problem.
///
/// RFC 3103 9.1.1: an ERROR_RESPONSE about a client or binding MUST carry its
/// client ID / bind ID; over UDP the reply echoes the message counter (10.1).
/// [`DecodeError::error_response`] builds that answer. RFC 3103 9.1.3: a *host*
/// that fails to decode a gateway's message discards it silently instead.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("{kind} (offset {offset})")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// Absolute offset in the message of the byte, field or parameter at fault
    /// (for a message being built, the offset it would have had on the wire).
    pub offset: usize,
    /// The message type byte, if the message was long enough to have one.
    pub msg_type: Option<MessageType>,
    /// The first well-formed Message Counter (4-byte value) found.
    pub message_counter: Option<u32>,
    /// The first well-formed Client ID found.
    pub client_id: Option<ClientId>,
    /// The first well-formed Bind ID found.
    pub bind_id: Option<BindId>,
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError {
            kind,
            offset,
            msg_type: None,
            message_counter: None,
            client_id: None,
            bind_id: None,
        }
    }

    /// The RFC 3103 Appendix A code a gateway answers this failure with.
    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }

    /// The absolute byte offset of the fault.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// The failures of RSIP decoding and validation. Each maps to exactly one
/// RFC 3103 Appendix A code ([`DecodeErrorKind::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// 106 UNSUPPORTED_RSIP_VERSION: the version byte is not 1 (RFC 3103 9).
    #[error("RSIP version {0} is not supported (only version 1 is defined)")]
    UnsupportedVersion(u8),

    /// 207 BAD_MESSAGE: fewer than the 4 header bytes.
    #[error("message header truncated: {have} of 4 bytes")]
    TruncatedHeader {
        /// Bytes present.
        have: usize,
    },
    /// 207 BAD_MESSAGE: the overall length field disagrees with the bytes
    /// received (too few, or trailing bytes after the message).
    #[error("overall length field says {declared} bytes but {actual} were received")]
    LengthMismatch {
        /// The overall length field.
        declared: u16,
        /// The bytes received.
        actual: usize,
    },
    /// 207 BAD_MESSAGE: a parameter header (type and length, 3 bytes) cut short.
    #[error("parameter header truncated: {have} of 3 bytes left at the end of the message")]
    TruncatedParamHeader {
        /// Bytes left.
        have: usize,
    },
    /// 207 BAD_MESSAGE: a parameter's length runs past the end of the message.
    #[error("{param} parameter declares {declared} value bytes but only {have} remain")]
    TruncatedParamValue {
        /// The parameter's type.
        param: ParamType,
        /// Its length field.
        declared: u16,
        /// The bytes left in the message.
        have: usize,
    },
    /// 207 BAD_MESSAGE: a message being built would not fit the 16-bit
    /// overall length field.
    #[error("message would be {len} bytes; the overall length field holds at most 65535")]
    MessageTooLong {
        /// The length the message would have.
        len: usize,
    },

    /// 206 ILLEGAL_MESSAGE: a message type this implementation does not know
    /// (RFC 3103 Appendix A: "neither mandatory nor optional").
    #[error("unknown message type {0}")]
    IllegalMessage(u8),

    /// 204 ILLEGAL_PARAM: a parameter type this implementation does not know.
    #[error("unknown parameter type {0}")]
    IllegalParam(u8),

    /// 205 BAD_PARAM: a parameter is malformed (wrong length for its type,
    /// count 0, ranges past 65535 or 2^32-1, count/fields mismatch), or holds
    /// a value its position forbids (e.g. an FQDN as a local address).
    #[error("malformed {param} parameter: {reason}")]
    BadParam {
        /// The parameter's type.
        param: ParamType,
        /// What was wrong.
        reason: &'static str,
    },

    /// 201 MISSING_PARAM: a required parameter is not at its place in the BNF
    /// (RFC 3103 9: required parameters MUST appear in the exact order).
    #[error("{msg_type} needs {expected} here, found {}", found_name(.found))]
    MissingParam {
        /// The message type.
        msg_type: MessageType,
        /// The parameter the BNF requires here, as the RFC names it
        /// (e.g. "Ports (local)").
        expected: &'static str,
        /// What was there instead (`None`: the message ended).
        found: Option<ParamType>,
    },

    /// 202 DUPLICATE_PARAM: a parameter type this message allows appears more
    /// often than its BNF allows (RFC 3103 9: "Most parameters are only allowed
    /// to appear once").
    #[error("{msg_type} allows no further {param} parameter")]
    DuplicateParam {
        /// The message type.
        msg_type: MessageType,
        /// The repeated parameter.
        param: ParamType,
    },

    /// 203 EXTRA_PARAM: a known parameter type this message's BNF does not
    /// contain at all.
    #[error("{param} parameter is not allowed in {msg_type}")]
    ExtraParam {
        /// The message type.
        msg_type: MessageType,
        /// The parameter that should not be there.
        param: ParamType,
    },
}

fn found_name(found: &Option<ParamType>) -> String {
    match found {
        Some(p) => format!("{p} parameter"),
        None => "the end of the message".to_owned(),
    }
}

impl DecodeErrorKind {
    /// The RFC 3103 Appendix A code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeErrorKind::UnsupportedVersion(_) => ErrorCode::UnsupportedRsipVersion,
            DecodeErrorKind::TruncatedHeader { .. }
            | DecodeErrorKind::LengthMismatch { .. }
            | DecodeErrorKind::TruncatedParamHeader { .. }
            | DecodeErrorKind::TruncatedParamValue { .. }
            | DecodeErrorKind::MessageTooLong { .. } => ErrorCode::BadMessage,
            DecodeErrorKind::IllegalMessage(_) => ErrorCode::IllegalMessage,
            DecodeErrorKind::IllegalParam(_) => ErrorCode::IllegalParam,
            DecodeErrorKind::BadParam { .. } => ErrorCode::BadParam,
            DecodeErrorKind::MissingParam { .. } => ErrorCode::MissingParam,
            DecodeErrorKind::DuplicateParam { .. } => ErrorCode::DuplicateParam,
            DecodeErrorKind::ExtraParam { .. } => ErrorCode::ExtraParam,
        }
    }
}
