//! `cp` both ways (`/containers/{id}/archive`): running and stopped
//! containers, our CLI and both docker CLIs, hostile uploads, and a
//! container under a user namespace.

mod common;
use common::Engine;
use std::io::{Read, Write};
use std::path::Path;
use testkit::privileged;

/// A raw request over the engine's socket: (status, headers, body).
fn request(engine: &Engine, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let socket = engine.root.parent().unwrap().join("api.sock");
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = reply[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = plain;
    }
    (status, head, body)
}

/// A tar whose entries are (name, symlink target or file content); names
/// are written raw, so `..` and absolute names go through as a hostile
/// client would send them.
fn hostile_tar(entries: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, link, data) in entries {
        let mut h = tar::Header::new_ustar();
        let raw = name.as_bytes();
        h.as_ustar_mut().unwrap().name[..raw.len()].copy_from_slice(raw);
        h.set_mode(0o644);
        match link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_link_name(target).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            None => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// `box`, running, and `idle`, never started: the two states cp serves.
fn box_and_idle(engine: &Engine) {
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "fixture",
        "sleep",
        "600",
    ]);
    engine.ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "fixture",
        "true",
    ]);
}

fn exec_out(engine: &Engine, container: &str, script: &str) -> String {
    engine.ok(&["exec", container, "sh", "-c", script])
}

