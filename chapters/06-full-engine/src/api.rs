//! The Docker Engine API's JSON, the parts this engine reads and writes.
//! Field names are Docker's (PascalCase); every field has a default, so a
//! client may leave out what it does not use (the real `docker` CLI sends
//! many fields we ignore, and leaves out many we read).

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API version this engine speaks. 1.41 is Docker 20.10's: Debian's
/// 20.10 CLI uses it as is, and newer CLIs negotiate down to it.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.24";

/// `Config` of a container (the create request's body, minus HostConfig).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub image: String,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Ports the container listens on ("80/tcp"), for `-P`.
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Anonymous volumes the client asks for (`docker run -v /path` sends
    /// them here, not in `Binds`).
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// The health check in effect (the request's over the image's).
    pub healthcheck: Option<chapter_04::manifest::Healthcheck>,
}

/// `HostConfig`: how the host runs the container.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    pub network_mode: String,
    pub auto_remove: bool,
    /// Every capability, no seccomp filter, nothing masked, /sys and
    /// /sys/fs/cgroup writable.
    pub privileged: bool,
    /// `--cap-add` / `--cap-drop`: capability names, or `ALL`.
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    /// `--security-opt`: `seccomp=unconfined`, `seccomp=<profile JSON>`
    /// (the docker CLI sends the file's content), `no-new-privileges`.
    pub security_opt: Option<Vec<String>>,
    /// `--cgroupns`: "private" or "host" (the daemon's default when empty,
    /// recorded at create).
    pub cgroupns_mode: String,
    /// `--userns`: "host" opts out of the daemon's remapping; empty keeps it.
    pub userns_mode: String,
    pub binds: Option<Vec<String>>,
    /// `-p`: "80/tcp" → where on the host.
    pub port_bindings: Option<BTreeMap<String, Vec<PortBinding>>>,
    /// `-P`: every exposed port on a free host port.
    pub publish_all_ports: bool,
    /// `--tmpfs /path[:options]`.
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// The terminal's [height, width] at create (API 1.42+; our CLI sends
    /// it), so a `-t` container starts at the right size, not 0×0.
    pub console_size: Option<[u16; 2]>,
    /// `--restart`: what happens when the container exits.
    pub restart_policy: RestartPolicy,
    /// `--pid host`: the host's PID namespace ("" or "host").
    pub pid_mode: String,
    /// `--uts host`: the host's hostname and UTS namespace.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `--ipc`: "private" (also "", "shareable", "none") or "host".
    pub ipc_mode: String,
    /// `--add-host NAME:IP` (IP may be `host-gateway`): /etc/hosts lines.
    pub extra_hosts: Option<Vec<String>>,
    /// `--dns`, `--dns-search`, `--dns-option`: the container's
    /// resolv.conf (on a user-defined network, where the embedded server
    /// forwards to).
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    /// `--memory-reservation`, `--memory-swappiness`, `--oom-kill-disable`,
    /// `--cpuset-mems`, `--blkio-weight`, `--device-{read,write}-{bps,iops}`.
    pub memory_reservation: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub cpuset_mems: String,
    pub blkio_weight: u16,
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    /// `--log-driver json-file|none` and `--log-opt max-size=…,max-file=…`.
    pub log_config: Option<LogConfig>,
    /// `--ulimit NAME=SOFT[:HARD]`: resource limits of the container's
    /// processes.
    pub ulimits: Option<Vec<Ulimit>>,
    /// `--volumes-from CONTAINER[:ro|rw]`: that container's volumes and
    /// binds, at the same places.
    pub volumes_from: Option<Vec<String>>,
    /// `--mount`: bind, volume and tmpfs mounts in Docker's long form.
    pub mounts: Option<Vec<Mount>>,
    /// `--group-add`: more groups (names from the image's /etc/group, or
    /// numbers) for the container's processes.
    pub group_add: Option<Vec<String>>,
    /// `--init`: PID 1 is chapter 01's tiny init, which runs the command,
    /// reaps orphans and passes signals on.
    pub init: Option<bool>,
    /// `--device HOST[:CONTAINER[:PERMISSIONS]]`: host device nodes in the
    /// container, and the cgroup rule that lets it use them.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule 'c 10:229 rwm'`: more devices it may use
    /// (nodes it makes itself with mknod).
    pub device_cgroup_rules: Option<Vec<String>>,
}

