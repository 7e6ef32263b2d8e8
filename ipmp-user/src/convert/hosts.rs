//! `/etc/hosts`: the addresses of the host names the hostname files use.
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::HOSTS_FILE;

#[derive(Default)]
pub(super) struct HostEntry {
    pub(super) v4: Option<Ipv4Addr>,
    pub(super) v6: bool,
}

pub(super) struct Hosts {
    pub(super) given: bool,
    /// By lower-case name: host names are case-insensitive.
    pub(super) names: HashMap<String, HostEntry>,
}

impl Hosts {
    pub(super) fn parse(text: Option<&str>, notes: &mut Vec<String>) -> Hosts {
        let mut hosts = Hosts {
            given: text.is_some(),
            names: HashMap::new(),
        };
        for (i, line) in text.unwrap_or_default().lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let Some(addr) = fields.next() else {
                continue;
            };
            let (v4, v6) = match (addr.parse::<Ipv4Addr>(), addr.parse::<Ipv6Addr>()) {
                (Ok(v4), _) => (Some(v4), false),
                (_, Ok(_)) => (None, true),
                _ => {
                    notes.push(format!(
                        "{HOSTS_FILE} line {}: \"{addr}\" is not an address; the line was skipped",
                        i + 1
                    ));
                    continue;
                }
            };
            for name in fields {
                // The first address of a name wins, as in the files backend.
                let entry = hosts.names.entry(name.to_ascii_lowercase()).or_default();
                if entry.v4.is_none() {
                    entry.v4 = v4;
                }
                entry.v6 |= v6;
            }
        }
        hosts
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn hosts_lookup_is_case_insensitive_and_first_wins() {
        let hosts = "# comment\n::1 localhost\n192.0.2.10 Prod prod-alias # trailing\n\
                     192.0.2.11 prod\n192.0.2.20 Test\n2001:db8::1 v6only\n";
        let input = files(
            &[
                ("eth0", "PROD group g up"),
                ("eth1", "test/25 -failover group g up"),
            ],
            Some(hosts),
        );
        let (config, _) = config_of(&input);
        assert_eq!(
            config.groups[0].data_addresses,
            ["192.0.2.10/24".parse().unwrap()]
        );
        assert_eq!(
            config.groups[0].members[1].test_address,
            Some("192.0.2.20/25".parse().unwrap())
        );
        let input = files(&[("eth0", "v6only group g up")], Some(hosts));
        assert_eq!(
            errors(&input),
            [
                "hostname.eth0:1: `v6only`: host name \"v6only\" has only an IPv6 address in \
                /etc/hosts; give it its IPv4 address in --hosts FILE, or write the address"
            ]
        );
    }

    #[test]
    fn unknown_host_name() {
        let input = files(
            &[
                ("ipmp0", "ipmp prod up"),
                ("eth0", "prod-eth0 -failover group ipmp0 up"),
                ("eth1", "prod-eth1 -failover group ipmp0 up"),
            ],
            Some(HOSTS),
        );
        assert_eq!(
            errors(&input),
            ["hostname.eth1:1: `prod-eth1`: unknown host name \"prod-eth1\" (not in /etc/hosts); \
                add it to --hosts FILE or write the address"]
        );
        let input = files(&[("eth0", "prod group g up")], None);
        assert_eq!(
            errors(&input),
            ["hostname.eth0:1: `prod`: unknown host name \"prod\" (no hosts file was given); add \
                it to --hosts FILE or write the address"]
        );
    }
}
