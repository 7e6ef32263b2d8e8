//! Inbound: each data address bound to one member, which alone answers
//! ARP / ND for it; peers told at once when a binding moves; broadcast and
//! multicast data delivered once, through the cast member.
use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    http::member_sum,
    netns::{ifindex, join, unique, Netns},
    topology::{Topology, DATA_V4, DATA_V6, MEMBERS, PEER_V4, PEER_V6},
    traffic::{parse_mac, Sniffer, Stream},
};

const SECOND_V4: &str = "192.0.2.210";
const METRICS: &str = "127.0.0.1:9477";

fn config(data_addresses: &[&str]) -> String {
    IpmpToml::tutorial()
        .metrics(METRICS)
        .data_addresses(data_addresses)
        .render()
}

/// The member `stat -a` shows bound for `address`.
fn inbound(d: &Daemon, address: &str) -> Result<String> {
    let rows = d.stat("-a")?;
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|a| a["address"] == address))
        .with_context(|| format!("{address} missing from stat -a"))?;
    Ok(row["inbound"].as_str().unwrap_or_default().to_string())
}

/// The MACs that answered `count` ARP requests for `address` from the peer,
/// one entry per reply (arping prints each).
fn arping(peer: &Netns, address: &str, count: u32) -> Result<Vec<String>> {
    let out = peer
        .command("arping")
        .args(["-i", "eth0", "-c", &count.to_string(), "-W", "0.2", address])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "60 bytes from 02:..:.. (192.0.2.200): index=0 time=..."
    Ok(text
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect())
}

/// The MACs that answered one neighbour solicitation for `address` from
/// the peer (ndisc6 waits for every answer).
fn ndisc(peer: &Netns, address: &str) -> Result<Vec<String>> {
    let out = peer
        .command("ndisc6")
        .args(["-m", "-q", "-r", "1", "-w", "500", address, "eth0"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|m| m.to_lowercase())
        .collect())
}

/// The link-layer address the peer's neighbour table holds for `address`.
#[test]
fn each_address_is_answered_once_by_its_bound_member() -> Result<()> {
    let t = Topology::build(&unique("inbound"))?;
    let d = Daemon::start(
        &t.host,
        &config(&[
            &format!("{DATA_V4}/24"),
            &format!("{SECOND_V4}/24"),
            &format!("{DATA_V6}/64"),
        ]),
    )?;
    d.wait_group("ok")?;
    let (first, second, third) = (
        inbound(&d, DATA_V4)?,
        inbound(&d, SECOND_V4)?,
        inbound(&d, DATA_V6)?,
    );
    let mut bound = vec![&first, &second, &third];
    bound.sort();
    bound.dedup();
    ensure!(
        bound.len() == 3 && MEMBERS.iter().all(|m| bound.contains(&&m.to_string())),
        "three addresses over three members bound to {first:?}, {second:?}, {third:?}"
    );
    for (address, member) in [(DATA_V4, &first), (SECOND_V4, &second)] {
        let replies = arping(&t.peer, address, 3)?;
        let mac = t.mac(member)?;
        ensure!(
            replies.len() == 3 && replies.iter().all(|r| *r == mac),
            "3 ARP requests for {address} got {replies:?}; expected 3 replies from {member} ({mac})"
        );
    }
    let replies = ndisc(&t.peer, DATA_V6)?;
    let mac = t.mac(&third)?;
    ensure!(
        replies == [mac.clone()],
        "a solicitation for {DATA_V6} got {replies:?}; expected one answer from {third} ({mac})"
    );
    let answered = member_sum(
        &t.host,
        METRICS,
        "ipmp_neighbour_requests_answered_total",
        &MEMBERS,
    )?;
    ensure!(answered >= 7.0, "XDP answered {answered} of 7 requests");
    ensure!(
        d.log_text().contains(&format!(
            "Data address {DATA_V4} of group production0 now bound to {first}"
        )),
        "the binding was not logged:\n{}",
        d.log_text()
    );
    Ok(())
}

/// Neighbour requests (ARP requests, neighbour solicitations) the peer
/// sends for `address`, counted on its own interface until told to stop.
fn watch_peer_requests(
    peer: &Netns,
    address: IpAddr,
) -> Result<(mpsc::Sender<()>, std::thread::JoinHandle<Result<u32>>)> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let handle = peer.spawn_ready("sniffer", move |ready| {
        let sniffer = Sniffer::open("eth0")?;
        ready.send(()).ok();
        let mut buf = [0u8; 2048];
        let mut requests = 0;
        while stop_rx.try_recv().is_err() {
            if let Some(n) = sniffer.next_frame(&mut buf) {
                requests += u32::from(asks_for(&buf[..n], address));
            }
        }
        sniffer.ensure_complete()?;
        Ok(requests)
    })?;
    Ok((stop_tx, handle))
}

