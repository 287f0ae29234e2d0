//! Pieces shared by the scenarios: client settings, the timestamped payload,
//! the measurement window, and the live progress printer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wamp_proto::payload::{decode_value, encode_value};
use wamp_proto::{Dict, Payload, PayloadFormat, Serializer, SessionId, Value};

use crate::auth::Auth;
use crate::conn::{self, Conn, ConnError};
use crate::stats::Counters;
use crate::target::Target;

/// How every client connects.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Router address.
    pub target: Target,
    /// Realm to join.
    pub realm: String,
    /// Serializer.
    pub serializer: Serializer,
    /// Timeout for connecting, handshakes and joining.
    pub timeout: Duration,
    /// TLS client configuration for `wss://` and `rss://` targets.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Credentials (anonymous by default).
    pub auth: Auth,
}

impl ClientConfig {
    /// Connects from local address `source` and joins the realm.
    pub fn connect_from(&self, seed: u64, source: Option<std::net::IpAddr>) -> Result<(Conn, SessionId), ConnError> {
        conn::connect_from_with(
            &self.target,
            self.tls.as_ref(),
            &self.auth,
            self.serializer,
            &self.realm,
            self.timeout,
            seed,
            source,
        )
    }

    /// Connects and joins the realm.
    pub fn connect(&self, seed: u64) -> Result<(Conn, SessionId), ConnError> {
        conn::connect_with(
            &self.target,
            self.tls.as_ref(),
            &self.auth,
            self.serializer,
            &self.realm,
            self.timeout,
            seed,
        )
    }
}

/// Nanoseconds since the run's shared origin.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock { origin: Instant::now() }
    }
    /// Monotonic nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The measurement window `[start, end)` in clock nanoseconds, published by
/// the coordinator once every client is ready (`u64::MAX` until then).
#[derive(Debug)]
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window { start: AtomicU64::new(u64::MAX), end: AtomicU64::new(u64::MAX) }
    }
}

impl Window {
    /// Sets the window.
    pub fn set(&self, start: u64, end: u64) {
        self.start.store(start, Ordering::Release);
        self.end.store(end, Ordering::Release);
    }
    /// Window start.
    pub fn start(&self) -> u64 {
        self.start.load(Ordering::Acquire)
    }
    /// Window end.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }
    /// True if `ts` lies inside the window.
    pub fn contains(&self, ts: u64) -> bool {
        ts >= self.start() && ts < self.end()
    }
}

/// Builds payloads `args = [send_ts_ns]`, `kwargs = {"p": "xxx…"}` where the
/// padding string has `size` bytes. The kwargs span is encoded once and
/// shared by every message.
#[derive(Clone, Debug)]
pub struct PayloadBuilder {
    format: PayloadFormat,
    kwargs: Option<Bytes>,
}

impl PayloadBuilder {
    /// A builder for `serializer` with `size` bytes of padding.
    pub fn new(serializer: Serializer, size: usize) -> PayloadBuilder {
        let format = serializer.payload_format();
        let kwargs = (size > 0).then(|| {
            let mut d = Dict::new();
            d.insert("p".into(), Value::Str("x".repeat(size)));
            let mut out = Vec::with_capacity(size + 16);
            // Encoding a dict of one string cannot fail.
            let _ = encode_value(format, &Value::Dict(d), &mut out);
            Bytes::from(out)
        });
        PayloadBuilder { format, kwargs }
    }

    /// The payload carrying timestamp `ts`.
    pub fn build(&self, ts: u64) -> Payload {
        let mut args = Vec::with_capacity(12);
        let _ = encode_value(self.format, &Value::List(vec![Value::UInt(ts)]), &mut args);
        Payload::Raw { format: self.format, args: Some(Bytes::from(args)), kwargs: self.kwargs.clone() }
    }
}

/// The timestamp carried in `args[0]`, if any.
pub fn timestamp_of(payload: &Payload) -> Option<u64> {
    match payload {
        Payload::Raw { format, args: Some(b), .. } => match decode_value(*format, b).ok()? {
            Value::List(l) => l.first()?.as_u64(),
            _ => None,
        },
        Payload::Values { args: Some(l), .. } => l.first()?.as_u64(),
        _ => None,
    }
}

/// A per-thread seed (WebSocket keys and masks).
pub fn seed(kind: u64, index: usize) -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ (kind << 56) ^ ((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Prints one progress line per second on stderr until `stop` is set.
pub fn spawn_progress(
    label: &'static str,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    quiet: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let start = Instant::now();
        let (mut last_sent, mut last_recv) = (0u64, 0u64);
        let mut next = Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(50));
            if start.elapsed() < next {
                continue;
            }
            next += Duration::from_secs(1);
            let sent = Counters::get(&counters.sent);
            let recv = Counters::get(&counters.received);
            let errors = Counters::get(&counters.errors);
            if !quiet {
                eprintln!(
                    "[{:>4.0}s] {label}: sent {:>9}/s  received {:>9}/s  (total sent {sent}, received {recv}, errors {errors})",
                    start.elapsed().as_secs_f64(),
                    sent - last_sent,
                    recv - last_recv,
                );
            }
            last_sent = sent;
            last_recv = recv;
        }
    })
}

