//! `mini-dockerd --userns-remap`: container root is an unprivileged host
//! user; the image's files still belong to root (and to their other
//! owners) inside, through idmapped layers; what the container writes to
//! a volume belongs to the mapped IDs on the host. Probed from inside, and
//! from the host's /proc, never by trying anything on the host.

mod common;
use common::{docker_clis, host_uid_of, Engine};
use std::os::unix::fs::MetadataExt;
use testkit::privileged;

/// Where root's subordinate IDs start in these tests' own subuid files.
const START: u32 = 300_000;

/// An engine under --userns-remap with, besides the fixture, an image
/// whose files belong to several users.
fn engine() -> Engine {
    Engine::start_remapped(START, |store| {
        let config = Default::default();
        common::import_fixture_variant(
            store,
            "docker.io/library/owners:latest",
            config,
            |rootfs| {
                std::fs::create_dir_all(rootfs.join("home/user")).unwrap();
                std::fs::write(rootfs.join("home/user/notes"), "the user's\n").unwrap();
                for (path, uid, gid) in [("home/user", 1000, 1000), ("home/user/notes", 1000, 1001)]
                {
                    nix::unistd::chown(&rootfs.join(path), Some(uid.into()), Some(gid.into()))
                        .unwrap();
                }
            },
        );
    })
}

#[test]
fn under_userns_remap_container_root_is_an_unprivileged_host_user() {
    if !privileged("under_userns_remap_container_root_is_an_unprivileged_host_user") {
        return;
    }
    let engine = engine();
    let map = format!("0 {START} 65536");
    let script = "cat /proc/self/uid_map; id -u; stat -c '%u:%g %n' / /bin/busybox \
                  /home/user /home/user/notes; touch /new && echo wrote /";
    let text = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "owners",
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], map, "{text}");
    assert_eq!(lines[1], "0", "root inside: {text}");
    assert_eq!(
        lines[2..6],
        [
            "0:0 /",
            "0:0 /bin/busybox",
            "1000:1000 /home/user",
            "1000:1001 /home/user/notes"
        ],
        "{text}"
    );
    assert_eq!(lines[6], "wrote /", "root inside owns its /: {text}");

    // From the host: PID 1 runs as the mapped uid, not as root.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "remapped",
        "--network",
        "none",
        "-v",
        "vol:/data",
        "owners",
        "sleep",
        "60",
    ]);
    let pid = engine.inspect("remapped")["State"]["Pid"].as_i64().unwrap();
    assert_eq!(host_uid_of(pid), START);
    // Its writes to a volume belong to the mapped IDs on the host.
    engine.ok(&[
        "exec",
        "remapped",
        "sh",
        "-c",
        "echo x > /data/f; mkdir /data/d; chown 1000:1000 /data/d",
    ]);
    let data = engine.root.join("volumes/vol/_data");
    let owner = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner(&data.join("f")), (START, START));
    assert_eq!(owner(&data.join("d")), (START + 1000, START + 1000));
    // exec enters the user namespace, as root of it.
    let text = engine.ok(&[
        "exec",
        "remapped",
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u",
    ]);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, [map.as_str(), "0"], "{text}");
    // Seccomp still applies, and the container's own limits are readable.
    let probe: serde_json::Value =
        serde_json::from_str(&engine.ok(&["exec", "remapped", "facts", "probe"])).unwrap();
    assert_eq!(probe["keyctl"], "EPERM", "{probe}");
    assert_eq!(probe["mount"], "EPERM", "{probe}");
    engine.ok(&["rm", "-f", "remapped"]);

    // Docker's flags and fields.
    let info = engine.ok(&["info"]);
    assert!(info.contains("  name=userns\n"), "{info}");
    assert!(info.contains("  name=seccomp,profile=builtin\n"), "{info}");
    engine.ok(&[
        "create", "--name", "hostns", "--userns", "host", "owners", "true",
    ]);
    assert_eq!(engine.inspect("hostns")["HostConfig"]["UsernsMode"], "host");
    engine.ok(&["rm", "hostns"]);
    let text = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "host",
        "owners",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"],
        "--userns host: no user namespace"
    );
    let bad = engine.run(&["run", "--rm", "--privileged", "owners", "true"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--userns host"),
        "{bad:?}"
    );
    engine.ok(&[
        "run",
        "--rm",
        "--privileged",
        "--userns",
        "host",
        "owners",
        "true",
    ]);
    let bad = engine.run(&["run", "--rm", "--userns", "private", "owners", "true"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid --userns"),
        "{bad:?}"
    );

    // The same through the docker CLIs.
    for cli in docker_clis() {
        let text = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "owners",
                "cat",
                "/proc/self/uid_map",
            ],
        );
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>().join(" "),
            map,
            "{}",
            cli.display()
        );
        let info = engine.docker_ok(&cli, &["info", "--format", "{{json .SecurityOptions}}"]);
        assert!(info.contains("name=userns"), "{}: {info}", cli.display());
    }
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn a_remapped_container_gets_its_terminal_and_cgroup_files_too() {
    if !privileged("a_remapped_container_gets_its_terminal_and_cgroup_files_too") {
        return;
    }
    let mut engine = engine();
    let (status, text) = testkit::pty::run_on_terminal(
        engine.cli(&["run", "-it", "--rm", "--network", "none", "owners", "tty"]),
        b"",
        std::time::Duration::from_secs(30),
    );
    assert!(status.success(), "{text}");
    assert_eq!(text.trim(), "/dev/pts/0");
    for cgroupns in ["private", "host"] {
        let text = engine.ok(&[
            "run", "--rm", "--network", "none", "-m", "32m", "--cgroupns", cgroupns, "owners",
            "sh", "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]);
        assert_eq!(text.trim(), "33554432", "--cgroupns {cgroupns}");
    }
    // Where idmapped mounts are missing (forced here): shifted copies of
    // the layers, kept per remapped root, with the same result inside.
    engine.kill_daemon();
    engine.env.push(("MINI_DOCKER_IDMAP".into(), "off".into()));
    engine.start_daemon();
    let text = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "owners",
        "sh",
        "-c",
        "stat -c '%u:%g' /bin/busybox /home/user/notes; touch /new && echo wrote",
    ]);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["0:0", "1000:1001", "wrote"]
    );
    let copies = engine.root.join(format!("remapped/{START}.{START}"));
    assert!(
        std::fs::read_dir(&copies).is_ok_and(|d| d.count() > 0),
        "{}",
        copies.display()
    );
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

