//! Graded tests for chapter 03; each name starts with its exercise id.
//! Real overlayfs mounts in scratch directories, unmounted by guards.
//!
//! As an ordinary user, tests that mount or make whiteouts run again as root
//! of a user namespace (`root_or_userns`): overlayfs, whiteouts and chown to
//! the namespace's root all work there. Opaque directories are marked with a
//! `trusted.*` xattr, which only the host's root may set: those checks say so
//! and skip without root.

mod common;
use chapter_03::apply::{apply_layer, apply_marker, create_entry, resolve_entry, Applied, Created};
use chapter_03::diff::{first_name, listing, write_layer};
use chapter_03::overlay::{self, mount_options, Layers};
use chapter_03::whiteout::{
    classify, is_opaque, is_overlay_whiteout, make_overlay_whiteout, set_opaque, OciName,
};
use chapter_03::Driver;
use common::stack;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use testkit::{privileged, root_or_userns};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A one-layer tar from (path, kind, link target or content) entries, with
/// the raw names written as given (no checks by the tar builder).
fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, extra) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        // Owned by whoever applies it: an ordinary user cannot chown.
        h.set_uid(nix::unistd::getuid().as_raw() as u64);
        h.set_gid(nix::unistd::getgid().as_raw() as u64);
        h.set_mtime(1_700_000_000);
        let content = if *kind == tar::EntryType::Regular {
            extra.as_bytes()
        } else {
            b""
        };
        h.set_size(content.len() as u64);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            b.append_link(&mut h, path, extra).unwrap();
        } else {
            let name = path.as_bytes();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, content).unwrap();
        }
    }
    b.into_inner().unwrap()
}

// ---- 3.1 options -------------------------------------------------------------

#[test]
fn ex3_1_options_list_the_top_layer_first() {
    let layers = Layers {
        lower: vec!["/base".into(), "/middle".into(), "/top".into()],
        upper: "/u".into(),
        work: "/w".into(),
        userxattr: false,
    };
    assert_eq!(
        mount_options(&layers),
        "lowerdir=/top:/middle:/base,upperdir=/u,workdir=/w"
    );
    let one = Layers {
        lower: vec!["/only".into()],
        ..layers.clone()
    };
    assert_eq!(mount_options(&one), "lowerdir=/only,upperdir=/u,workdir=/w");
}

#[test]
fn ex3_1_in_a_user_namespace_overlay_keeps_its_xattrs_in_user() {
    let layers = Layers {
        lower: vec!["/base".into()],
        upper: "/u".into(),
        work: "/w".into(),
        userxattr: true,
    };
    assert_eq!(
        mount_options(&layers),
        "lowerdir=/base,upperdir=/u,workdir=/w,userxattr"
    );
}

// ---- 3.2 mount(2) --------------------------------------------------------------

fn long_stack(dir: &Path, n: usize) -> Layers {
    let long = dir.join("layers-with-a-rather-long-directory-name-to-make-the-point");
    let lower: Vec<PathBuf> = (0..n)
        .map(|i| long.join(format!("layer-{i:03}-of-the-image-stack")))
        .collect();
    for (i, l) in lower.iter().enumerate() {
        fs::create_dir_all(l).unwrap();
        fs::write(l.join(format!("from-{i}")), "").unwrap();
        fs::write(l.join("winner"), i.to_string()).unwrap();
    }
    let layers = Layers::new(lower, dir.join("upper"), dir.join("work"));
    for d in [&layers.upper, &layers.work, &dir.join("merged")] {
        fs::create_dir_all(d).unwrap();
    }
    layers
}

#[test]
fn ex3_2_options_over_a_page_are_refused_before_mounting() {
    let dir = tempfile::tempdir().unwrap();
    let layers = long_stack(dir.path(), 40);
    assert!(
        mount_options(&layers).len() > 4096,
        "the test must exceed a page"
    );
    let err = overlay::mount_legacy(&layers, &dir.path().join("merged")).unwrap_err();
    assert!(err.contains("one-page limit"), "{err}");
    assert!(
        !testkit::mount_points()
            .iter()
            .any(|m| m.starts_with(&dir.path().display().to_string())),
        "nothing may be mounted"
    );
}

