//! Probe-based failure detection on the tutorial's network: what a link
//! light cannot see. Probes leave from test addresses; XDP times their
//! replies.
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    http::{get, sample},
    netns::unique,
    topology::{Topology, DATA_V4, MEMBERS, PEER_V4, ROUTER_V4},
    traffic::{internet_checksum, parse_mac},
};

const METRICS: &str = "127.0.0.1:9477";
/// Generous: detection itself is measured by the bench.
const DETECTION: Duration = Duration::from_secs(20);

/// The tutorial's probe-based configuration: a test address per member.
fn config(fdt_ms: u64, targets: &[&str], v4_test_addresses: bool) -> String {
    let c = IpmpToml::tutorial()
        .fdt_ms(fdt_ms)
        .metrics(METRICS)
        .targets(targets);
    match v4_test_addresses {
        true => c.test_addresses(),
        false => c,
    }
    .render()
}

fn wait_probe(d: &Daemon, member: &str, probe: &str) -> Result<()> {
    d.wait_for(&format!("{member} probe {probe}"), DETECTION, |d| {
        Ok(d.member(member)?["probe"] == probe)
    })
}

fn ping_router(t: &Topology) -> Result<bool> {
    Ok(t.host
        .command("ping")
        .args(["-c", "1", "-W", "2", "-I", DATA_V4, ROUTER_V4])
        .output()?
        .status
        .success())
}

/// Cutting cable 4 leaves e1000g0 and e1000g1 with their links up and no
/// way to the router: only probes notice, and traffic moves to rge0.
#[test]
fn cutting_the_cable_between_the_switches_fails_the_members_behind_it() -> Result<()> {
    let t = Topology::build(&unique("pr"))?;
    let d = Daemon::start(&t.host, &config(1000, &[], true))?;
    // Solaris administrators name probe targets with routes: the router is
    // the default route's gateway, inside the test addresses' prefix.
    t.host
        .ip("route add default via 192.0.2.1 dev production0")?;
    for m in MEMBERS {
        wait_probe(&d, m, "ok")?;
        d.wait_acked(&t.host, METRICS, m)?;
    }
    let targets = d.stat("-t")?;
    ensure!(
        targets.to_string().contains("192.0.2.1"),
        "router not a target: {targets}"
    );
    ensure!(
        targets.to_string().contains("routes"),
        "mode not routes: {targets}"
    );

    t.switch_a.ip("link set c4 down")?;
    for m in ["e1000g0", "e1000g1"] {
        wait_probe(&d, m, "failed")?;
        let row = d.member(m)?;
        ensure!(
            row["link"] == "up" && row["state"] == "failed" && row["active"] == "no",
            "{m}: {row}"
        );
    }
    ensure!(d.member("rge0")?["state"] == "ok", "rge0 failed too");
    d.wait_group("degraded")?;
    ensure!(
        d.log_text()
            .contains("IP interface failure detected on e1000g0 of group production0"),
        "no failure message"
    );
    ensure!(ping_router(&t)?, "the router is unreachable through rge0");

    t.switch_a.ip("link set c4 up")?;
    for m in ["e1000g0", "e1000g1"] {
        wait_probe(&d, m, "ok")?;
        d.wait_member(m, "state", "ok")?;
    }
    d.wait_group("ok")?;
    ensure!(
        d.log_text()
            .contains("IP interface repair detected on e1000g1 of group production0"),
        "no repair message"
    );
    Ok(())
}

/// Without a router, hosts answering an all-hosts echo become targets.
#[test]
fn multicast_discovery_finds_host_targets() -> Result<()> {
    let t = Topology::build(&unique("pr"))?;
    for ns in [&t.router, &t.peer] {
        ns.sysctl("net.ipv4.icmp_echo_ignore_broadcasts", "0")?;
    }
    let d = Daemon::start(&t.host, &config(1000, &[], true))?;
    d.wait_for("two discovered targets on rge0", DETECTION, |d| {
        let rows = d.stat("-t")?;
        let row = rows
            .as_array()
            .and_then(|r| r.iter().find(|r| r["interface"] == "rge0").cloned())
            .unwrap_or_default();
        let targets = row["targets"].as_str().unwrap_or_default();
        Ok(row["mode"] == "multicast"
            && targets.contains("192.0.2.1")
            && targets.contains("192.0.2.10"))
    })?;
    for m in MEMBERS {
        wait_probe(&d, m, "ok")?;
    }
    Ok(())
}

