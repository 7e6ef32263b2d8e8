//! Reload (SIGHUP, `ipmpctl reload`) applies a new configuration as a
//! difference; an invalid one changes nothing.
use std::{collections::HashMap, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    http::{get, sample},
    netns::unique,
    topology::{Topology, DATA_V4, PEER_V4, ROUTER_V4},
    traffic::{flows_by_mac, mac_string},
};

const METRICS: &str = "127.0.0.1:9477";

/// The probing group with `members` (each with its test address), the
/// router the target.
fn group(fdt_ms: u64, members: &[(&str, &str)]) -> IpmpToml {
    let names: Vec<&str> = members.iter().map(|(m, _)| *m).collect();
    let group = IpmpToml::tutorial()
        .fdt_ms(fdt_ms)
        .metrics(METRICS)
        .targets(&[ROUTER_V4])
        .members(&names);
    members
        .iter()
        .fold(group, |c, (m, test)| c.test_address(m, test))
}

fn config(fdt_ms: u64, members: &[(&str, &str)]) -> String {
    group(fdt_ms, members).render()
}

/// Flow (source port) to the member that carried it, by source MAC.
fn flows(t: &Topology) -> Result<HashMap<u16, String>> {
    let macs = flows_by_mac(
        &t.host,
        DATA_V4,
        22_000..22_200,
        &t.peer,
        "eth0",
        PEER_V4,
        9000,
    )?;
    let names: HashMap<String, &str> = ["e1000g0", "e1000g1", "rge0"]
        .iter()
        .map(|m| Ok((t.mac(m)?, *m)))
        .collect::<Result<_>>()?;
    macs.iter()
        .map(|(p, mac)| {
            Ok((
                *p,
                names
                    .get(&mac_string(mac))
                    .context("unknown MAC")?
                    .to_string(),
            ))
        })
        .collect()
}

fn probes_sent(t: &Topology, member: &str) -> Result<f64> {
    let text = get(&t.host, METRICS, "/metrics")?;
    sample(
        &text,
        &format!("ipmp_probes_sent_total{{group=\"production0\",interface=\"{member}\"}}"),
    )
    .with_context(|| format!("no probe counter for {member}"))
}

#[test]
fn adding_a_member_and_changing_the_fdt_moves_no_flow_between_the_others() -> Result<()> {
    let t = Topology::build(&unique("rl"))?;
    let two = [("e1000g0", "192.0.2.201/24"), ("e1000g1", "192.0.2.202/24")];
    let d = Daemon::start(&t.host, &config(1000, &two))?;
    for m in ["e1000g0", "e1000g1"] {
        d.wait_member(m, "probe", "ok")?;
        d.wait_acked(&t.host, METRICS, m)?;
    }
    let before = flows(&t)?;
    ensure!(before.len() == 200, "only {} flows arrived", before.len());
    let sent_before = probes_sent(&t, "e1000g0")?;

    std::fs::write(
        &d.config,
        config(2000, &[two[0], two[1], ("rge0", "192.0.2.203/24")]),
    )?;
    d.ctl_ok(&["reload"])?;
    d.wait_member("rge0", "active", "yes")?;
    ensure!(
        d.stat("-g")?[0]["fdt"] == "2.00s",
        "FDT not changed: {}",
        d.stat("-g")?
    );

    let after = flows(&t)?;
    ensure!(
        after.len() == 200,
        "only {} flows arrived after the reload",
        after.len()
    );
    for (port, member) in &before {
        ensure!(
            after[port] == *member || after[port] == "rge0",
            "flow {port} moved from {member} to {}",
            after[port]
        );
    }
    ensure!(
        after.values().any(|m| m == "rge0"),
        "the new member carries nothing"
    );
    // The existing members' probing went on: their counters kept counting.
    ensure!(
        probes_sent(&t, "e1000g0")? >= sent_before,
        "e1000g0's probe counter went back"
    );
    ensure!(
        d.member("e1000g0")?["probe"] == "ok",
        "e1000g0 lost its probe state"
    );
    ensure!(
        !d.log_text().contains("Interface e1000g0 removed"),
        "e1000g0 was rebuilt"
    );

    // And out again: rge0 leaves, its XDP program and test address with it.
    std::fs::write(&d.config, config(2000, &two))?;
    d.ctl_ok(&["reload"]).context("second reload")?;
    d.wait_for("rge0 gone from stat -i", Duration::from_secs(10), |d| {
        Ok(!d.stat("-i")?.to_string().contains("rge0"))
    })?;
    let link = t.host.ip("link show rge0")?;
    ensure!(!link.contains("xdp"), "rge0 still runs XDP: {link}");
    ensure!(
        !t.host.ip("addr show rge0")?.contains("192.0.2.203"),
        "rge0 kept its test address"
    );
    Ok(())
}