#[test]
fn ex3_2_a_mount2_stack_shows_the_top_layer_and_copies_up_on_write() {
    if !root_or_userns("ex3_2_a_mount2_stack_shows_the_top_layer_and_copies_up_on_write") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = stack(dir.path(), 2);
    fs::write(layers.lower[0].join("version"), "base").unwrap();
    fs::write(layers.lower[0].join("only-in-base"), "b").unwrap();
    fs::write(layers.lower[1].join("version"), "top").unwrap();
    let merged = dir.path().join("merged");
    let mount = overlay::mount_legacy(&layers, &merged).unwrap();
    assert_eq!(mount.method, "mount(2) lowerdir=");
    assert_eq!(fs::read_to_string(merged.join("version")).unwrap(), "top");
    assert!(merged.join("only-in-base").exists());
    fs::write(merged.join("only-in-base"), "changed").unwrap();
    drop(mount);
    assert_eq!(
        fs::read_to_string(layers.lower[0].join("only-in-base")).unwrap(),
        "b",
        "the lower layer changed"
    );
    assert_eq!(
        fs::read_to_string(layers.upper.join("only-in-base")).unwrap(),
        "changed",
        "the write was not copied up"
    );
    // Errors name the target and the reason.
    let missing = dir.path().join("no-such-mountpoint");
    let err = overlay::mount_legacy(&layers, &missing).unwrap_err();
    assert!(err.contains("no-such-mountpoint"), "{err}");
}

// ---- 3.3 the new mount API ---------------------------------------------------------

