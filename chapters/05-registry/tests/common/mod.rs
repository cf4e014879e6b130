//! Test support: the real distribution registry (Debian's docker-registry)
//! on a free loopback port with a temporary storage root, and images to
//! push.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

pub enum Auth<'a> {
    None,
    /// htpasswd with one user.
    Basic(&'a str, &'a str),
    /// Bearer tokens from a token server at `realm`, signed by the key whose
    /// certificate is `cert` (PEM).
    Token {
        realm: &'a str,
        cert: &'a Path,
    },
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Auth::Basic(user, pass) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils)");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                file.display()
            ));
        }
        if let Auth::Token { realm, cert } = auth {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (cargo xtask install)");
        let registry = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    pub fn reference(&self, repo_tag: &str) -> chapter_05::Reference {
        chapter_05::Reference::parse(&format!("{}/{repo_tag}", self.addr)).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
