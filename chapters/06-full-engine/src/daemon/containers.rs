//! Containers through the API: the daemon's half of each lifecycle step.
//! The other half runs in the container's monitor (see [`crate::monitor`]).

use super::http::{self, flag, json, ApiError, ApiResult};
use super::{Daemon, Entry, Life, Pending};
use crate::api::{ContainerConfig, CreateRequest};
use crate::monitor::{Exit, Hello};
use crate::state::{read_json, write_json, Container, MountKind, State, Status};
use crate::stdcopy::{frame, Stream};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json as j, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, watch};

impl Daemon {
    pub(crate) fn entry<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Result<T, ApiError> {
        let mut map = self.containers.lock().unwrap();
        let e = map
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("No such container: {id}")))?;
        Ok(f(e))
    }

    /// `POST /containers/create?name=…`
    pub async fn create(self: &Arc<Self>, req: Request<Incoming>) -> ApiResult {
        let q = http::query(&req);
        let body: CreateRequest = http::body_json(req).await?;
        let d = self.clone();
        let name = q.get("name").cloned().unwrap_or_default();
        let platform = q.get("platform").cloned().unwrap_or_default();
        let id = tokio::task::spawn_blocking(move || d.create_blocking(body, &name, &platform))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        Ok(json(StatusCode::CREATED, &j!({"Id": id, "Warnings": []})))
    }

    pub(crate) fn create_blocking(
        &self,
        body: CreateRequest,
        name: &str,
        platform: &str,
    ) -> Result<String, ApiError> {
        let CreateRequest {
            config,
            mut host_config,
            networking_config,
        } = body;
        let endpoints = networking_config.endpoints_config.unwrap_or_default();
        let aliases: Vec<String> = endpoints
            .values()
            .flat_map(|e| e.aliases.clone().unwrap_or_default())
            .collect();
        // --ip: an address on a user-defined network (Docker's rule).
        let ip =
            match endpoints
                .values()
                .filter_map(|e| e.ipam_config.as_ref())
                .map(|i| i.ipv4_address.as_str())
                .find(|a| !a.is_empty())
            {
                None => None,
                Some(text) => {
                    let ip: std::net::Ipv4Addr = text.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid --ip {text:?}: an IPv4 address"))
                    })?;
                    match super::networks::network_name(&host_config.network_mode) {
                        Some(n) if n != "bridge" => {
                            let subnet = self.find_network(n)?.subnet;
                            if !subnet.contains(ip) || ip == subnet.gateway() || ip == subnet.base {
                                return Err(ApiError::bad_request(format!(
                                "invalid --ip {ip}: not an address of network {n}'s subnet {subnet}"
                            )));
                            }
                        }
                        _ => return Err(ApiError::bad_request(
                            "user specified IP address is supported on user defined networks only",
                        )),
                    }
                    Some(ip)
                }
            };
        if host_config.cgroupns_mode.is_empty() {
            host_config.cgroupns_mode = self.options.cgroupns_default();
        }
        super::valid_cgroupns(&host_config.cgroupns_mode).map_err(ApiError::bad_request)?;
        host_config
            .restart_policy
            .validate(host_config.auto_remove)
            .map_err(ApiError::bad_request)?;
        crate::security::container_capabilities(&host_config).map_err(ApiError::bad_request)?;
        let confinement = crate::security::parse_security_opts(
            host_config.security_opt.as_deref().unwrap_or_default(),
            &self.options.security,
        )
        .map_err(ApiError::bad_request)?;
        if let Some(log) = host_config.log_config.as_mut() {
            log.rotation().map_err(ApiError::bad_request)?;
            if log.kind.is_empty() {
                log.kind = "json-file".into();
            }
        }
        for u in host_config.ulimits.iter().flatten() {
            u.resource().map_err(ApiError::bad_request)?;
        }
        for d in &mut host_config.devices {
            if d.cgroup_permissions.is_empty() {
                d.cgroup_permissions = "rwm".into();
            }
            crate::monitor::gather_devices(d).map_err(ApiError::bad_request)?;
        }
        for rule in host_config.device_cgroup_rules.iter_mut().flatten() {
            *rule = chapter_02::limits::parse_device_rule(rule).map_err(ApiError::bad_request)?;
        }
        if let Some(refusal) = self.options.cgroups.refuse_limits(&host_config) {
            return Err(ApiError::bad_request(refusal));
        }
        if self.options.rootless {
            crate::rootless::network_allowed(&host_config.network_mode)
                .map_err(ApiError::bad_request)?;
        }
        let remapped = host_config.userns_mode != "host" && self.remap.is_some();
        host_config
            .validate_modes(&config.hostname, remapped)
            .map_err(ApiError::bad_request)?;
        // container:NAME is kept as container:ID, as Docker keeps it.
        for mode in [&mut host_config.pid_mode, &mut host_config.ipc_mode] {
            if let Some(other) = mode.strip_prefix("container:") {
                *mode = format!("container:{}", self.find(other)?);
            }
        }
        let userns = match host_config.userns_mode.as_str() {
            "" => self
                .remap
                .as_ref()
                .map(|(_, map)| crate::state::UsernsMap::from_id_map(map)),
            "host" => None,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid --userns {other:?}: use host (to opt out of the daemon's remapping)"
                )))
            }
        };
        if userns.is_some() && host_config.privileged {
            return Err(ApiError::bad_request(
                "privileged mode is incompatible with user namespaces: \
                 run the container with --userns host to run it privileged",
            ));
        }
        let name = name.trim_start_matches('/').to_string();
        if !name.is_empty() {
            crate::ids::validate_name(&name).map_err(ApiError::bad_request)?;
        }
        if let Some(network) = super::networks::network_name(&host_config.network_mode) {
            self.find_network(network)?;
        }
        if config.image.is_empty() {
            return Err(ApiError::bad_request(
                "no image given: say which image to run",
            ));
        }
        let image = self.resolve_image(&config.image)?.image;
        if !platform.is_empty() {
            let wanted =
                chapter_05::pull::parse_platform(platform).map_err(ApiError::bad_request)?;
            if wanted.os != image.config.os || wanted.architecture != image.config.architecture {
                return Err(ApiError::conflict(format!(
                    "image {} is {}/{}, not the requested {platform}",
                    config.image, image.config.os, image.config.architecture
                )));
            }
        }
        let layers =
            chapter_04::unpack::unpack(&self.store, &image, &chapter_04::unpack::Limits::default())
                .map_err(|e| ApiError::internal(format!("unpacking {}: {e}", config.image)))?;
        let overrides = chapter_04::runconfig::Overrides {
            entrypoint: config
                .entrypoint
                .clone()
                .map(|ep| if ep == [""] { Vec::new() } else { ep }),
            cmd: config.cmd.clone().filter(|c| !c.is_empty()),
            env: config.env.clone().unwrap_or_default(),
            workdir: Some(config.working_dir.clone()).filter(|w| !w.is_empty()),
            user: Some(config.user.clone()).filter(|u| !u.is_empty()),
        };
        let image_config = image.config.config.clone().unwrap_or_default();
        let run = chapter_04::runconfig::compute(&image_config, &overrides, &user_root(&layers))
            .map_err(ApiError::bad_request)?;
        let stop_signal = match config
            .stop_signal
            .as_deref()
            .or(image_config.stop_signal.as_deref())
        {
            Some(s) => {
                chapter_04::runconfig::parse_signal(s).map_err(ApiError::bad_request)? as i32
            }
            None => run.stop_signal as i32,
        };
        let image_volumes: Vec<String> = config
            .volumes
            .iter()
            .chain(image_config.volumes.iter())
            .flat_map(|v| v.keys().cloned())
            .collect();
        let mut mounts = self.plan_mounts(
            host_config.binds.as_deref().unwrap_or_default(),
            host_config.mounts.as_deref().unwrap_or_default(),
            &host_config.tmpfs.clone().unwrap_or_default(),
            &image_volumes,
        )?;
        // --volumes-from: the other's volumes and binds where it has them,
        // read-only with :ro (its own mode with :rw or nothing); never
        // anonymous here (they are the other container's to remove).
        for spec in host_config.volumes_from.iter().flatten() {
            let (other, mode) = match spec.rsplit_once(':') {
                Some((o, m)) if m == "ro" || m == "rw" => (o, Some(m)),
                Some(_) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid --volumes-from {spec:?}: use CONTAINER[:ro|rw]"
                    )))
                }
                None => (spec.as_str(), None),
            };
            let other_id = self.find(other)?;
            let theirs = self.entry(&other_id, |e| e.c.mounts.clone())?;
            for mut m in theirs.into_iter().filter(|m| m.kind != MountKind::Tmpfs) {
                if mounts.iter().any(|own| own.destination == m.destination) {
                    return Err(ApiError::bad_request(format!(
                        "duplicate mount point: {} (from --volumes-from {other})",
                        m.destination
                    )));
                }
                if let Some(mode) = mode {
                    m.readonly = mode == "ro";
                }
                m.anonymous = false;
                mounts.push(m);
            }
        }
        let exposed_ports: Vec<String> = config
            .exposed_ports
            .iter()
            .chain(image_config.exposed_ports.iter())
            .flat_map(|p| p.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // The container's config is the image's with the request's over it
        // (Docker's merge): inspect shows the user and labels in effect.
        let mut config = config;
        if config.user.is_empty() {
            config.user = image_config.user.clone().unwrap_or_default();
        }
        config.healthcheck =
            super::health::merge(config.healthcheck.take(), image_config.healthcheck.as_ref());
        if let Some(image_labels) = &image_config.labels {
            let mut labels = image_labels.clone();
            labels.extend(config.labels.take().unwrap_or_default());
            config.labels = Some(labels);
        }
        // --group-add: names through the image's /etc/group (chapter 04's
        // user resolution, with root as the user), or numbers.
        let groups = host_config
            .group_add
            .iter()
            .flatten()
            .map(|g| {
                chapter_04::runconfig::resolve_user(&format!("0:{g}"), &user_root(&layers))
                    .map(|(_, gid)| gid)
                    .map_err(|e| ApiError::bad_request(format!("--group-add {g}: {e}")))
            })
            .collect::<Result<Vec<u32>, ApiError>>()?;
        if host_config.ipc_mode.is_empty() {
            host_config.ipc_mode = "private".into();
        }
        let id = crate::ids::new_id();
        let c = Container {
            networks: Vec::new(),
            ip,
            groups,
            mounts,
            exposed_ports,
            id: id.clone(),
            name: String::new(),
            created: crate::jsonlog::now(),
            image: config.image.clone(),
            image_id: image.manifest.config.digest.to_string(),
            layers,
            args: run.args,
            env: run.env,
            workdir: run.workdir,
            uid: run.uid,
            gid: run.gid,
            hostname: if host_config.uts_mode == "host" {
                nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else if config.hostname.is_empty() {
                crate::ids::short(&id).to_string()
            } else {
                config.hostname.clone()
            },
            stop_signal,
            config,
            host_config,
            confinement,
            userns,
            aliases,
        };
        crate::monitor::container_limits(&c)
            .and_then(|l| l.validate())
            .map_err(ApiError::bad_request)?;
        if let Some(h) = &c.hostname.get(..) {
            if h.len() > 64 {
                return Err(ApiError::bad_request("hostname longer than 64 characters"));
            }
        }
        let created = self.register(c, &name)?;
        self.container_event("create", &id);
        Ok(created)
    }

    // ANCHOR: register
    // exercise 6.2: record a new container: its name, its directory, its state
    // builds on: 6.1
    // hint: A created container is a directory under containers/ with two
    //   files: config.json (what to run: written once) and state.json (where
    //   it is in its life: "created" now). Both go through write_json, which
    //   replaces a file atomically. Then the daemon's map knows it
    //   (Entry::new), and the ID is the answer.
    // hint: The name is chosen and recorded under the map's lock: two creates
    //   at once must not take one name. No name asked for: a random one
    //   (ids::random_name) not in use. A name in use: a conflict (409) in
    //   Docker's words, naming the other container. Write state.json before
    //   config.json: a directory with a config is a container, and a restarted
    //   daemon must find its state too.
    // hint: The Docker Engine API reference, "Create a container" (201 Id
    //   Warnings, 409 conflict); rename(2) for the atomic writes.
    /// Names and records a created container; returns its ID.
    fn register(&self, c: Container, name: &str) -> Result<String, ApiError> {
        let mut map = self.containers.lock().unwrap();
        let name = if name.is_empty() {
            crate::ids::random_name(|n| map.values().any(|e| e.c.name == n))
        } else if let Some((other, _)) = map.iter().find(|(_, e)| e.c.name == name) {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        } else {
            name.to_string()
        };
        let id = c.id.clone();
        let c = Container { name, ..c };
        std::fs::create_dir_all(self.paths.container(&id))?;
        let state = State::default();
        write_json(&self.paths.state(&id), &state)?;
        write_json(&self.paths.config(&id), &c)?;
        map.insert(id.clone(), Entry::new(c, state));
        Ok(id)
    }
    // ANCHOR_END: register

    /// `POST /containers/{id}/start`: spawns the monitor, hands it the
    /// attach streams that wait, then says go.
    /// `POST /containers/{id}/start` by hand: the restart count and the
    /// stopped-by-hand mark start over.
    pub async fn start(self: Arc<Self>, query: &str) -> ApiResult {
        let id = self.find(query)?;
        self.set_manually_stopped(&id, false)?;
        self.entry(&id, |e| e.restart_count = 0)?;
        self.start_by_policy(&id).await
    }

    /// Marks (or unmarks) a container as stopped by hand, on disk too: a
    /// restarted daemon must not start an `unless-stopped` one again.
    fn set_manually_stopped(&self, id: &str, stopped: bool) -> Result<(), ApiError> {
        self.entry(id, |e| e.manually_stopped = stopped)?;
        let mark = self.paths.container(id).join("stopped-by-hand");
        if stopped {
            std::fs::write(&mark, "")?;
        } else {
            let _ = std::fs::remove_file(&mark);
        }
        Ok(())
    }

    /// `--pid`/`--ipc container:ID`: the other container must run now (its
    /// PID 1's namespaces are the ones joined), and an IPC donor must have
    /// said `--ipc shareable`, as Docker requires.
    fn check_joined(&self, h: &crate::api::HostConfig) -> Result<(), ApiError> {
        for (what, mode) in [("PID", &h.pid_mode), ("IPC", &h.ipc_mode)] {
            let Some(other) = mode.strip_prefix("container:") else {
                continue;
            };
            let (running, ipc) = self
                .entry(other, |e| {
                    (
                        e.state.status == Status::Running,
                        e.c.host_config.ipc_mode.clone(),
                    )
                })
                .map_err(|_| {
                    ApiError::not_found(format!(
                        "No such container: {other} (the one whose {what} namespace this container joins)"
                    ))
                })?;
            if !running {
                return Err(ApiError::conflict(format!(
                    "cannot join {what} of a non running container: {other}"
                )));
            }
            if what == "IPC" && ipc != "shareable" {
                return Err(ApiError::conflict(format!(
                    "non-shareable IPC (hint: use IpcMode:shareable for the donor container {other})"
                )));
            }
        }
        Ok(())
    }

    /// A start, keeping the restart count (the restart policy's).
    async fn start_by_policy(self: Arc<Self>, query: &str) -> ApiResult {
        let id = self.find(query)?;
        let pending = self.entry(&id, |e| {
            if e.state.status == Status::Running || e.busy {
                return None;
            }
            e.busy = true;
            Some(std::mem::take(&mut e.pending))
        })?;
        let Some(pending) = pending else {
            return Ok(http::empty(StatusCode::NOT_MODIFIED));
        };
        let result = self.clone().start_monitor(&id, pending).await;
        let auto_remove = self.entry(&id, |e| {
            e.busy = false;
            e.c.host_config.auto_remove
        })?;
        if result.is_err() && auto_remove {
            let _ = self.remove_now(&id);
        }
        result
    }

    async fn start_monitor(self: Arc<Self>, id: &str, pending: Vec<Pending>) -> ApiResult {
        let c = self.entry(id, |e| e.c.clone())?;
        self.check_joined(&c.host_config)?;
        let endpoint = self.network_prepare(&c).await?;
        let result = self.clone().spawn_monitor(&c, endpoint, pending).await;
        if result.is_err() {
            self.network_detach(id).await;
        } else {
            self.container_event("start", id);
        }
        result
    }

    async fn spawn_monitor(
        self: Arc<Self>,
        c: &Container,
        endpoint: Option<crate::net::Endpoint>,
        pending: Vec<Pending>,
    ) -> ApiResult {
        let id = c.id.as_str();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.paths.container(id).join("monitor.log"))?;
        let mut child = super::self_exe()
            .arg("monitor")
            .arg("--root")
            .arg(&self.paths.root)
            .arg(id)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| ApiError::internal(format!("starting the container's monitor: {e}")))?;
        let mut go = child.stdin.take().expect("piped");
        let mut reports = BufReader::new(child.stdout.take().expect("piped")).lines();
        // tokio reaps a dropped child in the background; the monitor is
        // meant to outlive this request (and this daemon).
        drop(child);
        let ready = reports.next_line().await?.unwrap_or_default();
        let Some(pid) = ready
            .strip_prefix("ready ")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            return Err(self.start_failed(id, &ready));
        };
        if let Some(ep) = &endpoint {
            let mut attached = self.network_attach(c, ep, pid).await;
            for (k, network) in c.networks.iter().enumerate() {
                if attached.is_ok() {
                    attached = self.attach_extra(c, network, k + 1, pid).await;
                }
            }
            if let Err(e) = attached {
                // Dropping `go` makes the monitor give up and clean up.
                drop(go);
                let _ = reports.next_line().await;
                return Err(ApiError::internal(format!(
                    "setting up the container's network: {e:#}"
                )));
            }
            self.start_dns(id, pid).await;
        }
        for p in pending {
            if let Ok(Ok(io)) = tokio::time::timeout(Duration::from_secs(5), p.io).await {
                if let Ok(conn) = self.connect_monitor(id, &p.hello).await {
                    tokio::spawn(relay(io, conn, p.detach));
                }
            }
        }
        let waiter = self.connect_monitor(id, &Hello::Wait).await?;
        go.write_all(b"go\n").await?;
        let started = reports.next_line().await?.unwrap_or_default();
        if !started.starts_with("started ") {
            drop(waiter);
            return Err(self.start_failed(id, &started));
        }
        let state: State = read_json(&self.paths.state(id))?;
        self.entry(id, |e| e.state = state)?;
        tokio::spawn(self.clone().watch_exit(id.to_string(), waiter));
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// The monitor's `error CODE MESSAGE` (or silence) as an API error;
    /// the container stays created, with the code and message recorded.
    fn start_failed(&self, id: &str, report: &str) -> ApiError {
        let (code, message) = report
            .strip_prefix("error ")
            .and_then(|r| r.split_once(' '))
            .map(|(c, m)| (c.parse().unwrap_or(125), m.to_string()))
            .unwrap_or((
                125,
                format!(
                    "the container's monitor ended without a report (see {})",
                    self.paths.container(id).join("monitor.log").display()
                ),
            ));
        let mut state: State = read_json(&self.paths.state(id)).unwrap_or_default();
        if state.status == Status::Running {
            state = State::default();
        }
        state.exit_code = code;
        state.error = message.clone();
        let _ = write_json(&self.paths.state(id), &state);
        let _ = self.entry(id, |e| e.state = state);
        match code {
            127 => ApiError::bad_request(message).with_kind(crate::api::ErrorKind::CommandNotFound),
            126 => ApiError::bad_request(message)
                .with_kind(crate::api::ErrorKind::CommandNotExecutable),
            _ => ApiError::internal(message),
        }
    }

    /// Waits on a monitor's `wait` connection; records the exit.
    pub async fn watch_exit(self: Arc<Self>, id: String, conn: tokio::net::UnixStream) {
        let health = tokio::spawn(self.clone().watch_health(id.clone()));
        // The running container's cgroups (the exit's state has none).
        let dirs = self
            .entry(&id, |e| e.state.cgroup_dirs.clone())
            .unwrap_or_default();
        let mut lines = BufReader::new(conn).lines();
        let exit: Option<Exit> = match lines.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line).ok(),
            _ => None,
        };
        health.abort();
        // Stopped for sure (a probe's exec helper, killed with it, cannot
        // join the cgroup after this).
        let _ = health.await;
        // The network goes first, so whoever sees the exit (a `wait`, a
        // `ps`) finds the address and the rules already released.
        self.network_detach(&id).await;
        // An exec helper (a health probe, a `docker exec`) that joined the
        // cgroup as the container ended can keep it from being removed:
        // what is left goes now, before anyone hears of the exit (a `rm` that
        // follows, a restart that would make the cgroup again).
        if dirs.iter().any(|d| d.exists()) {
            let (paths, cid) = (self.paths.clone(), id.clone());
            let _ =
                tokio::task::spawn_blocking(move || super::cleanup_leftovers(&paths, &cid, &dirs))
                    .await;
        }
        if exit.is_none() {
            // The monitor died without a word (killed): record that.
            self.monitor_lost(&id);
        } else {
            let state: State = read_json(&self.paths.state(&id)).unwrap_or_default();
            let _ = self.entry(&id, |e| {
                let code = state.exit_code;
                e.state = state;
                e.life.send_modify(|l| {
                    l.exits += 1;
                    l.exit_code = code;
                });
            });
        }
        let code = self.entry(&id, |e| e.state.exit_code).unwrap_or(255);
        let mut attributes = serde_json::Map::new();
        attributes.insert("exitCode".into(), j!(code.to_string()));
        self.event("container", "die", &id, attributes);
        let auto_remove = self
            .entry(&id, |e| e.c.host_config.auto_remove)
            .unwrap_or(false);
        self.clone().apply_restart_policy(&id);
        if auto_remove {
            let mounts = self.entry(&id, |e| e.c.mounts.clone()).unwrap_or_default();
            if self.remove_now(&id).is_ok() {
                // --rm takes the anonymous volumes along, as Docker does.
                self.remove_anonymous_volumes(&mounts);
            }
        }
    }

    /// After an exit: restart by the container's policy (not after a stop
    /// or kill by hand), with Docker's backoff: 100 ms, doubling with each
    /// restart up to a minute, back to 100 ms after ten seconds of running.
    fn apply_restart_policy(self: Arc<Self>, id: &str) {
        let Ok((policy, code, count, manual, started, finished)) = self.entry(id, |e| {
            (
                e.c.host_config.restart_policy.clone(),
                e.state.exit_code,
                e.restart_count,
                e.manually_stopped,
                e.state.started_at.clone(),
                e.state.finished_at.clone(),
            )
        }) else {
            return;
        };
        if manual || !policy.restarts(code, count) {
            return;
        }
        let ran = match (
            crate::jsonlog::parse_time(&started),
            crate::jsonlog::parse_time(&finished),
        ) {
            (Some(s), Some(f)) => (f - s).whole_milliseconds(),
            _ => 0,
        };
        let delay = if ran >= 10_000 {
            100
        } else {
            (100u64 << count.min(10)).min(60_000)
        };
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            // Still exited, still not stopped by hand, still there.
            let go = self
                .entry(&id, |e| {
                    let go = !e.manually_stopped && e.state.status == Status::Exited && !e.busy;
                    if go {
                        e.restart_count += 1;
                    }
                    go
                })
                .unwrap_or(false);
            if go {
                if let Err(e) = self.clone().start_by_policy(&id).await {
                    eprintln!("restart policy: {}: {}", crate::ids::short(&id), e.message);
                }
            }
        });
    }

    // ANCHOR: attach
    // exercise 6.9: the attach hijack: take over the HTTP connection for the streams
    // builds on: 6.8
    // hint: Attach answers "101 Switching Protocols" (http::upgraded: its
    //   Content-Type says raw with a TTY, multiplexed without) and from then on
    //   the socket is no longer HTTP: it carries the container's output one way
    //   and stdin the other. hyper hands over the raw connection once the 101 is
    //   sent: hyper::upgrade::on(&mut req) is a future of it, taken *before*
    //   answering.
    // hint: A running container: in a task, await the upgrade, connect to the
    //   monitor with Hello::Attach (stdin, stdout, stderr from the query) and
    //   relay the two. One not started yet: it has no monitor, so push a Pending
    //   (the hello and a oneshot that will carry the upgraded connection) into
    //   its entry before answering, and let the upgrade task send the
    //   connection into the oneshot; start connects what is pending before go.
    // hint: The Docker Engine API reference, "Attach to a container" ("Hijacking"
    //   and "Stream format"); RFC 9110 "Upgrade"; hyper's upgrade module.
    /// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1`
    pub fn attach(self: &Arc<Self>, query: &str, mut req: Request<Incoming>) -> ApiResult {
        let id = self.find(query)?;
        let q = http::query(&req);
        let hello = Hello::Attach {
            stdin: flag(&q, "stdin"),
            stdout: flag(&q, "stdout"),
            stderr: flag(&q, "stderr"),
        };
        let (tty, running) =
            self.entry(&id, |e| (e.c.config.tty, e.state.status == Status::Running))?;
        // Only a client that sends stdin can send the keys.
        let detach = if flag(&q, "stdin") {
            Some(
                detach_keys(q.get("detachKeys").map(String::as_str).unwrap_or(""))
                    .map_err(ApiError::bad_request)?,
            )
        } else {
            None
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let (tx, rx) = oneshot::channel();
        if running {
            let d = self.clone();
            tokio::spawn(async move {
                let Ok(io) = on_upgrade.await else { return };
                match d.connect_monitor(&id, &hello).await {
                    Ok(conn) => relay(io, conn, detach).await,
                    Err(_) => drop(io), // exited meanwhile: end of stream
                }
            });
        } else {
            // Registered before answering, so a start that follows at once
            // finds it.
            self.entry(&id, |e| {
                e.pending.push(Pending {
                    hello,
                    io: rx,
                    detach,
                })
            })?;
            tokio::spawn(async move {
                if let Ok(io) = on_upgrade.await {
                    let _ = tx.send(io);
                }
            });
        }
        Ok(http::upgraded(tty))
    }
    // ANCHOR_END: attach

    // ANCHOR: wait
    // exercise 6.10: wait: answer at once, finish when the condition is met
    // builds on: 6.9
    // hint: A client asks to wait before it starts the container (so a fast
    //   exit cannot be missed), so wait sends its headers at once
    //   (http::streaming) and the body, {"StatusCode": N, "Error": …}, when the
    //   condition holds. Each entry has a watch channel of its Life (exits
    //   counted, removed); note where it stands now and watch it change.
    // hint: "not-running": at once if the container is not running, else at its
    //   next exit; "next-exit": the next exit, even if it is not running now;
    //   "removed": when it is gone (a closed channel also means gone). Any exit
    //   or removal ends every condition. The code comes from the state then
    //   (or the last Life when the entry is gone); Error is null without a
    //   message.
    // hint: The Docker Engine API reference, "Wait for a container"
    //   (condition); tokio::sync::watch (changed, borrow_and_update).
    /// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`:
    /// headers at once, the body when the condition is met.
    pub async fn wait(self: &Arc<Self>, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        let condition = q.get("condition").cloned().unwrap_or("not-running".into());
        let (mut rx, running) = self.entry(&id, |e| {
            (e.life.subscribe(), e.state.status == Status::Running)
        })?;
        let start = *rx.borrow_and_update();
        let (mut tx, response) = http::streaming(StatusCode::OK, "application/json");
        let d = self.clone();
        tokio::spawn(async move {
            let done = |l: &Life| match condition.as_str() {
                "removed" => l.removed,
                "next-exit" => l.exits > start.exits || l.removed,
                _ => !running || l.exits > start.exits || l.removed,
            };
            if !done(&start) {
                loop {
                    if rx.changed().await.is_err() {
                        break; // the entry is gone: removed
                    }
                    if done(&rx.borrow_and_update()) {
                        break;
                    }
                }
            }
            let last = *rx.borrow();
            let (code, error) = match d.entry(&id, |e| e.state.clone()) {
                Ok(state) => (state.exit_code, state.error),
                Err(_) => (last.exit_code, String::new()),
            };
            let error = (!error.is_empty()).then(|| j!({"Message": error}));
            let body = j!({"StatusCode": code, "Error": error});
            let _ = tx.send_data(Bytes::from(body.to_string() + "\n")).await;
        });
        Ok(response)
    }
    // ANCHOR_END: wait

    /// `POST /containers/{id}/rename?name=NEW`: a new name, unique as at create.
    pub fn rename(&self, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        let name = q
            .get("name")
            .map(|n| n.trim_start_matches('/'))
            .unwrap_or("");
        if name.is_empty() {
            return Err(ApiError::bad_request(
                "the new name is missing: say what to call the container",
            ));
        }
        crate::ids::validate_name(name).map_err(ApiError::bad_request)?;
        let mut map = self.containers.lock().unwrap();
        if let Some((other, _)) = map
            .iter()
            .find(|(other, e)| e.c.name == name && **other != id)
        {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        let e = map
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("No such container: {query}")))?;
        let mut c = e.c.clone();
        let old = std::mem::replace(&mut c.name, name.to_string());
        write_json(&self.paths.config(&id), &c)?;
        e.c = c;
        drop(map);
        let mut attributes = serde_json::Map::new();
        attributes.insert("oldName".into(), j!(format!("/{old}")));
        self.event("container", "rename", &id, attributes);
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// `POST /containers/{id}/restart?t=10`: stop (when running), then start.
    pub async fn restart(self: Arc<Self>, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        if self.is_running(&id) {
            self.stop(&id, q).await?;
        }
        self.clone().start(&id).await?;
        self.container_event("restart", &id);
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// `POST /containers/{id}/stop?t=10`: the stop signal, then SIGKILL.
    pub async fn stop(&self, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        self.set_manually_stopped(&id, true)?;
        let (pid, signal, timeout, mut rx) = self.entry(&id, |e| {
            (
                e.state.pid,
                e.c.stop_signal,
                e.c.config.stop_timeout.unwrap_or(10),
                e.life.subscribe(),
            )
        })?;
        if !self.is_running(&id) {
            return Ok(http::empty(StatusCode::NOT_MODIFIED));
        }
        let timeout = q
            .get("t")
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(timeout);
        let exits = rx.borrow_and_update().exits;
        let exited = |rx: &mut watch::Receiver<Life>, secs: u64| {
            let mut rx = rx.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(secs), async {
                    while rx.borrow_and_update().exits == exits {
                        if rx.changed().await.is_err() {
                            return;
                        }
                    }
                })
                .await
                .is_ok()
            }
        };
        signal_pid(pid, signal);
        // A paused container gets its signal when it thaws (Docker's way).
        let dirs = self.entry(&id, |e| e.state.cgroup_dirs.clone())?;
        let _ = set_frozen(&dirs, false);
        if timeout < 0 || !exited(&mut rx, timeout as u64).await {
            signal_pid(pid, libc::SIGKILL);
            exited(&mut rx, 30).await;
        }
        self.container_event("stop", &id);
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.entry(id, |e| e.state.status == Status::Running)
            .unwrap_or(false)
    }

    /// `POST /containers/{id}/kill?signal=SIGKILL`. A SIGKILL is answered
    /// once the container has exited (Docker's: a `rm` right after a kill
    /// finds it stopped); other signals at once.
    pub async fn kill(&self, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        let signal = match q.get("signal").filter(|s| !s.is_empty()) {
            Some(s) => {
                chapter_04::runconfig::parse_signal(s).map_err(ApiError::bad_request)? as i32
            }
            None => libc::SIGKILL,
        };
        let (pid, mut life) = self.entry(&id, |e| (e.state.pid, e.life.subscribe()))?;
        if !self.is_running(&id) {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {query}: Container {id} is not running"
            )));
        }
        let exits = life.borrow_and_update().exits;
        if signal == libc::SIGKILL {
            self.set_manually_stopped(&id, true)?;
        }
        signal_pid(pid, signal);
        if signal == libc::SIGKILL {
            let dirs = self.entry(&id, |e| e.state.cgroup_dirs.clone())?;
            let _ = set_frozen(&dirs, false);
        }
        let mut attributes = serde_json::Map::new();
        attributes.insert("signal".into(), j!(signal.to_string()));
        self.event("container", "kill", &id, attributes);
        if signal == libc::SIGKILL {
            let _ = tokio::time::timeout(Duration::from_secs(30), async {
                while life.borrow_and_update().exits == exits {
                    if life.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
        }
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// `POST /containers/{id}/pause` and `unpause`: the freezer (v1's
    /// freezer.state, v2's cgroup.freeze) stops every process of the
    /// container where it is, and lets them go on.
    pub fn pause(&self, query: &str, pause: bool) -> ApiResult {
        if let Some(refusal) = self
            .options
            .cgroups
            .without_cgroup("pause (the freezer cgroup)")
        {
            return Err(ApiError::bad_request(refusal));
        }
        let id = self.find(query)?;
        if !self.is_running(&id) {
            return Err(ApiError::conflict(format!("Container {id} is not running")));
        }
        let dirs = self.entry(&id, |e| e.state.cgroup_dirs.clone())?;
        match (is_frozen(&dirs), pause) {
            (true, true) => {
                return Err(ApiError::conflict(format!(
                    "Container {id} is already paused"
                )))
            }
            (false, false) => {
                return Err(ApiError::conflict(format!("Container {id} is not paused")))
            }
            _ => {}
        }
        set_frozen(&dirs, pause).map_err(ApiError::internal)?;
        self.container_event(if pause { "pause" } else { "unpause" }, &id);
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// `POST /containers/{id}/update`: new limits (memory, swap, CPUs,
    /// shares, cpuset, pids, blkio weight), kept in the container's config
    /// and, when it runs, written to its cgroup at once.
    pub async fn update(&self, query: &str, req: Request<Incoming>) -> ApiResult {
        if let Some(refusal) = self.options.cgroups.without_cgroup("docker update") {
            return Err(ApiError::bad_request(refusal));
        }
        let id = self.find(query)?;
        let body: Value = http::body_json(req).await?;
        let mut c = self.entry(&id, |e| e.c.clone())?;
        let h = &mut c.host_config;
        let int = |k: &str| body.get(k).and_then(Value::as_i64);
        if let Some(v) = int("Memory").filter(|v| *v != 0) {
            h.memory = v;
        }
        if let Some(v) = int("MemorySwap").filter(|v| *v != 0) {
            h.memory_swap = v;
        }
        if let Some(v) = int("NanoCpus").filter(|v| *v != 0) {
            h.nano_cpus = v;
        }
        if let Some(v) = int("CpuShares").filter(|v| *v != 0) {
            h.cpu_shares = v;
        }
        if let Some(v) = int("PidsLimit").filter(|v| *v != 0) {
            h.pids_limit = Some(v);
        }
        if let Some(v) = body
            .get("CpusetCpus")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            h.cpuset_cpus = v.to_string();
        }
        if let Some(v) = int("MemoryReservation").filter(|v| *v != 0) {
            h.memory_reservation = v;
        }
        if let Some(v) = int("BlkioWeight").filter(|v| *v != 0) {
            h.blkio_weight = v.clamp(0, u16::MAX as i64) as u16;
        }
        if let Some(v) = body
            .get("CpusetMems")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            h.cpuset_mems = v.to_string();
        }
        if let Some(refusal) = self.options.cgroups.refuse_limits(&c.host_config) {
            return Err(ApiError::bad_request(refusal));
        }
        let limits = crate::monitor::container_limits(&c).map_err(ApiError::bad_request)?;
        limits.validate().map_err(ApiError::bad_request)?;
        let (running, dirs) = self.entry(&id, |e| {
            (
                e.state.status == Status::Running,
                e.state.cgroup_dirs.clone(),
            )
        })?;
        let mut warnings = Vec::new();
        if running {
            let layout = chapter_02::Layout::detect().map_err(ApiError::internal)?;
            let cgroup: Box<dyn chapter_02::Cgroup> = match layout.mode {
                chapter_02::Mode::V2 => Box::new(chapter_02::v2::V2Cgroup::open(
                    dirs.first().cloned().unwrap_or_default(),
                )),
                _ => Box::new(chapter_02::v1::V1Cgroup::open(&dirs)),
            };
            warnings = cgroup
                .apply(&limits)
                .map_err(|e| ApiError::bad_request(format!("updating the limits of {id}: {e}")))?;
            warnings.extend(
                chapter_02::limits::apply_extras(&dirs, &limits).map_err(|e| {
                    ApiError::bad_request(format!("updating the limits of {id}: {e}"))
                })?,
            );
        }
        write_json(&self.paths.config(&id), &c)?;
        self.entry(&id, |e| e.c = c)?;
        Ok(json(StatusCode::OK, &j!({"Warnings": warnings})))
    }

    /// `GET /containers/{id}/top`: `ps -ef`'s lines of the container's
    /// processes (those in its cgroup), as Docker answers.
    pub fn top(&self, query: &str) -> ApiResult {
        let id = self.find(query)?;
        if !self.is_running(&id) {
            return Err(ApiError::conflict(format!("Container {id} is not running")));
        }
        let (dirs, pid) = self.entry(&id, |e| (e.state.cgroup_dirs.clone(), e.state.pid))?;
        let mut pids: std::collections::BTreeSet<String> = dirs
            .iter()
            .flat_map(|d| chapter_02::files::procs(d))
            .map(|p| p.to_string())
            .collect();
        // No cgroup (rootless): the processes of its PID namespace.
        if dirs.is_empty() {
            let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
            let theirs = ns(&pid.to_string());
            pids = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|p| p.parse::<u32>().is_ok() && theirs.is_some() && ns(p) == theirs)
                .collect();
        }
        let out = std::process::Command::new("ps")
            .arg("-ef")
            .output()
            .map_err(|e| ApiError::internal(format!("running ps -ef: {e} (install procps)")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let n = titles.len().max(1);
        let processes: Vec<Vec<String>> = lines
            .map(|l| {
                // The last column (CMD) holds blanks: it is the rest.
                let mut parts: Vec<String> =
                    l.split_whitespace().take(n - 1).map(String::from).collect();
                let rest = l
                    .split_whitespace()
                    .skip(n - 1)
                    .collect::<Vec<_>>()
                    .join(" ");
                parts.push(rest);
                parts
            })
            .filter(|p| p.get(1).is_some_and(|pid| pids.contains(pid)))
            .collect();
        Ok(json(
            StatusCode::OK,
            &j!({"Titles": titles, "Processes": processes}),
        ))
    }

    /// `POST /containers/{id}/resize?h=…&w=…`
    pub async fn resize(&self, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        let (height, width) = size_of(q)?;
        if self.is_running(&id) {
            // Answered (ok) once the terminal has its new size.
            let _ = self
                .connect_monitor(&id, &Hello::Resize { height, width })
                .await;
        }
        Ok(http::empty(StatusCode::OK))
    }

    /// `DELETE /containers/{id}?force=1`
    pub async fn remove(&self, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        if flag(q, "force") {
            // No restart policy may start it again, and one starting it
            // right now is waited for (a restart loop cannot dodge rm -f).
            self.set_manually_stopped(&id, true)?;
            for _ in 0..200 {
                if !self.entry(&id, |e| e.busy)? {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if self.is_running(&id) {
            if !flag(q, "force") {
                return Err(ApiError::conflict(format!(
                    "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
                )));
            }
            let mut kill = HashMap::new();
            kill.insert("t".to_string(), "0".to_string());
            self.stop(&id, &kill).await?;
        }
        let mounts = self.entry(&id, |e| e.c.mounts.clone())?;
        self.remove_now(&id)?;
        if flag(q, "v") {
            self.remove_anonymous_volumes(&mounts);
        }
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// Deletes a container that is not running: its directory, its entry;
    /// `removed` waiters are told.
    pub fn remove_now(&self, id: &str) -> Result<(), ApiError> {
        let mut map = self.containers.lock().unwrap();
        let Some(e) = map.get(id) else {
            return Ok(());
        };
        if e.state.status == Status::Running {
            return Err(ApiError::conflict(format!("container {id} is running")));
        }
        if e.busy {
            return Err(ApiError::conflict(format!(
                "container {id} is starting: try again when it has started"
            )));
        }
        super::cleanup_leftovers(&self.paths, id, &e.state.cgroup_dirs);
        std::fs::remove_dir_all(self.paths.container(id))
            .or_else(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            })
            .map_err(|err| ApiError::internal(format!("removing container {id}: {err}")))?;
        if let Some(e) = map.remove(id) {
            e.life.send_modify(|l| l.removed = true);
            drop(map);
            self.event(
                "container",
                "destroy",
                id,
                super::events::container_attributes(&e.c),
            );
        }
        Ok(())
    }

    /// `POST /containers/prune`: removes every container that is not running.
    pub async fn container_prune(&self) -> ApiResult {
        let stopped: Vec<String> = self
            .containers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.state.status != Status::Running && !e.busy)
            .map(|(id, _)| id.clone())
            .collect();
        let mut deleted = Vec::new();
        for id in stopped {
            if self.remove_now(&id).is_ok() {
                deleted.push(id);
            }
        }
        Ok(json(
            StatusCode::OK,
            &j!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
        ))
    }

    /// `GET /containers/{id}/json`
    pub fn inspect(&self, query: &str) -> ApiResult {
        let id = self.find(query)?;
        let endpoint = read_json(&self.paths.endpoint(&id)).ok();
        let extra = self.extra_endpoints(&id);
        let mut v = self.entry(&id, |e| {
            inspect_json(&self.paths.container(&id), endpoint.as_ref(), e)
        })?;
        // The networks it joined, beside its own.
        for ep in extra {
            let settings = network_settings(Some(&ep));
            if let (Some(all), Some(more)) = (
                v["NetworkSettings"]["Networks"].as_object_mut(),
                settings["Networks"].as_object(),
            ) {
                all.extend(more.clone());
            }
        }
        Ok(json(StatusCode::OK, &v))
    }

    /// `GET /containers/json?all=1`
    pub fn list(&self, q: &HashMap<String, String>) -> ApiResult {
        Ok(json(StatusCode::OK, &self.container_rows(q)?))
    }

    /// The rows of `GET /containers/json` (newest first).
    pub(crate) fn container_rows(
        &self,
        q: &HashMap<String, String>,
    ) -> Result<Vec<Value>, ApiError> {
        let f = super::filters::Filters::from_query(
            q,
            &[
                "label", "name", "id", "status", "ancestor", "exited", "network", "volume",
                "before", "since", "health",
            ],
        )?;
        // Filters on status or exit code look at every container.
        let all =
            flag(q, "all") || !f.values("status").is_empty() || !f.values("exited").is_empty();
        let ancestors: Vec<String> = f
            .values("ancestor")
            .iter()
            .filter_map(|a| self.resolve_image(a).ok().map(|found| found.id()))
            .collect();
        let created_of = |query: &str| -> Result<String, ApiError> {
            let id = self.find(query)?;
            self.entry(&id, |e| e.c.created.clone())
        };
        let before: Vec<String> = f
            .values("before")
            .iter()
            .map(|b| created_of(b))
            .collect::<Result<_, _>>()?;
        let since: Vec<String> = f
            .values("since")
            .iter()
            .map(|s| created_of(s))
            .collect::<Result<_, _>>()?;
        let map = self.containers.lock().unwrap();
        let mut rows: Vec<(String, Value)> = map
            .values()
            .filter(|e| all || e.state.status == Status::Running)
            .filter(|e| {
                let c = &e.c;
                let network = if c.host_config.network_mode.is_empty() {
                    "bridge"
                } else {
                    c.host_config.network_mode.as_str()
                };
                f.labels(c.config.labels.as_ref())
                    && f.any("name", |n| super::filters::name_matches(&c.name, n))
                    && f.any("id", |i| c.id.starts_with(i))
                    && f.any("status", |s| s == e.state.status.as_str())
                    && f.any("exited", |x| {
                        e.state.status == Status::Exited && x.parse() == Ok(e.state.exit_code)
                    })
                    && f.any("network", |n| {
                        n == network
                            || (n == "bridge" && network == "default")
                            || c.networks.iter().any(|j| j == n)
                    })
                    && f.any("health", |h| {
                        h == e.health.as_ref().map_or("none", |health| health.status)
                    })
                    && f.any("volume", |v| {
                        c.mounts
                            .iter()
                            .any(|m| m.name.as_deref() == Some(v) || m.destination == v)
                    })
                    && (f.values("ancestor").is_empty() || ancestors.contains(&c.image_id))
                    && before.iter().all(|t| c.created < *t)
                    && since.iter().all(|t| c.created > *t)
            })
            .map(|e| {
                (
                    e.c.created.clone(),
                    list_json(read_json(&self.paths.endpoint(&e.c.id)).ok().as_ref(), e),
                )
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }

    /// `GET /system/df`: what images, containers and volumes take on disk
    /// (`du` of the upper directories and the volumes' data).
    pub fn system_df(&self) -> ApiResult {
        let du = |p: &Path| chapter_03::copy::disk_usage(p).unwrap_or(0) as i64;
        let all: HashMap<String, String> = [("all".to_string(), "1".to_string())].into();
        let mut containers = self.container_rows(&all)?;
        let mut images = self.images(&HashMap::new())?;
        let size_of_image = |id: &str| {
            images
                .iter()
                .find(|i| i["Id"] == id)
                .and_then(|i| i["Size"].as_i64())
                .unwrap_or(0)
        };
        for c in &mut containers {
            let id = c["Id"].as_str().unwrap_or("").to_string();
            let rw = du(&self.paths.container(&id).join("upper"));
            c["SizeRw"] = j!(rw);
            c["SizeRootFs"] = j!(rw + size_of_image(c["ImageID"].as_str().unwrap_or("")));
        }
        for image in &mut images {
            let users = containers
                .iter()
                .filter(|c| c["ImageID"] == image["Id"])
                .count();
            image["Containers"] = j!(users);
            image["SharedSize"] = j!(-1);
        }
        let layers: i64 = images.iter().filter_map(|i| i["Size"].as_i64()).sum();
        let volumes: Vec<Value> = self
            .volume_rows()?
            .into_iter()
            .map(|mut v| {
                let name = v["Name"].as_str().unwrap_or("").to_string();
                v["UsageData"] = j!({
                    "Size": du(&self.paths.volume(&name).join("_data")),
                    "RefCount": self.volume_users(&name).len(),
                });
                v
            })
            .collect();
        Ok(json(
            StatusCode::OK,
            &j!({
                "LayersSize": layers,
                "Images": images,
                "Containers": containers,
                "Volumes": volumes,
                "BuildCache": [],
            }),
        ))
    }

    /// `GET /containers/{id}/logs?stdout=1&stderr=1&follow=1&tail=N`
    pub fn logs(self: &Arc<Self>, query: &str, q: &HashMap<String, String>) -> ApiResult {
        let id = self.find(query)?;
        let (tty, keeps) = self.entry(&id, |e| {
            (
                e.c.config.tty,
                e.c.host_config
                    .log_config
                    .as_ref()
                    .is_none_or(|l| l.keeps()),
            )
        })?;
        if !keeps {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "configured logging driver does not support reading",
            ));
        }
        let (stdout, stderr) = (flag(q, "stdout"), flag(q, "stderr"));
        if !stdout && !stderr {
            return Err(ApiError::bad_request(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        let follow = flag(q, "follow");
        let timestamps = flag(q, "timestamps");
        // Unix seconds, optionally with a fraction (the docker CLI turns
        // "10m" or an RFC 3339 time into one); 0 or absent: no bound.
        let bound = |key: &str| -> Result<Option<time::OffsetDateTime>, ApiError> {
            match q.get(key).map(String::as_str) {
                None | Some("") | Some("0") => Ok(None),
                Some(t) => {
                    let secs: f64 = t.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "invalid {key} {t:?}: unix seconds, e.g. 1700000000.5"
                        ))
                    })?;
                    time::OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128)
                        .map(Some)
                        .map_err(|e| ApiError::bad_request(format!("invalid {key} {t:?}: {e}")))
                }
            }
        };
        let (since, until) = (bound("since")?, bound("until")?);
        let tail = match q.get("tail").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("invalid --tail {n:?}: a number or \"all\""))
            })?),
        };
        let kind = if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        };
        let (mut tx, response) = http::streaming(StatusCode::OK, kind);
        let d = self.clone();
        let path = self.paths.log(&id);
        tokio::spawn(async move {
            let render = |entry: &crate::jsonlog::Entry| -> Option<Bytes> {
                let stream = if entry.stream == "stderr" {
                    if !stderr {
                        return None;
                    }
                    Stream::Stderr
                } else {
                    if !stdout {
                        return None;
                    }
                    Stream::Stdout
                };
                let mut text = Vec::new();
                if timestamps {
                    text.extend_from_slice(entry.time.as_bytes());
                    text.push(b' ');
                }
                text.extend_from_slice(entry.log.as_bytes());
                Some(Bytes::from(if tty { text } else { frame(stream, &text) }))
            };
            let mut first = true;
            // The file is held open: a container removed while a follower
            // still reads (a client's run, wait, rm) keeps its log readable.
            let mut file: Option<std::fs::File> = None;
            // What rotation kept, oldest first, then the current file.
            let mut bytes = Vec::new();
            for old in crate::jsonlog::rotated(&path) {
                bytes.extend(std::fs::read(old).unwrap_or_default());
            }
            loop {
                let running = d.is_running(&id);
                if file.is_none() {
                    file = std::fs::File::open(&path).ok();
                }
                // Read to the end; when the file was rotated away under us
                // (maybe more than once), go on with the file written after
                // it, until the current one.
                while let Some(f) = file.as_mut() {
                    use std::io::Read;
                    use std::os::unix::fs::MetadataExt;
                    let _ = f.read_to_end(&mut bytes);
                    if !follow {
                        break;
                    }
                    let held = f.metadata().map(|m| m.ino()).ok();
                    // The chain as it is now, oldest first, held open at once.
                    let chain: Vec<(u64, std::fs::File)> = crate::jsonlog::rotated(&path)
                        .into_iter()
                        .chain([path.clone()])
                        .filter_map(|p| std::fs::File::open(p).ok())
                        .filter_map(|f| Some((f.metadata().ok()?.ino(), f)))
                        .collect();
                    if chain.last().map(|(i, _)| Some(*i) == held).unwrap_or(true) {
                        break; // ours is the current file (or the log is gone)
                    }
                    let next = match chain.iter().position(|(i, _)| Some(*i) == held) {
                        Some(at) => at + 1,
                        None => 0, // ours was dropped by rotation: the oldest kept
                    };
                    file = chain.into_iter().nth(next).map(|(_, f)| f);
                }
                // Only whole lines: the monitor may be writing the last one.
                let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                if end > 0 {
                    let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
                    bytes.drain(..end);
                    let mut entries = crate::jsonlog::parse(&text);
                    entries.retain(|e| {
                        let t = crate::jsonlog::parse_time(&e.time);
                        since.is_none_or(|s| t.is_some_and(|t| t >= s))
                            && until.is_none_or(|u| t.is_some_and(|t| t <= u))
                    });
                    if first {
                        if let Some(n) = tail {
                            let skip = entries.len().saturating_sub(n);
                            entries.drain(..skip);
                        }
                    }
                    for entry in &entries {
                        if let Some(b) = render(entry) {
                            if tx.send_data(b).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                first = false;
                let past_until = until.is_some_and(|u| time::OffsetDateTime::now_utc() > u);
                if !follow || past_until || (!running && !d.is_running(&id)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(response)
    }

    /// `GET /containers/{id}/stats?stream=false`: one sample.
    pub fn stats(&self, query: &str) -> ApiResult {
        let id = self.find(query)?;
        let (dirs, name) = self.entry(&id, |e| (e.state.cgroup_dirs.clone(), e.c.name.clone()))?;
        let read = |file: &str| -> u64 {
            dirs.iter()
                .find_map(|d| chapter_02::files::read_u64(&d.join(file)).ok())
                .unwrap_or(0)
        };
        let memory = read("memory.usage_in_bytes").max(read("memory.current"));
        let limit = read("memory.limit_in_bytes").max(read("memory.max"));
        let cpu = read("cpuacct.usage");
        let pids = read("pids.current");
        Ok(json(
            StatusCode::OK,
            &j!({
                "id": id,
                "name": format!("/{name}"),
                "read": crate::jsonlog::now(),
                "memory_stats": {"usage": memory, "limit": limit},
                "cpu_stats": {"cpu_usage": {"total_usage": cpu}, "online_cpus": chapter_02::limits::host_cpus()},
                "precpu_stats": {"cpu_usage": {"total_usage": 0}},
                "pids_stats": {"current": pids},
            }),
        ))
    }
}

/// Where to look up user names: the highest layer that has `etc/passwd`
/// (user lookups happen before the overlay is mounted).
fn user_root(layers: &[PathBuf]) -> PathBuf {
    layers
        .iter()
        .rev()
        .find(|l| l.join("etc/passwd").is_file())
        .or(layers.last())
        .cloned()
        .unwrap_or_default()
}

fn size_of(q: &HashMap<String, String>) -> Result<(u16, u16), ApiError> {
    let get = |k: &str| {
        q.get(k)
            .and_then(|v| v.parse::<u16>().ok())
            .ok_or_else(|| ApiError::bad_request(format!("resize: {k} must be a number of cells")))
    };
    Ok((get("h")?, get("w")?))
}

pub fn signal_pid(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill(2) with a PID we recorded for a container we own.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Copies both ways between a hijacked client connection and a monitor
/// stream; each side's end of writing is passed on as a half-close.
/// Copies an attached client's stdin to the monitor and the container's
/// output back. With detach keys, the client's sequence (held back while
/// it is only a prefix) ends the attach and leaves the container running.
pub async fn relay(
    io: hyper::upgrade::Upgraded,
    conn: tokio::net::UnixStream,
    detach: Option<Vec<u8>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(keys) = detach.filter(|k| !k.is_empty()) else {
        let mut client = TokioIo::new(io);
        let mut monitor = conn;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut monitor).await;
        return;
    };
    let (mut client_rx, mut client_tx) = tokio::io::split(TokioIo::new(io));
    let (mut monitor_rx, mut monitor_tx) = conn.into_split();
    let output = async {
        let _ = tokio::io::copy(&mut monitor_rx, &mut client_tx).await;
        let _ = client_tx.shutdown().await;
    };
    let input = async {
        let mut matcher = DetachMatcher::new(keys);
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = monitor_tx.shutdown().await;
                    return false;
                }
                Ok(n) => n,
            };
            let (pass, detached) = matcher.feed(&buf[..n]);
            if !pass.is_empty() && monitor_tx.write_all(&pass).await.is_err() {
                return false;
            }
            if detached {
                return true;
            }
        }
    };
    tokio::pin!(output, input);
    tokio::select! {
        _ = &mut output => {}
        detached = &mut input => {
            if !detached {
                output.await; // stdin ended: the output goes on to its end
            }
            // Detached: both directions end here, the container runs on.
        }
    }
}

/// Docker's detach keys (`ctrl-p,ctrl-q`, the default when empty): each
/// `ctrl-X` is X's control byte (`ctrl-@` 0 … `ctrl-_` 31), any other
/// single character itself.
pub fn detach_keys(text: &str) -> Result<Vec<u8>, String> {
    let text = if text.is_empty() {
        "ctrl-p,ctrl-q"
    } else {
        text
    };
    text.split(',')
        .map(|key| {
            let bad = || format!("Invalid detach keys ({text}) provided: use e.g. ctrl-p,ctrl-q");
            match key.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let b = c.as_bytes()[0].to_ascii_lowercase();
                    match b {
                        b'a'..=b'z' => Ok(b - b'a' + 1),
                        b'@' => Ok(0),
                        b'[' | b'\\' | b']' | b'^' | b'_' => Ok(b - b'[' + 27),
                        _ => Err(bad()),
                    }
                }
                None if key.len() == 1 => Ok(key.as_bytes()[0]),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Finds the detach sequence in a stream of stdin chunks.
pub struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> DetachMatcher {
        DetachMatcher { keys, matched: 0 }
    }

    /// What to pass on of `chunk`, and whether the sequence is complete
    /// (what follows it is dropped).
    pub fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        let mut pass = Vec::with_capacity(chunk.len());
        for &b in chunk {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (pass, true);
                }
                continue;
            }
            // A prefix that did not go on: its bytes were the user's.
            pass.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (pass, true);
                }
            } else {
                pass.push(b);
            }
        }
        (pass, false)
    }
}