#[test]
fn ex3_3_a_128_layer_stack_over_a_page_mounts_with_lowerdir_plus() {
    if !root_or_userns("ex3_3_a_128_layer_stack_over_a_page_mounts_with_lowerdir_plus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = long_stack(dir.path(), 128);
    let merged = dir.path().join("merged");
    let mount = overlay::mount(&layers, &merged).unwrap();
    assert_eq!(mount.method, "fsconfig lowerdir+");
    assert_eq!(
        fs::read_to_string(merged.join("winner")).unwrap(),
        "127",
        "the top layer must win"
    );
    assert!(merged.join("from-0").exists() && merged.join("from-127").exists());
    fs::write(merged.join("new"), "x").unwrap();
    drop(mount);
    assert!(layers.upper.join("new").exists(), "writes go to upperdir");
}

// ---- 3.4 OCI names -----------------------------------------------------------------

#[test]
fn ex3_4_oci_layer_names_are_classified() {
    assert_eq!(classify("hello"), OciName::Normal);
    assert_eq!(classify(".wh.hello"), OciName::Whiteout("hello"));
    assert_eq!(classify(".wh..hidden"), OciName::Whiteout(".hidden"));
    assert_eq!(classify(".wh..wh..opq"), OciName::Opaque);
    assert_eq!(classify(".wh."), OciName::Normal);
    assert_eq!(classify("x.wh.y"), OciName::Normal);
}

// ---- 3.5 hard links ------------------------------------------------------------------

#[test]
fn ex3_5_a_file_with_several_names_is_stored_once() {
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
    assert_eq!(seen.len(), 1, "a single-named file is not remembered");
}

// ---- 3.6 the diff walk ------------------------------------------------------------------

#[test]
fn ex3_6_the_upper_dir_becomes_a_layer_with_each_kind_in_its_form() {
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path();
    fs::create_dir_all(upper.join("etc/app")).unwrap();
    fs::write(upper.join("etc/app/conf"), "k=v\n").unwrap();
    fs::hard_link(upper.join("etc/app/conf"), upper.join("etc/conf-link")).unwrap();
    std::os::unix::fs::symlink("app/conf", upper.join("etc/short")).unwrap();
    nix::unistd::mkfifo(
        &upper.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(upper.join("sock")).unwrap();
    let text = listing(&write_layer(upper, Vec::new()).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = |path: &str| {
        lines
            .iter()
            .position(|l| l.split_whitespace().nth(4) == Some(path))
            .unwrap_or_else(|| panic!("{path} missing from the layer:\n{text}"))
    };
    assert!(lines[at("etc")].starts_with('d') && at("etc") < at("etc/app"));
    assert!(
        at("etc/app") < at("etc/app/conf"),
        "a directory before its contents"
    );
    assert!(
        lines[at("etc/app/conf")].contains("     4 etc/app/conf"),
        "{text}"
    );
    assert!(lines[at("etc/conf-link")].starts_with('h'), "{text}");
    assert!(
        lines[at("etc/short")].ends_with("etc/short -> app/conf"),
        "{text}"
    );
    assert!(lines[at("pipe")].starts_with('p'), "{text}");
    assert!(
        !text.contains("sock"),
        "a socket cannot be in a layer: {text}"
    );
}

#[test]
fn ex3_6_overlay_whiteouts_become_wh_files_and_shared_whiteouts_are_not_links() {
    if !root_or_userns("ex3_6_overlay_whiteouts_become_wh_files_and_shared_whiteouts_are_not_links")
    {
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
    assert!(is_overlay_whiteout(
        &fs::symlink_metadata(layers.upper.join("x")).unwrap()
    ));
    let text = listing(&write_layer(&layers.upper, Vec::new()).unwrap()).unwrap();
    for f in ["x", "y", "z"] {
        assert!(
            text.lines()
                .any(|l| l.ends_with(&format!(" .wh.{f}")) && l.contains("- 0000 0:0")),
            "no empty mode-0 .wh.{f}:\n{text}"
        );
    }
    assert!(
        !text.lines().any(|l| l.starts_with('h')),
        "a whiteout became a hard link: {text}"
    );
}

#[test]
fn ex3_6_an_opaque_directory_gets_its_marker_after_it() {
    if !root_or_userns("ex3_6_an_opaque_directory_gets_its_marker_after_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/kept"), "k").unwrap();
    set_opaque(&dir.path().join("d")).unwrap();
    let text = listing(&write_layer(dir.path(), Vec::new()).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with(" d") && lines[1].ends_with(" d/.wh..wh..opq"),
        "{text}"
    );
    assert!(
        !text.contains("trusted.overlay") && !text.contains("user.overlay"),
        "overlay's own xattr leaked: {text}"
    );
}

// ---- 3.7 markers to overlay's form ------------------------------------------------------

#[test]
fn ex3_7_whiteout_markers_become_overlay_whiteouts_replacing_what_was_there() {
    if !root_or_userns("ex3_7_whiteout_markers_become_overlay_whiteouts_replacing_what_was_there") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut applied = Applied::default();
    fs::create_dir_all(dir.path().join("gone-dir/deep")).unwrap();
    fs::write(dir.path().join("gone-dir/deep/f"), "x").unwrap();
    assert!(!apply_marker("plain", dir.path(), &mut applied).unwrap());
    assert!(
        !dir.path().join("plain").exists(),
        "a normal name is the caller's"
    );
    assert!(apply_marker(".wh.gone", dir.path(), &mut applied).unwrap());
    assert!(apply_marker(".wh.gone-dir", dir.path(), &mut applied).unwrap());
    for name in ["gone", "gone-dir"] {
        assert!(
            is_overlay_whiteout(&fs::symlink_metadata(dir.path().join(name)).unwrap()),
            "{name} is not a whiteout"
        );
    }
    assert_eq!((applied.whiteouts, applied.opaque_dirs), (2, 0));
}

#[test]
fn ex3_10_an_applied_layer_hides_the_base_when_stacked() {
    if !root_or_userns("ex3_10_an_applied_layer_hides_the_base_when_stacked") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut applied = Applied::default();
    fs::create_dir(dir.path().join("d")).unwrap();
    assert!(apply_marker(".wh..wh..opq", &dir.path().join("d"), &mut applied).unwrap());
    assert!(is_opaque(&dir.path().join("d")));
    assert_eq!(applied.opaque_dirs, 1);

    use tar::EntryType::*;
    let tar = tar_of(&[
        ("d", Directory, ""),
        ("d/.wh..wh..opq", Regular, ""),
        ("d/new", Regular, ""),
        (".wh.gone", Regular, ""),
    ]);
    let root = tempfile::tempdir().unwrap();
    let layers = stack(root.path(), 2);
    fs::write(layers.lower[0].join("gone"), "base file").unwrap();
    fs::create_dir(layers.lower[0].join("d")).unwrap();
    fs::write(layers.lower[0].join("d/old"), "base file").unwrap();
    apply_layer(tar.as_slice(), &layers.lower[1]).unwrap();
    let merged = root.path().join("merged");
    let mount = overlay::mount(&layers, &merged).unwrap();
    let gone = merged.join("gone").exists();
    let listed = names(&merged.join("d"));
    drop(mount);
    assert!(!gone, "the whiteout did not hide the base's file");
    assert_eq!(
        listed,
        ["new"],
        "the opaque directory still shows the base's entries"
    );
}

// ---- 3.8 entry paths --------------------------------------------------------------------

#[test]
fn ex3_8_entry_paths_stay_inside_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    fs::create_dir(&dest).unwrap();
    assert_eq!(
        resolve_entry(&dest, Path::new("./a/b/c")).unwrap(),
        PathBuf::from("a/b/c")
    );
    assert!(dest.join("a/b").is_dir(), "missing parents are made");
    assert!(
        !dest.join("a/b/c").exists(),
        "the entry itself is the caller's"
    );
    assert_eq!(
        resolve_entry(&dest, Path::new("./")).unwrap(),
        PathBuf::new()
    );
    for (bad, rule) in [
        ("../escape", "`..`"),
        ("a/../../x", "`..`"),
        ("/etc/evil", "absolute"),
    ] {
        let err = resolve_entry(&dest, Path::new(bad)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{bad}");
        assert!(err.to_string().contains(rule), "{bad}: {err}");
    }
    // A planted symlink (or a file) as a parent is refused, never followed.
    std::os::unix::fs::symlink(dir.path(), dest.join("up")).unwrap();
    fs::write(dest.join("file"), "").unwrap();
    for bad in ["up/evil", "file/evil"] {
        let err = resolve_entry(&dest, Path::new(bad)).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{bad}: {err}");
    }
    assert!(!dir.path().join("evil").exists());
}

#[test]
fn ex3_10_a_hostile_layer_cannot_write_outside() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    fs::create_dir(&dest).unwrap();
    use tar::EntryType::*;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (tar_of(&[("../escape", Regular, "")]), "`..`"),
        (tar_of(&[("/etc/evil", Regular, "")]), "absolute"),
        (
            tar_of(&[("up", Symlink, ".."), ("up/evil", Regular, "")]),
            "not a directory",
        ),
        (tar_of(&[("h", Link, "../../etc/passwd")]), "`..`"),
    ];
    for (tar, rule) in cases {
        let err = apply_layer(tar.as_slice(), &dest).unwrap_err().to_string();
        assert!(err.contains(rule), "expected {rule:?}: {err}");
    }
    assert!(!dir.path().join("escape").exists());
    assert!(!dir.path().join("evil").exists());
}

// ---- 3.9 and 3.10 creating entries ------------------------------------------------------------------

/// Applies `tar` entry by entry with `create_entry` (and, when asked,
/// `apply_metadata`), no markers.
fn create_all(tar: &[u8], dest: &Path, metadata: bool) -> Vec<Created> {
    let mut archive = tar::Archive::new(tar);
    let policy = chapter_03::apply::Policy::default();
    let mut made = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let rel = resolve_entry(dest, &entry.path().unwrap()).unwrap();
        let path = dest.join(&rel);
        let created = create_entry(&mut entry, dest, &rel, &path, &policy).unwrap();
        if metadata && matches!(created, Created::Entry(_)) {
            let header = entry.header().clone();
            chapter_03::apply::apply_metadata(&mut entry, &header, &rel, &path).unwrap();
        }
        made.push(created);
    }
    made
}

