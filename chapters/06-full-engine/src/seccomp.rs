//! Seccomp profiles: Docker's JSON format, compiled to the BPF program
//! chapter 01 installs as the container's last step before `execve`.
//!
//! A profile is an allow-list. Its `defaultAction` (Docker's: errno EPERM)
//! answers every system call no rule names; each rule names calls, an
//! action, and optionally conditions on arguments (`clone` only without
//! namespace flags, `socket` not for AF_VSOCK, `personality` only with
//! the values programs really use) and when it applies: `includes` /
//! `excludes` by architecture, by capability (a container given
//! CAP_SYS_ADMIN may call `mount`), by kernel version.
//!
//! Which rules apply is decided here, for one container (its capability
//! bounding set, this machine's architecture and kernel), as moby does;
//! turning the rules into BPF is libseccomp's job, as in runc and crun: it
//! knows every system call's number on every architecture, checks the
//! architecture word first (an x86-64 process may make 32-bit calls), and
//! lays the comparisons out as jumps.
//!
//! `seccomp/default.json` is Docker's default profile (moby's
//! `profiles/seccomp/default.json`, Apache License 2.0): data, kept as
//! Docker ships it, so "Docker's default" means the same list.

use anyhow::{anyhow, Context, Result};
use chapter_01::security::{capability_number, BpfInstruction};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek};

/// Docker's default profile.
pub const DEFAULT_PROFILE: &str = include_str!("seccomp/default.json");

/// Which filter a container gets (`--security-opt seccomp=…`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile (`seccomp=builtin`, or nothing said).
    #[default]
    Builtin,
    /// No filter (`seccomp=unconfined`, and `--privileged`).
    Unconfined,
    /// A profile in Docker's JSON format (the docker CLI reads the file and
    /// sends its content).
    Custom(String),
}

/// A profile, as Docker's JSON spells it (unknown fields are ignored, as
/// moby does).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub names: Vec<String>,
    /// The old single-name form.
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

/// When a rule applies (`includes`) or does not (`excludes`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Go's architecture names: amd64, arm64, x86, x32, …
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub caps: Vec<String>,
    pub min_kernel: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// What the rules are decided for.
#[derive(Clone, Debug)]
pub struct Target {
    /// The container's capability bounding set, by number.
    pub capabilities: u64,
    /// Go's name of this machine's architecture (amd64, arm64, …).
    pub arch: &'static str,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Target {
    /// This machine, for a container with `capabilities`.
    pub fn here(capabilities: u64) -> Target {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Target {
            capabilities,
            arch: go_arch(),
            kernel: kernel_version(&release).unwrap_or((0, 0)),
        }
    }
}

/// Go's GOARCH for this build's architecture, the names profiles use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The libseccomp name of the native architecture, as `archMap` keys it.
fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// `6.1.0-18-amd64` → (6, 1); a profile's `minKernel` the same way.
pub fn kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().unwrap_or(0);
    Some((major, minor))
}

fn capability_set(names: &[String]) -> Result<u64> {
    names.iter().try_fold(0u64, |set, name| {
        let n = capability_number(name)
            .ok_or_else(|| anyhow!("unknown capability {name:?} in a rule's caps"))?;
        Ok(set | (1 << n))
    })
}

