//! `ipmpctl convert` (SPEC 7): a Solaris IPMP configuration turned into
//! ipmpd's TOML (SPEC 5).
//!
//! The input is what a Solaris host boots from: the `/etc/hostname.IF`
//! files, read the way the boot scripts and ifconfig(1M) read them,
//! `/etc/hosts` for the host names they use, and `/etc/default/mpathd`.
//! Both IPMP styles are understood:
//! - new IPMP: an IPMP interface (`ipmp` keyword) holds the data addresses
//!   and becomes the group (named after the interface); the underlying
//!   interfaces name its group with `group G`;
//! - classic IPMP: no IPMP interface; the members' addresses that fail over
//!   (no `-failover`) are the data addresses, and the group takes the
//!   Solaris group name.
//!
//! On both, a member's `-failover` address is its test address and
//! `standby` makes it a standby member. Every token is accounted for:
//! converted, noted as harmless, or refused with the reason and the fix.
//! The module does no I/O: the caller reads the files, prints the notes and
//! writes the TOML, which [`Config::parse`] accepts (checked before it is
//! returned).
use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::config::Config;

/// The names the messages and comments give the files (the caller may have
/// read them from anywhere).
const HOSTS_FILE: &str = "/etc/hosts";
const MPATHD_FILE: &str = "/etc/default/mpathd";

/// The longest group name (config.rs: the group interface's veth peer adds
/// two characters to it, and Linux allows 15).
const MAX_GROUP_NAME_LEN: usize = 13;

/// in.mpathd raises a smaller FAILURE_DETECTION_TIME to this (ms).
const SOLARIS_MIN_FDT_MS: u64 = 100;

/// What a Solaris boot appends to a one-line hostname file
/// (`inet_oneline_epilogue` in the boot scripts).
const ONE_LINE_EPILOGUE: [&str; 5] = ["netmask", "+", "broadcast", "+", "up"];

/// The Solaris files to convert, as the caller read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SolarisFiles {
    /// `(IF, contents)` for each `/etc/hostname.IF`, IF taken from the file
    /// name; it may name a logical interface (`hme0:1`).
    pub hostname_files: Vec<(String, String)>,
    /// `(IF, contents)` for each `/etc/hostname6.IF` (IPv6).
    pub hostname6_files: Vec<(String, String)>,
    /// `/etc/hosts`, for the host names the hostname files use.
    pub hosts: Option<String>,
    /// `/etc/default/mpathd`.
    pub mpathd: Option<String>,
}

/// A successful conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// ipmpd's configuration file, with comments saying where each part
    /// came from.
    pub toml: String,
    /// What was ignored or interpreted, one message each, for stderr.
    pub notes: Vec<String>,
}

/// Why the files could not be converted: every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertError {
    pub problems: Vec<ConvertProblem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertProblem {
    /// `hostname.IF`, `/etc/hosts`, `/etc/default/mpathd`, or the converted
    /// configuration.
    pub file: String,
    /// 1-based.
    pub line: Option<usize>,
    /// The token (with its argument) the problem is about.
    pub token: Option<String>,
    pub why: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for ConvertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if let Some(token) = &self.token {
            write!(f, "`{token}`: ")?;
        }
        write!(f, "{}; {}", self.why, self.fix)
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConvertError {}

/// Converts a Solaris IPMP configuration; see the module documentation.
pub fn convert(files: &SolarisFiles) -> Result<Converted, ConvertError> {
    let mut out = Output::default();
    let hosts = Hosts::parse(files.hosts.as_deref(), &mut out.notes);
    let interfaces = read_hostname_files(&files.hostname_files, &hosts, &mut out);
    let daemon = files
        .mpathd
        .as_deref()
        .map(|text| read_mpathd(text, &mut out));
    let mut groups = build_groups(interfaces, &mut out);
    read_hostname6_files(&files.hostname6_files, &mut groups, &mut out);
    if !out.problems.is_empty() {
        return Err(ConvertError {
            problems: out.problems,
        });
    }
    let toml = render(daemon.as_ref(), &groups);
    // The contract: what is printed is what `ipmpd --check` accepts.
    if let Err(err) = Config::parse(&toml, Path::new("converted")) {
        let problems = err
            .problems
            .into_iter()
            .map(|p| ConvertProblem {
                file: "the converted configuration".into(),
                line: p.line,
                token: None,
                why: p.message,
                fix: "correct the Solaris files, or write this part of the TOML by hand".into(),
            })
            .collect();
        return Err(ConvertError { problems });
    }
    Ok(Converted {
        toml,
        notes: out.notes,
    })
}

/// What the conversion found besides the configuration.
#[derive(Default)]
struct Output {
    problems: Vec<ConvertProblem>,
    notes: Vec<String>,
}

/// Where something was written, for comments and notes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Loc {
    file: String,
    line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.file, self.line)
    }
}

fn hostname_file(interface: &str) -> String {
    format!("hostname.{interface}")
}

fn problem(loc: &Loc, token: Option<String>, why: String, fix: String) -> ConvertProblem {
    ConvertProblem {
        file: loc.file.clone(),
        line: Some(loc.line),
        token,
        why,
        fix,
    }
}

// ---------------------------------------------------------------------------
// /etc/hosts

#[derive(Default)]
struct HostEntry {
    v4: Option<Ipv4Addr>,
    v6: bool,
}

struct Hosts {
    given: bool,
    /// By lower-case name: host names are case-insensitive.
    names: HashMap<String, HostEntry>,
}

