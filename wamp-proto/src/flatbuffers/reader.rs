//! Bounds-checked Flatbuffers table access.
//!
//! Every read validates offsets and lengths against the buffer before it
//! touches a byte, so hostile input yields a [`DecodeError`], never a panic.
//! Nothing is allocated and nothing recurses: WAMP tables nest at most three
//! levels (message container, message, `Principal`), and every vector walk is
//! bounded by the buffer length.

use std::ops::Range;

use crate::error::DecodeError;

pub(crate) fn malformed(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed { format: "flatbuffers", detail: detail.into() }
}

fn slice(buf: &[u8], at: usize, n: usize) -> Result<&[u8], DecodeError> {
    at.checked_add(n)
        .and_then(|end| buf.get(at..end))
        .ok_or_else(|| malformed(format!("offset {at} (+{n}) out of bounds")))
}

fn read_u16(buf: &[u8], at: usize) -> Result<u16, DecodeError> {
    let b = slice(buf, at, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn read_u32(buf: &[u8], at: usize) -> Result<u32, DecodeError> {
    let b = slice(buf, at, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Follows the `uoffset` stored at `at`.
fn deref(buf: &[u8], at: usize) -> Result<usize, DecodeError> {
    let off = read_u32(buf, at)? as usize;
    at.checked_add(off).filter(|&p| p < buf.len()).ok_or_else(|| malformed("offset out of bounds"))
}

/// A validated table inside a buffer.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vt: usize,
    vt_len: usize,
}

impl<'a> Table<'a> {
    /// The root table of a finished buffer.
    pub(crate) fn root(buf: &'a [u8]) -> Result<Table<'a>, DecodeError> {
        let pos = deref(buf, 0)?;
        Table::at(buf, pos)
    }

    fn at(buf: &'a [u8], pos: usize) -> Result<Table<'a>, DecodeError> {
        let so = read_u32(buf, pos)? as i32 as i64;
        let vt = pos as i64 - so;
        if vt < 0 {
            return Err(malformed("vtable offset out of bounds"));
        }
        let vt = vt as usize;
        let vt_len = read_u16(buf, vt)? as usize;
        let tbl_len = read_u16(buf, vt + 2)? as usize;
        if vt_len < 4 || !vt_len.is_multiple_of(2) {
            return Err(malformed("bad vtable size"));
        }
        slice(buf, vt, vt_len)?;
        if tbl_len < 4 {
            return Err(malformed("bad table size"));
        }
        slice(buf, pos, tbl_len)?;
        Ok(Table { buf, pos, vt, vt_len })
    }

    /// Absolute position of field `slot`, if present.
    fn field(&self, slot: usize, size: usize) -> Result<Option<usize>, DecodeError> {
        let e = 4 + 2 * slot;
        if e + 2 > self.vt_len {
            return Ok(None);
        }
        let o = read_u16(self.buf, self.vt + e)? as usize;
        if o == 0 {
            return Ok(None);
        }
        let p = self.pos + o;
        slice(self.buf, p, size)?;
        Ok(Some(p))
    }

    /// A scalar `u64` field (0 if absent).
    pub(crate) fn u64(&self, slot: usize) -> Result<u64, DecodeError> {
        Ok(match self.field(slot, 8)? {
            Some(p) => {
                let b = slice(self.buf, p, 8)?;
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            None => 0,
        })
    }

    /// A scalar `u32` field (0 if absent).
    pub(crate) fn u32(&self, slot: usize) -> Result<u32, DecodeError> {
        Ok(match self.field(slot, 4)? {
            Some(p) => read_u32(self.buf, p)?,
            None => 0,
        })
    }

    /// A scalar `u16` field (0 if absent).
    pub(crate) fn u16(&self, slot: usize) -> Result<u16, DecodeError> {
        Ok(match self.field(slot, 2)? {
            Some(p) => read_u16(self.buf, p)?,
            None => 0,
        })
    }

    /// A scalar `u8` field (`default` if absent).
    pub(crate) fn u8(&self, slot: usize, default: u8) -> Result<u8, DecodeError> {
        Ok(match self.field(slot, 1)? {
            Some(p) => self.buf[p],
            None => default,
        })
    }

    /// A `bool` field (`default` if absent).
    pub(crate) fn bool(&self, slot: usize, default: bool) -> Result<bool, DecodeError> {
        Ok(self.u8(slot, default as u8)? != 0)
    }

    /// `(start, len)` of the vector in field `slot`, elements of `elem` bytes.
    fn vector(&self, slot: usize, elem: usize) -> Result<Option<(usize, usize)>, DecodeError> {
        let Some(p) = self.field(slot, 4)? else {
            return Ok(None);
        };
        let v = deref(self.buf, p)?;
        let n = read_u32(self.buf, v)? as usize;
        let start = v + 4;
        let bytes = n.checked_mul(elem).ok_or_else(|| malformed("vector too long"))?;
        slice(self.buf, start, bytes)?;
        Ok(Some((start, n)))
    }

    /// Byte range of a `[ubyte]` field.
    pub(crate) fn bytes(&self, slot: usize) -> Result<Option<Range<usize>>, DecodeError> {
        Ok(self.vector(slot, 1)?.map(|(s, n)| s..s + n))
    }

    /// A string field.
    pub(crate) fn str(&self, slot: usize) -> Result<Option<&'a str>, DecodeError> {
        let Some(p) = self.field(slot, 4)? else {
            return Ok(None);
        };
        str_at(self.buf, deref(self.buf, p)?).map(Some)
    }

    /// A sub-table field.
    pub(crate) fn table(&self, slot: usize) -> Result<Option<Table<'a>>, DecodeError> {
        let Some(p) = self.field(slot, 4)? else {
            return Ok(None);
        };
        Table::at(self.buf, deref(self.buf, p)?).map(Some)
    }

    /// A `[uint64]` field.
    pub(crate) fn u64s(&self, slot: usize) -> Result<Option<impl Iterator<Item = u64> + 'a>, DecodeError> {
        let buf = self.buf;
        Ok(self.vector(slot, 8)?.map(move |(s, n)| {
            (0..n).map(move |i| {
                let b = &buf[s + 8 * i..s + 8 * i + 8];
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            })
        }))
    }

    /// Number of elements and start of a vector of offsets (strings, tables).
    fn offsets(&self, slot: usize) -> Result<Option<(usize, usize)>, DecodeError> {
        self.vector(slot, 4)
    }

    /// A `[string]` field, collected (bounded by the buffer size).
    pub(crate) fn strs(&self, slot: usize) -> Result<Option<Vec<&'a str>>, DecodeError> {
        let Some((s, n)) = self.offsets(slot)? else {
            return Ok(None);
        };
        (0..n).map(|i| str_at(self.buf, deref(self.buf, s + 4 * i)?)).collect::<Result<_, _>>().map(Some)
    }

    /// A `[Table]` field, collected (bounded by the buffer size).
    pub(crate) fn tables(&self, slot: usize) -> Result<Option<Vec<Table<'a>>>, DecodeError> {
        let Some((s, n)) = self.offsets(slot)? else {
            return Ok(None);
        };
        (0..n).map(|i| Table::at(self.buf, deref(self.buf, s + 4 * i)?)).collect::<Result<_, _>>().map(Some)
    }
}

fn str_at(buf: &[u8], v: usize) -> Result<&str, DecodeError> {
    let n = read_u32(buf, v)? as usize;
    let b = slice(buf, v + 4, n)?;
    std::str::from_utf8(b).map_err(|_| malformed("string is not valid UTF-8"))
}
