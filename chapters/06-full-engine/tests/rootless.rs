//! Rootless: `mini-dockerd` started by an ordinary user, one this test
//! creates (with subordinate ID ranges of its own) and removes after,
//! processes, ranges and files included. The real docker CLI drives it.

mod common;
use common::{docker_clis, host_uid_of, stdout_of};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::privileged;
use testkit::rootless::{must, User as TestUser};

/// The user's daemon, stopped (SIGTERM) when dropped.
struct Daemon(std::process::Child);

impl Daemon {
    fn start(user: &TestUser) -> Daemon {
        Daemon::start_with(user, None)
    }

    /// With `resolv_conf` as the daemon's /etc/resolv.conf (and so
    /// slirp4netns's, which it starts): bound over the host's in a mount
    /// namespace root makes for it, before becoming the user.
    fn start_with(user: &TestUser, resolv_conf: Option<&Path>) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(user.home.join("daemon.log"))
            .unwrap();
        let as_user = user.cmd(testkit::bin("mini-dockerd"));
        let mut cmd = match resolv_conf {
            None => as_user,
            Some(file) => {
                let mut cmd = Command::new("unshare");
                cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
                    .arg(file)
                    .arg(as_user.get_program())
                    .args(as_user.get_args());
                cmd
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(user.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "the rootless daemon did not listen: {}",
                daemon_log(user)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon(child)
    }

    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

fn daemon_log(user: &TestUser) -> String {
    std::fs::read_to_string(user.home.join("daemon.log")).unwrap_or_default()
}

/// The docker CLI `cli` as the user, at the user's daemon.
fn docker(user: &TestUser, cli: &Path, args: &[&str]) -> Output {
    user.cmd(cli)
        .arg("-H")
        .arg(format!("unix://{}", user.socket().display()))
        .args(args)
        .output()
        .unwrap()
}

fn docker_ok(user: &TestUser, cli: &Path, args: &[&str]) -> String {
    let out = docker(user, cli, args);
    assert!(
        out.status.success(),
        "{} {args:?}: {out:?}\n{}",
        cli.display(),
        daemon_log(user)
    );
    stdout_of(&out)
}

/// The fixture pushed to a local registry (by root, with chapter 05).
fn registry_with_fixture() -> (testkit::registry::Registry, String) {
    let registry = testkit::registry::Registry::start(testkit::registry::Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let store = chapter_04::Store::open(dir.path().join("images")).unwrap();
    common::import_fixture(&store);
    let image = common::push_fixture(&store, &registry);
    (registry, image)
}

/// What these tests start from: the fixture in a local registry, a user
/// made for the test, the first docker CLI on the machine.
fn scene() -> (testkit::registry::Registry, String, TestUser, PathBuf) {
    let (registry, image) = registry_with_fixture();
    (registry, image, TestUser::create(), docker_clis().remove(0))
}

/// `user`'s daemon (with `resolv_conf` as its /etc/resolv.conf where
/// given), `image` pulled into it.
fn pulled(user: &TestUser, cli: &Path, image: &str, resolv_conf: Option<&Path>) -> Daemon {
    let daemon = Daemon::start_with(user, resolv_conf);
    docker_ok(user, cli, &["pull", image]);
    daemon
}

#[test]
fn an_ordinary_user_runs_the_engine_rootless() {
    if !privileged("an_ordinary_user_runs_the_engine_rootless") {
        return;
    }
    let (registry, image) = registry_with_fixture();
    let user = TestUser::create();
    let clis = docker_clis();
    let cli = &clis[0];
    let mounts_before = testkit::mount_points();
    let netns_before = named_netns();
    // A user removed earlier may have had this uid and left files.
    let strays_before = strays(&user);

    let daemon = Daemon::start(&user);
    // The daemon and its namespace holder are the user's; nothing of it is
    // mounted where the host sees it.
    assert!(!user.processes().is_empty());
    let info = docker_ok(
        &user,
        cli,
        &["info", "--format", "{{.SecurityOptions}} {{.CgroupDriver}}"],
    );
    assert!(
        info.contains("name=rootless") && info.trim().ends_with("none"),
        "{info}"
    );

    // Pulled over the host's loopback; unpacked as the namespace's root.
    docker_ok(&user, cli, &["pull", &image]);
    let out = docker_ok(
        &user,
        cli,
        &["run", "--rm", "--network", "none", &image, "id", "-u"],
    );
    assert_eq!(out.trim(), "0");

    // Root inside is the user outside; any other ID inside is one of the
    // user's subordinate IDs (1000 inside is the range's 999th).
    let id = docker_ok(
        &user,
        cli,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "-v",
            "data:/data",
            &image,
            "sleep",
            "300",
        ],
    );
    let id = id.trim();
    let pid = docker_ok(&user, cli, &["inspect", "--format", "{{.State.Pid}}", id]);
    assert_eq!(host_uid_of(pid.trim()), user.uid);
    docker_ok(
        &user,
        cli,
        &["exec", "-d", "-u", "1000", id, "sleep", "301"],
    );
    let mut sleeper = None;
    assert!(
        common::eventually(|| {
            sleeper = all_pids().into_iter().find(|p| cmdline(*p) == "sleep 301");
            sleeper.is_some()
        }),
        "the exec's sleep 301 never ran"
    );
    assert_eq!(host_uid_of(sleeper.unwrap()), user.subid_start + 999);

    // A named volume, written inside: on the host its file belongs to the
    // user (root inside).
    docker_ok(&user, cli, &["exec", id, "sh", "-c", "echo kept > /data/f"]);
    let volume = docker_ok(
        &user,
        cli,
        &["volume", "inspect", "--format", "{{.Mountpoint}}", "data"],
    );
    let file = PathBuf::from(volume.trim()).join("f");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept\n");
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), user.uid);
    assert!(docker_ok(&user, cli, &["logs", id]).is_empty());

    // Limits need a cgroup this host does not delegate: refused, saying why.
    let refused = docker(
        &user,
        cli,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-m",
            "64m",
            &image,
            "true",
        ],
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("rootless") && said.contains("delegat"),
        "{said}"
    );
    // The host's network: a server the test runs on the host's loopback
    // answers a container on it.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let answering = std::thread::spawn(move || {
        use std::io::Write;
        let (mut conn, _) = server.accept().unwrap();
        conn.write_all(b"hello from the host\n").unwrap();
    });
    let heard = docker_ok(
        &user,
        cli,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            &image,
            "sh",
            "-c",
            &format!("nc 127.0.0.1 {port} </dev/null"),
        ],
    );
    assert_eq!(heard, "hello from the host\n");
    answering.join().unwrap();
    // Every docker CLI on the machine drives it (Debian's 20.10 too).
    for other in &clis[1..] {
        let out = docker_ok(
            &user,
            other,
            &["run", "--rm", "--network", "none", &image, "id", "-u"],
        );
        assert_eq!(out.trim(), "0", "{}", other.display());
    }

    // The daemon restarts; the container runs on, and the new daemon knows it.
    daemon.stop();
    let daemon = Daemon::start(&user);
    let status = docker_ok(
        &user,
        cli,
        &["inspect", "--format", "{{.State.Status}}", id],
    );
    assert_eq!(status.trim(), "running");
    assert_eq!(
        docker_ok(&user, cli, &["exec", id, "cat", "/data/f"]),
        "kept\n"
    );
    docker_ok(&user, cli, &["stop", "-t", "1", id]);
    docker_ok(&user, cli, &["rm", id]);
    docker_ok(&user, cli, &["volume", "rm", "data"]);

    // The containers gone, the daemon stopped: no process of the user, no
    // mount the host sees, nothing outside the user's own directories.
    daemon.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !user.processes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(user.processes(), Vec::<i32>::new(), "{}", daemon_log(&user));
    assert_eq!(testkit::mount_points(), mounts_before);
    assert_eq!(named_netns(), netns_before);
    assert_eq!(strays(&user), strays_before, "files outside its home");
    assert!(user.root().join("images").is_dir());
    drop(registry);
}

