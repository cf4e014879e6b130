//! Volumes, bind mounts, tmpfs and a read-only root, driven with our CLI
//! and Docker's.

mod common;
use common::{stdout_of, Engine};
use testkit::privileged;

/// `vols:latest`: the fixture plus `/data/seed.txt` (a VOLUME of the image),
/// and two symlinks that try to lead mounts astray: `/evil -> /` and
/// `/etclink -> /etc`.
fn engine_with_volume_image() -> Engine {
    Engine::start_with(|store| {
        let mut volumes = std::collections::BTreeMap::new();
        volumes.insert("/data".to_string(), serde_json::json!({}));
        let config = chapter_04::manifest::ContainerConfig {
            volumes: Some(volumes),
            ..Default::default()
        };
        common::import_fixture_variant(store, "docker.io/library/vols:latest", config, |rootfs| {
            std::fs::create_dir_all(rootfs.join("data")).unwrap();
            std::fs::write(rootfs.join("data/seed.txt"), "from the image\n").unwrap();
            std::os::unix::fs::symlink("/", rootfs.join("evil")).unwrap();
            std::os::unix::fs::symlink("/etc", rootfs.join("etclink")).unwrap();
        });
    })
}

/// The host's mount points, apart from the engines' own overlays (tests
/// run in parallel, each with an engine under /tmp/mini-docker-test-*).
fn host_mounts() -> Vec<String> {
    testkit::mount_points()
        .into_iter()
        .filter(|m| !m.starts_with("/tmp/mini-docker-test-"))
        .collect()
}

