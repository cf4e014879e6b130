//! NAT through the iptables command instead of nft. In a test binary of
//! its own: iptables-nft creates the `ip nat` and `ip filter` tables, which
//! the other network tests (comparing the host's ruleset) must not see
//! appear under them.

mod common;
use common::{http_get, Engine, HTTPD};
use std::time::Duration;
use testkit::privileged;

/// Removes the `ip nat` / `ip filter` tables iptables-nft made, when they
/// were absent before and hold no rule now (only empty built-in chains).
struct IptablesTables(Vec<&'static str>);

impl IptablesTables {
    fn note() -> IptablesTables {
        let absent = ["nat", "filter"]
            .into_iter()
            .filter(|t| {
                !std::process::Command::new("nft")
                    .args(["list", "table", "ip", t])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .collect();
        IptablesTables(absent)
    }
}

impl Drop for IptablesTables {
    fn drop(&mut self) {
        for table in &self.0 {
            let listed = std::process::Command::new("nft")
                .args(["list", "table", "ip", table])
                .output();
            let Ok(listed) = listed else { continue };
            let text = String::from_utf8_lossy(&listed.stdout);
            let rules = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("table")
                        && !l.starts_with("chain")
                        && !l.starts_with("type")
                        && *l != "}"
                })
                .count();
            if listed.status.success() && rules == 0 {
                let _ = std::process::Command::new("nft")
                    .args(["delete", "table", "ip", table])
                    .status();
            }
        }
    }
}

#[test]
fn with_iptables_instead_of_nft_ports_and_nat_work_and_go() {
    if !privileged("with_iptables_instead_of_nft_ports_and_nat_work_and_go") {
        return;
    }
    // A host without nftables uses the iptables command (here its nf_tables
    // flavour, chosen with MINI_DOCKER_NAT, as Debian 12's iptables is).
    // That flavour creates the `ip nat` and `ip filter` tables on first use;
    // the guard removes them again if they were not there before.
    let _tables = IptablesTables::note();
    let mut engine = Engine::start();
    engine.kill_daemon();
    engine
        .env
        .push(("MINI_DOCKER_NAT".into(), "iptables".into()));
    engine.start_daemon();
    let port = testkit::registry::free_port();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "fixture",
        "sh",
        "-c",
        HTTPD,
    ]);
    let chains = std::process::Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    let chains = String::from_utf8_lossy(&chains.stdout).into_owned();
    let upper = engine.net_prefix.to_uppercase();
    assert!(
        chains.contains(&format!("-A MD-{upper}-PRE")) && chains.contains("--to-destination"),
        "{chains}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-from-"));
    let web_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = engine.ok(&["run", "--rm", "fixture", "ping", "-c1", "-W2", &web_ip]);
    assert!(out.contains("1 packets received"), "{out}");
    engine.ok(&["rm", "-f", "web"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}