impl Rule {
    /// Whether the rule is in the filter for `target` (moby's semantics:
    /// every included capability held, no excluded one held; the
    /// architecture among the included ones and not among the excluded;
    /// the kernel at least `minKernel`).
    pub fn applies(&self, target: &Target) -> Result<bool> {
        let inc = &self.includes;
        let exc = &self.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
            return Ok(false);
        }
        if exc.arches.iter().any(|a| a == target.arch) {
            return Ok(false);
        }
        let needed = capability_set(&inc.caps)?;
        if target.capabilities & needed != needed {
            return Ok(false);
        }
        if target.capabilities & capability_set(&exc.caps)? != 0 {
            return Ok(false);
        }
        if let Some(min) = &inc.min_kernel {
            let min = kernel_version(min)
                .ok_or_else(|| anyhow!("invalid minKernel {min:?}: use e.g. \"4.8\""))?;
            if target.kernel < min {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn names(&self) -> Result<Vec<&str>> {
        match (&self.name, self.names.is_empty()) {
            (Some(_), false) => Err(anyhow!(
                "a rule has both 'name' and 'names': use one (names)"
            )),
            (Some(name), true) => Ok(vec![name.as_str()]),
            (None, _) => Ok(self.names.iter().map(String::as_str).collect()),
        }
    }
}

fn action(name: &str, errno: Option<u32>) -> Result<ScmpAction> {
    let eperm = libc::EPERM as u32;
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(eperm) as i32),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(eperm) as u16),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        other => {
            return Err(anyhow!(
                "unsupported seccomp action {other:?}: use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, \
                 SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG"
            ))
        }
    })
}

fn compare(arg: &Arg) -> Result<ScmpArgCompare> {
    if arg.index > 5 {
        return Err(anyhow!(
            "argument index {} out of range: a system call has arguments 0 to 5",
            arg.index
        ));
    }
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // Docker's `value` is the mask, `valueTwo` what the masked
        // argument must equal.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ScmpArgCompare::new(
                arg.index,
                ScmpCompareOp::MaskedEqual(arg.value),
                arg.value_two,
            ))
        }
        other => return Err(anyhow!("unknown comparison {other:?} in a rule's args")),
    };
    Ok(ScmpArgCompare::new(arg.index, op, arg.value))
}

impl Profile {
    pub fn parse(json: &str) -> Result<Profile> {
        serde_json::from_str(json).context("the seccomp profile is not in Docker's format")
    }

    /// The architectures the filter checks: `architectures`, or the native
    /// one's `archMap` entry with its sub-architectures.
    fn arches(&self) -> Result<Vec<ScmpArch>> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(anyhow!(
                "the profile has both 'architectures' and 'archMap': use one of them"
            ));
        }
        let names: Vec<String> = if !self.architectures.is_empty() {
            self.architectures.clone()
        } else {
            self.arch_map
                .iter()
                .filter(|m| m.architecture == native_scmp_arch())
                .flat_map(|m| {
                    std::iter::once(m.architecture.clone())
                        .chain(m.sub_architectures.clone().unwrap_or_default())
                })
                .collect()
        };
        names
            .iter()
            .map(|n| {
                n.parse::<ScmpArch>()
                    .map_err(|_| anyhow!("unknown architecture {n:?} in the profile"))
            })
            .collect()
    }

    /// Compiles the profile for `target` into a BPF program.
    pub fn compile(&self, target: &Target) -> Result<Vec<BpfInstruction>> {
        let default = action(&self.default_action, self.default_errno_ret)?;
        let mut filter = ScmpFilterContext::new(default)?;
        filter.set_ctl_optimize(2)?;
        for arch in self.arches()? {
            // The native one is there from the start.
            if !filter.is_arch_present(arch)? {
                filter.add_arch(arch)?;
            }
        }
        for rule in &self.syscalls {
            let names = rule.names()?;
            let act = action(&rule.action, rule.errno_ret)?;
            let conditions = rule.args.iter().map(compare).collect::<Result<Vec<_>>>()?;
            if !rule.applies(target)? || act == default {
                continue;
            }
            for name in names {
                // A name this libseccomp does not know is a call this
                // kernel does not have: skipped, as runc does.
                let Ok(call) = libseccomp::ScmpSyscall::from_name(name) else {
                    continue;
                };
                add_rule(&mut filter, act, call, rule, &conditions)
                    .with_context(|| format!("adding the rule for {name}"))?;
            }
        }
        export(&filter)
    }
}

