//! `mini-docker run` and `create`: Docker's run flags, read into a create request.

use super::*;
use chapter_04::manifest::Healthcheck;
use chapter_06::api;
use std::collections::BTreeMap;

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
pub(super) fn device_of(spec: &str) -> Result<api::DeviceMapping> {
    let permissions = chapter_02::limits::is_device_access;
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
    Ok(api::DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: inside.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

pub(super) fn throttle_devices(
    flag: &str,
    specs: &[String],
    iops: bool,
) -> Result<Vec<api::ThrottleDevice>> {
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
            Ok(api::ThrottleDevice {
                path: path.to_string(),
                rate,
            })
        })
        .collect()
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
pub(super) fn mount_of(spec: &str) -> Result<api::Mount> {
    let mut m = api::Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let bad = |why: String| anyhow!("invalid argument {spec:?} for --mount: {why}");
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        let truth = || match value {
            "" | "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(bad(format!("{key}={other}: true or false"))),
        };
        match key {
            "type" => m.kind = value.to_string(),
            "source" | "src" => m.source = value.to_string(),
            "target" | "destination" | "dst" => m.target = value.to_string(),
            "readonly" | "ro" => m.read_only = truth()?,
            "volume-subpath" => {
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .subpath = value.to_string()
            }
            "volume-nocopy" => {
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .no_copy = truth()?
            }
            "tmpfs-size" => {
                let size = chapter_02::size::parse_size(value)
                    .map_err(|e| bad(format!("tmpfs-size: {e}")))?;
                m.tmpfs_options
                    .get_or_insert_with(Default::default)
                    .size_bytes = size as i64;
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(value, 8)
                    .map_err(|_| bad(format!("tmpfs-mode={value}: octal")))?;
                m.tmpfs_options.get_or_insert_with(Default::default).mode = mode;
            }
            "bind-propagation" | "consistency" => {}
            other => return Err(bad(format!("unknown key {other:?}"))),
        }
    }
    if m.target.is_empty() {
        return Err(bad("target is required".into()));
    }
    Ok(m)
}

