//! The CBOR serializer (`wamp.2.cbor`), byte-compatible with Autobahn|Python
//! (`cbor2.dumps`).
//!
//! Encoding uses the shortest head for every integer and length, definite
//! lengths only, and float64 for floats (NaN and the infinities as the
//! half-precision values cbor2 writes). Decoding also accepts what other
//! peers may send: indefinite-length strings, arrays and maps, half and
//! single precision floats, and tags, which are ignored (the tagged item is
//! used as is). It validates UTF-8, requires text keys in maps, enforces
//! [`crate::MAX_DEPTH`] and bounds every allocation by the input size.
//!
//! `undefined` (simple value 23, `f7`; cbor-x writes it for JavaScript's
//! `undefined`, e.g. wampy.js's `{match: undefined}`) is not a [`Value`]: as
//! a dict value inside a message's Details/Options/Extra dict it means "key
//! absent" and the entry is dropped; anywhere else decoding it is a
//! [`DecodeError::Undefined`]. Args/kwargs are not decoded on the way
//! through, so an `undefined` there reaches CBOR peers verbatim and fails
//! only a transcode to another format.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::message::Message;
use crate::payload::PayloadFormat;
use crate::reader::ByteReader;
use crate::value::{Dict, List, Value};
use crate::wire::{self, PayloadElem, WireReader, WireWriter};
use crate::MAX_DEPTH;

const FORMAT: &str = "cbor";

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
    let mut r = MsgReader { rd: Reader(ByteReader::new(bytes, FORMAT)), remaining: Some(0) };
    wire::decode_message(&mut r, bytes, PayloadFormat::Cbor)
}

/// Encodes one value, appending to `out`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_value(v, out, 0)
}

