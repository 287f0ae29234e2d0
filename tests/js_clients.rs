//! Clients nobody here wrote: Autobahn|JS and wampy.js (`tests/js/`, pinned
//! in `tests/js/package-lock.json`, installed by `scripts/test.sh` with
//! `npm ci`) against the real `junction` binary, used as their READMEs say.
//!
//! * pub/sub and RPC (progressive results, application errors with args and
//!   kwargs, calls to nobody) with each library and each of its
//!   serializers over WebSocket (JSON, MessagePack, CBOR), Autobahn|JS also
//!   over RawSocket/TCP and RawSocket/Unix (its RawSocket transport speaks
//!   JSON only), and the two libraries mixed (the router transcodes);
//! * wampy.js's SUBSCRIBE, whose options carry `undefined` over MessagePack
//!   and CBOR: before Junction read `undefined` as an absent key, the
//!   MessagePack session was aborted and the CBOR subscribe refused (the
//!   `wampy_*_msgpack`/`wampy_*_cbor` pub/sub tests and
//!   `wampy_subscribe_undefined_options_*` fail without it);
//! * ticket, WAMP-CRA (plain and salted) and cryptosign authentication with
//!   each library's own helpers, over WebSocket and (Autobahn|JS)
//!   RawSocket, against the same static principals as `tests/auth.rs`.
//!
//! Every scenario prints what the clients observed; the assertions are
//! here. If Node.js or the packages are missing these tests fail (they do
//! not skip): see `common::node_interpreter`.

mod common;

use std::sync::OnceLock;

use common::principals::*;
use common::{allow_all_role, free_port, node, node_config, once_or_fail, realm, shared_node, JunctionProcess};
use serde_json::{json, Value};

/// What `tests/js/payload.mjs` sends as args of message `i`.
fn expected_args(i: u64) -> Value {
    json!([
        i,
        "héllo wörld € 😀 \"quoted\" \\",
        2.5,
        -1.25e-7,
        true,
        null,
        [1, [2, 3], []],
        {"k": "v", "empty": {}},
        9007199254740991u64,
        -42
    ])
}

/// What `tests/js/payload.mjs` sends as kwargs of message `i`.
fn expected_kwargs(i: u64) -> Value {
    json!({"i": i, "name": "Alice", "nested": {"list": [1, 2, 3], "flag": false}, "big": -9007199254740991i64})
}

/// `LIB:SERIALIZER:URL` for a transport of the shared node (`ws`, `rs`, `unix`).
fn spec(lib: &str, ser: &str, transport: &str) -> String {
    format!("{lib}:{ser}:{}", shared_node().url(transport))
}

fn assert_id(v: &Value, what: &str, r: &Value) -> u64 {
    let id = v.as_u64().unwrap_or_else(|| panic!("{what} is not an id: {v}\n{r}"));
    assert!((1..=1u64 << 53).contains(&id), "{what} {id} outside 1..=2^53\n{r}");
    id
}

// ---------------------------------------------------------------- pub/sub

/// `pubsub.mjs` with the subscriber `sub` and the publisher `publ`
/// (each `(lib, serializer, transport)`).
fn pubsub(sub: (&str, &str, &str), publ: (&str, &str, &str)) {
    let node = shared_node();
    let (s, p) = (spec(sub.0, sub.1, sub.2), spec(publ.0, publ.1, publ.2));
    let r = node.node("pubsub.mjs", &["--sub", &s, "--pub", &p]);
    let event = |i| json!({"args": expected_args(i), "kwargs": expected_kwargs(i)});
    assert_eq!(r["exact"], json!([event(0), event(1), event(2)]), "exact subscription, in order:\n{r}");
    assert_eq!(r["prefix"], json!([event(3)]), "prefix subscription:\n{r}");
    let pubs = r["publications"].as_array().unwrap_or_else(|| panic!("no publications: {r}"));
    assert_eq!(pubs.len(), 4, "{r}");
    let mut ids: Vec<u64> = pubs.iter().map(|p| assert_id(p, "publication id", &r)).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "publication ids repeat: {r}");
    for who in ["sub_welcome", "pub_welcome"] {
        assert_eq!(r[who]["authrole"], "anonymous", "{who}: {r}");
        assert_eq!(r[who]["authmethod"], "anonymous", "{who}: {r}");
        assert_id(&r[who]["session"], "session id", &r);
    }
    assert_ne!(r["sub_welcome"]["session"], r["pub_welcome"]["session"], "{r}");
}

macro_rules! pubsub_tests {
    ($($name:ident: $sl:literal $ss:literal $st:literal <- $pl:literal $ps:literal $pt:literal;)*) => {$(
        #[test]
        fn $name() {
            pubsub(($sl, $ss, $st), ($pl, $ps, $pt));
        }
    )*};
}

