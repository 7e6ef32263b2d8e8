//! TC egress on every member: the kernel's own ARP requests. A member
//! without an IPv4 address asks for next hops from another interface's
//! address, often a data address (arp_announce's fallback), and each
//! member asks for itself: peers would point their entry for the data
//! address at whichever member asked last, not the one it is bound to.
//! Such requests leave as ARP probes (sender address 0.0.0.0, RFC 5227):
//! every host answers them, to the asking member's MAC, and learns nothing
//! from them. Gratuitous ARP (ipmpd's announcements) is left alone.
use core::mem::offset_of;

use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};
use ipmp_common::{
    data_address_key_v4,
    wire::{ARPHRD_ETHER, ARPOP_REQUEST, ETH_HLEN, ETH_P_ARP, ETH_P_IP},
};
use network_types::{arp::ArpHdr, eth::EthHdr};

use crate::{maps::data_address, parse::ensure};

/// Where the sender's IPv4 address sits in an Ethernet ARP frame.
const SPA_OFFSET: usize = ETH_HLEN + offset_of!(ArpHdr, spa);

#[classifier]
pub fn ipmp_member_egress(ctx: TcContext) -> i32 {
    // Whatever it is, the frame leaves.
    let _ = try_ipmp_member_egress(&ctx);
    TC_ACT_OK
}

/// Makes the kernel's ARP request from a data address an ARP probe;
/// `Err` when the frame is no such request.
#[inline(always)]
fn try_ipmp_member_egress(ctx: &TcContext) -> Result<(), ()> {
    let ether_type = ctx.load::<[u8; 2]>(offset_of!(EthHdr, ether_type));
    ensure(ether_type == Ok(ETH_P_ARP.to_be_bytes()))?;
    let Ok(arp) = ctx.load::<ArpHdr>(ETH_HLEN) else {
        return Err(());
    };
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
