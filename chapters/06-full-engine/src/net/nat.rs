//! NAT and forwarding, through the `nft` command (a table of our own, `ip
//! mini_docker_<prefix>`) or, on a host without nftables, the `iptables`
//! command (chains of our own, `MD-<PREFIX>-PRE` and so on, jumped to from
//! the built-in ones), as Docker goes through `iptables`. Every rule carries
//! a comment naming its owner (`net:NAME`, `ctr:ID`), so we only ever delete
//! our own rules; everything goes when the last container on a bridge is
//! gone.

/// Which command the rules go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Iptables,
}

impl Backend {
    /// `MINI_DOCKER_NAT=nft|iptables`, else nft where the host has it, else
    /// iptables.
    pub fn detect() -> Result<Backend, String> {
        let has = |cmd: &str| {
            Command::new(cmd)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        match std::env::var("MINI_DOCKER_NAT").as_deref() {
            Ok("nft") => Ok(Backend::Nft),
            Ok("iptables") => Ok(Backend::Iptables),
            Ok(other) => Err(format!("MINI_DOCKER_NAT={other:?}: nft or iptables")),
            Err(_) if has("nft") => Ok(Backend::Nft),
            Err(_) if has("iptables") => Ok(Backend::Iptables),
            Err(_) => Err(
                "neither nft nor iptables is installed: install nftables (or iptables) for bridge networking".into(),
            ),
        }
    }
}

use super::{NetConfig, PortMap};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// `nft` or `iptables`, run in the engine's network namespace: the host's,
/// or a rootless engine's own (the holder's), entered by the child between
/// fork and exec.
fn tool(program: &str) -> Command {
    let mut cmd = Command::new(program);
    if let Some(holder) = crate::rootless::holder() {
        if let Ok(ns) = std::fs::File::open(format!("/proc/{holder}/ns/net")) {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = ns.as_raw_fd();
            // SAFETY: setns(2) is async-signal-safe; `ns` stays open in the
            // parent (moved into the closure) until the Command is dropped.
            unsafe {
                cmd.pre_exec(move || {
                    let _keep = &ns;
                    if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    cmd
}

/// Runs an nft script (`nft -f -`).
fn nft(script: &str) -> Result<()> {
    let mut child = tool("nft")
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
    let out = tool("nft")
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
fn nft_ensure_table(config: &NetConfig) -> Result<()> {
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
fn nft_network_rules(config: &NetConfig, network: &str, bridge: &str, subnet: &str) -> Result<()> {
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
fn nft_add_ports(config: &NetConfig, id: &str, ip: Ipv4Addr, ports: &[PortMap]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let t = config.table();
    let mut script = String::new();
    for p in ports {
        // Rootless, slirp4netns brings a published port from the host's
        // address to the engine's own (see add_ports).
        let daddr = if p.host_ip.is_empty() || crate::rootless::holder().is_some() {
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
fn nft_delete_owned(config: &NetConfig, owner: &str) -> Result<()> {
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
fn nft_delete_table(config: &NetConfig) -> Result<()> {
    if table_json(config).is_some() {
        nft(&format!("delete table ip {}\n", config.table()))?;
    }
    Ok(())
}

/// The table (nft) or chains and jumps (iptables); idempotent.
pub fn ensure_table(config: &NetConfig) -> Result<()> {
    match config.nat {
        Backend::Nft => nft_ensure_table(config),
        Backend::Iptables => ipt_ensure_chains(config),
    }
}

/// Outbound masquerading and forwarding for one bridge network (once).
pub fn ensure_network_rules(
    config: &NetConfig,
    network: &str,
    bridge: &str,
    subnet: &str,
) -> Result<()> {
    match config.nat {
        Backend::Nft => nft_network_rules(config, network, bridge, subnet),
        Backend::Iptables => ipt_network_rules(config, network, bridge, subnet),
    }
}

/// DNAT for a container's published ports, from outside and from the host.
/// Rootless, the host's side too: slirp4netns listens on each host port
/// and brings the connections to the same port of the engine's namespace.
pub fn add_ports(config: &NetConfig, id: &str, ip: Ipv4Addr, ports: &[PortMap]) -> Result<()> {
    match config.nat {
        Backend::Nft => nft_add_ports(config, id, ip, ports)?,
        Backend::Iptables => ipt_add_ports(config, id, ip, ports)?,
    }
    crate::rootless::forward_ports(id, ports)
}

/// Deletes every rule owned by `owner` (`ctr:ID` or `net:NAME`).
pub fn delete_owned(config: &NetConfig, owner: &str) -> Result<()> {
    if let Some(id) = owner.strip_prefix("ctr:") {
        crate::rootless::unforward_ports(id);
    }
    match config.nat {
        Backend::Nft => nft_delete_owned(config, owner),
        Backend::Iptables => ipt_delete_owned(config, owner),
    }
}

/// Removes everything of ours (no bridge network has a user left).
pub fn delete_table(config: &NetConfig) -> Result<()> {
    match config.nat {
        Backend::Nft => nft_delete_table(config),
        Backend::Iptables => ipt_delete_chains(config),
    }
}

// The iptables backend.

/// (table, our chain, the built-in chain that jumps to it).
fn ipt_chains(config: &NetConfig) -> [(&'static str, String, &'static str); 4] {
    let p = config.prefix.to_uppercase();
    [
        ("nat", format!("MD-{p}-PRE"), "PREROUTING"),
        ("nat", format!("MD-{p}-OUT"), "OUTPUT"),
        ("nat", format!("MD-{p}-POST"), "POSTROUTING"),
        ("filter", format!("MD-{p}-FWD"), "FORWARD"),
    ]
}

fn iptables(args: &[&str]) -> Result<()> {
    let out = tool("iptables")
        .arg("-w")
        .args(args)
        .output()
        .context("running iptables")?;
    if !out.status.success() {
        return Err(anyhow!(
            "iptables {} refused: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn iptables_ok(args: &[&str]) -> bool {
    tool("iptables")
        .arg("-w")
        .args(args)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Appends `rule` to `table`/`chain` unless it is there (`-C` first).
fn ipt_add_once(table: &str, chain: &str, rule: &[&str]) -> Result<()> {
    let mut check = vec!["-t", table, "-C", chain];
    check.extend_from_slice(rule);
    if iptables_ok(&check) {
        return Ok(());
    }
    let mut add = vec!["-t", table, "-A", chain];
    add.extend_from_slice(rule);
    iptables(&add)
}

fn ipt_ensure_chains(config: &NetConfig) -> Result<()> {
    for (table, chain, hook) in ipt_chains(config) {
        if !iptables_ok(&["-t", table, "-n", "-L", &chain]) {
            iptables(&["-t", table, "-N", &chain])?;
        }
        if !iptables_ok(&["-t", table, "-C", hook, "-j", &chain]) {
            // First in FORWARD, so a DROP policy or rule after it does not
            // stop the bridge's traffic.
            iptables(&["-t", table, "-I", hook, "1", "-j", &chain])?;
        }
    }
    Ok(())
}

fn ipt_network_rules(config: &NetConfig, network: &str, bridge: &str, subnet: &str) -> Result<()> {
    let [_, _, (_, post, _), (_, fwd, _)] = ipt_chains(config);
    let tag = format!("net:{network}");
    let comment = ["-m", "comment", "--comment", tag.as_str()];
    let with =
        |rule: &[&'static str]| -> Vec<String> { rule.iter().map(|s| s.to_string()).collect() };
    let rules: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "nat",
            &post,
            [
                with(&["-s"]),
                vec![subnet.into()],
                with(&["!", "-o"]),
                vec![bridge.into()],
                with(&["-j", "MASQUERADE"]),
            ]
            .concat(),
        ),
        (
            "nat",
            &post,
            [
                with(&["-s", "127.0.0.0/8", "-o"]),
                vec![bridge.into()],
                with(&["-j", "MASQUERADE"]),
            ]
            .concat(),
        ),
        (
            "filter",
            &fwd,
            [with(&["-i"]), vec![bridge.into()], with(&["-j", "ACCEPT"])].concat(),
        ),
        (
            "filter",
            &fwd,
            [with(&["-o"]), vec![bridge.into()], with(&["-j", "ACCEPT"])].concat(),
        ),
    ];
    for (table, chain, rule) in rules {
        let mut full: Vec<&str> = rule.iter().map(String::as_str).collect();
        full.extend_from_slice(&comment);
        ipt_add_once(table, chain, &full)?;
    }
    Ok(())
}

fn ipt_add_ports(config: &NetConfig, id: &str, ip: Ipv4Addr, ports: &[PortMap]) -> Result<()> {
    let [(_, pre, _), (_, out, _), _, _] = ipt_chains(config);
    let tag = format!("ctr:{id}");
    for p in ports {
        let dport = p.host_port.to_string();
        let to = format!("{ip}:{}", p.container_port);
        let mut rule: Vec<&str> = if p.host_ip.is_empty() || crate::rootless::holder().is_some() {
            vec!["-m", "addrtype", "--dst-type", "LOCAL"]
        } else {
            vec!["-d", p.host_ip.as_str()]
        };
        rule.extend_from_slice(&[
            "-p",
            p.proto.as_str(),
            "--dport",
            dport.as_str(),
            "-j",
            "DNAT",
            "--to-destination",
            to.as_str(),
            "-m",
            "comment",
            "--comment",
            tag.as_str(),
        ]);
        ipt_add_once("nat", &pre, &rule)?;
        ipt_add_once("nat", &out, &rule)?;
    }
    Ok(())
}

fn ipt_delete_owned(config: &NetConfig, owner: &str) -> Result<()> {
    for (table, chain, _) in ipt_chains(config) {
        let Ok(listed) = tool("iptables")
            .args(["-w", "-t", table, "-S", &chain])
            .output()
        else {
            continue;
        };
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            let owned = words
                .windows(2)
                .any(|w| w[0] == "--comment" && w[1] == owner);
            if owned && words.first().map(String::as_str) == Some("-A") {
                let mut args: Vec<&str> = vec!["-t", table, "-D"];
                args.extend(words[1..].iter().map(String::as_str));
                iptables(&args)?;
            }
        }
    }
    Ok(())
}

fn ipt_delete_chains(config: &NetConfig) -> Result<()> {
    for (table, chain, hook) in ipt_chains(config) {
        while iptables_ok(&["-t", table, "-C", hook, "-j", &chain]) {
            iptables(&["-t", table, "-D", hook, "-j", &chain])?;
        }
        if iptables_ok(&["-t", table, "-n", "-L", &chain]) {
            iptables(&["-t", table, "-F", &chain])?;
            iptables(&["-t", table, "-X", &chain])?;
        }
    }
    Ok(())
}