impl HostConfig {
    /// The namespace modes, as Docker checks them; the error names the
    /// flag and what it takes.
    pub fn validate_modes(&self, hostname: &str, remapped: bool) -> Result<(), String> {
        let joins = |m: &str| m.strip_prefix("container:").is_some_and(|c| !c.is_empty());
        if remapped && (joins(&self.pid_mode) || joins(&self.ipc_mode)) {
            return Err(
                "joining another container's namespace (container:NAME) cannot be used with user namespace remapping: add --userns host to both"
                    .into(),
            );
        }
        if !["", "host"].contains(&self.pid_mode.as_str()) && !joins(&self.pid_mode) {
            return Err(format!(
                "invalid --pid {:?}: use host or container:NAME",
                self.pid_mode
            ));
        }
        if !["", "host"].contains(&self.uts_mode.as_str()) {
            return Err(format!("invalid --uts {:?}: use host", self.uts_mode));
        }
        if !["", "private", "shareable", "none", "host"].contains(&self.ipc_mode.as_str())
            && !joins(&self.ipc_mode)
        {
            return Err(format!(
                "invalid --ipc {:?}: use private, shareable, none, host or container:NAME",
                self.ipc_mode
            ));
        }
        if self.uts_mode == "host" && !hostname.is_empty() {
            return Err("Conflicting options: hostname and the UTS mode".into());
        }
        if remapped && self.pid_mode == "host" {
            return Err(
                "--pid host cannot be used with user namespace remapping: add --userns host".into(),
            );
        }
        for entry in self.extra_hosts.iter().flatten() {
            let (name, ip) = entry
                .split_once([':', '='])
                .ok_or_else(|| format!("invalid --add-host {entry:?}: use NAME:IP"))?;
            if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err())
            {
                return Err(format!(
                    "invalid --add-host {entry:?}: use NAME:IP, IP an address or host-gateway"
                ));
            }
        }
        for server in self.dns.iter().flatten() {
            if server.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("invalid --dns {server:?}: an IP address"));
            }
        }
        Ok(())
    }
}

/// `HostConfig.LogConfig`: the driver and its options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

impl LogConfig {
    /// Whether output is kept (the `none` driver keeps nothing).
    pub fn keeps(&self) -> bool {
        self.kind != "none"
    }

    /// The json-file rotation: (most bytes in one file, how many files).
    pub fn rotation(&self) -> Result<(Option<u64>, u32), String> {
        if !["", "json-file", "none"].contains(&self.kind.as_str()) {
            return Err(format!(
                "logging driver {:?} is not supported by this engine: use json-file or none",
                self.kind
            ));
        }
        let mut size = None;
        let mut files = 1;
        for (key, value) in &self.config {
            match key.as_str() {
                "max-size" if value != "-1" => {
                    size = Some(
                        chapter_02::size::parse_size(value)
                            .map_err(|e| format!("invalid --log-opt max-size={value}: {e}"))?,
                    );
                }
                "max-size" => {}
                "max-file" => {
                    files = value
                        .parse()
                        .ok()
                        .filter(|n: &u32| *n >= 1)
                        .ok_or_else(|| {
                            format!(
                                "invalid --log-opt max-file={value}: a whole number, at least 1"
                            )
                        })?;
                }
                "compress" if value == "false" => {}
                other => {
                    return Err(format!(
                    "unknown log opt '{other}' for the {} log driver: max-size and max-file are",
                    if self.kind.is_empty() {
                        "json-file"
                    } else {
                        &self.kind
                    }
                ))
                }
            }
        }
        if files > 1 && size.is_none() {
            return Err(
                "max-file cannot be set without max-size: give --log-opt max-size too".into(),
            );
        }
        Ok((size, files))
    }
}

