//! Multicast memberships mirrored from the group interface onto the cast
//! member. Applications join groups on the group interface, but inbound
//! multicast arrives on the members, and the kernel accepts a multicast
//! datagram on an interface only if the group is joined there. So ipmpd
//! holds every group of the group interface on the cast member, and moves
//! them when the cast member changes: joining sends unsolicited IGMP / MLD
//! reports through the new member, which is how switches learn the move.
use std::{
    fmt, fs, io,
    net::{Ipv4Addr, Ipv6Addr},
};

use anyhow::{anyhow, Context, Result};
use ipmp_common::wire;
use socket2::{Domain, InterfaceIndexOrAddress, Socket, Type};

/// The multicast groups joined on an interface, sorted, without the ones
/// every interface joins by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

/// The groups joined on `group_if`, from /proc/net/igmp and /proc/net/igmp6
/// (which show ipmpd's own network namespace).
pub fn read(group_if: &str) -> Result<Memberships> {
    let igmp = fs::read_to_string("/proc/net/igmp").context("reading /proc/net/igmp")?;
    // Missing when IPv6 is disabled (ipv6.disable=1): no IPv6 groups.
    let igmp6 = match fs::read_to_string("/proc/net/igmp6") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        read => read.context("reading /proc/net/igmp6")?,
    };
    Ok(Memberships {
        v4: parse_igmp(&igmp, group_if),
        v6: parse_igmp6(&igmp6, group_if),
    })
}

/// The IPv4 groups joined on `ifname`, from the text of /proc/net/igmp: a
/// line per device (`ifindex\tname: count querier`), then one indented line
/// per group whose address is printed as a native-endian u32 (`010000E0`
/// is 224.0.0.1 on little-endian hosts). 224.0.0.1 (all hosts) is left out:
/// every interface joins it.
pub fn parse_igmp(text: &str, ifname: &str) -> Vec<Ipv4Addr> {
    let mut ours = false;
    let mut groups = Vec::new();
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            // A device line (or the header, whose index is not a number).
            // Names are padded to 10 characters and cannot contain ':'.
            ours = line.split_once('\t').is_some_and(|(index, rest)| {
                index.parse::<u32>().is_ok()
                    && rest.split(':').next().map(str::trim_end) == Some(ifname)
            });
        } else if ours {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if let Ok(raw) = u32::from_str_radix(hex, 16) {
                let group = Ipv4Addr::from(raw.to_ne_bytes());
                if group != wire::ALL_NODES_V4 {
                    groups.push(group);
                }
            }
        }
    }
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// The IPv6 groups joined on `ifname`, from the text of /proc/net/igmp6:
/// one line per group, `ifindex name address users flags timer`, the
/// address as 32 hex digits.
pub fn parse_igmp6(text: &str, ifname: &str) -> Vec<Ipv6Addr> {
    let mut groups: Vec<Ipv6Addr> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_index, name, hex) = (fields.next()?, fields.next()?, fields.next()?);
            if name != ifname || hex.len() != 32 {
                return None;
            }
            u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from)
        })
        .filter(|group| !joined_by_every_interface(group))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// All-nodes (interface- and link-local) and solicited-node groups
/// (ff02::1:ff00:0/104): the kernel joins them on every interface, and the
/// solicited-node ones belong to the group interface's own addresses.
fn joined_by_every_interface(group: &Ipv6Addr) -> bool {
    *group == wire::ALL_NODES_V6
        || *group == wire::INTERFACE_ALL_NODES_V6
        || group.octets()[..13] == wire::SOLICITED_NODE_PREFIX
}

/// What one [`HeldMemberships::follow`] did, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Groups joined on a member.
    pub joined: usize,
    /// Groups left on a (former) member.
    pub left: usize,
}

