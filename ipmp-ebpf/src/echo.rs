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
use aya_ebpf::programs::XdpContext;
use ipmp_common::{data_address_key_v4, Member};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};

use crate::{
    csum,
    maps::data_address,
    parse::{fold64, mac_is_group, martian_v4, martian_v6, ptr_at, sum, PROTO_ICMP, PROTO_ICMPV6},
};

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// The TTL / hop limit of our answers, as Linux's default.
const REPLY_TTL: u8 = 64;
/// Version 4, header length 5 words: the only IPv4 header answered here
/// (options such as record route are the kernel's to echo).
const IPV4_PLAIN: u8 = 0x45;
/// The ICMP echo header: type, code, checksum, identifier, sequence.
const ECHO_HEADER: usize = 8;

/// Turns an IPv4 echo request for us into its reply; true when the frame
/// is now the reply, to be sent back (XDP_TX).
#[inline(always)]
pub fn answer_v4(ctx: &XdpContext, member: &Member) -> bool {
    let (start, end) = (ctx.data(), ctx.data_end());
    let (Some(eth), Some(ip)) = (
        ptr_at::<EthHdr>(start, end, 0),
        ptr_at::<Ipv4Hdr>(start, end, EthHdr::LEN),
    ) else {
        return false;
    };
    // SAFETY: bounds checked by ptr_at.
    let (frame, header) = unsafe { (&*eth, &*ip) };
    if !for_member(frame, member) || header.vihl != IPV4_PLAIN || header.proto != PROTO_ICMP {
        return false;
    }
    let dst = u32::from_ne_bytes(header.dst_addr);
    let fragment = u16::from_be_bytes(header.frags) & 0x3fff != 0;
    if fragment || dst == 0 || martian_v4(header.src_addr) {
        return false;
    }
    if dst != member.test_v4 && data_address(&data_address_key_v4(header.dst_addr)).is_none() {
        return false;
    }
    // The total length must cover an echo header and lie within the frame
    // (which may carry Ethernet padding after it).
    let total = u16::from_be_bytes(header.tot_len) as usize;
    if total < Ipv4Hdr::LEN + ECHO_HEADER || EthHdr::LEN + total > end - start {
        return false;
    }
    let l4 = EthHdr::LEN + Ipv4Hdr::LEN;
    let header_ok = sum(start, end, EthHdr::LEN, Ipv4Hdr::LEN).map(fold64) == Some(0xffff);
    let message_ok = sum(start, end, l4, total - Ipv4Hdr::LEN).map(fold64) == Some(0xffff);
    if !header_ok || !message_ok {
        return false;
    }
    let Some(icmp) = request(start, end, l4, ICMP_ECHO_REQUEST) else {
        return false;
    };
    // SAFETY: both headers were bounds checked above; the packet is ours to
    // rewrite, and nothing else refers to it meanwhile.
    let (eth, ip) = unsafe { (&mut *(eth as *mut EthHdr), &mut *(ip as *mut Ipv4Hdr)) };
    eth.dst_addr = eth.src_addr;
    eth.src_addr = member.mac;
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    // Swapping addresses keeps both checksums; TTL and type change them.
    let old_ttl = u16::from_be_bytes([ip.ttl, ip.proto]);
    ip.ttl = REPLY_TTL;
    let new_ttl = u16::from_be_bytes([REPLY_TTL, ip.proto]);
    ip.check = csum::update(u16::from_be_bytes(ip.check), old_ttl, new_ttl).to_be_bytes();
    reply(icmp, ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY);
    true
}

/// Turns an ICMPv6 echo request for us (a data address or the member's
/// link-local test address) into its reply; true when it did.
#[inline(always)]
pub fn answer_v6(ctx: &XdpContext, member: &Member) -> bool {
    let (start, end) = (ctx.data(), ctx.data_end());
    let (Some(eth), Some(ip)) = (
        ptr_at::<EthHdr>(start, end, 0),
        ptr_at::<Ipv6Hdr>(start, end, EthHdr::LEN),
    ) else {
        return false;
    };
    // SAFETY: bounds checked by ptr_at.
    let (frame, header) = unsafe { (&*eth, &*ip) };
    // Requests with extension headers are left to the kernel.
    if !for_member(frame, member) || header.next_hdr != PROTO_ICMPV6 || martian_v6(&header.src_addr)
    {
        return false;
    }
    let to_test = member.test_v6[0] != 0 && header.dst_addr == member.test_v6;
    if !to_test && data_address(&header.dst_addr).is_none() {
        return false;
    }
    let l4 = EthHdr::LEN + Ipv6Hdr::LEN;
    let len = u16::from_be_bytes(header.payload_len) as usize;
    if len < ECHO_HEADER || l4 + len > end - start {
        return false;
    }
    // The checksum covers the pseudo header: addresses, length, next header.
    let pseudo = csum::add(csum::add(0, &header.src_addr), &header.dst_addr)
        + len as u32
        + u32::from(PROTO_ICMPV6);
    let Some(message) = sum(start, end, l4, len) else {
        return false;
    };
    if fold64(message + u64::from(pseudo)) != 0xffff {
        return false;
    }
    let Some(icmp) = request(start, end, l4, ICMPV6_ECHO_REQUEST) else {
        return false;
    };
    // SAFETY: as in answer_v4.
    let (eth, ip) = unsafe { (&mut *(eth as *mut EthHdr), &mut *(ip as *mut Ipv6Hdr)) };
    eth.dst_addr = eth.src_addr;
    eth.src_addr = member.mac;
    // The pseudo-header sum does not change when the addresses swap.
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    ip.hop_limit = REPLY_TTL;
    reply(icmp, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY);
    true
}

/// A frame sent to this member's own MAC from a host (not a group address).
#[inline(always)]
fn for_member(eth: &EthHdr, member: &Member) -> bool {
    eth.dst_addr == member.mac && !mac_is_group(&eth.src_addr)
}

/// The ICMP header at `l4` if it is an echo request of type `kind`.
#[inline(always)]
fn request(start: usize, end: usize, l4: usize, kind: u8) -> Option<*mut [u8; 4]> {
    let icmp = ptr_at::<[u8; 4]>(start, end, l4)?;
    // SAFETY: bounds checked by ptr_at.
    let header = unsafe { *icmp };
    (header[0] == kind && header[1] == 0).then_some(icmp as *mut [u8; 4])
}

/// Makes the request at `icmp` a reply, updating its checksum.
#[inline(always)]
fn reply(icmp: *mut [u8; 4], request: u8, reply: u8) {
    // SAFETY: bounds checked in `request`; the packet is ours to rewrite.
    let icmp = unsafe { &mut *icmp };
    icmp[0] = reply;
    let sum = csum::update(
        u16::from_be_bytes([icmp[2], icmp[3]]),
        u16::from(request) << 8,
        u16::from(reply) << 8,
    );
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
}
