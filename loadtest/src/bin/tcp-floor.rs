//! `tcp-floor`: the bare-TCP floor for pub/sub routing, and a matching load
//! generator that can also drive a NATS server.
//!
//! `tcp-floor serve` is the simplest possible fan-out "router": it accepts
//! subscriber and publisher TCP connections (first byte `S` or `P`), reads
//! RawSocket-framed messages (4-byte header: type byte 0, 24-bit big-endian
//! length) from each publisher and writes every complete frame, unchanged, to
//! every subscriber socket. No parsing beyond the frame header, no routing
//! table, no per-message allocation, blocking I/O on one thread per
//! publisher. It is the floor a router cannot beat: a WAMP router does the
//! same socket work plus decoding, routing and re-encoding. Two modes:
//! `--mode batched` (default) writes all complete frames of one `read` to
//! each subscriber with one `write` (what a good router's write coalescing
//! achieves), `--mode per-frame` issues one `write` per frame per
//! subscriber (the literal "read a frame, write it to N sockets").
//!
//! `tcp-floor load` runs 1 publisher → N subscribers against it (or, with
//! `--proto nats`, against a NATS server using the NATS text protocol:
//! CONNECT/SUB/PUB/MSG/PING/PONG), flat out or at a fixed `--rate`, with
//! end-to-end flow control (at most `--inflight` messages between the
//! publisher and the slowest subscriber), publish → delivery latency in an
//! hdrhistogram, and the server's CPU/RSS sampled from `/proc/PID` (`--pid`)
//! exactly like `loadtest --pid`. The JSON report uses the same keys as
//! loadtest's pubsub report (`results`, `router`) so one generator reads
//! both.
//!
//! `tcp-floor relay` is the floor for a proxy hop: one thread, one epoll loop,
//! and for every accepted client one TCP connection to `--upstream`; whatever
//! one side of a pair sends is read (up to 64 KiB per `read`) and written,
//! unchanged, to the other side with one `write` (flow control: a side whose
//! peer cannot take more is not read until the rest is written). No framing,
//! no parsing, no multiplexing: the WebSocket handshake and frames go through
//! as bytes, so a WAMP client reaches the upstream router as if directly. A
//! real proxy does the same socket work plus terminating the client transport
//! and multiplexing sessions onto links.
//!
//! Not a WAMP implementation and not a benchmark of anything but the kernel's
//! socket path plus a minimal user-space loop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use loadtest::procstat::{sample_pid, ProcDelta};
use loadtest::stats::{new_histogram, record, round2, LatencySummary};