/// A tar of every kind, modes and times set, owned by whoever runs the test.
fn every_kind() -> Vec<u8> {
    use tar::EntryType::*;
    let mut tar = tar::Builder::new(Vec::new());
    let (uid, gid) = (
        nix::unistd::getuid().as_raw() as u64,
        nix::unistd::getgid().as_raw() as u64,
    );
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, body: &[u8], link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_600_000_000);
        h.set_size(body.len() as u64);
        if link.is_empty() {
            tar.append_data(&mut h, path, body).unwrap();
        } else {
            tar.append_link(&mut h, path, link).unwrap();
        }
    };
    add("bin", Directory, 0o750, b"", "");
    add("bin/tool", Regular, 0o755, b"#!/bin/sh\n", "");
    add("bin/alias", Symlink, 0o777, b"", "tool");
    add("bin/again", Link, 0o755, b"", "bin/tool");
    add("fifo", Fifo, 0o600, b"", "");
    tar.into_inner().unwrap()
}

#[test]
fn ex3_9_each_kind_is_created_as_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path();
    let made = create_all(&every_kind(), dest, false);
    assert!(
        matches!(made[1], Created::Entry(10)),
        "content bytes are counted"
    );
    assert!(
        matches!(made[3], Created::Link),
        "a hard link is told apart"
    );
    let meta = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap();
    assert!(meta("bin").is_dir());
    assert_eq!(fs::read(dest.join("bin/tool")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(
        fs::read_link(dest.join("bin/alias")).unwrap(),
        PathBuf::from("tool")
    );
    assert_eq!(
        meta("bin/again").ino(),
        meta("bin/tool").ino(),
        "a hard link"
    );
    assert!(meta("fifo").file_type().is_fifo());
    // A second listing of a directory keeps it (and what is in it).
    let again = create_all(&every_kind(), dest, false);
    assert_eq!(again.len(), 5);
    assert!(dest.join("bin/tool").exists());
    // A hard link to something this layer has not made is refused.
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[("h", tar::EntryType::Link, "not-yet")]);
    let err = apply_layer(tar.as_slice(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("has not created"), "{err}");
}

#[test]
fn ex3_10_modes_and_times_are_applied_to_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path();
    create_all(&every_kind(), dest, true);
    let meta = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap();
    assert_eq!(meta("bin").mode() & 0o7777, 0o750);
    assert_eq!(meta("bin/tool").mode() & 0o7777, 0o755);
    assert_eq!(meta("bin/tool").mtime(), 1_600_000_000);
    assert_eq!(meta("fifo").mode() & 0o7777, 0o600);
    assert_eq!(
        meta("bin/alias").mtime(),
        1_600_000_000,
        "a symlink's own time"
    );
    // Through the whole applier, a directory's time survives its contents.
    let whole = tempfile::tempdir().unwrap();
    apply_layer(every_kind().as_slice(), whole.path()).unwrap();
    assert_eq!(
        fs::metadata(whole.path().join("bin")).unwrap().mtime(),
        1_600_000_000
    );
}

