//! Authentication end to end: the real `junction` binary with static
//! ticket, WAMP-CRA (plain and salted), cryptosign and SCRAM principals,
//! driven by the real Autobahn|Python client and its own authenticators
//! (`tests/python/auth.py`). Every test asserts on what the client saw:
//! WELCOME details (authid, authrole, authmethod, authprovider) or the
//! ABORT reason and message.
//!
//! One node serves the whole file. Its main transports allow many failures
//! (so the negative tests, which all come from 127.0.0.1, never trip the
//! failure limiter); the rate-limit test has a transport of its own with a
//! budget of [`RL_MAX_FAILURES`].

mod common;

use std::sync::OnceLock;

use common::principals::*;
use common::{allow_all_role, free_port, node_config, once_or_fail, python, realm, JunctionProcess};
use serde_json::{json, Value};

/// `auth.options.max_failures` of the rate-limited transport.
const RL_MAX_FAILURES: u32 = 3;

struct AuthNode {
    process: JunctionProcess,
    ws_port: u16,
    rs_port: u16,
    rl_port: u16,
    /// `auth.py gen` output: cryptosign keys and a SCRAM credential.
    creds: Value,
}

impl AuthNode {
    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.ws_port)
    }

    fn rs(&self) -> String {
        format!("rs://127.0.0.1:{}", self.rs_port)
    }

    fn key(&self, i: usize, what: &str) -> String {
        self.creds["cryptosign"][i][what].as_str().unwrap_or_else(|| panic!("no key {i}.{what}")).to_owned()
    }

    fn scram_password(&self) -> String {
        self.creds["scram"]["password"].as_str().expect("scram password").to_owned()
    }

    /// One attempt with `auth.py` (ws/rs URL, serializer, extra arguments).
    fn attempt(&self, url: &str, serializer: &str, args: &[&str]) -> Value {
        let mut a = vec![url, "realm1", serializer];
        a.extend_from_slice(args);
        self.process.python("auth.py", &a)
    }
}

/// The auth block of the main transports.
fn main_auth(creds: &Value) -> Value {
    let pubkey = creds["cryptosign"][0]["pubkey"].as_str().expect("cryptosign pubkey");
    auth_block(pubkey, Some(&creds["scram"]["credential"]))
}

fn node() -> &'static AuthNode {
    static NODE: OnceLock<Result<AuthNode, String>> = OnceLock::new();
    once_or_fail(&NODE, || {
        let creds = python("auth.py", &["gen"]);
        let mut last = String::new();
        for _ in 0..3 {
            let (ws_port, rs_port, rl_port) = (free_port(), free_port(), free_port());
            let roles = ROLES.map(allow_all_role).to_vec();
            let auth = main_auth(&creds);
            let config = node_config(
                vec![realm("realm1", roles)],
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
                    json!({
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": rl_port, "interface": "127.0.0.1"},
                        "auth": {
                            "ticket": {"type": "static", "principals": {
                                TICKET_USER: {"ticket": TICKET, "role": "user"}
                            }},
                            "options": {"max_failures": RL_MAX_FAILURES, "failure_window": 60000}
                        }
                    }),
                ],
            );
            match JunctionProcess::try_start(config) {
                Ok(process) => return AuthNode { process, ws_port, rs_port, rl_port, creds },
                Err(e) if e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}")
    })
}

/// Asserts a WELCOME with the given identity and a working session.
fn assert_joined(r: &Value, authid: &str, authrole: &str, authmethod: &str) {
    assert_eq!(r["joined"], true, "expected a WELCOME: {r}");
    assert_eq!(r["authid"], authid, "{r}");
    assert_eq!(r["authrole"], authrole, "{r}");
    assert_eq!(r["authmethod"], authmethod, "{r}");
    assert_eq!(r["authprovider"], "static", "{r}");
    assert_eq!(r["realm"], "realm1", "{r}");
    assert_eq!(r["rpc"], json!(["echo", 42]), "the joined session cannot call: {r}");
}

/// Asserts an ABORT with `reason` (after `challenges`) and returns its message.
fn assert_refused<'a>(r: &'a Value, reason: &str, challenges: &[&str]) -> &'a str {
    assert_eq!(r["joined"], false, "expected an ABORT: {r}");
    assert_eq!(r["reason"], reason, "{r}");
    assert_eq!(r["challenges"], json!(challenges), "{r}");
    r["message"].as_str().unwrap_or_else(|| panic!("ABORT without a message: {r}"))
}

// ---------------------------------------------------------------- ticket