/// SUBSCRIBEs `c` to `topic` (request 1) and waits up to `timeout` for
/// SUBSCRIBED.
pub fn subscribe(c: &mut Conn, topic: &str, timeout: Duration) -> Result<(), ConnError> {
    let msg = wamp_proto::Message::Subscribe {
        request: wamp_proto::RequestId::from_valid(1),
        options: Dict::new(),
        topic: topic.into(),
    };
    c.request(&msg, "SUBSCRIBE", timeout, |m| matches!(m, wamp_proto::Message::Subscribed { .. }))?;
    Ok(())
}

/// A session (key seed `seed`) subscribed to `topic`, reading with a
/// `read_timeout` so its loop can check for the end of the run.
pub fn connect_subscribed(
    cfg: &ClientConfig,
    seed: u64,
    topic: &str,
    read_timeout: Duration,
) -> Result<Conn, ConnError> {
    let (mut c, _) = cfg.connect(seed)?;
    subscribe(&mut c, topic, cfg.timeout)?;
    c.stream().set_read_timeout(Some(read_timeout))?;
    Ok(c)
}

/// Waits for `n` readiness reports on `rx` (each `Err` is a setup failure),
/// all within `timeout`; `what` names the clients in the timeout error.
pub fn collect_ready(
    rx: std::sync::mpsc::Receiver<Result<(), String>>,
    n: usize,
    timeout: std::time::Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    for _ in 0..n {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!("{e}"),
            Err(_) => anyhow::bail!("{what} not ready within {timeout:?}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_proto::{Message, PublicationId, RequestId, SubscriptionId};

    #[test]
    fn timestamp_survives_every_serializer() {
        for ser in Serializer::ALL {
            let pb = PayloadBuilder::new(ser, 100);
            let ts = 123_456_789_012u64;
            let msg = Message::Publish {
                request: RequestId::from_valid(7),
                options: Dict::new(),
                topic: "loadtest.t0".into(),
                payload: pb.build(ts),
            };
            let bytes = ser.encode(&msg).unwrap();
            assert!(bytes.len() >= 100, "{ser}: padding missing ({} bytes)", bytes.len());
            let Message::Publish { payload, .. } = ser.decode(&bytes).unwrap() else { panic!("{ser}: not a PUBLISH") };
            assert_eq!(timestamp_of(&payload), Some(ts), "{ser}");
            // The router forwards the payload unchanged into an EVENT.
            let ev = Message::Event {
                subscription: SubscriptionId::from_valid(1),
                publication: PublicationId::from_valid(2),
                details: Dict::new(),
                payload,
            };
            let Message::Event { payload, .. } = ser.decode(&ser.encode(&ev).unwrap()).unwrap() else { panic!() };
            assert_eq!(timestamp_of(&payload), Some(ts), "{ser} event");
        }
        assert_eq!(timestamp_of(&Payload::EMPTY), None);
    }

    #[test]
    fn window_contains() {
        let w = Window::default();
        assert!(!w.contains(5));
        w.set(10, 20);
        assert!(!w.contains(9));
        assert!(w.contains(10));
        assert!(w.contains(19));
        assert!(!w.contains(20));
    }
}

#[cfg(test)]
mod perf {
    use super::*;
    use wamp_proto::{Message, PublicationId, RequestId, SubscriptionId};

    /// Cost of the hot paths (run with `--release -- --ignored perf`).
    #[test]
    #[ignore]
    fn perf_encode_decode() {
        for ser in Serializer::ALL {
            let pb = PayloadBuilder::new(ser, 64);
            let topic = "loadtest.topic.0".to_string();
            let n = 200_000u64;
            let mut out = Vec::with_capacity(1 << 20);
            let t = Instant::now();
            for i in 0..n {
                let m = Message::Publish {
                    request: RequestId::from_valid(i + 1),
                    options: Dict::new(),
                    topic: topic.clone(),
                    payload: pb.build(i),
                };
                let b = ser.encode(&m).unwrap();
                wamp_framing::rawsocket::write_frame(&mut out, wamp_framing::rawsocket::FrameKind::Message, &b);
                if out.len() > 1 << 19 {
                    out.clear();
                }
            }
            let enc = t.elapsed().as_nanos() as f64 / n as f64;
            let ev = ser
                .encode(&Message::Event {
                    subscription: SubscriptionId::from_valid(1),
                    publication: PublicationId::from_valid(123456789),
                    details: Dict::new(),
                    payload: pb.build(987654321),
                })
                .unwrap();
            let t = Instant::now();
            let mut sum = 0;
            for _ in 0..n {
                if let Message::Event { payload, .. } = ser.decode(&ev).unwrap() {
                    sum += timestamp_of(&payload).unwrap();
                }
            }
            let dec = t.elapsed().as_nanos() as f64 / n as f64;
            assert_eq!(sum, 987654321 * n);
            eprintln!("{ser}: publish encode+frame {enc:.0} ns, event decode+timestamp {dec:.0} ns");
        }
    }
}

/// Tells the coordinator how a worker's setup went (`who` names the worker
/// in the error, e.g. `subscriber 3`) and hands back the value on success.
/// Consumes `ready`, so the coordinator's count of pending workers drops.
pub fn report_ready<T>(
    ready: mpsc::Sender<Result<(), String>>,
    setup: Result<T, ConnError>,
    who: std::fmt::Arguments<'_>,
) -> Option<T> {
    match setup {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            Some(v)
        }
        Err(e) => {
            let _ = ready.send(Err(format!("{who}: {e}")));
            None
        }
    }
}
