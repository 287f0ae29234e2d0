//! The MessagePack serializer (`wamp.2.msgpack`), byte-compatible with
//! Autobahn|Python (`msgpack.packb(obj, use_bin_type=True)`).
//!
//! Encoding always picks the smallest representation (positive/negative
//! fixint, then 8/16/32/64-bit integers; fixstr/str8/16/32; bin8/16/32;
//! fixarray/array16/32; fixmap/map16/32); floats are float64, as Python
//! writes them. Decoding accepts every MessagePack type except extension
//! types, validates UTF-8 of strings, requires string keys in maps, enforces
//! [`crate::MAX_DEPTH`] and bounds every allocation by the input size.
//!
//! The one extension value understood is JavaScript `undefined` as msgpackr
//! (wampy.js) writes it: fixext1, type 0, body `00` (`d4 00 00`). As a dict
//! value inside a message's Details/Options/Extra dict it means "key absent"
//! and the entry is dropped; anywhere else it is a
//! [`DecodeError::Undefined`] (in args/kwargs it fails the message as every
//! extension type does, see [`crate::wire`]).

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::message::Message;
use crate::payload::PayloadFormat;
use crate::reader::ByteReader;
use crate::value::{Dict, List, Value};
use crate::wire::{self, PayloadElem, WireReader, WireWriter};
use crate::MAX_DEPTH;

const FORMAT: &str = "msgpack";

fn mal(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed { format: FORMAT, detail: detail.into() }
}

/// Encodes a message.
pub fn encode(msg: &Message) -> Result<Bytes, EncodeError> {
    wire::encode_exact(msg, encode_into)
}

/// Encodes a message, appending to `out` (no intermediate buffer).
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let mut w = MsgWriter { out: std::mem::take(out) };
    let r = wire::encode_message(&mut w, msg);
    *out = w.out;
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Decodes a message, leaving args/kwargs as raw spans.
pub fn decode(bytes: &Bytes) -> Result<Message, DecodeError> {
    let mut r = MsgReader { rd: Reader(ByteReader::new(bytes, FORMAT)), remaining: 0 };
    wire::decode_message(&mut r, bytes, PayloadFormat::Msgpack)
}

/// Encodes one value, appending to `out`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_value(v, out, 0)
}

/// Decodes exactly one value (trailing bytes are an error).
pub fn decode_value(bytes: &Bytes) -> Result<Value, DecodeError> {
    let mut rd = Reader(ByteReader::new(bytes, FORMAT));
    let v = rd.value(0, Some(bytes), false)?;
    rd.finish()?;
    Ok(v)
}

// ---------------------------------------------------------------------------
// Reading

