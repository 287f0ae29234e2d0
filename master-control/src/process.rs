//! The process API every managed process serves, the node controller and
//! each worker (Crossbar's `NativeProcess`): CPU count and affinity,
//! process information and statistics, the process monitor, periodic
//! statistics events (`set_process_stats_monitoring`), `trigger_gc` (the
//! allocator gives free memory back), and for the node the system
//! statistics (`get_system_stats`); what only Python has (manhole,
//! profilers, Python paths) answers as a process without it. Events are
//! queued and taken with [`ProcessApi::take_events`]. Reached through
//! `crossbarfabriccenter.remote.node.<proc>(node_oid, ...)` and
//! `crossbarfabriccenter.remote.worker.<proc>(node_oid, worker_id, ...)`.
//!
//! Everything is read from `/proc` (and `/sys` for the disks), with the
//! keys psutil gives Crossbar; the CPU affinity is `sched_setaffinity` on
//! every thread of the process. The `/proc` parsers are pure functions
//! (unit-tested on sample text); [`ProcessApi`] keeps what the rates need
//! (the previous sample).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value as Json};
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, Args};

/// Procedures of every managed process (URI suffixes).
pub const PROCESS_PROCEDURES: [&str; 15] = [
    "get_cpu_count",
    "get_cpus",
    "get_cpu_affinity",
    "set_cpu_affinity",
    "get_process_info",
    "get_process_stats",
    "get_process_monitor",
    "set_process_stats_monitoring",
    "trigger_gc",
    "get_manhole",
    "start_manhole",
    "stop_manhole",
    "utcnow",
    "started",
    "uptime",
];
/// Procedures only workers serve (`remote.worker.*`).
pub const WORKER_ONLY_PROCEDURES: [&str; 6] =
    ["get_status", "get_pythonpath", "add_pythonpath", "get_profilers", "start_profiler", "get_profile"];

/// Shortest period of `set_process_stats_monitoring` (seconds); 0 turns it off.
pub const STATS_INTERVAL_MIN: f64 = 0.1;
/// Longest period of `set_process_stats_monitoring` (seconds).
pub const STATS_INTERVAL_MAX: f64 = 86_400.0;
/// Procedures only the node controller serves (`remote.node.*`).
pub const NODE_ONLY_PROCEDURES: [&str; 1] = ["get_system_stats"];

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ns_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn runtime_error(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new("crossbar.error.runtime_error", format!("{what}: {e}"))
}

fn read(path: &str) -> Result<String, ApiError> {
    std::fs::read_to_string(path).map_err(|e| runtime_error(&format!("reading {path}"), e))
}

