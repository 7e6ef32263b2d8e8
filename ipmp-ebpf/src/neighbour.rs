//! ARP and neighbour discovery for the data addresses. Each data address is
//! bound to one member (ipmpd's inbound binding): that member answers ARP
//! requests and neighbour solicitations for it with its own MAC, the
//! others drop them, so a peer always learns the bound member. Everything
//! else (the members' own addresses, gratuitous ARP) goes to the kernel.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use ipmp_common::{data_address_key_v4, Member};
use network_types::{arp::ArpHdr, eth::EthHdr, ip::Ipv6Hdr};

use crate::{
    csum,
    maps::data_address,
    parse::{mac_is_group, ptr_at, PROTO_ICMPV6},
};

pub(crate) const ARP_ETHERNET: [u8; 2] = [0, 1];
pub(crate) const ARP_IPV4: [u8; 2] = [0x08, 0x00];
pub(crate) const ARP_REQUEST: [u8; 2] = [0, 1];
const ARP_REPLY: [u8; 2] = [0, 2];

const ND_SOLICITATION: u8 = 135;
const ND_ADVERTISEMENT: u8 = 136;
/// Neighbour discovery is only valid from the link itself (RFC 4861).
const ND_HOP_LIMIT: u8 = 255;
/// Advertisement flags: solicited, override.
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LINK_ADDRESS: u8 = 2;
/// A solicitation without options (unicast, as neighbour unreachability
/// detection sends it), and one with a single 8-byte option (the source
/// link-layer address, or the nonce of duplicate address detection);
/// others are left to the kernel.
const NS_BARE: usize = 24;
const NS_ONE_OPTION: usize = 32;
const ALL_NODES: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// What to do with a neighbour resolution request; `None` when it is not
/// one for a data address.
#[inline(always)]
pub fn arp(ctx: &XdpContext, slot: u32, member: &Member) -> Option<u32> {
    let (start, end) = (ctx.data(), ctx.data_end());
    let eth = ptr_at::<EthHdr>(start, end, 0)?;
    let arp = ptr_at::<ArpHdr>(start, end, EthHdr::LEN)?;
    // SAFETY: bounds checked by ptr_at.
    let (frame, request) = unsafe { (&*eth, &*arp) };
    // Requests are broadcast, or unicast to us (a peer re-checking its
    // entry); one for another host's MAC is not ours to answer.
    if (frame.dst_addr != BROADCAST_MAC && frame.dst_addr != member.mac)
        || mac_is_group(&frame.src_addr)
        || mac_is_group(&request.sha)
        // 0.0.0.0 is an address probe (RFC 5227), answered; loopback,
        // multicast and broadcast senders are not hosts.
        || request.spa[0] == 127
        || request.spa[0] >= 224
        || request.htype != ARP_ETHERNET
        || request.ptype != ARP_IPV4
        || request.hlen != 6
        || request.plen != 4
        || request.oper != ARP_REQUEST
        // Gratuitous ARP announces the sender; it asks nothing.
        || request.spa == request.tpa
    {
        return None;
    }
    let bound = data_address(&data_address_key_v4(request.tpa))?;
    if bound != slot {
        return Some(xdp_action::XDP_DROP);
    }
    // SAFETY: both headers bounds checked above; the frame is ours.
    let (eth, arp) = unsafe { (&mut *(eth as *mut EthHdr), &mut *(arp as *mut ArpHdr)) };
    eth.dst_addr = arp.sha;
    eth.src_addr = member.mac;
    arp.oper = ARP_REPLY;
    arp.tha = arp.sha;
    arp.sha = member.mac;
    core::mem::swap(&mut arp.spa, &mut arp.tpa);
    Some(xdp_action::XDP_TX)
}

/// Like [`arp`], for an IPv6 neighbour solicitation of a data address:
/// answered with a neighbour advertisement on the bound member.
#[inline(always)]
pub fn solicitation(ctx: &XdpContext, slot: u32, member: &Member) -> Option<u32> {
    let ip = ptr_at::<Ipv6Hdr>(ctx.data(), ctx.data_end(), EthHdr::LEN)?;
    // SAFETY: bounds checked by ptr_at.
    let header = unsafe { &*ip };
    if header.next_hdr != PROTO_ICMPV6 || header.hop_limit != ND_HOP_LIMIT {
        return None;
    }
    // The advertisement takes the solicitation's place, so each length
    // gets its own instance: the verifier then sees every write checked.
    match u16::from_be_bytes(header.payload_len) as usize {
        NS_BARE => advertise::<NS_BARE>(ctx, slot, member),
        NS_ONE_OPTION => advertise::<NS_ONE_OPTION>(ctx, slot, member),
        _ => None,
    }
}

/// Answers an `N`-byte solicitation in place with an `N`-byte
/// advertisement (with the target link-layer address if there is room).
#[inline(always)]
fn advertise<const N: usize>(ctx: &XdpContext, slot: u32, member: &Member) -> Option<u32> {
    let (start, end) = (ctx.data(), ctx.data_end());
    let eth = ptr_at::<EthHdr>(start, end, 0)?;
    let ip = ptr_at::<Ipv6Hdr>(start, end, EthHdr::LEN)?;
    let ns = ptr_at::<[u8; N]>(start, end, EthHdr::LEN + Ipv6Hdr::LEN)?;
    // SAFETY: every header was bounds checked above; the frame is ours.
    let (eth, ip, message) = unsafe {
        (
            &mut *(eth as *mut EthHdr),
            &mut *(ip as *mut Ipv6Hdr),
            &mut *(ns as *mut [u8; N]),
        )
    };
    if message[0] != ND_SOLICITATION || message[1] != 0 {
        return None;
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(message.get(8..24)?);
    // Sent to the target's solicited-node group, or unicast to us (RFC
    // 4861 7.2.2), from a host (a multicast source is invalid, 7.1.1).
    let solicited = [0x33, 0x33, 0xff, target[13], target[14], target[15]];
    if (eth.dst_addr != solicited && eth.dst_addr != member.mac)
        || mac_is_group(&eth.src_addr)
        || ip.src_addr[0] == 0xff
    {
        return None;
    }
    let bound = data_address(&target)?;
    if bound != slot {
        return Some(xdp_action::XDP_DROP);
    }
    // Duplicate address detection solicits from the unspecified address:
    // its answer goes to all nodes, unsolicited (RFC 4861 7.2.4).
    let dad = ip.src_addr == [0; 16];
    eth.dst_addr = if dad { ALL_NODES_MAC } else { eth.src_addr };
    eth.src_addr = member.mac;
    ip.dst_addr = if dad { ALL_NODES } else { ip.src_addr };
    ip.src_addr = target;
    message[0] = ND_ADVERTISEMENT;
    message[1] = 0;
    message[2] = 0;
    message[3] = 0;
    message[4] = if dad {
        NA_OVERRIDE
    } else {
        NA_SOLICITED | NA_OVERRIDE
    };
    message[5] = 0;
    message[6] = 0;
    message[7] = 0;
    if let Some(option) = message.get_mut(24..32) {
        option[0] = OPTION_TARGET_LINK_ADDRESS;
        option[1] = 1; // in units of 8 bytes
        option[2..8].copy_from_slice(&member.mac);
    }
    // The pseudo header (addresses, length, next header), then the message.
    let mut sum = csum::add(0, &ip.src_addr);
    sum = csum::add(sum, &ip.dst_addr);
    sum += N as u32 + u32::from(PROTO_ICMPV6);
    let check = !csum::fold(csum::add(sum, message));
    message[2..4].copy_from_slice(&check.to_be_bytes());
    Some(xdp_action::XDP_TX)
}
