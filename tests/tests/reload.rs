//! Reload (SIGHUP, `ipmpctl reload`) applies a new configuration as a
//! difference; an invalid one changes nothing.
use std::{collections::HashMap, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    daemon::Daemon,
    http::{get, sample},
    netns::unique,
    topology::{Topology, DATA_V4, PEER_V4},
    traffic::{flows_by_mac, mac_string},
};

const METRICS: &str = "127.0.0.1:9477";

fn config(fdt_ms: u64, members: &[(&str, &str)]) -> String {
    let mut c = format!(
        "[daemon]\nfailure_detection_time_ms = {fdt_ms}\nmetrics_listen = \"{METRICS}\"\n\n\
         [[group]]\nname = \"production0\"\ndata_addresses = [\"192.0.2.200/24\"]\ntargets = [\"192.0.2.1\"]\n"
    );
    for (m, test) in members {
        c.push_str(&format!(
            "\n[[group.member]]\ninterface = \"{m}\"\ntest_address = \"{test}\"\n"
        ));
    }
    c
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
    let out = d.ctl(&["reload"])?;
    ensure!(
        out.status.success(),
        "reload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    ensure!(d.ctl(&["reload"])?.status.success(), "second reload failed");
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
    let out = d.ctl(&["reload"])?;
    ensure!(
        out.status.code() == Some(1),
        "invalid reload: {:?}",
        out.status
    );
    let reason = String::from_utf8_lossy(&out.stderr);
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
        let out = d.ctl(&["reload"])?;
        ensure!(
            out.status.success(),
            "reload to {fdt_ms} ms failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
