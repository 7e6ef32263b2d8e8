//! `hostname.IF` files: the interfaces as ifconfig would configure them.
//!
//! Each file is split into ifconfig commands (`commands`), each command is
//! applied to its interface (`ifconfig`), and what needs the whole
//! interface is checked last (`finish_interface`).
use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::hosts::Hosts;
use super::ifconfig::{Parser, PlusFrom};
use super::{problem, ConvertProblem, Loc, Output};

/// What a Solaris boot appends to a one-line hostname file
/// (`inet_oneline_epilogue` in the boot scripts).
pub(super) const ONE_LINE_EPILOGUE: [&str; 5] = ["netmask", "+", "broadcast", "+", "up"];

/// A logical interface: one address and its flags.
#[derive(Default)]
pub(super) struct Logical {
    pub(super) addr: Option<Addr>,
    /// Set by a prefix length or an explicit netmask; otherwise classful.
    pub(super) prefix: Option<u8>,
    /// `netmask +` applied (it reads /etc/netmasks, which we cannot).
    pub(super) netmask_plus: Option<PlusFrom>,
    /// `-failover`: a test address.
    pub(super) nofailover: bool,
    pub(super) deprecated: bool,
    pub(super) up: bool,
    pub(super) broadcast: Option<(Ipv4Addr, Loc, String)>,
}

pub(super) struct Addr {
    pub(super) ip: Ipv4Addr,
    /// The host name it was written as, if any.
    pub(super) name: Option<String>,
    /// As written, for the messages.
    pub(super) written: String,
    pub(super) loc: Loc,
    /// Which command (logical line) of which file set it.
    pub(super) command: (String, usize),
}

impl Logical {
    pub(super) fn prefix_len(&self) -> u8 {
        match (self.prefix, &self.addr) {
            (Some(prefix), _) => prefix,
            (None, Some(addr)) => classful_prefix(addr.ip).unwrap_or(32),
            (None, None) => 32,
        }
    }
}

/// One physical interface, from all its hostname files.
pub(super) struct Interface {
    pub(super) name: String,
    pub(super) files: Vec<String>,
    /// The file lines, for the comments of the TOML.
    pub(super) lines: Vec<(Loc, String)>,
    pub(super) ipmp: Option<Loc>,
    pub(super) group: Option<(String, Loc)>,
    pub(super) standby: Option<Loc>,
    /// Logical interface 0 (the physical one) first.
    pub(super) logicals: Vec<Logical>,
    // Reported only if the interface is part of IPMP.
    pub(super) problems: Vec<ConvertProblem>,
    pub(super) ignored: Vec<Ignored>,
    pub(super) notes: Vec<String>,
}

/// A harmless token that has no meaning here.
pub(super) struct Ignored {
    pub(super) token: String,
    pub(super) why: &'static str,
    pub(super) loc: Loc,
}

