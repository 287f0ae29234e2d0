//! HELLO processing before a session joins a realm.
//!
//! The runtime decodes the first message of a connection and hands it to
//! [`process_hello`]. The outcome is either the identity under which the
//! session joins ([`HandshakeOutcome::Join`], then call
//! [`Realm::join`](super::Realm::join)), or an ABORT to send before closing
//! the transport ([`HandshakeOutcome::Abort`], encode it with the session's
//! serializer, e.g. via [`encode_abort`]).
//!
//! Checks, in order (reasons as Crossbar uses them):
//! 1. the message is a HELLO, else `wamp.error.protocol_violation`;
//! 2. `details.roles` is a dict naming at least one client role
//!    (`publisher`, `subscriber`, `caller`, `callee`), else
//!    `wamp.error.protocol_violation` (a Flatbuffers HELLO cannot carry
//!    roles at all: [`process_hello_from`] accepts their absence there);
//! 3. the realm is a valid URI, else `wamp.error.invalid_uri`;
//! 4. the realm exists, else `wamp.error.no_such_realm`;
//! 5. if the client lists `authmethods`, it includes `"anonymous"` — the only
//!    method implemented — else `wamp.error.no_auth_method` (what Crossbar
//!    answers when none of the offered methods is usable).
//!
//! Only anonymous authentication exists: the session gets the configured
//! role, authmethod `anonymous`, authprovider `static`, and as authid the
//! `authid` the client asked for (a non-empty string), else a random
//! Crossbar-style serial `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`. Note that Crossbar
//! ignores a client-chosen authid for anonymous sessions; Junction honours it
//! (it is exactly as trustworthy as anonymous itself).

use bytes::Bytes;
use rand::Rng;
use wamp_proto::{Dict, EncodeError, Message, Serializer, Value};

use super::{clip, uri_ok};

/// Anonymous authentication settings of a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnonymousAuth {
    /// The role anonymous sessions get.
    pub role: String,
}

/// What to do with a connection after its first message.
#[derive(Clone, Debug, PartialEq)]
pub enum HandshakeOutcome {
    /// Admit the session with this identity (pass it to `Realm::join`).
    Join {
        /// The realm to join (known to exist).
        realm: String,
        authid: String,
        authrole: String,
        authmethod: String,
        authprovider: String,
        /// The HELLO details (client roles and features, agent, ...).
        details: Dict,
    },
    /// Send this ABORT and close the transport.
    Abort(Message),
}

/// WAMP client roles a HELLO may announce.
pub const CLIENT_ROLES: [&str; 4] = ["publisher", "subscriber", "caller", "callee"];

/// Characters of generated authids (Autobahn's token alphabet: no look-alikes).
const TOKEN_CHARS: &[u8] = b"345679ACEFGHJKLMNPQRSTUVWXY";

/// Processes the first message of a connection with a thread-local RNG for
/// generated authids. See the module docs.
///
/// This requires `details.roles`, which a Flatbuffers HELLO cannot carry
/// (Autobahn's schema has no field for it): for sessions whose serializer
/// is known, prefer [`process_hello_from`].
pub fn process_hello(msg: Message, realm_exists: impl Fn(&str) -> bool, auth: &AnonymousAuth) -> HandshakeOutcome {
    process_hello_with_rng(None, msg, realm_exists, auth, &mut rand::thread_rng())
}

/// [`process_hello`] for a HELLO that arrived in `serializer`: identical,
/// except that a missing `details.roles` is accepted from Flatbuffers
/// sessions, whose wire format has no place for it.
pub fn process_hello_from(
    serializer: Serializer,
    msg: Message,
    realm_exists: impl Fn(&str) -> bool,
    auth: &AnonymousAuth,
) -> HandshakeOutcome {
    process_hello_with_rng(Some(serializer), msg, realm_exists, auth, &mut rand::thread_rng())
}