/// Conditions on different arguments must all hold (one rule); several on
/// the same argument are alternatives (one rule each), as runc reads them.
fn add_rule(
    filter: &mut ScmpFilterContext,
    act: ScmpAction,
    call: libseccomp::ScmpSyscall,
    rule: &Rule,
    conditions: &[ScmpArgCompare],
) -> Result<()> {
    if conditions.is_empty() {
        filter.add_rule(act, call)?;
        return Ok(());
    }
    let mut per_arg = [0; 6];
    for a in &rule.args {
        per_arg[a.index as usize] += 1;
    }
    if per_arg.iter().any(|n| *n > 1) {
        for c in conditions {
            filter.add_rule_conditional(act, call, std::slice::from_ref(c))?;
        }
    } else {
        filter.add_rule_conditional(act, call, conditions)?;
    }
    Ok(())
}

/// The filter as BPF instructions (libseccomp writes `struct sock_filter`s
/// to a descriptor; a memfd holds them).
fn export(filter: &ScmpFilterContext) -> Result<Vec<BpfInstruction>> {
    let fd = nix::sys::memfd::memfd_create(c"seccomp-bpf", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .context("memfd_create for the BPF program")?;
    let mut file = std::fs::File::from(fd);
    filter.export_bpf(&file)?;
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let program = from_bytes(&bytes);
    // The kernel's limit (BPF_MAXINSNS).
    if program.len() > 4096 {
        return Err(anyhow!(
            "the profile compiles to {} BPF instructions; the kernel takes at most 4096",
            program.len()
        ));
    }
    Ok(program)
}

impl Seccomp {
    fn json(&self) -> Option<&str> {
        match self {
            Seccomp::Unconfined => None,
            Seccomp::Builtin => Some(DEFAULT_PROFILE),
            Seccomp::Custom(json) => Some(json),
        }
    }

    /// The BPF program for a container with `capabilities`, or `None` for
    /// no filter.
    pub fn program(&self, capabilities: u64) -> Result<Option<Vec<BpfInstruction>>> {
        let Some(json) = self.json() else {
            return Ok(None);
        };
        Profile::parse(json)?
            .compile(&Target::here(capabilities))
            .map(Some)
    }

    /// [`Seccomp::program`], kept in `cache` (a directory): compiling
    /// Docker's profile takes libseccomp about 6 ms, as long as the rest of
    /// a container's start, and the result depends only on the profile,
    /// the capabilities, the architecture and the kernel, which name the
    /// file (a SHA-256). A file is written whole or not at all.
    pub fn program_cached(
        &self,
        capabilities: u64,
        cache: &std::path::Path,
    ) -> Result<Option<Vec<BpfInstruction>>> {
        use sha2::{Digest, Sha256};
        let Some(json) = self.json() else {
            return Ok(None);
        };
        let target = Target::here(capabilities);
        let mut hash = Sha256::new();
        hash.update(json.as_bytes());
        hash.update(format!(
            "\0{capabilities:x} {} {:?}",
            target.arch, target.kernel
        ));
        let name: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let file = cache.join(format!("{name}.bpf"));
        if let Ok(bytes) = std::fs::read(&file) {
            if bytes.len() % 8 == 0 && !bytes.is_empty() {
                return Ok(Some(from_bytes(&bytes)));
            }
        }
        let program = Profile::parse(json)?.compile(&target)?;
        let bytes: Vec<u8> = program
            .iter()
            .flat_map(|i| {
                let mut b = Vec::with_capacity(8);
                b.extend(i.code.to_ne_bytes());
                b.extend([i.jt, i.jf]);
                b.extend(i.k.to_ne_bytes());
                b
            })
            .collect();
        // A cache that cannot be written is only slower.
        let tmp = cache.join(format!(".{name}.{}", std::process::id()));
        let written = std::fs::create_dir_all(cache)
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, &file));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(Some(program))
    }
}

