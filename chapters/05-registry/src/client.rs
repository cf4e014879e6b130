//! An HTTP client for one repository of one registry, speaking the
//! distribution spec's rules around plain HTTP:
//!
//! - authentication on demand: a `401` carries a challenge, which is
//!   answered (Basic, or a Bearer token from the token server, reused
//!   until it expires) and the request is sent again, once;
//! - redirects followed by us, not by the HTTP library, so the
//!   `Authorization` header is dropped whenever the next hop is another
//!   origin (blob downloads are often redirected to a storage service);
//! - retries with exponential backoff on `5xx` and connection errors;
//! - `429 Too Many Requests` reported with the rate-limit headers in words.

use crate::auth::{parse_challenge, Credentials};
use crate::reference::Reference;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ureq::http::{Request, Response};
use ureq::{Body, SendBody};

/// Hosts spoken to over plain HTTP: this machine, and any listed in
/// `MINI_DOCKER_INSECURE_REGISTRIES` (comma-separated `host:port`).
pub fn is_insecure(host: &str) -> bool {
    let bare = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    bare == "localhost"
        || bare.starts_with("127.")
        || bare == "[::1]"
        || std::env::var("MINI_DOCKER_INSECURE_REGISTRIES")
            .is_ok_and(|l| l.split(',').any(|h| h.trim() == host))
}

/// A body to send, re-creatable for retries.
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a std::path::Path),
}

/// The longest one response body may take. A connection that stalls (sends
/// nothing, closes nothing) then fails instead of hanging, and a blob
/// download resumes from where it was with `Range`; a slow but moving
/// download is cut at this mark and resumed the same way.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Client {
    agent: ureq::Agent,
    pub reference: Reference,
    base: String,
    credentials: Option<Credentials>,
    /// `pull` or `pull,push`.
    actions: String,
    authorization: Mutex<Option<(String, Option<Instant>)>>,
    /// Print every exchange (the protocol walk experiment).
    pub trace: bool,
}

fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

impl Client {
    pub fn new(reference: &Reference, push: bool) -> Result<Client, String> {
        Client::with_body_timeout(reference, push, BODY_TIMEOUT)
    }

    /// Like [`Client::new`], with another limit on receiving one response
    /// body (tests use a short one).
    pub fn with_body_timeout(
        reference: &Reference,
        push: bool,
        body_timeout: Duration,
    ) -> Result<Client, String> {
        let host = reference.api_host();
        let scheme = if is_insecure(host) { "http" } else { "https" };
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_body(Some(body_timeout))
            .build();
        Ok(Client {
            agent: config.into(),
            reference: reference.clone(),
            base: format!("{scheme}://{host}"),
            credentials: crate::auth::credentials_for(&reference.registry)?,
            actions: if push {
                "pull,push".into()
            } else {
                "pull".into()
            },
            authorization: Mutex::new(None),
            trace: false,
        })
    }

    /// Uses these credentials instead of Docker's config.
    pub fn with_credentials(mut self, c: Option<Credentials>) -> Client {
        self.credentials = c;
        self
    }

