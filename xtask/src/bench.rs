//! `cargo xtask bench …`: our code timed side by side with its peers, on
//! this machine, in one run, reported as ratios. Not a test: timings
//! depend on the machine, so nothing asserts on them.
//!
//! `bench unpack`: a ~200 MB Debian image (debootstrap --variant=minbase)
//! imported as a one-layer image, then unpacked by `chapter-04 unpack`, by
//! `umoci unpack`, and by `tar -xzf` of the very same layer blob (the
//! floor: no digests, no safety checks, gzip in a second process).
//!
//! `bench pull`: the same image pushed to a local `docker-registry`, then
//! pulled (and unpacked) by `chapter-05 pull`, by `podman pull` (with its
//! own temporary storage root), and by `skopeo copy` + `umoci unpack`.
//!
//! `bench start`: `run --rm --network none fixture /bin/true`, start to
//! exit, by mini-docker (a release mini-dockerd, all defaults on: seccomp,
//! and a second daemon under `--userns-remap`), mini-docker with
//! `seccomp=unconfined` (what the filter costs), `podman run`, `docker
//! run` (a dockerd of Debian's docker.io, started for the benchmark with its
//! own data root) and `runc run` of a bundle of the same root filesystem
//! (the floor: a runtime with no daemon, no image, no API). With
//! `--baseline REV`, mini-docker built from that revision (a git worktree
//! under target/bench) runs in the same hyperfine call.
//!
//! `bench build`: the course's test Dockerfile (`testkit::build_context`:
//! two stages, every instruction, three RUNs) built by mini-docker, by
//! `buildah bud --layers` and by the classic builder of a real dockerd
//! (`DOCKER_BUILDKIT=0`), each cold (`--no-cache`) and fully cached, in
//! one hyperfine run; and a one-RUN build against `mini-docker run --rm`
//! of the same command (what a RUN step costs over a run). The classic
//! builder refuses `COPY --chmod`, so the file is built without it. RUN steps use
//! `--network none` everywhere (buildah: chroot isolation, the host's).
//!
//! The unpacks write to a tmpfs: on a virtual disk, writing 200 MB is
//! dominated by the kernel's filesystem and writeback work (measured here:
//! `tar -xzf` spent 6 of its 6.6 s in system time, ours varied from 1.2 to
//! 6.2 s), which would time the disk, not the unpackers.

use crate::{cargo, install, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bench(
    what: &str,
    runs: u32,
    baseline: Option<&str>,
    density_n: u32,
    vm_n: u32,
) -> Result<()> {
    if baseline.is_some() && what != "start" {
        bail!("--baseline is for `bench start` only");
    }
    match what {
        "unpack" => unpack(runs),
        "pull" => pull(runs),
        "start" => start(runs, baseline),
        "build" => build(runs),
        "near-native" => near_native(runs),
        "density" => density(density_n, vm_n),
        other => {
            bail!("unknown benchmark {other:?}: try `cargo xtask bench unpack`, `pull`, `start`, `near-native`, `density` or `build`")
        }
    }
}

/// `cargo build --release` of `packages`; returns the workspace root.
fn build_release(packages: &[&str]) -> Result<PathBuf> {
    let root = testkit::workspace_root();
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .args(["build", "--release", "--quiet"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    run(&mut cmd)?;
    Ok(root)
}

/// A minbase Debian root filesystem, built once and kept under target/.
fn debian_rootfs(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("debootstrap-rootfs");
    if rootfs.join("etc/debian_version").exists() {
        return Ok(rootfs);
    }
    let tmp = dir.join("debootstrap-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian"))
    .context("building the benchmark image with debootstrap (it needs Debian's package mirror)")?;
    std::fs::rename(&tmp, &rootfs)?;
    Ok(rootfs)
}

/// Builds our release binaries and the benchmark image `bench:latest` in
/// `target/bench/store` (debootstrapped once); returns (workspace, bench
/// dir, store, rootfs).
fn bench_image() -> Result<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let root = build_release(&["chapter-04", "chapter-05"])?;
    let ours = root.join("target/release/chapter-04");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let rootfs = debian_rootfs(&dir)?;
    let store = dir.join("store");
    let have_image = Command::new(&ours)
        .arg("--store")
        .arg(&store)
        .args(["inspect", "bench:latest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_image {
        run(Command::new(&ours)
            .arg("--store")
            .arg(&store)
            .args(["import", "--rootfs"])
            .arg(&rootfs)
            .arg("bench:latest"))?;
    }
    Ok((root, dir, store, rootfs))
}

/// The one layer blob of `bench:latest` in `store`: index.json → manifest
/// → its layer.
fn bench_layer(store: &Path) -> Result<PathBuf> {
    let index = json(&store.join("index.json"))?;
    let manifest_digest = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "bench:latest")
        })
        .and_then(|d| d["digest"].as_str())
        .context("bench:latest is not in the store's index")?
        .to_string();
    let blob = |digest: &str| {
        store
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest = json(&blob(&manifest_digest))?;
    Ok(blob(
        manifest["layers"][0]["digest"]
            .as_str()
            .context("no layer")?,
    ))
}

