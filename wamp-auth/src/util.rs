//! Small helpers: hex, base64, constant-time comparison, XOR.

use base64::Engine as _;
use subtle::ConstantTimeEq;

pub use wamp_proto::hex::{decode as hex_decode, decode_array as hex_array, encode as hex_encode};

/// Standard, padded base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 (padding optional).
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .ok()
}

/// Constant-time equality (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `a XOR b`, byte-wise (`a` and `b` have the same length).
pub fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = a[i] ^ b[i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        assert_eq!(hex_encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_array::<2>("0102"), Some([1, 2]));
        assert_eq!(hex_array::<2>("010203"), None);
    }

    #[test]
    fn b64_and_ct() {
        assert_eq!(b64(b"ab"), "YWI=");
        assert_eq!(b64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(b64_decode("YWI"), Some(b"ab".to_vec()));
        assert_eq!(b64_decode("!"), None);
        assert!(ct_eq(b"x", b"x"));
        assert!(!ct_eq(b"x", b"y"));
        assert!(!ct_eq(b"x", b"xx"));
    }
}
