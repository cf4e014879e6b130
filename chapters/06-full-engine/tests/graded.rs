//! Chapter 06's graded exercises: the pieces of Docker's protocol and
//! bookkeeping the engine is made of. `cargo xtask grade` runs these.

use chapter_06::api::{ContainerConfig, HostConfig};
use chapter_06::ids::{find, Lookup};
use chapter_06::state::Container;
use std::time::Duration;

fn containers() -> Vec<(String, String)> {
    vec![
        ("abc123".repeat(10) + "aaaa", "web".into()),
        ("abc999".repeat(10) + "bbbb", "db".into()),
        ("def000".repeat(10) + "cccc", "abc".into()),
    ]
}

#[test]
fn ex6_1_containers_are_found_by_id_name_or_unique_prefix() {
    let c = containers();
    assert_eq!(find(&c, &c[0].0), Ok(c[0].0.clone()), "full ID");
    assert_eq!(find(&c, "web"), Ok(c[0].0.clone()), "name");
    assert_eq!(
        find(&c, "/db"),
        Ok(c[1].0.clone()),
        "name with Docker's slash"
    );
    assert_eq!(find(&c, "abc1"), Ok(c[0].0.clone()), "unique prefix");
    assert_eq!(
        find(&c, "abc"),
        Ok(c[2].0.clone()),
        "an exact name beats a prefix"
    );
    assert_eq!(find(&c, "ab"), Err(Lookup::Ambiguous(2)));
    assert_eq!(find(&c, "zzz"), Err(Lookup::NotFound));
    assert_eq!(find(&c, ""), Err(Lookup::NotFound));
}

#[test]
fn ex6_2_frames_carry_the_stream_and_a_big_endian_length() {
    use chapter_06::stdcopy::{frame_header, Stream};
    assert_eq!(frame_header(Stream::Stdout, 5), [1, 0, 0, 0, 0, 0, 0, 5]);
    assert_eq!(
        frame_header(Stream::Stderr, 0x0102_0304),
        [2, 0, 0, 0, 1, 2, 3, 4]
    );
    assert_eq!(frame_header(Stream::Stdin, 256), [0, 0, 0, 0, 0, 0, 1, 0]);
}

#[test]
fn ex6_3_log_lines_are_docker_json_file_entries() {
    use chapter_06::jsonlog::log_line;
    let line = log_line(
        "stderr",
        b"oops \"quoted\"\n",
        "2026-11-27T10:00:00.123456789Z",
    );
    assert!(line.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["log"], "oops \"quoted\"\n");
    assert_eq!(v["stream"], "stderr");
    assert_eq!(v["time"], "2026-11-27T10:00:00.123456789Z");
    let binary = log_line("stdout", &[0xff, b'a'], "t");
    let v: serde_json::Value = serde_json::from_str(binary.trim_end()).unwrap();
    assert_eq!(
        v["log"], "\u{fffd}a",
        "invalid UTF-8 is replaced, not refused"
    );
}

#[test]
fn ex6_4_durations_read_as_docker_ps_shows_them() {
    use chapter_06::human::human_duration;
    let s = Duration::from_secs;
    assert_eq!(
        human_duration(Duration::from_millis(300)),
        "Less than a second"
    );
    assert_eq!(human_duration(s(1)), "1 second");
    assert_eq!(human_duration(s(42)), "42 seconds");
    assert_eq!(human_duration(s(61)), "About a minute");
    assert_eq!(human_duration(s(59 * 60)), "59 minutes");
    assert_eq!(human_duration(s(3600)), "About an hour");
    assert_eq!(human_duration(s(5 * 3600)), "5 hours");
    assert_eq!(human_duration(s(3 * 86400)), "3 days");
    assert_eq!(human_duration(s(21 * 86400)), "3 weeks");
    assert_eq!(human_duration(s(90 * 86400)), "3 months");
    assert_eq!(human_duration(s(3 * 365 * 86400)), "3 years");
}

#[test]
fn ex6_5_the_api_version_prefix_is_optional() {
    use chapter_06::daemon::http::strip_version;
    assert_eq!(strip_version("/v1.41/containers/json"), "/containers/json");
    assert_eq!(strip_version("/v1.24/_ping"), "/_ping");
    assert_eq!(strip_version("/v1.51/images/a/b/json"), "/images/a/b/json");
    assert_eq!(strip_version("/containers/json"), "/containers/json");
    assert_eq!(strip_version("/volumes/x"), "/volumes/x");
    assert_eq!(strip_version("/vx/y"), "/vx/y");
}

fn container(host_config: HostConfig) -> Container {
    Container {
        id: "0".repeat(64),
        name: "t".into(),
        created: String::new(),
        image: "fixture".into(),
        image_id: String::new(),
        layers: vec![],
        args: vec!["true".into()],
        env: vec![],
        workdir: "/".into(),
        uid: 0,
        gid: 0,
        hostname: "h".into(),
        stop_signal: 15,
        config: ContainerConfig::default(),
        host_config,
        mounts: vec![],
        exposed_ports: vec![],
    }
}

#[test]
fn ex6_6_host_config_limits_become_cgroup_limits() {
    use chapter_02::limits::Swap;
    use chapter_06::monitor::limits_for;
    let none = limits_for(&container(HostConfig::default()));
    assert_eq!(none, chapter_02::Limits::default(), "zero means not set");
    let l = limits_for(&container(HostConfig {
        memory: 64 << 20,
        memory_swap: -1,
        nano_cpus: 500_000_000,
        cpu_shares: 512,
        cpuset_cpus: "0".into(),
        pids_limit: Some(32),
        ..HostConfig::default()
    }));
    assert_eq!(l.memory, Some(64 << 20));
    assert_eq!(l.memory_swap, Some(Swap::Unlimited));
    assert_eq!(l.cpus, Some(0.5));
    assert_eq!(l.cpu_shares, Some(512));
    assert_eq!(l.cpuset_cpus.as_deref(), Some("0"));
    assert_eq!(l.pids, Some(32));
    let l = limits_for(&container(HostConfig {
        memory: 64 << 20,
        memory_swap: 128 << 20,
        pids_limit: Some(-1),
        ..HostConfig::default()
    }));
    assert_eq!(l.memory_swap, Some(Swap::Total(128 << 20)));
    assert_eq!(l.pids, None, "-1 is unlimited");
}

#[test]
fn ex6_7_addresses_are_handed_out_lowest_first_and_never_twice() {
    use chapter_06::net::ipam::{allocate, release, Allocations, Subnet};
    use std::net::Ipv4Addr;
    let subnet = Subnet::parse("10.9.0.0/29").unwrap();
    let mut taken = Allocations::default();
    let a = allocate(&subnet, &mut taken, "a").unwrap();
    let b = allocate(&subnet, &mut taken, "b").unwrap();
    assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2), "after the gateway (.1)");
    assert_eq!(b, Ipv4Addr::new(10, 9, 0, 3));
    release(&mut taken, "a");
    assert_eq!(
        allocate(&subnet, &mut taken, "c").unwrap(),
        a,
        "the lowest free one"
    );
    for owner in ["d", "e", "f"] {
        allocate(&subnet, &mut taken, owner).unwrap();
    }
    // .2 to .6 are taken; .7 is the broadcast address.
    let full = allocate(&subnet, &mut taken, "g").unwrap_err();
    assert!(full.contains("10.9.0.0/29"), "{full}");
    assert_eq!(taken.by_ip.len(), 5);
}