fn json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn unpack(runs: u32) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the unpack benchmark needs root (layers hold device nodes and whiteouts)");
    }
    install::install_packages(install::BENCH_PACKAGES)?;
    let (root, dir, store, rootfs) = bench_image()?;
    let layer = bench_layer(&store)?;
    let size_mb = std::fs::metadata(&layer)?.len() as f64 / 1e6;
    let ours = root.join("target/release/chapter-04");

    // Everything the timed commands touch goes on a tmpfs, unmounted after.
    let fs = TmpFs::mount(&dir.join("tmpfs"), "4g")?;
    run(Command::new("cp").arg("-a").arg(&store).arg(fs.path()))?;
    let store = fs.path().join("store");
    let layer = store.join(layer.strip_prefix(dir.join("store"))?);
    let out = fs.path().join("out");
    let (s, o, l) = (store.display(), out.display(), layer.display());
    let results = dir.join("unpack.json");
    run(Command::new("hyperfine")
        .args([
            "--runs",
            &runs.to_string(),
            "--warmup",
            "1",
            "--style",
            "basic",
            "--export-json",
        ])
        .arg(&results)
        .args(["--prepare", &format!("rm -rf {s}/snapshots/* {o}")])
        .args(["--prepare", &format!("rm -rf {o}")])
        .args(["--prepare", &format!("rm -rf {o} && mkdir -p {o}")])
        .args(["--prepare", "true"])
        .args([
            "-n",
            "mini-docker (chapter-04 unpack)",
            &format!("{} --store {s} unpack bench:latest", ours.display()),
        ])
        .args([
            "-n",
            "umoci unpack",
            &format!("umoci unpack --image {s}:bench:latest {o}"),
        ])
        .args(["-n", "tar -xzf", &format!("tar -xzf {l} -C {o}")])
        .args(["-n", INFLATE_FLOOR, &inflate_floor(&layer)]))?;
    drop(fs);

    let rows = crate::report::hyperfine_rows(&results)?;
    crate::report::publish(
        "unpack",
        &format!(
            "Unpacking a {size_mb:.0} MB gzip layer ({} unpacked) onto a tmpfs, {runs} runs",
            human_dir_size(&rootfs)
        ),
        &rows,
        INFLATE_FLOOR,
        &[
            "The floor is zlib inflating the same blob to nowhere: no tar, no files, no \
           digests. Target: mini-docker within 1.2× of it, and umoci at least 2× slower \
           than mini-docker."
                .to_string(),
        ],
    )?;
    Ok(())
}

/// The row that is the floor of every unpack: the layer inflated alone.
const INFLATE_FLOOR: &str = "zlib inflate alone (the floor)";

/// zlib (Python's binding of the C library) inflating `layer` in 1 MiB
/// reads, the output dropped: what any unpack of this blob must at least do.
fn inflate_floor(layer: &Path) -> String {
    format!(
        "python3 -c 'import sys, zlib\nd = zlib.decompressobj(31)\nf = open(sys.argv[1], \"rb\")\nwhile c := f.read(1 << 20): d.decompress(c)' {}",
        layer.display()
    )
}

fn human_dir_size(dir: &Path) -> String {
    let out = Command::new("du").arg("-sh").arg(dir).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_string()
    })
    .unwrap_or_else(|_| "?".into())
}

/// A tmpfs mounted for the benchmark; unmounted (and its directory
/// removed) when dropped, also when the benchmark fails halfway.
struct TmpFs(PathBuf);

