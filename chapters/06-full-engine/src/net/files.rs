//! The three files Docker writes for every container: `/etc/hostname`,
//! `/etc/hosts` (localhost and the container itself: its neighbours'
//! names are the embedded DNS server's, see [`super::dns`]),
//! `/etc/resolv.conf` (on the default bridge, the host's without loopback
//! name servers, which a container cannot reach). They live in the
//! container's directory and are bind-mounted over the image's.

use std::net::Ipv4Addr;

pub const FILES: [(&str, &str); 3] = [
    ("hostname", "/etc/hostname"),
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
];

/// `/etc/hosts`: localhost and the container itself.
pub fn hosts(own: Option<(Ipv4Addr, &str)>) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some((ip, names)) = own {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out
}

/// The host's resolv.conf, minus name servers on loopback; Google's public
/// resolvers when nothing is left (as Docker does).
pub fn resolv_conf(host: &str) -> String {
    let mut servers = 0;
    let mut out = String::new();
    for line in host.lines() {
        if let Some(addr) = line.trim().strip_prefix("nameserver") {
            let addr = addr.trim();
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}
