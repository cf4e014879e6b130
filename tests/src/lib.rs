//! Test support shared by every chapter's tests and the end-to-end tests:
//!
//! - [`fixture`]: the fixture image (busybox plus our `facts` helper),
//!   built on demand from Debian's `busybox-static` and cached under
//!   `target/fixture/`.
//! - [`privileged`]: gate for tests that need root; skips with a reason,
//!   except under `CI=true`, where a privileged test never skips.
//! - [`bin`]: the workspace's built binaries, for tests that drive them as
//!   a user would.
//! - [`janitor`]: removes what a failed or stubbed test run left behind.
//! - [`tree`]: a directory tree described exactly, to compare two trees.
//! - [`registry`]: the real distribution registry on a loopback port.
//! - [`pty`]: a program run on a pseudo-terminal, as a user at a terminal runs it.
//! - [`rootless`]: an ordinary user made (and removed) for the rootless engine.

pub mod build_context;
pub mod fixture;
pub mod janitor;
pub mod peers;
pub mod pty;
pub mod registry;
pub mod rootless;
pub mod tree;
pub mod vm;

use std::path::PathBuf;

/// When set, [`privileged`] appends the name of each test it skips to the
/// file this names, so `cargo xtask grade` can tell a skip from a pass.
pub const SKIP_LOG_ENV: &str = "XTASK_SKIP_LOG";

/// True when the test may use root-only kernel features. Elsewhere it
/// prints why it skips and returns false, unless `CI=true`, where it fails.
pub fn privileged(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and not root: the privileged test {what:?} must run, as root");
    }
    eprintln!("skipped {what}: it needs root (run the suite as root: `sudo -E cargo test`)");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{what}");
        }
    }
    false
}

/// Whether this process may create user namespaces (`unshare -U` works for
/// an ordinary user): then the chapter 01–04 tests run without root, with
/// a user namespace around what needs privilege.
pub fn userns_available() -> bool {
    let number = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    number("/proc/sys/user/max_user_namespaces").unwrap_or(0) > 0
        && number("/proc/sys/kernel/unprivileged_userns_clone").unwrap_or(1) == 1
}

/// True when the test can use the kernel features it needs: as root, or as
/// an ordinary user who may create user namespaces (the test then adds one:
/// see [`with_userns`]). Elsewhere it skips like [`privileged`].
pub fn kernel(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() || userns_available() {
        return true;
    }
    privileged(what)
}

/// For a test that needs root's powers over its own files (mounting an
/// overlay, making a whiteout, chowning): true as root, where the test runs
/// on. As an ordinary user who may create user namespaces, the test binary
/// runs this one test again as root of a new user namespace with its own
/// mount namespace (`unshare --user --map-root-user --mount`), checks that
/// it passed, and returns false: the caller returns, its work done in there.
/// Elsewhere it skips like [`privileged`].
pub fn root_or_userns(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if !userns_available() {
        return privileged(test);
    }
    rerun_in_userns(test)
}

/// For a test of what changes inside a user namespace (a rootless
/// engine's view: no trusted.* xattrs, no device nodes): true once inside
/// one, where the test runs on. Elsewhere, root included, the test binary
/// runs this one test again as root of a new user namespace with its own
/// mount namespace, checks that it passed, and returns false. Skips like
/// [`privileged`] where user namespaces are off.
pub fn in_userns(test: &str) -> bool {
    let in_initial = std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    if !in_initial {
        return true;
    }
    if !userns_available() && !nix::unistd::geteuid().is_root() {
        return privileged(test);
    }
    rerun_in_userns(test)
}

/// Runs `test` of this test binary again in a new user and mount
/// namespace (`unshare --user --map-root-user --mount`); asserts it passed.
fn rerun_in_userns(test: &str) -> bool {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .output()
        .expect("running unshare (util-linux)");
    // Through print!, so the test harness captures it like our own output.
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let ran = String::from_utf8_lossy(&out.stdout).contains(&format!("test {test} ... ok"));
    assert!(
        out.status.success() && ran,
        "{test} failed as root of a user namespace (see its output above)"
    );
    false
}

