//! A connection's outbound side: frames gathered into one [`WireBuf`],
//! written by one writer task with (normally) one write syscall per
//! executor turn.
//!
//! Producers (the realm pump, pong replies, pings, a proxy forwarding a
//! message) append frames to `pending` and notify the writer. The writer
//! swaps `pending` with its own empty buffer and writes it whole, so
//! everything produced in one executor turn leaves in one write.
//!
//! Frame headers and small payloads are copied into the buffer's flat
//! part. A payload of at least [`SHARE_MIN`] bytes is not copied: the
//! buffer keeps a reference to its shared bytes (`Bytes`: the fan-out's one
//! encoding, or the slice of the received frame a proxy forwards) at its
//! place between the flat bytes, and the writer hands the pieces to the
//! kernel in one vectored `sendmsg` (through TLS, each piece is encrypted
//! in order). Below that size a copy is cheaper than a reference count and
//! an extra iovec, and the flat buffer of one turn is one write.

use std::cell::{Cell, RefCell};
use std::io::IoSlice;
use std::os::fd::RawFd;

use bytes::Bytes;

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

/// Payloads of at least this many bytes are queued by reference, not
/// copied (see the module docs).
pub const SHARE_MIN: usize = 1024;

/// At most this many bytes of one write batch are queued by reference;
/// beyond, payloads are copied. Every shared payload is its own allocation
/// (the encoding of an EVENT, the slice of a received frame), freed when
/// written; with no bound, a busy connection's batch of several MiB freed at
/// once left more free memory at the top of the shard's arena than glibc's
/// trim threshold ([`super::node::TRIM_THRESHOLD`], 1 MiB), so glibc gave
/// it back and the next messages faulted it in again (measured, 64 KiB
/// events: 195,000 page faults and 630 `madvise` calls in 3 s, half the
/// throughput of copying). A quarter of the threshold keeps the two in
/// flight per connection (batch queued, batch being written) under it.
pub const SHARE_QUEUE_MAX: usize = super::node::TRIM_THRESHOLD / 4;

/// At most this many pieces go to one `sendmsg` (Linux's `IOV_MAX`).
pub const MAX_IOVECS: usize = 1024;

/// Bytes queued for a socket, in wire order: a flat buffer of copied bytes
/// with shared payloads spliced in between (see the module docs).
#[derive(Default)]
pub struct WireBuf {
    flat: Vec<u8>,
    /// Each shared payload and the offset in `flat` it goes before.
    shared: Vec<(usize, Bytes)>,
    shared_len: usize,
}

/// A position in a [`WireBuf`] to roll back to.
#[derive(Copy, Clone)]
struct Mark {
    flat: usize,
    shared: usize,
}

impl WireBuf {
    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.flat.len() + self.shared_len
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flat part, to append copied bytes (headers, control frames) to.
    pub fn flat_mut(&mut self) -> &mut Vec<u8> {
        &mut self.flat
    }

    /// The whole buffer if nothing in it is shared, else `None`.
    pub fn as_flat(&self) -> Option<&[u8]> {
        self.shared.is_empty().then_some(&self.flat[..])
    }

    /// How many payloads are queued by reference.
    pub fn shared_count(&self) -> usize {
        self.shared.len()
    }

    /// Appends a payload: by reference if it is at least [`SHARE_MIN`]
    /// bytes and the batch's shared bytes stay within [`SHARE_QUEUE_MAX`],
    /// else copied.
    pub fn put(&mut self, payload: &Bytes) {
        if payload.len() >= SHARE_MIN && self.shared_len + payload.len() <= SHARE_QUEUE_MAX {
            self.shared.push((self.flat.len(), payload.clone()));
            self.shared_len += payload.len();
        } else {
            self.flat.extend_from_slice(payload);
        }
    }

    /// Empties the buffer (keeping the flat part's allocation).
    pub fn clear(&mut self) {
        self.flat.clear();
        self.shared.clear();
        self.shared_len = 0;
    }

    fn mark(&self) -> Mark {
        Mark { flat: self.flat.len(), shared: self.shared.len() }
    }

    fn rollback(&mut self, m: Mark) {
        self.flat.truncate(m.flat);
        for (_, b) in self.shared.drain(m.shared..) {
            self.shared_len -= b.len();
        }
    }

    /// Calls `f` with each non-empty piece in wire order.
    pub fn for_each_piece<'a>(&'a self, mut f: impl FnMut(&'a [u8])) {
        let mut at = 0;
        for (off, b) in &self.shared {
            if *off > at {
                f(&self.flat[at..*off]);
                at = *off;
            }
            f(b);
        }
        if self.flat.len() > at {
            f(&self.flat[at..]);
        }
    }