impl Hosts {
    fn parse(text: Option<&str>, notes: &mut Vec<String>) -> Hosts {
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

// ---------------------------------------------------------------------------
// hostname.IF files: the interfaces as ifconfig would configure them

/// A logical interface: one address and its flags.
#[derive(Default)]
struct Logical {
    addr: Option<Addr>,
    /// Set by a prefix length or an explicit netmask; otherwise classful.
    prefix: Option<u8>,
    /// `netmask +` applied (it reads /etc/netmasks, which we cannot).
    netmask_plus: Option<PlusFrom>,
    /// `-failover`: a test address.
    nofailover: bool,
    deprecated: bool,
    up: bool,
    broadcast: Option<(Ipv4Addr, Loc, String)>,
}

struct Addr {
    ip: Ipv4Addr,
    /// The host name it was written as, if any.
    name: Option<String>,
    /// As written, for the messages.
    written: String,
    loc: Loc,
    /// Which command (logical line) of which file set it.
    command: (String, usize),
}

impl Logical {
    fn prefix_len(&self) -> u8 {
        match (self.prefix, &self.addr) {
            (Some(prefix), _) => prefix,
            (None, Some(addr)) => classful_prefix(addr.ip).unwrap_or(32),
            (None, None) => 32,
        }
    }
}

/// One physical interface, from all its hostname files.
struct Interface {
    name: String,
    files: Vec<String>,
    /// The file lines, for the comments of the TOML.
    lines: Vec<(Loc, String)>,
    ipmp: Option<Loc>,
    group: Option<(String, Loc)>,
    standby: Option<Loc>,
    /// Logical interface 0 (the physical one) first.
    logicals: Vec<Logical>,
    // Reported only if the interface is part of IPMP.
    problems: Vec<ConvertProblem>,
    ignored: Vec<Ignored>,
    notes: Vec<String>,
}

/// A harmless token that has no meaning here.
struct Ignored {
    token: String,
    why: &'static str,
    loc: Loc,
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

    fn in_ipmp(&self) -> bool {
        self.ipmp.is_some() || self.group.is_some()
    }
}

fn read_hostname_files(
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
struct Tok {
    text: String,
    line: usize,
    /// Added by the one-line rule, not written.
    implied: bool,
}

/// The commands of a hostname file: each line is one ifconfig command, a
/// backslash at the end of a line continues it (the boot scripts `read`
/// the file). `#` starts a comment, which Solaris does not have but which
/// cannot mean anything else.
fn commands(text: &str) -> (Vec<Vec<Tok>>, Vec<(usize, String)>) {
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

fn keyword(word: &str) -> Option<Kw> {
    use Kw::*;
    let refused = |arg, why, fix| Refused { arg, why, fix };
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
        "plumb" => Ignored {
            arg: false,
            why: "ipmpd uses the member interfaces as they exist",
        },
        "inet" => Ignored {
            arg: false,
            why: "hostname.IF files are IPv4 already",
        },
        "trailers" | "-trailers" => Ignored {
            arg: false,
            why: "trailer encapsulation does not exist on Linux",
        },
        "arp" | "xmit" | "local" | "-router" | "-failed" => Ignored {
            arg: false,
            why: "it is the default",
        },
        "private" | "-private" => Ignored {
            arg: false,
            why: "only Solaris routing daemons read it",
        },
        "metric" => Ignored {
            arg: true,
            why: "only Solaris routing daemons read the metric",
        },
        "index" => Ignored {
            arg: true,
            why: "Linux chooses interface indexes itself",
        },
        "debug" | "verbose" | "configinfo" | "modlist" => Ignored {
            arg: false,
            why: "it only changes what ifconfig prints",
        },
        "down" => refused(
            Arg::No,
            "the address is configured down, so Solaris does not use it",
            "remove the address (or `down`) from the file and convert again",
        ),
        "unplumb" => refused(Arg::No, "it removes the interface", "remove it from the file"),
        "-arp" => refused(
            Arg::No,
            "ipmp members need ARP: ipmpd answers ARP for each data address on the member it is bound to",
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
            "remove it, and set the MTU of the members with the distribution's network configuration",
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
enum PlusFrom {
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

struct Parser<'a> {
    hosts: &'a Hosts,
    file: String,
    iface: &'a mut Interface,
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

    fn file(&mut self, text: &str, start: usize) {
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
        let mut current = start;
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
        let mut i = 0;
        while i < toks.len() {
            let tok = &toks[i];
            i += 1;
            let word = tok.text.as_str();
            let Some(kw) = keyword(word) else {
                self.address_word(tok, current, index, &mut pending);
                continue;
            };
            let takes_arg = match kw {
                Kw::Group | Kw::Addif | Kw::Set | Kw::Netmask | Kw::Broadcast => true,
                Kw::Ignored { arg, .. } => arg,
                Kw::Refused { arg, .. } => arg == Arg::Yes,
                _ => false,
            };
            let arg = if takes_arg {
                let Some(arg) = toks.get(i) else {
                    self.error(
                        tok,
                        word.to_owned(),
                        "it needs an argument",
                        "give it one, or remove it",
                    );
                    break;
                };
                i += 1;
                Some(arg)
            } else {
                None
            };
            let shown = match arg {
                Some(arg) => format!("{word} {}", arg.text),
                None => word.to_owned(),
            };
            let logical = &mut self.iface.logicals[current];
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
                Kw::Group => {
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
                Kw::Addif => {
                    self.iface.logicals.push(Logical::default());
                    current = self.iface.logicals.len() - 1;
                    if let Some(arg) = arg {
                        self.address(arg, &shown, current, index, &mut pending);
                    }
                }
                Kw::Set => {
                    if let Some(arg) = arg {
                        self.address(arg, &shown, current, index, &mut pending);
                    }
                }
                Kw::Netmask => match arg.map(|a| a.text.as_str()) {
                    Some("+") => {
                        let from = arg.map_or(PlusFrom::Written, PlusFrom::of);
                        if logical.prefix.is_none()
                            && logical.netmask_plus != Some(PlusFrom::Written)
                        {
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
                },
                Kw::Broadcast => match arg.map(|a| a.text.as_str()) {
                    Some("+") => {
                        self.ignore(tok, shown, "the broadcast address follows from the prefix")
                    }
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
                },
                Kw::Dhcp => {
                    self.error(
                        tok,
                        word.to_owned(),
                        "ipmp needs static addresses, and DHCP is not converted",
                        "write the address the DHCP server gives instead",
                    );
                    break;
                }
                Kw::Ignored { why, .. } => self.ignore(tok, shown, why),
                Kw::Refused { arg, why, fix } => {
                    let mut shown = shown;
                    if arg == Arg::Optional && toks.get(i).is_some_and(|t| t.text.contains(':')) {
                        shown = format!("{shown} {}", toks[i].text);
                        i += 1;
                    }
                    self.error(tok, shown, why, fix);
                }
            }
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
                "correct or remove it (ipmpctl convert reads the ifconfig(1M) keywords, addresses and host names of hostname files)",
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
                "{}: {} is never brought `up` in {}, so Solaris left it down; it was converted as if it were up (remove it from the TOML if it is not meant to be used)",
                addr.loc,
                addr.ip,
                iface.files.join(", ")
            ));
        }
    }
}

/// Solaris' netmask forms: dotted (255.255.255.0) or hexadecimal
/// (ffffff00, 0xffffff00); contiguous only.
fn parse_netmask(text: &str) -> Option<u8> {
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

fn unusable(ip: Ipv4Addr) -> Option<&'static str> {
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

// ---------------------------------------------------------------------------
// /etc/default/mpathd

struct Daemon {
    /// ms, and the comment saying where it came from.
    fdt: Option<(u64, String)>,
    failback: Option<(bool, String)>,
}

fn read_mpathd(text: &str, out: &mut Output) -> Daemon {
    let mut daemon = Daemon {
        fdt: None,
        failback: None,
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let loc = Loc {
            file: MPATHD_FILE.into(),
            line,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            out.notes.push(format!(
                "{loc}: \"{trimmed}\" is not KEY=VALUE; in.mpathd ignores it, and so was it here"
            ));
            continue;
        };
        let key = key.trim();
        let value = unquote(value.trim());
        // in.mpathd reads the first line of each key.
        if let Some(first) = seen.get(key) {
            out.notes.push(format!(
                "{loc}: {key} is already set on line {first}; in.mpathd reads only the first, and so was it here"
            ));
            continue;
        }
        seen.insert(key.to_owned(), line);
        let token = Some(format!("{key}={value}"));
        match key {
            "FAILURE_DETECTION_TIME" => match strtol(value) {
                Some(ms) if ms > 0 => {
                    let mut comment = format!("FAILURE_DETECTION_TIME={value} (line {line})");
                    let ms = ms as u64;
                    if value.trim_start_matches('+') != ms.to_string() {
                        out.notes.push(format!(
                            "{loc}: FAILURE_DETECTION_TIME={value} is read as {ms} ms (in.mpathd reads a leading 0 as octal and 0x as hexadecimal)"
                        ));
                    }
                    let ms = if ms < SOLARIS_MIN_FDT_MS {
                        out.notes.push(format!(
                            "{loc}: in.mpathd raises FAILURE_DETECTION_TIME={value} to its minimum of {SOLARIS_MIN_FDT_MS} ms, and so was it here (ipmpd accepts down to 10 ms: lower failure_detection_time_ms if that is what you want)"
                        ));
                        comment.push_str(", raised to in.mpathd's minimum");
                        SOLARIS_MIN_FDT_MS
                    } else {
                        ms
                    };
                    daemon.fdt = Some((ms, comment));
                }
                _ => out.problems.push(problem(
                    &loc,
                    token,
                    "not a positive number of milliseconds (in.mpathd ignored it and used 10000)".into(),
                    "write the failure detection time you mean, in ms".into(),
                )),
            },
            "FAILBACK" => {
                let failback = if value.eq_ignore_ascii_case("yes") {
                    Some(true)
                } else if value.eq_ignore_ascii_case("no") {
                    Some(false)
                } else {
                    None
                };
                match failback {
                    Some(failback) => {
                        daemon.failback = Some((failback, format!("FAILBACK={value} (line {line})")));
                    }
                    None => out.problems.push(problem(
                        &loc,
                        token,
                        "FAILBACK is yes or no (in.mpathd ignored this value and failed back)".into(),
                        "write FAILBACK=yes or FAILBACK=no".into(),
                    )),
                }
            }
            "TRACK_INTERFACES_ONLY_WITH_GROUPS" => out.notes.push(format!(
                "{loc}: TRACK_INTERFACES_ONLY_WITH_GROUPS={value} ignored: ipmpd tracks only the members of its groups"
            )),
            _ => out.notes.push(format!(
                "{loc}: {key} ignored: in.mpathd does not read it either"
            )),
        }
    }
    daemon
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// strtol(value, NULL, 0) as in.mpathd uses it, but on the whole value.
fn strtol(value: &str) -> Option<i64> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let parsed = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse::<i64>()
    };
    let number = parsed.ok().filter(|_| !digits.starts_with(['+', '-']))?;
    let number = if negative { -number } else { number };
    (number <= i64::from(i32::MAX)).then_some(number)
}

// ---------------------------------------------------------------------------
// IPv6: hostname6.IF

/// ifconfig's prefix length for an IPv6 address written without one.
const DEFAULT_PREFIX6: u8 = 64;

/// What a hostname6.IF file says: the interface's IPv6 data addresses
/// (addresses that fail over, not link-local), whether it is an IPMP
/// interface, and its group. Members need nothing else: their IPv6 test
/// address is their link-local address, and a group with an IPv6 data
/// address probes over IPv6 by itself.
fn read_hostname6_files(files: &[(String, String)], groups: &mut [Group], out: &mut Output) {
    for (name, text) in files {
        let file = format!("hostname6.{name}");
        let (commands, _) = commands(text);
        let mut ipmp = false;
        let mut group_name: Option<String> = None;
        let mut data = Vec::new();
        for command in &commands {
            let mut failover = true;
            let mut words = command.iter();
            let mut addresses = Vec::new();
            while let Some(tok) = words.next() {
                let loc = Loc {
                    file: file.clone(),
                    line: tok.line,
                };
                match tok.text.as_str() {
                    "inet6" | "plumb" | "up" | "failover" | "standby" | "-standby"
                    | "deprecated" | "-deprecated" => {}
                    "-failover" => failover = false,
                    "ipmp" => ipmp = true,
                    "addif" => {
                        // A new logical interface: its own failover flag.
                        data.extend(addresses.drain(..).filter(|_| failover));
                        failover = true;
                    }
                    "group" => group_name = words.next().map(|t| t.text.clone()),
                    "token" => {
                        words.next();
                        out.notes.push(format!(
                            "{file}:{}: `token` ignored: Linux makes each member's \
                             link-local address itself",
                            tok.line
                        ));
                    }
                    word => match parse_address6(word) {
                        Some((ip, _)) if ip.segments()[0] & 0xffc0 == 0xfe80 => {
                            out.notes.push(format!(
                                "{file}:{}: link-local {ip} ignored: each member's own \
                                 link-local address is its IPv6 test address",
                                tok.line
                            ))
                        }
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
            data.extend(addresses.drain(..).filter(|_| failover));
        }
        if data.is_empty() {
            continue;
        }
        // New IPMP: the IPMP interface is the group; classic: the
        // interface's group, as its hostname files name it.
        let target = groups.iter().position(|g| {
            (ipmp && g.name == *name)
                || g.members.iter().any(|m| m.interface == *name)
                || group_name.as_deref() == Some(g.name.as_str())
        });
        let Some(target) = target else {
            out.problems.push(problem(
                &Loc {
                    file: file.clone(),
                    line: data[0].2,
                },
                None,
                format!("{name} is in no group converted from the hostname.IF files"),
                "give the group's hostname.IF files too (an IPv6-only group is not converted)"
                    .into(),
            ));
            continue;
        };
        for (ip, prefix, line) in data {
            groups[target]
                .data6
                .push((ip, prefix, format!("{file} line {line}")));
        }
    }
}

/// An IPv6 address with an optional `/N` (ifconfig's default otherwise).
fn parse_address6(word: &str) -> Option<(Ipv6Addr, u8)> {
    let (ip, prefix) = match word.split_once('/') {
        None => (word, DEFAULT_PREFIX6),
        Some((ip, len)) => (ip, len.parse().ok().filter(|&p| p <= 128)?),
    };
    Some((ip.parse().ok()?, prefix))
}

// ---------------------------------------------------------------------------
// Groups

struct Group {
    name: String,
    comment: Vec<String>,
    data: Vec<OutAddr>,
    /// IPv6 data addresses, from hostname6.IF files: address, prefix
    /// length, where it came from.
    data6: Vec<(Ipv6Addr, u8, String)>,
    members: Vec<Member>,
}

struct Member {
    interface: String,
    comment: Vec<String>,
    test: Option<OutAddr>,
    standby: bool,
}

struct OutAddr {
    ip: Ipv4Addr,
    prefix: u8,
    comment: String,
}

/// A Solaris group while it is gathered: its IPMP interface (new IPMP) and
/// its underlying interfaces, as indexes into the interfaces.
struct Gathered {
    solaris_name: String,
    /// Where the group is first named.
    loc: Loc,
    ipmp: Option<usize>,
    members: Vec<usize>,
}

fn build_groups(interfaces: Vec<Interface>, out: &mut Output) -> Vec<Group> {
    let mut gathered: Vec<Gathered> = Vec::new();
    let mut skipped = Vec::new();
    for (index, iface) in interfaces.iter().enumerate() {
        if !iface.in_ipmp() {
            skipped.push(iface);
            continue;
        }
        let (name, loc) = match (&iface.ipmp, &iface.group) {
            (Some(_), Some((group, loc))) => (group.clone(), loc.clone()),
            (Some(loc), None) => (iface.name.clone(), loc.clone()),
            (None, Some((group, loc))) => (group.clone(), loc.clone()),
            (None, None) => unreachable!("in_ipmp"),
        };
        let at = match gathered.iter().position(|g| g.solaris_name == name) {
            Some(at) => at,
            None => {
                gathered.push(Gathered {
                    solaris_name: name.clone(),
                    loc: loc.clone(),
                    ipmp: None,
                    members: Vec::new(),
                });
                gathered.len() - 1
            }
        };
        let group = &mut gathered[at];
        if iface.ipmp.is_none() {
            group.members.push(index);
        } else if let Some(first) = group.ipmp {
            out.problems.push(problem(
                iface.ipmp.as_ref().unwrap_or(&loc),
                Some("ipmp".into()),
                format!(
                    "group \"{name}\" already has the IPMP interface {}",
                    interfaces[first].name
                ),
                "give each group one IPMP interface".into(),
            ));
        } else {
            group.ipmp = Some(index);
        }
    }

    // Everything about an interface that is part of IPMP is reported.
    for iface in interfaces.iter().filter(|i| i.in_ipmp()) {
        out.problems.extend(iface.problems.iter().cloned());
        out.notes.extend(iface.notes.iter().cloned());
    }
    for iface in skipped {
        out.notes.push(format!(
            "{}: not converted: it has no `group` and no `ipmp`, so it is not part of IPMP (configure {} with the distribution's network configuration)",
            iface.files.join(", "),
            iface.name
        ));
    }
    if gathered.is_empty() && !interfaces.is_empty() {
        out.problems.push(ConvertProblem {
            file: "hostname.IF".into(),
            line: None,
            token: None,
            why: "none of the hostname files configures IPMP (no `group`, no `ipmp`)".into(),
            fix: "give the hostname files of the IPMP interfaces and of their members".into(),
        });
    }

    let mut groups = Vec::new();
    let mut classful = Vec::new();
    for g in &gathered {
        groups.push(build_group(g, &interfaces, out, &mut classful));
    }
    addresses_unique(&groups, &interfaces, out);

    if !classful.is_empty() {
        out.notes.push(format!(
            "netmasks: `netmask +` reads /etc/netmasks on Solaris, which ipmpctl convert does not read, and an address without a netmask gets the netmask of its address class; so these got the classful prefix: {}. If /etc/netmasks or the network says otherwise, correct the prefix in the TOML (or write ADDRESS/N in the hostname file and convert again)",
            classful.join(", ")
        ));
    }
    notes_for_ignored(&interfaces, out);
    let names: Vec<&str> = groups
        .iter()
        .flat_map(|g| &g.members)
        .map(|m| m.interface.as_str())
        .collect();
    if !names.is_empty() {
        out.notes.push(format!(
            "the member interfaces keep their Solaris names ({}): if this host names them differently (see `ip link`), change `interface = ...` in the TOML",
            names.join(", ")
        ));
    }
    groups
}

fn build_group(
    g: &Gathered,
    interfaces: &[Interface],
    out: &mut Output,
    classful: &mut Vec<String>,
) -> Group {
    let name = match g.ipmp {
        Some(index) => interfaces[index].name.clone(),
        None => g.solaris_name.clone(),
    };
    check_group_name(g, &name, interfaces, out);
    let mut data = Vec::new();
    let mut comment = Vec::new();
    if let Some(index) = g.ipmp {
        let ipmp = &interfaces[index];
        comment.push(format!("New IPMP: the IPMP interface {name}."));
        comment.extend(quoted_lines(ipmp));
        if g.solaris_name != name {
            out.notes.push(format!(
                "the IPMP interface {name} is in group \"{}\" on Solaris; the group takes the interface's name, {name} (ipmpd gives a group and its group interface one name)",
                g.solaris_name
            ));
        }
        if let Some(loc) = &ipmp.standby {
            out.problems.push(problem(
                loc,
                Some("standby".into()),
                format!("{name} is an IPMP interface, which cannot be a standby"),
                "put `standby` in the hostname file of an underlying interface".into(),
            ));
        }
        for logical in ipmp.logicals.iter().filter(|l| l.addr.is_some()) {
            if logical.nofailover {
                let addr = logical.addr.as_ref().map(|a| &a.loc);
                out.problems.push(problem(
                    addr.unwrap_or(&g.loc),
                    Some("-failover".into()),
                    "an address of an IPMP interface cannot be a test address (Solaris refuses it too)".into(),
                    "move the test address to the hostname file of an underlying interface".into(),
                ));
                continue;
            }
            data.push(data_address(logical, out, classful));
        }
    } else {
        comment.push(format!(
            "Classic IPMP group {name} (no IPMP interface on Solaris): ipmpd creates"
        ));
        comment.push(format!(
            "the group interface {name}, and the data addresses stay on it instead"
        ));
        comment.push("of moving between the members.".into());
    }

    let mut members = Vec::new();
    let mut link_only = Vec::new();
    for &index in &g.members {
        let iface = &interfaces[index];
        let mut test: Option<OutAddr> = None;
        for logical in iface.logicals.iter().filter(|l| l.addr.is_some()) {
            let Some(addr) = &logical.addr else {
                continue;
            };
            if !logical.nofailover {
                if g.ipmp.is_some() {
                    out.notes.push(format!(
                        "{}: {} is a data address on the underlying interface {}; Solaris moves it to the IPMP interface {name}, and it became a data address of group {name}",
                        addr.loc, addr.ip, iface.name
                    ));
                }
                data.push(data_address(logical, out, classful));
                continue;
            }
            if test.is_some() {
                out.problems.push(problem(
                    &addr.loc,
                    Some(addr.written.clone()),
                    format!(
                        "{} has a second test address; ipmp probes from one IPv4 test address per member",
                        iface.name
                    ),
                    "keep one `-failover` address on the interface".into(),
                ));
                continue;
            }
            let prefix = logical.prefix_len();
            let mut notes = Vec::new();
            if let Some(name) = &addr.name {
                notes.push(name.clone());
            }
            if let Some(how) = classful_how(logical) {
                notes.push(how.clone());
                classful.push(format!("{}/{prefix} ({})", addr.ip, describe(addr)));
            }
            test = Some(OutAddr {
                ip: addr.ip,
                prefix,
                comment: notes.join("; "),
            });
        }
        if test.is_none() {
            link_only.push(iface.name.clone());
        }
        members.push(Member {
            interface: iface.name.clone(),
            comment: quoted_lines(iface),
            test,
            standby: iface.standby.is_some(),
        });
    }

    if g.ipmp.is_some() && g.members.is_empty() {
        out.problems.push(problem(
            &g.loc,
            Some("ipmp".into()),
            format!(
                "the IPMP interface {name} has no underlying interface (no hostname file says `group {}`)",
                g.solaris_name
            ),
            "give the hostname files of its underlying interfaces too".into(),
        ));
    }
    // An address refused already is reported once, not again as missing.
    let refused_before = g
        .ipmp
        .iter()
        .chain(&g.members)
        .any(|&i| !interfaces[i].problems.is_empty());
    if data.is_empty() && !refused_before {
        let fix = if g.ipmp.is_some() {
            format!("give the IPMP interface {name} an address in hostname.{name}")
        } else {
            format!(
                "give the hostname file of the IPMP interface of group {} too (new IPMP), or give a member an address without -failover (classic IPMP)",
                g.solaris_name
            )
        };
        out.problems.push(problem(
            &g.loc,
            None,
            format!("group {name} has no data address"),
            fix,
        ));
    }
    if g.ipmp.is_none() && !data.is_empty() {
        let addresses: Vec<String> = data.iter().map(|a| a.ip.to_string()).collect();
        let member_names: Vec<&str> = members.iter().map(|m| m.interface.as_str()).collect();
        out.notes.push(format!(
            "group {name} is classic IPMP (no IPMP interface): ipmpd creates the group interface {name}, and its data {} {} {} there instead of moving between {}",
            if addresses.len() == 1 { "address" } else { "addresses" },
            addresses.join(", "),
            if addresses.len() == 1 { "stays" } else { "stay" },
            member_names.join(", ")
        ));
    }
    if !members.is_empty() && link_only.len() == members.len() {
        out.notes.push(format!(
            "group {name} has no test address: failure detection is link-based only, as on Solaris"
        ));
    } else if !link_only.is_empty() {
        out.notes.push(format!(
            "{} in group {name} {} no test address: failure detection on {} is link-based only, as on Solaris",
            link_only.join(", "),
            if link_only.len() == 1 { "has" } else { "have" },
            if link_only.len() == 1 { "it" } else { "them" }
        ));
    }

    Group {
        name,
        comment,
        data,
        data6: Vec::new(),
        members,
    }
}

/// The group name becomes a Linux interface name.
fn check_group_name(g: &Gathered, name: &str, interfaces: &[Interface], out: &mut Output) {
    let bad_char = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
    let why = if name.chars().count() > MAX_GROUP_NAME_LEN {
        format!(
            "\"{name}\" is longer than {MAX_GROUP_NAME_LEN} characters, and it becomes the name of the group interface on Linux (its peer \"{name}_p\" must fit Linux's 15)"
        )
    } else if let Some(c) = bad_char {
        format!(
            "\"{name}\" has the character {c:?}, and it becomes the name of the group interface on Linux (letters, digits, '_', '.' and '-' only)"
        )
    } else if name == "." || name == ".." {
        format!("\"{name}\" is not allowed as an interface name by Linux")
    } else {
        return;
    };
    let (token, fix) = match g.ipmp {
        Some(index) => (
            "ipmp".to_owned(),
            format!(
                "rename the IPMP interface (the file {}) to a name of at most {MAX_GROUP_NAME_LEN} characters of [A-Za-z0-9_.-], and convert again",
                interfaces[index].files.join(", ")
            ),
        ),
        None => {
            let files: Vec<&str> = g
                .members
                .iter()
                .flat_map(|&i| interfaces[i].files.iter().map(String::as_str))
                .collect();
            (
                format!("group {}", g.solaris_name),
                format!(
                    "rename the group to at most {MAX_GROUP_NAME_LEN} characters of [A-Za-z0-9_.-] in {} (`group NAME`), and convert again",
                    files.join(", ")
                ),
            )
        }
    };
    out.problems.push(problem(&g.loc, Some(token), why, fix));
}

fn data_address(logical: &Logical, out: &mut Output, classful: &mut Vec<String>) -> OutAddr {
    let addr = logical
        .addr
        .as_ref()
        .expect("data addresses have an address");
    if logical.deprecated {
        out.problems.push(problem(
            &addr.loc,
            Some("deprecated".into()),
            format!(
                "{} is deprecated but fails over (no -failover): a data address that is never a source address, which ipmp cannot express",
                addr.ip
            ),
            "remove `deprecated` to make it a data address, or add `-failover` to make it a test address".into(),
        ));
    }
    let prefix = logical.prefix_len();
    let mut comment = describe(addr);
    if let Some(how) = classful_how(logical) {
        comment = format!("{comment}; {how}");
        classful.push(format!("{}/{prefix} ({})", addr.ip, describe(addr)));
    }
    OutAddr {
        ip: addr.ip,
        prefix,
        comment,
    }
}

/// "hivemind-prod (hostname.production0 line 1)"
fn describe(addr: &Addr) -> String {
    match &addr.name {
        Some(name) => format!("{name}, {}", addr.loc),
        None => addr.loc.to_string(),
    }
}

fn classful_how(logical: &Logical) -> Option<String> {
    if logical.prefix.is_some() {
        return None;
    }
    let prefix = logical.prefix_len();
    Some(match logical.netmask_plus {
        Some(PlusFrom::Written) => format!("classful /{prefix} for netmask +"),
        Some(PlusFrom::OneLineRule) => {
            format!("classful /{prefix} for the netmask + of one-line files")
        }
        None => format!("classful /{prefix}, no netmask given"),
    })
}

fn quoted_lines(iface: &Interface) -> Vec<String> {
    iface
        .lines
        .iter()
        .map(|(loc, text)| format!("{loc}: {text}"))
        .collect()
}

/// Every address is configured once.
fn addresses_unique(groups: &[Group], interfaces: &[Interface], out: &mut Output) {
    let mut first: HashMap<Ipv4Addr, &Loc> = HashMap::new();
    let used: Vec<Ipv4Addr> = groups
        .iter()
        .flat_map(|g| {
            g.data.iter().map(|a| a.ip).chain(
                g.members
                    .iter()
                    .filter_map(|m| m.test.as_ref().map(|t| t.ip)),
            )
        })
        .collect();
    let addrs = interfaces
        .iter()
        .filter(|i| i.in_ipmp())
        .flat_map(|i| i.logicals.iter().filter_map(|l| l.addr.as_ref()));
    for addr in addrs.filter(|a| used.contains(&a.ip)) {
        match first.get(&addr.ip) {
            Some(loc) => out.problems.push(problem(
                &addr.loc,
                Some(addr.written.clone()),
                format!("{} is already configured in {loc}", addr.ip),
                "configure each address once".into(),
            )),
            None => {
                first.insert(addr.ip, &addr.loc);
            }
        }
    }
}

/// One note per harmless token, listing where it stood.
fn notes_for_ignored(interfaces: &[Interface], out: &mut Output) {
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut places: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for ignored in interfaces
        .iter()
        .filter(|i| i.in_ipmp())
        .flat_map(|i| &i.ignored)
    {
        let key = (ignored.token.as_str(), ignored.why);
        let list = places.entry(key).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        let place = ignored.loc.to_string();
        if !list.contains(&place) {
            list.push(place);
        }
    }
    for key in order {
        out.notes.push(format!(
            "`{}` ({}) ignored: {}",
            key.0,
            places[&key].join(", "),
            key.1
        ));
    }
}

// ---------------------------------------------------------------------------
// The TOML

fn render(daemon: Option<&Daemon>, groups: &[Group]) -> String {
    let mut s = String::new();
    s.push_str("# ipmpd configuration converted from Solaris IPMP by `ipmpctl convert`.\n");
    s.push_str("# Check it with `ipmpd --check --config FILE` before using it.\n");
    if let Some(daemon) = daemon.filter(|d| d.fdt.is_some() || d.failback.is_some()) {
        s.push_str("\n[daemon]\n");
        s.push_str(&format!("# From {MPATHD_FILE}.\n"));
        if let Some((ms, comment)) = &daemon.fdt {
            s.push_str(&format!(
                "failure_detection_time_ms = {ms}  # {}\n",
                comment_text(comment)
            ));
        }
        if let Some((failback, comment)) = &daemon.failback {
            s.push_str(&format!(
                "failback = {failback}  # {}\n",
                comment_text(comment)
            ));
        }
    }
    for group in groups {
        s.push('\n');
        for line in &group.comment {
            s.push_str(&format!("# {}\n", comment_text(line)));
        }
        s.push_str("[[group]]\n");
        s.push_str(&format!("name = {}\n", toml_string(&group.name)));
        s.push_str("data_addresses = [\n");
        for addr in &group.data {
            let value = toml_string(&format!("{}/{}", addr.ip, addr.prefix));
            s.push_str(&format!(
                "    {value},  # {}\n",
                comment_text(&addr.comment)
            ));
        }
        for (ip, prefix, comment) in &group.data6 {
            let value = toml_string(&format!("{ip}/{prefix}"));
            s.push_str(&format!("    {value},  # {}\n", comment_text(comment)));
        }
        s.push_str("]\n");
        for member in &group.members {
            s.push('\n');
            for line in &member.comment {
                s.push_str(&format!("# {}\n", comment_text(line)));
            }
            s.push_str("[[group.member]]\n");
            s.push_str(&format!("interface = {}", toml_string(&member.interface)));
            match &member.test {
                None => s.push_str("  # no test address: link-based failure detection only\n"),
                Some(test) => {
                    s.push('\n');
                    let value = toml_string(&format!("{}/{}", test.ip, test.prefix));
                    s.push_str(&format!("test_address = {value}"));
                    if !test.comment.is_empty() {
                        s.push_str(&format!("  # {}", comment_text(&test.comment)));
                    }
                    s.push('\n');
                    let inside = group.data.iter().any(|d| {
                        format!("{}/{}", d.ip, d.prefix)
                            .parse::<ipnet::IpNet>()
                            .is_ok_and(|net| net.contains(&std::net::IpAddr::V4(test.ip)))
                    });
                    if !inside {
                        // Solaris probes from any subnet; ipmp wants it said.
                        s.push_str("test_address_outside_data_subnets = true\n");
                    }
                }
            }
            if member.standby {
                s.push_str("standby = true\n");
            }
        }
    }
    s
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut s = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Text a TOML comment may hold: no control characters but tab.
fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::config::{GroupConfig, MemberConfig};

    const CONFIG_PATH: &str = "/etc/ipmp/ipmp.toml";

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/solaris")
    }

    /// The Solaris files of a case folder, hostname files in name order
    /// (as a shell glob gives them).
    fn case_files(case: &str) -> SolarisFiles {
        let dir = data_dir().join(case);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
        SolarisFiles {
            hostname_files: names
                .iter()
                .filter_map(|n| Some((n.strip_prefix("hostname.")?.to_owned(), read(n)?)))
                .collect(),
            hostname6_files: names
                .iter()
                .filter_map(|n| Some((n.strip_prefix("hostname6.")?.to_owned(), read(n)?)))
                .collect(),
            hosts: read("hosts"),
            mpathd: read("mpathd"),
        }
    }

    fn expected(case: &str) -> String {
        fs::read_to_string(data_dir().join(case).join("expected.toml")).unwrap()
    }

    /// Converts a case, checks the text against expected.toml and returns
    /// what ipmpd makes of it.
    fn convert_case(case: &str) -> (Config, Vec<String>) {
        let converted = convert(&case_files(case)).unwrap_or_else(|e| panic!("{case}:\n{e}"));
        assert_eq!(
            converted.toml,
            expected(case),
            "{case}: the TOML differs from expected.toml"
        );
        let config = Config::parse(&converted.toml, Path::new(CONFIG_PATH))
            .unwrap_or_else(|e| panic!("{case}: ipmpd refuses the TOML:\n{e}"));
        (config, converted.notes)
    }

    fn member(interface: &str, test: Option<&str>, standby: bool) -> MemberConfig {
        MemberConfig {
            interface: interface.into(),
            test_address: test.map(|t| t.parse().unwrap()),
            standby,
        }
    }

    fn group(name: &str, data: &[&str], members: Vec<MemberConfig>) -> GroupConfig {
        GroupConfig {
            name: name.into(),
            data_addresses: data.iter().map(|a| a.parse().unwrap()).collect(),
            targets: Vec::new(),
            failure_detection_time_ms: None,
            answer_echo: true,
            members,
        }
    }

    fn has_note(notes: &[String], text: &str) {
        assert!(
            notes.iter().any(|n| n.contains(text)),
            "no note contains {text:?}: {notes:#?}"
        );
    }

    #[test]
    fn every_case_folder_converts_to_its_expected_toml() {
        let mut cases: Vec<String> = fs::read_dir(data_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        cases.sort();
        assert!(cases.len() >= 7, "{cases:?}");
        for case in cases {
            convert_case(&case);
        }
    }

    /// Tutorial 1.6.3, link-based: `ipmp group production0 hivemind-prod up`
    /// and `group production0 -failover up` on each underlying interface.
    #[test]
    fn new_ipmp_link_based() {
        let (config, notes) = convert_case("new-link-based");
        assert_eq!(config.daemon, Default::default());
        assert_eq!(
            config.groups,
            [group(
                "production0",
                &["192.168.178.200/24"],
                vec![
                    member("e1000g0", None, false),
                    member("e1000g1", None, false),
                    member("rge0", None, false),
                ],
            )]
        );
        has_note(
            &notes,
            "group production0 has no test address: failure detection is link-based only",
        );
        has_note(
            &notes,
            "192.168.178.200/24 (hivemind-prod, hostname.production0 line 1)",
        );
        has_note(&notes, "`up` (hostname.e1000g0 line 1, hostname.e1000g1 line 1, hostname.production0 line 1, hostname.rge0 line 1) ignored");
        has_note(&notes, "keep their Solaris names (e1000g0, e1000g1, rge0)");
    }

    /// Tutorial 1.6.3, probe-based: `group production0 -failover
    /// hivemind-prod-e1000g0 up`: the address after -failover is the test
    /// address.
    #[test]
    fn new_ipmp_probe_based() {
        let (config, _) = convert_case("new-probe-based");
        assert_eq!(
            config.groups,
            [group(
                "production0",
                &["192.168.178.200/24"],
                vec![
                    member("e1000g0", Some("192.168.178.201/24"), false),
                    member("e1000g1", Some("192.168.178.202/24"), false),
                    member("rge0", Some("192.168.178.203/24"), false),
                ],
            )]
        );
    }

    /// Seed 003: `unreal-hme0 netmask + broadcast + deprecated -failover
    /// group unrealgrp1 up addif unreal netmask + broadcast + failover up`.
    #[test]
    fn classic_probe_based() {
        let (config, notes) = convert_case("classic-probe-based");
        assert_eq!(
            config.groups,
            [group(
                "unrealgrp1",
                &["192.168.11.5/24"],
                vec![
                    member("hme0", Some("192.168.11.6/24"), false),
                    member("hme1", Some("192.168.11.7/24"), false),
                ],
            )]
        );
        has_note(
            &notes,
            "group unrealgrp1 is classic IPMP (no IPMP interface)",
        );
        has_note(
            &notes,
            "`broadcast +` (hostname.hme0 line 1, hostname.hme1 line 1) ignored",
        );
    }

    /// Tutorial 1.7.4: the same, with the data address on a continued line.
    #[test]
    fn classic_probe_based_with_continued_line() {
        let (config, _) = convert_case("classic-probe-based-tutorial");
        assert_eq!(
            config.groups,
            [group(
                "production0",
                &["192.168.178.200/24"],
                vec![
                    member("e1000g0", Some("192.168.178.201/24"), false),
                    member("e1000g1", Some("192.168.178.202/24"), false),
                ],
            )]
        );
    }

    /// Tutorial 1.7.4: the data address on the first interface, the second
    /// only in the group.
    #[test]
    fn classic_link_based() {
        let (config, notes) = convert_case("classic-link-based");
        assert_eq!(
            config.groups,
            [group(
                "production0",
                &["192.168.178.200/24"],
                vec![
                    member("e1000g0", None, false),
                    member("e1000g1", None, false)
                ],
            )]
        );
        has_note(&notes, "link-based only");
    }

    #[test]
    fn standby_member() {
        let (config, _) = convert_case("standby");
        let members = &config.groups[0].members;
        assert_eq!(
            *members,
            [
                member("e1000g0", Some("192.168.178.201/24"), false),
                member("e1000g1", Some("192.168.178.202/24"), false),
                member("rge0", Some("192.168.178.203/24"), true),
            ]
        );
    }

    /// The tutorial's FAILURE_DETECTION_TIME=100 and seed 004's FAILBACK=no.
    #[test]
    fn mpathd_settings() {
        let (config, notes) = convert_case("mpathd");
        assert_eq!(config.daemon.failure_detection_time_ms, 100);
        assert!(!config.daemon.failback);
        assert_eq!(config.groups.len(), 1);
        assert_eq!(config.groups[0].members.len(), 3);
        has_note(&notes, "TRACK_INTERFACES_ONLY_WITH_GROUPS=yes ignored");
    }

    // Smaller inputs, written here.

    fn files(hostname: &[(&str, &str)], hosts: Option<&str>) -> SolarisFiles {
        SolarisFiles {
            hostname_files: hostname
                .iter()
                .map(|(i, t)| ((*i).to_owned(), (*t).to_owned()))
                .collect(),
            hosts: hosts.map(str::to_owned),
            ..SolarisFiles::default()
        }
    }

    fn errors(files: &SolarisFiles) -> Vec<String> {
        let err = convert(files).expect_err("the conversion should be refused");
        err.to_string().lines().map(str::to_owned).collect()
    }

    fn config_of(files: &SolarisFiles) -> (Config, Vec<String>) {
        let converted = convert(files).unwrap_or_else(|e| panic!("{e}"));
        let config = Config::parse(&converted.toml, Path::new(CONFIG_PATH))
            .unwrap_or_else(|e| panic!("{e}\n{}", converted.toml));
        (config, converted.notes)
    }

    const HOSTS: &str = "127.0.0.1 localhost\n192.0.2.200 prod\n192.0.2.201 prod-eth0\n";

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
            ["hostname6.eth9:1: eth9 is in no group converted from the hostname.IF files; give the group's hostname.IF files too (an IPv6-only group is not converted)"]
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
            ["hostname.eth1:1: `prod-eth1`: unknown host name \"prod-eth1\" (not in /etc/hosts); add it to --hosts FILE or write the address"]
        );
        let input = files(&[("eth0", "prod group g up")], None);
        assert_eq!(
            errors(&input),
            ["hostname.eth0:1: `prod`: unknown host name \"prod\" (no hosts file was given); add it to --hosts FILE or write the address"]
        );
    }

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
                "hostname.eth0:1: `-failver`: unknown ifconfig keyword; correct or remove it (ipmpctl convert reads the ifconfig(1M) keywords, addresses and host names of hostname files)",
                "hostname.eth0:2: `mtu 9000`: ipmpd does not set member MTUs (the group interface takes the smallest member MTU); remove it, and set the MTU of the members with the distribution's network configuration",
                "hostname.eth1:1: `-arp`: ipmp members need ARP: ipmpd answers ARP for each data address on the member it is bound to; remove `-arp`",
            ]
        );
    }

    #[test]
    fn group_name_too_long() {
        let input = files(
            &[
                ("hme0", "192.0.2.5 group averylonggroupname up"),
                ("hme1", "group averylonggroupname up"),
            ],
            None,
        );
        assert_eq!(
            errors(&input),
            ["hostname.hme0:1: `group averylonggroupname`: \"averylonggroupname\" is longer than 13 characters, and it becomes the name of the group interface on Linux (its peer \"averylonggroupname_p\" must fit Linux's 15); rename the group to at most 13 characters of [A-Za-z0-9_.-] in hostname.hme0, hostname.hme1 (`group NAME`), and convert again"]
        );
        // 13 is fine.
        let input = files(
            &[
                ("hme0", "192.0.2.5 group abcdefghijklm up"),
                ("hme1", "group abcdefghijklm up"),
            ],
            None,
        );
        assert_eq!(config_of(&input).0.groups[0].name, "abcdefghijklm");
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
            ["hostname.ipmp0:1: group ipmp0 has no data address; give the IPMP interface ipmp0 an address in hostname.ipmp0"]
        );
    }

    #[test]
    fn netmasks() {
        let input = files(
            &[
                (
                    "ipmp0",
                    "ipmp 10.1.2.3 netmask ffffff00 up\naddif 172.16.1.1 netmask 255.255.255.128 up\naddif 192.0.2.7/28 netmask + up\naddif 10.9.9.9 up",
                ),
                ("eth0", "group ipmp0 192.0.2.201 netmask 0xffffff00 -failover deprecated up"),
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
        assert_eq!(
            config.groups,
            [group(
                "g",
                &["192.0.2.200/24"],
                vec![
                    member("hme0", Some("192.0.2.201/24"), false),
                    member("hme1", Some("192.0.2.202/24"), true),
                ],
            )]
        );
    }

    #[test]
    fn data_address_on_an_underlying_interface_moves_to_the_group() {
        let input = files(
            &[
                ("ipmp0", "ipmp 192.0.2.200/24 up"),
                ("eth0", "group ipmp0 up addif 192.0.2.210/24 up"),
            ],
            None,
        );
        let (config, notes) = config_of(&input);
        assert_eq!(
            config.groups[0].data_addresses,
            [
                "192.0.2.200/24".parse().unwrap(),
                "192.0.2.210/24".parse().unwrap()
            ]
        );
        has_note(&notes, "Solaris moves it to the IPMP interface ipmp0");
    }

    #[test]
    fn ipmp_interface_group_name_and_missing_parts() {
        // The group takes the IPMP interface's name.
        let input = files(
            &[
                ("ipmp0", "ipmp group prod 192.0.2.200/24 up"),
                ("eth0", "group prod -failover up"),
            ],
            None,
        );
        let (config, notes) = config_of(&input);
        assert_eq!(config.groups[0].name, "ipmp0");
        has_note(&notes, "is in group \"prod\" on Solaris");
        // An IPMP interface without members.
        let input = files(&[("ipmp0", "ipmp 192.0.2.200/24 up")], None);
        assert_eq!(
            errors(&input),
            ["hostname.ipmp0:1: `ipmp`: the IPMP interface ipmp0 has no underlying interface (no hostname file says `group ipmp0`); give the hostname files of its underlying interfaces too"]
        );
    }

    #[test]
    fn other_interfaces_are_left_alone() {
        let input = files(
            &[
                ("bge1", "backup-host netmask + broadcast + up"),
                ("eth0", "192.0.2.5/24 group g up"),
            ],
            None,
        );
        let (config, notes) = config_of(&input);
        assert_eq!(config.groups.len(), 1);
        has_note(&notes, "hostname.bge1: not converted");
        // Only interfaces that are nothing but IPMP-free: refused.
        assert_eq!(
            errors(&files(&[("bge1", "192.0.2.9 up")], None)),
            ["hostname.IF: none of the hostname files configures IPMP (no `group`, no `ipmp`); give the hostname files of the IPMP interfaces and of their members"]
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
                "hostname.eth0:2: `group h`: eth0 is already in group \"g\" (hostname.eth0 line 1); put the interface in one group",
                "hostname.eth2:1: `192.0.2.7`: a second address in one command is a point-to-point destination, which IPMP does not use; remove it, or give it its own logical interface with `addif`",
                "hostname.eth2:1: `broadcast 192.0.2.127`: the broadcast address of 192.0.2.6/24 is 192.0.2.255, and ipmp cannot use another; correct the netmask, or write `broadcast +`",
                "hostname.eth1:1: `192.0.2.5/24`: 192.0.2.5 is already configured in hostname.eth0 line 1; configure each address once",
            ]
        );
    }

    #[test]
    fn two_test_addresses_and_deprecated_data_address() {
        let input = files(
            &[
                ("ipmp0", "ipmp 192.0.2.200/24 deprecated up"),
                (
                    "eth0",
                    "192.0.2.201/24 -failover group ipmp0 up addif 192.0.2.211/24 -failover up",
                ),
            ],
            None,
        );
        assert_eq!(
            errors(&input),
            [
                "hostname.ipmp0:1: `deprecated`: 192.0.2.200 is deprecated but fails over (no -failover): a data address that is never a source address, which ipmp cannot express; remove `deprecated` to make it a data address, or add `-failover` to make it a test address",
                "hostname.eth0:1: `192.0.2.211/24`: eth0 has a second test address; ipmp probes from one IPv4 test address per member; keep one `-failover` address on the interface",
            ]
        );
    }

    #[test]
    fn mpathd_values() {
        let mut input = files(&[("eth0", "192.0.2.5/24 group g up")], None);
        input.mpathd = Some(
            "# comment\nFAILURE_DETECTION_TIME=50\nFAILBACK=No\nFAILBACK=yes\nSOMETHING=1\n".into(),
        );
        let converted = convert(&input).unwrap();
        let config = Config::parse(&converted.toml, Path::new(CONFIG_PATH)).unwrap();
        assert_eq!(config.daemon.failure_detection_time_ms, 100);
        assert!(!config.daemon.failback);
        has_note(
            &converted.notes,
            "raises FAILURE_DETECTION_TIME=50 to its minimum of 100 ms",
        );
        has_note(&converted.notes, "FAILBACK is already set on line 3");
        has_note(&converted.notes, "SOMETHING ignored");

        input.mpathd = Some("FAILURE_DETECTION_TIME=010000\n".into());
        let converted = convert(&input).unwrap();
        assert!(converted
            .toml
            .contains("failure_detection_time_ms = 4096  #"));
        has_note(&converted.notes, "is read as 4096 ms");

        input.mpathd = Some("FAILURE_DETECTION_TIME=ten\nFAILBACK=sometimes\n".into());
        assert_eq!(
            errors(&input),
            [
                "/etc/default/mpathd:1: `FAILURE_DETECTION_TIME=ten`: not a positive number of milliseconds (in.mpathd ignored it and used 10000); write the failure detection time you mean, in ms",
                "/etc/default/mpathd:2: `FAILBACK=sometimes`: FAILBACK is yes or no (in.mpathd ignored this value and failed back); write FAILBACK=yes or FAILBACK=no",
            ]
        );
    }

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
            ["hostname.eth0:1: `v6only`: host name \"v6only\" has only an IPv6 address in /etc/hosts; give it its IPv4 address in --hosts FILE, or write the address"]
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
            ["hostname.ipmp0:2: `addif 2001:db8::1/64`: an IPv6 address in a hostname.IF file (Solaris keeps IPv6 in hostname6.IF); move it to the interface's hostname6.IF file"]
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

    #[test]
    fn toml_strings_and_comments_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
        assert_eq!(comment_text("a\u{7}b\tc"), "a?b\tc");
    }
}
