//! End-to-end tests of [`WebSite::respond`] against real directories on disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::*;

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "junction-web-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// tmp/www (the root), tmp/outside/secret.txt, tmp/www2/secret.txt (prefix sibling).
struct Fixture {
    tmp: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = TempDir::new();
        let www = tmp.0.join("www");
        let w = |rel: &str, body: &str| {
            let p = www.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        };
        w("index.html", "<h1>home</h1>");
        w("style.css", "body{}");
        w("app.mjs", "export {}");
        w("README.md", "# hi");
        w("blob", "0123456789");
        w("thing.unknownext", "?");
        w("a b.txt", "space");
        w("%2e%2e", "literal percent name");
        w("site/index.html", "site index");
        w("site/start.htm", "custom default");
        w("docs/plain.txt", "plain");
        w("docs/<script>alert(1).txt", "x");
        w("docs/\"><img src=x onerror=alert(1)>.txt", "x");
        w("docs/javascript:alert(1)", "x");
        w("docs/sub dir/inner.txt", "inner");
        w("evil.com/x.txt", "x");
        fs::create_dir_all(tmp.0.join("outside")).unwrap();
        fs::write(tmp.0.join("outside/secret.txt"), "SECRET").unwrap();
        fs::create_dir_all(tmp.0.join("www2")).unwrap();
        fs::write(tmp.0.join("www2/secret.txt"), "SECRET2").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(tmp.0.join("outside"), www.join("link_out")).unwrap();
            symlink(tmp.0.join("outside/secret.txt"), www.join("link_file_out")).unwrap();
            symlink("../www2", www.join("pref")).unwrap();
            symlink("../outside", www.join("docs/rel_out")).unwrap();
            symlink("style.css", www.join("link_in")).unwrap();
            symlink("/etc/passwd", www.join("passwd")).unwrap();
        }
        Fixture { tmp }
    }

    fn www(&self) -> PathBuf {
        self.tmp.0.join("www")
    }

    fn static_service(&self) -> StaticService {
        StaticService::new(&self.www()).unwrap()
    }

    fn site(&self) -> WebSite {
        WebSite::new(vec![("/".into(), Service::Static(self.static_service()))]).unwrap()
    }
}

fn req_with(site: &WebSite, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
    let hs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let req = Request { method, target, headers: &hs };
    site.respond(&req, &json!({}))
}

fn get(site: &WebSite, target: &str) -> Response {
    req_with(site, "GET", target, &[])
}

fn body_text(r: &Response) -> String {
    match &r.body {
        Body::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected in-memory body, got {other:?}"),
    }
}

fn file_body(r: &Response) -> (PathBuf, u64, u64) {
    match &r.body {
        Body::File { path, offset, len } => (path.clone(), *offset, *len),
        other => panic!("expected file body, got {other:?}"),
    }
}

fn head_string(r: &Response, keep_alive: bool) -> String {
    let mut out = Vec::new();
    r.write_head(&mut out, keep_alive);
    String::from_utf8(out).unwrap()
}

#[test]
fn serves_file_with_caching_headers() {
    let fx = Fixture::new();
    let site = fx.site();
    let r = get(&site, "/style.css");
    assert_eq!(r.status, 200);
    let (path, offset, len) = file_body(&r);
    assert_eq!(path, fs::canonicalize(fx.www().join("style.css")).unwrap());
    assert_eq!((offset, len), (0, 6));
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let meta = fs::metadata(fx.www().join("style.css")).unwrap();
    let mtime = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(r.header("last-modified"), Some(http_date(mtime.as_secs()).as_str()));
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with("W/\"6-"), "{etag}");
    let head = head_string(&r, true);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.contains("\r\nContent-Length: 6\r\n"));
    assert!(head.ends_with("Connection: keep-alive\r\n\r\n"));
    assert!(r.sends_body());

    let cached = WebSite::new(vec![(
        "/".into(),
        Service::Static(fx.static_service().with_cache_timeout(Some(Duration::from_secs(3600)))),
    )])
    .unwrap();
    assert_eq!(get(&cached, "/style.css").header("cache-control"), Some("public, max-age=3600"));
    let zero =
        WebSite::new(vec![("/".into(), Service::Static(fx.static_service().with_cache_timeout(Some(Duration::ZERO))))])
            .unwrap();
    assert_eq!(get(&zero, "/style.css").header("cache-control"), Some("no-cache"));

    let r = get(&site, "/a%20b.txt?x=1");
    assert_eq!(r.status, 200);
    assert_eq!(file_body(&r).0.file_name().unwrap(), "a b.txt");
    // A file is not a directory.
    assert_eq!(get(&site, "/style.css/").status, 404);
    assert_eq!(get(&site, "/missing.css").status, 404);
}