    /// Fills `out` with the pieces from byte `from` on (at most
    /// [`MAX_IOVECS`]), for a vectored write that continues a partial one.
    pub fn slices_from<'a>(&'a self, from: usize, out: &mut Vec<IoSlice<'a>>) {
        out.clear();
        let mut skip = from;
        self.for_each_piece(|piece| {
            if out.len() >= MAX_IOVECS {
                return;
            }
            if skip >= piece.len() {
                skip -= piece.len();
            } else {
                out.push(IoSlice::new(&piece[skip..]));
                skip = 0;
            }
        });
    }

    /// The queued bytes as one vector (tests, diagnostics).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.for_each_piece(|p| v.extend_from_slice(p));
        v
    }

    /// Gives back the allocations of an empty buffer up to `keep` bytes.
    fn release_if_small(&mut self, keep: usize) {
        if self.is_empty() && self.flat.capacity() <= keep {
            self.flat = Vec::new();
        }
        if self.shared.is_empty() {
            self.shared = Vec::new();
        }
    }
}

/// See the module docs.
pub struct Outbound {
    pending: RefCell<WireBuf>,
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
    /// Lingering close ([`Outbound::set_linger`]).
    linger: Cell<Option<std::time::Duration>>,
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
            pending: RefCell::new(WireBuf::default()),
            pending_msgs: Cell::new(0),
            in_flight: Cell::new(0),
            state: Cell::new(OutState::Open),
            notify: LocalNotify::default(),
            limits,
            fd: Cell::new(Some(fd)),
            gauge: None,
            counted: Cell::new(0),
            linger: Cell::new(None),
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

    /// Appends one frame built by `build` (copied); refuses if the
    /// connection's queue limits would be exceeded or it is closing.
    pub fn push(&self, build: impl FnOnce(&mut Vec<u8>)) -> Result<(), Overflow> {
        self.push_with(|w| build(w.flat_mut()))
    }

    /// Appends one frame of `header` (built by the closure, copied) and
    /// `payload` (by reference when large, see [`WireBuf::put`]); limits as
    /// [`Outbound::push`].
    pub fn push_payload(&self, header: impl FnOnce(&mut Vec<u8>), payload: &Bytes) -> Result<(), Overflow> {
        self.push_with(|w| {
            header(w.flat_mut());
            w.put(payload);
        })
    }