/// Puts /etc/passwd's dockremap and the subuid/subgid files back as they
/// were, when dropped: the `default` test creates them as dockerd would.
struct SystemUsers {
    files: Vec<(&'static str, Vec<u8>)>,
    had_user: bool,
}

impl SystemUsers {
    fn save() -> SystemUsers {
        SystemUsers {
            files: ["/etc/subuid", "/etc/subgid"]
                .into_iter()
                .map(|f| (f, std::fs::read(f).unwrap_or_default()))
                .collect(),
            had_user: nix::unistd::User::from_name("dockremap").unwrap().is_some(),
        }
    }
}

impl Drop for SystemUsers {
    fn drop(&mut self) {
        if !self.had_user {
            let _ = std::process::Command::new("userdel")
                .arg("dockremap")
                .status();
        }
        for (file, content) in &self.files {
            let _ = std::fs::write(file, content);
        }
    }
}

#[test]
fn userns_remap_default_creates_dockremap_with_a_range_of_its_own() {
    if !privileged("userns_remap_default_creates_dockremap_with_a_range_of_its_own") {
        return;
    }
    let users = SystemUsers::save();
    {
        let engine = Engine::start_with_flags(&["--userns-remap", "default"]);
        let user = nix::unistd::User::from_name("dockremap")
            .unwrap()
            .expect("dockremap made");
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap();
        let line = subuid
            .lines()
            .find(|l| l.starts_with("dockremap:"))
            .expect("a range for dockremap");
        let start: u32 = line.split(':').nth(1).unwrap().parse().unwrap();
        assert!(start >= 100_000, "{line}");
        let text = engine.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "fixture",
            "cat",
            "/proc/self/uid_map",
        ]);
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            [&*"0".to_string(), &*start.to_string(), "65536"],
            "uid {}: {text}",
            user.uid
        );
    }
    let had_user = users.had_user;
    drop(users);
    if !had_user {
        assert!(
            nix::unistd::User::from_name("dockremap").unwrap().is_none(),
            "dockremap is removed again"
        );
    }
}
