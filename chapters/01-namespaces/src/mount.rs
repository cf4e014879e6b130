//! Mount namespace: a private copy of the mount table, and the switch to the
//! container's own root filesystem.
//!
//! Three kernel facts shape the steps (see mount_namespaces(7), pivot_root(2)):
//! 1. A new mount namespace starts as a copy whose mounts may still be
//!    *shared* with the host's: a mount inside would appear outside. So the
//!    first step makes every mount private.
//! 2. `pivot_root` needs the new root to be a mount point: the rootfs
//!    directory is bind-mounted onto itself.
//! 3. `chroot` only changes where path lookup starts; the old root stays
//!    reachable. `pivot_root` swaps the root *mount*, and detaching the old
//!    one leaves nothing to climb back to.
//!
//! Between the bind and the pivot the child works *inside* the rootfs
//! directory, with relative paths (`proc`, `dev/null`): they are fixed
//! strings, so the child needs no memory to build paths, and none can
//! point anywhere but into the rootfs.

use crate::spec::ExtraMount;
use crate::sys::Sys;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::ffi::{CStr, CString};

// ANCHOR: isolate_mounts
// exercise 1.11: make the mount table private, and the rootfs a mount point to stand in
// builds on: 1.9
// hint: Two problems, in order. The new mount namespace is a copy whose mounts
//   may still propagate events to the host's: stop that, for every mount at
//   once, first. Then pivot_root will need the rootfs to be a mount point, and
//   it is only a directory: mount it onto itself (recursively: what is mounted
//   below it comes along).
// hint: After the bind, the current directory still lies on the mount *under*
//   the bind: change into `root` again, so the later relative paths (proc,
//   dev) land on the new mount. Without a rootfs (`root` is None) only the
//   first step applies. A propagation change has no source, type or data.
// hint: mount_namespaces(7) "Shared subtrees" (MS_REC | MS_PRIVATE on "/");
//   mount(2) "Creating a bind mount" (MS_BIND | MS_REC); pivot_root(2) NOTES.
pub fn isolate_mounts(sys: &mut impl Sys, root: Option<&CStr>) -> Result<(), Errno> {
    sys.mount(
        None,
        c"/",
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    if let Some(root) = root {
        sys.mount(
            Some(root),
            root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        sys.chdir(root)?;
    }
    Ok(())
}
// ANCHOR_END: isolate_mounts

// ANCHOR: pivot_into
// exercise 1.14: swap the root mount for the rootfs and detach the old one
// builds on: 1.11, 1.12, 1.13
// hint: The current directory is the rootfs, a mount point (1.10). pivot_root
//   makes it the new "/" and puts the old root somewhere; until the old root
//   is unmounted, every host file is still a path away.
// hint: The man page's trick needs no directory for the old root: with both
//   arguments ".", the old root is stacked on top of the new one at "/"; an
//   unmount of "." then takes the top one, the old root. Lazily (MNT_DETACH):
//   its mounts are busy. Finally make "/" the current directory, which now
//   means the new root.
// hint: pivot_root(2), NOTES ("pivot_root(".", ".")") and EXAMPLES; umount2(2).
pub fn pivot_into(sys: &mut impl Sys) -> Result<(), Errno> {
    sys.pivot_root(c".", c".")?;
    sys.umount2(c".", MntFlags::MNT_DETACH)?;
    sys.chdir(c"/")
}
// ANCHOR_END: pivot_into

/// The insecure way, kept to show why it is insecure: `chroot` into the
/// current directory (the rootfs). A root process inside can walk back out
/// (the escape experiment).
pub fn chroot_into(sys: &mut impl Sys) -> Result<(), Errno> {
    sys.chroot(c".")?;
    sys.chdir(c"/")
}

/// A volume, bind or tmpfs mount with its strings made before the clone.
#[derive(Clone, Debug)]
pub enum Prepared {
    Bind {
        source: CString,
        target: CString,
        readonly: bool,
    },
    Tmpfs {
        target: CString,
        options: CString,
    },
    Sysfs {
        target: CString,
        readonly: bool,
    },
    Device {
        source: CString,
        target: CString,
        parents: Vec<CString>,
    },
}

fn c_path(p: &std::path::Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("validated: no NUL in mount paths")
}

/// Prepares `mounts` for [`extra_mounts`].
pub fn prepare(mounts: &[ExtraMount]) -> Vec<Prepared> {
    mounts
        .iter()
        .map(|m| match m {
            ExtraMount::Bind {
                source,
                target,
                readonly,
            } => Prepared::Bind {
                source: c_path(source),
                target: c_path(target),
                readonly: *readonly,
            },
            ExtraMount::Tmpfs { target, options } => Prepared::Tmpfs {
                target: c_path(target),
                options: CString::new(options.as_str()).expect("validated: no NUL"),
            },
            ExtraMount::Sysfs { target, readonly } => Prepared::Sysfs {
                target: c_path(target),
                readonly: *readonly,
            },
            ExtraMount::Device {
                source,
                target,
                parents,
            } => Prepared::Device {
                source: c_path(source),
                target: c_path(target),
                parents: parents.iter().map(|p| c_path(p)).collect(),
            },
        })
        .collect()
}

/// Volumes and tmpfs mounts, inside the new mount namespace (so the host
/// never sees them). A bind mount takes `MS_RDONLY` only on a remount.
pub fn extra_mounts(sys: &mut impl Sys, mounts: &[Prepared]) -> Result<(), Errno> {
    for m in mounts {
        match m {
            Prepared::Bind {
                source,
                target,
                readonly,
            } => {
                sys.mount(
                    Some(source),
                    target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                if *readonly {
                    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                    sys.mount(Some(target), target, None, flags, None)?;
                }
            }
            Prepared::Tmpfs { target, options } => sys.mount(
                Some(c"tmpfs"),
                target,
                Some(c"tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(options)
                    .filter(|o| !o.is_empty())
                    .map(CString::as_c_str),
            )?,
            Prepared::Sysfs { target, readonly } => {
                let ro = if *readonly {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
                sys.mount(
                    Some(c"sysfs"),
                    target,
                    Some(c"sysfs"),
                    ro | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    None,
                )?
            }
            // As /dev's own nodes (crate::dev): a bind works in a user
            // namespace too, where mknod(2) is refused.
            Prepared::Device {
                source,
                target,
                parents,
            } => {
                for dir in parents {
                    sys.mkdir(dir, 0o755)?;
                }
                sys.create_file(target)?;
                sys.mount(Some(source), target, None, MsFlags::MS_BIND, None)?;
            }
        }
    }
    Ok(())
}

/// `--read-only`: the root's bind remounted read-only (the mounts on top
/// of it, /proc, /dev, volumes, keep their own flags).
pub fn readonly_root(sys: &mut impl Sys, root: &CStr) -> Result<(), Errno> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    sys.mount(Some(root), root, None, flags, None)
}