/// The tutorial's probe-based group with `target` as its only target, once
/// e1000g0 has had a probe acknowledged.
fn probing_e1000g0(target: &str) -> Result<(Topology, Daemon)> {
    let t = Topology::build(&unique("pr"))?;
    let d = Daemon::start(&t.host, &config(1000, &[target], true))?;
    wait_probe(&d, "e1000g0", "ok")?;
    d.wait_acked(&t.host, METRICS, "e1000g0")?;
    Ok((t, d))
}

/// e1000g0's rejected probe replies so far.
fn rejected_replies(t: &Topology) -> Result<f64> {
    let series = "ipmp_probe_replies_rejected_total{group=\"production0\",interface=\"e1000g0\"}";
    sample(&get(&t.host, METRICS, "/metrics")?, series).context("no rejected counter")
}

/// Echo replies with our identifier but a wrong token, or from a host that
/// is not a target, are never acknowledgements.
#[test]
fn forged_replies_are_rejected() -> Result<()> {
    let (t, d) = probing_e1000g0(ROUTER_V4)?;
    let before = rejected_replies(&t)?;

    // The peer forges replies to e1000g0's test address (slot 0) with a
    // wrong token, all the while the real target goes silent. They go
    // straight to e1000g0's MAC: any member may answer ARP for the test
    // address until the dataplane answers ARP itself.
    let mac = t.mac("e1000g0")?;
    let forger = t
        .peer
        .spawn(move || forge_replies(&mac, Duration::from_secs(12)));
    t.router.ip("link set eth0 down")?;
    wait_probe(&d, "e1000g0", "failed")?;
    ipmp_tests::netns::join(forger)?;
    let after = rejected_replies(&t)?;
    ensure!(
        after > before,
        "rejected replies did not rise ({before} -> {after})"
    );
    Ok(())
}

