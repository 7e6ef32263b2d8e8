//! What the egress program needs to know of a packet: where it goes (one
//! member by flow, or the cast member) and, for unicast, its flow hash.
use ipmp_common::{
    flow_hash::{flow_hash_v4, flow_hash_v6},
    MAX_BROADCASTS,
};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
};

use crate::parse::ptr_at;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_DEST_OPTS: u8 = 60;
/// IPv6 extension headers walked before giving up on finding the ports.
const MAX_IPV6_EXT_HEADERS: usize = 4;

pub enum Parsed {
    /// Unicast IP: the flow hash.
    Flow(u32),
    /// Multicast destination, by family: the kernel wrote its group MAC.
    Cast(Family),
    /// IPv4 broadcast: the destination MAC must be set to all-ones.
    Broadcast,
    NotIp,
    /// Headers cut short: the packet may need pulling into linear data.
    Truncated,
}

#[derive(Clone, Copy)]
pub enum Family {
    V4,
    V6,
}

/// Classifies an Ethernet frame and hashes its flow key (see
/// `ipmp_common::flow_hash`). `broadcasts` are the group's IPv4 subnet
/// broadcast addresses.
#[inline(always)]
pub fn classify(start: usize, end: usize, broadcasts: &[u32; MAX_BROADCASTS]) -> Parsed {
    let Some(eth) = ptr_at::<EthHdr>(start, end, 0) else {
        return Parsed::Truncated;
    };
    // SAFETY: bounds checked by ptr_at.
    let eth = unsafe { &*eth };
    let cast = eth.dst_addr[0] & 1 != 0;
    match eth.ether_type() {
        Ok(EtherType::Ipv4) if cast => Parsed::Cast(Family::V4),
        Ok(EtherType::Ipv4) => classify_v4(start, end, broadcasts),
        Ok(EtherType::Ipv6) if cast => Parsed::Cast(Family::V6),
        Ok(EtherType::Ipv6) => classify_v6(start, end),
        _ => Parsed::NotIp,
    }
}

#[inline(always)]
fn classify_v4(start: usize, end: usize, broadcasts: &[u32; MAX_BROADCASTS]) -> Parsed {
    let Some(ip) = ptr_at::<Ipv4Hdr>(start, end, EthHdr::LEN) else {
        return Parsed::Truncated;
    };
    // SAFETY: bounds checked by ptr_at.
    let ip = unsafe { &*ip };
    let (src, dst) = (
        u32::from_ne_bytes(ip.src_addr),
        u32::from_ne_bytes(ip.dst_addr),
    );
    // Subnet broadcasts are of prefixes up to /30 (ipmp-common's
    // `GroupConfig::broadcast_v4`), so their two lowest bits are set: one
    // test spares most unicast packets the walk of the list.
    let may_be_subnet_broadcast = ip.dst_addr[3] & 3 == 3;
    if dst == u32::MAX || (may_be_subnet_broadcast && broadcasts.contains(&dst)) {
        return Parsed::Broadcast;
    }
    // Fragments of one datagram hash on L3 only, so they stay together.
    let fragment = u16::from_be_bytes(ip.frags) & 0x3fff != 0;
    let l4 = EthHdr::LEN + ((ip.vihl & 0x0f) as usize) * 4;
    match ports(start, end, ip.proto, l4, fragment) {
        Some(ports) => Parsed::Flow(flow_hash_v4(src, dst, ip.proto, ports)),
        None => Parsed::Truncated,
    }
}

#[inline(always)]
fn classify_v6(start: usize, end: usize) -> Parsed {
    let Some(ip) = ptr_at::<Ipv6Hdr>(start, end, EthHdr::LEN) else {
        return Parsed::Truncated;
    };
    // SAFETY: bounds checked by ptr_at.
    let ip = unsafe { &*ip };
    let mut next = ip.next_hdr;
    let mut off = EthHdr::LEN + Ipv6Hdr::LEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let Some(ext) = ptr_at::<[u8; 2]>(start, end, off) else {
                    return Parsed::Truncated;
                };
                // SAFETY: bounds checked by ptr_at.
                let ext = unsafe { *ext };
                next = ext[0];
                off += (ext[1] as usize + 1) * 8;
            }
            _ => break,
        }
    }
    // A fragment header (44) ends the walk: fragments hash on L3.
    let Some(ports) = ports(start, end, next, off, false) else {
        return Parsed::Truncated;
    };
    let half = |a: &[u8; 16], i: usize| {
        let mut h = [0u8; 8];
        h.copy_from_slice(&a[8 * i..8 * i + 8]);
        u64::from_ne_bytes(h)
    };
    let src = [half(&ip.src_addr, 0), half(&ip.src_addr, 1)];
    let dst = [half(&ip.dst_addr, 0), half(&ip.dst_addr, 1)];
    Parsed::Flow(flow_hash_v6(src, dst, next, ports))
}

/// The 4 bytes of TCP/UDP/SCTP ports at `l4`, 0 for other protocols and
/// fragments; `None` when the packet is cut short before them.
#[inline(always)]
fn ports(start: usize, end: usize, proto: u8, l4: usize, fragment: bool) -> Option<u32> {
    if fragment || !matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP) {
        return Some(0);
    }
    // SAFETY: bounds checked by ptr_at; may be unaligned.
    ptr_at::<u32>(start, end, l4).map(|p| unsafe { p.read_unaligned() })
}