/// `struct sock_filter`s as the kernel lays them out, 8 bytes each.
fn from_bytes(bytes: &[u8]) -> Vec<BpfInstruction> {
    bytes
        .chunks_exact(8)
        .map(|b| BpfInstruction {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[&str]) -> Target {
        Target {
            capabilities: capability_set(&caps.iter().map(|c| c.to_string()).collect::<Vec<_>>())
                .unwrap(),
            arch: "amd64",
            kernel: (6, 1),
        }
    }

    fn rules_for<'a>(profile: &'a Profile, t: &Target, name: &str) -> Vec<&'a Rule> {
        profile
            .syscalls
            .iter()
            .filter(|r| r.names.iter().any(|n| n == name) && r.applies(t).unwrap())
            .collect()
    }

    #[test]
    fn the_default_profile_refuses_by_default_and_allows_by_capability() {
        let p = Profile::parse(DEFAULT_PROFILE).unwrap();
        assert_eq!(
            (p.default_action.as_str(), p.default_errno_ret),
            ("SCMP_ACT_ERRNO", Some(1))
        );
        let plain = target(&["CAP_CHOWN"]);
        let admin = target(&["CAP_SYS_ADMIN"]);
        // keyctl and add_key are in no rule: the default action refuses them.
        assert!(rules_for(&p, &admin, "keyctl").is_empty());
        assert!(rules_for(&p, &admin, "add_key").is_empty());
        // mount and unshare come with CAP_SYS_ADMIN only.
        assert!(rules_for(&p, &plain, "mount").is_empty());
        assert_eq!(rules_for(&p, &admin, "unshare").len(), 1);
        // clone without CAP_SYS_ADMIN: only without namespace flags.
        let clone = rules_for(&p, &plain, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args[0].op, "SCMP_CMP_MASKED_EQ");
        // ptrace since 4.8 for everyone.
        assert_eq!(rules_for(&p, &plain, "ptrace").len(), 1);
        let old = Target {
            kernel: (4, 4),
            ..plain
        };
        assert!(rules_for(&p, &old, "ptrace").is_empty());
    }

    #[test]
    fn profiles_compile_to_bpf_for_this_machine() {
        let p = Profile::parse(DEFAULT_PROFILE).unwrap();
        let program = p.compile(&target(&["CAP_CHOWN"])).unwrap();
        // It starts by loading the architecture word (BPF_LD|BPF_W|BPF_ABS
        // at offset 4 of struct seccomp_data).
        assert_eq!((program[0].code, program[0].k), (0x20, 4));
        let admin = p.compile(&target(&["CAP_CHOWN", "CAP_SYS_ADMIN"])).unwrap();
        assert_ne!(program, admin, "capabilities change the program");
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let err = |json: &str| {
            Profile::parse(json)
                .and_then(|p| p.compile(&target(&[])))
                .unwrap_err()
                .to_string()
        };
        assert!(err("{").contains("Docker's format"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).contains("unsupported seccomp action"));
        let both = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#;
        assert!(err(both).contains("both 'architectures' and 'archMap'"));
        let index = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
            "action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert!(err(index).contains("out of range"));
    }

    #[test]
    fn a_cached_program_is_the_compiled_one() {
        let dir = tempfile::tempdir().unwrap();
        let caps = crate::security::default_capabilities();
        let fresh = Seccomp::Builtin.program(caps).unwrap();
        let first = Seccomp::Builtin.program_cached(caps, dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let again = Seccomp::Builtin.program_cached(caps, dir.path()).unwrap();
        assert_eq!((&first, &again), (&fresh, &fresh));
        // Other capabilities, another program and another file.
        let admin = caps | 1 << 21;
        let other = Seccomp::Builtin.program_cached(admin, dir.path()).unwrap();
        assert_ne!(other, fresh);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(
            Seccomp::Unconfined
                .program_cached(caps, dir.path())
                .unwrap(),
            None
        );
    }

    #[test]
    fn kernel_versions_read_as_major_minor() {
        assert_eq!(kernel_version("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("5"), Some((5, 0)));
        assert_eq!(kernel_version("x"), None);
    }
}
