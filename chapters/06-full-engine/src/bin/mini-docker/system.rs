//! The daemon and the host: version, info, events, disk use, prune.

use super::*;

#[derive(Subcommand)]
pub(super) enum SystemCommand {
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

/// A time as the API wants it (unix seconds): a duration back from now
/// (`10m`), an RFC 3339 time, or unix seconds as they are.
pub(super) fn unix_time(text: &str) -> Result<String> {
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
pub(super) fn df_table(df: &Value) -> String {
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
pub(super) fn event_line(e: &chapter_06::api::Event) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.time_nano))
        .map(chapter_06::jsonlog::format_time)
        .unwrap_or_default();
    let attributes: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{time} {} {} {} ({})",
        e.kind,
        e.action,
        e.actor.id,
        attributes.join(", ")
    )
}

#[derive(Args)]
pub(super) struct EventsArgs {
    /// Events since this time: 10m, an RFC 3339 time, or unix seconds
    #[arg(long)]
    pub(super) since: Option<String>,
    /// Stop at this time (same forms)
    #[arg(long)]
    pub(super) until: Option<String>,
    /// type=, event=, container=, image=, label=, network=, volume=
    #[arg(short, long = "filter")]
    pub(super) filters: Vec<String>,
    /// `{{json .}}`: each event as the API's JSON
    #[arg(long)]
    pub(super) format: Option<String>,
}

#[derive(Args)]
pub(super) struct SystemArgs {
    #[command(subcommand)]
    pub(super) command: SystemCommand,
}

pub(super) async fn version(client: &Client) -> Result<i32> {
    let v = client.version().await?;
    println!(
        "Client:\n Version:     {}\n API version: {}",
        env!("CARGO_PKG_VERSION"),
        chapter_06::api::API_VERSION
    );
    println!(
        "Server: mini-docker\n Version:     {}\n API version: {} (minimum {})\n Kernel:      {}\n OS/Arch:     {}/{}",
        v.version, v.api_version, v.min_api_version, v.kernel_version, v.os, v.arch
    );
    Ok(0)
}

pub(super) async fn info(client: &Client) -> Result<i32> {
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
    Ok(0)
}

pub(super) async fn events(client: &Client, args: EventsArgs) -> Result<i32> {
    let EventsArgs {
        since,
        until,
        filters,
        format,
    } = args;
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
            let raw = String::from_utf8_lossy(&line);
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let text = if json_lines {
                // As the daemon sent it, every field.
                raw.to_string()
            } else {
                let Ok(e) = serde_json::from_slice(&line) else {
                    continue;
                };
                event_line(&e)
            };
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    })
    .await?;
    Ok(0)
}

pub(super) async fn system(client: &Client, args: SystemArgs) -> Result<i32> {
    let SystemArgs { command } = args;
    match command {
        SystemCommand::Df => {
            let df = client.json("GET", "/system/df", None).await?;
            print!("{}", df_table(&df));
        }
        SystemCommand::Prune { force, all } => {
            if !force && std::io::stdin().is_terminal() {
                eprint!("This removes all stopped containers, networks no container uses, and image data no tag uses. Continue? [y/N] ");
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if !answer.trim().eq_ignore_ascii_case("y") {
                    return Ok(0);
                }
            }
            let deleted = client.prune("/containers", "").await?.containers_deleted;
            let deleted = deleted.unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Containers:");
                for id in deleted {
                    println!("{id}");
                }
            }
            let networks = client.prune("/networks", "").await?.networks_deleted;
            let networks = networks.unwrap_or_default();
            if !networks.is_empty() {
                println!("Deleted Networks:");
                for name in networks {
                    println!("{name}");
                }
            }
            let query = if all {
                format!("?filters={}", enc(r#"{"dangling":["false"]}"#))
            } else {
                String::new()
            };
            let report = client.prune("/images", &query).await?;
            let images = report.images_deleted.unwrap_or_default();
            if !images.is_empty() {
                println!("Deleted Images:");
                for image in images.iter().filter_map(|i| i.deleted.as_deref()) {
                    println!("deleted: {image}");
                }
            }
            println!(
                "Total reclaimed space: {}",
                human_size(report.space_reclaimed)
            );
        }
    }
    Ok(0)
}
