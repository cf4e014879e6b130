//! Graded tests for chapter 03; each name starts with its exercise id.
//! Real overlayfs mounts in scratch directories, unmounted by guards.

mod common;
use chapter_03::apply::{apply_layer, apply_marker, Applied};
use chapter_03::diff::{first_name, listing, write_layer};
use chapter_03::overlay::{self, mount_options, Layers};
use chapter_03::whiteout::{classify, is_opaque, is_overlay_whiteout, OciName};
use common::stack;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use testkit::privileged;

#[test]
fn ex3_1_overlay_whiteouts_are_char_devices_numbered_0_0() {
    if !privileged("ex3_1_overlay_whiteouts_are_char_devices_numbered_0_0") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = stack(dir.path(), 1);
    fs::write(layers.lower[0].join("doomed"), "x").unwrap();
    let merged = dir.path().join("merged");
    let mount = overlay::mount(&layers, &merged).unwrap();
    fs::remove_file(merged.join("doomed")).unwrap();
    drop(mount);
    assert!(is_overlay_whiteout(
        &fs::symlink_metadata(layers.upper.join("doomed")).unwrap()
    ));
    // Controls: a regular file, and a char device with another number (1:3 is /dev/null's).
    fs::write(dir.path().join("plain"), "").unwrap();
    assert!(!is_overlay_whiteout(
        &fs::symlink_metadata(dir.path().join("plain")).unwrap()
    ));
    let null = dir.path().join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        libc::makedev(1, 3),
    )
    .unwrap();
    assert!(!is_overlay_whiteout(&fs::symlink_metadata(&null).unwrap()));
}

#[test]
fn ex3_2_oci_layer_names_are_classified() {
    assert_eq!(classify("hello"), OciName::Normal);
    assert_eq!(classify(".wh.hello"), OciName::Whiteout("hello"));
    assert_eq!(classify(".wh..hidden"), OciName::Whiteout(".hidden"));
    assert_eq!(classify(".wh..wh..opq"), OciName::Opaque);
    assert_eq!(classify(".wh."), OciName::Normal);
    assert_eq!(classify("x.wh.y"), OciName::Normal);
}

#[test]
fn ex3_3_options_list_the_top_layer_first() {
    let layers = Layers {
        lower: vec!["/base".into(), "/middle".into(), "/top".into()],
        upper: "/u".into(),
        work: "/w".into(),
    };
    assert_eq!(
        mount_options(&layers),
        "lowerdir=/top:/middle:/base,upperdir=/u,workdir=/w"
    );
}

#[test]
fn ex3_3_a_mount2_stack_shows_the_top_layer_over_the_base() {
    if !privileged("ex3_3_a_mount2_stack_shows_the_top_layer_over_the_base") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = stack(dir.path(), 2);
    fs::write(layers.lower[0].join("version"), "base").unwrap();
    fs::write(layers.lower[0].join("only-in-base"), "b").unwrap();
    fs::write(layers.lower[1].join("version"), "top").unwrap();
    let merged = dir.path().join("merged");
    let mount = overlay::mount_legacy(&layers, &merged).unwrap();
    assert_eq!(fs::read_to_string(merged.join("version")).unwrap(), "top");
    assert!(merged.join("only-in-base").exists());
    drop(mount);
}

#[test]
fn ex3_4_hard_links_are_stored_once_and_shared_whiteouts_are_not_links() {
    let mut seen = HashMap::new();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), "same inode").unwrap();
    fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
    fs::write(dir.path().join("single"), "x").unwrap();
    let meta = |n: &str| fs::metadata(dir.path().join(n)).unwrap();
    assert_eq!(first_name(&mut seen, Path::new("a"), &meta("a")), None);
    assert_eq!(
        first_name(&mut seen, Path::new("b"), &meta("b")),
        Some(PathBuf::from("a"))
    );
    assert_eq!(
        first_name(&mut seen, Path::new("single"), &meta("single")),
        None
    );
    let text = listing(&write_layer(dir.path(), Vec::new()).unwrap()).unwrap();
    assert!(
        text.contains("h 0644") && text.contains(" b -> a"),
        "{text}"
    );

    if !privileged("ex3_4 (whiteouts)") {
        return;
    }
    // Overlayfs makes the whiteouts of one mount links to one shared inode.
    let dir = tempfile::tempdir().unwrap();
    let layers = stack(dir.path(), 1);
    for f in ["x", "y", "z"] {
        fs::write(layers.lower[0].join(f), f).unwrap();
    }
    let merged = dir.path().join("merged");
    let mount = overlay::mount(&layers, &merged).unwrap();
    for f in ["x", "y", "z"] {
        fs::remove_file(merged.join(f)).unwrap();
    }
    drop(mount);
    let text = listing(&write_layer(&layers.upper, Vec::new()).unwrap()).unwrap();
    assert_eq!(text.matches(".wh.").count(), 3, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('h')),
        "a whiteout became a hard link: {text}"
    );
}

#[test]
fn ex3_5_oci_markers_become_overlay_whiteouts_and_hide_the_base() {
    if !privileged("ex3_5_oci_markers_become_overlay_whiteouts_and_hide_the_base") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut applied = Applied::default();
    fs::create_dir(dir.path().join("d")).unwrap();
    assert!(!apply_marker("plain", dir.path(), &mut applied).unwrap());
    assert!(apply_marker(".wh.gone", dir.path(), &mut applied).unwrap());
    assert!(apply_marker(".wh..wh..opq", &dir.path().join("d"), &mut applied).unwrap());
    assert!(is_overlay_whiteout(
        &fs::symlink_metadata(dir.path().join("gone")).unwrap()
    ));
    assert!(is_opaque(&dir.path().join("d")));
    assert_eq!((applied.whiteouts, applied.opaque_dirs), (1, 1));

    // End to end: a layer tar with the markers, applied, stacked on a base.
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, path, std::io::empty()).unwrap();
    };
    add("d", tar::EntryType::Directory);
    add("d/.wh..wh..opq", tar::EntryType::Regular);
    add("d/new", tar::EntryType::Regular);
    add(".wh.gone", tar::EntryType::Regular);
    let tar = tar.into_inner().unwrap();
    let root = tempfile::tempdir().unwrap();
    let layers = stack(root.path(), 2);
    fs::write(layers.lower[0].join("gone"), "base file").unwrap();
    fs::create_dir(layers.lower[0].join("d")).unwrap();
    fs::write(layers.lower[0].join("d/old"), "base file").unwrap();
    apply_layer(tar.as_slice(), &layers.lower[1]).unwrap();
    let merged = root.path().join("merged");
    let mount = overlay::mount(&layers, &merged).unwrap();
    assert!(
        !merged.join("gone").exists(),
        "the whiteout did not hide the base's file"
    );
    let listed: Vec<String> = fs::read_dir(merged.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed,
        ["new"],
        "the opaque directory still shows the base's entries"
    );
    drop(mount);
}
