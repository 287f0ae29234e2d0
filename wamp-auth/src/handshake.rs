//! The router side of WAMP authentication: [`AuthHandshake`], a sans-IO
//! state machine fed with HELLO, AUTHENTICATE and dynamic-authenticator
//! results, answering with [`AuthStep`]s.
//!
//! ```text
//! Start --HELLO--> Welcome | Abort | Challenge | Dynamic
//! Dynamic --resume_dynamic--> Welcome | Abort | Challenge
//! Challenge --AUTHENTICATE--> Welcome | Abort | Dynamic (ticket)
//! ```
//!
//! Method selection follows Crossbar: the client's `authmethods` (default
//! `["anonymous"]`) are tried in the client's order and the first one the
//! transport configures is used (no fallback if it then fails); none →
//! `wamp.error.no_auth_method`.
//!
//! Credential failures of any kind (unknown authid, wrong ticket/signature/
//! proof, unknown certificate, expired challenge, authenticator denial) end
//! in `wamp.error.not_authorized` with the same message, and are flagged
//! [`AuthStep::Abort::failed`] so the caller can charge the peer's
//! [`crate::FailureLimiter`]. Unknown principals get a *mock* challenge that
//! looks like a real one (stable per authid), so the HELLO reply does not
//! reveal which authids exist.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{CryptoRng, Rng, RngCore};
use wamp_proto::{Dict, List, Message, SessionId, Value};

use crate::config::{AuthConfig, CryptosignPrincipal, DynamicAuthenticator, Grant, Method, Provider};
use crate::cra::{self, hmac_sha256, CraChallenge};
use crate::cryptosign::{self, ChannelBinding};
use crate::scram::{self, Credential, Kdf};
use crate::tls;
use crate::util::{b64, b64_decode, ct_eq, hex_array, hex_decode, hex_encode};

/// Error and reason URIs used in ABORTs.
pub mod uris {
    /// Credentials were wrong, or the peer may not authenticate now.
    pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
    /// A dynamic authenticator misbehaved.
    pub const AUTHENTICATION_FAILED: &str = "wamp.error.authentication_failed";
    /// None of the client's authmethods is configured.
    pub const NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
    /// The realm (possibly assigned by a principal) does not exist.
    pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
    /// The role does not exist on the realm.
    pub const NO_SUCH_ROLE: &str = "wamp.error.no_such_role";
    /// No authid could be determined.
    pub const NO_SUCH_PRINCIPAL: &str = "wamp.error.no_such_principal";
    /// Malformed authentication messages.
    pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
}
use uris::*;

/// The one message sent for every credential failure.
pub const FAILED_MESSAGE: &str = "authentication failed";

/// What the handshake knows about the transport.
#[derive(Debug, Clone, Default)]
pub struct TransportInfo {
    /// Peer address, e.g. `tcp4:127.0.0.1:5555` (the failure limiter key).
    pub peer: String,
    /// RFC 5929 `tls-unique` channel id, if the TLS stack provides it.
    pub tls_unique: Option<[u8; 32]>,
    /// RFC 9266 `tls-exporter` channel id (TLS exporter, label
    /// `EXPORTER-Channel-Binding`, empty context, 32 bytes).
    pub tls_exporter: Option<[u8; 32]>,
    /// The verified TLS client certificate (DER), if any.
    pub peer_cert_der: Option<Vec<u8>>,
    /// Transport details handed to dynamic authenticators as
    /// `details.transport` (type, peer, serializer, ...).
    pub details: Dict,
}

impl TransportInfo {
    fn channel_id(&self, b: ChannelBinding) -> Option<&[u8; 32]> {
        match b {
            ChannelBinding::TlsUnique => self.tls_unique.as_ref(),
            ChannelBinding::TlsExporter => self.tls_exporter.as_ref(),
        }
    }
}

/// The realms and roles that exist (implemented by the router).
pub trait RealmDirectory {
    /// Does `realm` exist?
    fn has_realm(&self, realm: &str) -> bool;
    /// Does `role` exist on `realm`? (`anonymous` and `trusted` are never
    /// asked, as in Crossbar.)
    fn has_role(&self, realm: &str, role: &str) -> bool;
}

/// A [`RealmDirectory`] from two closures `(has_realm, has_role)`.
pub struct RealmFns<A, B>(pub A, pub B);

impl<A: Fn(&str) -> bool, B: Fn(&str, &str) -> bool> RealmDirectory for RealmFns<A, B> {
    fn has_realm(&self, realm: &str) -> bool {
        (self.0)(realm)
    }
    fn has_role(&self, realm: &str, role: &str) -> bool {
        (self.1)(realm, role)
    }
}

