//! # junction-config
//!
//! Junction's node configuration: the file given to `junction start --config
//! FILE` and checked by `junction check --config FILE`.
//!
//! **What it is.** A reader and validator for node configs in the shape of
//! Crossbar.io's node config (`config.json` / `config.yaml`, version 2) for
//! *router* and *proxy* workers, so Crossbar users can bring their files:
//! `workers: [{type: router, realms: [...], transports: [...]}, {type: proxy,
//! routes: {...}, connections: {...}, transports: [...]}]` (any number of
//! each), with roles, permissions (`exact`/`prefix`/`wildcard`), WebSocket,
//! RawSocket and `web` transports with web services (`websocket`, `static`,
//! `redirect`, `json`, `nodeinfo`), serializers, WebSocket options,
//! authentication (including `cryptosign-proxy` for proxy-to-router links)
//! and `shared` (`SO_REUSEPORT`) endpoints checked for conflicts across
//! workers. Crossbar's realm `store` (in-memory event history) is read in
//! Crossbar's shape. Junction extensions (shards, CPU pinning, per-transport
//! connection and outbound-queue limits and slow-consumer policy, per-realm
//! session limits, home shard, dealer call limits/timeouts, broker retention
//! limits, proxy balancing and backend-link settings, the `"*"` route role,
//! the node key `controller.options.node_key`) live in the `options` blocks
//! Crossbar already has. `docs/config.md` is the reference for every key,
//! type and default, and lists the differences from Crossbar.
//!
//! The result is a typed [`NodeConfig`] with every default applied (see
//! [`model`]); limits are always explicit numbers, never "unlimited".
//!
//! **How.** The text is parsed into a `serde_json::Value` (YAML through
//! `serde_yaml` into the same type) and walked by hand rather than with serde
//! derive, because the point is diagnostics: *every* problem is reported, each
//! with a JSON-path-like location such as
//! `workers[0].realms[1].roles[0].permissions[2].match` (and, for JSON
//! sources, its line). Unknown keys get a "did you mean" suggestion; known
//! Crossbar options that Junction ignores produce warnings
//! ([`NodeConfig::warnings`]), not errors.
//!
//! **What it is not.** It starts nothing, opens no sockets and reads no
//! environment variables: the runtime and CLI consume the typed config. It
//! does not run Crossbar's other worker types (`container`, `guest`, ...),
//! web services such as `wsgi` or `reverseproxy`, or the `cookie`/`function`
//! authentication variants: those parse, and are reported as validation
//! errors saying they are not supported (yet). It parses TLS endpoints,
//! static directories, key paths and authentication methods (anonymous,
//! ticket, wampcra, cryptosign, scram, tls, cryptosign-proxy) but opens no
//! files and computes nothing: `wamp-auth` and the runtime do.
//!
//! ```
//! let cfg = junction_config::default_config();
//! assert!(cfg.validate().is_ok());
//! let router = cfg.router().expect("a router worker");
//! assert_eq!(router.realms[0].name, "realm1");
//! ```

pub mod error;
pub mod model;
mod parse;
mod validate;

use std::collections::HashMap;
use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;

use error::{is_within, join, Diags};

/// The embedded default configuration (also shown in `docs/config.md`).
pub const DEFAULT_CONFIG_JSON: &str = include_str!("default-config.json");

/// Largest config file [`load`] reads.
pub const MAX_CONFIG_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Source syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (1.2, through `serde_yaml`).
    Yaml,
}

/// Parses and validates a configuration text. On success the config's
/// [`NodeConfig::warnings`] hold the non-fatal findings; on failure every
/// problem is returned.
pub fn parse_str(text: &str, format: Format) -> Result<NodeConfig, ConfigErrors> {
    let value = match format {
        Format::Json => serde_json::from_str::<serde_json::Value>(text).map_err(json_syntax)?,
        Format::Yaml => serde_yaml::from_str::<serde_json::Value>(text).map_err(yaml_syntax)?,
    };
    let lines = match format {
        Format::Json => json_lines(text),
        Format::Yaml => HashMap::new(),
    };
    let mut parse_diags = Diags::default();
    let mut cfg = parse::parse_root(&value, &mut parse_diags);
    let mut check_diags = Diags::default();
    validate::check(&cfg, &mut check_diags);

    // A problem found by the parser makes the parser substitute a default;
    // drop validation findings about such a spot, or within it.
    let mut errors = parse_diags.errors;
    let mut skip: Vec<String> = errors.iter().map(|e| e.location.clone()).collect();
    skip.extend(parse_diags.poisoned);
    let related = |loc: &str| skip.iter().any(|p| is_within(loc, p));
    errors.extend(check_diags.errors.into_iter().filter(|e| !related(&e.location)));
    let mut warnings = parse_diags.warnings;
    warnings.extend(check_diags.warnings);
    for e in errors.iter_mut().chain(warnings.iter_mut()) {
        e.line = line_of(&lines, &e.location);
    }
    // Stable sort: errors without a line keep their order, after the others.
    errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    warnings.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    if errors.is_empty() {
        cfg.warnings = warnings;
        Ok(cfg)
    } else {
        Err(ConfigErrors { errors, warnings })
    }
}

