//! Layers for a container in a user namespace: idmapped mounts over one
//! unpacked layer, the shifted-copy fallback, and the overlay on top,
//! seen from the host (the container side is chapter 06's test).

use chapter_01::{IdMap, IdRange};
use chapter_03::driver::{Remap, RemapMethod};
use chapter_03::idmap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use testkit::privileged;

fn map() -> IdMap {
    let range = IdRange {
        inside: 0,
        outside: 200_000,
        count: 65_536,
    };
    IdMap {
        uids: vec![range],
        gids: vec![range],
        deny_setgroups: false,
    }
}

/// A layer with files of root, of 1000:1001, and a setuid binary.
fn layer(dir: &Path) {
    fs::create_dir_all(dir.join("home/user")).unwrap();
    fs::write(dir.join("etc-file"), "root's").unwrap();
    fs::write(dir.join("home/user/notes"), "the user's").unwrap();
    nix::unistd::chown(
        &dir.join("home/user/notes"),
        Some(1000.into()),
        Some(1001.into()),
    )
    .unwrap();
    fs::write(dir.join("suid"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(dir.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn an_idmapped_bind_shows_each_owner_through_the_map_and_changes_nothing_on_disk() {
    if !privileged("an_idmapped_bind_shows_each_owner_through_the_map_and_changes_nothing_on_disk")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, at) = (dir.path().join("layer"), dir.path().join("idmapped"));
    layer(&src);
    fs::create_dir(&at).unwrap();
    let userns = idmap::user_namespace(&map()).unwrap();
    let mount = idmap::bind_idmapped(&src, &at, std::os::fd::AsFd::as_fd(&userns)).unwrap();
    assert_eq!(owner(&at.join("etc-file")), (200_000, 200_000));
    assert_eq!(owner(&at.join("home/user/notes")), (201_000, 201_001));
    assert_eq!(
        owner(&src.join("home/user/notes")),
        (1000, 1001),
        "the disk is unchanged"
    );
    assert!(
        fs::write(at.join("new"), "x").is_err(),
        "the bind is read-only"
    );
    drop(mount);
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*at.to_string_lossy()), "detached on drop");
}

#[test]
fn a_remapped_overlay_is_owned_by_the_containers_root_with_either_method() {
    if !privileged("a_remapped_overlay_is_owned_by_the_containers_root_with_either_method") {
        return;
    }
    for method in [RemapMethod::Idmapped, RemapMethod::ShiftedCopies] {
        let dir = tempfile::tempdir().unwrap();
        let (src, cache, container) = (
            dir.path().join("layer"),
            dir.path().join("shifted"),
            dir.path().join("c"),
        );
        layer(&src);
        fs::create_dir(&container).unwrap();
        let map = map();
        let remap = Remap {
            map: &map,
            cache: &cache,
        };
        // SAFETY: set before anything else reads it in this test's process;
        // the tests of this file run the two methods in one test.
        unsafe {
            std::env::set_var(
                "MINI_DOCKER_IDMAP",
                if method == RemapMethod::Idmapped {
                    "on"
                } else {
                    "off"
                },
            )
        };
        let (mounted, got) = chapter_03::Driver::Overlay
            .mount_remapped(std::slice::from_ref(&src), &container, &remap)
            .unwrap();
        assert_eq!(got, method);
        let merged = mounted.merged();
        assert_eq!(owner(merged), (200_000, 200_000), "{method:?}: / is root's");
        assert_eq!(owner(&merged.join("home/user/notes")), (201_000, 201_001));
        let suid = fs::metadata(merged.join("suid")).unwrap().mode();
        assert_eq!(suid & 0o7777, 0o4755, "{method:?}: the setuid bit survives");
        // A write by the container's root lands in upper as its host uid.
        fs::write(merged.join("home/user/notes"), "changed").unwrap();
        assert_eq!(
            owner(&container.join("upper/home/user/notes")),
            (201_000, 201_001)
        );
        assert_eq!(owner(&src.join("home/user/notes")), (1000, 1001));
        if method == RemapMethod::ShiftedCopies {
            assert!(
                cache.join("layer").is_dir(),
                "the copy is kept for the next one"
            );
        }
        drop(mounted);
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&*dir.path().to_string_lossy()),
            "{method:?}: unmounted"
        );
    }
    unsafe { std::env::remove_var("MINI_DOCKER_IDMAP") };
}

#[test]
fn an_owner_outside_the_range_is_refused_by_name() {
    if !privileged("an_owner_outside_the_range_is_refused_by_name") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("far"), "").unwrap();
    nix::unistd::chown(&dir.path().join("far"), Some(70_000.into()), None).unwrap();
    let err = idmap::shift_tree(dir.path(), &map())
        .unwrap_err()
        .to_string();
    assert!(err.contains("far") && err.contains("70000"), "{err}");
}
