//! The JSON serializer (`wamp.2.json`), byte-compatible with Autobahn|Python
//! (`json.dumps(obj, separators=(',', ':'), ensure_ascii=False)`).
//!
//! * Output is compact; strings escape only `"`, `\`, and control characters
//!   (`\n \r \t \b \f` in short form, others as lower-case `\u00XX`);
//!   non-ASCII text is written as UTF-8.
//! * Floats are written like Python's `repr` (shortest round-trip digits,
//!   `1.0`, `1e+16`, `1e-05`); NaN and the infinities cannot be encoded.
//! * Binary values travel as the WAMP spec says: a string made of a NUL
//!   character followed by the standard base64 of the data; such strings
//!   decode back to [`Value::Bytes`].
//!
//! Decoding is strict RFC 8259 JSON (no NaN/Infinity literals, no comments),
//! validates UTF-8 once for the whole input, rejects lone surrogate escapes
//! and enforces [`crate::MAX_DEPTH`]. Args/kwargs of a message are only
//! scanned (string, escape and nesting aware) to find their spans.

use base64::Engine;
use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::message::Message;
use crate::payload::PayloadFormat;
use crate::value::{Dict, List, Value};
use crate::wire::{self, PayloadElem, WireReader, WireWriter};
use crate::MAX_DEPTH;

const FORMAT: &str = "json";

/// Base64 as Python writes it (padded) that also accepts unpadded input.
const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn mal(detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed { format: FORMAT, detail: detail.into() }
}

/// Encodes a message.
pub fn encode(msg: &Message) -> Result<Bytes, EncodeError> {
    let mut w = MsgWriter { out: Vec::with_capacity(wire::size_hint(msg)), n: 0 };
    wire::encode_message(&mut w, msg)?;
    Ok(Bytes::from(w.out))
}

/// Decodes a message, leaving args/kwargs as raw spans.
pub fn decode(bytes: &Bytes) -> Result<Message, DecodeError> {
    utf8(bytes)?;
    let mut r = MsgReader { rd: Reader { buf: bytes, pos: 0 }, first: true, closed: false };
    wire::decode_message(&mut r, bytes, PayloadFormat::Json)
}

/// Encodes one value, appending to `out`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_value(v, out, 0)
}

/// Decodes exactly one value (trailing bytes other than whitespace are an
/// error).
pub fn decode_value(bytes: &Bytes) -> Result<Value, DecodeError> {
    utf8(bytes)?;
    let mut rd = Reader { buf: bytes, pos: 0 };
    rd.ws();
    let v = rd.value(0)?;
    rd.finish()?;
    Ok(v)
}

fn utf8(b: &[u8]) -> Result<(), DecodeError> {
    std::str::from_utf8(b).map(|_| ()).map_err(|e| mal(format!("invalid UTF-8 at byte {}", e.valid_up_to())))
}

// ---------------------------------------------------------------------------
// Reading

/// What [`Reader::skip`] found.
enum Kind {
    List { empty: bool },
    Dict { empty: bool },
    Str,
    Other,
}

