//! cgroup v2's device filter: the BPF program chapter 02 writes, attached
//! to a real cgroup2 directory (on a hybrid host, below `unified/`), and a
//! shell inside that cgroup trying device nodes.

use chapter_02::layout::Layout;
use testkit::privileged;

/// A cgroup2 directory of the test's, removed on drop (after the processes
/// in it have exited; the program goes with it).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = chapter_02::cgroup::remove_dir(&self.0);
    }
}

/// What a shell in a cgroup with `rules` may open: each of `probes` is a
/// redirection (`</dev/null`), printed when it worked.
fn opens(v2: &std::path::Path, name: &str, rules: &[&str], probes: &[&str]) -> String {
    let dir = Scratch(v2.join(format!(
        "mini-docker-test-devices-{}-{name}",
        std::process::id()
    )));
    std::fs::create_dir(&dir.0).unwrap();
    let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    chapter_02::devices::attach(&dir.0, &rules).unwrap();
    let mut script = format!("echo $$ > {}/cgroup.procs || exit 9", dir.0.display());
    for (i, probe) in probes.iter().enumerate() {
        // stderr closed, not sent to /dev/null: that is one of the probes.
        script += &format!("; (exec {}{probe}) 2>&- && echo '{probe}'", i + 3);
    }
    script += "; true";
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_v2_device_filter_allows_only_its_rules() {
    if !privileged("a_v2_device_filter_allows_only_its_rules") {
        return;
    }
    let layout = Layout::detect().unwrap();
    let v2 = layout
        .v2_mount
        .expect("a cgroup2 mount (v2, or hybrid's unified/)");
    assert!(
        std::path::Path::new("/dev/fuse").exists(),
        "the probes use /dev/fuse (10:229)"
    );
    let probes = ["</dev/fuse", "</dev/null", ">/dev/null", "</dev/zero"];
    // Docker's defaults: null and zero, not fuse.
    let defaults: Vec<&str> = chapter_02::limits::DEFAULT_DEVICE_RULES.to_vec();
    assert_eq!(
        opens(&v2, "defaults", &defaults, &probes),
        "</dev/null\n>/dev/null\n</dev/zero\n"
    );
    // One device, read only; a type and numbers wildcard; everything.
    assert_eq!(
        opens(&v2, "read", &["c 1:3 r", "c 10:229 rw"], &probes),
        "</dev/fuse\n</dev/null\n"
    );
    assert_eq!(
        opens(&v2, "wild", &["c 1:* rw"], &probes),
        "</dev/null\n>/dev/null\n</dev/zero\n"
    );
    assert_eq!(opens(&v2, "all", &["a"], &probes).lines().count(), 4);
    assert!(chapter_02::devices::attach(
        &v2.join("no-such-cgroup"),
        &defaults.iter().map(|r| r.to_string()).collect::<Vec<_>>()
    )
    .unwrap_err()
    .contains("opening the cgroup"));
}
