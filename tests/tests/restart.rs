//! A control plane that survives itself: what ipmpd decided outlives a
//! kill -9, one ipmpd runs a dataplane, and nothing it set up is left
//! behind when the configuration or the operator says it should go.
use std::{collections::HashMap, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    http::member_sum,
    netns::{run, unique, Netns},
    topology::{Topology, MEMBERS, ROUTER_V4},
    traffic::mac_string,
};

const METRICS: &str = "127.0.0.1:9477";

/// The group with `members`; with test addresses (192.0.2.201...) and
/// the router as target when `probing`.
fn config(members: &[&str], probing: bool) -> String {
    let c = IpmpToml::tutorial()
        .fdt_ms(1000)
        .metrics(METRICS)
        .members(members);
    match probing {
        true => c.targets(&[ROUTER_V4]).test_addresses(),
        false => c,
    }
    .render()
}

/// Member name to how many of 100 flows it carries now, by the source MAC
/// the peer sees.
fn flows_per_member(t: &Topology) -> Result<HashMap<String, usize>> {
    let macs = t.flows_to_peer(23_000..23_100)?;
    ensure!(
        macs.len() == 100,
        "only {} of 100 flows arrived",
        macs.len()
    );
    let mut counts = HashMap::new();
    for mac in macs.values() {
        let name = MEMBERS
            .iter()
            .find(|m| t.mac(m).is_ok_and(|own| own == mac_string(mac)))
            .context("a flow left through no member")?;
        *counts.entry(name.to_string()).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Log lines of a transition, none of which a restart may repeat.
const TRANSITIONS: [&str; 7] = [
    "are now unusable",
    "is now usable",
    "failure detected",
    "repair detected",
    "taken offline",
    "brought online",
    "The link has",
];

fn ensure_no_transition_logged(d: &Daemon) -> Result<()> {
    let log = d.log_text();
    for line in log.lines() {
        ensure!(
            !TRANSITIONS.iter().any(|t| line.contains(t)),
            "the restarted ipmpd logged a transition that did not happen: {line}\n{log}"
        );
    }
    Ok(())
}

#[test]
fn kill_9_keeps_an_offline_member_offline_and_logs_no_transition() -> Result<()> {
    let (t, mut d) = Daemon::start_on_tutorial("rs", &config(&MEMBERS, false))?;
    d.ctl_ok(&["offline", "e1000g0"])?;
    t.pull_cable("rge0")?;
    d.wait_member("rge0", "state", "failed")?;
    d.wait_member("e1000g0", "state", "offline")?;

    d.kill()?;
    let d = Daemon::start_again(d, &t.host)?;
    // At once, not after some correction: the restart starts from the record.
    let (e0, rge0) = (d.member("e1000g0")?, d.member("rge0")?);
    ensure!(
        e0["state"] == "offline" && e0["active"] == "no",
        "e1000g0 after the restart: {e0}"
    );
    ensure!(
        rge0["state"] == "failed" && rge0["active"] == "no",
        "rge0 after the restart: {rge0}"
    );
    let flows = flows_per_member(&t)?;
    ensure!(
        flows.keys().all(|m| m == "e1000g1"),
        "flows left through offline or failed members: {flows:?}"
    );
    ensure_no_transition_logged(&d)?;

    // The record keeps going: online brings it back as usual.
    d.ctl_ok(&["online", "e1000g0"])?;
    d.wait_member("e1000g0", "state", "ok")?;
    Ok(())
}

#[test]
fn kill_9_keeps_a_probe_failed_member_out_until_acknowledged_probes() -> Result<()> {
    let t = Topology::build(&unique("rs"))?;
    let mut d = Daemon::start(&t.host, &config(&MEMBERS, true))?;
    for m in MEMBERS {
        d.wait_acked(&t.host, METRICS, m)?;
        d.wait_member(m, "probe", "ok")?;
    }
    // Switch A loses the router: only probes see it.
    t.switch_a.ip("link set c4 down")?;
    for m in ["e1000g0", "e1000g1"] {
        d.wait_for(&format!("{m} failed"), Duration::from_secs(20), |d| {
            Ok(d.member(m)?["state"] == "failed")
        })?;
    }

    d.kill()?;
    let d = Daemon::start_again(d, &t.host)?;
    for m in ["e1000g0", "e1000g1"] {
        let row = d.member(m)?;
        ensure!(
            row["state"] == "failed" && row["active"] == "no" && row["probe"] == "failed",
            "{m} after the restart: {row}"
        );
    }
    let flows = flows_per_member(&t)?;
    ensure!(
        flows.keys().all(|m| m == "rge0"),
        "flows left through probe-failed members: {flows:?}"
    );
    // The start-up quiet period (and the targets not yet found) repair
    // nothing: still failed after a few probe intervals.
    std::thread::sleep(Duration::from_millis(1500));
    ensure!(
        d.member("e1000g0")?["state"] == "failed",
        "e1000g0 repaired without acknowledged probes"
    );
    ensure_no_transition_logged(&d)?;

    t.switch_a.ip("link set c4 up")?;
    for m in ["e1000g0", "e1000g1"] {
        d.wait_for(&format!("{m} repaired"), Duration::from_secs(20), |d| {
            Ok(d.member(m)?["state"] == "ok")
        })?;
    }
    ensure!(
        d.log_text()
            .contains("IP interface repair detected on e1000g0 of group production0"),
        "no repair message"
    );
    Ok(())
}

/// Pulls e1000g0's cable: `d` sees it fail and moves its flows to the
/// others.
fn fails_over(t: &Topology, d: &Daemon) -> Result<()> {
    t.pull_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "failed")?;
    let flows = flows_per_member(t)?;
    ensure!(
        !flows.contains_key("e1000g0"),
        "flows still leave through the failed member: {flows:?}"
    );
    Ok(())
}

#[test]
fn a_second_ipmpd_on_the_same_pins_is_refused_and_the_first_keeps_working() -> Result<()> {
    let (t, d) = Daemon::start_on_tutorial("rs", &config(&MEMBERS, false))?;
    let other_socket = std::env::temp_dir().join(unique("sock"));
    // Its own socket and metrics address: only the pins are shared.
    let out = d.run_other(
        &t.host,
        &[
            "--socket",
            other_socket.to_str().unwrap_or("x"),
            "--metrics",
            "127.0.0.1:9478",
        ],
    )?;
    let _ = std::fs::remove_file(&other_socket);
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1), "second ipmpd: {out:?}");
    let pid = d.pid().context("first ipmpd not running")?;
    ensure!(
        said.contains(&format!("PID {pid}")),
        "the refusal does not name the holder {pid}: {said}"
    );
    // The first one still owns the dataplane: it fails over.
    fails_over(&t, &d)
}

