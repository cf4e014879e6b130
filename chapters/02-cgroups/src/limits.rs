//! What a container may use, in Docker's terms (`--memory`, `--cpus`, …),
//! checked against the host before any cgroup is touched.

use crate::size::parse_size;
use std::path::Path;

/// Docker's floor for `--memory`: below it the container cannot even start.
pub const MIN_MEMORY: u64 = 6 << 20;

/// Memory plus swap, as Docker's `--memory-swap` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swap {
    /// `--memory-swap -1`: swap is not limited.
    Unlimited,
    /// Memory plus swap, in bytes (equal to the memory limit: no swap).
    Total(u64),
}

/// A throttle on one block device, by its `major:minor` numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRate {
    pub major: u64,
    pub minor: u64,
    pub per_second: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// Bytes of memory (`--memory`).
    pub memory: Option<u64>,
    /// Memory plus swap (`--memory-swap`); with only `memory` set, Docker
    /// allows as much swap again (total = 2 × memory).
    pub memory_swap: Option<Swap>,
    /// CPU time as a number of CPUs (`--cpus 0.5`).
    pub cpus: Option<f64>,
    /// Relative CPU weight, v1 scale 2..262144, default 1024 (`--cpu-shares`).
    pub cpu_shares: Option<u64>,
    /// CPUs the group may run on, e.g. `0-1,3` (`--cpuset-cpus`).
    pub cpuset_cpus: Option<String>,
    /// Most tasks (processes and threads) at once (`--pids-limit`).
    pub pids: Option<u64>,
    /// Relative IO weight, v1 scale 10..1000 (`--blkio-weight`).
    pub blkio_weight: Option<u64>,
    pub read_bps: Vec<DeviceRate>,
    pub write_bps: Vec<DeviceRate>,
    pub read_iops: Vec<DeviceRate>,
    pub write_iops: Vec<DeviceRate>,
    /// A soft memory limit, reclaimed towards under pressure
    /// (`--memory-reservation`; v1 memory.soft_limit_in_bytes, v2 memory.low).
    pub memory_reservation: Option<u64>,
    /// 0..=100, how readily the group's pages are swapped
    /// (`--memory-swappiness`; v1 only).
    pub memory_swappiness: Option<u64>,
    /// No OOM kills in the group: it waits for memory instead
    /// (`--oom-kill-disable`; v1 only).
    pub oom_kill_disable: bool,
    /// Memory nodes the group may use (`--cpuset-mems`).
    pub cpuset_mems: Option<String>,
    /// The device nodes the group may use, as v1 rules (`c 1:3 rwm`,
    /// `b *:* m`): everything else is denied. `None` leaves the group's
    /// inherited access alone (`--privileged`, the experiments).
    pub devices: Option<Vec<String>>,
}

impl Limits {
    /// The memory-plus-swap total to enforce, with Docker's default.
    pub fn effective_swap(&self) -> Option<Swap> {
        match (self.memory, self.memory_swap) {
            (_, Some(s)) => Some(s),
            (Some(m), None) => Some(Swap::Total(m.saturating_mul(2))),
            (None, None) => None,
        }
    }

    /// Checks the limits against themselves and this host.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = self.memory_swappiness {
            if s > 100 {
                return Err(format!(
                    "invalid memory swappiness {s}: a value from 0 to 100"
                ));
            }
        }
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return Err(format!(
                    "memory limit {m} bytes is below the minimum of 6m (6 MiB)"
                ));
            }
        }
        if let Some(Swap::Total(total)) = self.memory_swap {
            match self.memory {
                None => return Err("--memory-swap needs --memory as well".into()),
                Some(m) if total < m => {
                    return Err(format!(
                        "memory+swap limit ({total} bytes) is smaller than the memory limit ({m} bytes): \
                         --memory-swap counts memory plus swap"
                    ))
                }
                _ => {}
            }
        }
        let host_cpus = host_cpus();
        if let Some(c) = self.cpus {
            if !(c > 0.0 && c.is_finite()) {
                return Err(format!("--cpus {c} must be a positive number"));
            }
            if c > host_cpus as f64 {
                return Err(format!(
                    "--cpus {c} is more than the {host_cpus} CPUs this host has"
                ));
            }
            if c < 0.01 {
                return Err(format!(
                    "--cpus {c} is below the minimum of 0.01 (a 1 ms quota per 100 ms)"
                ));
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(2..=262_144).contains(&s) {
                return Err(format!("--cpu-shares {s} is outside 2..262144"));
            }
        }
        if let Some(set) = &self.cpuset_cpus {
            for cpu in parse_cpu_list(set)? {
                if cpu >= host_cpus {
                    return Err(format!(
                        "--cpuset-cpus {set}: CPU {cpu} does not exist (this host has CPUs 0-{})",
                        host_cpus - 1
                    ));
                }
            }
        }
        if self.pids == Some(0) {
            return Err(
                "--pids-limit 0 would forbid the container's own first process; use 1 or more"
                    .into(),
            );
        }
        if let Some(w) = self.blkio_weight {
            if !(10..=1000).contains(&w) {
                return Err(format!("--blkio-weight {w} is outside 10..1000"));
            }
        }
        Ok(())
    }
}

