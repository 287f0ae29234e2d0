//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/*`, seeds,
//! inputs the fuzzer kept and crash reproducers) through the same target
//! functions libFuzzer runs, on the stable toolchain. A panic here is a
//! regression of a parser (or of a round-trip property).

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        if let Err(e) = outcome {
            let msg = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("{target}: {} panicked: {msg}", f.display());
        }
    }
    eprintln!("{target}: {} corpus files replayed", files.len());
}

#[test]
fn every_target_has_a_corpus_and_a_cargo_fuzz_binary() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in fuzz_targets::TARGETS {
        assert!(corpus_dir(name).is_dir(), "no corpus for {name}");
        assert!(manifest.contains(&format!("name = \"{name}\"")), "no [[bin]] {name} in fuzz/Cargo.toml");
        let bin = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        let src = std::fs::read_to_string(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(
            src.contains(&format!("fuzz_targets::{name}(")),
            "{} does not call fuzz_targets::{name}",
            bin.display()
        );
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name), fuzz_targets::$name);
            }
        )*
    };
}

replay_tests!(
    ws_handshake,
    ws_frames,
    rawsocket,
    link_frame,
    peer_msg,
    wamp_json,
    wamp_msgpack,
    wamp_cbor,
    wamp_flatbuffers,
    http_request,
    config,
);
