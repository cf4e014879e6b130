//! `facts`: reports what the process running it sees, as JSON, so tests
//! assert on structure rather than on screen text. It is built statically
//! and copied into the fixture image as `/bin/facts`.
//!
//! - `facts`          every fact as one JSON object
//! - `facts --human`  a short summary for people
//! - `facts escape [--human]`   attempts the classic chroot escape and reports whether
//!   the root directory changed (run only inside a container)
//! - `facts hog MIB`  allocates and touches MIB mebibytes, one at a time,
//!   reporting progress (the OOM killer's prey)
//! - `facts spin SECONDS`  burns CPU for that long in wall-clock time
//! - `facts forkbomb MAX`  forks up to MAX sleeping children and reports
//!   how many it got and why it stopped (run only inside a pids-limited
//!   container: the children live until the container ends)
//! - `facts probe`    tries what a default container must not do (each in
//!   a child process of its own) and reports "ok" or the errno's name per
//!   try (run only inside a container)

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::MetadataExt;

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    match arg.as_str() {
        "" => println!("{}", facts()),
        "--human" => human(&facts()),
        "escape" => {
            let report = escape();
            if std::env::args().nth(2).as_deref() == Some("--human") {
                escape_human(&report);
            } else {
                println!("{report}");
            }
        }
        "hog" => hog(number_arg()),
        "spin" => spin(number_arg()),
        "forkbomb" => forkbomb(number_arg()),
        "probe" => println!("{}", probe()),
        "work" => work(),
        other => {
            eprintln!("facts: unknown argument {other:?}: use no argument, --human, escape, hog, spin, forkbomb, probe or work");
            std::process::exit(2);
        }
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn entries(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn facts() -> Value {
    let status = read("/proc/self/status");
    let mounts: Vec<Value> = read("/proc/self/mountinfo")
        .lines()
        .filter_map(|line| {
            // mountinfo(5): fields, then " - ", then fstype and source.
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(json!({
                "mount_point": left.get(4)?,
                "options": left.get(5)?,
                "fstype": right.first()?,
                "source": right.get(1)?,
            }))
        })
        .collect();
    let namespaces: serde_json::Map<String, Value> =
        ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
            .iter()
            .map(|ns| {
                let link = fs::read_link(format!("/proc/self/ns/{ns}"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (ns.to_string(), json!(link))
            })
            .collect();
    let processes: Vec<u32> = {
        let mut pids: Vec<u32> = entries("/proc")
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        pids.sort();
        pids
    };
    let interfaces: Vec<Value> = read("/proc/net/dev")
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|name| {
            let name = name.trim();
            json!({"name": name, "up": interface_up(name)})
        })
        .collect();
    let msg_queues: Vec<i64> = read("/proc/sysvipc/msg")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    json!({
        "pid": std::process::id(),
        "ppid": std::os::unix::process::parent_id(),
        "hostname": read("/proc/sys/kernel/hostname").trim(),
        "uid": unsafe { libc::getuid() },
        "gid": unsafe { libc::getgid() },
        "euid": unsafe { libc::geteuid() },
        "egid": unsafe { libc::getegid() },
        "cwd": std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        "mounts": mounts,
        "namespaces": namespaces,
        "cgroup": read("/proc/self/cgroup").lines().collect::<Vec<_>>(),
        "capabilities": {
            "inheritable": status_field(&status, "CapInh:"),
            "permitted": status_field(&status, "CapPrm:"),
            "effective": status_field(&status, "CapEff:"),
            "bounding": status_field(&status, "CapBnd:"),
            "ambient": status_field(&status, "CapAmb:"),
        },
        "no_new_privs": status_field(&status, "NoNewPrivs:"),
        "fds": open_fds(),
        "uid_map": read("/proc/self/uid_map").split_whitespace().collect::<Vec<_>>().join(" "),
        "gid_map": read("/proc/self/gid_map").split_whitespace().collect::<Vec<_>>().join(" "),
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "processes": processes,
        "net_interfaces": interfaces,
        "sysv_msg_queues": msg_queues,
        "root_entries": entries("/"),
        "dev_entries": entries("/dev"),
    })
}

/// The descriptors this process has open (the one reading the directory
/// left out).
fn open_fds() -> Vec<i32> {
    use std::os::fd::AsRawFd;
    let Ok(mut dir) = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Vec::new();
    };
    let own = dir.as_raw_fd();
    let mut fds: Vec<i32> = dir
        .iter()
        .flatten()
        .filter_map(|e| e.file_name().to_str().ok()?.parse().ok())
        .filter(|fd| *fd != own)
        .collect();
    fds.sort();
    fds
}

fn interface_up(name: &str) -> bool {
    // SAFETY: an ioctl on a socket we own with a zeroed ifreq naming `name`.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return false;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req
            .ifr_name
            .iter_mut()
            .zip(name.bytes().take(libc::IFNAMSIZ - 1))
        {
            *dst = src as libc::c_char;
        }
        let ok = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0;
        libc::close(sock);
        ok && (req.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short) != 0
    }
}

fn human(f: &Value) {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().map(String::from).unwrap_or(x.to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let ifaces: Vec<String> = f["net_interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{}({})",
                i["name"].as_str().unwrap_or("?"),
                if i["up"] == true { "up" } else { "down" }
            )
        })
        .collect();
    println!("hostname:    {}", f["hostname"].as_str().unwrap_or(""));
    println!("pid:         {} (parent {})", f["pid"], f["ppid"]);
    println!("processes:   {}", list(&f["processes"]));
    println!(
        "uid/gid:     {}/{} (uid map: {})",
        f["uid"],
        f["gid"],
        f["uid_map"].as_str().unwrap_or("")
    );
    println!("root (/):    {}", list(&f["root_entries"]));
    println!("/dev:        {}", list(&f["dev_entries"]));
    println!("interfaces:  {}", ifaces.join(" "));
    println!(
        "mounts:      {}",
        f["mounts"].as_array().map_or(0, |m| m.len())
    );
}

