//! TC egress on every member: frames the kernel held for an unresolved
//! neighbour, and the kernel's own ARP requests.
//!
//! The group egress program names an on-link destination as its own next
//! hop (`bpf_redirect_neigh` with parameters), which spares a route lookup
//! per packet. When the member's neighbour is not yet resolved, the kernel
//! queues the packet on it, and once it resolves, sends it with the
//! header of the neighbour its route names: the group interface's, which
//! is NOARP, so the frame leaves with the group's own MAC as both source
//! and destination and the peer drops it. Such a frame (source equal to
//! destination, which no real frame has) is handed back to the kernel to
//! route out of this member, whose neighbour now answers: the first packet
//! to a new neighbour arrives like every other.
//!
//! A member without an IPv4 address asks for next hops from another interface's
//! address, often a data address (arp_announce's fallback), and each
//! member asks for itself: peers would point their entry for the data
//! address at whichever member asked last, not the one it is bound to.
//! Such requests leave as ARP probes (sender address 0.0.0.0, RFC 5227):
//! every host answers them, to the asking member's MAC, and learns nothing
//! from them. Gratuitous ARP (ipmpd's announcements) is left alone.
use core::mem::offset_of;

use aya_ebpf::{
    bindings::TC_ACT_OK, helpers::generated::bpf_redirect_neigh, macros::classifier,
    programs::TcContext,
};
use ipmp_common::{
    data_address_key_v4,
    wire::{ARPHRD_ETHER, ARPOP_REQUEST, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6},
};
use network_types::{arp::ArpHdr, eth::EthHdr};

use crate::{
    maps::data_address,
    parse::{ensure, Frame},
};

/// Where the sender's IPv4 address sits in an Ethernet ARP frame.
const SPA_OFFSET: usize = ETH_HLEN + offset_of!(ArpHdr, spa);

#[classifier]
pub fn ipmp_member_egress(ctx: TcContext) -> i32 {
    let frame = Frame::new(ctx.data(), ctx.data_end());
    let Ok(ether_type) = frame.read::<[u8; 2]>(offset_of!(EthHdr, ether_type)) else {
        return TC_ACT_OK;
    };
    match u16::from_be_bytes(ether_type) {
        ETH_P_IP | ETH_P_IPV6 if held_for_neighbour(frame) => {
            // SAFETY: plain helper call; a null params pointer is allowed.
            return unsafe {
                bpf_redirect_neigh((*ctx.skb.skb).ifindex, core::ptr::null_mut(), 0, 0)
            } as i32;
        }
        ETH_P_ARP => {
            let _ = ask_as_probe(&ctx, frame);
        }
        _ => {}
    }
    // Whatever else it is, the frame leaves.
    TC_ACT_OK
}

/// Whether the frame carries the same MAC as source and destination: an
/// IP packet the kernel held for a neighbour and then headed as the group
/// interface's (see above). Other frames (a raw socket's loopback test
/// frames, say) are left alone.
#[inline(always)]
fn held_for_neighbour(frame: Frame) -> bool {
    match (frame.read::<[u16; 3]>(0), frame.read::<[u16; 3]>(6)) {
        (Ok(destination), Ok(source)) => destination == source,
        _ => false,
    }
}

/// Makes the kernel's ARP request (an ARP frame) from a data address an
/// ARP probe; `Err` when the frame is no such request.
#[inline(always)]
fn ask_as_probe(ctx: &TcContext, frame: Frame) -> Result<(), ()> {
    let arp = frame.read::<ArpHdr>(ETH_HLEN)?;
    ensure(
        arp.htype == ARPHRD_ETHER.to_be_bytes()
            && arp.ptype == ETH_P_IP.to_be_bytes()
            && arp.oper == ARPOP_REQUEST.to_be_bytes()
            && arp.spa != arp.tpa
            && data_address(&data_address_key_v4(arp.spa)).is_some(),
    )?;
    // ARP carries no checksum: the store is all it takes.
    ctx.store(SPA_OFFSET, &[0u8; 4], 0).map_err(drop)
}
