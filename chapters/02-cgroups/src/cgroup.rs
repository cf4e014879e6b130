//! One interface over both cgroup versions, and the file operations they
//! share. A cgroup is a directory; every knob is a file in it; a process
//! joins by writing its PID to `cgroup.procs`.

use crate::layout::{Layout, Mode, OwnCgroups};
use crate::limits::Limits;
use crate::{v1, v2};
use nix::errno::Errno;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a cgroup has used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory_bytes: u64,
    /// Highest memory use seen (v1 `max_usage_in_bytes`, v2 `memory.peak`).
    pub memory_peak: Option<u64>,
    /// CPU time consumed, in nanoseconds.
    pub cpu_ns: u64,
    pub pids: u64,
    /// Processes the OOM killer ended in this cgroup.
    pub oom_kills: u64,
    /// Times a fork failed because of the pids limit.
    pub pids_limit_hits: u64,
}

/// A cgroup created for one container.
pub trait Cgroup: Send + Sync {
    /// Writes every limit (and warns about the ones this host cannot apply).
    fn apply(&self, limits: &Limits) -> Result<Vec<String>, String>;
    /// Moves a process into the cgroup (in every hierarchy, on v1).
    fn add(&self, pid: Pid) -> Result<(), String>;
    fn stats(&self) -> Result<Stats, String>;
    /// PIDs still inside.
    fn pids(&self) -> Vec<Pid>;
    /// Kills everything inside and waits until it is empty.
    fn kill_all(&self) -> Result<(), String>;
    /// Removes the cgroup directories (they must be empty of processes).
    fn remove(&self) -> Result<(), String>;
    /// The directories of this cgroup, for people and tests.
    fn dirs(&self) -> Vec<PathBuf>;
}

/// Creates the cgroup `name` under this process's own cgroup(s).
pub fn create(layout: &Layout, own: &OwnCgroups, name: &str) -> Result<Box<dyn Cgroup>, String> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("invalid cgroup name {name:?}"));
    }
    match layout.mode {
        Mode::V1 | Mode::Hybrid => Ok(Box::new(v1::V1Cgroup::create(
            &layout.v1_mounts,
            own,
            name,
        )?)),
        Mode::V2 => {
            let mount = layout.v2_mount.as_deref().expect("v2 layout has a mount");
            Ok(Box::new(v2::V2Cgroup::create(
                mount,
                own.v2.as_deref().unwrap_or("/"),
                name,
                true,
            )?))
        }
    }
}

/// The usual reason for an errno from a cgroup file or directory.
pub fn hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES | Errno::EPERM => {
            " (no permission: cgroups need root, or on v2 a subtree delegated to you, \
             e.g. by systemd's Delegate=yes)"
        }
        Errno::EBUSY => {
            " (busy: processes are still inside, or on v2 the parent has processes of its own \
             and so cannot hand controllers down: the no-internal-process rule)"
        }
        Errno::EROFS => " (the cgroup filesystem is read-only here: inside a container?)",
        Errno::ENOSPC => " (on v1 cpuset: the cgroup has no CPUs or memory nodes yet)",
        Errno::EINVAL => " (the kernel refused this value for this file)",
        Errno::EEXIST => " (a cgroup of that name exists: a leftover, or a name in use)",
        Errno::ENOENT => " (no such file: this controller or knob is not available here)",
        _ => "",
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// Writes `value` to a cgroup file; the error names the file, the value and
/// the likely reason.
pub fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| {
        format!(
            "writing {value:?} to {}: {e}{}",
            path.display(),
            hint(errno_of(&e))
        )
    })
}

pub fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("reading {}: {e}{}", path.display(), hint(errno_of(&e))))
}

pub fn read_u64(path: &Path) -> Result<u64, String> {
    let text = read(path)?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} holds {:?}, not a number", path.display(), text.trim()))
}

/// `key value` lines (memory.events, cpu.stat, oom_control): the value of `key`.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Creates a cgroup directory.
pub fn make_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir(dir).map_err(|e| {
        format!(
            "creating cgroup {}: {e}{}",
            dir.display(),
            hint(errno_of(&e))
        )
    })
}

/// The PIDs in a cgroup directory.
pub fn procs(dir: &Path) -> Vec<Pid> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(Pid::from_raw)
        .collect()
}

/// Polls until `done` holds, for at most `limit`.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Removes an empty cgroup directory, retrying briefly while the kernel
/// finishes tearing down exited processes (EBUSY).
pub fn remove_dir(dir: &Path) -> Result<(), String> {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(5), || match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            // Only an empty-looking cgroup is worth waiting for; with
            // processes listed, EBUSY is final.
            let give_up = !procs(dir).is_empty();
            last = Some(e);
            give_up
        }
    });
    let ok = ok && last.as_ref().is_none_or(|_| !dir.exists());
    match (ok, last) {
        (true, _) => Ok(()),
        (false, Some(e)) => Err(format!(
            "removing cgroup {}: {e}{}",
            dir.display(),
            hint(errno_of(&e))
        )),
        (false, None) => Err(format!("removing cgroup {}: timed out", dir.display())),
    }
}

// ANCHOR: join
// exercise 2.6: move a process into a cgroup
// hint: Joining is one write of the PID, as text, into cgroup.procs, in each of
// hint: `dirs` (v1 passes one directory per hierarchy, v2 just one). Use `write`,
// hint: which names the file and the reason when the kernel refuses.
pub fn join(dirs: &[PathBuf], pid: Pid) -> Result<(), String> {
    for dir in dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}
// ANCHOR_END: join

// ANCHOR: kill_listed
// exercise 2.8: kill everything in the cgroup, and wait until it is empty
// hint: Repeat until no directory lists a process (new ones may appear while you
// hint: kill: a fork in flight): send SIGKILL to every PID from `procs(dir)`.
// hint: `wait_until` polls for you; give up with an error after 5 seconds.
pub fn kill_listed(dirs: &[PathBuf]) -> Result<(), String> {
    let empty = wait_until(Duration::from_secs(5), || {
        let mut any = false;
        for dir in dirs {
            for pid in procs(dir) {
                any = true;
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        !any
    });
    if empty {
        Ok(())
    } else {
        Err(format!(
            "processes in {} survived SIGKILL for 5 s",
            dirs[0].display()
        ))
    }
}
// ANCHOR_END: kill_listed

// ANCHOR: oom_kills
// exercise 2.7: count the OOM kills a cgroup's memory file reports
// hint: v1's memory.oom_control and v2's memory.events both hold "key value" lines;
// hint: the count is the value of the key "oom_kill" (absent on very old kernels: 0).
// hint: The helper `keyed` finds a key's value.
pub fn oom_kills(memory_events: &str) -> u64 {
    keyed(memory_events, "oom_kill").unwrap_or(0)
}
// ANCHOR_END: oom_kills
