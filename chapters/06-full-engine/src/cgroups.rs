//! Where the engine puts its containers' cgroups, decided once as the
//! daemon starts, and which limits can be had there.
//!
//! - **cgroup v1 and hybrid hosts**: beside the daemon's own cgroup in each
//!   hierarchy, as chapter 02 makes them (a monitor is the daemon's child,
//!   so it starts where the daemon is).
//! - **cgroup v2, as root**: under `/mini-docker` at the top of the tree, as
//!   dockerd's cgroupfs driver uses `/docker`. Not under the daemon's own
//!   cgroup: that may hold other processes (a login session's scope), and
//!   a v2 cgroup with processes of its own cannot hand controllers down to
//!   children (the no-internal-process rule).
//! - **cgroup v2, rootless**: in the subtree the host delegates to the user,
//!   where it does. Delegation is ownership: the user owns the cgroup's
//!   directory and its `cgroup.procs` and `cgroup.subtree_control`
//!   (systemd's `Delegate=yes` does this for `user@UID.service`, for a
//!   user service, or for `systemd-run --user --scope -p Delegate=yes`).
//!   The daemon, started in such a cgroup, moves itself into a leaf of it
//!   (`daemon`), hands down what controllers it was given, and makes its
//!   containers' cgroups under `mini-docker`. From then on the delegated
//!   cgroup may hold no process, so a daemon started again goes into the
//!   `daemon` leaf, and knows the cgroup above it as its delegated one.
//! - **rootless otherwise**: no cgroup at all, and every limit refused with
//!   one sentence saying why.

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// Set by the daemon on cgroup v2: the cgroup its containers' go under.
/// Its monitors inherit it.
pub const ENV: &str = "MINI_DOCKER_CGROUP_PARENT";

/// The leaf of a delegated cgroup the daemon moves itself into.
const LEAF: &str = "daemon";

/// Where containers' cgroups go; see the module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// v1 and hybrid: under the daemon's own cgroups, as chapter 02 makes
    /// them.
    #[default]
    Own,
    /// v2 as root: in this directory (`/mini-docker`), every controller
    /// handed down to it.
    V2(PathBuf),
    /// v2 rootless: in this directory of a subtree the host delegates, with
    /// the controllers the delegation hands down.
    Delegated(PathBuf),
    /// No cgroup can be had; the reason, as a sentence's end.
    Unavailable(String),
}

/// The cgroup v2 mount, where the host has only v2.
fn v2_mount() -> Option<PathBuf> {
    let layout = chapter_02::Layout::detect().ok()?;
    (layout.mode == chapter_02::Mode::V2)
        .then_some(layout.v2_mount)
        .flatten()
}

/// This process's v2 cgroup, as a directory under `mount`.
fn own_v2(mount: &Path) -> Result<PathBuf> {
    let own = chapter_02::layout::parse_own_cgroups(
        &std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?,
    );
    let path = own
        .v2
        .ok_or_else(|| anyhow!("/proc/self/cgroup names no v2 cgroup"))?;
    Ok(chapter_02::layout::under(mount, &path))
}

/// Whether this process may manage `dir` as a delegated cgroup: write the
/// directory (to make children), its `cgroup.procs` (to move processes)
/// and its `cgroup.subtree_control` (to hand controllers down).
fn writable(dir: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    [
        dir.to_path_buf(),
        dir.join("cgroup.procs"),
        dir.join("cgroup.subtree_control"),
    ]
    .iter()
    .all(|p| access(p, AccessFlags::W_OK).is_ok())
}

/// The daemon's decision, made before it starts threads or children (a
/// rootless daemon moves itself, and its later children follow).
/// Sets [`ENV`] for the monitors on v2. An error is a root daemon's that
/// cannot prepare its v2 parent.
pub fn prepare(rootless: bool) -> Result<Placement> {
    let Some(mount) = v2_mount() else {
        return Ok(if rootless {
            Placement::Unavailable(format!(
                "this daemon runs rootless, and the host delegates no cgroup v2 subtree to uid {uid} \
                 (it has cgroup v1 controllers, which cannot be delegated: that needs cgroup v2 with \
                 systemd's user@{uid}.service delegating its controllers)",
                uid = nix::unistd::geteuid()
            ))
        } else {
            Placement::Own
        });
    };
    let placement = if rootless {
        delegated(&mount)?
    } else {
        let parent = mount.join("mini-docker");
        chapter_02::v2::prepare_parent(&mount, &parent)
            .map_err(|e| anyhow!("preparing {} for containers: {e}", parent.display()))?;
        Placement::V2(parent)
    };
    if let Placement::V2(parent) | Placement::Delegated(parent) = &placement {
        // SAFETY: called while the daemon has one thread.
        unsafe { std::env::set_var(ENV, parent) };
    }
    Ok(placement)
}

