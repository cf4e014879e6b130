//! Networks through the API, and a container's attachment to one.
//!
//! Networks live in `<root>/networks/NAME.json` (their subnet, gateway,
//! bridge) with their address allocations in `NAME.ipam.json`. `bridge`
//! (the default, on `mdocker0`) always exists; `host` and `none` are modes,
//! listed as networks as Docker lists them.
//!
//! A start goes: [`Daemon::network_prepare`] before the monitor is spawned
//! (an address, the host ports checked and held, /etc files written), then
//! [`Daemon::network_attach`] once PID 1 exists (bridge, NAT, veth into its
//! namespace, eth0 configured, ports published), then
//! [`Daemon::network_detach`] when it has exited (rules deleted, address
//! released, and everything removed when no container is left on a bridge).

use super::http::{self, json, ApiError, ApiResult};
use super::Daemon;
use crate::net::ipam::{self, Allocations, Subnet};
use crate::net::links::Netlink;
use crate::net::{dns, files, nat, Endpoint, PortMap};
use crate::state::{read_json, write_json, Container};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json as j, Value};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub subnet: Subnet,
    pub bridge: String,
    pub created: String,
    /// The default network: cannot be removed.
    pub builtin: bool,
    /// As created: reported back, so that a client comparing what it asked
    /// for with what exists (compose) finds them equal.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub attachable: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateNetwork {
    name: String,
    driver: String,
    labels: Option<std::collections::BTreeMap<String, String>>,
    options: Option<std::collections::BTreeMap<String, String>>,
    attachable: bool,
    internal: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamRequest {
    config: Vec<IpamConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
}

/// A held host port: nobody else can bind it while the container runs.
pub enum Held {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// The network a container's mode names: `None` for `none` and `host`.
pub fn network_name(mode: &str) -> Option<&str> {
    match mode {
        "none" | "host" => None,
        "" | "default" | "bridge" => Some("bridge"),
        name => Some(name),
    }
}

impl Daemon {
    fn network_path(&self, name: &str) -> std::path::PathBuf {
        self.paths
            .root
            .join("networks")
            .join(format!("{name}.json"))
    }

    fn ipam_path(&self, name: &str) -> std::path::PathBuf {
        self.paths
            .root
            .join("networks")
            .join(format!("{name}.ipam.json"))
    }

    /// The default `bridge` network, written on first start.
    pub fn ensure_default_network(&self) -> Result<(), ApiError> {
        std::fs::create_dir_all(self.paths.root.join("networks"))?;
        if !self.network_path("bridge").exists() {
            let subnet = self
                .net
                .pool
                .nth(24, 0)
                .ok_or_else(|| ApiError::internal("address pool too small"))?;
            write_json(
                &self.network_path("bridge"),
                &Network {
                    name: "bridge".into(),
                    id: crate::ids::new_id(),
                    subnet,
                    bridge: self.net.default_bridge(),
                    created: crate::jsonlog::now(),
                    builtin: true,
                    labels: Default::default(),
                    options: Default::default(),
                    attachable: false,
                },
            )?;
        }
        Ok(())
    }

    pub fn networks(&self) -> Vec<Network> {
        let mut out: Vec<Network> = std::fs::read_dir(self.paths.root.join("networks"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.ends_with(".json") && !n.ends_with(".ipam.json")
            })
            .filter_map(|e| read_json(&e.path()).ok())
            .collect();
        out.sort_by(|a: &Network, b| a.name.cmp(&b.name));
        out
    }

