//! XDP on every member: counts what arrives and passes it on.
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::maps::{member_stats, MEMBER_SLOTS};

#[xdp]
pub fn ipmp_member(ctx: XdpContext) -> u32 {
    // SAFETY: reading the ingress ifindex from the context is always valid.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    // SAFETY: the value is copied out at once.
    if let Some(slot) = unsafe { MEMBER_SLOTS.get(&ifindex) }.copied() {
        if let Some(stats) = member_stats(slot) {
            stats.rx_packets += 1;
            stats.rx_bytes += (ctx.data_end() - ctx.data()) as u64;
        }
    }
    xdp_action::XDP_PASS
}
