//! Synchronous signal handling: the signals a node reacts to are blocked in
//! every thread and taken one at a time with `sigwait`.

/// The set of signals taken with [`wait`].
pub type SignalSet = libc::sigset_t;

/// Blocks SIGTERM/SIGINT/SIGHUP in this thread and every thread it spawns
/// afterwards, so they can be taken synchronously with [`wait`]. Call it
/// before any thread is started.
pub fn block() -> SignalSet {
    // SAFETY: plain POSIX signal-mask calls on a local sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the signals in `set` and returns its number.
pub fn wait(set: &SignalSet) -> i32 {
    let mut sig: libc::c_int = 0;
    loop {
        // SAFETY: `set` was initialized by `block`.
        let rc = unsafe { libc::sigwait(set, &mut sig) };
        if rc == 0 {
            return sig;
        }
    }
}

/// Sends `sig` to process `pid` (errors, e.g. a process that is already
/// gone, are ignored).
pub fn send(pid: u32, sig: i32) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}