    fn push_with(&self, build: impl FnOnce(&mut WireBuf)) -> Result<(), Overflow> {
        if self.state.get() != OutState::Open {
            return Ok(());
        }
        let msgs = self.pending_msgs.get() + 1;
        if msgs > self.limits.max_outbound_messages {
            return Err(Overflow::Messages);
        }
        let mut p = self.pending.borrow_mut();
        let mark = p.mark();
        let was_empty = p.is_empty();
        build(&mut p);
        if p.len() + self.in_flight.get() > self.limits.max_outbound_bytes {
            // Never leave a frame that did not fit: the queue stays whole frames.
            p.rollback(mark);
            return Err(Overflow::Bytes);
        }
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
        build(self.pending.borrow_mut().flat_mut());
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

    /// Lingering close: after a graceful close has been flushed, the writer
    /// sends FIN (`shutdown(SHUT_WR)`) and waits up to `d` for the reader to
    /// see the peer close ([`Outbound::abort`]) before it shuts the socket
    /// down; the reader meanwhile reads and drops what the peer still sends
    /// (`conn::drain_until_closed`). Closing a socket with unread input
    /// resets the connection, and a reset can make the peer discard the
    /// last message (GOODBYE, ABORT) before it has read it.
    pub fn set_linger(&self, d: std::time::Duration) {
        self.linger.set(Some(d));
    }

    /// See [`Outbound::set_linger`].
    pub fn linger(&self) -> Option<std::time::Duration> {
        self.linger.get()
    }

    /// Sends FIN after what has been written (the reading side stays open).
    pub fn shutdown_write(&self) {
        if let Some(fd) = self.fd.get() {
            // SAFETY: `fd` is still open (the writer clears it before closing it).
            unsafe {
                libc::shutdown(fd, libc::SHUT_WR);
            }
        }
    }

    /// Current state.
    pub fn state(&self) -> OutState {
        self.state.get()
    }

    /// For the writer: takes the pending bytes, leaving `spare` (cleared) in
    /// their place.
    pub fn take(&self, spare: &mut WireBuf) {
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
    pub fn release_idle(&self, spare: &mut WireBuf) {
        spare.clear();
        spare.release_if_small(KEEP_WHEN_IDLE);
        self.pending.borrow_mut().release_if_small(KEEP_WHEN_IDLE);
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
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        assert_eq!(spare.to_vec(), b"onetwo");
        assert!(o.is_idle());
    }

    #[test]
    fn an_idle_connection_gives_its_buffers_back() {
        let o = Outbound::new(-1, limits(1 << 20, 100));
        o.push(|b| b.extend_from_slice(&[7u8; 3000])).unwrap();
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        o.written();
        assert!(spare.flat.capacity() >= 3000);
        o.release_idle(&mut spare);
        assert_eq!(spare.flat.capacity(), 0);
        assert_eq!(o.pending.borrow().flat.capacity(), 0);
        // A heavy sender's large buffer is kept.
        o.push(|b| b.extend_from_slice(&vec![7u8; 2 * KEEP_WHEN_IDLE])).unwrap();
        o.take(&mut spare);
        o.written();
        o.release_idle(&mut spare);
        assert!(spare.flat.capacity() >= 2 * KEEP_WHEN_IDLE);
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
        let mut spare = WireBuf::default();
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
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        assert_eq!(spare.to_vec(), b"12345");
    }

    #[test]
    fn in_flight_bytes_count_against_the_limit() {
        let o = Outbound::new(-1, limits(10, 100));
        o.push(|b| b.extend_from_slice(b"12345678")).unwrap();
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        assert_eq!(o.push(|b| b.extend_from_slice(b"123")), Err(Overflow::Bytes));
        o.written();
        o.push(|b| b.extend_from_slice(b"123")).unwrap();
    }

    fn shared(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    #[test]
    fn large_payloads_are_queued_by_reference_small_ones_copied() {
        let o = Outbound::new(-1, limits(1 << 20, 100));
        let big = shared(SHARE_MIN, 9);
        let small = shared(SHARE_MIN - 1, 8);
        o.push_payload(|h| h.extend_from_slice(b"H1"), &big).unwrap();
        o.push_payload(|h| h.extend_from_slice(b"H2"), &small).unwrap();
        o.push_payload(|h| h.extend_from_slice(b"H3"), &big).unwrap();
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        assert_eq!(spare.shared_count(), 2, "the two large payloads are not copied");
        assert!(spare.as_flat().is_none());
        assert_eq!(spare.flat.len(), 6 + small.len());
        let mut want = b"H1".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"H2");
        want.extend_from_slice(&small);
        want.extend_from_slice(b"H3");
        want.extend_from_slice(&big);
        assert_eq!(spare.to_vec(), want);
        assert_eq!(spare.len(), want.len());
        // The same allocation, not a copy of it.
        let mut ptrs = Vec::new();
        spare.for_each_piece(|p| ptrs.push(p.as_ptr()));
        assert!(ptrs.contains(&big.as_ptr()));
    }

    #[test]
    fn vectored_pieces_continue_a_partial_write() {
        let mut w = WireBuf::default();
        let a = shared(SHARE_MIN, 1);
        let b = shared(SHARE_MIN + 5, 2);
        w.flat_mut().extend_from_slice(b"xy");
        w.put(&a);
        w.put(&b); // two shared payloads at the same offset
        w.flat_mut().extend_from_slice(b"z");
        let all = w.to_vec();
        let mut iov = Vec::new();
        for from in [0, 1, 2, 3, SHARE_MIN + 2, SHARE_MIN + 3, all.len() - 1, all.len()] {
            w.slices_from(from, &mut iov);
            let got: Vec<u8> = iov.iter().flat_map(|s| s.iter().copied()).collect();
            assert_eq!(got, all[from..], "from {from}");
            assert!(iov.iter().all(|s| !s.is_empty()));
        }
    }

    #[test]
    fn a_refused_shared_frame_is_rolled_back_whole() {
        let o = Outbound::new(-1, limits(SHARE_MIN + 5, 100));
        o.push(|b| b.extend_from_slice(b"12345")).unwrap();
        let big = shared(SHARE_MIN, 3);
        assert_eq!(o.push_payload(|h| h.extend_from_slice(b"HH"), &big), Err(Overflow::Bytes));
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        assert_eq!(spare.to_vec(), b"12345");
        assert_eq!(spare.shared_count(), 0);
    }

    #[test]
    fn an_idle_writer_holds_no_shared_payload() {
        let o = Outbound::new(-1, limits(1 << 20, 100));
        let big = shared(4 * SHARE_MIN, 3);
        o.push_payload(|_| {}, &big).unwrap();
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        o.written();
        o.release_idle(&mut spare);
        assert!(spare.is_empty());
        assert!(big.is_unique(), "the queue let go of the payload");
    }

    #[test]
    fn shared_bytes_of_a_batch_are_bounded() {
        let o = Outbound::new(-1, limits(16 << 20, 10_000));
        let big = shared(64 * 1024, 5);
        let n = 2 * SHARE_QUEUE_MAX / big.len();
        for _ in 0..n {
            o.push_payload(|_| {}, &big).unwrap();
        }
        let mut spare = WireBuf::default();
        o.take(&mut spare);
        assert_eq!(spare.shared_count(), SHARE_QUEUE_MAX / big.len(), "shared up to the bound");
        assert_eq!(spare.len(), n * big.len(), "the rest copied");
        assert_eq!(spare.to_vec(), vec![5u8; n * big.len()]);
    }
}
