//! The cgroup v1 driver (also used on hybrid hosts): one directory per
//! hierarchy, each with its own controller's files.

use crate::cgroup::{self, keyed, read, read_u64, write, Cgroup, Stats};
use crate::layout::{under, OwnCgroups};
use crate::limits::{Limits, Swap};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The controllers a container uses (freezer: to stop it cleanly).
pub const CONTROLLERS: [&str; 7] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer",
];

pub struct V1Cgroup {
    /// controller → this cgroup's directory in that controller's hierarchy.
    dirs: BTreeMap<String, PathBuf>,
}

impl V1Cgroup {
    /// Creates `name` under this process's own cgroup in each hierarchy.
    pub fn create(
        mounts: &BTreeMap<String, PathBuf>,
        own: &OwnCgroups,
        name: &str,
    ) -> Result<V1Cgroup, String> {
        let mut cg = V1Cgroup {
            dirs: BTreeMap::new(),
        };
        for controller in CONTROLLERS {
            let Some(mount) = mounts.get(controller) else {
                continue;
            };
            let parent = under(mount, own.v1.get(controller).map_or("/", String::as_str));
            let dir = parent.join(name);
            // Co-mounted controllers (cpu,cpuacct) share one directory.
            if !cg.dirs.values().any(|d| d == &dir) {
                if let Err(e) = cgroup::make_dir(&dir) {
                    let _ = cg.remove();
                    return Err(e);
                }
            }
            cg.dirs.insert(controller.to_string(), dir.clone());
            if controller == "cpuset" {
                // A new v1 cpuset starts with no CPUs and no memory nodes, and
                // joining it fails (ENOSPC) until they are copied from the parent.
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let inherited = read(&parent.join(file))?;
                    write(&dir.join(file), inherited.trim())?;
                }
            }
        }
        if !cg.dirs.contains_key("memory") {
            return Err("no v1 memory hierarchy is mounted: cannot limit memory".into());
        }
        Ok(cg)
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    fn unique_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.dirs.values().cloned().collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

// ANCHOR: v1_memory
// exercise 2.5: write the v1 memory limits
// hint: memory.limit_in_bytes takes the limit. The memory+swap total goes to
// hint: memory.memsw.limit_in_bytes (-1 for unlimited), written AFTER the memory
// hint: limit (memsw may never be below it). That file exists only with swap
// hint: accounting on: if it is missing, push a warning instead of failing.
pub fn apply_memory(
    dir: &Path,
    memory: Option<u64>,
    swap: Option<Swap>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    if let Some(limit) = memory {
        write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
    }
    if let Some(swap) = swap {
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            let value = match swap {
                Swap::Unlimited => "-1".to_string(),
                Swap::Total(total) => total.to_string(),
            };
            write(&memsw, &value)?;
        } else {
            warnings.push("this kernel has no swap accounting (memory.memsw.*): the swap limit is not applied".into());
        }
    }
    Ok(())
}
// ANCHOR_END: v1_memory

impl Cgroup for V1Cgroup {
    fn apply(&self, limits: &Limits) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        let missing = |c: &str| format!("the v1 {c} controller is not mounted on this host");
        if limits.memory.is_some() || limits.memory_swap.is_some() {
            let dir = self.dir("memory").ok_or_else(|| missing("memory"))?;
            apply_memory(dir, limits.memory, limits.effective_swap(), &mut warnings)?;
        }
        if limits.cpus.is_some() || limits.cpu_shares.is_some() {
            let dir = self.dir("cpu").ok_or_else(|| missing("cpu"))?;
            if let Some(cpus) = limits.cpus {
                let (quota, period) = crate::convert::cpus_to_quota(cpus);
                write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            if let Some(shares) = limits.cpu_shares {
                write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
        }
        if let Some(cpus) = &limits.cpuset_cpus {
            write(
                &self
                    .dir("cpuset")
                    .ok_or_else(|| missing("cpuset"))?
                    .join("cpuset.cpus"),
                cpus,
            )?;
        }
        if let Some(max) = limits.pids {
            write(
                &self
                    .dir("pids")
                    .ok_or_else(|| missing("pids"))?
                    .join("pids.max"),
                &max.to_string(),
            )?;
        }
        let io_wanted = limits.blkio_weight.is_some()
            || !(limits.read_bps.is_empty() && limits.write_bps.is_empty())
            || !(limits.read_iops.is_empty() && limits.write_iops.is_empty());
        if io_wanted {
            let dir = self.dir("blkio").ok_or_else(|| missing("blkio"))?;
            if let Some(weight) = limits.blkio_weight {
                let file = dir.join("blkio.weight");
                if file.exists() {
                    write(&file, &weight.to_string())?;
                } else {
                    warnings.push("blkio.weight needs the BFQ IO scheduler, which this host does not use: the IO weight is not applied".into());
                }
            }
            for (file, rates) in [
                ("blkio.throttle.read_bps_device", &limits.read_bps),
                ("blkio.throttle.write_bps_device", &limits.write_bps),
                ("blkio.throttle.read_iops_device", &limits.read_iops),
                ("blkio.throttle.write_iops_device", &limits.write_iops),
            ] {
                for r in rates {
                    write(
                        &dir.join(file),
                        &format!("{}:{} {}", r.major, r.minor, r.per_second),
                    )?;
                }
            }
        }
        Ok(warnings)
    }

    /// v1 has a tree per controller: the process joins each one, or it would
    /// be limited in memory but, say, fork freely in the pids tree.
    fn add(&self, pid: Pid) -> Result<(), String> {
        cgroup::join(&self.unique_dirs(), pid)
    }

    fn stats(&self) -> Result<Stats, String> {
        let mut s = Stats::default();
        if let Some(dir) = self.dir("memory") {
            s.memory_bytes = read_u64(&dir.join("memory.usage_in_bytes"))?;
            s.memory_peak = read_u64(&dir.join("memory.max_usage_in_bytes")).ok();
            s.oom_kills = cgroup::oom_kills(&read(&dir.join("memory.oom_control"))?);
        }
        if let Some(dir) = self.dir("cpuacct") {
            s.cpu_ns = read_u64(&dir.join("cpuacct.usage"))?;
        }
        if let Some(dir) = self.dir("pids") {
            s.pids = read_u64(&dir.join("pids.current"))?;
            s.pids_limit_hits = read(&dir.join("pids.events"))
                .ok()
                .and_then(|t| keyed(&t, "max"))
                .unwrap_or(0);
        }
        Ok(s)
    }

    fn pids(&self) -> Vec<Pid> {
        let mut all: Vec<Pid> = self
            .unique_dirs()
            .iter()
            .flat_map(|d| cgroup::procs(d))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    // ANCHOR: v1_kill_all
    fn kill_all(&self) -> Result<(), String> {
        // Freeze first so nothing can fork while we kill, then thaw so the
        // kills are delivered.
        let freezer = self.dir("freezer").map(|d| d.join("freezer.state"));
        if let Some(state) = &freezer {
            let _ = write(state, "FROZEN");
            for pid in self.pids() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = write(state, "THAWED");
        }
        cgroup::kill_listed(&self.unique_dirs())
    }
    // ANCHOR_END: v1_kill_all

    fn remove(&self) -> Result<(), String> {
        let mut first_error = None;
        for dir in self.unique_dirs() {
            if let Err(e) = cgroup::remove_dir(&dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.unique_dirs()
    }
}
