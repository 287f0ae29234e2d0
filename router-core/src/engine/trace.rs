//! Message tracing: the records behind the management API's
//! `remote.tracing.*` (Crossbar's router traces).
//!
//! Off by default. A worker has one [`Tracer`], shared by its realms; while
//! no trace runs, the realm's hooks cost one relaxed load and one branch
//! each (receiving a message, queueing one, each EVENT of a fan-out on a
//! register-held flag). While a trace runs, each message received from or
//! queued for a session of this worker becomes a [`TraceRecord`]
//! (direction, realm, session, authid, authrole, message type, URI; never
//! the payload) appended to every running trace's bounded ring (the oldest
//! record goes first).
//!
//! [`TraceState`] is the state machine (traces started, stopped, expired
//! by their duration, their records), free of I/O: the clock comes in as
//! arguments, so it is tested in memory. [`Tracer`] wraps it in a mutex and
//! keeps the "is any trace running" flag the hooks read.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most traces a worker keeps (running and stopped); starting one more
/// drops the oldest stopped trace.
pub const MAX_TRACES: usize = 8;
/// Default ring size of a trace (records).
pub const DEFAULT_MAX_RECORDS: usize = 10_000;
/// Largest ring a trace may ask for.
pub const MAX_MAX_RECORDS: usize = 1_000_000;
/// Most records one `get_trace_data` returns (Crossbar's limit).
pub const MAX_DATA_LIMIT: usize = 10_000;

/// Which way a traced message went, seen from the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received from the session.
    Rx,
    /// Queued for the session.
    Tx,
}

impl Direction {
    /// `rx` / `tx` (Crossbar's).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        }
    }
}

/// One message as a hook reports it.
#[derive(Clone, Copy, Debug)]
pub struct Traced<'a> {
    pub direction: Direction,
    pub realm: &'a str,
    pub session: u64,
    pub authid: &'a str,
    pub authrole: &'a str,
    /// The WAMP message type code.
    pub code: u64,
    /// The URI the message carries (topic, procedure, error or reason).
    pub uri: Option<&'a str>,
}

/// One traced message.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRecord {
    /// Position in its trace, from 0, without gaps.
    pub seq: u64,
    /// Wall-clock time, ns since the epoch.
    pub ts: u64,
    /// ns since the trace started (Crossbar's performance counter).
    pub pc: u64,
    pub direction: Direction,
    pub realm: Arc<str>,
    pub session: u64,
    pub authid: Arc<str>,
    pub authrole: Arc<str>,
    /// Crossbar's message class name (`Publish`, `Event`, ...).
    pub msg_type: &'static str,
    pub uri: Option<Arc<str>>,
}

/// What a trace was started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceOptions {
    /// Ring size (records).
    pub max_records: usize,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Crossbar's `batching_period` (ms), kept and shown.
    pub batching_period: u64,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions { max_records: DEFAULT_MAX_RECORDS, duration: None, batching_period: 200 }
    }
}

/// Why a trace call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error("no trace with ID '{0}'")]
    NoSuchTrace(String),
    #[error("a trace with ID '{0}' is running already")]
    AlreadyRunning(String),
    #[error("trace '{0}' is not running")]
    NotRunning(String),
    #[error("{MAX_TRACES} traces are running already: stop one first")]
    TooMany,
    #[error("invalid trace ID {0:?}: 1 to 64 of letters, digits, '_', '-' and '.'")]
    BadId(String),
}

/// Running or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceStatus {
    Running,
    Stopped,
}

impl TraceStatus {
    /// `running` / `stopped` (Crossbar's).
    pub fn as_str(self) -> &'static str {
        match self {
            TraceStatus::Running => "running",
            TraceStatus::Stopped => "stopped",
        }
    }
}

/// One trace.
#[derive(Clone, Debug)]
pub struct Trace {
    pub id: String,
    pub status: TraceStatus,
    pub options: TraceOptions,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
    records: VecDeque<TraceRecord>,
    next_seq: u64,
}

impl Trace {
    /// The sequence number the next record gets (= records ever taken).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records kept now.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No record kept.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How long it ran (until now if it still runs).
    pub fn runtime(&self, now: SystemTime) -> Duration {
        self.ended.unwrap_or(now).duration_since(self.started).unwrap_or_default()
    }

    fn deadline(&self) -> Option<SystemTime> {
        self.options.duration.map(|d| self.started + d)
    }

    /// Records with `from <= seq <= to`, at most `limit`, ascending.
    pub fn data(&self, from: u64, to: u64, limit: usize) -> Vec<TraceRecord> {
        let Some(first) = self.records.front().map(|r| r.seq) else { return Vec::new() };
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        self.records.iter().skip(skip).take_while(|r| r.seq <= to).take(limit).cloned().collect()
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct TraceState {
    /// In start order.
    traces: Vec<Trace>,
    next_auto: u64,
}

fn check_id(id: &str) -> Result<(), TraceError> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        Ok(())
    } else {
        Err(TraceError::BadId(id.to_owned()))
    }
}

