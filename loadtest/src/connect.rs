//! The `connect` scenario: a session-establishment storm, then holding every
//! session idle to see how many stay up.
//!
//! `concurrency` threads open `sessions` sessions as fast as they can (TCP
//! connect + transport handshake + HELLO/WELCOME, timed per session), keep
//! them, then hold them for `hold` seconds, answering transport pings and
//! watching for closes once per second.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::common::{seed, spawn_progress, ClientConfig};
use crate::conn::{Conn, ConnError};
use crate::stats::{self, Counters, LatencySummary};

/// Parameters of the connect scenario.
#[derive(Clone, Debug)]
pub struct ConnectParams {
    /// Sessions to open.
    pub sessions: usize,
    /// Threads opening them.
    pub concurrency: usize,
    /// Seconds to hold them idle afterwards.
    pub hold: f64,
    /// Local addresses to connect from, round-robin (none: the system's
    /// choice). One source address has about 28,000 ephemeral ports towards
    /// one router address; 127.0.0.x are all loopback.
    pub sources: Vec<std::net::IpAddr>,
    /// Router processes to sample while the sessions are held and after
    /// they closed (RSS, open descriptors).
    pub pids: Vec<u32>,
    /// Seconds to wait after closing before the "after close" sample.
    pub settle: f64,
}

/// RSS and open descriptors of the router processes, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterFootprint {
    pub rss_kib: u64,
    pub fds: u64,
}

impl RouterFootprint {
    /// Samples `pids` (missing ones count 0).
    pub fn sample(pids: &[u32]) -> RouterFootprint {
        let mut f = RouterFootprint::default();
        for &p in pids {
            f.rss_kib += crate::procstat::sample_pid(p).map_or(0, |s| s.rss_kib);
            f.fds += std::fs::read_dir(format!("/proc/{p}/fd")).map_or(0, |d| d.count() as u64);
        }
        f
    }
}

/// The outcome of one connect run.
#[derive(Clone, Debug)]
pub struct ConnectResult {
    /// Sessions attempted.
    pub attempted: u64,
    /// Sessions established.
    pub established: u64,
    /// Failed attempts.
    pub failed: u64,
    /// First failure message, if any.
    pub first_error: Option<String>,
    /// Seconds from the first attempt to the last session established.
    pub storm_s: f64,
    /// Connect latency (connect + handshake + join).
    pub latency: LatencySummary,
    /// Sessions still open after the hold.
    pub alive_after_hold: u64,
    /// Hold seconds.
    pub hold_s: f64,
    /// Router footprint before the storm, while the sessions were held,
    /// and `settle` seconds after they closed (with `pids`).
    pub router: Option<[RouterFootprint; 3]>,
}

impl ConnectResult {
    /// Sessions established per second.
    pub fn rate(&self) -> f64 {
        if self.storm_s > 0.0 {
            self.established as f64 / self.storm_s
        } else {
            0.0
        }
    }
}

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit write/read the struct we pass.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        rl.rlim_cur
    }
}

/// Checks an idle connection without blocking: answers pings, returns false
/// if the router closed it.
fn still_alive(c: &mut Conn) -> bool {
    loop {
        match c.fill() {
            Ok(true) => loop {
                match c.poll_message() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return false,
                }
            },
            Ok(false) => break,
            Err(_) => return false,
        }
    }
    // PONGs are tiny; a would-block here is not a failure of the router.
    match c.flush() {
        Ok(()) => true,
        Err(ConnError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => true,
        Err(_) => false,
    }
}

