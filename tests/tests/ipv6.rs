//! IPv6 on a par with IPv4: a group with an IPv6 data address probes over
//! IPv6 by itself, its members take no addresses or routes of their own
//! from Router Advertisements, and routed and multicast IPv6 leave right.
use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    netns::{ifindex, join, unique, Netns},
    topology::{Topology, DATA_V6, MEMBERS, PEER_V6},
    traffic::{parse_mac, Sniffer},
};
use serde_json::Value;

/// Generous: detection itself is measured by the bench.
const DISCOVERY: Duration = Duration::from_secs(20);

/// The tutorial's group, dual stack, members without test addresses and
/// no explicit target.
fn config(fdt_ms: u64) -> String {
    IpmpToml::tutorial().fdt_ms(fdt_ms).dual_stack().render()
}

/// `member`'s `stat -t` row for IPv6 (its test address is link-local).
fn v6_row(d: &Daemon, member: &str) -> Result<Value> {
    let rows = d.stat("-t")?;
    rows.as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| {
                    r["interface"] == member
                        && r["testaddr"]
                            .as_str()
                            .is_some_and(|a| a.starts_with("fe80:"))
                })
                .cloned()
        })
        .with_context(|| format!("no IPv6 row of {member} in stat -t: {rows}"))
}

/// The link-local address of `ifname` in `ns`, once duplicate address
/// detection let it be used (a tentative address sends nothing).
fn link_local(ns: &Netns, ifname: &str) -> Result<String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let out = ns.ip(&format!("-6 -o addr show dev {ifname} scope link"))?;
        let address = out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .map(str::to_string);
        match address {
            Some(a) if !out.contains("tentative") => return Ok(a),
            _ if Instant::now() > until => bail!("no usable link-local address on {ifname}: {out}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn sysctl(ns: &Netns, key: &str) -> Result<String> {
    Ok(
        ipmp_tests::netns::run(ns.command("sysctl").args(["-n", key]))?
            .trim()
            .to_string(),
    )
}

/// Without a configured target, each member probes over IPv6 from its
/// link-local address: first hosts found by an ff02::1 echo, then, once a
/// route names a link-local gateway, that router alone. Members keep no
/// SLAAC address or default route of their own while ipmpd runs, and get
/// their settings back at teardown.
#[test]
fn ipv6_probing_starts_by_itself_and_members_do_not_autoconfigure() -> Result<()> {
    let t = Topology::build(&unique("v6"))?;
    let d = Daemon::start(&t.host, &config(1000))?;
    // Whoever answers on the link: the router and the peer (the switches
    // have no IPv6 of their own).
    let neighbours: Vec<String> = [(&t.router, "eth0"), (&t.peer, "eth0")]
        .into_iter()
        .map(|(ns, ifname)| link_local(ns, ifname))
        .collect::<Result<_>>()?;
    for m in MEMBERS {
        d.wait_for(
            &format!("{m} probing hosts it discovered"),
            DISCOVERY,
            |d| {
                let row = v6_row(d, m)?;
                let targets: Vec<&str> = row["targets"]
                    .as_str()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect();
                Ok(row["mode"] == "multicast"
                    && !targets.is_empty()
                    && targets.iter().all(|t| neighbours.iter().any(|n| n == t)))
            },
        )
        .with_context(|| format!("stat -t: {:?}", d.stat("-t")))?;
        d.wait_member(m, "probe", "ok")?;
        for key in ["autoconf", "accept_ra_defrtr"] {
            let value = sysctl(&t.host, &format!("net.ipv6.conf.{m}.{key}"))?;
            ensure!(
                value == "0",
                "net.ipv6.conf.{m}.{key} is {value} under ipmpd"
            );
        }
    }

    t.router.ip("addr add fe80::1/64 dev eth0 nodad")?;
    t.host
        .ip("-6 route add default via fe80::1 dev production0")?;
    for m in MEMBERS {
        d.wait_for(&format!("{m} probing the router fe80::1"), DISCOVERY, |d| {
            let row = v6_row(d, m)?;
            Ok(row["mode"] == "routes" && row["targets"] == "fe80::1")
        })?;
    }

    d.ctl_ok(&["teardown"])?;
    for m in MEMBERS {
        for key in ["autoconf", "accept_ra_defrtr"] {
            let value = sysctl(&t.host, &format!("net.ipv6.conf.{m}.{key}"))?;
            ensure!(
                value == "1",
                "net.ipv6.conf.{m}.{key} is {value} after teardown"
            );
        }
    }
    Ok(())
}

/// A remote IPv6 host behind the router, whose address on the tutorial's
/// link is only link-local: the host's route names fe80::1.
const REMOTE_V6: &str = "2001:db8:1::10";

fn route_through_link_local_gateway(t: &Topology) -> Result<()> {
    t.router.ip("addr add fe80::1/64 dev eth0 nodad")?;
    t.router.ip("addr add 2001:db8:1::1/64 dev eth1 nodad")?;
    t.router.sysctl("net.ipv6.conf.all.forwarding", "1")?;
    t.remote.ip("addr add 2001:db8:1::10/64 dev eth0 nodad")?;
    t.remote.ip("-6 route add default via 2001:db8:1::1")?;
    t.host
        .ip("-6 route add 2001:db8:1::/64 via fe80::1 dev production0")?;
    Ok(())
}

/// The first packet to a routed IPv6 destination, with every neighbour
/// cache cold, reaches it through a link-local gateway (and its answer
/// comes back).
#[test]
fn routed_ipv6_through_a_link_local_gateway_works_from_the_first_packet() -> Result<()> {
    let (t, _d) = Daemon::start_on_tutorial("v6", &config(10_000))?;
    route_through_link_local_gateway(&t)?;
    first_datagram_is_answered(&t, &t.router, &t.remote, REMOTE_V6, 7001)
}

/// The first packet to an on-link IPv6 peer, with every neighbour cache
/// cold, reaches it: the egress program names the peer as its own next
/// hop, and the packet the kernel holds while it asks for the peer's MAC
/// must leave right once the answer comes.
#[test]
fn on_link_ipv6_works_from_the_first_packet() -> Result<()> {
    let (t, _d) = Daemon::start_on_tutorial("v6", &config(10_000))?;
    first_datagram_is_answered(&t, &t.peer, &t.peer, PEER_V6, 7003)
}

/// With the members' and `next_hop`'s neighbour caches flushed, one
/// datagram from the data address to `destination`:`port` (served in
/// `server`) arrives from the data address and its echo comes back.
fn first_datagram_is_answered(
    t: &Topology,
    next_hop: &Netns,
    server: &Netns,
    destination: &'static str,
    port: u16,
) -> Result<()> {
    for m in MEMBERS {
        t.host.ip(&format!("-6 neigh flush dev {m}"))?;
    }
    next_hop.ip("-6 neigh flush all")?;
    let server = server.spawn_ready("the destination's server", move |ready| {
        let sock = UdpSocket::bind(("::", port))?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        ready.send(()).ok();
        let mut buf = [0u8; 16];
        let (n, from) = sock.recv_from(&mut buf).context("no datagram arrived")?;
        sock.send_to(&buf[..n], from)?;
        Ok(from)
    })?;
    let answer = t.host.enter(move || {
        let sock = UdpSocket::bind(SocketAddr::new(DATA_V6.parse()?, 0))?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        sock.send_to(b"first", (destination, port))?;
        let mut buf = [0u8; 16];
        Ok(sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec()))
    })?;
    let from = join(server)?;
    ensure!(
        from.ip() == DATA_V6.parse::<IpAddr>()?,
        "{destination} heard {from}, not the data address"
    );
    ensure!(
        answer.as_deref() == Some(&b"first"[..]),
        "no answer to the first datagram came back"
    );
    Ok(())
}

