//! Client-side WAMP authentication: what goes into HELLO and how a
//! CHALLENGE is answered.
//!
//! Supported: `anonymous` (no credentials), `ticket` (the CHALLENGE is
//! answered with the ticket) and `cryptosign` (Ed25519: HELLO carries
//! `authextra.pubkey`; the 32-byte `extra.challenge` is signed and answered
//! with hex(signature ‖ challenge), 192 hex digits, as Autobahn's
//! `CryptosignKey.sign_challenge` does and `wamp-auth` verifies). TLS channel
//! binding is not requested. Anything the router sends is validated: a
//! malformed challenge is an error, never a panic.

use ed25519_dalek::{Signer, SigningKey};
use wamp_proto::{Dict, Value};

/// Credentials for joining a realm.
#[derive(Clone, Default)]
pub struct Auth {
    /// `HELLO.Details.authid`.
    pub authid: Option<String>,
    /// Ticket secret (`ticket` method).
    pub ticket: Option<String>,
    /// Ed25519 private seed (`cryptosign` method).
    pub cryptosign: Option<[u8; 32]>,
    /// `HELLO.Details.authrole` (e.g. `node` for a managed node's uplink).
    pub authrole: Option<String>,
    /// More `HELLO.Details.authextra` keys (beside `pubkey`).
    pub authextra: Dict,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Auth")
            .field("authid", &self.authid)
            .field("ticket", &self.ticket.as_ref().map(|_| "…"))
            .field("cryptosign", &self.cryptosign.map(|s| public_key_hex(&s)))
            .finish()
    }
}

/// Why a challenge could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The router asked for a method we have no credentials for.
    #[error("router demands authentication method {0:?} we have no credentials for")]
    Unsupported(String),
    /// `CHALLENGE.extra.challenge` missing or not 64 hex digits.
    #[error("malformed cryptosign challenge")]
    BadChallenge,
    /// A private key that is not 64 hex digits.
    #[error("cryptosign key must be 64 hex digits (32-byte Ed25519 seed)")]
    BadKey,
}

impl Auth {
    /// True if no credentials are set (anonymous).
    pub fn is_anonymous(&self) -> bool {
        self.ticket.is_none() && self.cryptosign.is_none()
    }

    /// The `authmethods` offered in HELLO.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.cryptosign.is_some() {
            m.push("cryptosign");
        }
        if self.ticket.is_some() {
            m.push("ticket");
        }
        if m.is_empty() {
            m.push("anonymous");
        }
        m
    }

    /// Adds `authmethods`, `authid` and `authextra` to HELLO details.
    pub fn add_to_hello(&self, details: &mut Dict) {
        details.insert("authmethods".into(), Value::List(self.methods().into_iter().map(Value::from).collect()));
        if let Some(id) = &self.authid {
            details.insert("authid".into(), Value::from(id.as_str()));
        }
        if let Some(role) = &self.authrole {
            details.insert("authrole".into(), Value::from(role.as_str()));
        }
        let mut extra = self.authextra.clone();
        if let Some(seed) = &self.cryptosign {
            extra.insert("pubkey".into(), Value::Str(public_key_hex(seed)));
        }
        if !extra.is_empty() {
            details.insert("authextra".into(), Value::Dict(extra));
        }
    }

    /// The `AUTHENTICATE.signature` answering `CHALLENGE(method, extra)`.
    pub fn answer(&self, method: &str, extra: &Dict) -> Result<String, AuthError> {
        match (method, &self.ticket, &self.cryptosign) {
            ("ticket", Some(t), _) => Ok(t.clone()),
            ("cryptosign", _, Some(seed)) => {
                let hex = extra.get("challenge").and_then(Value::as_str).ok_or(AuthError::BadChallenge)?;
                let challenge = hex_array(hex).ok_or(AuthError::BadChallenge)?;
                Ok(sign_challenge(seed, &challenge))
            }
            _ => Err(AuthError::Unsupported(method.to_owned())),
        }
    }
}

