//! Watch-to-pair (Crossbar's `auto_default_mrealm.watch_to_pair`): the
//! master scans a directory for node keys (`key.pub` files, as
//! `junction edge init` writes them) and pairs every key it has never seen
//! to the management realm `default`, under the key's `node-authid` tag
//! (or `node-<first 8 hex digits of the key>`) and with its
//! `node-cluster-ip`. Optionally it writes a `key.activate` file beside the
//! key naming the master's URL, which the node reads at start.
//!
//! A key the master knows already (paired, or paired once and unpaired
//! since) is left alone: unpairing is not undone by the next scan.
//!
//! This module holds the parts: the key file parser and the activation
//! file text (pure), and the directory scan (file I/O only, bounded in
//! depth and count). The pairing itself is the master's own `pair_node`
//! (see `service.rs`), so it validates and publishes `on_node_paired` as a
//! management call does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The management realm keys are paired to (Crossbar's default mrealm).
pub const DEFAULT_MREALM: &str = "default";
/// How deep below the watched directory `key.pub` files are looked for
/// (`nodes/node1/.crossbar/key.pub` is depth 3).
pub const MAX_DEPTH: usize = 4;
/// At most this many keys are read per scan.
pub const MAX_KEYS: usize = 10_000;
/// A key file larger than this is not a key file.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// What to watch, and whether to write activation files.
#[derive(Debug, Clone)]
pub struct WatchToPair {
    pub dir: PathBuf,
    /// Only subdirectories of `dir` whose name matches are scanned.
    pub pattern: Option<regex::Regex>,
    /// Write `key.activate` beside each key paired (Crossbar's `write_pairing_file`).
    pub write_pairing_file: bool,
    /// The URL `key.activate` names (Crossbar's `management_url`).
    pub management_url: String,
}

/// Compiles a `watch_to_pair_pattern`.
pub fn pattern(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|e| e.to_string())
}

/// A node key found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    /// The directory holding `key.pub` (the node's cbdir).
    pub cbdir: PathBuf,
    /// The Ed25519 public key, 64 lowercase hex digits.
    pub pubkey: String,
    /// The `node-authid` tag, or `node-<first 8 hex digits>`.
    pub authid: String,
    /// The `node-cluster-ip` tag.
    pub cluster_ip: Option<String>,
}

/// The `tag: value` lines of a Crossbar key file (comments and blank lines
/// skipped; the first occurrence of a tag wins).
pub fn parse_key_tags(text: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            tags.entry(k.trim().to_owned()).or_insert_with(|| v.trim().to_owned());
        }
    }
    tags
}

/// The key a `key.pub` text names, or why it names none.
pub fn found_key(cbdir: &Path, text: &str) -> Result<FoundKey, String> {
    let tags = parse_key_tags(text);
    let pubkey = tags
        .get("public-key-ed25519")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("no 'public-key-ed25519: <64 hex digits>' line")?
        .to_ascii_lowercase();
    let authid = match tags.get("node-authid") {
        Some(a) if !a.is_empty() => a.clone(),
        _ => format!("node-{}", &pubkey[..8]),
    };
    Ok(FoundKey {
        cbdir: cbdir.to_owned(),
        pubkey,
        authid,
        cluster_ip: tags.get("node-cluster-ip").filter(|v| !v.is_empty()).cloned(),
    })
}

/// The text of `key.activate` for a node paired as `node_oid` / `authid`
/// to management realm `mrealm` (`mrealm_oid`), Crossbar's tags.
pub fn activation_text(key: &FoundKey, node_oid: &str, mrealm_oid: &str, management_url: &str, now: &str) -> String {
    let tags = [
        ("created-at", now),
        ("management-url", management_url),
        ("management-realm", DEFAULT_MREALM),
        ("management-realm-oid", mrealm_oid),
        ("node-oid", node_oid),
        ("node-cluster-ip", key.cluster_ip.as_deref().unwrap_or("")),
        ("node-authid", key.authid.as_str()),
        ("public-key-ed25519", key.pubkey.as_str()),
    ];
    let mut out = String::from("Crossbar.io node activation\n\n");
    for (k, v) in tags {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

/// Scans `watch.dir`: every `key.pub` under its subdirectories (those
/// matching the pattern), at most [`MAX_DEPTH`] deep and [`MAX_KEYS`] in
/// all. Unreadable or malformed files are returned as errors (path, why)
/// so the caller can log them once.
pub fn scan(dir: &Path, pattern: Option<&regex::Regex>) -> (Vec<FoundKey>, Vec<(PathBuf, String)>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        errors.push((dir.to_owned(), "cannot read the directory".into()));
        return (keys, errors);
    };
    let mut tops: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| pattern.is_none_or(|p| p.is_match(&e.file_name().to_string_lossy())))
        .map(|e| e.path())
        .collect();
    tops.sort();
    let mut stack: Vec<(PathBuf, usize)> = tops.into_iter().rev().map(|p| (p, 1)).collect();
    while let Some((d, depth)) = stack.pop() {
        if keys.len() >= MAX_KEYS {
            break;
        }
        let file = d.join("key.pub");
        if let Ok(meta) = std::fs::metadata(&file) {
            if meta.is_file() && meta.len() <= MAX_KEY_FILE {
                match std::fs::read_to_string(&file) {
                    Ok(text) => match found_key(&d, &text) {
                        Ok(k) => keys.push(k),
                        Err(e) => errors.push((file, e)),
                    },
                    Err(e) => errors.push((file, e.to_string())),
                }
            }
        }
        if depth < MAX_DEPTH {
            if let Ok(entries) = std::fs::read_dir(&d) {
                let mut subs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
                subs.sort();
                stack.extend(subs.into_iter().rev().map(|p| (p, depth + 1)));
            }
        }
    }
    (keys, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "2235aafecdb5dbb9a60ac90143c5e885d1d04574d5990dda114de35115f37349";

    #[test]
    fn key_files_and_activation_text() {
        let text = format!(
            "# Junction node public key\n\ncreator: junction 0.1.0\nnode-authid: node1\nnode-cluster-ip: 10.0.0.5\npublic-key-ed25519: {}\n",
            KEY.to_ascii_uppercase()
        );
        let k = found_key(Path::new("/n/.crossbar"), &text).expect("a key");
        assert_eq!(k.pubkey, KEY);
        assert_eq!(k.authid, "node1");
        assert_eq!(k.cluster_ip.as_deref(), Some("10.0.0.5"));
        let bare = found_key(Path::new("/m"), &format!("public-key-ed25519: {KEY}\n")).expect("a key");
        assert_eq!(bare.authid, "node-2235aafe");
        assert_eq!(bare.cluster_ip, None);
        assert!(found_key(Path::new("/x"), "public-key-ed25519: 12ab\n").is_err());
        assert!(found_key(Path::new("/x"), "").is_err());
        let a = activation_text(&k, "oid-n", "oid-m", "ws://10.0.0.1:9000/ws", "2026-12-03T00:00:00Z");
        let tags = parse_key_tags(&a);
        assert_eq!(tags["management-url"], "ws://10.0.0.1:9000/ws");
        assert_eq!(tags["node-oid"], "oid-n");
        assert_eq!(tags["public-key-ed25519"], KEY);
        assert_eq!(tags["node-authid"], "node1");
    }
}
