//! Which device nodes a cgroup's processes may use, on cgroup v2.
//!
//! v1 has files for it (`devices.deny`, `devices.allow`: one rule a line,
//! see [`crate::limits::apply_extras`]). v2 has none: the kernel asks a BPF
//! program attached to the cgroup (type `BPF_PROG_TYPE_CGROUP_DEVICE`) at
//! every open and mknod of a device node, and the program answers 1 (allow)
//! or 0 (deny). This module turns the same rules into that program, a few
//! instructions per rule, and attaches it with two bpf(2) calls, as runc
//! and crun do. The program is small and straight-line (no loops, no maps),
//! which is what the kernel's verifier accepts without fuss.
//!
//! What the program sees, `struct bpf_cgroup_dev_ctx` (linux/bpf.h): at
//! offset 0 `access_type` (the access in the high 16 bits: mknod 1, read 2,
//! write 4; the type in the low 16: block 1, char 2), at 4 `major`, at 8
//! `minor`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction, as the kernel reads it (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst register in the low 4 bits, src in the high 4.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// The opcodes used (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm (32 bits)
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm (32 bits)
const MOV64_X: u8 = 0xbf; // dst = src
const MOV64_K: u8 = 0xb7; // dst = imm
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JNE_X: u8 = 0x5d; // if dst != src: pc += off
const EXIT: u8 = 0x95;

/// A rule in v1's words (`c 1:3 rwm`, `b *:* m`, `a`), read for the program:
/// type (None: any), major and minor (None: any), access bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    kind: Option<u32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

fn parse(rule: &str) -> Result<Rule, String> {
    let rule = crate::limits::parse_device_rule(rule)?;
    if rule == "a" {
        return Ok(Rule {
            kind: None,
            major: None,
            minor: None,
            access: 7,
        });
    }
    let mut parts = rule.split(' ');
    let (kind, numbers, access) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let (major, minor) = numbers.split_once(':').unwrap_or(("*", "*"));
    let number = |n: &str| -> Result<Option<u32>, String> {
        if n == "*" {
            return Ok(None);
        }
        n.parse()
            .map(Some)
            .map_err(|_| format!("device number {n:?} is out of range"))
    };
    Ok(Rule {
        kind: match kind {
            "b" => Some(1),
            "c" => Some(2),
            _ => None,
        },
        major: number(major)?,
        minor: number(minor)?,
        access: access
            .bytes()
            .map(|b| match b {
                b'm' => 1,
                b'r' => 2,
                _ => 4,
            })
            .fold(0, |a, b| a | b),
    })
}

// ANCHOR: program
/// The program that allows what `rules` allow and denies the rest.
///
/// It loads the context into registers once (r2 type, r3 access, r4 major,
/// r5 minor), then has one block per rule: each test that fails jumps past
/// the rest of the block to the next rule; a block whose tests all pass
/// returns 1. After the last block, 0.
pub fn program(rules: &[String]) -> Result<Vec<Insn>, String> {
    let mut out = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for text in rules {
        let rule = parse(text)?;
        // (instruction, whether it jumps to the next rule when it fails)
        let mut block: Vec<(Insn, bool)> = Vec::new();
        if let Some(kind) = rule.kind {
            block.push((insn(JNE_K, 2, 0, 0, kind as i32), true));
        }
        if rule.access != 7 {
            // The access asked for must be within the rule's: (r3 & A) == r3.
            block.push((insn(MOV64_X, 1, 3, 0, 0), false));
            block.push((insn(ALU32_AND_K, 1, 0, 0, rule.access as i32), false));
            block.push((insn(JNE_X, 1, 3, 0, 0), true));
        }
        if let Some(major) = rule.major {
            block.push((insn(JNE_K, 4, 0, 0, major as i32), true));
        }
        if let Some(minor) = rule.minor {
            block.push((insn(JNE_K, 5, 0, 0, minor as i32), true));
        }
        let matches_all = block.is_empty();
        block.push((insn(MOV64_K, 0, 0, 0, 1), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, jumps)) in block.into_iter().enumerate() {
            if jumps {
                ins.off = (len - i - 1) as i16;
            }
            out.push(ins);
        }
        // Nothing after a rule that allows everything could run, and the
        // verifier refuses unreachable instructions.
        if matches_all {
            return Ok(out);
        }
    }
    out.push(insn(MOV64_K, 0, 0, 0, 0));
    out.push(insn(EXIT, 0, 0, 0, 0));
    Ok(out)
}
// ANCHOR_END: program

/// `union bpf_attr` for BPF_PROG_LOAD, up to the fields this needs.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// More programs may be attached to the same cgroup and its children (the
/// kernel asks all of them; each may deny).
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i32> {
    // SAFETY: bpf(2) with an attribute struct we own and its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc as i32)
}

// ANCHOR: attach
/// Loads the program for `rules` and attaches it to the cgroup v2
/// directory `dir`. The attachment holds the program: it lives as long as
/// the cgroup does, and goes with it.
pub fn attach(dir: &Path, rules: &[String]) -> Result<(), String> {
    let insns = program(rules)?;
    let license = c"Apache";
    let mut log = vec![0u8; 1 << 16];
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    load.prog_name[..7].copy_from_slice(b"devices");
    let prog = bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
        let said = String::from_utf8_lossy(&log);
        format!(
            "loading the device filter (BPF_PROG_LOAD): {e}; the verifier said: {}",
            said.trim_end_matches('\0').trim()
        )
    })?;
    // SAFETY: bpf(2) returned a new descriptor that we now own.
    let prog = unsafe { OwnedFd::from_raw_fd(prog) };
    let cgroup = std::fs::File::open(dir)
        .map_err(|e| format!("opening the cgroup {}: {e}", dir.display()))?;
    let mut attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| {
        format!(
            "attaching the device filter to {} (BPF_PROG_ATTACH): {e}",
            dir.display()
        )
    })?;
    Ok(())
}
// ANCHOR_END: attach

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_is_a_block_that_jumps_to_the_next() {
        let p = program(&["c 1:3 rw".into(), "a".into(), "c 1:5 r".into()]).unwrap();
        // 6 loads, then c 1:3 rw: type, 3 for access, major, minor, r0=1,
        // exit; `a` ends the program (what follows could never run).
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(
            p[6],
            insn(JNE_K, 2, 0, 7, 2),
            "not char: skip 7 to the next rule"
        );
        assert_eq!(p[9], insn(JNE_X, 1, 3, 4, 0));
        assert_eq!(p[11], insn(JNE_K, 5, 0, 2, 3));
        // `a` allows all: no tests, just r0 = 1.
        assert_eq!(p[14..], [insn(MOV64_K, 0, 0, 0, 1), insn(EXIT, 0, 0, 0, 0)]);
        let p = program(&["c 1:3 rw".into()]).unwrap();
        assert_eq!(p[14..], [insn(MOV64_K, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
        assert!(program(&["q".into()]).is_err());
    }
}
