//! The embedded DNS server (127.0.0.11) on user-defined networks: names,
//! aliases shared by several containers, containers joining and leaving,
//! other names forwarded to the host's resolvers, both docker CLIs.

mod common;
use common::{addresses, fake_upstream, Engine};
use std::net::Ipv4Addr;
use testkit::privileged;

#[test]
fn the_embedded_dns_server_answers_names_aliases_and_forwards_the_rest() {
    if !privileged("the_embedded_dns_server_answers_names_aliases_and_forwards_the_rest") {
        return;
    }
    let (upstream, server) = fake_upstream("127.0.0.1:0", Ipv4Addr::new(192, 0, 2, 7));
    // A second resolver on port 53 (where --dns servers are asked), on a
    // loopback address of its own.
    let (dns_flag, dns_server) = fake_upstream("127.0.0.77:53", Ipv4Addr::new(192, 0, 2, 8));
    let engine = Engine::start_with_env(&[("MINI_DOCKER_DNS_UPSTREAM", &upstream.to_string())]);
    engine.ok(&["network", "create", "dnsnet"]);
    for name in ["web1", "web2"] {
        engine.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "dnsnet",
            "--network-alias",
            "site",
            "fixture",
            "sleep",
            "600",
        ]);
    }
    let ip = |n: &str| {
        engine.inspect(n)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ip1, ip2) = (ip("web1"), ip("web2"));
    let lookup = |from: &str, name: &str| {
        let out = engine.run(&["exec", from, "nslookup", "-type=a", name]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        engine
            .ok(&["exec", "web1", "cat", "/etc/resolv.conf"])
            .lines()
            .find(|l| l.starts_with("nameserver")),
        Some("nameserver 127.0.0.11")
    );
    // A name, a short ID, an alias two containers share.
    assert_eq!(addresses(&lookup("web1", "web2").1), vec![ip2.clone()]);
    let short = engine.inspect("web2")["Id"].as_str().unwrap()[..12].to_string();
    assert_eq!(addresses(&lookup("web1", &short).1), vec![ip2.clone()]);
    let mut both = vec![ip1.clone(), ip2.clone()];
    both.sort();
    assert_eq!(addresses(&lookup("web1", "SITE").1), both);
    // Another name: the host's resolver's answer, or its failure.
    assert_eq!(
        addresses(&lookup("web1", "outside.test").1),
        vec!["192.0.2.7"]
    );
    assert!(!lookup("web1", "nowhere.test").0);
    // --dns: the embedded server forwards to it instead of the host's.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "own-dns",
        "--network",
        "dnsnet",
        "--dns",
        "127.0.0.77",
        "fixture",
        "sleep",
        "600",
    ]);
    assert_eq!(
        addresses(&lookup("own-dns", "outside.test").1),
        vec!["192.0.2.8"]
    );
    assert_eq!(addresses(&lookup("own-dns", "web1").1), vec![ip1.clone()]);
    engine.ok(&["rm", "-f", "own-dns"]);
    // --ip: the address asked for, refused when taken or outside.
    let subnet = engine.ok(&["network", "inspect", "dnsnet"]);
    let subnet: serde_json::Value = serde_json::from_str(&subnet).unwrap();
    let base = subnet[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let fixed = format!("{}.200", base.rsplit_once('.').unwrap().0);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "dnsnet",
        "--ip",
        &fixed,
        "fixture",
        "sleep",
        "600",
    ]);
    assert_eq!(ip("fixed"), fixed);
    assert_eq!(addresses(&lookup("web1", "fixed").1), vec![fixed.clone()]);
    for (args, says) in [
        (
            vec!["--network", "dnsnet", "--ip", fixed.as_str()],
            "Address already in use",
        ),
        (
            vec!["--network", "dnsnet", "--ip", "192.0.2.9"],
            "not an address of network dnsnet",
        ),
        (vec!["--ip", "172.17.0.9"], "user defined networks only"),
    ] {
        engine.refuses_run(&args, says);
    }
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "dnsnet",
                "--ip",
                &format!("{}.201", base.rsplit_once('.').unwrap().0),
                "fixture",
                "ip",
                "-4",
                "-o",
                "addr",
                "show",
                "eth0",
            ],
        );
        assert!(out.contains(".201/"), "{}: {out}", cli.display());
    }
    engine.ok(&["rm", "-f", "fixed"]);
    // Joining and leaving show at once.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "dnsnet",
        "fixture",
        "sleep",
        "600",
    ]);
    assert_eq!(addresses(&lookup("web1", "late").1), vec![ip("late")]);
    engine.ok(&["rm", "-f", "web2"]);
    assert_eq!(addresses(&lookup("web1", "site").1), vec![ip1.clone()]);
    // Another network's containers are not names here.
    engine.ok(&["network", "create", "othernet"]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "stranger",
        "--network",
        "othernet",
        "fixture",
        "sleep",
        "600",
    ]);
    assert!(!lookup("web1", "stranger").0);
    // The docker CLIs' containers resolve the same way.
    for cli in common::docker_clis() {
        let out = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "dnsnet",
                "fixture",
                "nslookup",
                "-type=a",
                "web1",
            ],
        );
        assert_eq!(addresses(&out), vec![ip1.clone()], "{}", cli.display());
    }
    engine.ok(&["rm", "-f", "web1", "late", "stranger"]);
    engine.ok(&["network", "rm", "dnsnet", "othernet"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
    let stop = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    stop.send_to(b"stop", upstream).unwrap();
    stop.send_to(b"stop", dns_flag).unwrap();
    server.join().unwrap();
    dns_server.join().unwrap();
}