#[test]
fn a_second_ipmpd_with_other_pins_does_not_take_the_group() -> Result<()> {
    let (t, d) = Daemon::start_tutorial("rs")?;
    // Its own pin directory and socket: only the group is shared.
    let other = Daemon::start(&t.host, &std::fs::read_to_string(&d.config)?)?;
    let pid = d.pid().context("first ipmpd not running")?;
    other.wait_for("the group refused", Duration::from_secs(10), |o| {
        Ok(o.log_text().contains(&format!(
            "starting group production0: another ipmpd (PID {pid}) already runs group production0"
        )))
    })?;
    ensure!(
        other.stat("-g")?.as_array().is_some_and(Vec::is_empty),
        "the second ipmpd runs the group: {}",
        other.stat("-g")?
    );
    // The first one still owns it.
    fails_over(&t, &d)
}

/// Reads a sysctl (dotted) in `ns`.
fn sysctl(ns: &Netns, key: &str) -> Result<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    Ok(run(ns.command("cat").arg(path))?.trim().to_string())
}

/// What ipmpd sets up on a member, and whether it is still there.
fn leftovers(t: &Topology, d: &Daemon, member: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let link = t.host.ip(&format!("link show {member}"))?;
    if link.contains("xdp") {
        found.push(format!("XDP program: {link}"));
    }
    if t.host
        .ip(&format!("addr show {member}"))?
        .contains("192.0.2.2")
    {
        found.push("test address".into());
    }
    for family in ["-4", "-6"] {
        let rules = t.host.ip(&format!("{family} rule show"))?;
        if rules.contains(&format!("oif {member}")) {
            found.push(format!("policy rule: {rules}"));
        }
    }
    let pin = d
        .pin_dir
        .join(t.host.inode()?.to_string())
        .join("production0")
        .join(format!("link_xdp_{member}"));
    if pin.exists() {
        found.push(format!("pin {}", pin.display()));
    }
    Ok(found)
}

