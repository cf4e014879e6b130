//! The cgroup v1 driver (also used on hybrid hosts): one directory per
//! hierarchy, each with its own controller's files.

use crate::cgroup::{self, Cgroup, Stats};
use crate::files::{keyed, make_dir, read, read_u64, write};
use crate::layout::{under, OwnCgroups};
use crate::limits::{DeviceRate, Limits, Swap};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The controllers a container uses (freezer: to stop it cleanly; devices:
/// which device nodes it may open).
pub const CONTROLLERS: [&str; 8] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices",
];

pub struct V1Cgroup {
    /// controller → this cgroup's directory in that controller's hierarchy.
    dirs: BTreeMap<String, PathBuf>,
}

impl V1Cgroup {
    /// A cgroup that already exists, from its directories (one per
    /// hierarchy, as [`Cgroup::dirs`] lists them): the mount point below
    /// /sys/fs/cgroup names the hierarchy's controllers (`cpu,cpuacct`).
    /// For changing a running container's limits (`docker update`).
    pub fn open(dirs: &[PathBuf]) -> V1Cgroup {
        let mut map = BTreeMap::new();
        for d in dirs {
            let Some(first) = d
                .strip_prefix("/sys/fs/cgroup")
                .ok()
                .and_then(|r| r.components().next())
            else {
                continue;
            };
            for c in first.as_os_str().to_string_lossy().split(',') {
                if CONTROLLERS.contains(&c) {
                    map.entry(c.to_string()).or_insert_with(|| d.clone());
                }
            }
        }
        V1Cgroup { dirs: map }
    }

    // ANCHOR: v1_create
    // exercise 2.4: create a v1 cgroup: a directory in every controller's tree
    // builds on: 2.2, 2.3
    // hint: On v1 each controller has a tree of its own (`mounts`: controller →
    //   where its hierarchy is mounted). This process sits somewhere in each
    //   (`own.v1`: controller → path, "/" when absent); the new cgroup is a
    //   directory `name` below that, in every tree of CONTROLLERS that is
    //   mounted. Record each in cg.dirs.
    // hint: Co-mounted controllers (cpu,cpuacct) share one tree: make its
    //   directory once. A new cpuset starts with no CPUs and no memory nodes,
    //   and joining it fails (ENOSPC) until cpuset.cpus and cpuset.mems are
    //   copied from the parent. If a step fails, remove what you made (cg.remove)
    //   before returning the error. Without a memory tree, refuse.
    // hint: cgroups(7) "Cgroups version 1"; the kernel's
    //   Documentation/admin-guide/cgroup-v1/cpusets.rst ("cpuset.cpus",
    //   "cpuset.mems"). `make_dir`, `read`, `write` and `under` do the file work.
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
                if let Err(e) = make_dir(&dir) {
                    let _ = cg.remove();
                    return Err(e);
                }
            }
            cg.dirs.insert(controller.to_string(), dir.clone());
            if controller == "cpuset" {
                // A new v1 cpuset starts with no CPUs and no memory nodes, and
                // joining it fails (ENOSPC) until they are copied from the parent.
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let copied = read(&parent.join(file))
                        .and_then(|inherited| write(&dir.join(file), inherited.trim()));
                    if let Err(e) = copied {
                        let _ = cg.remove();
                        return Err(e);
                    }
                }
            }
        }
        if !cg.dirs.contains_key("memory") {
            let _ = cg.remove();
            return Err("no v1 memory hierarchy is mounted: cannot limit memory".into());
        }
        Ok(cg)
    }
    // ANCHOR_END: v1_create

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
// exercise 2.9: write the v1 memory limits
// builds on: 2.8
// hint: Memory is limited by one file of the memory controller's directory,
//   memory.limit_in_bytes, in bytes. Memory plus swap is a second file,
//   memory.memsw.limit_in_bytes (-1 for unlimited, Swap::Unlimited).
// hint: The memsw limit may never be below the memory limit, so the memory
//   limit goes first. The memsw file exists only where the kernel accounts
//   swap (swapaccount=1): without it, push a warning that says the swap limit
//   is not applied, instead of failing the container.
// hint: The kernel's Documentation/admin-guide/cgroup-v1/memory.rst, sections
//   "Setting a memory limit" and "memory.memsw.*".
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

// ANCHOR: v1_cpu
// exercise 2.10: write the v1 CPU limits: a CFS quota per period, and a weight
// builds on: 2.8
// hint: `--cpus 1.5` means: in every period of CPU_PERIOD_US (100 ms) the
//   group may run 1.5 periods' worth, summed over all CPUs. That is two files
//   of the cpu controller: cpu.cfs_period_us and cpu.cfs_quota_us (both in
//   microseconds; the quota is cpus × period, rounded). `--cpu-shares` is a
//   relative weight: cpu.shares, as given.
// hint: Write the period before the quota: the kernel checks a quota against
//   the period in force. Each limit only when it was asked for (None: leave
//   the file as the kernel made it).
// hint: The kernel's Documentation/scheduler/sched-bwc.rst ("Management"), and
//   cgroup-v1's "cpu.shares"; convert::cpus_to_quota does the arithmetic.
pub fn apply_cpu(dir: &Path, cpus: Option<f64>, shares: Option<u64>) -> Result<(), String> {
    if let Some(cpus) = cpus {
        let (quota, period) = crate::convert::cpus_to_quota(cpus);
        write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
        write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
    }
    if let Some(shares) = shares {
        write(&dir.join("cpu.shares"), &shares.to_string())?;
    }
    Ok(())
}
// ANCHOR_END: v1_cpu

