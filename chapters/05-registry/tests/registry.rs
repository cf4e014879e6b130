//! Against the real distribution registry, cross-checked with skopeo:
//! images skopeo pushes (OCI and Docker v2s2 manifests, gzip and zstd
//! layers, a multi-platform index) are pulled by us and unpack to the same
//! tree; an image we push is pulled back by skopeo byte for byte.

mod common;
use chapter_04::manifest::{
    Descriptor, ImageConfig, Index, Platform, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use chapter_04::unpack::{host_platform, load_image};
use chapter_05::client::Client;
use chapter_05::progress::Progress;
use chapter_05::{pull, push};
use common::{run, store_with_fixture, unpacked, Auth, Registry};
use std::process::Command;
use testkit::privileged;

fn skopeo_copy(from: &str, to: &str, extra: &[&str]) {
    run(testkit::skopeo()
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args([from, to]));
}

#[test]
fn ex5_12_we_push_and_skopeo_pulls_back_byte_for_byte() {
    if !privileged("ex5_12_we_push_and_skopeo_pulls_back_byte_for_byte") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(&dir.path().join("store"));
    let reference = common::reference(&registry, "mine/fixture:v1");
    let client = Client::new(&reference, true).unwrap();
    // Small chunks: the 2 MB layer goes up in several PATCHes.
    let options = push::Options {
        chunk_size: 512 << 10,
        mount_from: None,
    };
    let d = push::push(
        &client,
        &store,
        "fixture:latest",
        &options,
        &Progress::quiet(),
    )
    .unwrap();
    // Pushing again uploads nothing.
    let layer = &load_image(&store, &d, &host_platform())
        .unwrap()
        .manifest
        .layers[0];
    assert_eq!(
        push::push_blob(&client, &store, layer, &options).unwrap(),
        push::Sent::AlreadyThere
    );
    // A second repository mounts the blob instead of uploading it.
    let other = Client::new(&common::reference(&registry, "other/fixture:v1"), true).unwrap();
    let mount = push::Options {
        mount_from: Some("mine/fixture".into()),
        ..options
    };
    assert_eq!(
        push::push_blob(&other, &store, layer, &mount).unwrap(),
        push::Sent::Mounted
    );

    let copy = dir.path().join("skopeo-layout");
    skopeo_copy(
        &format!("docker://{}/mine/fixture:v1", registry.addr),
        &format!("oci:{}:back", copy.display()),
        &[],
    );
    let back = chapter_04::Store::open(&copy).unwrap();
    assert_eq!(
        back.resolve("back").unwrap().digest,
        d.digest,
        "skopeo received other manifest bytes"
    );
}

#[test]
fn ex5_9_images_skopeo_pushes_pull_and_unpack_to_the_same_tree() {
    if !privileged("ex5_9_images_skopeo_pushes_pull_and_unpack_to_the_same_tree") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let source = store_with_fixture(&dir.path().join("source"));
    let expected = unpacked(&source, "fixture:latest");
    let src = format!("oci:{}:fixture:latest", source.root().display());
    let cases: [(&str, &[&str]); 3] = [
        ("oci", &[]),
        ("v2s2", &["--format", "v2s2"]),
        (
            "zstd",
            &["--dest-compress-format", "zstd", "--dest-compress"],
        ),
    ];
    // skopeo compresses only layers it receives uncompressed: zstd goes via a
    // decompressed copy.
    let plain = format!("oci:{}:plain", dir.path().join("plain").display());
    skopeo_copy(&src, &plain, &["--dest-decompress"]);
    // skopeo remembers which blobs a registry holds and mounts them rather
    // than recompress: zstd gets a registry of its own.
    let zstd_registry = Registry::start(Auth::None);
    for (tag, flags) in cases {
        let (from, reg) = if tag == "zstd" {
            (&plain, &zstd_registry)
        } else {
            (&src, &registry)
        };
        skopeo_copy(
            from,
            &format!("docker://{}/cross-{tag}/fixture:{tag}", reg.addr),
            flags,
        );
        let store = chapter_04::Store::open(dir.path().join(format!("pulled-{tag}"))).unwrap();
        let client = Client::new(
            &common::reference(reg, &format!("cross-{tag}/fixture:{tag}")),
            false,
        )
        .unwrap();
        let pulled = pull::pull(
            &client,
            &store,
            &pull::Options::default(),
            &Progress::quiet(),
        )
        .unwrap();
        let image = load_image(&store, &pulled.manifest, &host_platform()).unwrap();
        let media = &image.manifest.layers[0].media_type;
        match tag {
            "v2s2" => assert_eq!(
                pulled.manifest.media_type,
                chapter_04::manifest::DOCKER_MANIFEST
            ),
            "zstd" => assert!(media.ends_with("zstd"), "{media}"),
            _ => assert_eq!(pulled.manifest.media_type, OCI_MANIFEST),
        }
        assert_eq!(
            unpacked(&store, &pulled.name),
            expected,
            "{tag}: the tree differs"
        );
    }
}

#[test]
fn ex5_9_from_a_multi_platform_index_the_asked_platform_is_pulled() {
    if !privileged("ex5_9_from_a_multi_platform_index_the_asked_platform_is_pulled") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(&dir.path().join("source"));
    // A second "platform": the same layer, a config saying arm64.
    let amd = load_image(
        &store,
        &store.resolve("fixture:latest").unwrap(),
        &host_platform(),
    )
    .unwrap();
    let mut arm_config: ImageConfig = amd.config.clone();
    arm_config.architecture = "arm64".into();
    let config = store
        .put_bytes(OCI_CONFIG, &serde_json::to_vec(&arm_config).unwrap())
        .unwrap();
    let mut arm_manifest = amd.manifest.clone();
    arm_manifest.config = config;
    let arm = store
        .put_bytes(OCI_MANIFEST, &serde_json::to_vec(&arm_manifest).unwrap())
        .unwrap();
    let with = |d: &Descriptor, arch: &str| Descriptor {
        platform: Some(Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }),
        ..d.clone()
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: vec![with(&amd.manifest_descriptor, "amd64"), with(&arm, "arm64")],
        annotations: None,
    };
    let index = store
        .put_bytes(OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        .unwrap();
    store.tag("multi:1", &index).unwrap();
    skopeo_copy(
        &format!("oci:{}:multi:1", store.root().display()),
        &format!("docker://{}/multi/app:1", registry.addr),
        &["--all"],
    );

    let client = Client::new(&common::reference(&registry, "multi/app:1"), false).unwrap();
    let target = chapter_04::Store::open(dir.path().join("pulled")).unwrap();
    let pulled = pull::pull(
        &client,
        &target,
        &pull::Options::default(),
        &Progress::quiet(),
    )
    .unwrap();
    assert_eq!(
        pulled.manifest.digest, amd.manifest_descriptor.digest,
        "the host's platform by default"
    );
    let arm64 = pull::Options {
        platform: pull::parse_platform("linux/arm64").unwrap(),
        unpack: false,
        ..Default::default()
    };
    assert_eq!(
        pull::pull(&client, &target, &arm64, &Progress::quiet())
            .unwrap()
            .manifest
            .digest,
        arm.digest
    );
    let s390x = pull::Options {
        platform: pull::parse_platform("linux/s390x").unwrap(),
        ..Default::default()
    };
    let err = pull::pull(&client, &target, &s390x, &Progress::quiet()).unwrap_err();
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
}

#[test]
fn ex5_6_unknown_images_and_bad_references_are_named_through_a_pull() {
    if !privileged("ex5_6_unknown_images_and_bad_references_are_named_through_a_pull") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let store = chapter_04::Store::open(dir.path()).unwrap();
    let client = Client::new(&common::reference(&registry, "nothing/here:1"), false).unwrap();
    let err = pull::pull(
        &client,
        &store,
        &pull::Options::default(),
        &Progress::quiet(),
    )
    .unwrap_err();
    assert!(err.contains("manifest unknown"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_chapter-05"))
        .args(["pull", "Bad Name"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid image reference \"Bad Name\""));
}

#[test]
fn ex5_12_an_image_we_push_runs_under_podman() {
    if !privileged("ex5_12_an_image_we_push_runs_under_podman") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(&dir.path().join("store"));
    let client = Client::new(&common::reference(&registry, "run/fixture:v1"), true).unwrap();
    push::push(
        &client,
        &store,
        "fixture:latest",
        &push::Options::default(),
        &Progress::quiet(),
    )
    .unwrap();
    let podman = testkit::peers::Podman::new(dir.path());
    // Limits within this machine's hard limits (root here cannot raise them).
    let out = run(podman
        .cmd()
        .args([
            "run",
            "-q",
            "--rm",
            "--tls-verify=false",
            "--network",
            "none",
        ])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .arg(format!("{}/run/fixture:v1", registry.addr))
        .arg("/bin/facts"));
    let facts = testkit::parse_facts(out.as_bytes());
    assert_eq!(facts["pid"], 1, "{facts}");
    assert!(
        facts["root_entries"]
            .as_array()
            .unwrap()
            .contains(&"linuxrc".into()),
        "not our image: {facts}"
    );
}

#[test]
fn experiments_walk_pull_and_push() {
    if !privileged("experiments_walk_pull_and_push") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(&dir.path().join("store"));
    let s = store.root().to_str().unwrap().to_string();
    let other = dir.path().join("other");
    let o = other.to_str().unwrap().to_string();
    let image = format!("{}/exp/fixture:v1", registry.addr);
    let bin = env!("CARGO_BIN_EXE_chapter-05");
    testkit::assert_experiments_show(
        bin,
        &[
            (
                &["--store", &s, "push", "fixture:latest", &image],
                "pushed fixture:latest",
            ),
            (&["--store", &o, "pull", &image], "1 layers"),
        ],
    );
    let out = Command::new(bin)
        .args(["--store", &o, "walk", &image])
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    for step in [
        "-> GET http://",
        "/v2/",
        "-> HEAD ",
        "/manifests/v1",
        "<- HTTP 200",
    ] {
        assert!(
            trace.contains(step),
            "the walk should show {step:?}:\n{trace}"
        );
    }
}

#[test]
fn ex5_10_a_blob_is_uploaded_whole_skipped_when_there_and_mounted_across_repositories() {
    if !privileged(
        "ex5_10_a_blob_is_uploaded_whole_skipped_when_there_and_mounted_across_repositories",
    ) {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let (store, layer) = fixture_layer(dir.path());
    let layer = &layer;
    let client = Client::new(&common::reference(&registry, "one/app:1"), true).unwrap();
    let whole = push::Options::default();
    assert_eq!(
        push::push_blob(&client, &store, layer, &whole).unwrap(),
        push::Sent::Uploaded
    );
    assert_eq!(
        push::push_blob(&client, &store, layer, &whole).unwrap(),
        push::Sent::AlreadyThere
    );
    // Another repository of the same registry gets it without the bytes.
    let other = Client::new(&common::reference(&registry, "two/app:1"), true).unwrap();
    let mount = push::Options {
        mount_from: Some("one/app".into()),
        ..push::Options::default()
    };
    assert_eq!(
        push::push_blob(&other, &store, layer, &mount).unwrap(),
        push::Sent::Mounted
    );
    assert_eq!(registry_blob_digest(&other, layer), layer.digest);
}

/// A store with the fixture image, and the descriptor of its layer.
fn fixture_layer(dir: &std::path::Path) -> (chapter_04::Store, chapter_04::manifest::Descriptor) {
    let store = store_with_fixture(&dir.join("store"));
    let image = load_image(
        &store,
        &store.resolve("fixture:latest").unwrap(),
        &host_platform(),
    )
    .unwrap();
    let layer = image.manifest.layers[0].clone();
    (store, layer)
}

/// The digest of what the registry serves for `layer`'s blob.
fn registry_blob_digest(
    client: &Client,
    layer: &chapter_04::manifest::Descriptor,
) -> chapter_04::Digest {
    let mut resp = client
        .send(
            "GET",
            &client.url(&format!("blobs/{}", layer.digest)),
            &[],
            chapter_05::client::Payload::Empty,
        )
        .unwrap();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    chapter_04::Digest::of(&bytes)
}

#[test]
fn ex5_11_a_big_blob_goes_up_in_chunks_each_to_the_location_given() {
    if !privileged("ex5_11_a_big_blob_goes_up_in_chunks_each_to_the_location_given") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let (store, layer) = fixture_layer(dir.path());
    let layer = &layer;
    let client = Client::new(&common::reference(&registry, "chunks/app:1"), true).unwrap();
    let chunked = push::Options {
        chunk_size: 256 << 10,
        mount_from: None,
    };
    let expected_chunks = layer.size.div_ceil(256 << 10) as usize;
    assert!(expected_chunks > 2, "the test wants several chunks");
    assert_eq!(
        push::push_blob(&client, &store, layer, &chunked).unwrap(),
        push::Sent::UploadedInChunks(expected_chunks)
    );
    assert_eq!(
        registry_blob_digest(&client, layer),
        layer.digest,
        "byte for byte"
    );
}
