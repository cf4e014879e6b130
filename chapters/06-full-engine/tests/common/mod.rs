//! An engine for one test: a temporary root holding the fixture image, a
//! daemon on its own socket, its own cgroup prefix, and a guard that
//! removes every container, stops the daemon and sweeps what is left, also
//! when the test fails halfway.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testkit::bin;

static ENGINES: AtomicUsize = AtomicUsize::new(0);

pub struct Engine {
    pub root: PathBuf,
    pub socket: PathBuf,
    pub cgroup_prefix: String,
    /// Bridge names and the nftables table (`mini_docker_<prefix>`).
    pub net_prefix: String,
    /// This engine's own addresses (tests run engines side by side).
    pub address_pool: String,
    /// More environment for the daemon (`MINI_DOCKER_NAT=iptables`).
    pub env: Vec<(String, String)>,
    /// More flags for the daemon (`--userns-remap root`).
    pub daemon_args: Vec<String>,
    daemon: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// A root with the fixture image (as `fixture:latest`) and a daemon.
    pub fn start() -> Engine {
        Engine::start_with(|_| {})
    }

    /// Like [`Engine::start`], with more images put in the store first.
    pub fn start_with(prepare: impl FnOnce(&chapter_04::Store)) -> Engine {
        let mut engine = Engine::prepared(prepare);
        engine.start_daemon();
        engine
    }

    /// An engine whose daemon runs under `--userns-remap root`, with root's
    /// subordinate IDs (from `start` on) in files of its own, so the
    /// machine's /etc/subuid is not touched. Its directory is o+x, as the
    /// containers' root must pass it.
    pub fn start_remapped(start: u32, prepare: impl FnOnce(&chapter_04::Store)) -> Engine {
        let mut engine = Engine::prepared(prepare);
        let dir = engine.root.parent().unwrap().to_path_buf();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        let line = format!("root:{start}:65536\n");
        for file in ["subuid", "subgid"] {
            std::fs::write(dir.join(file), &line).unwrap();
        }
        engine.env.extend([
            (
                "MINI_DOCKER_SUBUID".into(),
                dir.join("subuid").display().to_string(),
            ),
            (
                "MINI_DOCKER_SUBGID".into(),
                dir.join("subgid").display().to_string(),
            ),
        ]);
        engine.daemon_args = vec!["--userns-remap".into(), "root".into()];
        engine.start_daemon();
        engine
    }

