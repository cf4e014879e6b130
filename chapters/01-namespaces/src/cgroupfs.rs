//! The cgroup namespace, and the `/sys/fs/cgroup` a container sees.
//!
//! A cgroup namespace changes one thing: which cgroup counts as the root
//! when a process of it reads `/proc/self/cgroup` or mounts a cgroup
//! filesystem. That root is the cgroup the process is in at the moment the
//! namespace is made (cgroup_namespaces(7)). So the child does not get it
//! from `clone(2)` (it would be rooted where the parent sits) but unshares
//! it after the go, once the parent has moved it into its own cgroup
//! (chapter 02 does that in the gap before the go). runc does the same.
//!
//! What `/sys/fs/cgroup` shows inside is then a set of mounts, read-only:
//! - **v2**: one cgroup2 mount, the container's cgroup at its root;
//! - **v1** (and hybrid): a tmpfs holding one mount per hierarchy
//!   (`memory`, `cpu`, … and the controller-less `name=systemd` and
//!   `unified` ones), plus the host's symlinks (`cpuacct -> cpu,cpuacct`).
//!
//! Each mount is either a cgroup filesystem mounted fresh (the cgroup
//! namespace makes its root the container's cgroup) or, without a cgroup
//! namespace of its own (`--cgroupns host`), a bind of the container's
//! directory in the host's tree: the same files at the same paths, but
//! `/proc/self/cgroup` still names the host's full path.

use crate::sys::Sys;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::ffi::CString;
use std::path::PathBuf;

/// Where one mount under `/sys/fs/cgroup` comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A fresh cgroup filesystem (`cgroup` with the hierarchy's controllers
    /// or `name=` as options, or `cgroup2`): needs a cgroup namespace of
    /// the container's own to show its cgroup at the root.
    Mount { fstype: String, options: String },
    /// A bind of this host directory (the container's cgroup in one
    /// hierarchy of the host's tree).
    Bind(PathBuf),
}

/// The tree a container sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tree {
    /// cgroup v2: `/sys/fs/cgroup` is the one mount.
    Unified(Source),
    /// cgroup v1: a tmpfs with one directory per hierarchy (its name as on
    /// the host: `memory`, `cpu,cpuacct`, `systemd`, `unified`) and the
    /// host's symlinks between them, as (link name, target).
    Hierarchies {
        dirs: Vec<(String, Source)>,
        links: Vec<(String, String)>,
    },
}

/// The container's `/sys/fs/cgroup`: `target` is its path on the host
/// inside the rootfs (mounted after /sys itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupFs {
    pub target: PathBuf,
    pub tree: Tree,
    /// Read-only, as Docker mounts it except for `--privileged`.
    pub readonly: bool,
}

#[derive(Clone, Debug)]
enum PreparedSource {
    Mount { fstype: CString, options: CString },
    Bind(CString),
}

#[derive(Clone, Debug)]
enum PreparedTree {
    Unified(PreparedSource),
    Hierarchies {
        dirs: Vec<(CString, PreparedSource)>,
        links: Vec<(CString, CString)>,
    },
}

/// A [`CgroupFs`] with every string and path made before the clone.
#[derive(Clone, Debug)]
pub struct Prepared {
    target: CString,
    tree: PreparedTree,
    readonly: bool,
}

fn c(s: &str) -> CString {
    CString::new(s).expect("validated: no NUL in cgroup names")
}

fn c_path(p: &std::path::Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("validated: no NUL in mount paths")
}