#[test]
fn directories_index_redirect_listing() {
    let fx = Fixture::new();
    let site = fx.site();
    let r = get(&site, "/");
    assert_eq!(r.status, 200);
    assert_eq!(file_body(&r).0.file_name().unwrap(), "index.html");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));

    let r = get(&site, "/site");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/site/"));
    let r = get(&site, "/site?a=b&c");
    assert_eq!(r.header("location"), Some("/site/?a=b&c"));
    let r = get(&site, "/./site");
    assert_eq!(r.header("location"), Some("/site/"));
    let r = get(&site, "/docs/sub%20dir");
    assert_eq!((r.status, r.header("location")), (301, Some("/docs/sub%20dir/")));
    // No open redirect through `//host`.
    let r = get(&site, "//evil.com");
    assert_eq!((r.status, r.header("location")), (301, Some("/evil.com/")));

    let r = get(&site, "/site/");
    assert_eq!(file_body(&r).0.file_name().unwrap(), "index.html");
    // No index and no listing.
    assert_eq!(get(&site, "/docs/").status, 404);

    let custom =
        WebSite::new(vec![("/".into(), Service::Static(fx.static_service().with_default_file("start.htm").unwrap()))])
            .unwrap();
    assert_eq!(file_body(&get(&custom, "/site/")).0.file_name().unwrap(), "start.htm");
    assert_eq!(get(&custom, "/").status, 404);

    let listing =
        WebSite::new(vec![("/".into(), Service::Static(fx.static_service().with_directory_listing(true)))]).unwrap();
    let r = get(&listing, "/docs/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = body_text(&r);
    assert!(html.contains("<li><a href=\"./plain.txt\">plain.txt</a></li>"), "{html}");
    assert!(html.contains("<li><a href=\"./sub%20dir/\">sub dir/</a></li>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1).txt"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.txt"), "{html}");
    assert!(html.contains("href=\"./javascript%3Aalert(1)\""), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("href=\"../\""));
    assert!(html.contains("Index of /docs/"));
    // Root listing has no parent link; an index.html still wins.
    assert_eq!(file_body(&get(&listing, "/")).0.file_name().unwrap(), "index.html");
    #[cfg(unix)]
    {
        // Listed symlink pointing outside is still not servable.
        assert!(html.contains("rel_out"));
        assert_eq!(get(&listing, "/docs/rel_out/").status, 404);
        assert_eq!(get(&listing, "/docs/rel_out/secret.txt").status, 404);
    }
}

#[test]
fn traversal_attempts_never_escape() {
    let fx = Fixture::new();
    let site = WebSite::new(vec![
        ("/".into(), Service::Static(fx.static_service().with_directory_listing(true))),
        ("static".into(), Service::Static(StaticService::new(&fx.www().join("docs")).unwrap())),
    ])
    .unwrap();
    let root = fs::canonicalize(fx.www()).unwrap();
    let cases: &[(&str, &[u16])] = &[
        ("/../etc/passwd", &[400]),
        ("/../../../../../../etc/passwd", &[400]),
        ("/%2e%2e/etc/passwd", &[400]),
        ("/%2E%2e/%2e%2e/etc/passwd", &[400]),
        ("/docs/..%2f..%2f..%2fetc/passwd", &[400]),
        ("/%2f%2fetc/passwd", &[400]),
        ("/static/%2e%2e/index.html", &[400]),
        ("/static/../index.html", &[400]),
        ("/static/..", &[400]),
        ("/index.html%00.txt", &[400]),
        ("/%00", &[400]),
        ("/..%5c..%5cetc%5cpasswd", &[400]),
        ("/..\\..\\etc\\passwd", &[400]),
        ("/docs\\plain.txt", &[400]),
        ("/%c0%ae%c0%ae/etc/passwd", &[400]),
        ("/%2", &[400]),
        ("/a%zz", &[400]),
        ("/%252e%252e/%252e%252e/etc/passwd", &[404]),
        ("/%252e%252e%252fetc%252fpasswd", &[404]),
        ("//etc/passwd", &[404]),
        ("/etc/passwd", &[404]),
        ("/link_out/secret.txt", &[404]),
        ("/link_out/", &[404]),
        ("/link_file_out", &[404]),
        ("/pref/secret.txt", &[404]),
        ("/passwd", &[404]),
        ("/static/rel_out/secret.txt", &[404]),
        ("http://localhost/etc/passwd", &[400]),
        ("*", &[400]),
        ("", &[400]),
        ("/docs/plain.txt\r\nX: y", &[400]),
        ("/docs/pl ain.txt", &[400]),
        ("/é", &[400]),
    ];
    for (target, expected) in cases {
        for method in ["GET", "HEAD"] {
            let r = req_with(&site, method, target, &[]);
            assert!(expected.contains(&r.status), "{method} {target:?} gave {}", r.status);
            assert!(!matches!(r.body, Body::File { .. }), "{target:?} served a file");
            assert_eq!(r.head_only, method == "HEAD");
        }
    }
    // Double encoding is not decoded twice: the literal file named `%2e%2e` is served.
    let r = get(&site, "/%252e%252e");
    assert_eq!(r.status, 200);
    assert_eq!(file_body(&r).0, root.join("%2e%2e"));
    #[cfg(unix)]
    {
        // A symlink staying inside the root is fine (served as its canonical target).
        let r = get(&site, "/link_in");
        assert_eq!(r.status, 200);
        assert_eq!(file_body(&r).0, root.join("style.css"));
    }
    assert!(StaticService::new(&fx.www()).unwrap().with_default_file("../outside/secret.txt").is_err());
}

#[test]
fn mime_types_via_service() {
    let fx = Fixture::new();
    let site = WebSite::new(vec![(
        "/".into(),
        Service::Static(fx.static_service().with_mime_type("MD", "text/x-markdown-custom")),
    )])
    .unwrap();
    let ct = |t: &str| get(&site, t).header("content-type").map(str::to_owned);
    assert_eq!(ct("/app.mjs").as_deref(), Some("text/javascript; charset=utf-8"));
    assert_eq!(ct("/README.md").as_deref(), Some("text/x-markdown-custom"));
    assert_eq!(ct("/blob").as_deref(), Some("application/octet-stream"));
    assert_eq!(ct("/thing.unknownext").as_deref(), Some("application/octet-stream"));
    assert_eq!(ct("/docs/plain.txt").as_deref(), Some("text/plain; charset=utf-8"));
}

#[test]
fn conditional_requests() {
    let fx = Fixture::new();
    let site = fx.site();
    let full = get(&site, "/blob");
    let etag = full.header("etag").unwrap().to_owned();
    let lm = full.header("last-modified").unwrap().to_owned();
    let lm_secs = parse_http_date(&lm).unwrap();

    let r = req_with(&site, "GET", "/blob", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert_eq!(r.body, Body::Empty);
    assert!(!r.sends_body());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.header("cache-control").is_some());
    assert!(r.header("content-type").is_none());
    let head = head_string(&r, true);
    assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"));
    assert!(!head.contains("Content-Length"));

    let strong = etag.trim_start_matches("W/");
    assert_eq!(req_with(&site, "GET", "/blob", &[("If-None-Match", strong)]).status, 304);
    let list = format!("\"nope\", {etag}");
    assert_eq!(req_with(&site, "GET", "/blob", &[("if-none-match", &list)]).status, 304);
    assert_eq!(req_with(&site, "GET", "/blob", &[("If-None-Match", "*")]).status, 304);
    assert_eq!(req_with(&site, "GET", "/blob", &[("If-None-Match", "\"other\"")]).status, 200);

    assert_eq!(req_with(&site, "GET", "/blob", &[("If-Modified-Since", &lm)]).status, 304);
    let later = http_date(lm_secs + 100);
    assert_eq!(req_with(&site, "GET", "/blob", &[("If-Modified-Since", &later)]).status, 304);
    let earlier = http_date(lm_secs - 1);
    assert_eq!(req_with(&site, "GET", "/blob", &[("If-Modified-Since", &earlier)]).status, 200);
    assert_eq!(req_with(&site, "GET", "/blob", &[("If-Modified-Since", "yesterday")]).status, 200);
    // If-None-Match takes precedence over If-Modified-Since.
    let r = req_with(&site, "GET", "/blob", &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)]);
    assert_eq!(r.status, 200);
    // HEAD gets the same 304.
    let r = req_with(&site, "HEAD", "/blob", &[("If-None-Match", &etag)]);
    assert_eq!((r.status, r.head_only), (304, true));
}

