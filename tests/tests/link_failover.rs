//! A working IPMP group end to end: the tutorial's network in namespaces,
//! ipmpd with the real eBPF programs, real packets.
use std::{collections::HashMap, net::SocketAddr, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::{test_address, IpmpToml},
    daemon::Daemon,
    netns::{join, unique},
    topology::{Topology, DATA_V4, DATA_V6, MEMBERS, PEER_V4, PEER_V6, REMOTE_V4},
    traffic::{echo_once, mac_string},
};

const FLOWS: std::ops::Range<u16> = 20_000..20_200;
/// Flows from each family's data address to the peer.
const FAMILIES: [(&str, &str); 2] = [(DATA_V4, PEER_V4), (DATA_V6, PEER_V6)];

/// With its IPv6 data address the group probes over IPv6 by itself, so a
/// repair also waits for 10 acknowledged probes: a short FDT keeps that
/// within the tests' waits.
fn config(members: &[&str]) -> IpmpToml {
    IpmpToml::tutorial()
        .fdt_ms(1000)
        .dual_stack()
        .members(members)
}

fn setup() -> Result<(Topology, Daemon)> {
    Daemon::start_on_tutorial("lf", &config(&MEMBERS).render())
}

/// Flow (source port) to member name, as the peer saw it.
fn flows_by_member(t: &Topology, family: (&str, &str)) -> Result<HashMap<u16, String>> {
    t.flows_by_member(family, FLOWS)
}

/// [`flows_by_member`], failing unless every flow from `family`'s address
/// arrived (`when`: at which point of the test).
fn every_flow(t: &Topology, family: (&str, &str), when: &str) -> Result<HashMap<u16, String>> {
    let flows = flows_by_member(t, family)?;
    ensure!(
        flows.len() == FLOWS.len(),
        "only {} of {} flows from {} arrived {when}",
        flows.len(),
        FLOWS.len(),
        family.0
    );
    Ok(flows)
}

fn count(flows: &HashMap<u16, String>, member: &str) -> usize {
    flows.values().filter(|m| *m == member).count()
}

#[test]
fn flows_are_spread_over_every_member() -> Result<()> {
    let (t, _d) = setup()?;
    for family in FAMILIES {
        let flows = every_flow(&t, family, "at the peer")?;
        for m in MEMBERS {
            let n = count(&flows, m);
            ensure!(
                n * 5 >= FLOWS.len(),
                "{m} carried {n} of {} flows from {} (< 20%)",
                FLOWS.len(),
                family.0
            );
        }
    }
    Ok(())
}

#[test]
fn carrier_loss_moves_only_the_failed_members_flows() -> Result<()> {
    let (t, d) = setup()?;
    let mut before = Vec::new();
    for family in FAMILIES {
        let flows = every_flow(&t, family, "before the failure")?;
        before.push(flows);
    }

    t.pull_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "failed")?;
    let row = d.member("e1000g0")?;
    ensure!(
        row["link"] == "down" && row["active"] == "no",
        "e1000g0 row: {row}"
    );
    d.wait_group("degraded")?;
    ensure!(
        d.log_text().contains("The link has gone down on e1000g0"),
        "no link-down message"
    );

    for (family, before) in FAMILIES.into_iter().zip(&before) {
        let during = every_flow(&t, family, "after the failure")?;
        for (port, member) in before {
            if member != "e1000g0" {
                ensure!(
                    during[port] == *member,
                    "flow {port} from {} moved from {member} to {}",
                    family.0,
                    during[port]
                );
            } else {
                ensure!(
                    during[port] != "e1000g0",
                    "flow {port} from {} still left through the failed member",
                    family.0
                );
            }
        }
    }

    t.plug_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "ok")?;
    d.wait_group("ok")?;
    ensure!(
        d.log_text().contains("The link has come up on e1000g0"),
        "no link-up message"
    );
    for family in FAMILIES {
        let after = every_flow(&t, family, "after the repair")?;
        let back = count(&after, "e1000g0");
        ensure!(
            back * 5 >= FLOWS.len(),
            "e1000g0 carries only {back} flows from {} after its repair",
            family.0
        );
    }
    Ok(())
}

