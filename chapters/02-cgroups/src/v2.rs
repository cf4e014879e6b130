//! The cgroup v2 driver: one tree, one directory per cgroup, every
//! controller's files side by side.
//!
//! Two v2 rules shape it (see the kernel's cgroup-v2.rst):
//! - A controller is usable in a cgroup only if its parent lists it in
//!   `cgroup.subtree_control`, and so on up to the root: we enable ours at
//!   every level from the root down to our own cgroup.
//! - No internal processes: a cgroup that hands controllers down to
//!   children may not itself hold processes (the root excepted). Enabling
//!   controllers in our own cgroup fails with EBUSY while we sit in it.

use crate::cgroup::{self, Cgroup, Stats};
use crate::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_only};
use crate::files::{keyed, make_dir, read, read_u64, write};
use crate::layout::under;
use crate::limits::{Limits, Swap};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// The controllers a container uses.
pub const CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

pub struct V2Cgroup {
    dir: PathBuf,
}

impl V2Cgroup {
    // ANCHOR: v2_create
    // exercise 2.5: create a v2 cgroup: controllers handed down the tree, then one directory
    // builds on: 2.2
    // hint: v2 has one tree and one directory per cgroup, but a controller works
    //   in a cgroup only if its parent lists it in cgroup.subtree_control, and
    //   so on up to the root. So at every level from the mount down to this
    //   process's own cgroup (`own_path`), enable ours (when `enable`); then
    //   make `name` below own_path.
    // hint: enable_controllers(level) does one level: it asks only for what
    //   that level's cgroup.controllers offers (asking for more is EINVAL). The
    //   levels of "/a/b" are the mount itself, mount/a and mount/a/b. Our own
    //   cgroup may refuse with EBUSY if it holds processes (the "no internal
    //   processes" rule): that error is worth passing on as it is.
    // hint: The kernel's Documentation/admin-guide/cgroup-v2.rst, "Enabling and
    //   Disabling" and "No Internal Process Constraint".
    /// Creates `name` under `own_path` in the v2 tree at `mount`, first
    /// enabling the controllers at every level above it (when asked).
    pub fn create(
        mount: &Path,
        own_path: &str,
        name: &str,
        enable: bool,
    ) -> Result<V2Cgroup, String> {
        if enable {
            let mut level = mount.to_path_buf();
            enable_controllers(&level)?;
            for part in own_path.split('/').filter(|p| !p.is_empty()) {
                level = level.join(part);
                enable_controllers(&level)?;
            }
        }
        let dir = under(mount, own_path).join(name);
        make_dir(&dir)?;
        Ok(V2Cgroup { dir })
    }
    // ANCHOR_END: v2_create

    /// A cgroup that already exists (for tests and `exec`).
    pub fn open(dir: PathBuf) -> V2Cgroup {
        V2Cgroup { dir }
    }
}

/// Makes `parent` ready to hold containers' cgroups: made where missing,
/// with every container controller that `top` offers handed down from
/// `top` to it and into it (each level's `cgroup.subtree_control`). `top`
/// is the highest level this process may write: the root of the tree as
/// the host's root, a delegated cgroup rootless. Neither `parent` nor a
/// level between may hold processes (the no-internal-process rule).
pub fn prepare_parent(top: &Path, parent: &Path) -> Result<(), String> {
    let below = parent
        .strip_prefix(top)
        .map_err(|_| format!("cgroup {} is not below {}", parent.display(), top.display()))?;
    let mut level = top.to_path_buf();
    enable_controllers(&level)?;
    for part in below.components() {
        level = level.join(part);
        if !level.is_dir() {
            make_dir(&level)?;
        }
        enable_controllers(&level)?;
    }
    Ok(())
}