impl TmpFs {
    fn mount(at: &Path, size: &str) -> Result<TmpFs> {
        std::fs::create_dir_all(at)?;
        nix::mount::mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .with_context(|| format!("mounting a tmpfs at {}", at.display()))?;
        Ok(TmpFs(at.to_path_buf()))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpFs {
    fn drop(&mut self) {
        if nix::mount::umount2(&self.0, nix::mount::MntFlags::empty()).is_err() {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A docker-registry on a loopback port with its storage under `dir`;
/// stopped when dropped.
struct LocalRegistry(std::process::Child, String);

impl LocalRegistry {
    fn start(dir: &Path) -> Result<LocalRegistry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("registry-data").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let registry = LocalRegistry(child, addr);
        for _ in 0..200 {
            if std::net::TcpStream::connect(&registry.1).is_ok() {
                return Ok(registry);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bail!("docker-registry did not start on {}", registry.1)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pull(runs: u32) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the pull benchmark needs root (podman's storage, and our unpack's whiteouts)");
    }
    install::install_packages(&[
        "debootstrap",
        "hyperfine",
        "umoci",
        "skopeo",
        "podman",
        "docker-registry",
    ])?;
    let (root, dir, store, rootfs) = bench_image()?;
    let pull_bin = root.join("target/release/chapter-05");
    let registry = LocalRegistry::start(&dir)?;
    let image = format!("{}/bench:latest", registry.1);
    run(Command::new(&pull_bin)
        .arg("--store")
        .arg(&store)
        .args(["push", "bench:latest", &image]))?;

    let fs = TmpFs::mount(&dir.join("tmpfs"), "6g")?;
    let t = fs.path().display();
    let results = dir.join("pull.json");
    run(Command::new("hyperfine")
        .args(["--runs", &runs.to_string(), "--warmup", "1", "--style", "basic", "--export-json"])
        .arg(&results)
        .args(["--prepare", &format!("rm -rf {t}/ours")])
        .args(["--prepare", &format!("rm -rf {t}/podman {t}/podman-run")])
        .args(["--prepare", &format!("rm -rf {t}/skopeo {t}/bundle")])
        .args(["--prepare", "true"])
        .args(["-n", "mini-docker (chapter-05 pull)", &format!("{} --store {t}/ours pull {image}", pull_bin.display())])
        .args([
            "-n",
            "podman pull",
            &format!("podman --root {t}/podman --runroot {t}/podman-run --storage-driver overlay pull -q --tls-verify=false {image}"),
        ])
        .args([
            "-n",
            "skopeo copy + umoci unpack",
            &format!(
                "skopeo copy -q --src-tls-verify=false docker://{image} oci:{t}/skopeo:bench && umoci unpack --image {t}/skopeo:bench {t}/bundle"
            ),
        ])
        .args(["-n", INFLATE_FLOOR, &inflate_floor(&bench_layer(&store)?)]))?;
    drop(fs);
    drop(registry);

    let rows = crate::report::hyperfine_rows(&results)?;
    crate::report::publish(
        "pull",
        &format!(
            "Pulling and unpacking {image} ({} unpacked) from a loopback docker-registry onto a tmpfs, {runs} runs",
            human_dir_size(&rootfs)
        ),
        &rows,
        INFLATE_FLOOR,
        &["The floor is zlib inflating the layer blob to nowhere (no network, no files). \
           Target: mini-docker within 1.2× of it, podman at least 2× slower than mini-docker."
            .to_string()],
    )?;
    Ok(())
}

/// A process started for the benchmark, killed (with its process group)
/// when dropped.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the process group we made this child lead.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn service(cmd: &mut Command, log: &Path) -> Result<Service> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(log)?;
    let child = cmd
        .process_group(0)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    Ok(Service(child))
}

fn wait_for_socket(path: &Path, what: &str) -> Result<()> {
    for _ in 0..600 {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bail!("{what} did not answer on {}", path.display())
}

/// mini-dockerd and mini-docker built in release from git revision `rev`,
/// in a worktree of its own (removed after); returns their directory.
fn build_baseline(root: &Path, dir: &Path, rev: &str) -> Result<PathBuf> {
    let src = dir.join("baseline-src");
    let target = dir.join("baseline-target");
    let _ = Command::new("git")
        .current_dir(root)
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .status();
    run(Command::new("git")
        .current_dir(root)
        .args(["worktree", "add", "--detach"])
        .arg(&src)
        .arg(rev))
    .with_context(|| format!("checking out {rev} for the baseline"))?;
    let built = run(cargo()
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--release", "--quiet", "-p", "chapter-06"]));
    let _ = Command::new("git")
        .current_dir(root)
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .status();
    built.with_context(|| format!("building mini-docker at {rev}"))?;
    Ok(target.join("release"))
}

fn start(runs: u32, baseline: Option<&str>) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the start benchmark needs root (every engine in it does)");
    }
    install::install_packages(&[
        "hyperfine",
        "podman",
        "runc",
        "crun",
        "docker.io",
        "qemu-system-x86",
        "linux-image-cloud-amd64",
        "busybox-static",
        "cpio",
    ])?;
    let root = build_release(&["chapter-04", "chapter-06"])?;
    let rel = root.join("target/release");
    let rootfs = testkit::fixture::rootfs();
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let baseline = match baseline {
        Some(rev) => Some((rev.to_string(), build_baseline(&root, &dir, rev)?)),
        None => None,
    };
    let before = testkit::peers::host_state();
    let fs = TmpFs::mount(&dir.join("start-tmpfs"), "2g")?;
    let t = fs.path().to_path_buf();
    let result = start_in(runs, &rel, baseline.as_ref(), &rootfs, &t, &dir);
    // The daemons' overlays, before the tmpfs itself goes.
    testkit::unmount_below(&t);
    testkit::janitor::sweep_cgroups("mini-docker-bench-");
    drop(fs);
    // podman's cleanup processes (conmon, `podman container cleanup`) run
    // on after each container; let them finish first.
    testkit::wait_for_podman_cleanup(std::time::Duration::from_secs(10));
    // podman and dockerd leave state outside their roots (run dirs, a blob
    // cache, parent cgroups): remove what was not there before.
    testkit::peers::remove_new_host_state(&before);
    result
}

fn start_in(
    runs: u32,
    rel: &Path,
    baseline: Option<&(String, PathBuf)>,
    rootfs: &Path,
    t: &Path,
    dir: &Path,
) -> Result<()> {
    let p = |name: &str| t.join(name).display().to_string();
    // The fixture as an image in our store, and as a `docker save` archive
    // for podman and docker.
    fixture_image(rel, rootfs, t)?;
    let ch04 = rel.join("chapter-04");

    // mini-dockerd
    let _ours = service(
        Command::new(rel.join("mini-dockerd"))
            .args([
                "--root",
                &p("ours"),
                "-H",
                &format!("unix://{}", p("ours.sock")),
            ])
            .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-bench-"),
        &dir.join("mini-dockerd.log"),
    )?;
    wait_for_socket(&t.join("ours.sock"), "mini-dockerd")?;

    // The same under --userns-remap (root's IDs from 400000, in subuid
    // files of the benchmark's own), on a root of its own with the same
    // image imported.
    for file in ["subuid", "subgid"] {
        std::fs::write(t.join(file), "root:400000:65536\n")?;
    }
    run(Command::new(&ch04)
        .arg("--store")
        .arg(p("remapped/images"))
        .args(["import", "--rootfs"])
        .arg(rootfs)
        .arg("docker.io/library/fixture:latest"))?;
    let _remapped = service(
        Command::new(rel.join("mini-dockerd"))
            .args([
                "--root",
                &p("remapped"),
                "-H",
                &format!("unix://{}", p("remapped.sock")),
                "--userns-remap",
                "root",
            ])
            .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-bench-")
            .env("MINI_DOCKER_SUBUID", t.join("subuid"))
            .env("MINI_DOCKER_SUBGID", t.join("subgid")),
        &dir.join("mini-dockerd-remapped.log"),
    )?;
    wait_for_socket(&t.join("remapped.sock"), "mini-dockerd --userns-remap")?;

    // The baseline build, on a root of its own with the same image.
    let _baseline = match baseline {
        Some((_, bin)) => {
            run(Command::new(&ch04)
                .arg("--store")
                .arg(p("baseline/images"))
                .args(["import", "--rootfs"])
                .arg(rootfs)
                .arg("docker.io/library/fixture:latest"))?;
            let daemon = service(
                Command::new(bin.join("mini-dockerd"))
                    .args([
                        "--root",
                        &p("baseline"),
                        "-H",
                        &format!("unix://{}", p("baseline.sock")),
                    ])
                    .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-bench-"),
                &dir.join("mini-dockerd-baseline.log"),
            )?;
            wait_for_socket(&t.join("baseline.sock"), "the baseline mini-dockerd")?;
            Some(daemon)
        }
        None => None,
    };

    // dockerd (Debian's docker.io) on its own data root and socket, with
    // no networking to set up (every run is --network none).
    let dockerd = testkit::peers::Dockerd::start(&t.join("dockerd"));
    let docker = format!("/usr/bin/docker -H unix://{}", dockerd.socket.display());
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("{docker} load -q -i {}", p("fixture.tar"))))?;

    // podman: runc and cgroupfs (crun refuses hybrid cgroups), limits
    // within root's hard limits (root here lacks CAP_SYS_RESOURCE).
    let podman = format!(
        "podman --root {} --runroot {} --storage-driver overlay --runtime runc --cgroup-manager cgroupfs",
        p("podman"), p("podman-run")
    );
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("{podman} load -q -i {}", p("fixture.tar"))))?;

    // runc: a bundle of the same root filesystem, the default spec with
    // /bin/true and no terminal.
    let bundle = t.join("bundle");
    std::fs::create_dir_all(&bundle)?;
    run(Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(bundle.join("rootfs")))?;
    run(Command::new("runc").arg("spec").current_dir(&bundle))?;
    let spec = bundle.join("config.json");
    let mut config = json(&spec)?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    std::fs::write(&spec, serde_json::to_vec_pretty(&config)?)?;

    let results = dir.join("start.json");
    let cli = |bin: &Path, sock: &str| {
        format!(
            "{} -H unix://{}",
            bin.join("mini-docker").display(),
            p(sock)
        )
    };
    let run_true = "run --rm --network none fixture /bin/true";
    let mut commands: Vec<(String, String)> = vec![
        (
            "mini-docker".into(),
            format!("{} {run_true}", cli(rel, "ours.sock")),
        ),
        (
            "mini-docker remapped".into(),
            format!("{} {run_true}", cli(rel, "remapped.sock")),
        ),
        (
            "mini-docker unconfined".into(),
            format!(
                "{} run --rm --network none --security-opt seccomp=unconfined fixture /bin/true",
                cli(rel, "ours.sock")
            ),
        ),
    ];
    if let Some((rev, bin)) = baseline {
        commands.push((
            format!("mini-docker at {rev}"),
            format!("{} {run_true}", cli(bin, "baseline.sock")),
        ));
    }
    commands.extend([
        ("podman".into(), format!("{podman} run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 fixture /bin/true")),
        ("docker".into(), format!("{docker} {run_true}")),
        ("runc (floor)".into(), format!("runc --root {} run --bundle {} b$$", p("runc"), bundle.display())),
    ]);
    // crun refuses a hybrid host's cgroups while the cgroup2 mount shows:
    // it runs in a mount namespace of its own with that mount hidden.
    let hide_cgroup2 = if std::path::Path::new("/sys/fs/cgroup/unified").is_dir() {
        "umount /sys/fs/cgroup/unified; "
    } else {
        ""
    };
    commands.push((
        "crun".into(),
        format!(
            "unshare -m --propagation private sh -c '{hide_cgroup2}exec crun --root {} run --bundle {} c$$'",
            p("crun"),
            bundle.display()
        ),
    ));
    commands.push(("host /bin/true".into(), "/bin/true".into()));
    let r = hyperfine(runs, 3, &results, &commands)?;
    let median = |name: &str| median_ms(&r, &commands, name);
    let mut rows = crate::report::hyperfine_rows(&results)?;

    // A VM: QEMU's microvm booting the distribution's kernel with a busybox
    // initramfs that runs the same /bin/true and powers off. Fewer runs: a
    // boot under TCG takes seconds.
    let mut notes = Vec::new();
    let vm = Vm::find(t).and_then(|vm| {
        let initrd = Vm::initrd(t, "true", TRUE_INIT, &[])?;
        Ok((vm.command(&initrd, "none"), vm.accel))
    });
    match vm {
        Ok((command, accel)) => {
            let vm = (format!("microVM ({accel})"), command);
            let vm_results = dir.join("start-vm.json");
            hyperfine(runs.min(5), 1, &vm_results, std::slice::from_ref(&vm))?;
            rows.extend(crate::report::hyperfine_rows(&vm_results)?);
            if accel != "KVM" {
                notes.push(format!(
                    "The microVM ran under {accel}: software emulation, far slower than a \
                     hardware-virtualised boot. {}",
                    FIRECRACKER_CITED
                ));
            }
        }
        Err(e) => rows.push(crate::report::Row::Missing {
            name: "microVM".into(),
            why: format!("{e:#}"),
        }),
    }
    let ours = median("mini-docker");
    let remapped = median("mini-docker remapped");
    notes.push(format!(
        "Targets: podman ≥ 5× mini-docker (now {:.1}×), docker ≥ 7× (now {:.1}×), mini-docker \
         within 1.2× of runc (now {:.2}×). Under --userns-remap: {:.2}× the plain run; the \
         seccomp filter costs {:.2}×.",
        median("podman") / ours,
        median("docker") / ours,
        ours / median("runc (floor)"),
        remapped / ours,
        ours / median("mini-docker unconfined"),
    ));
    if let Some((rev, _)) = baseline {
        let base = median(&format!("mini-docker at {rev}"));
        notes.push(format!(
            "Against {rev}: mini-docker / baseline = {:.2}, remapped / baseline = {:.2} (target ≤ 1.2).",
            ours / base,
            remapped / base
        ));
    }
    crate::report::publish(
        "start",
        &format!("`{run_true}`, start to exit, {runs} runs"),
        &rows,
        "mini-docker",
        &notes,
    )?;
    Ok(())
}

/// A published figure for hardware-virtualised microVMs, cited (not
/// measured here), for where this machine's VM rows are emulated.
const FIRECRACKER_CITED: &str = "For comparison, cited and not measured here: Firecracker \
    reports starting a microVM's user space in as little as 125 ms with KVM \
    (firecracker-microvm.github.io; Agache et al., \"Firecracker: Lightweight \
    Virtualization for Serverless Applications\", NSDI 2020).";

/// A QEMU microvm booting the distribution's kernel (linux-image-cloud-amd64)
/// with an initramfs of ours: busybox-static, an /init script, and any
/// static helpers. No disk, no network, no firmware.
struct Vm {
    kernel: PathBuf,
    /// How it is accelerated, as the tables say it.
    accel: &'static str,
    accel_args: String,
}

/// The init of the start benchmark's VM: the same /bin/true, then off.
const TRUE_INIT: &str =
    "/bin/busybox true\n/bin/busybox echo guest-ran-true\n/bin/busybox poweroff -f\n";

impl Vm {
    /// KVM when a guest boots with it here within 20 s (nested KVM may
    /// refuse the CPU model: `-cpu host`, then `qemu64`), else TCG.
    fn find(t: &Path) -> Result<Vm> {
        let kernel = std::fs::read_dir("/boot")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .max()
            .context("no kernel in /boot (linux-image-cloud-amd64)")?;
        let probe = Vm::initrd(t, "probe", TRUE_INIT, &[])?;
        let mut vm = Vm {
            kernel,
            accel: "KVM",
            accel_args: String::new(),
        };
        let boots = |vm: &Vm, seconds: &str| {
            Command::new("timeout")
                .args([seconds, "sh", "-c", &vm.command(&probe, "stdio")])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("guest-ran-true"))
        };
        let kvm = crate::report::kvm_usable();
        if kvm {
            for cpu in ["host", "qemu64"] {
                vm.accel_args = format!("-accel kvm -cpu {cpu}");
                if boots(&vm, "20") {
                    return Ok(vm);
                }
            }
        }
        vm.accel_args = "-accel tcg".into();
        vm.accel = if kvm {
            "TCG: KVM refused this guest"
        } else {
            "TCG: no usable KVM"
        };
        if !boots(&vm, "90") {
            bail!("the microVM did not boot under TCG within 90 s");
        }
        Ok(vm)
    }

