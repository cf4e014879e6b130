//! Graded tests for chapter 02; each name starts with its exercise id.
//! Real cgroups on this machine (v1 via hybrid here); pure functions with
//! table tests; v1 memory files on a scratch directory shaped like cgroupfs.

use chapter_02::cgroup::{join, kill_listed, oom_kills};
use chapter_02::container::{create_limited, run_limited};
use chapter_02::convert::{cpus_to_quota, shares_to_weight};
use chapter_02::layout::{mode_from_magic, Layout, Mode};
use chapter_02::limits::{Limits, Swap};
use chapter_02::size::parse_size;
use chapter_02::v1::apply_memory;
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, EXT4_SUPER_MAGIC, TMPFS_MAGIC};
use std::path::PathBuf;
use std::process::Command;
use testkit::{fixture, parse_facts, privileged};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-02");

fn spec(ns: &str, command: &[&str]) -> chapter_01::Spec {
    let mut spec = chapter_01::Spec::new(
        fixture::rootfs(),
        command.iter().map(|s| s.to_string()).collect(),
    );
    spec.namespaces = ns.parse().unwrap();
    if !spec.namespaces.contains(chapter_01::Namespace::Uts) {
        spec.hostname = None;
    }
    spec
}

/// A cgroup name unique to this test and process.
fn name(test: &str) -> String {
    format!("mini-docker-test-{test}-{}", std::process::id())
}

/// Every directory named `name` in this host's hierarchies (should be none
/// after a run).
fn leftover_dirs(name: &str) -> Vec<PathBuf> {
    let layout = Layout::detect().unwrap();
    let own = chapter_02::layout::parse_own_cgroups(
        &std::fs::read_to_string("/proc/self/cgroup").unwrap(),
    );
    let mut found = Vec::new();
    for (controller, mount) in &layout.v1_mounts {
        let path =
            chapter_02::layout::under(mount, own.v1.get(controller).map_or("/", String::as_str))
                .join(name);
        if path.exists() {
            found.push(path);
        }
    }
    if let Some(m) = &layout.v2_mount {
        let path = chapter_02::layout::under(m, own.v2.as_deref().unwrap_or("/")).join(name);
        if path.exists() {
            found.push(path);
        }
    }
    found
}

/// Processes whose command line contains `needle`.
fn processes_running(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .count()
}

// ---- 2.1 sizes ---------------------------------------------------------------

#[test]
fn ex2_1_sizes_parse_like_docker() {
    for (text, bytes) in [
        ("4096", 4096),
        ("512k", 512 << 10),
        ("100m", 100 << 20),
        ("100M", 100 << 20),
        ("100mb", 100 << 20),
        ("100MiB", 100 << 20),
        ("1.5g", 3 << 29),
        ("2t", 2 << 40),
        ("7b", 7),
    ] {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
    for bad in ["", "m", "10ZB", "-1", "1.5.3", "ten", "99999999999p"] {
        let err = parse_size(bad).expect_err(bad);
        assert!(
            err.contains(&format!("{bad:?}")),
            "the error names the input: {err}"
        );
    }
}

// ---- 2.2 cpus ----------------------------------------------------------------

#[test]
fn ex2_2_cpus_become_quota_and_period() {
    assert_eq!(cpus_to_quota(0.5), (50_000, 100_000));
    assert_eq!(cpus_to_quota(1.5), (150_000, 100_000));
    assert_eq!(cpus_to_quota(0.01), (1_000, 100_000));
    assert_eq!(cpus_to_quota(2.0), (200_000, 100_000));
}

#[test]
fn ex2_2_cpu_quota_throttles_a_busy_loop() {
    if !privileged("ex2_2_cpu_quota_throttles_a_busy_loop") {
        return;
    }
    let limits = Limits {
        cpus: Some(0.5),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let out = run_limited(
        &spec(
            "pid,mnt",
            &["/bin/sh", "-c", "exec /bin/facts spin 2 >/dev/null"],
        ),
        &limits,
        &name("cpu"),
        None,
    )
    .unwrap();
    let wall = start.elapsed().as_secs_f64();
    let share = out.stats.cpu_ns as f64 / 1e9 / wall;
    assert_eq!(out.exit_code, 0);
    // A wide band: the quota caps it near 0.5; a busy machine may give less.
    assert!(
        (0.2..=0.7).contains(&share),
        "used {share:.2} CPU under a 0.5 CPU quota"
    );
}

// ---- 2.3 shares → weight -------------------------------------------------------

#[test]
fn ex2_3_shares_convert_to_weight_with_cruns_formula() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(
        shares_to_weight(0),
        1,
        "below the v1 range acts as its minimum"
    );
    assert_eq!(
        shares_to_weight(1_000_000),
        10_000,
        "above it as its maximum"
    );
    assert_eq!(shares_to_weight(512), 1 + (510 * 9999) / 262_142);
}

// ---- 2.4 layout ----------------------------------------------------------------

#[test]
fn ex2_4_layout_is_told_from_filesystem_types() {
    assert_eq!(mode_from_magic(CGROUP2_SUPER_MAGIC, None), Some(Mode::V2));
    assert_eq!(
        mode_from_magic(TMPFS_MAGIC, Some(CGROUP2_SUPER_MAGIC)),
        Some(Mode::Hybrid)
    );
    assert_eq!(mode_from_magic(TMPFS_MAGIC, None), Some(Mode::V1));
    assert_eq!(
        mode_from_magic(TMPFS_MAGIC, Some(TMPFS_MAGIC)),
        Some(Mode::V1)
    );
    assert_eq!(mode_from_magic(EXT4_SUPER_MAGIC, None), None);
}

#[test]
fn ex2_4_this_hosts_layout_matches_its_mount_table() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let fs_at = |point: &str| {
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(1) == Some(&point)).then(|| f[2].to_string())
        })
    };
    let expected = match (
        fs_at("/sys/fs/cgroup").as_deref(),
        fs_at("/sys/fs/cgroup/unified").as_deref(),
    ) {
        (Some("cgroup2"), _) => Mode::V2,
        (Some("tmpfs"), Some("cgroup2")) => Mode::Hybrid,
        _ => Mode::V1,
    };
    assert_eq!(Layout::detect().unwrap().mode, expected);
}

