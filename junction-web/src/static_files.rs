//! The `static` service: files under a canonical root directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;

use crate::date::{http_date, parse_http_date};
use crate::http::{Body, Request, Response};
use crate::mime::{mime_type_for, normalize_ext_key};
use crate::util::{decode_segment, encode_segment_into, html_escape_into};
use crate::WebError;

/// Most path segments a static request may have.
const MAX_SEGMENTS: usize = 128;
/// Most entries a directory listing shows.
const MAX_LISTING: usize = 10_000;

/// Serves files below a directory. Construct with [`StaticService::new`] and refine with
/// the `with_*` builders (or the public fields).
///
/// Every request path is percent-decoded segment by segment (invalid escapes, NUL, `/`,
/// `\` or `..` after decoding → 400), joined under the root, canonicalized, and must stay
/// under the canonical root (so symlinks leading outside are 404).
#[derive(Debug, Clone)]
pub struct StaticService {
    root: PathBuf,
    /// File served for a directory request (`"index.html"` by default). A single name.
    pub default_file: String,
    /// Whether directories without `default_file` get an HTML listing (default false).
    pub directory_listing: bool,
    /// Media type overrides, keyed by lower-case `".ext"` (use [`StaticService::with_mime_type`]).
    pub mime_types: HashMap<String, String>,
    /// `Cache-Control: public, max-age=N`; `None` or zero means `no-cache` (revalidate).
    pub cache_timeout: Option<Duration>,
}

fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.bytes().any(|b| b == b'/' || b == b'\\' || b == 0 || b < 0x20 || b == 0x7f)
}

/// Outcome of mapping a request path to decoded segments.
enum Segments {
    Valid(Vec<String>),
    Invalid,
}

fn split_segments(rest: &str) -> Segments {
    let mut segs = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            continue;
        }
        let Ok(seg) = decode_segment(raw) else { return Segments::Invalid };
        match seg.as_str() {
            "." => continue,
            ".." => return Segments::Invalid,
            _ => {}
        }
        if segs.len() >= MAX_SEGMENTS {
            return Segments::Invalid;
        }
        segs.push(seg);
    }
    Segments::Valid(segs)
}

/// Whether an `If-None-Match` value (`*` or a list of entity-tags) matches `etag` under
/// weak comparison. Malformed lists never match.
fn etag_list_matches(header: &str, etag: &str) -> bool {
    let opaque = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_owned();
    let ours = opaque(etag);
    let b = header.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b',' => i += 1,
            b'*' => return true,
            _ => {
                let start = i;
                if b[i..].starts_with(b"W/") {
                    i += 2;
                }
                if b.get(i) != Some(&b'"') {
                    return false; // malformed list: treat as no match
                }
                let Some(close) = b[i + 1..].iter().position(|&c| c == b'"') else { return false };
                let end = i + 1 + close + 1;
                if header.get(start..end).is_some_and(|t| opaque(t) == ours) {
                    return true;
                }
                i = end;
            }
        }
    }
    false
}

/// `Some(Ok((first, last)))` for a satisfiable single range, `Some(Err(()))` for an
/// unsatisfiable one, `None` when the header should be ignored (syntax, multiple ranges).
fn parse_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let (unit, spec) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (a, b) = spec.trim().split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if a.is_empty() {
        let n = num(b)?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(n), len - 1)));
    }
    let first = num(a)?;
    let last = if b.is_empty() { u64::MAX } else { num(b)? };
    if last < first {
        return None;
    }
    if first >= len {
        return Some(Err(()));
    }
    Some(Ok((first, last.min(len - 1))))
}

#[cfg(unix)]
fn os_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    name.to_string_lossy().into_owned().into_bytes()
}

