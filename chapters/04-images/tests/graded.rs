//! Graded tests for chapter 04; each name starts with its exercise id.

mod common;
use chapter_04::archive;
use chapter_04::digest::{chain_ids, Digest, HashingReader};
use chapter_04::gc;
use chapter_04::manifest::{select_platform, ContainerConfig, Descriptor, Index, Platform};
use chapter_04::runconfig::{command_line, environment, resolve_user, Overrides};
use chapter_04::store::{Expect, Store};
use chapter_04::unpack::{
    host_platform, load_image, unpack, unpack_layer, unpack_one, unpack_stream, Limits,
};
use common::one_file_layer;
use std::fs;
use std::path::Path;
use testkit::root_or_userns;

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
fn ex4_4_chain_ids_name_the_stack_below() {
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
fn ex4_9_entrypoint_and_cmd_merge_like_docker() {
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
fn ex4_11_users_resolve_through_the_images_own_passwd_and_group() {
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
fn ex4_3_ingest_is_checked_atomic_and_deduplicated() {
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
fn ex4_13_gc_removes_exactly_what_no_tag_reaches() {
    if !root_or_userns("ex4_13_gc_removes_exactly_what_no_tag_reaches") {
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

// ---- 4.2 hashing while streaming ----------------------------------------------

/// A reader that hands out at most `step` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn ex4_2_a_stream_is_hashed_and_counted_as_it_passes() {
    use std::io::Read;
    let data = b"layer bytes ".repeat(10_000);
    let mut reader = HashingReader::new(Trickle {
        data: &data,
        step: 777,
    });
    let mut first = vec![0u8; 5000];
    reader.read_exact(&mut first).unwrap();
    assert_eq!(first, data[..5000], "the bytes pass through unchanged");
    let (digest, count) = reader.finish().unwrap();
    assert_eq!(
        digest,
        Digest::of(&data),
        "short reads must hash only what came"
    );
    assert_eq!(count, data.len() as u64);
    let (empty, n) = HashingReader::new(std::io::empty()).finish().unwrap();
    assert_eq!((empty, n), (Digest::of(b""), 0));
}

// ---- 4.5 the platform's manifest -----------------------------------------------

fn descriptor(n: u8, os: &str, arch: &str) -> Descriptor {
    Descriptor {
        media_type: chapter_04::manifest::OCI_MANIFEST.into(),
        digest: Digest::of(&[n]),
        size: 1,
        annotations: None,
        platform: Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: None,
        }),
    }
}

#[test]
fn ex4_5_the_index_entry_for_the_platform_is_chosen_and_attestations_skipped() {
    let mut attestation = descriptor(9, "unknown", "unknown");
    attestation.annotations = Some(
        [(
            "vnd.docker.reference.type".to_string(),
            "attestation-manifest".to_string(),
        )]
        .into_iter()
        .collect(),
    );
    let mut arm_v7 = descriptor(3, "linux", "arm");
    arm_v7.platform.as_mut().unwrap().variant = Some("v7".into());
    let index = Index {
        schema_version: 2,
        media_type: Some(chapter_04::manifest::OCI_INDEX.into()),
        manifests: vec![
            attestation,
            descriptor(1, "linux", "arm64"),
            descriptor(2, "linux", "amd64"),
            arm_v7,
        ],
        annotations: None,
    };
    let want = |arch: &str, variant: Option<&str>| Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: variant.map(String::from),
    };
    assert_eq!(
        select_platform(&index, &want("amd64", None))
            .unwrap()
            .digest,
        Digest::of(&[2])
    );
    assert_eq!(
        select_platform(&index, &want("arm", Some("v7")))
            .unwrap()
            .digest,
        Digest::of(&[3])
    );
    assert!(select_platform(&index, &want("arm", Some("v6"))).is_err());
    let err = select_platform(&index, &want("s390x", None)).unwrap_err();
    assert!(
        err.contains("linux/arm64") && err.contains("linux/amd64") && !err.contains("unknown"),
        "the error lists what is offered, attestations left out: {err}"
    );
    assert!(err.contains("--platform"), "{err}");
}

// ---- 4.6 tags ---------------------------------------------------------------------

#[test]
fn ex4_6_tags_live_in_index_json_and_retagging_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store
        .put_bytes(chapter_04::manifest::OCI_MANIFEST, b"{\"a\":1}")
        .unwrap();
    let b = store
        .put_bytes(chapter_04::manifest::OCI_MANIFEST, b"{\"b\":2}")
        .unwrap();
    store.tag("app:1", &a).unwrap();
    store.tag("app:2", &a).unwrap();
    store.tag("app:1", &b).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "a tag names one manifest: {index}");
    let named = |tag: &str| {
        entries
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no {tag} in {index}"))["digest"]
            .clone()
    };
    assert_eq!(named("app:1"), b.digest.as_str());
    assert_eq!(named("app:2"), a.digest.as_str());
    assert_eq!(store.resolve("app:1").unwrap().digest, b.digest);
    let err = store.tag("Bad Name", &a).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Many taggers at once: no tag is lost.
    std::thread::scope(|s| {
        for i in 0..8 {
            let (store, a) = (&store, &a);
            s.spawn(move || store.tag(&format!("many:{i}"), a).unwrap());
        }
    });
    assert_eq!(store.tags().unwrap().len(), 10);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("index.json") && n != "index.json")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

