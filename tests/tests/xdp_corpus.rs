//! The member XDP program against hostile and malformed frames, run in the
//! kernel with BPF_PROG_TEST_RUN: for each frame, the verdict and the frame
//! the program leaves (an answer, or the request untouched).
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use ipmp::{
    dataplane::{self, GroupDataplane, PinnedCounters},
    probe::socket::{checksum, monotonic_ns},
};
use ipmp_common::{data_address_key, probe_identifier, probe_token, GroupConfig, Member};
use ipmp_tests::netns::unique;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// The member under test (slot 0) and a peer on its link.
const MEMBER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa0];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const FOREIGN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x99];
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const DATA_V4: [u8; 4] = [192, 0, 2, 200];
const TEST_V4: [u8; 4] = [192, 0, 2, 201];
const PEER_V4: [u8; 4] = [192, 0, 2, 10];
const DATA_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0,
];
const PEER_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const PROBE_KEY: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

/// One group's dataplane with member `m0` in slot 0, which is not the cast
/// member (slot 1 is), answering echo; pins removed on drop.
struct Bench {
    dataplane: Option<GroupDataplane>,
    pin_dir: PathBuf,
}

impl Bench {
    fn new() -> Result<Bench> {
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/{}", unique("corpus")));
        dataplane::namespace_pin_dir(&pin_dir)?;
        let mut bench = Bench {
            dataplane: None,
            pin_dir: pin_dir.clone(),
        };
        let mut dp = GroupDataplane::load(&pin_dir)?;
        let mut member = Member {
            ifindex: 1,
            mac: MEMBER_MAC,
            test_v4: u32::from_ne_bytes(TEST_V4),
            ..Member::default()
        };
        member.name[..2].copy_from_slice(b"m0");
        dp.set_member(0, &member)?;
        dp.set_group(&GroupConfig {
            cast_slot_v4: 1,
            cast_slot_v6: 1,
            probe_key: PROBE_KEY,
            answer_echo: 1,
            ..GroupConfig::default()
        })?;
        dp.bind_data_address(data_address_key(DATA_V4.into()), 0)?;
        dp.bind_data_address(data_address_key(DATA_V6.into()), 0)?;
        dp.load_member("m0", 0)?;
        bench.dataplane = Some(dp);
        Ok(bench)
    }

