//! What to run and how: the input of a container run, checked before any
//! namespace exists so that bad input fails with one clear line.

use crate::error::Error;
use crate::namespaces::{Namespace, Namespaces};
pub use crate::sys::MAX_ARGS;
use crate::user::IdMap;
use std::path::PathBuf;

/// How the child enters its root filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootMode {
    /// `pivot_root(2)` and detach the old root: no path leads back to the
    /// host's files. What every real runtime does.
    PivotRoot,
    /// `chroot(2)` only. Insecure: a root process inside can climb back out.
    /// Exists for the chroot-escape experiment, nothing else.
    ChrootInsecure,
}

/// A filesystem mounted into the container before it enters its root
/// (`-v`, `--tmpfs`). `target` is a host path inside the rootfs, already
/// resolved by the caller so that no symlink of the image leads out of it
/// (see chapter 06's monitor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraMount {
    Bind {
        source: PathBuf,
        target: PathBuf,
        readonly: bool,
    },
    Tmpfs {
        target: PathBuf,
        options: String,
    },
    /// A sysfs (it shows the network devices of the mounting process's
    /// network namespace, so it is mounted from inside); read-only except
    /// for `--privileged`.
    Sysfs {
        target: PathBuf,
        readonly: bool,
    },
    /// A host device node (`--device`), bound onto an empty file made at
    /// `target` after the container's /dev is built; `parents` (outermost
    /// first) are made before it, for a target inside that fresh /dev.
    Device {
        source: PathBuf,
        target: PathBuf,
        parents: Vec<PathBuf>,
    },
}

/// Everything needed to run one container.
#[derive(Clone, Debug)]
pub struct Spec {
    pub namespaces: Namespaces,
    /// Set inside the new UTS namespace.
    pub hostname: Option<String>,
    /// The directory that becomes `/`. `None` keeps the host's filesystem.
    pub rootfs: Option<PathBuf>,
    pub root_mode: RootMode,
    /// The program and its arguments. A name without `/` is looked up in
    /// the container's `PATH`.
    pub command: Vec<String>,
    /// The complete environment of the command (`KEY=value`).
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub workdir: String,
    /// ID mapping for a new user namespace; `None` means the default for the
    /// caller ([`IdMap::for_caller`]).
    pub id_map: Option<IdMap>,
    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 received by this
    /// process to the container's PID 1 while waiting. This installs
    /// process-wide signal handlers, so only a program that runs one
    /// container at a time should ask for it.
    pub forward_signals: bool,
    /// Docker's hardening (capabilities, no_new_privs, masked paths, the
    /// user to run as); `None` for chapter 01's bare experiments.
    pub security: Option<crate::security::Security>,
    /// Standard input is a terminal the command should own (`-t`).
    pub console: bool,
    /// With `console`: make the terminal inside the container (from its own
    /// devpts) and send its master over this unix socket; stdin, stdout and
    /// stderr become the terminal. `None` keeps the stdio the child was
    /// cloned with. See [`crate::console`].
    pub console_socket: Option<std::os::fd::RawFd>,
    /// The new terminal's rows and columns (`docker run -t`'s ConsoleSize).
    pub console_size: Option<(u16, u16)>,
    /// Volumes, bind mounts and tmpfs mounts, in order.
    pub mounts: Vec<ExtraMount>,
    /// The root filesystem is mounted read-only (`--read-only`).
    pub readonly_rootfs: bool,
    /// What the container sees at /sys/fs/cgroup (chapter 06 says; the
    /// experiments leave it out).
    pub cgroupfs: Option<crate::cgroupfs::CgroupFs>,
    /// PID 1 is a tiny init of ours that runs the command, reaps orphans
    /// and passes signals on (`docker run --init`). See [`crate::init`].
    pub init: bool,
}

/// The `PATH` a container gets, as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Spec {
    /// A spec for `command` in the default container namespaces over `rootfs`.
    pub fn new(rootfs: impl Into<PathBuf>, command: Vec<String>) -> Spec {
        Spec {
            namespaces: Namespaces::container(),
            hostname: Some("container".into()),
            rootfs: Some(rootfs.into()),
            root_mode: RootMode::PivotRoot,
            command,
            env: vec![
                format!("PATH={DEFAULT_PATH}"),
                "HOME=/root".into(),
                "TERM=xterm".into(),
            ],
            workdir: "/".into(),
            id_map: None,
            forward_signals: false,
            security: None,
            console: false,
            console_socket: None,
            console_size: None,
            mounts: Vec::new(),
            readonly_rootfs: false,
            cgroupfs: None,
            init: false,
        }
    }

    /// Checks the spec against itself and the host; the error says what to
    /// change.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |msg: String| Err(Error::InvalidSpec(msg));
        if self.command.is_empty() {
            return invalid("no command given: say what to run, e.g. `-- /bin/sh`".into());
        }
        let max = MAX_ARGS;
        if self.command.len() > max || self.env.len() > max {
            return invalid(format!(
                "at most {max} arguments and {max} environment variables"
            ));
        }
        if self
            .command
            .iter()
            .chain(&self.env)
            .any(|s| s.contains('\0'))
        {
            return invalid("the command and environment may not contain NUL bytes".into());
        }
        if let Some(name) = &self.hostname {
            crate::uts::validate_hostname(name).map_err(Error::InvalidSpec)?;
            if !self.namespaces.contains(Namespace::Uts) {
                return invalid(format!(
                    "hostname {name:?} needs a UTS namespace (add uts to the namespaces), \
                     or the host's own hostname would change"
                ));
            }
        }
        if !self.workdir.starts_with('/') {
            return invalid(format!(
                "working directory {:?} must be absolute",
                self.workdir
            ));
        }
        if let Some(rootfs) = &self.rootfs {
            if !self.namespaces.contains(Namespace::Mount) {
                return invalid(
                    "a root filesystem needs a mount namespace (add mnt to the namespaces)".into(),
                );
            }
            match std::fs::metadata(rootfs) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return invalid(format!("rootfs {} is not a directory", rootfs.display())),
                Err(e) => {
                    return invalid(format!(
                    "rootfs {} cannot be used: {e} (build the fixture with `cargo xtask fixture`, \
                         or pass a directory holding a root filesystem)",
                    rootfs.display()
                ))
                }
            }
            if !rootfs.is_absolute() {
                return invalid(format!(
                    "rootfs {} must be an absolute path",
                    rootfs.display()
                ));
            }
        }
        Ok(())
    }
}

/// The fixture root filesystem the course's experiments run in:
/// `target/fixture/rootfs` of this workspace, built by `cargo xtask fixture`
/// (or under `MINI_DOCKER_FIXTURE_DIR`, where `cargo xtask verify` points
/// its scratch copies of the workspace).
pub fn fixture_rootfs() -> Result<PathBuf, String> {
    let path = match std::env::var_os("MINI_DOCKER_FIXTURE_DIR") {
        Some(dir) => PathBuf::from(dir).join("rootfs"),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/fixture/rootfs"
        )),
    };
    match path.canonicalize() {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(p) => Err(format!("rootfs {} is not a directory", p.display())),
        Err(e) => Err(format!(
            "no root filesystem at {} ({e}): build the fixture with `cargo xtask fixture`",
            path.display()
        )),
    }
}