// ---- 4.7 one verified layer ----------------------------------------------------------

fn imported(store: &Store, name: &str, file: &str) -> chapter_04::unpack::Image {
    let cfg = ContainerConfig {
        cmd: Some(strings(&["/bin/sh"])),
        ..Default::default()
    };
    archive::import_rootfs_tar(
        store,
        one_file_layer(file, b"content").as_slice(),
        name,
        cfg,
    )
    .unwrap();
    load_image(store, &store.resolve(name).unwrap(), &host_platform()).unwrap()
}

fn snapshots(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn ex4_7_a_layer_is_unpacked_only_when_both_digests_match() {
    if !root_or_userns("ex4_7_a_layer_is_unpacked_only_when_both_digests_match") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let image = imported(&store, "one:1", "hello");
    let layer = &image.manifest.layers[0];
    let diff_id = &image.config.rootfs.diff_ids[0];
    let target = store.root().join("snapshots/by-hand");
    unpack_layer(&store, layer, diff_id, &target, &Limits::default()).unwrap();
    assert_eq!(fs::read(target.join("hello")).unwrap(), b"content");

    // A DiffID that does not match: refused, nothing left.
    let wrong = Digest::of(b"not this layer");
    let target = store.root().join("snapshots/wrong-diff");
    let err = unpack_layer(&store, layer, &wrong, &target, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("DiffID"), "{err}");
    // A cap below the layer's size: a bomb stops.
    let tiny = Limits {
        max_layer_bytes: 100,
        ..Limits::default()
    };
    let err = unpack_layer(&store, layer, diff_id, &target, &tiny).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    // A blob that changed in the store: refused.
    let blob = store.blob_path(&layer.digest);
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();
    let err = unpack_layer(&store, layer, diff_id, &target, &Limits::default()).unwrap_err();
    // The gzip trailer's own checksum may notice first; either way it fails.
    let text = err.to_string();
    assert!(
        text.contains("manifest says") || text.contains("gzip"),
        "{text}"
    );
    assert_eq!(
        snapshots(&store),
        ["by-hand"],
        "a failed unpack left something"
    );
}

#[test]
fn ex4_7_a_layer_unpacks_from_a_stream_that_is_not_in_the_store() {
    if !root_or_userns("ex4_7_a_layer_unpacks_from_a_stream_that_is_not_in_the_store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let image = imported(&store, "one:1", "hello");
    let layer = &image.manifest.layers[0];
    let diff_id = &image.config.rootfs.diff_ids[0];
    // The bytes as a download would bring them, and then gone from the
    // store: the unpack must read the stream it is given.
    let bytes = fs::read(store.blob_path(&layer.digest)).unwrap();
    fs::remove_file(store.blob_path(&layer.digest)).unwrap();
    let limits = Limits::default();
    let target = store.root().join("snapshots/streamed");
    unpack_stream(&store, bytes.as_slice(), layer, diff_id, &target, &limits).unwrap();
    assert_eq!(fs::read(target.join("hello")).unwrap(), b"content");

    // Cut short (a download that broke off), or with more than the
    // manifest promised: refused, nothing left.
    let short = &bytes[..bytes.len() - 4];
    let target = store.root().join("snapshots/short");
    unpack_stream(&store, short, layer, diff_id, &target, &limits).unwrap_err();
    let longer = [bytes.as_slice(), b"more"].concat();
    let err =
        unpack_stream(&store, longer.as_slice(), layer, diff_id, &target, &limits).unwrap_err();
    let text = err.to_string();
    // Bytes after the gzip stream are a broken next member to gzip.
    assert!(
        text.contains("manifest says") || text.contains("decompressing the layer"),
        "{text}"
    );
    assert_eq!(
        snapshots(&store),
        ["streamed"],
        "a failed unpack left something"
    );
}

// ---- 4.8 snapshots by ChainID ------------------------------------------------------------

#[test]
fn ex4_8_snapshots_are_named_by_chain_id_and_shared_between_images() {
    if !root_or_userns("ex4_8_snapshots_are_named_by_chain_id_and_shared_between_images") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let base = imported(&store, "base:1", "base-file");
    archive::add_layer(
        &store,
        "base:1",
        one_file_layer("top-file", b"top").as_slice(),
        "derived:1",
        "add",
    )
    .unwrap();
    let derived = load_image(
        &store,
        &store.resolve("derived:1").unwrap(),
        &host_platform(),
    )
    .unwrap();
    let chains = chain_ids(&derived.config.rootfs.diff_ids);
    let bottom = unpack_one(&store, &derived, 0, &Limits::default()).unwrap();
    assert_eq!(bottom, store.root().join("snapshots").join(chains[0].hex()));
    let top = unpack_one(&store, &derived, 1, &Limits::default()).unwrap();
    assert_eq!(top, store.root().join("snapshots").join(chains[1].hex()));
    assert!(top.join("top-file").exists() && !top.join("base-file").exists());
    // The base image's only layer is the same stack: already there.
    fs::write(bottom.join("marker"), "unpacked once").unwrap();
    let again = unpack_one(&store, &base, 0, &Limits::default()).unwrap();
    assert_eq!(again, bottom);
    assert!(
        again.join("marker").exists(),
        "the shared snapshot was unpacked again"
    );
    assert_eq!(snapshots(&store).len(), 2);
}

// ---- 4.10 the environment ----------------------------------------------------------------

#[test]
fn ex4_10_the_users_variables_replace_the_images_and_path_is_always_there() {
    let image = ContainerConfig {
        env: Some(strings(&["PATH=/image/bin", "LANG=C", "KEEP=1"])),
        ..Default::default()
    };
    std::env::set_var("EX4_10_FROM_HOST", "host value");
    std::env::remove_var("EX4_10_UNSET");
    let o = Overrides {
        env: strings(&[
            "LANG=de_DE.UTF-8",
            "NEW=x=y",
            "EX4_10_FROM_HOST",
            "KEEP",
            "EX4_10_UNSET",
        ]),
        ..Default::default()
    };
    let keep_unset = std::env::var("KEEP").is_err();
    let env = environment(&image, &o);
    let got: Vec<&str> = env.iter().map(String::as_str).collect();
    assert_eq!(got[0], "PATH=/image/bin");
    assert!(
        got.contains(&"LANG=de_DE.UTF-8") && !got.contains(&"LANG=C"),
        "{got:?}"
    );
    assert!(got.contains(&"NEW=x=y"), "{got:?}");
    assert!(got.contains(&"EX4_10_FROM_HOST=host value"), "{got:?}");
    assert!(
        !got.iter().any(|e| e.starts_with("EX4_10_UNSET")),
        "{got:?}"
    );
    if keep_unset {
        assert!(
            !got.iter().any(|e| e.starts_with("KEEP")),
            "-e KEY of an unset variable drops it: {got:?}"
        );
    }
    let bare = environment(&ContainerConfig::default(), &Overrides::default());
    assert_eq!(
        bare,
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
}

// ---- 4.12 marking -------------------------------------------------------------------------

#[test]
fn ex4_12_a_manifest_keeps_its_config_layers_and_snapshots_and_an_index_its_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let image = imported(&store, "m:1", "f");
    let d = store.resolve("m:1").unwrap();
    let (mut blobs, mut snaps) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    gc::mark(&store, &d, &mut blobs, &mut snaps);
    let mut want: std::collections::BTreeSet<Digest> =
        [d.digest.clone(), image.manifest.config.digest.clone()].into();
    want.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
    assert_eq!(blobs, want);
    let chains = chain_ids(&image.config.rootfs.diff_ids);
    assert_eq!(snaps, chains.iter().map(|c| c.hex().to_string()).collect());
    // An index keeps its manifests; a missing blob marks only itself.
    let missing = Descriptor {
        media_type: chapter_04::manifest::OCI_MANIFEST.into(),
        digest: Digest::of(b"never stored"),
        size: 3,
        annotations: None,
        platform: None,
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(chapter_04::manifest::OCI_INDEX.into()),
        manifests: vec![d.clone(), missing.clone()],
        annotations: None,
    };
    let index_d = store
        .put_bytes(
            chapter_04::manifest::OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    let (mut blobs, mut snaps) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    gc::mark(&store, &index_d, &mut blobs, &mut snaps);
    assert!(blobs.contains(&index_d.digest) && blobs.contains(&missing.digest));
    assert!(
        want.is_subset(&blobs),
        "the index's manifest keeps its blobs"
    );
    assert_eq!(blobs.len(), want.len() + 2);
}
