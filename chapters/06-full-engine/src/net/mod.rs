//! Container networking (the `bridge` driver), in the order a container
//! meets it:
//!
//! - [`ipam`]: subnets and addresses: who has which, persisted, never
//!   handed out twice.
//! - [`links`]: the plumbing, over netlink (rtnetlink): a host bridge, a
//!   veth pair per container, one end moved into the container's network
//!   namespace and renamed `eth0`, its address and default route.
//! - [`nat`]: nftables rules in a table of our own: masquerading for
//!   outbound traffic, DNAT for published ports, forwarding for the bridge.
//! - [`files`]: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` for the
//!   container.
//! - [`dns`]: the embedded DNS server's answers (127.0.0.11 on user-defined
//!   networks: the names of the network's containers).
//!
//! The packet path of a container talking to the outside world:
//! `eth0 (container) → veth → bridge → routing + MASQUERADE → host's uplink`;
//! of a published port: `host:8080 → DNAT → bridge → veth → eth0:80`.

pub mod dns;
pub mod files;
pub mod ipam;
pub mod links;
pub mod nat;

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Names and addresses an engine uses for networking, so that several
/// engines (the tests run many at once) do not share bridges, subnets or
/// nftables tables. `MINI_DOCKER_NET_PREFIX` (at most 5 characters) and
/// `MINI_DOCKER_ADDRESS_POOL` change them.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub prefix: String,
    pub pool: ipam::Subnet,
    /// nftables or iptables (`MINI_DOCKER_NAT` chooses).
    pub nat: nat::Backend,
}

impl NetConfig {
    pub fn from_env() -> Result<NetConfig, String> {
        let prefix = std::env::var("MINI_DOCKER_NET_PREFIX").unwrap_or_else(|_| "md".into());
        if prefix.is_empty()
            || prefix.len() > 5
            || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "MINI_DOCKER_NET_PREFIX {prefix:?}: 1 to 5 letters or digits"
            ));
        }
        let pool =
            std::env::var("MINI_DOCKER_ADDRESS_POOL").unwrap_or_else(|_| "172.29.0.0/16".into());
        let pool = ipam::Subnet::parse(&pool)?;
        if pool.prefix > 24 {
            return Err(format!("address pool {pool} is smaller than a /24"));
        }
        Ok(NetConfig {
            prefix,
            pool,
            nat: nat::Backend::detect()?,
        })
    }

    /// The bridge of the default network: `mdocker0` for the default
    /// prefix, `<prefix>0` otherwise.
    pub fn default_bridge(&self) -> String {
        if self.prefix == "md" {
            "mdocker0".into()
        } else {
            format!("{}0", self.prefix)
        }
    }

    /// The nftables table (family `ip`) this engine owns.
    pub fn table(&self) -> String {
        format!("mini_docker_{}", self.prefix)
    }
}

/// A published port: `-p [host_ip:]host_port:container_port[/proto]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct PortMap {
    pub proto: String,
    /// Empty for every address of the host.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// A container's place on a network, kept in `containers/ID/endpoint.json`
/// while it runs.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    pub bridge: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The host end of the veth pair.
    pub veth: String,
    pub ports: Vec<PortMap>,
}
