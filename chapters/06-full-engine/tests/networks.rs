//! Bridge networking for real: addresses, routes, /etc files, container to
//! container by address and by name, container to a server on the host's
//! bridge address, published ports from the host, conflicts, and nothing
//! left behind (links, addresses, rules). Traffic stays on loopback and on
//! the bridges and namespaces the tests create.

mod common;
use common::{http_get, Engine, HTTPD};
use std::io::{Read, Write};
use std::time::Duration;
use testkit::privileged;

/// The host's nftables ruleset, minus the tables of the test engines
/// (other tests run their engines at the same time; this engine's own table
/// is checked by `leftovers`).
fn ruleset() -> Vec<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut tables: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("table ") || tables.is_empty() {
            tables.push(String::new());
        }
        let last = tables.last_mut().unwrap();
        last.push_str(line);
        last.push('\n');
    }
    tables.retain(|t| !t.starts_with("table ip mini_docker_e"));
    tables
}

#[test]
fn ex6_13_a_container_on_the_bridge_has_an_address_a_route_and_its_etc_files() {
    if !privileged("ex6_13_a_container_on_the_bridge_has_an_address_a_route_and_its_etc_files") {
        return;
    }
    let engine = Engine::start();
    let rules_before = ruleset();
    let id = engine.ok(&["run", "-d", "--name", "box", "fixture", "sleep", "30"]);
    let id = id.trim();
    let info = engine.inspect("box");
    let ip = info["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let gateway = info["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ip.starts_with("10.") && gateway.ends_with(".1"),
        "{ip} via {gateway}"
    );
    let out = engine.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; cat /etc/hostname /etc/hosts",
    ]);
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    assert!(
        out.contains(&format!("default via {gateway} dev eth0")),
        "{out}"
    );
    assert!(out.contains(&format!("{ip}\t{} box", &id[..12])), "{out}");
    // The container reaches a server this test runs on the bridge address.
    let listener = std::net::TcpListener::bind((gateway.as_str(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = conn.read(&mut buf);
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom-host")
            .unwrap();
        peer.ip().to_string()
    });
    let got = engine.ok(&[
        "exec",
        "box",
        "wget",
        "-qO-",
        &format!("http://{gateway}:{port}/"),
    ]);
    assert_eq!(got, "from-host");
    assert_eq!(
        server.join().unwrap(),
        ip,
        "the host sees the container's own address"
    );
    // The veth's host end is on the bridge while the container runs...
    let veth = format!("ve{}", &id[..10]);
    assert!(std::path::Path::new("/sys/class/net").join(&veth).exists());
    engine.ok(&["rm", "-f", "box"]);
    // ...and after it, no veth, no bridge, no address, no rule is left.
    assert!(!std::path::Path::new("/sys/class/net").join(&veth).exists());
    assert_eq!(engine.leftovers(), Vec::<String>::new());
    assert_eq!(ruleset(), rules_before, "the host's rules are as before");
    // --network none: loopback only, but its own /etc/hosts and hostname.
    let out = engine.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "ls /sys/class/net; cat /etc/hosts",
    ]);
    assert!(out.starts_with("lo\n127.0.0.1"), "{out}");
}