    /// An initramfs (newc cpio) of busybox, `init` (a busybox sh script)
    /// and `bins` (static executables, put in /bin).
    fn initrd(t: &Path, name: &str, init: &str, bins: &[&Path]) -> Result<PathBuf> {
        let root = t.join(format!("initramfs-{name}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bin"))?;
        std::fs::copy("/usr/bin/busybox", root.join("bin/busybox"))
            .context("busybox-static's /usr/bin/busybox")?;
        for bin in bins {
            let file = bin.file_name().context("a helper without a name")?;
            std::fs::copy(bin, root.join("bin").join(file))?;
        }
        std::fs::write(root.join("init"), format!("#!/bin/busybox sh\n{init}"))?;
        run(Command::new("chmod").arg("755").arg(root.join("init")))?;
        let initrd = t.join(format!("initrd-{name}.cpio"));
        run(Command::new("sh").current_dir(&root).arg("-c").arg(format!(
            "find . | cpio -o -H newc --quiet > {}",
            initrd.display()
        )))?;
        Ok(initrd)
    }

    /// The command line that boots `initrd`, its console on `serial`
    /// (`stdio`, or `none` when only the time counts).
    fn command(&self, initrd: &Path, serial: &str) -> String {
        format!(
            "qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off {} -m 256 \
             -nodefaults -no-user-config -display none -serial {serial} -no-reboot \
             -kernel {} -initrd {} -append 'console=ttyS0 quiet panic=-1'",
            self.accel_args,
            self.kernel.display(),
            initrd.display()
        )
    }
}

