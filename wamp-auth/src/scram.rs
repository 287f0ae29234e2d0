//! WAMP-SCRAM primitives, in the dialect of Autobahn|Python and Crossbar
//! (authmethod `scram`), which real clients speak:
//!
//! * `HELLO.Details.authextra.nonce`: the client nonce (base64);
//! * `CHALLENGE.extra`: `{nonce, kdf, salt, iterations, memory}` with the
//!   server nonce = base64(client nonce bytes ‖ 16 random bytes), `salt`
//!   base64, `kdf` `argon2id-13` or `pbkdf2`;
//! * `AuthMessage = "n=<authid>,r=<client nonce>,r=<server nonce>,s=<salt>,
//!   i=<iterations>,c=,r=<server nonce>"` (no GS2 header in `c=`);
//! * `AUTHENTICATE.signature`: base64(ClientProof);
//! * `WELCOME.Details.authextra.scram_server_signature`:
//!   base64(ServerSignature).
//!
//! The router stores only `StoredKey` and `ServerKey` (what Autobahn's
//! `derive_scram_credential` prints), so verifying costs two HMACs and one
//! SHA-256: the KDF runs on the client. [`derive_credential`] and
//! [`client_proof`] implement the client side for tools and tests. Note
//! Autobahn's quirk for argon2id: the "SaltedPassword" is the *unpadded
//! base64 text* of the raw Argon2 hash, not the hash bytes.

use sha2::{Digest, Sha256};

use crate::cra::hmac_sha256;
use crate::util::{b64, ct_eq};

/// A SCRAM KDF.
pub use junction_config::ScramKdf as Kdf;

/// Why a SCRAM credential could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// Argon2 rejected the parameters (e.g. memory below 8 KiB, salt too
    /// short).
    #[error("invalid argon2 parameters: {0}")]
    Argon2(String),
}

/// The salted password as Autobahn computes it.
pub fn salted_password(
    kdf: Kdf,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    memory: u32,
) -> Result<Vec<u8>, KdfError> {
    match kdf {
        Kdf::Argon2id13 => {
            let params =
                argon2::Params::new(memory, iterations, 1, Some(32)).map_err(|e| KdfError::Argon2(e.to_string()))?;
            let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut out = [0u8; 32];
            a.hash_password_into(password, salt, &mut out).map_err(|e| KdfError::Argon2(e.to_string()))?;
            // Autobahn keys the HMACs with the unpadded base64 text.
            Ok(b64(&out).trim_end_matches('=').as_bytes().to_vec())
        }
        Kdf::Pbkdf2 => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.max(1), &mut out);
            Ok(out.to_vec())
        }
    }
}

/// A server-side SCRAM credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// SHA-256(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

/// Derives the credential a router stores for `password` (Autobahn's
/// `derive_scram_credential`, generalized to both KDFs).
pub fn derive_credential(
    kdf: Kdf,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    memory: u32,
) -> Result<Credential, KdfError> {
    let sp = salted_password(kdf, password, salt, iterations, memory)?;
    let client_key = hmac_sha256(&sp, &[b"Client Key"]);
    Ok(Credential { stored_key: Sha256::digest(client_key).into(), server_key: hmac_sha256(&sp, &[b"Server Key"]) })
}

/// The AuthMessage. `client_nonce`, `server_nonce` and `salt` are the
/// base64 strings as they travel; `channel_binding` is the `c=` value
/// (Autobahn sends an empty one).
pub fn auth_message(
    authid: &str,
    client_nonce: &str,
    server_nonce: &str,
    salt: &str,
    iterations: u32,
    channel_binding: &str,
) -> String {
    format!("n={authid},r={client_nonce},r={server_nonce},s={salt},i={iterations},c={channel_binding},r={server_nonce}")
}

/// Verifies a base64 ClientProof; on success returns the ServerSignature
/// (to send back base64-encoded).
pub fn verify_proof(cred: &Credential, auth_message: &str, proof_b64: &str) -> Option<[u8; 32]> {
    let proof = crate::util::b64_decode(proof_b64)?;
    if proof.len() != 32 {
        return None;
    }
    let client_signature = hmac_sha256(&cred.stored_key, &[auth_message.as_bytes()]);
    let mut client_key = [0u8; 32];
    for i in 0..32 {
        client_key[i] = client_signature[i] ^ proof[i];
    }
    let recovered: [u8; 32] = Sha256::digest(client_key).into();
    if !ct_eq(&recovered, &cred.stored_key) {
        return None;
    }
    Some(hmac_sha256(&cred.server_key, &[auth_message.as_bytes()]))
}

