//! Chapter 01 experiments: each namespace shown from inside and from the host.
//! Run `cargo run -p chapter-01 -- help` for the list.

use anyhow::{bail, Context, Result};
use chapter_01::ipc::{visible_queue_keys, HostQueue};
use chapter_01::{Namespace, Namespaces, RootMode, Spec};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "chapter-01",
    about = "Chapter 01: Linux namespaces, one experiment each"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct RootfsArg {
    /// Root filesystem directory [default: the fixture, target/fixture/rootfs]
    #[arg(long)]
    rootfs: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in chosen namespaces (the general tool the experiments use)
    Run(RunArgs),
    /// UTS: a hostname changed inside leaves the host's alone
    Uts(RootfsArg),
    /// PID: the container's first process is PID 1 and sees only its own
    Pid(RootfsArg),
    /// MNT: a mount made inside is invisible on the host; pivot_root into the rootfs
    Mnt(RootfsArg),
    /// IPC: a SysV message queue on the host is invisible inside
    Ipc(RootfsArg),
    /// NET: only a loopback interface inside
    Net(RootfsArg),
    /// NET by hand: a bridge and a veth pair with `ip`, the container's end
    /// moved into its namespace; then ping both ways (what chapter 06 does
    /// over netlink)
    Veth(RootfsArg),
    /// USER: uid 0 inside is an unprivileged uid outside
    User(RootfsArg),
    /// Every namespace at once over the fixture rootfs; runs CMD (default: a shell)
    All {
        #[command(flatten)]
        root: RootfsArg,
        /// Hostname inside
        #[arg(long, default_value = "mini-docker")]
        hostname: String,
        /// The command [default: print what the container sees, then a shell]
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Why pivot_root and not chroot: the same escape attempt in both
    Escape(RootfsArg),
    /// N containers supervised by the threads of this one process, each
    /// thread waiting for its container (`cargo xtask bench monitor`
    /// compares it with one supervising process per container)
    #[command(hide = true)]
    Supervise {
        #[command(flatten)]
        root: RootfsArg,
        /// How many containers
        #[arg(long)]
        n: usize,
        /// The command each runs
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Namespaces to create, comma-separated (uts,pid,mnt,ipc,net,user,cgroup),
    /// `all`, or `none` [default: uts,pid,mnt,ipc,net, plus user when not root]
    #[arg(long = "ns")]
    namespaces: Option<Namespaces>,
    /// Hostname inside (needs uts)
    #[arg(long)]
    hostname: Option<String>,
    #[command(flatten)]
    root: RootfsArg,
    /// Keep the host's filesystem instead of entering a rootfs
    #[arg(long, conflicts_with = "rootfs")]
    no_rootfs: bool,
    /// Enter the rootfs with chroot(2) instead of pivot_root(2) (insecure; for the escape demo)
    #[arg(long)]
    chroot_insecure: bool,
    /// Working directory inside
    #[arg(short = 'w', long, default_value = "/")]
    workdir: String,
    /// Extra environment variables (KEY=VALUE)
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Print the steps the child would take, and run nothing
    #[arg(long)]
    dry_run: bool,
    /// Map the container's IDs to USER[:GROUP]'s ranges in /etc/subuid and
    /// /etc/subgid, as `dockerd --userns-remap` (adds user; needs root)
    #[arg(long, value_name = "USER")]
    userns_remap: Option<String>,
    /// Run a tiny init as PID 1 that starts the command, reaps orphans and
    /// passes signals on (`docker run --init`)
    #[arg(long)]
    init: bool,
    /// The command and its arguments
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    chapter_01::course::install_hook();
    chapter_01::cli_exit("chapter-01", dispatch(Cli::parse().command))
}

fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => run_command(args),
        Command::Uts(r) => uts(&rootfs(r)?),
        Command::Pid(r) => pid(&rootfs(r)?),
        Command::Mnt(r) => mnt(&rootfs(r)?),
        Command::Ipc(r) => ipc(&rootfs(r)?),
        Command::Net(r) => net(&rootfs(r)?),
        Command::Veth(r) => veth(&rootfs(r)?),
        Command::User(r) => user(&rootfs(r)?),
        Command::All {
            root,
            hostname,
            command,
        } => all(&rootfs(root)?, hostname, command),
        Command::Escape(r) => escape(&rootfs(r)?),
        Command::Supervise { root, n, command } => supervise(&rootfs(root)?, n, command),
    }
}