    pub fn find_network(&self, query: &str) -> Result<Network, ApiError> {
        let all = self.networks();
        all.iter()
            .find(|n| n.name == query || n.id == query)
            .or_else(|| {
                let matching: Vec<&Network> = all
                    .iter()
                    .filter(|n| query.len() >= 3 && n.id.starts_with(query))
                    .collect();
                (matching.len() == 1).then(|| matching[0])
            })
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("network {query} not found")))
    }

    /// Containers (running or not) whose mode names `network`.
    fn network_users(&self, network: &str) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| {
                network_name(&e.c.host_config.network_mode) == Some(network)
                    || e.c.networks.iter().any(|n| n == network)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn network_json(&self, n: &Network) -> Value {
        let endpoints: serde_json::Map<String, Value> = self
            .endpoints()
            .into_iter()
            .filter(|(_, ep)| ep.network == n.name)
            .map(|(id, ep)| {
                (
                    id,
                    j!({"IPv4Address": format!("{}/{}", ep.ip, ep.prefix), "MacAddress": ""}),
                )
            })
            .collect();
        j!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.subnet.gateway().to_string()}]},
            "Internal": false,
            "Attachable": n.attachable,
            "Containers": endpoints,
            // Docker reports the bridge's name for the default bridge only;
            // a user network shows the options it was created with.
            "Options": if n.builtin { j!({"com.docker.network.bridge.name": n.bridge}) } else { j!(n.options) },
            "Labels": n.labels,
        })
    }

    /// Every running container's endpoints, on its own network and on the
    /// others it joined.
    pub fn endpoints(&self) -> Vec<(String, Endpoint)> {
        let ids: Vec<String> = self.containers.lock().unwrap().keys().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Ok(ep) = read_json::<Endpoint>(&self.paths.endpoint(&id)) {
                out.push((id.clone(), ep));
            }
            out.extend(
                self.extra_endpoints(&id)
                    .into_iter()
                    .map(|ep| (id.clone(), ep)),
            );
        }
        out
    }

    /// A container's endpoints on the networks it joined besides its own
    /// (while it runs).
    pub fn extra_endpoints(&self, id: &str) -> Vec<Endpoint> {
        let joined = self.entry(id, |e| e.c.networks.clone()).unwrap_or_default();
        joined
            .iter()
            .filter_map(|n| read_json(&self.paths.extra_endpoint(id, n)).ok())
            .collect()
    }

    /// Plugs a running container (PID `pid`) into one more network, as its
    /// `eth{k}`: an address of that network, a veth on its bridge, the
    /// network's rules; no default route (that stays its own network's).
    pub async fn attach_extra(
        &self,
        c: &Container,
        network: &str,
        k: usize,
        pid: i32,
    ) -> anyhow::Result<()> {
        let _guard = self.net_lock.lock().await;
        let n = self
            .find_network(network)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let mut taken: Allocations = read_json(&self.ipam_path(&n.name)).unwrap_or_default();
        let ip = ipam::allocate(&n.subnet, &mut taken, &c.id).map_err(anyhow::Error::msg)?;
        write_json(&self.ipam_path(&n.name), &taken)?;
        let ep = Endpoint {
            network: n.name.clone(),
            network_id: n.id.clone(),
            bridge: n.bridge.clone(),
            ip,
            prefix: n.subnet.prefix,
            gateway: n.subnet.gateway(),
            veth: format!("vx{k}{}", &c.id[..9]),
            ports: Vec::new(),
        };
        write_json(&self.paths.extra_endpoint(&c.id, &n.name), &ep)?;
        let host = Netlink::host()?;
        let bridge = host
            .ensure_bridge(&ep.bridge, ep.gateway, ep.prefix)
            .await?;
        nat::ensure_table(&self.net)?;
        nat::ensure_network_rules(&self.net, &n.name, &ep.bridge, &n.subnet.to_string())?;
        let peer = format!("vy{k}{}", &c.id[..9]);
        host.add_veth(&ep.veth, &peer, bridge, pid).await?;
        Netlink::in_netns_of(pid)
            .await?
            .configure_interface(&peer, &format!("eth{k}"), ip, ep.prefix)
            .await?;
        Ok(())
    }

    /// Takes a container off one network it joined: its veth, its address.
    async fn detach_extra(&self, id: &str, network: &str) {
        let path = self.paths.extra_endpoint(id, network);
        let Ok(ep) = read_json::<Endpoint>(&path) else {
            return;
        };
        let mut taken: Allocations = read_json(&self.ipam_path(network)).unwrap_or_default();
        ipam::release(&mut taken, id);
        let _ = write_json(&self.ipam_path(network), &taken);
        if let Ok(host) = Netlink::host() {
            let _ = host.delete(&ep.veth).await;
        }
        let _ = std::fs::remove_file(&path);
    }

    /// The networks a container is on: its mode's, then those it joined.
    fn networks_of(&self, id: &str) -> Vec<String> {
        self.entry(id, |e| {
            network_name(&e.c.host_config.network_mode)
                .map(String::from)
                .into_iter()
                .chain(e.c.networks.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
    }

    /// `GET /networks`
    /// `GET /networks?filters=…`: name (a part of it), id (a prefix),
    /// label, driver, type (custom or builtin), scope.
    pub fn network_list(&self, q: &std::collections::HashMap<String, String>) -> ApiResult {
        let f = super::filters::Filters::from_query(
            q,
            &["name", "id", "label", "driver", "type", "scope", "dangling"],
        )?;
        let mut list: Vec<Value> = self
            .networks()
            .iter()
            .map(|n| self.network_json(n))
            .collect();
        for mode in ["host", "none"] {
            list.push(j!({"Name": mode, "Id": mode, "Driver": if mode == "host" { "host" } else { "null" }, "Scope": "local", "Containers": {}, "IPAM": {"Config": []}, "Labels": {}}));
        }
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
        list.retain(|n| {
            let name = text(n, "Name");
            let builtin = ["bridge", "host", "none"].contains(&name.as_str());
            let labels: std::collections::BTreeMap<String, String> =
                serde_json::from_value(n["Labels"].clone()).unwrap_or_default();
            f.any("name", |w| super::filters::name_matches(&name, w))
                && f.any("id", |w| text(n, "Id").starts_with(w))
                && f.any("driver", |w| text(n, "Driver") == w)
                && f.any("scope", |w| w == "local")
                && f.any("type", |w| (w == "builtin") == builtin)
                && f.labels(Some(&labels))
        });
        Ok(json(StatusCode::OK, &list))
    }

    /// `GET /networks/{id}`
    pub fn network_inspect(&self, query: &str) -> ApiResult {
        let n = self.find_network(query)?;
        Ok(json(StatusCode::OK, &self.network_json(&n)))
    }

    /// `POST /networks/create`: a user-defined bridge network, with the
    /// next free /24 of the pool unless a subnet is given.
    pub async fn network_create(&self, req: Request<Incoming>) -> ApiResult {
        let body: CreateNetwork = http::body_json(req).await?;
        let _guard = self.net_lock.lock().await;
        if body.name.is_empty() {
            return Err(ApiError::bad_request("a network needs a name"));
        }
        crate::ids::validate_name(&body.name)
            .map_err(|_| ApiError::bad_request(format!("invalid network name {:?}", body.name)))?;
        if ["host", "none", "default"].contains(&body.name.as_str())
            || self.network_path(&body.name).exists()
        {
            return Err(ApiError::conflict(format!(
                "network with name {} already exists",
                body.name
            )));
        }
        if body.internal {
            return Err(ApiError::bad_request(
                "internal networks (no route out) are not supported by mini-docker",
            ));
        }
        if !body.driver.is_empty() && body.driver != "bridge" {
            return Err(ApiError::bad_request(format!(
                "driver {:?} is not supported: only bridge",
                body.driver
            )));
        }
        let existing: Vec<Subnet> = self.networks().iter().map(|n| n.subnet).collect();
        let subnet = match body
            .ipam
            .and_then(|i| i.config.into_iter().next())
            .map(|c| c.subnet)
        {
            Some(text) if !text.is_empty() => {
                let s = Subnet::parse(&text).map_err(ApiError::bad_request)?;
                if let Some(other) = existing.iter().find(|e| e.overlaps(&s)) {
                    return Err(ApiError::conflict(format!(
                        "subnet {s} overlaps {other} of another network"
                    )));
                }
                s
            }
            _ => (0..)
                .map_while(|i| self.net.pool.nth(24, i))
                .find(|s| !existing.iter().any(|e| e.overlaps(s)))
                .ok_or_else(|| {
                    ApiError::conflict(format!(
                        "the address pool {} has no free /24 left",
                        self.net.pool
                    ))
                })?,
        };
        let id = crate::ids::new_id();
        let network = Network {
            name: body.name.clone(),
            bridge: format!("{}-{}", self.net.prefix, &id[..8]),
            id: id.clone(),
            subnet,
            created: crate::jsonlog::now(),
            builtin: false,
            labels: body.labels.unwrap_or_default(),
            options: body.options.unwrap_or_default(),
            attachable: body.attachable,
        };
        write_json(&self.network_path(&body.name), &network)?;
        self.network_event("create", &network);
        Ok(json(StatusCode::CREATED, &j!({"Id": id, "Warning": ""})))
    }

    /// Takes `network` off the networks the container joined, on disk too.
    fn forget_joined(&self, id: &str, network: &str) -> Result<(), ApiError> {
        let c = self.entry(id, |e| {
            e.c.networks.retain(|n| n != network);
            e.c.clone()
        })?;
        crate::state::write_json(&self.paths.config(id), &c)?;
        Ok(())
    }

    /// Joins or leaves a network other than the container's own.
    async fn connect_other(
        &self,
        id: &str,
        network: &Network,
        body: crate::api::NetworkConnect,
        connect: bool,
        running: bool,
    ) -> ApiResult {
        let (mode, joined, c) = self.entry(id, |e| {
            (
                e.c.host_config.network_mode.clone(),
                e.c.networks.clone(),
                e.c.clone(),
            )
        })?;
        if network_name(&mode).is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("container {} has network mode {mode}: it cannot be connected to another network", crate::ids::short(id)),
            ));
        }
        let short = crate::ids::short(id).to_string();
        if connect {
            if joined.contains(&network.name) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "endpoint with name {} already exists in network {}",
                        c.name, network.name
                    ),
                ));
            }
            if network.name == "bridge" {
                return Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "joining the default bridge as a second network is not supported by this engine: connect a user-defined network",
                ));
            }
            let aliases = body
                .endpoint_config
                .and_then(|e| e.aliases)
                .unwrap_or_default();
            let c = self.entry(id, |e| {
                e.c.networks.push(network.name.clone());
                for a in aliases {
                    if !e.c.aliases.contains(&a) {
                        e.c.aliases.push(a);
                    }
                }
                e.c.clone()
            })?;
            crate::state::write_json(&self.paths.config(id), &c)?;
            if running {
                let pid = self.entry(id, |e| e.state.pid)?;
                if let Err(e) = self
                    .attach_extra(&c, &network.name, c.networks.len(), pid)
                    .await
                {
                    let _guard = self.net_lock.lock().await;
                    self.detach_extra(id, &network.name).await;
                    self.forget_joined(id, &network.name)?;
                    return Err(ApiError::internal(format!(
                        "connecting {short} to {}: {e:#}",
                        network.name
                    )));
                }
            }
        } else {
            if !joined.contains(&network.name) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "container {short} is not connected to network {}",
                        network.name
                    ),
                ));
            }
            if running {
                let _guard = self.net_lock.lock().await;
                self.detach_extra(id, &network.name).await;
            }
            self.forget_joined(id, &network.name)?;
        }
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".into(), j!(network.name));
        attributes.insert("type".into(), j!("bridge"));
        attributes.insert("container".into(), j!(id));
        self.event(
            "network",
            if connect { "connect" } else { "disconnect" },
            &network.id,
            attributes,
        );
        Ok(http::empty(StatusCode::OK))
    }

    fn network_event(&self, action: &str, n: &Network) {
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".into(), j!(n.name));
        attributes.insert("type".into(), j!("bridge"));
        self.event("network", action, &n.id, attributes);
    }

    /// `DELETE /networks/{id}`: refused while a container is on it.
    pub async fn network_remove(&self, query: &str) -> ApiResult {
        let n = self.find_network(query)?;
        if n.builtin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{} is a pre-defined network and cannot be removed", n.name),
            ));
        }
        let users = self.network_users(&n.name);
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                users
                    .iter()
                    .map(|u| crate::ids::short(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let _guard = self.net_lock.lock().await;
        if let Ok(nl) = Netlink::host() {
            let _ = nl.delete(&n.bridge).await;
        }
        let _ = nat::delete_owned(&self.net, &format!("net:{}", n.name));
        std::fs::remove_file(self.network_path(&n.name))?;
        let _ = std::fs::remove_file(self.ipam_path(&n.name));
        self.network_event("destroy", &n);
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// `POST /networks/prune`: user-defined networks no container names.
    pub async fn network_prune(&self) -> ApiResult {
        let mut deleted = Vec::new();
        for n in self.networks() {
            if !n.builtin
                && self.network_users(&n.name).is_empty()
                && self.network_remove(&n.name).await.is_ok()
            {
                deleted.push(n.name);
            }
        }
        Ok(json(StatusCode::OK, &j!({"NetworksDeleted": deleted})))
    }

    /// Before the monitor starts: an address, the published ports checked
    /// and held, and the /etc files. Returns the endpoint (also written to
    /// `endpoint.json`), or None for `none` and `host`.
    pub async fn network_prepare(&self, c: &Container) -> Result<Option<Endpoint>, ApiError> {
        let dir = self.paths.container(&c.id);
        let _guard = self.net_lock.lock().await;
        let mode = c.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok(None);
        }
        let mut host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if self.options.rootless && network_name(mode).is_some() {
            // The host's own resolver on its loopback is slirp4netns's
            // 10.0.2.3 from the engine's network namespace.
            host_resolv = crate::rootless::resolv_through_slirp(&host_resolv);
        }
        // On a user-defined network, names are the embedded DNS server's.
        let h = &c.host_config;
        let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        let resolv = dns::container_resolv(
            &host_resolv,
            network_name(mode).is_some_and(|n| n != "bridge"),
            &list(&h.dns),
            &list(&h.dns_search),
            &list(&h.dns_options),
        );
        let extra = self.extra_hosts(c);
        std::fs::write(dir.join("hostname"), format!("{}\n", c.hostname))?;
        std::fs::write(dir.join("resolv.conf"), resolv)?;
        let Some(name) = network_name(mode) else {
            std::fs::write(dir.join("hosts"), files::hosts(None) + &extra)?;
            return Ok(None);
        };
        let network = self.find_network(name)?;
        if let Some(run) = crate::rootless::run_dir() {
            // The engine's network namespace gets its way out, and routes.
            crate::rootless::ensure_slirp(run).map_err(|e| ApiError::internal(format!("{e:#}")))?;
            crate::rootless::in_engine_netns(|| {
                std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            })
            .and_then(|written| written)
            .map_err(|e| {
                ApiError::internal(format!("routing in the engine's network namespace: {e}"))
            })?;
        }
        let mut taken: Allocations = read_json(&self.ipam_path(name)).unwrap_or_default();
        ipam::release(&mut taken, &c.id);
        let ip = match c.ip {
            Some(wanted) => ipam::allocate_static(&mut taken, &c.id, wanted),
            None => ipam::allocate(&network.subnet, &mut taken, &c.id),
        }
        .map_err(ApiError::conflict)?;
        let ports = self.hold_ports(c)?;
        write_json(&self.ipam_path(name), &taken)?;
        let endpoint = Endpoint {
            network: network.name.clone(),
            network_id: network.id.clone(),
            bridge: network.bridge.clone(),
            ip,
            prefix: network.subnet.prefix,
            gateway: network.subnet.gateway(),
            veth: format!("ve{}", &c.id[..10]),
            ports,
        };
        write_json(&self.paths.endpoint(&c.id), &endpoint)?;
        let names = host_names(&[&c.hostname, &c.name]);
        std::fs::write(dir.join("hosts"), files::hosts(Some((ip, &names))) + &extra)?;
        Ok(Some(endpoint))
    }

    /// `-p` and `-P` as port maps; each host port bound now and held while
    /// the container runs (a second container asking for it fails here,
    /// before it starts).
    fn hold_ports(&self, c: &Container) -> Result<Vec<PortMap>, ApiError> {
        let mut wanted: Vec<(String, u16, String, u16)> = Vec::new();
        let parse_key = |key: &str| -> Result<(u16, String), ApiError> {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let port = port
                .parse::<u16>()
                .map_err(|_| ApiError::bad_request(format!("invalid container port {key:?}")))?;
            if proto != "tcp" && proto != "udp" {
                return Err(ApiError::bad_request(format!(
                    "invalid protocol {proto:?} in {key:?}: tcp or udp"
                )));
            }
            Ok((port, proto.to_string()))
        };
        for (key, bindings) in c.host_config.port_bindings.clone().unwrap_or_default() {
            let (cport, proto) = parse_key(&key)?;
            for b in bindings {
                let hport = if b.host_port.is_empty() {
                    0
                } else {
                    b.host_port.parse::<u16>().map_err(|_| {
                        ApiError::bad_request(format!("invalid host port {:?}", b.host_port))
                    })?
                };
                wanted.push((b.host_ip, hport, proto.clone(), cport));
            }
        }
        if c.host_config.publish_all_ports {
            let exposed = c.exposed_ports.clone();
            for key in exposed {
                let (cport, proto) = parse_key(&key)?;
                if !wanted.iter().any(|w| w.3 == cport && w.2 == proto) {
                    wanted.push((String::new(), 0, proto, cport));
                }
            }
        }
        let wanted: Vec<PortMap> = wanted
            .into_iter()
            .map(|(host_ip, host_port, proto, container_port)| PortMap {
                proto,
                host_ip,
                host_port,
                container_port,
            })
            .collect();
        let (held, maps) = bind_ports(&wanted)?;
        // Rootless, slirp4netns binds the host's ports itself: the daemon
        // only chose them (an unavailable one fails here all the same).
        if !self.options.rootless {
            self.held_ports.lock().unwrap().insert(c.id.clone(), held);
        }
        Ok(maps)
    }

    /// A restarted daemon holds the published ports of the containers that
    /// kept running while it was away.
    pub fn hold_again(&self, id: &str) {
        if self.options.rootless {
            return; // slirp4netns still holds them
        }
        let Ok(ep) = read_json::<Endpoint>(&self.paths.endpoint(id)) else {
            return;
        };
        match bind_ports(&ep.ports) {
            Ok((held, _)) => {
                self.held_ports.lock().unwrap().insert(id.to_string(), held);
            }
            Err(e) => eprintln!(
                "recovery: {}: cannot hold its published ports again: {}",
                crate::ids::short(id),
                e.message
            ),
        }
    }

    // ANCHOR: network_attach
    // exercise 6.12: plug one container into its network: bridge, veth, eth0, NAT
    // builds on: 6.11
    // hint: The endpoint (address, gateway, bridge, veth name, ports) was
    //   allocated before the start; now the wiring, while PID 1 waits for go:
    //   the bridge on the host (with the gateway address), the NAT rules of the
    //   network (masquerade out, forward in), a veth pair whose host end joins
    //   the bridge and whose other end moves into the container's network
    //   namespace (the netns of `pid`), where it becomes eth0 with the address
    //   and a default route via the gateway; then the published ports' DNAT.
    // hint: Hold self.net_lock throughout (other starts share the bridge and
    //   the rules). Netlink::host() and Netlink::in_netns_of(pid) make the
    //   links; nat:: the rules. The host must route: ip_forward on; and for
    //   ports published on 127.0.0.1, route_localnet on the bridge. (Names
    //   are the embedded DNS server's, started after this: start_dns.)
    // hint: veth(4); ip-link(8) "netns"; the Docker docs "Bridge network
    //   driver" and "Packet filtering and firewalls"; nft(8) "NAT".
    /// Once PID 1 exists: bridge, NAT, the veth pair, eth0, the ports.
    pub async fn network_attach(
        &self,
        c: &Container,
        ep: &Endpoint,
        pid: i32,
    ) -> anyhow::Result<()> {
        let _guard = self.net_lock.lock().await;
        let network = self
            .find_network(&ep.network)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let host = Netlink::host()?;
        let bridge = host
            .ensure_bridge(&ep.bridge, ep.gateway, ep.prefix)
            .await?;
        // Published ports reached from the host itself through 127.0.0.1
        // are routed to the bridge only with route_localnet on it.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{}/route_localnet", ep.bridge),
            "1",
        );
        // Routing between the bridge and the uplink (Docker turns it on too).
        if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "0") {
            eprintln!("networking: enabling net.ipv4.ip_forward for outbound traffic");
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        }
        nat::ensure_table(&self.net)?;
        nat::ensure_network_rules(
            &self.net,
            &network.name,
            &ep.bridge,
            &network.subnet.to_string(),
        )?;
        let peer = format!("vp{}", &c.id[..10]);
        host.add_veth(&ep.veth, &peer, bridge, pid).await?;
        Netlink::in_netns_of(pid)
            .await?
            .configure_eth0(&peer, ep.ip, ep.prefix, ep.gateway)
            .await?;
        nat::add_ports(&self.net, &c.id, ep.ip, &ep.ports)?;
        Ok(())
    }
    // ANCHOR_END: network_attach

    /// After the container exited (or never started): its rules, its
    /// address, its held ports; and when no container is left on any
    /// bridge, the NAT table and the bridges.
    pub async fn network_detach(&self, id: &str) {
        let path = self.paths.endpoint(id);
        let Ok(ep) = read_json::<Endpoint>(&path) else {
            self.held_ports.lock().unwrap().remove(id);
            return;
        };
        let _guard = self.net_lock.lock().await;
        let extra = self.entry(id, |e| e.c.networks.clone()).unwrap_or_default();
        for network in extra {
            self.detach_extra(id, &network).await;
        }
        let _ = nat::delete_owned(&self.net, &format!("ctr:{id}"));
        self.held_ports.lock().unwrap().remove(id);
        let mut taken: Allocations = read_json(&self.ipam_path(&ep.network)).unwrap_or_default();
        ipam::release(&mut taken, id);
        let _ = write_json(&self.ipam_path(&ep.network), &taken);
        if let Ok(host) = Netlink::host() {
            // Normally gone with the container's namespace already.
            let _ = host.delete(&ep.veth).await;
        }
        let _ = std::fs::remove_file(&path);
        self.stop_dns(id);
        // Every endpoint file is a container between its network's prepare
        // and its detach (both under net_lock): one that is still starting
        // is not running yet, but its veth is already on the bridge. (A
        // one-shot container of a compose project that exited while its
        // neighbours started took their bridge away.)
        let others: Vec<Endpoint> = self
            .endpoints()
            .into_iter()
            .filter(|(other, _)| other != id)
            .map(|(_, e)| e)
            .collect();
        if others.is_empty() {
            let _ = nat::delete_table(&self.net);
        }
        if let Ok(host) = Netlink::host() {
            for n in self.networks() {
                if !others.iter().any(|e| e.network == n.name) {
                    let _ = host.delete(&n.bridge).await;
                }
            }
        }
    }

    /// `POST /networks/{id}/connect` and `disconnect`. The network its mode
    /// names: connecting again (what compose does after create) records its
    /// aliases, disconnecting a stopped container forgets them. Another
    /// network: joined (as eth1, eth2, … when it runs, at once if it runs
    /// now) or left.
    pub async fn network_connect(
        &self,
        query: &str,
        req: hyper::Request<hyper::body::Incoming>,
        connect: bool,
    ) -> ApiResult {
        let network = self.find_network(query)?;
        let body: crate::api::NetworkConnect = http::body_json(req).await?;
        let id = self.find(&body.container)?;
        let (mode, running) = self.entry(&id, |e| {
            (
                e.c.host_config.network_mode.clone(),
                e.state.status == crate::state::Status::Running,
            )
        })?;
        let on = network_name(&mode);
        if on != Some(network.name.as_str()) {
            return self
                .connect_other(&id, &network, body, connect, running)
                .await;
        }
        if !connect && running {
            return Err(ApiError::conflict(format!(
                "container {} is running on {}: stop it first (its network is its only one)",
                crate::ids::short(&id),
                network.name
            )));
        }
        let aliases = body
            .endpoint_config
            .and_then(|e| e.aliases)
            .unwrap_or_default();
        let c = self.entry(&id, |e| {
            if connect {
                for a in aliases {
                    if !e.c.aliases.contains(&a) {
                        e.c.aliases.push(a);
                    }
                }
            } else {
                e.c.aliases.clear();
            }
            e.c.clone()
        })?;
        // The embedded DNS server reads the aliases at each query.
        crate::state::write_json(&self.paths.config(&id), &c)?;
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".into(), j!(network.name));
        attributes.insert("type".into(), j!("bridge"));
        attributes.insert("container".into(), j!(id));
        let action = if connect { "connect" } else { "disconnect" };
        self.event("network", action, &network.id, attributes);
        Ok(http::empty(StatusCode::OK))
    }

    /// `--add-host` lines for /etc/hosts; `host-gateway` is the default
    /// bridge's gateway, the host as containers reach it (Docker's).
    fn extra_hosts(&self, c: &Container) -> String {
        let gateway = || {
            self.find_network("bridge")
                .map(|n| n.subnet.gateway().to_string())
                .unwrap_or_default()
        };
        c.host_config
            .extra_hosts
            .iter()
            .flatten()
            .filter_map(|e| e.split_once([':', '=']))
            .map(|(name, ip)| {
                let ip = if ip == "host-gateway" {
                    gateway()
                } else {
                    ip.to_string()
                };
                format!("{ip}\t{name}\n")
            })
            .collect()
    }

    /// Starts the embedded DNS server of a running container on a
    /// user-defined network: a UDP socket bound to 127.0.0.11:53 inside the
    /// container's network namespace (made there by a thread that enters
    /// it, so the socket belongs to that namespace), served by the daemon,
    /// which forwards what is not a name of the network from the host's.
    pub async fn start_dns(self: &Arc<Self>, id: &str, pid: i32) {
        let Ok(ep) = read_json::<Endpoint>(&self.paths.endpoint(id)) else {
            return;
        };
        // A container's loopback is up, as Docker's are; 127.0.0.11 is on
        // it, so the embedded server needs it too.
        if let Ok(nl) = Netlink::in_netns_of(pid).await {
            let _ = nl.set_up("lo").await;
        }
        if ep.network == "bridge" {
            return; // Docker's default network has no embedded DNS either
        }
        let bound = tokio::task::spawn_blocking(move || bind_in_netns(pid)).await;
        let socket = match bound {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                eprintln!(
                    "mini-dockerd: {}: no embedded DNS: {e}",
                    crate::ids::short(id)
                );
                return;
            }
            Err(_) => return,
        };
        let socket = match tokio::net::UdpSocket::from_std(socket) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!(
                    "mini-dockerd: {}: no embedded DNS: {e}",
                    crate::ids::short(id)
                );
                return;
            }
        };
        // `--dns` servers are where it forwards; else the host's.
        let servers: Vec<std::net::SocketAddr> = self
            .entry(id, |e| e.c.host_config.dns.clone().unwrap_or_default())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect();
        let task = tokio::spawn(self.clone().serve_dns(socket, id.to_string(), servers));
        if let Some(old) = self
            .dns
            .lock()
            .unwrap()
            .insert(id.to_string(), task.abort_handle())
        {
            old.abort();
        }
    }

    fn stop_dns(&self, id: &str) {
        if let Some(task) = self.dns.lock().unwrap().remove(id) {
            task.abort();
        }
    }

    async fn serve_dns(
        self: Arc<Self>,
        socket: Arc<tokio::net::UdpSocket>,
        id: String,
        servers: Vec<std::net::SocketAddr>,
    ) {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let packet = buf[..n].to_vec();
            // The names of every network it is on, its own and those joined.
            let lookup = |name: &str| {
                let mut ips: Vec<Ipv4Addr> = self
                    .networks_of(&id)
                    .iter()
                    .flat_map(|n| self.dns_lookup(n, name))
                    .collect();
                ips.dedup();
                ips
            };
            match dns::answer(&packet, lookup) {
                dns::Answer::Reply(bytes) => {
                    let _ = socket.send_to(&bytes, from).await;
                }
                dns::Answer::Forward => {
                    let socket = socket.clone();
                    let servers = servers.clone();
                    tokio::spawn(async move {
                        let reply = forward(&packet, &servers)
                            .await
                            .or_else(|| dns::server_failure(&packet));
                        if let Some(bytes) = reply {
                            let _ = socket.send_to(&bytes, from).await;
                        }
                    });
                }
                dns::Answer::Drop => {}
            }
        }
    }

    /// The addresses `name` has on `network`: every container on it whose
    /// name, short ID, hostname or alias it is.
    fn dns_lookup(&self, network: &str, name: &str) -> Vec<Ipv4Addr> {
        let members: Vec<(String, Endpoint)> = self
            .endpoints()
            .into_iter()
            .filter(|(_, ep)| ep.network == network)
            .collect();
        let map = self.containers.lock().unwrap();
        members
            .into_iter()
            .filter(|(id, _)| {
                map.get(id).is_some_and(|e| {
                    [&e.c.name, crate::ids::short(id), &e.c.hostname]
                        .into_iter()
                        .chain(e.c.aliases.iter().map(String::as_str))
                        .any(|n| n.eq_ignore_ascii_case(name))
                })
            })
            .map(|(_, ep)| ep.ip)
            .collect()
    }
}

