//! Our probes' replies, recognised at the driver: an ICMP or ICMPv6 echo
//! reply to the member's test address with our identifier and the token
//! of its probe (a keyed hash only ipmpd and XDP can compute) is timed here (the kernel's clock, no scheduling delay), handed to ipmpd
//! on the ring buffer and dropped. Anything else that looks like a reply
//! to the test address goes on to the kernel and is counted as rejected.
use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use ipmp_common::{probe_identifier, probe_token, Member, ProbePayload, ProbeReply};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
};

use crate::{
    maps::PROBE_REPLIES,
    parse::{ptr_at, PROTO_ICMP, PROTO_ICMPV6},
};

pub enum Reply {
    /// Ours, with its round-trip time in ns: handed to ipmpd; drop it.
    Ours(u64),
    /// An echo reply to the test address that is not ours: pass, count.
    Rejected,
    /// Not an echo reply to the test address: pass.
    Other,
}

/// ICMP and ICMPv6 echo messages share this header.
#[repr(C)]
struct Echo {
    kind: u8,
    code: u8,
    _check: [u8; 2],
    id: [u8; 2],
    seq: [u8; 2],
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REPLY: u8 = 129;

#[inline(always)]
pub fn check(ctx: &XdpContext, slot: u32, member: &Member, key: &[u64; 2]) -> Reply {
    let (start, end) = (ctx.data(), ctx.data_end());
    let Some(eth) = ptr_at::<EthHdr>(start, end, 0) else {
        return Reply::Other;
    };
    // SAFETY: bounds checked by ptr_at.
    match unsafe { &*eth }.ether_type() {
        Ok(EtherType::Ipv4) => {
            let Some(ip) = ptr_at::<Ipv4Hdr>(start, end, EthHdr::LEN) else {
                return Reply::Other;
            };
            // SAFETY: bounds checked by ptr_at.
            let ip = unsafe { &*ip };
            if ip.proto != PROTO_ICMP
                || member.test_v4 == 0
                || u32::from_ne_bytes(ip.dst_addr) != member.test_v4
            {
                return Reply::Other;
            }
            let l4 = EthHdr::LEN + ((ip.vihl & 0x0f) as usize) * 4;
            let fragment = u16::from_be_bytes(ip.frags) & 0x3fff != 0;
            let mut from = [0u8; 16];
            from[..4].copy_from_slice(&ip.src_addr);
            echo_reply(
                start,
                end,
                l4,
                ICMP_ECHO_REPLY,
                fragment,
                slot,
                key,
                from,
                4,
            )
        }
        Ok(EtherType::Ipv6) => {
            let Some(ip) = ptr_at::<Ipv6Hdr>(start, end, EthHdr::LEN) else {
                return Reply::Other;
            };
            // SAFETY: bounds checked by ptr_at.
            let ip = unsafe { &*ip };
            // Replies come straight to the link-local address: no extension
            // headers (and so no routing header) to walk.
            if ip.next_hdr != PROTO_ICMPV6
                || member.test_v6[0] == 0
                || ip.dst_addr != member.test_v6
            {
                return Reply::Other;
            }
            let link_local = ip.src_addr[0] == 0xfe && ip.src_addr[1] & 0xc0 == 0x80;
            let l4 = EthHdr::LEN + Ipv6Hdr::LEN;
            echo_reply(
                start,
                end,
                l4,
                ICMPV6_ECHO_REPLY,
                !link_local,
                slot,
                key,
                ip.src_addr,
                6,
            )
        }
        _ => Reply::Other,
    }
}

/// Checks the echo reply at `l4` and, when it is ours, reports it.
/// `suspect` marks a reply that cannot be ours whatever it carries.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn echo_reply(
    start: usize,
    end: usize,
    l4: usize,
    reply_kind: u8,
    suspect: bool,
    slot: u32,
    key: &[u64; 2],
    from: [u8; 16],
    family: u8,
) -> Reply {
    let Some(echo) = ptr_at::<Echo>(start, end, l4) else {
        return Reply::Rejected;
    };
    // SAFETY: bounds checked by ptr_at.
    let echo = unsafe { &*echo };
    if echo.kind != reply_kind || echo.code != 0 {
        return Reply::Other;
    }
    let identifier = u16::from_be_bytes(echo.id);
    if suspect || identifier != probe_identifier(slot as u8) {
        return Reply::Rejected;
    }
    let Some(payload) = ptr_at::<ProbePayload>(start, end, l4 + core::mem::size_of::<Echo>())
    else {
        return Reply::Rejected;
    };
    // SAFETY: bounds checked by ptr_at; the payload may be unaligned.
    let payload = unsafe { payload.read_unaligned() };
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let seq = u16::from_be_bytes(echo.seq);
    let token = probe_token(key, identifier, seq, payload.kind, payload.sent_ns);
    if payload.token != token || payload.sent_ns > now {
        return Reply::Rejected;
    }
    let reply = ProbeReply {
        rtt_ns: now - payload.sent_ns,
        sent_ns: payload.sent_ns,
        from,
        slot,
        seq,
        family,
        kind: payload.kind as u8,
    };
    // A full ring buffer loses the reply; the detector counts it lost.
    let _ = PROBE_REPLIES.output::<ProbeReply>(&reply, 0);
    Reply::Ours(reply.rtt_ns)
}