/// The freezer file of a container's cgroup and its values (frozen, thawed).
fn freezer(dirs: &[PathBuf]) -> Option<(PathBuf, &'static str, &'static str)> {
    dirs.iter().find_map(|d| {
        if d.join("freezer.state").exists() {
            Some((d.join("freezer.state"), "FROZEN", "THAWED"))
        } else if d.join("cgroup.freeze").exists() {
            Some((d.join("cgroup.freeze"), "1", "0"))
        } else {
            None
        }
    })
}

/// Whether the container's processes are frozen (paused).
pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    freezer(dirs).is_some_and(|(file, frozen, _)| {
        std::fs::read_to_string(file).is_ok_and(|s| s.trim() == frozen || s.trim() == "FREEZING")
    })
}

fn set_frozen(dirs: &[PathBuf], frozen: bool) -> Result<(), String> {
    let (file, on, off) = freezer(dirs).ok_or("this container's cgroup has no freezer")?;
    std::fs::write(&file, if frozen { on } else { off })
        .map_err(|e| format!("writing {}: {e}", file.display()))
}

fn state_json(s: &State) -> Value {
    let paused = s.status == Status::Running && is_frozen(&s.cgroup_dirs);
    let or_zero = |t: &str| {
        if t.is_empty() {
            crate::jsonlog::ZERO_TIME.to_string()
        } else {
            t.to_string()
        }
    };
    j!({
        "Status": if paused { "paused" } else { s.status.as_str() },
        "Running": s.status == Status::Running,
        "Paused": paused,
        "Restarting": false,
        "OOMKilled": s.oom_killed,
        "Dead": false,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": or_zero(&s.started_at),
        "FinishedAt": or_zero(&s.finished_at),
    })
}