/// A cursor over input already known to be valid UTF-8.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn hex4(b: &[u8]) -> Option<u16> {
    let mut v: u16 = 0;
    for &c in b.get(..4)? {
        let d = (c as char).to_digit(16)?;
        v = (v << 4) | d as u16;
    }
    Some(v)
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf.get(self.pos).copied().ok_or_else(|| mal("unexpected end of data"))
    }

    fn expect(&mut self, c: u8) -> Result<(), DecodeError> {
        if self.peek()? != c {
            return Err(mal(format!("expected '{}' at byte {}", c as char, self.pos)));
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), DecodeError> {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(mal(format!("invalid literal at byte {}", self.pos)))
        }
    }

    /// Scans a string whose opening quote is at `pos`; returns the content
    /// range and whether it contains escapes. Validates escape syntax.
    fn scan_string(&mut self) -> Result<(usize, usize, bool), DecodeError> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(mal("unterminated string"));
            };
            match b {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match self.buf.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                        Some(b'u') => {
                            if hex4(self.buf.get(self.pos + 2..).unwrap_or(&[])).is_none() {
                                return Err(mal(format!("invalid \\u escape at byte {}", self.pos)));
                            }
                            self.pos += 6;
                        }
                        _ => return Err(mal(format!("invalid escape at byte {}", self.pos))),
                    }
                }
                0x00..=0x1f => return Err(mal(format!("unescaped control character in string at byte {}", self.pos))),
                _ => self.pos += 1,
            }
        }
    }

    /// Parses a string (opening quote at `pos`).
    fn string(&mut self) -> Result<String, DecodeError> {
        let (start, end, escaped) = self.scan_string()?;
        // The input is valid UTF-8 and quotes/backslashes are ASCII, so the
        // content is too.
        let raw = std::str::from_utf8(&self.buf[start..end]).map_err(|_| mal("invalid UTF-8 in string"))?;
        if !escaped {
            return Ok(raw.to_owned());
        }
        unescape(raw.as_bytes())
    }

    /// A string, or binary data if it starts with NUL.
    fn string_value(&mut self) -> Result<Value, DecodeError> {
        let s = self.string()?;
        match s.strip_prefix('\0') {
            Some(b64) => B64
                .decode(b64)
                .map(|b| Value::Bytes(Bytes::from(b)))
                .map_err(|e| mal(format!("invalid base64 in binary string: {e}"))),
            None => Ok(Value::Str(s)),
        }
    }

    /// Scans a number; returns its text and whether it is an integer.
    fn number(&mut self) -> Result<(&'a str, bool), DecodeError> {
        let start = self.pos;
        let buf = self.buf;
        let digits = |p: &mut usize| -> usize {
            let s = *p;
            while let Some(b'0'..=b'9') = buf.get(*p) {
                *p += 1;
            }
            *p - s
        };
        let mut p = self.pos;
        if buf.get(p) == Some(&b'-') {
            p += 1;
        }
        match buf.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => {
                digits(&mut p);
            }
            _ => return Err(mal(format!("invalid number at byte {start}"))),
        }
        let mut int = true;
        if buf.get(p) == Some(&b'.') {
            p += 1;
            int = false;
            if digits(&mut p) == 0 {
                return Err(mal(format!("invalid number at byte {start}")));
            }
        }
        if let Some(b'e' | b'E') = buf.get(p) {
            p += 1;
            int = false;
            if let Some(b'+' | b'-') = buf.get(p) {
                p += 1;
            }
            if digits(&mut p) == 0 {
                return Err(mal(format!("invalid number at byte {start}")));
            }
        }
        self.pos = p;
        // ASCII only.
        let text = std::str::from_utf8(&buf[start..p]).map_err(|_| mal("invalid number"))?;
        Ok((text, int))
    }

    fn number_value(&mut self) -> Result<Value, DecodeError> {
        let (text, int) = self.number()?;
        if int {
            let (neg, digits) = match text.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, text),
            };
            if let Ok(m) = digits.parse::<u64>() {
                if !neg || m == 0 {
                    return Ok(Value::UInt(m));
                }
                if m <= 1 << 63 {
                    return Ok(Value::Int((m as i64).wrapping_neg()));
                }
            }
            // Out of 64-bit range: fall through to a float.
        }
        let f: f64 = text.parse().map_err(|_| mal("invalid number"))?;
        if !f.is_finite() {
            return Err(mal(format!("number {text} is out of range")));
        }
        Ok(Value::Float(f))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        match self.peek()? {
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                self.pos += 1;
                let mut l = List::new();
                self.ws();
                if self.peek()? == b']' {
                    self.pos += 1;
                    return Ok(Value::List(l));
                }
                loop {
                    l.push(self.value(depth + 1)?);
                    if self.next_item(b']')? {
                        return Ok(Value::List(l));
                    }
                }
            }
            b'{' => Ok(Value::Dict(self.dict(depth)?)),
            b'"' => self.string_value(),
            b'-' | b'0'..=b'9' => self.number_value(),
            b't' => self.literal(b"true").map(|_| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|_| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|_| Value::Null),
            c => Err(mal(format!("unexpected character '{}' at byte {}", c.escape_ascii(), self.pos))),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Dict, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        self.expect(b'{')?;
        let mut d = Dict::new();
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(d);
        }
        loop {
            if self.peek()? != b'"' {
                return Err(mal(format!("object keys must be strings (byte {})", self.pos)));
            }
            let k = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let v = self.value(depth + 1)?;
            d.insert(k, v);
            if self.next_item(b'}')? {
                return Ok(d);
            }
        }
    }

    /// After an item: skips `,` (returning false) or the closing `close`
    /// (returning true), with surrounding whitespace.
    fn next_item(&mut self, close: u8) -> Result<bool, DecodeError> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.pos += 1;
                self.ws();
                Ok(false)
            }
            c if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(mal(format!("expected ',' or '{}' at byte {}", close as char, self.pos))),
        }
    }

    /// Validates and skips one value without building it.
    fn skip(&mut self, depth: usize) -> Result<Kind, DecodeError> {
        match self.peek()? {
            c @ (b'[' | b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep(MAX_DEPTH));
                }
                let dict = c == b'{';
                let close = if dict { b'}' } else { b']' };
                self.pos += 1;
                self.ws();
                let empty = self.peek()? == close;
                if empty {
                    self.pos += 1;
                } else {
                    loop {
                        if dict {
                            if self.peek()? != b'"' {
                                return Err(mal(format!("object keys must be strings (byte {})", self.pos)));
                            }
                            self.scan_string()?;
                            self.ws();
                            self.expect(b':')?;
                            self.ws();
                        }
                        self.skip(depth + 1)?;
                        if self.next_item(close)? {
                            break;
                        }
                    }
                }
                Ok(if dict { Kind::Dict { empty } } else { Kind::List { empty } })
            }
            b'"' => {
                self.scan_string()?;
                Ok(Kind::Str)
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Ok(Kind::Other)
            }
            b't' => self.literal(b"true").map(|_| Kind::Other),
            b'f' => self.literal(b"false").map(|_| Kind::Other),
            b'n' => self.literal(b"null").map(|_| Kind::Other),
            c => Err(mal(format!("unexpected character '{}' at byte {}", c.escape_ascii(), self.pos))),
        }
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        self.ws();
        if self.pos != self.buf.len() {
            return Err(mal(format!("trailing data at byte {}", self.pos)));
        }
        Ok(())
    }
}