/// Monotonic and wall-clock time of one event (sans-IO: passed in).
#[derive(Debug, Clone, Copy)]
pub struct Time {
    /// For challenge expiry.
    pub mono: Instant,
    /// For WAMP-CRA challenge timestamps.
    pub wall: SystemTime,
}

impl Time {
    /// The current time (for callers; the handshake never reads clocks).
    pub fn now() -> Self {
        Time { mono: Instant::now(), wall: SystemTime::now() }
    }
}

/// The identity a session is admitted with.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// Realm to join (exists).
    pub realm: String,
    /// Authenticated authid.
    pub authid: String,
    /// Role (exists on the realm, or is `anonymous`/`trusted`).
    pub authrole: String,
    /// Method used (`anonymous`, `ticket`, `wampcra`, ...).
    pub authmethod: String,
    /// `static` or `dynamic`.
    pub authprovider: String,
    /// For `WELCOME.Details.authextra` (e.g. SCRAM's
    /// `scram_server_signature`, or a dynamic authenticator's `extra`).
    pub authextra: Dict,
}

/// A call the router must make to a dynamic authenticator, then feed the
/// outcome to [`AuthHandshake::resume_dynamic`].
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicAuthRequest {
    /// Procedure URI.
    pub procedure: String,
    /// Realm to call it on (configured `authenticator-realm`, else the
    /// realm the client asked for).
    pub realm: String,
    /// Configured `authenticator-role`, if any.
    pub role: Option<String>,
    /// Positional arguments: `[realm, authid (or null), details]`, as
    /// Crossbar calls them. `details` has `transport`, `session`,
    /// `authmethod`, `authid`, `authrole`, `authextra`, and for ticket
    /// `ticket`.
    pub args: List,
}

/// An error returned by a dynamic authenticator (or the failed call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicError {
    /// Error URI (forwarded as the ABORT reason, as Crossbar does).
    pub error: String,
    /// First positional argument of the error, if a string.
    pub message: Option<String>,
}

/// The handshake's answer to one input.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthStep {
    /// Send `[CHALLENGE, method, extra]` and wait for AUTHENTICATE.
    Challenge {
        /// Authmethod.
        method: String,
        /// Challenge extra.
        extra: Dict,
    },
    /// Admit the session.
    Welcome(Welcome),
    /// Send `[ABORT, {message}, reason]` and close.
    Abort {
        /// Reason URI.
        reason: String,
        /// Human-readable message (never says which credential part was
        /// wrong).
        message: String,
        /// True for authentication failures: charge the peer's failure
        /// budget ([`crate::FailureLimiter::record_failure`]).
        failed: bool,
    },
    /// Call a dynamic authenticator, then [`AuthHandshake::resume_dynamic`].
    Dynamic(DynamicAuthRequest),
}

impl AuthStep {
    /// The CHALLENGE or ABORT message of this step (`None` for Welcome and
    /// Dynamic, which the router handles itself).
    pub fn to_message(&self) -> Option<Message> {
        match self {
            AuthStep::Challenge { method, extra } => {
                Some(Message::Challenge { method: method.clone(), extra: extra.clone() })
            }
            AuthStep::Abort { reason, message, .. } => {
                let mut details = Dict::new();
                details.insert("message".into(), Value::Str(message.clone()));
                Some(Message::Abort { details, reason: reason.clone() })
            }
            _ => None,
        }
    }
}

/// The ABORT for a peer over its failure budget.
pub fn rate_limited(retry: crate::Retry) -> AuthStep {
    AuthStep::Abort {
        reason: NOT_AUTHORIZED.into(),
        message: format!("too many failed authentication attempts: retry in {} s", retry.after.as_secs().max(1)),
        failed: false,
    }
}

#[derive(Debug)]
struct Hello {
    realm: String,
    authrole: Option<String>,
    authextra: Option<Dict>,
}

#[derive(Debug)]
enum DynPhase {
    Anonymous,
    Ticket,
    WampCra,
    Cryptosign { pubkey: Option<[u8; 32]>, binding: Option<ChannelBinding> },
    Scram { client_nonce: String },
    Tls,
}

#[derive(Debug)]
enum Pending {
    Ticket { expected: Option<(Vec<u8>, Grant)>, dynamic: Option<DynamicAuthenticator> },
    Cra { expected: String, grant: Option<Grant>, extra: Dict },
    Cryptosign { key: Option<[u8; 32]>, message: [u8; 32], grant: Option<Grant>, extra: Dict },
    Scram { cred: Credential, auth_message: String, grant: Option<Grant>, extra: Dict },
}

#[derive(Debug)]
enum State {
    Start,
    Dynamic { phase: DynPhase },
    Challenged { deadline: Instant, pending: Pending },
    Finished,
}

