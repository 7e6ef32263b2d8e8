//! ICMP and ICMPv6 echo answered at the driver: a request to a data
//! address or to the member's test address becomes its reply in place and
//! goes back out of the member (XDP_TX), so the host answers probes and
//! pings at line rate however busy its CPUs are.
//!
//! Only what the kernel would answer is answered, and answered as the
//! kernel would: the frame must be addressed to the member's MAC, the
//! source must be a unicast host, the IPv4 header plain (no options),
//! lengths consistent and checksums right; the reply leaves with the
//! member's MAC. Anything else goes to the kernel, which decides.
use ipmp_common::{
    data_address_key_v4,
    wire::{
        mac_is_group, ETH_HLEN, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMP_ECHO, ICMP_ECHOREPLY,
        ICMP_ECHO_HLEN, IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_FRAGMENT_MASK, IPV4_HLEN,
        IPV4_VIHL_PLAIN, IPV6_HLEN,
    },
    Member,
};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};

use crate::{
    csum::{self, fold64, frame_sum},
    maps::data_address,
    parse::{ensure, martian_v4, martian_v6, Frame, Ip},
};

/// The TTL / hop limit of our answers, as Linux's default.
const REPLY_TTL: u8 = 64;

/// Turns an echo request for us into its reply; `Ok` when the frame is
/// now the reply, to be sent back (XDP_TX).
#[inline(always)]
pub fn answer(frame: Frame, eth: &mut EthHdr, ip: &mut Ip, member: &Member) -> Result<(), ()> {
    // A frame sent to this member's own MAC from a host (not a group address).
    ensure(eth.dst_addr == member.mac && !mac_is_group(&eth.src_addr))?;
    match ip {
        Ip::V4(ip) => answer_v4(frame, ip, member)?,
        Ip::V6(ip) => answer_v6(frame, ip, member)?,
    }
    eth.dst_addr = eth.src_addr;
    eth.src_addr = member.mac;
    Ok(())
}

/// Answers an IPv4 echo request (options, such as record route, are the
/// kernel's to echo).
#[inline(always)]
fn answer_v4(frame: Frame, ip: &mut Ipv4Hdr, member: &Member) -> Result<(), ()> {
    ensure(ip.vihl == IPV4_VIHL_PLAIN && ip.proto == IPPROTO_ICMP)?;
    let dst = u32::from_ne_bytes(ip.dst_addr);
    let fragment = u16::from_be_bytes(ip.frags) & IPV4_FRAGMENT_MASK != 0;
    ensure(!fragment && dst != 0 && !martian_v4(ip.src_addr))?;
    ensure(dst == member.test_v4 || data_address(&data_address_key_v4(ip.dst_addr)).is_some())?;
    // The total length must cover an echo header and lie within the frame
    // (which may carry Ethernet padding after it).
    let total = u16::from_be_bytes(ip.tot_len) as usize;
    ensure(total >= IPV4_HLEN + ICMP_ECHO_HLEN && ETH_HLEN + total <= frame.len())?;
    let l4 = ETH_HLEN + IPV4_HLEN;
    ensure(frame_sum(frame, ETH_HLEN, IPV4_HLEN).map(fold64) == Ok(0xffff))?;
    ensure(frame_sum(frame, l4, total - IPV4_HLEN).map(fold64) == Ok(0xffff))?;
    let icmp = request(frame, l4, ICMP_ECHO)?;
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    // Swapping addresses keeps both checksums; TTL and type change them.
    let old_ttl = u16::from_be_bytes([ip.ttl, ip.proto]);
    ip.ttl = REPLY_TTL;
    let new_ttl = u16::from_be_bytes([REPLY_TTL, ip.proto]);
    ip.check = csum::update(u16::from_be_bytes(ip.check), old_ttl, new_ttl).to_be_bytes();
    reply(icmp, ICMP_ECHO, ICMP_ECHOREPLY);
    Ok(())
}

/// Answers an ICMPv6 echo request to a data address or the member's
/// link-local test address.
#[inline(always)]
fn answer_v6(frame: Frame, ip: &mut Ipv6Hdr, member: &Member) -> Result<(), ()> {
    // Requests with extension headers are left to the kernel.
    ensure(ip.next_hdr == IPPROTO_ICMPV6 && !martian_v6(&ip.src_addr))?;
    let to_test = member.test_v6[0] != 0 && ip.dst_addr == member.test_v6;
    ensure(to_test || data_address(&ip.dst_addr).is_some())?;
    let l4 = ETH_HLEN + IPV6_HLEN;
    let len = u16::from_be_bytes(ip.payload_len) as usize;
    ensure(len >= ICMP_ECHO_HLEN && l4 + len <= frame.len())?;
    // The checksum covers the pseudo header: addresses, length, next header.
    let pseudo = csum::add(csum::add(0, &ip.src_addr), &ip.dst_addr)
        + len as u32
        + u32::from(IPPROTO_ICMPV6);
    let message = frame_sum(frame, l4, len)?;
    ensure(fold64(message + u64::from(pseudo)) == 0xffff)?;
    let icmp = request(frame, l4, ICMPV6_ECHO_REQUEST)?;
    // The pseudo-header sum does not change when the addresses swap.
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    ip.hop_limit = REPLY_TTL;
    reply(icmp, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY);
    Ok(())
}

/// The ICMP header at `l4` if it is an echo request of type `kind`.
#[inline(always)]
fn request<'a>(frame: Frame<'a>, l4: usize, kind: u8) -> Result<&'a mut [u8; 4], ()> {
    let icmp = frame.header::<[u8; 4]>(l4)?;
    ensure(icmp[0] == kind && icmp[1] == 0)?;
    Ok(icmp)
}

/// Makes the request `icmp` a reply, updating its checksum.
#[inline(always)]
fn reply(icmp: &mut [u8; 4], request: u8, reply: u8) {
    icmp[0] = reply;
    let sum = csum::update(
        u16::from_be_bytes([icmp[2], icmp[3]]),
        u16::from(request) << 8,
        u16::from(reply) << 8,
    );
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
}
