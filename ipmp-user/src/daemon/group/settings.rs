//! Pure decisions on what the group writes to the kernel: its dataplane
//! settings, a member's XDP attach mode, the group interface's MTU, the
//! solicited-node groups to hold, and the words for the kernel's verdicts.
use std::net::{IpAddr, Ipv6Addr};

use aya::programs::XdpMode as KernelXdpMode;
use ipmp_common::{wire, OnLink, MAX_BROADCASTS, MAX_ONLINK};
use ipnet::{IpNet, Ipv4Net};
use tracing::warn;

use crate::config::{GroupConfig, XdpMode};

/// The group's dataplane settings from its configuration: the IPv4 data
/// subnets' broadcast addresses (network order, as many as the dataplane
/// holds), echo answering, and the secret probe key. The cast member is
/// the policy's to set.
pub(super) fn dataplane_settings(
    config: &GroupConfig,
    probe_key: [u64; 2],
) -> ipmp_common::GroupConfig {
    let v4: Vec<Ipv4Net> = config
        .data_addresses
        .iter()
        .filter_map(|a| match a {
            IpNet::V4(v4) => Some(*v4),
            IpNet::V6(_) => None,
        })
        .collect();
    let mut broadcasts: Vec<u32> = v4
        .iter()
        .filter(|a| a.prefix_len() < 31)
        .map(|a| u32::from_ne_bytes(a.broadcast().octets()))
        .collect();
    broadcasts.sort_unstable();
    broadcasts.dedup();
    if broadcasts.len() > MAX_BROADCASTS {
        warn!(
            "Group {} has data addresses in more than {MAX_BROADCASTS} IPv4 subnets: broadcasts to \
             the further subnets leave as unicast",
            config.name
        );
    }
    let mut settings = ipmp_common::GroupConfig {
        probe_key,
        answer_echo: config.answer_echo.into(),
        ..Default::default()
    };
    for (slot, b) in settings.broadcast_v4.iter_mut().zip(broadcasts) {
        *slot = b;
    }
    settings
}

/// The data subnets the egress program may treat as on-link, per family:
/// each subnet of a data address (not a host route), unless a route
/// through the group interface other than its own connected route lies
/// within it (a gateway for part of it, say): then the kernel's route
/// lookup decides, as for every other destination. `routes` are the group
/// interface's routes, each with whether it goes through a gateway.
pub(super) fn onlink_subnets(
    data_addresses: &[IpNet],
    routes: &[(IpNet, bool)],
) -> ([OnLink; MAX_ONLINK], [OnLink; MAX_ONLINK]) {
    let mut subnets: Vec<IpNet> = data_addresses
        .iter()
        .map(IpNet::trunc)
        .filter(|s| s.prefix_len() < s.max_prefix_len())
        .collect();
    subnets.sort_unstable();
    subnets.dedup();
    subnets.retain(|s| {
        !routes.iter().any(|&(dst, via_gateway)| {
            let connected = dst == *s && !via_gateway;
            !connected && dst.prefix_len() >= s.prefix_len() && s.contains(&dst.network())
        })
    });
    let (mut v4, mut v6) = (
        [OnLink::default(); MAX_ONLINK],
        [OnLink::default(); MAX_ONLINK],
    );
    let (mut n4, mut n6) = (0, 0);
    for s in subnets {
        let (list, n, octets) = match s.network() {
            IpAddr::V4(a) => (&mut v4, &mut n4, a.octets().to_vec()),
            IpAddr::V6(a) => (&mut v6, &mut n6, a.octets().to_vec()),
        };
        // More subnets than room: the rest take the route lookup.
        if *n < MAX_ONLINK {
            list[*n] = OnLink::new(&octets, s.prefix_len());
            *n += 1;
        }
    }
    (v4, v6)
}

/// The settings `configured` with `cast` (a slot, or `NO_MEMBER`) as the
/// cast member of both families.
pub(super) fn with_cast(
    configured: &ipmp_common::GroupConfig,
    cast: u32,
) -> ipmp_common::GroupConfig {
    ipmp_common::GroupConfig {
        cast_slot_v4: cast,
        cast_slot_v6: cast,
        ..*configured
    }
}

