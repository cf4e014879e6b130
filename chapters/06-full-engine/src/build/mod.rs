//! `docker build`: a Dockerfile becomes an image, one instruction a step,
//! each step's image the base of the next.
//!
//! - [`dockerfile`]: the grammar (directives, continuations, flags, forms);
//! - [`words`]: quotes and `$VAR` substitution;
//! - [`ignore`], for `.dockerignore`;
//! - [`cache`]: the key that lets a step be skipped;
//! - [`next_image`] (here): a step's image from its parent's.
//!
//! The steps themselves (RUN in a container of this engine, COPY into a
//! layer, the stream the client shows) are the daemon's:
//! `daemon/build.rs`.

pub mod cache;
pub mod dockerfile;
pub mod ignore;
pub mod words;

use chapter_04::digest::Digest;
use chapter_04::manifest::{ContainerConfig, Descriptor, ImageConfig};

/// The shell of the shell form when the Dockerfile names none.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

// ANCHOR: next_image
// exercise 6.16: a step's image: the parent's, with the step's layer on top
// hint: Every step of a build makes an image, and the next step starts
//   from it: the article's "each layer the base of the next". A step that
//   changed files (RUN, COPY) brings a layer (its blob's descriptor and its
//   DiffID, the digest of the uncompressed tar chapter 03's diff wrote); a
//   step that changed only the config (ENV, CMD, …) brings none.
// hint: Start from a copy of the parent's config. The layer goes on top:
//   pushed last onto the layers and onto rootfs.diff_ids (both bottom
//   first, and always the same length). The run-time config becomes `run`;
//   `created` is `created`. History gets one entry for this step:
//   {"created": …, "created_by": …}, plus "empty_layer": true when there is
//   no layer (a client counts the history entries without it to pair them
//   with the layers).
// hint: The OCI image spec, config.md ("rootfs", "history", "empty_layer");
//   manifest.md ("layers": base first).
pub fn next_image(
    parent: &ImageConfig,
    parent_layers: &[Descriptor],
    layer: Option<(Descriptor, Digest)>,
    run: ContainerConfig,
    created_by: &str,
    created: &str,
) -> (ImageConfig, Vec<Descriptor>) {
    let mut config = parent.clone();
    let mut layers = parent_layers.to_vec();
    let mut entry = serde_json::json!({"created": created, "created_by": created_by});
    match layer {
        Some((descriptor, diff_id)) => {
            layers.push(descriptor);
            config.rootfs.diff_ids.push(diff_id);
        }
        None => {
            entry["empty_layer"] = serde_json::Value::Bool(true);
        }
    }
    config.history.push(entry);
    config.config = Some(run);
    config.created = Some(created.to_string());
    (config, layers)
}
// ANCHOR_END: next_image

/// Refuses a flag the instruction does not take, naming those it does.
pub fn check_flags(ins: &dockerfile::Instruction, allowed: &[&str]) -> Result<(), String> {
    for (name, _) in &ins.flags {
        if !allowed.contains(&name.as_str()) {
            let known = if allowed.is_empty() {
                "it takes none".to_string()
            } else {
                format!("it takes --{}", allowed.join(", --"))
            };
            return Err(format!("{} does not take --{name}: {known}", ins.keyword));
        }
    }
    Ok(())
}

/// `NAME=value …` pairs of ENV and LABEL (or the old `NAME value` form),
/// each side substituted against the variables before the instruction.
pub fn pairs(
    ins: &dockerfile::Instruction,
    vars: &words::Vars,
    escape: char,
) -> Result<Vec<(String, String)>, String> {
    let raw = words::raw_words(&ins.rest, escape);
    let Some(first) = raw.first() else {
        return Err(format!("{} needs at least one NAME=value", ins.keyword));
    };
    if !first.contains('=') {
        let (name, value) = ins.rest.split_once(char::is_whitespace).ok_or_else(|| {
            format!(
                "{} {first}: the value is missing (write {first}=value)",
                ins.keyword
            )
        })?;
        return Ok(vec![(
            words::expand(name, vars, escape)?,
            words::expand(value.trim(), vars, escape)?,
        )]);
    }
    raw.iter()
        .map(|w| {
            let (k, v) = w.split_once('=').ok_or_else(|| {
                format!(
                    "{}: {w:?} is not NAME=value (quote a value with blanks)",
                    ins.keyword
                )
            })?;
            let k = words::expand(k, vars, escape)?;
            if k.is_empty() {
                return Err(format!("{}: {w:?} has no name", ins.keyword));
            }
            Ok((k, words::expand(v, vars, escape)?))
        })
        .collect()
}

