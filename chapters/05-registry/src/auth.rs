//! Who may pull and push. A registry answers an unauthenticated request
//! with `401` and a `WWW-Authenticate` challenge:
//!
//! - `Basic realm="…"`: send `Authorization: Basic base64(user:password)`;
//! - `Bearer realm="https://auth…",service="registry…",scope="repository:library/busybox:pull"`:
//!   ask the token server at `realm` for a token (anonymously for public
//!   images, with Basic credentials otherwise), then send
//!   `Authorization: Bearer TOKEN` until it expires.
//!
//! Credentials come from Docker's own `~/.docker/config.json`: `auths`
//! (base64 `user:password`), or a credential helper program
//! (`credHelpers` per registry, `credsStore` for all).

use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer` (lowercased).
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

// ANCHOR: parse_challenge
// exercise 5.2: parse a WWW-Authenticate challenge
// hint: A registry says how to authenticate in one header: a scheme, then
//   comma-separated key=value parameters: `Bearer realm="https://auth/token",
//   service="registry",scope="repository:library/busybox:pull"`.
// hint: Values may be "quoted", and a quoted value may hold commas and \"
//   escapes: splitting on ',' breaks it, so walk the characters. Scheme and
//   keys are case-insensitive (lowercase them); an unterminated quote is an
//   error that quotes the header.
// hint: RFC 7235 section 4.1 (WWW-Authenticate) and 2.1 (auth-param).
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return Err(format!("empty WWW-Authenticate challenge {header:?}"));
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!(
                    "unterminated quoted value for {key:?} in {header:?}"
                ));
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key, value);
    }
    Ok(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}
// ANCHOR_END: parse_challenge

/// A user name and password (or identity token) for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl Credentials {
    // ANCHOR: basic_header
    /// `Basic base64(user:password)` (RFC 7617).
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
    // ANCHOR_END: basic_header
}

/// Docker's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// Keys under which `auths` may list a registry.
fn auth_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == crate::reference::DOCKER_HUB {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
    }
    keys
}

/// The credentials for `registry` from Docker's config, if any.
pub fn credentials_for(registry: &str) -> Result<Option<Credentials>, String> {
    let Some(dir) = docker_config_dir() else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
    let keys = auth_keys(registry);
    let helper = keys
        .iter()
        .find_map(|k| config["credHelpers"][k].as_str())
        .or_else(|| config["credsStore"].as_str());
    if let Some(helper) = helper {
        if let Some(c) = from_helper(helper, registry)? {
            return Ok(Some(c));
        }
    }
    for key in keys {
        if let Some(auth) = config["auths"][&key]["auth"].as_str() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| format!("{}: auths.{key}.auth is not base64: {e}", path.display()))?;
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            let (user, pass) = decoded.split_once(':').ok_or_else(|| {
                format!("{}: auths.{key}.auth is not user:password", path.display())
            })?;
            return Ok(Some(Credentials {
                username: user.into(),
                secret: pass.into(),
            }));
        }
    }
    Ok(None)
}

/// Runs `docker-credential-HELPER get` with the registry on stdin.
fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, String> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = match std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Err(format!(
                "credential helper {program} (from Docker's config.json): {e}"
            ))
        }
    };
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(registry.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Ok(None); // "credentials not found"
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{program} printed invalid JSON: {e}"))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(Some(Credentials {
            username: u.into(),
            secret: s.into(),
        })),
        _ => Err(format!("{program} printed no Username/Secret")),
    }
}
