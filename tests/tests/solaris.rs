//! What a Solaris administrator notices, end to end on the tutorial's
//! network: standby members, log severities, the `ipmpstat` name.
use std::{process::Command, time::Duration};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::{test_address, IpmpToml},
    daemon::{bin, ipmpctl_as, lines_of, Daemon},
    http::member_sum,
    netns::{join, unique},
    topology::{Topology, DATA_V4, MEMBERS, PEER_V4, ROUTER_V4},
};

const FLOWS: std::ops::Range<u16> = 20000..20240;

/// The members leaving flows to the peer, one entry per flow.
fn flows(t: &Topology) -> Result<Vec<String>> {
    Ok(t.flows_by_member((DATA_V4, PEER_V4), FLOWS)?
        .into_values()
        .collect())
}

/// rge0 is a standby: it carries nothing while e1000g0 and e1000g1 work,
/// takes over when one fails, and gives back when that one is repaired.
#[test]
fn a_standby_member_carries_nothing_until_an_active_one_fails() -> Result<()> {
    let (t, d) = Daemon::start_on_tutorial("sb", &IpmpToml::tutorial().standby("rge0").render())?;
    let row = d.member("rge0")?;
    ensure!(
        row["active"] == "no" && row["flags"].as_str().is_some_and(|f| f.contains('s')),
        "rge0 should be an inactive standby: {row}"
    );
    let before = flows(&t)?;
    ensure!(
        before.len() == FLOWS.len() && !before.iter().any(|m| m == "rge0"),
        "the standby carried flows: {before:?}"
    );

    t.pull_cable("e1000g0")?;
    d.wait_member("rge0", "active", "yes")?;
    let during = flows(&t)?;
    ensure!(
        during.len() == FLOWS.len()
            && during.iter().any(|m| m == "rge0")
            && !during.iter().any(|m| m == "e1000g0"),
        "after e1000g0 failed: {during:?}"
    );

    t.plug_cable("e1000g0")?;
    d.wait_member("e1000g0", "active", "yes")?;
    d.wait_member("rge0", "active", "no")?;
    let after = flows(&t)?;
    ensure!(
        after.len() == FLOWS.len() && !after.iter().any(|m| m == "rge0"),
        "the standby kept flows after the repair: {after:?}"
    );
    Ok(())
}

/// The log line that carries `message`, or an error quoting the log.
fn log_line(d: &Daemon, message: &str) -> Result<String> {
    let log = d.log_text();
    log.lines()
        .find(|l| l.contains(message))
        .map(str::to_string)
        .with_context(|| format!("no {message:?} in the log:\n{log}"))
}

/// in.mpathd logs failures at LOG_ERR and repairs at LOG_NOTICE: alerts
/// keyed on severity must see the failures.
#[test]
fn failures_are_logged_as_errors_and_repairs_as_notices() -> Result<()> {
    let (t, d) = Daemon::start_tutorial("sev")?;
    for m in MEMBERS {
        t.pull_cable(m)?;
    }
    d.wait_group("failed")?;
    t.plug_cable("rge0")?;
    d.wait_group("degraded")?;
    let (error, info) = (" ERROR ", " INFO ");
    for (message, level) in [
        ("The link has gone down on e1000g0", error),
        (
            "IP interface failure detected on e1000g0 of group production0",
            error,
        ),
        (
            "All IP interfaces in group production0 are now unusable",
            error,
        ),
        ("The link has come up on rge0", info),
        (
            "At least 1 IP interface (rge0) in group production0 is now usable",
            info,
        ),
    ] {
        d.wait_for(message, Duration::from_secs(5), |d| {
            Ok(log_line(d, message).is_ok())
        })?;
        let line = log_line(&d, message)?;
        ensure!(line.contains(level), "not at{level}level: {line}");
    }
    Ok(())
}