#[derive(Parser, Debug)]
#[command(name = "tcp-floor", about = "Bare TCP fan-out forwarder (the floor) and a 1→N pub/sub load generator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One write per subscriber per read batch.
    Batched,
    /// One write per frame per subscriber.
    PerFrame,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// This binary's `serve` (RawSocket-framed messages).
    Floor,
    /// A NATS server (text protocol).
    Nats,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the forwarder.
    Serve {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9990")]
        listen: String,
        /// Write strategy.
        #[arg(long, value_enum, default_value_t = Mode::Batched)]
        mode: Mode,
    },
    /// Relay every client connection, byte for byte, to an upstream (a proxy-hop floor).
    Relay {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9991")]
        listen: String,
        /// Where each accepted connection is relayed to.
        #[arg(long)]
        upstream: String,
        /// Most client connections relayed at once (more are closed at accept).
        #[arg(long, default_value_t = 4096)]
        max_pairs: usize,
    },
    /// 1 publisher → N subscribers.
    Load {
        /// Server address host:port.
        #[arg(long, default_value = "127.0.0.1:9990")]
        addr: String,
        /// Protocol spoken by the server.
        #[arg(long, value_enum, default_value_t = Proto::Floor)]
        proto: Proto,
        /// Subscribers.
        #[arg(long, default_value_t = 1)]
        subscribers: usize,
        /// Message body bytes (≥ 16: timestamp + sequence number + padding).
        #[arg(long, default_value_t = 96)]
        size: usize,
        /// Messages per second; 0 = as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Most messages between the publisher and the slowest subscriber.
        #[arg(long, default_value_t = 256)]
        inflight: u64,
        /// Messages per write.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// With --rate: send only whole batches (bursts of --batch messages at the
        /// average rate), the write pattern of a closed-loop WAMP publisher.
        #[arg(long)]
        burst: bool,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Unmeasured warmup seconds.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Server process to sample (CPU, RSS).
        #[arg(long)]
        pid: Option<u32>,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Serve { listen, mode } => serve(&listen, mode),
        Cmd::Relay { listen, upstream, max_pairs } => relay::run(&listen, &upstream, max_pairs),
        Cmd::Load { addr, proto, subscribers, size, rate, inflight, batch, burst, duration, warmup, pid, json } => {
            let p = LoadParams { proto, subscribers, size, rate, inflight, batch, burst, duration, warmup };
            load(&addr, &p, pid, json)
        }
    };
    if let Err(e) = r {
        eprintln!("tcp-floor: error: {e:#}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- server

type Subs = Arc<Mutex<Vec<TcpStream>>>;

fn serve(listen: &str, mode: Mode) -> Result<()> {
    let l = TcpListener::bind(listen).with_context(|| format!("bind {listen}"))?;
    println!("tcp-floor: ready on {listen} ({mode:?})");
    let _ = std::io::stdout().flush();
    serve_on(l, mode);
    Ok(())
}

/// Accept loop: registers subscribers, starts a forwarder thread per publisher.
fn serve_on(l: TcpListener, mode: Mode) {
    let subs: Subs = Arc::new(Mutex::new(Vec::new()));
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let _ = s.set_nodelay(true);
        let mut role = [0u8; 1];
        // A silent client must not block the accept loop for long.
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.read_exact(&mut role).is_err() || s.set_read_timeout(None).is_err() {
            continue;
        }
        match role[0] {
            b'S' if s.write_all(b"K").is_ok() => {
                if let Ok(mut v) = subs.lock() {
                    v.push(s);
                }
            }
            b'P' => {
                let subs = subs.clone();
                thread::spawn(move || forward(s, subs, mode));
            }
            _ => {}
        }
    }
}

/// Reads frames from one publisher and writes them to every subscriber.
fn forward(mut publ: TcpStream, subs: Subs, mode: Mode) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0usize;
    loop {
        let n = match publ.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        // Complete frames: [0, end).
        let mut end = 0usize;
        let Ok(mut v) = subs.lock() else { return };
        while filled - end >= 4 {
            let len = u32::from_be_bytes([0, buf[end + 1], buf[end + 2], buf[end + 3]]) as usize;
            if filled - end < 4 + len {
                break;
            }
            if mode == Mode::PerFrame {
                let f = &buf[end..end + 4 + len];
                v.retain_mut(|s| s.write_all(f).is_ok());
            }
            end += 4 + len;
        }
        if mode == Mode::Batched && end > 0 {
            let chunk = &buf[..end];
            v.retain_mut(|s| s.write_all(chunk).is_ok());
        }
        drop(v);
        buf.copy_within(end..filled, 0);
        filled -= end;
        if filled == buf.len() {
            return; // a frame larger than the buffer: not our load pattern
        }
    }
}

// ---------------------------------------------------------------- relay

mod relay {
    //! The epoll relay behind `tcp-floor relay` (Linux only, level-triggered).
    //! A pair ends, both sockets closed, when either side ends or fails (no
    //! half-close: enough for WAMP sessions, which end with GOODBYE or a close).

    use std::collections::HashMap;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use anyhow::{Context, Result};

    /// One socket of a pair (client or upstream) and the bytes read from the
    /// other socket that this one has not taken yet.
    struct Side {
        stream: TcpStream,
        /// Bytes read from the *other* side not yet written to this one.
        pending: Vec<u8>,
        /// The epoll interest registered for `stream` (changed only when needed).
        armed: u32,
    }

    struct Pair {
        sides: [Side; 2],
    }

    const LISTENER: u64 = u64::MAX;
    const BUF: usize = 64 * 1024;

    fn token(pair: u64, side: usize) -> u64 {
        pair << 1 | side as u64
    }

