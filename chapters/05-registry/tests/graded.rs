//! Graded tests for chapter 05; each name starts with its exercise id.

mod common;
use chapter_05::auth::{parse_challenge, Credentials};
use chapter_05::client::Client;
use chapter_05::progress::Progress;
use chapter_05::{pull, push, Reference};
use common::{round_trip, store_with_fixture, Auth, Registry};
use testkit::privileged;

#[test]
fn ex5_1_references_normalise_like_docker() {
    let r = |s: &str| Reference::parse(s).unwrap();
    let busybox = r("busybox");
    assert_eq!(
        (
            busybox.registry.as_str(),
            busybox.repository.as_str(),
            busybox.tag.as_deref()
        ),
        ("docker.io", "library/busybox", Some("latest"))
    );
    assert_eq!(busybox.api_host(), "registry-1.docker.io");
    assert_eq!(r("user/app:1.0").repository, "user/app");
    assert_eq!(r("index.docker.io/library/alpine").registry, "docker.io");
    assert_eq!(r("localhost/app").registry, "localhost");
    assert_eq!(
        r("localhost:5000/app:v2").to_string(),
        "localhost:5000/app:v2"
    );
    assert_eq!(r("ghcr.io/org/team/tool:x").repository, "org/team/tool");
    assert_eq!(r("my.registry:8443/a").tag.as_deref(), Some("latest"));
    let digest = format!("sha256:{}", "a".repeat(64));
    let pinned = r(&format!("busybox@{digest}"));
    assert_eq!(
        (pinned.tag, pinned.digest.as_deref()),
        (None, Some(digest.as_str()))
    );
    assert_eq!(r("busybox:1.36").manifest_ref(), "1.36");
    for bad in [
        "",
        "UPPER",
        "a//b",
        "busybox:",
        "busybox@sha256:short",
        "-x",
        "a/b:t@sha256:1",
    ] {
        let err = Reference::parse(bad).expect_err(bad);
        assert!(
            err.contains(&format!("{bad:?}")),
            "the error quotes the input: {err}"
        );
    }
}

#[test]
fn ex5_2_challenges_are_parsed_with_commas_inside_quotes() {
    let c = parse_challenge(
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
    )
    .unwrap();
    assert_eq!(c.scheme, "bearer");
    assert_eq!(c.params["realm"], "https://auth.docker.io/token");
    assert_eq!(c.params["service"], "registry.docker.io");
    assert_eq!(c.params["scope"], "repository:library/busybox:pull,push");
    let b = parse_challenge(r#"Basic realm="a \"quoted\" realm""#).unwrap();
    assert_eq!(
        (b.scheme.as_str(), b.params["realm"].as_str()),
        ("basic", r#"a "quoted" realm"#)
    );
    let bare = parse_challenge("Bearer realm=https://x/token, Service=reg").unwrap();
    assert_eq!(
        (
            bare.params["realm"].as_str(),
            bare.params["service"].as_str()
        ),
        ("https://x/token", "reg")
    );
    assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_err());
}

#[test]
fn ex5_12_basic_credentials_open_a_password_protected_registry() {
    let c = Credentials {
        username: "alice".into(),
        secret: "s3cret:with:colons".into(),
    };
    assert_eq!(c.basic_header(), "Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z");
    if !privileged("ex5_10 (against the registry)") {
        return;
    }
    let registry = Registry::start(Auth::Basic("alice", "s3cret:with:colons"));
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(&dir.path().join("a"));
    let reference = common::reference(&registry, "private/app:1");
    // Without credentials: refused, with the reason.
    let anonymous = Client::new(&reference, true)
        .unwrap()
        .with_credentials(None);
    let err = push::push(
        &anonymous,
        &store,
        "fixture:latest",
        &push::Options::default(),
        &Progress::quiet(),
    )
    .unwrap_err();
    assert!(err.contains("user name and password"), "{err}");
    // With them: push, then pull into another store.
    round_trip(&store, &reference, Some(c.clone()), &dir.path().join("b"));
    let other = chapter_04::Store::open(dir.path().join("b")).unwrap();
    // Wrong password: refused after one attempt, not in a loop.
    let wrong = Credentials {
        username: "alice".into(),
        secret: "nope".into(),
    };
    let client = Client::new(&reference, false)
        .unwrap()
        .with_credentials(Some(wrong));
    let err = pull::pull(
        &client,
        &other,
        &pull::Options::default(),
        &Progress::quiet(),
    )
    .unwrap_err();
    assert!(
        err.contains("unauthorized even after authenticating"),
        "{err}"
    );
}
