//! The drivers' file writes and lifecycle, beyond the graded exercises:
//! the v2 driver on a scratch directory shaped like cgroupfs (always) and
//! on the host's real cgroup2 mount (where there is one: the root on v2
//! hosts, `unified/` on hybrid ones); v1 limits read back from real files.

use chapter_02::cgroup::Cgroup;
use chapter_02::container::create_limited;
use chapter_02::layout::{parse_own_cgroups, under, Layout};
use chapter_02::limits::{DeviceRate, Limits, Swap};
use chapter_02::v2::V2Cgroup;
use nix::unistd::Pid;
use std::process::Command;
use testkit::privileged;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn v2_driver_enables_controllers_down_the_path_and_writes_v2_values() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("a/b")).unwrap();
    // The top level offers only some controllers, as a real root may.
    std::fs::write(
        root.path().join("cgroup.controllers"),
        "cpu memory pids hugetlb\n",
    )
    .unwrap();
    let cg = V2Cgroup::create(root.path(), "/a/b", "box", true).unwrap();
    assert_eq!(
        read(&root.path().join("cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    for level in ["a", "a/b"] {
        assert_eq!(
            read(&root.path().join(level).join("cgroup.subtree_control")),
            "+cpu +cpuset +io +memory +pids"
        );
    }
    let dir = root.path().join("a/b/box");
    assert_eq!(cg.dirs(), std::slice::from_ref(&dir));
    let limits = Limits {
        memory: Some(64 << 20),
        memory_swap: Some(Swap::Total(96 << 20)),
        cpus: Some(0.5),
        cpu_shares: Some(1024),
        cpuset_cpus: Some("0".into()),
        pids: Some(20),
        blkio_weight: Some(500),
        write_bps: vec![DeviceRate {
            major: 254,
            minor: 0,
            per_second: 1 << 20,
        }],
        ..Default::default()
    };
    assert!(cg.apply(&limits).unwrap().is_empty());
    let expect = [
        ("memory.max", (64u64 << 20).to_string()),
        ("memory.swap.max", (32u64 << 20).to_string()),
        ("cpu.max", "50000 100000".into()),
        ("cpu.weight", "39".into()),
        ("cpuset.cpus", "0".into()),
        ("pids.max", "20".into()),
        ("io.weight", format!("default {}", 1 + (490 * 9999) / 990)),
        ("io.max", "254:0 wbps=1048576".into()),
    ];
    for (file, value) in expect {
        assert_eq!(read(&dir.join(file)), value, "{file}");
    }
    cg.add(Pid::from_raw(77)).unwrap();
    assert_eq!(read(&dir.join("cgroup.procs")), "77");
    let unlimited = Limits {
        memory: Some(64 << 20),
        memory_swap: Some(Swap::Unlimited),
        ..Default::default()
    };
    cg.apply(&unlimited).unwrap();
    assert_eq!(read(&dir.join("memory.swap.max")), "max");
}

#[test]
fn v2_lifecycle_on_the_real_cgroup2_hierarchy() {
    if !privileged("v2_lifecycle_on_the_real_cgroup2_hierarchy") {
        return;
    }
    let layout = Layout::detect().unwrap();
    let Some(mount) = layout.v2_mount else {
        eprintln!("this host has no cgroup2 mount: nothing to exercise");
        return;
    };
    let own = parse_own_cgroups(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    let own_path = own.v2.unwrap_or_else(|| "/".into());
    let name = format!("mini-docker-test-v2-{}", std::process::id());
    // On a hybrid host the cgroup2 tree holds no controllers: creating,
    // joining, killing and removing are what it can show.
    let enable = !layout.mode.uses_v1();
    let cg = V2Cgroup::create(&mount, &own_path, &name, enable).unwrap();
    let dir = under(&mount, &own_path).join(&name);
    assert!(dir.is_dir());
    let mut sleeper = Command::new("sleep").arg("987653").spawn().unwrap();
    cg.add(Pid::from_raw(sleeper.id() as i32)).unwrap();
    assert_eq!(cg.pids(), [Pid::from_raw(sleeper.id() as i32)]);
    assert!(read(&dir.join("cgroup.events")).contains("populated 1"));
    cg.kill_all().unwrap();
    assert!(
        sleeper.wait().unwrap().code().is_none(),
        "killed by a signal"
    );
    cg.remove().unwrap();
    assert!(!dir.exists(), "the cgroup was not removed");
}

#[test]
fn v1_limits_are_readable_back_from_a_real_cgroup() {
    if !privileged("v1_limits_are_readable_back_from_a_real_cgroup") {
        return;
    }
    let layout = Layout::detect().unwrap();
    if !layout.mode.uses_v1() {
        eprintln!("not a v1 or hybrid host");
        return;
    }
    let (major, minor) = chapter_02::limits::device_of(std::path::Path::new("/")).unwrap();
    let limits = Limits {
        memory: Some(64 << 20),
        cpus: Some(0.25),
        cpu_shares: Some(512),
        pids: Some(33),
        write_bps: vec![DeviceRate {
            major,
            minor,
            per_second: 2 << 20,
        }],
        ..Default::default()
    };
    let (guard, _warnings) = create_limited(
        &format!("mini-docker-test-v1-{}", std::process::id()),
        &limits,
    )
    .unwrap();
    let dirs = guard.0.dirs();
    let find = |file: &str| {
        dirs.iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {file} in {dirs:?}"))
    };
    assert_eq!(
        read(&find("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(read(&find("cpu.cfs_quota_us")), "25000");
    assert_eq!(read(&find("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&find("cpu.shares")), "512");
    assert_eq!(read(&find("pids.max")), "33");
    assert_eq!(
        read(&find("blkio.throttle.write_bps_device")),
        format!("{major}:{minor} {}", 2 << 20)
    );
    let cpus = read(&find("cpuset.cpus"));
    assert!(
        !cpus.is_empty(),
        "cpuset.cpus must be inherited, or nothing can join"
    );
    drop(guard);
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "the guard removed every directory"
    );
}

#[test]
fn removing_a_cgroup_with_processes_inside_names_the_cause() {
    if !privileged("removing_a_cgroup_with_processes_inside_names_the_cause") {
        return;
    }
    let (guard, _) = create_limited(
        &format!("mini-docker-test-busy-{}", std::process::id()),
        &Limits::default(),
    )
    .unwrap();
    let mut sleeper = Command::new("sleep").arg("987654").spawn().unwrap();
    guard.0.add(Pid::from_raw(sleeper.id() as i32)).unwrap();
    let err = guard.0.remove().unwrap_err();
    assert!(
        err.contains("busy") && err.contains("processes are still inside"),
        "{err}"
    );
    drop(guard); // kills and removes
    assert!(sleeper.wait().unwrap().code().is_none());
}
