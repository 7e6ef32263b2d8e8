//! XDP on every member: counts what arrives, answers ARP/ND for the data
//! addresses bound here and echo requests to our addresses, takes our probe
//! replies, lets broadcast and multicast data in only on the cast member,
//! and passes everything else on.
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext, Global};
use ipmp_common::{
    wire::{mac_is_group, ETH_HLEN, IPPROTO_ICMPV6, IPPROTO_IGMP, IPV6_HOP_BY_HOP},
    GroupConfig, Member, MemberCounters, NO_MEMBER, RTT_BUCKET_BOUNDS_NS,
};
use network_types::eth::EthHdr;

use crate::{
    echo,
    maps::{member_stats, GROUP, MEMBERS},
    neighbour,
    parse::{vlan_tagged, Frame, Ip, ETHER_ARP, ETHER_IP, ETHER_IPV6},
    probe::{self, Reply},
};

/// This instance's member slot, set by ipmpd at load time.
#[unsafe(no_mangle)]
static MEMBER_SLOT: Global<u32> = Global::new(NO_MEMBER as u32);

#[xdp]
pub fn ipmp_member(ctx: XdpContext) -> u32 {
    match try_ipmp_member(&ctx) {
        Ok(action) => action,
        // Not ours, or not parseable: the kernel decides.
        Err(()) => xdp_action::XDP_PASS,
    }
}

#[inline(always)]
fn try_ipmp_member(ctx: &XdpContext) -> Result<u32, ()> {
    let slot = MEMBER_SLOT.load();
    let stats = member_stats(slot).ok_or(())?;
    let frame = Frame::new(ctx.data(), ctx.data_end());
    stats.rx_packets += 1;
    stats.rx_bytes += frame.len() as u64;
    let member = MEMBERS.get(slot).ok_or(())?;
    let group = GROUP.get(0).ok_or(())?;
    let eth = frame.header::<EthHdr>(0)?;
    // A tagged frame belongs to a VLAN the kernel handles (or drops); the
    // group's addresses live untagged, so nothing in it is ours.
    if vlan_tagged(eth) {
        return Ok(xdp_action::XDP_PASS);
    }
    let receiver = Receiver { slot, member };
    let here = Instance {
        receiver,
        group,
        stats,
    };
    match eth.ether_type {
        ETHER_ARP => Ok(here.neighbour_answered(neighbour::arp(frame, eth, receiver)?)),
        ETHER_IP => here.ip(frame, eth, Ip::V4(frame.header(ETH_HLEN)?)),
        ETHER_IPV6 => here.ip(frame, eth, Ip::V6(frame.header(ETH_HLEN)?)),
        _ => Ok(xdp_action::XDP_PASS),
    }
}

/// The member that received the frame: its slot and settings.
#[derive(Clone, Copy)]
pub struct Receiver<'a> {
    pub slot: u32,
    pub member: &'a Member,
}

/// The member this instance runs on, its group's settings and its counters.
struct Instance<'a> {
    receiver: Receiver<'a>,
    group: &'a GroupConfig,
    stats: &'a mut MemberCounters,
}

impl Instance<'_> {
    /// An IP frame: answered (neighbour solicitation, echo request),
    /// dropped (cast data this member does not take in), taken (our
    /// probes' replies) or passed on.
    #[inline(always)]
    fn ip(self, frame: Frame, eth: &mut EthHdr, mut ip: Ip) -> Result<u32, ()> {
        let cast = mac_is_group(&eth.dst_addr);
        if let Ip::V6(header) = &mut ip {
            if let Ok(action) = neighbour::solicitation(frame, eth, header, self.receiver) {
                return Ok(self.neighbour_answered(action));
            }
        }
        if self.group.answer_echo != 0
            && echo::answer(frame, eth, &mut ip, self.receiver.member).is_ok()
        {
            self.stats.echo_answered += 1;
            return Ok(xdp_action::XDP_TX);
        }
        // Broadcast and multicast every member needs for itself pass on
        // each: IGMP (the members' own memberships); ICMPv6 (neighbour and
        // router discovery, MLD, which comes after a hop-by-hop header).
        let (cast_slot, control) = match &ip {
            Ip::V4(header) => (self.group.cast_slot_v4, header.proto == IPPROTO_IGMP),
            Ip::V6(header) => (
                self.group.cast_slot_v6,
                matches!(header.next_hdr, IPPROTO_ICMPV6 | IPV6_HOP_BY_HOP),
            ),
        };
        if cast && cast_slot != self.receiver.slot && !control {
            self.stats.cast_dropped += 1;
            return Ok(xdp_action::XDP_DROP);
        }
        let reply = probe::check(frame, &ip, self.receiver, &self.group.probe_key);
        Ok(self.probe_reply(reply))
    }

    /// Counts an answered ARP request or neighbour solicitation.
    #[inline(always)]
    fn neighbour_answered(self, action: u32) -> u32 {
        if action == xdp_action::XDP_TX {
            self.stats.neighbour_answered += 1;
        }
        action
    }

    /// Takes our probes' replies (timed, handed to ipmpd, dropped); passes the rest.
    #[inline(always)]
    fn probe_reply(self, reply: Reply) -> u32 {
        let stats = self.stats;
        match reply {
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
}