/// Client side (tests, tools): the base64 ClientProof for `auth_message`.
pub fn client_proof(salted_password: &[u8], auth_message: &str) -> String {
    let client_key = hmac_sha256(salted_password, &[b"Client Key"]);
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let sig = hmac_sha256(&stored_key, &[auth_message.as_bytes()]);
    let mut proof = [0u8; 32];
    for i in 0..32 {
        proof[i] = client_key[i] ^ sig[i];
    }
    b64(&proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::{b64_decode, hex_encode};

    /// Autobahn `test_wamp_auth.py::TestScram::test_argon2id_static`
    /// (= `echo -n p4ssw0rd | argon2 1234567890abcdef -id -t 32 -m 9 -p 1 -l 32`).
    #[test]
    fn argon2id_static_vector() {
        let sp = salted_password(Kdf::Argon2id13, b"p4ssw0rd", b"1234567890abcdef", 32, 512).expect("kdf");
        let raw = b64_decode(std::str::from_utf8(&sp).expect("ascii")).expect("b64");
        assert_eq!(hex_encode(&raw), "ee4a8acf9d5958354fb79a95ae20692d05e42591ba49fae85eb6700e8b0ed293");
    }

    /// Autobahn `TestScram::test_pbkdf2_static`.
    #[test]
    fn pbkdf2_static_vector() {
        let sp = salted_password(Kdf::Pbkdf2, b"p4ssw0rd", b"1234567890abcdef", 8, 0).expect("kdf");
        assert_eq!(hex_encode(&sp), "f6991a28c75f43751e0d75499fd7b8649f659118ddc1d61cee5883af547d15f5");
    }

    /// Autobahn `TestScram::test_basic`: the client's reply to a fixed
    /// challenge, and the router accepting it with the derived credential.
    #[test]
    fn autobahn_basic_exchange() {
        let client_nonce = "31323334353637383930616263646566";
        let server_nonce = "1234567890abcdeffedcba0987654321";
        let salt_str = "31323334353637383930616263646566"; // Autobahn b64-decodes it
        let salt = b64_decode(salt_str).expect("b64");
        let sp = salted_password(Kdf::Argon2id13, b"p4ssw0rd", &salt, 32, 512).expect("kdf");
        let am = auth_message("username", client_nonce, server_nonce, salt_str, 32, "");
        let proof = client_proof(&sp, &am);
        assert_eq!(proof, "f5r3loERzGVSuimE+lvO0bWna2zyswBo0HrZkaaEy38=");
        let cred = derive_credential(Kdf::Argon2id13, b"p4ssw0rd", &salt, 32, 512).expect("kdf");
        let server_sig = verify_proof(&cred, &am, &proof).expect("proof verifies");
        assert_eq!(server_sig, hmac_sha256(&hmac_sha256(&sp, &[b"Server Key"]), &[am.as_bytes()]));
        // A different AuthMessage (e.g. another nonce) fails.
        let am2 = auth_message("username", client_nonce, "x", salt_str, 32, "");
        assert!(verify_proof(&cred, &am2, &proof).is_none());
        assert!(verify_proof(&cred, &am, "AAAA").is_none());
        assert!(verify_proof(&cred, &am, "not base64!").is_none());
    }

    /// Autobahn `test_wamp_scram.py` (`derive_scram_credential`, 4096
    /// iterations, 512 KiB): ~2 minutes without optimizations, so it runs
    /// in optimized test builds (`cargo test --release -p wamp-auth`).
    #[test]
    #[cfg_attr(debug_assertions, ignore = "argon2 with 4096 iterations is too slow unoptimized; run with --release")]
    fn autobahn_derive_scram_credential_vectors() {
        let email = "foobar@example.com";
        let salt1: [u8; 16] = Sha256::digest(email.as_bytes())[..16].try_into().expect("16 bytes");
        assert_eq!(hex_encode(&salt1), "3bc3ca01dd1d501ca1c22e1c5d7d16fe");
        let c = derive_credential(Kdf::Argon2id13, b"secret123", &salt1, 4096, 512).expect("kdf");
        assert_eq!(hex_encode(&c.server_key), "8de7864c316f3c2356fd76cfdab696db55bc70e680fe5180e2f731e2345acca2");
        assert_eq!(hex_encode(&c.stored_key), "e796c2f0a51770303ee4616bc630a66774d51a55003154aff2a54ec7c4ac0e38");
        let salt2 = crate::util::hex_decode("ae1f0d2f422757809077785e660b62c6").expect("hex");
        let c = derive_credential(Kdf::Argon2id13, b"secret123", &salt2, 4096, 512).expect("kdf");
        assert_eq!(hex_encode(&c.server_key), "0d8e7e9222a7c0e54c9e979aa342115699ff5696c45dc379b5ee241338a5861d");
        assert_eq!(hex_encode(&c.stored_key), "5f19358ff6f38e267b6ef1ea1d862514ec4e8745a84682259fd3894be09febb5");
    }
}
