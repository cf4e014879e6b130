//! Chapter 04 experiments: an image store you can look into.
//! `cargo run -p chapter-04 -- help`. Unpacking needs root (whiteouts are
//! device nodes).

use anyhow::{Context, Result};
use chapter_04::archive;
use chapter_04::digest::chain_ids;
use chapter_04::manifest::ContainerConfig;
use chapter_04::store::{Expect, Store};
use chapter_04::unpack::{host_platform, load_image, unpack, Limits};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "chapter-04", about = "Chapter 04: images, content-addressed")]
struct Cli {
    /// The store (an OCI image layout) [default: target/ch04-store]
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import a root filesystem directory as a one-layer image
    Import {
        /// [default: the fixture, target/fixture/rootfs]
        #[arg(long)]
        rootfs: Option<PathBuf>,
        #[arg(default_value = "fixture:latest")]
        name: String,
    },
    /// Show an image's manifest, config, layers, DiffIDs and ChainIDs
    Inspect { name: String },
    /// Unpack an image's layers into snapshot directories
    Unpack { name: String },
    /// Two images sharing a base layer, on disk
    Share,
    /// List the images in the store
    Images,
    /// Remove a tag, then everything no tag reaches
    Rmi { name: String },
    /// Write an image as a `docker save` archive
    Save { name: String, file: PathBuf },
    /// Load a `docker save` archive
    Load { file: PathBuf },
    /// Copy an image out as an OCI image layout directory
    ExportOci { name: String, dir: PathBuf },
    /// Read a blob from stdin into the store (used by the crash tests)
    #[command(hide = true)]
    Ingest,
    /// Inflate a gzip file to nowhere with the unpacker's own inflate (the
    /// floor of `cargo xtask bench unpack` and `pull`)
    #[command(hide = true)]
    Inflate { file: PathBuf },
}

fn main() -> std::process::ExitCode {
    chapter_01::course::install_hook();
    let cli = Cli::parse();
    let store_dir = cli.store.unwrap_or_else(chapter_04::store::default_dir);
    match run(&store_dir, cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chapter-04: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// An import that could not read the tree: say what and why.
fn unreadable(e: std::io::Error, rootfs: &std::path::Path) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        anyhow::anyhow!(
            "importing {}: {e}: some of its files are readable only by their owner (the \
             fixture's /root is root's, mode 0700): import it as root, or pass --rootfs a tree \
             you can read",
            rootfs.display()
        )
    } else {
        anyhow::Error::new(e).context(format!("importing {}", rootfs.display()))
    }
}

fn fixture() -> Result<PathBuf> {
    chapter_03::fixture_rootfs().map_err(|e| anyhow::anyhow!(e))
}

fn shell_config() -> ContainerConfig {
    ContainerConfig {
        env: Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ]),
        cmd: Some(vec!["/bin/sh".into()]),
        ..Default::default()
    }
}

fn size_of_dir(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                total += m.blocks() * 512;
                if m.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    total
}