/// Signs a cryptosign challenge: hex(Ed25519 signature ‖ challenge).
pub fn sign_challenge(seed: &[u8; 32], challenge: &[u8; 32]) -> String {
    let sig = SigningKey::from_bytes(seed).sign(challenge);
    let mut out = hex_encode(&sig.to_bytes());
    out.push_str(&hex_encode(challenge));
    out
}

/// The public key (hex) of an Ed25519 seed.
pub fn public_key_hex(seed: &[u8; 32]) -> String {
    hex_encode(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

/// Parses a 32-byte private seed from 64 hex digits.
pub fn parse_key(hex: &str) -> Result<[u8; 32], AuthError> {
    hex_array(hex.trim()).ok_or(AuthError::BadKey)
}

/// Lowercase hex.
pub fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Exactly `N` bytes from `2N` hex digits (either case).
pub fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector from the WAMP spec and Autobahn's `test_wamp_cryptosign.py`
    /// (the same ones `wamp-auth` verifies against).
    const SEED: &str = "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd";
    const CHALLENGE: &str = "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d";
    const SIGNATURE: &str = "d4209ad10d5aff6bfbc009d7e924795de138a63515efc7afc6b01b7fe5201372190374886a70207b042294af5bd64ce725cd8dceb344e6d11c09d1aaaf4d660fb26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d";

    #[test]
    fn cryptosign_matches_spec_vector() {
        let seed = parse_key(SEED).unwrap();
        let challenge = hex_array::<32>(CHALLENGE).unwrap();
        assert_eq!(sign_challenge(&seed, &challenge), SIGNATURE);
        let auth = Auth { cryptosign: Some(seed), ..Auth::default() };
        let mut extra = Dict::new();
        extra.insert("challenge".into(), Value::from(CHALLENGE.to_uppercase().as_str()));
        assert_eq!(auth.answer("cryptosign", &extra).unwrap(), SIGNATURE);
        // HELLO offers cryptosign with the matching public key.
        let mut d = Dict::new();
        auth.add_to_hello(&mut d);
        assert_eq!(d["authmethods"], Value::List(vec![Value::from("cryptosign")]));
        let Value::Dict(ae) = &d["authextra"] else { panic!("no authextra") };
        assert_eq!(ae["pubkey"].as_str().map(str::len), Some(64));
        assert_eq!(ae["pubkey"].as_str(), Some(public_key_hex(&seed).as_str()));
    }

    #[test]
    fn bad_challenges_and_keys_are_errors() {
        let auth = Auth { cryptosign: Some([7; 32]), ..Auth::default() };
        let mut extra = Dict::new();
        assert_eq!(auth.answer("cryptosign", &extra), Err(AuthError::BadChallenge));
        extra.insert("challenge".into(), Value::from("abcd"));
        assert_eq!(auth.answer("cryptosign", &extra), Err(AuthError::BadChallenge));
        extra.insert("challenge".into(), Value::Str("zz".repeat(32)));
        assert_eq!(auth.answer("cryptosign", &extra), Err(AuthError::BadChallenge));
        extra.insert("challenge".into(), Value::UInt(5));
        assert_eq!(auth.answer("cryptosign", &extra), Err(AuthError::BadChallenge));
        assert_eq!(auth.answer("ticket", &Dict::new()), Err(AuthError::Unsupported("ticket".into())));
        assert_eq!(parse_key("12"), Err(AuthError::BadKey));
        assert_eq!(parse_key(&"é".repeat(32)), Err(AuthError::BadKey));
    }

    #[test]
    fn ticket_and_anonymous_hello() {
        let anon = Auth::default();
        assert!(anon.is_anonymous());
        let mut d = Dict::new();
        anon.add_to_hello(&mut d);
        assert_eq!(d["authmethods"], Value::List(vec![Value::from("anonymous")]));
        assert!(!d.contains_key("authid"));
        let t = Auth { authid: Some("joe".into()), ticket: Some("s3cret".into()), ..Auth::default() };
        let mut d = Dict::new();
        t.add_to_hello(&mut d);
        assert_eq!(d["authmethods"], Value::List(vec![Value::from("ticket")]));
        assert_eq!(d["authid"].as_str(), Some("joe"));
        assert_eq!(t.answer("ticket", &Dict::new()).unwrap(), "s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
