//! Kernel settings a member needs, written through /proc/sys (which shows
//! the settings of ipmpd's own network namespace).
use std::fs;

use anyhow::{Context, Result};

pub fn set(path: &str, value: &str) -> Result<()> {
    let full = format!("/proc/sys/{path}");
    fs::write(&full, value).with_context(|| format!("writing {value} to {full}"))
}

/// Replies to the group's data addresses arrive on members that carry no
/// such address: reverse-path filtering (strict or loose; the effective
/// value is the larger of `all` and the member's) would drop them.
pub fn prepare_member(member: &str) -> Result<()> {
    set("net/ipv4/conf/all/rp_filter", "0")?;
    set(&format!("net/ipv4/conf/{member}/rp_filter"), "0")
}

/// The group interface's veth peer never carries traffic: keep IPv6 (and
/// with it router solicitations and DAD) off it.
pub fn quiet_peer(peer: &str) -> Result<()> {
    set(&format!("net/ipv6/conf/{peer}/disable_ipv6"), "1")
}