/// One connection's authentication; see the module docs.
#[derive(Debug)]
pub struct AuthHandshake {
    cfg: Arc<AuthConfig>,
    transport: TransportInfo,
    session: SessionId,
    state: State,
    method: &'static str,
    provider: &'static str,
    hello: Option<Hello>,
    /// The authid the session will get if authentication succeeds.
    authid: Option<String>,
}

impl AuthHandshake {
    /// A handshake for one connection. `session` is the ID the session will
    /// get (it appears in WAMP-CRA challenges and authenticator details).
    pub fn new(cfg: Arc<AuthConfig>, transport: TransportInfo, session: SessionId) -> Self {
        AuthHandshake {
            cfg,
            transport,
            session,
            state: State::Start,
            method: "anonymous",
            provider: "static",
            hello: None,
            authid: None,
        }
    }

    /// The peer address given in [`TransportInfo`].
    pub fn peer(&self) -> &str {
        &self.transport.peer
    }

    /// True once a Welcome or Abort was returned.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// When the pending CHALLENGE expires, if one is pending (the caller
    /// may close the connection then).
    pub fn challenge_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Challenged { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    fn abort(&mut self, reason: &str, message: impl Into<String>) -> AuthStep {
        self.state = State::Finished;
        AuthStep::Abort { reason: reason.into(), message: message.into(), failed: false }
    }

    fn fail(&mut self) -> AuthStep {
        self.state = State::Finished;
        AuthStep::Abort { reason: NOT_AUTHORIZED.into(), message: FAILED_MESSAGE.into(), failed: true }
    }

    /// Handles the HELLO (realm and details as received; the realm URI is
    /// assumed checked by the caller).
    pub fn handle_hello<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        realm: &str,
        details: &Dict,
        time: Time,
        realms: &dyn RealmDirectory,
        rng: &mut R,
    ) -> AuthStep {
        if !matches!(self.state, State::Start) {
            return self.abort(PROTOCOL_VIOLATION, "HELLO received twice");
        }
        let authid = match details.get("authid") {
            Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Str(_)) | Some(Value::Null) | None => None,
            Some(_) => return self.abort(PROTOCOL_VIOLATION, "HELLO.Details.authid must be a string"),
        };
        let authrole = match details.get("authrole") {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let authextra = match details.get("authextra") {
            Some(Value::Dict(d)) => Some(d.clone()),
            Some(Value::Null) | None => None,
            Some(_) => return self.abort(PROTOCOL_VIOLATION, "HELLO.Details.authextra must be a dict"),
        };
        if let Some(e) = &authextra {
            let size = value_size(&Value::Dict(e.clone()), self.cfg.max_authextra_size);
            if size > self.cfg.max_authextra_size {
                let msg = format!("HELLO.Details.authextra is larger than {} bytes", self.cfg.max_authextra_size);
                return self.abort("wamp.error.invalid_argument", msg);
            }
        }
        let offered: Vec<&str> = match details.get("authmethods") {
            None | Some(Value::Null) => vec!["anonymous"],
            Some(Value::List(l)) if l.is_empty() => vec!["anonymous"],
            Some(Value::List(l)) => l.iter().filter_map(Value::as_str).take(16).collect(),
            Some(_) => return self.abort(PROTOCOL_VIOLATION, "HELLO.Details.authmethods must be a list"),
        };
        let cfg = Arc::clone(&self.cfg);
        let Some(method) = offered.iter().find_map(|name| cfg.method(name)) else {
            let mut names = String::new();
            for (i, m) in cfg.methods().iter().enumerate() {
                if i > 0 {
                    names.push_str(", ");
                }
                names.push_str(m.name());
            }
            return self.abort(
                NO_AUTH_METHOD,
                format!("cannot authenticate using any of the offered authmethods (available: {names})"),
            );
        };
        self.method = method.name();
        self.hello = Some(Hello { realm: realm.to_owned(), authrole, authextra });
        self.authid = authid.clone();
        match method {
            Method::Anonymous { role, authid: fixed, realm: to } => {
                let id = fixed.clone().or(authid).unwrap_or_else(|| generate_authid(rng));
                let grant = Grant { role: role.clone(), realm: to.clone() };
                self.finish(id, &grant, Dict::new(), realms)
            }
            Method::AnonymousDynamic(d) => {
                self.provider = "dynamic";
                if self.authid.is_none() {
                    self.authid = Some(generate_authid(rng));
                }
                self.call(d, DynPhase::Anonymous, None)
            }
            Method::Ticket(p) => {
                let (expected, dynamic) = match p {
                    Provider::Static(map) => {
                        (authid.as_deref().and_then(|a| map.get(a)).map(|t| (t.ticket.clone(), t.grant.clone())), None)
                    }
                    Provider::Dynamic(d) => {
                        self.provider = "dynamic";
                        (None, Some(d.clone()))
                    }
                };
                self.challenge(time, Pending::Ticket { expected, dynamic }, Dict::new())
            }
            Method::WampCra(Provider::Static(users)) => {
                let user = authid.as_deref().and_then(|a| users.get(a));
                let (key, salt, grant) = match user {
                    Some(u) => (u.key.clone(), u.salt.clone(), Some(u.grant.clone())),
                    None => {
                        // Mock: shaped like the first user, keyed per authid.
                        let first = users.values().next();
                        let seed = hmac_sha256(&cfg.mock_secret, &[b"cra", authid.as_deref().unwrap_or("").as_bytes()]);
                        let salt = first.and_then(|u| u.salt.as_ref()).map(|(_, it, kl)| (b64(&seed[..12]), *it, *kl));
                        (seed.to_vec(), salt, None)
                    }
                };
                let role = match (&grant, users.values().next()) {
                    (Some(g), _) => g.role.clone(),
                    (None, Some(u)) => u.grant.role.clone(),
                    (None, None) => "user".to_owned(),
                };
                let id = authid.unwrap_or_default();
                self.cra_challenge(&id, &role, &key, salt, grant, time, rng)
            }
            Method::WampCra(Provider::Dynamic(d)) => {
                self.provider = "dynamic";
                self.call(d, DynPhase::WampCra, None)
            }
            Method::Cryptosign(p) => {
                let extra = self.hello.as_ref().and_then(|h| h.authextra.clone()).unwrap_or_default();
                let pubkey = match extra.get("pubkey") {
                    None | Some(Value::Null) => None,
                    Some(Value::Str(s)) => match hex_array::<32>(s) {
                        Some(k) => Some(k),
                        None => return self.fail(),
                    },
                    Some(_) => return self.abort(PROTOCOL_VIOLATION, "authextra.pubkey must be a hex string"),
                };
                let binding = match extra.get("channel_binding") {
                    None | Some(Value::Null) => None,
                    Some(Value::Str(s)) => match ChannelBinding::from_name(s) {
                        Some(b) if self.transport.channel_id(b).is_some() => Some(b),
                        Some(b) => {
                            return self.abort(
                                NOT_AUTHORIZED,
                                format!("channel binding '{}' is not available on this transport", b.name()),
                            )
                        }
                        None => return self.abort(NOT_AUTHORIZED, "invalid channel binding type requested"),
                    },
                    Some(_) => return self.abort(PROTOCOL_VIOLATION, "authextra.channel_binding must be a string"),
                };
                match p {
                    Provider::Static(principals) => {
                        let found = find_cryptosign(principals, authid.as_deref(), pubkey.as_ref());
                        let (key, grant) = match found {
                            Some((id, key, pr)) => {
                                self.authid = Some(id.to_owned());
                                (Some(key), Some(pr.grant.clone()))
                            }
                            None => (None, None),
                        };
                        self.cryptosign_challenge(key, grant, binding, time, rng)
                    }
                    Provider::Dynamic(d) => {
                        self.provider = "dynamic";
                        self.call(d, DynPhase::Cryptosign { pubkey, binding }, None)
                    }
                }
            }
            Method::Scram(p) => {
                let extra = self.hello.as_ref().and_then(|h| h.authextra.clone()).unwrap_or_default();
                let client_nonce = match extra.get("nonce") {
                    Some(Value::Str(s)) if b64_decode(s).is_some_and(|n| !n.is_empty() && n.len() <= 256) => s.clone(),
                    _ => {
                        return self
                            .abort(NOT_AUTHORIZED, "WAMP-SCRAM: the client must send a base64 nonce in authextra")
                    }
                };
                if matches!(extra.get("channel_binding"), Some(Value::Str(_))) {
                    return self.abort(NOT_AUTHORIZED, "WAMP-SCRAM channel binding is not supported");
                }
                let Some(id) = authid else {
                    return self.abort(NO_SUCH_PRINCIPAL, "WAMP-SCRAM requires an authid");
                };
                match p {
                    Provider::Static(principals) => {
                        let (kdf, it, mem, salt, cred, grant) = match principals.get(&id) {
                            Some(pr) => (
                                pr.kdf,
                                pr.iterations,
                                pr.memory,
                                pr.salt.clone(),
                                pr.cred.clone(),
                                Some(pr.grant.clone()),
                            ),
                            None => {
                                let first = principals.values().next();
                                let seed = hmac_sha256(&cfg.mock_secret, &[b"scram", id.as_bytes()]);
                                let salt = seed[..16].to_vec();
                                let cred =
                                    Credential { stored_key: hmac_sha256(&seed, &[b"stored"]), server_key: seed };
                                match first {
                                    Some(f) => (f.kdf, f.iterations, f.memory, salt, cred, None),
                                    None => (Kdf::Argon2id13, 4096, 512, salt, cred, None),
                                }
                            }
                        };
                        self.scram_challenge(&id, &client_nonce, kdf, it, mem, &salt, cred, grant, time, rng)
                    }
                    Provider::Dynamic(d) => {
                        self.provider = "dynamic";
                        self.call(d, DynPhase::Scram { client_nonce }, None)
                    }
                }
            }
            Method::Tls(p) => {
                let Some(der) = self.transport.peer_cert_der.as_deref() else {
                    return self.abort(NOT_AUTHORIZED, "the client did not send a TLS client certificate");
                };
                let fp = tls::sha1_fingerprint(der);
                let cn = tls::subject_common_name(der);
                match p {
                    Provider::Static(principals) => {
                        let found = principals.iter().find(|(_, pr)| {
                            pr.sha1.as_deref().is_some_and(|s| ct_eq(s.as_bytes(), fp.as_bytes()))
                                || (pr.cn.is_some() && pr.cn == cn)
                        });
                        match found {
                            Some((id, pr)) => {
                                let (id, grant) = (id.clone(), pr.grant.clone());
                                self.finish(id, &grant, Dict::new(), realms)
                            }
                            None => self.fail(),
                        }
                    }
                    Provider::Dynamic(d) => {
                        self.provider = "dynamic";
                        let mut cert = Dict::new();
                        cert.insert("sha1".into(), Value::Str(fp));
                        cert.insert("cn".into(), cn.map(Value::Str).unwrap_or(Value::Null));
                        self.call(d, DynPhase::Tls, Some(("peer_cert", Value::Dict(cert))))
                    }
                }
            }
        }
    }