fn run(store_dir: &std::path::Path, command: Command) -> Result<()> {
    let store = Store::open(store_dir)
        .with_context(|| format!("opening the store at {}", store_dir.display()))?;
    let store = Store::open(store.root().canonicalize()?)?;
    match command {
        Command::Import { rootfs, name } => {
            let rootfs = match rootfs {
                Some(r) => r,
                None => fixture()?,
            };
            let d = archive::import_rootfs_dir(&store, &rootfs, &name, shell_config())
                .map_err(|e| unreadable(e, &rootfs))?;
            println!(
                "imported {} as {name}: manifest {}",
                rootfs.display(),
                d.digest
            );
        }
        Command::Inspect { name } => {
            let image = load_image(&store, &store.resolve(&name)?, &host_platform())?;
            let raw = store.read_blob(&image.manifest_descriptor.digest, 1 << 22)?;
            println!(
                "manifest {} ({} bytes, stored as written):",
                image.manifest_descriptor.digest,
                raw.len()
            );
            println!("{}", String::from_utf8_lossy(&raw));
            let config = store.read_blob(&image.manifest.config.digest, 1 << 22)?;
            println!(
                "\nconfig {}:\n{}",
                image.manifest.config.digest,
                String::from_utf8_lossy(&config)
            );
            println!("\nlayers (bottom first):");
            let chains = chain_ids(&image.config.rootfs.diff_ids);
            for (i, layer) in image.manifest.layers.iter().enumerate() {
                println!(
                    "  {}. blob    {} ({} bytes, {})",
                    i + 1,
                    layer.digest,
                    layer.size,
                    layer.media_type
                );
                println!("     DiffID  {}", image.config.rootfs.diff_ids[i]);
                println!("     ChainID {}", chains[i]);
            }
        }
        Command::Unpack { name } => {
            let image = load_image(&store, &store.resolve(&name)?, &host_platform())?;
            let start = std::time::Instant::now();
            let dirs = unpack(&store, &image, &Limits::default())?;
            println!(
                "unpacked {name} in {:.0} ms; overlay lower layers, bottom first:",
                start.elapsed().as_secs_f64() * 1e3
            );
            for d in dirs {
                println!("  {}  ({} KiB)", d.display(), size_of_dir(&d) / 1024);
            }
        }
        Command::Share => {
            let fixture = fixture()?;
            let base =
                archive::import_rootfs_dir(&store, &fixture, "fixture:latest", shell_config())
                    .map_err(|e| unreadable(e, &fixture))?;
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            let text = b"a layer of its own\n";
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            tar.append_data(&mut h, "etc/motd", &text[..])?;
            archive::add_layer(
                &store,
                "fixture:latest",
                tar.into_inner()?.as_slice(),
                "derived:latest",
                "add /etc/motd",
            )?;
            println!("fixture:latest  manifest {}", base.digest.short());
            for name in ["fixture:latest", "derived:latest"] {
                let image = load_image(&store, &store.resolve(name)?, &host_platform())?;
                let dirs = unpack(&store, &image, &Limits::default())?;
                let names: Vec<String> = dirs
                    .iter()
                    .map(|d| d.file_name().unwrap().to_string_lossy()[..12].to_string())
                    .collect();
                println!(
                    "{name:<16} layers {} -> snapshots {}",
                    image.manifest.layers.len(),
                    names.join(" + ")
                );
            }
            let snaps = std::fs::read_dir(store.root().join("snapshots"))?.count();
            println!("the store holds {snaps} snapshot directories for 2 images of 1 and 2 layers: the base is unpacked once");
        }
        Command::Images => {
            println!(
                "{:<28} {:<14} {:>6} {:>12}",
                "IMAGE", "MANIFEST", "LAYERS", "SIZE"
            );
            for (name, d) in store.tags()? {
                match load_image(&store, &d, &host_platform()) {
                    Ok(image) => {
                        let size: u64 = image.manifest.layers.iter().map(|l| l.size).sum::<u64>()
                            + image.manifest.config.size;
                        println!(
                            "{name:<28} {:<14} {:>6} {:>9} KiB",
                            d.digest.short(),
                            image.manifest.layers.len(),
                            size / 1024
                        );
                    }
                    Err(e) => println!("{name:<28} {:<14} (unreadable: {e})", d.digest.short()),
                }
            }
        }
        Command::Rmi { name } => {
            if !store.untag(&name)? {
                anyhow::bail!("no image {name:?} in the store");
            }
            let report = chapter_04::gc::collect(&store)?;
            println!(
                "untagged {name}; removed {} blobs ({} KiB) and {} snapshots no image uses",
                report.blobs_removed,
                report.bytes_freed / 1024,
                report.snapshots_removed
            );
        }
        Command::Save { name, file } => {
            let out = std::fs::File::create(&file)
                .with_context(|| format!("creating {}", file.display()))?;
            archive::save_docker(&store, &[&name], std::io::BufWriter::new(out))?;
            println!("saved {name} to {}", file.display());
        }
        Command::Load { file } => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            for tag in archive::load_docker(&store, std::io::BufReader::new(input))? {
                println!("loaded {tag}");
            }
        }
        Command::ExportOci { name, dir } => {
            archive::export_oci(&store, &name, &dir, &name)?;
            println!(
                "wrote {name} as an OCI layout at {} (try: skopeo inspect oci:{}:{name})",
                dir.display(),
                dir.display()
            );
        }
        Command::Ingest => {
            let (digest, size) = store.ingest(std::io::stdin().lock(), &Expect::none())?;
            println!("{digest} {size}");
        }
        Command::Inflate { file } => {
            let blob = std::fs::File::open(&file).with_context(|| file.display().to_string())?;
            let mut gz =
                flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, blob));
            let (mut buf, mut n) = (vec![0; 256 << 10], 0);
            loop {
                match std::io::Read::read(&mut gz, &mut buf)? {
                    0 => break,
                    got => n += got,
                }
            }
            println!("{n} bytes");
        }
    }
    Ok(())
}