/// The container's Config as inspect shows it: what the client asked for,
/// with the image's defaults filled in.
fn effective_config(c: &Container) -> ContainerConfig {
    let mut config = c.config.clone();
    config.hostname = c.hostname.clone();
    config.env = Some(c.env.clone());
    config.working_dir = c.workdir.clone();
    if config.cmd.is_none() && config.entrypoint.is_none() {
        config.cmd = Some(c.args.clone());
    }
    config
}

/// Docker 1.41's inspect keys this engine has no setting for, with the
/// values Docker shows when they are unset: clients read them (the Python
/// SDK, testcontainers) and must not meet a missing key.
const HOST_CONFIG_DEFAULTS: &[(&str, &str)] = &[
    ("ContainerIDFile", "\"\""),
    ("VolumeDriver", "\"\""),
    ("VolumesFrom", "null"),
    ("Links", "null"),
    ("OomScoreAdj", "0"),
    ("ShmSize", "67108864"),
    ("Runtime", "\"runc\""),
    ("Isolation", "\"\""),
    ("CgroupParent", "\"\""),
    ("Cgroup", "\"\""),
    ("BlkioWeight", "0"),
    ("BlkioWeightDevice", "[]"),
    ("BlkioDeviceReadBps", "null"),
    ("BlkioDeviceWriteBps", "null"),
    ("BlkioDeviceReadIOps", "null"),
    ("BlkioDeviceWriteIOps", "null"),
    ("CpuPeriod", "0"),
    ("CpuQuota", "0"),
    ("CpuRealtimePeriod", "0"),
    ("CpuRealtimeRuntime", "0"),
    ("CpusetMems", "\"\""),
    ("DeviceRequests", "null"),
    ("KernelMemory", "0"),
    ("KernelMemoryTCP", "0"),
    ("MemoryReservation", "0"),
    ("MemorySwappiness", "null"),
    ("OomKillDisable", "false"),
    ("Ulimits", "null"),
    ("CpuCount", "0"),
    ("CpuPercent", "0"),
    ("IOMaximumIOps", "0"),
    ("IOMaximumBandwidth", "0"),
    ("MaskedPaths", "null"),
    ("ReadonlyPaths", "null"),
    ("Mounts", "null"),
];