/// CPUs available to this process.
pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parses a CPU list such as `0-2,5` into its CPU numbers.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("invalid CPU list {list:?}: use numbers and ranges like 0-2,5");
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.parse::<usize>().map_err(|_| bad())?,
                b.parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus)
}

/// Parses `--memory-swap`: `-1` for unlimited, else a size.
pub fn parse_swap(text: &str) -> Result<Swap, String> {
    if text.trim() == "-1" {
        Ok(Swap::Unlimited)
    } else {
        parse_size(text).map(Swap::Total)
    }
}

/// Parses `DEVICE:RATE` (`/dev/vda:10mb`) for the bps flags, or
/// `DEVICE:COUNT` for the iops flags.
pub fn parse_device_rate(text: &str, iops: bool) -> Result<DeviceRate, String> {
    let (path, rate) = text.rsplit_once(':').ok_or_else(|| {
        format!("invalid device limit {text:?}: use DEVICE:RATE, e.g. /dev/vda:10mb")
    })?;
    let per_second = if iops {
        rate.parse::<u64>()
            .map_err(|_| format!("invalid IO count {rate:?} in {text:?}"))?
    } else {
        parse_size(rate)?
    };
    let (major, minor) = block_device_numbers(Path::new(path))?;
    Ok(DeviceRate {
        major,
        minor,
        per_second,
    })
}

/// The `major:minor` of a block device node.
pub fn block_device_numbers(path: &Path) -> Result<(u64, u64), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_block_device() {
        return Err(format!("{} is not a block device", path.display()));
    }
    let rdev = meta.rdev();
    Ok((libc::major(rdev) as u64, libc::minor(rdev) as u64))
}

/// The block device holding `path`'s filesystem, as `major:minor`.
pub fn device_of(path: &Path) -> Result<(u64, u64), String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .dev();
    Ok((libc::major(dev) as u64, libc::minor(dev) as u64))
}

/// The limits of the group beyond the main ones (reservation, swappiness,
/// the OOM killer, memory nodes), written to whichever of the group's
/// directories has the file: v1's names or v2's. One the hierarchy lacks
/// is a warning, never silently dropped.
pub fn apply_extras(dirs: &[std::path::PathBuf], limits: &Limits) -> Result<Vec<String>, String> {
    let find = |names: &[&str]| {
        names
            .iter()
            .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
            .find(|p| p.exists())
    };
    let write = |path: std::path::PathBuf, value: &str| {
        std::fs::write(&path, value)
            .map_err(|e| format!("writing {value} to {}: {e}", path.display()))
    };
    let mut warnings = Vec::new();
    let mut set = |names: &[&str], value: Option<String>, flag: &str| -> Result<(), String> {
        let Some(value) = value else { return Ok(()) };
        match find(names) {
            Some(path) => write(path, &value),
            None => {
                warnings.push(format!(
                    "this cgroup hierarchy has no {}: {flag} is not applied",
                    names.join(" or ")
                ));
                Ok(())
            }
        }
    };
    set(
        &["memory.soft_limit_in_bytes", "memory.low"],
        limits.memory_reservation.map(|r| r.to_string()),
        "--memory-reservation",
    )?;
    set(
        &["memory.swappiness"],
        limits.memory_swappiness.map(|s| s.to_string()),
        "--memory-swappiness",
    )?;
    set(
        &["memory.oom_control"],
        limits.oom_kill_disable.then(|| "1".to_string()),
        "--oom-kill-disable",
    )?;
    set(
        &["cpuset.mems"],
        limits.cpuset_mems.clone(),
        "--cpuset-mems",
    )?;
    if let Some(rules) = &limits.devices {
        let v2 = dirs.iter().find(|d| d.join("cgroup.controllers").exists());
        match (find(&["devices.deny"]), v2) {
            // Deny everything, then allow each rule: one rule per write.
            (Some(deny), _) => {
                write(deny.clone(), "a")?;
                for rule in rules {
                    write(deny.with_file_name("devices.allow"), rule)?;
                }
            }
            // v2 has no files for it: a BPF program answers (crate::devices).
            (None, Some(dir)) => crate::devices::attach(dir, rules)?,
            (None, None) => warnings.push(
                "this cgroup hierarchy has no devices controller: device nodes are limited only by what the container's /dev holds"
                    .into(),
            ),
        }
    }
    Ok(warnings)
}

