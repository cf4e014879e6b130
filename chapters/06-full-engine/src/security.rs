//! What a container's processes may do, from Docker's flags to chapter
//! 01's [`Security`]: the capabilities (`--cap-add`, `--cap-drop`,
//! `--privileged`), the seccomp filter (`--security-opt seccomp=…`, see
//! [`crate::seccomp`]), no_new_privs (`--security-opt no-new-privileges`).
//!
//! The choices are checked and recorded at create; the filter is compiled
//! at start (in the monitor, and again for every exec), for the
//! capabilities the container ends up with.

use crate::api::HostConfig;
use crate::seccomp::Seccomp;
use anyhow::Result;
use chapter_01::security::{capability_number, caps_mask, last_cap, Security, DOCKER_DEFAULT_CAPS};
use serde::{Deserialize, Serialize};

/// The security options of one container, resolved at create.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Confinement {
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
}

/// The daemon's defaults (`mini-dockerd --seccomp-profile`,
/// `--no-new-privileges`).
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
}

/// Reads `--security-opt` values as moby does: `no-new-privileges[=bool]`,
/// `seccomp=unconfined|builtin|<profile JSON>`, `apparmor=…` and `label=…`
/// (accepted where they mean "none": this engine has neither AppArmor nor
/// SELinux). `key:value` is the old spelling of `key=value`.
pub fn parse_security_opts(opts: &[String], defaults: &Defaults) -> Result<Confinement, String> {
    let mut out = Confinement {
        seccomp: defaults.seccomp.clone(),
        no_new_privileges: defaults.no_new_privileges,
    };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(format!(
                "invalid --security-opt {opt:?}: use seccomp=PROFILE|unconfined or no-new-privileges"
            ));
        };
        match key {
            "no-new-privileges" => {
                out.no_new_privileges = value.parse().map_err(|_| {
                    format!("invalid --security-opt {opt:?}: no-new-privileges takes true or false")
                })?
            }
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => Seccomp::Unconfined,
                    "builtin" => Seccomp::Builtin,
                    json => {
                        // Checked now (compiled for the default capabilities),
                        // so that a broken profile fails the create, not the start.
                        let custom = Seccomp::Custom(json.to_string());
                        custom
                            .program(default_capabilities())
                            .map_err(|e| format!("seccomp profile: {e:#}"))?;
                        custom
                    }
                }
            }
            "apparmor" if value == "unconfined" => {}
            "label" if value == "disable" => {}
            "apparmor" | "label" => {
                return Err(format!(
                    "--security-opt {opt:?}: this engine has no AppArmor or SELinux \
                     (only {key}={} is accepted)",
                    if key == "apparmor" { "unconfined" } else { "disable" }
                ))
            }
            _ => {
                return Err(format!(
                    "invalid --security-opt {opt:?}: use seccomp=PROFILE|unconfined or no-new-privileges"
                ))
            }
        }
    }
    Ok(out)
}

/// Docker's default capabilities as a set.
pub fn default_capabilities() -> u64 {
    caps_mask(DOCKER_DEFAULT_CAPS.iter().map(|(n, _)| *n))
}

/// Every capability this kernel has that the engine holds itself (its
/// bounding set: no process can hand out what it lacks; a machine may run
/// the engine without some, as this course's CI machine lacks
/// CAP_SYS_RESOURCE).
pub fn all_capabilities() -> u64 {
    caps_mask(0..=last_cap().min(63)) & own_bounding_set()
}

/// This process's capability bounding set (`CapBnd` in /proc/self/status).
pub fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The capability set of `--privileged` / `--cap-add` / `--cap-drop`, with
/// Docker's rules: privileged is everything; `--cap-add ALL` is everything
/// but what is dropped; `--cap-drop ALL` is only what is added; otherwise
/// the defaults, minus the dropped, plus the added. Names in any case,
/// with or without `CAP_`.
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> Result<u64, String> {
    let parse = |list: &[String]| -> Result<(bool, u64), String> {
        let mut all = false;
        let mut set = 0u64;
        for name in list {
            if name.eq_ignore_ascii_case("ALL") {
                all = true;
            } else {
                let n = capability_number(name).ok_or_else(|| {
                    format!(
                        "unknown capability: {:?} (see capabilities(7) for the names)",
                        name.to_ascii_uppercase()
                    )
                })?;
                set |= 1 << n;
            }
        }
        Ok((all, set))
    };
    let (add_all, added) = parse(add)?;
    let (drop_all, dropped) = parse(drop)?;
    let all = all_capabilities();
    Ok(if privileged {
        all
    } else if add_all {
        all & !dropped
    } else if drop_all {
        added
    } else {
        (default_capabilities() & !dropped) | added
    })
}