/// The XDP attach mode for a member (`veth`, and whether its veth peer
/// runs a native XDP program), and why.
pub(super) fn xdp_mode(
    setting: XdpMode,
    veth: bool,
    peer_native: bool,
) -> (KernelXdpMode, &'static str) {
    match setting {
        XdpMode::Native => (KernelXdpMode::Driver, "native mode (configured)"),
        XdpMode::Generic => (KernelXdpMode::Skb, "generic mode (configured)"),
        // The kernel drops XDP_TX frames sent into a veth peer that runs no
        // native XDP program; generic mode delivers them.
        XdpMode::Auto if veth && peer_native => (
            KernelXdpMode::Driver,
            "native mode (auto: the veth peer runs a native XDP program)",
        ),
        XdpMode::Auto if veth => (
            KernelXdpMode::Skb,
            "generic mode (auto: veth member whose peer runs no native XDP program)",
        ),
        XdpMode::Auto => (KernelXdpMode::Default, "the driver's mode (auto)"),
    }
}

/// The group interface's MTU to set, if it must change from `current`:
/// as on Solaris, the smallest of its present members' MTUs.
pub(super) fn mtu_change(current: u32, members: impl Iterator<Item = u32>) -> Option<u32> {
    members.min().filter(|&m| m != current)
}

/// The solicited-node multicast group of `address` (RFC 4291 2.7.1), to
/// which neighbour solicitations for it are sent.
pub(super) fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(wire::solicited_node(&address.octets()))
}

/// The kernel's reasons for taking a member out, in words.
pub(super) fn taken_out_reason(why: u32) -> &'static str {
    use ipmp_common::{TAKEN_OUT_ADMIN_DOWN, TAKEN_OUT_GONE, TAKEN_OUT_NO_CARRIER};
    match why {
        TAKEN_OUT_NO_CARRIER => "no carrier",
        TAKEN_OUT_ADMIN_DOWN => "administratively down",
        TAKEN_OUT_GONE => "device gone",
        _ => "link down",
    }
}

