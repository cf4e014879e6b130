//! From a [`Spec`] to the exact steps the child will take. Building the plan
//! is pure (no system calls), so it can be printed (`--dry-run`), snapshot
//! tested, and read by a learner before anything runs.

use crate::namespaces::{clone_flags, Namespace};
use crate::ops::{cstr, Op};
use crate::spec::{RootMode, Spec, DEFAULT_PATH};
use crate::user::{self, IdMap};
use crate::{dev, mount, pid, uts};
use nix::sched::CloneFlags;
use std::ffi::CString;

/// Everything the child needs, prepared before `clone(2)`.
#[derive(Debug)]
pub struct Plan {
    pub flags: CloneFlags,
    pub ops: Vec<Op>,
    /// Paths to try with `execve(2)`, in order (the `PATH` search, done ahead).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// Builds the plan for a validated spec.
pub fn build(spec: &Spec) -> Plan {
    let ns = &spec.namespaces;
    let mut ops = Vec::new();
    if ns.contains(Namespace::User) {
        let map = spec
            .id_map
            .clone()
            .unwrap_or_else(IdMap::for_current_process);
        ops.extend(user::become_root_ops(&map));
    }
    if ns.contains(Namespace::Mount) {
        ops.extend(mount::private_ops());
    }
    if let (true, Some(name)) = (ns.contains(Namespace::Uts), &spec.hostname) {
        ops.extend(uts::hostname_ops(name));
    }
    if ns.contains(Namespace::Net) {
        ops.push(Op::LoopbackUp);
    }
    match &spec.rootfs {
        Some(rootfs) => {
            let root = rootfs.to_string_lossy().trim_end_matches('/').to_string();
            ops.extend(mount::bind_rootfs_ops(&root));
            ops.extend(pid::proc_ops(&root));
            ops.extend(dev::dev_ops(&root));
            ops.extend(mount::extra_mount_ops(&spec.mounts));
            if spec.readonly_rootfs {
                ops.extend(mount::readonly_root_ops(&root));
            }
            match spec.root_mode {
                RootMode::PivotRoot => ops.extend(mount::pivot_ops(&root)),
                RootMode::ChrootInsecure => ops.extend(mount::chroot_ops(&root)),
            }
        }
        // Without a rootfs the host's files stay; a private mount namespace
        // still lets a new PID namespace have its own /proc (like
        // `unshare --pid --mount-proc`).
        None if ns.contains(Namespace::Mount) && ns.contains(Namespace::Pid) => {
            ops.extend(pid::proc_ops(""));
        }
        None => {}
    }
    if spec.console {
        ops.push(Op::ControllingTerminal);
    }
    if let Some(security) = &spec.security {
        ops.extend(crate::security::ops(security));
    }
    if spec.workdir != "/" || spec.rootfs.is_none() {
        ops.push(Op::Chdir(cstr(&spec.workdir)));
    }
    Plan {
        flags: clone_flags(ns),
        ops,
        candidates: exec_candidates(&spec.command[0], &spec.env),
        argv: spec.command.iter().map(|a| cstr(a)).collect(),
        envp: spec.env.iter().map(|e| cstr(e)).collect(),
    }
}

/// The `PATH` search, done by the parent: a name with a `/` is used as is;
/// otherwise each directory of the container's `PATH` is tried in order.
fn exec_candidates(program: &str, env: &[String]) -> Vec<CString> {
    if program.contains('/') {
        return vec![cstr(program)];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| cstr(&format!("{}/{program}", dir.trim_end_matches('/'))))
        .collect()
}

impl Plan {
    /// The steps as numbered lines, for `--dry-run` and the book.
    pub fn describe(&self) -> String {
        let mut out = format!("clone(2) flags: {:?}\n", self.flags);
        for (i, op) in self.ops.iter().enumerate() {
            out.push_str(&format!("{:>2}. {op}\n", i + 1));
        }
        let tries: Vec<_> = self
            .candidates
            .iter()
            .map(|c| c.to_string_lossy())
            .collect();
        out.push_str(&format!("then execve, trying {}\n", tries.join(", ")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::Namespaces;

    #[test]
    fn full_container_plan() {
        let mut spec = Spec::new("/srv/rootfs", vec!["sh".into(), "-c".into(), "true".into()]);
        spec.namespaces = "all".parse::<Namespaces>().unwrap();
        insta::assert_snapshot!(build(&spec).describe());
    }

    #[test]
    fn docker_hardened_plan() {
        let mut spec = Spec::new("/srv/rootfs", vec!["id".into()]);
        let mut security = crate::security::Security::docker_default();
        security.user = Some(crate::security::User {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 27],
        });
        spec.security = Some(security);
        spec.console = true;
        spec.workdir = "/home/user".into();
        let plan = build(&spec).describe();
        // The machine's last capability number varies between kernels.
        let plan = plan.replace(&format!("0..={}", crate::security::last_cap()), "0..=LAST");
        insta::assert_snapshot!(plan);
    }

    #[test]
    fn pid_and_mount_without_rootfs_still_get_their_own_proc() {
        let mut spec = Spec::new("/unused", vec!["/bin/ps".into()]);
        spec.rootfs = None;
        spec.hostname = None;
        spec.namespaces = "pid,mnt".parse().unwrap();
        insta::assert_snapshot!(build(&spec).describe());
    }
}
