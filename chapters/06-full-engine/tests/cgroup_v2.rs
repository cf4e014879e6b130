//! cgroup v2, which this host does not have (its cgroups are hybrid): a
//! microVM boots the distribution's kernel with every v1 controller off
//! (`cgroup_no_v1=all`), and this test binary runs again inside it as its
//! init's child, beside the engine's binaries, newuidmap and the fixture
//! image. There it checks the limits of a root daemon (its containers under
//! `/mini-docker`) and of a rootless one, through a subtree delegated to a
//! user as systemd delegates `user@UID.service` (memory and pids handed
//! down, cpu not).
//!
//! The VM runs under TCG (emulated): nested KVM refuses this guest here.
//! It has no network; the image comes in as a `docker save` archive.

mod common;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::privileged;

/// Set in the guest: this binary is the guest's side of the test.
const GUEST: &str = "MINI_DOCKER_CGROUP_V2_GUEST";
const TEST: &str = "limits_on_cgroup_v2_as_root_and_rootless_through_a_delegated_subtree";
/// The user the delegated subtree belongs to, in the guest.
const ANN: u32 = 1000;
/// Where a systemd host would delegate to ann, with what it hands down.
const DELEGATED: &str = "/sys/fs/cgroup/user.slice/user@1000.service";

#[test]
fn limits_on_cgroup_v2_as_root_and_rootless_through_a_delegated_subtree() {
    if std::env::var_os(GUEST).is_some() {
        guest();
        return;
    }
    if !privileged(TEST) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The fixture, as an archive `load` takes.
    let store = chapter_04::Store::open(dir.path().join("images")).unwrap();
    common::import_fixture(&store);
    let archive = dir.path().join("fixture.tar");
    chapter_04::archive::save_docker(
        &store,
        &["docker.io/library/fixture:latest"],
        std::fs::File::create(&archive).unwrap(),
    )
    .unwrap();

    let mut vm = testkit::vm::Vm::tcg().unwrap();
    vm.memory_mib = 2048;
    vm.kernel_args.push_str(" cgroup_no_v1=all");
    let image = testkit::vm::Initramfs::new(&dir.path().join("initramfs")).unwrap();
    let this = std::env::current_exe().unwrap();
    for (host, guest) in [
        (this.as_path(), "/bin/cgroup-v2-test"),
        (&testkit::bin("mini-dockerd"), "/bin/mini-dockerd"),
        (&testkit::bin("mini-docker"), "/bin/mini-docker"),
        (Path::new("/usr/bin/newuidmap"), "/usr/bin/newuidmap"),
        (Path::new("/usr/bin/newgidmap"), "/usr/bin/newgidmap"),
        (Path::new("/usr/bin/setpriv"), "/usr/bin/setpriv"),
    ] {
        image.program(host, guest).unwrap();
    }
    image.file(&archive, "/fixture.tar").unwrap();
    let overlay = image.module(&vm, "overlay").unwrap();
    for (file, text) in [
        (
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nann:x:1000:1000:ann:/home/ann:/bin/sh\n",
        ),
        ("/etc/group", "root:x:0:\nann:x:1000:\n"),
        ("/etc/subuid", "ann:100000:65536\n"),
        ("/etc/subgid", "ann:100000:65536\n"),
    ] {
        image.text(file, text, 0o644).unwrap();
    }
    image
        .init_on_tmpfs(&format!(
            "/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /run /home/ann /run/user/1000
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
insmod {overlay}
ip link set lo up
chown 1000:1000 /home/ann /run/user/1000
chmod 700 /run/user/1000
echo guest-cgroup-controllers: $(cat /sys/fs/cgroup/cgroup.controllers)
{GUEST}=1 RUST_BACKTRACE=1 /bin/cgroup-v2-test --exact {TEST} --nocapture --test-threads=1
echo guest-test-exit: $?
poweroff -f
"
        ))
        .unwrap();
    let initrd = image.pack(&dir.path().join("initrd.cpio")).unwrap();
    drop(image);
    let _ = std::fs::remove_dir_all(dir.path().join("initramfs"));

    let started = Instant::now();
    let booted = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {}", vm.command(&initrd, "stdio", 900)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&booted.stdout);
    eprintln!(
        "the guest ran {:.0?} under TCG; its console:\n{console}",
        started.elapsed()
    );
    assert!(
        console.contains("guest-cgroup-controllers: cpuset cpu io memory"),
        "the guest has no cgroup v2 controllers"
    );
    assert!(
        console.contains("guest-test-exit: 0"),
        "the guest's side failed (its console is above)"
    );
}

