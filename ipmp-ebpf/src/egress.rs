//! TC egress on the group interface: every packet leaves through one active
//! member. Unicast is spread per flow through the flow table; broadcast and
//! multicast leave through the family's cast member.
use aya_ebpf::{
    bindings::{bpf_redir_neigh, bpf_redir_neigh__bindgen_ty_1, TC_ACT_REDIRECT, TC_ACT_SHOT},
    helpers::generated::{bpf_redirect, bpf_redirect_neigh},
    macros::classifier,
    programs::TcContext,
};
use ipmp_common::{
    wire::{AF_INET, AF_INET6},
    FlowTable, GroupConfig, DROP_MALFORMED, DROP_NOT_IP, DROP_NO_ACTIVE_MEMBER, FLOW_TABLE_BUCKETS,
    NO_MEMBER,
};

use crate::{
    flow::{classify, Family, NextHop, Parsed},
    health::{any_in_service, in_service},
    maps::{count_drop, member_stats, ACTIVE_TABLE, FLOW_TABLE, GROUP, MEMBERS},
    parse::Frame,
};

/// Enough for Ethernet, IPv6 with a few extension headers and the ports.
const HEADERS_TO_PULL: u32 = 128;

/// The all-ones MAC, then room for the member's: one store writes both.
const BROADCAST_HEADER: [u8; 12] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0];

#[classifier]
pub fn ipmp_egress(ctx: TcContext) -> i32 {
    let Some(group) = GROUP.get(0) else {
        return drop(DROP_NO_ACTIVE_MEMBER);
    };
    let mut parsed = classify(Frame::new(ctx.data(), ctx.data_end()), group);
    if let Parsed::Truncated = parsed {
        // Headers may sit in paged data (GSO): pull them in and look again.
        let want = core::cmp::min(ctx.len(), HEADERS_TO_PULL);
        if ctx.pull_data(want).is_ok() {
            parsed = classify(Frame::new(ctx.data(), ctx.data_end()), group);
        }
    }
    match parsed {
        Parsed::Flow(hash, next_hop) => send_unicast(&ctx, hash, next_hop),
        Parsed::Cast(family) => send_cast(&ctx, group, family, false),
        Parsed::Broadcast => send_cast(&ctx, group, Family::V4, true),
        Parsed::NotIp => drop(DROP_NOT_IP),
        Parsed::Truncated => drop(DROP_MALFORMED),
    }
}

#[inline(always)]
fn drop(reason: u32) -> i32 {
    count_drop(reason);
    TC_ACT_SHOT
}

/// The flow table the dataplane reads now.
#[inline(always)]
fn flow_table() -> Option<&'static FlowTable> {
    FLOW_TABLE.get(ACTIVE_TABLE.get(0).copied().unwrap_or(0))
}

#[inline(always)]
fn send_unicast(ctx: &TcContext, hash: u32, next_hop: NextHop) -> i32 {
    let Some(table) = flow_table() else {
        return drop(DROP_NO_ACTIVE_MEMBER);
    };
    let slot = member_for(table, hash);
    let Some(ifindex) = count_tx(ctx, slot as u32) else {
        return drop(DROP_NO_ACTIVE_MEMBER);
    };
    // An on-link destination is its own next hop: named here, the kernel
    // only resolves its neighbour on the member. Else no parameters: the
    // kernel looks the next hop up with the member as output interface,
    // which lands in the member's mirror routing table (a route lookup
    // per packet, through the policy rules).
    // The stack refuses misaligned stores (see build.rs), and the compiler
    // writes the IPv6 next hop with 8-byte stores: placed 4 bytes into an
    // 8-aligned block, the address is 8-aligned.
    #[repr(C, align(8))]
    struct Params(u32, bpf_redir_neigh);
    let mut params = Params(
        0,
        bpf_redir_neigh {
            nh_family: 0,
            __bindgen_anon_1: bpf_redir_neigh__bindgen_ty_1 { ipv4_nh: 0 },
        },
    );
    match next_hop {
        NextHop::V4(a) => {
            params.1.nh_family = AF_INET;
            params.1.__bindgen_anon_1.ipv4_nh = a;
        }
        NextHop::V6(a) => {
            params.1.nh_family = AF_INET6;
            params.1.__bindgen_anon_1.ipv6_nh = a;
        }
        NextHop::Route => {
            // SAFETY: plain helper call; a null params pointer is allowed.
            return unsafe { bpf_redirect_neigh(ifindex, core::ptr::null_mut(), 0, 0) as i32 };
        }
    }
    // SAFETY: plain helper call with a valid parameter block of its size.
    unsafe {
        bpf_redirect_neigh(
            ifindex,
            &mut params.1 as *mut bpf_redir_neigh as *mut _,
            core::mem::size_of::<bpf_redir_neigh>() as i32,
            0,
        ) as i32
    }
}

/// The member a flow leaves through: its bucket's owner, or, when the
/// kernel finds the owner's link down, the backup ipmpd chose for it (so
/// ipmpd's next table moves nothing again), or any member still up.
#[inline(always)]
fn member_for(table: &FlowTable, hash: u32) -> u8 {
    let bucket = hash as usize & (FLOW_TABLE_BUCKETS - 1);
    let owner = table.slots[bucket];
    if in_service(owner) {
        return owner;
    }
    let backup = table.backups[bucket];
    if in_service(backup) {
        return backup;
    }
    any_in_service(table, hash)
}

#[inline(always)]
fn send_cast(ctx: &TcContext, group: &GroupConfig, family: Family, broadcast: bool) -> i32 {
    let mut slot = match family {
        Family::V4 => group.cast_slot_v4,
        Family::V6 => group.cast_slot_v6,
    };
    if !in_service(slot as u8) {
        // Until ipmpd names the next cast member, any member up will do.
        slot = flow_table().map_or(NO_MEMBER, |t| any_in_service(t, 0)) as u32;
    }
    let Some(member) = MEMBERS.get(slot) else {
        return drop(DROP_NO_ACTIVE_MEMBER);
    };
    let (ifindex, mac) = (member.ifindex, member.mac);
    if count_tx(ctx, slot).is_none() {
        return drop(DROP_NO_ACTIVE_MEMBER);
    }
    // The frame must carry the member's own source MAC. A multicast
    // destination MAC is already right; a broadcast one is the group
    // interface's own (NOARP) and becomes all-ones.
    let stored = if broadcast {
        let mut header = BROADCAST_HEADER;
        header[6..].copy_from_slice(&mac);
        ctx.store(0, &header, 0)
    } else {
        ctx.store(6, &mac, 0)
    };
    if stored.is_err() {
        return drop(DROP_MALFORMED);
    }
    // SAFETY: plain helper call.
    match unsafe { bpf_redirect(ifindex, 0) } as i32 {
        TC_ACT_REDIRECT => TC_ACT_REDIRECT,
        _ => drop(DROP_NO_ACTIVE_MEMBER),
    }
}

/// Counts the packet on the member in `slot` and returns its ifindex, or
/// `None` when the slot names no member.
#[inline(always)]
fn count_tx(ctx: &TcContext, slot: u32) -> Option<u32> {
    if slot == NO_MEMBER as u32 {
        return None;
    }
    let ifindex = MEMBERS.get(slot)?.ifindex;
    if ifindex == 0 {
        return None;
    }
    if let Some(stats) = member_stats(slot) {
        stats.tx_packets += 1;
        stats.tx_bytes += ctx.len() as u64;
    }
    Some(ifindex)
}