#[test]
fn named_volumes_keep_data_and_binds_reach_the_host() {
    if !privileged("named_volumes_keep_data_and_binds_reach_the_host") {
        return;
    }
    let engine = Engine::start();
    let before = host_mounts();
    engine.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/store",
        "fixture",
        "sh",
        "-c",
        "echo kept > /store/f",
    ]);
    assert!(engine
        .ok(&["volume", "ls", "-q"])
        .lines()
        .any(|l| l == "keep"));
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "-v",
            "keep:/store",
            "fixture",
            "cat",
            "/store/f"
        ]),
        "kept\n"
    );
    // In use: refused; then removed.
    engine.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "keep:/store",
        "fixture",
        "true",
    ]);
    let refused = engine.run(&["volume", "rm", "keep"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{refused:?}"
    );
    engine.ok(&["rm", "holder"]);
    engine.ok(&["volume", "rm", "keep"]);
    assert!(!engine.ok(&["volume", "ls", "-q"]).contains("keep"));

    // A bind mount: the host's files inside, writes back out; :ro refuses.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from the host\n").unwrap();
    let bind = format!("{}:/mnt/host", host.path().display());
    let out = engine.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "fixture",
        "sh",
        "-c",
        "cat /mnt/host/in.txt; echo back > /mnt/host/out.txt",
    ]);
    assert_eq!(out, "from the host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "back\n"
    );
    let ro = format!("{bind}:ro");
    let out = engine.run(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "fixture",
        "sh",
        "-c",
        "echo no > /mnt/host/x",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );
    assert!(!host.path().join("x").exists());
    // A file bound onto a file.
    let file_bind = format!("{}:/etc/motd:ro", host.path().join("in.txt").display());
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "-v",
            &file_bind,
            "fixture",
            "cat",
            "/etc/motd"
        ]),
        "from the host\n"
    );

    // tmpfs, and a read-only root with a writable tmpfs.
    let out = engine.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch:size=1m",
        "fixture",
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts",
    ]);
    assert!(
        out.starts_with("tmpfs /scratch tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    let out = engine.run(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "fixture",
        "sh",
        "-c",
        "echo ok > /tmp/t && cat /tmp/t; echo no > /etc/x",
    ]);
    assert_eq!(stdout_of(&out), "ok\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );

    // Nothing of it reached the host's mount table.
    assert_eq!(host_mounts(), before);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn anonymous_volumes_start_with_the_images_files_and_go_with_rm_v() {
    if !privileged("anonymous_volumes_start_with_the_images_files_and_go_with_rm_v") {
        return;
    }
    let engine = engine_with_volume_image();
    engine.ok(&[
        "run",
        "--name",
        "v1",
        "vols",
        "sh",
        "-c",
        "cat /data/seed.txt; echo more >> /data/seed.txt",
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&engine.ok(&["inspect", "v1"])).unwrap();
    let mount = &inspect[0]["Mounts"][0];
    assert_eq!(mount["Type"], "volume");
    assert_eq!(mount["Destination"], "/data");
    let source = std::path::PathBuf::from(mount["Source"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(source.join("seed.txt")).unwrap(),
        "from the image\nmore\n"
    );
    assert_eq!(engine.ok(&["logs", "v1"]), "from the image\n");
    engine.ok(&["rm", "-v", "v1"]);
    assert!(!source.exists(), "rm -v removes the anonymous volume");
    // --rm does too; a named volume stays.
    engine.ok(&[
        "run",
        "--rm",
        "-v",
        "named:/other",
        "-v",
        "/anon",
        "vols",
        "true",
    ]);
    let left = engine.ok(&["volume", "ls", "-q"]);
    assert_eq!(
        left.trim(),
        "named",
        "only the named volume is left: {left}"
    );
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn a_symlink_in_the_image_cannot_send_a_mount_to_the_host() {
    if !privileged("a_symlink_in_the_image_cannot_send_a_mount_to_the_host") {
        return;
    }
    let engine = engine_with_volume_image();
    let before = host_mounts();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("marker"), "bound\n").unwrap();
    // /etclink -> /etc: the mount lands on the container's /etc/bound, not
    // the host's.
    let bind = format!("{}:/etclink/bound", host.path().display());
    let out = engine.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "vols",
        "cat",
        "/etc/bound/marker",
    ]);
    assert_eq!(out, "bound\n");
    assert!(
        !std::path::Path::new("/etc/bound").exists(),
        "nothing created on the host"
    );
    // /evil -> /: refused before anything runs.
    let bind = format!("{}:/evil", host.path().display());
    let out = engine.run(&["run", "--rm", "-v", &bind, "vols", "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resolves to the container's root"),
        "{out:?}"
    );
    // Bad specifications are named.
    for (spec, says) in [
        ("relative:dir", "absolute path"),
        ("/a:/b:rx", "invalid mode"),
        ("x:/", "root"),
    ] {
        engine.refuses_run(&["-v", spec], says);
    }
    assert_eq!(host_mounts(), before);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn the_docker_cli_creates_and_uses_volumes() {
    if !privileged("the_docker_cli_creates_and_uses_volumes") {
        return;
    }
    let engine = Engine::start();
    let Some(cli) = common::docker_clis().into_iter().next() else {
        return;
    };
    let docker = |args: &[&str]| engine.docker_ok(&cli, args);
    assert_eq!(docker(&["volume", "create", "shared"]).trim(), "shared");
    docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/v",
        "fixture",
        "sh",
        "-c",
        "echo 42 > /v/answer",
    ]);
    assert_eq!(
        docker(&[
            "run",
            "--rm",
            "-v",
            "shared:/v:ro",
            "fixture",
            "cat",
            "/v/answer"
        ]),
        "42\n"
    );
    assert!(docker(&["volume", "ls"]).contains("shared"));
    let inspect = docker(&["volume", "inspect", "shared", "-f", "{{.Mountpoint}}"]);
    assert!(
        inspect.trim().ends_with("volumes/shared/_data"),
        "{inspect}"
    );
    docker(&[
        "run",
        "-d",
        "--name",
        "anon-user",
        "-v",
        "/anon",
        "fixture",
        "sleep",
        "30",
    ]);
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}",
        "anon-user",
    ]);
    assert_eq!(mounts.trim(), "volume /anon");
    docker(&["rm", "-f", "-v", "anon-user"]);
    docker(&["volume", "rm", "shared"]);
    assert_eq!(docker(&["volume", "ls", "-q"]), "");
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn the_long_mount_form_binds_volumes_subpaths_and_tmpfs() {
    if !testkit::privileged("the_long_mount_form_binds_volumes_subpaths_and_tmpfs") {
        return;
    }
    let engine = common::Engine::start();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("note"), "from the host\n").unwrap();
    let src = host.path().display().to_string();
    engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,src=longvol,dst=/v",
        "fixture",
        "sh",
        "-c",
        "mkdir -p /v/sub && echo deep > /v/sub/f",
    ]);
    let out = engine.ok(&[
        "run", "--rm", "--network", "none",
        "--mount", &format!("type=bind,source={src},target=/h,readonly"),
        "--mount", "type=volume,source=longvol,target=/only-sub,volume-subpath=sub",
        "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
        "fixture", "sh", "-c",
        "cat /h/note /only-sub/f; touch /h/x 2>&1 | grep -c Read-only; stat -c %a /scratch; df -k /scratch | tail -1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], ["from the host", "deep", "1", "1770"], "{out}");
    assert!(
        lines[4].split_whitespace().nth(1) == Some("1024"),
        "a 1 MiB tmpfs: {out}"
    );
    // Docker's refusals: a missing bind source, a subpath leaving the volume.
    for (mount, says) in [
        (
            "type=bind,source=/no/such/dir,target=/x",
            "bind source path does not exist",
        ),
        (
            "type=volume,source=longvol,target=/x,volume-subpath=../..",
            "invalid volume subpath",
        ),
        (
            "type=volume,source=longvol,target=/x,volume-subpath=nope",
            "does not exist",
        ),
        ("type=weird,target=/x", "invalid mount type"),
        ("type=bind,source=/tmp", "target is required"),
    ] {
        engine.refuses_run(&["--mount", mount], says);
    }
    // The docker CLIs send the same long form.
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--mount",
                &format!("type=bind,src={src},dst=/h,ro"),
                "--mount",
                "type=tmpfs,dst=/t",
                "fixture",
                "sh",
                "-c",
                "cat /h/note; mount | grep -c ' /t '",
            ],
        );
        assert_eq!(out, "from the host\n1\n", "{}", cli.display());
    }
    engine.ok(&["volume", "rm", "longvol"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn volumes_from_shares_another_containers_volumes() {
    if !testkit::privileged("volumes_from_shares_another_containers_volumes") {
        return;
    }
    let engine = common::Engine::start();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().display().to_string();
    engine.ok(&[
        "create",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "shared:/shared",
        "-v",
        "/scratch",
        "-v",
        &format!("{src}:/hostdir"),
        "fixture",
        "true",
    ]);
    let out = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "holder",
        "fixture",
        "sh",
        "-c",
        "echo one > /shared/f && echo two > /scratch/g && echo three > /hostdir/h && echo ok",
    ]);
    assert_eq!(out, "ok\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("h")).unwrap(),
        "three\n"
    );
    // :ro makes them all read-only here.
    let ro = engine.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "holder:ro",
        "fixture",
        "sh",
        "-c",
        "cat /shared/f /scratch/g; echo x > /shared/f",
    ]);
    let text =
        String::from_utf8_lossy(&ro.stdout).into_owned() + &String::from_utf8_lossy(&ro.stderr);
    assert!(
        text.starts_with("one\ntwo\n") && text.contains("Read-only"),
        "{text}"
    );
    let bad = engine.run(&[
        "run",
        "--rm",
        "--volumes-from",
        "holder:sideways",
        "fixture",
        "true",
    ]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid --volumes-from"),
        "{bad:?}"
    );
    let none = engine.run(&["run", "--rm", "--volumes-from", "nosuch", "fixture", "true"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No such container"),
        "{none:?}"
    );
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--volumes-from",
                "holder",
                "fixture",
                "cat",
                "/shared/f",
            ],
        );
        assert_eq!(out, "one\n", "{}", cli.display());
    }
    // --label-file, with --label winning.
    let labels = host.path().join("labels");
    std::fs::write(&labels, "# team labels\ntier=back\n\nowner=ops\n").unwrap();
    engine.ok(&[
        "create",
        "--name",
        "labelled",
        "--label-file",
        &labels.display().to_string(),
        "-l",
        "owner=dev",
        "fixture",
        "true",
    ]);
    let l = &engine.inspect("labelled")["Config"]["Labels"];
    assert_eq!(
        (l["tier"].as_str(), l["owner"].as_str()),
        (Some("back"), Some("dev")),
        "{l}"
    );
    engine.ok(&["rm", "-v", "holder", "labelled"]);
    engine.ok(&["volume", "rm", "shared"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
