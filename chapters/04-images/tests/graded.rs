//! Graded tests for chapter 04; each name starts with its exercise id.

mod common;
use chapter_04::archive;
use chapter_04::digest::{chain_ids, Digest};
use chapter_04::gc;
use chapter_04::manifest::ContainerConfig;
use chapter_04::runconfig::{command_line, resolve_user, Overrides};
use chapter_04::store::{Expect, Store};
use chapter_04::unpack::{host_platform, load_image, unpack, Limits};
use common::one_file_layer;
use std::fs;
use std::path::Path;
use testkit::privileged;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ex4_1_digests_are_validated() {
    let good = format!("sha256:{}", "0123456789abcdef".repeat(4));
    assert_eq!(
        Digest::parse(&good).unwrap().hex(),
        "0123456789abcdef".repeat(4)
    );
    for bad in [
        format!("sha256:{}", "0123456789ABCDEF".repeat(4)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}", "a".repeat(65)),
        format!("sha512:{}", "a".repeat(64)),
        format!("sha256:{}g", "a".repeat(63)),
        "a".repeat(64),
        String::new(),
    ] {
        let err = Digest::parse(&bad).expect_err(&bad);
        assert!(
            err.contains(&format!("{bad:?}")),
            "the error quotes the input: {err}"
        );
    }
    // Documents carrying a malformed digest are refused when parsed.
    let json = r#"{"mediaType":"x","digest":"sha256:XYZ","size":1}"#;
    assert!(serde_json::from_str::<chapter_04::manifest::Descriptor>(json).is_err());
}

#[test]
fn ex4_2_chain_ids_name_the_stack_below() {
    let a = Digest::of(b"layer a");
    let b = Digest::of(b"layer b");
    let c = Digest::of(b"layer c");
    let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(chain[0], a, "the bottom layer's ChainID is its DiffID");
    let ab = Digest::of(format!("{a} {b}").as_bytes());
    assert_eq!(chain[1], ab);
    assert_eq!(chain[2], Digest::of(format!("{ab} {c}").as_bytes()));
    assert_ne!(
        chain_ids(&[b.clone(), a.clone()])[1],
        chain[1],
        "order matters"
    );
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn ex4_3_entrypoint_and_cmd_merge_like_docker() {
    let image = ContainerConfig {
        entrypoint: Some(strings(&["/entry", "--flag"])),
        cmd: Some(strings(&["default-arg"])),
        ..Default::default()
    };
    let run = |o: Overrides| command_line(&image, &o);
    assert_eq!(
        run(Overrides::default()).unwrap(),
        ["/entry", "--flag", "default-arg"]
    );
    let args = Overrides {
        cmd: Some(strings(&["mine"])),
        ..Default::default()
    };
    assert_eq!(
        run(args).unwrap(),
        ["/entry", "--flag", "mine"],
        "args replace Cmd, keep Entrypoint"
    );
    let ep = Overrides {
        entrypoint: Some(strings(&["/other"])),
        ..Default::default()
    };
    assert_eq!(
        run(ep).unwrap(),
        ["/other"],
        "--entrypoint drops the image's Cmd"
    );
    let both = Overrides {
        entrypoint: Some(strings(&["/other"])),
        cmd: Some(strings(&["x"])),
        ..Default::default()
    };
    assert_eq!(run(both).unwrap(), ["/other", "x"]);
    let reset = Overrides {
        entrypoint: Some(vec![]),
        cmd: Some(strings(&["sh"])),
        ..Default::default()
    };
    assert_eq!(
        run(reset).unwrap(),
        ["sh"],
        "--entrypoint \"\" removes the entrypoint"
    );
    let cmd_only = ContainerConfig {
        cmd: Some(strings(&["/bin/sh"])),
        ..Default::default()
    };
    assert_eq!(
        command_line(&cmd_only, &Overrides::default()).unwrap(),
        ["/bin/sh"]
    );
    let err = command_line(&ContainerConfig::default(), &Overrides::default()).unwrap_err();
    assert!(err.contains("no command"), "{err}");
}

#[test]
fn ex4_4_users_resolve_through_the_images_own_passwd_and_group() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.path().join("etc/group"),
        "root:x:0:\napp:x:1001:\nstaff:x:50:app\n",
    )
    .unwrap();
    let r = |u: &str| resolve_user(u, root.path());
    assert_eq!(r(""), Ok((0, 0)));
    assert_eq!(r("app"), Ok((1000, 1001)), "a name takes its primary group");
    assert_eq!(r("app:staff"), Ok((1000, 50)));
    assert_eq!(
        r("1000"),
        Ok((1000, 1001)),
        "a known uid takes its primary group"
    );
    assert_eq!(
        r("4242"),
        Ok((4242, 0)),
        "an unknown uid is fine, with group 0"
    );
    assert_eq!(r("4242:7"), Ok((4242, 7)));
    assert_eq!(r("root:app"), Ok((0, 1001)));
    assert!(r("nobody-here").unwrap_err().contains("nobody-here"));
    assert!(r("app:nogroup").unwrap_err().contains("nogroup"));

    // A passwd that is a symlink out of the image is not followed.
    let evil = tempfile::tempdir().unwrap();
    fs::create_dir(evil.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", evil.path().join("etc/passwd")).unwrap();
    assert!(
        resolve_user("root", evil.path()).is_err(),
        "read the host's /etc/passwd through a link"
    );
}

