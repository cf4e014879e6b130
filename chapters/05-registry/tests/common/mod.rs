//! Test support: the real distribution registry (Debian's docker-registry)
//! on a free loopback port with a temporary storage root, and images to
//! push.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
#[allow(unused_imports)]
pub use testkit::registry::{Auth, Registry};

/// `registry/repo:tag` on this registry.
pub fn reference(registry: &Registry, repo_tag: &str) -> chapter_05::Reference {
    chapter_05::Reference::parse(&format!("{}/{repo_tag}", registry.addr)).unwrap()
}

/// A store holding the fixture image as `fixture:latest`.
pub fn store_with_fixture(dir: &Path) -> chapter_04::Store {
    let store = chapter_04::Store::open(dir).unwrap();
    chapter_04::archive::import_rootfs_dir(
        &store,
        &testkit::fixture::rootfs(),
        "fixture:latest",
        chapter_04::manifest::ContainerConfig {
            cmd: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    store
}

/// The unpacked tree of image `name` (single layer) described exactly.
pub fn unpacked(
    store: &chapter_04::Store,
    name: &str,
) -> std::collections::BTreeMap<PathBuf, String> {
    use chapter_04::unpack::{host_platform, load_image, unpack, Limits};
    let image = load_image(store, &store.resolve(name).unwrap(), &host_platform()).unwrap();
    let dirs = unpack(store, &image, &Limits::default()).unwrap();
    testkit::tree::describe(dirs.last().unwrap())
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pushes `fixture:latest` of `store` as `reference`, pulls it back into a
/// new store at `into`, and checks the pulled tree is the pushed one.
pub fn round_trip(
    store: &chapter_04::Store,
    reference: &chapter_05::Reference,
    credentials: Option<chapter_05::auth::Credentials>,
    into: &Path,
) {
    use chapter_05::{client::Client, progress::Progress, pull, push};
    let client = Client::new(reference, true)
        .unwrap()
        .with_credentials(credentials.clone());
    push::push(
        &client,
        store,
        "fixture:latest",
        &push::Options::default(),
        &Progress::quiet(),
    )
    .unwrap();
    let other = chapter_04::Store::open(into).unwrap();
    let client = Client::new(reference, false)
        .unwrap()
        .with_credentials(credentials);
    let pulled = pull::pull(
        &client,
        &other,
        &pull::Options::default(),
        &Progress::quiet(),
    )
    .unwrap();
    assert_eq!(
        unpacked(&other, &pulled.name),
        unpacked(store, "fixture:latest")
    );
}
