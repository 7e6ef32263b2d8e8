//! What the egress program needs to know of a packet: where it goes (one
//! member by flow, or the cast member) and, for unicast, its flow hash.
use ipmp_common::{
    address_words,
    flow_hash::{flow_hash_v4, flow_hash_v6},
    onlink,
    wire::{
        link_local_v6, mac_is_group, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_SCTP, IPPROTO_TCP,
        IPPROTO_UDP, IPV4_FRAGMENT_MASK, IPV6_DEST_OPTS, IPV6_HLEN, IPV6_HOP_BY_HOP, IPV6_ROUTING,
    },
    GroupConfig,
};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};

use crate::parse::Frame;

/// IPv6 extension headers walked before giving up on finding the ports.
const MAX_IPV6_EXT_HEADERS: usize = 4;

pub enum Parsed {
    /// Unicast IP: the flow hash, and the next hop if it is known here.
    Flow(u32, NextHop),
    /// Multicast destination, by family: the kernel wrote its group MAC.
    Cast(Family),
    /// IPv4 broadcast: the destination MAC must be set to all-ones.
    Broadcast,
    NotIp,
    /// Headers cut short: the packet may need pulling into linear data.
    Truncated,
}

/// Where a unicast packet goes next on the member's link.
#[derive(Clone, Copy)]
pub enum NextHop {
    /// The destination itself, on-link, its bytes as they sit in the
    /// packet. Held in words, not byte arrays: the enum is moved through
    /// the stack, and a byte array's is moved a byte at a time.
    V4(u32),
    V6([u32; 4]),
    /// Whatever the member's routing table says (the kernel looks it up).
    Route,
}

#[derive(Clone, Copy)]
pub enum Family {
    V4,
    V6,
}

/// Classifies an Ethernet frame and hashes its flow key (see
/// `ipmp_common::flow_hash`), by the group's settings (its subnet
/// broadcasts and on-link subnets).
#[inline(always)]
pub fn classify(frame: Frame, group: &GroupConfig) -> Parsed {
    let Ok(eth) = frame.header::<EthHdr>(0) else {
        return Parsed::Truncated;
    };
    let cast = mac_is_group(&eth.dst_addr);
    let parsed = match u16::from_be(eth.ether_type) {
        ETH_P_IP if cast => Ok(Parsed::Cast(Family::V4)),
        ETH_P_IP => classify_v4(frame, group),
        ETH_P_IPV6 if cast => Ok(Parsed::Cast(Family::V6)),
        ETH_P_IPV6 => classify_v6(frame, group),
        _ => Ok(Parsed::NotIp),
    };
    parsed.unwrap_or(Parsed::Truncated)
}

#[inline(always)]
fn classify_v4(frame: Frame, group: &GroupConfig) -> Result<Parsed, ()> {
    let ip = frame.header::<Ipv4Hdr>(ETH_HLEN)?;
    let (src, dst) = (
        u32::from_ne_bytes(ip.src_addr),
        u32::from_ne_bytes(ip.dst_addr),
    );
    // Subnet broadcasts are of prefixes up to /30 (ipmp-common's
    // `GroupConfig::broadcast_v4`), so their two lowest bits are set: one
    // test spares most unicast packets the walk of the list.
    let may_be_subnet_broadcast = ip.dst_addr[3] & 3 == 3;
    if dst == u32::MAX || (may_be_subnet_broadcast && group.broadcast_v4.contains(&dst)) {
        return Ok(Parsed::Broadcast);
    }
    // Fragments of one datagram hash on L3 only, so they stay together.
    let fragment = u16::from_be_bytes(ip.frags) & IPV4_FRAGMENT_MASK != 0;
    let l4 = ETH_HLEN + ((ip.vihl & 0x0f) as usize) * 4;
    let ports = ports(frame, ip.proto, l4, fragment)?;
    let next_hop = if onlink(&group.onlink_v4, address_words(&ip.dst_addr)) {
        NextHop::V4(dst)
    } else {
        NextHop::Route
    };
    Ok(Parsed::Flow(
        flow_hash_v4(src, dst, ip.proto, ports),
        next_hop,
    ))
}

#[inline(always)]
fn classify_v6(frame: Frame, group: &GroupConfig) -> Result<Parsed, ()> {
    let ip = frame.header::<Ipv6Hdr>(ETH_HLEN)?;
    let mut next = ip.next_hdr;
    let mut off = ETH_HLEN + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let [header, length] = frame.read::<[u8; 2]>(off)?;
                next = header;
                off += (length as usize + 1) * 8;
            }
            _ => break,
        }
    }
    // A fragment header (44) ends the walk: fragments hash on L3.
    let ports = ports(frame, next, off, false)?;
    let dst = address_words(&ip.dst_addr);
    let hash = flow_hash_v6(address_words(&ip.src_addr), dst, next, ports);
    // Link-local destinations are on every link.
    let next_hop = if link_local_v6(&ip.dst_addr) || onlink(&group.onlink_v6, dst) {
        // SAFETY: plain words as plain words.
        NextHop::V6(unsafe { core::mem::transmute::<[u64; 2], [u32; 4]>(dst) })
    } else {
        NextHop::Route
    };
    Ok(Parsed::Flow(hash, next_hop))
}

/// The 4 bytes of TCP/UDP/SCTP ports at `l4`, 0 for other protocols and
/// fragments; `Err` when the packet is cut short before them.
#[inline(always)]
fn ports(frame: Frame, proto: u8, l4: usize, fragment: bool) -> Result<u32, ()> {
    if fragment || !matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
        return Ok(0);
    }
    frame.read::<u32>(l4)
}