/// `ipmpstat` is ipmpctl under that name, with ipmpstat's options.
#[test]
fn ipmpctl_answers_as_ipmpstat() -> Result<()> {
    let (_t, d) = Daemon::start_tutorial("alias")?;
    let out = ipmpctl_as("ipmpstat", |c| {
        c.args(["-g", "-P", "-o", "groupname,state"])
            .env("IPMP_SOCKET", &d.socket);
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim() == "production0:ok",
        "ipmpstat -g -P -o groupname,state: {:?} {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// FLAGS has `h` on members that share a hardware address, and `-i --json`
/// shows the XDP mode in use and why.
#[test]
fn stat_shows_duplicate_hardware_addresses_and_the_xdp_mode() -> Result<()> {
    let t = Topology::build(&unique("hw"))?;
    let mac = t.mac("rge0")?;
    t.host.ip(&format!("link set e1000g1 address {mac}"))?;
    let d = Daemon::start(&t.host, &IpmpToml::tutorial().render())?;
    d.wait_group("ok")?;
    for (m, dup) in [("e1000g0", false), ("e1000g1", true), ("rge0", true)] {
        let row = d.member(m)?;
        let flags = row["flags"].as_str().unwrap_or_default();
        ensure!(
            flags.ends_with('h') == dup,
            "{m}: flags {flags}, duplicate MAC {dup}"
        );
        // Test topologies are veths whose peers run no native XDP program.
        ensure!(
            row["xdp"] == "generic"
                && row["xdpreason"]
                    .as_str()
                    .is_some_and(|r| r.contains("veth")),
            "{m}: {row}"
        );
    }
    Ok(())
}

/// Without -n, addresses are shown by host name (here from a hosts file
/// seen only by ipmpctl, in a mount namespace of its own); -n and --json
/// keep them numeric.
#[test]
fn stat_resolves_host_names_unless_n() -> Result<()> {
    let (_t, d) = Daemon::start_tutorial("names")?;
    let dir = std::env::temp_dir().join(unique("hosts"));
    std::fs::create_dir_all(&dir)?;
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("{DATA_V4} hivemind-data\n"))?;
    let stat = |extra: &str| -> Result<String> {
        let script = format!(
            "mount --bind {} /etc/hosts && exec {} --socket {} stat -a -o address -P {extra}",
            hosts.display(),
            bin("ipmpctl").display(),
            d.socket.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "sh", "-c", &script])
            .output()?;
        ensure!(out.status.success(), "stat -a {extra}: {out:?}");
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    };
    let (named, numeric) = (stat(""), stat("-n"));
    std::fs::remove_dir_all(&dir)?;
    ensure!(named? == "hivemind-data", "stat -a does not name {DATA_V4}");
    ensure!(numeric? == DATA_V4, "stat -a -n is not numeric");
    Ok(())
}

/// The third link-up within a minute does not repair a link-only member
/// (in.mpathd's anti-flapping): it stays failed, with in.mpathd's message.
#[test]
fn a_flapping_link_is_not_repaired_on_its_third_link_up() -> Result<()> {
    let (t, d) = Daemon::start_tutorial("flap")?;
    for _ in 0..2 {
        t.pull_cable("e1000g0")?;
        d.wait_member("e1000g0", "state", "failed")?;
        t.plug_cable("e1000g0")?;
        d.wait_member("e1000g0", "state", "ok")?;
    }
    t.pull_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "failed")?;
    t.plug_cable("e1000g0")?;
    let flapping = "The link has come up on e1000g0 more than 2 times in the last minute; \
                    disabling repair until it stabilizes";
    d.wait_for("the flapping message", Duration::from_secs(5), |d| {
        Ok(d.log_text().contains(flapping))
    })?;
    let row = d.member("e1000g0")?;
    ensure!(
        row["link"] == "up" && row["state"] == "failed" && row["active"] == "no",
        "e1000g0 after its third link-up: {row}"
    );
    Ok(())
}

const METRICS: &str = "127.0.0.1:9477";

/// The tutorial's probe-based group: test addresses, the router as target.
fn probing_config(fdt_ms: u64) -> IpmpToml {
    IpmpToml::tutorial()
        .fdt_ms(fdt_ms)
        .metrics(METRICS)
        .targets(&[ROUTER_V4])
        .test_addresses()
}

/// The tutorial's network with the probing group, every member's first
/// probe acknowledged (the start-up quiet period over).
fn start_probing(prefix: &str, fdt_ms: u64) -> Result<(Topology, Daemon)> {
    let t = Topology::build(&unique(prefix))?;
    let d = Daemon::start(&t.host, &probing_config(fdt_ms).render())?;
    for m in MEMBERS {
        d.wait_acked(&t.host, METRICS, m)?;
    }
    Ok((t, d))
}

