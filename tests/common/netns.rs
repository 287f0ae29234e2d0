//! Multi-host topologies for tests: network namespaces that the test
//! creates and removes itself, veth pairs on a bridge that lives in a
//! namespace of its own (no interface of the topology is in the root
//! namespace).

use std::process::Command;

/// The port the cluster tests' nodes listen on inside their namespaces.
pub const PORT: u16 = 8080;

/// Runs `ip <args>`; panics with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}\n(this test needs root or CAP_NET_ADMIN, and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three node namespaces and a bridge namespace, removed on drop.
pub struct Topology {
    pub bridge: String,
    pub nodes: Vec<String>,
}

impl Topology {
    pub fn new(n: usize) -> Topology {
        let tag = format!("jt{}", std::process::id());
        let t = Topology { bridge: format!("{tag}br"), nodes: (0..n).map(|i| format!("{tag}n{i}")).collect() };
        ip(&["netns", "add", &t.bridge]);
        ip(&["-n", &t.bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &t.bridge, "link", "set", "br0", "up"]);
        for (i, ns) in t.nodes.iter().enumerate() {
            ip(&["netns", "add", ns]);
            let port = format!("vb{i}");
            ip(&["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &t.bridge]);
            ip(&["-n", ns, "addr", "add", &format!("{}/24", t.addr(i)), "dev", "eth0"]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", &t.bridge, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &t.bridge, "link", "set", &port, "up"]);
        }
        t
    }

    pub fn addr(&self, i: usize) -> String {
        format!("10.203.0.{}", i + 1)
    }

    pub fn url(&self, i: usize) -> String {
        format!("rs://{}:{PORT}", self.addr(i))
    }

    /// Takes node `i`'s bridge port down (`up = false`) or up again.
    pub fn set_port(&self, i: usize, up: bool) {
        ip(&["-n", &self.bridge, "link", "set", &format!("vb{i}"), if up { "up" } else { "down" }]);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.bridge)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
