//! The course's test Dockerfile: two stages, every instruction, on the
//! fixture (`ARG BASE`), with its build context. The build tests and
//! `cargo xtask bench build` use the same one.

/// The Dockerfile that uses every instruction (two stages, the fixture as
/// the base), with its context written into `dir`.
pub const DOCKERFILE: &str = r#"# escape=\
ARG BASE=fixture
FROM ${BASE} AS builder
ARG GREETING=hello
# a comment inside the stage
RUN mkdir -p /out && echo "$GREETING from the builder" > /out/greeting \
    && chmod 604 /out/greeting
COPY src/ /src/
RUN cat /src/a.txt > /out/a && ls /src > /out/listing

FROM ${BASE}
LABEL org.example.kind="test image" version=1
ENV APP_HOME=/app \
    SPACED="with space"
WORKDIR $APP_HOME
COPY --from=builder /out/ ./from-builder/
COPY --chown=1000:1000 --chmod=750 files/*.sh ./files/
ADD archive.tar.gz /opt/
ADD plain.txt /opt/plain.txt
RUN mkdir /data && chown 1000:1000 /data && echo seed > /data/seed
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
RUN echo "ran as $(id -u) in $(pwd)" > /tmp/shell-ran
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $APP_HOME $SPACED; id -u; pwd; cat from-builder/greeting"]
"#;

/// Writes the Dockerfile and its context (sources, a .dockerignore, a
/// gzip tar for ADD) into `dir`.
pub fn write(dir: &std::path::Path) {
    use std::fs;
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("files")).unwrap();
    fs::create_dir_all(dir.join("ignored-dir")).unwrap();
    fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(dir.join("src/a.txt"), "alpha\n").unwrap();
    fs::write(dir.join("src/b.txt"), "beta\n").unwrap();
    fs::write(dir.join("files/one.sh"), "echo one\n").unwrap();
    fs::write(dir.join("files/two.sh"), "echo two\n").unwrap();
    fs::write(dir.join("files/not-copied.txt"), "x\n").unwrap();
    fs::write(dir.join("plain.txt"), "plain\n").unwrap();
    fs::write(dir.join("ignored-dir/secret"), "secret\n").unwrap();
    fs::write(dir.join("src/skip.log"), "log\n").unwrap();
    fs::write(dir.join(".dockerignore"), "ignored-dir\n**/*.log\n").unwrap();
    // A gzip tar with a directory, a file and a symlink.
    let staging = dir.join("staging");
    fs::create_dir_all(staging.join("pkg/bin")).unwrap();
    fs::write(staging.join("pkg/bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    std::os::unix::fs::symlink("bin/tool", staging.join("pkg/link")).unwrap();
    assert!(std::process::Command::new("tar")
        .arg("-czf")
        .arg(dir.join("archive.tar.gz"))
        .arg("-C")
        .arg(&staging)
        .arg("--owner=0")
        .arg("--group=0")
        .arg("pkg")
        .status()
        .unwrap()
        .success());
    fs::remove_dir_all(&staging).unwrap();
}