// ---- the guest's side ---------------------------------------------------

/// `mini-docker ARGS` (as `user`, else root); its output.
fn md(user: Option<u32>, args: &[&str]) -> Output {
    let mut cmd = Command::new("/bin/mini-docker");
    cmd.args(args);
    if let Some(uid) = user {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid)
            .gid(uid)
            .env_clear()
            .env("PATH", "/bin:/usr/bin")
            .env("HOME", "/home/ann")
            .env("XDG_RUNTIME_DIR", "/run/user/1000");
    }
    cmd.output().unwrap()
}

/// `mini-docker ARGS`, which must succeed; its stdout, trimmed.
fn md_ok(user: Option<u32>, args: &[&str]) -> String {
    let out = md(user, args);
    assert!(
        out.status.success(),
        "mini-docker {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `mini-docker inspect ID`'s document.
fn inspect(user: Option<u32>, id: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&md_ok(user, &["inspect", id])).unwrap();
    v[0].clone()
}

/// `mini-docker info`'s line `KEY: VALUE`, and its security options.
fn info(user: Option<u32>, key: &str) -> String {
    let text = md_ok(user, &["info"]);
    if key == "SecurityOptions" {
        return text
            .split_once("SecurityOptions:")
            .map_or(String::new(), |(_, o)| o.trim().to_string());
    }
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_default()
        .to_string()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

/// Waits until `daemon` listens on `socket`; its `log` is shown if not.
fn wait_for(socket: &str, daemon: &mut std::process::Child, log: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let said = || std::fs::read_to_string(log).unwrap_or_default();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!(
                "the daemon ended before it listened on {socket}: {status}\n{}",
                said()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no daemon on {socket}\n{}",
            said()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut daemon: std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
}

/// What a container sees of its own limits at /sys/fs/cgroup (a cgroup
/// namespace of its own: Docker's default on v2).
const SEE_LIMITS: &str =
    "id -u; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; cat /proc/self/cgroup";

/// A container limited to 48 MiB that sleeps; its ID.
fn limited_sleeper(user: Option<u32>) -> String {
    md_ok(
        user,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "-m",
            "48m",
            "fixture",
            "sleep",
            "600",
        ],
    )
}

/// The checks both daemons pass: limits seen inside and written outside
/// (under `parent`), the OOM killer, the freezer, and the cgroup gone with
/// the container.
fn limits_work(user: Option<u32>, parent: &str) {
    let seen = md_ok(
        user,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-m",
            "64m",
            "--pids-limit",
            "20",
            "fixture",
            "sh",
            "-c",
            SEE_LIMITS,
        ],
    );
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["0", "67108864", "20", "0::/"],
        "inside"
    );
    let id = limited_sleeper(user);
    let cgroup = format!("{parent}/{}", chapter_06::monitor::cgroup_name(&id));
    assert_eq!(read(&format!("{cgroup}/memory.max")), "50331648");
    let pid = inspect(user, &id)["State"]["Pid"].to_string();
    assert!(
        read(&format!("{cgroup}/cgroup.procs"))
            .lines()
            .any(|p| p == pid),
        "PID 1 of the container is not in {cgroup}"
    );
    md_ok(user, &["pause", &id]);
    assert_eq!(read(&format!("{cgroup}/cgroup.freeze")), "1");
    md_ok(user, &["unpause", &id]);
    // An exec joins the container's cgroup (its root, in its namespace).
    assert_eq!(
        md_ok(user, &["exec", &id, "cat", "/proc/self/cgroup"]),
        "0::/"
    );
    assert_eq!(read(&format!("{cgroup}/pids.current")), "1");
    md_ok(user, &["update", "--memory", "40m", &id]);
    assert_eq!(read(&format!("{cgroup}/memory.max")), "41943040");
    md_ok(user, &["rm", "-f", &id]);
    assert!(!Path::new(&cgroup).exists(), "{cgroup} left behind");
    // tail keeps what it reads of a file with no newline: over 32 MiB, the
    // kernel's OOM killer ends it.
    let out = md(
        user,
        &[
            "run",
            "--name",
            "hog",
            "--network",
            "none",
            "-m",
            "32m",
            "--memory-swap",
            "32m",
            "fixture",
            "tail",
            "/dev/zero",
        ],
    );
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(inspect(user, "hog")["State"]["OOMKilled"], true);
    md_ok(user, &["rm", "hog"]);
}