impl Prepared {
    pub fn new(fs: &CgroupFs) -> Prepared {
        let source = |s: &Source| match s {
            Source::Mount { fstype, options } => PreparedSource::Mount {
                fstype: c(fstype),
                options: c(options),
            },
            Source::Bind(dir) => PreparedSource::Bind(c_path(dir)),
        };
        let tree = match &fs.tree {
            Tree::Unified(s) => PreparedTree::Unified(source(s)),
            Tree::Hierarchies { dirs, links } => PreparedTree::Hierarchies {
                dirs: dirs
                    .iter()
                    .map(|(name, s)| (c_path(&fs.target.join(name)), source(s)))
                    .collect(),
                links: links
                    .iter()
                    .map(|(link, target)| (c(target), c_path(&fs.target.join(link))))
                    .collect(),
            },
        };
        Prepared {
            target: c_path(&fs.target),
            tree,
            readonly: fs.readonly,
        }
    }
}

/// Nothing under `/sys/fs/cgroup` runs or is a device.
const SAFE: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Mounts the container's `/sys/fs/cgroup` (see the module's text). Runs
/// inside the new mount namespace, after sysfs is mounted at /sys and,
/// for fresh cgroup mounts, after the cgroup namespace is unshared.
pub fn mount_cgroupfs(sys: &mut impl Sys, p: &Prepared) -> Result<(), Errno> {
    let ro = if p.readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    match &p.tree {
        PreparedTree::Unified(source) => attach(sys, source, &p.target, SAFE | ro),
        PreparedTree::Hierarchies { dirs, links } => {
            sys.mount(
                Some(c"tmpfs"),
                &p.target,
                Some(c"tmpfs"),
                SAFE,
                Some(c"mode=755"),
            )?;
            for (dir, source) in dirs {
                sys.mkdir(dir, 0o555)?;
                attach(sys, source, dir, SAFE | ro)?;
            }
            for (target, link) in links {
                sys.symlink(target, link)?;
            }
            if p.readonly {
                sys.mount(
                    Some(c"tmpfs"),
                    &p.target,
                    Some(c"tmpfs"),
                    MsFlags::MS_REMOUNT | SAFE | ro,
                    Some(c"mode=755"),
                )?;
            }
            Ok(())
        }
    }
}

fn attach(
    sys: &mut impl Sys,
    source: &PreparedSource,
    at: &std::ffi::CStr,
    flags: MsFlags,
) -> Result<(), Errno> {
    match source {
        PreparedSource::Mount { fstype, options } => sys.mount(
            Some(fstype),
            at,
            Some(fstype),
            flags,
            Some(options.as_c_str()).filter(|o| !o.is_empty()),
        ),
        PreparedSource::Bind(dir) => {
            sys.mount(
                Some(dir),
                at,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            // A bind mount takes its flags only on a remount.
            sys.mount(
                Some(at),
                at,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Recorder;

    fn steps(fs: &CgroupFs) -> String {
        let mut r = Recorder::new();
        mount_cgroupfs(&mut r, &Prepared::new(fs)).unwrap();
        r.calls.iter().map(|c| format!("{c}\n")).collect()
    }

    #[test]
    fn v1_with_a_namespace_mounts_each_hierarchy_fresh_under_a_read_only_tmpfs() {
        let fresh = |options: &str| Source::Mount {
            fstype: "cgroup".into(),
            options: options.into(),
        };
        let fs = CgroupFs {
            target: "/rootfs/sys/fs/cgroup".into(),
            tree: Tree::Hierarchies {
                dirs: vec![
                    ("cpu,cpuacct".into(), fresh("cpu,cpuacct")),
                    ("memory".into(), fresh("memory")),
                    ("systemd".into(), fresh("name=systemd")),
                ],
                links: vec![("cpu".into(), "cpu,cpuacct".into())],
            },
            readonly: true,
        };
        insta::assert_snapshot!(steps(&fs));
    }

    #[test]
    fn v2_without_a_namespace_binds_the_containers_directory() {
        let fs = CgroupFs {
            target: "/rootfs/sys/fs/cgroup".into(),
            tree: Tree::Unified(Source::Bind("/sys/fs/cgroup/mini-docker-1".into())),
            readonly: true,
        };
        insta::assert_snapshot!(steps(&fs));
    }
}