pubsub_tests! {
    autobahn_pubsub_ws_json: "autobahn" "json" "ws" <- "autobahn" "json" "ws";
    autobahn_pubsub_ws_msgpack: "autobahn" "msgpack" "ws" <- "autobahn" "msgpack" "ws";
    autobahn_pubsub_ws_cbor: "autobahn" "cbor" "ws" <- "autobahn" "cbor" "ws";
    autobahn_pubsub_rawsocket_json: "autobahn" "json" "rs" <- "autobahn" "json" "rs";
    autobahn_pubsub_unix_json: "autobahn" "json" "unix" <- "autobahn" "json" "unix";
    wampy_pubsub_ws_json: "wampy" "json" "ws" <- "wampy" "json" "ws";
    wampy_pubsub_ws_msgpack: "wampy" "msgpack" "ws" <- "wampy" "msgpack" "ws";
    wampy_pubsub_ws_cbor: "wampy" "cbor" "ws" <- "wampy" "cbor" "ws";
    mixed_wampy_msgpack_from_autobahn_cbor: "wampy" "msgpack" "ws" <- "autobahn" "cbor" "ws";
    mixed_wampy_cbor_from_autobahn_rawsocket_json: "wampy" "cbor" "ws" <- "autobahn" "json" "rs";
    mixed_autobahn_rawsocket_json_from_wampy_msgpack: "autobahn" "json" "rs" <- "wampy" "msgpack" "ws";
    mixed_autobahn_msgpack_from_wampy_cbor: "autobahn" "msgpack" "ws" <- "wampy" "cbor" "ws";
}

/// wampy's `{match: undefined, get_retained: undefined}` means what absent
/// keys mean: an exact-match subscription that gets no retained event; a
/// defined option beside an undefined one (`{match: 'prefix'}`,
/// `{get_retained: true}`) is honoured.
fn wampy_subscribe_undefined_options(ser: &str) {
    let node = shared_node();
    let r = node.node("subscribe_options.mjs", &["--serializer", ser, "--url", &node.ws_url()]);
    assert_eq!(r["plain"], json!([["live"]]), "no options: live event only, no retained one:\n{r}");
    assert_eq!(r["get_retained"], json!([["retained"], ["live"]]), "get_retained: true:\n{r}");
    assert_eq!(r["prefix"], json!([["prefixed"]]), "match: prefix:\n{r}");
    assert_eq!(r["exact_match"], "exact", "meta API on the option-less subscription:\n{r}");
    assert_eq!(r["prefix_match"], "prefix", "meta API on the prefix subscription:\n{r}");
}

#[test]
fn wampy_subscribe_undefined_options_msgpack() {
    wampy_subscribe_undefined_options("msgpack");
}

#[test]
fn wampy_subscribe_undefined_options_cbor() {
    wampy_subscribe_undefined_options("cbor");
}

/// The same scenario over JSON, where wampy's undefined keys never reach
/// the wire: the reference the two tests above must agree with.
#[test]
fn wampy_subscribe_undefined_options_json() {
    wampy_subscribe_undefined_options("json");
}

// ---------------------------------------------------------------- RPC

/// `rpc.mjs` with the callee and the caller given as `(lib, serializer, transport)`.
fn rpc(callee: (&str, &str, &str), caller: (&str, &str, &str)) {
    let node = shared_node();
    let (ce, cr) = (spec(callee.0, callee.1, callee.2), spec(caller.0, caller.1, caller.2));
    let r = node.node("rpc.mjs", &["--callee", &ce, "--caller", &cr]);
    assert_eq!(r["echo"], json!({"ok": true, "args": expected_args(7), "kwargs": expected_kwargs(7)}), "echo:\n{r}");
    assert_eq!(r["receive_progress"], true, "the callee was not offered progressive results:\n{r}");
    assert_eq!(
        r["progressive"],
        json!([{"args": [1], "kwargs": {}}, {"args": [2], "kwargs": {}}, {"args": [3], "kwargs": {}}]),
        "progressive results:\n{r}"
    );
    assert_eq!(r["final"], json!({"ok": true, "args": ["done"], "kwargs": {"count": 3}}), "final result:\n{r}");
    assert_eq!(
        r["fail"],
        json!({"ok": false, "error": "com.example.error.failed", "args": ["it failed", 42], "kwargs": {"code": "E42"}}),
        "application error:\n{r}"
    );
    assert_eq!(r["missing"]["ok"], false, "{r}");
    assert_eq!(r["missing"]["error"], "wamp.error.no_such_procedure", "{r}");
    assert_ne!(r["callee_welcome"]["session"], r["caller_welcome"]["session"], "{r}");
}