/// When the only target goes silent for every member at once, no member
/// shows life: that is a group failure (all members failed, in.mpathd's
/// "now unusable"), not three interface failures; when the target is
/// back, probes repair the group.
#[test]
fn a_silent_target_for_all_members_is_a_group_failure() -> Result<()> {
    let (t, d) = start_probing("gf", 1000)?;
    t.router.ip("link set eth0 down")?;
    d.wait_for("group state failed", Duration::from_secs(20), |d| {
        Ok(d.stat("-g")?[0]["state"] == "failed")
    })?;
    ensure!(
        d.log_text()
            .contains("All IP interfaces in group production0 are now unusable"),
        "no group failure message"
    );
    for m in MEMBERS {
        let row = d.member(m)?;
        ensure!(
            row["link"] == "up" && row["probe"] == "failed" && row["state"] == "failed",
            "{m}: {row}"
        );
    }
    t.router.ip("link set eth0 up")?;
    d.wait_for("group state ok", Duration::from_secs(20), |d| {
        Ok(d.stat("-g")?[0]["state"] == "ok")
    })?;
    Ok(())
}

/// `stat -p` streams each probe as it happens, in ipmpstat's columns.
#[test]
fn stat_p_streams_probes_as_they_happen() -> Result<()> {
    let (_t, d) = start_probing("sp", 1000)?;
    let mut child = Command::new(bin("ipmpctl"))
        .args(["--socket"])
        .arg(&d.socket)
        .args(["stat", "-p"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    // The reader ends when ipmpctl is killed below, whatever it read.
    let rx = lines_of(child.stdout.take().context("no stdout")?);
    let mut lines = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while lines.len() < 7 && std::time::Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    child.kill()?;
    child.wait()?;
    ensure!(lines.len() == 7, "stat -p printed only {lines:?}");
    ensure!(
        lines[0].split_whitespace().collect::<Vec<_>>()
            == [
                "TIME",
                "INTERFACE",
                "PROBE",
                "NETRTT",
                "RTT",
                "RTTAVG",
                "TARGET"
            ],
        "header: {}",
        lines[0]
    );
    for line in &lines[1..] {
        let f: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            f.len() == 7
                && f[0].ends_with('s')
                && MEMBERS.contains(&f[1])
                && f[2].parse::<u16>().is_ok()
                && f[3].ends_with("ms")
                && f[6] == "192.0.2.1",
            "probe row: {line}"
        );
    }
    Ok(())
}

/// A target that becomes slow raises the group's FDT (in.mpathd's
/// adaptive FDT) with its message; once it is fast again, the FDT comes
/// back down, no sooner than 60 s after the raise.
#[test]
fn a_slow_target_raises_the_fdt_and_a_fast_one_lowers_it_again() -> Result<()> {
    use std::sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    };
    let t = Topology::build(&unique("afdt"))?;
    t.peer.sysctl("net.ipv4.icmp_echo_ignore_all", "1")?;
    let (delay, stop) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let responder = ipmp_tests::traffic::slow_echo_responder(&t.peer, delay.clone(), stop.clone());
    let result = (|| {
        let config = probing_config(1000).targets(&[PEER_V4]);
        let d = Daemon::start(&t.host, &config.render())?;
        for m in MEMBERS {
            d.wait_acked(&t.host, METRICS, m)?;
        }
        delay.store(400, Ordering::Relaxed);
        d.wait_for("the raised FDT", Duration::from_secs(20), |d| {
            Ok(d.stat("-g")?[0]["fdt"] != "1.00s"
                && d.log_text()
                    .contains("Cannot meet requested failure detection time of 1000 ms on (inet "))
        })?;
        let raised = d.log_text();
        let line = raised
            .lines()
            .find(|l| l.contains("Cannot meet requested"))
            .unwrap_or_default();
        ensure!(
            line.contains(" ERROR ")
                && line.contains("new failure detection time for group \"production0\" is "),
            "raise: {line}"
        );
        delay.store(0, Ordering::Relaxed);
        d.wait_for("the lowered FDT", Duration::from_secs(90), |d| {
            Ok(d.log_text().contains("Improved failure detection time "))
        })?;
        ensure!(
            MEMBERS
                .iter()
                .all(|m| d.member(m).is_ok_and(|r| r["state"] == "ok")),
            "a member failed on the slow target: {}",
            d.stat("-i")?
        );
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    join(responder)?;
    result
}

/// With `xdp_mode = "auto"`, a veth member whose peer runs a native XDP
/// program (as a wire would take the frames) gets native mode, and the
/// group works end to end in it: probes, ARP and echo answered in XDP.
#[test]
fn a_group_runs_in_native_xdp_mode_where_the_veth_peer_allows_it() -> Result<()> {
    let t = Topology::build(&unique("native"))?;
    for m in MEMBERS {
        ipmp_tests::xdp::attach_native_pass(t.switch_of(m), &format!("p-{m}"))?;
    }
    let d = Daemon::start(&t.host, &probing_config(1000).render())?;
    for m in MEMBERS {
        let row = d.member(m)?;
        ensure!(
            row["xdp"] == "native"
                && row["xdpreason"]
                    .as_str()
                    .is_some_and(|r| r.contains("peer runs a native XDP program")),
            "{m}: {row}"
        );
        d.wait_acked(&t.host, METRICS, m)?;
    }
    let out = t
        .peer
        .command("ping")
        .args(["-c", "5", "-i", "0.05", "-W", "2", DATA_V4])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("5 received"),
        "pings of {DATA_V4} in native mode: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sum = |name| member_sum(&t.host, METRICS, name, &MEMBERS);
    let (echo, neighbour) = (
        sum("ipmp_echo_requests_answered_total")?,
        sum("ipmp_neighbour_requests_answered_total")?,
    );
    ensure!(
        echo >= 5.0 && neighbour >= 1.0,
        "answered in XDP: {echo} echo requests, {neighbour} ARP requests"
    );
    Ok(())
}

/// A test address two members of the group share disables probing on the
/// second (in.mpathd's message) instead of refusing the file; a member
/// without a test address is warned about after in.mpathd's 20 s grace
/// period, in a group where others probe.
#[test]
fn a_duplicate_test_address_disables_probing_on_that_member_only() -> Result<()> {
    let t = Topology::build(&unique("dup"))?;
    let config = probing_config(1000)
        .test_address("e1000g1", &test_address("e1000g0"))
        .no_test_address("rge0")
        .render();
    let started = std::time::Instant::now();
    let d = Daemon::start(&t.host, &config)?;
    d.wait_acked(&t.host, METRICS, "e1000g0")?;
    ensure!(
        d.log_text().contains(
            "Test address 192.0.2.201 is not unique in group; disabling probe-based \
             failure detection on e1000g1"
        ),
        "no duplicate test address message:\n{}",
        d.log_text()
    );
    for (m, probe) in [
        ("e1000g0", "ok"),
        ("e1000g1", "disabled"),
        ("rge0", "disabled"),
    ] {
        let row = d.member(m)?;
        ensure!(row["probe"] == probe && row["state"] == "ok", "{m}: {row}");
    }
    let warning = "No test address configured on interface rge0; disabling probe-based \
                   failure detection on it";
    ensure!(
        !d.log_text().contains(warning),
        "warned within the grace period"
    );
    d.wait_for("the warning after 20 s", Duration::from_secs(25), |d| {
        Ok(d.log_text().contains(warning))
    })?;
    ensure!(
        started.elapsed() >= Duration::from_secs(20),
        "warned after {:?}",
        started.elapsed()
    );
    ensure!(
        !d.log_text()
            .contains("No test address configured on interface e1000g1"),
        "e1000g1 has a test address"
    );
    Ok(())
}

/// What ipmpd sends to a log socket (one datagram a record) from its
/// start to "ipmpd ready", run in a namespace of its own with a group whose
/// only member is missing (so its group fails at once). `prepare` (shell,
/// `{d}` the test's folder, whose `log` is the socket) runs first in
/// ipmpd's own mount namespace, to put the socket where ipmpd looks.
fn logged_records(prepare: &str, args: &str) -> Result<Vec<String>> {
    let ns = ipmp_tests::netns::Netns::create(&unique("log"))?;
    let dir = std::env::temp_dir().join(unique("log"));
    std::fs::create_dir_all(&dir)?;
    let log = std::os::unix::net::UnixDatagram::bind(dir.join("log"))?;
    log.set_read_timeout(Some(Duration::from_secs(10)))?;
    let config = IpmpToml::tutorial().name("sl0").members(&["m0"]);
    std::fs::write(dir.join("ipmp.toml"), config.render())?;
    let pins = std::path::PathBuf::from(format!("/sys/fs/bpf/{}", unique("log")));
    let d = dir.display().to_string();
    let script = format!(
        "{} && exec {ipmpd} {args} --config {d}/ipmp.toml --socket {d}/s --pin-dir {pins}",
        prepare.replace("{d}", &d),
        ipmpd = bin("ipmpd").display(),
        pins = pins.display()
    );
    let mut child = ns
        .command("unshare")
        .args(["--mount", "sh", "-c", &script])
        .spawn()?;
    let mut records = Vec::new();
    let mut buf = [0u8; 4096];
    while !records.iter().any(|l: &String| l.contains("ipmpd ready")) {
        match log.recv(&mut buf) {
            Ok(n) => records.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    child.kill()?;
    child.wait()?;
    let _ = std::fs::remove_dir_all(&pins);
    std::fs::remove_dir_all(&dir)?;
    Ok(records)
}

/// The record that carries `text`.
fn record<'a>(records: &'a [String], text: &str) -> Option<&'a String> {
    records.iter().find(|r| r.contains(text))
}

/// `ipmpd --syslog` logs to syslog, facility daemon, with in.mpathd's
/// severities: "now unusable" at LOG_ERR (<27>), the rest at LOG_NOTICE
/// (<29>). Syslog's socket here is the test's, bound over /dev/log.
#[test]
fn syslog_gets_in_mpathd_severities() -> Result<()> {
    let records = logged_records(
        "mount -t tmpfs tmpfs /dev && touch /dev/log /dev/null && mount --bind {d}/log /dev/log",
        "--syslog",
    )?;
    ensure!(
        record(&records, "All IP interfaces in group sl0 are now unusable")
            .is_some_and(|l| l.starts_with("<27>")),
        "no error-level group failure in {records:?}"
    );
    ensure!(
        record(&records, "ipmpd ready").is_some_and(|l| l.starts_with("<29>")),
        "no notice-level start in {records:?}"
    );
    Ok(())
}

/// A field of a journal record in the native protocol: `KEY=value\n`, or
/// `KEY\n`, the value's length (64-bit little-endian), the value, `\n`.
fn journal_field(record: &str, key: &str) -> Option<String> {
    let b = record.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let end = i + b[i..].iter().position(|&c| c == b'\n' || c == b'=')?;
        let (value, next) = if b[end] == b'=' {
            let line_end = end + b[end..].iter().position(|&c| c == b'\n')?;
            (&b[end + 1..line_end], line_end + 1)
        } else {
            let len = u64::from_le_bytes(b.get(end + 1..end + 9)?.try_into().ok()?) as usize;
            (b.get(end + 9..end + 9 + len)?, end + 9 + len + 1)
        };
        if &b[i..end] == key.as_bytes() {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        i = next;
    }
    None
}

/// Under systemd (JOURNAL_STREAM names ipmpd's stderr) ipmpd writes to the
/// journal with in.mpathd's severities as priorities (3 err, 5 notice).
/// The journal's socket here is the test's.
#[test]
fn the_journal_gets_in_mpathd_severities_under_systemd() -> Result<()> {
    let records = logged_records(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal \
         && touch /run/systemd/journal/socket \
         && mount --bind {d}/log /run/systemd/journal/socket && exec 2>{d}/stderr \
         && export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)",
        "",
    )?;
    let priority = |message: &str| {
        records
            .iter()
            .find(|r| journal_field(r, "MESSAGE").is_some_and(|m| m.starts_with(message)))
            .and_then(|r| journal_field(r, "PRIORITY"))
    };
    ensure!(
        priority("All IP interfaces in group sl0 are now unusable").as_deref() == Some("3"),
        "no priority-3 group failure in {records:?}"
    );
    ensure!(
        priority("ipmpd ready").as_deref() == Some("5"),
        "no priority-5 start in {records:?}"
    );
    Ok(())
}
