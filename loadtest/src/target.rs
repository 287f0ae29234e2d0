//! Target URLs: `ws://host:port/path`, `rs://host:port` (alias `tcp://`),
//! `unix:/path` (RawSocket over a Unix socket).

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
    },
    /// RawSocket over TCP.
    RawTcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
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
    #[error("unsupported target {0:?}: expected ws://host:port/path, rs://host:port or unix:/path")]
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
        if let Some(rest) = url.strip_prefix("ws://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (host, port) = split_host_port(url, authority, Some(80))?;
            Ok(Target::WebSocket { host, port, path: path.to_owned() })
        } else if let Some(rest) = url.strip_prefix("rs://").or_else(|| url.strip_prefix("tcp://")) {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            let (host, port) = split_host_port(url, authority, None)?;
            Ok(Target::RawTcp { host, port })
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
            Target::WebSocket { host, port, .. } | Target::RawTcp { host, port } => {
                if host.contains(':') {
                    Some(format!("[{host}]:{port}"))
                } else {
                    Some(format!("{host}:{port}"))
                }
            }
            Target::RawUnix { .. } => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::WebSocket { path, .. } => {
                write!(f, "ws://{}{}", self.socket_addr().unwrap_or_default(), path)
            }
            Target::RawTcp { .. } => write!(f, "rs://{}", self.socket_addr().unwrap_or_default()),
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
            Target::WebSocket { host: "127.0.0.1".into(), port: 8080, path: "/ws".into() }
        );
        assert_eq!(
            Target::parse("ws://localhost").unwrap(),
            Target::WebSocket { host: "localhost".into(), port: 80, path: "/".into() }
        );
        assert_eq!(
            Target::parse("ws://[::1]:9000/a/b").unwrap(),
            Target::WebSocket { host: "::1".into(), port: 9000, path: "/a/b".into() }
        );
        assert_eq!(Target::parse("ws://[::1]:9000/a/b").unwrap().to_string(), "ws://[::1]:9000/a/b");
    }

    #[test]
    fn parses_rawsocket() {
        assert_eq!(
            Target::parse("rs://127.0.0.1:8081").unwrap(),
            Target::RawTcp { host: "127.0.0.1".into(), port: 8081 }
        );
        assert_eq!(Target::parse("tcp://h:1/").unwrap(), Target::RawTcp { host: "h".into(), port: 1 });
        assert_eq!(Target::parse("unix:/tmp/j.sock").unwrap(), Target::RawUnix { path: "/tmp/j.sock".into() });
        assert_eq!(Target::parse("unix:///tmp/j.sock").unwrap(), Target::RawUnix { path: "/tmp/j.sock".into() });
        assert_eq!(Target::parse("rs://127.0.0.1:8081").unwrap().to_string(), "rs://127.0.0.1:8081");
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
