//! A QEMU microVM booting the distribution's kernel (Debian's
//! `linux-image-cloud-amd64`) with an initramfs of ours: no disk, no
//! network, no firmware. The benchmarks boot it to set containers beside
//! virtual machines; tests boot it for a kernel set up as this host's is
//! not (cgroup v2 alone, with `cgroup_no_v1=all`) and run a test binary
//! again inside it.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to boot: the kernel, the accelerator and its arguments, and what
/// more the kernel's command line says.
pub struct Vm {
    pub kernel: PathBuf,
    /// How it is accelerated, as tables say it.
    pub accel: &'static str,
    pub accel_args: String,
    /// More kernel command line (TCG: the TSC's frequency, see [`Vm::tcg`]).
    pub kernel_args: String,
    pub memory_mib: u32,
}

impl Vm {
    /// The newest kernel in /boot (`linux-image-cloud-amd64`).
    pub fn kernel() -> Result<PathBuf> {
        std::fs::read_dir("/boot")
            .context("reading /boot")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .max()
            .context("no kernel in /boot (apt-get install linux-image-cloud-amd64)")
    }

    /// Emulated (TCG): slower than KVM, but it boots wherever QEMU runs
    /// (a nested KVM may refuse the guest's CPU model: it does here).
    ///
    /// Under TCG the guest calibrates its TSC against an emulated PIT; with
    /// the host's CPUs busy that fails ("Unable to calibrate against PIT",
    /// TSC marked unstable) and the guest then spins for good (3 of 8 boots
    /// beside one busy loop here). Told the frequency, it does not
    /// calibrate (10 of 10 boots beside the same loop).
    pub fn tcg() -> Result<Vm> {
        Ok(Vm {
            kernel: Vm::kernel()?,
            accel: "TCG",
            accel_args: "-accel tcg".into(),
            kernel_args: host_tsc_khz()
                .map(|khz| format!(" tsc_early_khz={khz} tsc=reliable"))
                .unwrap_or_default(),
            memory_mib: 256,
        })
    }

    /// The kernel's release (`6.1.0-57-cloud-amd64`), from its file name:
    /// where its modules are.
    pub fn release(&self) -> String {
        self.kernel
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches("vmlinuz-")
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// The shell command that boots `initrd`, its console on `serial`
    /// (`stdio`, or `none` when only the time counts), ended after
    /// `seconds` whatever the guest does.
    pub fn command(&self, initrd: &Path, serial: &str, seconds: u32) -> String {
        format!(
            "timeout {seconds} qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off {} -m {} \
             -nodefaults -no-user-config -display none -serial {serial} -no-reboot \
             -kernel {} -initrd {} -append 'console=ttyS0 quiet panic=-1 pci=off no_timer_check{}'",
            self.accel_args,
            self.memory_mib,
            self.kernel.display(),
            initrd.display(),
            self.kernel_args
        )
    }
}

/// The host's TSC frequency in kHz, as /proc/cpuinfo's first `cpu MHz`.
pub fn host_tsc_khz() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = info.lines().find_map(|l| {
        l.strip_prefix("cpu MHz")?
            .split(':')
            .nth(1)?
            .trim()
            .parse()
            .ok()
    })?;
    Some((mhz * 1000.0) as u64)
}

/// An initramfs being put together in a directory: busybox-static at
/// /bin/busybox, then what is added; [`Initramfs::pack`] makes the newc
/// cpio the kernel unpacks as its first root filesystem.
pub struct Initramfs {
    root: PathBuf,
}

impl Initramfs {
    /// Starts over in `root`.
    pub fn new(root: &Path) -> Result<Initramfs> {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root.join("bin"))?;
        let made = Initramfs {
            root: root.to_path_buf(),
        };
        made.file(Path::new("/usr/bin/busybox"), "/bin/busybox")
            .context("busybox-static's /usr/bin/busybox")?;
        Ok(made)
    }

    fn at(&self, guest: &str) -> Result<PathBuf> {
        let path = self.root.join(guest.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(path)
    }

    /// `host`'s file at `guest`, with its mode (a setuid bit too).
    pub fn file(&self, host: &Path, guest: &str) -> Result<()> {
        let to = self.at(guest)?;
        std::fs::copy(host, &to)
            .with_context(|| format!("copying {} into the initramfs", host.display()))?;
        let mode = std::fs::metadata(host)?.permissions().mode() & 0o7777;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    /// A dynamically linked program at `guest`, with the shared libraries
    /// `ldd` finds for it at their own paths.
    pub fn program(&self, host: &Path, guest: &str) -> Result<()> {
        self.file(host, guest)?;
        let out = Command::new("ldd")
            .arg(host)
            .output()
            .context("running ldd")?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x…)".
            let path = line
                .split("=>")
                .last()
                .and_then(|r| r.split_whitespace().next())
                .filter(|p| p.starts_with('/'));
            if let Some(lib) = path {
                if !self.root.join(lib.trim_start_matches('/')).exists() {
                    self.file(Path::new(lib), lib)?;
                }
            }
        }
        Ok(())
    }

    /// Kernel module `name` (`overlay`) of `vm`'s kernel at
    /// `/lib/modules/NAME.ko`, for the init to `insmod`.
    pub fn module(&self, vm: &Vm, name: &str) -> Result<String> {
        let dir = PathBuf::from("/lib/modules").join(vm.release());
        let found = Command::new("find")
            .arg(&dir)
            .args(["-name", &format!("{name}.ko")])
            .output()
            .context("running find")?;
        let found = String::from_utf8_lossy(&found.stdout);
        let Some(path) = found.lines().next() else {
            bail!("no {name}.ko under {}", dir.display());
        };
        let guest = format!("/lib/modules/{name}.ko");
        self.file(Path::new(path), &guest)?;
        Ok(guest)
    }

    /// A file of `text` at `guest`.
    pub fn text(&self, guest: &str, text: &str, mode: u32) -> Result<()> {
        let to = self.at(guest)?;
        std::fs::write(&to, text)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    /// `/init`: a busybox sh script (which installs the applets it wants
    /// with `/bin/busybox --install -s /bin`).
    pub fn init(&self, script: &str) -> Result<()> {
        self.text("/init", &format!("#!/bin/busybox sh\n{script}"), 0o755)
    }

    /// `/init` that first makes a tmpfs the root (the files copied onto it,
    /// then busybox's `switch_root`), and there runs `script`: a container
    /// engine's pivot_root(2) refuses the initramfs's own root, rootfs
    /// (EINVAL), as runc's `--no-pivot` exists for.
    pub fn init_on_tmpfs(&self, script: &str) -> Result<()> {
        self.text("/stage2", &format!("#!/bin/busybox sh\n{script}"), 0o755)?;
        self.init(
            "/bin/busybox mkdir /newroot
/bin/busybox mount -t tmpfs -o mode=755 root /newroot
for f in /*; do
    case $f in /newroot|/proc|/sys|/dev) ;; *) /bin/busybox cp -a $f /newroot/ ;; esac
done
exec /bin/busybox switch_root /newroot /stage2
",
        )
    }

    /// Packs it all into `out`, a newc cpio.
    pub fn pack(&self, out: &Path) -> Result<PathBuf> {
        let status = Command::new("sh")
            .current_dir(&self.root)
            .arg("-c")
            .arg(format!(
                "find . | cpio -o -H newc --quiet > '{}'",
                out.display()
            ))
            .status()
            .context("running cpio")?;
        if !status.success() {
            bail!("cpio failed packing {}", self.root.display());
        }
        Ok(out.to_path_buf())
    }
}