#[test]
fn ex4_5_ingest_is_checked_atomic_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = b"some blob content".repeat(1000);
    let digest = Digest::of(&data);
    let (d, size) = store
        .ingest(
            data.as_slice(),
            &Expect {
                digest: Some(digest.clone()),
                size: Some(data.len() as u64),
            },
        )
        .unwrap();
    assert_eq!((d.clone(), size), (digest.clone(), data.len() as u64));
    assert_eq!(fs::read(store.blob_path(&digest)).unwrap(), data);

    // Wrong digest, truncated, padded: refused, nothing visible, nothing left in ingest/.
    let other = b"other content".to_vec();
    let cases = [
        (
            other.clone(),
            Expect {
                digest: Some(digest.clone()),
                size: None,
            },
            "does not match",
        ),
        (
            data[..10].to_vec(),
            Expect {
                digest: Some(digest.clone()),
                size: Some(data.len() as u64),
            },
            "truncated",
        ),
        (
            [data.clone(), b"x".to_vec()].concat(),
            Expect {
                digest: None,
                size: Some(data.len() as u64),
            },
            "expected",
        ),
    ];
    for (bytes, expect, says) in cases {
        let err = store
            .ingest(bytes.as_slice(), &expect)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{says}: {err}");
    }
    assert!(!store.has_blob(&Digest::of(&other)));
    assert_eq!(
        fs::read_dir(dir.path().join("ingest")).unwrap().count(),
        0,
        "partial blobs left in ingest/"
    );

    // The same blob from many writers at once: one blob, intact.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| store.ingest(data.as_slice(), &Expect::none()).unwrap());
        }
    });
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
    assert!(store.fsck().unwrap().is_empty());
}

#[test]
fn ex4_6_gc_removes_exactly_what_no_tag_reaches() {
    if !privileged("ex4_6_gc_removes_exactly_what_no_tag_reaches") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cfg = ContainerConfig {
        cmd: Some(strings(&["/bin/sh"])),
        ..Default::default()
    };
    archive::import_rootfs_tar(
        &store,
        one_file_layer("base-file", b"base").as_slice(),
        "base:1",
        cfg,
    )
    .unwrap();
    archive::add_layer(
        &store,
        "base:1",
        one_file_layer("top-file", b"top").as_slice(),
        "derived:1",
        "add",
    )
    .unwrap();
    for name in ["base:1", "derived:1"] {
        let image = load_image(&store, &store.resolve(name).unwrap(), &host_platform()).unwrap();
        unpack(&store, &image, &Limits::default()).unwrap();
    }
    let count = |sub: &str| fs::read_dir(dir.path().join(sub)).unwrap().count();
    let (blobs, snapshots) = (count("blobs/sha256"), count("snapshots"));
    assert_eq!(snapshots, 2);
    // Nothing unreferenced yet.
    assert_eq!(gc::collect(&store).unwrap(), gc::Report::default());
    store.untag("derived:1").unwrap();
    let report = gc::collect(&store).unwrap();
    assert_eq!(
        (report.blobs_removed, report.snapshots_removed),
        (3, 1),
        "derived's manifest, config, top layer"
    );
    assert_eq!(count("blobs/sha256"), blobs - 3);
    let base = load_image(&store, &store.resolve("base:1").unwrap(), &host_platform()).unwrap();
    assert_eq!(
        unpack(&store, &base, &Limits::default()).unwrap().len(),
        1,
        "base still unpacks from what is left"
    );
    store.untag("base:1").unwrap();
    gc::collect(&store).unwrap();
    assert_eq!((count("blobs/sha256"), count("snapshots")), (0, 0));
    assert!(Path::new(&dir.path().join("index.json")).exists());
}
