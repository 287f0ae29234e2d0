//! WebSocket frame encoding (server → client, unmasked), masking, opcodes and
//! close codes.

use bytes::Bytes;

/// Largest payload of a control frame (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest header of a server (unmasked) frame: 2 + 8 bytes.
pub const MAX_HEADER_LEN: usize = 10;

/// WebSocket frame opcodes (RFC 6455 5.2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message.
    Continuation = 0x0,
    /// 0x1: text data (UTF-8).
    Text = 0x1,
    /// 0x2: binary data.
    Binary = 0x2,
    /// 0x8: connection close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
}

impl OpCode {
    /// Parses an opcode nibble; `None` for reserved opcodes.
    pub const fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// True for close/ping/pong.
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }

    /// `Binary` if `binary`, else `Text`.
    pub const fn data(binary: bool) -> OpCode {
        if binary {
            OpCode::Binary
        } else {
            OpCode::Text
        }
    }
}

/// Close status codes (RFC 6455 7.4.1) used by this crate.
pub mod close_code {
    /// 1000: normal closure.
    pub const NORMAL: u16 = 1000;
    /// 1001: going away (server shutdown, browser navigating away).
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: unsupported data type.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1007: invalid frame payload data (e.g. non-UTF-8 text).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1011: internal server error.
    pub const INTERNAL_ERROR: u16 = 1011;

    /// True if `code` may appear in a received CLOSE frame (RFC 6455 7.4.1 /
    /// 7.4.2 and the IANA registry): 1000–1003, 1007–1014 and 3000–4999.
    /// 1004, 1005, 1006 and 1015 are reserved and must never be sent.
    pub const fn is_valid_received(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// Encodes an unmasked (server → client) frame header.
///
/// Returns the header buffer and how many of its bytes to write (2, 4 or 10);
/// write `&hdr[..n]` followed by the payload, which thus never needs copying.
pub fn frame_header(opcode: OpCode, fin: bool, len: usize) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut h = [0u8; MAX_HEADER_LEN];
    h[0] = (if fin { 0x80 } else { 0 }) | opcode as u8;
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, n)
}

/// Header of a complete (FIN) data message: binary or text.
pub fn message_header(binary: bool, len: usize) -> ([u8; MAX_HEADER_LEN], usize) {
    frame_header(OpCode::data(binary), true, len)
}

/// Appends an unmasked frame (header + payload) to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
    let (h, n) = frame_header(opcode, fin, payload.len());
    out.reserve(n + payload.len());
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(payload);
}

/// Appends a complete unmasked data message (one FIN frame) to `out`.
pub fn write_message(out: &mut Vec<u8>, binary: bool, payload: &[u8]) {
    write_frame(out, OpCode::data(binary), true, payload);
}

/// Truncates `reason` to at most `max` bytes on a UTF-8 character boundary.
pub fn truncate_utf8(reason: &str, max: usize) -> &str {
    if reason.len() <= max {
        return reason;
    }
    let mut end = max;
    while end > 0 && !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or("")
}

/// Appends a CLOSE frame to `out`. `code: None` sends an empty close payload
/// (the reason is then ignored, as the RFC requires a code before a reason).
/// The reason is truncated to fit the 125-byte control payload on a UTF-8
/// boundary.
pub fn write_close(out: &mut Vec<u8>, code: Option<u16>, reason: &str) {
    match code {
        None => write_frame(out, OpCode::Close, true, &[]),
        Some(code) => {
            let reason = truncate_utf8(reason, MAX_CONTROL_PAYLOAD - 2);
            let mut p = [0u8; MAX_CONTROL_PAYLOAD];
            p[..2].copy_from_slice(&code.to_be_bytes());
            p[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
            write_frame(out, OpCode::Close, true, &p[..2 + reason.len()]);
        }
    }
}

/// A complete CLOSE frame (see [`write_close`]).
pub fn close_frame(code: Option<u16>, reason: &str) -> Bytes {
    let mut v = Vec::with_capacity(2 + MAX_CONTROL_PAYLOAD);
    write_close(&mut v, code, reason);
    Bytes::from(v)
}

/// A complete PING frame; the payload is truncated to 125 bytes.
pub fn ping_frame(payload: &[u8]) -> Bytes {
    control_frame(OpCode::Ping, payload)
}

/// A complete PONG frame; the payload is truncated to 125 bytes.
pub fn pong_frame(payload: &[u8]) -> Bytes {
    control_frame(OpCode::Pong, payload)
}

fn control_frame(op: OpCode, payload: &[u8]) -> Bytes {
    let p = payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload);
    let mut v = Vec::with_capacity(2 + p.len());
    write_frame(&mut v, op, true, p);
    Bytes::from(v)
}

/// XORs `data` with the 4-byte masking `key` (RFC 6455 5.3), starting at key
/// offset 0. Processes 8 bytes at a time.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let k64 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_ne_bytes(w) ^ k64;
        c.copy_from_slice(&x.to_ne_bytes());
    }
    // Full chunks are multiples of 4 long, so the remainder starts at key offset 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Client side (tests, load generators): appends a *masked* frame to `out`.
pub fn write_masked_frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, key: [u8; 4], payload: &[u8]) {
    let (mut h, n) = frame_header(opcode, fin, payload.len());
    h[1] |= 0x80;
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(tail) = out.get_mut(start..) {
        apply_mask(tail, key);
    }
}
