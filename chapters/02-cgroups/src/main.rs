//! Chapter 02 experiments: limits you can watch the kernel enforce.
//! Run `cargo run -p chapter-02 -- help` for the list. They need root.

use anyhow::{anyhow, bail, Result};
use chapter_02::layout::{parse_own_cgroups, Layout};
use chapter_02::limits::{parse_device_rate, parse_swap, Limits, Swap};
use chapter_02::size::{human, parse_size};
use chapter_02::{run_limited, Cgroup, Outcome};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "chapter-02",
    about = "Chapter 02: control groups, limits you can watch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show this host's cgroup layout and where containers' cgroups go
    Info,
    /// Run a command in a container with limits (Docker's flags)
    Run {
        #[command(flatten)]
        limits: Box<LimitArgs>,
        #[arg(long)]
        rootfs: Option<PathBuf>,
        /// The command and its arguments
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// A memory hog killed at its limit, and how we know it was the OOM killer
    Oom {
        #[arg(long, default_value = "32m", value_parser = parse_size)]
        memory: u64,
        /// MiB the hog tries to allocate
        #[arg(long, default_value_t = 256)]
        hog: u64,
    },
    /// A busy loop held to a fraction of a CPU, with the measured share
    Cpu {
        #[arg(long, default_value_t = 0.5)]
        cpus: f64,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// A fork bomb stopped by a pids limit while the host stays responsive
    Forkbomb {
        #[arg(long, default_value_t = 32)]
        pids: u64,
    },
    /// A dd throttled by a write-bandwidth limit, shown in MB/s
    Io {
        /// Write limit on the rootfs's disk
        #[arg(long, default_value = "5m", value_parser = parse_size)]
        rate: u64,
        /// MiB written
        #[arg(long, default_value_t = 20)]
        mib: u64,
    },
    /// Live usage of a running container, sampled twice a second
    Stats {
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
}

#[derive(Args, Clone, Default)]
struct LimitArgs {
    /// Memory limit, e.g. 100m
    #[arg(short = 'm', long, value_parser = parse_size)]
    memory: Option<u64>,
    /// Memory plus swap, e.g. 200m, or -1 for unlimited swap
    #[arg(long, value_parser = parse_swap, allow_hyphen_values = true)]
    memory_swap: Option<Swap>,
    /// Number of CPUs, e.g. 0.5
    #[arg(long)]
    cpus: Option<f64>,
    /// Relative CPU weight (default 1024)
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// CPUs to run on, e.g. 0-1
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Maximum number of processes
    #[arg(long)]
    pids_limit: Option<u64>,
    /// Relative IO weight, 10-1000
    #[arg(long)]
    blkio_weight: Option<u64>,
    /// DEVICE:RATE, e.g. /dev/vda:10mb
    #[arg(long, value_parser = |s: &str| parse_device_rate(s, false))]
    device_read_bps: Vec<chapter_02::limits::DeviceRate>,
    #[arg(long, value_parser = |s: &str| parse_device_rate(s, false))]
    device_write_bps: Vec<chapter_02::limits::DeviceRate>,
    /// DEVICE:COUNT, e.g. /dev/vda:100
    #[arg(long, value_parser = |s: &str| parse_device_rate(s, true))]
    device_read_iops: Vec<chapter_02::limits::DeviceRate>,
    #[arg(long, value_parser = |s: &str| parse_device_rate(s, true))]
    device_write_iops: Vec<chapter_02::limits::DeviceRate>,
}

impl LimitArgs {
    fn limits(self) -> Limits {
        Limits {
            memory: self.memory,
            memory_swap: self.memory_swap,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus,
            pids: self.pids_limit,
            blkio_weight: self.blkio_weight,
            read_bps: self.device_read_bps,
            write_bps: self.device_write_bps,
            read_iops: self.device_read_iops,
            write_iops: self.device_write_iops,
            ..Default::default()
        }
    }
}

fn main() -> ExitCode {
    chapter_01::course::install_hook();
    chapter_01::cli_exit("chapter-02", dispatch(Cli::parse().command))
}

fn fixture() -> Result<PathBuf> {
    chapter_01::fixture_rootfs().map_err(|e| anyhow::anyhow!(e))
}

fn spec(rootfs: PathBuf, command: &[&str]) -> chapter_01::Spec {
    chapter_01::Spec::new(rootfs, command.iter().map(|s| s.to_string()).collect())
}

/// A cgroup name unique to this run.
fn name() -> String {
    format!("mini-docker-ch02-{}", std::process::id())
}

fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "cgroup experiments need root: they create cgroups beside this process's own, which \
             belong to root (a rootless engine uses a cgroup v2 subtree the host delegates to it \
             instead: the book's Rootless page)"
        );
    }
    Ok(())
}