const CONFIG_DEFAULTS: &[(&str, &str)] = &[
    ("ArgsEscaped", "false"),
    ("NetworkDisabled", "false"),
    ("MacAddress", "\"\""),
    ("OnBuild", "null"),
    ("Shell", "null"),
];

/// Adds each (key, JSON value) that `object` lacks.
fn fill_defaults(object: &mut Value, defaults: &[(&str, &str)]) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    for (key, value) in defaults {
        map.entry(*key)
            .or_insert_with(|| serde_json::from_str(value).expect("a JSON default"));
    }
}

fn inspect_json(dir: &Path, endpoint: Option<&crate::net::Endpoint>, e: &Entry) -> Value {
    let c = &e.c;
    let lower: Vec<String> = c.layers.iter().map(|l| l.display().to_string()).collect();
    // The log driver is always json-file; clients read it (the Python
    // SDK's containers.run decides from it whether it can read logs).
    let mut host_config = serde_json::to_value(&c.host_config).unwrap_or_default();
    if host_config["LogConfig"].is_null() {
        host_config["LogConfig"] = j!({"Type": "json-file", "Config": {}});
    }
    fill_defaults(&mut host_config, HOST_CONFIG_DEFAULTS);
    let mut config = serde_json::to_value(effective_config(c)).unwrap_or_default();
    fill_defaults(&mut config, CONFIG_DEFAULTS);
    let mut state = state_json(&e.state);
    if let Some(h) = &e.health {
        state["Health"] = j!(h);
    }
    j!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.args[0],
        "Args": c.args[1..],
        "State": state,
        "Image": c.image_id,
        "Name": format!("/{}", c.name),
        "RestartCount": e.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "LogPath": dir.join(format!("{}-json.log", c.id)),
        "HostConfig": host_config,
        "Config": config,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "Mounts": mounts_json(&c.mounts),
        "NetworkSettings": network_settings(endpoint),
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": lower.join(":"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("merged"),
            }
        },
    })
}

