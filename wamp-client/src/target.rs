//! Target URLs: `ws://host:port/path`, `wss://host:port/path` (WebSocket
//! over TLS), `rs://host:port` (alias `tcp://`), `rss://host:port` (RawSocket
//! over TLS), `unix:/path` (RawSocket over a Unix socket).

use std::fmt;

/// Where and how to reach a router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// WebSocket over TCP.
    WebSocket {
        /// Host name or address (without brackets for IPv6).
        host: String,
        /// TCP port (default 80).
        port: u16,
        /// Request path, starting with `/`.
        path: String,
        /// `wss://`: TLS under the WebSocket.
        tls: bool,
    },
    /// RawSocket over TCP.
    RawTcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// `rss://`: TLS under the RawSocket.
        tls: bool,
    },
    /// RawSocket over a Unix domain socket.
    RawUnix {
        /// Socket path.
        path: String,
    },
}

/// Why a target URL was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not one of the supported schemes.
    #[error("unsupported target {0:?}: expected ws[s]://host:port/path, rs[s]://host:port or unix:/path")]
    Scheme(String),
    /// Host or port missing or malformed.
    #[error("bad host:port in {0:?}")]
    HostPort(String),
    /// `unix:` without a path.
    #[error("empty unix socket path in {0:?}")]
    EmptyPath(String),
}

fn split_host_port(url: &str, authority: &str, default_port: Option<u16>) -> Result<(String, u16), TargetError> {
    let bad = || TargetError::HostPort(url.to_owned());
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']').ok_or_else(bad)?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
        None => default_port.ok_or_else(bad)?,
    };
    Ok((host.to_owned(), port))
}

impl Target {
    /// Parses a target URL.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let ws =
            url.strip_prefix("ws://").map(|r| (r, false)).or_else(|| url.strip_prefix("wss://").map(|r| (r, true)));
        let rs = url
            .strip_prefix("rs://")
            .or_else(|| url.strip_prefix("tcp://"))
            .map(|r| (r, false))
            .or_else(|| url.strip_prefix("rss://").map(|r| (r, true)));
        if let Some((rest, tls)) = ws {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (host, port) = split_host_port(url, authority, Some(if tls { 443 } else { 80 }))?;
            Ok(Target::WebSocket { host, port, path: path.to_owned(), tls })
        } else if let Some((rest, tls)) = rs {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            let (host, port) = split_host_port(url, authority, None)?;
            Ok(Target::RawTcp { host, port, tls })
        } else if let Some(rest) = url.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(TargetError::EmptyPath(url.to_owned()));
            }
            Ok(Target::RawUnix { path: path.to_owned() })
        } else {
            Err(TargetError::Scheme(url.to_owned()))
        }
    }

    /// `host:port` for TCP targets.
    pub fn socket_addr(&self) -> Option<String> {
        match self {
            Target::WebSocket { host, port, .. } | Target::RawTcp { host, port, .. } => {
                if host.contains(':') {
                    Some(format!("[{host}]:{port}"))
                } else {
                    Some(format!("{host}:{port}"))
                }
            }
            Target::RawUnix { .. } => None,
        }
    }

    /// The host name (for TLS server name indication and verification).
    pub fn host(&self) -> Option<&str> {
        match self {
            Target::WebSocket { host, .. } | Target::RawTcp { host, .. } => Some(host),
            Target::RawUnix { .. } => None,
        }
    }

    /// True for `wss://` and `rss://`.
    pub fn is_tls(&self) -> bool {
        matches!(self, Target::WebSocket { tls: true, .. } | Target::RawTcp { tls: true, .. })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::WebSocket { path, tls, .. } => {
                let scheme = if *tls { "wss" } else { "ws" };
                write!(f, "{scheme}://{}{}", self.socket_addr().unwrap_or_default(), path)
            }
            Target::RawTcp { tls, .. } => {
                let scheme = if *tls { "rss" } else { "rs" };
                write!(f, "{scheme}://{}", self.socket_addr().unwrap_or_default())
            }
            Target::RawUnix { path } => write!(f, "unix:{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_websocket() {
        assert_eq!(
            Target::parse("ws://127.0.0.1:8080/ws").unwrap(),
            Target::WebSocket { host: "127.0.0.1".into(), port: 8080, path: "/ws".into(), tls: false }
        );
        assert_eq!(
            Target::parse("ws://localhost").unwrap(),
            Target::WebSocket { host: "localhost".into(), port: 80, path: "/".into(), tls: false }
        );
        assert_eq!(
            Target::parse("ws://[::1]:9000/a/b").unwrap(),
            Target::WebSocket { host: "::1".into(), port: 9000, path: "/a/b".into(), tls: false }
        );
        assert_eq!(Target::parse("ws://[::1]:9000/a/b").unwrap().to_string(), "ws://[::1]:9000/a/b");
    }

    #[test]
    fn parses_rawsocket() {
        assert_eq!(
            Target::parse("rs://127.0.0.1:8081").unwrap(),
            Target::RawTcp { host: "127.0.0.1".into(), port: 8081, tls: false }
        );
        assert_eq!(Target::parse("tcp://h:1/").unwrap(), Target::RawTcp { host: "h".into(), port: 1, tls: false });
        assert_eq!(Target::parse("unix:/tmp/j.sock").unwrap(), Target::RawUnix { path: "/tmp/j.sock".into() });
        assert_eq!(Target::parse("unix:///tmp/j.sock").unwrap(), Target::RawUnix { path: "/tmp/j.sock".into() });
        assert_eq!(Target::parse("rs://127.0.0.1:8081").unwrap().to_string(), "rs://127.0.0.1:8081");
    }

    #[test]
    fn parses_tls_targets() {
        let t = Target::parse("wss://example.org/ws").unwrap();
        assert_eq!(t, Target::WebSocket { host: "example.org".into(), port: 443, path: "/ws".into(), tls: true });
        assert!(t.is_tls());
        assert_eq!(t.host(), Some("example.org"));
        assert_eq!(t.to_string(), "wss://example.org:443/ws");
        let t = Target::parse("wss://[::1]:8443").unwrap();
        assert_eq!(t, Target::WebSocket { host: "::1".into(), port: 8443, path: "/".into(), tls: true });
        let t = Target::parse("rss://127.0.0.1:8444/").unwrap();
        assert_eq!(t, Target::RawTcp { host: "127.0.0.1".into(), port: 8444, tls: true });
        assert_eq!(t.to_string(), "rss://127.0.0.1:8444");
        assert!(!Target::parse("rs://h:1").unwrap().is_tls());
        assert!(!Target::parse("unix:/x").unwrap().is_tls());
        // RawSocket over TLS has no default port.
        assert!(matches!(Target::parse("rss://host"), Err(TargetError::HostPort(_))));
        assert!(matches!(Target::parse("wss://:1/"), Err(TargetError::HostPort(_))));
        assert!(matches!(Target::parse("https://h:1/"), Err(TargetError::Scheme(_))));
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(matches!(Target::parse("http://x:1"), Err(TargetError::Scheme(_))));
        assert!(matches!(Target::parse("rs://host"), Err(TargetError::HostPort(_))));
        assert!(matches!(Target::parse("rs://host:0"), Err(TargetError::HostPort(_))));
        assert!(matches!(Target::parse("rs://host:99999"), Err(TargetError::HostPort(_))));
        assert!(matches!(Target::parse("ws://:80/"), Err(TargetError::HostPort(_))));
        assert!(matches!(Target::parse("unix:"), Err(TargetError::EmptyPath(_))));
    }
}
