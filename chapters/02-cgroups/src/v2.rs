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

use crate::cgroup::{self, keyed, read, read_u64, write, Cgroup, Stats};
use crate::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_only};
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
    /// Creates `name` under `own_path` in the v2 tree at `mount`, first
    /// enabling the controllers at every level above it (when asked).
    pub fn create(
        mount: &Path,
        own_path: &str,
        name: &str,
        enable: bool,
    ) -> Result<V2Cgroup, String> {
        let parent = under(mount, own_path);
        if enable {
            let mut level = mount.to_path_buf();
            let mut levels = vec![level.clone()];
            for part in own_path.split('/').filter(|p| !p.is_empty()) {
                level = level.join(part);
                levels.push(level.clone());
            }
            for level in levels {
                enable_controllers(&level)?;
            }
        }
        let dir = parent.join(name);
        cgroup::make_dir(&dir)?;
        Ok(V2Cgroup { dir })
    }

    /// A cgroup that already exists (for tests and `exec`).
    pub fn open(dir: PathBuf) -> V2Cgroup {
        V2Cgroup { dir }
    }
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
            pids: read_u64(&d.join("pids.current")).unwrap_or(cgroup::procs(d).len() as u64),
            oom_kills: opt("memory.events").map_or(0, |t| cgroup::oom_kills(&t)),
            pids_limit_hits: opt("pids.events")
                .and_then(|t| keyed(&t, "max"))
                .unwrap_or(0),
        })
    }

    fn pids(&self) -> Vec<Pid> {
        cgroup::procs(&self.dir)
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