/// A datagram to an IPv6 multicast group leaves once, through the cast
/// member (the first active member), with its MAC.
#[test]
fn ipv6_multicast_leaves_once_through_the_cast_member() -> Result<()> {
    let (t, _d) = Daemon::start_on_tutorial("v6", &config(10_000))?;
    let cast_mac = t.mac(MEMBERS[0])?;
    let sniff = t.peer.spawn_ready("sniffer", move |ready| {
        let sniffer = Sniffer::open("eth0")?;
        ready.send(()).ok();
        sniffer.udp_frames(7002, Instant::now() + Duration::from_secs(2))
    })?;
    t.host.enter(|| {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
        sock.bind(&SocketAddr::new(DATA_V6.parse()?, 0).into())?;
        sock.set_multicast_if_v6(ifindex("production0")?)?;
        sock.send_to(b"once", &"[ff05::4242]:7002".parse::<SocketAddr>()?.into())?;
        Ok(())
    })?;
    let frames = join(sniff)?;
    let sources: Vec<String> = frames
        .iter()
        .map(|(_, src)| ipmp_tests::traffic::mac_string(src))
        .collect();
    ensure!(
        sources == [cast_mac.clone()],
        "the datagram to ff05::4242 arrived from {sources:?}; expected once from {} ({cast_mac})",
        MEMBERS[0]
    );
    Ok(())
}