fn report(outcome: &Outcome) {
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    let s = &outcome.stats;
    println!(
        "exit code {}; memory now {}, peak {}; cpu {:.2} s; pids {}; oom kills {}; forks refused {}",
        outcome.exit_code,
        human(s.memory_bytes),
        s.memory_peak.map_or("n/a".into(), human),
        s.cpu_ns as f64 / 1e9,
        s.pids,
        s.oom_kills,
        s.pids_limit_hits
    );
}

fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Info => info(),
        Command::Run {
            limits,
            rootfs,
            command,
        } => {
            require_root()?;
            let rootfs = match rootfs {
                Some(r) => r.canonicalize()?,
                None => fixture()?,
            };
            let mut spec = chapter_01::Spec::new(rootfs, command);
            spec.forward_signals = true;
            let outcome = run_limited(&spec, &limits.limits(), &name(), None)?;
            for w in &outcome.warnings {
                eprintln!("warning: {w}");
            }
            if outcome.oom_killed {
                eprintln!(
                    "chapter-02: the container was killed by the OOM killer (memory limit reached)"
                );
            }
            Ok(outcome.exit_code)
        }
        Command::Oom { memory, hog } => {
            require_root()?;
            let limits = Limits {
                memory: Some(memory),
                memory_swap: Some(Swap::Total(memory)),
                ..Default::default()
            };
            println!(
                "== a hog allocating {hog} MiB in a container limited to {} (no swap)",
                human(memory)
            );
            let out = run_limited(
                &spec(fixture()?, &["/bin/facts", "hog", &hog.to_string()]),
                &limits,
                &name(),
                None,
            )?;
            report(&out);
            println!(
                "== {}",
                if out.oom_killed {
                    "killed by the OOM killer: exit 137 = 128 + SIGKILL, and the cgroup counted an oom_kill event"
                } else {
                    "not OOM-killed"
                }
            );
            Ok(0)
        }
        Command::Cpu { cpus, seconds } => {
            require_root()?;
            let limits = Limits {
                cpus: Some(cpus),
                ..Default::default()
            };
            println!("== a busy loop for {seconds} s, limited to {cpus} CPU");
            let start = Instant::now();
            let out = run_limited(
                &spec(fixture()?, &["/bin/facts", "spin", &seconds.to_string()]),
                &limits,
                &name(),
                None,
            )?;
            let wall = start.elapsed().as_secs_f64();
            report(&out);
            println!(
                "== measured share: {:.2} CPU (cpu time {:.2} s / wall time {wall:.2} s)",
                out.stats.cpu_ns as f64 / 1e9 / wall,
                out.stats.cpu_ns as f64 / 1e9
            );
            Ok(0)
        }
        Command::Forkbomb { pids } => {
            require_root()?;
            let limits = Limits {
                pids: Some(pids),
                ..Default::default()
            };
            println!("== a fork bomb in a container limited to {pids} processes");
            let out = run_limited(
                &spec(fixture()?, &["/bin/facts", "forkbomb", "100000"]),
                &limits,
                &name(),
                None,
            )?;
            report(&out);
            let start = Instant::now();
            std::process::Command::new("true").status()?;
            println!(
                "== the host stays responsive: starting `true` on the host took {:.1} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
            Ok(0)
        }
        Command::Io { rate, mib } => io(rate, mib),
        Command::Stats { seconds } => {
            require_root()?;
            let limits = Limits {
                memory: Some(256 << 20),
                cpus: Some(1.0),
                pids: Some(64),
                ..Default::default()
            };
            let s = seconds.to_string();
            let script = format!(
                "/bin/facts spin {s} & /bin/facts spin {s} & /bin/facts hog 48 >/dev/null; wait"
            );
            println!("== two busy loops and a 48 MiB hog, limited to 1 CPU; sampled every 0.5 s");
            println!(
                "{:>6}  {:>10}  {:>6}  {:>4}",
                "time", "memory", "cpu", "pids"
            );
            let start = Instant::now();
            let watch = |cg: &dyn Cgroup, done: &AtomicBool| {
                let mut last = (Instant::now(), 0u64);
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(500));
                    if let Ok(st) = cg.stats() {
                        let now = Instant::now();
                        let share = (st.cpu_ns - last.1.min(st.cpu_ns)) as f64
                            / 1e9
                            / now.duration_since(last.0).as_secs_f64();
                        last = (now, st.cpu_ns);
                        println!(
                            "{:>5.1}s  {:>10}  {:>5.0}%  {:>4}",
                            start.elapsed().as_secs_f64(),
                            human(st.memory_bytes),
                            share * 100.0,
                            st.pids
                        );
                    }
                }
            };
            let out = run_limited(
                &spec(fixture()?, &["/bin/sh", "-c", &script]),
                &limits,
                &name(),
                Some(&watch),
            )?;
            report(&out);
            Ok(0)
        }
    }
}

