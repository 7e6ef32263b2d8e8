//! What ipmpd costs the host while nothing happens: its resident memory,
//! and its CPU time over a quiet stretch, with 3 members probing at the
//! default FDT and with 64 link-only members.
use std::{thread, time::Duration};

use anyhow::{Context, Result};
use ipmp_tests::daemon::Daemon;
use serde_json::{json, Value};

/// How long ipmpd is watched while idle.
const QUIET: Duration = Duration::from_secs(30);
/// The FDT a fresh install probes at (in.mpathd's default).
const DEFAULT_FDT_MS: u64 = 10_000;

pub fn run() -> Result<Value> {
    Ok(json!({
        "members_3_probing": probing_group()?,
        "members_64_link_only": large_group(64)?,
        "goal_rss_mb": 30,
        "goal_idle_cpu_percent_64_members": 0.5,
    }))
}

fn probing_group() -> Result<Value> {
    let (_t, d) = super::probing_group(crate::testbed::probe_group(DEFAULT_FDT_MS))?;
    measure(&d)
}

fn large_group(members: usize) -> Result<Value> {
    let (_ns, d) = super::veth_group(members, None)?;
    measure(&d)
}

/// ipmpd's CPU share over [`QUIET`] (after a few seconds to settle) and
/// its resident memory then.
fn measure(d: &Daemon) -> Result<Value> {
    let pid = d.pid().context("ipmpd is not running")?;
    thread::sleep(Duration::from_secs(5));
    let before = cpu_ticks(pid)?;
    thread::sleep(QUIET);
    let ticks = cpu_ticks(pid)? - before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |field: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(field))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Ok(json!({
        "seconds": QUIET.as_secs(),
        "cpu_percent": ticks as f64 / hz / QUIET.as_secs_f64() * 100.0,
        "rss_mb": kib("VmRSS:").map(|k| k / 1024.0),
        "peak_rss_mb": kib("VmHWM:").map(|k| k / 1024.0),
    }))
}

/// utime + stime of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields count from after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse()
            .context("/proc/PID/stat")
    };
    // utime and stime are fields 14 and 15; after ')' they are 12 and 13.
    Ok(field(11)? + field(12)?)
}