    /// Handles AUTHENTICATE.
    pub fn handle_authenticate(
        &mut self,
        signature: &str,
        _extra: &Dict,
        now: Instant,
        realms: &dyn RealmDirectory,
    ) -> AuthStep {
        let State::Challenged { deadline, .. } = &self.state else {
            return self.abort(PROTOCOL_VIOLATION, "unexpected AUTHENTICATE");
        };
        if now > *deadline {
            self.state = State::Finished;
            return AuthStep::Abort {
                reason: NOT_AUTHORIZED.into(),
                message: format!("{FAILED_MESSAGE}: the challenge expired"),
                failed: true,
            };
        }
        let State::Challenged { pending, .. } = std::mem::replace(&mut self.state, State::Finished) else {
            return self.fail();
        };
        let Some(authid) = self.authid.clone() else {
            return self.fail();
        };
        match pending {
            Pending::Ticket { dynamic: Some(d), .. } => {
                self.state = State::Dynamic { phase: DynPhase::Ticket };
                let req = self.request(&d, Some(("ticket", Value::Str(signature.to_owned()))));
                AuthStep::Dynamic(req)
            }
            Pending::Ticket { expected, dynamic: None } => {
                // Compare against a dummy for unknown authids as well.
                let (want, grant) = match expected {
                    Some((t, g)) => (t, Some(g)),
                    None => (self.cfg.mock_secret.to_vec(), None),
                };
                match (ct_eq(signature.as_bytes(), &want), grant) {
                    (true, Some(g)) => self.finish(authid, &g, Dict::new(), realms),
                    _ => self.fail(),
                }
            }
            Pending::Cra { expected, grant, extra } => {
                match (ct_eq(signature.as_bytes(), expected.as_bytes()), grant) {
                    (true, Some(g)) => self.finish(authid, &g, extra, realms),
                    _ => self.fail(),
                }
            }
            Pending::Cryptosign { key, message, grant, extra } => {
                let ok = key.is_some_and(|k| cryptosign::verify(&k, &message, signature).is_ok());
                match (ok, grant) {
                    (true, Some(g)) => self.finish(authid, &g, extra, realms),
                    _ => self.fail(),
                }
            }
            Pending::Scram { cred, auth_message, grant, mut extra } => {
                match (scram::verify_proof(&cred, &auth_message, signature), grant) {
                    (Some(sig), Some(g)) => {
                        extra.insert("scram_server_signature".into(), Value::Str(b64(&sig)));
                        self.finish(authid, &g, extra, realms)
                    }
                    _ => self.fail(),
                }
            }
        }
    }