/// A namespace list for the chapter binaries, with `user` added when this
/// process is not root (an ordinary user creates the others inside it).
pub fn with_userns(namespaces: &str) -> String {
    // `none` needs no privilege: it stays as it is.
    let needs_no_user = nix::unistd::geteuid().is_root()
        || namespaces == "none"
        || namespaces.split(',').any(|n| n == "user");
    if needs_no_user {
        namespaces.to_string()
    } else {
        format!("{namespaces},user")
    }
}

/// A `sleep` process for tests to put somewhere (a cgroup); killed and
/// reaped when dropped, so a test that fails halfway leaves no process.
pub struct Sleeper {
    child: Option<std::process::Child>,
}

impl Sleeper {
    /// `sleep SECONDS`, its output nowhere (a process that keeps a test
    /// harness's pipe open would hold up whoever reads it).
    pub fn start(seconds: u32) -> Sleeper {
        let child = std::process::Command::new("sleep")
            .arg(seconds.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting sleep");
        Sleeper { child: Some(child) }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().map_or(0, |c| c.id() as i32))
    }

    /// Waits for its end; true when a signal ended it.
    pub fn killed(mut self) -> bool {
        let mut child = self.child.take().expect("not waited for yet");
        child.wait().is_ok_and(|s| s.code().is_none())
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A binary of the workspace, built by `cargo test`/`cargo build` into the
/// same profile directory as the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join(name))
        .expect("test binary lives in target/<profile>/deps");
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (cargo test --workspace builds it too)",
        path.display()
    );
    path
}

/// The mount points of this mount namespace, in mount order
/// (`/proc/self/mountinfo`, field 5).
pub fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .collect()
}

/// Unmounts (lazily) everything mounted under `dir`, deepest first.
pub fn unmount_below(dir: &std::path::Path) {
    let prefix = format!("{}/", dir.display());
    let mut mounts: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = nix::mount::umount2(std::path::Path::new(&m), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Waits (up to `limit`) until no podman or conmon process is left: podman
/// runs cleanup processes after each container, which write host state
/// (/run/libpod, cgroups) after `podman run` itself has returned.
pub fn wait_for_podman_cleanup(limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let busy = std::process::Command::new("pgrep")
            .args(["-x", "conmon|podman"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !busy {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs `cmd` with `input` piped to its stdin (closed after it), and
/// collects stdout and stderr.
pub fn run_with_stdin(mut cmd: std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Written from a thread: a large input must not wait on a full stdout.
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out
}

/// Parses the JSON a `facts` run printed, with the raw text in the panic.
pub fn parse_facts(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "facts output is not JSON ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// Runs `bin` once per `(args, shows)` case and checks that it succeeds and
/// prints `shows` (for the tests that every experiment of a chapter runs).
pub fn assert_experiments_show(bin: &str, cases: &[(&[&str], &str)]) {
    for (args, shows) in cases {
        let out = std::process::Command::new(bin)
            .args(*args)
            .output()
            .expect("running an experiment");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(shows),
            "{args:?} should show {shows:?}:\n{text}"
        );
    }
}

/// `skopeo`, run so that it leaves nothing on the host: in a private mount
/// namespace with a tmpfs over /var/lib, where root's skopeo would otherwise
/// keep its blob-info cache (/var/lib/containers/cache) for good.
pub fn skopeo() -> std::process::Command {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /var/lib && exec skopeo \"$@\"",
        "skopeo",
    ]);
    cmd
}

/// The project's Python with Docker's SDK (`target/pyenv`, made by `cargo
/// xtask install`); a missing one is a failure that says how to make it.
pub fn python_with_docker_sdk() -> PathBuf {
    let python = workspace_root().join("target/pyenv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} has no `docker` module: run `cargo xtask install` (it makes the project's Python test environment)",
        python.display()
    );
    python
}
