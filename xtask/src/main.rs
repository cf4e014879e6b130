//! Course tooling, run as `cargo xtask <command>`:
//!
//! - `up`: install what the project needs, build, prepare the fixture
//!   image, then run the main job (today: chapter 01's isolated shell).
//! - `test`: everything CI checks (format, lints, tests, verify, book).
//! - `student DIR`, `grade [ID|CHAPTER]`, `hint ID [--more]`: the learner's loop.
//! - `verify`: proves the grading honest (see [`verify`]).
//! - `doctor`: what this host can and cannot do, in plain words.
//! - `fixture`, `install`, `book`: the single steps.
//! - `bench unpack`: our code against its peers, as ratios (not a test).

mod bench;
mod book;
mod chapters;
mod doctor;
mod experiments;
mod grade;
mod install;
mod regions;
mod report;
mod verify;
mod workspace;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::Command;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "build-your-own-docker course tooling")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Set everything up (packages, build, fixture image), then run the main job
    Up {
        /// Set up only; do not start the isolated shell
        #[arg(long)]
        no_run: bool,
    },
    /// Run everything CI runs: fmt, clippy, all tests, verify, the book
    Test,
    /// Write a learner workspace with every exercise stubbed out
    Student {
        /// Where to write it (must not exist, or be empty)
        dir: PathBuf,
    },
    /// Run the graded tests and show the scoreboard
    Grade {
        /// One exercise (1.3) or one chapter (2); all when left out
        what: Option<String>,
    },
    /// Print an exercise's task and its first hint; --more shows the next
    Hint {
        /// Exercise id, e.g. 1.3
        id: String,
        /// Show one more hint than last time
        #[arg(long)]
        more: bool,
    },
    /// Prove the grading honest: solution passes, student workspace compiles,
    /// each exercise's tests fail when only it is stubbed
    Verify,
    /// Check this host: privileges, namespaces, cgroups, overlayfs, NAT tools
    Doctor,
    /// Build the fixture image (busybox + facts) under target/fixture
    Fixture,
    /// Install the Debian packages and tools the project needs (root)
    Install,
    /// Check the book's includes and build it
    Book,
    /// Time our code against its peers on this machine (not a test)
    Bench {
        /// What to time: start, near-native, density, unpack, pull, build
        /// [default: all of them, one after the other]
        what: Option<String>,
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// `start` only: also time mini-docker as built from this git
        /// revision (e.g. the commit before a change), side by side
        #[arg(long)]
        baseline: Option<String>,
        /// `density`: how many idle containers
        #[arg(long, default_value_t = 100)]
        n: u32,
        /// `density`: this many idle microVMs, instead of as many as fit
        /// in --vm-budget
        #[arg(long)]
        vm_n: Option<u32>,
        /// `density`: MiB of memory to fill with idle microVMs
        #[arg(long, default_value_t = 1024)]
        vm_budget: u64,
        /// Then copy the latest tables into the book's measured pages
        #[arg(long)]
        book: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Up { no_run } => up(no_run),
        Cmd::Test => test(),
        Cmd::Student { dir } => workspace::write_student(&dir),
        Cmd::Grade { what } => grade::grade(what.as_deref()),
        Cmd::Hint { id, more } => hint(&id, more),
        Cmd::Verify => verify::verify(),
        Cmd::Doctor => doctor::doctor(),
        Cmd::Fixture => fixture().map(|_| ()),
        Cmd::Install => install::install(),
        Cmd::Book => book::build(),
        Cmd::Bench {
            what,
            runs,
            baseline,
            n,
            vm_n,
            vm_budget,
            book,
        } => {
            let vms = match vm_n {
                Some(n) => bench::VmCount::N(n),
                None => bench::VmCount::Budget(vm_budget << 20),
            };
            bench::bench(what.as_deref(), runs, baseline.as_deref(), n, vms, book)
        }
    };
    if let Err(err) = result {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

/// Runs a command, echoing it first; fails with its status.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

pub fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

fn fixture() -> Result<PathBuf> {
    let rootfs = testkit::fixture::build()?;
    eprintln!("fixture image ready: {}", rootfs.display());
    Ok(rootfs)
}

fn up(no_run: bool) -> Result<()> {
    step("installing packages");
    install::install()?;
    step("building the workspace");
    run(cargo().args(["build", "--workspace"]))?;
    step("preparing the fixture image");
    fixture()?;
    if no_run {
        return Ok(());
    }
    let root = testkit::workspace_root();
    let dir = root.join("target/mini-docker");
    let socket = dir.join("mini-docker.sock");
    let host = format!("unix://{}", socket.display());
    let daemon = if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        step("chapter 06: mini-dockerd already answers on target/mini-docker/mini-docker.sock");
        None
    } else {
        step("chapter 06: starting mini-dockerd (root target/mini-docker/root, log target/mini-docker/daemon.log)");
        let store = dir.join("root/images");
        let have = Command::new(root.join("target/debug/chapter-04"))
            .arg("--store")
            .arg(&store)
            .args(["inspect", "docker.io/library/fixture:latest"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !have {
            run(Command::new(root.join("target/debug/chapter-04"))
                .arg("--store")
                .arg(&store)
                .args(["import", "docker.io/library/fixture:latest"]))?;
        }
        use std::os::unix::process::CommandExt;
        let child = Command::new(root.join("target/debug/mini-dockerd"))
            .arg("--root")
            .arg(dir.join("root"))
            .args(["-H", &host, "--log-file"])
            .arg(dir.join("daemon.log"))
            .process_group(0)
            .spawn()?;
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(child)
    };
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    step(&format!(
        "mini-docker run {} --rm fixture: a busybox shell in its own namespaces, cgroup and overlay (exit to leave)",
        if tty { "-it" } else { "-i" }
    ));
    eprintln!("   (in another terminal: target/debug/mini-docker -H {host} ps)");
    let status = Command::new(root.join("target/debug/mini-docker"))
        .args([
            "-H",
            &host,
            "run",
            if tty { "-it" } else { "-i" },
            "--rm",
            "fixture",
        ])
        .args(["sh", "-c", "facts --human; exec sh"])
        .status()?;
    if let Some(mut child) = daemon {
        // SAFETY: SIGTERM to the daemon we started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
    std::process::exit(status.code().unwrap_or(1));
}

fn test() -> Result<()> {
    let root = testkit::workspace_root();
    if let Ok(fs) = nix::sys::statvfs::statvfs(&root) {
        let free = fs.blocks_available() as f64 * fs.fragment_size() as f64;
        // A clean run took 1.7 GiB before verify (the test build and clippy's),
        // and verify adds its two builds one at a time (freed under CI).
        eprintln!(
            "disk: {:.1} GiB free at {} (a clean run needs about 4)",
            free / (1u64 << 30) as f64,
            root.display()
        );
    }
    step("fixture image");
    fixture()?;
    step("formatting");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("lints");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("all tests");
    let (passed, failed) = run_tests()?;
    step("verify the grading");
    verify::verify()?;
    step("the book");
    book::build()?;
    eprintln!("\nall checks passed");
    println!("{passed} passed, {failed} failed");
    Ok(())
}

/// `cargo test --workspace`, its output passed through, its results added up.
fn run_tests() -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {}", show(&cmd));
    let mut child = cmd.spawn().context("starting cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some((p, f)) = parse_test_result(&line) {
            passed += p;
            failed += f;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("tests failed: {passed} passed, {failed} failed ({status})");
    }
    Ok((passed, failed))
}

/// `test result: ok. 14 passed; 0 failed; 0 ignored; …` → (14, 0).
fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(word)
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Some((count(" passed")?, count(" failed")?))
}

fn hint(id: &str, more: bool) -> Result<()> {
    let root = testkit::workspace_root();
    let exercises = regions::find_all(&root.join("chapters"))?;
    let Some(ex) = exercises.iter().find(|e| e.id == id) else {
        let ids: Vec<&str> = exercises.iter().map(|e| e.id.as_str()).collect();
        bail!("no exercise {id:?}; the exercises are {}", ids.join(", "));
    };
    let mut progress = grade::Progress::load(&root);
    let shown = progress.hints_shown(id).max(1);
    let shown = if more { shown + 1 } else { shown }.min(ex.hints.len().max(1));
    progress.set_hints_shown(id, shown);
    progress.save()?;
    let file = ex.file.strip_prefix(&root).unwrap_or(&ex.file);
    println!("exercise {}: {}", ex.id, ex.title);
    println!("where:    {}:{}", file.display(), ex.line);
    if !ex.builds_on.is_empty() {
        println!("builds on: {}", ex.builds_on.join(", "));
    }
    println!(
        "graded:   cargo xtask grade {}   (or: cargo test -p chapter-{:02} --tests {})",
        ex.id,
        ex.chapter(),
        ex.test_prefix()
    );
    for (i, h) in ex.hints.iter().take(shown).enumerate() {
        println!("hint {}/{}: {h}", i + 1, ex.hints.len());
    }
    if shown < ex.hints.len() {
        println!("(cargo xtask hint {id} --more for the next hint)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn libtest_summaries_are_added_up() {
        let ok = "test result: ok. 14 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2.54s";
        assert_eq!(super::parse_test_result(ok), Some((14, 0)));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(super::parse_test_result(bad), Some((3, 2)));
        assert_eq!(super::parse_test_result("running 3 tests"), None);
    }
}
