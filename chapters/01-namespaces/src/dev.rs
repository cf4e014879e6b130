//! A minimal `/dev`: a small tmpfs holding only the devices a program
//! expects, instead of the host's whole `/dev` (disks, memory, consoles).
//!
//! Device nodes are bind-mounted from the host rather than created with
//! `mknod(2)`: inside a user namespace `mknod` is refused, a bind mount is
//! not, so one method serves root and unprivileged users alike.

use crate::ops::{cstr, Op};
use nix::mount::MsFlags;

/// The character devices every container gets (the OCI runtime spec's list).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

// ANCHOR: dev_ops
// exercise 1.5: build a minimal /dev under `root`
// hint: Mount a tmpfs on root/dev (MS_NOSUID, "mode=755,size=65536k"); for each
// hint: name in DEVICES create an empty file and bind /dev/NAME onto it; mount a
// hint: fresh devpts at dev/pts ("newinstance,ptmxmode=0666,mode=0620") and link
// hint: dev/ptmx -> pts/ptmx; link fd, stdin, stdout, stderr into /proc/self/fd;
// hint: and give dev/shm its own tmpfs (mode=1777).
pub fn dev_ops(root: &str) -> Vec<Op> {
    let dev = format!("{root}/dev");
    let at = |name: &str| cstr(&format!("{dev}/{name}"));
    let mut ops = vec![Op::fs(
        "tmpfs",
        cstr(&dev),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        "mode=755,size=65536k",
    )];
    for name in DEVICES {
        ops.push(Op::MakeFile(at(name)));
        ops.push(Op::bind(
            cstr(&format!("/dev/{name}")),
            at(name),
            MsFlags::empty(),
        ));
    }
    ops.push(Op::MakeDir {
        path: at("pts"),
        mode: 0o755,
    });
    ops.push(Op::fs(
        "devpts",
        at("pts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    ));
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: cstr(target),
            link: at(link),
        });
    }
    ops.push(Op::MakeDir {
        path: at("shm"),
        mode: 0o1777,
    });
    ops.push(Op::fs(
        "tmpfs",
        at("shm"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=1777,size=65536k",
    ));
    ops
}
// ANCHOR_END: dev_ops