/// Multicast groups ipmpd holds on one member per family: the group
/// interface's groups on the cast member, and the solicited-node group of
/// each IPv6 data address on its bound member (so that neighbour
/// solicitations reach it through switches that snoop MLD).
///
/// They are held by UDP sockets that are never bound, so nothing is ever
/// delivered to them; closing one leaves its groups (and the kernel sends
/// the leaves). A socket holds at most `net.ipv4.igmp_max_memberships` (20
/// by default) IPv4 groups, so a family may need several.
#[derive(Default)]
pub struct HeldMemberships {
    v4: Option<Held<Ipv4Addr>>,
    v6: Option<Held<Ipv6Addr>>,
}

impl HeldMemberships {
    /// Holding nothing.
    pub fn new() -> HeldMemberships {
        HeldMemberships::default()
    }

    /// Holds `wanted` on the members with ifindexes `v4`, `v6` (`None`:
    /// hold nothing). A new member gets every group before the old one
    /// leaves them; an unchanged one joins and leaves the difference. A
    /// group that fails is not held, so the next call tries it again; the
    /// others are still joined.
    pub fn follow(
        &mut self,
        v4: Option<u32>,
        v6: Option<u32>,
        wanted: &Memberships,
    ) -> Result<Changes> {
        let mut changes = Changes::default();
        let mut errors = Vec::new();
        follow_family(&mut self.v4, v4, &wanted.v4, &mut changes, &mut errors);
        follow_family(&mut self.v6, v6, &wanted.v6, &mut changes, &mut errors);
        let mut errors = errors.into_iter();
        match (errors.next(), errors.len()) {
            (None, _) => Ok(changes),
            (Some(first), 0) => Err(first),
            (Some(first), more) => Err(first.context(format!(
                "{} multicast membership changes failed; the first",
                more + 1
            ))),
        }
    }
}

fn follow_family<A: Family>(
    held: &mut Option<Held<A>>,
    cast: Option<u32>,
    wanted: &[A],
    changes: &mut Changes,
    errors: &mut Vec<anyhow::Error>,
) {
    let Some(ifindex) = cast else {
        if let Some(old) = held.take() {
            changes.left += old.len();
        }
        return;
    };
    match held {
        Some(same) if same.ifindex == ifindex => {
            same.leave_unwanted(wanted, changes, errors);
            same.join_missing(wanted, changes, errors);
        }
        _ => {
            // Join on the new member first: no gap if the old one still works.
            let mut new = Held {
                ifindex,
                sockets: Vec::new(),
            };
            new.join_missing(wanted, changes, errors);
            if let Some(old) = held.replace(new) {
                changes.left += old.len();
            }
        }
    }
}

/// One family's memberships on one member.
struct Held<A> {
    ifindex: u32,
    sockets: Vec<Holder<A>>,
}

struct Holder<A> {
    socket: Socket,
    groups: Vec<A>,
}

impl<A: Family> Held<A> {
    fn len(&self) -> usize {
        self.sockets.iter().map(|h| h.groups.len()).sum()
    }

    fn holds(&self, group: &A) -> bool {
        self.sockets.iter().any(|h| h.groups.contains(group))
    }

    fn leave_unwanted(
        &mut self,
        wanted: &[A],
        changes: &mut Changes,
        errors: &mut Vec<anyhow::Error>,
    ) {
        let ifindex = self.ifindex;
        for holder in &mut self.sockets {
            holder.groups.retain(|group| {
                if wanted.contains(group) {
                    return true;
                }
                match A::leave(&holder.socket, group, ifindex) {
                    // EADDRNOTAVAIL: not joined (any more): nothing to leave.
                    Err(e) if e.raw_os_error() != Some(libc::EADDRNOTAVAIL) => {
                        errors.push(anyhow!(e).context(format!(
                            "leaving multicast group {group} on interface index {ifindex}: \
                             it stays joined there, and ipmpd tries again \
                             at the next change"
                        )));
                        true
                    }
                    _ => {
                        changes.left += 1;
                        false
                    }
                }
            });
        }
        self.sockets.retain(|h| !h.groups.is_empty());
    }