// ---- 2.5 v1 memory files ---------------------------------------------------------

#[test]
fn ex2_5_v1_memory_limit_and_memsw_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let memsw = dir.path().join("memory.memsw.limit_in_bytes");
    std::fs::write(&memsw, "").unwrap(); // present: swap accounting is on
    let mut warnings = Vec::new();
    apply_memory(
        dir.path(),
        Some(64 << 20),
        Some(Swap::Total(96 << 20)),
        &mut warnings,
    )
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(read("memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(
        read("memory.memsw.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert!(warnings.is_empty());
    apply_memory(dir.path(), None, Some(Swap::Unlimited), &mut warnings).unwrap();
    assert_eq!(read("memory.memsw.limit_in_bytes"), "-1");

    // Without swap accounting: the memory limit still applies, with a warning.
    let bare = tempfile::tempdir().unwrap();
    apply_memory(
        bare.path(),
        Some(32 << 20),
        Some(Swap::Total(64 << 20)),
        &mut warnings,
    )
    .unwrap();
    assert!(bare.path().join("memory.limit_in_bytes").exists());
    assert!(!bare.path().join("memory.memsw.limit_in_bytes").exists());
    assert!(warnings.iter().any(|w| w.contains("swap")), "{warnings:?}");
}

// ---- 2.6 joining -------------------------------------------------------------------

#[test]
fn ex2_6_join_writes_the_pid_into_each_cgroup_procs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    join(
        &[a.path().to_path_buf(), b.path().to_path_buf()],
        nix::unistd::Pid::from_raw(4242),
    )
    .unwrap();
    for d in [a.path(), b.path()] {
        assert_eq!(
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap()
                .trim(),
            "4242"
        );
    }
    let err = join(
        &[PathBuf::from("/nonexistent/cg")],
        nix::unistd::Pid::from_raw(1),
    )
    .unwrap_err();
    assert!(err.contains("/nonexistent/cg/cgroup.procs"), "{err}");
}

#[test]
fn ex2_6_the_command_runs_inside_its_cgroup_from_its_first_instruction() {
    if !privileged("ex2_6_the_command_runs_inside_its_cgroup_from_its_first_instruction") {
        return;
    }
    // facts is the command itself: what it reports is its state at exec.
    let out = Command::new(BIN)
        .args([
            "run",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--",
            "/bin/facts",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts = parse_facts(&out.stdout);
    let lines: Vec<String> = facts["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let layout = Layout::detect().unwrap();
    let must_join: Vec<&str> = if layout.mode.uses_v1() {
        vec!["memory", "pids", "cpu"]
    } else {
        vec![""]
    };
    for controller in must_join {
        let line = lines
            .iter()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == controller))
            })
            .unwrap_or_else(|| panic!("no {controller:?} line in {lines:?}"));
        assert!(
            line.contains("/mini-docker-ch02-"),
            "not in the container's cgroup at exec: {line}"
        );
    }
}

