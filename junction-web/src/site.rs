//! The path table ([`WebSite`]) and the non-file services.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use crate::http::{Body, Request, Response};
use crate::static_files::StaticService;
use crate::util::{decode_segment, html_escape_into};
use crate::WebError;

/// Longest request-target [`WebSite::respond`] accepts (414 beyond).
pub const MAX_TARGET: usize = 8192;

/// Supplies the live facts the `nodeinfo` service renders (node id, worker type, uptime,
/// session counts, ...). Implemented by the runtime; `serde_json::Value` implements it by
/// returning a clone of itself.
pub trait NodeInfoSource {
    /// The current node information, usually a JSON object.
    fn node_info(&self) -> Value;
    /// The current metrics for the `metrics` service, as exposition text
    /// (see [`crate::Exposition`]); none by default.
    fn metrics(&self) -> String {
        String::new()
    }
}

impl NodeInfoSource for Value {
    fn node_info(&self) -> Value {
        self.clone()
    }
}

/// A fixed JSON document, serialized once at construction.
#[derive(Debug, Clone)]
pub struct JsonService {
    body: Bytes,
    allow_cross_origin: bool,
    discourage_caching: bool,
}

impl JsonService {
    /// Serializes `value` (pretty-printed if `prettify`). `allow_cross_origin` adds
    /// `Access-Control-Allow-Origin: *`; `discourage_caching` adds `Cache-Control: no-store`.
    pub fn new(
        value: &Value,
        prettify: bool,
        allow_cross_origin: bool,
        discourage_caching: bool,
    ) -> Result<Self, WebError> {
        let body = if prettify { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) }?;
        Ok(JsonService { body: Bytes::from(body), allow_cross_origin, discourage_caching })
    }

    /// The serialized document.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether `Access-Control-Allow-Origin: *` is sent.
    pub fn allow_cross_origin(&self) -> bool {
        self.allow_cross_origin
    }

    /// Whether `Cache-Control: no-store` is sent.
    pub fn discourage_caching(&self) -> bool {
        self.discourage_caching
    }

    fn respond(&self, head_only: bool) -> Response {
        let mut r = Response::new(200);
        r.head_only = head_only;
        r.set_header("Content-Type", "application/json");
        r.set_header("X-Content-Type-Options", "nosniff");
        if self.allow_cross_origin {
            r.set_header("Access-Control-Allow-Origin", "*");
        }
        if self.discourage_caching {
            r.set_header("Cache-Control", "no-store");
        }
        r.body = Body::Bytes(self.body.clone());
        r
    }
}

/// One web service, mounted at a path segment (or the root) of a [`WebSite`].
#[derive(Debug, Clone)]
pub enum Service {
    /// Files below a directory (every path under the mount point).
    Static(StaticService),
    /// Redirects every path under the mount point to `url` with `status` (3xx).
    /// Build with [`Service::redirect`] to have both validated.
    Redirect {
        /// The `Location` value.
        url: String,
        /// A 3xx status (301, 302, 303, 307, 308).
        status: u16,
    },
    /// A fixed JSON document (exact mount path only, with or without trailing `/`).
    Json(JsonService),
    /// The node information page from [`NodeInfoSource`] (exact mount path only): HTML, or
    /// JSON when the first `Accept` entry is `application/json`.
    NodeInfo,
    /// The node's counters from [`NodeInfoSource::metrics`] in Prometheus'
    /// text exposition format (exact mount path only).
    Metrics,
}

