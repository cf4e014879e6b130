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
