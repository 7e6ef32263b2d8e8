//! Protocol facts, each written once (as illumos in.mpathd's `mpd_defs.h`
//! holds its constants): the numbers and addresses of Ethernet, ARP, IPv4,
//! IPv6, ICMP, ICMPv6 and neighbour discovery that the kernel programs read
//! and ipmpd writes. Names follow the C headers a reader knows
//! (`<linux/if_ether.h>`, `<netinet/in.h>`, `<netinet/icmp6.h>`).
//!
//! Numbers are in host order; the frame carries them big-endian
//! (`to_be_bytes` where a header field is a byte array).
use core::net::{Ipv4Addr, Ipv6Addr};

// Ethernet (IEEE 802.3).

/// Bytes of a MAC address.
pub const ETH_ALEN: usize = 6;
/// Bytes of an Ethernet header: destination, source, EtherType.
pub const ETH_HLEN: usize = 14;
/// The broadcast MAC.
pub const BROADCAST_MAC: [u8; ETH_ALEN] = [0xff; ETH_ALEN];

/// EtherTypes.
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad and the older QinQ tags: the frame belongs to a VLAN.
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_P_QINQ1: u16 = 0x9100;

/// A group MAC (multicast or broadcast): the I/G bit of the first byte.
/// Never the source of a frame.
#[inline(always)]
pub const fn mac_is_group(mac: &[u8; ETH_ALEN]) -> bool {
    mac[0] & 1 != 0
}

// ARP over Ethernet for IPv4 (RFC 826).

/// Hardware type Ethernet.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPOP_REQUEST: u16 = 1;
pub const ARPOP_REPLY: u16 = 2;
/// Bytes of an IPv4 address (the ARP protocol address length).
pub const IPV4_ALEN: usize = 4;
/// Bytes of an Ethernet ARP message for IPv4.
pub const ARP_ETH_IPV4_LEN: usize = 28;

// IP protocol numbers (the IPv4 protocol and IPv6 next header).

/// Address families (`bpf_redirect_neigh`'s next hop names one).
pub const AF_INET: u32 = 2;
pub const AF_INET6: u32 = 10;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_IGMP: u8 = 2;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;

// IPv4 (RFC 791).

/// Bytes of an IPv4 header without options.
pub const IPV4_HLEN: usize = 20;
/// Version 4, header length 5 words: an IPv4 header without options.
pub const IPV4_VIHL_PLAIN: u8 = 0x45;
/// The fragment offset and more-fragments bits of the flags field: set
/// in every fragment of a datagram.
pub const IPV4_FRAGMENT_MASK: u16 = 0x3fff;
/// All hosts (224.0.0.1) and all routers (224.0.0.2) of the link.
pub const ALL_NODES_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub const ALL_ROUTERS_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);

// IPv6 (RFC 8200).

/// Bytes of the IPv6 header.
pub const IPV6_HLEN: usize = 40;
/// Extension headers that may come before the upper layer.
pub const IPV6_HOP_BY_HOP: u8 = 0;
pub const IPV6_ROUTING: u8 = 43;
pub const IPV6_FRAGMENT: u8 = 44;
pub const IPV6_DEST_OPTS: u8 = 60;
/// All nodes and all routers, link-local scope (ff02::1, ff02::2), and all
/// nodes of the interface itself (ff01::1).
pub const ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_ROUTERS_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
pub const INTERFACE_ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff01, 0, 0, 0, 0, 0, 0, 1);
/// The solicited-node groups, ff02::1:ff00:0/104 (RFC 4291 2.7.1): an
/// address's group is this prefix and its low 24 bits.
pub const SOLICITED_NODE_PREFIX: [u8; 13] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];

/// The solicited-node group of `address`.
#[inline(always)]
pub const fn solicited_node(address: &[u8; 16]) -> [u8; 16] {
    let p = SOLICITED_NODE_PREFIX;
    [
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        p[10],
        p[11],
        p[12],
        address[13],
        address[14],
        address[15],
    ]
}

/// The MAC an IPv6 multicast `group` is sent to: 33:33 and the group's low
/// 32 bits (RFC 2464 7).
#[inline(always)]
pub const fn multicast_mac_v6(group: &[u8; 16]) -> [u8; ETH_ALEN] {
    [0x33, 0x33, group[12], group[13], group[14], group[15]]
}

/// The MAC of all nodes (33:33:00:00:00:01).
pub const ALL_NODES_MAC: [u8; ETH_ALEN] = multicast_mac_v6(&ALL_NODES_V6.octets());

/// Whether `address` is an IPv6 link-local unicast address (fe80::/10).
#[inline(always)]
pub const fn link_local_v6(address: &[u8; 16]) -> bool {
    address[0] == 0xfe && address[1] & 0xc0 == 0x80
}

// ICMP (RFC 792) and ICMPv6 (RFC 4443).

pub const ICMP_ECHOREPLY: u8 = 0;
pub const ICMP_ECHO: u8 = 8;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;
/// Bytes of an echo message's header: type, code, checksum, identifier,
/// sequence number (the same in ICMP and ICMPv6).
pub const ICMP_ECHO_HLEN: usize = 8;

// Neighbour discovery (RFC 4861).

pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
pub const ND_NEIGHBOR_ADVERT: u8 = 136;
/// The hop limit of every neighbour discovery message: only one from the
/// link itself counts (RFC 4861 7.1.1).
pub const ND_HOP_LIMIT: u8 = 255;
/// Bytes of a neighbour solicitation or advertisement without options:
/// type, code, checksum, flags and reserved, target address.
pub const ND_NS_LEN: usize = 24;
/// Advertisement flags, in the first byte after the checksum.
pub const ND_NA_FLAG_SOLICITED: u8 = 0x40;
pub const ND_NA_FLAG_OVERRIDE: u8 = 0x20;
/// Option types.
pub const ND_OPT_SOURCE_LINKADDR: u8 = 1;
pub const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// Bytes of a link-layer address option for Ethernet (one 8-byte unit).
pub const ND_OPT_LINKADDR_LEN: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_group_and_macs() {
        let a: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        let group = solicited_node(&a.octets());
        assert_eq!(
            Ipv6Addr::from(group),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac_v6(&group),
            [0x33, 0x33, 0xff, 0x45, 0x67, 0x89]
        );
        assert_eq!(ALL_NODES_MAC, [0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn link_local_is_fe80_slash_10() {
        for (a, want) in [
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", false),
            ("2001:db8::1", false),
        ] {
            let a: Ipv6Addr = a.parse().unwrap();
            assert_eq!(link_local_v6(&a.octets()), want, "{a}");
            assert_eq!(a.is_unicast_link_local(), want, "{a}");
        }
    }
}
