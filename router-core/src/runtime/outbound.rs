//! A connection's outbound side: frames gathered into one buffer, written by
//! one writer task with (normally) one write syscall per executor turn.
//!
//! Producers (the realm pump, pong replies, pings) append framed bytes to
//! `pending` and notify the writer. The writer swaps `pending` with its own
//! empty buffer and writes it whole, so everything produced in one executor
//! turn leaves in one write. The payload bytes of a fan-out are shared
//! (`Bytes`) up to this point; here they are copied once into the
//! connection's buffer, which the kernel then copies into the socket.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;

use super::notify::LocalNotify;
use super::setup::ConnectionLimits;

/// Why a connection's outbound side refused more data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Overflow {
    Bytes,
    Messages,
}

/// Lifecycle of the outbound side.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OutState {
    Open,
    /// Write what is pending, then shut the socket down.
    Closing,
    /// Done; nothing more is written.
    Closed,
}

/// The queue gauge is brought up to date by the writer (each write) and,
/// on the producing side, only once a connection's queue grew by this much
/// since: one shared atomic per write, not per message.
const GAUGE_STEP: usize = 64 * 1024;

/// Buffers up to this size are released when a connection goes idle
/// ([`Outbound::release_idle`]).
pub const KEEP_WHEN_IDLE: usize = 64 * 1024;

/// See the module docs.
pub struct Outbound {
    pending: RefCell<Vec<u8>>,
    pending_msgs: Cell<usize>,
    /// Bytes handed to the kernel but not yet confirmed written.
    in_flight: Cell<usize>,
    state: Cell<OutState>,
    pub notify: LocalNotify,
    limits: ConnectionLimits,
    /// The writer's fd, for `shutdown(2)` on forced close; `None` once the
    /// writer has closed it (the number may then belong to another socket).
    fd: Cell<Option<RawFd>>,
    /// The node-wide gauge of bytes queued for sockets (pending and being
    /// written), and what this connection adds to it now.
    gauge: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    counted: Cell<usize>,
}