/// [`process_hello_from`] with a caller-supplied RNG (deterministic tests);
/// `serializer: None` behaves like [`process_hello`].
pub fn process_hello_with_rng<R: Rng + ?Sized>(
    serializer: Option<Serializer>,
    msg: Message,
    realm_exists: impl Fn(&str) -> bool,
    auth: &AnonymousAuth,
    rng: &mut R,
) -> HandshakeOutcome {
    let (realm, details) = match check_hello(serializer, msg) {
        Ok(v) => v,
        Err(abort) => return HandshakeOutcome::Abort(abort),
    };
    if !realm_exists(&realm) {
        return abort(NO_SUCH_REALM, &format!("no realm '{}' exists on this router", clip(&realm)));
    }
    match details.get("authmethods") {
        None => {}
        Some(Value::List(methods))
            if !methods.is_empty() && !methods.iter().any(|m| m.as_str() == Some("anonymous")) =>
        {
            return abort(
                NO_AUTH_METHOD,
                "cannot authenticate using any of the offered authmethods (only 'anonymous' is available)",
            );
        }
        Some(Value::List(_)) => {}
        Some(_) => return abort(PROTOCOL_VIOLATION, "HELLO.Details.authmethods must be a list"),
    }
    let authid = match details.get("authid") {
        Some(Value::Str(s)) if !s.is_empty() => s.clone(),
        Some(Value::Str(_)) | None => generate_authid(rng),
        Some(_) => return abort(PROTOCOL_VIOLATION, "HELLO.Details.authid must be a string"),
    };
    HandshakeOutcome::Join {
        realm,
        authid,
        authrole: auth.role.clone(),
        authmethod: "anonymous".to_owned(),
        authprovider: "static".to_owned(),
        details,
    }
}

/// The checks every HELLO passes before authentication (steps 1-3 of the
/// module docs: message type, `details.roles`, realm URI): the realm and
/// details, or the ABORT to send. `serializer: None` requires `roles` even
/// for Flatbuffers.
// The error is the ABORT to send, as is; HELLO comes once per session.
#[allow(clippy::result_large_err)]
pub fn check_hello(serializer: Option<Serializer>, msg: Message) -> Result<(String, Dict), Message> {
    let (realm, details) = match msg {
        Message::Hello { realm, details } => (realm, details),
        other => {
            return Err(abort_message(
                PROTOCOL_VIOLATION,
                &format!("expected HELLO as first message, got {}", other.name()),
            ))
        }
    };
    match details.get("roles") {
        Some(Value::Dict(roles)) if CLIENT_ROLES.iter().any(|r| roles.contains_key(*r)) => {}
        Some(Value::Dict(_)) => {
            return Err(abort_message(
                PROTOCOL_VIOLATION,
                "HELLO announces no client role (publisher, subscriber, caller, callee)",
            ))
        }
        Some(_) => return Err(abort_message(PROTOCOL_VIOLATION, "HELLO.Details.roles must be a dict")),
        None if serializer == Some(Serializer::Flatbuffers) => {}
        None => return Err(abort_message(PROTOCOL_VIOLATION, "HELLO.Details.roles is missing")),
    }
    if !uri_ok(&realm) {
        return Err(abort_message(INVALID_URI, &format!("invalid realm URI '{}'", clip(&realm))));
    }
    Ok((realm, details))
}

/// A [`wamp_auth::AuthStep`] in engine terms.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthOutcome {
    /// Admit the session (pass it to `Realm::join`; put `authextra` into
    /// `WELCOME.Details.authextra`).
    Join {
        realm: String,
        authid: String,
        authrole: String,
        authmethod: String,
        authprovider: String,
        authextra: Dict,
        /// The HELLO details.
        details: Dict,
    },
    /// Send this CHALLENGE, then feed the AUTHENTICATE to
    /// [`wamp_auth::AuthHandshake::handle_authenticate`].
    Challenge(Message),
    /// Send this ABORT and close; when `failed`, charge the peer's
    /// [`wamp_auth::FailureLimiter`].
    Abort { message: Message, failed: bool },
    /// Call the dynamic authenticator, then
    /// [`wamp_auth::AuthHandshake::resume_dynamic`].
    Dynamic(wamp_auth::DynamicAuthRequest),
}