/// Checks that `bytes` is exactly one well-formed CBOR item, without
/// building it: if `map`, a map (`kwargs`); otherwise an array (`args`) or a
/// byte string (a transparent payload in the args position, which the other
/// decoders accept too). The Flatbuffers decoder keeps args/kwargs as raw
/// CBOR spans that other encoders splice verbatim, so they must be valid.
pub(crate) fn check_payload_span(bytes: &[u8], map: bool) -> Result<(), DecodeError> {
    let mut rd = Reader(ByteReader::new(bytes, FORMAT));
    let (h, _) = rd.skip(1)?;
    rd.finish()?;
    match h {
        Head::Map(_) if map => Ok(()),
        Head::Array(_) | Head::Bytes(_) if !map => Ok(()),
        _ if map => Err(DecodeError::Invalid("ArgumentsKw|dict is not a CBOR map".into())),
        _ => Err(DecodeError::Invalid("Arguments|list is neither a CBOR array nor a byte string".into())),
    }
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

/// The head of one CBOR item (tags already skipped). `None` lengths are
/// indefinite.
#[derive(Clone, Copy)]
enum Head {
    UInt(u64),
    /// The value is `-1 - n`.
    NInt(u64),
    Bytes(Option<usize>),
    Text(Option<usize>),
    Array(Option<usize>),
    Map(Option<usize>),
    Bool(bool),
    Null,
    /// Simple value 23.
    Undefined,
    Float(f64),
    Break,
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

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    match exp {
        0 => sign * mant * 2f64.powi(-24),
        31 if mant == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    }
}

impl<'a> Reader<'a> {
    /// The argument of a head with additional info `info` (`None`: indefinite).
    fn arg(&mut self, info: u8) -> Result<Option<u64>, DecodeError> {
        Ok(Some(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.be()?)),
            26 => u64::from(u32::from_be_bytes(self.be()?)),
            27 => u64::from_be_bytes(self.be()?),
            31 => return Ok(None),
            _ => return Err(mal(format!("reserved additional information {info}"))),
        }))
    }

    fn len(&mut self, info: u8) -> Result<Option<usize>, DecodeError> {
        match self.arg(info)? {
            // Any length beyond the input fails later; clamp instead of erroring here.
            Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            None => Ok(None),
        }
    }

    fn head(&mut self) -> Result<Head, DecodeError> {
        loop {
            let b = self.byte()?;
            let (major, info) = (b >> 5, b & 0x1f);
            return Ok(match major {
                0 => Head::UInt(self.arg(info)?.ok_or_else(|| mal("indefinite-length integer"))?),
                1 => Head::NInt(self.arg(info)?.ok_or_else(|| mal("indefinite-length integer"))?),
                2 => Head::Bytes(self.len(info)?),
                3 => Head::Text(self.len(info)?),
                4 => Head::Array(self.len(info)?),
                5 => Head::Map(self.len(info)?),
                6 => {
                    // A tag: ignored, the tagged item follows.
                    self.arg(info)?.ok_or_else(|| mal("indefinite-length tag"))?;
                    continue;
                }
                _ => match info {
                    20 => Head::Bool(false),
                    21 => Head::Bool(true),
                    22 => Head::Null,
                    23 => Head::Undefined,
                    25 => Head::Float(f16_to_f64(u16::from_be_bytes(self.be()?))),
                    26 => Head::Float(f64::from(f32::from_be_bytes(self.be()?))),
                    27 => Head::Float(f64::from_be_bytes(self.be()?)),
                    31 => Head::Break,
                    _ => return Err(mal(format!("unsupported simple value (additional information {info})"))),
                },
            });
        }
    }

    fn peek_break(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xff) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Visits the chunks of a (possibly indefinite) byte or text string.
    fn chunks(&mut self, len: Option<usize>, text: bool, mut f: impl FnMut(&'a [u8])) -> Result<(), DecodeError> {
        let check = |s: &'a [u8]| -> Result<&'a [u8], DecodeError> {
            if text && std::str::from_utf8(s).is_err() {
                return Err(mal("text string is not valid UTF-8"));
            }
            Ok(s)
        };
        match len {
            Some(n) => f(check(self.take(n)?)?),
            None => loop {
                match self.head()? {
                    Head::Break => break,
                    Head::Bytes(Some(n)) if !text => f(self.take(n)?),
                    Head::Text(Some(n)) if text => f(check(self.take(n)?)?),
                    _ => return Err(mal("invalid chunk in indefinite-length string")),
                }
            },
        }
        Ok(())
    }

    fn text(&mut self, len: Option<usize>) -> Result<String, DecodeError> {
        if let Some(n) = len {
            let s = self.take(n)?;
            return std::str::from_utf8(s).map(str::to_owned).map_err(|_| mal("text string is not valid UTF-8"));
        }
        let mut out = Vec::new();
        self.chunks(None, true, |c| out.extend_from_slice(c))?;
        // Each chunk is valid UTF-8, so the concatenation is too.
        String::from_utf8(out).map_err(|_| mal("text string is not valid UTF-8"))
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
            Head::UInt(u) => Value::UInt(u),
            Head::NInt(n) => Value::Int(nint(n)?),
            Head::Bool(b) => Value::Bool(b),
            Head::Null => Value::Null,
            Head::Float(f) => Value::Float(f),
            Head::Text(len) => Value::Str(self.text(len)?),
            Head::Bytes(Some(n)) => {
                let start = self.pos;
                let s = self.take(n)?;
                Value::Bytes(match src {
                    Some(b) => b.slice(start..start + n),
                    None => Bytes::copy_from_slice(s),
                })
            }
            Head::Bytes(None) => {
                let mut out = Vec::new();
                self.chunks(None, false, |c| out.extend_from_slice(c))?;
                Value::Bytes(Bytes::from(out))
            }
            Head::Array(len) => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                let rest = self.buf.len() - self.pos;
                let mut l = List::with_capacity(len.unwrap_or(0).min(rest));
                match len {
                    Some(n) => {
                        for _ in 0..n {
                            l.push(self.value(depth + 1, src, options)?);
                        }
                    }
                    None => {
                        while !self.peek_break() {
                            l.push(self.value(depth + 1, src, options)?);
                        }
                    }
                }
                Value::List(l)
            }
            Head::Map(len) => Value::Dict(self.dict_body(len, depth, src, options)?),
            Head::Break => return Err(mal("unexpected break")),
        }))
    }

    fn key(&mut self) -> Result<String, DecodeError> {
        match self.head()? {
            Head::Text(len) => self.text(len),
            _ => Err(mal("map keys must be text strings")),
        }
    }

    /// The entries of a map (`None`: indefinite length). `options`: see
    /// [`Self::value`].
    fn dict_body(
        &mut self,
        len: Option<usize>,
        depth: usize,
        src: Option<&Bytes>,
        options: bool,
    ) -> Result<Dict, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        let rest = self.buf.len() - self.pos;
        let mut d = Dict::with_capacity(len.unwrap_or(0).min(rest / 2));
        let mut i = 0usize;
        loop {
            match len {
                Some(n) if i == n => break,
                None if self.peek_break() => break,
                _ => {}
            }
            i += 1;
            let k = self.key()?;
            match self.item(depth + 1, src, options)? {
                Some(v) => {
                    d.insert(k, v);
                }
                None if options => {}
                None => return Err(DecodeError::Undefined { format: FORMAT, place: IN_APP_DATA }),
            }
        }
        Ok(d)
    }

    /// Validates and skips one value without allocating; returns its head
    /// and, for arrays and maps, whether it is empty.
    fn skip(&mut self, depth: usize) -> Result<(Head, bool), DecodeError> {
        let h = self.head()?;
        let mut empty = true;
        match h {
            Head::NInt(n) => {
                nint(n)?;
            }
            Head::Text(len) => self.chunks(len, true, |_| ())?,
            Head::Bytes(len) => self.chunks(len, false, |_| ())?,
            Head::Array(len) | Head::Map(len) => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                let map = matches!(h, Head::Map(_));
                let mut i = 0usize;
                loop {
                    match len {
                        Some(n) if i == n => break,
                        None if self.peek_break() => break,
                        _ => {}
                    }
                    if map {
                        match self.head()? {
                            Head::Text(l) => self.chunks(l, true, |_| ())?,
                            _ => return Err(mal("map keys must be text strings")),
                        }
                    }
                    self.skip(depth + 1)?;
                    empty = false;
                    i += 1;
                }
            }
            Head::Break => return Err(mal("unexpected break")),
            _ => {}
        }
        Ok((h, empty))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(mal(format!("{} trailing bytes", self.buf.len() - self.pos)));
        }
        Ok(())
    }
}