#[test]
fn all_members_down_fails_the_group_and_one_back_makes_it_usable() -> Result<()> {
    let (t, d) = setup()?;
    let address = &d.stat("-a")?[0];
    ensure!(
        address["address"] == "192.0.2.200"
            && address["state"] == "up"
            && address["outbound"] == "e1000g0 e1000g1 rge0",
        "stat -a: {address}"
    );
    for m in MEMBERS {
        t.pull_cable(m)?;
    }
    d.wait_group("failed")?;
    d.wait_for("the all-unusable message", Duration::from_secs(5), |d| {
        Ok(d.log_text()
            .contains("All IP interfaces in group production0 are now unusable"))
    })?;
    // The group interface has carrier only while a member is active.
    d.wait_for(
        "production0 without carrier",
        Duration::from_secs(5),
        |_| Ok(t.host.ip("link show production0")?.contains("NO-CARRIER")),
    )?;
    t.plug_cable("rge0")?;
    d.wait_group("degraded")?;
    d.wait_for("production0 with carrier", Duration::from_secs(5), |_| {
        Ok(!t.host.ip("link show production0")?.contains("NO-CARRIER"))
    })?;
    d.wait_for("the usable message", Duration::from_secs(5), |d| {
        Ok(d.log_text()
            .contains("At least 1 IP interface (rge0) in group production0 is now usable"))
    })?;
    Ok(())
}

