//! Small text helpers: percent-decoding/encoding of path segments and HTML escaping.

use std::fmt::Write as _;

/// Why a percent-encoded path segment was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// The decoded segment contains NUL, `/` or `\`.
    Forbidden,
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one path segment (no `/` in `raw`), rejecting invalid escapes,
/// non-UTF-8 results and decoded NUL, `/` or `\` bytes (as well as control bytes).
pub(crate) fn decode_segment(raw: &str) -> Result<String, SegmentError> {
    let bytes = raw.as_bytes();
    if !bytes.contains(&b'%') {
        if bytes.iter().any(|&b| b == 0 || b == b'\\' || b == b'/' || b < 0x20 || b == 0x7f) {
            return Err(SegmentError::Forbidden);
        }
        return Ok(raw.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val).ok_or(SegmentError::BadEscape)?;
            let lo = bytes.get(i + 2).copied().and_then(hex_val).ok_or(SegmentError::BadEscape)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.iter().any(|&b| b == 0 || b == b'\\' || b == b'/' || b < 0x20 || b == 0x7f) {
        return Err(SegmentError::Forbidden);
    }
    String::from_utf8(out).map_err(|_| SegmentError::NotUtf8)
}

/// Appends `bytes` to `out`, percent-encoding everything except RFC 3986 unreserved
/// characters and a few sub-delimiters that are safe inside a path segment. `:` is
/// encoded so a relative reference can never be read as a scheme (`javascript:`).
pub(crate) fn encode_segment_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'!'
            | b'$'
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Appends `s` to `out` with `& < > " '` replaced by HTML entities.
pub(crate) fn html_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// Returns `s` HTML-escaped.
#[cfg(test)]
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    html_escape_into(&mut out, s);
    out
}

/// ASCII case-insensitive header lookup; the first header named `name` whose value is UTF-8.
pub(crate) fn header<'a>(headers: &'a [(&'a str, &'a [u8])], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rules() {
        assert_eq!(decode_segment("a%20b").as_deref(), Ok("a b"));
        assert_eq!(decode_segment("%2e%2E").as_deref(), Ok(".."));
        assert_eq!(decode_segment("%252e").as_deref(), Ok("%2e"));
        assert_eq!(decode_segment("%C3%A9").as_deref(), Ok("é"));
        assert_eq!(decode_segment("%2f"), Err(SegmentError::Forbidden));
        assert_eq!(decode_segment("%5C"), Err(SegmentError::Forbidden));
        assert_eq!(decode_segment("a%00"), Err(SegmentError::Forbidden));
        assert_eq!(decode_segment("a\\b"), Err(SegmentError::Forbidden));
        assert_eq!(decode_segment("%"), Err(SegmentError::BadEscape));
        assert_eq!(decode_segment("%4"), Err(SegmentError::BadEscape));
        assert_eq!(decode_segment("%zz"), Err(SegmentError::BadEscape));
        assert_eq!(decode_segment("%ff"), Err(SegmentError::NotUtf8));
    }

    #[test]
    fn encode_and_escape() {
        let mut s = String::new();
        encode_segment_into(&mut s, "a b/<é>:".as_bytes());
        assert_eq!(s, "a%20b%2F%3C%C3%A9%3E%3A");
        assert_eq!(html_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }
}