fn nint(n: u64) -> Result<i64, DecodeError> {
    if n > i64::MAX as u64 {
        return Err(mal("negative integer below -2^63"));
    }
    Ok(-1 - n as i64)
}

/// Reads the top-level message array.
struct MsgReader<'a> {
    rd: Reader<'a>,
    /// Elements left; `None` for an indefinite-length array still open.
    remaining: Option<usize>,
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
        match self.remaining {
            Some(0) => Ok(false),
            Some(n) => {
                self.remaining = Some(n - 1);
                Ok(true)
            }
            None => {
                if self.rd.peek_break() {
                    self.remaining = Some(0);
                    Ok(false)
                } else {
                    Ok(true)
                }
            }
        }
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
            Head::Text(len) => Ok(Some(self.rd.text(len)?)),
            _ => Ok(None),
        }
    }

    fn read_dict(&mut self) -> Result<Option<Dict>, DecodeError> {
        match self.rd.head()? {
            Head::Map(len) => Ok(Some(self.rd.dict_body(len, 1, None, true)?)),
            _ => Ok(None),
        }
    }

    fn read_payload(&mut self) -> Result<PayloadElem, DecodeError> {
        let start = self.rd.pos;
        let (h, empty) = self.rd.skip(1)?;
        let span = start..self.rd.pos;
        Ok(match h {
            Head::Array(_) => PayloadElem::List { span, empty },
            Head::Map(_) => PayloadElem::Dict { span, empty },
            Head::Bytes(_) => PayloadElem::Binary { span },
            _ => PayloadElem::Other,
        })
    }
}

// ---------------------------------------------------------------------------
// Writing

