//! `cargo xtask demo`: the IPMP tutorial, played against ipmpd in the
//! testbed, with ipmpstat output after each step.
use std::time::Duration;

use anyhow::Result;
use ipmp_tests::{daemon::Daemon, netns::unique, topology::Topology};

use crate::testbed::{probe_group, tutorial_config};

pub fn run() -> Result<()> {
    let t = Topology::build(&unique("demo"))?;
    let d = Daemon::start(&t.host, &tutorial_config())?;
    t.host
        .ip("route add default via 192.0.2.1 dev production0")?;
    let mut shown = 0;

    step(
        &d,
        &mut shown,
        "The group production0 with three members; ping the router",
        || ping(&t),
    )?;
    step(
        &d,
        &mut shown,
        "Pull cable 1 (e1000g0): link-based failure",
        || {
            t.pull_cable("e1000g0")?;
            d.wait_member("e1000g0", "state", "failed")?;
            ping(&t)
        },
    )?;
    step(&d, &mut shown, "Plug cable 1 back in: repair", || {
        t.plug_cable("e1000g0")?;
        d.wait_member("e1000g0", "state", "ok")?;
        ping(&t)?;
        flows(&t)
    })?;
    step(
        &d,
        &mut shown,
        "if_mpadm -d e1000g0: take it offline, its traffic moves to the others",
        || {
            mpadm(&d, "offline")?;
            d.wait_member("e1000g0", "state", "offline")?;
            flows(&t)
        },
    )?;
    step(
        &d,
        &mut shown,
        "if_mpadm -r e1000g0: bring it back online, it carries traffic again",
        || {
            mpadm(&d, "online")?;
            d.wait_member("e1000g0", "state", "ok")?;
            flows(&t)
        },
    )?;
    step(
        &d,
        &mut shown,
        "Pull all three cables: the group fails",
        || {
            for m in ipmp_tests::topology::MEMBERS {
                t.pull_cable(m)?;
            }
            d.wait_group("failed")
        },
    )?;
    step(
        &d,
        &mut shown,
        "Plug rge0 back in: at least one interface is usable",
        || {
            t.plug_cable("rge0")?;
            d.wait_group("degraded")?;
            ping(&t)
        },
    )?;
    println!("\n== ipmpctl teardown");
    let out = d.ctl(&["teardown"])?;
    println!("exit status {}", out.status.code().unwrap_or(-1));
    drop(d);
    probe_based(&t)
}

/// The tutorial's second half: test addresses, and a failure only probes
/// see.
fn probe_based(t: &Topology) -> Result<()> {
    println!("\n== Plug cables 1 and 2 back in; probe-based IPMP: a test address on every member, failure detection time 2 s");
    for m in ["e1000g0", "e1000g1"] {
        t.plug_cable(m)?;
    }
    let metrics = "127.0.0.1:9477";
    let d = Daemon::start(&t.host, &probe_group(2000).metrics(metrics).render())?;
    t.host
        .ip("route add default via 192.0.2.1 dev production0")?;
    for m in ipmp_tests::topology::MEMBERS {
        d.wait_for(&format!("{m} probing ok"), Duration::from_secs(30), |d| {
            Ok(d.member(m)?["probe"] == "ok")
        })?;
        // Until its first acknowledged probe a member is in in.mpathd's
        // start-up quiet period (40 s), where losses do not count yet.
        d.wait_acked(&t.host, metrics, m)?;
    }
    let mut shown = 0;
    show(&d, &mut shown, &["-g", "-i", "-t"])?;
    step(
        &d,
        &mut shown,
        "Cut cable 4 between the switches: links stay up, only probes see it",
        || {
            t.switch_a.ip("link set c4 down")?;
            for m in ["e1000g0", "e1000g1"] {
                d.wait_for(&format!("{m} failed"), Duration::from_secs(30), |d| {
                    Ok(d.member(m)?["probe"] == "failed")
                })?;
            }
            ping(t)
        },
    )?;
    step(
        &d,
        &mut shown,
        "Mend cable 4: both members are repaired",
        || {
            t.switch_a.ip("link set c4 up")?;
            for m in ["e1000g0", "e1000g1"] {
                d.wait_member(m, "state", "ok")?;
            }
            ping(t)
        },
    )?;
    println!("\n== ipmpctl teardown");
    let out = d.ctl(&["teardown"])?;
    println!("exit status {}", out.status.code().unwrap_or(-1));
    Ok(())
}

fn step(
    d: &Daemon,
    shown: &mut usize,
    title: &str,
    action: impl FnOnce() -> Result<()>,
) -> Result<()> {
    println!("\n== {title}");
    action()?;
    show(d, shown, &["-g", "-i", "-a"])
}

/// ipmpd's new log lines, then `ipmpstat` in each of `modes`.
fn show(d: &Daemon, shown: &mut usize, modes: &[&str]) -> Result<()> {
    let log = d.log_text();
    for line in log.lines().skip(*shown) {
        println!("ipmpd: {line}");
    }
    *shown = log.lines().count();
    for mode in modes {
        println!("# ipmpstat {mode}");
        let out = d.ctl(&["stat", mode])?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

fn ping(t: &Topology) -> Result<()> {
    let out = t
        .host
        .command("ping")
        .args(["-c", "1", "-W", "2", "-I", "192.0.2.200", "192.0.2.1"])
        .output()?;
    let ok = out.status.success();
    println!(
        "ping 192.0.2.1 from 192.0.2.200: {}",
        if ok { "answered" } else { "no answer" }
    );
    Ok(())
}

/// `ipmpctl offline|online e1000g0` (if_mpadm -d / -r), with its answer.
fn mpadm(d: &Daemon, action: &str) -> Result<()> {
    let out = d.ctl(&[action, "e1000g0"])?;
    println!(
        "# ipmpctl {action} e1000g0: exit status {} {}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// 60 UDP flows from the data address to the peer, counted by the member
/// the peer saw each arrive from.
fn flows(t: &Topology) -> Result<()> {
    let by_member = t.flows_by_member(("192.0.2.200", "192.0.2.10"), 30000..30060)?;
    let counts: Vec<String> = ipmp_tests::topology::MEMBERS
        .iter()
        .map(|m| format!("{m} {}", by_member.values().filter(|f| f == m).count()))
        .collect();
    println!("60 flows to the peer leave through: {}", counts.join(", "));
    Ok(())
}
