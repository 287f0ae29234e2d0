//! CPU time and memory of a process (the router under test via `--pid`, and
//! the load generator itself), from `/proc` and `getrusage`.
//!
//! A router made of several processes (a cluster, `--pid` repeated) is
//! sampled process by process; [`ProcDelta::sum`] adds the deltas up so
//! "router CPU per message" covers every process.

use std::fs;

use serde_json::{json, Value as Json};

/// One sample of a process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time, microseconds.
    pub cpu_us: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Parses utime+stime (clock ticks) from the contents of `/proc/PID/stat`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': field 3 (state) is index 0; utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Parses `VmRSS` (KiB) from the contents of `/proc/PID/status`.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Samples process `pid` (`None` if it does not exist or /proc is unreadable).
pub fn sample_pid(pid: u32) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    Some(ProcSample { cpu_us: ticks * 1_000_000 / clock_ticks(), rss_kib: parse_status_rss_kib(&status).unwrap_or(0) })
}

/// CPU time of this process (all threads) from `getrusage`, plus its RSS.
pub fn sample_self() -> ProcSample {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    let cpu_us = if rc == 0 { tv(ru.ru_utime) + tv(ru.ru_stime) } else { 0 };
    let rss_kib = fs::read_to_string("/proc/self/status").ok().and_then(|s| parse_status_rss_kib(&s)).unwrap_or(0);
    ProcSample { cpu_us, rss_kib }
}

/// Resource use between two samples over `wall_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcDelta {
    /// CPU microseconds consumed.
    pub cpu_us: u64,
    /// CPU utilisation in cores (1.0 = one core busy).
    pub cores: f64,
    /// RSS at start, KiB.
    pub rss_start_kib: u64,
    /// RSS at end, KiB.
    pub rss_end_kib: u64,
}

impl ProcDelta {
    /// The difference `end - start`.
    pub fn between(start: ProcSample, end: ProcSample, wall_s: f64) -> ProcDelta {
        let cpu_us = end.cpu_us.saturating_sub(start.cpu_us);
        ProcDelta {
            cpu_us,
            cores: if wall_s > 0.0 { cpu_us as f64 / 1e6 / wall_s } else { 0.0 },
            rss_start_kib: start.rss_kib,
            rss_end_kib: end.rss_kib,
        }
    }

    /// The total of several processes' deltas over the same wall time: CPU
    /// time, cores and RSS are added up (all zero for an empty slice).
    pub fn sum(deltas: &[ProcDelta]) -> ProcDelta {
        deltas.iter().fold(ProcDelta { cpu_us: 0, cores: 0.0, rss_start_kib: 0, rss_end_kib: 0 }, |a, d| ProcDelta {
            cpu_us: a.cpu_us + d.cpu_us,
            cores: a.cores + d.cores,
            rss_start_kib: a.rss_start_kib + d.rss_start_kib,
            rss_end_kib: a.rss_end_kib + d.rss_end_kib,
        })
    }

    /// As JSON; `per_msg` adds CPU-µs per delivered message.
    pub fn to_json(&self, delivered: u64) -> Json {
        json!({
            "cpu_us": self.cpu_us,
            "cpu_cores": crate::stats::round2(self.cores),
            "cpu_us_per_msg": if delivered > 0 { Some(crate::stats::round2(self.cpu_us as f64 / delivered as f64)) } else { None },
            "rss_start_kib": self.rss_start_kib,
            "rss_end_kib": self.rss_end_kib,
            "rss_growth_kib": self.rss_end_kib as i64 - self.rss_start_kib as i64,
        })
    }
}

/// The `--pid` processes' CPU over the measurement window alone (warm-up,
/// connection setup and teardown excluded), so CPU per message divides the
/// CPU of the same interval as the messages counted.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowCpu {
    /// Length of the sampled interval, seconds.
    pub wall_s: f64,
    /// One delta per process, in `--pid` order.
    pub per_pid: Vec<ProcDelta>,
}

struct WindowWatch {
    pids: Vec<u32>,
    started: bool,
    handle: Option<std::thread::JoinHandle<Option<WindowCpu>>>,
    /// [`window_start_now`]: when, and the samples then.
    manual: Option<(std::time::Instant, Vec<ProcSample>)>,
    /// [`window_end_now`]'s figures.
    result: Option<WindowCpu>,
}

static WINDOW: std::sync::Mutex<Option<WindowWatch>> = std::sync::Mutex::new(None);

/// Arms window sampling of `pids` for the next run (empty: off).
pub fn watch_window(pids: &[u32]) {
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    *w = (!pids.is_empty()).then(|| WindowWatch {
        pids: pids.to_vec(),
        started: false,
        handle: None,
        manual: None,
        result: None,
    });
}

