//! The HTTP request head of web transports (junction-web) and config files
//! (junction-config).

use std::path::PathBuf;
use std::sync::OnceLock;

use junction_config::Format;
use junction_web::{parse_request, Body, JsonService, Response, Service, StaticService, WebSite};

/// A site like a node's `web` transport serves: static files at the root
/// (a small tree in the temp directory, with a directory listing), node
/// info, a JSON document, a redirect and metrics.
fn site() -> &'static (WebSite, PathBuf) {
    static SITE: OnceLock<(WebSite, PathBuf)> = OnceLock::new();
    SITE.get_or_init(|| {
        let root = std::env::temp_dir().join("junction-fuzz-www");
        let files: &[(&str, &str)] = &[
            ("index.html", "<h1>hi</h1>"),
            ("style.css", "body{}"),
            ("docs/a.txt", "0123456789abcdefghij"),
            ("docs/sub dir/b.json", "{}"),
        ];
        for (name, text) in files {
            let p = root.join(name);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).expect("create the fuzz web root");
            }
            if std::fs::read_to_string(&p).ok().as_deref() != Some(*text) {
                std::fs::write(&p, text).expect("write the fuzz web root");
            }
        }
        let root = std::fs::canonicalize(&root).expect("canonical fuzz web root");
        let statics = StaticService::new(&root).expect("static service").with_directory_listing(true);
        let json = JsonService::new(&serde_json::json!({"a": [1, 2]}), false, true, true).expect("json service");
        let site = WebSite::new(vec![
            ("/".into(), Service::Static(statics)),
            ("info".into(), Service::NodeInfo),
            ("j".into(), Service::Json(json)),
            ("r".into(), Service::redirect("https://example.com/x", 302).expect("redirect")),
            ("metrics".into(), Service::Metrics),
        ])
        .expect("site");
        (site, root)
    })
}

/// `junction_web::parse_request` on what a client sends to a `web`
/// transport, then `WebSite::respond` on the head it parsed. Checks: the
/// head consumed is within the input and the limit; the response has a
/// known status, a single well-formed head (no header injection) and file
/// bodies inside the web root and within the file; HTTP dates that parse
/// survive formatting and parsing again.
pub fn http_request(data: &[u8]) {
    const MAX_HEAD: usize = 8192;
    let parsed = match parse_request(data, MAX_HEAD) {
        Ok(Some(p)) => p,
        Ok(None) => {
            assert!(data.len() < MAX_HEAD, "incomplete head over the limit not refused");
            return;
        }
        Err(e) => {
            let r = Response::for_parse_error(&e);
            assert!([400, 431, 501].contains(&r.status), "parse error answered {}", r.status);
            check_response(&r, None);
            return;
        }
    };
    let (head, consumed) = parsed;
    assert!(consumed <= data.len().min(MAX_HEAD), "consumed more than the head");
    let _ = head.keep_alive();
    for (_, v) in &head.headers {
        if let Ok(s) = std::str::from_utf8(v) {
            if let Some(t) = junction_web::parse_http_date(s) {
                let again = junction_web::parse_http_date(&junction_web::http_date(t));
                assert_eq!(again, Some(t), "http date does not round-trip");
            }
        }
    }
    let refs = head.header_refs();
    let req = head.request(&refs);
    let (site, root) = site();
    let info = serde_json::json!({"node": "fuzz", "workers": 1});
    let r = site.respond(&req, &info);
    check_response(&r, Some(root));
}

fn check_response(r: &Response, root: Option<&PathBuf>) {
    assert!(
        [200, 206, 301, 302, 304, 400, 404, 405, 414, 416, 431, 501].contains(&r.status),
        "unexpected status {}",
        r.status
    );
    if let Body::File { path, offset, len } = &r.body {
        let root = root.expect("a file body without a static service");
        assert!(path.starts_with(root), "{path:?} outside the web root");
        let flen = std::fs::metadata(path).expect("file body exists").len();
        assert!(offset.checked_add(*len).is_some_and(|end| end <= flen), "file range beyond the file");
    }
    for keep_alive in [true, false] {
        let mut out = Vec::new();
        r.write_head(&mut out, keep_alive);
        let text = std::str::from_utf8(&out).expect("response head is UTF-8");
        assert!(text.ends_with("\r\n\r\n"), "response head not terminated");
        assert_eq!(text.matches("\r\n\r\n").count(), 1, "response head split (header injection)");
        let body = &text[..text.len() - 4];
        assert!(body.split("\r\n").all(|l| !l.contains(['\r', '\n'])), "bare CR or LF in the response head");
    }
}

/// `junction_config::parse_str` of a config file as JSON and as YAML, and
/// the management API's `parse_realm` / `parse_router_transport` on a JSON
/// value. Checks: a config that parses also passes `validate()` again; its
/// errors all carry a message.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [Format::Json, Format::Yaml] {
        match junction_config::parse_str(text, format) {
            Ok(cfg) => {
                if let Err(e) = cfg.validate() {
                    panic!("a config that parsed ({format:?}) fails validate(): {e}");
                }
            }
            Err(errs) => {
                assert!(!errs.errors.is_empty(), "failed without an error");
                assert!(errs.errors.iter().all(|e| !e.message.is_empty()), "an error without a message");
                let _ = errs.to_string();
            }
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = junction_config::parse_realm(&v);
        let _ = junction_config::parse_router_transport(&v);
        if let Some(obj) = v.as_object() {
            for value in obj.values() {
                let _ = junction_config::parse_realm(value);
                let _ = junction_config::parse_router_transport(value);
            }
        }
    }
}