/// The IO throttles of one request, file by file (v1 blkio names).
pub fn throttles(limits: &Limits) -> [(&'static str, &[DeviceRate]); 4] {
    [
        ("blkio.throttle.read_bps_device", &limits.read_bps),
        ("blkio.throttle.write_bps_device", &limits.write_bps),
        ("blkio.throttle.read_iops_device", &limits.read_iops),
        ("blkio.throttle.write_iops_device", &limits.write_iops),
    ]
}

// ANCHOR: v1_pids_io
// exercise 2.11: write the v1 pids and IO limits
// builds on: 2.8
// hint: Two controllers, two directories: `pids` holds pids.max (the most
//   tasks at once, threads counted); `blkio` holds the IO weight
//   (blkio.weight) and one throttle file per kind of rate (throttles(limits)
//   lists them with their rates). Each throttle is one write per device:
//   "MAJOR:MINOR RATE".
// hint: A throttle file takes one device per write: several devices are
//   several writes to the same file. blkio.weight exists only under the BFQ
//   IO scheduler: where it is missing, push a warning rather than fail.
//   `pids` or `blkio` is None where that controller is not mounted: an error
//   that names the controller, only if a limit for it was asked for.
// hint: The kernel's Documentation/admin-guide/cgroup-v1/pids.rst and
//   blkio-controller.rst ("Throttling/Upper limit policy").
pub fn apply_pids_io(
    pids: Option<&Path>,
    blkio: Option<&Path>,
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let missing = |c: &str| format!("the v1 {c} controller is not mounted on this host");
    if let Some(max) = limits.pids {
        let dir = pids.ok_or_else(|| missing("pids"))?;
        write(&dir.join("pids.max"), &max.to_string())?;
    }
    let rates = throttles(limits);
    let wanted = limits.blkio_weight.is_some() || rates.iter().any(|(_, r)| !r.is_empty());
    if !wanted {
        return Ok(());
    }
    let dir = blkio.ok_or_else(|| missing("blkio"))?;
    if let Some(weight) = limits.blkio_weight {
        let file = dir.join("blkio.weight");
        if file.exists() {
            write(&file, &weight.to_string())?;
        } else {
            warnings.push("blkio.weight needs the BFQ IO scheduler, which this host does not use: the IO weight is not applied".into());
        }
    }
    for (file, rates) in rates {
        for r in rates {
            write(
                &dir.join(file),
                &format!("{}:{} {}", r.major, r.minor, r.per_second),
            )?;
        }
    }
    Ok(())
}
// ANCHOR_END: v1_pids_io

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
            apply_cpu(dir, limits.cpus, limits.cpu_shares)?;
        }
        if let Some(cpus) = &limits.cpuset_cpus {
            let dir = self.dir("cpuset").ok_or_else(|| missing("cpuset"))?;
            write(&dir.join("cpuset.cpus"), cpus)?;
        }
        let io_asked = limits.blkio_weight.is_some()
            || throttles(limits).iter().any(|(_, rates)| !rates.is_empty());
        if limits.pids.is_some() || io_asked {
            apply_pids_io(self.dir("pids"), self.dir("blkio"), limits, &mut warnings)?;
        }
        Ok(warnings)
    }

    /// v1 has a tree per controller: the process joins each one, or it would
    /// be limited in memory but, say, fork freely in the pids tree.
    fn add(&self, pid: Pid) -> Result<(), String> {
        cgroup::join(&self.unique_dirs(), pid)
    }

    // ANCHOR: v1_stats
    // exercise 2.8: read what a v1 cgroup has used: memory, CPU time, tasks, OOM kills
    // builds on: 2.7
    // hint: Accounting is files too, each in its controller's directory. Memory:
    //   memory.usage_in_bytes now, memory.max_usage_in_bytes at the peak. CPU:
    //   cpuacct.usage, nanoseconds. Tasks: pids.current. Each is one number.
    // hint: Two files are "key value" lines (`keyed` finds a key): the OOM kills
    //   are "oom_kill" in memory.oom_control, the forks refused at the limit
    //   are "max" in pids.events. A controller that is not mounted leaves its
    //   fields at 0; the peak is optional (None when its file is unreadable).
    // hint: cgroup-v1's memory.rst ("usage_in_bytes", "oom_control"),
    //   cpuacct.rst, pids.rst ("pids.events").
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
    // ANCHOR_END: v1_stats

    fn pids(&self) -> Vec<Pid> {
        let mut all: Vec<Pid> = self
            .unique_dirs()
            .iter()
            .flat_map(|d| crate::files::procs(d))
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
