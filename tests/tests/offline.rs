//! if_mpadm's maintenance workflow: take a member offline while traffic
//! runs, bring it back, and the rule that the last usable member stays.
use std::{process::Command, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::{bin, ipmpctl_as, lines_of, Daemon},
    topology::Topology,
    traffic::Stream,
};

fn setup() -> Result<(Topology, Daemon)> {
    Daemon::start_tutorial("off")
}

/// Starts 2 s of a 5 kpps stream from the data address to the peer, on a
/// flow (source port among `ports`) that `member` carries.
fn stream_through(t: &Topology, member: &str, ports: std::ops::Range<u16>) -> Result<Stream> {
    t.stream_through(member, ports, Duration::from_micros(200), 10_000, false)
}

#[test]
fn offline_and_online_lose_no_packet_of_a_running_stream() -> Result<()> {
    let (t, d) = setup()?;
    let stream = stream_through(&t, "e1000g0", 41_000..41_032)?;
    std::thread::sleep(Duration::from_millis(500));
    d.ctl_ok(&["offline", "e1000g0"])?;
    d.wait_member("e1000g0", "state", "offline")?;
    ensure!(
        d.member("e1000g0")?["active"] == "no",
        "an offline member is active"
    );
    d.wait_group("degraded")?;
    std::thread::sleep(Duration::from_millis(500));
    // if_mpadm -r, through the binary's other name.
    let out = ipmpctl_as("if_mpadm", |c| {
        c.arg("--socket").arg(&d.socket).args(["-r", "e1000g0"]);
    })?;
    ensure!(
        out.status.success(),
        "if_mpadm -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.wait_member("e1000g0", "state", "ok")?;
    d.wait_member("e1000g0", "active", "yes")?;
    let lost = stream.lost()?;
    ensure!(lost == 0, "{lost} datagrams of the stream were lost");
    let log = d.log_text();
    ensure!(
        log.contains("Interface e1000g0 taken offline")
            && log.contains("Interface e1000g0 brought online"),
        "{log}"
    );
    Ok(())
}

#[test]
fn the_last_usable_member_cannot_go_offline() -> Result<()> {
    let (_t, d) = setup()?;
    for m in ["e1000g0", "e1000g1"] {
        d.ctl_ok(&["offline", m])?;
    }
    let reason = d
        .ctl_refused(&["offline", "rge0"])
        .context("offline of the last member")?;
    ensure!(
        reason.contains("no other functioning interfaces are in its IPMP group"),
        "reason: {reason}"
    );
    ensure!(
        d.member("rge0")?["state"] == "ok",
        "rge0 went offline anyway"
    );
    d.ctl_refused(&["offline", "eth7"])
        .context("offline of a non-member")?;
    Ok(())
}

/// `ipmpctl events` follows state changes as they happen, for scripts.
#[test]
fn events_follow_a_failover_live() -> Result<()> {
    use std::io::{BufRead, BufReader};
    let (t, d) = setup()?;
    let mut follower = Command::new(bin("ipmpctl"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["events", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Following from the moment it says so on stderr.
    let mut said = String::new();
    BufReader::new(
        follower
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?,
    )
    .read_line(&mut said)?;
    ensure!(
        said.contains("following ipmpd's events"),
        "ipmpctl events said: {said}"
    );
    let rx = lines_of(
        follower
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    t.pull_cable("e1000g1")?;
    let mut seen = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let found = loop {
        let Ok(line) = rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now()))
        else {
            break false;
        };
        let event: serde_json::Value = serde_json::from_str(&line)?;
        seen.push(line);
        if event["event"] == "interface_failure" && event["interface"] == "e1000g1" {
            ensure!(
                event["message"] == "IP interface failure detected on e1000g1 of group production0",
                "{event}"
            );
            break true;
        }
    };
    let _ = follower.kill();
    let _ = follower.wait();
    ensure!(
        found,
        "no interface_failure event for e1000g1; saw {seen:?}"
    );
    ensure!(
        seen.iter().any(|l| l.contains("\"link_down\"")),
        "no link_down event before it: {seen:?}"
    );
    Ok(())
}

/// FAILBACK=no: a repaired member stays inactive (flag i) while the others
/// carry the traffic.
#[test]
fn without_failback_a_repaired_member_stays_inactive() -> Result<()> {
    let (t, d) = Daemon::start_on_tutorial("off", &IpmpToml::tutorial().failback(false).render())?;
    t.pull_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "failed")?;
    t.plug_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "ok")?;
    let row = d.member("e1000g0")?;
    ensure!(
        row["active"] == "no" && row["flags"].as_str().is_some_and(|f| f.starts_with('i')),
        "e1000g0: {row}"
    );
    ensure!(
        d.stat("-g")?[0]["interfaces"] == "e1000g1 rge0 (e1000g0)",
        "{}",
        d.stat("-g")?
    );
    Ok(())
}

/// The dataplane is pinned: ipmpd killed with SIGKILL and started again
/// (which adopts the pins) loses no datagram of a running stream.
#[test]
fn kill_9_and_restart_lose_no_packet_of_a_running_stream() -> Result<()> {
    let (t, mut d) = setup()?;
    let stream = stream_through(&t, "e1000g1", 42_000..42_032)?;
    std::thread::sleep(Duration::from_millis(300));
    d.kill()?;
    std::thread::sleep(Duration::from_millis(300));
    let d = Daemon::start_again(d, &t.host)?;
    d.wait_group("ok")?;
    let lost = stream.lost()?;
    ensure!(
        lost == 0,
        "{lost} datagrams lost across kill -9 and restart"
    );
    ensure!(
        d.log_text().contains("Adopted the pinned dataplane"),
        "the restart did not adopt the pins"
    );
    Ok(())
}
