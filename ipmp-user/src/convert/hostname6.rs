//! IPv6: `hostname6.IF` files add their IPv6 data addresses to the groups
//! the `hostname.IF` files made.
use std::net::Ipv6Addr;

use super::gather::Group;
use super::hostname::commands;
use super::{problem, Loc, Output};

/// ifconfig's prefix length for an IPv6 address written without one.
const DEFAULT_PREFIX6: u8 = 64;

/// Adds the IPv6 data addresses of the hostname6.IF files to their groups.
/// Members need nothing else: their IPv6 test address is their link-local
/// address, and a group with an IPv6 data address probes over IPv6 by
/// itself.
pub(super) fn read_hostname6_files(
    files: &[(String, String)],
    groups: &mut [Group],
    out: &mut Output,
) {
    for (name, text) in files {
        let file = format!("hostname6.{name}");
        let read = read_hostname6(&file, text, out);
        if read.data.is_empty() {
            continue;
        }
        // New IPMP: the IPMP interface is the group; classic: the
        // interface's group, as its hostname files name it.
        let target = groups.iter().position(|g| {
            (read.ipmp && g.name == *name)
                || g.members.iter().any(|m| m.interface == *name)
                || read.group.as_deref() == Some(g.name.as_str())
        });
        let Some(target) = target else {
            out.problems.push(problem(
                &Loc {
                    file: file.clone(),
                    line: read.data[0].2,
                },
                None,
                format!("{name} is in no group converted from the hostname.IF files"),
                "give the group's hostname.IF files too (an IPv6-only group is not converted)"
                    .into(),
            ));
            continue;
        };
        for (ip, prefix, line) in read.data {
            groups[target]
                .data6
                .push((ip, prefix, format!("{file} line {line}")));
        }
    }
}

/// What a hostname6.IF file says: whether it is an IPMP interface, its
/// group, and its IPv6 data addresses (addresses that fail over, not
/// link-local).
struct Hostname6 {
    ipmp: bool,
    group: Option<String>,
    /// Address, prefix length, line.
    data: Vec<(Ipv6Addr, u8, usize)>,
}

fn read_hostname6(file: &str, text: &str, out: &mut Output) -> Hostname6 {
    let mut read = Hostname6 {
        ipmp: false,
        group: None,
        data: Vec::new(),
    };
    let (commands, _) = commands(text);
    for command in &commands {
        let mut failover = true;
        let mut words = command.iter();
        let mut addresses = Vec::new();
        while let Some(tok) = words.next() {
            let loc = Loc {
                file: file.to_owned(),
                line: tok.line,
            };
            match tok.text.as_str() {
                "inet6" | "plumb" | "up" | "failover" | "standby" | "-standby" | "deprecated"
                | "-deprecated" => {}
                "-failover" => failover = false,
                "ipmp" => read.ipmp = true,
                "addif" => {
                    // A new logical interface: its own failover flag.
                    read.data.extend(addresses.drain(..).filter(|_| failover));
                    failover = true;
                }
                "group" => read.group = words.next().map(|t| t.text.clone()),
                "token" => {
                    words.next();
                    out.notes.push(format!(
                        "{file}:{}: `token` ignored: Linux makes each member's \
                         link-local address itself",
                        tok.line
                    ));
                }
                word => match parse_address6(word) {
                    Some((ip, _)) if ip.is_unicast_link_local() => out.notes.push(format!(
                        "{file}:{}: link-local {ip} ignored: each member's own \
                             link-local address is its IPv6 test address",
                        tok.line
                    )),
                    Some((ip, prefix)) => addresses.push((ip, prefix, tok.line)),
                    None => out.problems.push(problem(
                        &loc,
                        Some(word.to_owned()),
                        "not converted from a hostname6.IF file (addresses, ipmp, \
                         group, addif, -failover, standby, up are)"
                            .into(),
                        "remove it, and set it up by other means on Linux if it is \
                         still needed"
                            .into(),
                    )),
                },
            }
        }
        read.data.extend(addresses.drain(..).filter(|_| failover));
    }
    read
}

/// An IPv6 address with an optional `/N` (ifconfig's default otherwise).
fn parse_address6(word: &str) -> Option<(Ipv6Addr, u8)> {
    let (ip, prefix) = match word.split_once('/') {
        None => (word, DEFAULT_PREFIX6),
        Some((ip, len)) => (ip, len.parse().ok().filter(|&p| p <= 128)?),
    };
    Some((ip.parse().ok()?, prefix))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// New IPMP with IPv6: the IPMP interface's hostname6 file holds the
    /// IPv6 data addresses; the members' files (empty, or `-failover`
    /// with a link-local token) add nothing but notes.
    #[test]
    fn hostname6_files_add_ipv6_data_addresses() {
        let input = SolarisFiles {
            hostname6_files: vec![
                (
                    "ipmp0".into(),
                    "ipmp group ipmp0 up\naddif 2001:db8::200/64 up\naddif 2001:db8:1::200 up\n"
                        .into(),
                ),
                (
                    "eth0".into(),
                    "token ::10/64 -failover group ipmp0 up\n".into(),
                ),
                ("eth1".into(), "fe80::11 -failover group ipmp0 up\n".into()),
            ],
            ..files(
                &[
                    ("ipmp0", "ipmp 192.0.2.200/24 up"),
                    ("eth0", "192.0.2.201/24 -failover group ipmp0 up"),
                    ("eth1", "192.0.2.202/24 -failover group ipmp0 up"),
                ],
                None,
            )
        };
        let (config, notes) = config_of(&input);
        let data: Vec<String> = config.groups[0]
            .data_addresses
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            data,
            ["192.0.2.200/24", "2001:db8::200/64", "2001:db8:1::200/64"]
        );
        has_note(&notes, "hostname6.eth0:1: `token` ignored");
        has_note(&notes, "hostname6.eth1:1: link-local fe80::11 ignored");
        let refused = SolarisFiles {
            hostname6_files: vec![("eth9".into(), "2001:db8::9/64 up\n".into())],
            ..input
        };
        assert_eq!(
            errors(&refused),
            ["hostname6.eth9:1: eth9 is in no group converted from the hostname.IF files; give the \
                group's hostname.IF files too (an IPv6-only group is not converted)"]
        );
    }
}
