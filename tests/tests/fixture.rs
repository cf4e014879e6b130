//! The fixture image is what every container test runs; check its shape.

#[test]
fn fixture_has_busybox_applets_and_a_static_facts_helper() {
    let rootfs = testkit::fixture::rootfs();
    for path in [
        "bin/busybox",
        "bin/sh",
        "bin/facts",
        "etc/passwd",
        "proc",
        "dev",
        "tmp",
    ] {
        assert!(
            rootfs.join(path).exists(),
            "{path} missing in {}",
            rootfs.display()
        );
    }
    // A static binary has no program interpreter (PT_INTERP); `file`-free check:
    // the dynamic loader's path never appears in a static glibc binary.
    let facts = std::fs::read(rootfs.join("bin/facts")).unwrap();
    let needle = b"/lib64/ld-linux";
    assert!(
        !facts.windows(needle.len()).any(|w| w == needle),
        "facts is dynamically linked; it must run in a rootfs with no libc"
    );
}

#[test]
fn the_janitor_removes_test_cgroups_and_kills_their_processes() {
    if !testkit::privileged("the_janitor_removes_test_cgroups_and_kills_their_processes") {
        return;
    }
    // A leftover the way a failed test would leave it: a cgroup with a process.
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/pids/mini-docker-test-janitor-{}",
        std::process::id()
    ));
    if !dir.parent().unwrap().exists() {
        eprintln!("no v1 pids hierarchy here");
        return;
    }
    std::fs::create_dir(&dir).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("987655")
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let removed = testkit::janitor::sweep_test_cgroups();
    assert!(removed.contains(&dir), "{removed:?}");
    assert!(!dir.exists());
    assert!(
        sleeper.wait().unwrap().code().is_none(),
        "the process inside was killed"
    );
}