    fn join_missing(
        &mut self,
        wanted: &[A],
        changes: &mut Changes,
        errors: &mut Vec<anyhow::Error>,
    ) {
        for group in wanted {
            if self.holds(group) {
                continue;
            }
            match self.join(group) {
                Ok(()) => changes.joined += 1,
                Err(e) => errors.push(e),
            }
        }
    }

    /// Joins on the first socket with room, else on a new one.
    fn join(&mut self, group: &A) -> Result<()> {
        let ifindex = self.ifindex;
        for holder in &mut self.sockets {
            match A::join(&holder.socket, group, ifindex) {
                Err(e) if full(&e) => continue,
                Err(e) if e.raw_os_error() != Some(libc::EADDRINUSE) => {
                    return Err(join_error(e, group, ifindex))
                }
                // EADDRINUSE: this socket holds it already.
                _ => {
                    holder.groups.push(*group);
                    return Ok(());
                }
            }
        }
        let socket = A::open().context(
            "opening a socket to hold multicast memberships: inbound multicast is not \
             received through the member until one opens (check the open file limit)",
        )?;
        A::join(&socket, group, ifindex).map_err(|e| join_error(e, group, ifindex))?;
        self.sockets.push(Holder {
            socket,
            groups: vec![*group],
        });
        Ok(())
    }
}

/// The socket holds as many groups as it may: `net.ipv4.igmp_max_memberships`
/// (ENOBUFS) or `net.core.optmem_max` (ENOBUFS, ENOMEM for IPv6).
fn full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM))
}

fn join_error<A: Family>(e: io::Error, group: &A, ifindex: u32) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::ENODEV) => "the interface is gone; its successor gets the group",
        Some(libc::ENOBUFS | libc::ENOMEM) => {
            "check net.ipv4.igmp_max_memberships (IPv4) and raise net.core.optmem_max"
        }
        _ => "ipmpd tries again at the next change",
    };
    anyhow!(e).context(format!(
        "joining multicast group {group} on interface index {ifindex}: \
         datagrams to it are not received until it is joined; {hint}"
    ))
}

/// What differs between IPv4 and IPv6 memberships.
trait Family: Copy + PartialEq + fmt::Display {
    fn open() -> io::Result<Socket>;
    fn join(socket: &Socket, group: &Self, ifindex: u32) -> io::Result<()>;
    fn leave(socket: &Socket, group: &Self, ifindex: u32) -> io::Result<()>;
}

impl Family for Ipv4Addr {
    fn open() -> io::Result<Socket> {
        let socket = holder_socket(Domain::IPV4)?;
        socket.set_multicast_all_v4(false)?;
        Ok(socket)
    }

    fn join(socket: &Socket, group: &Self, ifindex: u32) -> io::Result<()> {
        socket.join_multicast_v4_n(group, &InterfaceIndexOrAddress::Index(ifindex))
    }

    fn leave(socket: &Socket, group: &Self, ifindex: u32) -> io::Result<()> {
        socket.leave_multicast_v4_n(group, &InterfaceIndexOrAddress::Index(ifindex))
    }
}

impl Family for Ipv6Addr {
    fn open() -> io::Result<Socket> {
        let socket = holder_socket(Domain::IPV6)?;
        socket.set_multicast_all_v6(false)?;
        Ok(socket)
    }

    fn join(socket: &Socket, group: &Self, ifindex: u32) -> io::Result<()> {
        socket.join_multicast_v6(group, ifindex)
    }

    fn leave(socket: &Socket, group: &Self, ifindex: u32) -> io::Result<()> {
        socket.leave_multicast_v6(group, ifindex)
    }
}