/// One `--ulimit`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// The resource, and the limit as setrlimit(2) takes it (-1: unlimited);
    /// the error names what is wrong, as Docker's does.
    pub fn resource(&self) -> Result<(libc::__rlimit_resource_t, libc::rlimit), String> {
        let resource = match self.name.as_str() {
            "core" => libc::RLIMIT_CORE,
            "cpu" => libc::RLIMIT_CPU,
            "data" => libc::RLIMIT_DATA,
            "fsize" => libc::RLIMIT_FSIZE,
            "locks" => libc::RLIMIT_LOCKS,
            "memlock" => libc::RLIMIT_MEMLOCK,
            "msgqueue" => libc::RLIMIT_MSGQUEUE,
            "nice" => libc::RLIMIT_NICE,
            "nofile" => libc::RLIMIT_NOFILE,
            "nproc" => libc::RLIMIT_NPROC,
            "rss" => libc::RLIMIT_RSS,
            "rtprio" => libc::RLIMIT_RTPRIO,
            "rttime" => libc::RLIMIT_RTTIME,
            "sigpending" => libc::RLIMIT_SIGPENDING,
            "stack" => libc::RLIMIT_STACK,
            "as" => libc::RLIMIT_AS,
            other => return Err(format!("invalid ulimit type: {other}")),
        };
        let value = |v: i64| {
            if v < 0 {
                libc::RLIM_INFINITY
            } else {
                v as libc::rlim_t
            }
        };
        if self.hard >= 0 && (self.soft < 0 || self.soft > self.hard) {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                self.soft, self.hard
            ));
        }
        Ok((
            resource,
            libc::rlimit {
                rlim_cur: value(self.soft),
                rlim_max: value(self.hard),
            },
        ))
    }
}

/// A device and a rate (`--device-read-bps /dev/sda:1mb` sends
/// `{"Path": "/dev/sda", "Rate": 1048576}`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// One `HostConfig.Devices` entry (`--device /dev/fuse:/dev/fuse:rwm`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    /// Some of `r`, `w`, `m` (read, write, mknod); Docker's default `rwm`.
    pub cgroup_permissions: String,
}

/// One `HostConfig.Mounts` entry (`--mount type=…,source=…,target=…`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: bool,
    pub labels: Option<BTreeMap<String, String>>,
    /// A directory inside the volume to mount instead of all of it.
    pub subpath: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Checks the policy as Docker does; the error says what is allowed.
    pub fn validate(&self, auto_remove: bool) -> Result<(), String> {
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => {
                return Err(format!(
                    "invalid restart policy '{other}': use no, always, unless-stopped or on-failure[:max-retries]"
                ))
            }
        }
        if self.maximum_retry_count < 0 {
            return Err("invalid restart policy: maximum retry count cannot be negative".into());
        }
        if self.maximum_retry_count > 0 && self.name != "on-failure" {
            return Err(format!(
                "invalid restart policy: maximum retry count can only be used with 'on-failure', not '{}'",
                self.name
            ));
        }
        if auto_remove && !matches!(self.name.as_str(), "" | "no") {
            return Err("can't create 'AutoRemove' container with restart policy".into());
        }
        Ok(())
    }

    /// Whether a container that exited with `code` after `restarts`
    /// restarts, unless it was stopped by hand.
    pub fn restarts(&self, code: i32, restarts: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0
                    && (self.maximum_retry_count == 0
                        || (restarts as i64) < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// `POST /containers/create` body.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub networking_config: NetworkingConfig,
}

/// `NetworkingConfig` of a create: per network, the endpoint's settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// The parts of an endpoint's settings this engine keeps: its aliases
/// (other names the container has on the network, e.g. compose's service).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    pub aliases: Option<Vec<String>>,
    /// `--ip`: the address asked for on this network.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpam>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// `POST /networks/{id}/connect` and `disconnect`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnect {
    pub container: String,
    pub endpoint_config: Option<EndpointSettings>,
    pub force: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub cmd: Vec<String>,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub privileged: bool,
    /// The keys that end the attach and leave the exec running
    /// (`ctrl-p,ctrl-q` when empty, as Docker).
    pub detach_keys: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStart {
    pub detach: bool,
    pub tty: bool,
    /// Rows and columns of the exec's terminal (API 1.42; the docker CLI
    /// sends it, older ones resize after the start).
    pub console_size: Option<[u16; 2]>,
}

/// `POST /containers/create`'s reply.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// A reply that is an ID (`POST /containers/{id}/exec`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IdResponse {
    pub id: String,
}

