//! [`AuthConfig`]: a transport's authentication settings, pre-processed for
//! the handshake (keys decoded, salted WAMP-CRA secrets derived once).

use std::time::Duration;

use indexmap::IndexMap;
use junction_config as jc;

use crate::cra;
use crate::scram::{Credential, Kdf};
use crate::tls::normalize_fingerprint;
use crate::util::{hex_array, hex_decode};

pub use jc::DynamicAuthenticator;

/// Why a [`AuthConfig`] could not be built (normally caught earlier by
/// `junction-config` validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// A method Junction does not implement.
    #[error("authentication method {0} is not supported")]
    Unsupported(String),
    /// A malformed key, salt or fingerprint.
    #[error("principal '{authid}' of {method}: {what}")]
    BadPrincipal {
        /// Method name.
        method: &'static str,
        /// The principal.
        authid: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// Where the session is admitted: role, and optional realm override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The authrole.
    pub role: String,
    /// Realm to join instead of the requested one.
    pub realm: Option<String>,
}

/// A static ticket principal.
#[derive(Debug, Clone)]
pub struct TicketPrincipal {
    pub(crate) ticket: Vec<u8>,
    pub(crate) grant: Grant,
}

/// A static WAMP-CRA user, with its signing key ready.
#[derive(Debug, Clone)]
pub struct CraUser {
    /// The HMAC key: the secret, or Autobahn's `derive_key` text when salted.
    pub(crate) key: Vec<u8>,
    pub(crate) salt: Option<(String, u32, u32)>,
    pub(crate) grant: Grant,
}

/// A static cryptosign principal.
#[derive(Debug, Clone)]
pub struct CryptosignPrincipal {
    pub(crate) keys: Vec<[u8; 32]>,
    pub(crate) grant: Grant,
}

/// A static SCRAM principal.
#[derive(Debug, Clone)]
pub struct ScramPrincipal {
    pub(crate) kdf: Kdf,
    pub(crate) iterations: u32,
    pub(crate) memory: u32,
    pub(crate) salt: Vec<u8>,
    pub(crate) cred: Credential,
    pub(crate) grant: Grant,
}

/// A static TLS principal.
#[derive(Debug, Clone)]
pub struct TlsPrincipal {
    pub(crate) sha1: Option<String>,
    pub(crate) cn: Option<String>,
    pub(crate) grant: Grant,
}

/// Static principals by authid, or a dynamic authenticator.
#[derive(Debug, Clone)]
pub enum Provider<P> {
    /// `type: static`.
    Static(IndexMap<String, P>),
    /// `type: dynamic`.
    Dynamic(DynamicAuthenticator),
}

/// One configured method.
#[derive(Debug, Clone)]
pub enum Method {
    /// Static anonymous.
    Anonymous {
        /// Role.
        role: String,
        /// Fixed authid.
        authid: Option<String>,
        /// Realm override.
        realm: Option<String>,
    },
    /// Dynamic anonymous.
    AnonymousDynamic(DynamicAuthenticator),
    /// Ticket.
    Ticket(Provider<TicketPrincipal>),
    /// WAMP-CRA.
    WampCra(Provider<CraUser>),
    /// Cryptosign.
    Cryptosign(Provider<CryptosignPrincipal>),
    /// SCRAM.
    Scram(Provider<ScramPrincipal>),
    /// TLS client certificate.
    Tls(Provider<TlsPrincipal>),
}

impl Method {
    /// The `authmethod` name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Anonymous { .. } | Method::AnonymousDynamic(_) => "anonymous",
            Method::Ticket(_) => "ticket",
            Method::WampCra(_) => "wampcra",
            Method::Cryptosign(_) => "cryptosign",
            Method::Scram(_) => "scram",
            Method::Tls(_) => "tls",
        }
    }
}

/// A transport's authentication methods, ready for [`crate::AuthHandshake`].
/// Build once per transport (at startup) and share it (`Arc`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub(crate) methods: Vec<Method>,
    /// How long a CHALLENGE stays answerable.
    pub challenge_timeout: Duration,
    /// Keys mock challenges for unknown principals (so they look like real
    /// ones and stay stable per authid).
    pub(crate) mock_secret: [u8; 32],
    /// Largest HELLO `authextra` (its strings, keys and byte strings,
    /// plus 8 bytes per other value).
    pub max_authextra_size: usize,
}

impl AuthConfig {
    /// Anonymous only, as role `role` (what a transport without `auth` does).
    pub fn anonymous(role: &str) -> Self {
        AuthConfig {
            methods: vec![Method::Anonymous { role: role.to_owned(), authid: None, realm: None }],
            challenge_timeout: jc::DEFAULT_CHALLENGE_TIMEOUT,
            mock_secret: [0; 32],
            max_authextra_size: jc::DEFAULT_MAX_AUTHEXTRA_SIZE,
        }
    }