    /// An engine whose daemon has more environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Engine {
        let mut engine = Engine::prepared(|_| {});
        engine
            .env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        engine.start_daemon();
        engine
    }

    /// An engine whose daemon runs with more flags.
    pub fn start_with_flags(flags: &[&str]) -> Engine {
        let mut engine = Engine::prepared(|_| {});
        use std::os::unix::fs::PermissionsExt;
        let dir = engine.root.parent().unwrap().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        engine.daemon_args = flags.iter().map(|f| f.to_string()).collect();
        engine.start_daemon();
        engine
    }

    /// The root with its images, the daemon not started.
    fn prepared(prepare: impl FnOnce(&chapter_04::Store)) -> Engine {
        let dir = tempfile::Builder::new()
            .prefix("mini-docker-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let store = chapter_04::Store::open(root.join("images")).unwrap();
        import_fixture(&store);
        prepare(&store);
        let n = ENGINES.fetch_add(1, Ordering::SeqCst);
        Engine {
            socket: dir.path().join("api.sock"),
            root,
            cgroup_prefix: format!("mini-docker-test-e{}-{n}-", std::process::id()),
            net_prefix: format!("e{n}"),
            address_pool: format!("10.{}.0.0/16", 100 + n % 150),
            env: Vec::new(),
            daemon_args: Vec::new(),
            daemon: None,
            _dir: dir,
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.parent().unwrap().join("daemon.log"))
            .unwrap();
        let child = Command::new(bin("mini-dockerd"))
            .arg("--root")
            .arg(&self.root)
            .arg("-H")
            .arg(self.host())
            .args(&self.daemon_args)
            .env("MINI_DOCKER_CGROUP_PREFIX", &self.cgroup_prefix)
            .env("MINI_DOCKER_NET_PREFIX", &self.net_prefix)
            .env("MINI_DOCKER_ADDRESS_POOL", &self.address_pool)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting mini-dockerd");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "mini-dockerd did not come up: {}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9 the daemon (its containers keep running under their monitors).
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The daemon's log, and how it ended if it did (a daemon killed by a
    /// signal writes nothing of it).
    pub fn daemon_log(&self) -> String {
        let mut log = std::fs::read_to_string(self.root.parent().unwrap().join("daemon.log"))
            .unwrap_or_default();
        if let Some(child) = &self.daemon {
            use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            // WNOWAIT: look, and leave the child to be reaped by its owner.
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(pid), flags) {
                Ok(WaitStatus::StillAlive) | Err(_) => {}
                Ok(ended) => log += &format!("\n(the daemon, PID {pid}, has ended: {ended:?})"),
            }
        }
        log
    }

    /// `mini-docker ARGS` against this engine.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("mini-docker"));
        cmd.args(["-H", &self.host()]).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cli(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mini-docker {args:?} failed ({:?}): {}{}\ndaemon log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The real docker CLI pointed at this engine, if the machine has one.
    /// Under CI it must (.ci/run installs it).
    pub fn docker(&self, args: &[&str]) -> Option<Command> {
        docker_clis().first().map(|cli| self.docker_at(cli, args))
    }

    /// A given docker CLI binary pointed at this engine.
    pub fn docker_at(&self, cli: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(cli);
        // A config dir of our own: no credential helpers, no contexts.
        cmd.env(
            "DOCKER_CONFIG",
            self.root.parent().unwrap().join("docker-config"),
        )
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(["-H", &self.host()])
        .args(args);
        cmd
    }

    /// `run --rm FLAGS fixture true` must fail, its error saying `says`.
    pub fn refuses_run(&self, flags: &[&str], says: &str) {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["fixture", "true"]);
        let out = self.run(&args);
        assert!(!out.status.success(), "{flags:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flags:?}: {err}");
    }

    /// `inspect NAME` as JSON (the first object).
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.ok(&["inspect", name])).unwrap()[0].clone()
    }

    /// Runs a docker CLI against this engine and requires success; stdout.
    pub fn docker_ok(&self, cli: &Path, args: &[&str]) -> String {
        let out = self.docker_at(cli, args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {out:?}\n{}",
            cli.display(),
            self.daemon_log()
        );
        stdout_of(&out)
    }

    /// Mounts under this engine's root, and its containers' cgroups.
    pub fn leftovers(&self) -> Vec<String> {
        let root = self.root.to_string_lossy().into_owned();
        let mut left: Vec<String> = testkit::mount_points()
            .into_iter()
            .filter(|mp| mp.starts_with(&root))
            .map(|mp| format!("mount {mp}"))
            .collect();
        left.extend(
            testkit::janitor::find_cgroups(&self.cgroup_prefix)
                .into_iter()
                .map(|d| format!("cgroup {}", d.display())),
        );
        left.extend(self.network_leftovers());
        left
    }

    /// This engine's network interfaces (bridges) and its nftables table.
    pub fn network_leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                *n == format!("{}0", self.net_prefix)
                    || n.starts_with(&format!("{}-", self.net_prefix))
            })
            .map(|n| format!("link {n}"))
            .collect();
        let upper = self.net_prefix.to_uppercase();
        for (table, suffix) in [
            ("nat", "PRE"),
            ("nat", "OUT"),
            ("nat", "POST"),
            ("filter", "FWD"),
        ] {
            let chain = format!("MD-{upper}-{suffix}");
            let listed = Command::new("iptables")
                .args(["-w", "-t", table, "-n", "-L", &chain])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if listed.is_ok_and(|s| s.success()) {
                left.push(format!("iptables chain {table} {chain}"));
            }
        }
        let table = format!("mini_docker_{}", self.net_prefix);
        let listed = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output();
        if listed.is_ok_and(|o| o.status.success()) {
            left.push(format!("nft table {table}"));
        }
        left
    }

    /// Processes whose command line names this engine's root (monitors).
    pub fn monitors(&self) -> Vec<i32> {
        let root = self.root.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(" monitor ") && text.contains(&root) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = self.run(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.run(&["rm", "-f", id]);
            }
        }
        self.kill_daemon();
        for pid in self.monitors() {
            // SAFETY: kill(2) of a monitor of this test's engine.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        testkit::janitor::sweep_cgroups(&self.cgroup_prefix);
        // What a killed daemon could not take down: its bridges and table.
        for left in self.network_leftovers() {
            if let Some(link) = left.strip_prefix("link ") {
                let _ = Command::new("ip").args(["link", "del", link]).status();
            } else if let Some(table) = left.strip_prefix("nft table ") {
                let _ = Command::new("nft")
                    .args(["delete", "table", "ip", table])
                    .status();
            }
        }
        testkit::unmount_below(&self.root);
    }
}