/// Resolves escapes (syntax already validated by `scan_string`).
fn unescape(raw: &[u8]) -> Result<String, DecodeError> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        // Copy the run up to the next backslash.
        let run_end = raw[i..].iter().position(|&b| b == b'\\').map_or(raw.len(), |p| i + p);
        out.push_str(std::str::from_utf8(&raw[i..run_end]).map_err(|_| mal("invalid UTF-8 in string"))?);
        i = run_end;
        if i >= raw.len() {
            break;
        }
        let c = raw.get(i + 1).copied().unwrap_or(0);
        i += 2;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(raw.get(i..).unwrap_or(&[])).ok_or_else(|| mal("invalid \\u escape"))?;
                i += 4;
                let cp = if (0xd800..0xdc00).contains(&hi) {
                    // A high surrogate must be followed by an escaped low one.
                    let lo = match raw.get(i..i + 2) {
                        Some(b"\\u") => hex4(raw.get(i + 2..).unwrap_or(&[])),
                        _ => None,
                    };
                    match lo {
                        Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                            i += 6;
                            0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00)
                        }
                        _ => return Err(mal("unpaired surrogate in \\u escape")),
                    }
                } else if (0xdc00..0xe000).contains(&hi) {
                    return Err(mal("unpaired surrogate in \\u escape"));
                } else {
                    u32::from(hi)
                };
                char::from_u32(cp).ok_or_else(|| mal("invalid \\u escape"))?
            }
            _ => return Err(mal("invalid escape")),
        };
        out.push(ch);
    }
    Ok(out)
}

/// Reads the top-level message array.
struct MsgReader<'a> {
    rd: Reader<'a>,
    first: bool,
    closed: bool,
}

