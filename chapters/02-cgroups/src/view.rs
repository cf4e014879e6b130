//! What a container sees at `/sys/fs/cgroup`: this host's hierarchies,
//! each showing the container's own cgroup at its root, for chapter 01 to
//! mount inside ([`chapter_01::cgroupfs`]).
//!
//! A program reads its limits there (`memory.limit_in_bytes` on v1,
//! `memory.max` on v2): the JVM, Go's runtime and Node size themselves
//! from those files. With a cgroup namespace of its own (`--cgroupns
//! private`, Docker's default on v2) each hierarchy is mounted fresh and
//! the namespace makes the container's cgroup its root; without one
//! (`--cgroupns host`, the default on v1) the container's directory in the
//! host's tree is bound there instead, as runc does.

use chapter_01::cgroupfs::{CgroupFs, Source, Tree};
use std::path::{Path, PathBuf};

use crate::layout::{under, Mode, CGROUP_ROOT};

/// One cgroup mount of this host, from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mounted {
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

fn mounted(mountinfo: &str) -> Vec<Mounted> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let fstype = *right.first()?;
            // Only whole hierarchies (root "/") under /sys/fs/cgroup.
            let (root, point) = (*left.get(3)?, *left.get(4)?);
            let wanted = matches!(fstype, "cgroup" | "cgroup2")
                && root == "/"
                && Path::new(point).starts_with(CGROUP_ROOT);
            let super_options = right.get(2)?.split(',').map(str::to_string).collect();
            wanted.then(|| Mounted {
                point: PathBuf::from(point),
                fstype: fstype.to_string(),
                super_options,
            })
        })
        .collect()
}

/// The host facts a view is made of.
pub struct Host {
    pub mode: Mode,
    pub mountinfo: String,
    /// This process's `/proc/self/cgroup` (the container starts there, then
    /// moves into its own cgroup in some hierarchies).
    pub own_cgroup: String,
    /// The symlinks in `/sys/fs/cgroup` (`cpu -> cpu,cpuacct`): (name, target).
    pub links: Vec<(String, String)>,
}

impl Host {
    /// Reads this host's facts.
    pub fn read() -> Result<Host, String> {
        let mode = crate::Layout::detect()?.mode;
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
        let mut links = Vec::new();
        if mode.uses_v1() {
            for entry in std::fs::read_dir(CGROUP_ROOT).map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                if let Ok(target) = std::fs::read_link(entry.path()) {
                    links.push((
                        entry.file_name().to_string_lossy().into_owned(),
                        target.to_string_lossy().into_owned(),
                    ));
                }
            }
            links.sort();
        }
        Ok(Host {
            mode,
            mountinfo: read("/proc/self/mountinfo")?,
            own_cgroup: read("/proc/self/cgroup")?,
            links,
        })
    }
}

/// The container's `/sys/fs/cgroup` at `target` (inside its rootfs):
/// `dirs` are the container's cgroup directories (one per hierarchy it has
/// its own cgroup in); `private` says whether it gets a cgroup namespace.
pub fn view(
    host: &Host,
    dirs: &[PathBuf],
    private: bool,
    target: PathBuf,
    readonly: bool,
) -> Result<CgroupFs, String> {
    let mounts = mounted(&host.mountinfo);
    let mut hierarchies = Vec::new();
    for line in host.own_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        let found = mounts.iter().find(|m| {
            if wanted.is_empty() {
                m.fstype == "cgroup2"
            } else {
                m.fstype == "cgroup"
                    && wanted
                        .iter()
                        .all(|c| m.super_options.iter().any(|o| o == c))
            }
        });
        let Some(m) = found else { continue };
        let source = if private {
            Source::Mount {
                fstype: m.fstype.clone(),
                options: controllers.to_string(),
            }
        } else {
            // The container's own directory in this hierarchy, or where it
            // starts (ours) in the hierarchies it has no cgroup of its own in.
            let own = dirs.iter().find(|d| d.starts_with(&m.point));
            Source::Bind(own.cloned().unwrap_or_else(|| under(&m.point, path)))
        };
        let name = m
            .point
            .strip_prefix(CGROUP_ROOT)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        hierarchies.push((name, source));
    }
    let tree = match host.mode {
        Mode::V2 => match hierarchies.into_iter().find(|(name, _)| name.is_empty()) {
            Some((_, source)) => Tree::Unified(source),
            None => return Err(format!("no cgroup2 mount at {CGROUP_ROOT} in mountinfo")),
        },
        Mode::V1 | Mode::Hybrid => {
            let mut dirs: Vec<(String, Source)> = hierarchies
                .into_iter()
                .filter(|(name, _)| !name.is_empty() && !name.contains('/'))
                .collect();
            dirs.sort_by(|a, b| a.0.cmp(&b.0));
            dirs.dedup_by(|a, b| a.0 == b.0);
            let links = host
                .links
                .iter()
                .filter(|(_, to)| dirs.iter().any(|(name, _)| name == to))
                .cloned()
                .collect();
            Tree::Hierarchies { dirs, links }
        }
    };
    Ok(CgroupFs {
        target,
        tree,
        readonly,
    })
}

