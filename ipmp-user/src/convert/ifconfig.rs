//! The ifconfig(1M) command language of hostname files: its keywords, as
//! this converter treats them, and what one command does to an interface.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use super::hostname::{
    commands, parse_netmask, unusable, Addr, Ignored, Interface, Logical, Tok, ONE_LINE_EPILOGUE,
};
use super::hosts::{HostEntry, Hosts};
use super::{problem, Loc, HOSTS_FILE};

/// The ifconfig(1M) keywords, as this converter treats them.
#[derive(Clone, Copy)]
enum Kw {
    Up,
    Ipmp,
    Group,
    Addif,
    Set,
    Netmask,
    Broadcast,
    /// `-failover` (true) / `failover`.
    NoFailover(bool),
    Deprecated(bool),
    Standby(bool),
    /// Starts DHCP; the rest of the command is its options.
    Dhcp,
    /// Harmless here; noted. `arg`: takes an argument.
    Ignored {
        arg: bool,
        why: &'static str,
    },
    /// Changes the meaning; refused.
    Refused {
        arg: Arg,
        why: &'static str,
        fix: &'static str,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Yes,
    /// `ether [ADDR]`.
    Optional,
}

const NO_EQUIVALENT: &str = "ipmp has no equivalent for it";
const REMOVE_IT: &str = "remove it, and set it up by other means on Linux if it is still needed";
const TUNNEL: &str = "it is a tunnel setting, and a tunnel cannot be an IPMP member";
const IPV6_ONLY: &str =
    "it is an IPv6 setting, and hostname.IF files are IPv4 (Solaris refuses it too)";

/// What `word` is to this converter, if it is an ifconfig keyword.
fn keyword(word: &str) -> Option<Kw> {
    use Kw::*;
    Some(match word {
        "up" => Up,
        "ipmp" => Ipmp,
        "group" => Group,
        "addif" => Addif,
        "set" => Set,
        "netmask" => Netmask,
        "broadcast" => Broadcast,
        "-failover" => NoFailover(true),
        "failover" => NoFailover(false),
        "deprecated" => Deprecated(true),
        "-deprecated" => Deprecated(false),
        "standby" => Standby(true),
        "-standby" => Standby(false),
        "dhcp" | "auto-dhcp" => Dhcp,
        _ => {
            return ignored(word)
                .or_else(|| refused_setting(word))
                .or_else(|| refused_elsewhere(word))
        }
    })
}

/// The keywords that are harmless here: noted, not converted.
fn ignored(word: &str) -> Option<Kw> {
    let ignored = |arg, why| Kw::Ignored { arg, why };
    Some(match word {
        "plumb" => ignored(false, "ipmpd uses the member interfaces as they exist"),
        "inet" => ignored(false, "hostname.IF files are IPv4 already"),
        "trailers" | "-trailers" => ignored(false, "trailer encapsulation does not exist on Linux"),
        "arp" | "xmit" | "local" | "-router" | "-failed" => ignored(false, "it is the default"),
        "private" | "-private" => ignored(false, "only Solaris routing daemons read it"),
        "metric" => ignored(true, "only Solaris routing daemons read the metric"),
        "index" => ignored(true, "Linux chooses interface indexes itself"),
        "debug" | "verbose" | "configinfo" | "modlist" => {
            ignored(false, "it only changes what ifconfig prints")
        }
        _ => return None,
    })
}

fn refused(arg: Arg, why: &'static str, fix: &'static str) -> Kw {
    Kw::Refused { arg, why, fix }
}

/// The refused keywords that set up the interface or its addresses in a
/// way ipmp cannot keep.
fn refused_setting(word: &str) -> Option<Kw> {
    Some(match word {
        "down" => refused(
            Arg::No,
            "the address is configured down, so Solaris does not use it",
            "remove the address (or `down`) from the file and convert again",
        ),
        "unplumb" => refused(
            Arg::No,
            "it removes the interface",
            "remove it from the file",
        ),
        "-arp" => refused(
            Arg::No,
            "ipmp members need ARP: ipmpd answers ARP for each data address on the member it is \
             bound to",
            "remove `-arp`",
        ),
        "router" => refused(
            Arg::No,
            "it turns on IP forwarding, which ipmpd does not configure",
            "remove it, and set net.ipv4.conf.GROUP.forwarding=1 with sysctl instead",
        ),
        "mtu" => refused(
            Arg::Yes,
            "ipmpd does not set member MTUs (the group interface takes the smallest member MTU)",
            "remove it, and set the MTU of the members with the distribution's network \
             configuration",
        ),
        "failed" => refused(
            Arg::No,
            "it marks the interface failed by hand",
            "remove it; take a member out of service with `ipmpctl offline IF`",
        ),
        "-xmit" => refused(
            Arg::No,
            "the interface would not transmit, which ipmp cannot express",
            REMOVE_IT,
        ),
        "-local" => refused(Arg::No, NO_EQUIVALENT, REMOVE_IT),
        "inet6" => refused(
            Arg::No,
            "hostname.IF files are IPv4 (Solaris keeps IPv6 in hostname6.IF)",
            "move the IPv6 part to the interface's hostname6.IF file",
        ),
        "removeif" => refused(
            Arg::Yes,
            "it removes an address configured elsewhere",
            "write the files without that address",
        ),
        _ => return None,
    })
}

/// The refused keywords that belong to things ipmp does not manage:
/// zones, RARP, point-to-point links, MAC addresses, STREAMS, tunnels and
/// IPv6.
fn refused_elsewhere(word: &str) -> Option<Kw> {
    Some(match word {
        "zone" | "all-zones" | "-zone" => refused(
            if word == "zone" { Arg::Yes } else { Arg::No },
            "zones do not exist on Linux",
            "remove it; run ipmpd in the network namespace that should have the group",
        ),
        "auto-revarp" => refused(
            Arg::No,
            "RARP does not exist here",
            "write the address instead",
        ),
        "destination" | "subnet" => refused(
            Arg::Yes,
            "point-to-point settings have no meaning for IPMP",
            "remove it",
        ),
        "ether" => refused(
            Arg::Optional,
            "ipmpd does not set MAC addresses",
            "remove it, and set the MAC address with the distribution's network configuration",
        ),
        "usesrc" => refused(Arg::Yes, NO_EQUIVALENT, REMOVE_IT),
        "modinsert" | "modremove" => refused(
            Arg::Yes,
            "STREAMS modules do not exist on Linux",
            "remove it",
        ),
        "tsrc" | "tdst" | "encaplimit" | "thoplimit" | "auth_algs" | "encr_algs"
        | "encr_auth_algs" => refused(Arg::Yes, TUNNEL, "remove it"),
        "-encaplimit" => refused(Arg::No, TUNNEL, "remove it"),
        "token" => refused(Arg::Yes, IPV6_ONLY, "remove it"),
        "anycast" | "-anycast" | "preferred" | "-preferred" | "nud" | "-nud" => {
            refused(Arg::No, IPV6_ONLY, "remove it")
        }
        _ => return None,
    })
}

/// Where a `netmask +` came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PlusFrom {
    Written,
    /// Appended to a one-line file.
    OneLineRule,
}

