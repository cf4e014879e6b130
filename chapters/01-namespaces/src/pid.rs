//! PID namespace: the first process cloned into it is PID 1, and it sees
//! only its own descendants. `ps` reads `/proc`, so the container needs a
//! `/proc` mounted from inside the new namespace; the host's would still
//! list every host process. See pid_namespaces(7).

use crate::sys::Sys;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::ffi::CStr;

// ANCHOR: mount_proc
// exercise 1.12: mount a /proc that shows the new PID namespace
// builds on: 1.11
// hint: A proc filesystem shows the PID namespace of the process that mounts
//   it, so the child (PID 1 of its namespace) mounts a fresh one at `target`
//   ("proc" inside the rootfs, or "/proc" when the host's files stay).
// hint: An image built FROM scratch may lack the directory: make it first
//   (mode 0555, as Docker's is; one that exists is fine). Nothing in /proc is
//   a program or a device: mount it nosuid, nodev and noexec, as runc does.
// hint: pid_namespaces(7) "/proc and PID namespaces"; proc(5); mount(2). The
//   filesystem type and the source are both "proc".
pub fn mount_proc(sys: &mut impl Sys, target: &CStr) -> Result<(), Errno> {
    sys.mkdir(target, 0o555)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys.mount(Some(c"proc"), target, Some(c"proc"), flags, None)
}
// ANCHOR_END: mount_proc
