//! Bearer token authentication against the real registry: docker-registry
//! configured for token auth, and a small token server here that signs
//! JWTs (RS256, the certificate in `x5c`) with a key made by openssl for
//! this test. Our client gets one token per scope and pushes and pulls.

mod common;
use base64::Engine as _;
use common::{round_trip, run, store_with_fixture, Auth, Registry};
use std::process::Command;
use std::sync::{Arc, Mutex};
use testkit::privileged;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT the registry accepts for `scope` (`repository:NAME:ACTIONS`).
fn sign_token(dir: &std::path::Path, scope: &str) -> String {
    let der = run(Command::new("sh").arg("-c").arg(format!(
        "openssl x509 -in {0}/cert.pem -outform DER | base64 -w0",
        dir.display()
    )));
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [der.trim()]});
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": "tester", "aud": "test-registry",
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{now}"),
        "access": [{"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}],
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input = dir.join("input");
    std::fs::write(&input, &signing_input).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("key.pem"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl dgst failed");
    format!("{signing_input}.{}", b64url(&out.stdout))
}

#[test]
fn ex5_12_bearer_tokens_from_a_token_server_open_the_real_registry() {
    if !privileged("ex5_12_bearer_tokens_from_a_token_server_open_the_real_registry") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test-token-issuer",
            "-keyout",
        ])
        .arg(keys.path().join("key.pem"))
        .arg("-out")
        .arg(keys.path().join("cert.pem")));

    // The token server: every request gets a token for the scope it asks for.
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let scopes: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, seen, dir) = (server.clone(), scopes.clone(), keys.path().to_path_buf());
    let thread = std::thread::spawn(move || {
        for req in s.incoming_requests() {
            let url = req.url().to_string();
            let scope = url
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("scope="))
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap().push(scope.clone());
            let token = sign_token(&dir, &scope);
            let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
            let _ = req.respond(tiny_http::Response::from_string(body));
        }
    });

    let realm = format!("http://127.0.0.1:{port}/token");
    let registry = Registry::start(Auth::Token {
        realm: &realm,
        cert: &keys.path().join("cert.pem"),
    });
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(&dir.path().join("a"));
    let reference = common::reference(&registry, "tokens/fixture:v1");
    round_trip(&store, &reference, None, &dir.path().join("b"));

    let scopes = scopes.lock().unwrap().clone();
    assert_eq!(
        scopes,
        [
            "repository:tokens/fixture:pull,push",
            "repository:tokens/fixture:pull"
        ],
        "one token per client, reused"
    );
    server.unblock();
    thread.join().unwrap();
}
