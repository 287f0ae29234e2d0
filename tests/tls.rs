//! TLS end to end: the real `junction` binary with TLS WebSocket and TLS
//! RawSocket transports (server-only and mutual TLS), driven by the real
//! Autobahn|Python client over `wss://` and RawSocket-over-TLS with
//! Python's `ssl` (`tests/python/tls.py`, `tests/python/auth.py`).
//!
//! A throwaway PKI is generated at test time (`tls.py gen-certs`, with the
//! `cryptography` package the client venv already has): a CA, a server
//! certificate for 127.0.0.1/localhost, client certificates issued by the
//! CA and one issued by an untrusted CA.
//!
//! Not covered: cryptosign with `tls-exporter` channel binding. Autobahn
//! 26.10.2 only implements `tls-unique` (its `transport_channel_id` raises
//! for anything else) and Python's `ssl` has no keying-material exporter,
//! so no real client can produce an RFC 9266 binding; rustls, in turn,
//! cannot provide `tls-unique`. The test below checks that asking for
//! `tls-unique` is refused cleanly.

mod common;

use std::sync::OnceLock;

use common::{allow_all_role, free_port, node_config, once_or_fail, python, realm, temp_dir, JunctionProcess};
use serde_json::{json, Value};

const CS_USER: &str = "client01@example.com";
const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";

struct TlsNode {
    process: JunctionProcess,
    /// `wss://`: server TLS, anonymous + cryptosign.
    wss_port: u16,
    /// RawSocket over TLS: server TLS, anonymous.
    rss_port: u16,
    /// `wss://` with client certificates required, `tls` auth.
    mtls_ws_port: u16,
    /// RawSocket over TLS with client certificates required, `tls` auth.
    mtls_rs_port: u16,
    /// `tls.py gen-certs` output.
    pki: Value,
    /// `auth.py gen` output (cryptosign keys).
    creds: Value,
}

impl TlsNode {
    fn wss(&self) -> String {
        format!("wss://127.0.0.1:{}/ws", self.wss_port)
    }

    fn rss(&self) -> String {
        format!("rss://127.0.0.1:{}", self.rss_port)
    }

    fn mtls_wss(&self) -> String {
        format!("wss://127.0.0.1:{}/ws", self.mtls_ws_port)
    }

    fn mtls_rss(&self) -> String {
        format!("rss://127.0.0.1:{}", self.mtls_rs_port)
    }

    fn pki(&self, what: &str) -> String {
        self.pki[what].as_str().unwrap_or_else(|| panic!("no {what} in {}", self.pki)).to_owned()
    }

    /// `--ca CA [--cert C --key K]` for client certificate `client` (if any).
    fn tls_args(&self, client: Option<&str>) -> Vec<String> {
        let mut a = vec!["--ca".to_owned(), self.pki("ca_cert")];
        if let Some(c) = client {
            a.extend(["--cert".to_owned(), self.pki(&format!("{c}_cert"))]);
            a.extend(["--key".to_owned(), self.pki(&format!("{c}_key"))]);
        }
        a
    }

    /// One `auth.py` attempt on `url`.
    fn attempt(&self, url: &str, serializer: &str, args: &[String]) -> Value {
        let mut a: Vec<&str> = vec![url, "realm1", serializer];
        a.extend(args.iter().map(String::as_str));
        self.process.python("auth.py", &a)
    }

    /// The `tls.py` pub/sub + RPC scenario between (`url`, `ser`) and
    /// (`peer_url`, `peer_ser`).
    fn roundtrip(&self, url: &str, ser: &str, peer_url: &str, peer_ser: &str, extra: &[String]) -> Value {
        let mut a: Vec<&str> = vec![url, "realm1", ser, "--peer-url", peer_url, "--peer-serializer", peer_ser];
        a.extend(extra.iter().map(String::as_str));
        self.process.python("tls.py", &a)
    }
}

