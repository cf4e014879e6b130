//! Layers from strangers. A malicious-layer corpus, built here: each entry
//! trick is refused with an error naming the entry and the rule, and
//! nothing outside the unpack target is created or changed (the store's
//! parent directory is listed before and after). Then integrity faults:
//! a corrupted blob, a wrong DiffID, a truncated gzip, a gzip bomb: each a
//! clear error, the store unchanged.

use chapter_04::archive;
use chapter_04::digest::Digest;
use chapter_04::manifest::{
    ContainerConfig, Descriptor, ImageConfig, Manifest, RootFs, OCI_CONFIG, OCI_LAYER_GZIP,
    OCI_MANIFEST,
};
use chapter_04::store::Store;
use chapter_04::unpack::{host_platform, load_image, unpack, Limits};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use tar::EntryType;
use testkit::privileged;

/// One raw tar entry: the path is written as given (no checks by the tar
/// crate), so the corpus can hold what a hostile tool would write.
struct Raw<'a> {
    path: &'a str,
    kind: EntryType,
    link: &'a str,
    data: &'a [u8],
    pax: &'a [(&'a str, &'a [u8])],
}

fn raw(path: &str, kind: EntryType) -> Raw<'_> {
    Raw {
        path,
        kind,
        link: "",
        data: b"",
        pax: &[],
    }
}

fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.pax.is_empty() {
            b.append_pax_extensions(e.pax.iter().copied()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_mode(if e.kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(e.data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        gnu.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Every path under `dir` (recursively), for before/after comparisons.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fn unpack_named(store: &Store, name: &str, limits: &Limits) -> std::io::Result<Vec<PathBuf>> {
    let image = load_image(store, &store.resolve(name)?, &host_platform())?;
    unpack(store, &image, limits)
}

#[test]
fn every_trick_in_the_corpus_is_refused_and_nothing_outside_changes() {
    if !privileged("every_trick_in_the_corpus_is_refused_and_nothing_outside_changes") {
        return;
    }
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "untouched").unwrap();
    let store_dir = sandbox.path().join("deep/er/store");
    let store = Store::open(&store_dir).unwrap();
    let o = outside.to_str().unwrap();
    let victim = format!("{o}/victim");
    use EntryType::*;
    let corpus: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot-dot",
            tar_of(&[Raw {
                data: b"x",
                ..raw("../../../../outside/new", Regular)
            }]),
            "`..`",
        ),
        (
            "absolute",
            tar_of(&[Raw {
                data: b"x",
                ..raw(&format!("{o}/abs"), Regular)
            }]),
            "absolute",
        ),
        (
            "symlink then file through it",
            tar_of(&[
                Raw {
                    link: o,
                    ..raw("link", Symlink)
                },
                Raw {
                    data: b"x",
                    ..raw("link/through", Regular)
                },
            ]),
            "not a directory",
        ),
        (
            "hard link to outside (..)",
            tar_of(&[Raw {
                link: "../../../../outside/victim",
                ..raw("h", Link)
            }]),
            "`..`",
        ),
        (
            "hard link to outside (absolute)",
            tar_of(&[Raw {
                link: &victim,
                ..raw("h", Link)
            }]),
            "absolute",
        ),
        (
            "hard link to a path not extracted yet",
            tar_of(&[
                Raw {
                    link: "later",
                    ..raw("h", Link)
                },
                raw("later", Regular),
            ]),
            "has not created",
        ),
        (
            "hard link through a symlinked directory",
            tar_of(&[
                Raw {
                    link: o,
                    ..raw("d", Symlink)
                },
                Raw {
                    link: "d/victim",
                    ..raw("h", Link)
                },
            ]),
            "not a directory",
        ),
        (
            "directory replaced by a symlink",
            tar_of(&[
                raw("d", Directory),
                Raw {
                    link: o,
                    ..raw("d", Symlink)
                },
                Raw {
                    data: b"x",
                    ..raw("d/new", Regular)
                },
            ]),
            "not a directory",
        ),
        (
            "duplicate entry turned into a symlink",
            tar_of(&[
                raw("f", Directory),
                Raw {
                    link: o,
                    ..raw("f", Symlink)
                },
                raw("f/g", Directory),
            ]),
            "not a directory",
        ),
        (
            "trusted xattr",
            tar_of(&[Raw {
                pax: &[("SCHILY.xattr.trusted.overlay.opaque", b"y")],
                ..raw("dir", Directory)
            }]),
            "trusted.",
        ),
    ];
    let before = listing(sandbox.path());
    for (i, (what, layer, rule)) in corpus.iter().enumerate() {
        let name = format!("hostile:{i}");
        archive::import_rootfs_tar(&store, layer.as_slice(), &name, ContainerConfig::default())
            .unwrap();
        let snapshots_before = listing(&store_dir.join("snapshots"));
        let err = unpack_named(&store, &name, &Limits::default())
            .expect_err(what)
            .to_string();
        assert!(
            err.contains(rule),
            "{what}: expected the rule {rule:?} in: {err}"
        );
        assert!(
            err.contains("layer entry"),
            "{what}: the error names the entry: {err}"
        );
        assert_eq!(
            listing(&store_dir.join("snapshots")),
            snapshots_before,
            "{what}: a partial snapshot was left"
        );
    }
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
    let after: Vec<PathBuf> = listing(sandbox.path())
        .into_iter()
        .filter(|p| !p.starts_with(&store_dir))
        .collect();
    let before: Vec<PathBuf> = before
        .into_iter()
        .filter(|p| !p.starts_with(&store_dir))
        .collect();
    assert_eq!(after, before, "something outside the store was created");
}

#[test]
fn device_nodes_are_only_created_when_privileged() {
    let dir = tempfile::tempdir().unwrap();
    let layer = tar_of(&[raw("null", EntryType::Char)]);
    let policy = chapter_03::apply::Policy {
        devices: chapter_03::apply::Devices::Skip,
        ..Default::default()
    };
    let applied =
        chapter_03::apply::apply_layer_with(layer.as_slice(), dir.path(), &policy).unwrap();
    assert_eq!(applied.skipped_devices, 1);
    assert!(!dir.path().join("null").exists());
}

/// Stores a one-layer image whose parts are given as they are (for faults).
fn put_image(store: &Store, name: &str, layer: Descriptor, diff_id: Digest) {
    let config = ImageConfig {
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        ..Default::default()
    };
    let config = store
        .put_bytes(OCI_CONFIG, &serde_json::to_vec(&config).unwrap())
        .unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config,
        layers: vec![layer],
        annotations: None,
    };
    let manifest = store
        .put_bytes(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    store.tag(name, &manifest).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn integrity_faults_are_clear_errors_and_leave_the_store_unchanged() {
    if !privileged("integrity_faults_are_clear_errors_and_leave_the_store_unchanged") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tar = tar_of(&[Raw {
        data: b"hello",
        ..raw("file", EntryType::Regular)
    }]);
    let gz = gzip(&tar);
    let layer = store.put_bytes(OCI_LAYER_GZIP, &gz).unwrap();

    // A wrong DiffID in the config.
    put_image(
        &store,
        "wrong-diffid",
        layer.clone(),
        Digest::of(b"something else"),
    );
    let err = unpack_named(&store, "wrong-diffid", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("DiffID"), "{err}");

    // A truncated gzip stream (stored under its own, correct, digest).
    let cut = store
        .put_bytes(OCI_LAYER_GZIP, &gz[..gz.len() / 2])
        .unwrap();
    put_image(&store, "truncated", cut, Digest::of(&tar));
    let err = unpack_named(&store, "truncated", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 1"), "{err}");

    // A gzip bomb: 64 MiB of zeros in a few KiB, against a 16 MiB limit.
    let mut bomb_tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    bomb_tar
        .append_data(
            &mut h,
            "zeros",
            std::io::Read::take(std::io::repeat(0), 64 << 20),
        )
        .unwrap();
    let bomb_tar = bomb_tar.into_inner().unwrap();
    let bomb = store.put_bytes(OCI_LAYER_GZIP, &gzip(&bomb_tar)).unwrap();
    assert!(
        bomb.size < 1 << 20,
        "the bomb should be small: {}",
        bomb.size
    );
    put_image(&store, "bomb", bomb, Digest::of(&bomb_tar));
    let small = Limits {
        max_layer_bytes: 16 << 20,
        ..Limits::default()
    };
    let err = unpack_named(&store, "bomb", &small)
        .unwrap_err()
        .to_string();
    assert!(err.contains("decompression bomb"), "{err}");

    // A corrupted blob on disk: one byte flipped.
    put_image(&store, "good", layer.clone(), Digest::of(&tar));
    let path = store.blob_path(&layer.digest);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let err = unpack_named(&store, "good", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("corrupt") || err.contains("layer 1"), "{err}");

    let leftovers: Vec<_> = fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "a failed unpack left {leftovers:?}");
}

#[test]
fn oversized_json_documents_are_refused() {
    let huge = vec![b' '; (4 << 20) + 1];
    let err = chapter_04::manifest::parse_json::<Manifest>(&huge, "manifest").unwrap_err();
    assert!(err.contains("limit"), "{err}");
}

/// umoci's CVE-2021-29136: a symlink named `.` (or `/`) replaced the root of
/// the unpack, and later entries landed wherever it pointed. Here `.` is the
/// layer's root itself and is never replaced; `/` is an absolute name.
#[test]
fn a_symlink_named_dot_or_slash_cannot_replace_the_root() {
    if !privileged("a_symlink_named_dot_or_slash_cannot_replace_the_root") {
        return;
    }
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let store = Store::open(sandbox.path().join("store")).unwrap();
    let o = outside.to_str().unwrap();
    let dot = tar_of(&[
        Raw {
            link: o,
            ..raw(".", EntryType::Symlink)
        },
        Raw {
            data: b"x",
            ..raw("x", EntryType::Regular)
        },
    ]);
    archive::import_rootfs_tar(&store, dot.as_slice(), "dot:1", ContainerConfig::default())
        .unwrap();
    let dirs = unpack_named(&store, "dot:1", &Limits::default()).unwrap();
    assert!(
        fs::symlink_metadata(&dirs[0]).unwrap().is_dir(),
        "the snapshot root became a symlink"
    );
    assert!(dirs[0].join("x").is_file());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "an entry landed outside"
    );
    let slash = tar_of(&[Raw {
        link: o,
        ..raw("/", EntryType::Symlink)
    }]);
    archive::import_rootfs_tar(
        &store,
        slash.as_slice(),
        "slash:1",
        ContainerConfig::default(),
    )
    .unwrap();
    let err = unpack_named(&store, "slash:1", &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("absolute"), "{err}");
}
