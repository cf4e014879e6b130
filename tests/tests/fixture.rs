//! The fixture image is what every container test runs; check its shape.

#[test]
fn fixture_has_busybox_applets_and_a_static_facts_helper() {
    let rootfs = testkit::fixture::rootfs();
    for path in [
        "bin/busybox",
        "bin/sh",
        "bin/facts",
        "etc/passwd",
        "proc",
        "dev",
        "tmp",
    ] {
        assert!(
            rootfs.join(path).exists(),
            "{path} missing in {}",
            rootfs.display()
        );
    }
    // A static binary has no program interpreter (PT_INTERP); `file`-free check:
    // the dynamic loader's path never appears in a static glibc binary.
    let facts = std::fs::read(rootfs.join("bin/facts")).unwrap();
    let needle = b"/lib64/ld-linux";
    assert!(
        !facts.windows(needle.len()).any(|w| w == needle),
        "facts is dynamically linked; it must run in a rootfs with no libc"
    );
}
