//! What an operator or another program removes from a running group is put
//! back by ipmpd: the group interface with its addresses and routes, and
//! the pins (nothing detaches meanwhile: ipmpd holds the attachments).
use std::time::Duration;

use anyhow::{ensure, Result};
use ipmp_tests::{
    daemon::Daemon,
    topology::{Topology, DATA_V4, MEMBERS},
};

/// How many of 50 flows from the data address reach the peer.
fn flows_arriving(t: &Topology) -> Result<usize> {
    Ok(t.flows_to_peer(24_000..24_050)?.len())
}

#[test]
fn a_deleted_group_interface_is_back_within_2_s_with_its_addresses_and_routes() -> Result<()> {
    let (t, d) = Daemon::start_tutorial("heal")?;
    t.host
        .ip("route add 198.51.100.0/24 via 192.0.2.1 dev production0")?;
    t.host.ip("link del dev production0")?;
    d.wait_for(
        "production0 back with its address and routes",
        Duration::from_secs(2),
        |_| {
            Ok(t.host.ip("-br addr show production0")?.contains(DATA_V4)
                && t.host
                    .ip("route show 198.51.100.0/24")?
                    .contains("dev production0"))
        },
    )?;
    // The egress program is on the new interface: traffic leaves through
    // the members (a bare veth would swallow it).
    ensure!(
        flows_arriving(&t)? == 50,
        "not every flow arrived after the group interface came back"
    );
    ensure!(
        d.log_text()
            .contains("Group interface production0 was deleted; creating it again"),
        "no log line for the re-creation"
    );
    ensure!(d.stat("-g")?[0]["state"] == "ok", "{}", d.stat("-g")?);
    Ok(())
}

#[test]
fn removed_pins_detach_nothing_and_are_pinned_again() -> Result<()> {
    let (t, mut d) = Daemon::start_tutorial("heal")?;
    let group_pins = d
        .pin_dir
        .join(t.host.inode()?.to_string())
        .join("production0");
    std::fs::remove_dir_all(&group_pins)?;
    for m in MEMBERS {
        let link = t.host.ip(&format!("link show {m}"))?;
        ensure!(link.contains("xdp"), "{m} lost its XDP program: {link}");
    }
    ensure!(
        flows_arriving(&t)? == 50,
        "traffic stopped when the pins went"
    );
    d.wait_for("the pins back", Duration::from_secs(3), |_| {
        Ok(["FLOW_TABLE", "MEMBERS", "link_egress", "link_xdp_rge0"]
            .iter()
            .all(|p| group_pins.join(p).exists()))
    })?;
    // The pins are back before ipmpd's line saying so is written.
    d.wait_for("the log line for the pins", Duration::from_secs(3), |d| {
        Ok(d.log_text()
            .contains("Pins of group production0 were removed; pinned again"))
    })?;
    // They are the running dataplane's: a restart adopts them.
    d.kill()?;
    let d = Daemon::start_again(d, &t.host)?;
    d.wait_group("ok")?;
    ensure!(
        d.log_text().contains("Adopted the pinned dataplane"),
        "the restart did not adopt the restored pins"
    );
    ensure!(flows_arriving(&t)? == 50, "traffic after the restart");
    Ok(())
}

/// The routing table of `member`'s policy rule, and what it holds.
fn member_table(t: &Topology, member: &str) -> Result<(String, String)> {
    let rules = t.host.ip("rule show")?;
    let id = rules
        .lines()
        .find(|l| l.contains(&format!("oif {member}")))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_default()
        .to_string();
    let routes = t.host.ip(&format!("route show table {id}"))?;
    Ok((id, routes))
}

#[test]
fn a_removed_data_address_rule_and_mirrored_route_are_put_back() -> Result<()> {
    let (t, d) = Daemon::start_tutorial("heal")?;
    t.host
        .ip(&format!("addr del {DATA_V4}/24 dev production0"))?;
    d.wait_for("the data address back", Duration::from_secs(2), |_| {
        Ok(t.host.ip("-br addr show production0")?.contains(DATA_V4))
    })?;
    t.host.ip("rule del oif e1000g1")?;
    d.wait_for("e1000g1's rule back", Duration::from_secs(2), |_| {
        Ok(t.host.ip("rule show")?.contains("oif e1000g1"))
    })?;
    // Its table mirrors the group interface's on-link route.
    let (id, routes) = member_table(&t, "e1000g1")?;
    ensure!(
        routes.contains("192.0.2.0/24"),
        "e1000g1's table {id} lacks the mirrored route: {routes}"
    );
    t.host
        .ip(&format!("route del 192.0.2.0/24 dev e1000g1 table {id}"))?;
    d.wait_for("the mirrored route back", Duration::from_secs(2), |_| {
        Ok(member_table(&t, "e1000g1")?.1.contains("192.0.2.0/24"))
    })?;
    ensure!(
        flows_arriving(&t)? == 50,
        "not every flow arrived after the repairs"
    );
    let log = d.log_text();
    for line in [
        "Data address 192.0.2.200/24 of group production0 was removed; added it again",
        "The policy rule of e1000g1",
    ] {
        ensure!(log.contains(line), "no log line {line:?}:\n{log}");
    }
    Ok(())
}
