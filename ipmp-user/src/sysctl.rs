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
///
/// ARP for the data addresses is the dataplane's (on the bound member
/// only): the kernel answers only for the member's own addresses
/// (arp_ignore 1), and asks from the member's own address where it has one
/// in the target's subnet (arp_announce 2), so that asking never moves a
/// peer's entry for a data address to a member it is not bound to.
pub fn prepare_member(member: &str) -> Result<()> {
    set("net/ipv4/conf/all/rp_filter", "0")?;
    set(&format!("net/ipv4/conf/{member}/rp_filter"), "0")?;
    set(&format!("net/ipv4/conf/{member}/arp_ignore"), "1")?;
    set(&format!("net/ipv4/conf/{member}/arp_announce"), "2")
}

/// The group interface's veth peer never carries traffic: keep IPv6 (and
/// with it router solicitations and DAD) off it.
pub fn quiet_peer(peer: &str) -> Result<()> {
    set(&format!("net/ipv6/conf/{peer}/disable_ipv6"), "1")
}