/// A process's proportional set size (its private pages, and its share of
/// pages it shares), in bytes, from /proc/PID/smaps_rollup.
fn pss(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The PIDs whose command line contains every one of `words`.
fn pids_with(words: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if words.iter().all(|w| text.contains(w)) {
            out.push(pid);
        }
    }
    out
}

/// Memory charged to the v1 or v2 cgroups named `prefix…`, in bytes.
fn cgroup_usage(prefix: &str) -> (u64, usize) {
    let dirs: Vec<PathBuf> = testkit::janitor::find_cgroups(prefix)
        .into_iter()
        .filter(|d| d.join("memory.usage_in_bytes").exists() || d.join("memory.current").exists())
        .collect();
    let bytes = dirs
        .iter()
        .filter_map(|d| {
            std::fs::read_to_string(d.join("memory.usage_in_bytes"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.current")))
                .ok()
        })
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum();
    (bytes, dirs.len())
}

/// `bench density`: `n` idle containers (`sleep`) started one after the
/// other; what the engine's processes take per container (the daemon's
/// growth and every monitor, PSS), what the kernel charges each container's
/// cgroup, and how long the starts took; the same for podman; and `vm_n`
/// idle microVMs (the QEMU process's PSS each). Everything is removed after.
fn density(n: u32, vm_n: u32) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the density benchmark needs root (every engine in it does)");
    }
    install::install_packages(&[
        "podman",
        "runc",
        "qemu-system-x86",
        "linux-image-cloud-amd64",
        "busybox-static",
        "cpio",
    ])?;
    let root = build_release(&["chapter-04", "chapter-06"])?;
    let rel = root.join("target/release");
    let rootfs = testkit::fixture::build()?;
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let before = testkit::peers::host_state();
    let fs = TmpFs::mount(&dir.join("density-tmpfs"), "4g")?;
    let t = fs.path().to_path_buf();
    let result = density_in(n, vm_n, &rel, &rootfs, &t, &dir);
    testkit::unmount_below(&t);
    testkit::janitor::sweep_cgroups("mini-docker-bench-");
    drop(fs);
    testkit::wait_for_podman_cleanup(std::time::Duration::from_secs(10));
    testkit::peers::remove_new_host_state(&before);
    result
}

