//! Containers: create and start them, list, stop, kill, remove, rename, pause, update, inspect, and what they changed.

use super::*;

#[derive(Args)]
pub(super) struct ExportArgs {
    /// The archive [default: standard output, when it is not a terminal]
    #[arg(short, long)]
    pub(super) output: Option<std::path::PathBuf>,
    pub(super) container: String,
}

#[derive(Args)]
pub(super) struct DiffArgs {
    pub(super) container: String,
}

#[derive(Args)]
pub(super) struct CommitArgs {
    /// A Dockerfile instruction for the image's config (CMD, ENV, …)
    #[arg(short = 'c', long = "change")]
    pub(super) changes: Vec<String>,
    /// A commit message
    #[arg(short, long)]
    pub(super) message: Option<String>,
    /// The author (e.g. "Ada <ada@example.org>")
    #[arg(short, long)]
    pub(super) author: Option<String>,
    pub(super) container: String,
    /// NAME[:TAG] [default: no name]
    pub(super) repository: Option<String>,
}

#[derive(Args)]
pub(super) struct StartArgs {
    #[arg(short, long)]
    pub(super) attach: bool,
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct PsArgs {
    #[arg(short, long)]
    pub(super) all: bool,
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// NAME=VALUE: label=k[=v], name, id, status, ancestor, exited, network, volume, before, since
    #[arg(short, long)]
    pub(super) filter: Vec<String>,
}

#[derive(Args)]
pub(super) struct RenameArgs {
    pub(super) container: String,
    pub(super) name: String,
}

#[derive(Args)]
pub(super) struct PauseArgs {
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct UnpauseArgs {
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct TopArgs {
    pub(super) container: String,
}

#[derive(Args)]
pub(super) struct UpdateArgs {
    /// Memory limit (e.g. 64m)
    #[arg(short, long)]
    pub(super) memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap)
    #[arg(long, allow_hyphen_values = true)]
    pub(super) memory_swap: Option<String>,
    /// CPUs (e.g. 0.5)
    #[arg(long)]
    pub(super) cpus: Option<f64>,
    #[arg(long)]
    pub(super) cpu_shares: Option<i64>,
    #[arg(long)]
    pub(super) cpuset_cpus: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub(super) pids_limit: Option<i64>,
    /// A soft memory limit
    #[arg(long)]
    pub(super) memory_reservation: Option<String>,
    #[arg(long)]
    pub(super) cpuset_mems: Option<String>,
    /// Relative IO weight, 10 to 1000
    #[arg(long)]
    pub(super) blkio_weight: Option<u16>,
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct RestartArgs {
    /// Seconds to wait for the stop signal before SIGKILL
    #[arg(short, long)]
    pub(super) time: Option<u32>,
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct StopArgs {
    #[arg(short = 't', long = "time")]
    pub(super) time: Option<i64>,
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct KillArgs {
    #[arg(short, long, default_value = "KILL")]
    pub(super) signal: String,
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct RmArgs {
    #[arg(short, long)]
    pub(super) force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub(super) volumes: bool,
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct InspectArgs {
    #[arg(required = true)]
    pub(super) names: Vec<String>,
}

#[derive(Args)]
pub(super) struct WaitArgs {
    #[arg(required = true)]
    pub(super) containers: Vec<String>,
}

#[derive(Args)]
pub(super) struct StatsArgs {
    #[arg(long)]
    pub(super) no_stream: bool,
    pub(super) containers: Vec<String>,
}

pub(super) async fn export(client: &Client, args: ExportArgs) -> Result<i32> {
    let ExportArgs { output, container } = args;
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
    Ok(0)
}

pub(super) async fn pause(client: &Client, args: PauseArgs) -> Result<i32> {
    let PauseArgs { containers } = args;
    each_post(client, &containers, "pause").await
}

pub(super) async fn unpause(client: &Client, args: UnpauseArgs) -> Result<i32> {
    let UnpauseArgs { containers } = args;
    each_post(client, &containers, "unpause").await
}

pub(super) async fn update(client: &Client, args: UpdateArgs) -> Result<i32> {
    let UpdateArgs {
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
    } = args;
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
    each_request(client, "POST", &containers, Some(&body), |c| {
        format!("/containers/{}/update", enc(c))
    })
    .await
}

pub(super) async fn top(client: &Client, args: TopArgs) -> Result<i32> {
    let TopArgs { container } = args;
    let top = client.top(&container).await?;
    println!("{}", top.titles.join("\t"));
    for row in top.processes {
        println!("{}", row.join("\t"));
    }
    Ok(0)
}

pub(super) async fn rename(client: &Client, args: RenameArgs) -> Result<i32> {
    let RenameArgs { container, name } = args;
    client
        .call(
            "POST",
            &format!("/containers/{}/rename?name={}", enc(&container), enc(&name)),
            None,
        )
        .await?;
    Ok(0)
}

pub(super) async fn restart(client: &Client, args: RestartArgs) -> Result<i32> {
    let RestartArgs { time, containers } = args;
    let verb = match time {
        Some(t) => format!("restart?t={t}"),
        None => "restart".into(),
    };
    each_post(client, &containers, &verb).await
}

pub(super) async fn diff(client: &Client, args: DiffArgs) -> Result<i32> {
    let DiffArgs { container } = args;
    let path = format!("/containers/{}/changes", enc(&container));
    let list: Vec<chapter_06::api::Change> = client.typed::<(), _>("GET", &path, None).await?;
    for change in list {
        let letter = match change.kind {
            1 => 'A',
            2 => 'D',
            _ => 'C',
        };
        println!("{letter} {}", change.path);
    }
    Ok(0)
}

pub(super) async fn commit(client: &Client, args: CommitArgs) -> Result<i32> {
    let CommitArgs {
        changes,
        message,
        author,
        container,
        repository,
    } = args;
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
    let committed: chapter_06::api::IdResponse = client.typed::<(), _>("POST", &path, None).await?;
    println!("{}", committed.id);
    Ok(0)
}

pub(super) async fn start(client: &Client, args: StartArgs) -> Result<i32> {
    let StartArgs { attach, containers } = args;
    for c in &containers {
        if attach {
            return attach_and_start(client, c, false, false).await;
        }
        client
            .call("POST", &format!("/containers/{}/start", enc(c)), None)
            .await?;
        println!("{c}");
    }
    Ok(0)
}

pub(super) async fn ps(client: &Client, args: PsArgs) -> Result<i32> {
    let PsArgs { all, quiet, filter } = args;
    let list = client
        .containers(&format!("all={}{}", all as u8, filters_query(&filter)?))
        .await?;
    if !quiet {
        println!(
            "{:<14} {:<24} {:<24} {:<16} {:<36} NAMES",
            "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"
        );
    }
    for c in list {
        let id = &c.id[..12.min(c.id.len())];
        if quiet {
            println!("{id}");
            continue;
        }
        let mut command = format!("\"{}\"", c.command);
        if command.len() > 22 {
            command = format!("{}…\"", command.chars().take(20).collect::<String>());
        }
        let names: Vec<&str> = c.names.iter().map(|n| n.trim_start_matches('/')).collect();
        println!(
            "{id:<14} {:<24} {command:<24} {:<16} {:<36} {}",
            c.image,
            ago(c.created),
            c.status,
            names.join(",")
        );
    }
    Ok(0)
}

pub(super) async fn stop(client: &Client, args: StopArgs) -> Result<i32> {
    let StopArgs { time, containers } = args;
    for c in containers {
        let t = time.map(|t| format!("?t={t}")).unwrap_or_default();
        client
            .call("POST", &format!("/containers/{}/stop{t}", enc(&c)), None)
            .await?;
        println!("{c}");
    }
    Ok(0)
}

pub(super) async fn kill(client: &Client, args: KillArgs) -> Result<i32> {
    let KillArgs { signal, containers } = args;
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
    Ok(0)
}

pub(super) async fn rm(client: &Client, args: RmArgs) -> Result<i32> {
    let RmArgs {
        force,
        volumes,
        containers,
    } = args;
    let query = format!("?force={}&v={}", force as u8, volumes as u8);
    remove_each(client, "/containers", &containers, &query).await
}

pub(super) async fn inspect(client: &Client, args: InspectArgs) -> Result<i32> {
    let InspectArgs { names } = args;
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
    Ok(0)
}

pub(super) async fn wait(client: &Client, args: WaitArgs) -> Result<i32> {
    let WaitArgs { containers } = args;
    for c in containers {
        let v = wait_body(
            client
                .stream("POST", &format!("/containers/{}/wait", enc(&c)), None)
                .await?,
        )
        .await?;
        println!("{}", v.status_code);
    }
    Ok(0)
}

pub(super) async fn stats(client: &Client, args: StatsArgs) -> Result<i32> {
    let StatsArgs {
        no_stream: _,
        containers,
    } = args;
    let ids: Vec<String> = if containers.is_empty() {
        let list = client.containers("").await?;
        list.into_iter().map(|c| c.id).collect()
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
    Ok(0)
}