    /// Builds from explicit methods. `mock_secret` should be random (e.g.
    /// `rand::random()`), generated once per process.
    pub fn new(methods: Vec<Method>, challenge_timeout: Duration, mock_secret: [u8; 32]) -> Self {
        AuthConfig { methods, challenge_timeout, mock_secret, max_authextra_size: jc::DEFAULT_MAX_AUTHEXTRA_SIZE }
    }

    /// The configured methods.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The method clients name `name`, if configured.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name() == name)
    }

    /// Converts a validated `junction-config` auth block. Salted WAMP-CRA
    /// keys are derived here (PBKDF2 runs once, not per HELLO).
    /// `mock_secret` should be random (e.g. `rand::random()`).
    pub fn from_transport_auth(auth: &jc::TransportAuth, mock_secret: [u8; 32]) -> Result<Self, AuthConfigError> {
        let mut methods = Vec::with_capacity(auth.methods.len());
        // `cryptosign-proxy` admits proxy links, not clients: the router runtime reads it.
        for m in auth.methods.iter().filter(|m| !matches!(m, jc::AuthMethod::CryptosignProxy { .. })) {
            methods.push(convert(m)?);
        }
        Ok(AuthConfig {
            methods,
            challenge_timeout: auth.options.challenge_timeout,
            mock_secret,
            max_authextra_size: auth.options.max_authextra_size,
        })
    }
}

fn grant(role: &str, realm: &Option<String>) -> Grant {
    Grant { role: role.to_owned(), realm: realm.clone() }
}

fn provider<P, Q>(
    p: &jc::AuthProvider<P>,
    mut f: impl FnMut(&str, &P) -> Result<Q, AuthConfigError>,
) -> Result<Provider<Q>, AuthConfigError> {
    Ok(match p {
        jc::AuthProvider::Dynamic(d) => Provider::Dynamic(d.clone()),
        jc::AuthProvider::Static(map) => {
            let mut out = IndexMap::with_capacity(map.len());
            for (authid, pr) in map {
                out.insert(authid.clone(), f(authid, pr)?);
            }
            Provider::Static(out)
        }
    })
}

fn convert(m: &jc::AuthMethod) -> Result<Method, AuthConfigError> {
    let bad = |method: &'static str, authid: &str, what: &'static str| AuthConfigError::BadPrincipal {
        method,
        authid: authid.to_owned(),
        what,
    };
    Ok(match m {
        jc::AuthMethod::Anonymous { role, authid, realm } => {
            Method::Anonymous { role: role.clone(), authid: authid.clone(), realm: realm.clone() }
        }
        jc::AuthMethod::AnonymousDynamic(d) => Method::AnonymousDynamic(d.clone()),
        jc::AuthMethod::Ticket(p) => Method::Ticket(provider(p, |_, t| {
            Ok(TicketPrincipal { ticket: t.ticket.as_bytes().to_vec(), grant: grant(&t.role, &t.realm) })
        })?),
        jc::AuthMethod::WampCra(p) => Method::WampCra(provider(p, |_, u| {
            let (key, salt) = match &u.salt {
                None => (u.secret.as_bytes().to_vec(), None),
                Some(s) => {
                    let k = cra::derive_key(u.secret.as_bytes(), s.salt.as_bytes(), s.iterations, s.keylen as usize);
                    (k.into_bytes(), Some((s.salt.clone(), s.iterations, s.keylen)))
                }
            };
            Ok(CraUser { key, salt, grant: grant(&u.role, &u.realm) })
        })?),
        jc::AuthMethod::Cryptosign(p) => Method::Cryptosign(provider(p, |authid, c| {
            let keys = c
                .authorized_keys
                .iter()
                .map(|k| hex_array::<32>(k).ok_or_else(|| bad("cryptosign", authid, "public key is not 64 hex digits")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(CryptosignPrincipal { keys, grant: grant(&c.role, &c.realm) })
        })?),
        jc::AuthMethod::Scram(p) => Method::Scram(provider(p, |authid, s| {
            let salt = hex_decode(&s.salt).ok_or_else(|| bad("scram", authid, "salt is not hex"))?;
            let stored_key =
                hex_array(&s.stored_key).ok_or_else(|| bad("scram", authid, "stored-key is not 64 hex digits"))?;
            let server_key =
                hex_array(&s.server_key).ok_or_else(|| bad("scram", authid, "server-key is not 64 hex digits"))?;
            Ok(ScramPrincipal {
                kdf: s.kdf,
                iterations: s.iterations,
                memory: s.memory,
                salt,
                cred: Credential { stored_key, server_key },
                grant: grant(&s.role, &s.realm),
            })
        })?),
        jc::AuthMethod::Tls(p) => Method::Tls(provider(p, |_, t| {
            Ok(TlsPrincipal {
                sha1: t.certificate_sha1.as_deref().map(normalize_fingerprint),
                cn: t.certificate_cn.clone(),
                grant: grant(&t.role, &t.realm),
            })
        })?),
        jc::AuthMethod::Unsupported { method, .. } => return Err(AuthConfigError::Unsupported(method.clone())),
        jc::AuthMethod::CryptosignProxy { .. } => return Err(AuthConfigError::Unsupported("cryptosign-proxy".into())),
    })
}
