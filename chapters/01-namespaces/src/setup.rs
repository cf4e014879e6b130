//! The child's setup, step by step: the order in which a cloned process
//! turns into a container. Each step lives in the module of its namespace
//! and makes its calls through [`Sys`], so the same sequence runs for real
//! in the child ([`crate::sys::Kernel`]) and on paper in the parent
//! ([`crate::sys::Recorder`]), before the clone: [`calls`] and
//! [`describe`] are that paper run.

use crate::plan::Plan;
use crate::spec::RootMode;
use crate::sys::{Call, Recorder, Sys};
use crate::{cgroupfs, dev, mount, pid, security, user, uts};
use nix::errno::Errno;
use nix::sched::CloneFlags;

// ANCHOR: setup
/// Everything between the go from the parent and `execve`, in the order
/// the kernel needs it: identity first (root of the user namespace, which
/// every later step needs), then the mount table made private before
/// anything is mounted, the host name, the network's loopback, the root
/// filesystem with its /proc and /dev, the volumes, the pivot; the
/// hardening last, because it takes away the power the steps before need.
pub fn setup(sys: &mut impl Sys, plan: &Plan) -> Result<(), Errno> {
    if let Some(drop_groups) = plan.become_root {
        user::become_root(sys, drop_groups)?;
    }
    // After the go the parent has put us in our cgroup: a cgroup namespace
    // made now has that cgroup as its root (see crate::cgroupfs).
    if plan.new_cgroup_ns {
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    if plan.private_mounts {
        mount::isolate_mounts(sys, plan.root.as_ref().map(|r| r.dir.as_c_str()))?;
    }
    if let Some(name) = &plan.hostname {
        uts::set_hostname(sys, name)?;
    }
    if plan.loopback {
        sys.loopback_up()?;
    }
    match &plan.root {
        Some(root) => {
            // The current directory is the rootfs now (isolate_mounts).
            pid::mount_proc(sys, c"proc")?;
            dev::build_dev(sys)?;
            mount::extra_mounts(sys, &plan.mounts)?;
            if let Some(cgroups) = &plan.cgroupfs {
                cgroupfs::mount_cgroupfs(sys, cgroups)?;
            }
            if root.readonly {
                mount::readonly_root(sys, &root.dir)?;
            }
            match root.mode {
                RootMode::PivotRoot => mount::pivot_into(sys)?,
                RootMode::ChrootInsecure => mount::chroot_into(sys)?,
            }
        }
        None if plan.own_proc => pid::mount_proc(sys, c"/proc")?,
        None => {}
    }
    // The terminal comes from the container's own /dev/ptmx: after the
    // pivot, so that path means its devpts.
    if let Some((socket, rows, cols)) = plan.new_console {
        sys.new_console(socket, rows, cols)?;
    }
    if plan.console {
        sys.controlling_terminal()?;
    }
    if let Some(hardening) = &plan.security {
        security::apply(sys, hardening)?;
    }
    if let Some(dir) = &plan.workdir {
        sys.chdir(dir)?;
    }
    if let Some(hardening) = &plan.security {
        security::filter_last(sys, hardening)?;
    }
    Ok(())
}
// ANCHOR_END: setup

/// The calls the child's setup makes, in order; on the recorder every call
/// succeeds, so this is the whole list.
pub fn calls(plan: &Plan) -> Vec<Call> {
    let mut recorder = Recorder::new();
    let _ = setup(&mut recorder, plan);
    recorder.calls
}

/// The steps as numbered lines, for `--dry-run` and the book.
pub fn describe(plan: &Plan) -> String {
    let mut out = format!("clone(2) flags: {:?}\n", plan.flags);
    for (i, call) in calls(plan).iter().enumerate() {
        out.push_str(&format!("{:>2}. {call}\n", i + 1));
    }
    let tries: Vec<_> = plan
        .candidates
        .iter()
        .map(|c| c.to_string_lossy())
        .collect();
    if plan.init.is_some() {
        out.push_str("then fork: PID 1 stays as init, the new process goes on\n");
    }
    out.push_str(&format!("then execve, trying {}\n", tries.join(", ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::Namespaces;
    use crate::plan::build;
    use crate::spec::Spec;

    #[test]
    fn full_container_plan() {
        let mut spec = Spec::new("/srv/rootfs", vec!["sh".into(), "-c".into(), "true".into()]);
        spec.namespaces = "all".parse::<Namespaces>().unwrap();
        spec.id_map = Some(crate::user::IdMap::for_caller(0, 0));
        insta::assert_snapshot!(describe(&build(&spec)));
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
        // --security-opt no-new-privileges, and a (tiny) seccomp filter.
        security.no_new_privs = true;
        security.seccomp = Some(vec![ALLOW; 3]);
        spec.security = Some(security);
        spec.console = true;
        spec.workdir = "/home/user".into();
        let plan = describe(&build(&spec));
        // The machine's last capability number varies between kernels.
        let plan = plan.replace(&format!("0..={}", crate::security::last_cap()), "0..=LAST");
        insta::assert_snapshot!(plan);
    }

    const ALLOW: crate::security::BpfInstruction = crate::security::BpfInstruction {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0x7fff_0000, // SECCOMP_RET_ALLOW
    };

    #[test]
    fn without_no_new_privs_the_filter_goes_in_while_capabilities_remain() {
        let mut spec = Spec::new("/srv/rootfs", vec!["id".into()]);
        let mut security = crate::security::Security::docker_default();
        security.seccomp = Some(vec![ALLOW]);
        spec.security = Some(security);
        let calls = calls(&build(&spec));
        let at = |want: fn(&Call) -> bool| calls.iter().position(want).unwrap();
        let filter = at(|c| matches!(c, Call::Seccomp(1)));
        assert!(filter < at(|c| matches!(c, Call::DropBoundingCaps { .. })));
        assert!(!calls.contains(&Call::NoNewPrivs));
        assert_eq!(
            calls
                .iter()
                .filter(|c| matches!(c, Call::Seccomp(_)))
                .count(),
            1
        );
    }

    #[test]
    fn a_cgroup_namespace_is_unshared_after_the_go_not_cloned() {
        let mut spec = Spec::new("/srv/rootfs", vec!["id".into()]);
        spec.namespaces.insert(crate::Namespace::Cgroup);
        let plan = build(&spec);
        assert!(!plan.flags.contains(nix::sched::CloneFlags::CLONE_NEWCGROUP));
        assert_eq!(
            calls(&plan)[0],
            Call::Unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        );
    }

    #[test]
    fn pid_and_mount_without_rootfs_still_get_their_own_proc() {
        let mut spec = Spec::new("/unused", vec!["/bin/ps".into()]);
        spec.rootfs = None;
        spec.hostname = None;
        spec.namespaces = "pid,mnt".parse().unwrap();
        insta::assert_snapshot!(describe(&build(&spec)));
    }
}