/// With empty neighbour caches, the first datagram of a new flow reaches an
/// on-link peer and a host behind the router, and the answers come back in.
/// Strict reverse-path filtering is on before ipmpd starts: ipmpd must turn
/// it off for the replies to get in.
#[test]
fn first_packet_reaches_on_link_and_routed_destinations() -> Result<()> {
    let t = Topology::build(&unique("lf"))?;
    t.host.sysctl("net.ipv4.conf.all.rp_filter", "1")?;
    for m in MEMBERS {
        t.host
            .sysctl(&format!("net.ipv4.conf.{m}.rp_filter"), "1")?;
    }
    let _d = Daemon::start(&t.host, &config(&MEMBERS).render())?;
    t.host
        .ip("route add default via 192.0.2.1 dev production0")?;
    for (ns, dst) in [(&t.peer, PEER_V4), (&t.remote, REMOTE_V4)] {
        t.host.ip("neigh flush all")?;
        let bind: SocketAddr = format!("{dst}:7000").parse()?;
        let server = ns.spawn(move || echo_once(bind, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(50));
        let dst = dst.to_string();
        let reply = t.host.enter(move || {
            let sock = std::net::UdpSocket::bind(format!("{DATA_V4}:0"))?;
            sock.set_read_timeout(Some(Duration::from_secs(5)))?;
            sock.send_to(b"first", format!("{dst}:7000"))?;
            let mut buf = [0u8; 16];
            let (n, _) = sock.recv_from(&mut buf).context("no answer came back")?;
            Ok(buf[..n].to_vec())
        })?;
        let from = join(server)?;
        ensure!(
            from.ip().to_string() == DATA_V4,
            "datagram arrived from {from}"
        );
        ensure!(reply == b"first", "wrong answer");
    }
    Ok(())
}

/// Solaris: the IPMP interface's MTU is the smallest of its members'.
#[test]
fn group_mtu_follows_the_smallest_member() -> Result<()> {
    let (t, d) = setup()?;
    t.host.ip("link set e1000g1 mtu 1400")?;
    d.wait_for("production0 mtu 1400", Duration::from_secs(5), |_| {
        Ok(t.host.ip("link show production0")?.contains("mtu 1400"))
    })?;
    t.host.ip("link set e1000g1 mtu 1500")?;
    d.wait_for("production0 mtu 1500", Duration::from_secs(5), |_| {
        Ok(t.host.ip("link show production0")?.contains("mtu 1500"))
    })
}

#[test]
fn member_missing_at_start_is_adopted_when_it_appears() -> Result<()> {
    let t = Topology::build(&unique("lf"))?;
    let d = Daemon::start(
        &t.host,
        &config(&["e1000g0", "e1000g1", "rge0", "e1000g2"]).render(),
    )?;
    d.wait_member("e1000g2", "state", "failed")?;
    ensure!(
        d.stat("-g")?[0]["state"] == "degraded",
        "group not degraded with a member missing"
    );
    t.add_member_cable("e1000g2")?;
    d.wait_member("e1000g2", "state", "ok")?;
    d.wait_member("e1000g2", "active", "yes")?;
    d.wait_group("ok")?;
    Ok(())
}

#[test]
fn the_dataplane_keeps_forwarding_after_sigterm_and_is_adopted() -> Result<()> {
    let (t, mut d) = setup()?;
    let before = flows_by_member(&t, FAMILIES[0])?;
    d.stop()?;
    let during = flows_by_member(&t, FAMILIES[0])?;
    ensure!(
        during == before,
        "flows changed member while ipmpd was stopped"
    );
    d = Daemon::start_again(d, &t.host)?;
    d.wait_group("ok")?;
    ensure!(
        d.log_text().contains("Adopted the pinned dataplane"),
        "no adoption: {}",
        d.log_text()
    );
    let after = flows_by_member(&t, FAMILIES[0])?;
    ensure!(
        after == before,
        "flows moved when ipmpd adopted the dataplane"
    );
    Ok(())
}

/// Broadcast and multicast leave once, through the cast member (flags `mb`),
/// with its MAC as source.
#[test]
fn broadcast_and_multicast_leave_once_through_the_cast_member() -> Result<()> {
    use ipmp_tests::traffic::Sniffer;
    let (t, d) = setup()?;
    let cast = d
        .stat("-i")?
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["flags"].as_str().is_some_and(|f| f.contains("mb")))
                .cloned()
        })
        .context("no member flagged as cast member")?;
    let cast_mac = t.mac(cast["interface"].as_str().unwrap_or_default())?;
    t.host.ip("route add 224.0.0.0/4 dev production0")?;
    for (dst, port) in [("192.0.2.255", 9100u16), ("239.1.2.3", 9101)] {
        let sniff = t.peer.spawn_ready("sniffer", move |ready| {
            let s = Sniffer::open("eth0")?;
            ready.send(()).ok();
            s.udp_frames(port, std::time::Instant::now() + Duration::from_millis(700))
        })?;
        t.host.enter(move || {
            let sock = std::net::UdpSocket::bind(format!("{DATA_V4}:0"))?;
            sock.set_broadcast(true)?;
            sock.send_to(b"cast", format!("{dst}:{port}"))?;
            Ok(())
        })?;
        let frames = join(sniff)?;
        ensure!(
            frames.len() == 1,
            "{dst}: the peer saw {} copies",
            frames.len()
        );
        let (dst_mac, src_mac) = frames[0];
        ensure!(
            dst_mac[0] & 1 == 1,
            "{dst}: destination MAC {} is not group-addressed",
            mac_string(&dst_mac)
        );
        ensure!(
            mac_string(&src_mac) == cast_mac,
            "{dst}: sent from {} not the cast member {cast_mac}",
            mac_string(&src_mac)
        );
    }
    Ok(())
}

#[test]
fn member_removed_while_running_fails_and_is_adopted_when_it_returns() -> Result<()> {
    let (t, d) = setup()?;
    t.host.ip("link del e1000g1")?;
    d.wait_member("e1000g1", "state", "failed")?;
    d.wait_group("degraded")?;
    let flows = flows_by_member(&t, FAMILIES[0])?;
    ensure!(
        flows.len() == FLOWS.len() && count(&flows, "e1000g1") == 0,
        "flows not moved off the removed member"
    );
    t.add_member_cable("e1000g1")?;
    d.wait_member("e1000g1", "state", "ok")?;
    d.wait_group("ok")?;
    let flows = flows_by_member(&t, FAMILIES[0])?;
    ensure!(
        count(&flows, "e1000g1") * 5 >= FLOWS.len(),
        "the returned member carries too few flows"
    );
    Ok(())
}

