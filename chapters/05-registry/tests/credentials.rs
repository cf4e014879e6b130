//! Credentials from Docker's own config: `auths` entries, and credential
//! helper programs (`credHelpers`). In its own test binary: it sets
//! DOCKER_CONFIG and PATH for the whole process.

use chapter_05::auth::{credentials_for, Credentials};
use std::os::unix::fs::PermissionsExt;

#[test]
fn docker_config_auths_and_credential_helpers_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    // base64("bob:pa55") = Ym9iOnBhNTU=
    std::fs::write(
        &config,
        r#"{"auths":{"registry.example:5000":{"auth":"Ym9iOnBhNTU="},"https://index.docker.io/v1/":{"auth":"aHViOmh1Yg=="}},
            "credHelpers":{"helped.example":"fake"}}"#,
    )
    .unwrap();
    let helper = dir.path().join("docker-credential-fake");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = helped.example ] || exit 1\necho '{\"ServerURL\":\"helped.example\",\"Username\":\"carol\",\"Secret\":\"from-helper\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("DOCKER_CONFIG", dir.path());
    std::env::set_var(
        "PATH",
        format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );

    let c = |user: &str, secret: &str| {
        Some(Credentials {
            username: user.into(),
            secret: secret.into(),
        })
    };
    assert_eq!(
        credentials_for("registry.example:5000").unwrap(),
        c("bob", "pa55")
    );
    assert_eq!(
        credentials_for("docker.io").unwrap(),
        c("hub", "hub"),
        "Docker Hub's legacy key"
    );
    assert_eq!(
        credentials_for("helped.example").unwrap(),
        c("carol", "from-helper")
    );
    assert_eq!(credentials_for("nowhere.example").unwrap(), None);

    std::fs::write(&config, "{not json").unwrap();
    let err = credentials_for("registry.example:5000").unwrap_err();
    assert!(
        err.contains("config.json") && err.contains("not valid JSON"),
        "{err}"
    );
}
