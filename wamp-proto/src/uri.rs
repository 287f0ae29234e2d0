//! URI validation per the WAMP spec.
//!
//! A WAMP URI is a dot-separated list of components. The spec defines two
//! strengths:
//!
//! * **strict**: components are `[0-9a-z_]+` — `^([0-9a-z_]+\.)*([0-9a-z_]+)$`
//! * **loose**: components are anything but whitespace, `.` and `#` —
//!   `^([^\s\.#]+\.)*([^\s\.#]+)$`
//!
//! Pattern-based subscriptions and registrations (`match: "wildcard"` /
//! `"prefix"`) may use empty components (`com..update`, `com.myapp.`), i.e.
//! `^(([0-9a-z_]+\.)|\.)*([0-9a-z_]+)?$` and its loose counterpart.
//!
//! Routers use loose checking by default. The check never allocates.

/// True if `uri` is a valid WAMP URI.
///
/// * `strict`: components restricted to `[0-9a-z_]` (else loose: any
///   character but whitespace, `.` and `#`).
/// * `allow_empty_components`: components may be empty, as in wildcard
///   (`a..c`) and prefix (`a.b.`) patterns; the empty string is then valid
///   too (it matches the spec's regular expression).
pub fn is_valid_uri(uri: &str, strict: bool, allow_empty_components: bool) -> bool {
    if uri.is_empty() {
        return allow_empty_components;
    }
    uri.split('.').all(|component| {
        if component.is_empty() {
            return allow_empty_components;
        }
        if strict {
            component.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_'))
        } else {
            component.chars().all(|c| c != '#' && !c.is_whitespace())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::is_valid_uri;

    #[test]
    fn strict_uris() {
        for ok in ["com.myapp.topic1", "a", "wamp.error.not_authorized", "com.my_app.x1", "1.2.3"] {
            assert!(is_valid_uri(ok, true, false), "{ok} should be valid (strict)");
        }
        for bad in ["", "com.MyApp.topic", "com..topic", ".com", "com.", "com.my-app", "com.my app", "com.#", "ü.x"] {
            assert!(!is_valid_uri(bad, true, false), "{bad} should be invalid (strict)");
        }
    }

    #[test]
    fn loose_uris() {
        for ok in ["com.MyApp.topic", "com.my-app.x", "ü.ñ", "a:b.c/d", "com.myapp.topic1"] {
            assert!(is_valid_uri(ok, false, false), "{ok} should be valid (loose)");
        }
        for bad in ["", "com..topic", ".com", "com.", "com.my app", "com.a#b", "com.\ttab", "com.\u{a0}x", "a.b\n"] {
            assert!(!is_valid_uri(bad, false, false), "{bad:?} should be invalid (loose)");
        }
    }

    #[test]
    fn empty_components() {
        for ok in ["com..topic", ".com", "com.", "..", "", "com.myapp.x"] {
            assert!(is_valid_uri(ok, true, true), "{ok} should be valid (strict, empty allowed)");
            assert!(is_valid_uri(ok, false, true), "{ok} should be valid (loose, empty allowed)");
        }
        assert!(!is_valid_uri("com..My Topic", false, true));
        assert!(!is_valid_uri("com..Topic", true, true));
        assert!(is_valid_uri("com..Topic", false, true));
        assert!(!is_valid_uri("com.#", false, true));
    }
}
