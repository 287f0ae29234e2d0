//! A byte stream over TCP or a Unix socket, bound to the current shard.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::{TcpStream, UnixStream};

/// Socket family of a connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SocketKind {
    Tcp,
    Unix,
}

/// See the module docs.
pub enum Stream {
    Tcp(TcpStream),
    /// A Unix stream and its fd (glommio's `UnixStream` does not expose it).
    Unix(UnixStream, RawFd),
}

impl Stream {
    /// Takes ownership of `fd` on this shard.
    ///
    /// # Safety
    /// `fd` must be an open, connected stream socket of `kind` that nothing
    /// else owns.
    pub unsafe fn from_fd(kind: SocketKind, fd: RawFd) -> Stream {
        match kind {
            SocketKind::Tcp => Stream::Tcp(TcpStream::from_raw_fd(fd)),
            SocketKind::Unix => Stream::Unix(UnixStream::from_raw_fd(fd), fd),
        }
    }

    /// The socket fd (still owned by the stream).
    pub fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(_, fd) => *fd,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s, _) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s, _) => Pin::new(s).poll_write(cx, buf),
        }
    }
    /// One non-blocking `sendmsg` of all of `bufs` (glommio's streams write
    /// only the first); if the socket is full, the first piece goes through
    /// [`Stream::poll_write`], which waits for room the glommio way.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.len() > 1 {
            match sendmsg_nowait(self.fd(), bufs) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        self.as_mut().poll_write(cx, first)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s, _) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_close(cx),
            Stream::Unix(s, _) => Pin::new(s).poll_close(cx),
        }
    }
}

/// `sendmsg(2)` of `bufs` without blocking (and without `SIGPIPE`).
fn sendmsg_nowait(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no address, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs`, valid for the call; `fd` is open.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One connection's stream, shared by its reader and its writer task: one
/// file descriptor per connection (not a reader and a writer `dup`). Each
/// side borrows the stream only inside a poll; glommio keeps separate
/// readiness sources for reading and writing, so a pending read and a
/// pending write do not disturb each other. The fd closes when both sides
/// are dropped.
#[derive(Clone)]
pub struct SharedStream(Rc<RefCell<Stream>>);

impl SharedStream {
    pub fn new(stream: Stream) -> SharedStream {
        SharedStream(Rc::new(RefCell::new(stream)))
    }

    /// The socket fd (open while any side is alive).
    pub fn fd(&self) -> RawFd {
        self.0.borrow().fd()
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write_vectored(cx, bufs)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}
