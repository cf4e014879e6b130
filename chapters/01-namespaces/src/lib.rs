//! Chapter 01: namespaces. A container starts as one ordinary process that
//! the kernel shows a private view of the machine.
//!
//! [`run`] clones a process into new namespaces, gives it its own hostname,
//! `/proc`, `/dev` and root filesystem, executes a command there and returns
//! its exit code. Nothing else: no resource limits (chapter 02), no layered
//! filesystem (chapter 03), no images (chapter 04).
//!
//! The modules, in the order a run touches them:
//!
//! - [`namespaces`]: the seven kinds of namespace and their `clone(2)` flags.
//! - [`spec`]: what to run, and where; checked before anything is created.
//! - [`plan`]: a spec turned into what the child needs, every string made
//!   before the clone.
//! - [`sys`]: the system-call seam: the real calls ([`sys::Kernel`]) and a
//!   recorder that writes them down ([`sys::Recorder`]), so the setup can be
//!   printed and tested without root.
//! - [`uts`], [`pid`], [`mount`], [`dev`], [`net`], [`ipc`], [`user`]: one
//!   module per namespace, each with its steps.
//! - [`cgroupfs`]: the cgroup namespace (unshared after the go) and the
//!   `/sys/fs/cgroup` a container sees.
//! - [`setup`]: the child's steps in order, from the go to `execve`.
//! - [`console`]: a terminal made inside the container, its master sent out.
//! - [`parent`]: the process that calls `clone(2)`: writes the user-ID maps,
//!   says "go", forwards signals, reaps the child.
//! - [`child`]: the cloned process, from `clone(2)` to `execve(2)`: it only
//!   runs the prepared setup, with async-signal-safe calls.
//! - [`security`]: Docker's hardening (capabilities, no_new_privs, masked
//!   `/proc` paths, closed descriptors), off in this chapter's experiments
//!   and on in chapter 06's engine.
//! - [`error`]: what went wrong, and the usual reason why.
//! - [`course`]: how an unsolved exercise shows itself (course plumbing).
//!
//! The book page: `book/src/ch01-namespaces.md`.

// Lets `::chapter_01::…` paths work inside this crate as in the later ones
// (verify's switchable stubs use one path everywhere).
extern crate self as chapter_01;

pub mod cgroupfs;
pub mod child;
pub mod console;
pub mod course;
pub mod dev;
pub mod error;
pub mod init;
pub mod ipc;
pub mod mount;
pub mod namespaces;
pub mod net;
pub mod parent;
pub mod pid;
pub mod plan;
pub mod security;
pub mod setup;
pub mod spec;
pub mod sys;
pub mod user;
pub mod uts;

pub use error::Error;
pub use namespaces::{clone_flags, Namespace, Namespaces};
pub use parent::{spawn, Child};
pub use spec::{fixture_rootfs, ExtraMount, RootMode, Spec};
pub use user::{IdMap, IdRange};

/// Runs `spec` to completion: spawn, start, wait. Returns the container's
/// exit code as a shell reports it (exit N → N, killed by signal S → 128+S).
pub fn run(spec: &Spec) -> Result<i32, Error> {
    let mut child = spawn(spec)?;
    child.start()?;
    child.wait()
}

/// How an experiment CLI ends: the command's exit code, or a one-line error
/// with Docker's codes (125 setup, 126 not executable, 127 not found; a
/// library [`Error`] knows which, anything else is 125).
pub fn cli_exit(program: &str, result: anyhow::Result<i32>) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            let code = err.downcast_ref::<Error>().map_or(125, Error::exit_code);
            eprintln!("{program}: {err:#}");
            std::process::ExitCode::from(code as u8)
        }
    }
}
