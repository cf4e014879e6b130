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
        (&["--pid", "container:other"][..], "not supported"),
        (&["--ipc", "sideways"][..], "invalid --ipc"),
        (&["--add-host", "nocolon"][..], "invalid --add-host"),
        (&["--dns", "not-an-ip"][..], "invalid --dns"),
        (&["--group-add", "nosuchgroup"][..], "unknown group"),
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["fixture", "true"]);
        let out = engine.run(&all);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
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