/// Whose sysctls a teardown puts back: `all`'s and every member's.
const ALL_SYSCTLS: [&str; 4] = ["all", "e1000g0", "e1000g1", "rge0"];

const SYSCTLS: [&str; 3] = ["rp_filter", "arp_ignore", "arp_announce"];

/// Sysctls (dotted) and their values.
type Sysctls = Vec<(String, String)>;

/// Sets values ipmpd changes to something it does not use, and returns them.
fn set_own_sysctls(t: &Topology) -> Result<Sysctls> {
    let mut set = vec![("net.ipv4.conf.all.rp_filter".to_string(), "2".to_string())];
    for m in MEMBERS {
        for (key, value) in SYSCTLS.iter().zip(["1", "0", "1"]) {
            set.push((format!("net.ipv4.conf.{m}.{key}"), value.to_string()));
        }
        // The kernel's defaults, which ipmpd turns off on members.
        for key in ["autoconf", "accept_ra_defrtr"] {
            set.push((format!("net.ipv6.conf.{m}.{key}"), "1".to_string()));
        }
    }
    for (key, value) in &set {
        t.host.sysctl(key, value)?;
    }
    Ok(set)
}

/// The sysctls in `wanted` of `all` or of the listed members hold their
/// values again.
fn ensure_sysctls(t: &Topology, wanted: &Sysctls, members: &[&str]) -> Result<()> {
    let of = |key: &str| members.iter().any(|m| key.contains(&format!(".{m}.")));
    for (key, value) in wanted.iter().filter(|(k, _)| of(k)) {
        let now = sysctl(&t.host, key)?;
        ensure!(now == *value, "{key} is {now}, was {value} before ipmpd");
    }
    Ok(())
}

/// The tutorial's group (with probing or not) on a host whose sysctls were
/// set to values ipmpd does not use (returned), its state ok.
fn start_with_own_sysctls(probing: bool) -> Result<(Topology, Sysctls, Daemon)> {
    let t = Topology::build(&unique("rs"))?;
    let sysctls = set_own_sysctls(&t)?;
    let d = Daemon::start(&t.host, &config(&MEMBERS, probing))?;
    d.wait_group("ok")?;
    Ok((t, sysctls, d))
}

/// production0's interface and pins are gone.
fn ensure_group_gone(t: &Topology, d: &Daemon) -> Result<()> {
    ensure!(
        t.host.ip("link show production0").is_err(),
        "production0 is still there"
    );
    let pins = d
        .pin_dir
        .join(t.host.inode()?.to_string())
        .join("production0");
    ensure!(!pins.exists(), "{} is still there", pins.display());
    Ok(())
}

/// Nothing ipmpd set up is left on the members.
fn ensure_nothing_left(t: &Topology, d: &Daemon, members: &[&str]) -> Result<()> {
    for m in members {
        let left = leftovers(t, d, m)?;
        ensure!(left.is_empty(), "{m} kept {left:?}");
    }
    Ok(())
}