impl WireReader for MsgReader<'_> {
    fn begin(&mut self) -> Result<(), DecodeError> {
        self.rd.ws();
        if self.rd.peek()? != b'[' {
            return Err(DecodeError::Invalid("a WAMP message must be an array".into()));
        }
        self.rd.pos += 1;
        Ok(())
    }

    fn has_next(&mut self) -> Result<bool, DecodeError> {
        if self.closed {
            return Ok(false);
        }
        self.rd.ws();
        if self.first {
            self.first = false;
            if self.rd.peek()? == b']' {
                self.rd.pos += 1;
                self.closed = true;
                return Ok(false);
            }
            return Ok(true);
        }
        self.closed = self.rd.next_item(b']')?;
        Ok(!self.closed)
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        self.rd.finish()
    }

    fn read_uint(&mut self) -> Result<Option<u64>, DecodeError> {
        match self.rd.peek()? {
            b'-' | b'0'..=b'9' => match self.rd.number_value()? {
                Value::UInt(u) => Ok(Some(u)),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    fn read_string(&mut self) -> Result<Option<String>, DecodeError> {
        if self.rd.peek()? != b'"' {
            return Ok(None);
        }
        self.rd.string().map(Some)
    }

    fn read_dict(&mut self) -> Result<Option<Dict>, DecodeError> {
        if self.rd.peek()? != b'{' {
            return Ok(None);
        }
        self.rd.dict(1).map(Some)
    }

    fn read_payload(&mut self) -> Result<PayloadElem, DecodeError> {
        let start = self.rd.pos;
        // A binary string (transparent payload) is decoded once to validate
        // its base64.
        if self.rd.buf[start..].starts_with(b"\"\\u0000") {
            return match self.rd.string_value()? {
                Value::Bytes(_) => Ok(PayloadElem::Binary { span: start..self.rd.pos }),
                _ => Ok(PayloadElem::Other),
            };
        }
        let kind = self.rd.skip(1)?;
        let span = start..self.rd.pos;
        Ok(match kind {
            Kind::List { empty } => PayloadElem::List { span, empty },
            Kind::Dict { empty } => PayloadElem::Dict { span, empty },
            Kind::Str | Kind::Other => PayloadElem::Other,
        })
    }
}

// ---------------------------------------------------------------------------
// Writing

fn write_u64(mut u: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Formats a finite float like Python's `repr`.
fn write_f64(f: f64, out: &mut Vec<u8>) {
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let s = format!("{f:e}");
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.as_str()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let digits = digits.as_bytes();
    let nd = digits.len() as i32;
    // Decimal point position relative to the digits: value = 0.DIGITS * 10^decpt.
    let decpt = exp + 1;
    if neg {
        out.push(b'-');
    }
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
            out.extend_from_slice(digits);
        } else if decpt < nd {
            out.extend_from_slice(&digits[..decpt as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[decpt as usize..]);
        } else {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', (decpt - nd) as usize));
            out.extend_from_slice(b".0");
        }
    } else {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        write_u64(u64::from(e), out);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_str(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]],
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(esc);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"\\u0000");
    let start = out.len();
    let n = base64::encoded_len(b.len(), true).unwrap_or(0);
    out.resize(start + n, 0);
    let written = B64.encode_slice(b, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

fn too_deep() -> EncodeError {
    EncodeError::Unrepresentable { format: FORMAT, detail: format!("nesting exceeds depth limit {MAX_DEPTH}") }
}

fn write_list(l: &List, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'[');
    for (i, v) in l.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(v, out, depth + 1)?;
    }
    out.push(b']');
    Ok(())
}

fn write_dict(d: &Dict, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'{');
    for (i, (k, v)) in d.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        write_value(v, out, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::UInt(u) => write_u64(*u, out),
        Value::Int(i) => {
            if *i < 0 {
                out.push(b'-');
            }
            write_u64(i.unsigned_abs(), out);
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(EncodeError::Unrepresentable {
                    format: FORMAT,
                    detail: format!("{f} is not a JSON number"),
                });
            }
            write_f64(*f, out);
        }
        // JSON carries binary values as strings starting with NUL, so such a
        // string would come back as bytes (or fail as bad base64).
        Value::Str(s) if s.starts_with('\0') => {
            return Err(EncodeError::Unrepresentable {
                format: FORMAT,
                detail: "a string starting with U+0000 (JSON reserves that prefix for binary values)".into(),
            })
        }
        Value::Str(s) => write_str(s, out),
        Value::Bytes(b) => write_bytes(b, out),
        Value::List(l) => write_list(l, out, depth)?,
        Value::Dict(d) => write_dict(d, out, depth)?,
    }
    Ok(())
}

struct MsgWriter {
    out: Vec<u8>,
    /// Elements written so far (for separators).
    n: usize,
}

impl MsgWriter {
    fn sep(&mut self) {
        if self.n > 0 {
            self.out.push(b',');
        }
        self.n += 1;
    }
}

