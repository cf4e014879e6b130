//! Chapter 06's graded exercises: the engine's own mechanisms, unit by unit
//! (framing, log lines, lookups, addresses) and end to end through a daemon
//! of the test's own (create, the monitor's start and exit, attach, wait,
//! networking, exec). Each e2e test uses only the exercises up to its own:
//! before 6.12 a container runs with `--network none`.

mod common;
use chapter_06::ids::{find, Lookup};
use common::Engine;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use testkit::privileged;

/// Polls `inspect` until the container's status is `status` (or 20 s pass).
fn wait_status(engine: &Engine, name: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = engine.inspect(name);
        if v["State"]["Status"] == status || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `run -d --network none fixture sh -c SCRIPT`, waited for until it exited;
/// returns its ID.
fn exited(engine: &Engine, script: &str) -> String {
    let id = engine.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        script,
    ]);
    let id = id.trim().to_string();
    wait_status(engine, &id, "exited");
    id
}

/// One raw HTTP/1.1 request on the engine's socket; returns the stream
/// after the response head, and the head.
fn raw(
    engine: &Engine,
    method: &str,
    path: &str,
    headers: &str,
) -> (std::os::unix::net::UnixStream, String) {
    let mut s = std::os::unix::net::UnixStream::connect(&engine.socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// The frames of a multiplexed body, demultiplexed by hand.
fn demux_by_hand(mut bytes: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while bytes.len() >= 8 {
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        assert_eq!(&bytes[1..4], &[0, 0, 0], "header bytes 1..4 are zero");
        out.push((
            bytes[0],
            String::from_utf8_lossy(&bytes[8..8 + len]).into_owned(),
        ));
        bytes = &bytes[8 + len..];
    }
    assert!(bytes.is_empty(), "a partial frame is left: {bytes:?}");
    out
}

fn containers() -> Vec<(String, String)> {
    vec![
        ("abc123".repeat(10) + "aaaa", "web".into()),
        ("abc999".repeat(10) + "bbbb", "db".into()),
        ("def000".repeat(10) + "cccc", "abc".into()),
    ]
}

#[test]
fn ex6_3_containers_are_found_by_id_name_or_unique_prefix() {
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
fn ex6_6_log_lines_are_docker_json_file_entries() {
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
fn ex6_1_the_api_version_prefix_is_optional() {
    use chapter_06::daemon::http::strip_version;
    assert_eq!(strip_version("/v1.41/containers/json"), "/containers/json");
    assert_eq!(strip_version("/v1.24/_ping"), "/_ping");
    assert_eq!(strip_version("/v1.51/images/a/b/json"), "/images/a/b/json");
    assert_eq!(strip_version("/containers/json"), "/containers/json");
    assert_eq!(strip_version("/volumes/x"), "/volumes/x");
    assert_eq!(strip_version("/vx/y"), "/vx/y");
}

#[test]
fn ex6_11_addresses_are_handed_out_lowest_first_and_never_twice() {
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
    // An owner that has an address keeps it (a restarted daemon asks again).
    assert_eq!(allocate(&subnet, &mut taken, "b").unwrap(), b);
    assert_eq!(taken.by_ip.len(), 5);
}

// ---- 6.2 create --------------------------------------------------------------

#[test]
fn ex6_2_a_created_container_is_a_directory_with_its_state_and_a_name_of_its_own() {
    if !privileged("ex6_2_a_created_container_is_a_directory_with_its_state_and_a_name_of_its_own")
    {
        return;
    }
    let engine = Engine::start();
    let id = engine
        .ok(&[
            "create",
            "--name",
            "ex62",
            "--network",
            "none",
            "fixture",
            "true",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let dir = engine.root.join("containers").join(&id);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "created");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["name"], "ex62");
    let again = engine.run(&["create", "--name", "ex62", "fixture", "true"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && err.contains("is already in use"),
        "{err}"
    );
    let unnamed = engine.ok(&["create", "--network", "none", "fixture", "true"]);
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            engine
                .root
                .join("containers")
                .join(unnamed.trim())
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let name = config["name"].as_str().unwrap().to_string();
    assert!(name.len() > 2 && name != "ex62", "a random name: {name}");
}

// ---- 6.3 find (e2e) ------------------------------------------------------------

#[test]
fn ex6_3_commands_take_a_name_or_a_short_id() {
    if !privileged("ex6_3_commands_take_a_name_or_a_short_id") {
        return;
    }
    let engine = Engine::start();
    let id = engine.ok(&[
        "create",
        "--name",
        "ex63",
        "--network",
        "none",
        "fixture",
        "true",
    ]);
    let id = id.trim();
    for query in [id, &id[..12], "ex63", "/ex63"] {
        assert_eq!(engine.inspect(query)["Id"], id, "{query}");
    }
    let out = engine.run(&["inspect", "no-such-container"]);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success() && err.contains("no such"), "{err}");
}

// ---- 6.4 the monitor's start -----------------------------------------------------

#[test]
fn ex6_4_pid_1_runs_in_its_namespaces_and_its_cgroup() {
    if !privileged("ex6_4_pid_1_runs_in_its_namespaces_and_its_cgroup") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "ex64",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    let v = wait_status(&engine, "ex64", "running");
    assert_eq!(v["State"]["Status"], "running", "{}", engine.daemon_log());
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    for ns in ["pid", "mnt", "uts", "ipc", "net"] {
        assert_ne!(
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap(),
            std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap(),
            "{ns}"
        );
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroups.contains(&engine.cgroup_prefix),
        "not in its cgroup: {cgroups}"
    );
    // Its stdio is the monitor's pipes, not the daemon's or the test's.
    let out = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    assert!(out.to_string_lossy().starts_with("pipe:"), "{out:?}");
    engine.ok(&["rm", "-f", "ex64"]);
}

// ---- 6.5 the exit -------------------------------------------------------------------

#[test]
fn ex6_5_the_exit_is_recorded_in_the_state_file() {
    if !privileged("ex6_5_the_exit_is_recorded_in_the_state_file") {
        return;
    }
    let engine = Engine::start();
    let id = engine.ok(&[
        "run",
        "-d",
        "--name",
        "ex65",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "exit 3",
    ]);
    let v = wait_status(&engine, "ex65", "exited");
    assert_eq!(v["State"]["Status"], "exited", "{}", engine.daemon_log());
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["State"]["Pid"], 0);
    assert_eq!(v["State"]["OOMKilled"], false);
    assert!(!v["State"]["FinishedAt"]
        .as_str()
        .unwrap()
        .starts_with("0001"));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            engine
                .root
                .join("containers")
                .join(id.trim())
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (state["status"].clone(), state["exit_code"].clone()),
        ("exited".into(), 3.into())
    );
    assert_eq!(state["cgroup_dirs"], serde_json::json!([]));
}

// ---- 6.6 the log (e2e) -------------------------------------------------------------

#[test]
fn ex6_6_output_lands_in_the_json_file_log_line_by_line() {
    if !privileged("ex6_6_output_lands_in_the_json_file_log_line_by_line") {
        return;
    }
    let engine = Engine::start();
    let id = exited(&engine, "echo one; echo two >&2");
    let id = id.as_str();
    let log = std::fs::read_to_string(
        engine
            .root
            .join("containers")
            .join(id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got: Vec<(String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["stream"].as_str().unwrap().to_string(),
                v["log"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("stderr".to_string(), "two\n".to_string()),
            ("stdout".into(), "one\n".into())
        ]
    );
}

// ---- 6.7 frames --------------------------------------------------------------------

#[test]
fn ex6_7_frames_carry_the_stream_and_a_big_endian_length() {
    use chapter_06::stdcopy::{frame, Stream};
    assert_eq!(
        frame(Stream::Stdout, b"hello"),
        [1, 0, 0, 0, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']
    );
    let big = vec![b'x'; 0x0102];
    let f = frame(Stream::Stderr, &big);
    assert_eq!(f[..8], [2, 0, 0, 0, 0, 0, 1, 2]);
    assert_eq!(f.len(), 8 + big.len());
    assert!(
        frame(Stream::Stdout, b"").is_empty(),
        "an empty chunk makes no frame"
    );
}

#[test]
fn ex6_7_logs_without_a_tty_come_back_framed_per_stream() {
    if !privileged("ex6_7_logs_without_a_tty_come_back_framed_per_stream") {
        return;
    }
    let engine = Engine::start();
    let id = exited(&engine, "echo out; echo err >&2");
    let id = id.as_str();
    let (mut s, head) = raw(
        &engine,
        "GET",
        &format!("/containers/{id}/logs?stdout=1&stderr=1"),
        "Connection: close\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    // Undo the chunked transfer encoding, if the server used it.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        out
    } else {
        body
    };
    let mut frames = demux_by_hand(&body);
    frames.sort();
    assert_eq!(frames, [(1, "out\n".to_string()), (2, "err\n".to_string())]);
}

// ---- 6.8 demultiplexing -------------------------------------------------------------

#[test]
fn ex6_8_frames_come_off_a_buffer_only_when_whole() {
    use chapter_06::stdcopy::next_frame;
    let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 6];
    wire.extend_from_slice(b"hello\n");
    wire.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
    wire.extend_from_slice(b"oops");
    let mut buf = Vec::new();
    let mut got = Vec::new();
    for byte in wire {
        buf.push(byte);
        while let Some(f) = next_frame(&mut buf) {
            got.push(f);
        }
    }
    assert_eq!(got, vec![(1, b"hello\n".to_vec()), (2, b"oops".to_vec())]);
    assert!(buf.is_empty());
    let mut partial = vec![1, 0, 0, 0, 0, 0, 1, 0, b'x'];
    assert_eq!(next_frame(&mut partial), None);
    assert_eq!(partial.len(), 9, "a partial frame stays in the buffer");
}

#[test]
fn ex6_8_our_cli_splits_logs_into_stdout_and_stderr() {
    if !privileged("ex6_8_our_cli_splits_logs_into_stdout_and_stderr") {
        return;
    }
    let engine = Engine::start();
    let id = exited(&engine, "echo out; echo err >&2");
    let out = engine.run(&["logs", id.trim()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

// ---- 6.9 attach ----------------------------------------------------------------------

#[test]
fn ex6_9_an_attached_connection_is_hijacked_and_carries_the_output() {
    if !privileged("ex6_9_an_attached_connection_is_hijacked_and_carries_the_output") {
        return;
    }
    let engine = Engine::start();
    let id = engine.ok(&[
        "create",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "echo attached; echo to-err >&2",
    ]);
    let id = id.trim();
    let (mut stream, head) = raw(
        &engine,
        "POST",
        &format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1"),
        "Connection: Upgrade\r\nUpgrade: tcp\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    let (_, started) = raw(&engine, "POST", &format!("/containers/{id}/start"), "");
    assert!(started.starts_with("HTTP/1.1 204"), "{started}");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let mut buf = bytes;
    let mut frames = Vec::new();
    while let Some((n, payload)) = chapter_06::stdcopy::next_frame(&mut buf) {
        frames.push((n, String::from_utf8_lossy(&payload).into_owned()));
    }
    frames.sort();
    assert_eq!(
        frames,
        [(1, "attached\n".to_string()), (2, "to-err\n".to_string())]
    );
}

// ---- 6.10 wait ------------------------------------------------------------------------

#[test]
fn ex6_10_a_foreground_run_waits_and_exits_with_the_containers_code() {
    if !privileged("ex6_10_a_foreground_run_waits_and_exits_with_the_containers_code") {
        return;
    }
    let engine = Engine::start();
    let out = engine.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let id = engine.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]);
    let start = Instant::now();
    assert_eq!(engine.ok(&["wait", id.trim()]).trim(), "4");
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "wait returned before the exit"
    );
    // A container that is not running answers not-running at once.
    assert_eq!(engine.ok(&["wait", id.trim()]).trim(), "4");
}

// ---- 6.13 exec ------------------------------------------------------------------------

#[test]
fn ex6_13_exec_runs_inside_the_containers_namespaces_and_cgroup() {
    if !privileged("ex6_13_exec_runs_inside_the_containers_namespaces_and_cgroup") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "ex613",
        "--hostname",
        "inside",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    wait_status(&engine, "ex613", "running");
    let facts: serde_json::Value =
        serde_json::from_str(&engine.ok(&["exec", "ex613", "/bin/facts"])).unwrap();
    assert_eq!(facts["hostname"], "inside");
    let pid = engine.inspect("ex613")["State"]["Pid"].as_i64().unwrap();
    for ns in ["pid", "mnt", "uts", "ipc", "net"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(
            facts["namespaces"][ns],
            theirs.to_string_lossy().as_ref(),
            "{ns}"
        );
    }
    let cgroup: Vec<String> = facts["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert!(
        cgroup.iter().any(|l| l.contains(&engine.cgroup_prefix)),
        "the exec'd process is not in the container's cgroup: {cgroup:?}"
    );
    assert!(
        facts["processes"].as_array().unwrap().contains(&1.into()),
        "sees PID 1: {facts}"
    );
    engine.ok(&["rm", "-f", "ex613"]);
}

#[test]
fn ex6_14_continuations_join_lines_and_comments_inside_them_are_skipped() {
    use chapter_06::build::dockerfile::{logical_lines, Line};
    let line = |number, text: &str| Line {
        number,
        text: text.to_string(),
    };
    let text =
        "FROM base\n\n  # a comment\nRUN a \\\n  && b \\\n# inside\n\n  && c\r\nENV X=1 \\   \n";
    assert_eq!(
        logical_lines(text, '\\'),
        [
            line(1, "FROM base"),
            line(4, "RUN a   && b   && c"),
            line(9, "ENV X=1 "),
        ]
    );
    // Another escape character: a backslash is then just a character.
    assert_eq!(
        logical_lines("RUN dir c:\\ `\n  /w\nCMD x\\\n", '`'),
        [line(1, "RUN dir c:\\   /w"), line(3, "CMD x\\")]
    );
    assert!(logical_lines("# only\n\n   \n", '\\').is_empty());
    // Through the whole parser: the line numbers errors use.
    let (_, ins) = chapter_06::build::dockerfile::parse("FROM a\nRUN x \\\n y\nCMD z\n").unwrap();
    let at: Vec<(usize, &str)> = ins.iter().map(|i| (i.line, i.keyword.as_str())).collect();
    assert_eq!(at, [(1, "FROM"), (2, "RUN"), (4, "CMD")]);
}

#[test]
fn ex6_15_a_trees_digest_follows_names_modes_owners_and_contents_never_mtimes() {
    use chapter_06::build::cache::tree_digest;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("t");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/f"), "one").unwrap();
    std::fs::write(root.join("g"), "two").unwrap();
    std::os::unix::fs::symlink("sub/f", root.join("l")).unwrap();
    let first = tree_digest(&root).unwrap();
    assert_eq!(first.len(), 64, "hex SHA-256: {first}");
    assert_eq!(
        tree_digest(&root).unwrap(),
        first,
        "the same tree, the same digest"
    );
    // A copy made elsewhere, at another time: the same.
    let copy = dir.path().join("copy");
    assert!(std::process::Command::new("cp")
        .arg("-r")
        .arg(&root)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(copy.join("g"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(
        tree_digest(&copy).unwrap(),
        first,
        "mtimes and inodes are not in it"
    );
    // Each thing a container could see changes it.
    let changed = |f: &dyn Fn(&std::path::Path)| {
        let d = dir.path().join(format!("c{}", rand_suffix()));
        assert!(std::process::Command::new("cp")
            .arg("-a")
            .arg(&root)
            .arg(&d)
            .status()
            .unwrap()
            .success());
        f(&d);
        tree_digest(&d).unwrap()
    };
    let variants = [
        changed(&|d| std::fs::write(d.join("g"), "tWo").unwrap()),
        changed(&|d| std::fs::rename(d.join("g"), d.join("h")).unwrap()),
        changed(&|d| {
            std::fs::set_permissions(d.join("g"), std::fs::Permissions::from_mode(0o600)).unwrap()
        }),
        changed(&|d| std::os::unix::fs::lchown(d.join("g"), Some(1), Some(1)).unwrap()),
        changed(&|d| {
            std::fs::remove_file(d.join("l")).unwrap();
            std::os::unix::fs::symlink("g", d.join("l")).unwrap()
        }),
        changed(&|d| std::fs::create_dir(d.join("sub/empty")).unwrap()),
        // Contents moved between files: the names and contents pair up.
        changed(&|d| {
            std::fs::write(d.join("g"), "one").unwrap();
            std::fs::write(d.join("sub/f"), "two").unwrap()
        }),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(*v, first, "change {i} not seen");
    }
    let distinct: std::collections::BTreeSet<_> = variants.iter().collect();
    assert_eq!(distinct.len(), variants.len());
    // And the key: parent, instruction and content each count.
    use chapter_06::build::cache::key;
    let k = key("sha256:p", "COPY a b", Some(&first));
    assert_ne!(k, key("sha256:q", "COPY a b", Some(&first)));
    assert_ne!(k, key("sha256:p", "COPY a c", Some(&first)));
    assert_ne!(k, key("sha256:p", "COPY a b", None));
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn ex6_16_each_step_puts_its_layer_on_top_and_its_history_in_order() {
    use chapter_04::digest::Digest;
    use chapter_04::manifest::{ContainerConfig, Descriptor, ImageConfig};
    use chapter_06::build::next_image;
    let descriptor = |n: u8| Descriptor {
        media_type: chapter_04::manifest::OCI_LAYER_GZIP.into(),
        digest: Digest::of(&[n]),
        size: n as u64,
        annotations: None,
        platform: None,
    };
    let mut base = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    base.rootfs.kind = "layers".into();
    base.rootfs.diff_ids = vec![Digest::of(b"diff0")];
    base.history = vec![serde_json::json!({"created_by": "base"})];
    let base_layers = vec![descriptor(0)];
    let run = ContainerConfig {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let (one, layers) = next_image(
        &base,
        &base_layers,
        Some((descriptor(1), Digest::of(b"diff1"))),
        run.clone(),
        "/bin/sh -c make",
        "2026-12-01T00:00:00Z",
    );
    assert_eq!(
        layers,
        [descriptor(0), descriptor(1)],
        "the new layer on top"
    );
    assert_eq!(
        one.rootfs.diff_ids,
        [Digest::of(b"diff0"), Digest::of(b"diff1")]
    );
    assert_eq!(one.config, Some(run.clone()));
    assert_eq!(one.created.as_deref(), Some("2026-12-01T00:00:00Z"));
    assert_eq!(
        (one.architecture.as_str(), one.os.as_str()),
        ("amd64", "linux")
    );
    assert_eq!(
        one.history,
        [
            serde_json::json!({"created_by": "base"}),
            serde_json::json!({"created": "2026-12-01T00:00:00Z", "created_by": "/bin/sh -c make"}),
        ]
    );
    // A config-only step: no layer, an empty_layer entry.
    let (two, layers2) = next_image(
        &one,
        &layers,
        None,
        ContainerConfig::default(),
        "CMD x",
        "t2",
    );
    assert_eq!(layers2, layers);
    assert_eq!(two.rootfs.diff_ids, one.rootfs.diff_ids);
    assert_eq!(two.history.len(), 3);
    assert_eq!(two.history[2]["empty_layer"], true);
    assert_eq!(two.history[2]["created_by"], "CMD x");
    assert_eq!(two.config, Some(ContainerConfig::default()));
    // The parent is not changed.
    assert_eq!(base.history.len(), 1);
}