/// Whether `frame` asks for `address`: an ARP request (not a gratuitous
/// one) or a neighbour solicitation whose target it is.
fn asks_for(frame: &[u8], address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => {
            frame.len() >= 42
                && frame[12..14] == [0x08, 0x06]
                && frame[20..22] == [0, 1]
                && frame[38..42] == a.octets()
                && frame[28..32] != a.octets()
        }
        IpAddr::V6(a) => {
            frame.len() >= 78
                && frame[12..14] == [0x86, 0xdd]
                && frame[20] == 58
                && frame[54] == 135
                && frame[62..78] == a.octets()
        }
    }
}

/// Fails `address`'s bound member while the peer streams to `address`:
/// the peer's neighbour entry must move to the new member without the peer
/// asking, and the stream must go on.
fn moves_unasked(t: &Topology, d: &Daemon, address: &str, from: &str, port: u16) -> Result<()> {
    let bound = inbound(d, address)?;
    // The peer learns the binding by asking.
    let old_mac = t.peer_learns(address, &bound)?;
    // 3 s of datagrams, one per ms; the bound member's cable is cut 1 s in.
    let stream = Stream::start(
        &t.peer,
        (from, port),
        &t.host,
        (address, port),
        Duration::from_millis(1),
        3000,
    )?;
    let (stop, requests) = watch_peer_requests(&t.peer, address.parse()?)?;
    std::thread::sleep(Duration::from_secs(1));
    t.pull_cable(&bound)?;
    let until = Instant::now() + Duration::from_secs(5);
    let moved_to = loop {
        let seen = t.peer_neighbour(address)?;
        if seen.as_deref() != Some(&*old_mac) {
            break seen;
        }
        if Instant::now() > until {
            bail!(
                "the peer still sends {address} to {bound} 5 s after its cable was cut; log:\n{}",
                d.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    stop.send(()).ok();
    let asked = join(requests)?;
    let now_bound = inbound(d, address)?;
    ensure!(
        now_bound != bound && moved_to.as_deref() == Some(&*t.mac(&now_bound)?),
        "the peer's entry for {address} moved to {moved_to:?}, the address is bound to {now_bound}"
    );
    ensure!(
        asked == 0,
        "the peer asked for {address} {asked} times before its entry moved"
    );
    let lost = stream.lost()?;
    ensure!(
        lost < 200,
        "the stream to {address} lost {lost} of 3000 datagrams (1 ms apart) across the move"
    );
    Ok(())
}

/// The tutorial network with ipmpd running a group with one IPv4 and one
/// IPv6 data address.
fn dual_stack() -> Result<(Topology, Daemon)> {
    let t = Topology::build(&unique("inbound"))?;
    let d = Daemon::start(
        &t.host,
        &config(&[&format!("{DATA_V4}/24"), &format!("{DATA_V6}/64")]),
    )?;
    d.wait_group("ok")?;
    Ok((t, d))
}

#[test]
fn a_failed_members_addresses_move_and_the_peer_learns_it_unasked() -> Result<()> {
    let (t, d) = dual_stack()?;
    moves_unasked(&t, &d, DATA_V4, PEER_V4, 9000)?;
    moves_unasked(&t, &d, DATA_V6, PEER_V6, 9001)
}

#[test]
fn a_broadcast_datagram_reaches_an_application_once() -> Result<()> {
    let (t, _d) = Daemon::start_on_tutorial("inbound", &config(&[&format!("{DATA_V4}/24")]))?;
    for (broadcast, port) in [("192.0.2.255", 9100), ("255.255.255.255", 9101)] {
        let app = t.host.spawn_ready("application", move |ready| {
            let sock = UdpSocket::bind(("0.0.0.0", port))?;
            sock.set_read_timeout(Some(Duration::from_secs(2)))?;
            ready.send(()).ok();
            let mut buf = [0u8; 64];
            let mut copies = 0;
            while sock.recv(&mut buf).is_ok() {
                copies += 1;
            }
            Ok(copies)
        })?;
        t.peer.enter(move || {
            let sock = UdpSocket::bind("192.0.2.10:0")?;
            sock.set_broadcast(true)?;
            sock.send_to(b"to all", (broadcast, port))?;
            Ok(())
        })?;
        let copies = join(app)?;
        ensure!(
            copies == 1,
            "a datagram to {broadcast} reached the application {copies} times"
        );
    }
    // Each broadcast reached the two other members, which dropped it.
    let dropped = member_sum(
        &t.host,
        METRICS,
        "ipmp_cast_dropped_packets_total",
        &MEMBERS,
    )?;
    ensure!(
        dropped >= 4.0,
        "only {dropped} copies dropped off the cast member"
    );
    Ok(())
}

/// Whether `frame` is an IGMP or MLD report (any version) naming `group`.
fn report_for(frame: &[u8], group: IpAddr) -> bool {
    match group {
        IpAddr::V4(g) => {
            const IGMP: u8 = 2;
            if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != IGMP {
                return false;
            }
            let igmp = &frame[14 + ((frame[14] & 0x0f) as usize) * 4..];
            // v2 report (0x16) or v3 report (0x22): the group is in the message.
            matches!(igmp.first(), Some(0x16 | 0x22)) && igmp.windows(4).any(|w| w == g.octets())
        }
        IpAddr::V6(g) => {
            // MLD comes after an 8-byte hop-by-hop header (router alert):
            // v1 report (131) or v2 report (143).
            const HOP_BY_HOP: u8 = 0;
            frame.len() > 62
                && frame[12..14] == [0x86, 0xdd]
                && frame[20] == HOP_BY_HOP
                && frame[54] == 58
                && matches!(frame[62], 131 | 143)
                && frame[62..].windows(16).any(|w| w == g.octets())
        }
    }
}

#[test]
fn ipv4_multicast_is_received_once_and_follows_the_cast_member() -> Result<()> {
    multicast_follows_the_cast_member("239.1.2.3".parse()?, 9200)
}

#[test]
fn ipv6_multicast_is_received_once_and_follows_the_cast_member() -> Result<()> {
    multicast_follows_the_cast_member("ff05::1:3".parse()?, 9201)
}

/// An application joins `group` on the group interface; a datagram from the
/// peer reaches it once, through the cast member that holds the group; when
/// the cast member fails, the next one reports the group to the switches
/// and the next datagram reaches the application once again.
fn multicast_follows_the_cast_member(group: IpAddr, port: u16) -> Result<()> {
    let (t, d) = dual_stack()?;
    let app = t.host.spawn_ready("application", move |ready| {
        let sock = match group {
            IpAddr::V4(g) => {
                let sock = UdpSocket::bind(("0.0.0.0", port))?;
                // The interface of the data address: the group interface.
                sock.join_multicast_v4(&g, &DATA_V4.parse()?)?;
                sock
            }
            IpAddr::V6(g) => {
                let sock = UdpSocket::bind(("::", port))?;
                sock.join_multicast_v6(&g, ifindex("production0")?)?;
                sock
            }
        };
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        ready.send(()).ok();
        let mut received = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok(n) = sock.recv(&mut buf) {
            received.push(buf[..n].to_vec());
        }
        Ok(received)
    })?;
    let send = |payload: &'static [u8]| {
        t.peer.enter(move || {
            use socket2::{Domain, Socket, Type};
            let sock = match group {
                IpAddr::V4(_) => {
                    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
                    sock.set_multicast_if_v4(&PEER_V4.parse()?)?;
                    sock
                }
                IpAddr::V6(_) => {
                    let sock = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
                    sock.set_multicast_if_v6(ifindex("eth0")?)?;
                    sock
                }
            };
            sock.send_to(payload, &SocketAddr::new(group, port).into())?;
            Ok(())
        })
    };
    let held_on = |member: &str| -> Result<bool> {
        Ok(t.host
            .ip(&format!("maddr show dev {member}"))?
            .contains(&group.to_string()))
    };
    d.wait_for(
        "the group held on the cast member",
        Duration::from_secs(5),
        |_| held_on(MEMBERS[0]),
    )?;
    send(b"first")?;

    // The cast member fails: the group is joined on the next one, which
    // tells the switches with a report.
    let new_mac = parse_mac(&t.mac(MEMBERS[1])?)?;
    let reports = t.peer.spawn_ready("sniffer", move |ready| {
        let sniffer = Sniffer::open("eth0")?;
        ready.send(()).ok();
        let until = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            if let Some(n) = sniffer.next_frame(&mut buf) {
                if buf[6..12] == new_mac && report_for(&buf[..n], group) {
                    return Ok(true);
                }
            }
        }
        sniffer.ensure_complete()?;
        Ok(false)
    })?;
    t.pull_cable(MEMBERS[0])?;
    ensure!(
        join(reports)?,
        "no report for {group} came through {} after {} failed",
        MEMBERS[1],
        MEMBERS[0]
    );
    ensure!(
        held_on(MEMBERS[1])?,
        "{group} is not joined on {}",
        MEMBERS[1]
    );
    send(b"second")?;

    let received = join(app)?;
    for payload in [&b"first"[..], b"second"] {
        let copies = received.iter().filter(|r| *r == payload).count();
        ensure!(
            copies == 1,
            "the application received {:?} {copies} times",
            String::from_utf8_lossy(payload)
        );
    }
    Ok(())
}