/// Every docker CLI on this machine, one per version: the one on PATH
/// first (often a v28 of its own), then Debian's docker.io (20.10) at
/// /usr/bin/docker. None is a skip, except under CI.
/// Imports a copy of the fixture, changed by `edit`, as `reference` with
/// `config` (its cmd /bin/sh unless the config says otherwise).
pub fn import_fixture_variant(
    store: &chapter_04::Store,
    reference: &str,
    mut config: chapter_04::manifest::ContainerConfig,
    edit: impl FnOnce(&Path),
) {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(testkit::fixture::rootfs())
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(status.success(), "copying the fixture");
    edit(&rootfs);
    config.cmd.get_or_insert_with(|| vec!["/bin/sh".into()]);
    chapter_04::archive::import_rootfs_dir(store, &rootfs, reference, config).unwrap();
}

pub fn docker_clis() -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("docker"))
                .collect()
        })
        .unwrap_or_default();
    candidates.push(PathBuf::from("/usr/bin/docker"));
    let mut seen = Vec::new();
    let mut clis = Vec::new();
    for cli in candidates {
        let Ok(out) = Command::new(&cli).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && !seen.contains(&version) {
            seen.push(version);
            clis.push(cli);
        }
    }
    if clis.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but there is no docker CLI: .ci/run installs docker.io"
        );
        eprintln!("skipped: no docker CLI on this machine (apt-get install docker.io)");
    }
    clis
}

/// A busybox httpd answering `hello-from-<hostname>` on port 80.
pub const HTTPD: &str =
    "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

/// `GET path` of the engine's API (HTTP/1.0: the body is sent whole), as
/// JSON.
pub fn api_get(engine: &Engine, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&engine.socket).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    serde_json::from_slice(&reply[split + 4..])
        .unwrap_or_else(|e| panic!("GET {path}: {e}: {}", String::from_utf8_lossy(&reply)))
}

/// A plain HTTP/1.0 GET of `/`; the whole reply.
pub fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

/// stdout of a finished command, with everything in the panic if it failed.
/// Polls until `f` holds (or 20 s pass); whether it held.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fixture image in `store`, as `docker.io/library/fixture:latest`
/// with `/bin/sh` for its command.
pub fn import_fixture(store: &chapter_04::Store) {
    chapter_04::archive::import_rootfs_dir(
        store,
        &testkit::fixture::rootfs(),
        "docker.io/library/fixture:latest",
        chapter_04::manifest::ContainerConfig {
            cmd: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        },
    )
    .unwrap();
}

/// `store`'s fixture pushed to `registry` with chapter 05, as
/// `fixture:v1`; returns that reference.
pub fn push_fixture(store: &chapter_04::Store, registry: &testkit::registry::Registry) -> String {
    let image = format!("{}/fixture:v1", registry.addr);
    let reference = chapter_05::Reference::parse(&image).unwrap();
    let client = chapter_05::client::Client::new(&reference, true).unwrap();
    chapter_05::push::push(
        &client,
        store,
        "docker.io/library/fixture:latest",
        &Default::default(),
        &chapter_05::progress::Progress::quiet(),
    )
    .unwrap();
    image
}

/// The host's view of a process: its real uid (`Uid:`'s first field).
pub fn host_uid_of(pid: impl std::fmt::Display) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A resolver of the test's own at `at` (a stand-in for the host's):
/// `outside.test` is `answer`; anything else fails.
pub fn fake_upstream(
    at: &str,
    answer_ip: Ipv4Addr,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let socket = std::net::UdpSocket::bind(at)
        .unwrap_or_else(|e| panic!("binding the test's resolver on {at}: {e}"));
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let packet = &buf[..n];
            if packet == b"stop" {
                return;
            }
            use chapter_06::net::dns::{answer, server_failure, Answer};
            let reply = match answer(packet, |name| match name {
                "outside.test" => vec![answer_ip],
                _ => Vec::new(),
            }) {
                Answer::Reply(bytes) => Some(bytes),
                _ => server_failure(packet),
            };
            if let Some(bytes) = reply {
                let _ = socket.send_to(&bytes, from);
            }
        }
    });
    (addr, handle)
}

/// The IPv4 addresses busybox nslookup printed for the name asked.
pub fn addresses(out: &str) -> Vec<String> {
    let mut found: Vec<String> = out
        .split("Name:")
        .skip(1)
        .flat_map(|part| part.lines().filter_map(|l| l.strip_prefix("Address:")))
        .map(|a| a.trim().to_string())
        .filter(|a| a.parse::<Ipv4Addr>().is_ok())
        .collect();
    found.sort();
    found
}
