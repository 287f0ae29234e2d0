//! The bounds-checked byte cursor shared by the MessagePack and CBOR
//! decoders. Every read is checked against the end of the buffer and fails
//! with a `DecodeError` naming the format, never a panic.

use crate::error::DecodeError;

/// A cursor over a received buffer.
pub(crate) struct ByteReader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
    format: &'static str,
}

impl<'a> ByteReader<'a> {
    /// A cursor at the start of `buf`; errors name `format`.
    pub(crate) fn new(buf: &'a [u8], format: &'static str) -> Self {
        ByteReader { buf, pos: 0, format }
    }

    /// A `Malformed` error for this format.
    pub(crate) fn mal(&self, detail: impl Into<String>) -> DecodeError {
        DecodeError::Malformed { format: self.format, detail: detail.into() }
    }

    /// The next byte.
    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.mal("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.buf.len() - self.pos;
        if n > remaining {
            return Err(self.mal(format!("length {n} exceeds the remaining {remaining} bytes")));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `N` bytes as an array (for big-endian integers).
    pub(crate) fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}