/// The head of one MessagePack item.
enum Head {
    Nil,
    Bool(bool),
    UInt(u64),
    /// Always negative.
    Int(i64),
    Float(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    /// JavaScript `undefined` (`d4 00 00`).
    Undefined,
}

/// Where an `undefined` was found (the `place` of [`DecodeError::Undefined`]).
const IN_APP_DATA: &str = "in application data (args/kwargs)";
const IN_OPTIONS_LIST: &str = "as a list element in a Details/Options dict";

/// The shared byte cursor plus this format's own reads.
struct Reader<'a>(ByteReader<'a>);

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = ByteReader<'a>;
    fn deref(&self) -> &ByteReader<'a> {
        &self.0
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(self.byte()?))
    }
    fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }
    fn u32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| mal("length too large"))
    }

    fn head(&mut self) -> Result<Head, DecodeError> {
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => Head::UInt(u64::from(b)),
            0x80..=0x8f => Head::Map(usize::from(b & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(b & 0x0f)),
            0xa0..=0xbf => Head::Str(usize::from(b & 0x1f)),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => Head::Bin(self.u8()?),
            0xc5 => Head::Bin(self.u16()?),
            0xc6 => Head::Bin(self.u32()?),
            0xca => Head::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Head::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Head::UInt(u64::from(self.byte()?)),
            0xcd => Head::UInt(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => Head::UInt(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Head::UInt(u64::from_be_bytes(self.be()?)),
            0xd0 => int(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => int(i64::from_be_bytes(self.be()?)),
            0xd9 => Head::Str(self.u8()?),
            0xda => Head::Str(self.u16()?),
            0xdb => Head::Str(self.u32()?),
            0xdc => Head::Array(self.u16()?),
            0xdd => Head::Array(self.u32()?),
            0xde => Head::Map(self.u16()?),
            0xdf => Head::Map(self.u32()?),
            0xe0..=0xff => Head::Int(i64::from(b as i8)),
            0xd4 => match self.be::<2>()? {
                [0x00, 0x00] => Head::Undefined,
                _ => return Err(mal("extension types are not supported")),
            },
            0xc7..=0xc9 | 0xd5..=0xd8 => return Err(mal("extension types are not supported")),
            0xc1 => return Err(mal("invalid type byte 0xc1")),
        })
    }

    fn str(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        let s = self.take(len)?;
        std::str::from_utf8(s).map_err(|_| mal("string is not valid UTF-8"))
    }

    /// Reads one value. `src`, if given, is the buffer as `Bytes` so binary
    /// values can be zero-copy slices. `options`: inside a Details/Options
    /// dict, where `undefined` dict values mean "absent" (dropped).
    fn value(&mut self, depth: usize, src: Option<&Bytes>, options: bool) -> Result<Value, DecodeError> {
        match self.item(depth, src, options)? {
            Some(v) => Ok(v),
            None => Err(DecodeError::Undefined {
                format: FORMAT,
                place: if options { IN_OPTIONS_LIST } else { IN_APP_DATA },
            }),
        }
    }

    /// Like [`Self::value`], `None` for `undefined`.
    fn item(&mut self, depth: usize, src: Option<&Bytes>, options: bool) -> Result<Option<Value>, DecodeError> {
        Ok(Some(match self.head()? {
            Head::Undefined => return Ok(None),
            Head::Nil => Value::Null,
            Head::Bool(b) => Value::Bool(b),
            Head::UInt(u) => Value::UInt(u),
            Head::Int(i) => Value::Int(i),
            Head::Float(f) => Value::Float(f),
            Head::Str(n) => Value::Str(self.str(n)?.to_owned()),
            Head::Bin(n) => {
                let start = self.pos;
                let s = self.take(n)?;
                Value::Bytes(match src {
                    Some(b) => b.slice(start..start + n),
                    None => Bytes::copy_from_slice(s),
                })
            }
            Head::Array(n) => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                // Every item takes at least one byte: bound the reservation.
                let mut l = List::with_capacity(n.min(self.buf.len() - self.pos));
                for _ in 0..n {
                    l.push(self.value(depth + 1, src, options)?);
                }
                Value::List(l)
            }
            Head::Map(n) => Value::Dict(self.dict_body(n, depth, src, options)?),
        }))
    }

    /// The entries of a map of `n` entries. `options`: see [`Self::value`].
    fn dict_body(&mut self, n: usize, depth: usize, src: Option<&Bytes>, options: bool) -> Result<Dict, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        let mut d = Dict::with_capacity(n.min((self.buf.len() - self.pos) / 2));
        for _ in 0..n {
            let key = match self.head()? {
                Head::Str(len) => self.str(len)?.to_owned(),
                _ => return Err(mal("map keys must be strings")),
            };
            match self.item(depth + 1, src, options)? {
                Some(v) => {
                    d.insert(key, v);
                }
                None if options => {}
                None => return Err(DecodeError::Undefined { format: FORMAT, place: IN_APP_DATA }),
            }
        }
        Ok(d)
    }

    /// Validates and skips one value without allocating. Returns the number
    /// of items if it is a list or map. Used for args/kwargs, where every
    /// extension type, `undefined` included, fails the message (as it
    /// always has: the bytes could not be transcoded).
    fn skip(&mut self, depth: usize) -> Result<Head, DecodeError> {
        let h = self.head()?;
        match h {
            Head::Undefined => return Err(DecodeError::Undefined { format: FORMAT, place: IN_APP_DATA }),
            Head::Str(n) => {
                self.str(n)?;
            }
            Head::Bin(n) => {
                self.take(n)?;
            }
            Head::Array(n) => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                for _ in 0..n {
                    self.skip(depth + 1)?;
                }
            }
            Head::Map(n) => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                for _ in 0..n {
                    match self.head()? {
                        Head::Str(len) => {
                            self.str(len)?;
                        }
                        _ => return Err(mal("map keys must be strings")),
                    }
                    self.skip(depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(h)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(mal(format!("{} trailing bytes", self.buf.len() - self.pos)));
        }
        Ok(())
    }
}

