//! The peers tests compare with, each on roots of its own under a test's
//! directory, and each removing what it adds to the host when dropped:
//! podman (Debian's, with runc and cgroupfs: crun refuses hybrid cgroups)
//! and a real dockerd (Debian's docker.io, no bridge, no iptables).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What podman and dockerd create outside the roots they are given: run
/// directories, a blob cache, parent cgroups.
pub fn host_state() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = [
        "/var/lib/containers",
        "/run/containers",
        "/run/libpod",
        "/run/docker",
        "/run/runc",
        "/run/containerd",
        "/etc/containers/networks",
        // podman's locks live in shared memory, one file for root's podman.
        "/dev/shm/libpod_lock",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|p| p.exists())
    .collect();
    for name in ["docker", "libpod_parent"] {
        for cgroup in crate::janitor::find_cgroups(name) {
            // The group and everything below it.
            let mut stack = vec![cgroup];
            while let Some(dir) = stack.pop() {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    stack.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
                found.push(dir);
            }
        }
    }
    found
}

/// Removes what [`host_state`] shows now and did not show in `before`
/// (deepest first; cgroups with rmdir).
pub fn remove_new_host_state(before: &[PathBuf]) {
    let mut created: Vec<PathBuf> = host_state()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    created.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for path in created {
        if path.starts_with("/sys/fs/cgroup") {
            let _ = std::fs::remove_dir(&path);
        } else if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// podman on `dir/podman` and `dir/podman-run`.
pub struct Podman {
    dir: PathBuf,
    before: Vec<PathBuf>,
}

impl Podman {
    pub fn new(dir: &Path) -> Podman {
        Podman {
            dir: dir.to_path_buf(),
            before: host_state(),
        }
    }

    /// `podman` with this instance's roots and runtime.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.join("podman"))
            .arg("--runroot")
            .arg(self.dir.join("podman-run"))
            .args([
                "--storage-driver",
                "overlay",
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
            ]);
        cmd
    }

    /// Runs podman with `args`; its stdout, or a panic with its stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self
            .cmd()
            .args(args)
            .output()
            .expect("podman (cargo xtask install)");
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Its cleanup processes run on after a container; let them end.
        crate::wait_for_podman_cleanup(Duration::from_secs(5));
        crate::unmount_below(&self.dir);
        remove_new_host_state(&self.before);
    }
}

/// A real dockerd on `dir` (data root, exec root, pid file, socket): no
/// bridge, no iptables rules, its own containerd. Stopped, and what it
/// added to the host removed, when dropped.
pub struct Dockerd {
    child: Child,
    dir: PathBuf,
    before: Vec<PathBuf>,
    pub socket: PathBuf,
}

impl Dockerd {
    pub fn start(dir: &Path) -> Dockerd {
        use std::os::unix::process::CommandExt;
        let before = host_state();
        std::fs::create_dir_all(dir).unwrap();
        let p = |name: &str| dir.join(name).display().to_string();
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args([
                "--data-root",
                &p("docker"),
                "--exec-root",
                &p("docker-exec"),
            ])
            .args(["--pidfile", &p("docker.pid")])
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver", "overlay2"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd (Debian's docker.io: cargo xtask install)");
        let d = Dockerd {
            child,
            dir: dir.to_path_buf(),
            before,
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer on {}: {}",
                d.socket.display(),
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// Debian's docker CLI (20.10) on this dockerd.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // dockerd and the containerd it started, as a process group.
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // containerd may outlive dockerd by a moment.
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        crate::unmount_below(&self.dir);
        remove_new_host_state(&self.before);
    }
}