/// `--health-*` and `--no-healthcheck` as the API's `Healthcheck`
/// (durations in nanoseconds; zero fields take the image's).
pub(super) fn healthcheck_of(args: &RunArgs) -> Result<Option<Healthcheck>> {
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
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !given {
        return Ok(None);
    }
    Ok(Some(Healthcheck {
        test: args
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".into(), c.clone()])
            .unwrap_or_default(),
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        start_period: duration("health-start-period", &args.health_start_period)?,
        retries: args.health_retries.unwrap_or(0),
        ..Default::default()
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

pub(super) fn create_body(args: &RunArgs) -> Result<api::CreateRequest> {
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
    if let Some(c) = args.cpus {
        if c.is_nan() || c <= 0.0 {
            return Err(anyhow!(
                "invalid argument {c} for --cpus: a positive number of CPUs, e.g. 0.5"
            ));
        }
    }
    let ulimits = args
        .ulimit
        .iter()
        .map(|u| {
            let bad = || {
                anyhow!("invalid argument {u:?} for --ulimit: use NAME=SOFT[:HARD], e.g. nofile=1024:2048")
            };
            let (name, limits) = u.split_once('=').ok_or_else(bad)?;
            let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
            let n = |v: &str| v.parse::<i64>().map_err(|_| bad());
            Ok(api::Ulimit {
                name: name.to_string(),
                soft: n(soft)?,
                hard: n(hard)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let log_config = if args.log_driver.is_none() && args.log_opt.is_empty() {
        None
    } else {
        let config = args
            .log_opt
            .iter()
            .map(|o| {
                o.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| anyhow!("invalid --log-opt {o:?}: use KEY=VALUE"))
            })
            .collect::<Result<_>>()?;
        Some(api::LogConfig {
            kind: args.log_driver.clone().unwrap_or_default(),
            config,
        })
    };
    let restart_policy = match args.restart.as_deref() {
        None => api::RestartPolicy::default(),
        Some(p) => {
            let (name, count) = p.split_once(':').unwrap_or((p, "0"));
            let maximum_retry_count = count.parse().map_err(|_| {
                anyhow!("invalid --restart {p:?}: the retry count after ':' is a number")
            })?;
            api::RestartPolicy {
                name: name.to_string(),
                maximum_retry_count,
            }
        }
    };
    let tmpfs = args
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, options)) => (path.to_string(), options.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();
    let list = |v: &[String]| Some(v.to_vec());
    let host_config = api::HostConfig {
        restart_policy,
        memory: size_flag("--memory", &args.memory)?,
        memory_swap: size_flag("--memory-swap", &args.memory_swap)?,
        nano_cpus: args.cpus.map_or(0, |c| (c * 1e9) as i64),
        cpu_shares: args.cpu_shares.unwrap_or(0),
        cpuset_cpus: args.cpuset_cpus.clone().unwrap_or_default(),
        pids_limit: args.pids_limit,
        network_mode: args.network.clone(),
        auto_remove: args.rm,
        port_bindings: Some(port_bindings(&args.publish)?),
        publish_all_ports: args.publish_all,
        binds: list(&args.volumes),
        tmpfs: Some(tmpfs),
        readonly_rootfs: args.read_only,
        privileged: args.privileged,
        cap_add: list(&args.cap_add),
        cap_drop: list(&args.cap_drop),
        security_opt: Some(security_opts(&args.security_opt)?),
        cgroupns_mode: args.cgroupns.clone().unwrap_or_default(),
        userns_mode: args.userns.clone().unwrap_or_default(),
        console_size: if args.tty {
            terminal_size().map(|(h, w)| [h, w])
        } else {
            None
        },
        pid_mode: args.pid.clone().unwrap_or_default(),
        uts_mode: args.uts.clone().unwrap_or_default(),
        ipc_mode: args.ipc.clone().unwrap_or_default(),
        extra_hosts: list(&args.add_host),
        dns: list(&args.dns),
        dns_search: list(&args.dns_search),
        dns_options: list(&args.dns_option),
        group_add: list(&args.group_add),
        volumes_from: list(&args.volumes_from),
        ulimits: Some(ulimits),
        mounts: Some(
            args.mount
                .iter()
                .map(|m| mount_of(m))
                .collect::<Result<_>>()?,
        ),
        memory_reservation: size_flag("--memory-reservation", &args.memory_reservation)?,
        memory_swappiness: args.memory_swappiness,
        oom_kill_disable: Some(args.oom_kill_disable),
        init: args.init.then_some(true),
        devices: args
            .device
            .iter()
            .map(|d| device_of(d))
            .collect::<Result<_>>()?,
        device_cgroup_rules: (!args.device_cgroup_rule.is_empty())
            .then(|| args.device_cgroup_rule.clone()),
        cpuset_mems: args.cpuset_mems.clone().unwrap_or_default(),
        blkio_weight: args.blkio_weight.unwrap_or(0),
        blkio_device_read_bps: Some(throttle_devices(
            "--device-read-bps",
            &args.device_read_bps,
            false,
        )?),
        blkio_device_write_bps: Some(throttle_devices(
            "--device-write-bps",
            &args.device_write_bps,
            false,
        )?),
        blkio_device_read_iops: Some(throttle_devices(
            "--device-read-iops",
            &args.device_read_iops,
            true,
        )?),
        blkio_device_write_iops: Some(throttle_devices(
            "--device-write-iops",
            &args.device_write_iops,
            true,
        )?),
        log_config,
    };
    let labels = labels_of(&args.label_file)?
        .iter()
        .chain(&args.label)
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let exposed_ports = args
        .publish
        .iter()
        .chain(&args.expose)
        .filter_map(|p| port_key(p).ok())
        .map(|k| (k, json!({})))
        .collect();
    let config = api::ContainerConfig {
        healthcheck: healthcheck_of(args)?,
        hostname: args.hostname.clone().unwrap_or_default(),
        user: args.user.clone().unwrap_or_default(),
        attach_stdin: args.interactive && !args.detach,
        attach_stdout: !args.detach,
        attach_stderr: !args.detach,
        tty: args.tty,
        open_stdin: args.interactive,
        stdin_once: args.interactive && !args.detach,
        env: Some(env),
        cmd: (!args.command.is_empty()).then(|| args.command.clone()),
        image: args.image.clone(),
        exposed_ports: Some(exposed_ports),
        working_dir: args.workdir.clone().unwrap_or_default(),
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        labels: Some(labels),
        entrypoint: args.entrypoint.as_ref().map(|e| vec![e.clone()]),
        ..Default::default()
    };
    let endpoints = if args.network_alias.is_empty() && args.ip.is_none() {
        BTreeMap::new()
    } else {
        let settings = api::EndpointSettings {
            aliases: Some(args.network_alias.clone()),
            ipam_config: args.ip.as_ref().map(|ip| api::EndpointIpam {
                ipv4_address: ip.clone(),
            }),
        };
        BTreeMap::from([(args.network.clone(), settings)])
    };
    Ok(api::CreateRequest {
        config,
        host_config,
        networking_config: api::NetworkingConfig {
            endpoints_config: Some(endpoints),
        },
    })
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
pub(super) fn port_bindings(specs: &[String]) -> Result<BTreeMap<String, Vec<api::PortBinding>>> {
    let mut map: BTreeMap<String, Vec<api::PortBinding>> = BTreeMap::new();
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
        map.entry(key).or_default().push(api::PortBinding {
            host_ip: host_ip.to_string(),
            host_port: host_port.to_string(),
        });
    }
    Ok(map)
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
    let mut query = String::new();
    if let Some(n) = &args.name {
        query += &format!("name={}&", enc(n));
    }
    if let Some(p) = &args.platform {
        query += &format!("platform={}", enc(p));
    }
    match client.create_container(&query, &body).await {
        Ok(created) => Ok(created.id),
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(|a| a.kind == Some(chapter_06::api::ErrorKind::NoSuchImage)) =>
        {
            eprintln!("Unable to find image '{}' locally", args.image);
            pull_image(client, &args.image, args.platform.as_deref(), true).await?;
            Ok(client.create_container(&query, &body).await?.id)
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
