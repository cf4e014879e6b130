//! A benchmark's result as a markdown table: the machine it ran on, each
//! contender's median and spread, and its ratio to a reference row;
//! printed and written to `target/bench/NAME.md`.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One contender's figures (milliseconds), or why it has none.
pub enum Row {
    Timed {
        name: String,
        median: f64,
        min: f64,
        max: f64,
    },
    /// Not installed, or failed to run: said, never dropped.
    Missing { name: String, why: String },
}

/// The rows of one hyperfine `--export-json` file, in its order, named as
/// hyperfine named them (`-n`).
pub fn hyperfine_rows(path: &Path) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let ms = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN) * 1e3;
    Ok(json["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Row::Timed {
            name: r["command"].as_str().unwrap_or("?").to_string(),
            median: ms(&r["median"]),
            min: ms(&r["min"]),
            max: ms(&r["max"]),
        })
        .collect())
}

/// What the numbers depend on: kernel, cores, memory, cgroup layout, KVM.
pub fn machine() -> String {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cgroups = chapter_02::Layout::detect()
        .map(|l| format!("{:?}", l.mode).to_lowercase())
        .unwrap_or_else(|e| e);
    format!(
        "Linux {kernel}, {cores} cores ({cpu}), {:.1} GiB, cgroups {cgroups}, KVM {}",
        mem_kb as f64 / (1 << 20) as f64,
        if kvm_usable() {
            "answers at /dev/kvm"
        } else {
            "not usable"
        }
    )
}

/// `/dev/kvm` opens and answers KVM_GET_API_VERSION (whether a guest's CPU
/// model is accepted is QEMU's to find out; the VM rows say which they used).
pub fn kvm_usable() -> bool {
    use std::os::fd::AsRawFd;
    let Ok(kvm) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    else {
        return false;
    };
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: an ioctl without arguments on the descriptor we opened.
    unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION) == 12 }
}

/// Writes the table to `target/bench/NAME.md` and prints it. `reference`
/// names the row the ratios are against; `notes` go under the table.
pub fn publish(
    name: &str,
    title: &str,
    rows: &[Row],
    reference: &str,
    notes: &[String],
) -> Result<PathBuf> {
    let mut out = String::new();
    let date = today();
    writeln!(out, "## {title}\n")?;
    writeln!(out, "{date}; {}\n", machine())?;
    writeln!(
        out,
        "| contender | median | min – max | × {reference} |\n|---|---:|---:|---:|"
    )?;
    let base = rows.iter().find_map(|r| match r {
        Row::Timed { name, median, .. } if name == reference => Some(*median),
        _ => None,
    });
    for row in rows {
        match row {
            Row::Timed {
                name,
                median,
                min,
                max,
            } => {
                let ratio = base.map_or("–".to_string(), |b| format!("{:.2}", median / b));
                writeln!(
                    out,
                    "| {name} | {} | {} – {} | {ratio} |",
                    ms(*median),
                    ms(*min),
                    ms(*max)
                )?;
            }
            Row::Missing { name, why } => writeln!(out, "| {name} | – | {why} | – |")?,
        }
    }
    for note in notes.iter().filter(|n| !n.is_empty()) {
        writeln!(out, "\n{note}")?;
    }
    write_out(name, &out)
}

/// Writes any table (first row the header) to `target/bench/NAME.md`, with
/// the machine, and prints it.
pub fn publish_table(
    name: &str,
    title: &str,
    table: &[Vec<String>],
    notes: &[String],
) -> Result<PathBuf> {
    let mut out = String::new();
    writeln!(out, "## {title}\n")?;
    writeln!(out, "{}; {}\n", today(), machine())?;
    for (i, row) in table.iter().enumerate() {
        writeln!(out, "| {} |", row.join(" | "))?;
        if i == 0 {
            writeln!(out, "|{}", "---|".repeat(row.len()))?;
        }
    }
    for note in notes.iter().filter(|n| !n.is_empty()) {
        writeln!(out, "\n{note}")?;
    }
    write_out(name, &out)
}

fn write_out(name: &str, out: &str) -> Result<PathBuf> {
    let dir = testkit::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, out)?;
    println!("\n{out}\n(written to {})", path.display());
    Ok(path)
}

pub fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}
