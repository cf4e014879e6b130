//! A minimal `/dev`: a small tmpfs holding only the devices a program
//! expects, instead of the host's whole `/dev` (disks, memory, consoles).
//!
//! Device nodes are bind-mounted from the host rather than created with
//! `mknod(2)`: inside a user namespace `mknod` is refused, a bind mount is
//! not, so one method serves root and unprivileged users alike.

use crate::sys::Sys;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::ffi::CStr;

/// The character devices every container gets (the OCI runtime spec's
/// list): the host's node, and where it goes, relative to the rootfs.
pub const DEVICES: [(&CStr, &CStr); 6] = [
    (c"/dev/null", c"dev/null"),
    (c"/dev/zero", c"dev/zero"),
    (c"/dev/full", c"dev/full"),
    (c"/dev/random", c"dev/random"),
    (c"/dev/urandom", c"dev/urandom"),
    (c"/dev/tty", c"dev/tty"),
];

/// The links every `/dev` has: (link, target).
pub const LINKS: [(&CStr, &CStr); 5] = [
    (c"dev/ptmx", c"pts/ptmx"),
    (c"dev/fd", c"/proc/self/fd"),
    (c"dev/stdin", c"/proc/self/fd/0"),
    (c"dev/stdout", c"/proc/self/fd/1"),
    (c"dev/stderr", c"/proc/self/fd/2"),
];

// ANCHOR: build_dev
// exercise 1.13: build a minimal /dev inside the rootfs
// builds on: 1.11
// hint: The current directory is the rootfs (1.10), so work with relative
//   paths: "dev", "dev/null". Cover dev with a small tmpfs of its own, so the
//   image's /dev and the host's stay out; then put in only what DEVICES and
//   LINKS list, a private devpts for terminals at dev/pts, and a tmpfs for
//   POSIX shared memory at dev/shm.
// hint: A device node cannot be created in a user namespace (mknod is
//   refused) but can be bound: an empty file as the mount point, then the
//   host's node bound onto it. devpts needs "newinstance" or it would be the
//   host's ("ptmxmode=0666,mode=0620"); dev/ptmx links to its ptmx. dev/shm
//   is world-writable with the sticky bit (1777). Every tmpfs: nosuid; dev
//   also keeps strictatime, shm is noexec and nodev.
// hint: The OCI runtime spec, config-linux.md "Default Devices"; devpts in the
//   kernel's Documentation/filesystems/devpts.rst; tmpfs(5) for
//   "mode=755,size=65536k".
pub fn build_dev(sys: &mut impl Sys) -> Result<(), Errno> {
    sys.mount(
        Some(c"tmpfs"),
        c"dev",
        Some(c"tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(c"mode=755,size=65536k"),
    )?;
    for (host, inside) in DEVICES {
        sys.create_file(inside)?;
        sys.mount(Some(host), inside, None, MsFlags::MS_BIND, None)?;
    }
    sys.mkdir(c"dev/pts", 0o755)?;
    sys.mount(
        Some(c"devpts"),
        c"dev/pts",
        Some(c"devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=0620"),
    )?;
    for (link, target) in LINKS {
        sys.symlink(target, link)?;
    }
    sys.mkdir(c"dev/shm", 0o1777)?;
    sys.mount(
        Some(c"tmpfs"),
        c"dev/shm",
        Some(c"tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(c"mode=1777,size=65536k"),
    )
}
// ANCHOR_END: build_dev