#[test]
fn ex3_10_a_directory_entry_replaces_a_planted_symlink_instead_of_following_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
    let dest = dir.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let target = outside.to_str().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_uid(nix::unistd::getuid().as_raw() as u64);
    h.set_gid(nix::unistd::getgid().as_raw() as u64);
    h.set_mtime(0);
    h.set_size(0);
    b.append_link(&mut h, "d", target).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o777);
    h.set_uid(nix::unistd::getuid().as_raw() as u64);
    h.set_gid(nix::unistd::getgid().as_raw() as u64);
    h.set_mtime(0);
    h.set_size(0);
    b.append_data(&mut h, "d", std::io::empty()).unwrap();
    apply_layer(b.into_inner().unwrap().as_slice(), &dest).unwrap();
    assert!(
        fs::symlink_metadata(dest.join("d")).unwrap().is_dir(),
        "d is now a real directory"
    );
    assert_eq!(
        fs::metadata(&outside).unwrap().mode() & 0o7777,
        0o700,
        "chmod went through the symlink"
    );
}

#[test]
fn ex3_10_owners_and_xattrs_are_applied_and_trusted_xattrs_refused() {
    if !root_or_userns("ex3_10_owners_and_xattrs_are_applied_and_trusted_xattrs_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.note", b"hello".as_slice())])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o640);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(5);
    h.set_size(0);
    b.append_data(&mut h, "owned", std::io::empty()).unwrap();
    create_all(&b.into_inner().unwrap(), dir.path(), true);
    let meta = fs::symlink_metadata(dir.path().join("owned")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(
        xattr::get(dir.path().join("owned"), "user.note").unwrap(),
        Some(b"hello".to_vec())
    );
    // Overlay's own xattrs, as the host's root mounts read them and as a
    // mount in a user namespace (userxattr) does.
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([(format!("SCHILY.xattr.{name}").as_str(), b"y".as_slice())])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "sneaky", std::io::empty()).unwrap();
        let err = apply_layer(b.into_inner().unwrap().as_slice(), dir.path()).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

// ---- 3.11 the copy fallback: merging ----------------------------------------------------------