fn density_in(n: u32, vm_n: u32, rel: &Path, rootfs: &Path, t: &Path, dir: &Path) -> Result<()> {
    let mib = |b: f64| b / (1u64 << 20) as f64;
    fixture_image(rel, rootfs, t)?;
    let sock = t.join("ours.sock");
    let daemon = service(
        Command::new(rel.join("mini-dockerd"))
            .arg("--root")
            .arg(t.join("ours"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-bench-"),
        &dir.join("mini-dockerd-density.log"),
    )?;
    wait_for_socket(&sock, "mini-dockerd")?;
    let cli = |args: &[&str]| -> Result<()> {
        run(Command::new(rel.join("mini-docker"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(args)
            .stdout(std::process::Stdio::null()))
    };
    let daemon_pid = daemon.0.id() as i32;
    let idle_daemon = pss(daemon_pid);
    let started = std::time::Instant::now();
    for i in 0..n {
        let name = format!("d{i}");
        cli(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "fixture",
            "sleep",
            "3600",
        ])?;
    }
    let ours_start = started.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let root_arg = t.join("ours").display().to_string();
    let monitors = pids_with(&["monitor", &root_arg]);
    let engine = (pss(daemon_pid).saturating_sub(idle_daemon)
        + monitors.iter().map(|p| pss(*p)).sum::<u64>()) as f64
        / f64::from(n);
    let (charged, groups) = cgroup_usage("mini-docker-bench-");
    let kernel = charged as f64 / groups.max(1) as f64;
    let names: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    cli(&rm)?;
    drop(daemon);

    // podman, with its own roots: conmon per container, no daemon.
    let podman = format!(
        "podman --root {} --runroot {} --storage-driver overlay --runtime runc --cgroup-manager cgroupfs",
        t.join("podman").display(),
        t.join("podman-run").display()
    );
    let sh = |script: String| {
        run(Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(std::process::Stdio::null()))
    };
    sh(format!(
        "{podman} load -q -i {}",
        t.join("fixture.tar").display()
    ))?;
    let started = std::time::Instant::now();
    for i in 0..n {
        sh(format!(
            "{podman} run -d --name p{i} --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 fixture sleep 3600"
        ))?;
    }
    let podman_start = started.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let conmons = pids_with(&["conmon", &t.join("podman").display().to_string()]);
    let podman_engine = conmons.iter().map(|p| pss(*p)).sum::<u64>() as f64 / f64::from(n);
    let (podman_charged, podman_groups) = cgroup_usage("libpod-");
    let podman_kernel = podman_charged as f64 / podman_groups.max(1) as f64;
    sh(format!("{podman} rm -f -t 0 -a"))?;

    // microVMs: each boots the busybox initramfs and idles.
    let vm = Vm::find(t)?;
    let initrd = Vm::initrd(
        t,
        "idle",
        "/bin/busybox echo guest-idle\nexec /bin/busybox sleep 3600\n",
        &[],
    )?;
    let mut vms = Vec::new();
    for i in 0..vm_n {
        let log = std::fs::File::create(t.join(format!("vm{i}.log")))?;
        vms.push(Service({
            use std::os::unix::process::CommandExt;
            Command::new("sh")
                .arg("-c")
                .arg(format!("exec {}", vm.command(&initrd, "stdio")))
                .process_group(0)
                // Not a terminal: qemu reads its stdio, and a
                // background group reading a terminal is stopped.
                .stdin(std::process::Stdio::null())
                .stdout(log)
                .spawn()?
        }));
    }
    // Booted when each has said so (under TCG a boot takes seconds).
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(60 + 10 * u64::from(vm_n));
    while (0..vm_n).any(|i| {
        !std::fs::read_to_string(t.join(format!("vm{i}.log")))
            .unwrap_or_default()
            .contains("guest-idle")
    }) {
        if std::time::Instant::now() > deadline {
            let said = std::fs::read_to_string(t.join("vm0.log")).unwrap_or_default();
            bail!("the microVMs did not all boot in time; the first said:\n{said}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let per_vm =
        vms.iter().map(|v| pss(v.0.id() as i32)).sum::<u64>() as f64 / f64::from(vm_n.max(1));
    drop(vms);

    let ours_total = engine + kernel;
    let podman_total = podman_engine + podman_kernel;
    let table = vec![
        vec![
            "".to_string(),
            "engine per container (PSS)".into(),
            "kernel, cgroup charge per container".into(),
            "total per container".into(),
            format!("time to start {n}"),
        ],
        vec![
            "mini-docker".into(),
            format!("{:.2} MiB", mib(engine)),
            format!("{:.2} MiB", mib(kernel)),
            format!("{:.2} MiB", mib(ours_total)),
            format!("{ours_start:.1} s"),
        ],
        vec![
            "podman (runc, conmon)".into(),
            format!("{:.2} MiB", mib(podman_engine)),
            format!("{:.2} MiB", mib(podman_kernel)),
            format!("{:.2} MiB", mib(podman_total)),
            format!("{podman_start:.1} s"),
        ],
        vec![
            format!("microVM ({}), {vm_n} of them", vm.accel),
            format!("{:.1} MiB (QEMU process)", mib(per_vm)),
            "–".into(),
            format!("{:.1} MiB", mib(per_vm)),
            "–".into(),
        ],
    ];
    crate::report::publish_table(
        "density",
        &format!("{n} idle containers (`sleep 3600`), and {vm_n} idle microVMs"),
        &table,
        &[format!(
            "Containers per VM on the same memory: {:.0} (mini-docker), {:.0} (podman); target ≥ 10. \
             Engine memory per idle container: {:.2} MiB (target < 2 MiB). The engine's column is \
             the daemon's growth plus every monitor (mini-docker: one small process per container, \
             a monitor) or every conmon (podman); the kernel's is what each container's cgroup is \
             charged (its processes, page cache, kernel objects).",
            per_vm / ours_total,
            per_vm / podman_total,
            mib(engine)
        )],
    )?;
    Ok(())
}

/// The workloads of `bench near-native` (`facts work KIND N`), sized to
/// take a few hundred milliseconds natively.
const WORKLOADS: [(&str, u64, &str); 3] = [
    (
        "cpu",
        100_000_000,
        "CPU-bound: 10^8 rounds of integer mixing",
    ),
    ("mem", 10, "memory bandwidth: 10 copies of 64 MiB"),
    ("syscalls", 1_000_000, "syscall-heavy: 10^6 getppid(2)"),
];

/// `bench near-native`: each workload timed inside (start-up excluded) on
/// the host, in a mini-docker container (all defaults: seccomp, cgroups,
/// namespaces) and in the microVM; as fractions of the host's speed.
fn near_native(runs: u32) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the near-native benchmark needs root (mini-dockerd does)");
    }
    install::install_packages(&[
        "qemu-system-x86",
        "linux-image-cloud-amd64",
        "busybox-static",
        "cpio",
    ])?;
    let root = build_release(&["chapter-04", "chapter-06"])?;
    let rel = root.join("target/release");
    let rootfs = testkit::fixture::build()?;
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let fs = TmpFs::mount(&dir.join("near-native-tmpfs"), "1g")?;
    let t = fs.path().to_path_buf();
    let result = near_native_in(runs, &rel, &rootfs, &t, &dir);
    testkit::unmount_below(&t);
    testkit::janitor::sweep_cgroups("mini-docker-bench-");
    drop(fs);
    result
}

fn near_native_in(runs: u32, rel: &Path, rootfs: &Path, t: &Path, dir: &Path) -> Result<()> {
    let facts = rootfs.join("bin/facts");
    let ms_of = |out: &[u8]| -> Vec<f64> {
        String::from_utf8_lossy(out)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
            .filter_map(|v| v["ms"].as_f64())
            .collect()
    };
    let median = |mut v: Vec<f64>| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    fixture_image(rel, rootfs, t)?;
    let sock = t.join("ours.sock");
    let _daemon = service(
        Command::new(rel.join("mini-dockerd"))
            .arg("--root")
            .arg(t.join("ours"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-bench-"),
        &dir.join("mini-dockerd-near-native.log"),
    )?;
    wait_for_socket(&sock, "mini-dockerd")?;
    let vm = Vm::find(t)?;
    let vm_runs = runs.clamp(1, 3);
    let mut init = String::new();
    for (kind, n, _) in WORKLOADS {
        for _ in 0..vm_runs {
            init += &format!("/bin/facts work {kind} {n}\n");
        }
    }
    init += "/bin/busybox poweroff -f\n";
    let initrd = Vm::initrd(t, "work", &init, &[&facts])?;
    eprintln!(
        "booting the microVM ({}) for {} workload runs",
        vm.accel,
        3 * vm_runs
    );
    let booted = Command::new("sh")
        .arg("-c")
        .arg(vm.command(&initrd, "stdio"))
        .output()?;
    let in_vm = String::from_utf8_lossy(&booted.stdout).into_owned();

    let mut table = vec![vec![
        "workload".to_string(),
        "host".into(),
        "mini-docker".into(),
        format!("microVM ({})", vm.accel),
        "container ÷ host".into(),
        "VM ÷ host".into(),
    ]];
    let mut cpu_ratio = f64::NAN;
    for (kind, n, what) in WORKLOADS {
        let mut host = Vec::new();
        let mut container = Vec::new();
        for _ in 0..runs {
            let out = Command::new(&facts)
                .args(["work", kind, &n.to_string()])
                .output()?;
            host.extend(ms_of(&out.stdout));
            let out = Command::new(rel.join("mini-docker"))
                .arg("-H")
                .arg(format!("unix://{}", sock.display()))
                .args([
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "fixture",
                    "facts",
                    "work",
                    kind,
                ])
                .arg(n.to_string())
                .output()?;
            container.extend(ms_of(&out.stdout));
        }
        let vm_ms: Vec<f64> = in_vm
            .lines()
            .filter(|l| l.contains(&format!("\"work\": \"{kind}\"")))
            .flat_map(|l| ms_of(l.as_bytes()))
            .collect();
        let (h, c, v) = (median(host), median(container), median(vm_ms));
        // Speed relative to the host: host time over the other's.
        if kind == "cpu" {
            cpu_ratio = h / c;
        }
        let ms = |x: f64| {
            if x.is_nan() {
                "failed".to_string()
            } else {
                format!("{x:.0} ms")
            }
        };
        table.push(vec![
            what.to_string(),
            ms(h),
            ms(c),
            ms(v),
            format!("{:.3}", h / c),
            format!("{:.3}", h / v),
        ]);
    }
    crate::report::publish_table(
        "near-native",
        &format!("Workloads timed inside, medians of {runs} runs ({vm_runs} in the VM)"),
        &table,
        &[format!(
            "\"÷ host\" is the speed as a fraction of the host's (host time ÷ time there): 1.000 \
             is native. Target: the CPU-bound workload in a container ≥ 0.98 (now {cpu_ratio:.3}). \
             The syscall-heavy one pays for the container's seccomp filter on every call."
        )],
    )?;
    Ok(())
}

fn build(runs: u32) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the build benchmark needs root (every builder in it does)");
    }
    install::install_packages(&["hyperfine", "buildah", "docker.io"])?;
    let root = build_release(&["chapter-04", "chapter-06"])?;
    let rel = root.join("target/release");
    let rootfs = testkit::fixture::rootfs();
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let before = testkit::peers::host_state();
    let fs = TmpFs::mount(&dir.join("build-tmpfs"), "4g")?;
    let t = fs.path().to_path_buf();
    let result = build_in(runs, &rel, &rootfs, &t, &dir);
    testkit::unmount_below(&t);
    testkit::janitor::sweep_cgroups("mini-docker-bench-");
    drop(fs);
    testkit::peers::remove_new_host_state(&before);
    result
}

fn build_in(runs: u32, rel: &Path, rootfs: &Path, t: &Path, dir: &Path) -> Result<()> {
    let p = |name: &str| t.join(name).display().to_string();
    fixture_image(rel, rootfs, t)?;
    let context = t.join("context");
    std::fs::create_dir_all(&context)?;
    testkit::build_context::write(&context);
    // Docker's classic builder refuses COPY --chmod ("requires BuildKit"):
    // every contender builds the file without it.
    let dockerfile = context.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile)?.replace("--chmod=750 ", "");
    std::fs::write(&dockerfile, text)?;
    let one_run = t.join("one-run");
    std::fs::create_dir_all(&one_run)?;
    let command = "echo built > /tmp/out";
    std::fs::write(
        one_run.join("Dockerfile"),
        format!("FROM fixture\nRUN {command}\n"),
    )?;

    let _ours = service(
        Command::new(rel.join("mini-dockerd"))
            .arg("--root")
            .arg(p("ours"))
            .arg("-H")
            .arg(format!("unix://{}", p("ours.sock")))
            .env("MINI_DOCKER_CGROUP_PREFIX", "mini-docker-bench-"),
        &dir.join("mini-dockerd-build.log"),
    )?;
    wait_for_socket(&t.join("ours.sock"), "mini-dockerd")?;
    let dockerd = testkit::peers::Dockerd::start(&t.join("dockerd"));
    let docker = format!(
        "DOCKER_BUILDKIT=0 /usr/bin/docker -H unix://{}",
        dockerd.socket.display()
    );
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("{docker} load -q -i {}", p("fixture.tar"))))?;
    let ours = format!(
        "{} -H unix://{}",
        rel.join("mini-docker").display(),
        p("ours.sock")
    );
    let buildah = format!(
        "buildah --root {} --runroot {} --storage-driver overlay",
        p("buildah"),
        p("buildah-run")
    );
    let base = format!("--build-arg BASE=docker-archive:{}", p("fixture.tar"));
    let ctx = context.display().to_string();
    let quiet = "> /dev/null";
    let commands: Vec<(String, String)> = vec![
        ("mini-docker cold".into(), format!("{ours} build -q --no-cache --network none -t built {ctx} {quiet}")),
        ("buildah cold".into(), format!("{buildah} bud -q --no-cache --layers --isolation chroot {base} -t built {ctx} {quiet}")),
        ("docker classic cold".into(), format!("{docker} build -q --no-cache --network none -t built {ctx} {quiet}")),
        ("mini-docker cached".into(), format!("{ours} build -q --network none -t built {ctx} {quiet}")),
        ("buildah cached".into(), format!("{buildah} bud -q --layers --isolation chroot {base} -t built {ctx} {quiet}")),
        ("docker classic cached".into(), format!("{docker} build -q --network none -t built {ctx} {quiet}")),
        ("mini-docker one RUN".into(), format!("{ours} build -q --no-cache --network none -t one {} {quiet}", one_run.display())),
        ("mini-docker run --rm".into(), format!("{ours} run --rm --network none fixture sh -c '{command}'")),
    ];
    let results = dir.join("build.json");
    let r = hyperfine(runs, 1, &results, &commands)?;
    let median = |name: &str| median_ms(&r, &commands, name);
    let mut table = format!(
        "The course's test Dockerfile (two stages, 24 steps, 3 RUNs), {runs} runs, medians:\n\n\
         | | mini-docker | buildah bud --layers | docker classic |\n|---|---:|---:|---:|\n"
    );
    for kind in ["cold", "cached"] {
        table += &format!(
            "| {kind} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            median(&format!("mini-docker {kind}")),
            median(&format!("buildah {kind}")),
            median(&format!("docker classic {kind}"))
        );
    }
    table += &format!(
        "\nRatios: cached buildah / mini-docker = {:.1} (target >= 3), cached docker / mini-docker = {:.1}; \
         cold buildah / mini-docker = {:.1}, cold docker / mini-docker = {:.1}.\n\
         A one-RUN build ({:.0} ms) / `run --rm` of the same command ({:.0} ms) = {:.2} (target <= 1.5).\n",
        median("buildah cached") / median("mini-docker cached"),
        median("docker classic cached") / median("mini-docker cached"),
        median("buildah cold") / median("mini-docker cold"),
        median("docker classic cold") / median("mini-docker cold"),
        median("mini-docker one RUN"),
        median("mini-docker run --rm"),
        median("mini-docker one RUN") / median("mini-docker run --rm"),
    );
    println!("\n{table}");
    std::fs::write(dir.join("build.md"), &table)?;
    // buildah's containers and images go with its root; its mounts first.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{buildah} rm -a >/dev/null 2>&1; {buildah} rmi -a -f >/dev/null 2>&1"
        ))
        .status();
    Ok(())
}

