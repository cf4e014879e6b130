//! `mini-docker run` and `create`: Docker's run flags, read into a create request.

use super::*;

#[derive(Args, Clone)]
pub(super) struct RunArgs {
    /// Run in the background, print the container ID
    #[arg(short, long)]
    pub(super) detach: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub(super) interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub(super) tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub(super) rm: bool,
    #[arg(long)]
    pub(super) name: Option<String>,
    /// KEY=VALUE, or KEY to take the value from this environment
    #[arg(short, long)]
    pub(super) env: Vec<String>,
    #[arg(long)]
    pub(super) env_file: Vec<std::path::PathBuf>,
    #[arg(short, long)]
    pub(super) workdir: Option<String>,
    #[arg(short, long)]
    pub(super) user: Option<String>,
    #[arg(long)]
    pub(super) hostname: Option<String>,
    #[arg(long)]
    pub(super) entrypoint: Option<String>,
    /// Memory limit (e.g. 512m)
    #[arg(short, long)]
    pub(super) memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap)
    #[arg(long)]
    pub(super) memory_swap: Option<String>,
    /// CPU time as a number of CPUs (e.g. 0.5)
    #[arg(long, allow_negative_numbers = true)]
    pub(super) cpus: Option<f64>,
    #[arg(long)]
    pub(super) cpu_shares: Option<i64>,
    #[arg(long)]
    pub(super) cpuset_cpus: Option<String>,
    #[arg(long)]
    pub(super) pids_limit: Option<i64>,
    /// bridge (the default), none, host, or a network's name
    #[arg(long, default_value = "default")]
    pub(super) network: String,
    /// Another name of the container on its (user-defined) network
    #[arg(long)]
    pub(super) network_alias: Vec<String>,
    /// Its address on its (user-defined) network
    #[arg(long)]
    pub(super) ip: Option<String>,
    /// host: the host's PID namespace
    #[arg(long)]
    pub(super) pid: Option<String>,
    /// host: the host's hostname (UTS namespace)
    #[arg(long)]
    pub(super) uts: Option<String>,
    /// private (the default), shareable, none, or host
    #[arg(long)]
    pub(super) ipc: Option<String>,
    /// NAME:IP in /etc/hosts (IP may be host-gateway)
    #[arg(long)]
    pub(super) add_host: Vec<String>,
    /// A name server for the container (behind the embedded one on a network)
    #[arg(long)]
    pub(super) dns: Vec<String>,
    /// A DNS search domain
    #[arg(long)]
    pub(super) dns_search: Vec<String>,
    /// A resolv.conf option (ndots:2)
    #[arg(long = "dns-option")]
    pub(super) dns_option: Vec<String>,
    /// Another group for the container's processes (a name or a number)
    #[arg(long)]
    pub(super) group_add: Vec<String>,
    /// A soft memory limit (reclaimed towards under pressure)
    #[arg(long)]
    pub(super) memory_reservation: Option<String>,
    /// 0 to 100: how readily its memory is swapped (cgroup v1)
    #[arg(long)]
    pub(super) memory_swappiness: Option<i64>,
    /// No OOM kills: it waits for memory instead (cgroup v1)
    #[arg(long)]
    pub(super) oom_kill_disable: bool,
    /// Run an init inside that forwards signals and reaps processes
    #[arg(long)]
    pub(super) init: bool,
    /// Add a host device to the container (HOST[:CONTAINER][:PERMISSIONS])
    #[arg(long)]
    pub(super) device: Vec<String>,
    /// Add a rule to the container's allowed devices ('c 10:229 rwm')
    #[arg(long)]
    pub(super) device_cgroup_rule: Vec<String>,
    /// Memory nodes it may use (0-1)
    #[arg(long)]
    pub(super) cpuset_mems: Option<String>,
    /// Relative IO weight, 10 to 1000
    #[arg(long)]
    pub(super) blkio_weight: Option<u16>,
    /// DEVICE:RATE read limit (/dev/sda:1mb)
    #[arg(long)]
    pub(super) device_read_bps: Vec<String>,
    /// DEVICE:RATE write limit
    #[arg(long)]
    pub(super) device_write_bps: Vec<String>,
    /// DEVICE:N read operations per second
    #[arg(long)]
    pub(super) device_read_iops: Vec<String>,
    /// DEVICE:N write operations per second
    #[arg(long)]
    pub(super) device_write_iops: Vec<String>,
    /// json-file (the default) or none
    #[arg(long)]
    pub(super) log_driver: Option<String>,
    /// A log driver option: max-size=10m, max-file=3
    #[arg(long)]
    pub(super) log_opt: Vec<String>,
    /// type=bind|volume|tmpfs,source=…,target=…[,readonly][,volume-subpath=…][,tmpfs-size=…][,tmpfs-mode=…]
    #[arg(long)]
    pub(super) mount: Vec<String>,
    /// Publish a port: [host_ip:]host_port:container_port[/tcp|udp]
    #[arg(short = 'p', long = "publish")]
    pub(super) publish: Vec<String>,
    /// Expose a port (for -P) without publishing it
    #[arg(long)]
    pub(super) expose: Vec<String>,
    /// Publish every exposed port on a free host port
    #[arg(short = 'P', long)]
    pub(super) publish_all: bool,
    /// Bind mount or volume: /host/path:/ctr/path[:ro], name:/ctr/path, /ctr/path
    #[arg(short = 'v', long = "volume")]
    pub(super) volumes: Vec<String>,
    /// A tmpfs: /ctr/path[:options], e.g. /run:size=64m
    #[arg(long)]
    pub(super) tmpfs: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub(super) read_only: bool,
    /// Every capability, no seccomp filter, nothing masked
    #[arg(long)]
    pub(super) privileged: bool,
    /// Add a capability (e.g. NET_ADMIN, or ALL)
    #[arg(long)]
    pub(super) cap_add: Vec<String>,
    /// Drop a capability (e.g. CHOWN, or ALL)
    #[arg(long)]
    pub(super) cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges
    #[arg(long)]
    pub(super) security_opt: Vec<String>,
    /// The cgroup namespace: private or host [default: the daemon's]
    #[arg(long)]
    pub(super) cgroupns: Option<String>,
    /// The user namespace: host to opt out of the daemon's remapping
    #[arg(long)]
    pub(super) userns: Option<String>,
    /// The signal `stop` sends first [default: the image's, else SIGTERM]
    #[arg(long)]
    pub(super) stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL [default: 10]
    #[arg(long, allow_negative_numbers = true)]
    pub(super) stop_timeout: Option<i64>,
    /// A label, KEY=VALUE (or KEY, with an empty value)
    #[arg(short = 'l', long)]
    pub(super) label: Vec<String>,
    /// A file of labels, one KEY=VALUE a line (# comments)
    #[arg(long)]
    pub(super) label_file: Vec<std::path::PathBuf>,
    /// A resource limit: NAME=SOFT[:HARD] (nofile=1024:2048)
    #[arg(long)]
    pub(super) ulimit: Vec<String>,
    /// Another container's volumes, at the same places: CONTAINER[:ro|rw]
    #[arg(long)]
    pub(super) volumes_from: Vec<String>,
    /// When the container exits: no, always, unless-stopped, on-failure[:N]
    #[arg(long)]
    pub(super) restart: Option<String>,
    /// A command that tells the container is healthy (exit 0), run by /bin/sh
    #[arg(long)]
    pub(super) health_cmd: Option<String>,
    /// How often the health check runs (30s, 1m30s) [default: 30s]
    #[arg(long)]
    pub(super) health_interval: Option<String>,
    /// How long one check may take [default: 30s]
    #[arg(long)]
    pub(super) health_timeout: Option<String>,
    /// Failures in a row that make it unhealthy [default: 3]
    #[arg(long)]
    pub(super) health_retries: Option<u64>,
    /// Failures in this time after the start do not count [default: 0s]
    #[arg(long)]
    pub(super) health_start_period: Option<String>,
    /// No health check, not even the image's
    #[arg(long)]
    pub(super) no_healthcheck: bool,
    #[arg(long)]
    pub(super) platform: Option<String>,
    pub(super) image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(super) command: Vec<String>,
}

