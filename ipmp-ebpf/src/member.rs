//! XDP on every member: counts what arrives, answers echo requests to our
//! addresses, takes our probe replies, and passes everything else on.
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext, Global};
use ipmp_common::{NO_MEMBER, RTT_BUCKET_BOUNDS_NS};

use crate::{
    echo,
    maps::{member_stats, GROUP, MEMBERS},
    probe::{self, Reply},
};

/// This instance's member slot, set by ipmpd at load time.
#[unsafe(no_mangle)]
static MEMBER_SLOT: Global<u32> = Global::new(NO_MEMBER as u32);

#[xdp]
pub fn ipmp_member(ctx: XdpContext) -> u32 {
    let slot = MEMBER_SLOT.load();
    let Some(stats) = member_stats(slot) else {
        return xdp_action::XDP_PASS;
    };
    stats.rx_packets += 1;
    stats.rx_bytes += (ctx.data_end() - ctx.data()) as u64;
    let (Some(member), Some(group)) = (MEMBERS.get(slot), GROUP.get(0)) else {
        return xdp_action::XDP_PASS;
    };
    if group.answer_echo != 0 && echo::answer(&ctx, member, group) {
        stats.echo_answered += 1;
        return xdp_action::XDP_TX;
    }
    match probe::check(&ctx, slot, member, group.cookie) {
        Reply::Ours(rtt_ns) => {
            stats.rtt_sum_ns += rtt_ns;
            let mut bucket = RTT_BUCKET_BOUNDS_NS.len();
            for (i, bound) in RTT_BUCKET_BOUNDS_NS.iter().enumerate() {
                if rtt_ns <= *bound {
                    bucket = i;
                    break;
                }
            }
            if let Some(b) = stats.rtt_buckets.get_mut(bucket) {
                *b += 1;
            }
            xdp_action::XDP_DROP
        }
        Reply::Rejected => {
            stats.probe_replies_rejected += 1;
            xdp_action::XDP_PASS
        }
        Reply::Other => xdp_action::XDP_PASS,
    }
}