fn int(i: i64) -> Head {
    if i >= 0 {
        Head::UInt(i as u64)
    } else {
        Head::Int(i)
    }
}

/// Reads the top-level message array.
struct MsgReader<'a> {
    rd: Reader<'a>,
    remaining: usize,
}

impl WireReader for MsgReader<'_> {
    fn begin(&mut self) -> Result<(), DecodeError> {
        match self.rd.head()? {
            Head::Array(n) => {
                self.remaining = n;
                Ok(())
            }
            _ => Err(DecodeError::Invalid("a WAMP message must be an array".into())),
        }
    }

    fn has_next(&mut self) -> Result<bool, DecodeError> {
        if self.remaining == 0 {
            return Ok(false);
        }
        self.remaining -= 1;
        Ok(true)
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        self.rd.finish()
    }

    fn read_uint(&mut self) -> Result<Option<u64>, DecodeError> {
        match self.rd.head()? {
            Head::UInt(u) => Ok(Some(u)),
            _ => Ok(None),
        }
    }

    fn read_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.rd.head()? {
            Head::Str(n) => Ok(Some(self.rd.str(n)?.to_owned())),
            _ => Ok(None),
        }
    }

    fn read_dict(&mut self) -> Result<Option<Dict>, DecodeError> {
        match self.rd.head()? {
            Head::Map(n) => Ok(Some(self.rd.dict_body(n, 1, None, true)?)),
            _ => Ok(None),
        }
    }

    fn read_payload(&mut self) -> Result<PayloadElem, DecodeError> {
        let start = self.rd.pos;
        let h = self.rd.skip(1)?;
        let span = start..self.rd.pos;
        Ok(match h {
            Head::Array(n) => PayloadElem::List { span, empty: n == 0 },
            Head::Map(n) => PayloadElem::Dict { span, empty: n == 0 },
            Head::Bin(_) => PayloadElem::Binary { span },
            _ => PayloadElem::Other,
        })
    }
}

// ---------------------------------------------------------------------------
// Writing

fn too_long(what: &str, n: usize) -> EncodeError {
    EncodeError::Unrepresentable { format: FORMAT, detail: format!("{what} of length {n} exceeds 2^32-1") }
}

