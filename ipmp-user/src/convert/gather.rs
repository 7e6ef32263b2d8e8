//! The interfaces of the hostname files gathered into groups: a group's
//! data addresses, and its members with their test addresses.
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::hostname::{Addr, Interface, Logical};
use super::ifconfig::PlusFrom;
use super::{problem, ConvertProblem, Loc, Output};
use crate::config::{MAX_GROUP_NAME_LEN, MAX_IFNAME_LEN, PEER_SUFFIX};

pub(super) struct Group {
    pub(super) name: String,
    pub(super) comment: Vec<String>,
    pub(super) data: Vec<OutAddr>,
    /// IPv6 data addresses, from hostname6.IF files: address, prefix
    /// length, where it came from.
    pub(super) data6: Vec<(Ipv6Addr, u8, String)>,
    pub(super) members: Vec<Member>,
}

pub(super) struct Member {
    pub(super) interface: String,
    pub(super) comment: Vec<String>,
    pub(super) test: Option<OutAddr>,
    pub(super) standby: bool,
}

pub(super) struct OutAddr {
    pub(super) ip: Ipv4Addr,
    pub(super) prefix: u8,
    pub(super) comment: String,
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

/// The groups of the interfaces that are part of IPMP, with notes on the
/// others and on what the conversion interpreted.
pub(super) fn build_groups(interfaces: Vec<Interface>, out: &mut Output) -> Vec<Group> {
    let gathered = gather(&interfaces, out);
    // Everything about an interface that is part of IPMP is reported.
    for iface in interfaces.iter().filter(|i| i.in_ipmp()) {
        out.problems.extend(iface.problems.iter().cloned());
        out.notes.extend(iface.notes.iter().cloned());
    }
    for iface in interfaces.iter().filter(|i| !i.in_ipmp()) {
        out.notes.push(format!(
            "{}: not converted: it has no `group` and no `ipmp`, so it is not part of IPMP \
             (configure {} with the distribution's network configuration)",
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
            "netmasks: `netmask +` reads /etc/netmasks on Solaris, which ipmpctl convert does not \
             read, and an address without a netmask gets the netmask of its address class; so \
             these got the classful prefix: {}. If /etc/netmasks or the network says otherwise, \
             correct the prefix in the TOML (or write ADDRESS/N in the hostname file and convert \
             again)",
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
            "the member interfaces keep their Solaris names ({}): if this host names them \
             differently (see `ip link`), change `interface = ...` in the TOML",
            names.join(", ")
        ));
    }
    groups
}

/// The Solaris groups, in the order they are first named, with their
/// interfaces.
fn gather(interfaces: &[Interface], out: &mut Output) -> Vec<Gathered> {
    let mut gathered: Vec<Gathered> = Vec::new();
    for (index, iface) in interfaces.iter().enumerate() {
        let (name, loc) = match (&iface.ipmp, &iface.group) {
            (Some(_), Some((group, loc))) => (group.clone(), loc.clone()),
            (Some(loc), None) => (iface.name.clone(), loc.clone()),
            (None, Some((group, loc))) => (group.clone(), loc.clone()),
            // Not part of IPMP.
            (None, None) => continue,
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
    gathered
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
    let mut builder = Builder {
        g,
        name,
        out,
        classful,
        data: Vec::new(),
    };
    let comment = match g.ipmp {
        Some(index) => builder.ipmp_interface(&interfaces[index]),
        None => {
            let name = &builder.name;
            vec![
                format!("Classic IPMP group {name} (no IPMP interface on Solaris): ipmpd creates"),
                format!("the group interface {name}, and the data addresses stay on it instead"),
                "of moving between the members.".into(),
            ]
        }
    };
    let members: Vec<Member> = g
        .members
        .iter()
        .map(|&index| builder.member(&interfaces[index]))
        .collect();
    // An address refused already is reported once, not again as missing.
    let refused_before = g
        .ipmp
        .iter()
        .chain(&g.members)
        .any(|&i| !interfaces[i].problems.is_empty());
    builder.check(refused_before);
    builder.notes(&members);
    Group {
        name: builder.name,
        comment,
        data: builder.data,
        data6: Vec::new(),
        members,
    }
}

/// One group while its data addresses and members are collected.
struct Builder<'a> {
    g: &'a Gathered,
    /// The group's name: the IPMP interface's (new IPMP) or the Solaris
    /// group's (classic IPMP).
    name: String,
    out: &'a mut Output,
    /// The addresses that got a classful prefix, for one note on them all.
    classful: &'a mut Vec<String>,
    data: Vec<OutAddr>,
}

impl Builder<'_> {
    /// New IPMP: the IPMP interface's addresses are the data addresses.
    /// Returns the group's comment.
    fn ipmp_interface(&mut self, ipmp: &Interface) -> Vec<String> {
        let name = &self.name;
        let mut comment = vec![format!("New IPMP: the IPMP interface {name}.")];
        comment.extend(quoted_lines(ipmp));
        if self.g.solaris_name != *name {
            self.out.notes.push(format!(
                "the IPMP interface {name} is in group \"{}\" on Solaris; the group takes the \
                 interface's name, {name} (ipmpd gives a group and its group interface one name)",
                self.g.solaris_name
            ));
        }
        if let Some(loc) = &ipmp.standby {
            self.out.problems.push(problem(
                loc,
                Some("standby".into()),
                format!("{name} is an IPMP interface, which cannot be a standby"),
                "put `standby` in the hostname file of an underlying interface".into(),
            ));
        }
        for logical in ipmp.logicals.iter().filter(|l| l.addr.is_some()) {
            if logical.nofailover {
                let addr = logical.addr.as_ref().map(|a| &a.loc);
                self.out.problems.push(problem(
                    addr.unwrap_or(&self.g.loc),
                    Some("-failover".into()),
                    "an address of an IPMP interface cannot be a test address (Solaris refuses \
                     it too)"
                        .into(),
                    "move the test address to the hostname file of an underlying interface".into(),
                ));
                continue;
            }
            self.data
                .push(data_address(logical, self.out, self.classful));
        }
        comment
    }

    /// An underlying interface: its `-failover` address is its test
    /// address, the others are data addresses of the group.
    fn member(&mut self, iface: &Interface) -> Member {
        let name = &self.name;
        let mut test: Option<OutAddr> = None;
        for logical in iface.logicals.iter().filter(|l| l.addr.is_some()) {
            let Some(addr) = &logical.addr else {
                continue;
            };
            if !logical.nofailover {
                if self.g.ipmp.is_some() {
                    self.out.notes.push(format!(
                        "{}: {} is a data address on the underlying interface {}; Solaris moves \
                         it to the IPMP interface {name}, and it became a data address of group \
                         {name}",
                        addr.loc, addr.ip, iface.name
                    ));
                }
                self.data
                    .push(data_address(logical, self.out, self.classful));
                continue;
            }
            if test.is_some() {
                self.out.problems.push(problem(
                    &addr.loc,
                    Some(addr.written.clone()),
                    format!(
                        "{} has a second test address; ipmp probes from one IPv4 test address \
                         per member",
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
                self.classful
                    .push(format!("{}/{prefix} ({})", addr.ip, describe(addr)));
            }
            test = Some(OutAddr {
                ip: addr.ip,
                prefix,
                comment: notes.join("; "),
            });
        }
        Member {
            interface: iface.name.clone(),
            comment: quoted_lines(iface),
            test,
            standby: iface.standby.is_some(),
        }
    }

    /// A group needs its underlying interfaces and a data address.
    fn check(&mut self, refused_before: bool) {
        let (g, name) = (self.g, &self.name);
        if g.ipmp.is_some() && g.members.is_empty() {
            self.out.problems.push(problem(
                &g.loc,
                Some("ipmp".into()),
                format!(
                    "the IPMP interface {name} has no underlying interface (no hostname file \
                     says `group {}`)",
                    g.solaris_name
                ),
                "give the hostname files of its underlying interfaces too".into(),
            ));
        }
        if self.data.is_empty() && !refused_before {
            let fix = if g.ipmp.is_some() {
                format!("give the IPMP interface {name} an address in hostname.{name}")
            } else {
                format!(
                    "give the hostname file of the IPMP interface of group {} too (new IPMP), or \
                     give a member an address without -failover (classic IPMP)",
                    g.solaris_name
                )
            };
            self.out.problems.push(problem(
                &g.loc,
                None,
                format!("group {name} has no data address"),
                fix,
            ));
        }
    }

    /// What differs from Solaris: classic IPMP's data addresses stay on
    /// the group interface; members without a test address.
    fn notes(&mut self, members: &[Member]) {
        let name = &self.name;
        if self.g.ipmp.is_none() && !self.data.is_empty() {
            let addresses: Vec<String> = self.data.iter().map(|a| a.ip.to_string()).collect();
            let member_names: Vec<&str> = members.iter().map(|m| m.interface.as_str()).collect();
            self.out.notes.push(format!(
                "group {name} is classic IPMP (no IPMP interface): ipmpd creates the group \
                 interface {name}, and its data {} {} {} there instead of moving between {}",
                if addresses.len() == 1 {
                    "address"
                } else {
                    "addresses"
                },
                addresses.join(", "),
                if addresses.len() == 1 {
                    "stays"
                } else {
                    "stay"
                },
                member_names.join(", ")
            ));
        }
        let link_only: Vec<&str> = members
            .iter()
            .filter(|m| m.test.is_none())
            .map(|m| m.interface.as_str())
            .collect();
        if !members.is_empty() && link_only.len() == members.len() {
            self.out.notes.push(format!(
                "group {name} has no test address: failure detection is link-based only, as on \
                 Solaris"
            ));
        } else if !link_only.is_empty() {
            self.out.notes.push(format!(
                "{} in group {name} {} no test address: failure detection on {} is link-based \
                 only, as on Solaris",
                link_only.join(", "),
                if link_only.len() == 1 { "has" } else { "have" },
                if link_only.len() == 1 { "it" } else { "them" }
            ));
        }
    }
}

/// The group name becomes a Linux interface name.
fn check_group_name(g: &Gathered, name: &str, interfaces: &[Interface], out: &mut Output) {
    let bad_char = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
    let why = if name.chars().count() > MAX_GROUP_NAME_LEN {
        format!(
            "\"{name}\" is longer than {MAX_GROUP_NAME_LEN} characters, and it becomes the name of \
                the group interface on Linux (its peer \"{name}{PEER_SUFFIX}\" must fit Linux's \
                {MAX_IFNAME_LEN})"
        )
    } else if let Some(c) = bad_char {
        format!(
            "\"{name}\" has the character {c:?}, and it becomes the name of the group interface on \
                Linux (letters, digits, '_', '.' and '-' only)"
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
                "rename the IPMP interface (the file {}) to a name of at most {MAX_GROUP_NAME_LEN} \
                    characters of [A-Za-z0-9_.-], and convert again",
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
                    "rename the group to at most {MAX_GROUP_NAME_LEN} characters of [A-Za-z0-9_.-] \
                        in {} (`group NAME`), and convert again",
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
                "{} is deprecated but fails over (no -failover): a data address that is never a \
                    source address, which ipmp cannot express",
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;

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
            ["hostname.hme0:1: `group averylonggroupname`: \"averylonggroupname\" is longer than \
                13 characters, and it becomes the name of the group interface on Linux (its peer \
                \"averylonggroupname_p\" must fit Linux's 15); rename the group to at most 13 \
                characters of [A-Za-z0-9_.-] in hostname.hme0, hostname.hme1 (`group NAME`), and \
                convert again"]
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
            ["hostname.ipmp0:1: `ipmp`: the IPMP interface ipmp0 has no underlying interface (no \
                hostname file says `group ipmp0`); give the hostname files of its underlying \
                interfaces too"]
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
            [
                "hostname.IF: none of the hostname files configures IPMP (no `group`, no `ipmp`); \
                give the hostname files of the IPMP interfaces and of their members"
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
                "hostname.ipmp0:1: `deprecated`: 192.0.2.200 is deprecated but fails over (no \
                    -failover): a data address that is never a source address, which ipmp cannot \
                    express; remove `deprecated` to make it a data address, or add `-failover` \
                    to make it a test address",
                "hostname.eth0:1: `192.0.2.211/24`: eth0 has a second test address; ipmp probes \
                    from one IPv4 test address per member; keep one `-failover` address on the \
                    interface",
            ]
        );
    }
}