/// Rootless on v2: the daemon's own cgroup, if the user owns it.
fn delegated(mount: &Path) -> Result<Placement> {
    let uid = nix::unistd::geteuid();
    let mut own = own_v2(mount)?;
    // Started again in the leaf an earlier daemon moved itself into (once
    // its delegated cgroup hands controllers down it may hold no process,
    // so nothing can be started there): the delegated cgroup is above.
    if own.file_name().is_some_and(|n| n == LEAF) {
        if let Some(above) = own.parent().filter(|a| a.starts_with(mount) && writable(a)) {
            own = above.to_path_buf();
        }
    }
    let shown = own
        .strip_prefix(mount)
        .unwrap_or(&own)
        .display()
        .to_string();
    if !writable(&own) {
        return Ok(Placement::Unavailable(format!(
            "this daemon runs rootless, and the host delegates no cgroup v2 subtree to uid {uid}: \
             its cgroup /{shown} is not the user's to manage (start the daemon in a delegated \
             one: systemd-run --user --scope -p Delegate=yes mini-dockerd, or a user service \
             with Delegate=yes)"
        )));
    }
    // A leaf for the daemon (and the holder, slirp4netns and monitors it
    // starts), so that its cgroup holds no process and can hand down.
    let leaf = own.join(LEAF);
    if !leaf.is_dir() {
        chapter_02::files::make_dir(&leaf).map_err(|e| anyhow!(e))?;
    }
    chapter_02::files::write(&leaf.join("cgroup.procs"), &std::process::id().to_string())
        .map_err(|e| anyhow!("moving the daemon into {}: {e}", leaf.display()))?;
    let parent = own.join("mini-docker");
    if let Err(e) = chapter_02::v2::prepare_parent(&own, &parent) {
        let others: Vec<String> = chapter_02::files::procs(&own)
            .iter()
            .map(|p| p.to_string())
            .collect();
        return Ok(Placement::Unavailable(if others.is_empty() {
            format!(
                "this daemon runs rootless, and its delegated cgroup /{shown} cannot hand \
                 controllers down: {e}"
            )
        } else {
            format!(
                "this daemon runs rootless, and its delegated cgroup /{shown} holds other \
                 processes ({}), so it cannot hand controllers down to containers (cgroup v2's \
                 no-internal-process rule): start the daemon in a cgroup of its own \
                 (systemd-run --user --scope -p Delegate=yes mini-dockerd)",
                others.join(", ")
            )
        }));
    }
    Ok(Placement::Delegated(parent))
}

/// In a monitor: what its daemon decided.
pub fn inherited() -> Placement {
    match (std::env::var_os(ENV), crate::rootless::active()) {
        (Some(dir), false) => Placement::V2(PathBuf::from(dir)),
        (Some(dir), true) => Placement::Delegated(PathBuf::from(dir)),
        (None, true) => Placement::Unavailable(String::new()),
        (None, false) => Placement::Own,
    }
}

impl Placement {
    /// The directory containers' cgroups go in, on v2.
    pub fn v2_parent(&self) -> Option<&Path> {
        match self {
            Placement::V2(dir) | Placement::Delegated(dir) => Some(dir),
            _ => None,
        }
    }
}