impl PlusFrom {
    fn of(tok: &Tok) -> PlusFrom {
        if tok.implied {
            PlusFrom::OneLineRule
        } else {
            PlusFrom::Written
        }
    }
}

/// The last `netmask` of a command, which ifconfig applies to the
/// addresses the command sets (its "netmask hack").
#[derive(Clone, Copy)]
enum Pending {
    None,
    Plus(PlusFrom),
    Mask(u8),
}

/// A command while its words are applied.
struct Command<'t> {
    toks: &'t [Tok],
    /// The next word to read.
    next: usize,
    /// Which command of the file this is.
    index: usize,
    /// The logical interface the words apply to (`addif` starts another).
    current: usize,
    pending: Pending,
}

/// The command's last `netmask`, which applies to every address it sets.
fn last_netmask(toks: &[Tok]) -> Pending {
    let mut pending = Pending::None;
    for pair in toks.windows(2) {
        if pair[0].text == "netmask" {
            match pair[1].text.as_str() {
                "+" => pending = Pending::Plus(PlusFrom::of(&pair[1])),
                mask => {
                    if let Some(prefix) = parse_netmask(mask) {
                        pending = Pending::Mask(prefix);
                    }
                }
            }
        }
    }
    pending
}

/// Whether the keyword takes the next word as its argument.
fn takes_arg(kw: Kw) -> bool {
    match kw {
        Kw::Group | Kw::Addif | Kw::Set | Kw::Netmask | Kw::Broadcast => true,
        Kw::Ignored { arg, .. } => arg,
        Kw::Refused { arg, .. } => arg == Arg::Yes,
        _ => false,
    }
}