/// Parses and validates one router realm given on its own (Crossbar's realm
/// object: `{name, roles, options?, store?, rlinks?}`), as the management
/// API's `start_router_realm` passes it. It is checked exactly as a realm of
/// a config file; error locations are relative to the realm (`realm.roles[0]`).
pub fn parse_realm(value: &serde_json::Value) -> Result<RealmConfig, ConfigErrors> {
    if !value.is_object() {
        return Err(ConfigErrors::single("realm", "a realm must be an object"));
    }
    // A router worker around it, with a transport the validator accepts.
    let wrapped = serde_json::json!({
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [value],
            "transports": [{"type": "rawsocket", "endpoint": {"type": "unix", "path": "/nonexistent/junction-realm-check"}}]
        }]
    });
    const PREFIX: &str = "workers[0].realms[0]";
    let relocate = |mut e: ConfigError| {
        e.location = match e.location.strip_prefix(PREFIX) {
            Some(rest) => format!("realm{rest}"),
            None => e.location,
        };
        e.line = None;
        e
    };
    match parse_str(&wrapped.to_string(), Format::Json) {
        Ok(cfg) => cfg
            .router()
            .and_then(|r| r.realms.first().cloned())
            .ok_or_else(|| ConfigErrors::single("realm", "the realm could not be read")),
        Err(e) => Err(ConfigErrors {
            errors: e.errors.into_iter().map(relocate).collect(),
            warnings: e.warnings.into_iter().map(relocate).collect(),
        }),
    }
}

/// Parses and validates one router transport given on its own (Crossbar's
/// transport object, as `start_router_transport` passes it), checked as a
/// transport of a router worker; locations are relative to it
/// (`transport.endpoint`).
pub fn parse_router_transport(value: &serde_json::Value) -> Result<TransportConfig, ConfigErrors> {
    if !value.is_object() {
        return Err(ConfigErrors::single("transport", "a transport must be an object"));
    }
    let wrapped = serde_json::json!({
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "transport-check", "roles": [{"name": "r", "permissions": []}]}],
            "transports": [value]
        }]
    });
    const PREFIX: &str = "workers[0].transports[0]";
    let relocate = |mut e: ConfigError| {
        e.location = match e.location.strip_prefix(PREFIX) {
            Some(rest) => format!("transport{rest}"),
            None => e.location,
        };
        e.line = None;
        e
    };
    match parse_str(&wrapped.to_string(), Format::Json) {
        Ok(cfg) => cfg
            .router()
            .and_then(|r| r.transports.first().cloned())
            .ok_or_else(|| ConfigErrors::single("transport", "the transport could not be read")),
        Err(e) => Err(ConfigErrors {
            errors: e.errors.into_iter().map(relocate).collect(),
            warnings: e.warnings.into_iter().map(relocate).collect(),
        }),
    }
}

/// Reads, parses and validates a config file. The format follows the
/// extension (`.json`, `.yaml`, `.yml`); otherwise JSON is tried, then YAML.
pub fn load(path: &Path) -> Result<NodeConfig, ConfigErrors> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| ConfigErrors::single("", format!("cannot read {shown}: {e}")))?;
    if meta.len() > MAX_CONFIG_FILE_SIZE {
        return Err(ConfigErrors::single(
            "",
            format!("{shown} is {} bytes: config files are limited to {MAX_CONFIG_FILE_SIZE} bytes", meta.len()),
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigErrors::single("", format!("cannot read {shown}: {e}")))?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => parse_str(&text, Format::Json),
        Some("yaml") | Some("yml") => parse_str(&text, Format::Yaml),
        _ => {
            if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
                parse_str(&text, Format::Json)
            } else {
                parse_str(&text, Format::Yaml)
            }
        }
    }
}