/// Runs the scenario.
pub fn run(cfg: &ClientConfig, p: &ConnectParams, quiet: bool) -> Result<ConnectResult> {
    if p.concurrency == 0 {
        bail!("concurrency must be at least 1");
    }
    let limit = raise_fd_limit();
    if limit != 0 && (p.sessions as u64) + 64 > limit {
        bail!(
            "{} sessions need more file descriptors than the limit of {limit} (one per session): raise `ulimit -n`, or split the run over several loadtest processes",
            p.sessions
        );
    }
    let before = RouterFootprint::sample(&p.pids);
    let counters = Arc::new(Counters::default());
    let next = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let storm_done = Arc::new(Barrier::new(p.concurrency + 1));
    let hold_until: Arc<Mutex<Option<Instant>>> = Arc::default();
    let hold_start = Arc::new(Barrier::new(p.concurrency + 1));
    let progress_stop = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress("connect", counters.clone(), progress_stop.clone(), quiet);
    // The `--pid` processes' CPU over the storm alone (no hold, no close):
    // what setting the sessions up cost.
    crate::procstat::window_start_now();
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for w in 0..p.concurrency {
        let (cfg, counters, next, first_error) = (cfg.clone(), counters.clone(), next.clone(), first_error.clone());
        let (storm_done, hold_start, hold_until) = (storm_done.clone(), hold_start.clone(), hold_until.clone());
        let n = p.sessions;
        let sources = p.sources.clone();
        handles.push(
            thread::Builder::new()
                .name(format!("conn{w}"))
                .stack_size(256 << 10)
                .spawn(move || {
                    let mut hist = stats::new_histogram();
                    let mut conns = Vec::new();
                    let mut alive: Vec<bool> = Vec::new();
                    let mut last_ok = t0;
                    let mut last_check = Instant::now();
                    loop {
                        // The sessions opened so far answer the router's
                        // pings during a long storm too, once a second.
                        if last_check.elapsed() >= Duration::from_secs(1) {
                            for (c, a) in conns.iter_mut().zip(alive.iter_mut()) {
                                if *a {
                                    *a = still_alive(c);
                                }
                            }
                            last_check = Instant::now();
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let start = Instant::now();
                        Counters::add(&counters.sent, 1);
                        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
                        match cfg.connect_from(seed(5, i), source) {
                            Ok((c, _)) => {
                                last_ok = Instant::now();
                                stats::record(&mut hist, start.elapsed().as_nanos() as u64);
                                Counters::add(&counters.received, 1);
                                let _ = c.stream().set_nonblocking(true);
                                conns.push(c);
                                alive.push(true);
                            }
                            Err(e) => {
                                Counters::add(&counters.errors, 1);
                                if let Ok(mut fe) = first_error.lock() {
                                    fe.get_or_insert_with(|| e.to_string());
                                }
                            }
                        }
                    }
                    storm_done.wait();
                    hold_start.wait();
                    let until = hold_until.lock().ok().and_then(|g| *g).unwrap_or_else(Instant::now);
                    loop {
                        for (c, a) in conns.iter_mut().zip(alive.iter_mut()) {
                            if *a {
                                *a = still_alive(c);
                            }
                        }
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        thread::sleep((until - now).min(Duration::from_secs(1)));
                    }
                    let alive_n = alive.iter().filter(|a| **a).count() as u64;
                    for c in &mut conns {
                        let _ = c.stream().set_nonblocking(false);
                        c.goodbye();
                    }
                    (hist, conns.len() as u64, alive_n, last_ok)
                })
                .context("spawning connect worker")?,
        );
    }
    storm_done.wait();
    crate::procstat::window_end_now();
    if let Ok(mut g) = hold_until.lock() {
        *g = Some(Instant::now() + Duration::from_secs_f64(p.hold));
    }
    if !quiet && p.hold > 0.0 {
        eprintln!("connect: storm done in {:.2}s; holding sessions for {:.0}s", t0.elapsed().as_secs_f64(), p.hold);
    }
    hold_start.wait();
    // While the sessions are held (the workers check them once a second).
    let held = if p.pids.is_empty() {
        RouterFootprint::default()
    } else {
        thread::sleep(Duration::from_secs_f64((p.hold / 2.0).min(2.0)));
        RouterFootprint::sample(&p.pids)
    };
    let mut hist = stats::new_histogram();
    let (mut established, mut alive, mut last_ok) = (0, 0, t0);
    for h in handles {
        let (hh, est, al, lo) = h.join().map_err(|_| anyhow!("connect worker panicked"))?;
        let _ = hist.add(&hh);
        established += est;
        alive += al;
        last_ok = last_ok.max(lo);
    }
    progress_stop.store(true, Ordering::Relaxed);
    let _ = progress.join();
    let router = (!p.pids.is_empty()).then(|| {
        thread::sleep(Duration::from_secs_f64(p.settle));
        [before, held, RouterFootprint::sample(&p.pids)]
    });
    let first_error = first_error.lock().ok().and_then(|g| g.clone());
    Ok(ConnectResult {
        attempted: p.sessions as u64,
        established,
        failed: p.sessions as u64 - established,
        first_error,
        storm_s: (last_ok - t0).as_secs_f64(),
        latency: LatencySummary::from_histogram(&hist),
        alive_after_hold: alive,
        hold_s: p.hold,
        router,
    })
}

/// JSON description of the parameters.
pub fn params_json(p: &ConnectParams) -> serde_json::Value {
    json!({
        "sessions": p.sessions, "concurrency": p.concurrency, "hold_s": p.hold,
        "sources": p.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "settle_s": p.settle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_established_over_storm_time() {
        let r = ConnectResult {
            attempted: 10,
            established: 8,
            failed: 2,
            first_error: None,
            storm_s: 2.0,
            latency: LatencySummary::default(),
            alive_after_hold: 8,
            hold_s: 1.0,
            router: None,
        };
        assert_eq!(r.rate(), 4.0);
        assert_eq!(ConnectResult { storm_s: 0.0, ..r }.rate(), 0.0);
        assert!(raise_fd_limit() > 0);
    }
}
