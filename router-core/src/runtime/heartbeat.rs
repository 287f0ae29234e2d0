//! Auto-ping of idle connections: one schedule per executor thread instead
//! of a task and a reactor timer per connection.
//!
//! A transport with `auto_ping_interval` pings each connection every
//! interval and closes it when no frame arrived within `auto_ping_timeout`
//! after a ping. With a task per connection, every idle connection kept a
//! task, its future and a pending glommio timer; the reactor's timer map
//! grew to the peak number of connections and kept that capacity (800 KiB
//! after 19,500 sessions). Here a connection is an entry in a
//! [`Schedule`] (ordered by due time), and one task per executor thread,
//! running only while there are entries, wakes every [`TICK`] and handles
//! what is due. Timing is therefore within [`TICK`] of the configured
//! values.
//!
//! [`Schedule`] is pure (no clock, no I/O) and tested on its own; the
//! driver lives in [`register`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::outbound::OutState;

/// How often the driver looks for due pings and timeouts.
pub const TICK: Duration = Duration::from_millis(100);

/// Entries ordered by due time (ties in insertion order).
#[derive(Debug)]
pub struct Schedule<T> {
    entries: BTreeMap<(Instant, u64), T>,
    seq: u64,
}

impl<T> Default for Schedule<T> {
    fn default() -> Self {
        Schedule { entries: BTreeMap::new(), seq: 0 }
    }
}

impl<T> Schedule<T> {
    /// Schedules `item` at `due`.
    pub fn insert(&mut self, due: Instant, item: T) {
        self.seq += 1;
        self.entries.insert((due, self.seq), item);
    }

    /// Removes and returns everything due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(entry) = self.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where a connection is in its ping cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Send a ping when due.
    Ping,
    /// Check that a frame arrived since the ping sent at this instant.
    Check(Instant),
}

struct Entry {
    conn: Weak<Conn>,
    interval: Duration,
    timeout: Duration,
    size: usize,
    phase: Phase,
}

#[derive(Default)]
struct Driver {
    schedule: Schedule<Entry>,
    running: bool,
}

thread_local! {
    static DRIVER: Rc<RefCell<Driver>> = Rc::default();
}

/// Up to 125 bytes of ping payload (a WebSocket control frame's limit).
static PAYLOAD: [u8; 125] = [0; 125];

/// Starts pinging `conn` (if its transport pings: `settings` is
/// `(interval, timeout, payload size)`), on this executor thread's
/// schedule. The entry ends by itself once the connection is closed.
pub fn register(conn: &Rc<Conn>, settings: Option<(Duration, Duration, usize)>) {
    let Some((interval, timeout, size)) = settings else { return };
    let entry =
        Entry { conn: Rc::downgrade(conn), interval, timeout, size: size.min(PAYLOAD.len()), phase: Phase::Ping };
    let driver = DRIVER.with(Rc::clone);
    let start = {
        let mut d = driver.borrow_mut();
        d.schedule.insert(Instant::now() + interval, entry);
        !std::mem::replace(&mut d.running, true)
    };
    if start {
        glommio::spawn_local(drive(driver)).detach();
    }
}

async fn drive(driver: Rc<RefCell<Driver>>) {
    loop {
        glommio::timer::sleep(TICK).await;
        let now = Instant::now();
        let due = driver.borrow_mut().schedule.pop_due(now);
        let mut again = Vec::with_capacity(due.len());
        for mut e in due {
            let Some(conn) = e.conn.upgrade() else { continue };
            if conn.out.state() != OutState::Open {
                continue;
            }
            match e.phase {
                Phase::Ping => {
                    let sender = conn.sender;
                    let payload = &PAYLOAD[..e.size];
                    conn.out.push_control(|b| sender.ping(payload, b));
                    e.phase = Phase::Check(now);
                    again.push((now + e.timeout, e));
                }
                Phase::Check(sent) => {
                    if conn.last_seen.get() < sent {
                        tracing::info!(session = %conn.session, "auto-ping timeout; closing");
                        conn.out.abort();
                    } else {
                        e.phase = Phase::Ping;
                        again.push((now + e.interval, e));
                    }
                }
            }
        }
        let mut d = driver.borrow_mut();
        for (at, e) in again {
            d.schedule.insert(at, e);
        }
        if d.schedule.is_empty() {
            // Started again by the next registration.
            d.running = false;
            // Give back what a storm grew.
            d.schedule = Schedule { entries: BTreeMap::new(), seq: d.schedule.seq };
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_out_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = Schedule::default();
        s.insert(ms(300), "c");
        s.insert(ms(100), "a");
        s.insert(ms(100), "b");
        s.insert(ms(500), "d");
        assert!(s.pop_due(ms(99)).is_empty());
        assert_eq!(s.pop_due(ms(100)), ["a", "b"], "ties in insertion order");
        assert_eq!(s.len(), 2);
        assert_eq!(s.pop_due(ms(10_000)), ["c", "d"]);
        assert!(s.is_empty());
    }
}
