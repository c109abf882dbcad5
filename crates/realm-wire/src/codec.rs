//! Cursor-based reading and writing of big-endian wire fields.
//!
//! Every parser in this crate reads through a [`Reader`]: `take`, `sub` and
//! [`Reader::expect_end`] make TLV chains and payload chains safe by
//! construction (no index can go out of bounds, and leftover bytes are an
//! error the caller chooses how to report). Writing appends to a `Vec<u8>`
//! through [`Writer`].
//!
//! The zero-copy views (`ipv4::Packet`, `udp::Packet`, ...) read and write
//! their fixed-offset fields in place through this module's field helpers:
//! out of the buffer they read 0 and write nothing, so a view's accessor
//! never panics whatever its buffer (the crate contract, see the crate docs).

use crate::Error;

/// A cursor over a borrowed byte slice. Never panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the outermost buffer, so errors can name an
    /// absolute offset even from a sub-reader.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`, at offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next byte to be read (relative to the outermost buffer).
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Consumes and returns every unread byte.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.peek_rest();
        self.pos = self.buf.len();
        rest
    }

    /// Consumes `n` bytes, or fails with [`Error::Truncated`] naming `what`.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Error::Truncated {
                what,
                offset: self.offset(),
                need: n,
                have: self.remaining(),
            })?;
        let out = self.buf.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        Ok(out)
    }

    /// Consumes `len` bytes and returns a reader over just them (for a TLV value
    /// or a payload body). Offsets in errors from the sub-reader stay absolute.
    pub fn sub(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>, Error> {
        let base = self.offset();
        let buf = self.take(len, what)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Fails with [`Error::Trailing`] if any byte is left unread.
    pub fn expect_end(&self, what: &'static str) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Trailing {
                what,
                offset: self.offset(),
                count: self.remaining(),
            })
        }
    }
}

/// Big-endian appends to a byte vector. Appending never fails; a `Repr`
/// whose public fields may hold a value that does not fit its wire field
/// (a 16-bit length, say) checks that in its own `emit` and returns a `Result`.
pub trait Writer {
    /// Appends one byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends raw bytes.
    fn put_slice(&mut self, v: &[u8]);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_slice(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
}

/// The big-endian `u16` at `at`, or 0 if the buffer ends before it.
#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map_or(0, |b| u16::from_be_bytes(*b))
}

/// The big-endian `u32` at `at`, or 0 if the buffer ends before it.
#[inline]
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map_or(0, |b| u32::from_be_bytes(*b))
}

/// Writes `value` big-endian at `at`; does nothing if the buffer ends before it.
#[inline]
pub(crate) fn set_u16(buf: &mut [u8], at: usize, value: u16) {
    set_bytes(buf, at, &value.to_be_bytes());
}

/// Writes `value` big-endian at `at`; does nothing if the buffer ends before it.
#[inline]
pub(crate) fn set_u32(buf: &mut [u8], at: usize, value: u32) {
    set_bytes(buf, at, &value.to_be_bytes());
}

/// Copies `value` to `at`; does nothing if the buffer ends before its end.
#[inline]
pub(crate) fn set_bytes(buf: &mut [u8], at: usize, value: &[u8]) {
    if let Some(b) = at
        .checked_add(value.len())
        .and_then(|end| buf.get_mut(at..end))
    {
        b.copy_from_slice(value);
    }
}

/// Fails with [`Error::Truncated`] (at offset 0) unless `buf` holds at least
/// the `len` bytes of a fixed header: the first check of every view's `check_len`.
#[inline]
pub(crate) fn check_header(buf: &[u8], len: usize, what: &'static str) -> Result<(), Error> {
    if buf.len() < len {
        return Err(Error::Truncated {
            what,
            offset: 0,
            need: len,
            have: buf.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_reports_truncation_with_offset() {
        let bytes = [1u8, 0, 2, 0, 0, 0, 3, 9];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 2);
        assert_eq!(r.u32("c").unwrap(), 3);
        assert_eq!(r.offset(), 7);
        let err = r.u16("d").unwrap_err();
        assert_eq!(
            err,
            Error::Truncated {
                what: "d",
                offset: 7,
                need: 2,
                have: 1
            }
        );
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn sub_reader_keeps_absolute_offsets_and_detects_trailing_bytes() {
        let bytes = [0u8, 0, 0xaa, 0xbb, 0xcc, 7];
        let mut r = Reader::new(&bytes);
        r.take(2, "hdr").unwrap();
        let mut sub = r.sub(3, "value").unwrap();
        assert_eq!(sub.u8("x").unwrap(), 0xaa);
        assert_eq!(
            sub.expect_end("value"),
            Err(Error::Trailing {
                what: "value",
                offset: 3,
                count: 2
            })
        );
        assert_eq!(r.u8("after").unwrap(), 7);
        assert!(r.expect_end("all").is_ok());
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("a").unwrap();
        assert!(r.take(usize::MAX, "big").is_err());
        assert!(r.sub(usize::MAX, "big").is_err());
        assert_eq!(r.remaining(), 2);
    }

    #[test]
    fn field_helpers_are_big_endian_and_never_panic() {
        let mut buf = [0u8; 6];
        set_u16(&mut buf, 0, 0x0102);
        set_u32(&mut buf, 2, 0x0304_0506);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
        assert_eq!(get_u16(&buf, 4), 0x0506);
        assert_eq!(get_u32(&buf, 1), 0x0203_0405);
        // Out of the buffer: read 0, write nothing.
        assert_eq!(get_u16(&buf, 5), 0);
        assert_eq!(get_u32(&buf, usize::MAX), 0);
        set_u32(&mut buf, 4, 0xffff_ffff);
        set_bytes(&mut buf, usize::MAX, &[9]);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
        assert!(check_header(&buf, 6, "h").is_ok());
        assert_eq!(
            check_header(&buf[..5], 6, "h"),
            Err(Error::Truncated {
                what: "h",
                offset: 0,
                need: 6,
                have: 5
            })
        );
    }

    #[test]
    fn writer_is_big_endian() {
        let mut v = Vec::new();
        v.put_u8(1);
        v.put_u16(0x0203);
        v.put_u32(0x0405_0607);
        v.put_slice(&[8]);
        assert_eq!(v, [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
