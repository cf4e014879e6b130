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

use crate::ops::{cstr, Op};
use crate::spec::ExtraMount;
use nix::mount::MsFlags;

/// Stops mount propagation between the new namespace and the host.
pub fn private_ops() -> Vec<Op> {
    vec![Op::MakeMountsPrivate]
}

/// Makes `rootfs` a mount point (a recursive bind onto itself).
pub fn bind_rootfs_ops(rootfs: &str) -> Vec<Op> {
    vec![Op::bind(cstr(rootfs), cstr(rootfs), MsFlags::MS_REC)]
}

// ANCHOR: pivot_ops
// exercise 1.4: enter `rootfs` with pivot_root(2) and detach the old root
// hint: Four ops: Op::Chdir into the rootfs, Op::PivotRoot (the pivot_root(".", ".")
// hint: trick from the man page), Op::DetachOldRoot, then Op::Chdir to "/".
// hint: The rootfs is already a mount point and all mounts are private.
pub fn pivot_ops(rootfs: &str) -> Vec<Op> {
    vec![
        Op::Chdir(cstr(rootfs)),
        Op::PivotRoot,
        Op::DetachOldRoot,
        Op::Chdir(cstr("/")),
    ]
}
// ANCHOR_END: pivot_ops

/// The insecure way, kept to show why it is insecure: `chroot` into
/// `rootfs`. A root process inside can walk back out (the escape experiment).
pub fn chroot_ops(rootfs: &str) -> Vec<Op> {
    vec![
        Op::Chdir(cstr(rootfs)),
        Op::Chroot(cstr(".")),
        Op::Chdir(cstr("/")),
    ]
}

/// Volumes and tmpfs mounts, inside the new mount namespace (so the host
/// never sees them). A bind mount takes `MS_RDONLY` only on a remount.
pub fn extra_mount_ops(mounts: &[ExtraMount]) -> Vec<Op> {
    let path = |p: &std::path::Path| cstr(&p.to_string_lossy());
    let mut ops = Vec::new();
    for m in mounts {
        match m {
            ExtraMount::Bind {
                source,
                target,
                readonly,
            } => {
                ops.push(Op::bind(path(source), path(target), MsFlags::MS_REC));
                if *readonly {
                    ops.push(Op::Mount {
                        source: path(target),
                        target: path(target),
                        fstype: None,
                        flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        data: None,
                    });
                }
            }
            ExtraMount::Tmpfs { target, options } => ops.push(Op::fs(
                "tmpfs",
                path(target),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                options,
            )),
            ExtraMount::Sysfs { target } => ops.push(Op::fs(
                "sysfs",
                path(target),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                "",
            )),
        }
    }
    ops
}

/// `--read-only`: the root's bind remounted read-only (the mounts on top
/// of it, /proc, /dev, volumes, keep their own flags).
pub fn readonly_root_ops(root: &str) -> Vec<Op> {
    vec![Op::Mount {
        source: cstr(root),
        target: cstr(root),
        fstype: None,
        flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        data: None,
    }]
}
