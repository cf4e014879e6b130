//! The parent: the process that asks the kernel for the namespaces.
//!
//! A run has three moments, one method each on [`Child`]:
//! 1. [`spawn`]: `clone(2)` with the namespace flags. The child exists, in
//!    its namespaces, but waits on a pipe before doing anything.
//! 2. [`Child::start`]: the parent does what only it can do from outside
//!    (write the user namespace's ID maps; a later chapter puts the child in
//!    a cgroup here), then says go and waits until the child has either
//!    exec'd the command or reported which step failed.
//! 3. [`Child::wait`]: reap the child and turn its status into an exit code,
//!    forwarding signals to it meanwhile if asked.
//!
//! Dropping a [`Child`] that was never waited for kills and reaps it, so an
//! error path leaves no process behind.

use crate::child::{self, STEP_EXEC};
use crate::error::Error;
use crate::namespaces::Namespace;
use crate::plan::{self, Plan};
use crate::spec::Spec;
use crate::user::{self, IdMap};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The child's stack. It runs a short, flat sequence of calls.
const STACK_SIZE: usize = 256 * 1024;

/// Signals forwarded to the container's PID 1 when asked.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Where the signal handler sends what it receives (0: nowhere).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// A container process that has been cloned and not yet reaped.
pub struct Child {
    pid: Pid,
    plan: Plan,
    id_map: Option<IdMap>,
    forward_signals: bool,
    go: Option<OwnedFd>,
    report: Option<OwnedFd>,
    saved_actions: Vec<(Signal, SigAction)>,
    reaped: bool,
}

/// Clones the container's process into its new namespaces. The child waits
/// for [`Child::start`].
pub fn spawn(spec: &Spec) -> Result<Child, Error> {
    spec.validate()?;
    let plan = plan::build(spec);
    let id_map = spec.namespaces.contains(Namespace::User).then(|| {
        spec.id_map
            .clone()
            .unwrap_or_else(IdMap::for_current_process)
    });

    let pipe = |what| pipe2(OFlag::O_CLOEXEC).map_err(|errno| Error::Io { what, errno });
    let (go_read, go_write) = pipe("creating the start pipe")?;
    let (report_read, report_write) = pipe("creating the report pipe")?;

    // ANCHOR: clone
    let mut stack = vec![0u8; STACK_SIZE];
    let (go_r, rep_w) = (go_read.as_raw_fd(), report_write.as_raw_fd());
    let unused = [go_write.as_raw_fd(), report_read.as_raw_fd()];
    let child_plan = &plan;
    // SAFETY: without CLONE_VM the child gets a copy of this address space,
    // so `plan` stays valid for it; child_main is async-signal-safe and never
    // returns (see the child module).
    let pid = unsafe {
        nix::sched::clone(
            Box::new(move || child::child_main(child_plan, go_r, rep_w, unused)),
            &mut stack,
            plan.flags,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(|errno| Error::Clone {
        namespaces: spec.namespaces.to_string(),
        errno,
    })?;
    // The child's ends belong to the child now.
    drop((go_read, report_write));
    // ANCHOR_END: clone
    Ok(Child {
        pid,
        plan,
        id_map,
        forward_signals: spec.forward_signals,
        go: Some(go_write),
        report: Some(report_read),
        saved_actions: Vec::new(),
        reaped: false,
    })
}

impl Child {
    /// The child's PID as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Writes the ID maps (if there is a user namespace), lets the child run
    /// its setup, and returns once the command is executing. A setup or exec
    /// failure comes back as an error describing the step.
    pub fn start(&mut self) -> Result<(), Error> {
        if let Some(map) = &self.id_map {
            user::write_id_maps(self.pid, map).map_err(Error::IdMap)?;
        }
        if self.forward_signals {
            self.install_forwarding();
        }
        let go = self.go.take().expect("start is called once");
        nix::unistd::write(&go, &[1]).map_err(|errno| Error::Io {
            what: "telling the child to start",
            errno,
        })?;
        drop(go);

        let report = self.report.take().expect("start is called once");
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < buf.len() {
            match nix::unistd::read(&report, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(Error::Io {
                        what: "reading the child's report",
                        errno,
                    })
                }
            }
        }
        match got {
            // EOF without a record: execve succeeded and closed the pipe.
            0 => Ok(()),
            8 => {
                let (step, errno) = child::decode_failure(buf);
                self.reap();
                Err(self.describe_failure(step, Errno::from_raw(errno)))
            }
            _ => Err(Error::Io {
                what: "reading the child's report (short record)",
                errno: Errno::EIO,
            }),
        }
    }

    fn describe_failure(&self, step: u32, errno: Errno) -> Error {
        if step == STEP_EXEC {
            let command = self.plan.argv[0].to_string_lossy().into_owned();
            return Error::Exec { command, errno };
        }
        match self.plan.ops.get(step as usize) {
            Some(op) => Error::Setup {
                step: op.to_string(),
                call: op.call(),
                errno,
            },
            None => Error::Io {
                what: "the child reported an unknown step",
                errno,
            },
        }
    }

    /// Waits for the container's PID 1 to end and returns its exit code.
    pub fn wait(mut self) -> Result<i32, Error> {
        let status = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(Error::Io {
                        what: "waiting for the container",
                        errno,
                    })
                }
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break status,
                Ok(_) => continue,
            }
        };
        self.reaped = true;
        self.restore_signals();
        Ok(exit_code(status))
    }

    fn install_forwarding(&mut self) {
        FORWARD_TO.store(self.pid.as_raw(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(forward_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for sig in FORWARDED {
            // SAFETY: the handler only calls kill(2), which is async-signal-safe.
            if let Ok(old) = unsafe { signal::sigaction(sig, &action) } {
                self.saved_actions.push((sig, old));
            }
        }
    }

    fn restore_signals(&mut self) {
        for (sig, old) in self.saved_actions.drain(..) {
            // SAFETY: restores the action that was installed before ours.
            unsafe { signal::sigaction(sig, &old) }.ok();
        }
        FORWARD_TO.store(0, Ordering::SeqCst);
    }

    /// Kills (if needed) and reaps the child.
    fn reap(&mut self) {
        if !self.reaped {
            signal::kill(self.pid, Signal::SIGKILL).ok();
            while let Err(Errno::EINTR) = waitpid(self.pid, None) {}
            self.reaped = true;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.reap();
        self.restore_signals();
    }
}

// ANCHOR: exit_code
// exercise 1.8: turn a wait status into the exit code a shell reports
// hint: WaitStatus::Exited(_, code) gives code itself; WaitStatus::Signaled(_, sig, _)
// hint: gives 128 + the signal number (SIGKILL = 9, so 137). Anything else
// hint: (stopped, continued) is not an end: give 255.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    }
}
// ANCHOR_END: exit_code
