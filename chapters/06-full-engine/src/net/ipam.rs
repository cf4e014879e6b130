//! Address management: an IPv4 subnet, its gateway (the first address, on
//! the bridge), and the addresses handed to containers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl Subnet {
    /// `10.1.2.0/24`; the address must be the network's first (no host bits).
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let bad = |why: &str| format!("invalid subnet {text:?}: {why} (e.g. 10.10.0.0/24)");
        let (addr, prefix) = text.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let base: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("prefix is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("prefix must be 8 to 30"));
        }
        let subnet = Subnet { base, prefix };
        if u32::from(base) & !subnet.mask() != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }

    /// The bridge's own address: the first in the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// The `n`th /`prefix` subnet inside this one (address pools).
    pub fn nth(&self, prefix: u8, n: u32) -> Option<Subnet> {
        if prefix < self.prefix || prefix > 30 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if u64::from(n) >= count {
            return None;
        }
        let base = u32::from(self.base) + (n << (32 - prefix));
        Some(Subnet {
            base: Ipv4Addr::from(base),
            prefix,
        })
    }
}

/// Addresses in use on one network: address → container ID.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Allocations {
    pub by_ip: BTreeMap<Ipv4Addr, String>,
}

// ANCHOR: allocate
// exercise 6.11: hand out the lowest free address of a subnet
// hint: Each container on a network gets one address of the network's subnet,
//   and no two the same. The first address is the network itself, the next
//   the gateway (the bridge); the last is broadcast. Hand out the lowest of
//   the rest not in `taken.by_ip`, and record it there with its owner.
// hint: Candidates run from base + 2 to base + size - 2, where size is
//   2^(32 - prefix): work with u32 (u32::from(Ipv4Addr)). An owner that holds
//   an address already gets the same one again (a restart must not leak). A
//   full subnet is an error that names it.
// hint: RFC 950 (the all-zeros and all-ones host numbers); Docker's IPAM
//   (libnetwork/ipam) hands out the lowest free address, as here.
pub fn allocate(subnet: &Subnet, taken: &mut Allocations, owner: &str) -> Result<Ipv4Addr, String> {
    if let Some((ip, _)) = taken.by_ip.iter().find(|(_, o)| *o == owner) {
        return Ok(*ip);
    }
    let first = u32::from(subnet.base) + 2;
    let size = 1u64 << (32 - subnet.prefix);
    let last = (u64::from(u32::from(subnet.base)) + size - 2) as u32;
    let free = (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| !taken.by_ip.contains_key(ip))
        .ok_or_else(|| format!("no free address left in {subnet}"))?;
    taken.by_ip.insert(free, owner.to_string());
    Ok(free)
}
// ANCHOR_END: allocate

/// `--ip`: exactly `wanted` for `owner` (already its own, or free).
pub fn allocate_static(
    taken: &mut Allocations,
    owner: &str,
    wanted: Ipv4Addr,
) -> Result<Ipv4Addr, String> {
    match taken.by_ip.get(&wanted) {
        Some(o) if o != owner => Err(format!(
            "Address already in use: {wanted} is held by container {}",
            crate::ids::short(o)
        )),
        _ => {
            taken.by_ip.retain(|_, o| o != owner);
            taken.by_ip.insert(wanted, owner.to_string());
            Ok(wanted)
        }
    }
}

/// Gives back every address `owner` holds.
pub fn release(taken: &mut Allocations, owner: &str) {
    taken.by_ip.retain(|_, o| o != owner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_split() {
        let pool = Subnet::parse("172.29.0.0/16").unwrap();
        assert_eq!(pool.gateway(), Ipv4Addr::new(172, 29, 0, 1));
        assert_eq!(pool.nth(24, 3).unwrap().to_string(), "172.29.3.0/24");
        assert!(pool.nth(24, 256).is_none());
        assert!(Subnet::parse("10.0.0.1/24").is_err());
        assert!(Subnet::parse("10.0.0.0/33").is_err());
        assert!(pool.overlaps(&Subnet::parse("172.29.5.0/24").unwrap()));
    }
}
