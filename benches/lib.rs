//! # junction-benches
//!
//! Criterion micro-benchmarks for Junction's hot paths: serializers, URI
//! matching, broker fan-out, dealer routing and framing. This crate holds
//! no production code; benchmarks live in `benches/benches/*.rs` and are run
//! with `cargo bench -p junction-benches`.