/// Converts an authentication step; `hello_details` are the HELLO's
/// details (kept for `Join`).
pub fn auth_outcome(step: wamp_auth::AuthStep, hello_details: &Dict) -> AuthOutcome {
    use wamp_auth::AuthStep;
    match step {
        AuthStep::Welcome(w) => AuthOutcome::Join {
            realm: w.realm,
            authid: w.authid,
            authrole: w.authrole,
            authmethod: w.authmethod,
            authprovider: w.authprovider,
            authextra: w.authextra,
            details: hello_details.clone(),
        },
        AuthStep::Challenge { method, extra } => AuthOutcome::Challenge(Message::Challenge { method, extra }),
        AuthStep::Abort { reason, message, failed } => {
            AuthOutcome::Abort { message: abort_message(&reason, &message), failed }
        }
        AuthStep::Dynamic(req) => AuthOutcome::Dynamic(req),
    }
}

/// A random authid in Crossbar's serial style: six dash-separated groups of
/// four characters, e.g. `LXFV-9AHT-WF3N-MX3E-NQ9H-YA3W`.
pub fn generate_authid<R: Rng + ?Sized>(rng: &mut R) -> String {
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

/// `[ABORT, {"message": message}, reason]`.
pub fn abort_message(reason: &str, message: &str) -> Message {
    let mut details = Dict::new();
    details.insert("message".to_owned(), Value::Str(message.to_owned()));
    Message::Abort { details, reason: reason.to_owned() }
}

/// `[ABORT, {"message": message}, reason]` encoded in `serializer`.
pub fn encode_abort(serializer: Serializer, reason: &str, message: &str) -> Result<Bytes, EncodeError> {
    serializer.encode(&abort_message(reason, message))
}

fn abort(reason: &str, message: &str) -> HandshakeOutcome {
    HandshakeOutcome::Abort(abort_message(reason, message))
}

use super::uris::{INVALID_URI, NO_AUTH_METHOD, NO_SUCH_REALM, PROTOCOL_VIOLATION};

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn hello(realm: &str, details: Vec<(&str, Value)>) -> Message {
        Message::Hello { realm: realm.into(), details: details.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() }
    }

    fn roles() -> Value {
        let mut r = Dict::new();
        r.insert("subscriber".into(), Value::Dict(Dict::new()));
        Value::Dict(r)
    }

    fn run(msg: Message) -> HandshakeOutcome {
        let auth = AnonymousAuth { role: "anonymous".into() };
        process_hello_with_rng(None, msg, |r| r == "realm1", &auth, &mut rand::rngs::StdRng::seed_from_u64(7))
    }

    fn reason(o: &HandshakeOutcome) -> &str {
        match o {
            HandshakeOutcome::Abort(Message::Abort { reason, .. }) => reason,
            other => panic!("expected abort, got {other:?}"),
        }
    }

    #[test]
    fn join_with_generated_authid() {
        match run(hello("realm1", vec![("roles", roles())])) {
            HandshakeOutcome::Join { realm, authid, authrole, authmethod, authprovider, details } => {
                assert_eq!(realm, "realm1");
                assert_eq!(authrole, "anonymous");
                assert_eq!(authmethod, "anonymous");
                assert_eq!(authprovider, "static");
                assert!(details.contains_key("roles"));
                assert_eq!(authid.len(), 29);
                assert_eq!(authid.split('-').count(), 6);
                assert!(authid.bytes().all(|b| b == b'-' || TOKEN_CHARS.contains(&b)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn join_with_requested_authid_and_anonymous_method() {
        let o = run(hello(
            "realm1",
            vec![
                ("roles", roles()),
                ("authid", "alice".into()),
                ("authmethods", Value::List(vec!["ticket".into(), "anonymous".into()])),
            ],
        ));
        assert!(matches!(o, HandshakeOutcome::Join { ref authid, .. } if authid == "alice"), "{o:?}");
    }

    #[test]
    fn aborts() {
        assert_eq!(reason(&run(Message::Goodbye { details: Dict::new(), reason: "x".into() })), PROTOCOL_VIOLATION);
        assert_eq!(reason(&run(hello("realm1", vec![]))), PROTOCOL_VIOLATION);
        assert_eq!(reason(&run(hello("realm1", vec![("roles", Value::Dict(Dict::new()))]))), PROTOCOL_VIOLATION);
        assert_eq!(reason(&run(hello("realm1", vec![("roles", Value::UInt(1))]))), PROTOCOL_VIOLATION);
        assert_eq!(reason(&run(hello("bad realm", vec![("roles", roles())]))), INVALID_URI);
        assert_eq!(reason(&run(hello("realm..x", vec![("roles", roles())]))), INVALID_URI);
        assert_eq!(reason(&run(hello("realm2", vec![("roles", roles())]))), NO_SUCH_REALM);
        let ticket_only =
            hello("realm1", vec![("roles", roles()), ("authmethods", Value::List(vec!["ticket".into()]))]);
        assert_eq!(reason(&run(ticket_only)), NO_AUTH_METHOD);
        assert_eq!(
            reason(&run(hello("realm1", vec![("roles", roles()), ("authid", Value::UInt(3))]))),
            PROTOCOL_VIOLATION
        );
    }

    #[test]
    fn ticket_through_the_adapter() {
        use std::sync::Arc;
        let mut principals = indexmap::IndexMap::new();
        principals.insert(
            "joe".to_string(),
            junction_config::TicketPrincipal { ticket: "s3cret".into(), role: "user".into(), realm: None },
        );
        let ta = junction_config::TransportAuth {
            methods: vec![junction_config::AuthMethod::Ticket(junction_config::AuthProvider::Static(principals))],
            options: Default::default(),
        };
        let cfg = Arc::new(wamp_auth::AuthConfig::from_transport_auth(&ta, [3; 32]).expect("config"));
        let hello = hello(
            "realm1",
            vec![("roles", roles()), ("authid", "joe".into()), ("authmethods", Value::List(vec!["ticket".into()]))],
        );
        let (realm, details) = check_hello(Some(Serializer::Json), hello).expect("valid hello");
        let realms = wamp_auth::RealmFns(|r: &str| r == "realm1", |_: &str, role: &str| role == "user");
        let mut hs = wamp_auth::AuthHandshake::new(cfg, Default::default(), wamp_proto::SessionId::from_valid(1));
        let time = wamp_auth::Time::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let step = hs.handle_hello(&realm, &details, time, &realms, &mut rng);
        assert!(
            matches!(auth_outcome(step, &details), AuthOutcome::Challenge(Message::Challenge { ref method, .. }) if method == "ticket")
        );
        let step = hs.handle_authenticate("s3cret", &Dict::new(), time.mono, &realms);
        match auth_outcome(step, &details) {
            AuthOutcome::Join { authid, authrole, authmethod, details, .. } => {
                assert_eq!((authid.as_str(), authrole.as_str(), authmethod.as_str()), ("joe", "user", "ticket"));
                assert!(details.contains_key("roles"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flatbuffers_hello_needs_no_roles() {
        let auth = AnonymousAuth { role: "r".into() };
        let o = process_hello_from(Serializer::Flatbuffers, hello("realm1", vec![]), |_| true, &auth);
        assert!(matches!(o, HandshakeOutcome::Join { .. }), "{o:?}");
        let o = process_hello_from(Serializer::Json, hello("realm1", vec![]), |_| true, &auth);
        assert_eq!(reason(&o), PROTOCOL_VIOLATION);
        // An explicit but empty roles dict is still a violation.
        let o = process_hello_from(
            Serializer::Flatbuffers,
            hello("realm1", vec![("roles", Value::Dict(Dict::new()))]),
            |_| true,
            &auth,
        );
        assert_eq!(reason(&o), PROTOCOL_VIOLATION);
    }
}