/// The named network namespaces (`ip netns`).
fn named_netns() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Files in the places anyone may write (/tmp, /var/tmp, /dev/shm, /run)
/// that belong to `user` or to one of its subordinate IDs, outside its
/// home (where its root, socket and run directory are).
fn strays(user: &TestUser) -> Vec<PathBuf> {
    let ours =
        |uid: u32| uid == user.uid || (user.subid_start..user.subid_start + 65_536).contains(&uid);
    let home = user.home.parent().unwrap_or(&user.home).to_path_buf();
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = ["/tmp", "/var/tmp", "/dev/shm", "/run"]
        .iter()
        .map(PathBuf::from)
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.starts_with(&home) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if ours(meta.uid()) {
                found.push(path.clone());
            }
            if meta.is_dir() && meta.dev() == std::fs::metadata(&dir).map_or(0, |m| m.dev()) {
                stack.push(path);
            }
        }
    }
    found
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The host's first global IPv4 address (`ip -4 -o addr show scope global`).
fn host_address() -> String {
    let out = must(Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .map(String::from)
        .expect("a global IPv4 address on this host")
}

#[test]
fn a_rootless_bridge_reaches_out_and_publishes_ports() {
    if !privileged("a_rootless_bridge_reaches_out_and_publishes_ports") {
        return;
    }
    let (registry, image, user, cli) = scene();
    let cli = &cli;
    let daemon = pulled(&user, cli, &image, None);

    // Out: a server on the host's own address, reached from the default
    // bridge through slirp4netns (which connects from the host, as the user).
    let server = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let answering = std::thread::spawn(move || {
        use std::io::Write;
        let (mut conn, _) = server.accept().unwrap();
        conn.write_all(b"hello from the host\n").unwrap();
    });
    let address = host_address();
    let heard = docker_ok(
        &user,
        cli,
        &[
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            &format!("nc {address} {port} </dev/null"),
        ],
    );
    assert_eq!(heard, "hello from the host\n", "{}", daemon_log(&user));
    answering.join().unwrap();

    // In: a port published on the host's loopback reaches the container.
    let id = docker_ok(
        &user,
        cli,
        &[
            "run",
            "-d",
            "-p",
            "127.0.0.1::8080",
            &image,
            "sh",
            "-c",
            "while true; do echo hi | nc -l -p 8080; done",
        ],
    );
    let id = id.trim();
    let published = docker_ok(&user, cli, &["port", id, "8080"]);
    let published = published
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(published.starts_with("127.0.0.1:"), "{published}");
    // The container's "hi", once its nc listens; what the port said last.
    let answers = || -> (bool, String) {
        let mut said = String::new();
        let heard = common::eventually(|| {
            use std::io::Read;
            said.clear();
            std::net::TcpStream::connect(&published)
                .and_then(|mut conn| conn.read_to_string(&mut said))
                .is_ok()
                && said == "hi\n"
        });
        (heard, said)
    };
    let (heard, said) = answers();
    assert!(
        heard,
        "{published} answered {said:?}\n{}",
        daemon_log(&user)
    );
    // The daemon restarts; the container and its published port live on
    // (slirp4netns holds the port, the holder the namespaces).
    daemon.stop();
    let daemon = Daemon::start(&user);
    assert_eq!(
        docker_ok(
            &user,
            cli,
            &["inspect", "--format", "{{.State.Status}}", id]
        )
        .trim(),
        "running"
    );
    let (heard, said) = answers();
    assert!(
        heard,
        "after the restart {published} answered {said:?}\n{}",
        daemon_log(&user)
    );
    docker_ok(&user, cli, &["rm", "-f", id]);
    // The forward went with the container, removed by the new daemon.
    assert!(
        std::net::TcpStream::connect(&published).is_err(),
        "{published} still answers"
    );

    daemon.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !user.processes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        user.processes(),
        Vec::<i32>::new(),
        "slirp4netns or the holder left running"
    );
    drop(registry);
}

