//! Run flags clients send: the host's PID, UTS and IPC namespaces,
//! --add-host, --dns/--dns-search/--dns-option, --group-add, with our CLI
//! and both docker CLIs, and Docker's refusals.

mod common;
use common::Engine;
use testkit::privileged;

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn namespace_modes_names_and_groups_are_dockers() {
    if !privileged("namespace_modes_names_and_groups_are_dockers") {
        return;
    }
    let engine = Engine::start();
    let host_name = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let run = |extra: &[&str], script: &str| -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["fixture", "sh", "-c", script]);
        engine.ok(&args)
    };
    // --pid host: the host's processes, PID 1 the host's init.
    let init = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(run(&["--pid", "host"], "cat /proc/1/comm"), init);
    assert_eq!(run(&[], "cat /proc/1/comm"), "cat\n"); // sh execs its last command
                                                       // --uts host: the host's name; --ipc host: the host's IPC namespace.
    assert_eq!(
        run(&["--uts", "host"], "hostname"),
        format!("{host_name}\n")
    );
    assert_eq!(
        run(&["--ipc", "host"], "readlink /proc/self/ns/ipc"),
        format!("{}\n", ns("self", "ipc"))
    );
    assert_ne!(
        run(&[], "readlink /proc/self/ns/ipc"),
        format!("{}\n", ns("self", "ipc"))
    );
    // Docker's refusals, in its words.
    for (args, says) in [
        (
            &["--uts", "host", "--hostname", "x"][..],
            "Conflicting options: hostname and the UTS mode",
        ),
        (
            &["--pid", "container:other"][..],
            "No such container: other",
        ),
        (&["--pid", "sideways"][..], "invalid --pid"),
        (&["--ipc", "sideways"][..], "invalid --ipc"),
        (&["--add-host", "nocolon"][..], "invalid --add-host"),
        (&["--dns", "not-an-ip"][..], "invalid --dns"),
        (&["--group-add", "nosuchgroup"][..], "unknown group"),
    ] {
        engine.refuses_run(args, says);
    }

    // Names: --add-host (host-gateway is the default bridge's gateway),
    // --dns and friends on the default bridge.
    let gateway = engine.ok(&["network", "inspect", "bridge"]);
    let gateway: serde_json::Value = serde_json::from_str(&gateway).unwrap();
    let gateway = gateway[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let files = engine.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "me:host-gateway",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "fixture",
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]);
    assert!(files.contains("10.1.2.3\tdb.local\n"), "{files}");
    assert!(files.contains(&format!("{gateway}\tme\n")), "{files}");
    assert!(
        files.ends_with("search corp.example\nnameserver 192.0.2.53\noptions ndots:2\n"),
        "{files}"
    );
    // --group-add: a name from the image's /etc/group, and a number.
    assert_eq!(
        run(&["--group-add", "nogroup", "--group-add", "1234"], "id -G"),
        "0 1234 65534\n" // the kernel keeps them sorted
    );
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "grouped",
        "--network",
        "none",
        "--group-add",
        "1234",
        "fixture",
        "sleep",
        "600",
    ]);
    assert_eq!(
        engine.ok(&["exec", "grouped", "id", "-G"]),
        "0 1234\n",
        "an exec has the groups too"
    );

    // Both docker CLIs send the same fields; inspect shows them back.
    for (i, cli) in common::docker_clis().iter().enumerate() {
        let name = format!("d{i}");
        engine.docker_ok(
            cli,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--pid",
                "host",
                "--uts",
                "host",
                "--ipc",
                "host",
                "--add-host",
                "db.local:10.1.2.3",
                "--dns",
                "192.0.2.53",
                "--group-add",
                "1234",
                "fixture",
                "sleep",
                "600",
            ],
        );
        let h = &engine.inspect(&name)["HostConfig"];
        assert_eq!(
            (
                h["PidMode"].as_str(),
                h["UTSMode"].as_str(),
                h["IpcMode"].as_str()
            ),
            (Some("host"), Some("host"), Some("host")),
            "{h}"
        );
        assert_eq!(h["ExtraHosts"], serde_json::json!(["db.local:10.1.2.3"]));
        assert_eq!(h["GroupAdd"], serde_json::json!(["1234"]));
        assert_eq!(
            engine.docker_ok(cli, &["exec", &name, "hostname"]),
            format!("{host_name}\n")
        );
        assert_eq!(
            engine.docker_ok(cli, &["exec", &name, "id", "-G"]),
            "0 1234\n"
        );
        engine.ok(&["rm", "-f", &name]);
    }
    assert_eq!(
        engine.inspect("grouped")["HostConfig"]["IpcMode"],
        "private"
    );
    engine.ok(&["rm", "-f", "grouped"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn the_rest_of_dockers_resource_flags_reach_the_cgroup() {
    if !privileged("the_rest_of_dockers_resource_flags_reach_the_cgroup") {
        return;
    }
    let engine = Engine::start();
    // A block device of this machine for the throttles.
    let device = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
        .find(|d| std::path::Path::new(d).exists())
        .expect("a block device");
    let rdev = {
        use std::os::unix::fs::MetadataExt;
        let r = std::fs::metadata(&device).unwrap().rdev();
        format!("{}:{}", libc::major(r), libc::minor(r))
    };
    let read_bps = format!("{device}:1mb");
    let write_iops = format!("{device}:100");
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--network",
        "none",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
        "--cpuset-mems",
        "0",
        "--device-read-bps",
        &read_bps,
        "--device-write-iops",
        &write_iops,
        "fixture",
        "sleep",
        "600",
    ]);
    let id = engine.inspect("limited")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let dirs: Vec<std::path::PathBuf> = testkit::janitor::find_cgroups(&engine.cgroup_prefix)
        .into_iter()
        .filter(|d| d.display().to_string().contains(&id))
        .collect();
    let read = |file: &str| -> String {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .unwrap_or_else(|| panic!("no {file} in {dirs:?}"))
    };
    let v2 = dirs.iter().any(|d| d.join("cgroup.controllers").exists());
    if v2 {
        assert_eq!(read("memory.low").trim(), "33554432");
        assert!(read("io.max").contains(&format!("{rdev} rbps=1048576")));
    } else {
        assert_eq!(read("memory.soft_limit_in_bytes").trim(), "33554432");
        assert_eq!(read("memory.swappiness").trim(), "10");
        assert!(read("memory.oom_control").contains("oom_kill_disable 1"));
        assert!(read("blkio.throttle.read_bps_device").contains(&format!("{rdev} 1048576")));
        assert!(read("blkio.throttle.write_iops_device").contains(&format!("{rdev} 100")));
    }
    assert_eq!(read("cpuset.mems").trim(), "0");
    let h = &engine.inspect("limited")["HostConfig"];
    assert_eq!(
        (
            h["MemoryReservation"].as_i64(),
            h["MemorySwappiness"].as_i64()
        ),
        (Some(32 << 20), Some(10))
    );
    assert_eq!(h["BlkioDeviceReadBps"][0]["Rate"], 1 << 20);
    // update changes the reservation live.
    engine.ok(&["update", "--memory-reservation", "16m", "limited"]);
    let now = if v2 {
        read("memory.low")
    } else {
        read("memory.soft_limit_in_bytes")
    };
    assert_eq!(now.trim(), "16777216");
    let bad = engine.run(&[
        "run",
        "--rm",
        "--memory-swappiness",
        "101",
        "fixture",
        "true",
    ]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("0 to 100"),
        "{bad:?}"
    );
    for cli in common::docker_clis() {
        engine.docker_ok(
            &cli,
            &[
                "run",
                "-d",
                "--name",
                "dlimited",
                "--network",
                "none",
                "--memory-reservation",
                "20m",
                "--device-read-bps",
                &read_bps,
                "fixture",
                "sleep",
                "600",
            ],
        );
        let h = &engine.inspect("dlimited")["HostConfig"];
        assert_eq!(h["MemoryReservation"], 20 << 20, "{}", cli.display());
        assert_eq!(h["BlkioDeviceReadBps"][0]["Path"], device.as_str());
        engine.ok(&["rm", "-f", "dlimited"]);
    }
    engine.ok(&["rm", "-f", "limited"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn ulimits_are_set_on_the_containers_processes() {
    if !privileged("ulimits_are_set_on_the_containers_processes") {
        return;
    }
    let engine = Engine::start();
    let out = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=123:456",
        "--ulimit",
        "nproc=77",
        "fixture",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u",
    ]);
    assert_eq!(out, "123\n456\n77\n");
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--network",
        "none",
        "--ulimit",
        "nofile=99",
        "fixture",
        "sleep",
        "600",
    ]);
    assert_eq!(
        engine.ok(&["exec", "lim", "sh", "-c", "ulimit -n"]),
        "99\n",
        "an exec gets the container's limits"
    );
    for (flag, says) in [
        ("nofile=5:3", "soft limit must be less than or equal"),
        ("bogus=1", "invalid ulimit type"),
        ("nofile", "NAME=SOFT"),
    ] {
        engine.refuses_run(&["--ulimit", flag], says);
    }
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=321:654",
                "fixture",
                "sh",
                "-c",
                "ulimit -n; ulimit -Hn",
            ],
        );
        assert_eq!(out, "321\n654\n", "{}", cli.display());
    }
    engine.ok(&["rm", "-f", "lim"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn init_is_pid_1_reaps_orphans_and_passes_signals_on() {
    if !privileged("init_is_pid_1_reaps_orphans_and_passes_signals_on") {
        return;
    }
    let engine = Engine::start();
    // PID 1 is the init, the command PID 2, and its status is the run's.
    let out = engine.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "fixture",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm; echo $$; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        common::stdout_of(&out),
        "mini-docker-init -- sh -c tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm; echo $$; exit 3 \ninit\n2\n"
    );
    // An orphan whose parent exits is re-parented to PID 1. `sleep` as PID 1
    // never waits, so the orphan stays a zombie; the init reaps it.
    let orphan = "sh -c 'sleep 0.1 &'; exec sleep 600";
    // Zombies, and processes that still name 0.1 (the pattern does not
    // match itself in this script's command line; with --init, PID 1's
    // names it for as long as it runs).
    let zombies =
        "grep -l 'State:.Z' /proc/[0-9]*/status | wc -l; grep -l '0[.]1' /proc/[0-9]*/cmdline | wc -l";
    for (name, init, expect) in [("bare", false, "1\n0\n"), ("inited", true, "0\n1\n")] {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        if init {
            args.push("--init");
        }
        args.extend_from_slice(&["fixture", "sh", "-c", orphan]);
        engine.ok(&args);
        let mut out = String::new();
        common::eventually(|| {
            out = engine.ok(&["exec", name, "sh", "-c", zombies]);
            out == expect
        });
        assert_eq!(out, expect, "{name}: zombies, then orphans still running");
    }
    // SIGTERM reaches `sleep` through the init (143); sleep as PID 1 has no
    // handler, so the kernel drops it and stop has to kill (137).
    engine.ok(&["stop", "-t", "60", "inited"]);
    assert_eq!(engine.inspect("inited")["State"]["ExitCode"], 143);
    engine.ok(&["stop", "-t", "1", "bare"]);
    assert_eq!(engine.inspect("bare")["State"]["ExitCode"], 137);
    assert_eq!(engine.inspect("inited")["HostConfig"]["Init"], true);
    assert!(engine.inspect("bare")["HostConfig"]["Init"].is_null());
    // With a terminal the command's group is the foreground one, so ^C
    // reaches it once, from the terminal, not also through the init.
    let out = engine.ok(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "--init",
        "fixture",
        "sh",
        "-c",
        "set -- $(cat /proc/$$/stat); [ $5 = $8 ] && [ $5 = $$ ] && echo foreground",
    ]);
    assert_eq!(out.trim(), "foreground");
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--init",
                "fixture",
                "cat",
                "/proc/1/comm",
            ],
        );
        assert_eq!(out, "init\n", "{}", cli.display());
    }
    engine.ok(&["rm", "bare", "inited"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn devices_are_given_by_device_and_the_rest_are_denied() {
    if !privileged("devices_are_given_by_device_and_the_rest_are_denied") {
        return;
    }
    assert!(
        std::path::Path::new("/dev/fuse").exists(),
        "this test uses the host's /dev/fuse (10:229)"
    );
    let engine = Engine::start();
    let run = |extra: &[&str], script: &str| -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["fixture", "sh", "-c", script]);
        common::stdout_of(&engine.run(&args))
    };
    // Probes, run inside the container: a node made with mknod (allowed, as
    // Docker's `m`), then opened; Docker's own devices still work.
    let made = "mknod /tmp/f c 10 229 && echo made; exec 3</tmp/f && echo opened";
    if std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        assert_eq!(run(&[], made), "made\n", "the devices cgroup denies 10:229");
    }
    assert_eq!(
        run(
            &[],
            "head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo null"
        ),
        "3\nnull\n"
    );
    assert_eq!(
        run(&["--device-cgroup-rule", "c 10:229 rw"], made),
        "made\nopened\n"
    );
    assert_eq!(run(&["--privileged"], made), "made\nopened\n");
    // --device: the host's node, at its own path, elsewhere in /dev (its
    // directories made), or outside /dev; `r` alone may read, not write.
    assert_eq!(
        run(
            &["--device", "/dev/fuse"],
            "stat -c '%F %t:%T' /dev/fuse; exec 3</dev/fuse && echo opened"
        ),
        "character special file a:e5\nopened\n"
    );
    assert_eq!(
        run(
            &["--device", "/dev/fuse:/dev/x/y/fz:r"],
            "exec 3</dev/x/y/fz && echo read; exec 4>/dev/x/y/fz && echo wrote"
        ),
        "read\n"
    );
    assert_eq!(
        run(&["--device", "/dev/fuse:/fz"], "exec 3</fz && echo opened"),
        "opened\n"
    );
    // Inspect shows what was asked, with Docker's default permissions.
    engine.ok(&[
        "create",
        "--name",
        "dev",
        "--device",
        "/dev/fuse",
        "--device-cgroup-rule",
        "b 7:* rw",
        "fixture",
    ]);
    let host = &engine.inspect("dev")["HostConfig"];
    assert_eq!(
        host["Devices"],
        serde_json::json!([{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}])
    );
    assert_eq!(host["DeviceCgroupRules"], serde_json::json!(["b 7:* rw"]));
    engine.ok(&["rm", "dev"]);
    for (args, says) in [
        (
            &["--device", "/dev/nope"][..],
            "adding custom device \"/dev/nope\": no such file",
        ),
        (&["--device", "/etc/passwd"][..], "not a device node"),
        (
            &["--device", "/dev/fuse:rx"][..],
            "rx is not an absolute path",
        ),
        (&["--device", "/dev/fuse:/f:rx"][..], "invalid device mode"),
        (
            &["--device-cgroup-rule", "q 1:2 r"][..],
            "invalid device cgroup rule",
        ),
    ] {
        engine.refuses_run(args, says);
    }
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--device",
                "/dev/fuse:/dev/f",
                "fixture",
                "sh",
                "-c",
                "exec 3</dev/f && echo opened",
            ],
        );
        assert_eq!(out, "opened\n", "{}", cli.display());
    }
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn a_container_joins_another_containers_pid_and_ipc_namespaces() {
    if !privileged("a_container_joins_another_containers_pid_and_ipc_namespaces") {
        return;
    }
    let engine = Engine::start();
    let pid1 = |name: &str| engine.inspect(name)["State"]["Pid"].as_i64().unwrap();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--network",
        "none",
        "--ipc",
        "shareable",
        "fixture",
        "sleep",
        "600",
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "private",
        "--network",
        "none",
        "fixture",
        "sleep",
        "601",
    ]);
    // The donor's processes are the joiner's: its sleep is PID 1 there.
    let seen = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:donor",
        "fixture",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo",
    ]);
    assert_eq!(seen, "sleep 600 \n");
    let donor = pid1("donor").to_string();
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--ipc",
            "container:donor",
            "fixture",
            "readlink",
            "/proc/self/ns/ipc",
        ]),
        format!("{}\n", ns(&donor, "ipc"))
    );
    // inspect keeps the ID, as Docker does.
    engine.ok(&[
        "create",
        "--name",
        "joiner",
        "--pid",
        "container:donor",
        "fixture",
        "true",
    ]);
    let id = engine.inspect("donor")["Id"].as_str().unwrap().to_string();
    assert_eq!(
        engine.inspect("joiner")["HostConfig"]["PidMode"],
        format!("container:{id}")
    );
    engine.ok(&["rm", "joiner"]);
    // Docker's refusals: a donor that does not run, an IPC namespace not
    // made shareable.
    engine.ok(&["create", "--name", "idle", "fixture", "true"]);
    engine.refuses_run(
        &["--pid", "container:idle"],
        "cannot join PID of a non running container",
    );
    engine.refuses_run(&["--ipc", "container:private"], "non-shareable IPC");
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--pid",
                "container:donor",
                "fixture",
                "cat",
                "/proc/1/comm",
            ],
        );
        assert_eq!(out, "sleep\n", "{}", cli.display());
    }
    engine.ok(&["rm", "-f", "donor", "private", "idle"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
