//! Chapter 05 experiments: the distribution protocol, one exchange at a time.
//! `cargo run -p chapter-05 -- help`.

use anyhow::{anyhow, Result};
use chapter_04::store::Store;
use chapter_05::client::Client;
use chapter_05::progress::Progress;
use chapter_05::{pull, push, Reference};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "chapter-05",
    about = "Chapter 05: pull and push with the distribution protocol"
)]
struct Cli {
    /// The local store [default: target/ch04-store, shared with chapter 04]
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pull with every HTTP exchange printed: ping, challenge, token, manifest, config, blobs
    Walk {
        reference: String,
        #[arg(long)]
        platform: Option<String>,
    },
    /// Pull an image into the store (and unpack it)
    Pull {
        reference: String,
        /// os/arch, e.g. linux/arm64 [default: this machine's]
        #[arg(long)]
        platform: Option<String>,
    },
    /// Push an image of the store to a registry under a new name
    Push {
        /// The image in the local store, e.g. fixture:latest
        local: String,
        /// Where to, e.g. localhost:5000/fixture:v1
        reference: String,
        /// Upload blobs larger than this many MiB in chunks
        #[arg(long, default_value_t = 32)]
        chunk_mib: u64,
    },
}

fn main() -> std::process::ExitCode {
    chapter_01::course::install_hook();
    let cli = Cli::parse();
    let store = cli.store.unwrap_or_else(chapter_04::store::default_dir);
    match run(&store, cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chapter-05: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn options(platform: Option<String>) -> Result<pull::Options> {
    let mut o = pull::Options::default();
    if let Some(p) = platform {
        o.platform = pull::parse_platform(&p).map_err(|e| anyhow!(e))?;
    }
    Ok(o)
}

fn run(store_dir: &std::path::Path, command: Command) -> Result<()> {
    let store = Store::open(store_dir)?;
    match command {
        Command::Walk {
            reference,
            platform,
        } => {
            let r = Reference::parse(&reference).map_err(|e| anyhow!(e))?;
            println!("reference {reference:?} is {r} (API at {})", r.api_host());
            let mut client = Client::new(&r, false).map_err(|e| anyhow!(e))?;
            client.trace = true;
            eprintln!("== ping: does the registry speak the v2 API?");
            let ping = client
                .send(
                    "GET",
                    &format!("{}/v2/", client.base()),
                    &[],
                    chapter_05::client::Payload::Empty,
                )
                .map_err(|e| anyhow!(e))?;
            eprintln!("   /v2/ answered {}", ping.status());
            eprintln!("== manifest, config and layers");
            let pulled = pull::pull(&client, &store, &options(platform)?, &Progress::new())
                .map_err(|e| anyhow!(e))?;
            println!(
                "pulled {} as {}: manifest {}, {} layers, {} bytes downloaded",
                r, pulled.name, pulled.manifest.digest, pulled.layers, pulled.downloaded_bytes
            );
        }
        Command::Pull {
            reference,
            platform,
        } => {
            let r = Reference::parse(&reference).map_err(|e| anyhow!(e))?;
            let client = Client::new(&r, false).map_err(|e| anyhow!(e))?;
            let start = std::time::Instant::now();
            let pulled = pull::pull(&client, &store, &options(platform)?, &Progress::new())
                .map_err(|e| anyhow!(e))?;
            println!(
                "pulled {r} as {} in {:.1} s: manifest {}, {} layers, {} bytes downloaded",
                pulled.name,
                start.elapsed().as_secs_f64(),
                pulled.manifest.digest,
                pulled.layers,
                pulled.downloaded_bytes
            );
        }
        Command::Push {
            local,
            reference,
            chunk_mib,
        } => {
            let r = Reference::parse(&reference).map_err(|e| anyhow!(e))?;
            let client = Client::new(&r, true).map_err(|e| anyhow!(e))?;
            let opts = push::Options {
                chunk_size: chunk_mib << 20,
                mount_from: None,
            };
            let d = push::push(&client, &store, &local, &opts, &Progress::new())
                .map_err(|e| anyhow!(e))?;
            println!("pushed {local} to {r}: manifest {}", d.digest);
        }
    }
    Ok(())
}
