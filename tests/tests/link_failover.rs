//! A working IPMP group end to end: the tutorial's network in namespaces,
//! ipmpd with the real eBPF programs, real packets.
use std::{collections::HashMap, net::SocketAddr, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    daemon::Daemon,
    netns::{join, unique},
    topology::{Topology, DATA_V4, MEMBERS, PEER_V4, REMOTE_V4},
    traffic::{echo_once, flows_by_mac, mac_string, FlowMacs},
};

const FLOWS: std::ops::Range<u16> = 20_000..20_200;

fn config(members: &[&str]) -> String {
    let mut c = String::from(
        "[[group]]\nname = \"production0\"\ndata_addresses = [\"192.0.2.200/24\"]\n",
    );
    for m in members {
        c.push_str(&format!("\n[[group.member]]\ninterface = \"{m}\"\n"));
    }
    c
}

fn setup() -> Result<(Topology, Daemon)> {
    let t = Topology::build(&unique("lf"))?;
    let d = Daemon::start(&t.host, &config(&MEMBERS))?;
    d.wait_group("ok")?;
    Ok((t, d))
}

/// Flow (source port) to member name, as the peer saw it.
fn flows_by_member(t: &Topology) -> Result<HashMap<u16, String>> {
    let macs: FlowMacs = flows_by_mac(&t.host, DATA_V4, FLOWS, &t.peer, "eth0", PEER_V4, 9000)?;
    let names: HashMap<String, &str> = MEMBERS.iter().map(|m| Ok((t.mac(m)?, *m))).collect::<Result<_>>()?;
    macs.iter()
        .map(|(port, mac)| {
            let member = names.get(&mac_string(mac)).with_context(|| format!("flow {port} came from unknown MAC"))?;
            Ok((*port, member.to_string()))
        })
        .collect()
}

fn count(flows: &HashMap<u16, String>, member: &str) -> usize {
    flows.values().filter(|m| *m == member).count()
}

#[test]
fn flows_are_spread_over_every_member() -> Result<()> {
    let (t, _d) = setup()?;
    let flows = flows_by_member(&t)?;
    ensure!(flows.len() == FLOWS.len(), "only {} of {} flows reached the peer", flows.len(), FLOWS.len());
    for m in MEMBERS {
        let n = count(&flows, m);
        ensure!(n * 5 >= FLOWS.len(), "{m} carried {n} of {} flows (< 20%)", FLOWS.len());
    }
    Ok(())
}

#[test]
fn carrier_loss_moves_only_the_failed_members_flows() -> Result<()> {
    let (t, d) = setup()?;
    let before = flows_by_member(&t)?;
    ensure!(before.len() == FLOWS.len(), "not every flow arrived before the failure");

    t.pull_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "failed")?;
    let row = d.member("e1000g0")?;
    ensure!(row["link"] == "down" && row["active"] == "no", "e1000g0 row: {row}");
    d.wait_group("degraded")?;
    ensure!(d.log_text().contains("The link has gone down on e1000g0"), "no link-down message");

    let during = flows_by_member(&t)?;
    ensure!(during.len() == FLOWS.len(), "{} of {} flows arrived after the failure", during.len(), FLOWS.len());
    for (port, member) in &before {
        if member != "e1000g0" {
            ensure!(during[port] == *member, "flow {port} moved from {member} to {}", during[port]);
        } else {
            ensure!(during[port] != "e1000g0", "flow {port} still left through the failed member");
        }
    }

    t.plug_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "ok")?;
    d.wait_group("ok")?;
    ensure!(d.log_text().contains("The link has come up on e1000g0"), "no link-up message");
    let after = flows_by_member(&t)?;
    ensure!(after.len() == FLOWS.len(), "not every flow arrived after the repair");
    let back = count(&after, "e1000g0");
    ensure!(back * 5 >= FLOWS.len(), "e1000g0 carries only {back} flows after its repair");
    Ok(())
}

#[test]
fn all_members_down_fails_the_group_and_one_back_makes_it_usable() -> Result<()> {
    let (t, d) = setup()?;
    for m in MEMBERS {
        t.pull_cable(m)?;
    }
    d.wait_group("failed")?;
    d.wait_for("the all-unusable message", Duration::from_secs(5), |d| {
        Ok(d.log_text().contains("All IP interfaces in group production0 are now unusable"))
    })?;
    t.plug_cable("rge0")?;
    d.wait_group("degraded")?;
    d.wait_for("the usable message", Duration::from_secs(5), |d| {
        Ok(d.log_text().contains("At least 1 IP interface (rge0) in group production0 is now usable"))
    })?;
    Ok(())
}

/// With empty neighbour caches, the first datagram of a new flow reaches an
/// on-link peer and a host behind the router, and the answers come back in.
#[test]
fn first_packet_reaches_on_link_and_routed_destinations() -> Result<()> {
    let (t, _d) = setup()?;
    t.host.ip("route add default via 192.0.2.1 dev production0")?;
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
        ensure!(from.ip().to_string() == DATA_V4, "datagram arrived from {from}");
        ensure!(reply == b"first", "wrong answer");
    }
    Ok(())
}

#[test]
fn member_missing_at_start_is_adopted_when_it_appears() -> Result<()> {
    let t = Topology::build(&unique("lf"))?;
    let d = Daemon::start(&t.host, &config(&["e1000g0", "e1000g1", "rge0", "e1000g2"]))?;
    d.wait_member("e1000g2", "state", "failed")?;
    ensure!(d.stat("-g")?[0]["state"] == "degraded", "group not degraded with a member missing");
    t.add_member_cable("e1000g2")?;
    d.wait_member("e1000g2", "state", "ok")?;
    d.wait_member("e1000g2", "active", "yes")?;
    d.wait_group("ok")?;
    Ok(())
}

#[test]
fn the_dataplane_keeps_forwarding_after_sigterm_and_is_adopted() -> Result<()> {
    let (t, mut d) = setup()?;
    let before = flows_by_member(&t)?;
    d.stop()?;
    let during = flows_by_member(&t)?;
    ensure!(during == before, "flows changed member while ipmpd was stopped");
    d = Daemon::start_again(d, &t.host)?;
    d.wait_group("ok")?;
    ensure!(d.log_text().contains("Adopted the pinned dataplane"), "no adoption: {}", d.log_text());
    let after = flows_by_member(&t)?;
    ensure!(after == before, "flows moved when ipmpd adopted the dataplane");
    Ok(())
}