/// `NetworkSettings` from the endpoint a running container has.
fn network_settings(endpoint: Option<&crate::net::Endpoint>) -> Value {
    let Some(ep) = endpoint else {
        return j!({"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": ""});
    };
    let mut ports = serde_json::Map::new();
    for p in &ep.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = ports.entry(key).or_insert_with(|| j!([]));
        if let Some(list) = entry.as_array_mut() {
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &p.host_ip
            };
            list.push(j!({"HostIp": ip, "HostPort": p.host_port.to_string()}));
        }
    }
    j!({
        "IPAddress": ep.ip.to_string(),
        "IPPrefixLen": ep.prefix,
        "Gateway": ep.gateway.to_string(),
        "Ports": ports,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": "",
        "EndpointID": "",
        "SandboxID": "",
        "SandboxKey": "",
        "Bridge": "",
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "Networks": {
            ep.network.clone(): {
                "IPAMConfig": null,
                "Links": null,
                "Aliases": null,
                "NetworkID": ep.network_id,
                "EndpointID": "",
                "IPAddress": ep.ip.to_string(),
                "IPPrefixLen": ep.prefix,
                "Gateway": ep.gateway.to_string(),
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "MacAddress": "",
                "DriverOpts": null,
            }
        },
    })
}

fn ports_json(endpoint: Option<&crate::net::Endpoint>) -> Value {
    let Some(ep) = endpoint else {
        return j!([]);
    };
    ep.ports
        .iter()
        .map(|p| {
            let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip };
            j!({"IP": ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto})
        })
        .collect()
}

