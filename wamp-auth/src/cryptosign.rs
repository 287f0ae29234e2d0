//! WAMP-cryptosign primitives: Ed25519 challenge signatures, with optional
//! TLS channel binding (`tls-unique`, `tls-exporter`).
//!
//! The router sends 32 random bytes as hex in `CHALLENGE.extra.challenge`.
//! The client signs `challenge` (or `challenge XOR channel_id` with channel
//! binding) and answers with hex(signature ‖ signed message): 96 bytes, 192
//! hex digits (Autobahn and the spec). A bare 64-byte signature is accepted
//! too.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::util::{hex_decode, hex_encode, xor32};

/// A TLS channel binding type a client may request in
/// `HELLO.Details.authextra.channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBinding {
    /// RFC 5929 `tls-unique` (TLS ≤ 1.2: first Finished message).
    TlsUnique,
    /// RFC 9266 `tls-exporter` (TLS 1.3: exporter with label
    /// `EXPORTER-Channel-Binding`, no context, 32 bytes).
    TlsExporter,
}

impl ChannelBinding {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            ChannelBinding::TlsUnique => "tls-unique",
            ChannelBinding::TlsExporter => "tls-exporter",
        }
    }

    /// Parses a wire name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "tls-unique" => Some(ChannelBinding::TlsUnique),
            "tls-exporter" => Some(ChannelBinding::TlsExporter),
            _ => None,
        }
    }
}

/// The message a client must sign: the challenge, XOR'ed with the channel
/// id when channel binding is active.
pub fn signed_message(challenge: &[u8; 32], channel_id: Option<&[u8; 32]>) -> [u8; 32] {
    match channel_id {
        Some(id) => xor32(challenge, id),
        None => *challenge,
    }
}

/// Why a cryptosign signature was refused (for logs; never sent to peers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not hex, or not 64/96 bytes.
    #[error("signature is not 128 or 192 hex digits")]
    Malformed,
    /// The message part differs from the expected message.
    #[error("signed message differs from the challenge")]
    WrongMessage,
    /// The public key is not a valid Ed25519 point.
    #[error("invalid public key")]
    BadKey,
    /// The Ed25519 signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// Verifies a client's `AUTHENTICATE.signature` (hex) over `expected`
/// (see [`signed_message`]) with `pubkey` (strict Ed25519 verification).
pub fn verify(pubkey: &[u8; 32], expected: &[u8; 32], signature_hex: &str) -> Result<(), VerifyError> {
    if signature_hex.len() != 128 && signature_hex.len() != 192 {
        return Err(VerifyError::Malformed);
    }
    let raw = hex_decode(signature_hex).ok_or(VerifyError::Malformed)?;
    let (sig, msg) = raw.split_at(64);
    if !msg.is_empty() && !crate::util::ct_eq(msg, expected) {
        return Err(VerifyError::WrongMessage);
    }
    let sig = Signature::from_slice(sig).map_err(|_| VerifyError::Malformed)?;
    let key = VerifyingKey::from_bytes(pubkey).map_err(|_| VerifyError::BadKey)?;
    key.verify_strict(expected, &sig).map_err(|_| VerifyError::BadSignature)
}

/// Client side (tests, tools): signs a challenge like Autobahn's
/// `CryptosignKey.sign_challenge`, returning hex(signature ‖ message).
pub fn sign_challenge(seed: &[u8; 32], challenge: &[u8; 32], channel_id: Option<&[u8; 32]>) -> String {
    let key = SigningKey::from_bytes(seed);
    let msg = signed_message(challenge, channel_id);
    let sig = key.sign(&msg);
    let mut out = hex_encode(&sig.to_bytes());
    out.push_str(&hex_encode(&msg));
    out
}