/// The controllers the children of `dir` get (its `cgroup.subtree_control`).
pub fn handed_down(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Enables, in `level/cgroup.subtree_control`, every container controller
/// that `level/cgroup.controllers` offers. Where no `cgroup.controllers`
/// exists (a scratch directory in tests), all are asked for.
fn enable_controllers(level: &Path) -> Result<(), String> {
    let offered = std::fs::read_to_string(level.join("cgroup.controllers"));
    let wanted: Vec<&str> = match &offered {
        Ok(list) => CONTROLLERS
            .iter()
            .copied()
            .filter(|c| list.split_whitespace().any(|o| o == *c))
            .collect(),
        Err(_) => CONTROLLERS.to_vec(),
    };
    if wanted.is_empty() {
        return Ok(());
    }
    let line: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
    write(&level.join("cgroup.subtree_control"), &line.join(" "))
}

impl Cgroup for V2Cgroup {
    // ANCHOR: v2_apply
    // exercise 2.12: write every limit in v2's files and units
    // builds on: 2.5
    // hint: One directory holds every controller's files, with v2's names and
    //   scales: memory.max (bytes), memory.swap.max (swap *alone*), cpu.max
    //   ("QUOTA PERIOD" in one file), cpu.weight (1..10000, not shares),
    //   cpuset.cpus, pids.max, io.weight ("default W"), io.max (one line per
    //   device: "MAJOR:MINOR rbps=N", with rbps, wbps, riops, wiops).
    // hint: Docker's flags speak v1: --memory-swap is memory plus swap, so the
    //   swap file gets the difference (convert::swap_only), and only when a
    //   memory limit is set; unlimited is "max". Shares and the blkio weight go
    //   through convert's formulas (crun's). Nothing here warns: v2 always has
    //   swap accounting and io.weight. Each limit only when asked for.
    // hint: The kernel's Documentation/admin-guide/cgroup-v2.rst "Memory
    //   Interface Files", "CPU Interface Files", "IO Interface Files"; crun(1)
    //   "CGROUP v2" for the conversions.
    fn apply(&self, limits: &Limits) -> Result<Vec<String>, String> {
        let d = &self.dir;
        if let Some(m) = limits.memory {
            write(&d.join("memory.max"), &m.to_string())?;
        }
        match (limits.effective_swap(), limits.memory) {
            (Some(Swap::Unlimited), _) => write(&d.join("memory.swap.max"), "max")?,
            (Some(Swap::Total(total)), Some(m)) => {
                write(&d.join("memory.swap.max"), &swap_only(total, m).to_string())?
            }
            _ => {}
        }
        if let Some(cpus) = limits.cpus {
            let (quota, period) = crate::convert::cpus_to_quota(cpus);
            write(&d.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let Some(shares) = limits.cpu_shares {
            write(&d.join("cpu.weight"), &shares_to_weight(shares).to_string())?;
        }
        if let Some(cpus) = &limits.cpuset_cpus {
            write(&d.join("cpuset.cpus"), cpus)?;
        }
        if let Some(max) = limits.pids {
            write(&d.join("pids.max"), &max.to_string())?;
        }
        if let Some(w) = limits.blkio_weight {
            write(
                &d.join("io.weight"),
                &format!("default {}", blkio_weight_to_io_weight(w)),
            )?;
        }
        for (key, rates) in [
            ("rbps", &limits.read_bps),
            ("wbps", &limits.write_bps),
            ("riops", &limits.read_iops),
            ("wiops", &limits.write_iops),
        ] {
            for r in rates {
                write(
                    &d.join("io.max"),
                    &format!("{}:{} {key}={}", r.major, r.minor, r.per_second),
                )?;
            }
        }
        Ok(Vec::new())
    }
    // ANCHOR_END: v2_apply

    fn add(&self, pid: Pid) -> Result<(), String> {
        cgroup::join(std::slice::from_ref(&self.dir), pid)
    }

    fn stats(&self) -> Result<Stats, String> {
        let d = &self.dir;
        let opt = |file: &str| read(&d.join(file)).ok();
        Ok(Stats {
            memory_bytes: read_u64(&d.join("memory.current")).unwrap_or(0),
            memory_peak: read_u64(&d.join("memory.peak")).ok(),
            cpu_ns: opt("cpu.stat")
                .and_then(|t| keyed(&t, "usage_usec"))
                .unwrap_or(0)
                * 1000,
            pids: read_u64(&d.join("pids.current")).unwrap_or(crate::files::procs(d).len() as u64),
            oom_kills: opt("memory.events").map_or(0, |t| cgroup::oom_kills(&t)),
            pids_limit_hits: opt("pids.events")
                .and_then(|t| keyed(&t, "max"))
                .unwrap_or(0),
        })
    }

    fn pids(&self) -> Vec<Pid> {
        crate::files::procs(&self.dir)
    }

    fn kill_all(&self) -> Result<(), String> {
        // cgroup.kill (Linux 5.14) kills the whole subtree atomically.
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() {
            write(&kill, "1")?;
        }
        cgroup::kill_listed(std::slice::from_ref(&self.dir))
    }

    fn remove(&self) -> Result<(), String> {
        cgroup::remove_dir(&self.dir)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}
