//! Listening sockets, bound once by the starting thread.
//!
//! Binding before any shard starts gives a clear start-up error ("address in
//! use", "permission denied") instead of a shard dying later, and lets every
//! shard accept on the SAME socket (each shard gets a `dup` of the fd): the
//! kernel hands each new connection to one of the shards waiting in accept.
//! We deliberately do not use `SO_REUSEPORT` here, so a second Junction on the
//! same port fails instead of silently sharing it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use super::setup::EndpointSetup;
use crate::RouterError;

/// A bound, listening socket.
#[derive(Debug)]
pub struct BoundListener {
    fd: OwnedFd,
    /// What it listens on (with the real port if 0 was configured).
    pub endpoint: EndpointSetup,
}

impl BoundListener {
    /// A new fd for the same listening socket, for one shard.
    pub fn dup_fd(&self) -> io::Result<RawFd> {
        // SAFETY: dup of a valid open fd; the caller takes ownership.
        let fd = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(fd)
        }
    }
}

/// Binds one endpoint.
pub fn bind(endpoint: &EndpointSetup) -> Result<BoundListener, RouterError> {
    let err = |e: io::Error| RouterError::Bind { endpoint: endpoint.to_string(), source: e };
    match endpoint {
        EndpointSetup::Tcp { addr, backlog, reuse_port, portrange: Some((lo, hi)) } => {
            // The first port of the range that binds.
            let mut last = None;
            for port in *lo..=*hi {
                let one = EndpointSetup::Tcp {
                    addr: SocketAddr::new(addr.ip(), port),
                    backlog: *backlog,
                    reuse_port: *reuse_port,
                    portrange: None,
                };
                match bind(&one) {
                    Ok(l) => return Ok(l),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| err(io::Error::new(io::ErrorKind::AddrInUse, "empty port range"))))
        }
        EndpointSetup::Tcp { addr, backlog, reuse_port, portrange: None } => {
            let sock = Socket::new(Domain::for_address(*addr), Type::STREAM, None).map_err(err)?;
            sock.set_reuse_address(true).map_err(err)?;
            if *reuse_port {
                // `shared: true`: several processes (proxy workers) listen on
                // this port; the kernel spreads connections across them.
                sock.set_reuse_port(true).map_err(err)?;
            }
            if addr.is_ipv6() {
                sock.set_only_v6(false).ok();
            }
            sock.bind(&(*addr).into()).map_err(err)?;
            sock.listen(*backlog as i32).map_err(err)?;
            sock.set_nonblocking(true).map_err(err)?;
            let local = sock.local_addr().map_err(err)?.as_socket().unwrap_or(*addr);
            Ok(BoundListener {
                fd: OwnedFd::from(sock),
                endpoint: EndpointSetup::Tcp {
                    addr: local,
                    backlog: *backlog,
                    reuse_port: *reuse_port,
                    portrange: None,
                },
            })
        }
        EndpointSetup::Unix { path } => {
            remove_stale_socket(path).map_err(err)?;
            let sock = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
            sock.bind(&SockAddr::unix(path).map_err(err)?).map_err(err)?;
            sock.listen(1024).map_err(err)?;
            sock.set_nonblocking(true).map_err(err)?;
            Ok(BoundListener { fd: OwnedFd::from(sock), endpoint: endpoint.clone() })
        }
    }
}

/// A socket file left behind by a process that died is removed; a live one
/// (someone accepts connections on it) or a non-socket file is an error.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_socket() => match StdUnixStream::connect(path) {
            Ok(_) => Err(io::Error::new(io::ErrorKind::AddrInUse, "another process is listening on this socket")),
            Err(_) => std::fs::remove_file(path),
        },
        Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, "path exists and is not a socket")),
    }
}

/// Closes a raw fd we own (used when a hand-off cannot be delivered).
pub fn close_fd(fd: RawFd) {
    // SAFETY: the caller owns `fd` and does not use it afterwards.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
}

/// Duplicates an fd we hold a borrowed reference to.
pub fn dup(fd: RawFd) -> io::Result<RawFd> {
    // SAFETY: fcntl on a valid fd.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n)
    }
}