/// Sends one Router Advertisement from `ifname` in `ns` to all nodes:
/// router lifetime 1800 s, its MAC `mac`, and prefix 2001:db8:5::/64 for
/// address autoconfiguration.
fn advertise_router(ns: &Netns, ifname: &'static str, mac: [u8; 6]) -> Result<()> {
    ns.enter(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        sock.set_multicast_hops_v6(255)?;
        sock.set_multicast_if_v6(ifindex(ifname)?)?;
        // Type, code, checksum (the kernel's), hop limit, flags, lifetime,
        // reachable time, retransmission timer.
        let mut ra = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        // Source link-layer address option.
        ra.extend([1, 1]);
        ra.extend(mac);
        // Prefix information: /64, autonomous, valid 1 day, preferred 4 h.
        ra.extend([
            3, 4, 64, 0x40, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0,
        ]);
        ra.extend("2001:db8:5::".parse::<std::net::Ipv6Addr>()?.octets());
        let all_nodes: SocketAddr = "[ff02::1]:0".parse()?;
        sock.send_to(&ra, &all_nodes.into())?;
        Ok(())
    })
}

/// A router heard in a Router Advertisement on the members becomes their
/// IPv6 probe target; the members take neither an address from its prefix
/// nor a default route from it.
#[test]
fn a_router_heard_in_an_advertisement_is_probed() -> Result<()> {
    let (t, d) = Daemon::start_on_tutorial("v6", &config(1000))?;
    // A router forwards IPv6 (its neighbour advertisements say so too).
    t.router.sysctl("net.ipv6.conf.all.forwarding", "1")?;
    let router = link_local(&t.router, "eth0")?;
    let mac = parse_mac(
        t.router
            .ip("-br link show eth0")?
            .split_whitespace()
            .nth(2)
            .context("no MAC on the router's eth0")?,
    )?;
    advertise_router(&t.router, "eth0", mac)?;
    for m in MEMBERS {
        d.wait_for(
            &format!("{m} probing the router {router}"),
            DISCOVERY,
            |d| {
                let row = v6_row(d, m)?;
                Ok(row["mode"] == "routes" && row["targets"] == router.as_str())
            },
        )
        .with_context(|| {
            format!(
                "stat -t: {:?}; the host's neighbours: {:?}",
                d.stat("-t"),
                t.host.ip("-6 neigh show"),
            )
        })?;
        let routes = t.host.ip(&format!("-6 route show dev {m}"))?;
        ensure!(
            !routes.contains("default"),
            "{m} took a default route: {routes}"
        );
        let addresses = t.host.ip(&format!("-6 addr show dev {m}"))?;
        ensure!(
            !addresses.contains("2001:db8:5:"),
            "{m} configured an address from the advertised prefix: {addresses}"
        );
    }
    Ok(())
}