#[test]
fn cp_copies_both_ways_into_running_and_stopped_containers() {
    if !privileged("cp_copies_both_ways_into_running_and_stopped_containers") {
        return;
    }
    let engine = Engine::start();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    std::fs::write(h.join("note.txt"), "hello from the host\n").unwrap();
    std::fs::create_dir_all(h.join("tree/sub")).unwrap();
    std::fs::write(h.join("tree/sub/leaf"), "leaf\n").unwrap();
    std::os::unix::fs::symlink("sub/leaf", h.join("tree/link")).unwrap();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "fixture",
        "sleep",
        "600",
    ]);
    let hs = |p: &str| h.join(p).display().to_string();

    // Into a running container: a file into a directory, a file to a new
    // name, a directory to a new name (symlinks kept as links).
    engine.ok(&["cp", &hs("note.txt"), "box:/tmp/"]);
    engine.ok(&["cp", &hs("note.txt"), "box:/tmp/renamed.txt"]);
    engine.ok(&["cp", &hs("tree"), "box:/copied"]);
    let seen = exec_out(
        &engine,
        "box",
        "cat /tmp/note.txt /tmp/renamed.txt /copied/sub/leaf; readlink /copied/link; stat -c %u:%g /tmp/note.txt",
    );
    assert_eq!(
        seen,
        "hello from the host\nhello from the host\nleaf\nsub/leaf\n0:0\n"
    );

    // Out of it: a file to a new name, a directory's contents into a new
    // directory, a tar on standard output.
    engine.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /data/in && echo made > /data/in/f && echo top > /data/g",
    ]);
    engine.ok(&["cp", "box:/data/g", &hs("g-copy")]);
    engine.ok(&["cp", "box:/data/.", &hs("data-contents")]);
    engine.ok(&["cp", "box:/data", &hs("tree")]);
    assert_eq!(std::fs::read_to_string(h.join("g-copy")).unwrap(), "top\n");
    assert_eq!(
        std::fs::read_to_string(h.join("data-contents/in/f")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(h.join("tree/data/g")).unwrap(),
        "top\n"
    );
    let tar = engine.cli(&["cp", "box:/data/in", "-"]).output().unwrap();
    let listing = chapter_03::diff::listing(&tar.stdout).unwrap();
    assert!(listing.contains("in/f"), "{listing}");

    // Errors as Docker words them.
    let missing = engine.run(&["cp", "box:/no/such", &hs("x")]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("Could not find the file /no/such in container box"),
        "{missing:?}"
    );
    let gone = engine.run(&["cp", &hs("note.txt"), "nosuch:/tmp/"]);
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("No such container"),
        "{gone:?}"
    );
    let (status, _, _) = request(&engine, "HEAD", "/containers/box/archive?path=/nope", b"");
    assert_eq!(status, 404);
    let (status, _, body) = request(
        &engine,
        "PUT",
        "/containers/box/archive?path=/tmp/note.txt",
        &hostile_tar(&[("x", None, b"x")]),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    // A stopped container: in and out, and what went in is there at start.
    engine.ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "fixture",
        "cat",
        "/etc/arrived",
    ]);
    engine.ok(&["cp", &hs("note.txt"), "idle:/etc/arrived"]);
    engine.ok(&["cp", "idle:/etc/arrived", &hs("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(h.join("back.txt")).unwrap(),
        "hello from the host\n"
    );
    assert_eq!(engine.ok(&["start", "-a", "idle"]), "hello from the host\n");
    engine.ok(&["cp", "idle:/etc/hostname", &hs("hostname")]);
    assert!(!std::fs::read_to_string(h.join("hostname"))
        .unwrap()
        .is_empty());
    let idle = engine.inspect("idle")["Id"].as_str().unwrap().to_string();
    let mounts: Vec<_> = engine
        .leftovers()
        .into_iter()
        .filter(|l| l.contains(&idle))
        .collect();
    assert!(
        mounts.is_empty(),
        "a stopped container's copy left {mounts:?}"
    );

    // Both docker CLIs, both ways.
    for (i, cli) in common::docker_clis().iter().enumerate() {
        let into = format!("box:/tmp/from-docker-{i}");
        engine.docker_ok(cli, &["cp", &hs("tree"), &into]);
        assert_eq!(
            exec_out(
                &engine,
                "box",
                &format!("cat /tmp/from-docker-{i}/sub/leaf")
            ),
            "leaf\n"
        );
        let out = hs(&format!("out-{i}"));
        engine.docker_ok(cli, &["cp", "box:/data", &out]);
        assert_eq!(
            std::fs::read_to_string(h.join(format!("out-{i}/in/f"))).unwrap(),
            "made\n"
        );
        engine.docker_ok(cli, &["cp", "idle:/etc/arrived", &hs(&format!("idle-{i}"))]);
        engine.docker_ok(cli, &["cp", &hs("note.txt"), "idle:/root/"]);
    }
    engine.ok(&["rm", "-f", "box", "idle"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn hostile_uploads_cannot_write_outside_the_container() {
    if !privileged("hostile_uploads_cannot_write_outside_the_container") {
        return;
    }
    let engine = Engine::start();
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().display().to_string();
    let rel_up = format!("../../../../../../../..{o}/dotdot");
    box_and_idle(&engine);
    for container in ["box", "idle"] {
        // `..` out of the extraction point: refused, nothing written at all.
        let (status, _, body) = request(
            &engine,
            "PUT",
            &format!("/containers/{container}/archive?path=/tmp"),
            &hostile_tar(&[("first", None, b"1"), (&rel_up, None, b"pwn")]),
        );
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        // An absolute name, and a symlink aimed at the host's directory
        // with a file written through it: both land inside the container.
        let abs = format!("{o}/absolute");
        let (status, _, body) = request(
            &engine,
            "PUT",
            &format!("/containers/{container}/archive?path=/tmp"),
            &hostile_tar(&[
                (&abs, None, b"pwn"),
                ("esc", Some("/etc"), b""),
                ("esc/planted-by-cp", None, b"pwn"),
            ]),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        // The extraction point itself a symlink to the host's directory.
        if container == "box" {
            engine.ok(&["exec", "box", "ln", "-s", &o, "/tmp/point"]);
        }
        let (status, _, _) = request(
            &engine,
            "PUT",
            &format!("/containers/{container}/archive?path=/tmp/point"),
            &hostile_tar(&[("via-point", None, b"pwn")]),
        );
        assert!(status == 200 || status == 404, "{status}");
        // A read through the symlink: the container's /etc.
        let (status, _, body) = request(
            &engine,
            "GET",
            &format!("/containers/{container}/archive?path=/tmp/esc/"),
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let listing = chapter_03::diff::listing(&body).unwrap();
        assert!(listing.contains("planted-by-cp"), "{listing}");
    }
    let left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "written outside the container: {left:?}");
    assert!(
        !Path::new("/etc/planted-by-cp").exists(),
        "written in the host's /etc"
    );
    // Inside, where the kernel put them.
    let inside = exec_out(
        &engine,
        "box",
        &format!("cat /tmp{o}/absolute /etc/planted-by-cp; ls /tmp/first 2>&1 || true"),
    );
    assert!(inside.starts_with("pwnpwn"), "{inside}");
    assert!(
        inside.contains("No such file"),
        "the refused archive wrote: {inside}"
    );
    engine.ok(&["rm", "-f", "box", "idle"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn cp_under_a_user_namespace_gives_files_to_the_container_s_root() {
    if !privileged("cp_under_a_user_namespace_gives_files_to_the_container_s_root") {
        return;
    }
    let engine = Engine::start_remapped(400_000, |_| {});
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("f");
    std::fs::write(&file, "x\n").unwrap();
    std::os::unix::fs::chown(&file, Some(1234), Some(1234)).unwrap();
    let f = file.display().to_string();
    box_and_idle(&engine);
    for c in ["box", "idle"] {
        engine.ok(&["cp", &f, &format!("{c}:/tmp/plain")]);
        engine.ok(&["cp", "-a", &f, &format!("{c}:/tmp/kept")]);
    }
    engine.ok(&["start", "idle"]);
    engine.ok(&["wait", "idle"]);
    assert_eq!(
        exec_out(&engine, "box", "stat -c %u:%g /tmp/plain /tmp/kept"),
        "0:0\n1234:1234\n"
    );
    // On the host, the container's IDs are the remapped ones.
    let upper = engine
        .root
        .join("containers")
        .join(engine.inspect("idle")["Id"].as_str().unwrap())
        .join("upper/tmp");
    use std::os::unix::fs::MetadataExt;
    let plain = std::fs::metadata(upper.join("plain")).unwrap();
    let kept = std::fs::metadata(upper.join("kept")).unwrap();
    assert_eq!((plain.uid(), kept.uid()), (400_000, 401_234));
    assert!(Path::new(&f).exists());
    engine.ok(&["rm", "-f", "box", "idle"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