#[test]
fn ex3_11_copied_layers_show_what_overlay_would() {
    if !root_or_userns("ex3_11_copied_layers_show_what_overlay_would") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (base, top) = (dir.path().join("base"), dir.path().join("top"));
    fs::create_dir_all(base.join("etc")).unwrap();
    fs::write(base.join("etc/version"), "1").unwrap();
    fs::write(base.join("doomed"), "x").unwrap();
    fs::create_dir_all(base.join("dir/sub")).unwrap();
    fs::write(base.join("dir/sub/f"), "f").unwrap();
    fs::create_dir_all(top.join("etc")).unwrap();
    fs::write(top.join("etc/version"), "2").unwrap();
    fs::write(top.join("etc/added"), "a").unwrap();
    make_overlay_whiteout(&top.join("doomed")).unwrap();
    make_overlay_whiteout(&top.join("dir")).unwrap();
    let target = dir.path().join("merged");
    fs::create_dir(&target).unwrap();
    chapter_03::copy::materialize(&[base.clone(), top], &target).unwrap();
    assert_eq!(names(&target), ["etc"]);
    assert_eq!(names(&target.join("etc")), ["added", "version"]);
    assert_eq!(fs::read_to_string(target.join("etc/version")).unwrap(), "2");
    assert_eq!(
        fs::read_to_string(base.join("etc/version")).unwrap(),
        "1",
        "a layer changed"
    );
}

/// A base layer: a nested file, a tree and a file to delete, one to keep.
fn base_tree(dir: &Path) -> PathBuf {
    let base = dir.join("base");
    fs::create_dir_all(base.join("keep/inner")).unwrap();
    fs::create_dir_all(base.join("gone-dir/x")).unwrap();
    fs::write(base.join("keep/inner/file"), "v1").unwrap();
    fs::write(base.join("gone-file"), "x").unwrap();
    fs::write(base.join("same"), "same").unwrap();
    base
}

/// What a container does to [`base_tree`]: change, delete, add.
fn change_base(merged: &Path, new_content: &str) {
    fs::write(merged.join("keep/inner/file"), new_content).unwrap();
    fs::remove_file(merged.join("gone-file")).unwrap();
    fs::remove_dir_all(merged.join("gone-dir")).unwrap();
    fs::create_dir_all(merged.join("new/dir")).unwrap();
    fs::write(merged.join("new/dir/f"), "n").unwrap();
}

// ---- 3.12 the copy fallback: the diff ------------------------------------------------------------

#[test]
fn ex3_12_changes_to_a_copy_come_out_as_an_upper_dir() {
    if !root_or_userns("ex3_12_changes_to_a_copy_come_out_as_an_upper_dir") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = base_tree(dir.path());
    let merged = dir.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let before = chapter_03::copy::materialize(std::slice::from_ref(&base), &merged).unwrap();
    change_base(&merged, "v2 longer");
    let upper = dir.path().join("upper");
    fs::create_dir(&upper).unwrap();
    chapter_03::copy::changes_as_upper(&before, &merged, &upper).unwrap();
    assert_eq!(
        fs::read_to_string(upper.join("keep/inner/file")).unwrap(),
        "v2 longer"
    );
    assert!(upper.join("new/dir/f").exists());
    for gone in ["gone-file", "gone-dir"] {
        assert!(
            is_overlay_whiteout(&fs::symlink_metadata(upper.join(gone)).unwrap()),
            "{gone} has no whiteout"
        );
    }
    assert!(!upper.join("same").exists(), "an unchanged file was copied");
    assert!(
        !upper.join("gone-dir/x").exists(),
        "only the top of a deleted tree needs a whiteout"
    );
}

#[test]
fn ex3_12_the_copy_driver_records_the_same_change_as_overlay() {
    // Deleting a directory of a lower layer makes overlayfs mark its copy
    // with trusted.* xattrs, which only the host's root may set.
    if !privileged("ex3_12_the_copy_driver_records_the_same_change_as_overlay (overlayfs needs trusted.* xattrs here: host root only)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = base_tree(dir.path());
    let mut listings = Vec::new();
    for driver in [Driver::Overlay, Driver::Copy] {
        let cdir = dir.path().join(format!("{driver:?}"));
        let mounted = driver.mount(std::slice::from_ref(&base), &cdir).unwrap();
        let m = mounted.merged();
        change_base(m, "v2");
        std::os::unix::fs::symlink("same", m.join("link")).unwrap();
        let tar = mounted.write_diff(Vec::new()).unwrap();
        listings.push(listing(&tar).unwrap());
    }
    // The times of what was written differ between the two runs.
    let strip = |l: &str| l.lines().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        strip(&listings[0]),
        strip(&listings[1]),
        "overlay and copy disagree about the change"
    );
    assert!(
        listings[0].contains(".wh.gone-file") && listings[0].contains(".wh.gone-dir"),
        "{}",
        listings[0]
    );
}
