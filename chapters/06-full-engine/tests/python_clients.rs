//! Real clients in Python: the project's pytest scripts
//! (`tests/python/test_clients.py`) drive the engine with Docker's SDK and
//! testcontainers, from the venv `cargo xtask install` makes.

mod common;
use common::Engine;
use testkit::privileged;

#[test]
fn the_python_sdk_and_testcontainers_drive_the_engine() {
    if !privileged("the_python_sdk_and_testcontainers_drive_the_engine") {
        return;
    }
    let python = testkit::python_with_docker_sdk();
    let engine = Engine::start();
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let out = std::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
        .arg(scripts.join("test_clients.py"))
        .env("DOCKER_HOST", engine.host())
        // Testcontainers' reaper is an image from Docker Hub; the test
        // removes its containers itself (the `with` block).
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pytest failed:\n{}{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        engine.daemon_log()
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("8 passed"), "{summary}");
    assert_eq!(engine.ok(&["ps", "-aq"]), "");
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
