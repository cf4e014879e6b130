//! Images made by the engine: `diff`, `commit`, `history`, `save`, `push`
//! and `build` (Dockerfiles, the cache, multi-stage), driven with our CLI
//! and Docker's.

mod common;
use common::{stdout_of, Engine};
use testkit::privileged;

#[test]
fn diff_lists_a_containers_changes_and_commit_makes_them_an_image() {
    if !privileged("diff_lists_a_containers_changes_and_commit_makes_them_an_image") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "--name",
        "changer",
        "-e",
        "FROM_RUN=1",
        "fixture",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo hi > /data/sub/f && echo changed >> /etc/motd-new && rm /bin/true",
    ]);
    let diff = engine.ok(&["diff", "changer"]);
    let lines: Vec<&str> = diff.lines().collect();
    assert!(lines.contains(&"A /data"), "{diff}");
    assert!(lines.contains(&"A /data/sub/f"), "{diff}");
    assert!(lines.contains(&"C /etc"), "{diff}");
    assert!(lines.contains(&"A /etc/motd-new"), "{diff}");
    assert!(lines.contains(&"D /bin/true"), "{diff}");
    // The engine's own mount points and /etc files are not changes.
    for not in [
        "/proc",
        "/dev",
        "/sys",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ] {
        assert!(
            !lines.iter().any(|l| l[2..] == *not),
            "{not} listed: {diff}"
        );
    }

    let id = engine.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/data/sub/f\"]",
        "-c",
        "ENV ADDED=yes",
        "-m",
        "the data",
        "changer",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(engine.ok(&["run", "--rm", "committed:v1"]), "hi\n");
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "echo $FROM_RUN $ADDED; test -e /bin/true || echo gone"
        ]),
        "1 yes\ngone\n"
    );
    let inspect = engine.inspect("committed:v1");
    assert_eq!(inspect["Comment"], "the data");
    let base = engine.inspect("fixture");
    let layers = |v: &serde_json::Value| v["RootFS"]["Layers"].as_array().unwrap().clone();
    assert_eq!(layers(&inspect).len(), layers(&base).len() + 1);
    assert_eq!(layers(&inspect)[..layers(&base).len()], layers(&base)[..]);

    // Without a name: an image listed as <none>, removable by ID.
    let dangling = engine.ok(&["commit", "changer"]);
    let short = &dangling.trim().trim_start_matches("sha256:")[..12];
    let images = engine.ok(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("<none>") && l.contains(short)),
        "{images}"
    );
    engine.ok(&["rmi", short]);
    assert!(!engine.ok(&["images"]).contains(short));

    // Docker's CLIs see the same.
    for cli in common::docker_clis() {
        let diff = engine.docker_ok(&cli, &["diff", "changer"]);
        assert!(
            diff.lines().any(|l| l == "A /data/sub/f"),
            "{}: {diff}",
            cli.display()
        );
        engine.docker_ok(
            &cli,
            &[
                "commit",
                "--change",
                "CMD cat /etc/motd-new",
                "changer",
                "by-docker",
            ],
        );
        let out = engine.docker_ok(&cli, &["run", "--rm", "by-docker"]);
        assert_eq!(out, "changed\n", "{}", cli.display());
        engine.docker_ok(&cli, &["rmi", "by-docker"]);
    }
    engine.ok(&["rm", "changer"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
    let _ = stdout_of;
}

use testkit::build_context::write as write_context;

/// The image config fields the Dockerfile sets, compared with peers'.
const CONFIG_FIELDS: [&str; 9] = [
    "User",
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
];

/// An engine, and a context holding only the Dockerfile `text`.
fn engine_with_dockerfile(text: &str) -> (Engine, tempfile::TempDir) {
    let engine = Engine::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), text).unwrap();
    (engine, ctx)
}

/// An engine, and the test Dockerfile's context in a temporary directory.
fn engine_and_context() -> (Engine, tempfile::TempDir) {
    let engine = Engine::start();
    let ctx = tempfile::tempdir().unwrap();
    write_context(ctx.path());
    (engine, ctx)
}