#[test]
fn ex6_12_published_ports_reach_the_container_and_a_taken_port_is_refused() {
    if !privileged("ex6_12_published_ports_reach_the_container_and_a_taken_port_is_refused") {
        return;
    }
    let mut engine = Engine::start();
    let port = testkit::registry::free_port();
    let publish = format!("{port}:80");
    engine.ok(&[
        "run", "-d", "--name", "web", "-p", &publish, "fixture", "sh", "-c", HTTPD,
    ]);
    let id = engine.inspect("web")["Id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let reply = http_get(&format!("127.0.0.1:{port}"));
    assert!(
        reply.contains(&format!("hello-from-{}", &id[..12])),
        "{reply}"
    );
    let ps = engine.ok(&["ps"]);
    assert!(ps.contains("web"), "{ps}");
    let ports = &engine.inspect("web")["NetworkSettings"]["Ports"]["80/tcp"][0];
    assert_eq!(ports["HostPort"], port.to_string());
    // The port is taken: a second container is refused before it starts.
    let out = engine.run(&["run", "--rm", "-p", &publish, "fixture", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port is already allocated"), "{err}");
    // Still held, and still forwarded, after a daemon restart.
    engine.kill_daemon();
    engine.start_daemon();
    let out = engine.run(&["run", "--rm", "-p", &publish, "fixture", "true"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port is already allocated"),
        "{out:?}"
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-from-"));
    // -P: the exposed port on a free one.
    engine.ok(&[
        "run", "-d", "--name", "auto", "--expose", "80", "-P", "fixture", "sh", "-c", HTTPD,
    ]);
    let auto = engine.inspect("auto")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(300));
    assert!(http_get(&format!("127.0.0.1:{auto}")).contains("hello-from-"));
    engine.ok(&["rm", "-f", "web", "auto"]);
    // Free again, and nothing left.
    std::net::TcpListener::bind(("0.0.0.0", port)).expect("the host port is released");
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    if !privileged("containers_on_a_user_network_reach_each_other_by_name") {
        return;
    }
    let mut engine = Engine::start();
    engine.ok(&["network", "create", "appnet"]);
    assert!(engine.ok(&["network", "ls"]).contains("appnet"));
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "fixture",
        "sh",
        "-c",
        HTTPD,
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "cache",
        "--network",
        "appnet",
        "fixture",
        "sleep",
        "60",
    ]);
    let db_ip = engine.inspect("db")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let cache_ip = engine.inspect("cache")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(db_ip, cache_ip, "two containers never share an address");
    std::thread::sleep(Duration::from_millis(300));
    let by_name = engine.ok(&["exec", "cache", "wget", "-qO-", "http://db/"]);
    assert!(by_name.starts_with("hello-from-"), "{by_name}");
    let by_ip = engine.ok(&["exec", "cache", "wget", "-qO-", &format!("http://{db_ip}/")]);
    assert_eq!(by_name, by_ip);
    // A container on the default bridge is on another network: no name.
    let out = engine.run(&["run", "--rm", "fixture", "ping", "-c1", "-W1", "db"]);
    assert!(!out.status.success());

    // In use: refused.
    let refused = engine.run(&["network", "rm", "appnet"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("active endpoints"),
        "{refused:?}"
    );

    // Allocations survive a daemon restart: a new container gets a third
    // address, not one of the two in use.
    engine.kill_daemon();
    engine.start_daemon();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "third",
        "--network",
        "appnet",
        "fixture",
        "sleep",
        "60",
    ]);
    let third = engine.inspect("third")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        third != db_ip && third != cache_ip,
        "{third} vs {db_ip}, {cache_ip}"
    );
    // Names come from the embedded DNS server (127.0.0.11), not from
    // /etc/hosts: a container that joined later is found at once, also
    // from one whose server the restarted daemon made again.
    let hosts = engine.ok(&["exec", "third", "cat", "/etc/hosts", "/etc/resolv.conf"]);
    assert!(
        !hosts.contains("\tdb ") && hosts.contains("nameserver 127.0.0.11"),
        "{hosts}"
    );
    let from_third = engine.ok(&["exec", "third", "wget", "-qO-", "http://db/"]);
    assert_eq!(from_third, by_name);
    let seen = engine.ok(&["exec", "cache", "ping", "-c1", "-W2", "third"]);
    assert!(seen.contains(&third), "{seen}");

    engine.ok(&["rm", "-f", "db", "cache", "third"]);
    engine.ok(&["network", "rm", "appnet"]);
    assert!(!engine.ok(&["network", "ls"]).contains("appnet"));
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn the_docker_cli_publishes_ports_and_creates_networks() {
    if !privileged("the_docker_cli_publishes_ports_and_creates_networks") {
        return;
    }
    let engine = Engine::start();
    let Some(cli) = common::docker_clis().into_iter().next() else {
        return;
    };
    let docker = |args: &[&str]| engine.docker_ok(&cli, args);
    let port = testkit::registry::free_port();
    docker(&["network", "create", "dnet"]);
    docker(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dnet",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "fixture",
        "sh",
        "-c",
        HTTPD,
    ]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(docker(&["ps"]).contains(&format!("127.0.0.1:{port}->80/tcp")));
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-from-"));
    assert_eq!(
        docker(&["port", "dweb"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    docker(&["rm", "-f", "dweb"]);
    docker(&["network", "rm", "dnet"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn a_container_joins_and_leaves_more_networks_running_or_not() {
    if !privileged("a_container_joins_and_leaves_more_networks_running_or_not") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&["network", "create", "front"]);
    engine.ok(&["network", "create", "back"]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "back",
        "fixture",
        "sh",
        "-c",
        HTTPD,
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "fixture",
        "sleep",
        "600",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    // (busybox's wget -T crashes here: a name that does not resolve fails fast anyway)
    let fetch = |from: &str| engine.run(&["exec", from, "wget", "-qO-", "http://api/"]);
    assert!(!fetch("web").status.success(), "not on back yet");
    // A running container joins: eth1 appears, the names of back resolve.
    engine.ok(&["network", "connect", "back", "web"]);
    let links = engine.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
    assert!(links.contains("eth0") && links.contains("eth1"), "{links}");
    let got = fetch("web");
    assert!(
        String::from_utf8_lossy(&got.stdout).starts_with("hello-from-"),
        "{got:?}"
    );
    let nets = &engine.inspect("web")["NetworkSettings"]["Networks"];
    assert!(
        nets["front"]["IPAddress"].is_string() && nets["back"]["IPAddress"].is_string(),
        "{nets}"
    );
    let refused = engine.run(&["network", "connect", "back", "web"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already exists"),
        "{refused:?}"
    );
    // …and leaves: eth1 goes, so does the way to api.
    engine.ok(&["network", "disconnect", "back", "web"]);
    assert!(!engine
        .ok(&["exec", "web", "ip", "-4", "-o", "addr"])
        .contains("eth1"));
    assert!(!fetch("web").status.success());
    // A stopped container joins now and is plugged in when it starts.
    engine.ok(&[
        "create",
        "--name",
        "late",
        "--network",
        "front",
        "fixture",
        "sleep",
        "600",
    ]);
    engine.ok(&["network", "connect", "back", "late"]);
    engine.ok(&["start", "late"]);
    assert!(String::from_utf8_lossy(&fetch("late").stdout).starts_with("hello-from-"));
    let refused = engine.run(&["network", "rm", "back"]);
    assert!(!refused.status.success(), "back is in use by late");
    // The docker CLIs connect and disconnect the same way.
    for cli in common::docker_clis() {
        engine.docker_ok(&cli, &["network", "connect", "back", "web"]);
        assert!(
            String::from_utf8_lossy(&fetch("web").stdout).starts_with("hello-from-"),
            "{}",
            cli.display()
        );
        engine.docker_ok(&cli, &["network", "disconnect", "back", "web"]);
        assert!(!fetch("web").status.success());
    }
    engine.ok(&["rm", "-f", "api", "web", "late"]);
    engine.ok(&["network", "rm", "front", "back"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}
