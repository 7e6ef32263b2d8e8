//! The checks of a configuration file, on the file as written: every
//! problem is reported with its line, and the checked file becomes the
//! [`Config`] the daemon uses.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use toml::Spanned;

use super::{
    line_of, peer_interface, Config, ConfigProblem, DaemonConfig, GroupConfig, MemberConfig,
    XdpMode, LOOPBACK, MAX_DURATION_MS, MAX_GROUP_NAME_LEN, MAX_IFNAME_LEN, MAX_PEER_NOTIFICATIONS,
    MIN_FDT_MS, PEER_SUFFIX,
};

/// Checks the file as written and turns it into the configuration, or
/// gives every problem found, in line order.
pub(super) fn check(text: &str, raw: RawConfig) -> Result<Config, Vec<ConfigProblem>> {
    let mut checker = Checker {
        text,
        problems: Vec::new(),
    };
    let config = checker.config(raw);
    if checker.problems.is_empty() {
        return Ok(config);
    }
    checker.problems.sort_by_key(|p| p.line);
    Err(checker.problems)
}

/// What kind of address `addr` is when it cannot stand for a host on a
/// link (as a data address, test address or probe target).
fn unusable_kind(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_loopback() => Some("the loopback address"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Some("an IPv4-mapped IPv6 address (write the IPv4 address itself)")
        }
        _ => None,
    }
}

// The file as written. Checked values keep their span. Addresses and
// paths are read as strings and parsed by the checks, so that every bad one
// is reported, not only the first one serde would stop at.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    failure_detection_time_ms: Option<Spanned<u64>>,
    failback: Option<bool>,
    startup_quiet_ms: Option<Spanned<u64>>,
    peer_notifications: Option<Spanned<u32>>,
    control_socket: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    pin_dir: Option<Spanned<String>>,
    xdp_mode: Option<XdpMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    data_addresses: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    failure_detection_time_ms: Option<Spanned<u64>>,
    answer_echo: Option<bool>,
    #[serde(default)]
    member: Vec<Spanned<RawMember>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    interface: Spanned<String>,
    test_address: Option<Spanned<String>>,
    #[serde(default)]
    standby: bool,
    /// Says that a test address outside every data subnet is meant.
    #[serde(default)]
    test_address_outside_data_subnets: bool,
}

/// What uses an interface name, for the message when two uses clash.
#[derive(Clone, Copy)]
enum NameUse<'a> {
    Group,
    Peer { group: &'a str },
    Member,
}