// ---------------------------------------------------------------- parsers

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub utime: u64,
    pub stime: u64,
    pub num_threads: u64,
    pub starttime: u64,
    pub vsize: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat` (the command name may hold spaces and
/// parentheses: fields are counted from the last `)`).
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field n is f[n - 3].
    let n = |i: usize| f.get(i - 3).and_then(|s| s.parse::<u64>().ok());
    Some(Stat {
        state: f.first()?.chars().next()?,
        utime: n(14)?,
        stime: n(15)?,
        num_threads: n(20)?,
        starttime: n(22)?,
        vsize: n(23)?,
        rss_pages: n(24)?,
    })
}

/// psutil's name of a process state letter.
pub fn state_name(c: char) -> &'static str {
    match c {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk-sleep",
        'T' => "stopped",
        't' => "tracing-stop",
        'Z' => "zombie",
        'X' | 'x' => "dead",
        'K' => "wake-kill",
        'W' => "waking",
        'P' => "parked",
        'I' => "idle",
        _ => "unknown",
    }
}

/// `key: value` lines (`/proc/<pid>/status`, `/proc/<pid>/io`,
/// `/proc/meminfo`): the first number of each value (`kB` not applied).
pub fn parse_kv(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// `/proc/stat`: the aggregate `cpu` times (jiffies: user, nice, system,
/// idle, iowait, irq, softirq, steal, guest, guest_nice) and `ctxt`,
/// `intr`, `softirq` totals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcStat {
    pub cpu: Vec<u64>,
    pub ctxt: u64,
    pub intr: u64,
    pub softirq: u64,
}

pub fn parse_proc_stat(text: &str) -> ProcStat {
    let mut s = ProcStat::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let first = |it: &mut std::str::SplitWhitespace| it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match it.next() {
            Some("cpu") => s.cpu = it.filter_map(|v| v.parse().ok()).collect(),
            Some("ctxt") => s.ctxt = first(&mut it),
            Some("intr") => s.intr = first(&mut it),
            Some("softirq") => s.softirq = first(&mut it),
            _ => {}
        }
    }
    s.cpu.resize(10, 0);
    s
}

/// `/proc/net/dev`: per interface (bytes_recv, packets_recv, errin,
/// dropin, bytes_sent, packets_sent, errout, dropout).
pub fn parse_net_dev(text: &str) -> Vec<(String, [u64; 8])> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if v.len() < 16 {
                return None;
            }
            Some((name.trim().to_owned(), [v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11]]))
        })
        .collect()
}

/// `/proc/diskstats`: per device (name, reads, reads merged, sectors read,
/// ms reading, writes, writes merged, sectors written, ms writing, ms
/// doing I/O).
pub fn parse_diskstats(text: &str) -> Vec<(String, [u64; 9])> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 14 {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
            Some((f[2].to_owned(), [n(3), n(4), n(5), n(6), n(7), n(8), n(9), n(10), n(12)]))
        })
        .collect()
}

/// A socket of `/proc/net/{tcp,tcp6,udp,udp6}`: inode → (local, remote,
/// state) with addresses as `ip:port` (the remote `""` when unconnected).
pub fn parse_inet(text: &str, v6: bool, tcp: bool) -> Vec<(u64, String, String, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let local = inet_addr(f[1], v6)?;
            let remote = inet_addr(f[2], v6)?;
            let remote = if remote.ends_with(":0")
                && (remote.starts_with("0.0.0.0:") || remote.starts_with("[::]:") || remote.starts_with(":::"))
            {
                String::new()
            } else {
                remote
            };
            let st = u8::from_str_radix(f[3], 16).ok()?;
            let state = if tcp { tcp_state(st) } else { "NONE" };
            Some((f[9].parse().ok()?, local, remote, state.to_owned()))
        })
        .collect()
}

fn inet_addr(s: &str, v6: bool) -> Option<String> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    if v6 {
        if a.len() != 32 {
            return None;
        }
        let mut b = [0u8; 16];
        for w in 0..4 {
            let word = u32::from_str_radix(&a[w * 8..w * 8 + 8], 16).ok()?;
            b[w * 4..w * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        Some(format!("{}:{port}", std::net::Ipv6Addr::from(b)))
    } else {
        let word = u32::from_str_radix(a, 16).ok()?;
        Some(format!("{}:{port}", std::net::Ipv4Addr::from(word.to_le_bytes())))
    }
}

fn tcp_state(st: u8) -> &'static str {
    match st {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "NONE",
    }
}

/// `/proc/net/unix`: inode → path (`""` when unnamed).
pub fn parse_unix(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(6)?.parse().ok()?, f.get(7).map(|s| (*s).to_owned()).unwrap_or_default()))
        })
        .collect()
}

/// `/proc/net/sockstat{,6}`: `"<PROTO> <field>"` → value (`TCP inuse`,
/// `TCP tw`, `UDP6 inuse`, ...).
pub fn parse_sockstat(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for l in text.lines() {
        let Some((proto, rest)) = l.split_once(':') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        for kv in f.chunks(2) {
            if let [k, v] = kv {
                if let Ok(v) = v.parse() {
                    out.insert(format!("{proto} {k}"), v);
                }
            }
        }
    }
    out
}

/// A CPU list as the kernel writes it (`0-3,8,10-11`).
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

// ---------------------------------------------------------------- affinity

/// The threads of this process.
pub fn thread_ids() -> Result<Vec<i32>, ApiError> {
    let dir = std::fs::read_dir("/proc/self/task").map_err(|e| runtime_error("listing /proc/self/task", e))?;
    Ok(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// The CPUs thread `tid` may run on.
pub fn thread_affinity(tid: i32) -> std::io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

fn set_thread_affinity(tid: i32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: as above; every id is below CPU_SETSIZE (checked by the caller).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs any thread of this process may run on (sorted).
pub fn process_affinity() -> Result<Vec<usize>, ApiError> {
    let mut all = BTreeSet::new();
    for tid in thread_ids()? {
        // A thread that ended meanwhile is no error.
        if let Ok(c) = thread_affinity(tid) {
            all.extend(c);
        }
    }
    Ok(all.into_iter().collect())
}

/// Sets the affinity of every thread of this process to `cpus` (absolute
/// ids). All or nothing: if a thread refuses, those already changed get
/// their previous set back.
pub fn set_process_affinity(cpus: &[usize]) -> Result<Vec<usize>, ApiError> {
    let mut done: Vec<(i32, Vec<usize>)> = Vec::new();
    for tid in thread_ids()? {
        let Ok(before) = thread_affinity(tid) else { continue };
        if let Err(e) = set_thread_affinity(tid, cpus) {
            if e.raw_os_error() == Some(libc::ESRCH) {
                continue;
            }
            for (t, b) in &done {
                let _ = set_thread_affinity(*t, b);
            }
            return Err(runtime_error("Could not set CPU affinity", e));
        }
        done.push((tid, before));
    }
    process_affinity()
}

/// Logical CPUs online (psutil's `cpu_count(logical=True)`).
pub fn logical_cpu_count() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|t| parse_cpu_list(&t).len())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Physical cores (distinct `physical id` / `core id` pairs of
/// `/proc/cpuinfo`); `None` if the kernel does not say.
pub fn physical_cpu_count(cpuinfo: &str) -> Option<usize> {
    let mut cores = BTreeSet::new();
    let (mut phys, mut core) = (None, None);
    for l in cpuinfo.lines().chain(std::iter::once("")) {
        if l.trim().is_empty() {
            if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                cores.insert((p, c));
            }
            continue;
        }
        if let Some((k, v)) = l.split_once(':') {
            match k.trim() {
                "physical id" => phys = v.trim().parse::<u64>().ok(),
                "core id" => core = v.trim().parse::<u64>().ok(),
                _ => {}
            }
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// When this process started (`/proc/self/stat`'s start time after the
/// boot time of `/proc/stat`), to the clock tick; now if unreadable.
pub fn process_start_time() -> SystemTime {
    let start = std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(parse_stat).map(|s| s.starttime);
    let btime = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok())));
    match (start, btime) {
        (Some(st), Some(bt)) => {
            UNIX_EPOCH + std::time::Duration::from_secs(bt) + std::time::Duration::from_secs_f64(st as f64 / clk_tck())
        }
        _ => SystemTime::now(),
    }
}

// ---------------------------------------------------------------- the API

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

type SystemSample = (Instant, ProcStat, Map<String, Json>, Map<String, Json>);

/// The process API of one process (this one), with the state its rates
/// need.
pub struct ProcessApi {
    /// The worker id (`controller` for the node).
    id: String,
    /// The worker type (`router`, `proxy`; `controller` for the node).
    kind: String,
    started: SystemTime,
    /// The CPUs the process could run on when the API started
    /// (`get_cpus`; the base of relative CPU ids).
    cpus: Vec<usize>,
    /// Last (time, CPU seconds) for `cpu_percent`.
    last_cpu: Option<(Instant, f64)>,
    monitor_tick: u64,
    last_monitor: Option<(Instant, Map<String, Json>)>,
    /// Last system sample: when, CPU times, network and disk totals.
    last_system: Option<SystemSample>,
    /// `set_process_stats_monitoring`: the period, and when the next
    /// `on_process_stats` is due.
    stats_every: Option<(Duration, Instant)>,
    stats_seq: u64,
    /// Events to publish (topic suffix under this process's prefix, args).
    events: Vec<(String, Vec<Value>)>,
}

impl ProcessApi {
    /// The API of this process, started at `started`.
    pub fn new(id: &str, kind: &str, started: SystemTime) -> ProcessApi {
        let cpus = process_affinity().unwrap_or_default();
        let cpus = if cpus.is_empty() { (0..logical_cpu_count()).collect() } else { cpus };
        ProcessApi {
            id: id.to_owned(),
            kind: kind.to_owned(),
            started,
            cpus,
            last_cpu: None,
            monitor_tick: 0,
            last_monitor: None,
            last_system: None,
            stats_every: None,
            stats_seq: 0,
            events: Vec::new(),
        }
    }

    /// Answers `proc` if it is a process procedure (see
    /// [`PROCESS_PROCEDURES`], [`WORKER_ONLY_PROCEDURES`] and
    /// [`NODE_ONLY_PROCEDURES`]); `None` otherwise.
    pub fn handle(&mut self, proc: &str, args: &[Value], kwargs: &Dict) -> Option<Result<Value, ApiError>> {
        let a = Args { procedure: proc, args, kwargs };
        let r = match proc {
            "get_cpu_count" => self.cpu_count(&a),
            "get_cpus" => Ok(json!(self.cpus)),
            "get_cpu_affinity" => process_affinity().map(|c| json!(c)),
            "set_cpu_affinity" => self.set_cpu_affinity(&a),
            "get_process_info" => self.process_info(),
            "get_process_stats" => self.process_stats(),
            "get_process_monitor" => self.process_monitor(&a),
            "utcnow" => Ok(json!(iso(SystemTime::now()))),
            "started" => Ok(json!(iso(self.started))),
            "uptime" => Ok(json!(self.uptime())),
            "get_status" if self.kind != "controller" => Ok(json!({
                "id": self.id, "type": self.kind, "pid": std::process::id(), "status": "started",
                "started": iso(self.started), "uptime": self.uptime(),
            })),
            "get_pythonpath" if self.kind != "controller" => Ok(json!([])),
            "add_pythonpath" if self.kind != "controller" => self.add_pythonpath(&a),
            "get_system_stats" if self.kind == "controller" => self.system_stats(),
            "set_process_stats_monitoring" => self.set_stats_monitoring(&a, Instant::now()),
            "trigger_gc" => Ok(self.trigger_gc()),
            // Crossbar's manhole is an SSH shell into the Python process.
            "get_manhole" => Ok(Json::Null),
            "start_manhole" => Err(ApiError::new(
                "crossbar.error.feature_unavailable",
                "start_manhole: a Junction process is native (Rust) code with no interpreter to open a shell into",
            )),
            "stop_manhole" => Err(ApiError::new("crossbar.error.not_started", "stop_manhole: no manhole is running")),
            // Crossbar's profilers are Python's (vmprof); none is built in.
            "get_profilers" if self.kind != "controller" => Ok(json!([])),
            "start_profiler" if self.kind != "controller" => {
                a.opt_str(0, "profiler").map(|name| name.unwrap_or("vmprof")).and_then(|name| {
                    Err(ApiError::invalid_argument(format!(
                        "start_profiler: no profiler '{name}' in this worker (get_profilers lists none; profile a native worker with perf)"
                    )))
                })
            }
            "get_profile" if self.kind != "controller" => {
                let id = a.get(0, "profile_id").map(|v| format!("{v:?}")).unwrap_or_default();
                Err(ApiError::no_such_object(format!("no profile with ID {id} saved")))
            }
            _ => return None,
        };
        Some(r.map(|j| from_json(&j)))
    }

    /// The events due at `now` (topic suffixes under this process's
    /// prefix): what the calls announced, and `on_process_stats` when the
    /// monitoring period has passed.
    pub fn take_events(&mut self, now: Instant) -> Vec<(String, Vec<Value>)> {
        if let Some((every, due)) = self.stats_every {
            if now >= due {
                // Late polls do not pile up: the next one is a period from now.
                self.stats_every = Some((every, now + every));
                self.stats_seq += 1;
                match self.process_stats() {
                    Ok(mut st) => {
                        st["seq"] = json!(self.stats_seq);
                        self.events.push(("on_process_stats".into(), vec![from_json(&st)]));
                    }
                    Err(e) => tracing::warn!(error = %e.message, "process statistics not read"),
                }
            }
        }
        std::mem::take(&mut self.events)
    }

    /// Queues an event (topic suffix under this process's prefix).
    pub fn push_event(&mut self, suffix: &str, args: Vec<Value>) {
        self.events.push((suffix.to_owned(), args));
    }

    /// `set_process_stats_monitoring(interval)`: publish `on_process_stats`
    /// (the process statistics with a `seq`) every `interval` seconds; 0
    /// stops it. Announced with `on_process_stats_monitoring_set(interval)`.
    fn set_stats_monitoring(&mut self, a: &Args, now: Instant) -> Result<Json, ApiError> {
        let interval = match a.get(0, "interval") {
            Some(Value::UInt(n)) => *n as f64,
            Some(Value::Int(n)) => *n as f64,
            Some(Value::Float(f)) => *f,
            Some(_) => {
                return Err(ApiError::invalid_argument(
                    "set_process_stats_monitoring: argument 'interval' must be a number of seconds",
                ))
            }
            None => {
                return Err(ApiError::invalid_argument("set_process_stats_monitoring: missing argument 'interval'"))
            }
        };
        if interval != 0.0 && !(STATS_INTERVAL_MIN..=STATS_INTERVAL_MAX).contains(&interval) {
            return Err(ApiError::invalid_argument(format!(
                "set_process_stats_monitoring: interval must be 0 (off) or {STATS_INTERVAL_MIN} to {STATS_INTERVAL_MAX} seconds, not {interval}"
            )));
        }
        if interval == 0.0 {
            self.stats_every = None;
        } else {
            let every = Duration::from_secs_f64(interval);
            self.stats_every = Some((every, now + every));
        }
        self.push_event("on_process_stats_monitoring_set", vec![from_json(&json!(interval))]);
        Ok(Json::Null)
    }

    /// `trigger_gc()`: a native process has no garbage collector; what
    /// comes closest is giving the allocator's free memory back to the
    /// system (`malloc_trim`). Returns the time it took (ms), as Crossbar
    /// does, and announces `on_gc_finished({requester, duration, freed})`
    /// (`freed`: bytes of resident memory given back).
    fn trigger_gc(&mut self) -> Json {
        let rss = || {
            std::fs::read_to_string("/proc/self/stat").ok().and_then(|t| parse_stat(&t)).map_or(0, |s| s.rss_pages)
                * page_size()
        };
        let before = rss();
        let t0 = Instant::now();
        // SAFETY: malloc_trim only walks the allocator's own arenas, under their locks.
        unsafe {
            libc::malloc_trim(0);
        }
        let duration = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let freed = before.saturating_sub(rss());
        self.push_event(
            "on_gc_finished",
            vec![from_json(&json!({
                "requester": {"session_id": null, "auth_id": null, "auth_role": null},
                "duration": duration,
                "freed": freed,
            }))],
        );
        json!(duration)
    }

    fn uptime(&self) -> f64 {
        SystemTime::now().duration_since(self.started).unwrap_or_default().as_secs_f64()
    }

    fn cpu_count(&self, a: &Args) -> Result<Json, ApiError> {
        let logical = match a.get(0, "logical") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::invalid_argument("get_cpu_count: argument 'logical' must be a bool")),
        };
        if logical {
            Ok(json!(logical_cpu_count()))
        } else {
            Ok(json!(std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| physical_cpu_count(&t))))
        }
    }

    /// `set_cpu_affinity(cpus, relative=True)`: with `relative`, the ids
    /// index [`Self::cpus`] (`get_cpus`), as Crossbar's do; otherwise they
    /// are the kernel's CPU ids. Every id is checked before any thread is
    /// touched.
    fn set_cpu_affinity(&mut self, a: &Args) -> Result<Json, ApiError> {
        let relative = match a.get(1, "relative") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::invalid_argument("set_cpu_affinity: argument 'relative' must be a bool")),
        };
        let list = match a.get(0, "cpus") {
            Some(Value::List(l)) => l,
            Some(_) => {
                return Err(ApiError::invalid_argument("set_cpu_affinity: argument 'cpus' must be a list of CPU ids"))
            }
            None => return Err(ApiError::invalid_argument("set_cpu_affinity: missing argument 'cpus'")),
        };
        if list.is_empty() {
            return Err(ApiError::invalid_argument("set_cpu_affinity: 'cpus' must name at least one CPU"));
        }
        let online = logical_cpu_count();
        let mut cpus = BTreeSet::new();
        for v in list {
            let id = match v {
                Value::UInt(n) => *n,
                Value::Int(n) if *n >= 0 => *n as u64,
                other => {
                    return Err(ApiError::invalid_argument(format!(
                        "set_cpu_affinity: CPU ids are non-negative integers, not {}",
                        crate::value::to_json(other)
                    )))
                }
            };
            let cpu = if relative {
                *usize::try_from(id).ok().and_then(|i| self.cpus.get(i)).ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "set_cpu_affinity: no CPU {id}: relative CPU ids are 0 to {} (get_cpus: {:?})",
                        self.cpus.len().saturating_sub(1),
                        self.cpus
                    ))
                })?
            } else {
                match usize::try_from(id) {
                    Ok(c) if c < online.max(1) && c < libc::CPU_SETSIZE as usize => c,
                    _ => {
                        return Err(ApiError::invalid_argument(format!(
                            "set_cpu_affinity: no CPU {id}: this machine has CPUs 0 to {}",
                            online.saturating_sub(1)
                        )))
                    }
                }
            };
            cpus.insert(cpu);
        }
        let cpus: Vec<usize> = cpus.into_iter().collect();
        let now = set_process_affinity(&cpus)?;
        if now != cpus {
            return Err(ApiError::new(
                "crossbar.error.runtime_error",
                format!("Could not set CPU affinity: CPUs mismatch after affinity setting ({cpus:?} != {now:?})"),
            ));
        }
        Ok(json!(now))
    }

    fn add_pythonpath(&self, a: &Args) -> Result<Json, ApiError> {
        match a.get(0, "paths") {
            Some(Value::List(l)) if l.iter().all(|v| matches!(v, Value::Str(_))) => {}
            Some(_) => {
                return Err(ApiError::invalid_argument("add_pythonpath: argument 'paths' must be a list of strings"))
            }
            None => return Err(ApiError::invalid_argument("add_pythonpath: missing argument 'paths'")),
        }
        Err(ApiError::new(
            "crossbar.error.feature_unavailable",
            "add_pythonpath: a Junction worker is a native (Rust) process with no Python module search path",
        ))
    }

    /// Crossbar's `{descriptors, threads, files, sockets}`, plus `pid`,
    /// `started` and `uptime`.
    fn process_info(&self) -> Result<Json, ApiError> {
        let stat = parse_stat(&read("/proc/self/stat")?)
            .ok_or_else(|| runtime_error("parsing /proc/self/stat", "bad format"))?;
        let mut files = Vec::new();
        let mut socket_inodes = Vec::new();
        let mut descriptors = 0u64;
        let dir = std::fs::read_dir("/proc/self/fd").map_err(|e| runtime_error("listing /proc/self/fd", e))?;
        for e in dir.flatten() {
            let Ok(target) = std::fs::read_link(e.path()) else { continue };
            descriptors += 1;
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                socket_inodes.extend(inode.parse::<u64>().ok());
            } else if t.starts_with('/') && std::fs::metadata(&target).is_ok_and(|m| m.is_file()) {
                files.push(t.into_owned());
            }
        }
        // The directory listing itself held a descriptor.
        descriptors = descriptors.saturating_sub(1);
        files.sort();
        files.dedup();
        let mut table: HashMap<u64, Json> = HashMap::new();
        for (path, v6, tcp, ty) in [
            ("/proc/self/net/tcp", false, true, "tcp4"),
            ("/proc/self/net/tcp6", true, true, "tcp6"),
            ("/proc/self/net/udp", false, false, "udp4"),
            ("/proc/self/net/udp6", true, false, "udp6"),
        ] {
            if let Ok(text) = std::fs::read_to_string(path) {
                for (inode, local, remote, status) in parse_inet(&text, v6, tcp) {
                    table.insert(inode, json!({"type": ty, "local": local, "remote": remote, "status": status}));
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string("/proc/self/net/unix") {
            for (inode, path) in parse_unix(&text) {
                table.insert(inode, json!({"type": "unix", "local": path, "remote": "", "status": "NONE"}));
            }
        }
        let sockets: Vec<Json> = socket_inodes.iter().filter_map(|i| table.get(i).cloned()).collect();
        Ok(json!({
            "descriptors": descriptors,
            "threads": stat.num_threads,
            "files": files,
            "sockets": sockets,
            "pid": std::process::id(),
            "started": iso(self.started),
            "uptime": self.uptime(),
        }))
    }

    /// Crossbar's `ProcessInfo.get_stats()`.
    fn process_stats(&mut self) -> Result<Json, ApiError> {
        let stat = parse_stat(&read("/proc/self/stat")?)
            .ok_or_else(|| runtime_error("parsing /proc/self/stat", "bad format"))?;
        let status = parse_kv(&read("/proc/self/status")?);
        let io = std::fs::read_to_string("/proc/self/io").map(|t| parse_kv(&t)).unwrap_or_default();
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .map(|t| parse_kv(&t))
            .unwrap_or_default()
            .get("MemTotal")
            .copied()
            .unwrap_or(0)
            * 1024;
        let tck = clk_tck();
        let (user, system) = (stat.utime as f64 / tck, stat.stime as f64 / tck);
        let now = Instant::now();
        let cpu_percent = match self.last_cpu {
            Some((t, c)) if now > t => ((user + system - c) / now.duration_since(t).as_secs_f64() * 100.0).max(0.0),
            _ => 0.0,
        };
        self.last_cpu = Some((now, user + system));
        let resident = stat.rss_pages * page_size();
        Ok(json!({
            "ts": iso(SystemTime::now()),
            "time": ns_now(),
            "pid": std::process::id(),
            "status": state_name(stat.state),
            "voluntary": status.get("voluntary_ctxt_switches").copied().unwrap_or(0),
            "nonvoluntary": status.get("nonvoluntary_ctxt_switches").copied().unwrap_or(0),
            "user": user,
            "system": system,
            "cpu_percent": (cpu_percent * 10.0).round() / 10.0,
            "resident": resident,
            "virtual": stat.vsize,
            "mem_percent": if mem_total > 0 { resident as f64 / mem_total as f64 * 100.0 } else { 0.0 },
            "reads": io.get("syscr").copied(),
            "writes": io.get("syscw").copied(),
        }))
    }

    /// Crossbar's `ProcessMonitor.poll(verbose=False)`; `verbose=True`
    /// adds its `tick, timestamp, last_period, elapsed, exe, name, cmdline,
    /// created`.
    fn process_monitor(&mut self, a: &Args) -> Result<Json, ApiError> {
        let verbose = a.flag(0, "verbose")?;
        let t0 = Instant::now();
        let stat = parse_stat(&read("/proc/self/stat")?)
            .ok_or_else(|| runtime_error("parsing /proc/self/stat", "bad format"))?;
        let status = parse_kv(&read("/proc/self/status")?);
        let io = std::fs::read_to_string("/proc/self/io").map(|t| parse_kv(&t)).ok();
        let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count().saturating_sub(1)).unwrap_or(0);
        let tck = clk_tck();
        let mut m = Map::new();
        m.insert("type".into(), json!(self.kind));
        m.insert("pid".into(), json!(std::process::id()));
        m.insert("status".into(), json!(state_name(stat.state)));
        m.insert("num_fds".into(), json!(fds));
        m.insert("num_threads".into(), json!(stat.num_threads));
        m.insert(
            "num_ctx_switches_voluntary".into(),
            json!(status.get("voluntary_ctxt_switches").copied().unwrap_or(0)),
        );
        m.insert(
            "num_ctx_switches_involuntary".into(),
            json!(status.get("nonvoluntary_ctxt_switches").copied().unwrap_or(0)),
        );
        for (k, src) in [
            ("read_ios", "syscr"),
            ("write_ios", "syscw"),
            ("read_bytes", "read_bytes"),
            ("write_bytes", "write_bytes"),
        ] {
            m.insert(k.into(), json!(io.as_ref().and_then(|i| i.get(src).copied())));
        }
        m.insert("cpu_user".into(), json!(stat.utime as f64 / tck));
        m.insert("cpu_system".into(), json!(stat.stime as f64 / tck));
        let now = Instant::now();
        let mut period = None;
        if let Some((t, last)) = &self.last_monitor {
            let dt = now.duration_since(*t).as_secs_f64().max(1e-9);
            period = Some(now.duration_since(*t).as_nanos() as u64);
            for k in [
                "read_ios",
                "write_ios",
                "read_bytes",
                "write_bytes",
                "cpu_user",
                "cpu_system",
                "num_ctx_switches_voluntary",
                "num_ctx_switches_involuntary",
            ] {
                if let (Some(c), Some(l)) = (m.get(k).and_then(Json::as_f64), last.get(k).and_then(Json::as_f64)) {
                    m.insert(format!("{k}_per_sec"), json!(((c - l) / dt) as i64));
                }
            }
        }
        self.monitor_tick += 1;
        self.last_monitor = Some((now, m.clone()));
        if verbose {
            m.insert("tick".into(), json!(self.monitor_tick));
            m.insert("timestamp".into(), json!(ns_now()));
            m.insert("last_period".into(), json!(period));
            m.insert("elapsed".into(), json!(t0.elapsed().as_nanos() as u64));
            m.insert(
                "exe".into(),
                json!(std::fs::read_link("/proc/self/exe").ok().map(|p| p.to_string_lossy().into_owned())),
            );
            m.insert("name".into(), json!(read("/proc/self/comm").map(|s| s.trim().to_owned()).ok()));
            let cmd = std::fs::read("/proc/self/cmdline").unwrap_or_default();
            let cmd: Vec<String> = cmd
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            m.insert("cmdline".into(), json!(cmd.join(" ")));
            m.insert("created".into(), json!(iso(self.started)));
        }
        Ok(Json::Object(m))
    }

    /// Crossbar's `SystemMonitor.poll()`: `uptime` (ns since boot),
    /// `network` and `disk` totals (with `*_per_sec` from the second call
    /// on), `cpu` (percentages since the previous call, or since boot),
    /// `memory` (psutil's `virtual_memory()` keys, bytes) and `elapsed`
    /// (ns).
    fn system_stats(&mut self) -> Result<Json, ApiError> {
        let t0 = Instant::now();
        let uptime = read("/proc/uptime")?.split_whitespace().next().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        // Network: all interfaces summed (psutil's net_io_counters()).
        let mut n = [0u64; 8];
        for (_, v) in parse_net_dev(&read("/proc/net/dev")?) {
            for i in 0..8 {
                n[i] += v[i];
            }
        }
        let mut network = Map::new();
        for (i, k) in
            ["bytes_recv", "packets_recv", "errin", "dropin", "bytes_sent", "packets_sent", "errout", "dropout"]
                .iter()
                .enumerate()
        {
            network.insert((*k).into(), json!(n[i]));
        }
        // Disks: the whole devices of /sys/block (psutil's disk_io_counters()).
        let mut d = [0u64; 9];
        for (name, v) in parse_diskstats(&std::fs::read_to_string("/proc/diskstats").unwrap_or_default()) {
            if std::path::Path::new("/sys/block").join(&name).exists() {
                for i in 0..9 {
                    d[i] += v[i];
                }
            }
        }
        let mut disk = Map::new();
        for (k, v) in [
            ("read_count", d[0]),
            ("read_merged_count", d[1]),
            ("read_bytes", d[2] * 512),
            ("read_time", d[3]),
            ("write_count", d[4]),
            ("write_merged_count", d[5]),
            ("write_bytes", d[6] * 512),
            ("write_time", d[7]),
            ("busy_time", d[8]),
        ] {
            disk.insert(k.into(), json!(v));
        }
        let now = Instant::now();
        if let Some((t, _, ln, ld)) = &self.last_system {
            let dt = now.duration_since(*t).as_secs_f64().max(1e-9);
            for (cur, last) in [(&mut network, ln), (&mut disk, ld)] {
                let keys: Vec<String> = cur.keys().cloned().collect();
                for k in keys {
                    if let (Some(c), Some(l)) = (cur[&k].as_u64(), last.get(&k).and_then(Json::as_u64)) {
                        cur.insert(format!("{k}_per_sec"), json!(((c as f64 - l as f64) / dt) as i64));
                    }
                }
            }
        }
        let (ln, ld) = (network.clone(), disk.clone());
        // Sockets by address family, the whole system's (psutil counts
        // net_connections('all'); reading /proc/net/tcp takes ~0.2 s with
        // 100k sockets, /proc/net/sockstat is constant time).
        let sockstat = |p: &str| std::fs::read_to_string(p).map(|t| parse_sockstat(&t)).unwrap_or_default();
        let (s4, s6) = (sockstat("/proc/net/sockstat"), sockstat("/proc/net/sockstat6"));
        let get = |m: &HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let unix = std::fs::read("/proc/net/unix")
            .map(|t| t.iter().filter(|b| **b == b'\n').count().saturating_sub(1))
            .unwrap_or(0);
        network.insert(
            "connection".into(),
            json!({
                "AF_INET": get(&s4, "TCP inuse") + get(&s4, "TCP tw") + get(&s4, "UDP inuse"),
                "AF_INET6": get(&s6, "TCP6 inuse") + get(&s6, "UDP6 inuse"),
                "AF_UNIX": unix,
            }),
        );
        // CPU: percentages of the time since the last call (since boot the first time).
        let ps = parse_proc_stat(&read("/proc/stat")?);
        let base = self.last_system.as_ref().map(|(_, p, _, _)| p.cpu.clone()).unwrap_or_else(|| vec![0; 10]);
        let delta: Vec<f64> = ps.cpu.iter().zip(&base).map(|(c, b)| c.saturating_sub(*b) as f64).collect();
        // guest and guest_nice are already counted in user and nice.
        let total: f64 = delta[..8].iter().sum();
        let mut cpu = Map::new();
        for (i, k) in ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"]
            .iter()
            .enumerate()
        {
            let p = if total > 0.0 { delta[i] / total * 100.0 } else { 0.0 };
            cpu.insert((*k).into(), json!((p * 10.0).round() / 10.0));
        }
        let freqs: Vec<f64> = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("cpu MHz"))
            .filter_map(|l| l.split_once(':')?.1.trim().parse().ok())
            .collect();
        cpu.insert(
            "freq".into(),
            json!((!freqs.is_empty()).then(|| (freqs.iter().sum::<f64>() / freqs.len() as f64).round() as u64)),
        );
        cpu.insert("ctx_switches".into(), json!(ps.ctxt));
        cpu.insert("interrupts".into(), json!(ps.intr));
        cpu.insert("soft_interrupts".into(), json!(ps.softirq));
        // Memory: psutil's virtual_memory() on Linux, in bytes.
        let mi = parse_kv(&read("/proc/meminfo")?);
        let kb = |k: &str| mi.get(k).copied().unwrap_or(0) * 1024;
        let total_mem = kb("MemTotal");
        let free = kb("MemFree");
        let buffers = kb("Buffers");
        let cached = kb("Cached") + kb("SReclaimable");
        let available = if mi.contains_key("MemAvailable") { kb("MemAvailable") } else { free + buffers + cached };
        let mut used = total_mem.saturating_sub(free + cached + buffers);
        if used == 0 {
            used = total_mem.saturating_sub(free);
        }
        let percent = if total_mem > 0 {
            ((total_mem - available.min(total_mem)) as f64 / total_mem as f64 * 1000.0).round() / 10.0
        } else {
            0.0
        };
        let memory = json!({
            "total": total_mem, "available": available, "percent": percent, "used": used, "free": free,
            "active": kb("Active"), "inactive": kb("Inactive"), "buffers": buffers, "cached": cached,
            "shared": kb("Shmem"), "slab": kb("Slab"),
        });
        self.last_system = Some((now, ps, ln, ld));
        Ok(json!({
            "uptime": (uptime * 1e9) as u64,
            "network": network,
            "disk": disk,
            "cpu": cpu,
            "memory": memory,
            "elapsed": t0.elapsed().as_nanos() as u64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text() {
        let s = parse_stat("1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 7 0 9000 123456789 321 18446744073709551615").unwrap();
        assert_eq!(
            (s.state, s.utime, s.stime, s.num_threads, s.starttime, s.vsize, s.rss_pages),
            ('S', 250, 75, 7, 9000, 123456789, 321)
        );
        assert_eq!(state_name('D'), "disk-sleep");
        let kv = parse_kv("Name:\tx\nVmRSS:\t  1024 kB\nvoluntary_ctxt_switches:\t17\n");
        assert_eq!((kv["VmRSS"], kv["voluntary_ctxt_switches"]), (1024, 17));
        let ps = parse_proc_stat(
            "cpu  10 1 5 100 2 0 1 0 0 0\ncpu0 10 1 5 100 2 0 1 0 0 0\nintr 999 1 2\nctxt 4242\nsoftirq 77 1\n",
        );
        assert_eq!((ps.cpu[0], ps.cpu[3], ps.ctxt, ps.intr, ps.softirq), (10, 100, 4242, 999, 77));
        let nd = parse_net_dev("Inter-|   Receive\n face |bytes\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 5 1 3 4 0 0 0 0 7 8 9 10 0 0 0 0\n");
        assert_eq!(nd[1], ("eth0".to_owned(), [5, 1, 3, 4, 7, 8, 9, 10]));
        let ds = parse_diskstats("   8       0 sda 10 2 80 5 20 3 160 6 0 9 11 0 0 0 0\n");
        assert_eq!(ds[0], ("sda".to_owned(), [10, 2, 80, 5, 20, 3, 160, 6, 9]));
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        let ss = parse_sockstat("sockets: used 12\nTCP: inuse 5 orphan 0 tw 7 alloc 9 mem 1\nUDP: inuse 2 mem 0\n");
        assert_eq!((ss["TCP inuse"], ss["TCP tw"], ss["UDP inuse"], ss["sockets used"]), (5, 7, 2, 12));
        assert_eq!(physical_cpu_count("processor: 0\nphysical id: 0\ncore id: 0\n\nprocessor: 1\nphysical id: 0\ncore id: 0\n\nprocessor: 2\nphysical id: 0\ncore id: 1\n"), Some(2));
        assert_eq!(physical_cpu_count("processor: 0\n"), None);
    }

    #[test]
    fn parses_sockets() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n\
                   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1\n";
        let v = parse_inet(tcp, false, true);
        assert_eq!(v[0], (4242, "127.0.0.1:8080".into(), String::new(), "LISTEN".into()));
        assert_eq!(v[1], (4243, "127.0.0.1:8080".into(), "127.0.0.1:50000".into(), "ESTABLISHED".into()));
        let tcp6 = "  sl  local_address                         remote_address                        st\n\
                    0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 77 1\n";
        assert_eq!(parse_inet(tcp6, true, true)[0], (77, "::1:8080".into(), String::new(), "LISTEN".into()));
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000: 00000002 00000000 00010000 0001 01 12345 /run/x.sock\n0000: 00000002 00000000 00000000 0001 03 12346\n";
        assert_eq!(parse_unix(unix), vec![(12345, "/run/x.sock".into()), (12346, String::new())]);
    }

    fn call(api: &mut ProcessApi, proc: &str, args: Vec<Value>) -> Result<Value, ApiError> {
        api.handle(proc, &args, &Dict::new()).expect("a process procedure")
    }

    #[test]
    fn reads_this_process() {
        let mut api = ProcessApi::new("w1", "router", SystemTime::now());
        let n = call(&mut api, "get_cpu_count", vec![]).unwrap();
        assert!(matches!(n, Value::UInt(k) if k >= 1));
        let info = crate::value::to_json(&call(&mut api, "get_process_info", vec![]).unwrap());
        assert_eq!(info["pid"], json!(std::process::id()));
        assert!(info["threads"].as_u64().unwrap() >= 1);
        assert!(info["descriptors"].as_u64().unwrap() >= 3);
        let st = crate::value::to_json(&call(&mut api, "get_process_stats", vec![]).unwrap());
        assert!(st["resident"].as_u64().unwrap() > 0);
        assert_eq!(st["pid"], json!(std::process::id()));
        let m1 = crate::value::to_json(&call(&mut api, "get_process_monitor", vec![]).unwrap());
        assert!(m1.get("cpu_user_per_sec").is_none());
        let m2 = crate::value::to_json(&call(&mut api, "get_process_monitor", vec![]).unwrap());
        assert!(m2.get("cpu_user_per_sec").is_some());
        let aff = crate::value::to_json(&call(&mut api, "get_cpu_affinity", vec![]).unwrap());
        assert!(!aff.as_array().unwrap().is_empty());
        assert!(api.handle("get_system_stats", &[], &Dict::new()).is_none(), "workers have no system stats");
        let mut node = ProcessApi::new("controller", "controller", SystemTime::now());
        let s = crate::value::to_json(&call(&mut node, "get_system_stats", vec![]).unwrap());
        assert!(s["memory"]["total"].as_u64().unwrap() > 0);
        assert!(
            s["cpu"].get("idle").is_some()
                && s["network"].get("bytes_recv").is_some()
                && s["disk"].get("read_bytes").is_some()
        );
        let s2 = crate::value::to_json(&call(&mut node, "get_system_stats", vec![]).unwrap());
        assert!(s2["network"].get("bytes_recv_per_sec").is_some());
        assert!(node.handle("get_status", &[], &Dict::new()).is_none());
    }

    #[test]
    fn stats_monitoring_publishes_on_its_period_and_stops() {
        let mut api = ProcessApi::new("w1", "router", process_start_time());
        let t0 = Instant::now();
        for bad in [Value::Str("1".into()), Value::Float(0.01), Value::Float(1e9), Value::Int(-1)] {
            let e = api.handle("set_process_stats_monitoring", &[bad], &Dict::new()).expect("ours").unwrap_err();
            assert_eq!(e.uri, "wamp.error.invalid_argument");
        }
        assert!(api.take_events(t0).is_empty(), "refused calls announce nothing");
        let a = Args { procedure: "set_process_stats_monitoring", args: &[Value::Float(0.5)], kwargs: &Dict::new() };
        assert_eq!(api.set_stats_monitoring(&a, t0), Ok(Json::Null));
        let ev = api.take_events(t0);
        assert_eq!(ev, vec![("on_process_stats_monitoring_set".to_owned(), vec![Value::Float(0.5)])]);
        assert!(api.take_events(t0 + Duration::from_millis(400)).is_empty(), "not due yet");
        let ev = api.take_events(t0 + Duration::from_millis(500));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "on_process_stats");
        let st = ev[0].1[0].as_dict().expect("stats");
        assert_eq!(st.get("seq"), Some(&Value::UInt(1)));
        assert_eq!(st.get("pid"), Some(&Value::UInt(u64::from(std::process::id()))));
        // Polled late: one event, the next a period later (no burst).
        let ev = api.take_events(t0 + Duration::from_secs(5));
        assert_eq!(ev.len(), 1);
        assert!(api.take_events(t0 + Duration::from_millis(5_400)).is_empty());
        assert_eq!(api.take_events(t0 + Duration::from_millis(5_500)).len(), 1);
        let off = Args { procedure: "set_process_stats_monitoring", args: &[Value::UInt(0)], kwargs: &Dict::new() };
        assert_eq!(api.set_stats_monitoring(&off, t0), Ok(Json::Null));
        assert_eq!(api.take_events(t0 + Duration::from_secs(60)).len(), 1, "only the monitoring_set(0)");
    }

    #[test]
    fn gc_manhole_and_profilers_answer_what_a_native_process_has() {
        let mut api = ProcessApi::new("w1", "router", process_start_time());
        let ms = call(&mut api, "trigger_gc", vec![]).expect("gc");
        assert!(matches!(ms, Value::UInt(_)), "{ms:?}");
        let ev = api.take_events(Instant::now());
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "on_gc_finished");
        let d = ev[0].1[0].as_dict().expect("event");
        assert_eq!(d.get("duration"), Some(&ms));
        assert!(d.contains_key("freed") && d.contains_key("requester"));
        assert_eq!(call(&mut api, "get_manhole", vec![]), Ok(Value::Null));
        assert_eq!(call(&mut api, "start_manhole", vec![]).unwrap_err().uri, "crossbar.error.feature_unavailable");
        assert_eq!(call(&mut api, "stop_manhole", vec![]).unwrap_err().uri, "crossbar.error.not_started");
        assert_eq!(call(&mut api, "get_profilers", vec![]), Ok(Value::List(vec![])));
        let e = call(&mut api, "start_profiler", vec![Value::Str("vmprof".into())]).unwrap_err();
        assert_eq!(e.uri, "wamp.error.invalid_argument");
        assert_eq!(
            call(&mut api, "get_profile", vec![Value::UInt(1)]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );
        // The node controller has no profilers (Crossbar's are the workers').
        let mut node = ProcessApi::new("controller", "controller", process_start_time());
        assert!(node.handle("get_profilers", &[], &Dict::new()).is_none());
        assert!(node.handle("trigger_gc", &[], &Dict::new()).is_some());
    }

    #[test]
    fn bad_affinity_is_refused_and_nothing_changes() {
        let mut api = ProcessApi::new("w1", "router", SystemTime::now());
        let before = process_affinity().unwrap();
        let e = |api: &mut ProcessApi, args: Vec<Value>| call(api, "set_cpu_affinity", args).unwrap_err().uri;
        assert_eq!(e(&mut api, vec![]), "wamp.error.invalid_argument");
        assert_eq!(e(&mut api, vec![Value::List(vec![])]), "wamp.error.invalid_argument");
        assert_eq!(e(&mut api, vec![Value::Str("0".into())]), "wamp.error.invalid_argument");
        assert_eq!(e(&mut api, vec![Value::List(vec![Value::Int(-1)])]), "wamp.error.invalid_argument");
        assert_eq!(
            e(&mut api, vec![Value::List(vec![Value::UInt(0), Value::UInt(100_000)])]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(&mut api, vec![Value::List(vec![Value::UInt(4096)]), Value::Bool(false)]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(&mut api, vec![Value::List(vec![Value::UInt(0)]), Value::Str("yes".into())]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(process_affinity().unwrap(), before);
        assert_eq!(
            call(&mut api, "add_pythonpath", vec![Value::List(vec![Value::Str("/x".into())])]).unwrap_err().uri,
            "crossbar.error.feature_unavailable"
        );
        assert_eq!(
            call(&mut api, "add_pythonpath", vec![Value::UInt(1)]).unwrap_err().uri,
            "wamp.error.invalid_argument"
        );
        assert_eq!(call(&mut api, "get_pythonpath", vec![]).unwrap(), Value::List(vec![]));
    }
}
