//! ARP and neighbour discovery for the data addresses. Each data address is
//! bound to one member (ipmpd's inbound binding): that member answers ARP
//! requests and neighbour solicitations for it with its own MAC, the
//! others drop them, so a peer always learns the bound member. Everything
//! else (the members' own addresses, gratuitous ARP) goes to the kernel.
use aya_ebpf::bindings::xdp_action;
use ipmp_common::{
    data_address_key_v4,
    wire::{
        mac_is_group, multicast_mac_v6, solicited_node, ALL_NODES_MAC, ALL_NODES_V6, ARPHRD_ETHER,
        ARPOP_REPLY, ARPOP_REQUEST, BROADCAST_MAC, ETH_ALEN, ETH_HLEN, ETH_P_IP, IPPROTO_ICMPV6,
        IPV4_ALEN, IPV6_HLEN, ND_HOP_LIMIT, ND_NA_FLAG_OVERRIDE, ND_NA_FLAG_SOLICITED,
        ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT, ND_NS_LEN, ND_OPT_LINKADDR_LEN,
        ND_OPT_TARGET_LINKADDR,
    },
};
use network_types::{arp::ArpHdr, eth::EthHdr, ip::Ipv6Hdr};

use crate::{
    csum,
    maps::data_address,
    member::Receiver,
    parse::{ensure, Frame},
};

/// A solicitation without options (unicast, as neighbour unreachability
/// detection sends it), and one with a single 8-byte option (the source
/// link-layer address, or the nonce of duplicate address detection);
/// others are left to the kernel.
const NS_BARE: usize = ND_NS_LEN;
const NS_ONE_OPTION: usize = ND_NS_LEN + ND_OPT_LINKADDR_LEN;

/// What to do with an ARP request for a data address; `Err` when it is
/// not one.
#[inline(always)]
pub fn arp(frame: Frame, eth: &mut EthHdr, receiver: Receiver) -> Result<u32, ()> {
    let arp = frame.header::<ArpHdr>(ETH_HLEN)?;
    // Requests are broadcast, or unicast to us (a peer re-checking its
    // entry); one for another host's MAC is not ours to answer.
    ensure(
        (eth.dst_addr == BROADCAST_MAC || eth.dst_addr == receiver.member.mac)
            && !mac_is_group(&eth.src_addr)
            && !mac_is_group(&arp.sha)
            // 0.0.0.0 is an address probe (RFC 5227), answered; loopback,
            // multicast and broadcast senders are not hosts.
            && arp.spa[0] != 127
            && arp.spa[0] < 224
            && arp.htype == ARPHRD_ETHER.to_be_bytes()
            && arp.ptype == ETH_P_IP.to_be_bytes()
            && arp.hlen == ETH_ALEN as u8
            && arp.plen == IPV4_ALEN as u8
            && arp.oper == ARPOP_REQUEST.to_be_bytes()
            // Gratuitous ARP announces the sender; it asks nothing.
            && arp.spa != arp.tpa,
    )?;
    let bound = data_address(&data_address_key_v4(arp.tpa)).ok_or(())?;
    if bound != receiver.slot {
        return Ok(xdp_action::XDP_DROP);
    }
    eth.dst_addr = arp.sha;
    eth.src_addr = receiver.member.mac;
    arp.oper = ARPOP_REPLY.to_be_bytes();
    arp.tha = arp.sha;
    arp.sha = receiver.member.mac;
    core::mem::swap(&mut arp.spa, &mut arp.tpa);
    Ok(xdp_action::XDP_TX)
}

/// Like [`arp`], for an IPv6 neighbour solicitation of a data address:
/// answered with a neighbour advertisement on the bound member.
#[inline(always)]
pub fn solicitation(
    frame: Frame,
    eth: &mut EthHdr,
    ip: &mut Ipv6Hdr,
    receiver: Receiver,
) -> Result<u32, ()> {
    ensure(ip.next_hdr == IPPROTO_ICMPV6 && ip.hop_limit == ND_HOP_LIMIT)?;
    // The advertisement takes the solicitation's place, so each length
    // gets its own instance: the verifier then sees every write checked.
    let l4 = ETH_HLEN + IPV6_HLEN;
    match u16::from_be_bytes(ip.payload_len) as usize {
        NS_BARE => advertise::<NS_BARE>(frame.header(l4)?, eth, ip, receiver),
        NS_ONE_OPTION => advertise::<NS_ONE_OPTION>(frame.header(l4)?, eth, ip, receiver),
        _ => Err(()),
    }
}

/// Answers the `N`-byte solicitation `message` in place with an `N`-byte
/// advertisement (with the target link-layer address if there is room).
#[inline(always)]
fn advertise<const N: usize>(
    message: &mut [u8; N],
    eth: &mut EthHdr,
    ip: &mut Ipv6Hdr,
    receiver: Receiver,
) -> Result<u32, ()> {
    ensure(message[0] == ND_NEIGHBOR_SOLICIT && message[1] == 0)?;
    let mut target = [0u8; 16];
    target.copy_from_slice(message.get(8..24).ok_or(())?);
    // Sent to the target's solicited-node group, or unicast to us (RFC
    // 4861 7.2.2), from a host (a multicast source is invalid, 7.1.1).
    let solicited = multicast_mac_v6(&solicited_node(&target));
    ensure(
        (eth.dst_addr == solicited || eth.dst_addr == receiver.member.mac)
            && !mac_is_group(&eth.src_addr)
            && ip.src_addr[0] != 0xff,
    )?;
    let bound = data_address(&target).ok_or(())?;
    if bound != receiver.slot {
        return Ok(xdp_action::XDP_DROP);
    }
    // Duplicate address detection solicits from the unspecified address:
    // its answer goes to all nodes, unsolicited (RFC 4861 7.2.4).
    let dad = ip.src_addr == [0; 16];
    eth.dst_addr = if dad { ALL_NODES_MAC } else { eth.src_addr };
    eth.src_addr = receiver.member.mac;
    ip.dst_addr = if dad {
        ALL_NODES_V6.octets()
    } else {
        ip.src_addr
    };
    ip.src_addr = target;
    message[0] = ND_NEIGHBOR_ADVERT;
    message[1] = 0;
    message[2] = 0;
    message[3] = 0;
    message[4] = if dad {
        ND_NA_FLAG_OVERRIDE
    } else {
        ND_NA_FLAG_SOLICITED | ND_NA_FLAG_OVERRIDE
    };
    message[5] = 0;
    message[6] = 0;
    message[7] = 0;
    if let Some(option) = message.get_mut(24..32) {
        option[0] = ND_OPT_TARGET_LINKADDR;
        option[1] = 1; // in units of 8 bytes
        option[2..8].copy_from_slice(&receiver.member.mac);
    }
    // The pseudo header (addresses, length, next header), then the message.
    let mut sum = csum::add(0, &ip.src_addr);
    sum = csum::add(sum, &ip.dst_addr);
    sum += N as u32 + u32::from(IPPROTO_ICMPV6);
    let check = !csum::fold(csum::add(sum, message));
    message[2..4].copy_from_slice(&check.to_be_bytes());
    Ok(xdp_action::XDP_TX)
}
