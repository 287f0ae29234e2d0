//! HTTP/1.x request and response types, a bounded request-head parser and the
//! response-head serializer.

use std::path::PathBuf;

use bytes::Bytes;

use crate::util::html_escape_into;
use crate::WebError;

/// Upper bound on the number of request headers [`parse_request`] accepts.
pub const MAX_HEADERS: usize = 64;

/// A borrowed view of one HTTP request head, as the runtime's parser produced it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, case-sensitive (`GET`, `HEAD`, ...).
    pub method: &'a str,
    /// The raw request-target, including any query (`/static/a%20b.txt?v=1`).
    pub target: &'a str,
    /// Header names and raw values, in arrival order.
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> Request<'a> {
    /// The first header named `name` (ASCII case-insensitive) with a UTF-8 value, trimmed.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        crate::util::header(self.headers, name)
    }
}

/// An owned request head produced by [`parse_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The method token.
    pub method: String,
    /// The raw request-target.
    pub target: String,
    /// HTTP minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Header names and raw values, in arrival order (at most [`MAX_HEADERS`]).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The declared `Content-Length` of a request body (0 when absent). The runtime must
    /// skip that many bytes after the head, or respond and close the connection.
    pub content_length: u64,
}

impl ParsedRequest {
    /// Borrowed `(name, value)` pairs suitable for [`Request::headers`].
    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect()
    }

    /// Builds the borrowed [`Request`] view over this head and `header_refs` (from
    /// [`ParsedRequest::header_refs`]).
    pub fn request<'a>(&'a self, header_refs: &'a [(&'a str, &'a [u8])]) -> Request<'a> {
        Request { method: &self.method, target: &self.target, headers: header_refs }
    }

    /// Whether the connection may be kept open after the response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`; never when the
    /// request carried a body.
    pub fn keep_alive(&self) -> bool {
        if self.content_length > 0 {
            return false;
        }
        let has_token = |token: &str| {
            self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("connection")).any(|(_, v)| {
                std::str::from_utf8(v).is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        if self.minor_version >= 1 {
            !has_token("close")
        } else {
            has_token("keep-alive")
        }
    }
}

/// Parses one request head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((head, consumed)))` when the
/// head is complete (`consumed` bytes, up to and including the blank line), and an error
/// when the head is malformed, exceeds `max_head` bytes or [`MAX_HEADERS`] headers, or
/// declares a body framing this crate does not support (`Transfer-Encoding`).
pub fn parse_request(buf: &[u8], max_head: usize) -> Result<Option<(ParsedRequest, usize)>, WebError> {
    let limit = buf.len().min(max_head);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(&buf[..limit]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max_head { Err(WebError::HeadTooLarge { limit: max_head }) } else { Ok(None) };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(WebError::TooManyHeaders { limit: MAX_HEADERS }),
        Err(e) => return Err(WebError::Malformed(e)),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(WebError::Malformed(httparse::Error::Token));
    };
    let mut content_length: Option<u64> = None;
    let mut out_headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(WebError::UnsupportedTransferEncoding);
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| WebError::InvalidContentLength)?.trim();
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(WebError::InvalidContentLength);
            }
            let n: u64 = v.parse().map_err(|_| WebError::InvalidContentLength)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(WebError::InvalidContentLength);
            }
            content_length = Some(n);
        }
        out_headers.push((h.name.to_owned(), h.value.to_vec()));
    }
    let head = ParsedRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        minor_version: version,
        headers: out_headers,
        content_length: content_length.unwrap_or(0),
    };
    Ok(Some((head, consumed)))
}

/// Where a response body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body (`Content-Length: 0`).
    Empty,
    /// An in-memory body.
    Bytes(Bytes),
    /// `len` bytes of the file at `path` starting at byte `offset`; the runtime reads and
    /// sends them (the file may have changed since: the runtime must send at most `len`
    /// bytes and close the connection if it cannot send exactly `len`). Open it with
    /// `O_NOFOLLOW` so a symlink swapped in after the containment check is not followed.
    File {
        /// Canonical path of the file (inside the static root).
        path: PathBuf,
        /// First byte to send.
        offset: u64,
        /// Number of bytes to send.
        len: u64,
    },
}

impl Body {
    /// Number of body bytes (the `Content-Length`).
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response: status, headers and where the body is. `Content-Length` and `Connection`
/// are not in `headers`; [`Response::write_head`] adds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names and values (without `Content-Length` / `Connection`).
    pub headers: Vec<(String, String)>,
    /// The body (for HEAD requests it still describes the body a GET would get, so the
    /// `Content-Length` matches; see `head_only`).
    pub body: Body,
    /// True for HEAD requests: write the head only, never the body.
    pub head_only: bool,
}

