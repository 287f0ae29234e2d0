//! Messages per WAMP message type, in and out, and bytes out, of one realm
//! (for the `metrics` web service).
//!
//! The realm is the only writer (it lives on one shard), so a count is
//! bumped with a relaxed load and store of its own slot: an ordinary
//! increment, no locked instruction, no allocation. Any thread may read the
//! counts (relaxed loads) while the realm runs; the runtime hands the
//! realm's [`MessageCounts`] to its metrics exposition.
//!
//! Counted: every message the realm receives from one of its sessions
//! (including those it then ignores or refuses as a protocol violation),
//! and every message it queues for a session of this worker, each EVENT of
//! a fan-out once per receiving session (the fan-out tallies them per
//! serializer in registers and adds them in one step at its end; the shared
//! bytes are not copied). Received messages are counted in the realm's
//! dispatch `match`, with a constant type per arm.
//! Not counted: the opening handshake before the session belongs to the
//! realm (HELLO, CHALLENGE, AUTHENTICATE and their ABORTs: the runtime
//! handles those), and messages for sessions of other cluster workers
//! (their worker counts them when it delivers them).

use std::sync::atomic::{AtomicU64, Ordering};

use wamp_proto::code;

/// The message types with a slot, in slot order; [`UNKNOWN`] is the slot
/// after them.
pub const MESSAGE_TYPES: [u64; 25] = [
    code::HELLO,
    code::WELCOME,
    code::ABORT,
    code::CHALLENGE,
    code::AUTHENTICATE,
    code::GOODBYE,
    code::ERROR,
    code::PUBLISH,
    code::PUBLISHED,
    code::SUBSCRIBE,
    code::SUBSCRIBED,
    code::UNSUBSCRIBE,
    code::UNSUBSCRIBED,
    code::EVENT,
    code::EVENT_RECEIVED,
    code::CALL,
    code::CANCEL,
    code::RESULT,
    code::REGISTER,
    code::REGISTERED,
    code::UNREGISTER,
    code::UNREGISTERED,
    code::INVOCATION,
    code::INTERRUPT,
    code::YIELD,
];

/// The slot of a code that is not a WAMP message type (never happens for
/// decoded messages; kept so that a slot always exists).
pub const UNKNOWN: usize = MESSAGE_TYPES.len();

const SLOTS: usize = MESSAGE_TYPES.len() + 1;

/// Message types a client sends to an established session's router.
pub const CLIENT_TYPES: [u64; 11] = [
    code::ABORT,
    code::GOODBYE,
    code::ERROR,
    code::PUBLISH,
    code::SUBSCRIBE,
    code::UNSUBSCRIBE,
    code::CALL,
    code::CANCEL,
    code::REGISTER,
    code::UNREGISTER,
    code::YIELD,
];

/// Message types a realm sends to its sessions.
pub const ROUTER_TYPES: [u64; 13] = [
    code::WELCOME,
    code::ABORT,
    code::GOODBYE,
    code::ERROR,
    code::PUBLISHED,
    code::SUBSCRIBED,
    code::UNSUBSCRIBED,
    code::EVENT,
    code::RESULT,
    code::REGISTERED,
    code::UNREGISTERED,
    code::INVOCATION,
    code::INTERRUPT,
];

/// Slots of the codes below 71 (every type but EVENT_RECEIVED), built
/// from [`slot_of`] at compile time.
const SMALL: [u8; 71] = {
    let mut t = [UNKNOWN as u8; 71];
    let mut c = 0;
    while c < 71 {
        t[c] = slot_of(c as u64) as u8;
        c += 1;
    }
    t
};

/// The slot of message type `code`.
#[inline]
pub fn slot(c: u64) -> usize {
    if c < 71 {
        SMALL[c as usize] as usize
    } else if c == code::EVENT_RECEIVED {
        slot_of(code::EVENT_RECEIVED)
    } else {
        UNKNOWN
    }
}

