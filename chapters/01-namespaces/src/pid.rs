//! PID namespace: the first process cloned into it is PID 1, and it sees
//! only its own descendants. `ps` reads `/proc`, so the container needs a
//! `/proc` mounted from inside the new namespace; the host's would still
//! list every host process. See pid_namespaces(7).

use crate::ops::{cstr, Op};
use nix::mount::MsFlags;

// ANCHOR: proc_ops
// exercise 1.3: mount a fresh /proc for the new PID namespace under `root`
// hint: A proc filesystem shows the PID namespace of the process that mounts it.
// hint: Op::fs("proc", ...) on root + "/proc", with MS_NOSUID, MS_NODEV and
// hint: MS_NOEXEC as a container runtime does.
pub fn proc_ops(root: &str) -> Vec<Op> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    vec![Op::fs("proc", cstr(&format!("{root}/proc")), flags, "")]
}
// ANCHOR_END: proc_ops