fn write_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_text(s: &str, out: &mut Vec<u8>) {
    write_head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn too_deep() -> EncodeError {
    EncodeError::Unrepresentable { format: FORMAT, detail: format!("nesting exceeds depth limit {MAX_DEPTH}") }
}

fn write_list(l: &List, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    write_head(4, l.len() as u64, out);
    for v in l {
        write_value(v, out, depth + 1)?;
    }
    Ok(())
}

fn write_dict(d: &Dict, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    write_head(5, d.len() as u64, out);
    for (k, v) in d {
        write_text(k, out);
        write_value(v, out, depth + 1)?;
    }
    Ok(())
}

fn write_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::UInt(u) => write_head(0, *u, out),
        Value::Int(i) if *i >= 0 => write_head(0, *i as u64, out),
        Value::Int(i) => write_head(1, (-1 - *i) as u64, out),
        Value::Float(f) => {
            if f.is_nan() {
                out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
            } else if f.is_infinite() {
                out.extend_from_slice(if *f > 0.0 { &[0xf9, 0x7c, 0x00] } else { &[0xf9, 0xfc, 0x00] });
            } else {
                out.push(0xfb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::Str(s) => write_text(s, out),
        Value::Bytes(b) => write_bytes(b, out),
        Value::List(l) => write_list(l, out, depth)?,
        Value::Dict(d) => write_dict(d, out, depth)?,
    }
    Ok(())
}

struct MsgWriter {
    out: Vec<u8>,
}

impl WireWriter for MsgWriter {
    const FORMAT: PayloadFormat = PayloadFormat::Cbor;

    fn begin(&mut self, n: usize) {
        write_head(4, n as u64, &mut self.out);
    }
    fn end(&mut self) {}
    fn uint(&mut self, v: u64) {
        write_head(0, v, &mut self.out);
    }
    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        write_text(s, &mut self.out);
        Ok(())
    }
    fn dict(&mut self, d: &Dict) -> Result<(), EncodeError> {
        write_dict(d, &mut self.out, 1)
    }
    fn list(&mut self, l: &List) -> Result<(), EncodeError> {
        write_list(l, &mut self.out, 1)
    }
    fn binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        write_bytes(b, &mut self.out);
        Ok(())
    }
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &[u8]) -> Result<Value, DecodeError> {
        decode_value(&Bytes::copy_from_slice(b))
    }

    #[test]
    fn decodes_what_other_peers_send() {
        // Half and single floats.
        assert_eq!(dec(&[0xf9, 0x3e, 0x00]).unwrap(), Value::Float(1.5));
        assert_eq!(dec(&[0xf9, 0x00, 0x01]).unwrap(), Value::Float(5.960464477539063e-8));
        assert_eq!(dec(&[0xf9, 0xfc, 0x00]).unwrap(), Value::Float(f64::NEG_INFINITY));
        assert_eq!(dec(&[0xfa, 0x3f, 0xc0, 0, 0]).unwrap(), Value::Float(1.5));
        // Indefinite array, map, text and bytes.
        assert_eq!(dec(&[0x9f, 0x01, 0x20, 0xff]).unwrap(), Value::List(vec![Value::UInt(1), Value::Int(-1)]));
        let d = dec(&[0xbf, 0x61, b'a', 0xf5, 0xff]).unwrap();
        assert_eq!(d.as_dict().unwrap()["a"], Value::Bool(true));
        assert_eq!(dec(&[0x7f, 0x61, b'a', 0x62, b'b', b'c', 0xff]).unwrap(), Value::from("abc"));
        assert_eq!(dec(&[0x5f, 0x41, 1, 0x41, 2, 0xff]).unwrap(), Value::Bytes(Bytes::from_static(&[1, 2])));
        // Tags are ignored.
        assert_eq!(dec(&[0xc1, 0x1a, 0, 0, 0, 1]).unwrap(), Value::UInt(1));
        // Negative range.
        assert_eq!(dec(&[0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(), Value::Int(i64::MIN));
    }

    #[test]
    fn rejects_malformed_items() {
        for b in [
            &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // below i64::MIN
            &[0x1c],                                                     // reserved info
            &[0xff],                                                     // lone break
            &[0x1f],                                                     // indefinite int
            &[0xf0],                                                     // unknown simple
            &[0x7f, 0x41, b'a', 0xff],                                   // bytes chunk in text
            &[0x5f, 0x5f, 0xff, 0xff],                                   // nested indefinite chunk
            &[0xc0],                                                     // tag without item
        ] {
            assert!(dec(b).is_err(), "{b:x?}");
        }
    }

    #[test]
    fn special_floats_encode_like_cbor2() {
        let enc = |f: f64| {
            let mut o = Vec::new();
            encode_value(&Value::Float(f), &mut o).unwrap();
            o
        };
        assert_eq!(enc(f64::NAN), [0xf9, 0x7e, 0x00]);
        assert_eq!(enc(f64::INFINITY), [0xf9, 0x7c, 0x00]);
        assert_eq!(enc(f64::NEG_INFINITY), [0xf9, 0xfc, 0x00]);
        assert_eq!(enc(1.0), [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    }
}