/// `DEVICE:RATE` flags as the API's `{"Path", "Rate"}` (the rate in bytes
/// or operations per second: 1mb is 1048576, as Docker's CLI sends it).
/// `--device HOST[:CONTAINER][:PERMISSIONS]`, read as Docker's CLI reads it:
/// a second part that is only r, w and m is the permissions.
pub(super) fn device_of(spec: &str) -> Result<Value> {
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

pub(super) fn throttle_devices(flag: &str, specs: &[String], iops: bool) -> Result<Value> {
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
pub(super) fn labels_of(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
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
pub(super) fn mount_of(spec: &str) -> Result<Value> {
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
pub(super) fn healthcheck_of(args: &RunArgs) -> Result<Value> {
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
pub(super) fn size_flag(flag: &str, v: &Option<String>) -> Result<i64> {
    match v.as_deref() {
        None => Ok(0),
        Some("-1") => Ok(-1),
        Some(text) => chapter_02::size::parse_size(text)
            .map(|n| n as i64)
            .map_err(|e| anyhow!("invalid argument for {flag}: {e}")),
    }
}

pub(super) fn create_body(args: &RunArgs) -> Result<Value> {
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
pub(super) fn security_opts(opts: &[String]) -> Result<Vec<String>> {
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
pub(super) fn port_key(spec: &str) -> Result<String> {
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
pub(super) fn port_bindings(specs: &[String]) -> Result<Value> {
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
pub(super) fn expand_env(spec: &str) -> String {
    if spec.contains('=') {
        spec.to_string()
    } else {
        format!("{spec}={}", std::env::var(spec).unwrap_or_default())
    }
}

pub(super) async fn create_container(client: &Client, args: &RunArgs) -> Result<String> {
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
            pull_image(client, &args.image, args.platform.as_deref(), true).await?;
            let v = client.json("POST", &path, Some(&body)).await?;
            Ok(v["Id"].as_str().unwrap_or("").to_string())
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn run_container(client: &Client, args: RunArgs) -> Result<i32> {
    let id = create_container(client, &args).await?;
    if args.detach {
        client
            .call("POST", &format!("/containers/{id}/start"), None)
            .await?;
        println!("{id}");
        return Ok(0);
    }
    attach_and_start(client, &id, args.tty, args.interactive).await
}

pub(super) async fn create(client: &Client, args: RunArgs) -> Result<i32> {
    let id = create_container(client, &args).await?;
    println!("{id}");
    Ok(0)
}

pub(super) async fn run(client: &Client, args: RunArgs) -> Result<i32> {
    run_container(client, args).await
}
