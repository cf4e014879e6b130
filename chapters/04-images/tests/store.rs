//! The store's promises under stress: an ingest killed at any point leaves
//! the store valid; `docker save` and OCI layouts round-trip; bad input is
//! named.

mod common;
use chapter_04::archive;
use chapter_04::manifest::ContainerConfig;
use chapter_04::store::Store;
use chapter_04::unpack::{host_platform, load_image, unpack, Limits};
use common::one_file_layer;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::privileged;

const BIN: &str = env!("CARGO_BIN_EXE_chapter-04");

#[test]
fn an_ingest_killed_at_any_moment_leaves_the_store_valid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Kill points spread over the whole write, from "barely started" to "nearly done".
    for (i, delay_ms) in [0u64, 3, 7, 15, 30, 60, 90, 140].into_iter().enumerate() {
        let mut child = Command::new(BIN)
            .args(["--store"])
            .arg(dir.path())
            .arg("ingest")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'a' + (i as u8); 64 << 10];
            for _ in 0..64 {
                if stdin.write_all(&chunk).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        writer.join().unwrap();
        let problems = store.fsck().unwrap();
        assert!(
            problems.is_empty(),
            "after a kill at {delay_ms} ms: {problems:?}"
        );
    }
    assert!(store.read_index().unwrap().manifests.is_empty());
    // Whatever was killed is not visible as a blob; a complete ingest still works.
    let (digest, _) = store
        .ingest(&b"complete"[..], &chapter_04::store::Expect::none())
        .unwrap();
    assert!(store.has_blob(&digest));
}

#[test]
fn docker_save_and_oci_layouts_round_trip() {
    if !privileged("docker_save_and_oci_layouts_round_trip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let cfg = ContainerConfig {
        cmd: Some(vec!["/bin/sh".into()]),
        ..Default::default()
    };
    archive::import_rootfs_tar(&a, one_file_layer("base", b"base").as_slice(), "app:1", cfg)
        .unwrap();
    archive::add_layer(
        &a,
        "app:1",
        one_file_layer("top", b"top").as_slice(),
        "app:2",
        "add top",
    )
    .unwrap();
    let original = load_image(&a, &a.resolve("app:2").unwrap(), &host_platform()).unwrap();

    let mut saved = Vec::new();
    archive::save_docker(&a, &["app:2"], &mut saved).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    assert_eq!(
        archive::load_docker(&b, saved.as_slice()).unwrap(),
        ["app:2"]
    );
    let loaded = load_image(&b, &b.resolve("app:2").unwrap(), &host_platform()).unwrap();
    assert_eq!(
        loaded.manifest.config.digest, original.manifest.config.digest,
        "the config is kept byte for byte"
    );
    assert_eq!(
        loaded.config.rootfs.diff_ids,
        original.config.rootfs.diff_ids
    );
    let (x, y) = (
        unpack(&a, &original, &Limits::default()).unwrap(),
        unpack(&b, &loaded, &Limits::default()).unwrap(),
    );
    for (l, r) in x.iter().zip(&y) {
        assert_eq!(testkit::tree::describe(l), testkit::tree::describe(r));
        assert_eq!(l.file_name(), r.file_name(), "same ChainIDs");
    }

    let layout = dir.path().join("layout");
    archive::export_oci(&a, "app:2", &layout, "app:2").unwrap();
    let c = Store::open(dir.path().join("c")).unwrap();
    let d = archive::import_oci(&c, &layout, None, "copied:1").unwrap();
    assert_eq!(
        d.digest, original.manifest_descriptor.digest,
        "an OCI layout copy keeps the manifest digest"
    );
}

#[test]
fn bad_archives_and_names_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let err = archive::load_docker(&store, one_file_layer("not-a-save", b"x").as_slice())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a docker save archive"), "{err}");
    let err = archive::import_oci(&store, dir.path(), None, "x:1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an OCI image layout"), "{err}");
    let err = store.resolve("nothing:here").unwrap_err().to_string();
    assert!(err.contains("no image \"nothing:here\""), "{err}");
    for bad in ["UPPER:case", "", ":tag", "spaces here"] {
        let d = store.put_bytes("application/json", b"{}").unwrap();
        assert!(store.tag(bad, &d).is_err(), "{bad:?} accepted as a name");
    }
}

#[test]
fn experiments_show_the_store() {
    if !privileged("experiments_show_the_store") {
        return;
    }
    testkit::fixture::rootfs();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let steps: [(&[&str], &str); 6] = [
        (&["import"], "imported"),
        (&["inspect", "fixture:latest"], "ChainID"),
        (&["unpack", "fixture:latest"], "snapshots/"),
        (&["share"], "the base is unpacked once"),
        (&["images"], "derived:latest"),
        (&["rmi", "derived:latest"], "removed 3 blobs"),
    ];
    let with_store: Vec<(Vec<&str>, &str)> = steps
        .iter()
        .map(|(args, shows)| ([&["--store", store][..], args].concat(), *shows))
        .collect();
    let cases: Vec<(&[&str], &str)> = with_store.iter().map(|(a, s)| (a.as_slice(), *s)).collect();
    testkit::assert_experiments_show(BIN, &cases);
}
