//! The embedded DNS server's answers (Docker's 127.0.0.11): on a
//! user-defined network, a container's name, short ID, hostname and
//! aliases resolve to its address on that network, for every container on
//! it, at once when one joins or leaves; any other name is the host's
//! resolvers' to answer. This is the decision and the wire format
//! (hickory-proto's messages); the daemon owns the sockets (one in each
//! container's network namespace) and the forwarding.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use std::net::Ipv4Addr;

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not a name of this network: ask the host's resolvers.
    Forward,
    /// Not a DNS query at all: drop it.
    Drop,
}

/// Answers of ours live this long (Docker's embedded server says 600).
const TTL: u32 = 600;

/// The answer to the raw query `packet`; `lookup` gives the addresses a
/// name (lowercase, no trailing dot) has on this network.
pub fn answer(packet: &[u8], lookup: impl Fn(&str) -> Vec<Ipv4Addr>) -> Answer {
    let Ok(query) = Message::from_vec(packet) else {
        return Answer::Drop;
    };
    if query.message_type() != MessageType::Query {
        return Answer::Drop;
    }
    let [question] = query.queries() else {
        return Answer::Forward;
    };
    let name = question
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_lowercase();
    let addresses = lookup(&name);
    if addresses.is_empty() {
        return Answer::Forward;
    }
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .set_response_code(ResponseCode::NoError)
        .add_query(question.clone());
    // A name of ours has IPv4 addresses only: AAAA (and the rest) get an
    // empty answer, not the host's (which would say the name is unknown).
    if matches!(question.query_type(), RecordType::A | RecordType::ANY) {
        for ip in addresses {
            reply.add_answer(Record::from_rdata(
                question.name().clone(),
                TTL,
                RData::A(A(ip)),
            ));
        }
    }
    match reply.to_vec() {
        Ok(bytes) => Answer::Reply(bytes),
        Err(_) => Answer::Drop,
    }
}

/// A SERVFAIL for `packet` (no resolver answered), if it parses.
pub fn server_failure(packet: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let mut reply = Message::error_msg(query.id(), query.op_code(), ResponseCode::ServFail);
    reply.add_queries(query.queries().to_vec());
    reply.set_recursion_desired(query.recursion_desired());
    reply.set_recursion_available(true);
    reply.to_vec().ok()
}

/// The resolvers queries are forwarded to: the host's (from its
/// resolv.conf, loopback ones included: the daemon asks from the host's
/// network namespace), or `MINI_DOCKER_DNS_UPSTREAM` (`IP:PORT,…`, which
/// tests use for a resolver of their own).
pub fn upstreams(resolv_conf: &str) -> Vec<std::net::SocketAddr> {
    if let Ok(list) = std::env::var("MINI_DOCKER_DNS_UPSTREAM") {
        return list
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
    }
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

/// A container's resolv.conf on a user-defined network: the embedded
/// server, with the host's search domains and options (Docker's).
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let t = line.trim();
        if t.starts_with("search") || t.starts_with("domain") {
            out.push_str(t);
            out.push('\n');
        }
    }
    out.push_str("nameserver 127.0.0.11\noptions ndots:0\n");
    out
}

/// A container's resolv.conf: on a user-defined network (`embedded`) the
/// embedded server, else the host's name servers without loopback ones;
/// `--dns` servers replace the host's (behind the embedded server, they
/// are where it forwards), `--dns-search` the search domains,
/// `--dns-option` the options (with the embedded server, `ndots:0` unless
/// given).
pub fn container_resolv(
    host: &str,
    embedded: bool,
    servers: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let base = if embedded {
        resolv_conf(host)
    } else {
        super::files::resolv_conf(host)
    };
    let starts = |l: &str, words: &[&str]| words.iter().any(|w| l.trim_start().starts_with(w));
    let mut out: Vec<String> = base
        .lines()
        .filter(|l| {
            // What the flags replace goes.
            let replaced = (!search.is_empty() && starts(l, &["search", "domain"]))
                || (!embedded && !servers.is_empty() && starts(l, &["nameserver"]))
                || (!options.is_empty() && starts(l, &["options"]));
            !replaced
        })
        .map(String::from)
        .collect();
    if !search.is_empty() {
        out.insert(0, format!("search {}", search.join(" ")));
    }
    if !embedded {
        for s in servers {
            out.push(format!("nameserver {s}"));
        }
    }
    if !options.is_empty() {
        let mut opts = options.to_vec();
        if embedded && !opts.iter().any(|o| o.starts_with("ndots:")) {
            opts.insert(0, "ndots:0".into());
        }
        out.push(format!("options {}", opts.join(" ")));
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(77)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_str(name).unwrap(), kind));
        m.to_vec().unwrap()
    }

    fn lookup(name: &str) -> Vec<Ipv4Addr> {
        match name {
            "web" => vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
            _ => Vec::new(),
        }
    }

    #[test]
    fn names_of_the_network_are_answered_others_forwarded() {
        let Answer::Reply(bytes) = answer(&query("WEB.", RecordType::A), lookup) else {
            panic!("web is ours");
        };
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.id(), 77);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        let ips: Vec<_> = reply
            .answers()
            .iter()
            .filter_map(|r| r.data().as_a().map(|a| a.0))
            .collect();
        assert_eq!(ips, lookup("web"));
        let Answer::Reply(bytes) = answer(&query("web.", RecordType::AAAA), lookup) else {
            panic!("AAAA of ours is ours too");
        };
        assert!(Message::from_vec(&bytes).unwrap().answers().is_empty());
        assert_eq!(
            answer(&query("example.org.", RecordType::A), lookup),
            Answer::Forward
        );
        assert_eq!(answer(b"\x01\x02junk", lookup), Answer::Drop);
        let fail = server_failure(&query("example.org.", RecordType::A)).unwrap();
        assert_eq!(
            Message::from_vec(&fail).unwrap().response_code(),
            ResponseCode::ServFail
        );
    }

    #[test]
    fn resolv_conf_points_at_the_embedded_server() {
        let host = "search corp.example\nnameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n"
        );
        assert_eq!(upstreams(host), vec!["127.0.0.53:53".parse().unwrap()]);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            container_resolv(
                host,
                false,
                &s(&["192.0.2.53"]),
                &s(&["a.example"]),
                &s(&["ndots:2"])
            ),
            "search a.example\nnameserver 192.0.2.53\noptions ndots:2\n"
        );
        assert_eq!(
            container_resolv(host, true, &s(&["192.0.2.53"]), &[], &s(&["timeout:1"])),
            "search corp.example\nnameserver 127.0.0.11\noptions ndots:0 timeout:1\n"
        );
    }
}
