//! A chapter 01 container, now inside a cgroup. The cgroup is joined in the
//! gap chapter 01 left for it: after `clone(2)`, before the child is told
//! to go. So the command never runs a single instruction unlimited.
//!
//! It also chooses the driver: v1 for v1 and hybrid hosts, v2 for unified ones.

use crate::cgroup::{Cgroup, Stats};
use crate::layout::{parse_own_cgroups, Layout, Mode, OwnCgroups};
use crate::limits::Limits;
use anyhow::{anyhow, Context, Result};
use chapter_01::Spec;

/// How a limited run ended.
#[derive(Debug)]
pub struct Outcome {
    pub exit_code: i32,
    /// The cgroup's accounting, read just before it was removed.
    pub stats: Stats,
    /// Killed by the kernel's OOM killer (SIGKILL and an oom_kill event).
    pub oom_killed: bool,
    pub warnings: Vec<String>,
}

/// Removes the cgroup, killing what is left inside, when dropped: on
/// success, on error, on panic.
pub struct CgroupGuard(pub Box<dyn Cgroup>);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        // A panic here while already unwinding would abort the process, so
        // cleanup panics are caught and reported like cleanup errors.
        let cleanup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.0.kill_all().and_then(|()| self.0.remove())
        }));
        match cleanup {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cleaning up cgroup {:?}: {e}", self.0.dirs()),
            Err(_) => eprintln!("warning: cleaning up cgroup {:?} panicked", self.0.dirs()),
        }
    }
}

/// A cgroup name is one path component of our choosing.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("invalid cgroup name {name:?}"));
    }
    Ok(())
}

/// Creates the cgroup `name` under this process's own cgroup(s).
pub fn create(layout: &Layout, own: &OwnCgroups, name: &str) -> Result<Box<dyn Cgroup>, String> {
    check_name(name)?;
    match layout.mode {
        Mode::V1 | Mode::Hybrid => Ok(Box::new(crate::v1::V1Cgroup::create(
            &layout.v1_mounts,
            own,
            name,
        )?)),
        Mode::V2 => {
            let mount = layout.v2_mount.as_deref().expect("v2 layout has a mount");
            Ok(Box::new(crate::v2::V2Cgroup::create(
                mount,
                own.v2.as_deref().unwrap_or("/"),
                name,
                true,
            )?))
        }
    }
}

/// Creates a cgroup named `name` under this process's own cgroup, with the
/// limits applied.
pub fn create_limited(name: &str, limits: &Limits) -> Result<(CgroupGuard, Vec<String>)> {
    limits.validate().map_err(|e| anyhow!(e))?;
    let layout = Layout::detect().map_err(|e| anyhow!(e))?;
    let own = parse_own_cgroups(&std::fs::read_to_string("/proc/self/cgroup")?);
    limited(create(&layout, &own, name).map_err(|e| anyhow!(e))?, limits)
}

/// Creates the v2 cgroup `name` in `parent`, a cgroup made ready to hold
/// containers ([`crate::v2::prepare_parent`]) rather than this process's
/// own, with the limits applied.
pub fn create_limited_in(
    parent: &std::path::Path,
    name: &str,
    limits: &Limits,
) -> Result<(CgroupGuard, Vec<String>)> {
    limits.validate().map_err(|e| anyhow!(e))?;
    check_name(name).map_err(|e| anyhow!(e))?;
    let cgroup = crate::v2::V2Cgroup::create(parent, "/", name, false).map_err(|e| anyhow!(e))?;
    limited(Box::new(cgroup), limits)
}

/// `cgroup` guarded (removed when dropped, also on an error here) with the
/// limits written; the warnings of what this host cannot apply.
fn limited(cgroup: Box<dyn Cgroup>, limits: &Limits) -> Result<(CgroupGuard, Vec<String>)> {
    let guard = CgroupGuard(cgroup);
    let mut warnings = guard.0.apply(limits).map_err(|e| anyhow!(e))?;
    warnings.extend(crate::limits::apply_extras(&guard.0.dirs(), limits).map_err(|e| anyhow!(e))?);
    Ok((guard, warnings))
}

/// Called on its own thread while the container runs, with the cgroup and a
/// flag that turns true when the container has ended.
pub type Watch<'a> = &'a (dyn Fn(&dyn Cgroup, &std::sync::atomic::AtomicBool) + Sync);

/// Runs `spec` limited by `limits`, in a cgroup named `name`; calls `watch`
/// with the cgroup while the container runs (for live stats), on another
/// thread.
pub fn run_limited(
    spec: &Spec,
    limits: &Limits,
    name: &str,
    watch: Option<Watch<'_>>,
) -> Result<Outcome> {
    let (guard, warnings) = create_limited(name, limits)?;
    let mut child = chapter_01::spawn(spec)?;
    // ANCHOR: join_before_go
    guard
        .0
        .add(child.pid())
        .map_err(|e| anyhow!(e))
        .context("moving the container into its cgroup")?;
    child.start()?;
    // ANCHOR_END: join_before_go
    let done = std::sync::atomic::AtomicBool::new(false);
    let exit_code = std::thread::scope(|scope| {
        if let Some(watch) = watch {
            let (cg, done) = (&*guard.0, &done);
            scope.spawn(move || watch(cg, done));
        }
        let code = child.wait();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        code
    })?;
    let stats = guard.0.stats().map_err(|e| anyhow!(e))?;
    let oom_killed = exit_code == 137 && stats.oom_kills > 0;
    Ok(Outcome {
        exit_code,
        stats,
        oom_killed,
        warnings,
    })
}
