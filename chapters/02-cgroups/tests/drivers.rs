//! The drivers beyond the graded exercises: v1 limits read back from real
//! files, and the errors of a busy cgroup.

use chapter_02::container::create_limited;
use chapter_02::layout::Layout;
use chapter_02::limits::{DeviceRate, Limits};
use testkit::privileged;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
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
    let sleeper = testkit::Sleeper::start(987654);
    guard.0.add(sleeper.pid()).unwrap();
    let err = guard.0.remove().unwrap_err();
    assert!(
        err.contains("busy") && err.contains("processes are still inside"),
        "{err}"
    );
    drop(guard); // kills and removes
    assert!(sleeper.killed());
}
