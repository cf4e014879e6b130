//! The file handling every cgroup driver shares: a cgroup is a directory,
//! every knob is a file in it, and the kernel's refusals (EBUSY, EINVAL,
//! EACCES) mean specific things that are worth saying in words.

use nix::errno::Errno;
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

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

pub fn errno_of(e: &std::io::Error) -> Errno {
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
