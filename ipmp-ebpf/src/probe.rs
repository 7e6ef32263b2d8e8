//! Our probes' replies, recognised at the driver: an ICMP or ICMPv6 echo
//! reply to the member's test address with our identifier and the token
//! of its probe (a keyed hash only ipmpd and XDP can compute) is timed
//! here (the kernel's clock, no scheduling delay), handed to ipmpd on the
//! ring buffer and dropped. Anything else that looks like a reply
//! to the test address goes on to the kernel and is counted as rejected.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use ipmp_common::{
    probe_identifier, probe_token,
    wire::{
        link_local_v6, ETH_HLEN, ICMPV6_ECHO_REPLY, ICMP_ECHOREPLY, IPPROTO_ICMP, IPPROTO_ICMPV6,
        IPV4_FRAGMENT_MASK, IPV6_HLEN,
    },
    ProbePayload, ProbeReply,
};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::{
    maps::PROBE_REPLIES,
    member::Receiver,
    parse::{Frame, Ip},
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

/// What the packet under `ip` is to the prober.
#[inline(always)]
pub fn check(frame: Frame, ip: &Ip, receiver: Receiver, key: &[u64; 2]) -> Reply {
    match ip {
        Ip::V4(ip) => check_v4(frame, ip, receiver, key),
        Ip::V6(ip) => check_v6(frame, ip, receiver, key),
    }
}

#[inline(always)]
fn check_v4(frame: Frame, ip: &Ipv4Hdr, receiver: Receiver, key: &[u64; 2]) -> Reply {
    let member = receiver.member;
    if ip.proto != IPPROTO_ICMP
        || member.test_v4 == 0
        || u32::from_ne_bytes(ip.dst_addr) != member.test_v4
    {
        return Reply::Other;
    }
    let l4 = ETH_HLEN + ((ip.vihl & 0x0f) as usize) * 4;
    let fragment = u16::from_be_bytes(ip.frags) & IPV4_FRAGMENT_MASK != 0;
    let mut from = [0u8; 16];
    from[..4].copy_from_slice(&ip.src_addr);
    let probed = Probed {
        slot: receiver.slot,
        from,
        family: 4,
    };
    echo_reply(frame, l4, ICMP_ECHOREPLY, fragment, &probed, key)
}

#[inline(always)]
fn check_v6(frame: Frame, ip: &Ipv6Hdr, receiver: Receiver, key: &[u64; 2]) -> Reply {
    let member = receiver.member;
    // Replies come straight to the link-local address: no extension
    // headers (and so no routing header) to walk.
    if ip.next_hdr != IPPROTO_ICMPV6 || member.test_v6[0] == 0 || ip.dst_addr != member.test_v6 {
        return Reply::Other;
    }
    let probed = Probed {
        slot: receiver.slot,
        from: ip.src_addr,
        family: 6,
    };
    let suspect = !link_local_v6(&ip.src_addr);
    echo_reply(
        frame,
        ETH_HLEN + IPV6_HLEN,
        ICMPV6_ECHO_REPLY,
        suspect,
        &probed,
        key,
    )
}

/// Whose probe a reply answers, as ipmpd is told: the probing member's
/// slot, the target that answered, and its family (4 or 6).
struct Probed {
    slot: u32,
    from: [u8; 16],
    family: u8,
}

/// Checks the echo reply at `l4` and, when it is ours, reports it.
/// `suspect` marks a reply that cannot be ours whatever it carries.
#[inline(always)]
fn echo_reply(
    frame: Frame,
    l4: usize,
    reply_kind: u8,
    suspect: bool,
    probed: &Probed,
    key: &[u64; 2],
) -> Reply {
    let Ok(echo) = frame.header::<Echo>(l4) else {
        return Reply::Rejected;
    };
    if echo.kind != reply_kind || echo.code != 0 {
        return Reply::Other;
    }
    let identifier = u16::from_be_bytes(echo.id);
    if suspect || identifier != probe_identifier(probed.slot as u8) {
        return Reply::Rejected;
    }
    let Ok(payload) = frame.read::<ProbePayload>(l4 + core::mem::size_of::<Echo>()) else {
        return Reply::Rejected;
    };
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
        from: probed.from,
        slot: probed.slot,
        seq,
        family: probed.family,
        kind: payload.kind as u8,
    };
    // A full ring buffer loses the reply; the detector counts it lost.
    let _ = PROBE_REPLIES.output::<ProbeReply>(&reply, 0);
    Reply::Ours(reply.rtt_ns)
}