/// The container's capabilities from its HostConfig; one the engine does
/// not hold itself is refused by name.
pub fn container_capabilities(h: &HostConfig) -> Result<u64, String> {
    let set = capabilities(
        h.privileged,
        h.cap_add.as_deref().unwrap_or_default(),
        h.cap_drop.as_deref().unwrap_or_default(),
    )?;
    let missing = set & !own_bounding_set();
    if let Some(n) = (0..64).find(|n| missing & (1 << n) != 0) {
        let name = chapter_01::security::CAPABILITY_NAMES
            .get(n)
            .copied()
            .unwrap_or("an unknown capability");
        return Err(format!(
            "{name} cannot be given: the engine does not hold it itself (its bounding set lacks it)"
        ));
    }
    Ok(set)
}

/// The hardening of a process of the container: `capabilities` (the
/// container's, or all of them for `exec --privileged`), run as `uid:gid`.
/// The seccomp filter is compiled for the container's capabilities (and
/// kept in `seccomp_cache`, when given), and left out for a privileged
/// container.
pub fn hardening(
    h: &HostConfig,
    confinement: &Confinement,
    capabilities: u64,
    (uid, gid): (u32, u32),
    groups: &[u32],
    seccomp_cache: Option<&std::path::Path>,
) -> Result<Security> {
    let mut security = Security::docker_default();
    security.capabilities = capabilities;
    security.no_new_privs = confinement.no_new_privileges;
    if h.privileged {
        security.masked_paths.clear();
        security.readonly_paths.clear();
    } else {
        let container_caps = container_capabilities(h).map_err(anyhow::Error::msg)?;
        security.seccomp = match seccomp_cache {
            Some(cache) => confinement.seccomp.program_cached(container_caps, cache)?,
            None => confinement.seccomp.program(container_caps)?,
        };
    }
    security.run_as(uid, gid);
    if !groups.is_empty() {
        // `--group-add`: root too gets the groups (and so a user switch
        // that only sets them).
        let user = security
            .user
            .get_or_insert_with(|| chapter_01::security::User {
                uid,
                gid,
                groups: vec![gid],
            });
        for g in groups {
            if !user.groups.contains(g) {
                user.groups.push(*g);
            }
        }
    }
    Ok(security)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: u64) -> Vec<&'static str> {
        chapter_01::security::CAPABILITY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| set & (1 << i) != 0)
            .map(|(_, n)| &n[4..])
            .collect()
    }

    fn caps(privileged: bool, add: &[&str], drop: &[&str]) -> Result<Vec<&'static str>, String> {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        capabilities(privileged, &v(add), &v(drop)).map(names)
    }

    #[test]
    fn cap_add_and_drop_follow_dockers_rules() {
        let default = caps(false, &[], &[]).unwrap();
        assert_eq!(default.len(), 14);
        let added = caps(false, &["net_admin", "CAP_SYS_PTRACE"], &["chown"]).unwrap();
        assert!(added.contains(&"NET_ADMIN") && added.contains(&"SYS_PTRACE"));
        assert!(!added.contains(&"CHOWN"));
        assert_eq!(
            caps(false, &["NET_ADMIN"], &["ALL"]).unwrap(),
            ["NET_ADMIN"]
        );
        let all_but = caps(false, &["ALL"], &["SYS_ADMIN"]).unwrap();
        assert!(!all_but.contains(&"SYS_ADMIN") && all_but.contains(&"SYS_MODULE"));
        // Privileged is everything the engine holds (up to last_cap + 1).
        let privileged = caps(true, &[], &["ALL"]).unwrap().len() as u32;
        assert_eq!(privileged, all_capabilities().count_ones());
        assert!(privileged > 14 && privileged <= last_cap() + 1);
        let err = caps(false, &["FLY"], &[]).unwrap_err();
        assert!(err.contains("unknown capability: \"FLY\""), "{err}");
    }

    #[test]
    fn security_opts_read_as_moby_reads_them() {
        let d = Defaults::default();
        let opts = |list: &[&str]| {
            parse_security_opts(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &d)
        };
        assert_eq!(opts(&[]).unwrap(), Confinement::default());
        let c = opts(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(c.seccomp, Seccomp::Unconfined);
        assert!(c.no_new_privileges);
        assert!(
            !opts(&["no-new-privileges:false"])
                .unwrap()
                .no_new_privileges
        );
        assert!(opts(&["no-new-privileges=maybe"])
            .unwrap_err()
            .contains("true or false"));
        assert!(opts(&["seccomp={"])
            .unwrap_err()
            .contains("seccomp profile"));
        assert!(opts(&["apparmor=docker-default"])
            .unwrap_err()
            .contains("AppArmor"));
        assert!(opts(&["bogus"])
            .unwrap_err()
            .contains("invalid --security-opt"));
        let custom = r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#;
        let c = opts(&[&format!("seccomp={custom}")]).unwrap();
        assert_eq!(c.seccomp, Seccomp::Custom(custom.into()));
    }
}
