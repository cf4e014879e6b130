//! `mini-docker`: Docker's CLI, for mini-dockerd. Every command is a call
//! of the Docker Engine API on the daemon's socket; nothing here touches a
//! namespace or a cgroup.

use anyhow::{anyhow, Result};
use chapter_06::client::{each_chunk, socket_path, ApiError, Client};
use chapter_06::human::human_duration;
use chapter_06::stdcopy::next_frame;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(name = "mini-docker", about = "A Docker CLI for mini-dockerd", version)]
struct Cli {
    /// The daemon's socket [env: MINI_DOCKER_HOST]
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
    Pull {
        image: String,
        #[arg(long)]
        platform: Option<String>,
    },
    /// Load images from a `docker save` archive
    Load {
        #[arg(short, long)]
        input: std::path::PathBuf,
    },
    /// List images
    Images {
        #[arg(short, long)]
        quiet: bool,
        /// NAME=VALUE: dangling=true|false, label=k[=v], reference, before, since
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// Remove images
    Rmi {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name
    Tag { source: String, target: String },
    /// Show how an image was made, newest step first
    History {
        #[arg(long)]
        no_trunc: bool,
        #[arg(short, long)]
        quiet: bool,
        image: String,
    },
    /// Write images to a tar archive (docker save format, or --format oci)
    Save {
        /// The archive [default: standard output, when it is not a terminal]
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// docker (docker load reads it) or oci (an OCI image layout)
        #[arg(long, default_value = "docker")]
        format: String,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Upload an image to its registry
    Push { image: String },
    /// Copy files between a container and the local filesystem:
    /// CONTAINER:PATH on one side; - for a tar on standard input or output
    Cp {
        /// Keep the source's owners (uid:gid) in the container
        #[arg(short, long)]
        archive: bool,
        /// Follow a symlink given as the source
        #[arg(short = 'L', long)]
        follow_link: bool,
        /// Print nothing on success
        #[arg(short, long)]
        quiet: bool,
        src: String,
        dst: String,
    },
    /// Write a container's root filesystem to a tar archive
    Export {
        /// The archive [default: standard output, when it is not a terminal]
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        container: String,
    },
    /// Build an image from a Dockerfile and a context directory
    Build {
        /// NAME[:TAG] for the image (may be given more than once)
        #[arg(short, long = "tag")]
        tags: Vec<String>,
        /// The Dockerfile [default: CONTEXT/Dockerfile]
        #[arg(short, long)]
        file: Option<std::path::PathBuf>,
        /// A build argument, KEY=VALUE (or KEY: its value from the environment)
        #[arg(long)]
        build_arg: Vec<String>,
        /// Build up to this stage
        #[arg(long)]
        target: Option<String>,
        /// Run every step, reusing nothing from the cache
        #[arg(long)]
        no_cache: bool,
        /// A label for the image, KEY=VALUE
        #[arg(long)]
        label: Vec<String>,
        /// Print only the image ID
        #[arg(short, long)]
        quiet: bool,
        /// The network of RUN steps: none, host, or a network [default: the default bridge]
        #[arg(long)]
        network: Option<String>,
        context: std::path::PathBuf,
    },
    /// List the files a container changed (A added, C changed, D deleted)
    Diff { container: String },
    /// Make a new image from a container's changes
    Commit {
        /// A Dockerfile instruction for the image's config (CMD, ENV, …)
        #[arg(short = 'c', long = "change")]
        changes: Vec<String>,
        /// A commit message
        #[arg(short, long)]
        message: Option<String>,
        /// The author (e.g. "Ada <ada@example.org>")
        #[arg(short, long)]
        author: Option<String>,
        container: String,
        /// NAME[:TAG] [default: no name]
        repository: Option<String>,
    },
    /// Create and start a container
    Run(RunArgs),
    /// Create a container
    Create(RunArgs),
    /// Start stopped containers
    Start {
        #[arg(short, long)]
        attach: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers
    Ps {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
        /// NAME=VALUE: label=k[=v], name, id, status, ancestor, exited, network, volume, before, since
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// Give a container another name
    Rename { container: String, name: String },
    /// Freeze every process of containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Let paused containers go on
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// The processes of a running container
    Top { container: String },
    /// Change the limits of containers (at once, when running)
    Update {
        /// Memory limit (e.g. 64m)
        #[arg(short, long)]
        memory: Option<String>,
        /// Memory plus swap (-1: unlimited swap)
        #[arg(long, allow_hyphen_values = true)]
        memory_swap: Option<String>,
        /// CPUs (e.g. 0.5)
        #[arg(long)]
        cpus: Option<f64>,
        #[arg(long)]
        cpu_shares: Option<i64>,
        #[arg(long)]
        cpuset_cpus: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        pids_limit: Option<i64>,
        /// A soft memory limit
        #[arg(long)]
        memory_reservation: Option<String>,
        #[arg(long)]
        cpuset_mems: Option<String>,
        /// Relative IO weight, 10 to 1000
        #[arg(long)]
        blkio_weight: Option<u16>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop (when running) and start containers again
    Restart {
        /// Seconds to wait for the stop signal before SIGKILL
        #[arg(short, long)]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach to a running container's input and output
    Attach {
        /// The keys that detach, leaving it running [default: ctrl-p,ctrl-q]
        #[arg(long)]
        detach_keys: Option<String>,
        /// Do not send our standard input
        #[arg(long)]
        no_stdin: bool,
        container: String,
    },
    /// What happens to containers, images, networks and volumes, as it happens
    Events {
        /// Events since this time: 10m, an RFC 3339 time, or unix seconds
        #[arg(long)]
        since: Option<String>,
        /// Stop at this time (same forms)
        #[arg(long)]
        until: Option<String>,
        /// type=, event=, container=, image=, label=, network=, volume=
        #[arg(short, long = "filter")]
        filters: Vec<String>,
        /// `{{json .}}`: each event as the API's JSON
        #[arg(long)]
        format: Option<String>,
    },
    /// Show a container's output
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(long, default_value = "all")]
        tail: String,
        #[arg(short, long)]
        timestamps: bool,
        /// Only output since this time: 10m, 1h30m, an RFC 3339 time, or unix seconds
        #[arg(long)]
        since: Option<String>,
        /// Only output until this time (same forms)
        #[arg(long)]
        until: Option<String>,
        container: String,
    },
    /// Stop running containers (the stop signal, then SIGKILL)
    Stop {
        #[arg(short = 't', long = "time")]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to running containers
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers
    Rm {
        #[arg(short, long)]
        force: bool,
        /// Remove the container's anonymous volumes too
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Run a command in a running container
    Exec {
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        #[arg(short, long)]
        detach: bool,
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long)]
        workdir: Option<String>,
        #[arg(short, long)]
        env: Vec<String>,
        /// Every capability for this process
        #[arg(long)]
        privileged: bool,
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Show low-level information on containers or images
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Wait for containers to stop; print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// One sample of containers' resource use
    Stats {
        #[arg(long)]
        no_stream: bool,
        containers: Vec<String>,
    },
    /// Remove what is not in use
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Create a bridge network
    Create {
        name: String,
        /// e.g. 10.10.0.0/24 [default: the next free /24 of the pool]
        #[arg(long)]
        subnet: Option<String>,
    },
    /// List networks
    Ls,
    /// Show networks
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container is on one)
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Put a container on one more network (at once if it runs)
    Connect {
        /// Another name of the container on that network
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Take a container off a network it joined
    Disconnect { network: String, container: String },
}

#[derive(Subcommand)]
enum VolumeCommand {
    /// Create a volume
    Create { name: Option<String> },
    /// List volumes
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show a volume
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one)
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove anonymous volumes no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum SystemCommand {
    /// What images, containers, volumes and the build cache take on disk
    Df,
    /// Remove stopped containers, unused networks, untagged images and
    /// unreferenced image data (with -a the build cache too)
    Prune {
        #[arg(short, long)]
        force: bool,
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Run in the background, print the container ID
    #[arg(short, long)]
    detach: bool,
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    #[arg(long)]
    name: Option<String>,
    /// KEY=VALUE, or KEY to take the value from this environment
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    #[arg(short, long)]
    workdir: Option<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    #[arg(long)]
    entrypoint: Option<String>,
    /// Memory limit (e.g. 512m)
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap)
    #[arg(long)]
    memory_swap: Option<String>,
    /// CPU time as a number of CPUs (e.g. 0.5)
    #[arg(long, allow_negative_numbers = true)]
    cpus: Option<f64>,
    #[arg(long)]
    cpu_shares: Option<i64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    pids_limit: Option<i64>,
    /// bridge (the default), none, host, or a network's name
    #[arg(long, default_value = "default")]
    network: String,
    /// Another name of the container on its (user-defined) network
    #[arg(long)]
    network_alias: Vec<String>,
    /// Its address on its (user-defined) network
    #[arg(long)]
    ip: Option<String>,
    /// host: the host's PID namespace
    #[arg(long)]
    pid: Option<String>,
    /// host: the host's hostname (UTS namespace)
    #[arg(long)]
    uts: Option<String>,
    /// private (the default), shareable, none, or host
    #[arg(long)]
    ipc: Option<String>,
    /// NAME:IP in /etc/hosts (IP may be host-gateway)
    #[arg(long)]
    add_host: Vec<String>,
    /// A name server for the container (behind the embedded one on a network)
    #[arg(long)]
    dns: Vec<String>,
    /// A DNS search domain
    #[arg(long)]
    dns_search: Vec<String>,
    /// A resolv.conf option (ndots:2)
    #[arg(long = "dns-option")]
    dns_option: Vec<String>,
    /// Another group for the container's processes (a name or a number)
    #[arg(long)]
    group_add: Vec<String>,
    /// A soft memory limit (reclaimed towards under pressure)
    #[arg(long)]
    memory_reservation: Option<String>,
    /// 0 to 100: how readily its memory is swapped (cgroup v1)
    #[arg(long)]
    memory_swappiness: Option<i64>,
    /// No OOM kills: it waits for memory instead (cgroup v1)
    #[arg(long)]
    oom_kill_disable: bool,
    /// Run an init inside that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Add a host device to the container (HOST[:CONTAINER][:PERMISSIONS])
    #[arg(long)]
    device: Vec<String>,
    /// Add a rule to the container's allowed devices ('c 10:229 rwm')
    #[arg(long)]
    device_cgroup_rule: Vec<String>,
    /// Memory nodes it may use (0-1)
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Relative IO weight, 10 to 1000
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// DEVICE:RATE read limit (/dev/sda:1mb)
    #[arg(long)]
    device_read_bps: Vec<String>,
    /// DEVICE:RATE write limit
    #[arg(long)]
    device_write_bps: Vec<String>,
    /// DEVICE:N read operations per second
    #[arg(long)]
    device_read_iops: Vec<String>,
    /// DEVICE:N write operations per second
    #[arg(long)]
    device_write_iops: Vec<String>,
    /// json-file (the default) or none
    #[arg(long)]
    log_driver: Option<String>,
    /// A log driver option: max-size=10m, max-file=3
    #[arg(long)]
    log_opt: Vec<String>,
    /// type=bind|volume|tmpfs,source=…,target=…[,readonly][,volume-subpath=…][,tmpfs-size=…][,tmpfs-mode=…]
    #[arg(long)]
    mount: Vec<String>,
    /// Publish a port: [host_ip:]host_port:container_port[/tcp|udp]
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Expose a port (for -P) without publishing it
    #[arg(long)]
    expose: Vec<String>,
    /// Publish every exposed port on a free host port
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Bind mount or volume: /host/path:/ctr/path[:ro], name:/ctr/path, /ctr/path
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// A tmpfs: /ctr/path[:options], e.g. /run:size=64m
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    read_only: bool,
    /// Every capability, no seccomp filter, nothing masked
    #[arg(long)]
    privileged: bool,
    /// Add a capability (e.g. NET_ADMIN, or ALL)
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop a capability (e.g. CHOWN, or ALL)
    #[arg(long)]
    cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges
    #[arg(long)]
    security_opt: Vec<String>,
    /// The cgroup namespace: private or host [default: the daemon's]
    #[arg(long)]
    cgroupns: Option<String>,
    /// The user namespace: host to opt out of the daemon's remapping
    #[arg(long)]
    userns: Option<String>,
    /// The signal `stop` sends first [default: the image's, else SIGTERM]
    #[arg(long)]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL [default: 10]
    #[arg(long, allow_negative_numbers = true)]
    stop_timeout: Option<i64>,
    /// A label, KEY=VALUE (or KEY, with an empty value)
    #[arg(short = 'l', long)]
    label: Vec<String>,
    /// A file of labels, one KEY=VALUE a line (# comments)
    #[arg(long)]
    label_file: Vec<std::path::PathBuf>,
    /// A resource limit: NAME=SOFT[:HARD] (nofile=1024:2048)
    #[arg(long)]
    ulimit: Vec<String>,
    /// Another container's volumes, at the same places: CONTAINER[:ro|rw]
    #[arg(long)]
    volumes_from: Vec<String>,
    /// When the container exits: no, always, unless-stopped, on-failure[:N]
    #[arg(long)]
    restart: Option<String>,
    /// A command that tells the container is healthy (exit 0), run by /bin/sh
    #[arg(long)]
    health_cmd: Option<String>,
    /// How often the health check runs (30s, 1m30s) [default: 30s]
    #[arg(long)]
    health_interval: Option<String>,
    /// How long one check may take [default: 30s]
    #[arg(long)]
    health_timeout: Option<String>,
    /// Failures in a row that make it unhealthy [default: 3]
    #[arg(long)]
    health_retries: Option<u64>,
    /// Failures in this time after the start do not count [default: 0s]
    #[arg(long)]
    health_start_period: Option<String>,
    /// No health check, not even the image's
    #[arg(long)]
    no_healthcheck: bool,
    #[arg(long)]
    platform: Option<String>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> std::process::ExitCode {
    chapter_01::course::install_hook();
    let cli = Cli::parse();
    let host = cli
        .host
        .or_else(|| std::env::var("MINI_DOCKER_HOST").ok())
        .unwrap_or_else(|| "unix:///run/mini-docker.sock".into());
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
            match e.downcast_ref::<ApiError>() {
                Some(api) if api.message.contains("executable file not found") => 127,
                Some(api) if api.message.contains("permission denied") => 126,
                _ => 125,
            }
        }
    };
    // A blocked read of stdin must not hold the process.
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn run(client: &Client, command: Command) -> Result<i32> {
    match command {
        Command::Version => {
            let v = client.json("GET", "/version", None).await?;
            println!(
                "Client:\n Version:     {}\n API version: {}",
                env!("CARGO_PKG_VERSION"),
                chapter_06::api::API_VERSION
            );
            println!("Server: mini-docker\n Version:     {}\n API version: {} (minimum {})\n Kernel:      {}\n OS/Arch:     {}/{}",
                v["Version"].as_str().unwrap_or(""), v["ApiVersion"].as_str().unwrap_or(""),
                v["MinAPIVersion"].as_str().unwrap_or(""), v["KernelVersion"].as_str().unwrap_or(""),
                v["Os"].as_str().unwrap_or(""), v["Arch"].as_str().unwrap_or(""));
        }
        Command::Info => {
            let v = client.json("GET", "/info", None).await?;
            for key in [
                "Containers",
                "ContainersRunning",
                "ContainersStopped",
                "Images",
                "ServerVersion",
                "Driver",
                "LoggingDriver",
                "CgroupDriver",
                "CgroupVersion",
                "KernelVersion",
                "OperatingSystem",
                "Architecture",
                "NCPU",
                "MemTotal",
                "DockerRootDir",
                "Name",
            ] {
                println!("{key}: {}", v[key].to_string().trim_matches('"'));
            }
            // As `docker info` shows them: one "name=…" option a line.
            println!("SecurityOptions:");
            for option in v["SecurityOptions"].as_array().into_iter().flatten() {
                println!("  {}", option.as_str().unwrap_or(""));
            }
        }
        Command::Pull { image, platform } => {
            pull(client, &image, platform.as_deref(), false).await?
        }
        Command::Load { input } => {
            let bytes =
                std::fs::read(&input).map_err(|e| anyhow!("reading {}: {e}", input.display()))?;
            let reply = client
                .post_bytes("/images/load", bytes, "application/x-tar")
                .await?;
            for line in String::from_utf8_lossy(&reply).lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    print!("{}", v["stream"].as_str().unwrap_or(""));
                }
            }
        }
        Command::Images { quiet, filter } => {
            let list = client
                .json(
                    "GET",
                    &format!("/images/json?{}", filters_query(&filter)?),
                    None,
                )
                .await?;
            if !quiet {
                println!(
                    "{:<40} {:<12} {:<14} {:<16} SIZE",
                    "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
                );
            }
            for img in list.as_array().into_iter().flatten() {
                let id = img["Id"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("sha256:");
                let short = &id[..id.len().min(12)];
                if quiet {
                    println!("{short}");
                    continue;
                }
                let tags: Vec<&str> = img["RepoTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let none = ["<none>:<none>"];
                for tag in if tags.is_empty() {
                    &none[..]
                } else {
                    &tags[..]
                } {
                    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
                    println!(
                        "{repo:<40} {t:<12} {short:<14} {:<16} {}",
                        ago(img["Created"].as_i64().unwrap_or(0)),
                        human_size(img["Size"].as_u64().unwrap_or(0))
                    );
                }
            }
        }
        Command::Rmi { force, images } => {
            let mut code = 0;
            for image in images {
                match client
                    .json(
                        "DELETE",
                        &format!("/images/{}?force={force}", enc(&image)),
                        None,
                    )
                    .await
                {
                    Ok(v) => {
                        for item in v.as_array().into_iter().flatten() {
                            for (k, v) in item.as_object().into_iter().flatten() {
                                println!("{k}: {}", v.as_str().unwrap_or(""));
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        Command::Tag { source, target } => {
            let (repo, tag) = match target.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (target.clone(), "latest".into()),
            };
            client
                .call(
                    "POST",
                    &format!(
                        "/images/{}/tag?repo={}&tag={}",
                        enc(&source),
                        enc(&repo),
                        enc(&tag)
                    ),
                    None,
                )
                .await?;
        }
        Command::History {
            no_trunc,
            quiet,
            image,
        } => {
            let list = client
                .json("GET", &format!("/images/{}/history", enc(&image)), None)
                .await?;
            if !quiet {
                println!(
                    "{:<14} {:<16} {:<46} {:<10} COMMENT",
                    "IMAGE", "CREATED", "CREATED BY", "SIZE"
                );
            }
            for h in list.as_array().into_iter().flatten() {
                let id = h["Id"].as_str().unwrap_or("");
                let id = match id.strip_prefix("sha256:") {
                    Some(hex) if !no_trunc => hex[..12.min(hex.len())].to_string(),
                    _ => id.to_string(),
                };
                if quiet {
                    println!("{id}");
                    continue;
                }
                let by = h["CreatedBy"].as_str().unwrap_or("");
                let by = if no_trunc || by.chars().count() <= 45 {
                    by.to_string()
                } else {
                    by.chars().take(44).collect::<String>() + "…"
                };
                let created = match h["Created"].as_i64() {
                    Some(t) if t > 0 => ago(t),
                    _ => "N/A".to_string(),
                };
                println!(
                    "{id:<14} {created:<16} {by:<46} {:<10} {}",
                    human_size(h["Size"].as_u64().unwrap_or(0)),
                    h["Comment"].as_str().unwrap_or("")
                );
            }
        }
        Command::Save {
            output,
            format,
            images,
        } => {
            let oci = match format.as_str() {
                "docker" => false,
                "oci" => true,
                other => return Err(anyhow!("unknown --format {other:?}: use docker or oci")),
            };
            if output.is_none() && std::io::stdout().is_terminal() {
                return Err(anyhow!(
                    "refusing to write an archive to the terminal: use -o FILE or redirect the output"
                ));
            }
            let mut path = String::from("/images/get?");
            for i in &images {
                path += &format!("names={}&", enc(i));
            }
            if oci {
                path += "format=oci";
            }
            let body = client.stream("GET", &path, None).await?;
            write_archive(body, output.as_deref()).await?;
        }
        Command::Attach {
            detach_keys,
            no_stdin,
            container,
        } => {
            let info = client
                .json(
                    "GET",
                    &format!("/containers/{}/json", enc(&container)),
                    None,
                )
                .await?;
            if info["State"]["Running"] != true {
                return Err(anyhow!(
                    "You cannot attach to a stopped container, start it first"
                ));
            }
            let id = info["Id"].as_str().unwrap_or_default().to_string();
            let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
            let stdin = !no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
            let keys = detach_keys
                .map(|k| format!("&detachKeys={}", enc(&k)))
                .unwrap_or_default();
            let io = client
                .hijack(
                    &format!(
                        "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1{keys}",
                        stdin as u8
                    ),
                    None,
                )
                .await?;
            pump(client, io, tty, stdin, &format!("/containers/{id}/resize")).await?;
            // Detached: it runs on (exit 0); else its exit code.
            let after = client
                .json("GET", &format!("/containers/{id}/json"), None)
                .await?;
            if after["State"]["Running"] == true {
                return Ok(0);
            }
            return Ok(after["State"]["ExitCode"].as_i64().unwrap_or(0) as i32);
        }
        Command::Events {
            since,
            until,
            filters,
            format,
        } => {
            let json_lines = match format.as_deref().map(str::trim) {
                None => false,
                Some("{{json .}}") => true,
                Some(other) => {
                    return Err(anyhow!(
                        "--format {other:?}: only {{{{json .}}}} is supported"
                    ))
                }
            };
            let mut path = "/events?".to_string();
            for (key, v) in [("since", &since), ("until", &until)] {
                if let Some(t) = v {
                    path += &format!("{key}={}&", enc(&unix_time(t)?));
                }
            }
            path += filters_query(&filters)?.trim_start_matches('&');
            let body = client.stream("GET", &path, None).await?;
            let mut pending = Vec::new();
            let mut out = std::io::stdout().lock();
            each_chunk(body, |chunk| {
                for line in chapter_06::jsonlog::split_lines(&mut pending, chunk) {
                    let Ok(e) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    let text = if json_lines {
                        e.to_string()
                    } else {
                        event_line(&e)
                    };
                    let _ = writeln!(out, "{text}");
                    let _ = out.flush();
                }
            })
            .await?;
        }
        Command::Cp {
            archive,
            follow_link,
            quiet,
            src,
            dst,
        } => {
            let message = cp(client, &src, &dst, archive, follow_link).await?;
            if !quiet && !message.is_empty() {
                eprintln!("{message}");
            }
        }
        Command::Export { output, container } => {
            if output.is_none() && std::io::stdout().is_terminal() {
                return Err(anyhow!(
                    "refusing to write an archive to the terminal: use -o FILE or redirect the output"
                ));
            }
            let body = client
                .stream(
                    "GET",
                    &format!("/containers/{}/export", enc(&container)),
                    None,
                )
                .await?;
            write_archive(body, output.as_deref()).await?;
        }
        Command::Push { image } => {
            let reference = chapter_05::Reference::parse(&image).map_err(|e| anyhow!(e))?;
            let (repo, tag) = split_name(&image);
            let auth = match chapter_05::auth::credentials_for(&reference.registry)
                .map_err(|e| anyhow!(e))?
            {
                Some(c) => {
                    json!({"username": c.username, "password": c.secret, "serveraddress": reference.registry})
                }
                None => json!({}),
            };
            use base64::Engine as _;
            let header = base64::engine::general_purpose::URL_SAFE.encode(auth.to_string());
            let body = client
                .stream_with(
                    &format!("/images/{}/push?tag={}", enc(repo), enc(tag)),
                    Vec::new(),
                    "application/json",
                    &[("X-Registry-Auth", header)],
                )
                .await?;
            let failed = print_messages(body, false).await?;
            if let Some(e) = failed {
                eprintln!("{e}");
                return Ok(1);
            }
        }
        Command::Build {
            tags,
            file,
            build_arg,
            target,
            no_cache,
            label,
            quiet,
            network,
            context,
        } => {
            let pairs = |list: &[String],
                         what: &str,
                         env: bool|
             -> Result<serde_json::Map<String, Value>> {
                let mut map = serde_json::Map::new();
                for item in list {
                    match item.split_once('=') {
                        Some((k, v)) => {
                            map.insert(k.to_string(), json!(v));
                        }
                        None if env => {
                            if let Ok(v) = std::env::var(item) {
                                map.insert(item.clone(), json!(v));
                            }
                        }
                        None => return Err(anyhow!("--{what} {item:?}: write KEY=VALUE")),
                    }
                }
                Ok(map)
            };
            let args = pairs(&build_arg, "build-arg", true)?;
            let labels = pairs(&label, "label", false)?;
            let (tar, dockerfile) = context_tar(&context, file.as_deref())?;
            let mut path = format!(
                "/build?dockerfile={}&buildargs={}&labels={}",
                enc(&dockerfile),
                enc(&Value::Object(args).to_string()),
                enc(&Value::Object(labels).to_string())
            );
            for t in &tags {
                path += &format!("&t={}", enc(t));
            }
            if let Some(t) = &target {
                path += &format!("&target={}", enc(t));
            }
            if no_cache {
                path += "&nocache=1";
            }
            if quiet {
                path += "&q=1";
            }
            if let Some(n) = &network {
                path += &format!("&networkmode={}", enc(n));
            }
            let body = client
                .stream_with(&path, tar, "application/x-tar", &[])
                .await?;
            if let Some(e) = print_messages(body, false).await? {
                eprintln!("{e}");
                return Ok(1);
            }
        }
        Command::Pause { containers } => return each_post(client, &containers, "pause").await,
        Command::Unpause { containers } => return each_post(client, &containers, "unpause").await,
        Command::Update {
            memory,
            memory_swap,
            cpus,
            cpu_shares,
            cpuset_cpus,
            pids_limit,
            memory_reservation,
            cpuset_mems,
            blkio_weight,
            containers,
        } => {
            let size = size_flag;
            let body = json!({
                "Memory": size("--memory", &memory)?,
                "MemorySwap": size("--memory-swap", &memory_swap)?,
                "NanoCpus": cpus.map_or(0, |c| (c * 1e9) as i64),
                "CpuShares": cpu_shares.unwrap_or(0),
                "CpusetCpus": cpuset_cpus.unwrap_or_default(),
                "PidsLimit": pids_limit.unwrap_or(0),
                "MemoryReservation": size("--memory-reservation", &memory_reservation)?,
                "CpusetMems": cpuset_mems.unwrap_or_default(),
                "BlkioWeight": blkio_weight.unwrap_or(0),
            });
            return each_request(client, "POST", &containers, Some(&body), |c| {
                format!("/containers/{}/update", enc(c))
            })
            .await;
        }
        Command::Top { container } => {
            let v = client
                .json("GET", &format!("/containers/{}/top", enc(&container)), None)
                .await?;
            let titles: Vec<&str> = v["Titles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!("{}", titles.join("\t"));
            for p in v["Processes"].as_array().into_iter().flatten() {
                let row: Vec<&str> = p
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!("{}", row.join("\t"));
            }
        }
        Command::Rename { container, name } => {
            client
                .call(
                    "POST",
                    &format!("/containers/{}/rename?name={}", enc(&container), enc(&name)),
                    None,
                )
                .await?;
        }
        Command::Restart { time, containers } => {
            let verb = match time {
                Some(t) => format!("restart?t={t}"),
                None => "restart".into(),
            };
            return each_post(client, &containers, &verb).await;
        }
        Command::Diff { container } => {
            let list = client
                .json(
                    "GET",
                    &format!("/containers/{}/changes", enc(&container)),
                    None,
                )
                .await?;
            for change in list.as_array().into_iter().flatten() {
                let letter = match change["Kind"].as_i64() {
                    Some(1) => 'A',
                    Some(2) => 'D',
                    _ => 'C',
                };
                println!("{letter} {}", change["Path"].as_str().unwrap_or(""));
            }
        }
        Command::Commit {
            changes,
            message,
            author,
            container,
            repository,
        } => {
            let mut path = format!("/commit?container={}", enc(&container));
            if let Some(r) = &repository {
                let (repo, tag) = split_name(r);
                path += &format!("&repo={}&tag={}", enc(repo), enc(tag));
            }
            for c in &changes {
                path += &format!("&changes={}", enc(c));
            }
            if let Some(m) = &message {
                path += &format!("&comment={}", enc(m));
            }
            if let Some(a) = &author {
                path += &format!("&author={}", enc(a));
            }
            let v = client.json("POST", &path, None).await?;
            println!("{}", v["Id"].as_str().unwrap_or(""));
        }
        Command::Create(args) => {
            let id = create(client, &args).await?;
            println!("{id}");
        }
        Command::Run(args) => return run_container(client, args).await,
        Command::Start { attach, containers } => {
            for c in &containers {
                if attach {
                    return attach_and_start(client, c, false, false).await;
                }
                client
                    .call("POST", &format!("/containers/{}/start", enc(c)), None)
                    .await?;
                println!("{c}");
            }
        }
        Command::Ps { all, quiet, filter } => {
            let list = client
                .json(
                    "GET",
                    &format!(
                        "/containers/json?all={}{}",
                        all as u8,
                        filters_query(&filter)?
                    ),
                    None,
                )
                .await?;
            if !quiet {
                println!(
                    "{:<14} {:<24} {:<24} {:<16} {:<36} NAMES",
                    "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"
                );
            }
            for c in list.as_array().into_iter().flatten() {
                let id = c["Id"].as_str().unwrap_or("");
                if quiet {
                    println!("{}", &id[..12.min(id.len())]);
                    continue;
                }
                let mut command = format!("\"{}\"", c["Command"].as_str().unwrap_or(""));
                if command.len() > 22 {
                    command = format!("{}…\"", command.chars().take(20).collect::<String>());
                }
                let names: Vec<&str> = c["Names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                    .map(|n| n.trim_start_matches('/'))
                    .collect();
                println!(
                    "{:<14} {:<24} {:<24} {:<16} {:<36} {}",
                    &id[..12.min(id.len())],
                    c["Image"].as_str().unwrap_or(""),
                    command,
                    ago(c["Created"].as_i64().unwrap_or(0)),
                    c["Status"].as_str().unwrap_or(""),
                    names.join(",")
                );
            }
        }
        Command::Logs {
            follow,
            tail,
            timestamps,
            since,
            until,
            container,
        } => {
            let mut bounds = String::new();
            for (key, v) in [("since", &since), ("until", &until)] {
                if let Some(v) = v {
                    bounds += &format!("&{key}={}", unix_time(v)?);
                }
            }
            let info = client
                .json(
                    "GET",
                    &format!("/containers/{}/json", enc(&container)),
                    None,
                )
                .await?;
            let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
            let body = client
                .stream(
                    "GET",
                    &format!(
                        "/containers/{}/logs?stdout=1&stderr=1&follow={}&tail={}&timestamps={}{bounds}",
                        enc(&container),
                        follow as u8,
                        enc(&tail),
                        timestamps as u8
                    ),
                    None,
                )
                .await?;
            let mut demux = Demux::new(tty);
            each_chunk(body, |chunk| demux.feed(chunk)).await?;
        }
        Command::Stop { time, containers } => {
            for c in containers {
                let t = time.map(|t| format!("?t={t}")).unwrap_or_default();
                client
                    .call("POST", &format!("/containers/{}/stop{t}", enc(&c)), None)
                    .await?;
                println!("{c}");
            }
        }
        Command::Kill { signal, containers } => {
            for c in containers {
                client
                    .call(
                        "POST",
                        &format!("/containers/{}/kill?signal={}", enc(&c), enc(&signal)),
                        None,
                    )
                    .await?;
                println!("{c}");
            }
        }
        Command::Rm {
            force,
            volumes,
            containers,
        } => {
            let query = format!("?force={}&v={}", force as u8, volumes as u8);
            return remove_each(client, "/containers", &containers, &query).await;
        }
        Command::Exec {
            interactive,
            tty,
            detach,
            user,
            workdir,
            env,
            privileged,
            container,
            command,
        } => {
            let body = json!({
                "Privileged": privileged,
                "AttachStdin": interactive && !detach, "AttachStdout": !detach, "AttachStderr": !detach,
                "Tty": tty, "Cmd": command, "Env": env, "User": user.unwrap_or_default(),
                "WorkingDir": workdir.unwrap_or_default(),
            });
            let created = client
                .json(
                    "POST",
                    &format!("/containers/{}/exec", enc(&container)),
                    Some(&body),
                )
                .await?;
            let exec_id = created["Id"].as_str().unwrap_or("").to_string();
            let start = json!({"Detach": detach, "Tty": tty});
            if detach {
                client
                    .call("POST", &format!("/exec/{exec_id}/start"), Some(&start))
                    .await?;
                return Ok(0);
            }
            let io = client
                .hijack(&format!("/exec/{exec_id}/start"), Some(&start))
                .await?;
            let resize = format!("/exec/{exec_id}/resize");
            pump(client, io, tty, interactive, &resize).await?;
            let info = client
                .json("GET", &format!("/exec/{exec_id}/json"), None)
                .await?;
            return Ok(info["ExitCode"].as_i64().unwrap_or(0) as i32);
        }
        Command::Inspect { names } => {
            let mut out = Vec::new();
            for name in names {
                match client
                    .json("GET", &format!("/containers/{}/json", enc(&name)), None)
                    .await
                {
                    Ok(v) => out.push(v),
                    Err(_) => out.push(
                        client
                            .json("GET", &format!("/images/{}/json", enc(&name)), None)
                            .await
                            .map_err(|_| anyhow!("no such object: {name}"))?,
                    ),
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Wait { containers } => {
            for c in containers {
                let v = wait_body(
                    client
                        .stream("POST", &format!("/containers/{}/wait", enc(&c)), None)
                        .await?,
                )
                .await?;
                println!("{}", v["StatusCode"]);
            }
        }
        Command::Stats {
            no_stream: _,
            containers,
        } => {
            let ids: Vec<String> = if containers.is_empty() {
                let list = client.json("GET", "/containers/json", None).await?;
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["Id"].as_str().map(String::from))
                    .collect()
            } else {
                containers
            };
            println!(
                "{:<14} {:<24} {:<12} {:<24} PIDS",
                "CONTAINER ID", "NAME", "CPU TIME", "MEM USAGE / LIMIT"
            );
            for id in ids {
                let s = client
                    .json(
                        "GET",
                        &format!("/containers/{}/stats?stream=false", enc(&id)),
                        None,
                    )
                    .await?;
                let cpu = s["cpu_stats"]["cpu_usage"]["total_usage"]
                    .as_u64()
                    .unwrap_or(0) as f64
                    / 1e9;
                let limit = s["memory_stats"]["limit"].as_u64().unwrap_or(0);
                let limit = if limit == 0 || limit > 1 << 60 {
                    "unlimited".to_string()
                } else {
                    human_size(limit)
                };
                println!(
                    "{:<14} {:<24} {:<12} {:<24} {}",
                    &s["id"].as_str().unwrap_or("")[..12],
                    s["name"].as_str().unwrap_or("").trim_start_matches('/'),
                    format!("{cpu:.2}s"),
                    format!(
                        "{} / {limit}",
                        human_size(s["memory_stats"]["usage"].as_u64().unwrap_or(0))
                    ),
                    s["pids_stats"]["current"]
                );
            }
        }
        Command::Volume { command } => return volume(client, command).await,
        Command::Network { command } => return network(client, command).await,
        Command::System {
            command: SystemCommand::Df,
        } => {
            let df = client.json("GET", "/system/df", None).await?;
            print!("{}", df_table(&df));
        }
        Command::System {
            command: SystemCommand::Prune { force, all },
        } => {
            if !force && std::io::stdin().is_terminal() {
                eprint!("This removes all stopped containers, networks no container uses, and image data no tag uses. Continue? [y/N] ");
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !answer.trim().eq_ignore_ascii_case("y") {
                    return Ok(0);
                }
            }
            let c = client.json("POST", "/containers/prune", None).await?;
            let deleted = c["ContainersDeleted"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Containers:");
                for id in deleted {
                    println!("{}", id.as_str().unwrap_or(""));
                }
            }
            let n = client.json("POST", "/networks/prune", None).await?;
            let networks = n["NetworksDeleted"].as_array().cloned().unwrap_or_default();
            if !networks.is_empty() {
                println!("Deleted Networks:");
                for name in networks {
                    println!("{}", name.as_str().unwrap_or(""));
                }
            }
            let path = if all {
                format!("/images/prune?filters={}", enc(r#"{"dangling":["false"]}"#))
            } else {
                "/images/prune".to_string()
            };
            let i = client.json("POST", &path, None).await?;
            let images = i["ImagesDeleted"].as_array().cloned().unwrap_or_default();
            if !images.is_empty() {
                println!("Deleted Images:");
                for image in images {
                    println!("deleted: {}", image["Deleted"].as_str().unwrap_or(""));
                }
            }
            println!(
                "Total reclaimed space: {}",
                human_size(i["SpaceReclaimed"].as_u64().unwrap_or(0))
            );
        }
    }
    Ok(0)
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

async fn network(client: &Client, command: NetworkCommand) -> Result<i32> {
    match command {
        NetworkCommand::Create { name, subnet } => {
            let mut body = json!({"Name": name, "Driver": "bridge"});
            if let Some(s) = subnet {
                body["IPAM"] = json!({"Config": [{"Subnet": s}]});
            }
            let v = client.json("POST", "/networks/create", Some(&body)).await?;
            println!("{}", v["Id"].as_str().unwrap_or(""));
        }
        NetworkCommand::Ls => {
            let v = client.json("GET", "/networks", None).await?;
            println!("{:<14} {:<20} {:<8} SUBNET", "NETWORK ID", "NAME", "DRIVER");
            for n in v.as_array().into_iter().flatten() {
                let id = n["Id"].as_str().unwrap_or("");
                println!(
                    "{:<14} {:<20} {:<8} {}",
                    &id[..id.len().min(12)],
                    n["Name"].as_str().unwrap_or(""),
                    n["Driver"].as_str().unwrap_or(""),
                    n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or("")
                );
            }
        }
        NetworkCommand::Inspect { names } => {
            return inspect_each(client, "/networks", &names, "").await;
        }
        NetworkCommand::Rm { names } => return remove_each(client, "/networks", &names, "").await,
        NetworkCommand::Connect {
            alias,
            network,
            container,
        } => {
            let body = json!({"Container": container, "EndpointConfig": {"Aliases": alias}});
            client
                .call(
                    "POST",
                    &format!("/networks/{}/connect", enc(&network)),
                    Some(&body),
                )
                .await?;
        }
        NetworkCommand::Disconnect { network, container } => {
            let body = json!({"Container": container});
            client
                .call(
                    "POST",
                    &format!("/networks/{}/disconnect", enc(&network)),
                    Some(&body),
                )
                .await?;
        }
    }
    Ok(0)
}

async fn volume(client: &Client, command: VolumeCommand) -> Result<i32> {
    match command {
        VolumeCommand::Create { name } => {
            let v = client
                .json(
                    "POST",
                    "/volumes/create",
                    Some(&json!({"Name": name.unwrap_or_default()})),
                )
                .await?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        VolumeCommand::Ls { quiet } => {
            let v = client.json("GET", "/volumes", None).await?;
            if !quiet {
                println!("{:<10} VOLUME NAME", "DRIVER");
            }
            for vol in v["Volumes"].as_array().into_iter().flatten() {
                let name = vol["Name"].as_str().unwrap_or("");
                if quiet {
                    println!("{name}");
                } else {
                    println!("{:<10} {name}", vol["Driver"].as_str().unwrap_or(""));
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            return inspect_each(client, "/volumes", &names, "").await;
        }
        VolumeCommand::Rm { names } => return remove_each(client, "/volumes", &names, "").await,
        VolumeCommand::Prune { force: _ } => {
            let v = client.json("POST", "/volumes/prune", None).await?;
            for name in v["VolumesDeleted"].as_array().into_iter().flatten() {
                println!("{}", name.as_str().unwrap_or(""));
            }
        }
    }
    Ok(0)
}

fn ago(unix: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        "{} ago",
        human_duration(Duration::from_secs((now - unix).max(0) as u64))
    )
}

/// Docker's sizes: decimal units, three significant digits.
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    // Go's %.3g, as Docker's go-units: no trailing zeros (0B, 512B, 2kB, 2.05kB).
    let text = format!("{v:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", units[i])
}

/// Pulls, printing Docker's progress lines (on stderr when the pull is part
/// of a `run`, so the container's output stays alone on stdout).
/// Prints a JSON message stream (pull, push, build) to stdout, or to
/// stderr: statuses with their layer's id, streams as they are; byte
/// progress is left out (Docker's CLI draws bars from it). Returns the
/// error the stream ended with.
async fn print_messages(body: hyper::body::Incoming, to_stderr: bool) -> Result<Option<String>> {
    let mut failed = None;
    let mut pending = Vec::new();
    let mut stdout = std::io::stdout();
    each_chunk(body, |chunk| {
        pending.extend_from_slice(chunk);
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let Ok(m) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = m["error"].as_str() {
                failed = Some(e.to_string());
            } else if m["progressDetail"]["current"].is_number() {
            } else {
                let text = match (m["stream"].as_str(), m["status"].as_str(), m["id"].as_str()) {
                    (Some(s), _, _) => s.to_string(),
                    (None, Some(status), Some(id)) => format!("{id}: {status}\n"),
                    (None, Some(status), None) => format!("{status}\n"),
                    _ => String::new(),
                };
                if to_stderr {
                    eprint!("{text}");
                } else {
                    print!("{text}");
                    let _ = stdout.flush();
                }
            }
        }
    })
    .await?;
    Ok(failed)
}

/// The build context as a tar, as Docker's CLI sends it: every file of
/// `dir` that `.dockerignore` does not exclude (the Dockerfile and the
/// `.dockerignore` always go), and the Dockerfile's name in it (one
/// outside the context is added under a name of its own).
fn context_tar(dir: &std::path::Path, file: Option<&std::path::Path>) -> Result<(Vec<u8>, String)> {
    use chapter_06::build::ignore::Ignore;
    if !dir.is_dir() {
        return Err(anyhow!(
            "the build context {} is not a directory",
            dir.display()
        ));
    }
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text).map_err(|e| anyhow!(e))?,
        Err(_) => Ignore::none(),
    };
    let dockerfile = file.map_or_else(|| dir.join("Dockerfile"), |f| f.to_path_buf());
    if !dockerfile.is_file() {
        return Err(anyhow!(
            "cannot find the Dockerfile {}: give it with -f",
            dockerfile.display()
        ));
    }
    let canon_dir = std::fs::canonicalize(dir)?;
    let canon_file = std::fs::canonicalize(&dockerfile)?;
    let inside = canon_file
        .strip_prefix(&canon_dir)
        .ok()
        .map(|r| r.to_string_lossy().into_owned());
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let name = inside
        .clone()
        .unwrap_or_else(|| format!(".dockerfile.{}", std::process::id()));
    let always = [name.as_str(), ".dockerignore"];
    chapter_06::build::ignore::walk(dir, &mut |rel, path, meta| {
        let excluded = ignore.excluded(rel) && !always.contains(&rel);
        if !excluded {
            tar.append_path_with_name(path, rel).map_err(|e| {
                std::io::Error::other(format!("adding {} to the context: {e}", path.display()))
            })?;
        }
        // Into an excluded directory only when an exception may be inside.
        Ok(!excluded || (meta.is_dir() && ignore.has_exceptions()))
    })?;
    if inside.is_none() {
        let bytes = std::fs::read(&dockerfile)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, &name, bytes.as_slice())?;
    }
    Ok((tar.into_inner()?, name))
}

/// A time as the API wants it (unix seconds): a duration back from now
/// (`10m`), an RFC 3339 time, or unix seconds as they are.
fn unix_time(text: &str) -> Result<String> {
    if text.parse::<f64>().is_ok() {
        return Ok(text.to_string());
    }
    if let Some(t) = chapter_06::jsonlog::parse_time(text) {
        return Ok(format!("{:.9}", t.unix_timestamp_nanos() as f64 / 1e9));
    }
    let ago = chapter_06::build::parse_duration(text).map_err(|_| {
        anyhow!("invalid time {text:?}: use 10m, 1h30m, an RFC 3339 time or unix seconds")
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    Ok(format!("{:.9}", now.saturating_sub(ago) as f64 / 1e9))
}

/// `system df` as Docker's CLI prints it: per kind, how many, how many in
/// use, their size, and what removing the unused would free.
fn df_table(df: &Value) -> String {
    let list = |k: &str| df[k].as_array().cloned().unwrap_or_default();
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0).max(0) as u64;
    let row = |kind: &str,
               items: &[Value],
               active: &dyn Fn(&Value) -> bool,
               size: &dyn Fn(&Value) -> u64| {
        let total: u64 = items.iter().map(size).sum();
        let idle: u64 = items.iter().filter(|i| !active(i)).map(size).sum();
        let used = items.iter().filter(|i| active(i)).count();
        let percent = (idle * 100).checked_div(total).unwrap_or(0);
        format!(
            "{kind:<16}{:<10}{used:<10}{:<10}{} ({percent}%)\n",
            items.len(),
            human_size(total),
            human_size(idle)
        )
    };
    let mut out = format!(
        "{:<16}{:<10}{:<10}{:<10}RECLAIMABLE\n",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    out += &row(
        "Images",
        &list("Images"),
        &|i| int(i, "Containers") > 0,
        &|i| int(i, "Size"),
    );
    out += &row(
        "Containers",
        &list("Containers"),
        &|c| c["State"] == "running",
        &|c| int(c, "SizeRw"),
    );
    out += &row(
        "Local Volumes",
        &list("Volumes"),
        &|v| int(&v["UsageData"], "RefCount") > 0,
        &|v| int(&v["UsageData"], "Size"),
    );
    out += &format!("{:<16}{:<10}{:<10}{:<10}0B\n", "Build Cache", 0, 0, "0B");
    out
}

/// An event as Docker's CLI prints it: `TIME TYPE ACTION ID (k=v, …)`.
fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"].as_i64().unwrap_or(0);
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map(chapter_06::jsonlog::format_time)
        .unwrap_or_default();
    let attributes: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{time} {} {} {} ({})",
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or(""),
        attributes.join(", ")
    )
}

/// `cp SRC DST`, one side `CONTAINER:PATH`, Docker's rules (see
/// [`chapter_06::cp`]). Returns what to say on success.
async fn cp(client: &Client, src: &str, dst: &str, archive: bool, follow: bool) -> Result<String> {
    use chapter_06::archive::PathStat;
    use chapter_06::cp::{self as rules, split_target};
    let archive_path = |c: &str, p: &str, extra: &str| {
        format!("/containers/{}/archive?path={}{extra}", enc(c), enc(p))
    };
    let stat_of = |r: &hyper::Response<hyper::body::Incoming>| -> Result<PathStat> {
        use base64::Engine as _;
        let header = r
            .headers()
            .get("X-Docker-Container-Path-Stat")
            .ok_or_else(|| anyhow!("the daemon sent no X-Docker-Container-Path-Stat header"))?;
        let json = base64::engine::general_purpose::STANDARD.decode(header.as_bytes())?;
        Ok(serde_json::from_slice(&json)?)
    };
    match (split_target(src), split_target(dst)) {
        (Some(_), Some(_)) => Err(anyhow!(
            "copying between containers is not supported: copy to the host, then on"
        )),
        (None, None) => Err(anyhow!(
            "must specify at least one container source: CONTAINER:PATH"
        )),
        (Some((container, path)), None) => {
            let mut path = path.to_string();
            let mut response = client
                .request("GET", &archive_path(container, &path, ""), Vec::new(), "")
                .await?;
            let mut stat = stat_of(&response)?;
            if follow && !stat.link_target.is_empty() {
                path = stat.link_target.clone();
                response = client
                    .request("GET", &archive_path(container, &path, ""), Vec::new(), "")
                    .await?;
                stat = stat_of(&response)?;
            }
            if dst == "-" {
                write_archive(response.into_body(), None).await?;
                return Ok(String::new());
            }
            let (dir, name) =
                rules::local_destination(std::path::Path::new(dst), stat.is_dir(), &stat.name)?;
            let mut spool = tempfile::tempfile()?;
            let mut failed = None;
            each_chunk(response.into_body(), |chunk| {
                if failed.is_none() {
                    failed = spool.write_all(chunk).err();
                }
            })
            .await?;
            if let Some(e) = failed {
                return Err(anyhow!("spooling the archive: {e}"));
            }
            use std::io::Seek;
            spool.seek(std::io::SeekFrom::Start(0))?;
            let old = if stat.name == "/" {
                "."
            } else {
                stat.name.as_str()
            };
            rules::extract_local(spool, &dir, old, &name)?;
            Ok(format!(
                "Successfully copied from {container}:{path} to {dst}"
            ))
        }
        (None, Some((container, path))) => {
            // A missing container first, in so many words: a HEAD for a
            // path has no body to say which of the two is missing.
            client
                .call("GET", &format!("/containers/{}/json", enc(container)), None)
                .await?;
            let extra = format!(
                "&noOverwriteDirNonDir=true{}",
                if archive { "&copyUIDGID=true" } else { "" }
            );
            if src == "-" {
                let mut tar = Vec::new();
                std::io::stdin().lock().read_to_end(&mut tar)?;
                client
                    .request(
                        "PUT",
                        &archive_path(container, path, &extra),
                        tar,
                        "application/x-tar",
                    )
                    .await?;
                return Ok(String::new());
            }
            let local = std::path::Path::new(src);
            let meta = if follow {
                std::fs::metadata(local)
            } else {
                std::fs::symlink_metadata(local)
            }
            .map_err(|e| anyhow!("{src}: {e}"))?;
            let stat = client
                .request("HEAD", &archive_path(container, path, ""), Vec::new(), "")
                .await;
            // Into an existing directory under the source's name; else the
            // destination is the new name, in its parent.
            let (dir, name) = match stat {
                Ok(r) if stat_of(&r)?.is_dir() => (path.to_string(), rules::root_name(src)),
                Ok(_) if meta.is_dir() => {
                    return Err(anyhow!(
                        "cannot copy a directory to a file: {container}:{path} is a file"
                    ))
                }
                Ok(_) => rules::container_parent(path),
                Err(e)
                    if e.downcast_ref::<ApiError>()
                        .is_some_and(|a| a.status == hyper::StatusCode::NOT_FOUND) =>
                {
                    let (parent, name) = rules::container_parent(path);
                    if path.ends_with('/') && !meta.is_dir() {
                        return Err(anyhow!(
                            "destination directory {container}:{path} does not exist"
                        ));
                    }
                    (parent, name)
                }
                Err(e) => return Err(e),
            };
            let tar = rules::tar_local(local, &name, follow)?;
            let size = tar.len();
            client
                .request(
                    "PUT",
                    &archive_path(container, &dir, &extra),
                    tar,
                    "application/x-tar",
                )
                .await?;
            Ok(format!(
                "Successfully copied {} to {container}:{path}",
                human_size(size as u64)
            ))
        }
    }
}

/// Writes a tar the daemon streams to `output` (written beside it and
/// renamed: a failed transfer leaves no half archive under the name), or
/// to standard output.
async fn write_archive(
    body: hyper::body::Incoming,
    output: Option<&std::path::Path>,
) -> Result<()> {
    let mut sink: Box<dyn Write> = Box::new(std::io::stdout().lock());
    let mut partial = None;
    if let Some(out) = output {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| anyhow!("writing in {}: {e}", dir.display()))?;
        sink = Box::new(tmp.reopen()?);
        partial = Some(tmp);
    }
    let mut failed = None;
    each_chunk(body, |chunk| {
        if failed.is_none() {
            if let Err(e) = sink.write_all(chunk) {
                failed = Some(e);
            }
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(anyhow!("writing the archive: {e}"));
    }
    sink.flush()?;
    if let (Some(tmp), Some(out)) = (partial, output) {
        tmp.persist(out)
            .map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    }
    Ok(())
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

async fn pull(client: &Client, image: &str, platform: Option<&str>, to_stderr: bool) -> Result<()> {
    let (from, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    let mut path = format!("/images/create?fromImage={}&tag={}", enc(from), enc(tag));
    if let Some(p) = platform {
        path += &format!("&platform={}", enc(p));
    }
    let body = client.stream("POST", &path, None).await?;
    match print_messages(body, to_stderr).await? {
        Some(e) => Err(anyhow!("pulling {image}: {e}")),
        None => Ok(()),
    }
}

/// `DEVICE:RATE` flags as the API's `{"Path", "Rate"}` (the rate in bytes
/// or operations per second: 1mb is 1048576, as Docker's CLI sends it).
/// `--device HOST[:CONTAINER][:PERMISSIONS]`, read as Docker's CLI reads it:
/// a second part that is only r, w and m is the permissions.
fn device_of(spec: &str) -> Result<Value> {
    let permissions =
        |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b"rwm".contains(&b));
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, inside, perms) = match parts[..] {
        [host] => (host, host, "rwm"),
        [host, p] if permissions(p) => (host, host, p),
        [host, inside] => (host, inside, "rwm"),
        [host, inside, p] => (host, inside, p),
        _ => anyhow::bail!(
            "invalid device specification {spec:?}: use HOST[:CONTAINER][:PERMISSIONS]"
        ),
    };
    if !permissions(perms) {
        anyhow::bail!("invalid device mode {perms:?} in --device {spec:?}: use some of r, w, m");
    }
    if !inside.starts_with('/') {
        anyhow::bail!("{inside} is not an absolute path (--device {spec:?})");
    }
    Ok(json!({"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}))
}

fn throttle_devices(flag: &str, specs: &[String], iops: bool) -> Result<Value> {
    specs
        .iter()
        .map(|s| {
            let (path, rate) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("invalid argument {s:?} for {flag}: use DEVICE:RATE"))?;
            let rate = if iops {
                rate.parse::<u64>().map_err(|_| {
                    anyhow!("invalid argument {s:?} for {flag}: a number of operations")
                })?
            } else {
                chapter_02::size::parse_size(rate)
                    .map_err(|e| anyhow!("invalid argument {s:?} for {flag}: {e}"))?
            };
            Ok(json!({"Path": path, "Rate": rate}))
        })
        .collect::<Result<Vec<_>>>()
        .map(Value::from)
}

/// `--label-file` lines (KEY=VALUE; blank lines and # comments skipped),
/// before the `--label`s, which win.
fn labels_of(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut labels = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow!("reading label file {}: {e}", file.display()))?;
        labels.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    Ok(labels)
}

/// `--mount` as one `HostConfig.Mounts` entry, with Docker's keys and
/// their aliases (src, dst, destination, ro).
fn mount_of(spec: &str) -> Result<Value> {
    let mut m = json!({"Type": "volume", "Source": "", "Target": "", "ReadOnly": false});
    let bad = |why: String| anyhow!("invalid argument {spec:?} for --mount: {why}");
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        let truth = || match value {
            "" | "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(bad(format!("{key}={other}: true or false"))),
        };
        match key {
            "type" => m["Type"] = json!(value),
            "source" | "src" => m["Source"] = json!(value),
            "target" | "destination" | "dst" => m["Target"] = json!(value),
            "readonly" | "ro" => m["ReadOnly"] = json!(truth()?),
            "volume-subpath" => m["VolumeOptions"]["Subpath"] = json!(value),
            "volume-nocopy" => m["VolumeOptions"]["NoCopy"] = json!(truth()?),
            "tmpfs-size" => {
                let size = chapter_02::size::parse_size(value)
                    .map_err(|e| bad(format!("tmpfs-size: {e}")))?;
                m["TmpfsOptions"]["SizeBytes"] = json!(size);
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(value, 8)
                    .map_err(|_| bad(format!("tmpfs-mode={value}: octal")))?;
                m["TmpfsOptions"]["Mode"] = json!(mode);
            }
            "bind-propagation" | "consistency" => {}
            other => return Err(bad(format!("unknown key {other:?}"))),
        }
    }
    if m["Target"] == "" {
        return Err(bad("target is required".into()));
    }
    Ok(m)
}

/// `--health-*` and `--no-healthcheck` as the API's `Healthcheck`
/// (durations in nanoseconds; zero fields take the image's).
fn healthcheck_of(args: &RunArgs) -> Result<Value> {
    let duration = |flag: &str, v: &Option<String>| -> Result<u64> {
        v.as_deref().map_or(Ok(0), |t| {
            chapter_06::build::parse_duration(t)
                .map_err(|e| anyhow!("invalid argument {t:?} for --{flag}: {e}"))
        })
    };
    let given = args.health_cmd.is_some()
        || args.health_interval.is_some()
        || args.health_timeout.is_some()
        || args.health_retries.is_some()
        || args.health_start_period.is_some();
    if args.no_healthcheck {
        if given {
            return Err(anyhow!(
                "--no-healthcheck conflicts with --health-* options"
            ));
        }
        return Ok(json!({"Test": ["NONE"]}));
    }
    if !given {
        return Ok(Value::Null);
    }
    Ok(json!({
        "Test": args.health_cmd.as_ref().map(|c| json!(["CMD-SHELL", c])).unwrap_or(json!([])),
        "Interval": duration("health-interval", &args.health_interval)?,
        "Timeout": duration("health-timeout", &args.health_timeout)?,
        "StartPeriod": duration("health-start-period", &args.health_start_period)?,
        "Retries": args.health_retries.unwrap_or(0),
    }))
}

/// A size flag as Docker's CLI reads it: 64m, 1g, bytes; -1 for
/// unlimited; absent is 0.
fn size_flag(flag: &str, v: &Option<String>) -> Result<i64> {
    match v.as_deref() {
        None => Ok(0),
        Some("-1") => Ok(-1),
        Some(text) => chapter_02::size::parse_size(text)
            .map(|n| n as i64)
            .map_err(|e| anyhow!("invalid argument for {flag}: {e}")),
    }
}

fn create_body(args: &RunArgs) -> Result<Value> {
    let mut env: Vec<String> = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow!("reading env file {}: {e}", file.display()))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            env.push(expand_env(line));
        }
    }
    env.extend(args.env.iter().map(|e| expand_env(e)));
    let size = size_flag;
    if let Some(c) = args.cpus {
        if c.is_nan() || c <= 0.0 {
            return Err(anyhow!(
                "invalid argument {c} for --cpus: a positive number of CPUs, e.g. 0.5"
            ));
        }
    }
    let healthcheck = healthcheck_of(args)?;
    // The namespace modes, names and groups (one json! would be too deep).
    let more_host_config = json!({
        "PidMode": args.pid.clone().unwrap_or_default(),
        "UTSMode": args.uts.clone().unwrap_or_default(),
        "IpcMode": args.ipc.clone().unwrap_or_default(),
        "ExtraHosts": args.add_host,
        "Dns": args.dns,
        "DnsSearch": args.dns_search,
        "DnsOptions": args.dns_option,
        "GroupAdd": args.group_add,
        "VolumesFrom": args.volumes_from,
        "Ulimits": args.ulimit.iter().map(|u| {
            let bad = || anyhow!("invalid argument {u:?} for --ulimit: use NAME=SOFT[:HARD], e.g. nofile=1024:2048");
            let (name, limits) = u.split_once('=').ok_or_else(bad)?;
            let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
            let n = |v: &str| v.parse::<i64>().map_err(|_| bad());
            Ok(json!({"Name": name, "Soft": n(soft)?, "Hard": n(hard)?}))
        }).collect::<Result<Vec<_>>>()?,
        "Mounts": args.mount.iter().map(|m| mount_of(m)).collect::<Result<Vec<_>>>()?,
        "MemoryReservation": size("--memory-reservation", &args.memory_reservation)?,
        "MemorySwappiness": args.memory_swappiness,
        "OomKillDisable": args.oom_kill_disable,
        "Init": args.init.then_some(true),
        "Devices": args.device.iter().map(|d| device_of(d)).collect::<Result<Vec<_>>>()?,
        "DeviceCgroupRules": (!args.device_cgroup_rule.is_empty()).then(|| args.device_cgroup_rule.clone()),
        "CpusetMems": args.cpuset_mems.clone().unwrap_or_default(),
        "BlkioWeight": args.blkio_weight.unwrap_or(0),
        "BlkioDeviceReadBps": throttle_devices("--device-read-bps", &args.device_read_bps, false)?,
        "BlkioDeviceWriteBps": throttle_devices("--device-write-bps", &args.device_write_bps, false)?,
        "BlkioDeviceReadIOps": throttle_devices("--device-read-iops", &args.device_read_iops, true)?,
        "BlkioDeviceWriteIOps": throttle_devices("--device-write-iops", &args.device_write_iops, true)?,
        "LogConfig": if args.log_driver.is_none() && args.log_opt.is_empty() {
            Value::Null
        } else {
            json!({
                "Type": args.log_driver.clone().unwrap_or_default(),
                "Config": args.log_opt.iter().map(|o| {
                    o.split_once('=').map(|(k, v)| (k.to_string(), json!(v)))
                        .ok_or_else(|| anyhow!("invalid --log-opt {o:?}: use KEY=VALUE"))
                }).collect::<Result<serde_json::Map<_, _>>>()?,
            })
        },
    });
    let mut body = json!({
        "Healthcheck": healthcheck,
        "Hostname": args.hostname.clone().unwrap_or_default(),
        "User": args.user.clone().unwrap_or_default(),
        "AttachStdin": args.interactive && !args.detach,
        "AttachStdout": !args.detach,
        "AttachStderr": !args.detach,
        "Tty": args.tty,
        "OpenStdin": args.interactive,
        "StdinOnce": args.interactive && !args.detach,
        "Env": env,
        "Cmd": if args.command.is_empty() { Value::Null } else { json!(args.command) },
        "Image": args.image,
        "ExposedPorts": args.publish.iter().chain(&args.expose).filter_map(|p| port_key(p).ok()).map(|k| (k, json!({}))).collect::<serde_json::Map<_, _>>(),
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "StopSignal": args.stop_signal,
        "StopTimeout": args.stop_timeout,
        "Labels": labels_of(&args.label_file)?.iter().chain(&args.label).map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), json!(v))
        }).collect::<serde_json::Map<_, _>>(),
        "Entrypoint": args.entrypoint.as_ref().map(|e| if e.is_empty() { json!([""]) } else { json!([e]) }).unwrap_or(Value::Null),
        "HostConfig": {
            "RestartPolicy": match args.restart.as_deref() {
                None => json!({}),
                Some(p) => {
                    let (name, count) = p.split_once(':').unwrap_or((p, "0"));
                    let count: i64 = count.parse().map_err(|_| anyhow!("invalid --restart {p:?}: the retry count after ':' is a number"))?;
                    json!({"Name": name, "MaximumRetryCount": count})
                }
            },
            "Memory": size("--memory", &args.memory)?,
            "MemorySwap": size("--memory-swap", &args.memory_swap)?,
            "NanoCpus": args.cpus.map_or(0, |c| (c * 1e9) as i64),
            "CpuShares": args.cpu_shares.unwrap_or(0),
            "CpusetCpus": args.cpuset_cpus.clone().unwrap_or_default(),
            "PidsLimit": args.pids_limit,
            "NetworkMode": args.network,
            "AutoRemove": args.rm,
            "PortBindings": port_bindings(&args.publish)?,
            "PublishAllPorts": args.publish_all,
            "Binds": args.volumes,
            "Tmpfs": args.tmpfs.iter().map(|t| match t.split_once(':') {
                Some((path, options)) => (path.to_string(), options.to_string()),
                None => (t.clone(), String::new()),
            }).collect::<std::collections::BTreeMap<_, _>>(),
            "ReadonlyRootfs": args.read_only,
            "Privileged": args.privileged,
            "CapAdd": args.cap_add,
            "CapDrop": args.cap_drop,
            "SecurityOpt": security_opts(&args.security_opt)?,
            "CgroupnsMode": args.cgroupns.clone().unwrap_or_default(),
            "UsernsMode": args.userns.clone().unwrap_or_default(),

            "ConsoleSize": if args.tty { terminal_size().map(|(h, w)| [h, w]) } else { None },
        },
        "NetworkingConfig": {
            "EndpointsConfig": if args.network_alias.is_empty() && args.ip.is_none() {
                json!({})
            } else {
                json!({ args.network.clone(): {
                    "Aliases": args.network_alias,
                    "IPAMConfig": args.ip.as_ref().map(|ip| json!({"IPv4Address": ip})),
                }})
            },
        },
    });
    if let (Some(h), Some(more)) = (
        body["HostConfig"].as_object_mut(),
        more_host_config.as_object(),
    ) {
        h.extend(more.clone());
    }
    Ok(body)
}

/// `--security-opt` as the daemon takes it: a seccomp profile is read
/// here, on the client, and sent as its JSON (as the docker CLI does).
fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    opts.iter()
        .map(|opt| match opt.split_once(['=', ':']) {
            Some(("seccomp", path)) if path != "unconfined" => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("opening seccomp profile ({path}) failed: {e}"))?;
                let profile: Value = serde_json::from_str(&text)
                    .map_err(|e| anyhow!("seccomp profile ({path}) is not JSON: {e}"))?;
                Ok(format!("seccomp={profile}"))
            }
            _ => Ok(opt.clone()),
        })
        .collect()
}

/// `80`, `8080:80`, `127.0.0.1:8080:80/udp` → its "80/tcp" key.
fn port_key(spec: &str) -> Result<String> {
    let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let container = rest.rsplit(':').next().unwrap_or(rest);
    container.parse::<u16>().map_err(|_| {
        anyhow!("invalid port {spec:?}: use [host_ip:]host_port:container_port[/tcp|udp]")
    })?;
    if proto != "tcp" && proto != "udp" {
        return Err(anyhow!("invalid protocol in {spec:?}: tcp or udp"));
    }
    Ok(format!("{container}/{proto}"))
}

/// `-p` flags as Docker's `PortBindings`.
fn port_bindings(specs: &[String]) -> Result<Value> {
    let mut map = serde_json::Map::new();
    for spec in specs {
        let key = port_key(spec)?;
        let rest = spec.rsplit_once('/').map_or(spec.as_str(), |(r, _)| r);
        let parts: Vec<&str> = rest.split(':').collect();
        let (host_ip, host_port) = match parts.as_slice() {
            [_] => ("", ""),
            [hp, _] => ("", *hp),
            [ip, hp, _] => (*ip, *hp),
            _ => {
                return Err(anyhow!(
                    "invalid port {spec:?}: use [host_ip:]host_port:container_port[/tcp|udp]"
                ))
            }
        };
        if !host_port.is_empty() && host_port.parse::<u16>().is_err() {
            return Err(anyhow!("invalid host port in {spec:?}"));
        }
        let entry = map.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": host_ip, "HostPort": host_port}));
        }
    }
    Ok(Value::Object(map))
}

/// `-e KEY` takes KEY's value from this environment (left out if unset).
fn expand_env(spec: &str) -> String {
    if spec.contains('=') {
        spec.to_string()
    } else {
        format!("{spec}={}", std::env::var(spec).unwrap_or_default())
    }
}

async fn create(client: &Client, args: &RunArgs) -> Result<String> {
    let body = create_body(args)?;
    let mut path = String::from("/containers/create?");
    if let Some(n) = &args.name {
        path += &format!("name={}&", enc(n));
    }
    if let Some(p) = &args.platform {
        path += &format!("platform={}", enc(p));
    }
    match client.json("POST", &path, Some(&body)).await {
        Ok(v) => Ok(v["Id"].as_str().unwrap_or("").to_string()),
        Err(e)
            if e.downcast_ref::<ApiError>().is_some_and(|a| {
                a.status == hyper::StatusCode::NOT_FOUND && a.message.starts_with("No such image")
            }) =>
        {
            eprintln!("Unable to find image '{}' locally", args.image);
            pull(client, &args.image, args.platform.as_deref(), true).await?;
            let v = client.json("POST", &path, Some(&body)).await?;
            Ok(v["Id"].as_str().unwrap_or("").to_string())
        }
        Err(e) => Err(e),
    }
}

async fn run_container(client: &Client, args: RunArgs) -> Result<i32> {
    let id = create(client, &args).await?;
    if args.detach {
        client
            .call("POST", &format!("/containers/{id}/start"), None)
            .await?;
        println!("{id}");
        return Ok(0);
    }
    attach_and_start(client, &id, args.tty, args.interactive).await
}

/// Docker's order for a foreground run: attach, ask for the exit (so it
/// cannot be missed), start, stream, then read the exit code.
async fn attach_and_start(client: &Client, id: &str, tty: bool, interactive: bool) -> Result<i32> {
    let io = client
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
                interactive as u8
            ),
            None,
        )
        .await?;
    let info = client
        .json("GET", &format!("/containers/{id}/json"), None)
        .await?;
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let wait = client
        .stream(
            "POST",
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
        )
        .await?;
    client
        .call("POST", &format!("/containers/{id}/start"), None)
        .await?;
    pump(
        client,
        io,
        tty,
        interactive,
        &format!("/containers/{id}/resize"),
    )
    .await?;
    let v = wait_body(wait).await?;
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

async fn wait_body(body: hyper::body::Incoming) -> Result<Value> {
    let mut all = Vec::new();
    each_chunk(body, |c| all.extend_from_slice(c)).await?;
    Ok(serde_json::from_slice(&all)?)
}

/// Splits multiplexed output onto stdout and stderr (or copies raw bytes).
struct Demux {
    tty: bool,
    buf: Vec<u8>,
}

impl Demux {
    fn new(tty: bool) -> Demux {
        Demux {
            tty,
            buf: Vec::new(),
        }
    }
    fn feed(&mut self, chunk: &[u8]) {
        if self.tty {
            let mut out = std::io::stdout();
            let _ = out.write_all(chunk);
            let _ = out.flush();
            return;
        }
        self.buf.extend_from_slice(chunk);
        while let Some((stream, payload)) = next_frame(&mut self.buf) {
            if stream == 2 {
                let _ = std::io::stderr().write_all(&payload);
            } else {
                let mut out = std::io::stdout();
                let _ = out.write_all(&payload);
                let _ = out.flush();
            }
        }
    }
}

/// Raw mode on our terminal for `-t`, restored when dropped.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode(None);
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

fn terminal_size() -> Option<(u16, u16)> {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into valid memory.
    let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_row > 0).then_some((size.ws_row, size.ws_col))
}

/// Moves bytes between our stdio and a hijacked connection until the
/// container side closes it.
async fn pump(
    client: &Client,
    io: hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>,
    tty: bool,
    interactive: bool,
    resize: &str,
) -> Result<()> {
    let _raw = if tty { Some(RawMode::enter()) } else { None };
    if tty {
        if let Some((h, w)) = terminal_size() {
            let _ = client
                .call("POST", &format!("{resize}?h={h}&w={w}"), None)
                .await;
        }
        let client_socket = client.socket.clone();
        let resize = resize.to_string();
        tokio::spawn(async move {
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            let client = Client::new(client_socket);
            while winch.recv().await.is_some() {
                if let Some((h, w)) = terminal_size() {
                    let _ = client
                        .call("POST", &format!("{resize}?h={h}&w={w}"), None)
                        .await;
                }
            }
        });
    }
    let (mut rd, mut wr) = tokio::io::split(io);
    if interactive {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 4096];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if wr.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            // Our stdin ended: close our writing half; the container's
            // stdin closes (StdinOnce).
            let _ = wr.shutdown().await;
        });
    }
    let mut demux = Demux::new(tty);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => demux.feed(&buf[..n]),
        }
    }
    Ok(())
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