fn node() -> &'static TlsNode {
    static NODE: OnceLock<Result<TlsNode, String>> = OnceLock::new();
    once_or_fail(&NODE, || {
        let dir = temp_dir("pki");
        let pki = python("tls.py", &["gen-certs", &dir.to_string_lossy()]);
        let creds = python("auth.py", &["gen"]);
        let s = |k: &str| pki[k].as_str().unwrap_or_else(|| panic!("no {k} in {pki}")).to_owned();
        let server_tls = json!({"key": s("server_key"), "certificate": s("server_cert")});
        let mutual_tls =
            json!({"key": s("server_key"), "certificate": s("server_cert"), "ca_certificates": [s("ca_cert")]});
        let tls_auth = json!({
            "tls": {"type": "static", "principals": {
                "device1": {"certificate-sha1": s("client1_sha1"), "role": "device"},
                "cn-user": {"certificate-cn": "cn-user", "role": "user"}
            }}
        });
        let mut last = String::new();
        for _ in 0..3 {
            let ports = [free_port(), free_port(), free_port(), free_port()];
            let [wss_port, rss_port, mtls_ws_port, mtls_rs_port] = ports;
            let tcp =
                |port: u16, tls: &Value| json!({"type": "tcp", "port": port, "interface": "127.0.0.1", "tls": tls});
            let config = node_config(
                vec![realm("realm1", ["anonymous", "device", "user"].map(allow_all_role).to_vec())],
                vec![
                    json!({
                        "type": "websocket",
                        "endpoint": tcp(wss_port, &server_tls),
                        "auth": {
                            "anonymous": {"type": "static", "role": "anonymous"},
                            "cryptosign": {"type": "static", "principals": {
                                CS_USER: {"role": "device", "authorized_keys": [creds["cryptosign"][0]["pubkey"]]}
                            }}
                        }
                    }),
                    json!({"type": "rawsocket", "endpoint": tcp(rss_port, &server_tls)}),
                    json!({"type": "websocket", "endpoint": tcp(mtls_ws_port, &mutual_tls), "auth": tls_auth}),
                    json!({"type": "rawsocket", "endpoint": tcp(mtls_rs_port, &mutual_tls), "auth": tls_auth}),
                ],
            );
            match JunctionProcess::try_start(config) {
                Ok(process) => {
                    return TlsNode { process, wss_port, rss_port, mtls_ws_port, mtls_rs_port, pki, creds };
                }
                Err(e) if e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}")
    })
}

/// Checks a `tls.py` report: both sessions joined as `authid`/`authrole`
/// with `authmethod`, over TLS, and pub/sub and RPC worked both ways.
fn assert_roundtrip(r: &Value, authrole: &str, authmethod: &str) {
    assert_eq!(r["ok"], true, "{r}");
    for s in ["a", "b"] {
        assert_eq!(r[s]["authrole"], authrole, "{r}");
        assert_eq!(r[s]["authmethod"], authmethod, "{r}");
        assert_eq!(r[s]["realm"], "realm1", "{r}");
    }
    let v = r["tls_version"].as_str().unwrap_or_else(|| panic!("no TLS on the client's transport: {r}"));
    assert!(v.starts_with("TLSv1."), "{r}");
    for dir in ["a_from_b", "b_from_a"] {
        assert_eq!(r["results"][dir]["event"], true, "{r}");
        assert_eq!(r["results"][dir]["call"], json!([42, {"bytes": "07"}]), "{r}");
    }
}

// ---------------------------------------------------------------- server TLS

macro_rules! roundtrips {
    ($($name:ident: $a:ident $a_ser:literal <-> $b:ident $b_ser:literal;)*) => {$(
        #[test]
        fn $name() {
            let n = node();
            let r = n.roundtrip(&n.$a(), $a_ser, &n.$b(), $b_ser, &n.tls_args(None));
            assert_roundtrip(&r, "anonymous", "anonymous");
        }
    )*};
}

roundtrips! {
    wss_json: wss "json" <-> wss "json";
    wss_cbor: wss "cbor" <-> wss "cbor";
    rss_json: rss "json" <-> rss "json";
    rss_cbor: rss "cbor" <-> rss "cbor";
    wss_msgpack_with_rss_cbor: wss "msgpack" <-> rss "cbor";
}

/// A client speaking plain WebSocket / RawSocket to a TLS port gets no
/// session and a closed connection (no hang), and the node keeps serving
/// TLS clients.
#[test]
fn plain_client_to_tls_port_fails_cleanly() {
    let n = node();
    let anon = vec!["--method".to_owned(), "anonymous".to_owned()];
    for (url, ser) in [
        (format!("ws://127.0.0.1:{}/ws", n.wss_port), "json"),
        (format!("rs://127.0.0.1:{}", n.rss_port), "cbor"),
        (format!("ws://127.0.0.1:{}/ws", n.mtls_ws_port), "json"),
    ] {
        let r = n.attempt(&url, ser, &anon);
        assert_eq!(r["joined"], false, "{url}: {r}");
        assert_eq!(r["reason"], Value::Null, "{url}: no WAMP ABORT expected on a TLS port: {r}");
        assert_eq!(r["closed"], true, "{url}: connection not closed: {r}");
    }
    let mut args = anon.clone();
    args.extend(n.tls_args(None));
    let r = n.attempt(&n.wss(), "json", &args);
    assert_eq!(r["joined"], true, "{r}");
    assert_eq!(r["authrole"], "anonymous", "{r}");
}