#[test]
fn a_dockerfile_with_every_instruction_builds_an_image_that_runs_as_written() {
    if !privileged("a_dockerfile_with_every_instruction_builds_an_image_that_runs_as_written") {
        return;
    }
    let (engine, ctx) = engine_and_context();
    let out = engine.run(&["build", "-t", "built:v1", ctx.path().to_str().unwrap()]);
    let text = stdout_of(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Step 1/24 : ARG BASE=fixture"), "{text}");
    assert!(text.contains("Successfully tagged built:v1"), "{text}");
    assert!(!text.contains("Using cache"), "{text}");

    assert_eq!(
        engine.ok(&["run", "--rm", "built:v1"]),
        "/app with space\n1000\n/app\nhello from the builder\n"
    );
    let inside = engine.ok(&[
        "run", "--rm", "--entrypoint", "sh", "built:v1", "-c",
        "stat -c '%n %a %u:%g' from-builder from-builder/greeting files files/one.sh files/two.sh /opt/pkg/bin/tool /opt/plain.txt /data/seed; \
         readlink /opt/pkg/link; cat from-builder/a from-builder/listing /tmp/shell-ran; \
         ls files; test -e /src || echo no-src; echo $SPACED",
    ]);
    assert_eq!(
        inside,
        "from-builder 755 0:0\nfrom-builder/greeting 604 0:0\nfiles 755 1000:1000\nfiles/one.sh 750 1000:1000\nfiles/two.sh 750 1000:1000\n\
         /opt/pkg/bin/tool 644 0:0\n/opt/plain.txt 644 0:0\n/data/seed 644 0:0\n\
         bin/tool\nalpha\na.txt\nb.txt\nran as 1000 in /app\none.sh\ntwo.sh\nno-src\nwith space\n"
    );

    let i = engine.inspect("built:v1");
    let c = &i["Config"];
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["echo $APP_HOME $SPACED; id -u; pwd; cat from-builder/greeting"])
    );
    assert_eq!(
        c["Labels"],
        serde_json::json!({"org.example.kind": "test image", "version": "1"})
    );
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000u64, "Timeout": 2_000_000_000u64, "Retries": 3})
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"APP_HOME=/app") && env.contains(&"SPACED=with space"),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|e| e.starts_with("GREETING")),
        "ARGs are not kept: {env:?}"
    );
    // History: the base's, then one entry per step of the last stage.
    let history = engine.ok(&["history", "-q", "built:v1"]);
    let base = engine.ok(&["history", "-q", "fixture"]);
    assert_eq!(
        history.lines().count(),
        base.lines().count() + 17,
        "{history}"
    );
    let base_layers = engine.inspect("fixture")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    // Layers: WORKDIR, two COPY, two ADD, two RUN.
    assert_eq!(
        i["RootFS"]["Layers"].as_array().unwrap().len(),
        base_layers + 7
    );
    // The stop signal, the user and the volume reach a container.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "vol",
        "--entrypoint",
        "sleep",
        "built:v1",
        "60",
    ]);
    let v = engine.inspect("vol");
    assert_eq!(v["Config"]["User"], "1000:1000");
    assert!(
        v["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Destination"] == "/data"),
        "{v}"
    );
    engine.ok(&["rm", "-f", "vol"]);
    // Nothing of the build is left: no container, no mount, no scratch dir.
    assert_eq!(engine.ok(&["ps", "-aq"]), "");
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

/// Each step's instruction, and whether the build took it from the cache.
fn steps(output: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            let text = rest.split_once(" : ").map_or(rest, |(_, t)| t);
            out.push((text.to_string(), false));
        } else if line == " ---> Using cache" {
            out.last_mut().unwrap().1 = true;
        }
    }
    out
}

/// Steps that can come from the cache (not FROM, not an ARG before it).
fn cacheable(s: &[(String, bool)]) -> Vec<&(String, bool)> {
    s.iter()
        .skip(1)
        .filter(|(t, _)| !t.starts_with("FROM"))
        .collect()
}