    /// `/v2/<repository>/<rest>` on this registry.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.reference.repository)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn current_authorization(&self) -> Option<String> {
        let guard = self.authorization.lock().expect("not poisoned");
        match &*guard {
            Some((_, Some(expiry))) if Instant::now() >= *expiry => None,
            Some((value, _)) => Some(value.clone()),
            None => None,
        }
        .filter(|v: &String| !v.is_empty())
    }

    // ANCHOR: authenticate
    // exercise 5.3: answer a registry's challenge, Basic or Bearer
    // builds on: 5.2
    // hint: A 401 carries WWW-Authenticate, and its scheme says how to come
    //   back. "Basic": with the user's credentials, Credentials::basic_header,
    //   on every request from now on. "Bearer": with a token that the token
    //   server named by the challenge's realm hands out (fetch_token, 5.4), as
    //   "Bearer TOKEN", until it expires.
    // hint: What to send from now on is self.authorization: the header value
    //   and, for a token, its expiry (current_authorization drops it then).
    //   Basic without credentials is an error that says how to log in; a
    //   Bearer challenge without a realm, or an unknown scheme, is an error too.
    // hint: RFC 7235 section 4.1; RFC 7617 (Basic); RFC 6750 (Bearer); the
    //   distribution spec's token authentication, "How to authenticate".
    /// Answers a challenge: sets the Authorization to use from now on.
    fn authenticate(&self, challenge_header: &str) -> Result<(), String> {
        let challenge = parse_challenge(challenge_header)?;
        let value = match challenge.scheme.as_str() {
            "basic" => {
                let c = self.credentials.as_ref().ok_or_else(|| {
                    format!("{} asks for a user name and password: log in (docker login) or add them to Docker's config.json", self.reference.registry)
                })?;
                (c.basic_header(), None)
            }
            "bearer" => {
                let realm = challenge
                    .params
                    .get("realm")
                    .ok_or("a Bearer challenge without a realm")?;
                let (token, expiry) =
                    self.fetch_token(realm, challenge.params.get("service").map(String::as_str))?;
                (format!("Bearer {token}"), Some(expiry))
            }
            other => return Err(format!("unsupported authentication scheme {other:?}")),
        };
        *self.authorization.lock().expect("not poisoned") = Some(value);
        Ok(())
    }
    // ANCHOR_END: authenticate

    // ANCHOR: fetch_token
    // exercise 5.4: ask the token server for a token for this repository
    // builds on: 5.3
    // hint: GET realm?scope=repository:REPO:ACTIONS (actions: "pull", or
    //   "pull,push"), with &service=SERVICE when the challenge named one;
    //   anonymously, or with the Basic header when there are credentials (a
    //   private image needs them, a public one does not). 200 with JSON is the
    //   answer; anything else is a refusal (wrong credentials?) that says so.
    // hint: The token is "token", or "access_token" (OAuth2's name for it). It
    //   lasts "expires_in" seconds, 60 when absent: return when it stops being
    //   good, a few seconds early, so no request is sent with a dead one.
    //   This request goes through self.agent directly, not send (no 401 loop).
    // hint: The distribution spec's token authentication ("Requesting a
    //   Token", "Token Response Fields": token, access_token, expires_in).
    /// A token for this client's repository and actions from the token
    /// server at `realm`, and when to stop using it.
    fn fetch_token(&self, realm: &str, service: Option<&str>) -> Result<(String, Instant), String> {
        let mut url = format!(
            "{realm}?scope=repository:{}:{}",
            self.reference.repository, self.actions
        );
        if let Some(service) = service {
            url.push_str(&format!("&service={service}"));
        }
        let mut request = Request::get(&url);
        if let Some(c) = &self.credentials {
            request = request.header("Authorization", c.basic_header());
        }
        if self.trace {
            eprintln!(
                "  -> GET {url}  (token request{})",
                if self.credentials.is_some() {
                    ", with Basic credentials"
                } else {
                    ", anonymous"
                }
            );
        }
        let request = request.body(()).map_err(|e| e.to_string())?;
        let mut resp = self
            .agent
            .run(request)
            .map_err(|e| format!("token server {realm}: {e}"))?;
        if resp.status() != 200 {
            return Err(format!(
                "token server {realm} refused: HTTP {} (wrong credentials?)",
                resp.status()
            ));
        }
        let body: serde_json::Value = serde_json::from_str(
            &resp
                .body_mut()
                .read_to_string()
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("token server {realm} sent invalid JSON: {e}"))?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .ok_or("the token server sent no token")?;
        // Tokens last expires_in seconds (60 when not said); renew a little early.
        let lifetime = body["expires_in"].as_u64().unwrap_or(60).max(10);
        if self.trace {
            eprintln!("  <- token for {lifetime} s");
        }
        Ok((
            token.to_string(),
            Instant::now() + Duration::from_secs(lifetime - 5),
        ))
    }
    // ANCHOR_END: fetch_token

    /// Sends a request, handling auth, redirects, retries and rate limits.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload,
    ) -> Result<Response<Body>, String> {
        let mut url = url.to_string();
        let mut authenticated_once = false;
        let mut redirects = 0;
        let mut attempt = 0u32;
        loop {
            let same_origin = origin(&url) == self.base;
            let mut request = Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let auth = self.current_authorization().filter(|_| same_origin);
            if let Some(a) = &auth {
                request = request.header("Authorization", a.as_str());
            }
            let file;
            let body = match &payload {
                Payload::Empty => SendBody::none(),
                Payload::Bytes(b) => SendBody::from_owned_reader(std::io::Cursor::new(b.to_vec())),
                Payload::File(p) => {
                    file = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    let len = file.metadata().map_err(|e| e.to_string())?.len();
                    request = request.header("Content-Length", len.to_string());
                    SendBody::from_owned_reader(file)
                }
            };
            if let Payload::Bytes(b) = &payload {
                request = request.header("Content-Length", b.len().to_string());
            }
            let request = request
                .body(body)
                .map_err(|e| format!("building {method} {url}: {e}"))?;
            if self.trace {
                eprintln!(
                    "-> {method} {url}{}",
                    if auth.is_some() {
                        "  (with Authorization)"
                    } else {
                        ""
                    }
                );
            }
            let result = self.agent.run(request);
            let retryable =
                result.is_err() || matches!(&result, Ok(r) if r.status().is_server_error());
            if retryable && attempt < 4 && !matches!(payload, Payload::Empty if method == "POST") {
                attempt += 1;
                let wait = Duration::from_millis(100 << attempt);
                if self.trace {
                    eprintln!(
                        "<- {}; retry {attempt} in {wait:?}",
                        match &result {
                            Ok(r) => format!("HTTP {}", r.status()),
                            Err(e) => e.to_string(),
                        }
                    );
                }
                std::thread::sleep(wait);
                continue;
            }
            let resp =
                result.map_err(|e| format!("{method} {url}: {e} (is the registry reachable?)"))?;
            let status = resp.status().as_u16();
            if self.trace {
                let digest = header(&resp, "docker-content-digest")
                    .map(|d| format!("  Docker-Content-Digest: {d}"))
                    .unwrap_or_default();
                eprintln!("<- HTTP {status}{digest}");
            }
            match status {
                300..=399 if status != 304 => {
                    let location = header(&resp, "location").ok_or_else(|| format!("{method} {url}: HTTP {status} without Location"))?;
                    redirects += 1;
                    if redirects > 5 {
                        return Err(format!("{method} {url}: more than 5 redirects"));
                    }
                    url = if location.starts_with("http://") || location.starts_with("https://") {
                        location
                    } else {
                        format!("{}{}", origin(&url), location)
                    };
                }
                401 if !authenticated_once && same_origin => {
                    let challenge = header(&resp, "www-authenticate")
                        .ok_or_else(|| format!("{method} {url}: 401 without a WWW-Authenticate challenge"))?;
                    self.authenticate(&challenge)?;
                    authenticated_once = true;
                }
                401 => {
                    return Err(format!(
                        "{method} {url}: unauthorized even after authenticating: the credentials for {} are wrong, or do not allow {}",
                        self.reference.registry, self.actions
                    ))
                }
                429 => {
                    let h = |n| header(&resp, n).unwrap_or_else(|| "?".into());
                    return Err(format!(
                        "{} refused: too many requests (HTTP 429). Limit {}, remaining {}, retry after {} s. \
                         Docker Hub limits anonymous pulls per IP address; log in, or wait.",
                        self.reference.registry,
                        h("ratelimit-limit"),
                        h("ratelimit-remaining"),
                        h("retry-after")
                    ));
                }
                _ => return Ok(resp),
            }
        }
    }
}

/// The registry's error message from a non-success response, in words.
pub fn describe_error(what: &str, mut resp: Response<Body>) -> String {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errs| {
                errs.iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e["code"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    format!(
        "{what}: HTTP {status}{}",
        if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        }
    )
}
