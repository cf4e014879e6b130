//! Links, addresses and routes over netlink (rtnetlink): the same requests
//! `ip link`, `ip addr` and `ip route` send.

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

/// A netlink connection, in the host's network namespace or a container's.
pub struct Netlink {
    handle: Handle,
}

fn setns_net(file: &std::fs::File) -> std::io::Result<()> {
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(std::io::Error::from)
}

impl Netlink {
    /// The engine's network namespace, where its bridges are: the host's,
    /// or a rootless engine's own (the holder's, entered by a thread for
    /// the socket).
    pub fn host() -> Result<Netlink> {
        let runtime = tokio::runtime::Handle::current();
        let (connection, handle, _) = crate::rootless::in_engine_netns(move || {
            let _inside_runtime = runtime.enter();
            rtnetlink::new_connection()
        })?
        .context("opening a netlink socket")?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// A connection inside the network namespace of process `pid`. A
    /// netlink socket belongs to the namespace it was created in, so a
    /// thread enters that namespace (network namespaces are per thread),
    /// creates the socket, and goes back.
    pub async fn in_netns_of(pid: i32) -> Result<Netlink> {
        let runtime = tokio::runtime::Handle::current();
        let (connection, handle) = tokio::task::spawn_blocking(move || -> Result<_> {
            // A thread of its own, which ends there: a rootless daemon may
            // enter the container's namespace but not return to the host's.
            std::thread::scope(|scope| {
                scope
                    .spawn(|| -> Result<_> {
                        let _inside_runtime = runtime.enter();
                        let theirs = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                            .with_context(|| {
                                format!("opening the network namespace of PID {pid}")
                            })?;
                        setns_net(&theirs).context("entering the container's network namespace")?;
                        let (connection, handle, _) = rtnetlink::new_connection()?;
                        Ok((connection, handle))
                    })
                    .join()
                    .map_err(|_| anyhow::anyhow!("the netlink thread panicked"))?
            })
        })
        .await??;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    pub async fn index_of(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Some(link.header.index)),
            Ok(None) => Ok(None),
            // ENODEV: no such link.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(anyhow!("looking up link {name}: {e}")),
        }
    }

    /// The bridge `name` with `gateway/prefix`, up; created if missing.
    pub async fn ensure_bridge(&self, name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<u32> {
        if let Some(index) = self.index_of(name).await? {
            return Ok(index);
        }
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .with_context(|| format!("creating bridge {name}"))?;
        let index = self
            .index_of(name)
            .await?
            .ok_or_else(|| anyhow!("bridge {name} vanished after creation"))?;
        self.handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
            .with_context(|| format!("giving bridge {name} the address {gateway}/{prefix}"))?;
        Ok(index)
    }

    /// A veth pair `host`–`peer`; `host` joins the bridge and comes up,
    /// `peer` moves into the network namespace of `pid`.
    pub async fn add_veth(&self, host: &str, peer: &str, bridge: u32, pid: i32) -> Result<()> {
        self.handle
            .link()
            .add(LinkVeth::new(host, peer).build())
            .execute()
            .await
            .with_context(|| format!("creating veth pair {host}/{peer}"))?;
        let host_index = self
            .index_of(host)
            .await?
            .ok_or_else(|| anyhow!("veth {host} vanished"))?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(host_index)
                    .controller(bridge)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .with_context(|| format!("attaching {host} to the bridge"))?;
        let peer_index = self
            .index_of(peer)
            .await?
            .ok_or_else(|| anyhow!("veth {peer} vanished"))?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(peer_index)
                    .setns_by_pid(pid as u32)
                    .build(),
            )
            .execute()
            .await
            .with_context(|| format!("moving {peer} into the container's network namespace"))?;
        Ok(())
    }

    /// Inside the container: `peer` becomes `eth0` with `ip/prefix`, up,
    /// with a default route through `gateway`.
    pub async fn configure_eth0(
        &self,
        peer: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> Result<()> {
        let index = self.configure_interface(peer, "eth0", ip, prefix).await?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .with_context(|| format!("adding the default route via {gateway}"))?;
        Ok(())
    }

    /// Inside the container: `peer` becomes `name` with `ip/prefix`, up
    /// (another network's interface: its subnet is routed, not the world).
    /// Returns its index.
    pub async fn configure_interface(
        &self,
        peer: &str,
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<u32> {
        let index = self
            .index_of(peer)
            .await?
            .ok_or_else(|| anyhow!("{peer} is not in the container"))?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .name(name.to_string())
                    .build(),
            )
            .execute()
            .await
            .with_context(|| format!("renaming the container's interface to {name}"))?;
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
            .with_context(|| format!("giving {name} the address {ip}/{prefix}"))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("bringing {name} up"))?;
        Ok(index)
    }

    /// Brings link `name` up (a new network namespace's `lo` is down).
    pub async fn set_up(&self, name: &str) -> Result<()> {
        let index = self
            .index_of(name)
            .await?
            .ok_or_else(|| anyhow!("no link {name}"))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("bringing {name} up"))
    }

    /// Deletes link `name` if it exists.
    pub async fn delete(&self, name: &str) -> Result<()> {
        if let Some(index) = self.index_of(name).await? {
            self.handle
                .link()
                .del(index)
                .execute()
                .await
                .with_context(|| format!("deleting link {name}"))?;
        }
        Ok(())
    }
}
