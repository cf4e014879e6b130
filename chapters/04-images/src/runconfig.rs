//! What a container will run, computed from the image's config and the
//! user's overrides, by Docker's rules. Chapter 06 hands this to chapter 01.

use crate::manifest::ContainerConfig;
use std::path::Path;

/// What the user said on the command line (`docker run` flags).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--entrypoint`; `Some(vec![])` is `--entrypoint ""` (none at all).
    pub entrypoint: Option<Vec<String>>,
    /// The arguments after the image name; `None` when there were none.
    pub cmd: Option<Vec<String>>,
    /// `-e KEY=VALUE` (and `-e KEY`, taken from this process's environment).
    pub env: Vec<String>,
    /// `-w`
    pub workdir: Option<String>,
    /// `-u user[:group]`
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: nix::sys::signal::Signal,
}

// ANCHOR: command_line
// exercise 4.9: merge entrypoint and cmd as Docker does
// hint: The image says what to run in two parts: ENTRYPOINT (the program)
//   and CMD (its default arguments, or the whole command without an
//   entrypoint). The command line is the entrypoint followed by the cmd.
// hint: Arguments after the image name replace the image's cmd; --entrypoint
//   replaces the image's entrypoint AND drops its cmd (only the user's
//   arguments remain: Some(vec![]) is `--entrypoint ""`, none at all). Nothing
//   to run at all is an error saying how to give a command.
// hint: Docker's Dockerfile reference, "Understand how CMD and ENTRYPOINT
//   interact" (the table); docker-run(1) --entrypoint.
pub fn command_line(image: &ContainerConfig, o: &Overrides) -> Result<Vec<String>, String> {
    let (entrypoint, cmd) = match &o.entrypoint {
        Some(ep) => (ep.clone(), o.cmd.clone().unwrap_or_default()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            o.cmd
                .clone()
                .or_else(|| image.cmd.clone())
                .unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(
            "no command: the image has no Entrypoint or Cmd; give one after the image name".into(),
        );
    }
    Ok(args)
}
// ANCHOR_END: command_line

// ANCHOR: environment
// exercise 4.10: the container's environment: the image's, with the user's on top
// hint: The image's Env is a list of "KEY=value"; each -e replaces the
//   image's entry of the same key (or adds one). `-e KEY` without '=' takes
//   KEY's value from this process's environment, and drops it if unset.
// hint: Keys compare up to the first '='. The order is the image's, then new
//   keys in the order given. A container always has a PATH: if neither side
//   set one, put Docker's default first.
// hint: docker-run(1) "-e, --env"; the OCI image spec, config.md "Env".
/// The image's environment with the user's on top; PATH always set.
pub fn environment(image: &ContainerConfig, o: &Overrides) -> Vec<String> {
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for item in &o.env {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (item.clone(), std::env::var(item).ok()),
        };
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        if let Some(v) = value {
            env.push(format!("{key}={v}"));
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env
}
// ANCHOR_END: environment

/// Reads a file of the image (`etc/passwd`) without following a symlink
/// out of the rootfs: a link anywhere on the path counts as no file.
fn read_image_file(rootfs: &Path, rel: &str) -> Option<String> {
    let mut at = rootfs.to_path_buf();
    for part in rel.split('/') {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at).ok()?;
        if meta.file_type().is_symlink() {
            return None;
        }
    }
    std::fs::read_to_string(at).ok()
}

// ANCHOR: resolve_user
// exercise 4.11: resolve `-u` / the image's User into numeric IDs
// hint: The kernel knows only numbers; "nginx" or "1000:staff" is resolved
//   by the image's own files: etc/passwd (name:x:uid:gid:…) and etc/group
//   (name:x:gid:…), read with read_image_file (which never follows a symlink
//   out of the rootfs). "" means root, 0:0.
// hint: "user" or "user:group", each a number (used as is) or a name (looked
//   up). Without a group the gid is the user's primary group from passwd (0 if
//   the uid has no entry). An unknown name is an error naming it and the file.
// hint: passwd(5), group(5); docker-run(1) "-u, --user"; the OCI image spec,
//   config.md "User".
pub fn resolve_user(spec: &str, rootfs: &Path) -> Result<(u32, u32), String> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let passwd = read_image_file(rootfs, "etc/passwd").unwrap_or_default();
    let group = read_image_file(rootfs, "etc/group").unwrap_or_default();
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(':').map(String::from).collect())
            .collect()
    };
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = entries(&passwd);
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => {
            let primary = users
                .iter()
                .find(|f| f.get(2).and_then(|v| v.parse().ok()) == Some(uid));
            (
                uid,
                primary.and_then(|f| f.get(3)?.parse().ok()).unwrap_or(0),
            )
        }
        Err(_) => {
            let f = users
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(user))
                .ok_or_else(|| format!("unknown user {user:?}: not in the image's /etc/passwd"))?;
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
            (
                num(2).ok_or("malformed /etc/passwd line")?,
                num(3).ok_or("malformed /etc/passwd line")?,
            )
        }
    };
    let gid = match grp {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => entries(&group)
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(g))
                .and_then(|f| f.get(2)?.parse().ok())
                .ok_or_else(|| format!("unknown group {g:?}: not in the image's /etc/group"))?,
        },
    };
    Ok((uid, gid))
}
// ANCHOR_END: resolve_user

/// `SIGTERM`, `TERM` or `15` → the signal.
pub fn parse_signal(text: &str) -> Result<nix::sys::signal::Signal, String> {
    use std::str::FromStr;
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| format!("unknown signal number {n}"));
    }
    let name = if t.starts_with("SIG") {
        t.to_string()
    } else {
        format!("SIG{t}")
    };
    nix::sys::signal::Signal::from_str(&name.to_ascii_uppercase())
        .map_err(|_| format!("unknown signal {text:?}"))
}

/// Everything together. `rootfs` is the unpacked image, for user lookups.
pub fn compute(image: &ContainerConfig, o: &Overrides, rootfs: &Path) -> Result<RunConfig, String> {
    let workdir = o
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or("/".into());
    if !workdir.starts_with('/') {
        return Err(format!("working directory {workdir:?} must be absolute"));
    }
    let user = o
        .user
        .clone()
        .or_else(|| image.user.clone())
        .unwrap_or_default();
    let (uid, gid) = resolve_user(&user, rootfs)?;
    let keys = |m: &Option<std::collections::BTreeMap<String, serde_json::Value>>| {
        m.as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    Ok(RunConfig {
        args: command_line(image, o)?,
        env: environment(image, o),
        workdir,
        uid,
        gid,
        exposed_ports: keys(&image.exposed_ports),
        volumes: keys(&image.volumes),
        stop_signal: parse_signal(image.stop_signal.as_deref().unwrap_or("SIGTERM"))?,
    })
}