#[test]
fn an_invalid_file_is_refused_and_changes_nothing() -> Result<()> {
    let t = Topology::build(&unique("rl"))?;
    let two = [("e1000g0", "192.0.2.201/24"), ("e1000g1", "192.0.2.202/24")];
    let d = Daemon::start(&t.host, &config(1000, &two))?;
    let before = d.stat("-i")?;
    std::fs::write(&d.config, "[daemon]\nfailure_detection_time_ms = 3\n")?;
    let reason = d.ctl_refused(&["reload"]).context("invalid reload")?;
    ensure!(
        reason.contains("ipmp.toml:2:") && reason.contains("failure_detection_time_ms"),
        "reason: {reason}"
    );
    ensure!(d.stat("-i")? == before, "the running configuration changed");
    // SIGHUP with the same file: logged, and ipmpd carries on.
    d.signal(nix::sys::signal::Signal::SIGHUP)?;
    d.wait_for(
        "the refused reload in the log",
        Duration::from_secs(10),
        |d| {
            Ok(d.log_text()
                .matches("refused; the running configuration stays")
                .count()
                >= 2)
        },
    )?;
    ensure!(
        d.stat("-g")?[0]["state"] == "ok",
        "ipmpd stopped working after SIGHUP"
    );
    Ok(())
}

/// An FDT raised to 600 s and lowered back: probing follows the new FDT at
/// once, not when the old 86 s interval would have ended.
#[test]
fn lowering_the_fdt_reschedules_probing_at_once() -> Result<()> {
    let t = Topology::build(&unique("rl"))?;
    let one = [("e1000g0", "192.0.2.201/24")];
    let d = Daemon::start(&t.host, &config(2000, &one))?;
    d.wait_acked(&t.host, METRICS, "e1000g0")?;
    let reload = |fdt_ms: u64| -> Result<()> {
        std::fs::write(&d.config, config(fdt_ms, &one))?;
        d.ctl_ok(&["reload"])
            .with_context(|| format!("reload to {fdt_ms} ms"))?;
        Ok(())
    };
    let sent = probes_sent(&t, "e1000g0")?;
    reload(600_000)?;
    // One probe goes out (at once, or on the old schedule); the next one
    // is 43 to 86 s later (FDT/7).
    d.wait_for("the probe after the reload", Duration::from_secs(5), |_| {
        Ok(probes_sent(&t, "e1000g0")? > sent)
    })?;
    reload(2000)?;
    let sent = probes_sent(&t, "e1000g0")?;
    // Every 286 ms at 2 s: 3 within 2 s leaves room for a busy host.
    d.wait_for("probes at the lowered FDT", Duration::from_secs(2), |_| {
        Ok(probes_sent(&t, "e1000g0")? >= sent + 3.0)
    })?;
    ensure!(
        d.stat("-g")?[0]["fdt"] == "2.00s",
        "FDT after the reload: {}",
        d.stat("-g")?
    );
    Ok(())
}

/// A group `name` with `data` addresses and one `member` (no test
/// address, no target): each harmful file names one thing applying would
/// fail on or that would harm.
fn harmful(name: &str, data: &[&str], member: &str) -> String {
    IpmpToml::tutorial()
        .fdt_ms(1000)
        .metrics(METRICS)
        .name(name)
        .data_addresses(data)
        .members(&[member])
        .render()
}

/// What a reload must leave as it was: the members, the data addresses
/// (which member is bound to one may change when members come and go).
fn running_state(t: &Topology, d: &Daemon) -> Result<(serde_json::Value, Vec<String>, String)> {
    let addresses = d.stat("-a")?;
    let addresses = addresses
        .as_array()
        .context("stat -a")?
        .iter()
        .map(|a| a["address"].to_string())
        .collect();
    Ok((
        d.stat("-i")?,
        addresses,
        t.host.ip("-br addr show production0")?,
    ))
}

