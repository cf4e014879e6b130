//! Faults only a fake server can produce: a truncated body, a lying digest,
//! a body longer than promised, a 401 loop, a redirect to another port
//! (which must not receive the credentials), 429, 500 then success, a
//! connection broken mid-blob (resumed with Range), and the Bearer token
//! dance (one token, reused). Failures are clear errors and leave the store
//! without the bad blob or any tag.

mod common;
use chapter_04::store::Store;
use chapter_05::auth::Credentials;
use chapter_05::client::Client;
use chapter_05::client::Payload;
use chapter_05::progress::Progress;
use chapter_05::{pull, Reference};
use std::sync::{Arc, Mutex};
use tiny_http::{Header, Response, Server};

/// What the fake saw: method, url, Authorization, Range.
type Log = Arc<Mutex<Vec<(String, String, Option<String>, Option<String>)>>>;

struct Fake {
    server: Arc<Server>,
    port: u16,
    log: Log,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Reply {
    Full(u16, Vec<(&'static str, String)>, Vec<u8>),
}

impl Fake {
    fn start(
        handler: impl Fn(&str, &str, Option<&str>, Option<&str>, u16) -> Reply + Send + 'static,
    ) -> Fake {
        let server = Arc::new(Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let log: Log = Arc::default();
        let (s, l) = (server.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            for req in s.incoming_requests() {
                let get = |name: &'static str| {
                    req.headers()
                        .iter()
                        .find(|h| h.field.equiv(name))
                        .map(|h| h.value.as_str().to_string())
                };
                let (auth, range) = (get("Authorization"), get("Range"));
                let (method, url) = (req.method().as_str().to_string(), req.url().to_string());
                l.lock()
                    .unwrap()
                    .push((method.clone(), url.clone(), auth.clone(), range.clone()));
                match handler(&method, &url, auth.as_deref(), range.as_deref(), port) {
                    Reply::Full(code, headers, body) => {
                        let mut resp = Response::from_data(body).with_status_code(code);
                        for (k, v) in headers {
                            resp = resp.with_header(
                                Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                            );
                        }
                        let _ = req.respond(resp);
                    }
                }
            }
        });
        Fake {
            server,
            port,
            log,
            thread: Some(thread),
        }
    }

    fn count_method(&self, method: &str, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, url, _, _)| m == method && url.contains(what))
            .count()
    }

    fn count(&self, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, url, _, _)| url.contains(what))
            .count()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The bytes of a small image: manifest, config, layer (from chapter 04).
struct Image {
    manifest: Vec<u8>,
    manifest_digest: String,
    config: Vec<u8>,
    config_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
}

fn image() -> Image {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let content = vec![b'x'; 200_000];
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "data", content.as_slice()).unwrap();
    let d = chapter_04::archive::import_rootfs_tar(
        &store,
        b.into_inner().unwrap().as_slice(),
        "img:1",
        Default::default(),
    )
    .unwrap();
    let manifest = store.read_blob(&d.digest, 1 << 20).unwrap();
    let m: chapter_04::manifest::Manifest = serde_json::from_slice(&manifest).unwrap();
    Image {
        config: store.read_blob(&m.config.digest, 1 << 20).unwrap(),
        config_digest: m.config.digest.to_string(),
        layer: store.read_blob(&m.layers[0].digest, 1 << 24).unwrap(),
        layer_digest: m.layers[0].digest.to_string(),
        manifest_digest: d.digest.to_string(),
        manifest,
    }
}

/// A well-behaved registry for `img`, unless `layer` overrides the layer blob.
fn serve(img: &Image, url: &str, layer: impl Fn(&Image) -> Reply) -> Reply {
    if url == "/v2/" {
        Reply::Full(200, vec![], vec![])
    } else if url.contains("/manifests/") {
        Reply::Full(
            200,
            vec![
                (
                    "Content-Type",
                    chapter_04::manifest::OCI_MANIFEST.to_string(),
                ),
                ("Docker-Content-Digest", img.manifest_digest.clone()),
            ],
            img.manifest.clone(),
        )
    } else if url.ends_with(&img.config_digest) {
        Reply::Full(200, vec![], img.config.clone())
    } else if url.ends_with(&img.layer_digest) {
        layer(img)
    } else {
        Reply::Full(
            404,
            vec![],
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#.to_vec(),
        )
    }
}