/// A TLS client that does not trust the server's CA refuses the server
/// (the certificate chain is really checked: this fails with the system
/// roots instead of the test CA).
#[test]
fn client_rejects_server_without_trusted_ca() {
    let n = node();
    let mut args = vec!["--method".to_owned(), "anonymous".to_owned()];
    // Trusting the rogue CA instead of the real one.
    args.extend(["--ca".to_owned(), n.pki("rogue_cert")]);
    let r = n.attempt(&n.wss(), "json", &args);
    assert_eq!(r["joined"], false, "{r}");
    let err = r["error"].as_str().unwrap_or_else(|| panic!("no TLS error: {r}"));
    assert!(err.contains("CERTIFICATE_VERIFY_FAILED"), "{r}");
}

// ---------------------------------------------------------------- mutual TLS

fn tls_method(n: &TlsNode, client: Option<&str>) -> Vec<String> {
    let mut a = vec!["--method".to_owned(), "tls".to_owned()];
    a.extend(n.tls_args(client));
    a
}

#[test]
fn mtls_without_client_certificate_is_refused() {
    let n = node();
    for (url, ser) in [(n.mtls_wss(), "json"), (n.mtls_rss(), "cbor")] {
        let r = n.attempt(&url, ser, &tls_method(n, None));
        assert_eq!(r["joined"], false, "{url}: {r}");
        assert_eq!(r["reason"], Value::Null, "{url}: refused before WAMP, no ABORT expected: {r}");
        // TLS 1.3: the server's `certificate_required` alert.
        let err = r["error"].as_str().unwrap_or_else(|| panic!("{url}: no TLS error: {r}"));
        assert!(err.contains("CERTIFICATE_REQUIRED"), "{url}: {r}");
    }
}

#[test]
fn mtls_with_untrusted_client_certificate_is_refused() {
    let n = node();
    let r = n.attempt(&n.mtls_wss(), "json", &tls_method(n, Some("rogue")));
    assert_eq!(r["joined"], false, "{r}");
    assert_eq!(r["reason"], Value::Null, "{r}");
    let err = r["error"].as_str().unwrap_or_else(|| panic!("no TLS error: {r}"));
    assert!(err.contains("UNKNOWN_CA"), "{r}");
}

/// `tls` auth: the certificate's SHA-1 fingerprint maps to `device1`.
#[test]
fn tls_auth_by_certificate_sha1() {
    let n = node();
    let r = n.attempt(&n.mtls_wss(), "json", &tls_method(n, Some("client1")));
    assert_eq!(r["joined"], true, "{r}");
    assert_eq!(r["authid"], "device1", "{r}");
    assert_eq!(r["authrole"], "device", "{r}");
    assert_eq!(r["authmethod"], "tls", "{r}");
    assert_eq!(r["challenges"], json!([]), "{r}");
    assert_eq!(r["rpc"], json!(["echo", 42]), "{r}");
}

/// `tls` auth over RawSocket-over-TLS: the subject CN maps to `cn-user`.
#[test]
fn tls_auth_by_certificate_cn_rawsocket_cbor() {
    let n = node();
    let r = n.attempt(&n.mtls_rss(), "cbor", &tls_method(n, Some("client2")));
    assert_eq!(r["joined"], true, "{r}");
    assert_eq!(r["authid"], "cn-user", "{r}");
    assert_eq!(r["authrole"], "user", "{r}");
    assert_eq!(r["authmethod"], "tls", "{r}");
    assert_eq!(r["rpc"], json!(["echo", 42]), "{r}");
}

/// Pub/sub and RPC between two mutually authenticated sessions.
#[test]
fn mtls_roundtrip_wss_json_with_rss_msgpack() {
    let n = node();
    let mut extra = vec!["--method".to_owned(), "tls".to_owned()];
    extra.extend(n.tls_args(Some("client1")));
    let r = n.roundtrip(&n.mtls_wss(), "json", &n.mtls_rss(), "msgpack", &extra);
    assert_roundtrip(&r, "device", "tls");
    assert_eq!(r["a"]["authid"], "device1", "{r}");
}

/// A valid certificate (trusted CA) that maps to no principal: the TLS
/// handshake succeeds, WAMP authentication does not.
#[test]
fn tls_auth_unknown_certificate_is_not_authorized() {
    let n = node();
    let r = n.attempt(&n.mtls_wss(), "json", &tls_method(n, Some("client3")));
    assert_eq!(r["joined"], false, "{r}");
    assert_eq!(r["reason"], NOT_AUTHORIZED, "{r}");
}

// ---------------------------------------------------------------- cryptosign over TLS

#[test]
fn cryptosign_over_wss() {
    let n = node();
    let key = n.creds["cryptosign"][0]["privkey"].as_str().expect("privkey").to_owned();
    let mut args =
        vec!["--method".into(), "cryptosign".into(), "--authid".into(), CS_USER.into(), "--privkey".into(), key];
    args.extend(n.tls_args(None));
    let r = n.attempt(&n.wss(), "cbor", &args);
    assert_eq!(r["joined"], true, "{r}");
    assert_eq!(r["authid"], CS_USER, "{r}");
    assert_eq!(r["authrole"], "device", "{r}");
    assert_eq!(r["authmethod"], "cryptosign", "{r}");
}

