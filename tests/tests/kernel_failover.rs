//! The dataplane routes around a dead member by itself: with ipmpd stopped
//! (SIGSTOP), a carrier cut, an admin down or a removed device moves only
//! the dead member's flows, to where ipmpd will put them once it runs.
use std::{collections::HashMap, time::Duration};

use anyhow::{ensure, Result};
use ipmp_tests::{
    daemon::Daemon,
    topology::{Topology, DATA_V4, PEER_V4},
};
use nix::sys::signal::Signal;

const FLOWS: std::ops::Range<u16> = 21_000..21_150;
const FAMILY: (&str, &str) = (DATA_V4, PEER_V4);
/// Datagrams a cut may cost: those in flight on the wire when it happened
/// (the stream sends one every 200 µs).
const LOSS_BOUND: u32 = 3;

fn setup() -> Result<(Topology, Daemon)> {
    Daemon::start_tutorial("kf")
}

/// A one-second stream (5000 datagrams) on a flow that leaves through
/// `member`; `cut` runs 300 ms in. Returns the datagrams lost.
fn stream_across(
    t: &Topology,
    member: &str,
    ports: std::ops::Range<u16>,
    cut: impl FnOnce() -> Result<()>,
) -> Result<u32> {
    let stream = t.stream_through(member, ports, Duration::from_micros(200), 5000, false)?;
    std::thread::sleep(Duration::from_millis(300));
    cut()?;
    stream.lost()
}

/// Flows of members other than `dead` stayed; `dead`'s moved off it.
fn only_moved_off(
    dead: &[&str],
    before: &HashMap<u16, String>,
    after: &HashMap<u16, String>,
) -> Result<()> {
    ensure!(
        after.len() == before.len(),
        "{} of {} flows arrived",
        after.len(),
        before.len()
    );
    for (port, was) in before {
        let now = &after[port];
        if dead.contains(&was.as_str()) {
            ensure!(
                !dead.contains(&now.as_str()),
                "flow {port} still leaves through {now}"
            );
        } else {
            ensure!(now == was, "flow {port} of surviving {was} moved to {now}");
        }
    }
    Ok(())
}

#[test]
fn carrier_cut_with_ipmpd_stopped_loses_nothing_and_ipmpd_agrees() -> Result<()> {
    let (t, d) = setup()?;
    let before = t.flows_by_member(FAMILY, FLOWS)?;
    d.signal(Signal::SIGSTOP)?;
    let lost = stream_across(&t, "e1000g0", 9100..9200, || t.pull_cable("e1000g0"))?;
    ensure!(
        lost <= LOSS_BOUND,
        "{lost} datagrams lost across the cut while ipmpd was stopped"
    );
    let kernel = t.flows_by_member(FAMILY, FLOWS)?;
    only_moved_off(&["e1000g0"], &before, &kernel)?;

    d.signal(Signal::SIGCONT)?;
    d.wait_member("e1000g0", "state", "failed")?;
    let confirmed = t.flows_by_member(FAMILY, FLOWS)?;
    ensure!(
        confirmed == kernel,
        "ipmpd moved flows again after the kernel's failover: {} differ",
        confirmed.iter().filter(|(p, m)| kernel[*p] != **m).count()
    );
    Ok(())
}

#[test]
fn a_second_cut_while_ipmpd_is_stopped_is_survived_too() -> Result<()> {
    let (t, d) = setup()?;
    let before = t.flows_by_member(FAMILY, FLOWS)?;
    d.signal(Signal::SIGSTOP)?;
    t.pull_cable("e1000g0")?;
    let lost = stream_across(&t, "e1000g1", 9100..9200, || t.pull_cable("e1000g1"))?;
    ensure!(
        lost <= LOSS_BOUND,
        "{lost} datagrams lost across the second cut"
    );
    let kernel = t.flows_by_member(FAMILY, FLOWS)?;
    only_moved_off(&["e1000g0", "e1000g1"], &before, &kernel)?;

    d.signal(Signal::SIGCONT)?;
    d.wait_member("e1000g1", "state", "failed")?;
    d.wait_member("e1000g0", "state", "failed")?;
    ensure!(
        t.flows_by_member(FAMILY, FLOWS)? == kernel,
        "flows moved again once ipmpd ran"
    );
    Ok(())
}

#[test]
fn admin_down_and_removal_with_ipmpd_stopped_are_survived() -> Result<()> {
    let (t, d) = setup()?;
    d.signal(Signal::SIGSTOP)?;
    let lost = stream_across(&t, "e1000g0", 9100..9200, || {
        t.host.ip("link set dev e1000g0 down").map(drop)
    })?;
    ensure!(lost <= LOSS_BOUND, "{lost} lost across the admin down");
    let lost = stream_across(&t, "e1000g1", 9200..9300, || {
        t.host.ip("link del dev e1000g1").map(drop)
    })?;
    ensure!(lost <= LOSS_BOUND, "{lost} lost across the removal");
    d.signal(Signal::SIGCONT)?;
    d.wait_member("e1000g1", "state", "failed")?;
    Ok(())
}

/// The kernel only takes members out: a cable plugged back while ipmpd is
/// stopped carries nothing until ipmpd has repaired the member.
#[test]
fn only_ipmpd_puts_a_member_back() -> Result<()> {
    let (t, d) = setup()?;
    d.signal(Signal::SIGSTOP)?;
    t.pull_cable("e1000g0")?;
    // The first packet through e1000g0 finds it down.
    let flows = t.flows_by_member(FAMILY, FLOWS)?;
    ensure!(flows.len() == FLOWS.len(), "flows were lost");
    ensure!(
        !flows.values().any(|m| m == "e1000g0"),
        "a flow used e1000g0"
    );
    t.plug_cable("e1000g0")?;
    let flows = t.flows_by_member(FAMILY, FLOWS)?;
    ensure!(
        !flows.values().any(|m| m == "e1000g0"),
        "the kernel put e1000g0 back by itself"
    );
    d.signal(Signal::SIGCONT)?;
    d.wait_member("e1000g0", "state", "ok")?;
    d.wait_for("flows back on e1000g0", Duration::from_secs(5), |_| {
        let flows = t.flows_by_member(FAMILY, FLOWS)?;
        Ok(flows.values().filter(|m| *m == "e1000g0").count() * 5 >= FLOWS.len())
    })
}

/// A member repaired by ipmpd after the kernel took it out is in service
/// again, and the kernel takes it out again on its next cut.
#[test]
fn the_same_member_cut_again_after_its_repair_is_survived() -> Result<()> {
    let (t, d) = setup()?;
    for round in 0..2u16 {
        d.signal(Signal::SIGSTOP)?;
        let ports = 9100 + 100 * round..9200 + 100 * round;
        let lost = stream_across(&t, "e1000g0", ports, || t.pull_cable("e1000g0"))?;
        d.signal(Signal::SIGCONT)?;
        ensure!(
            lost <= LOSS_BOUND,
            "round {round}: {lost} datagrams lost across the cut"
        );
        d.wait_member("e1000g0", "state", "failed")?;
        t.plug_cable("e1000g0")?;
        d.wait_member("e1000g0", "state", "ok")?;
        d.wait_group("ok")?;
    }
    Ok(())
}