fn write_uint(u: u64, out: &mut Vec<u8>) {
    if u < 0x80 {
        out.push(u as u8);
    } else if u <= 0xff {
        out.extend_from_slice(&[0xcc, u as u8]);
    } else if u <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(u as u16).to_be_bytes());
    } else if u <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(u as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        write_uint(i as u64, out);
    } else if i >= -32 {
        out.push(i as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Writes a length head: `fix` form if `n < fix_max`, else the 8/16/32-bit
/// forms (`m8` = 0 if there is no 8-bit form).
fn write_len(n: usize, fix: u8, fix_max: usize, m8: u8, m16: u8, m32: u8, out: &mut Vec<u8>) -> bool {
    if n < fix_max {
        out.push(fix | n as u8);
    } else if m8 != 0 && n <= 0xff {
        out.extend_from_slice(&[m8, n as u8]);
    } else if n <= 0xffff {
        out.push(m16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(m32);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        return false;
    }
    true
}

fn write_str(s: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if !write_len(s.len(), 0xa0, 32, 0xd9, 0xda, 0xdb, out) {
        return Err(too_long("string", s.len()));
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_bin(b: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    // bin has no fix form: fix_max 0 disables it.
    if !write_len(b.len(), 0, 0, 0xc4, 0xc5, 0xc6, out) {
        return Err(too_long("binary", b.len()));
    }
    out.extend_from_slice(b);
    Ok(())
}

fn write_list(l: &List, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(EncodeError::Unrepresentable {
            format: FORMAT,
            detail: format!("nesting exceeds depth limit {MAX_DEPTH}"),
        });
    }
    if !write_len(l.len(), 0x90, 16, 0, 0xdc, 0xdd, out) {
        return Err(too_long("array", l.len()));
    }
    for v in l {
        write_value(v, out, depth + 1)?;
    }
    Ok(())
}

fn write_dict(d: &Dict, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(EncodeError::Unrepresentable {
            format: FORMAT,
            detail: format!("nesting exceeds depth limit {MAX_DEPTH}"),
        });
    }
    if !write_len(d.len(), 0x80, 16, 0, 0xde, 0xdf, out) {
        return Err(too_long("map", d.len()));
    }
    for (k, v) in d {
        write_str(k, out)?;
        write_value(v, out, depth + 1)?;
    }
    Ok(())
}

fn write_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::UInt(u) => write_uint(*u, out),
        Value::Int(i) => write_int(*i, out),
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => write_str(s, out)?,
        Value::Bytes(b) => write_bin(b, out)?,
        Value::List(l) => write_list(l, out, depth)?,
        Value::Dict(d) => write_dict(d, out, depth)?,
    }
    Ok(())
}

struct MsgWriter {
    out: Vec<u8>,
}

impl WireWriter for MsgWriter {
    const FORMAT: PayloadFormat = PayloadFormat::Msgpack;

    fn begin(&mut self, n: usize) {
        // Messages have at most 7 elements: always a fixarray.
        self.out.push(0x90 | (n as u8 & 0x0f));
    }
    fn end(&mut self) {}
    fn uint(&mut self, v: u64) {
        write_uint(v, &mut self.out);
    }
    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        write_str(s, &mut self.out)
    }
    fn dict(&mut self, d: &Dict) -> Result<(), EncodeError> {
        write_dict(d, &mut self.out, 1)
    }
    fn list(&mut self, l: &List) -> Result<(), EncodeError> {
        write_list(l, &mut self.out, 1)
    }
    fn binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        write_bin(b, &mut self.out)
    }
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_int_and_float_width() {
        let cases: [(&[u8], Value); 8] = [
            (&[0xd0, 0x05], Value::UInt(5)),
            (&[0xd3, 0, 0, 0, 0, 0, 0, 0, 9], Value::UInt(9)),
            (&[0xd1, 0xff, 0x7f], Value::Int(-129)),
            (&[0xff], Value::Int(-1)),
            (&[0xca, 0x3f, 0xc0, 0, 0], Value::Float(1.5)),
            (&[0xc0], Value::Null),
            (&[0xd9, 0x01, b'a'], Value::Str("a".into())),
            (&[0xc5, 0x00, 0x01, 0xaa], Value::Bytes(Bytes::from_static(&[0xaa]))),
        ];
        for (b, want) in cases {
            assert_eq!(decode_value(&Bytes::from_static(b)).unwrap(), want, "{b:x?}");
        }
    }

    #[test]
    fn rejects_ext_and_reserved_bytes() {
        for b in [&[0xc1][..], &[0xd4, 0x01, 0x02], &[0xc7, 0x01, 0x01, 0x00], &[0xd8, 0x01]] {
            assert!(decode_value(&Bytes::copy_from_slice(b)).is_err(), "{b:x?}");
        }
    }

    #[test]
    fn binary_values_are_zero_copy() {
        let buf = Bytes::from_static(&[0xc4, 0x03, 1, 2, 3]);
        match decode_value(&buf).unwrap() {
            Value::Bytes(b) => assert_eq!(b.as_ptr(), buf[2..].as_ptr()),
            other => panic!("{other:?}"),
        }
    }
}