impl Drop for Outbound {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.fetch_sub(self.counted.get() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Outbound {
    /// A new outbound side; `fd` is the writer task's fd of the socket.
    pub fn new(fd: RawFd, limits: ConnectionLimits) -> Self {
        Outbound {
            // Allocated when there is something to send, not up front.
            pending: RefCell::new(Vec::new()),
            pending_msgs: Cell::new(0),
            in_flight: Cell::new(0),
            state: Cell::new(OutState::Open),
            notify: LocalNotify::default(),
            limits,
            fd: Cell::new(Some(fd)),
            gauge: None,
            counted: Cell::new(0),
        }
    }

    /// Counts this connection's queued bytes in `gauge` (a node-wide sum,
    /// `junction_outbound_queued_bytes`).
    pub fn with_gauge(mut self, gauge: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.gauge = Some(gauge);
        self
    }

    /// Brings the gauge in line with what is queued now.
    fn sync_gauge(&self) {
        let Some(g) = &self.gauge else { return };
        let now = self.pending.borrow().len() + self.in_flight.get();
        let before = self.counted.replace(now);
        use std::sync::atomic::Ordering::Relaxed;
        if now > before {
            g.fetch_add((now - before) as u64, Relaxed);
        } else if before > now {
            g.fetch_sub((before - now) as u64, Relaxed);
        }
    }

    /// Appends one frame built by `build`; refuses if the connection's queue
    /// limits would be exceeded or it is closing.
    pub fn push(&self, build: impl FnOnce(&mut Vec<u8>)) -> Result<(), Overflow> {
        if self.state.get() != OutState::Open {
            return Ok(());
        }
        let msgs = self.pending_msgs.get() + 1;
        if msgs > self.limits.max_outbound_messages {
            return Err(Overflow::Messages);
        }
        let mut p = self.pending.borrow_mut();
        let before = p.len();
        build(&mut p);
        if p.len() + self.in_flight.get() > self.limits.max_outbound_bytes {
            // Never leave a frame that did not fit: the queue stays whole frames.
            p.truncate(before);
            return Err(Overflow::Bytes);
        }
        let was_empty = before == 0;
        self.pending_msgs.set(msgs);
        let grown = p.len() + self.in_flight.get() >= self.counted.get() + GAUGE_STEP;
        drop(p);
        if grown {
            self.sync_gauge();
        }
        if was_empty {
            self.notify.notify();
        }
        Ok(())
    }

    /// Appends a control frame (pong, ping, close) regardless of limits.
    pub fn push_control(&self, build: impl FnOnce(&mut Vec<u8>)) {
        if self.state.get() == OutState::Closed {
            return;
        }
        build(&mut self.pending.borrow_mut());
        self.notify.notify();
    }

    /// Discards everything pending (whole frames only: the writer holds any
    /// frame it is writing), so that a final message can be queued.
    pub fn discard_pending(&self) {
        self.pending.borrow_mut().clear();
        self.pending_msgs.set(0);
        self.sync_gauge();
    }

    /// Flush what is pending, then close.
    pub fn close_after_flush(&self) {
        if self.state.get() == OutState::Open {
            self.state.set(OutState::Closing);
        }
        self.notify.notify();
    }

    /// Close now, dropping anything pending; wakes a blocked read or write.
    pub fn abort(&self) {
        self.state.set(OutState::Closed);
        self.pending.borrow_mut().clear();
        self.sync_gauge();
        self.shutdown();
        self.notify.notify();
    }

    /// Current state.
    pub fn state(&self) -> OutState {
        self.state.get()
    }

    /// For the writer: takes the pending bytes, leaving `spare` (cleared) in
    /// their place.
    pub fn take(&self, spare: &mut Vec<u8>) {
        spare.clear();
        std::mem::swap(&mut *self.pending.borrow_mut(), spare);
        self.pending_msgs.set(0);
        self.in_flight.set(spare.len());
        self.sync_gauge();
    }

    /// For the writer: the taken bytes were written.
    pub fn written(&self) {
        self.in_flight.set(0);
        self.sync_gauge();
    }

    /// True if nothing is pending.
    pub fn is_idle(&self) -> bool {
        self.pending.borrow().is_empty()
    }

    /// For the writer, going idle: gives back the buffers of a connection
    /// that has nothing to send (the empty pending buffer and the writer's
    /// `spare`) unless they are larger than [`KEEP_WHEN_IDLE`], which only
    /// a heavy sender reaches and would otherwise re-allocate every turn.
    /// An idle connection so holds no buffer.
    pub fn release_idle(&self, spare: &mut Vec<u8>) {
        if spare.capacity() <= KEEP_WHEN_IDLE {
            *spare = Vec::new();
        }
        let mut p = self.pending.borrow_mut();
        if p.is_empty() && p.capacity() <= KEEP_WHEN_IDLE {
            *p = Vec::new();
        }
    }

    /// For the writer, before it closes its fd: marks the outbound side
    /// finished, shuts the socket down (ending the reader's wait) and forgets
    /// the fd.
    pub fn finish(&self) {
        self.in_flight.set(0);
        self.pending.borrow_mut().clear();
        self.sync_gauge();
        self.state.set(OutState::Closed);
        self.shutdown();
        self.fd.set(None);
    }

    fn shutdown(&self) {
        if let Some(fd) = self.fd.get() {
            // SAFETY: `fd` is still open (the writer clears it before closing it).
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: usize, msgs: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1,
            max_outbound_bytes: bytes,
            max_outbound_messages: msgs,
            ..Default::default()
        }
    }

    #[test]
    fn frames_of_one_turn_are_gathered() {
        let o = Outbound::new(-1, limits(1 << 20, 100));
        o.push(|b| b.extend_from_slice(b"one")).unwrap();
        o.push(|b| b.extend_from_slice(b"two")).unwrap();
        let mut spare = Vec::new();
        o.take(&mut spare);
        assert_eq!(spare, b"onetwo");
        assert!(o.is_idle());
    }

    #[test]
    fn an_idle_connection_gives_its_buffers_back() {
        let o = Outbound::new(-1, limits(1 << 20, 100));
        o.push(|b| b.extend_from_slice(&[7u8; 3000])).unwrap();
        let mut spare = Vec::new();
        o.take(&mut spare);
        o.written();
        assert!(spare.capacity() >= 3000);
        o.release_idle(&mut spare);
        assert_eq!(spare.capacity(), 0);
        assert_eq!(o.pending.borrow().capacity(), 0);
        // A heavy sender's large buffer is kept.
        o.push(|b| b.extend_from_slice(&vec![7u8; 2 * KEEP_WHEN_IDLE])).unwrap();
        o.take(&mut spare);
        o.written();
        o.release_idle(&mut spare);
        assert!(spare.capacity() >= 2 * KEEP_WHEN_IDLE);
    }

    #[test]
    fn the_queue_gauge_follows_pending_and_in_flight_bytes() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let g = std::sync::Arc::new(AtomicU64::new(0));
        let a = Outbound::new(-1, limits(1 << 20, 100)).with_gauge(g.clone());
        let b = Outbound::new(-1, limits(1 << 20, 100)).with_gauge(g.clone());
        a.push(|x| x.extend_from_slice(b"12345")).unwrap();
        b.push_control(|x| x.extend_from_slice(b"abc"));
        // Small pushes are counted by the writer's next take.
        assert_eq!(g.load(Ordering::Relaxed), 0);
        let mut spare = Vec::new();
        a.take(&mut spare);
        assert_eq!(g.load(Ordering::Relaxed), 5, "in flight counts");
        // A queue that grows by a step is counted at once (a stuck writer).
        b.push(|x| x.extend_from_slice(&vec![1u8; GAUGE_STEP])).unwrap();
        assert_eq!(g.load(Ordering::Relaxed), 5 + 3 + GAUGE_STEP as u64);
        a.written();
        assert_eq!(g.load(Ordering::Relaxed), 3 + GAUGE_STEP as u64);
        b.abort();
        assert_eq!(g.load(Ordering::Relaxed), 0);
        a.push(|x| x.extend_from_slice(&vec![2u8; GAUGE_STEP])).unwrap();
        assert_eq!(g.load(Ordering::Relaxed), GAUGE_STEP as u64);
        drop(a);
        assert_eq!(g.load(Ordering::Relaxed), 0, "a dropped connection leaves the gauge");
    }

    #[test]
    fn limits_are_enforced() {
        let o = Outbound::new(-1, limits(10, 2));
        o.push(|b| b.extend_from_slice(b"12345")).unwrap();
        assert_eq!(o.push(|b| b.extend_from_slice(b"123456")), Err(Overflow::Bytes));
        let o = Outbound::new(-1, limits(100, 2));
        o.push(|b| b.push(1)).unwrap();
        o.push(|b| b.push(2)).unwrap();
        assert_eq!(o.push(|b| b.push(3)), Err(Overflow::Messages));
    }

    #[test]
    fn a_refused_frame_leaves_no_bytes_behind() {
        let o = Outbound::new(-1, limits(10, 100));
        o.push(|b| b.extend_from_slice(b"12345")).unwrap();
        assert_eq!(o.push(|b| b.extend_from_slice(b"123456")), Err(Overflow::Bytes));
        let mut spare = Vec::new();
        o.take(&mut spare);
        assert_eq!(spare, b"12345");
    }

    #[test]
    fn in_flight_bytes_count_against_the_limit() {
        let o = Outbound::new(-1, limits(10, 100));
        o.push(|b| b.extend_from_slice(b"12345678")).unwrap();
        let mut spare = Vec::new();
        o.take(&mut spare);
        assert_eq!(o.push(|b| b.extend_from_slice(b"123")), Err(Overflow::Bytes));
        o.written();
        o.push(|b| b.extend_from_slice(b"123")).unwrap();
    }
}
