//! Where the cgroup hierarchies are, and where this process sits in them.
//!
//! Three layouts exist in the wild (see cgroups(7)):
//! - **v1**: one hierarchy per controller (or group of controllers),
//!   mounted under `/sys/fs/cgroup/<name>`; `/sys/fs/cgroup` is a tmpfs.
//! - **hybrid**: v1 as above, plus a cgroup2 mount at
//!   `/sys/fs/cgroup/unified` that holds no controllers (they are all bound
//!   to v1). Runtimes treat it as v1, and so do we.
//! - **v2** (unified): `/sys/fs/cgroup` itself is cgroup2; one tree, every
//!   controller.
//!
//! The layout is told apart the way runc does: by the filesystem type
//! (`statfs(2)` magic) of `/sys/fs/cgroup`.

use nix::sys::statfs::{statfs, FsType, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    V1,
    Hybrid,
    V2,
}

impl Mode {
    /// Whether the v1 driver runs on this layout (hybrid counts as v1).
    pub fn uses_v1(self) -> bool {
        matches!(self, Mode::V1 | Mode::Hybrid)
    }
}

// ANCHOR: mode_from_magic
// exercise 2.2: tell the cgroup layout from filesystem types
// hint: Three layouts exist: v1 (a tmpfs at /sys/fs/cgroup holding one mount
//   per controller), hybrid (the same, plus a cgroup2 mount at
//   /sys/fs/cgroup/unified that holds no controllers), and v2 (cgroup2 itself
//   at /sys/fs/cgroup). What is mounted where tells them apart.
// hint: `root` is the filesystem type (the statfs magic) of /sys/fs/cgroup,
//   `unified` that of /sys/fs/cgroup/unified, None when it does not exist. A
//   root that is neither cgroup2 nor tmpfs means no cgroups where we look:
//   None. Hybrid is driven as v1 (runc does the same), but it is its own mode.
// hint: statfs(2) "f_type" (CGROUP2_SUPER_MAGIC, TMPFS_MAGIC); cgroups(7)
//   "Cgroups version 2", and runc's libcontainer/cgroups "IsCgroup2UnifiedMode".
pub fn mode_from_magic(root: FsType, unified: Option<FsType>) -> Option<Mode> {
    if root == CGROUP2_SUPER_MAGIC {
        Some(Mode::V2)
    } else if root == TMPFS_MAGIC {
        Some(if unified == Some(CGROUP2_SUPER_MAGIC) {
            Mode::Hybrid
        } else {
            Mode::V1
        })
    } else {
        None
    }
}
// ANCHOR_END: mode_from_magic

/// The hierarchies of this host.
#[derive(Clone, Debug)]
pub struct Layout {
    pub mode: Mode,
    /// v1 controller name → its hierarchy's mount point.
    pub v1_mounts: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount (the root on v2, `unified/` on hybrid).
    pub v2_mount: Option<PathBuf>,
}

impl Layout {
    pub fn detect() -> Result<Layout, String> {
        let kind = |p: &str| statfs(p).map(|s| s.filesystem_type());
        let root =
            kind(CGROUP_ROOT).map_err(|e| format!("{CGROUP_ROOT}: {e}: are cgroups mounted?"))?;
        let unified = kind("/sys/fs/cgroup/unified").ok();
        let mode = mode_from_magic(root, unified).ok_or_else(|| {
            format!("{CGROUP_ROOT} is neither cgroup2 nor a tmpfs of v1 hierarchies")
        })?;
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let v1_mounts = if mode.uses_v1() {
            v1_mounts(&mountinfo)
        } else {
            BTreeMap::new()
        };
        let v2_mount = match mode {
            Mode::V2 => Some(PathBuf::from(CGROUP_ROOT)),
            Mode::Hybrid => Some(PathBuf::from("/sys/fs/cgroup/unified")),
            Mode::V1 => None,
        };
        Ok(Layout {
            mode,
            v1_mounts,
            v2_mount,
        })
    }
}

/// v1 hierarchies from `/proc/self/mountinfo`: controller → mount point.
/// Co-mounted controllers (`cpu,cpuacct`) map to the same directory.
pub fn v1_mounts(mountinfo: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split(' ');
        if right.next() != Some("cgroup") {
            continue;
        }
        let (Some(point), Some(options)) = (left.split(' ').nth(4), right.nth(1)) else {
            continue;
        };
        for option in options.split(',') {
            if KNOWN_V1.contains(&option) {
                out.insert(option.to_string(), PathBuf::from(point));
            }
        }
    }
    out
}

const KNOWN_V1: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices", "hugetlb",
];

/// Where a process sits: v1 controller → path, and its v2 path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    pub v1: BTreeMap<String, String>,
    pub v2: Option<String>,
}

/// Parses `/proc/PID/cgroup`: lines `ID:controllers:path`; the v2 line has
/// ID 0 and no controllers; `name=systemd`-style named hierarchies are
/// skipped.
pub fn parse_own_cgroups(text: &str) -> OwnCgroups {
    let mut own = OwnCgroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            own.v2 = Some(path.to_string());
        } else {
            for c in controllers.split(',').filter(|c| !c.starts_with("name=")) {
                own.v1.insert(c.to_string(), path.to_string());
            }
        }
    }
    own
}

/// `mount` joined with a cgroup path such as `/a/b` (which is absolute).
pub fn under(mount: &Path, cgroup_path: &str) -> PathBuf {
    mount.join(cgroup_path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_mounts_come_from_mountinfo_super_options() {
        let info =
            "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n\
                    31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    33 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n";
        let m = v1_mounts(info);
        assert_eq!(m["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m["cpu"], m["cpuacct"]);
        assert_eq!(m.len(), 3);
    }
}