/// ann's daemon, started in `cgroup` (her delegated one, or later the
/// leaf a daemon moved itself into): root moves a shell there (out of the
/// root cgroup, whose cgroup.procs is root's), which then becomes ann and
/// the daemon.
fn start_rootless(cgroup: &str) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/rootless-daemon.log")
        .unwrap();
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {cgroup}/cgroup.procs && exec /usr/bin/setpriv --reuid={ANN} --regid={ANN} \
             --clear-groups env -i PATH=/bin:/usr/bin HOME=/home/ann MINI_DOCKER_NAT=nft \
             XDG_RUNTIME_DIR=/run/user/1000 XDG_DATA_HOME=/home/ann/data /bin/mini-dockerd"
        ))
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for(
        "/run/user/1000/mini-docker.sock",
        &mut daemon,
        "/rootless-daemon.log",
    );
    daemon
}

fn guest() {
    // The root daemon: its containers under /mini-docker.
    // Only --network none here: the NAT tool is named, never run.
    let mut daemon = Command::new("/bin/mini-dockerd")
        .args(["--root", "/var/lib/mini-docker"])
        .env("MINI_DOCKER_NAT", "nft")
        .stderr(std::fs::File::create("/root-daemon.log").unwrap())
        .spawn()
        .unwrap();
    wait_for("/run/mini-docker.sock", &mut daemon, "/root-daemon.log");
    md_ok(None, &["load", "-i", "/fixture.tar"]);
    assert_eq!(
        (info(None, "CgroupDriver"), info(None, "CgroupVersion")),
        ("cgroupfs".into(), "2".into())
    );
    limits_work(None, "/sys/fs/cgroup/mini-docker");
    let cpus = md_ok(
        None,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--cpus",
            "0.5",
            "fixture",
            "cat",
            "/sys/fs/cgroup/cpu.max",
        ],
    );
    assert_eq!(cpus, "50000 100000");
    stop(daemon);
    eprintln!("guest: the root daemon's limits work");

    // ann's delegated subtree, as systemd's user@1000.service: user.slice
    // hands down memory and pids (not cpu), and the service's cgroup and
    // its cgroup.procs, cgroup.subtree_control and cgroup.threads are hers.
    let slice = "/sys/fs/cgroup/user.slice";
    std::fs::create_dir_all(DELEGATED).unwrap();
    std::fs::write(format!("{slice}/cgroup.subtree_control"), "+memory +pids").unwrap();
    for file in [
        "",
        "/cgroup.procs",
        "/cgroup.subtree_control",
        "/cgroup.threads",
    ] {
        std::os::unix::fs::chown(format!("{DELEGATED}{file}"), Some(ANN), Some(ANN)).unwrap();
    }
    std::fs::set_permissions(
        "/fixture.tar",
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let daemon = start_rootless(DELEGATED);
    let log = || std::fs::read_to_string("/rootless-daemon.log").unwrap_or_default();
    // It moved itself into a leaf of its delegated cgroup.
    assert_eq!(
        read(&format!("/proc/{}/cgroup", daemon.id())),
        "0::/user.slice/user@1000.service/daemon",
        "{}",
        log()
    );
    let ann = Some(ANN);
    md_ok(ann, &["load", "-i", "/fixture.tar"]);
    assert_eq!(
        (info(ann, "CgroupDriver"), info(ann, "CgroupVersion")),
        ("cgroupfs".into(), "2".into())
    );
    assert!(info(ann, "SecurityOptions").contains("name=rootless"));
    limits_work(ann, &format!("{DELEGATED}/mini-docker"));
    // What the delegation does not hand down is refused, saying so.
    let refused = md(
        ann,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--cpus",
            "0.5",
            "fixture",
            "true",
        ],
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && said.contains("no cpu controller")
            && said.contains("memory pids"),
        "{said}"
    );
    // The daemon restarts, in the leaf the first one made (its delegated
    // cgroup, handing controllers down, may hold no process now); a limited
    // container runs on under its monitor, the new daemon knows it, and
    // removing it removes its cgroup.
    let id = limited_sleeper(ann);
    let cgroup = format!(
        "{DELEGATED}/mini-docker/{}",
        chapter_06::monitor::cgroup_name(&id)
    );
    stop(daemon);
    let daemon = start_rootless(&format!("{DELEGATED}/daemon"));
    assert_eq!(inspect(ann, &id)["State"]["Status"], "running", "{}", log());
    assert_eq!(read(&format!("{cgroup}/memory.max")), "50331648");
    md_ok(ann, &["rm", "-f", &id]);
    assert!(!Path::new(&cgroup).exists(), "{cgroup} left behind");
    stop(daemon);
    eprintln!("guest: the rootless daemon's limits work through its delegated subtree");
}
