//! `cargo xtask demo`: the IPMP tutorial, played against ipmpd in the
//! testbed, with ipmpstat output after each step.
use anyhow::Result;
use ipmp_tests::{daemon::Daemon, netns::unique, topology::Topology};

use crate::testbed::TUTORIAL_CONFIG;

pub fn run() -> Result<()> {
    let t = Topology::build(&unique("demo"))?;
    let d = Daemon::start(&t.host, TUTORIAL_CONFIG)?;
    t.host.ip("route add default via 192.0.2.1 dev production0")?;
    let mut shown = 0;

    step(&d, &mut shown, "The group production0 with three members; ping the router", || {
        ping(&t)
    })?;
    step(&d, &mut shown, "Pull cable 1 (e1000g0): link-based failure", || {
        t.pull_cable("e1000g0")?;
        d.wait_member("e1000g0", "state", "failed")?;
        ping(&t)
    })?;
    step(&d, &mut shown, "Plug cable 1 back in: repair", || {
        t.plug_cable("e1000g0")?;
        d.wait_member("e1000g0", "state", "ok")?;
        ping(&t)
    })?;
    step(&d, &mut shown, "Pull all three cables: the group fails", || {
        for m in ipmp_tests::topology::MEMBERS {
            t.pull_cable(m)?;
        }
        d.wait_group("failed")
    })?;
    step(&d, &mut shown, "Plug rge0 back in: at least one interface is usable", || {
        t.plug_cable("rge0")?;
        d.wait_group("degraded")?;
        ping(&t)
    })?;
    println!("\n== ipmpctl teardown");
    let out = d.ctl(&["teardown"])?;
    println!("exit status {}", out.status.code().unwrap_or(-1));
    Ok(())
}

fn step(d: &Daemon, shown: &mut usize, title: &str, action: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("\n== {title}");
    action()?;
    let log = d.log_text();
    for line in log.lines().skip(*shown) {
        println!("ipmpd: {line}");
    }
    *shown = log.lines().count();
    for mode in ["-g", "-i"] {
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
    println!("ping 192.0.2.1 from 192.0.2.200: {}", if ok { "answered" } else { "no answer" });
    Ok(())
}