#[test]
fn reloads_that_cannot_work_are_refused_and_change_nothing() -> Result<()> {
    let t = Topology::build(&unique("rl"))?;
    t.host.ip("link add taken0 type bridge")?;
    let two = [("e1000g0", "192.0.2.201/24"), ("e1000g1", "192.0.2.202/24")];
    let d = Daemon::start(&t.host, &config(1000, &two))?;
    d.wait_group("ok")?;
    let before = running_state(&t, &d)?;
    let seventy: Vec<String> = (1..=70).map(|i| format!("192.0.2.{i}/24")).collect();
    let seventy: Vec<&str> = seventy.iter().map(String::as_str).collect();
    let data = &["192.0.2.200/24"];
    let cases = [
        harmful("production0", &["0.0.0.0/0", "::/0"], "e1000g0"),
        harmful("lo", data, "e1000g0"),
        harmful("production0", data, "lo"),
        harmful("production0", &seventy, "e1000g0"),
        harmful("taken0", data, "e1000g0"),
    ];
    for (i, text) in cases.iter().enumerate() {
        std::fs::write(&d.config, text)?;
        d.ctl_refused(&["reload"])
            .with_context(|| format!("case {i} was accepted\n{text}"))?;
        ensure!(
            running_state(&t, &d)? == before,
            "case {i} changed the running configuration\n{text}"
        );
    }
    ensure!(
        !t.host.ip("addr show taken0")?.contains("192.0.2.200"),
        "the bridge got the data address"
    );
    ensure!(
        !t.host.ip("link show lo")?.contains("xdp"),
        "XDP was attached to lo"
    );
    // ipmpd runs on and its members keep working.
    d.wait_group("ok")?;
    ensure!(
        d.log_text()
            .matches("refused; the running configuration stays")
            .count()
            == cases.len(),
        "not every refusal was logged:\n{}",
        d.log_text()
    );
    Ok(())
}

/// A reload that passes every check and still fails while being applied
/// (here: native XDP on a bridge, which has none) is undone: the group is
/// as before, and the answer says so.
#[test]
fn a_reload_that_fails_while_applying_is_rolled_back() -> Result<()> {
    let t = Topology::build(&unique("rl"))?;
    t.host.ip("link add br9 type bridge")?;
    t.host.ip("link set br9 up")?;
    let two = [("e1000g0", "192.0.2.201/24"), ("e1000g1", "192.0.2.202/24")];
    let native = |fdt_ms: u64, members: &[(&str, &str)]| group(fdt_ms, members).xdp_mode("native");
    let d = Daemon::start(&t.host, &native(1000, &two).render())?;
    for m in ["e1000g0", "e1000g1"] {
        d.wait_member(m, "probe", "ok")?;
    }
    let before = running_state(&t, &d)?;
    // e1000g1 leaves, the FDT and the data addresses change, br9 joins.
    let new = native(2000, &[two[0], ("br9", "192.0.2.209/24")])
        .data_addresses(&["192.0.2.200/24", "192.0.2.199/24"]);
    std::fs::write(&d.config, new.render())?;
    let reason = d.ctl_refused(&["reload"])?;
    ensure!(
        reason.contains("br9") && reason.contains("the previous configuration is restored"),
        "reload: {reason}"
    );
    d.wait_member("e1000g1", "probe", "ok")?;
    ensure!(
        running_state(&t, &d)? == before,
        "the group differs after the rollback: {:?}",
        running_state(&t, &d)?
    );
    ensure!(
        d.stat("-g")?[0]["fdt"] == "1.00s",
        "FDT not restored: {}",
        d.stat("-g")?
    );
    let br9 = t.host.ip("-d link show br9")?;
    ensure!(!br9.contains("xdp"), "br9 kept an XDP program: {br9}");
    ensure!(
        !t.host.ip("addr show br9")?.contains("192.0.2.209"),
        "br9 kept its test address"
    );
    ensure!(
        !d.log_text()
            .contains("refused; the running configuration stays"),
        "the log says nothing changed although the reload was applied and undone"
    );
    d.wait_group("ok")?;

    // A new group that cannot start leaves neither interface nor pins.
    let backup = IpmpToml::tutorial()
        .name("backup0")
        .data_addresses(&["203.0.113.200/24"])
        .members(&["br9"]);
    std::fs::write(&d.config, native(1000, &two).also(backup).render())?;
    let reason = d
        .ctl_refused(&["reload"])
        .context("reload adding backup0")?;
    ensure!(
        reason.contains("the previous configuration is restored"),
        "reload adding backup0: {reason}"
    );
    ensure!(
        t.host.ip("link show backup0").is_err(),
        "backup0 was left behind"
    );
    let pins = d.pin_dir.join(t.host.inode()?.to_string()).join("backup0");
    ensure!(!pins.exists(), "backup0's pins were left behind");
    ensure!(
        running_state(&t, &d)? == before,
        "production0 changed with the failed group"
    );
    Ok(())
}