#[test]
fn the_cache_reuses_steps_until_the_first_changed_input_and_survives_a_restart() {
    if !privileged("the_cache_reuses_steps_until_the_first_changed_input_and_survives_a_restart") {
        return;
    }
    let (mut engine, ctx) = engine_and_context();
    let dir = ctx.path().to_str().unwrap();
    let build = |engine: &Engine, extra: &[&str]| {
        let mut args = vec!["build", "-t", "cached"];
        args.extend_from_slice(extra);
        args.push(dir);
        let out = engine.ok(&args);
        let id = engine.inspect("cached")["Id"].as_str().unwrap().to_string();
        (steps(&out), id)
    };
    let (first, id1) = build(&engine, &[]);
    assert!(cacheable(&first).iter().all(|(_, hit)| !hit));
    let (second, id2) = build(&engine, &[]);
    assert!(cacheable(&second).iter().all(|(_, hit)| *hit), "{second:?}");
    assert_eq!(id1, id2);

    // A new mtime alone changes nothing a build can see.
    let two = ctx.path().join("files/two.sh");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&two)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (touched, id3) = build(&engine, &[]);
    assert!(
        cacheable(&touched).iter().all(|(_, hit)| *hit),
        "{touched:?}"
    );
    assert_eq!(id1, id3);

    // One changed file: every step before the COPY that reads it is a
    // hit (the whole first stage too), that COPY and every later one not.
    std::fs::write(&two, "echo two, changed\n").unwrap();
    let (changed, id4) = build(&engine, &[]);
    assert_ne!(id1, id4);
    let at = changed
        .iter()
        .position(|(t, _)| t.starts_with("COPY --chown"))
        .unwrap();
    for (i, (text, hit)) in changed.iter().enumerate().skip(1) {
        if text.starts_with("FROM") {
            continue;
        }
        assert_eq!(*hit, i < at, "step {} ({text}): {changed:?}", i + 1);
    }
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            "cached",
            "files/two.sh"
        ]),
        "echo two, changed\n"
    );
    // A build argument's new value misses from the first step that sees it.
    let (arg, _) = build(&engine, &["--build-arg", "GREETING=bonjour"]);
    let run = arg
        .iter()
        .position(|(t, _)| t.starts_with("RUN mkdir -p /out"))
        .unwrap();
    assert!(!arg[run - 1].1 && !arg[run].1, "{arg:?}");
    assert_eq!(
        engine.ok(&["run", "--rm", "cached"]).lines().last(),
        Some("bonjour from the builder")
    );

    // The cache is in the store: a restarted daemon still has it.
    engine.kill_daemon();
    engine.start_daemon();
    let (after, _) = build(&engine, &["--build-arg", "GREETING=bonjour"]);
    assert!(cacheable(&after).iter().all(|(_, hit)| *hit), "{after:?}");
    // --no-cache runs every step again.
    let (fresh, _) = build(&engine, &["--no-cache"]);
    assert!(cacheable(&fresh).iter().all(|(_, hit)| !hit), "{fresh:?}");
    // system prune -a takes the cache; the tagged image stays.
    engine.ok(&["system", "prune", "-a", "-f"]);
    assert_eq!(
        engine.ok(&["run", "--rm", "cached"]).lines().last(),
        Some("hello from the builder")
    );
    let (pruned, _) = build(&engine, &[]);
    assert!(cacheable(&pruned).iter().all(|(_, hit)| !hit), "{pruned:?}");
    engine.ok(&["rmi", "cached"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn bad_dockerfiles_and_contexts_fail_with_the_file_line_and_reason_and_leave_nothing() {
    if !privileged(
        "bad_dockerfiles_and_contexts_fail_with_the_file_line_and_reason_and_leave_nothing",
    ) {
        return;
    }
    let engine = Engine::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host secret\n").unwrap();
    let cases: Vec<(&str, &[&str], &str)> = vec![
        ("FROM fixture\n\nCOPPY a b\n", &[], "Dockerfile:3: unknown instruction: COPPY"),
        ("FROM fixture\nCOPY nothere /x\n", &[], "Dockerfile:2: COPY failed: file not found in build context"),
        ("FROM fixture\nCOPY ../x /x\n", &[], "Dockerfile:2: COPY failed: forbidden path outside the build context: ../x"),
        ("FROM fixture\nCOPY /etc/passwd /x\n", &[], "the host's files are never read"),
        ("FROM fixture\nCOPY out/secret /x\n", &[], "outside the build context"),
        ("FROM fixture\nCOPY up /x\n", &[], "outside the build context"),
        ("FROM fixture\nCOPY *.nothing /x/\n", &[], "Dockerfile:2: COPY failed: no source files were specified"),
        ("FROM fixture\nCOPY a b c\n", &[], "the destination must be a directory and end with a /"),
        ("FROM fixture AS one\nRUN true\n", &["--target", "two"], "failed to reach build target two"),
        ("FROM fixture\nRUN echo partial output; exit 3\n", &[], "Dockerfile:2: The command '/bin/sh -c echo partial output; exit 3' returned a non-zero code: 3"),
        ("FROM fixture\nADD https://example.org/x /x\n", &[], "a URL source is not supported"),
        ("FROM scratch\nRUN true\n", &[], "Dockerfile:2: RUN in a FROM scratch stage"),
        ("FROM fixture\nENV ONLYNAME\n", &[], "Dockerfile:2: ENV ONLYNAME: the value is missing"),
        ("FROM fixture\nSHELL /bin/bash -c\n", &[], "SHELL requires the arguments to be in JSON form"),
        ("FROM fixture\nONBUILD RUN true\n", &[], "ONBUILD is not supported"),
        ("FROM fixture\nRUN --mount=type=cache,target=/x true\n", &[], "RUN does not take --mount"),
        ("FROM fixture\nEXPOSE 99999\n", &[], "EXPOSE 99999: a port is a number"),
        ("FROM fixture\nHEALTHCHECK --interval=5 CMD true\n", &[], "HEALTHCHECK --interval: invalid duration \"5\""),
        ("FROM fixture\nSTOPSIGNAL SIGNOPE\n", &[], "SIGNOPE"),
        ("RUN true\n", &[], "Dockerfile:1: RUN before FROM"),
        ("# escape=x\nFROM fixture\n", &[], "invalid escape token"),
        ("FROM fixture\nCOPY ignored.txt /x\n", &[], "COPY failed: ignored.txt is excluded by .dockerignore"),
    ];
    for (dockerfile, flags, expected) in cases {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(ctx.path().join("a"), "a").unwrap();
        std::fs::write(ctx.path().join("b"), "b").unwrap();
        std::fs::write(ctx.path().join("ignored.txt"), "i").unwrap();
        std::fs::write(ctx.path().join(".dockerignore"), "ignored.txt\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), ctx.path().join("out")).unwrap();
        std::os::unix::fs::symlink("../../..", ctx.path().join("up")).unwrap();
        let mut args = vec!["build", "-t", "bad:latest"];
        args.extend_from_slice(flags);
        args.push(ctx.path().to_str().unwrap());
        let out = engine.run(&args);
        let all = format!(
            "{}{}",
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{dockerfile:?} built: {all}");
        assert!(
            all.contains(expected),
            "{dockerfile:?}: wanted {expected:?} in:\n{all}"
        );
        if dockerfile.contains("partial output") {
            assert!(
                all.contains("partial output\n"),
                "the failing command's output: {all}"
            );
        }
        assert!(
            engine.run(&["inspect", "bad:latest"]).status.code() != Some(0),
            "{dockerfile:?}: an image was tagged"
        );
        assert_eq!(
            engine.ok(&["ps", "-aq"]),
            "",
            "{dockerfile:?}: a container was left"
        );
        assert!(
            engine.leftovers().is_empty(),
            "{dockerfile:?}: {:?}",
            engine.leftovers()
        );
    }
    // No build left its scratch directory behind.
    let builds = std::fs::read_dir(engine.root.join("build"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(builds, 0);
}

#[test]
fn docker_clis_and_the_python_sdk_build_through_the_classic_builder_api() {
    if !privileged("docker_clis_and_the_python_sdk_build_through_the_classic_builder_api") {
        return;
    }
    let (engine, ctx) = engine_and_context();
    let dir = ctx.path().to_str().unwrap();
    let clis = common::docker_clis();
    assert!(
        !clis.is_empty() || std::env::var("CI").as_deref() != Ok("true"),
        "no docker CLI"
    );
    for cli in &clis {
        let out = engine
            .docker_at(
                cli,
                &["build", "--build-arg", "GREETING=hi", "-t", "by-cli", dir],
            )
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        let text = stdout_of(&out);
        assert!(
            out.status.success(),
            "{}: {text}{}",
            cli.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("Step 24/24 : CMD"),
            "{}: {text}",
            cli.display()
        );
        assert!(
            text.contains("Successfully tagged by-cli:latest"),
            "{}: {text}",
            cli.display()
        );
        let run = engine.docker_ok(cli, &["run", "--rm", "by-cli"]);
        assert_eq!(
            run.lines().last(),
            Some("hi from the builder"),
            "{}",
            cli.display()
        );
        // -q prints the ID alone; a failing build fails the CLI with the reason.
        let q = engine
            .docker_at(
                cli,
                &[
                    "build",
                    "-q",
                    "--build-arg",
                    "GREETING=hi",
                    "-t",
                    "by-cli",
                    dir,
                ],
            )
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        let id = stdout_of(&q);
        assert_eq!(
            id.trim(),
            engine.inspect("by-cli")["Id"].as_str().unwrap(),
            "{}",
            cli.display()
        );
        let bad = tempfile::tempdir().unwrap();
        std::fs::write(bad.path().join("Dockerfile"), "FROM fixture\nRUN exit 7\n").unwrap();
        let failed = engine
            .docker_at(cli, &["build", bad.path().to_str().unwrap()])
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(!failed.status.success());
        let err = String::from_utf8_lossy(&failed.stderr);
        assert!(
            err.contains("returned a non-zero code: 7"),
            "{}: {err}",
            cli.display()
        );
        engine.docker_ok(cli, &["rmi", "by-cli"]);
    }

    // Docker's Python SDK: images.build streams the log, returns the image.
    let python = testkit::python_with_docker_sdk();
    let script = r#"
import docker, sys
client = docker.DockerClient(base_url=sys.argv[1])
image, log = client.images.build(path=sys.argv[2], tag="by-sdk:1", buildargs={"GREETING": "sdk"})
steps = [l["stream"] for l in log if "stream" in l and l["stream"].startswith("Step ")]
print(len(steps), image.id, image.tags)
print(client.containers.run("by-sdk:1", remove=True).decode().splitlines()[-1])
try:
    client.images.build(fileobj=__import__("io").BytesIO(b"FROM fixture\nRUN exit 5\n"))
except docker.errors.BuildError as e:
    print("BuildError:", e.msg)
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(engine.host())
        .arg(dir)
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = engine.inspect("by-sdk:1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text,
        format!("24 {id} ['by-sdk:1']\nsdk from the builder\nBuildError: Dockerfile:2: The command '/bin/sh -c exit 5' returned a non-zero code: 5\n")
    );
    assert_eq!(engine.ok(&["ps", "-aq"]), "");
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

/// An image's merged root filesystem, from an OCI layout or our store,
/// made in `dir` by chapter 04's unpack and chapter 03's copy driver.
fn merged_tree(store: &chapter_04::Store, name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let d = store.resolve(name).unwrap();
    let image =
        chapter_04::unpack::load_image(store, &d, &chapter_04::unpack::host_platform()).unwrap();
    let layers = chapter_04::unpack::unpack(store, &image, &Default::default()).unwrap();
    let target = dir.join(format!("merged-{}", name.replace([':', '/'], "-")));
    std::fs::create_dir_all(&target).unwrap();
    chapter_03::copy::materialize(&layers, &target).unwrap();
    target
}

#[test]
fn buildah_builds_the_same_dockerfile_into_the_same_files_and_config() {
    if !privileged("buildah_builds_the_same_dockerfile_into_the_same_files_and_config") {
        return;
    }
    let (engine, ctx) = engine_and_context();
    let dir = ctx.path().to_str().unwrap();
    engine.ok(&["build", "-t", "ours", dir]);
    let work = tempfile::tempdir().unwrap();
    let w = |p: &str| work.path().join(p).display().to_string();
    engine.ok(&["save", "-o", &w("fixture.tar"), "fixture"]);
    // buildah on roots of its own, chroot isolation (no cgroups, no
    // network of its own to set up), Docker's image format (HEALTHCHECK
    // and SHELL are Docker's fields).
    let buildah = |args: &[&str]| {
        let out = std::process::Command::new("buildah")
            .args([
                "--root",
                &w("root"),
                "--runroot",
                &w("run"),
                "--storage-driver",
                "vfs",
            ])
            .args(args)
            .output()
            .expect("buildah (cargo xtask install)");
        assert!(
            out.status.success(),
            "buildah {args:?}: {}{}",
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout_of(&out)
    };
    let base = format!("BASE=docker-archive:{}", w("fixture.tar"));
    buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "--format",
        "docker",
        "--layers",
        "--build-arg",
        &base,
        "-t",
        "theirs",
        dir,
    ]);
    buildah(&["push", "theirs", &format!("oci:{}:theirs", w("layout"))]);
    let inspect: serde_json::Value =
        serde_json::from_str(&buildah(&["inspect", "theirs"])).unwrap();
    let config = inspect["Docker"]["config"].clone();
    eprintln!("buildah's config: {config}");
    buildah(&["rmi", "-a", "-f"]);

    // The same files: names, kinds, modes, owners, contents.
    let theirs_store = chapter_04::Store::open(work.path().join("theirs-store")).unwrap();
    chapter_04::archive::import_oci(
        &theirs_store,
        &work.path().join("layout"),
        Some("theirs"),
        "theirs",
    )
    .unwrap();
    let ours_store = chapter_04::Store::open(engine.root.join("images")).unwrap();
    let ignore = testkit::tree::Ignore { mtimes: true };
    let mut theirs =
        testkit::tree::describe_with(&merged_tree(&theirs_store, "theirs", work.path()), ignore);
    // buildah's RUN (chroot isolation) leaves the empty files it bound
    // /etc/hostname, /etc/hosts and /etc/resolv.conf onto in the image;
    // Docker's init layer, and ours, keep them out.
    for f in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        let placeholder = theirs
            .get(std::path::Path::new(f))
            .is_some_and(|d| d.starts_with("100755 0:0 0 "));
        if placeholder {
            theirs.remove(std::path::Path::new(f));
        }
    }
    let ours = testkit::tree::describe_with(
        &merged_tree(&ours_store, "docker.io/library/ours:latest", work.path()),
        ignore,
    );
    let differ: Vec<String> = theirs
        .keys()
        .chain(ours.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|p| theirs.get(*p) != ours.get(*p))
        .map(|p| {
            format!(
                "{}:\n  buildah: {:?}\n  ours:    {:?}",
                p.display(),
                theirs.get(p),
                ours.get(p)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "the trees differ:\n{}",
        differ.join("\n")
    );

    // The same config.
    let mine = &engine.inspect("ours")["Config"];
    for field in CONFIG_FIELDS.iter().chain(&["Shell"]) {
        assert_eq!(mine[field], config[field], "{field}");
    }
    let mut labels = config["Labels"].clone();
    labels.as_object_mut().unwrap().remove("io.buildah.version");
    assert_eq!(mine["Labels"], labels);
}

/// A Docker config dir whose `auths` hold `user:pass` for `registry`.
fn docker_config(dir: &std::path::Path, registry: &str, user: &str, pass: &str) {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string(),
    )
    .unwrap();
}

#[test]
fn a_built_image_is_pushed_saved_and_run_by_podman_and_a_real_dockerd() {
    if !privileged("a_built_image_is_pushed_saved_and_run_by_podman_and_a_real_dockerd") {
        return;
    }
    let (engine, ctx) = engine_and_context();
    engine.ok(&["build", "-t", "shipped:v1", ctx.path().to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    let registry =
        testkit::registry::Registry::start(testkit::registry::Auth::Basic("ada", "s3cret"));
    let remote = format!("{}/course/shipped:v1", registry.addr);
    engine.ok(&["tag", "shipped:v1", &remote]);

    // Without credentials the registry refuses, and the push says so.
    let empty = work.path().join("no-config");
    std::fs::create_dir_all(&empty).unwrap();
    let refused = engine
        .cli(&["push", &remote])
        .env("DOCKER_CONFIG", &empty)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = format!(
        "{}{}",
        stdout_of(&refused),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(said.contains("asks for a user name and password"), "{said}");
    // With them (~/.docker/config.json, sent as X-Registry-Auth), blobs then manifest.
    let config = work.path().join("docker-config");
    docker_config(&config, &registry.addr, "ada", "s3cret");
    let out = engine
        .cli(&["push", &remote])
        .env("DOCKER_CONFIG", &config)
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "The push refers to repository [{}/course/shipped]",
            registry.addr
        )),
        "{text}"
    );
    assert!(text.contains("Pushed"), "{text}");
    assert!(text.contains("v1: digest: sha256:"), "{text}");
    // A second name in the same registry: the base layer is mounted from the first.
    let second = format!("{}/other/shipped:v1", registry.addr);
    engine.ok(&["tag", "shipped:v1", &second]);
    let again = engine
        .cli(&["push", &second])
        .env("DOCKER_CONFIG", &config)
        .output()
        .unwrap();
    let text = stdout_of(&again);
    assert!(
        again.status.success() && text.contains("Mounted from course/shipped"),
        "{text}"
    );
    // Docker's CLIs push through the API too (their own config's auths).
    for cli in common::docker_clis() {
        let tag = format!("{}/cli/shipped:v1", registry.addr);
        engine.ok(&["tag", "shipped:v1", &tag]);
        let out = engine
            .docker_at(&cli, &["push", &tag])
            .env("DOCKER_CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            cli.display(),
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // podman pulls what we pushed and runs it.
    let podman = testkit::peers::Podman::new(&work.path().join("podman"));
    podman.ok(&[
        "pull",
        "-q",
        "--tls-verify=false",
        "--creds",
        "ada:s3cret",
        &remote,
    ]);
    let run = podman.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        &remote,
    ]);
    assert_eq!(run, "/app with space\n1000\n/app\nhello from the builder\n");

    // save: podman load and a real dockerd's docker load read it.
    let archive = work.path().join("shipped.tar");
    engine.ok(&["save", "-o", archive.to_str().unwrap(), "shipped:v1"]);
    let loaded = podman.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("shipped:v1"), "{loaded}");
    let ran = podman.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--entrypoint",
        "cat",
        "docker.io/library/shipped:v1",
        "/opt/plain.txt",
    ]);
    assert_eq!(ran, "plain\n");
    let dockerd = testkit::peers::Dockerd::start(&work.path().join("dockerd"));
    let out = dockerd
        .cli()
        .args(["load", "-i", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout_of(&out).contains("Loaded image: shipped:v1"),
        "{}",
        stdout_of(&out)
    );
    let inspect = dockerd
        .cli()
        .args(["image", "inspect", "shipped:v1"])
        .output()
        .unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let ours = engine.inspect("shipped:v1");
    assert_eq!(theirs[0]["Id"], ours["Id"], "the same image ID in both");
    for field in CONFIG_FIELDS.iter().chain(&["Labels"]) {
        assert_eq!(theirs[0]["Config"][field], ours["Config"][field], "{field}");
    }
    let ran = dockerd
        .cli()
        .args(["run", "--rm", "--network", "none", "shipped:v1"])
        .output()
        .unwrap();
    assert_eq!(
        stdout_of(&ran),
        "/app with space\n1000\n/app\nhello from the builder\n",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    drop(dockerd);

    // --format oci: an OCI image layout skopeo reads.
    let oci = work.path().join("shipped-oci.tar");
    engine.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "shipped:v1",
    ]);
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            &format!("oci-archive:{}:docker.io/library/shipped:v1", oci.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["config"]["User"], "1000:1000");
    // history: one entry per step, the newest first, as Docker prints it.
    let history = engine.ok(&["history", "--no-trunc", "shipped:v1"]);
    let second_line = history.lines().nth(1).unwrap();
    assert!(second_line.contains("CMD [\"echo $APP_HOME"), "{history}");
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn run_steps_use_the_default_bridge_unless_the_build_says_another_network() {
    if !privileged("run_steps_use_the_default_bridge_unless_the_build_says_another_network") {
        return;
    }
    let (engine, ctx) = engine_with_dockerfile(
        "FROM fixture\nRUN ls /sys/class/net > /nets\nCMD [\"cat\", \"/nets\"]\n",
    );
    let dir = ctx.path().to_str().unwrap();
    engine.ok(&["build", "-t", "nets:bridge", dir]);
    assert_eq!(
        engine.ok(&["run", "--rm", "--network", "none", "nets:bridge"]),
        "eth0\nlo\n"
    );
    engine.ok(&[
        "build",
        "--no-cache",
        "--network",
        "none",
        "-t",
        "nets:none",
        dir,
    ]);
    assert_eq!(
        engine.ok(&["run", "--rm", "--network", "none", "nets:none"]),
        "lo\n"
    );
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn under_userns_remap_run_steps_and_commits_keep_the_containers_owners() {
    if !privileged("under_userns_remap_run_steps_and_commits_keep_the_containers_owners") {
        return;
    }
    let engine = Engine::start_remapped(400_000, |_| {});
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM fixture\nRUN mkdir /made && echo r > /made/root-owned && echo u > /made/user-owned && chown 1000:1001 /made/user-owned && rm /bin/true\n",
    )
    .unwrap();
    engine.ok(&[
        "build",
        "-t",
        "remapped-build",
        ctx.path().to_str().unwrap(),
    ]);
    // Read back without a user namespace: the IDs stored in the layer.
    let stat = "stat -c '%n %u:%g' /made /made/root-owned /made/user-owned; test -e /bin/true || echo deleted";
    let expected = "/made 0:0\n/made/root-owned 0:0\n/made/user-owned 1000:1001\ndeleted\n";
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "--userns",
            "host",
            "remapped-build",
            "sh",
            "-c",
            stat
        ]),
        expected
    );
    // And a commit of a remapped container.
    engine.ok(&["run", "--name", "remapped-c", "fixture", "sh", "-c", "mkdir /made && echo r > /made/root-owned && echo u > /made/user-owned && chown 1000:1001 /made/user-owned && rm /bin/true"]);
    engine.ok(&["commit", "remapped-c", "remapped-commit"]);
    assert_eq!(
        engine.ok(&[
            "run",
            "--rm",
            "--userns",
            "host",
            "remapped-commit",
            "sh",
            "-c",
            stat
        ]),
        expected
    );
    engine.ok(&["rm", "remapped-c"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn from_pulls_a_missing_base_image_through_chapter_05() {
    if !privileged("from_pulls_a_missing_base_image_through_chapter_05") {
        return;
    }
    let engine = Engine::start();
    let registry = testkit::registry::Registry::start(testkit::registry::Auth::None);
    let remote = format!("{}/base/fixture:v1", registry.addr);
    engine.ok(&["tag", "fixture", &remote]);
    engine.ok(&["push", &remote]);
    engine.ok(&["rmi", &remote]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "ARG REGISTRY\nFROM ${REGISTRY}/base/fixture:v1\nRUN echo pulled-and-built > /result\nCMD [\"cat\", \"/result\"]\n",
    )
    .unwrap();
    let out = engine.ok(&[
        "build",
        "--build-arg",
        &format!("REGISTRY={}", registry.addr),
        "-t",
        "on-pulled",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("Pulling {remote}")), "{out}");
    assert_eq!(
        engine.ok(&["run", "--rm", "on-pulled"]),
        "pulled-and-built\n"
    );
    assert!(engine
        .ok(&["images"])
        .contains(&format!("{}/base/fixture", registry.addr)));
    // An unreachable registry: the FROM line and the reason.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM 127.0.0.1:9/nothing:here\n",
    )
    .unwrap();
    let failed = engine.run(&["build", ctx.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(
        !failed.status.success() && err.contains("Dockerfile:1: pulling 127.0.0.1:9/nothing:here"),
        "{err}"
    );
}

#[test]
fn copy_from_takes_an_image_or_a_stage_by_number_and_target_stops_at_a_stage() {
    if !privileged("copy_from_takes_an_image_or_a_stage_by_number_and_target_stops_at_a_stage") {
        return;
    }
    let (engine, ctx) = engine_with_dockerfile("FROM fixture\nRUN echo first > /first\n\
         FROM scratch AS second\nCOPY --from=fixture /etc/os-release /from-image\nCOPY --from=0 /first /from-stage-0\n\
         FROM fixture AS third\nCOPY --from=second / /copied/\nCMD [\"cat\", \"/copied/from-stage-0\"]\n");
    let dir = ctx.path().to_str().unwrap();
    engine.ok(&["build", "-t", "froms", dir]);
    assert_eq!(engine.ok(&["run", "--rm", "froms"]), "first\n");
    let os = std::fs::read_to_string(testkit::fixture::rootfs().join("etc/os-release")).unwrap();
    assert_eq!(
        engine.ok(&["run", "--rm", "froms", "cat", "/copied/from-image"]),
        os
    );
    // --target second: a scratch image holding exactly the two files.
    let out = engine.ok(&["build", "--target", "second", "-t", "second-only", dir]);
    assert!(
        out.contains("Step 5/8 : COPY --from=0") && !out.contains("Step 6/"),
        "stopped at the target: {out}"
    );
    engine.ok(&["create", "--name", "probe", "second-only", "/none"]);
    let layers = engine.inspect("second-only")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 2);
    engine.ok(&["rm", "probe"]);
}