/// The classic escape from a chroot(2) jail: make a subdirectory, chroot
/// into it while the working directory stays outside, climb `..` further
/// than any real depth, and chroot to wherever that ends. Under chroot this
/// reaches the real root; after pivot_root and detaching the old root, `..`
/// stops at the container's own root.
fn escape() -> Value {
    let root_id = || fs::metadata("/").map(|m| (m.dev(), m.ino())).ok();
    let before = root_id();
    let dir = format!("/tmp/.escape-{}", std::process::id());
    let mut steps = Vec::new();
    // Kept to remove the subdirectory afterwards, wherever `/` then is.
    let old_root = fs::File::open("/").ok();
    // SAFETY: plain system calls with C strings built here.
    unsafe {
        let cdir = std::ffi::CString::new(dir.clone()).unwrap();
        libc::mkdir(cdir.as_ptr(), 0o700);
        steps.push(("chroot into subdir", libc::chroot(cdir.as_ptr())));
        for _ in 0..64 {
            libc::chdir(c"..".as_ptr());
        }
        steps.push(("chroot .", libc::chroot(c".".as_ptr())));
        libc::chdir(c"/".as_ptr());
    }
    let after = root_id();
    let escaped = before != after;
    if let Some(root) = &old_root {
        let rel = std::ffi::CString::new(dir.trim_start_matches('/')).unwrap();
        // SAFETY: unlinkat on a directory fd we hold open.
        unsafe {
            libc::unlinkat(
                std::os::fd::AsRawFd::as_raw_fd(root),
                rel.as_ptr(),
                libc::AT_REMOVEDIR,
            )
        };
    }
    json!({
        "escaped": escaped,
        "steps": steps.iter().map(|(s, rc)| json!({"step": s, "rc": rc})).collect::<Vec<_>>(),
        "root_before": before.map(|(d, i)| format!("{d}:{i}")),
        "root_after": after.map(|(d, i)| format!("{d}:{i}")),
        "root_entries_after": entries("/"),
        "reads_host_os_release": read("/etc/os-release").lines().find(|l| l.starts_with("PRETTY_NAME")),
    })
}

