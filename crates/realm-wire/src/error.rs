//! The error type shared by the packet-header parsers (IP, tunnels, ESP, AH,
//! ISAKMP). RSIP has its own error ([`crate::rsip::DecodeError`]) because
//! each RSIP failure must map to one RFC 3103 Appendix A code.

use thiserror::Error;

/// Why a header or packet could not be parsed. Every variant names the
/// structure (`what`) and the absolute byte offset where parsing stopped, so
/// `realm decode` can point at the bad byte.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than the structure needs.
    #[error("{what} truncated at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// Bytes left over after a structure that must fill its buffer exactly.
    #[error("{count} trailing bytes after {what} at offset {offset}")]
    Trailing {
        what: &'static str,
        offset: usize,
        count: usize,
    },
    /// A field holds a value the format forbids.
    #[error("{what} at offset {offset}: {reason}")]
    Malformed {
        what: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// A checksum did not verify.
    #[error("{what}: bad checksum")]
    Checksum { what: &'static str },
}

impl Error {
    /// The absolute offset where parsing stopped, where the variant has one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Error::Truncated { offset, .. }
            | Error::Trailing { offset, .. }
            | Error::Malformed { offset, .. } => Some(*offset),
            Error::Checksum { .. } => None,
        }
    }

    /// Moves the offset by `base`: for a structure parsed from a buffer that
    /// starts inside another (a tunnel's inner packet, an ICMP error's
    /// invoking packet, an ISAKMP payload body), so offsets stay absolute.
    pub(crate) fn shifted(self, base: usize) -> Error {
        match self {
            Error::Truncated {
                what,
                offset,
                need,
                have,
            } => Error::Truncated {
                what,
                offset: offset + base,
                need,
                have,
            },
            Error::Trailing {
                what,
                offset,
                count,
            } => Error::Trailing {
                what,
                offset: offset + base,
                count,
            },
            Error::Malformed {
                what,
                offset,
                reason,
            } => Error::Malformed {
                what,
                offset: offset + base,
                reason,
            },
            Error::Checksum { what } => Error::Checksum { what },
        }
    }
}