fn ns_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl TraceState {
    /// Whether a trace is running.
    pub fn running(&self) -> bool {
        self.traces.iter().any(|t| t.status == TraceStatus::Running)
    }

    /// Trace ids in start order (running ones, or all).
    pub fn ids(&self, include_stopped: bool) -> Vec<String> {
        self.traces
            .iter()
            .filter(|t| include_stopped || t.status == TraceStatus::Running)
            .map(|t| t.id.clone())
            .collect()
    }

    /// Trace `id`.
    pub fn get(&self, id: &str) -> Result<&Trace, TraceError> {
        self.traces.iter().find(|t| t.id == id).ok_or_else(|| TraceError::NoSuchTrace(id.to_owned()))
    }

    /// Starts a trace (`id` `None`: `trace<N>`, Crossbar's naming). A
    /// stopped trace of the same id is replaced.
    pub fn start(&mut self, id: Option<&str>, options: TraceOptions, now: SystemTime) -> Result<&Trace, TraceError> {
        let id = match id {
            Some(i) => {
                check_id(i)?;
                i.to_owned()
            }
            None => loop {
                self.next_auto += 1;
                let i = format!("trace{}", self.next_auto);
                if !self.traces.iter().any(|t| t.id == i) {
                    break i;
                }
            },
        };
        match self.traces.iter().position(|t| t.id == id) {
            Some(i) if self.traces[i].status == TraceStatus::Running => return Err(TraceError::AlreadyRunning(id)),
            Some(i) => {
                self.traces.remove(i);
            }
            None => {}
        }
        if self.traces.len() >= MAX_TRACES {
            let oldest_stopped =
                self.traces.iter().position(|t| t.status == TraceStatus::Stopped).ok_or(TraceError::TooMany)?;
            self.traces.remove(oldest_stopped);
        }
        let cap = options.max_records.min(1024);
        self.traces.push(Trace {
            id,
            status: TraceStatus::Running,
            options,
            started: now,
            ended: None,
            records: VecDeque::with_capacity(cap),
            next_seq: 0,
        });
        Ok(&self.traces[self.traces.len() - 1])
    }

    /// Stops trace `id`; its records stay readable.
    pub fn stop(&mut self, id: &str, now: SystemTime) -> Result<&Trace, TraceError> {
        let t = self.traces.iter_mut().find(|t| t.id == id).ok_or_else(|| TraceError::NoSuchTrace(id.to_owned()))?;
        if t.status != TraceStatus::Running {
            return Err(TraceError::NotRunning(id.to_owned()));
        }
        t.status = TraceStatus::Stopped;
        t.ended = Some(now);
        Ok(t)
    }

    /// Stops the traces whose duration is over; their ids.
    pub fn expire(&mut self, now: SystemTime) -> Vec<String> {
        let mut out = Vec::new();
        for t in &mut self.traces {
            if let (TraceStatus::Running, Some(end)) = (t.status, t.deadline()) {
                if now >= end {
                    t.status = TraceStatus::Stopped;
                    t.ended = Some(end);
                    out.push(t.id.clone());
                }
            }
        }
        out
    }

    /// Appends `m` to every running trace.
    pub fn record(&mut self, now: SystemTime, m: &Traced<'_>) {
        // realm, authid, authrole, URI: allocated once, shared by the traces.
        type Names = (Arc<str>, Arc<str>, Arc<str>, Option<Arc<str>>);
        let mut shared: Option<Names> = None;
        for t in &mut self.traces {
            if t.status != TraceStatus::Running {
                continue;
            }
            if t.deadline().is_some_and(|end| now >= end) {
                t.status = TraceStatus::Stopped;
                t.ended = t.deadline();
                continue;
            }
            let (realm, authid, authrole, uri) = shared
                .get_or_insert_with(|| (m.realm.into(), m.authid.into(), m.authrole.into(), m.uri.map(Into::into)))
                .clone();
            if t.records.len() >= t.options.max_records {
                t.records.pop_front();
            }
            t.records.push_back(TraceRecord {
                seq: t.next_seq,
                ts: ns_since_epoch(now),
                pc: u64::try_from(now.duration_since(t.started).unwrap_or_default().as_nanos()).unwrap_or(u64::MAX),
                direction: m.direction,
                realm,
                session: m.session,
                authid,
                authrole,
                msg_type: msg_type(m.code),
                uri,
            });
            t.next_seq += 1;
        }
    }

    /// `get_trace_data`: records `from..=to` of trace `id`, at most
    /// `limit` (`to` defaults to the last record, `from` to `limit` records
    /// before `to`).
    pub fn data(
        &self,
        id: &str,
        from: Option<u64>,
        to: Option<u64>,
        limit: usize,
    ) -> Result<Vec<TraceRecord>, TraceError> {
        let t = self.get(id)?;
        let last = t.next_seq.saturating_sub(1);
        let to = to.unwrap_or(last);
        let from = from.unwrap_or_else(|| to.saturating_sub((limit as u64).saturating_sub(1)));
        if t.next_seq == 0 || from > to || limit == 0 {
            return Ok(Vec::new());
        }
        Ok(t.data(from, to, limit))
    }
}

