//! File descriptors: the process's open-files limit and the connection
//! capacity it allows.
//!
//! A connection holds one descriptor ([`super::stream::SharedStream`]; one
//! more for a moment while it is handed to its realm's shard). At start-up
//! [`raise_nofile`] lifts the soft `RLIMIT_NOFILE` to the hard limit and
//! [`set_capacity`] reserves [`FD_RESERVE`] descriptors for listeners,
//! io_uring, links, files and hand-offs; the rest is the connection
//! capacity. A connection accepted beyond it is refused at once (as over a
//! transport's `max_connections`, counted in `refused_fd_limit`), so the
//! process never runs out of descriptors mid-handshake; if it does anyway
//! (descriptors used elsewhere), the accept loop sheds the connection with
//! a spare descriptor instead of leaving it queued ([`shed_one`]).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Descriptors kept free of connections.
pub const FD_RESERVE: usize = 128;

static CAPACITY: AtomicUsize = AtomicUsize::new(usize::MAX);
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The open-files limit before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unprivileged
/// process may; raising the hard limit needs `CAP_SYS_RESOURCE`, e.g.
/// systemd's `LimitNOFILE=`).
pub fn raise_nofile() -> io::Result<NofileLimit> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = rl.rlim_cur;
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        rl = raised;
    }
    Ok(NofileLimit { before, soft: rl.rlim_cur, hard: rl.rlim_max })
}

/// The connection capacity for a soft limit of `soft` descriptors.
pub fn capacity_for(soft: u64) -> usize {
    usize::try_from(soft).unwrap_or(usize::MAX).saturating_sub(FD_RESERVE)
}

/// Sets the process's connection capacity (see the module docs).
pub fn set_capacity(connections: usize) {
    CAPACITY.store(connections, Ordering::Relaxed);
}

/// The process's connection capacity (`usize::MAX` if never set).
pub fn capacity() -> usize {
    CAPACITY.load(Ordering::Relaxed)
}

/// Connections of this process open now.
pub fn open_connections() -> usize {
    OPEN.load(Ordering::Relaxed)
}

/// Takes one connection slot of the process; `false` at capacity.
pub(crate) fn take_slot() -> bool {
    let cap = CAPACITY.load(Ordering::Relaxed);
    let prev = OPEN.fetch_add(1, Ordering::AcqRel);
    if prev >= cap {
        OPEN.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    true
}

pub(crate) fn give_slot() {
    OPEN.fetch_sub(1, Ordering::AcqRel);
}

/// True for the accept errors of a process (or system) out of descriptors.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

thread_local! {
    /// A descriptor held in reserve by each accepting thread, given up to
    /// shed one connection when the process is out of descriptors.
    static SPARE: std::cell::Cell<i32> = const { std::cell::Cell::new(-1) };
}

/// Opens this thread's spare descriptor (call once per accepting thread).
pub fn open_spare() {
    SPARE.with(|s| {
        if s.get() < 0 {
            // SAFETY: open(2) of /dev/null with a NUL-terminated path.
            s.set(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) });
        }
    });
}

/// Out of descriptors: closes the spare, accepts one waiting connection
/// on `listener_fd` and closes it at once (the client sees the connection
/// closed, not a connect that hangs), then takes the spare back. `true` if
/// a connection was shed.
pub fn shed_one(listener_fd: i32) -> bool {
    let shed = SPARE.with(|s| {
        let spare = s.replace(-1);
        if spare >= 0 {
            // SAFETY: closing our own spare descriptor.
            unsafe { libc::close(spare) };
        }
        // SAFETY: a non-blocking accept on a listening socket we own; the
        // accepted descriptor (if any) is closed right away.
        let fd = unsafe {
            libc::accept4(
                listener_fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        let shed = fd >= 0;
        if shed {
            // SAFETY: `fd` was just accepted and is ours.
            unsafe { libc::close(fd) };
        }
        shed
    });
    open_spare();
    shed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_the_reserve() {
        assert_eq!(capacity_for(20_000), 20_000 - FD_RESERVE);
        assert_eq!(capacity_for(10), 0);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let l = raise_nofile().expect("getrlimit");
        assert!(l.soft >= l.before);
        assert_eq!(l.soft, l.hard);
    }
}