fn pull_from(
    port: u16,
    credentials: Option<Credentials>,
    store: &Store,
) -> Result<pull::Pulled, String> {
    pull_with(port, credentials, store, false)
}

/// A pull that also unpacks (the layer while it downloads, through a pipe).
fn pull_with(
    port: u16,
    credentials: Option<Credentials>,
    store: &Store,
    unpack: bool,
) -> Result<pull::Pulled, String> {
    let reference = Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(credentials);
    pull::pull(
        &client,
        store,
        &pull::Options {
            unpack,
            ..Default::default()
        },
        &Progress::quiet(),
    )
}

/// Pull and pull with unpacking; the second needs root (the layer's owner
/// is uid 0).
fn ways() -> Vec<bool> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        vec![false, true]
    } else {
        vec![false]
    }
}

fn snapshots(store: &Store) -> Vec<String> {
    std::fs::read_dir(store.root().join("snapshots"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn untouched(store: &Store, img: &Image) {
    assert!(
        !store.has_blob(&chapter_04::Digest::parse(&img.layer_digest).unwrap()),
        "a bad layer was stored"
    );
    assert!(
        store.tags().unwrap().is_empty(),
        "a failed pull tagged an image"
    );
    assert!(store.fsck().unwrap().is_empty());
    assert_eq!(
        snapshots(store),
        Vec::<String>::new(),
        "a bad layer was unpacked"
    );
}

#[test]
fn ex5_9_a_body_cut_short_without_resume_support_is_a_clear_error() {
    let img = Arc::new(image());
    let i = img.clone();
    let fake = Fake::start(move |_, url, _, _, _| {
        serve(&i, url, |img| {
            Reply::Full(200, vec![], img.layer[..img.layer.len() / 2].to_vec())
        })
    });
    for unpack in ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = pull_with(fake.port, None, &store, unpack).unwrap_err();
        assert!(err.contains("Range") || err.contains("expected"), "{err}");
        untouched(&store, &img);
    }
}

#[test]
fn ex5_9_a_blob_that_lies_about_its_digest_or_size_is_refused() {
    for (what, expect) in [
        ("flipped", "does not match its digest"),
        ("longer", "expected"),
    ] {
        let img = Arc::new(image());
        let i = img.clone();
        let fake = Fake::start(move |_, url, _, _, _| {
            serve(&i, url, |img| {
                let mut bytes = img.layer.clone();
                if what == "flipped" {
                    let mid = bytes.len() / 2;
                    bytes[mid] ^= 1;
                } else {
                    bytes.extend_from_slice(b"more");
                }
                Reply::Full(200, vec![], bytes)
            })
        });
        for unpack in ways() {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let err = pull_with(fake.port, None, &store, unpack).unwrap_err();
            assert!(err.contains(expect), "{what}, unpack {unpack}: {err}");
            untouched(&store, &img);
        }
    }
}

/// A storage server in plain TCP: the first request gets a third of the
/// blob, then a closed socket (or, with `stall`, an open and silent one); a
/// request with `Range: bytes=N-` gets 206 and the rest. Returns its port
/// and the Range headers it saw.
fn storage_that_breaks(blob: Vec<u8>, stall: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ranges: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut range = None;
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse::<usize>().ok();
                }
            }
            match range {
                Some(from) => {
                    seen.lock().unwrap().push(format!("bytes={from}-"));
                    let rest = &blob[from..];
                    let head = format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len());
                    let _ = stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(rest));
                }
                None => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        blob.len()
                    );
                    let _ = stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(&blob[..blob.len() / 3]));
                    if stall {
                        // Keep the socket open and say nothing more, a while.
                        let held = stream.try_clone().unwrap();
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_secs(20));
                            drop(held);
                        });
                    }
                }
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    (port, ranges)
}