/// Crossbar's (Autobahn's) message class name of type `code`.
pub fn msg_type(code: u64) -> &'static str {
    use wamp_proto::code::*;
    match code {
        HELLO => "Hello",
        WELCOME => "Welcome",
        ABORT => "Abort",
        CHALLENGE => "Challenge",
        AUTHENTICATE => "Authenticate",
        GOODBYE => "Goodbye",
        ERROR => "Error",
        PUBLISH => "Publish",
        PUBLISHED => "Published",
        SUBSCRIBE => "Subscribe",
        SUBSCRIBED => "Subscribed",
        UNSUBSCRIBE => "Unsubscribe",
        UNSUBSCRIBED => "Unsubscribed",
        EVENT => "Event",
        EVENT_RECEIVED => "EventReceived",
        CALL => "Call",
        CANCEL => "Cancel",
        RESULT => "Result",
        REGISTER => "Register",
        REGISTERED => "Registered",
        UNREGISTER => "Unregister",
        UNREGISTERED => "Unregistered",
        INVOCATION => "Invocation",
        INTERRUPT => "Interrupt",
        YIELD => "Yield",
        _ => "Unknown",
    }
}

/// The URI a message carries, if any.
pub fn uri_of(msg: &wamp_proto::Message) -> Option<&str> {
    use wamp_proto::Message as M;
    match msg {
        M::Publish { topic, .. } | M::Subscribe { topic, .. } => Some(topic),
        M::Call { procedure, .. } | M::Register { procedure, .. } => Some(procedure),
        M::Error { error, .. } => Some(error),
        M::Goodbye { reason, .. } | M::Abort { reason, .. } => Some(reason),
        M::Hello { realm, .. } => Some(realm),
        _ => None,
    }
}

/// A worker's traces, shared by its realms (see the module docs).
#[derive(Debug, Default)]
pub struct Tracer {
    active: AtomicBool,
    state: Mutex<TraceState>,
}