/// The default device rules of a container, as Docker's (runc's allowed
/// devices): creating any node (`m`), and using /dev/null, zero, full,
/// random, urandom, tty, console, ptmx, the pseudo-terminals and tun.
pub const DEFAULT_DEVICE_RULES: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// A device access as rules and `--device` give it: some of `r` (read),
/// `w` (write), `m` (mknod), at most three letters.
pub fn is_device_access(access: &str) -> bool {
    !access.is_empty() && access.len() <= 3 && access.bytes().all(|b| b"rwm".contains(&b))
}

/// Checks a device cgroup rule (`--device-cgroup-rule`): `a`, or
/// `TYPE MAJOR:MINOR ACCESS` with type `a`, `b` or `c`, numbers or `*`,
/// and access some of `rwm`.
pub fn parse_device_rule(rule: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "invalid device cgroup rule {rule:?}: use TYPE MAJOR:MINOR ACCESS, e.g. 'c 10:229 rwm' (type a, b or c; numbers or *; access some of r, w, m)"
        )
    };
    let parts: Vec<&str> = rule.split_whitespace().collect();
    if parts == ["a"] {
        return Ok("a".into());
    }
    let [kind, numbers, access] = parts[..] else {
        return Err(bad());
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| n == "*" || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !matches!(kind, "a" | "b" | "c")
        || !number(major)
        || !number(minor)
        || !is_device_access(access)
    {
        return Err(bad());
    }
    Ok(format!("{kind} {major}:{minor} {access}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules_are_checked_as_docker_does() {
        assert_eq!(parse_device_rule("c 10:229 rwm").unwrap(), "c 10:229 rwm");
        assert_eq!(parse_device_rule(" b  *:* m ").unwrap(), "b *:* m");
        assert_eq!(parse_device_rule("a").unwrap(), "a");
        for bad in [
            "",
            "c 10 rwm",
            "x 1:2 r",
            "c 1:2 rwx",
            "c 1:2",
            "c a:2 r",
            "c 1:2 rwmr",
        ] {
            assert!(parse_device_rule(bad).is_err(), "{bad:?}");
        }
        for rule in DEFAULT_DEVICE_RULES {
            assert_eq!(parse_device_rule(rule).unwrap(), rule);
        }
    }

    #[test]
    fn cpu_lists_and_swap() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), [0, 1, 2, 5]);
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert_eq!(parse_swap("-1").unwrap(), Swap::Unlimited);
        assert_eq!(parse_swap("1g").unwrap(), Swap::Total(1 << 30));
    }

    #[test]
    fn limits_beyond_the_host_are_refused_with_the_reason() {
        let too_many = Limits {
            cpus: Some(host_cpus() as f64 + 1.0),
            ..Default::default()
        };
        assert!(too_many
            .validate()
            .unwrap_err()
            .contains("CPUs this host has"));
        let tiny = Limits {
            memory: Some(1 << 20),
            ..Default::default()
        };
        assert!(tiny.validate().unwrap_err().contains("minimum"));
        let swap_below = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(Swap::Total(32 << 20)),
            ..Default::default()
        };
        assert!(swap_below
            .validate()
            .unwrap_err()
            .contains("smaller than the memory limit"));
        let cpuset = Limits {
            cpuset_cpus: Some(format!("{}", host_cpus())),
            ..Default::default()
        };
        assert!(cpuset.validate().unwrap_err().contains("does not exist"));
        assert_eq!(
            Limits {
                memory: Some(64 << 20),
                ..Default::default()
            }
            .effective_swap(),
            Some(Swap::Total(128 << 20))
        );
    }
}
