//! # fuzz-targets: the bodies of Junction's fuzz targets
//!
//! One function per parser a peer (or an operator's config file) reaches.
//! Each takes arbitrary bytes and must never panic; where it is cheap it also
//! checks a round trip (decode → encode → decode gives the same thing) and a
//! few invariants, and panics (with a message saying which) if one fails.
//!
//! The same functions are run two ways:
//! - by libFuzzer, through the `cargo fuzz` crate in `fuzz/` (nightly,
//!   coverage-guided; `scripts/fuzz.sh`);
//! - by `cargo test` on the stable toolchain (`tests/corpus.rs`), which
//!   replays every file of `fuzz/corpus/<target>/` through its target, so the
//!   committed corpus, crash reproducers included, is a regression suite.
//!
//! [`TARGETS`] lists them by name; the name is the corpus directory and the
//! `cargo fuzz` target.

mod cluster;
mod framing;
mod wamp;
mod web;

pub use cluster::peer_msg;
pub use framing::{link_frame, rawsocket, ws_frames, ws_handshake};
pub use wamp::{wamp_cbor, wamp_flatbuffers, wamp_json, wamp_msgpack};
pub use web::{config, http_request};

/// A fuzz target: its name (corpus directory, `cargo fuzz` target) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("ws_handshake", ws_handshake),
    ("ws_frames", ws_frames),
    ("rawsocket", rawsocket),
    ("link_frame", link_frame),
    ("peer_msg", peer_msg),
    ("wamp_json", wamp_json),
    ("wamp_msgpack", wamp_msgpack),
    ("wamp_cbor", wamp_cbor),
    ("wamp_flatbuffers", wamp_flatbuffers),
    ("http_request", http_request),
    ("config", config),
];

/// Splits `data` into the chunks a target feeds one after the other: the
/// whole input if `chunk` is 0, else pieces of `chunk` bytes (so the
/// incremental parsers also see requests and frames trickle in).
pub(crate) fn chunks(data: &[u8], chunk: usize) -> impl Iterator<Item = &[u8]> {
    let size = if chunk == 0 { data.len().max(1) } else { chunk };
    data.chunks(size)
}