/// A UDP socket that only holds memberships: never bound, so never
/// delivered anything, and with `*_MULTICAST_ALL` off so that it would not
/// get other sockets' groups even if it were.
fn holder_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::DGRAM, None)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/net/igmp on x86_64 (6.18): production01 is a longer name with
    /// production0 as its prefix (and fills the padding up to the colon).
    const IGMP: &str = "\
Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
1\tlo        :     1      V3
\t\t\t\t010000E0     1 0:00000000\t\t0
2\tproduction01:     2      V3
\t\t\t\t050403EF     1 0:00000000\t\t0
\t\t\t\t010000E0     1 0:00000000\t\t0
3\tproduction0:     3      V3
\t\t\t\tFB0000E0     1 0:00000000\t\t0
\t\t\t\t030201EF     2 1:0000000A\t\t1
\t\t\t\t010000E0     1 0:00000000\t\t0
4\teth0      :     1      V2
\t\t\t\t010000E0     1 0:00000000\t\t0
";

    /// /proc/net/igmp6 from the same namespace.
    const IGMP6: &str = "\
1    lo              ff020000000000000000000000000001     1 0000000C 0
1    lo              ff010000000000000000000000000001     1 00000008 0
2    production01    ff0200000000000000000001ffbf37ff     1 00000004 0
2    production01    ff050000000000000000000000010005     1 00000004 0
2    production01    ff020000000000000000000000000001     1 0000000C 0
2    production01    ff010000000000000000000000000001     1 00000008 0
3    production0     ff050000000000000000000000010003     1 00000004 0
3    production0     ff0200000000000000000001ff000001     1 00000004 0
3    production0     ff0200000000000000000001ff489201     1 00000004 0
3    production0     ff020000000000000000000000000002     1 00000004 0
3    production0     ff020000000000000000000000000001     1 0000000C 0
3    production0     ff010000000000000000000000000001     1 00000008 0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn igmp_groups_of_one_device_in_host_byte_order() {
        assert_eq!(
            parse_igmp(IGMP, "production0"),
            [Ipv4Addr::new(224, 0, 0, 251), Ipv4Addr::new(239, 1, 2, 3)]
        );
        assert_eq!(
            parse_igmp(IGMP, "production01"),
            [Ipv4Addr::new(239, 3, 4, 5)]
        );
    }

    #[test]
    fn igmp_skips_all_hosts_and_unknown_devices() {
        assert!(parse_igmp(IGMP, "lo").is_empty());
        assert!(parse_igmp(IGMP, "eth0").is_empty());
        assert!(parse_igmp(IGMP, "production").is_empty());
        assert!(parse_igmp(IGMP, "Device").is_empty());
        assert!(parse_igmp("", "production0").is_empty());
    }

    #[test]
    fn igmp6_groups_of_one_device() {
        assert_eq!(
            parse_igmp6(IGMP6, "production0"),
            [
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2),
                Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3),
            ]
        );
        assert_eq!(
            parse_igmp6(IGMP6, "production01"),
            [Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 5)]
        );
    }

    #[test]
    fn igmp6_skips_all_nodes_and_solicited_node_groups() {
        assert!(parse_igmp6(IGMP6, "lo").is_empty());
        assert!(parse_igmp6(IGMP6, "production").is_empty());
        assert!(joined_by_every_interface(
            &"ff02::1:ff00:0".parse().unwrap()
        ));
        assert!(joined_by_every_interface(
            &"ff02::1:ffff:ffff".parse().unwrap()
        ));
        assert!(!joined_by_every_interface(
            &"ff02::1:fe00:1".parse().unwrap()
        ));
        assert!(!joined_by_every_interface(&"ff05::1".parse().unwrap()));
        assert!(!joined_by_every_interface(&"ff02::2".parse().unwrap()));
    }

    #[test]
    fn following_nothing_holds_nothing() {
        let mut held = HeldMemberships::new();
        let wanted = Memberships {
            v4: vec![Ipv4Addr::new(239, 1, 2, 3)],
            v6: vec![],
        };
        assert_eq!(
            held.follow(None, None, &wanted).unwrap(),
            Changes::default()
        );
    }
}