    fn run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        self.dataplane
            .as_mut()
            .context("no dataplane")?
            .run_member_once("m0", frame)
    }

    /// Checks that `frame` is passed to the kernel as it came.
    fn passes(&mut self, what: &str, frame: &[u8]) -> Result<()> {
        let (verdict, out) = self.run(frame)?;
        ensure!(verdict == XDP_PASS, "{what}: verdict {verdict}, not pass");
        ensure!(out == frame, "{what}: the passed frame was changed");
        Ok(())
    }

    /// Checks that `frame` is answered (XDP_TX) from the member's MAC to
    /// the peer's, and returns the answer.
    fn answers(&mut self, what: &str, frame: &[u8]) -> Result<Vec<u8>> {
        let (verdict, out) = self.run(frame)?;
        ensure!(verdict == XDP_TX, "{what}: verdict {verdict}, not answered");
        ensure!(
            out[0..6] == PEER_MAC && out[6..12] == MEMBER_MAC,
            "{what}: answer MACs {:02x?}",
            &out[..12]
        );
        Ok(out)
    }

    fn counters(&self) -> Result<ipmp_common::MemberCounters> {
        PinnedCounters::open(&self.pin_dir)?.member(0)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        drop(self.dataplane.take());
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (no options) with its checksum, then `payload`.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

/// An ICMP echo message of `kind` with 56 bytes of data, checksummed.
fn icmp_echo(kind: u8) -> Vec<u8> {
    let mut m = vec![0u8; 64];
    m[0] = kind;
    m[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    m[6..8].copy_from_slice(&1u16.to_be_bytes());
    for (i, b) in m[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

fn echo_v4(dst_mac: [u8; 6], src: [u8; 4]) -> Vec<u8> {
    ethernet(
        dst_mac,
        PEER_MAC,
        0x0800,
        &ipv4(src, DATA_V4, 1, &icmp_echo(8)),
    )
}

/// An IPv6 header then an ICMPv6 message whose checksum covers the pseudo
/// header (RFC 8200 8.1).
fn ipv6_icmp(src: [u8; 16], dst: [u8; 16], hop_limit: u8, mut message: Vec<u8>) -> Vec<u8> {
    message[2..4].copy_from_slice(&[0, 0]);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&(message.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&message);
    let sum = checksum(&pseudo);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(message.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[58, hop_limit]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(&message);
    ip
}

fn echo_v6(dst_mac: [u8; 6], src: [u8; 16]) -> Vec<u8> {
    ethernet(
        dst_mac,
        PEER_MAC,
        0x86dd,
        &ipv6_icmp(src, DATA_V6, 64, icmp_echo(128)),
    )
}

fn arp_request(dst_mac: [u8; 6], sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4, 0, 1];
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    a.resize(46, 0); // Ethernet padding to 60 bytes
    ethernet(dst_mac, sha, 0x0806, &a)
}

/// A neighbour solicitation for the IPv6 data address with the source
/// link-layer address option.
fn solicitation(dst_mac: [u8; 6]) -> Vec<u8> {
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&DATA_V6);
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&PEER_MAC);
    let solicited_node = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 2, 0];
    ethernet(
        dst_mac,
        PEER_MAC,
        0x86dd,
        &ipv6_icmp(PEER_V6, solicited_node, 255, ns),
    )
}

/// `frame` with an 802.1Q (or other) tag of VLAN 5 after the MACs.
fn tagged(frame: &[u8], tpid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&5u16.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// `frame` (IPv4) with its IP header changed by `change`, checksum redone:
/// the header is wrong only in what `change` did.
fn ipv4_header_changed(mut frame: Vec<u8>, change: impl FnOnce(&mut [u8])) -> Vec<u8> {
    change(&mut frame[14..34]);
    frame[24..26].copy_from_slice(&[0, 0]);
    let sum = checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// The Internet checksum of `data` with its checksum in place: 0 if right.
fn verifies(data: &[u8]) -> bool {
    checksum(data) == 0
}

#[test]
fn echo_requests_are_answered_only_when_ours_and_well_formed() -> Result<()> {
    let mut bench = Bench::new()?;

    // A proper request: answered in place, from the member's MAC.
    let request = echo_v4(MEMBER_MAC, PEER_V4);
    let reply = bench.answers("a proper echo request", &request)?;
    ensure!(
        reply[26..30] == DATA_V4 && reply[30..34] == PEER_V4,
        "reply addresses"
    );
    ensure!(reply[34] == 0, "reply type {}", reply[34]);
    ensure!(verifies(&reply[14..34]), "reply IPv4 header checksum wrong");
    ensure!(verifies(&reply[34..]), "reply ICMP checksum wrong");
    ensure!(
        reply[42..] == request[42..],
        "reply data differs from the request's"
    );

    // Not for this member's MAC: the switch would learn a foreign MAC.
    bench.passes("echo to a foreign MAC", &echo_v4(FOREIGN_MAC, PEER_V4))?;
    // Broadcast is data for the cast member only: dropped here, unanswered.
    let broadcast = echo_v4(BROADCAST_MAC, PEER_V4);
    let (verdict, out) = bench.run(&broadcast)?;
    ensure!(
        verdict == XDP_DROP && out == broadcast,
        "echo to the broadcast MAC: verdict {verdict}"
    );
    // From a group MAC (no host sends from one).
    let mut from_group = echo_v4(MEMBER_MAC, PEER_V4);
    from_group[6] |= 1;
    bench.passes("echo from a multicast MAC", &from_group)?;
    // Martian sources: the kernel would not answer them.
    for src in [
        [255, 255, 255, 255],
        [224, 0, 0, 1],
        [127, 0, 0, 1],
        [0, 0, 0, 0],
        [240, 0, 0, 1],
    ] {
        bench.passes(&format!("echo from {src:?}"), &echo_v4(MEMBER_MAC, src))?;
    }
    // Header length 3 (shorter than a header), 6 (options), 15.
    for vihl in [0x43, 0x46, 0x4f] {
        let bad = ipv4_header_changed(echo_v4(MEMBER_MAC, PEER_V4), |ip| ip[0] = vihl);
        bench.passes(&format!("echo with version/IHL {vihl:#x}"), &bad)?;
    }
    // Total length beyond the frame, and too short for an echo header.
    for total in [2000u16, 24] {
        let bad = ipv4_header_changed(echo_v4(MEMBER_MAC, PEER_V4), |ip| {
            ip[2..4].copy_from_slice(&total.to_be_bytes())
        });
        bench.passes(&format!("echo with total length {total}"), &bad)?;
    }
    // Bad checksums: the kernel drops these, so they get no answer.
    let mut bad = echo_v4(MEMBER_MAC, PEER_V4);
    bad[36] ^= 0x55;
    bench.passes("echo with a bad ICMP checksum", &bad)?;
    let mut bad = echo_v4(MEMBER_MAC, PEER_V4);
    bad[24] ^= 0x55;
    bench.passes("echo with a bad IPv4 header checksum", &bad)?;
    // Truncated: the frame ends inside the ICMP data the header announces.
    let request = echo_v4(MEMBER_MAC, PEER_V4);
    bench.passes("truncated echo", &request[..60])?;

    // IPv6: answered when proper, passed otherwise.
    let request = echo_v6(MEMBER_MAC, PEER_V6);
    let reply = bench.answers("a proper ICMPv6 echo request", &request)?;
    ensure!(
        reply[22..38] == DATA_V6 && reply[38..54] == PEER_V6,
        "ICMPv6 reply addresses"
    );
    ensure!(reply[54] == 129, "ICMPv6 reply type {}", reply[54]);
    let mut pseudo = reply[22..54].to_vec();
    pseudo.extend_from_slice(&((reply.len() - 54) as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&reply[54..]);
    ensure!(verifies(&pseudo), "ICMPv6 reply checksum wrong");
    bench.passes(
        "ICMPv6 echo to a foreign MAC",
        &echo_v6(FOREIGN_MAC, PEER_V6),
    )?;
    let mut multicast_source = PEER_V6;
    multicast_source[0] = 0xff;
    bench.passes(
        "ICMPv6 echo from a multicast source",
        &echo_v6(MEMBER_MAC, multicast_source),
    )?;
    let mut loopback = [0u8; 16];
    loopback[15] = 1;
    bench.passes("ICMPv6 echo from ::1", &echo_v6(MEMBER_MAC, loopback))?;
    let mut bad = echo_v6(MEMBER_MAC, PEER_V6);
    bad[60] ^= 0x55;
    bench.passes("ICMPv6 echo with a bad checksum", &bad)?;
    let mut bad = echo_v6(MEMBER_MAC, PEER_V6);
    bad[18..20].copy_from_slice(&4000u16.to_be_bytes());
    bench.passes("ICMPv6 echo with a payload length beyond the frame", &bad)?;

    let answered = bench.counters()?.echo_answered;
    ensure!(
        answered == 2,
        "{answered} echo requests counted as answered, not 2"
    );
    Ok(())
}

#[test]
fn neighbour_requests_are_answered_only_when_ours() -> Result<()> {
    let mut bench = Bench::new()?;
    let request = arp_request(BROADCAST_MAC, PEER_MAC, PEER_V4, DATA_V4);
    let reply = bench.answers("a broadcast ARP request", &request)?;
    ensure!(reply[20..22] == [0, 2], "not an ARP reply");
    ensure!(
        reply[22..28] == MEMBER_MAC && reply[28..32] == DATA_V4,
        "ARP reply sender"
    );
    ensure!(
        reply[32..38] == PEER_MAC && reply[38..42] == PEER_V4,
        "ARP reply target"
    );
    // Unicast to us (a peer re-checking its entry) is answered too.
    bench.answers(
        "a unicast ARP request to us",
        &arp_request(MEMBER_MAC, PEER_MAC, PEER_V4, DATA_V4),
    )?;
    bench.passes(
        "ARP request to a foreign MAC",
        &arp_request(FOREIGN_MAC, PEER_MAC, PEER_V4, DATA_V4),
    )?;
    let mut group_sender = PEER_MAC;
    group_sender[0] |= 1;
    bench.passes(
        "ARP request from a multicast sender",
        &arp_request(BROADCAST_MAC, group_sender, PEER_V4, DATA_V4),
    )?;
    for spa in [[127, 0, 0, 1], [224, 0, 0, 1], [255, 255, 255, 255]] {
        bench.passes(
            &format!("ARP request from {spa:?}"),
            &arp_request(BROADCAST_MAC, PEER_MAC, spa, DATA_V4),
        )?;
    }
    let request = arp_request(BROADCAST_MAC, PEER_MAC, PEER_V4, DATA_V4);
    bench.passes("short ARP", &request[..14 + 20])?;

    let advert = bench.answers(
        "a neighbour solicitation",
        &solicitation([0x33, 0x33, 0xff, 0, 2, 0]),
    )?;
    ensure!(advert[54] == 136, "not an advertisement");
    bench.passes("solicitation to a foreign MAC", &solicitation(FOREIGN_MAC))?;
    bench.passes(
        "solicitation to another solicited-node group",
        &solicitation([0x33, 0x33, 0xff, 0, 9, 9]),
    )?;
    Ok(())
}

#[test]
fn vlan_tagged_frames_go_to_the_kernel_untouched() -> Result<()> {
    let mut bench = Bench::new()?;
    let arp = arp_request(BROADCAST_MAC, PEER_MAC, PEER_V4, DATA_V4);
    // A broadcast datagram: dropped untagged (m0 is not the cast member).
    let udp = ethernet(
        BROADCAST_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_V4, [255; 4], 17, &[0; 16]),
    );
    let (verdict, _) = bench.run(&udp)?;
    ensure!(
        verdict == XDP_DROP,
        "untagged broadcast off the cast member: verdict {verdict}"
    );
    let before = bench.counters()?;
    for tpid in [0x8100, 0x88a8, 0x9100] {
        bench.passes(
            &format!("ARP request tagged {tpid:#x}"),
            &tagged(&arp, tpid),
        )?;
        bench.passes(&format!("broadcast tagged {tpid:#x}"), &tagged(&udp, tpid))?;
        bench.passes(
            &format!("echo tagged {tpid:#x}"),
            &tagged(&echo_v4(MEMBER_MAC, PEER_V4), tpid),
        )?;
    }
    let after = bench.counters()?;
    ensure!(
        after.cast_dropped == before.cast_dropped
            && after.neighbour_answered == before.neighbour_answered,
        "tagged frames were counted as dropped or answered"
    );
    Ok(())
}

#[test]
fn malformed_frames_are_passed() -> Result<()> {
    let mut bench = Bench::new()?;
    let echo = echo_v4(MEMBER_MAC, PEER_V4);
    bench.passes("Ethernet header only", &echo[..14])?;
    bench.passes("IPv4 cut in its header", &echo[..14 + 12])?;
    let v6 = echo_v6(MEMBER_MAC, PEER_V6);
    bench.passes("IPv6 cut in its header", &v6[..14 + 30])?;
    bench.passes("ICMPv6 cut in its header", &v6[..14 + 40 + 2])?;
    Ok(())
}

/// A reply counts only with the token of its own probe: the seen probe's
/// token under another sequence number or send time is rejected.
#[test]
fn probe_replies_need_the_token_of_their_probe() -> Result<()> {
    let mut bench = Bench::new()?;
    let identifier = probe_identifier(0);
    let reply = |seq: u16, sent_ns: u64, token: u64| {
        let mut m = vec![0u8; 32];
        m[4..6].copy_from_slice(&identifier.to_be_bytes());
        m[6..8].copy_from_slice(&seq.to_be_bytes());
        m[8..16].copy_from_slice(&sent_ns.to_ne_bytes());
        m[16..24].copy_from_slice(&token.to_ne_bytes());
        m[24..28].copy_from_slice(&1u32.to_ne_bytes());
        let sum = checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        ethernet(MEMBER_MAC, PEER_MAC, 0x0800, &ipv4(PEER_V4, TEST_V4, 1, &m))
    };
    let sent = monotonic_ns();
    let token = probe_token(&PROBE_KEY, identifier, 7, 1, sent);
    let (verdict, _) = bench.run(&reply(7, sent, token))?;
    ensure!(
        verdict == XDP_DROP,
        "our own probe's reply got verdict {verdict}"
    );
    let rejected = bench.counters()?.probe_replies_rejected;
    bench.passes("the seen token for the next probe", &reply(8, sent, token))?;
    bench.passes(
        "the seen token with a later send time",
        &reply(7, sent + 1_000_000, token),
    )?;
    bench.passes("a made-up token", &reply(7, sent, 0x0bad_c0ff_ee00_0000))?;
    let now_rejected = bench.counters()?.probe_replies_rejected;
    ensure!(
        now_rejected == rejected + 3,
        "rejected replies counted {rejected} -> {now_rejected}, not 3 more"
    );
    Ok(())
}