#[test]
fn ex2_6_pids_limit_stops_fork_with_eagain() {
    if !privileged("ex2_6_pids_limit_stops_fork_with_eagain") {
        return;
    }
    let out = Command::new(BIN)
        .args([
            "run",
            "--pids-limit",
            "16",
            "--",
            "/bin/facts",
            "forkbomb",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = parse_facts(&out.stdout);
    assert_eq!(report["error"], "EAGAIN", "{report}");
    let forked = report["forked"].as_u64().unwrap();
    assert!(
        (1..16).contains(&forked),
        "forked {forked} under a limit of 16 (PID 1 counts too)"
    );
}

// ---- 2.7 OOM --------------------------------------------------------------------------

#[test]
fn ex2_7_oom_kills_are_counted_from_the_memory_events() {
    assert_eq!(
        oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
        3
    );
    assert_eq!(
        oom_kills("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"),
        1
    );
    assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\n"), 0);
}

#[test]
fn ex2_7_a_memory_hog_is_oom_killed_and_reported_as_such() {
    if !privileged("ex2_7_a_memory_hog_is_oom_killed_and_reported_as_such") {
        return;
    }
    let limits = Limits {
        memory: Some(32 << 20),
        memory_swap: Some(Swap::Total(32 << 20)),
        ..Default::default()
    };
    let hog = spec(
        "pid,mnt",
        &["/bin/sh", "-c", "exec /bin/facts hog 256 >/dev/null"],
    );
    let out = run_limited(&hog, &limits, &name("oom"), None).unwrap();
    assert_eq!(out.exit_code, 137, "killed by SIGKILL");
    assert!(
        out.stats.oom_kills >= 1,
        "the cgroup recorded no OOM kill: {:?}",
        out.stats
    );
    assert!(out.oom_killed);
    // Control: a SIGKILL that is not the OOM killer's is not reported as OOM.
    let suicide = spec("mnt", &["/bin/sh", "-c", "kill -9 $$"]);
    let out = run_limited(&suicide, &limits, &name("kill9"), None).unwrap();
    assert_eq!(out.exit_code, 137);
    assert!(!out.oom_killed, "{:?}", out.stats);
}

// ---- 2.8 cleanup ------------------------------------------------------------------------

#[test]
fn ex2_8_kill_listed_empties_a_cgroup() {
    if !privileged("ex2_8_kill_listed_empties_a_cgroup") {
        return;
    }
    let (guard, _) = create_limited(&name("kill"), &Limits::default()).unwrap();
    let mut sleeper = Command::new("sleep").arg("987651").spawn().unwrap();
    guard
        .0
        .add(nix::unistd::Pid::from_raw(sleeper.id() as i32))
        .unwrap();
    assert_eq!(guard.0.pids().len(), 1);
    kill_listed(&guard.0.dirs()).unwrap();
    assert!(guard.0.pids().is_empty());
    assert!(
        sleeper.wait().unwrap().code().is_none(),
        "the sleeper was killed by a signal"
    );
}

#[test]
fn ex2_8_leftover_processes_are_killed_and_the_cgroup_removed() {
    if !privileged("ex2_8_leftover_processes_are_killed_and_the_cgroup_removed") {
        return;
    }
    // Without a PID namespace, a background process outlives the shell:
    // only the cleanup can end it.
    let n = name("leftover");
    let script = "sleep 987652 </dev/null >/dev/null 2>&1 & exit 0";
    let out = run_limited(
        &spec("mnt", &["/bin/sh", "-c", script]),
        &Limits::default(),
        &n,
        None,
    )
    .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        processes_running("sleep 987652"),
        0,
        "a process of the container survived"
    );
    assert!(
        leftover_dirs(&n).is_empty(),
        "cgroup left behind: {:?}",
        leftover_dirs(&n)
    );
}

#[test]
fn ex2_8_a_child_that_fails_early_leaves_no_cgroup() {
    if !privileged("ex2_8_a_child_that_fails_early_leaves_no_cgroup") {
        return;
    }
    let n = name("early");
    let err = run_limited(
        &spec("pid,mnt", &["/no/such/program"]),
        &Limits::default(),
        &n,
        None,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("/no/such/program"), "{err:#}");
    assert!(
        leftover_dirs(&n).is_empty(),
        "cgroup left behind: {:?}",
        leftover_dirs(&n)
    );
}