    fn ctl(ep: i32, op: i32, fd: i32, events: u32, tok: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: tok };
        // SAFETY: ep and fd are open descriptors; ev outlives the call.
        if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Interest of side `i`: readable unless its peer still holds unwritten
    /// bytes from it; writable while it holds unwritten bytes itself.
    fn interest(p: &Pair, i: usize) -> u32 {
        let mut ev = 0u32;
        if p.sides[1 - i].pending.is_empty() {
            ev |= libc::EPOLLIN as u32;
        }
        if !p.sides[i].pending.is_empty() {
            ev |= libc::EPOLLOUT as u32;
        }
        ev
    }

    pub fn run(listen: &str, upstream: &str, max_pairs: usize) -> Result<()> {
        let l = TcpListener::bind(listen).with_context(|| format!("bind {listen}"))?;
        l.set_nonblocking(true)?;
        // SAFETY: plain syscall.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(std::io::Error::last_os_error()).context("epoll_create1");
        }
        ctl(ep, libc::EPOLL_CTL_ADD, l.as_raw_fd(), libc::EPOLLIN as u32, LISTENER)?;
        println!("tcp-floor: relay ready on {listen} -> {upstream}");
        let _ = std::io::stdout().flush();
        let mut pairs: HashMap<u64, Pair> = HashMap::new();
        let mut next = 0u64;
        let mut buf = vec![0u8; BUF];
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            // SAFETY: events is a valid buffer of events.len() entries.
            let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("epoll_wait");
            }
            for ev in &events[..n as usize] {
                let (tok, flags) = (ev.u64, ev.events);
                if tok == LISTENER {
                    while let Ok((c, _)) = l.accept() {
                        if pairs.len() >= max_pairs {
                            continue; // dropped: closed
                        }
                        let Ok(u) = TcpStream::connect(upstream) else { continue };
                        let _ = (c.set_nodelay(true), u.set_nodelay(true));
                        if c.set_nonblocking(true).is_err() || u.set_nonblocking(true).is_err() {
                            continue;
                        }
                        let id = next;
                        next += 1;
                        let ok = ctl(ep, libc::EPOLL_CTL_ADD, c.as_raw_fd(), libc::EPOLLIN as u32, token(id, 0))
                            .and_then(|_| {
                                ctl(ep, libc::EPOLL_CTL_ADD, u.as_raw_fd(), libc::EPOLLIN as u32, token(id, 1))
                            });
                        if ok.is_ok() {
                            let side = |stream| Side { stream, pending: Vec::new(), armed: libc::EPOLLIN as u32 };
                            pairs.insert(id, Pair { sides: [side(c), side(u)] });
                        }
                    }
                    continue;
                }
                let (id, i) = (tok >> 1, (tok & 1) as usize);
                let Some(p) = pairs.get_mut(&id) else { continue };
                if step(p, i, flags, &mut buf).is_err() {
                    // Closing both streams removes them from the epoll set.
                    pairs.remove(&id);
                    continue;
                }
                for s in 0..2 {
                    let want = interest(p, s);
                    if want != p.sides[s].armed {
                        let fd = p.sides[s].stream.as_raw_fd();
                        ctl(ep, libc::EPOLL_CTL_MOD, fd, want, token(id, s))?;
                        p.sides[s].armed = want;
                    }
                }
            }
        }
    }

    /// Handles readiness of side `i`; an error (or end of stream) ends the pair.
    fn step(p: &mut Pair, i: usize, flags: u32, buf: &mut [u8]) -> std::io::Result<()> {
        if flags & libc::EPOLLOUT as u32 != 0 {
            flush(&mut p.sides[i])?;
        }
        if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 && p.sides[1 - i].pending.is_empty() {
            let n = match p.sides[i].stream.read(buf) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            let dst = &mut p.sides[1 - i];
            dst.pending.extend_from_slice(&buf[..n]);
            flush(dst)?;
        }
        Ok(())
    }

    fn flush(s: &mut Side) -> std::io::Result<()> {
        while !s.pending.is_empty() {
            match s.stream.write(&s.pending) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    s.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- client

struct LoadParams {
    proto: Proto,
    subscribers: usize,
    size: usize,
    rate: u64,
    inflight: u64,
    batch: usize,
    burst: bool,
    duration: f64,
    warmup: f64,
}

struct Shared {
    origin: Instant,
    /// Window [start, end) in ns since origin; u64::MAX until known.
    win_start: AtomicU64,
    win_end: AtomicU64,
    stop: AtomicBool,
    received: Vec<AtomicU64>,
}

const NATS_CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"name\":\"tcp-floor\"}\r\n";

fn now_ns(sh: &Shared) -> u64 {
    sh.origin.elapsed().as_nanos() as u64
}

fn connect(addr: &str, proto: Proto, role: u8) -> Result<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::with_capacity(256 * 1024, s.try_clone()?);
    match proto {
        Proto::Floor => {
            s.write_all(&[role])?;
            if role == b'S' {
                let mut k = [0u8; 1];
                r.read_exact(&mut k)?;
                if k[0] != b'K' {
                    bail!("bad registration reply");
                }
            }
        }
        Proto::Nats => {
            let mut line = String::new();
            r.read_line(&mut line)?;
            if !line.starts_with("INFO") {
                bail!("not a NATS server: {line:?}");
            }
            let mut hello = NATS_CONNECT.to_vec();
            if role == b'S' {
                hello.extend_from_slice(b"SUB bench 1\r\n");
            }
            hello.extend_from_slice(b"PING\r\n");
            s.write_all(&hello)?;
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    bail!("NATS closed during handshake");
                }
                if line.starts_with("PONG") {
                    break;
                }
                if line.starts_with("-ERR") {
                    bail!("NATS: {}", line.trim());
                }
            }
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(r)
}

/// Handles one message body (timestamp, sequence): counts and records.
fn on_msg(sh: &Shared, idx: usize, body: &[u8], h: &mut hdrhistogram::Histogram<u64>, in_win: &mut u64) {
    if body.len() < 8 {
        return;
    }
    let ts = u64::from_le_bytes([body[0], body[1], body[2], body[3], body[4], body[5], body[6], body[7]]);
    sh.received[idx].fetch_add(1, Ordering::Relaxed);
    if ts >= sh.win_start.load(Ordering::Relaxed) && ts < sh.win_end.load(Ordering::Relaxed) {
        *in_win += 1;
        record(h, now_ns(sh).saturating_sub(ts));
    }
}

fn subscriber(
    sh: Arc<Shared>,
    idx: usize,
    mut r: BufReader<TcpStream>,
    proto: Proto,
) -> (hdrhistogram::Histogram<u64>, u64) {
    let mut h = new_histogram();
    let mut in_win = 0u64;
    let mut body = Vec::new();
    let mut line = Vec::new();
    let timed_out =
        |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
    while !sh.stop.load(Ordering::Relaxed) {
        match proto {
            Proto::Floor => {
                let mut hdr = [0u8; 4];
                match r.read_exact(&mut hdr) {
                    Ok(()) => {}
                    Err(e) if timed_out(&e) => continue,
                    Err(_) => break,
                }
                let len = u32::from_be_bytes([0, hdr[1], hdr[2], hdr[3]]) as usize;
                body.resize(len, 0);
                if r.read_exact(&mut body).is_err() {
                    break;
                }
                on_msg(&sh, idx, &body, &mut h, &mut in_win);
            }
            Proto::Nats => {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if timed_out(&e) => continue,
                    Err(_) => break,
                }
                if line.starts_with(b"MSG ") {
                    let len: usize = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l.split_whitespace().last())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    body.resize(len + 2, 0);
                    if r.read_exact(&mut body).is_err() {
                        break;
                    }
                    on_msg(&sh, idx, &body[..len], &mut h, &mut in_win);
                } else if line.starts_with(b"PING") {
                    let _ = r.get_mut().write_all(b"PONG\r\n");
                }
            }
        }
    }
    (h, in_win)
}