struct Checker<'t> {
    text: &'t str,
    problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, message: String) {
        let line = self.line(span);
        self.problems.push(ConfigProblem {
            line: Some(line),
            message,
        });
    }

    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let daemon = self.daemon(raw.daemon);
        let groups = raw.group.iter().map(|group| self.group(group)).collect();
        self.names_unique(&raw.group);
        self.addresses_unique(&raw.group);
        Config { daemon, groups }
    }

    fn daemon(&mut self, raw: RawDaemon) -> DaemonConfig {
        let default = DaemonConfig::default();
        DaemonConfig {
            failure_detection_time_ms: raw
                .failure_detection_time_ms
                .map_or(default.failure_detection_time_ms, |fdt| self.fdt(fdt)),
            failback: raw.failback.unwrap_or(default.failback),
            startup_quiet_ms: raw
                .startup_quiet_ms
                .map_or(default.startup_quiet_ms, |ms| {
                    self.at_most("startup_quiet_ms", ms)
                }),
            peer_notifications: raw.peer_notifications.map_or(default.peer_notifications, |n| {
                if *n.get_ref() > MAX_PEER_NOTIFICATIONS {
                    self.report(
                        n.span(),
                        format!(
                            "peer_notifications = {} is above the maximum of {MAX_PEER_NOTIFICATIONS}",
                            n.get_ref()
                        ),
                    );
                }
                n.into_inner()
            }),
            control_socket: raw
                .control_socket
                .map_or(default.control_socket, |p| self.absolute("control_socket", p)),
            metrics_listen: raw.metrics_listen.and_then(|addr| {
                let parsed = addr.get_ref().parse().ok();
                if parsed.is_none() {
                    self.report(
                        addr.span(),
                        format!(
                            "metrics_listen = \"{}\" is not an address and port, \
                             e.g. \"127.0.0.1:9477\"; leave it out to serve no metrics",
                            addr.get_ref()
                        ),
                    );
                }
                parsed
            }),
            pin_dir: raw
                .pin_dir
                .map_or(default.pin_dir, |p| self.absolute("pin_dir", p)),
            xdp_mode: raw.xdp_mode.unwrap_or(default.xdp_mode),
        }
    }

    fn fdt(&mut self, fdt: Spanned<u64>) -> u64 {
        if *fdt.get_ref() < MIN_FDT_MS {
            self.report(
                fdt.span(),
                format!(
                    "failure_detection_time_ms = {} is below the minimum of {MIN_FDT_MS} ms",
                    fdt.get_ref()
                ),
            );
        }
        self.at_most("failure_detection_time_ms", fdt)
    }

    /// A duration in ms, at most [`MAX_DURATION_MS`].
    fn at_most(&mut self, key: &str, ms: Spanned<u64>) -> u64 {
        if *ms.get_ref() > MAX_DURATION_MS {
            self.report(
                ms.span(),
                format!(
                    "{key} = {} is above the maximum of {MAX_DURATION_MS} ms (one hour)",
                    ms.get_ref()
                ),
            );
        }
        ms.into_inner()
    }

    fn absolute(&mut self, key: &str, path: Spanned<String>) -> PathBuf {
        let span = path.span();
        let path = PathBuf::from(path.into_inner());
        if !path.is_absolute() {
            self.report(
                span,
                format!(
                    "{key} = \"{}\" is not an absolute path; give it starting with /",
                    path.display()
                ),
            );
        }
        path
    }

    fn group(&mut self, raw: &Spanned<RawGroup>) -> GroupConfig {
        let group = raw.get_ref();
        let name = group.name.get_ref();
        self.interface_name("group", &group.name, MAX_GROUP_NAME_LEN);
        self.group_sizes(raw);
        let data_addresses: Vec<IpNet> = group
            .data_addresses
            .get_ref()
            .iter()
            .filter_map(|a| {
                let net = self.address_with_prefix("data address", a)?;
                self.usable("data address", a, net.addr()).then_some(net)
            })
            .collect();
        let members: Vec<MemberConfig> = group
            .member
            .iter()
            .map(|m| self.member(m.get_ref(), name, &data_addresses))
            .collect();
        let ours: Vec<IpAddr> = data_addresses
            .iter()
            .map(IpNet::addr)
            .chain(
                members
                    .iter()
                    .filter_map(|m| Some(IpAddr::V4(m.test_address?.addr()))),
            )
            .collect();
        GroupConfig {
            name: name.clone(),
            data_addresses,
            targets: self.targets(&group.targets, name, &ours),
            failure_detection_time_ms: group
                .failure_detection_time_ms
                .clone()
                .map(|fdt| self.fdt(fdt)),
            answer_echo: group.answer_echo.unwrap_or(true),
            members,
        }
    }

    /// A group has at least one data address and one member, and no more
    /// than the dataplane holds.
    fn group_sizes(&mut self, raw: &Spanned<RawGroup>) {
        let group = raw.get_ref();
        let name = group.name.get_ref();
        if group.data_addresses.get_ref().is_empty() {
            self.report(
                group.data_addresses.span(),
                format!(
                    "group \"{name}\" has no data address; list at least one in data_addresses"
                ),
            );
        }
        if group.member.is_empty() {
            self.report(
                raw.span(),
                format!("group \"{name}\" has no member; add at least one [[group.member]]"),
            );
        } else if group.member.len() > ipmp_common::MAX_MEMBERS as usize {
            self.report(
                raw.span(),
                format!(
                    "group \"{name}\" has {} members; the dataplane holds at most {}",
                    group.member.len(),
                    ipmp_common::MAX_MEMBERS
                ),
            );
        }
        if group.data_addresses.get_ref().len() > ipmp_common::MAX_DATA_ADDRESSES as usize {
            self.report(
                group.data_addresses.span(),
                format!(
                    "group \"{name}\" has {} data addresses; the dataplane holds at most {}",
                    group.data_addresses.get_ref().len(),
                    ipmp_common::MAX_DATA_ADDRESSES
                ),
            );
        }
    }

    /// The explicit probe targets of group `name`: addresses of other hosts
    /// (not `ours`), each once.
    fn targets(&mut self, targets: &[Spanned<String>], name: &str, ours: &[IpAddr]) -> Vec<IpAddr> {
        let mut lines: HashMap<IpAddr, usize> = HashMap::new();
        targets
            .iter()
            .filter_map(|t| {
                let Ok(target) = t.get_ref().parse::<IpAddr>() else {
                    self.report(
                        t.span(),
                        format!(
                            "target \"{}\" is not an IP address (no prefix length), e.g. \
                             \"192.0.2.1\"",
                            t.get_ref()
                        ),
                    );
                    return None;
                };
                if !self.usable("target", t, target) {
                    return None;
                }
                if ours.contains(&target) {
                    self.report(
                        t.span(),
                        format!(
                            "target {target} is an address of group \"{name}\" itself; \
                             a target is another host on the link that answers pings"
                        ),
                    );
                    return None;
                }
                if let Some(first) = lines.insert(target, self.line(t.span())) {
                    self.report(
                        t.span(),
                        format!("target {target} is already listed on line {first}"),
                    );
                    return None;
                }
                Some(target)
            })
            .collect()
    }

    /// Whether `addr` can be a data address, test address or target: a
    /// unicast address of a host on a link. Reports it when not.
    fn usable(&mut self, what: &str, written: &Spanned<String>, addr: IpAddr) -> bool {
        let Some(kind) = unusable_kind(addr) else {
            return true;
        };
        self.report(
            written.span(),
            format!(
                "{what} \"{}\" is {kind}; give a unicast address of this link",
                written.get_ref()
            ),
        );
        false
    }

    fn member(&mut self, raw: &RawMember, group: &str, data: &[IpNet]) -> MemberConfig {
        self.interface_name("interface", &raw.interface, MAX_IFNAME_LEN);
        MemberConfig {
            interface: raw.interface.get_ref().clone(),
            test_address: raw.test_address.as_ref().and_then(|a| {
                let net = match self.address_with_prefix("test_address", a)? {
                    IpNet::V4(net) => net,
                    IpNet::V6(_) => {
                        self.report(
                            a.span(),
                            format!(
                                "test_address \"{}\" is not IPv4; probing needs an IPv4 \
                                 test address, e.g. \"192.0.2.201/24\"",
                                a.get_ref()
                            ),
                        );
                        return None;
                    }
                };
                if !self.usable("test_address", a, IpAddr::V4(net.addr())) {
                    return None;
                }
                let inside = data.iter().any(|d| d.contains(&IpAddr::V4(net.addr())));
                if !inside && !data.is_empty() && !raw.test_address_outside_data_subnets {
                    self.report(
                        a.span(),
                        format!(
                            "test address {} is outside every data subnet of group \"{group}\", \
                             so its probes may reach no target; use an address of a data subnet, \
                             or say test_address_outside_data_subnets = true if this is meant",
                            net.addr()
                        ),
                    );
                }
                Some(net)
            }),
            standby: raw.standby,
        }
    }

    /// Linux's rules for an interface name (dev_valid_name), kept to a
    /// portable character set, and `max` characters.
    fn interface_name(&mut self, what: &str, name: &Spanned<String>, max: usize) {
        let span = name.span();
        let name = name.get_ref();
        let len = name.chars().count();
        if len == 0 {
            self.report(span, format!("{what} name is empty"));
        } else if len > max {
            let why = if max < MAX_IFNAME_LEN {
                format!(
                    "; the group interface's peer is named \"{name}{PEER_SUFFIX}\" and Linux \
                    allows {MAX_IFNAME_LEN}"
                )
            } else {
                String::new()
            };
            self.report(
                span,
                format!("{what} name \"{name}\" is longer than {max} characters{why}"),
            );
        } else if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            self.report(
                span,
                format!(
                    "{what} name \"{name}\" has the character {bad:?}; \
                     use only letters, digits, '_', '.' and '-'"
                ),
            );
        } else if name == "." || name == ".." {
            self.report(
                span,
                format!("{what} name \"{name}\" is not allowed by Linux"),
            );
        } else if name == LOOPBACK {
            self.report(
                span,
                format!(
                    "{what} name \"{name}\" is the loopback interface, which carries no link; \
                     name an Ethernet interface"
                ),
            );
        }
    }

    fn address_with_prefix(&mut self, what: &str, addr: &Spanned<String>) -> Option<IpNet> {
        let text = addr.get_ref();
        if let Ok(net) = text.parse::<IpNet>() {
            return Some(net);
        }
        let message = match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => {
                format!("{what} \"{text}\" needs a prefix length, e.g. \"{text}/24\"")
            }
            Ok(IpAddr::V6(_)) => {
                format!("{what} \"{text}\" needs a prefix length, e.g. \"{text}/64\"")
            }
            Err(_) => {
                let example = if text.contains(':') {
                    "2001:db8::200/64"
                } else {
                    "192.0.2.200/24"
                };
                format!("{what} \"{text}\" is not an IP address with a prefix length, e.g. \"{example}\"")
            }
        };
        self.report(addr.span(), message);
        None
    }

    /// Every interface name ipmpd creates (group and peer) or takes over
    /// (member) must be distinct.
    fn names_unique(&mut self, groups: &[Spanned<RawGroup>]) {
        let mut uses = Vec::new();
        for group in groups.iter().map(Spanned::get_ref) {
            let (name, span) = (group.name.get_ref(), group.name.span());
            uses.push((name.clone(), span.clone(), NameUse::Group));
            let peer = NameUse::Peer { group: name };
            uses.push((peer_interface(name), span, peer));
            for member in group.member.iter().map(|m| &m.get_ref().interface) {
                uses.push((member.get_ref().clone(), member.span(), NameUse::Member));
            }
        }
        // Reported where the second use stands.
        uses.sort_by_key(|(_, span, _)| span.start);
        let mut first: HashMap<&str, (usize, NameUse)> = HashMap::new();
        for (name, span, this) in &uses {
            if name.is_empty() {
                continue;
            }
            let Some(&(first_line, that)) = first.get(name.as_str()) else {
                first.insert(name, (self.line(span.clone()), *this));
                continue;
            };
            let message = match (this, that) {
                (NameUse::Group, NameUse::Group) => format!(
                    "group \"{name}\" is already defined on line {first_line}; group names must be unique"
                ),
                (NameUse::Member, NameUse::Member) => format!(
                    "interface \"{name}\" is already a member on line {first_line}; \
                     an interface can be in only one group, once"
                ),
                (NameUse::Member, NameUse::Group) => format!(
                    "interface \"{name}\" is the name of the group on line {first_line}; \
                     a member cannot be a group interface"
                ),
                (NameUse::Group, NameUse::Member) => format!(
                    "group name \"{name}\" is already a member interface on line {first_line}; \
                     the group interface needs a name of its own"
                ),
                // Only a repeated group name gives a repeated peer name,
                // and that is reported at the group name.
                (NameUse::Peer { .. }, NameUse::Peer { .. }) => continue,
                (this, NameUse::Peer { group }) => format!(
                    "{} \"{name}\" is the name ipmpd gives the peer of group \"{group}\" \
                     (line {first_line}); choose another name",
                    describe(*this)
                ),
                (NameUse::Peer { group }, that) => format!(
                    "group \"{group}\" needs the interface name \"{name}\" for its peer, \
                     but {} \"{name}\" on line {first_line} has it; rename one of them",
                    describe(that)
                ),
            };
            self.report(span.clone(), message);
        }

        fn describe(name_use: NameUse) -> &'static str {
            match name_use {
                NameUse::Group => "group",
                NameUse::Peer { .. } => "peer interface",
                NameUse::Member => "member interface",
            }
        }
    }

    /// A data address belongs to one group; a test address to one member
    /// and never moves, so it cannot be a data address. A test address
    /// twice in one group is in.mpathd's to deal with (it disables probing
    /// on the second member); in two groups it is an error.
    fn addresses_unique(&mut self, groups: &[Spanned<RawGroup>]) {
        let mut data: HashMap<IpAddr, usize> = HashMap::new();
        for addr in groups
            .iter()
            .flat_map(|g| g.get_ref().data_addresses.get_ref())
        {
            let Ok(net) = addr.get_ref().parse::<IpNet>() else {
                continue;
            };
            let line = self.line(addr.span());
            if let Some(&first) = data.get(&net.addr()) {
                self.report(
                    addr.span(),
                    format!(
                        "data address {} is already used on line {first}; \
                         a data address belongs to one group, once",
                        net.addr()
                    ),
                );
            } else {
                data.insert(net.addr(), line);
            }
        }
        let mut test: HashMap<Ipv4Addr, (usize, &str, usize)> = HashMap::new();
        let members = groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.get_ref().member.iter().map(move |m| (g, m)));
        for (group, member) in members.map(|(g, m)| (g, m.get_ref())) {
            let Some(addr) = &member.test_address else {
                continue;
            };
            let Ok(net) = addr.get_ref().parse::<Ipv4Net>() else {
                continue;
            };
            let ip = net.addr();
            if let Some(&first) = data.get(&IpAddr::V4(ip)) {
                self.report(
                    addr.span(),
                    format!(
                        "test address {ip} is also a data address (line {first}); \
                         give the member a test address of its own"
                    ),
                );
            }
            let line = self.line(addr.span());
            match test.get(&ip) {
                Some(&(first, other, g)) if g != group => self.report(
                    addr.span(),
                    format!(
                        "test address {ip} is already the test address of \"{other}\" \
                         (line {first}) in another group; each member needs its own"
                    ),
                ),
                Some(_) => {}
                None => {
                    test.insert(ip, (line, member.interface.get_ref(), group));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, group, parse, FILE};

    #[test]
    fn daemon_fdt_below_minimum() {
        assert_eq!(
            errors("[daemon]\nfailure_detection_time_ms = 5\n"),
            [format!(
                "{FILE}:2: failure_detection_time_ms = 5 is below the minimum of 10 ms"
            )]
        );
        assert!(parse("[daemon]\nfailure_detection_time_ms = 10\n").is_ok());
    }

    #[test]
    fn group_fdt_below_minimum() {
        let text = format!(
            "{}\n[[group]]\nname = \"g1\"\ndata_addresses = [\"192.0.2.100/24\"]\n\
             failure_detection_time_ms = 9\n[[group.member]]\ninterface = \"eth1\"\n",
            group("g0", "eth0", "192.0.2.200/24", "192.0.2.201/24")
        );
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:11: failure_detection_time_ms = 9 is below the minimum of 10 ms"
            )]
        );
    }

    #[test]
    fn peer_notifications_above_maximum() {
        assert_eq!(
            errors("[daemon]\npeer_notifications = 101\n"),
            [format!(
                "{FILE}:2: peer_notifications = 101 is above the maximum of 100"
            )]
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            errors("[daemon]\ncontrol_socket = \"ipmpd.sock\"\npin_dir = \"bpf/ipmp\"\n"),
            [
                format!("{FILE}:2: control_socket = \"ipmpd.sock\" is not an absolute path; give it starting with /"),
                format!("{FILE}:3: pin_dir = \"bpf/ipmp\" is not an absolute path; give it starting with /"),
            ]
        );
    }

    #[test]
    fn bad_metrics_listen() {
        assert_eq!(
            errors("[daemon]\nmetrics_listen = \"localhost\"\n"),
            [format!(
                "{FILE}:2: metrics_listen = \"localhost\" is not an address and port, \
                 e.g. \"127.0.0.1:9477\"; leave it out to serve no metrics"
            )]
        );
        let config = parse("[daemon]\nmetrics_listen = \"[::1]:9477\"\n").unwrap();
        assert_eq!(
            config.daemon.metrics_listen,
            Some("[::1]:9477".parse().unwrap())
        );
    }

    #[test]
    fn interface_name_too_long() {
        let text = group(
            "g0",
            "averyveryverylongname",
            "192.0.2.200/24",
            "192.0.2.201/24",
        );
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:5: interface name \"averyveryverylongname\" is longer than 15 characters"
            )]
        );
        // 15 is the longest Linux allows.
        assert!(parse(&group(
            "g0",
            "abcdefghijklmno",
            "192.0.2.200/24",
            "192.0.2.201/24"
        ))
        .is_ok());
    }

    #[test]
    fn group_name_too_long() {
        assert!(parse(&group(
            "abcdefghijklm",
            "eth0",
            "192.0.2.200/24",
            "192.0.2.201/24"
        ))
        .is_ok());
        assert_eq!(
            errors(&group(
                "abcdefghijklmn",
                "eth0",
                "192.0.2.200/24",
                "192.0.2.201/24"
            )),
            [format!(
                "{FILE}:2: group name \"abcdefghijklmn\" is longer than 13 characters; \
                 the group interface's peer is named \"abcdefghijklmn_p\" and Linux allows 15"
            )]
        );
    }

    #[test]
    fn bad_names() {
        let text = format!(
            "{}{}",
            group("prod 0", "eth/0", "192.0.2.200/24", "192.0.2.201/24"),
            group("..", "", "192.0.2.100/24", "192.0.2.101/24")
        );
        assert_eq!(
            errors(&text),
            [
                format!(
                    "{FILE}:2: group name \"prod 0\" has the character ' '; use only letters, \
                    digits, '_', '.' and '-'"
                ),
                format!(
                    "{FILE}:5: interface name \"eth/0\" has the character '/'; use only \
                    letters, digits, '_', '.' and '-'"
                ),
                format!("{FILE}:8: group name \"..\" is not allowed by Linux"),
                format!("{FILE}:11: interface name is empty"),
            ]
        );
    }

    #[test]
    fn name_clashes() {
        let text = format!(
            "{}{}{}{}",
            group("g0", "eth0", "192.0.2.200/24", "192.0.2.201/24"), // lines 1-6
            group("g1", "eth0", "192.0.2.100/24", "192.0.2.101/24"), // 7-12
            group("g0", "g1", "192.0.2.50/24", "192.0.2.51/24"),     // 13-18
            group("g2", "g0_p", "192.0.2.60/24", "192.0.2.61/24"),   // 19-24
        );
        assert_eq!(
            errors(&text),
            [
                format!("{FILE}:11: interface \"eth0\" is already a member on line 5; an interface \
                    can be in only one group, once"),
                format!("{FILE}:14: group \"g0\" is already defined on line 2; group names must be unique"),
                format!("{FILE}:17: interface \"g1\" is the name of the group on line 8; a member \
                    cannot be a group interface"),
                format!("{FILE}:23: member interface \"g0_p\" is the name ipmpd gives the peer of \
                    group \"g0\" (line 2); choose another name"),
            ]
        );
    }

    #[test]
    fn group_named_like_a_member_or_a_peer() {
        let text = format!(
            "{}{}",
            group("g0", "eth0", "192.0.2.200/24", "192.0.2.201/24"),
            group("eth0", "g0_p", "192.0.2.100/24", "192.0.2.101/24"),
        );
        assert_eq!(
            errors(&text),
            [
                format!(
                    "{FILE}:8: group name \"eth0\" is already a member interface on line 5; \
                    the group interface needs a name of its own"
                ),
                format!(
                    "{FILE}:11: member interface \"g0_p\" is the name ipmpd gives the peer of \
                    group \"g0\" (line 2); choose another name"
                ),
            ]
        );
        let text = format!(
            "{}{}",
            group("g0_p", "eth0", "192.0.2.200/24", "192.0.2.201/24"),
            group("g0", "eth1", "192.0.2.100/24", "192.0.2.101/24"),
        );
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:8: group \"g0\" needs the interface name \"g0_p\" for its peer, \
                 but group \"g0_p\" on line 2 has it; rename one of them"
            )]
        );
    }

    #[test]
    fn group_without_members_or_data_addresses() {
        let text = "[[group]]\nname = \"g0\"\ndata_addresses = []\n";
        assert_eq!(
            errors(text),
            [
                format!("{FILE}:1: group \"g0\" has no member; add at least one [[group.member]]"),
                format!("{FILE}:3: group \"g0\" has no data address; list at least one in data_addresses"),
            ]
        );
    }

    #[test]
    fn more_members_than_the_dataplane_holds() {
        let mut text =
            String::from("[[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.200/24\"]\n");
        for i in 0..65 {
            text.push_str(&format!("[[group.member]]\ninterface = \"eth{i}\"\n"));
        }
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:1: group \"g0\" has 65 members; the dataplane holds at most 64"
            )]
        );
    }

    #[test]
    fn bad_data_addresses() {
        let text = "[[group]]\nname = \"g0\"\ndata_addresses = [\n  \"192.0.2.200\",\n  \
                    \"2001:db8::zz/64\",\n  \"192.0.2.1/33\",\n]\n\
                    [[group.member]]\ninterface = \"eth0\"\n";
        assert_eq!(
            errors(text),
            [
                format!("{FILE}:4: data address \"192.0.2.200\" needs a prefix length, e.g. \"192.0.2.200/24\""),
                format!("{FILE}:5: data address \"2001:db8::zz/64\" is not an IP address with a \
                    prefix length, e.g. \"2001:db8::200/64\""),
                format!("{FILE}:6: data address \"192.0.2.1/33\" is not an IP address with a \
                    prefix length, e.g. \"192.0.2.200/24\""),
            ]
        );
    }

    #[test]
    fn data_address_in_two_groups() {
        let text = format!(
            "{}{}",
            group("g0", "eth0", "192.0.2.200/24", "192.0.2.201/24"),
            group("g1", "eth1", "192.0.2.200/25", "192.0.2.202/25"),
        );
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:9: data address 192.0.2.200 is already used on line 3; a data address \
                    belongs to one group, once"
            )]
        );
    }

    /// in.mpathd disables probing on the second member; the file is fine.
    #[test]
    fn a_test_address_twice_in_one_group_is_accepted() {
        let text = format!(
            "{}[[group.member]]\ninterface = \"eth1\"\ntest_address = \"192.0.2.201/24\"\n",
            group("g0", "eth0", "192.0.2.200/24", "192.0.2.201/24")
        );
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn bad_test_addresses() {
        let text = format!(
            "{}{}{}{}",
            group("g0", "eth0", "192.0.2.200/24", "2001:db8::201/64"), // 1-6
            group("g1", "eth1", "192.0.2.100/24", "192.0.2.200/24"),   // 7-12
            group("g2", "eth2", "192.0.2.50/24", "192.0.2.51"),        // 13-18
            group("g3", "eth3", "192.0.2.60/24", "192.0.2.200/24"),    // 19-24
        );
        assert_eq!(
            errors(&text),
            [
                format!("{FILE}:6: test_address \"2001:db8::201/64\" is not IPv4; probing needs an \
                    IPv4 test address, e.g. \"192.0.2.201/24\""),
                format!("{FILE}:12: test address 192.0.2.200 is also a data address (line 3); give \
                    the member a test address of its own"),
                format!("{FILE}:18: test_address \"192.0.2.51\" needs a prefix length, e.g. \"192.0.2.51/24\""),
                format!("{FILE}:24: test address 192.0.2.200 is also a data address (line 3); give \
                    the member a test address of its own"),
                format!("{FILE}:24: test address 192.0.2.200 is already the test address of \
                    \"eth1\" (line 12) in another group; each member needs its own"),
            ]
        );
    }

    #[test]
    fn bad_targets() {
        let text = "[[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.200/24\"]\n\
                    targets = [\"192.0.2.1\", \"2001:db8::1\",\n  \"192.0.2.1\", \"192.0.2.0/24\"]\n\
                    [[group.member]]\ninterface = \"eth0\"\n";
        assert_eq!(
            errors(text),
            [
                format!("{FILE}:5: target 192.0.2.1 is already listed on line 4"),
                format!(
                    "{FILE}:5: target \"192.0.2.0/24\" is not an IP address (no prefix \
                    length), e.g. \"192.0.2.1\""
                ),
            ]
        );
    }

    #[test]
    fn all_problems_are_reported_in_line_order() {
        let text = format!(
            "[daemon]\nfailure_detection_time_ms = 1\npeer_notifications = 1000\n\n{}",
            group(
                "averyveryverylongname",
                "eth0",
                "192.0.2.200",
                "192.0.2.200/24"
            )
        );
        assert_eq!(
            errors(&text),
            [
                format!("{FILE}:2: failure_detection_time_ms = 1 is below the minimum of 10 ms"),
                format!("{FILE}:3: peer_notifications = 1000 is above the maximum of 100"),
                format!("{FILE}:6: group name \"averyveryverylongname\" is longer than 13 \
                    characters; the group interface's peer is named \"averyveryverylongname_p\" \
                    and Linux allows 15"),
                format!("{FILE}:7: data address \"192.0.2.200\" needs a prefix length, e.g. \"192.0.2.200/24\""),
            ]
        );
    }

    #[test]
    fn addresses_no_host_can_have() {
        let text = "[[group]]\nname = \"g0\"\ndata_addresses = [\"0.0.0.0/0\", \"::/0\",\n\
                    \"127.0.0.5/8\", \"::ffff:192.0.2.200/120\", \"224.0.0.1/4\", \"192.0.2.200/24\"]\n\
                    targets = [\"255.255.255.255\", \"224.0.0.1\", \"0.0.0.0\",\n\
                    \"192.0.2.200\", \"192.0.2.201\", \"ff02::1\", \"192.0.2.1\"]\n\
                    [[group.member]]\ninterface = \"eth0\"\ntest_address = \"192.0.2.201/24\"\n";
        assert_eq!(
            errors(text),
            [
                format!("{FILE}:3: data address \"0.0.0.0/0\" is the unspecified address; give a \
                    unicast address of this link"),
                format!("{FILE}:3: data address \"::/0\" is the unspecified address; give a \
                    unicast address of this link"),
                format!("{FILE}:4: data address \"127.0.0.5/8\" is a loopback address; give a \
                    unicast address of this link"),
                format!("{FILE}:4: data address \"::ffff:192.0.2.200/120\" is an IPv4-mapped IPv6 \
                    address (write the IPv4 address itself); give a unicast address of this link"),
                format!("{FILE}:4: data address \"224.0.0.1/4\" is a multicast address; give a \
                    unicast address of this link"),
                format!("{FILE}:5: target \"255.255.255.255\" is the broadcast address; give a \
                    unicast address of this link"),
                format!("{FILE}:5: target \"224.0.0.1\" is a multicast address; give a unicast address of this link"),
                format!("{FILE}:5: target \"0.0.0.0\" is the unspecified address; give a unicast address of this link"),
                format!("{FILE}:6: target 192.0.2.200 is an address of group \"g0\" itself; a \
                    target is another host on the link that answers pings"),
                format!("{FILE}:6: target 192.0.2.201 is an address of group \"g0\" itself; a \
                    target is another host on the link that answers pings"),
                format!("{FILE}:6: target \"ff02::1\" is a multicast address; give a unicast address of this link"),
            ]
        );
    }

    #[test]
    fn more_data_addresses_than_the_dataplane_holds() {
        let addresses: Vec<String> = (1..=65).map(|i| format!("\"192.0.2.{i}/24\"")).collect();
        let text = format!(
            "[[group]]\nname = \"g0\"\ndata_addresses = [{}]\n[[group.member]]\ninterface = \"eth0\"\n",
            addresses.join(", ")
        );
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:3: group \"g0\" has 65 data addresses; the dataplane holds at most 64"
            )]
        );
    }

    #[test]
    fn loopback_is_neither_group_nor_member() {
        assert_eq!(
            errors(&group("lo", "eth0", "192.0.2.200/24", "192.0.2.201/24")),
            [format!(
                "{FILE}:2: group name \"lo\" is the loopback interface, which carries no \
                link; name an Ethernet interface"
            )]
        );
        assert_eq!(
            errors(&group("g0", "lo", "192.0.2.200/24", "192.0.2.201/24")),
            [format!(
                "{FILE}:5: interface name \"lo\" is the loopback interface, which carries no \
                link; name an Ethernet interface"
            )]
        );
    }

    #[test]
    fn test_address_outside_the_data_subnets_must_be_meant() {
        let text = group("g0", "eth0", "192.0.2.200/24", "198.51.100.201/24");
        assert_eq!(
            errors(&text),
            [format!(
                "{FILE}:6: test address 198.51.100.201 is outside every data subnet of group \"g0\", \
                 so its probes may reach no target; use an address of a data subnet, \
                 or say test_address_outside_data_subnets = true if this is meant"
            )]
        );
        let meant = format!("{text}test_address_outside_data_subnets = true\n");
        assert!(parse(&meant).is_ok());
    }

    #[test]
    fn durations_are_bounded() {
        let big = 1u64 << 63;
        let text = format!(
            "[daemon]\nfailure_detection_time_ms = {big}\nstartup_quiet_ms = {big}\n\n\
             [[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.200/24\"]\n\
             failure_detection_time_ms = 3600001\n[[group.member]]\ninterface = \"eth0\"\n"
        );
        assert_eq!(
            errors(&text),
            [
                format!("{FILE}:2: failure_detection_time_ms = {big} is above the maximum of 3600000 ms (one hour)"),
                format!("{FILE}:3: startup_quiet_ms = {big} is above the maximum of 3600000 ms (one hour)"),
                format!("{FILE}:8: failure_detection_time_ms = 3600001 is above the maximum of 3600000 ms (one hour)"),
            ]
        );
        assert!(parse(
            "[daemon]\nfailure_detection_time_ms = 3600000\nstartup_quiet_ms = 3600000\n"
        )
        .is_ok());
    }
}
