//! One interface over both cgroup versions, and the life of a cgroup that
//! both share: a process joins by writing its PID to `cgroup.procs`; at the
//! end everything inside is killed, and the empty directory removed.

use crate::files::{hint, procs, wait_until, write};
use crate::limits::Limits;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

// ANCHOR: join
// exercise 2.6: move a process into a cgroup
// builds on: 2.4
// hint: A process joins a cgroup by one write of its PID, as decimal text,
//   into that cgroup's cgroup.procs; its threads come along. On v1 there is a
//   tree per controller, and `dirs` holds this cgroup's directory in each:
//   join them all, or the process is limited in memory but forks freely.
// hint: Use `write` (crate::files): it names the file and the likely reason
//   when the kernel refuses (EBUSY, EACCES), and the caller needs that text.
//   Stop at the first refusal.
// hint: cgroups(7) "Creating cgroups and moving processes"; the kernel's
//   Documentation/admin-guide/cgroup-v2.rst "Processes".
pub fn join(dirs: &[PathBuf], pid: Pid) -> Result<(), String> {
    for dir in dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}
// ANCHOR_END: join

// ANCHOR: kill_listed
// exercise 2.7: kill everything in the cgroup, and wait until it is empty
// builds on: 2.6
// hint: At the end of a container whatever it left running must go, and a
//   cgroup can only be removed once no process is listed in it. Send SIGKILL
//   to every PID that `procs(dir)` lists, in every directory; repeat until a
//   pass finds none, because a fork in flight adds a PID after you looked.
// hint: Do not wait forever: `wait_until` polls for you; after 5 seconds give
//   up with an error that names the cgroup. A kill that fails (the process is
//   already gone) is not an error.
// hint: kill(2) ESRCH; cgroups(7) "cgroup.procs"; on v2 the kernel's
//   cgroup-v2.rst "cgroup.kill" does this in one write (see V2Cgroup::kill_all).
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

// ANCHOR: remove_dir
// exercise 2.3: remove an empty cgroup, waiting out the kernel's teardown
// hint: A cgroup goes with rmdir(2) of its directory: its knob files are not
//   real files and need no removing. One that is gone already is fine.
// hint: Right after its last process died, the kernel may still answer EBUSY
//   for a moment while it tears the process down: retry for up to 5 seconds
//   (wait_until) while procs(dir) is empty. With processes listed EBUSY is
//   final: say so at once, with `hint(errno)` for the reason.
// hint: rmdir(2) ERRORS (EBUSY, ENOENT); cgroups(7) "Removing cgroups".
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
            hint(crate::files::errno_of(&e))
        )),
        (false, None) => Err(format!("removing cgroup {}: timed out", dir.display())),
    }
}
// ANCHOR_END: remove_dir

/// The OOM kills a cgroup's memory file reports: `oom_kill` in v1's
/// memory.oom_control and v2's memory.events (absent on old kernels: 0).
pub fn oom_kills(memory_events: &str) -> u64 {
    crate::files::keyed(memory_events, "oom_kill").unwrap_or(0)
}
