//! Each chapter's main experiment, as `verify` runs it: the command a
//! learner runs to see the chapter's mechanism work, with what it needs made
//! ready first (a store with the fixture image, a registry holding it, a
//! daemon root).

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Outcome {
    pub success: bool,
    pub output: String,
}

pub struct Experiments {
    bin: PathBuf,
    rootfs: PathBuf,
    dir: tempfile::TempDir,
    registry: testkit::registry::Registry,
}

fn outcome(out: std::process::Output) -> Outcome {
    Outcome {
        success: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

impl Experiments {
    /// Makes ready what the experiments need, with the binaries built into
    /// `target` from the workspace at `_ws`.
    pub fn prepare(_ws: &Path, target: &Path) -> Result<Experiments> {
        let bin = target.join("debug");
        let rootfs = testkit::fixture::rootfs();
        let dir = tempfile::Builder::new()
            .prefix("xtask-experiments-")
            .tempdir()?;
        let registry = testkit::registry::Registry::start(testkit::registry::Auth::None);
        let e = Experiments {
            bin,
            rootfs,
            dir,
            registry,
        };
        let store = e.dir.path().join("store");
        let daemon_images = e.dir.path().join("daemon/images");
        for (store, name) in [
            (&store, "fixture:latest"),
            (&daemon_images, "docker.io/library/fixture:latest"),
        ] {
            let out = e
                .cmd("chapter-04", None)
                .arg("--store")
                .arg(store)
                .args(["import", "--rootfs"])
                .arg(&e.rootfs)
                .arg(name)
                .output()?;
            ensure!(
                out.status.success(),
                "importing the fixture: {}",
                outcome(out).output
            );
        }
        let out = e
            .cmd("chapter-05", None)
            .arg("--store")
            .arg(&store)
            .args(["push", "fixture:latest", &e.remote()])
            .output()?;
        ensure!(
            out.status.success(),
            "pushing the fixture: {}",
            outcome(out).output
        );
        Ok(e)
    }

    fn remote(&self) -> String {
        format!("{}/verify/fixture:v1", self.registry.addr)
    }

    fn cmd(&self, name: &str, stubs: Option<&str>) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        match stubs {
            Some(s) => cmd.env("COURSE_STUBS", s),
            None => cmd.env_remove("COURSE_STUBS"),
        };
        cmd.env("RUST_BACKTRACE", "0").stdin(Stdio::null());
        cmd
    }

    /// Runs chapter `n`'s main experiment with `stubs` stubbed.
    pub fn run(&self, n: u32, stubs: Option<&str>) -> Result<Outcome> {
        let d = self.dir.path();
        let out = match n {
            1 => self
                .cmd("chapter-01", stubs)
                .args(["run", "--rootfs"])
                .arg(&self.rootfs)
                .args(["--ns", "uts,pid,mnt,ipc,net", "--", "/bin/true"])
                .output()?,
            2 => self
                .cmd("chapter-02", stubs)
                .args(["run", "--memory", "64m", "--rootfs"])
                .arg(&self.rootfs)
                .args(["--", "/bin/true"])
                .output()?,
            3 => self.cmd("chapter-03", stubs).arg("cow").output()?,
            4 => self
                .cmd("chapter-04", stubs)
                .arg("--store")
                .arg(d.join("store"))
                .args(["unpack", "fixture:latest"])
                .output()?,
            5 => {
                let fresh = d.join(format!("pulled-{}", stubs.is_some()));
                let _ = std::fs::remove_dir_all(&fresh);
                self.cmd("chapter-05", stubs)
                    .arg("--store")
                    .arg(&fresh)
                    .args(["pull", &self.remote()])
                    .output()?
            }
            6 => return self.run_engine(stubs),
            _ => {
                return Ok(Outcome {
                    success: false,
                    output: format!("no experiment for chapter {n}"),
                })
            }
        };
        Ok(outcome(out))
    }

    /// mini-dockerd on a root of its own, and `mini-docker run --rm` of the
    /// fixture; the daemon (with its stubs) stopped after.
    fn run_engine(&self, stubs: Option<&str>) -> Result<Outcome> {
        let socket = self.dir.path().join("api.sock");
        let host = format!("unix://{}", socket.display());
        let mut daemon = self
            .cmd("mini-dockerd", stubs)
            .arg("--root")
            .arg(self.dir.path().join("daemon"))
            .args(["-H", &host])
            .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-test-verify-")
            .env("MINI_DOCKER_NET_PREFIX", "vrfy")
            .env("MINI_DOCKER_ADDRESS_POOL", "10.254.0.0/16")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mini-dockerd")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self
            .cmd("mini-docker", stubs)
            .args([
                "-H",
                &host,
                "run",
                "--rm",
                "--network",
                "none",
                "fixture",
                "/bin/true",
            ])
            .output();
        // SAFETY: SIGTERM to the daemon we started; it stops cleanly.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
        let _ = daemon.wait();
        let _ = std::fs::remove_file(&socket);
        testkit::unmount_below(self.dir.path());
        Ok(outcome(out?))
    }
}