#[test]
fn ranges_via_service() {
    let fx = Fixture::new();
    let site = fx.site();
    let r = req_with(&site, "GET", "/blob", &[("Range", "bytes=2-4")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    let (_, offset, len) = file_body(&r);
    assert_eq!((offset, len), (2, 3));
    assert!(head_string(&r, false).contains("\r\nContent-Length: 3\r\n"));
    let r = req_with(&site, "GET", "/blob", &[("Range", "bytes=-4")]);
    assert_eq!((r.status, file_body(&r).1, file_body(&r).2), (206, 6, 4));
    let r = req_with(&site, "GET", "/blob", &[("Range", "bytes=10-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10"));
    let r = req_with(&site, "GET", "/blob", &[("Range", "bytes=0-1,3-4")]);
    assert_eq!((r.status, file_body(&r).2), (200, 10));
    let r = req_with(&site, "GET", "/blob", &[("Range", "bytes=0-1"), ("If-Range", "\"stale\"")]);
    assert_eq!(r.status, 200);
    let lm = get(&site, "/blob").header("last-modified").unwrap().to_owned();
    let r = req_with(&site, "GET", "/blob", &[("Range", "bytes=0-1"), ("If-Range", &lm)]);
    assert_eq!(r.status, 206);
}

#[test]
fn head_and_methods() {
    let fx = Fixture::new();
    let site = fx.site();
    let g = get(&site, "/style.css");
    let h = req_with(&site, "HEAD", "/style.css", &[]);
    assert_eq!(h.status, 200);
    assert!(h.head_only);
    assert!(!h.sends_body());
    assert_eq!(g.headers, h.headers);
    assert_eq!(head_string(&g, true), head_string(&h, true));
    let h404 = req_with(&site, "HEAD", "/nothing", &[]);
    assert_eq!((h404.status, h404.head_only, h404.sends_body()), (404, true, false));

    for m in ["POST", "PUT", "DELETE", "OPTIONS", "get", "TRACE", ""] {
        let r = req_with(&site, m, "/style.css", &[]);
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert!(body_text(&r).contains("405 Method Not Allowed"));
    }
}

#[test]
fn dispatch_and_other_services() {
    let fx = Fixture::new();
    let site = WebSite::new(vec![
        ("static".into(), Service::Static(fx.static_service())),
        ("info".into(), Service::NodeInfo),
        (
            "/config/".into(),
            Service::Json(JsonService::new(&json!({"a": [1, 2], "b": "x"}), false, true, true).unwrap()),
        ),
        ("pretty".into(), Service::Json(JsonService::new(&json!({"a": 1}), true, false, false).unwrap())),
        ("old".into(), Service::redirect("https://example.com/new?x=1", 302).unwrap()),
        ("/".into(), Service::redirect("/static/", 301).unwrap()),
    ])
    .unwrap();
    let info = json!({"node": "node1", "worker": "router", "uptime": 12, "evil": "<script>x</script>", "nested": {"k": "<b>"}});
    let call = |target: &str, headers: &[(&str, &str)]| {
        let hs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        site.respond(&Request { method: "GET", target, headers: &hs }, &info)
    };

    assert_eq!(call("/static/style.css", &[]).status, 200);
    let r = call("/static", &[]);
    assert_eq!((r.status, r.header("location")), (301, Some("/static/")));
    assert_eq!(file_body(&call("/static/", &[])).0.file_name().unwrap(), "index.html");
    // Percent-encoded first segment still dispatches.
    assert_eq!(call("/st%61tic/style.css", &[]).status, 200);
    assert_eq!(call("/%zz/x", &[]).status, 400);

    let r = call("/config", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(body_text(&r), r#"{"a":[1,2],"b":"x"}"#);
    assert_eq!(call("/config/", &[]).status, 200);
    // The mount matched, so sub-paths of a JSON service are 404 (not the root redirect).
    assert_eq!(call("/config/deeper", &[]).status, 404);
    let p = call("/pretty", &[]);
    assert!(body_text(&p).contains("\n  \"a\": 1"));
    assert!(p.header("access-control-allow-origin").is_none());
    assert!(p.header("cache-control").is_none());

    let r = call("/old/anything", &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("https://example.com/new?x=1")));
    let r = call("/", &[]);
    assert_eq!((r.status, r.header("location")), (301, Some("/static/")));
    let r = call("/unmounted", &[]);
    assert_eq!(r.status, 301);

    let r = call("/info", &[("Accept", "text/html,application/json;q=0.9")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = body_text(&r);
    assert!(html.contains("<tr><th>node</th><td>node1</td></tr>"), "{html}");
    assert!(html.contains("<tr><th>uptime</th><td>12</td></tr>"), "{html}");
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
    assert!(html.contains("{&quot;k&quot;:&quot;&lt;b&gt;&quot;}"), "{html}");
    assert!(!html.contains("<script>") && !html.contains("<b>"));
    let r = call("/info/", &[("accept", "application/json, text/html")]);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&body_text(&r)).unwrap();
    assert_eq!(v, info);
    assert_eq!(call("/info/x", &[]).status, 404);

    // Without a root service, unknown paths are 404 with a small HTML page.
    let bare = WebSite::new(vec![("info".into(), Service::NodeInfo)]).unwrap();
    let r = get(&bare, "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(body_text(&r).contains("404 Not Found"));
    assert_eq!(get(&bare, "/").status, 404);
}

#[test]
fn construction_errors() {
    let fx = Fixture::new();
    assert!(matches!(StaticService::new(&fx.tmp.0.join("nope")), Err(WebError::Io { .. })));
    assert!(matches!(StaticService::new(&fx.www().join("blob")), Err(WebError::NotADirectory(_))));
    for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
        assert!(matches!(fx.static_service().with_default_file(bad), Err(WebError::InvalidDefaultFile(_))), "{bad:?}");
    }
    assert!(matches!(
        WebSite::new(vec![("a".into(), Service::NodeInfo), ("/a/".into(), Service::NodeInfo)]),
        Err(WebError::DuplicatePath(_))
    ));
    assert!(matches!(
        WebSite::new(vec![("/".into(), Service::NodeInfo), ("".into(), Service::NodeInfo)]),
        Err(WebError::DuplicatePath(_))
    ));
    for bad in ["a/b", "..", ".", "x\\y", "a\nb"] {
        assert!(matches!(WebSite::new(vec![(bad.into(), Service::NodeInfo)]), Err(WebError::InvalidPath(_))), "{bad}");
    }
    assert!(Service::redirect("https://x/", 200).is_err());
    assert!(Service::redirect("https://x/\r\nSet-Cookie: a", 302).is_err());
    assert!(Service::redirect("", 302).is_err());
    // A hand-built invalid redirect is refused at respond time instead of injected.
    let site = WebSite::new(vec![("r".into(), Service::Redirect { url: "/x\r\nSet-Cookie: a=b".into(), status: 302 })])
        .unwrap();
    assert_eq!(get(&site, "/r").status, 500);
    assert!(site.service("r").is_some() && site.service("/").is_none());
}

/// Every file body must be inside `root`; statuses must be from the known set.
fn check_response(r: &Response, root: &Path) {
    assert!(
        [200, 206, 301, 302, 304, 400, 404, 405, 414, 416, 431, 501].contains(&r.status),
        "unexpected status {}",
        r.status
    );
    if let Body::File { path, offset, len } = &r.body {
        assert!(path.starts_with(root), "{path:?} outside root");
        let flen = fs::metadata(path).unwrap().len();
        assert!(offset.checked_add(*len).is_some_and(|end| end <= flen));
    }
    let mut out = Vec::new();
    r.write_head(&mut out, true);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\r\n\r\n").count(), 1);
}

#[test]
fn fuzz_parse_and_respond() {
    let fx = Fixture::new();
    let root = fs::canonicalize(fx.www()).unwrap();
    let site = WebSite::new(vec![
        ("/".into(), Service::Static(fx.static_service().with_directory_listing(true))),
        ("info".into(), Service::NodeInfo),
        ("j".into(), Service::Json(JsonService::new(&json!([1]), false, false, false).unwrap())),
    ])
    .unwrap();
    let info = json!({"node": "n"});
    let mut rng = SmallRng::seed_from_u64(0x5eed_cafe);
    let alphabet: &[&str] = &[
        "/",
        "//",
        ".",
        "..",
        "%",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "%00",
        "%25",
        "%c0%ae",
        "%zz",
        "\\",
        "docs",
        "site",
        "link_out",
        "pref",
        "blob",
        "index.html",
        "info",
        "j",
        "?",
        "#",
        "a",
        "%20",
        "sub%20dir",
        "é",
        ";",
        ":",
    ];
    let seeds: &[&[u8]] = &[
        b"GET /docs/plain.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-2\r\n\r\n",
        b"HEAD /site HTTP/1.0\r\nIf-None-Match: W/\"a\"\r\n\r\n",
        b"GET /info HTTP/1.1\r\nAccept: application/json\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    ];
    let (mut parsed, mut ok_direct, mut errors) = (0u32, 0u32, 0u32);
    for i in 0..4000 {
        // Random target through respond directly.
        let n = rng.gen_range(0..8);
        let mut target = String::new();
        if rng.gen_bool(0.9) {
            target.push('/');
        }
        for _ in 0..n {
            target.push_str(alphabet[rng.gen_range(0..alphabet.len())]);
            if rng.gen_bool(0.5) {
                target.push('/');
            }
        }
        let method = ["GET", "HEAD", "POST"][rng.gen_range(0..3)];
        let range = format!("bytes={}-{}", rng.gen_range(0..20), rng.gen_range(0..20));
        let hs: [(&str, &[u8]); 3] =
            [("Range", range.as_bytes()), ("If-None-Match", b"\"x\", W/"), ("Accept", b"application/json")];
        let r = site.respond(&Request { method, target: &target, headers: &hs[..rng.gen_range(0..4)] }, &info);
        check_response(&r, &root);
        ok_direct += u32::from(r.status == 200 || r.status == 206);

        // Garbage / mutated heads through parse_request, then respond.
        let mut buf: Vec<u8> = if i % 3 == 0 {
            (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect()
        } else {
            let mut b = seeds[i % seeds.len()].to_vec();
            for _ in 0..rng.gen_range(0..6) {
                let pos = rng.gen_range(0..b.len());
                match rng.gen_range(0..3) {
                    0 => b[pos] = rng.gen(),
                    1 => b.insert(pos, rng.gen()),
                    _ => {
                        b.remove(pos);
                    }
                }
                if b.is_empty() {
                    break;
                }
            }
            b
        };
        if rng.gen_bool(0.1) {
            buf.truncate(rng.gen_range(0..=buf.len()));
        }
        let max_head = [16, 64, 8192][rng.gen_range(0..3)];
        match parse_request(&buf, max_head) {
            Ok(Some((head, consumed))) => {
                assert!(consumed <= buf.len() && consumed <= max_head);
                parsed += 1;
                let refs = head.header_refs();
                let r = site.respond(&head.request(&refs), &info);
                check_response(&r, &root);
                let _ = head.keep_alive();
            }
            Ok(None) => assert!(buf.len() < max_head),
            Err(e) => {
                let r = Response::for_parse_error(&e);
                assert!([400, 431, 501].contains(&r.status), "{e}");
                errors += 1;
            }
        }
    }
    // The generator must reach both the success and the error paths.
    assert!(parsed > 200 && errors > 200 && ok_direct > 50, "parsed {parsed}, errors {errors}, ok {ok_direct}");
}

/// A metrics source with fixed values.
struct FixedMetrics(u64);

impl NodeInfoSource for FixedMetrics {
    fn node_info(&self) -> serde_json::Value {
        json!({})
    }
    fn metrics(&self) -> String {
        let mut e = Exposition::new();
        e.counter("accepted", "Connections accepted.", self.0);
        e.gauge("sessions", "Sessions now.", 3);
        e.gauge_family(
            "realm_sessions",
            "Sessions per realm.",
            vec![(vec![("realm".into(), "re\"alm\\1".into())], 2), (vec![("realm".into(), "b".into())], 1)],
        );
        e.encode()
    }
}

#[test]
fn metrics_service_serves_the_exposition_text() {
    let site = WebSite::new(vec![("metrics".into(), Service::Metrics)]).unwrap();
    let hs: Vec<(&str, &[u8])> = Vec::new();
    let r = site.respond(&Request { method: "GET", target: "/metrics", headers: &hs }, &FixedMetrics(41));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(METRICS_CONTENT_TYPE));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let text = body_text(&r);
    assert!(text.contains("# TYPE junction_accepted counter"), "{text}");
    assert!(text.lines().any(|l| l == "junction_accepted_total 41"), "{text}");
    assert!(text.lines().any(|l| l == "junction_sessions 3"), "{text}");
    // Label values are escaped by the encoder.
    assert!(text.lines().any(|l| l == r#"junction_realm_sessions{realm="re\"alm\\1"} 2"#), "{text}");
    assert!(text.lines().any(|l| l == r#"junction_realm_sessions{realm="b"} 1"#), "{text}");
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    // Exact path only; HEAD has no body.
    assert_eq!(
        site.respond(&Request { method: "GET", target: "/metrics/x", headers: &hs }, &FixedMetrics(1)).status,
        404
    );
    let h = site.respond(&Request { method: "HEAD", target: "/metrics", headers: &hs }, &FixedMetrics(1));
    assert!(h.head_only && h.status == 200);
    // A source without metrics serves an empty document.
    let r = site.respond(&Request { method: "GET", target: "/metrics", headers: &hs }, &json!({}));
    assert_eq!((r.status, body_text(&r)), (200, String::new()));
}

#[test]
fn histograms_are_exposed_cumulatively() {
    let mut e = Exposition::new();
    e.histogram("routing_seconds", "Routing time.", 0.5, vec![(0.001, 3), (0.01, 2), (f64::INFINITY, 1)]);
    let text = e.encode();
    assert!(text.contains("# TYPE junction_routing_seconds histogram"), "{text}");
    assert!(text.contains("junction_routing_seconds_sum 0.5"), "{text}");
    assert!(text.contains("junction_routing_seconds_count 6"), "{text}");
    assert!(text.contains("junction_routing_seconds_bucket{le=\"0.001\"} 3"), "{text}");
    assert!(text.contains("junction_routing_seconds_bucket{le=\"0.01\"} 5"), "{text}");
    assert!(text.contains("junction_routing_seconds_bucket{le=\"+Inf\"} 6"), "{text}");
}
