//! File-extension to media-type mapping (built-in table of the common web types).

use std::collections::HashMap;
use std::path::Path;

/// Fallback media type for unknown extensions.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Built-in media type for a lower-case extension without the dot (`"html"`), if known.
/// `text/*` types carry `; charset=utf-8`.
pub fn builtin_mime_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "yaml" | "yml" => "application/yaml",
        "webmanifest" => "application/manifest+json",
        _ => return None,
    })
}

/// Media type for `path`: `overrides` (keys are lower-case `".ext"`) first, then the
/// built-in table, then `application/octet-stream`.
pub fn mime_type_for<'a>(path: &Path, overrides: &'a HashMap<String, String>) -> &'a str {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return OCTET_STREAM;
    };
    let mut key = String::with_capacity(ext.len() + 1);
    key.push('.');
    key.extend(ext.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(t) = overrides.get(&key) {
        return t;
    }
    builtin_mime_type(&key[1..]).unwrap_or(OCTET_STREAM)
}

/// Normalizes an override key to the lower-case `".ext"` form (`"SVG"` → `".svg"`).
pub(crate) fn normalize_ext_key(ext: &str) -> String {
    let ext = ext.trim().trim_start_matches('.');
    let mut key = String::with_capacity(ext.len() + 1);
    key.push('.');
    key.extend(ext.chars().map(|c| c.to_ascii_lowercase()));
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_overrides() {
        let mut o = HashMap::new();
        o.insert(normalize_ext_key("MD"), "text/x-custom".to_owned());
        assert_eq!(mime_type_for(Path::new("a/index.HTML"), &o), "text/html; charset=utf-8");
        assert_eq!(mime_type_for(Path::new("x.mjs"), &o), "text/javascript; charset=utf-8");
        assert_eq!(mime_type_for(Path::new("x.wasm"), &o), "application/wasm");
        assert_eq!(mime_type_for(Path::new("x.woff2"), &o), "font/woff2");
        assert_eq!(mime_type_for(Path::new("x.svg"), &o), "image/svg+xml");
        assert_eq!(mime_type_for(Path::new("x.jpeg"), &o), "image/jpeg");
        assert_eq!(mime_type_for(Path::new("README.md"), &o), "text/x-custom");
        assert_eq!(mime_type_for(Path::new("noext"), &o), OCTET_STREAM);
        assert_eq!(mime_type_for(Path::new("x.unknownext"), &o), OCTET_STREAM);
        assert_eq!(mime_type_for(Path::new(".bashrc"), &o), OCTET_STREAM);
        for ext in ["txt", "css", "csv", "md", "html"] {
            assert!(builtin_mime_type(ext).is_some_and(|t| t.starts_with("text/") && t.ends_with("; charset=utf-8")));
        }
    }
}