macro_rules! rpc_tests {
    ($($name:ident: $el:literal $es:literal $et:literal <- $cl:literal $cs:literal $ct:literal;)*) => {$(
        #[test]
        fn $name() {
            rpc(($el, $es, $et), ($cl, $cs, $ct));
        }
    )*};
}

rpc_tests! {
    autobahn_rpc_ws_json: "autobahn" "json" "ws" <- "autobahn" "json" "ws";
    autobahn_rpc_ws_msgpack: "autobahn" "msgpack" "ws" <- "autobahn" "msgpack" "ws";
    autobahn_rpc_ws_cbor: "autobahn" "cbor" "ws" <- "autobahn" "cbor" "ws";
    autobahn_rpc_rawsocket_json: "autobahn" "json" "rs" <- "autobahn" "json" "rs";
    autobahn_rpc_unix_json: "autobahn" "json" "unix" <- "autobahn" "json" "unix";
    wampy_rpc_ws_json: "wampy" "json" "ws" <- "wampy" "json" "ws";
    wampy_rpc_ws_msgpack: "wampy" "msgpack" "ws" <- "wampy" "msgpack" "ws";
    wampy_rpc_ws_cbor: "wampy" "cbor" "ws" <- "wampy" "cbor" "ws";
    mixed_rpc_wampy_msgpack_callee_autobahn_cbor_caller: "wampy" "msgpack" "ws" <- "autobahn" "cbor" "ws";
    mixed_rpc_autobahn_rawsocket_callee_wampy_cbor_caller: "autobahn" "json" "rs" <- "wampy" "cbor" "ws";
    mixed_rpc_autobahn_msgpack_callee_wampy_json_caller: "autobahn" "msgpack" "ws" <- "wampy" "json" "ws";
}

// ---------------------------------------------------------------- authentication

struct AuthNode {
    process: JunctionProcess,
    ws_port: u16,
    rs_port: u16,
    /// `auth.mjs gen`: cryptosign keys; the first is authorized.
    creds: Value,
}

impl AuthNode {
    fn url(&self, transport: &str) -> String {
        match transport {
            "ws" => format!("ws://127.0.0.1:{}/ws", self.ws_port),
            "rs" => format!("rs://127.0.0.1:{}", self.rs_port),
            other => panic!("no transport {other}"),
        }
    }

    fn privkey(&self, i: usize) -> String {
        self.creds["cryptosign"][i]["privkey"].as_str().unwrap_or_else(|| panic!("no key {i}")).to_owned()
    }

    /// One `auth.mjs` attempt.
    fn attempt(&self, lib: &str, ser: &str, transport: &str, args: &[&str]) -> Value {
        let url = self.url(transport);
        let mut a = vec!["--lib", lib, "--serializer", ser, "--url", &url];
        a.extend_from_slice(args);
        self.process.node("auth.mjs", &a)
    }
}

/// A node with the principals of `tests/auth.rs` on a WebSocket and a
/// RawSocket transport (no SCRAM: neither library implements it).
fn auth_node() -> &'static AuthNode {
    static NODE: OnceLock<Result<AuthNode, String>> = OnceLock::new();
    once_or_fail(&NODE, || {
        let creds = node("auth.mjs", &["gen"]);
        let pubkey = creds["cryptosign"][0]["pubkey"].as_str().expect("cryptosign pubkey").to_owned();
        let mut last = String::new();
        for _ in 0..3 {
            let (ws_port, rs_port) = (free_port(), free_port());
            let auth = auth_block(&pubkey, None);
            let config = node_config(
                vec![realm("realm1", ROLES.map(allow_all_role).to_vec())],
                vec![
                    json!({
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": ws_port, "interface": "127.0.0.1"},
                        "auth": auth
                    }),
                    json!({
                        "type": "rawsocket",
                        "endpoint": {"type": "tcp", "port": rs_port, "interface": "127.0.0.1"},
                        "auth": auth
                    }),
                ],
            );
            match JunctionProcess::try_start(config) {
                Ok(process) => return AuthNode { process, ws_port, rs_port, creds },
                Err(e) if e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}")
    })
}

/// Asserts a WELCOME with this identity and a session that can call.
fn assert_joined(r: &Value, authid: &str, authrole: &str, authmethod: &str) {
    assert_eq!(r["joined"], true, "expected a WELCOME: {r}");
    let w = &r["welcome"];
    assert_eq!(w["authid"], authid, "{r}");
    assert_eq!(w["authrole"], authrole, "{r}");
    assert_eq!(w["authmethod"], authmethod, "{r}");
    assert_eq!(w["authprovider"], "static", "{r}");
    assert_id(&w["session"], "session id", r);
    assert_eq!(r["rpc"], json!(["echo", 42]), "the joined session cannot call: {r}");
}