#[test]
fn a_restart_without_a_member_leaves_nothing_of_it() -> Result<()> {
    let (t, sysctls, mut d) = start_with_own_sysctls(true)?;
    ensure!(
        !leftovers(&t, &d, "rge0")?.is_empty(),
        "rge0 was never set up"
    );
    // rge0 carries about a third of 300 flows.
    t.flows_to_peer(25_000..25_300)?;
    let transmitted = |m: &str| {
        member_sum(
            &t.host,
            METRICS,
            "ipmp_interface_transmit_packets_total",
            &[m],
        )
    };
    let rge0_sent = transmitted("rge0")?;
    ensure!(rge0_sent >= 50.0, "rge0 sent only {rge0_sent} packets");
    d.kill()?;
    // A new NIC takes rge0's place (and slot).
    t.add_member_cable("e1000g2")?;
    std::fs::write(&d.config, config(&["e1000g0", "e1000g1", "e1000g2"], true))?;
    let d = Daemon::start_again(d, &t.host)?;
    d.wait_member("e1000g2", "active", "yes")?;
    let inherited = transmitted("e1000g2")?;
    ensure!(
        inherited < rge0_sent / 2.0,
        "e1000g2 starts with {inherited} packets sent; rge0 had sent {rge0_sent}"
    );
    ensure_removed(
        &t,
        &d,
        &sysctls,
        &["rge0"],
        "Interface rge0 is no longer in group production0",
    )
}

#[test]
fn a_restart_without_a_group_leaves_nothing_of_it() -> Result<()> {
    let (t, sysctls, mut d) = start_with_own_sysctls(true)?;
    d.kill()?;
    // production0 goes; another group takes e1000g0.
    let staging = IpmpToml::tutorial()
        .name("staging0")
        .data_addresses(&["192.0.2.100/24"])
        .members(&["e1000g0"]);
    std::fs::write(&d.config, staging.render())?;
    let d = Daemon::start_again(d, &t.host)?;
    d.wait_group("ok")?;
    ensure_group_gone(&t, &d)?;
    ensure_removed(
        &t,
        &d,
        &sysctls,
        &["e1000g1", "rge0"],
        "Group production0 is no longer configured",
    )
}

/// A restart removed what ipmpd had set up on `members`, put their
/// sysctls back, and said so in `logged`.
fn ensure_removed(
    t: &Topology,
    d: &Daemon,
    sysctls: &Sysctls,
    members: &[&str],
    logged: &str,
) -> Result<()> {
    ensure_nothing_left(t, d, members)?;
    ensure_sysctls(t, sysctls, members)?;
    ensure!(d.log_text().contains(logged), "no log line \"{logged}\"");
    Ok(())
}

#[test]
fn teardown_without_ipmpd_removes_every_group_and_restores_the_sysctls() -> Result<()> {
    let (t, sysctls, mut d) = start_with_own_sysctls(true)?;
    // Refused while ipmpd runs: it holds the programs.
    let out = d.run_other(&t.host, &["--teardown"])?;
    ensure!(
        out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stderr).contains("ipmpctl teardown"),
        "teardown beside a running ipmpd: {out:?}"
    );
    d.kill()?;
    let out = d.run_other(&t.host, &["--teardown"])?;
    ensure!(out.status.success(), "ipmpd --teardown: {out:?}");
    ensure_nothing_left(&t, &d, &MEMBERS)?;
    ensure_group_gone(&t, &d)?;
    let ns_pins = d.pin_dir.join(t.host.inode()?.to_string());
    ensure!(!ns_pins.exists(), "{} is still there", ns_pins.display());
    ensure_sysctls(&t, &sysctls, &ALL_SYSCTLS)
}

#[test]
fn ipmpctl_teardown_restores_the_sysctls() -> Result<()> {
    let (t, sysctls, mut d) = start_with_own_sysctls(false)?;
    ensure!(
        sysctl(&t.host, "net.ipv4.conf.e1000g0.arp_ignore")? == "1",
        "ipmpd did not set arp_ignore"
    );
    d.ctl_ok(&["teardown"])?;
    ensure!(d.wait_exit(Duration::from_secs(10))? == 0, "ipmpd failed");
    ensure_nothing_left(&t, &d, &MEMBERS)?;
    ensure_sysctls(&t, &sysctls, &ALL_SYSCTLS)
}