/// `ipmpctl teardown` removes the group interface, rules, routes, test
/// addresses and pins; ipmpd exits.
#[test]
fn teardown_removes_everything_ipmpd_created() -> Result<()> {
    let t = Topology::build(&unique("lf"))?;
    let config = config(&MEMBERS).test_address("e1000g0", &test_address("e1000g0"));
    let mut d = Daemon::start(&t.host, &config.render())?;
    let addr = t.host.ip("addr show dev e1000g0")?;
    ensure!(
        addr.contains("192.0.2.201/24") && addr.contains("noprefixroute"),
        "test address: {addr}"
    );
    let pins = d.pin_dir.join(t.host.inode()?.to_string());
    ensure!(
        pins.join("production0").exists(),
        "no pins under {}",
        pins.display()
    );

    d.ctl_ok(&["teardown"])?;
    ensure!(
        d.wait_exit(Duration::from_secs(10))? == 0,
        "ipmpd did not exit cleanly"
    );
    let links = t.host.ip("-br link show")?;
    ensure!(
        !links.contains("production0"),
        "group interface left: {links}"
    );
    for family in ["-4", "-6"] {
        let rules = t.host.ip(&format!("{family} rule show"))?;
        ensure!(!rules.contains("oif"), "member rules left: {rules}");
    }
    ensure!(
        !t.host.ip("addr show dev e1000g0")?.contains("192.0.2.201"),
        "test address left"
    );
    ensure!(!pins.exists(), "pins left in {}", pins.display());
    Ok(())
}

#[test]
fn queries_are_open_to_everyone_and_changes_need_root() -> Result<()> {
    let (_t, d) = setup()?;
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(ipmp_tests::daemon::bin("ipmpctl"))
            .arg("--socket")
            .arg(&d.socket)
            .args(args)
            .output()
    };
    ensure!(
        as_nobody(&["stat", "-g"])?.status.success(),
        "a user cannot query"
    );
    let refused = as_nobody(&["teardown"])?;
    ensure!(
        refused.status.code() == Some(1),
        "teardown as a user: {:?}",
        refused.status
    );
    ensure!(
        String::from_utf8_lossy(&refused.stderr).contains("permission denied"),
        "no reason given"
    );
    d.wait_group("ok")?;
    Ok(())
}

#[test]
fn ipmpctl_without_ipmpd_exits_3() -> Result<()> {
    let out = std::process::Command::new(ipmp_tests::daemon::bin("ipmpctl"))
        .args(["--socket", "/nonexistent/ipmpd.sock", "stat", "-g"])
        .output()?;
    ensure!(out.status.code() == Some(3), "exit status {:?}", out.status);
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("cannot contact ipmpd -- is IPMP in use?")
    );
    Ok(())
}

/// Without a test address nothing probes: `stat -p` says so and refuses,
/// and `-g` shows no failure detection time.
#[test]
fn probe_view_refuses_when_no_member_probes() -> Result<()> {
    // IPv4 only: an IPv6 data address would start IPv6 probing.
    let (_t, d) = Daemon::start_tutorial("lf")?;
    let said = d.ctl_refused(&["stat", "-p"])?;
    ensure!(
        said.contains("probe-based failure detection is disabled"),
        "stat -p said: {said}"
    );
    ensure!(d.stat("-g")?[0]["fdt"] == "", "FDT shown without probing");
    let human = String::from_utf8(d.ctl(&["stat", "-g"])?.stdout)?;
    ensure!(
        human.lines().nth(1).is_some_and(|l| l.contains(" -- ")),
        "no -- for the empty FDT:\n{human}"
    );
    Ok(())
}
