//! ICMP echo answered at the driver: a request to a data address or to the
//! member's test address becomes its reply in place and goes back out of
//! the member (XDP_TX), so the host answers probes and pings at line rate
//! however busy its CPUs are.
use aya_ebpf::programs::XdpContext;
use ipmp_common::{GroupConfig, Member};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::Ipv4Hdr,
};

use crate::parse::ptr_at;

const PROTO_ICMP: u8 = 1;
const ICMP_ECHO_REQUEST: u8 = 8;
/// The TTL of our answers, as Linux's default.
const REPLY_TTL: u8 = 64;

/// Turns an IPv4 echo request for us into its reply; true when the frame
/// is now the reply, to be sent back (XDP_TX).
#[inline(always)]
pub fn answer(ctx: &XdpContext, member: &Member, group: &GroupConfig) -> bool {
    let (start, end) = (ctx.data(), ctx.data_end());
    let Some(eth) = ptr_at::<EthHdr>(start, end, 0) else {
        return false;
    };
    // SAFETY: bounds checked by ptr_at.
    if !matches!(unsafe { &*eth }.ether_type(), Ok(EtherType::Ipv4)) {
        return false;
    }
    let Some(ip) = ptr_at::<Ipv4Hdr>(start, end, EthHdr::LEN) else {
        return false;
    };
    // SAFETY: bounds checked by ptr_at.
    let header = unsafe { &*ip };
    let dst = u32::from_ne_bytes(header.dst_addr);
    let fragment = u16::from_be_bytes(header.frags) & 0x3fff != 0;
    let ours = dst == member.test_v4 || group.data_v4.contains(&dst);
    if header.proto != PROTO_ICMP || fragment || !ours || dst == 0 {
        return false;
    }
    let l4 = EthHdr::LEN + ((header.vihl & 0x0f) as usize) * 4;
    let Some(icmp) = ptr_at::<[u8; 4]>(start, end, l4) else {
        return false;
    };
    // SAFETY: bounds checked by ptr_at.
    if unsafe { (*icmp)[0] } != ICMP_ECHO_REQUEST || unsafe { (*icmp)[1] } != 0 {
        return false;
    }
    // SAFETY: all three headers were bounds checked above; the packet is
    // ours to rewrite, and nothing else refers to it meanwhile.
    let (eth, ip, icmp) = unsafe {
        (
            &mut *(eth as *mut EthHdr),
            &mut *(ip as *mut Ipv4Hdr),
            &mut *(icmp as *mut [u8; 4]),
        )
    };
    core::mem::swap(&mut eth.src_addr, &mut eth.dst_addr);
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    // Swapping addresses keeps both checksums; TTL and type change them.
    let old_ttl = u16::from_be_bytes([ip.ttl, ip.proto]);
    ip.ttl = REPLY_TTL;
    let new_ttl = u16::from_be_bytes([REPLY_TTL, ip.proto]);
    ip.check = checksum_update(u16::from_be_bytes(ip.check), old_ttl, new_ttl).to_be_bytes();
    icmp[0] = 0;
    let sum = checksum_update(
        u16::from_be_bytes([icmp[2], icmp[3]]),
        u16::from(ICMP_ECHO_REQUEST) << 8,
        0,
    );
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    true
}

/// RFC 1624's incremental update: the checksum after one 16-bit word of
/// the data changed from `old` to `new`.
#[inline(always)]
fn checksum_update(check: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}
