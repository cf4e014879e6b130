//! Chapter 03 experiments: copy-on-write, whiteouts, shared layers, and
//! what copying would cost. `cargo run -p chapter-03 -- help`. They need
//! root (mounting).

use anyhow::{anyhow, bail, Result};
use chapter_03::diff::{listing, write_layer};
use chapter_03::overlay::{self, Layers};
use chapter_03::Driver;
use clap::{Parser, Subcommand};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "chapter-03",
    about = "Chapter 03: union filesystems and copy-on-write"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy-up: change a file of the image and see where the change lands
    Cow,
    /// Delete a file and a directory of the image: whiteouts in both formats
    Whiteout,
    /// N containers on one base layer: the disk usage, shared not copied
    Share {
        #[arg(long, default_value_t = 5)]
        containers: usize,
    },
    /// Time to start a container on overlay vs on a copy of its root filesystem
    Startup {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// A container's changes as an OCI layer tar listing
    Diff,
}

fn main() -> std::process::ExitCode {
    chapter_01::course::install_hook();
    if let Err(e) = run(Cli::parse().command) {
        eprintln!("chapter-03: {e:#}");
        return std::process::ExitCode::from(125);
    }
    std::process::ExitCode::SUCCESS
}

fn run(command: Command) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        match command {
            Command::Cow | Command::Whiteout => own_namespaces()?,
            _ => bail!(
                "this experiment needs root: its containers run the fixture, whose files belong \
                 to the host's root, who is nobody in a user namespace of yours (they could not \
                 write /root); `cow` and `whiteout` run without root"
            ),
        }
    }
    match command {
        Command::Cow => cow(),
        Command::Whiteout => whiteout(),
        Command::Share { containers } => share(containers),
        Command::Startup { runs } => startup(runs),
        Command::Diff => diff(),
    }
}

/// For an ordinary user: a user namespace where they are root (their own
/// ID mapped to 0, as chapter 01's `user` experiment), and a mount
/// namespace it owns, where overlayfs mounts (Linux 5.11+) and nothing
/// reaches the host's mount table.
fn own_namespaces() -> Result<()> {
    use nix::sched::CloneFlags;
    let map = chapter_01::IdMap::for_current_process();
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|e| {
        anyhow::anyhow!("entering a user namespace: {e} (are user namespaces enabled? see `cargo xtask doctor`)")
    })?;
    chapter_01::user::write_id_maps(
        &map,
        &mut chapter_01::user::proc_writer(nix::unistd::getpid()),
    )
    .map_err(|e| anyhow::anyhow!("writing this process's ID maps: {e}"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    eprintln!("chapter-03: not root, so in a user namespace of your own (uid 0 inside is you)");
    Ok(())
}

fn say(s: &str) {
    println!("\n== {s}");
}

/// A scratch area with a base layer holding a few files.
fn scratch() -> Result<(tempfile::TempDir, Layers)> {
    let dir = tempfile::Builder::new().prefix("ch03-").tempdir()?;
    let base = dir.path().join("base");
    fs::create_dir_all(base.join("etc/app"))?;
    fs::write(base.join("greeting"), "hello from the image\n")?;
    fs::write(base.join("etc/app/config"), "debug=false\n")?;
    fs::write(base.join("etc/app/secret"), "image secret\n")?;
    let layers = Layers::new(
        vec![base],
        dir.path().join("upper"),
        dir.path().join("work"),
    );
    fs::create_dir_all(&layers.upper)?;
    fs::create_dir_all(&layers.work)?;
    fs::create_dir_all(dir.path().join("merged"))?;
    Ok((dir, layers))
}

fn show_tree(root: &Path) -> Result<()> {
    let mut entries = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel))? {
            let e = e?;
            let rel = rel.join(e.file_name());
            let meta = fs::symlink_metadata(root.join(&rel))?;
            let what = if chapter_03::whiteout::is_overlay_whiteout(&meta) {
                "whiteout (char device 0:0)".to_string()
            } else if meta.is_dir() {
                if chapter_03::whiteout::is_opaque(&root.join(&rel)) {
                    format!(
                        "directory, opaque ({}=y)",
                        chapter_03::whiteout::OverlayXattrs::here().opaque()
                    )
                } else {
                    "directory".to_string()
                }
            } else {
                format!("file, {} bytes", meta.len())
            };
            if meta.is_dir() {
                stack.push(rel.clone());
            }
            entries.push(format!("   {:<24} {what}", rel.display()));
        }
    }
    entries.sort();
    if entries.is_empty() {
        println!("   (empty)");
    }
    for e in entries {
        println!("{e}");
    }
    Ok(())
}

fn cow() -> Result<()> {
    let (dir, layers) = scratch()?;
    let merged = dir.path().join("merged");
    let _mount = overlay::mount(&layers, &merged).map_err(|e| anyhow!(e))?;
    say("before: the upper (container) layer is empty; merged shows the image");
    show_tree(&layers.upper)?;
    say("append a line to merged/greeting");
    fs::OpenOptions::new()
        .append(true)
        .open(merged.join("greeting"))?
        .write_all_line("and hello from the container")?;
    println!(
        "   merged/greeting: {:?}",
        fs::read_to_string(merged.join("greeting"))?
    );
    println!(
        "   lower/greeting:  {:?}  (the image is unchanged)",
        fs::read_to_string(layers.lower[0].join("greeting"))?
    );
    say("after: the changed file was copied up into the upper layer; everything else is still shared");
    show_tree(&layers.upper)?;
    Ok(())
}