impl Tracer {
    /// Whether any trace runs: the hooks' one check.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Records messages (with the wall clock now).
    pub fn record<'a>(&self, msgs: impl IntoIterator<Item = Traced<'a>>) {
        let now = SystemTime::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for m in msgs {
            st.record(now, &m);
        }
        self.active.store(st.running(), Ordering::Relaxed);
    }

    /// Runs `f` on the state (the management API), then brings the flag
    /// up to date.
    pub fn with<R>(&self, f: impl FnOnce(&mut TraceState) -> R) -> R {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut st);
        self.active.store(st.running(), Ordering::Relaxed);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_proto::code;

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000)
    }

    fn msg(direction: Direction, code: u64, uri: Option<&'static str>) -> Traced<'static> {
        Traced { direction, realm: "realm1", session: 7, authid: "joe", authrole: "user", code, uri }
    }

    #[test]
    fn traces_start_record_into_a_bounded_ring_and_stop() {
        let mut st = TraceState::default();
        assert!(!st.running());
        st.record(t0(), &msg(Direction::Rx, code::CALL, Some("com.x")));
        let opts = TraceOptions { max_records: 3, ..TraceOptions::default() };
        assert_eq!(st.start(None, opts.clone(), t0()).map(|t| t.id.clone()), Ok("trace1".into()));
        assert!(st.running());
        assert_eq!(
            st.start(Some("trace1"), opts.clone(), t0()).unwrap_err(),
            TraceError::AlreadyRunning("trace1".into())
        );
        assert_eq!(st.start(Some("a b"), opts.clone(), t0()).unwrap_err(), TraceError::BadId("a b".into()));
        for i in 0..5u64 {
            let now = t0() + Duration::from_millis(i);
            st.record(
                now,
                &msg(if i % 2 == 0 { Direction::Rx } else { Direction::Tx }, code::PUBLISH, Some("com.topic")),
            );
        }
        let t = st.get("trace1").expect("trace");
        assert_eq!((t.len(), t.next_seq()), (3, 5), "the ring keeps the newest 3");
        let all = st.data("trace1", None, None, 100).expect("data");
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(all[0].msg_type, "Publish");
        assert_eq!(all[0].pc, 2_000_000);
        assert_eq!(all[1].direction, Direction::Tx);
        assert_eq!(all[0].uri.as_deref(), Some("com.topic"));
        assert_eq!(st.data("trace1", Some(3), Some(3), 100).expect("one").len(), 1);
        assert_eq!(
            st.data("trace1", Some(0), None, 2).expect("from 0").iter().map(|r| r.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(st.data("trace1", None, None, 1).expect("last").iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
        assert!(st.data("trace1", Some(9), None, 5).expect("past the end").is_empty());
        assert_eq!(st.data("nope", None, None, 5).unwrap_err(), TraceError::NoSuchTrace("nope".into()));

        // Two traces each get every record.
        st.start(Some("second"), TraceOptions::default(), t0()).expect("second");
        st.record(t0(), &msg(Direction::Tx, code::EVENT, None));
        assert_eq!(st.get("trace1").map(Trace::next_seq), Ok(6));
        assert_eq!(st.get("second").map(Trace::next_seq), Ok(1));
        assert_eq!(st.ids(false), ["trace1", "second"]);

        let stopped = st.stop("trace1", t0() + Duration::from_secs(2)).expect("stop");
        assert_eq!(stopped.status, TraceStatus::Stopped);
        assert_eq!(stopped.runtime(t0() + Duration::from_secs(9)), Duration::from_secs(2));
        assert_eq!(st.stop("trace1", t0()).unwrap_err(), TraceError::NotRunning("trace1".into()));
        st.record(t0(), &msg(Direction::Rx, code::CALL, None));
        assert_eq!(st.get("trace1").map(Trace::next_seq), Ok(6), "a stopped trace takes nothing more");
        assert_eq!(st.ids(false), ["second"]);
        assert_eq!(st.ids(true), ["trace1", "second"]);
        assert!(st.data("trace1", None, None, 10).is_ok_and(|d| d.len() == 3), "stopped traces stay readable");
        st.stop("second", t0()).expect("stop second");
        assert!(!st.running());
        // A stopped trace's id can be used again.
        assert_eq!(st.start(Some("trace1"), TraceOptions::default(), t0()).map(|t| t.next_seq()), Ok(0));
    }

    #[test]
    fn a_trace_with_a_duration_stops_by_itself_and_old_stopped_traces_make_room() {
        let mut st = TraceState::default();
        let opts = TraceOptions { duration: Some(Duration::from_secs(5)), ..TraceOptions::default() };
        st.start(Some("short"), opts, t0()).expect("start");
        st.record(t0() + Duration::from_secs(1), &msg(Direction::Rx, code::SUBSCRIBE, Some("t")));
        assert!(st.expire(t0() + Duration::from_secs(4)).is_empty());
        assert_eq!(st.expire(t0() + Duration::from_secs(5)), ["short"]);
        assert!(!st.running());
        assert_eq!(st.get("short").map(|t| t.ended), Ok(Some(t0() + Duration::from_secs(5))));
        // Recording past the deadline stops it as well.
        st.start(Some("rec"), TraceOptions { duration: Some(Duration::from_secs(1)), ..TraceOptions::default() }, t0())
            .expect("rec");
        st.record(t0() + Duration::from_secs(3), &msg(Direction::Rx, code::CALL, None));
        assert_eq!(st.get("rec").map(|t| (t.status, t.next_seq())), Ok((TraceStatus::Stopped, 0)));

        for i in 0..MAX_TRACES - 2 {
            st.start(Some(&format!("r{i}")), TraceOptions::default(), t0()).expect("room");
        }
        // Full: the oldest stopped trace goes.
        st.start(Some("more"), TraceOptions::default(), t0()).expect("replaces a stopped one");
        assert!(st.get("short").is_err());
        st.start(Some("more2"), TraceOptions::default(), t0()).expect("replaces the other");
        assert_eq!(st.start(Some("more3"), TraceOptions::default(), t0()).unwrap_err(), TraceError::TooMany);
    }

    #[test]
    fn the_tracer_flag_follows_running_traces() {
        let tracer = Tracer::default();
        assert!(!tracer.is_active());
        tracer.record([msg(Direction::Rx, code::CALL, None)]);
        tracer.with(|st| st.start(Some("x"), TraceOptions::default(), SystemTime::now()).map(|_| ())).expect("start");
        assert!(tracer.is_active());
        tracer.record([msg(Direction::Rx, code::CALL, Some("p")), msg(Direction::Tx, code::RESULT, None)]);
        assert_eq!(tracer.with(|st| st.get("x").map(Trace::next_seq)), Ok(2));
        tracer.with(|st| st.stop("x", SystemTime::now()).map(|_| ())).expect("stop");
        assert!(!tracer.is_active());
        assert_eq!(msg_type(code::EVENT_RECEIVED), "EventReceived");
        assert_eq!(msg_type(9999), "Unknown");
    }
}