fn valid_redirect(url: &str, status: u16) -> bool {
    (300..=399).contains(&status) && !url.is_empty() && url.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl Service {
    /// A validated redirect: `status` must be 3xx and `url` non-empty visible ASCII
    /// (percent-encode anything else).
    pub fn redirect(url: &str, status: u16) -> Result<Service, WebError> {
        if !valid_redirect(url, status) {
            return Err(WebError::InvalidRedirect { url: url.to_owned(), status });
        }
        Ok(Service::Redirect { url: url.to_owned(), status })
    }
}

/// A path table mapping the first path segment (or `/`) to a [`Service`].
#[derive(Debug, Clone, Default)]
pub struct WebSite {
    root: Option<Service>,
    mounts: HashMap<String, Service>,
}

fn accepts_json_first(req: &Request<'_>) -> bool {
    req.header("accept")
        .and_then(|a| a.split(',').next())
        .and_then(|first| first.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn render_node_info(value: &Value) -> String {
    let mut html = String::with_capacity(1024);
    html.push_str(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Junction node</title>\
         <style>body{font-family:sans-serif}th{text-align:left;padding-right:1em}</style>\
         </head><body><h1>Junction node</h1>\n",
    );
    match value {
        Value::Object(map) => {
            html.push_str("<table>\n");
            for (k, v) in map {
                html.push_str("<tr><th>");
                html_escape_into(&mut html, k);
                html.push_str("</th><td>");
                match v {
                    Value::String(s) => html_escape_into(&mut html, s),
                    other => html_escape_into(&mut html, &other.to_string()),
                }
                html.push_str("</td></tr>\n");
            }
            html.push_str("</table>\n");
        }
        other => {
            html.push_str("<pre>");
            html_escape_into(&mut html, &serde_json::to_string_pretty(other).unwrap_or_default());
            html.push_str("</pre>\n");
        }
    }
    html.push_str("</body></html>\n");
    html
}

impl WebSite {
    /// Builds the table from `(path, service)` pairs: `"/"` (or `""`) is the root service,
    /// anything else a single segment such as `"info"` (surrounding `/` are ignored).
    /// Errors on segments containing `/`, `\`, control characters, `.` or `..`, and on
    /// duplicates.
    pub fn new(services: Vec<(String, Service)>) -> Result<Self, WebError> {
        let mut site = WebSite::default();
        for (path, service) in services {
            let seg = path.trim_matches('/');
            if seg.is_empty() {
                if site.root.is_some() {
                    return Err(WebError::DuplicatePath(path));
                }
                site.root = Some(service);
                continue;
            }
            let bad =
                seg == "." || seg == ".." || seg.bytes().any(|b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f);
            if bad {
                return Err(WebError::InvalidPath(path));
            }
            if site.mounts.insert(seg.to_owned(), service).is_some() {
                return Err(WebError::DuplicatePath(path));
            }
        }
        Ok(site)
    }

    /// The service mounted at `segment` (decoded form, `"/"` or `""` for the root).
    pub fn service(&self, segment: &str) -> Option<&Service> {
        let seg = segment.trim_matches('/');
        if seg.is_empty() {
            self.root.as_ref()
        } else {
            self.mounts.get(seg)
        }
    }

    /// Answers one request. Only `GET` and `HEAD` are served (405 with `Allow` otherwise);
    /// the target must be origin-form visible ASCII (400) of at most [`MAX_TARGET`] bytes
    /// (414). The first segment, percent-decoded, selects a mounted service; otherwise the
    /// root service gets the whole path; otherwise 404. Never panics, never reads file bodies.
    pub fn respond(&self, req: &Request<'_>, info: &dyn NodeInfoSource) -> Response {
        let head_only = match req.method {
            "GET" => false,
            "HEAD" => true,
            _ => {
                let mut r = Response::error_page(405, false);
                r.set_header("Allow", "GET, HEAD");
                return r;
            }
        };
        let target = req.target;
        if target.len() > MAX_TARGET {
            return Response::error_page(414, head_only);
        }
        if !target.starts_with('/') || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Response::error_page(400, head_only);
        }
        let without_fragment = target.split('#').next().unwrap_or("");
        let (path, query) = match without_fragment.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (without_fragment, None),
        };
        let after_slash = &path[1..];
        let seg_raw = after_slash.split('/').next().unwrap_or("");
        if !seg_raw.is_empty() {
            let Ok(seg) = decode_segment(seg_raw) else {
                return Response::error_page(400, head_only);
            };
            if let Some(service) = self.mounts.get(&seg) {
                let rest = &after_slash[seg_raw.len()..];
                return self.dispatch(service, req, Some(&seg), rest, query, head_only, info);
            }
        }
        match &self.root {
            Some(service) => self.dispatch(service, req, None, path, query, head_only, info),
            None => Response::error_page(404, head_only),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        service: &Service,
        req: &Request<'_>,
        mount: Option<&str>,
        rest: &str,
        query: Option<&str>,
        head_only: bool,
        info: &dyn NodeInfoSource,
    ) -> Response {
        let exact = rest.is_empty() || rest == "/";
        match service {
            Service::Static(s) => s.respond(req, mount, rest, query, head_only),
            Service::Redirect { url, status } => {
                if !valid_redirect(url, *status) {
                    return Response::error_page(500, head_only);
                }
                let mut r = Response::new(*status);
                r.head_only = head_only;
                r.set_header("Location", url.clone());
                r
            }
            Service::Json(j) if exact => j.respond(head_only),
            Service::NodeInfo if exact => {
                let value = info.node_info();
                let mut r = Response::new(200);
                r.head_only = head_only;
                let body = if accepts_json_first(req) {
                    r.set_header("Content-Type", "application/json");
                    match serde_json::to_vec(&value) {
                        Ok(b) => b,
                        Err(_) => return Response::error_page(500, head_only),
                    }
                } else {
                    r.set_header("Content-Type", "text/html; charset=utf-8");
                    render_node_info(&value).into_bytes()
                };
                r.set_header("X-Content-Type-Options", "nosniff");
                r.set_header("Cache-Control", "no-store");
                r.set_header("Vary", "Accept");
                r.body = Body::Bytes(Bytes::from(body));
                r
            }
            Service::Metrics if exact => {
                let mut r = Response::new(200);
                r.head_only = head_only;
                r.set_header("Content-Type", crate::METRICS_CONTENT_TYPE);
                r.set_header("X-Content-Type-Options", "nosniff");
                r.set_header("Cache-Control", "no-store");
                r.body = Body::Bytes(Bytes::from(info.metrics()));
                r
            }
            Service::Json(_) | Service::NodeInfo | Service::Metrics => Response::error_page(404, head_only),
        }
    }
}