/// ipmpstat's `h` for each member (by its hardware address, `None` while
/// missing): another member has the same hardware address.
pub(super) fn duplicate_hardware(macs: &[Option<[u8; 6]>]) -> Vec<bool> {
    macs.iter()
        .map(|mac| mac.is_some() && macs.iter().filter(|other| *other == mac).count() > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipmp_common::{TAKEN_OUT_GONE, TAKEN_OUT_NO_CARRIER};

    fn group(addresses: &[&str], answer_echo: bool) -> GroupConfig {
        GroupConfig {
            name: "ipmp0".into(),
            data_addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            targets: Vec::new(),
            failure_detection_time_ms: None,
            answer_echo,
            members: Vec::new(),
        }
    }

    fn broadcast(a: &str) -> u32 {
        u32::from_ne_bytes(a.parse::<std::net::Ipv4Addr>().unwrap().octets())
    }

    #[test]
    fn data_subnets_are_onlink_unless_a_route_covers_part_of_them() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let data = [
            net("192.0.2.200/24"),
            net("192.0.2.201/24"),
            net("198.51.100.7/25"),
            net("203.0.113.9/32"),
            net("2001:db8::200/64"),
        ];
        let connected = [
            (net("192.0.2.0/24"), false),
            (net("198.51.100.0/25"), false),
            (net("0.0.0.0/0"), true),
            (net("2001:db8::/64"), false),
        ];
        let (v4, v6) = onlink_subnets(&data, &connected);
        assert_eq!(v4[0], OnLink::new(&[192, 0, 2, 0], 24));
        assert_eq!(v4[1], OnLink::new(&[198, 51, 100, 0], 25));
        assert_eq!(v4[2], OnLink::default(), "a host route is no subnet");
        let prefix: Ipv6Addr = "2001:db8::".parse().unwrap();
        assert_eq!(v6[0], OnLink::new(&prefix.octets(), 64));
        // A gateway for part of a subnet, or for the subnet itself, leaves
        // it to the kernel's lookup.
        let mut routed = connected.to_vec();
        routed.push((net("192.0.2.128/25"), true));
        routed.push((net("198.51.100.0/25"), true));
        let (v4, _) = onlink_subnets(&data, &routed);
        assert_eq!(v4[0], OnLink::default());
    }

    #[test]
    fn settings_hold_each_ipv4_subnets_broadcast_once() {
        let config = group(
            &[
                "192.0.2.1/24",
                "192.0.2.2/24",
                "198.51.100.1/25",
                "203.0.113.1/31",
                "203.0.113.9/32",
                "2001:db8::1/64",
            ],
            true,
        );
        let s = dataplane_settings(&config, [7, 9]);
        let mut want = [broadcast("192.0.2.255"), broadcast("198.51.100.127")];
        want.sort_unstable();
        assert_eq!(&s.broadcast_v4[..2], &want[..]);
        assert!(s.broadcast_v4[2..].iter().all(|&b| b == 0));
        assert_eq!(s.probe_key, [7, 9]);
        assert_eq!(s.answer_echo, 1);
        assert_eq!(
            dataplane_settings(&group(&[], false), [0, 0]).answer_echo,
            0
        );
    }

    #[test]
    fn broadcasts_beyond_the_dataplanes_room_are_left_out() {
        let addresses: Vec<String> = (0..MAX_BROADCASTS + 2)
            .map(|i| format!("10.{i}.0.1/16"))
            .collect();
        let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let s = dataplane_settings(&group(&refs, true), [0, 0]);
        assert!(s.broadcast_v4.iter().all(|&b| b != 0));
        assert_eq!(s.broadcast_v4.len(), MAX_BROADCASTS);
    }

    #[test]
    fn the_cast_member_is_set_for_both_families_and_nothing_else_changes() {
        let configured = dataplane_settings(&group(&["192.0.2.1/24"], true), [1, 2]);
        let s = with_cast(&configured, 3);
        assert_eq!((s.cast_slot_v4, s.cast_slot_v6), (3, 3));
        assert_eq!(s.broadcast_v4, configured.broadcast_v4);
        assert_eq!(s.probe_key, configured.probe_key);
    }

    #[test]
    fn auto_mode_is_generic_on_a_veth_unless_its_peer_runs_native_xdp() {
        assert_eq!(xdp_mode(XdpMode::Auto, true, false).0, KernelXdpMode::Skb);
        assert_eq!(xdp_mode(XdpMode::Auto, true, true).0, KernelXdpMode::Driver);
        assert_eq!(
            xdp_mode(XdpMode::Auto, false, false).0,
            KernelXdpMode::Default
        );
        // A configured mode is taken as it is.
        assert_eq!(
            xdp_mode(XdpMode::Native, true, false).0,
            KernelXdpMode::Driver
        );
        assert_eq!(
            xdp_mode(XdpMode::Generic, false, true).0,
            KernelXdpMode::Skb
        );
        assert_eq!(
            xdp_mode(XdpMode::Generic, false, true).1,
            "generic mode (configured)"
        );
    }

    #[test]
    fn the_group_mtu_is_the_smallest_members_and_changes_only_when_it_differs() {
        assert_eq!(mtu_change(0, [1500, 9000, 1400].into_iter()), Some(1400));
        assert_eq!(mtu_change(1400, [1500, 1400].into_iter()), None);
        assert_eq!(mtu_change(1500, std::iter::empty()), None);
    }

    #[test]
    fn the_kernels_reasons_have_words() {
        assert_eq!(taken_out_reason(TAKEN_OUT_NO_CARRIER), "no carrier");
        assert_eq!(taken_out_reason(TAKEN_OUT_GONE), "device gone");
        assert_eq!(taken_out_reason(0xdead), "link down");
    }

    #[test]
    fn only_present_members_sharing_a_hardware_address_are_flagged() {
        let (a, b) = (Some([2, 0, 0, 0, 0, 1]), Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(
            duplicate_hardware(&[a, b, a, None, None]),
            vec![true, false, true, false, false]
        );
    }
}