/// A scenario fixed its measurement window: it starts `start_in` from now
/// and lasts `length`. The first call of a run wins (the parts of `mixed`
/// share one window); a thread samples the processes at both ends.
pub fn window_fixed(start_in: std::time::Duration, length: std::time::Duration) {
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    let Some(watch) = w.as_mut() else { return };
    if watch.started || length.is_zero() {
        return;
    }
    watch.started = true;
    let pids = watch.pids.clone();
    let begin = std::time::Instant::now() + start_in;
    watch.handle = std::thread::Builder::new()
        .name("window-cpu".into())
        .spawn(move || {
            std::thread::sleep(begin.saturating_duration_since(std::time::Instant::now()));
            let t0 = std::time::Instant::now();
            let s0: Vec<ProcSample> = pids.iter().map(|&p| sample_pid(p)).collect::<Option<_>>()?;
            std::thread::sleep((begin + length).saturating_duration_since(std::time::Instant::now()));
            let s1: Vec<ProcSample> = pids.iter().map(|&p| sample_pid(p)).collect::<Option<_>>()?;
            let wall_s = t0.elapsed().as_secs_f64();
            Some(WindowCpu {
                wall_s,
                per_pid: s0.into_iter().zip(s1).map(|(a, b)| ProcDelta::between(a, b, wall_s)).collect(),
            })
        })
        .ok();
}

/// For a window that ends when the work is done rather than at a fixed time
/// (the connect storm): it starts now. The first start of a run wins.
pub fn window_start_now() {
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    let Some(watch) = w.as_mut() else { return };
    if watch.started {
        return;
    }
    watch.started = true;
    let t0 = std::time::Instant::now();
    if let Some(s0) = watch.pids.iter().map(|&p| sample_pid(p)).collect::<Option<Vec<_>>>() {
        watch.manual = Some((t0, s0));
    }
}

/// Ends the window [`window_start_now`] began.
pub fn window_end_now() {
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    let Some(watch) = w.as_mut() else { return };
    let Some((t0, s0)) = watch.manual.take() else { return };
    let Some(s1) = watch.pids.iter().map(|&p| sample_pid(p)).collect::<Option<Vec<_>>>() else { return };
    let wall_s = t0.elapsed().as_secs_f64();
    watch.result = Some(WindowCpu {
        wall_s,
        per_pid: s0.into_iter().zip(s1).map(|(a, b)| ProcDelta::between(a, b, wall_s)).collect(),
    });
}

/// The window's figures once the run is over (`None`: not armed, no window
/// fixed, or a process vanished). Disarms.
pub fn take_window() -> Option<WindowCpu> {
    let watch = WINDOW.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    if watch.result.is_some() {
        return watch.result;
    }
    watch.handle?.join().ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_cpu_samples_the_window_only() {
        let me = std::process::id();
        watch_window(&[me]);
        window_fixed(std::time::Duration::from_millis(50), std::time::Duration::from_millis(100));
        window_fixed(std::time::Duration::from_secs(5), std::time::Duration::from_secs(5)); // ignored: first wins
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let w = take_window().expect("window sampled");
        assert!(w.wall_s >= 0.09 && w.wall_s < 1.0, "{w:?}");
        assert_eq!(w.per_pid.len(), 1);
        assert!(take_window().is_none(), "disarmed");
        window_fixed(std::time::Duration::ZERO, std::time::Duration::from_millis(1));
        assert!(take_window().is_none(), "not armed");

        watch_window(&[me]);
        window_start_now();
        let t = std::time::Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        window_end_now();
        let w = take_window().expect("manual window");
        assert!(w.wall_s >= 0.05 && w.wall_s < 1.0, "{w:?}");
    }

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let stat = "1234 (my (weird) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 1000 50";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_status_rss() {
        let status = "Name:\tx\nVmPeak:\t 9999 kB\nVmRSS:\t   4321 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss_kib(status), Some(4321));
        assert_eq!(parse_status_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn samples_this_process() {
        // Burn a little CPU so the counters move.
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert_ne!(x, 1);
        let me = sample_pid(std::process::id()).expect("own /proc entry");
        assert!(me.rss_kib > 0);
        assert!(me.cpu_us > 0);
        let s = sample_self();
        assert!(s.cpu_us >= 20_000, "getrusage cpu {}", s.cpu_us);
        let d = ProcDelta::between(
            ProcSample { cpu_us: 1000, rss_kib: 10 },
            ProcSample { cpu_us: 3000, rss_kib: 7 },
            0.002,
        );
        assert_eq!(d.cpu_us, 2000);
        assert!((d.cores - 1.0).abs() < 1e-9);
        assert_eq!(d.to_json(1000)["cpu_us_per_msg"], 2.0);
        assert_eq!(d.to_json(1000)["rss_growth_kib"], -3);
    }

    #[test]
    fn sums_several_processes() {
        let a = ProcDelta::between(
            ProcSample { cpu_us: 0, rss_kib: 100 },
            ProcSample { cpu_us: 2_000_000, rss_kib: 150 },
            4.0,
        );
        let b = ProcDelta::between(
            ProcSample { cpu_us: 500, rss_kib: 40 },
            ProcSample { cpu_us: 1_000_500, rss_kib: 30 },
            4.0,
        );
        let s = ProcDelta::sum(&[a, b]);
        assert_eq!(s.cpu_us, 3_000_000);
        assert!((s.cores - 0.75).abs() < 1e-9);
        assert_eq!((s.rss_start_kib, s.rss_end_kib), (140, 180));
        assert_eq!(s.to_json(1000)["cpu_us_per_msg"], 3000.0);
        assert_eq!(ProcDelta::sum(&[a]), a);
        assert_eq!(ProcDelta::sum(&[]).cpu_us, 0);
    }
}
