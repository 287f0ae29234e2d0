//! # junction-web: the HTTP side of Junction's `web` transports
//!
//! Junction's `web` transports (in router and proxy workers, configured in Crossbar's
//! shape) map the first path segment of a request — or `/` for the root — to a service:
//! static files, a redirect, a fixed JSON document, a node-information page or the
//! node's metrics (Prometheus text, see [`Exposition`]). WebSocket
//! upgrades on the same port are recognized and handled elsewhere (wamp-framing /
//! router-core); this crate answers the plain HTTP requests.
//!
//! ## What it is
//!
//! A *sans-socket* responder. The runtime (glommio) reads bytes, calls
//! [`parse_request`] (bounded: head size limit, at most [`MAX_HEADERS`] headers, no
//! `Transfer-Encoding`), hands the head to [`WebSite::respond`] and gets back a
//! [`Response`]: status, headers and a [`Body`] that is either in memory or a *file
//! reference* (`path`, `offset`, `len`). [`Response::write_head`] serializes the head
//! (adding `Content-Length` and `Connection`); the runtime then writes the body bytes
//! itself (e.g. with its own file I/O), unless [`Response::sends_body`] says not to (HEAD,
//! 304).
//!
//! The static service is strict because it faces the internet: paths are percent-decoded
//! per segment (bad escapes, NUL, `/`, `\` and `..` are rejected), resolved under a root
//! that was canonicalized at construction, canonicalized again and required to stay under
//! that root, so symlinks leading outside are invisible. It supports `index.html`
//! defaults, optional escaped directory listings, `/dir` → `/dir/` redirects, MIME types,
//! weak ETags, `Last-Modified` (own RFC 7231 date code), conditional 304s, and single
//! byte ranges (206/416).
//!
//! ## What it is not
//!
//! No sockets, no runtime, no clocks (the runtime may add a `Date` header with
//! [`http_date`]), no threads, and it never reads file bodies — it only looks at file
//! metadata, canonicalizes paths and lists directories. It is not a general HTTP server:
//! only `GET`/`HEAD`, no request bodies, no chunked encoding, no compression, no
//! multipart ranges, no WebSocket, no CGI or reverse proxying.

mod date;
mod http;
mod metrics;
mod mime;
mod site;
mod static_files;
mod util;

#[cfg(test)]
mod tests;

pub use date::{http_date, parse_http_date};
pub use http::{parse_request, reason_phrase, Body, ParsedRequest, Request, Response, MAX_HEADERS};
pub use metrics::{Exposition, Labels, METRICS_CONTENT_TYPE};
pub use mime::{builtin_mime_type, mime_type_for, OCTET_STREAM};
pub use site::{JsonService, NodeInfoSource, Service, WebSite, MAX_TARGET};
pub use static_files::StaticService;

use std::path::PathBuf;

/// Errors from building services and from parsing request heads.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A static root or other path could not be resolved.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A static root exists but is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// The default file is not a single plain file name.
    #[error("invalid default file name {0:?}")]
    InvalidDefaultFile(String),
    /// A web path is not `/` or a single plain segment.
    #[error("invalid web path {0:?}")]
    InvalidPath(String),
    /// Two services were given the same web path.
    #[error("duplicate web path {0:?}")]
    DuplicatePath(String),
    /// A redirect with a non-3xx status or a URL that is not visible ASCII.
    #[error("invalid redirect to {url:?} with status {status}")]
    InvalidRedirect {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// A JSON document could not be serialized.
    #[error("cannot serialize JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The request head did not fit in the size limit.
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request head has more headers than allowed.
    #[error("more than {limit} request headers")]
    TooManyHeaders {
        /// The header count limit.
        limit: usize,
    },
    /// The request head is not valid HTTP/1.x.
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    /// The request uses `Transfer-Encoding`, which this crate does not accept.
    #[error("Transfer-Encoding is not supported")]
    UnsupportedTransferEncoding,
    /// `Content-Length` is not a number, or there are conflicting values.
    #[error("invalid Content-Length")]
    InvalidContentLength,
}

impl WebError {
    /// The HTTP status to answer a request-head error with (400, 431 or 501); 500 for
    /// configuration errors.
    pub fn http_status(&self) -> u16 {
        match self {
            WebError::HeadTooLarge { .. } | WebError::TooManyHeaders { .. } => 431,
            WebError::Malformed(_) | WebError::InvalidContentLength => 400,
            WebError::UnsupportedTransferEncoding => 501,
            _ => 500,
        }
    }
}