/// [`view`] for this host, for a container whose cgroup is `cgroup`.
pub fn for_container(
    cgroup: &dyn crate::Cgroup,
    private: bool,
    target: PathBuf,
    readonly: bool,
) -> Result<CgroupFs, String> {
    view(&Host::read()?, &cgroup.dirs(), private, target, readonly)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
50 23 0:32 /docker /mnt/elsewhere rw - cgroup cgroup rw,memory
";
    const OWN: &str = "3:name=systemd:/user.slice\n2:memory:/\n1:cpu,cpuacct:/\n0::/user.slice\n";

    fn host(mode: Mode, mountinfo: &str, own: &str) -> Host {
        Host {
            mode,
            mountinfo: mountinfo.into(),
            own_cgroup: own.into(),
            links: vec![
                ("cpu".into(), "cpu,cpuacct".into()),
                ("cpuacct".into(), "cpu,cpuacct".into()),
                ("net_cls".into(), "net_cls,net_prio".into()),
            ],
        }
    }

    #[test]
    fn v1_private_mounts_every_hierarchy_fresh_with_its_controllers() {
        let fs = view(
            &host(Mode::Hybrid, HYBRID, OWN),
            &[],
            true,
            "/r/sys/fs/cgroup".into(),
            true,
        )
        .unwrap();
        let fresh = |fstype: &str, options: &str| Source::Mount {
            fstype: fstype.into(),
            options: options.into(),
        };
        assert_eq!(
            fs.tree,
            Tree::Hierarchies {
                dirs: vec![
                    ("cpu,cpuacct".into(), fresh("cgroup", "cpu,cpuacct")),
                    ("memory".into(), fresh("cgroup", "memory")),
                    ("systemd".into(), fresh("cgroup", "name=systemd")),
                    ("unified".into(), fresh("cgroup2", "")),
                ],
                // Only links to hierarchies that are there.
                links: vec![
                    ("cpu".into(), "cpu,cpuacct".into()),
                    ("cpuacct".into(), "cpu,cpuacct".into()),
                ],
            }
        );
    }

    #[test]
    fn v1_host_binds_the_containers_directories_and_ours_elsewhere() {
        let dirs = [PathBuf::from("/sys/fs/cgroup/memory/mini-docker-1")];
        let fs = view(
            &host(Mode::Hybrid, HYBRID, OWN),
            &dirs,
            false,
            "/r/sys/fs/cgroup".into(),
            true,
        )
        .unwrap();
        let Tree::Hierarchies { dirs, .. } = fs.tree else {
            panic!("v1 has hierarchies")
        };
        let bind = |p: &str| Source::Bind(p.into());
        assert_eq!(
            dirs[1],
            ("memory".into(), bind("/sys/fs/cgroup/memory/mini-docker-1"))
        );
        assert_eq!(
            dirs[2],
            ("systemd".into(), bind("/sys/fs/cgroup/systemd/user.slice"))
        );
        assert_eq!(
            dirs[3],
            ("unified".into(), bind("/sys/fs/cgroup/unified/user.slice"))
        );
    }

    #[test]
    fn v2_is_one_mount_of_the_unified_tree() {
        let info = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let dirs = [PathBuf::from("/sys/fs/cgroup/user.slice/mini-docker-1")];
        let private = view(
            &host(Mode::V2, info, "0::/user.slice\n"),
            &dirs,
            true,
            "/r/sys/fs/cgroup".into(),
            true,
        )
        .unwrap();
        assert_eq!(
            private.tree,
            Tree::Unified(Source::Mount {
                fstype: "cgroup2".into(),
                options: String::new()
            })
        );
        let shared = view(
            &host(Mode::V2, info, "0::/user.slice\n"),
            &dirs,
            false,
            "/r/sys/fs/cgroup".into(),
            true,
        )
        .unwrap();
        assert_eq!(shared.tree, Tree::Unified(Source::Bind(dirs[0].clone())));
    }
}
