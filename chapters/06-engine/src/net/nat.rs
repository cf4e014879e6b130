//! NAT and forwarding with nftables, in a table of our own (`ip
//! mini_docker_<prefix>`), through the `nft` command as Docker goes through
//! `iptables`. Every rule carries a comment naming its owner (`net:NAME`,
//! `ctr:ID`), so we only ever delete our own rules; the whole table goes
//! when the last container on a bridge is gone.

use super::{NetConfig, PortMap};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Runs an nft script (`nft -f -`).
fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (install the nftables package)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(anyhow!(
            "nft refused the rules: {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The table as JSON (`nft -j -a list table`), or None when it is absent.
fn table_json(config: &NetConfig) -> Option<serde_json::Value> {
    let out = Command::new("nft")
        .args(["-j", "-a", "list", "table", "ip", &config.table()])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// (chain, handle) of every rule whose comment is `comment`.
fn rules_with_comment(config: &NetConfig, comment: &str) -> Vec<(String, u64)> {
    let Some(json) = table_json(config) else {
        return Vec::new();
    };
    json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("rule"))
        .filter(|rule| rule["comment"] == comment)
        .filter_map(|rule| {
            Some((
                rule["chain"].as_str()?.to_string(),
                rule["handle"].as_u64()?,
            ))
        })
        .collect()
}

/// The table and its base chains (idempotent: `add` of what exists is a
/// no-op in nft).
pub fn ensure_table(config: &NetConfig) -> Result<()> {
    let t = config.table();
    nft(&format!(
        "add table ip {t}
add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; }}
add chain ip {t} output {{ type nat hook output priority -100; }}
add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; }}
add chain ip {t} forward {{ type filter hook forward priority 0; }}
"
    ))
}

/// Outbound masquerading and forwarding for one bridge network (once).
pub fn ensure_network_rules(
    config: &NetConfig,
    network: &str,
    bridge: &str,
    subnet: &str,
) -> Result<()> {
    let tag = format!("net:{network}");
    if !rules_with_comment(config, &tag).is_empty() {
        return Ok(());
    }
    let t = config.table();
    nft(&format!(
        "add rule ip {t} postrouting ip saddr {subnet} oifname != \"{bridge}\" masquerade comment \"{tag}\"
add rule ip {t} postrouting ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade comment \"{tag}\"
add rule ip {t} forward iifname \"{bridge}\" accept comment \"{tag}\"
add rule ip {t} forward oifname \"{bridge}\" accept comment \"{tag}\"
"
    ))
}

/// DNAT for a container's published ports, from outside (prerouting) and
/// from the host itself (output; with `route_localnet` on the bridge, this
/// covers 127.0.0.1 too).
pub fn add_ports(config: &NetConfig, id: &str, ip: Ipv4Addr, ports: &[PortMap]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let t = config.table();
    let mut script = String::new();
    for p in ports {
        let daddr = if p.host_ip.is_empty() {
            "fib daddr type local".to_string()
        } else {
            format!("ip daddr {}", p.host_ip)
        };
        for chain in ["prerouting", "output"] {
            script.push_str(&format!(
                "add rule ip {t} {chain} {daddr} {} dport {} dnat to {ip}:{} comment \"ctr:{id}\"\n",
                p.proto, p.host_port, p.container_port
            ));
        }
    }
    nft(&script)
}

/// Deletes every rule owned by `owner` (`ctr:ID` or `net:NAME`).
pub fn delete_owned(config: &NetConfig, owner: &str) -> Result<()> {
    let t = config.table();
    let script: String = rules_with_comment(config, owner)
        .into_iter()
        .map(|(chain, handle)| format!("delete rule ip {t} {chain} handle {handle}\n"))
        .collect();
    if script.is_empty() {
        return Ok(());
    }
    nft(&script)
}

/// Removes the whole table (no bridge network has a user left).
pub fn delete_table(config: &NetConfig) -> Result<()> {
    if table_json(config).is_some() {
        nft(&format!("delete table ip {}\n", config.table()))?;
    }
    Ok(())
}