/// Runs hyperfine on (name, command) pairs; its JSON results.
fn hyperfine(
    runs: u32,
    warmup: u32,
    results: &Path,
    commands: &[(String, String)],
) -> Result<serde_json::Value> {
    let mut hyperfine = Command::new("hyperfine");
    hyperfine
        .args(["--runs", &runs.to_string(), "--warmup", &warmup.to_string()])
        .args(["--style", "basic", "--export-json"])
        .arg(results);
    for (name, command) in commands {
        hyperfine.args(["-n", name, command]);
    }
    run(&mut hyperfine)?;
    json(results)
}

/// The median of the command called `name`, in milliseconds.
fn median_ms(r: &serde_json::Value, commands: &[(String, String)], name: &str) -> f64 {
    let i = commands
        .iter()
        .position(|(n, _)| n == name)
        .unwrap_or(usize::MAX);
    r["results"][i]["median"].as_f64().unwrap_or(f64::NAN) * 1e3
}

/// The fixture as an image in `t/ours/images` (chapter 04's import), and
/// as a `docker save` archive `t/fixture.tar` for the peers.
fn fixture_image(rel: &Path, rootfs: &Path, t: &Path) -> Result<()> {
    let ch04 = rel.join("chapter-04");
    let store = t.join("ours/images");
    run(Command::new(&ch04)
        .arg("--store")
        .arg(&store)
        .args(["import", "--rootfs"])
        .arg(rootfs)
        .arg("docker.io/library/fixture:latest"))?;
    run(Command::new(&ch04)
        .arg("--store")
        .arg(&store)
        .args(["save", "docker.io/library/fixture:latest"])
        .arg(t.join("fixture.tar")))
}