impl Interface {
    fn new(name: &str) -> Interface {
        Interface {
            name: name.to_owned(),
            files: Vec::new(),
            lines: Vec::new(),
            ipmp: None,
            group: None,
            standby: None,
            logicals: vec![Logical::default()],
            problems: Vec::new(),
            ignored: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(super) fn in_ipmp(&self) -> bool {
        self.ipmp.is_some() || self.group.is_some()
    }
}

fn hostname_file(interface: &str) -> String {
    format!("hostname.{interface}")
}

pub(super) fn read_hostname_files(
    files: &[(String, String)],
    hosts: &Hosts,
    out: &mut Output,
) -> Vec<Interface> {
    if files.is_empty() {
        out.problems.push(ConvertProblem {
            file: "hostname.IF".into(),
            line: None,
            token: None,
            why: "no hostname file was given".into(),
            fix: "give the /etc/hostname.IF files of the IPMP interfaces and their members".into(),
        });
    }
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for (name, text) in files {
        let file = hostname_file(name);
        if seen.insert(name.as_str(), ()).is_some() {
            out.problems.push(ConvertProblem {
                file,
                line: None,
                token: None,
                why: "this file is given twice".into(),
                fix: "give each hostname file once".into(),
            });
            continue;
        }
        let (physical, unit) = match name.split_once(':') {
            None => (name.as_str(), None),
            Some((physical, unit)) => match unit.parse::<u32>() {
                Ok(unit) if !physical.is_empty() => (physical, Some(unit).filter(|&u| u > 0)),
                _ => {
                    out.problems.push(ConvertProblem {
                        file,
                        line: None,
                        token: None,
                        why: format!("\"{name}\" is not an interface name (IF or IF:N)"),
                        fix: "name the file hostname.IF after its interface".into(),
                    });
                    continue;
                }
            },
        };
        if physical.is_empty() {
            out.problems.push(ConvertProblem {
                file,
                line: None,
                token: None,
                why: "the file name has no interface name".into(),
                fix: "name the file hostname.IF after its interface".into(),
            });
            continue;
        }
        let index = match interfaces.iter().position(|i| i.name == physical) {
            Some(index) => index,
            None => {
                interfaces.push(Interface::new(physical));
                interfaces.len() - 1
            }
        };
        let iface = &mut interfaces[index];
        iface.files.push(file.clone());
        let start = match unit {
            None => 0,
            // hostname.IF:N configures a logical interface of its own.
            Some(_) => {
                iface.logicals.push(Logical::default());
                iface.logicals.len() - 1
            }
        };
        Parser { hosts, file, iface }.file(text, start);
    }
    for iface in &mut interfaces {
        finish_interface(iface);
    }
    interfaces
}

/// One word of a hostname file.
pub(super) struct Tok {
    pub(super) text: String,
    pub(super) line: usize,
    /// Added by the one-line rule, not written.
    pub(super) implied: bool,
}

/// The commands of a hostname file: each line is one ifconfig command, a
/// backslash at the end of a line continues it (the boot scripts `read`
/// the file). `#` starts a comment, which Solaris does not have but which
/// cannot mean anything else.
pub(super) fn commands(text: &str) -> (Vec<Vec<Tok>>, Vec<(usize, String)>) {
    let mut commands = Vec::new();
    let mut lines = Vec::new();
    let mut current = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if !raw.trim().is_empty() {
            lines.push((i + 1, raw.trim_end().to_owned()));
        }
        let (body, continued) = match raw.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (raw, false),
        };
        for word in body.split_whitespace() {
            if word.starts_with('#') {
                break;
            }
            current.push(Tok {
                text: word.to_owned(),
                line: i + 1,
                implied: false,
            });
        }
        if !continued && !current.is_empty() {
            commands.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        commands.push(current);
    }
    (commands, lines)
}

/// Checks that need the whole interface: explicit broadcast addresses, and
/// addresses never brought up.
fn finish_interface(iface: &mut Interface) {
    for logical in &iface.logicals {
        let Some((broadcast, loc, shown)) = &logical.broadcast else {
            continue;
        };
        let Some(addr) = &logical.addr else {
            iface.ignored.push(Ignored {
                token: shown.clone(),
                why: "there is no address to broadcast for",
                loc: loc.clone(),
            });
            continue;
        };
        let prefix = logical.prefix_len();
        let derived = broadcast_of(addr.ip, prefix);
        if *broadcast == derived {
            iface.ignored.push(Ignored {
                token: shown.clone(),
                why: "it is the broadcast address of the prefix, which follows from it",
                loc: loc.clone(),
            });
        } else {
            iface.problems.push(problem(
                loc,
                Some(shown.clone()),
                format!(
                    "the broadcast address of {}/{prefix} is {derived}, and ipmp cannot use another",
                    addr.ip
                ),
                "correct the netmask, or write `broadcast +`".into(),
            ));
        }
    }
    for logical in &iface.logicals {
        if let (Some(addr), false) = (&logical.addr, logical.up) {
            iface.notes.push(format!(
                "{}: {} is never brought `up` in {}, so Solaris left it down; it was converted as \
                    if it were up (remove it from the TOML if it is not meant to be used)",
                addr.loc,
                addr.ip,
                iface.files.join(", ")
            ));
        }
    }
}

/// Solaris' netmask forms: dotted (255.255.255.0) or hexadecimal
/// (ffffff00, 0xffffff00); contiguous only.
pub(super) fn parse_netmask(text: &str) -> Option<u8> {
    let mask = match text.parse::<Ipv4Addr>() {
        Ok(ip) => u32::from(ip),
        Err(_) => {
            let hex = text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("0X"))
                .unwrap_or(text);
            if hex.len() != 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(hex, 16).ok()?
        }
    };
    let prefix = mask.leading_ones();
    (prefix + mask.trailing_zeros() >= 32).then_some(prefix as u8)
}

/// The netmask Solaris gives an address without one: by address class.
fn classful_prefix(ip: Ipv4Addr) -> Option<u8> {
    match ip.octets()[0] {
        0..=127 => Some(8),
        128..=191 => Some(16),
        192..=223 => Some(24),
        _ => None,
    }
}

pub(super) fn unusable(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else if ip.octets()[0] == 0 || ip.octets()[0] >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

fn broadcast_of(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) | host_mask)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// A single-line file gets `netmask + broadcast + up` appended, so a
    /// bare address is up with its classful netmask; a multi-line file does
    /// not.
    #[test]
    fn one_line_and_multi_line_files() {
        let input = files(
            &[
                ("eth0", "192.0.2.5 group g"),
                ("eth1", "group g\n192.0.2.6 -failover"),
            ],
            None,
        );
        let (config, notes) = config_of(&input);
        assert_eq!(
            config.groups[0].data_addresses,
            ["192.0.2.5/24".parse().unwrap()]
        );
        has_note(
            &notes,
            "hostname.eth1 line 2: 192.0.2.6 is never brought `up`",
        );
        assert!(!notes.iter().any(|n| n.contains("192.0.2.5 is never")));
    }

    #[test]
    fn logical_interface_files() {
        let input = files(
            &[
                ("hme0", "hme0-test deprecated -failover group g up"),
                ("hme0:1", "192.0.2.200/24 up"),
                (
                    "hme1",
                    "192.0.2.202 deprecated -failover group g standby up",
                ),
            ],
            Some("192.0.2.201 hme0-test\n"),
        );
        let (config, _) = config_of(&input);
        assert_one_group(
            &config,
            "g",
            &["192.0.2.200/24"],
            &[
                ("hme0", Some("192.0.2.201/24"), false),
                ("hme1", Some("192.0.2.202/24"), true),
            ],
        );
    }
}