fn escape_human(r: &Value) {
    if r["escaped"] == true {
        println!("ESCAPED: `/` is now the host's root");
    } else {
        println!("contained: `/` is still the container's root");
    }
    println!(
        "  / now holds: {}",
        r["root_entries_after"]
            .as_array()
            .map_or(String::new(), |a| {
                a.iter()
                    .filter_map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
    );
    println!(
        "  /etc/os-release says: {}",
        r["reads_host_os_release"].as_str().unwrap_or("(nothing)")
    );
}

fn number_arg() -> u64 {
    match std::env::args().nth(2).and_then(|a| a.parse().ok()) {
        Some(n) => n,
        None => {
            eprintln!("facts: this subcommand needs a number");
            std::process::exit(2);
        }
    }
}

/// Allocates `mib` MiB, touching every page so it is really used.
fn hog(mib: u64) {
    use std::io::Write;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for i in 1..=mib {
        kept.push(vec![0x5a; 1 << 20]);
        if i % 8 == 0 || i == mib {
            println!("allocated {i} MiB");
            let _ = std::io::stdout().flush();
        }
    }
    println!("{{\"hog_done\": {mib}}}");
}

/// Burns CPU for `seconds` of wall-clock time.
fn spin(seconds: u64) {
    let start = std::time::Instant::now();
    let mut x: u64 = 0;
    while start.elapsed().as_secs() < seconds {
        for _ in 0..100_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
    }
    println!("{{\"spun_seconds\": {seconds}}}");
}

/// `facts work cpu|mem|syscalls N`: a workload of `cargo xtask bench
/// near-native`, timed inside (start-up excluded) and printed as one line of
/// JSON: `cpu` N rounds of integer mixing, `mem` N copies of a 64 MiB
/// buffer, `syscalls` N getppid(2) calls.
fn work() {
    let kind = std::env::args().nth(2).unwrap_or_default();
    let n: u64 = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("facts work: use facts work cpu|mem|syscalls N");
            std::process::exit(2);
        });
    let start = std::time::Instant::now();
    match kind.as_str() {
        "cpu" => {
            let mut x: u64 = 1;
            for i in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x = x.wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        "mem" => {
            let from = vec![1u8; 64 << 20];
            let mut to = vec![0u8; 64 << 20];
            for _ in 0..n {
                to.copy_from_slice(std::hint::black_box(&from));
                std::hint::black_box(&mut to);
            }
        }
        "syscalls" => {
            for _ in 0..n {
                std::hint::black_box(std::os::unix::process::parent_id());
            }
        }
        other => {
            eprintln!("facts work: unknown workload {other:?}: cpu, mem or syscalls");
            std::process::exit(2);
        }
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!("{{\"work\": \"{kind}\", \"n\": {n}, \"ms\": {ms:.3}}}");
}

/// The name of an errno the probes meet, else its number.
fn errno_name(errno: i32) -> String {
    let known = [
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::ESRCH, "ESRCH"),
        (libc::EACCES, "EACCES"),
        (libc::EBUSY, "EBUSY"),
        (libc::EINVAL, "EINVAL"),
        (libc::ENOSYS, "ENOSYS"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
        (libc::ENOKEY, "ENOKEY"),
        (libc::EDQUOT, "EDQUOT"),
    ];
    known
        .iter()
        .find(|(n, _)| *n == errno)
        .map_or_else(|| format!("errno {errno}"), |(_, name)| name.to_string())
}

/// One try: a system call's return value (negative with errno set).
type Try = fn() -> libc::c_long;

/// Runs `attempt` in a child process (so a success changes nothing here):
/// "ok", or the name of the errno it failed with.
fn attempt(attempt: Try) -> String {
    // SAFETY: the child makes the attempt's system calls and _exits.
    match unsafe { libc::fork() } {
        0 => {
            let rc = attempt();
            let code = if rc < 0 {
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(255)
            } else {
                0
            };
            unsafe { libc::_exit(code.min(255)) }
        }
        -1 => format!("fork failed: {}", std::io::Error::last_os_error()),
        pid => {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (true, 0) => "ok".into(),
                (true, code) => errno_name(code),
                _ => format!("killed by signal {}", libc::WTERMSIG(status)),
            }
        }
    }
}

/// What Docker's default seccomp profile and capabilities refuse, tried.
fn probe() -> Value {
    // SAFETY (every closure): raw system calls with constant arguments or
    // C strings made here, in a child that exits right after.
    let tries: [(&str, Try); 10] = [
        ("unshare_user", || {
            unsafe { libc::unshare(libc::CLONE_NEWUSER) }.into()
        }),
        ("keyctl", || unsafe {
            // KEYCTL_GET_KEYRING_ID of the session keyring, created if need be.
            libc::syscall(libc::SYS_keyctl, 0, -3, 1)
        }),
        ("add_key", || unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"probe".as_ptr(),
                c"x".as_ptr(),
                1,
                -2, // KEY_SPEC_PROCESS_KEYRING
            )
        }),
        ("kcmp", || unsafe {
            let me = libc::getpid();
            libc::syscall(libc::SYS_kcmp, me, me, 0 /* KCMP_FILE */, 0, 0)
        }),
        ("ptrace", || unsafe {
            // Attach to a child of ours that waits.
            let target = libc::fork();
            if target == 0 {
                libc::pause();
                libc::_exit(0);
            }
            let rc = libc::ptrace(libc::PTRACE_ATTACH, target, 0, 0);
            let errno = *libc::__errno_location();
            libc::kill(target, libc::SIGKILL);
            *libc::__errno_location() = errno;
            rc
        }),
        ("mount", || unsafe {
            let dir = c"/dev/shm/.probe-mount";
            libc::mkdir(dir.as_ptr(), 0o700);
            let rc = libc::mount(
                c"probe".as_ptr(),
                dir.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            );
            let errno = *libc::__errno_location();
            libc::umount2(dir.as_ptr(), libc::MNT_DETACH);
            libc::rmdir(dir.as_ptr());
            *libc::__errno_location() = errno;
            rc.into()
        }),
        ("clone_newns", || unsafe {
            // Through the raw call: glibc's fork would not take the flag.
            let rc = libc::syscall(
                libc::SYS_clone,
                libc::CLONE_NEWNS | libc::SIGCHLD,
                0,
                0,
                0,
                0,
            );
            if rc == 0 {
                libc::_exit(0);
            }
            rc
        }),
        ("personality_bad", || {
            unsafe { libc::personality(0xffff) }.into()
        }),
        ("vsock_socket", || {
            unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) }.into()
        }),
        ("chroot", || unsafe { libc::chroot(c"/".as_ptr()) }.into()),
    ];
    Value::Object(
        tries
            .iter()
            .map(|(name, f)| (name.to_string(), json!(attempt(*f))))
            .collect(),
    )
}

/// Forks up to `max` children that sleep; stops at the first failure.
fn forkbomb(max: u64) {
    let mut forked = 0u64;
    let mut error = String::new();
    for _ in 0..max {
        // SAFETY: the child only calls pause(2) and _exit(2).
        match unsafe { libc::fork() } {
            0 => unsafe {
                libc::pause();
                libc::_exit(0);
            },
            -1 => {
                let e = std::io::Error::last_os_error();
                error = match e.raw_os_error() {
                    Some(libc::EAGAIN) => "EAGAIN".to_string(),
                    _ => e.to_string(),
                };
                break;
            }
            _ => forked += 1,
        }
    }
    println!("{}", json!({"forked": forked, "error": error}));
}
