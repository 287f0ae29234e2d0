//! # junction-benches
//!
//! Criterion micro-benchmarks for Junction's hot paths: serializers,
//! authorization, broker fan-out, dealer routing and framing. This crate
//! holds no production code and is not a load test (that is `loadtest`,
//! which drives a real router over sockets): every benchmark here runs in
//! memory, in one thread, against the sans-IO crates directly.
//!
//! Run them all with `cargo bench -p junction-benches`, or one target with
//! `cargo bench -p junction-benches --bench broker`. Each benchmark warms up
//! for 1 s and measures for 3 s (30 samples), so the whole suite takes a few
//! minutes. `cargo test` does not build them (only `--benches` or
//! `--all-targets` does); `cargo bench -p junction-benches -- --test` runs
//! every benchmark once as a smoke test, including the fixture assertions
//! (each benchmark first checks that its setup does what its name says).
//! Results are recorded in `docs/benchmarks.md`.
//!
//! ## Benchmarks (`benches/*.rs`)
//! - **serializers** (throughput: encoded bytes), for each of `json`,
//!   `msgpack`, `cbor`, `flatbuffers` and a `small` (~100 B of args/kwargs)
//!   and a `4k` (~4 KiB) payload:
//!   - `encode_event_<ser>_<size>`: an EVENT whose raw payload is spliced in
//!     (what the broker does once per serializer per publication);
//!   - `decode_publish_<ser>_<size>`: a received PUBLISH, payload kept raw;
//!   - `transcode_payload_<from>_to_<to>_<size>` (json↔cbor, msgpack↔cbor):
//!     `Payload::encoded_in` for a subscriber on another serializer.
//! - **broker** (through `router_core::engine::Realm`: `handle_message` plus
//!   draining every transmit):
//!   - `publish_fanout_1k_subscribers_cbor` / `_mixed` (250 per serializer):
//!     one PUBLISH to 1000 subscribers; throughput in delivered events;
//!   - `publish_no_subscribers`;
//!   - `subscription_lookup_exact_1` / `_10k`: a PUBLISH delivered to one
//!     subscriber with 1 or 10 000 subscribed topics;
//!   - `subscribe_unsubscribe_shared` / `_new_topic`.
//! - **dealer**: `call_yield_roundtrip_1_procedure` / `_1k_procedures`:
//!   CALL → INVOCATION, YIELD → RESULT.
//! - **authz**: `RoleTable::authorize` on a role of 10 000 permissions (4000
//!   exact, 3000 prefix, 3000 wildcard): `authorize_exact_10k`,
//!   `authorize_prefix_10k`, `authorize_wildcard_10k`, `authorize_denied_10k`.
//! - **framing**: `websocket_decode_masked_{1KiB,64KiB}`,
//!   `websocket_encode_header_{small,16bit,64bit}`,
//!   `websocket_encode_message_1KiB`, `rawsocket_decode_{1KiB,64KiB}`,
//!   `rawsocket_encode_header`, `rawsocket_encode_1KiB`.
