//! Helpers of the fault-injection tests (`tests/faults.rs`): a guard that
//! resumes a stopped process, wall-clock times comparable with the client
//! scripts' `time.time()`, and a private mount namespace holding a small
//! tmpfs (a full disk that leaves no trace in the root namespace).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (as the client scripts record times).
pub fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Sends SIGCONT to a stopped process when dropped (also when a test
/// fails), so that it can be stopped with its node.
pub struct Resume(pub u32);

impl Resume {
    /// Stops `pid` (SIGSTOP) and returns the guard that resumes it, once
    /// every thread of the process is stopped (kill(2) only queues the
    /// signal; on a busy machine a thread may run on for a while, and a
    /// test would measure a process that still answers).
    pub fn stop(pid: u32) -> Resume {
        super::kill(pid, libc::SIGSTOP);
        let guard = Resume(pid);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !all_stopped(pid) {
            assert!(std::time::Instant::now() < deadline, "pid {pid}: not every thread stopped 5 s after SIGSTOP");
            std::thread::sleep(Duration::from_millis(1));
        }
        guard
    }
}

/// Whether every thread of `pid` is stopped (state `T` in
/// `/proc/PID/task/TID/stat`; a thread that exited meanwhile counts).
fn all_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return true };
    tasks.flatten().all(|t| match std::fs::read_to_string(t.path().join("stat")) {
        // The state follows the command name in parentheses (which may hold spaces).
        Ok(stat) => stat.rsplit_once(") ").is_none_or(|(_, rest)| rest.starts_with('T') || rest.starts_with('t')),
        Err(_) => true,
    })
}

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on a pid the test stopped.
        unsafe {
            libc::kill(self.0 as libc::pid_t, libc::SIGCONT);
        }
    }
}

/// A private mount namespace (`unshare -m`, propagation private) in which
/// a tmpfs of a given size is mounted on a directory. The namespace lives
/// as long as its holder process (a `sleep`) and whatever was started in it
/// with [`MountNs::command`]; in the root namespace the directory stays an
/// ordinary empty directory. Dropped: the holder is killed, and with the
/// last process of the namespace the tmpfs goes away.
pub struct MountNs {
    holder: Child,
    pub dir: PathBuf,
}

impl MountNs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`, e.g. `"2m"`) on `dir`
    /// inside a new mount namespace.
    pub fn tmpfs(dir: &Path, size: &str) -> MountNs {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let script = format!(
            "mount -t tmpfs -o size={size},mode=0755 junction-test {} && echo mounted && exec sleep 100000",
            shell_quote(dir)
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; no allocation.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut holder =
            cmd.spawn().unwrap_or_else(|e| panic!("run unshare: {e} (this test needs root and util-linux)"));
        let out = holder.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.trim() == "mounted" => {}
            other => {
                let _ = holder.kill();
                let _ = holder.wait();
                let mut err = String::new();
                if let Some(mut e) = holder.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("private tmpfs not mounted ({other:?}): {err}\n(this test needs root: unshare -m, mount)");
            }
        }
        MountNs { holder, dir: dir.to_owned() }
    }

    /// A command that runs `program` inside the namespace (`nsenter -m`,
    /// which execs it: the process is the program).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t").arg(self.holder.id().to_string()).args(["-m", "--", program]);
        c
    }

    /// Runs `sh -c script` inside the namespace; (success, stdout+stderr).
    pub fn sh(&self, script: &str) -> (bool, String) {
        let out = self.command("sh").args(["-c", script]).output().unwrap_or_else(|e| panic!("run nsenter: {e}"));
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// Fills the tmpfs with a file `name` until no space is left.
    pub fn fill(&self, name: &str) {
        let path = shell_quote(&self.dir.join(name));
        let (_, out) = self.sh(&format!("dd if=/dev/zero of={path} bs=4k 2>&1; sync"));
        assert!(out.contains("No space left"), "filling the tmpfs: {out}");
        let (_, df) = self.sh(&format!("df -k {}", shell_quote(&self.dir)));
        eprintln!("tmpfs full:\n{df}");
    }

    /// Removes the file `name` from the tmpfs.
    pub fn remove(&self, name: &str) {
        let (ok, out) = self.sh(&format!("rm -f {}", shell_quote(&self.dir.join(name))));
        assert!(ok, "rm: {out}");
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}