    /// Continues after a [`AuthStep::Dynamic`] call: `Ok(value)` is the
    /// authenticator's result (a role string or a principal dict),
    /// `Err` its error.
    pub fn resume_dynamic<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        result: Result<Value, DynamicError>,
        time: Time,
        realms: &dyn RealmDirectory,
        rng: &mut R,
    ) -> AuthStep {
        let State::Dynamic { .. } = &self.state else {
            return self.abort(PROTOCOL_VIOLATION, "no dynamic authentication is pending");
        };
        let State::Dynamic { phase } = std::mem::replace(&mut self.state, State::Finished) else {
            return self.fail();
        };
        let principal = match result {
            Err(e) => {
                self.state = State::Finished;
                return AuthStep::Abort {
                    reason: e.error,
                    message: e.message.unwrap_or_else(|| FAILED_MESSAGE.to_owned()),
                    failed: true,
                };
            }
            Ok(Value::Str(role)) => {
                let mut d = Dict::new();
                d.insert("role".into(), Value::Str(role));
                d
            }
            Ok(Value::Dict(d)) => d,
            Ok(_) => {
                return self.abort(AUTHENTICATION_FAILED, "dynamic authenticator returned neither a role nor a dict")
            }
        };
        let str_of = |k: &str| principal.get(k).and_then(Value::as_str).map(str::to_owned);
        if let Some(a) = str_of("authid") {
            self.authid = Some(a);
        }
        let role = match str_of("role") {
            Some(r) => r,
            None => return self.abort(NO_SUCH_ROLE, "no authrole assigned"),
        };
        let grant = Grant { role, realm: str_of("realm") };
        let extra = principal.get("extra").and_then(Value::as_dict).cloned().unwrap_or_default();
        let Some(authid) = self.authid.clone() else {
            return self.abort(NO_SUCH_PRINCIPAL, "no authid assigned");
        };
        match phase {
            DynPhase::Anonymous | DynPhase::Ticket | DynPhase::Tls => self.finish(authid, &grant, extra, realms),
            DynPhase::WampCra => {
                let Some(secret) = str_of("secret") else {
                    return self.abort(AUTHENTICATION_FAILED, "dynamic WAMP-CRA authenticator returned no secret");
                };
                let salt = str_of("salt").map(|s| {
                    let it =
                        principal.get("iterations").and_then(Value::as_u64).unwrap_or(1000).clamp(1, 1_000_000) as u32;
                    let kl = principal.get("keylen").and_then(Value::as_u64).unwrap_or(32).clamp(1, 256) as u32;
                    (s, it, kl)
                });
                let key = match &salt {
                    Some((s, it, kl)) => {
                        cra::derive_key(secret.as_bytes(), s.as_bytes(), *it, *kl as usize).into_bytes()
                    }
                    None => secret.into_bytes(),
                };
                let role = grant.role.clone();
                self.state = State::Finished;
                let mut step = self.cra_challenge(&authid, &role, &key, salt, Some(grant), time, rng);
                if let (AuthStep::Challenge { .. }, State::Challenged { pending: Pending::Cra { extra: e, .. }, .. }) =
                    (&mut step, &mut self.state)
                {
                    *e = extra;
                }
                step
            }
            DynPhase::Cryptosign { pubkey, binding } => {
                let key = match principal.get("pubkey") {
                    Some(Value::Str(s)) => hex_array::<32>(s),
                    _ => pubkey,
                };
                let Some(key) = key else {
                    return self.abort(AUTHENTICATION_FAILED, "no public key for the principal");
                };
                if pubkey.is_some_and(|p| p != key) {
                    return self.fail();
                }
                let step = self.cryptosign_challenge(Some(key), Some(grant), binding, time, rng);
                if let State::Challenged { pending: Pending::Cryptosign { extra: e, .. }, .. } = &mut self.state {
                    *e = extra;
                }
                step
            }
            DynPhase::Scram { client_nonce } => {
                let kdf = match str_of("kdf").as_deref() {
                    Some("argon2id-13") | Some("argon2id13") => Kdf::Argon2id13,
                    Some("pbkdf2") => Kdf::Pbkdf2,
                    _ => {
                        return self
                            .abort(AUTHENTICATION_FAILED, "dynamic WAMP-SCRAM authenticator returned no valid kdf")
                    }
                };
                let num = |k: &str| principal.get(k).and_then(Value::as_u64).map(|n| n.min(u32::MAX as u64) as u32);
                let hex = |k: &str| str_of(k).and_then(|s| hex_decode(&s));
                let (Some(it), Some(salt), Some(stored), Some(server)) =
                    (num("iterations"), hex("salt"), hex("stored-key"), hex("server-key"))
                else {
                    return self.abort(
                        AUTHENTICATION_FAILED,
                        "dynamic WAMP-SCRAM authenticator returned an incomplete credential",
                    );
                };
                let (Ok(stored_key), Ok(server_key)) = (<[u8; 32]>::try_from(stored), <[u8; 32]>::try_from(server))
                else {
                    return self
                        .abort(AUTHENTICATION_FAILED, "dynamic WAMP-SCRAM authenticator returned malformed keys");
                };
                let mem = num("memory").unwrap_or(0);
                let step = self.scram_challenge(
                    &authid,
                    &client_nonce,
                    kdf,
                    it,
                    mem,
                    &salt,
                    Credential { stored_key, server_key },
                    Some(grant),
                    time,
                    rng,
                );
                if let State::Challenged { pending: Pending::Scram { extra: e, .. }, .. } = &mut self.state {
                    *e = extra;
                }
                step
            }
        }
    }

    fn challenge(&mut self, time: Time, pending: Pending, extra: Dict) -> AuthStep {
        self.state = State::Challenged { deadline: time.mono + self.cfg.challenge_timeout, pending };
        AuthStep::Challenge { method: self.method.to_owned(), extra }
    }

    #[allow(clippy::too_many_arguments)]
    fn cra_challenge<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        authid: &str,
        role: &str,
        key: &[u8],
        salt: Option<(String, u32, u32)>,
        grant: Option<Grant>,
        time: Time,
        rng: &mut R,
    ) -> AuthStep {
        let mut nonce_bytes = [0u8; 48];
        rng.fill_bytes(&mut nonce_bytes);
        let nonce = b64(&nonce_bytes);
        let since = time.wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let timestamp = cra::utc_timestamp(since);
        let challenge = cra::challenge_string(&CraChallenge {
            authid,
            authrole: role,
            authprovider: self.provider,
            nonce: &nonce,
            timestamp: &timestamp,
            session: self.session.get(),
        });
        let expected = cra::compute_wcs(key, challenge.as_bytes());
        let mut extra = Dict::new();
        extra.insert("challenge".into(), Value::Str(challenge));
        if let Some((s, it, kl)) = salt {
            extra.insert("salt".into(), Value::Str(s));
            extra.insert("iterations".into(), Value::UInt(it as u64));
            extra.insert("keylen".into(), Value::UInt(kl as u64));
        }
        self.challenge(time, Pending::Cra { expected, grant, extra: Dict::new() }, extra)
    }

    fn cryptosign_challenge<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        key: Option<[u8; 32]>,
        grant: Option<Grant>,
        binding: Option<ChannelBinding>,
        time: Time,
        rng: &mut R,
    ) -> AuthStep {
        let mut challenge = [0u8; 32];
        rng.fill_bytes(&mut challenge);
        let channel_id = binding.and_then(|b| self.transport.channel_id(b));
        let message = cryptosign::signed_message(&challenge, channel_id);
        let mut extra = Dict::new();
        extra.insert("challenge".into(), Value::Str(hex_encode(&challenge)));
        extra.insert("channel_binding".into(), binding.map(|b| Value::Str(b.name().into())).unwrap_or(Value::Null));
        if self.authid.is_none() {
            // Unknown principal without authid: keep the mock path going.
            self.authid = Some(String::new());
        }
        self.challenge(time, Pending::Cryptosign { key, message, grant, extra: Dict::new() }, extra)
    }

    #[allow(clippy::too_many_arguments)]
    fn scram_challenge<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        authid: &str,
        client_nonce: &str,
        kdf: Kdf,
        iterations: u32,
        memory: u32,
        salt: &[u8],
        cred: Credential,
        grant: Option<Grant>,
        time: Time,
        rng: &mut R,
    ) -> AuthStep {
        let mut nonce = b64_decode(client_nonce).unwrap_or_default();
        let mut own = [0u8; 16];
        rng.fill_bytes(&mut own);
        nonce.extend_from_slice(&own);
        let server_nonce = b64(&nonce);
        let salt_b64 = b64(salt);
        let auth_message = scram::auth_message(authid, client_nonce, &server_nonce, &salt_b64, iterations, "");
        let mut extra = Dict::new();
        extra.insert("nonce".into(), Value::Str(server_nonce));
        extra.insert("kdf".into(), Value::Str(kdf.name().into()));
        extra.insert("salt".into(), Value::Str(salt_b64));
        extra.insert("iterations".into(), Value::UInt(iterations as u64));
        if kdf == Kdf::Argon2id13 {
            extra.insert("memory".into(), Value::UInt(memory as u64));
        }
        self.challenge(time, Pending::Scram { cred, auth_message, grant, extra: Dict::new() }, extra)
    }

    fn request(&self, d: &DynamicAuthenticator, add: Option<(&str, Value)>) -> DynamicAuthRequest {
        let hello = self.hello.as_ref();
        let realm = hello.map(|h| h.realm.clone()).unwrap_or_default();
        let mut details = Dict::new();
        details.insert("transport".into(), Value::Dict(self.transport.details.clone()));
        details.insert("session".into(), Value::UInt(self.session.get()));
        details.insert("authmethod".into(), Value::Str(self.method.into()));
        details.insert("authid".into(), self.authid.clone().map(Value::Str).unwrap_or(Value::Null));
        details
            .insert("authrole".into(), hello.and_then(|h| h.authrole.clone()).map(Value::Str).unwrap_or(Value::Null));
        details.insert(
            "authextra".into(),
            hello.and_then(|h| h.authextra.clone()).map(Value::Dict).unwrap_or(Value::Null),
        );
        if let Some((k, v)) = add {
            details.insert(k.into(), v);
        }
        DynamicAuthRequest {
            procedure: d.authenticator.clone(),
            realm: d.authenticator_realm.clone().unwrap_or_else(|| realm.clone()),
            role: d.authenticator_role.clone(),
            args: vec![
                Value::Str(realm),
                self.authid.clone().map(Value::Str).unwrap_or(Value::Null),
                Value::Dict(details),
            ],
        }
    }

    fn call(&mut self, d: &DynamicAuthenticator, phase: DynPhase, add: Option<(&str, Value)>) -> AuthStep {
        let req = self.request(d, add);
        self.state = State::Dynamic { phase };
        AuthStep::Dynamic(req)
    }

    fn finish(&mut self, authid: String, grant: &Grant, authextra: Dict, realms: &dyn RealmDirectory) -> AuthStep {
        let requested = self.hello.as_ref().map(|h| h.realm.as_str()).unwrap_or("");
        let realm = grant.realm.clone().unwrap_or_else(|| requested.to_owned());
        if !realms.has_realm(&realm) {
            return self.abort(NO_SUCH_REALM, format!("no realm '{}' exists on this router", clip(&realm)));
        }
        let exempt = grant.role == "anonymous" || grant.role == "trusted";
        if !exempt && !realms.has_role(&realm, &grant.role) {
            return self.abort(NO_SUCH_ROLE, format!("realm '{}' has no role '{}'", clip(&realm), clip(&grant.role)));
        }
        if authid.is_empty() {
            return self.abort(NO_SUCH_PRINCIPAL, "no authid assigned");
        }
        self.state = State::Finished;
        AuthStep::Welcome(Welcome {
            realm,
            authid,
            authrole: grant.role.clone(),
            authmethod: self.method.to_owned(),
            authprovider: self.provider.to_owned(),
            authextra,
        })
    }
}

