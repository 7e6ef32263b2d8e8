//! XDP on every member: counts what arrives, answers ARP/ND for the data
//! addresses bound here and echo requests to our addresses, takes our probe
//! replies, lets broadcast and multicast data in only on the cast member,
//! and passes everything else on.
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext, Global};
use ipmp_common::{GroupConfig, Member, MemberCounters, NO_MEMBER, RTT_BUCKET_BOUNDS_NS};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
};

use crate::{
    echo,
    maps::{member_stats, GROUP, MEMBERS},
    neighbour,
    parse::{ptr_at, vlan_tagged, PROTO_ICMPV6},
    probe::{self, Reply},
};

/// This instance's member slot, set by ipmpd at load time.
#[unsafe(no_mangle)]
static MEMBER_SLOT: Global<u32> = Global::new(NO_MEMBER as u32);

const PROTO_IGMP: u8 = 2;
const IPV6_HOP_BY_HOP: u8 = 0;

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
    let Some(eth) = ptr_at::<EthHdr>(ctx.data(), ctx.data_end(), 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: bounds checked by ptr_at.
    let eth = unsafe { &*eth };
    // A tagged frame belongs to a VLAN the kernel handles (or drops); the
    // group's addresses live untagged, so nothing in it is ours.
    if vlan_tagged(eth) {
        return xdp_action::XDP_PASS;
    }
    let cast = eth.dst_addr[0] & 1 != 0;
    match eth.ether_type() {
        Ok(EtherType::Arp) => match neighbour::arp(&ctx, slot, member) {
            Some(action) => neighbour_answer(stats, action),
            None => xdp_action::XDP_PASS,
        },
        Ok(EtherType::Ipv4) => {
            if group.answer_echo != 0 && echo::answer_v4(&ctx, member) {
                stats.echo_answered += 1;
                return xdp_action::XDP_TX;
            }
            if cast && group.cast_slot_v4 != slot && !control_v4(&ctx) {
                stats.cast_dropped += 1;
                return xdp_action::XDP_DROP;
            }
            probe_reply(&ctx, slot, member, group, stats)
        }
        Ok(EtherType::Ipv6) => {
            if let Some(action) = neighbour::solicitation(&ctx, slot, member) {
                return neighbour_answer(stats, action);
            }
            if group.answer_echo != 0 && echo::answer_v6(&ctx, member) {
                stats.echo_answered += 1;
                return xdp_action::XDP_TX;
            }
            if cast && group.cast_slot_v6 != slot && !control_v6(&ctx) {
                stats.cast_dropped += 1;
                return xdp_action::XDP_DROP;
            }
            probe_reply(&ctx, slot, member, group, stats)
        }
        _ => xdp_action::XDP_PASS,
    }
}

fn neighbour_answer(stats: &mut MemberCounters, action: u32) -> u32 {
    if action == xdp_action::XDP_TX {
        stats.neighbour_answered += 1;
    }
    action
}

/// IPv4 broadcast or multicast every member needs for itself: IGMP (the
/// members' own memberships). Unparseable packets pass too, as elsewhere.
#[inline(always)]
fn control_v4(ctx: &XdpContext) -> bool {
    match ptr_at::<Ipv4Hdr>(ctx.data(), ctx.data_end(), EthHdr::LEN) {
        // SAFETY: bounds checked by ptr_at.
        Some(ip) => unsafe { (*ip).proto == PROTO_IGMP },
        None => true,
    }
}

/// IPv6 multicast every member needs for itself: ICMPv6 (neighbour and
/// router discovery, MLD, which comes after a hop-by-hop header).
#[inline(always)]
fn control_v6(ctx: &XdpContext) -> bool {
    match ptr_at::<Ipv6Hdr>(ctx.data(), ctx.data_end(), EthHdr::LEN) {
        // SAFETY: bounds checked by ptr_at.
        Some(ip) => matches!(unsafe { (*ip).next_hdr }, PROTO_ICMPV6 | IPV6_HOP_BY_HOP),
        None => true,
    }
}

/// Takes our probes' replies (timed, handed to ipmpd, dropped); passes the rest.
#[inline(always)]
fn probe_reply(
    ctx: &XdpContext,
    slot: u32,
    member: &Member,
    group: &GroupConfig,
    stats: &mut MemberCounters,
) -> u32 {
    match probe::check(ctx, slot, member, &group.probe_key) {
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