/// A UDP socket on 127.0.0.11:53 in the network namespace of `pid`. The
/// thread that makes it enters the namespace and ends: the socket stays
/// there, the daemon's threads stay in the host's.
fn bind_in_netns(pid: i32) -> std::io::Result<std::net::UdpSocket> {
    let theirs = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        nix::sched::setns(&theirs, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let socket = std::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 11), 53))?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the DNS socket's thread panicked")))
}

/// Asks `servers` (none: the host's resolvers), from the host's network
/// namespace; the first answer within two seconds.
async fn forward(packet: &[u8], servers: &[std::net::SocketAddr]) -> Option<Vec<u8>> {
    let upstreams = if servers.is_empty() {
        dns::upstreams(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else {
        servers.to_vec()
    };
    for upstream in upstreams {
        let any: std::net::SocketAddr = if upstream.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = tokio::net::UdpSocket::bind(any).await else {
            continue;
        };
        if socket.send_to(packet, upstream).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let wait = std::time::Duration::from_secs(2);
        if let Ok(Ok((n, from))) = tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
            if from == upstream {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// Binds every host port of `ports` (port 0: a free one), so nobody else
/// can take it; returns the sockets and the ports as bound.
fn bind_ports(ports: &[PortMap]) -> Result<(Vec<Held>, Vec<PortMap>), ApiError> {
    let mut held = Vec::new();
    let mut maps = Vec::new();
    for p in ports {
        let addr: Ipv4Addr = if p.host_ip.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            p.host_ip.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid host IP {:?}: an IPv4 address", p.host_ip))
            })?
        };
        let taken = |e: std::io::Error| {
            let shown = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &p.host_ip
            };
            ApiError::conflict(format!(
                "Bind for {shown}:{} failed: port is already allocated ({e})",
                p.host_port
            ))
        };
        let (socket, port) = if p.proto == "udp" {
            let s = std::net::UdpSocket::bind((addr, p.host_port)).map_err(taken)?;
            let port = s.local_addr()?.port();
            (Held::Udp(s), port)
        } else {
            let s = bind_tcp(addr, p.host_port).map_err(taken)?;
            let port = s.local_addr()?.port();
            (Held::Tcp(s), port)
        };
        held.push(socket);
        maps.push(PortMap {
            host_port: port,
            ..p.clone()
        });
    }
    Ok((held, maps))
}

/// Names for one /etc/hosts line, each once.
fn host_names(names: &[&str]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for n in names {
        if !n.is_empty() && !seen.contains(n) {
            seen.push(n);
        }
    }
    seen.join(" ")
}

/// A TCP socket bound (not listening) to hold a port.
fn bind_tcp(addr: Ipv4Addr, port: u16) -> std::io::Result<std::net::TcpListener> {
    // std's TcpListener::bind also listens; a listening socket on the port
    // is harmless (DNAT sends the packets to the container before any
    // socket is looked up) and holds it just the same.
    std::net::TcpListener::bind((addr, port))
}
