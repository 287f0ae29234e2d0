//! # cluster-membership: nodes, identities and router clusters
//!
//! **What it is.** The identity of a Junction node: an Ed25519 key pair
//! ([`NodeKey`]) kept in a file in Crossbar's `key.priv` format, used by
//! proxy workers to prove to router workers that they are trusted (see
//! `docs/architecture.md`, "proxy link"), and the verification helper the
//! router side uses ([`verify`]).
//!
//! **What it is not (yet).** Membership, failure detection and router
//! clusters spanning nodes are not implemented here yet; within one node the
//! proxy worker detects a dead router worker through its backend link. It is
//! not the control plane (that is `master-control`) and routes no messages.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

/// Errors loading or creating a node key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file is not in the expected format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A node's Ed25519 identity.
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.public_hex())
    }
}

impl NodeKey {
    /// A key from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey { key: SigningKey::from_bytes(&seed) }
    }

    /// A fresh random key.
    pub fn generate() -> NodeKey {
        NodeKey::from_seed(rand::random())
    }

    /// The public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key, lowercase hex (as Crossbar prints it).
    pub fn public_hex(&self) -> String {
        hex(&self.public_bytes())
    }

    /// The 32-byte private seed (for a WAMP client's cryptosign login with
    /// this key). Keep it secret.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Signs `msg` (pure Ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Parses a key file in Crossbar's `key.priv` format: `tag: value`
    /// lines, of which `private-key-ed25519` (64 hex digits, the seed) is
    /// required; `public-key-ed25519`, when present, must match it.
    pub fn parse(text: &str, shown: &str) -> Result<NodeKey, KeyError> {
        let bad = |reason: String| KeyError::Format { path: shown.to_owned(), reason };
        let mut private = None;
        let mut public = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((tag, value)) = line.split_once(':') else { continue };
            match tag.trim() {
                "private-key-ed25519" => private = Some(value.trim().to_owned()),
                "public-key-ed25519" => public = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let private = private.ok_or_else(|| bad("no 'private-key-ed25519' line".into()))?;
        let seed = parse_hex32(&private).ok_or_else(|| bad("'private-key-ed25519' is not 64 hex digits".into()))?;
        let key = NodeKey::from_seed(seed);
        if let Some(p) = public {
            if !p.eq_ignore_ascii_case(&key.public_hex()) {
                return Err(bad("'public-key-ed25519' does not belong to 'private-key-ed25519'".into()));
            }
        }
        Ok(key)
    }

    /// The key file text (Crossbar's `key.priv` format).
    pub fn to_file_text(&self) -> String {
        format!(
            "# Junction node key. Keep this file secret.\ncreator: junction\npublic-key-ed25519: {}\nprivate-key-ed25519: {}\n",
            self.public_hex(),
            hex(&self.key.to_bytes())
        )
    }

    /// Loads the key at `path`, or creates it (mode 0600, parent
    /// directories included) with a fresh key if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<NodeKey, KeyError> {
        let shown = path.display().to_string();
        let io = |source| KeyError::Io { path: shown.clone(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => NodeKey::parse(&text, &shown),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = NodeKey::generate();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
                f.write_all(key.to_file_text().as_bytes()).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// Verifies an Ed25519 signature by `public` over `msg`.
pub fn verify(public: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> bool {
    match VerifyingKey::from_bytes(public) {
        Ok(k) => k.verify(msg, &ed25519_dalek::Signature::from_bytes(signature)).is_ok(),
        Err(_) => false,
    }
}

/// Lowercase hex.
pub use wamp_proto::hex::encode as hex;

/// 64 hex digits → 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    wamp_proto::hex::decode_array(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        let k = NodeKey::from_seed([7u8; 32]);
        let sig = k.sign(b"challenge");
        assert!(verify(&k.public_bytes(), b"challenge", &sig));
        assert!(!verify(&k.public_bytes(), b"challengf", &sig));
        let other = NodeKey::from_seed([8u8; 32]);
        assert!(!verify(&other.public_bytes(), b"challenge", &sig));
    }

    #[test]
    fn file_roundtrip_and_errors() {
        let k = NodeKey::generate();
        let back = NodeKey::parse(&k.to_file_text(), "t").expect("parses");
        assert_eq!(back.public_bytes(), k.public_bytes());
        assert!(NodeKey::parse("creator: x\n", "t").is_err());
        assert!(NodeKey::parse("private-key-ed25519: zz\n", "t").is_err());
        let wrong_pub = format!("private-key-ed25519: {}\npublic-key-ed25519: {}\n", hex(&[1u8; 32]), hex(&[2u8; 32]));
        assert!(NodeKey::parse(&wrong_pub, "t").is_err());
    }

    #[test]
    fn load_or_create_persists() {
        let dir = std::env::temp_dir().join(format!("junction-key-{}", std::process::id()));
        let path = dir.join("sub").join("key.priv");
        let a = NodeKey::load_or_create(&path).expect("created");
        let b = NodeKey::load_or_create(&path).expect("loaded");
        assert_eq!(a.public_bytes(), b.public_bytes());
        let _ = std::fs::remove_dir_all(dir);
    }
}