#[test]
fn ticket_ok() {
    let n = node();
    let r = n.attempt(&n.ws(), "json", &["--method", "ticket", "--authid", TICKET_USER, "--ticket", TICKET]);
    assert_joined(&r, TICKET_USER, "user", "ticket");
    assert_eq!(r["challenges"], json!(["ticket"]), "{r}");
}

#[test]
fn ticket_ok_rawsocket_cbor() {
    let n = node();
    let r = n.attempt(&n.rs(), "cbor", &["--method", "ticket", "--authid", TICKET_USER, "--ticket", TICKET]);
    assert_joined(&r, TICKET_USER, "user", "ticket");
}

/// A wrong ticket and an unknown authid get the same ABORT: a client
/// cannot tell which authids exist.
#[test]
fn ticket_wrong_and_unknown_authid_are_indistinguishable() {
    let n = node();
    let wrong = n.attempt(&n.ws(), "json", &["--method", "ticket", "--authid", TICKET_USER, "--ticket", "nope"]);
    let unknown = n.attempt(&n.ws(), "json", &["--method", "ticket", "--authid", "nobody", "--ticket", TICKET]);
    let m1 = assert_refused(&wrong, NOT_AUTHORIZED, &["ticket"]);
    let m2 = assert_refused(&unknown, NOT_AUTHORIZED, &["ticket"]);
    assert_eq!(m1, m2, "wrong ticket and unknown authid must be refused alike");
    assert!(!m1.is_empty());
}

// ---------------------------------------------------------------- WAMP-CRA

#[test]
fn wampcra_plain_ok() {
    let n = node();
    let r = n.attempt(&n.ws(), "msgpack", &["--method", "wampcra", "--authid", CRA_USER, "--secret", CRA_SECRET]);
    assert_joined(&r, CRA_USER, "user", "wampcra");
    assert_eq!(r["challenges"], json!(["wampcra"]), "{r}");
}

#[test]
fn wampcra_plain_wrong() {
    let n = node();
    let r = n.attempt(&n.ws(), "json", &["--method", "wampcra", "--authid", CRA_USER, "--secret", "not-it"]);
    assert_refused(&r, NOT_AUTHORIZED, &["wampcra"]);
}

/// Salted user: Autobahn's `AuthWampCra` sees `salt` in the challenge and
/// signs with `derive_key(password, salt, iterations, keylen)` + `compute_wcs`.
#[test]
fn wampcra_salted_ok() {
    let n = node();
    let r = n.attempt(
        &n.ws(),
        "cbor",
        &["--method", "wampcra", "--authid", CRA_SALTED_USER, "--secret", CRA_SALTED_PASSWORD],
    );
    assert_joined(&r, CRA_SALTED_USER, "admin", "wampcra");
}

#[test]
fn wampcra_salted_wrong() {
    let n = node();
    // The plain user's secret is not the salted user's password.
    let r = n.attempt(&n.ws(), "json", &["--method", "wampcra", "--authid", CRA_SALTED_USER, "--secret", CRA_SECRET]);
    assert_refused(&r, NOT_AUTHORIZED, &["wampcra"]);
}

#[test]
fn wampcra_unknown_user_same_as_wrong_secret() {
    let n = node();
    let wrong = n.attempt(&n.ws(), "json", &["--method", "wampcra", "--authid", CRA_USER, "--secret", "x"]);
    let unknown = n.attempt(&n.ws(), "json", &["--method", "wampcra", "--authid", "ghost", "--secret", "x"]);
    let m1 = assert_refused(&wrong, NOT_AUTHORIZED, &["wampcra"]);
    let m2 = assert_refused(&unknown, NOT_AUTHORIZED, &["wampcra"]);
    assert_eq!(m1, m2);
}

// ---------------------------------------------------------------- cryptosign

#[test]
fn cryptosign_ok() {
    let n = node();
    let key = n.key(0, "privkey");
    let r = n.attempt(&n.ws(), "json", &["--method", "cryptosign", "--authid", CS_USER, "--privkey", &key]);
    assert_joined(&r, CS_USER, "device", "cryptosign");
    assert_eq!(r["challenges"], json!(["cryptosign"]), "{r}");
}

/// Without an authid the principal is found by `authextra.pubkey`.
#[test]
fn cryptosign_found_by_pubkey_rawsocket_cbor() {
    let n = node();
    let key = n.key(0, "privkey");
    let r = n.attempt(&n.rs(), "cbor", &["--method", "cryptosign", "--privkey", &key]);
    assert_joined(&r, CS_USER, "device", "cryptosign");
}