/// What `args` of chapter `bin`'s experiments say as `user`: (success,
/// stdout and stderr together).
fn experiment(user: &TestUser, bin: &str, args: &[&str]) -> (bool, String) {
    let out = user
        .cmd(testkit::bin(bin))
        .args(args)
        .current_dir(&user.home)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_experiments_run_as_an_ordinary_user_or_say_why_not() {
    if !privileged("the_experiments_run_as_an_ordinary_user_or_say_why_not") {
        return;
    }
    let (registry, image) = registry_with_fixture();
    let user = TestUser::create();
    // Run: namespaces through a user namespace of one's own, an overlay in
    // it, a pull (and unpack) into one's own store.
    for (bin, args, shows) in [
        ("chapter-01", vec!["user"], "Uid:"),
        (
            "chapter-01",
            vec!["all", "--", "/bin/sh", "-c", "id -u"],
            "0",
        ),
        ("chapter-03", vec!["cow"], "copied up"),
        (
            "chapter-03",
            vec!["whiteout"],
            "opaque (user.overlay.opaque=y)",
        ),
    ] {
        let (ok, text) = experiment(&user, bin, &args);
        assert!(ok && text.contains(shows), "{bin} {args:?}: {text}");
    }
    let store = user.home.join("store").display().to_string();
    let (ok, text) = experiment(&user, "chapter-05", &["--store", &store, "pull", &image]);
    assert!(ok, "chapter-05 pull: {text}");
    // Refused, each with the reason.
    for (bin, args, says) in [
        ("chapter-01", vec!["veth"], "needs root"),
        (
            "chapter-02",
            vec!["run", "-m", "64m", "--", "/bin/true"],
            "need root",
        ),
        ("chapter-03", vec!["share"], "belong"),
        (
            "chapter-04",
            vec!["--store", &store, "import"],
            "readable only by their owner",
        ),
    ] {
        let (ok, text) = experiment(&user, bin, &args);
        assert!(!ok && text.contains(says), "{bin} {args:?}: {text}");
    }
    drop(registry);
}

#[test]
fn a_rootless_container_replaces_a_directory_of_its_image() {
    if !privileged("a_rootless_container_replaces_a_directory_of_its_image") {
        return;
    }
    let (registry, image, user, cli) = scene();
    let cli = &cli;
    let daemon = pulled(&user, cli, &image, None);

    // A directory of the image removed and made again: overlay marks it
    // opaque in the container's layer (in a user namespace, with
    // user.overlay.opaque), so nothing of the image's shows through.
    let listing = |args: &[&str]| docker_ok(&user, cli, args).trim().to_string();
    let replaced_here = listing(&[
        "run",
        "--name",
        "replacer",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "rm -rf /usr/sbin && mkdir /usr/sbin && echo mine > /usr/sbin/only && ls /usr/sbin",
    ]);
    assert_eq!(replaced_here, "only", "{}", daemon_log(&user));
    let id = "replacer";
    let diff = docker_ok(&user, cli, &["diff", id]);
    assert!(diff.lines().any(|l| l == "C /usr/sbin"), "{diff}");

    // Committed, the layer carries the opaque marker; pushed and pulled
    // back (unpacked again as the namespace's root), it still hides the
    // image's /usr/sbin.
    let replaced = format!("{}/replaced:1", registry.addr);
    docker_ok(&user, cli, &["commit", id, &replaced]);
    docker_ok(&user, cli, &["rm", "-f", id]);
    let run_ls = || {
        listing(&[
            "run",
            "--rm",
            "--network",
            "none",
            &replaced,
            "ls",
            "/usr/sbin",
        ])
    };
    assert_eq!(run_ls(), "only");
    docker_ok(&user, cli, &["push", &replaced]);
    docker_ok(&user, cli, &["rmi", &replaced]);
    docker_ok(&user, cli, &["pull", &replaced]);
    assert_eq!(run_ls(), "only");
    // The image's other directories are still there.
    assert!(listing(&[
        "run",
        "--rm",
        "--network",
        "none",
        &replaced,
        "ls",
        "/usr/bin"
    ])
    .lines()
    .any(|l| l == "wc"));
    daemon.stop();
    drop(registry);
}

#[test]
fn rootless_containers_resolve_names() {
    if !privileged("rootless_containers_resolve_names") {
        return;
    }
    let (registry, image, user, cli) = scene();
    let cli = &cli;
    // The host's resolver, as the daemon and slirp4netns see it: one of the
    // test's own on a loopback address, answering outside.test.
    let (resolver, answering) =
        common::fake_upstream("127.0.0.78:53", std::net::Ipv4Addr::new(192, 0, 2, 7));
    let resolv_conf = user.home.join("resolv.conf");
    std::fs::write(&resolv_conf, format!("nameserver {}\n", resolver.ip())).unwrap();
    let daemon = pulled(&user, cli, &image, Some(&resolv_conf));
    let lookup = |args: &[&str]| -> (String, Vec<String>) {
        let out = docker_ok(&user, cli, args);
        (out.clone(), common::addresses(&out))
    };

    // The default bridge: the host's loopback resolver becomes
    // slirp4netns's 10.0.2.3, which asks the host's resolver as the user.
    let (said, found) = lookup(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "grep nameserver /etc/resolv.conf; nslookup -type=a outside.test",
    ]);
    assert!(said.contains("nameserver 10.0.2.3"), "{said}");
    assert_eq!(found, ["192.0.2.7"], "{said}\n{}", daemon_log(&user));

    // A network of the user's: the embedded DNS server answers the names
    // of its containers, and asks the host's resolver for the rest.
    docker_ok(&user, cli, &["network", "create", "names"]);
    docker_ok(
        &user,
        cli,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "names",
            &image,
            "sleep",
            "300",
        ],
    );
    let web_ip = docker_ok(
        &user,
        cli,
        &[
            "inspect",
            "--format",
            "{{.NetworkSettings.Networks.names.IPAddress}}",
            "web",
        ],
    );
    for (name, want) in [("web", web_ip.trim()), ("outside.test", "192.0.2.7")] {
        let (said, found) = lookup(&[
            "run",
            "--rm",
            "--network",
            "names",
            &image,
            "nslookup",
            "-type=a",
            name,
        ]);
        assert_eq!(found, [want], "{name}: {said}\n{}", daemon_log(&user));
    }
    docker_ok(&user, cli, &["rm", "-f", "web"]);
    docker_ok(&user, cli, &["network", "rm", "names"]);
    daemon.stop();
    let _ = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.send_to(b"stop", resolver));
    answering.join().unwrap();
    drop(registry);
}