pub(super) struct Parser<'a> {
    pub(super) hosts: &'a Hosts,
    pub(super) file: String,
    pub(super) iface: &'a mut Interface,
}

impl Parser<'_> {
    fn loc(&self, tok: &Tok) -> Loc {
        Loc {
            file: self.file.clone(),
            line: tok.line,
        }
    }

    fn error(&mut self, tok: &Tok, token: String, why: impl Into<String>, fix: impl Into<String>) {
        let loc = self.loc(tok);
        self.iface
            .problems
            .push(problem(&loc, Some(token), why.into(), fix.into()));
    }

    fn ignore(&mut self, tok: &Tok, token: String, why: &'static str) {
        if !tok.implied {
            let loc = self.loc(tok);
            self.iface.ignored.push(Ignored { token, why, loc });
        }
    }

    pub(super) fn file(&mut self, text: &str, start: usize) {
        let (mut commands, lines) = commands(text);
        for (line, text) in lines {
            let loc = Loc {
                file: self.file.clone(),
                line,
            };
            self.iface.lines.push((loc, text));
        }
        // A one-line file gets `netmask + broadcast + up` appended.
        if let [only] = commands.as_mut_slice() {
            let line = only.last().map_or(1, |t| t.line);
            only.extend(ONE_LINE_EPILOGUE.iter().map(|word| Tok {
                text: (*word).to_owned(),
                line,
                implied: true,
            }));
        }
        for (index, command) in commands.iter().enumerate() {
            self.command(index, command, start);
        }
    }

    fn command(&mut self, index: usize, toks: &[Tok], start: usize) {
        let mut cmd = Command {
            toks,
            next: 0,
            index,
            current: start,
            pending: last_netmask(toks),
        };
        while let Some(tok) = toks.get(cmd.next) {
            cmd.next += 1;
            let Some(kw) = keyword(&tok.text) else {
                self.address_word(tok, cmd.current, cmd.index, &mut cmd.pending);
                continue;
            };
            if self.apply(&mut cmd, tok, kw).is_break() {
                break;
            }
        }
    }

    /// Applies the keyword `tok` (with its argument, taken from the
    /// command) to the command's logical interface. `Break` ends the
    /// command: the rest cannot be read.
    fn apply(&mut self, cmd: &mut Command<'_>, tok: &Tok, kw: Kw) -> ControlFlow<()> {
        let toks = cmd.toks;
        let word = tok.text.as_str();
        let arg = if takes_arg(kw) {
            let Some(arg) = toks.get(cmd.next) else {
                self.error(
                    tok,
                    word.to_owned(),
                    "it needs an argument",
                    "give it one, or remove it",
                );
                return ControlFlow::Break(());
            };
            cmd.next += 1;
            Some(arg)
        } else {
            None
        };
        let shown = match arg {
            Some(arg) => format!("{word} {}", arg.text),
            None => word.to_owned(),
        };
        let logical = &mut self.iface.logicals[cmd.current];
        match kw {
            Kw::Up => {
                logical.up = true;
                self.ignore(
                    tok,
                    shown,
                    "ipmpd brings the group interface and its members up itself",
                );
            }
            Kw::NoFailover(on) => logical.nofailover = on,
            Kw::Deprecated(on) => logical.deprecated = on,
            Kw::Standby(on) => self.iface.standby = on.then(|| self.loc(tok)),
            Kw::Ipmp => {
                if self.iface.ipmp.is_none() {
                    self.iface.ipmp = Some(self.loc(tok));
                }
            }
            Kw::Group => self.group(tok, arg, shown),
            Kw::Addif => {
                self.iface.logicals.push(Logical::default());
                cmd.current = self.iface.logicals.len() - 1;
                if let Some(arg) = arg {
                    self.address(arg, &shown, cmd.current, cmd.index, &mut cmd.pending);
                }
            }
            Kw::Set => {
                if let Some(arg) = arg {
                    self.address(arg, &shown, cmd.current, cmd.index, &mut cmd.pending);
                }
            }
            Kw::Netmask => self.netmask(tok, arg, shown, cmd.current),
            Kw::Broadcast => self.broadcast(tok, arg, shown, cmd.current),
            Kw::Dhcp => {
                self.error(
                    tok,
                    word.to_owned(),
                    "ipmp needs static addresses, and DHCP is not converted",
                    "write the address the DHCP server gives instead",
                );
                return ControlFlow::Break(());
            }
            Kw::Ignored { why, .. } => self.ignore(tok, shown, why),
            Kw::Refused { arg, why, fix } => {
                let mut shown = shown;
                if arg == Arg::Optional && toks.get(cmd.next).is_some_and(|t| t.text.contains(':'))
                {
                    shown = format!("{shown} {}", toks[cmd.next].text);
                    cmd.next += 1;
                }
                self.error(tok, shown, why, fix);
            }
        }
        ControlFlow::Continue(())
    }

    /// `group NAME`: an interface is in one group.
    fn group(&mut self, tok: &Tok, arg: Option<&Tok>, shown: String) {
        let name = arg.map(|a| a.text.clone()).unwrap_or_default();
        match &self.iface.group {
            Some((other, loc)) if *other != name => {
                let why = format!(
                    "{} is already in group \"{other}\" ({loc})",
                    self.iface.name
                );
                self.error(tok, shown, why, "put the interface in one group");
            }
            Some(_) => {}
            None => self.iface.group = Some((name, self.loc(tok))),
        }
    }

    /// `netmask MASK` or `netmask +` on the current logical interface.
    fn netmask(&mut self, tok: &Tok, arg: Option<&Tok>, shown: String, current: usize) {
        let logical = &mut self.iface.logicals[current];
        match arg.map(|a| a.text.as_str()) {
            Some("+") => {
                let from = arg.map_or(PlusFrom::Written, PlusFrom::of);
                if logical.prefix.is_none() && logical.netmask_plus != Some(PlusFrom::Written) {
                    logical.netmask_plus = Some(from);
                }
            }
            Some(mask) => match parse_netmask(mask) {
                Some(prefix) => logical.prefix = Some(prefix),
                None => self.error(
                    tok,
                    shown,
                    "not a netmask",
                    "write it as 255.255.255.0, ffffff00 or +",
                ),
            },
            None => {}
        }
    }

    /// `broadcast ADDR` or `broadcast +`: checked against the prefix once
    /// the interface is complete (`finish_interface`).
    fn broadcast(&mut self, tok: &Tok, arg: Option<&Tok>, shown: String, current: usize) {
        match arg.map(|a| a.text.as_str()) {
            Some("+") => self.ignore(tok, shown, "the broadcast address follows from the prefix"),
            Some(addr) => match addr.parse::<Ipv4Addr>() {
                Ok(ip) => {
                    let loc = self.loc(tok);
                    self.iface.logicals[current].broadcast = Some((ip, loc, shown));
                }
                Err(_) => self.error(
                    tok,
                    shown,
                    "not an IPv4 broadcast address",
                    "write it as an address, or as + (it follows from the prefix)",
                ),
            },
            None => {}
        }
    }

    /// A word that is no keyword: an address, a host name, a `/N` prefix
    /// length, or a mistake.
    fn address_word(&mut self, tok: &Tok, current: usize, command: usize, pending: &mut Pending) {
        let word = tok.text.as_str();
        if let Some(len) = word.strip_prefix('/') {
            match len.parse::<u8>() {
                Ok(prefix) if prefix <= 32 && !len.starts_with('+') => {
                    self.iface.logicals[current].prefix = Some(prefix);
                }
                _ => self.error(
                    tok,
                    word.to_owned(),
                    "not a prefix length",
                    "write /N with N from 0 to 32",
                ),
            }
            return;
        }
        let host = word.split('/').next().unwrap_or_default();
        let hostlike = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if host.is_empty()
            || word.starts_with('-')
            || (!hostlike && host.parse::<Ipv6Addr>().is_err())
        {
            self.error(
                tok,
                word.to_owned(),
                "unknown ifconfig keyword",
                "correct or remove it (ipmpctl convert reads the ifconfig(1M) keywords, addresses \
                    and host names of hostname files)",
            );
            return;
        }
        self.address(tok, word, current, command, pending);
    }

    /// Sets the address of a logical interface, as ifconfig does: with the
    /// prefix length written after it, else the command's last netmask.
    fn address(
        &mut self,
        tok: &Tok,
        shown: &str,
        current: usize,
        command: usize,
        pending: &mut Pending,
    ) {
        let Some((ip, prefix, name)) = self.resolve(tok, shown) else {
            return;
        };
        let loc = self.loc(tok);
        if ip.is_unspecified() {
            self.iface.notes.push(format!(
                "{loc}: {} means no address; {} was converted without one",
                tok.text, self.iface.name
            ));
            return;
        }
        if let Some(why) = unusable(ip) {
            self.error(
                tok,
                shown.to_owned(),
                format!("{ip} is {why}, not an interface address"),
                "write the interface's own unicast address",
            );
            return;
        }
        let file = self.file.clone();
        let logical = &mut self.iface.logicals[current];
        if let Some(old) = &logical.addr {
            if old.command == (file.clone(), command) {
                self.error(
                    tok,
                    shown.to_owned(),
                    "a second address in one command is a point-to-point destination, which IPMP does not use",
                    "remove it, or give it its own logical interface with `addif`",
                );
                return;
            }
            let note = format!(
                "{loc}: {} replaces {} ({}), as on Solaris",
                tok.text, old.ip, old.loc
            );
            self.iface.notes.push(note);
        }
        logical.addr = Some(Addr {
            ip,
            name,
            written: tok.text.clone(),
            loc,
            command: (file, command),
        });
        logical.prefix = None;
        logical.netmask_plus = None;
        match (prefix, *pending) {
            (Some(prefix), _) => {
                logical.prefix = Some(prefix);
                // A written prefix length also ends the command's netmask.
                *pending = Pending::None;
            }
            (None, Pending::Mask(prefix)) => logical.prefix = Some(prefix),
            (None, Pending::Plus(from)) => {
                // No /etc/netmasks here: the lookup finds nothing, and
                // Solaris leaves the classful netmask.
                logical.netmask_plus = Some(from);
                *pending = Pending::None;
            }
            (None, Pending::None) => {}
        }
    }

    /// An address or host name, with an optional `/N`.
    fn resolve(
        &mut self,
        tok: &Tok,
        shown: &str,
    ) -> Option<(Ipv4Addr, Option<u8>, Option<String>)> {
        let word = tok.text.as_str();
        if word
            .split('/')
            .next()
            .unwrap_or_default()
            .parse::<Ipv6Addr>()
            .is_ok()
        {
            self.error(
                tok,
                shown.to_owned(),
                "an IPv6 address in a hostname.IF file (Solaris keeps IPv6 in hostname6.IF)",
                "move it to the interface's hostname6.IF file",
            );
            return None;
        }
        let (host, prefix) = match word.split_once('/') {
            None => (word, None),
            Some((host, len)) => match len.parse::<u8>() {
                Ok(prefix) if prefix <= 32 && !len.starts_with('+') => (host, Some(prefix)),
                _ => {
                    self.error(
                        tok,
                        shown.to_owned(),
                        format!("\"/{len}\" is not a prefix length"),
                        "write ADDRESS/N with N from 0 to 32",
                    );
                    return None;
                }
            },
        };
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Some((ip, prefix, None));
        }
        match self.hosts.names.get(&host.to_ascii_lowercase()) {
            Some(HostEntry { v4: Some(ip), .. }) => Some((*ip, prefix, Some(host.to_owned()))),
            Some(HostEntry { v4: None, .. }) => {
                self.error(
                    tok,
                    shown.to_owned(),
                    format!("host name \"{host}\" has only an IPv6 address in {HOSTS_FILE}"),
                    "give it its IPv4 address in --hosts FILE, or write the address",
                );
                None
            }
            None => {
                let why = if self.hosts.given {
                    format!("unknown host name \"{host}\" (not in {HOSTS_FILE})")
                } else {
                    format!("unknown host name \"{host}\" (no hosts file was given)")
                };
                self.error(
                    tok,
                    shown.to_owned(),
                    why,
                    "add it to --hosts FILE or write the address",
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn unknown_and_unsupported_tokens() {
        let input = files(
            &[
                ("ipmp0", "ipmp 192.0.2.200 up"),
                ("eth0", "group ipmp0 -failver up\nmtu 9000"),
                ("eth1", "group ipmp0 -failover -arp up"),
            ],
            None,
        );
        assert_eq!(
            errors(&input),
            [
                "hostname.eth0:1: `-failver`: unknown ifconfig keyword; correct or remove it \
                    (ipmpctl convert reads the ifconfig(1M) keywords, addresses and host names \
                    of hostname files)",
                "hostname.eth0:2: `mtu 9000`: ipmpd does not set member MTUs (the group interface \
                    takes the smallest member MTU); remove it, and set the MTU of the members \
                    with the distribution's network configuration",
                "hostname.eth1:1: `-arp`: ipmp members need ARP: ipmpd answers ARP for each data \
                    address on the member it is bound to; remove `-arp`",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let input = files(
            &[
                ("ipmp0", "ipmp nosuchhost up"),
                ("eth0", "group ipmp0 down"),
                ("eth1", "group ipmp0 up dhcp"),
            ],
            Some(HOSTS),
        );
        let found = errors(&input);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("hostname.ipmp0:1: `nosuchhost`: unknown host name"));
        assert!(found[1].starts_with("hostname.eth0:1: `down`: "));
        assert!(found[2].starts_with("hostname.eth1:1: `dhcp`: "));
        // Without the refused address, the group has none.
        let input = files(&[("ipmp0", "ipmp up"), ("eth0", "group ipmp0 up")], None);
        assert_eq!(
            errors(&input),
            ["hostname.ipmp0:1: group ipmp0 has no data address; give the IPMP interface ipmp0 an \
                address in hostname.ipmp0"]
        );
    }

    #[test]
    fn netmasks() {
        let input = files(
            &[
                (
                    "ipmp0",
                    "ipmp 10.1.2.3 netmask ffffff00 up\n\
                     addif 172.16.1.1 netmask 255.255.255.128 up\n\
                     addif 192.0.2.7/28 netmask + up\n\
                     addif 10.9.9.9 up",
                ),
                (
                    "eth0",
                    "group ipmp0 192.0.2.201 netmask 0xffffff00 -failover deprecated up",
                ),
            ],
            None,
        );
        let (config, notes) = config_of(&input);
        let data: Vec<String> = config.groups[0]
            .data_addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            data,
            ["10.1.2.3/24", "172.16.1.1/25", "192.0.2.7/28", "10.9.9.9/8"]
        );
        assert_eq!(
            config.groups[0].members[0].test_address,
            Some("192.0.2.201/24".parse().unwrap())
        );
        has_note(&notes, "10.9.9.9/8 (hostname.ipmp0 line 4)");
        assert!(
            !notes.iter().any(|n| n.contains("192.0.2.7/")),
            "an explicit prefix needs no note: {notes:#?}"
        );
        // Non-contiguous and malformed netmasks are refused.
        let input = files(
            &[
                ("eth0", "192.0.2.5 netmask 255.0.255.0 group g up"),
                ("eth1", "group g up"),
            ],
            None,
        );
        assert_eq!(
            errors(&input),
            ["hostname.eth0:1: `netmask 255.0.255.0`: not a netmask; write it as 255.255.255.0, ffffff00 or +"]
        );
    }

    #[test]
    fn conflicting_and_duplicate_settings() {
        let input = files(
            &[
                ("eth0", "192.0.2.5/24 group g up\ngroup h"),
                ("eth1", "192.0.2.5/24 group g up"),
                (
                    "eth2",
                    "192.0.2.6/24 192.0.2.7 group g broadcast 192.0.2.127 up",
                ),
            ],
            None,
        );
        assert_eq!(
            errors(&input),
            [
                "hostname.eth0:2: `group h`: eth0 is already in group \"g\" (hostname.eth0 line \
                    1); put the interface in one group",
                "hostname.eth2:1: `192.0.2.7`: a second address in one command is a point-to-point \
                    destination, which IPMP does not use; remove it, or give it its own logical \
                    interface with `addif`",
                "hostname.eth2:1: `broadcast 192.0.2.127`: the broadcast address of 192.0.2.6/24 \
                    is 192.0.2.255, and ipmp cannot use another; correct the netmask, or write \
                    `broadcast +`",
                "hostname.eth1:1: `192.0.2.5/24`: 192.0.2.5 is already configured in hostname.eth0 \
                    line 1; configure each address once",
            ]
        );
    }

    #[test]
    fn ipv6_and_unspecified_addresses() {
        let input = files(
            &[
                ("ipmp0", "ipmp 192.0.2.200/24 up\naddif 2001:db8::1/64 up"),
                ("eth0", "0.0.0.0 group ipmp0 up"),
                ("eth1", "192.0.2.201/24 -failover group ipmp0 up"),
            ],
            None,
        );
        assert_eq!(
            errors(&input),
            [
                "hostname.ipmp0:2: `addif 2001:db8::1/64`: an IPv6 address in a hostname.IF file \
                (Solaris keeps IPv6 in hostname6.IF); move it to the interface's hostname6.IF \
                file"
            ]
        );
        let input = files(
            &[
                ("ipmp0", "ipmp 192.0.2.200/24 up"),
                ("eth0", "0.0.0.0 group ipmp0 up"),
                ("eth1", "192.0.2.201/24 -failover group ipmp0 up"),
            ],
            None,
        );
        let (config, notes) = config_of(&input);
        assert_eq!(config.groups[0].members[0], member("eth0", None, false));
        has_note(&notes, "0.0.0.0 means no address");
        has_note(
            &notes,
            "eth0 in group ipmp0 has no test address: failure detection on it is link-based only",
        );
    }
}
