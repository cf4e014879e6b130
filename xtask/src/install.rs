//! `cargo xtask install`: the Debian packages and tools the project needs,
//! installed only where missing, so it is quick when all is there.

use crate::run;
use anyhow::{Context, Result};
use std::process::Command;

/// Debian packages the tests and experiments use: the fixture's busybox,
/// the peers images are cross-checked with, the distribution registry the
/// registry client is tested against, htpasswd for its Basic auth, and
/// podman with runc to run what we push (crun refuses hybrid cgroups);
/// nftables for the engine's NAT, iproute2 for chapter 01's veth
/// walk-through, libseccomp-dev to compile seccomp profiles (chapter 06);
/// docker.io for Docker's 20.10 CLI and a real dockerd the engine's
/// archives are loaded into, buildah to compare builds with,
/// python3-venv for the test environment of Docker's Python SDK; uidmap
/// (newuidmap, newgidmap) and slirp4netns for the rootless engine, and
/// util-linux for setpriv, which runs the rootless tests' user;
/// qemu-system-x86, linux-image-cloud-amd64 and cpio for the microVM that
/// tests cgroup v2 (this host's cgroups are hybrid).
pub const APT_PACKAGES: &[&str] = &[
    "docker.io",
    "docker-compose",
    "buildah",
    "procps",
    "python3-venv",
    "busybox-static",
    "skopeo",
    "umoci",
    "docker-registry",
    "apache2-utils",
    "podman",
    "runc",
    "nftables",
    "iproute2",
    "libseccomp-dev",
    "uidmap",
    "slirp4netns",
    "util-linux",
    "qemu-system-x86",
    "linux-image-cloud-amd64",
    "cpio",
];

/// What the benchmarks need besides: the image builder and the timer.
pub const BENCH_PACKAGES: &[&str] = &["debootstrap", "hyperfine", "umoci"];

/// The mdBook the book is built with (pinned: CI and learners agree).
pub const MDBOOK_VERSION: &str = "0.5.4";

pub fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn mdbook_version() -> Option<String> {
    let out = Command::new("mdbook").arg("--version").output().ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("mdbook v")
            .to_string(),
    )
}

pub fn install() -> Result<()> {
    install_packages(APT_PACKAGES)?;
    // Chapter 06's tests drive Docker's own CLI. Any docker CLI will do
    // (the machine may have a newer one of its own); Debian's docker.io
    // brings one when there is none.
    python_env()?;
    if mdbook_version().as_deref() == Some(MDBOOK_VERSION) {
        eprintln!("mdbook {MDBOOK_VERSION}: present");
    } else {
        run(crate::cargo().args([
            "install",
            "--locked",
            "mdbook",
            "--version",
            MDBOOK_VERSION,
            "--no-default-features",
            "--features",
            "search",
        ]))?;
    }
    Ok(())
}

/// Docker's Python SDK, pinned, in a virtual environment of the project's
/// own (`target/pyenv`, Debian's python3): the tests drive the engine with
/// it as a user's script would.
/// Docker's SDK, pytest for the project's SDK scripts, testcontainers.
pub const PYTHON_PACKAGES: &[&str] = &["docker==7.1.0", "pytest==8.3.3", "testcontainers==4.8.2"];

pub fn python_env() -> Result<()> {
    let env = testkit::workspace_root().join("target/pyenv");
    let python = env.join("bin/python");
    let have = Command::new(&python)
        .args([
            "-c",
            "from importlib.metadata import version as v\nfor p in ('docker', 'pytest', 'testcontainers'): print(f'{p}=={v(p)}')",
        ])
        .output()
        .is_ok_and(|o| {
            let found = String::from_utf8_lossy(&o.stdout).into_owned();
            o.status.success() && PYTHON_PACKAGES.iter().all(|p| found.lines().any(|l| l == *p))
        });
    if have {
        eprintln!("python test environment: present");
        return Ok(());
    }
    run(Command::new("/usr/bin/python3")
        .arg("-m")
        .arg("venv")
        .arg(&env))?;
    run(Command::new(env.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(PYTHON_PACKAGES))
}

/// Installs those of `wanted` that are missing (`apt-get update` first).
pub fn install_packages(wanted: &[&str]) -> Result<()> {
    let missing: Vec<&str> = wanted.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("Debian packages: all present ({})", wanted.join(", "));
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "missing Debian packages {}: install them as root (`sudo apt-get install {}`) and run again",
            missing.join(" "),
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    // The packaged services (dockerd, containerd, the registry) are not
    // started: the tests start their own, on their own roots and sockets,
    // and a host dockerd would add a bridge and iptables chains.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let result = run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("installing Debian packages");
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    result
}