/// Sets `NAME=value` in an environment list, replacing an earlier value.
pub fn set_env(env: &mut Vec<String>, name: &str, value: &str) {
    let entry = format!("{name}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// The variables an instruction's words see: the build's ARGs, and the
/// config's ENV over them (an ENV always wins over an ARG of its name).
pub fn vars_of(run: &ContainerConfig, args: &words::Vars) -> words::Vars {
    let mut vars = args.clone();
    for e in run.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    vars
}

/// What an instruction that changes only the config does to it (ENV,
/// LABEL, EXPOSE, VOLUME, USER, WORKDIR, CMD, ENTRYPOINT, STOPSIGNAL,
/// SHELL, HEALTHCHECK). `cmd_set` says whether CMD was given in this
/// stage: an ENTRYPOINT clears a CMD inherited from the base image.
/// Used by the builder and by `commit --change`.
pub fn apply_config(
    ins: &dockerfile::Instruction,
    run: &mut ContainerConfig,
    vars: &words::Vars,
    escape: char,
    cmd_set: &mut bool,
) -> Result<(), String> {
    use dockerfile::Command;
    let shell = run.shell.clone().unwrap_or_else(default_shell);
    let one = |what: &str| -> Result<String, String> {
        let v = words::expand(&ins.rest, vars, escape)?;
        if v.is_empty() {
            return Err(format!("{} needs {what}", ins.keyword));
        }
        Ok(v)
    };
    if ins.keyword != "HEALTHCHECK" {
        check_flags(ins, &[])?;
    }
    match ins.keyword.as_str() {
        "ENV" => {
            let mut env = run.env.clone().unwrap_or_default();
            for (k, v) in pairs(ins, vars, escape)? {
                set_env(&mut env, &k, &v);
            }
            run.env = Some(env);
        }
        "LABEL" => {
            let labels = run.labels.get_or_insert_with(Default::default);
            for (k, v) in pairs(ins, vars, escape)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = run.exposed_ports.get_or_insert_with(Default::default);
            for word in words::words(&ins.rest, vars, escape)? {
                let (range, proto) = word.split_once('/').unwrap_or((&word, "tcp"));
                let proto = proto.to_ascii_lowercase();
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                let bad = || format!("EXPOSE {word}: a port is a number from 1 to 65535, optionally /tcp, /udp or /sctp");
                let (lo, hi): (u16, u16) = (lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?);
                if lo == 0 || hi < lo || !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
                    return Err(bad());
                }
                for p in lo..=hi {
                    ports.insert(format!("{p}/{proto}"), serde_json::json!({}));
                }
            }
            if ports.is_empty() {
                return Err("EXPOSE needs at least one port".into());
            }
        }
        "VOLUME" => {
            let paths = match Command::parse(&ins.rest) {
                Command::Exec(paths) => paths,
                Command::Shell(_) => words::words(&ins.rest, vars, escape)?,
            };
            if paths.is_empty() || paths.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME needs at least one path".into());
            }
            let volumes = run.volumes.get_or_insert_with(Default::default);
            for p in paths {
                volumes.insert(p, serde_json::json!({}));
            }
        }
        "USER" => run.user = Some(one("a user (name or uid, optionally :group)")?),
        "WORKDIR" => {
            let path = one("a path")?;
            let base = run.working_dir.clone().unwrap_or_else(|| "/".into());
            let joined = if path.starts_with('/') {
                path
            } else {
                format!("{base}/{path}")
            };
            run.working_dir = Some(format!("/{}", ignore::clean(&joined)));
        }
        "CMD" => {
            run.cmd = Some(Command::parse(&ins.rest).argv(&shell));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            run.entrypoint = Some(Command::parse(&ins.rest).argv(&shell));
            if !*cmd_set {
                run.cmd = None;
            }
        }
        "STOPSIGNAL" => {
            let signal = one("a signal (SIGTERM, 15, …)")?;
            chapter_04::runconfig::parse_signal(&signal)?;
            run.stop_signal = Some(signal);
        }
        "SHELL" => match Command::parse(&ins.rest) {
            Command::Exec(words) if !words.is_empty() => run.shell = Some(words),
            _ => {
                return Err(
                    "SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]".into(),
                )
            }
        },
        "HEALTHCHECK" => {
            check_flags(ins, &["interval", "timeout", "start-period", "start-interval", "retries"])?;
            let mut check = chapter_04::manifest::Healthcheck::default();
            if ins.rest.eq_ignore_ascii_case("NONE") {
                if !ins.flags.is_empty() {
                    return Err("HEALTHCHECK NONE takes no flags".into());
                }
                check.test = vec!["NONE".into()];
            } else {
                let (word, command) = ins
                    .rest
                    .split_once(char::is_whitespace)
                    .unwrap_or((&ins.rest, ""));
                if !word.eq_ignore_ascii_case("CMD") || command.trim().is_empty() {
                    return Err("HEALTHCHECK takes NONE, or CMD and a command".into());
                }
                check.test = match Command::parse(command) {
                    Command::Exec(words) => std::iter::once("CMD".to_string()).chain(words).collect(),
                    Command::Shell(text) => vec!["CMD-SHELL".into(), text],
                };
                for (name, value) in &ins.flags {
                    let slot = match name.as_str() {
                        "interval" => &mut check.interval,
                        "timeout" => &mut check.timeout,
                        "start-period" => &mut check.start_period,
                        "start-interval" => &mut check.start_interval,
                        _ => {
                            check.retries = value.parse().map_err(|_| {
                                format!("HEALTHCHECK --retries={value}: a whole number")
                            })?;
                            continue;
                        }
                    };
                    *slot = parse_duration(value)
                        .map_err(|e| format!("HEALTHCHECK --{name}: {e}"))?;
                }
            }
            run.healthcheck = Some(check);
        }
        "ONBUILD" => {
            return Err("ONBUILD is not supported by mini-docker's builder: write the instructions into the Dockerfiles that build on this image".into())
        }
        other => return Err(format!("{other} does not change the config")),
    }
    Ok(())
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `1h`) in nanoseconds, as
/// HEALTHCHECK's flags are written.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad =
        || format!("invalid duration {text:?}: use a number and a unit, e.g. 30s, 1m30s, 500ms");
    if text == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 s").is_err());
    }
}
