//! XDP on every member: counts what arrives and passes it on.
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext, Global};
use ipmp_common::NO_MEMBER;

use crate::maps::member_stats;

/// This instance's member slot, set by ipmpd at load time.
#[unsafe(no_mangle)]
static MEMBER_SLOT: Global<u32> = Global::new(NO_MEMBER as u32);

#[xdp]
pub fn ipmp_member(ctx: XdpContext) -> u32 {
    if let Some(stats) = member_stats(MEMBER_SLOT.load()) {
        stats.rx_packets += 1;
        stats.rx_bytes += (ctx.data_end() - ctx.data()) as u64;
    }
    xdp_action::XDP_PASS
}