/// Autobahn can only bind to `tls-unique`, which rustls does not expose:
/// the router refuses the binding it cannot honour with a clear ABORT
/// instead of accepting an unbound signature.
#[test]
fn cryptosign_tls_unique_binding_is_refused_cleanly() {
    let n = node();
    let key = n.creds["cryptosign"][0]["privkey"].as_str().expect("privkey").to_owned();
    let mut args =
        vec!["--method".into(), "cryptosign".into(), "--authid".into(), CS_USER.into(), "--privkey".into(), key];
    args.extend(["--channel-binding".to_owned(), "tls-unique".to_owned()]);
    args.extend(n.tls_args(None));
    let r = n.attempt(&n.wss(), "json", &args);
    assert_eq!(r["joined"], false, "{r}");
    assert_eq!(r["reason"], NOT_AUTHORIZED, "{r}");
    let m = r["message"].as_str().unwrap_or_default();
    assert!(m.contains("tls-unique"), "{r}");
}

/// The SHA-256 fingerprint of the certificate a TLS server presents now
/// (no verification: this only looks at which certificate is served).
fn served_cert_fingerprint(port: u16) -> String {
    let code = format!(
        "import ssl, hashlib; pem = ssl.get_server_certificate(('127.0.0.1', {port})); \
         print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest())"
    );
    let out =
        std::process::Command::new(common::python_interpreter()).args(["-c", &code]).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn file_fingerprint(pem_path: &str) -> String {
    let code = format!(
        "import ssl, hashlib; pem = open({pem_path:?}).read(); \
         print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest())"
    );
    let out =
        std::process::Command::new(common::python_interpreter()).args(["-c", &code]).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn sighup_reloads_certificates_without_restart() {
    // Own node: this test rewrites its certificate files.
    let dir = temp_dir("reload");
    std::fs::create_dir_all(dir.join("a")).expect("mkdir");
    std::fs::create_dir_all(dir.join("b")).expect("mkdir");
    let a = python("tls.py", &["gen-certs", &dir.join("a").to_string_lossy()]);
    let b = python("tls.py", &["gen-certs", &dir.join("b").to_string_lossy()]);
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_owned();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::copy(s(&a, "server_cert"), &cert).expect("copy cert");
    std::fs::copy(s(&a, "server_key"), &key).expect("copy key");
    let port = free_port();
    let tls = json!({"certificate": cert.to_string_lossy(), "key": key.to_string_lossy()});
    let config = node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")])],
        vec![
            json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1", "tls": tls}}),
        ],
    );
    let mut process = JunctionProcess::start(config);
    let before = served_cert_fingerprint(port);
    assert_eq!(before, file_fingerprint(&s(&a, "server_cert")));

    // A bad file set first: the reload fails and the old certificate stays.
    std::fs::write(&cert, "not a certificate").expect("write");
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(process.pid() as libc::pid_t, libc::SIGHUP);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(process.is_running(), "a failed reload must not stop the node");
    assert_eq!(served_cert_fingerprint(port), before, "the previous certificate stays in force");

    // The new pair: served after SIGHUP, no restart.
    std::fs::copy(s(&b, "server_cert"), &cert).expect("copy cert");
    std::fs::copy(s(&b, "server_key"), &key).expect("copy key");
    unsafe {
        libc::kill(process.pid() as libc::pid_t, libc::SIGHUP);
    }
    let want = file_fingerprint(&s(&b, "server_cert"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = served_cert_fingerprint(port);
        if now == want {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "certificate not reloaded: still {now}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(process.is_running());
    // WAMP still works over the reloaded certificate.
    let r =
        process.python("tls.py", &[&format!("rss://127.0.0.1:{port}"), "realm1", "cbor", "--ca", &s(&b, "ca_cert")]);
    assert_eq!(r["ok"], json!(true), "{r}");
    assert!(process.stderr().contains("TLS reload failed"), "the failed reload is logged");
}

/// Large events (a third small, the rest up to ~300 KiB) published back to
/// back over TLS arrive in order and intact: the writer encrypts each piece
/// of a batch that references shared payloads (`outbound::WireBuf`).
#[test]
fn large_events_over_tls_arrive_in_order_and_intact() {
    let n = node();
    let mut extra = n.tls_args(None);
    extra.extend(["--large".to_owned(), "30".to_owned()]);
    let r = n.roundtrip(&n.rss(), "msgpack", &n.wss(), "json", &extra);
    assert_eq!(r["results"]["large"], 30, "{r}");
    let r = n.roundtrip(&n.wss(), "cbor", &n.rss(), "cbor", &extra);
    assert_eq!(r["results"]["large"], 30, "{r}");
}