/// The public key (hex) of an Ed25519 seed.
pub fn public_key_hex(seed: &[u8; 32]) -> String {
    hex_encode(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::hex_array;

    /// The spec's and Autobahn's (`test_wamp_cryptosign.py`) test vectors:
    /// (channel_id, private_key, challenge, signature).
    pub(crate) const VECTORS: [(Option<&str>, &str, &str, &str); 6] = [
        (None, "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb71081464e6e75013517c2cf067ad566a6b7b728e5d03ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        (None, "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd", "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d", "d4209ad10d5aff6bfbc009d7e924795de138a63515efc7afc6b01b7fe5201372190374886a70207b042294af5bd64ce725cd8dceb344e6d11c09d1aaaf4d660fb26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d"),
        (None, "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b", "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2", "7beb282184baadd08f166f16dd683b39cab53816ed81e6955def951cb2ddad1ec184e206746fd82bda075af03711d3d5658fc84a76196b0fa8d1ebc92ef9f30bb05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2"),
        (Some("62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff"), "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "9b6f41540c9b95b4b7b281c3042fa9c54cef43c842d62ea3fd6030fcb66e70b3e80d49d44c29d1635da9348d02ec93f3ed1ef227dfb59a07b580095c2b82f80f9d16ca518aa0c2b707f2b2a609edeca73bca8dd59817a633f35574ac6fd80d00"),
        (Some("62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff"), "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd", "b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d", "305aaa3ac25e98f651427688b3fc43fe7d8a68a7ec1d7d61c61517c519bd4a427c3015599d83ca28b4c652333920223844ef0725eb5dc2febfd6af7677b73f01d0852a29b460fc92ec943242ac638a053bbacc200512b18b30d15083cbdc9282"),
        (Some("62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff"), "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b", "b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2", "ee3c7644fd8070532bc1fde3d70d742267da545d8c8f03e63bda63f1ad4214f4d2c4bfdb4eb9526def42deeb7e31602a6ff99eba893e0a4ad4d45892ca75e608d2b75e24a189a7f78ca776ba36fc53f6c3e31c32f251f2c524f0a44202f2902d"),
    ];

    fn parse(v: &(Option<&str>, &str, &str, &str)) -> (Option<[u8; 32]>, [u8; 32], [u8; 32]) {
        let cid = v.0.map(|c| hex_array::<32>(c).expect("hex"));
        (cid, hex_array(v.1).expect("hex"), hex_array(v.2).expect("hex"))
    }

    #[test]
    fn spec_vectors_sign_identically() {
        for v in &VECTORS {
            let (cid, seed, challenge) = parse(v);
            assert_eq!(sign_challenge(&seed, &challenge, cid.as_ref()), v.3);
        }
    }

    #[test]
    fn spec_vectors_verify() {
        for v in &VECTORS {
            let (cid, seed, challenge) = parse(v);
            let pk = hex_array::<32>(&public_key_hex(&seed)).expect("hex");
            let expected = signed_message(&challenge, cid.as_ref());
            assert_eq!(verify(&pk, &expected, v.3), Ok(()));
            // Signature only (64 bytes) is accepted too.
            assert_eq!(verify(&pk, &expected, &v.3[..128]), Ok(()));
            // Without the channel binding the signed message differs.
            if cid.is_some() {
                assert_eq!(verify(&pk, &challenge, v.3), Err(VerifyError::WrongMessage));
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        let v = &VECTORS[1];
        let (_, seed, challenge) = parse(v);
        let pk = hex_array::<32>(&public_key_hex(&seed)).expect("hex");
        let mut bad = v.3.to_string();
        bad.replace_range(0..2, if &v.3[0..2] == "00" { "01" } else { "00" });
        assert_eq!(verify(&pk, &challenge, &bad), Err(VerifyError::BadSignature));
        assert_eq!(verify(&pk, &challenge, "zz"), Err(VerifyError::Malformed));
        assert_eq!(verify(&pk, &challenge, &"g".repeat(192)), Err(VerifyError::Malformed));
        // Another key's signature fails.
        let (_, other_seed, _) = parse(&VECTORS[0]);
        let other = hex_array::<32>(&public_key_hex(&other_seed)).expect("hex");
        assert_eq!(verify(&other, &challenge, v.3), Err(VerifyError::BadSignature));
    }

    #[test]
    fn spec_example_pubkey() {
        // The spec's HELLO example pubkey belongs to no published seed; check
        // that a known seed's key has the right shape.
        let (_, seed, _) = parse(&VECTORS[0]);
        assert_eq!(public_key_hex(&seed).len(), 64);
        assert_eq!(ChannelBinding::from_name("tls-exporter"), Some(ChannelBinding::TlsExporter));
        assert_eq!(ChannelBinding::from_name("tls-server-end-point"), None);
    }
}