#[test]
fn cryptosign_wrong_key() {
    let n = node();
    let key = n.key(1, "privkey");
    let with_id = n.attempt(&n.ws(), "json", &["--method", "cryptosign", "--authid", CS_USER, "--privkey", &key]);
    let m1 = assert_refused(&with_id, NOT_AUTHORIZED, &["cryptosign"]);
    let without_id = n.attempt(&n.ws(), "json", &["--method", "cryptosign", "--privkey", &key]);
    let m2 = assert_refused(&without_id, NOT_AUTHORIZED, &["cryptosign"]);
    assert_eq!(m1, m2);
}

// ---------------------------------------------------------------- SCRAM

/// Autobahn's `AuthScram` (argon2id-13) against a credential printed by
/// Autobahn's `derive_scram_credential`; the client also verifies the
/// router's `scram_server_signature` before accepting the WELCOME.
/// (Autobahn's `pbkdf2` SCRAM client cannot run at all — it passes the salt
/// as `str` to its own `pbkdf2()`, which raises — so only argon2id is
/// tested end to end.)
#[test]
fn scram_argon2id_ok() {
    let n = node();
    let pw = n.scram_password();
    let r = n.attempt(&n.ws(), "json", &["--method", "scram", "--authid", SCRAM_USER, "--password", &pw]);
    assert_joined(&r, SCRAM_USER, "backend", "scram");
    assert_eq!(r["challenges"], json!(["scram"]), "{r}");
}

#[test]
fn scram_argon2id_wrong() {
    let n = node();
    let r = n.attempt(&n.ws(), "json", &["--method", "scram", "--authid", SCRAM_USER, "--password", "wrong"]);
    assert_refused(&r, NOT_AUTHORIZED, &["scram"]);
}

// ---------------------------------------------------------------- methods

#[test]
fn no_acceptable_auth_method() {
    let n = node();
    let r = n.attempt(&n.ws(), "json", &["--method", "anonymous"]);
    assert_refused(&r, "wamp.error.no_auth_method", &[]);
    let r = n.attempt(&n.rs(), "cbor", &["--method", "anonymous", "--method", "tls"]);
    assert_refused(&r, "wamp.error.no_auth_method", &[]);
}

/// The client's methods are tried in its order; the first one the
/// transport configures is used.
#[test]
fn first_configured_method_in_client_order_wins() {
    let n = node();
    let r = n.attempt(
        &n.ws(),
        "json",
        &[
            "--method",
            "anonymous",
            "--method",
            "ticket",
            "--method",
            "wampcra",
            "--authid",
            TICKET_USER,
            "--ticket",
            TICKET,
        ],
    );
    assert_joined(&r, TICKET_USER, "user", "ticket");
    assert_eq!(r["challenges"], json!(["ticket"]), "{r}");
}

// ---------------------------------------------------------------- failure limit

/// `max_failures` wrong tickets are refused as usual; the next attempt is
/// refused by the failure limiter before any challenge, and so is a correct
/// login from the same peer address while the budget is exhausted.
#[test]
fn failure_rate_limit() {
    let n = node();
    let url = format!("ws://127.0.0.1:{}/ws", n.rl_port);
    let attempts = (RL_MAX_FAILURES + 1).to_string();
    let r = n.process.python(
        "auth.py",
        &[
            &url,
            "realm1",
            "json",
            "--scenario",
            "ratelimit",
            "--method",
            "ticket",
            "--authid",
            TICKET_USER,
            "--ticket",
            TICKET,
            "--wrong-ticket",
            "wrong",
            "--attempts",
            &attempts,
        ],
    );
    let list = r["attempts"].as_array().unwrap_or_else(|| panic!("no attempts: {r}"));
    assert_eq!(list.len(), RL_MAX_FAILURES as usize + 1);
    let first = assert_refused(&list[0], NOT_AUTHORIZED, &["ticket"]).to_owned();
    for (i, a) in list.iter().enumerate().take(RL_MAX_FAILURES as usize) {
        let m = assert_refused(a, NOT_AUTHORIZED, &["ticket"]);
        assert_eq!(m, first, "attempt {i} within the budget: {a}\nall: {r}");
    }
    let limited = &list[RL_MAX_FAILURES as usize];
    assert!(
        limited["message"].as_str().is_some_and(|m| m.contains("too many failed authentication attempts")),
        "attempt {} beyond max_failures={RL_MAX_FAILURES} was not rate limited: {limited}\nall: {r}",
        RL_MAX_FAILURES + 1
    );
    assert_refused(limited, NOT_AUTHORIZED, &[]);
    let fin = &r["final"];
    assert!(
        fin["message"].as_str().is_some_and(|m| m.contains("too many failed authentication attempts")),
        "a correct login was not refused while the peer is limited: {fin}"
    );
    assert_refused(fin, NOT_AUTHORIZED, &[]);
}