/// Pulls from a fake registry whose layer download is redirected to
/// [`storage_that_breaks`]; checks the pull succeeded with exactly one
/// resumed request, from where the first connection left off.
fn pull_resumed_after(stall: bool, body_timeout: std::time::Duration) {
    let img = Arc::new(image());
    let (storage_port, ranges) = storage_that_breaks(img.layer.clone(), stall);
    let i = img.clone();
    let fake = Fake::start(move |_, url, _, _, _| {
        serve(&i, url, |_| {
            Reply::Full(
                307,
                vec![("Location", format!("http://127.0.0.1:{storage_port}/layer"))],
                vec![],
            )
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference = Reference::parse(&format!("127.0.0.1:{}/app:1", fake.port)).unwrap();
    let client = Client::with_body_timeout(&reference, false, body_timeout).unwrap();
    // Unpacked while it downloads: the resumed stream reaches the unpacker
    // whole, as one.
    let unpack = ways().contains(&true);
    pull::pull(
        &client,
        &store,
        &pull::Options {
            unpack,
            ..Default::default()
        },
        &Progress::quiet(),
    )
    .unwrap();
    assert_eq!(
        *ranges.lock().unwrap(),
        [format!("bytes={}-", img.layer.len() / 3)],
        "one resumed request"
    );
    assert!(store.has_blob(&chapter_04::Digest::parse(&img.layer_digest).unwrap()));
    if unpack {
        let snapshots = snapshots(&store);
        assert_eq!(snapshots.len(), 1, "{snapshots:?}");
        let data = store
            .root()
            .join("snapshots")
            .join(&snapshots[0])
            .join("data");
        assert_eq!(std::fs::read(data).unwrap(), vec![b'x'; 200_000]);
    }
}

#[test]
fn ex5_9_a_connection_broken_mid_blob_is_resumed_with_range() {
    pull_resumed_after(false, chapter_05::client::BODY_TIMEOUT);
}

#[test]
fn server_errors_are_retried_and_429_is_explained() {
    let img = Arc::new(image());
    let i = img.clone();
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let fake = Fake::start(move |_, url, _, _, _| {
        if url.contains("/manifests/") {
            let mut n = c.lock().unwrap();
            *n += 1;
            if *n <= 2 {
                return Reply::Full(500, vec![], b"busy".to_vec());
            }
        }
        serve(&i, url, |img| Reply::Full(200, vec![], img.layer.clone()))
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    pull_from(fake.port, None, &store).unwrap();
    assert_eq!(
        fake.count_method("GET", "/manifests/"),
        1,
        "the manifest fetched once"
    );
    assert_eq!(
        fake.count_method("HEAD", "/manifests/"),
        3,
        "two 500s, then success"
    );

    let limited = Fake::start(|_, url, _, _, _| {
        if url.contains("/manifests/") {
            Reply::Full(
                429,
                vec![
                    ("RateLimit-Limit", "100;w=21600".into()),
                    ("RateLimit-Remaining", "0;w=21600".into()),
                    ("Retry-After", "60".into()),
                ],
                vec![],
            )
        } else {
            Reply::Full(200, vec![], vec![])
        }
    });
    let err = pull_from(limited.port, None, &store).unwrap_err();
    assert!(
        err.contains("too many requests")
            && err.contains("100;w=21600")
            && err.contains("retry after 60"),
        "{err}"
    );
}

#[test]
fn a_401_loop_ends_with_a_clear_error() {
    let fake = Fake::start(|_, _, _, _, _| {
        Reply::Full(
            401,
            vec![("WWW-Authenticate", r#"Basic realm="r""#.into())],
            vec![],
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let creds = Credentials {
        username: "u".into(),
        secret: "p".into(),
    };
    let err = pull_from(fake.port, Some(creds), &store).unwrap_err();
    assert!(
        err.contains("unauthorized even after authenticating"),
        "{err}"
    );
    assert!(fake.count("/manifests/") <= 2, "retried a 401 in a loop");
}

#[test]
fn a_redirect_to_another_port_does_not_carry_the_credentials() {
    let img = Arc::new(image());
    let storage = {
        let i = img.clone();
        Fake::start(move |_, _, _, _, _| Reply::Full(200, vec![], i.layer.clone()))
    };
    let storage_port = storage.port;
    let i = img.clone();
    let registry = Fake::start(move |_, url, auth, _, _| {
        if auth != Some("Basic dTpw") {
            return Reply::Full(
                401,
                vec![("WWW-Authenticate", r#"Basic realm="r""#.into())],
                vec![],
            );
        }
        serve(&i, url, |_| {
            Reply::Full(
                307,
                vec![(
                    "Location",
                    format!("http://127.0.0.1:{storage_port}/storage/layer"),
                )],
                vec![],
            )
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    pull_from(
        registry.port,
        Some(Credentials {
            username: "u".into(),
            secret: "p".into(),
        }),
        &store,
    )
    .unwrap();
    let seen = storage.log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].2, None,
        "the Authorization header followed the redirect to another origin"
    );
}

#[test]
fn ex5_9_a_bearer_token_is_fetched_once_and_reused_through_a_pull() {
    let img = Arc::new(image());
    let i = img.clone();
    let fake = Fake::start(move |_, url, auth, _, port| {
        if url.starts_with("/token") {
            return Reply::Full(
                200,
                vec![],
                br#"{"token":"tok-1","expires_in":300}"#.to_vec(),
            );
        }
        if auth != Some("Bearer tok-1") {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:app:pull""#
            );
            return Reply::Full(401, vec![("WWW-Authenticate", challenge)], vec![]);
        }
        serve(&i, url, |img| Reply::Full(200, vec![], img.layer.clone()))
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    pull_from(fake.port, None, &store).unwrap();
    assert_eq!(fake.count("/token"), 1, "the token was not reused");
    let token_request = fake
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|(_, u, _, _)| u.starts_with("/token"))
        .unwrap()
        .1
        .clone();
    assert!(
        token_request.contains("scope=repository:app:pull")
            && token_request.contains("service=fake"),
        "{token_request}"
    );
}

#[test]
fn ex5_9_a_second_pull_resolves_the_tag_with_head_and_downloads_no_manifest() {
    let img = Arc::new(image());
    let i = img.clone();
    let fake = Fake::start(move |_, url, _, _, _| {
        serve(&i, url, |img| Reply::Full(200, vec![], img.layer.clone()))
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    pull_from(fake.port, None, &store).unwrap();
    pull_from(fake.port, None, &store).unwrap();
    assert_eq!(fake.count_method("HEAD", "/manifests/"), 2);
    assert_eq!(
        fake.count_method("GET", "/manifests/"),
        1,
        "the second pull downloaded the manifest again"
    );
    assert_eq!(
        fake.count_method("GET", &img.layer_digest),
        1,
        "the second pull downloaded the layer again"
    );
}

#[test]
fn ex5_6_a_schema1_manifest_is_refused_through_a_pull() {
    let fake = Fake::start(|_, url, _, _, _| {
        if url.contains("/manifests/") {
            let v1 = br#"{"schemaVersion":1,"name":"app","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}"#;
            Reply::Full(
                200,
                vec![(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
                )],
                v1.to_vec(),
            )
        } else {
            Reply::Full(200, vec![], vec![])
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = pull_from(fake.port, None, &store).unwrap_err();
    assert!(
        err.contains("schema 1") && err.contains("not supported"),
        "{err}"
    );
    assert!(store.tags().unwrap().is_empty());
}

#[test]
fn ex5_9_a_stalled_connection_times_out_and_the_blob_is_resumed() {
    pull_resumed_after(true, std::time::Duration::from_secs(1));
}

// ---- the steps of a pull, each on its own ------------------------------------

#[test]
fn ex5_4_a_bearer_challenge_is_answered_with_a_token_that_is_reused() {
    let fake = Fake::start(move |_, url, auth, _, port| {
        if url.starts_with("/token") {
            return Reply::Full(
                200,
                vec![],
                br#"{"access_token":"tok-9","expires_in":300}"#.to_vec(),
            );
        }
        if auth != Some("Bearer tok-9") {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:app:pull""#
            );
            return Reply::Full(401, vec![("WWW-Authenticate", challenge)], vec![]);
        }
        Reply::Full(200, vec![], b"{}".to_vec())
    });
    let reference = Reference::parse(&format!("127.0.0.1:{}/app:1", fake.port)).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(None);
    for _ in 0..3 {
        let resp = client
            .send("GET", &client.url("tags/list"), &[], Payload::Empty)
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(fake.count("/token"), 1, "the token was not reused");
    let log = fake.log.lock().unwrap();
    let token = log
        .iter()
        .find(|(_, u, _, _)| u.starts_with("/token"))
        .unwrap();
    assert!(
        token.1.contains("scope=repository:app:pull") && token.1.contains("service=fake"),
        "{}",
        token.1
    );
    assert_eq!(
        token.2, None,
        "an anonymous token request carries no credentials"
    );
    let last = log.last().unwrap();
    assert_eq!(last.2.as_deref(), Some("Bearer tok-9"));
}

#[test]
fn ex5_3_a_basic_challenge_is_answered_with_the_users_credentials() {
    let c = Credentials {
        username: "alice".into(),
        secret: "s3cret:with:colons".into(),
    };
    let expected = c.basic_header();
    assert_eq!(expected, "Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z");
    let fake = Fake::start(move |_, _, auth, _, _| {
        if auth == Some(expected.as_str()) {
            Reply::Full(200, vec![], vec![])
        } else {
            Reply::Full(
                401,
                vec![("WWW-Authenticate", r#"Basic realm="fake""#.into())],
                vec![],
            )
        }
    });
    let reference = Reference::parse(&format!("127.0.0.1:{}/app:1", fake.port)).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(Some(c));
    let resp = client
        .send("GET", &client.url("tags/list"), &[], Payload::Empty)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let anonymous = Client::new(&reference, false)
        .unwrap()
        .with_credentials(None);
    let err = anonymous
        .send("GET", &anonymous.url("tags/list"), &[], Payload::Empty)
        .expect_err("no credentials, no entry");
    assert!(err.contains("user name and password"), "{err}");
}

#[test]
fn ex5_5_a_tag_resolves_with_head_to_the_manifest_the_store_has() {
    let img = Arc::new(image());
    let i = img.clone();
    let fake = Fake::start(move |_, url, _, _, _| {
        serve(&i, url, |img| Reply::Full(200, vec![], img.layer.clone()))
    });
    let reference = Reference::parse(&format!("127.0.0.1:{}/app:1", fake.port)).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(None);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(
        pull::resolve_locally(&client, &store).unwrap().is_none(),
        "nothing stored yet"
    );
    store
        .put_bytes(chapter_04::manifest::OCI_MANIFEST, &img.manifest)
        .unwrap();
    let found = pull::resolve_locally(&client, &store)
        .unwrap()
        .expect("the stored manifest");
    assert_eq!(found.digest.as_str(), img.manifest_digest);
    assert_eq!(found.bytes, img.manifest);
    assert_eq!(found.media_type, chapter_04::manifest::OCI_MANIFEST);
    assert_eq!(fake.count_method("HEAD", "/manifests/1"), 2);
    assert_eq!(
        fake.count_method("GET", "/manifests/"),
        0,
        "resolving downloads nothing"
    );
    // A reference by digest needs no resolving.
    let pinned = Reference::parse(&format!(
        "127.0.0.1:{}/app@{}",
        fake.port, img.manifest_digest
    ))
    .unwrap();
    let client = Client::new(&pinned, false).unwrap().with_credentials(None);
    assert!(pull::resolve_locally(&client, &store).unwrap().is_none());
}

#[test]
fn ex5_6_manifests_are_fetched_with_accept_and_their_digests_checked() {
    let img = Arc::new(image());
    let i = img.clone();
    let lie = Arc::new(Mutex::new(None::<String>));
    let l = lie.clone();
    let fake = Fake::start(move |_, url, _, _, _| {
        if url.contains("/manifests/gone") {
            return Reply::Full(
                404,
                vec![],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec(),
            );
        }
        if url.contains("/manifests/old") {
            let v1 = br#"{"schemaVersion":1,"name":"app","tag":"old","fsLayers":[],"history":[]}"#;
            return Reply::Full(200, vec![], v1.to_vec());
        }
        let mut reply = serve(&i, url, |img| Reply::Full(200, vec![], img.layer.clone()));
        if let (Some(d), Reply::Full(_, headers, _)) = (l.lock().unwrap().clone(), &mut reply) {
            headers.retain(|(k, _)| *k != "Docker-Content-Digest");
            headers.push(("Docker-Content-Digest", d));
        }
        reply
    });
    let reference = Reference::parse(&format!("127.0.0.1:{}/app:1", fake.port)).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(None);
    let got = pull::fetch_manifest(&client, "1", None).unwrap();
    assert_eq!(got.bytes, img.manifest, "the exact bytes");
    assert_eq!(got.digest.as_str(), img.manifest_digest);
    assert_eq!(got.media_type, chapter_04::manifest::OCI_MANIFEST);
    let pinned = pull::fetch_manifest(&client, "1", Some(&img.manifest_digest)).unwrap();
    assert_eq!(pinned.digest, got.digest);
    let other = chapter_04::Digest::of(b"other").to_string();
    let err = pull::fetch_manifest(&client, "1", Some(&other))
        .err()
        .unwrap();
    assert!(
        err.contains(&other),
        "a pinned digest that does not match: {err}"
    );
    *lie.lock().unwrap() = Some(other.clone());
    let err = pull::fetch_manifest(&client, "1", None).err().unwrap();
    assert!(
        err.contains(&other),
        "the registry's digest header is checked: {err}"
    );
    let err = pull::fetch_manifest(&client, "gone", None).err().unwrap();
    assert!(err.contains("manifest unknown"), "{err}");
    let err = pull::fetch_manifest(&client, "old", None).err().unwrap();
    assert!(err.contains("schema 1"), "{err}");
}

#[test]
fn ex5_7_a_download_resumes_with_range_and_a_registry_that_ignores_it_is_refused() {
    let blob = vec![7u8; 1000];
    let b = blob.clone();
    let honour = Arc::new(Mutex::new(true));
    let h = honour.clone();
    let fake = Fake::start(move |_, _, _, range, _| {
        let from = range
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        match from {
            Some(from) if *h.lock().unwrap() => Reply::Full(206, vec![], b[from..].to_vec()),
            _ => Reply::Full(200, vec![], b.clone()),
        }
    });
    let reference = Reference::parse(&format!("127.0.0.1:{}/app:1", fake.port)).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(None);
    let url = client.url("blobs/sha256:abc");
    let nothing = |_| {};
    pull::Resuming::new(&client, url.clone(), 1000, &nothing)
        .connect()
        .unwrap();
    pull::Resuming::new(&client, url.clone(), 1000, &nothing)
        .from_offset(400)
        .connect()
        .unwrap();
    let ranges: Vec<Option<String>> = fake
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.3.clone())
        .collect();
    assert_eq!(ranges, [None, Some("bytes=400-".to_string())]);
    *honour.lock().unwrap() = false;
    let err = pull::Resuming::new(&client, url, 1000, &nothing)
        .from_offset(400)
        .connect()
        .unwrap_err();
    assert!(err.to_string().contains("cannot resume"), "{err}");
}

#[test]
fn ex5_8_a_download_broken_midway_reads_through_to_the_whole_blob() {
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (port, ranges) = storage_that_breaks(blob.clone(), false);
    let reference = Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(None);
    let arrived = std::sync::atomic::AtomicU64::new(0);
    let count = |n| {
        arrived.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    };
    let mut reader = pull::Resuming::new(
        &client,
        format!("http://127.0.0.1:{port}/blob"),
        blob.len() as u64,
        &count,
    );
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut got).unwrap();
    assert_eq!(got.len(), blob.len());
    assert!(got == blob, "the resumed bytes do not line up");
    assert_eq!(
        *ranges.lock().unwrap(),
        [format!("bytes={}-", blob.len() / 3)]
    );
    assert_eq!(
        arrived.load(std::sync::atomic::Ordering::SeqCst),
        blob.len() as u64
    );
}