fn info() -> Result<i32> {
    let layout = Layout::detect().map_err(|e| anyhow!(e))?;
    let own = parse_own_cgroups(&std::fs::read_to_string("/proc/self/cgroup")?);
    println!(
        "layout: {:?}{}",
        layout.mode,
        if layout.mode.uses_v1() {
            " (driven as v1)"
        } else {
            ""
        }
    );
    for (controller, mount) in &layout.v1_mounts {
        let path = own.v1.get(controller).map_or("/", String::as_str);
        println!(
            "  v1 {controller:<8} mounted at {:<28} this process in {path}",
            mount.display()
        );
    }
    if let Some(m) = &layout.v2_mount {
        let controllers = std::fs::read_to_string(m.join("cgroup.controllers")).unwrap_or_default();
        println!(
            "  v2 mounted at {}, controllers: [{}], this process in {}",
            m.display(),
            controllers.trim(),
            own.v2.as_deref().unwrap_or("?")
        );
    }
    Ok(0)
}

fn io(rate: u64, mib: u64) -> Result<i32> {
    require_root()?;
    let rootfs = fixture()?;
    let (major, minor) = chapter_02::limits::device_of(&rootfs).map_err(|e| anyhow!(e))?;
    let file = format!("/tmp/io-{}", std::process::id());
    let script = format!(
        "dd if=/dev/zero of={file} bs=1M count={mib} oflag=direct 2>/dev/null; rm -f {file}"
    );
    let mut speeds = Vec::new();
    for limited in [false, true] {
        let mut limits = Limits::default();
        if limited {
            limits.write_bps.push(chapter_02::limits::DeviceRate {
                major,
                minor,
                per_second: rate,
            });
        }
        let start = Instant::now();
        let out = run_limited(
            &spec(rootfs.clone(), &["/bin/sh", "-c", &script]),
            &limits,
            &name(),
            None,
        )?;
        let secs = start.elapsed().as_secs_f64();
        let mbps = mib as f64 / secs;
        println!(
            "== {} {mib} MiB with O_DIRECT in {secs:.2} s: {mbps:.1} MiB/s (exit {})",
            if limited {
                format!("limited to {}/s on {major}:{minor}:", human(rate))
            } else {
                "unlimited:".to_string()
            },
            out.exit_code
        );
        speeds.push(mbps);
    }
    println!(
        "== the limit slowed the writes {:.1}x",
        speeds[0] / speeds[1]
    );
    Ok(0)
}