/// Standard reason phrase for `status` (`"Unknown"` when not in the table).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Body::Empty, head_only: false }
    }

    /// A small `text/html` error page for `status`.
    pub fn error_page(status: u16, head_only: bool) -> Self {
        let reason = reason_phrase(status);
        let mut html = String::with_capacity(160);
        html.push_str("<!DOCTYPE html>\n<html><head><title>");
        let title = format!("{status} {reason}");
        html_escape_into(&mut html, &title);
        html.push_str("</title></head><body><h1>");
        html_escape_into(&mut html, &title);
        html.push_str("</h1></body></html>\n");
        let mut r = Response::new(status);
        r.head_only = head_only;
        r.set_header("Content-Type", "text/html; charset=utf-8");
        r.set_header("X-Content-Type-Options", "nosniff");
        r.set_header("Cache-Control", "no-store");
        r.body = Body::Bytes(Bytes::from(html));
        r
    }

    /// The error page for a request-head error from [`parse_request`] (400, 431 or 501);
    /// the runtime should send it and close the connection.
    pub fn for_parse_error(err: &WebError) -> Self {
        Response::error_page(err.http_status(), false)
    }

    /// Appends a header.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_owned(), value.into()));
    }

    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the status forbids a body and a `Content-Length` (1xx, 204, 304).
    fn status_forbids_body(&self) -> bool {
        self.status < 200 || self.status == 204 || self.status == 304
    }

    /// Whether the runtime must write body bytes after the head.
    pub fn sends_body(&self) -> bool {
        !self.head_only && !self.status_forbids_body() && !self.body.is_empty()
    }

    /// Serializes the status line, the headers, `Content-Length` (except for 1xx/204/304)
    /// and `Connection` into `out`. Headers with invalid names or values containing control
    /// characters (CR/LF injection), and any caller-supplied `Content-Length`,
    /// `Transfer-Encoding` or `Connection`, are skipped.
    pub fn write_head(&self, out: &mut Vec<u8>, keep_alive: bool) {
        use std::io::Write as _;
        let status = self.status.clamp(100, 999);
        let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
        for (name, value) in &self.headers {
            if !is_token(name) || !is_field_value(value) {
                continue;
            }
            if ["content-length", "transfer-encoding", "connection"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !self.status_forbids_body() {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        out.extend_from_slice(if keep_alive {
            b"Connection: keep-alive\r\n\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_complete_partial_and_limits() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nextra";
        let (head, n) = parse_request(raw, 8192).unwrap().unwrap();
        assert_eq!(n, raw.len() - 5);
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a?b=1");
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.headers.len(), 2);
        assert!(head.keep_alive());
        let refs = head.header_refs();
        assert_eq!(head.request(&refs).header("accept"), Some("*/*"));

        assert_eq!(parse_request(&raw[..20], 8192).unwrap(), None);
        assert!(matches!(parse_request(&raw[..20], 20), Err(WebError::HeadTooLarge { limit: 20 })));
        assert!(matches!(parse_request(raw, 30), Err(WebError::HeadTooLarge { .. })));

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS + 1 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse_request(&many, 1 << 20), Err(WebError::TooManyHeaders { .. })));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nA b: c\r\n\r\n", 100), Err(WebError::Malformed(_))));
        assert!(matches!(parse_request(b"G\0T / HTTP/1.1\r\n\r\n", 100), Err(WebError::Malformed(_))));
    }

    #[test]
    fn parse_body_framing_and_keep_alive() {
        let te = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(parse_request(te, 1000), Err(WebError::UnsupportedTransferEncoding)));
        let bad_cl = b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert!(matches!(parse_request(bad_cl, 1000), Err(WebError::InvalidContentLength)));
        let dup_cl = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(parse_request(dup_cl, 1000), Err(WebError::InvalidContentLength)));
        let huge = b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n";
        assert!(matches!(parse_request(huge, 1000), Err(WebError::InvalidContentLength)));
        let cl = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
        let (h, _) = parse_request(cl, 1000).unwrap().unwrap();
        assert_eq!(h.content_length, 5);
        assert!(!h.keep_alive());
        let close = b"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n";
        assert!(!parse_request(close, 1000).unwrap().unwrap().0.keep_alive());
        let v10 = b"GET / HTTP/1.0\r\n\r\n";
        assert!(!parse_request(v10, 1000).unwrap().unwrap().0.keep_alive());
        let v10ka = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(parse_request(v10ka, 1000).unwrap().unwrap().0.keep_alive());
        assert_eq!(WebError::UnsupportedTransferEncoding.http_status(), 501);
        assert_eq!(Response::for_parse_error(&WebError::TooManyHeaders { limit: 1 }).status, 431);
    }

    #[test]
    fn write_head_shapes() {
        let mut r = Response::new(200);
        r.set_header("Content-Type", "text/plain");
        r.set_header("X-Evil", "a\r\nSet-Cookie: x=1");
        r.set_header("Bad Name", "v");
        r.set_header("Content-Length", "999");
        r.body = Body::Bytes(Bytes::from_static(b"hello"));
        let mut out = Vec::new();
        r.write_head(&mut out, true);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"
        );
        assert!(r.sends_body());
        r.head_only = true;
        assert!(!r.sends_body());

        let mut nm = Response::new(304);
        nm.set_header("ETag", "W/\"1\"");
        let mut out = Vec::new();
        nm.write_head(&mut out, false);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "HTTP/1.1 304 Not Modified\r\nETag: W/\"1\"\r\nConnection: close\r\n\r\n");
    }
}
