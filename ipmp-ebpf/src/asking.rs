//! TC egress on every member: the kernel's own ARP requests. A member
//! without an IPv4 address asks for next hops from another interface's
//! address, often a data address (arp_announce's fallback), and each
//! member asks for itself: peers would point their entry for the data
//! address at whichever member asked last, not the one it is bound to.
//! Such requests leave as ARP probes (sender address 0.0.0.0, RFC 5227):
//! every host answers them, to the asking member's MAC, and learns nothing
//! from them. Gratuitous ARP (ipmpd's announcements) is left alone.
use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};
use ipmp_common::data_address_key_v4;
use network_types::{arp::ArpHdr, eth::EthHdr};

use crate::{
    maps::data_address,
    neighbour::{ARP_ETHERNET, ARP_IPV4, ARP_REQUEST},
};

const ETH_P_ARP: [u8; 2] = [0x08, 0x06];
/// Where the sender's IPv4 address sits in an Ethernet ARP frame.
const SPA_OFFSET: usize = EthHdr::LEN + 14;

#[classifier]
pub fn ipmp_member_egress(ctx: TcContext) -> i32 {
    let Ok(ether_type) = ctx.load::<[u8; 2]>(12) else {
        return TC_ACT_OK;
    };
    if ether_type != ETH_P_ARP {
        return TC_ACT_OK;
    }
    let Ok(arp) = ctx.load::<ArpHdr>(EthHdr::LEN) else {
        return TC_ACT_OK;
    };
    if arp.htype == ARP_ETHERNET
        && arp.ptype == ARP_IPV4
        && arp.oper == ARP_REQUEST
        && arp.spa != arp.tpa
        && data_address(&data_address_key_v4(arp.spa)).is_some()
    {
        // ARP carries no checksum: the store is all it takes.
        let _ = ctx.store(SPA_OFFSET, &[0u8; 4], 0);
    }
    TC_ACT_OK
}