/// The resource limits `h` asks for, by their `docker run` flags.
pub fn limits_asked(h: &crate::api::HostConfig) -> Vec<&'static str> {
    let set = |flag: &'static str, on: bool| on.then_some(flag);
    let any = |list: &Option<Vec<crate::api::ThrottleDevice>>| {
        list.as_ref().is_some_and(|l| !l.is_empty())
    };
    [
        set("-m (--memory)", h.memory > 0),
        set("--memory-swap", h.memory_swap > 0),
        set("--memory-reservation", h.memory_reservation > 0),
        set(
            "--memory-swappiness",
            h.memory_swappiness.is_some_and(|s| s >= 0),
        ),
        set("--oom-kill-disable", h.oom_kill_disable == Some(true)),
        set("--cpus", h.nano_cpus > 0),
        set("--cpu-shares", h.cpu_shares > 0),
        set("--cpuset-cpus", !h.cpuset_cpus.is_empty()),
        set("--cpuset-mems", !h.cpuset_mems.is_empty()),
        set("--pids-limit", h.pids_limit.is_some_and(|p| p > 0)),
        set("--blkio-weight", h.blkio_weight > 0),
        set("--device-read-bps", any(&h.blkio_device_read_bps)),
        set("--device-write-bps", any(&h.blkio_device_write_bps)),
        set("--device-read-iops", any(&h.blkio_device_read_iops)),
        set("--device-write-iops", any(&h.blkio_device_write_iops)),
        set(
            "--device-cgroup-rule",
            h.device_cgroup_rules
                .as_ref()
                .is_some_and(|r| !r.is_empty()),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The cgroup controller a limit needs, by its `docker run` flag.
fn controller_of(flag: &str) -> &'static str {
    match flag {
        f if f.contains("memory") || f.starts_with("-m") || f.contains("oom") => "memory",
        "--cpus" | "--cpu-shares" => "cpu",
        "--cpuset-cpus" | "--cpuset-mems" => "cpuset",
        "--pids-limit" => "pids",
        "--device-cgroup-rule" => "devices",
        _ => "io",
    }
}

impl Placement {
    /// The sentence a container asking for limit `flag` is refused with, or
    /// none where it can be had: none without a cgroup; rootless, none whose
    /// controller the delegation lacks, and no device rules (they are a BPF
    /// program, which only the host's root may load).
    pub fn refusal(&self, flag: &str) -> Option<String> {
        match self {
            Placement::Own | Placement::V2(_) => None,
            Placement::Unavailable(why) => Some(format!("{flag} cannot be applied: {why}")),
            Placement::Delegated(parent) => {
                let controller = controller_of(flag);
                if controller == "devices" {
                    return Some(format!(
                        "{flag} cannot be applied: this daemon runs rootless, and cgroup v2's device \
                         rules are a BPF program, which only the host's root may load"
                    ));
                }
                let has = chapter_02::v2::handed_down(parent);
                (!has.iter().any(|c| c == controller)).then(|| {
                    format!(
                        "{flag} cannot be applied: this daemon runs rootless, and the cgroup the host \
                         delegates to it has no {controller} controller (it hands down: {}); the \
                         host would have to delegate {controller} too (systemd: Delegate={controller} \
                         in user@.service)",
                        if has.is_empty() {
                            "none".to_string()
                        } else {
                            has.join(" ")
                        }
                    )
                })
            }
        }
    }

    /// The first refusal of the limits `h` asks for.
    pub fn refuse_limits(&self, h: &crate::api::HostConfig) -> Option<String> {
        limits_asked(h)
            .into_iter()
            .find_map(|flag| self.refusal(flag))
    }

    /// The sentence for `what` (pause, update), which needs a cgroup of any
    /// kind, where there is none.
    pub fn without_cgroup(&self, what: &str) -> Option<String> {
        match self {
            Placement::Unavailable(_) => self.refusal(what),
            _ => None,
        }
    }

    /// Docker's `CgroupDriver`: `none` where there is no cgroup.
    pub fn driver(&self) -> &'static str {
        match self {
            Placement::Unavailable(_) => "none",
            _ => "cgroupfs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_flag_has_its_controller() {
        for (flag, controller) in [
            ("-m (--memory)", "memory"),
            ("--memory-swap", "memory"),
            ("--oom-kill-disable", "memory"),
            ("--cpus", "cpu"),
            ("--cpuset-mems", "cpuset"),
            ("--pids-limit", "pids"),
            ("--blkio-weight", "io"),
            ("--device-read-bps", "io"),
            ("--device-cgroup-rule", "devices"),
        ] {
            assert_eq!(controller_of(flag), controller, "{flag}");
        }
    }

    #[test]
    fn a_delegated_parent_refuses_what_it_was_not_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.subtree_control"), "memory pids\n").unwrap();
        let placement = Placement::Delegated(dir.path().to_path_buf());
        assert_eq!(placement.refusal("-m (--memory)"), None);
        assert_eq!(placement.refusal("--pids-limit"), None);
        let cpus = placement.refusal("--cpus").unwrap();
        assert!(
            cpus.contains("no cpu controller") && cpus.contains("memory pids"),
            "{cpus}"
        );
        assert!(placement
            .refusal("--device-cgroup-rule")
            .unwrap()
            .contains("BPF"));
        // As root the parent's controllers are the host's: nothing refused.
        assert_eq!(
            Placement::V2(dir.path().to_path_buf()).refusal("--cpus"),
            None
        );
    }
}