fn mounts_json(mounts: &[crate::state::MountPoint]) -> Value {
    use crate::state::MountKind;
    mounts
        .iter()
        .map(|m| {
            j!({
                "Type": match m.kind { MountKind::Bind => "bind", MountKind::Volume => "volume", MountKind::Tmpfs => "tmpfs" },
                "Name": m.name,
                "Source": m.source,
                "Destination": m.destination,
                "Driver": if m.kind == MountKind::Volume { "local" } else { "" },
                "Mode": if m.readonly { "ro" } else { "" },
                "RW": !m.readonly,
                "Propagation": if m.kind == MountKind::Bind { "rprivate" } else { "" },
            })
        })
        .collect()
}

fn list_json(endpoint: Option<&crate::net::Endpoint>, e: &Entry) -> Value {
    let c = &e.c;
    let s = &e.state;
    let since = |t: &str| {
        crate::jsonlog::parse_time(t)
            .map(|t| {
                let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
                crate::human::human_duration(Duration::from_secs(secs as u64))
            })
            .unwrap_or_default()
    };
    let paused = s.status == Status::Running && is_frozen(&s.cgroup_dirs);
    let status = match s.status {
        Status::Running if paused => format!("Up {} (Paused)", since(&s.started_at)),
        Status::Running => match e.health.as_ref().map(|h| h.status) {
            Some("starting") => format!("Up {} (health: starting)", since(&s.started_at)),
            Some(status) => format!("Up {} ({status})", since(&s.started_at)),
            None => format!("Up {}", since(&s.started_at)),
        },
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Created => "Created".to_string(),
    };
    let created = crate::jsonlog::parse_time(&c.created).map_or(0, |t| t.unix_timestamp());
    let network = if c.host_config.network_mode.is_empty() {
        "default"
    } else {
        &c.host_config.network_mode
    };
    j!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": c.args.join(" "),
        "Created": created,
        "Ports": ports_json(endpoint),
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": if paused { "paused" } else { s.status.as_str() },
        "Status": status,
        "HostConfig": {"NetworkMode": network},
        // Clients read the gateway of the container's network from here
        // (testcontainers' get_exposed_port).
        "NetworkSettings": {"Networks": network_settings(endpoint)["Networks"]},
        "Mounts": mounts_json(&c.mounts),
    })
}

#[cfg(test)]
mod detach_tests {
    use super::*;

    #[test]
    fn keys_parse_and_the_sequence_is_found_across_chunks() {
        assert_eq!(detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(detach_keys("ctrl-[").unwrap(), vec![27]);
        assert!(detach_keys("ctrl-é,,").is_err());
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(m.feed(b"\x10"), (Vec::new(), false));
        assert_eq!(m.feed(b"\x11rest"), (Vec::new(), true));
    }
}
