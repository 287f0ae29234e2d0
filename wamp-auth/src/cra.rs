//! WAMP-CRA primitives: the challenge string, the HMAC-SHA256 signature
//! (`compute_wcs`) and PBKDF2 key derivation for salted secrets
//! (`derive_key`), byte-compatible with Autobahn|Python and Crossbar.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::util::b64;

/// Autobahn's default PBKDF2 iterations for `derive_key`.
pub const DEFAULT_ITERATIONS: u32 = 1000;
/// Autobahn's default derived key length for `derive_key`.
pub const DEFAULT_KEYLEN: u32 = 32;

/// Autobahn's `derive_key(secret, salt, iterations, keylen)`:
/// PBKDF2-HMAC-SHA256 over the UTF-8 secret and salt, base64-encoded. The
/// *base64 text* (as bytes) is the key the client then signs with.
pub fn derive_key(secret: &[u8], salt: &[u8], iterations: u32, keylen: usize) -> String {
    let mut out = vec![0u8; keylen];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret, salt, iterations.max(1), &mut out);
    b64(&out)
}

/// Autobahn's `compute_wcs(key, challenge)`: base64(HMAC-SHA256(key,
/// challenge)).
pub fn compute_wcs(key: &[u8], challenge: &[u8]) -> String {
    b64(&hmac_sha256(key, &[challenge]))
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { unreachable!("HMAC takes keys of any length") };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The fields of a WAMP-CRA challenge (serialized by [`challenge_string`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CraChallenge<'a> {
    /// Authid the client will get.
    pub authid: &'a str,
    /// Role the client will get.
    pub authrole: &'a str,
    /// Provider (`static`/`dynamic`).
    pub authprovider: &'a str,
    /// Random nonce.
    pub nonce: &'a str,
    /// UTC timestamp, ISO 8601 with milliseconds and `Z`.
    pub timestamp: &'a str,
    /// The session ID the session will have.
    pub session: u64,
}

/// The challenge JSON string, in Crossbar's key order: `{"authid": ...,
/// "authrole": ..., "authmethod": "wampcra", "authprovider": ...,
/// "session": ..., "nonce": ..., "timestamp": ...}` (Python's `json.dumps`
/// separators, non-ASCII kept as is).
pub fn challenge_string(c: &CraChallenge<'_>) -> String {
    let mut s = String::with_capacity(200 + c.authid.len());
    s.push_str("{\"authid\": ");
    json_str(&mut s, c.authid);
    s.push_str(", \"authrole\": ");
    json_str(&mut s, c.authrole);
    s.push_str(", \"authmethod\": \"wampcra\", \"authprovider\": ");
    json_str(&mut s, c.authprovider);
    s.push_str(", \"session\": ");
    s.push_str(&c.session.to_string());
    s.push_str(", \"nonce\": ");
    json_str(&mut s, c.nonce);
    s.push_str(", \"timestamp\": ");
    json_str(&mut s, c.timestamp);
    s.push('}');
    s
}

/// Appends `v` as a JSON string literal (`ensure_ascii=False` style).
fn json_str(s: &mut String, v: &str) {
    s.push('"');
    for ch in v.chars() {
        match ch {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
}

/// Formats a UNIX time (`SystemTime` since the epoch) as Autobahn's
/// `utcnow()`: `2014-06-22T16:36:25.448Z`.
pub fn utc_timestamp(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let ms = since_epoch.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Autobahn|Python `test_wamp_auth.py::test_derive_key`.
    #[test]
    fn autobahn_derive_key_vector() {
        let key = derive_key(b"L3L1YUE8Txlw", b"salt123", DEFAULT_ITERATIONS, DEFAULT_KEYLEN as usize);
        assert_eq!(key, "qzcdsr9uu/L5hnss3kjNTRe490ETgA70ZBaB5rvnJ5Y=");
    }

    /// Autobahn|Python `test_wamp_auth.py::test_compute_wcs`
    /// (`json.dumps([1, 2, 3])` is `"[1, 2, 3]"`).
    #[test]
    fn autobahn_compute_wcs_vector() {
        assert_eq!(compute_wcs(b"L3L1YUE8Txlw", b"[1, 2, 3]"), "1njQtmmeYO41N5EWEzD2kAjjEKRZ5kPZt/TzpYXOzR0=");
    }

    /// RFC 6070 / Crypt-PBKDF2 vectors from Autobahn's `PBKDF2_TEST_VECTORS`
    /// (SHA-1), through the same `pbkdf2` crate.
    #[test]
    fn pbkdf2_sha1_vectors() {
        type Case<'a> = (&'a [u8], &'a [u8], u32, usize, &'a str);
        let cases: [Case; 4] = [
            (b"password", b"salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
            (b"password", b"salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"),
            (
                b"password",
                b"ATHENA.MIT.EDUraeburn",
                1200,
                32,
                "5c08eb61fdf71e4e4ec3cf6ba1f5512ba7e52ddbc5e5142f708a31e2e62b1e13",
            ),
            (b"pass\x00word", b"sa\x00lt", 4096, 16, "56fa6aa75548099dcc37d7f03425e0c3"),
        ];
        for (pw, salt, it, len, hex) in cases {
            let mut out = vec![0u8; len];
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt, it, &mut out);
            assert_eq!(crate::util::hex_encode(&out), hex);
        }
    }

    #[test]
    fn challenge_json_shape() {
        let c = CraChallenge {
            authid: "peter \"p\"",
            authrole: "user",
            authprovider: "static",
            nonce: "LHRTC9zeOIrt_9U3",
            timestamp: "2014-06-22T16:36:25.448Z",
            session: 3251278072152162,
        };
        let s = challenge_string(&c);
        assert_eq!(
            s,
            r#"{"authid": "peter \"p\"", "authrole": "user", "authmethod": "wampcra", "authprovider": "static", "session": 3251278072152162, "nonce": "LHRTC9zeOIrt_9U3", "timestamp": "2014-06-22T16:36:25.448Z"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(v["authid"], "peter \"p\"");
    }

    #[test]
    fn timestamps() {
        use std::time::Duration;
        assert_eq!(utc_timestamp(Duration::from_millis(0)), "1970-01-01T00:00:00.000Z");
        // 2014-06-22T16:36:25.448Z
        assert_eq!(utc_timestamp(Duration::from_millis(1_403_454_985_448)), "2014-06-22T16:36:25.448Z");
        assert_eq!(utc_timestamp(Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