/// The embedded default configuration: realm `realm1` whose role `anonymous`
/// may do everything (uri `""`, match `prefix`), WebSocket at
/// `ws://127.0.0.1:8080/ws` (a `web` transport with path `ws`), RawSocket at
/// `127.0.0.1:8081`, all four serializers.
pub fn default_config() -> NodeConfig {
    match parse_str(DEFAULT_CONFIG_JSON, Format::Json) {
        Ok(cfg) => cfg,
        // The embedded file is tested to be valid; this arm is unreachable in
        // a tested build.
        Err(e) => panic!("embedded default config is invalid:\n{e}"),
    }
}

impl NodeConfig {
    /// Checks values the types cannot rule out (ranges, duplicates, URIs,
    /// unsupported features), reporting every problem. [`parse_str`] and
    /// [`load`] already run this; call it on configs built in code.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut d = Diags::default();
        validate::check(self, &mut d);
        if d.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors { errors: d.errors, warnings: d.warnings })
        }
    }
}

fn json_syntax(e: serde_json::Error) -> ConfigErrors {
    ConfigErrors {
        errors: vec![ConfigError {
            location: String::new(),
            message: format!("invalid JSON: {e}"),
            line: Some(e.line()),
        }],
        warnings: Vec::new(),
    }
}

fn yaml_syntax(e: serde_yaml::Error) -> ConfigErrors {
    ConfigErrors {
        errors: vec![ConfigError {
            location: String::new(),
            line: e.location().map(|l| l.line()),
            message: format!("invalid YAML: {e}"),
        }],
        warnings: Vec::new(),
    }
}

/// Line of `loc`, or of its nearest ancestor present in `lines`.
fn line_of(lines: &HashMap<String, usize>, loc: &str) -> Option<usize> {
    if lines.is_empty() {
        return None;
    }
    let mut cur = loc;
    loop {
        if let Some(l) = lines.get(cur) {
            return Some(*l);
        }
        if cur.is_empty() {
            return None;
        }
        cur = parent(cur);
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a["x"]` → `a`, `a` → ``.
fn parent(loc: &str) -> &str {
    if loc.ends_with(']') {
        if let Some(i) = loc.rfind('[') {
            return &loc[..i];
        }
    }
    match loc.rfind('.') {
        Some(i) => &loc[..i],
        None => "",
    }
}

/// Maps each location of a JSON text (object members and array elements) to
/// the line it starts on. The text is known to be valid JSON.
fn json_lines(src: &str) -> HashMap<String, usize> {
    enum Frame {
        Obj { path: String, key: Option<String>, expect_key: bool },
        Arr { path: String, idx: usize },
    }
    fn value_path(stack: &[Frame]) -> String {
        match stack.last() {
            None => String::new(),
            Some(Frame::Obj { path, key, .. }) => join(path, key.as_deref().unwrap_or("")),
            Some(Frame::Arr { path, idx }) => error::index(path, *idx),
        }
    }
    let mut map = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let bytes = src.as_bytes();
    let mut line = 1usize;
    let mut i = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        // A value starts here if we are in an array (or at the root).
        let value_start = !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b':' | b'}' | b']');
        let is_key = matches!(stack.last(), Some(Frame::Obj { expect_key: true, .. }));
        if value_start && !is_key {
            if let Some(Frame::Arr { path, idx }) = stack.last() {
                map.insert(error::index(path, *idx), line);
            }
        }
        match c {
            b'\n' => line += 1,
            b'{' => {
                let path = value_path(&stack);
                stack.push(Frame::Obj { path, key: None, expect_key: true });
            }
            b'[' => {
                let path = value_path(&stack);
                stack.push(Frame::Arr { path, idx: 0 });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Obj { expect_key, .. }) => *expect_key = true,
                Some(Frame::Arr { idx, .. }) => *idx += 1,
                None => {}
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let end = (i + 1).min(bytes.len());
                if let Some(Frame::Obj { path, key, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        let k: String = serde_json::from_str(&src[start..end]).unwrap_or_default();
                        map.insert(join(path, &k), line);
                        *key = Some(k);
                        *expect_key = false;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    map
}

#[cfg(test)]
mod tests;
