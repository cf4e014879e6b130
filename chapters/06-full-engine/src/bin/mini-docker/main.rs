//! `mini-docker`: Docker's CLI, for mini-dockerd. Every command is a call
//! of the Docker Engine API on the daemon's socket; nothing here touches a
//! namespace or a cgroup.

use anyhow::{anyhow, Result};
use chapter_06::client::{each_chunk, enc, socket_path, ApiError, Client};
use chapter_06::human::human_duration;
use chapter_06::stdcopy::next_frame;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod containers;
mod cp;
mod images;
mod networks;
mod output;
mod run;
mod streams;
mod system;
mod volumes;
use cp::*;
use images::*;
use output::*;
use run::*;
use streams::*;
use system::*;

#[derive(Parser)]
#[command(name = "mini-docker", about = "A Docker CLI for mini-dockerd", version)]
struct Cli {
    /// The daemon's socket [env: MINI_DOCKER_HOST; default:
    /// unix:///run/mini-docker.sock for root; for anyone else a rootless
    /// daemon's $XDG_RUNTIME_DIR/mini-docker.sock when it is there]
    #[arg(short = 'H', long, global = true)]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the client and daemon versions
    Version,
    /// Show what the daemon knows about this host
    Info,
    /// Download an image from a registry
    Pull(images::PullArgs),
    /// Load images from a `docker save` archive
    Load(images::LoadArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove images
    Rmi(images::RmiArgs),
    /// Give an image another name
    Tag(images::TagArgs),
    /// Show how an image was made, newest step first
    History(images::HistoryArgs),
    /// Write images to a tar archive (docker save format, or --format oci)
    Save(images::SaveArgs),
    /// Upload an image to its registry
    Push(images::PushArgs),
    /// Copy files between a container and the local filesystem:
    /// CONTAINER:PATH on one side; - for a tar on standard input or output
    Cp(cp::CpArgs),
    /// Write a container's root filesystem to a tar archive
    Export(containers::ExportArgs),
    /// Build an image from a Dockerfile and a context directory
    Build(images::BuildArgs),
    /// List the files a container changed (A added, C changed, D deleted)
    Diff(containers::DiffArgs),
    /// Make a new image from a container's changes
    Commit(containers::CommitArgs),
    /// Create and start a container
    Run(RunArgs),
    /// Create a container
    Create(RunArgs),
    /// Start stopped containers
    Start(containers::StartArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Give a container another name
    Rename(containers::RenameArgs),
    /// Freeze every process of containers
    Pause(containers::PauseArgs),
    /// Let paused containers go on
    Unpause(containers::UnpauseArgs),
    /// The processes of a running container
    Top(containers::TopArgs),
    /// Change the limits of containers (at once, when running)
    Update(containers::UpdateArgs),
    /// Stop (when running) and start containers again
    Restart(containers::RestartArgs),
    /// Attach to a running container's input and output
    Attach(streams::AttachArgs),
    /// What happens to containers, images, networks and volumes, as it happens
    Events(system::EventsArgs),
    /// Show a container's output
    Logs(streams::LogsArgs),
    /// Stop running containers (the stop signal, then SIGKILL)
    Stop(containers::StopArgs),
    /// Send a signal to running containers
    Kill(containers::KillArgs),
    /// Remove containers
    Rm(containers::RmArgs),
    /// Manage networks
    Network(networks::NetworkArgs),
    /// Manage volumes
    Volume(volumes::VolumeArgs),
    /// Run a command in a running container
    Exec(streams::ExecArgs),
    /// Show low-level information on containers or images
    Inspect(containers::InspectArgs),
    /// Wait for containers to stop; print their exit codes
    Wait(containers::WaitArgs),
    /// One sample of containers' resource use
    Stats(containers::StatsArgs),
    /// Remove what is not in use
    System(system::SystemArgs),
}

/// Root's daemon, or for an ordinary user their rootless daemon's socket
/// when there is one (Docker's CLI needs a context or DOCKER_HOST for it).
fn default_host() -> String {
    if !nix::unistd::geteuid().is_root() {
        if let Ok(layout) = chapter_06::rootless::layout() {
            if layout.socket.exists() {
                return format!("unix://{}", layout.socket.display());
            }
        }
    }
    "unix:///run/mini-docker.sock".into()
}

fn main() -> std::process::ExitCode {
    chapter_01::course::install_hook();
    let cli = Cli::parse();
    let host = cli
        .host
        .or_else(|| std::env::var("MINI_DOCKER_HOST").ok())
        .unwrap_or_else(default_host);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(async {
        let client = Client::new(socket_path(&host)?);
        run(&client, cli.command).await
    });
    let code = match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mini-docker: {e:#}");
            e.downcast_ref::<ApiError>()
                .and_then(|api| api.kind?.exit_code())
                .unwrap_or(125)
        }
    };
    // A blocked read of stdin must not hold the process.
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// One command: each family of commands is a module of its own.
async fn run(client: &Client, command: Command) -> Result<i32> {
    match command {
        Command::Version => system::version(client).await,
        Command::Info => system::info(client).await,
        Command::Pull(args) => images::pull(client, args).await,
        Command::Load(args) => images::load(client, args).await,
        Command::Images(args) => images::images(client, args).await,
        Command::Rmi(args) => images::rmi(client, args).await,
        Command::Tag(args) => images::tag(client, args).await,
        Command::History(args) => images::history(client, args).await,
        Command::Save(args) => images::save(client, args).await,
        Command::Attach(args) => streams::attach(client, args).await,
        Command::Events(args) => system::events(client, args).await,
        Command::Cp(args) => cp::cp(client, args).await,
        Command::Export(args) => containers::export(client, args).await,
        Command::Push(args) => images::push(client, args).await,
        Command::Build(args) => images::build(client, args).await,
        Command::Pause(args) => containers::pause(client, args).await,
        Command::Unpause(args) => containers::unpause(client, args).await,
        Command::Update(args) => containers::update(client, args).await,
        Command::Top(args) => containers::top(client, args).await,
        Command::Rename(args) => containers::rename(client, args).await,
        Command::Restart(args) => containers::restart(client, args).await,
        Command::Diff(args) => containers::diff(client, args).await,
        Command::Commit(args) => containers::commit(client, args).await,
        Command::Create(args) => run::create(client, args).await,
        Command::Run(args) => run::run(client, args).await,
        Command::Start(args) => containers::start(client, args).await,
        Command::Ps(args) => containers::ps(client, args).await,
        Command::Logs(args) => streams::logs(client, args).await,
        Command::Stop(args) => containers::stop(client, args).await,
        Command::Kill(args) => containers::kill(client, args).await,
        Command::Rm(args) => containers::rm(client, args).await,
        Command::Exec(args) => streams::exec(client, args).await,
        Command::Inspect(args) => containers::inspect(client, args).await,
        Command::Wait(args) => containers::wait(client, args).await,
        Command::Stats(args) => containers::stats(client, args).await,
        Command::Volume(args) => volumes::volume(client, args.command).await,
        Command::Network(args) => networks::network(client, args.command).await,
        Command::System(args) => system::system(client, args).await,
    }
}

/// `DELETE {prefix}/{name}{query}` for each name; errors are printed as
/// Docker prints them, and make the exit code 1.
async fn remove_each(client: &Client, prefix: &str, names: &[String], query: &str) -> Result<i32> {
    each_request(client, "DELETE", names, None, |name| {
        format!("{prefix}/{}{query}", enc(name))
    })
    .await
}

/// `GET {prefix}/{name}{suffix}` for each name, printed as one JSON array.
async fn inspect_each(
    client: &Client,
    prefix: &str,
    names: &[String],
    suffix: &str,
) -> Result<i32> {
    let mut out = Vec::new();
    for name in names {
        out.push(
            client
                .json("GET", &format!("{prefix}/{}{suffix}", enc(name)), None)
                .await?,
        );
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

/// `POST /containers/{c}/{verb}` for each container: its name printed, or
/// the daemon's error (exit 1 if any failed), as Docker's CLI does.
async fn each_post(client: &Client, containers: &[String], verb: &str) -> Result<i32> {
    each_request(client, "POST", containers, None, |c| {
        format!("/containers/{}/{verb}", enc(c))
    })
    .await
}

/// One request per name (`path` makes its path): the name printed when it
/// succeeds, else the daemon's error as Docker prints it; exit 1 if any failed.
async fn each_request(
    client: &Client,
    method: &str,
    names: &[String],
    body: Option<&Value>,
    path: impl Fn(&str) -> String,
) -> Result<i32> {
    let mut code = 0;
    for name in names {
        match client.call(method, &path(name), body).await {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `--filter NAME=VALUE`s as Docker's `&filters=` JSON (empty: none).
fn filters_query(filters: &[String]) -> Result<String> {
    if filters.is_empty() {
        return Ok(String::new());
    }
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in filters {
        let (name, value) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter {f:?} (expected name=value)"))?;
        map.entry(name.to_string())
            .or_default()
            .push(value.to_string());
    }
    Ok(format!("&filters={}", enc(&serde_json::to_string(&map)?)))
}

/// `name:tag` → (name, tag); `host:5000/name` has no tag: latest.
fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, "latest"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_docker_s() {
        assert_eq!(super::human_size(0), "0B");
        assert_eq!(super::human_size(512), "512B");
        assert_eq!(super::human_size(2048), "2.05kB");
        assert_eq!(super::human_size(2000), "2kB");
        assert_eq!(super::human_size(7_350_000), "7.35MB");
    }
}