impl WireWriter for MsgWriter {
    const FORMAT: PayloadFormat = PayloadFormat::Json;

    fn begin(&mut self, _n: usize) {
        self.out.push(b'[');
    }
    fn end(&mut self) {
        self.out.push(b']');
    }
    fn uint(&mut self, v: u64) {
        self.sep();
        write_u64(v, &mut self.out);
    }
    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.sep();
        write_str(s, &mut self.out);
        Ok(())
    }
    fn dict(&mut self, d: &Dict) -> Result<(), EncodeError> {
        self.sep();
        write_dict(d, &mut self.out, 1)
    }
    fn list(&mut self, l: &List) -> Result<(), EncodeError> {
        self.sep();
        write_list(l, &mut self.out, 1)
    }
    fn binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        self.sep();
        write_bytes(b, &mut self.out);
        Ok(())
    }
    fn raw(&mut self, b: &[u8]) {
        self.sep();
        self.out.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        let mut out = Vec::new();
        encode_value(v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn dec(s: &str) -> Result<Value, DecodeError> {
        decode_value(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn floats_like_python_repr() {
        let cases = [
            (1.5, "1.5"),
            (1e100, "1e+100"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (2.5e-7, "2.5e-07"),
            (100.0, "100.0"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-123.456, "-123.456"),
        ];
        for (f, want) in cases {
            assert_eq!(enc(&Value::Float(f)), want);
            assert_eq!(dec(want).unwrap(), Value::Float(f));
        }
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                encode_value(&Value::Float(bad), &mut Vec::new()),
                Err(EncodeError::Unrepresentable { .. })
            ));
        }
    }

    #[test]
    fn integers_normalize() {
        assert_eq!(dec("-0").unwrap(), Value::UInt(0));
        assert_eq!(dec("18446744073709551615").unwrap(), Value::UInt(u64::MAX));
        assert_eq!(dec("-9223372036854775808").unwrap(), Value::Int(i64::MIN));
        assert_eq!(dec("18446744073709551616").unwrap(), Value::Float(18446744073709551616.0));
        assert_eq!(dec("1.0").unwrap(), Value::Float(1.0));
        assert_eq!(enc(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(enc(&Value::Int(5)), "5");
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity", "-Infinity", "1e400", "0x10"] {
            assert!(dec(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn strings_escape_like_python() {
        let s = "a\"b\\c\n\r\t\u{8}\u{c}\u{0}\u{1}\u{1f}\u{7f}/é€😀\u{2028}";
        assert_eq!(enc(&Value::from(s)), "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u0001\\u001f\u{7f}/é€😀\u{2028}\"");
        assert_eq!(dec(&enc(&Value::from(s))).unwrap(), Value::from(s));
        assert_eq!(dec(r#""\ud83d\ude00 \u00e9 \/""#).unwrap(), Value::from("😀 é /"));
        for bad in [r#""\ud83d""#, r#""\ude00""#, r#""\ud83d\u0041""#, r#""\x""#, r#""\u12""#, "\"a\u{1}\"", "\"abc"] {
            assert!(dec(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn binary_as_nul_prefixed_base64() {
        let v = Value::Bytes(Bytes::from_static(b"\x00\x01\xfe\xff"));
        assert_eq!(enc(&v), r#""\u0000AAH+/w==""#);
        assert_eq!(dec(r#""\u0000AAH+/w==""#).unwrap(), v);
        assert_eq!(dec(r#""\u0000AAH+/w""#).unwrap(), v);
        assert_eq!(dec(r#""\u0000""#).unwrap(), Value::Bytes(Bytes::new()));
        assert!(dec(r#""\u0000!!!""#).is_err());
    }

    #[test]
    fn structure_errors() {
        for bad in
            ["[1,]", "[1 2]", "{\"a\"}", "{\"a\":1,}", "tru", "nul", "[", "", "  ", "{\"a\":1}}", "[1]x", "/*c*/1"]
        {
            assert!(dec(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            dec(" [ 1 , { \"a\" : [ ] } ] ").unwrap(),
            Value::List(vec![
                Value::UInt(1),
                Value::Dict([("a".to_string(), Value::List(vec![]))].into_iter().collect())
            ])
        );
    }
}