trait WriteLine {
    fn write_all_line(&mut self, s: &str) -> std::io::Result<()>;
}
impl WriteLine for fs::File {
    fn write_all_line(&mut self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        writeln!(self, "{s}")
    }
}

fn whiteout() -> Result<()> {
    let (dir, layers) = scratch()?;
    let merged = dir.path().join("merged");
    let mount = overlay::mount(&layers, &merged).map_err(|e| anyhow!(e))?;
    say("rm merged/greeting; rm -r merged/etc/app; mkdir merged/etc/app; echo fresh > merged/etc/app/config");
    fs::remove_file(merged.join("greeting"))?;
    fs::remove_dir_all(merged.join("etc/app"))?;
    fs::create_dir(merged.join("etc/app"))?;
    fs::write(merged.join("etc/app/config"), "fresh\n")?;
    println!(
        "   merged/etc/app now holds: {:?}",
        fs::read_dir(merged.join("etc/app"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()?
    );
    say("the upper layer, in overlayfs's format");
    show_tree(&layers.upper)?;
    drop(mount);
    say("the same change as an OCI layer (cargo run -p chapter-03 -- diff shows more)");
    print!(
        "{}",
        indent(&listing(&write_layer(&layers.upper, Vec::new())?)?)
    );
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   {l}\n")).collect()
}

fn disk_usage(root: &Path) -> Result<u64> {
    Ok(chapter_03::copy::disk_usage(root)?)
}

fn fixture() -> Result<PathBuf> {
    chapter_01::fixture_rootfs().map_err(|e| anyhow::anyhow!(e))
}

fn container(rootfs: &Path, command: &[&str]) -> Result<i32> {
    let spec = chapter_01::Spec::new(rootfs, command.iter().map(|s| s.to_string()).collect());
    Ok(chapter_01::run(&spec)?)
}

fn share(n: usize) -> Result<()> {
    let base = fixture()?;
    let dir = tempfile::Builder::new().prefix("ch03-share-").tempdir()?;
    let mut mounts = Vec::new();
    for i in 0..n {
        let cdir = dir.path().join(format!("c{i}"));
        let m = Driver::Overlay
            .mount(std::slice::from_ref(&base), &cdir)
            .map_err(|e| anyhow!(e))?;
        container(
            m.merged(),
            &[
                "/bin/sh",
                "-c",
                &format!("echo container {i} was here > /root/note"),
            ],
        )?;
        mounts.push((cdir, m));
    }
    let base_kib = disk_usage(&base)? / 1024;
    let uppers: u64 = mounts
        .iter()
        .map(|(c, _)| disk_usage(&c.join("upper")).unwrap_or(0))
        .sum::<u64>()
        / 1024;
    say(&format!(
        "{n} containers ran on one base layer (the fixture image) and each wrote a file"
    ));
    println!("   base layer on disk:          {base_kib:>8} KiB (once)");
    println!("   all {n} upper layers together: {uppers:>8} KiB");
    println!(
        "   copying the rootfs instead:  {:>8} KiB",
        base_kib * n as u64
    );
    Ok(())
}

fn startup(runs: usize) -> Result<()> {
    let base = fixture()?;
    let dir = tempfile::Builder::new().prefix("ch03-startup-").tempdir()?;
    let mut results = Vec::new();
    for driver in [Driver::Overlay, Driver::Copy] {
        let mut total = 0.0;
        for i in 0..runs {
            let cdir = dir.path().join(format!("{driver:?}-{i}"));
            let start = Instant::now();
            let m = driver
                .mount(std::slice::from_ref(&base), &cdir)
                .map_err(|e| anyhow!(e))?;
            container(m.merged(), &["/bin/true"])?;
            total += start.elapsed().as_secs_f64();
            drop(m);
            fs::remove_dir_all(&cdir)?;
        }
        let ms = total / runs as f64 * 1e3;
        println!("   {driver:?}: prepare the rootfs and run /bin/true: {ms:.1} ms on average over {runs} runs");
        results.push(ms);
    }
    say(&format!(
        "copying is {:.1}x slower than overlay, for a {} KiB image; the gap grows with the image",
        results[1] / results[0],
        disk_usage(&base)? / 1024
    ));
    Ok(())
}

fn diff() -> Result<()> {
    let base = fixture()?;
    let dir = tempfile::Builder::new().prefix("ch03-diff-").tempdir()?;
    let m = Driver::Overlay
        .mount(std::slice::from_ref(&base), dir.path())
        .map_err(|e| anyhow!(e))?;
    let script = "echo hi > /root/new-file && echo changed >> /etc/passwd && rm /bin/vi && rm -r /home && mkdir -p /var/cache/app && ln -s /root/new-file /root/link && chmod 700 /tmp";
    say(&format!("a container runs: {script}"));
    container(m.merged(), &["/bin/sh", "-c", script])?;
    let tar = m.write_diff(Vec::new())?;
    say(&format!("its layer, {} bytes of tar:", tar.len()));
    print!("{}", indent(&listing(&tar)?));
    Ok(())
}