/// Sends echo replies with e1000g0's probe identifier and a wrong token to
/// its test address and MAC, every 20 ms for `how_long`.
fn forge_replies(mac: &str, how_long: Duration) -> Result<()> {
    let dst = parse_mac(mac)?;
    let sniffer = ipmp_tests::traffic::Sniffer::open("eth0")?;
    let until = std::time::Instant::now() + how_long;
    let mut seq = 1u16;
    // A probe's payload: its send time, then its token (a wrong one).
    let mut payload = [0u8; 24];
    payload[8..16].copy_from_slice(&0xbad_c0ffeeu64.to_ne_bytes());
    while std::time::Instant::now() < until {
        sniffer.send_frame(&echo_reply_frame(&dst, &echo_reply(seq, &payload)))?;
        seq = seq.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A host on the link that saw one probe cannot acknowledge later ones it
/// never saw: it replays the seen probe's payload with the send times and
/// sequence numbers of the probes to come, while the real target is
/// silent. Each probe carries its own token, so the replies are rejected
/// and counted, and the member fails as it should.
#[test]
fn replies_to_probes_never_seen_are_rejected() -> Result<()> {
    // The peer is the target: it sees e1000g0's probes.
    let (t, d) = probing_e1000g0(PEER_V4)?;
    let before = rejected_replies(&t)?;
    let mac = t.mac("e1000g0")?;
    let forger = t
        .peer
        .spawn(move || replay_replies(&mac, Duration::from_secs(15)));
    wait_probe(&d, "e1000g0", "failed")?;
    let forged = ipmp_tests::netns::join(forger)?;
    ensure!(forged > 0, "the forger sent nothing");
    let after = rejected_replies(&t)?;
    ensure!(
        after >= before + 10.0,
        "rejected replies did not rise enough ({before} -> {after}, {forged} forged)"
    );
    Ok(())
}

/// Waits for one of e1000g0's probes to the peer, silences the peer's own
/// echo replies, then for `how_long` answers every probe that may come
/// next (the next 16 sequence numbers, every 5 ms) with the seen probe's
/// payload, its send time moved on by the time elapsed since. Returns the
/// number of replies sent.
fn replay_replies(mac: &str, how_long: Duration) -> Result<u32> {
    let dst = parse_mac(mac)?;
    let sniffer = ipmp_tests::traffic::Sniffer::open("eth0")?;
    let identifier = ipmp_common::probe_identifier(0).to_be_bytes();
    let mut buf = [0u8; 2048];
    let seen_until = std::time::Instant::now() + Duration::from_secs(10);
    let (payload, seq, seen_at) = loop {
        ensure!(
            std::time::Instant::now() < seen_until,
            "no probe of e1000g0 reached the peer"
        );
        let Some(n) = sniffer.next_frame(&mut buf) else {
            continue;
        };
        let frame = &buf[..n];
        // IPv4, ICMP echo request from 192.0.2.201 with e1000g0's identifier.
        if n >= 14 + 20 + 8 + 24
            && frame[12..14] == [0x08, 0x00]
            && frame[14] == 0x45
            && frame[23] == 1
            && frame[26..30] == [192, 0, 2, 201]
            && frame[34] == 8
            && frame[38..40] == identifier
        {
            let mut payload = [0u8; 24];
            payload.copy_from_slice(&frame[42..66]);
            let seq = u16::from_be_bytes([frame[40], frame[41]]);
            break (payload, seq, std::time::Instant::now());
        }
    };
    std::fs::write("/proc/sys/net/ipv4/icmp_echo_ignore_all", "1")?;
    let sent_ns = u64::from_ne_bytes(payload[..8].try_into()?);
    let until = std::time::Instant::now() + how_long;
    let mut forged = 0;
    while std::time::Instant::now() < until {
        let now_ns = sent_ns + seen_at.elapsed().as_nanos() as u64;
        // A send time just before now, as the probe to come would carry.
        let mut payload = payload;
        payload[..8].copy_from_slice(&now_ns.saturating_sub(1_000_000).to_ne_bytes());
        for ahead in 1..=16u16 {
            let icmp = echo_reply(seq.wrapping_add(ahead), &payload);
            sniffer.send_frame(&echo_reply_frame(&dst, &icmp))?;
            forged += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(forged)
}

/// An ICMP echo reply with e1000g0's probe identifier, `seq` and
/// `payload`.
fn echo_reply(seq: u16, payload: &[u8; 24]) -> [u8; 32] {
    let mut icmp = [0u8; 32];
    icmp[4..6].copy_from_slice(&ipmp_common::probe_identifier(0).to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    icmp[8..32].copy_from_slice(payload);
    let sum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    icmp
}

/// An IPv4 frame from the peer (192.0.2.10) to e1000g0's test address.
fn echo_reply_frame(dst_mac: &[u8], icmp: &[u8]) -> Vec<u8> {
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 1;
    ip[12..16].copy_from_slice(&[192, 0, 2, 10]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 201]);
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::with_capacity(14 + 20 + icmp.len());
    frame.extend_from_slice(dst_mac);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(icmp);
    frame
}

/// A member without a test address probes over IPv6 from its link-local
/// address when the group has an IPv6 target.
#[test]
fn ipv6_only_probing_uses_the_link_local_address() -> Result<()> {
    let t = Topology::build(&unique("pr"))?;
    t.router.ip("addr add fe80::1/64 dev eth0 nodad")?;
    let d = Daemon::start(&t.host, &config(1000, &["fe80::1"], false))?;
    for m in MEMBERS {
        wait_probe(&d, m, "ok")?;
        d.wait_acked(&t.host, METRICS, m)?;
    }
    let rows = d.stat("-t")?;
    ensure!(
        rows.to_string().contains("fe80::1"),
        "fe80::1 not a target: {rows}"
    );
    t.switch_a.ip("link set c4 down")?;
    wait_probe(&d, "e1000g0", "failed")?;
    ensure!(d.member("rge0")?["probe"] == "ok", "rge0 failed over IPv6");
    Ok(())
}
