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

use crate::child::{self, STEP_EXEC, STEP_INIT};
use crate::error::Error;
use crate::namespaces::Namespace;
use crate::plan::{self, Plan};
use crate::spec::Spec;
use crate::user::{self, IdMap};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
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

// ANCHOR: forwarding
// exercise 1.5: forward the signals the runtime gets to the container's PID 1
// hint: `docker stop` signals the runtime, not the container: the runtime
//   passes SIGTERM (and the others in FORWARDED) on to PID 1. Install
//   `forward_signal` (given: it calls kill(2) on FORWARD_TO) as the handler
//   for each, after storing `pid` in FORWARD_TO.
// hint: Return every previous action, so that restore_signals can put them
//   back after the wait. Use SA_RESTART, or the runtime's own waitpid and
//   reads would fail with EINTR at every forwarded signal.
// hint: sigaction(2) (sa_flags SA_RESTART); signal-safety(7) for what a
//   handler may do; nix::sys::signal::sigaction.
/// Sends every signal of FORWARDED this process gets on to `pid`; returns
/// the actions it replaced.
pub fn forward_signals(pid: Pid) -> Vec<(Signal, SigAction)> {
    FORWARD_TO.store(pid.as_raw(), Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(forward_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let mut saved = Vec::new();
    for sig in FORWARDED {
        // SAFETY: the handler only calls kill(2), which is async-signal-safe.
        if let Ok(old) = unsafe { signal::sigaction(sig, &action) } {
            saved.push((sig, old));
        }
    }
    saved
}
// ANCHOR_END: forwarding

/// Puts back the signal actions [`forward_signals`] replaced, and stops
/// forwarding.
pub fn stop_forwarding(saved: &mut Vec<(Signal, SigAction)>) {
    for (sig, old) in saved.drain(..) {
        // SAFETY: restores the action that was installed before ours.
        unsafe { signal::sigaction(sig, &old) }.ok();
    }
    FORWARD_TO.store(0, Ordering::SeqCst);
}

/// A container process that has been cloned and not yet reaped.
pub struct Child {
    pid: Pid,
    plan: Plan,
    /// The setup's calls, as recorded before the clone: a failure report
    /// names one of them by number.
    calls: Vec<crate::sys::Call>,
    id_map: Option<IdMap>,
    forward_signals: bool,
    go: Option<OwnedFd>,
    report: Option<OwnedFd>,
    saved_actions: Vec<(Signal, SigAction)>,
    reaped: bool,
}

// ANCHOR: clone_child
// exercise 1.2: clone the child into its new namespaces
// builds on: 1.1
// hint: clone(2) is fork with a say in what the child shares: each CLONE_NEW*
//   flag gives it a new namespace of that kind. The child starts by calling
//   `entry` on a stack of its own, which you allocate (STACK_SIZE bytes).
// hint: Without CLONE_VM the child gets a copy of the parent's memory, the
//   stack included, so the parent may drop its Vec after the call. The
//   signal sent to the parent when the child ends must be SIGCHLD, or
//   waitpid(2) will not see the child without __WALL. nix::sched::clone
//   takes the entry boxed.
// hint: clone(2) DESCRIPTION ("The child termination signal") and NOTES;
//   namespaces(7) for the flags.
/// Starts `entry` in a new process with `flags`; returns its PID.
pub fn clone_child(flags: CloneFlags, entry: Box<dyn FnMut() -> isize + '_>) -> Result<Pid, Errno> {
    let mut stack = vec![0u8; STACK_SIZE];
    // SAFETY: without CLONE_VM the child runs on its own copy of `stack`
    // and of everything `entry` borrows.
    unsafe { nix::sched::clone(entry, &mut stack, flags, Some(libc::SIGCHLD)) }
}
// ANCHOR_END: clone_child

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
    // The whole setup once on paper, here in the parent: any step that
    // cannot work shows before a process exists.
    let calls = crate::setup::calls(&plan);

    let pipe = |what| pipe2(OFlag::O_CLOEXEC).map_err(|errno| Error::Io { what, errno });
    let (go_read, go_write) = pipe("creating the start pipe")?;
    let (report_read, report_write) = pipe("creating the report pipe")?;

    // ANCHOR: clone
    let (go_r, rep_w) = (go_read.as_raw_fd(), report_write.as_raw_fd());
    let unused = [go_write.as_raw_fd(), report_read.as_raw_fd()];
    let child_plan = &plan;
    let entry = Box::new(move || {
        // An unsolved exercise panics: its line is printed (course::install_hook)
        // and the child ends here instead of unwinding out of clone's callback.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child::child_main(child_plan, go_r, rep_w, unused)
        }));
        // SAFETY: _exit(2) ends the child without running the parent's code.
        unsafe { libc::_exit(125) }
    });
    let pid = clone_child(plan.flags, entry).map_err(|errno| Error::Clone {
        namespaces: spec.namespaces.to_string(),
        errno,
    })?;
    // The child's ends belong to the child now.
    drop((go_read, report_write));
    // ANCHOR_END: clone
    Ok(Child {
        pid,
        plan,
        calls,
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

    // ANCHOR: start
    // exercise 1.6: the parent's half of the handshake: maps, go, then the report
    // builds on: 1.2, 1.3, 1.4, 1.5
    // hint: The child waits (1.3) until the parent has done what only it can do
    //   from outside: write the ID maps when there is a user namespace
    //   (user::write_id_maps with user::proc_writer; exercise 1.8), install
    //   signal forwarding when asked (self.install_forwarding, 1.5). Then one byte on `go`, and the go end closed.
    // hint: Then read the report pipe until EOF. Both ends are close-on-exec, so
    //   EOF with nothing read means execve succeeded; 8 bytes are a failure
    //   record (child::decode_failure) from a child that is exiting: reap it
    //   and return self.describe_failure(step, errno). Retry a read cut by
    //   EINTR; fewer than 8 bytes is a broken record.
    // hint: pipe(7) ("If all file descriptors referring to the write end of a
    //   pipe have been closed, then an attempt to read(2) from the pipe will
    //   see end-of-file"); open(2) O_CLOEXEC; execve(2) on close-on-exec.
    /// Writes the ID maps (if there is a user namespace), lets the child run
    /// its setup, and returns once the command is executing. A setup or exec
    /// failure comes back as an error describing the step.
    pub fn start(&mut self) -> Result<(), Error> {
        if let Some(map) = &self.id_map {
            user::write_id_maps(map, &mut user::proc_writer(self.pid)).map_err(Error::IdMap)?;
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
    // ANCHOR_END: start

    /// The child's failure record as an error that names the step.
    pub fn describe_failure(&self, step: u32, errno: Errno) -> Error {
        if step == STEP_EXEC {
            let command = self.plan.argv[0].to_string_lossy().into_owned();
            return Error::Exec { command, errno };
        }
        if step == STEP_INIT {
            return Error::Io {
                what: "forking the command's process from the container's init",
                errno,
            };
        }
        match self.calls.get(step as usize) {
            Some(call) => Error::Setup {
                step: call.to_string(),
                kind: call.kind(),
                errno,
            },
            None => Error::Io {
                what: "the child reported an unknown step",
                errno,
            },
        }
    }

    // ANCHOR: wait
    // exercise 1.7: wait for PID 1 to end, and say how it ended as a shell would
    // builds on: 1.6
    // hint: waitpid(2) on the child's PID until it has *ended*: exited, or been
    //   killed by a signal. A stop or a continue is not an end (keep waiting),
    //   and an interrupted wait (EINTR) is tried again. Then mark the child
    //   reaped and put the signal actions back (restore_signals).
    // hint: The code is what a shell's $? shows: exit(N) gives N; death by
    //   signal S gives 128 + S (SIGKILL is 9, so 137; SIGTERM 143).
    // hint: waitpid(2) and wait(2) "wstatus" (WIFEXITED, WIFSIGNALED); bash(1)
    //   "EXIT STATUS". nix::sys::wait::WaitStatus has a variant for each.
    /// Waits for the container's PID 1 to end and returns its exit code.
    pub fn wait(mut self) -> Result<i32, Error> {
        let code = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(Error::Io {
                        what: "waiting for the container",
                        errno,
                    })
                }
                Ok(WaitStatus::Exited(_, code)) => break code,
                Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
                Ok(_) => continue,
            }
        };
        self.reaped = true;
        self.restore_signals();
        Ok(code)
    }
    // ANCHOR_END: wait

    fn install_forwarding(&mut self) {
        self.saved_actions = forward_signals(self.pid);
    }

    fn restore_signals(&mut self) {
        if !self.saved_actions.is_empty() {
            stop_forwarding(&mut self.saved_actions);
        }
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
