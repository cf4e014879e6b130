//! Round trips through the peers: skopeo and umoci read our store as the
//! OCI layout it is, umoci unpacks our image to the same tree as we do, and
//! an image umoci builds (several layers, deletions) unpacks with us to the
//! same tree as `umoci raw unpack`.

use chapter_04::archive;
use chapter_04::manifest::ContainerConfig;
use chapter_04::store::Store;
use chapter_04::unpack::{host_platform, load_image, unpack, Limits};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::privileged;
use testkit::tree::{describe_with, Ignore};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is it installed? cargo xtask install)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The merged view of `lower` (bottom first) via a real overlay mount,
/// copied out so it outlives the mount.
fn merged_copy(lower: &[PathBuf], scratch: &Path) -> PathBuf {
    let mounted = chapter_03::Driver::Overlay
        .mount(lower, &scratch.join("ctr"))
        .unwrap();
    let out = scratch.join("merged-copy");
    run(Command::new("cp").arg("-a").arg(mounted.merged()).arg(&out));
    out
}

#[test]
fn skopeo_reads_and_copies_our_store() {
    if !privileged("skopeo_reads_and_copies_our_store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let d = archive::import_rootfs_dir(
        &store,
        &testkit::fixture::rootfs(),
        "fixture:latest",
        ContainerConfig::default(),
    )
    .unwrap();
    let layout = format!("oci:{}:fixture:latest", store.root().display());
    let inspect: serde_json::Value =
        serde_json::from_str(&run(testkit::skopeo().args(["inspect", &layout]))).unwrap();
    assert_eq!(inspect["Digest"], d.digest.as_str());
    let copy = dir.path().join("copy");
    run(testkit::skopeo().args([
        "copy",
        "--quiet",
        &layout,
        &format!("oci:{}:again", copy.display()),
    ]));
    // skopeo copied the manifest byte for byte: the same digest in the copy.
    let back = chapter_04::store::Store::open(&copy).unwrap();
    assert_eq!(back.resolve("again").unwrap().digest, d.digest);
}

#[test]
fn umoci_unpacks_our_image_to_the_same_tree_as_we_do() {
    if !privileged("umoci_unpacks_our_image_to_the_same_tree_as_we_do") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    archive::import_rootfs_dir(
        &store,
        &testkit::fixture::rootfs(),
        "fixture:latest",
        ContainerConfig::default(),
    )
    .unwrap();
    let image = load_image(
        &store,
        &store.resolve("fixture:latest").unwrap(),
        &host_platform(),
    )
    .unwrap();
    let ours = unpack(&store, &image, &Limits::default()).unwrap();
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:fixture:latest", store.root().display()))
        .arg(&bundle));
    let ignore = Ignore::default();
    assert_eq!(
        describe_with(&ours[0], ignore),
        describe_with(&bundle.join("rootfs"), ignore)
    );
}

#[test]
fn an_image_umoci_builds_with_deletions_unpacks_like_umoci_raw_unpack() {
    if !privileged("an_image_umoci_builds_with_deletions_unpacks_like_umoci_raw_unpack") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("umoci-layout");
    let image = format!("{}:built", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = dir.path().join("b");
    // Three layers: a base, then changes with deletions and an opaque dir.
    let steps = [
        "mkdir -p etc/app usr/share/doc && echo 1 > etc/app/config && echo doc > usr/share/doc/README && echo old > etc/app/old && ln -s app/config etc/link",
        "rm etc/app/old && echo 2 > etc/app/config && rm -r usr/share/doc && mkdir -p var/log && echo hi > var/log/msg",
        "rm -r etc/app && mkdir etc/app && echo fresh > etc/app/new && ln etc/app/new etc/app/hard && chmod 600 var/log/msg",
    ];
    for script in steps {
        let _ = fs::remove_dir_all(&bundle);
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        run(Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(bundle.join("rootfs")));
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
    }
    let theirs = dir.path().join("raw");
    run(Command::new("umoci")
        .args(["raw", "unpack", "--image", &image])
        .arg(&theirs));

    let store = Store::open(dir.path().join("store")).unwrap();
    archive::import_oci(&store, &layout, Some("built"), "built:latest").unwrap();
    let img = load_image(
        &store,
        &store.resolve("built:latest").unwrap(),
        &host_platform(),
    )
    .unwrap();
    assert_eq!(img.manifest.layers.len(), 3);
    let lower = unpack(&store, &img, &Limits::default()).unwrap();
    let ours = merged_copy(&lower, dir.path());
    let ignore = Ignore { mtimes: false };
    assert_eq!(describe_with(&ours, ignore), describe_with(&theirs, ignore));
}
