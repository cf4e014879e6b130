//! An ordinary user made for a test or a benchmark of the rootless engine:
//! its home (with its XDG runtime and data directories) in a temporary
//! directory, and 65536 subordinate IDs of its own in /etc/subuid and
//! /etc/subgid. Dropped: its processes killed, its ranges and the user
//! removed, the directory too. Needs root, and shadow-utils' useradd,
//! usermod and userdel, and util-linux's setpriv.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `cmd`'s output, which must be a success.
pub fn must(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out
}

/// An ordinary user made for one test: its home (with its XDG runtime and
/// data directories) in a temporary directory, and 65536 subordinate IDs
/// in /etc/subuid and /etc/subgid. Dropped: its processes killed, the
/// ranges and the user removed, the directory too.
/// An ordinary user; see the module.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The first of its 65536 subordinate IDs (inside 1 is this).
    pub subid_start: u32,
    pub home: PathBuf,
    _dir: tempfile::TempDir,
}

impl User {
    pub fn create() -> User {
        // Tests of one process run side by side: a user (and a range) each.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 4;
        let tag = std::process::id() % 100_000;
        let name = format!("mdrl{tag}x{n}");
        // Far above the ranges useradd hands out (100000 on), one per user.
        let subid_start = 3_000_000 + ((tag % 1024) * 4 + n) * 65_536;
        // A short path, in /tmp whatever TMPDIR says: podman's cleanup
        // process (conmon's exit command, given --runroot
        // $XDG_RUNTIME_DIR/containers) refuses a runroot over 50
        // characters and exits 125, and `podman run --rm` then waits out
        // conmon's 20 s timeout for an exit that is never recorded.
        let dir = tempfile::Builder::new()
            .prefix("mdrl-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let home = dir.path().join("home");
        must(Command::new("useradd").args([
            "-M",
            "-d",
            &home.display().to_string(),
            "-s",
            "/bin/sh",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            &name,
        ]));
        let range = format!("{}-{}", subid_start, subid_start + 65_535);
        let user = nix::unistd::User::from_name(&name).unwrap().unwrap();
        let made = User {
            name: name.clone(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            subid_start,
            home: home.clone(),
            _dir: dir,
        };
        must(Command::new("usermod").args([
            "--add-subuids",
            &range,
            "--add-subgids",
            &range,
            &name,
        ]));
        for sub in ["", "run", "data"] {
            std::fs::create_dir_all(home.join(sub)).unwrap();
            std::os::unix::fs::chown(home.join(sub), Some(made.uid), Some(made.gid)).unwrap();
        }
        std::fs::set_permissions(home.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        made
    }

    /// `program` as this user, with the environment a login would give.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(self.setpriv_args()).arg(program);
        cmd
    }

    /// The same as a shell command's start (for hyperfine): `setpriv … env
    /// -i …`, then the program and its arguments.
    pub fn shell_prefix(&self) -> String {
        format!("setpriv {}", self.setpriv_args().join(" "))
    }

    fn setpriv_args(&self) -> Vec<String> {
        vec![
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
            "--".into(),
            "env".into(),
            "-i".into(),
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
            format!("HOME={}", self.home.display()),
            format!("XDG_RUNTIME_DIR={}", self.home.join("run").display()),
            format!("XDG_DATA_HOME={}", self.home.join("data").display()),
        ]
    }

    pub fn socket(&self) -> PathBuf {
        self.home.join("run/mini-docker.sock")
    }

    pub fn root(&self) -> PathBuf {
        self.home.join("data/mini-docker")
    }

    /// The PIDs of this user's processes.
    pub fn processes(&self) -> Vec<i32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == self.uid)
            })
            .collect()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-U", &self.uid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let range = format!("{}-{}", self.subid_start, self.subid_start + 65_535);
        let _ = Command::new("usermod")
            .args(["--del-subuids", &range, "--del-subgids", &range, &self.name])
            .status();
        let _ = Command::new("userdel").arg(&self.name).status();
        // What userdel leaves: the user's files in shared memory (a rootless
        // podman's lock file, /dev/shm/libpod_rootless_lock_UID).
        for entry in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.metadata().is_ok_and(|m| m.uid() == self.uid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