/// Asserts the ABORT every credential failure gets.
fn assert_refused(r: &Value) {
    assert_eq!(r["joined"], false, "expected an ABORT: {r}");
    assert_eq!(r["reason"], NOT_AUTHORIZED, "{r}");
}

fn ticket(lib: &str, ser: &str, transport: &str) {
    let n = auth_node();
    let r = n.attempt(lib, ser, transport, &["--method", "ticket", "--authid", TICKET_USER, "--ticket", TICKET]);
    assert_joined(&r, TICKET_USER, "user", "ticket");
}

fn wampcra(lib: &str, ser: &str, transport: &str) {
    let n = auth_node();
    let r = n.attempt(lib, ser, transport, &["--method", "wampcra", "--authid", CRA_USER, "--secret", CRA_SECRET]);
    assert_joined(&r, CRA_USER, "user", "wampcra");
}

/// The salted user: each library derives the key from the challenge's
/// `salt`, `iterations` and `keylen` (PBKDF2-SHA256).
fn wampcra_salted(lib: &str, ser: &str, transport: &str) {
    let n = auth_node();
    let args = ["--method", "wampcra", "--authid", CRA_SALTED_USER, "--secret", CRA_SALTED_PASSWORD];
    let r = n.attempt(lib, ser, transport, &args);
    assert_joined(&r, CRA_SALTED_USER, "admin", "wampcra");
}

fn cryptosign(lib: &str, ser: &str, transport: &str) {
    let n = auth_node();
    let key = n.privkey(0);
    let r = n.attempt(lib, ser, transport, &["--method", "cryptosign", "--authid", CS_USER, "--privkey", &key]);
    assert_joined(&r, CS_USER, "device", "cryptosign");
}

macro_rules! auth_tests {
    ($($name:ident: $f:ident $lib:literal $ser:literal $tr:literal;)*) => {$(
        #[test]
        fn $name() {
            $f($lib, $ser, $tr);
        }
    )*};
}

auth_tests! {
    autobahn_ticket_ws_json: ticket "autobahn" "json" "ws";
    autobahn_ticket_rawsocket_json: ticket "autobahn" "json" "rs";
    autobahn_wampcra_ws_msgpack: wampcra "autobahn" "msgpack" "ws";
    autobahn_wampcra_rawsocket_json: wampcra "autobahn" "json" "rs";
    autobahn_wampcra_salted_ws_cbor: wampcra_salted "autobahn" "cbor" "ws";
    autobahn_cryptosign_ws_json: cryptosign "autobahn" "json" "ws";
    autobahn_cryptosign_ws_cbor: cryptosign "autobahn" "cbor" "ws";
    autobahn_cryptosign_rawsocket_json: cryptosign "autobahn" "json" "rs";
    wampy_ticket_ws_msgpack: ticket "wampy" "msgpack" "ws";
    wampy_ticket_ws_cbor: ticket "wampy" "cbor" "ws";
    wampy_wampcra_ws_json: wampcra "wampy" "json" "ws";
    wampy_wampcra_salted_ws_msgpack: wampcra_salted "wampy" "msgpack" "ws";
    wampy_cryptosign_ws_msgpack: cryptosign "wampy" "msgpack" "ws";
    wampy_cryptosign_ws_cbor: cryptosign "wampy" "cbor" "ws";
}

/// Wrong credentials, one per method and library: the same ABORT.
#[test]
fn wrong_credentials_are_refused() {
    let n = auth_node();
    let other_key = n.privkey(1);
    let cases: [(&str, &str, &str, Vec<&str>); 6] = [
        ("autobahn", "json", "ws", vec!["--method", "ticket", "--authid", TICKET_USER, "--ticket", "nope"]),
        ("wampy", "msgpack", "ws", vec!["--method", "ticket", "--authid", TICKET_USER, "--ticket", "nope"]),
        ("autobahn", "json", "rs", vec!["--method", "wampcra", "--authid", CRA_USER, "--secret", "not-it"]),
        ("wampy", "cbor", "ws", vec!["--method", "wampcra", "--authid", CRA_SALTED_USER, "--secret", CRA_SECRET]),
        ("autobahn", "msgpack", "ws", vec!["--method", "cryptosign", "--authid", CS_USER, "--privkey", &other_key]),
        ("wampy", "json", "ws", vec!["--method", "cryptosign", "--authid", CS_USER, "--privkey", &other_key]),
    ];
    for (lib, ser, tr, args) in cases {
        let r = n.attempt(lib, ser, tr, &args);
        assert_refused(&r);
    }
}