/// Starts `n` containers one after the other (no other thread is busy
/// while one clones), hands each to a thread of its own that waits for it,
/// says `ready` when all run, and ends when all have ended.
fn supervise(rootfs: &std::path::Path, n: usize, command: Vec<String>) -> Result<i32> {
    let mut spec = Spec::new("/", command);
    spec.rootfs = Some(rootfs.to_path_buf());
    spec.namespaces = default_namespaces();
    let mut waiters = Vec::with_capacity(n);
    for i in 0..n {
        let mut child = chapter_01::spawn(&spec).with_context(|| format!("container {i}"))?;
        child.start().with_context(|| format!("container {i}"))?;
        waiters.push(
            std::thread::Builder::new()
                .name(format!("supervise-{i}"))
                .spawn(move || child.wait())?,
        );
    }
    println!("ready {n}");
    let mut failed = 0;
    for waiter in waiters {
        if !matches!(waiter.join(), Ok(Ok(_))) {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {n} containers could not be waited for");
    }
    Ok(0)
}

/// The fixture rootfs built by `cargo xtask fixture`, unless one is given.
fn rootfs(arg: RootfsArg) -> Result<PathBuf> {
    let Some(path) = arg.rootfs else {
        return chapter_01::fixture_rootfs().map_err(anyhow::Error::msg);
    };
    match path.canonicalize() {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(p) => bail!("rootfs {} is not a directory", p.display()),
        Err(e) => bail!(
            "no root filesystem at {} ({e}): build the fixture with `cargo xtask fixture`, or pass --rootfs DIR",
            path.display()
        ),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The default namespaces, plus USER when an unprivileged user needs it.
fn default_namespaces() -> Namespaces {
    let mut ns = Namespaces::container();
    if !is_root() {
        ns.insert(Namespace::User);
    }
    ns
}

fn spec(rootfs: &std::path::Path, command: &[&str]) -> Spec {
    let mut spec = Spec::new(rootfs, command.iter().map(|s| s.to_string()).collect());
    spec.namespaces = default_namespaces();
    spec
}

fn run_command(args: RunArgs) -> Result<i32> {
    let chosen = args.namespaces.is_none();
    let namespaces = args.namespaces.unwrap_or_else(default_namespaces);
    let rootfs = if args.no_rootfs {
        None
    } else {
        Some(rootfs(args.root.clone())?)
    };
    let mut spec = Spec::new("/", args.command);
    spec.rootfs = rootfs;
    spec.hostname = args.hostname;
    spec.namespaces = namespaces;
    spec.workdir = args.workdir;
    spec.env.extend(args.env);
    spec.forward_signals = true;
    spec.init = args.init;
    if args.chroot_insecure {
        spec.root_mode = RootMode::ChrootInsecure;
    }
    if let Some(user) = &args.userns_remap {
        if !is_root() {
            bail!("--userns-remap writes another user's ID ranges: run it as root");
        }
        spec.id_map = Some(chapter_01::user::remap_for(user).map_err(anyhow::Error::msg)?);
        spec.namespaces.insert(Namespace::User);
    }
    spec.validate()?;
    if chosen && !is_root() && spec.namespaces.contains(Namespace::User) {
        eprintln!("chapter-01: not root, so adding a user namespace (--ns to choose)");
    }
    if args.dry_run {
        print!(
            "{}",
            chapter_01::setup::describe(&chapter_01::plan::build(&spec))
        );
        return Ok(0);
    }
    Ok(chapter_01::run(&spec)?)
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn say(step: &str) {
    println!("\n== {step}");
}

fn uts(rootfs: &std::path::Path) -> Result<i32> {
    say(&format!("host: hostname is {:?}", host_hostname()));
    say("inside (new UTS namespace, hostname set to \"container\"): `hostname`, then `hostname renamed; hostname`");
    chapter_01::run(&spec(
        rootfs,
        &["/bin/sh", "-c", "hostname; hostname renamed; hostname"],
    ))?;
    say(&format!(
        "host again: hostname is still {:?}",
        host_hostname()
    ));
    Ok(0)
}

fn pid(rootfs: &std::path::Path) -> Result<i32> {
    let host_count = std::fs::read_dir("/proc")?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    say(&format!("host: {host_count} processes in /proc"));
    say("inside (new PID namespace, its own /proc): `echo my pid is $$; ps`");
    let mut child = chapter_01::spawn(&spec(rootfs, &["/bin/sh", "-c", "echo my pid is $$; ps"]))?;
    let host_pid = child.pid();
    child.start()?;
    child.wait()?;
    say(&format!(
        "host: the same process was PID {host_pid} out here"
    ));
    Ok(0)
}

fn mnt(rootfs: &std::path::Path) -> Result<i32> {
    say("inside: mount a tmpfs on /mnt and write a file there, then list the mount table");
    chapter_01::run(&spec(
        rootfs,
        &[
            "/bin/sh",
            "-c",
            "mount -t tmpfs scratch /mnt && touch /mnt/inside && ls /mnt && cat /proc/mounts",
        ],
    ))?;
    let leaked = std::fs::read_to_string("/proc/self/mountinfo")?.contains(" scratch ");
    say(&format!(
        "host: a tmpfs named scratch is {} in the host's mount table; {}/mnt holds {:?}",
        if leaked {
            "PRESENT (propagation leaked!)"
        } else {
            "absent"
        },
        rootfs.display(),
        std::fs::read_dir(rootfs.join("mnt"))?.count()
    ));
    say("inside: the old root is gone: `ls /` shows only the rootfs");
    chapter_01::run(&spec(rootfs, &["/bin/ls", "/"]))?;
    Ok(0)
}

fn ipc(rootfs: &std::path::Path) -> Result<i32> {
    let key = 0x6d64_0000 | (std::process::id() as i32 & 0xffff);
    let queue = HostQueue::create(key).context("creating a SysV message queue on the host")?;
    say(&format!(
        "host: created message queue with key {:#x}; the host sees keys {:x?}",
        queue.key(),
        visible_queue_keys()?
    ));
    // Debian's busybox has no `ipcs`; it would read the same file.
    say("inside (new IPC namespace): `cat /proc/sysvipc/msg` (the file ipcs reads)");
    chapter_01::run(&spec(rootfs, &["cat", "/proc/sysvipc/msg"]))?;
    say("host: the queue is removed again on exit");
    Ok(0)
}

fn net(rootfs: &std::path::Path) -> Result<i32> {
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    say(&format!("host: interfaces {host:?}"));
    say("inside (new NET namespace): `ip addr`");
    chapter_01::run(&spec(rootfs, &["ip", "addr"]))?;
    Ok(0)
}

/// Deletes the walk-through's bridge when dropped (the veth pair goes with
/// the container's namespace), also when a step fails.
struct BridgeGuard(&'static str);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// One command of the walk-through, printed, then run; its output shown.
fn by_hand(args: &[&str]) -> Result<String> {
    println!("$ {}", args.join(" "));
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "running {}: {e} (the walk-through needs iproute2, util-linux's nsenter and busybox)",
                args[0]
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        anyhow::bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

fn veth(rootfs: &std::path::Path) -> Result<i32> {
    if !is_root() {
        bail!(
            "the veth walk-through needs root: it makes a bridge and a veth pair in the host's \
             network namespace, which only the host's root may change"
        );
    }
    // A container that waits: a new NET namespace with only `lo` in it.
    let mut child = chapter_01::spawn(&spec(rootfs, &["sleep", "30"]))?;
    child.start()?;
    let pid = child.pid().to_string();
    say(&format!(
        "a container (PID {pid} on the host) with an empty network namespace"
    ));
    let (bridge, host_end, peer) = ("ch01br0", "ch01veth", "ch01peer");
    let _guard = BridgeGuard(bridge);
    say("a bridge on the host: a virtual switch, with the gateway's address");
    by_hand(&["ip", "link", "add", bridge, "type", "bridge"])?;
    by_hand(&["ip", "addr", "add", "10.199.0.1/24", "dev", bridge])?;
    by_hand(&["ip", "link", "set", bridge, "up"])?;
    say("a veth pair: a virtual cable; one end into the bridge");
    by_hand(&[
        "ip", "link", "add", host_end, "type", "veth", "peer", "name", peer,
    ])?;
    by_hand(&["ip", "link", "set", host_end, "master", bridge, "up"])?;
    say("the other end into the container's namespace (it disappears from the host)");
    by_hand(&["ip", "link", "set", peer, "netns", &pid])?;
    say("inside (nsenter --net): rename it eth0, give it an address and a default route");
    let inside = |args: &[&str]| {
        let mut full = vec!["nsenter", "-t", &pid, "-n"];
        full.extend_from_slice(args);
        by_hand(&full)
    };
    inside(&["ip", "link", "set", peer, "name", "eth0"])?;
    inside(&["ip", "addr", "add", "10.199.0.2/24", "dev", "eth0"])?;
    inside(&["ip", "link", "set", "eth0", "up"])?;
    inside(&["ip", "route", "add", "default", "via", "10.199.0.1"])?;
    inside(&["ip", "-4", "-o", "addr", "show", "eth0"])?;
    say("host -> container, then container -> host");
    by_hand(&["busybox", "ping", "-c", "1", "-W", "2", "10.199.0.2"])?;
    inside(&["busybox", "ping", "-c", "1", "-W", "2", "10.199.0.1"])?;
    say("the container ends: its namespace goes, and the veth pair with it; the guard deletes the bridge");
    let _ = nix::sys::signal::kill(child.pid(), nix::sys::signal::Signal::SIGKILL);
    child.wait()?;
    Ok(0)
}

fn user(rootfs: &std::path::Path) -> Result<i32> {
    let mut spec = spec(
        rootfs,
        &[
            "/bin/sh",
            "-c",
            "echo inside: $(id); cat /proc/self/uid_map; sleep 1",
        ],
    );
    spec.namespaces.insert(Namespace::User);
    say("inside (new USER namespace): `id` and the uid map");
    let mut child = chapter_01::spawn(&spec)?;
    child.start()?;
    let child_pid = child.pid();
    let status = std::fs::read_to_string(format!("/proc/{child_pid}/status"))?;
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or("Uid: ?");
    child.wait()?;
    say(&format!(
        "host: the same process, from /proc/{child_pid}/status: {uid_line}"
    ));
    Ok(0)
}

fn all(rootfs: &std::path::Path, hostname: String, command: Vec<String>) -> Result<i32> {
    let command = if command.is_empty() {
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "/bin/facts --human; exec /bin/sh".into(),
        ]
    } else {
        command
    };
    let mut spec = Spec::new(rootfs, command);
    spec.namespaces = "all".parse::<Namespaces>().map_err(anyhow::Error::msg)?;
    spec.hostname = Some(hostname);
    spec.forward_signals = true;
    Ok(chapter_01::run(&spec)?)
}

fn escape(rootfs: &std::path::Path) -> Result<i32> {
    if !is_root() {
        bail!("the escape demo needs root (it compares with a chroot jail run as real root)");
    }
    for (mode, label) in [
        (RootMode::ChrootInsecure, "chroot(2) jail"),
        (RootMode::PivotRoot, "pivot_root(2) container"),
    ] {
        say(&format!(
            "{label}: try the classic escape (chroot into a subdir, chdir .. 64 times, chroot .)"
        ));
        let mut spec = spec(rootfs, &["/bin/facts", "escape", "--human"]);
        spec.root_mode = mode;
        chapter_01::run(&spec)?;
    }
    Ok(0)
}