fn load(addr: &str, p: &LoadParams, pid: Option<u32>, json_path: Option<PathBuf>) -> Result<()> {
    let doc = run_load(addr, p, pid)?;
    if let Some(path) = json_path {
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs one load and returns the JSON report (also printing a one-line summary).
fn run_load(addr: &str, p: &LoadParams, pid: Option<u32>) -> Result<serde_json::Value> {
    if p.size < 16 || p.size > 1 << 20 {
        bail!("--size must be 16..=1048576");
    }
    if p.subscribers == 0 || p.batch == 0 {
        bail!("--subscribers and --batch must be at least 1");
    }
    let sh = Arc::new(Shared {
        origin: Instant::now(),
        win_start: AtomicU64::new(u64::MAX),
        win_end: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
        received: (0..p.subscribers).map(|_| AtomicU64::new(0)).collect(),
    });
    let mut subs = Vec::new();
    for i in 0..p.subscribers {
        let r = connect(addr, p.proto, b'S')?;
        let sh2 = sh.clone();
        let proto = p.proto;
        subs.push(thread::spawn(move || subscriber(sh2, i, r, proto)));
    }
    let mut publ = connect(addr, p.proto, b'P')?;
    // Drain anything the server sends the publisher (NATS PINGs) on a side thread.
    if p.proto == Proto::Nats {
        let mut rd = publ.get_ref().try_clone()?;
        let mut w = publ.get_ref().try_clone()?;
        let sh2 = sh.clone();
        thread::spawn(move || {
            let mut b = [0u8; 4096];
            while !sh2.stop.load(Ordering::Relaxed) {
                match rd.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => {
                        if b[..n].windows(4).any(|x| x == b"PING") {
                            let _ = w.write_all(b"PONG\r\n");
                        }
                    }
                    Err(_) => continue,
                }
            }
        });
    }
    let router0 = pid.and_then(sample_pid);
    let wall0 = Instant::now();
    let t0 = now_ns(&sh);
    let warm_ns = (p.warmup * 1e9) as u64;
    let dur_ns = (p.duration * 1e9) as u64;
    sh.win_start.store(t0 + warm_ns, Ordering::Relaxed);
    sh.win_end.store(t0 + warm_ns + dur_ns, Ordering::Relaxed);
    let stop_at = t0 + warm_ns + dur_ns;

    let mut out = Vec::with_capacity(p.batch * (p.size + 32));
    let mut sent = 0u64;
    let mut sent_in_window = 0u64;
    let header = format!("PUB bench {}\r\n", p.size);
    let interval_ns = if p.rate > 0 { 1e9 / p.rate as f64 } else { 0.0 };
    let w = publ.get_mut();
    loop {
        let now = now_ns(&sh);
        if now >= stop_at {
            break;
        }
        // How many to send now.
        let mut n = p.batch as u64;
        if p.rate > 0 {
            let due = ((now - t0) as f64 / interval_ns) as u64 + 1;
            let need = if p.burst { p.batch as u64 } else { 1 };
            if due < sent + need {
                let next = t0 + ((sent + need - 1) as f64 * interval_ns) as u64;
                let wait = next.saturating_sub(now);
                if wait > 50_000 {
                    thread::sleep(Duration::from_nanos(wait - 20_000));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            n = n.min(due - sent);
        }
        // End-to-end flow control against the slowest subscriber.
        let min_rx = sh.received.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
        let room = (min_rx + p.inflight).saturating_sub(sent);
        if room == 0 {
            thread::yield_now();
            continue;
        }
        n = n.min(room);
        out.clear();
        for k in 0..n {
            // Open loop: stamp the scheduled time so queueing shows as latency.
            let ts = if p.rate > 0 { t0 + ((sent + k) as f64 * interval_ns) as u64 } else { now_ns(&sh) };
            if ts >= t0 + warm_ns && ts < stop_at {
                sent_in_window += 1;
            }
            match p.proto {
                Proto::Floor => {
                    let l = p.size as u32;
                    out.extend_from_slice(&[0, (l >> 16) as u8, (l >> 8) as u8, l as u8]);
                }
                Proto::Nats => out.extend_from_slice(header.as_bytes()),
            }
            out.extend_from_slice(&ts.to_le_bytes());
            out.extend_from_slice(&(sent + k).to_le_bytes());
            out.resize(out.len() + p.size - 16, b'x');
            if p.proto == Proto::Nats {
                out.extend_from_slice(b"\r\n");
            }
        }
        w.write_all(&out).context("publisher write")?;
        sent += n;
    }
    // Drain: wait until everything arrived or 3 s passed.
    let drain0 = Instant::now();
    while drain0.elapsed() < Duration::from_secs(3) {
        let min_rx = sh.received.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
        if min_rx >= sent {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let wall = wall0.elapsed().as_secs_f64();
    let router_d = match (pid, router0) {
        (Some(p), Some(r0)) => sample_pid(p).map(|r1| ProcDelta::between(r0, r1, wall)),
        _ => None,
    };
    sh.stop.store(true, Ordering::Relaxed);
    let mut h = new_histogram();
    let mut delivered = 0u64;
    for t in subs {
        if let Ok((sh_h, n)) = t.join() {
            let _ = h.add(&sh_h);
            delivered += n;
        }
    }
    let received_total: u64 = sh.received.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let expected = sent_in_window * p.subscribers as u64;
    let lat = LatencySummary::from_histogram(&h);
    let tp = delivered as f64 / p.duration.max(1e-9);
    let doc = json!({
        "scenario": "pubsub",
        "target": format!("{}://{addr}", match p.proto { Proto::Floor => "floor", Proto::Nats => "nats" }),
        "params": {
            "publishers": 1, "subscribers": p.subscribers, "payload_size": p.size, "rate": p.rate,
            "inflight": p.inflight, "batch": p.batch, "burst": p.burst, "duration_s": p.duration, "warmup_s": p.warmup,
        },
        "results": {
            "sent": sent_in_window, "sent_total": sent, "expected": expected, "delivered": delivered,
            "lost": expected.saturating_sub(delivered), "received_total": received_total, "errors": 0,
            "publish_rate_per_s": round2(sent_in_window as f64 / p.duration.max(1e-9)),
            "throughput_events_per_s": round2(tp),
            "latency": lat.to_json(),
        },
        "router": router_d.map(|d| { let mut j = d.to_json(received_total); j["pid"] = json!(pid); j }),
        "wall_s": round2(wall),
    });
    println!(
        "tcp-floor load {:?} 1→{}: {:.0} events/s, p50 {:.1} µs p99 {:.1} µs, server CPU {} µs/event",
        p.proto,
        p.subscribers,
        tp,
        lat.p50_us,
        lat.p99_us,
        router_d.map(|d| format!("{:.3}", d.cpu_us as f64 / received_total.max(1) as f64)).unwrap_or("-".into())
    );
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_against_floor(mode: Mode, subscribers: usize, rate: u64, burst: bool) -> serde_json::Value {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        thread::spawn(move || serve_on(l, mode));
        let p = LoadParams {
            proto: Proto::Floor,
            subscribers,
            size: 100,
            rate,
            inflight: 256,
            batch: 8,
            burst,
            duration: 0.3,
            warmup: 0.1,
        };
        run_load(&addr, &p, Some(std::process::id())).unwrap()
    }

    #[test]
    fn batched_floor_delivers_every_frame_to_every_subscriber() {
        let d = run_against_floor(Mode::Batched, 3, 0, false);
        let r = &d["results"];
        assert!(r["delivered"].as_u64().unwrap() > 0, "{d}");
        assert_eq!(r["delivered"], r["expected"], "{d}");
        assert_eq!(r["lost"], 0);
        assert_eq!(r["received_total"].as_u64().unwrap(), 3 * r["sent_total"].as_u64().unwrap());
        assert!(d["router"]["cpu_us"].is_u64());
    }

    #[test]
    fn per_frame_floor_at_fixed_rate_delivers_the_schedule() {
        let d = run_against_floor(Mode::PerFrame, 2, 2000, true);
        let r = &d["results"];
        // 0.3 s at 2000/s = 600 scheduled in the window, sent in bursts of 8.
        let sent = r["sent"].as_u64().unwrap();
        assert!((560..=640).contains(&sent), "sent {sent}");
        assert_eq!(r["delivered"].as_u64().unwrap(), 2 * sent);
        assert_eq!(r["lost"], 0);
    }

    #[test]
    fn rejects_bad_sizes() {
        let p = LoadParams {
            proto: Proto::Floor,
            subscribers: 1,
            size: 8,
            rate: 0,
            inflight: 1,
            batch: 1,
            burst: false,
            duration: 0.1,
            warmup: 0.0,
        };
        assert!(run_load("127.0.0.1:1", &p, None).is_err());
    }
}