/// `GET /version`, the parts `mini-docker version` shows.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VersionInfo {
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub kernel_version: String,
    pub os: String,
    pub arch: String,
}

/// One entry of `GET /containers/json`, the parts `ps` shows.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    pub command: String,
    pub created: i64,
    pub state: String,
    pub status: String,
    pub labels: BTreeMap<String, String>,
}

/// One entry of `GET /images/json`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Option<Vec<String>>,
    pub created: i64,
    pub size: u64,
}

/// One step of `GET /images/{name}/history`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryEntry {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// `GET /containers/{id}/json`, the parts `attach`, `logs` and `run` act on
/// (`inspect` prints the daemon's whole document as it came).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerView {
    pub id: String,
    pub state: StateView,
    pub config: ConfigView,
    pub host_config: HostConfigView,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StateView {
    pub status: String,
    pub running: bool,
    pub exit_code: i64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigView {
    pub tty: bool,
    pub open_stdin: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfigView {
    pub auto_remove: bool,
}

/// `POST /containers/{id}/wait`'s reply.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitResponse {
    pub status_code: i64,
}

/// One entry of `GET /networks`, the parts `network ls` shows.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub driver: String,
    #[serde(rename = "IPAM")]
    pub ipam: NetworkIpam,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkIpam {
    pub config: Option<Vec<IpamPool>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamPool {
    pub subnet: String,
}

/// `GET /volumes`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeList {
    pub volumes: Option<Vec<VolumeSummary>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeSummary {
    pub name: String,
    pub driver: String,
}

/// One entry of `GET /containers/{id}/changes`: kind 0 changed, 1 added,
/// 2 deleted.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// One event of `GET /events`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EventActor {
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: BTreeMap<String, String>,
}

/// The reply of `POST /containers/prune`, `/networks/prune`,
/// `/images/prune` (each fills its own list).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PruneReport {
    pub containers_deleted: Option<Vec<String>>,
    pub networks_deleted: Option<Vec<String>>,
    pub images_deleted: Option<Vec<ImageDeleted>>,
    pub volumes_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageDeleted {
    pub untagged: Option<String>,
    pub deleted: Option<String>,
}

/// `GET /exec/{id}/json`, the parts a client waits for.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecInspect {
    pub running: bool,
    pub exit_code: Option<i64>,
}

/// `GET /containers/{id}/top`: ps's column titles and rows.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// One line of a JSON message stream (pull progress).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub progress: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ProgressDetail {
    pub current: u64,
    pub total: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ErrorDetail {
    pub message: String,
}

/// An error body: Docker's `{"message": "..."}`, and where a client acts
/// on the cause, this engine's `kind` (other clients ignore it; Docker's
/// CLI reads such causes from the message text).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
}

/// Why a request failed, beyond its status, where a client acts on it.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The image named is not in the store (a client may pull it).
    NoSuchImage,
    /// The container's command is not in its filesystem (exit code 127).
    CommandNotFound,
    /// The container's command exists but cannot be run (exit code 126).
    CommandNotExecutable,
}

impl ErrorKind {
    /// The exit code `docker run` gives for it, as a shell would.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            ErrorKind::NoSuchImage => None,
            ErrorKind::CommandNotFound => Some(127),
            ErrorKind::CommandNotExecutable => Some(126),
        }
    }
}

/// An API error: Docker's status code and `{"message": …}`; the daemon
/// answers with it, the client reads it back.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: Option<ErrorKind>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind: None,
        }
    }
    /// The same error, with its cause said.
    pub fn with_kind(mut self, kind: ErrorKind) -> ApiError {
        self.kind = Some(kind);
        self
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(format!("{e:#}"))
    }
}