/// The cryptosign principal for (authid, pubkey): authid decides if given
/// (pubkey, if given, must be one of its keys; if not given the principal
/// must have exactly one key), else the pubkey must belong to exactly one
/// principal.
fn find_cryptosign<'a>(
    principals: &'a indexmap::IndexMap<String, CryptosignPrincipal>,
    authid: Option<&str>,
    pubkey: Option<&[u8; 32]>,
) -> Option<(&'a str, [u8; 32], &'a CryptosignPrincipal)> {
    match (authid, pubkey) {
        (Some(a), Some(k)) => {
            let (id, pr) = principals.get_key_value(a)?;
            pr.keys.contains(k).then_some((id.as_str(), *k, pr))
        }
        (Some(a), None) => {
            let (id, pr) = principals.get_key_value(a)?;
            match pr.keys.as_slice() {
                [only] => Some((id.as_str(), *only, pr)),
                _ => None,
            }
        }
        (None, Some(k)) => {
            let mut it = principals.iter().filter(|(_, pr)| pr.keys.contains(k));
            let (id, pr) = it.next()?;
            if it.next().is_some() {
                return None;
            }
            Some((id.as_str(), *k, pr))
        }
        (None, None) => None,
    }
}

/// Characters of generated authids (Autobahn's token alphabet).
const TOKEN_CHARS: &[u8] = b"345679ACEFGHJKLMNPQRSTUVWXY";

/// A Crossbar-style serial authid `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`.
pub fn generate_authid<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut s = String::with_capacity(29);
    for g in 0..6 {
        if g > 0 {
            s.push('-');
        }
        for _ in 0..4 {
            s.push(TOKEN_CHARS[rng.gen_range(0..TOKEN_CHARS.len())] as char);
        }
    }
    s
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(100) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The size of `v` in bytes of its strings, keys and byte strings, plus 8
/// per other value; stops counting once past `cap`.
fn value_size(v: &Value, cap: usize) -> usize {
    match v {
        Value::Str(s) => s.len(),
        Value::Bytes(b) => b.len(),
        Value::List(l) => {
            let mut n = 8;
            for x in l {
                n += value_size(x, cap);
                if n > cap {
                    break;
                }
            }
            n
        }
        Value::Dict(d) => {
            let mut n = 8;
            for (k, x) in d {
                n += k.len() + value_size(x, cap);
                if n > cap {
                    break;
                }
            }
            n
        }
        _ => 8,
    }
}