impl StaticService {
    /// A service for `directory`, which must exist and be a directory; it is canonicalized
    /// now. Defaults: `index.html`, no listing, no overrides, no cache timeout.
    pub fn new(directory: &Path) -> Result<Self, WebError> {
        let root =
            fs::canonicalize(directory).map_err(|source| WebError::Io { path: directory.to_path_buf(), source })?;
        let meta = fs::metadata(&root).map_err(|source| WebError::Io { path: root.clone(), source })?;
        if !meta.is_dir() {
            return Err(WebError::NotADirectory(directory.to_path_buf()));
        }
        Ok(StaticService {
            root,
            default_file: "index.html".to_owned(),
            directory_listing: false,
            mime_types: HashMap::new(),
            cache_timeout: None,
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets the directory default file; it must be a single file name (no `/`, `\`, `..`).
    pub fn with_default_file(mut self, name: &str) -> Result<Self, WebError> {
        if !valid_file_name(name) {
            return Err(WebError::InvalidDefaultFile(name.to_owned()));
        }
        self.default_file = name.to_owned();
        Ok(self)
    }

    /// Enables or disables HTML directory listings.
    pub fn with_directory_listing(mut self, enabled: bool) -> Self {
        self.directory_listing = enabled;
        self
    }

    /// Overrides the media type of an extension (`"svg"` or `".svg"`, case-insensitive).
    pub fn with_mime_type(mut self, ext: &str, media_type: &str) -> Self {
        self.mime_types.insert(normalize_ext_key(ext), media_type.to_owned());
        self
    }

    /// Sets the `max-age` of served files (`None`/zero: `no-cache`).
    pub fn with_cache_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.cache_timeout = timeout;
        self
    }

    fn cache_control(&self) -> String {
        match self.cache_timeout {
            Some(d) if d.as_secs() > 0 => format!("public, max-age={}", d.as_secs()),
            _ => "no-cache".to_owned(),
        }
    }

    /// Canonicalizes `candidate` and returns it with its metadata if it stays under root.
    fn contained(&self, candidate: &Path) -> Option<(PathBuf, fs::Metadata)> {
        let canonical = fs::canonicalize(candidate).ok()?;
        if !canonical.starts_with(&self.root) {
            return None;
        }
        let meta = fs::metadata(&canonical).ok()?;
        Some((canonical, meta))
    }

    /// Responds to a GET/HEAD for `rest` (the raw path below the mount point, starting with
    /// `/` or empty). `mount` is the decoded mount segment (`None` at the site root) and
    /// `query` the raw query, both used to build `/dir` → `/dir/` redirects.
    pub(crate) fn respond(
        &self,
        req: &Request<'_>,
        mount: Option<&str>,
        rest: &str,
        query: Option<&str>,
        head_only: bool,
    ) -> Response {
        let segs = match split_segments(rest) {
            Segments::Valid(s) => s,
            Segments::Invalid => return Response::error_page(400, head_only),
        };
        let trailing_slash = rest.ends_with('/');
        let mut candidate = self.root.clone();
        for s in &segs {
            candidate.push(s);
        }
        let Some((path, meta)) = self.contained(&candidate) else {
            return Response::error_page(404, head_only);
        };
        if meta.is_file() {
            if trailing_slash {
                return Response::error_page(404, head_only);
            }
            return self.serve_file(req, path, &meta, head_only);
        }
        if !meta.is_dir() {
            return Response::error_page(404, head_only);
        }
        if !trailing_slash {
            let mut loc = String::from("/");
            for s in mount.into_iter().chain(segs.iter().map(String::as_str)) {
                encode_segment_into(&mut loc, s.as_bytes());
                loc.push('/');
            }
            if let Some(q) = query {
                loc.push('?');
                loc.push_str(q);
            }
            let mut r = Response::error_page(301, head_only);
            r.set_header("Location", loc);
            return r;
        }
        if valid_file_name(&self.default_file) {
            if let Some((index, index_meta)) = self.contained(&path.join(&self.default_file)) {
                if index_meta.is_file() {
                    return self.serve_file(req, index, &index_meta, head_only);
                }
            }
        }
        if self.directory_listing {
            let mut shown = String::from("/");
            for s in mount.into_iter().chain(segs.iter().map(String::as_str)) {
                shown.push_str(s);
                shown.push('/');
            }
            return self.listing(&path, &shown, mount.is_some() || !segs.is_empty(), head_only);
        }
        Response::error_page(404, head_only)
    }

    fn serve_file(&self, req: &Request<'_>, path: PathBuf, meta: &fs::Metadata, head_only: bool) -> Response {
        let len = meta.len();
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let etag = match mtime {
            Some(d) => format!("W/\"{len:x}-{:x}.{:x}\"", d.as_secs(), d.subsec_nanos()),
            None => format!("W/\"{len:x}\""),
        };
        let last_modified = mtime.map(|d| http_date(d.as_secs()));

        let mut r = Response::new(200);
        r.head_only = head_only;
        let not_modified = match req.header("if-none-match") {
            Some(inm) => etag_list_matches(inm, &etag),
            None => match (mtime, req.header("if-modified-since").and_then(parse_http_date)) {
                (Some(m), Some(since)) => m.as_secs() <= since,
                _ => false,
            },
        };
        if not_modified {
            r.status = 304;
        } else {
            r.set_header("Content-Type", mime_type_for(&path, &self.mime_types));
            r.set_header("X-Content-Type-Options", "nosniff");
            r.set_header("Accept-Ranges", "bytes");
        }
        r.set_header("Cache-Control", self.cache_control());
        r.set_header("ETag", etag);
        if let Some(lm) = &last_modified {
            r.set_header("Last-Modified", lm.clone());
        }
        if not_modified {
            return r;
        }
        let range_allowed = match req.header("if-range") {
            None => true,
            Some(v) => last_modified.as_deref() == Some(v),
        };
        let range = if range_allowed { req.header("range").and_then(|h| parse_range(h, len)) } else { None };
        match range {
            Some(Ok((first, last))) => {
                r.status = 206;
                r.set_header("Content-Range", format!("bytes {first}-{last}/{len}"));
                r.body = Body::File { path, offset: first, len: last - first + 1 };
            }
            Some(Err(())) => {
                let mut e = Response::error_page(416, head_only);
                e.set_header("Content-Range", format!("bytes */{len}"));
                return e;
            }
            None => r.body = Body::File { path, offset: 0, len },
        }
        r
    }

    fn listing(&self, dir: &Path, shown: &str, has_parent: bool, head_only: bool) -> Response {
        let Ok(read) = fs::read_dir(dir) else { return Response::error_page(404, head_only) };
        let mut entries: Vec<(OsString, bool)> = Vec::new();
        let mut truncated = false;
        for entry in read.flatten() {
            if entries.len() >= MAX_LISTING {
                truncated = true;
                break;
            }
            let is_dir = match entry.file_type() {
                Ok(t) if t.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
                Ok(t) => t.is_dir(),
                Err(_) => false,
            };
            entries.push((entry.file_name(), is_dir));
        }
        entries.sort();
        let mut html = String::with_capacity(256 + entries.len() * 64);
        html.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
        html_escape_into(&mut html, shown);
        html.push_str("</title></head><body><h1>Index of ");
        html_escape_into(&mut html, shown);
        html.push_str("</h1>\n<ul>\n");
        if has_parent {
            html.push_str("<li><a href=\"../\">../</a></li>\n");
        }
        for (name, is_dir) in &entries {
            let slash = if *is_dir { "/" } else { "" };
            html.push_str("<li><a href=\"./");
            encode_segment_into(&mut html, &os_bytes(name));
            html.push_str(slash);
            html.push_str("\">");
            html_escape_into(&mut html, &name.to_string_lossy());
            html.push_str(slash);
            html.push_str("</a></li>\n");
        }
        html.push_str("</ul>\n");
        if truncated {
            html.push_str("<p>(listing truncated)</p>\n");
        }
        html.push_str("</body></html>\n");
        let mut r = Response::new(200);
        r.head_only = head_only;
        r.set_header("Content-Type", "text/html; charset=utf-8");
        r.set_header("X-Content-Type-Options", "nosniff");
        r.set_header("Cache-Control", "no-cache");
        r.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
        r.body = Body::Bytes(Bytes::from(html));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let e = "W/\"a-b.c\"";
        assert!(etag_list_matches("W/\"a-b.c\"", e));
        assert!(etag_list_matches("\"a-b.c\"", e));
        assert!(etag_list_matches("\"x\", W/\"a-b.c\"", e));
        assert!(etag_list_matches("*", e));
        assert!(!etag_list_matches("\"x\"", e));
        assert!(!etag_list_matches("W/\"a-b.c", e));
        assert!(!etag_list_matches("garbage", e));
        assert!(!etag_list_matches("", e));
        assert!(!etag_list_matches("W/", e));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=90-500", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-1000", 100), Some(Ok((0, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=-0", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=a-b", 100), None);
        assert_eq!(parse_range("bytes=+1-2", 100), None);
        assert_eq!(parse_range("bytes=0-99999999999999999999", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), Some(Err(())));
    }
}
