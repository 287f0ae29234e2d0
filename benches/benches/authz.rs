//! Authorization benchmarks: `RoleTable::authorize` on one role compiled
//! from 10 000 permissions — 4000 exact, 3000 prefix, 3000 wildcard — the
//! lookup every PUBLISH/SUBSCRIBE/CALL/REGISTER performs.
//!
//! * `authorize_exact_10k`: URIs matching an exact permission (one hash probe).
//! * `authorize_prefix_10k`: URIs matching only a prefix permission (probe,
//!   then a longest-first scan of the prefixes).
//! * `authorize_wildcard_10k`: URIs matching only a wildcard permission
//!   (probe, full prefix scan, then the wildcard scan).
//! * `authorize_denied_10k`: URIs matching nothing (everything scanned).
//!
//! Each iteration looks up one URI; URIs cycle over 1024 different ones
//! spread across the table.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use router_core::engine::{Action, Allow, Disclose, MatchPolicy, Permission, Role, RoleTable};

fn perm(uri: String, match_policy: MatchPolicy, allow: Allow) -> Permission {
    Permission { uri, match_policy, allow, disclose: Disclose::default() }
}

fn table() -> RoleTable {
    let mut permissions = Vec::with_capacity(10_000);
    for i in 0..4000 {
        permissions.push(perm(format!("com.example.app{i}.procedure"), MatchPolicy::Exact, Allow::ALL));
    }
    for i in 0..3000 {
        permissions.push(perm(format!("com.tenant{i}.svc."), MatchPolicy::Prefix, Allow::ALL));
    }
    for i in 0..3000 {
        permissions.push(perm(format!("org.tenant{i}..event"), MatchPolicy::Wildcard, Allow::ALL));
    }
    RoleTable::new(&Role { name: "big".into(), permissions })
}

fn uris(n: usize, f: impl Fn(usize) -> String) -> Vec<String> {
    (0..1024).map(|k| f(k * n / 1024)).collect()
}

fn authorize(c: &mut Criterion) {
    let t = table();
    let cases = [
        ("authorize_exact_10k", uris(4000, |i| format!("com.example.app{i}.procedure")), true),
        ("authorize_prefix_10k", uris(3000, |i| format!("com.tenant{i}.svc.orders.create")), true),
        ("authorize_wildcard_10k", uris(3000, |i| format!("org.tenant{i}.device42.event")), true),
        ("authorize_denied_10k", uris(3000, |i| format!("net.unknown{i}.thing")), false),
    ];
    let mut g = c.benchmark_group("authz");
    g.throughput(Throughput::Elements(1));
    for (name, uris, allowed) in cases {
        for u in &uris {
            assert_eq!(t.authorize(u, Action::Publish).allowed, allowed, "{name}: {u}");
        }
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                t.authorize(black_box(&uris[i]), Action::Publish)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = authorize
}
criterion_main!(benches);