const fn slot_of(c: u64) -> usize {
    match c {
        code::HELLO => 0,
        code::WELCOME => 1,
        code::ABORT => 2,
        code::CHALLENGE => 3,
        code::AUTHENTICATE => 4,
        code::GOODBYE => 5,
        code::ERROR => 6,
        code::PUBLISH => 7,
        code::PUBLISHED => 8,
        code::SUBSCRIBE => 9,
        code::SUBSCRIBED => 10,
        code::UNSUBSCRIBE => 11,
        code::UNSUBSCRIBED => 12,
        code::EVENT => 13,
        code::EVENT_RECEIVED => 14,
        code::CALL => 15,
        code::CANCEL => 16,
        code::RESULT => 17,
        code::REGISTER => 18,
        code::REGISTERED => 19,
        code::UNREGISTER => 20,
        code::UNREGISTERED => 21,
        code::INVOCATION => 22,
        code::INTERRUPT => 23,
        code::YIELD => 24,
        _ => UNKNOWN,
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct MessageCounts {
    received: [AtomicU64; SLOTS],
    sent: [AtomicU64; SLOTS],
    bytes_sent: AtomicU64,
}

impl Default for MessageCounts {
    fn default() -> Self {
        MessageCounts {
            received: std::array::from_fn(|_| AtomicU64::new(0)),
            sent: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes_sent: AtomicU64::new(0),
        }
    }
}

/// Single-writer increment (see the module docs).
#[inline]
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
}

impl MessageCounts {
    /// A message of type `code` received from a session.
    #[inline]
    pub(crate) fn received(&self, code: u64) {
        bump(&self.received[slot(code)], 1);
    }

    /// A message of type `code`, `len` bytes encoded, queued for a session.
    #[inline]
    pub(crate) fn sent(&self, code: u64, len: usize) {
        bump(&self.sent[slot(code)], 1);
        bump(&self.bytes_sent, len as u64);
    }

    /// `n` messages of type `code`, `len` bytes in all, queued for sessions.
    #[inline]
    pub(crate) fn sent_many(&self, code: u64, n: u64, len: u64) {
        if n > 0 {
            bump(&self.sent[slot(code)], n);
            bump(&self.bytes_sent, len);
        }
    }

    /// Messages of type `code` received so far.
    pub fn received_of(&self, code: u64) -> u64 {
        self.received[slot(code)].load(Ordering::Relaxed)
    }

    /// Messages of type `code` queued for sessions so far.
    pub fn sent_of(&self, code: u64) -> u64 {
        self.sent[slot(code)].load(Ordering::Relaxed)
    }

    /// Bytes of the messages queued for sessions (encoded WAMP messages,
    /// without transport framing).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// `(type name, received)` for the types a client sends, then any other
    /// type received at least once.
    pub fn received_by_type(&self) -> Vec<(&'static str, u64)> {
        by_type(&self.received, &CLIENT_TYPES)
    }

    /// `(type name, sent)` for the types a router sends, then any other
    /// type sent at least once.
    pub fn sent_by_type(&self) -> Vec<(&'static str, u64)> {
        by_type(&self.sent, &ROUTER_TYPES)
    }
}

fn by_type(counts: &[AtomicU64; SLOTS], always: &[u64]) -> Vec<(&'static str, u64)> {
    let mut out = Vec::with_capacity(always.len());
    for (i, c) in counts.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        let code = MESSAGE_TYPES.get(i).copied();
        if n > 0 || code.is_some_and(|c| always.contains(&c)) {
            out.push((code.map(wamp_proto::message::code_name).unwrap_or("UNKNOWN"), n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_own_slot() {
        for (i, &c) in MESSAGE_TYPES.iter().enumerate() {
            assert_eq!(slot(c), i, "{}", wamp_proto::message::code_name(c));
        }
        assert_eq!(slot(7), UNKNOWN);
        assert_eq!(slot(71), UNKNOWN);
        assert_eq!(slot(u64::MAX), UNKNOWN);
        assert_eq!(slot(u64::MAX - 255 + 16), UNKNOWN, "no truncation to a small code");
    }

    #[test]
    fn by_type_lists_the_usual_types_and_anything_seen() {
        let m = MessageCounts::default();
        m.received(code::CALL);
        m.received(code::CALL);
        m.received(code::HELLO);
        m.sent(code::EVENT, 10);
        m.sent(code::EVENT, 10);
        let r = m.received_by_type();
        assert_eq!(r.len(), CLIENT_TYPES.len() + 1);
        assert!(r.contains(&("CALL", 2)) && r.contains(&("HELLO", 1)) && r.contains(&("PUBLISH", 0)), "{r:?}");
        let s = m.sent_by_type();
        assert_eq!(s.len(), ROUTER_TYPES.len());
        assert!(s.contains(&("EVENT", 2)) && s.contains(&("RESULT", 0)), "{s:?}");
        assert_eq!(m.bytes_sent(), 20);
        assert_eq!(m.sent_of(code::EVENT), 2);
        assert_eq!(m.received_of(code::CALL), 2);
    }
}
