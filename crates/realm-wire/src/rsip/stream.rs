//! Framing of RSIP messages on a TCP stream (RFC 3103 9: messages follow one
//! another, each delimited by its overall length field).

use thiserror::Error;

use super::HEADER_LEN;
use super::types::ErrorCode;

/// Splits a TCP byte stream into RSIP messages, driven by the overall length
/// field, with a bounded buffer.
///
/// The buffer never holds more than `max_message_len` bytes:
/// [`StreamDecoder::push`] accepts only what fits and says how much it took,
/// so the caller alternates `push` and [`StreamDecoder::next_frame`] until its
/// read is consumed. Since a valid frame is at most `max_message_len` bytes, a
/// full buffer always yields a frame or an error, so this never stalls.
///
/// A [`FrameError`] is fatal: with a bogus length the stream cannot be
/// resynchronised, so **the connection must be closed** (after, if wanted, an
/// ERROR_RESPONSE with [`FrameError::code`], BAD_MESSAGE). The decoder then
/// keeps returning the same error. A frame that is well delimited but invalid
/// ([`super::Message::parse`] fails) is not fatal: answer it and go on.
///
/// ```
/// use realm_wire::rsip::{Message, StreamDecoder};
///
/// let mut dec = StreamDecoder::new(1024);
/// let stream = [Message::register_request(None).to_bytes(), Message::register_request(Some(7)).to_bytes()].concat();
/// let mut got = Vec::new();
/// for read in stream.chunks(3) {            // what the socket returned
///     let mut read = read;
///     while !read.is_empty() {
///         let n = dec.push(read);
///         read = &read[n..];
///         while let Some(frame) = dec.next_frame()? {
///             got.push(Message::parse(frame).expect("valid"));
///         }
///     }
/// }
/// assert_eq!(got.len(), 2);
/// assert_eq!(got[1].message_counter(), Some(7));
/// # Ok::<(), realm_wire::rsip::FrameError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet returned as frames.
    start: usize,
    max: usize,
    failed: Option<FrameError>,
}

/// A fatal framing error on an RSIP TCP stream: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// An overall length below the 4 header bytes.
    #[error("overall length {declared} is shorter than the 4-byte message header")]
    LengthTooSmall {
        /// The overall length field.
        declared: u16,
    },
    /// An overall length above the configured maximum.
    #[error("overall length {declared} exceeds the maximum message size of {max} bytes")]
    TooLong {
        /// The overall length field.
        declared: u16,
        /// The configured maximum.
        max: usize,
    },
}

impl FrameError {
    /// The Appendix A code for a framing failure: BAD_MESSAGE (207).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadMessage
    }
}

impl StreamDecoder {
    /// A decoder refusing messages longer than `max_message_len` bytes (which
    /// is also its buffer bound). Clamped to 4..=65535, the range the overall
    /// length field can express.
    pub fn new(max_message_len: usize) -> StreamDecoder {
        let max = max_message_len.clamp(HEADER_LEN, usize::from(u16::MAX));
        StreamDecoder {
            buf: Vec::new(),
            start: 0,
            max,
            failed: None,
        }
    }

    /// The maximum message size.
    pub fn max_message_len(&self) -> usize {
        self.max
    }

    /// Bytes received but not yet returned as frames (non-zero at end of
    /// stream means the peer closed mid-message).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends as much of `data` as the buffer bound allows and returns how
    /// many bytes it took (0 when full: call [`StreamDecoder::next_frame`]).
    #[must_use = "push may take only part of the data"]
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let n = data.len().min(self.max.saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(data.get(..n).unwrap_or(&[]));
        n
    }

    /// The next complete message's bytes, `Ok(None)` when more bytes are
    /// needed, or a fatal [`FrameError`].
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let pending = self.buf.get(self.start..).unwrap_or(&[]);
        let declared = match pending {
            [_, _, hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => return Ok(None),
        };
        let len = usize::from(declared);
        let err = if len < HEADER_LEN {
            Some(FrameError::LengthTooSmall { declared })
        } else if len > self.max {
            Some(FrameError::TooLong {
                declared,
                max: self.max,
            })
        } else {
            None
        };
        if let Some(e) = err {
            self.failed = Some(e);
            return Err(e);
        }
        let start = self.start;
        match self.buf.get(start..start + len) {
            Some(frame) => {
                self.start += len;
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }
}
